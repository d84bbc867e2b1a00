//! login_server: keeps the registry of running msg_servers and tells clients which one to use
//! (base-login-route.md §3), over HTTP (`/msg_server`) and over the binary client port
//! (`CID_LOGIN_REQ_MSGSERVER`).
//!
//! Conf `loginserver.conf`: `ClientListenIP`, `ClientPort`, `HttpListenIP`, `HttpPort`,
//! `MsgServerListenIP`, `MsgServerPort` (IP keys take `;` lists), `msfs`, `discovery`.

mod http;
mod registry;
mod server;

use std::process::ExitCode;

use netlib::{Config, EventLoop};
use tt_common::Conf;
use tt_common::daemon;

use crate::server::{Kind, LoginServer};

fn main() -> ExitCode {
    daemon::run_main("LoginServer", "loginserver.conf", "login_server", run)
}

fn run(conf_path: &std::path::Path) -> Result<(), String> {
    let conf = Conf::load(conf_path).map_err(|e| e.to_string())?;
    let list = |key: &str| conf.require_list(key, ';').map_err(|e| e.to_string());
    let port = |key: &str| conf.require_parse::<u16>(key).map_err(|e| e.to_string());
    let client_ips = list("ClientListenIP")?;
    let client_port = port("ClientPort")?;
    let http_ips = list("HttpListenIP")?;
    let http_port = port("HttpPort")?;
    let msg_ips = list("MsgServerListenIP")?;
    let msg_port = port("MsgServerPort")?;
    let msfs = conf.require("msfs").map_err(|e| e.to_string())?.to_string();
    let discovery = conf
        .require("discovery")
        .map_err(|e| e.to_string())?
        .to_string();

    let config = Config {
        // Nothing legitimate sent to login_server comes near this (PDUs are capped at 64 KiB,
        // HTTP requests at 1 KiB).
        max_input: 256 * 1024,
        ..Config::default()
    };
    let mut ev = EventLoop::new(config).map_err(|e| format!("event loop: {e}"))?;
    let mut service = LoginServer::new(msfs, discovery);
    let net = ev.net();
    for (ips, port, kind) in [
        (&client_ips, client_port, Kind::Client),
        (&http_ips, http_port, Kind::Http),
        (&msg_ips, msg_port, Kind::MsgServer),
    ] {
        for id in daemon::listen_all(net, ips, port)? {
            service.add_listener(id, kind);
        }
    }
    service.start(ev.net());
    daemon::write_pid_file().map_err(|e| format!("cannot write server.pid: {e}"))?;
    daemon::announce_ready("login_server");
    ev.run(&mut service)
        .map_err(|e| format!("event loop failed: {e}"))
}
