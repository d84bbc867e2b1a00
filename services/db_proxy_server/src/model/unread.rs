//! Unread counters (storage-file.md §3, §4.7), in the Redis pool `unread`:
//!
//! * single chats: the hash `unread_<receiver>` maps each sender to a count;
//! * groups: `<group>_im_group_msg` holds the group's message count, and
//!   `<user>_<group>_im_user_group` the count the user has read up to (its marker).

use std::collections::BTreeMap;

use tt_proto::pb::base_define::SessionType;

use crate::settings::CACHE_UNREAD;
use crate::store::{StoreResult, Stores, atoi};

/// A Redis hash as a map ordered by field (HGETALL collected as the original does).
fn hgetall(st: &mut Stores, key: &str) -> StoreResult<BTreeMap<Vec<u8>, Vec<u8>>> {
    st.cache(CACHE_UNREAD)?
        .query(redis::cmd("HGETALL").arg(key))
}

/// (peer, count) of the user's single-chat counters, in the order of the peer ids as text.
pub fn single(st: &mut Stores, user: u32) -> StoreResult<Vec<(u32, u32)>> {
    let all = hgetall(st, &format!("unread_{user}"))?;
    Ok(all.iter().map(|(k, v)| (atoi(k), atoi(v))).collect())
}

/// One more unread message from `from` for `to`.
pub fn add_single(st: &mut Stores, to: u32, from: u32) -> StoreResult<()> {
    st.cache(CACHE_UNREAD)?.query::<i64>(
        redis::cmd("HINCRBY")
            .arg(format!("unread_{to}"))
            .arg(from)
            .arg(1),
    )?;
    Ok(())
}

/// One more message in the group.
pub fn add_group(st: &mut Stores, group: u32) -> StoreResult<()> {
    st.cache(CACHE_UNREAD)?.query::<i64>(
        redis::cmd("HINCRBY")
            .arg(format!("{group}_im_group_msg"))
            .arg("count")
            .arg(1),
    )?;
    Ok(())
}

/// Group unread count of `user` in `group`; None when the group has no message counter.
/// A marker above the total counts as 0 (the original reused a stale value: quirk 11).
pub fn group(st: &mut Stores, user: u32, group: u32) -> StoreResult<Option<u32>> {
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

/// Everything unread by `user`, single and group (the push badge); what cannot be read counts
/// as 0.
pub fn total(st: &mut Stores, user: u32) -> u32 {
    let single = single(st, user).unwrap_or_default();
    let mut total = single.iter().fold(0u32, |t, &(_, n)| t.wrapping_add(n));
    for g in super::group::of_user(&mut st.slave, user).unwrap_or_default() {
        if let Ok(Some(n)) = group(st, user, g) {
            total = total.wrapping_add(n);
        }
    }
    total
}

/// Clears an unread counter: single → HDEL; group → copy the group hash to the user's marker.
/// `kind` is the raw session type of the request (another value is only logged).
pub fn clear(st: &mut Stores, user: u32, peer: u32, kind: i32) -> StoreResult<()> {
    match SessionType::try_from(kind) {
        Ok(SessionType::Single) => {
            st.cache(CACHE_UNREAD)?.query::<redis::Value>(
                redis::cmd("HDEL").arg(format!("unread_{user}")).arg(peer),
            )?;
        }
        Ok(SessionType::Group) => {
            let all = hgetall(st, &format!("{peer}_im_group_msg"))?;
            if !all.is_empty() {
                let mut cmd = redis::cmd("HSET");
                cmd.arg(format!("{user}_{peer}_im_user_group"));
                for (k, v) in &all {
                    cmd.arg(k.as_slice()).arg(v.as_slice());
                }
                st.cache(CACHE_UNREAD)?.query::<redis::Value>(&cmd)?;
            }
        }
        Err(_) => log::warn!("clear unread: invalid session type {kind}"),
    }
    Ok(())
}
