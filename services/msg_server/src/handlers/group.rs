//! Group family: group lists, info, creation, membership and shield (spec §9.2.7, §11.1,
//! §11.2), and the delivery of group messages once their group's members are known (§10.3
//! steps 5–8). Each request is forwarded to db_proxy (rows of [`super::forwards`]); without a
//! db_proxy link the client gets the original's answer instead ([`Refusable`]).

use std::collections::HashSet;

use netlib::{ConnId, Net};
use tt_common::pdu_io;
use tt_proto::attach::split_pdu_attach;
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
            for p in batch {
                to_group(s, net, p, &members, &set);
            }
        }
        None => log::info!(
            "group {group} is gone (no members): {} messages not delivered",
            batch.len()
        ),
    }
    s.ask_group_members(net, group);
}

/// Delivers a group message (seq 0, no attach_data) to every connection here of every member
/// but the one it was sent on. Where it was sent (its handle is not 0), db_proxy is then asked
/// for the other members' push shields (the start of the push chain, spec §10.3 step 8); a
/// copy relayed from another msg_server is not pushed again. A sender that is not a member gets
/// nothing delivered.
fn to_group(s: &mut State, net: &mut Net, p: Pending, members: &[u32], set: &HashSet<u32>) {
    let (from, group) = (p.msg.from_user_id, p.msg.to_session_id);
    if !set.contains(&from) {
        log::info!(
            "user {from} is not a member of group {group}: message {} not delivered",
            p.msg.msg_id
        );
        return;
    }
    let sending = s.users.conn_by_handle(from, p.handle);
    let bytes = pdu_io::encode(0, &p.msg);
    for &uid in members {
        s.send_to_user(net, uid, sending, &bytes);
    }
    if p.handle == 0 {
        return;
    }
    if let Some(template) = s.push_template(&p.msg) {
        let shields = ImGroupGetShieldReq {
            group_id: group,
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
    let notify = ImGroupChangeMemberNotify {
        user_id: m.user_id,
        change_type: m.change_type,
        group_id: m.group_id,
        cur_user_id_list: m.cur_user_id_list,
        chg_user_id_list: m.chg_user_id_list,
    };
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
