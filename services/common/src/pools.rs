//! The two ways a daemon chooses among its links of one kind, as the original's msg_server and
//! http_msg_server both do (spec msg_server.md §5.5, §6.3, §13.1):
//!
//! - [`DbPool`]: db_proxy links in a login pool and a general pool. With D entries and C links
//!   per entry, D×C links (the C links of entry 1 first); the first ⌊D/2⌋×C are the login pool.
//!   A pick takes a connected link of the asked pool, else of the other, uniformly among the
//!   connected ones; a link that received `CID_OTHER_STOP_RECV_PACKET` is no longer chosen.
//! - [`MasterLink`]: route_server links of which the one connected the longest is the master,
//!   elected when a link connects and there is none, and again when the master's link closes;
//!   the elected link is told with `IMRoleSet{master: 1}`.

use std::collections::HashSet;
use std::ops::Range;
use std::time::{SystemTime, UNIX_EPOCH};

use netlib::{ConnId, Net};
use tt_proto::pb::server::ImRoleSet;

use crate::links::ServerLinks;
use crate::pdu_io;

/// db_proxy links in a login pool and a general pool (see the module documentation).
pub struct DbPool {
    pub links: ServerLinks,
    /// Slots `0..login_slots` are the login pool.
    login_slots: usize,
    /// Links that asked not to be sent anything more.
    stopped: HashSet<ConnId>,
    /// xorshift64 state for the choice of a link.
    rng: u64,
}

impl DbPool {
    /// `per_server` links to each of `servers`; an unresolvable target is an error.
    pub fn new(servers: &[(String, u16)], per_server: usize) -> Result<DbPool, String> {
        let targets = servers
            .iter()
            .flat_map(|t| std::iter::repeat_n(t.clone(), per_server))
            .collect();
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0x9e37_79b9, |d| d.as_nanos() as u64);
        Ok(DbPool {
            links: ServerLinks::new("db_proxy_server", targets)?,
            login_slots: (servers.len() / 2) * per_server,
            stopped: HashSet::new(),
            rng: seed | 1,
        })
    }

    /// Slots of the login pool.
    pub fn login_slots(&self) -> usize {
        self.login_slots
    }

    /// A link is gone: its slot backs off, its stop mark goes.
    pub fn closed(&mut self, conn: ConnId) {
        self.stopped.remove(&conn);
        self.links.on_close(conn);
    }

    /// `CID_OTHER_STOP_RECV_PACKET`: the link is no longer chosen.
    pub fn stop_sending(&mut self, conn: ConnId) {
        log::warn!("db_proxy link {conn:?} asked to stop receiving: no longer used");
        self.stopped.insert(conn);
    }

    /// A connected link of the login pool, else of the general pool.
    pub fn pick_login(&mut self) -> Option<ConnId> {
        let r = self.next_random();
        let (login, general) = self.ranges();
        self.pick_in(login, r).or_else(|| self.pick_in(general, r))
    }

    /// A connected link of the general pool, else of the login pool.
    pub fn pick_general(&mut self) -> Option<ConnId> {
        let r = self.next_random();
        let (login, general) = self.ranges();
        self.pick_in(general, r).or_else(|| self.pick_in(login, r))
    }

    fn ranges(&self) -> (Range<usize>, Range<usize>) {
        (0..self.login_slots, self.login_slots..self.links.len())
    }

    fn next_random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }

    /// Uniformly at random among the usable links of `range` (no allocation: this runs for
    /// every request).
    fn pick_in(&self, range: Range<usize>, r: u64) -> Option<ConnId> {
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
}

/// Links of which one is the master (see the module documentation).
pub struct MasterLink {
    pub links: ServerLinks,
    master: Option<ConnId>,
}

impl MasterLink {
    pub fn new(links: ServerLinks) -> MasterLink {
        MasterLink {
            links,
            master: None,
        }
    }

    /// The master link, if one is connected.
    pub fn master(&self) -> Option<ConnId> {
        self.master
    }

    /// One of the links is connected: a master is elected if there is none. False if `conn`
    /// is not one of them.
    pub fn connected(&mut self, net: &mut Net, conn: ConnId) -> bool {
        if self.links.on_connect(conn, net.now()).is_none() {
            return false;
        }
        if self.master.is_none() {
            self.elect(net);
        }
        true
    }

    /// A link is gone; if it was the master, another is elected.
    pub fn closed(&mut self, net: &mut Net, conn: ConnId) {
        self.links.on_close(conn);
        if self.master == Some(conn) {
            self.master = None;
            self.elect(net);
        }
    }

    /// Elects the oldest connected link and tells it.
    fn elect(&mut self, net: &mut Net) {
        self.master = self.links.oldest_open();
        if let Some(m) = self.master {
            log::info!("master {} link is {m:?}", self.links.kind());
            pdu_io::send(net, m, 0, &ImRoleSet { master: 1 });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_split_by_half_of_the_entries() {
        let servers: Vec<(String, u16)> = (1..=3).map(|p| ("127.0.0.1".to_string(), p)).collect();
        let mut pool = DbPool::new(&servers, 2).unwrap();
        assert_eq!(pool.links.len(), 6);
        assert_eq!(pool.login_slots(), 2);
        let ports: Vec<u16> = pool.links.slots().iter().map(|s| s.port).collect();
        assert_eq!(ports, vec![1, 1, 2, 2, 3, 3]);
        // Nothing connected: nothing to pick from either pool.
        assert_eq!(pool.pick_login(), None);
        assert_eq!(pool.pick_general(), None);
        let single = DbPool::new(&servers[..1], 4).unwrap();
        assert_eq!((single.links.len(), single.login_slots()), (4, 0));
    }

    #[test]
    fn connected_links_are_picked_and_the_oldest_is_master() {
        let mut ev = netlib::EventLoop::<()>::new(netlib::Config::default()).unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let target = vec![("127.0.0.1".to_string(), port); 2];
        let mut pool = DbPool::new(&target, 1).unwrap();
        let net = ev.net();
        pool.links.start(net);
        let conns: Vec<ConnId> = pool
            .links
            .slots()
            .iter()
            .map(|s| s.conn().unwrap())
            .collect();
        // Marked connected by hand: the pick looks at the slots only.
        pool.links.on_connect(conns[0], net.now());
        assert_eq!(
            pool.pick_general(),
            Some(conns[0]),
            "the login pool stands in"
        );
        pool.links.on_connect(conns[1], net.now());
        assert_eq!(pool.pick_general(), Some(conns[1]));
        assert_eq!(pool.pick_login(), Some(conns[0]));
        pool.stop_sending(conns[1]);
        assert_eq!(pool.pick_general(), Some(conns[0]));

        let mut route = MasterLink::new(ServerLinks::new("route_server", target).unwrap());
        route.links.start(net);
        let conns: Vec<ConnId> = route
            .links
            .slots()
            .iter()
            .map(|s| s.conn().unwrap())
            .collect();
        assert!(route.connected(net, conns[1]));
        assert!(route.connected(net, conns[0]));
        assert_eq!(
            route.master(),
            Some(conns[1]),
            "the first connected stays master"
        );
        route.closed(net, conns[1]);
        assert_eq!(route.master(), Some(conns[0]));
        assert!(
            !route.connected(net, conns[1]),
            "no longer one of its links"
        );
    }
}
