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

use netlib::Net;

use crate::settings::Settings;

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
        self.db.start(net);
        self.login.start(net);
        self.route.start(net);
    }

    /// Once a second: reconnects, in the same order.
    pub fn tick(&mut self, net: &mut Net) {
        self.db.tick(net);
        self.login.tick(net);
        self.route.tick(net);
    }
}
