//! Links to db_proxy_server and route_server (the original's `HTTP::CDBServConn` and
//! `HTTP::CRouteServConn`).
//!
//! db_proxy: with D entries and C = `ConcurrentDBConnCnt`, D×C links (the C links of entry 1
//! first); the first ⌊D/2⌋×C form the login pool, the rest the general pool. Every request
//! takes a link of the general pool, else of the login pool (the original's
//! `get_db_serv_conn`), in turn among the connected ones. A link that received
//! `CID_OTHER_STOP_RECV_PACKET` is no longer chosen. Nothing is sent on connect.
//!
//! route_server: the connected link with the oldest connect time is the master, elected when a
//! link connects and there is none, and again when the master's link closes; the elected link
//! is told with `IMRoleSet{master: 1}`. Nothing else is sent on connect, and whatever
//! route_server sends is ignored.

use std::collections::HashSet;

use netlib::{ConnId, Net};
use tt_common::{ServerLinks, pdu_io};
use tt_proto::pb::server::ImRoleSet;

pub struct DbLinks {
    pub links: ServerLinks,
    /// Slots `0..login_slots` are the login pool.
    login_slots: usize,
    /// Links that asked not to be sent anything more.
    stopped: HashSet<ConnId>,
    /// Turns through the connected links.
    turn: usize,
}

impl DbLinks {
    pub fn new(servers: &[(String, u16)], per_server: usize) -> Result<DbLinks, String> {
        let targets = servers
            .iter()
            .flat_map(|t| std::iter::repeat_n(t.clone(), per_server))
            .collect();
        Ok(DbLinks {
            links: ServerLinks::new("db_proxy_server", targets)?,
            login_slots: (servers.len() / 2) * per_server,
            stopped: HashSet::new(),
            turn: 0,
        })
    }

    pub fn closed(&mut self, conn: ConnId) {
        self.stopped.remove(&conn);
        self.links.on_close(conn);
    }

    /// `CID_OTHER_STOP_RECV_PACKET`: the link is no longer chosen.
    pub fn stop_sending(&mut self, conn: ConnId) {
        log::warn!("db_proxy link {conn:?} asked to stop receiving: no longer used");
        self.stopped.insert(conn);
    }

    /// A connected link of the general pool, else of the login pool.
    pub fn pick(&mut self) -> Option<ConnId> {
        self.turn = self.turn.wrapping_add(1);
        let general = self.login_slots..self.links.len();
        self.pick_in(general)
            .or_else(|| self.pick_in(0..self.login_slots))
    }

    fn pick_in(&self, range: std::ops::Range<usize>) -> Option<ConnId> {
        let usable = || {
            self.links.slots()[range.clone()]
                .iter()
                .filter_map(|s| s.open_conn())
                .filter(|c| !self.stopped.contains(c))
        };
        let n = usable().count();
        if n == 0 {
            return None;
        }
        usable().nth(self.turn % n)
    }
}

pub struct RouteLinks {
    pub links: ServerLinks,
    master: Option<ConnId>,
}

impl RouteLinks {
    pub fn new(targets: Vec<(String, u16)>) -> Result<RouteLinks, String> {
        Ok(RouteLinks {
            links: ServerLinks::new("route_server", targets)?,
            master: None,
        })
    }

    pub fn master(&self) -> Option<ConnId> {
        self.master
    }

    /// A link is up: a master is elected if there is none.
    pub fn connected(&mut self, net: &mut Net, conn: ConnId) {
        if self.links.on_connect(conn, net.now()).is_some() && self.master.is_none() {
            self.elect(net);
        }
    }

    /// A link is gone; if it was the master, another is elected.
    pub fn closed(&mut self, net: &mut Net, conn: ConnId) {
        self.links.on_close(conn);
        if self.master == Some(conn) {
            self.master = None;
            self.elect(net);
        }
    }

    fn elect(&mut self, net: &mut Net) {
        self.master = self.links.oldest_open();
        if let Some(m) = self.master {
            log::info!("master route_server link is {m:?}");
            pdu_io::send(net, m, 0, &ImRoleSet { master: 1 });
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
        let mut db = DbLinks::new(&servers, 2).unwrap();
        assert_eq!(db.links.len(), 6);
        assert_eq!(db.login_slots, 2);
        let ports: Vec<u16> = db.links.slots().iter().map(|s| s.port).collect();
        assert_eq!(ports, vec![1, 1, 2, 2, 3, 3]);
        assert_eq!(db.pick(), None, "nothing connected");
    }
}
