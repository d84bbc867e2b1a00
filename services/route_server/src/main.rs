//! route_server: the hub between msg_servers (and http_msg_server). It tracks on which
//! msg_servers each user has sessions of which client types, answers presence queries,
//! generates the presence notifications and relays cross-server traffic
//! (base-login-route.md §4).
//!
//! Conf `routeserver.conf`: `ListenIP` (`;` list), `ListenMsgPort`.

mod presence;
mod server;

use std::process::ExitCode;

use netlib::{Config, EventLoop};
use tt_common::Conf;
use tt_common::daemon;

fn main() -> ExitCode {
    daemon::run_main("RouteServer", "routeserver.conf", "route_server", run)
}

fn run(conf_path: &std::path::Path) -> Result<(), String> {
    let conf = Conf::load(conf_path).map_err(|e| e.to_string())?;
    let ips = conf
        .require_list("ListenIP", ';')
        .map_err(|e| e.to_string())?;
    let port: u16 = conf
        .require_parse("ListenMsgPort")
        .map_err(|e| e.to_string())?;

    let mut ev = EventLoop::new(Config::default()).map_err(|e| format!("event loop: {e}"))?;
    let net = ev.net();
    let listeners = daemon::listen_all(net, &ips, port)?;
    let mut service = server::RouteServer::new(listeners);
    service.start(ev.net());
    daemon::write_pid_file().map_err(|e| format!("cannot write server.pid: {e}"))?;
    daemon::announce_ready("route_server");
    ev.run(&mut service)
        .map_err(|e| format!("event loop failed: {e}"))
}
