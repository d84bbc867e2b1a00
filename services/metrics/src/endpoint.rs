//! The `MetricsPort` listener: `GET /metrics` and `GET /healthz` over HTTP/1.1, served on the
//! daemon's own event loop.
//!
//! Bounded like every port: at most [`MAX_CONNS`] connections (more are closed at accept),
//! requests of at most 4 KiB with no body, a connection idle for [`IDLE_TIMEOUT`] closed.
//! Anything but a `GET` or `HEAD` of the two paths is answered 404 or 405; what is not HTTP is
//! answered 400 and closed.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use netlib::{Buffer, ConnId, ListenerId, Net};
use tt_http::{Answer, HttpConn, Limits, Request, Response, Status};

use crate::scrape::{CONTENT_TYPE, Scrape};

/// Connections the metrics port keeps at once.
pub const MAX_CONNS: usize = 16;
/// A metrics connection with no request for this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

const LIMITS: Limits = Limits {
    max_head: 4096,
    max_headers: 32,
    max_body: 0,
    max_request: 4096,
};

/// What a daemon reports on its metrics port.
pub trait Source {
    /// Writes the daemon's families.
    fn scrape(&self, out: &mut Scrape);

    /// `Err(reason)` when a link the daemon needs is down (503 with the reason).
    fn health(&self) -> Result<(), String> {
        Ok(())
    }
}

/// The metrics listener and its connections (nothing when `MetricsPort` is off).
#[derive(Debug, Default)]
pub struct Endpoint {
    listener: Option<ListenerId>,
    conns: HashMap<ConnId, (HttpConn, Instant)>,
}

impl Endpoint {
    /// No listener: every method is a no-op.
    pub fn off() -> Endpoint {
        Endpoint::default()
    }

    /// Listens on `addr` (`None`: off).
    pub fn open(net: &mut Net, addr: Option<SocketAddr>) -> Result<Endpoint, String> {
        let Some(addr) = addr else {
            return Ok(Endpoint::off());
        };
        let listener = net
            .listen(addr)
            .map_err(|e| format!("cannot listen on MetricsPort {addr}: {e}"))?;
        let bound = net.listener_addr(listener).unwrap_or(addr);
        log::info!("metrics on http://{bound}/metrics, health on http://{bound}/healthz");
        Ok(Endpoint {
            listener: Some(listener),
            conns: HashMap::new(),
        })
    }

    /// The listener, if the port is on.
    pub fn listener(&self) -> Option<ListenerId> {
        self.listener
    }

    /// Whether `listener` is the metrics listener.
    pub fn is_listener(&self, listener: ListenerId) -> bool {
        self.listener == Some(listener)
    }

    /// Whether `conn` is a metrics connection.
    pub fn has(&self, conn: ConnId) -> bool {
        !self.conns.is_empty() && self.conns.contains_key(&conn)
    }

    /// Takes a connection of the metrics listener (closed past [`MAX_CONNS`]).
    pub fn accept(&mut self, net: &mut Net, conn: ConnId) {
        if self.conns.len() >= MAX_CONNS {
            log::warn!("metrics: {MAX_CONNS} connections open, closing {conn:?}");
            net.close(conn);
            return;
        }
        self.conns.insert(conn, (HttpConn::new(LIMITS), net.now()));
    }

    /// Bytes of a metrics connection: answers every whole request.
    pub fn read(&mut self, net: &mut Net, conn: ConnId, input: &mut Buffer, source: &dyn Source) {
        let Some((http, seen)) = self.conns.get_mut(&conn) else {
            input.consume(input.len());
            return;
        };
        *seen = net.now();
        let served = http.serve(net, conn, input, |_, request| {
            Answer::Respond(answer(&request, source))
        });
        if let Err(e) = served {
            log::info!("metrics {conn:?}: {e}");
            http.reject(net, conn, &e);
        }
    }

    /// Forgets a closed connection; true if it was a metrics connection.
    pub fn closed(&mut self, conn: ConnId) -> bool {
        self.conns.remove(&conn).is_some()
    }

    /// Closes connections idle for [`IDLE_TIMEOUT`] (call it about once a second).
    pub fn tick(&mut self, net: &mut Net) {
        let now = net.now();
        for (&conn, (_, seen)) in &self.conns {
            if now.duration_since(*seen) >= IDLE_TIMEOUT {
                net.close(conn);
            }
        }
    }
}

/// The response to one request of the metrics port.
pub fn answer(request: &Request, source: &dyn Source) -> Response {
    let readable = matches!(request.method(), "GET" | "HEAD");
    match request.path() {
        "/metrics" if readable => {
            let mut scrape = Scrape::new();
            source.scrape(&mut scrape);
            Response::ok(CONTENT_TYPE, scrape.render())
        }
        "/healthz" if readable => match source.health() {
            Ok(()) => Response::ok("text/plain; charset=utf-8", "ok\n"),
            Err(reason) => Response::new(Status::UNAVAILABLE)
                .header("Content-Type", "text/plain; charset=utf-8")
                .body(format!("{}\n", reason.replace(['\r', '\n'], " "))),
        },
        "/metrics" | "/healthz" => {
            Response::new(Status::METHOD_NOT_ALLOWED).header("Allow", "GET, HEAD")
        }
        _ => Response::new(Status::NOT_FOUND),
    }
}
