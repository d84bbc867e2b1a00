//! Links to login_server: the original's `CLoginServConn` (`LoginServConn.cpp`).
//!
//! On connect msg_server introduces itself with `IMMsgServInfo` (its public addresses, port,
//! capacity and current logged-in connection count); afterwards it reports every login and
//! logout of a connection with `IMUserCntUpdate` to every open login_server link, and when it
//! stops it says `CID_OTHER_STOP_RECV_PACKET` (no new users). Nothing
//! login_server sends is acted upon (heartbeats only refresh the link's receive time).

use netlib::{CloseReason, ConnId, Net};
use tt_common::{ServerLinks, pdu_io};
use tt_proto::pb::server::{ImMsgServInfo, ImStopReceivePacket, ImUserCntUpdate};
use tt_proto::values::UserCntAction;

use crate::settings::Settings;

pub struct LoginLinks {
    pub(super) links: ServerLinks,
    /// What this server tells login_server about itself (`cur_conn_cnt` filled in at connect).
    info: ImMsgServInfo,
}

impl LoginLinks {
    pub fn new(settings: &Settings) -> Result<LoginLinks, String> {
        Ok(LoginLinks {
            links: ServerLinks::new("login_server", settings.login_servers.clone())?,
            info: ImMsgServInfo {
                ip1: settings.ip_addr1.clone().into_bytes(),
                ip2: settings.ip_addr2.clone().into_bytes(),
                port: u32::from(settings.listen_port),
                max_conn_cnt: settings.max_conn_cnt,
                cur_conn_cnt: 0,
                host_name: host_name(),
            },
        })
    }

    /// "Login server available": at least one link is connected.
    pub fn available(&self) -> bool {
        self.links.any_open()
    }

    /// A link is up: `IMMsgServInfo` with the number of logged-in connections.
    pub fn connected(&mut self, net: &mut Net, conn: ConnId, cur_conn_cnt: usize) {
        if self.links.on_connect(conn, net.now()).is_none() {
            return;
        }
        self.info.cur_conn_cnt = cur_conn_cnt as u32;
        pdu_io::send(net, conn, 0, &self.info);
    }

    pub fn closed(&mut self, conn: ConnId, reason: CloseReason) {
        log::debug!("login_server link {conn:?} closed: {reason:?}");
        self.links.on_close(conn);
    }

    /// This server stops: every login_server is told `CID_OTHER_STOP_RECV_PACKET` (ours then
    /// never hands this server out again; the original's ignores it).
    pub fn stop_receiving(&self, net: &mut Net) {
        for conn in self.links.open_conns().collect::<Vec<_>>() {
            pdu_io::send(net, conn, 0, &ImStopReceivePacket { result: 0 });
        }
    }

    /// Sends `IMUserCntUpdate` to every connected login_server.
    pub fn send_user_cnt(&self, net: &mut Net, action: UserCntAction, user_id: u32) {
        let msg = ImUserCntUpdate {
            user_action: action as u32,
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
