//! Buddy-list requests: recent sessions and their removal, users and their changes, status,
//! departments, and the user's own signature and avatar.

use tt_proto::pb::base_define::{DepartInfo, SessionType, UserInfo, UserStat};
use tt_proto::pb::buddy;

use super::{Client, Message, Session};
use crate::Result;

/// One entry of the recent-sessions reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecentSession {
    /// Peer user id or group id.
    pub session_id: u32,
    /// `SessionType` value.
    pub session_type: i32,
    /// `SessionStatusType` value (0 ok, 1 deleted).
    pub session_status: i32,
    /// Unix seconds.
    pub updated_time: u32,
    /// Its newest message. For single sessions the original db_proxy puts the peer in
    /// `latest_msg_from_user_id` whoever sent it (storage-file.md quirk 10), so `latest.from`
    /// (and `latest.to`) are only reliable for groups.
    pub latest: Message,
}

/// The reply to [`Client::change_sign_info`] (`CID_BUDDY_LIST_CHANGE_SIGN_INFO_RESPONSE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignInfoChange {
    /// 0 success, 1 failure.
    pub result_code: u32,
    /// The stored signature (sent back only on success).
    pub sign_info: Option<Vec<u8>>,
}

/// The reply to [`Client::remove_session`] (`CID_BUDDY_LIST_REMOVE_SESSION_RES`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionRemoval {
    /// 0 removed, 1 not (no such visible session).
    pub result_code: u32,
    /// The session as the reply names it.
    pub session: Session,
}

impl Client {
    /// Recent sessions updated after `latest_update_time` (0 = all).
    pub fn recent_sessions(&mut self, latest_update_time: u32) -> Result<Vec<RecentSession>> {
        let req = buddy::ImRecentContactSessionReq {
            user_id: self.user_id,
            latest_update_time,
            attach_data: None,
        };
        let (_, rsp): (_, buddy::ImRecentContactSessionRsp) =
            self.request(&req, "recent sessions")?;
        let me = self.user_id;
        Ok(rsp
            .contact_session_list
            .into_iter()
            .map(|s| {
                let group = s.session_type == SessionType::Group as i32;
                // Group: the group. Single: the peer unless the peer sent it to us.
                let to = if group || s.latest_msg_from_user_id == me {
                    s.session_id
                } else {
                    me
                };
                RecentSession {
                    session_id: s.session_id,
                    session_type: s.session_type,
                    session_status: s.session_status,
                    updated_time: s.updated_time,
                    latest: self.make_message(
                        s.latest_msg_from_user_id,
                        to,
                        s.latest_msg_id,
                        s.latest_msg_type,
                        s.updated_time,
                        s.latest_msg_data,
                    ),
                }
            })
            .collect())
    }

    /// User records by id.
    pub fn user_info(&mut self, user_ids: &[u32]) -> Result<Vec<UserInfo>> {
        let req = buddy::ImUsersInfoReq {
            user_id: self.user_id,
            user_id_list: user_ids.to_vec(),
            attach_data: None,
        };
        let (_, rsp): (_, buddy::ImUsersInfoRsp) = self.request(&req, "user info")?;
        Ok(rsp.user_info_list)
    }

    /// The users changed at or after `latest_update_time` (0: every user not deleted), and the
    /// reply's `latest_update_time`: the newest change time among them (the request's time if
    /// none). db_proxy answers an empty list when it knows of no change since that time.
    pub fn all_users(&mut self, latest_update_time: u32) -> Result<(Vec<UserInfo>, u32)> {
        let req = buddy::ImAllUserReq {
            user_id: self.user_id,
            latest_update_time,
            attach_data: None,
        };
        let (_, rsp): (_, buddy::ImAllUserRsp) = self.request(&req, "all users")?;
        Ok((rsp.user_list, rsp.latest_update_time))
    }

    /// Online status of users (route_server's view: ONLINE only with a PC client).
    pub fn users_status(&mut self, user_ids: &[u32]) -> Result<Vec<UserStat>> {
        let req = buddy::ImUsersStatReq {
            user_id: self.user_id,
            user_id_list: user_ids.to_vec(),
            attach_data: None,
        };
        let (_, rsp): (_, buddy::ImUsersStatRsp) = self.request(&req, "users status")?;
        Ok(rsp.user_stat_list)
    }

    /// Departments changed after `latest_update_time` (0 = all).
    pub fn departments(&mut self, latest_update_time: u32) -> Result<Vec<DepartInfo>> {
        let req = buddy::ImDepartmentReq {
            user_id: self.user_id,
            latest_update_time,
            attach_data: None,
        };
        let (_, rsp): (_, buddy::ImDepartmentRsp) = self.request(&req, "departments")?;
        Ok(rsp.dept_list)
    }

    /// Removes a conversation from our recent sessions (`CID_BUDDY_LIST_REMOVE_SESSION_REQ`);
    /// our other devices are told with [`crate::Event::SessionRemoved`].
    pub fn remove_session(&mut self, session: impl Into<Session>) -> Result<SessionRemoval> {
        let s = session.into();
        let req = buddy::ImRemoveSessionReq {
            user_id: self.user_id,
            session_type: s.kind as i32,
            session_id: s.id,
            attach_data: None,
        };
        let (_, rsp): (_, buddy::ImRemoveSessionRsp) =
            self.request(&req, "remove-session reply")?;
        let kind = SessionType::try_from(rsp.session_type).unwrap_or(s.kind);
        Ok(SessionRemoval {
            result_code: rsp.result_code,
            session: Session {
                id: rsp.session_id,
                kind,
            },
        })
    }

    /// Changes our signature (`CID_BUDDY_LIST_CHANGE_SIGN_INFO_REQUEST`); on success every
    /// online client is told with [`crate::Event::SignInfoChanged`].
    pub fn change_sign_info(&mut self, sign_info: &str) -> Result<SignInfoChange> {
        let req = buddy::ImChangeSignInfoReq {
            user_id: self.user_id,
            sign_info: sign_info.as_bytes().to_vec(),
            attach_data: None,
        };
        let (_, rsp): (_, buddy::ImChangeSignInfoRsp) =
            self.request(&req, "change-sign-info reply")?;
        Ok(SignInfoChange {
            result_code: rsp.result_code,
            sign_info: rsp.sign_info,
        })
    }

    /// Changes our avatar URL (`CID_BUDDY_LIST_CHANGE_AVATAR_REQUEST`); returns the result code
    /// (0 success). The original db_proxy never answers this request (the call then times out);
    /// this project's does. msg_server hands the reply to every connection of the user, so our
    /// other devices receive it as an [`crate::Event::Other`].
    pub fn change_avatar(&mut self, avatar_url: &str) -> Result<u32> {
        let req = buddy::ImChangeAvatarReq {
            user_id: self.user_id,
            avatar_url: avatar_url.as_bytes().to_vec(),
            attach_data: None,
        };
        let (_, rsp): (_, buddy::ImChangeAvatarRsp) = self.request(&req, "change-avatar reply")?;
        Ok(rsp.result_code)
    }
}
