//! login_server against fake msg_servers and clients: blocking PDU clients
//! (`tt_testkit::PduClient`) and plain sockets for HTTP.
//!
//! Synchronisation: a msg_server link's PDUs are handled in order, and login_server answers a
//! `CID_LOGIN_REQ_MSGSERVER` on a msg_server link too (without closing it), so such a request
//! is a barrier: its reply comes after every earlier PDU of that link took effect.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::{Value, json};
use tt_proto::Command;
use tt_proto::ids::{cid, sid};
use tt_proto::pb::login::{ImMsgServReq, ImMsgServRsp};
use tt_proto::pb::server::{ImMsgServInfo, ImUserCntUpdate};
use tt_proto::{Header, Pdu};
use tt_testkit::{Daemon, PduClient, TempDir, free_port};

/// Hang guard for every socket read; well under the 60 s HTTP idle timeout, so a connection
/// closed within it was closed on purpose.
const IO_LIMIT: Duration = Duration::from_secs(20);

struct Login {
    daemon: Daemon,
    client_port: u16,
    http_port: u16,
    msg_port: u16,
    _dir: TempDir,
}

fn start_login(label: &str) -> Login {
    let dir = TempDir::new(label);
    let (client_port, http_port, msg_port) = (free_port(), free_port(), free_port());
    dir.write(
        "loginserver.conf",
        &format!(
            "ClientListenIP=127.0.0.1\nClientPort={client_port}\n\
             HttpListenIP=127.0.0.1\nHttpPort={http_port}\n\
             MsgServerListenIP=127.0.0.1\nMsgServerPort={msg_port}\n\
             msfs=http://127.0.0.1:8700/\ndiscovery=http://127.0.0.1/api/discovery\n"
        ),
    );
    let mut daemon = Daemon::spawn("login_server", dir.path(), "loginserver.conf");
    daemon.wait_ready(Duration::from_secs(30));
    assert!(dir.path().join("server.pid").exists());
    Login {
        daemon,
        client_port,
        http_port,
        msg_port,
        _dir: dir,
    }
}

fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).expect("connect to login_server");
    s.set_read_timeout(Some(IO_LIMIT)).unwrap();
    s
}

/// Reads until login_server closes; panics on the hang guard.
fn read_to_close(s: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return out,
            Err(e) => panic!("login_server did not close the connection: {e}"),
        }
    }
}

/// Sends `request` (in pieces, each written separately) and returns everything received
/// until login_server closed the connection.
fn http_exchange(l: &Login, pieces: &[&[u8]]) -> Vec<u8> {
    let mut s = connect(l.http_port);
    for p in pieces {
        s.write_all(p).unwrap();
        s.flush().unwrap();
    }
    read_to_close(&mut s)
}

/// A GET /msg_server, answered: the exact header bytes are checked, the body returned.
fn http_msg_server(l: &Login) -> String {
    let reply = http_exchange(l, &[b"GET /msg_server HTTP/1.1\r\nHost: localhost\r\n\r\n"]);
    let text = String::from_utf8(reply).expect("UTF-8 reply");
    let (head, body) = text.split_once("\r\n\r\n").expect("header/body separator");
    assert_eq!(
        head,
        format!(
            "HTTP/1.1 200 OK\r\nConnection:close\r\nContent-Length:{}\r\n\
             Content-Type:text/html;charset=utf-8",
            body.len()
        )
    );
    body.to_string()
}

fn http_json(l: &Login) -> Value {
    serde_json::from_str(&http_msg_server(l)).expect("JSON body")
}

/// A PDU connection to `port`, with the hang guard of these tests.
fn pdu_connect(port: u16) -> PduClient {
    let mut c = PduClient::connect(port);
    c.set_hang_guard(IO_LIMIT);
    c
}

/// A fake msg_server; heartbeats from login_server are not looked at, except where a test asks
/// for them.
struct MsgServ {
    c: PduClient,
}

impl MsgServ {
    fn connect(l: &Login) -> MsgServ {
        MsgServ {
            c: pdu_connect(l.msg_port).skipping_heartbeats(),
        }
    }

    /// Sends `msg` with seq 0, as msg_server does.
    fn send<M: Command>(&mut self, msg: &M) {
        self.c.notify(msg);
    }

    fn info(&mut self, ip1: &str, port: u32, cur: u32, max: u32) {
        self.send(&ImMsgServInfo {
            ip1: ip1.into(),
            ip2: format!("{ip1}-netcom").into(),
            port,
            max_conn_cnt: max,
            cur_conn_cnt: cur,
            host_name: "fake".into(),
        });
    }

    fn cnt(&mut self, action: u32, times: usize) {
        for _ in 0..times {
            self.send(&ImUserCntUpdate {
                user_action: action,
                user_id: 77,
            });
        }
    }

    /// The barrier: login_server's choice as of now (the next PDU other than a heartbeat is
    /// the reply, with the request's seq).
    fn pick(&mut self) -> ImMsgServRsp {
        self.c.call(&ImMsgServReq {})
    }
}

/// A binary client request: the reply (seq echoed) and the connection closed after it.
fn binary_request(l: &Login, seq: u16) -> ImMsgServRsp {
    let mut c = pdu_connect(l.client_port);
    let mut h = Header::new(sid::SID_LOGIN, cid::CID_LOGIN_REQ_MSGSERVER, seq);
    h.flag = 1;
    h.reserved = 2;
    c.send_pdu(&Pdu::with_header(h, Vec::new()));
    let got = c.expect_closed();
    assert_eq!(got.len(), 1, "exactly one PDU: {got:?}");
    let p = &got[0];
    assert_eq!(p.header.command_id, cid::CID_LOGIN_RES_MSGSERVER);
    assert_eq!(p.header.service_id, sid::SID_LOGIN);
    assert_eq!(p.header.seq_num, seq);
    assert_eq!(
        (p.header.version, p.header.flag, p.header.reserved),
        (1, 0, 0)
    );
    p.decode_checked().unwrap()
}

fn no_server_json() -> Value {
    json!({"code": 1, "msg": "没有msg_server"})
}

fn full_json() -> Value {
    json!({"code": 2, "msg": "负载过高"})
}

fn ok_json(ip1: &str, port: u32) -> Value {
    json!({
        "backupIP": format!("{ip1}-netcom"),
        "code": 0,
        "discovery": "http://127.0.0.1/api/discovery",
        "msfsBackup": "http://127.0.0.1:8700/",
        "msfsPrior": "http://127.0.0.1:8700/",
        "msg": "",
        "port": port.to_string(),
        "priorIP": ip1,
    })
}

#[test]
fn no_msg_server_gives_code_1_on_both_interfaces() {
    let l = start_login("login-empty");
    let body = http_msg_server(&l);
    assert_eq!(body.len(), 49);
    assert_eq!(
        body,
        "{\n   \"code\" : 1,\n   \"msg\" : \"没有msg_server\"\n}\n"
    );
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        no_server_json()
    );

    let rsp = binary_request(&l, 4711);
    assert_eq!(rsp.result_code, 1);
    assert_eq!((rsp.prior_ip, rsp.backip_ip, rsp.port), (None, None, None));
}

#[test]
fn least_loaded_selection_and_counts() {
    let mut l = start_login("login-select");
    let mut a = MsgServ::connect(&l);
    let mut b = MsgServ::connect(&l);
    a.info("10.0.0.1", 8001, 5, 10);
    assert_eq!(a.pick().port, Some(8001));
    b.info("10.0.0.2", 8002, 5, 10);
    // A tie goes to the earliest registered.
    let rsp = b.pick();
    assert_eq!(rsp.result_code, 0);
    assert_eq!(rsp.prior_ip.as_deref(), Some(b"10.0.0.1".as_slice()));
    assert_eq!(
        rsp.backip_ip.as_deref(),
        Some(b"10.0.0.1-netcom".as_slice())
    );
    assert_eq!(http_json(&l), ok_json("10.0.0.1", 8001));

    // B loses two users: B is the least loaded.
    b.cnt(2, 2);
    assert_eq!(b.pick().port, Some(8002));
    assert_eq!(http_json(&l), ok_json("10.0.0.2", 8002));
    let rsp = binary_request(&l, 9);
    assert_eq!(
        (rsp.result_code, rsp.prior_ip, rsp.backip_ip, rsp.port),
        (
            0,
            Some(b"10.0.0.2".to_vec()),
            Some(b"10.0.0.2-netcom".to_vec()),
            Some(8002)
        )
    );

    // A drops below zero: saturates at 0 (L3), so one login makes it 1, under B's 3.
    a.cnt(2, 8);
    a.cnt(1, 1);
    assert_eq!(a.pick().port, Some(8001));
    // An action that is neither 1 nor 2 changes nothing (the original decremented).
    b.cnt(0, 1);
    a.cnt(1, 2); // A at 3, B at 3: tie, A is earlier
    assert_eq!(a.pick().port, Some(8001));
    a.cnt(1, 1); // A at 4
    assert_eq!(a.pick().port, Some(8002));

    // A second MSG_SERV_INFO replaces the first (L2): A is now at 0 of 10.
    a.info("10.0.0.3", 8003, 0, 10);
    assert_eq!(a.pick().port, Some(8003));
    assert_eq!(http_json(&l), ok_json("10.0.0.3", 8003));

    // Everyone full: code 2.
    a.info("10.0.0.3", 8003, 4, 4);
    b.info("10.0.0.2", 8002, 9, 3);
    assert_eq!(b.pick().result_code, 2);
    assert_eq!(a.pick().result_code, 2);
    let body = http_msg_server(&l);
    assert_eq!(body.len(), 45);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), full_json());
    let rsp = binary_request(&l, 0xffff);
    assert_eq!((rsp.result_code, rsp.port), (2, None));

    // A gets room, then disconnects: its entry goes, all full again.
    a.cnt(2, 1);
    assert_eq!(a.pick().port, Some(8003));
    drop(a);
    assert!(
        l.daemon.wait_for_line("unregistered", IO_LIMIT),
        "A's close not logged"
    );
    assert_eq!(http_json(&l), full_json());
    drop(b);
    assert!(
        l.daemon.wait_for_line("unregistered", IO_LIMIT),
        "B's close not logged"
    );
    assert_eq!(binary_request(&l, 3).result_code, 1);
    assert_eq!(http_json(&l), no_server_json());
}

#[test]
fn http_limits_and_framing() {
    let l = start_login("login-http");
    let mut ms = MsgServ::connect(&l);
    ms.info("10.9.0.1", 8100, 0, 100);
    ms.pick();
    let ok = ok_json("10.9.0.1", 8100);

    // Over 1024 bytes: closed without a reply.
    let long = format!(
        "GET /msg_server HTTP/1.1\r\nX-Pad: {}\r\n\r\n",
        "a".repeat(1100)
    );
    assert_eq!(http_exchange(&l, &[long.as_bytes()]), b"");
    // Malformed: closed without a reply, at once (well before the 60 s idle timeout).
    assert_eq!(
        http_exchange(&l, &[b"\x16\x03\x01\x02\x00 hello\r\n\r\n"]),
        b""
    );
    assert_eq!(
        http_exchange(&l, &[b"GET /msg_server HTTP/1.1\r\nBad Header\r\n\r\n"]),
        b""
    );
    // Another path: closed without a reply.
    assert_eq!(http_exchange(&l, &[b"GET /other HTTP/1.1\r\n\r\n"]), b"");

    // A request in pieces, a POST with a body, HTTP/1.0, a query string: all answered.
    let reply = http_exchange(
        &l,
        &[b"GET /msg_ser", b"ver?x=1 HTTP/1.1\r\nHost: a\r\n", b"\r\n"],
    );
    assert_eq!(json_of(&reply), ok);
    let reply = http_exchange(
        &l,
        &[
            b"POST /msg_server HTTP/1.0\r\nContent-Length: 5\r\n\r\nab",
            b"cde",
        ],
    );
    assert_eq!(json_of(&reply), ok);
    // Only one request per connection: a second pipelined one gets nothing more.
    let reply = http_exchange(
        &l,
        &[b"GET /msg_server HTTP/1.1\r\n\r\nGET /msg_server HTTP/1.1\r\n\r\n"],
    );
    assert_eq!(json_of(&reply), ok);
}

fn json_of(reply: &[u8]) -> Value {
    let text = std::str::from_utf8(reply).unwrap();
    let (_, body) = text.split_once("\r\n\r\n").expect("a reply");
    serde_json::from_str(body).unwrap()
}

#[test]
fn binary_client_garbage_is_closed() {
    let l = start_login("login-garbage");
    // A length under 16.
    let mut c = pdu_connect(l.client_port);
    c.send_bytes(&[0, 0, 0, 3, 0, 1, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0]);
    assert_eq!(c.expect_closed(), vec![]);
    // Another command than the request.
    let mut c = pdu_connect(l.client_port);
    c.send_pdu(&Pdu::new(
        sid::SID_LOGIN,
        cid::CID_LOGIN_REQ_USERLOGIN,
        1,
        vec![],
    ));
    assert_eq!(c.expect_closed(), vec![]);
    // A msg_server link sending garbage is closed too; a malformed info is not registered.
    let mut ms = MsgServ::connect(&l);
    ms.c.send_pdu(&Pdu::new(
        sid::SID_OTHER,
        cid::CID_OTHER_MSG_SERV_INFO,
        0,
        vec![0x08],
    ));
    assert_eq!(ms.pick().result_code, 1);
    ms.c.send_bytes(&[0xff; 16]);
    assert_eq!(ms.c.expect_closed(), vec![]);
    // The server is still fine.
    assert_eq!(binary_request(&l, 1).result_code, 1);
}

#[test]
fn missing_conf_key_exits_with_1() {
    let dir = TempDir::new("login-conf");
    dir.write(
        "loginserver.conf",
        "ClientListenIP=127.0.0.1\nClientPort=1\nHttpListenIP=127.0.0.1\nHttpPort=2\n\
         MsgServerListenIP=127.0.0.1\nMsgServerPort=3\nmsfs=http://x/\n",
    );
    let mut d = Daemon::spawn("login_server", dir.path(), "loginserver.conf");
    assert_eq!(d.wait_exit(Duration::from_secs(30)), Some(1));
    assert!(d.recent_log().contains("discovery"), "{}", d.recent_log());
}

#[test]
fn msg_server_link_gets_heartbeats() {
    let l = start_login("login-heartbeat");
    let mut ms = MsgServ::connect(&l);
    ms.info("10.8.0.1", 8000, 0, 10);
    assert_eq!(ms.pick().result_code, 0);
    // Nothing sent to the link for over 5 s: a heartbeat (hang guard IO_LIMIT).
    ms.c.skip_heartbeats(false);
    let p = ms.c.recv_pdu();
    assert_eq!(p.header.command_id, cid::CID_OTHER_HEARTBEAT);
    assert_eq!(p.header.length, 16);
    ms.c.skip_heartbeats(true);
    // And the link is still registered.
    assert_eq!(ms.pick().port, Some(8000));
}

#[test]
fn version_flag() {
    let out = std::process::Command::new(tt_testkit::bin_path("login_server"))
        .arg("-v")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("Server Version: LoginServer/"));
}
