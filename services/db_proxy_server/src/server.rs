//! The I/O thread (the original's `CProxyConn` and its loop callback), a [`PduService`] run by
//! the shared [`tt_common::PduServer`] (framing, bad frames, keep-alive, heartbeats): accepts
//! msg_server / http_msg_server connections, queues their requests for the workers, and sends
//! the workers' replies back on the connection they came from.
//!
//! Queueing, fairness and bounds:
//! * all workers take jobs from one shared bounded channel, so an idle worker always takes the
//!   next job (the original pinned each job to a random worker's private queue, where it could
//!   wait behind a slow query while other workers idled);
//! * each connection may have at most [`MAX_IN_FLIGHT`] jobs in the channel or running; the
//!   rest wait in the connection's own backlog, and backlogs are served round-robin, so one
//!   busy connection cannot starve the others;
//! * a backlog is bounded ([`MAX_BACKLOG`] PDUs, [`MAX_BACKLOG_BYTES`] bytes): a peer that
//!   keeps sending past that without reading the replies is disconnected with a log line;
//! * a request joins its connection's backlog as soon as it is framed, and the backlogs are
//!   pumped into the channel then, when a worker's reply arrives, and once a second;
//! * the I/O thread never blocks on the workers (`try_send`), and the workers' replies come back
//!   through netlib's bounded inbox.
//!
//! On the first SIGTERM or SIGINT every connection is told `CID_OTHER_STOP_RECV_PACKET`, as by
//! the original, and the daemon stops once every request it took is answered (the worker
//! threads are then joined).
//!
//! As in the original, two requests of one connection may be answered out of order (callers
//! match replies by seq_num / attach_data); what must not interleave (first messages of a user
//! pair) is serialised in the database (see `model::relation::PairLock`).

use std::collections::{HashMap, VecDeque};

use crossbeam_channel::{Sender, TrySendError};
use netlib::{CloseReason, ConnId, Net};
use tt_common::metrics::Scrape;
use tt_common::pdu_io::{self, KeepAlive, peer_name};
use tt_common::{Accepted, PduService};
use tt_proto::pb::server::ImStopReceivePacket;
use tt_proto::pdu::Header;

use crate::handlers;
use crate::metrics;

/// Jobs of one connection queued to or running on the workers.
pub const MAX_IN_FLIGHT: usize = 64;
/// PDUs one connection may have waiting behind its in-flight jobs.
pub const MAX_BACKLOG: usize = 100_000;
/// Bytes one connection may have waiting behind its in-flight jobs.
pub const MAX_BACKLOG_BYTES: usize = 64 * 1024 * 1024;

/// The one kind of connection: a msg_server or http_msg_server sending requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Requester;

/// One request for a worker.
pub struct Job {
    pub conn: ConnId,
    pub header: Header,
    pub body: Vec<u8>,
}

/// What workers post back to the I/O thread.
pub enum Msg {
    /// A job finished; `reply` is the encoded reply PDU, if the handler has one.
    Done {
        conn: ConnId,
        reply: Option<Vec<u8>>,
    },
}

#[derive(Default)]
struct Peer {
    in_flight: usize,
    backlog: VecDeque<Job>,
    backlog_bytes: usize,
    /// In `Server::waiting` (so it is there at most once).
    waiting: bool,
}

pub struct Server {
    jobs: Sender<Job>,
    peers: HashMap<ConnId, Peer>,
    /// Connections with a backlog, served round-robin.
    waiting: VecDeque<ConnId>,
}

impl Server {
    pub fn new(jobs: Sender<Job>) -> Server {
        Server {
            jobs,
            peers: HashMap::new(),
            waiting: VecDeque::new(),
        }
    }

    /// Moves backlogged jobs into the shared channel while it has room, one job per connection
    /// per round.
    fn pump(&mut self) {
        let mut stalled = 0;
        while stalled < self.waiting.len() {
            let Some(conn) = self.waiting.pop_front() else {
                break;
            };
            let Some(peer) = self.peers.get_mut(&conn) else {
                continue;
            };
            let Some(job) = peer.backlog.pop_front() else {
                peer.waiting = false;
                continue;
            };
            if peer.in_flight >= MAX_IN_FLIGHT {
                peer.backlog.push_front(job);
                self.waiting.push_back(conn);
                stalled += 1;
                continue;
            }
            let len = job.body.len();
            match self.jobs.try_send(job) {
                Ok(()) => {
                    peer.in_flight += 1;
                    peer.backlog_bytes -= len;
                    stalled = 0;
                    if peer.backlog.is_empty() {
                        peer.waiting = false;
                    } else {
                        self.waiting.push_back(conn);
                    }
                }
                Err(TrySendError::Full(job)) => {
                    peer.backlog.push_front(job);
                    self.waiting.push_front(conn);
                    break;
                }
                Err(TrySendError::Disconnected(_)) => {
                    log::error!("worker pool is gone; dropping queued requests");
                    self.waiting.clear();
                    for p in self.peers.values_mut() {
                        p.backlog.clear();
                        p.backlog_bytes = 0;
                        p.waiting = false;
                    }
                    break;
                }
            }
        }
    }
}

impl PduService for Server {
    type Kind = Requester;
    type Msg = Msg;

    fn accept(&mut self, _net: &mut Net, accepted: Accepted) -> Option<Requester> {
        let Accepted { conn, peer, .. } = accepted;
        log::info!("connection {conn:?} from {peer}");
        self.peers.insert(conn, Peer::default());
        Some(Requester)
    }

    /// A msg_server link gets many replies a turn (a stored batch is answered at once).
    fn coalesce(&self, _kind: Requester) -> bool {
        true
    }

    fn keep_alive(&self, _conn: ConnId, _kind: Requester) -> KeepAlive {
        KeepAlive::SERVER
    }

    fn pdu(&mut self, net: &mut Net, conn: ConnId, _kind: Requester, header: &Header, body: &[u8]) {
        if !handlers::is_handled(header.command_id) {
            log::warn!(
                "no handler for packet type 0x{:04x} (service {}), dropped",
                header.command_id,
                header.service_id
            );
            return;
        }
        let Some(peer) = self.peers.get_mut(&conn) else {
            return;
        };
        if peer.backlog.len() >= MAX_BACKLOG || peer.backlog_bytes + body.len() > MAX_BACKLOG_BYTES
        {
            peer.backlog.clear();
            peer.backlog_bytes = 0;
            log::warn!(
                "closing {conn:?} ({}): more than {MAX_BACKLOG} requests / {MAX_BACKLOG_BYTES} \
                 bytes waiting for the workers",
                peer_name(net, conn)
            );
            net.close(conn);
            return;
        }
        peer.backlog_bytes += body.len();
        peer.backlog.push_back(Job {
            conn,
            header: *header,
            body: body.to_vec(),
        });
        if !peer.waiting {
            peer.waiting = true;
            self.waiting.push_back(conn);
        }
        self.pump();
    }

    fn closed(&mut self, _net: &mut Net, conn: ConnId, _kind: Requester, reason: CloseReason) {
        if let Some(peer) = self.peers.remove(&conn) {
            log::info!(
                "connection {conn:?} closed ({reason:?}); {} requests dropped, {} replies \
                 pending will be discarded",
                peer.backlog.len(),
                peer.in_flight
            );
        }
    }

    fn message(&mut self, net: &mut Net, msg: Msg) {
        match msg {
            Msg::Done { conn, reply } => {
                if let Some(peer) = self.peers.get_mut(&conn) {
                    peer.in_flight = peer.in_flight.saturating_sub(1);
                    if let Some(bytes) = reply {
                        pdu_io::send_bytes(net, conn, &bytes);
                    }
                }
                self.pump();
            }
        }
    }

    fn tick(&mut self, _net: &mut Net) {
        self.pump();
    }

    /// As the original: every connection is told `CID_OTHER_STOP_RECV_PACKET` (its peer picks
    /// other links from then on); requests already sent are still taken and answered.
    fn stop(&mut self, net: &mut Net) {
        let pending: usize = self
            .peers
            .values()
            .map(|p| p.in_flight + p.backlog.len())
            .sum();
        log::info!(
            "telling {} connections to stop sending; {pending} requests to answer",
            self.peers.len()
        );
        for &conn in self.peers.keys() {
            pdu_io::send(net, conn, 0, &ImStopReceivePacket { result: 0 });
        }
    }

    /// Every request taken has been answered.
    fn drained(&self, _net: &Net) -> bool {
        self.peers
            .values()
            .all(|p| p.in_flight == 0 && p.backlog.is_empty())
    }

    fn metrics(&self, out: &mut Scrape) {
        let in_flight = self.peers.values().map(|p| p.in_flight).sum();
        let backlog = self.peers.values().map(|p| p.backlog.len()).sum();
        metrics::write(out, self.jobs.len(), in_flight, backlog);
    }

    /// Healthy while MySQL and Redis answered their last operations.
    fn health(&self) -> Result<(), String> {
        metrics::health()
    }
}
