//! Users (`UserModel`; storage-file.md §5.1, §5.6, §5.7, §5.17) and the user change time of
//! `CSyncCenter` (§4.11, §6.2).

use std::collections::BTreeSet;

use tt_proto::pb::base_define::UserInfo;

use super::{MAX_IN_LIST, now_secs, placeholders};
use crate::settings::CACHE_UNREAD;
use crate::store::{Db, StoreResult, Stores, atoi, col_bytes, col_u32};

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

/// `CSyncCenter::init` for user changes (§6.2): `total_user_updated` if set (it never is, as
/// the original writes `total_user_update`), else now, written to `total_user_update`.
pub fn initial_update_time(st: &mut Stores) -> u32 {
    let now = now_secs();
    let Ok(cache) = st.cache(CACHE_UNREAD) else {
        return now;
    };
    match cache.query::<Option<Vec<u8>>>(redis::cmd("GET").arg("total_user_updated")) {
        Ok(Some(v)) if !v.is_empty() => atoi(&v),
        _ => {
            let _ =
                cache.query::<redis::Value>(redis::cmd("SET").arg("total_user_update").arg(now));
            now
        }
    }
}
