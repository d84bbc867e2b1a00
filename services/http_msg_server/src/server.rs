//! The http_msg_server state and handlers (the original's `CHttpConn` and `CHttpQuery`), run by
//! `tt_common::PduServer`.
//!
//! HTTP connections are framed by `tt_http` (bounded head and body, keep-alive as the client
//! asks, one request at a time). A request goes through, in this order: the route (404, 405),
//! for a POST the JSON body (400), the authentication step and the `AppKey` check (403, error
//! 5), a db_proxy link (error 10), the endpoint's fields (error 1), the bound of pending
//! requests (503); then it is sent to db_proxy with a short attach whose handle is the
//! request's own id, and waits, with a deadline (504), for the answer.
//!
//! `ChangeMembers` first asks db_proxy for the group (db_proxy does not answer a change of a
//! group that does not exist): an unknown group is answered with error 12 at once. A change
//! db_proxy reports done is announced to the master route_server
//! (`IMGroupChangeMemberNotify`), whether or not the HTTP client is still there.

use std::collections::HashMap;
use std::time::Duration;

use netlib::{Buffer, CloseReason, ConnId, ListenerId, Net, TimerId};
use serde_json::{Map, Value, json};
use tt_common::metrics::{self, Scrape};
use tt_common::pdu_io::{self, decode_or_log, peer_name};
use tt_common::pools::{DbPool, MasterLink};
use tt_common::{Accepted, KeepAlive, PduService, ServerLinks};
use tt_http::{Answer, HttpConn, HttpError, Limits, Request, Response, Status};
use tt_proto::attach::{DbAttachData, http::ATTACH_TYPE_HANDLE};
use tt_proto::ids::cid;
use tt_proto::pb::base_define::GroupVersionInfo;
use tt_proto::pb::buddy::{ImUsersInfoReq, ImUsersInfoRsp};
use tt_proto::pb::group::{
    ImGroupChangeMemberNotify, ImGroupChangeMemberReq, ImGroupChangeMemberRsp, ImGroupCreateReq,
    ImGroupCreateRsp, ImGroupInfoListReq, ImGroupInfoListRsp,
};
use tt_proto::pdu::Header;
use tt_proto::values::RESULT_OK;

use crate::api::{self, ChangeMembers, Code, CreateGroup};
use crate::settings::Settings;

/// Most user ids one request may list: db_proxy's bound on a group's members.
pub const MAX_GROUP_MEMBERS: usize = 1000;
/// Largest PDU accepted from db_proxy or route_server: a group of 1000 members is some 10 KiB.
pub const MAX_PDU_LEN: u32 = 1024 * 1024;

const BAD_GATEWAY: Status = Status::new(502, "Bad Gateway");
const GATEWAY_TIMEOUT: Status = Status::new(504, "Gateway Timeout");

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Http,
    Db,
    Route,
}

/// What a request sent to db_proxy waits for.
#[derive(Debug)]
enum Waiting {
    Create,
    /// The group's existence, before the change is sent.
    GroupBeforeChange(ChangeMembers),
    Change,
    GroupInfo(u32),
    UserInfo(u32),
}

impl Waiting {
    /// For log lines.
    fn name(&self) -> &'static str {
        match self {
            Waiting::Create => "group creation",
            Waiting::GroupBeforeChange(_) => "group before a member change",
            Waiting::Change => "member change",
            Waiting::GroupInfo(_) => "group info",
            Waiting::UserInfo(_) => "user info",
        }
    }
}

#[derive(Debug)]
struct Pending {
    /// The HTTP connection to answer.
    conn: ConnId,
    /// The db_proxy link the request went to.
    db: ConnId,
    timer: TimerId,
    waiting: Waiting,
}

/// What the settings fix for every request.
struct Rules {
    app_key: Option<String>,
    request_timeout: Duration,
    max_pending: usize,
    http_timeout: Duration,
    limits: Limits,
}

pub struct HttpMsgServer {
    listeners: Vec<ListenerId>,
    http: HashMap<ConnId, HttpConn>,
    /// db_proxy links: requests take the general pool, else the login pool (the original's
    /// `get_db_serv_conn`). Nothing is sent on connect.
    db: DbPool,
    /// route_server links: change notifies go to the master. Nothing but the `IMRoleSet` of
    /// the election is sent on connect, and what route_server sends is ignored.
    route: MasterLink,
    /// Requests waiting for db_proxy, by their id (the handle of their attach data).
    pending: HashMap<u32, Pending>,
    last_id: u32,
    rules: Rules,
    /// From the first stop signal: requests are answered 503 (error 10), those sent to
    /// db_proxy already are awaited.
    stopping: bool,
}

/// An answer with the original's header fields and a styled JSON body.
fn json_response(status: Status, body: String) -> Response {
    Response::new(status)
        .header("Cache-Control", "no-cache")
        .header("Content-Type", api::CONTENT_TYPE)
        .body(body)
}

fn code_response(status: Status, code: Code) -> Response {
    json_response(status, api::code_body(code))
}

/// The endpoints: path, method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Endpoint {
    CreateGroup,
    ChangeMembers,
    GroupInfo,
    UserInfo,
}

impl Endpoint {
    fn of(path: &str) -> Option<Endpoint> {
        match path {
            "/query/CreateGroup" => Some(Endpoint::CreateGroup),
            "/query/ChangeMembers" => Some(Endpoint::ChangeMembers),
            "/query/GroupInfo" => Some(Endpoint::GroupInfo),
            "/query/UserInfo" => Some(Endpoint::UserInfo),
            _ => None,
        }
    }

    fn method(self) -> &'static str {
        match self {
            Endpoint::CreateGroup | Endpoint::ChangeMembers => "POST",
            Endpoint::GroupInfo | Endpoint::UserInfo => "GET",
        }
    }
}

impl HttpMsgServer {
    pub fn new(listeners: Vec<ListenerId>, settings: &Settings) -> Result<HttpMsgServer, String> {
        Ok(HttpMsgServer {
            listeners,
            http: HashMap::new(),
            db: DbPool::new(&settings.db_servers, settings.concurrent_db_conn_cnt)?,
            route: MasterLink::new(ServerLinks::new(
                "route_server",
                settings.route_servers.clone(),
            )?),
            pending: HashMap::new(),
            last_id: 0,
            rules: Rules {
                app_key: settings.app_key.clone(),
                request_timeout: settings.request_timeout,
                max_pending: settings.max_pending,
                http_timeout: settings.http_timeout,
                limits: Limits::with_body(settings.max_body),
            },
            stopping: false,
        })
    }

    /// Connects every link (db_proxy, then route_server: the original's order).
    pub fn start(&mut self, net: &mut Net) {
        self.db.links.start(net);
        self.route.links.start(net);
    }

    /// Serves the requests of `input` on `conn` (or those it held, for an empty `input`); the
    /// connection is kept for later unless it closed.
    fn serve(&mut self, net: &mut Net, conn: ConnId, mut http: HttpConn, input: &mut Buffer) {
        let served = http.serve(net, conn, input, |net, req| self.dispatch(net, conn, req));
        if let Err(e) = served {
            log::warn!("http {conn:?} ({}): {e}; refused", peer_name(net, conn));
            http.reject_with(net, conn, &refusal(&e));
        }
        if net.is_open(conn) {
            self.http.insert(conn, http);
        }
    }

    /// Writes the answer to `conn`'s request in flight, then goes on with what it sent
    /// meanwhile. False if the connection is gone.
    fn answer(&mut self, net: &mut Net, conn: ConnId, response: &Response) -> bool {
        let Some(mut http) = self.http.remove(&conn) else {
            return false;
        };
        if http.respond(net, conn, response) {
            self.serve(net, conn, http, &mut Buffer::new());
        }
        true
    }

    fn dispatch(&mut self, net: &mut Net, conn: ConnId, req: Request) -> Answer {
        let peer = peer_name(net, conn);
        if self.stopping {
            log::info!("http {conn:?} ({peer}): {} while stopping; 503", req.path());
            return Answer::Respond(code_response(Status::UNAVAILABLE, Code::ServerException));
        }
        let Some(endpoint) = Endpoint::of(req.path()) else {
            log::info!("http {conn:?} ({peer}): unknown path {:?}", req.target());
            return Answer::Respond(code_response(Status::NOT_FOUND, Code::Param));
        };
        if req.method() != endpoint.method() {
            log::info!(
                "http {conn:?} ({peer}): {} {} refused, only {}",
                req.method(),
                req.path(),
                endpoint.method()
            );
            let r = code_response(Status::METHOD_NOT_ALLOWED, Code::Param)
                .header("Allow", endpoint.method());
            return Answer::Respond(r);
        }
        let outcome = match endpoint {
            Endpoint::CreateGroup | Endpoint::ChangeMembers => {
                self.post(net, conn, endpoint, req.body())
            }
            Endpoint::GroupInfo | Endpoint::UserInfo => self.get(net, conn, endpoint, &req),
        };
        match outcome {
            Ok(()) => Answer::Later,
            Err(response) => Answer::Respond(response),
        }
    }

    /// A POST endpoint: sent to db_proxy (`Ok`), or the refusal.
    fn post(
        &mut self,
        net: &mut Net,
        conn: ConnId,
        endpoint: Endpoint,
        body: &[u8],
    ) -> Result<(), Response> {
        let peer = peer_name(net, conn);
        let root: Value = serde_json::from_slice(body).map_err(|e| {
            log::info!("http {conn:?} ({peer}): body is not JSON ({e})");
            code_response(Status::BAD_REQUEST, Code::Param)
        })?;
        let auth = api::auth(&root).ok_or_else(|| {
            log::info!("http {conn:?} ({peer}): app_key or req_user_id of the wrong type");
            code_response(Status::FORBIDDEN, Code::Unauthorized)
        })?;
        self.check_app_key(&peer, conn, &auth.app_key)?;
        let db = self.db_link(&peer, conn)?;
        let param_error = |e: api::ParamError| {
            log::info!("http {conn:?} ({peer}): {endpoint:?} refused: {}", e.0);
            code_response(Status::OK, Code::Param)
        };
        match endpoint {
            Endpoint::CreateGroup => {
                let c = CreateGroup::parse(&root, MAX_GROUP_MEMBERS).map_err(param_error)?;
                let id = self.register(net, conn, db, Waiting::Create)?;
                log::info!(
                    "http {conn:?} ({peer}): create group {:?} of type {:?} by user {} with {} \
                     members (request {id})",
                    c.group_name,
                    c.group_type,
                    c.req_user_id,
                    c.members.len()
                );
                let msg = ImGroupCreateReq {
                    user_id: c.req_user_id,
                    group_type: c.group_type as i32,
                    group_name: c.group_name.into_bytes(),
                    group_avatar: c.group_avatar.into_bytes(),
                    member_id_list: c.members,
                    attach_data: Some(attach(id)),
                };
                pdu_io::send(net, db, 0, &msg);
            }
            _ => {
                let c = ChangeMembers::parse(&root, MAX_GROUP_MEMBERS).map_err(param_error)?;
                let (user, group) = (c.req_user_id, c.group_id);
                let id = self.register(net, conn, db, Waiting::GroupBeforeChange(c))?;
                log::info!(
                    "http {conn:?} ({peer}): change members of group {group} by user {user} \
                     (request {id})"
                );
                send_group_info(net, db, user, group, id);
            }
        }
        Ok(())
    }

    /// A GET endpoint: sent to db_proxy (`Ok`), or the refusal.
    fn get(
        &mut self,
        net: &mut Net,
        conn: ConnId,
        endpoint: Endpoint,
        req: &Request,
    ) -> Result<(), Response> {
        let peer = peer_name(net, conn);
        let app_key = req
            .query()
            .and_then(|q| api::query_param(q, "app_key"))
            .unwrap_or_default();
        self.check_app_key(&peer, conn, &app_key)?;
        let key = match endpoint {
            Endpoint::GroupInfo => "group_id",
            _ => "user_id",
        };
        let Some(id_asked) = api::query_id(req.query(), key) else {
            log::info!(
                "http {conn:?} ({peer}): {} without a valid {key}",
                req.target()
            );
            return Err(code_response(Status::BAD_REQUEST, Code::Param));
        };
        let db = self.db_link(&peer, conn)?;
        if endpoint == Endpoint::GroupInfo {
            let id = self.register(net, conn, db, Waiting::GroupInfo(id_asked))?;
            send_group_info(net, db, 0, id_asked, id);
        } else {
            let id = self.register(net, conn, db, Waiting::UserInfo(id_asked))?;
            let msg = ImUsersInfoReq {
                user_id: 0,
                user_id_list: vec![id_asked],
                attach_data: Some(attach(id)),
            };
            pdu_io::send(net, db, 0, &msg);
        }
        Ok(())
    }

    /// Error 5 when an `AppKey` is set and `app_key` differs.
    fn check_app_key(&self, peer: &str, conn: ConnId, app_key: &str) -> Result<(), Response> {
        match &self.rules.app_key {
            Some(key) if key != app_key => {
                log::warn!("http {conn:?} ({peer}): wrong app_key; refused");
                Err(code_response(Status::FORBIDDEN, Code::Unauthorized))
            }
            _ => Ok(()),
        }
    }

    /// A db_proxy link, or error 10.
    fn db_link(&mut self, peer: &str, conn: ConnId) -> Result<ConnId, Response> {
        self.db.pick_general().ok_or_else(|| {
            log::warn!("http {conn:?} ({peer}): no db_proxy link; error 10");
            code_response(Status::OK, Code::ServerException)
        })
    }

    /// A fresh request id with its deadline, or 503 when too many requests wait.
    fn register(
        &mut self,
        net: &mut Net,
        conn: ConnId,
        db: ConnId,
        waiting: Waiting,
    ) -> Result<u32, Response> {
        if self.pending.len() >= self.rules.max_pending {
            log::warn!(
                "http {conn:?} ({}): {} requests wait for db_proxy already; 503",
                peer_name(net, conn),
                self.pending.len()
            );
            return Err(code_response(Status::UNAVAILABLE, Code::ServerException));
        }
        let mut id = self.last_id;
        loop {
            id = id.wrapping_add(1);
            if id != 0 && !self.pending.contains_key(&id) {
                break;
            }
        }
        self.last_id = id;
        let timer = net.add_oneshot(self.rules.request_timeout, u64::from(id));
        self.pending.insert(
            id,
            Pending {
                conn,
                db,
                timer,
                waiting,
            },
        );
        Ok(id)
    }

    /// The pending request a db_proxy answer names in its attach data, removed with its timer.
    fn take_pending(
        &mut self,
        net: &mut Net,
        attach: Option<&[u8]>,
        what: &str,
    ) -> Option<Pending> {
        let id = match DbAttachData::decode(attach.unwrap_or_default()) {
            Ok(a) if a.attach_type == ATTACH_TYPE_HANDLE => a.handle,
            Ok(a) => {
                log::warn!("{what} with attach type {}, dropped", a.attach_type);
                return None;
            }
            Err(e) => {
                log::warn!("{what}: {e}, dropped");
                return None;
            }
        };
        let Some(p) = self.pending.remove(&id) else {
            log::info!("{what} for request {id}, which no longer waits (timed out): dropped");
            return None;
        };
        net.remove_timer(p.timer);
        Some(p)
    }

    fn on_create(&mut self, net: &mut Net, link: ConnId, body: &[u8]) {
        let Some(rsp) = decode_or_log::<ImGroupCreateRsp>(net, link, body) else {
            return;
        };
        let Some(p) = self.take_pending(net, rsp.attach_data.as_deref(), "group create answer")
        else {
            return;
        };
        let code = if rsp.result_code == RESULT_OK {
            Code::Success
        } else {
            Code::CreateFailed
        };
        log::info!(
            "create group by user {}: result {} group {:?}",
            rsp.user_id,
            rsp.result_code,
            rsp.group_id
        );
        let mut extra = Map::new();
        extra.insert("group_id".into(), json!(rsp.group_id.unwrap_or(0)));
        let response = json_response(Status::OK, api::body(code, extra));
        self.answer_or_log(net, &p, &response);
    }

    fn on_group_info(&mut self, net: &mut Net, link: ConnId, body: &[u8]) {
        let Some(rsp) = decode_or_log::<ImGroupInfoListRsp>(net, link, body) else {
            return;
        };
        let Some(mut p) = self.take_pending(net, rsp.attach_data.as_deref(), "group info answer")
        else {
            return;
        };
        match std::mem::replace(&mut p.waiting, Waiting::Change) {
            Waiting::GroupInfo(group) => {
                let response = match rsp.group_info_list.iter().find(|g| g.group_id == group) {
                    Some(g) => json_response(Status::OK, api::group_body(g)),
                    None => code_response(Status::NOT_FOUND, Code::Param),
                };
                self.answer_or_log(net, &p, &response);
            }
            Waiting::GroupBeforeChange(c) => {
                if rsp.group_info_list.iter().all(|g| g.group_id != c.group_id) {
                    log::info!("change members: group {} does not exist", c.group_id);
                    let response = code_response(Status::NOT_FOUND, Code::ChangeFailed);
                    self.answer_or_log(net, &p, &response);
                    return;
                }
                self.send_change(net, p, c);
            }
            other => {
                log::warn!(
                    "group info answer for a request waiting for {}; 502",
                    other.name()
                );
                self.answer_or_log(net, &p, &code_response(BAD_GATEWAY, Code::ServerException));
            }
        }
    }

    /// The change of a group known to exist, under the request's id and deadline.
    fn send_change(&mut self, net: &mut Net, p: Pending, c: ChangeMembers) {
        let Some(db) = self.db.pick_general() else {
            log::warn!(
                "change members of group {}: no db_proxy link; error 10",
                c.group_id
            );
            self.answer_or_log(net, &p, &code_response(Status::OK, Code::ServerException));
            return;
        };
        // A request of its own, with a deadline of its own.
        let id = match self.register(net, p.conn, db, Waiting::Change) {
            Ok(id) => id,
            Err(response) => {
                self.answer_or_log(net, &p, &response);
                return;
            }
        };
        let msg = ImGroupChangeMemberReq {
            user_id: c.req_user_id,
            change_type: c.modify_type as i32,
            group_id: c.group_id,
            member_id_list: c.members,
            attach_data: Some(attach(id)),
        };
        pdu_io::send(net, db, 0, &msg);
    }

    fn on_change(&mut self, net: &mut Net, link: ConnId, body: &[u8]) {
        let Some(rsp) = decode_or_log::<ImGroupChangeMemberRsp>(net, link, body) else {
            return;
        };
        log::info!(
            "change members of group {} by user {}: result {}, changed {:?}",
            rsp.group_id,
            rsp.user_id,
            rsp.result_code,
            rsp.chg_user_id_list
        );
        let pending = self.take_pending(net, rsp.attach_data.as_deref(), "member change answer");
        if let Some(p) = pending {
            let code = if rsp.result_code == RESULT_OK {
                Code::Success
            } else {
                Code::ChangeFailed
            };
            self.answer_or_log(net, &p, &code_response(Status::OK, code));
        }
        if rsp.result_code != RESULT_OK {
            return;
        }
        // The database changed: the members hear of it even when the HTTP client left.
        let notify = ImGroupChangeMemberNotify::from(rsp);
        match self.route.master() {
            Some(m) => {
                pdu_io::send(net, m, 0, &notify);
            }
            None => log::warn!(
                "change members of group {}: no route_server link, members not told",
                notify.group_id
            ),
        }
    }

    fn on_user_info(&mut self, net: &mut Net, link: ConnId, body: &[u8]) {
        let Some(rsp) = decode_or_log::<ImUsersInfoRsp>(net, link, body) else {
            return;
        };
        let Some(p) = self.take_pending(net, rsp.attach_data.as_deref(), "user info answer") else {
            return;
        };
        let Waiting::UserInfo(user) = p.waiting else {
            log::warn!(
                "user info answer for a request waiting for {:?}; 502",
                p.waiting
            );
            self.answer_or_log(net, &p, &code_response(BAD_GATEWAY, Code::ServerException));
            return;
        };
        let response = match rsp.user_info_list.iter().find(|u| u.user_id == user) {
            Some(u) => json_response(Status::OK, api::user_body(u)),
            None => code_response(Status::NOT_FOUND, Code::Param),
        };
        self.answer_or_log(net, &p, &response);
    }

    fn answer_or_log(&mut self, net: &mut Net, p: &Pending, response: &Response) {
        if !self.answer(net, p.conn, response) {
            log::info!(
                "http {:?}: gone before its answer ({}), dropped",
                p.conn,
                response.status.code
            );
        }
    }

    /// Every request sent on a lost db_proxy link: 502, error 10.
    fn fail_link(&mut self, net: &mut Net, link: ConnId) {
        let lost: Vec<u32> = self
            .pending
            .iter()
            .filter(|(_, p)| p.db == link)
            .map(|(id, _)| *id)
            .collect();
        for id in lost {
            if let Some(p) = self.pending.remove(&id) {
                log::warn!("request {id}: db_proxy link lost before the answer; 502");
                net.remove_timer(p.timer);
                self.answer_or_log(net, &p, &code_response(BAD_GATEWAY, Code::ServerException));
            }
        }
    }
}

fn attach(id: u32) -> Vec<u8> {
    DbAttachData::new(ATTACH_TYPE_HANDLE, id).to_vec()
}

/// Asks db_proxy for one group (every version is older than the stored one).
fn send_group_info(net: &mut Net, db: ConnId, user: u32, group: u32, id: u32) {
    let msg = ImGroupInfoListReq {
        user_id: user,
        group_version_list: vec![GroupVersionInfo {
            group_id: group,
            version: 0,
        }],
        attach_data: Some(attach(id)),
    };
    pdu_io::send(net, db, 0, &msg);
}

/// The answer to a request tt_http could not frame: its status, error 1.
fn refusal(e: &HttpError) -> Response {
    code_response(e.status(), Code::Param)
}

impl PduService for HttpMsgServer {
    type Kind = Kind;
    type Msg = ();

    fn accept(&mut self, _net: &mut Net, accepted: Accepted) -> Option<Kind> {
        if !self.listeners.contains(&accepted.listener) {
            return None;
        }
        self.http.insert(
            accepted.conn,
            HttpConn::new(self.rules.limits).keep_alive_when_asked(),
        );
        Some(Kind::Http)
    }

    fn link_kind(&self, conn: ConnId) -> Option<Kind> {
        if self.db.links.slot_of(conn).is_some() {
            Some(Kind::Db)
        } else if self.route.links.slot_of(conn).is_some() {
            Some(Kind::Route)
        } else {
            None
        }
    }

    fn connected(&mut self, net: &mut Net, conn: ConnId, kind: Kind) {
        match kind {
            Kind::Db => {
                self.db.links.on_connect(conn, net.now());
            }
            Kind::Route => {
                self.route.connected(net, conn);
            }
            Kind::Http => {}
        }
    }

    fn keep_alive(&self, _conn: ConnId, kind: Kind) -> KeepAlive {
        match kind {
            Kind::Http => KeepAlive {
                heartbeat: None,
                timeout: self.rules.http_timeout,
            },
            Kind::Db | Kind::Route => KeepAlive::SERVER,
        }
    }

    fn max_pdu_len(&self, _kind: Kind) -> u32 {
        MAX_PDU_LEN
    }

    fn speaks_pdu(&self, kind: Kind) -> bool {
        kind != Kind::Http
    }

    fn read(&mut self, net: &mut Net, conn: ConnId, _kind: Kind, input: &mut Buffer) {
        match self.http.remove(&conn) {
            Some(http) => self.serve(net, conn, http, input),
            None => input.consume(input.len()),
        }
    }

    fn pdu(&mut self, net: &mut Net, conn: ConnId, kind: Kind, header: &Header, body: &[u8]) {
        match (kind, header.command_id) {
            (Kind::Db, cid::CID_GROUP_CREATE_RESPONSE) => self.on_create(net, conn, body),
            (Kind::Db, cid::CID_GROUP_CHANGE_MEMBER_RESPONSE) => self.on_change(net, conn, body),
            (Kind::Db, cid::CID_GROUP_INFO_RESPONSE) => self.on_group_info(net, conn, body),
            (Kind::Db, cid::CID_BUDDY_LIST_USER_INFO_RESPONSE) => {
                self.on_user_info(net, conn, body)
            }
            (Kind::Db, cid::CID_OTHER_STOP_RECV_PACKET) => self.db.stop_sending(conn),
            (Kind::Route, _) => {}
            (_, other) => log::warn!(
                "{kind:?} {conn:?} ({}): unexpected command 0x{other:04x}, ignored",
                peer_name(net, conn)
            ),
        }
    }

    fn closed(&mut self, net: &mut Net, conn: ConnId, kind: Kind, reason: CloseReason) {
        match kind {
            Kind::Http => {
                self.http.remove(&conn);
                let waiting = self.pending.iter().find(|(_, p)| p.conn == conn);
                if let Some((id, p)) = waiting {
                    log::info!(
                        "http {conn:?} closed while request {id} waits for db_proxy ({})",
                        p.waiting.name()
                    );
                }
            }
            Kind::Db => {
                log::debug!("db_proxy link {conn:?} closed: {reason:?}");
                self.db.closed(conn);
                self.fail_link(net, conn);
            }
            Kind::Route => {
                log::debug!("route_server link {conn:?} closed: {reason:?}");
                self.route.closed(net, conn);
            }
        }
    }

    fn tick(&mut self, net: &mut Net) {
        self.db.links.tick(net);
        self.route.links.tick(net);
    }

    fn stop(&mut self, _net: &mut Net) {
        self.stopping = true;
        log::info!(
            "stopping: {} requests wait for db_proxy; new ones get 503",
            self.pending.len()
        );
    }

    /// Every request sent to db_proxy is answered (by db_proxy, or 504 at its deadline).
    fn drained(&self, _net: &Net) -> bool {
        self.pending.is_empty()
    }

    fn metrics(&self, out: &mut Scrape) {
        out.gauge(
            "tt_http_requests_pending",
            "Requests waiting for db_proxy",
            self.pending.len() as i64,
        );
        metrics::write_links(out, &[&self.db.links, &self.route.links]);
    }

    /// Healthy with a db_proxy link.
    fn health(&self) -> Result<(), String> {
        metrics::require_link(&self.db.links)
    }

    /// A request's deadline: 504, error 10.
    fn timer(&mut self, net: &mut Net, tag: u64) {
        let Ok(id) = u32::try_from(tag) else {
            return;
        };
        let Some(p) = self.pending.remove(&id) else {
            return;
        };
        log::warn!(
            "request {id}: no answer from db_proxy within {:?}; 504",
            self.rules.request_timeout
        );
        self.answer_or_log(
            net,
            &p,
            &code_response(GATEWAY_TIMEOUT, Code::ServerException),
        );
    }
}
