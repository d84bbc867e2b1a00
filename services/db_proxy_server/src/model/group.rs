//! Groups (`GroupModel`; storage-file.md §3, §4.5): membership (read side) and the last chat
//! time. The Redis hash `group_member_<group>` maps each member to its join time.

use crate::settings::CACHE_GROUP_MEMBER;
use crate::store::{Db, StoreResult, Stores, atoi, col_u32};

/// A group exists iff its Redis member hash does.
pub fn exists(st: &mut Stores, group: u32) -> StoreResult<bool> {
    let n: i64 = st
        .cache(CACHE_GROUP_MEMBER)?
        .query(redis::cmd("EXISTS").arg(format!("group_member_{group}")))?;
    Ok(n > 0)
}

/// The member's join time as stored (None if `user` is not a member).
fn member_entry(st: &mut Stores, user: u32, group: u32) -> StoreResult<Option<Vec<u8>>> {
    st.cache(CACHE_GROUP_MEMBER)?.query(
        redis::cmd("HGET")
            .arg(format!("group_member_{group}"))
            .arg(user),
    )
}

pub fn has_member(st: &mut Stores, user: u32, group: u32) -> StoreResult<bool> {
    Ok(member_entry(st, user, group)?.is_some_and(|v| !v.is_empty()))
}

/// When `user` joined `group` (0 if not a member).
pub fn join_time(st: &mut Stores, user: u32, group: u32) -> StoreResult<u32> {
    Ok(member_entry(st, user, group)?.map_or(0, |v| atoi(&v)))
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
