//! route_server: the hub between msg_servers (and http_msg_server). It tracks on which
//! msg_servers each user has sessions of which client types, answers presence queries,
//! generates the presence notifications and relays cross-server traffic
//! (base-login-route.md §4).
//!
//! Conf `routeserver.conf`: `ListenIP` (`;` list), `ListenMsgPort`.

mod presence;
mod server;
mod settings;

use std::process::ExitCode;

use netlib::{Config, EventLoop};
use tt_common::{Conf, PduServer, daemon};

use crate::server::RouteServer;
use crate::settings::Settings;

fn main() -> ExitCode {
    daemon::run_main("RouteServer", "routeserver.conf", "route_server", run)
}

fn run(conf_path: &std::path::Path) -> Result<(), String> {
    let settings = Conf::load(conf_path)
        .and_then(|c| Settings::from_conf(&c))
        .map_err(|e| e.to_string())?;
    let mut ev = EventLoop::new(Config::default()).map_err(|e| format!("event loop: {e}"))?;
    let listeners = daemon::listen_all(ev.net(), &settings.listen_ips, settings.listen_port)?;
    let mut server = PduServer::new(RouteServer::new(listeners), ev.net());
    daemon::serve("route_server", &mut ev, &mut server)
}
