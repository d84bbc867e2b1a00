//! Switch family: P2P commands between clients (spec §9.2.5, §11.2), passed on to both users'
//! connections here and, through route_server, elsewhere.

use netlib::Net;
use tt_common::pdu_io;
use tt_proto::pb::switch_service::Imp2pCmdMsg;

use crate::clients::Request;
use crate::state::{Family, State, rows};
use crate::wire::Received;

pub const FAMILY: Family = Family {
    name: "switch",
    client: rows! {
        CID_SWITCH_P2P_CMD  => p2p_from_client,
    },
    route: rows! {
        CID_SWITCH_P2P_CMD  => p2p_from_elsewhere,
    },
    ..Family::EMPTY
};

/// `CID_SWITCH_P2P_CMD` from a client, with `from_user_id` set to the logged-in user.
fn p2p_from_client(s: &mut State, net: &mut Net, req: &Request<'_>) {
    let Some(mut cmd) = s.relayed::<Imp2pCmdMsg>(net, req, "P2P commands") else {
        return;
    };
    let me = req.me;
    cmd.from_user_id = me;
    let bytes = pdu_io::encode_relay(req.header, &cmd);
    if cmd.to_user_id == me {
        // To oneself: every connection of mine, this one included, once each (the original
        // sends it to this connection once and to the others twice).
        s.send_to_user(net, me, None, &bytes);
    } else {
        s.send_to_user(net, me, Some(req.conn), &bytes);
        s.send_to_user(net, cmd.to_user_id, None, &bytes);
    }
    s.links.route.send_to_master(net, &bytes);
}

/// `CID_SWITCH_P2P_CMD` from another msg_server: to both users' connections here.
fn p2p_from_elsewhere(s: &mut State, net: &mut Net, pdu: &Received<'_>) {
    let Some(m) = pdu.parse::<Imp2pCmdMsg>(net) else {
        return;
    };
    let bytes = pdu.raw();
    s.send_to_user(net, m.from_user_id, None, &bytes);
    if m.to_user_id != m.from_user_id {
        s.send_to_user(net, m.to_user_id, None, &bytes);
    }
}
