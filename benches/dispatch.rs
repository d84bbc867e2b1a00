//! Dispatch cost of netlib against a hand-written mio loop: a 64-byte PDU echoed over one
//! loopback TCP connection whose both ends live in the same event loop.
//!
//! * `pingpong_64b`: one PDU in flight; one iteration is one round trip (client → server →
//!   client), i.e. two socket events, two reads that return data, two writes.
//! * `pipelined_64b`: the same with 64 PDUs in flight; one iteration is still one PDU's round
//!   trip, so the figure is per PDU.
//!
//! In both groups `netlib` and `bare_mio` do the same work: the server side frames its input
//! with `tt_proto::pdu::peek_frame` and writes each whole PDU back at once, the client side
//! frames the echo and writes the next PDU for each one received. Both read with 64 KiB chunks
//! (netlib's default `read_chunk`) until `WouldBlock`, register both sockets for readable and
//! writable edge-triggered events (as netlib does) and set `TCP_NODELAY`. The connection is set
//! up once per benchmark function; `iter_custom` drives exactly `iters` round trips.

use std::hint::black_box;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use netlib::{Buffer, CloseReason, Config, ConnId, EventLoop, Handler, ListenerId, Net};
use tt_proto::pb::base_define::MsgType;
use tt_proto::pb::message::ImMsgData;
use tt_proto::pdu::{self, DEFAULT_MAX_PDU_LEN, HEADER_LEN};
use tt_proto::prost::Message;

const PDU_LEN: usize = 64;
/// PDUs in flight in the pipelined variant.
const PIPELINE: u64 = 64;
/// Bytes per `read` call: netlib's default `Config::read_chunk`, used by the bare loop too.
const READ_CHUNK: usize = 64 * 1024;
/// Longest poll wait: netlib's default `Config::poll_timeout`, used by the bare loop too.
const POLL_TIMEOUT: Duration = Duration::from_millis(100);
const SETUP_DEADLINE: Duration = Duration::from_secs(10);

/// A 64-byte `IMMsgData` PDU: 16-byte header, 48-byte body.
fn pdu_64() -> Vec<u8> {
    let mut msg = ImMsgData {
        from_user_id: 1001,
        to_session_id: 1002,
        msg_id: 1,
        create_time: 1_700_000_000,
        msg_type: MsgType::SingleText as i32,
        msg_data: Vec::new(),
        attach_data: None,
    };
    while msg.encoded_len() < PDU_LEN - HEADER_LEN {
        msg.msg_data.push(b'x');
    }
    let mut out = Vec::new();
    pdu::encode_command_into(&mut out, 1, &msg);
    assert_eq!(
        out.len(),
        PDU_LEN,
        "the PDU must be exactly {PDU_LEN} bytes"
    );
    out
}

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().expect("address")
}

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
    /// Round trips still to start in this run.
    to_send: u64,
    /// Round trips still to finish in this run; the loop stops at 0.
    to_receive: u64,
    /// Keep a copy of the last echo (only for the invariant check, never while measured).
    record: bool,
    last_echo: Vec<u8>,
}

impl Handler for NetlibPingPong {
    type Msg = ();

    fn on_accept(&mut self, _: &mut Net, _: ListenerId, conn: ConnId, _: SocketAddr) {
        assert!(self.server.is_none(), "one connection only");
        self.server = Some(conn);
    }

    fn on_connect(&mut self, _: &mut Net, conn: ConnId) {
        assert_eq!(conn, self.client);
        self.connected = true;
    }

    fn on_read(&mut self, net: &mut Net, conn: ConnId, input: &mut Buffer) {
        let data = input.data();
        let mut done = 0;
        if conn == self.client {
            while let Some(len) = frame(&data[done..]) {
                if self.record {
                    self.last_echo.clear();
                    self.last_echo.extend_from_slice(&data[done..done + len]);
                }
                done += len;
                if self.to_send > 0 {
                    self.to_send -= 1;
                    assert!(net.send(conn, &self.pdu));
                }
                self.to_receive -= 1;
                if self.to_receive == 0 {
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

fn netlib_setup() -> (EventLoop<()>, NetlibPingPong) {
    let mut ev = EventLoop::new(Config::default()).expect("event loop");
    let listener = ev.net().listen(loopback()).expect("listen");
    let addr = ev.net().listener_addr(listener).expect("listener address");
    let client = ev.net().connect(addr);
    let mut h = NetlibPingPong {
        pdu: pdu_64(),
        client,
        server: None,
        connected: false,
        to_send: 0,
        to_receive: 0,
        record: false,
        last_echo: Vec::new(),
    };
    let deadline = Instant::now() + SETUP_DEADLINE;
    while !(h.connected && h.server.is_some()) {
        assert!(Instant::now() < deadline, "loopback connect timed out");
        ev.turn(&mut h).expect("turn");
    }
    (ev, h)
}

/// Drives exactly `n` round trips with up to `depth` PDUs in flight; returns the time taken.
fn netlib_run(ev: &mut EventLoop<()>, h: &mut NetlibPingPong, n: u64, depth: u64) -> Duration {
    if n == 0 {
        return Duration::ZERO;
    }
    let first = n.min(depth);
    h.to_send = n - first;
    h.to_receive = n;
    let start = Instant::now();
    for _ in 0..first {
        assert!(ev.net().send(h.client, &h.pdu));
    }
    ev.run(h).expect("event loop");
    let elapsed = start.elapsed();
    assert_eq!((h.to_send, h.to_receive), (0, 0), "every round trip done");
    elapsed
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
    to_send: u64,
    to_receive: u64,
    record: bool,
    last_echo: Vec<u8>,
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
            to_send: 0,
            to_receive: 0,
            record: false,
            last_echo: Vec::new(),
        }
    }

    /// Same contract as [`netlib_run`].
    fn run(&mut self, n: u64, depth: u64) -> Duration {
        if n == 0 {
            return Duration::ZERO;
        }
        let first = n.min(depth);
        self.to_send = n - first;
        self.to_receive = n;
        let start = Instant::now();
        for _ in 0..first {
            write_all_now(&mut self.client.stream, &self.pdu);
        }
        while self.to_receive > 0 {
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
                        let (pdu, to_send, to_receive) =
                            (&self.pdu, &mut self.to_send, &mut self.to_receive);
                        let (record, last_echo) = (self.record, &mut self.last_echo);
                        self.client.drain(|stream, echo| {
                            if record {
                                last_echo.clear();
                                last_echo.extend_from_slice(echo);
                            }
                            if *to_send > 0 {
                                *to_send -= 1;
                                write_all_now(stream, pdu);
                            }
                            *to_receive -= 1;
                        });
                    }
                    SERVER => self.server.drain(write_all_now),
                    _ => {}
                }
            }
        }
        let elapsed = start.elapsed();
        assert_eq!(
            (self.to_send, self.to_receive),
            (0, 0),
            "every round trip done"
        );
        elapsed
    }
}

// --- the benchmarks ---------------------------------------------------------------------------

fn dispatch(c: &mut Criterion) {
    for (group, depth) in [("pingpong_64b", 1), ("pipelined_64b", PIPELINE)] {
        let mut g = c.benchmark_group(group);
        // One element is one PDU's round trip.
        g.throughput(Throughput::Elements(1));

        let mut netlib_state = None;
        g.bench_function("netlib", |b| {
            let (ev, h) = netlib_state.get_or_insert_with(|| {
                let (mut ev, mut h) = netlib_setup();
                // The invariant, checked once outside the measurement: the echo is the PDU sent.
                h.record = true;
                netlib_run(&mut ev, &mut h, 3 * depth, depth);
                h.record = false;
                assert_eq!(h.last_echo, h.pdu, "netlib echoed the PDU unchanged");
                (ev, h)
            });
            b.iter_custom(|iters| netlib_run(ev, h, black_box(iters), depth));
        });
        drop(netlib_state);

        let mut bare_state = None;
        g.bench_function("bare_mio", |b| {
            let bare = bare_state.get_or_insert_with(|| {
                let mut bare = BareMio::new();
                bare.record = true;
                bare.run(3 * depth, depth);
                bare.record = false;
                assert_eq!(
                    bare.last_echo, bare.pdu,
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
