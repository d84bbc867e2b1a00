//! The sync center (the original's `CSyncCenter`, storage-file.md §6): a thread of its own that
//! runs a pass at start and then every [`INTERVAL`] until the process stops.
//!
//! Each pass
//!
//! * gives every current member of each group chatted in since the previous pass a group
//!   session: an existing one gets the group's last chat time (and is shown again if its owner
//!   removed it before that chat), a missing one is created (§6.3). Message sending keeps only
//!   the sender's session; this is how the other members' lists learn of the group;
//! * raises the user change time that gates the changed-users list (§4.11) to the newest
//!   `IMUser.updated`, so changes made elsewhere (the admin side, another db_proxy) are listed
//!   too.
//!
//! The group cursor is the start of the previous pass (stored as `last_update_group`, read at
//! start: §6.2), so a chat during a pass is seen by the next one; it moves only when its query
//! succeeded.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{RecvTimeoutError, Sender};

use crate::handlers::Shared;
use crate::model::{group, now_secs, session, user};
use crate::store::{StoreResult, Stores};

/// Time between two passes (the original's 5 s).
pub const INTERVAL: Duration = Duration::from_secs(5);

/// The running sync thread.
pub struct SyncCenter {
    stop: Sender<()>,
    thread: JoinHandle<()>,
}

impl SyncCenter {
    /// Reads the group cursor (§6.2) and starts the thread with its own connections.
    pub fn start(mut stores: Stores, shared: Arc<Shared>) -> Result<SyncCenter, String> {
        let cursor = initial_cursor(&mut stores);
        log::info!("sync center: groups chatted since {cursor}");
        let (stop, stopped) = crossbeam_channel::bounded::<()>(1);
        let thread = std::thread::Builder::new()
            .name("db-sync".into())
            .spawn(move || {
                let mut cursor = cursor;
                loop {
                    let run = catch_unwind(AssertUnwindSafe(|| {
                        pass(&mut stores, &shared, &mut cursor);
                    }));
                    if run.is_err() {
                        log::error!("sync center: a pass panicked");
                    }
                    match stopped.recv_timeout(INTERVAL) {
                        Err(RecvTimeoutError::Timeout) => {}
                        Ok(()) | Err(RecvTimeoutError::Disconnected) => break,
                    }
                }
            })
            .map_err(|e| format!("cannot start the sync thread: {e}"))?;
        Ok(SyncCenter { stop, thread })
    }

    /// Wakes the thread, waits until its pass in progress (if any) ends and it exits.
    pub fn stop(self) {
        let _ = self.stop.try_send(());
        let _ = self.thread.join();
        log::info!("sync center stopped");
    }
}

/// `last_update_group` as stored; 0 (every chatted group) on the first start ever. The
/// original has the test inverted: it scans every group when the key is missing, but skips
/// the time it was down when the key is there. Now when Redis cannot be read.
fn initial_cursor(st: &mut Stores) -> u32 {
    match session::group_cursor(st) {
        Ok(Some(t)) => t,
        Ok(None) => 0,
        Err(_) => now_secs(),
    }
}

/// One pass; failures are logged where they happen and leave the rest of the pass to run.
fn pass(st: &mut Stores, shared: &Shared, cursor: &mut u32) {
    let started = now_secs();
    if let Ok(t) = user::latest_update(&mut st.slave) {
        shared.last_update.fetch_max(t, Ordering::Relaxed);
    }
    let Ok(chatted) = session::groups_chatted_since(&mut st.slave, *cursor) else {
        return;
    };
    *cursor = started;
    let _ = session::set_group_cursor(st, started);
    if !chatted.is_empty() {
        log::info!("sync center: sessions of {} chatted groups", chatted.len());
    }
    for (g, last_chat) in chatted {
        if let Err(e) = sync_group(st, g, last_chat) {
            log::warn!("sync center: group {g}: {e}");
        }
    }
}

/// The group sessions of every member of `g`, last chatted at `last_chat`.
fn sync_group(st: &mut Stores, g: u32, last_chat: u32) -> StoreResult<()> {
    for u in group::members(st, g)? {
        session::sync_group(&mut st.master, u, g, last_chat, now_secs())?;
    }
    Ok(())
}
