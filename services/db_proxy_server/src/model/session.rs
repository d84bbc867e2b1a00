//! Recent sessions (`SessionModel`; storage-file.md §4.2, §5.4): one row per (owner, peer,
//! type); status 0 shown, 1 removed; `updated` orders them.

use tt_proto::pb::base_define::SessionType;

use crate::store::{Db, StoreError, StoreResult, col_u32};

/// The session id of (user, peer, type): only a visible one (status 0) unless `all`; 0 if none.
pub fn find(db: &mut Db, user: u32, peer: u32, kind: SessionType, all: bool) -> StoreResult<u32> {
    let kind = kind as i32;
    let rows = if all {
        db.rows(
            "SELECT id FROM IMRecentSession WHERE userId=? AND peerId=? AND type=? \
             ORDER BY status ASC, updated DESC, id DESC LIMIT 1",
            (user, peer, kind),
        )?
    } else {
        db.rows(
            "SELECT id FROM IMRecentSession WHERE userId=? AND peerId=? AND type=? AND status=0 \
             ORDER BY updated DESC, id DESC LIMIT 1",
            (user, peer, kind),
        )?
    };
    Ok(rows.first().map_or(0, |r| col_u32(r, 0)))
}

/// Shows (user, peer, type) again or creates it, with `updated = now`; returns its id. Runs on
/// master (under the pair lock for single chats).
pub fn add(db: &mut Db, user: u32, peer: u32, kind: SessionType, now: u32) -> StoreResult<u32> {
    let sid = find(db, user, peer, kind, true)?;
    if sid != 0 {
        db.exec(
            "UPDATE IMRecentSession SET status=0, updated=? WHERE id=?",
            (now, sid),
        )?;
        return Ok(sid);
    }
    let (_, id) = db.exec(
        "INSERT INTO IMRecentSession (userId, peerId, type, status, created, updated) \
         VALUES (?, ?, ?, 0, ?, ?)",
        (user, peer, kind as i32, now, now),
    )?;
    u32::try_from(id).map_err(|_| StoreError(format!("session id {id} out of range")))
}

/// Sets a session's `updated` (nothing for sid 0).
pub fn touch(db: &mut Db, sid: u32, t: u32) -> StoreResult<()> {
    if sid != 0 {
        db.exec("UPDATE IMRecentSession SET updated=? WHERE id=?", (t, sid))?;
    }
    Ok(())
}

/// One row of a user's session list.
pub struct Recent {
    pub peer: u32,
    pub kind: SessionType,
    pub status: u32,
    pub updated: u32,
}

/// The user's visible sessions updated after `since`, newest first, at most 100; rows of an
/// unknown type are left out.
pub fn recent(db: &mut Db, user: u32, since: u32) -> StoreResult<Vec<Recent>> {
    let rows = db.rows(
        "SELECT peerId, type, status, updated FROM IMRecentSession \
         WHERE userId=? AND status=0 AND updated>? ORDER BY updated DESC LIMIT 100",
        (user, since),
    )?;
    Ok(rows
        .iter()
        .filter_map(|row| {
            let kind = SessionType::try_from(col_u32(row, 1) as i32).ok()?;
            Some(Recent {
                peer: col_u32(row, 0),
                kind,
                status: col_u32(row, 2),
                updated: col_u32(row, 3),
            })
        })
        .collect())
}
