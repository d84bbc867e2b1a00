//! Sessions, users and departments (storage-file.md §5.4, §5.6, §5.7, §5.8; the original's
//! `RecentSession.cpp`, `UserAction.cpp`, `DepartAction.cpp`).

use std::sync::atomic::Ordering;

use tt_proto::pb::base_define::{ContactSessionInfo, SessionType};
use tt_proto::pb::buddy::{
    ImAllUserReq, ImAllUserRsp, ImDepartmentReq, ImDepartmentRsp, ImRecentContactSessionReq,
    ImRecentContactSessionRsp, ImUsersInfoReq, ImUsersInfoRsp,
};

use super::Shared;
use crate::model::message::{self, LastMsg};
use crate::model::{depart, session, user};
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

/// Users changed since the caller's last update time; nothing is queried unless a change is
/// known to have happened since (§4.11).
pub fn changed_users(st: &mut Stores, sh: &Shared, req: ImAllUserReq) -> Option<ImAllUserRsp> {
    let mut latest = req.latest_update_time;
    let mut users = Vec::new();
    if sh.last_update.load(Ordering::Relaxed) > latest {
        let changed = user::changed_since(&mut st.slave, latest).unwrap_or_default();
        let mut ids = Vec::with_capacity(changed.len());
        for (id, updated) in changed {
            ids.push(id);
            latest = latest.max(updated);
        }
        if !ids.is_empty() {
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
