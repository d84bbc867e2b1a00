//! db_proxy_server against the real binary, the local MariaDB and Redis: PDUs over TCP with
//! `tt_testkit::PduClient`.
//!
//! Users: the seeded ones of `tt_testkit::users::DB_PROXY` only (the constants below name their
//! roles), plus fresh users with ids >= 1_000_000 created (and removed) by the concurrency test.

use std::io::{Read, Write};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use md5::{Digest, Md5};
use mysql::prelude::Queryable;
use prost::Message;
use tt_proto::Pdu;
use tt_proto::ids::{cid, sid};
use tt_proto::pb::buddy::{
    ImAllUserReq, ImAllUserRsp, ImDepartmentReq, ImDepartmentRsp, ImRecentContactSessionReq,
    ImRecentContactSessionRsp, ImUsersInfoReq, ImUsersInfoRsp,
};
use tt_proto::pb::message::{
    ImGetLatestMsgIdReq, ImGetLatestMsgIdRsp, ImGetMsgByIdReq, ImGetMsgByIdRsp, ImGetMsgListReq,
    ImGetMsgListRsp, ImMsgData, ImMsgDataReadAck, ImUnreadMsgCntReq, ImUnreadMsgCntRsp,
};
use tt_proto::pb::server::{ImValidateReq, ImValidateRsp};
use tt_proto::pdu::Header;
use tt_testkit::users::{DB_PROXY, PASSWORD};
use tt_testkit::{
    Daemon, DbEnv, PduClient, TempDir, drop_group, free_port, mysql_conn, redis_conn, relation_id,
};

/// Hang guard for every read.
const LIMIT: Duration = tt_testkit::HANG_GUARD;

/// Logs in successfully (and is the login that shows every user field).
const LOGIN: u32 = DB_PROXY.id(0);
/// Fails to log in until locked out.
const LOCKED: u32 = DB_PROXY.id(1);
/// The single chat flow.
const CHAT_A: u32 = DB_PROXY.id(2);
const CHAT_B: u32 = DB_PROXY.id(3);
/// User info, and the members of the group test.
const MEMBER_A: u32 = DB_PROXY.id(4);
const MEMBER_B: u32 = DB_PROXY.id(5);
/// Too long texts, device tokens, history reads; the outsider of the group test.
const OTHER_A: u32 = DB_PROXY.id(6);
const OTHER_B: u32 = DB_PROXY.id(7);
/// Audio messages.
const AUDIO_A: u32 = DB_PROXY.id(8);
const AUDIO_B: u32 = DB_PROXY.id(9);

/// The login name of seeded user `id`.
fn seeded_name(id: u32) -> String {
    format!("user{id}")
}

/// `sex` of a seeded user (`sql/seed.sql`): odd ids 1, even ids 2.
fn seeded_gender(id: u32) -> u32 {
    if id % 2 == 1 { 1 } else { 2 }
}

struct Proxy {
    _dir: TempDir,
    daemon: Daemon,
    port: u16,
}

fn conf_text(port: u16, thread_num: usize) -> String {
    let db = DbEnv::from_env();
    let mut s = format!(
        "ListenIP=127.0.0.1\nListenPort={port}\nThreadNum={thread_num}\n\
         MsfsSite=http://127.0.0.1:8700\naesKey=12345678901234567890123456789012\n\
         DBInstances=teamtalk_master,teamtalk_slave\n\
         CacheInstances=unread,group_set,token,sync,group_member\n"
    );
    for pool in ["teamtalk_master", "teamtalk_slave"] {
        s += &format!(
            "{pool}_host={}\n{pool}_port={}\n{pool}_dbname={}\n{pool}_username={}\n\
             {pool}_password={}\n{pool}_maxconncnt=16\n",
            db.mysql_host, db.mysql_port, db.mysql_db, db.mysql_user, db.mysql_password
        );
    }
    for (pool, n) in [
        ("unread", 1),
        ("group_set", 2),
        ("sync", 3),
        ("token", 4),
        ("group_member", 5),
    ] {
        s += &format!(
            "{pool}_host={}\n{pool}_port={}\n{pool}_db={n}\n{pool}_maxconncnt=16\n",
            db.redis_host, db.redis_port
        );
    }
    s
}

fn start(thread_num: usize) -> Proxy {
    let dir = TempDir::new("db_proxy");
    let port = free_port();
    dir.write("dbproxyserver.conf", &conf_text(port, thread_num));
    let mut daemon = Daemon::spawn("db_proxy_server", dir.path(), "dbproxyserver.conf");
    daemon.wait_ready(LIMIT);
    Proxy {
        _dir: dir,
        daemon,
        port,
    }
}

fn connect(p: &Proxy) -> PduClient {
    PduClient::connect(p.port)
}

fn md5_hex(data: &[u8]) -> String {
    Md5::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn now() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as u32
}

fn validate(c: &mut PduClient, name: &str, password: &str) -> ImValidateRsp {
    let req = ImValidateReq {
        user_name: name.as_bytes().to_vec(),
        password: md5_hex(password.as_bytes()).into_bytes(),
        attach_data: Some(b"attach-123".to_vec()),
    };
    c.call(&req)
}

fn send_msg(c: &mut PduClient, from: u32, to: u32, text: &str) -> ImMsgData {
    let req = ImMsgData {
        from_user_id: from,
        to_session_id: to,
        msg_id: 0,
        create_time: now(),
        msg_type: 1,
        msg_data: text.as_bytes().to_vec(),
        attach_data: Some(b"ack-attach".to_vec()),
    };
    let rsp: ImMsgData = c.call(&req);
    assert_eq!(rsp.from_user_id, from);
    assert_eq!(rsp.to_session_id, to);
    assert_eq!(rsp.msg_data, req.msg_data);
    assert_eq!(rsp.create_time, req.create_time);
    assert_eq!(rsp.attach_data, req.attach_data);
    rsp
}

fn latest_msg_id(c: &mut PduClient, user: u32, peer: u32) -> u32 {
    let req = ImGetLatestMsgIdReq {
        user_id: user,
        session_type: 1,
        session_id: peer,
        attach_data: Some(b"l".to_vec()),
    };
    let rsp: ImGetLatestMsgIdRsp = c.call(&req);
    assert_eq!((rsp.user_id, rsp.session_id), (user, peer));
    assert_eq!(rsp.attach_data.as_deref(), Some(&b"l"[..]));
    rsp.latest_msg_id
}

fn unread(c: &mut PduClient, user: u32) -> ImUnreadMsgCntRsp {
    let req = ImUnreadMsgCntReq {
        user_id: user,
        attach_data: None,
    };
    c.call(&req)
}

#[test]
fn validate_ok_wrong_password_unknown_user_and_parse_failure() {
    let p = start(2);
    let mut c = connect(&p);

    // The seeded values of the user (sql/seed.sql).
    let (id, name) = (LOGIN, seeded_name(LOGIN));
    let ok = validate(&mut c, &name, PASSWORD);
    assert_eq!(ok.result_code, 0);
    assert_eq!(ok.result_string.as_deref(), Some("成功".as_bytes()));
    assert_eq!(ok.user_name, name.as_bytes());
    assert_eq!(ok.attach_data.as_deref(), Some(&b"attach-123"[..]));
    let info = ok.user_info.expect("user_info on success");
    assert_eq!(info.user_id, id);
    assert_eq!(info.user_gender, seeded_gender(id));
    assert_eq!(info.user_real_name, name.as_bytes());
    assert_eq!(info.user_domain, name.as_bytes());
    assert_eq!(info.user_nick_name, format!("User {id}").as_bytes());
    assert_eq!(info.user_tel, format!("138{id:08}").as_bytes());
    assert_eq!(info.email, format!("{name}@example.com").as_bytes());
    assert_eq!(info.department_id, 1);
    assert_eq!(info.status, 0);
    assert_eq!(
        info.sign_info.as_deref(),
        Some(format!("Hi, I am {name}.").as_bytes())
    );
    assert!(
        info.avatar_url
            .ends_with(format!("{id:012}.png").as_bytes())
    );

    let locked = seeded_name(LOCKED);
    let wrong = validate(&mut c, &locked, "654321");
    assert_eq!(wrong.result_code, 1);
    assert_eq!(
        wrong.result_string.as_deref(),
        Some("用户名/密码错误".as_bytes())
    );
    assert!(wrong.user_info.is_none());
    assert_eq!(wrong.user_name, locked.as_bytes());

    let unknown = validate(&mut c, "no-such-user-db-proxy", "123456");
    assert_eq!(unknown.result_code, 1);
    assert!(unknown.user_info.is_none());

    // A name with SQL in it is just a name.
    let inject = validate(&mut c, &format!("{name}' OR '1'='1"), PASSWORD);
    assert_eq!(inject.result_code, 1);

    // Parse failure (required password missing): result 2, the original's one exception.
    let seq = 77;
    let body = ImValidateReq {
        user_name: name.as_bytes().to_vec(),
        password: Vec::new(),
        attach_data: None,
    };
    // Encode only field 1 so that the required field 2 is absent.
    let mut raw = Vec::new();
    prost::encoding::bytes::encode(1, &body.user_name, &mut raw);
    c.send_pdu(&Pdu::new(
        sid::SID_OTHER,
        cid::CID_OTHER_VALIDATE_REQ,
        seq,
        raw,
    ));
    let p = c.recv_pdu();
    assert_eq!(p.header.seq_num, seq);
    let rsp = ImValidateRsp::decode(p.body.as_slice()).expect("decode");
    assert_eq!(rsp.result_code, 2);
    assert_eq!(
        rsp.result_string.as_deref(),
        Some("服务端内部错误".as_bytes())
    );

    // Eleven failures within 30 minutes lock the name out (result 6), even with the right
    // password; another name is not affected.
    for _ in 0..10 {
        assert_eq!(validate(&mut c, &locked, "bad").result_code, 1);
    }
    assert_eq!(validate(&mut c, &locked, PASSWORD).result_code, 6);
    assert_eq!(validate(&mut c, &name, PASSWORD).result_code, 0);

    // Unknown names are not counted (nothing to protect, and a peer could invent names
    // without end): they stay "wrong user/password", never "too many failures".
    let unknown = format!("no_such_user_{}", std::process::id());
    for _ in 0..12 {
        assert_eq!(validate(&mut c, &unknown, "bad").result_code, 1);
    }
}

#[test]
fn single_chat_flow() {
    let p = start(4);
    let mut c = connect(&p);
    let (a, b) = (CHAT_A, CHAT_B);

    let before = latest_msg_id(&mut c, a, b);
    assert_eq!(latest_msg_id(&mut c, b, a), before, "one sequence per pair");
    let unread_before = unread(&mut c, b)
        .unreadinfo_list
        .iter()
        .find(|u| u.session_id == a && u.session_type == 1)
        .map_or(0, |u| u.unread_cnt);

    let t1 = format!("hello from {a} at {}", now());
    let t2 = format!("second from {a}");
    let m1 = send_msg(&mut c, a, b, &t1);
    assert_eq!(m1.msg_id, before + 1);
    let m2 = send_msg(&mut c, a, b, &t2);
    assert_eq!(m2.msg_id, before + 2);
    assert_eq!(latest_msg_id(&mut c, b, a), before + 2);

    // Unread: the receiver's counter for the sender went up by 2; the entry shows the last
    // message and the peer as sender.
    let u = unread(&mut c, b);
    let entry = u
        .unreadinfo_list
        .iter()
        .find(|e| e.session_id == a && e.session_type == 1)
        .expect("unread entry for the sender");
    assert_eq!(entry.unread_cnt, unread_before + 2);
    assert_eq!(entry.latest_msg_id, before + 2);
    assert_eq!(entry.latest_msg_data, t2.as_bytes());
    assert_eq!(entry.latest_msg_type, 1);
    assert_eq!(entry.latest_msg_from_user_id, a);
    assert!(u.total_cnt >= entry.unread_cnt);

    // History: newest first; msg_id_begin is inclusive.
    let req = ImGetMsgListReq {
        user_id: b,
        session_type: 1,
        session_id: a,
        msg_id_begin: 0,
        msg_cnt: 2,
        attach_data: Some(b"h".to_vec()),
    };
    let h: ImGetMsgListRsp = c.call(&req);
    assert_eq!(h.attach_data.as_deref(), Some(&b"h"[..]));
    assert_eq!((h.user_id, h.session_id, h.msg_id_begin), (b, a, 0));
    let ids: Vec<u32> = h.msg_list.iter().map(|m| m.msg_id).collect();
    assert_eq!(ids, vec![before + 2, before + 1]);
    assert_eq!(h.msg_list[0].msg_data, t2.as_bytes());
    assert_eq!(h.msg_list[1].msg_data, t1.as_bytes());
    assert_eq!(h.msg_list[1].from_session_id, a);
    assert_eq!(h.msg_list[1].create_time, m1.create_time);
    let req = ImGetMsgListReq {
        msg_id_begin: before + 1,
        msg_cnt: 1,
        ..req
    };
    let h: ImGetMsgListRsp = c.call(&req);
    assert_eq!(h.msg_list.len(), 1);
    assert_eq!(h.msg_list[0].msg_id, before + 1);

    // By id.
    let req = ImGetMsgByIdReq {
        user_id: a,
        session_type: 1,
        session_id: b,
        msg_id_list: vec![before + 1, before + 1, 4_000_000_000],
        attach_data: Some(b"i".to_vec()),
    };
    let r: ImGetMsgByIdRsp = c.call(&req);
    assert_eq!(r.attach_data.as_deref(), Some(&b"i"[..]));
    assert_eq!(r.msg_list.len(), 1);
    assert_eq!(r.msg_list[0].msg_id, before + 1);
    assert_eq!(r.msg_list[0].msg_data, t1.as_bytes());
    assert_eq!(r.msg_list[0].from_session_id, a);

    // Recent sessions: both sides have the pair, with the last message.
    for (user, peer) in [(a, b), (b, a)] {
        let req = ImRecentContactSessionReq {
            user_id: user,
            latest_update_time: 0,
            attach_data: Some(b"s".to_vec()),
        };
        let r: ImRecentContactSessionRsp = c.call(&req);
        assert_eq!(r.attach_data.as_deref(), Some(&b"s"[..]));
        let s = r
            .contact_session_list
            .iter()
            .find(|s| s.session_id == peer && s.session_type == 1)
            .expect("session with the peer");
        assert_eq!(s.latest_msg_id, before + 2);
        assert_eq!(s.latest_msg_data, t2.as_bytes());
        assert_eq!(s.latest_msg_from_user_id, peer);
        assert_eq!(s.session_status, 0);
        let newer: Vec<u32> = r
            .contact_session_list
            .iter()
            .map(|s| s.updated_time)
            .collect();
        assert!(newer.windows(2).all(|w| w[0] >= w[1]), "newest first");
    }

    // Read ack (no reply) clears the counter. It may run on another worker than the next
    // request, so poll until it took effect (bounded by LIMIT as a hang guard).
    let ack = ImMsgDataReadAck {
        user_id: b,
        session_id: a,
        msg_id: before + 2,
        session_type: 1,
    };
    c.send(&ack);
    let deadline = Instant::now() + LIMIT;
    loop {
        let u = unread(&mut c, b);
        if !u.unreadinfo_list.iter().any(|e| e.session_id == a) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "read ack never cleared the counter"
        );
    }
}

#[test]
fn text_too_long_for_the_content_column_is_refused_without_using_a_msg_id() {
    let p = start(2);
    let mut c = connect(&p);
    let (a, b) = (OTHER_A, OTHER_B);
    let before = latest_msg_id(&mut c, a, b);
    let refused = send_msg(&mut c, a, b, &"x".repeat(4097));
    assert_eq!(refused.msg_id, 0, "not stored");
    // 4096 characters of 3-byte UTF-8 still fit the varchar(4096) column.
    let wide = send_msg(&mut c, a, b, &"语".repeat(4096));
    assert_eq!(
        wide.msg_id,
        before + 1,
        "no id was used by the refused message"
    );
    let next = send_msg(&mut c, a, b, "short");
    assert_eq!(next.msg_id, before + 2);
}

#[test]
fn users_departments_and_changed_users() {
    let p = start(2);
    let mut c = connect(&p);
    let req = ImUsersInfoReq {
        user_id: MEMBER_A,
        user_id_list: vec![MEMBER_B, MEMBER_A, MEMBER_B, 3_000_000_000],
        attach_data: Some(b"u".to_vec()),
    };
    let r: ImUsersInfoRsp = c.call(&req);
    assert_eq!(r.attach_data.as_deref(), Some(&b"u"[..]));
    let ids: Vec<u32> = r.user_info_list.iter().map(|u| u.user_id).collect();
    assert_eq!(ids, vec![MEMBER_A, MEMBER_B]);
    assert_eq!(r.user_info_list[1].user_gender, seeded_gender(MEMBER_B));
    assert_eq!(
        r.user_info_list[1].user_nick_name,
        format!("User {MEMBER_B}").as_bytes()
    );

    let req = ImDepartmentReq {
        user_id: MEMBER_A,
        latest_update_time: 0,
        attach_data: None,
    };
    let r: ImDepartmentRsp = c.call(&req);
    let dept = r
        .dept_list
        .iter()
        .find(|d| d.dept_id == 1)
        .expect("department 1");
    assert_eq!(dept.dept_name, b"Engineering");
    assert!(r.latest_update_time > 0);

    // Changed users since 0: every non-deleted user, the newest `updated` as the new time.
    let req = ImAllUserReq {
        user_id: MEMBER_A,
        latest_update_time: 0,
        attach_data: Some(b"a".to_vec()),
    };
    let r: ImAllUserRsp = c.call(&req);
    assert!(r.user_list.iter().any(|u| u.user_id == MEMBER_A));
    assert!(r.latest_update_time >= 1_704_067_200);
    // Gated by the start time: a client up to date with a future time gets nothing.
    let req = ImAllUserReq {
        latest_update_time: now() + 3600,
        ..req
    };
    let r: ImAllUserRsp = c.call(&req);
    assert!(r.user_list.is_empty());
    assert_eq!(r.latest_update_time, req.latest_update_time);
}

/// Removes the rows the concurrency test created.
fn cleanup_pair(db: &mut mysql::Conn, a: u32, b: u32) {
    let rels: Vec<u32> = db
        .exec(
            "SELECT id FROM IMRelationShip WHERE smallId=? AND bigId=?",
            (a, b),
        )
        .unwrap_or_default();
    let mut unread_db = redis_conn(1);
    for r in rels {
        let _ = db.exec_drop(
            format!("DELETE FROM IMMessage_{} WHERE relateId=?", r % 8),
            (r,),
        );
        // The relation id could be handed out again (auto-increment after a restart): its
        // counter must go with it.
        let _ = redis::cmd("DEL")
            .arg(format!("msg_id_{r}"))
            .query::<()>(&mut unread_db);
    }
    let _ = redis::cmd("HDEL")
        .arg(format!("unread_{a}"))
        .arg(b)
        .query::<()>(&mut unread_db);
    let _ = redis::cmd("HDEL")
        .arg(format!("unread_{b}"))
        .arg(a)
        .query::<()>(&mut unread_db);
    let _ = db.exec_drop(
        "DELETE FROM IMRelationShip WHERE smallId=? AND bigId=?",
        (a, b),
    );
    let _ = db.exec_drop(
        "DELETE FROM IMRecentSession WHERE type=1 AND ((userId=? AND peerId=?) OR (userId=? AND peerId=?))",
        (a, b, b, a),
    );
    let _ = db.exec_drop("DELETE FROM IMUser WHERE id IN (?, ?)", (a, b));
}

#[test]
fn first_messages_of_a_new_pair_sent_concurrently() {
    const N: usize = 24;
    let p = start(8);
    let mut db = mysql_conn();
    // Two fresh users, ids from the pid and the clock so reruns do not collide.
    let seed = u64::from(std::process::id()) * 1_000_003
        + std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_nanos() as u64;
    let mut a = 0;
    for attempt in 0..20u64 {
        let cand = 1_000_000 + ((seed + attempt * 7) % 1_000_000_000) as u32 * 2;
        let t = now();
        let ins = db.exec_drop(
            "INSERT INTO IMUser (id, sex, name, domain, nick, password, salt, phone, email, \
             avatar, departId, status, created, updated, push_shield_status, sign_info) \
             VALUES (?, 1, ?, ?, ?, '', '', '', '', '', 1, 0, ?, ?, 0, ''), \
                    (?, 2, ?, ?, ?, '', '', '', '', '', 1, 0, ?, ?, 0, '')",
            mysql::Params::Positional(vec![
                cand.into(),
                format!("dbp{cand}").into(),
                format!("dbp{cand}").into(),
                format!("dbp{cand}").into(),
                t.into(),
                t.into(),
                (cand + 1).into(),
                format!("dbp{}", cand + 1).into(),
                format!("dbp{}", cand + 1).into(),
                format!("dbp{}", cand + 1).into(),
                t.into(),
                t.into(),
            ]),
        );
        if ins.is_ok() {
            a = cand;
            break;
        }
    }
    assert!(a != 0, "could not insert two fresh users");
    let b = a + 1;

    let barrier = Arc::new(Barrier::new(N));
    let port = p.port;
    let threads: Vec<_> = (0..N)
        .map(|i| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let mut c = PduClient::connect(port);
                let (from, to) = if i % 2 == 0 { (a, b) } else { (b, a) };
                barrier.wait();
                send_msg(&mut c, from, to, &format!("race message {i}")).msg_id
            })
        })
        .collect();
    let mut ids: Vec<u32> = threads
        .into_iter()
        .map(|t| t.join().expect("sender thread"))
        .collect();
    ids.sort_unstable();

    let rels: Vec<u32> = db
        .exec(
            "SELECT id FROM IMRelationShip WHERE smallId=? AND bigId=?",
            (a, b),
        )
        .expect("select relations");
    let sessions: Vec<(u32, u32)> = db
        .exec(
            "SELECT userId, peerId FROM IMRecentSession WHERE type=1 AND \
             ((userId=? AND peerId=?) OR (userId=? AND peerId=?))",
            (a, b, b, a),
        )
        .expect("select sessions");
    let stored: Vec<u32> = match rels.first() {
        Some(r) => db
            .exec(
                format!(
                    "SELECT msgId FROM IMMessage_{} WHERE relateId=? ORDER BY msgId",
                    r % 8
                ),
                (*r,),
            )
            .expect("select messages"),
        None => Vec::new(),
    };
    cleanup_pair(&mut db, a, b);

    assert_eq!(rels.len(), 1, "exactly one relation row for the pair");
    assert_eq!(
        ids,
        (1..=N as u32).collect::<Vec<_>>(),
        "msg ids 1..N once each"
    );
    assert_eq!(stored, ids, "every acked message is stored");
    assert_eq!(sessions.len(), 2, "one session row per side");
}

#[test]
fn bad_framing_is_disconnected_and_others_are_served() {
    let p = start(2);
    let mut good = connect(&p);

    // Oversized length: closed at once, without waiting for the body.
    let mut bad = connect(&p);
    let mut h = Header::new(sid::SID_OTHER, cid::CID_OTHER_VALIDATE_REQ, 1);
    h.length = 0xFFFF_FFF0;
    bad.send_bytes(&h.to_bytes());
    // The oversized PDU closes the connection.
    bad.expect_closed();

    // Length below the header size.
    let mut bad = connect(&p);
    let mut h = Header::new(sid::SID_OTHER, cid::CID_OTHER_VALIDATE_REQ, 1);
    h.length = 3;
    bad.send_bytes(&h.to_bytes());
    // The short length closes the connection.
    bad.expect_closed();

    // Heartbeats and unknown commands get no reply; garbage bodies of known commands neither.
    good.send_pdu(&Pdu::new(
        sid::SID_OTHER,
        cid::CID_OTHER_HEARTBEAT,
        5,
        vec![],
    ));
    good.send_pdu(&Pdu::new(sid::SID_OTHER, 0x07ee, 6, b"whatever".to_vec()));
    good.send_pdu(&Pdu::new(
        sid::SID_MSG,
        cid::CID_MSG_LIST_REQUEST,
        7,
        vec![0xff, 0xff, 0xff],
    ));
    let ok = validate(&mut good, &seeded_name(LOGIN), PASSWORD);
    assert_eq!(ok.result_code, 0);
}

#[test]
fn replies_to_a_closed_connection_are_dropped() {
    let p = start(2);
    {
        let mut c = connect(&p);
        for i in 0..200u32 {
            let req = ImGetMsgListReq {
                user_id: OTHER_A,
                session_type: 1,
                session_id: OTHER_B,
                msg_id_begin: 0,
                msg_cnt: 20 + i % 3,
                attach_data: None,
            };
            c.send(&req);
        }
        c.shutdown();
    }
    let mut p = p;
    assert!(
        p.daemon.wait_for_line("closed", LIMIT),
        "the daemon noticed the close"
    );
    let mut c = connect(&p);
    assert_eq!(
        validate(&mut c, &seeded_name(LOGIN), PASSWORD).result_code,
        0
    );
    assert!(!p.daemon.recent_log().contains("panicked"));
}

#[test]
fn missing_conf_key_exits_with_code_1() {
    let dir = TempDir::new("db_proxy_badconf");
    let text = conf_text(free_port(), 2).replace("aesKey=", "notTheKey=");
    dir.write("dbproxyserver.conf", &text);
    let mut d = Daemon::spawn("db_proxy_server", dir.path(), "dbproxyserver.conf");
    assert!(d.wait_for_line("aesKey", LIMIT), "error names the key");
    assert_eq!(d.wait_exit(LIMIT), Some(1));

    let text = conf_text(free_port(), 2)
        .replace("aesKey=12345678901234567890123456789012", "aesKey=short");
    let dir = TempDir::new("db_proxy_badkey");
    dir.write("dbproxyserver.conf", &text);
    let mut d = Daemon::spawn("db_proxy_server", dir.path(), "dbproxyserver.conf");
    assert_eq!(d.wait_exit(LIMIT), Some(1));
}

/// A stand-in for msfs: answers uploads like msfs (§8.4) and serves the uploaded bytes back.
/// Each upload's file data is reported on the channel.
fn fake_msfs() -> (u16, std::sync::mpsc::Receiver<Vec<u8>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind fake msfs");
    let port = listener.local_addr().expect("addr").port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut stored: Vec<u8> = Vec::new();
        for s in listener.incoming() {
            let Ok(mut s) = s else { break };
            s.set_read_timeout(Some(LIMIT)).expect("timeout");
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let head_end = loop {
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break i + 4;
                }
                match s.read(&mut chunk) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            };
            let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            while buf.len() < head_end + len {
                match s.read(&mut chunk) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            let body = &buf[head_end..head_end + len];
            let reply = if head.starts_with("POST / ") {
                let start_marker = b"Content-Type:image/jpg\r\n\r\n";
                let start = body
                    .windows(start_marker.len())
                    .position(|w| w == start_marker)
                    .map(|i| i + start_marker.len())
                    .expect("multipart part header");
                let end_marker = b"\r\n--WebKitFormBoundary8riBH6S4ZsoT69so--\r\n\r\n";
                assert!(body.ends_with(end_marker), "multipart trailer");
                stored = body[start..body.len() - end_marker.len()].to_vec();
                let _ = tx.send(stored.clone());
                let json = format!(
                    "{{\"error_code\":0,\"error_msg\": \"成功\",\"path\":\"g0/000/000/1.audio\",\
                     \"url\":\"http://127.0.0.1:{port}/g0/000/000/1.audio\"}}"
                );
                let mut r = format!(
                    "HTTP/1.1 200 OK\r\nConnection:close\r\nContent-Length:{}\r\n\
                     Content-Type:text/html;charset=utf-8\r\n\r\n",
                    json.len()
                )
                .into_bytes();
                r.extend_from_slice(json.as_bytes());
                r
            } else {
                let mut r = format!(
                    "HTTP/1.1 200 OK\r\nConnection:close\r\nContent-Length:{}\r\n\
                     Content-Type:multipart/form-data\r\n\r\n",
                    stored.len()
                )
                .into_bytes();
                r.extend_from_slice(&stored);
                r
            };
            let _ = s.write_all(&reply);
        }
    });
    (port, rx)
}

#[test]
fn audio_message_goes_through_msfs() {
    let (msfs_port, uploads) = fake_msfs();
    let dir = TempDir::new("db_proxy_audio");
    let port = free_port();
    let text = conf_text(port, 2).replace(
        "MsfsSite=http://127.0.0.1:8700",
        &format!("MsfsSite=http://127.0.0.1:{msfs_port}"),
    );
    dir.write("dbproxyserver.conf", &text);
    let mut daemon = Daemon::spawn("db_proxy_server", dir.path(), "dbproxyserver.conf");
    daemon.wait_ready(LIMIT);
    let p = Proxy {
        _dir: dir,
        daemon,
        port,
    };
    let mut c = connect(&p);
    let (a, b) = (AUDIO_A, AUDIO_B);
    // A text first: msg ids used up by earlier runs' rejected audio are not in the table, so
    // the baseline comes from an ack.
    let before = send_msg(&mut c, a, b, "before the audio").msg_id;
    assert!(before > 0);

    let audio = b"fake-audio-bytes".to_vec();
    let mut data = 7u32.to_be_bytes().to_vec();
    data.extend_from_slice(&audio);
    let req = ImMsgData {
        from_user_id: a,
        to_session_id: b,
        msg_id: 0,
        create_time: now(),
        msg_type: 2,
        msg_data: data.clone(),
        attach_data: None,
    };
    let ack: ImMsgData = c.call(&req);
    assert_eq!(ack.msg_id, before + 1);
    assert_eq!(uploads.recv_timeout(LIMIT).expect("upload"), audio);

    // The stored content is the IMAudio id; the row has the size and duration.
    let mut db = mysql_conn();
    let r = relation_id(&mut db, a, b);
    assert_ne!(r, 0, "a relation of {a} and {b}");
    let content: String = db
        .exec_first(
            format!(
                "SELECT content FROM IMMessage_{} WHERE relateId=? AND msgId=?",
                r % 8
            ),
            (r, before + 1),
        )
        .expect("query")
        .expect("message row");
    let (size, duration): (u32, u32) = db
        .exec_first(
            "SELECT size, duration FROM IMAudio WHERE id=?",
            (content.parse::<u32>().expect("audio id"),),
        )
        .expect("query")
        .expect("audio row");
    assert_eq!((size, duration), (audio.len() as u32, 7));

    // History expands it back (downloaded from msfs); lists show the placeholder.
    let h: ImGetMsgListRsp = c.call(&ImGetMsgListReq {
        user_id: b,
        session_type: 1,
        session_id: a,
        msg_id_begin: before + 1,
        msg_cnt: 1,
        attach_data: None,
    });
    assert_eq!(h.msg_list.len(), 1);
    assert_eq!(h.msg_list[0].msg_type, 2);
    assert_eq!(h.msg_list[0].msg_data, data);
    let r: ImRecentContactSessionRsp = c.call(&ImRecentContactSessionReq {
        user_id: b,
        latest_update_time: 0,
        attach_data: None,
    });
    let s = r
        .contact_session_list
        .iter()
        .find(|s| s.session_id == a)
        .expect("session");
    assert_eq!(s.latest_msg_type, 2);
    assert_eq!(s.latest_msg_data, b"QhGXlpFjvMFUNrtl1aaPzA==");

    // Too short to carry audio: not stored, no msg id.
    let short = ImMsgData {
        msg_data: vec![0, 0, 1],
        ..req
    };
    let ack: ImMsgData = c.call(&short);
    assert_eq!(ack.msg_id, 0);
}

#[test]
fn a_flooding_connection_is_closed_and_others_are_served() {
    let mut p = start(2);
    let mut db = mysql_conn();
    // A pair no one uses: ids from the pid and the clock, above the seeded range.
    let x = 1_500_000_000
        + (std::process::id() % 1000) * 100_000
        + (std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .subsec_micros()
            % 50_000)
            * 2;
    let y = x + 1;
    // Hold the pair's lock so that every request of the flood blocks its worker: the
    // backlog can only grow.
    let name = format!("teamtalk.pair.{x}.{y}");
    let got: Option<u32> = db
        .exec_first("SELECT GET_LOCK(?, 0)", (&name,))
        .expect("get_lock");
    assert_eq!(got, Some(1));

    let mut flood = connect(&p);
    let msg = ImMsgData {
        from_user_id: x,
        to_session_id: y,
        msg_id: 0,
        create_time: now(),
        msg_type: 1,
        msg_data: b"flood".to_vec(),
        attach_data: None,
    };
    let one = Pdu::command(1, &msg).to_bytes();
    let mut all = Vec::with_capacity(one.len() * 101_000);
    for _ in 0..101_000 {
        all.extend_from_slice(&one);
    }
    // The server may close while we write: a write error is expected then.
    let _ = flood.try_send_bytes(&all);
    // The flooding connection is closed.
    flood.expect_closed();
    assert!(p.daemon.wait_for_line("waiting for the workers", LIMIT));

    // Let the few requests already handed to workers finish; then others are served.
    let released: Option<u32> = db
        .exec_first("SELECT RELEASE_LOCK(?)", (&name,))
        .expect("release_lock");
    assert_eq!(released, Some(1));
    let mut c = connect(&p);
    assert_eq!(
        validate(&mut c, &seeded_name(LOGIN), PASSWORD).result_code,
        0
    );
    drop(c);
    drop(p);
    cleanup_pair(&mut db, x, y);
}

#[test]
fn group_messages_counters_and_history() {
    let p = start(2);
    let mut c = connect(&p);
    let mut db = mysql_conn();
    let mut members = redis_conn(5);
    let t = now();
    // A fresh group with members A and B (as group create would leave it).
    db.exec_drop(
        "INSERT INTO IMGroup (name, avatar, creator, type, userCnt, status, version, \
         lastChated, updated, created) VALUES ('dbp test group', '', ?, 2, 2, 0, 1, 0, ?, ?)",
        (MEMBER_A, t, t),
    )
    .expect("insert group");
    let g = db.last_insert_id() as u32;
    for u in [MEMBER_A, MEMBER_B] {
        db.exec_drop(
            "INSERT INTO IMGroupMember (groupId, userId, status, created, updated) \
             VALUES (?, ?, 0, ?, ?)",
            (g, u, t, t),
        )
        .expect("insert member");
        redis::cmd("HSET")
            .arg(format!("group_member_{g}"))
            .arg(u)
            .arg(t - 60)
            .query::<()>(&mut members)
            .expect("hset member");
    }

    let send = |c: &mut PduClient, from: u32, text: &str| -> ImMsgData {
        let req = ImMsgData {
            from_user_id: from,
            to_session_id: g,
            msg_id: 0,
            create_time: now(),
            msg_type: 17,
            msg_data: text.as_bytes().to_vec(),
            attach_data: Some(b"g".to_vec()),
        };
        c.call(&req)
    };
    let m1 = send(&mut c, MEMBER_A, "group hello");
    assert!(m1.msg_id > 0);
    assert_eq!(m1.attach_data.as_deref(), Some(&b"g"[..]));
    let m2 = send(&mut c, MEMBER_A, "group again");
    assert_eq!(m2.msg_id, m1.msg_id + 1);

    // A non-member gets no reply at all: the next request's reply comes first.
    let outsider = ImMsgData {
        from_user_id: OTHER_A,
        to_session_id: g,
        msg_id: 0,
        create_time: now(),
        msg_type: 17,
        msg_data: b"let me in".to_vec(),
        attach_data: None,
    };
    c.send(&outsider);
    assert_eq!(
        validate(&mut c, &seeded_name(MEMBER_A), PASSWORD).result_code,
        0
    );

    // Unread: 2 for the other member, nothing for the sender.
    let u = unread(&mut c, MEMBER_B);
    let e = u
        .unreadinfo_list
        .iter()
        .find(|e| e.session_id == g && e.session_type == 2)
        .expect("group unread entry");
    assert_eq!(e.unread_cnt, 2);
    assert_eq!(e.latest_msg_id, m2.msg_id);
    assert_eq!(e.latest_msg_from_user_id, MEMBER_A);
    assert_eq!(e.latest_msg_data, b"group again");
    assert!(
        !unread(&mut c, MEMBER_A)
            .unreadinfo_list
            .iter()
            .any(|e| e.session_id == g)
    );

    // History (members only), newest first.
    let hist = |c: &mut PduClient, user: u32| -> ImGetMsgListRsp {
        c.call(&ImGetMsgListReq {
            user_id: user,
            session_type: 2,
            session_id: g,
            msg_id_begin: 0,
            msg_cnt: 10,
            attach_data: None,
        })
    };
    let h = hist(&mut c, MEMBER_B);
    let ids: Vec<u32> = h.msg_list.iter().map(|m| m.msg_id).collect();
    assert_eq!(ids, vec![m2.msg_id, m1.msg_id]);
    assert_eq!(h.msg_list[1].from_session_id, MEMBER_A);
    assert!(hist(&mut c, OTHER_A).msg_list.is_empty());

    // The sender's group session exists; the group's lastChated was set.
    let r: ImRecentContactSessionRsp = c.call(&ImRecentContactSessionReq {
        user_id: MEMBER_A,
        latest_update_time: 0,
        attach_data: None,
    });
    let s = r
        .contact_session_list
        .iter()
        .find(|s| s.session_id == g && s.session_type == 2)
        .expect("group session of the sender");
    assert_eq!(s.latest_msg_id, m2.msg_id);
    let last: Option<u32> = db
        .exec_first("SELECT lastChated FROM IMGroup WHERE id=?", (g,))
        .expect("query");
    assert!(last.is_some_and(|l| l >= t));

    // Read ack clears the member's group unread.
    c.send(&ImMsgDataReadAck {
        user_id: MEMBER_B,
        session_id: g,
        msg_id: m2.msg_id,
        session_type: 2,
    });
    let deadline = Instant::now() + LIMIT;
    while unread(&mut c, MEMBER_B)
        .unreadinfo_list
        .iter()
        .any(|e| e.session_id == g)
    {
        assert!(
            Instant::now() < deadline,
            "group read ack never took effect"
        );
    }

    // Clean up.
    drop(c);
    drop(p);
    drop_group(&mut db, g, &[MEMBER_A, MEMBER_B]);
}

#[test]
fn device_tokens_set_and_get() {
    use tt_proto::pb::login::{ImDeviceTokenReq, ImDeviceTokenRsp};
    use tt_proto::pb::server::{ImGetDeviceTokenReq, ImGetDeviceTokenRsp};
    let p = start(2);
    let mut c = connect(&p);
    let tag = format!("{}-{}", std::process::id(), now());
    let set = |c: &mut PduClient, user: u32, token: &str, client_type: i32| {
        let rsp: ImDeviceTokenRsp = c.call(&ImDeviceTokenReq {
            user_id: user,
            device_token: token.as_bytes().to_vec(),
            client_type: Some(client_type),
            attach_data: Some(b"d".to_vec()),
        });
        assert_eq!(rsp.user_id, user);
        assert_eq!(rsp.attach_data.as_deref(), Some(&b"d"[..]));
    };
    let (a, b) = (OTHER_A, OTHER_B);
    let old_a = format!("old{a}-{tag}");
    let tok_a = format!("tok{a}-{tag}");
    let tok_b = format!("tok{b}-{tag}");
    set(&mut c, a, &old_a, 0x11);
    set(&mut c, a, &tok_a, 0x11);
    set(&mut c, b, &tok_b, 0x12);

    let mut tokens = redis_conn(4);
    let v: String = redis::cmd("GET")
        .arg(format!("device_{a}"))
        .query(&mut tokens)
        .expect("get");
    assert_eq!(v, format!("ios:{tok_a}"));
    let v: String = redis::cmd("GET")
        .arg(format!("device_{tok_a}"))
        .query(&mut tokens)
        .expect("get");
    assert_eq!(v, a.to_string());
    let v: String = redis::cmd("GET")
        .arg(format!("device_{old_a}"))
        .query(&mut tokens)
        .expect("get");
    assert_eq!(v, "", "the replaced token no longer points at the user");

    let rsp: ImGetDeviceTokenRsp = c.call(&ImGetDeviceTokenReq {
        user_id: vec![b, a, b],
        attach_data: Some(b"t".to_vec()),
    });
    assert_eq!(rsp.attach_data.as_deref(), Some(&b"t"[..]));
    let users: Vec<u32> = rsp.user_token_info.iter().map(|t| t.user_id).collect();
    assert_eq!(users, vec![a, b], "ordered by key, duplicates collapsed");
    let (ia, ib) = (&rsp.user_token_info[0], &rsp.user_token_info[1]);
    assert_eq!(
        (ia.user_type, ia.token.as_slice()),
        (0x11, tok_a.as_bytes())
    );
    assert_eq!(
        (ib.user_type, ib.token.as_slice()),
        (0x12, tok_b.as_bytes())
    );
    assert_eq!(ib.push_type, 1);
    let mut unread_db = redis_conn(1);
    let vals: Vec<String> = redis::cmd("HVALS")
        .arg(format!("unread_{b}"))
        .query(&mut unread_db)
        .expect("hvals");
    let expected: u32 = vals.iter().map(|v| v.parse::<u32>().unwrap_or(0)).sum();
    assert_eq!(ib.push_count, expected);

    for key in [
        format!("device_{a}"),
        format!("device_{b}"),
        format!("device_{old_a}"),
        format!("device_{tok_a}"),
        format!("device_{tok_b}"),
    ] {
        let _ = redis::cmd("DEL").arg(key).query::<()>(&mut tokens);
    }
}
