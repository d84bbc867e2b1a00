//! Protocol values the servers test or set, as methods on the generated enums (so no daemon
//! redefines a result code, a kick reason or the mobile-client bit), plus the few values the
//! original defines outside the `.proto` files.

use crate::pb::base_define::{ClientType, MsgType, SessionType};
use crate::pb::group::{ImGroupChangeMemberNotify, ImGroupChangeMemberRsp};

/// `IMUserCntUpdate.user_action` (the original's `USER_CNT_INC` / `USER_CNT_DEC`, defined in
/// C++ rather than in a `.proto` enum).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum UserCntAction {
    Inc = 1,
    Dec = 2,
}

impl UserCntAction {
    pub fn from_u32(v: u32) -> Option<UserCntAction> {
        match v {
            1 => Some(UserCntAction::Inc),
            2 => Some(UserCntAction::Dec),
            _ => None,
        }
    }
}

/// `result_code` of the replies whose field is a plain number (group, file, logout, kick
/// replies): 0 success, 1 failure, as the original writes them.
pub const RESULT_OK: u32 = 0;
pub const RESULT_FAILED: u32 = 1;

/// `IMValidateRsp.result_code` (literals of the original's `doLogin`).
pub mod validate {
    pub const OK: u32 = 0;
    pub const WRONG_PASSWORD: u32 = 1;
    pub const INTERNAL_ERROR: u32 = 2;
    /// Too many failed logins in the last 30 minutes.
    pub const LOCKED: u32 = 6;
}

/// `IMServerPCLoginStatusNotify.login_status`: whether the user has a PC client online
/// anywhere (route_server's notice to every msg_server).
pub mod pc_login_status {
    pub const OFFLINE: u32 = 0;
    pub const ONLINE: u32 = 1;
}

/// `UserTokenInfo.push_type` of every device token (the original's literal 1): an alert with
/// sound.
pub const PUSH_TYPE_NORMAL: u32 = 1;
/// `UserTokenInfo.push_type` msg_server sets for a user with a PC client online: the badge
/// only, no alert, no sound.
pub const PUSH_TYPE_SILENT: u32 = 2;

impl ClientType {
    /// The bit that marks mobile client types (iOS 0x11, Android 0x12).
    pub const MOBILE_BIT: i32 = 0x10;

    /// True for a mobile client type (bit 0x10 set), whatever its other bits.
    pub const fn is_mobile(raw: i32) -> bool {
        raw & Self::MOBILE_BIT != 0
    }

    /// Both PC or both mobile: a login kicks the older connections of the same kind.
    pub const fn same_kind(a: i32, b: i32) -> bool {
        (a ^ b) >> 4 == 0
    }
}

impl MsgType {
    /// True for the group message types (0x11 text, 0x12 audio).
    pub fn is_group(raw: i32) -> bool {
        raw == MsgType::GroupText as i32 || raw == MsgType::GroupAudio as i32
    }

    /// A declared message type from its wire value (`MsgType_IsValid`).
    pub fn declared(raw: i32) -> Option<MsgType> {
        MsgType::try_from(raw).ok()
    }

    /// True for the audio types (0x02 single, 0x12 group).
    pub fn is_audio(self) -> bool {
        matches!(self, MsgType::SingleAudio | MsgType::GroupAudio)
    }

    /// The session type a message of this type belongs to.
    pub fn session_type(raw: i32) -> SessionType {
        if MsgType::is_group(raw) {
            SessionType::Group
        } else {
            SessionType::Single
        }
    }
}

/// The notification of a successful member change, built from db_proxy's reply: the same
/// requester, change type, group and lists (what msg_server and http_msg_server send the
/// members and route_server).
impl From<ImGroupChangeMemberRsp> for ImGroupChangeMemberNotify {
    fn from(rsp: ImGroupChangeMemberRsp) -> Self {
        ImGroupChangeMemberNotify {
            user_id: rsp.user_id,
            change_type: rsp.change_type,
            group_id: rsp.group_id,
            cur_user_id_list: rsp.cur_user_id_list,
            chg_user_id_list: rsp.chg_user_id_list,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_kinds() {
        assert!(ClientType::same_kind(0x01, 0x02));
        assert!(ClientType::same_kind(0x11, 0x12));
        assert!(!ClientType::same_kind(0x01, 0x11));
        assert!(ClientType::same_kind(0, 0x01));
        assert!(ClientType::is_mobile(ClientType::Android as i32));
        assert!(!ClientType::is_mobile(ClientType::Mac as i32));
    }

    #[test]
    fn message_types() {
        assert!(MsgType::is_group(0x11) && MsgType::is_group(0x12));
        assert!(!MsgType::is_group(0x01) && !MsgType::is_group(0x02));
        assert_eq!(MsgType::session_type(0x12), SessionType::Group);
        assert_eq!(MsgType::session_type(0x01), SessionType::Single);
        assert_eq!(UserCntAction::from_u32(2), Some(UserCntAction::Dec));
        assert_eq!(UserCntAction::from_u32(3), None);
    }

    #[test]
    fn member_change_notify_carries_the_reply_fields() {
        let rsp = ImGroupChangeMemberRsp {
            user_id: 7,
            change_type: 2,
            result_code: 0,
            group_id: 9,
            cur_user_id_list: vec![7, 8],
            chg_user_id_list: vec![5],
            attach_data: Some(vec![1, 2, 3]),
        };
        let n = ImGroupChangeMemberNotify::from(rsp);
        assert_eq!((n.user_id, n.change_type, n.group_id), (7, 2, 9));
        assert_eq!(n.cur_user_id_list, [7, 8]);
        assert_eq!(n.chg_user_id_list, [5]);
    }
}
