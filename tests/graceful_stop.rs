//! Graceful stop: SIGTERM to each daemon, most of them under a chat load (five pairs of
//! `tt_client` users on two msg_servers, each sender keeping a few messages in flight and
//! counting its acks).
//!
//! - db_proxy_server: every acked message is in MySQL; it exits 0 and its pid file is gone;
//! - a msg_server: login_server stops handing it out at once; its clients read the end of
//!   stream (not a reset), log in again through login_server and land on the other
//!   msg_server; every ack they had is stored; it exits 0, pid file gone;
//! - route_server and login_server: exit 0, pid file gone, and after a restart the rest works;
//! - the bound: a msg_server waiting on a db_proxy that was SIGSTOPped exits non-zero at its
//!   `StopTimeout`; a second SIGTERM stops another at once (non-zero);
//! - file_server, push_server (both linked to the msg_servers of the load), msfs and
//!   http_msg_server (linked to the load's db_proxy and route_server): exit 0, pid file gone;
//!   after each stop the load gets more acks, and every acked message is stored.
//!
//! Users: `tt_testkit::users::GRACEFUL_STOP`. No timing assertions: waits are hang guards.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use mysql::prelude::Queryable;
use tt_client::tt_proto::ids::cid;
use tt_client::tt_proto::pb::message::ImMsgDataAck;
use tt_client::{Client, ClientType, Error, Event, MsgCipher, MsgType};
use tt_testkit::push_gateway::PushGateway;
use tt_testkit::stack::LIMIT;
use tt_testkit::users::GRACEFUL_STOP;
use tt_testkit::{Daemon, Stack, TempDir, free_port, mysql_conn};

mod live_client;

/// `user` logged in to msg_server `server` as a Windows client.
fn login_at(stack: &Stack, server: usize, user: u32) -> Client {
    live_client::login_at(stack, server, user, ClientType::Windows)
}

/// Pairs of the load: sender `i` is user `GRACEFUL_STOP.id(i)`, its receiver `id(i + PAIRS)`.
const PAIRS: u32 = 5;
/// Messages a sender keeps in flight.
const WINDOW: usize = 4;
/// How long a load thread waits for one event before it looks at its stop flag again. A
/// sender that hears nothing for that long takes its messages in flight as dropped (the rate
/// limit, no db_proxy link: msg_server drops without a word) and sends more.
const EVENT_WAIT: Duration = Duration::from_millis(100);

/// The tests share their users: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// How a load client's connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum End {
    /// The test stopped it; the connection was still open.
    Stopped,
    /// The server closed the connection cleanly (end of stream).
    Eof,
    /// Anything else (a reset, an error).
    Failed(String),
}

/// What one sender saw.
struct Sent {
    from: u32,
    to: u32,
    /// On which msg_server it was.
    server: usize,
    /// msg ids of its acks.
    acked: Vec<u32>,
    end: End,
}

fn ended(e: Error) -> End {
    match e {
        Error::Closed => End::Eof,
        e => End::Failed(e.to_string()),
    }
}

/// One event, or how the connection ended.
fn next(c: &mut Client) -> Result<Option<Event>, End> {
    match c.next_event(EVENT_WAIT) {
        Ok(Some(Event::Closed)) => Err(End::Eof),
        Ok(e) => Ok(e),
        Err(e) => Err(ended(e)),
    }
}

/// Sends to `to` continuously, `WINDOW` messages in flight, until `stop` or the connection
/// ends; every ack counted in `acks`.
fn send_loop(mut c: Client, to: u32, server: usize, stop: &AtomicBool, acks: &AtomicUsize) -> Sent {
    let cipher = MsgCipher::default();
    let from = c.user_id();
    let mut sent = Sent {
        from,
        to,
        server,
        acked: Vec::new(),
        end: End::Stopped,
    };
    let mut inflight = 0;
    let mut n = 0u64;
    while !stop.load(Ordering::Acquire) {
        while inflight < WINDOW {
            let data = cipher
                .encrypt(format!("graceful {from}->{to} n={n}").as_bytes())
                .expect("encrypt");
            if let Err(e) = c.send_msg_nowait(to, MsgType::SingleText, data) {
                sent.end = ended(e);
                return sent;
            }
            inflight += 1;
            n += 1;
        }
        match next(&mut c) {
            Ok(Some(Event::Other(pdu))) if pdu.header.command_id == cid::CID_MSG_DATA_ACK => {
                let ack: ImMsgDataAck = pdu.decode_body().expect("ack decodes");
                assert_ne!(ack.msg_id, 0, "{from}: an ack without msg id");
                sent.acked.push(ack.msg_id);
                acks.fetch_add(1, Ordering::AcqRel);
                inflight -= 1;
            }
            Ok(None) => inflight = 0,
            Ok(Some(_)) => {}
            Err(end) => {
                sent.end = end;
                return sent;
            }
        }
    }
    sent
}

/// Reads (and, by the client's default, acknowledges) whatever comes until `stop` or the end.
fn receive_loop(mut c: Client, stop: &AtomicBool) -> End {
    while !stop.load(Ordering::Acquire) {
        if let Err(end) = next(&mut c) {
            return end;
        }
    }
    End::Stopped
}

/// The chat load: pair `i` has its sender on msg_server `i % 2`, its receiver on the other.
struct Load {
    stop: Arc<AtomicBool>,
    acks: Arc<AtomicUsize>,
    senders: Vec<JoinHandle<Sent>>,
    /// (user, msg_server, thread).
    receivers: Vec<(u32, usize, JoinHandle<End>)>,
}

impl Load {
    fn start(stack: &Stack) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let acks = Arc::new(AtomicUsize::new(0));
        let mut load = Load {
            stop,
            acks,
            senders: Vec::new(),
            receivers: Vec::new(),
        };
        for i in 0..PAIRS {
            let (from, to) = (GRACEFUL_STOP.id(i), GRACEFUL_STOP.id(i + PAIRS));
            let (s_srv, r_srv) = (i as usize % 2, (i as usize + 1) % 2);
            let receiver = login_at(stack, r_srv, to);
            let sender = login_at(stack, s_srv, from);
            let stop = load.stop.clone();
            load.receivers.push((
                to,
                r_srv,
                thread::spawn(move || receive_loop(receiver, &stop)),
            ));
            let (stop, acks) = (load.stop.clone(), load.acks.clone());
            load.senders.push(thread::spawn(move || {
                send_loop(sender, to, s_srv, &stop, &acks)
            }));
        }
        load
    }

    /// Waits until the senders have `n` acks in all (a poll: the counter has no event).
    fn wait_acks(&self, n: usize) {
        let deadline = Instant::now() + LIMIT;
        while self.acks.load(Ordering::Acquire) < n {
            assert!(
                Instant::now() < deadline,
                "hang guard: {} acks of {n}",
                self.acks.load(Ordering::Acquire)
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stops the load; what each sender saw, and how each receiver ended (with its user and
    /// msg_server).
    fn finish(self) -> (Vec<Sent>, Vec<(u32, usize, End)>) {
        self.stop.store(true, Ordering::Release);
        let sent = self
            .senders
            .into_iter()
            .map(|h| h.join().expect("sender thread"))
            .collect();
        let received = self
            .receivers
            .into_iter()
            .map(|(u, s, h)| (u, s, h.join().expect("receiver thread")))
            .collect();
        (sent, received)
    }
}

/// Every acked message of `sent` is a row of the pair's message table.
fn assert_stored(sent: &[Sent]) {
    let mut db = mysql_conn();
    let mut total = 0;
    for s in sent {
        let (small, big) = (s.from.min(s.to), s.from.max(s.to));
        let relations: Vec<u32> = db
            .exec(
                "SELECT id FROM IMRelationShip WHERE smallId=? AND bigId=? AND status=0",
                (small, big),
            )
            .expect("reading IMRelationShip");
        if s.acked.is_empty() {
            continue;
        }
        assert_eq!(relations.len(), 1, "{}->{}: {relations:?}", s.from, s.to);
        let r = relations[0];
        let stored: HashSet<u32> = db
            .exec::<u32, _, _>(
                format!(
                    "SELECT msgId FROM IMMessage_{} WHERE relateId=? AND fromId=?",
                    r % 8
                ),
                (r, s.from),
            )
            .expect("reading the messages")
            .into_iter()
            .collect();
        let lost: Vec<u32> = s
            .acked
            .iter()
            .copied()
            .filter(|id| !stored.contains(id))
            .collect();
        assert!(
            lost.is_empty(),
            "{}->{}: acked but not stored: {lost:?}",
            s.from,
            s.to
        );
        total += s.acked.len();
    }
    assert!(total > 0, "the load had no acked message at all");
}

/// Two msg_servers without the per-second message limit: the senders keep db_proxy busy.
fn loaded_stack(label: &str) -> Stack {
    Stack::builder(label)
        .msg_servers(2)
        .msg_conf_extra("MsgRateLimit=0\n")
        .start()
}

fn pid_file(dir: &Path) -> PathBuf {
    dir.join("server.pid")
}

/// SIGTERM to `d` (running in `dir`): it exits 0 and its pid file is gone.
fn terminate_cleanly(d: &mut Daemon, dir: &Path, what: &str) {
    assert!(
        pid_file(dir).exists(),
        "{what}: no server.pid before the stop"
    );
    d.terminate();
    let code = d.wait_exit(LIMIT);
    assert_eq!(
        code,
        Some(0),
        "{what}: exit status after SIGTERM; log:\n{}",
        d.recent_log()
    );
    assert!(
        !pid_file(dir).exists(),
        "{what}: server.pid left after the stop"
    );
}

#[test]
fn db_proxy_answers_what_it_took_and_exits_0() {
    let _serial = serial();
    let mut stack = loaded_stack("graceful-db");
    let load = Load::start(&stack);
    load.wait_acks(100);
    let dir = stack.daemon_dir("db_proxy");
    let mut db = stack.db_proxy.take().expect("db_proxy runs");
    terminate_cleanly(&mut db, &dir, "db_proxy_server");
    // Both msg_servers were told to stop sending on their db_proxy links.
    for i in 0..2 {
        assert!(
            stack
                .msg_daemon(i)
                .wait_for_line("asked to stop receiving", LIMIT),
            "msg_server {i} was not told CID_OTHER_STOP_RECV_PACKET"
        );
    }
    let (sent, _) = load.finish();
    assert_stored(&sent);
}

#[test]
fn msg_server_closes_its_clients_who_log_in_elsewhere() {
    let _serial = serial();
    let mut stack = loaded_stack("graceful-msg");
    let load = Load::start(&stack);
    load.wait_acks(100);
    let dir = stack.daemon_dir("msg0");
    let port0 = stack.msg_port(0);
    let mut msg0 = stack.msg[0].take().expect("msg_server 0 runs");
    assert!(pid_file(&dir).exists());
    msg0.terminate();
    // login_server drops it at once, on its word (a closed link logs another line).
    let login = stack.login.as_mut().expect("login_server runs");
    assert!(
        login.wait_for_line(&format!(":{port0} on "), LIMIT)
            && login.recent_log().contains("is stopping: unregistered"),
        "login_server did not unregister the stopping msg_server:\n{}",
        login.recent_log()
    );
    let addr = Client::discover(&stack.login_url()).expect("discovery");
    assert_eq!(addr.port, stack.msg_port(1), "handed out while stopping");
    assert_eq!(msg0.wait_exit(LIMIT), Some(0), "{}", msg0.recent_log());
    assert!(!pid_file(&dir).exists(), "server.pid left after the stop");

    // The clients of msg_server 0 saw the end of stream; those of msg_server 1 are still on.
    let (sent, received) = load.finish();
    let mut moved = Vec::new();
    for s in &sent {
        let want = if s.server == 0 {
            End::Eof
        } else {
            End::Stopped
        };
        assert_eq!(s.end, want, "sender {} on msg_server {}", s.from, s.server);
        if s.server == 0 {
            moved.push(s.from);
        }
    }
    for (user, server, end) in &received {
        let want = if *server == 0 { End::Eof } else { End::Stopped };
        assert_eq!(*end, want, "receiver {user} on msg_server {server}");
        if *server == 0 {
            moved.push(*user);
        }
    }
    assert_stored(&sent);

    // They log in again through login_server: never handed the stopped msg_server.
    let url = stack.login_url();
    for user in moved {
        let addr = Client::discover(&url).expect("discovery");
        assert_eq!(addr.port, stack.msg_port(1), "user {user} handed {addr:?}");
        let mut c = login_at(&stack, 1, user);
        let peer = if user == GRACEFUL_STOP.last {
            GRACEFUL_STOP.first
        } else {
            GRACEFUL_STOP.last
        };
        c.send_text(peer, "back")
            .unwrap_or_else(|e| panic!("user {user} after the move: {e}"));
    }
}

#[test]
fn route_and_login_server_stop_cleanly_and_come_back() {
    let _serial = serial();
    let mut stack = loaded_stack("graceful-route-login");
    let load = Load::start(&stack);
    load.wait_acks(100);

    let dir = stack.daemon_dir("route");
    let mut route = stack.route.take().expect("route_server runs");
    terminate_cleanly(&mut route, &dir, "route_server");
    stack.start_route();
    for i in 0..2 {
        assert!(
            stack
                .msg_daemon(i)
                .wait_for_line("connected to route_server", LIMIT),
            "msg_server {i} did not reconnect to route_server"
        );
    }

    let dir = stack.daemon_dir("login");
    let mut login = stack.login.take().expect("login_server runs");
    terminate_cleanly(&mut login, &dir, "login_server");
    stack.start_login();
    let login = stack.login.as_mut().expect("login_server runs");
    for i in 0..2 {
        let port = stack.ports.msg[i];
        assert!(
            login.wait_for_line(&format!(":{port} max_conn_cnt="), LIMIT),
            "msg_server {i} did not register again"
        );
    }
    let (sent, _) = load.finish();
    assert_stored(&sent);

    // The rest works: discovery, and a message across the two msg_servers.
    let addr = Client::discover(&stack.login_url()).expect("discovery");
    assert!(stack.ports.msg.contains(&addr.port), "{addr:?}");
    let (a, b) = (GRACEFUL_STOP.id(0), GRACEFUL_STOP.id(1));
    let mut rb = login_at(&stack, 1, b);
    let mut sa = login_at(&stack, 0, a);
    let ack = sa.send_text(b, "after the restarts").expect("send");
    let got = rb
        .wait_for(
            LIMIT,
            |e| matches!(e, Event::Message(m) if m.msg_id == ack.msg_id),
        )
        .expect("receive");
    assert!(got.is_some(), "the message did not cross route_server");
}

#[test]
fn the_bound_and_a_second_signal_end_the_stop_non_zero() {
    let _serial = serial();
    let mut stack = Stack::builder("graceful-bound")
        .msg_servers(2)
        .msg_conf_extra("StopTimeout=3\n")
        .start();
    let mut clients: Vec<Client> = (0..2)
        .map(|i| login_at(&stack, i, GRACEFUL_STOP.id(i as u32)))
        .collect();
    let db = stack.db_proxy.as_ref().expect("db_proxy runs");
    db.signal("STOP");
    // Each msg_server has a message waiting for db_proxy; the time request that follows on the
    // same connection is answered by msg_server itself once it has relayed the message.
    for c in &mut clients {
        c.send_msg_nowait(GRACEFUL_STOP.last, MsgType::SingleText, b"waits".to_vec())
            .expect("send");
        c.server_time().expect("time request");
    }

    let mut msg0 = stack.msg[0].take().expect("msg_server 0 runs");
    msg0.terminate();
    let mut msg1 = stack.msg[1].take().expect("msg_server 1 runs");
    msg1.terminate();
    // Two pending SIGTERMs are one: the second goes once the first is taken.
    assert!(msg1.wait_for_line("stopping gracefully", LIMIT));
    msg1.terminate();

    let code0 = msg0.wait_exit(LIMIT);
    let code1 = msg1.wait_exit(LIMIT);
    stack.db_proxy.as_ref().expect("db_proxy").signal("CONT");
    assert!(
        matches!(code0, Some(c) if c != 0) && msg0.recent_log().contains("StopTimeout (3 s) hit"),
        "msg_server 0: {code0:?}\n{}",
        msg0.recent_log()
    );
    assert!(
        matches!(code1, Some(c) if c != 0) && msg1.recent_log().contains("received again"),
        "msg_server 1: {code1:?}\n{}",
        msg1.recent_log()
    );
    for (i, dir) in ["msg0", "msg1"].into_iter().enumerate() {
        assert!(
            !pid_file(&stack.daemon_dir(dir)).exists(),
            "msg_server {i}: server.pid left"
        );
    }
}

#[test]
fn every_other_daemon_exits_0_on_sigterm_under_load() {
    let _serial = serial();
    // The msg_servers of the load are linked to file_server and to push_server, whose gateway
    // records what it receives and answers 200.
    let gateway = PushGateway::start(&[]);
    let mut stack = Stack::builder("graceful-others")
        .msg_servers(2)
        .msg_conf_extra("MsgRateLimit=0\n")
        .file_server(true)
        .push_gateway(&gateway.url())
        .start();
    let load = Load::start(&stack);
    load.wait_acks(100);
    // After each stop the load goes on: its senders get another 100 acks.
    let more_acks = |load: &Load| load.wait_acks(load.acks.load(Ordering::Acquire) + 100);

    let dir = stack.file_dir();
    let mut file = stack.file_server.take().expect("file_server runs");
    terminate_cleanly(&mut file, &dir, "file_server");
    more_acks(&load);

    let dir = stack.daemon_dir("push");
    let mut push = stack.push_server.take().expect("push_server runs");
    terminate_cleanly(&mut push, &dir, "push_server");
    more_acks(&load);

    let home = TempDir::new("graceful-msfs");
    home.write(
        "msfs.conf",
        &format!(
            "ListenIP=127.0.0.1\nListenPort={}\nBaseDir=./tmp\nFileCnt=0\nFilesPerDir=30000\n\
             GetThreadCount=1\nPostThreadCount=1\n",
            free_port()
        ),
    );
    let mut msfs = Daemon::spawn("msfs", home.path(), "msfs.conf");
    msfs.wait_ready(LIMIT);
    terminate_cleanly(&mut msfs, home.path(), "msfs");
    more_acks(&load);

    // http_msg_server is linked to the stack's db_proxy and route_server while the load runs.
    let home = TempDir::new("graceful-http-msg");
    home.write(
        "httpmsgserver.conf",
        &format!(
            "ListenIP=127.0.0.1\nListenPort={}\nConcurrentDBConnCnt=1\nDBServerIP1=127.0.0.1\n\
             DBServerPort1={db}\nDBServerIP2=127.0.0.1\nDBServerPort2={db}\n\
             RouteServerIP1=127.0.0.1\nRouteServerPort1={}\n",
            free_port(),
            stack.ports.route,
            db = stack.ports.db_proxy
        ),
    );
    let mut http = Daemon::spawn("http_msg_server", home.path(), "httpmsgserver.conf");
    http.wait_ready(LIMIT);
    let missing = http.wait_for_lines(
        &["connected to db_proxy_server", "connected to route_server"],
        LIMIT,
    );
    assert!(
        missing.is_empty(),
        "http_msg_server did not log {missing:?}:\n{}",
        http.recent_log()
    );
    terminate_cleanly(&mut http, home.path(), "http_msg_server");
    more_acks(&load);

    let (sent, received) = load.finish();
    // No load client lost its connection to these stops.
    for s in &sent {
        assert_eq!(
            s.end,
            End::Stopped,
            "sender {} on msg_server {}",
            s.from,
            s.server
        );
    }
    for (user, server, end) in &received {
        assert_eq!(*end, End::Stopped, "receiver {user} on msg_server {server}");
    }
    assert_stored(&sent);
}
