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
use tt_common::daemon::{self, Command};
use tt_common::pdu_io::TICK;

fn main() -> ExitCode {
    let conf_path = match daemon::parse_args("MsgServer", "msgserver.conf") {
        Ok(Command::Run { conf }) => conf,
        Ok(Command::Version) => return ExitCode::SUCCESS,
        Err(usage) => {
            eprintln!("{usage}");
            return ExitCode::from(1);
        }
    };
    daemon::init_logging();
    let settings = match Conf::load(&conf_path).and_then(|c| config::Settings::from_conf(&c)) {
        Ok(s) => s,
        Err(e) => {
            log::error!("{e}");
            return ExitCode::from(1);
        }
    };
    if !settings.push_servers.is_empty() || !settings.file_servers.is_empty() {
        log::warn!(
            "push_server and file_server links are not supported: those entries are ignored"
        );
    }
    let mut ev = match EventLoop::new(Config::default()) {
        Ok(ev) => ev,
        Err(e) => {
            log::error!("cannot create the event loop: {e}");
            return ExitCode::from(1);
        }
    };
    let net = ev.net();
    if let Err(e) = daemon::listen_all(net, &settings.listen_ips, settings.listen_port) {
        log::error!("{e}");
        return ExitCode::from(1);
    }
    let mut server = server::MsgServer::new(settings);
    net.add_timer(TICK, server::TICK_TIMER);
    server.start(net);
    if let Err(e) = daemon::write_pid_file() {
        log::error!("cannot write server.pid: {e}");
        return ExitCode::from(1);
    }
    daemon::announce_ready("msg_server");
    log::info!("msg_server running");
    if let Err(e) = ev.run(&mut server) {
        log::error!("event loop failed: {e}");
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}
