//! Real chat end to end: db_proxy_server, route_server, login_server and msg_servers spawned as
//! processes on free ports, the project-local MariaDB and Redis, clients from `tt_client`.
//! The seeded users of `tt_testkit::users::CHAT` belong to these tests (one pair or user per
//! test, so the tests can run in parallel and assert exact counts).

mod live_client;

use std::time::Duration;

use live_client::{WAIT, login_at, raw_login};
use tt_client::tt_proto::pb::login::{ImKickPcClientReq, ImKickPcClientRsp};
use tt_client::tt_proto::pb::message::{ImClientTimeReq, ImClientTimeRsp};
use tt_client::{Client, ClientType, Error, Event, UserStatType};
use tt_testkit::stack::LIMIT;
use tt_testkit::users::{CHAT, PASSWORD};
use tt_testkit::{PduClient, Stack};

fn login_result(stack: &Stack, server: usize, name: &str, password: &str) -> Result<u32, Error> {
    let mut c = Client::connect_to(stack.msg_addr(server)).expect("connect to msg_server");
    c.login(
        name,
        password,
        ClientType::Windows,
        UserStatType::UserStatusOnline,
    )
    .map(|info| info.user_id)
}

/// The next message event from `from`, skipping other events (status notifies…).
fn next_message(c: &mut Client, from: u32) -> tt_client::Message {
    match c.wait_for(WAIT, |e| matches!(e, Event::Message(m) if m.from == from)) {
        Ok(Some(Event::Message(m))) => m,
        other => panic!("no message from {from}: {other:?}"),
    }
}

#[test]
fn login_through_login_server_and_the_original_refusals() {
    let stack = Stack::start("e2e-login", 1);
    // Discovery hands out the one msg_server.
    let addr = Client::discover(&stack.login_url()).expect("discovery");
    assert_eq!(addr.port, stack.ports.msg[0]);
    let (id, name) = (CHAT.id(0), CHAT.name(0));
    let mut c = Client::connect(&addr).expect("connect");
    let info = c
        .login(
            &name,
            PASSWORD,
            ClientType::Windows,
            UserStatType::UserStatusOnline,
        )
        .unwrap_or_else(|e| panic!("{name} logs in: {e}"));
    assert_eq!(info.user_id, id);
    assert_eq!(info.user_info.user_id, id);

    // Wrong password and unknown user: the original's REFUSE_REASON_DB_VALIDATE_FAILED (6).
    let e = login_result(&stack, 0, &name, "wrong").unwrap_err();
    assert_eq!(e.result_code(), Some(6), "{e}");
    let e = login_result(&stack, 0, "no_such_user_xyz", PASSWORD).unwrap_err();
    assert_eq!(e.result_code(), Some(6), "{e}");
}

#[test]
fn two_users_on_two_msg_servers_chat_both_ways() {
    let stack = Stack::start("e2e-chat", 2);
    let (a_id, b_id) = (CHAT.id(1), CHAT.id(2));
    let mut a = login_at(&stack, 0, a_id, ClientType::Windows);
    let mut b = login_at(&stack, 1, b_id, ClientType::Mac);
    let (hello, hi) = (format!("hello from {a_id}"), format!("hi from {b_id}"));

    let before = a.latest_msg_id(b_id).expect("latest msg id");
    let sent = a.send_text(b_id, &hello).expect("ack");
    assert_eq!(sent.msg_id, before + 1, "msg ids of a pair go up by one");
    let got = next_message(&mut b, a_id);
    assert_eq!((got.to, got.msg_id), (b_id, sent.msg_id));
    assert_eq!(got.text.as_deref(), Some(hello.as_str()));

    let reply = b.send_text(a_id, &hi).expect("ack");
    assert_eq!(reply.msg_id, sent.msg_id + 1);
    let got = next_message(&mut a, b_id);
    assert_eq!((got.to, got.msg_id), (a_id, reply.msg_id));
    assert_eq!(got.text.as_deref(), Some(hi.as_str()));

    // The same content and id from the store.
    let history = a.get_msg_list(b_id, 0, 2).expect("history");
    let ids: Vec<u32> = history.iter().map(|m| m.msg_id).collect();
    assert_eq!(ids, vec![reply.msg_id, sent.msg_id], "newest first");
    assert_eq!(history[0].text.as_deref(), Some(hi.as_str()));
}

#[test]
fn an_offline_receiver_finds_unread_messages_and_history_and_a_read_ack_clears_them() {
    let stack = Stack::start("e2e-offline", 1);
    let (s_id, r_id) = (CHAT.id(3), CHAT.id(4));
    // Start from a clean unread state for the pair (the receiver reads everything).
    let mut r = login_at(&stack, 0, r_id, ClientType::Windows);
    r.read_ack(s_id, 0).expect("read ack");
    wait_unread(&mut r, s_id, 0);
    r.logout().expect("logout");

    let mut s = login_at(&stack, 0, s_id, ClientType::Windows);
    let first = s.send_text(r_id, "while you were out (1)").expect("ack");
    let second = s.send_text(r_id, "while you were out (2)").expect("ack");
    assert_eq!(second.msg_id, first.msg_id + 1);

    let mut r = login_at(&stack, 0, r_id, ClientType::Windows);
    let unread = r.unread_counts().expect("unread");
    let entry = unread
        .sessions
        .iter()
        .find(|u| u.session_id == s_id)
        .expect("an unread entry for the sender");
    assert_eq!(entry.unread_cnt, 2);
    assert_eq!(entry.latest.msg_id, second.msg_id);

    let history = r.get_msg_list(s_id, 0, 2).expect("history");
    let got: Vec<(u32, u32, Option<String>)> = history
        .into_iter()
        .map(|m| (m.msg_id, m.from, m.text))
        .collect();
    assert_eq!(
        got,
        vec![
            (second.msg_id, s_id, Some("while you were out (2)".into())),
            (first.msg_id, s_id, Some("while you were out (1)".into())),
        ],
        "the original's order: newest first"
    );

    r.read_ack(s_id, second.msg_id).expect("read ack");
    wait_unread(&mut r, s_id, 0);
}

/// A read ack has no reply in the protocol, and msg_server spreads requests over several
/// db_proxy connections: ask again until the count is what it must become (bounded).
fn wait_unread(c: &mut Client, peer: u32, want: u32) {
    for _ in 0..200 {
        let unread = c.unread_counts().expect("unread");
        let n = unread
            .sessions
            .iter()
            .find(|u| u.session_id == peer)
            .map_or(0, |u| u.unread_cnt);
        if n == want {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("unread count from {peer} never became {want}");
}

#[test]
fn a_second_pc_login_kicks_the_first_and_a_mobile_login_stays() {
    let stack = Stack::start("e2e-kick", 2);
    let id = CHAT.id(5);
    let mut mobile = login_at(&stack, 0, id, ClientType::Android);
    let mut first_pc = login_at(&stack, 0, id, ClientType::Windows);
    // The second PC login is on the other msg_server: the kick goes through route_server.
    let mut second_pc = login_at(&stack, 1, id, ClientType::Mac);

    match first_pc.wait_for(WAIT, |e| matches!(e, Event::Kicked { .. })) {
        Ok(Some(Event::Kicked { user_id, reason })) => {
            assert_eq!((user_id, reason), (id, 1), "KICK_REASON_DUPLICATE_USER");
        }
        other => panic!("the first PC login was not kicked: {other:?}"),
    }
    // …and its connection is closed by the server.
    match first_pc.wait_for(WAIT, |e| matches!(e, Event::Closed)) {
        Ok(Some(Event::Closed)) => {}
        other => panic!("the kicked connection was not closed: {other:?}"),
    }

    // The mobile session is untouched: it answers, and was not kicked (anything sent to it by
    // the kick would have come before this echo).
    mobile.heartbeat().expect("mobile still served");
    assert!(!mobile.is_closed());
    while let Ok(Some(e)) = mobile.next_event(Duration::ZERO) {
        assert!(!matches!(e, Event::Kicked { .. } | Event::Closed), "{e:?}");
    }
    second_pc.heartbeat().expect("the new PC login is served");
}

#[test]
fn a_mobile_client_logs_out_the_users_pc_client_on_another_msg_server() {
    let stack = Stack::start("e2e-kick-pc", 2);
    let id = CHAT.id(17);
    // One PC and one mobile session per user (a login kicks the older one of its kind): the
    // PC client is on the other msg_server, so its kick goes through route_server.
    let mut pc = login_at(&stack, 1, id, ClientType::Mac);
    let mut mobile = raw_login(&stack, 0, id, ClientType::Ios);

    let seq = mobile.send(&ImKickPcClientReq { user_id: 0 });
    let (header, rsp) = mobile.recv::<ImKickPcClientRsp>();
    assert_eq!(header.seq_num, seq);
    assert_eq!((rsp.user_id, rsp.result_code), (id, 0));

    match pc.wait_for(WAIT, |e| matches!(e, Event::Kicked { .. })) {
        Ok(Some(Event::Kicked { user_id, reason })) => {
            assert_eq!((user_id, reason), (id, 2), "KICK_REASON_MOBILE_KICK");
        }
        other => panic!("the PC client was not kicked: {other:?}"),
    }
    match pc.wait_for(WAIT, |e| matches!(e, Event::Closed)) {
        Ok(Some(Event::Closed)) => {}
        other => panic!("the kicked PC client was not closed: {other:?}"),
    }
    // The mobile client stays and is served (a PC login-status notice may come first).
    mobile.send(&ImClientTimeReq {});
    mobile.recv::<ImClientTimeRsp>();
}

#[test]
fn logins_are_refused_while_route_server_is_down_and_accepted_after_it_returns() {
    let mut stack = Stack::start("e2e-route", 1);
    let (id, name) = (CHAT.id(6), CHAT.name(6));
    Stack::kill(&mut stack.route);
    assert!(
        stack
            .msg_daemon(0)
            .wait_for_line("lost the link to route_server", LIMIT),
        "msg_server did not notice route_server going away"
    );
    let e = login_result(&stack, 0, &name, PASSWORD).unwrap_err();
    assert_eq!(
        e.result_code(),
        Some(5),
        "REFUSE_REASON_NO_ROUTE_SERVER: {e}"
    );

    stack.start_route();
    assert!(
        stack
            .msg_daemon(0)
            .wait_for_line("connected to route_server", LIMIT),
        "msg_server did not reconnect to route_server"
    );
    assert_eq!(login_result(&stack, 0, &name, PASSWORD).unwrap(), id);
}

#[test]
fn chat_resumes_after_db_proxy_is_killed_and_restarted() {
    let mut stack = Stack::start("e2e-dbproxy", 1);
    let (a_id, b_id) = (CHAT.id(7), CHAT.id(8));
    let mut a = login_at(&stack, 0, a_id, ClientType::Windows);
    let mut b = login_at(&stack, 0, b_id, ClientType::Windows);
    let before = a.send_text(b_id, "before").expect("ack");
    assert_eq!(next_message(&mut b, a_id).msg_id, before.msg_id);

    Stack::kill(&mut stack.db_proxy);
    assert!(
        stack
            .msg_daemon(0)
            .wait_for_line("lost the link to db_proxy_server", LIMIT)
    );
    stack.start_db_proxy();
    assert!(
        stack
            .msg_daemon(0)
            .wait_for_line("connected to db_proxy_server", LIMIT),
        "msg_server did not reconnect to db_proxy_server"
    );

    let after = a.send_text(b_id, "after").expect("ack after the restart");
    assert_eq!(
        after.msg_id,
        before.msg_id + 1,
        "nothing lost, nothing repeated"
    );
    let got = next_message(&mut b, a_id);
    assert_eq!(
        (got.msg_id, got.text.as_deref()),
        (after.msg_id, Some("after"))
    );
}

#[test]
fn garbage_and_oversized_lengths_are_disconnected_and_others_are_still_served() {
    let stack = Stack::start("e2e-garbage", 1);
    let expect_closed = |bytes: &[u8]| {
        let mut c = PduClient::connect_to(stack.msg_addr(0));
        c.set_hang_guard(WAIT);
        c.send_bytes(bytes);
        // The server closes: end of stream (or a reset), never a reply, never a hang.
        assert_eq!(c.expect_closed(), vec![], "no reply before the close");
    };
    // A length under the header size.
    expect_closed(&[0, 0, 0, 5, 0, 1, 0, 0, 0, 1, 1, 3, 0, 1, 0, 0]);
    // A length of 2 GiB.
    expect_closed(&[0x7f, 0xff, 0xff, 0xff, 0, 1, 0, 0, 0, 1, 1, 3, 0, 1, 0, 0]);
    // Text instead of PDUs.
    expect_closed(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");

    assert_eq!(
        login_result(&stack, 0, &CHAT.name(9), PASSWORD).unwrap(),
        CHAT.id(9)
    );
}

#[test]
fn everything_survives_a_restart_of_every_daemon() {
    let (s_id, r_id) = (CHAT.id(15), CHAT.id(16));
    let (first, before) = {
        let stack = Stack::start("e2e-restart-a", 1);
        let mut r = login_at(&stack, 0, r_id, ClientType::Windows);
        r.read_ack(s_id, 0).expect("read ack");
        wait_unread(&mut r, s_id, 0);
        r.logout().expect("logout");
        let mut s = login_at(&stack, 0, s_id, ClientType::Windows);
        let before = s.latest_msg_id(r_id).expect("latest");
        let first = s.send_text(r_id, "kept across restarts").expect("ack");
        (first, before)
        // Every daemon of this stack is killed here.
    };
    assert_eq!(first.msg_id, before + 1);

    let stack = Stack::start("e2e-restart-b", 1);
    let mut r = login_at(&stack, 0, r_id, ClientType::Windows);
    let unread = r.unread_counts().expect("unread");
    let entry = unread.sessions.iter().find(|u| u.session_id == s_id);
    assert_eq!(entry.map(|u| u.unread_cnt), Some(1), "{unread:?}");
    let history = r.get_msg_list(s_id, 0, 1).expect("history");
    assert_eq!(history[0].msg_id, first.msg_id);
    assert_eq!(history[0].text.as_deref(), Some("kept across restarts"));
    // Message ids go on from where they were.
    let next = r.send_text(s_id, "and we go on").expect("ack");
    assert_eq!(next.msg_id, first.msg_id + 1);
}
