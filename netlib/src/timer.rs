//! Timers: a binary min-heap of due times over a map of live timers.
//!
//! Every operation is O(log n). Removal is lazy: the map entry goes at once and the heap entry is
//! skipped when it surfaces (the heap is rebuilt when stale entries outnumber live ones, so memory
//! stays proportional to the live timers).
//!
//! # Schedule rule
//!
//! A repeating timer keeps the original's grid: after firing, its next due time is the previous
//! due time plus the interval (`next_tick += interval`), so it does not drift with loop latency.
//! Unlike the original it never fires in a burst to catch up: if after that step the due time is
//! still not in the future (the loop stalled for a whole interval or more), the missed ticks are
//! dropped and the grid restarts at `now + interval`. A timer fires at most once per loop
//! iteration.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::num::NonZeroU64;
use std::time::{Duration, Instant};

/// Identifies a timer for [`crate::Net::remove_timer`]. Never reused within one event loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimerId(NonZeroU64);

impl TimerId {
    /// Ids count from 1, so that `Option<TimerId>` takes no more room than the id.
    fn new(id: u64) -> TimerId {
        TimerId(NonZeroU64::new(id).expect("timer ids start at 1"))
    }
}

/// What a timer is for: the owner's (with its tag) or one netlib keeps for itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TimerKind {
    User(u64),
    /// An outgoing connect that must be confirmed by then (the id is the connection's).
    ConnectTimeout(u64),
    /// A closing connection whose output must be flushed by then.
    Linger(u64),
}

struct Entry {
    due: Instant,
    interval: Duration,
    repeat: bool,
    kind: TimerKind,
}

#[derive(Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<(Instant, u64)>>,
    live: HashMap<u64, Entry>,
    next_id: u64,
}

impl Timers {
    pub(crate) fn add(
        &mut self,
        now: Instant,
        interval: Duration,
        repeat: bool,
        kind: TimerKind,
    ) -> TimerId {
        self.next_id += 1;
        let id = self.next_id;
        let due = now + interval;
        self.live.insert(
            id,
            Entry {
                due,
                interval,
                repeat,
                kind,
            },
        );
        self.heap.push(Reverse((due, id)));
        TimerId::new(id)
    }

    /// Removes a timer; false if it was not there (already fired one-shot, or removed).
    pub(crate) fn remove(&mut self, id: TimerId) -> bool {
        let removed = self.live.remove(&id.0.get()).is_some();
        if removed && self.heap.len() > 64 && self.heap.len() > 2 * self.live.len() {
            let live = &self.live;
            self.heap = self
                .heap
                .drain()
                .filter(|Reverse((due, id))| live.get(id).is_some_and(|e| e.due == *due))
                .collect();
        }
        removed
    }

    pub(crate) fn len(&self) -> usize {
        self.live.len()
    }

    /// When the earliest live timer is due (stale heap entries are dropped on the way).
    pub(crate) fn next_due(&mut self) -> Option<Instant> {
        while let Some(&Reverse((due, id))) = self.heap.peek() {
            if self.live.get(&id).is_some_and(|e| e.due == due) {
                return Some(due);
            }
            self.heap.pop();
        }
        None
    }

    /// Moves every timer due at `now` into `out` as (id, kind, repeating), in due order (ties in
    /// creation order), and reschedules the repeating ones by the rule in the module docs.
    /// One-shot timers stay live until the caller fires them: it checks [`Timers::is_live`]
    /// before each (an earlier callback may have removed it) and removes a one-shot one.
    pub(crate) fn collect_due(&mut self, now: Instant, out: &mut Vec<(TimerId, TimerKind, bool)>) {
        while let Some(&Reverse((due, id))) = self.heap.peek() {
            if due > now {
                break;
            }
            self.heap.pop();
            let Some(entry) = self.live.get_mut(&id) else {
                continue;
            };
            if entry.due != due {
                continue;
            }
            out.push((TimerId::new(id), entry.kind, entry.repeat));
            if entry.repeat {
                let mut next = due + entry.interval;
                if next <= now {
                    next = now + entry.interval.max(Duration::from_millis(1));
                }
                entry.due = next;
                self.heap.push(Reverse((next, id)));
            }
        }
    }

    pub(crate) fn is_live(&self, id: TimerId) -> bool {
        self.live.contains_key(&id.0.get())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn fires_in_due_order_and_keeps_the_grid() {
        let t0 = Instant::now();
        let mut t = Timers::default();
        let a = t.add(t0, ms(30), false, TimerKind::User(1));
        let b = t.add(t0, ms(10), true, TimerKind::User(2));
        let mut out = Vec::new();
        t.collect_due(t0 + ms(12), &mut out);
        assert_eq!(out, vec![(b, TimerKind::User(2), true)]);
        out.clear();
        // Fired late (at 12 ms); the next tick stays on the 10 ms grid: due at 20, not 22.
        assert_eq!(t.next_due(), Some(t0 + ms(20)));
        t.collect_due(t0 + ms(30), &mut out);
        assert_eq!(
            out,
            vec![
                (b, TimerKind::User(2), true),
                (a, TimerKind::User(1), false)
            ]
        );
        assert!(t.is_live(a), "a one-shot timer stays live until fired");
        assert!(t.remove(a));
        assert!(t.is_live(b));
    }

    #[test]
    fn a_stall_does_not_cause_a_burst() {
        let t0 = Instant::now();
        let mut t = Timers::default();
        let b = t.add(t0, ms(10), true, TimerKind::User(0));
        let mut out = Vec::new();
        t.collect_due(t0 + ms(95), &mut out);
        assert_eq!(out.len(), 1, "fires once, not nine times");
        assert_eq!(t.next_due(), Some(t0 + ms(105)));
        assert!(t.remove(b));
        assert!(!t.remove(b));
        assert_eq!(t.next_due(), None);
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn lazy_removal_keeps_the_heap_bounded() {
        let t0 = Instant::now();
        let mut t = Timers::default();
        let ids: Vec<_> = (0..1000)
            .map(|i| t.add(t0, ms(i + 1), false, TimerKind::User(i)))
            .collect();
        for id in &ids[..990] {
            t.remove(*id);
        }
        assert!(t.heap.len() <= 2 * t.live.len() + 64);
        let mut out = Vec::new();
        t.collect_due(t0 + ms(2000), &mut out);
        assert_eq!(out.len(), 10);
    }
}
