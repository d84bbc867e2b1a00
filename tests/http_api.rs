//! http_msg_server end to end: the process spawned with a conf of the test's, spoken to over
//! raw TCP so that status lines, header fields and bodies are checked byte for byte.
//!
//! - against a real stack (db_proxy_server, route_server, login_server, two msg_servers,
//!   MariaDB, Redis): groups created, read back and changed, the change seen by members on
//!   both msg_servers and in MySQL, a user read back, refusals from db_proxy, db_proxy gone;
//! - against a db_proxy and a route_server played by the test (`PduListener`): what is sent
//!   to them, answers that never come (504), a lost link (502), a change answered after the
//!   HTTP client left (the notify still goes to route_server), the pending bound (503);
//! - refusals of bad input, a 100 000-deep JSON body and a 10 MiB body with the daemon's
//!   memory flat, the `AppKey` check, keep-alive.
//!
//! Users: `tt_testkit::users::HTTP_API`.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mysql::prelude::Queryable;
use tt_client::{ClientType, GroupModifyType};
use tt_proto::attach::{DbAttachData, http::ATTACH_TYPE_HANDLE};
use tt_proto::pb::base_define::{GroupInfo, UserInfo};
use tt_proto::pb::buddy::{ImUsersInfoReq, ImUsersInfoRsp};
use tt_proto::pb::group::{
    ImGroupChangeMemberNotify, ImGroupChangeMemberReq, ImGroupChangeMemberRsp, ImGroupCreateReq,
    ImGroupCreateRsp, ImGroupInfoListReq, ImGroupInfoListRsp,
};
use tt_proto::pb::server::ImRoleSet;
use tt_testkit::stack::LIMIT;
use tt_testkit::users::HTTP_API;
use tt_testkit::{Daemon, PduClient, PduListener, Stack, TempDir, free_port};

mod live_client;
use live_client::{WAIT, login_at, next_group_change};

const ERR1: &str = "{\n   \"error_code\" : 1,\n   \"error_msg\" : \"参数错误\"\n}\n";
const ERR5: &str = "{\n   \"error_code\" : 5,\n   \"error_msg\" : \"未授权的接口\"\n}\n";
const ERR10: &str = "{\n   \"error_code\" : 10,\n   \"error_msg\" : \"服务器异常\"\n}\n";
const ERR12: &str = "{\n   \"error_code\" : 12,\n   \"error_msg\" : \"更改群成员失败\"\n}\n";
const OK: &str = "{\n   \"error_code\" : 0,\n   \"error_msg\" : \"成功\"\n}\n";

/// The create answer with its group id.
fn created(code: u32, group_id: u32) -> String {
    let msg = if code == 0 {
        "成功"
    } else {
        "创建群失败"
    };
    format!(
        "{{\n   \"error_code\" : {code},\n   \"error_msg\" : \"{msg}\",\n   \"group_id\" : {group_id}\n}}\n"
    )
}

/// The whole answer http_msg_server writes: `status` ("200 OK"), the connection kept or
/// not, the body; `more` are header lines after the content type (each ending in `\r\n`).
fn answer(status: &str, keep: bool, body: &str, more: &str) -> String {
    let connection = if keep { "keep-alive" } else { "close" };
    format!(
        "HTTP/1.1 {status}\r\nConnection:{connection}\r\nContent-Length:{}\r\n\
         Cache-Control:no-cache\r\nContent-Type:text/html;charset=utf-8\r\n{more}\r\n{body}",
        body.len()
    )
}

/// A raw HTTP/1.1 client.
struct Http {
    stream: TcpStream,
    /// Bytes read past the last answer.
    buf: Vec<u8>,
}

impl Http {
    fn connect(port: u16) -> Http {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to http_msg_server");
        // A hang guard, never a timing check.
        stream.set_read_timeout(Some(WAIT)).unwrap();
        Http {
            stream,
            buf: Vec::new(),
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("sending a request");
    }

    /// A request with a body and `Connection: close`, or else `Connection: keep-alive`.
    fn request(&mut self, method: &str, target: &str, body: &str, close: bool) {
        let connection = if close {
            "Connection: close\r\n"
        } else {
            "Connection: keep-alive\r\n"
        };
        let head = format!(
            "{method} {target} HTTP/1.1\r\nHost: t\r\n{connection}Content-Length: {}\r\n\r\n",
            body.len()
        );
        self.send(&[head.as_bytes(), body.as_bytes()].concat());
    }

    fn post(&mut self, target: &str, body: &str) -> String {
        self.request("POST", target, body, false);
        self.answer()
    }

    fn get(&mut self, target: &str) -> String {
        self.request("GET", target, "", false);
        self.answer()
    }

    /// More bytes into `buf`; false at the end of the stream.
    fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 8192];
        match self.stream.read(&mut chunk) {
            Ok(0) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
            Err(e) if e.kind() == ErrorKind::ConnectionReset => false,
            Err(e) => panic!("reading an answer: {e}"),
        }
    }

    /// The next whole answer (head and `Content-Length` body) as text.
    fn answer(&mut self) -> String {
        let head_end = loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            assert!(self.fill(), "closed before an answer: {:?}", self.text());
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end]).into_owned();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length:"))
            .expect("a Content-Length field")
            .trim()
            .parse()
            .unwrap();
        while self.buf.len() < head_end + len {
            assert!(self.fill(), "closed within an answer: {:?}", self.text());
        }
        let rest = self.buf.split_off(head_end + len);
        let whole = std::mem::replace(&mut self.buf, rest);
        String::from_utf8(whole).expect("UTF-8 answer")
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.buf).into_owned()
    }

    /// True once the server has closed the connection (nothing more arrives).
    fn closed(&mut self) -> bool {
        while self.fill() {}
        self.buf.is_empty()
    }
}

/// An http_msg_server in a directory of `dir` with `conf` (whose first lines win), listening
/// on a free port; waits for `lines` in its log (its links).
fn start(dir: &Path, conf: &str, lines: &[&str]) -> (Daemon, u16) {
    let port = free_port();
    let home = dir.join(format!("http{port}"));
    std::fs::create_dir_all(&home).unwrap();
    let text = format!("{conf}ListenIP=127.0.0.1\nListenPort={port}\nConcurrentDBConnCnt=1\n");
    std::fs::write(home.join("httpmsgserver.conf"), text).unwrap();
    let mut d = Daemon::spawn("http_msg_server", &home, "httpmsgserver.conf");
    d.wait_ready(LIMIT);
    let missing = d.wait_for_lines(lines, LIMIT);
    assert!(missing.is_empty(), "{missing:?}: {}", d.recent_log());
    (d, port)
}

fn links_conf(db: u16, route: u16) -> String {
    format!(
        "DBServerIP1=127.0.0.1\nDBServerPort1={db}\nDBServerIP2=127.0.0.1\nDBServerPort2={db}\n\
         RouteServerIP1=127.0.0.1\nRouteServerPort1={route}\n"
    )
}

const LINKS_UP: [&str; 2] = ["connected to db_proxy_server", "master route_server link"];

/// The daemon's resident memory in KiB.
fn rss_kib(d: &Daemon) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", d.pid().unwrap())).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

fn fresh_name(tag: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{tag}-{}-{nanos}", std::process::id())
}

/// The group id of a create answer.
fn group_id_of(answer: &str) -> u32 {
    let (_, tail) = answer.split_once("\"group_id\" : ").expect("a group id");
    tail.split('\n').next().unwrap().parse().unwrap()
}

fn db_members(group: u32) -> Vec<u32> {
    let mut db = tt_testkit::mysql_conn();
    db.exec(
        "SELECT userId FROM IMGroupMember WHERE groupId=? AND status=0 ORDER BY userId",
        (group,),
    )
    .expect("members query")
}

#[test]
fn groups_created_changed_and_read_back_through_a_real_stack() {
    let mut stack = Stack::builder("http-api").msg_servers(2).start();
    let conf = links_conf(stack.ports.db_proxy, stack.ports.route);
    let (_http, port) = start(stack.dir.path(), &conf, &LINKS_UP);
    let [creator, m1, m2, newcomer, other] = std::array::from_fn(|i| HTTP_API.id(i as u32));
    let mut on0 = login_at(&stack, 0, creator, ClientType::Windows);
    let mut on1 = login_at(&stack, 1, m1, ClientType::Mac);
    let mut m2_on0 = login_at(&stack, 0, m2, ClientType::Windows);
    let mut new_on1 = login_at(&stack, 1, newcomer, ClientType::Android);

    // Create a normal group by `creator`; two requests on one kept connection.
    let mut h = Http::connect(port);
    let name = fresh_name("http");
    let body = format!(
        "{{\"app_key\": \"any\", \"req_user_id\": {creator}, \"group_name\": \"{name}\", \
         \"group_type\": 1, \"group_avatar\": \"http://a/b.png\", \
         \"user_id_list\": [{m2}, {creator}, {m1}, {m1}]}}"
    );
    let reply = h.post("/query/CreateGroup", &body);
    let g = group_id_of(&reply);
    assert_eq!(reply, answer("200 OK", true, &created(0, g), ""));
    let info = h.get(&format!("/query/GroupInfo?group_id={g}"));
    let members = [creator, m1, m2];
    let expected = format!(
        "{{\n   \"creator_id\" : {creator},\n   \"error_code\" : 0,\n   \"error_msg\" : \"成功\",\n   \
         \"group_avatar\" : \"http://a/b.png\",\n   \"group_id\" : {g},\n   \"group_name\" : \
         \"{name}\",\n   \"group_type\" : 1,\n   \"user_id_list\" : [ {}, {}, {} ],\n   \
         \"version\" : 1\n}}\n",
        members[0], members[1], members[2]
    );
    assert_eq!(info, answer("200 OK", true, &expected, ""));
    assert_eq!(db_members(g), members);

    // Add a member: every member, old and new, on both msg_servers hears of it.
    let add = format!(
        "{{\"req_user_id\": {creator}, \"group_id\": {g}, \"modify_type\": 1, \
         \"user_id_list\": [{newcomer}]}}"
    );
    assert_eq!(
        h.post("/query/ChangeMembers", &add),
        answer("200 OK", true, OK, "")
    );
    let after_add = vec![creator, m1, m2, newcomer];
    let add_type = GroupModifyType::Add as i32;
    for c in [&mut on0, &mut on1, &mut m2_on0, &mut new_on1] {
        let change = next_group_change(c, g);
        assert_eq!(
            change,
            (creator, add_type, after_add.clone(), vec![newcomer])
        );
    }
    assert_eq!(db_members(g), after_add);

    // Remove one, by the server itself (req_user_id 0): the removed member is told too.
    let del = format!(
        "{{\"req_user_id\": 0, \"group_id\": {g}, \"modify_type\": 2, \"user_id_list\": [{m2}]}}"
    );
    assert_eq!(
        h.post("/query/ChangeMembers", &del),
        answer("200 OK", true, OK, "")
    );
    let after_del = vec![creator, m1, newcomer];
    let del_type = GroupModifyType::Del as i32;
    for c in [&mut on0, &mut on1, &mut m2_on0, &mut new_on1] {
        let change = next_group_change(c, g);
        assert_eq!(change, (0, del_type, after_del.clone(), vec![m2]));
    }
    assert_eq!(db_members(g), after_del);
    let info = h.get(&format!("/query/GroupInfo?group_id={g}"));
    assert!(
        info.contains(&format!(
            "\"user_id_list\" : [ {creator}, {m1}, {newcomer} ]"
        )),
        "{info}"
    );
    assert!(info.contains("\"version\" : 3"), "{info}");

    // req_user_id is the caller: a member who did not create a normal group may not change it.
    let by_member = format!(
        "{{\"req_user_id\": {m1}, \"group_id\": {g}, \"modify_type\": 1, \
         \"user_id_list\": [{other}]}}"
    );
    let reply = h.post("/query/ChangeMembers", &by_member);
    assert_eq!(reply, answer("200 OK", true, ERR12, ""));
    assert_eq!(db_members(g), after_del);

    // An unknown group, an unknown user.
    let nowhere = format!(
        "{{\"req_user_id\": 0, \"group_id\": 4000000000, \"modify_type\": 1, \
         \"user_id_list\": [{other}]}}"
    );
    let reply = h.post("/query/ChangeMembers", &nowhere);
    assert_eq!(reply, answer("404 Not Found", true, ERR12, ""));
    let reply = h.get("/query/GroupInfo?group_id=4000000000");
    assert_eq!(reply, answer("404 Not Found", true, ERR1, ""));
    let reply = h.get("/query/UserInfo?user_id=4000000000");
    assert_eq!(reply, answer("404 Not Found", true, ERR1, ""));

    // A user as db_proxy has it.
    let mut db = tt_testkit::mysql_conn();
    let row: (String, String, String, u32, u32) = db
        .exec_first(
            "SELECT name, domain, nick, departId, sex FROM IMUser WHERE id=?",
            (creator,),
        )
        .unwrap()
        .expect("seeded user");
    let user = h.get(&format!("/query/UserInfo?user_id={creator}"));
    for member in [
        format!("\"user_id\" : {creator}"),
        format!("\"user_name\" : \"{}\"", row.0),
        format!("\"domain\" : \"{}\"", row.1),
        format!("\"nick_name\" : \"{}\"", row.2),
        format!("\"department_id\" : {}", row.3),
        format!("\"gender\" : {}", row.4),
    ] {
        let found = user
            .lines()
            .any(|l| l.trim().trim_end_matches(',') == member);
        assert!(found, "{member} in {user}");
    }
    assert!(user.starts_with("HTTP/1.1 200 OK\r\n"), "{user}");

    // db_proxy refuses an empty group: error 11, and the connection closes as asked.
    let empty = format!(
        "{{\"req_user_id\": {creator}, \"group_name\": \"{name}\", \"group_type\": 2, \
         \"group_avatar\": \"\", \"user_id_list\": []}}"
    );
    h.request("POST", "/query/CreateGroup", &empty, true);
    assert_eq!(h.answer(), answer("200 OK", false, &created(11, 0), ""));
    assert!(h.closed());

    // db_proxy gone: error 10 at once.
    Stack::kill(&mut stack.db_proxy);
    let mut h = Http::connect(port);
    // The links notice the kill on their own (a request on a link that dies meanwhile gets
    // 502): poll (bounded) until there is no link to send on.
    let no_link = answer("200 OK", true, ERR10, "");
    let target = format!("/query/GroupInfo?group_id={g}");
    let mut reply = h.get(&target);
    for _ in 0..200 {
        if reply == no_link {
            break;
        }
        assert!(reply.starts_with("HTTP/1.1 502 Bad Gateway\r\n"), "{reply}");
        std::thread::sleep(Duration::from_millis(50));
        reply = h.get(&target);
    }
    assert_eq!(reply, no_link);
    let reply = h.post("/query/ChangeMembers", &add);
    assert_eq!(reply, answer("200 OK", true, ERR10, ""));
}

/// A db_proxy (two links: the general pool is the second) and a route_server played by the
/// test.
struct Fakes {
    db_login: PduListener,
    db_general: PduListener,
    route: PduListener,
}

impl Fakes {
    fn new() -> Fakes {
        Fakes {
            db_login: PduListener::bind(),
            db_general: PduListener::bind(),
            route: PduListener::bind(),
        }
    }

    fn conf(&self) -> String {
        format!(
            "DBServerIP1=127.0.0.1\nDBServerPort1={}\nDBServerIP2=127.0.0.1\nDBServerPort2={}\n\
             RouteServerIP1=127.0.0.1\nRouteServerPort1={}\n",
            self.db_login.port(),
            self.db_general.port(),
            self.route.port()
        )
    }

    /// An http_msg_server with `extra` conf lines, its general db link and its route link up.
    fn start(&self, dir: &Path, extra: &str) -> (Daemon, u16) {
        let general = format!(
            "connected to db_proxy_server 127.0.0.1:{}",
            self.db_general.port()
        );
        let conf = format!("{extra}{}", self.conf());
        start(dir, &conf, &[&general, "master route_server link"])
    }

    /// The daemon's links: (login-pool db link, general db link, route link, told master).
    fn accept(&self) -> (PduClient, PduClient, PduClient) {
        let login = self.db_login.accept().skipping_heartbeats();
        let general = self.db_general.accept().skipping_heartbeats();
        let mut route = self.route.accept().skipping_heartbeats();
        let (_, role) = route.expect::<ImRoleSet>();
        assert_eq!(role.master, 1);
        (login, general, route)
    }
}

fn handle_of(attach: Option<&[u8]>) -> DbAttachData {
    let a = DbAttachData::decode(attach.expect("attach data")).unwrap();
    assert_eq!(attach.unwrap().len(), 12, "a short attach");
    assert_eq!(a.attach_type, ATTACH_TYPE_HANDLE);
    a
}

#[test]
fn requests_to_db_proxy_and_route_server_and_their_answers() {
    let fakes = Fakes::new();
    let dir = TempDir::new("http-api-fakes");
    let (mut d, port) = fakes.start(dir.path(), "RequestTimeoutMs=1000\n");
    let (_login, mut db, mut route) = fakes.accept();

    // A request db_proxy never answers: 504 after the timeout, the connection kept; the next
    // request on it is answered.
    let mut h = Http::connect(port);
    h.request("GET", "/query/GroupInfo?group_id=5", "", false);
    let (_, q) = db.recv::<ImGroupInfoListReq>();
    assert_eq!(q.user_id, 0);
    assert_eq!(
        (
            q.group_version_list[0].group_id,
            q.group_version_list[0].version
        ),
        (5, 0)
    );
    handle_of(q.attach_data.as_deref());
    assert_eq!(h.answer(), answer("504 Gateway Timeout", true, ERR10, ""));
    h.request("GET", "/query/UserInfo?user_id=77", "", false);
    let (header, q) = db.recv::<ImUsersInfoReq>();
    assert_eq!(q.user_id_list, [77]);
    let user = UserInfo {
        user_id: 77,
        user_gender: 2,
        user_nick_name: "小\"七\"".into(),
        avatar_url: "a".into(),
        department_id: 3,
        email: "e@x".into(),
        user_real_name: "user77".into(),
        user_tel: "1".into(),
        user_domain: "u77".into(),
        status: 1,
        sign_info: Some("hi\n".into()),
    };
    db.reply(
        &header,
        &ImUsersInfoRsp {
            user_id: 0,
            user_info_list: vec![user],
            attach_data: q.attach_data,
        },
    );
    let expected = "{\n   \"avatar_url\" : \"a\",\n   \"department_id\" : 3,\n   \"domain\" : \
                    \"u77\",\n   \"email\" : \"e@x\",\n   \"error_code\" : 0,\n   \"error_msg\" : \
                    \"成功\",\n   \"gender\" : 2,\n   \"nick_name\" : \"小\\\"七\\\"\",\n   \
                    \"sign_info\" : \"hi\\n\",\n   \"status\" : 1,\n   \"tel\" : \"1\",\n   \
                    \"user_id\" : 77,\n   \"user_name\" : \"user77\"\n}\n";
    assert_eq!(h.answer(), answer("200 OK", true, expected, ""));

    // CreateGroup: what db_proxy gets (req_user_id as the creator), its refusal as error 11.
    h.request(
        "POST",
        "/query/CreateGroup",
        "{\"req_user_id\": 9, \"group_name\": 12, \"group_type\": 2, \"group_avatar\": \"v\", \
         \"user_id_list\": [3, true, 2.5]}",
        true,
    );
    let (header, q) = db.recv::<ImGroupCreateReq>();
    assert_eq!(q.user_id, 9);
    assert_eq!(q.group_type, 2);
    assert_eq!(
        (q.group_name.as_slice(), q.group_avatar.as_slice()),
        (&b"12"[..], &b"v"[..])
    );
    assert_eq!(q.member_id_list, [3, 1, 2], "jsoncpp's conversions");
    db.reply(
        &header,
        &ImGroupCreateRsp {
            user_id: 9,
            result_code: 1,
            group_id: None,
            group_name: q.group_name,
            user_id_list: vec![],
            attach_data: q.attach_data,
        },
    );
    assert_eq!(h.answer(), answer("200 OK", false, &created(11, 0), ""));
    assert!(h.closed());

    // ChangeMembers: the group is asked for first, then the change (by req_user_id) is sent;
    // the client leaves before the answer, and route_server still gets the notify.
    let mut h = Http::connect(port);
    h.request(
        "POST",
        "/query/ChangeMembers",
        "{\"req_user_id\": 4, \"group_id\": 70, \"modify_type\": 2, \"user_id_list\": [8]}",
        false,
    );
    let (header, q) = db.recv::<ImGroupInfoListReq>();
    assert_eq!((q.user_id, q.group_version_list[0].group_id), (4, 70));
    let group = GroupInfo {
        group_id: 70,
        version: 2,
        group_name: "g".into(),
        group_avatar: vec![],
        group_creator_id: 4,
        group_type: 1,
        shield_status: 0,
        group_member_list: vec![4, 8],
    };
    db.reply(
        &header,
        &ImGroupInfoListRsp {
            user_id: 4,
            group_info_list: vec![group],
            attach_data: q.attach_data,
        },
    );
    let (header, q) = db.recv::<ImGroupChangeMemberReq>();
    assert_eq!((q.user_id, q.change_type, q.group_id), (4, 2, 70));
    assert_eq!(q.member_id_list, [8]);
    drop(h);
    assert!(
        d.wait_for_line("closed while request", LIMIT),
        "{}",
        d.recent_log()
    );
    db.reply(
        &header,
        &ImGroupChangeMemberRsp {
            user_id: 4,
            change_type: 2,
            result_code: 0,
            group_id: 70,
            cur_user_id_list: vec![4],
            chg_user_id_list: vec![8],
            attach_data: q.attach_data,
        },
    );
    let (_, n) = route.recv::<ImGroupChangeMemberNotify>();
    assert_eq!((n.user_id, n.change_type, n.group_id), (4, 2, 70));
    assert_eq!((n.cur_user_id_list, n.chg_user_id_list), (vec![4], vec![8]));

    // The db_proxy link is lost while a request waits: 502.
    let mut h = Http::connect(port);
    h.request("GET", "/query/GroupInfo?group_id=6", "", false);
    db.recv::<ImGroupInfoListReq>();
    drop(db);
    assert_eq!(h.answer(), answer("502 Bad Gateway", true, ERR10, ""));
}

#[test]
fn pending_requests_are_bounded() {
    let fakes = Fakes::new();
    let dir = TempDir::new("http-api-bound");
    let (_d, port) = fakes.start(dir.path(), "MaxPendingRequests=1\n");
    let (_login, mut db, _route) = fakes.accept();
    let mut first = Http::connect(port);
    first.request("GET", "/query/UserInfo?user_id=1", "", false);
    db.recv::<ImUsersInfoReq>();
    let mut second = Http::connect(port);
    let reply = second.get("/query/UserInfo?user_id=2");
    assert_eq!(reply, answer("503 Service Unavailable", true, ERR10, ""));
}

#[test]
fn bad_requests_are_refused_with_the_daemon_memory_flat() {
    let fakes = Fakes::new();
    let dir = TempDir::new("http-api-bad");
    let (d, port) = fakes.start(dir.path(), "MaxBodySize=1048576\n");
    let (_login, mut db, _route) = fakes.accept();
    let mut h = Http::connect(port);

    // Routes and methods.
    assert_eq!(
        h.get("/query/Nothing"),
        answer("404 Not Found", true, ERR1, "")
    );
    assert_eq!(h.get("/"), answer("404 Not Found", true, ERR1, ""));
    let reply = h.get("/query/CreateGroup");
    assert_eq!(
        reply,
        answer("405 Method Not Allowed", true, ERR1, "Allow:POST\r\n")
    );
    let reply = h.post("/query/GroupInfo?group_id=1", "{}");
    assert_eq!(
        reply,
        answer("405 Method Not Allowed", true, ERR1, "Allow:GET\r\n")
    );

    // Bodies that are not JSON, the authentication step's types.
    for body in ["", "{", "{\"a\": 1,}", "{'a': 1}", "{} x", "// c\n{}"] {
        let reply = h.post("/query/CreateGroup", body);
        assert_eq!(reply, answer("400 Bad Request", true, ERR1, ""), "{body:?}");
    }
    for body in [
        "[]",
        "7",
        "\"s\"",
        "{\"app_key\": {}}",
        "{\"req_user_id\": \"1\"}",
        "{\"req_user_id\": -1}",
        "{\"req_user_id\": 4294967296}",
    ] {
        let reply = h.post("/query/ChangeMembers", body);
        assert_eq!(reply, answer("403 Forbidden", true, ERR5, ""), "{body:?}");
    }

    // Fields: missing, null, of the wrong type, out of range; each is error 1.
    let create = serde_like(&[
        ("req_user_id", "1"),
        ("group_name", "\"n\""),
        ("group_type", "1"),
        ("group_avatar", "\"\""),
        ("user_id_list", "[2]"),
    ]);
    let change = serde_like(&[
        ("req_user_id", "1"),
        ("group_id", "2"),
        ("modify_type", "1"),
        ("user_id_list", "[2]"),
    ]);
    let mut bad = Vec::new();
    for (path, fields) in [
        ("/query/CreateGroup", &create),
        ("/query/ChangeMembers", &change),
    ] {
        for (key, _) in fields {
            bad.push((path, without(fields, key, None)));
            bad.push((path, without(fields, key, Some("null"))));
        }
    }
    let ids: Vec<String> = (1..=1001).map(|i| i.to_string()).collect();
    let too_many = format!("[{}]", ids.join(","));
    for (key, value) in [
        ("group_type", "3"),
        ("group_type", "0"),
        ("group_type", "\"1\""),
        ("group_name", "[]"),
        ("group_avatar", "{}"),
        ("user_id_list", "[1, \"2\"]"),
        ("user_id_list", "{\"a\": 1}"),
        ("user_id_list", too_many.as_str()),
    ] {
        bad.push(("/query/CreateGroup", without(&create, key, Some(value))));
    }
    for (key, value) in [
        ("modify_type", "3"),
        ("modify_type", "-1"),
        ("group_id", "\"2\""),
        ("group_id", "4294967296"),
        ("user_id_list", "[-1]"),
    ] {
        bad.push(("/query/ChangeMembers", without(&change, key, Some(value))));
    }
    for (path, body) in &bad {
        assert_eq!(
            h.post(path, body),
            answer("200 OK", true, ERR1, ""),
            "{path} {body}"
        );
    }
    for target in [
        "/query/GroupInfo",
        "/query/GroupInfo?group_id=",
        "/query/GroupInfo?group_id=x",
        "/query/GroupInfo?group_id=-3",
        "/query/UserInfo?id=3",
        "/query/UserInfo?user_id=99999999999",
    ] {
        assert_eq!(
            h.get(target),
            answer("400 Bad Request", true, ERR1, ""),
            "{target}"
        );
    }

    let before = rss_kib(&d);
    // 100 000 levels of nesting: refused by the parser's depth limit, not by the stack.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let reply = h.post("/query/CreateGroup", &deep);
    assert_eq!(reply, answer("400 Bad Request", true, ERR1, ""));
    let deep = format!("{}1{}", "{\"a\":".repeat(100_000), "}".repeat(100_000));
    let reply = h.post("/query/ChangeMembers", &deep);
    assert_eq!(reply, answer("400 Bad Request", true, ERR1, ""));

    // 10 MiB announced: refused from the head, before the body is read; then sent anyway.
    let ten = 10 * 1024 * 1024;
    let mut big = Http::connect(port);
    big.send(
        format!("POST /query/CreateGroup HTTP/1.1\r\nContent-Length: {ten}\r\n\r\n").as_bytes(),
    );
    assert_eq!(
        big.answer(),
        answer("413 Payload Too Large", false, ERR1, "")
    );
    let junk = vec![b'x'; 64 * 1024];
    for _ in 0..ten / junk.len() {
        if big.stream.write_all(&junk).is_err() {
            break;
        }
    }
    assert!(big.closed());
    // Chunked: refused at the first chunk over the bound.
    let mut chunked = Http::connect(port);
    chunked
        .send(b"POST /query/CreateGroup HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nA00000\r\n");
    assert_eq!(
        chunked.answer(),
        answer("413 Payload Too Large", false, ERR1, "")
    );
    assert!(chunked.closed());
    let after = rss_kib(&d);
    assert!(
        after < before + 4 * 1024,
        "resident memory grew from {before} KiB to {after} KiB"
    );

    // Still serving, on the first connection, kept all along.
    h.request("GET", "/query/UserInfo?user_id=5", "", false);
    let (_, q) = db.recv::<ImUsersInfoReq>();
    assert_eq!(q.user_id_list, [5]);
}

/// A JSON object of raw member texts.
fn serde_like(fields: &[(&'static str, &'static str)]) -> Vec<(&'static str, String)> {
    fields.iter().map(|(k, v)| (*k, v.to_string())).collect()
}

/// The object of `fields` with `key` left out (`None`) or given `value`.
fn without(fields: &[(&'static str, String)], key: &str, value: Option<&str>) -> String {
    let members: Vec<String> = fields
        .iter()
        .filter_map(|(k, v)| match (*k == key, value) {
            (false, _) => Some(format!("\"{k}\": {v}")),
            (true, Some(value)) => Some(format!("\"{k}\": {value}")),
            (true, None) => None,
        })
        .collect();
    format!("{{{}}}", members.join(", "))
}

#[test]
fn app_key_and_no_db_proxy() {
    let dir = TempDir::new("http-api-key");
    // No db_proxy configured: every request that passes the checks before gets error 10.
    let (_d, port) = start(dir.path(), "AppKey=s3cret\n", &[]);
    let mut h = Http::connect(port);
    let change = "{\"app_key\": \"s3cret\", \"req_user_id\": 1, \"group_id\": 2, \
                  \"modify_type\": 1, \"user_id_list\": [3]}";
    assert_eq!(
        h.post("/query/ChangeMembers", change),
        answer("200 OK", true, ERR10, "")
    );
    for body in [
        change.replace("s3cret", "wrong"),
        change.replace("\"app_key\": \"s3cret\", ", ""),
    ] {
        let reply = h.post("/query/ChangeMembers", &body);
        assert_eq!(reply, answer("403 Forbidden", true, ERR5, ""), "{body}");
    }
    let reply = h.get("/query/GroupInfo?group_id=2&app_key=s3cre");
    assert_eq!(reply, answer("403 Forbidden", true, ERR5, ""));
    let reply = h.get("/query/GroupInfo?app_key=s3cret&group_id=2");
    assert_eq!(reply, answer("200 OK", true, ERR10, ""));
    // HTTP/1.0 without keep-alive: answered, then closed.
    h.send(b"GET /query/UserInfo?user_id=1&app_key=s3cret HTTP/1.0\r\n\r\n");
    assert_eq!(h.answer(), answer("200 OK", false, ERR10, ""));
    assert!(h.closed());
    // HTTP/1.1 that does not ask for keep-alive: answered, then closed, as the original closes
    // every connection (a client may read the answer up to the end of the connection).
    let mut h = Http::connect(port);
    h.send(b"GET /query/UserInfo?user_id=1&app_key=s3cret HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(h.answer(), answer("200 OK", false, ERR10, ""));
    assert!(h.closed());
}
