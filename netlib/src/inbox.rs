//! The cross-thread inbox: other threads post messages that the loop thread hands to its owner.
//!
//! This is how db_proxy's workers give their replies back to the I/O thread (the original used a
//! mutex-protected list drained by a loop callback). A bounded crossbeam channel carries the
//! messages; a `mio::Waker` interrupts the poll, but only once per batch: a flag records that a
//! wake-up is already pending, so a burst of posts costs one eventfd write.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crossbeam_channel::{Sender, TrySendError};

pub(crate) struct Shared {
    pub(crate) waker: mio::Waker,
    pub(crate) wake_pending: AtomicBool,
    pub(crate) stop: AtomicBool,
}

/// A handle other threads use to reach an event loop. Cheap to clone; `Send` when `M` is.
pub struct Poster<M> {
    pub(crate) tx: Sender<M>,
    pub(crate) shared: Arc<Shared>,
}

impl<M> Clone for Poster<M> {
    fn clone(&self) -> Self {
        Poster {
            tx: self.tx.clone(),
            shared: self.shared.clone(),
        }
    }
}

/// The loop is gone (its `EventLoop` was dropped); the message is handed back.
#[derive(Debug, PartialEq, Eq)]
pub struct Disconnected<M>(pub M);

impl<M> Poster<M> {
    /// Queues `msg` for the loop thread, blocking while the inbox is full (back-pressure on the
    /// posting thread, never unbounded memory).
    pub fn post(&self, msg: M) -> Result<(), Disconnected<M>> {
        self.tx.send(msg).map_err(|e| Disconnected(e.0))?;
        self.wake();
        Ok(())
    }

    /// Like [`Poster::post`] but never blocks: a full inbox gives the message back.
    pub fn try_post(&self, msg: M) -> Result<(), TrySendError<M>> {
        self.tx.try_send(msg)?;
        self.wake();
        Ok(())
    }

    /// Asks the loop to return from `run` after its current iteration.
    pub fn stop(&self) {
        self.shared.stop.store(true, Ordering::Release);
        self.shared.wake_pending.store(true, Ordering::Release);
        self.wake_now();
    }

    fn wake(&self) {
        // The loop clears the flag before it drains the channel, so a message sent before a
        // swap that saw `true` is drained by the pass that cleared it.
        if !self.shared.wake_pending.swap(true, Ordering::AcqRel) {
            self.wake_now();
        }
    }

    fn wake_now(&self) {
        if let Err(e) = self.shared.waker.wake() {
            log::error!("netlib: waking the event loop failed: {e}");
        }
    }
}
