//! Group creation and membership changes (`GroupModel`; storage-file.md §4.5, §5.22, §5.23).
//!
//! A change writes MySQL (IMGroup, IMGroupMember, the removed members' IMRecentSession rows) and
//! the Redis member hash `group_member_<group>` inside one transaction on master that holds the
//! group's IMGroup row lock (`SELECT … FOR UPDATE`) until the Redis writes are done: changes of
//! one group, from any worker or any db_proxy process, run one after the other, and a failure
//! rolls the MySQL side back. `userCnt` is recounted from the active member rows after every
//! change, so it always equals the number of members.

use std::collections::BTreeSet;

use tt_proto::pb::base_define::{GroupType, SessionType};

use super::group::member_key;
use super::placeholders;
use crate::settings::{CACHE_GROUP_MEMBER, CACHE_UNREAD};
use crate::store::{StoreError, StoreResult, Stores, col_u32};

/// Runs `f` in a transaction on master: committed if it succeeds, rolled back if it fails. The
/// transaction reads committed data and so takes no gap locks: changes of different groups never
/// wait for (or deadlock with) each other on IMGroupMember's indexes.
fn transaction<T>(
    st: &mut Stores,
    f: impl FnOnce(&mut Stores) -> StoreResult<T>,
) -> StoreResult<T> {
    st.master
        .exec("SET TRANSACTION ISOLATION LEVEL READ COMMITTED", ())?;
    st.master.exec("START TRANSACTION", ())?;
    match f(st) {
        Ok(v) => {
            st.master.exec("COMMIT", ())?;
            Ok(v)
        }
        Err(e) => {
            let _ = st.master.exec("ROLLBACK", ());
            Err(e)
        }
    }
}

/// `head` followed by `ids`, as statement parameters.
fn params(head: &[u32], ids: &[u32]) -> Vec<mysql::Value> {
    head.iter().chain(ids).map(|&v| v.into()).collect()
}

/// A group to create.
pub struct NewGroup<'a> {
    pub name: &'a [u8],
    pub avatar: &'a [u8],
    pub creator: u32,
    pub kind: GroupType,
    /// Distinct member ids, ascending, at most [`super::group::MAX_GROUP_MEMBERS`].
    pub members: &'a [u32],
}

/// Creates the group (version 1) with its members, each joining at `now`, and a message counter
/// at 0 unless one exists; returns the group id.
pub fn create(st: &mut Stores, g: &NewGroup, now: u32) -> StoreResult<u32> {
    let id = transaction(st, |st| {
        let (_, id) = st.master.exec(
            "INSERT INTO IMGroup (name, avatar, creator, type, userCnt, status, version, \
             lastChated, updated, created) VALUES (?, ?, ?, ?, 0, 0, 1, 0, ?, ?)",
            (g.name, g.avatar, g.creator, g.kind as i32, now, now),
        )?;
        let id =
            u32::try_from(id).map_err(|_| StoreError(format!("group id {id} out of range")))?;
        // An id used before starts without members (`clearGroupMember`).
        st.master
            .exec("DELETE FROM IMGroupMember WHERE groupId=?", (id,))?;
        st.cache(CACHE_GROUP_MEMBER)?
            .query::<redis::Value>(redis::cmd("DEL").arg(member_key(id)))?;
        insert_members(st, id, g.members, now)?;
        Ok(id)
    })?;
    // Best effort, as in the original: INCRBY on a missing counter starts from 0 anyway. NX: a
    // counter left by an earlier group with this id is never lowered (msg ids never repeat).
    let _ = st.cache(CACHE_UNREAD).and_then(|c| {
        c.query::<redis::Value>(
            redis::cmd("SET")
                .arg(format!("group_msg_id_{id}"))
                .arg(0)
                .arg("NX"),
        )
    });
    Ok(id)
}

/// The creator and type of a group, for the permission check of a change.
pub struct Owner {
    pub creator: u32,
    /// The raw `type` column (1 normal, 2 temporary).
    pub kind: i32,
}

/// A group whose IMGroup row is locked for a membership change (see the module doc).
pub struct Locked<'a> {
    st: &'a mut Stores,
    group: u32,
    now: u32,
}

impl Locked<'_> {
    /// The stores, to read the membership under the lock.
    pub fn stores(&mut self) -> &mut Stores {
        self.st
    }

    /// Adds `users` (distinct, ascending), each joining now (`insertNewMember`).
    pub fn add(&mut self, users: &[u32]) -> StoreResult<()> {
        insert_members(self.st, self.group, users, self.now)
    }

    /// Removes `users` (distinct): their member rows get status 1, their sessions of the group
    /// are removed, their Redis entries deleted (`removeMember`).
    pub fn remove(&mut self, users: &[u32]) -> StoreResult<()> {
        if users.is_empty() {
            return Ok(());
        }
        let (st, group) = (&mut *self.st, self.group);
        let list = placeholders(users.len());
        st.master.exec(
            &format!("UPDATE IMGroupMember SET status=1 WHERE groupId=? AND userId IN ({list})"),
            params(&[group], users),
        )?;
        st.master.exec(
            &format!(
                "UPDATE IMRecentSession SET status=1, updated=? \
                 WHERE peerId=? AND type=? AND status=0 AND userId IN ({list})"
            ),
            params(&[self.now, group, SessionType::Group as u32], users),
        )?;
        recount(st, group)?;
        st.cache(CACHE_GROUP_MEMBER)?
            .query::<redis::Value>(redis::cmd("HDEL").arg(member_key(group)).arg(users))?;
        Ok(())
    }

    /// One more group version (`incGroupVersion`).
    pub fn bump_version(&mut self) -> StoreResult<()> {
        self.st.master.exec(
            "UPDATE IMGroup SET version=version+1 WHERE id=?",
            (self.group,),
        )?;
        Ok(())
    }
}

/// Locks the group's row and runs `f` with the group's owner (None when the group has no
/// IMGroup row) and the lock; what `f` wrote is committed if it succeeds.
pub fn change<T>(
    st: &mut Stores,
    group: u32,
    now: u32,
    f: impl FnOnce(Option<Owner>, &mut Locked) -> StoreResult<T>,
) -> StoreResult<T> {
    transaction(st, |st| {
        let rows = st.master.rows(
            "SELECT creator, type FROM IMGroup WHERE id=? FOR UPDATE",
            (group,),
        )?;
        let owner = rows.first().map(|r| Owner {
            creator: col_u32(r, 0),
            kind: col_u32(r, 1) as i32,
        });
        f(owner, &mut Locked { st, group, now })
    })
}

/// Makes `users` (distinct, ascending) members joining at `now`: a user with a member row of the
/// group (left or not) gets it re-activated, others a new row; then the member count, then the
/// Redis entries.
fn insert_members(st: &mut Stores, group: u32, users: &[u32], now: u32) -> StoreResult<()> {
    if users.is_empty() {
        return Ok(());
    }
    let rows = st.master.rows(
        &format!(
            "SELECT userId FROM IMGroupMember WHERE groupId=? AND userId IN ({})",
            placeholders(users.len())
        ),
        params(&[group], users),
    )?;
    let existing: BTreeSet<u32> = rows.iter().map(|r| col_u32(r, 0)).collect();
    if !existing.is_empty() {
        let existing: Vec<u32> = existing.iter().copied().collect();
        st.master.exec(
            &format!(
                "UPDATE IMGroupMember SET status=0, updated=? WHERE groupId=? AND userId IN ({})",
                placeholders(existing.len())
            ),
            params(&[now, group], &existing),
        )?;
    }
    let fresh: Vec<u32> = users
        .iter()
        .copied()
        .filter(|u| !existing.contains(u))
        .collect();
    if !fresh.is_empty() {
        let values = vec!["(?, ?, 0, ?, ?)"; fresh.len()].join(", ");
        let mut p = Vec::with_capacity(fresh.len() * 4);
        for &u in &fresh {
            p.extend([group, u, now, now].map(mysql::Value::from));
        }
        st.master.exec(
            &format!(
                "INSERT INTO IMGroupMember (groupId, userId, status, created, updated) \
                 VALUES {values}"
            ),
            p,
        )?;
    }
    recount(st, group)?;
    let mut hset = redis::cmd("HSET");
    hset.arg(member_key(group));
    for &u in users {
        hset.arg(u).arg(now);
    }
    st.cache(CACHE_GROUP_MEMBER)?.query::<redis::Value>(&hset)?;
    Ok(())
}

/// Sets the group's `userCnt` to its number of active members.
fn recount(st: &mut Stores, group: u32) -> StoreResult<()> {
    st.master.exec(
        "UPDATE IMGroup SET userCnt=(SELECT COUNT(DISTINCT userId) FROM IMGroupMember \
         WHERE groupId=? AND status=0) WHERE id=?",
        (group, group),
    )?;
    Ok(())
}
