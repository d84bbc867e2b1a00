//! Links to login_server: mirrors the original's `CLoginServConn` (`LoginServConn.cpp`).
//!
//! On connect msg_server introduces itself with `IMMsgServInfo` (its public addresses, port,
//! capacity and current logged-in connection count); afterwards it reports every login and
//! logout of a connection with `IMUserCntUpdate` to every open login_server link. Nothing
//! login_server sends is acted upon (heartbeats only refresh the link's receive time).

use netlib::{CloseReason, ConnId, Net};
use tt_common::ServerLinks;
use tt_common::pdu_io;
use tt_proto::pb::server::{ImMsgServInfo, ImUserCntUpdate};

use crate::server::MsgServer;

/// `IMUserCntUpdate.user_action` values.
pub const USER_CNT_INC: u32 = 1;
pub const USER_CNT_DEC: u32 = 2;

pub struct LoginLinks {
    pub links: ServerLinks,
}

impl LoginLinks {
    pub fn new(targets: Vec<(String, u16)>) -> Result<LoginLinks, String> {
        Ok(LoginLinks {
            links: ServerLinks::new("login_server", targets)?,
        })
    }

    /// "Login server available": at least one link is connected.
    pub fn available(&self) -> bool {
        self.links.any_open()
    }

    /// Sends `IMUserCntUpdate` to every connected login_server.
    pub fn send_user_cnt(&self, net: &mut Net, action: u32, user_id: u32) {
        let msg = ImUserCntUpdate {
            user_action: action,
            user_id,
        };
        for conn in self.links.open_conns().collect::<Vec<_>>() {
            pdu_io::send(net, conn, 0, &msg);
        }
    }
}

/// The machine's host name (reported to login_server).
fn host_name() -> Vec<u8> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_string())
        .into_bytes()
}

impl MsgServer {
    pub(crate) fn on_login_connect(&mut self, net: &mut Net, conn: ConnId) {
        if self.login.links.on_connect(conn, net.now()).is_none() {
            return;
        }
        let info = ImMsgServInfo {
            ip1: self.cfg.ip_addr1.clone().into_bytes(),
            ip2: self.cfg.ip_addr2.clone().into_bytes(),
            port: u32::from(self.cfg.listen_port),
            max_conn_cnt: self.cfg.max_conn_cnt,
            cur_conn_cnt: self.users.total_conns() as u32,
            host_name: host_name(),
        };
        pdu_io::send(net, conn, 0, &info);
    }

    pub(crate) fn on_login_close(&mut self, conn: ConnId, reason: CloseReason) {
        log::debug!("login_server link {conn:?} closed: {reason:?}");
        self.login.links.on_close(conn);
    }
}
