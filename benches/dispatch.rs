//! Dispatch cost of netlib against a hand-written mio loop: a 64-byte PDU echoed over one
//! loopback TCP connection whose both ends live in the same event loop.
//!
//! * `pingpong_64b`: one PDU in flight; one iteration is one round trip (client → server →
//!   client), i.e. two socket events, two reads that return data, two writes.
//! * `pipelined_64b`: the same with 64 PDUs in flight; one iteration is still one PDU's round
//!   trip, so the figure is per PDU.
//!
//! `netlib_coalesced` is `netlib` with write coalescing on both ends (`Net::set_coalesce`): what
//! one turn sends to a connection goes out in one write at the end of the turn.
//!
//! In both groups `netlib` and `bare_mio` do the same work: the server side frames its input
//! with `tt_proto::pdu::peek_frame` and writes each whole PDU back at once, the client side
//! frames the echo and writes the next PDU for each one received. Both read with 64 KiB chunks
//! (netlib's default `read_chunk`) until `WouldBlock` or a short read (which, with
//! edge-triggered readiness, means the socket is empty), register both sockets for readable and
//! writable edge-triggered events (as netlib does) and set `TCP_NODELAY`. The connection is set
//! up once per benchmark function; `iter_custom` drives exactly `iters` round trips. The PDU, the
//! netlib connection and its driving are those of `benches/common`, shared with
//! `benches/pdu_server.rs`.

mod common;

use std::hint::black_box;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{PIPELINE, PingPong, RoundTrips, SETUP_DEADLINE, connect_pair, loopback, pdu_64, run};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use netlib::{Buffer, CloseReason, Config, ConnId, EventLoop, Handler, ListenerId, Net};
use tt_proto::pdu::{self, DEFAULT_MAX_PDU_LEN};

/// Bytes per `read` call: netlib's default `Config::read_chunk`, used by the bare loop too.
const READ_CHUNK: usize = 64 * 1024;
/// Longest poll wait: netlib's default `Config::poll_timeout`, used by the bare loop too.
const POLL_TIMEOUT: Duration = Duration::from_millis(100);

/// Length of the whole PDU at the front of `buf`, if there is one.
#[inline]
fn frame(buf: &[u8]) -> Option<usize> {
    pdu::peek_frame(buf, DEFAULT_MAX_PDU_LEN)
        .expect("the echo stream is well framed")
        .map(|h| h.length as usize)
}

// --- netlib -----------------------------------------------------------------------------------

struct NetlibPingPong {
    pdu: Vec<u8>,
    client: ConnId,
    server: Option<ConnId>,
    connected: bool,
    /// Both ends with write coalescing (`Net::set_coalesce`).
    coalesce: bool,
    trips: RoundTrips,
}

impl Handler for NetlibPingPong {
    type Msg = ();

    fn on_accept(&mut self, net: &mut Net, _: ListenerId, conn: ConnId, _: SocketAddr) {
        assert!(self.server.is_none(), "one connection only");
        self.server = Some(conn);
        assert!(net.set_coalesce(conn, self.coalesce));
    }

    fn on_connect(&mut self, net: &mut Net, conn: ConnId) {
        assert_eq!(conn, self.client);
        self.connected = true;
        assert!(net.set_coalesce(conn, self.coalesce));
    }

    fn on_read(&mut self, net: &mut Net, conn: ConnId, input: &mut Buffer) {
        let data = input.data();
        let mut done = 0;
        if conn == self.client {
            while let Some(len) = frame(&data[done..]) {
                let echo = &data[done..done + len];
                if self
                    .trips
                    .echoed(|last_echo| last_echo.extend_from_slice(echo))
                {
                    assert!(net.send(conn, &self.pdu));
                }
                done += len;
                if self.trips.done() {
                    net.stop();
                }
            }
        } else {
            while let Some(len) = frame(&data[done..]) {
                assert!(net.send(conn, &data[done..done + len]));
                done += len;
            }
        }
        input.consume(done);
    }

    fn on_close(&mut self, _: &mut Net, conn: ConnId, reason: CloseReason) {
        panic!("{conn:?} closed during the benchmark: {reason:?}");
    }
}

impl PingPong for NetlibPingPong {
    fn ready(&self) -> bool {
        self.connected && self.server.is_some()
    }

    fn trips(&mut self) -> &mut RoundTrips {
        &mut self.trips
    }

    fn send_from_client(&mut self, net: &mut Net) {
        assert!(net.send(self.client, &self.pdu));
    }
}

fn netlib_setup(coalesce: bool) -> (EventLoop<()>, NetlibPingPong) {
    connect_pair(|_, client| NetlibPingPong {
        pdu: pdu_64(),
        client,
        server: None,
        connected: false,
        coalesce,
        trips: RoundTrips::default(),
    })
}

// --- bare mio ---------------------------------------------------------------------------------

const LISTENER: Token = Token(0);
const CLIENT: Token = Token(1);
const SERVER: Token = Token(2);

struct Side {
    stream: TcpStream,
    /// Fixed input buffer of `READ_CHUNK` bytes; `len` of them hold unconsumed input.
    buf: Box<[u8]>,
    len: usize,
}

impl Side {
    fn new(stream: TcpStream) -> Side {
        stream.set_nodelay(true).expect("nodelay");
        Side {
            stream,
            buf: vec![0; READ_CHUNK].into_boxed_slice(),
            len: 0,
        }
    }

    /// Reads until `WouldBlock`, calling `on_frame` with the stream and each whole PDU.
    #[inline]
    fn drain(&mut self, mut on_frame: impl FnMut(&mut TcpStream, &[u8])) {
        loop {
            assert!(self.len < self.buf.len(), "input buffer full");
            let room = self.buf.len() - self.len;
            match self.stream.read(&mut self.buf[self.len..]) {
                Ok(0) => panic!("peer closed during the benchmark"),
                Ok(n) => {
                    self.len += n;
                    let mut done = 0;
                    while let Some(len) = frame(&self.buf[done..self.len]) {
                        on_frame(&mut self.stream, &self.buf[done..done + len]);
                        done += len;
                    }
                    if done > 0 {
                        self.buf.copy_within(done..self.len, 0);
                        self.len -= done;
                    }
                    // A short read emptied the socket (edge-triggered: more data makes a new
                    // event), as netlib stops after one.
                    if n < room {
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => panic!("read failed: {e}"),
            }
        }
    }
}

/// Writes `bytes` at once; a 64-byte PDU always fits an empty-enough loopback socket buffer, so
/// a short write here means the benchmark is broken.
#[inline]
fn write_all_now(stream: &mut TcpStream, bytes: &[u8]) {
    match stream.write(bytes) {
        Ok(n) if n == bytes.len() => {}
        other => panic!("short write: {other:?}"),
    }
}

struct BareMio {
    poll: Poll,
    events: Events,
    _listener: TcpListener,
    client: Side,
    server: Side,
    pdu: Vec<u8>,
    trips: RoundTrips,
}

impl BareMio {
    fn new() -> BareMio {
        let mut poll = Poll::new().expect("poll");
        let mut events = Events::with_capacity(Config::default().max_events);
        let mut listener = TcpListener::bind(loopback()).expect("bind");
        let addr = listener.local_addr().expect("listener address");
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)
            .expect("register listener");
        let both = Interest::READABLE | Interest::WRITABLE;
        let mut client = TcpStream::connect(addr).expect("connect");
        poll.registry()
            .register(&mut client, CLIENT, both)
            .expect("register client");
        let deadline = Instant::now() + SETUP_DEADLINE;
        let mut server = loop {
            assert!(Instant::now() < deadline, "loopback connect timed out");
            poll.poll(&mut events, Some(POLL_TIMEOUT)).expect("poll");
            match listener.accept() {
                Ok((stream, _)) => break stream,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("accept failed: {e}"),
            }
        };
        poll.registry()
            .register(&mut server, SERVER, both)
            .expect("register server side");
        // Accepted means the handshake is complete: the client is connected too.
        client.peer_addr().expect("client connected");
        // Take the initial writable events out of the queue.
        poll.poll(&mut events, Some(Duration::ZERO)).expect("poll");
        BareMio {
            poll,
            events,
            _listener: listener,
            client: Side::new(client),
            server: Side::new(server),
            pdu: pdu_64(),
            trips: RoundTrips::default(),
        }
    }

    /// Same contract as [`common::run`].
    fn run(&mut self, n: u64, depth: u64) -> Duration {
        if n == 0 {
            return Duration::ZERO;
        }
        let first = self.trips.start(n, depth);
        let start = Instant::now();
        for _ in 0..first {
            write_all_now(&mut self.client.stream, &self.pdu);
        }
        while !self.trips.done() {
            if let Err(e) = self.poll.poll(&mut self.events, Some(POLL_TIMEOUT))
                && e.kind() != io::ErrorKind::Interrupted
            {
                panic!("poll failed: {e}");
            }
            for event in self.events.iter() {
                let readable = event.is_readable() || event.is_read_closed() || event.is_error();
                if !readable {
                    continue;
                }
                match event.token() {
                    CLIENT => {
                        let (pdu, trips) = (&self.pdu, &mut self.trips);
                        self.client.drain(|stream, echo| {
                            if trips.echoed(|last_echo| last_echo.extend_from_slice(echo)) {
                                write_all_now(stream, pdu);
                            }
                        });
                    }
                    SERVER => self.server.drain(write_all_now),
                    _ => {}
                }
            }
        }
        let elapsed = start.elapsed();
        self.trips.check_finished();
        elapsed
    }
}

// --- the benchmarks ---------------------------------------------------------------------------

fn dispatch(c: &mut Criterion) {
    for (group, depth) in [("pingpong_64b", 1), ("pipelined_64b", PIPELINE)] {
        let mut g = c.benchmark_group(group);
        // One element is one PDU's round trip.
        g.throughput(Throughput::Elements(1));

        for (name, coalesce) in [("netlib", false), ("netlib_coalesced", true)] {
            let mut netlib_state = None;
            g.bench_function(name, |b| {
                let (ev, h) = netlib_state.get_or_insert_with(|| {
                    let (mut ev, mut h) = netlib_setup(coalesce);
                    // The invariant, checked once outside the measurement: the echo is the PDU
                    // sent.
                    h.trips.record = true;
                    run(&mut ev, &mut h, 3 * depth, depth);
                    h.trips.record = false;
                    assert_eq!(h.trips.last_echo, h.pdu, "netlib echoed the PDU unchanged");
                    (ev, h)
                });
                b.iter_custom(|iters| run(ev, h, black_box(iters), depth));
            });
            drop(netlib_state);
        }

        let mut bare_state = None;
        g.bench_function("bare_mio", |b| {
            let bare = bare_state.get_or_insert_with(|| {
                let mut bare = BareMio::new();
                bare.trips.record = true;
                bare.run(3 * depth, depth);
                bare.trips.record = false;
                assert_eq!(
                    bare.trips.last_echo, bare.pdu,
                    "bare mio echoed the PDU unchanged"
                );
                bare
            });
            b.iter_custom(|iters| bare.run(black_box(iters), depth));
        });
        drop(bare_state);

        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = dispatch
}
criterion_main!(benches);
