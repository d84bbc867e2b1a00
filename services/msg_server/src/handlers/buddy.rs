//! Buddy-list family: sessions, user status, avatar and signature changes, presence notices
//! (spec §9.2.6, §11.1, §11.2). Recent sessions, user info, all users and departments are
//! plain forwards (see [`super::forwards`]); this module holds what is more than that.

use netlib::Net;
use tt_common::pdu_io;
use tt_proto::attach::{
    ATTACH_TYPE_HANDLE, ATTACH_TYPE_HANDLE_AND_PDU_FOR_FILE, ATTACH_TYPE_PDU_FOR_PUSH,
    split_pdu_attach,
};
use tt_proto::pb::base_define::UserStatType;
use tt_proto::pb::buddy::{
    ImChangeAvatarRsp, ImChangeSignInfoRsp, ImRemoveSessionNotify, ImRemoveSessionReq,
    ImSignInfoChangedNotify, ImUsersStatRsp, ImpcLoginStatusNotify,
};
use tt_proto::pb::server::ImServerPcLoginStatusNotify;
use tt_proto::values::pc_login_status;

use crate::clients::Request;
use crate::state::{Family, State, rows};
use crate::wire::Received;

pub const FAMILY: Family = Family {
    name: "buddy",
    client: rows! {
        CID_BUDDY_LIST_REMOVE_SESSION_REQ       => remove_session,
    },
    db: rows! {
        CID_BUDDY_LIST_CHANGE_AVATAR_RESPONSE   => avatar_changed,
        CID_BUDDY_LIST_CHANGE_SIGN_INFO_RESPONSE => sign_info_changed,
    },
    route: rows! {
        CID_BUDDY_LIST_USERS_STATUS_RESPONSE    => users_status,
        CID_OTHER_LOGIN_STATUS_NOTIFY           => pc_login_status,
        CID_BUDDY_LIST_STATUS_NOTIFY            => status_elsewhere,
        CID_BUDDY_LIST_SIGN_INFO_CHANGED_NOTIFY => sign_info_elsewhere,
        CID_BUDDY_LIST_REMOVE_SESSION_NOTIFY    => session_removed_elsewhere,
    },
    ..Family::EMPTY
};

/// `CID_BUDDY_LIST_REMOVE_SESSION_REQ` (spec §9.2.6): forwarded to db_proxy; the removal
/// (of a single or a group session) is also told to the user's other connections, here and
/// elsewhere.
fn remove_session(s: &mut State, net: &mut Net, req: &Request<'_>) {
    let Some(rm) = s.relayed::<ImRemoveSessionReq>(net, req, "remove-session requests") else {
        return;
    };
    let notify = ImRemoveSessionNotify {
        user_id: req.me,
        session_type: rm.session_type,
        session_id: rm.session_id,
    };
    s.forward(net, req, rm);
    let bytes = pdu_io::encode(0, &notify);
    s.send_to_user(net, req.me, Some(req.conn), &bytes);
    s.links.route.send_to_master(net, &bytes);
}

/// `CID_BUDDY_LIST_CHANGE_AVATAR_RESPONSE`: the request carried no attach; the answer goes
/// to every connection of the user here.
fn avatar_changed(s: &mut State, net: &mut Net, pdu: &Received<'_>) {
    let Some(mut m) = pdu.parse::<ImChangeAvatarRsp>(net) else {
        return;
    };
    m.attach_data = None;
    let bytes = pdu_io::encode_relay(pdu.header, &m);
    s.send_to_user(net, m.user_id, None, &bytes);
}

/// `CID_BUDDY_LIST_CHANGE_SIGN_INFO_RESPONSE`: back to the client, and a successful change
/// is announced to every msg_server through route_server.
fn sign_info_changed(s: &mut State, net: &mut Net, pdu: &Received<'_>) {
    if let Some(m) = s.route_back::<ImChangeSignInfoRsp>(net, pdu)
        && m.result_code == 0
    {
        let notify = ImSignInfoChangedNotify {
            changed_user_id: m.user_id,
            sign_info: m.sign_info.unwrap_or_default(),
        };
        s.links.route.send_msg_to_master(net, &notify);
    }
}

/// `IMUsersStatRsp`: a client's status query comes back (attach type 1), the presence of a
/// push's receivers (type 4), or the receiver's presence a file transfer asked for (type 5).
fn users_status(s: &mut State, net: &mut Net, pdu: &Received<'_>) {
    let Some(mut m) = pdu.parse::<ImUsersStatRsp>(net) else {
        return;
    };
    let attach = m.attach_data.take().unwrap_or_default();
    let (head, embedded) = match split_pdu_attach(&attach) {
        Ok(split) => split,
        Err(e) => {
            log::warn!("route_server users-status reply with bad attach_data ({e}): dropped");
            return;
        }
    };
    match head.attach_type {
        ATTACH_TYPE_HANDLE => s.reply_to_client(net, m.user_id, head.handle, pdu.header, &m),
        ATTACH_TYPE_PDU_FOR_PUSH => {
            s.push_presence_known(net, pdu.conn, embedded, &m.user_stat_list);
        }
        ATTACH_TYPE_HANDLE_AND_PDU_FOR_FILE => {
            let online = m
                .user_stat_list
                .first()
                .is_some_and(|u| u.status == UserStatType::UserStatusOnline as i32);
            let seq = pdu.header.seq_num;
            s.file_receiver_status(net, seq, head.handle, embedded, online);
        }
        other => log::debug!("users-status reply with attach type {other}: ignored"),
    }
}

/// `CID_OTHER_LOGIN_STATUS_NOTIFY`: whether the user has a PC client online anywhere, told to
/// the user's mobile connections here.
fn pc_login_status(s: &mut State, net: &mut Net, pdu: &Received<'_>) {
    let Some(m) = pdu.parse::<ImServerPcLoginStatusNotify>(net) else {
        return;
    };
    let Some(user) = s.users.get_mut(m.user_id) else {
        return;
    };
    user.pc_login_status = m.login_status;
    let mobiles = user.conn_ids_of_kind(true, None);
    let login_stat = if m.login_status == pc_login_status::ONLINE {
        UserStatType::UserStatusOnline
    } else {
        UserStatType::UserStatusOffline
    };
    let notify = ImpcLoginStatusNotify {
        user_id: m.user_id,
        login_stat: login_stat as i32,
    };
    pdu_io::send_all(net, &mobiles, &pdu_io::encode(0, &notify));
}

/// `CID_BUDDY_LIST_STATUS_NOTIFY`: a user's status changed somewhere; every PC connection
/// here is told.
fn status_elsewhere(s: &mut State, net: &mut Net, pdu: &Received<'_>) {
    pdu_io::send_all(net, &s.users.all_conns(Some(false)), &pdu.raw());
}

/// `CID_BUDDY_LIST_SIGN_INFO_CHANGED_NOTIFY`: to every connection here.
fn sign_info_elsewhere(s: &mut State, net: &mut Net, pdu: &Received<'_>) {
    pdu_io::send_all(net, &s.users.all_conns(None), &pdu.raw());
}

/// `CID_BUDDY_LIST_REMOVE_SESSION_NOTIFY`: to every connection of the user here.
fn session_removed_elsewhere(s: &mut State, net: &mut Net, pdu: &Received<'_>) {
    if let Some(m) = pdu.parse::<ImRemoveSessionNotify>(net) {
        s.send_to_user(net, m.user_id, None, &pdu.raw());
    }
}
