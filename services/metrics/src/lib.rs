//! Metrics and health of a daemon, for Prometheus and for load balancers and operators.
//!
//! Three parts:
//!
//! - [`counters`]: what the message path counts. Process-wide atomic counters (relaxed adds,
//!   no allocation, no lock, no formatting), PDU counts and bytes in and out in arrays indexed
//!   by command id ([`PDUS_IN`], [`PDUS_OUT`]), dropped PDUs by reason ([`dropped`]), latency
//!   histograms with fixed buckets. Nothing is registered by name on the hot path: names and
//!   labels are written only when `/metrics` is read.
//! - [`Scrape`]: what one `GET /metrics` writes. The daemon fills it from its counters and its
//!   state (connections by kind, users online, link state, queue depth, …), and
//!   `prometheus-client` encodes it in the Prometheus text format, version 0.0.4.
//! - [`Endpoint`]: the `MetricsPort` listener on the daemon's own event loop: `GET /metrics`
//!   and `GET /healthz` over HTTP/1.1 (tt-http), bounded in connections and request size.

pub mod counters;
mod endpoint;
mod scrape;

pub use counters::{
    CommandCounters, CommandHistograms, Counter, DropReason, Histogram, PDUS_IN, PDUS_OUT, dropped,
    write_dropped, write_pdus,
};
pub use endpoint::{Endpoint, IDLE_TIMEOUT, MAX_CONNS, Source, answer};
pub use scrape::{CONTENT_TYPE, Scrape};
