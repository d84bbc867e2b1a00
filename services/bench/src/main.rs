//! `tt-bench`: the scenarios of `scripts/bench.sh` that `tt-load` does not run.
//!
//! * `logins`: a login storm — workers each repeating a full login (HTTP discovery at
//!   login_server, TCP connect to the msg_server it hands out, login) and closing;
//! * `chat`: single chat as `tt-load --window 1` runs it (pairs, senders at a fixed rate, one
//!   message in flight, receivers acking), the logged-in clients driven by one mio loop;
//! * `group`: group fan-out — members of one group logged in, some of them sending group texts
//!   at a fixed rate, every member counting what it receives (exactly once, with latency);
//! * `rawinsert`: the limit — rows shaped like `IMMessage_N` rows inserted straight into
//!   MariaDB in transactions of a fixed number of rows, one connection per worker.
//!
//! Each prints one summary line starting with its name (scripts/bench.sh parses it) and exits 0,
//! or 1 when a check failed (a group message lost or duplicated), 2 on bad usage, 3 when the run
//! could not be done.

use std::collections::HashMap;
use std::process::ExitCode;
use std::time::Duration;

mod chat;
mod group;
mod logins;
mod rawinsert;

const USAGE: &str = "\
usage: tt-bench logins    --login-url URL [--workers 4] [--first-user 1101] [--users 1000]
                          [--duration 10] [--password 123456] [--client-type mobile|pc]
       tt-bench chat      --login-url URL [--first-user 9001] [--pairs 50] [--rate 19]
                          [--duration 10] [--drain 10] [--ack-timeout 10] [--size 0]
                          [--logins 8] [--password 123456] [--client-type mobile|pc]
       tt-bench group     --login-url URL --api URL [--first-user 1101] [--members 500]
                          [--senders 50] [--rate 1] [--window 8] [--duration 10] [--drain 10]
                          [--logins 200] [--password 123456]
       tt-bench rawinsert --mysql HOST:PORT [--db teamtalk] [--user teamtalk] [--pass 12345]
                          [--workers 8] [--batch 1] [--duration 10] [--size 64]

logins     full logins by --workers threads for --duration seconds; users cycle through
           user<first> .. user<first+users-1>; prints logins/s and the latency of a login.
chat       2 x --pairs users (user<first> ..) log in through login_server (--logins threads),
           then ONE thread drives them all (mio, non-blocking sockets): each sender sends its
           receiver an encrypted text --rate times a second, one unacked at a time, for
           --duration seconds; receivers ack what they get. Prints tt-load's report lines
           (acked msgs/s, ack and delivery latency, lost/duplicated/id-gaps); exit 1 if an
           acked message was not delivered exactly once or a pair's msg ids have a gap. The
           lighter generator of scripts/bench.sh's chat scenario (tt-load: a thread a client).
group      creates a normal group of --members users (user<first> ..) through http_msg_server
           (--api, POST /query/CreateGroup), logs every member in (mobile) through login_server,
           then the first --senders members send group texts, --rate a second each (at most
           --window unacked each), for --duration seconds; prints acked messages/s, deliveries/s
           and their latencies; fails (exit 1) if an acked message reached a member twice or
           not at all, or two acks carried the same msg id.
rawinsert  --workers connections each commit transactions of --batch rows (texts of --size
           characters) into IMMessage_0..7 for --duration seconds; the rows use relation ids from
           4000000000 up (no real relation has them) and are deleted at the end.";

/// `--name value` options, each given at most once.
pub(crate) struct Args {
    values: HashMap<String, String>,
}

impl Args {
    fn parse(args: &[String], known: &[&str]) -> Result<Args, String> {
        let mut values = HashMap::new();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let name = a
                .strip_prefix("--")
                .filter(|n| known.contains(n))
                .ok_or_else(|| format!("unknown argument: {a}"))?;
            let v = it.next().ok_or_else(|| format!("--{name} needs a value"))?;
            if values.insert(name.to_string(), v.clone()).is_some() {
                return Err(format!("--{name} given twice"));
            }
        }
        Ok(Args { values })
    }

    pub(crate) fn text(&self, name: &str, default: Option<&str>) -> Result<String, String> {
        match (self.values.get(name), default) {
            (Some(v), _) => Ok(v.clone()),
            (None, Some(d)) => Ok(d.to_string()),
            (None, None) => Err(format!("--{name} is required")),
        }
    }

    /// A number in `lo..=hi`.
    pub(crate) fn num<T>(&self, name: &str, default: T, lo: T, hi: T) -> Result<T, String>
    where
        T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
    {
        let v = match self.values.get(name) {
            Some(s) => s
                .parse()
                .map_err(|_| format!("--{name}: not a number: {s}"))?,
            None => default,
        };
        if v < lo || v > hi {
            return Err(format!("--{name}: {v} is outside {lo}..={hi}"));
        }
        Ok(v)
    }

    pub(crate) fn secs(&self, name: &str, default: f64) -> Result<Duration, String> {
        Ok(Duration::from_secs_f64(
            self.num(name, default, 0.1, 86_400.0)?,
        ))
    }
}

/// Latencies of one run, in microseconds.
#[derive(Default)]
pub(crate) struct Latencies(Vec<u64>);

impl Latencies {
    pub(crate) fn push(&mut self, d: Duration) {
        self.0
            .push(u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    }

    pub(crate) fn append(&mut self, other: &mut Latencies) {
        self.0.append(&mut other.0);
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// "p50 1.23ms p99 4.56ms max 7.89ms" (sorts the samples).
    pub(crate) fn summary(&mut self) -> String {
        self.0.sort_unstable();
        let at = |p: usize| -> f64 {
            if self.0.is_empty() {
                return 0.0;
            }
            self.0[(self.0.len() - 1) * p / 100] as f64 / 1000.0
        };
        format!(
            "p50 {:.2}ms p99 {:.2}ms max {:.2}ms",
            at(50),
            at(99),
            at(100)
        )
    }
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("error")).init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((cmd, rest)) = args.split_first() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let run = match cmd.as_str() {
        "logins" => Args::parse(rest, logins::OPTIONS).and_then(|a| logins::run(&a)),
        "chat" => Args::parse(rest, chat::OPTIONS).and_then(|a| chat::run(&a)),
        "group" => Args::parse(rest, group::OPTIONS).and_then(|a| group::run(&a)),
        "rawinsert" => Args::parse(rest, rawinsert::OPTIONS).and_then(|a| rawinsert::run(&a)),
        "-h" | "--help" => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        other => Err(format!("unknown scenario: {other}")),
    };
    match run {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}
