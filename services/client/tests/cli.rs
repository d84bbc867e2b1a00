//! `tt-cli` as a process against the fake msg_server (and a fake login_server for discovery):
//! one-shot and piped-stdin forms, output lines, exit codes.

mod common;

use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::process::Output;
use std::thread;

use common::tt_cli::{cli, run_with_stdin};
use common::{FakeMsgServer, members_changed, serve, serve_user};
use tt_client::MsgCipher;
use tt_client::tt_proto::pb::{base_define, buddy, group, login, message};

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
    let out = piped_session(
        fake.addr,
        &[],
        "user46",
        "unread\nstatus 47\n# a comment\n\nrecv 10\nread 47 10\nbogus\nlogout\nsend 1 never\n",
    );
    assert_lines(
        &out,
        &[
            "login ok user_id=46 name=user46 nick=nick user46 status=online server_time=1700000000",
            "unread total=3 sessions=1",
            "unread session=47 type=single count=3 latest_id=9 from=47 text=latest\\nline",
            "status user_id=47 status=online",
            "msg from=47 to=46 id=10 type=1 time=5 text=hi 46",
            "read session=47 msg_id=10",
            "logout result=0",
        ],
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

/// A piped tt-cli session of `user` against the fake at `addr`, with `options` before the
/// login; its output once stdin (`input`) is done.
fn piped_session(addr: SocketAddr, options: &[&str], user: &str, input: &str) -> Output {
    let mut cmd = cli();
    cmd.args(["--msg-server", &addr.to_string()])
        .args(options)
        .args(["login", user, "123456"]);
    run_with_stdin(cmd, input)
}

/// Asserts the session's stdout, line by line (stderr shown on a mismatch).
fn assert_lines(out: &Output, want: &[&str]) {
    assert_eq!(
        stdout(out).lines().collect::<Vec<_>>(),
        want,
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn group_commands_print_their_replies_and_events() {
    let fake = serve_user(48, "user48", |conn| {
        conn.answer(
            |_, _: group::ImNormalGroupListReq| group::ImNormalGroupListRsp {
                user_id: 48,
                group_version_list: vec![base_define::GroupVersionInfo {
                    group_id: 3,
                    version: 2,
                }],
                attach_data: None,
            },
        );
        conn.answer(|_, req: group::ImGroupCreateReq| {
            assert_eq!(
                (req.group_type, req.group_name.as_slice()),
                (2, &b"lunch"[..])
            );
            assert_eq!(req.member_id_list, vec![48, 49, 50]);
            group::ImGroupCreateRsp {
                user_id: 48,
                result_code: 0,
                group_id: Some(9),
                group_name: req.group_name,
                user_id_list: vec![48, 49, 50],
                attach_data: None,
            }
        });
        // `group add`, with a notify first.
        conn.answer(|conn, req: group::ImGroupChangeMemberReq| {
            assert_eq!((req.change_type, req.group_id), (1, 9));
            conn.notify(&group::ImGroupChangeMemberNotify {
                user_id: 49,
                change_type: 2,
                group_id: 3,
                cur_user_id_list: vec![48],
                chg_user_id_list: vec![49],
            });
            members_changed(48, 9, 1, 0, vec![48, 49, 50, 51], vec![51])
        });
        // `group remove`: refused.
        conn.answer(|_, req: group::ImGroupChangeMemberReq| {
            assert_eq!((req.change_type, req.member_id_list), (2, vec![49]));
            members_changed(48, 9, 2, 1, vec![], vec![])
        });
        conn.answer(
            |_, _: group::ImGroupInfoListReq| group::ImGroupInfoListRsp {
                user_id: 48,
                group_info_list: vec![base_define::GroupInfo {
                    group_id: 9,
                    version: 2,
                    group_name: "lunch at 12".into(),
                    group_avatar: Vec::new(),
                    group_creator_id: 48,
                    group_type: 2,
                    shield_status: 0,
                    group_member_list: vec![48, 49, 50, 51],
                }],
                attach_data: None,
            },
        );
        conn.answer(|_, req: group::ImGroupShieldReq| {
            assert_eq!((req.group_id, req.shield_status), (9, 1));
            group::ImGroupShieldRsp {
                user_id: 48,
                group_id: 9,
                result_code: 0,
                attach_data: None,
            }
        });
        conn.answer(|_, m: message::ImMsgData| {
            assert_eq!((m.to_session_id, m.msg_type), (9, 17));
            message::ImMsgDataAck {
                user_id: 48,
                session_id: 9,
                msg_id: 4,
                session_type: 2,
            }
        });
        conn.answer(|_, req: message::ImGetMsgListReq| {
            assert_eq!((req.session_type, req.session_id, req.msg_cnt), (2, 9, 1));
            message::ImGetMsgListRsp {
                user_id: 48,
                session_type: 2,
                session_id: 9,
                msg_id_begin: 0,
                msg_list: vec![base_define::MsgInfo {
                    msg_id: 4,
                    from_session_id: 48,
                    create_time: 7,
                    msg_type: 17,
                    msg_data: MsgCipher::default().encrypt(b"hi all").expect("e"),
                }],
                attach_data: None,
            }
        });
        // Open until the client quits, so `recv 0` sees no close.
        conn.expect_end_of_stream();
    });
    let out = piped_session(
        fake.addr,
        &[],
        "user48",
        "groups\ngroup create lunch 48 49 50\ngroup add 9 51\ngroup remove 9 49\n\
         group info 9\nshield 9 on\ngsend 9 hi all\nhistory g9 1\nrecv 0\nquit\n",
    );
    assert_lines(
        &out,
        &[
            "login ok user_id=48 name=user48 nick=nick user48 status=online server_time=1700000000",
            "groups count=1",
            "group id=3 version=2",
            "group-created result=0 group=9 members=48,49,50 name=lunch",
            "group-members result=0 group=9 change=add changed=51 current=48,49,50,51",
            "group-members result=1 group=9 change=remove changed= current=",
            "group-info count=1",
            "group id=9 version=2 type=tmp creator=48 shield=0 members=48,49,50,51 avatar= name=lunch at 12",
            "group-shield result=0 group=9 status=1",
            "sent to=9 msg_id=4 type=group seq=8",
            "history session=g9 count=1",
            "msg from=48 to=9 id=4 type=17 time=7 text=hi all",
            "group-members user_id=49 group=3 change=remove changed=49 current=48",
        ],
    );
    // The refused removal makes the session's exit status 1.
    assert_eq!(out.status.code(), Some(1));
    fake.finish();
}

#[test]
fn buddy_and_push_commands_and_text_printed_as_it_is() {
    let fake = serve_user(49, "user49", |conn| {
        conn.answer(|_, req: buddy::ImChangeSignInfoReq| {
            assert_eq!(req.sign_info, "out to lunch 🍜".as_bytes());
            buddy::ImChangeSignInfoRsp {
                user_id: 49,
                result_code: 0,
                sign_info: Some(req.sign_info),
                attach_data: None,
            }
        });
        conn.answer(|_, req: buddy::ImChangeAvatarReq| {
            assert_eq!(req.avatar_url, b"http://x/49.png");
            buddy::ImChangeAvatarRsp {
                user_id: 49,
                result_code: 0,
                attach_data: None,
            }
        });
        // Text with spaces, a control character and bytes that are not UTF-8.
        conn.answer(|_, _: buddy::ImUsersInfoReq| {
            let mut u = common::user(50, "user50");
            u.user_nick_name = b"User 50".to_vec();
            u.user_real_name = b"bad \xff byte".to_vec();
            u.avatar_url = b"http://x/50.png".to_vec();
            u.sign_info = Some(b"line1\nline2\x07 \\".to_vec());
            buddy::ImUsersInfoRsp {
                user_id: 49,
                user_info_list: vec![u],
                attach_data: None,
            }
        });
        // `rmsession single 50`, with another user's signature notify first.
        conn.answer(|conn, req: buddy::ImRemoveSessionReq| {
            assert_eq!((req.session_type, req.session_id), (1, 50));
            conn.notify(&buddy::ImSignInfoChangedNotify {
                changed_user_id: 50,
                sign_info: "busy now".into(),
            });
            buddy::ImRemoveSessionRsp {
                user_id: 49,
                result_code: 0,
                session_type: 1,
                session_id: 50,
                attach_data: None,
            }
        });
        conn.answer(
            |_, _: login::ImQueryPushShieldReq| login::ImQueryPushShieldRsp {
                user_id: 49,
                result_code: 0,
                shield_status: Some(0),
                attach_data: None,
            },
        );
        conn.answer(|_, req: login::ImPushShieldReq| {
            assert_eq!(req.shield_status, 1);
            login::ImPushShieldRsp {
                user_id: 49,
                result_code: 0,
                shield_status: Some(1),
                attach_data: None,
            }
        });
        conn.answer(|_, req: login::ImDeviceTokenReq| {
            assert_eq!(req.device_token, b"abc123");
            login::ImDeviceTokenRsp {
                user_id: 49,
                attach_data: None,
            }
        });
        conn.expect_end_of_stream();
    });
    let out = piped_session(
        fake.addr,
        &["--client-type", "android"],
        "user49",
        "sign out to  lunch 🍜\navatar http://x/49.png\nwhois 50\nrmsession single 50\n\
         shield\nshield on\ntoken abc123\nrmsession both 50\nrecv 0\nquit\n",
    );
    assert_lines(
        &out,
        &[
            "login ok user_id=49 name=user49 nick=nick user49 status=online server_time=1700000000",
            "sign result=0 sign=out to lunch 🍜",
            "avatar result=0",
            "whois count=1",
            "user id=50 name=user50 dept=1 status=0 gender=1 nick=User 50 real=bad \\xff byte \
             email=user50@example.org tel=123 avatar=http://x/50.png sign=line1\\nline2\\x07 \\\\",
            "rmsession result=0 session=50 type=single",
            "push-shield result=0 status=0",
            "push-shield result=0 status=1",
            "token ok",
            "sign-changed user_id=50 sign=busy now",
        ],
    );
    // `rmsession both 50` is bad usage: reported, and the exit status is 1.
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("rmsession: single or group, got \"both\"")
    );
    fake.finish();
}

#[test]
fn a_refused_one_shot_command_exits_with_1() {
    let fake = serve_user(44, "user44", |conn| {
        conn.answer(
            |_, _: buddy::ImChangeSignInfoReq| buddy::ImChangeSignInfoRsp {
                user_id: 44,
                result_code: 1,
                sign_info: None,
                attach_data: None,
            },
        );
    });
    let out = cli()
        .args([
            "--msg-server",
            &fake.addr.to_string(),
            "--user",
            "user44",
            "--password",
            "123456",
            "sign",
            "too",
            "long",
        ])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("sign result=1 sign=\n"),
        "{}",
        stdout(&out)
    );
    fake.finish();
}
