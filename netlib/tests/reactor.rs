//! netlib on real loopback sockets. Every test runs its loop until the handler has seen what
//! it waits for; a one-shot guard timer turns a hang into a failure instead of a stuck build.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener as StdListener, TcpStream as StdStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use netlib::{
    Buffer, CloseReason, Config, ConnId, EventLoop, Handler, ListenerId, Net, Signal, TimerId,
};

const GUARD_TAG: u64 = u64::MAX;

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

fn new_loop<M: Send + 'static>(config: Config) -> EventLoop<M> {
    let mut ev = EventLoop::new(config).expect("event loop");
    ev.net().add_oneshot(Duration::from_secs(30), GUARD_TAG);
    ev
}

fn guard(tag: u64) {
    assert_ne!(tag, GUARD_TAG, "test did not finish within 30 s");
}

/// A byte pattern whose every position is checkable (order and completeness).
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct Echo {
    client: Option<ConnId>,
    server_side: Option<ConnId>,
    confirmed: bool,
    received: Vec<u8>,
    closes: Vec<(ConnId, CloseReason)>,
}

impl Handler for Echo {
    type Msg = ();
    fn on_accept(&mut self, _: &mut Net, _: ListenerId, conn: ConnId, peer: SocketAddr) {
        assert!(peer.ip().is_loopback());
        self.server_side = Some(conn);
    }
    fn on_connect(&mut self, net: &mut Net, conn: ConnId) {
        assert_eq!(Some(conn), self.client);
        self.confirmed = true;
        net.send(conn, b" world");
    }
    fn on_read(&mut self, net: &mut Net, conn: ConnId, input: &mut Buffer) {
        if Some(conn) == self.client {
            self.received.extend_from_slice(input.data());
            input.consume(input.len());
            if self.received == b"hello world" {
                net.close(conn);
            }
        } else {
            let data = input.data().to_vec();
            input.consume(data.len());
            assert!(net.send(conn, &data));
        }
    }
    fn on_close(&mut self, net: &mut Net, conn: ConnId, reason: CloseReason) {
        assert!(!net.is_open(conn), "the id is dead once on_close runs");
        self.closes.push((conn, reason));
        if self.closes.len() == 2 {
            net.stop();
        }
    }
    fn on_timer(&mut self, _: &mut Net, _: TimerId, tag: u64) {
        guard(tag);
    }
}

#[test]
fn accept_connect_echo_and_close_both_ways() {
    let mut ev = new_loop(Config::default());
    let l = ev.net().listen(loopback()).unwrap();
    let addr = ev.net().listener_addr(l).unwrap();
    let client = ev.net().connect(addr);
    // Queued before the connect is confirmed: must go out first, in order.
    assert!(ev.net().send(client, b"hello"));
    let mut h = Echo {
        client: Some(client),
        ..Echo::default()
    };
    ev.run(&mut h).unwrap();
    assert!(h.confirmed);
    assert_eq!(h.received, b"hello world");
    // Client closed locally; the server side saw the end of stream.
    assert_eq!(h.closes[0], (client, CloseReason::Local));
    assert_eq!(
        h.closes[1],
        (h.server_side.unwrap(), CloseReason::PeerClosed)
    );
    assert_eq!(ev.net().connection_count(), 0);
    // A dead id is harmless.
    assert!(!ev.net().send(client, b"late"));
}

// ---------------------------------------------------------------------------------------------

struct BulkSender {
    payload: Vec<u8>,
    go: mpsc::Sender<()>,
    queued_after_send: usize,
    drained: bool,
    close_after: bool,
}

impl Handler for BulkSender {
    type Msg = ();
    fn on_accept(&mut self, net: &mut Net, _: ListenerId, conn: ConnId, _: SocketAddr) {
        assert!(net.send(conn, &self.payload));
        self.queued_after_send = net.output_len(conn);
        if self.close_after {
            net.close(conn);
        }
        // Only now may the reader start: everything the kernel did not take is queued here.
        self.go.send(()).unwrap();
    }
    fn on_read(&mut self, _: &mut Net, _: ConnId, input: &mut Buffer) {
        input.consume(input.len());
    }
    fn on_drain(&mut self, net: &mut Net, conn: ConnId) {
        self.drained = true;
        net.close(conn);
    }
    fn on_close(&mut self, _: &mut Net, _: ConnId, reason: CloseReason) {
        // The loop keeps running: a closed connection still flushes. The reader stops it.
        assert_eq!(reason, CloseReason::Local);
    }
    fn on_timer(&mut self, _: &mut Net, _: TimerId, tag: u64) {
        guard(tag);
    }
}

fn bulk(close_after: bool) {
    const LEN: usize = 32 * 1024 * 1024;
    let mut ev = new_loop(Config {
        output_high_water: 64 * 1024 * 1024,
        ..Config::default()
    });
    let l = ev.net().listen(loopback()).unwrap();
    let addr = ev.net().listener_addr(l).unwrap();
    let (go_tx, go_rx) = mpsc::channel();
    let poster = ev.poster();
    let reader = thread::spawn(move || {
        let mut s = StdStream::connect(addr).unwrap();
        go_rx.recv().unwrap();
        let mut got = Vec::with_capacity(LEN);
        let result = s.read_to_end(&mut got);
        poster.stop();
        result.unwrap();
        got
    });
    let mut h = BulkSender {
        payload: pattern(LEN),
        go: go_tx,
        queued_after_send: 0,
        drained: false,
        close_after,
    };
    ev.run(&mut h).unwrap();
    let got = reader.join().unwrap();
    assert!(
        h.queued_after_send > 0,
        "the kernel cannot take 32 MiB at once: part of it must have been queued"
    );
    assert_eq!(h.drained, !close_after);
    assert_eq!(got.len(), LEN);
    assert!(got == h.payload, "bytes arrive complete and in order");
}

#[test]
fn slow_reader_gets_everything_in_order() {
    bulk(false);
}

#[test]
fn graceful_close_flushes_queued_output() {
    // close() right after a send that could not complete: the reader still gets every byte,
    // then the end of stream.
    bulk(true);
}

// ---------------------------------------------------------------------------------------------

struct Flooder {
    sent: usize,
    reason: Option<CloseReason>,
}

impl Handler for Flooder {
    type Msg = ();
    fn on_accept(&mut self, net: &mut Net, _: ListenerId, conn: ConnId, _: SocketAddr) {
        let chunk = vec![7u8; 64 * 1024];
        // The peer never reads: the kernel buffers fill, then ours, then the limit closes it.
        while net.send(conn, &chunk) {
            self.sent += chunk.len();
            assert!(self.sent < 1 << 30, "the high-water mark never tripped");
        }
        assert!(!net.is_open(conn));
    }
    fn on_read(&mut self, _: &mut Net, _: ConnId, _: &mut Buffer) {}
    fn on_close(&mut self, net: &mut Net, _: ConnId, reason: CloseReason) {
        self.reason = Some(reason);
        net.stop();
    }
    fn on_timer(&mut self, _: &mut Net, _: TimerId, tag: u64) {
        guard(tag);
    }
}

#[test]
fn high_water_mark_closes_a_stuck_peer() {
    let mut ev = new_loop(Config {
        output_high_water: 1024 * 1024,
        ..Config::default()
    });
    let l = ev.net().listen(loopback()).unwrap();
    let addr = ev.net().listener_addr(l).unwrap();
    let stuck = StdStream::connect(addr).unwrap();
    let mut h = Flooder {
        sent: 0,
        reason: None,
    };
    ev.run(&mut h).unwrap();
    assert_eq!(h.reason, Some(CloseReason::OutputOverflow));
    drop(stuck);
}

// ---------------------------------------------------------------------------------------------

struct Greedy {
    reason: Option<CloseReason>,
}

impl Handler for Greedy {
    type Msg = ();
    fn on_accept(&mut self, _: &mut Net, _: ListenerId, _: ConnId, _: SocketAddr) {}
    fn on_read(&mut self, _: &mut Net, _: ConnId, _: &mut Buffer) {
        // Never consumes: waits for a unit that cannot fit.
    }
    fn on_close(&mut self, net: &mut Net, _: ConnId, reason: CloseReason) {
        self.reason = Some(reason);
        net.stop();
    }
    fn on_timer(&mut self, _: &mut Net, _: TimerId, tag: u64) {
        guard(tag);
    }
}

#[test]
fn input_limit_closes_a_connection_whose_owner_consumes_nothing() {
    let mut ev = new_loop(Config {
        max_input: 4096,
        ..Config::default()
    });
    let l = ev.net().listen(loopback()).unwrap();
    let addr = ev.net().listener_addr(l).unwrap();
    let writer = thread::spawn(move || {
        let mut s = StdStream::connect(addr).unwrap();
        // The server closes on us part way; the write error is expected.
        let _ = s.write_all(&vec![1u8; 64 * 1024]);
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
    });
    let mut h = Greedy { reason: None };
    ev.run(&mut h).unwrap();
    assert_eq!(h.reason, Some(CloseReason::InputOverflow));
    writer.join().unwrap();
}

// ---------------------------------------------------------------------------------------------

struct Refused {
    conn: ConnId,
    reason: Option<CloseReason>,
    confirmed: bool,
}

impl Handler for Refused {
    type Msg = ();
    fn on_connect(&mut self, _: &mut Net, _: ConnId) {
        self.confirmed = true;
    }
    fn on_read(&mut self, _: &mut Net, _: ConnId, _: &mut Buffer) {}
    fn on_close(&mut self, net: &mut Net, conn: ConnId, reason: CloseReason) {
        assert_eq!(conn, self.conn);
        self.reason = Some(reason);
        net.stop();
    }
    fn on_timer(&mut self, _: &mut Net, _: TimerId, tag: u64) {
        guard(tag);
    }
}

#[test]
fn refused_connect_is_reported_as_close() {
    // A port that was just free: nothing listens there.
    let port = StdListener::bind(loopback())
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut ev = new_loop(Config::default());
    let conn = ev.net().connect(SocketAddr::from(([127, 0, 0, 1], port)));
    assert!(ev.net().send(conn, b"queued, then dropped"));
    let mut h = Refused {
        conn,
        reason: None,
        confirmed: false,
    };
    ev.run(&mut h).unwrap();
    assert!(!h.confirmed);
    assert_eq!(
        h.reason,
        Some(CloseReason::ConnectFailed(
            std::io::ErrorKind::ConnectionRefused
        ))
    );
}

// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct Clock {
    start: Option<Instant>,
    fired: Vec<(u64, Duration)>,
    repeating: Option<TimerId>,
    victim: Option<TimerId>,
    repeats: u32,
}

const T_REPEAT: u64 = 1;
const T_KILLER: u64 = 2;
const T_VICTIM: u64 = 3;
const T_END: u64 = 4;
const T_EARLY: u64 = 5;

impl Handler for Clock {
    type Msg = ();
    fn on_read(&mut self, _: &mut Net, _: ConnId, _: &mut Buffer) {}
    fn on_timer(&mut self, net: &mut Net, timer: TimerId, tag: u64) {
        guard(tag);
        let at = self.start.unwrap().elapsed();
        self.fired.push((tag, at));
        match tag {
            T_REPEAT => {
                assert_eq!(Some(timer), self.repeating);
                self.repeats += 1;
                if self.repeats == 3 {
                    assert!(net.remove_timer(timer), "a timer removes itself");
                    assert!(!net.remove_timer(timer));
                }
            }
            T_KILLER => {
                // The victim is due at the same time; removing it here must keep it silent.
                assert!(net.remove_timer(self.victim.unwrap()));
            }
            T_END => net.stop(),
            _ => {}
        }
    }
}

#[test]
fn timers_fire_in_order_at_their_intervals_and_can_be_removed_in_callbacks() {
    // Taken before the loop exists: every due time is computed from a later clock reading.
    let start = Instant::now();
    let mut ev = new_loop(Config {
        poll_timeout: Duration::from_millis(5),
        ..Config::default()
    });
    let net = ev.net();
    let end = net.add_oneshot(Duration::from_millis(150), T_END);
    net.add_oneshot(Duration::from_millis(30), T_EARLY);
    let repeating = net.add_timer(Duration::from_millis(20), T_REPEAT);
    let killer = net.add_oneshot(Duration::from_millis(40), T_KILLER);
    let victim = net.add_oneshot(Duration::from_millis(40), T_VICTIM);
    assert!(killer < victim && end < repeating);
    let mut h = Clock {
        start: Some(start),
        repeating: Some(repeating),
        victim: Some(victim),
        ..Clock::default()
    };
    ev.run(&mut h).unwrap();

    let tags: Vec<u64> = h.fired.iter().map(|(t, _)| *t).collect();
    assert_eq!(tags.iter().filter(|t| **t == T_REPEAT).count(), 3);
    assert!(!tags.contains(&T_VICTIM), "removed before it fired");
    assert_eq!(*tags.last().unwrap(), T_END);
    // Due order among the one-shot timers (whatever the loop's latency).
    let pos = |tag| tags.iter().position(|t| *t == tag).unwrap();
    assert!(pos(T_EARLY) < pos(T_KILLER) && pos(T_KILLER) < pos(T_END));
    // Never early: the n-th tick of a 20 ms timer comes at least n × 20 ms after it was set.
    for (n, (_, at)) in h.fired.iter().filter(|(t, _)| *t == T_REPEAT).enumerate() {
        assert!(*at >= Duration::from_millis(20 * (n as u64 + 1)), "{at:?}");
    }
    assert!(h.fired.last().unwrap().1 >= Duration::from_millis(150));
    // Only the guard is left.
    assert_eq!(ev.net().timer_count(), 1);
}

// ---------------------------------------------------------------------------------------------

struct Inbox {
    got: Vec<u32>,
    expect: u32,
}

impl Handler for Inbox {
    type Msg = u32;
    fn on_read(&mut self, _: &mut Net, _: ConnId, _: &mut Buffer) {}
    fn on_message(&mut self, net: &mut Net, msg: u32) {
        self.got.push(msg);
        if self.got.len() as u32 == self.expect {
            net.stop();
        }
    }
    fn on_timer(&mut self, _: &mut Net, _: TimerId, tag: u64) {
        guard(tag);
    }
}

#[test]
fn posts_from_other_threads_arrive_in_order_on_the_loop_thread() {
    const N: u32 = 10_000;
    let mut ev = new_loop(Config {
        inbox_capacity: 64, // small, so posters block and resume
        ..Config::default()
    });
    let poster = ev.poster();
    let producer = thread::spawn(move || {
        for i in 0..N {
            poster.post(i).unwrap();
        }
    });
    let mut h = Inbox {
        got: Vec::new(),
        expect: N,
    };
    ev.run(&mut h).unwrap();
    producer.join().unwrap();
    assert_eq!(h.got, (0..N).collect::<Vec<_>>());
}

#[test]
fn stop_from_another_thread_returns_from_run() {
    let mut ev: EventLoop<u32> = new_loop(Config {
        poll_timeout: Duration::from_secs(10),
        ..Config::default()
    });
    let poster = ev.poster();
    // The other thread may well stop the loop before `run` starts: that must not be lost.
    let stopper = thread::spawn(move || poster.stop());
    let mut h = Inbox {
        got: Vec::new(),
        expect: u32::MAX,
    };
    ev.run(&mut h).unwrap();
    stopper.join().unwrap();
    assert!(h.got.is_empty());
}

#[test]
fn a_stop_posted_before_run_is_not_lost() {
    let mut ev: EventLoop<u32> = new_loop(Config {
        poll_timeout: Duration::from_secs(10),
        ..Config::default()
    });
    ev.poster().stop();
    let mut h = Inbox {
        got: Vec::new(),
        expect: u32::MAX,
    };
    ev.run(&mut h).unwrap();
    assert!(h.got.is_empty());
}

// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct Signalled {
    seen: Vec<Signal>,
}

impl Handler for Signalled {
    type Msg = ();
    fn on_read(&mut self, _: &mut Net, _: ConnId, _: &mut Buffer) {}
    fn on_signal(&mut self, net: &mut Net, signal: Signal) {
        self.seen.push(signal);
        if signal == Signal::Hangup {
            // The second signal comes from inside the loop: it must arrive as an event too.
            signal_hook::low_level::raise(signal_hook::consts::SIGTERM).unwrap();
        } else {
            net.stop();
        }
    }
    fn on_timer(&mut self, _: &mut Net, _: TimerId, tag: u64) {
        guard(tag);
    }
}

#[test]
fn watched_signals_arrive_as_loop_events() {
    let mut ev: EventLoop<()> = new_loop(Config {
        poll_timeout: Duration::from_secs(10),
        ..Config::default()
    });
    ev.watch_signals(&[Signal::Hangup, Signal::Terminate])
        .unwrap();
    signal_hook::low_level::raise(signal_hook::consts::SIGHUP).unwrap();
    let mut h = Signalled::default();
    ev.run(&mut h).unwrap();
    assert_eq!(h.seen, vec![Signal::Hangup, Signal::Terminate]);
}

// ---------------------------------------------------------------------------------------------

/// Sends `payload` to each accepted connection; after the second, stops listening and closes
/// every connection gracefully (a daemon's stop).
struct StopAll {
    payload: Vec<u8>,
    accepted: usize,
    closes: Vec<CloseReason>,
}

impl Handler for StopAll {
    type Msg = ();
    fn on_accept(&mut self, net: &mut Net, _: ListenerId, conn: ConnId, _: SocketAddr) {
        assert!(net.send(conn, &self.payload));
        self.accepted += 1;
        if self.accepted == 2 {
            assert_eq!(net.close_listeners(), 1);
            net.close_all();
            assert_eq!(net.connection_count(), 0);
            assert_eq!(net.closing_count(), 2);
            assert!(
                net.closing_unflushed_count() > 0,
                "12 MiB each, unread, cannot all be in the socket buffers"
            );
        }
    }
    fn on_read(&mut self, _: &mut Net, _: ConnId, input: &mut Buffer) {
        input.consume(input.len());
    }
    fn on_close(&mut self, _: &mut Net, _: ConnId, reason: CloseReason) {
        self.closes.push(reason);
    }
    fn on_timer(&mut self, _: &mut Net, _: TimerId, tag: u64) {
        guard(tag);
    }
}

#[test]
fn close_listeners_and_close_all_flush_every_connection_then_fin() {
    let mut ev: EventLoop<()> = new_loop(Config::default());
    let id = ev.net().listen(loopback()).expect("listen");
    let addr = ev.net().listener_addr(id).expect("addr");
    let payload = pattern(12 * 1024 * 1024);
    let (go, wait) = (0..2)
        .map(|_| mpsc::channel::<()>())
        .unzip::<_, _, Vec<_>, Vec<_>>();
    let readers: Vec<_> = wait
        .into_iter()
        .map(|wait| {
            let mut s = StdStream::connect(addr).expect("connect");
            thread::spawn(move || {
                // Nothing is read before both connections are closed by the loop.
                wait.recv().expect("go");
                let mut got = Vec::new();
                s.read_to_end(&mut got).map(|_| got)
            })
        })
        .collect();
    let mut h = StopAll {
        payload: payload.clone(),
        accepted: 0,
        closes: Vec::new(),
    };
    while h.accepted < 2 {
        ev.turn(&mut h).expect("turn");
    }
    for g in go {
        g.send(()).expect("reader waits");
    }
    // Until both connections are flushed and their peers have ended theirs.
    while !(h.closes.len() == 2 && ev.net().closing_count() == 0) {
        ev.turn(&mut h).expect("turn");
    }
    assert_eq!(ev.net().closing_unflushed_count(), 0);
    assert_eq!(h.closes, vec![CloseReason::Local; 2]);
    for r in readers {
        let got = r
            .join()
            .expect("reader")
            .expect("end of stream, not an error");
        assert!(
            got == payload,
            "every byte, in order, then the end of stream"
        );
    }
    assert!(
        StdStream::connect(addr).is_err(),
        "nobody listens after close_listeners"
    );
}

// ---------------------------------------------------------------------------------------------

/// Consumes its input in 4-byte frames and echoes them; can send a bulk payload on demand.
#[derive(Default)]
struct Framer {
    conn: Option<ConnId>,
    reads: usize,
    drained: usize,
}

impl Handler for Framer {
    type Msg = ();
    fn on_accept(&mut self, _: &mut Net, _: ListenerId, conn: ConnId, _: SocketAddr) {
        self.conn = Some(conn);
    }
    fn on_read(&mut self, net: &mut Net, conn: ConnId, input: &mut Buffer) {
        let whole = input.len() / 4 * 4;
        let frames = input.data()[..whole].to_vec();
        input.consume(whole);
        assert!(net.send(conn, &frames));
        self.reads += 1;
    }
    fn on_drain(&mut self, _: &mut Net, _: ConnId) {
        self.drained += 1;
    }
    fn on_timer(&mut self, _: &mut Net, _: TimerId, tag: u64) {
        guard(tag);
    }
}

fn turn_until(ev: &mut EventLoop<()>, h: &mut Framer, done: impl Fn(&Framer) -> bool) {
    while !done(h) {
        ev.turn(h).unwrap();
    }
}

#[test]
fn connection_buffers_are_allocated_on_use_and_released_when_drained() {
    let mut ev = new_loop(Config::default());
    let l = ev.net().listen(loopback()).unwrap();
    let addr = ev.net().listener_addr(l).unwrap();
    let mut client = StdStream::connect(addr).unwrap();
    let mut h = Framer::default();
    turn_until(&mut ev, &mut h, |h| h.conn.is_some());
    let conn = h.conn.unwrap();
    assert_eq!(
        ev.net().buffer_capacity(conn),
        Some((0, 0)),
        "nothing before use"
    );

    // Two whole frames and half of one: the frames are echoed at once (nothing queued), the
    // half frame is all the connection keeps, in an allocation of its size.
    client.write_all(b"abcdefghij").unwrap();
    turn_until(&mut ev, &mut h, |h| h.reads == 1);
    assert_eq!(ev.net().buffer_capacity(conn), Some((2, 0)));
    let mut echoed = [0u8; 8];
    client.read_exact(&mut echoed).unwrap();
    assert_eq!(&echoed, b"abcdefgh");

    // The rest of the frame: input drained, nothing kept.
    client.write_all(b"kl").unwrap();
    turn_until(&mut ev, &mut h, |h| h.reads == 2);
    assert_eq!(ev.net().buffer_capacity(conn), Some((0, 0)));
    let mut echoed = [0u8; 4];
    client.read_exact(&mut echoed).unwrap();
    assert_eq!(&echoed, b"ijkl");

    // More than the socket takes while the client does not read: the rest is queued (and
    // allocated) until the client has read everything, then released.
    let bulk = pattern(4 * 1024 * 1024);
    assert!(ev.net().send(conn, &bulk));
    let (input_cap, output_cap) = ev.net().buffer_capacity(conn).unwrap();
    assert_eq!(input_cap, 0);
    assert!(output_cap > 0, "output queued");
    assert!(
        output_cap <= bulk.len(),
        "at most what was not written: {output_cap}"
    );
    let reader = thread::spawn(move || {
        let mut got = vec![0u8; bulk.len()];
        client.read_exact(&mut got).unwrap();
        assert!(got == bulk, "bulk payload intact");
        client
    });
    turn_until(&mut ev, &mut h, |h| h.drained == 1);
    assert_eq!(
        ev.net().buffer_capacity(conn),
        Some((0, 0)),
        "drained: released"
    );
    drop(reader.join().unwrap());
}

// ---------------------------------------------------------------------------------------------

/// Records what one accepted connection receives and how it ends.
#[derive(Default)]
struct Sink {
    received: Vec<u8>,
    reads: usize,
    closed: Option<CloseReason>,
}

impl Handler for Sink {
    type Msg = ();
    fn on_accept(&mut self, _: &mut Net, _: ListenerId, _: ConnId, _: SocketAddr) {}
    fn on_read(&mut self, _: &mut Net, _: ConnId, input: &mut Buffer) {
        self.reads += 1;
        self.received.extend_from_slice(input.data());
        input.consume(input.len());
    }
    fn on_close(&mut self, net: &mut Net, _: ConnId, reason: CloseReason) {
        self.closed = Some(reason);
        net.stop();
    }
    fn on_timer(&mut self, _: &mut Net, _: TimerId, tag: u64) {
        guard(tag);
    }
}

/// A read shorter than asked stops the reading of a plain readable edge (no `WouldBlock` read):
/// an end of stream that came with the data, or after it, must still be seen.
#[test]
fn short_reads_never_miss_the_end_of_stream() {
    // Data and FIN both queued before the loop first polls.
    let mut ev = new_loop(Config::default());
    let l = ev.net().listen(loopback()).unwrap();
    let addr = ev.net().listener_addr(l).unwrap();
    let mut peer = StdStream::connect(addr).unwrap();
    peer.write_all(b"all at once").unwrap();
    peer.shutdown(std::net::Shutdown::Write).unwrap();
    let mut h = Sink::default();
    ev.run(&mut h).unwrap();
    assert_eq!(
        (h.received.as_slice(), h.closed),
        (&b"all at once"[..], Some(CloseReason::PeerClosed))
    );
    assert_eq!(h.closed, Some(CloseReason::PeerClosed));

    // Data first (read short), the FIN only once the loop has read it.
    let mut ev = new_loop(Config::default());
    let l = ev.net().listen(loopback()).unwrap();
    let addr = ev.net().listener_addr(l).unwrap();
    let mut peer = StdStream::connect(addr).unwrap();
    peer.write_all(b"first").unwrap();
    let mut h = Sink::default();
    while h.received.len() < 5 {
        ev.turn(&mut h).unwrap();
    }
    assert_eq!(h.closed, None);
    peer.write_all(b" then more").unwrap();
    peer.shutdown(std::net::Shutdown::Write).unwrap();
    ev.run(&mut h).unwrap();
    assert_eq!(h.received, b"first then more");
    assert_eq!(h.closed, Some(CloseReason::PeerClosed));
    assert!(h.reads >= 2);
}
