//! Conversations and the message values: [`Session`], [`Message`] (built from what the server
//! sent, text decrypted with the client's cipher), the send ack and the unread counts.

use tt_proto::pb::base_define::{MsgInfo, MsgType, SessionType};

use super::Client;
use crate::{Result, text};

/// A conversation: a peer user (single chat) or a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Session {
    /// Peer user id or group id.
    pub id: u32,
    /// Single or group.
    pub kind: SessionType,
}

impl Session {
    /// A single chat with user `id`.
    pub fn user(id: u32) -> Session {
        Session {
            id,
            kind: SessionType::Single,
        }
    }

    /// A group chat.
    pub fn group(id: u32) -> Session {
        Session {
            id,
            kind: SessionType::Group,
        }
    }
}

impl From<u32> for Session {
    /// A bare id is a single chat with that user.
    fn from(id: u32) -> Session {
        Session::user(id)
    }
}

/// The ack of a stored message (`CID_MSG_DATA_ACK`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SentAck {
    /// The id db_proxy assigned (per conversation, increasing).
    pub msg_id: u32,
    /// The peer user id or group id.
    pub session_id: u32,
    /// `SessionType` value (1 single, 2 group).
    pub session_type: i32,
    /// The `seq_num` of the request (echoed by the ack).
    pub seq: u16,
    /// `user_id` of the ack (the sender, i.e. us).
    pub user_id: u32,
}

/// A chat message, received live or fetched from history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Sender.
    pub from: u32,
    /// Receiver user id (single) or group id (group).
    pub to: u32,
    /// Message id (0 only if the server sent 0).
    pub msg_id: u32,
    /// `MsgType` value (1 text, 2 audio, 17 group text, 18 group audio).
    pub msg_type: i32,
    /// `create_time` (unix seconds).
    pub create_time: u32,
    /// `msg_data` exactly as received (AES+base64 text for text messages of the original clients).
    pub raw: Vec<u8>,
    /// The decrypted text of a text message (lossy UTF-8); `None` for audio or if it does not
    /// decrypt (see `raw`). Without a cipher ([`Client::set_cipher`]`(None)`) this is `raw` as
    /// text.
    pub text: Option<String>,
}

impl Message {
    /// True for group message types (17, 18).
    pub fn is_group(&self) -> bool {
        MsgType::is_group(self.msg_type)
    }
}

fn is_text_type(t: i32) -> bool {
    t == MsgType::SingleText as i32 || t == MsgType::GroupText as i32
}

/// One session of the unread-count reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnreadSession {
    /// Peer user id or group id.
    pub session_id: u32,
    /// `SessionType` value.
    pub session_type: i32,
    /// Unread messages in it.
    pub unread_cnt: u32,
    /// Its newest message (`to` is us for single sessions, the group for groups; for single
    /// sessions the original db_proxy reports the peer as sender, storage-file.md quirk 10).
    pub latest: Message,
}

/// `CID_MSG_UNREAD_CNT_RESPONSE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnreadCounts {
    /// `total_cnt`.
    pub total: u32,
    /// One entry per session with unread messages.
    pub sessions: Vec<UnreadSession>,
}

impl Client {
    pub(super) fn encode_text(&self, text: &str) -> Result<Vec<u8>> {
        match &self.cipher {
            Some(c) => Ok(c.encrypt(text.as_bytes())?),
            None => Ok(text.as_bytes().to_vec()),
        }
    }

    /// Builds a [`Message`], decrypting text types.
    pub(super) fn make_message(
        &self,
        from: u32,
        to: u32,
        msg_id: u32,
        msg_type: i32,
        create_time: u32,
        raw: Vec<u8>,
    ) -> Message {
        let text = if !is_text_type(msg_type) || raw.is_empty() {
            None
        } else {
            match &self.cipher {
                Some(c) => match c.decrypt(&raw) {
                    Ok(p) => Some(text(&p)),
                    Err(e) => {
                        log::debug!("message {msg_id} from {from} does not decrypt: {e}");
                        None
                    }
                },
                None => Some(text(&raw)),
            }
        };
        Message {
            from,
            to,
            msg_id,
            msg_type,
            create_time,
            raw,
            text,
        }
    }

    pub(super) fn history_message(&self, s: Session, m: MsgInfo) -> Message {
        let to = match s.kind {
            SessionType::Group => s.id,
            SessionType::Single if m.from_session_id == s.id => self.user_id,
            SessionType::Single => s.id,
        };
        self.make_message(
            m.from_session_id,
            to,
            m.msg_id,
            m.msg_type,
            m.create_time,
            m.msg_data,
        )
    }
}

pub(super) fn unix_now() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as u32)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_from_id_is_single() {
        assert_eq!(Session::from(7), Session::user(7));
        assert_eq!(Session::group(3).kind, SessionType::Group);
    }
}
