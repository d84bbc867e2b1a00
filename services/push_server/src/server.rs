//! The msg_server side (the original's `CPushServer` sessions, msg_server.md §14.2, §14.3).
//!
//! Every accepted connection is a msg_server session:
//! - `CID_OTHER_HEARTBEAT` is sent back unchanged (the adapter's echo); push_server never
//!   starts heartbeats of its own;
//! - `CID_OTHER_PUSH_TO_USER_REQ` is answered at once with an `IMPushToUserRsp` holding one
//!   `PushResult{user_token, result_code}` per token entry, in order: 0 when the notification
//!   went into the queue, 1 when it was refused ([`Refusal`]). Delivery happens behind it, on
//!   the sender thread;
//! - a body that does not parse, or any other command, closes the session;
//! - a session silent for more than 30 s is closed;
//! - from the first stop signal every entry is refused; the stop waits for the queue to empty
//!   (within `StopTimeout`; what the sender thread has not taken by then is counted dropped).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_channel::TrySendError;
use netlib::{CloseReason, ConnId, Net};
use tt_common::metrics::Scrape;
use tt_common::pdu_io::{self, SERVER_TIMEOUT, decode_or_log, peer_name};
use tt_common::{Accepted, KeepAlive, PduService};
use tt_proto::ids::cid;
use tt_proto::pb::base_define::PushResult;
use tt_proto::pb::server::{ImPushToUserReq, ImPushToUserRsp};
use tt_proto::pdu::Header;
use tt_proto::values::{RESULT_FAILED, RESULT_OK};

use crate::notification::{self, Notification, Refusal};
use crate::sender::Counters;

/// Largest PDU a msg_server may send: a group message's request for a few thousand members.
pub const MAX_PDU_LEN: u32 = 4 * 1024 * 1024;

/// Receive silence after which a session is closed; no heartbeats are sent.
pub const KEEP_ALIVE: KeepAlive = KeepAlive {
    heartbeat: None,
    timeout: SERVER_TIMEOUT,
};

/// The one kind of connection: a msg_server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    MsgServer,
}

pub struct PushServer {
    queue: crossbeam_channel::Sender<Notification>,
    counters: Arc<Counters>,
    /// From the first stop signal: every entry is refused, the queue empties.
    stopping: bool,
}

impl PushServer {
    pub fn new(queue: crossbeam_channel::Sender<Notification>, counters: Arc<Counters>) -> Self {
        PushServer {
            queue,
            counters,
            stopping: false,
        }
    }

    /// The entry's notification, queued; or why not.
    fn enqueue(
        &self,
        entry: &tt_proto::pb::base_define::UserTokenInfo,
        payload: &Result<Arc<notification::Payload>, Refusal>,
    ) -> Result<(), Refusal> {
        if self.stopping {
            return Err(Refusal::Stopping);
        }
        let payload = payload.as_ref().map_err(Clone::clone)?;
        let n = notification::notification(entry, payload)?;
        self.queue.try_send(n).map_err(|e| match e {
            TrySendError::Full(_) => Refusal::QueueFull,
            TrySendError::Disconnected(_) => Refusal::SenderGone,
        })
    }

    fn on_push(&mut self, net: &mut Net, conn: ConnId, body: &[u8]) {
        let Some(req) = decode_or_log::<ImPushToUserReq>(net, conn, body) else {
            net.close(conn);
            return;
        };
        let payload = notification::payload(&req.flash, &req.data);
        let mut results = Vec::with_capacity(req.user_token_list.len());
        let mut refused: Option<(u32, Refusal)> = None;
        let (mut accepted, mut refusals, mut full) = (0, 0, 0);
        for entry in &req.user_token_list {
            let result_code = match self.enqueue(entry, &payload) {
                Ok(()) => {
                    accepted += 1;
                    RESULT_OK
                }
                Err(r) => {
                    refusals += 1;
                    full += usize::from(r == Refusal::QueueFull);
                    refused.get_or_insert((entry.user_id, r));
                    RESULT_FAILED
                }
            };
            results.push(PushResult {
                user_token: entry.token.clone(),
                result_code,
            });
        }
        Counters::add(&self.counters.accepted, accepted);
        Counters::add(&self.counters.refused, refusals);
        Counters::add(&self.counters.queue_full, full);
        if let Some((user_id, why)) = refused {
            log::warn!(
                "{conn:?} ({}): push request of {} entries, {refusals} refused (first: user \
                 {user_id}, {why})",
                peer_name(net, conn),
                results.len()
            );
        } else {
            log::debug!("{conn:?}: push request of {accepted} entries queued");
        }
        // As the original: a fresh header, seq 0.
        pdu_io::send(
            net,
            conn,
            0,
            &ImPushToUserRsp {
                push_result_list: results,
            },
        );
    }
}

impl PduService for PushServer {
    type Kind = Kind;
    type Msg = ();

    fn accept(&mut self, _net: &mut Net, accepted: Accepted) -> Option<Kind> {
        log::info!(
            "msg_server {:?} connected from {}",
            accepted.conn,
            accepted.peer
        );
        Some(Kind::MsgServer)
    }

    fn keep_alive(&self, _conn: ConnId, _kind: Kind) -> KeepAlive {
        KEEP_ALIVE
    }

    fn max_pdu_len(&self, _kind: Kind) -> u32 {
        MAX_PDU_LEN
    }

    fn echo_heartbeat(&self, _kind: Kind) -> bool {
        true
    }

    fn pdu(&mut self, net: &mut Net, conn: ConnId, _kind: Kind, header: &Header, body: &[u8]) {
        match header.command_id {
            cid::CID_OTHER_PUSH_TO_USER_REQ => self.on_push(net, conn, body),
            other => {
                log::warn!(
                    "closing {conn:?} ({}): command 0x{other:04x} ({}) is not served here",
                    peer_name(net, conn),
                    tt_proto::ids::cid_name(other).unwrap_or("unknown")
                );
                net.close(conn);
            }
        }
    }

    fn closed(&mut self, _net: &mut Net, conn: ConnId, _kind: Kind, reason: CloseReason) {
        log::info!("msg_server {conn:?} gone ({reason:?})");
    }

    fn stop(&mut self, _net: &mut Net) {
        self.stopping = true;
        log::info!(
            "stopping: {} notifications queued; new ones are refused",
            self.queue.len()
        );
    }

    /// The sender thread took every queued notification.
    fn drained(&self, _net: &Net) -> bool {
        self.queue.is_empty()
    }

    fn metrics(&self, out: &mut Scrape) {
        let c = &self.counters;
        let get = |n: &AtomicU64| n.load(Ordering::Relaxed);
        out.gauge(
            "tt_push_queue_depth",
            "Notifications queued for the sender thread",
            self.queue.len() as i64,
        );
        out.counter_family(
            "tt_push_entries",
            "Push requests' entries from msg_servers, by outcome",
            "outcome",
            [
                ("accepted".to_string(), get(&c.accepted)),
                ("refused".to_string(), get(&c.refused)),
                ("queue_full".to_string(), get(&c.queue_full)),
            ],
        );
        out.counter(
            "tt_pushes_sent",
            "Notifications the gateway took",
            get(&c.sent),
        );
        out.counter(
            "tt_pushes_failed",
            "Notifications the gateway refused or that failed on every attempt",
            get(&c.failed),
        );
        out.counter(
            "tt_pushes_dropped",
            "Notifications still queued when the daemon stopped",
            get(&c.dropped),
        );
    }
}
