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
//! two sent by the adapter. The connection setup and driving are those of `benches/common`,
//! shared with `benches/dispatch.rs`.
//!
//! With `PDU_SERVER_ROUND_TRIPS=DEPTH:N` in the environment the binary runs no benchmark: it
//! sets up the same connection, drives exactly N round trips with DEPTH in flight and exits,
//! so that an instruction counter (`valgrind --tool=callgrind`) sees a fixed amount of work.

mod common;

use std::hint::black_box;
use std::time::Duration;

use common::{PIPELINE, PingPong, RoundTrips, connect_pair, pdu_64, run};
use criterion::{Criterion, Throughput, criterion_group};
use netlib::{CloseReason, ConnId, EventLoop, Net};
use tt_common::{Accepted, KeepAlive, PduServer, PduService, pdu_io};
use tt_proto::pdu::{self, DEFAULT_MAX_PDU_LEN, HEADER_LEN, Header};

/// The 64-byte PDU of [`pdu_64`] as its header and body.
fn pdu_64_parts() -> (Header, Vec<u8>) {
    let out = pdu_64();
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
    trips: RoundTrips,
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
                let next = self.trips.echoed(|last_echo| {
                    last_echo.extend_from_slice(&header.to_bytes());
                    last_echo.extend_from_slice(body);
                });
                if next {
                    assert!(pdu_io::send_raw(net, conn, &self.header, &self.body));
                }
                if self.trips.done() {
                    net.stop();
                }
            }
        }
    }

    fn closed(&mut self, _: &mut Net, conn: ConnId, kind: Kind, reason: CloseReason) {
        panic!("{kind:?} {conn:?} closed during the benchmark: {reason:?}");
    }
}

impl PingPong for PduServer<Echo> {
    fn ready(&self) -> bool {
        self.service().connected && self.service().server.is_some()
    }

    fn trips(&mut self) -> &mut RoundTrips {
        &mut self.service_mut().trips
    }

    fn send_from_client(&mut self, net: &mut Net) {
        let echo = self.service();
        assert!(pdu_io::send_raw(net, echo.client, &echo.header, &echo.body));
    }
}

fn setup() -> (EventLoop<()>, PduServer<Echo>) {
    connect_pair(|net, client| {
        let (header, body) = pdu_64_parts();
        let echo = Echo {
            header,
            body,
            client,
            server: None,
            connected: false,
            trips: RoundTrips::default(),
        };
        PduServer::new(echo, net)
    })
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
                server.trips().record = true;
                run(&mut ev, &mut server, 3 * depth, depth);
                let echo = server.service_mut();
                echo.trips.record = false;
                let mut sent = echo.header.to_bytes().to_vec();
                sent.extend_from_slice(&echo.body);
                assert_eq!(echo.trips.last_echo, sent, "the PDU came back unchanged");
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
