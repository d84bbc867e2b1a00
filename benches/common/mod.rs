//! What `benches/dispatch.rs` and `benches/pdu_server.rs` share: the 64-byte PDU they echo, the
//! count of round trips on the client side, and a loopback TCP connection whose both ends live
//! in one netlib event loop, with the driving of exactly N round trips over it. Each bench
//! includes this file as `mod common;`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use netlib::{Config, ConnId, EventLoop, Handler, Net};
use tt_proto::pb::base_define::MsgType;
use tt_proto::pb::message::ImMsgData;
use tt_proto::pdu::{self, HEADER_LEN};
use tt_proto::prost::Message;

pub const PDU_LEN: usize = 64;
/// PDUs in flight in the pipelined variant.
pub const PIPELINE: u64 = 64;
pub const SETUP_DEADLINE: Duration = Duration::from_secs(10);

/// A 64-byte `IMMsgData` PDU: 16-byte header, 48-byte body.
pub fn pdu_64() -> Vec<u8> {
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

pub fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().expect("address")
}

/// The client side's round trips of one run, and its copy of the last echo.
#[derive(Default)]
pub struct RoundTrips {
    /// Round trips still to start in this run.
    pub to_send: u64,
    /// Round trips still to finish in this run; the loop stops at 0.
    pub to_receive: u64,
    /// Keep a copy of the last echo (only for the invariant check, never while measured).
    pub record: bool,
    pub last_echo: Vec<u8>,
}

impl RoundTrips {
    /// Sets up a run of `n` round trips with up to `depth` in flight; returns how many PDUs the
    /// client sends before the first echo.
    pub fn start(&mut self, n: u64, depth: u64) -> u64 {
        let first = n.min(depth);
        self.to_send = n - first;
        self.to_receive = n;
        first
    }

    /// Counts an echo received by the client; while recording, `keep` writes the echo into the
    /// emptied `last_echo`. Returns whether the client sends the next PDU.
    #[inline]
    pub fn echoed(&mut self, keep: impl FnOnce(&mut Vec<u8>)) -> bool {
        if self.record {
            self.last_echo.clear();
            keep(&mut self.last_echo);
        }
        self.to_receive -= 1;
        if self.to_send > 0 {
            self.to_send -= 1;
            true
        } else {
            false
        }
    }

    /// Every round trip of the run has finished.
    #[inline]
    pub fn done(&self) -> bool {
        self.to_receive == 0
    }

    /// Asserts that the run started and finished every round trip.
    pub fn check_finished(&self) {
        assert_eq!(
            (self.to_send, self.to_receive),
            (0, 0),
            "every round trip done"
        );
    }
}

/// A handler of the loopback connection of [`connect_pair`] whose client end drives the round
/// trips of [`run`].
pub trait PingPong: Handler<Msg = ()> {
    /// Both ends are connected.
    fn ready(&self) -> bool;
    fn trips(&mut self) -> &mut RoundTrips;
    /// Sends one PDU from the client end.
    fn send_from_client(&mut self, net: &mut Net);
}

/// Makes an event loop that listens on loopback and connects to itself, builds its handler with
/// `make` (given the loop's `Net` and the outgoing connection) and turns the loop until
/// [`PingPong::ready`].
pub fn connect_pair<H: PingPong>(make: impl FnOnce(&mut Net, ConnId) -> H) -> (EventLoop<()>, H) {
    let mut ev = EventLoop::new(Config::default()).expect("event loop");
    let listener = ev.net().listen(loopback()).expect("listen");
    let addr = ev.net().listener_addr(listener).expect("listener address");
    let client = ev.net().connect(addr);
    let mut h = make(ev.net(), client);
    let deadline = Instant::now() + SETUP_DEADLINE;
    while !h.ready() {
        assert!(Instant::now() < deadline, "loopback connect timed out");
        ev.turn(&mut h).expect("turn");
    }
    (ev, h)
}

/// Drives exactly `n` round trips with up to `depth` PDUs in flight; returns the time taken.
pub fn run<H: PingPong>(ev: &mut EventLoop<()>, h: &mut H, n: u64, depth: u64) -> Duration {
    if n == 0 {
        return Duration::ZERO;
    }
    let first = h.trips().start(n, depth);
    let start = Instant::now();
    for _ in 0..first {
        h.send_from_client(ev.net());
    }
    ev.run(h).expect("event loop");
    let elapsed = start.elapsed();
    h.trips().check_finished();
    elapsed
}
