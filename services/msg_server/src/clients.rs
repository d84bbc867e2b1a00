//! Client connections: the data of the original's `CMsgConn` (`MsgConn.cpp`).
//!
//! States: *connected* (accepted) → *validating* (login request sent to db_proxy) → *open*
//! (logged in). Before a successful login only the login request and heartbeats are accepted;
//! anything else closes the connection with a log line (the original's guard never fired,
//! quirk §15.6).
//!
//! Every connection has its own 32-bit handle, the value put in `attach_data` of the requests
//! it causes. Handles come from a counter and are not reused before it wraps (2³² connections
//! later), so a late reply can never reach a newer connection. Each connection may have at
//! most `MaxPendingDbRequests` requests waiting for a reply (older than [`PENDING_TTL`] they
//! are forgotten), may send at most `MsgRateLimit` messages and `RelayRateLimit` relayed
//! commands a second, and is closed when it has not logged in [`LOGIN_TIMEOUT`] after the
//! accept, or has been silent for 120 s (PC) or 300 s (mobile).
//!
//! Accepts are bounded: past `MaxConnCnt` open client connections, or past
//! `MaxConnsPerIpBeforeLogin` connections from one address that have not logged in, a new
//! connection is refused (closed at once). The first refusal of each bound in a second is
//! logged at once, the tick logs how many followed.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use netlib::{ConnId, Net};
use tt_common::metrics::{DropReason, dropped};
use tt_common::pdu_io::{CLIENT_TIMEOUT, KeepAlive, MOBILE_CLIENT_TIMEOUT};
use tt_proto::Command;
use tt_proto::pb::base_define::{ClientType, UserStatType};
use tt_proto::pdu::Header;
use tt_proto::required::decode_checked;

/// A login not completed this long after the TCP accept closes the connection.
pub const LOGIN_TIMEOUT: Duration = Duration::from_secs(15);
/// A request without a reply for this long no longer counts against the client's limit.
pub const PENDING_TTL: Duration = Duration::from_secs(60);

/// Login progress of a client connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnState {
    Connected,
    Validating,
    Open,
}

/// The per-connection data of `CMsgConn`. Kept small (one per connection): what only a login
/// in progress needs is boxed and dropped at the login, the pending-request times are
/// allocated while requests wait.
#[derive(Debug)]
pub struct ClientConn {
    pub handle: u32,
    pub user_id: u32,
    pub client_type: i32,
    pub online_status: i32,
    pub state: ConnState,
    pub msgs_this_second: u32,
    /// P2P commands, read acks and remove-session requests this second (each is relayed to
    /// other users' connections and every msg_server: `RelayRateLimit`).
    pub relays_this_second: u32,
    /// Requests and messages dropped by the limits since the last tick: only the first of a
    /// second is logged, the tick logs how many followed (a flood must not flood the log).
    pub drops_this_second: u32,
    pub peer: SocketAddr,
    /// Until the login succeeds.
    before_login: Option<Box<BeforeLogin>>,
    /// When each request still awaiting a reply was sent (oldest first).
    pending: VecDeque<Instant>,
}

/// What a connection needs until its login succeeds.
#[derive(Debug)]
struct BeforeLogin {
    accepted_at: Instant,
    /// The name of the login being validated (its reply must match it).
    login_name: Box<[u8]>,
}

impl ClientConn {
    pub fn new(handle: u32, now: Instant, peer: SocketAddr) -> ClientConn {
        ClientConn {
            handle,
            user_id: 0,
            client_type: 0,
            online_status: UserStatType::UserStatusOffline as i32,
            state: ConnState::Connected,
            msgs_this_second: 0,
            relays_this_second: 0,
            drops_this_second: 0,
            peer,
            before_login: Some(Box::new(BeforeLogin {
                accepted_at: now,
                login_name: Box::default(),
            })),
            pending: VecDeque::new(),
        }
    }

    /// The user name of the login in progress (empty once logged in).
    pub fn login_name(&self) -> &[u8] {
        self.before_login
            .as_ref()
            .map_or(&[], |b| &b.login_name[..])
    }

    /// Records the user name of the login being validated.
    pub fn set_login_name(&mut self, name: &[u8]) {
        if let Some(b) = self.before_login.as_mut() {
            b.login_name = name.into();
        }
    }

    /// Counts a request that expects a reply; false if the client already has `max` waiting.
    pub fn begin_request(&mut self, now: Instant, max: usize) -> bool {
        self.expire_pending(now);
        if self.pending.len() >= max {
            return false;
        }
        self.pending.push_back(now);
        true
    }

    /// Counts a request dropped by a limit; true if it is the first since the last tick (the
    /// one to log).
    pub fn note_drop(&mut self) -> bool {
        self.drops_this_second = self.drops_this_second.saturating_add(1);
        self.drops_this_second == 1
    }

    /// A reply arrived for this client.
    pub fn end_request(&mut self) {
        self.pending.pop_front();
        self.release_pending();
    }

    fn expire_pending(&mut self, now: Instant) {
        while self
            .pending
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) > PENDING_TTL)
        {
            self.pending.pop_front();
        }
        self.release_pending();
    }

    /// No request waiting: the times' memory is given back (an idle connection holds none).
    fn release_pending(&mut self) {
        if self.pending.is_empty() && self.pending.capacity() > 0 {
            self.pending = VecDeque::new();
        }
    }
}

/// Client handles (the `handle` of attach_data) ↔ connections.
#[derive(Debug, Default)]
struct HandleTable {
    next: u32,
    map: HashMap<u32, ConnId>,
}

impl HandleTable {
    /// A fresh handle for `conn` (never 0, never one in use).
    fn insert(&mut self, conn: ConnId) -> u32 {
        loop {
            self.next = self.next.wrapping_add(1);
            if self.next != 0 && !self.map.contains_key(&self.next) {
                self.map.insert(self.next, conn);
                return self.next;
            }
        }
    }
}

/// Why an accepted connection was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// `MaxConnCnt` client connections are open.
    Full = 0,
    /// `MaxConnsPerIpBeforeLogin` connections from the peer's address have not logged in.
    TooManyBeforeLogin,
}

/// The accept bounds: `MaxConnCnt` and `MaxConnsPerIpBeforeLogin` (0 = none).
#[derive(Clone, Copy, Debug)]
pub struct AcceptLimits {
    pub max_conns: usize,
    pub max_before_login_per_ip: u32,
}

impl AcceptLimits {
    /// Whether a connection is refused when `open` client connections are open and `waiting`
    /// of its address's have not logged in.
    pub fn refusal(&self, open: usize, waiting: u32) -> Option<Refusal> {
        if open >= self.max_conns {
            Some(Refusal::Full)
        } else if self.max_before_login_per_ip > 0 && waiting >= self.max_before_login_per_ip {
            Some(Refusal::TooManyBeforeLogin)
        } else {
            None
        }
    }
}

/// Every client connection, by connection and by handle.
#[derive(Debug, Default)]
pub struct Clients {
    conns: HashMap<ConnId, Box<ClientConn>>,
    handles: HandleTable,
    /// Connections not logged in (connected or validating), per peer address.
    before_login: HashMap<IpAddr, u32>,
    /// Connections refused since the last tick, per [`Refusal`] (only the first of each is
    /// logged at once).
    refused_this_second: [u32; 2],
}

impl Clients {
    /// Registers an accepted connection within `limits`; returns its handle, or why it is
    /// refused (the caller closes it). The first refusal of each bound in a second is logged.
    pub fn accept(
        &mut self,
        conn: ConnId,
        now: Instant,
        peer: SocketAddr,
        limits: AcceptLimits,
    ) -> Result<u32, Refusal> {
        let waiting = self.before_login.get(&peer.ip()).copied().unwrap_or(0);
        if let Some(refusal) = limits.refusal(self.conns.len(), waiting) {
            let count = &mut self.refused_this_second[refusal as usize];
            *count = count.saturating_add(1);
            if *count == 1 {
                match refusal {
                    Refusal::Full => log::warn!(
                        "refusing client {peer}: {} client connections open (MaxConnCnt)",
                        self.conns.len()
                    ),
                    Refusal::TooManyBeforeLogin => log::warn!(
                        "refusing client {peer}: {waiting} connections from {} not logged in \
                         (MaxConnsPerIpBeforeLogin)",
                        peer.ip()
                    ),
                }
            }
            return Err(refusal);
        }
        *self.before_login.entry(peer.ip()).or_insert(0) += 1;
        let handle = self.handles.insert(conn);
        self.conns
            .insert(conn, Box::new(ClientConn::new(handle, now, peer)));
        Ok(handle)
    }

    /// Marks `conn` logged in (it no longer counts against its address's bound).
    pub fn set_open(&mut self, conn: ConnId) {
        if let Some(c) = self.conns.get_mut(&conn)
            && c.state != ConnState::Open
        {
            c.state = ConnState::Open;
            c.before_login = None;
            Self::left_before_login(&mut self.before_login, c.peer.ip());
        }
    }

    fn left_before_login(before_login: &mut HashMap<IpAddr, u32>, ip: IpAddr) {
        if let Some(n) = before_login.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                before_login.remove(&ip);
            }
        }
    }

    /// Forgets a closed connection and its handle.
    pub fn remove(&mut self, conn: ConnId) -> Option<Box<ClientConn>> {
        let client = self.conns.remove(&conn)?;
        self.handles.map.remove(&client.handle);
        if client.state != ConnState::Open {
            Self::left_before_login(&mut self.before_login, client.peer.ip());
        }
        Some(client)
    }

    pub fn get(&self, conn: ConnId) -> Option<&ClientConn> {
        self.conns.get(&conn).map(|c| &**c)
    }

    pub fn get_mut(&mut self, conn: ConnId) -> Option<&mut ClientConn> {
        self.conns.get_mut(&conn).map(|c| &mut **c)
    }

    /// The connection of a handle, logged in or not.
    pub fn by_handle(&self, handle: u32) -> Option<ConnId> {
        self.handles.map.get(&handle).copied()
    }

    /// Requests of every client still waiting for their reply.
    pub fn pending_requests(&self) -> usize {
        self.conns.values().map(|c| c.pending.len()).sum()
    }

    /// A reply arrived for `conn`.
    pub fn end_request(&mut self, conn: ConnId) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.end_request();
        }
    }

    /// The idle timeout of a client: 120 s for PC clients, 300 s for mobile ones; no
    /// heartbeats are sent to clients.
    pub fn keep_alive(&self, conn: ConnId) -> KeepAlive {
        let mobile = self
            .conns
            .get(&conn)
            .is_some_and(|c| ClientType::is_mobile(c.client_type));
        KeepAlive {
            heartbeat: None,
            timeout: if mobile {
                MOBILE_CLIENT_TIMEOUT
            } else {
                CLIENT_TIMEOUT
            },
        }
    }

    /// Counts one relayed command (P2P command, read ack, remove session) against `limit`
    /// (`RelayRateLimit`, 0 = none); false (and a log line, once a second) when the client is
    /// over it. The original had no limit: one client could flood another user's connections
    /// until they were closed for unread output.
    pub fn relay_allowed(&mut self, conn: ConnId, limit: u32, what: &str) -> bool {
        let Some(c) = self.conns.get_mut(&conn) else {
            return false;
        };
        if limit > 0 && c.relays_this_second >= limit {
            dropped(DropReason::RateLimit);
            if c.note_drop() {
                log::warn!(
                    "user {} sent more {what} a second than RelayRateLimit: dropped",
                    c.user_id
                );
            }
            return false;
        }
        c.relays_this_second += 1;
        true
    }

    /// Per-second work on every client (spec §7.3): the rate counters restart, the drops of
    /// the last second are summed up in one log line, requests without a reply expire, and a
    /// connection not logged in within [`LOGIN_TIMEOUT`] is closed.
    pub fn tick(&mut self, net: &mut Net) {
        let now = net.now();
        for (count, key) in self
            .refused_this_second
            .iter()
            .zip(["MaxConnCnt", "MaxConnsPerIpBeforeLogin"])
        {
            if *count > 1 {
                log::warn!("{} more client connections refused ({key})", count - 1);
            }
        }
        self.refused_this_second = [0; 2];
        let mut late = Vec::new();
        for (&conn, c) in self.conns.iter_mut() {
            c.msgs_this_second = 0;
            c.relays_this_second = 0;
            if c.drops_this_second > 1 {
                log::warn!(
                    "client {} (user {}): {} more requests dropped by the limits",
                    c.peer,
                    c.user_id,
                    c.drops_this_second - 1
                );
            }
            c.drops_this_second = 0;
            c.expire_pending(now);
            if let Some(b) = c.before_login.as_ref()
                && now.saturating_duration_since(b.accepted_at) > LOGIN_TIMEOUT
                && net.is_open(conn)
            {
                log::info!(
                    "closing client {}: no login within {LOGIN_TIMEOUT:?}",
                    c.peer
                );
                late.push(conn);
            }
        }
        for conn in late {
            net.close(conn);
        }
    }
}

/// One PDU from a client connection, with who sent it.
#[derive(Clone, Copy)]
pub struct Request<'a> {
    pub conn: ConnId,
    pub header: &'a Header,
    pub body: &'a [u8],
    /// The logged-in user (0 before the login).
    pub me: u32,
    pub peer: SocketAddr,
}

impl Request<'_> {
    /// The body, parsed with the original's proto2 rules. A client is not trusted: a body
    /// that does not parse closes its connection.
    pub fn parse<M: Command>(&self, net: &mut Net) -> Option<M> {
        match decode_checked::<M>(self.body) {
            Ok(m) => Some(m),
            Err(e) => {
                dropped(DropReason::ParseError);
                log::warn!(
                    "closing client {} (user {}) ({:?}): bad {:#06x} body: {e}",
                    self.peer,
                    self.me,
                    self.conn,
                    self.header.command_id
                );
                net.close(self.conn);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr() -> SocketAddr {
        "127.0.0.1:1".parse().unwrap()
    }

    #[test]
    fn pending_requests_are_capped_and_expire() {
        let t0 = Instant::now();
        let mut c = ClientConn::new(1, t0, addr());
        for _ in 0..3 {
            assert!(c.begin_request(t0, 3));
        }
        assert!(
            !c.begin_request(t0, 3),
            "a fourth request waits over the cap"
        );
        c.end_request();
        assert!(c.begin_request(t0, 3));
        let later = t0 + PENDING_TTL + Duration::from_secs(1);
        assert!(
            c.begin_request(later, 3),
            "requests without a reply are forgotten after PENDING_TTL"
        );
        assert_eq!(c.pending.len(), 1);
        c.end_request();
        assert_eq!(c.pending.capacity(), 0, "none waiting: nothing allocated");
        assert!(c.begin_request(later, 3));
        let much_later = later + PENDING_TTL + Duration::from_secs(1);
        c.expire_pending(much_later);
        assert_eq!(c.pending.capacity(), 0, "expired: nothing allocated");
    }

    #[test]
    fn the_login_name_lives_until_the_login() {
        let mut clients = Clients::default();
        let ids = crate::users::tests::conn_ids(1);
        let limits = AcceptLimits {
            max_conns: 10,
            max_before_login_per_ip: 0,
        };
        clients
            .accept(ids[0], Instant::now(), addr(), limits)
            .unwrap();
        let c = clients.get_mut(ids[0]).unwrap();
        c.set_login_name(b"user7");
        assert_eq!(c.login_name(), b"user7");
        clients.set_open(ids[0]);
        let c = clients.get(ids[0]).unwrap();
        assert_eq!(c.state, ConnState::Open);
        assert!(c.before_login.is_none(), "dropped at the login");
        assert_eq!(c.login_name(), b"");
    }

    #[test]
    fn accepts_are_bounded_in_total_and_per_address_before_login() {
        let limits = AcceptLimits {
            max_conns: 4,
            max_before_login_per_ip: 2,
        };
        assert_eq!(limits.refusal(3, 1), None);
        assert_eq!(limits.refusal(3, 2), Some(Refusal::TooManyBeforeLogin));
        assert_eq!(limits.refusal(4, 0), Some(Refusal::Full));
        let per_ip_off = AcceptLimits {
            max_before_login_per_ip: 0,
            ..limits
        };
        assert_eq!(per_ip_off.refusal(3, 1000), None);
    }
}
