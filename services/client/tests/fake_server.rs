//! The client against a scripted fake msg_server: seq matching, events queued while a request
//! waits, encryption on the wire, login refusal, close, timeouts, bounds, bad frames.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{FakeMsgServer, serve, serve_user, user};
use tt_client::tt_proto::pb::{base_define, buddy, login, message};
use tt_client::tt_proto::{Command, Pdu};
use tt_client::{
    Client, ClientType, Error, Event, MsgCipher, MsgType, Session, UserStatType, password_md5,
};

const WAIT: Duration = Duration::from_secs(20);

/// A client connected to `addr` and logged in as user41.
fn logged_in(addr: SocketAddr) -> Client {
    let mut c = Client::connect_to(addr).expect("connect");
    let info = c
        .login(
            "user41",
            "123456",
            ClientType::Windows,
            UserStatType::UserStatusOnline,
        )
        .expect("login");
    assert_eq!(info.user_id, 41);
    c
}

#[test]
fn login_send_and_receive_with_events_queued_meanwhile() {
    let fake = serve(|conn| {
        let req = conn.accept_login(41, "user41");
        assert_eq!(req.user_name, b"user41");
        assert_eq!(req.password, password_md5("123456").as_bytes());
        assert_eq!(req.client_type, ClientType::Windows as i32);

        // The message: encrypted text with the default key.
        let p = conn.expect_request(0x0301);
        let m: message::ImMsgData = p.decode_checked().expect("msg data");
        assert_eq!(m.to_session_id, 42);
        assert_eq!(m.msg_type, MsgType::SingleText as i32);
        let plain = MsgCipher::default().decrypt(&m.msg_data).expect("decrypts");
        assert_eq!(plain, "hello 你好".as_bytes());

        // Before the ack: an incoming message (encrypted like an original client would), a
        // status notify, a stale ack with another seq, and a kick.
        let incoming = message::ImMsgData {
            from_user_id: 42,
            to_session_id: 41,
            msg_id: 7,
            create_time: 1_700_000_001,
            msg_type: MsgType::SingleText as i32,
            msg_data: b"nnZSBwfPCz60q69ddmfIJA==".to_vec(),
            attach_data: None,
        };
        conn.notify(&incoming);
        conn.notify(&buddy::ImUserStatNotify {
            user_stat: base_define::UserStat {
                user_id: 42,
                status: 1,
            },
        });
        let other_seq = p.header.seq_num.wrapping_add(100);
        conn.send_pdu(&Pdu::command(
            other_seq,
            &message::ImMsgDataAck {
                user_id: 41,
                session_id: 42,
                msg_id: 999,
                session_type: 1,
            },
        ));
        conn.reply(
            &p.header,
            &message::ImMsgDataAck {
                user_id: 41,
                session_id: 42,
                msg_id: 8,
                session_type: 1,
            },
        );
        // The client acknowledges the delivered message.
        let ack = loop {
            let a = conn.recv_pdu();
            if a.header.command_id == 0x0302 {
                break a;
            }
        };
        let ack: message::ImMsgDataAck = ack.decode_checked().expect("delivery ack");
        assert_eq!((ack.msg_id, ack.session_id, ack.session_type), (7, 42, 1));
        conn.notify(&login::ImKickUser {
            user_id: 41,
            kick_reason: 1,
        });
        // Then the server closes.
    });

    let mut c = logged_in(fake.addr);
    let ack = c.send_text(42, "hello 你好").expect("send");
    assert_eq!(ack.msg_id, 8);
    assert_eq!(ack.session_id, 42);
    assert_eq!(ack.session_type, 1);

    match c.next_event(WAIT).expect("event") {
        Some(Event::Message(m)) => {
            assert_eq!((m.from, m.to, m.msg_id), (42, 41, 7));
            assert_eq!(m.text.as_deref(), Some("hello"));
            assert_eq!(m.raw, b"nnZSBwfPCz60q69ddmfIJA==");
        }
        other => panic!("expected the message, got {other:?}"),
    }
    assert_eq!(
        c.next_event(WAIT).expect("event"),
        Some(Event::UserStatus {
            user_id: 42,
            status: 1
        })
    );
    match c.next_event(WAIT).expect("event") {
        Some(Event::Other(p)) => assert_eq!(p.header.command_id, 0x0302),
        other => panic!("expected the stray ack, got {other:?}"),
    }
    assert_eq!(
        c.next_event(WAIT).expect("event"),
        Some(Event::Kicked {
            user_id: 41,
            reason: 1
        })
    );
    fake.finish();
    assert_eq!(
        c.next_event(WAIT).expect("closed event"),
        Some(Event::Closed)
    );
    assert!(matches!(c.next_event(WAIT), Err(Error::Closed)));
    assert!(matches!(c.server_time(), Err(Error::Closed)));
}

#[test]
fn login_refusal_carries_the_code_and_text() {
    let fake = serve(|conn| {
        conn.refuse_login(6, "用户名/密码错误");
    });
    let mut c = Client::connect_to(fake.addr).expect("connect");
    let err = c
        .login(
            "user41",
            "wrong",
            ClientType::Mac,
            UserStatType::UserStatusLeave,
        )
        .expect_err("refused");
    match &err {
        Error::Login { code, text } => {
            assert_eq!(*code, 6);
            assert_eq!(text, "用户名/密码错误");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(err.result_code(), Some(6));
    assert!(err.to_string().contains("REFUSE_REASON_DB_VALIDATE_FAILED"));
    fake.finish();
}

#[test]
fn requests_match_their_reply_by_seq_and_command() {
    let fake = serve_user(41, "user41", |conn| {
        // history
        let p = conn.expect_request(0x0309);
        let req: message::ImGetMsgListReq = p.decode_checked().expect("list req");
        assert_eq!(
            (
                req.session_id,
                req.session_type,
                req.msg_id_begin,
                req.msg_cnt
            ),
            (42, 1, 0, 5)
        );
        let cipher = MsgCipher::default();
        let msg = |id: u32, from: u32, t: &str| base_define::MsgInfo {
            msg_id: id,
            from_session_id: from,
            create_time: 100 + id,
            msg_type: 1,
            msg_data: cipher.encrypt(t.as_bytes()).expect("enc"),
        };
        // A reply with the right command but a wrong seq must not be taken.
        let wrong = message::ImGetMsgListRsp {
            user_id: 41,
            session_type: 1,
            session_id: 42,
            msg_id_begin: 0,
            msg_list: vec![],
            attach_data: None,
        };
        conn.send_pdu(&Pdu::command(p.header.seq_num.wrapping_add(1), &wrong));
        conn.reply(
            &p.header,
            &message::ImGetMsgListRsp {
                msg_list: vec![msg(2, 41, "mine"), msg(1, 42, "theirs")],
                ..wrong
            },
        );
        // users status
        let p = conn.expect_request(0x020a);
        let req: buddy::ImUsersStatReq = p.decode_checked().expect("stat req");
        assert_eq!(req.user_id_list, vec![42, 43]);
        conn.reply(
            &p.header,
            &buddy::ImUsersStatRsp {
                user_id: 41,
                user_stat_list: vec![
                    base_define::UserStat {
                        user_id: 42,
                        status: 1,
                    },
                    base_define::UserStat {
                        user_id: 43,
                        status: 2,
                    },
                ],
                attach_data: None,
            },
        );
        // user info
        let p = conn.expect_request(0x0204);
        conn.reply(
            &p.header,
            &buddy::ImUsersInfoRsp {
                user_id: 41,
                user_info_list: vec![user(42, "user42")],
                attach_data: None,
            },
        );
        // time
        let p = conn.expect_request(0x0305);
        conn.reply(&p.header, &message::ImClientTimeRsp { server_time: 1234 });
        // read ack: no reply
        let p = conn.expect_request(0x0303);
        let r: message::ImMsgDataReadAck = p.decode_checked().expect("read ack");
        assert_eq!((r.session_id, r.msg_id, r.session_type), (42, 2, 1));
        // heartbeat: echoed verbatim
        let p = conn.recv_pdu();
        assert_eq!(p.header.command_id, 0x0701);
        conn.send_pdu(&p);
        // logout
        let p = conn.expect_request(0x0105);
        conn.reply(&p.header, &login::ImLogoutRsp { result_code: 0 });
        // The client closes after the logout.
        conn.expect_end_of_stream();
    });

    let mut c = logged_in(fake.addr);
    let seq_before = c.peek_next_seq();
    let list = c.get_msg_list(42, 0, 5).expect("history");
    assert_eq!(list.len(), 2);
    assert_eq!((list[0].from, list[0].to, list[0].msg_id), (41, 42, 2));
    assert_eq!(list[0].text.as_deref(), Some("mine"));
    assert_eq!((list[1].from, list[1].to), (42, 41));
    assert_eq!(list[1].text.as_deref(), Some("theirs"));
    assert_eq!(c.peek_next_seq(), seq_before.wrapping_add(1));
    let st = c.users_status(&[42, 43]).expect("status");
    assert_eq!(
        st.iter().map(|s| (s.user_id, s.status)).collect::<Vec<_>>(),
        vec![(42, 1), (43, 2)]
    );
    let users = c.user_info(&[42]).expect("user info");
    assert_eq!(users[0].user_domain, b"user42");
    assert_eq!(c.server_time().expect("time"), 1234);
    c.read_ack(Session::user(42), 2).expect("read ack");
    c.heartbeat().expect("heartbeat");
    assert_eq!(c.logout().expect("logout"), 0);
    assert!(c.is_closed());
    // The wrong-seq reply was kept as an event, the closed connection is not an event.
    match c.next_event(Duration::ZERO).expect("event") {
        Some(Event::Other(p)) => assert_eq!(p.header.command_id, 0x030a),
        other => panic!("{other:?}"),
    }
    assert!(matches!(c.next_event(Duration::ZERO), Err(Error::Closed)));
    fake.finish();
}

#[test]
fn timed_out_request_then_late_reply_is_dropped() {
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let fake = serve_user(41, "user41", move |conn| {
        let p = conn.expect_request(0x0307);
        // Answer only after the client gave up.
        go_rx.recv_timeout(common::GUARD).expect("go");
        conn.reply(
            &p.header,
            &message::ImUnreadMsgCntRsp {
                user_id: 41,
                total_cnt: 0,
                unreadinfo_list: vec![],
                attach_data: None,
            },
        );
        conn.notify(&message::ImMsgDataReadNotify {
            user_id: 41,
            session_id: 42,
            msg_id: 3,
            session_type: 1,
        });
        conn.expect_request(0x0305);
    });
    let mut c = logged_in(fake.addr);
    c.set_timeout(Duration::from_millis(200));
    match c.unread_counts() {
        Err(Error::Timeout(what)) => assert!(what.contains("CID_MSG_UNREAD_CNT_RESPONSE")),
        other => panic!("expected a timeout, got {other:?}"),
    }
    go_tx.send(()).expect("go");
    // The late reply is not an event; the notify after it is.
    assert_eq!(
        c.next_event(WAIT).expect("event"),
        Some(Event::ReadNotify {
            user_id: 41,
            session_id: 42,
            msg_id: 3,
            session_type: 1
        })
    );
    c.send_command(&message::ImClientTimeReq {}).expect("send");
    fake.finish();
}

#[test]
fn event_queue_is_bounded_and_drops_the_oldest() {
    let fake = serve_user(41, "user41", |conn| {
        let p = conn.read_request();
        for i in 1..=5 {
            conn.notify(&login::ImKickUser {
                user_id: i,
                kick_reason: 1,
            });
        }
        conn.reply(&p.header, &message::ImClientTimeRsp { server_time: 9 });
    });
    let mut c = logged_in(fake.addr);
    c.set_max_queued_events(3);
    assert_eq!(c.server_time().expect("time"), 9);
    assert_eq!(c.queued_events(), 3);
    assert_eq!(c.dropped_events(), 2);
    for want in 3..=5 {
        assert_eq!(
            c.next_event(WAIT).expect("event"),
            Some(Event::Kicked {
                user_id: want,
                reason: 1
            })
        );
    }
    fake.finish();
}

#[test]
fn malformed_frame_closes_the_connection() {
    let fake = serve_user(41, "user41", |conn| {
        let _ = conn.read_request();
        // length 8 < 16
        conn.send_bytes(&[0, 0, 0, 8, 0, 1, 0, 0, 0, 3, 3, 6, 0, 1, 0, 0]);
        // The client closes on a bad frame.
        conn.expect_end_of_stream();
    });
    let mut c = logged_in(fake.addr);
    match c.server_time() {
        Err(Error::Protocol(_)) => {}
        other => panic!("expected a protocol error, got {other:?}"),
    }
    assert!(c.is_closed());
    fake.finish();
}

#[test]
fn plain_mode_and_wait_for_keep_other_events() {
    let fake = serve_user(41, "user41", |conn| {
        let p = conn.read_request();
        let m: message::ImMsgData = p.decode_checked().expect("msg");
        assert_eq!(m.msg_data, b"plain words");
        assert_eq!(m.msg_type, MsgType::GroupText as i32);
        conn.reply(
            &p.header,
            &message::ImMsgDataAck {
                user_id: 41,
                session_id: 5,
                msg_id: 1,
                session_type: 2,
            },
        );
        conn.notify(&login::ImKickUser {
            user_id: 41,
            kick_reason: 2,
        });
        conn.notify(&message::ImMsgData {
            from_user_id: 43,
            to_session_id: 5,
            msg_id: 2,
            create_time: 1,
            msg_type: MsgType::GroupText as i32,
            msg_data: b"group words".to_vec(),
            attach_data: Some(vec![0; 12]),
        });
        // group delivery ack from the client
        let a = conn.recv_pdu();
        assert_eq!(a.header.command_id, 0x0302);
        let a: message::ImMsgDataAck = a.decode_checked().expect("ack");
        assert_eq!((a.session_id, a.msg_id, a.session_type), (5, 2, 2));
    });
    let mut c = logged_in(fake.addr);
    c.set_cipher(None);
    let ack = c.send_group_text(5, "plain words").expect("send");
    assert_eq!((ack.msg_id, ack.session_type), (1, 2));
    let got = c
        .wait_for(WAIT, |e| matches!(e, Event::Message(_)))
        .expect("wait")
        .expect("a message");
    match got {
        Event::Message(m) => {
            assert!(m.is_group());
            assert_eq!(m.text.as_deref(), Some("group words"));
        }
        other => panic!("{other:?}"),
    }
    // The kick that came first is still queued.
    assert_eq!(
        c.next_event(Duration::ZERO).expect("event"),
        Some(Event::Kicked {
            user_id: 41,
            reason: 2
        })
    );
    fake.finish();
}

#[test]
fn command_ids_of_typed_requests() {
    // The typed API relies on these command ids (protocol.md §6).
    assert_eq!(login::ImLoginReq::COMMAND_ID, 0x0103);
    assert_eq!(message::ImMsgData::COMMAND_ID, 0x0301);
    assert_eq!(message::ImMsgDataAck::COMMAND_ID, 0x0302);
    assert_eq!(buddy::ImAllUserRsp::COMMAND_ID, 0x0209);
}

#[test]
fn automatic_heartbeat_while_waiting_for_events() {
    // The fake keeps the connection open until the client is done: closing it earlier would
    // race with the client's last call.
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let fake = serve_user(41, "user41", move |conn| {
        // next_event sends heartbeats while it waits; answer the first with an event.
        let hb = conn.recv_pdu();
        assert_eq!(hb.header.command_id, 0x0701);
        assert_eq!(hb.body.len(), 0);
        conn.send_pdu(&hb); // the echo must not become an event
        conn.notify(&login::ImKickUser {
            user_id: 41,
            kick_reason: 1,
        });
        // More heartbeats follow (from next_event while the kick travels, then keepalive).
        let hb = conn.recv_pdu();
        assert_eq!(hb.header.command_id, 0x0701);
        let _ = done_rx.recv();
    });
    let mut c = logged_in(fake.addr);
    c.set_heartbeat_interval(Some(Duration::from_millis(20)));
    assert_eq!(
        c.next_event(WAIT).expect("event"),
        Some(Event::Kicked {
            user_id: 41,
            reason: 1
        })
    );
    c.set_heartbeat_interval(Some(Duration::ZERO));
    c.keepalive().expect("keepalive");
    done_tx.send(()).unwrap();
    fake.finish();
}
