//! Single chat driven by one thread: the load of `tt-load --window 1` (pairs of mobile clients,
//! each sender a text a fixed number of times a second to its receiver, one in flight), but the
//! clients, once logged in (blocking, a few threads), are non-blocking sockets of one mio loop,
//! so the generator leaves the CPU to the stack under test. The report has tt-load's lines.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{TcpStream as StdStream, ToSocketAddrs};
use std::process::ExitCode;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use tt_client::tt_proto::ids::cid;
use tt_client::tt_proto::pb::login::{ImLoginReq, ImLoginRes};
use tt_client::tt_proto::pb::message::{ImMsgData, ImMsgDataAck};
use tt_client::tt_proto::pdu::DEFAULT_MAX_PDU_LEN;
use tt_client::tt_proto::{Decoder, Pdu};
use tt_client::{Client, MsgCipher, MsgType, SessionType, UserStatType, password_md5};

use crate::Args;
use crate::logins::client_type;

pub(crate) const OPTIONS: &[&str] = &[
    "login-url",
    "first-user",
    "pairs",
    "rate",
    "duration",
    "drain",
    "ack-timeout",
    "size",
    "logins",
    "password",
    "client-type",
];

/// Between heartbeats of every connection (msg_server drops a silent client after minutes).
const HEARTBEAT: Duration = Duration::from_secs(20);
/// Longest wait of one poll, so deadlines are looked at.
const TICK: Duration = Duration::from_millis(50);
/// Longest wait for a connect or a login reply.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// One logged-in client of the loop.
struct Conn {
    stream: TcpStream,
    dec: Decoder,
    /// Bytes not yet written (the socket was full).
    out: Vec<u8>,
    user: u32,
    closed: bool,
}

impl Conn {
    fn queue(&mut self, pdu: &Pdu) {
        pdu.encode_into(&mut self.out);
        self.flush();
    }

    fn flush(&mut self) {
        while !self.out.is_empty() && !self.closed {
            match self.stream.write(&self.out) {
                Ok(0) => self.closed = true,
                Ok(n) => {
                    self.out.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => self.closed = true,
            }
        }
    }

    /// Reads what the socket has; the whole PDUs received.
    fn receive(&mut self, buf: &mut [u8]) -> Vec<Pdu> {
        loop {
            match self.stream.read(buf) {
                Ok(0) => {
                    self.closed = true;
                    break;
                }
                Ok(n) => self.dec.push(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.closed = true;
                    break;
                }
            }
        }
        let mut pdus = Vec::new();
        loop {
            match self.dec.next_pdu() {
                Ok(Some(p)) => pdus.push(p),
                Ok(None) => break,
                Err(_) => {
                    self.closed = true;
                    break;
                }
            }
        }
        pdus
    }
}

/// What one pair did.
#[derive(Default)]
struct Pair {
    next_n: u64,
    seq: u16,
    /// (seq, n, sent_at) of the message awaiting its ack.
    inflight: Option<(u16, u64, Instant)>,
    /// (msg_id, n, sent_at, acked_at)
    acked: Vec<(u32, u64, Instant, Instant)>,
    unacked: u64,
    stray_acks: u64,
    /// (msg_id, text, at) as the receiver got them.
    delivered: Vec<(u32, Option<String>, Instant)>,
    foreign: u64,
}

fn text_of(tag: &str, pair: usize, n: u64, size: usize) -> String {
    let mut s = format!("tt-bench {tag} pair={pair} n={n} ");
    if s.len() < size {
        s.extend(std::iter::repeat_n('x', size - s.len()));
    }
    s
}

/// A login's outcome: the socket and the bytes read past the login reply.
type LoggedIn = Result<(StdStream, Decoder), String>;

/// Discovery at login_server, connect, login (blocking); the socket and the bytes read past the
/// login reply.
fn login(url: &str, user: u32, password: &str, kind: tt_client::ClientType) -> LoggedIn {
    let addr = Client::discover(url).map_err(|e| format!("discovery: {e}"))?;
    let mut last = String::from("no msg_server address");
    let mut stream = None;
    'found: for (host, port) in addr.candidates() {
        let addrs = (host.as_str(), port)
            .to_socket_addrs()
            .map_err(|e| format!("resolving {host}: {e}"))?;
        for a in addrs {
            match StdStream::connect_timeout(&a, IO_TIMEOUT) {
                Ok(s) => {
                    stream = Some(s);
                    break 'found;
                }
                Err(e) => last = format!("connect to {a}: {e}"),
            }
        }
    }
    let mut s = stream.ok_or(last)?;
    let io = |e: io::Error| format!("user{user} login: {e}");
    s.set_read_timeout(Some(IO_TIMEOUT)).map_err(io)?;
    s.set_nodelay(true).map_err(io)?;
    let req = ImLoginReq {
        user_name: format!("user{user}").into_bytes(),
        password: password_md5(password).into_bytes(),
        online_status: UserStatType::UserStatusOnline as i32,
        client_type: kind as i32,
        client_version: Some("tt-bench".into()),
    };
    s.write_all(&Pdu::command(1, &req).to_bytes()).map_err(io)?;
    let mut dec = Decoder::new(DEFAULT_MAX_PDU_LEN);
    let mut buf = [0u8; 4096];
    loop {
        while let Some(p) = dec.next_pdu().map_err(|e| format!("user{user}: {e:?}"))? {
            if p.header.command_id == cid::CID_LOGIN_RES_USERLOGIN {
                let res: ImLoginRes = p
                    .decode_body()
                    .map_err(|e| format!("user{user}: login result: {e}"))?;
                if res.result_code != 0 {
                    return Err(format!("user{user} login refused: {}", res.result_code));
                }
                return Ok((s, dec));
            }
        }
        let n = s.read(&mut buf).map_err(io)?;
        if n == 0 {
            return Err(format!("user{user}: closed before the login result"));
        }
        dec.push(&buf[..n]);
    }
}

pub(crate) fn run(a: &Args) -> Result<ExitCode, String> {
    let url = a.text("login-url", None)?;
    let first: u32 = a.num("first-user", 9001, 1, u32::MAX / 2)?;
    let pairs: usize = a.num("pairs", 50, 1, 100_000)?;
    let rate: f64 = a.num("rate", 19.0, 0.01, 10_000.0)?;
    let duration = a.secs("duration", 10.0)?;
    let drain = a.secs("drain", 10.0)?;
    let ack_timeout = a.secs("ack-timeout", 10.0)?;
    let size: usize = a.num("size", 0, 0, 60_000)?;
    let login_threads: usize = a.num("logins", 8, 1, 256)?;
    let password = a.text("password", Some("123456"))?;
    let kind = client_type(a)?;
    let tag = format!(
        "{:x}",
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis()
    );
    println!(
        "tt-bench chat: {pairs} pairs (users {first}..={}), {rate}/s each, window 1, {:.0}s",
        first + 2 * pairs as u32 - 1,
        duration.as_secs_f64()
    );

    // Logins: sender then receiver of each pair (login_server hands them out in turn).
    let next = AtomicUsize::new(0);
    let slots: Vec<Mutex<Option<LoggedIn>>> = (0..2 * pairs).map(|_| Mutex::new(None)).collect();
    thread::scope(|s| {
        for _ in 0..login_threads.min(2 * pairs) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= 2 * pairs {
                        break;
                    }
                    let r = login(&url, first + i as u32, &password, kind);
                    *slots[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
                }
            });
        }
    });
    let poll = Poll::new().map_err(|e| format!("poll: {e}"))?;
    let mut conns = Vec::with_capacity(2 * pairs);
    for (i, slot) in slots.into_iter().enumerate() {
        let r = slot.into_inner().unwrap_or_else(|p| p.into_inner());
        let (s, dec) = r.unwrap_or_else(|| Err("not logged in".into()))?;
        s.set_nonblocking(true)
            .map_err(|e| format!("nonblocking: {e}"))?;
        let mut stream = TcpStream::from_std(s);
        poll.registry()
            .register(
                &mut stream,
                Token(i),
                Interest::READABLE | Interest::WRITABLE,
            )
            .map_err(|e| format!("register: {e}"))?;
        conns.push(Conn {
            stream,
            dec,
            out: Vec::new(),
            user: first + i as u32,
            closed: false,
        });
    }
    println!("{} clients logged in", conns.len());

    let (mut pairs_log, stats) = drive(
        poll,
        &mut conns,
        &tag,
        rate,
        duration,
        drain,
        ack_timeout,
        size,
    )?;
    Ok(report(&mut pairs_log, &stats, &tag, size, first))
}

struct Stats {
    send_start: Instant,
    start: Instant,
    closed: usize,
}

/// The event loop: sends on schedule, takes acks and deliveries, until every acked message was
/// delivered (or `drain` after the senders stopped).
#[allow(clippy::too_many_arguments)]
fn drive(
    mut poll: Poll,
    conns: &mut [Conn],
    tag: &str,
    rate: f64,
    duration: Duration,
    drain: Duration,
    ack_timeout: Duration,
    size: usize,
) -> Result<(Vec<Pair>, Stats), String> {
    let n_pairs = conns.len() / 2;
    let mut pairs: Vec<Pair> = (0..n_pairs).map(|_| Pair::default()).collect();
    let cipher = MsgCipher::default();
    let start = Instant::now();
    let stop_sending = start + duration;
    let send_at = |p: usize, n: u64| -> Instant {
        start + Duration::from_secs_f64((n as f64 + p as f64 / n_pairs as f64) / rate)
    };
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 64 * 1024];
    let mut next_beat = start + HEARTBEAT;
    let (mut acked, mut delivered) = (0u64, 0u64);
    let mut drain_until: Option<Instant> = None;
    loop {
        let now = Instant::now();
        // Sends due, overdue acks given up.
        let mut next_due = now + TICK;
        for (p, pair) in pairs.iter_mut().enumerate() {
            if let Some((_, _, at)) = pair.inflight
                && now.duration_since(at) >= ack_timeout
            {
                pair.inflight = None;
                pair.unacked += 1;
            }
            if pair.inflight.is_some() || now >= stop_sending {
                continue;
            }
            let due = send_at(p, pair.next_n);
            if due > now {
                next_due = next_due.min(due);
                continue;
            }
            let text = text_of(tag, p, pair.next_n, size);
            let data = cipher
                .encrypt(text.as_bytes())
                .map_err(|e| format!("encrypting: {e}"))?;
            let sender = &mut conns[2 * p];
            let msg = ImMsgData {
                from_user_id: sender.user,
                to_session_id: sender.user + 1,
                msg_id: 0,
                create_time: SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs() as u32),
                msg_type: MsgType::SingleText as i32,
                msg_data: data,
                attach_data: None,
            };
            pair.seq = pair.seq.wrapping_add(1).max(1);
            sender.queue(&Pdu::command(pair.seq, &msg));
            pair.inflight = Some((pair.seq, pair.next_n, Instant::now()));
            pair.next_n += 1;
        }
        if now >= next_beat {
            for c in conns.iter_mut() {
                c.queue(&Pdu::heartbeat());
            }
            next_beat = now + HEARTBEAT;
        }
        if now >= stop_sending && pairs.iter().all(|p| p.inflight.is_none()) {
            let until = *drain_until.get_or_insert(now + drain);
            if delivered >= acked || now >= until {
                break;
            }
        }
        if conns.iter().all(|c| c.closed) {
            break;
        }
        let wait = next_due.saturating_duration_since(Instant::now());
        match poll.poll(&mut events, Some(wait)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("poll: {e}")),
        }
        for ev in events.iter() {
            let i = ev.token().0;
            let c = &mut conns[i];
            if ev.is_writable() {
                c.flush();
            }
            if !ev.is_readable() {
                continue;
            }
            let at = Instant::now();
            let pair = &mut pairs[i / 2];
            for pdu in c.receive(&mut buf) {
                match (i % 2, pdu.header.command_id) {
                    (0, cid::CID_MSG_DATA_ACK) => {
                        let ack: ImMsgDataAck = pdu
                            .decode_body()
                            .map_err(|e| format!("undecodable message ack: {e}"))?;
                        match pair.inflight {
                            Some((seq, n, sent)) if seq == pdu.header.seq_num => {
                                pair.inflight = None;
                                if ack.session_id == c.user + 1 {
                                    pair.acked.push((ack.msg_id, n, sent, at));
                                    acked += 1;
                                } else {
                                    pair.unacked += 1;
                                }
                            }
                            _ => pair.stray_acks += 1,
                        }
                    }
                    (1, cid::CID_MSG_DATA) => {
                        let m: ImMsgData = pdu
                            .decode_body()
                            .map_err(|e| format!("undecodable message: {e}"))?;
                        let reply = ImMsgDataAck {
                            user_id: c.user,
                            session_id: m.from_user_id,
                            msg_id: m.msg_id,
                            session_type: SessionType::Single as i32,
                        };
                        c.queue(&Pdu::command(0, &reply));
                        if m.from_user_id != c.user - 1 {
                            pair.foreign += 1;
                            continue;
                        }
                        let text = cipher
                            .decrypt(&m.msg_data)
                            .ok()
                            .and_then(|t| String::from_utf8(t).ok());
                        if !pair.delivered.iter().any(|d| d.0 == m.msg_id) {
                            delivered += 1;
                        }
                        pair.delivered.push((m.msg_id, text, at));
                    }
                    _ => {}
                }
            }
        }
    }
    // A short grace for duplicates right after the last delivery.
    let grace = Instant::now() + Duration::from_millis(300);
    while let Some(wait) = grace.checked_duration_since(Instant::now()) {
        if wait.is_zero() {
            break;
        }
        poll.poll(&mut events, Some(wait))
            .map_err(|e| format!("poll: {e}"))?;
        for ev in events.iter() {
            let i = ev.token().0;
            if i % 2 == 1 {
                let at = Instant::now();
                for pdu in conns[i].receive(&mut buf) {
                    if pdu.header.command_id == cid::CID_MSG_DATA
                        && let Ok(m) = pdu.decode_body::<ImMsgData>()
                    {
                        let text = cipher
                            .decrypt(&m.msg_data)
                            .ok()
                            .and_then(|t| String::from_utf8(t).ok());
                        pairs[i / 2].delivered.push((m.msg_id, text, at));
                    }
                }
            }
        }
    }
    for p in pairs.iter_mut() {
        p.unacked += u64::from(p.inflight.take().is_some());
    }
    let closed = conns.iter().filter(|c| c.closed).count();
    Ok((
        pairs,
        Stats {
            send_start: start,
            start,
            closed,
        },
    ))
}

fn ms(d: Duration) -> String {
    format!("{:.2}ms", d.as_secs_f64() * 1000.0)
}

fn pct(v: &[Duration], p: usize) -> Duration {
    if v.is_empty() {
        Duration::ZERO
    } else {
        v[(v.len() - 1) * p / 100]
    }
}

/// Checks every pair and prints tt-load's report lines; the exit status.
fn report(pairs: &mut [Pair], st: &Stats, tag: &str, size: usize, first: u32) -> ExitCode {
    let (mut acked, mut unacked, mut stray, mut foreign) = (0u64, 0u64, 0u64, 0u64);
    let (mut delivered, mut lost, mut dup, mut order, mut bad, mut gaps) = (0u64, 0, 0, 0, 0, 0);
    let (mut gaps_unacked, mut unacked_delivered) = (0u64, 0u64);
    let (mut ack_lat, mut del_lat) = (Vec::new(), Vec::new());
    let mut last_ack = st.send_start;
    let mut errors = Vec::new();
    for (p, pair) in pairs.iter_mut().enumerate() {
        acked += pair.acked.len() as u64;
        unacked += pair.unacked;
        stray += pair.stray_acks;
        foreign += pair.foreign;
        let mut sent: HashMap<u32, (u64, Instant)> = HashMap::new();
        for w in pair.acked.windows(2) {
            // One in flight: the ids follow the acks, one by one.
            if w[1].0 != w[0].0.wrapping_add(1) {
                if pair.unacked == 0 {
                    gaps += 1;
                    if errors.len() < 10 {
                        errors.push(format!(
                            "pair {p} (user{}): acked msg ids jump from {} to {}",
                            first + 2 * p as u32,
                            w[0].0,
                            w[1].0
                        ));
                    }
                } else {
                    gaps_unacked += 1;
                }
            }
        }
        for &(id, n, sent_at, acked_at) in &pair.acked {
            ack_lat.push(acked_at - sent_at);
            last_ack = last_ack.max(acked_at);
            if sent.insert(id, (n, sent_at)).is_some() {
                gaps += 1;
                errors.push(format!("pair {p}: msg_id {id} acked twice"));
            }
        }
        let mut seen: HashMap<u32, u32> = HashMap::new();
        let mut max_id = None;
        for (id, text, at) in &pair.delivered {
            let c = seen.entry(*id).or_insert(0);
            *c += 1;
            if *c > 1 {
                dup += 1;
                continue;
            }
            if max_id.is_some_and(|m| *id < m) {
                order += 1;
            }
            max_id = max_id.max(Some(*id));
            match sent.get(id) {
                Some(&(n, sent_at)) => {
                    delivered += 1;
                    del_lat.push(*at - sent_at);
                    if text.as_deref() != Some(text_of(tag, p, n, size).as_str()) {
                        bad += 1;
                    }
                }
                None => unacked_delivered += 1,
            }
        }
        for id in sent.keys().filter(|id| !seen.contains_key(id)) {
            lost += 1;
            if errors.len() < 10 {
                errors.push(format!("pair {p}: msg_id {id} acked, never delivered"));
            }
        }
    }
    ack_lat.sort_unstable();
    del_lat.sort_unstable();
    let secs = (last_ack - st.send_start).as_secs_f64();
    let per_sec = if secs > 0.0 { acked as f64 / secs } else { 0.0 };
    println!(
        "acked {acked} msgs in {secs:.2}s: {per_sec:.0} msgs/s ({unacked} unacked, {stray} stray acks)"
    );
    for (name, v) in [("ack", &ack_lat), ("delivery", &del_lat)] {
        println!(
            "{name} latency: p50 {} p99 {} max {}",
            ms(pct(v, 50)),
            ms(pct(v, 99)),
            ms(v.last().copied().unwrap_or_default())
        );
    }
    println!(
        "delivered {delivered} lost {lost} duplicated {dup} out-of-order {order} corrupted {bad} \
         id-gaps {gaps} (+{gaps_unacked} after unacked) unacked-but-delivered {unacked_delivered} \
         foreign {foreign}"
    );
    println!("total run time {:.2}s", st.start.elapsed().as_secs_f64());
    for e in &errors {
        eprintln!("error: {e}");
    }
    if lost > 0 || dup > 0 || bad > 0 || gaps > 0 || order > 0 {
        eprintln!(
            "FAIL: messages lost, duplicated, corrupted, out of order or msg ids not consecutive"
        );
        return ExitCode::from(1);
    }
    if unacked > 0 || st.closed > 0 || acked == 0 {
        eprintln!(
            "FAIL: the run did not complete ({unacked} unacked, {} connections closed)",
            st.closed
        );
        return ExitCode::from(3);
    }
    println!("OK");
    ExitCode::SUCCESS
}
