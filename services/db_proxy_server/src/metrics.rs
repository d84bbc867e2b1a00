//! What db_proxy_server reports on its metrics port besides the PDU counters: handler
//! latency by command, MySQL and Redis errors, messages stored, and whether MySQL and Redis
//! answer.
//!
//! Workers and the sync thread update these (relaxed atomics); the I/O thread reads them when
//! `/metrics` or `/healthz` is asked. Reachability is the outcome of the last operation on
//! each store (a connect, or a statement or command that failed in transport counts as down;
//! any answer, an SQL error included, as up): no probe of its own, so `/healthz` never waits
//! on a database. The sync thread's queries every few seconds keep it current when no
//! request comes.

use std::sync::atomic::{AtomicBool, Ordering};

use tt_common::metrics::{CommandHistograms, Counter, Scrape};

/// Handler run time by command, on the worker threads.
pub static LATENCY: CommandHistograms = CommandHistograms::new();
pub static MYSQL_ERRORS: Counter = Counter::new();
pub static REDIS_ERRORS: Counter = Counter::new();
pub static SINGLE_STORED: Counter = Counter::new();
pub static GROUP_STORED: Counter = Counter::new();
static MYSQL_UP: AtomicBool = AtomicBool::new(true);
static REDIS_UP: AtomicBool = AtomicBool::new(true);

/// The last MySQL operation reached the server (`true`) or not.
pub fn mysql_reached(up: bool) {
    MYSQL_UP.store(up, Ordering::Relaxed);
}

/// The last Redis operation reached the server (`true`) or not.
pub fn redis_reached(up: bool) {
    REDIS_UP.store(up, Ordering::Relaxed);
}

/// A MySQL error (connect, transport or SQL); `reached`: the server answered.
pub fn mysql_error(reached: bool) {
    MYSQL_ERRORS.inc();
    mysql_reached(reached);
}

/// A Redis error (connect, transport or command); `reached`: the server answered.
pub fn redis_error(reached: bool) {
    REDIS_ERRORS.inc();
    redis_reached(reached);
}

/// `/healthz`: MySQL and Redis answered their last operations.
pub fn health() -> Result<(), String> {
    match (
        MYSQL_UP.load(Ordering::Relaxed),
        REDIS_UP.load(Ordering::Relaxed),
    ) {
        (true, true) => Ok(()),
        (false, true) => Err("mysql unreachable".to_string()),
        (true, false) => Err("redis unreachable".to_string()),
        (false, false) => Err("mysql and redis unreachable".to_string()),
    }
}

/// Queue gauges (from the I/O thread's state) and the process-wide families above.
pub fn write(out: &mut Scrape, queued: usize, in_flight: usize, backlog: usize) {
    out.gauge(
        "tt_db_queue_depth",
        "Requests in the shared queue, waiting for a worker thread",
        queued as i64,
    );
    out.gauge(
        "tt_db_requests_in_flight",
        "Requests handed to the workers and not answered yet (queued or running)",
        in_flight as i64,
    );
    out.gauge(
        "tt_db_backlog",
        "Requests held behind their connection's in-flight limit",
        backlog as i64,
    );
    LATENCY.write(
        out,
        "tt_db_handler_seconds",
        "Run time of the request handlers (SQL and Redis included), by command",
    );
    out.counter_family(
        "tt_store_errors",
        "MySQL and Redis errors (connect, transport, statement or command)",
        "store",
        [
            ("mysql".to_string(), MYSQL_ERRORS.get()),
            ("redis".to_string(), REDIS_ERRORS.get()),
        ],
    );
    out.gauge_family(
        "tt_store_up",
        "Whether the last operation on the store reached it (1) or not (0)",
        "store",
        [
            (
                "mysql".to_string(),
                i64::from(MYSQL_UP.load(Ordering::Relaxed)),
            ),
            (
                "redis".to_string(),
                i64::from(REDIS_UP.load(Ordering::Relaxed)),
            ),
        ],
    );
    out.counter_family(
        "tt_messages_stored",
        "Messages stored, by session type",
        "session",
        [
            ("single".to_string(), SINGLE_STORED.get()),
            ("group".to_string(), GROUP_STORED.get()),
        ],
    );
}
