//! Login family: login and its validation by db_proxy, logout, kicks, device tokens, and what
//! a client's close tells the other servers (spec §7, §9.2.1, §9.2.2, §11.2).
//!
//! A login goes *connected* → *validating* (request sent to db_proxy) → *open*. A successful
//! login kicks the user's older connections of the same kind (PC or mobile) here and, through
//! route_server, everywhere else; a kicked connection gets `CID_LOGIN_KICK_USER` and is then
//! closed (the close flushes the kick first).

use netlib::{CloseReason, ConnId, Net};
use tt_common::pdu_io;
use tt_proto::pb::base_define::{ClientType, KickReasonType, ResultType, UserInfo, UserStatType};
use tt_proto::pb::login::{
    ImDeviceTokenReq, ImDeviceTokenRsp, ImKickPcClientReq, ImKickPcClientRsp, ImKickUser,
    ImLoginReq, ImLoginRes, ImLogoutRsp,
};
use tt_proto::pb::server::{ImServerKickUser, ImValidateReq, ImValidateRsp};
use tt_proto::values::RESULT_OK;
use tt_proto::values::UserCntAction;

use crate::clients::{ConnState, Request};
use crate::links::db::Pool;
use crate::state::{Family, State, rows};
use crate::users::UserConn;
use crate::wire::{Attach, Received, handle_of, unix_now};

pub const FAMILY: Family = Family {
    name: "login",
    before_login: rows! {
        CID_LOGIN_REQ_USERLOGIN     => login,
    },
    client: rows! {
        CID_LOGIN_REQ_LOGINOUT      => logout,
        CID_LOGIN_REQ_DEVICETOKEN   => device_token,
        CID_LOGIN_REQ_KICKPCCLIENT  => kick_pc_client,
    },
    db: rows! {
        CID_OTHER_VALIDATE_RSP      => validated,
        CID_LOGIN_RES_DEVICETOKEN   => device_token_stored,
    },
    route: rows! {
        CID_OTHER_SERVER_KICK_USER  => server_kick,
    },
    ..Family::EMPTY
};

/// `CID_LOGIN_REQ_USERLOGIN` (spec §7.6): refused at once when a server link is down, else
/// sent to db_proxy for validation.
fn login(s: &mut State, net: &mut Net, req: &Request<'_>) {
    let Some(client) = s.clients.get(req.conn) else {
        return;
    };
    if client.state != ConnState::Connected {
        log::debug!("client {}: repeated login request ignored", req.peer);
        return;
    }
    let db = s.links.db.pick(Pool::Login);
    let refusal = if db.is_none() {
        Some(ResultType::RefuseReasonNoDbServer)
    } else if !s.links.login.available() {
        Some(ResultType::RefuseReasonNoLoginServer)
    } else if !s.links.route.available() {
        Some(ResultType::RefuseReasonNoRouteServer)
    } else {
        None
    };
    if let Some(code) = refusal {
        let code = code as i32;
        log::warn!(
            "login from {} refused with code {code}: a server link is down",
            req.peer
        );
        refuse(net, req.conn, req.header.seq_num, code, "服务端异常".into());
        return;
    }
    let Some(db) = db else { return };
    let Some(login) = req.parse::<ImLoginReq>(net) else {
        return;
    };
    let max = s.limits.max_pending;
    let now = net.now();
    let Some(client) = s.clients.get_mut(req.conn) else {
        return;
    };
    client.set_login_name(&login.user_name);
    client.client_type = login.client_type;
    client.online_status = if UserStatType::try_from(login.online_status).is_ok() {
        login.online_status
    } else {
        UserStatType::UserStatusOnline as i32
    };
    client.state = ConnState::Validating;
    client.begin_request(now, max);
    log::info!(
        "login request from {}: user {}, client type {:#x}",
        req.peer,
        String::from_utf8_lossy(&login.user_name),
        login.client_type
    );
    let validate = ImValidateReq {
        user_name: login.user_name,
        password: login.password,
        attach_data: Attach::Short.data(client.handle),
    };
    pdu_io::send(net, db, req.header.seq_num, &validate);
}

/// Answers a login with an error and closes the connection.
fn refuse(net: &mut Net, conn: ConnId, seq: u16, code: i32, text: Vec<u8>) {
    let res = ImLoginRes {
        server_time: unix_now(),
        result_code: code,
        result_string: Some(text),
        online_status: None,
        user_info: None,
    };
    pdu_io::send(net, conn, seq, &res);
    net.close(conn);
}

/// `CID_OTHER_VALIDATE_RSP` from db_proxy (spec §7.7): the login succeeds (older connections
/// of the same kind are kicked, login_server and route_server are told) or is refused.
fn validated(s: &mut State, net: &mut Net, pdu: &Received<'_>) {
    let Some(rsp) = pdu.parse::<ImValidateRsp>(net) else {
        return;
    };
    let Some(handle) = handle_of(rsp.attach_data.as_deref(), pdu.header.command_id) else {
        return;
    };
    let Some(conn) = s.clients.by_handle(handle) else {
        log::debug!("validate reply for closed handle {handle}: dropped");
        return;
    };
    let Some(client) = s.clients.get_mut(conn) else {
        return;
    };
    if client.state != ConnState::Validating || client.login_name() != rsp.user_name {
        log::debug!("validate reply for handle {handle} does not match its login: dropped");
        return;
    }
    client.end_request();
    let seq = pdu.header.seq_num;
    let user_info = match (rsp.result_code, rsp.user_info) {
        (0, Some(info)) => info,
        (code, _) => {
            log::info!(
                "login of {} from {} failed: db_proxy result {code}",
                String::from_utf8_lossy(&rsp.user_name),
                client.peer
            );
            let text = rsp.result_string.unwrap_or_default();
            let code = ResultType::RefuseReasonDbValidateFailed as i32;
            refuse(net, conn, seq, code, text);
            return;
        }
    };
    let uid = user_info.user_id;
    let client_type = client.client_type;
    let online_status = client.online_status;
    client.user_id = uid;
    log::info!(
        "user {uid} ({}) logged in from {}, client type {client_type:#x}",
        String::from_utf8_lossy(&rsp.user_name),
        client.peer
    );
    s.clients.set_open(conn);

    // Kick the older connections of the same kind here, then everywhere else.
    let user = s.users.get_or_create(uid);
    user.nick_name = user_info.user_nick_name.as_slice().into();
    let duplicate = KickReasonType::KickReasonDuplicateUser as i32;
    for v in user.same_kind_conns(client_type, Some(conn)) {
        kick(net, v, uid, duplicate);
    }
    let everywhere = ImServerKickUser {
        user_id: uid,
        client_type,
        reason: duplicate as u32,
    };
    s.links.route.send_msg_to_master(net, &everywhere);

    s.links.login.send_user_cnt(net, UserCntAction::Inc, uid);
    let online = UserStatType::UserStatusOnline;
    s.links
        .route
        .send_status_update(net, uid, online, client_type);
    let user_conn = UserConn {
        conn,
        client_type,
        online_status,
    };
    s.users.add_conn(uid, handle, user_conn);

    let info = UserInfo {
        sign_info: Some(user_info.sign_info.clone().unwrap_or_default()),
        ..user_info
    };
    let res = ImLoginRes {
        server_time: unix_now(),
        result_code: ResultType::RefuseReasonNone as i32,
        result_string: Some(rsp.result_string.unwrap_or_default()),
        online_status: Some(online_status),
        user_info: Some(info),
    };
    pdu_io::send(net, conn, seq, &res);
}

/// Sends `CID_LOGIN_KICK_USER` to a connection, then closes it (the kick is flushed first).
fn kick(net: &mut Net, conn: ConnId, user_id: u32, kick_reason: i32) {
    log::info!("kicking user {user_id} connection {conn:?} (reason {kick_reason})");
    let msg = ImKickUser {
        user_id,
        kick_reason,
    };
    pdu_io::send(net, conn, 0, &msg);
    net.close(conn);
}

/// `CID_OTHER_SERVER_KICK_USER` from route_server: a login elsewhere kicks the connections of
/// the same kind here.
fn server_kick(s: &mut State, net: &mut Net, pdu: &Received<'_>) {
    let Some(m) = pdu.parse::<ImServerKickUser>(net) else {
        return;
    };
    let victims = s
        .users
        .get(m.user_id)
        .map(|u| u.same_kind_conns(m.client_type, None))
        .unwrap_or_default();
    for v in victims {
        kick(net, v, m.user_id, m.reason as i32);
    }
}

/// `CID_LOGIN_REQ_LOGINOUT` (spec §7.8): the device token is cleared, the client answered and
/// closed.
fn logout(s: &mut State, net: &mut Net, req: &Request<'_>) {
    let clear = ImDeviceTokenReq {
        user_id: req.me,
        device_token: Vec::new(),
        client_type: None,
        attach_data: None,
    };
    let seq = req.header.seq_num;
    s.links.db.send(net, Pool::General, seq, &clear);
    pdu_io::reply(
        net,
        req.conn,
        req.header,
        &ImLogoutRsp {
            result_code: RESULT_OK,
        },
    );
    net.close(req.conn);
}

/// The client type of a logged-in connection if it is a mobile client; a PC client's request
/// is logged and ignored.
fn mobile_client(s: &State, req: &Request<'_>, what: &str) -> Option<i32> {
    let client_type = s.clients.get(req.conn)?.client_type;
    if ClientType::is_mobile(client_type) {
        Some(client_type)
    } else {
        log::debug!("{what} from a PC client of user {}: ignored", req.me);
        None
    }
}

/// `CID_LOGIN_REQ_DEVICETOKEN` (mobile clients only, spec §9.2.1).
fn device_token(s: &mut State, net: &mut Net, req: &Request<'_>) {
    let Some(client_type) = mobile_client(s, req, "device token") else {
        return;
    };
    let Some(mut token) = req.parse::<ImDeviceTokenReq>(net) else {
        return;
    };
    let rsp = ImDeviceTokenRsp {
        user_id: req.me,
        attach_data: None,
    };
    pdu_io::reply(net, req.conn, req.header, &rsp);
    token.user_id = req.me;
    token.client_type = Some(client_type);
    token.attach_data = None;
    s.links.db.relay(net, Pool::General, req.header, &token);
}

/// `CID_LOGIN_RES_DEVICETOKEN` from db_proxy: only logged.
fn device_token_stored(_: &mut State, _: &mut Net, _: &Received<'_>) {
    log::debug!("db_proxy answered a device-token request");
}

/// `CID_LOGIN_REQ_KICKPCCLIENT`: a mobile client logs out the user's PC clients (§9.2.2).
fn kick_pc_client(s: &mut State, net: &mut Net, req: &Request<'_>) {
    if req.parse::<ImKickPcClientReq>(net).is_none() {
        return;
    }
    if mobile_client(s, req, "kick-PC request").is_none() {
        return;
    }
    let me = req.me;
    let mac = ClientType::Mac as i32;
    let mobile_kick = KickReasonType::KickReasonMobileKick as i32;
    let victims = s
        .users
        .get(me)
        .map(|u| u.same_kind_conns(mac, Some(req.conn)))
        .unwrap_or_default();
    for v in victims {
        kick(net, v, me, mobile_kick);
    }
    let everywhere = ImServerKickUser {
        user_id: me,
        client_type: mac,
        reason: mobile_kick as u32,
    };
    s.links.route.send_msg_to_master(net, &everywhere);
    let rsp = ImKickPcClientRsp {
        user_id: me,
        result_code: RESULT_OK,
    };
    pdu_io::reply(net, req.conn, req.header, &rsp);
}

/// A client connection is gone (spec §7.10): forgotten; if it was logged in, it is reported
/// offline to login_server and route_server.
pub fn client_closed(s: &mut State, net: &mut Net, conn: ConnId, reason: CloseReason) {
    let Some(client) = s.clients.remove(conn) else {
        return;
    };
    log::debug!(
        "client {} ({conn:?}, user {}) closed: {reason:?}",
        client.peer,
        client.user_id
    );
    let uid = client.user_id;
    if client.state == ConnState::Open && s.users.remove_conn(uid, client.handle) {
        s.links.login.send_user_cnt(net, UserCntAction::Dec, uid);
        let offline = UserStatType::UserStatusOffline;
        s.links
            .route
            .send_status_update(net, uid, offline, client.client_type);
    }
}
