//! Counters the message path updates: atomics with relaxed ordering (one add, no lock, no
//! allocation), read only when `/metrics` is scraped.
//!
//! Counters indexed by command id hold one slot per id below [`COMMAND_SLOTS`] (every service
//! id of the protocol is below 8, so every defined command id is) and one slot for anything
//! else; a slot is named at scrape time with `tt_proto::ids::cid_name`, undefined ids are
//! summed under `unknown`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tt_proto::ids::cid_name;

use crate::scrape::Scrape;

/// Slots for command ids `0..COMMAND_SLOTS`; one more counts every other id.
pub const COMMAND_SLOTS: usize = 0x0800;

/// The label value of command ids that are not defined by the protocol.
pub const UNKNOWN_COMMAND: &str = "unknown";

#[inline]
fn slot(command_id: u16) -> usize {
    (command_id as usize).min(COMMAND_SLOTS)
}

/// A monotonic counter.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub const fn new() -> Counter {
        Counter(AtomicU64::new(0))
    }

    #[inline]
    pub fn inc(&self) {
        self.add(1);
    }

    #[inline]
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// PDUs and their bytes (header included) per command id.
#[derive(Debug)]
pub struct CommandCounters {
    pdus: [Counter; COMMAND_SLOTS + 1],
    bytes: [Counter; COMMAND_SLOTS + 1],
}

impl CommandCounters {
    pub const fn new() -> CommandCounters {
        CommandCounters {
            pdus: [const { Counter::new() }; COMMAND_SLOTS + 1],
            bytes: [const { Counter::new() }; COMMAND_SLOTS + 1],
        }
    }

    /// One PDU of `command_id`, `len` bytes long.
    #[inline]
    pub fn count(&self, command_id: u16, len: usize) {
        let s = slot(command_id);
        self.pdus[s].inc();
        self.bytes[s].add(len as u64);
    }

    /// PDUs counted for `command_id` (every undefined id shares one slot past the table).
    pub fn pdus(&self, command_id: u16) -> u64 {
        self.pdus[slot(command_id)].get()
    }

    /// `(command name, PDUs, bytes)` of every command seen, undefined ids summed as
    /// [`UNKNOWN_COMMAND`].
    pub fn seen(&self) -> Vec<(&'static str, u64, u64)> {
        let mut out = Vec::new();
        let (mut unknown_pdus, mut unknown_bytes) = (0, 0);
        for s in 0..=COMMAND_SLOTS {
            let pdus = self.pdus[s].get();
            if pdus == 0 {
                continue;
            }
            let bytes = self.bytes[s].get();
            match u16::try_from(s).ok().and_then(cid_name) {
                Some(name) if s < COMMAND_SLOTS => out.push((name, pdus, bytes)),
                _ => {
                    unknown_pdus += pdus;
                    unknown_bytes += bytes;
                }
            }
        }
        if unknown_pdus > 0 {
            out.push((UNKNOWN_COMMAND, unknown_pdus, unknown_bytes));
        }
        out
    }
}

impl Default for CommandCounters {
    fn default() -> CommandCounters {
        CommandCounters::new()
    }
}

/// PDUs received by this process, by command.
pub static PDUS_IN: CommandCounters = CommandCounters::new();
/// PDUs sent by this process, by command.
pub static PDUS_OUT: CommandCounters = CommandCounters::new();

/// Writes `tt_pdus_in_total`, `tt_pdu_bytes_in_total`, `tt_pdus_out_total` and
/// `tt_pdu_bytes_out_total`, by `command`.
pub fn write_pdus(out: &mut Scrape) {
    for (counters, pdus, pdus_help, bytes, bytes_help) in [
        (
            &PDUS_IN,
            "tt_pdus_in",
            "PDUs received, by command (heartbeats included)",
            "tt_pdu_bytes_in",
            "Bytes of the PDUs received, header included, by command",
        ),
        (
            &PDUS_OUT,
            "tt_pdus_out",
            "PDUs sent, by command (heartbeats included)",
            "tt_pdu_bytes_out",
            "Bytes of the PDUs sent, header included, by command",
        ),
    ] {
        let seen = counters.seen();
        out.counter_family(
            pdus,
            pdus_help,
            "command",
            seen.iter().map(|&(name, n, _)| (name.to_string(), n)),
        );
        out.counter_family(
            bytes,
            bytes_help,
            "command",
            seen.iter().map(|&(name, _, n)| (name.to_string(), n)),
        );
    }
}

/// Why a PDU was dropped rather than handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// Over a sender's rate limit (msg_server's messages per second).
    RateLimit,
    /// A command that needs a logged-in connection, before the login completed.
    PreLogin,
    /// A body that does not decode, or a broken framing.
    ParseError,
    /// A connection closed because its queued output passed the limit.
    OutputOverflow,
}

impl DropReason {
    pub const ALL: [DropReason; 4] = [
        DropReason::RateLimit,
        DropReason::PreLogin,
        DropReason::ParseError,
        DropReason::OutputOverflow,
    ];

    /// The `reason` label value.
    pub fn label(self) -> &'static str {
        match self {
            DropReason::RateLimit => "rate_limit",
            DropReason::PreLogin => "pre_login",
            DropReason::ParseError => "parse_error",
            DropReason::OutputOverflow => "output_overflow",
        }
    }
}

static DROPPED: [Counter; 4] = [const { Counter::new() }; 4];

/// Counts one dropped PDU (for [`DropReason::OutputOverflow`]: one connection closed with its
/// queued output).
#[inline]
pub fn dropped(reason: DropReason) {
    DROPPED[reason as usize].inc();
}

/// Dropped PDUs counted for `reason`.
pub fn dropped_count(reason: DropReason) -> u64 {
    DROPPED[reason as usize].get()
}

/// Writes `tt_pdus_dropped_total` by `reason` (every reason, zeros included).
pub fn write_dropped(out: &mut Scrape) {
    out.counter_family(
        "tt_pdus_dropped",
        "PDUs dropped rather than handled, by reason (output_overflow counts connections closed with their queued output)",
        "reason",
        DropReason::ALL
            .iter()
            .map(|&r| (r.label().to_string(), dropped_count(r))),
    );
}

/// Upper bounds, in seconds, of the latency histograms' buckets (one more bucket is `+Inf`).
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// A latency histogram with the [`LATENCY_BUCKETS`].
#[derive(Debug)]
pub struct Histogram {
    buckets: [Counter; LATENCY_BUCKETS.len() + 1],
    sum_micros: Counter,
}

impl Histogram {
    pub const fn new() -> Histogram {
        Histogram {
            buckets: [const { Counter::new() }; LATENCY_BUCKETS.len() + 1],
            sum_micros: Counter::new(),
        }
    }

    pub fn observe(&self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        let b = LATENCY_BUCKETS
            .iter()
            .position(|&bound| secs <= bound)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.buckets[b].inc();
        self.sum_micros
            .add(u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX));
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.buckets.iter().map(Counter::get).sum()
    }

    /// `(sum in seconds, count, (upper bound, observations in that bucket alone))`.
    pub fn snapshot(&self) -> (f64, u64, Vec<(f64, u64)>) {
        let buckets: Vec<(f64, u64)> = LATENCY_BUCKETS
            .iter()
            .copied()
            .chain([f64::INFINITY])
            .zip(self.buckets.iter().map(Counter::get))
            .collect();
        let count = buckets.iter().map(|&(_, n)| n).sum();
        (self.sum_micros.get() as f64 / 1e6, count, buckets)
    }
}

impl Default for Histogram {
    fn default() -> Histogram {
        Histogram::new()
    }
}

/// A latency histogram per command id.
#[derive(Debug)]
pub struct CommandHistograms {
    slots: [Histogram; COMMAND_SLOTS + 1],
}

impl CommandHistograms {
    pub const fn new() -> CommandHistograms {
        CommandHistograms {
            slots: [const { Histogram::new() }; COMMAND_SLOTS + 1],
        }
    }

    pub fn observe(&self, command_id: u16, elapsed: Duration) {
        self.slots[slot(command_id)].observe(elapsed);
    }

    /// Writes the histograms of the commands observed, labelled `command`.
    pub fn write(&self, out: &mut Scrape, name: &'static str, help: &str) {
        let mut rows = Vec::new();
        for (s, h) in self.slots.iter().enumerate() {
            if h.count() == 0 {
                continue;
            }
            let name = u16::try_from(s)
                .ok()
                .filter(|_| s < COMMAND_SLOTS)
                .and_then(cid_name)
                .unwrap_or(UNKNOWN_COMMAND);
            rows.push((name.to_string(), h.snapshot()));
        }
        out.histogram_family(name, help, "command", rows);
    }
}

impl Default for CommandHistograms {
    fn default() -> CommandHistograms {
        CommandHistograms::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tt_proto::ids::cid;

    #[test]
    fn commands_by_name_and_unknown_ids_summed() {
        let c = CommandCounters::new();
        c.count(cid::CID_MSG_DATA, 40);
        c.count(cid::CID_MSG_DATA, 60);
        c.count(0x07ff, 16);
        c.count(0xffff, 20);
        let seen = c.seen();
        assert_eq!(
            seen,
            vec![("CID_MSG_DATA", 2, 100), (UNKNOWN_COMMAND, 2, 36)]
        );
        assert_eq!(c.pdus(cid::CID_MSG_DATA), 2);
    }

    #[test]
    fn histogram_buckets() {
        let h = Histogram::new();
        h.observe(Duration::from_micros(100));
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(10));
        let (sum, count, buckets) = h.snapshot();
        assert_eq!(count, 3);
        assert!((sum - 10.0031).abs() < 1e-9);
        assert_eq!(buckets[0], (0.0005, 1));
        assert_eq!(buckets[3], (0.005, 1));
        assert_eq!(*buckets.last().unwrap(), (f64::INFINITY, 1));
    }
}
