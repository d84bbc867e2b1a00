//! Device tokens (storage-file.md §3, §5.16, §5.17), in the Redis pool `token`:
//! `device_<user>` holds `ios:<token>`, `android:<token>` (or a bare token), and
//! `device_<token>` the user id owning the token.

use std::collections::{BTreeMap, BTreeSet};

use super::MAX_IN_LIST;
use crate::settings::CACHE_TOKEN;
use crate::store::{StoreResult, Stores};

/// `device_` + `tail`.
fn device_key(tail: &[u8]) -> Vec<u8> {
    let mut key = b"device_".to_vec();
    key.extend_from_slice(tail);
    key
}

/// Stores `value` as the user's device entry and the user as the owner of `token`; the owner
/// entry of the user's previous token is emptied.
pub fn set(st: &mut Stores, user: u32, value: &[u8], token: &[u8]) -> StoreResult<()> {
    let cache = st.cache(CACHE_TOKEN)?;
    let user_key = format!("device_{user}");
    let old: Option<Vec<u8>> = cache.query(redis::cmd("GET").arg(&user_key))?;
    if let Some(old) = old
        && let Some(i) = old.iter().position(|&b| b == b':')
    {
        let key = device_key(&old[i + 1..]);
        let owner: Option<Vec<u8>> = cache.query(redis::cmd("GET").arg(key.as_slice()))?;
        if owner.is_some_and(|o| !o.is_empty()) {
            cache.query::<redis::Value>(redis::cmd("SET").arg(key.as_slice()).arg(""))?;
        }
    }
    cache.query::<redis::Value>(redis::cmd("SET").arg(&user_key).arg(value))?;
    let key = device_key(token);
    cache.query::<redis::Value>(redis::cmd("SET").arg(key.as_slice()).arg(user.to_string()))?;
    Ok(())
}

/// (user, device entry) of the users that have one, ordered by key text as the original's map
/// (`device_10` before `device_9`); MGET in chunks, stopping at the first failure.
pub fn get_many(st: &mut Stores, users: &[u32]) -> Vec<(u32, Vec<u8>)> {
    let mut found: BTreeMap<String, (u32, Vec<u8>)> = BTreeMap::new();
    let users: BTreeSet<u32> = users.iter().copied().collect();
    let users: Vec<u32> = users.into_iter().collect();
    for chunk in users.chunks(MAX_IN_LIST) {
        let mut cmd = redis::cmd("MGET");
        for u in chunk {
            cmd.arg(format!("device_{u}"));
        }
        let values: Vec<Option<Vec<u8>>> = match st.cache(CACHE_TOKEN).and_then(|c| c.query(&cmd)) {
            Ok(v) => v,
            Err(_) => break,
        };
        for (u, v) in chunk.iter().zip(values) {
            if let Some(v) = v {
                found.insert(format!("device_{u}"), (*u, v));
            }
        }
    }
    found.into_values().collect()
}
