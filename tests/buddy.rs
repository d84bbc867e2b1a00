//! The buddy-list family end to end: signature and avatar changes, removing a recent session,
//! the users changed since a time. Real daemons (two msg_servers where a notification crosses
//! servers), the project-local MariaDB and Redis, clients from `tt_client`. The seeded users
//! of `tt_testkit::users::BUDDY` belong to these tests, each test its own.

mod live_client;

use std::time::Duration;

use live_client::{WAIT, closes_on, fresh, login_at, restart_db_proxy};
use tt_client::tt_proto::pb::buddy;
use tt_client::tt_proto::prost::Message as _;
use tt_client::{Client, ClientType, Event, Session, UserInfo};
use tt_testkit::Stack;
use tt_testkit::users::BUDDY;

/// The record of `user` as another client reads it.
fn user_record(c: &mut Client, user: u32) -> UserInfo {
    let mut list = c.user_info(&[user]).expect("user info");
    assert_eq!(list.len(), 1, "one record for user {user}");
    list.remove(0)
}

/// Waits for `user`'s signature change to `sign` on `c`.
fn expect_sign_notify(c: &mut Client, user: u32, sign: &str) {
    let got = c.wait_for(WAIT, |e| {
        matches!(e, Event::SignInfoChanged { user_id, sign_info }
            if *user_id == user && sign_info == sign)
    });
    assert!(
        matches!(got, Ok(Some(_))),
        "user{} was not told of user{user}'s signature: {got:?}",
        c.user_id()
    );
}

#[test]
fn a_signature_change_is_answered_told_to_every_other_client_on_both_servers_and_shown() {
    let stack = Stack::start("buddy-sign", 2);
    let (me, a, b, c) = (BUDDY.id(0), BUDDY.id(1), BUDDY.id(2), BUDDY.id(3));
    let mut pc = login_at(&stack, 0, me, ClientType::Windows);
    let mut my_mobile = login_at(&stack, 1, me, ClientType::Android);
    let mut a_pc = login_at(&stack, 0, a, ClientType::Windows);
    let mut b_mobile = login_at(&stack, 1, b, ClientType::Ios);
    let mut c_pc = login_at(&stack, 1, c, ClientType::Mac);

    let sign = fresh("签名 with spaces");
    let rsp = pc.change_sign_info(&sign).expect("sign reply");
    assert_eq!(rsp.result_code, 0);
    assert_eq!(rsp.sign_info.as_deref(), Some(sign.as_bytes()));

    // Every other online client, PC and mobile, here and on the other msg_server.
    expect_sign_notify(&mut a_pc, me, &sign);
    expect_sign_notify(&mut b_mobile, me, &sign);
    expect_sign_notify(&mut c_pc, me, &sign);
    expect_sign_notify(&mut my_mobile, me, &sign);

    // The stored record shows it, read from either server.
    assert_eq!(
        user_record(&mut a_pc, me).sign_info,
        Some(sign.clone().into())
    );
    assert_eq!(
        user_record(&mut c_pc, me).sign_info,
        Some(sign.clone().into())
    );

    // Over 128 bytes: refused, nothing stored.
    let long = "长".repeat(43); // 129 bytes
    let rsp = pc.change_sign_info(&long).expect("sign reply");
    assert_eq!(rsp.result_code, 1, "a signature over 128 bytes");
    assert_eq!(rsp.sign_info, None);
    assert_eq!(user_record(&mut a_pc, me).sign_info, Some(sign.into()));
}

#[test]
fn an_avatar_change_is_answered_and_stored() {
    let stack = Stack::start("buddy-avatar", 1);
    let me = BUDDY.id(4);
    let mut c = login_at(&stack, 0, me, ClientType::Windows);
    let url = fresh("http://127.0.0.1:8700/g0/000/000/avatar.png?");
    assert_eq!(c.change_avatar(&url).expect("avatar reply"), 0);
    assert_eq!(user_record(&mut c, me).avatar_url, url.as_bytes());

    // Longer than the 255-character column: refused, the stored one stays.
    let long = format!("http://x/{}", "a".repeat(250));
    assert_eq!(c.change_avatar(&long).expect("avatar reply"), 1);
    assert_eq!(user_record(&mut c, me).avatar_url, url.as_bytes());

    // A user that does not exist has no record: the original's empty list.
    assert!(c.user_info(&[0x7fff_fff0]).expect("user info").is_empty());
}

fn has_session(c: &mut Client, s: Session) -> bool {
    c.recent_sessions(0)
        .expect("recent sessions")
        .iter()
        .any(|r| r.session_id == s.id && r.session_type == s.kind as i32)
}

fn unread_from(c: &mut Client, s: Session) -> u32 {
    c.unread_counts()
        .expect("unread")
        .sessions
        .iter()
        .find(|u| u.session_id == s.id && u.session_type == s.kind as i32)
        .map_or(0, |u| u.unread_cnt)
}

fn expect_removed_notify(c: &mut Client, user: u32, s: Session) {
    let got = c.wait_for(WAIT, |e| {
        matches!(e, Event::SessionRemoved { user_id, session_id, session_type }
            if *user_id == user && *session_id == s.id && *session_type == s.kind as i32)
    });
    assert!(
        matches!(got, Ok(Some(_))),
        "the other device was not told of the removal of {s:?}: {got:?}"
    );
}

#[test]
fn removing_a_session_answers_hides_it_clears_its_unread_count_and_tells_my_other_devices() {
    let stack = Stack::start("buddy-rmsession", 2);
    let (me, peer, member) = (BUDDY.id(5), BUDDY.id(6), BUDDY.id(7));
    let mut pc = login_at(&stack, 0, me, ClientType::Windows);
    let mut mobile = login_at(&stack, 1, me, ClientType::Android);
    let mut p = login_at(&stack, 1, peer, ClientType::Windows);

    // A single session: the peer writes to me.
    let sent = p.send_text(me, &fresh("hello")).expect("ack");
    let got = pc.wait_for(
        WAIT,
        |e| matches!(e, Event::Message(m) if m.msg_id == sent.msg_id),
    );
    assert!(matches!(got, Ok(Some(_))), "{got:?}");
    let single = Session::user(peer);
    assert!(has_session(&mut pc, single));
    assert!(unread_from(&mut pc, single) >= 1);

    let r = pc.remove_session(single).expect("remove reply");
    assert_eq!((r.result_code, r.session), (0, single));
    expect_removed_notify(&mut mobile, me, single);
    assert!(
        !has_session(&mut pc, single),
        "the removed session is still listed"
    );
    assert!(!has_session(&mut mobile, single));
    assert_eq!(
        unread_from(&mut pc, single),
        0,
        "removal clears the unread count"
    );

    // Removing it again, or a session that never was: the original's failure result.
    assert_eq!(pc.remove_session(single).expect("reply").result_code, 1);
    let never = Session::user(0x7fff_fff0);
    assert_eq!(pc.remove_session(never).expect("reply").result_code, 1);

    // A group session: a group of my own, one message from me.
    let g = pc
        .create_group(&fresh("rm"), "", &[me, member])
        .expect("create reply");
    assert_eq!(g.result_code, 0, "{g:?}");
    let gid = g.group_id.expect("group id");
    pc.send_group_text(gid, "to the group").expect("group ack");
    let group = Session::group(gid);
    assert!(has_session(&mut pc, group), "the sender's group session");
    let r = pc.remove_session(group).expect("remove reply");
    assert_eq!((r.result_code, r.session), (0, group));
    expect_removed_notify(&mut mobile, me, group);
    assert!(!has_session(&mut pc, group));
}

#[test]
fn changed_users_lists_those_changed_since_the_time_given_and_moves_the_time_forward() {
    let stack = Stack::start("buddy-changed", 1);
    let (signer, painter, untouched) = (BUDDY.id(8), BUDDY.id(9), BUDDY.id(19));
    let mut s = login_at(&stack, 0, signer, ClientType::Windows);
    let mut p = login_at(&stack, 0, painter, ClientType::Windows);

    // Change times are whole seconds: the changes below must come after `since`. The
    // protocol has no event for a second passing, so poll the server's clock (bounded).
    let since = s.server_time().expect("time");
    let mut polls = 0;
    while s.server_time().expect("time") <= since {
        polls += 1;
        assert!(polls < 1000, "the server clock does not move");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        s.change_sign_info(&fresh("changed"))
            .expect("sign")
            .result_code,
        0
    );
    assert_eq!(
        p.change_avatar(&fresh("http://x/changed")).expect("avatar"),
        0
    );

    let (users, latest) = s.all_users(since).expect("changed users");
    let ids: Vec<u32> = users.iter().map(|u| u.user_id).collect();
    assert!(
        ids.contains(&signer),
        "a signature change is a change: {ids:?}"
    );
    assert!(
        ids.contains(&painter),
        "an avatar change is a change: {ids:?}"
    );
    assert!(
        !ids.contains(&untouched),
        "user{untouched} was not changed since {since}"
    );
    assert!(
        latest > since,
        "the returned time moves forward: {latest} after {since}"
    );

    // Every user (not deleted) for time 0.
    let (all, _) = s.all_users(0).expect("all users");
    assert!(all.iter().any(|u| u.user_id == untouched));
}

#[test]
fn profile_changes_and_removed_sessions_survive_a_db_proxy_restart() {
    let mut stack = Stack::start("buddy-restart", 1);
    let (me, peer) = (BUDDY.id(10), BUDDY.id(11));
    let mut c = login_at(&stack, 0, me, ClientType::Windows);
    let mut p = login_at(&stack, 0, peer, ClientType::Windows);
    let (sign, url) = (fresh("kept"), fresh("http://x/kept"));
    assert_eq!(c.change_sign_info(&sign).expect("sign").result_code, 0);
    assert_eq!(c.change_avatar(&url).expect("avatar"), 0);
    p.send_text(me, "a session to remove").expect("ack");
    let single = Session::user(peer);
    assert!(has_session(&mut c, single));
    assert_eq!(c.remove_session(single).expect("remove").result_code, 0);

    restart_db_proxy(&mut stack);

    let u = user_record(&mut p, me);
    assert_eq!(u.sign_info, Some(sign.into()));
    assert_eq!(u.avatar_url, url.as_bytes());
    assert!(!has_session(&mut c, single), "the removal was lost");
}

#[test]
fn malformed_bodies_close_the_connection_and_others_are_still_served() {
    const PC: ClientType = ClientType::Windows;
    let stack = Stack::start("buddy-bad", 1);
    let me = BUDDY.id(12);
    // A body lacking the required fields, bytes that are no protobuf, and a remove-session
    // request of a session type that does not exist (proto2 treats it as missing).
    let bad_type = buddy::ImRemoveSessionReq {
        user_id: me,
        session_type: 7,
        session_id: 1,
        attach_data: None,
    }
    .encode_to_vec();
    for body in [&[][..], &[0xff, 0xff, 0xff][..]] {
        closes_on::<buddy::ImChangeSignInfoReq, buddy::ImChangeSignInfoRsp>(&stack, me, PC, body);
        closes_on::<buddy::ImChangeAvatarReq, buddy::ImChangeAvatarRsp>(&stack, me, PC, body);
        closes_on::<buddy::ImRemoveSessionReq, buddy::ImRemoveSessionRsp>(&stack, me, PC, body);
        closes_on::<buddy::ImAllUserReq, buddy::ImAllUserRsp>(&stack, me, PC, body);
    }
    closes_on::<buddy::ImRemoveSessionReq, buddy::ImRemoveSessionRsp>(&stack, me, PC, &bad_type);

    // The server goes on serving, the user included.
    let mut c = login_at(&stack, 0, me, ClientType::Windows);
    assert_eq!(user_record(&mut c, me).user_id, me);
}
