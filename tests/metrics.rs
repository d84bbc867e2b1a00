//! `/metrics` and `/healthz` on the `MetricsPort` of every daemon, against real daemons: the
//! text parses as the Prometheus text format 0.0.4 (a strict line grammar below), counters
//! move by exactly what a scripted scenario did, `/healthz` follows msg_server's db_proxy
//! link, no listener without `MetricsPort`, bad requests answered 4xx while the daemon goes
//! on. Users: `tt_testkit::users::METRICS`.

mod live_client;

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use live_client::{WAIT, raw_login};
use tt_client::ClientType;
use tt_client::tt_proto::ids::cid;
use tt_client::tt_proto::pb::base_define::MsgType;
use tt_client::tt_proto::pb::message::{ImClientTimeReq, ImMsgData, ImMsgDataAck};
use tt_common::metrics::MAX_CONNS;
use tt_testkit::stack::LIMIT;
use tt_testkit::users::METRICS;
use tt_testkit::{Daemon, Stack, TempDir, free_port};

// ---- an HTTP client and the text format's grammar -------------------------------------------

/// `(status, body)` of one request written as it is, read to the end of the connection;
/// `None` if the connection closes without a response.
fn try_http(port: u16, request: &[u8]) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(request).ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let text = String::from_utf8(raw).expect("a UTF-8 response");
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|r| r.get(..3))
        .and_then(|c| c.parse().ok())?;
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    Some((status, body))
}

fn http_raw(port: u16, request: &[u8]) -> (u16, String) {
    try_http(port, request).unwrap_or_else(|| panic!("no response to {request:?}"))
}

fn get(port: u16, path: &str) -> (u16, String) {
    http_raw(
        port,
        format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
    )
}

/// A sample's labels, `(name, value)`.
type Labels = Vec<(String, String)>;

/// Every sample of one scrape: `(name, labels sorted)` → value.
#[derive(Debug)]
struct Samples(HashMap<(String, Labels), f64>);

impl Samples {
    /// The value of the sample `name` with exactly `labels`; 0 when absent (a family writes
    /// only the label values seen).
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let mut labels: Labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        labels.sort();
        self.0
            .get(&(name.to_string(), labels))
            .copied()
            .unwrap_or(0.0)
    }

    fn has_family(&self, name: &str) -> bool {
        self.0.keys().any(|(n, _)| n == name)
    }
}

fn is_name(s: &str, colon: bool) -> bool {
    let mut chars = s.chars();
    let first_ok = |c: char| c.is_ascii_alphabetic() || c == '_' || (colon && c == ':');
    matches!(chars.next(), Some(c) if first_ok(c))
        && chars.all(|c| first_ok(c) || c.is_ascii_digit())
}

/// Parses `{a="x",b="y"}` (escapes `\\`, `\"`, `\n`); returns the labels and the rest.
fn parse_labels(s: &str) -> Result<(Labels, &str), String> {
    let mut labels = Vec::new();
    let mut rest = s.strip_prefix('{').ok_or("no {")?;
    loop {
        if let Some(r) = rest.strip_prefix('}') {
            return Ok((labels, r));
        }
        let (name, r) = rest.split_once("=\"").ok_or("no =\" after a label name")?;
        if !is_name(name, false) {
            return Err(format!("bad label name {name:?}"));
        }
        let mut value = String::new();
        let mut chars = r.char_indices();
        let end = loop {
            match chars.next().ok_or("unterminated label value")? {
                (i, '"') => break i,
                (_, '\\') => match chars.next().ok_or("dangling escape")?.1 {
                    '\\' => value.push('\\'),
                    '"' => value.push('"'),
                    'n' => value.push('\n'),
                    c => return Err(format!("bad escape \\{c}")),
                },
                (_, '\n') => return Err("newline in a label value".into()),
                (_, c) => value.push(c),
            }
        };
        labels.push((name.to_string(), value));
        rest = &r[end + 1..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
}

fn parse_value(s: &str) -> Result<f64, String> {
    match s {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => s.parse().map_err(|_| format!("bad value {s:?}")),
    }
}

/// The Prometheus text format, version 0.0.4, strictly: `# HELP` and `# TYPE` once per family
/// and before its samples, every sample of a declared family (a histogram's as `_bucket` with
/// an `le` label, `_sum`, `_count`), names and label names by the grammar, no duplicate
/// series, no other comment (`# EOF` is OpenMetrics), a final line end.
fn parse_text(text: &str) -> Result<Samples, String> {
    if !text.ends_with('\n') {
        return Err("no final line end".into());
    }
    let mut types: HashMap<String, String> = HashMap::new();
    let mut helps: HashSet<String> = HashSet::new();
    let mut with_samples: HashSet<String> = HashSet::new();
    let mut samples = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let fail = |why: String| format!("line {}: {why}: {line:?}", n + 1);
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap_or("");
            if !is_name(name, true) || !helps.insert(name.to_string()) {
                return Err(fail("bad or repeated HELP".into()));
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').ok_or_else(|| fail("no type".into()))?;
            let known = ["counter", "gauge", "histogram", "summary", "untyped"];
            if !is_name(name, true)
                || !known.contains(&kind)
                || with_samples.contains(name)
                || types.insert(name.to_string(), kind.to_string()).is_some()
            {
                return Err(fail("bad, late or repeated TYPE".into()));
            }
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            return Err(fail("a line the format does not have here".into()));
        }
        let name_end = line
            .find(['{', ' '])
            .ok_or_else(|| fail("no value".into()))?;
        let name = &line[..name_end];
        if !is_name(name, true) {
            return Err(fail("bad metric name".into()));
        }
        let (mut labels, rest) = if line[name_end..].starts_with('{') {
            parse_labels(&line[name_end..]).map_err(fail)?
        } else {
            (Vec::new(), &line[name_end..])
        };
        let value = rest
            .strip_prefix(' ')
            .ok_or_else(|| fail("no space".into()))?;
        let value = parse_value(value.split(' ').next().unwrap_or("")).map_err(fail)?;
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .filter_map(|s| name.strip_suffix(s))
            .find(|f| types.get(*f).is_some_and(|t| t == "histogram"))
            .unwrap_or(name);
        if !types.contains_key(family) {
            return Err(fail(format!("sample of an undeclared family {family}")));
        }
        if family != name && name.ends_with("_bucket") && !labels.iter().any(|(k, _)| k == "le") {
            return Err(fail("a bucket without le".into()));
        }
        with_samples.insert(family.to_string());
        labels.sort();
        if samples.insert((name.to_string(), labels), value).is_some() {
            return Err(fail("a repeated series".into()));
        }
    }
    Ok(Samples(samples))
}

/// `/metrics` of the daemon on `port`, checked against the grammar.
fn scrape(port: u16) -> Samples {
    let (status, body) = get(port, "/metrics");
    assert_eq!(status, 200, "GET /metrics: {body}");
    parse_text(&body).unwrap_or_else(|e| panic!("/metrics is not the text format: {e}\n{body}"))
}

#[test]
fn the_grammar_refuses_what_is_not_the_text_format() {
    assert!(parse_text("# TYPE a counter\na 1\n").is_ok());
    for bad in [
        "a 1\n",                                     // no TYPE
        "# TYPE a counter\na 1",                     // no final line end
        "# TYPE a counter\na{b=\"1} 1\n",            // unterminated
        "# TYPE a counter\na 1\na 2\n",              // repeated series
        "# TYPE a counter\na 1\n# EOF\n",            // OpenMetrics
        "# TYPE 1a counter\n1a 1\n",                 // bad name
        "# TYPE a histogram\na_bucket 1\n",          // bucket without le
        "# TYPE a counter\na x\n",                   // bad value
        "# TYPE a counter\na 1\n# TYPE a counter\n", // repeated TYPE
    ] {
        assert!(parse_text(bad).is_err(), "accepted {bad:?}");
    }
}

// ---- the scenario -----------------------------------------------------------------------------

const SENDER: u32 = METRICS.id(0);
const RECEIVER: u32 = METRICS.id(1);
/// Messages sent in one burst; `MsgRateLimit` lets 2 a second through, so most are dropped.
const BURST: usize = 20;

/// Polls `check` every 50 ms until it holds or [`LIMIT`] passes (a link's reconnect and a
/// status relayed through route_server have no event a test can wait on).
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < LIMIT, "{what} never happened");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn counters_move_by_what_the_scenario_did() {
    let stack = Stack::builder("metrics-scenario")
        .metrics(true)
        .file_server(true)
        .push_gateway("http://127.0.0.1:9")
        .msg_conf_extra("MsgRateLimit=2\n")
        .start();
    let port = |d: &str| stack.metrics_port(d).expect("a MetricsPort");
    let (msg, db, route) = (port("msg0"), port("db_proxy"), port("route"));
    // Every daemon of the stack: the text format, healthy, its connections by kind.
    for d in ["db_proxy", "route", "login", "file", "push", "msg0"] {
        let s = scrape(port(d));
        assert!(s.has_family("tt_connections"), "{d}: no tt_connections");
        assert_eq!(get(port(d), "/healthz"), (200, "ok\n".to_string()), "{d}");
    }
    let before = (scrape(msg), scrape(db));
    let delta = |after: &Samples, before: &Samples, name: &str, labels: &[(&str, &str)]| {
        after.value(name, labels) - before.value(name, labels)
    };

    let _receiver = raw_login(&stack, 0, RECEIVER, ClientType::Windows);
    let mut sender = raw_login(&stack, 0, SENDER, ClientType::Windows);
    for i in 0..BURST {
        sender.send(&ImMsgData {
            from_user_id: SENDER,
            to_session_id: RECEIVER,
            msg_id: 0,
            create_time: 0,
            msg_type: MsgType::SingleText as i32,
            msg_data: format!("metrics {i}").into_bytes(),
            attach_data: None,
        });
    }
    // msg_server answers the time at once, in order: every message before it is handled
    // (sent to db_proxy or dropped) when the answer comes.
    sender.send(&ImClientTimeReq {});
    let (early, _) =
        sender.recv_until_matching(|p| p.header.command_id == cid::CID_MSG_TIME_RESPONSE);
    let dropped = delta(
        &scrape(msg),
        &before.0,
        "tt_pdus_dropped_total",
        &[("reason", "rate_limit")],
    ) as usize;
    assert!(
        dropped > 0 && dropped < BURST,
        "{dropped} of {BURST} dropped"
    );
    let acked = BURST - dropped;
    let mut acks = early
        .iter()
        .filter(|p| p.header.command_id == cid::CID_MSG_DATA_ACK)
        .count();
    while acks < acked {
        sender.recv::<ImMsgDataAck>();
        acks += 1;
    }

    let after = (scrape(msg), scrape(db));
    let (m, d) = (&after.0, &after.1);
    let pdus_in = "tt_pdus_in_total";
    let cmd = |c: &'static str| [("command", c)];
    assert_eq!(
        delta(m, &before.0, pdus_in, &cmd("CID_LOGIN_REQ_USERLOGIN")),
        2.0
    );
    assert_eq!(
        delta(m, &before.0, pdus_in, &cmd("CID_MSG_DATA")),
        (BURST + acked) as f64,
        "the client's messages and db_proxy's replies"
    );
    assert_eq!(
        delta(m, &before.0, pdus_in, &cmd("CID_MSG_TIME_REQUEST")),
        1.0
    );
    assert_eq!(
        delta(m, &before.0, "tt_pdus_out_total", &cmd("CID_MSG_DATA_ACK")),
        acked as f64
    );
    assert!(
        delta(m, &before.0, "tt_pdu_bytes_in_total", &cmd("CID_MSG_DATA")) >= (16 * BURST) as f64
    );
    assert_eq!(m.value("tt_users_online", &[]), 2.0);
    assert_eq!(m.value("tt_user_connections", &[]), 2.0);
    assert_eq!(m.value("tt_connections", &[("kind", "client")]), 2.0);
    assert_eq!(
        delta(d, &before.1, pdus_in, &cmd("CID_OTHER_VALIDATE_REQ")),
        2.0
    );
    assert_eq!(
        delta(d, &before.1, pdus_in, &cmd("CID_MSG_DATA")),
        acked as f64
    );
    assert_eq!(
        delta(
            d,
            &before.1,
            "tt_messages_stored_total",
            &[("session", "single")]
        ),
        acked as f64
    );
    assert_eq!(
        delta(
            d,
            &before.1,
            "tt_db_handler_seconds_count",
            &cmd("CID_MSG_DATA")
        ),
        acked as f64
    );
    assert_eq!(d.value("tt_store_up", &[("store", "mysql")]), 1.0);
    // route_server learns of the logins from msg_server's status updates.
    eventually("route_server counts both users", || {
        scrape(route).value("tt_users_online", &[]) == 2.0
    });
}

#[test]
fn healthz_follows_the_db_proxy_link() {
    let mut stack = Stack::builder("metrics-health").metrics(true).start();
    let msg = stack.metrics_port("msg0").expect("a MetricsPort");
    let peer = format!("db_proxy_server/127.0.0.1:{}", stack.ports.db_proxy);
    assert_eq!(get(msg, "/healthz"), (200, "ok\n".to_string()));
    assert_eq!(scrape(msg).value("tt_link_up", &[("peer", &peer)]), 1.0);

    Stack::kill(&mut stack.db_proxy);
    eventually("/healthz turns 503", || get(msg, "/healthz").0 == 503);
    assert_eq!(
        get(msg, "/healthz"),
        (503, "no db_proxy_server link\n".to_string())
    );
    assert_eq!(scrape(msg).value("tt_link_up", &[("peer", &peer)]), 0.0);

    stack.start_db_proxy();
    eventually("/healthz turns 200 again", || get(msg, "/healthz").0 == 200);
    assert_eq!(scrape(msg).value("tt_link_up", &[("peer", &peer)]), 1.0);
}

// ---- the listener itself ----------------------------------------------------------------------

/// Ports a process listens on (TCP over IPv4), from `/proc`.
fn listening_ports(pid: u32) -> Vec<u16> {
    let inodes: HashSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("the daemon's fds")
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|l| {
            let l = l.to_string_lossy().to_string();
            Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
        })
        .collect();
    let table = std::fs::read_to_string("/proc/net/tcp").expect("/proc/net/tcp");
    table
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let listening = f.get(3) == Some(&"0A");
            let port = u16::from_str_radix(f.get(1)?.rsplit(':').next()?, 16).ok()?;
            (listening && inodes.contains(*f.get(9)?)).then_some(port)
        })
        .collect()
}

fn route_server(home: &TempDir, extra: &str) -> (Daemon, u16) {
    let port = free_port();
    home.write(
        "routeserver.conf",
        &format!("ListenIP=127.0.0.1\nListenMsgPort={port}\n{extra}"),
    );
    let mut d = Daemon::spawn("route_server", home.path(), "routeserver.conf");
    d.wait_ready(LIMIT);
    (d, port)
}

#[test]
fn no_metrics_port_no_listener() {
    let home = TempDir::new("metrics-off");
    let (off, port) = route_server(&home, "");
    assert_eq!(listening_ports(off.pid().unwrap()), vec![port]);
    assert!(
        !off.recent_log().contains("metrics on"),
        "{}",
        off.recent_log()
    );

    let home = TempDir::new("metrics-on");
    let metrics = free_port();
    let (on, port) = route_server(&home, &format!("MetricsPort={metrics}\n"));
    let mut ports = listening_ports(on.pid().unwrap());
    ports.sort();
    let mut expected = vec![port, metrics];
    expected.sort();
    assert_eq!(ports, expected);
}

#[test]
fn bad_requests_are_refused_and_the_port_goes_on() {
    let home = TempDir::new("metrics-bad");
    let metrics = free_port();
    let (d, _) = route_server(&home, &format!("MetricsPort={metrics}\n"));
    assert_eq!(get(metrics, "/nope").0, 404);
    assert_eq!(get(metrics, "/metrics?x=1").0, 200);
    let post = b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    assert_eq!(http_raw(metrics, post).0, 405);
    assert_eq!(http_raw(metrics, b"hello there\r\n\r\n").0, 400);
    let body = b"GET /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello";
    assert_eq!(http_raw(metrics, body).0, 413);
    let long = format!("GET /{} HTTP/1.1\r\n\r\n", "x".repeat(8000));
    assert_eq!(http_raw(metrics, long.as_bytes()).0, 431);
    // More connections than the port keeps: the extra ones are closed at once, and once they
    // are gone the port answers again.
    let held: Vec<TcpStream> = (0..MAX_CONNS + 4)
        .map(|_| TcpStream::connect(("127.0.0.1", metrics)).unwrap())
        .collect();
    drop(held);
    let healthz = b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n";
    eventually("the port answers after the flood", || {
        try_http(metrics, healthz).is_some_and(|(status, _)| status == 200)
    });
    scrape(metrics);
    assert!(!d.recent_log().contains("panicked"), "{}", d.recent_log());
}

#[test]
fn msfs_and_http_msg_server_report_too() {
    let home = TempDir::new("metrics-msfs");
    let metrics = free_port();
    home.write(
        "msfs.conf",
        &format!(
            "ListenIP=127.0.0.1\nListenPort={}\nBaseDir=./tmp\nFileCnt=0\nFilesPerDir=30000\n\
             GetThreadCount=1\nPostThreadCount=1\nMetricsPort={metrics}\n",
            free_port()
        ),
    );
    let mut msfs = Daemon::spawn("msfs", home.path(), "msfs.conf");
    msfs.wait_ready(LIMIT);
    let s = scrape(metrics);
    assert_eq!(s.value("tt_msfs_uploads_total", &[]), 0.0);
    assert!(s.has_family("tt_msfs_downloads_total"));
    assert_eq!(get(metrics, "/healthz"), (200, "ok\n".to_string()));

    // db_proxy and route_server addresses where nobody listens: unhealthy, links down.
    let home = TempDir::new("metrics-http-msg");
    let (metrics, db) = (free_port(), free_port());
    home.write(
        "httpmsgserver.conf",
        &format!(
            "ListenIP=127.0.0.1\nListenPort={}\nConcurrentDBConnCnt=1\nDBServerIP1=127.0.0.1\n\
             DBServerPort1={db}\nDBServerIP2=127.0.0.1\nDBServerPort2={db}\n\
             RouteServerIP1=127.0.0.1\nRouteServerPort1={}\n\
             MetricsPort={metrics}\n",
            free_port(),
            free_port()
        ),
    );
    let mut http = Daemon::spawn("http_msg_server", home.path(), "httpmsgserver.conf");
    http.wait_ready(LIMIT);
    assert_eq!(
        get(metrics, "/healthz"),
        (503, "no db_proxy_server link\n".to_string())
    );
    let peer = format!("db_proxy_server/127.0.0.1:{db}");
    assert_eq!(scrape(metrics).value("tt_link_up", &[("peer", &peer)]), 0.0);
    assert!(scrape(metrics).has_family("tt_link_up"));
}
