//! What an operator installs: the systemd units of `deploy/systemd/` (valid for
//! `systemd-analyze verify`, one per daemon, each naming a conf of `conf/`), `-v`/`--version`
//! on every daemon, and `docs/OPERATIONS.md` naming only conf keys the code reads.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tt_testkit::{Daemon, TempDir, bin_path, free_port};

/// Every daemon: its binary and what `-v` names it.
const DAEMONS: [(&str, &str); 8] = [
    ("db_proxy_server", "DBProxyServer"),
    ("route_server", "RouteServer"),
    ("login_server", "LoginServer"),
    ("msg_server", "MsgServer"),
    ("file_server", "FileServer"),
    ("msfs", "MSFS"),
    ("push_server", "PushServer"),
    ("http_msg_server", "HttpMsgServer"),
];

/// The instance the template unit is checked with: `msgserver2.conf` is in `conf/`.
const TEMPLATE_INSTANCE: &str = "2";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn units_dir() -> PathBuf {
    root().join("deploy/systemd")
}

/// The unit files (`*.service`, `*.target`) of `deploy/systemd/`, by file name.
fn unit_files() -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(units_dir()).expect("deploy/systemd/") {
        let path = entry.expect("a directory entry").path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".service") || name.ends_with(".target") {
            out.insert(name, std::fs::read_to_string(&path).expect("a unit file"));
        }
    }
    out
}

/// Every value of `key=` in a unit's text, in order.
fn values<'a>(unit: &'a str, key: &str) -> Vec<&'a str> {
    unit.lines()
        .filter_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .map(str::trim)
        .collect()
}

/// The one value of `key=` in a unit (panics when it is absent or repeated).
fn value<'a>(name: &str, unit: &'a str, key: &str) -> &'a str {
    match values(unit, key).as_slice() {
        [v] => v,
        other => panic!("{name}: {key}= set {} times", other.len()),
    }
}

/// A unit's text as systemd would load it on this machine: `%i` of a template replaced by
/// [`TEMPLATE_INSTANCE`], `/usr/local/bin/<daemon>` by the built binary.
fn localised(unit: &str) -> String {
    let mut text = unit.replace("%i", TEMPLATE_INSTANCE);
    for (bin, _) in DAEMONS {
        let installed = format!("ExecStart=/usr/local/bin/{bin} ");
        let built = format!("ExecStart={} ", bin_path(bin).display());
        text = text.replace(&installed, &built);
    }
    text
}

/// The file a unit is checked under: a template as its [`TEMPLATE_INSTANCE`].
fn instance_name(name: &str) -> String {
    name.replace("@.", &format!("@{TEMPLATE_INSTANCE}."))
}

#[test]
fn units_pass_systemd_analyze_verify() {
    let probe = Command::new("systemd-analyze").arg("--version").output();
    if !probe.is_ok_and(|o| o.status.success()) {
        println!("systemd-analyze is not installed: the unit files are not verified");
        return;
    }
    let dir = TempDir::new("deploy-units");
    let mut paths = Vec::new();
    for (name, unit) in unit_files() {
        paths.push(dir.write(&instance_name(&name), &localised(&unit)));
    }
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no", "--generators=no"])
        .args(&paths)
        .output()
        .expect("running systemd-analyze verify");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "systemd-analyze verify failed ({}):\n{stderr}",
        out.status
    );
    // A key systemd does not know or a value it cannot parse is only a warning (status 0).
    assert!(
        stderr.trim().is_empty(),
        "systemd-analyze verify warned:\n{stderr}"
    );
}

#[test]
fn every_daemon_has_a_unit_naming_a_conf_of_conf_dir() {
    let units = unit_files();
    let target = units.get("teamtalk.target").expect("teamtalk.target");
    assert_eq!(
        value("teamtalk.target", target, "WantedBy"),
        "multi-user.target"
    );
    for (bin, _) in DAEMONS {
        let name = format!("teamtalk-{bin}.service");
        assert!(units.contains_key(&name), "{name} is missing");
    }
    let mut services = 0;
    for (name, unit) in &units {
        if !name.ends_with(".service") {
            continue;
        }
        services += 1;
        let unit = unit.replace("%i", TEMPLATE_INSTANCE);
        let bin = name
            .strip_prefix("teamtalk-")
            .and_then(|n| n.split(['.', '@']).next())
            .unwrap_or_else(|| panic!("{name}: not teamtalk-<daemon>.service"));
        assert!(
            DAEMONS.iter().any(|(b, _)| *b == bin),
            "{name}: no daemon {bin}"
        );
        let exec = value(name, &unit, "ExecStart");
        let conf = exec
            .strip_prefix(&format!("/usr/local/bin/{bin} -c /etc/teamtalk/"))
            .unwrap_or_else(|| panic!("{name}: ExecStart={exec}"));
        assert!(
            root().join("conf").join(conf).is_file(),
            "{name}: conf/{conf} does not exist"
        );
        let workdir = value(name, &unit, "WorkingDirectory");
        assert!(
            workdir.starts_with(&format!("/var/lib/teamtalk/{bin}")),
            "{name}: WorkingDirectory={workdir}"
        );
        assert_eq!(
            format!("/var/lib/{}", value(name, &unit, "StateDirectory")),
            workdir,
            "{name}: the working directory is the one systemd creates"
        );
        assert_eq!(value(name, &unit, "ReadWritePaths"), workdir, "{name}");
        assert_eq!(value(name, &unit, "User"), "teamtalk", "{name}");
        assert_eq!(value(name, &unit, "Restart"), "on-failure", "{name}");
        assert_eq!(value(name, &unit, "KillSignal"), "SIGTERM", "{name}");
        assert_eq!(value(name, &unit, "WantedBy"), "teamtalk.target", "{name}");
        let nofile: u64 = value(name, &unit, "LimitNOFILE")
            .parse()
            .expect("LimitNOFILE");
        let least = if bin == "msg_server" { 1 << 20 } else { 65536 };
        assert!(nofile >= least, "{name}: LimitNOFILE={nofile}");
        // Above the default StopTimeout (5 s), so a graceful stop is not cut by SIGKILL.
        let stop: u64 = value(name, &unit, "TimeoutStopSec")
            .parse()
            .expect("TimeoutStopSec");
        assert!(stop > 5, "{name}: TimeoutStopSec={stop}");
    }
    assert!(
        services > DAEMONS.len(),
        "the msg_server template is missing"
    );
}

#[test]
fn msg_server_template_is_its_unit_with_an_instance() {
    let units = unit_files();
    let template = &units["teamtalk-msg_server@.service"];
    let plain = &units["teamtalk-msg_server.service"];
    assert!(template.contains("msgserver%i.conf"), "{template}");
    let as_plain = template.replace(", instance %i", "").replace("%i", "");
    assert_eq!(
        &as_plain, plain,
        "the template and teamtalk-msg_server.service differ"
    );
}

#[test]
fn msg_server_starts_after_the_servers_it_links_to() {
    let units = unit_files();
    for name in [
        "teamtalk-msg_server.service",
        "teamtalk-msg_server@.service",
    ] {
        let unit = &units[name];
        let after: Vec<&str> = values(unit, "After")
            .iter()
            .flat_map(|v| v.split_whitespace())
            .collect();
        for peer in [
            "db_proxy_server",
            "route_server",
            "login_server",
            "file_server",
            "push_server",
        ] {
            let peer = format!("teamtalk-{peer}.service");
            assert!(after.contains(&peer.as_str()), "{name}: not After={peer}");
        }
    }
}

#[test]
fn version_flags_on_every_daemon() {
    for (bin, name) in DAEMONS {
        for flag in ["-v", "--version"] {
            let out = Command::new(bin_path(bin))
                .arg(flag)
                .output()
                .expect("running a daemon");
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success(), "{bin} {flag}: {}", out.status);
            let lines: Vec<&str> = stdout.lines().collect();
            assert_eq!(lines.len(), 2, "{bin} {flag}: {stdout}");
            assert_eq!(
                lines[0],
                format!("Server Version: {name}/{}", env!("CARGO_PKG_VERSION")),
                "{bin} {flag}"
            );
            assert!(
                lines[1].starts_with("Server Build: "),
                "{bin} {flag}: {stdout}"
            );
        }
    }
}

/// The source of every crate under `services/` but the client and the test kit: the daemons
/// and the libraries where they read their shared keys.
fn daemon_sources() -> String {
    fn walk(dir: &Path, out: &mut String) {
        for entry in std::fs::read_dir(dir).expect("a source directory") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push_str(&std::fs::read_to_string(&path).expect("a source file"));
            }
        }
    }
    let mut out = String::new();
    for entry in std::fs::read_dir(root().join("services")).expect("services/") {
        let dir = entry.expect("a directory entry").path();
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        if !["client", "testkit"].contains(&name.as_str()) && dir.join("src").is_dir() {
            walk(&dir.join("src"), &mut out);
        }
    }
    out
}

/// The conf keys of a Markdown text: every `` `Key=…` `` span outside fenced blocks,
/// placeholders such as `<n>` kept. Unit-file keys (`Key=` of `unit_keys`) and environment
/// variables (`RUST_LOG=`) are left out.
fn conf_keys(text: &str, unit_keys: &[&str]) -> Vec<String> {
    let mut prose = String::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if !fenced {
            prose.push_str(line);
            prose.push('\n');
        }
    }
    let mut keys = Vec::new();
    for (i, span) in prose.split('`').enumerate() {
        if i % 2 == 0 {
            continue; // outside backticks
        }
        let Some((key, _)) = span.split_once('=') else {
            continue;
        };
        let simple = |c: char| c.is_ascii_alphanumeric() || "_<>".contains(c);
        let env_var = key.chars().all(|c| c.is_ascii_uppercase() || c == '_');
        if !key.is_empty()
            && key.chars().all(simple)
            && !key.starts_with('_')
            && !env_var
            && !unit_keys.contains(&key)
        {
            keys.push(key.to_string());
        }
    }
    keys
}

/// The keys set in the unit files (`Key=` at the start of a line).
fn unit_keys(units: &BTreeMap<String, String>) -> Vec<&str> {
    let mut keys: Vec<&str> = units
        .values()
        .flat_map(|u| u.lines())
        .filter_map(|l| l.split_once('=').map(|(k, _)| k))
        .filter(|k| !k.starts_with('#'))
        .collect();
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// True if the code reads `key`: a string literal `"Key"`; `"Prefix` for `Prefix<n>`;
/// `_suffix"` for `<pool>_suffix`; or, for `name_suffix`, the literals `"name"` and
/// `}_suffix"` (a pool name and a key built from it).
fn read_by(code: &str, key: &str) -> bool {
    if let Some(prefix) = key.strip_suffix("<n>") {
        return code.contains(&format!("\"{prefix}"));
    }
    if let Some(rest) = key.strip_prefix('<') {
        let suffix = rest.split_once('>').map_or("", |(_, s)| s);
        return !suffix.is_empty() && code.contains(&format!("}}{suffix}\""));
    }
    code.contains(&format!("\"{key}\""))
        || key.match_indices('_').any(|(i, _)| {
            let (name, suffix) = key.split_at(i);
            code.contains(&format!("\"{name}\"")) && code.contains(&format!("}}{suffix}\""))
        })
}

#[test]
fn operations_guide_names_only_conf_keys_the_code_reads() {
    let guide = std::fs::read_to_string(root().join("docs/OPERATIONS.md")).expect("OPERATIONS.md");
    let code = daemon_sources();
    let units = unit_files();
    let keys = conf_keys(&guide, &unit_keys(&units));
    // The guide's own key list: if the spans stopped parsing, nothing would be checked.
    for expected in [
        "MetricsPort",
        "StopTimeout",
        "DBServerIP<n>",
        "<pool>_host",
        "teamtalk_slave_host",
    ] {
        assert!(
            keys.iter().any(|k| k == expected),
            "{expected} not found in the guide"
        );
    }
    let unknown: Vec<&String> = keys.iter().filter(|k| !read_by(&code, k)).collect();
    assert!(
        unknown.is_empty(),
        "keys of OPERATIONS.md no daemon reads: {unknown:?}"
    );
}

#[test]
fn key_matching_tells_read_keys_from_others() {
    let code = r#"conf.require("ListenPort"); conf.server_list("DBServerIP", "DBServerPort");
        const MASTER: &str = "teamtalk_master"; conf.require(&format!("{name}_host"));"#;
    for read in [
        "ListenPort",
        "DBServerIP<n>",
        "<pool>_host",
        "teamtalk_master_host",
    ] {
        assert!(read_by(code, read), "{read}");
    }
    for unread in [
        "ListenIP",
        "Listen",
        "RouteServerIP<n>",
        "<pool>_port",
        "teamtalk_slave_host",
    ] {
        assert!(!read_by(code, unread), "{unread}");
    }
    assert_eq!(
        conf_keys(
            "`Ab=1` and `B<n>=`, not `a == b`, `_x=`, `x`, `c = d`, `RUST_LOG=debug`, `Wants=a`\n\
             ```sh\nCd=1 `Dd=2`\n```\n`Ef=`",
            &["Wants"]
        ),
        ["Ab", "B<n>", "Ef"]
    );
}

/// `KEY=value` of a conf file (the first one, comments cut), as `scripts/stack.sh` reads it.
fn conf_value(path: &Path, key: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).expect("a conf file");
    text.lines().find_map(|l| {
        let line = l.split('#').next()?;
        let (k, v) = line.split_once('=')?;
        (k.trim() == key).then(|| v.trim().to_string())
    })
}

#[test]
fn local_stacks_turn_metrics_on_with_ports_of_their_own() {
    let mut seen = BTreeMap::new();
    for dir in ["conf", "conf/alt"] {
        for entry in std::fs::read_dir(root().join(dir)).expect("a conf directory") {
            let path = entry.expect("a directory entry").path();
            if path.extension().is_none_or(|e| e != "conf") {
                continue;
            }
            let port = conf_value(&path, "MetricsPort")
                .unwrap_or_else(|| panic!("{} has no MetricsPort", path.display()));
            let port: u16 = port.parse().expect("MetricsPort is a port");
            assert_ne!(port, 0, "{}", path.display());
            if let Some(other) = seen.insert(port, path.clone()) {
                panic!(
                    "MetricsPort {port} in {} and {}",
                    other.display(),
                    path.display()
                );
            }
        }
    }
    assert!(seen.len() >= 2 * 8, "{seen:?}");
}

/// Runs `scripts/status.sh CONF_DIR` with the stacks' state under `var`.
fn status(conf_dir: &Path, var: &Path) -> (bool, String) {
    let out = Command::new("bash")
        .arg(root().join("scripts/status.sh"))
        .arg(conf_dir)
        .env("TT_VAR", var)
        .output()
        .expect("running scripts/status.sh");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.success(), text)
}

#[test]
fn status_script_shows_pid_and_health() {
    let tmp = TempDir::new("deploy-status");
    let conf_dir = tmp.path().join("stack");
    let var = tmp.path().join("var");
    let work = var.join("stacks/stack/routeserver");
    std::fs::create_dir_all(&conf_dir).expect("a conf directory");
    std::fs::create_dir_all(&work).expect("a working directory");
    let conf = conf_dir.join("routeserver.conf");
    let metrics_port = free_port();
    std::fs::write(
        &conf,
        format!(
            "ListenIP=127.0.0.1\nListenMsgPort={}\nMetricsPort={metrics_port}\n",
            free_port()
        ),
    )
    .expect("writing the conf");

    let (ok, text) = status(&conf_dir, &var);
    assert!(!ok, "nothing runs yet:\n{text}");
    assert!(text.contains("routeserver      NOT RUNNING"), "{text}");

    let mut route = Daemon::spawn("route_server", &work, conf.to_str().unwrap());
    route.wait_ready(Duration::from_secs(20));
    let pid = route.pid().expect("a pid");
    let (ok, text) = status(&conf_dir, &var);
    assert!(
        text.contains(&format!("routeserver      running (pid {pid})")),
        "{text}"
    );
    assert!(text.contains("health: ok"), "{text}");
    assert!(ok, "{text}");

    route.kill();
    let (ok, text) = status(&conf_dir, &var);
    assert!(!ok, "{text}");
    assert!(text.contains("routeserver      NOT RUNNING"), "{text}");
}

/// The `tt_…` metric names of a text (a histogram's `_bucket` series named by its family).
fn metric_names(text: &str) -> Vec<String> {
    let mut names: Vec<String> = text
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("tt_") && w.len() > 3)
        .map(|w| w.strip_suffix("_bucket").unwrap_or(w).to_string())
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The text of a `## title` section of a Markdown document, up to the next `## `.
fn section<'a>(doc: &'a str, title: &str) -> &'a str {
    let start = doc
        .find(&format!("\n## {title}\n"))
        .unwrap_or_else(|| panic!("no section {title}"));
    let body = &doc[start + title.len() + 5..];
    &body[..body.find("\n## ").unwrap_or(body.len())]
}

#[test]
fn alerts_use_metrics_of_the_reference() {
    let guide = std::fs::read_to_string(root().join("docs/OPERATIONS.md")).expect("OPERATIONS.md");
    let reference = metric_names(section(&guide, "Metrics reference"));
    let alerts = metric_names(section(&guide, "Alerts worth setting"));
    assert!(alerts.len() >= 10, "{alerts:?}");
    let unknown: Vec<&String> = alerts.iter().filter(|n| !reference.contains(n)).collect();
    assert!(
        unknown.is_empty(),
        "alerts on metrics the reference lacks: {unknown:?}"
    );
}
