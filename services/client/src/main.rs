//! `tt-cli`: log in to a TeamTalk system and run commands, one-shot or from stdin.
//! See services/client/README.md.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use tt_client::{
    Client, ClientType, DEFAULT_AES_KEY, Error, MsgCipher, MsgServerAddr, UserStatType,
};

mod cli;

use cli::output::{esc, print_event, status_name};
use cli::{Flow, execute};

const USAGE: &str = "\
usage: tt-cli [OPTIONS] login USER PASSWORD      log in, then read commands from stdin
       tt-cli [OPTIONS] --user U --password P [COMMAND ARGS...]
                                                 log in, run one command and exit
                                                 (no command: read commands from stdin)
       tt-cli [OPTIONS] discover                 print the msg_server login_server picks
       tt-cli [OPTIONS] upload FILE              store a file on msfs (no login)
       tt-cli [OPTIONS] download URL|PATH OUT    fetch a file from msfs (no login)

options:
  --login-url URL      login_server HTTP address (default http://127.0.0.1:8080)
  --msg-server H:P     connect to this msg_server, skip discovery
  --msfs-url URL       msfs base URL for upload/download (default: from discovery)
  --user NAME          login name
  --password PASS      plain password (sent as its MD5 hex)
  --client-type T      windows | mac | ios | android (default windows)
  --status S           online | leave (default online)
  --aes-key KEY        32-byte message key (default the original clients' key)
  --plain              send and show message text unencrypted
  --timeout SECS       reply timeout (default 10)
  -h, --help           this text

commands: type `help` after logging in, or see services/client/README.md";

#[derive(Debug)]
struct Options {
    login_url: Option<String>,
    msg_server: Option<String>,
    msfs_url: Option<String>,
    user: Option<String>,
    password: Option<String>,
    client_type: ClientType,
    status: UserStatType,
    aes_key: Option<String>,
    plain: bool,
    timeout: Duration,
    command: Vec<String>,
}

fn main() -> ExitCode {
    let env = env_logger::Env::default().default_filter_or("warn");
    let _ = env_logger::Builder::from_env(env).try_init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opts = match parse_options(&args) {
        Ok(Some(o)) => o,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("error: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(opts) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(if matches!(e, Error::Usage(_)) { 2 } else { 1 })
        }
    }
}

fn parse_options(args: &[String]) -> Result<Option<Options>, String> {
    let mut o = Options {
        login_url: None,
        msg_server: None,
        msfs_url: None,
        user: None,
        password: None,
        client_type: ClientType::Windows,
        status: UserStatType::UserStatusOnline,
        aes_key: None,
        plain: false,
        timeout: Duration::from_secs(10),
        command: Vec::new(),
    };
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        if !arg.starts_with('-') {
            o.command = args[i..].to_vec();
            break;
        }
        if arg == "-h" || arg == "--help" {
            return Ok(None);
        }
        if arg == "--plain" {
            o.plain = true;
            i += 1;
            continue;
        }
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (arg.as_str(), None),
        };
        let value = match inline {
            Some(v) => v,
            None => {
                i += 1;
                args.get(i)
                    .cloned()
                    .ok_or_else(|| format!("{name} needs a value"))?
            }
        };
        match name {
            "--login-url" => o.login_url = Some(value),
            "--msg-server" => o.msg_server = Some(value),
            "--msfs-url" => o.msfs_url = Some(value),
            "--user" => o.user = Some(value),
            "--password" => o.password = Some(value),
            "--client-type" => {
                o.client_type = match value.to_ascii_lowercase().as_str() {
                    "windows" | "1" => ClientType::Windows,
                    "mac" | "2" => ClientType::Mac,
                    "ios" | "17" => ClientType::Ios,
                    "android" | "18" => ClientType::Android,
                    _ => return Err(format!("unknown client type {value:?}")),
                }
            }
            "--status" => {
                o.status = match value.to_ascii_lowercase().as_str() {
                    "online" | "1" => UserStatType::UserStatusOnline,
                    "leave" | "3" => UserStatType::UserStatusLeave,
                    _ => return Err(format!("unknown status {value:?} (online or leave)")),
                }
            }
            "--aes-key" => o.aes_key = Some(value),
            "--timeout" => {
                let secs: f64 = value
                    .parse()
                    .ok()
                    .filter(|s: &f64| s.is_finite() && *s > 0.0 && *s < 86_400.0)
                    .ok_or_else(|| format!("bad --timeout {value:?}"))?;
                o.timeout = Duration::from_secs_f64(secs);
            }
            other => return Err(format!("unknown option {other}")),
        }
        i += 1;
    }
    Ok(Some(o))
}

/// Ok(true): everything succeeded; Ok(false): some interactive command failed.
fn run(mut o: Options) -> Result<bool, Error> {
    let cipher = if o.plain {
        None
    } else {
        let key = o.aes_key.as_deref().unwrap_or(DEFAULT_AES_KEY);
        Some(MsgCipher::new(key.as_bytes()).map_err(|e| Error::Usage(e.to_string()))?)
    };

    let first = o.command.first().map(String::as_str);
    if first == Some("discover") {
        let url = o.login_url.as_deref().unwrap_or("http://127.0.0.1:8080");
        let a = Client::discover_with_timeout(url, o.timeout)?;
        println!(
            "msg_server prior={} backup={} port={} msfs={}",
            a.prior_ip,
            a.backup_ip,
            a.port,
            esc(a.msfs_prior.as_bytes())
        );
        return Ok(true);
    }
    if matches!(first, Some("upload" | "download")) {
        let words: Vec<&str> = o.command.iter().map(String::as_str).collect();
        let url = o.login_url.as_deref().unwrap_or("http://127.0.0.1:8080");
        let flow = cli::msfs::execute(&words, o.msfs_url.as_deref(), Some(url), o.timeout)?;
        return Ok(!matches!(flow, Flow::Refused));
    }
    let interactive = match first {
        Some("login") => {
            let [_, user, password] = o.command.as_slice() else {
                return Err(Error::Usage("login needs USER and PASSWORD".into()));
            };
            o.user = Some(user.clone());
            o.password = Some(password.clone());
            o.command.clear();
            true
        }
        None => true,
        Some(_) => false,
    };
    let (Some(user), Some(password)) = (o.user.clone(), o.password.clone()) else {
        return Err(Error::Usage(
            "give `login USER PASSWORD` or --user and --password".into(),
        ));
    };

    // An explicit msfs URL wins over the discovered one.
    if let Some(url) = &o.msfs_url {
        cli::msfs::set_session_url(url);
    }
    let addr = match &o.msg_server {
        Some(hp) => MsgServerAddr::parse(hp)?,
        None => {
            let url = o.login_url.as_deref().unwrap_or("http://127.0.0.1:8080");
            let addr = Client::discover_with_timeout(url, o.timeout)?;
            cli::msfs::set_session_url(&addr.msfs_prior);
            addr
        }
    };

    let mut c = Client::connect(&addr)?;
    c.set_timeout(o.timeout);
    c.set_cipher(cipher);
    let info = c.login(&user, &password, o.client_type, o.status)?;
    println!(
        "login ok user_id={} name={} nick={} status={} server_time={}",
        info.user_id,
        esc(&info.user_info.user_domain),
        esc(&info.user_info.user_nick_name),
        status_name(info.online_status),
        info.server_time
    );

    if !interactive {
        let words: Vec<&str> = o.command.iter().map(String::as_str).collect();
        return execute(&mut c, &words).map(|flow| !matches!(flow, Flow::Refused));
    }
    Ok(interactive_loop(&mut c))
}

/// Reads commands from stdin (on a thread, so heartbeats keep going while it waits) until EOF,
/// `quit`/`logout`, or the connection closes. False if any command failed.
fn interactive_loop(c: &mut Client) -> bool {
    let (tx, rx) = mpsc::sync_channel::<String>(16);
    let tty = std::io::stdin().is_terminal();
    std::thread::spawn(move || {
        let stdin = std::io::stdin();
        for line in stdin.lock().lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut ok = true;
    loop {
        if tty {
            eprint!("> ");
            let _ = std::io::stderr().flush();
        }
        let line = loop {
            match rx.recv_timeout(Duration::from_secs(1)) {
                Ok(l) => break Some(l),
                Err(RecvTimeoutError::Disconnected) => break None,
                Err(RecvTimeoutError::Timeout) => {
                    // Heartbeat when due; take in what arrived (printed by `recv`).
                    if let Err(e) = c.keepalive() {
                        if matches!(e, Error::Closed) {
                            while let Ok(Some(ev)) = c.next_event(Duration::ZERO) {
                                print_event(&ev);
                            }
                            return ok;
                        }
                        eprintln!("error: {e}");
                    }
                }
            }
        };
        let Some(line) = line else { return ok };
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.is_empty() || words[0].starts_with('#') {
            continue;
        }
        match execute(c, &words) {
            Ok(Flow::Continue) => {}
            Ok(Flow::Refused) => ok = false,
            Ok(Flow::Exit) => return ok,
            Err(e) => {
                eprintln!("error: {e}");
                ok = false;
                if c.is_closed() {
                    // Report what arrived before the close, then stop.
                    while let Ok(Some(ev)) = c.next_event(Duration::ZERO) {
                        print_event(&ev);
                    }
                    return ok;
                }
            }
        }
        let _ = std::io::stdout().flush();
    }
}
