//! Push family: the chain that follows a delivered group message (spec §10.3 step 9, §10.4):
//! the members' push shields, then the device tokens of those who did not shield the group.
//! This server opens no push_server link, so the chain ends with the tokens (logged).

use netlib::Net;
use tt_proto::pb::server::{ImGetDeviceTokenReq, ImGetDeviceTokenRsp, ImGroupGetShieldRsp};

use crate::links::db::Pool;
use crate::state::{Family, State, rows};
use crate::wire::Received;

pub const FAMILY: Family = Family {
    name: "push",
    db: rows! {
        CID_OTHER_GET_SHIELD_RSP        => shields_known,
        CID_OTHER_GET_DEVICE_TOKEN_RSP  => tokens_known,
    },
    ..Family::EMPTY
};

/// `CID_OTHER_GET_SHIELD_RSP`: the device tokens of the members whose shield is off are asked
/// for (also when there is none, as the original), carrying the message on.
fn shields_known(s: &mut State, net: &mut Net, pdu: &Received<'_>) {
    let Some(rsp) = pdu.parse::<ImGroupGetShieldRsp>(net) else {
        return;
    };
    let req = ImGetDeviceTokenReq {
        user_id: rsp
            .shield_status_list
            .iter()
            .filter(|u| u.shield_status == 0)
            .map(|u| u.user_id)
            .collect(),
        attach_data: rsp.attach_data,
    };
    s.links.db.send(net, Pool::General, 0, &req);
}

/// `CID_OTHER_GET_DEVICE_TOKEN_RSP`: the tokens a push would go to; without a push_server
/// link nothing is pushed.
fn tokens_known(_: &mut State, net: &mut Net, pdu: &Received<'_>) {
    if let Some(rsp) = pdu.parse::<ImGetDeviceTokenRsp>(net) {
        log::debug!(
            "{} device tokens for a push: no push_server link, nothing pushed",
            rsp.user_token_info.len()
        );
    }
}
