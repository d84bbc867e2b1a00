//! The client against the real daemons: db_proxy_server, route_server, login_server and
//! msg_server on free ports (`tt_testkit::Stack`), the project-local MariaDB and Redis, the
//! seeded users of `tt_testkit::users::CLIENT_LIVE`. Needs the daemon binaries:
//! `cargo build --workspace --bins` (scripts/test.sh does it).

mod common;

use std::time::Duration;

use common::tt_cli::{cli, run_with_stdin};
use tt_client::{Client, ClientType, Error, Event, MsgServerAddr, UserStatType};
use tt_testkit::Stack;
use tt_testkit::users::{CLIENT_LIVE as USERS, PASSWORD, SEEDED};

const GUARD: Duration = Duration::from_secs(30);

/// The stack has waited until login_server registered the msg_server.
fn discover(url: &str) -> MsgServerAddr {
    Client::discover(url).unwrap_or_else(|e| panic!("discovery failed: {e}"))
}

/// The stack has waited for msg_server's links: the login must succeed at once.
fn login(addr: &MsgServerAddr, user: &str) -> Client {
    let mut c = Client::connect(addr).expect("connect to msg_server");
    let info = c
        .login(
            user,
            PASSWORD,
            ClientType::Windows,
            UserStatType::UserStatusOnline,
        )
        .unwrap_or_else(|e| panic!("login of {user} failed: {e}"));
    assert_eq!(info.user_id, c.user_id());
    assert_eq!(tt_client::text(&info.user_info.user_domain), user);
    c
}

#[test]
fn discover_login_send_receive_history() {
    let stack = Stack::start("tt-client-live", 1);
    let addr = discover(&stack.login_url());
    assert_ne!(addr.port, 0);
    assert_eq!(
        addr.port,
        stack.msg_port(0),
        "discovery hands out the one msg_server"
    );

    let (a_id, b_id) = (USERS.id(0), USERS.id(1));
    let mut a = login(&addr, &USERS.name(0));
    let mut b = login(&addr, &USERS.name(1));
    assert_eq!((a.user_id(), b.user_id()), (a_id, b_id));

    let first = a.send_text(b_id, "live hello 你好").expect("send 1");
    assert_eq!((first.session_id, first.session_type), (b_id, 1));
    assert!(first.msg_id > 0);
    let got = b
        .wait_for(
            GUARD,
            |e| matches!(e, Event::Message(m) if m.msg_id == first.msg_id),
        )
        .expect("wait")
        .expect("message delivered to b");
    match got {
        Event::Message(m) => {
            assert_eq!((m.from, m.to), (a_id, b_id));
            assert_eq!(m.text.as_deref(), Some("live hello 你好"));
        }
        other => panic!("{other:?}"),
    }

    let second = a.send_text(b_id, "second").expect("send 2");
    assert_eq!(second.msg_id, first.msg_id + 1);
    b.wait_for(
        GUARD,
        |e| matches!(e, Event::Message(m) if m.msg_id == second.msg_id),
    )
    .expect("wait")
    .expect("second message delivered");

    let history = b.get_msg_list(a_id, 0, 2).expect("history");
    let ids: Vec<u32> = history.iter().map(|m| m.msg_id).collect();
    assert_eq!(ids, vec![second.msg_id, first.msg_id]);
    assert_eq!(history[0].text.as_deref(), Some("second"));
    assert_eq!(history[1].text.as_deref(), Some("live hello 你好"));

    assert_eq!(b.latest_msg_id(a_id).expect("latest"), second.msg_id);
    let unread = b.unread_counts().expect("unread");
    let from_a = unread
        .sessions
        .iter()
        .find(|s| s.session_id == a_id)
        .expect("unread session with a");
    assert!(from_a.unread_cnt >= 2);
    assert_eq!(from_a.latest.msg_id, second.msg_id);
    b.read_ack(a_id, second.msg_id).expect("read ack");

    let status = a.users_status(&[b_id]).expect("status");
    assert_eq!(status.len(), 1);
    assert_eq!(
        (status[0].user_id, status[0].status),
        (b_id, UserStatType::UserStatusOnline as i32)
    );
    let info = a.user_info(&[b_id]).expect("user info");
    assert_eq!(info[0].user_id, b_id);
    assert!(a.server_time().expect("time") > 0);
    a.heartbeat().expect("heartbeat echo");
    assert_eq!(a.logout().expect("logout"), 0);

    // A wrong password is refused with the original code.
    let mut c = Client::connect(&addr).expect("connect");
    match c.login(
        &USERS.name(2),
        "wrong",
        ClientType::Windows,
        UserStatType::UserStatusOnline,
    ) {
        Err(Error::Login { code, .. }) => assert_eq!(code, 6),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn cli_one_shot_and_piped_against_the_daemons() {
    let stack = Stack::start("tt-client-live", 1);
    let login_url = stack.login_url();
    let addr = discover(&login_url);
    // a sends from the cli, b receives.
    let (a_id, a_name) = (USERS.id(3), USERS.name(3));
    let (b_id, b_name) = (USERS.id(4), USERS.name(4));
    let mut b = login(&addr, &b_name);

    // One-shot send from a through discovery.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tt-cli"))
        .args([
            "--login-url",
            &login_url,
            "--user",
            &a_name,
            "--password",
            PASSWORD,
            "send",
            &b_id.to_string(),
            "from the cli",
        ])
        .output()
        .expect("run tt-cli");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "tt-cli failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("login ok user_id={a_id} name={a_name}")),
        "{stdout}"
    );
    let sent = stdout
        .lines()
        .find_map(|l| l.strip_prefix(&format!("sent to={b_id} msg_id=")))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|id| id.parse::<u32>().ok())
        .expect("a `sent` line with the msg id");
    let got = b
        .wait_for(
            GUARD,
            |e| matches!(e, Event::Message(m) if m.msg_id == sent),
        )
        .expect("wait")
        .expect("the cli's message reaches b");
    match got {
        Event::Message(m) => {
            assert_eq!(m.from, a_id);
            assert_eq!(m.text.as_deref(), Some("from the cli"));
        }
        other => panic!("{other:?}"),
    }

    // Piped session of a: history shows the message, decrypted.
    let server = format!("{}:{}", addr.prior_ip, addr.port);
    let stdout = run_cli(
        &["--msg-server", &server, "login", &a_name, PASSWORD],
        &format!(
            "history {b_id} 1\nlatest {b_id}\nwhois {b_id}\nstatus {b_id}\nsessions\nusers\n\
             depts\ntime\nheartbeat\nrecv 0\nlogout\n"
        ),
    );
    assert!(
        stdout.contains(&format!("history session={b_id} count=1")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("msg from={a_id} to={b_id} id={sent} type=1 "))
            && stdout.contains("text=from the cli"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("latest session={b_id} msg_id={sent}")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("user id={b_id} name={b_name}")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("status user_id={b_id} status=online")),
        "{stdout}"
    );
    assert!(
        stdout.lines().any(
            |l| l.starts_with(&format!("session id={b_id} type=single "))
                && l.contains(&format!("latest_id={sent} from="))
                && l.ends_with(" text=from the cli")
        ),
        "{stdout}"
    );
    // The seeded users, and those other tests may add.
    let users: usize = stdout
        .lines()
        .find_map(|l| l.strip_prefix("users count="))
        .and_then(|n| n.parse().ok())
        .expect("users count line");
    assert!(users >= SEEDED.len() as usize, "{stdout}");
    assert!(
        stdout.lines().any(|l| l.starts_with("depts count=")),
        "{stdout}"
    );
    assert!(
        stdout.lines().any(|l| l.starts_with("time server_time=")),
        "{stdout}"
    );
    assert!(stdout.contains("heartbeat ok"), "{stdout}");
    // `recv 0` prints what already arrived (e.g. route_server's status notify for our own
    // login), or `recv none`.
    assert!(
        stdout.contains("recv none") || stdout.contains("status-notify user_id="),
        "{stdout}"
    );
    assert!(stdout.contains("logout result=0"), "{stdout}");
    b.read_ack(a_id, sent).expect("read ack");
}

/// Runs tt-cli with `args`, `input` on its stdin; its stdout, after asserting it succeeded.
fn run_cli(args: &[&str], input: &str) -> String {
    let mut cmd = cli();
    cmd.args(args);
    let out = run_with_stdin(cmd, input);
    assert!(
        out.status.success(),
        "tt-cli failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn cli_group_and_settings_commands_against_the_daemons() {
    let stack = Stack::start("tt-client-live", 1);
    let addr = discover(&stack.login_url());
    let server = format!("{}:{}", addr.prior_ip, addr.port);
    let (a_id, a_name) = (USERS.id(5), USERS.name(5));
    let (b_id, c_id) = (USERS.id(6), USERS.id(7));
    let mut b = login(&addr, &USERS.name(6));

    // One shot: a temporary group of a and b.
    let stdout = run_cli(
        &[
            "--msg-server",
            &server,
            "--user",
            &a_name,
            "--password",
            PASSWORD,
            "group",
            "create",
            "live-cli",
            &a_id.to_string(),
            &b_id.to_string(),
        ],
        "",
    );
    let gid: u32 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("group-created result=0 group="))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("a group-created line with the group id: {stdout}"));
    assert!(
        stdout.contains(&format!("members={a_id},{b_id} name=live-cli")),
        "{stdout}"
    );

    // A piped session of a: the group's commands, then the push settings.
    let stdout = run_cli(
        &["--msg-server", &server, "login", &a_name, PASSWORD],
        &format!(
            "gsend {gid} hello group\nhistory g{gid} 1\nlatest g{gid}\ngroup add {gid} {c_id}\n\
             group remove {gid} {c_id}\ngroup info {gid}\nshield {gid} on\nshield {gid} off\n\
             groups\nshield on\nshield\nshield off\nlogout\n"
        ),
    );
    let sent: u32 = stdout
        .lines()
        .find_map(|l| l.strip_prefix(&format!("sent to={gid} msg_id=")))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("a `sent` line with the msg id: {stdout}"));
    for want in [
        format!("history session=g{gid} count=1"),
        format!("msg from={a_id} to={gid} id={sent} type=17 "),
        format!("latest session=g{gid} msg_id={sent}"),
        format!("group-members result=0 group={gid} change=add changed={c_id} current="),
        format!("group-members result=0 group={gid} change=remove changed={c_id} current="),
        format!("group id={gid} version="),
        format!("group-shield result=0 group={gid} status=1"),
        format!("group-shield result=0 group={gid} status=0"),
        "push-shield result=0 status=1".into(),
        "push-shield result=0 status=0".into(),
        "logout result=0".into(),
    ] {
        assert!(stdout.contains(&want), "no {want:?} in:\n{stdout}");
    }
    assert!(
        stdout.lines().any(|l| l.starts_with("groups count=")),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with(&format!("group id={gid} "))
                && l.contains(" type=tmp ")
                && l.contains(&format!(" creator={a_id} "))
                && l.ends_with(" name=live-cli")),
        "{stdout}"
    );

    // b, a member, received the message and the member changes.
    let got = b
        .wait_for(
            GUARD,
            |e| matches!(e, Event::Message(m) if m.msg_id == sent && m.to == gid),
        )
        .expect("wait")
        .expect("the group message reaches b");
    match got {
        Event::Message(m) => assert_eq!(m.text.as_deref(), Some("hello group")),
        other => panic!("{other:?}"),
    }
    for change in [1, 2] {
        b.wait_for(GUARD, |e| {
            matches!(e, Event::GroupMembersChanged { group_id, change_type, changed, .. }
                if *group_id == gid && *change_type == change && changed == &[c_id])
        })
        .expect("wait")
        .unwrap_or_else(|| panic!("b was not told of member change {change}"));
    }
}
