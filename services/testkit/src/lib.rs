//! Test support for integration tests that run real daemons against the project-local MariaDB
//! and Redis (started by `scripts/db-up.sh`; `scripts/test.sh` does that and builds every
//! daemon before running the tests).
//!
//! - [`Daemon`]: spawns a daemon binary as a process in its own directory with its own conf
//!   file, forwards its log to the test's stderr, waits for its readiness line, kills it on drop;
//! - [`TempDir`], [`free_port`]: a directory and ports of its own for every test;
//! - [`DbEnv`]: the database settings, from the same `TT_*` variables as `scripts/env.sh`;
//! - [`Stack`]: db_proxy_server, route_server, login_server and N msg_servers, wired together
//!   (all of them or some, see [`Stack::builder`]); the one way tests start a stack;
//! - [`PduClient`], [`PduListener`]: the blocking PDU peer every test that speaks the wire
//!   protocol itself uses, as a client of a daemon or as a fake server;
//! - [`push_gateway`]: a push gateway inside the test, recording what push_server delivers;
//! - [`users`]: the seeded users and the range of them each test owns.

pub mod pdu_client;
pub mod push_gateway;
pub mod stack;
pub mod users;

pub use pdu_client::{HANG_GUARD, PduClient, PduListener};
pub use stack::{Stack, StackBuilder};

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// What a daemon prints on stderr once its listeners are up
/// (`tt_common::daemon::announce_ready`).
pub const READY_MARKER: &str = "server ready";

/// A port that was free a moment ago (bound to port 0, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("binding a free port")
        .port()
}

/// `len` pseudo-random bytes from `seed` (xorshift64), the same for the same seed: test data
/// in which a block at the wrong offset shows.
pub fn pseudo_random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A directory removed on drop, under `target/tt-test/`.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let path = target_dir()
            .join("tt-test")
            .join(format!("{label}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("creating a test directory");
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `name` in the directory and returns its path.
    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let p = self.path.join(name);
        std::fs::write(&p, contents).expect("writing a test file");
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// `target/<profile>` of the running test binary (`target/<profile>/deps/<test>`).
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let deps = exe.parent().expect("test binary directory");
    deps.parent().unwrap_or(deps).to_path_buf()
}

/// The path of a workspace binary, e.g. `bin_path("db_proxy_server")`.
pub fn bin_path(name: &str) -> PathBuf {
    let p = target_dir().join(name);
    assert!(
        p.exists(),
        "{} is missing: build the daemons first (`cargo build --workspace --bins`; \
         scripts/test.sh does it)",
        p.display()
    );
    p
}

/// Database settings, from the same variables and defaults as `scripts/env.sh`.
#[derive(Clone, Debug)]
pub struct DbEnv {
    pub mysql_host: String,
    pub mysql_port: u16,
    pub mysql_db: String,
    pub mysql_user: String,
    pub mysql_password: String,
    pub redis_host: String,
    pub redis_port: u16,
}

impl DbEnv {
    pub fn from_env() -> DbEnv {
        let var = |k: &str, d: &str| std::env::var(k).unwrap_or_else(|_| d.to_string());
        DbEnv {
            mysql_host: var("TT_MYSQL_HOST", "127.0.0.1"),
            mysql_port: var("TT_MYSQL_PORT", "13306")
                .parse()
                .expect("TT_MYSQL_PORT"),
            mysql_db: var("TT_MYSQL_DB", "teamtalk"),
            mysql_user: var("TT_MYSQL_USER", "teamtalk"),
            mysql_password: var("TT_MYSQL_PASSWORD", "12345"),
            redis_host: var("TT_REDIS_HOST", "127.0.0.1"),
            redis_port: var("TT_REDIS_PORT", "16379")
                .parse()
                .expect("TT_REDIS_PORT"),
        }
    }

    /// `mysql://user:password@host:port/db`
    pub fn mysql_url(&self) -> String {
        format!(
            "mysql://{}:{}@{}:{}/{}",
            self.mysql_user, self.mysql_password, self.mysql_host, self.mysql_port, self.mysql_db
        )
    }

    /// `redis://host:port/db`
    pub fn redis_url(&self, db: u32) -> String {
        format!("redis://{}:{}/{db}", self.redis_host, self.redis_port)
    }
}

/// The Redis database of each of db_proxy_server's cache pools in a [`Stack`]'s conf.
pub mod redis_db {
    pub const UNREAD: u32 = 1;
    pub const GROUP_SET: u32 = 2;
    pub const SYNC: u32 = 3;
    pub const TOKEN: u32 = 4;
    pub const GROUP_MEMBER: u32 = 5;
}

/// A connection to the test MariaDB ([`DbEnv::from_env`]), to check what the daemons stored.
pub fn mysql_conn() -> mysql::Conn {
    let opts = mysql::Opts::from_url(&DbEnv::from_env().mysql_url()).expect("mysql url");
    mysql::Conn::new(opts).expect("connecting to MariaDB (scripts/db-up.sh starts it)")
}

/// The id of the live relation (`IMRelationShip`, status 0) between users `a` and `b`, in
/// either order: the newest if several; 0 if there is none.
pub fn relation_id(db: &mut mysql::Conn, a: u32, b: u32) -> u32 {
    use mysql::prelude::Queryable;
    db.exec_first(
        "SELECT id FROM IMRelationShip WHERE smallId=? AND bigId=? AND status=0 \
         ORDER BY updated DESC, id DESC LIMIT 1",
        (a.min(b), a.max(b)),
    )
    .expect("query IMRelationShip")
    .unwrap_or(0)
}

/// Creates a temporary group named `name` of `members` (the first of them creates it) through
/// the db_proxy_server `c` is connected to; its id.
pub fn create_group(c: &mut PduClient, members: &[u32], name: &str) -> u32 {
    use tt_proto::pb::base_define::GroupType;
    use tt_proto::pb::group::{ImGroupCreateReq, ImGroupCreateRsp};
    let rsp: ImGroupCreateRsp = c.call(&ImGroupCreateReq {
        user_id: members[0],
        group_type: GroupType::Tmp as i32,
        group_name: name.as_bytes().to_vec(),
        group_avatar: Vec::new(),
        member_id_list: members.to_vec(),
        attach_data: None,
    });
    assert_eq!(rsp.result_code, 0);
    rsp.group_id.expect("the id of the created group")
}

/// Removes every row and Redis key of group `g` (its messages, members, sessions, row, member
/// hash, shield settings, counters and the unread markers of `members`), for tests that create
/// groups in the shared database.
pub fn drop_group(db: &mut mysql::Conn, g: u32, members: &[u32]) {
    use mysql::prelude::Queryable;
    let _ = db.exec_drop(
        format!("DELETE FROM IMGroupMessage_{} WHERE groupId=?", g % 8),
        (g,),
    );
    let _ = db.exec_drop("DELETE FROM IMGroupMember WHERE groupId=?", (g,));
    let _ = db.exec_drop(
        "DELETE FROM IMRecentSession WHERE type=2 AND peerId=?",
        (g,),
    );
    let _ = db.exec_drop("DELETE FROM IMGroup WHERE id=?", (g,));
    let _ = redis::cmd("DEL")
        .arg(format!("group_member_{g}"))
        .query::<()>(&mut redis_conn(redis_db::GROUP_MEMBER));
    let _ = redis::cmd("DEL")
        .arg(format!("group_set_{g}"))
        .query::<()>(&mut redis_conn(redis_db::GROUP_SET));
    let mut keys = vec![format!("group_msg_id_{g}"), format!("{g}_im_group_msg")];
    keys.extend(members.iter().map(|u| format!("{u}_{g}_im_user_group")));
    let _ = redis::cmd("DEL")
        .arg(keys)
        .query::<()>(&mut redis_conn(redis_db::UNREAD));
}

/// A connection to Redis database `db` (see [`redis_db`]).
pub fn redis_conn(db: u32) -> redis::Connection {
    redis::Client::open(DbEnv::from_env().redis_url(db).as_str())
        .expect("redis url")
        .get_connection()
        .expect("connecting to Redis (scripts/db-up.sh starts it)")
}

enum Line {
    Text(String),
    Eof,
}

/// A daemon process. Killed (and reaped) on drop.
pub struct Daemon {
    name: String,
    child: Option<Child>,
    lines: Receiver<Line>,
    /// The last lines of its log, for failure messages.
    recent: VecDeque<String>,
    exited: bool,
}

impl Daemon {
    /// Starts `bin` (a workspace binary name) in `dir` with `-c <conf>` (a file in `dir`),
    /// `RUST_LOG=info` unless the test's environment sets it. Does not wait: see
    /// [`Daemon::wait_ready`].
    pub fn spawn(bin: &str, dir: &Path, conf: &str) -> Daemon {
        Daemon::spawn_with_env(bin, dir, conf, &[])
    }

    pub fn spawn_with_env(bin: &str, dir: &Path, conf: &str, env: &[(&str, &str)]) -> Daemon {
        let mut cmd = Command::new(bin_path(bin));
        cmd.current_dir(dir)
            .arg("-c")
            .arg(conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "info");
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {bin}: {e}"));
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = mpsc::channel();
        let tag = format!("[{bin} {}]", child.id());
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                eprintln!("{tag} {line}");
                if tx.send(Line::Text(line)).is_err() {
                    break;
                }
            }
            let _ = tx.send(Line::Eof);
        });
        Daemon {
            name: bin.to_string(),
            child: Some(child),
            lines: rx,
            recent: VecDeque::new(),
            exited: false,
        }
    }

    /// Waits until the daemon printed its readiness line. Panics (with its last log lines) if
    /// it exits first or does not get there within `limit` (a hang guard, not a timing check).
    pub fn wait_ready(&mut self, limit: Duration) -> &mut Daemon {
        if !self.wait_for_line(READY_MARKER, limit) {
            panic!(
                "{} did not become ready; last log lines:\n{}",
                self.name,
                self.recent_log()
            );
        }
        self
    }

    /// Waits until a log line contains `needle`; false if the daemon exited or `limit` passed.
    pub fn wait_for_line(&mut self, needle: &str, limit: Duration) -> bool {
        self.wait_for_lines(&[needle], limit).is_empty()
    }

    /// Waits until each of `needles` is contained in a log line, in any order; returns those
    /// not seen before the daemon exited or `limit` passed (empty: all were seen). The lines
    /// read on the way are consumed, as by [`Daemon::wait_for_line`].
    pub fn wait_for_lines<'a>(&mut self, needles: &[&'a str], limit: Duration) -> Vec<&'a str> {
        let mut missing = needles.to_vec();
        let deadline = Instant::now() + limit;
        while !missing.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(Line::Text(line)) => {
                    missing.retain(|needle| !line.contains(needle));
                    self.remember(line);
                }
                Ok(Line::Eof) | Err(RecvTimeoutError::Disconnected) => {
                    self.exited = true;
                    break;
                }
                Err(RecvTimeoutError::Timeout) => break,
            }
        }
        missing
    }

    /// Waits for the process to exit by itself (its log ends); returns its exit status code.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        while !self.exited {
            if !self.wait_for_line("\u{0}never", limit) && !self.exited {
                return None;
            }
        }
        self.child.take().and_then(|mut c| c.wait().ok()?.code())
    }

    /// Sends the process a signal by name (`TERM`, `INT`, `STOP`, `CONT`…) with `kill(1)`.
    pub fn signal(&self, name: &str) {
        let pid = self.pid().expect("the daemon runs").to_string();
        let status = Command::new("kill")
            .args([&format!("-{name}"), &pid])
            .status()
            .unwrap_or_else(|e| panic!("running kill -{name} {pid}: {e}"));
        assert!(status.success(), "kill -{name} {pid} failed: {status}");
    }

    /// SIGTERM: the graceful stop.
    pub fn terminate(&self) {
        self.signal("TERM");
    }

    /// The process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the process (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The last lines the daemon logged.
    pub fn recent_log(&self) -> String {
        self.recent.iter().cloned().collect::<Vec<_>>().join("\n")
    }

    fn remember(&mut self, line: String) {
        if self.recent.len() == 40 {
            self.recent.pop_front();
        }
        self.recent.push_back(line);
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}
