//! `tt-load`: a load generator that checks correctness while it measures.
//!
//! Pairs of seeded users (sender, receiver) log in, spread over the given msg_servers so that a
//! pair's messages cross route_server; every sender sends text messages to its receiver, with up
//! to `--window` messages in flight. At the end every acked message must have been delivered
//! exactly once, with the msg_id of its ack and the text that was sent, and the acked msg ids
//! of a pair must be consecutive. See services/client/README.md ("Load generator").

use std::collections::{HashMap, HashSet};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tt_client::tt_proto::ids::cid;
use tt_client::tt_proto::pb::message::ImMsgDataAck;
use tt_client::{Client, ClientType, Event, MsgCipher, MsgType, UserStatType};

mod dial;
mod hold;
mod options;
mod report;

use options::{Options, Target, USAGE, parse_args};
use report::{Totals, check_pair, ms, percentile};

/// Stack of a client thread.
const STACK_SIZE: usize = 256 * 1024;
/// How long the main thread sleeps between looks at the counters.
const POLL: Duration = Duration::from_millis(50);

/// How long a receiver or an idle sender blocks in one wait (it checks the stop flag between):
/// 50 ms for up to 500 clients, then 0.1 ms per client up to 1 s, so that 10 000 idle clients
/// wake about 10 000 times a second rather than 200 000.
fn client_poll(clients: u32) -> Duration {
    Duration::from_micros(u64::from(clients) * 100).clamp(POLL, Duration::from_secs(1))
}

/// At most `limit` holders at a time (the clients logging in).
struct Gate {
    held: Mutex<usize>,
    freed: Condvar,
    limit: usize,
}

impl Gate {
    fn new(limit: usize) -> Gate {
        Gate {
            held: Mutex::new(0),
            freed: Condvar::new(),
            limit,
        }
    }

    /// Runs `f` once fewer than `limit` others are inside.
    fn pass<T>(&self, f: impl FnOnce() -> T) -> T {
        {
            let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
            while *held >= self.limit {
                held = self.freed.wait(held).unwrap_or_else(|p| p.into_inner());
            }
            *held += 1;
        }
        let r = f();
        *self.held.lock().unwrap_or_else(|p| p.into_inner()) -= 1;
        self.freed.notify_one();
        r
    }
}

/// One message the sender had acked.
struct Acked {
    msg_id: u32,
    n: u64,
    sent_at: Instant,
    acked_at: Instant,
}

/// One message the receiver got.
struct Delivered {
    msg_id: u32,
    text: Option<String>,
    at: Instant,
}

/// What the two threads of a pair record, read by the main thread at the end.
#[derive(Default)]
struct PairLog {
    acked: Vec<Acked>,
    /// Sent, never acked within --ack-timeout (or still in flight at the end).
    unacked: u64,
    /// Acks whose seq matched nothing in flight.
    stray_acks: u64,
    delivered: Vec<Delivered>,
    /// Messages from someone else than the pair's sender, or not from this run.
    foreign: u64,
    sender_error: Option<String>,
    receiver_error: Option<String>,
    sender_done: bool,
}

struct Shared {
    opts: Options,
    run_tag: String,
    start: Instant,
    hard_deadline: Instant,
    stop_senders: AtomicBool,
    stop_receivers: AtomicBool,
    /// Set when the run is given up (a client could not log in): threads leave at once.
    abort: AtomicBool,
    /// Client threads past the start barrier (the main thread waits for all, with the deadline).
    started: AtomicUsize,
    total_acked: AtomicU64,
    total_new_delivered: AtomicU64,
    pairs: Vec<Mutex<PairLog>>,
    /// The longest a client thread blocks in one wait ([`client_poll`]).
    poll: Duration,
    /// Bounds the clients logging in at the same time (`--logins`).
    logins: Gate,
}

impl Shared {
    fn log(&self, pair: usize) -> std::sync::MutexGuard<'_, PairLog> {
        // A panicking thread must not hide the others' results.
        self.pairs[pair]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn text_of(tag: &str, pair: usize, n: u64, size: usize) -> String {
    let mut s = format!("tt-load {tag} pair={pair} n={n} ");
    while s.len() < size {
        s.push('x');
    }
    s
}

/// Logs `user` in on msg_server number `server` of the list (modulo its length), or on the one
/// login_server hands out.
fn connect(opts: &Options, server: usize, user: u32) -> Result<Client, String> {
    let n = user.wrapping_sub(opts.first_user) as usize;
    dial::login(opts, dial::stream(opts, server, n)?, user, true)
}

/// Waits until route_server reports `peer` online (so a message to it is routed live).
fn wait_peer_online(c: &mut Client, peer: u32, until: Instant) -> Result<(), String> {
    loop {
        let st = c
            .users_status(&[peer])
            .map_err(|e| format!("status of user{peer}: {e}"))?;
        let online = st
            .iter()
            .any(|s| s.user_id == peer && s.status == UserStatType::UserStatusOnline as i32);
        if online {
            return Ok(());
        }
        if Instant::now() >= until {
            return Err(format!("user{peer} not reported online by route_server"));
        }
        // Poll interval of a status request, not a synchronisation.
        thread::sleep(Duration::from_millis(20));
    }
}

fn sender(
    sh: Arc<Shared>,
    pair: usize,
    user: u32,
    peer: u32,
    ready: Arc<Barrier>,
    go: Arc<Barrier>,
) {
    let connected = sh.logins.pass(|| connect(&sh.opts, pair, user));
    if connected.is_err() {
        sh.abort.store(true, Ordering::SeqCst);
    }
    // Every client has tried to log in.
    ready.wait();
    let setup = connected.and_then(|mut c| {
        if sh.abort.load(Ordering::SeqCst) {
            return Err("aborted: another client failed".to_string());
        }
        // route_server reports ONLINE only for a user with a PC client (as the original): with
        // mobile clients the start barrier (every client logged in) is all there is to wait for.
        if sh.opts.client_type != ClientType::Android {
            let until = (Instant::now() + Duration::from_secs(10)).min(sh.hard_deadline);
            wait_peer_online(&mut c, peer, until)?;
        }
        Ok(c)
    });
    let mut c = match setup {
        Ok(c) => c,
        Err(e) => {
            sh.abort.store(true, Ordering::SeqCst);
            sh.log(pair).sender_error = Some(e);
            pass(&sh, &go);
            return;
        }
    };
    pass(&sh, &go);
    if sh.abort.load(Ordering::SeqCst) {
        return;
    }
    let r = send_loop(&sh, &mut c, pair, peer);
    let mut log = sh.log(pair);
    if let Err(e) = r {
        log.sender_error = Some(e);
    }
    log.sender_done = true;
}

fn send_loop(sh: &Shared, c: &mut Client, pair: usize, peer: u32) -> Result<(), String> {
    let opts = &sh.opts;
    let cipher = MsgCipher::default();
    let started = Instant::now();
    // The pairs' schedules are shifted by a fraction of the interval each, so that all senders
    // together send at a steady rate rather than in one burst per interval.
    let phase = pair as f64 / sh.pairs.len() as f64;
    // When message n may be sent (pacing: a schedule, so a late send does not slow the rest).
    let send_at = |n: u64| -> Instant {
        match opts.rate {
            Some(r) => started + Duration::from_secs_f64((n as f64 + phase) / r),
            None => started,
        }
    };
    let mut next_n: u64 = 0;
    // seq -> (n, sent_at)
    let mut inflight: HashMap<u16, (u64, Instant)> = HashMap::new();
    let more = |n: u64| -> bool {
        if sh.stop_senders.load(Ordering::Relaxed) || Instant::now() >= sh.hard_deadline {
            return false;
        }
        match (opts.messages, opts.duration) {
            (Some(m), _) => n < m,
            (None, Some(d)) => started.elapsed() < d,
            (None, None) => false,
        }
    };
    loop {
        while inflight.len() < opts.window && more(next_n) && Instant::now() >= send_at(next_n) {
            let text = text_of(&sh.run_tag, pair, next_n, opts.size);
            let data = cipher
                .encrypt(text.as_bytes())
                .map_err(|e| format!("encrypting: {e}"))?;
            let sent_at = Instant::now();
            let seq = c
                .send_msg_nowait(peer, MsgType::SingleText, data)
                .map_err(|e| format!("send #{next_n}: {e}"))?;
            if let Some((old, _)) = inflight.insert(seq, (next_n, sent_at)) {
                // Only after 65535 sends without an ack: the old one is given up.
                sh.log(pair).unacked += 1;
                log::warn!("pair {pair}: seq {seq} reused while message {old} was unacked");
            }
            next_n += 1;
        }
        let can_send = inflight.len() < opts.window && more(next_n);
        if inflight.is_empty() && !can_send {
            return Ok(());
        }
        if Instant::now() >= sh.hard_deadline || sh.abort.load(Ordering::Relaxed) {
            sh.log(pair).unacked += inflight.len() as u64;
            return Err(format!(
                "deadline: {} messages still unacked",
                inflight.len()
            ));
        }
        // Give up the messages whose ack is overdue.
        let now = Instant::now();
        let overdue: Vec<u16> = inflight
            .iter()
            .filter(|(_, (_, at))| now.duration_since(*at) >= opts.ack_timeout)
            .map(|(s, _)| *s)
            .collect();
        if !overdue.is_empty() {
            for s in &overdue {
                inflight.remove(s);
            }
            sh.log(pair).unacked += overdue.len() as u64;
            log::warn!("pair {pair}: {} acks overdue", overdue.len());
            continue;
        }
        let wait = if can_send {
            send_at(next_n)
                .saturating_duration_since(Instant::now())
                .min(sh.poll)
        } else {
            sh.poll
        };
        let ev = c
            .next_event(wait)
            .map_err(|e| format!("waiting for acks: {e}"))?;
        match ev {
            Some(Event::Other(pdu)) if pdu.header.command_id == cid::CID_MSG_DATA_ACK => {
                let acked_at = Instant::now();
                let ack: ImMsgDataAck = pdu
                    .decode_body()
                    .map_err(|e| format!("undecodable message ack: {e}"))?;
                match inflight.remove(&pdu.header.seq_num) {
                    Some((n, sent_at)) if ack.session_id == peer => {
                        sh.log(pair).acked.push(Acked {
                            msg_id: ack.msg_id,
                            n,
                            sent_at,
                            acked_at,
                        });
                        sh.total_acked.fetch_add(1, Ordering::Relaxed);
                    }
                    Some((n, _)) => {
                        sh.log(pair).unacked += 1;
                        log::warn!(
                            "pair {pair}: ack of message {n} names session {} (want {peer})",
                            ack.session_id
                        );
                    }
                    None => sh.log(pair).stray_acks += 1,
                }
            }
            Some(Event::Closed) => return Err("connection closed by the server".into()),
            _ => {}
        }
    }
}

fn receiver(
    sh: Arc<Shared>,
    pair: usize,
    user: u32,
    from: u32,
    ready: Arc<Barrier>,
    go: Arc<Barrier>,
) {
    // On the msg_server after the sender's: the messages cross route_server.
    let mut c = match sh.logins.pass(|| connect(&sh.opts, pair + 1, user)) {
        Ok(c) => c,
        Err(e) => {
            sh.abort.store(true, Ordering::SeqCst);
            sh.log(pair).receiver_error = Some(e);
            ready.wait();
            pass(&sh, &go);
            return;
        }
    };
    c.set_max_queued_events(100_000);
    ready.wait();
    pass(&sh, &go);
    if sh.abort.load(Ordering::SeqCst) {
        return;
    }
    let prefix = format!("tt-load {} pair={pair} ", sh.run_tag);
    let mut seen: HashSet<u32> = HashSet::new();
    loop {
        if sh.stop_receivers.load(Ordering::Relaxed) || Instant::now() >= sh.hard_deadline {
            break;
        }
        match c.next_event(sh.poll) {
            Ok(Some(Event::Message(m))) => {
                let at = Instant::now();
                let ours =
                    m.from == from && m.text.as_deref().is_some_and(|t| t.starts_with(&prefix));
                if !ours && m.from != from {
                    sh.log(pair).foreign += 1;
                    continue;
                }
                // From our sender: recorded even if the text is wrong (checked at the end).
                if seen.insert(m.msg_id) {
                    sh.total_new_delivered.fetch_add(1, Ordering::Relaxed);
                }
                sh.log(pair).delivered.push(Delivered {
                    msg_id: m.msg_id,
                    text: m.text,
                    at,
                });
            }
            Ok(Some(Event::Closed)) | Err(_) => {
                sh.log(pair).receiver_error = Some("connection closed by the server".into());
                break;
            }
            Ok(_) => {}
        }
    }
    let dropped = c.dropped_events();
    if dropped > 0 {
        sh.log(pair).receiver_error = Some(format!("client event queue dropped {dropped} events"));
    }
}

/// The start barrier: every client logged in, every sender knows its receiver is online.
fn pass(sh: &Shared, go: &Barrier) {
    go.wait();
    sh.started.fetch_add(1, Ordering::SeqCst);
}

fn run(opts: Options) -> ExitCode {
    let pairs = (opts.users / 2) as usize;
    let start = Instant::now();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let run_tag = format!(
        "r{}.{}",
        std::process::id(),
        now.as_millis() % 1_000_000_000
    );
    let sh = Arc::new(Shared {
        hard_deadline: start + opts.deadline,
        opts: opts.clone(),
        run_tag,
        start,
        stop_senders: AtomicBool::new(false),
        stop_receivers: AtomicBool::new(false),
        abort: AtomicBool::new(false),
        started: AtomicUsize::new(0),
        total_acked: AtomicU64::new(0),
        total_new_delivered: AtomicU64::new(0),
        pairs: (0..pairs).map(|_| Mutex::new(PairLog::default())).collect(),
        poll: client_poll(opts.users),
        logins: Gate::new(opts.logins),
    });
    let target = match &opts.target {
        Target::MsgServers(l) => format!("msg_servers {}", l.join(",")),
        Target::LoginUrl(u) => format!("login_server {u}"),
    };
    let amount = match (opts.messages, opts.duration) {
        (Some(m), _) => format!("{m} messages per sender"),
        (None, Some(d)) => format!("sending for {:.1}s", d.as_secs_f64()),
        _ => String::new(),
    };
    let rate = match opts.rate {
        Some(r) => format!("{r}/s per sender"),
        None => "unpaced".into(),
    };
    println!(
        "tt-load: {pairs} pairs (users {}..={}), {amount}, window {}, {rate}, {target}, run {}",
        opts.first_user,
        opts.first_user + opts.users - 1,
        opts.window,
        sh.run_tag
    );
    // ready: every client logged in; go: every sender knows its receiver is online.
    let ready = Arc::new(Barrier::new(2 * pairs));
    let go = Arc::new(Barrier::new(2 * pairs));
    let mut handles = Vec::with_capacity(2 * pairs);
    for p in 0..pairs {
        let s_user = opts.first_user + 2 * p as u32;
        let r_user = s_user + 1;
        for is_sender in [false, true] {
            let (sh, ready, go) = (sh.clone(), ready.clone(), go.clone());
            let b = thread::Builder::new()
                .name(format!("{}{p}", if is_sender { "s" } else { "r" }))
                .stack_size(STACK_SIZE);
            let h = b.spawn(move || {
                if is_sender {
                    sender(sh, p, s_user, r_user, ready, go)
                } else {
                    receiver(sh, p, r_user, s_user, ready, go)
                }
            });
            match h {
                Ok(h) => handles.push(h),
                Err(e) => {
                    // The barriers can never be passed now.
                    eprintln!("error: cannot start a thread: {e}");
                    std::process::exit(3);
                }
            }
        }
    }
    // Logging in is bounded by the client timeouts (10 s a step), the run by the deadline.
    while sh.started.load(Ordering::SeqCst) < 2 * pairs {
        if Instant::now() >= sh.hard_deadline {
            eprintln!(
                "error: hard deadline of {:.0}s reached while the clients were logging in",
                opts.deadline.as_secs_f64()
            );
            std::process::exit(3);
        }
        thread::sleep(Duration::from_millis(5));
    }
    let send_start = Instant::now();
    let login_time = send_start.duration_since(start);
    if sh.abort.load(Ordering::SeqCst) {
        sh.stop_receivers.store(true, Ordering::SeqCst);
        for h in handles {
            let _ = h.join();
        }
        for p in 0..pairs {
            let log = sh.log(p);
            for (who, e) in [
                ("sender", &log.sender_error),
                ("receiver", &log.receiver_error),
            ] {
                if let Some(e) = e {
                    eprintln!("error: pair {p} {who}: {e}");
                }
            }
        }
        eprintln!("error: not every client could log in; nothing was sent");
        return ExitCode::from(3);
    }
    println!(
        "tt-load: {} clients logged in in {}",
        2 * pairs,
        ms(login_time)
    );

    // Senders finish by themselves (count, duration, deadline); then the deliveries drain.
    let mut deadline_hit = false;
    let mut last_report = Instant::now();
    loop {
        let done = (0..pairs).all(|p| {
            let l = sh.log(p);
            l.sender_done || l.sender_error.is_some()
        });
        if done {
            break;
        }
        if Instant::now() >= sh.hard_deadline {
            deadline_hit = true;
            sh.stop_senders.store(true, Ordering::SeqCst);
            break;
        }
        if last_report.elapsed() >= Duration::from_secs(5) {
            last_report = Instant::now();
            eprintln!(
                "tt-load: {:.0}s acked {} delivered {}",
                send_start.elapsed().as_secs_f64(),
                sh.total_acked.load(Ordering::Relaxed),
                sh.total_new_delivered.load(Ordering::Relaxed)
            );
        }
        thread::sleep(POLL);
    }
    let senders_done = Instant::now();
    let drain_until = (senders_done + opts.drain).min(sh.hard_deadline);
    while sh.total_new_delivered.load(Ordering::SeqCst) < sh.total_acked.load(Ordering::SeqCst) {
        if Instant::now() >= drain_until {
            if Instant::now() >= sh.hard_deadline {
                deadline_hit = true;
            }
            break;
        }
        thread::sleep(POLL);
    }
    // A short grace to see duplicates that would arrive right after the last delivery.
    let grace_until = (Instant::now() + Duration::from_millis(300)).min(sh.hard_deadline);
    while Instant::now() < grace_until {
        thread::sleep(POLL);
    }
    sh.stop_senders.store(true, Ordering::SeqCst);
    sh.stop_receivers.store(true, Ordering::SeqCst);
    // Every thread leaves within a poll interval or a client timeout (10 s); do not wait longer.
    let join_until = Instant::now() + Duration::from_secs(15);
    while handles.iter().any(|h| !h.is_finished()) && Instant::now() < join_until {
        thread::sleep(POLL);
    }
    let stuck = handles.iter().filter(|h| !h.is_finished()).count();

    let mut t = Totals::default();
    for p in 0..pairs {
        let log = sh.log(p);
        check_pair(&sh, p, &log, &mut t);
    }
    t.ack_lat.sort();
    t.del_lat.sort();
    let send_time = t
        .last_ack
        .map_or(Duration::ZERO, |l| l.saturating_duration_since(send_start));
    let rate = if send_time.is_zero() {
        0.0
    } else {
        t.sent_acked as f64 / send_time.as_secs_f64()
    };
    println!(
        "acked {} msgs in {:.2}s: {:.0} msgs/s ({} unacked, {} stray acks)",
        t.sent_acked,
        send_time.as_secs_f64(),
        rate,
        t.unacked,
        t.stray_acks
    );
    println!(
        "ack latency: p50 {} p99 {} max {}",
        ms(percentile(&t.ack_lat, 50)),
        ms(percentile(&t.ack_lat, 99)),
        ms(t.ack_lat.last().copied().unwrap_or_default())
    );
    println!(
        "delivery latency: p50 {} p99 {} max {}",
        ms(percentile(&t.del_lat, 50)),
        ms(percentile(&t.del_lat, 99)),
        ms(t.del_lat.last().copied().unwrap_or_default())
    );
    println!(
        "delivered {} lost {} duplicated {} out-of-order {} corrupted {} id-gaps {} \
         (+{} after unacked) unacked-but-delivered {} foreign {}",
        t.delivered,
        t.lost,
        t.duplicated,
        t.out_of_order,
        t.corrupted,
        t.id_gaps,
        t.gaps_unacked,
        t.unacked_delivered,
        t.foreign
    );
    println!("total run time {:.2}s", sh.start.elapsed().as_secs_f64());
    for e in &t.errors {
        eprintln!("error: {e}");
    }
    if stuck > 0 {
        eprintln!("error: {stuck} client threads did not finish");
    }
    if deadline_hit {
        eprintln!(
            "error: hard deadline of {:.0}s reached",
            opts.deadline.as_secs_f64()
        );
    }
    // With one message in flight the order is fixed: the sender's msg_server acks and
    // forwards in one step. With more, db_proxy may store them in any order (out-of-order
    // deliveries are expected and only counted).
    let one_at_a_time = opts.window == 1 && (t.out_of_order > 0 || t.ack_reorder > 0);
    if t.lost > 0 || t.duplicated > 0 || t.corrupted > 0 || t.id_gaps > 0 || one_at_a_time {
        eprintln!(
            "FAIL: messages lost, duplicated or corrupted, msg ids not consecutive, or (window \
             1) out of order"
        );
        return ExitCode::from(1);
    }
    let failed_clients = (0..pairs).any(|p| {
        let l = sh.log(p);
        l.sender_error.is_some() || l.receiver_error.is_some()
    });
    if t.unacked > 0 {
        eprintln!(
            "note: msg_server drops without an ack the messages over MsgRateLimit a second \
             (default 20) or over MaxPendingDbRequests in flight (default 64) per connection; \
             see its log, and --rate / --window"
        );
    }
    if deadline_hit || stuck > 0 || failed_clients || t.unacked > 0 {
        eprintln!("FAIL: the run did not complete");
        return ExitCode::from(3);
    }
    println!("OK");
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("error")).init();
    match parse_args(std::env::args().skip(1).collect()) {
        Ok(Some(opts)) => match opts.hold {
            Some(hold) => hold::run(&opts, hold),
            None => run(opts),
        },
        Ok(None) => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}
