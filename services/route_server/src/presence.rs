//! The global presence map (the original's `users` map of `CUserInfo`, base-login-route.md §4.2),
//! kept per (user, msg_server link, client type) instead of per user.
//!
//! The original counted sessions per user and client type across all msg_servers together and
//! kept a separate set of links per user (quirks R1, R3, R6). Here every link owns its own
//! counts, so:
//! - an OFFLINE update from one msg_server removes a session of that msg_server only (R6);
//! - a link that closes takes exactly its own sessions with it, and a msg_server that
//!   reconnects and resends its sessions does not count them twice (R1);
//! - a LEAVE status update for a (link, client type) that already has a session is a status
//!   change of that session, not one more session (R3). msg_servers report ONLINE once per
//!   session at login and OFFLINE once at logout, so an ONLINE update is always a new session;
//!   in a msg_server's hello every entry is one session, whether ONLINE or LEAVE.
//!
//! Memory is tied to links: a link may hold at most [`MAX_SESSIONS_PER_LINK`] sessions and all
//! links together [`MAX_SESSIONS_TOTAL`]; updates beyond that are refused (and logged).

use std::collections::{HashMap, HashSet};

use netlib::ConnId;

/// Sessions one msg_server link may report (a msg_server's default `MaxConnCnt` is 100 000).
pub const MAX_SESSIONS_PER_LINK: u32 = 500_000;
/// Sessions all links together may report.
pub const MAX_SESSIONS_TOTAL: u64 = 4_000_000;

use tt_proto::pb::base_define::{ClientType, UserStatType};

/// `UserStatType` values as the `u32` the server messages carry.
pub const USER_STATUS_ONLINE: u32 = UserStatType::UserStatusOnline as u32;
pub const USER_STATUS_OFFLINE: u32 = UserStatType::UserStatusOffline as u32;
pub const USER_STATUS_LEAVE: u32 = UserStatType::UserStatusLeave as u32;

/// Index of a `ClientType` value in a per-type count array; None for an undeclared value.
fn type_slot(client_type: i32) -> Option<usize> {
    match ClientType::try_from(client_type).ok()? {
        ClientType::Windows => Some(0),
        ClientType::Mac => Some(1),
        ClientType::Ios => Some(2),
        ClientType::Android => Some(3),
    }
}

/// PC types have the mobile bit clear.
pub fn is_pc_type(client_type: i32) -> bool {
    !ClientType::is_mobile(client_type)
}

const PC_SLOTS: [usize; 2] = [0, 1];

/// One user's sessions: per link, per client type.
#[derive(Debug, Default)]
struct User {
    links: Vec<(ConnId, [u32; 4])>,
}

impl User {
    fn pc_online(&self) -> bool {
        self.links
            .iter()
            .any(|(_, c)| PC_SLOTS.iter().any(|&s| c[s] > 0))
    }
}

#[derive(Debug, Default)]
struct LinkState {
    /// Users with at least one session on this link.
    users: HashSet<u32>,
    sessions: u32,
    /// A refusal has been logged for this link already (one line per link, not per update).
    refusal_logged: bool,
}

/// Why a session was not recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    UnknownLink,
    BadClientType,
    LinkFull,
    TotalFull,
}

/// What applying an update did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// A session was added.
    Added,
    /// A LEAVE update for an existing session: counts unchanged.
    StatusChanged,
    /// A session was removed.
    Removed,
    /// An OFFLINE update matching no session of this link.
    NoSuchSession,
}

/// The presence map.
#[derive(Debug)]
pub struct Presence {
    users: HashMap<u32, User>,
    links: HashMap<ConnId, LinkState>,
    total: u64,
    per_link_limit: u32,
    total_limit: u64,
}

impl Presence {
    pub fn new() -> Presence {
        Presence {
            users: HashMap::new(),
            links: HashMap::new(),
            total: 0,
            per_link_limit: MAX_SESSIONS_PER_LINK,
            total_limit: MAX_SESSIONS_TOTAL,
        }
    }

    #[cfg(test)]
    fn with_limits(per_link_limit: u32, total_limit: u64) -> Presence {
        Presence {
            per_link_limit,
            total_limit,
            ..Presence::new()
        }
    }

    pub fn add_link(&mut self, conn: ConnId) {
        self.links.entry(conn).or_default();
    }

    /// Whether the user has a session anywhere.
    pub fn contains(&self, user_id: u32) -> bool {
        self.users.contains_key(&user_id)
    }

    /// Whether the user has a PC session anywhere.
    pub fn pc_online(&self, user_id: u32) -> bool {
        self.users.get(&user_id).is_some_and(User::pc_online)
    }

    /// The status route_server reports for a user: ONLINE iff a PC client is logged in
    /// somewhere, OFFLINE otherwise (LEAVE is never reported, as in the original).
    pub fn status(&self, user_id: u32) -> u32 {
        if self.pc_online(user_id) {
            USER_STATUS_ONLINE
        } else {
            USER_STATUS_OFFLINE
        }
    }

    /// Sessions recorded in total (for logs and tests).
    pub fn total_sessions(&self) -> u64 {
        self.total
    }

    pub fn user_count(&self) -> usize {
        self.users.len()
    }

    /// Applies one status update of `conn` (`CID_OTHER_USER_STATUS_UPDATE`): OFFLINE removes
    /// a session of (`user_id`, `client_type`) on that link; ONLINE adds one; LEAVE adds one
    /// unless that link already has a session of that type (then it is a status change).
    pub fn update(
        &mut self,
        conn: ConnId,
        user_id: u32,
        status: u32,
        client_type: i32,
    ) -> Result<Applied, Refused> {
        self.apply(conn, user_id, status, client_type, true)
    }

    /// Applies one entry of a msg_server's hello (`CID_OTHER_ONLINE_USER_INFO`): there every
    /// entry is one session, ONLINE or LEAVE as its client asked at login, so both add one.
    pub fn hello_entry(
        &mut self,
        conn: ConnId,
        user_id: u32,
        status: u32,
        client_type: i32,
    ) -> Result<Applied, Refused> {
        self.apply(conn, user_id, status, client_type, false)
    }

    fn apply(
        &mut self,
        conn: ConnId,
        user_id: u32,
        status: u32,
        client_type: i32,
        leave_is_change: bool,
    ) -> Result<Applied, Refused> {
        let slot = type_slot(client_type).ok_or(Refused::BadClientType)?;
        if status == USER_STATUS_OFFLINE {
            return self.remove_session(conn, user_id, slot);
        }
        let (total, per_link_limit, total_limit) =
            (self.total, self.per_link_limit, self.total_limit);
        let link = self.links.get_mut(&conn).ok_or(Refused::UnknownLink)?;
        let user = self.users.get(&user_id);
        let existing = user
            .and_then(|u| u.links.iter().find(|(c, _)| *c == conn))
            .map_or(0, |(_, counts)| counts[slot]);
        if leave_is_change && status == USER_STATUS_LEAVE && existing > 0 {
            return Ok(Applied::StatusChanged);
        }
        let refusal = if link.sessions >= per_link_limit {
            Some(Refused::LinkFull)
        } else if total >= total_limit {
            Some(Refused::TotalFull)
        } else {
            None
        };
        if let Some(r) = refusal {
            if !link.refusal_logged {
                link.refusal_logged = true;
                log::warn!(
                    "link {conn:?}: session of user {user_id} refused ({r:?}; {} sessions on \
                     this link, {total} in all); further refusals on this link are not logged",
                    link.sessions
                );
            }
            return Err(r);
        }
        link.sessions += 1;
        link.users.insert(user_id);
        self.total += 1;
        let user = self.users.entry(user_id).or_default();
        match user.links.iter_mut().find(|(c, _)| *c == conn) {
            Some((_, counts)) => counts[slot] += 1,
            None => {
                let mut counts = [0; 4];
                counts[slot] = 1;
                user.links.push((conn, counts));
            }
        }
        Ok(Applied::Added)
    }

    fn remove_session(
        &mut self,
        conn: ConnId,
        user_id: u32,
        slot: usize,
    ) -> Result<Applied, Refused> {
        let Some(user) = self.users.get_mut(&user_id) else {
            return Ok(Applied::NoSuchSession);
        };
        let Some(pos) = user.links.iter().position(|(c, _)| *c == conn) else {
            return Ok(Applied::NoSuchSession);
        };
        let counts = &mut user.links[pos].1;
        if counts[slot] == 0 {
            return Ok(Applied::NoSuchSession);
        }
        counts[slot] -= 1;
        let link_empty = counts.iter().all(|&n| n == 0);
        if link_empty {
            user.links.swap_remove(pos);
        }
        let user_empty = user.links.is_empty();
        if user_empty {
            self.users.remove(&user_id);
        }
        self.total = self.total.saturating_sub(1);
        if let Some(link) = self.links.get_mut(&conn) {
            link.sessions = link.sessions.saturating_sub(1);
            if link_empty {
                link.users.remove(&user_id);
            }
        }
        Ok(Applied::Removed)
    }

    /// Forgets a link and every session it reported. Returns, for each user who had sessions
    /// on it, `(user_id, had a PC session anywhere before)`, in ascending user order.
    pub fn remove_link(&mut self, conn: ConnId) -> Vec<(u32, bool)> {
        let Some(link) = self.links.remove(&conn) else {
            return Vec::new();
        };
        let mut affected: Vec<u32> = link.users.into_iter().collect();
        affected.sort_unstable();
        let mut out = Vec::with_capacity(affected.len());
        for user_id in affected {
            let Some(user) = self.users.get_mut(&user_id) else {
                continue;
            };
            let had_pc = user.pc_online();
            if let Some(pos) = user.links.iter().position(|(c, _)| *c == conn) {
                let n: u32 = user.links[pos].1.iter().sum();
                self.total = self.total.saturating_sub(u64::from(n));
                user.links.swap_remove(pos);
            }
            if user.links.is_empty() {
                self.users.remove(&user_id);
            }
            out.push((user_id, had_pc));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // ConnIds cannot be built outside netlib; take them from a real loop's connects.
    fn conns(n: usize) -> Vec<ConnId> {
        let mut ev = netlib::EventLoop::<()>::new(netlib::Config::default()).unwrap();
        let addr = "127.0.0.1:9".parse().unwrap();
        (0..n).map(|_| ev.net().connect(addr)).collect()
    }

    const WIN: i32 = 0x01;
    const MAC: i32 = 0x02;
    const IOS: i32 = 0x11;

    #[test]
    fn counts_are_per_link_and_type() {
        let c = conns(2);
        let mut p = Presence::new();
        p.add_link(c[0]);
        p.add_link(c[1]);
        assert_eq!(p.update(c[0], 7, 1, WIN), Ok(Applied::Added));
        assert_eq!(p.update(c[1], 7, 1, MAC), Ok(Applied::Added));
        assert_eq!(p.status(7), USER_STATUS_ONLINE);
        // OFFLINE for a type the link does not have changes nothing (R6).
        assert_eq!(p.update(c[1], 7, 2, WIN), Ok(Applied::NoSuchSession));
        assert_eq!(p.update(c[0], 7, 2, WIN), Ok(Applied::Removed));
        assert!(p.pc_online(7));
        assert_eq!(p.update(c[1], 7, 2, MAC), Ok(Applied::Removed));
        assert!(!p.contains(7));
        assert_eq!(p.total_sessions(), 0);
    }

    #[test]
    fn leave_of_an_existing_session_is_not_a_new_session() {
        let c = conns(1);
        let mut p = Presence::new();
        p.add_link(c[0]);
        p.update(c[0], 8, 1, WIN).unwrap();
        assert_eq!(p.update(c[0], 8, 3, WIN), Ok(Applied::StatusChanged));
        p.update(c[0], 8, 2, WIN).unwrap();
        assert!(!p.contains(8), "one OFFLINE ends the one session (R3)");
        // LEAVE without a session counts as one.
        assert_eq!(p.update(c[0], 8, 3, IOS), Ok(Applied::Added));
        assert!(p.contains(8));
        assert!(!p.pc_online(8));
        // In a hello every entry is a session, LEAVE ones too.
        p.hello_entry(c[0], 9, 1, WIN).unwrap();
        assert_eq!(p.hello_entry(c[0], 9, 3, WIN), Ok(Applied::Added));
        p.update(c[0], 9, 2, WIN).unwrap();
        assert!(p.pc_online(9));
        p.update(c[0], 9, 2, WIN).unwrap();
        assert!(!p.contains(9));
    }

    #[test]
    fn removing_a_link_takes_its_sessions_only() {
        let c = conns(2);
        let mut p = Presence::new();
        p.add_link(c[0]);
        p.add_link(c[1]);
        p.update(c[0], 1, 1, WIN).unwrap();
        p.update(c[0], 1, 1, WIN).unwrap();
        p.update(c[0], 2, 1, IOS).unwrap();
        p.update(c[1], 2, 1, MAC).unwrap();
        let gone = p.remove_link(c[0]);
        assert_eq!(gone, vec![(1, true), (2, true)]);
        assert!(!p.contains(1));
        assert!(p.pc_online(2));
        assert_eq!(p.total_sessions(), 1);
        // Re-adding the same sessions on a new link does not double count (R1).
        assert!(p.update(c[0], 1, 1, WIN).is_err(), "link is gone");
    }

    #[test]
    fn sessions_are_capped_per_link_and_in_all() {
        let c = conns(3);
        let mut p = Presence::with_limits(3, 5);
        for &l in &c {
            p.add_link(l);
        }
        for u in 0..3 {
            assert_eq!(p.update(c[0], u, 1, WIN), Ok(Applied::Added));
        }
        assert_eq!(p.update(c[0], 9, 1, WIN), Err(Refused::LinkFull));
        assert_eq!(p.update(c[0], 0, 1, WIN), Err(Refused::LinkFull));
        // A status change or a logout still works on a full link.
        assert_eq!(p.update(c[0], 0, 3, WIN), Ok(Applied::StatusChanged));
        assert_eq!(p.update(c[0], 0, 2, WIN), Ok(Applied::Removed));
        assert_eq!(p.update(c[0], 9, 1, WIN), Ok(Applied::Added));
        p.update(c[1], 10, 1, WIN).unwrap();
        p.update(c[1], 11, 1, WIN).unwrap();
        assert_eq!(p.update(c[2], 12, 1, WIN), Err(Refused::TotalFull));
        // A closing link frees its share.
        p.remove_link(c[0]);
        assert_eq!(p.total_sessions(), 2);
        assert_eq!(p.update(c[2], 12, 1, WIN), Ok(Applied::Added));
    }

    #[test]
    fn bad_client_type_and_unknown_link_are_refused() {
        let c = conns(2);
        let mut p = Presence::new();
        p.add_link(c[0]);
        assert_eq!(p.update(c[0], 1, 1, 5), Err(Refused::BadClientType));
        assert_eq!(p.update(c[1], 1, 1, WIN), Err(Refused::UnknownLink));
        assert!(!p.contains(1));
    }
}
