//! Group commit of text messages (docs/RELIABILITY.md, "Group commit"): the messages a worker
//! took from the queue together are stored in one MySQL transaction.
//!
//! 1. Each message's conversation and sessions come from the [`IdCache`]; a miss looks them up
//!    (and creates what is missing) as the per-message path does, and caches them.
//! 2. Msg ids: one pipelined Redis round trip of `INCRBY <counter> <n>` per conversation, so
//!    the `n` messages of a conversation get consecutive ids. The counter check of the
//!    per-message path applies to the whole range (first use on the connection, or a range
//!    starting at 1: compared with the stored maximum and raised above it if behind).
//! 3. One transaction: a multi-row INSERT per message table (row counts of a power of two, so
//!    each connection prepares at most nine statements per table), `status=0, updated=now` of
//!    every session of the batch in one UPDATE (ids ascending, so concurrent batches lock rows
//!    in the same order), `lastChated` of every group in one UPDATE, then COMMIT.
//! 4. After the commit, the unread counters in one pipelined Redis round trip.
//!
//! Nothing is acked before the COMMIT returned. A statement that fails before the COMMIT (a
//! repeated id, a missing table, a lost connection) leaves nothing stored: the transaction is
//! rolled back (by `ROLLBACK`, or by the server when the connection is gone) and the caller
//! stores each message alone. A COMMIT that fails leaves the outcome unknown: no message of
//! the batch is acked and none is stored again.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use mysql::Value;
use tt_proto::pb::base_define::SessionType;

use super::message::{self, Conversation};
use crate::id_cache::IdCache;
use crate::settings::CACHE_UNREAD;
use crate::store::{Db, StoreResult, Stores};

/// Most rows (or listed ids) one statement carries.
const MAX_ROWS: usize = 256;

/// A text message of the batch, validated by the handler.
pub struct Item<'a> {
    pub from: u32,
    /// The receiver, or the group.
    pub to: u32,
    pub group: bool,
    /// The `MsgType` value.
    pub kind: u32,
    pub created: u32,
    pub content: &'a [u8],
    /// The id it was stored under once the batch committed; 0 if it was not.
    pub msg_id: u32,
    /// Relation or group id; 0 when it could not be found or created.
    conv: u32,
    /// The sessions whose `updated` the message sets (0: none).
    sids: [u32; 2],
}

impl<'a> Item<'a> {
    pub fn new(
        from: u32,
        to: u32,
        group: bool,
        kind: u32,
        created: u32,
        content: &'a [u8],
    ) -> Item<'a> {
        Item {
            from,
            to,
            group,
            kind,
            created,
            content,
            msg_id: 0,
            conv: 0,
            sids: [0, 0],
        }
    }

    fn conversation(&self) -> Conversation {
        if self.group {
            Conversation::group(self.conv)
        } else {
            Conversation::single(self.conv)
        }
    }
}

/// How a batch ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Committed: every item with a msg id is stored (one whose pair or group session could
    /// not be looked up has none).
    Committed,
    /// Failed before the COMMIT: nothing of the batch is stored; each message may be stored
    /// alone.
    RolledBack,
    /// Not stored (no msg id could be taken), or unknown (the COMMIT failed): no message is
    /// acked.
    Refused,
}

/// Stores `items` in one transaction (see the module doc) and sets their msg ids.
pub fn store(st: &mut Stores, cache: &IdCache, items: &mut [Item], now: u32) -> Outcome {
    for item in items.iter_mut() {
        resolve(st, cache, item, now);
    }
    if allocate(st, items).is_err() {
        for item in items.iter_mut() {
            item.msg_id = 0;
        }
        return Outcome::Refused;
    }
    let outcome = write(&mut st.master, items, now);
    if outcome == Outcome::Committed {
        count_unread(st, items);
    } else {
        for item in items.iter_mut() {
            item.msg_id = 0;
        }
    }
    outcome
}

/// The item's conversation and sessions, from the cache or looked up (and cached); left at 0
/// when the lookup failed (logged where it happened).
fn resolve(st: &mut Stores, cache: &IdCache, item: &mut Item, now: u32) {
    let (from, to) = (item.from, item.to);
    if item.group {
        let kind = SessionType::Group;
        let sid = match cache.session(from, to, kind) {
            Some(sid) => Ok(sid),
            None => message::ensure_group_session(st, from, to, now).inspect(|&sid| {
                cache.set_session(from, to, kind, sid);
            }),
        };
        if let Ok(sid) = sid {
            item.conv = to;
            item.sids = [sid, 0];
        }
        return;
    }
    let kind = SessionType::Single;
    let cached = (
        cache.relation(from, to),
        cache.session(from, to, kind),
        cache.session(to, from, kind),
    );
    if let (Some(r), Some(sid), Some(psid)) = cached {
        item.conv = r;
        item.sids = [sid, psid];
        return;
    }
    if let Ok(pair) = message::ensure_pair(st, from, to, now) {
        cache.set_relation(from, to, pair.relate_id);
        cache.set_session(from, to, kind, pair.sid);
        cache.set_session(to, from, kind, pair.psid);
        item.conv = pair.relate_id;
        item.sids = [pair.sid, pair.psid];
    }
}

/// Gives every resolved item a msg id: one `INCRBY` per conversation, all in one pipeline, so
/// a conversation's items get consecutive ids in batch order. An error leaves ids unset.
fn allocate(st: &mut Stores, items: &mut [Item]) -> StoreResult<()> {
    // Conversations in order of first appearance, with their item count.
    let mut convs: Vec<(Conversation, u32)> = Vec::new();
    let mut index: HashMap<(bool, u32), usize> = HashMap::new();
    for item in items.iter().filter(|i| i.conv != 0) {
        let i = *index.entry((item.group, item.conv)).or_insert_with(|| {
            convs.push((item.conversation(), 0));
            convs.len() - 1
        });
        convs[i].1 += 1;
    }
    if convs.is_empty() {
        return Ok(());
    }
    let mut pipe = redis::pipe();
    for (conv, n) in &convs {
        pipe.cmd("INCRBY").arg(&conv.key).arg(*n);
    }
    let values: Vec<i64> = st.cache(CACHE_UNREAD)?.pipe(&pipe)?;
    let mut next: Vec<u32> = Vec::with_capacity(convs.len());
    for ((conv, n), value) in convs.iter().zip(values) {
        next.push(first_id(st, conv, *n, value)?);
    }
    for item in items.iter_mut().filter(|i| i.conv != 0) {
        let i = index[&(item.group, item.conv)];
        item.msg_id = next[i];
        if next[i] != 0 {
            next[i] += 1;
        }
    }
    Ok(())
}

/// The first of `n` ids the counter gave up to `value`, checked as the per-message path checks
/// one id (`message::next_msg_id`); 0 (logged) when the range is out of the id space.
fn first_id(st: &mut Stores, conv: &Conversation, n: u32, value: i64) -> StoreResult<u32> {
    let n64 = i64::from(n);
    let mut first = value - n64 + 1;
    let checked = st.cache(CACHE_UNREAD)?.is_checked(&conv.key);
    if first <= 1 || !checked {
        let stored = conv.max_stored(&mut st.master)?;
        if first > i64::from(stored) {
            st.cache(CACHE_UNREAD)?.mark_checked(&conv.key);
        } else {
            // Behind the stored ids (Redis lost the counter), or concurrent senders took and
            // stored higher ids since: only the first is a reason to move on.
            match conv.raise(st, stored, false, n)? {
                0 => {}
                raised => {
                    log::warn!(
                        "{}: counter was behind msg id {stored} stored; raised, ids up to \
                         {raised}",
                        conv.key
                    );
                    first = raised - n64 + 1;
                }
            }
        }
    }
    if conv.msg_id(first) == 0 || conv.msg_id(first + n64 - 1) == 0 {
        return Ok(0);
    }
    Ok(conv.msg_id(first))
}

/// The largest power of two that is at most `n` (1 ≤ n ≤ [`MAX_ROWS`]).
fn rows_per_statement(n: usize) -> usize {
    let n = n.clamp(1, MAX_ROWS);
    1 << (usize::BITS - 1 - n.leading_zeros())
}

/// `(?,…),(?,…)` — `rows` copies of `row`.
fn values_list(row: &str, rows: usize) -> String {
    let mut s = String::with_capacity(rows * (row.len() + 1));
    for i in 0..rows {
        if i > 0 {
            s.push(',');
        }
        s.push_str(row);
    }
    s
}

/// The transaction of the batch: INSERTs, session and group updates, COMMIT.
fn write(db: &mut Db, items: &[Item], now: u32) -> Outcome {
    let stored: Vec<&Item> = items.iter().filter(|i| i.msg_id != 0).collect();
    if stored.is_empty() {
        return Outcome::Committed;
    }
    let before_commit = (|| {
        db.run("START TRANSACTION")?;
        insert_rows(db, &stored)?;
        let sids: BTreeSet<u32> = stored
            .iter()
            .flat_map(|i| i.sids)
            .filter(|&s| s != 0)
            .collect();
        update_in(
            db,
            "UPDATE IMRecentSession SET status=0, updated=? WHERE id IN",
            now,
            &sids,
        )?;
        let groups: BTreeSet<u32> = stored.iter().filter(|i| i.group).map(|i| i.conv).collect();
        update_in(
            db,
            "UPDATE IMGroup SET lastChated=? WHERE id IN",
            now,
            &groups,
        )
    })();
    if before_commit.is_err() {
        // The server rolls back what a lost connection had not committed.
        if db.connected() && db.run("ROLLBACK").is_err() {
            db.close();
        }
        return Outcome::RolledBack;
    }
    match db.run("COMMIT") {
        Ok(()) => Outcome::Committed,
        Err(_) => {
            log::error!(
                "COMMIT of {} messages failed: none is acked, none stored again",
                stored.len()
            );
            db.close();
            Outcome::Refused
        }
    }
}

/// The multi-row INSERTs of the stored items, per message table.
fn insert_rows(db: &mut Db, stored: &[&Item]) -> StoreResult<()> {
    let mut tables: BTreeMap<String, Vec<&Item>> = BTreeMap::new();
    for item in stored {
        tables
            .entry(item.conversation().table)
            .or_default()
            .push(item);
    }
    for (table, rows) in &tables {
        let group = rows[0].group;
        let mut rest: &[&Item] = rows;
        while !rest.is_empty() {
            let (chunk, tail) = rest.split_at(rows_per_statement(rest.len()));
            rest = tail;
            let mut params: Vec<Value> = Vec::with_capacity(chunk.len() * 9);
            for i in chunk {
                params.push(i.conv.into());
                params.push(i.from.into());
                if !group {
                    params.push(i.to.into());
                }
                params.extend([
                    i.msg_id.into(),
                    i.content.into(),
                    i.kind.into(),
                    i.created.into(),
                    i.created.into(),
                ]);
            }
            let (columns, row) = if group {
                (
                    "groupId, userId, msgId, content, type, status, updated, created",
                    "(?, ?, ?, ?, ?, 0, ?, ?)",
                )
            } else {
                (
                    "relateId, fromId, toId, msgId, content, type, status, created, updated",
                    "(?, ?, ?, ?, ?, ?, 0, ?, ?)",
                )
            };
            let sql = format!(
                "INSERT INTO {table} ({columns}) VALUES {}",
                values_list(row, chunk.len())
            );
            db.exec(&sql, params)?;
        }
    }
    Ok(())
}

/// `<update> (?,…)` with `now` for the rows of `ids`, ascending; each list padded with its last
/// id to a power of two (the same rows, fewer distinct statements).
fn update_in(db: &mut Db, update: &str, now: u32, ids: &BTreeSet<u32>) -> StoreResult<()> {
    let ids: Vec<u32> = ids.iter().copied().collect();
    for chunk in ids.chunks(MAX_ROWS) {
        let len = chunk.len().next_power_of_two();
        let sql = format!("{update} ({})", super::placeholders(len));
        let mut params: Vec<Value> = Vec::with_capacity(len + 1);
        params.push(now.into());
        params.extend(chunk.iter().map(|&id| Value::from(id)));
        let last = chunk[chunk.len() - 1];
        params.resize(len + 1, Value::from(last));
        db.exec(&sql, params)?;
    }
    Ok(())
}

/// Raises a group's message count by `ARGV[1]` and sets each sender's read marker
/// (`KEYS[2..]`) to the count at its last message of the batch (its position in `ARGV[2..]`):
/// a sender has read everything up to its own message.
const GROUP_UNREAD: &str = "local n = redis.call('HINCRBY', KEYS[1], 'count', ARGV[1]) \
     local k = tonumber(ARGV[1]) \
     for i = 2, #KEYS do redis.call('HSET', KEYS[i], 'count', n - k + tonumber(ARGV[i])) end \
     return n";

/// The unread counters of the committed items, in one pipelined round trip. A failure is
/// logged: the messages are stored and acked, their counts are missing (as for the
/// per-message path when Redis fails after the INSERT).
fn count_unread(st: &mut Stores, items: &[Item]) {
    let mut single: BTreeMap<(u32, u32), u32> = BTreeMap::new();
    // Per group: messages, and each sender's position of its last message among them.
    let mut groups: BTreeMap<u32, (u32, BTreeMap<u32, u32>)> = BTreeMap::new();
    for item in items.iter().filter(|i| i.msg_id != 0) {
        if item.group {
            let (n, senders) = groups.entry(item.conv).or_default();
            *n += 1;
            senders.insert(item.from, *n);
        } else {
            *single.entry((item.to, item.from)).or_default() += 1;
        }
    }
    if single.is_empty() && groups.is_empty() {
        return;
    }
    let mut pipe = redis::pipe();
    for ((to, from), n) in &single {
        pipe.cmd("HINCRBY")
            .arg(format!("unread_{to}"))
            .arg(from)
            .arg(n)
            .ignore();
    }
    for (group, (n, senders)) in &groups {
        let cmd = pipe
            .cmd("EVAL")
            .arg(GROUP_UNREAD)
            .arg(1 + senders.len())
            .arg(format!("{group}_im_group_msg"));
        for sender in senders.keys() {
            cmd.arg(format!("{sender}_{group}_im_user_group"));
        }
        cmd.arg(n);
        for pos in senders.values() {
            cmd.arg(pos);
        }
        cmd.ignore();
    }
    if let Ok(cache) = st.cache(CACHE_UNREAD) {
        let _ = cache.pipe::<()>(&pipe);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_of_power_of_two_rows() {
        assert_eq!(rows_per_statement(1), 1);
        assert_eq!(rows_per_statement(3), 2);
        assert_eq!(rows_per_statement(200), 128);
        assert_eq!(rows_per_statement(256), 256);
        assert_eq!(rows_per_statement(1000), 256);
        assert_eq!(values_list("(?)", 3), "(?),(?),(?)");
    }
}
