//! Messages (`MessageModel`, `GroupMessageModel`; storage-file.md §4.3, §4.4, §4.6, §4.8,
//! §5.11, §5.14): storing a message with everything around it (sessions, relation, msg id,
//! audio, counters), the last message of a conversation, history and lookups by id.
//!
//! Single-chat messages live in `IMMessage_<relateId % 8>`, group messages in
//! `IMGroupMessage_<groupId % 8>`.
//!
//! Msg ids never repeat within a conversation, whatever Redis loses (docs/RELIABILITY.md): a
//! counter is checked against the highest stored id before its first use on each Redis
//! connection and whenever it restarts from 1, and raised above it if it is behind; the unique
//! key on (conversation, msgId) refuses a repeated id that slips through anyway (an id handed
//! out before Redis lost it, stored later), and the message then takes a fresh id.

use std::collections::BTreeSet;

use mysql::Row;
use tt_proto::pb::base_define::{MsgInfo, MsgType, SessionType};
use tt_proto::pb::message::ImMsgData;

use super::relation::{self, PairLock};
use super::{MAX_IN_LIST, audio, group, now_secs, placeholders, session, unread};
use crate::msfs::Msfs;
use crate::settings::CACHE_UNREAD;
use crate::store::{Db, StoreResult, Stores, col_bytes, col_u32};

/// Longest list of rows one history request returns (the original has no cap).
pub const MAX_HISTORY: u32 = 1000;

/// `content` of `IMMessage_*` / `IMGroupMessage_*` is `varchar(4096)`: 4096 characters.
const CONTENT_CHARS: usize = 4096;

/// True if a text message's data fits the `content` column (4096 characters; data that is not
/// UTF-8 counts one character per byte, as MySQL would refuse it anyway).
pub fn fits_content_column(data: &[u8]) -> bool {
    data.len() <= CONTENT_CHARS
        || std::str::from_utf8(data).is_ok_and(|t| t.chars().count() <= CONTENT_CHARS)
}

// ---------------------------------------------------------------------------------------------
// Storing (§4.3, §4.4, §4.6, §5.10)

/// The sessions and relation of a single-chat pair.
pub(super) struct PairIds {
    /// The sender's session.
    pub sid: u32,
    /// The receiver's session.
    pub psid: u32,
    pub relate_id: u32,
}

/// Finds (fast path, no lock) or creates under the pair lock the sender's and the receiver's
/// sessions and the pair's relation.
pub(super) fn ensure_pair(st: &mut Stores, from: u32, to: u32, now: u32) -> StoreResult<PairIds> {
    let single = SessionType::Single;
    let sid = session::find(&mut st.slave, from, to, single, false)?;
    let psid = session::find(&mut st.slave, to, from, single, false)?;
    let relate_id = relation::find(&mut st.slave, from, to)?;
    if sid != 0 && psid != 0 && relate_id != 0 {
        return Ok(PairIds {
            sid,
            psid,
            relate_id,
        });
    }
    let (small, big) = (from.min(to), from.max(to));
    let lock = PairLock::acquire(&mut st.master, small, big)?;
    let result = (|| {
        // Re-check on master under the lock: another worker may have created them meanwhile.
        let mut sid = session::find(&mut st.master, from, to, single, false)?;
        if sid == 0 {
            sid = session::add(&mut st.master, from, to, single, now)?;
        }
        let mut psid = session::find(&mut st.master, to, from, single, false)?;
        if psid == 0 {
            psid = session::add(&mut st.master, to, from, single, now)?;
        }
        let relate_id = relation::ensure(st, small, big, now)?;
        Ok(PairIds {
            sid,
            psid,
            relate_id,
        })
    })();
    lock.release(&mut st.master);
    result
}

/// How many msg ids one message may try before it is given up (not stored, not acked).
const STORE_ATTEMPTS: u32 = 3;

/// In one atomic step: if the counter `KEYS[1]` is below `ARGV[1]` (or missing, or not a
/// number), sets it to `ARGV[1]` and returns it incremented by `ARGV[3]`; otherwise returns it
/// incremented by `ARGV[3]` when `ARGV[2]` is 1, and 0 (nothing changed) when it is 0.
const RAISE_COUNTER: &str = "local v = tonumber(redis.call('GET', KEYS[1]) or '0') or -1 \
     if v < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) \
     elseif ARGV[2] == '0' then return 0 end \
     return redis.call('INCRBY', KEYS[1], ARGV[3])";

/// A conversation: its Redis msg id counter and the table and column of its stored messages.
pub(super) struct Conversation {
    pub key: String,
    pub table: String,
    column: &'static str,
    id: u32,
}

impl Conversation {
    pub fn single(relate_id: u32) -> Conversation {
        Conversation::new("msg_id_", "IMMessage_", "relateId", relate_id)
    }

    pub fn group(group: u32) -> Conversation {
        Conversation::new("group_msg_id_", "IMGroupMessage_", "groupId", group)
    }

    /// The conversation `id`: counter `<key><id>`, table `<table><id % 8>`.
    fn new(key: &str, table: &str, column: &'static str, id: u32) -> Conversation {
        Conversation {
            key: format!("{key}{id}"),
            table: format!("{table}{}", id % 8),
            column,
            id,
        }
    }

    /// The highest msg id stored (master, so a message acked a moment ago counts); 0 if none.
    pub fn max_stored(&self, db: &mut Db) -> StoreResult<u32> {
        let sql = format!(
            "SELECT MAX(msgId) FROM {} WHERE {}=?",
            self.table, self.column
        );
        Ok(db
            .rows(&sql, (self.id,))?
            .first()
            .map_or(0, |r| col_u32(r, 0)))
    }

    /// A counter value as a msg id; 0 (logged) outside 1..=u32::MAX.
    pub fn msg_id(&self, value: i64) -> u32 {
        let id = u32::try_from(value).unwrap_or(0);
        if id == 0 {
            log::error!("{}: counter value {value} out of range", self.key);
        }
        id
    }

    /// Runs [`RAISE_COUNTER`] with `stored` (the highest stored id) for `count` ids; `always`
    /// asks for them even when the counter is not behind. The counter counts as checked
    /// afterwards.
    pub fn raise(
        &self,
        st: &mut Stores,
        stored: u32,
        always: bool,
        count: u32,
    ) -> StoreResult<i64> {
        let cache = st.cache(CACHE_UNREAD)?;
        let value: i64 = cache.query(
            redis::cmd("EVAL")
                .arg(RAISE_COUNTER)
                .arg(1)
                .arg(&self.key)
                .arg(stored)
                .arg(u8::from(always))
                .arg(count),
        )?;
        cache.mark_checked(&self.key);
        Ok(value)
    }

    /// A new id above both the counter and every stored id.
    fn id_above_stored(&self, st: &mut Stores) -> StoreResult<u32> {
        let stored = self.max_stored(&mut st.master)?;
        Ok(self.msg_id(self.raise(st, stored, true, 1)?))
    }
}

/// Allocates the next msg id of a conversation: `INCRBY` of its counter. The first id a Redis
/// connection gives for the conversation, and any id 1 (the counter was missing), is checked
/// against the highest stored id, and the counter raised above it when it is behind (Redis lost
/// it, or came back from an older snapshot). 0 (logged) if the counter is out of range.
fn next_msg_id(st: &mut Stores, conv: &Conversation) -> StoreResult<u32> {
    let cache = st.cache(CACHE_UNREAD)?;
    let value: i64 = cache.query(redis::cmd("INCRBY").arg(&conv.key).arg(1))?;
    if value > 1 && cache.is_checked(&conv.key) {
        return Ok(conv.msg_id(value));
    }
    let stored = conv.max_stored(&mut st.master)?;
    if value > i64::from(stored) {
        st.cache(CACHE_UNREAD)?.mark_checked(&conv.key);
        return Ok(conv.msg_id(value));
    }
    // Either the counter is behind the stored ids, or concurrent senders took and stored
    // higher ids since this one was handed out: only the first is a reason to move on.
    match conv.raise(st, stored, false, 1)? {
        0 => Ok(conv.msg_id(value)),
        raised => {
            log::warn!(
                "{}: counter was behind msg id {stored} stored; raised, id {raised}",
                conv.key
            );
            Ok(conv.msg_id(raised))
        }
    }
}

/// Inserts a message with msg id `first`, or, when that id is stored already, with the next id
/// above every stored one, up to [`STORE_ATTEMPTS`] ids; returns the id stored (0 if none).
/// `insert` runs the INSERT on master and tells whether a row went in (false: repeated id).
fn insert_unique(
    st: &mut Stores,
    conv: &Conversation,
    first: u32,
    mut insert: impl FnMut(&mut Db, u32) -> StoreResult<bool>,
) -> StoreResult<u32> {
    let mut id = first;
    for attempt in 1..=STORE_ATTEMPTS {
        if insert(&mut st.master, id)? {
            return Ok(id);
        }
        if attempt == STORE_ATTEMPTS {
            break;
        }
        id = conv.id_above_stored(st)?;
        if id == 0 {
            return Ok(0);
        }
    }
    log::error!(
        "{}: no free msg id after {STORE_ATTEMPTS} attempts; not stored",
        conv.key
    );
    Ok(0)
}

/// A message to store, as received, with its (valid) type.
pub struct Outgoing<'a> {
    pub msg: &'a ImMsgData,
    pub msg_type: MsgType,
    /// Where audio goes.
    pub msfs: &'a Msfs,
}

/// What goes into the `content` column: the text as sent, or for audio the decimal id of the
/// IMAudio row after the upload to msfs (§4.9); None if the audio could not be saved.
fn stored_content(st: &mut Stores, out: &Outgoing) -> StoreResult<Option<Vec<u8>>> {
    let msg = out.msg;
    if !out.msg_type.is_audio() {
        return Ok(Some(msg.msg_data.clone()));
    }
    let (from, to) = (msg.from_user_id, msg.to_session_id);
    let saved = audio::save(st, out.msfs, from, to, msg.create_time, &msg.msg_data)?;
    Ok(saved.map(|audio_id| audio_id.to_string().into_bytes()))
}

/// The message's id, allocated from the conversation's counter, and its content; None when
/// either failed (an allocated id is then lost, as in the original).
fn id_and_content(
    st: &mut Stores,
    out: &Outgoing,
    conv: &Conversation,
) -> StoreResult<Option<(u32, Vec<u8>)>> {
    let msg_id = next_msg_id(st, conv)?;
    if msg_id == 0 {
        return Ok(None);
    }
    Ok(stored_content(st, out)?.map(|content| (msg_id, content)))
}

/// Stores one single-chat message (text or audio); returns its msg id (0 when it could not be
/// stored).
pub fn store_single(st: &mut Stores, out: &Outgoing) -> StoreResult<u32> {
    let (now, msg) = (now_secs(), out.msg);
    let (from, to) = (msg.from_user_id, msg.to_session_id);
    let pair = ensure_pair(st, from, to, now)?;
    let r = pair.relate_id;
    let conv = Conversation::single(r);
    let Some((first, content)) = id_and_content(st, out, &conv)? else {
        return Ok(0);
    };
    let sql = format!(
        "INSERT INTO {} (relateId, fromId, toId, msgId, content, status, type, \
         created, updated) VALUES (?, ?, ?, ?, ?, 0, ?, ?, ?)",
        conv.table
    );
    let created = msg.create_time;
    let kind = out.msg_type as u32;
    let content = content.as_slice();
    let msg_id = insert_unique(st, &conv, first, |db, id| {
        db.insert_unique(&sql, (r, from, to, id, content, kind, created, created))
    })?;
    if msg_id == 0 {
        return Ok(0);
    }
    let _ = unread::add_single(st, to, from);
    let _ = session::touch(&mut st.master, pair.sid, now);
    let _ = session::touch(&mut st.master, pair.psid, now);
    Ok(msg_id)
}

/// Finds (no lock) or creates under its lock the sender's session of a group.
pub(super) fn ensure_group_session(
    st: &mut Stores,
    from: u32,
    group: u32,
    now: u32,
) -> StoreResult<u32> {
    let kind = SessionType::Group;
    let sid = session::find(&mut st.slave, from, group, kind, false)?;
    if sid != 0 {
        return Ok(sid);
    }
    let lock = PairLock::group_session(&mut st.master, from, group)?;
    let added = session::find(&mut st.master, from, group, kind, false).and_then(|s| {
        if s != 0 {
            Ok(s)
        } else {
            session::add(&mut st.master, from, group, kind, now)
        }
    });
    lock.release(&mut st.master);
    added
}

/// Stores one group message (text or audio) of a member; returns its msg id (0 when it was not
/// stored).
pub fn store_group(st: &mut Stores, out: &Outgoing) -> StoreResult<u32> {
    let (now, msg) = (now_secs(), out.msg);
    let (from, group) = (msg.from_user_id, msg.to_session_id);
    let sid = ensure_group_session(st, from, group, now)?;
    let conv = Conversation::group(group);
    let Some((first, content)) = id_and_content(st, out, &conv)? else {
        return Ok(0);
    };
    // Membership again (the upload may have taken a while), as the original.
    if !group::has_member(st, from, group)? {
        log::warn!("group message: {from} left group {group} meanwhile; not stored");
        return Ok(0);
    }
    let sql = format!(
        "INSERT INTO {} (groupId, userId, msgId, content, type, status, updated, \
         created) VALUES (?, ?, ?, ?, ?, 0, ?, ?)",
        conv.table
    );
    let created = msg.create_time;
    let kind = out.msg_type as u32;
    let content = content.as_slice();
    let msg_id = insert_unique(st, &conv, first, |db, id| {
        db.insert_unique(&sql, (group, from, id, content, kind, created, created))
    })?;
    if msg_id == 0 {
        return Ok(0);
    }
    let _ = group::mark_chatted(&mut st.master, group, now);
    let _ = unread::add_group(st, group);
    // The sender has read everything up to its own message.
    let _ = unread::clear(st, from, group, SessionType::Group as i32);
    let _ = session::touch(&mut st.master, sid, now);
    Ok(msg_id)
}

// ---------------------------------------------------------------------------------------------
// Reading (§4.8, §5.11, §5.14)

/// The last message of a conversation, as shown in session lists and unread entries.
pub struct LastMsg {
    pub msg_id: u32,
    /// The raw `MsgType` value (a declared one).
    pub msg_type: i32,
    pub from: u32,
    pub data: Vec<u8>,
}

/// A `LastMsg` from a row whose columns 0 and 1 are msgId and type, `content` at `content`
/// and the sender, if any, at `from`; None for an invalid type. Audio shows as `placeholder`.
fn last_msg(row: &Row, from: Option<usize>, content: usize, placeholder: &[u8]) -> Option<LastMsg> {
    let raw = col_u32(row, 1) as i32;
    let data = if MsgType::declared(raw)?.is_audio() {
        placeholder.to_vec()
    } else {
        col_bytes(row, content)
    };
    Some(LastMsg {
        msg_id: col_u32(row, 0),
        msg_type: raw,
        from: from.map_or(0, |i| col_u32(row, i)),
        data,
    })
}

/// Last single-chat message of the pair (slave); None when there is none or its type is
/// invalid. Audio shows as the placeholder text.
pub fn last_single(
    db: &mut Db,
    a: u32,
    b: u32,
    placeholder: &[u8],
) -> StoreResult<Option<LastMsg>> {
    let r = relation::find(db, a, b)?;
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

/// Last group message (slave); `from` is its sender.
pub fn last_group(db: &mut Db, group: u32, placeholder: &[u8]) -> StoreResult<Option<LastMsg>> {
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
/// skipped. Audio rows keep the decimal IMAudio id as data ([`audio::expand`] replaces it).
fn msg_infos(rows: &[Row]) -> Vec<MsgInfo> {
    rows.iter()
        .filter_map(|row| {
            let raw = col_u32(row, 3) as i32;
            MsgType::declared(raw)?;
            Some(MsgInfo {
                msg_id: col_u32(row, 0),
                from_session_id: col_u32(row, 1),
                create_time: col_u32(row, 2),
                msg_type: raw,
                msg_data: col_bytes(row, 4),
            })
        })
        .collect()
}

/// `" AND msgId<=?"` when the history starts at a given msg id (`begin` ≠ 0).
fn begin_filter(begin: u32) -> &'static str {
    if begin != 0 { " AND msgId<=?" } else { "" }
}

/// Up to `limit` messages of relation `r`, newest first, from msg id `begin` down (0: the
/// newest).
pub fn single_history(db: &mut Db, r: u32, begin: u32, limit: u32) -> StoreResult<Vec<MsgInfo>> {
    let sql = format!(
        "SELECT msgId, fromId, created, type, content FROM IMMessage_{} \
         FORCE INDEX (idx_relateId_status_created) WHERE relateId=? AND status=0{} \
         ORDER BY created DESC, id DESC LIMIT ?",
        r % 8,
        begin_filter(begin)
    );
    let rows = if begin != 0 {
        db.rows(&sql, (r, begin, limit))?
    } else {
        db.rows(&sql, (r, limit))?
    };
    Ok(msg_infos(&rows))
}

/// Up to `limit` messages of `group` sent since `joined`, newest first, from msg id `begin`
/// down (0: the newest).
pub fn group_history(
    db: &mut Db,
    group: u32,
    begin: u32,
    joined: u32,
    limit: u32,
) -> StoreResult<Vec<MsgInfo>> {
    let sql = format!(
        "SELECT msgId, userId, created, type, content FROM IMGroupMessage_{} \
         WHERE groupId=?{} AND status=0 AND created>=? \
         ORDER BY created DESC, id DESC LIMIT ?",
        group % 8,
        begin_filter(begin)
    );
    let rows = if begin != 0 {
        db.rows(&sql, (group, begin, joined, limit))?
    } else {
        db.rows(&sql, (group, joined, limit))?
    };
    Ok(msg_infos(&rows))
}

/// The first [`MAX_IN_LIST`] ids of a request, sorted and without duplicates, as parameters
/// (at most 100 rows come back; the original had no limit).
fn id_params(ids: &[u32]) -> Vec<mysql::Value> {
    let ids: BTreeSet<u32> = ids.iter().copied().take(MAX_IN_LIST).collect();
    ids.into_iter().map(Into::into).collect()
}

/// The messages of relation `r` with these msg ids, newest first.
pub fn single_by_ids(db: &mut Db, r: u32, ids: &[u32]) -> StoreResult<Vec<MsgInfo>> {
    let ids = id_params(ids);
    let sql = format!(
        "SELECT msgId, fromId, created, type, content FROM IMMessage_{} \
         WHERE relateId=? AND status=0 AND msgId IN ({}) \
         ORDER BY created DESC, id DESC LIMIT 100",
        r % 8,
        placeholders(ids.len())
    );
    let mut params = vec![mysql::Value::from(r)];
    params.extend(ids);
    Ok(msg_infos(&db.rows(&sql, params)?))
}

/// The messages of `group` with these msg ids sent since `joined`, newest first.
pub fn group_by_ids(
    db: &mut Db,
    group: u32,
    ids: &[u32],
    joined: u32,
) -> StoreResult<Vec<MsgInfo>> {
    let ids = id_params(ids);
    let sql = format!(
        "SELECT msgId, userId, created, type, content FROM IMGroupMessage_{} \
         WHERE groupId=? AND msgId IN ({}) AND status=0 AND created>=? \
         ORDER BY created DESC, id DESC LIMIT 100",
        group % 8,
        placeholders(ids.len())
    );
    let mut params = vec![mysql::Value::from(group)];
    params.extend(ids);
    params.push(joined.into());
    Ok(msg_infos(&db.rows(&sql, params)?))
}
