//! `tt-cli`: log in to a TeamTalk system and run commands, one-shot or from stdin.
//! See services/client/README.md.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use tt_client::{
    Client, ClientType, DEFAULT_AES_KEY, Error, Event, Message, MsgCipher, MsgServerAddr, Session,
    UserInfo, UserStatType, text,
};

const USAGE: &str = "\
usage: tt-cli [OPTIONS] login USER PASSWORD      log in, then read commands from stdin
       tt-cli [OPTIONS] --user U --password P [COMMAND ARGS...]
                                                 log in, run one command and exit
                                                 (no command: read commands from stdin)
       tt-cli [OPTIONS] discover                 print the msg_server login_server picks

options:
  --login-url URL      login_server HTTP address (default http://127.0.0.1:8080)
  --msg-server H:P     connect to this msg_server, skip discovery
  --user NAME          login name
  --password PASS      plain password (sent as its MD5 hex)
  --client-type T      windows | mac | ios | android (default windows)
  --status S           online | leave (default online)
  --aes-key KEY        32-byte message key (default the original clients' key)
  --plain              send and show message text unencrypted
  --timeout SECS       reply timeout (default 10)
  -h, --help           this text

commands: type `help` after logging in, or see services/client/README.md";

const HELP: &str = "\
send <user_id> <text...>        send a text message, wait for its ack
gsend <group_id> <text...>      send a group text message
recv [seconds]                  wait up to seconds (default 1) for a message, print every event
history <peer_id> [count] [begin_msg_id]
                                messages of a conversation, newest first (count 20)
getmsg <peer_id> <msg_id...>    messages by id
latest <peer_id>                newest message id of a conversation
unread                          unread counts
sessions                        recent sessions
users                           all users
whois <user_id...>              user records
status <user_id...>             online status
depts                           departments
read <peer_id> <msg_id>         mark read (no reply)
time                            server time
heartbeat                       heartbeat round trip
help                            this text
logout                          log out and exit
quit                            close and exit";

#[derive(Debug)]
struct Options {
    login_url: Option<String>,
    msg_server: Option<String>,
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
            esc_field(&a.msfs_prior)
        );
        return Ok(true);
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

    let addr = match &o.msg_server {
        Some(hp) => MsgServerAddr::parse(hp)?,
        None => {
            let url = o.login_url.as_deref().unwrap_or("http://127.0.0.1:8080");
            Client::discover_with_timeout(url, o.timeout)?
        }
    };
    let mut c = Client::connect(&addr)?;
    c.set_timeout(o.timeout);
    c.set_cipher(cipher);
    let info = c.login(&user, &password, o.client_type, o.status)?;
    println!(
        "login ok user_id={} name={} nick={} status={} server_time={}",
        info.user_id,
        esc_field(&text(&info.user_info.user_domain)),
        esc_field(&text(&info.user_info.user_nick_name)),
        status_name(info.online_status),
        info.server_time
    );

    if !interactive {
        let words: Vec<&str> = o.command.iter().map(String::as_str).collect();
        return match execute(&mut c, &words) {
            Ok(_) => Ok(true),
            Err(e) => Err(e),
        };
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

enum Flow {
    Continue,
    Exit,
}

fn arg_u32(words: &[&str], i: usize, what: &str) -> Result<u32, Error> {
    let w = words
        .get(i)
        .ok_or_else(|| Error::Usage(format!("{}: missing {what}", words[0])))?;
    w.parse()
        .map_err(|_| Error::Usage(format!("{}: {what} must be a number, got {w:?}", words[0])))
}

fn arg_u32_opt(words: &[&str], i: usize, what: &str, default: u32) -> Result<u32, Error> {
    if words.len() > i {
        arg_u32(words, i, what)
    } else {
        Ok(default)
    }
}

fn ids_from(words: &[&str], from: usize, what: &str) -> Result<Vec<u32>, Error> {
    if words.len() <= from {
        return Err(Error::Usage(format!("{}: missing {what}", words[0])));
    }
    (from..words.len())
        .map(|i| arg_u32(words, i, what))
        .collect()
}

/// The text after the first `skip` words of `words`, joined by single spaces.
fn rest(words: &[&str], skip: usize) -> String {
    words[skip.min(words.len())..].join(" ")
}

fn execute(c: &mut Client, words: &[&str]) -> Result<Flow, Error> {
    match words[0] {
        "send" | "gsend" => {
            let to = arg_u32(words, 1, "user id")?;
            let body = rest(words, 2);
            if body.is_empty() {
                return Err(Error::Usage(format!("{}: missing text", words[0])));
            }
            let ack = if words[0] == "send" {
                c.send_text(to, &body)?
            } else {
                c.send_group_text(to, &body)?
            };
            println!(
                "sent to={} msg_id={} type={} seq={}",
                ack.session_id,
                ack.msg_id,
                session_type_name(ack.session_type),
                ack.seq
            );
        }
        "recv" => {
            let secs: f64 = match words.get(1) {
                Some(w) => w
                    .parse()
                    .ok()
                    .filter(|s: &f64| s.is_finite() && *s >= 0.0 && *s < 86_400.0)
                    .ok_or_else(|| Error::Usage(format!("recv: bad seconds {w:?}")))?,
                None => 1.0,
            };
            let mut n = 0;
            let deadline = std::time::Instant::now() + Duration::from_secs_f64(secs);
            let mut done_waiting = false;
            loop {
                let wait = if done_waiting {
                    Duration::ZERO
                } else {
                    deadline.saturating_duration_since(std::time::Instant::now())
                };
                match c.next_event(wait) {
                    Ok(Some(ev)) => {
                        print_event(&ev);
                        n += 1;
                        if matches!(ev, Event::Closed) {
                            break;
                        }
                        // Once a message (or a kick) came, print only what is already there;
                        // notices (status changes…) do not end the wait.
                        if matches!(ev, Event::Message(_) | Event::Kicked { .. }) {
                            done_waiting = true;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => return Err(e),
                }
            }
            if n == 0 {
                println!("recv none");
            }
        }
        "history" => {
            let peer = arg_u32(words, 1, "peer id")?;
            let count = arg_u32_opt(words, 2, "count", 20)?;
            let begin = arg_u32_opt(words, 3, "begin msg id", 0)?;
            let list = c.get_msg_list(peer, begin, count)?;
            println!("history session={peer} count={}", list.len());
            for m in &list {
                print_message(m);
            }
        }
        "getmsg" => {
            let peer = arg_u32(words, 1, "peer id")?;
            let ids = ids_from(words, 2, "msg id")?;
            let list = c.get_msgs_by_id(peer, &ids)?;
            println!("getmsg session={peer} count={}", list.len());
            for m in &list {
                print_message(m);
            }
        }
        "latest" => {
            let peer = arg_u32(words, 1, "peer id")?;
            let id = c.latest_msg_id(peer)?;
            println!("latest session={peer} msg_id={id}");
        }
        "unread" => {
            let u = c.unread_counts()?;
            println!("unread total={} sessions={}", u.total, u.sessions.len());
            for s in &u.sessions {
                println!(
                    "unread session={} type={} count={} latest_id={} from={} {}",
                    s.session_id,
                    session_type_name(s.session_type),
                    s.unread_cnt,
                    s.latest.msg_id,
                    s.latest.from,
                    content(&s.latest)
                );
            }
        }
        "sessions" => {
            let list = c.recent_sessions(0)?;
            println!("sessions count={}", list.len());
            for s in &list {
                println!(
                    "session id={} type={} status={} updated={} latest_id={} from={} {}",
                    s.session_id,
                    session_type_name(s.session_type),
                    s.session_status,
                    s.updated_time,
                    s.latest.msg_id,
                    s.latest.from,
                    content(&s.latest)
                );
            }
        }
        "users" => {
            let (list, _) = c.all_users(0)?;
            println!("users count={}", list.len());
            for u in &list {
                print_user(u);
            }
        }
        "whois" => {
            let ids = ids_from(words, 1, "user id")?;
            let list = c.user_info(&ids)?;
            println!("whois count={}", list.len());
            for u in &list {
                print_user(u);
            }
        }
        "status" => {
            let ids = ids_from(words, 1, "user id")?;
            for s in c.users_status(&ids)? {
                println!(
                    "status user_id={} status={}",
                    s.user_id,
                    status_name(s.status)
                );
            }
        }
        "depts" => {
            let list = c.departments(0)?;
            println!("depts count={}", list.len());
            for d in &list {
                println!(
                    "dept id={} parent={} priority={} status={} name={}",
                    d.dept_id,
                    d.parent_dept_id,
                    d.priority,
                    d.dept_status,
                    esc(&text(&d.dept_name))
                );
            }
        }
        "read" => {
            let peer = arg_u32(words, 1, "peer id")?;
            let msg_id = arg_u32(words, 2, "msg id")?;
            c.read_ack(Session::user(peer), msg_id)?;
            println!("read session={peer} msg_id={msg_id}");
        }
        "time" => println!("time server_time={}", c.server_time()?),
        "heartbeat" => {
            let rtt = c.heartbeat()?;
            println!("heartbeat ok rtt_ms={}", rtt.as_millis());
        }
        "help" => println!("{HELP}"),
        "logout" => {
            let code = c.logout()?;
            println!("logout result={code}");
            return Ok(Flow::Exit);
        }
        "quit" | "exit" => {
            c.close();
            return Ok(Flow::Exit);
        }
        other => {
            return Err(Error::Usage(format!(
                "unknown command {other:?} (try help)"
            )));
        }
    }
    Ok(Flow::Continue)
}

fn print_event(ev: &Event) {
    match ev {
        Event::Message(m) => print_message(m),
        Event::Kicked { user_id, reason } => println!("kick user_id={user_id} reason={reason}"),
        Event::UserStatus { user_id, status } => {
            println!(
                "status-notify user_id={user_id} status={}",
                status_name(*status)
            )
        }
        Event::ReadNotify {
            user_id,
            session_id,
            msg_id,
            session_type,
        } => println!(
            "read-notify user_id={user_id} session={session_id} type={} msg_id={msg_id}",
            session_type_name(*session_type)
        ),
        Event::PcLoginStatus { user_id, status } => {
            println!("pc-login user_id={user_id} status={}", status_name(*status))
        }
        Event::SessionRemoved {
            user_id,
            session_id,
            session_type,
        } => println!(
            "session-removed user_id={user_id} session={session_id} type={}",
            session_type_name(*session_type)
        ),
        Event::SignInfoChanged { user_id, sign_info } => {
            println!("sign-changed user_id={user_id} sign={}", esc(sign_info))
        }
        Event::Other(p) => println!(
            "pdu cmd={:#06x} name={} seq={} len={}",
            p.header.command_id,
            tt_client::tt_proto::ids::cid_name(p.header.command_id).unwrap_or("unknown"),
            p.header.seq_num,
            p.body.len()
        ),
        Event::Closed => println!("closed"),
    }
}

fn print_message(m: &Message) {
    println!(
        "msg from={} to={} id={} type={} time={} {}",
        m.from,
        m.to,
        m.msg_id,
        m.msg_type,
        m.create_time,
        content(m)
    );
}

/// `text=...` when the content is readable text, else `raw=...` (the bytes as received).
fn content(m: &Message) -> String {
    match &m.text {
        Some(t) => format!("text={}", esc(t)),
        None => format!("raw={}", esc(&text(&m.raw))),
    }
}

fn print_user(u: &UserInfo) {
    println!(
        "user id={} name={} dept={} status={} gender={} nick={} real={} email={} tel={} sign={}",
        u.user_id,
        esc_field(&text(&u.user_domain)),
        u.department_id,
        u.status,
        u.user_gender,
        esc_field(&text(&u.user_nick_name)),
        esc_field(&text(&u.user_real_name)),
        esc_field(&text(&u.email)),
        esc_field(&text(&u.user_tel)),
        esc(&text(u.sign_info.as_deref().unwrap_or_default()))
    );
}

fn status_name(s: i32) -> String {
    match s {
        1 => "online".into(),
        2 => "offline".into(),
        3 => "leave".into(),
        n => n.to_string(),
    }
}

fn session_type_name(t: i32) -> String {
    match t {
        1 => "single".into(),
        2 => "group".into(),
        n => n.to_string(),
    }
}

/// One-line form of a value that ends the line: backslash, CR, LF and tab escaped.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// Like [`esc`], for a value followed by more fields: spaces are escaped too (`\x20`), and an
/// empty value is shown as `-`.
fn esc_field(s: &str) -> String {
    if s.is_empty() {
        return "-".into();
    }
    esc(s).replace(' ', "\\x20")
}
