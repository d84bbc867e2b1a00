//! Cost of the daemons' shared adapter, `tt_common::PduServer`, on the message path: a 64-byte
//! PDU echoed over one loopback TCP connection whose both ends are connections of one
//! `PduServer` in one event loop.
//!
//! * `pdu_server/pingpong_64b`: one PDU in flight; one iteration is one round trip.
//! * `pdu_server/pipelined_64b`: 64 PDUs in flight; one iteration is still one PDU's round
//!   trip, so the figure is per PDU.
//!
//! The service is trivial: the accepted side (`Kind::Server`) sends every PDU back with
//! `pdu_io::send_raw`, the outgoing side (`Kind::Client`, a link of the service) sends the next
//! PDU with `pdu_io::send_raw` for each echo received. Every PDU therefore goes through what a
//! daemon's PDUs go through: the adapter's connection-kind lookup, framing with
//! `pdu_io::drain_pdus`, the heartbeat check, the service's handler and `pdu_io`'s sending, with
//! whatever those count (PDUs in and out by command). Each round trip is two PDUs received and
//! two sent by the adapter. Same connection setup and driving as `benches/dispatch.rs`.
//!
//! With `PDU_SERVER_ROUND_TRIPS=DEPTH:N` in the environment the binary runs no benchmark: it
//! sets up the same connection, drives exactly N round trips with DEPTH in flight and exits,
//! so that an instruction counter (`valgrind --tool=callgrind`) sees a fixed amount of work.

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group};
use netlib::{CloseReason, Config, ConnId, EventLoop, Net};
use tt_common::{Accepted, KeepAlive, PduServer, PduService, pdu_io};
use tt_proto::pb::base_define::MsgType;
use tt_proto::pb::message::ImMsgData;
use tt_proto::pdu::{self, DEFAULT_MAX_PDU_LEN, HEADER_LEN, Header};
use tt_proto::prost::Message;

const PDU_LEN: usize = 64;
/// PDUs in flight in the pipelined variant.
const PIPELINE: u64 = 64;
const SETUP_DEADLINE: Duration = Duration::from_secs(10);

/// A 64-byte `IMMsgData` PDU (16-byte header, 48-byte body), as its header and body.
fn pdu_64() -> (Header, Vec<u8>) {
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
    let header = pdu::peek_frame(&out, DEFAULT_MAX_PDU_LEN)
        .expect("well framed")
        .expect("one whole PDU");
    (header, out[HEADER_LEN..].to_vec())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// The accepted end: echoes.
    Server,
    /// The outgoing end: drives the round trips.
    Client,
}

struct Echo {
    header: Header,
    body: Vec<u8>,
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

impl PduService for Echo {
    type Kind = Kind;
    type Msg = ();

    fn accept(&mut self, _: &mut Net, accepted: Accepted) -> Option<Kind> {
        assert!(self.server.is_none(), "one connection only");
        self.server = Some(accepted.conn);
        Some(Kind::Server)
    }

    fn link_kind(&self, conn: ConnId) -> Option<Kind> {
        (conn == self.client).then_some(Kind::Client)
    }

    fn connected(&mut self, _: &mut Net, _: ConnId, _: Kind) {
        self.connected = true;
    }

    fn keep_alive(&self, _: ConnId, _: Kind) -> KeepAlive {
        KeepAlive {
            heartbeat: None,
            timeout: Duration::from_secs(3600),
        }
    }

    fn pdu(&mut self, net: &mut Net, conn: ConnId, kind: Kind, header: &Header, body: &[u8]) {
        match kind {
            Kind::Server => assert!(pdu_io::send_raw(net, conn, header, body)),
            Kind::Client => {
                if self.record {
                    self.last_echo.clear();
                    self.last_echo.extend_from_slice(&header.to_bytes());
                    self.last_echo.extend_from_slice(body);
                }
                if self.to_send > 0 {
                    self.to_send -= 1;
                    assert!(pdu_io::send_raw(net, conn, &self.header, &self.body));
                }
                self.to_receive -= 1;
                if self.to_receive == 0 {
                    net.stop();
                }
            }
        }
    }

    fn closed(&mut self, _: &mut Net, conn: ConnId, kind: Kind, reason: CloseReason) {
        panic!("{kind:?} {conn:?} closed during the benchmark: {reason:?}");
    }
}

fn setup() -> (EventLoop<()>, PduServer<Echo>) {
    let mut ev = EventLoop::new(Config::default()).expect("event loop");
    let loopback: SocketAddr = "127.0.0.1:0".parse().expect("address");
    let listener = ev.net().listen(loopback).expect("listen");
    let addr = ev.net().listener_addr(listener).expect("listener address");
    let client = ev.net().connect(addr);
    let (header, body) = pdu_64();
    let echo = Echo {
        header,
        body,
        client,
        server: None,
        connected: false,
        to_send: 0,
        to_receive: 0,
        record: false,
        last_echo: Vec::new(),
    };
    let mut server = PduServer::new(echo, ev.net());
    let deadline = Instant::now() + SETUP_DEADLINE;
    while !(server.service().connected && server.service().server.is_some()) {
        assert!(Instant::now() < deadline, "loopback connect timed out");
        ev.turn(&mut server).expect("turn");
    }
    (ev, server)
}

/// Drives exactly `n` round trips with up to `depth` PDUs in flight; returns the time taken.
fn run(ev: &mut EventLoop<()>, server: &mut PduServer<Echo>, n: u64, depth: u64) -> Duration {
    if n == 0 {
        return Duration::ZERO;
    }
    let first = n.min(depth);
    let echo = server.service_mut();
    echo.to_send = n - first;
    echo.to_receive = n;
    let start = Instant::now();
    for _ in 0..first {
        assert!(pdu_io::send_raw(
            ev.net(),
            echo.client,
            &echo.header,
            &echo.body
        ));
    }
    ev.run(server).expect("event loop");
    let elapsed = start.elapsed();
    let echo = server.service();
    assert_eq!(
        (echo.to_send, echo.to_receive),
        (0, 0),
        "every round trip done"
    );
    elapsed
}

fn pdu_server(c: &mut Criterion) {
    let mut g = c.benchmark_group("pdu_server");
    // One element is one PDU's round trip.
    g.throughput(Throughput::Elements(1));
    for (name, depth) in [("pingpong_64b", 1), ("pipelined_64b", PIPELINE)] {
        let mut state = None;
        g.bench_function(name, |b| {
            let (ev, server) = state.get_or_insert_with(|| {
                let (mut ev, mut server) = setup();
                // The invariant, checked once outside the measurement: the echo is the PDU sent.
                server.service_mut().record = true;
                run(&mut ev, &mut server, 3 * depth, depth);
                let echo = server.service_mut();
                echo.record = false;
                let mut sent = echo.header.to_bytes().to_vec();
                sent.extend_from_slice(&echo.body);
                assert_eq!(echo.last_echo, sent, "the PDU came back unchanged");
                (ev, server)
            });
            b.iter_custom(|iters| run(ev, server, black_box(iters), depth));
        });
        drop(state);
    }
    g.finish();
}

/// Runs exactly the round trips `spec` (`DEPTH:N`) asks for, outside criterion.
fn fixed_round_trips(spec: &str) {
    let (depth, n) = spec
        .split_once(':')
        .and_then(|(d, n)| Some((d.parse::<u64>().ok()?, n.parse::<u64>().ok()?)))
        .expect("PDU_SERVER_ROUND_TRIPS is DEPTH:N");
    let (mut ev, mut server) = setup();
    let elapsed = run(&mut ev, &mut server, n, depth.max(1));
    println!("{n} round trips, {depth} in flight: {elapsed:?}");
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = pdu_server
}

fn main() {
    if let Ok(spec) = std::env::var("PDU_SERVER_ROUND_TRIPS") {
        fixed_round_trips(&spec);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
