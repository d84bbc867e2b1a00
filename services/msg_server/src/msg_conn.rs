//! Client connections: mirrors the original's `CMsgConn` (`MsgConn.cpp`).
//!
//! States: *connected* (accepted) → *validating* (login request sent to db_proxy) → *open*
//! (logged in). Before a successful login only the login request and heartbeats are accepted;
//! anything else closes the connection with a log line (the original's guard never fired,
//! quirk §15.6). A kicked connection gets `CID_LOGIN_KICK_USER` and is then closed (the close
//! flushes the kick first).
//!
//! Every connection has its own 32-bit handle, the value put in `attach_data` of the requests
//! it causes. Handles come from a counter and are not reused before it wraps (2³² connections
//! later), so a late reply can never reach a newer connection. Each connection may have at
//! most `MaxPendingDbRequests` requests waiting for a reply (older than
//! [`PENDING_TTL`] they are forgotten), and may send at most `MsgRateLimit` messages a second.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use netlib::{CloseReason, ConnId, Net};
use tt_common::pdu_io::{self, CLIENT_TIMEOUT, MOBILE_CLIENT_TIMEOUT};
use tt_proto::Command;
use tt_proto::attach::{ATTACH_TYPE_HANDLE, DbAttachData, PduAttachData};
use tt_proto::ids::{cid, sid};
use tt_proto::pb::base_define::UserInfo;
use tt_proto::pb::buddy::{
    ImAllUserReq, ImChangeAvatarReq, ImChangeSignInfoReq, ImDepartmentReq,
    ImRecentContactSessionReq, ImRemoveSessionNotify, ImRemoveSessionReq, ImUsersInfoReq,
    ImUsersStatReq,
};
use tt_proto::pb::file::{
    ImFileAddOfflineReq, ImFileDelOfflineReq, ImFileHasOfflineReq, ImFileHasOfflineRsp, ImFileReq,
    ImFileRsp,
};
use tt_proto::pb::group::{
    ImGroupChangeMemberReq, ImGroupChangeMemberRsp, ImGroupCreateReq, ImGroupCreateRsp,
    ImGroupInfoListReq, ImGroupInfoListRsp, ImGroupShieldReq, ImGroupShieldRsp,
    ImNormalGroupListReq, ImNormalGroupListRsp,
};
use tt_proto::pb::login::{
    ImDeviceTokenReq, ImDeviceTokenRsp, ImKickPcClientReq, ImKickPcClientRsp, ImKickUser,
    ImLoginReq, ImLoginRes, ImLogoutRsp, ImPushShieldReq, ImQueryPushShieldReq,
};
use tt_proto::pb::message::{
    ImClientTimeRsp, ImGetLatestMsgIdReq, ImGetMsgByIdReq, ImGetMsgListReq, ImMsgData,
    ImMsgDataAck, ImMsgDataReadAck, ImMsgDataReadNotify, ImUnreadMsgCntReq,
};
use tt_proto::pb::server::{ImServerKickUser, ImValidateReq, ImValidateRsp};
use tt_proto::pb::switch_service::Imp2pCmdMsg;
use tt_proto::pdu::Header;
use tt_proto::required::decode_checked;

use crate::db_serv_conn::Pool;
use crate::im_user::{UserConn, is_mobile};
use crate::login_conn::{USER_CNT_DEC, USER_CNT_INC};
use crate::route_conn::{USER_STATUS_OFFLINE, USER_STATUS_ONLINE};
use crate::server::{MsgServer, pdu_bytes, send_raw, send_with_header, unix_now};

/// A login not completed this long after the TCP accept closes the connection.
pub const LOGIN_TIMEOUT: Duration = Duration::from_secs(15);
/// A request without a reply for this long no longer counts against the client's limit.
pub const PENDING_TTL: Duration = Duration::from_secs(60);

/// `IMLoginRes.result_code` values (`ResultType`).
pub const REFUSE_NO_DB_SERVER: i32 = 3;
pub const REFUSE_NO_LOGIN_SERVER: i32 = 4;
pub const REFUSE_NO_ROUTE_SERVER: i32 = 5;
pub const REFUSE_DB_VALIDATE_FAILED: i32 = 6;

/// Kick reasons (`KickReasonType`).
pub const KICK_DUPLICATE_USER: i32 = 1;
pub const KICK_MOBILE_KICK: i32 = 2;

const CLIENT_TYPE_MAC: i32 = 0x02;

/// Message types 0x11/0x12 are group messages.
pub fn is_group_msg(msg_type: i32) -> bool {
    msg_type == 0x11 || msg_type == 0x12
}

/// Login progress of a client connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnState {
    Connected,
    Validating,
    Open,
}

/// The per-connection data of `CMsgConn`.
#[derive(Debug)]
pub struct ClientConn {
    pub handle: u32,
    pub peer: SocketAddr,
    pub state: ConnState,
    pub login_name: Vec<u8>,
    pub user_id: u32,
    pub client_type: i32,
    pub client_version: Vec<u8>,
    pub online_status: i32,
    pub accepted_at: Instant,
    pub msgs_this_second: u32,
    /// P2P commands, read acks and remove-session requests this second (each is relayed to
    /// other users' connections and every msg_server: `RelayRateLimit`).
    pub relays_this_second: u32,
    /// Requests and messages dropped by the limits since the last tick: only the first of a
    /// second is logged, the tick logs how many followed (a flood must not flood the log).
    pub drops_this_second: u32,
    /// When each request still awaiting a reply was sent (oldest first).
    pending: VecDeque<Instant>,
}

impl ClientConn {
    pub fn new(handle: u32, now: Instant, peer: SocketAddr) -> ClientConn {
        ClientConn {
            handle,
            peer,
            state: ConnState::Connected,
            login_name: Vec::new(),
            user_id: 0,
            client_type: 0,
            client_version: Vec::new(),
            online_status: 2,
            accepted_at: now,
            msgs_this_second: 0,
            relays_this_second: 0,
            drops_this_second: 0,
            pending: VecDeque::new(),
        }
    }

    /// Counts a request that expects a reply; false if the client already has `max` waiting.
    pub fn begin_request(&mut self, now: Instant, max: usize) -> bool {
        self.expire_pending(now);
        if self.pending.len() >= max {
            return false;
        }
        self.pending.push_back(now);
        true
    }

    /// Counts a request dropped by a limit; true if it is the first since the last tick (the
    /// one to log).
    pub fn note_drop(&mut self) -> bool {
        self.drops_this_second = self.drops_this_second.saturating_add(1);
        self.drops_this_second == 1
    }

    /// A reply arrived for this client.
    pub fn end_request(&mut self) {
        self.pending.pop_front();
    }

    fn expire_pending(&mut self, now: Instant) {
        while self
            .pending
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) > PENDING_TTL)
        {
            self.pending.pop_front();
        }
    }
}

/// Client handles (the `handle` of attach_data) ↔ connections.
#[derive(Debug, Default)]
pub struct HandleTable {
    next: u32,
    map: HashMap<u32, ConnId>,
}

impl HandleTable {
    /// A fresh handle for `conn` (never 0, never one in use).
    pub fn insert(&mut self, conn: ConnId) -> u32 {
        loop {
            self.next = self.next.wrapping_add(1);
            if self.next != 0 && !self.map.contains_key(&self.next) {
                self.map.insert(self.next, conn);
                return self.next;
            }
        }
    }

    pub fn get(&self, handle: u32) -> Option<ConnId> {
        self.map.get(&handle).copied()
    }

    pub fn remove(&mut self, handle: u32) {
        self.map.remove(&handle);
    }
}

/// Requests and replies that carry the requester's `user_id` and an `attach_data`.
pub trait Routed {
    fn user_id(&self) -> u32;
    fn set_user_id(&mut self, id: u32);
    fn attach_mut(&mut self) -> &mut Option<Vec<u8>>;
}

macro_rules! routed {
    ($($t:ty),* $(,)?) => {
        $(impl Routed for $t {
            fn user_id(&self) -> u32 {
                self.user_id
            }
            fn set_user_id(&mut self, id: u32) {
                self.user_id = id;
            }
            fn attach_mut(&mut self) -> &mut Option<Vec<u8>> {
                &mut self.attach_data
            }
        })*
    };
}

routed!(
    ImPushShieldReq,
    ImQueryPushShieldReq,
    ImUnreadMsgCntReq,
    ImGetMsgListReq,
    ImGetLatestMsgIdReq,
    ImGetMsgByIdReq,
    ImRecentContactSessionReq,
    ImUsersInfoReq,
    ImRemoveSessionReq,
    ImAllUserReq,
    ImUsersStatReq,
    ImChangeAvatarReq,
    ImChangeSignInfoReq,
    ImDepartmentReq,
    ImNormalGroupListReq,
    ImGroupInfoListReq,
    ImGroupCreateReq,
    ImGroupChangeMemberReq,
    ImGroupShieldReq,
    ImFileHasOfflineReq,
    ImDeviceTokenReq,
    tt_proto::pb::login::ImPushShieldRsp,
    tt_proto::pb::login::ImQueryPushShieldRsp,
    tt_proto::pb::message::ImUnreadMsgCntRsp,
    tt_proto::pb::message::ImGetMsgListRsp,
    tt_proto::pb::message::ImGetMsgByIdRsp,
    tt_proto::pb::message::ImGetLatestMsgIdRsp,
    tt_proto::pb::buddy::ImRecentContactSessionRsp,
    tt_proto::pb::buddy::ImAllUserRsp,
    tt_proto::pb::buddy::ImUsersInfoRsp,
    tt_proto::pb::buddy::ImRemoveSessionRsp,
    tt_proto::pb::buddy::ImDepartmentRsp,
    tt_proto::pb::buddy::ImChangeSignInfoRsp,
    tt_proto::pb::buddy::ImUsersStatRsp,
    ImNormalGroupListRsp,
    ImGroupInfoListRsp,
    ImGroupCreateRsp,
    ImGroupChangeMemberRsp,
    ImGroupShieldRsp,
    ImFileHasOfflineRsp,
);

/// Where a forwarded request goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    Db(Pool),
    MasterRoute,
}

const DB_LOGIN: Target = Target::Db(Pool::Login);
const DB_GENERAL: Target = Target::Db(Pool::General);
const MASTER_ROUTE: Target = Target::MasterRoute;

/// A client request being handled.
#[derive(Clone, Copy)]
struct Req<'a> {
    conn: ConnId,
    header: &'a Header,
    body: &'a [u8],
}

/// The attach_data put in a forwarded request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Attach {
    /// No attach, no reply expected.
    None,
    /// 12 bytes `{1, handle, 0}`.
    Short,
    /// 16 bytes `{1, handle, 0, 0}`.
    Long,
}

impl MsgServer {
    /// A PDU from a client connection.
    pub(crate) fn on_client_pdu(
        &mut self,
        net: &mut Net,
        conn: ConnId,
        header: &Header,
        body: &[u8],
    ) {
        let req = Req { conn, header, body };
        let Some(client) = self.clients.get(&conn) else {
            return;
        };
        let cmd = header.command_id;
        match cmd {
            cid::CID_OTHER_HEARTBEAT => {
                send_raw(net, conn, header, body);
                return;
            }
            cid::CID_LOGIN_REQ_USERLOGIN => {
                self.on_login_req(net, conn, header, body);
                return;
            }
            _ => {}
        }
        if client.state != ConnState::Open {
            log::warn!(
                "closing client {} (handle {}): command {cmd:#06x} before a successful login",
                client.peer,
                client.handle
            );
            net.close(conn);
            return;
        }
        let me = client.user_id;
        match cmd {
            cid::CID_LOGIN_REQ_LOGINOUT => self.on_logout(net, conn, header),
            cid::CID_LOGIN_REQ_DEVICETOKEN => self.on_device_token(net, conn, header, body),
            cid::CID_LOGIN_REQ_KICKPCCLIENT => self.on_kick_pc_client(net, conn, header, body),
            cid::CID_LOGIN_REQ_PUSH_SHIELD => {
                self.forward::<ImPushShieldReq>(net, req, DB_GENERAL, Attach::Long);
            }
            cid::CID_LOGIN_REQ_QUERY_PUSH_SHIELD => {
                self.forward::<ImQueryPushShieldReq>(net, req, DB_GENERAL, Attach::Long);
            }
            cid::CID_MSG_DATA => self.on_msg_data(net, conn, header, body),
            cid::CID_MSG_DATA_ACK => {
                // Delivery acks need no action (the original only kept loss statistics).
                self.parse_client::<ImMsgDataAck>(net, conn, header, body);
            }
            cid::CID_MSG_READ_ACK => {
                if self.relay_allowed(conn, "read acks") {
                    self.on_read_ack(net, conn, header, body)
                }
            }
            cid::CID_MSG_TIME_REQUEST => {
                pdu_io::send(
                    net,
                    conn,
                    header.seq_num,
                    &ImClientTimeRsp {
                        server_time: unix_now(),
                    },
                );
            }
            cid::CID_MSG_UNREAD_CNT_REQUEST => {
                self.forward::<ImUnreadMsgCntReq>(net, req, DB_LOGIN, Attach::Short);
            }
            cid::CID_MSG_LIST_REQUEST => {
                self.forward::<ImGetMsgListReq>(net, req, DB_LOGIN, Attach::Short);
            }
            cid::CID_MSG_GET_LATEST_MSG_ID_REQ => {
                self.forward::<ImGetLatestMsgIdReq>(net, req, DB_GENERAL, Attach::Short);
            }
            cid::CID_MSG_GET_BY_MSG_ID_REQ => {
                self.forward::<ImGetMsgByIdReq>(net, req, DB_LOGIN, Attach::Short);
            }
            cid::CID_SWITCH_P2P_CMD => {
                if self.relay_allowed(conn, "P2P commands") {
                    self.on_p2p_cmd(net, conn, header, body, me)
                }
            }
            cid::CID_BUDDY_LIST_RECENT_CONTACT_SESSION_REQUEST => {
                self.forward::<ImRecentContactSessionReq>(net, req, DB_LOGIN, Attach::Short);
            }
            cid::CID_BUDDY_LIST_USER_INFO_REQUEST => {
                self.forward::<ImUsersInfoReq>(net, req, DB_LOGIN, Attach::Short);
            }
            cid::CID_BUDDY_LIST_REMOVE_SESSION_REQ => {
                if self.relay_allowed(conn, "remove-session requests") {
                    self.on_remove_session(net, conn, header, body, me)
                }
            }
            cid::CID_BUDDY_LIST_ALL_USER_REQUEST => {
                self.forward::<ImAllUserReq>(net, req, DB_GENERAL, Attach::Short);
            }
            cid::CID_BUDDY_LIST_USERS_STATUS_REQUEST => {
                self.forward::<ImUsersStatReq>(net, req, MASTER_ROUTE, Attach::Long);
            }
            cid::CID_BUDDY_LIST_CHANGE_AVATAR_REQUEST => {
                self.forward::<ImChangeAvatarReq>(net, req, DB_GENERAL, Attach::None);
            }
            cid::CID_BUDDY_LIST_CHANGE_SIGN_INFO_REQUEST => {
                self.forward::<ImChangeSignInfoReq>(net, req, DB_GENERAL, Attach::Long);
            }
            cid::CID_BUDDY_LIST_DEPARTMENT_REQUEST => {
                self.forward::<ImDepartmentReq>(net, req, DB_GENERAL, Attach::Short);
            }
            cid::CID_GROUP_NORMAL_LIST_REQUEST
            | cid::CID_GROUP_INFO_REQUEST
            | cid::CID_GROUP_CREATE_REQUEST
            | cid::CID_GROUP_CHANGE_MEMBER_REQUEST
            | cid::CID_GROUP_SHIELD_GROUP_REQUEST => {
                self.on_group_request(net, conn, header, body, me)
            }
            cid::CID_FILE_REQUEST => {
                // No file_server links here: the original's "no file server" answer.
                if let Some(req) = self.parse_client::<ImFileReq>(net, conn, header, body) {
                    let rsp = ImFileRsp {
                        result_code: 1,
                        from_user_id: me,
                        to_user_id: req.to_user_id,
                        file_name: req.file_name,
                        task_id: Vec::new(),
                        ip_addr_list: Vec::new(),
                        trans_mode: req.trans_mode,
                    };
                    pdu_io::send(net, conn, header.seq_num, &rsp);
                }
            }
            cid::CID_FILE_HAS_OFFLINE_REQ => {
                if self.pick_db(Pool::General).is_none() {
                    let rsp = ImFileHasOfflineRsp {
                        user_id: me,
                        ..Default::default()
                    };
                    pdu_io::send(net, conn, header.seq_num, &rsp);
                } else {
                    self.forward::<ImFileHasOfflineReq>(net, req, DB_GENERAL, Attach::Short);
                }
            }
            cid::CID_FILE_ADD_OFFLINE_REQ => {
                if let Some(mut req) =
                    self.parse_client::<ImFileAddOfflineReq>(net, conn, header, body)
                {
                    req.from_user_id = me;
                    self.send_to_db(net, Pool::General, header, &req);
                }
            }
            cid::CID_FILE_DEL_OFFLINE_REQ => {
                if let Some(mut req) =
                    self.parse_client::<ImFileDelOfflineReq>(net, conn, header, body)
                {
                    req.from_user_id = me;
                    self.send_to_db(net, Pool::General, header, &req);
                }
            }
            other => {
                log::debug!("client {me} sent unhandled command {other:#06x}: ignored");
            }
        }
    }

    /// Strict parse of a client's request; a body that does not parse closes the connection.
    fn parse_client<M: Command>(
        &mut self,
        net: &mut Net,
        conn: ConnId,
        header: &Header,
        body: &[u8],
    ) -> Option<M> {
        match decode_checked::<M>(body) {
            Ok(m) => Some(m),
            Err(e) => {
                log::warn!(
                    "closing client {} ({conn:?}): bad {:#06x} body: {e}",
                    crate::server::peer_label(self, conn),
                    header.command_id
                );
                net.close(conn);
                None
            }
        }
    }

    /// Sends a modified client request to db_proxy (no reply expected); dropped without a link.
    fn send_to_db<M: prost::Message>(
        &mut self,
        net: &mut Net,
        pool: Pool,
        header: &Header,
        msg: &M,
    ) {
        match self.pick_db(pool) {
            Some(db) => {
                send_with_header(net, db, header, msg);
            }
            None => log::debug!("no db_proxy link: {:#06x} dropped", header.command_id),
        }
    }

    /// Forwards a client request with `user_id` set to the logged-in user and the client's
    /// handle in attach_data; the reply comes back through `reply_to_client`.
    fn forward<M: Command + Routed>(
        &mut self,
        net: &mut Net,
        req: Req<'_>,
        target: Target,
        attach: Attach,
    ) {
        let Req { conn, header, body } = req;
        if let Some(msg) = self.parse_client::<M>(net, conn, header, body) {
            self.forward_parsed(net, conn, header, msg, target, attach);
        }
    }

    /// [`MsgServer::forward`] for a request already parsed.
    fn forward_parsed<M: Command + Routed>(
        &mut self,
        net: &mut Net,
        conn: ConnId,
        header: &Header,
        mut msg: M,
        target: Target,
        attach: Attach,
    ) {
        let dest = match target {
            Target::Db(pool) => self.pick_db(pool),
            Target::MasterRoute => self.route.master,
        };
        let Some(dest) = dest else {
            log::debug!("no {target:?} link: {:#06x} dropped", header.command_id);
            return;
        };
        let max = self.cfg.max_pending_requests;
        let now = net.now();
        let Some(client) = self.clients.get_mut(&conn) else {
            return;
        };
        if attach != Attach::None && !client.begin_request(now, max) {
            if client.note_drop() {
                log::warn!(
                    "client {} (user {}) has {max} requests waiting: {:#06x} dropped",
                    client.peer,
                    client.user_id,
                    header.command_id
                );
            }
            return;
        }
        msg.set_user_id(client.user_id);
        *msg.attach_mut() = match attach {
            Attach::None => None,
            Attach::Short => Some(DbAttachData::new(ATTACH_TYPE_HANDLE, client.handle).to_vec()),
            Attach::Long => {
                Some(PduAttachData::new(ATTACH_TYPE_HANDLE, client.handle, Vec::new()).to_vec())
            }
        };
        send_with_header(net, dest, header, &msg);
    }

    /// Sends a reply (already without attach_data) to connection `handle` of `user_id`, under
    /// the reply's header. Dropped when that connection is gone or not logged in.
    pub(crate) fn reply_to_client<M: prost::Message>(
        &mut self,
        net: &mut Net,
        user_id: u32,
        handle: u32,
        header: &Header,
        msg: &M,
    ) {
        let Some(conn) = self.users.conn_by_handle(user_id, handle) else {
            log::debug!(
                "reply {:#06x} for user {user_id} handle {handle}: connection gone",
                header.command_id
            );
            return;
        };
        if let Some(c) = self.clients.get_mut(&conn) {
            c.end_request();
        }
        send_with_header(net, conn, header, msg);
    }

    fn refuse_login(&mut self, net: &mut Net, conn: ConnId, seq: u16, code: i32, text: Vec<u8>) {
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

    /// `CID_LOGIN_REQ_USERLOGIN` (spec §7.6).
    fn on_login_req(&mut self, net: &mut Net, conn: ConnId, header: &Header, body: &[u8]) {
        let Some(client) = self.clients.get(&conn) else {
            return;
        };
        if client.state != ConnState::Connected {
            log::debug!("client {}: repeated login request ignored", client.peer);
            return;
        }
        let peer = client.peer;
        let db = self.pick_db(Pool::Login);
        let refusal = if db.is_none() {
            Some(REFUSE_NO_DB_SERVER)
        } else if !self.login.available() {
            Some(REFUSE_NO_LOGIN_SERVER)
        } else if !self.route.available() {
            Some(REFUSE_NO_ROUTE_SERVER)
        } else {
            None
        };
        if let Some(code) = refusal {
            log::warn!("login from {peer} refused with code {code}: a server link is down");
            self.refuse_login(
                net,
                conn,
                header.seq_num,
                code,
                "服务端异常".as_bytes().to_vec(),
            );
            return;
        }
        let Some(db) = db else { return };
        let Some(req) = self.parse_client::<ImLoginReq>(net, conn, header, body) else {
            return;
        };
        let max = self.cfg.max_pending_requests;
        let now = net.now();
        let Some(client) = self.clients.get_mut(&conn) else {
            return;
        };
        client.login_name = req.user_name.clone();
        client.client_type = req.client_type;
        client.client_version = req.client_version.unwrap_or_default();
        client.online_status = if (1..=3).contains(&req.online_status) {
            req.online_status
        } else {
            1
        };
        client.state = ConnState::Validating;
        client.begin_request(now, max);
        log::info!(
            "login request from {peer}: user {}, client type {:#x}",
            String::from_utf8_lossy(&req.user_name),
            req.client_type
        );
        let validate = ImValidateReq {
            user_name: req.user_name,
            password: req.password,
            attach_data: Some(DbAttachData::new(ATTACH_TYPE_HANDLE, client.handle).to_vec()),
        };
        pdu_io::send(net, db, header.seq_num, &validate);
    }

    /// `CID_OTHER_VALIDATE_RSP` from db_proxy (spec §7.7).
    pub(crate) fn on_validate_rsp(
        &mut self,
        net: &mut Net,
        link: ConnId,
        header: &Header,
        body: &[u8],
    ) {
        let Some(rsp) = crate::route_conn::parse::<ImValidateRsp>(link, header, body) else {
            return;
        };
        let handle = match DbAttachData::decode(rsp.attach_data.as_deref().unwrap_or_default()) {
            Ok(a) => a.handle,
            Err(e) => {
                log::warn!("validate reply with bad attach_data ({e}): dropped");
                return;
            }
        };
        let Some(conn) = self.handles.get(handle) else {
            log::debug!("validate reply for closed handle {handle}: dropped");
            return;
        };
        let Some(client) = self.clients.get_mut(&conn) else {
            return;
        };
        if client.state != ConnState::Validating || client.login_name != rsp.user_name {
            log::debug!("validate reply for handle {handle} does not match its login: dropped");
            return;
        }
        client.end_request();
        let seq = header.seq_num;
        let user_info = match (rsp.result_code, rsp.user_info) {
            (0, Some(info)) => info,
            (code, _) => {
                log::info!(
                    "login of {} from {} failed: db_proxy result {code}",
                    String::from_utf8_lossy(&rsp.user_name),
                    client.peer
                );
                let text = rsp.result_string.unwrap_or_default();
                self.refuse_login(net, conn, seq, REFUSE_DB_VALIDATE_FAILED, text);
                return;
            }
        };
        let uid = user_info.user_id;
        let client_type = client.client_type;
        let online_status = client.online_status;
        client.user_id = uid;
        client.state = ConnState::Open;
        log::info!(
            "user {uid} ({}) logged in from {}, client type {client_type:#x}",
            String::from_utf8_lossy(&rsp.user_name),
            client.peer
        );

        // Kick the older connections of the same kind here, then everywhere else.
        let user = self.users.get_or_create(uid);
        user.nick_name = user_info.user_nick_name.clone();
        let victims = user.same_kind_conns(client_type, Some(conn));
        for v in victims {
            self.kick(net, v, uid, KICK_DUPLICATE_USER);
        }
        self.route.send_msg_to_master(
            net,
            0,
            &ImServerKickUser {
                user_id: uid,
                client_type,
                reason: KICK_DUPLICATE_USER as u32,
            },
        );

        self.login.send_user_cnt(net, USER_CNT_INC, uid);
        self.route
            .send_status_update(net, uid, USER_STATUS_ONLINE, client_type);
        self.users.add_conn(
            uid,
            handle,
            UserConn {
                conn,
                client_type,
                online_status,
            },
        );

        let info = UserInfo {
            sign_info: Some(user_info.sign_info.clone().unwrap_or_default()),
            ..user_info
        };
        let res = ImLoginRes {
            server_time: unix_now(),
            result_code: 0,
            result_string: Some(rsp.result_string.unwrap_or_default()),
            online_status: Some(online_status),
            user_info: Some(info),
        };
        pdu_io::send(net, conn, seq, &res);
    }

    /// Sends `CID_LOGIN_KICK_USER` to a connection, then closes it (the kick is flushed first).
    pub(crate) fn kick(&mut self, net: &mut Net, conn: ConnId, user_id: u32, reason: i32) {
        log::info!("kicking user {user_id} connection {conn:?} (reason {reason})");
        pdu_io::send(
            net,
            conn,
            0,
            &ImKickUser {
                user_id,
                kick_reason: reason,
            },
        );
        net.close(conn);
    }

    /// A client connection is gone (spec §7.10): forget it; if it was logged in, report it
    /// offline to login_server and route_server.
    pub(crate) fn on_client_close(
        &mut self,
        net: &mut Net,
        conn: ConnId,
        client: ClientConn,
        reason: CloseReason,
    ) {
        self.handles.remove(client.handle);
        log::debug!(
            "client {} ({conn:?}, user {}) closed: {reason:?}",
            client.peer,
            client.user_id
        );
        if client.state == ConnState::Open && self.users.remove_conn(client.user_id, client.handle)
        {
            self.login.send_user_cnt(net, USER_CNT_DEC, client.user_id);
            self.route.send_status_update(
                net,
                client.user_id,
                USER_STATUS_OFFLINE,
                client.client_type,
            );
        }
    }

    /// Per-second checks of every client connection (spec §7.3).
    pub(crate) fn check_clients(&mut self, net: &mut Net) {
        let now = net.now();
        let mut close = Vec::new();
        for (&conn, c) in self.clients.iter_mut() {
            c.msgs_this_second = 0;
            c.relays_this_second = 0;
            if c.drops_this_second > 1 {
                log::warn!(
                    "client {} (user {}): {} more requests dropped by the limits",
                    c.peer,
                    c.user_id,
                    c.drops_this_second - 1
                );
            }
            c.drops_this_second = 0;
            c.expire_pending(now);
            let Some(activity) = net.activity(conn) else {
                continue;
            };
            let limit = if is_mobile(c.client_type) {
                MOBILE_CLIENT_TIMEOUT
            } else {
                CLIENT_TIMEOUT
            };
            if now.saturating_duration_since(activity.last_recv) > limit {
                log::info!(
                    "closing client {} (user {}): idle for {limit:?}",
                    c.peer,
                    c.user_id
                );
                close.push(conn);
            } else if c.state != ConnState::Open
                && now.saturating_duration_since(c.accepted_at) > LOGIN_TIMEOUT
            {
                log::info!(
                    "closing client {}: no login within {LOGIN_TIMEOUT:?}",
                    c.peer
                );
                close.push(conn);
            }
        }
        for conn in close {
            net.close(conn);
        }
    }

    /// `CID_LOGIN_REQ_LOGINOUT` (spec §7.8).
    fn on_logout(&mut self, net: &mut Net, conn: ConnId, header: &Header) {
        let me = self.clients.get(&conn).map_or(0, |c| c.user_id);
        let clear = ImDeviceTokenReq {
            user_id: me,
            device_token: Vec::new(),
            client_type: None,
            attach_data: None,
        };
        let h = Header::new(
            sid::SID_LOGIN,
            cid::CID_LOGIN_REQ_DEVICETOKEN,
            header.seq_num,
        );
        self.send_to_db(net, Pool::General, &h, &clear);
        pdu_io::send(net, conn, header.seq_num, &ImLogoutRsp { result_code: 0 });
        net.close(conn);
    }

    /// `CID_LOGIN_REQ_DEVICETOKEN` (mobile clients only, spec §9.2.1).
    fn on_device_token(&mut self, net: &mut Net, conn: ConnId, header: &Header, body: &[u8]) {
        let Some((me, client_type)) = self.clients.get(&conn).map(|c| (c.user_id, c.client_type))
        else {
            return;
        };
        if !is_mobile(client_type) {
            log::debug!("device token from a PC client of user {me}: ignored");
            return;
        }
        let Some(mut req) = self.parse_client::<ImDeviceTokenReq>(net, conn, header, body) else {
            return;
        };
        let rsp = ImDeviceTokenRsp {
            user_id: me,
            attach_data: None,
        };
        pdu_io::send(net, conn, header.seq_num, &rsp);
        req.user_id = me;
        req.client_type = Some(client_type);
        req.attach_data = None;
        self.send_to_db(net, Pool::General, header, &req);
    }

    /// `CID_LOGIN_REQ_KICKPCCLIENT`: a mobile client logs out the user's PC clients (§9.2.2).
    fn on_kick_pc_client(&mut self, net: &mut Net, conn: ConnId, header: &Header, body: &[u8]) {
        if self
            .parse_client::<ImKickPcClientReq>(net, conn, header, body)
            .is_none()
        {
            return;
        }
        let Some((me, client_type)) = self.clients.get(&conn).map(|c| (c.user_id, c.client_type))
        else {
            return;
        };
        if !is_mobile(client_type) {
            log::debug!("kick-PC request from a PC client of user {me}: ignored");
            return;
        }
        let victims = self
            .users
            .get(me)
            .map(|u| u.same_kind_conns(CLIENT_TYPE_MAC, Some(conn)))
            .unwrap_or_default();
        for v in victims {
            self.kick(net, v, me, KICK_MOBILE_KICK);
        }
        self.route.send_msg_to_master(
            net,
            0,
            &ImServerKickUser {
                user_id: me,
                client_type: CLIENT_TYPE_MAC,
                reason: KICK_MOBILE_KICK as u32,
            },
        );
        let rsp = ImKickPcClientRsp {
            user_id: me,
            result_code: 0,
        };
        pdu_io::send(net, conn, header.seq_num, &rsp);
    }

    /// `CID_MSG_DATA` from a client (spec §10.1): checked, stamped and sent to db_proxy; the
    /// ack and the deliveries follow its reply.
    fn on_msg_data(&mut self, net: &mut Net, conn: ConnId, header: &Header, body: &[u8]) {
        let Some(mut msg) = self.parse_client::<ImMsgData>(net, conn, header, body) else {
            return;
        };
        let limit = self.cfg.msg_rate_limit;
        let max = self.cfg.max_pending_requests;
        let now = net.now();
        let db = self.pick_db(Pool::General);
        let Some(client) = self.clients.get_mut(&conn) else {
            return;
        };
        let me = client.user_id;
        // The checks of the original, in its order; every drop is silent for the client.
        let drop = if msg.msg_data.is_empty() {
            Some("an empty message")
        } else if limit > 0 && client.msgs_this_second >= limit {
            Some("more messages a second than MsgRateLimit")
        } else if !is_group_msg(msg.msg_type) && msg.to_session_id == me {
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
        msg.attach_data = Some(DbAttachData::new(ATTACH_TYPE_HANDLE, client.handle).to_vec());
        send_with_header(net, db, header, &msg);
    }

    /// Counts one relayed request (P2P command, read ack, remove session) against
    /// `RelayRateLimit`; false (and a log line, once a second) when the client is over it. The
    /// original had no limit: one client could flood another user's connections until they
    /// were closed for unread output.
    fn relay_allowed(&mut self, conn: ConnId, what: &str) -> bool {
        let limit = self.cfg.relay_rate_limit;
        let Some(c) = self.clients.get_mut(&conn) else {
            return false;
        };
        if limit > 0 && c.relays_this_second >= limit {
            if c.note_drop() {
                log::warn!(
                    "user {} sent more {what} a second than RelayRateLimit: dropped",
                    c.user_id
                );
            }
            return false;
        }
        c.relays_this_second += 1;
        true
    }

    /// `CID_MSG_READ_ACK` (spec §9.2.4): stored by db_proxy, told to the reader's other devices
    /// here and, through route_server, elsewhere.
    fn on_read_ack(&mut self, net: &mut Net, conn: ConnId, header: &Header, body: &[u8]) {
        let Some(mut ack) = self.parse_client::<ImMsgDataReadAck>(net, conn, header, body) else {
            return;
        };
        let me = self.clients.get(&conn).map_or(0, |c| c.user_id);
        ack.user_id = me;
        self.send_to_db(net, Pool::General, header, &ack);
        let notify = ImMsgDataReadNotify {
            user_id: me,
            session_id: ack.session_id,
            msg_id: ack.msg_id,
            session_type: ack.session_type,
        };
        let bytes = pdu_bytes(sid::SID_MSG, cid::CID_MSG_READ_NOTIFY, 0, &notify);
        self.send_to_user(net, me, Some(conn), &bytes);
        self.route.send_to_master(net, &bytes);
    }

    /// `CID_SWITCH_P2P_CMD` (spec §9.2.5), with `from_user_id` set to the logged-in user.
    fn on_p2p_cmd(&mut self, net: &mut Net, conn: ConnId, header: &Header, body: &[u8], me: u32) {
        let Some(mut cmd) = self.parse_client::<Imp2pCmdMsg>(net, conn, header, body) else {
            return;
        };
        cmd.from_user_id = me;
        let bytes = crate::server::pdu_bytes_with_header(header, &cmd);
        if cmd.to_user_id == me {
            // To oneself: every connection of mine, this one included, once each (the
            // original sends it to this connection once and to the others twice).
            self.send_to_user(net, me, None, &bytes);
        } else {
            self.send_to_user(net, me, Some(conn), &bytes);
            self.send_to_user(net, cmd.to_user_id, None, &bytes);
        }
        self.route.send_to_master(net, &bytes);
    }

    /// `CID_BUDDY_LIST_REMOVE_SESSION_REQ` (spec §9.2.6).
    fn on_remove_session(
        &mut self,
        net: &mut Net,
        conn: ConnId,
        header: &Header,
        body: &[u8],
        me: u32,
    ) {
        let Some(rm) = self.parse_client::<ImRemoveSessionReq>(net, conn, header, body) else {
            return;
        };
        let (session_type, session_id) = (rm.session_type, rm.session_id);
        self.forward_parsed(net, conn, header, rm, DB_GENERAL, Attach::Short);
        if session_type == 1 {
            let notify = ImRemoveSessionNotify {
                user_id: me,
                session_type,
                session_id,
            };
            let bytes = pdu_bytes(
                sid::SID_BUDDY_LIST,
                cid::CID_BUDDY_LIST_REMOVE_SESSION_NOTIFY,
                0,
                &notify,
            );
            self.send_to_user(net, me, Some(conn), &bytes);
            self.route.send_to_master(net, &bytes);
        }
    }

    /// Group requests: forwarded to db_proxy, or the original's fallback reply when no
    /// db_proxy link is up (spec §9.2.7).
    fn on_group_request(
        &mut self,
        net: &mut Net,
        conn: ConnId,
        header: &Header,
        body: &[u8],
        me: u32,
    ) {
        let req = Req { conn, header, body };
        let has_db = self.pick_db(Pool::General).is_some();
        let seq = header.seq_num;
        match header.command_id {
            cid::CID_GROUP_NORMAL_LIST_REQUEST => {
                if has_db {
                    self.forward::<ImNormalGroupListReq>(net, req, DB_GENERAL, Attach::Short);
                } else if self
                    .parse_client::<ImNormalGroupListReq>(net, conn, header, body)
                    .is_some()
                {
                    let rsp = ImNormalGroupListRsp {
                        user_id: me,
                        ..Default::default()
                    };
                    pdu_io::send(net, conn, seq, &rsp);
                }
            }
            cid::CID_GROUP_INFO_REQUEST => {
                if has_db {
                    self.forward::<ImGroupInfoListReq>(net, req, DB_GENERAL, Attach::Long);
                } else if self
                    .parse_client::<ImGroupInfoListReq>(net, conn, header, body)
                    .is_some()
                {
                    let rsp = ImGroupInfoListRsp {
                        user_id: me,
                        ..Default::default()
                    };
                    pdu_io::send(net, conn, seq, &rsp);
                }
            }
            cid::CID_GROUP_CREATE_REQUEST => {
                let Some(create) = self.parse_client::<ImGroupCreateReq>(net, conn, header, body)
                else {
                    return;
                };
                if create.group_type == 1 {
                    log::debug!("user {me} asked to create a normal group: ignored");
                } else if has_db {
                    self.forward::<ImGroupCreateReq>(net, req, DB_GENERAL, Attach::Short);
                } else {
                    let rsp = ImGroupCreateRsp {
                        user_id: me,
                        result_code: 1,
                        group_name: create.group_name,
                        ..Default::default()
                    };
                    pdu_io::send(net, conn, seq, &rsp);
                }
            }
            cid::CID_GROUP_CHANGE_MEMBER_REQUEST => {
                if has_db {
                    self.forward::<ImGroupChangeMemberReq>(net, req, DB_GENERAL, Attach::Short);
                } else if let Some(req) =
                    self.parse_client::<ImGroupChangeMemberReq>(net, conn, header, body)
                {
                    let rsp = ImGroupChangeMemberRsp {
                        user_id: me,
                        change_type: req.change_type,
                        result_code: 1,
                        group_id: req.group_id,
                        ..Default::default()
                    };
                    pdu_io::send(net, conn, seq, &rsp);
                }
            }
            _ => {
                if has_db {
                    self.forward::<ImGroupShieldReq>(net, req, DB_GENERAL, Attach::Short);
                } else if let Some(req) =
                    self.parse_client::<ImGroupShieldReq>(net, conn, header, body)
                {
                    let rsp = ImGroupShieldRsp {
                        user_id: me,
                        group_id: req.group_id,
                        result_code: 1,
                        attach_data: None,
                    };
                    pdu_io::send(net, conn, seq, &rsp);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr() -> SocketAddr {
        "127.0.0.1:1".parse().unwrap()
    }

    #[test]
    fn pending_requests_are_capped_and_expire() {
        let t0 = Instant::now();
        let mut c = ClientConn::new(1, t0, addr());
        for _ in 0..3 {
            assert!(c.begin_request(t0, 3));
        }
        assert!(
            !c.begin_request(t0, 3),
            "a fourth request waits over the cap"
        );
        c.end_request();
        assert!(c.begin_request(t0, 3));
        let later = t0 + PENDING_TTL + Duration::from_secs(1);
        assert!(
            c.begin_request(later, 3),
            "requests without a reply are forgotten after PENDING_TTL"
        );
        assert_eq!(c.pending.len(), 1);
    }

    #[test]
    fn group_types() {
        assert!(is_group_msg(0x11) && is_group_msg(0x12));
        assert!(!is_group_msg(0x01) && !is_group_msg(0x02));
    }
}
