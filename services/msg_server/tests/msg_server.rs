//! msg_server against the real db_proxy_server, route_server and login_server (and the local
//! MariaDB/Redis). Seeded users of [`USERS`] only (`tt_testkit::users::MSG_SERVER`). Build the
//! other daemons first: `cargo build --workspace --bins`.

mod common;

use common::*;
use tt_proto::Pdu;
use tt_proto::ids::{cid, sid};
use tt_proto::pb::login::{ImKickUser, ImLogoutReq, ImLogoutRsp};
use tt_proto::pb::message::{
    ImClientTimeReq, ImClientTimeRsp, ImMsgData, ImMsgDataAck, ImMsgDataReadAck, ImUnreadMsgCntReq,
    ImUnreadMsgCntRsp,
};
use tt_proto::prost::Message;

/// The seeded user number `i` of [`USERS`]: (login name, id).
fn user(i: u32) -> (String, u32) {
    (USERS.name(i), USERS.id(i))
}

const MSG_SINGLE_TEXT: i32 = 0x01;

fn msg(from: u32, to: u32, text: &str) -> ImMsgData {
    ImMsgData {
        from_user_id: from,
        to_session_id: to,
        msg_id: 0,
        create_time: 0,
        msg_type: MSG_SINGLE_TEXT,
        msg_data: text.as_bytes().to_vec(),
        attach_data: None,
    }
}

fn unique(tag: &str) -> String {
    format!(
        "{tag}-{}-{:?}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

#[test]
fn login_ok_wrong_password_and_unknown_user() {
    let stack = Stack::start("msg_server", 1);
    let (name, id) = user(0);
    let (mut c, res) = stack.login(&name, CLIENT_WINDOWS);
    assert_eq!(res.result_code, 0, "{res:?}");
    let info = res.user_info.expect("user_info on success");
    assert_eq!(info.user_id, id);
    assert!(info.sign_info.is_some(), "sign_info is always present");
    assert_eq!(res.online_status, Some(1));

    // Logged in: the time request is answered with the request's seq.
    let seq = c.send(&ImClientTimeReq {});
    let (h, t) = c.recv::<ImClientTimeRsp>();
    assert_eq!(h.seq_num, seq);
    assert!(t.server_time > 1_600_000_000);

    // Logout: the reply, then the server closes.
    let seq = c.send(&ImLogoutReq {});
    let (h, out) = c.recv::<ImLogoutRsp>();
    assert_eq!((h.seq_num, out.result_code), (seq, 0));
    c.expect_closed();

    let (mut c, res) = stack.login_with(
        &USERS.name(1),
        "0123456789abcdef0123456789abcdef",
        CLIENT_WINDOWS,
    );
    assert_eq!(res.result_code, 6, "wrong password: DB_VALIDATE_FAILED");
    assert!(res.user_info.is_none());
    c.expect_closed();

    let (mut c, res) = stack.login_with("no_such_user_msg_test", PASSWORD_MD5, CLIENT_WINDOWS);
    assert_eq!(res.result_code, 6, "unknown user: DB_VALIDATE_FAILED");
    c.expect_closed();
}

#[test]
fn logins_are_refused_with_the_code_of_the_missing_server() {
    let cases = [
        (false, true, true, 3), // NO_DB_SERVER
        (true, false, true, 4), // NO_LOGIN_SERVER
        (true, true, false, 5), // NO_ROUTE_SERVER
    ];
    for (db, login, route, code) in cases {
        let stack = Stack::builder("msg_server")
            .db_proxy(db)
            .route(route)
            .login(login)
            .start();
        let (mut c, res) = stack.login_with(&USERS.name(0), PASSWORD_MD5, CLIENT_WINDOWS);
        assert_eq!(res.result_code, code);
        assert_eq!(res.result_string.as_deref(), Some("服务端异常".as_bytes()));
        assert!(res.user_info.is_none());
        c.expect_closed();
    }
}

#[test]
fn commands_before_login_close_the_connection_heartbeats_are_echoed() {
    let mut stack = Stack::start("msg_server", 1);
    let mut c = stack.connect();
    let hb = Pdu::new(sid::SID_OTHER, cid::CID_OTHER_HEARTBEAT, 7, Vec::new());
    c.send_pdu(&hb);
    let echo = c.recv_pdu();
    assert_eq!(
        echo.to_bytes(),
        hb.to_bytes(),
        "heartbeat echoed byte for byte"
    );

    c.send(&ImClientTimeReq {});
    let skipped = c.expect_closed();
    assert!(
        skipped.is_empty(),
        "nothing answered before login: {skipped:?}"
    );
    assert!(
        stack
            .msg_daemon(0)
            .wait_for_line("before a successful login", WAIT)
    );

    let mut c = stack.connect();
    c.send(&msg(USERS.id(2), USERS.id(3), "hello"));
    assert!(c.expect_closed().is_empty());

    // A PDU announcing more than MaxPduLen (1 MiB by default) closes the connection at once.
    let mut c = stack.connect();
    let mut header = tt_proto::pdu::Header::new(sid::SID_OTHER, cid::CID_OTHER_HEARTBEAT, 0);
    header.length = 2 * 1024 * 1024;
    c.send_bytes(&header.to_bytes());
    assert!(c.expect_closed().is_empty());
}

#[test]
fn message_between_two_users_on_one_server() {
    let stack = Stack::start("msg_server", 1);
    let ((a_name, a_id), (b_name, b_id)) = (user(2), user(3));
    let (mut a, res) = stack.login(&a_name, CLIENT_WINDOWS);
    assert_eq!(res.result_code, 0);
    let (mut a2, res) = stack.login(&a_name, CLIENT_ANDROID);
    assert_eq!(res.result_code, 0);
    let (mut b, res) = stack.login(&b_name, CLIENT_MAC);
    assert_eq!(res.result_code, 0);

    let text = unique("hello");
    // The client's from_user_id is not trusted.
    let seq = a.send(&msg(1, b_id, &text));
    let (h, ack) = a.recv::<ImMsgDataAck>();
    assert_eq!(h.seq_num, seq, "the ack carries the sender's seq");
    assert_eq!(
        (ack.user_id, ack.session_id, ack.session_type),
        (a_id, b_id, 1)
    );
    assert!(ack.msg_id > 0);

    let (h, got) = b.recv::<ImMsgData>();
    assert_eq!(h.seq_num, 0);
    assert_eq!(got.msg_data, text.as_bytes());
    assert_eq!((got.from_user_id, got.to_session_id), (a_id, b_id));
    assert_eq!(got.msg_id, ack.msg_id);
    assert!(got.attach_data.is_none());

    // The sender's other device gets a copy.
    let (_, copy) = a2.recv::<ImMsgData>();
    assert_eq!(
        (copy.msg_id, copy.msg_data),
        (ack.msg_id, text.as_bytes().to_vec())
    );

    // The next message gets the next id of this session.
    a.send(&msg(a_id, b_id, &unique("again")));
    let (_, ack2) = a.recv::<ImMsgDataAck>();
    assert_eq!(ack2.msg_id, ack.msg_id + 1);
}

#[test]
fn a_second_pc_login_kicks_the_first_a_mobile_login_stays() {
    let stack = Stack::start("msg_server", 1);
    let (name, id) = user(4);
    let (mut first, res) = stack.login(&name, CLIENT_WINDOWS);
    assert_eq!(res.result_code, 0);
    let (mut mobile, res) = stack.login(&name, CLIENT_IOS);
    assert_eq!(res.result_code, 0);
    let (mut second, res) = stack.login(&name, CLIENT_MAC);
    assert_eq!(res.result_code, 0);

    let kick = first.recv_until(cid::CID_LOGIN_KICK_USER);
    assert_eq!(kick.header.seq_num, 0);
    let kick = ImKickUser::decode(kick.body.as_slice()).unwrap();
    assert_eq!((kick.user_id, kick.kick_reason), (id, 1));
    first.expect_closed();

    // The mobile and the new PC connection still work.
    for c in [&mut mobile, &mut second] {
        let seq = c.send(&ImClientTimeReq {});
        let (h, _) = c.recv::<ImClientTimeRsp>();
        assert_eq!(h.seq_num, seq);
    }
}

#[test]
fn messages_over_the_rate_limit_are_dropped() {
    let stack = Stack::builder("msg_server")
        .msg_conf_extra("MsgRateLimit=5\n")
        .start();
    let ((a_name, a_id), (b_name, b_id)) = (user(5), user(6));
    let (mut a, _) = stack.login(&a_name, CLIENT_WINDOWS);
    let (mut b, _) = stack.login(&b_name, CLIENT_WINDOWS);
    let tag = unique("burst");

    // Twelve messages in one write: handled in one go, so at most five are accepted.
    let mut burst = Vec::new();
    for i in 0..12 {
        let seq = a.next_seq();
        burst.extend(Pdu::command(seq, &msg(a_id, b_id, &format!("{tag}-{i}"))).to_bytes());
    }
    a.send_bytes(&burst);
    let mut acked = Vec::new();
    while acked.len() < 5 {
        let (_, ack) = a.recv::<ImMsgDataAck>();
        acked.push(ack.msg_id);
    }
    // A later message (in a later second) goes through; it is resent while it is dropped
    // (no delivery within 1.5 s). The receiver sees the accepted part of the burst first.
    let marker = format!("{tag}-marker");
    let mut received = Vec::new();
    'outer: for _ in 0..30 {
        a.send(&msg(a_id, b_id, &marker));
        while let Some(p) = b.recv_within(std::time::Duration::from_millis(1500)) {
            if p.header.command_id != cid::CID_MSG_DATA {
                continue;
            }
            let m = ImMsgData::decode(p.body.as_slice()).unwrap();
            let text = String::from_utf8(m.msg_data).unwrap();
            if text == marker {
                break 'outer;
            }
            received.push(text);
        }
    }
    let burst_received: Vec<_> = received.iter().filter(|t| !t.ends_with("marker")).collect();
    assert_eq!(burst_received.len(), 5, "{received:?}");
}

#[test]
fn unread_count_and_read_ack() {
    let stack = Stack::start("msg_server", 1);
    let ((a_name, a_id), (b_name, b_id)) = (user(7), user(8));
    let (mut a, _) = stack.login(&a_name, CLIENT_WINDOWS);
    let (mut b, _) = stack.login(&b_name, CLIENT_WINDOWS);
    let (mut b2, _) = stack.login(&b_name, CLIENT_ANDROID);

    let unread_from_a = |c: &mut PduClient| -> u32 {
        let seq = c.send(&ImUnreadMsgCntReq {
            user_id: 0,
            attach_data: None,
        });
        let (h, rsp) = c.recv::<ImUnreadMsgCntRsp>();
        assert_eq!(h.seq_num, seq);
        assert_eq!(rsp.user_id, b_id);
        assert!(
            rsp.attach_data.is_none(),
            "attach_data is not passed to clients"
        );
        rsp.unreadinfo_list
            .iter()
            .find(|u| u.session_id == a_id && u.session_type == 1)
            .map_or(0, |u| u.unread_cnt)
    };

    a.send(&msg(a_id, b_id, &unique("one")));
    a.recv::<ImMsgDataAck>();
    a.send(&msg(a_id, b_id, &unique("two")));
    let (_, ack) = a.recv::<ImMsgDataAck>();
    assert!(unread_from_a(&mut b) >= 2);

    b.send(&ImMsgDataReadAck {
        user_id: 0,
        session_id: a_id,
        msg_id: ack.msg_id,
        session_type: 1,
    });
    // The reader's other device is told.
    let (_, notify) = b2.recv::<tt_proto::pb::message::ImMsgDataReadNotify>();
    assert_eq!(
        (notify.user_id, notify.session_id, notify.msg_id),
        (b_id, a_id, ack.msg_id)
    );
    // db_proxy does not answer a read ack: poll the count until it is cleared (hang-guarded).
    let deadline = std::time::Instant::now() + WAIT;
    while unread_from_a(&mut b) != 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "unread count not cleared"
        );
    }
}

#[test]
fn requests_forwarded_to_db_proxy_and_route_server_come_back_with_the_clients_seq() {
    use tt_proto::pb::buddy::{
        ImAllUserReq, ImAllUserRsp, ImDepartmentReq, ImDepartmentRsp, ImRecentContactSessionReq,
        ImRecentContactSessionRsp, ImUsersInfoReq, ImUsersInfoRsp, ImUsersStatReq, ImUsersStatRsp,
    };
    use tt_proto::pb::message::{ImGetLatestMsgIdReq, ImGetLatestMsgIdRsp};

    let stack = Stack::start("msg_server", 1);
    let ((a_name, a_id), (b_name, b_id)) = (user(9), user(10));
    let (mut a, _) = stack.login(&a_name, CLIENT_WINDOWS);
    let (_b, _) = stack.login(&b_name, CLIENT_WINDOWS);
    // Only read about: the user info of another user of the range, and the last one.
    let (other_id, last_id) = (USERS.id(11), USERS.last);

    // The client's user_id is never trusted: 1 is replaced by the sender's.
    let seq = a.send(&ImUsersInfoReq {
        user_id: 1,
        user_id_list: vec![b_id, other_id],
        attach_data: None,
    });
    let (h, rsp) = a.recv::<ImUsersInfoRsp>();
    assert_eq!((h.seq_num, rsp.user_id), (seq, a_id));
    assert!(rsp.attach_data.is_none());
    let mut ids: Vec<u32> = rsp.user_info_list.iter().map(|u| u.user_id).collect();
    ids.sort();
    assert_eq!(ids, vec![b_id, other_id]);

    let seq = a.send(&ImAllUserReq {
        user_id: 1,
        latest_update_time: 0,
        attach_data: None,
    });
    let (h, rsp) = a.recv::<ImAllUserRsp>();
    assert_eq!((h.seq_num, rsp.user_id), (seq, a_id));
    assert!(rsp.user_list.iter().any(|u| u.user_id == last_id));

    let seq = a.send(&ImDepartmentReq {
        user_id: 1,
        latest_update_time: 0,
        attach_data: None,
    });
    let (h, rsp) = a.recv::<ImDepartmentRsp>();
    assert_eq!((h.seq_num, rsp.user_id), (seq, a_id));

    a.send(&msg(a_id, b_id, &unique("recent")));
    let (_, ack) = a.recv::<ImMsgDataAck>();
    let seq = a.send(&ImRecentContactSessionReq {
        user_id: 1,
        latest_update_time: 0,
        attach_data: None,
    });
    let (h, rsp) = a.recv::<ImRecentContactSessionRsp>();
    assert_eq!((h.seq_num, rsp.user_id), (seq, a_id));
    assert!(
        rsp.contact_session_list
            .iter()
            .any(|s| s.session_id == b_id && s.latest_msg_id >= ack.msg_id),
        "{rsp:?}"
    );

    let seq = a.send(&ImGetLatestMsgIdReq {
        user_id: 1,
        session_type: 1,
        session_id: b_id,
        attach_data: None,
    });
    let (h, rsp) = a.recv::<ImGetLatestMsgIdRsp>();
    assert_eq!((h.seq_num, rsp.user_id), (seq, a_id));
    assert!(rsp.latest_msg_id >= ack.msg_id);

    // Status of users, answered by route_server: b is online on a PC here.
    let seq = a.send(&ImUsersStatReq {
        user_id: 1,
        user_id_list: vec![b_id],
        attach_data: None,
    });
    let (h, rsp) = a.recv::<ImUsersStatRsp>();
    assert_eq!((h.seq_num, rsp.user_id), (seq, a_id));
    assert!(rsp.attach_data.is_none());
    assert_eq!(rsp.user_stat_list.len(), 1);
    assert_eq!(
        (rsp.user_stat_list[0].user_id, rsp.user_stat_list[0].status),
        (b_id, 1)
    );
}

#[test]
fn buddy_status_and_pc_login_status_come_through_route_server() {
    use tt_proto::pb::buddy::{ImUserStatNotify, ImpcLoginStatusNotify};

    let stack = Stack::start("msg_server", 1);
    let ((watcher_name, _), (name, id)) = (user(11), user(12));
    let (mut watcher, _) = stack.login(&watcher_name, CLIENT_WINDOWS);
    let (mut phone, _) = stack.login(&name, CLIENT_ANDROID);
    let (pc, _) = stack.login(&name, CLIENT_WINDOWS);

    // The user's PC login: PC clients hear it, the user's phone is told its PC is online.
    let n = loop {
        let (_, n) = watcher.recv::<ImUserStatNotify>();
        if n.user_stat.user_id == id {
            break n;
        }
    };
    assert_eq!(n.user_stat.status, 1);
    let (h, n) = phone.recv::<ImpcLoginStatusNotify>();
    assert_eq!(h.seq_num, 0);
    assert_eq!((n.user_id, n.login_stat), (id, 1));

    // The PC goes away: offline notice to PC clients, PC-offline to the phone.
    drop(pc);
    let n = loop {
        let (_, n) = watcher.recv::<ImUserStatNotify>();
        if n.user_stat.user_id == id {
            break n;
        }
    };
    assert_eq!(n.user_stat.status, 2);
    let (_, n) = phone.recv::<ImpcLoginStatusNotify>();
    assert_eq!((n.user_id, n.login_stat), (id, 2));
}

#[test]
fn a_connection_that_does_not_log_in_is_closed_after_the_login_timeout() {
    let mut stack = Stack::start("msg_server", 1);
    let mut c = stack.connect();
    // Heartbeats keep a connection alive, but not one that never logs in (15 s from accept).
    let hb = Pdu::new(sid::SID_OTHER, cid::CID_OTHER_HEARTBEAT, 0, Vec::new());
    c.send_pdu(&hb);
    assert_eq!(c.recv_pdu().header.command_id, cid::CID_OTHER_HEARTBEAT);
    c.set_hang_guard(std::time::Duration::from_secs(60));
    assert!(c.expect_closed().is_empty());
    assert!(stack.msg_daemon(0).wait_for_line("no login within", WAIT));
}

#[test]
fn requests_beyond_the_pending_limit_are_dropped() {
    let mut stack = Stack::builder("msg_server")
        .msg_conf_extra("MaxPendingDbRequests=2\n")
        .start();
    let (mut c, _) = stack.login(&USERS.name(13), CLIENT_WINDOWS);
    let req = ImUnreadMsgCntReq {
        user_id: 0,
        attach_data: None,
    };
    // Twenty requests in one write: two go to db_proxy, the rest are dropped.
    let mut flood = Vec::new();
    for _ in 0..20 {
        let seq = c.next_seq();
        flood.extend(Pdu::command(seq, &req).to_bytes());
    }
    c.send_bytes(&flood);
    assert!(stack.msg_daemon(0).wait_for_line("requests waiting", WAIT));
    for _ in 0..2 {
        c.recv::<ImUnreadMsgCntRsp>();
    }
    // With the replies in, the client may ask again.
    let seq = c.send(&req);
    let mut extra = 0;
    loop {
        let (h, _) = c.recv::<ImUnreadMsgCntRsp>();
        if h.seq_num == seq {
            break;
        }
        extra += 1;
    }
    assert_eq!(extra, 0, "only two of the flood were forwarded");
}

/// Logs in at msg_server `i` of the stack.
fn login_at(stack: &Stack, i: usize, user: &str, client_type: i32) -> PduClient {
    let mut c = PduClient::connect(stack.msg_port(i));
    let res = c.login(user, PASSWORD_MD5, client_type);
    assert_eq!(res.result_code, 0, "{user} at msg_server {i}: {res:?}");
    c
}

fn count_cmd(pdus: &[Pdu], cmd: u16) -> usize {
    pdus.iter().filter(|p| p.header.command_id == cmd).count()
}

#[test]
fn two_servers_each_device_gets_each_message_and_read_notify_once() {
    let stack = Stack::start("msg_server", 2);
    let ((a_name, a_id), (b_name, b_id)) = (user(14), user(15));
    let mut a0 = login_at(&stack, 0, &a_name, CLIENT_WINDOWS);
    let mut a1 = login_at(&stack, 1, &a_name, CLIENT_ANDROID);
    let mut b1 = login_at(&stack, 1, &b_name, CLIENT_WINDOWS);
    let mut b0 = login_at(&stack, 0, &b_name, CLIENT_ANDROID);
    let quiet = std::time::Duration::from_millis(1500);
    for c in [&mut a0, &mut a1, &mut b0, &mut b1] {
        c.drain(std::time::Duration::from_millis(500));
    }

    let text = unique("two-servers");
    let seq = a0.send(&msg(a_id, b_id, &text));
    let mut got = a0.drain(quiet);
    assert_eq!(count_cmd(&got, cid::CID_MSG_DATA_ACK), 1, "{got:?}");
    assert_eq!(count_cmd(&got, cid::CID_MSG_DATA), 0, "{got:?}");
    let ack = got.remove(
        got.iter()
            .position(|p| p.header.command_id == cid::CID_MSG_DATA_ACK)
            .unwrap(),
    );
    assert_eq!(ack.header.seq_num, seq);
    let ack = ImMsgDataAck::decode(ack.body.as_slice()).unwrap();
    for (name, c) in [("a1", &mut a1), ("b0", &mut b0), ("b1", &mut b1)] {
        let got = c.drain(quiet);
        let msgs: Vec<ImMsgData> = got
            .iter()
            .filter(|p| p.header.command_id == cid::CID_MSG_DATA)
            .map(|p| {
                assert_eq!(p.header.seq_num, 0, "{name}");
                ImMsgData::decode(p.body.as_slice()).unwrap()
            })
            .collect();
        assert_eq!(msgs.len(), 1, "{name}: {got:?}");
        assert_eq!(msgs[0].msg_id, ack.msg_id, "{name}");
        assert_eq!(msgs[0].from_user_id, a_id, "{name}");
        assert!(msgs[0].attach_data.is_none(), "{name}");
    }

    b1.send(&ImMsgDataReadAck {
        user_id: 0,
        session_id: a_id,
        msg_id: ack.msg_id,
        session_type: 1,
    });
    let got = b0.drain(quiet);
    assert_eq!(count_cmd(&got, cid::CID_MSG_READ_NOTIFY), 1, "{got:?}");
    let got = b1.drain(quiet);
    assert_eq!(count_cmd(&got, cid::CID_MSG_READ_NOTIFY), 0, "{got:?}");
    for c in [&mut a0, &mut a1] {
        let got = c.drain(std::time::Duration::from_millis(300));
        assert_eq!(count_cmd(&got, cid::CID_MSG_READ_NOTIFY), 0, "{got:?}");
    }

    // A PC login of a at server 1 kicks the PC at server 0.
    let _a1pc = login_at(&stack, 1, &a_name, CLIENT_MAC);
    let kick = a0.recv_until(cid::CID_LOGIN_KICK_USER);
    let kick = ImKickUser::decode(kick.body.as_slice()).unwrap();
    assert_eq!((kick.user_id, kick.kick_reason), (a_id, 1));
    a0.expect_closed();
}

#[test]
fn a_p2p_command_to_oneself_reaches_every_own_connection_once() {
    use tt_proto::pb::switch_service::Imp2pCmdMsg;

    let stack = Stack::start("msg_server", 1);
    let (name, id) = user(16);
    let (mut pc, _) = stack.login(&name, CLIENT_WINDOWS);
    let (mut phone, _) = stack.login(&name, CLIENT_ANDROID);
    let quiet = std::time::Duration::from_millis(800);
    pc.drain(quiet);
    phone.drain(quiet);

    let seq = pc.send(&Imp2pCmdMsg {
        from_user_id: 1,
        to_user_id: id,
        cmd_msg_data: b"shake".to_vec(),
    });
    for (name, c) in [("sender", &mut pc), ("other device", &mut phone)] {
        let got = c.drain(quiet);
        let cmds: Vec<&Pdu> = got
            .iter()
            .filter(|p| p.header.command_id == cid::CID_SWITCH_P2P_CMD)
            .collect();
        assert_eq!(cmds.len(), 1, "{name}: {got:?}");
        assert_eq!(
            cmds[0].header.seq_num, seq,
            "{name}: the sender's header is kept"
        );
        let m = Imp2pCmdMsg::decode(cmds[0].body.as_slice()).unwrap();
        assert_eq!((m.from_user_id, m.to_user_id), (id, id), "{name}");
    }
}

#[test]
fn a_flood_over_the_limits_is_logged_once_a_second_not_once_a_pdu() {
    let mut stack = Stack::builder("msg_server")
        .msg_conf_extra("MsgRateLimit=2\n")
        .start();
    let ((a_name, a_id), (_, b_id)) = (user(17), user(18));
    let (mut a, _) = stack.login(&a_name, CLIENT_WINDOWS);
    // Forty messages in one write: two accepted, 38 dropped within one second (over the
    // rate limit, or empty: those are dropped whatever the rate).
    let tag = unique("flood");
    let mut burst = Vec::new();
    for i in 0..40 {
        let seq = a.next_seq();
        let text = if i >= 2 && i % 2 == 0 {
            String::new()
        } else {
            format!("{tag}-{i}")
        };
        burst.extend(Pdu::command(seq, &msg(a_id, b_id, &text)).to_bytes());
    }
    a.send_bytes(&burst);
    for _ in 0..2 {
        a.recv::<ImMsgDataAck>();
    }
    let daemon = stack.msg_daemon(0);
    assert!(daemon.wait_for_line("sent an empty message: dropped", WAIT));
    // The next line about drops is the tick's sum, not a line for the second dropped message.
    assert!(daemon.wait_for_line("dropped", WAIT));
    let log = daemon.recent_log();
    let last = log.lines().last().unwrap_or_default();
    assert!(
        last.contains("more requests dropped by the limits"),
        "one line per drop: {log}"
    );
}

#[test]
fn p2p_commands_over_the_relay_limit_are_dropped() {
    use tt_proto::pb::switch_service::Imp2pCmdMsg;

    let stack = Stack::builder("msg_server")
        .msg_conf_extra("RelayRateLimit=5\n")
        .start();
    let ((a_name, a_id), (b_name, b_id)) = (user(19), user(18));
    let (mut a, _) = stack.login(&a_name, CLIENT_WINDOWS);
    let (mut b, _) = stack.login(&b_name, CLIENT_WINDOWS);
    let tag = unique("relay");
    let p2p = |text: &str| Imp2pCmdMsg {
        from_user_id: a_id,
        to_user_id: b_id,
        cmd_msg_data: text.as_bytes().to_vec(),
    };

    // Twelve P2P commands in one write: handled in one go, so at most five are relayed.
    let mut burst = Vec::new();
    for i in 0..12 {
        let seq = a.next_seq();
        burst.extend(Pdu::command(seq, &p2p(&format!("{tag}-{i}"))).to_bytes());
    }
    a.send_bytes(&burst);
    // A later command (in a later second) goes through; it is resent while it is dropped.
    let marker = format!("{tag}-marker");
    let mut received = Vec::new();
    'outer: for _ in 0..30 {
        a.send(&p2p(&marker));
        while let Some(p) = b.recv_within(std::time::Duration::from_millis(1500)) {
            if p.header.command_id != cid::CID_SWITCH_P2P_CMD {
                continue;
            }
            let m = Imp2pCmdMsg::decode(p.body.as_slice()).unwrap();
            let text = String::from_utf8(m.cmd_msg_data).unwrap();
            if text == marker {
                break 'outer;
            }
            received.push(text);
        }
    }
    let expected: Vec<String> = (0..5).map(|i| format!("{tag}-{i}")).collect();
    assert_eq!(
        received, expected,
        "the first five of the burst, nothing else"
    );
}
