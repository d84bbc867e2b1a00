//! The end of a run: each pair's log checked against what was acked (losses, duplicates,
//! corruption, order, id gaps), and the figures printed.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use super::{Acked, PairLog, Shared, text_of};

pub(crate) fn percentile(sorted: &[Duration], p: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[(sorted.len() - 1) * p / 100]
}

pub(crate) fn ms(d: Duration) -> String {
    format!("{:.2}ms", d.as_secs_f64() * 1000.0)
}

#[derive(Default)]
pub(crate) struct Totals {
    pub(crate) sent_acked: u64,
    pub(crate) unacked: u64,
    pub(crate) stray_acks: u64,
    pub(crate) delivered: u64,
    pub(crate) lost: u64,
    pub(crate) duplicated: u64,
    pub(crate) out_of_order: u64,
    pub(crate) corrupted: u64,
    pub(crate) id_gaps: u64,
    /// Gaps in pairs that had unacked messages (explained by them).
    pub(crate) gaps_unacked: u64,
    /// W=1 only: a later ack carrying a lower msg id.
    pub(crate) ack_reorder: u64,
    pub(crate) unacked_delivered: u64,
    pub(crate) foreign: u64,
    pub(crate) errors: Vec<String>,
    pub(crate) ack_lat: Vec<Duration>,
    pub(crate) del_lat: Vec<Duration>,
    pub(crate) last_ack: Option<Instant>,
}

pub(crate) fn check_pair(sh: &Shared, pair: usize, log: &PairLog, t: &mut Totals) {
    let opts = &sh.opts;
    let sender_id = opts.first_user + 2 * pair as u32;
    t.sent_acked += log.acked.len() as u64;
    t.unacked += log.unacked;
    t.stray_acks += log.stray_acks;
    t.foreign += log.foreign;
    for (who, e) in [
        ("sender", &log.sender_error),
        ("receiver", &log.receiver_error),
    ] {
        if let Some(e) = e {
            t.errors.push(format!("pair {pair} {who}: {e}"));
        }
    }
    // msg_id -> acked message
    let mut by_id: BTreeMap<u32, &Acked> = BTreeMap::new();
    for a in &log.acked {
        t.ack_lat.push(a.acked_at.duration_since(a.sent_at));
        t.last_ack = Some(t.last_ack.map_or(a.acked_at, |l| l.max(a.acked_at)));
        if by_id.insert(a.msg_id, a).is_some() {
            t.errors
                .push(format!("pair {pair}: msg_id {} acked twice", a.msg_id));
            t.id_gaps += 1;
        }
    }
    // The ids of the pair's acked messages must be consecutive. A message given up without
    // an ack may have used an id up (msg_server sends no ack for a message db_proxy could not
    // store), so gaps in a pair with unacked messages are only noted.
    let ids: Vec<u32> = by_id.keys().copied().collect();
    for w in ids.windows(2) {
        if w[1] != w[0].wrapping_add(1) {
            let why = if log.unacked == 0 {
                t.id_gaps += 1;
                ""
            } else {
                t.gaps_unacked += 1;
                " (the pair has unacked messages)"
            };
            if t.id_gaps + t.gaps_unacked <= 10 {
                t.errors.push(format!(
                    "pair {pair} (user{sender_id}): acked msg ids jump from {} to {}{why}",
                    w[0], w[1]
                ));
            }
        }
    }
    if opts.window == 1 {
        // One at a time: the ids must grow in the order of the acks.
        for w in log.acked.windows(2) {
            if w[1].msg_id <= w[0].msg_id {
                t.ack_reorder += 1;
                if t.ack_reorder <= 10 {
                    t.errors.push(format!(
                        "pair {pair}: message {} got msg_id {} after message {} got {}",
                        w[1].n, w[1].msg_id, w[0].n, w[0].msg_id
                    ));
                }
            }
        }
    }
    let mut count: HashMap<u32, u32> = HashMap::new();
    let mut max_seen: Option<u32> = None;
    for d in &log.delivered {
        let c = count.entry(d.msg_id).or_insert(0);
        *c += 1;
        if *c > 1 {
            t.duplicated += 1;
            continue;
        }
        t.delivered += 1;
        if max_seen.is_some_and(|m| d.msg_id < m) {
            t.out_of_order += 1;
        }
        max_seen = Some(max_seen.map_or(d.msg_id, |m| m.max(d.msg_id)));
        match by_id.get(&d.msg_id) {
            Some(a) => {
                let want = text_of(&sh.run_tag, pair, a.n, opts.size);
                if d.text.as_deref() != Some(want.as_str()) {
                    t.corrupted += 1;
                    if t.corrupted <= 10 {
                        t.errors.push(format!(
                            "pair {pair}: msg_id {} delivered with text {:?}, sent {:?}",
                            d.msg_id, d.text, want
                        ));
                    }
                }
                t.del_lat.push(d.at.duration_since(a.sent_at));
            }
            None => {
                let ours = d
                    .text
                    .as_deref()
                    .is_some_and(|x| x.starts_with(&format!("tt-load {} ", sh.run_tag)));
                if ours {
                    // Sent by this run, ack given up (or still in flight at the deadline).
                    t.unacked_delivered += 1;
                } else {
                    t.foreign += 1;
                }
            }
        }
    }
    for id in by_id.keys() {
        if !count.contains_key(id) {
            t.lost += 1;
            if t.lost <= 10 {
                t.errors.push(format!(
                    "pair {pair} (user{sender_id} -> user{}): msg_id {id} acked, never delivered",
                    sender_id + 1
                ));
            }
        }
    }
}
