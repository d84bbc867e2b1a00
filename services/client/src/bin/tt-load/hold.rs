//! `--hold`: many idle logged-in connections, and what they cost the msg_server.
//!
//! `--logins` worker threads log the users in, each on its own socket (spread over the
//! `--bind` source addresses), and hand the sockets over: a held connection is a socket and
//! nothing else, no thread and no client state. One thread then keeps them alive (a heartbeat
//! each every [`HEARTBEAT_EVERY`], what the server sends read and discarded every
//! [`SWEEP_EVERY`]) until the hold time is over. With `--rss-pid` the msg_server's VmRSS is
//! read before the first connection and at the end of the hold, and their difference divided
//! by the connections held is reported.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::process::ExitCode;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use tt_client::tt_proto::Pdu;

use crate::dial;
use crate::options::{Options, Target};

/// Well within msg_server's idle timeouts (120 s PC, 300 s mobile).
const HEARTBEAT_EVERY: Duration = Duration::from_secs(60);
/// How often every held socket is read (echoed heartbeats, notifications) and checked.
const SWEEP_EVERY: Duration = Duration::from_secs(5);
/// Stack of a login worker.
const STACK_SIZE: usize = 256 * 1024;
/// Login errors printed in full (the rest are counted).
const ERRORS_SHOWN: usize = 5;

/// What the login workers produce.
struct Logins {
    next: AtomicU32,
    held: Mutex<Vec<TcpStream>>,
    errors: Mutex<(u32, Vec<String>)>,
}

/// `VmRSS` of process `pid` in kB.
fn vm_rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Connection number `n`: user `first_user + n` logged in, its socket returned non-blocking.
fn log_in(opts: &Options, n: u32) -> Result<TcpStream, String> {
    let user = opts.first_user + n;
    let stream = dial::stream(opts, n as usize, n as usize)?;
    // The client library reads and writes through its own handle; the socket stays open
    // through this one when that is dropped.
    let kept = stream.try_clone().map_err(|e| format!("user{user}: {e}"))?;
    drop(dial::login(opts, stream, user, false)?);
    kept.set_nonblocking(true)
        .map_err(|e| format!("user{user}: {e}"))?;
    Ok(kept)
}

fn worker(opts: &Options, logins: &Logins) {
    loop {
        let n = logins.next.fetch_add(1, Ordering::Relaxed);
        if n >= opts.users {
            return;
        }
        match log_in(opts, n) {
            Ok(s) => logins
                .held
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(s),
            Err(e) => {
                let mut errors = logins.errors.lock().unwrap_or_else(|p| p.into_inner());
                errors.0 += 1;
                if errors.1.len() < ERRORS_SHOWN {
                    errors.1.push(e);
                }
            }
        }
    }
}

/// Reads whatever `s` has (discarded); false once the server closed it or it failed.
fn drain(s: &mut TcpStream, scratch: &mut [u8]) -> bool {
    loop {
        match s.read(scratch) {
            Ok(0) => return false,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
}

/// Keeps `held` open until `until`; returns how many the server closed meanwhile.
fn keep(held: &mut Vec<TcpStream>, until: Instant) -> usize {
    let heartbeat = Pdu::heartbeat().to_bytes();
    let mut scratch = vec![0u8; 64 * 1024];
    let mut closed = 0;
    let mut last_beat = Instant::now();
    loop {
        let now = Instant::now();
        if now >= until {
            return closed;
        }
        thread::sleep(SWEEP_EVERY.min(until - now));
        let beat = last_beat.elapsed() >= HEARTBEAT_EVERY;
        if beat {
            last_beat = Instant::now();
        }
        let before = held.len();
        held.retain_mut(|s| {
            // A 16-byte heartbeat always fits an idle socket's send buffer.
            (!beat || s.write_all(&heartbeat).is_ok()) && drain(s, &mut scratch)
        });
        closed += before - held.len();
    }
}

pub(crate) fn run(opts: &Options, hold: Duration) -> ExitCode {
    let target = match &opts.target {
        Target::MsgServers(l) => format!("msg_servers {}", l.join(",")),
        Target::LoginUrl(u) => format!("login_server {u}"),
    };
    let sources = if opts.bind.is_empty() {
        "any source address".to_string()
    } else {
        format!("{} source addresses", opts.bind.len())
    };
    println!(
        "tt-load: holding {} connections (users {}..={}) for {:.0}s, {} logging in at once, \
         {sources}, {target}",
        opts.users,
        opts.first_user,
        opts.first_user + opts.users - 1,
        hold.as_secs_f64(),
        opts.logins.min(opts.users as usize)
    );
    let rss_before = opts.rss_pid.and_then(vm_rss_kb);
    let logins = Logins {
        next: AtomicU32::new(0),
        held: Mutex::new(Vec::with_capacity(opts.users as usize)),
        errors: Mutex::new((0, Vec::new())),
    };
    let start = Instant::now();
    thread::scope(|scope| {
        for i in 0..opts.logins.min(opts.users as usize) {
            let (opts, logins) = (&opts, &logins);
            thread::Builder::new()
                .name(format!("login{i}"))
                .stack_size(STACK_SIZE)
                .spawn_scoped(scope, move || worker(opts, logins))
                .expect("spawn a login worker");
        }
    });
    let login_time = start.elapsed();
    let mut held = logins.held.into_inner().unwrap_or_else(|p| p.into_inner());
    let (failed, shown) = logins
        .errors
        .into_inner()
        .unwrap_or_else(|p| p.into_inner());
    for e in &shown {
        eprintln!("tt-load: {e}");
    }
    let ok = held.len();
    println!(
        "logged in: {ok} of {} in {:.2}s ({:.0}/s), {failed} failed",
        opts.users,
        login_time.as_secs_f64(),
        ok as f64 / login_time.as_secs_f64().max(1e-9)
    );
    let rss_logged_in = opts.rss_pid.and_then(vm_rss_kb);
    let closed = keep(&mut held, Instant::now() + hold);
    let rss_end = opts.rss_pid.and_then(vm_rss_kb);
    println!(
        "held: {} open at the end, {closed} closed by the server",
        held.len()
    );
    if let (Some(pid), Some(before)) = (opts.rss_pid, rss_before) {
        let show = |v: Option<u64>| v.map_or("?".to_string(), |kb| format!("{kb} kB"));
        println!(
            "msg_server {pid} VmRSS: {before} kB before, {} after the logins, {} at the end",
            show(rss_logged_in),
            show(rss_end)
        );
        if let Some(end) = rss_end
            && ok > 0
        {
            let per = (end as f64 - before as f64) * 1024.0 / ok as f64;
            println!(
                "RSS per held connection: {per:.0} bytes ({:.2} kB)",
                per / 1024.0
            );
        }
    }
    drop(held);
    if failed == 0 && closed == 0 {
        println!("OK");
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    }
}
