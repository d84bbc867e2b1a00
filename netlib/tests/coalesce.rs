//! Write coalescing (`Net::set_coalesce`) on real loopback sockets: what one turn sends to a
//! connection goes out at the end of that turn, in order, complete, flushed by a graceful
//! close, bounded by `output_high_water`, and an idle coalescing connection holds no buffer.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream as StdStream};
use std::thread;
use std::time::Duration;

use netlib::{Buffer, CloseReason, Config, ConnId, EventLoop, Handler, ListenerId, Net, TimerId};

const GUARD_TAG: u64 = u64::MAX;

fn new_loop(config: Config) -> EventLoop<()> {
    let mut ev = EventLoop::new(config).expect("event loop");
    ev.net().add_oneshot(Duration::from_secs(30), GUARD_TAG);
    ev
}

/// A byte pattern whose every position is checkable (order and completeness).
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// On accept: coalescing on, `pieces` sends of `piece` bytes of the pattern in that one
/// callback, then (if `close`) a graceful close. Stops the loop when the peer answers or the
/// connection closes.
struct Burst {
    pieces: usize,
    piece: usize,
    close: bool,
    /// Bytes queued right after the sends (nothing written yet when coalesced).
    queued_after_sends: Option<usize>,
    /// Buffers held while the peer's answer is read, after everything was written.
    idle_capacity: Option<(usize, usize)>,
    reason: Option<CloseReason>,
}

impl Burst {
    fn new(pieces: usize, piece: usize, close: bool) -> Burst {
        Burst {
            pieces,
            piece,
            close,
            queued_after_sends: None,
            idle_capacity: None,
            reason: None,
        }
    }
}

impl Handler for Burst {
    type Msg = ();
    fn on_accept(&mut self, net: &mut Net, _: ListenerId, conn: ConnId, _: SocketAddr) {
        assert!(net.set_coalesce(conn, true));
        let all = pattern(self.pieces * self.piece);
        for chunk in all.chunks(self.piece) {
            if !net.send(conn, chunk) {
                return;
            }
        }
        self.queued_after_sends = Some(net.output_len(conn));
        if self.close {
            net.close(conn);
        }
    }
    fn on_read(&mut self, net: &mut Net, conn: ConnId, input: &mut Buffer) {
        let n = input.len();
        input.consume(n);
        self.idle_capacity = net.buffer_capacity(conn);
        net.stop();
    }
    fn on_close(&mut self, net: &mut Net, _: ConnId, reason: CloseReason) {
        self.reason = Some(reason);
        net.stop();
    }
    fn on_timer(&mut self, _: &mut Net, _: TimerId, tag: u64) {
        assert_ne!(tag, GUARD_TAG, "test did not finish within 30 s");
    }
}

/// A peer that reads `expect` bytes (or to the end of stream when None), then writes one byte
/// and returns what it read and whether the stream ended.
fn peer(addr: SocketAddr, expect: Option<usize>) -> thread::JoinHandle<(Vec<u8>, bool)> {
    thread::spawn(move || {
        let mut s = StdStream::connect(addr).unwrap();
        let mut got = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        let mut ended = false;
        while expect.is_none_or(|e| got.len() < e) {
            let n = s.read(&mut buf).unwrap();
            if n == 0 {
                ended = true;
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        if expect.is_some() {
            s.write_all(b"k").unwrap();
        }
        (got, ended)
    })
}

#[test]
fn coalesced_sends_arrive_in_order_complete_and_leave_no_buffer() {
    let (pieces, piece) = (64, 64);
    let mut ev = new_loop(Config::default());
    let l = ev.net().listen("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = ev.net().listener_addr(l).unwrap();
    let client = peer(addr, Some(pieces * piece));
    let mut h = Burst::new(pieces, piece, false);
    ev.run(&mut h).unwrap();
    let (got, _) = client.join().unwrap();
    // Gathered, not written, until the end of the turn.
    assert_eq!(h.queued_after_sends, Some(pieces * piece));
    assert_eq!(got, pattern(pieces * piece));
    // Written at the end of the turn: the idle connection keeps no buffer.
    assert_eq!(h.idle_capacity, Some((0, 0)));
}

#[test]
fn a_close_after_coalesced_sends_delivers_them_then_eof() {
    // More than a socket takes at once, so part of it is written by the linger.
    let (pieces, piece) = (64, 64 * 1024);
    let mut ev = new_loop(Config::default());
    let l = ev.net().listen("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = ev.net().listener_addr(l).unwrap();
    let client = peer(addr, None);
    let mut h = Burst::new(pieces, piece, true);
    ev.run(&mut h).unwrap();
    assert_eq!(h.reason, Some(CloseReason::Local));
    // Keep turning until the linger has flushed and the peer has its end of stream.
    while ev.net().closing_count() > 0 {
        ev.turn(&mut h).unwrap();
    }
    let (got, ended) = client.join().unwrap();
    assert!(ended);
    assert_eq!(got.len(), pieces * piece);
    assert!(got == pattern(pieces * piece), "bytes out of order");
}

#[test]
fn coalesced_output_past_high_water_closes_the_connection() {
    let mut ev = new_loop(Config {
        output_high_water: 1024 * 1024,
        ..Config::default()
    });
    let l = ev.net().listen("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = ev.net().listener_addr(l).unwrap();
    // Connects and never reads.
    let stuck = StdStream::connect(addr).unwrap();
    let mut h = Burst::new(32, 64 * 1024, false);
    ev.run(&mut h).unwrap();
    assert_eq!(h.reason, Some(CloseReason::OutputOverflow));
    assert_eq!(
        h.queued_after_sends, None,
        "a send past the bound must fail"
    );
    assert_eq!(ev.net().connection_count(), 0);
    drop(stuck);
}
