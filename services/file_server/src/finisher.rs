//! The end of offline uploads, off the event loop: the file synced (up to `MaxFileSize`
//! bytes), renamed to its final name and its directory synced, on one helper thread, so the
//! loop serves the other transfers meanwhile. The loop hands a [`Job`] over a bounded channel;
//! the outcome comes back to it as a [`Finished`] through its inbox
//! ([`tt_common::PduService::message`]), and only then does the uploader hear DONE or CANCEL.

use std::io;
use std::path::PathBuf;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};
use netlib::{ConnId, Disconnected, Poster};

use crate::store::Upload;

/// Most finishes handed over and not taken by the thread yet; one more is refused (CANCEL).
pub const QUEUE: usize = 256;

/// An upload whose last block is written.
pub struct Job {
    pub task: String,
    /// The uploader's connection, to answer.
    pub conn: ConnId,
    /// Disk bytes the task reserved; the loop settles them with the outcome.
    pub reserved: u64,
    pub upload: Upload,
}

/// The outcome of a [`Job`], posted to the loop.
#[derive(Debug)]
pub struct Finished {
    pub task: String,
    pub conn: ConnId,
    pub reserved: u64,
    /// The file's final path (complete on success).
    pub dest: PathBuf,
    /// The file's length; on an error the temporary file is removed already.
    pub result: io::Result<u64>,
}

/// Starts the thread; it ends once every sender is dropped and its queue is done.
pub fn spawn(poster: Poster<Finished>) -> io::Result<(Sender<Job>, JoinHandle<()>)> {
    let (jobs, queue) = crossbeam_channel::bounded(QUEUE);
    let handle = std::thread::Builder::new()
        .name("file-finisher".into())
        .spawn(move || run(&queue, &poster))?;
    Ok((jobs, handle))
}

fn run(queue: &Receiver<Job>, poster: &Poster<Finished>) {
    for job in queue {
        let dest = job.upload.dest().to_path_buf();
        let result = job.upload.finish();
        let done = Finished {
            task: job.task,
            conn: job.conn,
            reserved: job.reserved,
            dest,
            result,
        };
        // A loop that is gone (the daemon ending) has nobody to answer; the file is in place.
        if let Err(Disconnected(d)) = poster.post(done) {
            log::info!("task {}: upload finished after the loop ended", d.task);
        }
    }
}
