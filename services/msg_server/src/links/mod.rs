//! msg_server's outgoing links, one module per kind of server; each owns its connections and
//! the ways of sending to them.
//!
//! | original class | module |
//! |---|---|
//! | `CDBServConn` (db_proxy links, login/general pools) | [`db`] |
//! | `CRouteServConn` (route_server links, master choice) | [`route`] |
//! | `CLoginServConn` (login_server links) | [`login`] |
//! | `CFileServConn` (file_server links, address lists) | [`file`] |
//! | `CPushServConn` (push_server links, the current one) | [`push`] |

pub mod db;
pub mod file;
pub mod login;
mod metrics;
pub mod push;
pub mod route;

use std::time::{SystemTime, UNIX_EPOCH};

use netlib::{ConnId, Net};
use tt_common::ServerLinks;

use crate::settings::Settings;

/// The kinds of links.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    Db,
    Route,
    Login,
    File,
    Push,
}

pub struct Links {
    pub db: db::DbLinks,
    pub route: route::RouteLinks,
    pub login: login::LoginLinks,
    pub file: file::FileLinks,
    pub push: push::PushLinks,
}

impl Links {
    /// Every configured target, resolved (an unresolvable one is an error).
    pub fn new(settings: &Settings) -> Result<Links, String> {
        Ok(Links {
            db: db::DbLinks::new(&settings.db_servers, settings.concurrent_db_conn_cnt)?,
            route: route::RouteLinks::new(settings.route_servers.clone())?,
            login: login::LoginLinks::new(settings)?,
            file: file::FileLinks::new(settings.file_servers.clone())?,
            push: push::PushLinks::new(settings.push_servers.clone())?,
        })
    }

    /// Connects every link (db_proxy, login_server, route_server, file_server, push_server:
    /// the original's order).
    pub fn start(&mut self, net: &mut Net) {
        for links in self.each() {
            links.start(net);
        }
    }

    /// Once a second: reconnects the links whose back-off has passed, in the same order.
    pub fn tick(&mut self, net: &mut Net) {
        for links in self.each() {
            links.tick(net);
        }
    }

    /// The kind of link `conn` is, if it is one.
    pub fn kind_of(&self, conn: ConnId) -> Option<Link> {
        [
            (Link::Db, &self.db.pool.links),
            (Link::Route, &self.route.route.links),
            (Link::Login, &self.login.links),
            (Link::File, &self.file.links),
            (Link::Push, &self.push.links),
        ]
        .into_iter()
        .find(|(_, links)| links.slot_of(conn).is_some())
        .map(|(kind, _)| kind)
    }

    fn each(&mut self) -> [&mut ServerLinks; 5] {
        [
            &mut self.db.pool.links,
            &mut self.login.links,
            &mut self.route.route.links,
            &mut self.file.links,
            &mut self.push.links,
        ]
    }
}

/// A pseudo-random number source (xorshift64) for the random choice of a link.
pub struct Rng(u64);

impl Rng {
    /// Seeded from the clock.
    pub fn seeded() -> Rng {
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0x9e37_79b9, |d| d.as_nanos() as u64);
        Rng(seed | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}
