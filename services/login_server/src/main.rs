//! login_server: keeps the registry of running msg_servers and tells clients which one to use
//! (base-login-route.md §3), over HTTP (`/msg_server`) and over the binary client port
//! (`CID_LOGIN_REQ_MSGSERVER`).
//!
//! Conf `loginserver.conf`: see [`settings`].

mod http;
mod registry;
mod server;
mod settings;

use std::process::ExitCode;

use netlib::{Config, EventLoop};
use tt_common::{Conf, PduServer, daemon};

use crate::server::LoginServer;
use crate::settings::Settings;

fn main() -> ExitCode {
    daemon::run_main("LoginServer", "loginserver.conf", "login_server", run)
}

fn run(conf_path: &std::path::Path) -> Result<(), String> {
    let settings = Conf::load(conf_path)
        .and_then(|c| Settings::from_conf(&c))
        .map_err(|e| e.to_string())?;
    let config = Config {
        // Nothing legitimate sent to login_server comes near this (PDUs are capped at 64 KiB,
        // HTTP requests at 1 KiB).
        max_input: 256 * 1024,
        ..Config::default()
    };
    let mut ev = EventLoop::new(config).map_err(|e| format!("event loop: {e}"))?;
    let mut listeners = Vec::new();
    for (ips, port, kind) in settings.listeners() {
        for id in daemon::listen_all(ev.net(), ips, port)? {
            listeners.push((id, kind));
        }
    }
    let service = LoginServer::new(listeners, settings.msfs, settings.discovery)
        .http_timeout(settings.http_timeout);
    let mut server = PduServer::new(service, ev.net());
    daemon::serve("login_server", &mut ev, &mut server)
}
