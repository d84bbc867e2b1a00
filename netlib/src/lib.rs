//! netlib: a small single-threaded reactor on `mio`, after TeamTalk's `CEventDispatch` and
//! `CBaseSocket`.
//!
//! | original (C++ `base/`)                   | here                                        |
//! |------------------------------------------|---------------------------------------------|
//! | `CEventDispatch` (epoll loop, singleton) | [`EventLoop`] (one per thread, not global)  |
//! | `CBaseSocket` + `netlib_*` calls         | [`Net`]: listen / connect / send / close    |
//! | callback + `NETLIB_MSG_*` codes          | [`Handler`] methods (`on_accept`, …)        |
//! | socket handle (fd, reused by the kernel) | [`ConnId`] (never reused)                   |
//! | `AddTimer` / `RemoveTimer`               | [`Net::add_timer`] / [`Net::remove_timer`]  |
//! | worker → I/O thread response list        | [`Poster`] → [`Handler::on_message`]        |
//! | `StopDispatch`                           | [`Net::stop`] / [`Poster::stop`]            |
//! | (none: signals killed the process)       | [`EventLoop::watch_signals`] → [`Handler::on_signal`] |
//!
//! Differences that matter (each fixes a weakness of the original):
//! - output is bounded: past `Config::output_high_water` a connection is closed
//!   ([`CloseReason::OutputOverflow`]); input is bounded by `Config::max_input`;
//! - end of stream is detected when `read` returns 0 (the original could miss a FIN);
//! - a connect that fails at once is reported like one that fails later, and every connect
//!   has a timeout;
//! - `on_close` is delivered exactly once per connection, never re-entrantly;
//! - timers use a monotonic clock and a heap (O(log n)), and never fire in catch-up bursts;
//! - `close` is graceful (output is flushed, FIN sent, the peer's FIN awaited, all bounded by
//!   `Config::linger_timeout`), `abort` is immediate.
//!
//! Sockets are registered once for both readable and writable events (edge-triggered, as in
//! the original), so no `epoll_ctl` is needed to start or stop write interest.

mod buffer;
mod event_loop;
mod inbox;
mod net;
mod slab;
mod timer;

pub use buffer::Buffer;
pub use event_loop::{EventLoop, Handler, Signal};
pub use inbox::{Disconnected, Poster};
pub use net::{Activity, CloseReason, Config, ConnId, ListenerId, Net};
pub use timer::TimerId;
