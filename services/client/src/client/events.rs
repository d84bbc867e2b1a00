//! What the server sends on its own: [`Event`], and how a PDU becomes one.

use tt_proto::Pdu;
use tt_proto::ids::cid;
use tt_proto::pb::{buddy, file, group, login, message};

use super::{Client, FileNotice, Message};
use crate::text;

/// Something the server sent on its own (or a reply nobody waited for).
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// `CID_MSG_DATA`: a message to us, or one we sent from another device.
    Message(Message),
    /// `CID_LOGIN_KICK_USER`: this session was replaced (reason 1) or kicked by our mobile (2).
    Kicked {
        /// The kicked user.
        user_id: u32,
        /// `KickReasonType` value.
        reason: i32,
    },
    /// `CID_BUDDY_LIST_STATUS_NOTIFY`: a user's (PC) status changed.
    UserStatus {
        /// The user.
        user_id: u32,
        /// `UserStatType` value.
        status: i32,
    },
    /// `CID_MSG_READ_NOTIFY`: one of our other devices read a conversation.
    ReadNotify {
        /// The reader (us).
        user_id: u32,
        /// The conversation.
        session_id: u32,
        /// Read up to this id.
        msg_id: u32,
        /// `SessionType` value.
        session_type: i32,
    },
    /// `CID_BUDDY_LIST_PC_LOGIN_STATUS_NOTIFY` (mobile clients): our PC client logged in or out.
    PcLoginStatus {
        /// The user.
        user_id: u32,
        /// `UserStatType` value.
        status: i32,
    },
    /// `CID_BUDDY_LIST_REMOVE_SESSION_NOTIFY`: another of our devices removed a session.
    SessionRemoved {
        /// The user (us).
        user_id: u32,
        /// The removed conversation.
        session_id: u32,
        /// `SessionType` value.
        session_type: i32,
    },
    /// `CID_BUDDY_LIST_SIGN_INFO_CHANGED_NOTIFY`.
    SignInfoChanged {
        /// Whose signature changed.
        user_id: u32,
        /// The new signature.
        sign_info: String,
    },
    /// `CID_BUDDY_LIST_AVATAR_CHANGED_NOTIFY` (part of the protocol; msg_server does not send
    /// it, see [`Client::change_avatar`]).
    AvatarChanged {
        /// Whose avatar changed.
        user_id: u32,
        /// The new avatar URL.
        avatar_url: String,
    },
    /// `CID_GROUP_CHANGE_MEMBER_NOTIFY`: members were added to or removed from a group we are
    /// (or were, or become) a member of.
    GroupMembersChanged {
        /// Who changed the membership.
        user_id: u32,
        /// The group.
        group_id: u32,
        /// `GroupModifyType` value (1 add, 2 remove).
        change_type: i32,
        /// The members after the change.
        current: Vec<u32>,
        /// The users added or removed.
        changed: Vec<u32>,
    },
    /// `CID_FILE_NOTIFY`: a file sent to us (an online transfer to take, or an offline file
    /// ready to download).
    File(FileNotice),
    /// Any other PDU (P2P command, a reply nobody waited for, file_server's PDUs, ...).
    Other(Pdu),
    /// The server closed the connection. Reported once, after every event received before it.
    Closed,
}

impl Client {
    pub(super) fn decode_event(&self, pdu: &Pdu) -> Result<Event, tt_proto::prost::DecodeError> {
        Ok(match pdu.header.command_id {
            cid::CID_MSG_DATA => {
                let m: message::ImMsgData = pdu.decode_body()?;
                Event::Message(self.make_message(
                    m.from_user_id,
                    m.to_session_id,
                    m.msg_id,
                    m.msg_type,
                    m.create_time,
                    m.msg_data,
                ))
            }
            cid::CID_LOGIN_KICK_USER => {
                let k: login::ImKickUser = pdu.decode_body()?;
                Event::Kicked {
                    user_id: k.user_id,
                    reason: k.kick_reason,
                }
            }
            cid::CID_BUDDY_LIST_STATUS_NOTIFY => {
                let n: buddy::ImUserStatNotify = pdu.decode_body()?;
                Event::UserStatus {
                    user_id: n.user_stat.user_id,
                    status: n.user_stat.status,
                }
            }
            cid::CID_MSG_READ_NOTIFY => {
                let n: message::ImMsgDataReadNotify = pdu.decode_body()?;
                Event::ReadNotify {
                    user_id: n.user_id,
                    session_id: n.session_id,
                    msg_id: n.msg_id,
                    session_type: n.session_type,
                }
            }
            cid::CID_BUDDY_LIST_PC_LOGIN_STATUS_NOTIFY => {
                let n: buddy::ImpcLoginStatusNotify = pdu.decode_body()?;
                Event::PcLoginStatus {
                    user_id: n.user_id,
                    status: n.login_stat,
                }
            }
            cid::CID_BUDDY_LIST_REMOVE_SESSION_NOTIFY => {
                let n: buddy::ImRemoveSessionNotify = pdu.decode_body()?;
                Event::SessionRemoved {
                    user_id: n.user_id,
                    session_id: n.session_id,
                    session_type: n.session_type,
                }
            }
            cid::CID_BUDDY_LIST_SIGN_INFO_CHANGED_NOTIFY => {
                let n: buddy::ImSignInfoChangedNotify = pdu.decode_body()?;
                Event::SignInfoChanged {
                    user_id: n.changed_user_id,
                    sign_info: text(&n.sign_info),
                }
            }
            cid::CID_BUDDY_LIST_AVATAR_CHANGED_NOTIFY => {
                let n: buddy::ImAvatarChangedNotify = pdu.decode_body()?;
                Event::AvatarChanged {
                    user_id: n.changed_user_id,
                    avatar_url: text(&n.avatar_url),
                }
            }
            cid::CID_GROUP_CHANGE_MEMBER_NOTIFY => {
                let n: group::ImGroupChangeMemberNotify = pdu.decode_body()?;
                Event::GroupMembersChanged {
                    user_id: n.user_id,
                    group_id: n.group_id,
                    change_type: n.change_type,
                    current: n.cur_user_id_list,
                    changed: n.chg_user_id_list,
                }
            }
            cid::CID_FILE_NOTIFY => {
                let n: file::ImFileNotify = pdu.decode_body()?;
                Event::File(n.into())
            }
            _ => Event::Other(pdu.clone()),
        })
    }
}
