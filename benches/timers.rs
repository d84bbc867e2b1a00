//! netlib's timers at scale: 100 000 one-shot timers on one event loop.
//!
//! Every timer gets a distinct delay, 0..100 000 ns, inserted in a scrambled order (a fixed
//! permutation) so the heap does real work. The whole insertion takes far longer than 100 µs,
//! so every timer is due by the time the loop turns: firing needs no waiting.
//!
//! * `insert`: insert all (the timers are left to drop with the loop, untimed);
//! * `insert_fire`: insert all, then turn the loop until all have fired;
//! * `fire`: the same, timing only the turns (insertion excluded);
//! * `insert_remove`: insert all, then remove all with `Net::remove_timer`;
//! * `remove`: the same, timing only the removals.
//!
//! Each iteration starts from a fresh `EventLoop` (created and dropped outside the timing).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use netlib::{Buffer, Config, ConnId, EventLoop, Handler, Net, TimerId};

const N: u64 = 100_000;
/// Coprime with `N`, so `i * STRIDE % N` is a permutation of 0..N.
const STRIDE: u64 = 7919;

struct Fired {
    count: u64,
    /// Tags in firing order (only for the invariant check, never while measured).
    record: Option<Vec<u64>>,
}

impl Handler for Fired {
    type Msg = ();

    fn on_read(&mut self, _: &mut Net, _: ConnId, _: &mut Buffer) {
        unreachable!("no sockets");
    }

    fn on_timer(&mut self, _: &mut Net, _: TimerId, tag: u64) {
        self.count += 1;
        if let Some(tags) = &mut self.record {
            tags.push(tag);
        }
    }
}

fn new_loop() -> EventLoop<()> {
    EventLoop::new(Config::default()).expect("event loop")
}

/// Inserts the `N` timers, tagged with their delay in ns; their ids go to `ids`.
#[inline]
fn insert(ev: &mut EventLoop<()>, ids: &mut Vec<TimerId>) {
    let net = ev.net();
    for i in 0..N {
        let delay = i * STRIDE % N;
        ids.push(net.add_oneshot(Duration::from_nanos(delay), delay));
    }
}

/// Turns the loop until every timer has fired.
#[inline]
fn fire(ev: &mut EventLoop<()>, h: &mut Fired) {
    while h.count < N {
        ev.turn(h).expect("turn");
    }
}

#[inline]
fn remove(ev: &mut EventLoop<()>, ids: &[TimerId]) -> u64 {
    let net = ev.net();
    let mut removed = 0;
    for &id in ids {
        removed += u64::from(net.remove_timer(id));
    }
    removed
}

/// The invariants, checked once outside the measurement.
fn check() {
    // Every timer fires exactly once, in due order.
    let mut ev = new_loop();
    let mut ids = Vec::new();
    let mut h = Fired {
        count: 0,
        record: Some(Vec::new()),
    };
    insert(&mut ev, &mut ids);
    assert_eq!(ev.net().timer_count(), N as usize);
    fire(&mut ev, &mut h);
    let tags = h.record.take().expect("recorded");
    assert!(
        tags.iter().copied().eq(0..N),
        "all {N} timers fire once, in due order"
    );
    assert_eq!(ev.net().timer_count(), 0);

    // Every timer is removed, and none fires afterwards.
    let mut ev = new_loop();
    let mut h = Fired {
        count: 0,
        record: Some(Vec::new()),
    };
    ids.clear();
    insert(&mut ev, &mut ids);
    assert_eq!(remove(&mut ev, &ids), N, "every timer removed");
    assert_eq!(ev.net().timer_count(), 0);
    assert_eq!(remove(&mut ev, &ids), 0, "removed timers are gone");
    // By the turn that fires this sentinel every removed timer is due too (inserting took far
    // longer than 100 µs): any of them still live would fire in the same turn.
    const SENTINEL: u64 = u64::MAX;
    ev.net().add_oneshot(Duration::ZERO, SENTINEL);
    while h.count == 0 {
        ev.turn(&mut h).expect("turn");
    }
    assert_eq!(
        h.record.as_deref(),
        Some(&[SENTINEL][..]),
        "no removed timer fires"
    );
}

/// What one iteration times.
#[derive(Clone, Copy)]
enum Part {
    Insert,
    InsertFire,
    Fire,
    InsertRemove,
    Remove,
}

fn run(iters: u64, part: Part) -> Duration {
    let mut total = Duration::ZERO;
    let mut ids = Vec::with_capacity(N as usize);
    for _ in 0..iters {
        let mut ev = new_loop();
        let mut h = Fired {
            count: 0,
            record: None,
        };
        ids.clear();
        let start = Instant::now();
        insert(&mut ev, &mut ids);
        let inserted = Instant::now();
        match part {
            Part::Insert => {
                total += inserted - start;
                assert_eq!(ev.net().timer_count(), N as usize);
                continue;
            }
            Part::InsertFire | Part::Fire => {
                fire(&mut ev, &mut h);
                let end = Instant::now();
                total += if matches!(part, Part::Fire) {
                    end - inserted
                } else {
                    end - start
                };
                assert_eq!(h.count, N);
            }
            Part::InsertRemove | Part::Remove => {
                let removed = remove(&mut ev, black_box(&ids));
                let end = Instant::now();
                total += if matches!(part, Part::Remove) {
                    end - inserted
                } else {
                    end - start
                };
                assert_eq!(removed, N);
            }
        }
        assert_eq!(ev.net().timer_count(), 0);
    }
    total
}

fn timers(c: &mut Criterion) {
    check();
    let mut g = c.benchmark_group("timers_100k");
    g.throughput(Throughput::Elements(N));
    for (name, part) in [
        ("insert", Part::Insert),
        ("insert_fire", Part::InsertFire),
        ("fire", Part::Fire),
        ("insert_remove", Part::InsertRemove),
        ("remove", Part::Remove),
    ] {
        g.bench_function(name, |b| b.iter_custom(|iters| run(iters, part)));
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = timers
}
criterion_main!(benches);
