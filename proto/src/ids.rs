//! Service ids and command ids (protocol.md §5, §6) as `u16` constants, named exactly like the
//! values of the original `IM.BaseDefine` enums.
//!
//! Servers dispatch on the command id alone; command ids are globally unique and the high byte of
//! each one is its service id ([`service_of`]). Every command carries exactly one message type; the
//! [`Command`] trait maps a message type to its ids so a PDU can be built without repeating them.

/// Service ids (`enum IM.BaseDefine.ServiceID`), the PDU header field at offset 8.
pub mod sid {
    /// Login, logout, kick, device token, push shield.
    pub const SID_LOGIN: u16 = 0x0001;
    /// Contacts, sessions, user info, status, departments, signature.
    pub const SID_BUDDY_LIST: u16 = 0x0002;
    /// Messages, acks, unread counts, history.
    pub const SID_MSG: u16 = 0x0003;
    /// Groups.
    pub const SID_GROUP: u16 = 0x0004;
    /// File transfer.
    pub const SID_FILE: u16 = 0x0005;
    /// Client-to-client P2P commands.
    pub const SID_SWITCH_SERVICE: u16 = 0x0006;
    /// Heartbeat and all server-internal commands.
    pub const SID_OTHER: u16 = 0x0007;
    /// Declared by the original; no command uses it.
    pub const SID_INTERNAL: u16 = 0x0008;

    /// Every service id, in ascending order.
    pub const ALL: &[u16] = &[
        SID_LOGIN,
        SID_BUDDY_LIST,
        SID_MSG,
        SID_GROUP,
        SID_FILE,
        SID_SWITCH_SERVICE,
        SID_OTHER,
        SID_INTERNAL,
    ];

    /// The constant's name for a service id (for logs), `None` for an undefined id.
    pub const fn name(sid: u16) -> Option<&'static str> {
        Some(match sid {
            SID_LOGIN => "SID_LOGIN",
            SID_BUDDY_LIST => "SID_BUDDY_LIST",
            SID_MSG => "SID_MSG",
            SID_GROUP => "SID_GROUP",
            SID_FILE => "SID_FILE",
            SID_SWITCH_SERVICE => "SID_SWITCH_SERVICE",
            SID_OTHER => "SID_OTHER",
            SID_INTERNAL => "SID_INTERNAL",
            _ => return None,
        })
    }
}

/// A protobuf message that is the body of exactly one command.
///
/// Implemented for every message named in §6 (not for the embedded types of `IM.BaseDefine`).
pub trait Command: prost::Message + prost::Name + Default {
    /// The command id whose body is this message.
    const COMMAND_ID: u16;
    /// The service id the original servers put in PDUs of this command.
    const SERVICE_ID: u16 = service_of(Self::COMMAND_ID);
}

/// The service id a command id belongs to: its high byte (holds for every command id of §6).
pub const fn service_of(cid: u16) -> u16 {
    cid >> 8
}

/// The original constant name of a command id (for logs), `None` for an undefined id.
pub const fn cid_name(cid: u16) -> Option<&'static str> {
    cid::name(cid)
}

macro_rules! command_ids {
    ($( $(#[$doc:meta])* $name:ident = $value:literal => $module:ident :: $msg:ident, )*) => {
        $(
            $(#[$doc])*
            #[doc = concat!(
                "\n\nBody: [`", stringify!($msg), "`](crate::pb::", stringify!($module), "::",
                stringify!($msg), ")."
            )]
            pub const $name: u16 = $value;
        )*

        /// Every command id, in ascending order.
        pub const ALL: &[u16] = &[$($name),*];

        /// The constant's name for a command id (for logs), `None` for an undefined id.
        pub const fn name(cid: u16) -> Option<&'static str> {
            match cid {
                $($name => Some(stringify!($name)),)*
                _ => None,
            }
        }

        /// (command id, proto package, proto message name) of every command, for tests.
        #[cfg(test)]
        pub(crate) const MESSAGES: &[(u16, &str, &str)] = &[$((
            $name,
            <crate::pb::$module::$msg as prost::Name>::PACKAGE,
            <crate::pb::$module::$msg as prost::Name>::NAME,
        )),*];

        $(
            impl super::Command for crate::pb::$module::$msg {
                const COMMAND_ID: u16 = $name;
            }
        )*
    };
}

/// Command ids (the seven `*CmdID` enums of `IM.BaseDefine`), the PDU header field at offset 10.
pub mod cid {
    command_ids! {
        // SID_LOGIN (LoginCmdID)
        /// Client asks login_server for a msg_server address (binary port).
        CID_LOGIN_REQ_MSGSERVER = 0x0101 => login::ImMsgServReq,
        /// login_server's answer with the chosen msg_server.
        CID_LOGIN_RES_MSGSERVER = 0x0102 => login::ImMsgServRsp,
        /// Client logs in to msg_server.
        CID_LOGIN_REQ_USERLOGIN = 0x0103 => login::ImLoginReq,
        /// msg_server's login result.
        CID_LOGIN_RES_USERLOGIN = 0x0104 => login::ImLoginRes,
        /// Client logs out.
        CID_LOGIN_REQ_LOGINOUT = 0x0105 => login::ImLogoutReq,
        /// Logout reply.
        CID_LOGIN_RES_LOGINOUT = 0x0106 => login::ImLogoutRsp,
        /// msg_server kicks a session.
        CID_LOGIN_KICK_USER = 0x0107 => login::ImKickUser,
        /// Mobile client registers (or, empty, unregisters) its push token.
        CID_LOGIN_REQ_DEVICETOKEN = 0x0108 => login::ImDeviceTokenReq,
        /// Device-token reply.
        CID_LOGIN_RES_DEVICETOKEN = 0x0109 => login::ImDeviceTokenRsp,
        /// Mobile client asks to kick the user's PC session.
        CID_LOGIN_REQ_KICKPCCLIENT = 0x010a => login::ImKickPcClientReq,
        /// Kick-PC reply.
        CID_LOGIN_RES_KICKPCCLIENT = 0x010b => login::ImKickPcClientRsp,
        /// Set the push do-not-disturb flag.
        CID_LOGIN_REQ_PUSH_SHIELD = 0x010c => login::ImPushShieldReq,
        /// Push-shield reply.
        CID_LOGIN_RES_PUSH_SHIELD = 0x010d => login::ImPushShieldRsp,
        /// Query the push do-not-disturb flag.
        CID_LOGIN_REQ_QUERY_PUSH_SHIELD = 0x010e => login::ImQueryPushShieldReq,
        /// Push-shield query reply.
        CID_LOGIN_RES_QUERY_PUSH_SHIELD = 0x010f => login::ImQueryPushShieldRsp,

        // SID_BUDDY_LIST (BuddyListCmdID)
        /// Recent sessions request.
        CID_BUDDY_LIST_RECENT_CONTACT_SESSION_REQUEST = 0x0201 => buddy::ImRecentContactSessionReq,
        /// Recent sessions reply.
        CID_BUDDY_LIST_RECENT_CONTACT_SESSION_RESPONSE = 0x0202 => buddy::ImRecentContactSessionRsp,
        /// A user's PC status changed (route_server → msg_servers → PC clients).
        CID_BUDDY_LIST_STATUS_NOTIFY = 0x0203 => buddy::ImUserStatNotify,
        /// User info request.
        CID_BUDDY_LIST_USER_INFO_REQUEST = 0x0204 => buddy::ImUsersInfoReq,
        /// User info reply.
        CID_BUDDY_LIST_USER_INFO_RESPONSE = 0x0205 => buddy::ImUsersInfoRsp,
        /// Remove a recent session.
        CID_BUDDY_LIST_REMOVE_SESSION_REQ = 0x0206 => buddy::ImRemoveSessionReq,
        /// Remove-session reply.
        CID_BUDDY_LIST_REMOVE_SESSION_RES = 0x0207 => buddy::ImRemoveSessionRsp,
        /// All users changed since a time.
        CID_BUDDY_LIST_ALL_USER_REQUEST = 0x0208 => buddy::ImAllUserReq,
        /// All-users reply.
        CID_BUDDY_LIST_ALL_USER_RESPONSE = 0x0209 => buddy::ImAllUserRsp,
        /// Online status of a list of users (answered by route_server).
        CID_BUDDY_LIST_USERS_STATUS_REQUEST = 0x020a => buddy::ImUsersStatReq,
        /// Users-status reply.
        CID_BUDDY_LIST_USERS_STATUS_RESPONSE = 0x020b => buddy::ImUsersStatRsp,
        /// Change avatar (no handler in the original db_proxy).
        CID_BUDDY_LIST_CHANGE_AVATAR_REQUEST = 0x020c => buddy::ImChangeAvatarReq,
        /// Change-avatar reply (never produced by the original).
        CID_BUDDY_LIST_CHANGE_AVATAR_RESPONSE = 0x020d => buddy::ImChangeAvatarRsp,
        /// Tells mobile clients whether a PC client of the user is logged in.
        CID_BUDDY_LIST_PC_LOGIN_STATUS_NOTIFY = 0x020e => buddy::ImpcLoginStatusNotify,
        /// A session was removed on another device.
        CID_BUDDY_LIST_REMOVE_SESSION_NOTIFY = 0x020f => buddy::ImRemoveSessionNotify,
        /// Departments changed since a time.
        CID_BUDDY_LIST_DEPARTMENT_REQUEST = 0x0210 => buddy::ImDepartmentReq,
        /// Departments reply.
        CID_BUDDY_LIST_DEPARTMENT_RESPONSE = 0x0211 => buddy::ImDepartmentRsp,
        /// A user's avatar changed (never sent by the original servers).
        CID_BUDDY_LIST_AVATAR_CHANGED_NOTIFY = 0x0212 => buddy::ImAvatarChangedNotify,
        /// Change the signature text.
        CID_BUDDY_LIST_CHANGE_SIGN_INFO_REQUEST = 0x0213 => buddy::ImChangeSignInfoReq,
        /// Change-signature reply.
        CID_BUDDY_LIST_CHANGE_SIGN_INFO_RESPONSE = 0x0214 => buddy::ImChangeSignInfoRsp,
        /// A user's signature changed (broadcast).
        CID_BUDDY_LIST_SIGN_INFO_CHANGED_NOTIFY = 0x0215 => buddy::ImSignInfoChangedNotify,

        // SID_MSG (MessageCmdID)
        /// A chat message.
        CID_MSG_DATA = 0x0301 => message::ImMsgData,
        /// Message stored (to the sender) or delivered (from the receiver).
        CID_MSG_DATA_ACK = 0x0302 => message::ImMsgDataAck,
        /// Client marks a session read.
        CID_MSG_READ_ACK = 0x0303 => message::ImMsgDataReadAck,
        /// Read state sync across one user's devices.
        CID_MSG_READ_NOTIFY = 0x0304 => message::ImMsgDataReadNotify,
        /// Server time request.
        CID_MSG_TIME_REQUEST = 0x0305 => message::ImClientTimeReq,
        /// Server time reply.
        CID_MSG_TIME_RESPONSE = 0x0306 => message::ImClientTimeRsp,
        /// Unread counts request.
        CID_MSG_UNREAD_CNT_REQUEST = 0x0307 => message::ImUnreadMsgCntReq,
        /// Unread counts reply.
        CID_MSG_UNREAD_CNT_RESPONSE = 0x0308 => message::ImUnreadMsgCntRsp,
        /// History request.
        CID_MSG_LIST_REQUEST = 0x0309 => message::ImGetMsgListReq,
        /// History reply.
        CID_MSG_LIST_RESPONSE = 0x030a => message::ImGetMsgListRsp,
        /// Latest message id of a session.
        CID_MSG_GET_LATEST_MSG_ID_REQ = 0x030b => message::ImGetLatestMsgIdReq,
        /// Latest message id reply.
        CID_MSG_GET_LATEST_MSG_ID_RSP = 0x030c => message::ImGetLatestMsgIdRsp,
        /// Messages by id.
        CID_MSG_GET_BY_MSG_ID_REQ = 0x030d => message::ImGetMsgByIdReq,
        /// Messages-by-id reply.
        CID_MSG_GET_BY_MSG_ID_RES = 0x030e => message::ImGetMsgByIdRsp,

        // SID_GROUP (GroupCmdID)
        /// The user's groups (ids and versions).
        CID_GROUP_NORMAL_LIST_REQUEST = 0x0401 => group::ImNormalGroupListReq,
        /// Group list reply.
        CID_GROUP_NORMAL_LIST_RESPONSE = 0x0402 => group::ImNormalGroupListRsp,
        /// Group details for the groups whose version is newer.
        CID_GROUP_INFO_REQUEST = 0x0403 => group::ImGroupInfoListReq,
        /// Group details reply.
        CID_GROUP_INFO_RESPONSE = 0x0404 => group::ImGroupInfoListRsp,
        /// Create a group.
        CID_GROUP_CREATE_REQUEST = 0x0405 => group::ImGroupCreateReq,
        /// Create-group reply.
        CID_GROUP_CREATE_RESPONSE = 0x0406 => group::ImGroupCreateRsp,
        /// Add or remove group members.
        CID_GROUP_CHANGE_MEMBER_REQUEST = 0x0407 => group::ImGroupChangeMemberReq,
        /// Change-member reply.
        CID_GROUP_CHANGE_MEMBER_RESPONSE = 0x0408 => group::ImGroupChangeMemberRsp,
        /// Mute or unmute a group.
        CID_GROUP_SHIELD_GROUP_REQUEST = 0x0409 => group::ImGroupShieldReq,
        /// Mute reply.
        CID_GROUP_SHIELD_GROUP_RESPONSE = 0x040a => group::ImGroupShieldRsp,
        /// Group membership changed.
        CID_GROUP_CHANGE_MEMBER_NOTIFY = 0x040b => group::ImGroupChangeMemberNotify,

        // SID_FILE (FileCmdID)
        /// Client logs in to file_server with a task id.
        CID_FILE_LOGIN_REQ = 0x0501 => file::ImFileLoginReq,
        /// file_server login reply.
        CID_FILE_LOGIN_RES = 0x0502 => file::ImFileLoginRsp,
        /// Transfer state change (ready, cancel, refuse, done).
        CID_FILE_STATE = 0x0503 => file::ImFileState,
        /// Request a chunk of file data.
        CID_FILE_PULL_DATA_REQ = 0x0504 => file::ImFilePullDataReq,
        /// A chunk of file data.
        CID_FILE_PULL_DATA_RSP = 0x0505 => file::ImFilePullDataRsp,
        /// Client wants to send a file.
        CID_FILE_REQUEST = 0x0506 => file::ImFileReq,
        /// File request reply (task id and file_server addresses).
        CID_FILE_RESPONSE = 0x0507 => file::ImFileRsp,
        /// Tells the receiver about an incoming file.
        CID_FILE_NOTIFY = 0x0508 => file::ImFileNotify,
        /// Offline files waiting for the user.
        CID_FILE_HAS_OFFLINE_REQ = 0x0509 => file::ImFileHasOfflineReq,
        /// Offline files reply.
        CID_FILE_HAS_OFFLINE_RES = 0x050a => file::ImFileHasOfflineRsp,
        /// Record an uploaded offline file.
        CID_FILE_ADD_OFFLINE_REQ = 0x050b => file::ImFileAddOfflineReq,
        /// Delete an offline file record.
        CID_FILE_DEL_OFFLINE_REQ = 0x050c => file::ImFileDelOfflineReq,

        // SID_SWITCH_SERVICE (SwitchServiceCmdID)
        /// Opaque client-to-client command, relayed verbatim.
        CID_SWITCH_P2P_CMD = 0x0601 => switch_service::Imp2pCmdMsg,

        // SID_OTHER (OtherCmdID); 0x070c is not defined.
        /// Heartbeat (empty body).
        CID_OTHER_HEARTBEAT = 0x0701 => other::ImHeartBeat,
        /// db_proxy is shutting down; stop using this connection.
        CID_OTHER_STOP_RECV_PACKET = 0x0702 => server::ImStopReceivePacket,
        /// Check a user name and password (msg_server → db_proxy).
        CID_OTHER_VALIDATE_REQ = 0x0703 => server::ImValidateReq,
        /// Validation result.
        CID_OTHER_VALIDATE_RSP = 0x0704 => server::ImValidateRsp,
        /// Device tokens of users, for push.
        CID_OTHER_GET_DEVICE_TOKEN_REQ = 0x0705 => server::ImGetDeviceTokenReq,
        /// Device tokens reply.
        CID_OTHER_GET_DEVICE_TOKEN_RSP = 0x0706 => server::ImGetDeviceTokenRsp,
        /// Master/slave role of a route connection.
        CID_OTHER_ROLE_SET = 0x0707 => server::ImRoleSet,
        /// All users online on a msg_server (sent to route_server on connect).
        CID_OTHER_ONLINE_USER_INFO = 0x0708 => server::ImOnlineUserInfo,
        /// msg_server address and load (sent to login_server on connect).
        CID_OTHER_MSG_SERV_INFO = 0x0709 => server::ImMsgServInfo,
        /// A user's status changed on a msg_server (to route_server).
        CID_OTHER_USER_STATUS_UPDATE = 0x070a => server::ImUserStatusUpdate,
        /// A msg_server's user count changed (to login_server).
        CID_OTHER_USER_CNT_UPDATE = 0x070b => server::ImUserCntUpdate,
        /// Kick a user's sessions on other msg_servers.
        CID_OTHER_SERVER_KICK_USER = 0x070d => server::ImServerKickUser,
        /// Whether a user has a PC client online (route_server → msg_servers).
        CID_OTHER_LOGIN_STATUS_NOTIFY = 0x070e => server::ImServerPcLoginStatusNotify,
        /// Push notification request (msg_server → push_server).
        CID_OTHER_PUSH_TO_USER_REQ = 0x070f => server::ImPushToUserReq,
        /// Push results.
        CID_OTHER_PUSH_TO_USER_RSP = 0x0710 => server::ImPushToUserRsp,
        /// Which group members muted a group (for push).
        CID_OTHER_GET_SHIELD_REQ = 0x0711 => server::ImGroupGetShieldReq,
        /// Group mute status reply.
        CID_OTHER_GET_SHIELD_RSP = 0x0712 => server::ImGroupGetShieldRsp,
        /// Create a file transfer task (msg_server → file_server).
        CID_OTHER_FILE_TRANSFER_REQ = 0x0731 => server::ImFileTransferReq,
        /// File transfer task reply.
        CID_OTHER_FILE_TRANSFER_RSP = 0x0732 => server::ImFileTransferRsp,
        /// file_server's client addresses request.
        CID_OTHER_FILE_SERVER_IP_REQ = 0x0733 => server::ImFileServerIpReq,
        /// file_server's client addresses.
        CID_OTHER_FILE_SERVER_IP_RSP = 0x0734 => server::ImFileServerIpRsp,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `// CID_... (0x....)` comment above each message in pb/*.proto names the command that
    /// carries it; it must agree with the table above.
    #[test]
    fn proto_comments_agree_with_command_table() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/pb");
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            let package = text
                .lines()
                .find_map(|l| l.strip_prefix("package ")?.strip_suffix(';'))
                .unwrap();
            let lines: Vec<&str> = text.lines().collect();
            for pair in lines.windows(2) {
                let (Some(comment), Some(message)) = (
                    pair[0].strip_prefix("// CID_"),
                    pair[1].strip_prefix("message "),
                ) else {
                    continue;
                };
                let (name, value) = comment.split_once(" (0x").unwrap();
                let value = u16::from_str_radix(value.trim_end_matches(')'), 16).unwrap();
                let message = message.trim_end_matches(" {").trim_end_matches(" {}");
                let name = format!("CID_{name}");
                assert_eq!(cid_name(value), Some(name.as_str()), "{}", path.display());
                assert!(
                    cid::MESSAGES.contains(&(value, package, message)),
                    "{name} -> {package}.{message} not in the command table"
                );
                seen += 1;
            }
        }
        assert_eq!(seen, cid::ALL.len());
    }

    #[test]
    fn every_command_has_one_distinct_message() {
        assert_eq!(cid::MESSAGES.len(), cid::ALL.len());
        for (i, a) in cid::MESSAGES.iter().enumerate() {
            for b in &cid::MESSAGES[i + 1..] {
                assert_ne!((a.1, a.2), (b.1, b.2), "message used by two commands");
            }
        }
    }
}
