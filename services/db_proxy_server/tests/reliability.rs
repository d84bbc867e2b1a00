//! Msg ids across Redis losing its data (docs/RELIABILITY.md, "Message ids"): db_proxy_server
//! runs against a private redis-server of this test, which is killed (SIGKILL) and started
//! again, empty or from an older snapshot, while MySQL keeps every stored message. The shared
//! Redis of `scripts/db-up.sh` is never touched. Also the migration (`sql/migrate.sql`) that gives
//! a message table of an earlier schema its unique key.
//!
//! Users: `tt_testkit::users::DB_PROXY_RELIABILITY` only (the constants below name their roles).

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Process, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use mysql::prelude::Queryable;
use tt_proto::pb::base_define::MsgType;
use tt_proto::pb::message::ImMsgData;
use tt_testkit::users::DB_PROXY_RELIABILITY;
use tt_testkit::{
    DbEnv, PduClient, Stack, TempDir, create_group, free_port, mysql_conn, redis_db, relation_id,
};

/// The pair and the group (with `GROUP_C`) of the snapshot test.
const SNAP_A: u32 = DB_PROXY_RELIABILITY.id(0);
const SNAP_B: u32 = DB_PROXY_RELIABILITY.id(1);
const GROUP_C: u32 = DB_PROXY_RELIABILITY.id(2);
/// The pair of the empty-restart test.
const EMPTY_A: u32 = DB_PROXY_RELIABILITY.id(3);
const EMPTY_B: u32 = DB_PROXY_RELIABILITY.id(4);

/// Hang guard for a redis-server to start or stop: generous, never a timing check.
const LIMIT: Duration = tt_testkit::stack::LIMIT;

/// Conversation ids no daemon ever uses (relation and group ids stay far below), in shard 7.
const MIGRATION_CONV: u32 = 4_000_000_007;

/// The migration test drops the unique keys of the shard-7 message tables for a moment, which
/// the other tests of this file store into too: the tests of this file run one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The first of `names` found in `PATH` or in the sbin directories, as `scripts/proc.sh`'s
/// `find_bin` looks for the binaries `scripts/db-up.sh` installs.
fn find_bin(names: &[&str]) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    dirs.extend(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from));
    names
        .iter()
        .flat_map(|name| dirs.iter().map(move |d| d.join(name)))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("none of {names:?} found (scripts/db-up.sh installs them)"))
}

/// A redis-server of this test alone: RDB snapshots only when asked ([`PrivateRedis::save`]),
/// no AOF, data in its own directory, so that a restart loads exactly the last snapshot.
struct PrivateRedis {
    child: Option<Child>,
    port: u16,
    dir: TempDir,
}

impl PrivateRedis {
    fn start(label: &str) -> PrivateRedis {
        let mut redis = PrivateRedis {
            child: None,
            port: free_port(),
            dir: TempDir::new(label),
        };
        redis.spawn();
        redis
    }

    fn spawn(&mut self) {
        let child = Process::new(find_bin(&["redis-server"]))
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .args(["--dbfilename", "dump.rdb"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting redis-server");
        self.child = Some(child);
        // Accepting connections comes after loading the snapshot: poll until a PING answers.
        let deadline = Instant::now() + LIMIT;
        loop {
            let pong = redis::Client::open(self.url(0).as_str())
                .and_then(|c| c.get_connection())
                .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c));
            if pong.is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "redis-server on port {} did not answer PING",
                self.port
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn url(&self, db: u32) -> String {
        format!("redis://127.0.0.1:{}/{db}", self.port)
    }

    fn conn(&self, db: u32) -> redis::Connection {
        redis::Client::open(self.url(db).as_str())
            .and_then(|c| c.get_connection())
            .expect("connecting to the private redis-server")
    }

    /// Writes the snapshot a later start loads (SAVE: done when it returns).
    fn save(&self) {
        let _: () = redis::cmd("SAVE")
            .query(&mut self.conn(0))
            .expect("SAVE on the private redis-server");
    }

    /// SIGKILL, as a crash: what was not saved is lost.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        // Closed listener: nothing accepts on the port any more.
        assert!(TcpStream::connect(("127.0.0.1", self.port)).is_err());
    }

    /// Starts it again (same port and directory), loading the last snapshot if there is one.
    fn restart(&mut self) {
        self.spawn();
    }

    /// Removes the snapshot: the next start begins empty.
    fn forget_snapshot(&self) {
        let _ = std::fs::remove_file(self.dir.path().join("dump.rdb"));
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A private Redis, db_proxy_server alone against it, a client of db_proxy_server and a
/// connection to the test MariaDB.
struct Setup {
    redis: PrivateRedis,
    // Holds the daemon: dropped (killed) at the end of the test.
    _stack: Stack,
    c: PduClient,
    db: mysql::Conn,
}

fn setup(label: &str) -> Setup {
    let redis = PrivateRedis::start(&format!("{label}-redis"));
    let stack = Stack::builder(label)
        .msg_servers(0)
        .route(false)
        .login(false)
        .redis_port(redis.port)
        .start();
    let c = PduClient::connect(stack.ports.db_proxy).skipping_heartbeats();
    Setup {
        redis,
        _stack: stack,
        c,
        db: mysql_conn(),
    }
}

fn now() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as u32
}

/// Sends a message; the msg id of the reply (0: not stored, no ack).
fn send(c: &mut PduClient, from: u32, to: u32, kind: MsgType, text: &str) -> u32 {
    let rsp: ImMsgData = c.call(&ImMsgData {
        from_user_id: from,
        to_session_id: to,
        msg_id: 0,
        create_time: now(),
        msg_type: kind as i32,
        msg_data: text.as_bytes().to_vec(),
        attach_data: None,
    });
    rsp.msg_id
}

/// Sends `n` messages to `to` (a user for `MsgType::SingleText`, a group for
/// `MsgType::GroupText`), each of which must be acked with an id above every id before it;
/// returns the last id.
fn send_increasing(
    c: &mut PduClient,
    from: u32,
    to: u32,
    kind: MsgType,
    n: usize,
    mut last: u32,
) -> u32 {
    for i in 0..n {
        let id = send(c, from, to, kind, &format!("reliability {i}"));
        assert!(
            id > last,
            "message {i} from {from} to {to}: acked with id {id}, not above {last}"
        );
        last = id;
    }
    last
}

/// Rows of the conversation, and how many of them repeat another row's msg id.
fn stored_and_repeated(db: &mut mysql::Conn, table: &str, column: &str, id: u32) -> (u64, u64) {
    db.exec_first(
        format!("SELECT COUNT(*), COUNT(*) - COUNT(DISTINCT msgId) FROM {table} WHERE {column}=?"),
        (id,),
    )
    .expect("counting messages")
    .expect("one row")
}

fn assert_no_repeated_id(db: &mut mysql::Conn, table: &str, column: &str, id: u32) {
    let (stored, repeated) = stored_and_repeated(db, table, column, id);
    assert!(stored > 0, "{table}: messages of {column} {id} stored");
    assert_eq!(
        repeated, 0,
        "{table}: a msg id of {column} {id} is stored twice"
    );
}

/// The highest msg id stored for the pair (0: none, or no relation yet).
fn pair_max_stored(db: &mut mysql::Conn, a: u32, b: u32) -> u32 {
    match relation_id(db, a, b) {
        0 => 0,
        r => max_stored(db, &format!("IMMessage_{}", r % 8), "relateId", r),
    }
}

/// The highest msg id stored for the conversation (0: none).
fn max_stored(db: &mut mysql::Conn, table: &str, column: &str, id: u32) -> u32 {
    db.exec_first::<Option<u32>, _, _>(
        format!("SELECT MAX(msgId) FROM {table} WHERE {column}=?"),
        (id,),
    )
    .expect("reading MAX(msgId)")
    .flatten()
    .unwrap_or(0)
}

#[test]
fn msg_ids_stay_unique_and_increasing_when_redis_restarts_from_an_older_snapshot() {
    let _serial = serial();
    let mut t = setup("reliability-snapshot");

    let group = create_group(
        &mut t.c,
        &[SNAP_A, SNAP_B, GROUP_C],
        &format!("reliability {} {}", std::process::id(), now()),
    );
    let group_table = format!("IMGroupMessage_{}", group % 8);
    // The pair keeps its messages of earlier runs, which this Redis never counted: its first
    // id is already checked against them.
    let before = pair_max_stored(&mut t.db, SNAP_A, SNAP_B);
    let single = MsgType::SingleText;
    let mut last_single = send_increasing(&mut t.c, SNAP_A, SNAP_B, single, 3, before);
    let r = relation_id(&mut t.db, SNAP_A, SNAP_B);
    let single_table = format!("IMMessage_{}", r % 8);
    let mut last_group = send_increasing(&mut t.c, GROUP_C, group, MsgType::GroupText, 3, 0);

    t.redis.save();
    // An audio message while msfs is not running: not stored, its id used up, so the snapshot's
    // counter is followed by a gap below the ids stored next.
    let audio = send(
        &mut t.c,
        SNAP_B,
        SNAP_A,
        MsgType::SingleAudio,
        "not an upload",
    );
    if audio != 0 {
        last_single = audio;
    }
    last_single = send_increasing(&mut t.c, SNAP_B, SNAP_A, single, 3, last_single);
    last_group = send_increasing(&mut t.c, SNAP_A, group, MsgType::GroupText, 3, last_group);

    t.redis.kill();
    t.redis.restart();
    let counter: i64 = redis::cmd("GET")
        .arg(format!("msg_id_{r}"))
        .query(&mut t.redis.conn(redis_db::UNREAD))
        .expect("reading the restored counter");
    assert!(
        counter < i64::from(last_single),
        "the snapshot holds an older counter ({counter} < {last_single})"
    );

    // Every request once Redis is back is answered and acked: the first one included, on each
    // worker's connection to the Redis that went away.
    for _ in 0..4 {
        last_single = send_increasing(&mut t.c, SNAP_A, SNAP_B, single, 2, last_single);
        last_group = send_increasing(&mut t.c, SNAP_B, group, MsgType::GroupText, 2, last_group);
    }

    // A counter lowered behind db_proxy's back, its connections staying open (as a DEBUG RELOAD
    // or a hand-made SET would): the repeated id is refused by the unique key and the message
    // takes the next id above the stored ones.
    let mut unread = t.redis.conn(redis_db::UNREAD);
    for key in [format!("msg_id_{r}"), format!("group_msg_id_{group}")] {
        let _: () = redis::cmd("SET")
            .arg(key)
            .arg(1)
            .query(&mut unread)
            .expect("lowering a counter");
    }
    last_single = send_increasing(&mut t.c, SNAP_B, SNAP_A, single, 2, last_single);
    last_group = send_increasing(&mut t.c, GROUP_C, group, MsgType::GroupText, 2, last_group);

    assert_no_repeated_id(&mut t.db, &single_table, "relateId", r);
    assert_no_repeated_id(&mut t.db, &group_table, "groupId", group);
    assert_eq!(
        max_stored(&mut t.db, &single_table, "relateId", r),
        last_single
    );
    assert_eq!(
        max_stored(&mut t.db, &group_table, "groupId", group),
        last_group
    );
}

#[test]
fn msg_ids_continue_after_redis_restarts_empty_and_nothing_is_acked_while_it_is_down() {
    let _serial = serial();
    let mut t = setup("reliability-empty");
    let single = MsgType::SingleText;
    let before = pair_max_stored(&mut t.db, EMPTY_A, EMPTY_B);
    let mut last = send_increasing(&mut t.c, EMPTY_A, EMPTY_B, single, 5, before);
    let r = relation_id(&mut t.db, EMPTY_A, EMPTY_B);
    let table = format!("IMMessage_{}", r % 8);

    t.redis.kill();
    t.redis.forget_snapshot();
    // No msg id can be allocated: the message is not stored and not acked.
    let (stored_before, _) = stored_and_repeated(&mut t.db, &table, "relateId", r);
    assert_eq!(
        send(&mut t.c, EMPTY_B, EMPTY_A, single, "while Redis is down"),
        0
    );
    let (stored_after, _) = stored_and_repeated(&mut t.db, &table, "relateId", r);
    assert_eq!(stored_after, stored_before, "nothing stored without an ack");

    t.redis.restart();
    let missing: bool = redis::cmd("EXISTS")
        .arg(format!("msg_id_{r}"))
        .query::<i64>(&mut t.redis.conn(redis_db::UNREAD))
        .map(|n| n == 0)
        .expect("EXISTS on the restarted Redis");
    assert!(missing, "the restarted Redis is empty");

    // The first request after the restart is acked, and so is every later one.
    last = send_increasing(&mut t.c, EMPTY_B, EMPTY_A, single, 4, last);
    last = send_increasing(&mut t.c, EMPTY_A, EMPTY_B, single, 4, last);
    assert_no_repeated_id(&mut t.db, &table, "relateId", r);
    assert_eq!(max_stored(&mut t.db, &table, "relateId", r), last);
}

/// Runs `sql/migrate.sql` on the test database with the application account, as
/// `scripts/db-up.sh` does for a shared server.
fn run_migration() {
    let env = DbEnv::from_env();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sql/migrate.sql");
    let input = std::fs::File::open(&script).expect("opening sql/migrate.sql");
    let out = Process::new(find_bin(&["mariadb", "mysql"]))
        .args(["--no-defaults", "--protocol=tcp", "--batch"])
        .arg(format!("--host={}", env.mysql_host))
        .arg(format!("--port={}", env.mysql_port))
        .arg(format!("--user={}", env.mysql_user))
        .arg(format!("--database={}", env.mysql_db))
        .env("MYSQL_PWD", &env.mysql_password)
        .stdin(input)
        .output()
        .expect("running the mariadb client");
    assert!(
        out.status.success(),
        "sql/migrate.sql failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn has_index(db: &mut mysql::Conn, table: &str, index: &str) -> bool {
    let n: u64 = db
        .exec_first(
            "SELECT COUNT(*) FROM information_schema.STATISTICS \
             WHERE TABLE_SCHEMA=DATABASE() AND TABLE_NAME=? AND INDEX_NAME=?",
            (table, index),
        )
        .expect("reading information_schema")
        .unwrap_or(0);
    n > 0
}

/// Stores a row of the migration test's conversation in `table` (IMMessage_7 or
/// IMGroupMessage_7).
fn insert_row(db: &mut mysql::Conn, table: &str, msg_id: u32, text: &str) -> mysql::Result<()> {
    let sql = if table.starts_with("IMMessage") {
        "INSERT INTO IMMessage_7 (relateId, fromId, toId, msgId, content, updated, created) \
         VALUES (?, 1, 2, ?, ?, 1, 1)"
    } else {
        "INSERT INTO IMGroupMessage_7 (groupId, userId, msgId, content) VALUES (?, 1, ?, ?)"
    };
    db.exec_drop(sql, (MIGRATION_CONV, msg_id, text))
}

/// Removes the test's rows and puts the unique keys back, also when the test fails midway.
struct MigrationCleanup;

impl Drop for MigrationCleanup {
    fn drop(&mut self) {
        let mut db = mysql_conn();
        for (table, column) in [("IMMessage_7", "relateId"), ("IMGroupMessage_7", "groupId")] {
            let _ = db.exec_drop(
                format!("DELETE FROM {table} WHERE {column}=?"),
                (MIGRATION_CONV,),
            );
        }
        run_migration();
    }
}

#[test]
fn migration_renumbers_repeated_ids_and_adds_the_unique_keys() {
    let _serial = serial();
    let mut db = mysql_conn();
    let _cleanup = MigrationCleanup;
    let tables = [
        ("IMMessage_7", "relateId", "uniq_relateId_msgId"),
        ("IMGroupMessage_7", "groupId", "uniq_groupId_msgId"),
    ];
    for (table, column, index) in tables {
        db.exec_drop(
            format!("DELETE FROM {table} WHERE {column}=?"),
            (MIGRATION_CONV,),
        )
        .expect("removing rows of an earlier run");
        // A table as an earlier schema made it: no unique key, and ids stored twice.
        db.query_drop(format!("ALTER TABLE {table} DROP INDEX {index}"))
            .expect("dropping the unique key");
        for (msg_id, text) in [(1, "a"), (2, "b"), (2, "c"), (3, "d"), (2, "e"), (3, "f")] {
            insert_row(&mut db, table, msg_id, text).expect("storing a row");
        }
    }

    run_migration();
    run_migration();

    for (table, column, index) in tables {
        assert!(has_index(&mut db, table, index), "{table} has {index}");
        let rows: Vec<(u32, String)> = db
            .exec(
                format!("SELECT msgId, content FROM {table} WHERE {column}=? ORDER BY id"),
                (MIGRATION_CONV,),
            )
            .expect("reading the rows back");
        let expected = [(1, "a"), (2, "b"), (4, "c"), (3, "d"), (5, "e"), (6, "f")];
        let expected: Vec<(u32, String)> =
            expected.iter().map(|&(i, t)| (i, t.to_string())).collect();
        assert_eq!(
            rows, expected,
            "{table}: the first row keeps an id, later ones move up"
        );
        match insert_row(&mut db, table, 2, "x") {
            Err(mysql::Error::MySqlError(e)) => assert_eq!(e.code, 1062, "{table}: {e}"),
            other => panic!("{table}: a repeated id is refused, got {other:?}"),
        }
        insert_row(&mut db, table, 7, "y").expect("a new id is stored");
    }
}
