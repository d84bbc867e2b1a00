//! Server links, keep-alive and PDU framing over real loopback sockets.

use std::io::Read;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::time::Duration;

use netlib::{Buffer, CloseReason, Config, ConnId, EventLoop, Handler, ListenerId, Net};
use tt_common::pdu_io::{self, Flow, KeepAlive, Liveness};
use tt_common::{Conf, ServerLinks};
use tt_proto::Pdu;
use tt_proto::ids::{cid, sid};
use tt_proto::pdu::{FrameError, HEADER_LEN, Header};

struct Linker {
    links: ServerLinks,
    connects: usize,
    closes: Vec<CloseReason>,
}

impl Handler for Linker {
    type Msg = ();
    fn on_accept(&mut self, _: &mut Net, _: ListenerId, _: ConnId, _: SocketAddr) {}
    fn on_connect(&mut self, net: &mut Net, conn: ConnId) {
        assert!(self.links.on_connect(conn, net.now()).is_some());
        self.connects += 1;
    }
    fn on_read(&mut self, _: &mut Net, _: ConnId, input: &mut Buffer) {
        input.consume(input.len());
    }
    fn on_close(&mut self, _: &mut Net, conn: ConnId, reason: CloseReason) {
        if self.links.on_close(conn).is_some() {
            self.closes.push(reason);
        }
    }
}

/// Turns the loop until `done` holds (bounded: a hang fails the test).
fn turn_until(ev: &mut EventLoop<()>, h: &mut Linker, done: impl Fn(&Linker) -> bool) {
    for _ in 0..10_000 {
        if done(h) {
            return;
        }
        ev.turn(h).unwrap();
    }
    panic!("condition not reached");
}

#[test]
fn links_back_off_then_connect_when_the_server_appears() {
    let port = StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let conf = Conf::parse(
        &format!("RouteServerIP1=127.0.0.1\nRouteServerPort1={port}\n"),
        "msgserver.conf",
    );
    let links =
        ServerLinks::from_conf(&conf, "route_server", "RouteServerIP", "RouteServerPort").unwrap();
    assert_eq!(links.len(), 1);
    let mut ev = EventLoop::new(Config {
        poll_timeout: Duration::from_millis(10),
        ..Config::default()
    })
    .unwrap();
    let mut h = Linker {
        links,
        connects: 0,
        closes: Vec::new(),
    };
    h.links.start(ev.net());
    turn_until(&mut ev, &mut h, |h| !h.closes.is_empty());
    assert!(matches!(h.closes[0], CloseReason::ConnectFailed(_)));
    assert!(!h.links.any_open());

    // Back-off after the first failure: 4 ticks. Three ticks do nothing…
    for _ in 0..3 {
        h.links.tick(ev.net());
    }
    assert!(h.links.slots().iter().all(|s| s.open_conn().is_none()));
    ev.turn(&mut h).unwrap();
    assert_eq!(
        h.closes.len(),
        1,
        "no attempt was made before the fourth tick"
    );

    // …the server comes up, the fourth tick reconnects.
    let listener = ev
        .net()
        .listen(SocketAddr::from(([127, 0, 0, 1], port)))
        .unwrap();
    h.links.tick(ev.net());
    turn_until(&mut ev, &mut h, |h| h.connects == 1);
    assert!(h.links.any_open());
    assert_eq!(h.closes.len(), 1);
    let conn = h.links.oldest_open().unwrap();
    assert_eq!(h.links.pick_open(7), Some(conn));
    ev.net().close_listener(listener);
}

struct Quiet;
impl Handler for Quiet {
    type Msg = ();
    fn on_accept(&mut self, _: &mut Net, _: ListenerId, _: ConnId, _: SocketAddr) {}
    fn on_read(&mut self, _: &mut Net, _: ConnId, _: &mut Buffer) {}
}

#[test]
fn keepalive_sends_heartbeats_then_closes_a_silent_link() {
    let mut ev = EventLoop::new(Config::default()).unwrap();
    let l = ev.net().listen("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = ev.net().listener_addr(l).unwrap();
    let conn = ev.net().connect(addr);
    let mut h = Quiet;
    while !ev.net().is_connected(conn) {
        ev.turn(&mut h).unwrap();
    }
    let eager = KeepAlive {
        heartbeat: Some(Duration::ZERO),
        timeout: Duration::from_secs(3600),
    };
    // Strictly greater than: one turn after the last send, a zero interval is due.
    ev.turn(&mut h).unwrap();
    assert_eq!(eager.check(ev.net(), conn), Liveness::HeartbeatSent);

    let impatient = KeepAlive {
        heartbeat: None,
        timeout: Duration::ZERO,
    };
    ev.turn(&mut h).unwrap();
    assert_eq!(impatient.check(ev.net(), conn), Liveness::TimedOut);
    assert!(!ev.net().is_open(conn));
    assert_eq!(impatient.check(ev.net(), conn), Liveness::Gone);
}

#[test]
fn heartbeat_bytes_reach_the_peer() {
    let server = StdListener::bind("127.0.0.1:0").unwrap();
    let addr = server.local_addr().unwrap();
    let mut ev = EventLoop::new(Config::default()).unwrap();
    let conn = ev.net().connect(addr);
    let mut h = Quiet;
    while !ev.net().is_connected(conn) {
        ev.turn(&mut h).unwrap();
    }
    let (mut peer, _) = server.accept().unwrap();
    assert!(pdu_io::send_heartbeat(ev.net(), conn));
    let timeout = KeepAlive {
        heartbeat: None,
        timeout: Duration::ZERO,
    };
    ev.turn(&mut h).unwrap();
    assert_eq!(timeout.check(ev.net(), conn), Liveness::TimedOut);
    // The close is graceful: the peer gets the heartbeat, then the end of stream.
    let mut buf = [0u8; HEADER_LEN];
    peer.read_exact(&mut buf).unwrap();
    assert_eq!(
        buf,
        [0, 0, 0, 16, 0, 1, 0, 0, 0, 7, 7, 1, 0, 0, 0, 0],
        "protocol.md 2.1 heartbeat"
    );
    let mut rest = Vec::new();
    peer.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
}

#[test]
fn drain_pdus_hands_out_whole_pdus_in_order() {
    let mut input = Buffer::new();
    let a = Pdu::new(sid::SID_OTHER, cid::CID_OTHER_HEARTBEAT, 1, vec![]);
    let b = Pdu::new(sid::SID_MSG, cid::CID_MSG_DATA, 2, vec![1, 2, 3]);
    input.extend(&a.to_bytes());
    input.extend(&b.to_bytes());
    let c = Pdu::new(sid::SID_MSG, cid::CID_MSG_DATA, 3, vec![9; 10]).to_bytes();
    input.extend(&c[..20]); // a partial third PDU stays buffered
    let mut seen: Vec<(Header, Vec<u8>)> = Vec::new();
    pdu_io::drain_pdus(&mut input, 1024, |h, body| {
        seen.push((*h, body.to_vec()));
        Flow::Continue
    })
    .unwrap();
    assert_eq!(seen.len(), 2);
    assert_eq!((seen[0].0, &seen[0].1), (a.header, &a.body));
    assert_eq!((seen[1].0, &seen[1].1), (b.header, &b.body));
    assert_eq!(input.len(), 20);

    // Stop means stop: the second PDU stays unhandled.
    let mut input = Buffer::new();
    input.extend(&a.to_bytes());
    input.extend(&b.to_bytes());
    let mut n = 0;
    pdu_io::drain_pdus(&mut input, 1024, |_, _| {
        n += 1;
        Flow::Stop
    })
    .unwrap();
    assert_eq!(n, 1);

    // A length under 16 is an error, not a wait.
    let mut bad = Buffer::new();
    bad.extend(&[0, 0, 0, 5, 0, 1, 0, 0, 0, 7, 7, 1, 0, 0, 0, 0]);
    assert_eq!(
        pdu_io::drain_pdus(&mut bad, 1024, |_, _| Flow::Continue),
        Err(FrameError::TooShort(5))
    );
}
