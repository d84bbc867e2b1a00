//! Faults under load: kill -9 and restart, one at a time, of db_proxy_server, route_server,
//! login_server, MariaDB, Redis and one msg_server, while twenty pairs of users (each receiver
//! on the other msg_server than its sender) and a twenty-member temporary group (members on
//! both msg_servers) send all the time.
//!
//! After each fault, an independent check of everything sent since the start:
//! - MySQL (the `IMMessage_N` / `IMGroupMessage_N` rows, read directly): every acked message is
//!   stored once, with its body, under its acked id; no id is stored twice in a conversation; no
//!   message is stored twice; nothing is stored that nobody sent;
//! - the receiver's history (paged through msg_server): every acked message is there under its
//!   acked id with its text, no id twice;
//! - what the receivers got delivered: only messages that were sent, each once, an acked one
//!   under its acked id;
//! - the service resumes by itself: every sender gets an ack, and every receiver a delivery, of
//!   a message sent after the restart. How long that took is printed, never asserted.
//!
//! A message without an ack may be lost or stored (once); one with an ack must never be lost or
//! duplicated.
//!
//! MariaDB and Redis are a private pair (`scripts/db-up.sh` with their own `TT_VAR` and
//! ports), started once for the file and stopped by `scripts/db-down.sh` at the end: the shared
//! instances other tests use are never touched. Users: `tt_testkit::users::FAULTS`.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mysql::prelude::Queryable;
use tt_client::tt_proto::Pdu;
use tt_client::tt_proto::ids::cid;
use tt_client::tt_proto::pb::message::ImMsgDataAck;
use tt_client::{Client, ClientType, Event, Message, MsgCipher, MsgType, Session, UserStatType};
use tt_testkit::stack::LIMIT;
use tt_testkit::users::{FAULTS, PASSWORD};
use tt_testkit::{DbEnv, Stack, TempDir, free_port};

mod live_client;
use live_client::login_at;

const PAIRS: u32 = 20;
const MEMBERS: u32 = 20;
const _: () = assert!(
    2 * PAIRS + MEMBERS <= FAULTS.len(),
    "more users than FAULTS"
);

/// A pair's sender sends a message every `PAIR_PERIOD`, a group member every `GROUP_PERIOD`
/// (a group message goes to 19 members): under msg_server's MsgRateLimit (20 a second).
const PAIR_PERIOD: Duration = Duration::from_millis(100);
const GROUP_PERIOD: Duration = Duration::from_millis(1000);
/// Messages in flight per sender, not counting those given up.
const WINDOW: usize = 4;
/// A message without an ack after this long no longer holds its sender's window (msg_server
/// sends nothing for a message it could not store, so a sender only learns it by waiting); an
/// ack that comes later on the same connection still counts.
const GIVE_UP: Duration = Duration::from_secs(1);
/// How long a client thread blocks on its socket before it looks at the stop flag again.
const POLL: Duration = Duration::from_millis(100);
/// Hang guard of a request (login, history).
const WAIT: Duration = Duration::from_secs(20);
/// Between two login attempts of a client that lost its msg_server.
const RETRY: Duration = Duration::from_millis(200);
/// Messages per history request.
const PAGE: u32 = 500;

fn pair_sender(p: u32) -> u32 {
    FAULTS.id(2 * p)
}

fn member(j: u32) -> u32 {
    FAULTS.id(2 * PAIRS + j)
}

// ----- the private MariaDB and Redis --------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum DbDaemon {
    MariaDb,
    Redis,
}

/// A MariaDB and a Redis of this test alone, under a directory of their own, stopped (and the
/// directory removed) on drop, also when the test fails.
struct PrivateDb {
    env: DbEnv,
    dir: TempDir,
}

impl PrivateDb {
    fn start() -> PrivateDb {
        let mut env = DbEnv::from_env();
        env.mysql_host = "127.0.0.1".into();
        env.redis_host = "127.0.0.1".into();
        env.mysql_port = free_port();
        env.redis_port = free_port();
        while env.redis_port == env.mysql_port {
            env.redis_port = free_port();
        }
        let db = PrivateDb {
            env,
            dir: TempDir::new("faults-db"),
        };
        db.up();
        db
    }

    /// Runs `scripts/<script>` for this pair; its output, and whether it succeeded.
    fn script(&self, script: &str) -> (bool, String) {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let e = &self.env;
        let out = Command::new("bash")
            .arg(root.join("scripts").join(script))
            .env("TT_VAR", self.dir.path())
            .env("TT_MYSQL_HOST", &e.mysql_host)
            .env("TT_MYSQL_PORT", e.mysql_port.to_string())
            .env("TT_MYSQL_DB", &e.mysql_db)
            .env("TT_MYSQL_USER", &e.mysql_user)
            .env("TT_MYSQL_PASSWORD", &e.mysql_password)
            .env("TT_REDIS_HOST", &e.redis_host)
            .env("TT_REDIS_PORT", e.redis_port.to_string())
            .output()
            .unwrap_or_else(|e| panic!("running {script}: {e}"));
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    /// Starts whatever of the pair is not running (idempotent, as `scripts/db-up.sh` is).
    fn up(&self) {
        let (ok, out) = self.script("db-up.sh");
        assert!(ok, "db-up.sh of the private pair failed:\n{out}");
    }

    fn pid_file(&self, which: DbDaemon) -> PathBuf {
        match which {
            DbDaemon::MariaDb => self.dir.path().join("mysql").join("mysqld.pid"),
            DbDaemon::Redis => self.dir.path().join("redis").join("redis.pid"),
        }
    }

    /// kill -9 of one of the pair; returns once the process is gone.
    fn kill(&self, which: DbDaemon) {
        let file = self.pid_file(which);
        let pid: u32 = std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let status = Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status()
            .expect("running kill");
        assert!(status.success(), "kill -9 {pid} ({which:?}) failed");
        // Not our child: no event tells us when it is gone, so /proc is polled (bounded).
        let deadline = Instant::now() + LIMIT;
        while !process_gone(pid) {
            assert!(
                Instant::now() < deadline,
                "{which:?} (pid {pid}) still there {LIMIT:?} after kill -9"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Writes Redis's snapshot at once (`SAVE`): what a restart after a kill -9 comes back with.
    fn redis_save(&self) {
        let mut c = redis::Client::open(self.env.redis_url(0).as_str())
            .expect("redis url")
            .get_connection()
            .expect("connecting to the private Redis");
        let _: () = redis::cmd("SAVE").query(&mut c).expect("redis SAVE");
    }

    fn mysql(&self) -> mysql::Conn {
        let opts = mysql::Opts::from_url(&self.env.mysql_url()).expect("mysql url");
        mysql::Conn::new(opts).expect("connecting to the private MariaDB")
    }
}

impl Drop for PrivateDb {
    fn drop(&mut self) {
        let (ok, out) = self.script("db-down.sh");
        if !ok {
            eprintln!("db-down.sh of the private pair failed:\n{out}");
        }
    }
}

/// True once process `pid` no longer exists or is a zombie.
fn process_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with(['Z', 'X'])),
    }
}

// ----- what every client thread shares -------------------------------------------------------

/// Per client thread: when it first got an ack (senders) and a delivery (receivers) of a
/// message sent in the current epoch.
struct Progress {
    epoch: u32,
    acked: Vec<Option<Instant>>,
    delivered: Vec<Option<Instant>>,
    /// A client thread panicked: the main thread stops waiting.
    aborted: bool,
}

struct Shared {
    /// In every text: the run.
    tag: String,
    login_url: String,
    /// Stamped into every text; raised (under `progress`) at each phase and after each restart.
    epoch: AtomicU32,
    stop: AtomicBool,
    progress: Mutex<Progress>,
    changed: Condvar,
    sends: Vec<bool>,
    receives: Vec<bool>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Progress> {
        self.progress.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts the next epoch; returns it.
    fn next_epoch(&self) -> u32 {
        let mut p = self.lock();
        p.epoch += 1;
        p.acked.iter_mut().for_each(|t| *t = None);
        p.delivered.iter_mut().for_each(|t| *t = None);
        self.epoch.store(p.epoch, Ordering::SeqCst);
        p.epoch
    }

    fn note(&self, slot: usize, epoch: u32, delivery: bool) {
        let mut p = self.lock();
        if epoch != p.epoch {
            return;
        }
        let t = if delivery {
            &mut p.delivered[slot]
        } else {
            &mut p.acked[slot]
        };
        if t.is_none() {
            *t = Some(Instant::now());
            self.changed.notify_all();
        }
    }

    fn abort(&self) {
        self.stop.store(true, Ordering::SeqCst);
        self.lock().aborted = true;
        self.changed.notify_all();
    }

    /// Waits until every sender got an ack and every receiver a delivery of a message of
    /// `epoch` (hang guard [`LIMIT`]); their times, measured from `since`.
    fn wait_resumed(&self, epoch: u32, what: &str, since: Instant) -> Resumed {
        let deadline = Instant::now() + LIMIT;
        let mut p = self.lock();
        loop {
            assert!(!p.aborted, "{what}: a client thread failed");
            assert_eq!(p.epoch, epoch);
            let missing = |times: &[Option<Instant>], wanted: &[bool]| -> Vec<usize> {
                (0..times.len())
                    .filter(|&i| wanted[i] && times[i].is_none())
                    .collect()
            };
            let no_ack = missing(&p.acked, &self.sends);
            let no_delivery = missing(&p.delivered, &self.receives);
            if no_ack.is_empty() && no_delivery.is_empty() {
                let span = |times: &[Option<Instant>]| {
                    let ts: Vec<Duration> = times
                        .iter()
                        .flatten()
                        .map(|t| t.saturating_duration_since(since))
                        .collect();
                    let first = ts.iter().min().copied().unwrap_or_default();
                    let last = ts.iter().max().copied().unwrap_or_default();
                    (first, last)
                };
                let (first_ack, all_acked) = span(&p.acked);
                let (first_delivery, all_delivered) = span(&p.delivered);
                return Resumed {
                    first_ack,
                    all_acked,
                    first_delivery,
                    all_delivered,
                };
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "{what}: not resumed within {LIMIT:?}: client slots without an ack {no_ack:?}, \
                 without a delivery {no_delivery:?}"
            );
            p = self
                .changed
                .wait_timeout(p, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

/// Since the restart: the first ack, the last sender's first ack, the first delivery, the last
/// receiver's first delivery (each of a message sent after the restart).
#[derive(Clone, Copy, Debug, Default)]
struct Resumed {
    first_ack: Duration,
    all_acked: Duration,
    first_delivery: Duration,
    all_delivered: Duration,
}

/// Sets the stop flag when dropped: the client threads end also when the main thread fails.
struct StopOnDrop<'a>(&'a Shared);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.stop.store(true, Ordering::SeqCst);
    }
}

/// Marks the run aborted when a client thread unwinds.
struct AbortOnPanic<'a>(&'a Shared);

impl Drop for AbortOnPanic<'_> {
    fn drop(&mut self) {
        if thread::panicking() {
            self.0.abort();
        }
    }
}

// ----- one client thread ---------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    /// Sends to `peer`.
    Sender { peer: u32 },
    /// Receives from `from`.
    Receiver { from: u32 },
    /// Sends to and receives from `group`.
    Member { group: u32 },
}

/// A message sent (or tried: the write may have failed).
#[derive(Clone, Debug)]
struct Sent {
    from: u32,
    /// The receiver, or the group.
    to: u32,
    group: bool,
    epoch: u32,
    text: String,
    body: Vec<u8>,
    acked: Option<u32>,
}

struct Inflight {
    sent: usize,
    give_up: Instant,
}

struct Worker {
    slot: usize,
    user: u32,
    role: Role,
    client: Client,
    cipher: MsgCipher,
    sent: Vec<Sent>,
    /// By seq, on the current connection; kept after the give-up, for a late ack.
    inflight: HashMap<u16, Inflight>,
    delivered: Vec<Message>,
    reconnects: u32,
}

impl Worker {
    fn sends(&self) -> bool {
        !matches!(self.role, Role::Receiver { .. })
    }

    fn live_inflight(&self, now: Instant) -> usize {
        self.inflight.values().filter(|f| f.give_up > now).count()
    }

    /// Sends and receives until the stop flag is set, then waits for the acks of the messages
    /// still in flight (up to their give-up).
    fn run(&mut self, sh: &Shared) {
        let _abort = AbortOnPanic(sh);
        let period = match self.role {
            Role::Member { .. } => GROUP_PERIOD,
            _ => PAIR_PERIOD,
        };
        // Spread the first sends of the threads over one period.
        let mut next_send = Instant::now() + period * (self.slot as u32 % 10) / 10;
        loop {
            let now = Instant::now();
            let stopping = sh.stop.load(Ordering::SeqCst);
            let live = self.live_inflight(now);
            if stopping && (!self.sends() || live == 0 || sh.lock().aborted) {
                return;
            }
            let may_send = self.sends() && !stopping && live < WINDOW;
            if may_send && now >= next_send {
                self.send(sh);
                next_send = (next_send + period).max(now);
                continue;
            }
            let mut until = now + POLL;
            if may_send {
                until = until.min(next_send);
            }
            if let Some(g) = self
                .inflight
                .values()
                .map(|f| f.give_up)
                .filter(|&g| g > now)
                .min()
            {
                until = until.min(g);
            }
            match self.client.next_event(until.saturating_duration_since(now)) {
                Ok(Some(Event::Other(pdu))) if pdu.header.command_id == cid::CID_MSG_DATA_ACK => {
                    self.on_ack(sh, &pdu)
                }
                Ok(Some(Event::Message(m))) => self.on_message(sh, m),
                Ok(Some(Event::Closed)) | Err(_) => self.reconnect(sh),
                Ok(_) => {}
            }
        }
    }

    fn send(&mut self, sh: &Shared) {
        let (to, msg_type, group) = match self.role {
            Role::Sender { peer } => (peer, MsgType::SingleText, false),
            Role::Member { group } => (group, MsgType::GroupText, true),
            Role::Receiver { .. } => unreachable!("a receiver does not send"),
        };
        let epoch = sh.epoch.load(Ordering::SeqCst);
        let text = format!("{} u{} e{epoch} n{}", sh.tag, self.user, self.sent.len());
        let body = self.cipher.encrypt(text.as_bytes()).expect("encrypt");
        let index = self.sent.len();
        // Recorded first: a write that fails may still have reached msg_server.
        self.sent.push(Sent {
            from: self.user,
            to,
            group,
            epoch,
            text,
            body: body.clone(),
            acked: None,
        });
        match self.client.send_msg_nowait(to, msg_type, body) {
            Ok(seq) => {
                let f = Inflight {
                    sent: index,
                    give_up: Instant::now() + GIVE_UP,
                };
                assert!(
                    self.inflight.insert(seq, f).is_none(),
                    "user{}: seq {seq} in flight twice",
                    self.user
                );
            }
            Err(e) => {
                eprintln!(
                    "[faults] user{}: send failed ({e}): logging in again",
                    self.user
                );
                self.reconnect(sh);
            }
        }
    }

    fn on_ack(&mut self, sh: &Shared, pdu: &Pdu) {
        let ack: ImMsgDataAck = pdu.decode_body().expect("an ack decodes");
        let seq = pdu.header.seq_num;
        let Some(f) = self.inflight.remove(&seq) else {
            panic!(
                "user{}: an ack of seq {seq}, which is not in flight: {ack:?}",
                self.user
            );
        };
        let s = &mut self.sent[f.sent];
        assert_eq!(
            ack.session_id, s.to,
            "user{}: ack of {:?}",
            self.user, s.text
        );
        assert_ne!(ack.msg_id, 0, "user{}: ack of {:?}", self.user, s.text);
        assert!(
            s.acked.is_none(),
            "user{}: {:?} acked twice",
            self.user,
            s.text
        );
        s.acked = Some(ack.msg_id);
        sh.note(self.slot, s.epoch, false);
    }

    fn on_message(&mut self, sh: &Shared, m: Message) {
        let epoch = m
            .text
            .as_deref()
            .and_then(|t| t.strip_prefix(sh.tag.as_str()))
            .and_then(|rest| {
                rest.split_whitespace()
                    .find_map(|w| w.strip_prefix('e')?.parse::<u32>().ok())
            });
        let counts = match self.role {
            Role::Receiver { from } => m.from == from && !m.is_group(),
            Role::Member { group } => m.is_group() && m.to == group && m.from != self.user,
            Role::Sender { .. } => false,
        };
        if let (Some(e), true) = (epoch, counts) {
            sh.note(self.slot, e, true);
        }
        self.delivered.push(m);
    }

    /// Logs in again through login_server's discovery, as a client of a lost msg_server does.
    fn reconnect(&mut self, sh: &Shared) {
        self.inflight.clear();
        self.client.close();
        let deadline = Instant::now() + LIMIT;
        loop {
            match login_via(&sh.login_url, self.user) {
                Ok(c) => {
                    eprintln!(
                        "[faults] user{} logged in again at {}",
                        self.user,
                        c.peer_addr()
                    );
                    self.client = c;
                    self.reconnects += 1;
                    return;
                }
                Err(e) => {
                    if sh.lock().aborted {
                        return;
                    }
                    assert!(
                        Instant::now() < deadline,
                        "user{}: no login within {LIMIT:?}: {e}",
                        self.user
                    );
                    // Nothing tells a client that a msg_server is back: it tries again.
                    thread::sleep(RETRY);
                }
            }
        }
    }

    /// A usable connection for the checks (the last phase may have left it closed).
    fn ensure_open(&mut self, sh: &Shared) {
        if self.client.is_closed() || self.client.server_time().is_err() {
            self.reconnect(sh);
        }
    }
}

fn login_via(login_url: &str, user: u32) -> tt_client::Result<Client> {
    let addr = Client::discover(login_url)?;
    let mut c = Client::connect(&addr)?;
    c.set_timeout(WAIT);
    c.login(
        &format!("user{user}"),
        PASSWORD,
        ClientType::Windows,
        UserStatType::UserStatusOnline,
    )?;
    Ok(c)
}

/// The client threads: pair senders on msg_server `p % 2`, their receivers on the other one,
/// group members alternating; the group is created by its first member.
fn workers(stack: &Stack) -> (Vec<Worker>, u32) {
    let mut w = Vec::new();
    let mut add = |user: u32, server: usize, role: Role| {
        let slot = w.len();
        w.push(Worker {
            slot,
            user,
            role,
            client: login_at(stack, server, user, ClientType::Windows),
            cipher: MsgCipher::default(),
            sent: Vec::new(),
            inflight: HashMap::new(),
            delivered: Vec::new(),
            reconnects: 0,
        });
    };
    for p in 0..PAIRS {
        let (s, r) = (pair_sender(p), pair_sender(p) + 1);
        add(s, p as usize % 2, Role::Sender { peer: r });
        add(r, (p as usize + 1) % 2, Role::Receiver { from: s });
    }
    let members: Vec<u32> = (0..MEMBERS).map(member).collect();
    let mut creator = login_at(stack, 0, members[0], ClientType::Windows);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let created = creator
        .create_group(&format!("faults-{nanos}"), "", &members)
        .expect("group create reply");
    assert_eq!(created.result_code, 0, "{created:?}");
    let group = created.group_id.expect("a created group has an id");
    creator.close();
    for (j, &m) in members.iter().enumerate() {
        add(m, j % 2, Role::Member { group });
    }
    (w, group)
}

// ----- the faults ----------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    DbProxy,
    Route,
    Login,
    MariaDb,
    Redis,
    MsgServer,
}

impl Fault {
    fn name(self) -> &'static str {
        match self {
            Fault::DbProxy => "db_proxy_server",
            Fault::Route => "route_server",
            Fault::Login => "login_server",
            Fault::MariaDb => "MariaDB",
            Fault::Redis => "Redis",
            Fault::MsgServer => "msg_server 1",
        }
    }
}

/// Waits until every msg_server logged that it lost its link to `kind`.
fn links_lost(stack: &mut Stack, kind: &str) {
    let line = format!("lost the link to {kind}");
    for i in 0..stack.msg.len() {
        let d = stack.msg_daemon(i);
        assert!(
            d.wait_for_line(&line, LIMIT),
            "msg_server {i} did not log {line:?}:\n{}",
            d.recent_log()
        );
    }
}

/// kill -9 of the fault's process, then its restart (each server waited for until ready).
fn inject(stack: &mut Stack, db: &PrivateDb, fault: Fault) {
    match fault {
        Fault::DbProxy => {
            Stack::kill(&mut stack.db_proxy);
            links_lost(stack, "db_proxy_server");
            stack.start_db_proxy();
        }
        Fault::Route => {
            Stack::kill(&mut stack.route);
            links_lost(stack, "route_server");
            stack.start_route();
        }
        Fault::Login => {
            Stack::kill(&mut stack.login);
            links_lost(stack, "login_server");
            stack.start_login();
        }
        Fault::MariaDb => {
            db.kill(DbDaemon::MariaDb);
            db.up();
        }
        Fault::Redis => {
            db.kill(DbDaemon::Redis);
            db.up();
        }
        Fault::MsgServer => {
            Stack::kill(&mut stack.msg[1]);
            stack.start_msg(1);
        }
    }
}

/// What one fault's run measured.
struct Outcome {
    fault: Fault,
    /// From the kill until the restarted process was ready.
    down: Duration,
    resumed: Resumed,
    /// login_server: from its restart until both msg_servers were registered again.
    registered: Option<Duration>,
    /// The epochs of its messages: before the fault, after the restart.
    epochs: std::ops::RangeInclusive<u32>,
}

/// One fault under load: the load starts, every sender and receiver is seen working, the fault
/// is injected, and the load goes on until every one of them works again.
fn run_fault(
    stack: &mut Stack,
    db: &PrivateDb,
    sh: &Shared,
    workers: &mut [Worker],
    fault: Fault,
) -> Outcome {
    if fault == Fault::Redis {
        // Redis is the only authority on group membership: a snapshot taken before the load
        // keeps the group, while the msg id counters move on past it and come back behind the
        // stored ids after the restart.
        db.redis_save();
    }
    sh.stop.store(false, Ordering::SeqCst);
    let warm = sh.next_epoch();
    thread::scope(|scope| {
        let _stop = StopOnDrop(sh);
        for w in workers.iter_mut() {
            scope.spawn(move || w.run(sh));
        }
        sh.wait_resumed(warm, "before the fault", Instant::now());
        eprintln!("[faults] {}: load flowing, kill -9", fault.name());
        let killed = Instant::now();
        inject(stack, db, fault);
        let ready = Instant::now();
        let post = sh.next_epoch();
        let registered = (fault == Fault::Login).then(|| {
            let ports = stack.ports.msg.clone();
            let login = stack.login.as_mut().expect("login_server running");
            for port in ports {
                assert!(
                    login.wait_for_line(&format!(":{port} max_conn_cnt="), LIMIT),
                    "login_server did not register msg_server :{port} again:\n{}",
                    login.recent_log()
                );
            }
            let took = ready.elapsed();
            let addr = Client::discover(&sh.login_url).expect("discovery after the restart");
            assert!(stack.ports.msg.contains(&addr.port), "{addr:?}");
            took
        });
        let resumed = sh.wait_resumed(post, fault.name(), ready);
        Outcome {
            fault,
            down: ready - killed,
            resumed,
            registered,
            epochs: warm..=post,
        }
    })
}

// ----- the checks ----------------------------------------------------------------------------

/// What became of the messages of some epochs.
#[derive(Clone, Copy, Default, Debug)]
struct Tally {
    sent: usize,
    acked: usize,
    unacked_stored: usize,
    unacked_lost: usize,
}

impl Tally {
    fn add(&mut self, o: &Tally) {
        self.sent += o.sent;
        self.acked += o.acked;
        self.unacked_stored += o.unacked_stored;
        self.unacked_lost += o.unacked_lost;
    }
}

/// A [`Tally`] per epoch.
#[derive(Default, Debug)]
struct Tallies(Vec<Tally>);

impl Tallies {
    fn of(&mut self, epoch: u32) -> &mut Tally {
        let i = epoch as usize;
        if self.0.len() <= i {
            self.0.resize(i + 1, Tally::default());
        }
        &mut self.0[i]
    }

    /// The sum over `epochs`.
    fn sum(&self, epochs: std::ops::RangeInclusive<u32>) -> Tally {
        let mut t = Tally::default();
        for e in epochs {
            if let Some(o) = self.0.get(e as usize) {
                t.add(o);
            }
        }
        t
    }
}

/// A stored message: (msgId, sender, content).
type StoredRow = (u32, u32, Vec<u8>);

/// The rows of one conversation.
fn stored_rows(conn: &mut mysql::Conn, table: &str, column: &str, id: u32) -> Vec<StoredRow> {
    let sender = if table.starts_with("IMGroup") {
        "userId"
    } else {
        "fromId"
    };
    conn.exec(
        format!("SELECT msgId, {sender}, content FROM {table} WHERE {column}=?"),
        (id,),
    )
    .unwrap_or_else(|e| panic!("reading {table}: {e}"))
}

/// The stored rows of a conversation against what was sent to it.
fn check_stored(name: &str, rows: &[StoredRow], sent: &[&Sent], tally: &mut Tallies) {
    let mut by_id: HashMap<u32, Vec<&StoredRow>> = HashMap::new();
    let mut by_body: HashMap<&[u8], usize> = HashMap::new();
    for r in rows {
        by_id.entry(r.0).or_default().push(r);
        *by_body.entry(r.2.as_slice()).or_default() += 1;
    }
    for (id, rs) in &by_id {
        assert_eq!(rs.len(), 1, "{name}: msg id {id} stored {} times", rs.len());
    }
    let bodies: HashSet<&[u8]> = sent.iter().map(|s| s.body.as_slice()).collect();
    for r in rows {
        assert!(
            bodies.contains(r.2.as_slice()),
            "{name}: msg id {} holds a body nobody sent",
            r.0
        );
    }
    for s in sent {
        let copies = by_body.get(s.body.as_slice()).copied().unwrap_or(0);
        let tally = tally.of(s.epoch);
        tally.sent += 1;
        match s.acked {
            Some(id) => {
                tally.acked += 1;
                assert_eq!(
                    copies, 1,
                    "{name}: acked {:?} (id {id}) stored {copies} times",
                    s.text
                );
                let row = by_id
                    .get(&id)
                    .map(|rs| rs[0])
                    .unwrap_or_else(|| panic!("{name}: acked {:?}: no row with id {id}", s.text));
                assert_eq!(
                    row.2, s.body,
                    "{name}: msg id {id} holds another body than {:?}",
                    s.text
                );
                assert_eq!(row.1, s.from, "{name}: msg id {id}: sender");
            }
            None => {
                assert!(
                    copies <= 1,
                    "{name}: unacked {:?} stored {copies} times",
                    s.text
                );
                if copies == 1 {
                    tally.unacked_stored += 1;
                } else {
                    tally.unacked_lost += 1;
                }
            }
        }
    }
}

/// Pages the whole history of `session` as `c` sees it, newest first.
fn history(c: &mut Client, session: Session, name: &str) -> Vec<Message> {
    let mut all = Vec::new();
    let mut begin = 0;
    loop {
        let page = c
            .get_msg_list(session, begin, PAGE)
            .unwrap_or_else(|e| panic!("{name}: history from {begin}: {e}"));
        let Some(oldest) = page.iter().map(|m| m.msg_id).min() else {
            return all;
        };
        let full = page.len() as u32 == PAGE;
        all.extend(page);
        if !full || oldest <= 1 {
            return all;
        }
        begin = oldest - 1;
    }
}

/// A conversation's history against what was sent to it.
fn check_history(name: &str, hist: &[Message], sent: &[&Sent]) {
    let by_text: HashMap<&str, &Sent> = sent.iter().map(|s| (s.text.as_str(), *s)).collect();
    let mut ids = HashSet::new();
    for m in hist {
        assert!(
            ids.insert(m.msg_id),
            "{name}: msg id {} twice in the history",
            m.msg_id
        );
        let text = m.text.as_deref().unwrap_or_default();
        let Some(s) = by_text.get(text) else {
            panic!(
                "{name}: msg id {} has a text nobody sent: {text:?}",
                m.msg_id
            );
        };
        assert_eq!(m.from, s.from, "{name}: sender of msg id {}", m.msg_id);
        if let Some(id) = s.acked {
            assert_eq!(
                m.msg_id, id,
                "{name}: {text:?} in the history under another id"
            );
        }
    }
    for s in sent {
        if let Some(id) = s.acked {
            assert!(
                ids.contains(&id),
                "{name}: acked {:?} (id {id}) missing from the history",
                s.text
            );
        }
    }
}

/// Everything sent since the start, checked in MySQL, in the receivers' histories and in what
/// they got delivered.
fn check_all(db: &PrivateDb, sh: &Shared, workers: &mut [Worker], group: u32) -> Tallies {
    let mut tally = Tallies::default();
    let mut conn = db.mysql();
    let all_sent: Vec<Sent> = workers.iter().flat_map(|w| w.sent.clone()).collect();
    let by_text: HashMap<&str, &Sent> = all_sent.iter().map(|s| (s.text.as_str(), s)).collect();
    let to_conv = |to: u32, group: bool| -> Vec<&Sent> {
        all_sent
            .iter()
            .filter(|s| s.to == to && s.group == group)
            .collect()
    };

    for w in workers.iter_mut() {
        w.ensure_open(sh);
    }
    for p in 0..PAIRS {
        let (from, to) = (pair_sender(p), pair_sender(p) + 1);
        let name = format!("pair user{from}→user{to}");
        let sent = to_conv(to, false);
        let relations: Vec<u32> = conn
            .exec(
                "SELECT id FROM IMRelationShip WHERE smallId=? AND bigId=? AND status=0",
                (from, to),
            )
            .expect("reading IMRelationShip");
        assert_eq!(relations.len(), 1, "{name}: relations {relations:?}");
        let r = relations[0];
        let rows = stored_rows(&mut conn, &format!("IMMessage_{}", r % 8), "relateId", r);
        check_stored(&name, &rows, &sent, &mut tally);
        let receiver = workers.iter_mut().find(|w| w.user == to).expect("receiver");
        let hist = history(&mut receiver.client, Session::user(from), &name);
        check_history(&name, &hist, &sent);
    }
    let name = format!("group {group}");
    let sent = to_conv(group, true);
    let rows = stored_rows(
        &mut conn,
        &format!("IMGroupMessage_{}", group % 8),
        "groupId",
        group,
    );
    check_stored(&name, &rows, &sent, &mut tally);
    let reader = workers
        .iter_mut()
        .find(|w| w.user == member(1))
        .expect("member");
    let hist = history(&mut reader.client, Session::group(group), &name);
    check_history(&name, &hist, &sent);

    for w in workers.iter() {
        let mut seen = HashSet::new();
        for m in &w.delivered {
            let text = m.text.as_deref().unwrap_or_default();
            let Some(s) = by_text.get(text) else {
                panic!("user{}: delivered a text nobody sent: {m:?}", w.user);
            };
            assert!(
                seen.insert(text),
                "user{}: {text:?} delivered twice",
                w.user
            );
            assert_eq!(m.from, s.from, "user{}: sender of {text:?}", w.user);
            assert_eq!(m.is_group(), s.group, "user{}: {text:?}", w.user);
            if s.group {
                assert_eq!(m.to, s.to, "user{}: group of {text:?}", w.user);
            } else {
                assert_eq!(
                    (m.to, s.to),
                    (w.user, w.user),
                    "user{}: receiver of {text:?}",
                    w.user
                );
            }
            if let Some(id) = s.acked {
                assert_eq!(
                    m.msg_id, id,
                    "user{}: {text:?} delivered under another id",
                    w.user
                );
            }
        }
    }
    tally
}

#[test]
fn nothing_acked_is_lost_or_duplicated_under_kill_9() {
    let db = PrivateDb::start();
    let mut stack = Stack::builder("faults")
        .msg_servers(2)
        .db_env(db.env.clone())
        .start();
    let (mut workers, group) = workers(&stack);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let n = workers.len();
    let sh = Shared {
        tag: format!("faults-{}-{nanos}", std::process::id()),
        login_url: stack.login_url(),
        epoch: AtomicU32::new(0),
        stop: AtomicBool::new(false),
        progress: Mutex::new(Progress {
            epoch: 0,
            acked: vec![None; n],
            delivered: vec![None; n],
            aborted: false,
        }),
        changed: Condvar::new(),
        sends: workers.iter().map(Worker::sends).collect(),
        receives: workers
            .iter()
            .map(|w| !matches!(w.role, Role::Sender { .. }))
            .collect(),
    };

    let faults = [
        Fault::DbProxy,
        Fault::Route,
        Fault::Login,
        Fault::MariaDb,
        Fault::Redis,
        Fault::MsgServer,
    ];
    let mut outcomes = Vec::new();
    let mut tallies = Tallies::default();
    for fault in faults {
        let port = stack.msg_port(1);
        let on_killed: Vec<(usize, u32)> = workers
            .iter()
            .filter(|w| fault == Fault::MsgServer && w.client.peer_addr().port() == port)
            .map(|w| (w.slot, w.reconnects))
            .collect();
        assert!(
            fault != Fault::MsgServer || !on_killed.is_empty(),
            "no client on msg_server 1"
        );
        let o = run_fault(&mut stack, &db, &sh, &mut workers, fault);
        for &(slot, before) in &on_killed {
            let w = &workers[slot];
            assert!(
                w.reconnects > before,
                "user{} of the killed msg_server did not log in again",
                w.user
            );
        }
        let t = check_all(&db, &sh, &mut workers, group);
        eprintln!(
            "[faults] {}: checked, everything acked is stored once and in the history; {:?}",
            fault.name(),
            t.sum(o.epochs.clone())
        );
        outcomes.push(o);
        tallies = t;
    }

    eprintln!(
        "\n[faults] fault | down | first ack | every sender | first delivery | every receiver \
         | messages sent | acked | not acked: stored | not acked: lost"
    );
    for o in &outcomes {
        let r = o.resumed;
        let t = tallies.sum(o.epochs.clone());
        let reg = o
            .registered
            .map(|d| format!(" (msg_servers registered again after {d:.1?})"))
            .unwrap_or_default();
        eprintln!(
            "[faults] {}{reg} | {:.2?} | {:.2?} | {:.2?} | {:.2?} | {:.2?} | {} | {} | {} | {}",
            o.fault.name(),
            o.down,
            r.first_ack,
            r.all_acked,
            r.first_delivery,
            r.all_delivered,
            t.sent,
            t.acked,
            t.unacked_stored,
            t.unacked_lost
        );
    }
    let reconnects: u32 = workers.iter().map(|w| w.reconnects).sum();
    eprintln!("[faults] logins again after a lost connection: {reconnects}");
}
