//! Metrics and health on the optional `MetricsPort` (served by [`tt_metrics::Endpoint`]),
//! shared by every daemon.
//!
//! Conf keys, read once by [`crate::daemon::run_main`]: `MetricsPort` (absent or 0: no
//! listener) and `MetricsIP` (default `127.0.0.1`). [`crate::daemon::serve`] opens the
//! listener on the daemon's loop and hands it to the handler ([`Observed`]).
//!
//! A [`crate::PduServer`] reports for every PDU daemon: connections by kind, PDUs and bytes
//! in and out by command, dropped PDUs by reason; the service adds its own families
//! ([`crate::PduService::metrics`]) and says whether its required links are up
//! ([`crate::PduService::health`]).

use std::net::SocketAddr;
use std::sync::OnceLock;

pub use tt_metrics::{
    CommandHistograms, Counter, DropReason, Endpoint, MAX_CONNS, PDUS_IN, PDUS_OUT, Scrape, Source,
    dropped, write_dropped, write_pdus,
};

use crate::conf::{Conf, ConfError};
use crate::links::{ServerLinks, resolve};

/// `MetricsIP` when the conf has none.
pub const DEFAULT_METRICS_IP: &str = "127.0.0.1";

static ADDR: OnceLock<Option<SocketAddr>> = OnceLock::new();

/// The metrics address of a conf: `MetricsIP`:`MetricsPort`, `None` when `MetricsPort` is
/// absent or 0.
pub fn metrics_addr(conf: &Conf) -> Result<Option<SocketAddr>, ConfError> {
    let port: u16 = conf.get_parse("MetricsPort", 0)?;
    if port == 0 {
        return Ok(None);
    }
    let ip = conf.get("MetricsIP").unwrap_or(DEFAULT_METRICS_IP);
    resolve(ip, port)
        .map(Some)
        .ok_or_else(|| conf.invalid("MetricsIP", ip, "a resolvable address"))
}

/// Sets the process's metrics address (once, from its conf; later calls change nothing).
pub fn set_metrics_addr(addr: Option<SocketAddr>) {
    let _ = ADDR.set(addr);
}

/// The process's metrics address, `None` when off.
pub fn configured_addr() -> Option<SocketAddr> {
    ADDR.get().copied().flatten()
}

/// A loop handler with a metrics port: [`crate::daemon::serve`] gives it the endpoint.
pub trait Observed {
    fn endpoint(&mut self) -> &mut Endpoint;
}

/// `MsgServer` → `msg_server`: a connection kind's `Debug` name as a label value.
pub fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else if c.is_ascii_alphanumeric() || c == '_' {
            out.push(c);
        } else {
            out.push('_');
        }
    }
    out
}

/// `tt_link_up{peer="<kind>/<host>:<port>"}`: 1 while a link to that server is open, 0 while
/// it is down (several links to one server: 1 if any is open).
pub fn write_links(out: &mut Scrape, links: &[&ServerLinks]) {
    let mut rows: Vec<(String, i64)> = Vec::new();
    for l in links {
        for slot in l.slots() {
            let peer = format!("{}/{}:{}", l.kind(), slot.host, slot.port);
            let up = i64::from(slot.open_conn().is_some());
            match rows.iter_mut().find(|(p, _)| *p == peer) {
                Some((_, v)) => *v = (*v).max(up),
                None => rows.push((peer, up)),
            }
        }
    }
    out.gauge_family(
        "tt_link_up",
        "Whether a link to this server is open (1) or down (0)",
        "peer",
        rows,
    );
}

/// `Err("no <kind> link")` unless one of `links` is open.
pub fn require_link(links: &ServerLinks) -> Result<(), String> {
    if links.any_open() {
        Ok(())
    } else {
        Err(format!("no {} link", links.kind()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_as_labels() {
        assert_eq!(snake_case("MsgServer"), "msg_server");
        assert_eq!(snake_case("Db"), "db");
        assert_eq!(snake_case("Http"), "http");
    }

    #[test]
    fn conf_keys() {
        let conf = Conf::parse("MetricsPort=9101\n", "x.conf");
        assert_eq!(
            metrics_addr(&conf).unwrap(),
            Some("127.0.0.1:9101".parse().unwrap())
        );
        let conf = Conf::parse("MetricsPort=0\nMetricsIP=0.0.0.0\n", "x.conf");
        assert_eq!(metrics_addr(&conf).unwrap(), None);
        let conf = Conf::parse("ListenPort=1\n", "x.conf");
        assert_eq!(metrics_addr(&conf).unwrap(), None);
        let conf = Conf::parse("MetricsPort=70000\n", "x.conf");
        assert!(metrics_addr(&conf).is_err());
        let conf = Conf::parse("MetricsPort=9\nMetricsIP=0.0.0.0\n", "x.conf");
        assert_eq!(
            metrics_addr(&conf).unwrap(),
            Some("0.0.0.0:9".parse().unwrap())
        );
    }
}
