//! The login_server state machine (the original's `CLoginConn` and `CHttpConn`).
//!
//! Three kinds of connections, by the listener that accepted them:
//! - msg_server links: `CID_OTHER_MSG_SERV_INFO` registers, `CID_OTHER_USER_CNT_UPDATE`
//!   counts, heartbeat after 5 s of send silence, closed after 30 s of receive silence; the
//!   registry entry goes with the connection;
//! - binary clients: one `CID_LOGIN_REQ_MSGSERVER`, answered and closed (§3.5, quirk L1
//!   fixed); closed after 120 s of receive silence;
//! - HTTP: one `/msg_server` request, answered and closed; closed without reply past 1024
//!   bytes, on a malformed request or another path; closed after 60 s of receive silence.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use netlib::{Buffer, CloseReason, ConnId, Handler, ListenerId, Net, TimerId};
use tt_common::KeepAlive;
use tt_common::pdu_io::{self, CLIENT_TIMEOUT, Flow, TICK, decode_or_log, peer_name};
use tt_proto::ids::cid;
use tt_proto::pb::base_define::ResultType;
use tt_proto::pb::login::ImMsgServRsp;
use tt_proto::pb::server::{ImMsgServInfo, ImUserCntUpdate};
use tt_proto::pdu::Header;

use crate::http::{self, Parsed};
use crate::registry::{MsgServ, Pick, Registry};

/// Largest PDU accepted from a msg_server or a client (what they send is tiny).
pub const MAX_PDU_LEN: u32 = 64 * 1024;
/// HTTP connections are closed after this much receive silence (`HTTP_CONN_TIMEOUT`).
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(60);

const TIMER_KEEPALIVE: u64 = 1;

/// `IMUserCntUpdate.user_action` values.
const USER_CNT_INC: u32 = 1;
const USER_CNT_DEC: u32 = 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Client,
    MsgServer,
    Http,
}

impl Kind {
    fn keep_alive(self) -> KeepAlive {
        match self {
            Kind::MsgServer => KeepAlive::SERVER,
            Kind::Client => KeepAlive {
                heartbeat: None,
                timeout: CLIENT_TIMEOUT,
            },
            Kind::Http => KeepAlive {
                heartbeat: None,
                timeout: HTTP_TIMEOUT,
            },
        }
    }
}

pub struct LoginServer {
    listeners: HashMap<ListenerId, Kind>,
    conns: HashMap<ConnId, Kind>,
    registry: Registry,
    msfs: String,
    discovery: String,
}

impl LoginServer {
    pub fn new(msfs: String, discovery: String) -> LoginServer {
        LoginServer {
            listeners: HashMap::new(),
            conns: HashMap::new(),
            registry: Registry::new(),
            msfs,
            discovery,
        }
    }

    pub fn add_listener(&mut self, id: ListenerId, kind: Kind) {
        self.listeners.insert(id, kind);
    }

    /// Starts the 1 s keep-alive timer.
    pub fn start(&mut self, net: &mut Net) {
        net.add_timer(TICK, TIMER_KEEPALIVE);
    }

    fn handle_pdu(
        &mut self,
        net: &mut Net,
        conn: ConnId,
        kind: Kind,
        header: &Header,
        body: &[u8],
    ) -> Flow {
        match (kind, header.command_id) {
            (_, cid::CID_OTHER_HEARTBEAT) => {}
            (_, cid::CID_LOGIN_REQ_MSGSERVER) => {
                self.answer_msg_serv_req(net, conn, header);
                if kind == Kind::Client {
                    net.close(conn);
                    return Flow::Stop;
                }
            }
            (Kind::MsgServer, cid::CID_OTHER_MSG_SERV_INFO) => {
                self.on_msg_serv_info(net, conn, body)
            }
            (Kind::MsgServer, cid::CID_OTHER_USER_CNT_UPDATE) => {
                self.on_user_cnt_update(net, conn, body)
            }
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
                return Flow::Stop;
            }
        }
        Flow::Continue
    }

    fn on_msg_serv_info(&mut self, net: &mut Net, conn: ConnId, body: &[u8]) {
        let Some(m) = decode_or_log::<ImMsgServInfo>(net, conn, body) else {
            return;
        };
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

    fn on_user_cnt_update(&mut self, net: &mut Net, conn: ConnId, body: &[u8]) {
        let Some(m) = decode_or_log::<ImUserCntUpdate>(net, conn, body) else {
            return;
        };
        let Some(e) = self.registry.get_mut(conn) else {
            log::debug!("user count update on {conn:?} before MSG_SERV_INFO, ignored");
            return;
        };
        match m.user_action {
            USER_CNT_INC => e.cur_conn_cnt = e.cur_conn_cnt.saturating_add(1),
            USER_CNT_DEC => e.cur_conn_cnt = e.cur_conn_cnt.saturating_sub(1),
            other => {
                log::warn!(
                    "msg_server link {conn:?}: user count update with action {other}, ignored"
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

    fn on_http_read(&mut self, net: &mut Net, conn: ConnId, input: &mut Buffer) {
        if input.len() > http::MAX_REQUEST {
            log::warn!(
                "http {conn:?} ({}): request over {} bytes; closing without reply",
                peer_name(net, conn),
                http::MAX_REQUEST
            );
            net.close(conn);
            return;
        }
        match http::parse(input.data()) {
            Parsed::Incomplete => {}
            Parsed::Malformed(why) => {
                log::warn!(
                    "http {conn:?} ({}): malformed request ({why}); closing",
                    peer_name(net, conn)
                );
                net.close(conn);
            }
            Parsed::Complete(target) => {
                if target.starts_with("/msg_server") {
                    let body = self.http_body(net, conn);
                    net.send(conn, &http::reply(&body));
                } else {
                    log::info!(
                        "http {conn:?} ({}): unknown path {target:?}; closing",
                        peer_name(net, conn)
                    );
                }
                // close() writes the queued reply out first.
                net.close(conn);
            }
        }
    }

    fn http_body(&self, net: &Net, conn: ConnId) -> String {
        match self.registry.pick() {
            Pick::NoMsgServer => http::no_msg_server_body(),
            Pick::AllFull => http::all_full_body(),
            Pick::Chosen(e) => {
                // "Telecom" client if its address has four dot-separated parts (always so
                // for IPv4 peers, quirk L4): ip1 first; otherwise ip2 first.
                let telecom = net
                    .peer_addr(conn)
                    .is_none_or(|a| a.ip().to_string().split('.').count() == 4);
                let (prior, backup) = if telecom {
                    (&e.ip1, &e.ip2)
                } else {
                    (&e.ip2, &e.ip1)
                };
                http::ok_body(prior, backup, e.port, &self.msfs, &self.discovery)
            }
        }
    }
}

impl Handler for LoginServer {
    type Msg = ();

    fn on_accept(&mut self, net: &mut Net, listener: ListenerId, conn: ConnId, peer: SocketAddr) {
        let Some(&kind) = self.listeners.get(&listener) else {
            net.close(conn);
            return;
        };
        log::debug!("{kind:?} {conn:?} from {peer} accepted");
        if kind == Kind::MsgServer {
            log::info!("msg_server link {conn:?} from {peer} accepted");
        }
        self.conns.insert(conn, kind);
    }

    fn on_read(&mut self, net: &mut Net, conn: ConnId, input: &mut Buffer) {
        let Some(&kind) = self.conns.get(&conn) else {
            input.consume(input.len());
            return;
        };
        if kind == Kind::Http {
            self.on_http_read(net, conn, input);
            return;
        }
        let res = pdu_io::drain_pdus(input, MAX_PDU_LEN, |h, body| {
            self.handle_pdu(net, conn, kind, h, body)
        });
        if let Err(e) = res {
            log::warn!("{kind:?} {conn:?} ({}): {e}; closing", peer_name(net, conn));
            net.close(conn);
        }
    }

    fn on_close(&mut self, _net: &mut Net, conn: ConnId, reason: CloseReason) {
        let Some(kind) = self.conns.remove(&conn) else {
            return;
        };
        if kind != Kind::MsgServer {
            return;
        }
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

    fn on_timer(&mut self, net: &mut Net, _timer: TimerId, tag: u64) {
        if tag != TIMER_KEEPALIVE {
            return;
        }
        let all: Vec<(ConnId, Kind)> = self.conns.iter().map(|(&c, &k)| (c, k)).collect();
        for (c, k) in all {
            k.keep_alive().check(net, c);
        }
    }
}
