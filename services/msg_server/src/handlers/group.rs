//! Group family: group lists, info, creation, membership and shield (spec §9.2.7, §11.1,
//! §11.2). Each request is forwarded to db_proxy (rows of [`super::forwards`]); without a
//! db_proxy link the client gets the original's answer instead ([`Refusable`]).

use netlib::Net;
use tt_common::pdu_io;
use tt_proto::attach::split_pdu_attach;
use tt_proto::pb::base_define::GroupType;
use tt_proto::pb::group::{
    ImGroupChangeMemberNotify, ImGroupChangeMemberReq, ImGroupChangeMemberRsp, ImGroupCreateReq,
    ImGroupCreateRsp, ImGroupInfoListReq, ImGroupInfoListRsp, ImGroupShieldReq, ImGroupShieldRsp,
    ImNormalGroupListReq,
};
use tt_proto::values::RESULT_FAILED;

use crate::clients::Request;
use crate::state::{Family, Forwarded, State, rows};
use crate::wire::{Received, Routed};

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
        let mut rsp = Q::Reply::default();
        rsp.set_user_id(req.me);
        q.refuse(&mut rsp);
        pdu_io::reply(net, req.conn, req.header, &rsp);
    }
}

/// `CID_GROUP_CREATE_REQUEST`: a client may not create a normal group (ignored).
fn create(s: &mut State, net: &mut Net, req: &Request<'_>) {
    let Some(q) = req.parse::<ImGroupCreateReq>(net) else {
        return;
    };
    if q.group_type == GroupType::Normal as i32 {
        log::debug!("user {} asked to create a normal group: ignored", req.me);
        return;
    }
    forward_parsed_or_refuse(s, net, req, q);
}

/// `IMGroupInfoListRsp`: a client's group-info request (long attach without embedded data)
/// is routed back; the group-message fan-out form is not produced by this server.
fn info(s: &mut State, net: &mut Net, pdu: &Received<'_>) {
    let Some(mut m) = pdu.parse::<ImGroupInfoListRsp>(net) else {
        return;
    };
    let attach = m.attach_data.take().unwrap_or_default();
    match split_pdu_attach(&attach) {
        Ok((head, [])) => s.reply_to_client(net, m.user_id, head.handle, pdu.header, &m),
        Ok(_) => log::debug!("group-info reply carrying a message: ignored"),
        Err(e) => log::warn!("group-info reply with bad attach_data ({e}): dropped"),
    }
}

/// `CID_GROUP_CHANGE_MEMBER_RESPONSE`: back to the client; a successful change is told to
/// every member, here and through route_server elsewhere.
fn members_changed(s: &mut State, net: &mut Net, pdu: &Received<'_>) {
    let Some(m) = s.route_back::<ImGroupChangeMemberRsp>(net, pdu) else {
        return;
    };
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
    to_members(s, net, &notify, &bytes);
}

/// `CID_GROUP_CHANGE_MEMBER_NOTIFY` from another msg_server: to the members here.
fn members_changed_elsewhere(s: &mut State, net: &mut Net, pdu: &Received<'_>) {
    if let Some(m) = pdu.parse::<ImGroupChangeMemberNotify>(net) {
        to_members(s, net, &m, &pdu.raw());
    }
}

/// Sends a membership change to the connections here of the changed members, then of the
/// current ones.
fn to_members(s: &State, net: &mut Net, m: &ImGroupChangeMemberNotify, bytes: &[u8]) {
    for uid in m.chg_user_id_list.iter().chain(m.cur_user_id_list.iter()) {
        s.send_to_user(net, *uid, None, bytes);
    }
}
