//! Links to route_server: the original's `CRouteServConn` (`RouteServConn.cpp`).
//!
//! Every configured route_server gets a link. The connected link with the oldest connect time
//! is the **master**: everything msg_server sends to "the route server" goes there, except the
//! per-connection status updates, which go to every connected link. A master is elected when a
//! link connects and there is none, and again when the master's link closes; each election is
//! announced to the elected link with `IMRoleSet{master: 1}`. On every connect msg_server sends
//! that link the list of its logged-in connections (`IMOnlineUserInfo`). The election is
//! [`tt_common::pools::MasterLink`]; this module adds msg_server's ways of sending.

use netlib::{CloseReason, ConnId, Net};
use tt_common::pools::MasterLink;
use tt_common::{ServerLinks, pdu_io};
use tt_proto::Command;
use tt_proto::pb::base_define::{ServerUserStat, UserStatType};
use tt_proto::pb::server::{ImOnlineUserInfo, ImUserStatusUpdate};
use tt_proto::pdu::Header;

use crate::users::ImUserManager;

pub struct RouteLinks {
    pub(super) route: MasterLink,
}

impl RouteLinks {
    pub fn new(targets: Vec<(String, u16)>) -> Result<RouteLinks, String> {
        Ok(RouteLinks {
            route: MasterLink::new(ServerLinks::new("route_server", targets)?),
        })
    }

    /// "Route server available": at least one link is connected.
    pub fn available(&self) -> bool {
        self.route.links.any_open()
    }

    /// The master link, if one is connected.
    pub fn master(&self) -> Option<ConnId> {
        self.route.master()
    }

    /// A link is up: a master is elected if there is none, and the link is told who is
    /// logged in here.
    pub fn connected(&mut self, net: &mut Net, conn: ConnId, users: &ImUserManager) {
        if !self.route.connected(net, conn) {
            return;
        }
        let user_stat_list = users
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

    /// A link is gone; if it was the master, another is elected.
    pub fn closed(&mut self, net: &mut Net, conn: ConnId, reason: CloseReason) {
        log::debug!("route_server link {conn:?} closed: {reason:?}");
        self.route.closed(net, conn);
    }

    /// Sends bytes to the master link; false (dropped) when there is none.
    pub fn send_to_master(&self, net: &mut Net, bytes: &[u8]) -> bool {
        match self.master() {
            Some(m) => tt_common::pdu_io::send_bytes(net, m, bytes),
            None => {
                log::debug!("no master route_server: PDU dropped");
                false
            }
        }
    }

    /// Sends a received PDU (every header byte kept) to the master link, without copying it
    /// first; false (dropped) when there is no master.
    pub fn send_raw_to_master(&self, net: &mut Net, header: &Header, body: &[u8]) -> bool {
        match self.master() {
            Some(m) => pdu_io::send_raw(net, m, header, body),
            None => {
                log::debug!("no master route_server: PDU dropped");
                false
            }
        }
    }

    /// Sends a command of this server (seq 0) to the master link.
    pub fn send_msg_to_master<M: Command>(&self, net: &mut Net, msg: &M) -> bool {
        self.send_msg_seq_to_master(net, 0, msg)
    }

    /// Sends a command under `seq` to the master link; false (dropped) when there is none.
    pub fn send_msg_seq_to_master<M: Command>(&self, net: &mut Net, seq: u16, msg: &M) -> bool {
        match self.master() {
            Some(m) => pdu_io::send(net, m, seq, msg),
            None => false,
        }
    }

    /// `IMUserStatusUpdate` to every connected route_server.
    pub fn send_status_update(
        &self,
        net: &mut Net,
        user_id: u32,
        status: UserStatType,
        client_type: i32,
    ) {
        let msg = ImUserStatusUpdate {
            user_status: status as u32,
            user_id,
            client_type,
        };
        for conn in self.route.links.open_conns().collect::<Vec<_>>() {
            pdu_io::send(net, conn, 0, &msg);
        }
    }
}
