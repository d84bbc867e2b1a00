//! The model layer (storage-file.md §4): relations, sessions, messages, counters, groups.
//! Every statement binds its values as parameters; only table-name suffixes (a number 0..7)
//! are formatted into SQL text.

use std::collections::BTreeMap;

use mysql::Row;
use tt_proto::pb::base_define::{MsgInfo, MsgType, SessionType};

use crate::settings::{CACHE_GROUP_MEMBER, CACHE_UNREAD};
use crate::store::{Db, StoreError, StoreResult, Stores, atoi, col_bytes, col_u32};

/// Seconds since the Unix epoch, as the original's `time(NULL)` in a uint32 column.
pub fn now_secs() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX))
}

/// `MsgType_IsValid`.
pub fn valid_msg_type(t: u32) -> bool {
    MsgType::try_from(t as i32).is_ok()
}

pub fn is_audio(t: u32) -> bool {
    t == MsgType::SingleAudio as u32 || t == MsgType::GroupAudio as u32
}

pub const SINGLE: i32 = SessionType::Single as i32;
pub const GROUP: i32 = SessionType::Group as i32;

/// Longest list of rows one history request returns (the original has no cap).
pub const MAX_HISTORY: u32 = 1000;
/// Most ids one query's `IN (…)` list carries; longer lists are queried in chunks or cut.
pub const MAX_IN_LIST: usize = 1000;

/// `?,?,…` with `n` placeholders.
pub fn placeholders(n: usize) -> String {
    let mut s = String::with_capacity(n * 2);
    for i in 0..n {
        if i > 0 {
            s.push(',');
        }
        s.push('?');
    }
    s
}

// ---------------------------------------------------------------------------------------------
// Relations (§4.1)

/// The active relation id of the pair (slave, no insert); 0 if none. With several rows (left by
/// the original's race) the most recently updated one wins, as in the original.
pub fn relation_id(db: &mut Db, a: u32, b: u32) -> StoreResult<u32> {
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
pub fn ensure_relation(st: &mut Stores, small: u32, big: u32, now: u32) -> StoreResult<u32> {
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

// ---------------------------------------------------------------------------------------------
// Recent sessions (§4.2)

/// The session id of (user, peer, type): only a visible one (status 0) unless `all`; 0 if none.
pub fn session_id(db: &mut Db, user: u32, peer: u32, kind: i32, all: bool) -> StoreResult<u32> {
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
pub fn add_session(db: &mut Db, user: u32, peer: u32, kind: i32, now: u32) -> StoreResult<u32> {
    let sid = session_id(db, user, peer, kind, true)?;
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
        (user, peer, kind, now, now),
    )?;
    u32::try_from(id).map_err(|_| StoreError(format!("session id {id} out of range")))
}

pub fn update_session(db: &mut Db, sid: u32, t: u32) -> StoreResult<()> {
    if sid != 0 {
        db.exec("UPDATE IMRecentSession SET updated=? WHERE id=?", (t, sid))?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Messages (§4.4, §4.8)

/// The last message of a conversation, as shown in session lists and unread entries.
pub struct LastMsg {
    pub msg_id: u32,
    pub msg_type: u32,
    pub from: u32,
    pub data: Vec<u8>,
}

/// Last single-chat message of the pair (slave); None when there is none or its type is
/// invalid. Audio shows as the placeholder text.
pub fn last_single_msg(
    db: &mut Db,
    a: u32,
    b: u32,
    placeholder: &[u8],
) -> StoreResult<Option<LastMsg>> {
    let r = relation_id(db, a, b)?;
    if r == 0 {
        return Ok(None);
    }
    let sql = format!(
        "SELECT msgId, type, content FROM IMMessage_{} FORCE INDEX (idx_relateId_status_created) \
         WHERE relateId=? AND status=0 ORDER BY created DESC, id DESC LIMIT 1",
        r % 8
    );
    let rows = db.rows(&sql, (r,))?;
    Ok(rows
        .first()
        .and_then(|row| last_msg(row, None, 2, placeholder)))
}

/// A `LastMsg` from a row whose columns 0 and 1 are msgId and type, `content` at `content`
/// and the sender, if any, at `from`; None for an invalid type. Audio shows as `placeholder`.
fn last_msg(row: &Row, from: Option<usize>, content: usize, placeholder: &[u8]) -> Option<LastMsg> {
    let msg_type = col_u32(row, 1);
    if !valid_msg_type(msg_type) {
        return None;
    }
    let data = if is_audio(msg_type) {
        placeholder.to_vec()
    } else {
        col_bytes(row, content)
    };
    Some(LastMsg {
        msg_id: col_u32(row, 0),
        msg_type,
        from: from.map_or(0, |i| col_u32(row, i)),
        data,
    })
}

/// Last group message (slave); `from` is its sender.
pub fn last_group_msg(db: &mut Db, group: u32, placeholder: &[u8]) -> StoreResult<Option<LastMsg>> {
    let sql = format!(
        "SELECT msgId, type, userId, content FROM IMGroupMessage_{} \
         WHERE groupId=? AND status=0 ORDER BY created DESC, id DESC LIMIT 1",
        group % 8
    );
    let rows = db.rows(&sql, (group,))?;
    Ok(rows
        .first()
        .and_then(|row| last_msg(row, Some(2), 3, placeholder)))
}

/// Rows of `SELECT msgId, <sender>, created, type, content` as `MsgInfo`s, invalid types
/// skipped. Audio rows keep the decimal IMAudio id as data (what the original returns when the
/// audio cannot be fetched from msfs).
pub fn msg_infos(rows: &[Row]) -> Vec<MsgInfo> {
    rows.iter()
        .filter_map(|row| {
            let msg_type = col_u32(row, 3);
            if !valid_msg_type(msg_type) {
                return None;
            }
            Some(MsgInfo {
                msg_id: col_u32(row, 0),
                from_session_id: col_u32(row, 1),
                create_time: col_u32(row, 2),
                msg_type: msg_type as i32,
                msg_data: col_bytes(row, 4),
            })
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Groups (§4.5, §4.7): read side only

/// A group exists iff its Redis member hash does (§3).
pub fn group_exists(st: &mut Stores, group: u32) -> StoreResult<bool> {
    let n: i64 = st
        .cache(CACHE_GROUP_MEMBER)?
        .query(redis::cmd("EXISTS").arg(format!("group_member_{group}")))?;
    Ok(n > 0)
}

pub fn is_in_group(st: &mut Stores, user: u32, group: u32) -> StoreResult<bool> {
    let v: Option<Vec<u8>> = st.cache(CACHE_GROUP_MEMBER)?.query(
        redis::cmd("HGET")
            .arg(format!("group_member_{group}"))
            .arg(user),
    )?;
    Ok(v.is_some_and(|v| !v.is_empty()))
}

pub fn join_time(st: &mut Stores, user: u32, group: u32) -> StoreResult<u32> {
    let v: Option<Vec<u8>> = st.cache(CACHE_GROUP_MEMBER)?.query(
        redis::cmd("HGET")
            .arg(format!("group_member_{group}"))
            .arg(user),
    )?;
    Ok(v.map_or(0, |v| atoi(&v)))
}

/// The user's groups, most recently joined first (slave).
pub fn user_group_ids(db: &mut Db, user: u32) -> StoreResult<Vec<u32>> {
    let rows = db.rows(
        "SELECT groupId FROM IMGroupMember WHERE userId=? AND status=0 \
         ORDER BY updated DESC, id DESC",
        (user,),
    )?;
    Ok(rows.iter().map(|r| col_u32(r, 0)).collect())
}

/// A Redis hash as a map ordered by field (HGETALL collected as the original does).
pub fn hgetall(st: &mut Stores, pool: &str, key: &str) -> StoreResult<BTreeMap<Vec<u8>, Vec<u8>>> {
    st.cache(pool)?.query(redis::cmd("HGETALL").arg(key))
}

/// Group unread count of `user` in `group`; None when the group has no message counter.
/// A marker above the total counts as 0 (the original reused a stale value: quirk 11).
pub fn group_unread(st: &mut Stores, user: u32, group: u32) -> StoreResult<Option<u32>> {
    let cache = st.cache(CACHE_UNREAD)?;
    let total: Option<Vec<u8>> = cache.query(
        redis::cmd("HGET")
            .arg(format!("{group}_im_group_msg"))
            .arg("count"),
    )?;
    let Some(total) = total.filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let marker: Option<Vec<u8>> = cache.query(
        redis::cmd("HGET")
            .arg(format!("{user}_{group}_im_user_group"))
            .arg("count"),
    )?;
    let marker = marker.map_or(0, |m| atoi(&m));
    Ok(Some(atoi(&total).saturating_sub(marker)))
}

/// Clears an unread counter (§4.7): single → HDEL; group → copy the group hash to the user's
/// marker.
pub fn clear_unread(st: &mut Stores, user: u32, peer: u32, kind: i32) -> StoreResult<()> {
    match kind {
        SINGLE => {
            st.cache(CACHE_UNREAD)?.query::<redis::Value>(
                redis::cmd("HDEL").arg(format!("unread_{user}")).arg(peer),
            )?;
        }
        GROUP => {
            let all = hgetall(st, CACHE_UNREAD, &format!("{peer}_im_group_msg"))?;
            if !all.is_empty() {
                let mut cmd = redis::cmd("HSET");
                cmd.arg(format!("{user}_{peer}_im_user_group"));
                for (k, v) in &all {
                    cmd.arg(k.as_slice()).arg(v.as_slice());
                }
                st.cache(CACHE_UNREAD)?.query::<redis::Value>(&cmd)?;
            }
        }
        other => log::warn!("clear unread: invalid session type {other}"),
    }
    Ok(())
}
