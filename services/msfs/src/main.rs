//! msfs: the HTTP image store of TeamTalk (storage-file.md §8): multipart uploads stored
//! under `BaseDir` in the original's layout, downloads streamed from disk.
//!
//! Conf `msfs.conf`: see [`settings`]; threads and bounds: see [`server`].

mod download;
mod server;
mod settings;
mod store;
mod upload;

use std::process::ExitCode;
use std::time::Duration;

use netlib::{Config, EventLoop};
use tt_common::{Conf, daemon};

use crate::server::Msfs;
use crate::settings::Settings;
use crate::store::Store;

/// Uploads waiting for a writer thread (their bytes also count in `MaxUploadMemory`).
const WRITER_QUEUE: usize = 256;

fn main() -> ExitCode {
    daemon::run_main("MSFS", "msfs.conf", "msfs", run)
}

fn run(conf_path: &std::path::Path) -> Result<(), String> {
    let settings = Conf::load(conf_path)
        .and_then(|c| Settings::from_conf(&c))
        .map_err(|e| e.to_string())?;
    let store = Store::open(
        &settings.base_dir,
        settings.files_per_dir,
        settings.file_cnt,
    )?;
    let config = Config {
        // Input is moved into the request as it arrives; this bounds one turn's unparsed
        // bytes of a connection.
        max_input: 2 * 1024 * 1024,
        max_connections: settings.max_connections,
        ..Config::default()
    };
    let mut ev = EventLoop::new(config).map_err(|e| format!("event loop: {e}"))?;
    let listeners = daemon::listen_all(ev.net(), &settings.listen_ips, settings.listen_port)?;
    let (jobs, queue) = crossbeam_channel::bounded(WRITER_QUEUE);
    let mut writers = Vec::with_capacity(settings.post_threads);
    for i in 0..settings.post_threads {
        let (queue, poster) = (queue.clone(), ev.poster());
        let spawned = std::thread::Builder::new()
            .name(format!("msfs-writer-{i}"))
            .spawn(move || server::writer(queue, poster))
            .map_err(|e| format!("cannot start a writer thread: {e}"))?;
        writers.push(spawned);
    }
    drop(queue);
    log::info!(
        "BaseDir {} FileCnt={} FilesPerDir={} writers={} MaxUploadSize={}",
        settings.base_dir.display(),
        store.file_cnt(),
        settings.files_per_dir,
        settings.post_threads,
        settings.max_upload
    );
    ev.net().add_timer(Duration::from_secs(1), server::TICK);
    let mut msfs = Msfs::new(&settings, listeners, store, jobs);
    let result = daemon::serve("msfs", &mut ev, &mut msfs);
    // Uploads already with a writer are finished before the process ends.
    drop(msfs);
    drop(ev);
    for w in writers {
        let _ = w.join();
    }
    result
}
