//! Push family: the lookups between a stored message and its offline push (spec §10.3 step 9,
//! §10.4, §11.2 attach type 4).
//!
//! Only the msg_server a message was sent to (its origin) pushes it, once per receiver: a
//! single message asks db_proxy for the receiver's device tokens; a group message first for
//! the members' group shields (the sender left out), then for the tokens of those who did not
//! shield the group. db_proxy leaves out the users whose push shield is on. The tokens'
//! owners are then looked up at route_server (a PC client online anywhere makes the push
//! silent, a badge only), at most [`MAX_TOKENS_PER_PUSH`] a query, and each answer becomes one
//! `IMPushToUserReq` to push_server. The request itself (flash and data) travels in the
//! lookups' `attach_data` ([`State::push_template`]).

use netlib::Net;
use tt_proto::pb::base_define::{UserStat, UserStatType, UserTokenInfo};
use tt_proto::pb::server::{
    ImGetDeviceTokenReq, ImGetDeviceTokenRsp, ImGroupGetShieldRsp, ImPushToUserReq,
};
use tt_proto::required::decode_checked;
use tt_proto::values::{PUSH_TYPE_NORMAL, pc_login_status};

use crate::alert::MAX_TOKENS_PER_PUSH;
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
/// for on the same link, carrying the push request on; nothing when every member shielded the
/// group.
fn shields_known(s: &mut State, net: &mut Net, pdu: &Received<'_>) {
    s.push_lookups.answered(pdu.conn);
    let Some(rsp) = pdu.parse::<ImGroupGetShieldRsp>(net) else {
        return;
    };
    let user_id: Vec<u32> = rsp
        .shield_status_list
        .iter()
        .filter(|u| u.shield_status == 0)
        .map(|u| u.user_id)
        .collect();
    if user_id.is_empty() {
        return;
    }
    let req = ImGetDeviceTokenReq {
        user_id,
        attach_data: rsp.attach_data,
    };
    s.push_lookup(net, Some(pdu.conn), &req);
}

/// `CID_OTHER_GET_DEVICE_TOKEN_RSP`: the receivers' tokens; their presence is asked of
/// route_server per push request of at most [`MAX_TOKENS_PER_PUSH`] tokens.
fn tokens_known(s: &mut State, net: &mut Net, pdu: &Received<'_>) {
    s.push_lookups.answered(pdu.conn);
    let Some(rsp) = pdu.parse::<ImGetDeviceTokenRsp>(net) else {
        return;
    };
    if rsp.user_token_info.is_empty() {
        return;
    }
    let template =
        match decode_checked::<ImPushToUserReq>(rsp.attach_data.as_deref().unwrap_or_default()) {
            Ok(t) => t,
            Err(e) => {
                log::warn!("device-token reply with a bad push request ({e}): dropped");
                return;
            }
        };
    for chunk in rsp.user_token_info.chunks(MAX_TOKENS_PER_PUSH) {
        let req = ImPushToUserReq {
            user_token_list: chunk
                .iter()
                .map(|t| UserTokenInfo {
                    push_type: PUSH_TYPE_NORMAL,
                    ..t.clone()
                })
                .collect(),
            ..template.clone()
        };
        if !s.push_presence_query(net, &req) {
            push_without_route(s, net, req);
        }
    }
}

/// No route_server to ask: the presence known here decides (a user logged in here whose PC
/// client is online somewhere gets a silent push, anybody else a normal one).
fn push_without_route(s: &mut State, net: &mut Net, req: ImPushToUserReq) {
    let stats: Vec<UserStat> = req
        .user_token_list
        .iter()
        .map(|t| {
            let pc_online = s
                .users
                .get(t.user_id)
                .is_some_and(|u| u.pc_login_status == pc_login_status::ONLINE);
            let status = if pc_online {
                UserStatType::UserStatusOnline
            } else {
                UserStatType::UserStatusOffline
            };
            UserStat {
                user_id: t.user_id,
                status: status as i32,
            }
        })
        .collect();
    log::debug!("no master route_server: presence of push receivers taken from here");
    s.links.push.send_with_presence(net, req, &stats);
}
