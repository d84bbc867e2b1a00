//! msg_server's outgoing links, one module per kind of server; each owns its connections and
//! the ways of sending to them.
//!
//! | original class | module |
//! |---|---|
//! | `CDBServConn` (db_proxy links, login/general pools) | [`db`] |
//! | `CRouteServConn` (route_server links, master choice) | [`route`] |
//! | `CLoginServConn` (login_server links) | [`login`] |

pub mod db;
pub mod login;
pub mod route;

use netlib::{ConnId, Net};
use tt_common::ServerLinks;

use crate::settings::Settings;

/// The kinds of links.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    Db,
    Route,
    Login,
}

pub struct Links {
    pub db: db::DbPool,
    pub route: route::RouteLinks,
    pub login: login::LoginLinks,
}

impl Links {
    /// Every configured target, resolved (an unresolvable one is an error).
    pub fn new(settings: &Settings) -> Result<Links, String> {
        if !settings.push_servers.is_empty() || !settings.file_servers.is_empty() {
            log::warn!(
                "push_server and file_server links are not supported: those entries are ignored"
            );
        }
        Ok(Links {
            db: db::DbPool::new(&settings.db_servers, settings.concurrent_db_conn_cnt)?,
            route: route::RouteLinks::new(settings.route_servers.clone())?,
            login: login::LoginLinks::new(settings)?,
        })
    }

    /// Connects every link (db_proxy, login_server, route_server: the original's order).
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
            (Link::Db, &self.db.links),
            (Link::Route, &self.route.links),
            (Link::Login, &self.login.links),
        ]
        .into_iter()
        .find(|(_, links)| links.slot_of(conn).is_some())
        .map(|(kind, _)| kind)
    }

    fn each(&mut self) -> [&mut ServerLinks; 3] {
        [
            &mut self.db.links,
            &mut self.login.links,
            &mut self.route.links,
        ]
    }
}
