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
use std::io::{self, Read};
use std::net::{Shutdown, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use mio::{Events, Interest, Poll, Token};

use crate::buffer::Buffer;
use crate::inbox::{Poster, Shared};
use crate::net::{CloseReason, Config, Conn, ConnId, ListenerId, Net, Phase, SPARE_KEEP, Socket};
use crate::slab::{Slab, unpack};
use crate::timer::{TimerId, TimerKind, Timers};

const WAKER_TOKEN: Token = Token(usize::MAX);
const SIGNAL_TOKEN: Token = Token(usize::MAX - 1);
/// Connections open_conns from one listener per turn before others get a go.
const ACCEPT_BUDGET: usize = 256;

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

/// Owns the poll and the [`Net`]; drives a [`Handler`].
pub struct EventLoop<M> {
    poll: Poll,
    events: Events,
    net: Net,
    fired: Vec<(TimerId, TimerKind, bool)>,
    shared: Arc<Shared>,
    inbox: Receiver<M>,
    /// The last drain stopped at its bound: the inbox may hold more.
    inbox_more: bool,
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
        let start = Instant::now();
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
                spare_input: Buffer::new(),
                spare_output: Buffer::new(),
                dirty: Vec::new(),
                pool: Vec::new(),
                open_conns: 0,
                now: start,
                now_stamp: 0,
                epoch: start,
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
            inbox_more: false,
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
            if self.shared.stop.load(Ordering::Relaxed)
                && self.shared.stop.swap(false, Ordering::AcqRel)
            {
                self.net.running = false;
            }
        }
        Ok(())
    }

    /// One iteration (see the module docs). Exposed for tests and benches.
    pub fn turn<H: Handler<Msg = M>>(&mut self, h: &mut H) -> io::Result<()> {
        let net = &mut self.net;
        // Gathered output left by setup before `run` or by the last turn's close callbacks.
        if !net.dirty.is_empty() {
            net.flush_dirty();
        }
        // A message posted and not drained leaves `wake_pending` set (see the inbox below).
        let inbox_waiting = self.inbox_more || self.shared.wake_pending.load(Ordering::Acquire);
        let timeout = if !net.ready.is_empty() || !net.closed.is_empty() || inbox_waiting {
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
        net.now_stamp = net.now.saturating_duration_since(net.epoch).as_nanos() as u64;
        deliver_closed(net, h);

        let ready = std::mem::take(&mut net.ready);
        let mut signalled = false;
        let mut woken = false;
        for event in self.events.iter() {
            let token = event.token();
            if token == WAKER_TOKEN {
                woken = true;
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
            // A plain readable edge (no end of stream, no error reported with it): a short read
            // empties the socket, and more data makes a new edge.
            let edge = event.is_readable() && !event.is_read_closed() && !event.is_error();
            on_socket_event(net, h, id, readable, writable, edge);
        }
        for id in ready {
            on_socket_event(net, h, id, true, false, false);
        }

        if signalled && let Some(signals) = self.signals.as_mut() {
            for raw in signals.pending() {
                if let Some(signal) = Signal::from_raw(raw) {
                    h.on_signal(net, signal);
                    deliver_closed(net, h);
                }
            }
        }

        // Inbox: only when something was posted (a poster sets `wake_pending` after its send
        // and wakes the loop if it was clear) or the last drain stopped at its bound. Clear the
        // flag first (the swap acquires every send made before a poster's swap that saw it
        // set), then drain at most one channel's worth.
        if woken || self.inbox_more || self.shared.wake_pending.load(Ordering::Acquire) {
            self.shared.wake_pending.swap(false, Ordering::AcqRel);
            self.inbox_more = true;
            for _ in 0..net.config.inbox_capacity.max(1) {
                match self.inbox.try_recv() {
                    Ok(msg) => {
                        h.on_message(net, msg);
                        deliver_closed(net, h);
                    }
                    Err(_) => {
                        self.inbox_more = false;
                        break;
                    }
                }
            }
        }

        // Timers: due by the clock reading taken after the poll (a timer that fell due while
        // this turn ran fires on the next one, whose poll then does not wait); each due timer
        // fired at most once.
        self.fired.clear();
        net.timers.collect_due(net.now, &mut self.fired);
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

        // Coalesced output: everything sent this turn goes out before the next poll.
        if !net.dirty.is_empty() {
            net.flush_dirty();
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

/// `edge`: the readiness came from a plain readable edge, so [`read`] may stop at a short read
/// (see there).
fn on_socket_event<H: Handler>(
    net: &mut Net,
    h: &mut H,
    id: u64,
    readable: bool,
    writable: bool,
    edge: bool,
) {
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
                    read(net, h, ConnId(id), edge);
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
                let now = net.stamp();
                *net.sockets.get_mut(id).expect("just inserted") =
                    Socket::Conn(Box::new(Conn::new(stream, Phase::Connected, None, now)));
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
                read(net, h, conn, false);
            }
        }
        Err(e) => {
            net.fail(conn, CloseReason::ConnectFailed(e.kind()));
            deliver_closed(net, h);
        }
    }
}

/// Reads what the socket holds (within the budget and the input bound) and hands it to the
/// owner. After a plain readable edge (`edge`), a read that returns less than it asked for
/// has emptied the socket: the loop stops there instead of paying one more `recv` for its
/// `WouldBlock` (mio's registrations are edge-triggered, so data arriving later makes a new
/// event). When the event also reported the peer's end of stream or an error, or the socket
/// comes from the ready list, it reads until `WouldBlock` or end of stream as before, so an
/// end of stream that arrived with the data is never missed.
fn read<H: Handler>(net: &mut Net, h: &mut H, conn: ConnId, edge: bool) {
    let (chunk, budget, max_input, now) = (
        net.config.read_chunk,
        net.config.read_budget,
        net.config.max_input,
        net.stamp(),
    );
    let Net {
        sockets,
        scratch,
        spare_input,
        ..
    } = net;
    let Some(Socket::Conn(c)) = sockets.get_mut(conn.0) else {
        return;
    };
    if scratch.len() < chunk {
        scratch.resize(chunk, 0);
    }
    // A connection with nothing left over reads into the loop's spare input buffer: it keeps
    // only what its owner leaves unconsumed (usually nothing), in an allocation of that size.
    let shared = c.input.is_empty();
    let input = if shared { spare_input } else { &mut c.input };
    let mut read_total = 0;
    let mut end: Option<CloseReason> = None;
    let mut more = false;
    loop {
        let room = max_input.saturating_sub(input.len());
        if room == 0 || read_total >= budget {
            more = true;
            break;
        }
        // Read into the loop's one scratch buffer and keep only what arrived: a buffer holds
        // just its unconsumed bytes, never a whole read chunk.
        let n = chunk.min(room);
        match c.stream.read(&mut scratch[..n]) {
            Ok(0) => {
                end = Some(CloseReason::PeerClosed);
                break;
            }
            Ok(k) => {
                input.extend(&scratch[..k]);
                read_total += k;
                if edge && k < n {
                    break;
                }
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
        c.last_recv = now;
    }
    if read_total > 0 {
        let mut input = std::mem::take(input);
        h.on_read(net, conn, &mut input);
        let kept = match net.sockets.get_mut(conn.0) {
            Some(Socket::Conn(c)) if c.phase == Phase::Connected => {
                if shared {
                    // Usually all consumed: nothing to keep, and the spare stays as it is.
                    if !input.is_empty() {
                        c.input = input.split_off_exact(SPARE_KEEP);
                    }
                } else {
                    input.compact();
                    c.input = std::mem::take(&mut input);
                }
                Some(c.input.len())
            }
            // Closed by the handler: whatever it had not consumed is dropped (and so is the
            // end-of-stream, the owner has been told already).
            _ => None,
        };
        if shared {
            input.clear_keeping(SPARE_KEEP);
            net.spare_input = input;
        }
        let Some(unconsumed) = kept else {
            deliver_closed(net, h);
            return;
        };
        if unconsumed >= max_input {
            log::warn!("netlib: closing {conn:?}: {max_input} bytes of input unconsumed");
            net.fail(conn, CloseReason::InputOverflow);
            end = None;
            more = false;
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
