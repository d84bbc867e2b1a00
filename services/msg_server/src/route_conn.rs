//! Links to route_server: mirrors the original's `CRouteServConn` (`RouteServConn.cpp`).
//!
//! Every configured route_server gets a link. The connected link with the oldest connect time
//! is the **master**: everything msg_server sends to "the route server" goes there, except the
//! per-connection status updates, which go to every connected link. A master is elected when a
//! link connects and there is none, and again when the master's link closes; each election is
//! announced to the elected link with `IMRoleSet{master: 1}`. On every connect msg_server sends
//! that link the list of its logged-in connections (`IMOnlineUserInfo`).
//!
//! What route_server relays from the other msg_servers is delivered to the local connections
//! it concerns (spec msg_server.md §11.2).

use netlib::{CloseReason, ConnId, Net};
use tt_common::ServerLinks;
use tt_common::pdu_io;
use tt_proto::attach::{ATTACH_TYPE_HANDLE, split_pdu_attach};
use tt_proto::ids::{cid, sid};
use tt_proto::pb::base_define::ServerUserStat;
use tt_proto::pb::buddy::{ImRemoveSessionNotify, ImUsersStatRsp, ImpcLoginStatusNotify};
use tt_proto::pb::file::ImFileNotify;
use tt_proto::pb::group::ImGroupChangeMemberNotify;
use tt_proto::pb::message::{ImMsgData, ImMsgDataReadNotify};
use tt_proto::pb::server::{
    ImOnlineUserInfo, ImRoleSet, ImServerKickUser, ImServerPcLoginStatusNotify, ImUserStatusUpdate,
};
use tt_proto::pb::switch_service::Imp2pCmdMsg;
use tt_proto::pdu::Header;
use tt_proto::required::decode_checked;

use crate::server::{MsgServer, raw_bytes, send_all};

/// `IMUserStatusUpdate.user_status` values.
pub const USER_STATUS_ONLINE: u32 = 1;
pub const USER_STATUS_OFFLINE: u32 = 2;

pub struct RouteLinks {
    pub links: ServerLinks,
    pub master: Option<ConnId>,
}

impl RouteLinks {
    pub fn new(targets: Vec<(String, u16)>) -> Result<RouteLinks, String> {
        Ok(RouteLinks {
            links: ServerLinks::new("route_server", targets)?,
            master: None,
        })
    }

    /// "Route server available": at least one link is connected.
    pub fn available(&self) -> bool {
        self.links.any_open()
    }

    /// Sends bytes to the master link; false (dropped) when there is none.
    pub fn send_to_master(&self, net: &mut Net, bytes: &[u8]) -> bool {
        match self.master {
            Some(m) => net.send(m, bytes),
            None => {
                log::debug!("no master route_server: PDU dropped");
                false
            }
        }
    }

    /// Sends a received PDU (every header byte kept) to the master link, without copying it
    /// first; false (dropped) when there is no master.
    pub fn send_raw_to_master(&self, net: &mut Net, header: &Header, body: &[u8]) -> bool {
        match self.master {
            Some(m) => crate::server::send_raw(net, m, header, body),
            None => {
                log::debug!("no master route_server: PDU dropped");
                false
            }
        }
    }

    /// Sends a message to the master link (seq 0 unless given).
    pub fn send_msg_to_master<M: tt_proto::Command>(
        &self,
        net: &mut Net,
        seq: u16,
        msg: &M,
    ) -> bool {
        match self.master {
            Some(m) => pdu_io::send(net, m, seq, msg),
            None => false,
        }
    }

    /// `IMUserStatusUpdate` to every connected route_server.
    pub fn send_status_update(&self, net: &mut Net, user_id: u32, status: u32, client_type: i32) {
        let msg = ImUserStatusUpdate {
            user_status: status,
            user_id,
            client_type,
        };
        for conn in self.links.open_conns().collect::<Vec<_>>() {
            pdu_io::send(net, conn, 0, &msg);
        }
    }

    /// Elects the oldest connected link as master and tells it.
    fn elect(&mut self, net: &mut Net) {
        self.master = self.links.oldest_open();
        if let Some(m) = self.master {
            log::info!("master route_server link is now {m:?}");
            pdu_io::send(net, m, 0, &ImRoleSet { master: 1 });
        }
    }
}

impl MsgServer {
    pub(crate) fn on_route_connect(&mut self, net: &mut Net, conn: ConnId) {
        if self.route.links.on_connect(conn, net.now()).is_none() {
            return;
        }
        if self.route.master.is_none() {
            self.route.elect(net);
        }
        let user_stat_list = self
            .users
            .users()
            .flat_map(|u| {
                u.conns().map(|(_, c)| ServerUserStat {
                    user_id: u.user_id,
                    status: c.online_status,
                    client_type: c.client_type,
                })
            })
            .collect();
        pdu_io::send(net, conn, 0, &ImOnlineUserInfo { user_stat_list });
    }

    pub(crate) fn on_route_close(&mut self, net: &mut Net, conn: ConnId, reason: CloseReason) {
        log::debug!("route_server link {conn:?} closed: {reason:?}");
        self.route.links.on_close(conn);
        if self.route.master == Some(conn) {
            self.route.master = None;
            self.route.elect(net);
        }
    }

    /// A PDU from route_server (spec msg_server.md §11.2).
    pub(crate) fn on_route_pdu(
        &mut self,
        net: &mut Net,
        conn: ConnId,
        header: &Header,
        body: &[u8],
    ) {
        match header.command_id {
            cid::CID_OTHER_HEARTBEAT => {}
            cid::CID_OTHER_SERVER_KICK_USER => {
                let Some(m) = parse::<ImServerKickUser>(conn, header, body) else {
                    return;
                };
                let victims = self
                    .users
                    .get(m.user_id)
                    .map(|u| u.same_kind_conns(m.client_type, None))
                    .unwrap_or_default();
                for v in victims {
                    self.kick(net, v, m.user_id, m.reason as i32);
                }
            }
            cid::CID_BUDDY_LIST_STATUS_NOTIFY => {
                let conns = self.users.all_conns(Some(false));
                send_all(net, &conns, &raw_bytes(header, body));
            }
            cid::CID_BUDDY_LIST_USERS_STATUS_RESPONSE => {
                self.on_users_status_rsp(net, conn, header, body);
            }
            cid::CID_MSG_READ_NOTIFY => {
                let Some(m) = parse::<ImMsgDataReadNotify>(conn, header, body) else {
                    return;
                };
                self.send_to_user(net, m.user_id, None, &raw_bytes(header, body));
            }
            cid::CID_MSG_DATA => {
                let Some(m) = parse::<ImMsgData>(conn, header, body) else {
                    return;
                };
                self.on_route_msg_data(net, header, m);
            }
            cid::CID_SWITCH_P2P_CMD => {
                let Some(m) = parse::<Imp2pCmdMsg>(conn, header, body) else {
                    return;
                };
                let bytes = raw_bytes(header, body);
                self.send_to_user(net, m.from_user_id, None, &bytes);
                if m.to_user_id != m.from_user_id {
                    self.send_to_user(net, m.to_user_id, None, &bytes);
                }
            }
            cid::CID_OTHER_LOGIN_STATUS_NOTIFY => {
                let Some(m) = parse::<ImServerPcLoginStatusNotify>(conn, header, body) else {
                    return;
                };
                let Some(user) = self.users.get_mut(m.user_id) else {
                    return;
                };
                user.pc_login_status = m.login_status;
                let conns = user.conn_ids_of_kind(true, None);
                let notify = ImpcLoginStatusNotify {
                    user_id: m.user_id,
                    login_stat: if m.login_status == 1 { 1 } else { 2 },
                };
                let bytes = crate::server::pdu_bytes(
                    sid::SID_BUDDY_LIST,
                    cid::CID_BUDDY_LIST_PC_LOGIN_STATUS_NOTIFY,
                    0,
                    &notify,
                );
                send_all(net, &conns, &bytes);
            }
            cid::CID_BUDDY_LIST_REMOVE_SESSION_NOTIFY => {
                let Some(m) = parse::<ImRemoveSessionNotify>(conn, header, body) else {
                    return;
                };
                self.send_to_user(net, m.user_id, None, &raw_bytes(header, body));
            }
            cid::CID_BUDDY_LIST_SIGN_INFO_CHANGED_NOTIFY => {
                let conns = self.users.all_conns(None);
                send_all(net, &conns, &raw_bytes(header, body));
            }
            cid::CID_GROUP_CHANGE_MEMBER_NOTIFY => {
                let Some(m) = parse::<ImGroupChangeMemberNotify>(conn, header, body) else {
                    return;
                };
                let bytes = raw_bytes(header, body);
                for uid in m.chg_user_id_list.iter().chain(m.cur_user_id_list.iter()) {
                    self.send_to_user(net, *uid, None, &bytes);
                }
            }
            cid::CID_FILE_NOTIFY => {
                let Some(m) = parse::<ImFileNotify>(conn, header, body) else {
                    return;
                };
                self.send_to_user(net, m.to_user_id, None, &raw_bytes(header, body));
            }
            other => {
                log::debug!("route_server sent unhandled command {other:#06x}: ignored");
            }
        }
    }

    /// `IMUsersStatRsp`: a client's status query comes back (type 1). The push (4) and file
    /// (5) forms are never sent by this server.
    fn on_users_status_rsp(&mut self, net: &mut Net, conn: ConnId, header: &Header, body: &[u8]) {
        let Some(mut m) = parse::<ImUsersStatRsp>(conn, header, body) else {
            return;
        };
        let attach = m.attach_data.take().unwrap_or_default();
        let head = match split_pdu_attach(&attach) {
            Ok((head, _)) => head,
            Err(e) => {
                log::warn!("route_server users-status reply with bad attach_data ({e}): dropped");
                return;
            }
        };
        if head.attach_type != ATTACH_TYPE_HANDLE {
            log::debug!(
                "users-status reply with attach type {}: ignored",
                head.attach_type
            );
            return;
        }
        self.reply_to_client(net, m.user_id, head.handle, header, &m);
    }

    /// A single message stored by another msg_server: delivered to the local connections of its
    /// sender and its receiver (attach_data cleared, seq 0).
    fn on_route_msg_data(&mut self, net: &mut Net, header: &Header, mut m: ImMsgData) {
        if crate::msg_conn::is_group_msg(m.msg_type) {
            log::debug!(
                "group message {} to group {} from route_server: group delivery is not implemented here",
                m.msg_id,
                m.to_session_id
            );
            return;
        }
        let (from, to) = (m.from_user_id, m.to_session_id);
        let to_receiver = to != from && self.users.get(to).is_some();
        if self.users.get(from).is_none() && !to_receiver {
            return;
        }
        m.attach_data = None;
        let delivery = Header {
            seq_num: 0,
            ..*header
        };
        let bytes = crate::server::pdu_bytes_with_header(&delivery, &m);
        self.send_to_user(net, from, None, &bytes);
        if to_receiver {
            self.send_to_user(net, to, None, &bytes);
        }
    }
}

/// Strict proto2 parse of a server's PDU; a failure is logged and the PDU ignored.
pub(crate) fn parse<M: tt_proto::Command>(conn: ConnId, header: &Header, body: &[u8]) -> Option<M> {
    match decode_checked::<M>(body) {
        Ok(m) => Some(m),
        Err(e) => {
            log::warn!(
                "{conn:?}: cannot parse command {:#06x}: {e}: ignored",
                header.command_id
            );
            None
        }
    }
}
