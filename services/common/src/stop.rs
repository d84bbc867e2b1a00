//! Graceful stop, shared by every daemon.
//!
//! The first SIGTERM or SIGINT starts it: every listener is closed at once and the daemon's
//! own stop runs (tell the peers that care, refuse new work); the daemon then finishes what it
//! has in flight, and once it reports itself drained every connection is closed gracefully
//! (queued output written, then the end of stream). The loop ends when no connection has
//! output left to write, and the process exits 0.
//!
//! `StopTimeout` (seconds, default [`DEFAULT_STOP_TIMEOUT`]) bounds all of that: when it is
//! hit the loop ends at once and the process exits non-zero; so does a second stop signal.
//! SIGHUP is logged and otherwise ignored (the daemons log to stderr: there is no log file to
//! reopen).

use std::sync::Mutex;
use std::sync::OnceLock;
use std::time::Duration;

use netlib::{Net, Signal, TimerId};

use crate::conf::{Conf, ConfError};

/// The graceful-stop bound when the conf has no `StopTimeout`.
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// Timer tag of the stop's deadline. Handlers give it to [`Stopping::timer`].
pub const DEADLINE_TAG: u64 = u64::MAX - 1;
/// Timer tag of the stop's progress check. Handlers give it to [`Stopping::timer`].
pub const POLL_TAG: u64 = u64::MAX - 2;

/// How often a stopping daemon checks whether it is drained and its connections flushed.
/// A closing connection's output drains inside netlib without a callback, hence a poll.
const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// Largest `StopTimeout` accepted, in seconds (an hour).
const MAX_STOP_TIMEOUT_SECS: u64 = 3600;

static STOP_TIMEOUT: OnceLock<Duration> = OnceLock::new();
static FAILURE: Mutex<Option<String>> = Mutex::new(None);

/// `StopTimeout` of a conf: whole seconds, 1 to 3600; absent: [`DEFAULT_STOP_TIMEOUT`].
pub fn stop_timeout(conf: &Conf) -> Result<Duration, ConfError> {
    let secs: u64 = conf.get_parse("StopTimeout", DEFAULT_STOP_TIMEOUT.as_secs())?;
    if secs == 0 || secs > MAX_STOP_TIMEOUT_SECS {
        return Err(conf.invalid(
            "StopTimeout",
            &secs.to_string(),
            &format!("seconds from 1 to {MAX_STOP_TIMEOUT_SECS}"),
        ));
    }
    Ok(Duration::from_secs(secs))
}

/// Sets the process's stop bound (once, from its conf; later calls change nothing).
pub fn set_stop_timeout(timeout: Duration) {
    let _ = STOP_TIMEOUT.set(timeout);
}

/// The process's stop bound: the conf's `StopTimeout`, or the default.
pub fn configured_timeout() -> Duration {
    STOP_TIMEOUT.get().copied().unwrap_or(DEFAULT_STOP_TIMEOUT)
}

/// Why the last stop of this process failed (the bound was hit, a second signal came), if it
/// did; taken once. [`crate::daemon::serve`] turns it into the exit status.
pub fn take_failure() -> Option<String> {
    FAILURE.lock().map_or(None, |mut f| f.take())
}

fn fail(reason: String) {
    log::error!("{reason}");
    if let Ok(mut f) = FAILURE.lock() {
        f.get_or_insert(reason);
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Running,
    /// Listeners closed, the daemon finishing its work in flight.
    Draining,
    /// Every connection closed; their output being written.
    Closing,
    Done,
}

/// What a signal asks of the handler.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignalAction {
    /// Nothing (SIGHUP, or a stop already over).
    None,
    /// The stop starts: listeners are closed; the daemon runs its own stop now.
    Begin,
    /// A second stop signal: the loop has been told to end at once.
    Abort,
}

/// The stop state of one daemon's loop (see the module documentation).
pub struct Stopping {
    phase: Phase,
    timeout: Duration,
    timers: Vec<TimerId>,
}

impl Default for Stopping {
    fn default() -> Self {
        Stopping::new(configured_timeout())
    }
}

impl Stopping {
    pub fn new(timeout: Duration) -> Stopping {
        Stopping {
            phase: Phase::Running,
            timeout,
            timers: Vec::new(),
        }
    }

    /// True from the first stop signal on.
    pub fn is_stopping(&self) -> bool {
        self.phase != Phase::Running
    }

    /// True once the daemon is drained and its connections are being closed.
    pub fn is_closing(&self) -> bool {
        matches!(self.phase, Phase::Closing | Phase::Done)
    }

    /// A watched signal arrived.
    pub fn signal(&mut self, net: &mut Net, signal: Signal) -> SignalAction {
        if signal == Signal::Hangup {
            log::info!("SIGHUP received: logs go to stderr, nothing to reopen; ignored");
            return SignalAction::None;
        }
        match self.phase {
            Phase::Running => {
                let listeners = net.close_listeners();
                log::info!(
                    "{signal:?} received: stopping gracefully within {} s ({listeners} listeners \
                     closed, {} connections open)",
                    self.timeout.as_secs(),
                    net.connection_count()
                );
                self.phase = Phase::Draining;
                self.timers
                    .push(net.add_oneshot(self.timeout, DEADLINE_TAG));
                self.timers.push(net.add_timer(POLL_INTERVAL, POLL_TAG));
                SignalAction::Begin
            }
            Phase::Done => SignalAction::None,
            Phase::Draining | Phase::Closing => {
                fail(format!("{signal:?} received again: stopping at once"));
                self.finish(net);
                SignalAction::Abort
            }
        }
    }

    /// True between the first stop signal and the daemon's report that it is drained.
    pub fn is_draining(&self) -> bool {
        self.phase == Phase::Draining
    }

    /// A timer with [`DEADLINE_TAG`] or [`POLL_TAG`]: the stop's own. False for any other
    /// tag. `drained` says whether the daemon has finished its work in flight (read only
    /// while [`Stopping::is_draining`]).
    pub fn timer(&mut self, net: &mut Net, tag: u64, drained: bool) -> bool {
        match tag {
            DEADLINE_TAG => {
                if self.phase != Phase::Done {
                    fail(format!(
                        "StopTimeout ({} s) hit while {}: stopping at once ({} connections \
                         open, {} closing)",
                        self.timeout.as_secs(),
                        if self.phase == Phase::Draining {
                            "finishing work in flight"
                        } else {
                            "writing the last output"
                        },
                        net.connection_count(),
                        net.closing_count()
                    ));
                    self.finish(net);
                }
                true
            }
            POLL_TAG => {
                self.advance(net, drained);
                true
            }
            _ => false,
        }
    }

    /// Moves the stop on: closes every connection once the daemon is drained, ends the loop
    /// once their output is written.
    pub fn advance(&mut self, net: &mut Net, drained: bool) {
        if self.phase == Phase::Draining && drained {
            log::info!(
                "work in flight finished: closing {} connections",
                net.connection_count()
            );
            net.close_all();
            self.phase = Phase::Closing;
        }
        if self.phase == Phase::Closing
            && net.connection_count() == 0
            && net.closing_unflushed_count() == 0
        {
            log::info!("every connection closed: stopped gracefully");
            self.finish(net);
        }
    }

    fn finish(&mut self, net: &mut Net) {
        self.phase = Phase::Done;
        for t in self.timers.drain(..) {
            net.remove_timer(t);
        }
        net.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(text: &str) -> Conf {
        Conf::parse(text, "test.conf")
    }

    #[test]
    fn stop_timeout_default_and_bounds() {
        assert_eq!(stop_timeout(&conf("")).unwrap(), DEFAULT_STOP_TIMEOUT);
        assert_eq!(
            stop_timeout(&conf("StopTimeout=12\n")).unwrap(),
            Duration::from_secs(12)
        );
        for bad in ["0", "3601", "-1", "soon"] {
            let e = stop_timeout(&conf(&format!("StopTimeout={bad}\n"))).unwrap_err();
            assert!(e.to_string().contains("StopTimeout"), "{e}");
        }
    }
}
