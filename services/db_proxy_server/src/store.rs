//! A worker's own MySQL and Redis connections (the original's `CDBPool` / `CachePool`).
//!
//! Each worker thread owns one connection per MySQL pool (master, slave) and one per Redis
//! pool: no connection is ever shared between threads, so nothing is locked and nothing is used
//! after being handed back (quirk 25 of the original). A connection is opened on first use and
//! dropped on a transport error; the next use opens a new one. After a connect attempt that
//! timed out (a host that does not answer) the next attempt waits [`RETRY_INTERVAL`] (the
//! original's 4 s for Redis), so a dead host costs a logged error per request, not a connect
//! timeout per request; a refused connect (a server down on a live host) is quick and is tried
//! again by the next request.
//!
//! A Redis command that fails on a connection opened by an earlier request (the server was
//! restarted meanwhile) reconnects and is sent once more at once, so a Redis restart costs no
//! request once the server is back. MySQL statements are not sent again: one that committed
//! before the connection broke would be applied twice.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use mysql::prelude::Queryable;
use mysql::{Conn, Opts, OptsBuilder, Params, Row};

use crate::metrics;
use crate::settings::{CachePool, DbPool};

/// Minimum time between a connect attempt that timed out and the next one.
pub const RETRY_INTERVAL: Duration = Duration::from_secs(4);
/// A failed connect attempt that took longer than this counts as timed out.
const SLOW_CONNECT: Duration = Duration::from_millis(200);
/// MySQL's `ER_DUP_ENTRY`: the statement would repeat a unique key.
const ER_DUP_ENTRY: u16 = 1062;
/// Most keys one Redis connection remembers as checked ([`Cache::mark_checked`]).
const MAX_CHECKED_KEYS: usize = 100_000;
/// Prepared statements one MySQL connection keeps: the handlers' statements and the group
/// commit's multi-row INSERTs (nine row counts per message table, see `model::batch`).
const STMT_CACHE: usize = 512;
const MYSQL_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const MYSQL_IO_TIMEOUT: Duration = Duration::from_secs(30);
const REDIS_CONNECT_TIMEOUT: Duration = Duration::from_millis(1000);
const REDIS_IO_TIMEOUT: Duration = Duration::from_secs(5);

/// A failed storage operation (already logged where it happened).
#[derive(Debug)]
pub struct StoreError(pub String);

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// When a connection may be opened: at once, except within [`RETRY_INTERVAL`] of a connect
/// attempt that timed out.
#[derive(Default)]
struct Backoff {
    until: Option<Instant>,
}

impl Backoff {
    fn allows(&self) -> bool {
        self.until.is_none_or(|t| Instant::now() >= t)
    }

    /// Records a failed connect attempt begun at `started`.
    fn failed(&mut self, started: Instant) {
        if started.elapsed() >= SLOW_CONNECT {
            self.until = Some(Instant::now() + RETRY_INTERVAL);
        }
    }

    fn clear(&mut self) {
        self.until = None;
    }
}

/// One lazily (re)opened MySQL connection.
pub struct Db {
    name: String,
    opts: Opts,
    conn: Option<Conn>,
    backoff: Backoff,
}

impl Db {
    pub fn new(pool: &DbPool) -> Db {
        let opts = OptsBuilder::new()
            .ip_or_hostname(Some(pool.host.clone()))
            .tcp_port(pool.port)
            .user(Some(pool.username.clone()))
            .pass(Some(pool.password.clone()))
            .db_name(Some(pool.dbname.clone()))
            .prefer_socket(false)
            .tcp_connect_timeout(Some(MYSQL_CONNECT_TIMEOUT))
            .read_timeout(Some(MYSQL_IO_TIMEOUT))
            .write_timeout(Some(MYSQL_IO_TIMEOUT))
            .stmt_cache_size(STMT_CACHE)
            .init(vec!["SET NAMES utf8mb4"]);
        Db {
            name: pool.name.clone(),
            opts: Opts::from(opts),
            conn: None,
            backoff: Backoff::default(),
        }
    }

    /// Opens the connection now (start-up check).
    pub fn connect_now(&mut self) -> StoreResult<()> {
        self.backoff.clear();
        self.conn().map(|_| ())
    }

    fn conn(&mut self) -> StoreResult<&mut Conn> {
        if self.conn.is_none() {
            if !self.backoff.allows() {
                return Err(StoreError(format!("mysql {}: not connected", self.name)));
            }
            let started = Instant::now();
            match Conn::new(self.opts.clone()) {
                Ok(c) => {
                    log::info!("mysql {}: connected", self.name);
                    self.conn = Some(c);
                }
                Err(e) => {
                    self.backoff.failed(started);
                    metrics::mysql_error(false);
                    let msg = format!("mysql {}: connect failed: {e}", self.name);
                    log::error!("{msg}");
                    return Err(StoreError(msg));
                }
            }
        }
        match self.conn.as_mut() {
            Some(c) => Ok(c),
            None => Err(StoreError(format!("mysql {}: not connected", self.name))),
        }
    }

    fn fail(&mut self, what: &str, e: mysql::Error) -> StoreError {
        // A server-side error (bad statement, constraint, deadlock) leaves the connection
        // usable; anything else (I/O, protocol) drops it so that the next use reconnects.
        let answered = matches!(e, mysql::Error::MySqlError(_));
        if !answered {
            self.conn = None;
        }
        metrics::mysql_error(answered);
        let msg = format!("mysql {}: {what}: {e}", self.name);
        log::error!("{msg}");
        StoreError(msg)
    }

    /// Runs a statement with bound parameters and collects its rows.
    pub fn rows(&mut self, sql: &str, params: impl Into<Params>) -> StoreResult<Vec<Row>> {
        let r = self.conn()?.exec::<Row, _, _>(sql, params);
        if r.is_ok() {
            metrics::mysql_reached(true);
        }
        r.map_err(|e| self.fail(sql, e))
    }

    /// Runs a statement and returns its affected rows and last insert id.
    pub fn exec(&mut self, sql: &str, params: impl Into<Params>) -> StoreResult<(u64, u64)> {
        let conn = self.conn()?;
        match conn.exec_drop(sql, params) {
            Ok(()) => {
                metrics::mysql_reached(true);
                Ok((conn.affected_rows(), conn.last_insert_id()))
            }
            Err(e) => Err(self.fail(sql, e)),
        }
    }

    /// Runs a statement of the text protocol without parameters or rows (`START TRANSACTION`,
    /// `COMMIT`, `ROLLBACK`).
    pub fn run(&mut self, sql: &str) -> StoreResult<()> {
        let r = self.conn()?.query_drop(sql);
        if r.is_ok() {
            metrics::mysql_reached(true);
        }
        r.map_err(|e| self.fail(sql, e))
    }

    /// Whether a connection is open: after a failed statement, true when the server answered
    /// the failure (the connection, and an open transaction on it, are still there), false
    /// when the connection was lost with it.
    pub fn connected(&self) -> bool {
        self.conn.is_some()
    }

    /// Closes the connection (the server rolls back a transaction it had not committed); the
    /// next use opens a new one.
    pub fn close(&mut self) {
        self.conn = None;
    }

    /// Runs an INSERT; `Ok(false)` when it would repeat a unique key (logged as a warning, the
    /// connection stays usable).
    pub fn insert_unique(&mut self, sql: &str, params: impl Into<Params>) -> StoreResult<bool> {
        match self.conn()?.exec_drop(sql, params) {
            Ok(()) => Ok(true),
            Err(mysql::Error::MySqlError(e)) if e.code == ER_DUP_ENTRY => {
                log::warn!("mysql {}: {sql}: {}", self.name, e.message);
                Ok(false)
            }
            Err(e) => Err(self.fail(sql, e)),
        }
    }
}

/// Reads column `i` of a row as `T`; NULL (or a missing column) gives `None` (the original
/// crashed on NULL: quirk 27).
pub fn col<T: mysql::prelude::FromValue>(row: &Row, i: usize) -> Option<T> {
    match row.as_ref(i)? {
        mysql::Value::NULL => None,
        v => mysql::from_value_opt::<T>(v.clone()).ok(),
    }
}

/// An integer column read as u32 (NULL and out-of-range values read as 0).
pub fn col_u32(row: &Row, i: usize) -> u32 {
    match row.as_ref(i) {
        Some(mysql::Value::Int(v)) => u32::try_from(*v).unwrap_or(0),
        Some(mysql::Value::UInt(v)) => u32::try_from(*v).unwrap_or(0),
        Some(mysql::Value::Bytes(b)) => atoi(b),
        _ => 0,
    }
}

/// A text column as bytes (NULL reads as empty).
pub fn col_bytes(row: &Row, i: usize) -> Vec<u8> {
    col::<Vec<u8>>(row, i).unwrap_or_default()
}

/// C `atoi` on a decimal string, as the original parses numbers read back from Redis: leading
/// blanks and sign allowed, digits up to the first other byte, garbage reads as 0. The result
/// is taken modulo 2^32 like the original's cast to uint32.
pub fn atoi(s: &[u8]) -> u32 {
    let mut i = 0;
    while i < s.len() && (s[i] == b' ' || s[i] == b'\t' || s[i] == b'\n') {
        i += 1;
    }
    let mut neg = false;
    if i < s.len() && (s[i] == b'-' || s[i] == b'+') {
        neg = s[i] == b'-';
        i += 1;
    }
    let mut v: i64 = 0;
    while i < s.len() && s[i].is_ascii_digit() {
        v = (v * 10 + i64::from(s[i] - b'0')) % (1 << 32);
        i += 1;
    }
    let v = if neg { -v } else { v };
    v as u32
}

/// One lazily (re)opened Redis connection.
pub struct Cache {
    name: String,
    client: Option<redis::Client>,
    conn: Option<redis::Connection>,
    backoff: Backoff,
    /// Keys checked through the open connection (see [`Cache::mark_checked`]); emptied
    /// whenever a connection is opened.
    checked: HashSet<String>,
}

impl Cache {
    pub fn new(pool: &CachePool) -> Cache {
        let url = format!("redis://{}:{}/{}", pool.host, pool.port, pool.db);
        let client = match redis::Client::open(url.as_str()) {
            Ok(c) => Some(c),
            Err(e) => {
                log::error!("redis {}: bad address {url}: {e}", pool.name);
                None
            }
        };
        Cache {
            name: pool.name.clone(),
            client,
            conn: None,
            backoff: Backoff::default(),
            checked: HashSet::new(),
        }
    }

    /// Opens the connection now (start-up check).
    pub fn connect_now(&mut self) -> StoreResult<()> {
        self.backoff.clear();
        self.conn().map(|_| ())
    }

    fn conn(&mut self) -> StoreResult<&mut redis::Connection> {
        if self.conn.is_none() {
            if !self.backoff.allows() {
                return Err(StoreError(format!("redis {}: not connected", self.name)));
            }
            let started = Instant::now();
            let Some(client) = self.client.as_ref() else {
                return Err(StoreError(format!("redis {}: bad address", self.name)));
            };
            let opened = client
                .get_connection_with_timeout(REDIS_CONNECT_TIMEOUT)
                .and_then(|c| {
                    c.set_read_timeout(Some(REDIS_IO_TIMEOUT))?;
                    c.set_write_timeout(Some(REDIS_IO_TIMEOUT))?;
                    Ok(c)
                });
            match opened {
                Ok(c) => {
                    log::info!("redis {}: connected", self.name);
                    self.checked.clear();
                    self.conn = Some(c);
                }
                Err(e) => {
                    self.backoff.failed(started);
                    metrics::redis_error(false);
                    let msg = format!("redis {}: connect failed: {e}", self.name);
                    log::error!("{msg}");
                    return Err(StoreError(msg));
                }
            }
        }
        match self.conn.as_mut() {
            Some(c) => Ok(c),
            None => Err(StoreError(format!("redis {}: not connected", self.name))),
        }
    }

    /// Runs one command. When it fails on a connection opened before (the server went away
    /// meanwhile), the connection is opened again at once and the command sent once more; a
    /// command whose reply was lost with the old connection may so be applied twice.
    pub fn query<T: redis::FromRedisValue>(&mut self, cmd: &redis::Cmd) -> StoreResult<T> {
        self.resent(|c| cmd.query::<T>(c))
    }

    /// Sends the commands of `pipe` in one round trip, with the reconnect-and-resend rule of
    /// [`Cache::query`] for the whole pipeline; `T` reads the list of their replies.
    pub fn pipe<T: redis::FromRedisValue>(&mut self, pipe: &redis::Pipeline) -> StoreResult<T> {
        self.resent(|c| pipe.query::<T>(c))
    }

    fn resent<T>(
        &mut self,
        run: impl Fn(&mut redis::Connection) -> redis::RedisResult<T>,
    ) -> StoreResult<T> {
        let opened_before = self.conn.is_some();
        let first = self.send(&run);
        let r = match first {
            Err(e) if opened_before && self.conn.is_none() => {
                if let SendError::Command(e) = e {
                    log::warn!("redis {}: connection lost ({e}), reconnecting", self.name);
                }
                self.backoff.clear();
                self.send(&run)
            }
            r => r,
        };
        r.map_err(|e| match e {
            SendError::Unconnected(e) => e,
            SendError::Command(e) => {
                let msg = format!("redis {}: {e}", self.name);
                log::error!("{msg}");
                StoreError(msg)
            }
        })
    }

    /// Runs `run` on the connection; a transport error drops the connection.
    fn send<T>(
        &mut self,
        run: &impl Fn(&mut redis::Connection) -> redis::RedisResult<T>,
    ) -> Result<T, SendError> {
        let conn = self.conn().map_err(SendError::Unconnected)?;
        let r = run(conn).map_err(|e| {
            let lost = e.is_io_error() || e.is_connection_dropped() || e.is_unrecoverable_error();
            if lost {
                self.conn = None;
            }
            metrics::redis_error(!lost);
            SendError::Command(e)
        });
        if r.is_ok() {
            metrics::redis_reached(true);
        }
        r
    }

    /// Whether [`Cache::mark_checked`] marked `key` since the open connection was opened.
    pub fn is_checked(&self, key: &str) -> bool {
        self.conn.is_some() && self.checked.contains(key)
    }

    /// Marks `key` as checked for the open connection: a value the caller verified (against
    /// MySQL) through it. Forgotten when a connection is opened again, or all at once when
    /// [`MAX_CHECKED_KEYS`] are marked (they are then checked again).
    pub fn mark_checked(&mut self, key: &str) {
        if self.conn.is_none() {
            return;
        }
        if self.checked.len() >= MAX_CHECKED_KEYS {
            self.checked.clear();
        }
        self.checked.insert(key.to_string());
    }
}

/// Why a Redis command failed.
enum SendError {
    /// No connection could be opened (logged where it was tried).
    Unconnected(StoreError),
    /// The command failed on the connection.
    Command(redis::RedisError),
}

/// A worker's connections: master and slave MySQL, one Redis connection per named pool.
pub struct Stores {
    pub master: Db,
    pub slave: Db,
    caches: HashMap<String, Cache>,
}

impl Stores {
    pub fn new(master: &DbPool, slave: &DbPool, caches: &[CachePool]) -> Stores {
        Stores {
            master: Db::new(master),
            slave: Db::new(slave),
            caches: caches
                .iter()
                .map(|c| (c.name.clone(), Cache::new(c)))
                .collect(),
        }
    }

    /// The Redis connection of pool `name` (pools are checked at start-up, so a missing one
    /// is a programming error reported as a storage error).
    pub fn cache(&mut self, name: &str) -> StoreResult<&mut Cache> {
        self.caches
            .get_mut(name)
            .ok_or_else(|| StoreError(format!("no redis pool {name}")))
    }

    /// Opens every connection (start-up check): the first failure is returned.
    pub fn connect_all(&mut self) -> StoreResult<()> {
        self.master.connect_now()?;
        self.slave.connect_now()?;
        for c in self.caches.values_mut() {
            c.connect_now()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::atoi;

    #[test]
    fn atoi_like_c() {
        assert_eq!(atoi(b"123"), 123);
        assert_eq!(atoi(b"  42abc"), 42);
        assert_eq!(atoi(b"abc"), 0);
        assert_eq!(atoi(b""), 0);
        assert_eq!(atoi(b"-1"), u32::MAX);
        assert_eq!(atoi(b"+7"), 7);
    }
}
