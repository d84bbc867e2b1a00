//! Users (`UserModel`; storage-file.md §5.1, §5.6, §5.7, §5.17) and the user change time of
//! `CSyncCenter` (§4.11, §6.2).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU32, Ordering};

use tt_proto::pb::base_define::UserInfo;

use super::{MAX_IN_LIST, now_secs, placeholders};
use crate::settings::CACHE_UNREAD;
use crate::store::{Db, StoreResult, Stores, atoi, col_bytes, col_u32};

/// The user change time shared by every db_proxy (pool unread).
const TOTAL_USER_UPDATE: &str = "total_user_update";

const USER_COLUMNS: &str = "id, sex, name, domain, nick, password, salt, phone, email, avatar, \
                            departId, status, sign_info";

/// A row of `SELECT USER_COLUMNS` as `UserInfo` (status = the column).
fn user_info(row: &mysql::Row) -> UserInfo {
    UserInfo {
        user_id: col_u32(row, 0),
        user_gender: col_u32(row, 1),
        user_real_name: col_bytes(row, 2),
        user_domain: col_bytes(row, 3),
        user_nick_name: col_bytes(row, 4),
        user_tel: col_bytes(row, 7),
        email: col_bytes(row, 8),
        avatar_url: col_bytes(row, 9),
        department_id: col_u32(row, 10),
        status: col_u32(row, 11),
        sign_info: Some(col_bytes(row, 12)),
    }
}

/// What a login checks: the user and its stored password hash and salt.
pub struct Account {
    pub info: UserInfo,
    pub password: Vec<u8>,
    pub salt: Vec<u8>,
}

/// The active user named `name` (status 0); with several, the one with the highest id.
pub fn active_by_name(db: &mut Db, name: &[u8]) -> StoreResult<Option<Account>> {
    let sql = format!("SELECT {USER_COLUMNS} FROM IMUser WHERE name=? AND status=0 ORDER BY id");
    let rows = db.rows(&sql, (name,))?;
    Ok(rows.last().map(|row| Account {
        info: user_info(row),
        password: col_bytes(row, 5),
        salt: col_bytes(row, 6),
    }))
}

/// Users by id, in id order (the original's natural primary-key order), duplicates collapsed;
/// empty when a query fails.
pub fn by_ids(db: &mut Db, ids: &[u32]) -> Vec<UserInfo> {
    let ids: BTreeSet<u32> = ids.iter().copied().collect();
    let ids: Vec<u32> = ids.into_iter().collect();
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(MAX_IN_LIST) {
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM IMUser WHERE id IN ({}) ORDER BY id",
            placeholders(chunk.len())
        );
        let params: Vec<mysql::Value> = chunk.iter().map(|&i| i.into()).collect();
        match db.rows(&sql, params) {
            Ok(rows) => out.extend(rows.iter().map(user_info)),
            Err(_) => return Vec::new(),
        }
    }
    out
}

/// (id, updated) of the users updated at or after `since`; with `since` 0, of every user not
/// deleted (status 3).
pub fn changed_since(db: &mut Db, since: u32) -> StoreResult<Vec<(u32, u32)>> {
    let rows = if since == 0 {
        db.rows("SELECT id, updated FROM IMUser WHERE status!=3", ())?
    } else {
        db.rows("SELECT id, updated FROM IMUser WHERE updated>=?", (since,))?
    };
    Ok(rows
        .iter()
        .map(|row| (col_u32(row, 0), col_u32(row, 1)))
        .collect())
}

/// The user's push shield flag (1: no pushes in quiet hours); None when unknown.
pub fn push_shield(db: &mut Db, user: u32) -> Option<u32> {
    db.rows("SELECT push_shield_status FROM IMUser WHERE id=?", (user,))
        .ok()
        .and_then(|rows| rows.first().map(|r| col_u32(r, 0)))
}

/// The users among `users` whose push shield is on (slave), queried in chunks; a failed
/// query leaves its chunk out (logged).
pub fn push_shielded(db: &mut Db, users: &[u32]) -> BTreeSet<u32> {
    let mut shielded = BTreeSet::new();
    for chunk in users.chunks(MAX_IN_LIST) {
        let sql = format!(
            "SELECT id FROM IMUser WHERE id IN ({}) AND push_shield_status=1",
            placeholders(chunk.len())
        );
        match db.rows(&sql, chunk.to_vec()) {
            Ok(rows) => shielded.extend(rows.iter().map(|r| col_u32(r, 0))),
            Err(e) => log::warn!("push shields of {} users not read: {e}", chunk.len()),
        }
    }
    shielded
}

/// A profile write of one user (each also sets `updated`, which the changed-users list
/// follows).
pub enum Change<'a> {
    /// `sign_info` (§5.9).
    SignInfo(&'a [u8]),
    /// `avatar` (the change-avatar request the original never answers).
    Avatar(&'a [u8]),
    /// `push_shield_status` (§5.2).
    PushShield(u32),
}

/// Longest signature: the original's byte limit, which the varchar(128) column also holds.
const MAX_SIGN_INFO: usize = 128;
/// Longest avatar URL: the varchar(255) column.
const MAX_AVATAR_URL: usize = 255;
/// The values of `push_shield_status`: 0 pushes, 1 do-not-disturb.
const SHIELD_VALUES: [u32; 2] = [0, 1];

impl Change<'_> {
    /// Whether the value fits its column: a text at most as long as the column holds, in
    /// UTF-8 (the columns are utf8mb4); a shield status 0 or 1. A misfit is logged.
    fn fits(&self, user: u32) -> bool {
        let (column, text, max) = match *self {
            Change::SignInfo(text) => ("sign_info", text, MAX_SIGN_INFO),
            Change::Avatar(text) => ("avatar", text, MAX_AVATAR_URL),
            Change::PushShield(status) => {
                let fits = SHIELD_VALUES.contains(&status);
                if !fits {
                    log::warn!("push shield of user {user}: status {status} is neither 0 nor 1");
                }
                return fits;
            }
        };
        if text.len() > max {
            log::warn!("{column} of user {user}: {} bytes, over {max}", text.len());
            return false;
        }
        if std::str::from_utf8(text).is_err() {
            log::warn!("{column} of user {user}: not UTF-8");
            return false;
        }
        true
    }
}

/// Applies `change` to `user` now and records the change time (this process's, the original's
/// `CSyncCenter::lastUpdate`, and the shared one). True if it was stored: false for a value
/// that does not fit its column, an unknown user, a failed write.
pub fn apply(st: &mut Stores, last_update: &AtomicU32, user: u32, change: Change<'_>) -> bool {
    if !change.fits(user) {
        return false;
    }
    let now = now_secs();
    match update(&mut st.master, user, change, now) {
        Ok(true) => {
            last_update.fetch_max(now, Ordering::Relaxed);
            let _ = publish_change_time(st, now);
            true
        }
        Ok(false) => {
            log::warn!("profile change of unknown user {user}");
            false
        }
        Err(_) => false,
    }
}

/// Applies `change` to `user` with `updated = now` (master). True if the user exists: an
/// UPDATE that writes the values already there (the same value twice within a second)
/// changes no row, which the original reported as a failure.
fn update(db: &mut Db, user: u32, change: Change<'_>, now: u32) -> StoreResult<bool> {
    let (affected, _) = match change {
        Change::SignInfo(sign) => db.exec(
            "UPDATE IMUser SET sign_info=?, updated=? WHERE id=?",
            (sign, now, user),
        )?,
        Change::Avatar(url) => db.exec(
            "UPDATE IMUser SET avatar=?, updated=? WHERE id=?",
            (url, now, user),
        )?,
        Change::PushShield(status) => db.exec(
            "UPDATE IMUser SET push_shield_status=?, updated=? WHERE id=?",
            (status, now, user),
        )?,
    };
    if affected > 0 {
        return Ok(true);
    }
    let rows = db.rows("SELECT 1 FROM IMUser WHERE id=?", (user,))?;
    Ok(!rows.is_empty())
}

/// The newest `updated` of any user (0 for an empty table): catches changes made by other
/// writers (the admin side, another db_proxy).
pub fn latest_update(db: &mut Db) -> StoreResult<u32> {
    let rows = db.rows("SELECT MAX(updated) FROM IMUser", ())?;
    Ok(rows.first().map_or(0, |r| col_u32(r, 0)))
}

/// A time the sync center keeps in the pool unread under `key` (None when unset).
pub(super) fn stored_time(st: &mut Stores, key: &str) -> StoreResult<Option<u32>> {
    let v: Option<Vec<u8>> = st.cache(CACHE_UNREAD)?.query(redis::cmd("GET").arg(key))?;
    Ok(v.filter(|v| !v.is_empty()).map(|v| atoi(&v)))
}

pub(super) fn store_time(st: &mut Stores, key: &str, t: u32) -> StoreResult<()> {
    st.cache(CACHE_UNREAD)?
        .query::<redis::Value>(redis::cmd("SET").arg(key).arg(t))?;
    Ok(())
}

/// The last user change time every db_proxy shares, `total_user_update` (None when unset).
pub fn shared_change_time(st: &mut Stores) -> StoreResult<Option<u32>> {
    stored_time(st, TOTAL_USER_UPDATE)
}

/// Raises `total_user_update` to `t` (it is left alone when already later).
fn publish_change_time(st: &mut Stores, t: u32) -> StoreResult<()> {
    if shared_change_time(st)?.is_some_and(|known| known >= t) {
        return Ok(());
    }
    store_time(st, TOTAL_USER_UPDATE, t)
}

/// The user change time at start (§6.2): the later of `total_user_update` (the key the
/// original writes; it reads `total_user_updated`, which nothing writes) and the newest
/// `updated` in IMUser; now when neither can be read, so that nothing is held back.
pub fn initial_update_time(st: &mut Stores) -> u32 {
    let shared = shared_change_time(st).ok().flatten();
    let latest = latest_update(&mut st.slave).ok();
    match (shared, latest) {
        (None, None) => now_secs(),
        (a, b) => {
            let t = a.unwrap_or(0).max(b.unwrap_or(0));
            let _ = publish_change_time(st, t);
            t
        }
    }
}
