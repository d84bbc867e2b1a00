//! The msfs event loop handler: HTTP connections (through `tt_http::HttpConn`), uploads
//! handed to the writer threads, downloads streamed from disk.
//!
//! Threads: the loop thread parses requests, checks download paths, opens files and reads
//! them in 64 KiB chunks into the connection's output, refilling from `on_drain` once the
//! socket took what was queued: a download holds at most about 128 KiB of its file in
//! memory, whatever its size, and reads come from the page cache in the common case (which
//! is why the original's in-memory cache of 10 000 whole files is not kept). Writes are what
//! can stall (`fsync`), so uploads go to `PostThreadCount` writer threads through a bounded
//! queue, and downloads go on meanwhile; the answer comes back to the loop through its inbox.
//! `GetThreadCount` is read and checked only.
//!
//! Memory: request bytes held in memory (bodies arriving, bodies waiting for or being written
//! by a writer, bytes behind a pending response) are counted across all connections; a
//! request that pushes the total past `MaxUploadMemory` is refused (503, error 13). A body
//! announced over `MaxUploadSize` is refused from its `Content-Length` (413, the original's
//! error 1) before any of it is read; a chunked body as soon as it grows past the limit.
//!
//! Connections: keep-alive (HTTP/1.1 rules); closed after `IdleTimeout` without a byte
//! received or sent, and refused (408) when a request is not complete within
//! `RequestTimeout` of its first byte. Methods other than `GET`, `HEAD` and `POST` get 405
//! (the original's 403).

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crossbeam_channel::{Sender, TrySendError};
use netlib::{Buffer, CloseReason, ConnId, Handler, ListenerId, Net, Signal, TimerId};
use tt_common::metrics::{Counter, Endpoint, Observed, Scrape, Source};
use tt_common::stop::{SignalAction, Stopping};
use tt_http::{Answer, CONTINUE, HttpConn, HttpError, Limits, Request, Response, Status};

use crate::download::{self, Prepared};
use crate::settings::Settings;
use crate::store::{self, Store, Target};
use crate::upload::{self, Upload};

/// Bytes of a file read per chunk.
const CHUNK: usize = 64 * 1024;
/// Timer tag of the 1 s housekeeping tick (set by `main`).
pub const TICK: u64 = 1;
/// The content type of every JSON answer (the original's).
const HTML: &str = "text/html;charset=utf-8";

/// Uploads stored, uploads whose write failed, downloads started (`/metrics`).
static UPLOADS: Counter = Counter::new();
static UPLOAD_FAILURES: Counter = Counter::new();
static DOWNLOADS: Counter = Counter::new();

/// An upload for a writer thread.
pub struct Job {
    pub conn: ConnId,
    pub target: Target,
    pub body: Vec<u8>,
    pub upload: Upload,
}

/// What the writer threads post back.
pub enum Msg {
    Stored {
        conn: ConnId,
        url_path: String,
        bytes: usize,
        result: std::io::Result<()>,
    },
}

/// A download being written.
struct Stream {
    file: File,
    left: u64,
}

/// One HTTP connection.
struct Client {
    http: HttpConn,
    /// This connection's share of [`Msfs::held`].
    counted: usize,
    /// When the first byte of the request being received arrived.
    started: Option<Instant>,
    stream: Option<Stream>,
    /// An upload of this connection is with a writer; its `Host` for the answer.
    storing: Option<String>,
}

/// What a request asks of the loop once [`HttpConn::serve`] returned.
enum Action {
    Store {
        body: Vec<u8>,
        upload: Upload,
        host: String,
    },
    Send(Prepared),
}

pub struct Msfs {
    listeners: Vec<ListenerId>,
    clients: HashMap<ConnId, Client>,
    store: Store,
    jobs: Sender<Job>,
    limits: Limits,
    max_connections: usize,
    max_held: usize,
    idle_timeout: Duration,
    request_timeout: Duration,
    /// Request bytes in memory: every client's `counted` plus the bodies with writers.
    held: usize,
    /// The last FileCnt write failed (logged).
    save_failed: bool,
    stopping: Stopping,
    /// The `MetricsPort` listener and its connections.
    metrics: Endpoint,
}

impl Msfs {
    pub fn new(
        settings: &Settings,
        listeners: Vec<ListenerId>,
        store: Store,
        jobs: Sender<Job>,
    ) -> Msfs {
        Msfs {
            listeners,
            clients: HashMap::new(),
            store,
            jobs,
            limits: Limits::with_body(settings.max_upload),
            max_connections: settings.max_connections,
            max_held: settings.max_upload_memory,
            idle_timeout: settings.idle_timeout,
            request_timeout: settings.request_timeout,
            held: 0,
            save_failed: false,
            stopping: Stopping::default(),
            metrics: Endpoint::off(),
        }
    }

    /// While stopping: no upload with a writer and no download being written.
    fn drained(&self) -> bool {
        self.clients
            .values()
            .all(|c| c.storing.is_none() && c.stream.is_none())
    }

    /// Serves the connection's requests in order until one is left pending (an upload with
    /// a writer, a download waiting for the socket) or more bytes are needed.
    fn drive(&mut self, net: &mut Net, conn: ConnId, input: &mut Buffer) {
        let base = self.store.base().to_path_buf();
        loop {
            let Some(c) = self.clients.get_mut(&conn) else {
                input.consume(input.len());
                return;
            };
            let mut action = None;
            let served = c.http.serve(net, conn, input, |net, req| {
                route(net, conn, &base, req, &mut action)
            });
            if let Err(e) = served {
                refuse(net, conn, c, &e);
            }
            let Some(c) = self.clients.get_mut(&conn) else {
                return;
            };
            let receiving = !c.http.in_flight()
                && !c.http.streaming()
                && (!input.is_empty() || c.http.buffered() > 0);
            c.started = if receiving {
                c.started.or(Some(net.now()))
            } else {
                None
            };
            if c.http.take_continue() {
                net.send(conn, CONTINUE);
            }
            // A request handed out left the connection's count: its body is the action's.
            self.account(net, conn);
            let more = match action {
                Some(Action::Store { body, upload, host }) => {
                    self.submit(net, conn, body, upload, host)
                }
                Some(Action::Send(prepared)) => self.start_download(net, conn, prepared),
                None => false,
            };
            self.account(net, conn);
            if !more {
                return;
            }
        }
    }

    /// Recounts the connection's held bytes; refuses its request past the memory bound.
    fn account(&mut self, net: &mut Net, conn: ConnId) {
        let Some(c) = self.clients.get_mut(&conn) else {
            return;
        };
        let now = if net.is_open(conn) {
            c.http.buffered()
        } else {
            0
        };
        self.held = self.held - c.counted + now;
        c.counted = now;
        if now > 0 && self.held > self.max_held {
            log::warn!(
                "http {conn:?} ({}): {} request bytes held in memory, over MaxUploadMemory \
                 {}; refused",
                peer(net, conn),
                self.held,
                self.max_held
            );
            let busy = Response::new(Status::UNAVAILABLE)
                .header("Content-Type", HTML)
                .body(upload::busy_body());
            c.http.reject_with(net, conn, &busy);
            self.held -= c.counted;
            c.counted = 0;
        }
    }

    /// Hands an upload to a writer; false (nothing more to serve now).
    fn submit(
        &mut self,
        net: &mut Net,
        conn: ConnId,
        body: Vec<u8>,
        upload: Upload,
        host: String,
    ) -> bool {
        let answer = |status, body: String| {
            Response::new(status)
                .header("Content-Type", HTML)
                .body(body)
        };
        let bytes = body.len();
        if self.stopping.is_stopping() {
            log::info!("http {conn:?}: stopping; upload refused");
            return self.respond(net, conn, &answer(Status::UNAVAILABLE, upload::busy_body()));
        }
        let Some(target) = self.store.next(&upload.suffix) else {
            log::error!(
                "http {conn:?}: store full at FileCnt {} (directory 255/254 used up); upload \
                 refused",
                self.store.file_cnt()
            );
            let r = answer(Status::INSUFFICIENT_STORAGE, upload::store_failed_body());
            return self.respond(net, conn, &r);
        };
        if self.held + bytes > self.max_held {
            log::warn!(
                "http {conn:?} ({}): {} request bytes in memory, no room for an upload of \
                 {bytes}; refused",
                peer(net, conn),
                self.held
            );
            return self.respond(net, conn, &answer(Status::UNAVAILABLE, upload::busy_body()));
        }
        let job = Job {
            conn,
            target,
            body,
            upload,
        };
        match self.jobs.try_send(job) {
            Ok(()) => {
                self.held += bytes;
                if let Some(c) = self.clients.get_mut(&conn) {
                    c.storing = Some(host);
                }
                false
            }
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                log::warn!("http {conn:?}: writer queue full; upload refused");
                self.respond(net, conn, &answer(Status::UNAVAILABLE, upload::busy_body()))
            }
        }
    }

    /// Writes a complete response to the pending request; true if the connection goes on.
    fn respond(&mut self, net: &mut Net, conn: ConnId, response: &Response) -> bool {
        self.clients
            .get_mut(&conn)
            .is_some_and(|c| c.http.respond(net, conn, response))
    }

    /// Writes the head of a download and as much of its body as the socket takes; true if
    /// the response is complete and the connection goes on.
    fn start_download(&mut self, net: &mut Net, conn: ConnId, p: Prepared) -> bool {
        let Some(c) = self.clients.get_mut(&conn) else {
            return false;
        };
        let Prepared {
            response,
            mut file,
            offset,
            len,
        } = p;
        DOWNLOADS.inc();
        match c.http.start_stream(net, conn, &response, len) {
            None => false,
            Some(false) => c.http.finish_stream(net, conn),
            Some(true) => {
                if offset > 0
                    && let Err(e) = file.seek(SeekFrom::Start(offset))
                {
                    log::error!("http {conn:?}: seek in a download failed: {e}; aborting");
                    net.abort(conn);
                    return false;
                }
                c.stream = Some(Stream { file, left: len });
                pump(net, conn, c)
            }
        }
    }

    fn on_stored(&mut self, net: &mut Net, msg: Msg) {
        let Msg::Stored {
            conn,
            url_path,
            bytes,
            result,
        } = msg;
        self.held -= bytes;
        let Some(host) = self.clients.get_mut(&conn).and_then(|c| c.storing.take()) else {
            log::info!("upload {url_path} stored for a closed connection {conn:?}");
            return;
        };
        let response = match result {
            Ok(()) => {
                UPLOADS.inc();
                log::info!("http {conn:?}: stored {url_path} ({bytes} byte request)");
                Response::ok(HTML, upload::ok_body(&url_path, &host))
            }
            Err(e) => {
                UPLOAD_FAILURES.inc();
                log::error!("http {conn:?}: storing {url_path} failed: {e}");
                Response::new(Status::INTERNAL_ERROR)
                    .header("Content-Type", HTML)
                    .body(upload::store_failed_body())
            }
        };
        if self.respond(net, conn, &response) {
            self.drive(net, conn, &mut Buffer::new());
        }
    }

    /// Saves FileCnt in BaseDir; a failure is logged once until a write succeeds.
    fn save_count(&mut self, sync: bool) {
        match self.store.save_count(sync) {
            Ok(saved) => {
                if saved {
                    log::debug!("FileCnt={} saved", self.store.file_cnt());
                }
                self.save_failed = false;
            }
            Err(e) if !self.save_failed || sync => {
                self.save_failed = true;
                log::error!(
                    "cannot write FileCnt={} to {}: {e}",
                    self.store.file_cnt(),
                    self.store.count_file().display()
                );
            }
            Err(_) => {}
        }
    }

    fn housekeeping(&mut self, net: &mut Net) {
        let now = net.now();
        let mut idle = Vec::new();
        let mut late = Vec::new();
        for (&conn, c) in &self.clients {
            if c.started
                .is_some_and(|s| now.saturating_duration_since(s) > self.request_timeout)
            {
                late.push(conn);
            } else if c.storing.is_none()
                && net.activity(conn).is_some_and(|a| {
                    now.saturating_duration_since(a.last_recv.max(a.last_send)) > self.idle_timeout
                })
            {
                idle.push(conn);
            }
        }
        for conn in idle {
            log::info!("http {conn:?} ({}): idle; closing", peer(net, conn));
            net.close(conn);
        }
        for conn in late {
            log::warn!(
                "http {conn:?} ({}): request not complete within {:?}; closing",
                peer(net, conn),
                self.request_timeout
            );
            if let Some(c) = self.clients.get_mut(&conn) {
                let r = Response::new(Status::REQUEST_TIMEOUT).header("Content-Type", HTML);
                c.http.reject_with(net, conn, &r);
            }
        }
        self.save_count(false);
    }
}

/// The answer to one request; a download or an upload is left for the loop as `action`.
fn route(
    net: &Net,
    conn: ConnId,
    base: &std::path::Path,
    req: Request,
    action: &mut Option<Action>,
) -> Answer {
    match req.method() {
        "POST" => {
            let parsed = upload::parse(req.header_bytes("Content-Type"), req.body());
            match parsed {
                Ok(upload) => {
                    let host = host(net, conn, &req);
                    *action = Some(Action::Store {
                        body: req.into_body(),
                        upload,
                        host,
                    });
                    Answer::Later
                }
                Err(e) => {
                    log::info!(
                        "http {conn:?} ({}): malformed upload to {:?}: error {}",
                        peer(net, conn),
                        req.target(),
                        e.0
                    );
                    // Status 200 with the error JSON, as the original: its clients read
                    // `error_code` from the body of a 200.
                    let body = upload::format_error_body(e);
                    Answer::Respond(
                        Response::new(Status::OK)
                            .header("Content-Type", HTML)
                            .body(body),
                    )
                }
            }
        }
        "GET" | "HEAD" => match download::prepare(base, &req) {
            Ok(prepared) => {
                *action = Some(Action::Send(prepared));
                Answer::Later
            }
            Err(response) => {
                log::info!(
                    "http {conn:?} ({}): {} {:?}: {}",
                    peer(net, conn),
                    req.method(),
                    req.target(),
                    response.status.code
                );
                Answer::Respond(response)
            }
        },
        other => {
            log::info!(
                "http {conn:?} ({}): method {other:?} refused",
                peer(net, conn)
            );
            Answer::Respond(
                Response::new(Status::METHOD_NOT_ALLOWED)
                    .header("Allow", "GET, HEAD, POST")
                    .header("Content-Type", HTML),
            )
        }
    }
}

/// The `Host` of the request if it is a plain host name or address with a port, else the
/// address the connection came in on (it goes into a JSON string and a URL).
fn host(net: &Net, conn: ConnId, req: &Request) -> String {
    let plain = |h: &&str| {
        !h.is_empty()
            && h.len() <= 255
            && h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
    };
    match req.header("Host").map(str::trim).filter(plain) {
        Some(h) => h.to_string(),
        None => net
            .local_addr(conn)
            .map_or_else(String::new, |a: SocketAddr| a.to_string()),
    }
}

/// Closes the connection after a request it could not be served.
fn refuse(net: &mut Net, conn: ConnId, c: &mut Client, e: &HttpError) {
    log::info!("http {conn:?} ({}): {e}; closing", peer(net, conn));
    if *e == HttpError::BodyTooLarge {
        let r = Response::new(Status::PAYLOAD_TOO_LARGE)
            .header("Content-Type", HTML)
            .body(upload::too_large_body());
        c.http.reject_with(net, conn, &r);
    } else {
        c.http.reject(net, conn, e);
    }
}

/// Moves file bytes into the connection's output until the socket stops taking them or the
/// download is complete; true if it is complete and the connection goes on.
fn pump(net: &mut Net, conn: ConnId, c: &mut Client) -> bool {
    loop {
        let Some(s) = c.stream.as_mut() else {
            return false;
        };
        if s.left == 0 {
            c.stream = None;
            return c.http.finish_stream(net, conn);
        }
        if net.output_len(conn) >= CHUNK {
            // The rest follows from on_drain.
            return false;
        }
        let n = usize::try_from(s.left).map_or(CHUNK, |left| left.min(CHUNK));
        let mut failed = None;
        let sent = net.send_with(conn, |out| {
            let start = out.len();
            out.resize(start + n, 0);
            if let Err(e) = s.file.read_exact(&mut out[start..]) {
                out.truncate(start);
                failed = Some(e);
            }
        });
        if let Some(e) = failed {
            log::error!("http {conn:?}: reading a download failed: {e}; aborting");
            c.stream = None;
            net.abort(conn);
            return false;
        }
        if !sent {
            c.stream = None;
            return false;
        }
        s.left -= n as u64;
    }
}

fn peer(net: &Net, conn: ConnId) -> String {
    net.peer_addr(conn)
        .map_or_else(|| "?".to_string(), |a| a.to_string())
}

impl Handler for Msfs {
    type Msg = Msg;

    fn on_accept(&mut self, net: &mut Net, listener: ListenerId, conn: ConnId, peer: SocketAddr) {
        if self.metrics.is_listener(listener) {
            self.metrics.accept(net, conn);
            return;
        }
        if !self.listeners.contains(&listener) {
            net.close(conn);
            return;
        }
        if self.clients.len() >= self.max_connections {
            log::warn!(
                "http: refusing {peer}: {} connections open (MaxConnections)",
                self.clients.len()
            );
            net.close(conn);
            return;
        }
        self.clients.insert(
            conn,
            Client {
                http: HttpConn::new(self.limits).keep_alive_when_asked(),
                counted: 0,
                started: None,
                stream: None,
                storing: None,
            },
        );
    }

    fn on_read(&mut self, net: &mut Net, conn: ConnId, input: &mut Buffer) {
        if self.metrics.has(conn) {
            let mut metrics = std::mem::take(&mut self.metrics);
            metrics.read(net, conn, input, self);
            self.metrics = metrics;
            return;
        }
        self.drive(net, conn, input);
    }

    fn on_drain(&mut self, net: &mut Net, conn: ConnId) {
        let Some(c) = self.clients.get_mut(&conn) else {
            return;
        };
        if c.stream.is_some() && pump(net, conn, c) {
            self.drive(net, conn, &mut Buffer::new());
        }
    }

    fn on_close(&mut self, _net: &mut Net, conn: ConnId, _reason: CloseReason) {
        if self.metrics.closed(conn) {
            return;
        }
        if let Some(c) = self.clients.remove(&conn) {
            self.held -= c.counted;
        }
    }

    fn on_timer(&mut self, net: &mut Net, _timer: TimerId, tag: u64) {
        if tag == TICK {
            self.metrics.tick(net);
            self.housekeeping(net);
        } else {
            let drained = self.stopping.is_draining() && self.drained();
            self.stopping.timer(net, tag, drained);
        }
    }

    fn on_message(&mut self, net: &mut Net, msg: Msg) {
        self.on_stored(net, msg);
    }

    /// Uploads are refused from the first stop signal on, so FileCnt is final then; uploads
    /// with a writer and downloads being written finish (or are cut at `StopTimeout`).
    fn on_signal(&mut self, net: &mut Net, signal: Signal) {
        if self.stopping.signal(net, signal) == SignalAction::Begin {
            self.save_count(true);
            log::info!("stopping at FileCnt={}", self.store.file_cnt());
            let drained = self.drained();
            self.stopping.advance(net, drained);
        }
    }
}

impl Observed for Msfs {
    fn endpoint(&mut self) -> &mut Endpoint {
        &mut self.metrics
    }
}

impl Source for Msfs {
    fn scrape(&self, out: &mut Scrape) {
        let downloading = self.clients.values().filter(|c| c.stream.is_some()).count();
        let storing = self
            .clients
            .values()
            .filter(|c| c.storing.is_some())
            .count();
        out.gauge_family(
            "tt_connections",
            "Open connections, by kind",
            "kind",
            [("http".to_string(), self.clients.len() as i64)],
        );
        out.gauge(
            "tt_msfs_downloads_in_progress",
            "Downloads being written",
            downloading as i64,
        );
        out.gauge(
            "tt_msfs_uploads_in_progress",
            "Uploads being written to disk",
            storing as i64,
        );
        out.counter("tt_msfs_uploads", "Uploads stored", UPLOADS.get());
        out.counter(
            "tt_msfs_upload_failures",
            "Uploads whose write to disk failed",
            UPLOAD_FAILURES.get(),
        );
        out.counter("tt_msfs_downloads", "Downloads started", DOWNLOADS.get());
        out.gauge(
            "tt_msfs_request_bytes_held",
            "Request bytes in memory (bodies being read or written)",
            self.held as i64,
        );
    }
}

/// A writer thread: stores each upload and posts the outcome to the loop.
pub fn writer(jobs: crossbeam_channel::Receiver<Job>, poster: netlib::Poster<Msg>) {
    for job in jobs {
        let Job {
            conn,
            target,
            body,
            upload,
        } = job;
        let result = store::write(&target, &body[upload.data.clone()]);
        let msg = Msg::Stored {
            conn,
            url_path: target.url_path,
            bytes: body.len(),
            result,
        };
        if poster.post(msg).is_err() {
            return;
        }
    }
}
