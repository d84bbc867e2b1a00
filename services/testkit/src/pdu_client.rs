//! A blocking PDU peer over `std::net::TcpStream`, for tests that speak the wire protocol
//! themselves: a client of a daemon (a TeamTalk client, a msg_server link, a db_proxy caller)
//! or, through [`PduListener`], the server side of a connection a daemon opens (a fake
//! route_server or login_server, a fake msg_server for the client library).
//!
//! Every read is bounded by a hang guard ([`HANG_GUARD`] unless [`PduClient::set_hang_guard`]
//! says otherwise): a test that waits for something that never comes fails with a message
//! instead of hanging. The guard is no timing assertion; the only waits that expect *nothing* to
//! arrive are the explicit ones, [`PduClient::recv_within`] and [`PduClient::drain`].
//!
//! | need | method |
//! |---|---|
//! | connect / accept | [`PduClient::connect`], [`PduClient::connect_to`], [`PduListener::accept`] |
//! | send a typed message with a fresh seq | [`PduClient::send`] (returns the seq) |
//! | reply to a request, or a server-originated PDU (seq 0) | [`PduClient::reply`], [`PduClient::notify`] |
//! | send a built PDU or raw bytes | [`PduClient::send_pdu`], [`PduClient::send_bytes`] |
//! | the next PDU | [`PduClient::recv_pdu`], [`PduClient::try_recv_pdu`] |
//! | the next PDU of a command, skipping others | [`PduClient::recv_until`], [`PduClient::recv_until_matching`] (also returns the skipped ones) |
//! | a typed message, skipping others | [`PduClient::recv`] |
//! | the very next PDU, asserted to be a typed message | [`PduClient::expect`] |
//! | request and its reply as the very next PDU | [`PduClient::call`] |
//! | the peer closes | [`PduClient::expect_closed`], [`PduClient::expect_end_of_stream`] |
//! | what arrives within a quiet period | [`PduClient::recv_within`], [`PduClient::drain`] |
//!
//! Heartbeats are PDUs like any other unless [`PduClient::skip_heartbeats`] is on; then the
//! receiving methods never return one (server links heartbeat on their own schedule, which a
//! test should not have to expect). [`PduClient::expect_closed`] returns everything, heartbeats
//! included.

use std::fmt::Debug;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tt_proto::ids::cid;
use tt_proto::{Command, Decoder, Header, Pdu};

/// The default hang guard of every blocking read and accept.
pub const HANG_GUARD: Duration = Duration::from_secs(20);

/// A blocking PDU connection with its own decoder and seq counter.
pub struct PduClient {
    stream: TcpStream,
    decoder: Decoder,
    seq: u16,
    skip_heartbeats: bool,
    guard: Duration,
    /// The peer's address, for failure messages.
    peer: String,
}

/// What one read of the socket gave.
enum ReadOutcome {
    Data,
    /// End of stream.
    Closed,
    /// The peer reset the connection.
    Reset,
    TimedOut,
}

impl PduClient {
    /// Connects to `127.0.0.1:port`.
    pub fn connect(port: u16) -> PduClient {
        PduClient::connect_to(("127.0.0.1", port))
    }

    /// Connects to `addr`.
    pub fn connect_to(addr: impl ToSocketAddrs + Debug) -> PduClient {
        let stream =
            TcpStream::connect(&addr).unwrap_or_else(|e| panic!("connecting to {addr:?}: {e}"));
        PduClient::from_stream(stream)
    }

    /// Wraps a connected stream (no delay, the default hang guard).
    pub fn from_stream(stream: TcpStream) -> PduClient {
        stream.set_nodelay(true).expect("setting TCP_NODELAY");
        stream
            .set_read_timeout(Some(HANG_GUARD))
            .expect("setting the read timeout");
        let peer = stream
            .peer_addr()
            .map_or_else(|_| "the peer".to_string(), |a| a.to_string());
        PduClient {
            stream,
            decoder: Decoder::default(),
            seq: 0,
            skip_heartbeats: false,
            guard: HANG_GUARD,
            peer,
        }
    }

    /// With `on`, the receiving methods (all but [`expect_closed`](Self::expect_closed)) drop
    /// heartbeats instead of returning them.
    pub fn skip_heartbeats(&mut self, on: bool) -> &mut PduClient {
        self.skip_heartbeats = on;
        self
    }

    /// Like [`skip_heartbeats(true)`](Self::skip_heartbeats), by value (for construction).
    pub fn skipping_heartbeats(mut self) -> PduClient {
        self.skip_heartbeats = true;
        self
    }

    /// Sets the hang guard of every later blocking read.
    pub fn set_hang_guard(&mut self, guard: Duration) {
        assert!(!guard.is_zero(), "a hang guard of zero");
        self.guard = guard;
        self.stream
            .set_read_timeout(Some(guard))
            .expect("setting the read timeout");
    }

    /// The underlying stream (addresses, socket options).
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// Shuts both directions of the connection down (the peer sees the close).
    pub fn shutdown(&self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }

    // ---- sending ----

    /// The next seq of this connection's counter (1, 2, … wrapping), as [`send`](Self::send)
    /// uses; for building PDUs by hand.
    pub fn next_seq(&mut self) -> u16 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// Sends `msg` with the service and command ids of its type and a fresh seq; returns the seq.
    pub fn send<M: Command>(&mut self, msg: &M) -> u16 {
        let seq = self.next_seq();
        self.send_pdu(&Pdu::command(seq, msg));
        seq
    }

    /// Sends `msg` with seq 0, as servers do for what they send on their own (notifies, and
    /// the server-to-server commands of a msg_server).
    pub fn notify<M: Command>(&mut self, msg: &M) {
        self.send_pdu(&Pdu::command(0, msg));
    }

    /// Sends `msg` as the reply to `request` (its seq).
    pub fn reply<M: Command>(&mut self, request: &Header, msg: &M) {
        self.send_pdu(&Pdu::command(request.seq_num, msg));
    }

    /// Sends a PDU as it is (header fields as given, length from the body).
    pub fn send_pdu(&mut self, pdu: &Pdu) {
        self.send_bytes(&pdu.to_bytes());
    }

    /// Sends raw bytes (several PDUs in one write, bad headers, garbage).
    pub fn send_bytes(&mut self, bytes: &[u8]) {
        let peer = &self.peer;
        self.stream
            .write_all(bytes)
            .unwrap_or_else(|e| panic!("writing to {peer}: {e}"));
    }

    /// Like [`send_bytes`](Self::send_bytes), for writes the peer may refuse by closing.
    pub fn try_send_bytes(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    // ---- receiving ----

    /// The next PDU. Panics if the connection closes, the stream cannot be framed, or nothing
    /// comes within the hang guard.
    pub fn recv_pdu(&mut self) -> Pdu {
        match self.try_recv_pdu() {
            Some(p) => p,
            None => panic!(
                "{} closed the connection while a PDU was awaited",
                self.peer
            ),
        }
    }

    /// The next PDU, or `None` if the peer closed the connection (end of stream or reset)
    /// between two PDUs. Panics on a close within a PDU, on a framing error and after the hang
    /// guard.
    pub fn try_recv_pdu(&mut self) -> Option<Pdu> {
        loop {
            if let Some(p) = self.pop() {
                return Some(p);
            }
            match self.read_once(self.guard) {
                ReadOutcome::Data => {}
                ReadOutcome::Closed | ReadOutcome::Reset => {
                    self.assert_no_partial_pdu();
                    return None;
                }
                ReadOutcome::TimedOut => panic!(
                    "no PDU from {} within {:?} (hang guard)",
                    self.peer, self.guard
                ),
            }
        }
    }

    /// The next PDU if one starts to arrive within `limit`; `None` if nothing does. A PDU whose
    /// first bytes came in time is waited for whole (hang guard). Panics if the connection
    /// closes.
    pub fn recv_within(&mut self, limit: Duration) -> Option<Pdu> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(p) = self.pop() {
                return Some(p);
            }
            if self.decoder.buffered() > 0 {
                return Some(self.recv_pdu());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            match self.read_once(left) {
                ReadOutcome::Data => {}
                ReadOutcome::Closed | ReadOutcome::Reset => {
                    panic!("{} closed the connection", self.peer)
                }
                ReadOutcome::TimedOut => return None,
            }
        }
    }

    /// Every PDU that arrives within `quiet` of the previous one (or of the call); returns
    /// once `quiet` passes without one.
    pub fn drain(&mut self, quiet: Duration) -> Vec<Pdu> {
        let mut seen = Vec::new();
        while let Some(p) = self.recv_within(quiet) {
            seen.push(p);
        }
        seen
    }

    /// The next PDU with command `command_id`; others are skipped.
    pub fn recv_until(&mut self, command_id: u16) -> Pdu {
        self.recv_until_matching(|p| p.header.command_id == command_id)
            .1
    }

    /// The next PDU for which `wanted` holds, and the PDUs received before it, in order.
    pub fn recv_until_matching(&mut self, mut wanted: impl FnMut(&Pdu) -> bool) -> (Vec<Pdu>, Pdu) {
        let mut skipped = Vec::new();
        loop {
            let p = self.recv_pdu();
            if wanted(&p) {
                return (skipped, p);
            }
            skipped.push(p);
        }
    }

    /// The next `M` (by its command id), decoded with the original's proto2 rules
    /// ([`Pdu::decode_checked`]); other PDUs are skipped. Returns the header with it.
    pub fn recv<M: Command>(&mut self) -> (Header, M) {
        let p = self.recv_until(M::COMMAND_ID);
        (p.header, decode(&p))
    }

    /// The next PDU, asserted to be an `M`, decoded as by [`recv`](Self::recv).
    pub fn expect<M: Command>(&mut self) -> (Header, M) {
        let p = self.recv_pdu();
        assert_eq!(
            p.header.command_id,
            M::COMMAND_ID,
            "expected {} ({:#06x}) from {}, got {}",
            M::NAME,
            M::COMMAND_ID,
            self.peer,
            command_name(p.header.command_id)
        );
        (p.header, decode(&p))
    }

    /// Sends `request` with a fresh seq; the very next PDU must be its reply: an `R` with the
    /// request's seq.
    pub fn call<R: Command>(&mut self, request: &impl Command) -> R {
        let seq = self.send(request);
        let (h, reply) = self.expect::<R>();
        assert_eq!(h.seq_num, seq, "the reply carries the request's seq");
        reply
    }

    /// Reads until the peer closes the connection (end of stream or reset) and returns every
    /// PDU that arrived before, heartbeats included. Panics if the connection is not closed
    /// within the hang guard, if the stream cannot be framed or if it ends within a PDU.
    pub fn expect_closed(&mut self) -> Vec<Pdu> {
        self.read_to_close(true)
    }

    /// Like [`expect_closed`](Self::expect_closed), and the close must be an orderly one: end
    /// of stream, not a reset.
    pub fn expect_end_of_stream(&mut self) -> Vec<Pdu> {
        self.read_to_close(false)
    }

    fn read_to_close(&mut self, reset_is_close: bool) -> Vec<Pdu> {
        let mut seen = Vec::new();
        loop {
            while let Some(p) = self.next_framed() {
                seen.push(p);
            }
            match self.read_once(self.guard) {
                ReadOutcome::Data => {}
                ReadOutcome::Closed => {
                    self.assert_no_partial_pdu();
                    return seen;
                }
                ReadOutcome::Reset if reset_is_close => {
                    self.assert_no_partial_pdu();
                    return seen;
                }
                ReadOutcome::Reset => panic!(
                    "{} reset the connection instead of closing it; received: {seen:?}",
                    self.peer
                ),
                ReadOutcome::TimedOut => panic!(
                    "{} did not close the connection within {:?} (hang guard); received: {seen:?}",
                    self.peer, self.guard
                ),
            }
        }
    }

    /// The next whole PDU already received, heartbeats dropped if so configured.
    fn pop(&mut self) -> Option<Pdu> {
        loop {
            let p = self.next_framed()?;
            if self.skip_heartbeats && p.header.command_id == cid::CID_OTHER_HEARTBEAT {
                continue;
            }
            return Some(p);
        }
    }

    fn next_framed(&mut self) -> Option<Pdu> {
        match self.decoder.next_pdu() {
            Ok(p) => p,
            Err(e) => panic!("the stream from {} cannot be framed: {e}", self.peer),
        }
    }

    fn assert_no_partial_pdu(&self) {
        assert_eq!(
            self.decoder.buffered(),
            0,
            "{} closed the connection within a PDU",
            self.peer
        );
    }

    /// One read of at most `timeout`, its bytes pushed into the decoder.
    fn read_once(&mut self, timeout: Duration) -> ReadOutcome {
        if timeout != self.guard {
            self.stream
                .set_read_timeout(Some(timeout))
                .expect("setting the read timeout");
        }
        let mut buf = [0u8; 64 * 1024];
        let r = self.stream.read(&mut buf);
        if timeout != self.guard {
            self.stream
                .set_read_timeout(Some(self.guard))
                .expect("setting the read timeout");
        }
        match r {
            Ok(0) => ReadOutcome::Closed,
            Ok(n) => {
                self.decoder.push(&buf[..n]);
                ReadOutcome::Data
            }
            Err(e) if e.kind() == ErrorKind::ConnectionReset => ReadOutcome::Reset,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                ReadOutcome::TimedOut
            }
            Err(e) => panic!("reading from {}: {e}", self.peer),
        }
    }
}

fn decode<M: Command>(p: &Pdu) -> M {
    p.decode_checked()
        .unwrap_or_else(|e| panic!("decoding {} (seq {}): {e}", M::NAME, p.header.seq_num))
}

fn command_name(command_id: u16) -> String {
    match tt_proto::ids::cid_name(command_id) {
        Some(name) => format!("{name} ({command_id:#06x})"),
        None => format!("{command_id:#06x}"),
    }
}

/// A listener on 127.0.0.1 whose connections become [`PduClient`]s: the server side of links a
/// daemon opens.
pub struct PduListener {
    listener: TcpListener,
}

impl PduListener {
    /// Listens on a free port.
    pub fn bind() -> PduListener {
        PduListener::bind_port(0)
    }

    /// Listens on `port` (0: a free one). Panics if it is taken.
    pub fn bind_port(port: u16) -> PduListener {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .unwrap_or_else(|e| panic!("listening on 127.0.0.1:{port}: {e}"));
        PduListener { listener }
    }

    pub fn addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("listener address")
    }

    pub fn port(&self) -> u16 {
        self.addr().port()
    }

    /// The next connection. Panics if none comes within [`HANG_GUARD`].
    pub fn accept(&self) -> PduClient {
        self.accept_within(HANG_GUARD)
    }

    /// The next connection. Panics if none comes within `guard` (a hang guard: the accept runs
    /// on a helper thread, which is left blocked if it times out).
    pub fn accept_within(&self, guard: Duration) -> PduClient {
        let listener = self.listener.try_clone().expect("cloning the listener");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(listener.accept());
        });
        match rx.recv_timeout(guard) {
            Ok(Ok((stream, _))) => PduClient::from_stream(stream),
            Ok(Err(e)) => panic!("accepting on {}: {e}", self.addr()),
            Err(_) => panic!(
                "no connection to {} within {guard:?} (hang guard)",
                self.addr()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tt_proto::ids::sid;
    use tt_proto::pb::message::{ImClientTimeReq, ImClientTimeRsp};
    use tt_proto::pb::other::ImHeartBeat;

    fn pair() -> (PduClient, PduClient) {
        let l = PduListener::bind();
        let c = PduClient::connect(l.port());
        let s = l.accept();
        (c, s)
    }

    #[test]
    fn typed_send_recv_and_reply_keep_the_seq() {
        let (mut c, mut s) = pair();
        let seq = c.send(&ImClientTimeReq {});
        assert_eq!(seq, 1);
        let (h, _) = s.expect::<ImClientTimeReq>();
        assert_eq!(
            (h.service_id, h.command_id, h.seq_num),
            (sid::SID_MSG, cid::CID_MSG_TIME_REQUEST, 1)
        );
        s.notify(&ImHeartBeat {});
        s.reply(&h, &ImClientTimeRsp { server_time: 7 });
        let (h, rsp) = c.recv::<ImClientTimeRsp>();
        assert_eq!((h.seq_num, rsp.server_time), (1, 7));
    }

    #[test]
    fn call_takes_the_next_pdu_as_the_reply() {
        let (mut c, mut s) = pair();
        let server = std::thread::spawn(move || {
            let (h, _) = s.expect::<ImClientTimeReq>();
            s.reply(&h, &ImClientTimeRsp { server_time: 9 });
            s
        });
        let rsp: ImClientTimeRsp = c.call(&ImClientTimeReq {});
        assert_eq!(rsp.server_time, 9);
        drop(server.join().unwrap());
        assert!(c.expect_end_of_stream().is_empty());
    }

    #[test]
    fn heartbeats_are_skipped_on_request_and_returned_by_expect_closed() {
        let (mut c, mut s) = pair();
        c.skip_heartbeats(true);
        s.send_pdu(&Pdu::heartbeat());
        s.notify(&ImClientTimeRsp { server_time: 1 });
        s.send_pdu(&Pdu::heartbeat());
        assert_eq!(c.recv_pdu().header.command_id, cid::CID_MSG_TIME_RESPONSE);
        s.shutdown();
        let rest = c.expect_closed();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].header.command_id, cid::CID_OTHER_HEARTBEAT);
    }

    #[test]
    fn recv_until_matching_returns_what_it_skipped() {
        let (mut c, mut s) = pair();
        s.notify(&ImHeartBeat {});
        s.notify(&ImClientTimeRsp { server_time: 1 });
        s.notify(&ImClientTimeRsp { server_time: 2 });
        let (skipped, p) = c.recv_until_matching(|p| {
            p.decode_body::<ImClientTimeRsp>()
                .is_ok_and(|m| m.server_time == 2)
        });
        assert_eq!(skipped.len(), 2);
        assert_eq!(p.header.command_id, cid::CID_MSG_TIME_RESPONSE);
    }

    #[test]
    fn a_pdu_split_across_writes_is_framed() {
        let (mut c, mut s) = pair();
        let bytes = Pdu::command(3, &ImClientTimeRsp { server_time: 5 }).to_bytes();
        s.send_bytes(&bytes[..7]);
        // The rest comes from another thread: the client waits for the whole PDU.
        let server = std::thread::spawn(move || {
            s.send_bytes(&bytes[7..]);
            s
        });
        let p = c.recv_within(HANG_GUARD).expect("a PDU");
        assert_eq!(p.header.seq_num, 3);
        let _s = server.join().unwrap();
    }

    #[test]
    fn drain_returns_nothing_when_nothing_is_sent() {
        let (mut c, _s) = pair();
        assert!(c.drain(Duration::from_millis(50)).is_empty());
    }

    #[test]
    #[should_panic(expected = "within a PDU")]
    fn a_close_within_a_pdu_fails() {
        let (mut c, mut s) = pair();
        s.send_bytes(&Pdu::heartbeat().to_bytes()[..10]);
        drop(s);
        c.expect_closed();
    }

    #[test]
    #[should_panic(expected = "cannot be framed")]
    fn a_bad_length_fails() {
        let (mut c, mut s) = pair();
        s.send_bytes(&[0, 0, 0, 3, 0, 1, 0, 0, 0, 7, 0, 1, 0, 0, 0, 0]);
        c.recv_pdu();
    }

    #[test]
    #[should_panic(expected = "hang guard")]
    fn a_missing_pdu_fails_after_the_hang_guard() {
        let (mut c, _s) = pair();
        c.set_hang_guard(Duration::from_millis(50));
        c.recv_pdu();
    }
}
