//! Slow and hostile peers against real daemons (issue 8 §3): a receiver that stops reading, a
//! client opening connections without logging in, a slowloris on login_server's HTTP port
//! (the only HTTP port built), and hostile strings in every text field a client can store.
//! Users: `tt_testkit::users::HOSTILE`.

mod live_client;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use live_client::{WAIT, fresh, login_at, raw_login};
use tt_client::tt_proto::pb::base_define::{GroupType, OfflineFileInfo};
use tt_client::tt_proto::pb::buddy::{
    ImChangeAvatarReq, ImChangeAvatarRsp, ImChangeSignInfoReq, ImChangeSignInfoRsp,
};
use tt_client::tt_proto::pb::file::{
    ImFileAddOfflineReq, ImFileDelOfflineReq, ImFileHasOfflineReq, ImFileHasOfflineRsp,
};
use tt_client::tt_proto::pb::group::{ImGroupCreateReq, ImGroupCreateRsp};
use tt_client::tt_proto::pb::login::{ImLoginReq, ImLoginRes};
use tt_client::tt_proto::pb::message::{ImUnreadMsgCntReq, ImUnreadMsgCntRsp};
use tt_client::tt_proto::pb::other::ImHeartBeat;
use tt_client::{Client, ClientType, Event, MsgType, Session, SessionType, UserStatType};
use tt_testkit::stack::LIMIT;
use tt_testkit::users::{HOSTILE, PASSWORD_MD5};
use tt_testkit::{Daemon, PduClient, Stack, TempDir, free_port};

// ---- a receiver that never reads -------------------------------------------------------------

const SENDER: u32 = HOSTILE.id(0);
const STUCK: u32 = HOSTILE.id(1);
const OBSERVER: u32 = HOSTILE.id(2);

/// Hang guard of the flood: a stuck receiver is closed long before (about 1 MiB of messages
/// with a 64 KiB output bound), so reaching it means the bound never closed it.
const MAX_FLOOD: usize = 10_000;

/// A text of about 3 KB (the content column holds 4096 characters), numbered.
fn flood_text(i: usize) -> Vec<u8> {
    let mut text = format!("flood {i:06} ").into_bytes();
    text.resize(3000, b'x');
    text
}

/// The unread count of `from`'s messages for the user of `c`, asked on the raw connection.
fn unread_from(c: &mut PduClient, from: u32) -> u32 {
    let seq = c.send(&ImUnreadMsgCntReq {
        user_id: 0,
        attach_data: None,
    });
    let (header, rsp) = c.recv::<ImUnreadMsgCntRsp>();
    assert_eq!(header.seq_num, seq);
    rsp.unreadinfo_list
        .iter()
        .find(|u| u.session_id == from)
        .map_or(0, |u| u.unread_cnt)
}

#[test]
fn a_receiver_that_never_reads_is_closed_and_its_messages_wait_as_unread() {
    let mut stack = Stack::builder("hostile-stuck")
        .msg_conf_extra("MsgRateLimit=0\nMaxOutputBuffer=65536\n")
        .start();
    let mut observer = login_at(&stack, 0, OBSERVER, ClientType::Windows);
    let mut sender = login_at(&stack, 0, SENDER, ClientType::Windows);
    let mut stuck = raw_login(&stack, 0, STUCK, ClientType::Windows);
    let unread_before = unread_from(&mut stuck, SENDER);
    // From here on `stuck` is never read again; it stays open until the end of the test.

    let stop = Arc::new(AtomicBool::new(false));
    let flood = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut acked = Vec::new();
            while !stop.load(Ordering::SeqCst) && acked.len() < MAX_FLOOD {
                let i = acked.len();
                let ack = sender
                    .send_msg(STUCK, MsgType::SingleText, flood_text(i))
                    .unwrap_or_else(|e| panic!("message {i} to the stuck user: {e}"));
                assert_ne!(ack.msg_id, 0);
                acked.push(ack.msg_id);
            }
            (sender, acked)
        })
    };
    let started = Instant::now();
    let offline = observer
        .wait_for(LIMIT, |e| {
            matches!(e, Event::UserStatus { user_id, status }
                if *user_id == STUCK && *status == UserStatType::UserStatusOffline as i32)
        })
        .expect("observer connection");
    stop.store(true, Ordering::SeqCst);
    let (mut sender, mut acked) = flood.join().expect("the flood thread");
    assert!(
        offline.is_some(),
        "the stuck user never went offline after {} messages",
        acked.len()
    );
    eprintln!(
        "the stuck receiver was closed after {:?}, {} messages of ~3 KB acked",
        started.elapsed(),
        acked.len()
    );
    assert!(
        stack
            .msg_daemon(0)
            .wait_for_line("over the 65536 byte limit", LIMIT),
        "msg_server did not log the output bound"
    );

    // The sender keeps getting acks, and the other users are served.
    for i in 0..10 {
        let ack = sender
            .send_msg(STUCK, MsgType::SingleText, flood_text(acked.len() + i))
            .expect("an ack after the stuck receiver was closed");
        acked.push(ack.msg_id);
    }
    let hello = sender.send_text(OBSERVER, &fresh("still served")).unwrap();
    let got = observer
        .wait_for(
            WAIT,
            |e| matches!(e, Event::Message(m) if m.msg_id == hello.msg_id && m.from == SENDER),
        )
        .expect("observer connection");
    assert!(
        got.is_some(),
        "the observer did not get the sender's message"
    );

    // Every acked message waits as unread, the newest last.
    let mut back = login_at(&stack, 0, STUCK, ClientType::Windows);
    let unread = back.unread_counts().expect("unread counts");
    let session = unread
        .sessions
        .iter()
        .find(|s| s.session_id == SENDER)
        .expect("the sender's session is unread");
    assert_eq!(session.unread_cnt, unread_before + acked.len() as u32);
    assert_eq!(Some(&session.latest.msg_id), acked.last());
    let mut sorted = acked.clone();
    sorted.dedup();
    assert_eq!(sorted.len(), acked.len(), "acked ids repeat");
    drop(stuck);
}

// ---- connections that never log in -----------------------------------------------------------

/// Logs `user` in on an open raw connection.
fn login_on(c: &mut PduClient, user: u32) {
    c.send(&ImLoginReq {
        user_name: format!("user{user}").into_bytes(),
        password: PASSWORD_MD5.into(),
        online_status: UserStatType::UserStatusOnline as i32,
        client_type: ClientType::Windows as i32,
        client_version: None,
    });
    let (_, res) = c.recv::<ImLoginRes>();
    assert_eq!(res.result_code, 0, "user{user} logs in");
}

/// A connection that is open and served: its heartbeat is echoed (allowed before a login).
fn served(stack: &Stack) -> PduClient {
    let mut c = PduClient::connect_to(stack.msg_addr(0));
    c.set_hang_guard(WAIT);
    c.send(&ImHeartBeat {});
    c.recv::<ImHeartBeat>();
    c
}

/// A connection msg_server closes at once, without sending anything.
fn refused(stack: &Stack) {
    let mut c = PduClient::connect_to(stack.msg_addr(0));
    c.set_hang_guard(WAIT);
    let seen = c.expect_closed();
    assert!(seen.is_empty(), "a refused connection got {seen:?}");
}

#[test]
fn connections_not_logged_in_are_bounded_per_address_and_in_total() {
    let mut stack = Stack::builder("hostile-conns")
        .msg_conf_extra("MaxConnCnt=6\nMaxConnsPerIpBeforeLogin=3\n")
        .start();
    let _a = raw_login(&stack, 0, HOSTILE.id(3), ClientType::Windows);
    let _b = raw_login(&stack, 0, HOSTILE.id(4), ClientType::Windows);
    let mut waiting: Vec<PduClient> = (0..3).map(|_| served(&stack)).collect();
    refused(&stack);
    assert!(
        stack
            .msg_daemon(0)
            .wait_for_line("(MaxConnsPerIpBeforeLogin)", LIMIT),
        "no log line for the per-address bound"
    );

    // A login frees its address's slot; the total bound still counts it.
    login_on(&mut waiting[0], HOSTILE.id(5));
    waiting.push(served(&stack));
    login_on(&mut waiting[1], HOSTILE.id(6));
    refused(&stack);
    assert!(
        stack.msg_daemon(0).wait_for_line("(MaxConnCnt)", LIMIT),
        "no log line for MaxConnCnt"
    );

    // A burst of refusals: refused one by one, logged at most once a second.
    for _ in 0..50 {
        refused(&stack);
    }
    let msg = stack.msg_daemon(0);
    assert!(
        msg.wait_for_line("more client connections refused", LIMIT),
        "the refusals of a second were not summed up"
    );
    let lines = msg.recent_log().matches("refusing client").count();
    assert!(lines < 25, "{lines} refusals logged one by one");
    // The connections that were let in are still served.
    for c in &mut waiting {
        c.send(&ImHeartBeat {});
        c.recv::<ImHeartBeat>();
    }
}

// ---- slowloris on login_server's HTTP port --------------------------------------------------

/// login_server alone, `HttpTimeout` 2 s; returns it with its HTTP port.
fn login_server(dir: &TempDir) -> (Daemon, u16) {
    let http = free_port();
    dir.write(
        "loginserver.conf",
        &format!(
            "ClientListenIP=127.0.0.1\nClientPort={}\nHttpListenIP=127.0.0.1\nHttpPort={http}\n\
             MsgServerListenIP=127.0.0.1\nMsgServerPort={}\nmsfs=http://127.0.0.1:8700/\n\
             discovery=http://127.0.0.1/api/discovery\nHttpTimeout=2\n",
            free_port(),
            free_port()
        ),
    );
    let mut d = Daemon::spawn("login_server", dir.path(), "loginserver.conf");
    d.wait_ready(LIMIT);
    (d, http)
}

/// Reads until the server ends the connection; what it sent.
fn read_to_close(s: &mut TcpStream) -> Vec<u8> {
    s.set_read_timeout(Some(WAIT)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return got,
            Err(e) => panic!("waiting for login_server to close: {e} (got {got:?})"),
        }
    }
}

/// Sends one byte every 100 ms until login_server closes; the bytes it took.
fn trickle(port: u16) -> usize {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let head = b"GET /msg_server HTTP/1.1\r\n"
        .iter()
        .chain(b"X-Slow: ".iter());
    let filler = std::iter::repeat(&b'a');
    // Under the 1024-byte head limit: only the request deadline can close it.
    for (sent, byte) in head.chain(filler).take(900).enumerate() {
        if s.write_all(&[*byte]).is_err() {
            return sent;
        }
        let mut buf = [0u8; 64];
        match s.read(&mut buf) {
            Ok(0) => return sent + 1,
            Ok(_) => panic!("login_server answered an incomplete request"),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return sent + 1,
        }
    }
    panic!("login_server took 900 bytes trickled over 90 s without closing");
}

fn msg_server_request(port: u16) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(b"GET /msg_server HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    String::from_utf8_lossy(&read_to_close(&mut s)).into_owned()
}

#[test]
fn slow_and_silent_http_clients_are_bounded_and_others_still_served() {
    let dir = TempDir::new("hostile-http");
    let (mut login, port) = login_server(&dir);

    // Many silent connections and a trickler do not keep a request from being answered.
    let mut idle: Vec<TcpStream> = (0..200)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    let trickler = std::thread::spawn(move || {
        let t = Instant::now();
        (trickle(port), t.elapsed())
    });
    let reply = msg_server_request(port);
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.contains("\"code\" : 1"), "{reply}");

    // A head past the limit is refused at once, without a reply.
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut head = b"GET /msg_server HTTP/1.1\r\n".to_vec();
    while head.len() <= 2048 {
        head.extend_from_slice(b"X-More: headers\r\n");
    }
    let t = Instant::now();
    let _ = s.write_all(&head);
    let got = read_to_close(&mut s);
    assert!(got.is_empty(), "an oversized head was answered: {got:?}");
    eprintln!("oversized head closed after {:?}", t.elapsed());

    let (sent, took) = trickler.join().expect("the trickler");
    assert!(sent < 900);
    assert!(
        login.wait_for_line("no complete request within", LIMIT),
        "no log line for the trickled request"
    );
    eprintln!("a request trickled at 10 bytes a second was closed after {took:?}, {sent} bytes");
    // The silent ones go by the silence timeout.
    for s in &mut idle {
        assert!(read_to_close(s).is_empty());
    }
    assert!(msg_server_request(port).starts_with("HTTP/1.1 200"));
}

// ---- hostile strings in every text field ------------------------------------------------------

const WRITER: u32 = HOSTILE.id(7);
const READER: u32 = HOSTILE.id(8);
const MEMBER: u32 = HOSTILE.id(9);

/// UTF-8 texts no layer may alter: SQL metacharacters, escapes, NUL bytes, 4-byte emoji.
fn hostile_texts() -> Vec<String> {
    vec![
        "'; DROP TABLE IMUser; --".into(),
        "\\' \\\" \\\\ \\0 % _ %% LIKE '%' \"; DELETE FROM IMMessage_0; #".into(),
        "nul \0 in \0 the middle\0".into(),
        "😀🎉👍🏽🀄 𝄞 emoji".into(),
        format!("{} {}", fresh("mixed"), "'\0😀\\%"),
    ]
}

/// `chars` characters of hostile text: SQL metacharacters, NUL and 4-byte emoji repeated.
fn hostile_of_chars(chars: usize) -> String {
    "';\0\\%😀".chars().cycle().take(chars).collect()
}

/// Bytes that are not UTF-8.
const NOT_UTF8: &[u8] = b"bad \xff\xfe \xc3\x28 \x80 '; --";

/// The text message type of a conversation.
fn text_type(session: Session) -> MsgType {
    if session.kind == SessionType::Group {
        MsgType::GroupText
    } else {
        MsgType::SingleText
    }
}

/// A message `text` from `writer` to `to`, read back from `reader`'s history of the
/// conversation with `peer` byte for byte.
fn stored_verbatim(
    writer: &mut Client,
    reader: &mut Client,
    to: u32,
    session: Session,
    data: &[u8],
) {
    let msg_type = text_type(session);
    let ack = writer
        .send_msg(to, msg_type, data.to_vec())
        .expect("an ack for a hostile message");
    assert_ne!(ack.msg_id, 0);
    let history = reader.get_msg_list(session, ack.msg_id, 1).unwrap();
    assert_eq!(
        history.len(),
        1,
        "message {} not in the history",
        ack.msg_id
    );
    assert_eq!(history[0].msg_id, ack.msg_id);
    assert_eq!(history[0].raw, data, "message {} altered", ack.msg_id);
}

/// A message db_proxy refuses: no msg id is used up for it (the latest id stays).
fn refused_message(
    stack: &mut Stack,
    writer: &mut Client,
    to: u32,
    session: Session,
    data: &[u8],
    log: &str,
) {
    let msg_type = text_type(session);
    let latest = writer.latest_msg_id(session).unwrap();
    writer.send_msg_nowait(to, msg_type, data.to_vec()).unwrap();
    let db = stack.db_proxy.as_mut().expect("db_proxy running");
    assert!(db.wait_for_line(log, LIMIT), "db_proxy did not log {log:?}");
    assert_eq!(writer.latest_msg_id(session).unwrap(), latest);
}

#[test]
fn hostile_strings_are_stored_and_returned_verbatim() {
    let mut stack = Stack::builder("hostile-strings")
        .msg_conf_extra("MsgRateLimit=0\n")
        .start();
    let mut writer = login_at(&stack, 0, WRITER, ClientType::Windows);
    let mut reader = login_at(&stack, 0, READER, ClientType::Windows);
    let _member = login_at(&stack, 0, MEMBER, ClientType::Windows);

    // Group name: at the column's 256 characters stored, one more refused, not UTF-8 refused.
    let name = hostile_of_chars(256);
    let group = writer
        .create_group(&name, "'; --\0😀", &[WRITER, READER, MEMBER])
        .unwrap();
    assert_eq!(group.result_code, 0);
    let gid = group.group_id.expect("a group id");
    let info = reader.group_info(&[gid]).unwrap();
    assert_eq!(info[0].group_name, name.as_bytes());
    assert_eq!(info[0].group_avatar, "'; --\0😀".as_bytes());
    for bad in [hostile_of_chars(257).into_bytes(), NOT_UTF8.to_vec()] {
        let req = ImGroupCreateReq {
            user_id: WRITER,
            group_type: GroupType::Tmp as i32,
            group_name: bad,
            group_avatar: Vec::new(),
            member_id_list: vec![WRITER, READER],
            attach_data: None,
        };
        let (_, rsp) = writer
            .request::<_, ImGroupCreateRsp>(&req, "group create")
            .unwrap();
        assert_eq!((rsp.result_code, rsp.group_id), (1, None));
    }

    // Messages, single and group: encrypted by the client, and raw bytes as a client may send.
    for text in hostile_texts() {
        let ack = writer.send_text(READER, &text).unwrap();
        let got = reader
            .get_msg_list(Session::user(WRITER), ack.msg_id, 1)
            .unwrap();
        assert_eq!(got[0].text.as_deref(), Some(text.as_str()));
        let ack = writer.send_group_text(gid, &text).unwrap();
        let got = reader
            .get_msg_list(Session::group(gid), ack.msg_id, 1)
            .unwrap();
        assert_eq!(got[0].text.as_deref(), Some(text.as_str()));
    }
    let mut raw: Vec<Vec<u8>> = hostile_texts()
        .into_iter()
        .map(String::into_bytes)
        .collect();
    raw.push(hostile_of_chars(4096).into_bytes());
    raw.push(vec![b'\''; 4096]);
    for data in &raw {
        stored_verbatim(
            &mut writer,
            &mut reader,
            READER,
            Session::user(WRITER),
            data,
        );
        stored_verbatim(&mut writer, &mut reader, gid, Session::group(gid), data);
    }
    let over = hostile_of_chars(4097).into_bytes();
    let too_long = "do not fit the content column";
    let not_utf8 = "that is not UTF-8, not stored";
    for (to, session) in [(READER, Session::user(READER)), (gid, Session::group(gid))] {
        refused_message(&mut stack, &mut writer, to, session, &over, too_long);
        refused_message(&mut stack, &mut writer, to, session, NOT_UTF8, not_utf8);
    }

    // Sign info (128 bytes) and avatar URL (255 bytes): at the limit stored, past it or not
    // UTF-8 refused (result 1) and the stored value kept.
    let sign = |c: &mut Client, text: &[u8]| {
        let req = ImChangeSignInfoReq {
            user_id: WRITER,
            sign_info: text.to_vec(),
            attach_data: None,
        };
        c.request::<_, ImChangeSignInfoRsp>(&req, "sign info")
            .unwrap()
            .1
            .result_code
    };
    let avatar = |c: &mut Client, text: &[u8]| {
        let req = ImChangeAvatarReq {
            user_id: WRITER,
            avatar_url: text.to_vec(),
            attach_data: None,
        };
        c.request::<_, ImChangeAvatarRsp>(&req, "avatar")
            .unwrap()
            .1
            .result_code
    };
    let sign_text = format!("{}'; --\0\\%", "😀".repeat(30)).into_bytes();
    assert_eq!(sign_text.len(), 128);
    let mut avatar_text =
        format!("http://x/{}?q='; DROP TABLE IMUser; --\0%", fresh("a")).into_bytes();
    avatar_text.resize(255, b'%');
    assert_eq!(sign(&mut writer, &sign_text), 0);
    assert_eq!(avatar(&mut writer, &avatar_text), 0);
    let mut longer = sign_text.clone();
    longer.push(b'x');
    assert_eq!(sign(&mut writer, &longer), 1);
    assert_eq!(sign(&mut writer, NOT_UTF8), 1);
    let mut longer = avatar_text.clone();
    longer.push(b'x');
    assert_eq!(avatar(&mut writer, &longer), 1);
    assert_eq!(avatar(&mut writer, NOT_UTF8), 1);
    let info = reader.user_info(&[WRITER]).unwrap();
    assert_eq!(info[0].sign_info.as_deref(), Some(sign_text.as_slice()));
    assert_eq!(info[0].avatar_url, avatar_text);

    // Offline file names (255 characters): stored and listed verbatim; past it or not UTF-8
    // refused by msg_server with a log line, one per request, and never listed.
    let file_name = hostile_of_chars(255).into_bytes();
    let task = fresh("hostile-task");
    let add = |c: &mut Client, task: &str, name: &[u8]| {
        c.send_command(&ImFileAddOfflineReq {
            from_user_id: WRITER,
            to_user_id: READER,
            task_id: task.as_bytes().to_vec(),
            file_name: name.to_vec(),
            file_size: 1,
        })
        .unwrap();
    };
    let long_task = fresh("hostile-long");
    let bad_task = fresh("hostile-bad");
    for (t, name) in [
        (&long_task, hostile_of_chars(256).into_bytes()),
        (&bad_task, NOT_UTF8.to_vec()),
    ] {
        add(&mut writer, t, &name);
        assert!(
            stack.msg_daemon(0).wait_for_line(
                "IMFileAddOfflineReq with a file name that is not UTF-8 or too long: dropped",
                LIMIT
            ),
            "msg_server did not refuse the file name of {t}"
        );
    }
    add(&mut writer, &task, &file_name);
    let listed = wait_listed(&mut reader, &task);
    assert_eq!(listed.file_name, file_name);
    for t in [&long_task, &bad_task] {
        assert!(
            offline_files(&mut reader)
                .iter()
                .all(|f| f.task_id != t.as_bytes())
        );
    }
    reader
        .send_command(&ImFileDelOfflineReq {
            from_user_id: WRITER,
            to_user_id: READER,
            task_id: task.into_bytes(),
        })
        .unwrap();
}

fn offline_files(c: &mut Client) -> Vec<OfflineFileInfo> {
    let req = ImFileHasOfflineReq {
        user_id: READER,
        attach_data: None,
    };
    c.request::<_, ImFileHasOfflineRsp>(&req, "offline files")
        .unwrap()
        .1
        .offline_file_list
}

/// The receiver's offline file with `task`, asked for until it is listed: an add has no reply,
/// and requests spread over several db_proxy links (bounded: each round is a real request).
fn wait_listed(c: &mut Client, task: &str) -> OfflineFileInfo {
    for _ in 0..200 {
        if let Some(f) = offline_files(c)
            .into_iter()
            .find(|f| f.task_id == task.as_bytes())
        {
            return f;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("the offline file {task:?} was never listed");
}
