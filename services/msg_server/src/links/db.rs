//! Links to db_proxy_server: the original's `CDBServConn` (`DBServConn.cpp`).
//!
//! With D configured db_proxy entries and C = `ConcurrentDBConnCnt`, D×C links are opened
//! (the C links of entry 1 first, then those of entry 2, …). The first ⌊D/2⌋×C links form the
//! **login pool** (validation, unread counts, message lists, messages by id, recent sessions,
//! user info), the rest the **general pool**; each pool falls back to the other when it has no
//! connected link. Within a pool a connected link is chosen at random. Nothing is sent on
//! connect. A link that received `CID_OTHER_STOP_RECV_PACKET` is no longer chosen.

use std::collections::HashSet;

use netlib::{CloseReason, ConnId, Net};
use tt_common::{ServerLinks, pdu_io};
use tt_proto::Command;
use tt_proto::pdu::Header;

use super::Rng;

/// Which pool a request is taken from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pool {
    Login,
    General,
}

pub struct DbPool {
    pub(super) links: ServerLinks,
    /// Slots `0..login_slots` are the login pool.
    login_slots: usize,
    /// Links that asked not to be sent anything more (`CID_OTHER_STOP_RECV_PACKET`).
    stopped: HashSet<ConnId>,
    /// For the random choice of a link.
    rng: Rng,
}

impl DbPool {
    pub fn new(servers: &[(String, u16)], per_server: usize) -> Result<DbPool, String> {
        let targets = servers
            .iter()
            .flat_map(|t| std::iter::repeat_n(t.clone(), per_server))
            .collect();
        Ok(DbPool {
            links: ServerLinks::new("db_proxy_server", targets)?,
            login_slots: (servers.len() / 2) * per_server,
            stopped: HashSet::new(),
            rng: Rng::seeded(),
        })
    }

    pub fn connected(&mut self, net: &mut Net, conn: ConnId) {
        self.links.on_connect(conn, net.now());
    }

    pub fn closed(&mut self, conn: ConnId, reason: CloseReason) {
        log::debug!("db_proxy link {conn:?} closed: {reason:?}");
        self.stopped.remove(&conn);
        self.links.on_close(conn);
    }

    /// `CID_OTHER_STOP_RECV_PACKET`: the link is no longer chosen.
    pub fn stop_sending(&mut self, conn: ConnId) {
        log::warn!("db_proxy link {conn:?} asked to stop receiving: no longer used");
        self.stopped.insert(conn);
    }

    /// A connected link of `pool`, else of the other pool, chosen at random.
    pub fn pick(&mut self, pool: Pool) -> Option<ConnId> {
        let r = self.rng.next_u64();
        let login = 0..self.login_slots;
        let general = self.login_slots..self.links.len();
        match pool {
            Pool::Login => self.pick_in(login, r).or_else(|| self.pick_in(general, r)),
            Pool::General => self.pick_in(general, r).or_else(|| self.pick_in(login, r)),
        }
    }

    /// Sends a client's request under its received header (body modified) to a link of
    /// `pool`; dropped when no link is up.
    pub fn relay<M: prost::Message>(
        &mut self,
        net: &mut Net,
        pool: Pool,
        header: &Header,
        msg: &M,
    ) {
        if let Some(db) = self.link_for(pool, header.command_id) {
            pdu_io::relay(net, db, header, msg);
        }
    }

    /// Sends a command of this server to a link of `pool`; dropped when no link is up.
    pub fn send<M: Command>(&mut self, net: &mut Net, pool: Pool, seq: u16, msg: &M) {
        if let Some(db) = self.link_for(pool, M::COMMAND_ID) {
            pdu_io::send(net, db, seq, msg);
        }
    }

    fn link_for(&mut self, pool: Pool, command_id: u16) -> Option<ConnId> {
        let db = self.pick(pool);
        if db.is_none() {
            log::debug!("no db_proxy link: {command_id:#06x} dropped");
        }
        db
    }

    /// Uniformly at random among the usable links of `range` (no allocation: this runs for
    /// every request).
    fn pick_in(&self, range: std::ops::Range<usize>, r: u64) -> Option<ConnId> {
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
        let mut pool = DbPool::new(&servers, 2).unwrap();
        assert_eq!(pool.links.len(), 6);
        assert_eq!(pool.login_slots, 2);
        let ports: Vec<u16> = pool.links.slots().iter().map(|s| s.port).collect();
        assert_eq!(ports, vec![1, 1, 2, 2, 3, 3]);
        // Nothing connected: nothing to pick from either pool.
        assert_eq!(pool.pick(Pool::Login), None);
        assert_eq!(pool.pick(Pool::General), None);
    }
}
