//! Links to db_proxy_server: the original's `CDBServConn` (`DBServConn.cpp`).
//!
//! With D configured db_proxy entries and C = `ConcurrentDBConnCnt`, D×C links are opened
//! (the C links of entry 1 first, then those of entry 2, …). The first ⌊D/2⌋×C links form the
//! **login pool** (validation, unread counts, message lists, messages by id, recent sessions,
//! user info), the rest the **general pool**; each pool falls back to the other when it has no
//! connected link. Within a pool a connected link is chosen at random. Nothing is sent on
//! connect. A link that received `CID_OTHER_STOP_RECV_PACKET` is no longer chosen. The pools
//! and the choice are [`tt_common::pools::DbPool`]; this module adds msg_server's ways of
//! sending through them.

use netlib::{CloseReason, ConnId, Net};
use tt_common::pdu_io;
use tt_common::pools::DbPool;
use tt_proto::Command;
use tt_proto::pdu::Header;

/// Which pool a request is taken from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pool {
    Login,
    General,
}

pub struct DbLinks {
    pub(super) pool: DbPool,
}

impl DbLinks {
    pub fn new(servers: &[(String, u16)], per_server: usize) -> Result<DbLinks, String> {
        Ok(DbLinks {
            pool: DbPool::new(servers, per_server)?,
        })
    }

    pub fn connected(&mut self, net: &mut Net, conn: ConnId) {
        self.pool.links.on_connect(conn, net.now());
    }

    pub fn closed(&mut self, conn: ConnId, reason: CloseReason) {
        log::debug!("db_proxy link {conn:?} closed: {reason:?}");
        self.pool.closed(conn);
    }

    /// `CID_OTHER_STOP_RECV_PACKET`: the link is no longer chosen.
    pub fn stop_sending(&mut self, conn: ConnId) {
        self.pool.stop_sending(conn);
    }

    /// A connected link of `pool`, else of the other pool, chosen at random.
    pub fn pick(&mut self, pool: Pool) -> Option<ConnId> {
        match pool {
            Pool::Login => self.pool.pick_login(),
            Pool::General => self.pool.pick_general(),
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
}
