//! The reactor: one `mio::Poll`, the sockets it watches, timers, signals and the inbox.
//!
//! [`EventLoop`] owns the poll and the [`Net`]; the owner's state machine implements [`Handler`]
//! and gets `&mut Net` in every callback, through which it sends, closes, connects and sets
//! timers. One iteration ([`EventLoop::turn`]):
//!
//! 1. poll, for at most `poll_timeout` or until the next timer is due (not at all when work is
//!    already pending);
//! 2. socket events: accept → `on_accept`; connect done → `on_connect`; bytes → `on_read`;
//!    output drained → `on_drain`; then the sockets that had more to read than one turn's budget;
//! 3. signals (when watched, see [`EventLoop::watch_signals`]) → `on_signal`;
//! 4. inbox messages → `on_message`;
//! 5. due timers → `on_timer`.
//!
//! Close notifications (`on_close`) are queued and delivered right after the callback that
//! caused them returns, so a handler is never re-entered.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Registry, Token};

use crate::buffer::Buffer;
use crate::inbox::{Poster, Shared};
use crate::slab::{Slab, unpack};
use crate::timer::{TimerId, TimerKind, Timers};

const WAKER_TOKEN: Token = Token(usize::MAX);
const SIGNAL_TOKEN: Token = Token(usize::MAX - 1);
/// Connections open_conns from one listener per turn before others get a go.
const ACCEPT_BUDGET: usize = 256;

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

/// A connection (open_conns or outgoing). Never reused within one event loop, so a stale id
/// simply finds nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(u64);

impl ConnId {
    pub fn as_u64(self) -> u64 {
        self.0
    }
}

/// A listening socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ListenerId(u64);

/// A process signal delivered to the loop (see [`EventLoop::watch_signals`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Signal {
    /// SIGTERM: stop (what `kill` and service managers send).
    Terminate,
    /// SIGINT: stop (Ctrl-C).
    Interrupt,
    /// SIGHUP: reload or reopen logs, by convention.
    Hangup,
}

impl Signal {
    fn from_raw(n: i32) -> Option<Signal> {
        match n {
            signal_hook::consts::SIGTERM => Some(Signal::Terminate),
            signal_hook::consts::SIGINT => Some(Signal::Interrupt),
            signal_hook::consts::SIGHUP => Some(Signal::Hangup),
            _ => None,
        }
    }

    fn raw(self) -> i32 {
        match self {
            Signal::Terminate => signal_hook::consts::SIGTERM,
            Signal::Interrupt => signal_hook::consts::SIGINT,
            Signal::Hangup => signal_hook::consts::SIGHUP,
        }
    }
}

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

/// The owner's side of the event loop: a callback-driven state machine. Every callback runs on
/// the loop thread and gets the [`Net`] to act through.
pub trait Handler {
    /// What other threads post through a [`Poster`]; `()` if unused.
    type Msg: Send + 'static;

    /// A listener open_conns `conn` (the original's `NETLIB_MSG_CONNECT`).
    fn on_accept(&mut self, net: &mut Net, listener: ListenerId, conn: ConnId, peer: SocketAddr) {
        let _ = (listener, peer);
        net.close(conn);
    }

    /// An outgoing connect succeeded (`NETLIB_MSG_CONFIRM`). Output queued before it has been
    /// handed to the socket already.
    fn on_connect(&mut self, net: &mut Net, conn: ConnId) {
        let _ = (net, conn);
    }

    /// Bytes arrived (`NETLIB_MSG_READ`). Consume what was handled; the rest stays buffered.
    fn on_read(&mut self, net: &mut Net, conn: ConnId, input: &mut Buffer);

    /// Output that had to be queued has all been written (`NETLIB_MSG_WRITE`, drained).
    fn on_drain(&mut self, net: &mut Net, conn: ConnId) {
        let _ = (net, conn);
    }

    /// The connection is gone (`NETLIB_MSG_CLOSE`). Delivered exactly once per connection,
    /// also after the owner's own [`Net::close`]; the id is dead from then on.
    fn on_close(&mut self, net: &mut Net, conn: ConnId, reason: CloseReason) {
        let _ = (net, conn, reason);
    }

    /// A timer set with [`Net::add_timer`] or [`Net::add_oneshot`] is due.
    fn on_timer(&mut self, net: &mut Net, timer: TimerId, tag: u64) {
        let _ = (net, timer, tag);
    }

    /// A message posted by another thread.
    fn on_message(&mut self, net: &mut Net, msg: Self::Msg) {
        let _ = (net, msg);
    }

    /// A watched signal arrived ([`EventLoop::watch_signals`]). By default SIGTERM and SIGINT
    /// stop the loop and SIGHUP is ignored.
    fn on_signal(&mut self, net: &mut Net, signal: Signal) {
        if signal != Signal::Hangup {
            net.stop();
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Connecting,
    Connected,
    /// Closed by the owner (who has been told): flushing output, then waiting for the peer's
    /// end of stream, discarding input. Invisible to the owner.
    Closing,
}

struct Conn {
    stream: TcpStream,
    phase: Phase,
    input: Buffer,
    output: Buffer,
    /// Output had to be queued since the last drain (so `on_drain` is due when it empties).
    queued: bool,
    /// The connect-timeout or linger timer, if one is running.
    timer: Option<TimerId>,
    activity: Activity,
}

/// When a connection last received bytes and last had bytes sent on it (the original's
/// `m_last_recv_tick` / `m_last_send_tick`), as of the loop's clock ([`Net::now`]). Both start
/// at the connection's creation. Heartbeat and idle-timeout checks read these.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Activity {
    pub last_recv: Instant,
    pub last_send: Instant,
}

enum Socket {
    Listener(TcpListener),
    Conn(Box<Conn>),
    /// A slot reserved while its socket is being registered (its index is the mio token).
    Placeholder,
}

/// Everything a handler acts through: sockets, timers, loop callbacks, the clock.
pub struct Net {
    registry: Registry,
    sockets: Slab<Socket>,
    timers: Timers,
    closed: VecDeque<(ConnId, CloseReason)>,
    /// Sockets with more to read or accept than one turn's budget.
    ready: Vec<u64>,
    /// Where reads land before the bytes are appended to a connection's input.
    scratch: Vec<u8>,
    /// Connections the owner knows (accepted or outgoing, not closing).
    open_conns: usize,
    now: Instant,
    running: bool,
    config: Config,
}

impl Net {
    /// The time taken after the last poll returned (cheap; use it for idle checks).
    #[inline]
    pub fn now(&self) -> Instant {
        self.now
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
                *self.sockets.get_mut(id).expect("just inserted") = Socket::Conn(Box::new(
                    Conn::new(stream, Phase::Connecting, Some(timer), self.now),
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
        self.open_conn(conn).map(|c| c.activity)
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
        let now = self.now;
        let Some(c) = self.open_conn_mut(conn) else {
            return false;
        };
        c.activity.last_send = now;
        let was_empty = c.output.is_empty();
        c.output.append(fill);
        if c.output.is_empty() {
            return true;
        }
        if was_empty && c.phase == Phase::Connected {
            match c.flush() {
                Ok(true) => return true,
                Ok(false) => {}
                Err(e) => {
                    self.fail(conn, CloseReason::Error(e.kind()));
                    return false;
                }
            }
        }
        c.queued = true;
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
    fn fail(&mut self, conn: ConnId, reason: CloseReason) {
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
    fn new(stream: TcpStream, phase: Phase, timer: Option<TimerId>, now: Instant) -> Conn {
        Conn {
            stream,
            phase,
            input: Buffer::new(),
            output: Buffer::new(),
            queued: false,
            timer,
            activity: Activity {
                last_recv: now,
                last_send: now,
            },
        }
    }

    /// Writes queued output until done (true) or the socket is full (false).
    fn flush(&mut self) -> io::Result<bool> {
        while !self.output.is_empty() {
            match self.stream.write(self.output.data()) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.output.consume(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.output.compact();
        Ok(true)
    }
}

/// Owns the poll and the [`Net`]; drives a [`Handler`].
pub struct EventLoop<M> {
    poll: Poll,
    events: Events,
    net: Net,
    fired: Vec<(TimerId, TimerKind, bool)>,
    shared: Arc<Shared>,
    inbox: Receiver<M>,
    poster: Poster<M>,
    signals: Option<signal_hook_mio::v1_0::Signals>,
}

impl<M: Send + 'static> EventLoop<M> {
    pub fn new(config: Config) -> io::Result<EventLoop<M>> {
        let poll = Poll::new()?;
        let registry = poll.registry().try_clone()?;
        let waker = mio::Waker::new(poll.registry(), WAKER_TOKEN)?;
        let shared = Arc::new(Shared {
            waker,
            wake_pending: AtomicBool::new(false),
            stop: AtomicBool::new(false),
        });
        let (tx, rx) = crossbeam_channel::bounded(config.inbox_capacity.max(1));
        let events = Events::with_capacity(config.max_events.max(16));
        Ok(EventLoop {
            poll,
            events,
            net: Net {
                registry,
                sockets: Slab::new(),
                timers: Timers::default(),
                closed: VecDeque::new(),
                ready: Vec::new(),
                scratch: Vec::new(),
                open_conns: 0,
                now: Instant::now(),
                running: false,
                config,
            },
            fired: Vec::new(),
            poster: Poster {
                tx,
                shared: shared.clone(),
            },
            shared,
            inbox: rx,
            signals: None,
        })
    }

    /// The [`Net`], for setting up listeners, connections and timers before `run`.
    pub fn net(&mut self) -> &mut Net {
        &mut self.net
    }

    /// A handle for other threads to post messages to this loop or stop it.
    pub fn poster(&self) -> Poster<M> {
        self.poster.clone()
    }

    /// Delivers `signals` to the handler's `on_signal`, as loop events. Signal dispositions are
    /// process-wide: call this on the one loop of a daemon, not in every loop of a process.
    pub fn watch_signals(&mut self, signals: &[Signal]) -> io::Result<()> {
        let raw: Vec<i32> = signals.iter().map(|s| s.raw()).collect();
        let mut watched = signal_hook_mio::v1_0::Signals::new(&raw)?;
        self.poll
            .registry()
            .register(&mut watched, SIGNAL_TOKEN, Interest::READABLE)?;
        self.signals = Some(watched);
        Ok(())
    }

    /// Runs iterations until [`Net::stop`] or [`Poster::stop`] is called. A [`Poster::stop`]
    /// that came before `run` (another thread can be quicker than this one) is not lost: `run`
    /// then returns after one iteration.
    pub fn run<H: Handler<Msg = M>>(&mut self, handler: &mut H) -> io::Result<()> {
        self.net.running = true;
        while self.net.running {
            self.turn(handler)?;
            if self.shared.stop.swap(false, Ordering::AcqRel) {
                self.net.running = false;
            }
        }
        Ok(())
    }

    /// One iteration (see the module docs). Exposed for tests and benches.
    pub fn turn<H: Handler<Msg = M>>(&mut self, h: &mut H) -> io::Result<()> {
        let net = &mut self.net;
        let timeout = if !net.ready.is_empty() || !net.closed.is_empty() || !self.inbox.is_empty() {
            Duration::ZERO
        } else {
            match net.timers.next_due() {
                Some(due) => due
                    .saturating_duration_since(Instant::now())
                    .min(net.config.poll_timeout),
                None => net.config.poll_timeout,
            }
        };
        if let Err(e) = self.poll.poll(&mut self.events, Some(timeout))
            && e.kind() != io::ErrorKind::Interrupted
        {
            return Err(e);
        }
        net.now = Instant::now();
        deliver_closed(net, h);

        let ready = std::mem::take(&mut net.ready);
        let mut signalled = false;
        for event in self.events.iter() {
            let token = event.token();
            if token == WAKER_TOKEN {
                continue;
            }
            if token == SIGNAL_TOKEN {
                signalled = true;
                continue;
            }
            let Some(id) = net.sockets.id_at(token.0) else {
                continue;
            };
            let readable = event.is_readable() || event.is_read_closed() || event.is_error();
            let writable = event.is_writable() || event.is_write_closed() || event.is_error();
            on_socket_event(net, h, id, readable, writable);
        }
        for id in ready {
            on_socket_event(net, h, id, true, false);
        }

        if signalled && let Some(signals) = self.signals.as_mut() {
            for raw in signals.pending() {
                if let Some(signal) = Signal::from_raw(raw) {
                    h.on_signal(net, signal);
                    deliver_closed(net, h);
                }
            }
        }

        // Inbox: clear the wake flag first, then drain at most one channel's worth.
        self.shared.wake_pending.store(false, Ordering::Release);
        for _ in 0..net.config.inbox_capacity {
            match self.inbox.try_recv() {
                Ok(msg) => {
                    h.on_message(net, msg);
                    deliver_closed(net, h);
                }
                Err(_) => break,
            }
        }

        // Timers: one clock reading, each due timer fired at most once.
        let now = Instant::now();
        net.now = now;
        self.fired.clear();
        net.timers.collect_due(now, &mut self.fired);
        for &(timer, kind, repeat) in &self.fired {
            // An earlier callback of this batch may have removed it.
            if !net.timers.is_live(timer) {
                continue;
            }
            if !repeat {
                net.timers.remove(timer);
            }
            match kind {
                TimerKind::User(tag) => h.on_timer(net, timer, tag),
                TimerKind::ConnectTimeout(id) => {
                    if let Some(Socket::Conn(c)) = net.sockets.get_mut(id)
                        && c.phase == Phase::Connecting
                    {
                        c.timer = None;
                        net.fail(ConnId(id), CloseReason::ConnectTimeout);
                    }
                }
                TimerKind::Linger(id) => {
                    if let Some(Socket::Conn(c)) = net.sockets.get_mut(id)
                        && c.phase == Phase::Closing
                    {
                        c.timer = None;
                        net.fail(ConnId(id), CloseReason::Local);
                    }
                }
            }
            deliver_closed(net, h);
        }
        Ok(())
    }
}

impl<M> Drop for EventLoop<M> {
    fn drop(&mut self) {
        for id in self.net.sockets.ids() {
            match self.net.sockets.remove(id) {
                Some(Socket::Conn(mut c)) => {
                    let _ = self.net.registry.deregister(&mut c.stream);
                }
                Some(Socket::Listener(mut l)) => {
                    let _ = self.net.registry.deregister(&mut l);
                }
                _ => {}
            }
        }
    }
}

fn deliver_closed<H: Handler>(net: &mut Net, h: &mut H) {
    while let Some((conn, reason)) = net.closed.pop_front() {
        h.on_close(net, conn, reason);
    }
}

fn on_socket_event<H: Handler>(net: &mut Net, h: &mut H, id: u64, readable: bool, writable: bool) {
    match net.sockets.get_mut(id) {
        Some(Socket::Listener(_)) if readable => accept(net, h, ListenerId(id)),
        Some(Socket::Conn(c)) => match c.phase {
            Phase::Connecting => {
                if readable || writable {
                    confirm_connect(net, h, ConnId(id));
                }
            }
            Phase::Connected => {
                if readable {
                    read(net, h, ConnId(id));
                }
                if writable {
                    write(net, h, ConnId(id));
                }
            }
            Phase::Closing => linger(net, id),
        },
        _ => {}
    }
}

fn accept<H: Handler>(net: &mut Net, h: &mut H, listener: ListenerId) {
    for _ in 0..ACCEPT_BUDGET {
        let Some(Socket::Listener(l)) = net.sockets.get_mut(listener.0) else {
            return;
        };
        match l.accept() {
            Ok((mut stream, peer)) => {
                if net.open_conns >= net.config.max_connections {
                    log::warn!(
                        "netlib: refusing {peer}: {} connections open (max_connections)",
                        net.open_conns
                    );
                    continue;
                }
                let _ = stream.set_nodelay(true);
                let id = net.sockets.insert(Socket::Placeholder);
                let token = Token(unpack(id).0);
                let interest = Interest::READABLE | Interest::WRITABLE;
                if let Err(e) = net.registry.register(&mut stream, token, interest) {
                    log::error!("netlib: registering a connection from {peer} failed: {e}");
                    net.sockets.remove(id);
                    continue;
                }
                *net.sockets.get_mut(id).expect("just inserted") =
                    Socket::Conn(Box::new(Conn::new(stream, Phase::Connected, None, net.now)));
                net.open_conns += 1;
                h.on_accept(net, listener, ConnId(id), peer);
                deliver_closed(net, h);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                // EMFILE and the like: retrying at once would spin; the next connection
                // attempt wakes the listener again.
                log::error!("netlib: accept failed: {e}");
                return;
            }
        }
    }
    net.ready.push(listener.0);
}

fn confirm_connect<H: Handler>(net: &mut Net, h: &mut H, conn: ConnId) {
    let Some(Socket::Conn(c)) = net.sockets.get_mut(conn.0) else {
        return;
    };
    let status = match c.stream.take_error() {
        Ok(Some(e)) | Err(e) => Err(e),
        Ok(None) => match c.stream.peer_addr() {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
            Err(e) if e.raw_os_error() == Some(115) => Ok(false), // EINPROGRESS
            Err(e) => Err(e),
        },
    };
    match status {
        Ok(false) => {}
        Ok(true) => {
            c.phase = Phase::Connected;
            let timer = c.timer.take();
            let flushed = c.flush();
            if let Some(t) = timer {
                net.timers.remove(t);
            }
            if let Err(e) = flushed {
                net.fail(conn, CloseReason::Error(e.kind()));
                deliver_closed(net, h);
                return;
            }
            h.on_connect(net, conn);
            deliver_closed(net, h);
            // Bytes may have arrived with the confirmation (edge-triggered: read them now).
            if net.is_connected(conn) {
                read(net, h, conn);
            }
        }
        Err(e) => {
            net.fail(conn, CloseReason::ConnectFailed(e.kind()));
            deliver_closed(net, h);
        }
    }
}

fn read<H: Handler>(net: &mut Net, h: &mut H, conn: ConnId) {
    let (chunk, budget, max_input, now) = (
        net.config.read_chunk,
        net.config.read_budget,
        net.config.max_input,
        net.now,
    );
    let Net {
        sockets, scratch, ..
    } = net;
    let Some(Socket::Conn(c)) = sockets.get_mut(conn.0) else {
        return;
    };
    if scratch.len() < chunk {
        scratch.resize(chunk, 0);
    }
    let mut read_total = 0;
    let mut end: Option<CloseReason> = None;
    let mut more = false;
    loop {
        let room = max_input.saturating_sub(c.input.len());
        if room == 0 || read_total >= budget {
            more = true;
            break;
        }
        // Read into the loop's one scratch buffer and keep only what arrived: a connection's
        // own buffer holds just its unconsumed bytes, never a whole read chunk.
        let n = chunk.min(room);
        match c.stream.read(&mut scratch[..n]) {
            Ok(0) => {
                end = Some(CloseReason::PeerClosed);
                break;
            }
            Ok(k) => {
                c.input.extend(&scratch[..k]);
                read_total += k;
            }
            Err(e) => match e.kind() {
                io::ErrorKind::WouldBlock => break,
                io::ErrorKind::Interrupted => {}
                kind => {
                    end = Some(CloseReason::Error(kind));
                    break;
                }
            },
        }
    }
    if read_total > 0 {
        c.activity.last_recv = now;
    }
    if !c.input.is_empty() && read_total > 0 {
        let mut input = std::mem::take(&mut c.input);
        h.on_read(net, conn, &mut input);
        match net.sockets.get_mut(conn.0) {
            Some(Socket::Conn(c)) if c.phase == Phase::Connected => {
                input.compact();
                let full = input.len() >= max_input;
                c.input = input;
                if full {
                    log::warn!("netlib: closing {conn:?}: {max_input} bytes of input unconsumed");
                    net.fail(conn, CloseReason::InputOverflow);
                    end = None;
                    more = false;
                }
            }
            // Closed by the handler: whatever it had not consumed is dropped (and so is the
            // end-of-stream, the owner has been told already).
            _ => {
                deliver_closed(net, h);
                return;
            }
        }
        deliver_closed(net, h);
    }
    if let Some(reason) = end {
        net.fail(conn, reason);
        deliver_closed(net, h);
    } else if more && net.is_connected(conn) {
        net.ready.push(conn.0);
    }
}

fn write<H: Handler>(net: &mut Net, h: &mut H, conn: ConnId) {
    let Some(Socket::Conn(c)) = net.sockets.get_mut(conn.0) else {
        return;
    };
    if c.phase != Phase::Connected || !c.queued {
        return;
    }
    match c.flush() {
        Ok(true) => {
            c.queued = false;
            h.on_drain(net, conn);
            deliver_closed(net, h);
        }
        Ok(false) => {}
        Err(e) => {
            net.fail(conn, CloseReason::Error(e.kind()));
            deliver_closed(net, h);
        }
    }
}

/// A closing connection: finish writing, shut the write side, then discard input until the
/// peer's end of stream (dropping a socket with unread input would reset the connection and
/// could destroy the output still in flight).
fn linger(net: &mut Net, id: u64) {
    let Some(Socket::Conn(c)) = net.sockets.get_mut(id) else {
        return;
    };
    match c.flush() {
        Ok(true) => {
            if !c.output.is_empty() {
                return;
            }
        }
        Ok(false) => return,
        Err(_) => {
            net.fail(ConnId(id), CloseReason::Local);
            return;
        }
    }
    let _ = c.stream.shutdown(Shutdown::Write);
    let mut scratch = [0u8; 4096];
    for _ in 0..64 {
        match c.stream.read(&mut scratch) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    net.fail(ConnId(id), CloseReason::Local);
}
