//! push_server: takes `IMPushToUserReq` from msg_servers and delivers the notifications
//! through a push gateway's HTTP API (Gorush: APNs for iOS, FCM for Android, with whatever
//! credentials the gateway holds), where the original spoke Apple's retired binary APNs
//! (msg_server.md §14).
//!
//! Two threads: the event loop answers msg_servers at once and puts notifications into a
//! bounded queue ([`server`]); the sender thread delivers them ([`sender`]) and is stopped and
//! joined when the loop ends (SIGTERM, SIGINT).
//!
//! Conf `pushserver.conf`: `ListenIP`, `ListenPort`, `PushGatewayUrl`, `PushTopic`,
//! `PushTimeoutMs`, `PushQueueSize`, `PushBatchSize`, `PushMaxAttempts`, `PushRetryDelayMs`:
//! see [`settings`].

mod notification;
mod sender;
mod server;
mod settings;

use std::process::ExitCode;
use std::sync::Arc;

use netlib::{Config, EventLoop};
use tt_common::{Conf, PduServer, daemon};

use crate::sender::{Counters, Sender};
use crate::server::PushServer;
use crate::settings::Settings;

fn main() -> ExitCode {
    daemon::run_main("PushServer", "pushserver.conf", "push_server", run)
}

fn run(conf_path: &std::path::Path) -> Result<(), String> {
    let settings = Conf::load(conf_path)
        .and_then(|c| Settings::from_conf(&c))
        .map_err(|e| e.to_string())?;
    for key in &settings.ignored {
        log::warn!("{key} is ignored: the push gateway holds the APNs and FCM credentials");
    }
    match &settings.delivery.push_url {
        Some(url) => log::info!(
            "notifications go to {url} (queue {}, batches of {})",
            settings.queue_size,
            settings.delivery.batch_size
        ),
        None => log::info!("PushGatewayUrl is empty: notifications are logged, not sent"),
    }
    let mut ev = EventLoop::new(Config::default()).map_err(|e| format!("event loop: {e}"))?;
    daemon::listen_all(ev.net(), &settings.listen_ips, settings.listen_port)?;
    let (queue, queued) = crossbeam_channel::bounded(settings.queue_size);
    let counters = Arc::new(Counters::default());
    let sender = Sender::start(settings.delivery, queued, counters.clone())?;
    let mut server = PduServer::new(PushServer::new(queue, counters.clone()), ev.net());
    let served = daemon::serve("push_server", &mut ev, &mut server);
    sender.stop();
    log::info!("{}", counters.summary());
    served
}
