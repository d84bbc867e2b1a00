//! file_server: relays files between two clients (online transfer) and stores files for a
//! later download (offline transfer), for the tasks msg_servers create (storage-file.md §7).
//!
//! Conf `fileserver.conf`: see [`settings`].

mod client_side;
mod finisher;
mod msg_side;
mod server;
mod settings;
mod store;
mod task_id;
mod tasks;

use std::process::ExitCode;

use netlib::{Config, EventLoop};
use tt_common::{Conf, PduServer, daemon};

use crate::server::{FileServer, Kind, MAX_CLIENT_PDU_LEN};
use crate::settings::Settings;
use crate::store::Store;
use crate::task_id::Random;

fn main() -> ExitCode {
    daemon::run_main("FileServer", "fileserver.conf", "file_server", run)
}

fn run(conf_path: &std::path::Path) -> Result<(), String> {
    let settings = Conf::load(conf_path)
        .and_then(|c| Settings::from_conf(&c))
        .map_err(|e| e.to_string())?;
    let random = Random::open().map_err(|e| format!("cannot open /dev/urandom: {e}"))?;
    let config = Config {
        // Two PDUs of the largest kind.
        max_input: 2 * MAX_CLIENT_PDU_LEN as usize,
        // Two connections per task, plus the msg_server links and logins in progress.
        max_connections: settings
            .limits
            .max_tasks
            .saturating_mul(2)
            .saturating_add(1024),
        ..Config::default()
    };
    let mut ev = EventLoop::new(config).map_err(|e| format!("event loop: {e}"))?;
    let mut listeners = Vec::new();
    for (ips, port, kind) in [
        (&settings.client_ips, settings.client_port, Kind::Client),
        (
            &settings.msg_server_ips,
            settings.msg_server_port,
            Kind::MsgServer,
        ),
    ] {
        for id in daemon::listen_all(ev.net(), ips, port)? {
            listeners.push((id, kind));
        }
    }
    log::info!(
        "advertised to msg_servers: {} (port {}); TaskTimeout={}",
        settings.advertised_ips.join(";"),
        settings.client_port,
        settings.task_timeout
    );
    let store = Store::open(&settings.store);
    let (finisher, finisher_thread) = finisher::spawn(ev.poster())
        .map_err(|e| format!("cannot start the finisher thread: {e}"))?;
    let service = FileServer::new(listeners, &settings, store, random, finisher);
    let mut server = PduServer::new(service, ev.net());
    let served = daemon::serve("file_server", &mut ev, &mut server);
    server.service_mut().abort_uploads();
    // Finishes already handed over (a stop cut at StopTimeout) complete before the end.
    drop(server);
    drop(ev);
    let _ = finisher_thread.join();
    served
}
