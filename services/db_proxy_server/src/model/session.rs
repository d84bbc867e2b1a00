//! Recent sessions (`SessionModel`; storage-file.md §4.2, §5.4, §5.5): one row per (owner,
//! peer, type); status 0 shown, 1 removed; `updated` orders them. Also what the sync center's
//! group-session upkeep reads and writes (§6.3): the groups chatted since its cursor, and the
//! cursor `last_update_group` (pool unread).

use tt_proto::pb::base_define::SessionType;

use super::user::{store_time, stored_time};
use crate::store::{Db, StoreError, StoreResult, Stores, col_u32};

/// The sync center's cursor: the start of its last pass over the chatted groups.
const LAST_UPDATE_GROUP: &str = "last_update_group";

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

/// Hides a session (the owner removed it), with `updated = now`; true if a row changed.
pub fn remove(db: &mut Db, sid: u32, now: u32) -> StoreResult<bool> {
    if sid == 0 {
        return Ok(false);
    }
    let (affected, _) = db.exec(
        "UPDATE IMRecentSession SET status=1, updated=? WHERE id=?",
        (now, sid),
    )?;
    Ok(affected > 0)
}

/// The sync center's upkeep of a member's group session (§6.3) after the group's last chat
/// at `chatted`: an existing row gets `updated = chatted`, and is shown again if the owner
/// removed it before that chat; a missing one is created (`updated = now`).
pub fn sync_group(db: &mut Db, user: u32, group: u32, chatted: u32, now: u32) -> StoreResult<()> {
    let sid = find(db, user, group, SessionType::Group, true)?;
    if sid == 0 {
        add(db, user, group, SessionType::Group, now)?;
        return Ok(());
    }
    // Assignments run left to right: the status test reads the removal time.
    db.exec(
        "UPDATE IMRecentSession SET status=IF(updated<?, 0, status), updated=? WHERE id=?",
        (chatted, chatted, sid),
    )?;
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

/// (group, lastChated) of the active groups chatted at or after `since`, by group id; groups
/// never chatted in (lastChated 0) are left out.
pub fn groups_chatted_since(db: &mut Db, since: u32) -> StoreResult<Vec<(u32, u32)>> {
    let rows = db.rows(
        "SELECT id, lastChated FROM IMGroup WHERE status=0 AND lastChated>=? AND lastChated!=0 \
         ORDER BY id",
        (since,),
    )?;
    Ok(rows
        .iter()
        .map(|row| (col_u32(row, 0), col_u32(row, 1)))
        .collect())
}

/// The stored group cursor (None when unset).
pub fn group_cursor(st: &mut Stores) -> StoreResult<Option<u32>> {
    stored_time(st, LAST_UPDATE_GROUP)
}

pub fn set_group_cursor(st: &mut Stores, t: u32) -> StoreResult<()> {
    store_time(st, LAST_UPDATE_GROUP, t)
}
