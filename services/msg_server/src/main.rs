//! msg_server: the client-facing TeamTalk IM server (the original's `server/src/msg_server`).
//!
//! | original class | module |
//! |---|---|
//! | `CMsgConn` (client connections, login, commands) | [`msg_conn`] |
//! | `CImUser`, `CImUserManager` | [`im_user`] |
//! | `CDBServConn` (db_proxy links, login/general pools) | [`db_serv_conn`] |
//! | `CRouteServConn` (route_server links, master choice) | [`route_conn`] |
//! | `CLoginServConn` (login_server links) | [`login_conn`] |
//! | `msg_server.cpp` (conf, start-up) | [`config`], `main` |
//!
//! Usage: `msg_server [-v | -c CONF]` (default conf `./msgserver.conf`).

mod config;
mod db_serv_conn;
mod im_user;
mod login_conn;
mod msg_conn;
mod route_conn;
mod server;

use std::process::ExitCode;

use netlib::{Config, EventLoop};
use tt_common::Conf;
use tt_common::daemon;
use tt_common::pdu_io::TICK;

fn main() -> ExitCode {
    daemon::run_main("MsgServer", "msgserver.conf", "msg_server", run)
}

fn run(conf_path: &std::path::Path) -> Result<(), String> {
    let settings = Conf::load(conf_path)
        .and_then(|c| config::Settings::from_conf(&c))
        .map_err(|e| e.to_string())?;
    if !settings.push_servers.is_empty() || !settings.file_servers.is_empty() {
        log::warn!(
            "push_server and file_server links are not supported: those entries are ignored"
        );
    }
    let mut ev = EventLoop::new(Config::default())
        .map_err(|e| format!("cannot create the event loop: {e}"))?;
    let net = ev.net();
    daemon::listen_all(net, &settings.listen_ips, settings.listen_port)?;
    let mut server = server::MsgServer::new(settings)?;
    net.add_timer(TICK, server::TICK_TIMER);
    server.start(net);
    daemon::write_pid_file().map_err(|e| format!("cannot write server.pid: {e}"))?;
    daemon::announce_ready("msg_server");
    log::info!("msg_server running");
    ev.run(&mut server)
        .map_err(|e| format!("event loop failed: {e}"))
}
