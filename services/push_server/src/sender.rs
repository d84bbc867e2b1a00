//! The sender thread: takes queued notifications in batches and delivers each batch with one
//! `POST <PushGatewayUrl>/api/push` (Gorush's JSON API), through one `ureq` agent whose
//! connection is reused; without a gateway it logs each notification instead.
//!
//! A batch answered 2xx is sent; 5xx, a connection error or a timeout is retried after
//! `PushRetryDelayMs`, doubled before each further attempt, up to `PushMaxAttempts` attempts;
//! any other status fails the batch at once. One warning per failed batch. The reactor thread
//! never waits for any of this: it only `try_send`s into the bounded queue.
//!
//! [`Sender::stop`] ends the thread: a back-off wait ends at once, a request under way ends
//! within `PushTimeoutMs`, and what is still queued is counted as dropped.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, RecvTimeoutError, select};
use ureq::Agent;

use crate::notification::{Notification, gorush_body};
use crate::settings::Delivery;

/// Largest gateway reply read (Gorush answers with a short JSON; in its sync mode with one
/// log entry per failed token).
const MAX_REPLY: u64 = 256 * 1024;
/// Bytes of a reply quoted in a log line.
const LOGGED_REPLY: usize = 200;
/// Largest reply header block accepted.
const MAX_REPLY_HEAD: usize = 16 * 1024;

/// What became of the notifications, in one place (read by the final log line, and by the
/// metrics of a later version).
#[derive(Debug, Default)]
pub struct Counters {
    /// Entries answered 0: put into the queue.
    pub accepted: AtomicU64,
    /// Entries answered 1 (queue full included).
    pub refused: AtomicU64,
    /// Of the refused: the queue was at its bound.
    pub queue_full: AtomicU64,
    /// Notifications the gateway took (2xx), or logged without a gateway.
    pub sent: AtomicU64,
    /// Notifications of batches that failed (4xx, or 5xx and errors on every attempt).
    pub failed: AtomicU64,
    /// Notifications still queued or being retried when the daemon stopped.
    pub dropped: AtomicU64,
}

impl Counters {
    pub fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// One line with every counter.
    pub fn summary(&self) -> String {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        format!(
            "notifications: {} accepted, {} refused ({} on a full queue), {} sent, {} failed, \
             {} dropped",
            get(&self.accepted),
            get(&self.refused),
            get(&self.queue_full),
            get(&self.sent),
            get(&self.failed),
            get(&self.dropped)
        )
    }
}

/// Where batches go.
enum Gateway {
    /// No `PushGatewayUrl`: one info line per notification.
    Log,
    Http {
        agent: Agent,
        url: String,
    },
}

/// The running sender thread.
pub struct Sender {
    /// Dropped to stop the thread (its receiver then sees the channel disconnected).
    stop: crossbeam_channel::Sender<()>,
    thread: JoinHandle<()>,
}

impl Sender {
    /// Starts the thread on `queue`.
    pub fn start(
        delivery: Delivery,
        queue: Receiver<Notification>,
        counters: Arc<Counters>,
    ) -> Result<Sender, String> {
        let gateway = match &delivery.push_url {
            None => Gateway::Log,
            Some(url) => Gateway::Http {
                agent: agent(&delivery),
                url: url.clone(),
            },
        };
        let (stop, stopped) = crossbeam_channel::bounded::<()>(0);
        let mut worker = Worker {
            gateway,
            delivery,
            queue,
            stopped,
            counters,
        };
        let thread = std::thread::Builder::new()
            .name("push-sender".into())
            .spawn(move || worker.run())
            .map_err(|e| format!("cannot start the sender thread: {e}"))?;
        Ok(Sender { stop, thread })
    }

    /// Stops the thread and waits for it.
    pub fn stop(self) {
        drop(self.stop);
        if self.thread.join().is_err() {
            log::error!("the sender thread panicked");
        }
    }
}

/// One agent for the whole life of the daemon: its idle connection to the gateway is reused.
fn agent(delivery: &Delivery) -> Agent {
    Agent::config_builder()
        .timeout_global(Some(delivery.timeout))
        .http_status_as_error(false)
        .max_redirects(0)
        .proxy(None)
        .user_agent("teamtalk-rs push_server")
        .max_response_header_size(MAX_REPLY_HEAD)
        .max_idle_connections(1)
        .max_idle_connections_per_host(1)
        .build()
        .new_agent()
}

/// Whether the thread goes on after a batch.
#[derive(PartialEq, Eq)]
enum Next {
    Continue,
    Stop,
}

/// One attempt's result.
enum Attempt {
    /// The status and the start of the reply.
    Status(u16, String),
    Error(String),
}

struct Worker {
    gateway: Gateway,
    delivery: Delivery,
    queue: Receiver<Notification>,
    stopped: Receiver<()>,
    counters: Arc<Counters>,
}

impl Worker {
    fn run(&mut self) {
        let mut batch = Vec::with_capacity(self.delivery.batch_size);
        loop {
            select! {
                recv(self.queue) -> n => match n {
                    Ok(n) => batch.push(n),
                    Err(_) => break,
                },
                recv(self.stopped) -> _ => break,
            }
            while batch.len() < self.delivery.batch_size {
                match self.queue.try_recv() {
                    Ok(n) => batch.push(n),
                    Err(_) => break,
                }
            }
            if self.deliver(&batch) == Next::Stop {
                break;
            }
            batch.clear();
        }
        let left = self.queue.try_iter().count();
        if left > 0 {
            log::warn!("stopping: {left} queued notifications dropped");
            Counters::add(&self.counters.dropped, left);
        }
    }

    fn deliver(&self, batch: &[Notification]) -> Next {
        let (agent, url) = match &self.gateway {
            Gateway::Log => {
                for n in batch {
                    let (user, platform, badge) = (n.user_id, n.platform.name(), n.badge);
                    if n.silent {
                        log::info!(
                            "push (no gateway): user {user} {platform} badge {badge} silent"
                        );
                    } else {
                        let text = &n.payload.flash;
                        log::info!(
                            "push (no gateway): user {user} {platform} badge {badge}: {text}"
                        );
                    }
                }
                Counters::add(&self.counters.sent, batch.len());
                return Next::Continue;
            }
            Gateway::Http { agent, url } => (agent, url),
        };
        let body = gorush_body(batch, &self.delivery.topic).to_string();
        let count = batch.len();
        let mut delay = self.delivery.retry_delay;
        let mut attempt = 1;
        let last = loop {
            let outcome = post(agent, url, &body);
            match outcome {
                Attempt::Status(s, _) if (200..300).contains(&s) => {
                    log::debug!("gateway took {count} notifications");
                    Counters::add(&self.counters.sent, count);
                    return Next::Continue;
                }
                Attempt::Status(s, ref reply) if s < 500 => {
                    log::warn!(
                        "gateway {url} answered {s}: batch of {count} notifications failed \
                         (not retried); reply: {reply}"
                    );
                    Counters::add(&self.counters.failed, count);
                    return Next::Continue;
                }
                Attempt::Status(s, _) => log::debug!("gateway answered {s} (attempt {attempt})"),
                Attempt::Error(ref e) => log::debug!("gateway: {e} (attempt {attempt})"),
            }
            if attempt == self.delivery.max_attempts {
                break outcome;
            }
            match self.stopped.recv_timeout(delay) {
                Err(RecvTimeoutError::Timeout) => {}
                Ok(()) | Err(RecvTimeoutError::Disconnected) => {
                    log::warn!("stopping: batch of {count} notifications dropped while retried");
                    Counters::add(&self.counters.dropped, count);
                    return Next::Stop;
                }
            }
            delay = delay.saturating_mul(2);
            attempt += 1;
        };
        let what = match last {
            Attempt::Status(s, reply) => format!("answered {s} ({reply})"),
            Attempt::Error(e) => e,
        };
        log::warn!(
            "gateway {url} {what} on each of {attempt} attempts: batch of {count} notifications \
             failed"
        );
        Counters::add(&self.counters.failed, count);
        Next::Continue
    }
}

/// One `POST` of `body`; the reply is read (bounded) so that the connection can be reused.
fn post(agent: &Agent, url: &str, body: &str) -> Attempt {
    let sent = agent
        .post(url)
        .header("Content-Type", "application/json")
        .send(body);
    let mut rsp = match sent {
        Ok(rsp) => rsp,
        Err(e) => return Attempt::Error(e.to_string()),
    };
    let status = rsp.status().as_u16();
    let reply = match rsp.body_mut().with_config().limit(MAX_REPLY).read_to_vec() {
        Ok(reply) => reply,
        Err(e) => {
            log::debug!("gateway reply {status} not read whole: {e}");
            Vec::new()
        }
    };
    let start = &reply[..reply.len().min(LOGGED_REPLY)];
    Attempt::Status(status, String::from_utf8_lossy(start).into_owned())
}
