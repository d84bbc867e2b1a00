//! tt-load's command line: the usage text and the options it parses into.

use std::net::IpAddr;
use std::time::Duration;

use tt_client::ClientType;

pub(crate) const USAGE: &str = "\
usage: tt-load (--msg-server H:P[,H:P...] | --login-url URL) [OPTIONS]
       tt-load (--msg-server H:P[,H:P...] | --login-url URL) --hold SECS [OPTIONS]

Pairs of users (sender user<first+2i>, receiver user<first+2i+1>) log in, receivers on
another msg_server than their sender when several are given; each sender sends text
messages to its receiver; every acked message must be delivered exactly once.

options:
  --msg-server LIST    msg_servers to connect to, comma-separated H:P (pairs are spread
                       over them; a receiver goes to the server after its sender's)
  --login-url URL      or: find a msg_server for each client through login_server
  --users N            number of users, even (default 40: 20 pairs)
  --first-user ID      first user id (default 301: users 301..=340; seeded users 301..=900
                       are kept for tt-load, the tests use lower ids)
  --password P         password of every user (default 123456)
  --messages M         messages per sender (default 100)
  --duration SECS      instead of --messages: send for this long
  --window W           messages in flight per sender (default 1; at most 1000; msg_server
                       drops a message beyond MaxPendingDbRequests, default 64)
  --rate R             messages a second per sender (default 18; 0: as fast as the window
                       allows). msg_server drops, without an ack, what a connection sends
                       beyond MsgRateLimit (default 20) a second: raise it to go faster
  --size BYTES         pad message text to at least this many bytes (default 0). Above
                       about 3000 bytes the encrypted text does not fit the 4096-character
                       content column: db_proxy stores nothing and no ack comes
  --ack-timeout SECS   an unacked message is given up after this long (default 10)
  --drain SECS         after the last ack, wait at most this long for deliveries (default 10)
  --deadline SECS      hard limit for the whole run (default 120)
  --logins N           clients logging in at the same time, at most (default 200; keep it
                       under msg_server's MaxConnsPerIpBeforeLogin, default 1000)
  --client-type T      pc (default: Windows) or mobile (Android). msg_server sends every
                       status change of a user to every PC connection, so N PC clients
                       logging in cost N*N status notifications; mobile clients get none
                       (nor does route_server report them online: senders start once every
                       client has logged in)
  --bind IP[,IP...]    local addresses the sockets are bound to, one after the other (IP*N:
                       N consecutive addresses from IP, e.g. 127.0.0.1*4). Each source
                       address gives about 28 000 ephemeral ports: more connections than
                       that to one server need several
  --hold SECS          instead of messaging: log --users users in (any number up to 200000,
                       --logins at a time), hold the connections idle for SECS (a heartbeat
                       every 60 s), then close them. Reports the login rate and, with
                       --rss-pid, the resident memory per held connection
  --rss-pid PID        with --hold: the msg_server process whose VmRSS is read before the
                       first connection and at the end of the hold
  -h, --help           this text

exit status: 0 all delivered exactly once; 1 lost, duplicated or corrupted messages,
non-consecutive msg ids, or (window 1) messages out of order; 2 bad usage; 3 the run
failed (login, connection, unacked messages, deadline)";

/// More clients than this are refused (one OS thread each, with a small stack: 10 000 threads
/// reserve 2.5 GB of address space and use a fraction of it).
const MAX_CLIENTS: u32 = 10_000;
/// More held connections than this are refused (`--hold`: one socket each, no thread).
const MAX_HELD: u32 = 200_000;
/// Local addresses `--bind` may list, after `IP*N` expansion.
const MAX_BIND: usize = 256;
const MAX_WINDOW: usize = 1000;

#[derive(Debug, Clone)]
pub(crate) enum Target {
    MsgServers(Vec<String>),
    LoginUrl(String),
}

#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) target: Target,
    pub(crate) users: u32,
    pub(crate) first_user: u32,
    pub(crate) password: String,
    pub(crate) messages: Option<u64>,
    pub(crate) duration: Option<Duration>,
    pub(crate) window: usize,
    /// Messages a second per sender; `None`: unpaced.
    pub(crate) rate: Option<f64>,
    pub(crate) size: usize,
    pub(crate) ack_timeout: Duration,
    pub(crate) drain: Duration,
    pub(crate) deadline: Duration,
    pub(crate) logins: usize,
    pub(crate) client_type: ClientType,
    /// Local addresses the sockets are bound to, in turn (empty: the kernel picks).
    pub(crate) bind: Vec<IpAddr>,
    /// `--hold`: log in and hold idle connections this long instead of messaging.
    pub(crate) hold: Option<Duration>,
    pub(crate) rss_pid: Option<u32>,
}

/// `IP[,IP...]`, each item possibly `IP*N` (N consecutive addresses from IP).
fn parse_bind(v: &str) -> Result<Vec<IpAddr>, String> {
    let mut out = Vec::new();
    for item in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (ip, count) = match item.split_once('*') {
            Some((ip, n)) => (ip, parse_num::<usize>("--bind", n)?),
            None => (item, 1),
        };
        let ip: IpAddr = ip
            .parse()
            .map_err(|_| format!("--bind: not an IP address: {ip}"))?;
        if count == 0 || out.len() + count > MAX_BIND {
            return Err(format!("--bind: 1..={MAX_BIND} addresses in all"));
        }
        for k in 0..count {
            out.push(nth_after(ip, k as u128).ok_or_else(|| format!("--bind: {item} overflows"))?);
        }
    }
    if out.is_empty() {
        return Err("--bind: empty list".into());
    }
    Ok(out)
}

/// The address `k` after `ip`.
fn nth_after(ip: IpAddr, k: u128) -> Option<IpAddr> {
    match ip {
        IpAddr::V4(a) => {
            let n = u32::from(a).checked_add(u32::try_from(k).ok()?)?;
            Some(IpAddr::V4(n.into()))
        }
        IpAddr::V6(a) => Some(IpAddr::V6(u128::from(a).checked_add(k)?.into())),
    }
}

fn parse_secs(name: &str, v: &str) -> Result<Duration, String> {
    let s: f64 = v
        .parse()
        .map_err(|_| format!("{name}: not a number of seconds: {v}"))?;
    if !(s.is_finite() && s > 0.0 && s <= 86_400.0) {
        return Err(format!("{name}: out of range (0, 86400]: {v}"));
    }
    Ok(Duration::from_secs_f64(s))
}

fn parse_num<T: std::str::FromStr>(name: &str, v: &str) -> Result<T, String> {
    v.parse()
        .map_err(|_| format!("{name}: not a valid number: {v}"))
}

pub(crate) fn parse_args(args: Vec<String>) -> Result<Option<Options>, String> {
    let mut msg_servers: Option<Vec<String>> = None;
    let mut login_url: Option<String> = None;
    let mut users = 40u32;
    let mut first_user = 301u32;
    let mut password = "123456".to_string();
    let mut messages: Option<u64> = None;
    let mut duration: Option<Duration> = None;
    let mut window = 1usize;
    let mut size = 0usize;
    let mut rate: f64 = 18.0;
    let mut ack_timeout = Duration::from_secs(10);
    let mut drain = Duration::from_secs(10);
    let mut deadline = Duration::from_secs(120);
    let mut logins = 200usize;
    let mut client_type = ClientType::Windows;
    let mut bind = Vec::new();
    let mut hold: Option<Duration> = None;
    let mut rss_pid: Option<u32> = None;

    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        if arg == "-h" || arg == "--help" {
            return Ok(None);
        }
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = || -> Result<String, String> {
            match &inline {
                Some(v) => Ok(v.clone()),
                None => it.next().ok_or_else(|| format!("{name} needs a value")),
            }
        };
        match name.as_str() {
            "--msg-server" => {
                let list: Vec<String> = value()?
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect();
                if list.is_empty() {
                    return Err("--msg-server: empty list".into());
                }
                msg_servers = Some(list);
            }
            "--login-url" => login_url = Some(value()?),
            "--users" => users = parse_num(&name, &value()?)?,
            "--first-user" => first_user = parse_num(&name, &value()?)?,
            "--password" => password = value()?,
            "--messages" => messages = Some(parse_num(&name, &value()?)?),
            "--duration" => duration = Some(parse_secs(&name, &value()?)?),
            "--window" => window = parse_num(&name, &value()?)?,
            "--rate" => rate = parse_num(&name, &value()?)?,
            "--size" => size = parse_num(&name, &value()?)?,
            "--ack-timeout" => ack_timeout = parse_secs(&name, &value()?)?,
            "--drain" => drain = parse_secs(&name, &value()?)?,
            "--deadline" => deadline = parse_secs(&name, &value()?)?,
            "--logins" => logins = parse_num(&name, &value()?)?,
            "--client-type" => {
                client_type = match value()?.as_str() {
                    "pc" => ClientType::Windows,
                    "mobile" => ClientType::Android,
                    other => return Err(format!("--client-type: pc or mobile, not {other}")),
                }
            }
            "--bind" => bind = parse_bind(&value()?)?,
            "--hold" => hold = Some(parse_secs(&name, &value()?)?),
            "--rss-pid" => rss_pid = Some(parse_num(&name, &value()?)?),
            _ => return Err(format!("unknown argument: {arg}")),
        }
    }
    let target = match (msg_servers, login_url) {
        (Some(_), Some(_)) => return Err("give --msg-server or --login-url, not both".into()),
        (Some(l), None) => Target::MsgServers(l),
        (None, Some(u)) => Target::LoginUrl(u),
        (None, None) => return Err("--msg-server or --login-url is required".into()),
    };
    if hold.is_some() {
        if users == 0 || users > MAX_HELD {
            return Err(format!("--users with --hold: 1..={MAX_HELD} (got {users})"));
        }
    } else if rss_pid.is_some() {
        return Err("--rss-pid goes with --hold".into());
    } else if users < 2 || users % 2 != 0 {
        return Err(format!("--users must be even and at least 2 (got {users})"));
    } else if users > MAX_CLIENTS {
        return Err(format!(
            "--users {users}: at most {MAX_CLIENTS} clients (one thread each)"
        ));
    }
    if first_user == 0 || first_user.checked_add(users - 1).is_none() {
        return Err(format!("--first-user {first_user}: bad user id range"));
    }
    if logins == 0 || logins > MAX_CLIENTS as usize {
        return Err(format!("--logins must be 1..={MAX_CLIENTS} (got {logins})"));
    }
    if window == 0 || window > MAX_WINDOW {
        return Err(format!("--window must be 1..={MAX_WINDOW} (got {window})"));
    }
    if !(rate.is_finite() && (0.0..=1_000_000.0).contains(&rate)) {
        return Err(format!("--rate must be 0..=1000000 (got {rate})"));
    }
    if size > 60_000 {
        return Err(format!("--size {size}: at most 60000"));
    }
    if messages.is_some() && duration.is_some() {
        return Err("give --messages or --duration, not both".into());
    }
    if messages == Some(0) {
        return Err("--messages must be at least 1".into());
    }
    if messages.is_none() && duration.is_none() {
        messages = Some(100);
    }
    Ok(Some(Options {
        target,
        users,
        first_user,
        password,
        messages,
        duration,
        window,
        rate: (rate > 0.0).then_some(rate),
        size,
        ack_timeout,
        drain,
        deadline,
        logins,
        client_type,
        bind,
        hold,
        rss_pid,
    }))
}
