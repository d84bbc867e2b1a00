//! msg_server against the real db_proxy_server, route_server and login_server (and the local
//! MariaDB/Redis). Seeded users 60..79 only. Build the other daemons first:
//! `cargo build --workspace --bins`.

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
    let (mut c, res) = stack.login("user60", CLIENT_WINDOWS);
    assert_eq!(res.result_code, 0, "{res:?}");
    let info = res.user_info.expect("user_info on success");
    assert_eq!(info.user_id, 60);
    assert!(info.sign_info.is_some(), "sign_info is always present");
    assert_eq!(res.online_status, Some(1));

    // Logged in: the time request is answered with the request's seq.
    let seq = c.send(&ImClientTimeReq {});
    let (p, t) = c.recv_msg::<ImClientTimeRsp>();
    assert_eq!(p.header.seq_num, seq);
    assert!(t.server_time > 1_600_000_000);

    // Logout: the reply, then the server closes.
    let seq = c.send(&ImLogoutReq {});
    let (p, out) = c.recv_msg::<ImLogoutRsp>();
    assert_eq!((p.header.seq_num, out.result_code), (seq, 0));
    c.expect_eof();

    let (mut c, res) =
        stack.login_with("user61", "0123456789abcdef0123456789abcdef", CLIENT_WINDOWS);
    assert_eq!(res.result_code, 6, "wrong password: DB_VALIDATE_FAILED");
    assert!(res.user_info.is_none());
    c.expect_eof();

    let (mut c, res) = stack.login_with("no_such_user_msg_test", PASSWORD_MD5, CLIENT_WINDOWS);
    assert_eq!(res.result_code, 6, "unknown user: DB_VALIDATE_FAILED");
    c.expect_eof();
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
        let (mut c, res) = stack.login_with("user60", PASSWORD_MD5, CLIENT_WINDOWS);
        assert_eq!(res.result_code, code);
        assert_eq!(res.result_string.as_deref(), Some("服务端异常".as_bytes()));
        assert!(res.user_info.is_none());
        c.expect_eof();
    }
}

#[test]
fn commands_before_login_close_the_connection_heartbeats_are_echoed() {
    let mut stack = Stack::start("msg_server", 1);
    let mut c = stack.connect();
    let hb = Pdu::new(sid::SID_OTHER, cid::CID_OTHER_HEARTBEAT, 7, Vec::new());
    c.send_pdu(&hb);
    let echo = c.recv();
    assert_eq!(
        echo.to_bytes(),
        hb.to_bytes(),
        "heartbeat echoed byte for byte"
    );

    c.send(&ImClientTimeReq {});
    let skipped = c.expect_eof();
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
    c.send(&msg(62, 63, "hello"));
    assert!(c.expect_eof().is_empty());

    // A PDU announcing more than MaxPduLen (1 MiB by default) closes the connection at once.
    let mut c = stack.connect();
    let mut header = tt_proto::pdu::Header::new(sid::SID_OTHER, cid::CID_OTHER_HEARTBEAT, 0);
    header.length = 2 * 1024 * 1024;
    std::io::Write::write_all(&mut c.stream, &header.to_bytes()).unwrap();
    assert!(c.expect_eof().is_empty());
}

#[test]
fn message_between_two_users_on_one_server() {
    let stack = Stack::start("msg_server", 1);
    let (mut a, res) = stack.login("user62", CLIENT_WINDOWS);
    assert_eq!(res.result_code, 0);
    let (mut a2, res) = stack.login("user62", CLIENT_ANDROID);
    assert_eq!(res.result_code, 0);
    let (mut b, res) = stack.login("user63", CLIENT_MAC);
    assert_eq!(res.result_code, 0);

    let text = unique("hello");
    // The client's from_user_id is not trusted.
    let seq = a.send(&msg(1, 63, &text));
    let (p, ack) = a.recv_msg::<ImMsgDataAck>();
    assert_eq!(p.header.seq_num, seq, "the ack carries the sender's seq");
    assert_eq!((ack.user_id, ack.session_id, ack.session_type), (62, 63, 1));
    assert!(ack.msg_id > 0);

    let (p, got) = b.recv_msg::<ImMsgData>();
    assert_eq!(p.header.seq_num, 0);
    assert_eq!(got.msg_data, text.as_bytes());
    assert_eq!((got.from_user_id, got.to_session_id), (62, 63));
    assert_eq!(got.msg_id, ack.msg_id);
    assert!(got.attach_data.is_none());

    // The sender's other device gets a copy.
    let (_, copy) = a2.recv_msg::<ImMsgData>();
    assert_eq!(
        (copy.msg_id, copy.msg_data),
        (ack.msg_id, text.as_bytes().to_vec())
    );

    // The next message gets the next id of this session.
    a.send(&msg(62, 63, &unique("again")));
    let (_, ack2) = a.recv_msg::<ImMsgDataAck>();
    assert_eq!(ack2.msg_id, ack.msg_id + 1);
}

#[test]
fn a_second_pc_login_kicks_the_first_a_mobile_login_stays() {
    let stack = Stack::start("msg_server", 1);
    let (mut first, res) = stack.login("user64", CLIENT_WINDOWS);
    assert_eq!(res.result_code, 0);
    let (mut mobile, res) = stack.login("user64", CLIENT_IOS);
    assert_eq!(res.result_code, 0);
    let (mut second, res) = stack.login("user64", CLIENT_MAC);
    assert_eq!(res.result_code, 0);

    let kick = first.recv_cmd(cid::CID_LOGIN_KICK_USER);
    assert_eq!(kick.header.seq_num, 0);
    let kick = ImKickUser::decode(kick.body.as_slice()).unwrap();
    assert_eq!((kick.user_id, kick.kick_reason), (64, 1));
    first.expect_eof();

    // The mobile and the new PC connection still work.
    for c in [&mut mobile, &mut second] {
        let seq = c.send(&ImClientTimeReq {});
        let (p, _) = c.recv_msg::<ImClientTimeRsp>();
        assert_eq!(p.header.seq_num, seq);
    }
}

#[test]
fn messages_over_the_rate_limit_are_dropped() {
    let stack = Stack::builder("msg_server")
        .msg_conf_extra("MsgRateLimit=5\n")
        .start();
    let (mut a, _) = stack.login("user65", CLIENT_WINDOWS);
    let (mut b, _) = stack.login("user66", CLIENT_WINDOWS);
    let tag = unique("burst");

    // Twelve messages in one write: handled in one go, so at most five are accepted.
    let mut burst = Vec::new();
    for i in 0..12 {
        let seq = a.next_seq();
        burst.extend(Pdu::command(seq, &msg(65, 66, &format!("{tag}-{i}"))).to_bytes());
    }
    std::io::Write::write_all(&mut a.stream, &burst).unwrap();
    let mut acked = Vec::new();
    while acked.len() < 5 {
        let (_, ack) = a.recv_msg::<ImMsgDataAck>();
        acked.push(ack.msg_id);
    }
    // A later message (in a later second) goes through; it is resent while it is dropped
    // (no delivery within 1.5 s). The receiver sees the accepted part of the burst first.
    let marker = format!("{tag}-marker");
    let mut received = Vec::new();
    'outer: for _ in 0..30 {
        a.send(&msg(65, 66, &marker));
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
    let (mut a, _) = stack.login("user67", CLIENT_WINDOWS);
    let (mut b, _) = stack.login("user68", CLIENT_WINDOWS);
    let (mut b2, _) = stack.login("user68", CLIENT_ANDROID);

    let unread_from_67 = |c: &mut Client| -> u32 {
        let seq = c.send(&ImUnreadMsgCntReq {
            user_id: 0,
            attach_data: None,
        });
        let (p, rsp) = c.recv_msg::<ImUnreadMsgCntRsp>();
        assert_eq!(p.header.seq_num, seq);
        assert_eq!(rsp.user_id, 68);
        assert!(
            rsp.attach_data.is_none(),
            "attach_data is not passed to clients"
        );
        rsp.unreadinfo_list
            .iter()
            .find(|u| u.session_id == 67 && u.session_type == 1)
            .map_or(0, |u| u.unread_cnt)
    };

    a.send(&msg(67, 68, &unique("one")));
    a.recv_msg::<ImMsgDataAck>();
    a.send(&msg(67, 68, &unique("two")));
    let (_, ack) = a.recv_msg::<ImMsgDataAck>();
    assert!(unread_from_67(&mut b) >= 2);

    b.send(&ImMsgDataReadAck {
        user_id: 0,
        session_id: 67,
        msg_id: ack.msg_id,
        session_type: 1,
    });
    // The reader's other device is told.
    let (_, notify) = b2.recv_msg::<tt_proto::pb::message::ImMsgDataReadNotify>();
    assert_eq!(
        (notify.user_id, notify.session_id, notify.msg_id),
        (68, 67, ack.msg_id)
    );
    // db_proxy does not answer a read ack: poll the count until it is cleared (hang-guarded).
    let deadline = std::time::Instant::now() + WAIT;
    while unread_from_67(&mut b) != 0 {
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
    let (mut a, _) = stack.login("user69", CLIENT_WINDOWS);
    let (_b, _) = stack.login("user70", CLIENT_WINDOWS);

    // The client's user_id is never trusted: 1 is replaced by 69.
    let seq = a.send(&ImUsersInfoReq {
        user_id: 1,
        user_id_list: vec![70, 71],
        attach_data: None,
    });
    let (p, rsp) = a.recv_msg::<ImUsersInfoRsp>();
    assert_eq!((p.header.seq_num, rsp.user_id), (seq, 69));
    assert!(rsp.attach_data.is_none());
    let mut ids: Vec<u32> = rsp.user_info_list.iter().map(|u| u.user_id).collect();
    ids.sort();
    assert_eq!(ids, vec![70, 71]);

    let seq = a.send(&ImAllUserReq {
        user_id: 1,
        latest_update_time: 0,
        attach_data: None,
    });
    let (p, rsp) = a.recv_msg::<ImAllUserRsp>();
    assert_eq!((p.header.seq_num, rsp.user_id), (seq, 69));
    assert!(rsp.user_list.iter().any(|u| u.user_id == 79));

    let seq = a.send(&ImDepartmentReq {
        user_id: 1,
        latest_update_time: 0,
        attach_data: None,
    });
    let (p, rsp) = a.recv_msg::<ImDepartmentRsp>();
    assert_eq!((p.header.seq_num, rsp.user_id), (seq, 69));

    a.send(&msg(69, 70, &unique("recent")));
    let (_, ack) = a.recv_msg::<ImMsgDataAck>();
    let seq = a.send(&ImRecentContactSessionReq {
        user_id: 1,
        latest_update_time: 0,
        attach_data: None,
    });
    let (p, rsp) = a.recv_msg::<ImRecentContactSessionRsp>();
    assert_eq!((p.header.seq_num, rsp.user_id), (seq, 69));
    assert!(
        rsp.contact_session_list
            .iter()
            .any(|s| s.session_id == 70 && s.latest_msg_id >= ack.msg_id),
        "{rsp:?}"
    );

    let seq = a.send(&ImGetLatestMsgIdReq {
        user_id: 1,
        session_type: 1,
        session_id: 70,
        attach_data: None,
    });
    let (p, rsp) = a.recv_msg::<ImGetLatestMsgIdRsp>();
    assert_eq!((p.header.seq_num, rsp.user_id), (seq, 69));
    assert!(rsp.latest_msg_id >= ack.msg_id);

    // Status of users, answered by route_server: 70 is online on a PC here.
    let seq = a.send(&ImUsersStatReq {
        user_id: 1,
        user_id_list: vec![70],
        attach_data: None,
    });
    let (p, rsp) = a.recv_msg::<ImUsersStatRsp>();
    assert_eq!((p.header.seq_num, rsp.user_id), (seq, 69));
    assert!(rsp.attach_data.is_none());
    assert_eq!(rsp.user_stat_list.len(), 1);
    assert_eq!(
        (rsp.user_stat_list[0].user_id, rsp.user_stat_list[0].status),
        (70, 1)
    );
}

#[test]
fn buddy_status_and_pc_login_status_come_through_route_server() {
    use tt_proto::pb::buddy::{ImUserStatNotify, ImpcLoginStatusNotify};

    let stack = Stack::start("msg_server", 1);
    let (mut watcher, _) = stack.login("user71", CLIENT_WINDOWS);
    let (mut phone, _) = stack.login("user72", CLIENT_ANDROID);
    let (pc, _) = stack.login("user72", CLIENT_WINDOWS);

    // user72's PC login: PC clients hear it, user72's phone is told its PC is online.
    let (_, n) = loop {
        let (p, n) = watcher.recv_msg::<ImUserStatNotify>();
        if n.user_stat.user_id == 72 {
            break (p, n);
        }
    };
    assert_eq!(n.user_stat.status, 1);
    let (p, n) = phone.recv_msg::<ImpcLoginStatusNotify>();
    assert_eq!(p.header.seq_num, 0);
    assert_eq!((n.user_id, n.login_stat), (72, 1));

    // The PC goes away: offline notice to PC clients, PC-offline to the phone.
    drop(pc);
    let n = loop {
        let (_, n) = watcher.recv_msg::<ImUserStatNotify>();
        if n.user_stat.user_id == 72 {
            break n;
        }
    };
    assert_eq!(n.user_stat.status, 2);
    let (_, n) = phone.recv_msg::<ImpcLoginStatusNotify>();
    assert_eq!((n.user_id, n.login_stat), (72, 2));
}

#[test]
fn a_connection_that_does_not_log_in_is_closed_after_the_login_timeout() {
    let mut stack = Stack::start("msg_server", 1);
    let mut c = stack.connect();
    // Heartbeats keep a connection alive, but not one that never logs in (15 s from accept).
    let hb = Pdu::new(sid::SID_OTHER, cid::CID_OTHER_HEARTBEAT, 0, Vec::new());
    c.send_pdu(&hb);
    assert_eq!(c.recv().header.command_id, cid::CID_OTHER_HEARTBEAT);
    c.stream
        .set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    assert!(c.expect_eof().is_empty());
    assert!(stack.msg_daemon(0).wait_for_line("no login within", WAIT));
}

#[test]
fn requests_beyond_the_pending_limit_are_dropped() {
    let mut stack = Stack::builder("msg_server")
        .msg_conf_extra("MaxPendingDbRequests=2\n")
        .start();
    let (mut c, _) = stack.login("user73", CLIENT_WINDOWS);
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
    std::io::Write::write_all(&mut c.stream, &flood).unwrap();
    assert!(stack.msg_daemon(0).wait_for_line("requests waiting", WAIT));
    for _ in 0..2 {
        c.recv_msg::<ImUnreadMsgCntRsp>();
    }
    // With the replies in, the client may ask again.
    let seq = c.send(&req);
    let mut extra = 0;
    loop {
        let (p, _) = c.recv_msg::<ImUnreadMsgCntRsp>();
        if p.header.seq_num == seq {
            break;
        }
        extra += 1;
    }
    assert_eq!(extra, 0, "only two of the flood were forwarded");
}

/// Logs in at msg_server `i` of the stack.
fn login_at(stack: &Stack, i: usize, user: &str, client_type: i32) -> Client {
    let mut c = Client::connect(stack.msg_port(i));
    let res = c.login(user, PASSWORD_MD5, client_type);
    assert_eq!(res.result_code, 0, "{user} at msg_server {i}: {res:?}");
    c
}

/// Every PDU that arrives within `quiet` of the previous one.
fn drain(c: &mut Client, quiet: std::time::Duration) -> Vec<Pdu> {
    let mut seen = Vec::new();
    while let Some(p) = c.recv_within(quiet) {
        seen.push(p);
    }
    seen
}

fn count_cmd(pdus: &[Pdu], cmd: u16) -> usize {
    pdus.iter().filter(|p| p.header.command_id == cmd).count()
}

#[test]
fn two_servers_each_device_gets_each_message_and_read_notify_once() {
    let stack = Stack::start("msg_server", 2);
    let mut a0 = login_at(&stack, 0, "user74", CLIENT_WINDOWS);
    let mut a1 = login_at(&stack, 1, "user74", CLIENT_ANDROID);
    let mut b1 = login_at(&stack, 1, "user75", CLIENT_WINDOWS);
    let mut b0 = login_at(&stack, 0, "user75", CLIENT_ANDROID);
    let quiet = std::time::Duration::from_millis(1500);
    for c in [&mut a0, &mut a1, &mut b0, &mut b1] {
        drain(c, std::time::Duration::from_millis(500));
    }

    let text = unique("two-servers");
    let seq = a0.send(&msg(74, 75, &text));
    let mut got = drain(&mut a0, quiet);
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
        let got = drain(c, quiet);
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
        assert_eq!(msgs[0].from_user_id, 74, "{name}");
        assert!(msgs[0].attach_data.is_none(), "{name}");
    }

    b1.send(&ImMsgDataReadAck {
        user_id: 0,
        session_id: 74,
        msg_id: ack.msg_id,
        session_type: 1,
    });
    let got = drain(&mut b0, quiet);
    assert_eq!(count_cmd(&got, cid::CID_MSG_READ_NOTIFY), 1, "{got:?}");
    let got = drain(&mut b1, quiet);
    assert_eq!(count_cmd(&got, cid::CID_MSG_READ_NOTIFY), 0, "{got:?}");
    for c in [&mut a0, &mut a1] {
        let got = drain(c, std::time::Duration::from_millis(300));
        assert_eq!(count_cmd(&got, cid::CID_MSG_READ_NOTIFY), 0, "{got:?}");
    }

    // A PC login of 74 at server 1 kicks the PC at server 0.
    let _a1pc = login_at(&stack, 1, "user74", CLIENT_MAC);
    let kick = a0.recv_cmd(cid::CID_LOGIN_KICK_USER);
    let kick = ImKickUser::decode(kick.body.as_slice()).unwrap();
    assert_eq!((kick.user_id, kick.kick_reason), (74, 1));
    a0.expect_eof();
}

#[test]
fn a_p2p_command_to_oneself_reaches_every_own_connection_once() {
    use tt_proto::pb::switch_service::Imp2pCmdMsg;

    let stack = Stack::start("msg_server", 1);
    let (mut pc, _) = stack.login("user76", CLIENT_WINDOWS);
    let (mut phone, _) = stack.login("user76", CLIENT_ANDROID);
    let quiet = std::time::Duration::from_millis(800);
    drain(&mut pc, quiet);
    drain(&mut phone, quiet);

    let seq = pc.send(&Imp2pCmdMsg {
        from_user_id: 1,
        to_user_id: 76,
        cmd_msg_data: b"shake".to_vec(),
    });
    for (name, c) in [("sender", &mut pc), ("other device", &mut phone)] {
        let got = drain(c, quiet);
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
        assert_eq!((m.from_user_id, m.to_user_id), (76, 76), "{name}");
    }
}

#[test]
fn a_flood_over_the_limits_is_logged_once_a_second_not_once_a_pdu() {
    let mut stack = Stack::builder("msg_server")
        .msg_conf_extra("MsgRateLimit=2\n")
        .start();
    let (mut a, _) = stack.login("user77", CLIENT_WINDOWS);
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
        burst.extend(Pdu::command(seq, &msg(77, 78, &text)).to_bytes());
    }
    std::io::Write::write_all(&mut a.stream, &burst).unwrap();
    for _ in 0..2 {
        a.recv_msg::<ImMsgDataAck>();
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
    let (mut a, _) = stack.login("user79", CLIENT_WINDOWS);
    let (mut b, _) = stack.login("user78", CLIENT_WINDOWS);
    let tag = unique("relay");
    let p2p = |text: &str| Imp2pCmdMsg {
        from_user_id: 79,
        to_user_id: 78,
        cmd_msg_data: text.as_bytes().to_vec(),
    };

    // Twelve P2P commands in one write: handled in one go, so at most five are relayed.
    let mut burst = Vec::new();
    for i in 0..12 {
        let seq = a.next_seq();
        burst.extend(Pdu::command(seq, &p2p(&format!("{tag}-{i}"))).to_bytes());
    }
    std::io::Write::write_all(&mut a.stream, &burst).unwrap();
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
