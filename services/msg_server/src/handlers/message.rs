//! Message family: messages, acks, read acks, the time request (spec §9.2.0, §9.2.3, §9.2.4,
//! §10, §11.1, §11.2). Unread counts, message lists and messages by id are plain forwards
//! (see [`super::forwards`]).
//!
//! A message goes from the client to db_proxy, which stores it and sends it back; then the
//! sender gets its ack, the master route_server a copy for the other msg_servers, and the
//! sender's other connections and the receiver's connections here their delivery. A group
//! message first waits for its group's members ([`State::queue_group_message`]); the group
//! family delivers it when they come. The receiver of a single message is looked up for an
//! offline push here, where it was sent (the push family takes it from there).

use netlib::{ConnId, Net};
use tt_common::metrics::{DropReason, dropped};
use tt_common::pdu_io;
use tt_proto::pb::base_define::MsgType;
use tt_proto::pb::message::{
    ImClientTimeRsp, ImMsgData, ImMsgDataAck, ImMsgDataReadAck, ImMsgDataReadNotify,
};
use tt_proto::pb::server::ImGetDeviceTokenReq;
use tt_proto::pdu::Header;

use crate::clients::Request;
use crate::links::db::Pool;
use crate::state::{Family, State, rows};
use crate::wire::{Attach, Received, handle_of, unix_now};

pub const FAMILY: Family = Family {
    name: "message",
    client: rows! {
        CID_MSG_DATA            => send_message,
        CID_MSG_DATA_ACK        => delivered,
        CID_MSG_READ_ACK        => read_ack,
        CID_MSG_TIME_REQUEST    => time,
    },
    db: rows! {
        CID_MSG_DATA            => stored,
    },
    route: rows! {
        CID_MSG_DATA            => from_elsewhere,
        CID_MSG_READ_NOTIFY     => read_elsewhere,
    },
    ..Family::EMPTY
};

/// `CID_MSG_DATA` from a client (spec §10.1): checked, stamped and sent to db_proxy; the ack
/// and the deliveries follow its reply.
fn send_message(s: &mut State, net: &mut Net, req: &Request<'_>) {
    let Some(mut msg) = req.parse::<ImMsgData>(net) else {
        return;
    };
    let limit = s.limits.msg_rate;
    let max = s.limits.max_pending;
    let now = net.now();
    let db = s.links.db.pick(Pool::General);
    let Some(client) = s.clients.get_mut(req.conn) else {
        return;
    };
    let me = client.user_id;
    // The checks of the original, in its order; every drop is silent for the client.
    let drop = if msg.msg_data.is_empty() {
        Some("an empty message")
    } else if limit > 0 && client.msgs_this_second >= limit {
        dropped(DropReason::RateLimit);
        Some("more messages a second than MsgRateLimit")
    } else if !MsgType::is_group(msg.msg_type) && msg.to_session_id == me {
        Some("a message to itself")
    } else if db.is_none() {
        Some("a message while no db_proxy link is up")
    } else if !client.begin_request(now, max) {
        Some("a message while MaxPendingDbRequests requests wait for a reply")
    } else {
        None
    };
    if let Some(why) = drop {
        // Logged once a second at most (the tick sums up the rest): a client must not be
        // able to flood the log.
        if client.note_drop() {
            log::warn!("user {me} sent {why}: dropped");
        }
        return;
    }
    let Some(db) = db else { return };
    client.msgs_this_second += 1;
    msg.from_user_id = me;
    msg.create_time = unix_now();
    msg.attach_data = Attach::Short.data(client.handle);
    pdu_io::relay(net, db, req.header, &msg);
}

/// `CID_MSG_DATA_ACK`: a delivery ack needs no action (the original only kept loss
/// statistics); it is parsed all the same.
fn delivered(_: &mut State, net: &mut Net, req: &Request<'_>) {
    req.parse::<ImMsgDataAck>(net);
}

/// `CID_MSG_TIME_REQUEST` (spec §9.2.0): the server's Unix time; the body is not parsed.
fn time(_: &mut State, net: &mut Net, req: &Request<'_>) {
    let now = ImClientTimeRsp {
        server_time: unix_now(),
    };
    pdu_io::reply(net, req.conn, req.header, &now);
}

/// A stored message comes back from db_proxy (spec §10.2): ack to the sending connection,
/// copy to the master route_server, delivery to the sender's other connections and the
/// receiver's connections here, then (single message) the receiver's device tokens asked for
/// on the same link, for an offline push.
fn stored(s: &mut State, net: &mut Net, pdu: &Received<'_>) {
    let Some(m) = pdu.parse::<ImMsgData>(net) else {
        return;
    };
    let Some(handle) = handle_of(m.attach_data.as_deref(), pdu.header.command_id) else {
        return;
    };
    let (from, to) = (m.from_user_id, m.to_session_id);
    let sender = s.users.conn_by_handle(from, handle);
    if let Some(c) = sender {
        s.clients.end_request(c);
    }
    if m.msg_id == 0 {
        log::warn!("db_proxy did not store a message from {from} to {to}: no ack");
        return;
    }
    if let Some(c) = sender {
        let ack = ImMsgDataAck {
            user_id: from,
            session_id: to,
            msg_id: m.msg_id,
            session_type: MsgType::session_type(m.msg_type) as i32,
        };
        pdu_io::send(net, c, pdu.header.seq_num, &ack);
    }
    s.links.route.send_raw_to_master(net, pdu.header, pdu.body);
    if MsgType::is_group(m.msg_type) {
        s.queue_group_message(net, m, handle);
    } else {
        let push = s.push_template(&m);
        deliver(s, net, pdu.header, m, sender);
        if let Some(template) = push {
            let req = ImGetDeviceTokenReq {
                user_id: vec![to],
                attach_data: Some(template),
            };
            s.push_lookup(net, Some(pdu.conn), &req);
        }
    }
}

/// `CID_MSG_DATA` stored by another msg_server, through route_server: a single message is
/// delivered to the local connections of its sender and its receiver, a group message to the
/// local connections of the group's members (the sender's included: none of them sent it).
fn from_elsewhere(s: &mut State, net: &mut Net, pdu: &Received<'_>) {
    let Some(m) = pdu.parse::<ImMsgData>(net) else {
        return;
    };
    if m.msg_id == 0 {
        log::debug!("route_server relayed a message without msg id: ignored");
    } else if MsgType::is_group(m.msg_type) {
        s.queue_group_message(net, m, 0);
    } else {
        deliver(s, net, pdu.header, m, None);
    }
}

/// Delivers a single message (attach_data cleared, seq 0) to the sender's connections here
/// other than `sender` and to the receiver's; encoded once, and only if someone gets it.
fn deliver(s: &State, net: &mut Net, header: &Header, mut m: ImMsgData, sender: Option<ConnId>) {
    let (from, to) = (m.from_user_id, m.to_session_id);
    let to_sender = s.users.has_conn_other_than(from, sender);
    let to_receiver = to != from && s.users.get(to).is_some();
    if !to_sender && !to_receiver {
        return;
    }
    m.attach_data = None;
    let delivery = Header {
        seq_num: 0,
        ..*header
    };
    let bytes = pdu_io::encode_relay(&delivery, &m);
    if to_sender {
        s.send_to_user(net, from, sender, &bytes);
    }
    if to_receiver {
        s.send_to_user(net, to, None, &bytes);
    }
}

/// `CID_MSG_READ_ACK` (spec §9.2.4): stored by db_proxy, told to the reader's other devices
/// here and, through route_server, elsewhere.
fn read_ack(s: &mut State, net: &mut Net, req: &Request<'_>) {
    let Some(mut ack) = s.relayed::<ImMsgDataReadAck>(net, req, "read acks") else {
        return;
    };
    let me = req.me;
    ack.user_id = me;
    s.links.db.relay(net, Pool::General, req.header, &ack);
    let notify = ImMsgDataReadNotify {
        user_id: me,
        session_id: ack.session_id,
        msg_id: ack.msg_id,
        session_type: ack.session_type,
    };
    let bytes = pdu_io::encode(0, &notify);
    s.send_to_user(net, me, Some(req.conn), &bytes);
    s.links.route.send_to_master(net, &bytes);
}

/// `CID_MSG_READ_NOTIFY` from another msg_server: to every connection of the reader here.
fn read_elsewhere(s: &mut State, net: &mut Net, pdu: &Received<'_>) {
    if let Some(m) = pdu.parse::<ImMsgDataReadNotify>(net) {
        s.send_to_user(net, m.user_id, None, &pdu.raw());
    }
}
