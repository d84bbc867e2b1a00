//! The login_server state and handlers (the original's `CLoginConn` and `CHttpConn`), run by
//! `tt_common::PduServer`.
//!
//! Three kinds of connections, by the listener that accepted them:
//! - msg_server links: `CID_OTHER_MSG_SERV_INFO` registers, `CID_OTHER_USER_CNT_UPDATE`
//!   counts, heartbeat after 5 s of send silence, closed after 30 s of receive silence; the
//!   registry entry goes with the connection, or at once with `CID_OTHER_STOP_RECV_PACKET`
//!   (a msg_server that stops: never handed out again);
//! - binary clients: one `CID_LOGIN_REQ_MSGSERVER`, answered and closed (§3.5, quirk L1
//!   fixed); closed after 120 s of receive silence;
//! - HTTP: one `/msg_server` request, answered and closed; closed without reply past 1024
//!   bytes, on a malformed request or another path; closed after 60 s (`HttpTimeout`) of
//!   receive silence, and when the request is not complete 60 s after the accept (a request
//!   trickled byte by byte keeps the connection busy, never silent).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use netlib::{Buffer, CloseReason, ConnId, ListenerId, Net};
use tt_common::metrics::Scrape;
use tt_common::pdu_io::{self, CLIENT_TIMEOUT, decode_or_log, peer_name};
use tt_common::{Accepted, KeepAlive, PduService};
use tt_http::{Answer, HttpConn, Limits, Request, Response};
use tt_proto::ids::cid;
use tt_proto::pb::base_define::ResultType;
use tt_proto::pb::login::ImMsgServRsp;
use tt_proto::pb::server::{ImMsgServInfo, ImUserCntUpdate};
use tt_proto::pdu::Header;
use tt_proto::values::UserCntAction;

use crate::http;
use crate::registry::{MsgServ, Pick, Registry};

/// Largest PDU accepted from a msg_server or a client (what they send is tiny).
pub const MAX_PDU_LEN: u32 = 64 * 1024;
/// HTTP connections are closed after this much receive silence (`HTTP_CONN_TIMEOUT`), and
/// when their request is not complete this long after the accept; `HttpTimeout` sets it.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(60);
/// An HTTP request (head and body) over this many bytes is closed without a reply.
pub const MAX_HTTP_REQUEST: usize = 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Client,
    MsgServer,
    Http,
}

/// What the `/msg_server` replies hand out besides the chosen msg_server.
struct Urls {
    msfs: String,
    discovery: String,
}

pub struct LoginServer {
    listeners: Vec<(ListenerId, Kind)>,
    /// Open HTTP connections and when each was accepted.
    http: HashMap<ConnId, (HttpConn, Instant)>,
    registry: Registry,
    /// msg_server links that said `CID_OTHER_STOP_RECV_PACKET`: out of the registry for good.
    stopped: HashSet<ConnId>,
    urls: Urls,
    http_timeout: Duration,
}

impl LoginServer {
    pub fn new(listeners: Vec<(ListenerId, Kind)>, msfs: String, discovery: String) -> LoginServer {
        LoginServer {
            listeners,
            http: HashMap::new(),
            registry: Registry::new(),
            stopped: HashSet::new(),
            urls: Urls { msfs, discovery },
            http_timeout: HTTP_TIMEOUT,
        }
    }

    /// The HTTP connections' silence timeout and request deadline ([`HTTP_TIMEOUT`] unless
    /// set).
    pub fn http_timeout(mut self, timeout: Duration) -> LoginServer {
        self.http_timeout = timeout;
        self
    }

    fn on_msg_serv_info(&mut self, net: &mut Net, conn: ConnId, body: &[u8]) {
        let Some(m) = decode_or_log::<ImMsgServInfo>(net, conn, body) else {
            return;
        };
        if self.stopped.contains(&conn) {
            log::info!("msg_server link {conn:?}: stopping; its MSG_SERV_INFO is ignored");
            return;
        }
        let Ok(port) = u16::try_from(m.port) else {
            log::warn!(
                "msg_server link {conn:?} ({}): port {} out of range, not registered",
                peer_name(net, conn),
                m.port
            );
            return;
        };
        let info = MsgServ {
            ip1: String::from_utf8_lossy(&m.ip1).into_owned(),
            ip2: String::from_utf8_lossy(&m.ip2).into_owned(),
            port,
            max_conn_cnt: m.max_conn_cnt,
            cur_conn_cnt: m.cur_conn_cnt,
            hostname: String::from_utf8_lossy(&m.host_name).into_owned(),
        };
        let text = format!(
            "{} {}/{}:{} max_conn_cnt={} cur_conn_cnt={}",
            info.hostname, info.ip1, info.ip2, info.port, info.max_conn_cnt, info.cur_conn_cnt
        );
        let replaced = self.registry.set(conn, info);
        log::info!(
            "msg_server {} ({text}) on {conn:?} from {}; {} registered, {} users in all",
            if replaced { "updated" } else { "registered" },
            peer_name(net, conn),
            self.registry.len(),
            self.registry.total()
        );
    }

    /// The msg_server is stopping: it is never handed out again (its link may stay open while
    /// it finishes its work).
    fn on_stop_recv(&mut self, net: &mut Net, conn: ConnId) {
        self.stopped.insert(conn);
        match self.registry.remove(conn) {
            Some(e) => log::info!(
                "msg_server {} {}:{} on {conn:?} ({}) is stopping: unregistered; {} registered",
                e.hostname,
                e.ip1,
                e.port,
                peer_name(net, conn),
                self.registry.len()
            ),
            None => log::info!("msg_server link {conn:?} is stopping (was not registered)"),
        }
    }

    fn on_user_cnt_update(&mut self, net: &mut Net, conn: ConnId, body: &[u8]) {
        let Some(m) = decode_or_log::<ImUserCntUpdate>(net, conn, body) else {
            return;
        };
        let Some(e) = self.registry.get_mut(conn) else {
            log::debug!("user count update on {conn:?} before MSG_SERV_INFO, ignored");
            return;
        };
        match UserCntAction::from_u32(m.user_action) {
            Some(UserCntAction::Inc) => e.cur_conn_cnt = e.cur_conn_cnt.saturating_add(1),
            Some(UserCntAction::Dec) => e.cur_conn_cnt = e.cur_conn_cnt.saturating_sub(1),
            None => {
                log::warn!(
                    "msg_server link {conn:?}: user count update with action {}, ignored",
                    m.user_action
                );
                return;
            }
        }
        log::debug!(
            "{}:{} user {} action {}: cur_conn_cnt={}",
            e.hostname,
            e.port,
            m.user_id,
            m.user_action,
            e.cur_conn_cnt
        );
    }

    /// §3.5: the least-loaded msg_server, seq echoed, no telecom/netcom swap.
    fn answer_msg_serv_req(&self, net: &mut Net, conn: ConnId, header: &Header) {
        let rsp = match self.registry.pick() {
            Pick::NoMsgServer => ImMsgServRsp {
                result_code: ResultType::RefuseReasonNoMsgServer as i32,
                ..Default::default()
            },
            Pick::AllFull => ImMsgServRsp {
                result_code: ResultType::RefuseReasonMsgServerFull as i32,
                ..Default::default()
            },
            Pick::Chosen(e) => ImMsgServRsp {
                result_code: ResultType::RefuseReasonNone as i32,
                prior_ip: Some(e.ip1.clone().into_bytes()),
                backip_ip: Some(e.ip2.clone().into_bytes()),
                port: Some(u32::from(e.port)),
            },
        };
        pdu_io::reply(net, conn, header, &rsp);
    }
}

/// The answer to one HTTP request: the `/msg_server` reply for a target starting with
/// `/msg_server` (whatever the method), otherwise a close without reply.
fn answer_http(registry: &Registry, urls: &Urls, net: &Net, conn: ConnId, req: &Request) -> Answer {
    if !req.target().starts_with("/msg_server") {
        log::info!(
            "http {conn:?} ({}): unknown path {:?}; closing",
            peer_name(net, conn),
            req.target()
        );
        return Answer::Close;
    }
    let body = match registry.pick() {
        Pick::NoMsgServer => http::no_msg_server_body(),
        Pick::AllFull => http::all_full_body(),
        Pick::Chosen(e) => {
            // "Telecom" client if its address has four dot-separated parts (always so for IPv4
            // peers, quirk L4): ip1 first; otherwise ip2 first.
            let telecom = net
                .peer_addr(conn)
                .is_none_or(|a| a.ip().to_string().split('.').count() == 4);
            let (prior, backup) = if telecom {
                (&e.ip1, &e.ip2)
            } else {
                (&e.ip2, &e.ip1)
            };
            http::ok_body(prior, backup, e.port, &urls.msfs, &urls.discovery)
        }
    };
    Answer::Respond(Response::ok(http::CONTENT_TYPE, body))
}

impl PduService for LoginServer {
    type Kind = Kind;
    type Msg = ();

    fn accept(&mut self, net: &mut Net, accepted: Accepted) -> Option<Kind> {
        let Accepted {
            listener,
            conn,
            peer,
            ..
        } = accepted;
        let &(_, kind) = self.listeners.iter().find(|(id, _)| *id == listener)?;
        match kind {
            Kind::MsgServer => log::info!("msg_server link {conn:?} from {peer} accepted"),
            Kind::Http => {
                let limits = Limits::total(MAX_HTTP_REQUEST);
                let http = HttpConn::new(limits).keep_alive(false);
                self.http.insert(conn, (http, net.now()));
            }
            Kind::Client => {}
        }
        Some(kind)
    }

    fn keep_alive(&self, _conn: ConnId, kind: Kind) -> KeepAlive {
        match kind {
            Kind::MsgServer => KeepAlive::SERVER,
            Kind::Client => KeepAlive {
                heartbeat: None,
                timeout: CLIENT_TIMEOUT,
            },
            Kind::Http => KeepAlive {
                heartbeat: None,
                timeout: self.http_timeout,
            },
        }
    }

    fn max_pdu_len(&self, _kind: Kind) -> u32 {
        MAX_PDU_LEN
    }

    fn speaks_pdu(&self, kind: Kind) -> bool {
        kind != Kind::Http
    }

    /// HTTP bytes: one request answered (or refused) and the connection closed; a malformed
    /// or oversized request is closed without a reply, as the original.
    fn read(&mut self, net: &mut Net, conn: ConnId, _kind: Kind, input: &mut Buffer) {
        let Some((http, _)) = self.http.get_mut(&conn) else {
            input.consume(input.len());
            return;
        };
        let (registry, urls) = (&self.registry, &self.urls);
        let served = http.serve(net, conn, input, |net, req| {
            answer_http(registry, urls, net, conn, &req)
        });
        if let Err(e) = served {
            log::warn!("http {conn:?} ({}): {e}; closing", peer_name(net, conn));
            net.close(conn);
        }
    }

    fn pdu(&mut self, net: &mut Net, conn: ConnId, kind: Kind, header: &Header, body: &[u8]) {
        match (kind, header.command_id) {
            (_, cid::CID_LOGIN_REQ_MSGSERVER) => {
                self.answer_msg_serv_req(net, conn, header);
                if kind == Kind::Client {
                    net.close(conn);
                }
            }
            (Kind::MsgServer, cid::CID_OTHER_MSG_SERV_INFO) => {
                self.on_msg_serv_info(net, conn, body)
            }
            (Kind::MsgServer, cid::CID_OTHER_USER_CNT_UPDATE) => {
                self.on_user_cnt_update(net, conn, body)
            }
            (Kind::MsgServer, cid::CID_OTHER_STOP_RECV_PACKET) => self.on_stop_recv(net, conn),
            (Kind::MsgServer, other) => log::warn!(
                "msg_server link {conn:?} ({}): unhandled command 0x{other:04x}, ignored",
                peer_name(net, conn)
            ),
            (_, other) => {
                log::warn!(
                    "client {conn:?} ({}): unexpected command 0x{other:04x}; closing",
                    peer_name(net, conn)
                );
                net.close(conn);
            }
        }
    }

    fn closed(&mut self, _net: &mut Net, conn: ConnId, kind: Kind, reason: CloseReason) {
        match kind {
            Kind::Http => {
                self.http.remove(&conn);
            }
            Kind::Client => {}
            Kind::MsgServer => {
                self.stopped.remove(&conn);
                match self.registry.remove(conn) {
                    Some(e) => log::info!(
                        "msg_server {} {}:{} on {conn:?} unregistered ({reason:?}); {} registered, \
                     {} users in all",
                        e.hostname,
                        e.ip1,
                        e.port,
                        self.registry.len(),
                        self.registry.total()
                    ),
                    None => log::info!("msg_server link {conn:?} closed ({reason:?})"),
                }
            }
        }
    }

    /// Once a second: HTTP connections whose request is not complete `HttpTimeout` after the
    /// accept are closed (the silence timeout does not catch a request trickled byte by
    /// byte).
    fn tick(&mut self, net: &mut Net) {
        let now = net.now();
        let late: Vec<ConnId> = self
            .http
            .iter()
            .filter(|(conn, (_, accepted))| {
                now.saturating_duration_since(*accepted) > self.http_timeout && net.is_open(**conn)
            })
            .map(|(conn, _)| *conn)
            .collect();
        for conn in late {
            log::warn!(
                "http {conn:?} ({}): no complete request within {:?} of the accept; closing",
                peer_name(net, conn),
                self.http_timeout
            );
            net.close(conn);
        }
    }

    fn metrics(&self, out: &mut Scrape) {
        out.gauge(
            "tt_msg_servers",
            "msg_servers registered and handed out to clients",
            self.registry.len() as i64,
        );
        out.gauge(
            "tt_users_online",
            "Users the registered msg_servers report",
            i64::try_from(self.registry.total()).unwrap_or(i64::MAX),
        );
    }
}
