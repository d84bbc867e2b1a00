//! The login storm: each worker repeats a full login (discovery, connect, login) and closes.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::Instant;

use tt_client::{Client, ClientType, UserStatType};

use crate::{Args, Latencies};

pub(crate) const OPTIONS: &[&str] = &[
    "login-url",
    "workers",
    "first-user",
    "users",
    "duration",
    "password",
    "client-type",
];

pub(crate) fn client_type(a: &Args) -> Result<ClientType, String> {
    match a.text("client-type", Some("mobile"))?.as_str() {
        "mobile" => Ok(ClientType::Android),
        "pc" => Ok(ClientType::Windows),
        other => Err(format!("--client-type: mobile or pc, not {other}")),
    }
}

/// Discovery at `login_url`, connect, login as `user<id>`.
pub(crate) fn full_login(
    login_url: &str,
    id: u32,
    password: &str,
    kind: ClientType,
) -> Result<Client, String> {
    let addr = Client::discover(login_url).map_err(|e| format!("discovery: {e}"))?;
    let mut c = Client::connect(&addr).map_err(|e| format!("connect to {addr:?}: {e}"))?;
    c.login(
        &format!("user{id}"),
        password,
        kind,
        UserStatType::UserStatusOnline,
    )
    .map_err(|e| format!("user{id} login: {e}"))?;
    Ok(c)
}

pub(crate) fn run(a: &Args) -> Result<ExitCode, String> {
    let url = a.text("login-url", None)?;
    let workers: u32 = a.num("workers", 4, 1, 256)?;
    let first: u32 = a.num("first-user", 1101, 1, u32::MAX / 2)?;
    let users: u32 = a.num("users", 1000, 1, 1_000_000)?;
    let duration = a.secs("duration", 10.0)?;
    let password = a.text("password", Some("123456"))?;
    let kind = client_type(a)?;

    let next = Arc::new(AtomicU32::new(0));
    let start = Instant::now();
    let handles: Vec<_> = (0..workers)
        .map(|_| {
            let (url, password, next) = (url.clone(), password.clone(), next.clone());
            thread::spawn(move || {
                let mut lat = Latencies::default();
                let mut errors: Vec<String> = Vec::new();
                while start.elapsed() < duration {
                    let id = first + next.fetch_add(1, Ordering::Relaxed) % users;
                    let t0 = Instant::now();
                    match full_login(&url, id, &password, kind) {
                        Ok(mut c) => {
                            lat.push(t0.elapsed());
                            c.close();
                        }
                        Err(e) => errors.push(e),
                    }
                }
                (lat, errors)
            })
        })
        .collect();
    let mut lat = Latencies::default();
    let mut errors = Vec::new();
    for h in handles {
        let (mut l, mut e) = h.join().map_err(|_| "a worker panicked".to_string())?;
        lat.append(&mut l);
        errors.append(&mut e);
    }
    let secs = start.elapsed().as_secs_f64();
    let done = lat.len();
    println!(
        "logins {done} in {secs:.2}s: {:.0}/s {} errors {} workers {workers}",
        done as f64 / secs,
        lat.summary(),
        errors.len()
    );
    for e in errors.iter().take(5) {
        eprintln!("error: {e}");
    }
    Ok(if done == 0 {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}
