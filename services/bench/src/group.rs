//! Group fan-out: one group, every member logged in, a few of them sending; each member counts
//! what it receives. Every acked message must reach every other member exactly once.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tt_client::tt_proto::ids::cid;
use tt_client::tt_proto::pb::message::ImMsgDataAck;
use tt_client::{Client, ClientType, Event, MsgCipher, MsgType};

use crate::logins::full_login;
use crate::{Args, Latencies};

pub(crate) const OPTIONS: &[&str] = &[
    "login-url",
    "api",
    "first-user",
    "members",
    "senders",
    "rate",
    "window",
    "duration",
    "drain",
    "logins",
    "password",
];

const STACK_SIZE: usize = 256 * 1024;
/// The longest one wait for an event blocks (the stop flags are checked between waits).
const POLL: Duration = Duration::from_millis(100);
const ACK_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_HTTP_REPLY: usize = 64 * 1024;

/// Creates a normal group of `members` through http_msg_server's `/query/CreateGroup`; returns
/// its id.
fn create_group(api: &str, name: &str, members: &[u32]) -> Result<u32, String> {
    let authority = api
        .strip_prefix("http://")
        .ok_or_else(|| format!("--api: not an http:// URL: {api}"))?
        .trim_end_matches('/');
    let body = serde_json::json!({
        "req_user_id": 0,
        "group_name": name,
        "group_type": 1,
        "group_avatar": "",
        "user_id_list": members,
    })
    .to_string();
    let mut s = TcpStream::connect(authority).map_err(|e| format!("connect to {api}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    write!(
        s,
        "POST /query/CreateGroup HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .map_err(|e| format!("request to {api}: {e}"))?;
    let mut reply = Vec::new();
    s.take(MAX_HTTP_REPLY as u64)
        .read_to_end(&mut reply)
        .map_err(|e| format!("reply of {api}: {e}"))?;
    let text = String::from_utf8_lossy(&reply);
    let json = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .ok_or_else(|| format!("reply of {api} is not HTTP: {text:?}"))?;
    let v: serde_json::Value = serde_json::from_str(json.trim())
        .map_err(|e| format!("CreateGroup answered {json:?}: {e}"))?;
    match (v["error_code"].as_u64(), v["group_id"].as_u64()) {
        (Some(0), Some(id)) if id > 0 => u32::try_from(id).map_err(|e| e.to_string()),
        _ => Err(format!("CreateGroup answered {v}")),
    }
}

struct Shared {
    group: u32,
    tag: String,
    senders: usize,
    rate: f64,
    window: usize,
    duration: Duration,
    stop_sending: AtomicBool,
    stop: AtomicBool,
    acked: AtomicU64,
    delivered: AtomicU64,
}

/// What one member saw.
#[derive(Default)]
struct MemberLog {
    error: Option<String>,
    /// (n, msg id) of this member's acked messages.
    acked: Vec<(u64, u32)>,
    unacked: u64,
    ack_lat: Latencies,
    /// (sender index, n) of every distinct group message of this run received.
    seen: HashSet<(usize, u64)>,
    duplicates: u64,
    del_lat: Latencies,
    last_delivery: Option<Instant>,
}

fn text_of(tag: &str, sender: usize, n: u64, micros: u128) -> String {
    format!("tt-bench {tag} s={sender} n={n} t={micros}")
}

/// (sender, n, micros) of a text of this run.
fn parse_text(prefix: &str, text: &str) -> Option<(usize, u64, u64)> {
    let mut f = text.strip_prefix(prefix)?.split(' ');
    let mut field = |k: &str| f.next()?.strip_prefix(k).map(str::to_string);
    let s = field("s=")?.parse().ok()?;
    let n = field("n=")?.parse().ok()?;
    let t = field("t=")?.parse().ok()?;
    Some((s, n, t))
}

/// Logs every member in (mobile), `logins` at a time; the clients in the order of `ids`.
fn log_in_all(
    login_url: &str,
    password: &str,
    ids: &[u32],
    logins: usize,
) -> Result<Vec<Client>, Vec<String>> {
    let next = AtomicUsize::new(0);
    let done: Mutex<Vec<Option<Result<Client, String>>>> =
        Mutex::new((0..ids.len()).map(|_| None).collect());
    thread::scope(|scope| {
        for _ in 0..logins.min(ids.len()) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&user) = ids.get(i) else { break };
                    let r = full_login(login_url, user, password, ClientType::Android);
                    done.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(r);
                }
            });
        }
    });
    let mut clients = Vec::with_capacity(ids.len());
    let mut errors = Vec::new();
    for r in done.into_inner().unwrap_or_else(|p| p.into_inner()) {
        match r {
            Some(Ok(c)) => clients.push(c),
            Some(Err(e)) => errors.push(e),
            None => errors.push("a login worker died".into()),
        }
    }
    if errors.is_empty() {
        Ok(clients)
    } else {
        Err(errors)
    }
}

fn serve(
    sh: &Shared,
    idx: usize,
    c: &mut Client,
    start: Instant,
    log: &mut MemberLog,
) -> Result<(), String> {
    let cipher = MsgCipher::default();
    let prefix = format!("tt-bench {} ", sh.tag);
    let sender = idx < sh.senders;
    let phase = idx as f64 / sh.senders.max(1) as f64;
    let send_at = |n: u64| start + Duration::from_secs_f64((n as f64 + phase) / sh.rate);
    let mut next_n = 0u64;
    // seq -> (n, sent at)
    let mut inflight: Vec<(u16, u64, Instant)> = Vec::new();
    while !sh.stop.load(Ordering::Relaxed) {
        let sending = sender && !sh.stop_sending.load(Ordering::Relaxed);
        while sending && inflight.len() < sh.window && Instant::now() >= send_at(next_n) {
            let now = Instant::now();
            let text = text_of(&sh.tag, idx, next_n, now.duration_since(start).as_micros());
            let data = cipher
                .encrypt(text.as_bytes())
                .map_err(|e| format!("encrypting: {e}"))?;
            let seq = c
                .send_msg_nowait(sh.group, MsgType::GroupText, data)
                .map_err(|e| format!("send: {e}"))?;
            inflight.push((seq, next_n, now));
            next_n += 1;
        }
        let now = Instant::now();
        let before = inflight.len();
        inflight.retain(|(_, _, at)| now.duration_since(*at) < ACK_TIMEOUT);
        log.unacked += (before - inflight.len()) as u64;
        let wait = if sending && inflight.len() < sh.window {
            send_at(next_n).saturating_duration_since(now).min(POLL)
        } else {
            POLL
        };
        match c.next_event(wait).map_err(|e| format!("receiving: {e}"))? {
            Some(Event::Message(m)) if m.to == sh.group => {
                let at = Instant::now();
                let Some((s, n, t)) = m.text.as_deref().and_then(|t| parse_text(&prefix, t)) else {
                    continue;
                };
                if log.seen.insert((s, n)) {
                    sh.delivered.fetch_add(1, Ordering::Relaxed);
                    log.del_lat
                        .push(at.saturating_duration_since(start + Duration::from_micros(t)));
                    log.last_delivery = Some(at);
                } else {
                    log.duplicates += 1;
                }
            }
            Some(Event::Other(pdu)) if pdu.header.command_id == cid::CID_MSG_DATA_ACK => {
                let at = Instant::now();
                let ack: ImMsgDataAck = pdu
                    .decode_body()
                    .map_err(|e| format!("undecodable ack: {e}"))?;
                if let Some(i) = inflight
                    .iter()
                    .position(|(seq, _, _)| *seq == pdu.header.seq_num)
                {
                    let (_, n, sent) = inflight.swap_remove(i);
                    log.acked.push((n, ack.msg_id));
                    log.ack_lat.push(at.duration_since(sent));
                    sh.acked.fetch_add(1, Ordering::Relaxed);
                }
            }
            Some(Event::Closed) => return Err("connection closed by the server".into()),
            _ => {}
        }
    }
    log.unacked += inflight.len() as u64;
    Ok(())
}

pub(crate) fn run(a: &Args) -> Result<ExitCode, String> {
    let login_url = a.text("login-url", None)?;
    let api = a.text("api", None)?;
    let first: u32 = a.num("first-user", 1101, 1, u32::MAX / 2)?;
    let members: usize = a.num("members", 500, 2, 1000)?;
    let senders: usize = a.num("senders", 50, 1, members)?;
    let rate: f64 = a.num("rate", 1.0, 0.001, 1000.0)?;
    let window: usize = a.num("window", 8, 1, 1000)?;
    let duration = a.secs("duration", 10.0)?;
    let drain = a.secs("drain", 10.0)?;
    let logins: usize = a.num("logins", 200, 1, 10_000)?;
    let password = a.text("password", Some("123456"))?;

    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let tag = format!(
        "g{}.{}",
        std::process::id(),
        now.as_millis() % 1_000_000_000
    );
    let ids: Vec<u32> = (0..members as u32).map(|i| first + i).collect();
    let group = create_group(&api, &format!("bench {tag}"), &ids)?;
    eprintln!("tt-bench: group {group} of {members} members (users {first}..), {senders} senders");

    let login_start = Instant::now();
    let clients = match log_in_all(&login_url, &password, &ids, logins) {
        Ok(c) => c,
        Err(errors) => {
            for e in errors.iter().take(5) {
                eprintln!("error: {e}");
            }
            eprintln!(
                "error: {} of {members} members could not log in; nothing was sent",
                errors.len()
            );
            return Ok(ExitCode::from(3));
        }
    };
    let start = Instant::now();
    let login_secs = start.duration_since(login_start).as_secs_f64();
    eprintln!("tt-bench: {members} members logged in in {login_secs:.2}s");
    let sh = Arc::new(Shared {
        group,
        tag,
        senders,
        rate,
        window,
        duration,
        stop_sending: AtomicBool::new(false),
        stop: AtomicBool::new(false),
        acked: AtomicU64::new(0),
        delivered: AtomicU64::new(0),
    });
    let mut handles = Vec::with_capacity(members);
    for (idx, mut c) in clients.into_iter().enumerate() {
        let sh = sh.clone();
        let h = thread::Builder::new()
            .stack_size(STACK_SIZE)
            .spawn(move || {
                let mut log = MemberLog::default();
                c.set_max_queued_events(100_000);
                if let Err(e) = serve(&sh, idx, &mut c, start, &mut log) {
                    log.error = Some(e);
                }
                log
            })
            .map_err(|e| format!("cannot start a thread: {e}"))?;
        handles.push(h);
    }
    thread::sleep(sh.duration);
    sh.stop_sending.store(true, Ordering::SeqCst);
    // The deliveries drain: every member gets every acked message but its own.
    let until = Instant::now() + drain;
    let others = (members - 1) as u64;
    while Instant::now() < until
        && sh.delivered.load(Ordering::SeqCst) < sh.acked.load(Ordering::SeqCst) * others
    {
        thread::sleep(Duration::from_millis(20));
    }
    // A short look for duplicates arriving right after the last delivery.
    thread::sleep(Duration::from_millis(300));
    sh.stop.store(true, Ordering::SeqCst);
    let mut logs: Vec<MemberLog> = handles
        .into_iter()
        .map(|h| h.join().unwrap_or_default())
        .collect();
    report(&sh, start, &mut logs)
}

fn report(sh: &Shared, start: Instant, logs: &mut [MemberLog]) -> Result<ExitCode, String> {
    let errors: Vec<String> = logs.iter().filter_map(|l| l.error.clone()).collect();
    // acked[s]: the n of sender s's acked messages.
    let acked: Vec<HashSet<u64>> = logs[..sh.senders]
        .iter()
        .map(|l| l.acked.iter().map(|(n, _)| *n).collect())
        .collect();
    let total_acked: u64 = acked.iter().map(|s| s.len() as u64).sum();
    let mut ids: Vec<u32> = logs
        .iter()
        .flat_map(|l| l.acked.iter().map(|a| a.1))
        .collect();
    ids.sort_unstable();
    let id_dups = ids.windows(2).filter(|w| w[0] == w[1]).count();
    let mut found = 0u64;
    let mut duplicated = 0u64;
    let mut del_lat = Latencies::default();
    let mut ack_lat = Latencies::default();
    let mut last = start;
    let mut unacked = 0;
    for (idx, l) in logs.iter().enumerate() {
        found += l
            .seen
            .iter()
            .filter(|(s, n)| *s != idx && acked.get(*s).is_some_and(|a| a.contains(n)))
            .count() as u64;
        duplicated += l.duplicates;
        unacked += l.unacked;
        last = last.max(l.last_delivery.unwrap_or(start));
    }
    for l in logs.iter_mut() {
        del_lat.append(&mut l.del_lat);
        ack_lat.append(&mut l.ack_lat);
    }
    let expected = total_acked * (logs.len() as u64 - 1);
    let lost = expected.saturating_sub(found);
    let send_secs = sh.duration.as_secs_f64();
    let deliver_secs = last.duration_since(start).as_secs_f64().max(send_secs);
    println!(
        "group acked {total_acked} msgs in {send_secs:.2}s: {:.1} msgs/s ack {} unacked {unacked}",
        total_acked as f64 / send_secs,
        ack_lat.summary()
    );
    println!(
        "group delivered {} in {deliver_secs:.2}s: {:.0} deliveries/s delivery {} lost {lost} \
         duplicated {duplicated} duplicate-ids {id_dups} members {} senders {} errors {}",
        del_lat.len(),
        del_lat.len() as f64 / deliver_secs,
        del_lat.summary(),
        logs.len(),
        sh.senders,
        errors.len()
    );
    for e in errors.iter().take(5) {
        eprintln!("error: {e}");
    }
    if lost > 0 || duplicated > 0 || id_dups > 0 {
        eprintln!("FAIL: acked group messages lost or duplicated, or a msg id acked twice");
        return Ok(ExitCode::from(1));
    }
    Ok(if total_acked == 0 || !errors.is_empty() {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_parse_back() {
        let t = text_of("g1.2", 7, 42, 123_456);
        assert_eq!(parse_text("tt-bench g1.2 ", &t), Some((7, 42, 123_456)));
        assert_eq!(parse_text("tt-bench g9.9 ", &t), None);
        assert_eq!(
            parse_text("tt-bench g1.2 ", "tt-bench g1.2 s=1 n=x t=3"),
            None
        );
    }
}
