//! Group family: group lists, info, creation, membership and shield (spec §9.2.7, §11.1,
//! §11.2), and the delivery of group messages once their group's members are known (§10.3
//! steps 5–8). Each request is forwarded to db_proxy (rows of [`super::forwards`]); without a
//! db_proxy link the client gets the original's answer instead ([`Refusable`]).

use std::collections::HashSet;

use netlib::{ConnId, Net};
use tt_common::metrics::PDUS_OUT;
use tt_common::pdu_io;
use tt_proto::attach::split_pdu_attach;
use tt_proto::ids::cid;
use tt_proto::pb::base_define::GroupType;
use tt_proto::pb::group::{
    ImGroupChangeMemberNotify, ImGroupChangeMemberReq, ImGroupChangeMemberRsp, ImGroupCreateReq,
    ImGroupCreateRsp, ImGroupInfoListReq, ImGroupInfoListRsp, ImGroupShieldReq, ImGroupShieldRsp,
    ImNormalGroupListReq,
};
use tt_proto::pb::message::ImMsgData;
use tt_proto::pb::server::ImGroupGetShieldReq;
use tt_proto::required::decode_checked;
use tt_proto::values::RESULT_FAILED;

use crate::clients::Request;
use crate::group_queue::Pending;
use crate::state::{Family, Forwarded, State, rows};
use crate::wire::{Received, Routed, handle_of};

pub const FAMILY: Family = Family {
    name: "group",
    client: rows! {
        CID_GROUP_NORMAL_LIST_REQUEST       => forward_or_refuse::<ImNormalGroupListReq>,
        CID_GROUP_INFO_REQUEST              => forward_or_refuse::<ImGroupInfoListReq>,
        CID_GROUP_CREATE_REQUEST            => create,
        CID_GROUP_CHANGE_MEMBER_REQUEST     => forward_or_refuse::<ImGroupChangeMemberReq>,
        CID_GROUP_SHIELD_GROUP_REQUEST      => forward_or_refuse::<ImGroupShieldReq>,
    },
    db: rows! {
        CID_GROUP_INFO_RESPONSE             => info,
        CID_GROUP_CHANGE_MEMBER_RESPONSE    => members_changed,
    },
    route: rows! {
        CID_GROUP_CHANGE_MEMBER_NOTIFY      => members_changed_elsewhere,
    },
    ..Family::EMPTY
};

/// A group request and the original's answer to it when no db_proxy link is up: its reply
/// with the requester's user id and what [`Refusable::refuse`] sets.
trait Refusable: Forwarded {
    fn refuse(self, rsp: &mut Self::Reply) {
        let _ = rsp;
    }
}

impl Refusable for ImNormalGroupListReq {}

impl Refusable for ImGroupInfoListReq {}

impl Refusable for ImGroupCreateReq {
    fn refuse(self, rsp: &mut ImGroupCreateRsp) {
        rsp.result_code = RESULT_FAILED;
        rsp.group_name = self.group_name;
    }
}

impl Refusable for ImGroupChangeMemberReq {
    fn refuse(self, rsp: &mut ImGroupChangeMemberRsp) {
        rsp.change_type = self.change_type;
        rsp.result_code = RESULT_FAILED;
        rsp.group_id = self.group_id;
    }
}

impl Refusable for ImGroupShieldReq {
    fn refuse(self, rsp: &mut ImGroupShieldRsp) {
        rsp.group_id = self.group_id;
        rsp.result_code = RESULT_FAILED;
    }
}

/// A group request: parsed (a bad body closes the client), then forwarded or refused.
fn forward_or_refuse<Q: Refusable>(s: &mut State, net: &mut Net, req: &Request<'_>) {
    if let Some(q) = req.parse::<Q>(net) {
        forward_parsed_or_refuse(s, net, req, q);
    }
}

fn forward_parsed_or_refuse<Q: Refusable>(s: &mut State, net: &mut Net, req: &Request<'_>, q: Q) {
    if s.link_for(Q::TARGET).is_some() {
        s.forward(net, req, q);
    } else {
        refuse(net, req, q);
    }
}

/// Answers a group request with its refusal.
fn refuse<Q: Refusable>(net: &mut Net, req: &Request<'_>, q: Q) {
    let mut rsp = Q::Reply::default();
    rsp.set_user_id(req.me);
    q.refuse(&mut rsp);
    pdu_io::reply(net, req.conn, req.header, &rsp);
}

/// `CID_GROUP_CREATE_REQUEST`: a client may create temporary groups only; a normal group is
/// refused (result 1).
fn create(s: &mut State, net: &mut Net, req: &Request<'_>) {
    let Some(q) = req.parse::<ImGroupCreateReq>(net) else {
        return;
    };
    if q.group_type == GroupType::Normal as i32 {
        log::info!("user {} asked to create a normal group: refused", req.me);
        refuse(net, req, q);
    } else {
        forward_parsed_or_refuse(s, net, req, q);
    }
}

/// `IMGroupInfoListRsp`: without embedded data, a client's group-info request (routed back);
/// with an embedded message, the members of a group whose messages wait here.
fn info(s: &mut State, net: &mut Net, pdu: &Received<'_>) {
    let Some(mut m) = pdu.parse::<ImGroupInfoListRsp>(net) else {
        return;
    };
    let attach = m.attach_data.take().unwrap_or_default();
    match split_pdu_attach(&attach) {
        Ok((head, [])) => s.reply_to_client(net, m.user_id, head.handle, pdu.header, &m),
        Ok((_, embedded)) => members_known(s, net, &m, embedded),
        Err(e) => log::warn!("group-info reply with bad attach_data ({e}): dropped"),
    }
}

/// The members of a group whose messages wait here (the embedded message is the first of
/// them): the messages the request covered are delivered, then the next request is sent.
fn members_known(s: &mut State, net: &mut Net, rsp: &ImGroupInfoListRsp, embedded: &[u8]) {
    let head = match decode_checked::<ImMsgData>(embedded) {
        Ok(m) => m,
        Err(e) => {
            log::warn!("group-info reply embedding a bad message ({e}): dropped");
            return;
        }
    };
    let group = head.to_session_id;
    let Some(batch) = s.group_msgs.answered(group, head.msg_id) else {
        log::debug!("members of group {group} for a request given up: ignored");
        return;
    };
    match rsp.group_info_list.iter().find(|g| g.group_id == group) {
        Some(info) => {
            let members = distinct(&info.group_member_list);
            let set: HashSet<u32> = members.iter().copied().collect();
            let batch: Vec<Pending> = batch
                .into_iter()
                .filter(|p| sent_by_member(p, &set))
                .collect();
            to_group(s, net, &batch, &members);
            for p in &batch {
                push_lookup(s, net, p, &members);
            }
        }
        None => log::info!(
            "group {group} is gone (no members): {} messages not delivered",
            batch.len()
        ),
    }
    s.ask_group_members(net, group);
}

/// Whether the sender of a group message is among its group's members; a sender that is not
/// gets nothing delivered (logged).
fn sent_by_member(p: &Pending, members: &HashSet<u32>) -> bool {
    let from = p.msg.from_user_id;
    let member = members.contains(&from);
    if !member {
        log::info!(
            "user {from} is not a member of group {}: message {} not delivered",
            p.msg.to_session_id,
            p.msg.msg_id
        );
    }
    member
}

/// Most bytes of group messages written to a connection together.
const CHUNK_BYTES: usize = 64 << 10;

/// One group message encoded for delivery (seq 0, no attach_data), with the connection `C` here
/// it was sent on (which does not get it).
struct Encoded<C = ConnId> {
    bytes: Vec<u8>,
    sent_on: Option<C>,
}

/// Delivers group messages, in their order, to every connection here of every member but the
/// one each was sent on. Each message is encoded once; a connection gets the messages of up to
/// [`CHUNK_BYTES`] in one write, the same bytes for every connection that gets all of them.
fn to_group(s: &State, net: &mut Net, batch: &[Pending], members: &[u32]) {
    let encoded: Vec<Encoded> = batch
        .iter()
        .map(|p| Encoded {
            bytes: pdu_io::encode(0, &p.msg),
            sent_on: s.users.conn_by_handle(p.msg.from_user_id, p.handle),
        })
        .collect();
    for chunk in chunks(&encoded, CHUNK_BYTES) {
        let all = joined(chunk, None);
        let senders: Vec<ConnId> = chunk.iter().filter_map(|e| e.sent_on).collect();
        for &uid in members {
            let Some(u) = s.users.get(uid) else {
                continue;
            };
            for (_, c) in u.conns() {
                if senders.contains(&c.conn) {
                    let own = Some(c.conn);
                    send_joined(net, c.conn, chunk, own, &joined(chunk, own));
                } else {
                    send_joined(net, c.conn, chunk, None, &all);
                }
            }
        }
    }
}

/// Consecutive runs of `encoded`, each of at most `max` bytes (a message alone may be more).
fn chunks<C>(encoded: &[Encoded<C>], max: usize) -> Vec<&[Encoded<C>]> {
    let mut runs = Vec::new();
    let (mut start, mut size) = (0, 0);
    for (i, e) in encoded.iter().enumerate() {
        if i > start && size + e.bytes.len() > max {
            runs.push(&encoded[start..i]);
            (start, size) = (i, 0);
        }
        size += e.bytes.len();
    }
    if start < encoded.len() {
        runs.push(&encoded[start..]);
    }
    runs
}

/// Whether a connection gets the message: all but those sent on `except`.
fn gets<C: PartialEq>(e: &Encoded<C>, except: Option<C>) -> bool {
    except.is_none() || e.sent_on != except
}

/// The messages of `chunk` one after the other, but those sent on `except`.
fn joined<C: PartialEq + Copy>(chunk: &[Encoded<C>], except: Option<C>) -> Vec<u8> {
    let mut out = Vec::new();
    for e in chunk.iter().filter(|e| gets(e, except)) {
        out.extend_from_slice(&e.bytes);
    }
    out
}

/// Writes `bytes`, the [`joined`] messages of `chunk` but those sent on `except`, to `conn`,
/// counting each PDU as sent.
fn send_joined(
    net: &mut Net,
    conn: ConnId,
    chunk: &[Encoded],
    except: Option<ConnId>,
    bytes: &[u8],
) {
    if bytes.is_empty() || !net.send(conn, bytes) {
        return;
    }
    for e in chunk.iter().filter(|e| gets(e, except)) {
        PDUS_OUT.count(cid::CID_MSG_DATA, e.bytes.len());
    }
}

/// Where a group message was sent (its handle is not 0), db_proxy is asked for the other
/// members' push shields (the start of the push chain, spec §10.3 step 8); a copy relayed from
/// another msg_server is not pushed again.
fn push_lookup(s: &mut State, net: &mut Net, p: &Pending, members: &[u32]) {
    if p.handle == 0 {
        return;
    }
    if let Some(template) = s.push_template(&p.msg) {
        let from = p.msg.from_user_id;
        let shields = ImGroupGetShieldReq {
            group_id: p.msg.to_session_id,
            user_id: members.iter().copied().filter(|&m| m != from).collect(),
            attach_data: Some(template),
        };
        s.push_lookup(net, None, &shields);
    }
}

/// `CID_GROUP_CHANGE_MEMBER_RESPONSE`: back to the client; a successful change is told to
/// every changed and current member, elsewhere through route_server and here on every
/// connection but the requester's.
fn members_changed(s: &mut State, net: &mut Net, pdu: &Received<'_>) {
    let Some(mut m) = pdu.parse::<ImGroupChangeMemberRsp>(net) else {
        return;
    };
    let attach = m.attach_data.take();
    let Some(handle) = handle_of(attach.as_deref(), pdu.header.command_id) else {
        return;
    };
    let requester = s.users.conn_by_handle(m.user_id, handle);
    s.reply_to_client(net, m.user_id, handle, pdu.header, &m);
    if m.result_code != 0 {
        return;
    }
    let notify = ImGroupChangeMemberNotify::from(m);
    let bytes = pdu_io::encode(0, &notify);
    s.links.route.send_to_master(net, &bytes);
    to_members(s, net, &notify, &bytes, requester);
}

/// `CID_GROUP_CHANGE_MEMBER_NOTIFY` from another msg_server: to the members here.
fn members_changed_elsewhere(s: &mut State, net: &mut Net, pdu: &Received<'_>) {
    if let Some(m) = pdu.parse::<ImGroupChangeMemberNotify>(net) {
        to_members(s, net, &m, &pdu.raw(), None);
    }
}

/// Sends a membership change once to each connection here of the changed and the current
/// members (a user in both lists too), except `except`.
fn to_members(
    s: &State,
    net: &mut Net,
    m: &ImGroupChangeMemberNotify,
    bytes: &[u8],
    except: Option<ConnId>,
) {
    let both: Vec<u32> = m
        .chg_user_id_list
        .iter()
        .chain(&m.cur_user_id_list)
        .copied()
        .collect();
    for uid in distinct(&both) {
        s.send_to_user(net, uid, except, bytes);
    }
}

/// The ids in their first order, each once.
fn distinct(ids: &[u32]) -> Vec<u32> {
    let mut seen = HashSet::with_capacity(ids.len());
    ids.iter().copied().filter(|id| seen.insert(*id)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A message of `n` bytes (all `fill`) sent on connection `on`.
    fn enc(fill: u8, n: usize, on: Option<u8>) -> Encoded<u8> {
        Encoded {
            bytes: vec![fill; n],
            sent_on: on,
        }
    }

    #[test]
    fn chunks_keep_the_order_within_their_bound() {
        let e = [
            enc(1, 40, None),
            enc(2, 40, None),
            enc(3, 100, None),
            enc(4, 10, None),
        ];
        let sizes: Vec<Vec<u8>> = chunks(&e, 80)
            .iter()
            .map(|c| c.iter().map(|m| m.bytes[0]).collect())
            .collect();
        assert_eq!(
            sizes,
            [vec![1, 2], vec![3], vec![4]],
            "a big message goes alone"
        );
        assert!(chunks::<u8>(&[], 80).is_empty());
        assert_eq!(chunks(&e, 1000).len(), 1);
    }

    #[test]
    fn a_connection_gets_every_message_but_those_sent_on_it() {
        let e = [enc(1, 2, Some(7)), enc(2, 1, Some(8)), enc(3, 2, Some(7))];
        assert_eq!(joined(&e, None), [1, 1, 2, 3, 3]);
        assert_eq!(joined(&e, Some(7)), [2], "7 sent the first and the last");
        assert_eq!(joined(&e, Some(8)), [1, 1, 3, 3]);
        assert_eq!(joined(&e, Some(9)), [1, 1, 2, 3, 3]);
        assert!(joined(&e[..1], Some(7)).is_empty());
        let relayed = [enc(4, 1, None)];
        assert_eq!(
            joined(&relayed, Some(7)),
            [4],
            "a relayed copy goes to every connection"
        );
    }
}
