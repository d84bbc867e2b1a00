//! msg_server as a [`PduService`]: which kind each connection is, and the dispatch of every
//! PDU through the command table. Framing, heartbeats and keep-alive are the adapter's
//! ([`tt_common::service::PduServer`]); what each command does is in [`crate::handlers`].

use netlib::{CloseReason, ConnId, Net};
use tt_common::metrics::{DropReason, Scrape, dropped};
use tt_common::pdu_io::KeepAlive;
use tt_common::service::{Accepted, PduService};
use tt_proto::pdu::{DEFAULT_MAX_PDU_LEN, Header};

use crate::clients::{AcceptLimits, ConnState, Request};
use crate::handlers::{Table, login};
use crate::links::Link;
use crate::settings::Settings;
use crate::state::State;
use crate::wire::Received;

/// The kinds of connections of msg_server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Client,
    Db,
    Route,
    Login,
    File,
    Push,
}

pub struct MsgServer {
    state: State,
    table: Table,
    /// `MaxPduLen`: the largest PDU accepted from a client.
    max_client_pdu: u32,
    /// `MaxConnCnt` and `MaxConnsPerIpBeforeLogin`.
    accept_limits: AcceptLimits,
    /// From the first stop signal: client requests are dropped (counted), the replies of
    /// those already sent are awaited.
    stopping: bool,
    dropped_while_stopping: u64,
}

impl MsgServer {
    /// The server with every link started (db_proxy, login_server, route_server, file_server,
    /// push_server).
    pub fn start(settings: &Settings, net: &mut Net) -> Result<MsgServer, String> {
        let mut state = State::new(settings)?;
        state.links.start(net);
        Ok(MsgServer {
            state,
            table: Table::new(),
            max_client_pdu: settings.max_pdu_len,
            accept_limits: AcceptLimits {
                max_conns: settings.max_conn_cnt as usize,
                max_before_login_per_ip: settings.max_conns_per_ip_before_login,
            },
            stopping: false,
            dropped_while_stopping: 0,
        })
    }

    fn client_pdu(&mut self, net: &mut Net, conn: ConnId, header: &Header, body: &[u8]) {
        let Some(client) = self.state.clients.get(conn) else {
            return;
        };
        let req = Request {
            conn,
            header,
            body,
            me: client.user_id,
            peer: client.peer,
        };
        let command_id = header.command_id;
        if self.stopping {
            if self.dropped_while_stopping == 0 {
                log::info!("stopping: client requests are dropped from now on");
            }
            self.dropped_while_stopping += 1;
            return;
        }
        if let Some(handle) = self.table.before_login(command_id) {
            return handle(&mut self.state, net, &req);
        }
        if client.state != ConnState::Open {
            dropped(DropReason::PreLogin);
            log::warn!(
                "closing client {} (handle {}): command {command_id:#06x} before a successful login",
                client.peer,
                client.handle
            );
            net.close(conn);
            return;
        }
        match self.table.client(command_id) {
            Some(handle) => handle(&mut self.state, net, &req),
            None => log::debug!(
                "client {} sent unhandled command {command_id:#06x}: ignored",
                req.me
            ),
        }
    }
}

impl PduService for MsgServer {
    type Kind = Kind;
    type Msg = ();

    fn accept(&mut self, net: &mut Net, accepted: Accepted) -> Option<Kind> {
        let Accepted { conn, peer, .. } = accepted;
        let handle = self
            .state
            .clients
            .accept(conn, net.now(), peer, self.accept_limits)
            .ok()?;
        log::debug!("client {peer} connected ({conn:?}, handle {handle})");
        Some(Kind::Client)
    }

    fn link_kind(&self, conn: ConnId) -> Option<Kind> {
        Some(match self.state.links.kind_of(conn)? {
            Link::Db => Kind::Db,
            Link::Route => Kind::Route,
            Link::Login => Kind::Login,
            Link::File => Kind::File,
            Link::Push => Kind::Push,
        })
    }

    fn connected(&mut self, net: &mut Net, conn: ConnId, kind: Kind) {
        let s = &mut self.state;
        match kind {
            Kind::Db => s.links.db.connected(net, conn),
            Kind::Route => s.links.route.connected(net, conn, &s.users),
            Kind::Login => s.links.login.connected(net, conn, s.users.total_conns()),
            Kind::File => s.links.file.connected(net, conn),
            Kind::Push => s.links.push.connected(net, conn),
            Kind::Client => {}
        }
    }

    fn keep_alive(&self, conn: ConnId, kind: Kind) -> KeepAlive {
        match kind {
            Kind::Client => self.state.clients.keep_alive(conn),
            _ => KeepAlive::SERVER,
        }
    }

    fn max_pdu_len(&self, kind: Kind) -> u32 {
        match kind {
            Kind::Client => self.max_client_pdu,
            _ => DEFAULT_MAX_PDU_LEN,
        }
    }

    fn echo_heartbeat(&self, kind: Kind) -> bool {
        kind == Kind::Client
    }

    fn pdu(&mut self, net: &mut Net, conn: ConnId, kind: Kind, header: &Header, body: &[u8]) {
        let pdu = Received { conn, header, body };
        let command_id = header.command_id;
        let (handler, from) = match kind {
            Kind::Client => return self.client_pdu(net, conn, header, body),
            Kind::Db => (self.table.db(command_id), "db_proxy"),
            Kind::Route => (self.table.route(command_id), "route_server"),
            Kind::File => (self.table.file(command_id), "file_server"),
            Kind::Login => return,
            Kind::Push => return self.state.links.push.answered(conn, header, body),
        };
        match handler {
            Some(handle) => handle(&mut self.state, net, &pdu),
            None => log::debug!("{from} sent unhandled command {command_id:#06x}: ignored"),
        }
    }

    fn closed(&mut self, net: &mut Net, conn: ConnId, kind: Kind, reason: CloseReason) {
        let s = &mut self.state;
        match kind {
            Kind::Client => login::client_closed(s, net, conn, reason),
            Kind::Db => {
                s.links.db.closed(conn, reason);
                s.push_lookups.lost(conn);
                s.db_link_lost(net, conn);
            }
            Kind::Route => {
                s.links.route.closed(net, conn, reason);
                s.push_lookups.lost(conn);
            }
            Kind::Login => s.links.login.closed(conn, reason),
            Kind::File => s.links.file.closed(conn, reason),
            Kind::Push => s.links.push.closed(conn, reason),
        }
    }

    /// Once a second, after the adapter's idle checks: the clients' per-second work, the
    /// links' reconnects, then the group-member requests given up and the pushes dropped.
    fn tick(&mut self, net: &mut Net) {
        self.state.clients.tick(net);
        self.state.links.tick(net);
        self.state.tick_group_messages(net);
        self.state.tick_pushes(net);
    }

    /// login_server is told at once that this server takes no new users; client requests
    /// are dropped from now on (no reply, so no acked message can be lost).
    fn stop(&mut self, net: &mut Net) {
        self.stopping = true;
        self.state.links.login.stop_receiving(net);
        log::info!(
            "stopping: login_server told; waiting for {} db_proxy replies and {} group messages",
            self.state.clients.pending_requests(),
            self.state.group_msgs.len()
        );
    }

    /// Every client request sent to db_proxy has its reply (acks delivered to the clients),
    /// and every stored group message went to its members.
    fn drained(&self, _net: &Net) -> bool {
        let drained =
            self.state.clients.pending_requests() == 0 && self.state.group_msgs.len() == 0;
        if drained && self.dropped_while_stopping > 0 {
            log::info!(
                "{} client requests dropped while stopping",
                self.dropped_while_stopping
            );
        }
        drained
    }

    fn metrics(&self, out: &mut Scrape) {
        let s = &self.state;
        for (name, help, value) in [
            (
                "tt_users_online",
                "Users logged in here",
                s.users.user_count(),
            ),
            (
                "tt_user_connections",
                "Logged-in client connections",
                s.users.conn_count(),
            ),
            (
                "tt_pending_db_requests",
                "Client requests waiting for a db_proxy reply",
                s.clients.pending_requests(),
            ),
            (
                "tt_group_messages_waiting",
                "Stored group messages waiting for their member lists",
                s.group_msgs.len(),
            ),
        ] {
            out.gauge(name, help, value as i64);
        }
        s.links.write_metrics(out);
    }

    /// Healthy with a db_proxy link and a route_server link.
    fn health(&self) -> Result<(), String> {
        self.state.links.health()
    }
}
