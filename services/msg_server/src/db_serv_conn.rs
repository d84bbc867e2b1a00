//! Links to db_proxy_server: mirrors the original's `CDBServConn` (`DBServConn.cpp`).
//!
//! With D configured db_proxy entries and C = `ConcurrentDBConnCnt`, D×C links are opened
//! (the C links of entry 1 first, then those of entry 2, …). The first ⌊D/2⌋×C links form the
//! **login pool** (validation, unread counts, message lists, messages by id, recent sessions,
//! user info), the rest the **general pool**; each pool falls back to the other when it has no
//! connected link. Within a pool a connected link is chosen at random. Nothing is sent on
//! connect. A link that received `CID_OTHER_STOP_RECV_PACKET` is no longer chosen.
//!
//! Replies carry the client's handle in `attach_data`; they are routed to the client through
//! the user id in the reply and that handle (`reply_to_client`).

use std::collections::HashSet;

use netlib::{CloseReason, ConnId, Net};
use tt_common::ServerLinks;
use tt_proto::Command;
use tt_proto::attach::{DbAttachData, split_pdu_attach};
use tt_proto::ids::{cid, sid};
use tt_proto::pb::buddy::{
    ImAllUserRsp, ImChangeAvatarRsp, ImChangeSignInfoRsp, ImDepartmentRsp,
    ImRecentContactSessionRsp, ImRemoveSessionRsp, ImSignInfoChangedNotify, ImUsersInfoRsp,
};
use tt_proto::pb::file::ImFileHasOfflineRsp;
use tt_proto::pb::group::{
    ImGroupChangeMemberNotify, ImGroupChangeMemberRsp, ImGroupCreateRsp, ImGroupInfoListRsp,
    ImGroupShieldRsp, ImNormalGroupListRsp,
};
use tt_proto::pb::login::{ImPushShieldRsp, ImQueryPushShieldRsp};
use tt_proto::pb::message::{
    ImGetLatestMsgIdRsp, ImGetMsgByIdRsp, ImGetMsgListRsp, ImMsgData, ImMsgDataAck,
    ImUnreadMsgCntRsp,
};
use tt_proto::pdu::Header;

use crate::msg_conn::{Routed, is_group_msg};
use crate::route_conn::parse;
use crate::server::{MsgServer, pdu_bytes_with_header};

/// Which pool a request is taken from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pool {
    Login,
    General,
}

pub struct DbPool {
    pub links: ServerLinks,
    /// Slots `0..login_slots` are the login pool.
    login_slots: usize,
    /// Links that asked not to be sent anything more (`CID_OTHER_STOP_RECV_PACKET`).
    stopped: HashSet<ConnId>,
}

impl DbPool {
    pub fn new(servers: &[(String, u16)], per_server: usize) -> Result<DbPool, String> {
        let targets = servers
            .iter()
            .flat_map(|t| std::iter::repeat_n(t.clone(), per_server))
            .collect();
        Ok(DbPool {
            links: ServerLinks::new("db_proxy_server", targets)?,
            login_slots: (servers.len() / 2) * per_server,
            stopped: HashSet::new(),
        })
    }

    /// Uniformly at random among the usable links of `range` (no allocation: this runs for
    /// every request).
    fn pick_in(&self, range: std::ops::Range<usize>, r: u64) -> Option<ConnId> {
        let usable = || {
            self.links.slots()[range.clone()]
                .iter()
                .filter_map(|s| s.open_conn())
                .filter(|c| self.stopped.is_empty() || !self.stopped.contains(c))
        };
        let n = usable().count() as u64;
        if n == 0 {
            return None;
        }
        usable().nth((r % n) as usize)
    }

    /// A connected link of `pool`, else of the other pool.
    pub fn pick(&self, pool: Pool, r: u64) -> Option<ConnId> {
        let login = 0..self.login_slots;
        let general = self.login_slots..self.links.len();
        match pool {
            Pool::Login => self.pick_in(login, r).or_else(|| self.pick_in(general, r)),
            Pool::General => self.pick_in(general, r).or_else(|| self.pick_in(login, r)),
        }
    }
}

impl MsgServer {
    /// A connected db link of `pool` (random), if any.
    pub(crate) fn pick_db(&mut self, pool: Pool) -> Option<ConnId> {
        let r = self.random();
        self.db.pick(pool, r)
    }

    pub(crate) fn on_db_connect(&mut self, net: &mut Net, conn: ConnId) {
        self.db.links.on_connect(conn, net.now());
    }

    pub(crate) fn on_db_close(&mut self, conn: ConnId, reason: CloseReason) {
        log::debug!("db_proxy link {conn:?} closed: {reason:?}");
        self.db.stopped.remove(&conn);
        self.db.links.on_close(conn);
    }

    /// A PDU from db_proxy (spec msg_server.md §11.1).
    pub(crate) fn on_db_pdu(&mut self, net: &mut Net, conn: ConnId, header: &Header, body: &[u8]) {
        match header.command_id {
            cid::CID_OTHER_HEARTBEAT => {}
            cid::CID_OTHER_VALIDATE_RSP => self.on_validate_rsp(net, conn, header, body),
            cid::CID_LOGIN_RES_DEVICETOKEN => {
                log::debug!("db_proxy answered a device-token request");
            }
            cid::CID_LOGIN_RES_PUSH_SHIELD => {
                self.route_db_reply::<ImPushShieldRsp>(net, conn, header, body);
            }
            cid::CID_LOGIN_RES_QUERY_PUSH_SHIELD => {
                self.route_db_reply::<ImQueryPushShieldRsp>(net, conn, header, body);
            }
            cid::CID_MSG_UNREAD_CNT_RESPONSE => {
                self.route_db_reply::<ImUnreadMsgCntRsp>(net, conn, header, body);
            }
            cid::CID_MSG_LIST_RESPONSE => {
                self.route_db_reply::<ImGetMsgListRsp>(net, conn, header, body);
            }
            cid::CID_MSG_GET_BY_MSG_ID_RES => {
                self.route_db_reply::<ImGetMsgByIdRsp>(net, conn, header, body);
            }
            cid::CID_MSG_GET_LATEST_MSG_ID_RSP => {
                self.route_db_reply::<ImGetLatestMsgIdRsp>(net, conn, header, body);
            }
            cid::CID_MSG_DATA => self.on_db_msg_data(net, conn, header, body),
            cid::CID_BUDDY_LIST_RECENT_CONTACT_SESSION_RESPONSE => {
                self.route_db_reply::<ImRecentContactSessionRsp>(net, conn, header, body);
            }
            cid::CID_BUDDY_LIST_ALL_USER_RESPONSE => {
                self.route_db_reply::<ImAllUserRsp>(net, conn, header, body);
            }
            cid::CID_BUDDY_LIST_USER_INFO_RESPONSE => {
                self.route_db_reply::<ImUsersInfoRsp>(net, conn, header, body);
            }
            cid::CID_BUDDY_LIST_REMOVE_SESSION_RES => {
                self.route_db_reply::<ImRemoveSessionRsp>(net, conn, header, body);
            }
            cid::CID_BUDDY_LIST_DEPARTMENT_RESPONSE => {
                self.route_db_reply::<ImDepartmentRsp>(net, conn, header, body);
            }
            cid::CID_BUDDY_LIST_CHANGE_AVATAR_RESPONSE => {
                let Some(mut m) = parse::<ImChangeAvatarRsp>(conn, header, body) else {
                    return;
                };
                m.attach_data = None;
                let bytes = pdu_bytes_with_header(header, &m);
                self.send_to_user(net, m.user_id, None, &bytes);
            }
            cid::CID_BUDDY_LIST_CHANGE_SIGN_INFO_RESPONSE => {
                if let Some(m) = self.route_db_reply::<ImChangeSignInfoRsp>(net, conn, header, body)
                    && m.result_code == 0
                {
                    let notify = ImSignInfoChangedNotify {
                        changed_user_id: m.user_id,
                        sign_info: m.sign_info.unwrap_or_default(),
                    };
                    self.route.send_msg_to_master(net, 0, &notify);
                }
            }
            cid::CID_OTHER_STOP_RECV_PACKET => {
                log::warn!("db_proxy link {conn:?} asked to stop receiving: no longer used");
                self.db.stopped.insert(conn);
            }
            cid::CID_GROUP_NORMAL_LIST_RESPONSE => {
                self.route_db_reply::<ImNormalGroupListRsp>(net, conn, header, body);
            }
            cid::CID_GROUP_CREATE_RESPONSE => {
                self.route_db_reply::<ImGroupCreateRsp>(net, conn, header, body);
            }
            cid::CID_GROUP_SHIELD_GROUP_RESPONSE => {
                self.route_db_reply::<ImGroupShieldRsp>(net, conn, header, body);
            }
            cid::CID_GROUP_INFO_RESPONSE => self.on_group_info_rsp(net, conn, header, body),
            cid::CID_GROUP_CHANGE_MEMBER_RESPONSE => {
                let req = self.route_db_reply::<ImGroupChangeMemberRsp>(net, conn, header, body);
                if let Some(m) = req
                    && m.result_code == 0
                {
                    let notify = ImGroupChangeMemberNotify {
                        user_id: m.user_id,
                        change_type: m.change_type,
                        group_id: m.group_id,
                        cur_user_id_list: m.cur_user_id_list.clone(),
                        chg_user_id_list: m.chg_user_id_list.clone(),
                    };
                    let bytes = crate::server::pdu_bytes(
                        sid::SID_GROUP,
                        cid::CID_GROUP_CHANGE_MEMBER_NOTIFY,
                        0,
                        &notify,
                    );
                    self.route.send_to_master(net, &bytes);
                    for uid in m.chg_user_id_list.iter().chain(m.cur_user_id_list.iter()) {
                        self.send_to_user(net, *uid, None, &bytes);
                    }
                }
            }
            cid::CID_FILE_HAS_OFFLINE_RES => {
                self.route_db_reply::<ImFileHasOfflineRsp>(net, conn, header, body);
            }
            other => {
                log::debug!("db_proxy sent unhandled command {other:#06x}: ignored");
            }
        }
    }

    /// The standard routing of a db_proxy reply: parse, read the handle from the (12-byte or
    /// longer) attach_data, find that logged-in connection of the reply's user, clear
    /// attach_data and forward under the received header (so the client sees its own seq).
    /// Returns the parsed reply (attach cleared) for follow-up work.
    fn route_db_reply<M: Command + Routed>(
        &mut self,
        net: &mut Net,
        conn: ConnId,
        header: &Header,
        body: &[u8],
    ) -> Option<M> {
        let mut m = parse::<M>(conn, header, body)?;
        let attach = m.attach_mut().take().unwrap_or_default();
        match DbAttachData::decode(&attach) {
            Ok(a) => {
                self.reply_to_client(net, m.user_id(), a.handle, header, &m);
            }
            Err(e) => {
                log::warn!(
                    "db_proxy reply {:#06x} with bad attach_data ({e}): not delivered",
                    header.command_id
                );
            }
        }
        Some(m)
    }

    /// A stored message comes back from db_proxy (spec msg_server.md §10.2): ack to the
    /// sending connection, copy to the master route_server, delivery to the sender's other
    /// connections and the receiver's connections here.
    fn on_db_msg_data(&mut self, net: &mut Net, conn: ConnId, header: &Header, body: &[u8]) {
        let Some(mut m) = parse::<ImMsgData>(conn, header, body) else {
            return;
        };
        let handle = match DbAttachData::decode(m.attach_data.as_deref().unwrap_or_default()) {
            Ok(a) => a.handle,
            Err(e) => {
                log::warn!("stored message with bad attach_data ({e}): dropped");
                return;
            }
        };
        let from = m.from_user_id;
        let to = m.to_session_id;
        let sender = self.users.conn_by_handle(from, handle);
        if let Some(s) = sender
            && let Some(c) = self.clients.get_mut(&s)
        {
            c.end_request();
        }
        if m.msg_id == 0 {
            log::warn!("db_proxy did not store a message from {from} to {to}: no ack");
            return;
        }
        let group = is_group_msg(m.msg_type);
        if let Some(s) = sender {
            let ack = ImMsgDataAck {
                user_id: from,
                session_id: to,
                msg_id: m.msg_id,
                session_type: if group { 2 } else { 1 },
            };
            tt_common::pdu_io::send(net, s, header.seq_num, &ack);
        }
        self.route.send_raw_to_master(net, header, body);
        if group {
            log::debug!(
                "group message {} to group {to}: group delivery is not implemented here",
                m.msg_id
            );
            return;
        }
        // Encoded once for every local recipient, and only if there is one.
        let to_sender = self.users.has_conn_other_than(from, sender);
        let to_receiver = to != from && self.users.get(to).is_some();
        if !to_sender && !to_receiver {
            return;
        }
        m.attach_data = None;
        let delivery = Header {
            seq_num: 0,
            ..*header
        };
        let bytes = pdu_bytes_with_header(&delivery, &m);
        if to_sender {
            self.send_to_user(net, from, sender, &bytes);
        }
        if to_receiver {
            self.send_to_user(net, to, None, &bytes);
        }
    }

    /// `IMGroupInfoListRsp`: a client's group-info request (long attach without embedded data)
    /// is routed back; the group-message fan-out form is not produced by this server.
    fn on_group_info_rsp(&mut self, net: &mut Net, conn: ConnId, header: &Header, body: &[u8]) {
        let Some(mut m) = parse::<ImGroupInfoListRsp>(conn, header, body) else {
            return;
        };
        let attach = m.attach_data.take().unwrap_or_default();
        match split_pdu_attach(&attach) {
            Ok((head, [])) => {
                self.reply_to_client(net, m.user_id, head.handle, header, &m);
            }
            Ok(_) => log::debug!("group-info reply carrying a message: ignored"),
            Err(e) => log::warn!("group-info reply with bad attach_data ({e}): dropped"),
        }
    }

    /// Sends bytes to every logged-in connection of `user_id` here, except `except`.
    pub(crate) fn send_to_user(
        &self,
        net: &mut Net,
        user_id: u32,
        except: Option<ConnId>,
        bytes: &[u8],
    ) {
        if let Some(u) = self.users.get(user_id) {
            for (_, c) in u.conns() {
                if Some(c.conn) != except {
                    net.send(c.conn, bytes);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_split_by_half_of_the_entries() {
        let servers = vec![
            ("127.0.0.1".to_string(), 1),
            ("127.0.0.1".to_string(), 2),
            ("127.0.0.1".to_string(), 3),
        ];
        let pool = DbPool::new(&servers, 2).unwrap();
        assert_eq!(pool.links.len(), 6);
        assert_eq!(pool.login_slots, 2);
        let ports: Vec<u16> = pool.links.slots().iter().map(|s| s.port).collect();
        assert_eq!(ports, vec![1, 1, 2, 2, 3, 3]);
        // Nothing connected: nothing to pick from either pool.
        assert_eq!(pool.pick(Pool::Login, 7), None);
        assert_eq!(pool.pick(Pool::General, 7), None);
    }
}
