//! Links to push_server: the original's `CPushServConn` (`PushServConn.cpp`, spec §6.4).
//!
//! Every configured push_server (`PushServerIP<n>`/`PushServerPort<n>`) gets a link, kept
//! alive with a heartbeat every 5 s (push_server closes a session silent for 30 s) and
//! reconnected with the usual back-off. Push requests go to the **current** link: the one
//! connected most recently. When the current link closes, another connected one (if any)
//! becomes current; the original forgets the current link on any close and stops pushing
//! until a link connects again. push_server's answers (`IMPushToUserRsp`, one result per
//! token) are read and only logged.

use netlib::{CloseReason, ConnId, Net};
use tt_common::{ServerLinks, pdu_io};
use tt_proto::ids::cid;
use tt_proto::pb::base_define::{UserStat, UserStatType};
use tt_proto::pb::server::{ImPushToUserReq, ImPushToUserRsp};
use tt_proto::pdu::Header;
use tt_proto::required::decode_checked;
use tt_proto::values::{PUSH_TYPE_NORMAL, PUSH_TYPE_SILENT};

pub struct PushLinks {
    pub(super) links: ServerLinks,
    current: Option<ConnId>,
}

impl PushLinks {
    pub fn new(targets: Vec<(String, u16)>) -> Result<PushLinks, String> {
        Ok(PushLinks {
            links: ServerLinks::new("push_server", targets)?,
            current: None,
        })
    }

    /// True if a push_server is configured (without one, no push is prepared).
    pub fn configured(&self) -> bool {
        !self.links.is_empty()
    }

    /// A link is up: it becomes the current one.
    pub fn connected(&mut self, net: &mut Net, conn: ConnId) {
        if self.links.on_connect(conn, net.now()).is_some() {
            self.current = Some(conn);
        }
    }

    /// A link is gone; if it was the current one, another connected link takes its place.
    pub fn closed(&mut self, conn: ConnId, reason: CloseReason) {
        log::debug!("push_server link {conn:?} closed: {reason:?}");
        self.links.on_close(conn);
        if self.current == Some(conn) {
            self.current = self.links.open_conns().last();
        }
    }

    /// Sends a push request to the current link; dropped (logged) without one.
    pub fn send(&self, net: &mut Net, req: &ImPushToUserReq) {
        match self.current {
            Some(conn) => {
                pdu_io::send(net, conn, 0, req);
            }
            None => log::warn!(
                "no push_server link: push of {} tokens dropped",
                req.user_token_list.len()
            ),
        }
    }

    /// Sends a push request whose receivers' presence route_server reported: a receiver with
    /// a PC client online somewhere gets a silent push (badge only), any other a normal one.
    pub fn send_with_presence(&self, net: &mut Net, mut req: ImPushToUserReq, stats: &[UserStat]) {
        let online = UserStatType::UserStatusOnline as i32;
        for entry in &mut req.user_token_list {
            let pc_online = stats
                .iter()
                .any(|s| s.user_id == entry.user_id && s.status == online);
            entry.push_type = if pc_online {
                PUSH_TYPE_SILENT
            } else {
                PUSH_TYPE_NORMAL
            };
        }
        self.send(net, &req);
    }

    /// A PDU from push_server: its answers are logged (refusals at debug level); heartbeats
    /// and anything else are ignored.
    pub fn answered(&self, conn: ConnId, header: &Header, body: &[u8]) {
        if header.command_id != cid::CID_OTHER_PUSH_TO_USER_RSP {
            return;
        }
        match decode_checked::<ImPushToUserRsp>(body) {
            Ok(rsp) => {
                let refused = rsp
                    .push_result_list
                    .iter()
                    .filter(|r| r.result_code != 0)
                    .count();
                if refused > 0 {
                    log::debug!(
                        "push_server refused {refused} of {} tokens",
                        rsp.push_result_list.len()
                    );
                }
            }
            Err(e) => log::debug!("push_server link {conn:?}: bad push answer ({e}): ignored"),
        }
    }
}
