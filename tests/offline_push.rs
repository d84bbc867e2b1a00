//! Offline push end to end: msg_server → db_proxy_server (device tokens, shields) →
//! route_server (PC presence) → push_server → a push gateway played by an HTTP listener inside
//! the test ([`tt_testkit::push_gateway`]), with two msg_servers, MariaDB and Redis.
//!
//! Device tokens are written to Redis as db_proxy_server stores them (`device_<user>` =
//! `ios:<token>` / `android:<token>`): a user set up that way is offline with a token, as a
//! phone whose app was closed without logging out. Push shields go through the clients.
//!
//! Synchronisation: a push happens after the sender's ack, so the tests wait on the gateway's
//! recorded notifications (hang guard). "No push" is shown by a later message whose push does
//! come: push_server delivers in the order it is asked, so a push that was due would have come
//! before it. The seeded users of `tt_testkit::users::OFFLINE_PUSH` belong to these tests.

mod live_client;

use std::collections::HashMap;

use live_client::{WAIT, fresh, login_at};
use mysql::prelude::Queryable;
use tt_client::{Client, ClientType, Event, UserStatType};
use tt_testkit::push_gateway::{Answer, Notification, PushGateway};
use tt_testkit::stack::LIMIT;
use tt_testkit::users::OFFLINE_PUSH;
use tt_testkit::{Stack, mysql_conn, redis_conn, redis_db};

/// Gorush's platform codes.
const IOS: u64 = 1;
const ANDROID: u64 = 2;
/// The flash of a picture (msg_server.md §10.4).
const ANY_MESSAGE: &str = "您收到了一条消息";

/// A device token stored for `user` as db_proxy_server stores it; returns the token.
fn give_token(user: u32, platform: u64) -> String {
    let nanos = fresh("").trim().parse::<u128>().expect("a number") as u64;
    let token = if platform == IOS {
        format!("{nanos:016x}{user:048x}")
    } else {
        format!("fcm-{user}-{nanos:x}")
    };
    let kind = if platform == IOS { "ios" } else { "android" };
    let mut r = redis_conn(redis_db::TOKEN);
    redis::cmd("SET")
        .arg(format!("device_{user}"))
        .arg(format!("{kind}:{token}"))
        .query::<()>(&mut r)
        .expect("storing a device token");
    redis::cmd("SET")
        .arg(format!("device_{token}"))
        .arg(user.to_string())
        .query::<()>(&mut r)
        .expect("storing a token's owner");
    token
}

/// Push shields off for `users` (a run that failed may have left one on).
fn shields_off(users: &[u32]) {
    let mut db = mysql_conn();
    for &u in users {
        db.exec_drop("UPDATE IMUser SET push_shield_status=0 WHERE id=?", (u,))
            .expect("clearing a push shield");
    }
}

/// A stack of two msg_servers with push_server delivering to `gateway`.
fn stack(label: &str, gateway: &PushGateway) -> Stack {
    Stack::builder(label)
        .msg_servers(2)
        .push_gateway(&gateway.url())
        .start()
}

/// The seeded nick of `user`.
fn nick(user: u32) -> String {
    format!("User {user}")
}

/// Waits until `watcher` (a PC client) is told that `user` is online on a PC: route_server
/// then knows it, before any later presence query.
fn seen_online(watcher: &mut Client, user: u32) {
    let online = UserStatType::UserStatusOnline as i32;
    let seen = watcher
        .wait_for(WAIT, |e| {
            matches!(e, Event::UserStatus { user_id, status } if *user_id == user && *status == online)
        })
        .expect("events");
    assert!(seen.is_some(), "user{user} never showed online");
}

fn assert_normal(n: &Notification, platform: u64, text: &str) {
    assert_eq!(n.platform, platform, "{n:?}");
    assert!(!n.silent, "{n:?}");
    assert_eq!(n.message.as_deref(), Some(text), "{n:?}");
    assert!(
        n.badge.is_some_and(|b| b >= 1),
        "the badge counts the unread: {n:?}"
    );
}

#[test]
fn single_messages_push_once_with_the_original_text_and_not_to_shielded_users() {
    let mut gateway = PushGateway::start(&[]);
    let stack = stack("push-single", &gateway);
    let u = |i| OFFLINE_PUSH.id(i);
    let (a, ios, android, pc, shielded, last) = (u(0), u(1), u(2), u(3), u(4), u(5));
    shields_off(&[ios, android, pc, shielded, last]);
    let ios_token = give_token(ios, IOS);
    let android_token = give_token(android, ANDROID);
    let pc_token = give_token(pc, IOS);
    let shielded_token = give_token(shielded, ANDROID);
    let last_token = give_token(last, ANDROID);

    let mut s = login_at(&stack, 1, shielded, ClientType::Android);
    assert_eq!(s.set_push_shield(true).expect("shield").result_code, 0);
    drop(s);
    let mut sender = login_at(&stack, 0, a, ClientType::Windows);
    let _pc = login_at(&stack, 1, pc, ClientType::Mac);
    seen_online(&mut sender, pc);

    // iOS, offline: the sender's nick and the text; data as the original's.
    sender.send_text(ios, "hello").expect("ack");
    let (before, n) = gateway.until_token(&ios_token);
    assert!(before.is_empty(), "{before:?}");
    assert_normal(&n, IOS, &format!("{}:hello", nick(a)));
    assert_eq!(n.data["from_id"], a);
    assert_eq!(n.data["msg_type"], 1);
    assert!(n.data.get("group_id").is_none(), "{n:?}");

    // Android, offline: a long text is cut at 37 bytes (here inside no character), then "...".
    let long = "abcdefghijklmnopqrstuvwxyz0123456789";
    sender.send_text(android, long).expect("ack");
    let (before, n) = gateway.until_token(&android_token);
    assert!(before.is_empty(), "{before:?}");
    let flash = format!("{}:{long}", nick(a));
    assert_normal(&n, ANDROID, &format!("{}...", &flash[..37]));

    // A picture reads as "a message".
    let picture = "&$#@~^@[{:http://127.0.0.1:8700/a.png:}]&$~@#@";
    sender.send_text(ios, picture).expect("ack");
    let (before, n) = gateway.until_token(&ios_token);
    assert!(before.is_empty(), "{before:?}");
    assert_normal(&n, IOS, ANY_MESSAGE);

    // Online on a PC: a silent push (the badge only).
    sender.send_text(pc, "at the desk").expect("ack");
    let (before, n) = gateway.until_token(&pc_token);
    assert!(before.is_empty(), "{before:?}");
    assert_eq!(
        (n.platform, n.silent, n.message.as_deref()),
        (IOS, true, None)
    );

    // Push shield on: nothing, at any hour; the next push shows nothing came before it.
    sender.send_text(shielded, "quiet").expect("ack");
    sender.send_text(last, "last").expect("ack");
    let (before, n) = gateway.until_token(&last_token);
    assert!(
        before.is_empty(),
        "no push for {shielded_token}: {before:?}"
    );
    assert_normal(&n, ANDROID, &format!("{}:last", nick(a)));
}

#[test]
fn a_group_message_across_two_msg_servers_is_pushed_once_per_member() {
    let mut gateway = PushGateway::start(&[]);
    let stack = stack("push-group", &gateway);
    let u = |i: u32| OFFLINE_PUSH.id(10 + i);
    let (a, ios, android, pc, mobile, shielded, muted, last) =
        (u(0), u(1), u(2), u(3), u(4), u(5), u(6), u(7));
    shields_off(&[a, ios, android, pc, mobile, shielded, muted, last]);
    let sender_token = give_token(a, IOS);
    let ios_token = give_token(ios, IOS);
    let android_token = give_token(android, ANDROID);
    let pc_token = give_token(pc, IOS);
    let mobile_token = give_token(mobile, ANDROID);
    let shielded_token = give_token(shielded, IOS);
    let muted_token = give_token(muted, ANDROID);
    let last_token = give_token(last, ANDROID);

    let mut sender = login_at(&stack, 0, a, ClientType::Windows);
    let members = [a, ios, android, pc, mobile, shielded, muted];
    let created = sender
        .create_group(&fresh("push"), "", &members)
        .expect("create reply");
    assert_eq!(created.result_code, 0, "{created:?}");
    let gid = created.group_id.expect("group id");

    let mut s = login_at(&stack, 1, shielded, ClientType::Android);
    assert_eq!(s.set_push_shield(true).expect("shield").result_code, 0);
    drop(s);
    let mut m = login_at(&stack, 0, muted, ClientType::Ios);
    assert_eq!(m.shield_group(gid, true).expect("group shield"), 0);
    drop(m);
    let _pc = login_at(&stack, 1, pc, ClientType::Windows);
    seen_online(&mut sender, pc);
    let mut phone = login_at(&stack, 1, mobile, ClientType::Android);

    sender.send_group_text(gid, "hi all").expect("ack");
    let got = phone
        .wait_for(WAIT, |e| matches!(e, Event::Message(m) if m.to == gid))
        .expect("events");
    assert!(
        got.is_some(),
        "the online member on the other msg_server got it"
    );

    let due = [&ios_token, &android_token, &pc_token, &mobile_token];
    let mut seen: HashMap<String, Vec<Notification>> = HashMap::new();
    while due.iter().any(|t| !seen.contains_key(t.as_str())) {
        let n = gateway.next_notification();
        seen.entry(n.token().to_string()).or_default().push(n);
    }
    // The later single message's push comes after anything still due for the group message.
    sender.send_text(last, "done").expect("ack");
    let (before, _) = gateway.until_token(&last_token);
    for n in before {
        seen.entry(n.token().to_string()).or_default().push(n);
    }
    for never in [&sender_token, &shielded_token, &muted_token] {
        assert!(
            !seen.contains_key(never.as_str()),
            "{never} was pushed: {seen:?}"
        );
    }
    let text = format!("{}:hi all", nick(a));
    for (token, platform) in [
        (&ios_token, IOS),
        (&android_token, ANDROID),
        (&mobile_token, ANDROID),
    ] {
        let got = &seen[token.as_str()];
        assert_eq!(got.len(), 1, "exactly one push for {token}: {got:?}");
        assert_normal(&got[0], platform, &text);
        assert_eq!(got[0].data["group_id"], gid);
        assert_eq!(got[0].data["from_id"], a);
        assert_eq!(got[0].data["msg_type"], 17);
    }
    let pc_got = &seen[pc_token.as_str()];
    assert_eq!(pc_got.len(), 1, "{pc_got:?}");
    assert!(
        pc_got[0].silent && pc_got[0].message.is_none(),
        "{pc_got:?}"
    );
}

#[test]
fn a_hanging_gateway_or_a_stopped_push_server_leaves_messages_stored_and_delivered() {
    let mut gateway = PushGateway::start(&[Answer::Hang]);
    let mut stack = stack("push-down", &gateway);
    let u = |i: u32| OFFLINE_PUSH.id(20 + i);
    let (a, b, offline) = (u(0), u(1), u(2));
    shields_off(&[offline]);
    let token = give_token(offline, IOS);
    let mut sender = login_at(&stack, 0, a, ClientType::Windows);
    let mut receiver = login_at(&stack, 1, b, ClientType::Windows);
    let mut delivered = |sender: &mut Client, text: &str| {
        let ack = sender.send_text(b, text).expect("ack");
        assert_ne!(ack.msg_id, 0, "stored");
        let got = receiver
            .wait_for(
                WAIT,
                |e| matches!(e, Event::Message(m) if m.msg_id == ack.msg_id && m.from == a),
            )
            .expect("events");
        assert!(got.is_some(), "{text:?} delivered");
    };

    // The gateway takes the first push and never answers.
    assert_ne!(sender.send_text(offline, "one").expect("ack").msg_id, 0);
    let (_, n) = gateway.until_token(&token);
    assert_eq!(
        n.message.as_deref(),
        Some(format!("{}:one", nick(a)).as_str())
    );
    delivered(&mut sender, "while the gateway hangs");

    // push_server gone: messages go on; the push of this one is dropped.
    Stack::kill(&mut stack.push_server);
    assert!(
        stack
            .msg_daemon(0)
            .wait_for_line("lost the link to push_server", LIMIT)
    );
    assert_ne!(sender.send_text(offline, "two").expect("ack").msg_id, 0);
    delivered(&mut sender, "while push_server is down");

    // Back: msg_server links again and pushes go through.
    stack.start_push_server();
    assert!(
        stack
            .msg_daemon(0)
            .wait_for_line("connected to push_server", LIMIT)
    );
    sender.send_text(offline, "three").expect("ack");
    let three = format!("{}:three", nick(a));
    loop {
        let (_, n) = gateway.until_token(&token);
        // A retry of the first push may come first.
        if n.message.as_deref() == Some(three.as_str()) {
            break;
        }
        assert_eq!(n.message, Some(format!("{}:one", nick(a))), "{n:?}");
    }
}
