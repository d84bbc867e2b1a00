//! Messages: sending text and data (waiting for the ack or not), delivery and read acks,
//! history, messages by id, the latest id, unread counts and the server time.

use tt_proto::pb::base_define::{MsgType, SessionType};
use tt_proto::pb::message;

use super::session::unix_now;
use super::{Client, Message, SentAck, Session, UnreadCounts, UnreadSession};
use crate::Result;

impl Client {
    /// Sends a text message to a user (encrypted with the cipher, if any) and waits for its ack.
    pub fn send_text(&mut self, to_user_id: u32, text: &str) -> Result<SentAck> {
        let data = self.encode_text(text)?;
        self.send_msg(to_user_id, MsgType::SingleText, data)
    }

    /// Sends a text message to a group and waits for its ack (the server only acks if we are a
    /// member).
    pub fn send_group_text(&mut self, group_id: u32, text: &str) -> Result<SentAck> {
        let data = self.encode_text(text)?;
        self.send_msg(group_id, MsgType::GroupText, data)
    }

    /// Sends `msg_data` as is (no encryption) with any message type, and waits for the ack.
    pub fn send_msg(&mut self, to: u32, msg_type: MsgType, msg_data: Vec<u8>) -> Result<SentAck> {
        let req = self.msg_data(to, msg_type, msg_data);
        let (seq, ack): (_, message::ImMsgDataAck) = self.request(&req, "message ack")?;
        Ok(SentAck {
            msg_id: ack.msg_id,
            session_id: ack.session_id,
            session_type: ack.session_type,
            seq,
            user_id: ack.user_id,
        })
    }

    /// Sends a `CID_MSG_DATA` without waiting for the ack; returns its seq. The ack (if any)
    /// will arrive as [`crate::Event::Other`].
    pub fn send_msg_nowait(
        &mut self,
        to: u32,
        msg_type: MsgType,
        msg_data: Vec<u8>,
    ) -> Result<u16> {
        let req = self.msg_data(to, msg_type, msg_data);
        self.send_command(&req)
    }

    /// A `CID_MSG_DATA` body from this user, stamped now.
    fn msg_data(&self, to: u32, msg_type: MsgType, msg_data: Vec<u8>) -> message::ImMsgData {
        message::ImMsgData {
            from_user_id: self.user_id,
            to_session_id: to,
            msg_id: 0,
            create_time: unix_now(),
            msg_type: msg_type as i32,
            msg_data,
            attach_data: None,
        }
    }

    /// Acknowledges delivery of a received message (done automatically unless
    /// [`Client::set_auto_ack`]`(false)`).
    pub fn ack_delivery(&mut self, m: &Message) -> Result<()> {
        let (session_id, session_type) = if m.is_group() {
            (m.to, SessionType::Group)
        } else {
            (m.from, SessionType::Single)
        };
        let ack = message::ImMsgDataAck {
            user_id: self.user_id,
            session_id,
            msg_id: m.msg_id,
            session_type: session_type as i32,
        };
        self.send_command(&ack).map(|_| ())
    }

    /// Marks a conversation read up to `msg_id` (`CID_MSG_READ_ACK`; no reply exists).
    pub fn read_ack(&mut self, session: impl Into<Session>, msg_id: u32) -> Result<()> {
        let s = session.into();
        let req = message::ImMsgDataReadAck {
            user_id: self.user_id,
            session_id: s.id,
            msg_id,
            session_type: s.kind as i32,
        };
        self.send_command(&req).map(|_| ())
    }

    /// History of a conversation: up to `count` messages, newest first, starting at
    /// `msg_id_begin` (0 = from the newest).
    pub fn get_msg_list(
        &mut self,
        session: impl Into<Session>,
        msg_id_begin: u32,
        count: u32,
    ) -> Result<Vec<Message>> {
        let s = session.into();
        let req = message::ImGetMsgListReq {
            user_id: self.user_id,
            session_type: s.kind as i32,
            session_id: s.id,
            msg_id_begin,
            msg_cnt: count,
            attach_data: None,
        };
        let (_, rsp): (_, message::ImGetMsgListRsp) = self.request(&req, "message list")?;
        Ok(rsp
            .msg_list
            .into_iter()
            .map(|m| self.history_message(s, m))
            .collect())
    }

    /// Messages of a conversation by id.
    pub fn get_msgs_by_id(
        &mut self,
        session: impl Into<Session>,
        msg_ids: &[u32],
    ) -> Result<Vec<Message>> {
        let s = session.into();
        let req = message::ImGetMsgByIdReq {
            user_id: self.user_id,
            session_type: s.kind as i32,
            session_id: s.id,
            msg_id_list: msg_ids.to_vec(),
            attach_data: None,
        };
        let (_, rsp): (_, message::ImGetMsgByIdRsp) = self.request(&req, "messages by id")?;
        Ok(rsp
            .msg_list
            .into_iter()
            .map(|m| self.history_message(s, m))
            .collect())
    }

    /// The newest message id of a conversation.
    pub fn latest_msg_id(&mut self, session: impl Into<Session>) -> Result<u32> {
        let s = session.into();
        let req = message::ImGetLatestMsgIdReq {
            user_id: self.user_id,
            session_type: s.kind as i32,
            session_id: s.id,
            attach_data: None,
        };
        let (_, rsp): (_, message::ImGetLatestMsgIdRsp) = self.request(&req, "latest msg id")?;
        Ok(rsp.latest_msg_id)
    }

    /// Unread counts per conversation.
    pub fn unread_counts(&mut self) -> Result<UnreadCounts> {
        let req = message::ImUnreadMsgCntReq {
            user_id: self.user_id,
            attach_data: None,
        };
        let (_, rsp): (_, message::ImUnreadMsgCntRsp) = self.request(&req, "unread counts")?;
        let me = self.user_id;
        let sessions = rsp
            .unreadinfo_list
            .into_iter()
            .map(|u| {
                let to = if MsgType::is_group(u.latest_msg_type) || u.session_type == 2 {
                    u.session_id
                } else {
                    me
                };
                UnreadSession {
                    session_id: u.session_id,
                    session_type: u.session_type,
                    unread_cnt: u.unread_cnt,
                    latest: self.make_message(
                        u.latest_msg_from_user_id,
                        to,
                        u.latest_msg_id,
                        u.latest_msg_type,
                        0,
                        u.latest_msg_data,
                    ),
                }
            })
            .collect();
        Ok(UnreadCounts {
            total: rsp.total_cnt,
            sessions,
        })
    }

    /// Server time (`CID_MSG_TIME_REQUEST`), unix seconds.
    pub fn server_time(&mut self) -> Result<u32> {
        let (_, rsp): (_, message::ImClientTimeRsp) =
            self.request(&message::ImClientTimeReq {}, "server time")?;
        Ok(rsp.server_time)
    }
}
