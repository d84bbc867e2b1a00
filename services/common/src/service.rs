//! The one shape of a PDU daemon: a [`PduService`] (the daemon's state and handlers) run by a
//! [`PduServer`], which implements netlib's [`Handler`] once for all of them.
//!
//! The adapter does what every daemon of the original repeats in its `CImConn` subclasses:
//!
//! - it knows every connection's kind (the service names it at accept time, or for its own
//!   outgoing links through [`PduService::link_kind`]);
//! - it frames received bytes into PDUs (largest PDU per kind), closes a connection whose
//!   framing is broken (with one log line), and stops handing out PDUs of a connection that a
//!   handler closed;
//! - it takes care of heartbeats: answered where the service asks for it
//!   ([`PduService::echo_heartbeat`]), otherwise only refreshing the receive time;
//! - once a second it runs the keep-alive policy of every connection
//!   ([`PduService::keep_alive`]: heartbeat after send silence, close after receive silence),
//!   then the service's own [`PduService::tick`];
//! - it runs the graceful stop ([`crate::stop`]): listeners closed on the first signal,
//!   [`PduService::stop`], connections closed once [`PduService::drained`], the bound.
//!
//! A service therefore writes only what is its own: which kinds of connections it has, what
//! each PDU does, what happens when a connection goes.

use std::collections::HashMap;
use std::fmt::Debug;
use std::net::SocketAddr;

use netlib::{Buffer, CloseReason, ConnId, Handler, ListenerId, Net, Signal, TimerId};
use tt_proto::ids::cid;
use tt_proto::pdu::{DEFAULT_MAX_PDU_LEN, Header};

use crate::metrics::{DropReason, Endpoint, Observed, PDUS_IN, Scrape, Source, dropped};
use crate::pdu_io::{self, Flow, KeepAlive, TICK, peer_name};
use crate::stop::{SignalAction, Stopping};

/// Timer tag of the adapter's 1 s tick; the service's own timers use any other tag but the
/// stop's ([`crate::stop::DEADLINE_TAG`], [`crate::stop::POLL_TAG`]).
pub const TICK_TAG: u64 = u64::MAX;

/// A connection a listener accepted.
#[derive(Clone, Copy, Debug)]
pub struct Accepted {
    pub listener: ListenerId,
    pub conn: ConnId,
    pub peer: SocketAddr,
}

/// A daemon's state and handlers, run by [`PduServer`].
pub trait PduService {
    /// The kinds of connections (clients, links to each kind of server, …).
    type Kind: Copy + Eq + Debug;
    /// What other threads post to the loop (db_proxy's worker replies); `()` if unused.
    type Msg: Send + 'static;

    /// A connection was accepted: its kind, or `None` to close it.
    fn accept(&mut self, net: &mut Net, accepted: Accepted) -> Option<Self::Kind>;

    /// The kind of an outgoing connection this service opened (its server links).
    fn link_kind(&self, conn: ConnId) -> Option<Self::Kind> {
        let _ = conn;
        None
    }

    /// An outgoing connection is established.
    fn connected(&mut self, net: &mut Net, conn: ConnId, kind: Self::Kind) {
        let _ = (net, conn, kind);
    }

    /// Heartbeat and idle-timeout policy of a connection, checked once a second.
    fn keep_alive(&self, conn: ConnId, kind: Self::Kind) -> KeepAlive;

    /// Largest PDU (header included) accepted from a connection of this kind.
    fn max_pdu_len(&self, kind: Self::Kind) -> u32 {
        let _ = kind;
        DEFAULT_MAX_PDU_LEN
    }

    /// Whether an accepted connection of this kind gathers what is sent to it in one turn
    /// into one write at the end of the turn ([`netlib::Net::set_coalesce`]): for server
    /// links that get many PDUs a turn (db_proxy's requesters, route_server's msg_servers).
    /// Outgoing links (to other daemons) always do. By default false (clients: about one PDU
    /// a turn each).
    fn coalesce(&self, kind: Self::Kind) -> bool {
        let _ = kind;
        false
    }

    /// Whether a heartbeat received on such a connection is sent back (msg_server's clients
    /// expect it); otherwise it only counts as activity.
    fn echo_heartbeat(&self, kind: Self::Kind) -> bool {
        let _ = kind;
        false
    }

    /// Whether connections of this kind speak PDUs (the default). Those that do not (HTTP)
    /// get their bytes through [`PduService::read`].
    fn speaks_pdu(&self, kind: Self::Kind) -> bool {
        let _ = kind;
        true
    }

    /// Bytes from a connection that does not speak PDUs; consume what was handled.
    fn read(&mut self, net: &mut Net, conn: ConnId, kind: Self::Kind, input: &mut Buffer) {
        let _ = (net, conn, kind);
        input.consume(input.len());
    }

    /// One PDU (heartbeats are handled by the adapter). A handler that closes `conn` gets no
    /// further PDU of it.
    fn pdu(&mut self, net: &mut Net, conn: ConnId, kind: Self::Kind, header: &Header, body: &[u8]);

    /// A connection is gone (accepted or outgoing, also after the service's own close).
    fn closed(&mut self, net: &mut Net, conn: ConnId, kind: Self::Kind, reason: CloseReason) {
        let _ = (net, conn, kind, reason);
    }

    /// Once a second, after the keep-alive checks (reconnects, per-second limits, …).
    fn tick(&mut self, net: &mut Net) {
        let _ = net;
    }

    /// A timer the service set itself (any tag but [`TICK_TAG`]).
    fn timer(&mut self, net: &mut Net, tag: u64) {
        let _ = (net, tag);
    }

    /// A message posted by another thread.
    fn message(&mut self, net: &mut Net, msg: Self::Msg) {
        let _ = (net, msg);
    }

    /// The first SIGTERM or SIGINT (see [`crate::stop`]); the listeners are closed already.
    /// Tell the peers that care and refuse new work; what is in flight goes on. By default
    /// nothing.
    fn stop(&mut self, net: &mut Net) {
        let _ = net;
    }

    /// While stopping: true once the work in flight is finished (checked every few
    /// milliseconds); every connection is then closed gracefully. By default true at once.
    fn drained(&self, net: &Net) -> bool {
        let _ = net;
        true
    }

    /// Writes the service's own families to a `/metrics` scrape (the adapter writes the
    /// connections by kind and the PDU counters). By default nothing.
    fn metrics(&self, out: &mut Scrape) {
        let _ = out;
    }

    /// `/healthz`: `Err(reason)` while a link the service needs is down. By default healthy.
    fn health(&self) -> Result<(), String> {
        Ok(())
    }
}

/// Runs a [`PduService`] on netlib: the [`Handler`] every PDU daemon shares.
pub struct PduServer<S: PduService> {
    service: S,
    conns: HashMap<ConnId, S::Kind>,
    stopping: Stopping,
    /// The `MetricsPort` listener and its connections (off unless `daemon::serve` opens it).
    endpoint: Endpoint,
}

impl<S: PduService> PduServer<S> {
    /// Wraps `service` and starts the 1 s tick on `net`.
    pub fn new(service: S, net: &mut Net) -> PduServer<S> {
        net.add_timer(TICK, TICK_TAG);
        PduServer {
            service,
            conns: HashMap::new(),
            stopping: Stopping::default(),
            endpoint: Endpoint::off(),
        }
    }

    pub fn service(&self) -> &S {
        &self.service
    }

    pub fn service_mut(&mut self) -> &mut S {
        &mut self.service
    }

    /// The kind of a known connection.
    pub fn kind(&self, conn: ConnId) -> Option<S::Kind> {
        self.conns.get(&conn).copied()
    }

    fn keep_alive_all(&mut self, net: &mut Net) {
        let conns: Vec<(ConnId, S::Kind)> = self.conns.iter().map(|(&c, &k)| (c, k)).collect();
        for (conn, kind) in conns {
            self.service.keep_alive(conn, kind).check(net, conn);
        }
    }
}

impl<S: PduService> Handler for PduServer<S> {
    type Msg = S::Msg;

    fn on_accept(&mut self, net: &mut Net, listener: ListenerId, conn: ConnId, peer: SocketAddr) {
        if self.endpoint.is_listener(listener) {
            self.endpoint.accept(net, conn);
            return;
        }
        match self.service.accept(
            net,
            Accepted {
                listener,
                conn,
                peer,
            },
        ) {
            Some(kind) => {
                log::debug!("{kind:?} {conn:?} from {peer} accepted");
                if self.service.coalesce(kind) {
                    net.set_coalesce(conn, true);
                }
                self.conns.insert(conn, kind);
            }
            None => net.close(conn),
        }
    }

    fn on_connect(&mut self, net: &mut Net, conn: ConnId) {
        if self.stopping.is_closing() {
            net.close(conn);
            return;
        }
        if let Some(kind) = self.service.link_kind(conn) {
            // A link to another daemon: requests and relays of one turn go out in one write.
            net.set_coalesce(conn, true);
            self.conns.insert(conn, kind);
            self.service.connected(net, conn, kind);
        }
    }

    fn on_read(&mut self, net: &mut Net, conn: ConnId, input: &mut Buffer) {
        let Some(&kind) = self.conns.get(&conn) else {
            if self.endpoint.has(conn) {
                let report = Report {
                    service: &self.service,
                    conns: &self.conns,
                };
                self.endpoint.read(net, conn, input, &report);
            } else {
                input.consume(input.len());
            }
            return;
        };
        let service = &mut self.service;
        if !service.speaks_pdu(kind) {
            service.read(net, conn, kind, input);
            return;
        }
        let framed = pdu_io::drain_pdus(input, service.max_pdu_len(kind), |header, body| {
            PDUS_IN.count(header.command_id, header.length as usize);
            if header.command_id == cid::CID_OTHER_HEARTBEAT {
                if service.echo_heartbeat(kind) {
                    pdu_io::send_raw(net, conn, header, body);
                }
            } else {
                service.pdu(net, conn, kind, header, body);
            }
            if net.is_open(conn) {
                Flow::Continue
            } else {
                Flow::Stop
            }
        });
        if let Err(e) = framed {
            dropped(DropReason::ParseError);
            log::warn!("closing {kind:?} {conn:?} ({}): {e}", peer_name(net, conn));
            net.close(conn);
        }
    }

    fn on_close(&mut self, net: &mut Net, conn: ConnId, reason: CloseReason) {
        if self.endpoint.closed(conn) {
            return;
        }
        if matches!(reason, CloseReason::OutputOverflow) {
            dropped(DropReason::OutputOverflow);
        }
        let kind = self
            .conns
            .remove(&conn)
            .or_else(|| self.service.link_kind(conn));
        if let Some(kind) = kind {
            self.service.closed(net, conn, kind, reason);
        }
    }

    fn on_timer(&mut self, net: &mut Net, _timer: TimerId, tag: u64) {
        if tag == TICK_TAG {
            self.endpoint.tick(net);
            // Once closing, no link is reconnected.
            if !self.stopping.is_closing() {
                self.keep_alive_all(net);
                self.service.tick(net);
            }
            return;
        }
        let drained = self.stopping.is_draining() && self.service.drained(net);
        if !self.stopping.timer(net, tag, drained) {
            self.service.timer(net, tag);
        }
    }

    fn on_message(&mut self, net: &mut Net, msg: S::Msg) {
        self.service.message(net, msg);
    }

    fn on_signal(&mut self, net: &mut Net, signal: Signal) {
        if self.stopping.signal(net, signal) == SignalAction::Begin {
            self.service.stop(net);
            let drained = self.service.drained(net);
            self.stopping.advance(net, drained);
        }
    }
}

impl<S: PduService> Observed for PduServer<S> {
    fn endpoint(&mut self) -> &mut Endpoint {
        &mut self.endpoint
    }
}

/// What a [`PduServer`] reports on its metrics port.
struct Report<'a, S: PduService> {
    service: &'a S,
    conns: &'a HashMap<ConnId, S::Kind>,
}

impl<S: PduService> Source for Report<'_, S> {
    fn scrape(&self, out: &mut Scrape) {
        let mut by_kind: Vec<(S::Kind, i64)> = Vec::new();
        for kind in self.conns.values() {
            match by_kind.iter_mut().find(|(k, _)| k == kind) {
                Some((_, n)) => *n += 1,
                None => by_kind.push((*kind, 1)),
            }
        }
        out.gauge_family(
            "tt_connections",
            "Open connections, by kind (accepted and the daemon's own links)",
            "kind",
            by_kind
                .into_iter()
                .map(|(k, n)| (crate::metrics::snake_case(&format!("{k:?}")), n)),
        );
        crate::metrics::write_pdus(out);
        crate::metrics::write_dropped(out);
        self.service.metrics(out);
    }

    fn health(&self) -> Result<(), String> {
        self.service.health()
    }
}
