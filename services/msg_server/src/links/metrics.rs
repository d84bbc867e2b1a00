//! The links on the metrics port: their state per peer, and what `/healthz` requires.

use tt_common::metrics::{self, Scrape};

use super::Links;

impl Links {
    /// `tt_link_up` of every configured db_proxy, route, login, file and push server.
    pub fn write_metrics(&self, out: &mut Scrape) {
        metrics::write_links(
            out,
            &[
                &self.db.pool.links,
                &self.route.route.links,
                &self.login.links,
                &self.file.links,
                &self.push.links,
            ],
        );
    }

    /// Healthy with a db_proxy link and a route_server link open.
    pub fn health(&self) -> Result<(), String> {
        metrics::require_link(&self.db.pool.links)?;
        metrics::require_link(&self.route.route.links)
    }
}
