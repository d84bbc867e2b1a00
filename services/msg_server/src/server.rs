//! The msg_server state machine: owns every session and link and implements
//! [`netlib::Handler`]. The original spreads this over globals of `MsgConn.cpp`,
//! `DBServConn.cpp`, `RouteServConn.cpp` and `LoginServConn.cpp`; here one struct holds it and
//! each of those modules adds its part with an `impl MsgServer` block.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use netlib::{Buffer, CloseReason, ConnId, Handler, ListenerId, Net};
use tt_common::pdu_io::{self, Flow, KeepAlive};
use tt_proto::pdu::{Header, encode_msg_into, encode_with_header_into};

use crate::config::Settings;
use crate::db_serv_conn::DbPool;
use crate::im_user::ImUserManager;
use crate::login_conn::LoginLinks;
use crate::msg_conn::{ClientConn, HandleTable};
use crate::route_conn::RouteLinks;

/// Tag of the 1 s timer.
pub const TICK_TIMER: u64 = 1;

/// Which side a connection belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Peer {
    Client,
    Db,
    Route,
    Login,
}

pub struct MsgServer {
    pub cfg: Settings,
    pub clients: HashMap<ConnId, ClientConn>,
    pub handles: HandleTable,
    pub users: ImUserManager,
    pub db: DbPool,
    pub route: RouteLinks,
    pub login: LoginLinks,
    rng: u64,
}

impl MsgServer {
    pub fn new(cfg: Settings) -> Result<MsgServer, String> {
        let db = DbPool::new(&cfg.db_servers, cfg.concurrent_db_conn_cnt)?;
        let route = RouteLinks::new(cfg.route_servers.clone())?;
        let login = LoginLinks::new(cfg.login_servers.clone())?;
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0x9e37_79b9, |d| d.as_nanos() as u64)
            | 1;
        Ok(MsgServer {
            cfg,
            clients: HashMap::new(),
            handles: HandleTable::default(),
            users: ImUserManager::new(),
            db,
            route,
            login,
            rng: seed,
        })
    }

    /// Starts every outgoing link (db_proxy, login_server, route_server; the original's order).
    pub fn start(&mut self, net: &mut Net) {
        self.db.links.start(net);
        self.login.links.start(net);
        self.route.links.start(net);
    }

    /// A pseudo-random number (xorshift64), for picking db connections.
    pub fn random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }

    fn peer_of(&self, conn: ConnId) -> Option<Peer> {
        if self.clients.contains_key(&conn) {
            Some(Peer::Client)
        } else if self.db.links.slot_of(conn).is_some() {
            Some(Peer::Db)
        } else if self.route.links.slot_of(conn).is_some() {
            Some(Peer::Route)
        } else if self.login.links.slot_of(conn).is_some() {
            Some(Peer::Login)
        } else {
            None
        }
    }

    fn tick(&mut self, net: &mut Net) {
        self.check_clients(net);
        for links in [&self.db.links, &self.login.links, &self.route.links] {
            for conn in links.open_conns().collect::<Vec<_>>() {
                KeepAlive::SERVER.check(net, conn);
            }
        }
        self.db.links.tick(net);
        self.login.links.tick(net);
        self.route.links.tick(net);
    }
}

/// Current Unix time in seconds (protocol timestamps).
pub fn unix_now() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as u32)
}

/// Sends a received PDU verbatim (every header byte kept).
pub fn send_raw(net: &mut Net, conn: ConnId, header: &Header, body: &[u8]) -> bool {
    net.send_with(conn, |out| {
        out.extend_from_slice(&header.to_bytes());
        out.extend_from_slice(body);
    })
}

/// Sends a message under a given header (a relay keeps the received header, only the length is
/// recomputed).
pub fn send_with_header<M: prost::Message>(
    net: &mut Net,
    conn: ConnId,
    header: &Header,
    msg: &M,
) -> bool {
    net.send_with(conn, |out| encode_with_header_into(out, header, msg))
}

/// The wire bytes of a fresh PDU (to send the same bytes to several connections).
pub fn pdu_bytes<M: prost::Message>(sid: u16, cid: u16, seq: u16, msg: &M) -> Vec<u8> {
    let mut out = Vec::new();
    encode_msg_into(&mut out, sid, cid, seq, msg);
    out
}

/// The wire bytes of a message under a given header.
pub fn pdu_bytes_with_header<M: prost::Message>(header: &Header, msg: &M) -> Vec<u8> {
    let mut out = Vec::new();
    encode_with_header_into(&mut out, header, msg);
    out
}

/// The wire bytes of a received PDU.
pub fn raw_bytes(header: &Header, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + body.len());
    out.extend_from_slice(&header.to_bytes());
    out.extend_from_slice(body);
    out
}

/// Sends the same bytes to each connection.
pub fn send_all(net: &mut Net, conns: &[ConnId], bytes: &[u8]) {
    for &c in conns {
        net.send(c, bytes);
    }
}

impl Handler for MsgServer {
    type Msg = ();

    fn on_accept(&mut self, net: &mut Net, _l: ListenerId, conn: ConnId, peer: SocketAddr) {
        let handle = self.handles.insert(conn);
        log::debug!("client {peer} connected ({conn:?}, handle {handle})");
        self.clients
            .insert(conn, ClientConn::new(handle, net.now(), peer));
    }

    fn on_connect(&mut self, net: &mut Net, conn: ConnId) {
        match self.peer_of(conn) {
            Some(Peer::Db) => self.on_db_connect(net, conn),
            Some(Peer::Route) => self.on_route_connect(net, conn),
            Some(Peer::Login) => self.on_login_connect(net, conn),
            _ => {}
        }
    }

    fn on_read(&mut self, net: &mut Net, conn: ConnId, input: &mut Buffer) {
        let Some(peer) = self.peer_of(conn) else {
            input.consume(input.len());
            return;
        };
        let max_len = match peer {
            Peer::Client => self.cfg.max_pdu_len,
            _ => tt_proto::pdu::DEFAULT_MAX_PDU_LEN,
        };
        let result = pdu_io::drain_pdus(input, max_len, |header, body| {
            match peer {
                Peer::Client => self.on_client_pdu(net, conn, header, body),
                Peer::Db => self.on_db_pdu(net, conn, header, body),
                Peer::Route => self.on_route_pdu(net, conn, header, body),
                Peer::Login => {}
            }
            if net.is_open(conn) {
                Flow::Continue
            } else {
                Flow::Stop
            }
        });
        if let Err(e) = result {
            log::warn!(
                "closing {:?} connection {} ({conn:?}): {e}",
                peer,
                pdu_io::peer_name(net, conn)
            );
            net.close(conn);
        }
    }

    fn on_close(&mut self, net: &mut Net, conn: ConnId, reason: CloseReason) {
        if let Some(client) = self.clients.remove(&conn) {
            self.on_client_close(net, conn, client, reason);
        } else if self.db.links.slot_of(conn).is_some() {
            self.on_db_close(conn, reason);
        } else if self.route.links.slot_of(conn).is_some() {
            self.on_route_close(net, conn, reason);
        } else if self.login.links.slot_of(conn).is_some() {
            self.on_login_close(conn, reason);
        }
    }

    fn on_timer(&mut self, net: &mut Net, _t: netlib::TimerId, tag: u64) {
        if tag == TICK_TIMER {
            self.tick(net);
        }
    }
}

/// "address (user id)" of a client connection, for log lines.
pub fn peer_label(server: &MsgServer, conn: ConnId) -> String {
    match server.clients.get(&conn) {
        Some(c) => format!("{} (user {})", c.peer, c.user_id),
        None => format!("{conn:?}"),
    }
}
