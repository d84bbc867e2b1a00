//! `tt-cli` as a process against the fake msg_server (and a fake login_server for discovery):
//! one-shot and piped-stdin forms, output lines, exit codes.

mod common;

use std::io::Write;
use std::net::TcpListener;
use std::process::{Command, Output, Stdio};
use std::thread;

use common::{FakeMsgServer, serve, serve_user};
use tt_client::MsgCipher;
use tt_client::tt_proto::pb::{base_define, login, message};

fn cli() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tt-cli"));
    c.env("RUST_LOG", "warn");
    c
}

fn run_with_stdin(mut cmd: Command, input: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tt-cli");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("tt-cli output")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn one_shot_send_prints_the_ack() {
    let fake = serve_user(44, "user44", |conn| {
        let p = conn.read_request();
        let m: message::ImMsgData = p.decode_checked().expect("msg");
        assert_eq!(m.to_session_id, 45);
        assert_eq!(
            MsgCipher::default().decrypt(&m.msg_data).expect("dec"),
            b"hello there"
        );
        conn.reply(
            &p.header,
            &message::ImMsgDataAck {
                user_id: 44,
                session_id: 45,
                msg_id: 17,
                session_type: 1,
            },
        );
    });
    let mut cmd = cli();
    cmd.args([
        "--msg-server",
        &fake.addr.to_string(),
        "--user",
        "user44",
        "--password",
        "123456",
        "send",
        "45",
        "hello",
        "there",
    ]);
    let out = cmd.output().expect("run");
    let text = stdout(&out);
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("login ok user_id=44 name=user44"), "{text}");
    assert!(text.contains("sent to=45 msg_id=17 type=single"), "{text}");
    fake.finish();
}

#[test]
fn one_shot_login_refusal_exits_nonzero() {
    let fake = serve(|conn| {
        conn.refuse_login(6, "bad password");
    });
    let out = cli()
        .args([
            "--msg-server",
            &fake.addr.to_string(),
            "--user",
            "user44",
            "--password",
            "nope",
            "unread",
        ])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("login refused: code 6"), "{err}");
    assert!(stdout(&out).is_empty());
    fake.finish();
}

#[test]
fn piped_commands_run_in_order_and_print_events() {
    let fake = serve_user(46, "user46", |conn| {
        // unread
        let p = conn.expect_request(0x0307);
        conn.reply(
            &p.header,
            &message::ImUnreadMsgCntRsp {
                user_id: 46,
                total_cnt: 3,
                unreadinfo_list: vec![base_define::UnreadInfo {
                    session_id: 47,
                    session_type: 1,
                    unread_cnt: 3,
                    latest_msg_id: 9,
                    latest_msg_data: MsgCipher::default().encrypt(b"latest\nline").expect("e"),
                    latest_msg_type: 1,
                    latest_msg_from_user_id: 47,
                }],
                attach_data: None,
            },
        );
        // An incoming message, then the status reply.
        let p = conn.expect_request(0x020a);
        conn.notify(&message::ImMsgData {
            from_user_id: 47,
            to_session_id: 46,
            msg_id: 10,
            create_time: 5,
            msg_type: 1,
            msg_data: MsgCipher::default().encrypt(b"hi 46").expect("e"),
            attach_data: None,
        });
        conn.reply(
            &p.header,
            &tt_client::tt_proto::pb::buddy::ImUsersStatRsp {
                user_id: 46,
                user_stat_list: vec![base_define::UserStat {
                    user_id: 47,
                    status: 1,
                }],
                attach_data: None,
            },
        );
        // read ack, then logout
        conn.expect_request(0x0303);
        let p = conn.expect_request(0x0105);
        conn.reply(&p.header, &login::ImLogoutRsp { result_code: 0 });
    });
    let mut cmd = cli();
    cmd.args([
        "--msg-server",
        &fake.addr.to_string(),
        "login",
        "user46",
        "123456",
    ]);
    let out = run_with_stdin(
        cmd,
        "unread\nstatus 47\n# a comment\n\nrecv 10\nread 47 10\nbogus\nlogout\nsend 1 never\n",
    );
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        vec![
            "login ok user_id=46 name=user46 nick=nick user46 status=online server_time=1700000000",
            "unread total=3 sessions=1",
            "unread session=47 type=single count=3 latest_id=9 from=47 text=latest\\nline",
            "status user_id=47 status=online",
            "msg from=47 to=46 id=10 type=1 time=5 text=hi 46",
            "read session=47 msg_id=10",
            "logout result=0",
        ],
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // `bogus` failed: exit status 1, error on stderr.
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown command \"bogus\""));
    fake.finish();
}

#[test]
fn discover_command_and_bad_usage() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let h = thread::spawn(move || {
        use std::io::Read;
        let (mut s, _) = listener.accept().expect("accept");
        let mut buf = [0u8; 1024];
        let _ = s.read(&mut buf).expect("read");
        let body = "{\"code\":0,\"priorIP\":\"10.1.2.3\",\"backupIP\":\"10.1.2.4\",\"port\":\"8123\",\"msfsPrior\":\"http://x:8700/\"}";
        let reply = format!(
            "HTTP/1.1 200 OK\r\nConnection:close\r\nContent-Length:{}\r\n\r\n{body}",
            body.len()
        );
        s.write_all(reply.as_bytes()).expect("write");
    });
    let out = cli()
        .args(["--login-url", &url, "discover"])
        .output()
        .expect("run");
    assert!(out.status.success());
    assert_eq!(
        stdout(&out).trim(),
        "msg_server prior=10.1.2.3 backup=10.1.2.4 port=8123 msfs=http://x:8700/"
    );
    h.join().expect("server");

    let out = cli().args(["--bogus"]).output().expect("run");
    assert_eq!(out.status.code(), Some(2));
    let out = cli()
        .args(["--aes-key", "short", "discover"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let out = cli().args(["--help"]).output().expect("run");
    assert!(out.status.success());
    assert!(stdout(&out).contains("usage: tt-cli"));
}
