//! db_proxy_server's buddy-list and push-settings commands and its sync center, against the
//! real binary, the local MariaDB and Redis: PDUs over TCP with `tt_testkit::PduClient`, the
//! database effects read back directly.
//!
//! Users: `tt_testkit::users::DB_PROXY_BUDDY` only (the constants below name their roles).
//! Every test starts its own db_proxy_server (a stack of db_proxy alone) and puts back what it
//! changed in the seeded users.

use std::process::Command as Process;
use std::time::{Duration, Instant};

use mysql::prelude::Queryable;
use tt_proto::pb::base_define::{SessionType, UserInfo};
use tt_proto::pb::buddy::{
    ImAllUserReq, ImAllUserRsp, ImChangeAvatarReq, ImChangeAvatarRsp, ImChangeSignInfoReq,
    ImChangeSignInfoRsp, ImRecentContactSessionReq, ImRecentContactSessionRsp, ImRemoveSessionReq,
    ImRemoveSessionRsp, ImUsersInfoReq, ImUsersInfoRsp,
};
use tt_proto::pb::login::{
    ImDeviceTokenReq, ImDeviceTokenRsp, ImPushShieldReq, ImPushShieldRsp, ImQueryPushShieldReq,
    ImQueryPushShieldRsp,
};
use tt_proto::pb::message::ImMsgData;
use tt_proto::{Command, Pdu};
use tt_testkit::users::DB_PROXY_BUDDY;
use tt_testkit::{PduClient, Stack, create_group, drop_group, mysql_conn, redis_conn};

/// Changes its signature.
const SIGN: u32 = DB_PROXY_BUDDY.id(0);
/// Never changed by any test: must never be listed as changed.
const UNCHANGED: u32 = DB_PROXY_BUDDY.id(1);
/// Changes its avatar.
const AVATAR: u32 = DB_PROXY_BUDDY.id(2);
/// Sets and queries its push shield.
const SHIELD: u32 = DB_PROXY_BUDDY.id(3);
/// The pair of the remove-session test: A writes to B, B removes the session.
const SESSION_A: u32 = DB_PROXY_BUDDY.id(4);
const SESSION_B: u32 = DB_PROXY_BUDDY.id(5);
/// The members of the sync center's group.
const SYNC_SENDER: u32 = DB_PROXY_BUDDY.id(6);
const SYNC_MEMBER: u32 = DB_PROXY_BUDDY.id(7);
const SYNC_REMOVER: u32 = DB_PROXY_BUDDY.id(8);
/// Sets device tokens.
const TOKEN: u32 = DB_PROXY_BUDDY.id(9);
/// The user of the malformed requests' well-formed neighbours.
const BAD: u32 = DB_PROXY_BUDDY.id(10);

/// No user has this id.
const NO_SUCH_USER: u32 = 3_000_000_000;

/// The seeded avatar of user `id` (`sql/seed.sql`).
fn seeded_avatar(id: u32) -> String {
    format!("http://127.0.0.1:8700/g0/000/000/1704067200000000_{id:012}.png")
}

/// The seeded signature of user `id`.
fn seeded_sign(id: u32) -> String {
    format!("Hi, I am user{id}.")
}

/// A db_proxy_server alone (no msg_server, route_server or login_server).
fn start(label: &str) -> Stack {
    Stack::builder(label)
        .msg_servers(0)
        .route(false)
        .login(false)
        .start()
}

fn connect(stack: &Stack) -> PduClient {
    PduClient::connect(stack.ports.db_proxy).skipping_heartbeats()
}

/// Kills db_proxy_server (SIGKILL), starts it again and connects to it.
fn restart(stack: &mut Stack) -> PduClient {
    Stack::kill(&mut stack.db_proxy);
    stack.start_db_proxy();
    connect(stack)
}

fn now() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as u32
}

/// A text no earlier run wrote.
fn fresh(what: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .subsec_nanos();
    format!("{what} {}-{}-{nanos}", std::process::id(), now())
}

/// One column of a user's IMUser row.
fn user_column<T: mysql::prelude::FromValue>(db: &mut mysql::Conn, user: u32, column: &str) -> T {
    db.exec_first(format!("SELECT {column} FROM IMUser WHERE id=?"), (user,))
        .expect("query IMUser")
        .unwrap_or_else(|| panic!("no IMUser row {user}"))
}

fn user_info(c: &mut PduClient, user: u32) -> UserInfo {
    let rsp: ImUsersInfoRsp = c.call(&ImUsersInfoReq {
        user_id: BAD,
        user_id_list: vec![user],
        attach_data: None,
    });
    rsp.user_info_list
        .into_iter()
        .find(|u| u.user_id == user)
        .unwrap_or_else(|| panic!("user info of {user}"))
}

fn changed_users(c: &mut PduClient, since: u32) -> ImAllUserRsp {
    let rsp: ImAllUserRsp = c.call(&ImAllUserReq {
        user_id: BAD,
        latest_update_time: since,
        attach_data: Some(b"all".to_vec()),
    });
    assert_eq!(rsp.user_id, BAD);
    assert_eq!(rsp.attach_data.as_deref(), Some(&b"all"[..]));
    assert!(rsp.latest_update_time >= since, "the time never goes back");
    rsp
}

fn listed(rsp: &ImAllUserRsp, user: u32) -> Option<&UserInfo> {
    rsp.user_list.iter().find(|u| u.user_id == user)
}

/// Asserts the rule of the changed-users list for `users`: listed exactly when changed at or
/// after `since` (their `updated` read from MySQL).
fn assert_listed_iff_changed(db: &mut mysql::Conn, rsp: &ImAllUserRsp, since: u32, users: &[u32]) {
    for &u in users {
        let updated: u32 = user_column(db, u, "updated");
        assert_eq!(
            listed(rsp, u).is_some(),
            updated >= since,
            "user {u} (updated {updated}) listed since {since}"
        );
    }
}

fn change_sign(c: &mut PduClient, user: u32, sign: &[u8]) -> ImChangeSignInfoRsp {
    let rsp: ImChangeSignInfoRsp = c.call(&ImChangeSignInfoReq {
        user_id: user,
        sign_info: sign.to_vec(),
        attach_data: Some(b"sign".to_vec()),
    });
    assert_eq!(rsp.user_id, user);
    assert_eq!(rsp.attach_data.as_deref(), Some(&b"sign"[..]));
    rsp
}

#[test]
fn sign_info_change_is_stored_and_listed_as_a_change() {
    let mut stack = start("dbp-buddy-sign");
    let mut c = connect(&stack);
    let mut db = mysql_conn();

    // Every user not deleted since 0; then, since the time that gave, no unchanged user.
    let all = changed_users(&mut c, 0);
    assert!(listed(&all, UNCHANGED).is_some() && listed(&all, SIGN).is_some());
    let t0 = all.latest_update_time;
    assert!(t0 <= now(), "the time given is never in the future");
    let before = changed_users(&mut c, t0);
    assert!(listed(&before, UNCHANGED).is_none());
    assert_listed_iff_changed(&mut db, &before, t0, &[SIGN, UNCHANGED]);

    let sign = fresh("signed");
    let started = now();
    let rsp = change_sign(&mut c, SIGN, sign.as_bytes());
    assert_eq!(rsp.result_code, 0);
    assert_eq!(rsp.sign_info.as_deref(), Some(sign.as_bytes()));
    let stored: String = user_column(&mut db, SIGN, "sign_info");
    assert_eq!(stored, sign);
    let updated: u32 = user_column(&mut db, SIGN, "updated");
    assert!(updated >= started);
    assert_eq!(
        user_info(&mut c, SIGN).sign_info.as_deref(),
        Some(sign.as_bytes())
    );

    // Listed after the change, with the new signature; the unchanged user still is not.
    let after = changed_users(&mut c, t0);
    let info = listed(&after, SIGN).expect("the changed user is listed");
    assert_eq!(info.sign_info.as_deref(), Some(sign.as_bytes()));
    assert!(listed(&after, UNCHANGED).is_none());
    let t1 = after.latest_update_time;
    assert!(t1 >= updated, "the time moves up to the change");
    let again = changed_users(&mut c, t1);
    assert_listed_iff_changed(&mut db, &again, t1, &[SIGN, UNCHANGED]);

    // Refused: too long (129 bytes), not UTF-8, an unknown user. Nothing is written.
    for bad in [vec![b'x'; 129], vec![0xff, 0xfe, b'a']] {
        let rsp = change_sign(&mut c, SIGN, &bad);
        assert_eq!(rsp.result_code, 1);
        assert!(rsp.sign_info.is_none());
    }
    assert_eq!(change_sign(&mut c, SIGN, &[b'y'; 128]).result_code, 0);
    assert_eq!(change_sign(&mut c, SIGN, sign.as_bytes()).result_code, 0);
    let rsp = change_sign(&mut c, NO_SUCH_USER, b"nobody");
    assert_eq!((rsp.result_code, rsp.sign_info), (1, None));
    // The same signature twice within a second is no failure.
    assert_eq!(change_sign(&mut c, SIGN, sign.as_bytes()).result_code, 0);

    // Still there after a restart, and still listed as changed.
    let mut c = restart(&mut stack);
    assert_eq!(
        user_info(&mut c, SIGN).sign_info.as_deref(),
        Some(sign.as_bytes())
    );
    let after_restart = changed_users(&mut c, t0);
    assert!(listed(&after_restart, SIGN).is_some());
    assert!(listed(&after_restart, UNCHANGED).is_none());

    assert_eq!(
        change_sign(&mut c, SIGN, seeded_sign(SIGN).as_bytes()).result_code,
        0
    );
}

#[test]
fn avatar_change_is_answered_and_stored() {
    let mut stack = start("dbp-buddy-avatar");
    let mut c = connect(&stack);
    let mut db = mysql_conn();
    let change = |c: &mut PduClient, user: u32, url: &[u8]| -> ImChangeAvatarRsp {
        let rsp: ImChangeAvatarRsp = c.call(&ImChangeAvatarReq {
            user_id: user,
            avatar_url: url.to_vec(),
            attach_data: Some(b"av".to_vec()),
        });
        assert_eq!(rsp.user_id, user);
        assert_eq!(rsp.attach_data.as_deref(), Some(&b"av"[..]));
        rsp
    };

    let t0 = changed_users(&mut c, 0).latest_update_time;
    let url = format!(
        "http://127.0.0.1:8700/{}.png",
        fresh("avatar").replace(' ', "_")
    );
    let started = now();
    assert_eq!(change(&mut c, AVATAR, url.as_bytes()).result_code, 0);
    let stored: String = user_column(&mut db, AVATAR, "avatar");
    assert_eq!(stored, url);
    let updated: u32 = user_column(&mut db, AVATAR, "updated");
    assert!(updated >= started);
    assert_eq!(user_info(&mut c, AVATAR).avatar_url, url.as_bytes());
    let changed = changed_users(&mut c, t0);
    let info = listed(&changed, AVATAR).expect("the user is listed as changed");
    assert_eq!(info.avatar_url, url.as_bytes());

    // The column holds 255 bytes: one more is refused; so are an unknown user and non-UTF-8.
    assert_eq!(change(&mut c, AVATAR, &[b'u'; 256]).result_code, 1);
    assert_eq!(change(&mut c, AVATAR, &[0xc3, 0x28]).result_code, 1);
    assert_eq!(change(&mut c, NO_SUCH_USER, url.as_bytes()).result_code, 1);
    let stored: String = user_column(&mut db, AVATAR, "avatar");
    assert_eq!(stored, url);

    let mut c = restart(&mut stack);
    assert_eq!(user_info(&mut c, AVATAR).avatar_url, url.as_bytes());
    assert_eq!(
        change(&mut c, AVATAR, seeded_avatar(AVATAR).as_bytes()).result_code,
        0
    );
}

#[test]
fn push_shield_set_and_query() {
    let mut stack = start("dbp-buddy-shield");
    let mut c = connect(&stack);
    let mut db = mysql_conn();
    let set = |c: &mut PduClient, user: u32, status: u32| -> ImPushShieldRsp {
        let rsp: ImPushShieldRsp = c.call(&ImPushShieldReq {
            user_id: user,
            shield_status: status,
            attach_data: Some(b"ps".to_vec()),
        });
        assert_eq!(rsp.user_id, user);
        assert_eq!(rsp.attach_data.as_deref(), Some(&b"ps"[..]));
        rsp
    };
    let query = |c: &mut PduClient, user: u32| -> ImQueryPushShieldRsp {
        let rsp: ImQueryPushShieldRsp = c.call(&ImQueryPushShieldReq {
            user_id: user,
            attach_data: Some(b"pq".to_vec()),
        });
        assert_eq!(rsp.user_id, user);
        assert_eq!(rsp.attach_data.as_deref(), Some(&b"pq"[..]));
        rsp
    };

    let rsp = set(&mut c, SHIELD, 1);
    assert_eq!((rsp.result_code, rsp.shield_status), (0, Some(1)));
    let stored: u32 = user_column(&mut db, SHIELD, "push_shield_status");
    assert_eq!(stored, 1);
    let rsp = query(&mut c, SHIELD);
    assert_eq!((rsp.result_code, rsp.shield_status), (0, Some(1)));
    // Setting what is already set (within the same second) still succeeds.
    assert_eq!(set(&mut c, SHIELD, 1).result_code, 0);

    // Only 0 and 1 are values; an unknown user is refused.
    let rsp = set(&mut c, SHIELD, 2);
    assert_eq!((rsp.result_code, rsp.shield_status), (1, None));
    let rsp = set(&mut c, NO_SUCH_USER, 1);
    assert_eq!((rsp.result_code, rsp.shield_status), (1, None));
    let rsp = query(&mut c, NO_SUCH_USER);
    assert_eq!((rsp.result_code, rsp.shield_status), (1, None));

    let mut c = restart(&mut stack);
    let rsp = query(&mut c, SHIELD);
    assert_eq!((rsp.result_code, rsp.shield_status), (0, Some(1)));
    let rsp = set(&mut c, SHIELD, 0);
    assert_eq!((rsp.result_code, rsp.shield_status), (0, Some(0)));
    assert_eq!(query(&mut c, SHIELD).shield_status, Some(0));
    let stored: u32 = user_column(&mut db, SHIELD, "push_shield_status");
    assert_eq!(stored, 0);
}

fn send(c: &mut PduClient, from: u32, to: u32, msg_type: i32, text: &str) -> u32 {
    let rsp: ImMsgData = c.call(&ImMsgData {
        from_user_id: from,
        to_session_id: to,
        msg_id: 0,
        create_time: now(),
        msg_type,
        msg_data: text.as_bytes().to_vec(),
        attach_data: None,
    });
    assert!(rsp.msg_id > 0, "message from {from} to {to} stored");
    rsp.msg_id
}

/// The user's visible sessions of `kind` with `peer`.
fn sessions_with(
    c: &mut PduClient,
    user: u32,
    peer: u32,
    kind: SessionType,
) -> Vec<tt_proto::pb::base_define::ContactSessionInfo> {
    let rsp: ImRecentContactSessionRsp = c.call(&ImRecentContactSessionReq {
        user_id: user,
        latest_update_time: 0,
        attach_data: None,
    });
    rsp.contact_session_list
        .into_iter()
        .filter(|s| s.session_id == peer && s.session_type == kind as i32)
        .collect()
}

fn remove_session(
    c: &mut PduClient,
    user: u32,
    peer: u32,
    kind: SessionType,
) -> ImRemoveSessionRsp {
    let rsp: ImRemoveSessionRsp = c.call(&ImRemoveSessionReq {
        user_id: user,
        session_type: kind as i32,
        session_id: peer,
        attach_data: Some(b"rm".to_vec()),
    });
    assert_eq!(rsp.user_id, user);
    assert_eq!(rsp.session_id, peer);
    assert_eq!(rsp.session_type, kind as i32);
    assert_eq!(rsp.attach_data.as_deref(), Some(&b"rm"[..]));
    rsp
}

/// The single-chat unread counter of `user` for messages from `peer`.
fn unread_from(unread: &mut redis::Connection, user: u32, peer: u32) -> Option<u32> {
    redis::cmd("HGET")
        .arg(format!("unread_{user}"))
        .arg(peer)
        .query(unread)
        .expect("hget unread")
}

#[test]
fn removed_session_leaves_the_list_and_its_unread_count() {
    let mut stack = start("dbp-buddy-session");
    let mut c = connect(&stack);
    let mut db = mysql_conn();
    let mut unread = redis_conn(1);
    let (a, b) = (SESSION_A, SESSION_B);

    let msg_id = send(&mut c, a, b, 1, &fresh("hello"));
    let listed = sessions_with(&mut c, b, a, SessionType::Single);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].latest_msg_id, msg_id);
    assert!(unread_from(&mut unread, b, a).is_some_and(|n| n > 0));

    assert_eq!(
        remove_session(&mut c, b, a, SessionType::Single).result_code,
        0
    );
    assert!(sessions_with(&mut c, b, a, SessionType::Single).is_empty());
    assert_eq!(
        sessions_with(&mut c, a, b, SessionType::Single).len(),
        1,
        "only B's side"
    );
    let status: Vec<u32> = db
        .exec(
            "SELECT status FROM IMRecentSession WHERE userId=? AND peerId=? AND type=1",
            (b, a),
        )
        .expect("query sessions");
    assert!(!status.is_empty() && status.iter().all(|&s| s == 1));
    assert_eq!(
        unread_from(&mut unread, b, a),
        None,
        "the unread counter went with the session"
    );

    // Nothing left to remove; an unknown user has nothing either.
    assert_eq!(
        remove_session(&mut c, b, a, SessionType::Single).result_code,
        1
    );
    assert_eq!(
        remove_session(&mut c, NO_SUCH_USER, a, SessionType::Single).result_code,
        1
    );

    let mut c = restart(&mut stack);
    assert!(sessions_with(&mut c, b, a, SessionType::Single).is_empty());
    // A new message shows the session again.
    let msg_id = send(&mut c, a, b, 1, &fresh("again"));
    let listed = sessions_with(&mut c, b, a, SessionType::Single);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].latest_msg_id, msg_id);
}

/// Asks for the user's sessions until `done` holds for its sessions with `group`. The sync
/// thread's passes (every 5 s) announce nothing, so a bounded poll is the only way to see one
/// happen.
fn poll_group_sessions(
    c: &mut PduClient,
    user: u32,
    group: u32,
    what: &str,
    mut done: impl FnMut(&[tt_proto::pb::base_define::ContactSessionInfo]) -> bool,
) {
    let deadline = Instant::now() + tt_testkit::stack::LIMIT;
    loop {
        if done(&sessions_with(c, user, group, SessionType::Group)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "user {user}, group {group}: {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn sync_center_gives_every_member_the_group_session() {
    let mut stack = start("dbp-buddy-sync");
    let mut c = connect(&stack);
    let mut db = mysql_conn();
    let members = [SYNC_SENDER, SYNC_MEMBER, SYNC_REMOVER];
    let g = create_group(&mut c, &members, &fresh("dbp sync group"));
    let started = now();

    // The sender's session comes with the message; the others' from the sync thread, with
    // the group's last chat time.
    let first = send(&mut c, SYNC_SENDER, g, 17, &fresh("group"));
    // This process's sync thread works on chatted groups (other db_proxy processes on the
    // same database may have been quicker for this one).
    let daemon = stack.db_proxy.as_mut().expect("db_proxy running");
    assert!(
        daemon.wait_for_line("chatted groups", tt_testkit::stack::LIMIT),
        "no sync pass over chatted groups:\n{}",
        daemon.recent_log()
    );
    assert_eq!(
        sessions_with(&mut c, SYNC_SENDER, g, SessionType::Group).len(),
        1
    );
    for u in [SYNC_MEMBER, SYNC_REMOVER] {
        poll_group_sessions(&mut c, u, g, "no group session", |s| {
            s.len() == 1 && s[0].latest_msg_id == first
        });
    }
    let chatted: u32 = db
        .exec_first("SELECT lastChated FROM IMGroup WHERE id=?", (g,))
        .expect("query group")
        .expect("group row");
    // A created session is dated when it was created, after the chat.
    let s = sessions_with(&mut c, SYNC_MEMBER, g, SessionType::Group);
    assert!(s[0].updated_time >= chatted);
    let cursor: Option<u32> = redis::cmd("GET")
        .arg("last_update_group")
        .query(&mut redis_conn(1))
        .expect("get last_update_group");
    assert!(
        cursor.is_some_and(|t| t >= started),
        "the group cursor is stored"
    );

    // A member who removed the session before the next message gets it back with that message.
    assert_eq!(
        remove_session(&mut c, SYNC_REMOVER, g, SessionType::Group).result_code,
        0
    );
    assert!(sessions_with(&mut c, SYNC_REMOVER, g, SessionType::Group).is_empty());
    // The removal dated a minute back, so that the next message is later whatever the clock.
    db.exec_drop(
        "UPDATE IMRecentSession SET updated=updated-60 WHERE userId=? AND peerId=? AND type=2",
        (SYNC_REMOVER, g),
    )
    .expect("date the removal back");
    let second = send(&mut c, SYNC_SENDER, g, 17, &fresh("group again"));
    poll_group_sessions(
        &mut c,
        SYNC_REMOVER,
        g,
        "the session did not come back",
        |s| s.len() == 1 && s[0].latest_msg_id == second,
    );

    let mut c = restart(&mut stack);
    for u in members {
        assert_eq!(sessions_with(&mut c, u, g, SessionType::Group).len(), 1);
    }
    drop(c);
    drop(stack);
    drop_group(&mut db, g, &members);
}

#[test]
fn device_token_reply_is_complete_and_long_tokens_are_not_stored() {
    let stack = start("dbp-buddy-token");
    let mut c = connect(&stack);
    let mut tokens = redis_conn(4);
    let set = |c: &mut PduClient, token: &[u8]| {
        // `call` decodes with the original's rules: the reply has every required field.
        let rsp: ImDeviceTokenRsp = c.call(&ImDeviceTokenReq {
            user_id: TOKEN,
            device_token: token.to_vec(),
            client_type: Some(0x12),
            attach_data: Some(b"dt".to_vec()),
        });
        assert_eq!(rsp.user_id, TOKEN);
        assert_eq!(rsp.attach_data.as_deref(), Some(&b"dt"[..]));
    };
    let token = fresh("token").replace(' ', "-");
    set(&mut c, token.as_bytes());
    let get = |tokens: &mut redis::Connection| -> Option<String> {
        redis::cmd("GET")
            .arg(format!("device_{TOKEN}"))
            .query(tokens)
            .expect("get")
    };
    assert_eq!(get(&mut tokens), Some(format!("android:{token}")));
    set(&mut c, &[b't'; 513]);
    assert_eq!(
        get(&mut tokens),
        Some(format!("android:{token}")),
        "not stored"
    );
    let _ = redis::cmd("DEL")
        .arg(format!("device_{TOKEN}"))
        .arg(format!("device_{token}"))
        .query::<()>(&mut tokens);
}

/// A PDU of command `M` with `body` as it is.
fn raw<M: Command>(seq: u16, body: &[u8]) -> Pdu {
    Pdu::new(M::SERVICE_ID, M::COMMAND_ID, seq, body.to_vec())
}

#[test]
fn malformed_bodies_get_no_reply_and_the_connection_keeps_working() {
    let stack = start("dbp-buddy-bad");
    let mut c = connect(&stack);
    // Not protobuf; a required field missing; an undeclared session type.
    let garbage = [0xff_u8, 0xff, 0xff, 0xff, 0x0f];
    let no_user = {
        let mut b = Vec::new();
        prost::encoding::uint32::encode(2, &1, &mut b);
        b
    };
    let bad_kind = {
        let mut b = Vec::new();
        prost::encoding::uint32::encode(1, &BAD, &mut b);
        prost::encoding::int32::encode(2, &7, &mut b);
        prost::encoding::uint32::encode(3, &SIGN, &mut b);
        b
    };
    let bad = [
        raw::<ImPushShieldReq>(1, &garbage),
        raw::<ImPushShieldReq>(2, &no_user),
        raw::<ImQueryPushShieldReq>(3, &[]),
        raw::<ImRemoveSessionReq>(4, &bad_kind),
        raw::<ImRemoveSessionReq>(5, &garbage),
        raw::<ImChangeSignInfoReq>(6, &no_user),
        raw::<ImChangeSignInfoReq>(7, &garbage),
        raw::<ImChangeAvatarReq>(8, &[]),
        raw::<ImChangeAvatarReq>(9, &garbage),
        raw::<ImDeviceTokenReq>(10, &garbage),
        raw::<ImAllUserReq>(11, &no_user),
    ];
    for pdu in &bad {
        c.send_pdu(pdu);
        // The next PDU is the reply to the well-formed request that follows: nothing came for
        // the malformed one.
        let rsp: ImQueryPushShieldRsp = c.call(&ImQueryPushShieldReq {
            user_id: BAD,
            attach_data: None,
        });
        assert_eq!((rsp.user_id, rsp.result_code), (BAD, 0));
    }
}

#[test]
fn sigterm_stops_the_sync_thread_and_the_process() {
    let mut stack = start("dbp-buddy-stop");
    let pid_file = stack.daemon_dir("db_proxy").join("server.pid");
    assert!(pid_file.exists());
    let daemon = stack.db_proxy.as_mut().expect("db_proxy running");
    let pid = daemon.pid().expect("pid");
    let status = Process::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status()
        .expect("running kill");
    assert!(status.success());
    assert!(
        daemon.wait_for_line("sync center stopped", tt_testkit::stack::LIMIT),
        "no stop line:\n{}",
        daemon.recent_log()
    );
    assert_eq!(daemon.wait_exit(tt_testkit::stack::LIMIT), Some(0));
    assert!(!pid_file.exists(), "server.pid is removed");
}
