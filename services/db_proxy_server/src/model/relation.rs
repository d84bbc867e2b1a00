//! Relations of user pairs (`RelationModel`; storage-file.md §4.1): one row per pair, whose id
//! names the pair's message table and message id counter.

use crate::settings::CACHE_UNREAD;
use crate::store::{Db, StoreError, StoreResult, Stores, col_u32};

/// The active relation id of the pair (slave, no insert); 0 if none. With several rows (left by
/// the original's race) the most recently updated one wins, as in the original.
pub fn find(db: &mut Db, a: u32, b: u32) -> StoreResult<u32> {
    if a == 0 || b == 0 {
        return Ok(0);
    }
    let (small, big) = (a.min(b), a.max(b));
    let rows = db.rows(
        "SELECT id FROM IMRelationShip WHERE smallId=? AND bigId=? AND status=0 \
         ORDER BY updated DESC, id DESC LIMIT 1",
        (small, big),
    )?;
    Ok(rows.first().map_or(0, |r| col_u32(r, 0)))
}

/// The pair's relation on master, created or re-activated if needed. Must run under the pair
/// lock ([`PairLock`]) so that one pair never gets two rows. A new relation's message counter is
/// initialised with SET NX: an existing counter is never reset (the original's SET "0" could
/// make msg ids repeat).
pub fn ensure(st: &mut Stores, small: u32, big: u32, now: u32) -> StoreResult<u32> {
    let rows = st.master.rows(
        "SELECT id, status FROM IMRelationShip WHERE smallId=? AND bigId=? \
         ORDER BY status=0 DESC, updated DESC, id DESC LIMIT 1",
        (small, big),
    )?;
    if let Some(row) = rows.first() {
        let id = col_u32(row, 0);
        if col_u32(row, 1) != 0 {
            st.master.exec(
                "UPDATE IMRelationShip SET status=0, updated=? WHERE id=?",
                (now, id),
            )?;
        }
        return Ok(id);
    }
    let (_, insert_id) = st.master.exec(
        "INSERT INTO IMRelationShip (smallId, bigId, status, created, updated) \
         VALUES (?, ?, 0, ?, ?)",
        (small, big, now, now),
    )?;
    let id = u32::try_from(insert_id)
        .map_err(|_| StoreError(format!("relation id {insert_id} out of range")))?;
    // Best effort, as in the original: INCRBY on a missing key starts from 0 anyway.
    let _ = st.cache(CACHE_UNREAD).and_then(|c| {
        c.query::<redis::Value>(
            redis::cmd("SET")
                .arg(format!("msg_id_{id}"))
                .arg("0")
                .arg("NX"),
        )
    });
    Ok(id)
}

/// A MySQL named lock held on the master connection for one user pair: the check-then-insert
/// of relations and sessions for the pair runs under it, so concurrent first messages (on any
/// worker, or any db_proxy process sharing the database) cannot create duplicates.
pub struct PairLock {
    name: String,
}

/// How long a worker waits for another worker's pair lock.
const PAIR_LOCK_WAIT_SECS: u32 = 10;

impl PairLock {
    pub fn acquire(db: &mut Db, small: u32, big: u32) -> StoreResult<PairLock> {
        PairLock::named(db, format!("teamtalk.pair.{small}.{big}"))
    }

    /// The lock guarding a user's group session row (created on the first group message).
    pub fn group_session(db: &mut Db, user: u32, group: u32) -> StoreResult<PairLock> {
        PairLock::named(db, format!("teamtalk.gsession.{user}.{group}"))
    }

    fn named(db: &mut Db, name: String) -> StoreResult<PairLock> {
        let rows = db.rows("SELECT GET_LOCK(?, ?)", (&name, PAIR_LOCK_WAIT_SECS))?;
        match rows.first().map(|r| col_u32(r, 0)) {
            Some(1) => Ok(PairLock { name }),
            _ => {
                let msg = format!("could not take the lock {name}");
                log::error!("{msg}");
                Err(StoreError(msg))
            }
        }
    }

    pub fn release(self, db: &mut Db) {
        // If the connection broke, the server released the lock with it.
        let _ = db.rows("SELECT RELEASE_LOCK(?)", (&self.name,));
    }
}
