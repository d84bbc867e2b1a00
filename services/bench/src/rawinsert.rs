//! The limit: rows shaped like db_proxy's `IMMessage_N` rows, inserted straight into MariaDB.
//!
//! Each worker holds one connection and commits transactions of `--batch` rows: the rows of one
//! transaction belong to `--batch` different relations (as a batch of db_proxy's holds messages
//! of many conversations), one multi-row INSERT per shard table `IMMessage_<relateId % 8>`.
//! A batch of 1 is a single autocommit INSERT. Nothing else is done: no Redis, no session rows.

use std::process::ExitCode;
use std::thread;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use mysql::prelude::Queryable;
use mysql::{Conn, Opts, OptsBuilder, Value};

use crate::{Args, Latencies};

pub(crate) const OPTIONS: &[&str] = &[
    "mysql", "db", "user", "pass", "workers", "batch", "duration", "size",
];

/// Relation ids of the rows written here: far above any real relation id (an auto-increment
/// counter), so the rows are recognised and deleted at the end.
const FIRST_RELATION: u32 = 4_000_000_000;
/// Relations per worker the rows cycle through.
const RELATIONS_PER_WORKER: u32 = 1024;
const SHARDS: u32 = 8;

fn opts(a: &Args) -> Result<Opts, String> {
    let addr = a.text("mysql", None)?;
    let (host, port) = addr
        .rsplit_once(':')
        .ok_or_else(|| format!("--mysql: HOST:PORT, not {addr}"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("--mysql: bad port in {addr}"))?;
    Ok(OptsBuilder::new()
        .ip_or_hostname(Some(host.to_string()))
        .tcp_port(port)
        .user(Some(a.text("user", Some("teamtalk"))?))
        .pass(Some(a.text("pass", Some("12345"))?))
        .db_name(Some(a.text("db", Some("teamtalk"))?))
        .prefer_socket(false)
        .stmt_cache_size(64)
        .init(vec!["SET NAMES utf8mb4"])
        .into())
}

/// Deletes every row of the reserved relation ids.
fn clean(conn: &mut Conn) -> Result<(), String> {
    for shard in 0..SHARDS {
        conn.exec_drop(
            format!("DELETE FROM IMMessage_{shard} WHERE relateId >= ?"),
            (FIRST_RELATION,),
        )
        .map_err(|e| format!("cleaning IMMessage_{shard}: {e}"))?;
    }
    Ok(())
}

struct Worker {
    conn: Conn,
    /// The worker's relations: `first + i`.
    first: u32,
    /// Next msg id of each relation.
    next_id: Vec<u32>,
    cursor: usize,
    content: String,
    now: u32,
}

impl Worker {
    /// One transaction of `batch` rows.
    fn commit(&mut self, batch: usize) -> Result<(), mysql::Error> {
        // Rows by shard table: (relateId, msgId).
        let mut by_shard: Vec<Vec<(u32, u32)>> = vec![Vec::new(); SHARDS as usize];
        for _ in 0..batch {
            let i = self.cursor;
            self.cursor = (self.cursor + 1) % self.next_id.len();
            let relation = self.first + i as u32;
            self.next_id[i] += 1;
            by_shard[(relation % SHARDS) as usize].push((relation, self.next_id[i]));
        }
        let transaction = batch > 1;
        if transaction {
            self.conn.query_drop("BEGIN")?;
        }
        for (shard, rows) in by_shard.iter().enumerate() {
            if rows.is_empty() {
                continue;
            }
            let mut sql = format!(
                "INSERT INTO IMMessage_{shard} \
                 (relateId, fromId, toId, msgId, content, type, status, updated, created) VALUES "
            );
            let mut params: Vec<Value> = Vec::with_capacity(rows.len() * 7);
            for (k, (relation, msg_id)) in rows.iter().enumerate() {
                sql.push_str(if k == 0 { "" } else { "," });
                sql.push_str("(?, ?, ?, ?, ?, 1, 0, ?, ?)");
                // Users of the reserved relation: two ids derived from it.
                params.extend([
                    Value::from(*relation),
                    Value::from(relation % 100_000),
                    Value::from(relation % 100_000 + 1),
                    Value::from(*msg_id),
                    Value::from(self.content.as_str()),
                    Value::from(self.now),
                    Value::from(self.now),
                ]);
            }
            self.conn.exec_drop(sql, params)?;
        }
        if transaction {
            self.conn.query_drop("COMMIT")?;
        }
        Ok(())
    }
}

pub(crate) fn run(a: &Args) -> Result<ExitCode, String> {
    let opts = opts(a)?;
    let workers: u32 = a.num("workers", 8, 1, 64)?;
    let batch: usize = a.num("batch", 1, 1, 4096)?;
    let duration = a.secs("duration", 10.0)?;
    let size: usize = a.num("size", 64, 0, 4096)?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX));

    let mut admin = Conn::new(opts.clone()).map_err(|e| format!("mysql: {e}"))?;
    let flush: String = admin
        .query_first("SELECT @@innodb_flush_log_at_trx_commit")
        .map_err(|e| format!("mysql: {e}"))?
        .ok_or("mysql: no innodb_flush_log_at_trx_commit")?;
    clean(&mut admin)?;

    let start = Instant::now();
    let handles: Vec<_> = (0..workers)
        .map(|w| {
            let opts = opts.clone();
            thread::spawn(move || -> Result<(u64, Latencies), String> {
                let conn = Conn::new(opts).map_err(|e| format!("mysql: {e}"))?;
                let mut wk = Worker {
                    conn,
                    first: FIRST_RELATION + w * RELATIONS_PER_WORKER,
                    next_id: vec![0; RELATIONS_PER_WORKER as usize],
                    cursor: 0,
                    content: "x".repeat(size),
                    now,
                };
                let mut lat = Latencies::default();
                let mut rows = 0u64;
                while start.elapsed() < duration {
                    let t0 = Instant::now();
                    wk.commit(batch).map_err(|e| format!("insert: {e}"))?;
                    lat.push(t0.elapsed());
                    rows += batch as u64;
                }
                Ok((rows, lat))
            })
        })
        .collect();
    let mut rows = 0u64;
    let mut lat = Latencies::default();
    let mut failed = None;
    for h in handles {
        match h.join() {
            Ok(Ok((r, mut l))) => {
                rows += r;
                lat.append(&mut l);
            }
            Ok(Err(e)) => failed = Some(e),
            Err(_) => failed = Some("a worker panicked".into()),
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let cleaned = clean(&mut admin);
    if let Some(e) = failed {
        eprintln!("error: {e}");
        return Ok(ExitCode::from(3));
    }
    cleaned?;
    let commits = lat.len();
    println!(
        "rawinsert {rows} rows in {secs:.2}s: {:.0} rows/s {:.0} commits/s commit {} workers \
         {workers} batch {batch} size {size} innodb_flush_log_at_trx_commit {flush}",
        rows as f64 / secs,
        commits as f64 / secs,
        lat.summary()
    );
    // Not a failure, but the figure is not the one wanted: say so.
    if flush != "1" {
        eprintln!(
            "note: innodb_flush_log_at_trx_commit is {flush}, not 1: commits are not durable"
        );
    }
    Ok(ExitCode::SUCCESS)
}
