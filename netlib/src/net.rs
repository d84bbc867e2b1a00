//! [`Net`]: the sockets, timers and clock a handler acts through, and the per-connection state
//! behind them (phase, input and output buffers, activity times).

use std::collections::VecDeque;
use std::io::{self, Write};
use std::net::{Shutdown, SocketAddr};
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Registry, Token};

use crate::buffer::Buffer;
use crate::slab::{Slab, unpack};
use crate::timer::{TimerId, TimerKind, Timers};

/// Limits and timings of one event loop. `Config::default()` suits a server.
#[derive(Clone, Debug)]
pub struct Config {
    /// Longest wait in poll when nothing is due (the original's `wait_timeout`, 100 ms).
    pub poll_timeout: Duration,
    /// Events taken from one poll.
    pub max_events: usize,
    /// Bytes queued for output on one connection past which the peer is taken as dead: the
    /// connection is closed with [`CloseReason::OutputOverflow`] and a log line.
    pub output_high_water: usize,
    /// Bytes of unconsumed input one connection may hold. It must exceed the largest unit the
    /// owner accepts (a PDU); a connection that fills it without its owner consuming anything
    /// is closed with [`CloseReason::InputOverflow`].
    pub max_input: usize,
    /// Bytes read per `read` call.
    pub read_chunk: usize,
    /// Bytes read from one connection per turn before others get a go.
    pub read_budget: usize,
    /// An outgoing connect not confirmed by then fails with [`CloseReason::ConnectTimeout`].
    pub connect_timeout: Duration,
    /// How long a gracefully closed connection may take to flush its output and see the peer's
    /// end of stream before it is dropped.
    pub linger_timeout: Duration,
    /// Accepted connections beyond this many are closed at once (logged).
    pub max_connections: usize,
    /// Messages the inbox holds before posters block.
    pub inbox_capacity: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            poll_timeout: Duration::from_millis(100),
            max_events: 1024,
            output_high_water: 16 * 1024 * 1024,
            max_input: 16 * 1024 * 1024 + 64 * 1024,
            read_chunk: 64 * 1024,
            read_budget: 1024 * 1024,
            connect_timeout: Duration::from_secs(10),
            linger_timeout: Duration::from_secs(5),
            max_connections: 200_000,
            inbox_capacity: 65_536,
        }
    }
}

/// The largest allocation the loop's spare buffers keep between uses.
pub(crate) const SPARE_KEEP: usize = 256 * 1024;

/// Emptied output buffers kept for coalescing connections between turns.
const POOL_KEEP: usize = 8;

/// A connection (open_conns or outgoing). Never reused within one event loop, so a stale id
/// simply finds nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub(crate) u64);

impl ConnId {
    pub fn as_u64(self) -> u64 {
        self.0
    }
}

/// A listening socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ListenerId(pub(crate) u64);

/// Why a connection ended; delivered once per connection through [`Handler::on_close`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// The owner called [`Net::close`] or [`Net::abort`].
    Local,
    /// The peer ended the stream.
    PeerClosed,
    /// An outgoing connect failed (refused, unreachable, …).
    ConnectFailed(io::ErrorKind),
    /// An outgoing connect was not confirmed within `connect_timeout`.
    ConnectTimeout,
    /// A read or write failed.
    Error(io::ErrorKind),
    /// The peer stopped reading and output passed `output_high_water`.
    OutputOverflow,
    /// Input reached `max_input` and the owner consumed none of it.
    InputOverflow,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    Connecting,
    Connected,
    /// Closed by the owner (who has been told): flushing output, then waiting for the peer's
    /// end of stream, discarding input. Invisible to the owner.
    Closing,
}

pub(crate) struct Conn {
    pub(crate) stream: TcpStream,
    pub(crate) phase: Phase,
    pub(crate) input: Buffer,
    pub(crate) output: Buffer,
    /// Output had to be queued since the last drain (so `on_drain` is due when it empties).
    pub(crate) queued: bool,
    /// Sends are gathered and written once at the end of the turn ([`Net::set_coalesce`]).
    pub(crate) coalesce: bool,
    /// Output holds coalesced bytes not yet tried on the socket; the connection is on
    /// `Net::dirty`.
    pub(crate) dirty: bool,
    /// The connect-timeout or linger timer, if one is running.
    pub(crate) timer: Option<TimerId>,
    /// [`Activity`] as nanoseconds since the loop's epoch ([`Net::stamp`]): one connection
    /// struct is kept per connection, so it is kept small.
    pub(crate) last_recv: u64,
    pub(crate) last_send: u64,
}

/// When a connection last received bytes and last had bytes sent on it (the original's
/// `m_last_recv_tick` / `m_last_send_tick`), as of the loop's clock ([`Net::now`]). Both start
/// at the connection's creation. Heartbeat and idle-timeout checks read these.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Activity {
    pub last_recv: Instant,
    pub last_send: Instant,
}

pub(crate) enum Socket {
    Listener(TcpListener),
    Conn(Box<Conn>),
    /// A slot reserved while its socket is being registered (its index is the mio token).
    Placeholder,
}

/// Everything a handler acts through: sockets, timers, loop callbacks, the clock.
pub struct Net {
    pub(crate) registry: Registry,
    pub(crate) sockets: Slab<Socket>,
    pub(crate) timers: Timers,
    pub(crate) closed: VecDeque<(ConnId, CloseReason)>,
    /// Sockets with more to read or accept than one turn's budget.
    pub(crate) ready: Vec<u64>,
    /// Where reads land before the bytes are appended to a connection's input.
    pub(crate) scratch: Vec<u8>,
    /// The input handed to `on_read` when the connection had none left over: only what the
    /// owner does not consume is copied to the connection (see `event_loop::read`).
    pub(crate) spare_input: Buffer,
    /// Where a send to a connection with nothing queued is encoded and written from: only
    /// what the socket does not take is copied to the connection.
    pub(crate) spare_output: Buffer,
    /// Coalescing connections with output gathered this turn, written at its end.
    pub(crate) dirty: Vec<u64>,
    /// Emptied output buffers of coalescing connections, lent to the next one that gathers
    /// (at most `POOL_KEEP`, each at most `SPARE_KEEP` bytes).
    pub(crate) pool: Vec<Buffer>,
    /// Connections the owner knows (accepted or outgoing, not closing).
    pub(crate) open_conns: usize,
    pub(crate) now: Instant,
    /// `now` as an activity stamp, taken with it once per turn.
    pub(crate) now_stamp: u64,
    /// When the loop was created: the origin of the connections' activity stamps.
    pub(crate) epoch: Instant,
    pub(crate) running: bool,
    pub(crate) config: Config,
}

impl Net {
    /// The time taken after the last poll returned (cheap; use it for idle checks).
    #[inline]
    pub fn now(&self) -> Instant {
        self.now
    }

    /// `now` as an activity stamp: nanoseconds since the loop's epoch.
    #[inline]
    pub(crate) fn stamp(&self) -> u64 {
        self.now_stamp
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Makes `run` return after the current iteration.
    pub fn stop(&mut self) {
        self.running = false;
    }

    /// Number of open connections (open_conns and outgoing, not counting closing ones).
    pub fn connection_count(&self) -> usize {
        self.open_conns
    }

    /// Listens on `addr` (SO_REUSEADDR set by mio). Port 0 picks a free port: see
    /// [`Net::listener_addr`].
    pub fn listen(&mut self, addr: SocketAddr) -> io::Result<ListenerId> {
        let mut listener = TcpListener::bind(addr)?;
        let id = self.sockets.insert(Socket::Placeholder);
        let token = Token(unpack(id).0);
        if let Err(e) = self
            .registry
            .register(&mut listener, token, Interest::READABLE)
        {
            self.sockets.remove(id);
            return Err(e);
        }
        *self.sockets.get_mut(id).expect("just inserted") = Socket::Listener(listener);
        Ok(ListenerId(id))
    }

    pub fn listener_addr(&self, id: ListenerId) -> Option<SocketAddr> {
        match self.sockets.get(id.0) {
            Some(Socket::Listener(l)) => l.local_addr().ok(),
            _ => None,
        }
    }

    /// Stops listening (established connections are not affected).
    pub fn close_listener(&mut self, id: ListenerId) {
        if let Some(Socket::Listener(_)) = self.sockets.get(id.0)
            && let Some(Socket::Listener(mut l)) = self.sockets.remove(id.0)
        {
            let _ = self.registry.deregister(&mut l);
        }
    }

    /// Stops listening on every listener (a daemon that stops takes no more connections).
    /// Returns how many there were.
    pub fn close_listeners(&mut self) -> usize {
        let listeners: Vec<u64> = self
            .sockets
            .ids()
            .into_iter()
            .filter(|&id| matches!(self.sockets.get(id), Some(Socket::Listener(_))))
            .collect();
        for &id in &listeners {
            self.close_listener(ListenerId(id));
        }
        listeners.len()
    }

    /// Graceful [`Net::close`] of every open connection (a connect still in progress is
    /// dropped). Each gets its `on_close(Local)` after the current callback.
    pub fn close_all(&mut self) {
        for id in self.sockets.ids() {
            if matches!(self.sockets.get(id), Some(Socket::Conn(_))) {
                self.close(ConnId(id));
            }
        }
    }

    /// Connections closed by the owner that are still writing their output or waiting for the
    /// peer's end of stream (see [`Net::close`]). Walks every socket: for shutdown, not for a
    /// hot path.
    pub fn closing_count(&self) -> usize {
        self.count_closing(|_| true)
    }

    /// Connections closed by the owner whose queued output is not all written yet (those not
    /// counted here have sent their end of stream). Walks every socket, as `closing_count`.
    pub fn closing_unflushed_count(&self) -> usize {
        self.count_closing(|c| !c.output.is_empty())
    }

    fn count_closing(&self, pick: impl Fn(&Conn) -> bool) -> usize {
        self.sockets
            .ids()
            .into_iter()
            .filter(|&id| {
                matches!(self.sockets.get(id),
                    Some(Socket::Conn(c)) if c.phase == Phase::Closing && pick(c))
            })
            .count()
    }

    /// Starts a non-blocking connect. Never fails synchronously: any failure, immediate or
    /// later, and a connect not confirmed within `connect_timeout`, arrive as `on_close`.
    /// Data sent before the connect is confirmed is queued and written first thing after.
    pub fn connect(&mut self, addr: SocketAddr) -> ConnId {
        let result = TcpStream::connect(addr).and_then(|mut stream| {
            let id = self.sockets.insert(Socket::Placeholder);
            let token = Token(unpack(id).0);
            let interest = Interest::READABLE | Interest::WRITABLE;
            match self.registry.register(&mut stream, token, interest) {
                Ok(()) => Ok((id, stream)),
                Err(e) => {
                    self.sockets.remove(id);
                    Err(e)
                }
            }
        });
        match result {
            Ok((id, stream)) => {
                let _ = stream.set_nodelay(true);
                let timer = self.timers.add(
                    self.now,
                    self.config.connect_timeout,
                    false,
                    TimerKind::ConnectTimeout(id),
                );
                let now = self.stamp();
                *self.sockets.get_mut(id).expect("just inserted") = Socket::Conn(Box::new(
                    Conn::new(stream, Phase::Connecting, Some(timer), now),
                ));
                self.open_conns += 1;
                ConnId(id)
            }
            Err(e) => {
                // Give the caller a dead id of its own and report the failure like any other.
                let id = self.sockets.insert(Socket::Placeholder);
                self.sockets.remove(id);
                self.closed
                    .push_back((ConnId(id), CloseReason::ConnectFailed(e.kind())));
                ConnId(id)
            }
        }
    }

    /// True while `conn` can be sent to (connecting or connected, not closed).
    pub fn is_open(&self, conn: ConnId) -> bool {
        matches!(self.sockets.get(conn.0), Some(Socket::Conn(c)) if c.phase != Phase::Closing)
    }

    /// True once an outgoing connect is confirmed (always for open_conns connections).
    pub fn is_connected(&self, conn: ConnId) -> bool {
        matches!(self.sockets.get(conn.0), Some(Socket::Conn(c)) if c.phase == Phase::Connected)
    }

    pub fn peer_addr(&self, conn: ConnId) -> Option<SocketAddr> {
        self.open_conn(conn).and_then(|c| c.stream.peer_addr().ok())
    }

    pub fn local_addr(&self, conn: ConnId) -> Option<SocketAddr> {
        self.open_conn(conn)
            .and_then(|c| c.stream.local_addr().ok())
    }

    /// When `conn` last received and sent (None for an unknown or closed connection).
    pub fn activity(&self, conn: ConnId) -> Option<Activity> {
        let at = |stamp: u64| self.epoch + Duration::from_nanos(stamp);
        self.open_conn(conn).map(|c| Activity {
            last_recv: at(c.last_recv),
            last_send: at(c.last_send),
        })
    }

    /// Bytes allocated for `conn`'s input and output buffers (None for an unknown or closed
    /// connection). Both are 0 while nothing is left over or queued: a drained buffer gives
    /// its memory back.
    pub fn buffer_capacity(&self, conn: ConnId) -> Option<(usize, usize)> {
        self.open_conn(conn)
            .map(|c| (c.input.capacity(), c.output.capacity()))
    }

    /// Bytes queued for output on `conn` (0 for an unknown connection).
    pub fn output_len(&self, conn: ConnId) -> usize {
        self.open_conn(conn).map_or(0, |c| c.output.len())
    }

    /// Sends `bytes`: writes what the socket takes now and queues the rest, in order. Returns
    /// false if the connection is unknown or closed, or was closed by this send (the output
    /// passed `output_high_water`, or the write failed).
    pub fn send(&mut self, conn: ConnId, bytes: &[u8]) -> bool {
        self.send_with(conn, |out| out.extend_from_slice(bytes))
    }

    /// Like [`Net::send`], but `fill` appends the bytes straight to the connection's output
    /// buffer (encoding a PDU in place saves a copy).
    pub fn send_with(&mut self, conn: ConnId, fill: impl FnOnce(&mut Vec<u8>)) -> bool {
        let high_water = self.config.output_high_water;
        let now = self.stamp();
        let Net {
            sockets,
            spare_output,
            ..
        } = self;
        let c = match sockets.get_mut(conn.0) {
            Some(Socket::Conn(c)) if c.phase != Phase::Closing => c,
            _ => return false,
        };
        c.last_send = now;
        if c.coalesce && c.phase == Phase::Connected && (c.dirty || c.output.is_empty()) {
            // Gathered: written once, at the end of this turn (`flush_dirty`).
            if !c.dirty {
                c.dirty = true;
                self.dirty.push(conn.0);
                if let Some(lent) = self.pool.pop() {
                    c.output = lent;
                }
            }
            c.output.append(fill);
        } else if c.output.is_empty() && c.phase == Phase::Connected {
            // Nothing queued: encode into the loop's spare buffer and write from there; the
            // connection keeps (in an allocation of their size) only the bytes the socket did
            // not take.
            spare_output.append(fill);
            let written = write_some(&mut c.stream, spare_output.data());
            match written {
                Ok(n) => spare_output.consume(n),
                Err(e) => {
                    spare_output.clear_keeping(SPARE_KEEP);
                    self.fail(conn, CloseReason::Error(e.kind()));
                    return false;
                }
            }
            if spare_output.is_empty() {
                spare_output.clear_keeping(SPARE_KEEP);
                return true;
            }
            c.output = spare_output.split_off_exact(SPARE_KEEP);
        } else {
            c.output.append(fill);
            if c.output.is_empty() {
                return true;
            }
        }
        if !c.dirty {
            c.queued = true;
        }
        if c.output.len() > high_water {
            log::warn!(
                "netlib: closing {:?} ({}): {} bytes of output queued, over the {} byte limit",
                conn,
                c.stream
                    .peer_addr()
                    .map_or_else(|_| "?".to_string(), |a| a.to_string()),
                c.output.len(),
                high_water
            );
            self.fail(conn, CloseReason::OutputOverflow);
            return false;
        }
        true
    }

    /// Write coalescing for `conn`: when on, what is sent to it during one turn of the loop is
    /// written in one go at the end of that turn (before the next poll) instead of one write
    /// per send. For a link that gets many PDUs per turn. Nothing is held between turns: an
    /// idle coalescing connection has no buffer. The high-water bound and a graceful close
    /// apply as without it. Turning it off writes what was gathered at the end of the turn
    /// as usual. Returns false for an unknown or closed connection.
    pub fn set_coalesce(&mut self, conn: ConnId, on: bool) -> bool {
        match self.open_conn_mut(conn) {
            Some(c) => {
                c.coalesce = on;
                true
            }
            None => false,
        }
    }

    /// Writes what coalescing connections gathered this turn (see [`Net::set_coalesce`]).
    /// Output the socket does not take stays queued and goes out when it is writable again.
    pub(crate) fn flush_dirty(&mut self) {
        let mut dirty = std::mem::take(&mut self.dirty);
        for &id in &dirty {
            let Some(Socket::Conn(c)) = self.sockets.get_mut(id) else {
                continue;
            };
            if !c.dirty {
                continue;
            }
            c.dirty = false;
            if c.phase != Phase::Connected {
                continue;
            }
            match write_some(&mut c.stream, c.output.data()) {
                Ok(n) => c.output.consume(n),
                Err(e) => {
                    self.fail(ConnId(id), CloseReason::Error(e.kind()));
                    continue;
                }
            }
            if c.output.is_empty() {
                // Nothing held between turns: the buffer goes back to the pool.
                let mut spare = std::mem::take(&mut c.output);
                if self.pool.len() < POOL_KEEP {
                    spare.clear_keeping(SPARE_KEEP);
                    if spare.capacity() > 0 {
                        self.pool.push(spare);
                    }
                }
            } else {
                // The rest goes out on writable events (`append` reclaims the written prefix).
                c.queued = true;
            }
        }
        dirty.clear();
        if self.dirty.is_empty() {
            self.dirty = dirty;
        }
    }

    /// Graceful close: no more `on_read`; queued output is still written, then the write side
    /// is shut down and the socket dropped when the peer ends its side (or after
    /// `linger_timeout`). `on_close(Local)` follows the current callback. Idempotent.
    pub fn close(&mut self, conn: ConnId) {
        let linger = self.config.linger_timeout;
        let now = self.now;
        let Some(c) = self.open_conn_mut(conn) else {
            return;
        };
        if c.phase == Phase::Connecting {
            self.fail(conn, CloseReason::Local);
            return;
        }
        c.phase = Phase::Closing;
        c.input = Buffer::new();
        let old = c.timer.take();
        let drained = matches!(c.flush(), Ok(true));
        if drained {
            let _ = c.stream.shutdown(Shutdown::Write);
        }
        if let Some(t) = old {
            self.timers.remove(t);
        }
        let timer = self
            .timers
            .add(now, linger, false, TimerKind::Linger(conn.0));
        if let Some(Socket::Conn(c)) = self.sockets.get_mut(conn.0) {
            c.timer = Some(timer);
        }
        self.open_conns -= 1;
        self.closed.push_back((conn, CloseReason::Local));
    }

    /// Abortive close: queued output is discarded and the socket dropped now.
    /// `on_close(Local)` follows the current callback. Idempotent.
    pub fn abort(&mut self, conn: ConnId) {
        if self.open_conn(conn).is_some() {
            self.fail(conn, CloseReason::Local);
        }
    }

    /// Adds a repeating timer firing every `interval` (see the schedule rule in `timer`).
    pub fn add_timer(&mut self, interval: Duration, tag: u64) -> TimerId {
        let interval = interval.max(Duration::from_millis(1));
        self.timers
            .add(self.now, interval, true, TimerKind::User(tag))
    }

    /// Adds a timer firing once, `delay` from now.
    pub fn add_oneshot(&mut self, delay: Duration, tag: u64) -> TimerId {
        self.timers
            .add(self.now, delay, false, TimerKind::User(tag))
    }

    /// Removes a timer (also from inside any timer callback). False if it was not there.
    pub fn remove_timer(&mut self, timer: TimerId) -> bool {
        self.timers.remove(timer)
    }

    /// Number of live timers (including netlib's own connect and linger timers).
    pub fn timer_count(&self) -> usize {
        self.timers.len()
    }

    fn open_conn(&self, conn: ConnId) -> Option<&Conn> {
        match self.sockets.get(conn.0) {
            Some(Socket::Conn(c)) if c.phase != Phase::Closing => Some(c),
            _ => None,
        }
    }

    fn open_conn_mut(&mut self, conn: ConnId) -> Option<&mut Conn> {
        match self.sockets.get_mut(conn.0) {
            Some(Socket::Conn(c)) if c.phase != Phase::Closing => Some(c),
            _ => None,
        }
    }

    /// Drops a socket now. If the owner still knew it (not closing), queues `on_close`.
    pub(crate) fn fail(&mut self, conn: ConnId, reason: CloseReason) {
        let Some(Socket::Conn(mut c)) = self.sockets.remove(conn.0) else {
            return;
        };
        let _ = self.registry.deregister(&mut c.stream);
        if let Some(t) = c.timer {
            self.timers.remove(t);
        }
        if c.phase != Phase::Closing {
            self.open_conns -= 1;
            self.closed.push_back((conn, reason));
        }
    }
}

impl Conn {
    /// A connection created at stamp `now` ([`Net::stamp`]).
    pub(crate) fn new(stream: TcpStream, phase: Phase, timer: Option<TimerId>, now: u64) -> Conn {
        Conn {
            stream,
            phase,
            input: Buffer::new(),
            output: Buffer::new(),
            queued: false,
            coalesce: false,
            dirty: false,
            timer,
            last_recv: now,
            last_send: now,
        }
    }

    /// Writes queued output until done (true) or the socket is full (false). Drained output
    /// gives its memory back. A partial write leaves the rest where it is (no shift of up to
    /// `output_high_water` bytes per writable event: `append` reclaims the written prefix).
    pub(crate) fn flush(&mut self) -> io::Result<bool> {
        let n = write_some(&mut self.stream, self.output.data())?;
        self.output.consume(n);
        let drained = self.output.is_empty();
        if drained {
            self.output.compact();
        }
        Ok(drained)
    }
}

/// Writes `bytes` until all are written or the socket is full; returns how many were written.
fn write_some(stream: &mut TcpStream, bytes: &[u8]) -> io::Result<usize> {
    let mut done = 0;
    while done < bytes.len() {
        match stream.write(&bytes[done..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_is_small() {
        // One boxed `Conn` per connection, idle or not: with empty buffers one word each and
        // activity as two stamps it is 48 bytes besides the socket (a 64-byte allocation in a
        // release build, where mio's socket is a file descriptor).
        let stream = size_of::<TcpStream>().next_multiple_of(8);
        assert!(
            size_of::<Conn>() <= stream + 48,
            "{} bytes, the socket {stream}",
            size_of::<Conn>()
        );
        assert_eq!(size_of::<Option<TimerId>>(), 8);
        assert_eq!(size_of::<Buffer>(), 8);
    }
}
