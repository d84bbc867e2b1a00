//! Groups (`GroupModel`; storage-file.md §2.2, §3, §4.5): the IMGroup rows, membership as read
//! from the Redis hash `group_member_<group>` (each current member → its join time), the push
//! shield of `group_set_<group>`, and the group's last chat time. Membership changes are in
//! [`super::group_member`].

use super::{MAX_IN_LIST, placeholders};
use crate::settings::{CACHE_GROUP_MEMBER, CACHE_GROUP_SET};
use crate::store::{Db, StoreError, StoreResult, Stores, atoi, col_bytes, col_u32};

/// Most members a group may have, and most user ids one request may list (create, change
/// members, get shield). Requests past it are refused: the original had no bound.
pub const MAX_GROUP_MEMBERS: usize = 1000;

/// Most groups one group-info request may ask for.
pub const MAX_INFO_GROUPS: usize = MAX_IN_LIST;

/// The setting type of the push shield in `group_set_<group>` fields (`<user>_1`; the
/// original's `IM_GROUP_SETTING_PUSH`).
const SETTING_PUSH: u32 = 1;

pub(super) fn member_key(group: u32) -> String {
    format!("group_member_{group}")
}

/// Whether the group's Redis member hash exists (the original's `isValidateGroupId`).
pub fn has_member_hash(st: &mut Stores, group: u32) -> StoreResult<bool> {
    let n: i64 = st
        .cache(CACHE_GROUP_MEMBER)?
        .query(redis::cmd("EXISTS").arg(member_key(group)))?;
    Ok(n > 0)
}

/// A group exists if its Redis member hash does, or if its IMGroup row is active (status 0):
/// a group whose last member left keeps existing, with no members.
pub fn exists(st: &mut Stores, group: u32) -> StoreResult<bool> {
    if group == 0 {
        return Ok(false);
    }
    if has_member_hash(st, group)? {
        return Ok(true);
    }
    let rows = st
        .slave
        .rows("SELECT id FROM IMGroup WHERE id=? AND status=0", (group,))?;
    Ok(!rows.is_empty())
}

/// Writes the member hash from `KEYS[1]`'s field/value pairs in ARGV, only while the hash is
/// missing (a membership change that wrote it meanwhile wins).
const REBUILD_MEMBERS: &str = "if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end \
     redis.call('HSET', KEYS[1], unpack(ARGV)) return 1";

/// Rebuilds a missing member hash from the group's active `IMGroupMember` rows (master), each
/// join time its row's `updated`. MySQL holds the membership; the Redis hash is what the
/// original reads, and a Redis that came back empty or from an older snapshot must not leave a
/// group without its members. True if the hash was written.
fn rebuild_member_hash(st: &mut Stores, group: u32) -> StoreResult<bool> {
    if has_member_hash(st, group)? {
        return Ok(false);
    }
    let rows = st.master.rows(
        "SELECT userId, updated FROM IMGroupMember WHERE groupId=? AND status=0 \
         ORDER BY id LIMIT ?",
        (group, MAX_GROUP_MEMBERS as u32),
    )?;
    if rows.is_empty() {
        return Ok(false);
    }
    let mut cmd = redis::cmd("EVAL");
    cmd.arg(REBUILD_MEMBERS).arg(1).arg(member_key(group));
    for row in &rows {
        cmd.arg(col_u32(row, 0)).arg(col_u32(row, 1));
    }
    let written: i64 = st.cache(CACHE_GROUP_MEMBER)?.query(&cmd)?;
    if written == 1 {
        log::warn!(
            "group {group}: member hash missing in Redis; rebuilt from IMGroupMember ({} members)",
            rows.len()
        );
    }
    Ok(written == 1)
}

/// The member's join time as stored (None if `user` is not a member).
fn member_entry(st: &mut Stores, user: u32, group: u32) -> StoreResult<Option<Vec<u8>>> {
    let get = |st: &mut Stores| -> StoreResult<Option<Vec<u8>>> {
        st.cache(CACHE_GROUP_MEMBER)?
            .query(redis::cmd("HGET").arg(member_key(group)).arg(user))
    };
    match get(st)? {
        Some(v) => Ok(Some(v)),
        None if rebuild_member_hash(st, group)? => get(st),
        None => Ok(None),
    }
}

pub fn has_member(st: &mut Stores, user: u32, group: u32) -> StoreResult<bool> {
    Ok(member_entry(st, user, group)?.is_some_and(|v| !v.is_empty()))
}

/// Whether each `(user, group)` of `pairs` is a member of a group that exists, as [`exists`]
/// and [`has_member`] say together. The member entries of all pairs are read in one pipelined
/// round trip: an entry shows that its group's hash exists, so a member is known at once. A
/// pair without an entry is looked at again by [`exists`] and [`has_member`] (a member hash
/// gone missing is rebuilt there). The results are in the order of `pairs`; a failed pipeline
/// fails them all.
pub fn members_may_send(st: &mut Stores, pairs: &[(u32, u32)]) -> Vec<StoreResult<bool>> {
    if pairs.is_empty() {
        return Vec::new();
    }
    let mut pipe = redis::pipe();
    for &(user, group) in pairs {
        pipe.cmd("HGET").arg(member_key(group)).arg(user);
    }
    let entries: Vec<Option<Vec<u8>>> =
        match st.cache(CACHE_GROUP_MEMBER).and_then(|c| c.pipe(&pipe)) {
            Ok(e) => e,
            Err(e) => return pairs.iter().map(|_| Err(StoreError(e.0.clone()))).collect(),
        };
    pairs
        .iter()
        .zip(entries)
        .map(|(&(user, group), entry)| {
            if group == 0 {
                Ok(false)
            } else if entry.is_some_and(|v| !v.is_empty()) {
                Ok(true)
            } else {
                Ok(exists(st, group)? && has_member(st, user, group)?)
            }
        })
        .collect()
}

/// When `user` joined `group` (0 if not a member).
pub fn join_time(st: &mut Stores, user: u32, group: u32) -> StoreResult<u32> {
    Ok(member_entry(st, user, group)?.map_or(0, |v| atoi(&v)))
}

/// The current members, in the order of their ids as text (10 before 2), as the original
/// lists them.
pub fn members(st: &mut Stores, group: u32) -> StoreResult<Vec<u32>> {
    let keys = |st: &mut Stores| -> StoreResult<Vec<Vec<u8>>> {
        st.cache(CACHE_GROUP_MEMBER)?
            .query(redis::cmd("HKEYS").arg(member_key(group)))
    };
    let mut fields = keys(st)?;
    if fields.is_empty() && rebuild_member_hash(st, group)? {
        fields = keys(st)?;
    }
    fields.sort_unstable();
    Ok(fields.iter().map(|f| atoi(f)).collect())
}

/// How many members the group has.
pub fn member_count(st: &mut Stores, group: u32) -> StoreResult<usize> {
    st.cache(CACHE_GROUP_MEMBER)?
        .query(redis::cmd("HLEN").arg(member_key(group)))
}

/// Those of `users` (at most [`MAX_GROUP_MEMBERS`]) that are not members of `group`, in the
/// given order.
pub fn non_members(st: &mut Stores, group: u32, users: &[u32]) -> StoreResult<Vec<u32>> {
    if users.is_empty() {
        return Ok(Vec::new());
    }
    let mut cmd = redis::cmd("HMGET");
    cmd.arg(member_key(group)).arg(users);
    let entries: Vec<Option<Vec<u8>>> = st.cache(CACHE_GROUP_MEMBER)?.query(&cmd)?;
    Ok(users
        .iter()
        .zip(entries)
        .filter(|(_, e)| e.as_ref().is_none_or(|v| v.is_empty()))
        .map(|(&u, _)| u)
        .collect())
}

/// The user's groups, most recently joined first (slave).
pub fn of_user(db: &mut Db, user: u32) -> StoreResult<Vec<u32>> {
    let rows = db.rows(
        "SELECT groupId FROM IMGroupMember WHERE userId=? AND status=0 \
         ORDER BY updated DESC, id DESC",
        (user,),
    )?;
    Ok(rows.iter().map(|r| col_u32(r, 0)).collect())
}

/// Records the time of the group's last message (`updateGroupChat`).
pub fn mark_chatted(db: &mut Db, group: u32, now: u32) -> StoreResult<()> {
    db.exec("UPDATE IMGroup SET lastChated=? WHERE id=?", (now, group))?;
    Ok(())
}

/// `(group id, version)` of the normal groups (type 1) among `groups` (distinct), most recently
/// updated first (slave).
pub fn normal_versions(db: &mut Db, groups: &[u32]) -> StoreResult<Vec<(u32, u32)>> {
    let mut found = Vec::with_capacity(groups.len());
    for chunk in groups.chunks(MAX_IN_LIST) {
        let sql = format!(
            "SELECT id, version, updated FROM IMGroup WHERE id IN ({}) AND type=1",
            placeholders(chunk.len())
        );
        let rows = db.rows(&sql, chunk.to_vec())?;
        found.extend(
            rows.iter()
                .map(|r| (col_u32(r, 2), col_u32(r, 0), col_u32(r, 1))),
        );
    }
    found.sort_by_key(|&(updated, _, _)| std::cmp::Reverse(updated));
    Ok(found.into_iter().map(|(_, id, v)| (id, v)).collect())
}

/// An IMGroup row as group info shows it.
pub struct GroupRow {
    pub id: u32,
    pub name: Vec<u8>,
    pub avatar: Vec<u8>,
    pub creator: u32,
    /// The raw `type` column (1 normal, 2 temporary).
    pub kind: i32,
    pub version: u32,
    /// `status` is 0.
    pub active: bool,
}

/// The rows of `groups` (at most [`MAX_IN_LIST`]), most recently updated first (slave).
pub fn rows(db: &mut Db, groups: &[u32]) -> StoreResult<Vec<GroupRow>> {
    if groups.is_empty() {
        return Ok(Vec::new());
    }
    let groups = &groups[..groups.len().min(MAX_IN_LIST)];
    let sql = format!(
        "SELECT id, name, avatar, creator, type, version, status FROM IMGroup WHERE id IN ({}) \
         ORDER BY updated DESC",
        placeholders(groups.len())
    );
    let rows = db.rows(&sql, groups.to_vec())?;
    Ok(rows
        .iter()
        .map(|r| GroupRow {
            id: col_u32(r, 0),
            name: col_bytes(r, 1),
            avatar: col_bytes(r, 2),
            creator: col_u32(r, 3),
            kind: col_u32(r, 4) as i32,
            version: col_u32(r, 5),
            active: col_u32(r, 6) == 0,
        })
        .collect())
}

fn shield_key(group: u32) -> String {
    format!("group_set_{group}")
}

fn shield_field(user: u32) -> String {
    format!("{user}_{SETTING_PUSH}")
}

/// Stores the user's push shield of the group (1 shielded, 0 not).
pub fn set_shield(st: &mut Stores, group: u32, user: u32, status: u32) -> StoreResult<()> {
    st.cache(CACHE_GROUP_SET)?.query::<redis::Value>(
        redis::cmd("HSET")
            .arg(shield_key(group))
            .arg(shield_field(user))
            .arg(status),
    )?;
    Ok(())
}

/// The push shield of each of `users` (at most [`MAX_GROUP_MEMBERS`]) in the group, in the given
/// order; 0 where none was set.
pub fn shields(st: &mut Stores, group: u32, users: &[u32]) -> StoreResult<Vec<u32>> {
    if users.is_empty() {
        return Ok(Vec::new());
    }
    let mut cmd = redis::cmd("HMGET");
    cmd.arg(shield_key(group));
    for &u in users {
        cmd.arg(shield_field(u));
    }
    let values: Vec<Option<Vec<u8>>> = st.cache(CACHE_GROUP_SET)?.query(&cmd)?;
    Ok(values
        .into_iter()
        .map(|v| v.map_or(0, |v| atoi(&v)))
        .collect())
}
