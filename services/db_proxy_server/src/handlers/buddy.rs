//! Sessions, users and departments (storage-file.md §5.4 – §5.9; the original's
//! `RecentSession.cpp`, `UserAction.cpp`, `DepartAction.cpp`): recent sessions and their
//! removal, user info, changed users, departments, signature and avatar changes.

use std::sync::atomic::Ordering;

use tt_proto::pb::base_define::{ContactSessionInfo, SessionType};
use tt_proto::pb::buddy::{
    ImAllUserReq, ImAllUserRsp, ImChangeAvatarReq, ImChangeAvatarRsp, ImChangeSignInfoReq,
    ImChangeSignInfoRsp, ImDepartmentReq, ImDepartmentRsp, ImRecentContactSessionReq,
    ImRecentContactSessionRsp, ImRemoveSessionReq, ImRemoveSessionRsp, ImUsersInfoReq,
    ImUsersInfoRsp,
};
use tt_proto::values::{RESULT_FAILED, RESULT_OK};

use super::Shared;
use crate::model::message::{self, LastMsg};
use crate::model::user::Change;
use crate::model::{depart, now_secs, session, unread, user};
use crate::store::{StoreResult, Stores};

/// The last message of a session of `user` with `peer`.
fn last_of_session(
    st: &mut Stores,
    sh: &Shared,
    user: u32,
    peer: u32,
    kind: SessionType,
) -> StoreResult<Option<LastMsg>> {
    let placeholder = &sh.audio_placeholder;
    match kind {
        SessionType::Single => {
            let last = message::last_single(&mut st.slave, peer, user, placeholder)?;
            // latest_msg_from_user_id is the peer, whoever sent it (quirk 10, kept).
            Ok(last.map(|m| LastMsg { from: peer, ..m }))
        }
        SessionType::Group => message::last_group(&mut st.slave, peer, placeholder),
    }
}

pub fn recent_sessions(
    st: &mut Stores,
    sh: &Shared,
    req: ImRecentContactSessionReq,
) -> Option<ImRecentContactSessionRsp> {
    let sessions = session::recent(&mut st.slave, req.user_id, req.latest_update_time);
    let mut list = Vec::new();
    for s in sessions.unwrap_or_default() {
        let Ok(Some(last)) = last_of_session(st, sh, req.user_id, s.peer, s.kind) else {
            continue;
        };
        list.push(ContactSessionInfo {
            session_id: s.peer,
            session_type: s.kind as i32,
            session_status: s.status as i32,
            updated_time: s.updated,
            latest_msg_id: last.msg_id,
            latest_msg_data: last.data,
            latest_msg_type: last.msg_type,
            latest_msg_from_user_id: last.from,
        });
    }
    Some(ImRecentContactSessionRsp {
        user_id: req.user_id,
        contact_session_list: list,
        attach_data: req.attach_data,
    })
}

pub fn users_info(st: &mut Stores, _sh: &Shared, req: ImUsersInfoReq) -> Option<ImUsersInfoRsp> {
    let list = if req.user_id_list.is_empty() {
        Vec::new()
    } else {
        user::by_ids(&mut st.slave, &req.user_id_list)
    };
    Some(ImUsersInfoRsp {
        user_id: req.user_id,
        user_info_list: list,
        attach_data: req.attach_data,
    })
}

/// The latest user change any db_proxy knows of: this process's, or the shared one in Redis
/// (None when Redis cannot be read: then nothing may be held back).
fn change_time(st: &mut Stores, sh: &Shared) -> Option<u32> {
    let local = sh.last_update.load(Ordering::Relaxed);
    let shared = user::shared_change_time(st).ok()?;
    Some(local.max(shared.unwrap_or(0)))
}

/// Users changed since the caller's last update time T (§5.7): those with `updated >= T`
/// (every user not deleted for T = 0), queried only when a change at or after T is known
/// (§4.11).
///
/// The returned time is one past the newest `updated` listed, so a user is listed once per
/// change; while that second is still running it is the current second instead, and a change
/// later in the same second is listed on the next request.
pub fn changed_users(st: &mut Stores, sh: &Shared, req: ImAllUserReq) -> Option<ImAllUserRsp> {
    let since = req.latest_update_time;
    let mut latest = since;
    let mut users = Vec::new();
    if change_time(st, sh).is_none_or(|t| t >= since) {
        let changed = user::changed_since(&mut st.slave, since).unwrap_or_default();
        if let Some(newest) = changed.iter().map(|&(_, updated)| updated).max() {
            latest = since.max(newest.saturating_add(1).min(now_secs()));
            let ids: Vec<u32> = changed.iter().map(|&(id, _)| id).collect();
            users = user::by_ids(&mut st.slave, &ids);
        }
    }
    Some(ImAllUserRsp {
        user_id: req.user_id,
        latest_update_time: latest,
        user_list: users,
        attach_data: req.attach_data,
    })
}

pub fn departments(st: &mut Stores, _sh: &Shared, req: ImDepartmentReq) -> Option<ImDepartmentRsp> {
    let since = req.latest_update_time;
    let (list, latest) =
        depart::changed_since(&mut st.slave, since).unwrap_or_else(|_| (Vec::new(), since));
    Some(ImDepartmentRsp {
        user_id: req.user_id,
        latest_update_time: latest,
        dept_list: list,
        attach_data: req.attach_data,
    })
}

/// The result code of a profile change.
fn change_result(st: &mut Stores, sh: &Shared, user: u32, change: Change<'_>) -> u32 {
    if user::apply(st, &sh.last_update, user, change) {
        RESULT_OK
    } else {
        RESULT_FAILED
    }
}

/// Sets the user's signature (§5.9); the signature is echoed on success.
pub fn change_sign_info(
    st: &mut Stores,
    sh: &Shared,
    req: ImChangeSignInfoReq,
) -> Option<ImChangeSignInfoRsp> {
    let user = req.user_id;
    let result = change_result(st, sh, user, Change::SignInfo(&req.sign_info));
    Some(ImChangeSignInfoRsp {
        user_id: user,
        result_code: result,
        sign_info: (result == RESULT_OK).then_some(req.sign_info),
        attach_data: req.attach_data,
    })
}

/// Sets the user's avatar URL. The original has no handler (no reply ever comes); this one
/// stores it like a signature and answers.
pub fn change_avatar(
    st: &mut Stores,
    sh: &Shared,
    req: ImChangeAvatarReq,
) -> Option<ImChangeAvatarRsp> {
    let user = req.user_id;
    let result = change_result(st, sh, user, Change::Avatar(&req.avatar_url));
    Some(ImChangeAvatarRsp {
        user_id: user,
        result_code: result,
        attach_data: req.attach_data,
    })
}

/// Hides a session from the user's list and clears its unread counter (§5.5).
pub fn remove_session(
    st: &mut Stores,
    sh: &Shared,
    req: ImRemoveSessionReq,
) -> Option<ImRemoveSessionRsp> {
    let (user, peer) = (req.user_id, req.session_id);
    let Ok(kind) = SessionType::try_from(req.session_type) else {
        log::warn!(
            "remove session of user {user}: session type {}",
            req.session_type
        );
        return None;
    };
    // Forgotten before the removal: a message stored meanwhile looks the session up again.
    sh.ids.forget_session(user, peer, kind);
    let removed = session::find(&mut st.slave, user, peer, kind, false)
        .and_then(|sid| session::remove(&mut st.master, sid, now_secs()));
    let ok = matches!(removed, Ok(true));
    if ok {
        let _ = unread::clear(st, user, peer, req.session_type);
    }
    Some(ImRemoveSessionRsp {
        user_id: user,
        result_code: if ok { RESULT_OK } else { RESULT_FAILED },
        session_type: req.session_type,
        session_id: peer,
        attach_data: req.attach_data,
    })
}
