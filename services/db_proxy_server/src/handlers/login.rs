//! Login check (storage-file.md §5.1, the original's `Login.cpp`).

use std::collections::{HashMap, VecDeque};
use std::sync::MutexGuard;

use md5::{Digest, Md5};
use tt_proto::pb::server::{ImValidateReq, ImValidateRsp};
use tt_proto::values::validate::{
    INTERNAL_ERROR as VALIDATE_INTERNAL_ERROR, LOCKED as VALIDATE_LOCKED, OK as VALIDATE_OK,
    WRONG_PASSWORD as VALIDATE_WRONG_PASSWORD,
};

use super::Shared;
use crate::model::{now_secs, user};
use crate::store::Stores;

/// Failure window and limit of the login lockout.
const LOCKOUT_WINDOW: u32 = 1800;
const LOCKOUT_MAX_FAILURES: usize = 10;
/// User names whose failures are remembered at once (the original's map never shrinks).
const LOCKOUT_MAX_NAMES: usize = 100_000;

/// Recent failed logins per user name, newest first, each list at most 11 long.
#[derive(Default)]
pub struct LoginFailures {
    map: HashMap<Vec<u8>, VecDeque<u32>>,
}

impl LoginFailures {
    /// Drops stale entries of `name`; true if it is locked out (more than 10 recent failures).
    fn locked(&mut self, name: &[u8], now: u32) -> bool {
        let Some(list) = self.map.get_mut(name) else {
            return false;
        };
        list.retain(|&t| now.saturating_sub(t) <= LOCKOUT_WINDOW);
        if list.is_empty() {
            self.map.remove(name);
            return false;
        }
        list.len() > LOCKOUT_MAX_FAILURES
    }

    fn record(&mut self, name: &[u8], now: u32) {
        if !self.map.contains_key(name) && self.map.len() >= LOCKOUT_MAX_NAMES {
            self.map.retain(|_, list| {
                list.front()
                    .is_some_and(|&t| now.saturating_sub(t) <= LOCKOUT_WINDOW)
            });
            if self.map.len() >= LOCKOUT_MAX_NAMES {
                log::warn!("login failure table full; failure not recorded");
                return;
            }
        }
        let list = self.map.entry(name.to_vec()).or_default();
        list.push_front(now);
        list.truncate(LOCKOUT_MAX_FAILURES + 1);
    }

    fn clear(&mut self, name: &[u8]) {
        self.map.remove(name);
    }
}

/// The failure table, also after a worker panicked while holding it.
fn failures(sh: &Shared) -> MutexGuard<'_, LoginFailures> {
    match sh.login_failures.lock() {
        Ok(f) => f,
        Err(p) => p.into_inner(),
    }
}

fn md5_hex(data: &[u8]) -> String {
    let digest = Md5::digest(data);
    let mut s = String::with_capacity(32);
    for b in digest {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

fn internal_error(rsp: &mut ImValidateRsp) {
    rsp.result_code = VALIDATE_INTERNAL_ERROR;
    rsp.result_string = Some("服务端内部错误".as_bytes().to_vec());
}

/// The answer to a validate request that does not parse.
pub fn unparsable() -> Option<ImValidateRsp> {
    let mut rsp = ImValidateRsp::default();
    internal_error(&mut rsp);
    Some(rsp)
}

pub fn validate(st: &mut Stores, sh: &Shared, req: ImValidateReq) -> Option<ImValidateRsp> {
    let now = now_secs();
    let mut rsp = ImValidateRsp {
        user_name: req.user_name.clone(),
        attach_data: req.attach_data.clone(),
        ..Default::default()
    };
    if failures(sh).locked(&req.user_name, now) {
        rsp.result_code = VALIDATE_LOCKED;
        rsp.result_string = Some("用户名/密码错误次数太多".as_bytes().to_vec());
        return Some(rsp);
    }
    let Ok(account) = user::active_by_name(&mut st.slave, &req.user_name) else {
        // The original would answer "wrong password" and count a failure; a database outage
        // is not the user's fault.
        internal_error(&mut rsp);
        return Some(rsp);
    };
    let ok = account.as_ref().is_some_and(|a| {
        let mut salted = req.password.clone();
        salted.extend_from_slice(&a.salt);
        md5_hex(&salted).as_bytes() == a.password.as_slice()
    });
    let mut failures = failures(sh);
    match account {
        Some(a) if ok => {
            failures.clear(&req.user_name);
            rsp.result_code = VALIDATE_OK;
            rsp.result_string = Some("成功".as_bytes().to_vec());
            let mut info = a.info;
            info.status = 0;
            rsp.user_info = Some(info);
        }
        found => {
            // Only names that exist are counted: an unknown name cannot be locked out of
            // anything, and counting every name a peer invents would let it fill the table
            // with names of up to a PDU's size.
            if found.is_some() {
                failures.record(&req.user_name, now);
            }
            rsp.result_code = VALIDATE_WRONG_PASSWORD;
            rsp.result_string = Some("用户名/密码错误".as_bytes().to_vec());
        }
    }
    Some(rsp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_vector() {
        // storage-file.md §2.7 test vector.
        let mut s = b"e10adc3949ba59abbe56e057f20f883e".to_vec();
        s.extend_from_slice(b"1234");
        assert_eq!(md5_hex(&s), "b605e86d02eef8bfd0646f6a704c17c9");
    }

    #[test]
    fn lockout_after_eleven_failures() {
        let mut f = LoginFailures::default();
        for i in 0..11 {
            assert!(!f.locked(b"u", 1000 + i));
            f.record(b"u", 1000 + i);
        }
        assert!(f.locked(b"u", 1011));
        // Failures older than 30 minutes no longer count.
        assert!(!f.locked(b"u", 1011 + LOCKOUT_WINDOW + 1));
        f.record(b"v", 5);
        f.clear(b"v");
        assert!(!f.locked(b"v", 6));
    }
}
