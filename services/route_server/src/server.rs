//! The route_server state machine (the original's `CRouteConn` plus the global user map).
//!
//! Every accepted connection is a route link (a msg_server or an http_msg_server); all are
//! treated alike. Per link: heartbeat after 5 s of send silence, closed after 30 s of receive
//! silence, closed on a framing error. Commands (§4.3):
//! - `CID_OTHER_HEARTBEAT`: nothing (any input refreshes the receive time);
//! - `CID_OTHER_ONLINE_USER_INFO`: the link's sessions (sent after every connect);
//! - `CID_OTHER_USER_STATUS_UPDATE`: one session in or out, with the presence broadcasts;
//! - `CID_OTHER_ROLE_SET`: the link's master flag (kept, unused, as in the original);
//! - `CID_BUDDY_LIST_USERS_STATUS_REQUEST`: answered on the link;
//! - verbatim relays to every other link, and the sign-info notify to every link.
//!
//! Differences from the original are listed in docs/COMPATIBILITY.md.

use std::collections::HashMap;

use netlib::{CloseReason, ConnId, ListenerId, Net};
use tt_common::metrics::Scrape;
use tt_common::pdu_io::{self, decode_or_log, peer_name};
use tt_common::{Accepted, KeepAlive, PduService};
use tt_proto::Command;
use tt_proto::ids::cid;
use tt_proto::pb::base_define::UserStat;
use tt_proto::pb::buddy::{ImUserStatNotify, ImUsersStatReq, ImUsersStatRsp};
use tt_proto::pb::server::{
    ImOnlineUserInfo, ImRoleSet, ImServerPcLoginStatusNotify, ImUserStatusUpdate,
};
use tt_proto::pdu::{DEFAULT_MAX_PDU_LEN, Header};
use tt_proto::values::pc_login_status;

use crate::presence::{
    Applied, Presence, USER_STATUS_LEAVE, USER_STATUS_OFFLINE, USER_STATUS_ONLINE, is_pc_type,
};

/// Largest PDU a link may send (a relayed message can be large; the original had no limit).
pub const MAX_PDU_LEN: u32 = DEFAULT_MAX_PDU_LEN;

/// Per-link state besides its sessions (which live in [`Presence`]).
#[derive(Debug, Default)]
struct Link {
    /// Set by `CID_OTHER_ROLE_SET`; unused, as in the original (R5).
    master: bool,
}

/// Who receives a broadcast.
#[derive(Clone, Copy, PartialEq, Eq)]
enum To {
    All,
    AllBut(ConnId),
}

pub struct RouteServer {
    listeners: Vec<ListenerId>,
    links: HashMap<ConnId, Link>,
    presence: Presence,
}

impl RouteServer {
    pub fn new(listeners: Vec<ListenerId>) -> RouteServer {
        RouteServer {
            listeners,
            links: HashMap::new(),
            presence: Presence::new(),
        }
    }

    fn handle(&mut self, net: &mut Net, conn: ConnId, header: &Header, body: &[u8]) {
        match header.command_id {
            cid::CID_OTHER_ONLINE_USER_INFO => self.on_online_user_info(net, conn, body),
            cid::CID_OTHER_USER_STATUS_UPDATE => self.on_status_update(net, conn, body),
            cid::CID_OTHER_ROLE_SET => self.on_role_set(net, conn, body),
            cid::CID_BUDDY_LIST_USERS_STATUS_REQUEST => {
                self.on_users_status(net, conn, header, body)
            }
            cid::CID_MSG_DATA
            | cid::CID_SWITCH_P2P_CMD
            | cid::CID_MSG_READ_NOTIFY
            | cid::CID_OTHER_SERVER_KICK_USER
            | cid::CID_GROUP_CHANGE_MEMBER_NOTIFY
            | cid::CID_FILE_NOTIFY
            | cid::CID_BUDDY_LIST_REMOVE_SESSION_NOTIFY => {
                self.relay(net, To::AllBut(conn), header, body)
            }
            cid::CID_BUDDY_LIST_SIGN_INFO_CHANGED_NOTIFY => self.relay(net, To::All, header, body),
            other => log::warn!(
                "link {conn:?} ({}): unhandled command 0x{other:04x} ({}), ignored",
                peer_name(net, conn),
                tt_proto::ids::cid_name(other).unwrap_or("unknown")
            ),
        }
    }

    fn on_role_set(&mut self, net: &mut Net, conn: ConnId, body: &[u8]) {
        let Some(msg) = decode_or_log::<ImRoleSet>(net, conn, body) else {
            return;
        };
        if let Some(link) = self.links.get_mut(&conn) {
            link.master = msg.master == 1;
            log::info!(
                "link {conn:?} ({}): master = {}",
                peer_name(net, conn),
                link.master
            );
        }
    }

    /// A msg_server's hello: every session it has. No reply. Users whose first PC session
    /// appears through it are announced online (the counterpart of the offline notices sent
    /// when a link dies).
    fn on_online_user_info(&mut self, net: &mut Net, conn: ConnId, body: &[u8]) {
        let Some(msg) = decode_or_log::<ImOnlineUserInfo>(net, conn, body) else {
            return;
        };
        let mut was_pc: HashMap<u32, bool> = HashMap::new();
        let mut added = 0usize;
        for stat in &msg.user_stat_list {
            was_pc
                .entry(stat.user_id)
                .or_insert_with(|| self.presence.pc_online(stat.user_id));
            match self.presence.hello_entry(
                conn,
                stat.user_id,
                stat.status as u32,
                stat.client_type,
            ) {
                Ok(Applied::Added) => added += 1,
                Ok(_) => {}
                Err(_) => {} // logged once per link by Presence
            }
        }
        log::info!(
            "link {conn:?} ({}): online user info, {} entries, {added} sessions added; \
             {} users / {} sessions known",
            peer_name(net, conn),
            msg.user_stat_list.len(),
            self.presence.user_count(),
            self.presence.total_sessions()
        );
        let mut came_online: Vec<u32> = was_pc
            .into_iter()
            .filter(|&(u, before)| !before && self.presence.pc_online(u))
            .map(|(u, _)| u)
            .collect();
        came_online.sort_unstable();
        for user_id in came_online {
            self.send_login_status(net, user_id, true);
            self.send_buddy_status(net, user_id, USER_STATUS_ONLINE);
        }
    }

    /// One session logged in or out on the link (§4.3 `CID_OTHER_USER_STATUS_UPDATE`).
    fn on_status_update(&mut self, net: &mut Net, conn: ConnId, body: &[u8]) {
        let Some(msg) = decode_or_log::<ImUserStatusUpdate>(net, conn, body) else {
            return;
        };
        let (s, t, u) = (msg.user_status, msg.client_type, msg.user_id);
        if !(USER_STATUS_ONLINE..=USER_STATUS_LEAVE).contains(&s) {
            // R4: the original aborted on this.
            log::warn!(
                "link {conn:?} ({}): status update of user {u} with invalid status {s}, ignored",
                peer_name(net, conn)
            );
            return;
        }
        let applied = match self.presence.update(conn, u, s, t) {
            Ok(a) => a,
            Err(_) => return, // refused (cap): logged once per link by Presence
        };
        log::debug!(
            "link {conn:?}: user {u} status {s} type {t}: {applied:?}; pc online: {}",
            self.presence.pc_online(u)
        );
        let offline = s == USER_STATUS_OFFLINE;
        let pc = is_pc_type(t);
        let present = self.presence.contains(u);
        let pc_online = self.presence.pc_online(u);
        // Rule 2: PC login status, only while the user still has a session somewhere.
        if present && ((offline && pc && !pc_online) || (!offline && pc_online)) {
            self.send_login_status(net, u, !offline);
        }
        // Rule 3: buddy status for PC clients, except a logout that leaves another PC session.
        if pc && !(present && offline && pc_online) {
            self.send_buddy_status(net, u, s);
        }
    }

    fn on_users_status(&mut self, net: &mut Net, conn: ConnId, header: &Header, body: &[u8]) {
        let Some(req) = decode_or_log::<ImUsersStatReq>(net, conn, body) else {
            return;
        };
        let rsp = ImUsersStatRsp {
            user_id: req.user_id,
            user_stat_list: req
                .user_id_list
                .iter()
                .map(|&id| UserStat {
                    user_id: id,
                    status: self.presence.status(id) as i32,
                })
                .collect(),
            attach_data: Some(req.attach_data.unwrap_or_default()),
        };
        pdu_io::reply(net, conn, header, &rsp);
    }

    /// `CID_OTHER_LOGIN_STATUS_NOTIFY` {user, 1/0} to every link.
    fn send_login_status(&self, net: &mut Net, user_id: u32, online: bool) {
        let msg = ImServerPcLoginStatusNotify {
            user_id,
            login_status: if online {
                pc_login_status::ONLINE
            } else {
                pc_login_status::OFFLINE
            },
        };
        self.broadcast_msg(net, To::All, &msg);
    }

    /// `CID_BUDDY_LIST_STATUS_NOTIFY` {user, status} to every link.
    fn send_buddy_status(&self, net: &mut Net, user_id: u32, status: u32) {
        let msg = ImUserStatNotify {
            user_stat: UserStat {
                user_id,
                status: status as i32,
            },
        };
        self.broadcast_msg(net, To::All, &msg);
    }

    fn targets(&self, to: To) -> Vec<ConnId> {
        let mut v: Vec<ConnId> = self
            .links
            .keys()
            .copied()
            .filter(|&c| to != To::AllBut(c))
            .collect();
        v.sort_unstable();
        v
    }

    fn broadcast_msg<M: Command>(&self, net: &mut Net, to: To, msg: &M) {
        // Encode once, send the same bytes to every target.
        pdu_io::send_all(net, &self.targets(to), &pdu_io::encode(0, msg));
    }

    /// Sends the received PDU, every header byte unchanged: its bytes put together once, the
    /// same bytes to each target (once per link, whatever the PDU carries).
    fn relay(&self, net: &mut Net, to: To, header: &Header, body: &[u8]) {
        let targets = self.targets(to);
        match targets.as_slice() {
            [] => {}
            [one] => {
                pdu_io::send_raw(net, *one, header, body);
            }
            many => pdu_io::send_all(net, many, &pdu_io::raw_bytes(header, body)),
        }
    }
}

/// Every connection is a route link (a msg_server or an http_msg_server).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteLink;

impl PduService for RouteServer {
    type Kind = RouteLink;
    type Msg = ();

    fn accept(&mut self, _net: &mut Net, accepted: Accepted) -> Option<RouteLink> {
        let Accepted {
            listener,
            conn,
            peer,
            ..
        } = accepted;
        if !self.listeners.contains(&listener) {
            return None;
        }
        log::info!("link {conn:?} from {peer} accepted");
        self.links.insert(conn, Link::default());
        self.presence.add_link(conn);
        Some(RouteLink)
    }

    /// Every link gets the relays of many messages a turn.
    fn coalesce(&self, _kind: RouteLink) -> bool {
        true
    }

    fn keep_alive(&self, _conn: ConnId, _kind: RouteLink) -> KeepAlive {
        KeepAlive::SERVER
    }

    fn max_pdu_len(&self, _kind: RouteLink) -> u32 {
        MAX_PDU_LEN
    }

    fn pdu(&mut self, net: &mut Net, conn: ConnId, _kind: RouteLink, header: &Header, body: &[u8]) {
        self.handle(net, conn, header, body);
    }

    fn closed(&mut self, net: &mut Net, conn: ConnId, _kind: RouteLink, reason: CloseReason) {
        if self.links.remove(&conn).is_none() {
            return;
        }
        let gone = self.presence.remove_link(conn);
        log::info!(
            "link {conn:?} closed ({reason:?}); {} users had sessions on it",
            gone.len()
        );
        // R2: what the original would have broadcast for the logout of each session of the
        // link, reduced to its outcome: users whose last PC session went away are announced
        // offline; those still on (mobile) elsewhere also get the PC login status 0.
        for (user_id, had_pc) in gone {
            if had_pc && !self.presence.pc_online(user_id) {
                if self.presence.contains(user_id) {
                    self.send_login_status(net, user_id, false);
                }
                self.send_buddy_status(net, user_id, USER_STATUS_OFFLINE);
            }
        }
    }

    fn metrics(&self, out: &mut Scrape) {
        out.gauge(
            "tt_users_online",
            "Users with a session on some msg_server",
            self.presence.user_count() as i64,
        );
    }
}
