//! push_server as a process: a blocking PDU client plays msg_server,
//! [`tt_testkit::push_gateway`] plays the Gorush gateway (it records every request body and
//! answers 200, 400, 500 or nothing, as each test scripts it).
//!
//! Synchronisation: the reply to a push request is sent after its notifications are queued;
//! the gateway's recorded requests are awaited through a channel (with a hang guard); log
//! lines through `Daemon::wait_for_line`. Nothing waits on a clock.

use serde_json::{Value, json};
use tt_proto::ids::cid;
use tt_proto::pb::base_define::{ClientType, UserTokenInfo};
use tt_proto::pb::other::ImHeartBeat;
use tt_proto::pb::server::{ImPushToUserReq, ImPushToUserRsp, ImRoleSet};
use tt_proto::prost::Message;
use tt_proto::{Command, Pdu};
use tt_testkit::push_gateway::{Answer, PushGateway, user_token};
use tt_testkit::stack::LIMIT;
use tt_testkit::{Daemon, PduClient, READY_MARKER, TempDir, free_port};

const IOS: i32 = ClientType::Ios as i32;
const ANDROID: i32 = ClientType::Android as i32;
const WINDOWS: i32 = ClientType::Windows as i32;
const TOPIC: &str = "com.example.teamtalk";
/// The `data` msg_server sends for a single text message (msg_server.md §10.4).
const DATA: &str = "{\n\t\"from_id\": 12,\n\t\"msg_type\": 1 \n} \n";

// ---- the gateway ----

/// The tokens of the gateway's next request, which holds one notification.
fn next_tokens(gw: &mut PushGateway) -> Vec<String> {
    let body = gw.next_request().body;
    assert_eq!(body["notifications"].as_array().unwrap().len(), 1);
    tokens(&body["notifications"][0])
        .into_iter()
        .map(str::to_string)
        .collect()
}

/// The gateway's requests until `n` tokens were seen; their notifications in arrival order.
fn notifications(gw: &mut PushGateway, n: usize) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    while out
        .iter()
        .map(|x| x["tokens"].as_array().unwrap().len())
        .sum::<usize>()
        < n
    {
        let r = gw.next_request();
        assert_eq!(r.path, "/api/push");
        out.extend(r.body["notifications"].as_array().unwrap().iter().cloned());
    }
    out
}

// ---- push_server ----

struct Push {
    daemon: Daemon,
    port: u16,
    _dir: TempDir,
}

/// push_server with `extra` conf lines, ready.
fn start(label: &str, extra: &str) -> Push {
    let mut p = spawn(label, extra);
    p.daemon.wait_ready(LIMIT);
    p
}

/// push_server with `extra` conf lines, started (not awaited).
fn spawn(label: &str, extra: &str) -> Push {
    let dir = TempDir::new(label);
    let port = free_port();
    dir.write(
        "pushserver.conf",
        &format!(
            "ListenIP=127.0.0.1\nListenPort={port}\nPushTopic={TOPIC}\nPushRetryDelayMs=5\n{extra}"
        ),
    );
    let daemon = Daemon::spawn("push_server", dir.path(), "pushserver.conf");
    Push {
        daemon,
        port,
        _dir: dir,
    }
}

fn with_gateway(g: &PushGateway) -> String {
    format!("PushGatewayUrl={}\n", g.url())
}

fn ios_token(fill: char) -> String {
    fill.to_string().repeat(64)
}

fn request(flash: &str, entries: Vec<UserTokenInfo>) -> ImPushToUserReq {
    ImPushToUserReq {
        flash: flash.as_bytes().to_vec(),
        data: DATA.as_bytes().to_vec(),
        user_token_list: entries,
    }
}

/// Sends the request; its results as (token, code), after checking the reply's header.
fn push(c: &mut PduClient, req: &ImPushToUserReq) -> Vec<(String, u32)> {
    c.notify(req);
    let (h, rsp) = c.expect::<ImPushToUserRsp>();
    assert_eq!(
        (h.seq_num, h.reserved),
        (0, 0),
        "a fresh header, as the original"
    );
    rsp.push_result_list
        .into_iter()
        .map(|r| (String::from_utf8(r.user_token).unwrap(), r.result_code))
        .collect()
}

/// Pushes one iOS token of user 1; its result code.
fn push_ios(c: &mut PduClient, flash: &str, token: &str) -> u32 {
    let results = push(c, &request(flash, vec![user_token(1, IOS, token, 1, 1)]));
    assert_eq!(results.len(), 1);
    results[0].1
}

fn codes(results: &[(String, u32)]) -> Vec<u32> {
    results.iter().map(|r| r.1).collect()
}

/// A heartbeat with a seq of its own comes back byte for byte.
fn assert_heartbeat_echoed(c: &mut PduClient) {
    let hb = Pdu::command(4711, &ImHeartBeat {});
    c.send_pdu(&hb);
    let back = c.recv_pdu();
    assert_eq!(back.to_bytes(), hb.to_bytes());
}

fn tokens(n: &Value) -> Vec<&str> {
    n["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect()
}

// ---- tests ----

#[test]
fn ios_and_android_tokens_become_gorush_notifications() {
    let mut gw = PushGateway::start(&[]);
    let conf = format!("{}CertPath=apns.pem\nSandBox=1\n", with_gateway(&gw));
    let mut p = spawn("push-platforms", &conf);
    let missing = p.daemon.wait_for_lines(
        &["CertPath is ignored", "SandBox is ignored", READY_MARKER],
        LIMIT,
    );
    assert!(missing.is_empty(), "not logged: {missing:?}");
    let mut c = PduClient::connect(p.port);

    let (ios, ios_silent) = (ios_token('a'), "0123456789ABCDEF".repeat(4));
    let fcm = "fcm:APA91bH-x_y";
    let results = push(
        &mut c,
        &request(
            "张三:hello",
            vec![
                user_token(1, IOS, &ios, 3, 1),
                user_token(2, WINDOWS, "windows-token", 1, 1),
                user_token(3, ANDROID, fcm, 4, 1),
                user_token(4, IOS, "abc", 1, 1),
                user_token(5, IOS, &ios_silent, 5, 2),
                user_token(6, ANDROID, "", 1, 1),
            ],
        ),
    );
    let sent: Vec<&str> = results.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(sent, [&ios, "windows-token", fcm, "abc", &ios_silent, ""]);
    assert_eq!(codes(&results), [0, 1, 0, 1, 0, 1]);

    let mut got = notifications(&mut gw, 3);
    got.sort_by_key(|n| tokens(n)[0].to_string());
    let data = json!({"from_id": 12, "msg_type": 1});
    assert_eq!(
        got,
        [
            json!({"tokens": [ios_silent], "platform": 1, "badge": 5, "content_available": true,
                   "topic": TOPIC, "data": data}),
            json!({"tokens": [ios], "platform": 1, "badge": 3, "message": "张三:hello",
                   "sound": "bingbong.aiff", "topic": TOPIC, "data": data}),
            json!({"tokens": [fcm], "platform": 2, "badge": 4, "message": "张三:hello",
                   "data": data}),
        ]
    );
    assert_heartbeat_echoed(&mut c);
}

#[test]
fn a_500_is_retried_and_delivered_once() {
    let mut gw = PushGateway::start(&[Answer::Status(500)]);
    let p = start("push-retry", &with_gateway(&gw));
    let mut c = PduClient::connect(p.port);
    let first = ios_token('1');
    assert_eq!(push_ios(&mut c, "a", &first), 0);
    let failed = gw.next_request();
    let retried = gw.next_request();
    assert_eq!(failed.body, retried.body, "the retry sends the same batch");
    assert_eq!(tokens(&retried.body["notifications"][0]), [first.as_str()]);

    // Nothing more of the first batch: the next request is the next push alone.
    let second = ios_token('2');
    assert_eq!(push_ios(&mut c, "b", &second), 0);
    assert_eq!(next_tokens(&mut gw), vec![second.as_str()]);
}

#[test]
fn a_400_is_not_retried() {
    let mut gw = PushGateway::start(&[Answer::Status(400)]);
    let mut p = start("push-400", &with_gateway(&gw));
    let mut c = PduClient::connect(p.port);
    let first = ios_token('3');
    assert_eq!(push_ios(&mut c, "a", &first), 0);
    assert_eq!(next_tokens(&mut gw), vec![first.as_str()]);
    assert!(
        p.daemon
            .wait_for_line("answered 400: batch of 1 notifications failed", LIMIT),
        "no failure line:\n{}",
        p.daemon.recent_log()
    );
    let second = ios_token('4');
    assert_eq!(push_ios(&mut c, "b", &second), 0);
    assert_eq!(next_tokens(&mut gw), vec![second.as_str()]);
}

#[test]
fn a_hanging_gateway_fills_the_queue_and_further_tokens_are_refused() {
    let mut gw = PushGateway::start(&[Answer::Hang]);
    let conf = format!(
        "{}PushQueueSize=3\nPushTimeoutMs=600000\n",
        with_gateway(&gw)
    );
    let p = start("push-hang", &conf);
    let mut c = PduClient::connect(p.port);
    assert_eq!(push_ios(&mut c, "a", &ios_token('5')), 0);
    // The sender holds that one in its hanging request: the queue is empty and stays so.
    gw.next_request();
    let entries: Vec<_> = (0..5)
        .map(|i| user_token(10 + i, ANDROID, &format!("fcm-{i}"), 1, 1))
        .collect();
    assert_eq!(
        codes(&push(&mut c, &request("b", entries))),
        [0, 0, 0, 1, 1]
    );
    assert_eq!(push_ios(&mut c, "c", &ios_token('6')), 1);
    assert_heartbeat_echoed(&mut c);
    let mut other = PduClient::connect(p.port);
    assert_heartbeat_echoed(&mut other);
}

#[test]
fn bad_input_closes_the_session_and_others_go_on() {
    let mut gw = PushGateway::start(&[]);
    let p = start("push-bad", &with_gateway(&gw));
    let valid = request("x", vec![user_token(1, IOS, &ios_token('7'), 1, 1)]).encode_to_vec();
    let mut unknown_type = request("x", vec![user_token(1, IOS, &ios_token('7'), 1, 1)]);
    unknown_type.user_token_list[0].user_type = 0x05;
    let push_pdu = |body: Vec<u8>| {
        Pdu::new(
            ImPushToUserReq::SERVICE_ID,
            cid::CID_OTHER_PUSH_TO_USER_REQ,
            0,
            body,
        )
        .to_bytes()
    };
    let mut short_header = Pdu::heartbeat().to_bytes();
    short_header[..4].copy_from_slice(&5u32.to_be_bytes());
    let cases: [(&str, Vec<u8>); 5] = [
        ("a length under 16", short_header),
        (
            "a truncated body",
            push_pdu(valid[..valid.len() / 2].to_vec()),
        ),
        ("an empty body", push_pdu(Vec::new())),
        (
            "an undeclared client type",
            push_pdu(unknown_type.encode_to_vec()),
        ),
        (
            "another command",
            Pdu::command(0, &ImRoleSet { master: 1 }).to_bytes(),
        ),
    ];
    for (what, bytes) in cases {
        let mut bad = PduClient::connect(p.port);
        bad.send_bytes(&bytes);
        assert!(bad.expect_closed().is_empty(), "{what}: nothing answered");
        let mut good = PduClient::connect(p.port);
        let results = push(
            &mut good,
            &request("y", vec![user_token(2, IOS, &ios_token('8'), 1, 1)]),
        );
        assert_eq!(codes(&results), [0], "after {what}");
        assert_heartbeat_echoed(&mut good);
    }
    let delivered = notifications(&mut gw, 5);
    let token = ios_token('8');
    assert!(
        delivered
            .iter()
            .all(|n| tokens(n).iter().all(|t| *t == token))
    );
}

#[test]
fn without_a_gateway_pushes_are_logged_and_sigterm_stops_cleanly() {
    let mut p = start("push-log", "PushGatewayUrl=\n");
    let mut c = PduClient::connect(p.port);
    let results = push(
        &mut c,
        &request(
            "李四:hi",
            vec![
                user_token(7, IOS, &ios_token('9'), 2, 1),
                user_token(8, ANDROID, "fcm-8", 6, 2),
            ],
        ),
    );
    assert_eq!(codes(&results), [0, 0]);
    let missing = p.daemon.wait_for_lines(
        &[
            "push (no gateway): user 7 ios badge 2: 李四:hi",
            "push (no gateway): user 8 android badge 6 silent",
        ],
        LIMIT,
    );
    assert!(missing.is_empty(), "not logged: {missing:?}");

    terminate(
        &mut p,
        "2 accepted, 0 refused (0 on a full queue), 2 sent, 0 failed, 0 dropped",
    );
}

#[test]
fn sigterm_ends_a_retry_wait_and_drops_its_batch() {
    let mut gw = PushGateway::start(&[Answer::Status(500)]);
    let conf = format!(
        "{}PushRetryDelayMs=600000
",
        with_gateway(&gw)
    );
    let mut p = start("push-stop", &conf);
    let mut c = PduClient::connect(p.port);
    assert_eq!(push_ios(&mut c, "a", &ios_token('c')), 0);
    gw.next_request();
    // The sender waits ten minutes before its retry; the stop ends that wait.
    terminate(
        &mut p,
        "1 accepted, 0 refused (0 on a full queue), 0 sent, 0 failed, 1 dropped",
    );
}

/// SIGTERM; the daemon logs its counters (`counts`) and exits with status 0.
fn terminate(p: &mut Push, counts: &str) {
    let pid = p.daemon.pid().expect("pid");
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("running kill");
    assert!(status.success());
    assert!(
        p.daemon
            .wait_for_line(&format!("notifications: {counts}"), LIMIT),
        "no summary with {counts}:\n{}",
        p.daemon.recent_log()
    );
    assert_eq!(p.daemon.wait_exit(LIMIT), Some(0));
}
