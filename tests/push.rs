//! The push settings end to end: a mobile client's device token, the user's push shield (do
//! not disturb) and a member's push shield for a group. Real daemons (two msg_servers where a
//! setting is read on another server), the project-local MariaDB and Redis, clients from
//! `tt_client`; what db_proxy_server stored is read back with the requests msg_server makes
//! of it when it pushes. The seeded users of `tt_testkit::users::PUSH` belong to these tests,
//! each test its own.

mod live_client;

use std::time::Duration;

use live_client::{WAIT, closes_on, fresh, login_at, restart_db_proxy};
use tt_client::tt_proto::ids::cid;
use tt_client::tt_proto::pb::base_define::UserTokenInfo;
use tt_client::tt_proto::pb::{group, login, server};
use tt_client::{Client, ClientType, Event, PushShield};
use tt_testkit::users::PUSH;
use tt_testkit::{PduClient, Stack};

/// A connection to the stack's db_proxy_server, as msg_server has one.
fn db_proxy(stack: &Stack) -> PduClient {
    let mut c = PduClient::connect(stack.ports.db_proxy);
    c.set_hang_guard(WAIT);
    c.skip_heartbeats(true);
    c
}

/// The push targets db_proxy_server has for `user` (what msg_server asks before a push).
fn device_tokens(db: &mut PduClient, user: u32) -> Vec<UserTokenInfo> {
    let rsp: server::ImGetDeviceTokenRsp = db.call(&server::ImGetDeviceTokenReq {
        user_id: vec![user],
        attach_data: None,
    });
    rsp.user_token_info
}

/// The group push shield of each of `users` as db_proxy_server has it (what msg_server asks
/// before pushing a group message).
fn group_shields(db: &mut PduClient, group_id: u32, users: &[u32]) -> Vec<(u32, u32)> {
    let rsp: server::ImGroupGetShieldRsp = db.call(&server::ImGroupGetShieldReq {
        group_id,
        user_id: users.to_vec(),
        attach_data: None,
    });
    rsp.shield_status_list
        .iter()
        .map(|s| (s.user_id, s.shield_status))
        .collect()
}

/// Polls db_proxy_server until the tokens of `user` satisfy `done`. msg_server answers a
/// device-token request itself and stores the token afterwards, with no event for the store,
/// hence a bounded poll.
fn wait_tokens(db: &mut PduClient, user: u32, done: impl Fn(&[UserTokenInfo]) -> bool) {
    for _ in 0..1000 {
        if done(&device_tokens(db, user)) {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!(
        "the device tokens of user{user} never became as expected: {:?}",
        device_tokens(db, user)
    );
}

#[test]
fn a_mobile_device_token_is_answered_validly_and_stored_and_a_pc_one_is_ignored() {
    let stack = Stack::start("push-token", 1);
    let me = PUSH.id(0);
    let mut db = db_proxy(&stack);
    let mut mobile = login_at(&stack, 0, me, ClientType::Android);
    let token = fresh("android-token");

    // The reply passes the original's strict parse: its required user_id is there.
    let seq = mobile
        .send_command(&login::ImDeviceTokenReq {
            user_id: me,
            device_token: token.clone().into_bytes(),
            client_type: None,
            attach_data: None,
        })
        .expect("send");
    let reply = mobile
        .wait_reply(seq, cid::CID_LOGIN_RES_DEVICETOKEN, "device-token reply")
        .expect("a reply");
    let rsp: login::ImDeviceTokenRsp = reply.decode_checked().expect("a valid reply");
    assert_eq!(rsp.user_id, me);
    wait_tokens(&mut db, me, |t| {
        t.iter().any(|t| {
            t.user_id == me
                && t.token == token.as_bytes()
                && t.user_type == ClientType::Android as i32
        })
    });

    // From a PC client: neither answered nor stored. msg_server handles a client's requests in
    // order and echoes a heartbeat at once, so an answer would come before the echo.
    let mut pc = login_at(&stack, 0, me, ClientType::Windows);
    let seq = pc
        .send_command(&login::ImDeviceTokenReq {
            user_id: me,
            device_token: b"pc-token".to_vec(),
            client_type: None,
            attach_data: None,
        })
        .expect("send");
    pc.heartbeat().expect("heartbeat");
    while let Some(e) = pc.next_event(Duration::ZERO).expect("events") {
        assert!(
            !matches!(&e, Event::Other(p) if p.header.command_id == cid::CID_LOGIN_RES_DEVICETOKEN
                && p.header.seq_num == seq),
            "a PC client's device token was answered"
        );
    }
    let tokens = device_tokens(&mut db, me);
    assert!(
        tokens.iter().all(|t| t.token == token.as_bytes()),
        "{tokens:?}"
    );

    // Logging out of the mobile client unregisters its token.
    mobile.logout().expect("logout");
    wait_tokens(&mut db, me, |t| t.iter().all(|t| t.user_id != me));
}

fn shield(result_code: u32, status: u32) -> PushShield {
    PushShield {
        result_code,
        shield_status: Some(status),
    }
}

#[test]
fn the_push_shield_is_set_and_queried_per_user_on_any_msg_server() {
    let stack = Stack::start("push-shield", 2);
    let (me, other) = (PUSH.id(2), PUSH.id(3));
    let mut pc = login_at(&stack, 0, me, ClientType::Windows);
    let mut mobile = login_at(&stack, 1, me, ClientType::Ios);
    let mut o = login_at(&stack, 1, other, ClientType::Windows);
    let before = o.query_push_shield().expect("query");

    assert_eq!(pc.set_push_shield(true).expect("set"), shield(0, 1));
    assert_eq!(mobile.query_push_shield().expect("query"), shield(0, 1));
    assert_eq!(pc.query_push_shield().expect("query"), shield(0, 1));
    assert_eq!(
        o.query_push_shield().expect("query"),
        before,
        "another user's setting is untouched"
    );

    assert_eq!(mobile.set_push_shield(false).expect("set"), shield(0, 0));
    assert_eq!(pc.query_push_shield().expect("query"), shield(0, 0));
}

/// A temporary group of `members` created by `creator`.
fn new_group(creator: &mut Client, members: &[u32]) -> u32 {
    let g = creator
        .create_group(&fresh("push"), "", members)
        .expect("create reply");
    assert_eq!(g.result_code, 0, "{g:?}");
    g.group_id.expect("group id")
}

#[test]
fn a_member_shields_a_group_and_a_non_member_is_refused() {
    let stack = Stack::start("push-group-shield", 2);
    let (creator, member, outsider) = (PUSH.id(4), PUSH.id(5), PUSH.id(6));
    let mut c = login_at(&stack, 0, creator, ClientType::Windows);
    let mut m = login_at(&stack, 1, member, ClientType::Android);
    let mut x = login_at(&stack, 1, outsider, ClientType::Windows);
    let mut db = db_proxy(&stack);
    let gid = new_group(&mut c, &[creator, member]);
    assert_eq!(
        group_shields(&mut db, gid, &[member, creator]),
        vec![(member, 0), (creator, 0)]
    );

    assert_eq!(m.shield_group(gid, true).expect("shield reply"), 0);
    assert_eq!(x.shield_group(gid, true).expect("shield reply"), 1);
    assert_eq!(
        group_shields(&mut db, gid, &[member, creator, outsider]),
        vec![(member, 1), (creator, 0), (outsider, 0)]
    );

    assert_eq!(m.shield_group(gid, false).expect("shield reply"), 0);
    assert_eq!(group_shields(&mut db, gid, &[member]), vec![(member, 0)]);
}

#[test]
fn push_settings_survive_a_db_proxy_restart() {
    let mut stack = Stack::start("push-restart", 1);
    let (me, creator, member) = (PUSH.id(7), PUSH.id(8), PUSH.id(9));
    let mut a = login_at(&stack, 0, me, ClientType::Windows);
    let mut c = login_at(&stack, 0, creator, ClientType::Windows);
    let mut m = login_at(&stack, 0, member, ClientType::Android);
    assert_eq!(a.set_push_shield(true).expect("set"), shield(0, 1));
    let gid = new_group(&mut c, &[creator, member]);
    assert_eq!(m.shield_group(gid, true).expect("shield reply"), 0);
    let token = fresh("kept-token");
    m.set_device_token(&token).expect("token reply");
    let stored = |t: &[UserTokenInfo]| t.iter().any(|t| t.token == token.as_bytes());
    wait_tokens(&mut db_proxy(&stack), member, stored);

    restart_db_proxy(&mut stack);

    assert_eq!(a.query_push_shield().expect("query"), shield(0, 1));
    let mut db = db_proxy(&stack);
    assert_eq!(group_shields(&mut db, gid, &[member]), vec![(member, 1)]);
    assert!(
        stored(&device_tokens(&mut db, member)),
        "the device token was lost"
    );
    // Back to the seeded value.
    assert_eq!(a.set_push_shield(false).expect("set"), shield(0, 0));
}

#[test]
fn malformed_bodies_close_the_connection() {
    let stack = Stack::start("push-bad", 1);
    let me = PUSH.id(1);
    const PC: ClientType = ClientType::Windows;
    const MOBILE: ClientType = ClientType::Android;
    for body in [&[][..], &[0xff, 0xff, 0xff][..]] {
        closes_on::<login::ImPushShieldReq, login::ImPushShieldRsp>(&stack, me, PC, body);
        closes_on::<login::ImQueryPushShieldReq, login::ImQueryPushShieldRsp>(&stack, me, PC, body);
        closes_on::<login::ImDeviceTokenReq, login::ImDeviceTokenRsp>(&stack, me, MOBILE, body);
        closes_on::<group::ImGroupShieldReq, group::ImGroupShieldRsp>(&stack, me, PC, body);
    }
    // The server goes on serving the user.
    let mut c = login_at(&stack, 0, me, PC);
    assert_eq!(c.query_push_shield().expect("query").result_code, 0);
}
