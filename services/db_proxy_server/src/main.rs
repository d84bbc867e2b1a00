//! db_proxy_server: the only daemon that talks to MySQL and Redis. msg_server (and
//! http_msg_server) send it protobuf requests; a pool of `ThreadNum` worker threads runs them
//! against the databases and the replies go back on the connection they came from
//! (storage-file.md §1, §4, §5; base-login-route.md §2.12).
//!
//! A sync thread ([`sync`], the original's `CSyncCenter`) keeps the members' group sessions and
//! the user change time up to date; it is stopped and joined when the event loop ends
//! (SIGTERM, SIGINT: after every request taken is answered, see `server`).
//!
//! Conf `dbproxyserver.conf`: `ListenIP`, `ListenPort`, `ThreadNum`, `StoreBatchMax`, `MsfsSite`, `aesKey`,
//! `DBInstances` (+ per-pool keys), `CacheInstances` (+ per-pool keys): see `settings`.

mod handlers;
mod id_cache;
mod metrics;
mod model;
mod msfs;
mod server;
mod settings;
mod store;
mod sync;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::ExitCode;
use std::sync::atomic::AtomicU32;
use std::sync::{Arc, Mutex};

use crossbeam_channel::Receiver;
use netlib::{Config, EventLoop, Poster};
use tt_common::{Conf, PduServer, daemon};
use tt_proto::crypto::MsgCipher;

use crate::handlers::{LoginFailures, Shared};
use crate::server::{Job, Msg, Server};
use crate::settings::{CACHE_GROUP_MEMBER, CACHE_GROUP_SET, CACHE_TOKEN, CACHE_UNREAD, Settings};
use crate::store::Stores;

/// Jobs the shared worker channel holds per worker thread.
const JOBS_PER_WORKER: usize = 16;

fn main() -> ExitCode {
    daemon::run_main(
        "DBProxyServer",
        "dbproxyserver.conf",
        "db_proxy_server",
        run,
    )
}

/// The audio placeholder (storage-file.md §4.10): `[语音]` encrypted the way clients encrypt
/// message text, with the conf's `aesKey`.
fn audio_placeholder(key: &[u8]) -> Result<Vec<u8>, String> {
    let cipher = MsgCipher::new(key).map_err(|e| format!("aesKey: {e}"))?;
    cipher
        .encrypt("[语音]".as_bytes())
        .map_err(|e| format!("aesKey: {e}"))
}

fn run(conf_path: &std::path::Path) -> Result<(), String> {
    let conf = Conf::load(conf_path).map_err(|e| e.to_string())?;
    let settings = Settings::from_conf(&conf).map_err(|e| e.to_string())?;

    // Like the original, refuse to start when a database cannot be reached.
    let mut probe = Stores::new(&settings.master, &settings.slave, &settings.caches);
    probe
        .connect_all()
        .map_err(|e| format!("database check failed: {e}"))?;
    let last_update = model::user::initial_update_time(&mut probe);

    let msfs = msfs::Msfs::new(&settings.msfs_site);
    if !msfs.has_upload_url() {
        log::warn!(
            "MsfsSite={} is not an http://host[:port] URL: audio uploads will fail",
            settings.msfs_site
        );
    }
    let shared = Arc::new(Shared {
        msfs,
        last_update: AtomicU32::new(last_update),
        audio_placeholder: audio_placeholder(&settings.aes_key)?,
        login_failures: Mutex::new(LoginFailures::default()),
        ids: id_cache::IdCache::default(),
    });

    // Each worker holds one connection per pool: a pool uses ThreadNum connections.
    let pools = [
        (&settings.master.name, settings.master.max_conn),
        (&settings.slave.name, settings.slave.max_conn),
    ];
    let used = [
        CACHE_UNREAD,
        CACHE_GROUP_SET,
        CACHE_TOKEN,
        CACHE_GROUP_MEMBER,
    ];
    let caches = settings
        .caches
        .iter()
        .filter(|c| used.contains(&c.name.as_str()))
        .map(|c| (&c.name, c.max_conn));
    for (name, max) in pools.into_iter().chain(caches) {
        if (settings.thread_num as u64) > u64::from(max) {
            log::warn!(
                "pool {name}: {} worker threads each hold one connection, above its \
                 maxconncnt {max}",
                settings.thread_num
            );
        }
    }

    let mut ev: EventLoop<Msg> =
        EventLoop::new(Config::default()).map_err(|e| format!("event loop: {e}"))?;
    let (jobs_tx, jobs_rx) =
        crossbeam_channel::bounded::<Job>(settings.thread_num * JOBS_PER_WORKER);
    let settings = Arc::new(settings);
    let mut workers = Vec::with_capacity(settings.thread_num);
    for i in 0..settings.thread_num {
        let (rx, poster, settings, shared) = (
            jobs_rx.clone(),
            ev.poster(),
            settings.clone(),
            shared.clone(),
        );
        let spawned = std::thread::Builder::new()
            .name(format!("db-worker-{i}"))
            .spawn(move || worker(rx, poster, &settings, &shared))
            .map_err(|e| format!("cannot start worker thread: {e}"))?;
        workers.push(spawned);
    }
    drop(jobs_rx);

    daemon::listen_all(ev.net(), &settings.listen_ips, settings.listen_port)?;
    let mut server = PduServer::new(Server::new(jobs_tx), ev.net());
    log::info!(
        "db_proxy_server: {} worker threads, up to {} messages stored per transaction, msfs \
         upload url {}/",
        settings.thread_num,
        settings.store_batch_max,
        settings.msfs_site
    );
    // The start-up connections go on serving the sync thread.
    let sync = sync::SyncCenter::start(probe, shared)?;
    let served = daemon::serve("db_proxy_server", &mut ev, &mut server);
    sync.stop();
    // A graceful stop left no job: the workers end once the channel closes. After a stop cut
    // short, a worker may hang on a database: the process ends without it.
    drop(server);
    if served.is_ok() {
        for w in workers {
            let _ = w.join();
        }
    }
    served
}

/// One worker thread: owns its database connections, runs jobs until the I/O thread is gone.
///
/// A message to store takes with it every message job waiting in the queue, up to
/// `StoreBatchMax`, and they are stored in one transaction (see `model::batch`). The first
/// other job it meets ends the batch and runs after the batch is answered, so a worker never
/// runs a request before one that came earlier on the same queue.
fn worker(jobs: Receiver<Job>, poster: Poster<Msg>, settings: &Settings, shared: &Shared) {
    let new_stores = || Stores::new(&settings.master, &settings.slave, &settings.caches);
    let mut stores = new_stores();
    let mut held: Option<Job> = None;
    loop {
        let job = match held.take() {
            Some(job) => job,
            None => match jobs.recv() {
                Ok(job) => job,
                Err(_) => break,
            },
        };
        let started = std::time::Instant::now();
        let mut batch = vec![job];
        if handlers::is_batched(batch[0].header.command_id) {
            while batch.len() < settings.store_batch_max {
                match jobs.try_recv() {
                    Ok(next) if handlers::is_batched(next.header.command_id) => batch.push(next),
                    Ok(next) => {
                        held = Some(next);
                        break;
                    }
                    Err(_) => break,
                }
            }
        }
        let run = catch_unwind(AssertUnwindSafe(|| {
            if handlers::is_batched(batch[0].header.command_id) {
                let requests: Vec<_> = batch.iter().map(|j| (&j.header, &j.body[..])).collect();
                handlers::handle_batch(&mut stores, shared, &requests)
            } else {
                let one = &batch[0];
                vec![handlers::handle(
                    &mut stores,
                    shared,
                    &one.header,
                    &one.body,
                )]
            }
        }));
        let elapsed = started.elapsed();
        let replies = match run {
            Ok(replies) => replies,
            Err(_) => {
                log::error!(
                    "handler of 0x{:04x} ({} requests) panicked; requests dropped, connections \
                     reopened",
                    batch[0].header.command_id,
                    batch.len()
                );
                stores = new_stores();
                Vec::new()
            }
        };
        let mut replies = replies.into_iter();
        for job in &batch {
            metrics::LATENCY.observe(job.header.command_id, elapsed);
            let done = Msg::Done {
                conn: job.conn,
                reply: replies.next().flatten(),
            };
            if poster.post(done).is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn placeholder_with_the_default_key() {
        let key = b"12345678901234567890123456789012";
        assert_eq!(
            super::audio_placeholder(key).unwrap(),
            b"QhGXlpFjvMFUNrtl1aaPzA=="
        );
    }
}
