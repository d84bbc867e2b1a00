//! msg_server: the client-facing TeamTalk IM server (the original's `server/src/msg_server`).
//!
//! Layered one way, each module using only those above it in this list:
//!
//! | module | holds | original |
//! |---|---|---|
//! | [`settings`] | the conf file's keys | `msg_server.cpp` (start-up) |
//! | [`wire`] | attach_data, user-id access, received server PDUs | `CPduAttachData` use |
//! | [`clients`], [`users`] | client connections, logged-in users | `CMsgConn` data, `CImUser(Manager)` |
//! | [`group_queue`] | stored group messages waiting for their members, per group | |
//! | [`alert`] | the text and data of an offline push, the bounds of its lookups | `CMsgConn`'s push building (`_HandleGetDeviceTokenResponse`) |
//! | [`links`] | db_proxy, route_server, login_server, file_server, push_server links and their sends | `CDBServConn`, `CRouteServConn`, `CLoginServConn`, `CFileServConn`, `CPushServConn` |
//! | [`state`] | what handlers work on, and what several of them do alike | |
//! | [`handlers`] | one module per command family, the forward table, the dispatch table | `CMsgConn::HandlePdu` and the servers' `HandlePdu` |
//! | [`server`] | the [`tt_common::service::PduService`]: connection kinds and dispatch | |
//!
//! Usage: `msg_server [-v | -c CONF]` (default conf `./msgserver.conf`).

mod alert;
mod clients;
mod group_queue;
mod handlers;
mod links;
mod server;
mod settings;
mod state;
mod users;
mod wire;

use std::process::ExitCode;

use netlib::{Config, EventLoop};
use tt_common::service::PduServer;
use tt_common::{Conf, daemon};

/// File descriptors beyond `MaxConnCnt` the server needs: its listeners, links, log and
/// metrics connections, and the clients it accepts only to refuse.
const FD_MARGIN: u64 = 1024;

/// Raises the soft limit of open files to the hard limit (one descriptor per client
/// connection: the usual soft limit of 1024 would cap the clients far below `MaxConnCnt`) and
/// logs the limit, with a warning when it is too low for `max_conns` clients.
fn raise_fd_limit(max_conns: usize) {
    let (soft, hard) = match rlimit::getrlimit(rlimit::Resource::NOFILE) {
        Ok(limits) => limits,
        Err(e) => {
            log::warn!("cannot read the open-files limit: {e}");
            return;
        }
    };
    let limit = match rlimit::increase_nofile_limit(hard) {
        Ok(raised) => raised,
        Err(e) => {
            log::warn!("cannot raise the open-files limit from {soft} to {hard}: {e}");
            soft
        }
    };
    if limit > soft {
        log::info!("open-files limit raised from {soft} to {limit} (the hard limit)");
    } else {
        log::info!("open-files limit: {limit}");
    }
    let needed = (max_conns as u64).saturating_add(FD_MARGIN);
    if limit < needed {
        log::warn!(
            "the open-files limit {limit} is below MaxConnCnt={max_conns} + {FD_MARGIN}: \
             clients past about {} are refused (raise the hard limit: LimitNOFILE= in a \
             systemd unit, `ulimit -Hn` as root, /etc/security/limits.conf)",
            limit.saturating_sub(FD_MARGIN)
        );
    }
}

fn main() -> ExitCode {
    daemon::run_main("MsgServer", "msgserver.conf", "msg_server", run)
}

fn run(conf_path: &std::path::Path) -> Result<(), String> {
    let settings = Conf::load(conf_path)
        .and_then(|c| settings::Settings::from_conf(&c))
        .map_err(|e| e.to_string())?;
    let max_conns = settings.max_conn_cnt as usize;
    raise_fd_limit(max_conns);
    let config = Config {
        output_high_water: settings.max_output_buffer,
        // Room for MaxConnCnt clients, the server links and the connections refused at once.
        max_connections: Config::default()
            .max_connections
            .max(max_conns.saturating_add(FD_MARGIN as usize)),
        ..Config::default()
    };
    let mut ev =
        EventLoop::new(config).map_err(|e| format!("cannot create the event loop: {e}"))?;
    let net = ev.net();
    daemon::listen_all(net, &settings.listen_ips, settings.listen_port)?;
    let service = server::MsgServer::start(&settings, net)?;
    let mut server = PduServer::new(service, net);
    daemon::serve("msg_server", &mut ev, &mut server)
}
