//! The group commit of messages (docs/RELIABILITY.md, "Group commit") and the relation and
//! session ids db_proxy_server caches, against the real binary and the shared MariaDB and
//! Redis: connections acting as msg_servers pipeline many requests, so the workers take them
//! from the queue in batches.
//!
//! Users: `tt_testkit::users::DB_PROXY_RELIABILITY` ids 5..=9 (276..=280;
//! `tests/reliability.rs` uses 0..=4). The tests of this file share them and run one at a time.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::net::TcpStream;
use std::sync::mpsc;
use std::sync::{Mutex, MutexGuard};

use mysql::prelude::Queryable;
use prost::Message;
use tt_proto::Command;
use tt_proto::pb::base_define::{MsgType, SessionType};
use tt_proto::pb::buddy::{ImRemoveSessionReq, ImRemoveSessionRsp};
use tt_proto::pb::message::{ImGetMsgListReq, ImGetMsgListRsp, ImMsgData};
use tt_testkit::users::DB_PROXY_RELIABILITY;
use tt_testkit::{
    PduClient, Stack, create_group, drop_group, mysql_conn, redis_conn, redis_db, relation_id,
};

const U: [u32; 5] = [
    DB_PROXY_RELIABILITY.id(5),
    DB_PROXY_RELIABILITY.id(6),
    DB_PROXY_RELIABILITY.id(7),
    DB_PROXY_RELIABILITY.id(8),
    DB_PROXY_RELIABILITY.id(9),
];

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A stack of db_proxy_server alone, with `threads` workers.
fn proxy(label: &str, threads: usize) -> Stack {
    Stack::builder(label)
        .msg_servers(0)
        .route(false)
        .login(false)
        .db_threads(threads)
        .start()
}

fn connect(stack: &Stack) -> PduClient {
    PduClient::connect(stack.ports.db_proxy).skipping_heartbeats()
}

fn now() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as u32
}

/// A prefix no earlier run used: every text of a test starts with it.
fn run_tag(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    format!("batch {test} {} {nanos} ", std::process::id())
}

/// One message of a test.
#[derive(Clone)]
struct Sent {
    from: u32,
    /// The receiver, or the group.
    to: u32,
    group: bool,
    text: String,
}

impl Sent {
    fn pdu(&self) -> ImMsgData {
        let kind = if self.group {
            MsgType::GroupText
        } else {
            MsgType::SingleText
        };
        ImMsgData {
            from_user_id: self.from,
            to_session_id: self.to,
            msg_id: 0,
            create_time: now(),
            msg_type: kind as i32,
            msg_data: self.text.as_bytes().to_vec(),
            attach_data: None,
        }
    }
}

/// Sends every message without waiting for a reply, then reads all the replies; the msg id
/// each was answered with, in the order of `msgs`.
fn pipelined(c: &mut PduClient, msgs: &[Sent]) -> Vec<u32> {
    let seqs: Vec<u16> = msgs.iter().map(|m| c.send(&m.pdu())).collect();
    let mut by_seq = HashMap::new();
    for _ in msgs {
        let (h, rsp) = c.recv::<ImMsgData>();
        by_seq.insert(h.seq_num, rsp.msg_id);
    }
    seqs.iter().map(|s| by_seq[s]).collect()
}

fn send_one(c: &mut PduClient, m: &Sent) -> u32 {
    c.call::<ImMsgData>(&m.pdu()).msg_id
}

/// A conversation's message table, its column and its id.
type Conv = (String, &'static str, u32);

/// The conversation a message belongs to.
fn conversation(db: &mut mysql::Conn, m: &Sent) -> Conv {
    if m.group {
        (format!("IMGroupMessage_{}", m.to % 8), "groupId", m.to)
    } else {
        let r = relation_id(db, m.from, m.to);
        assert_ne!(r, 0, "a relation of {} and {}", m.from, m.to);
        (format!("IMMessage_{}", r % 8), "relateId", r)
    }
}

/// Every stored (msgId, content) of the conversation whose content starts with `tag`.
fn stored_with_tag(
    db: &mut mysql::Conn,
    (table, column, id): &Conv,
    tag: &str,
) -> Vec<(u32, String)> {
    db.exec(
        format!("SELECT msgId, content FROM {table} WHERE {column}=? AND content LIKE ?"),
        (id, format!("{tag}%")),
    )
    .expect("reading stored messages")
}

/// What [`check_stored`] requires of a message without an ack.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Unacked {
    /// Not stored.
    Absent,
    /// Stored once or not at all.
    AtMostOnce,
    /// Stored once.
    Once,
}

/// Asserts, for every conversation of `sent`: each acked message stored exactly once, under
/// its acked id (`acked`; 0: no ack, then as `unacked` says); no msg id stored twice in the
/// conversation; no stored message that was not sent. Returns the acked ids of each
/// conversation.
fn check_stored(
    db: &mut mysql::Conn,
    tag: &str,
    sent: &[Sent],
    acked: &[u32],
    unacked: Unacked,
) -> BTreeMap<(String, u32), Vec<u32>> {
    let mut by_conv: BTreeMap<Conv, Vec<(usize, &Sent)>> = BTreeMap::new();
    for (i, m) in sent.iter().enumerate() {
        by_conv.entry(conversation(db, m)).or_default().push((i, m));
    }
    let mut ids = BTreeMap::new();
    for (conv, msgs) in &by_conv {
        let rows = stored_with_tag(db, conv, tag);
        let mut stored: HashMap<&str, Vec<u32>> = HashMap::new();
        for (id, text) in &rows {
            stored.entry(text.as_str()).or_default().push(*id);
        }
        for &(i, m) in msgs {
            let found = stored.remove(m.text.as_str()).unwrap_or_default();
            if acked[i] != 0 {
                assert_eq!(
                    found,
                    vec![acked[i]],
                    "{:?}: stored once, under its ack",
                    m.text
                );
            } else {
                match unacked {
                    Unacked::Absent => {
                        assert!(found.is_empty(), "{:?}: not acked, yet stored", m.text)
                    }
                    Unacked::AtMostOnce => assert!(found.len() <= 1, "{:?}: stored twice", m.text),
                    Unacked::Once => assert_eq!(found.len(), 1, "{:?}: stored once", m.text),
                }
            }
        }
        assert!(
            stored.is_empty(),
            "{}: stored but never sent: {stored:?}",
            conv.0
        );
        let (table, column, id) = conv;
        let repeated: u64 = db
            .exec_first(
                format!("SELECT COUNT(*) - COUNT(DISTINCT msgId) FROM {table} WHERE {column}=?"),
                (id,),
            )
            .expect("counting ids")
            .expect("one row");
        assert_eq!(
            repeated, 0,
            "{table}: a msg id of {column} {id} stored twice"
        );
        let mut conv_ids: Vec<u32> = msgs
            .iter()
            .map(|&(i, _)| acked[i])
            .filter(|&a| a != 0)
            .collect();
        conv_ids.sort_unstable();
        ids.insert((table.clone(), *id), conv_ids);
    }
    ids
}

/// The name of the groups this test creates.
fn group_name() -> String {
    format!("batch {} {}", std::process::id(), now())
}

/// Removes the test's groups when it ends, passed or not.
struct Groups(Vec<u32>);

impl Drop for Groups {
    fn drop(&mut self) {
        let mut db = mysql_conn();
        for &g in &self.0 {
            drop_group(&mut db, g, &U);
        }
    }
}

/// `n` messages cycling over every ordered pair of `U` and the groups.
fn mixed_load(tag: &str, n: usize, offset: usize, groups: &[u32]) -> Vec<Sent> {
    let mut pairs: Vec<(u32, u32, bool)> = Vec::new();
    for &a in &U {
        for &b in &U {
            if a != b {
                pairs.push((a, b, false));
            }
        }
    }
    for (k, &g) in groups.iter().enumerate() {
        for &a in &U[k..] {
            pairs.push((a, g, true));
        }
    }
    (0..n)
        .map(|i| {
            let (from, to, group) = pairs[(i + offset) % pairs.len()];
            Sent {
                from,
                to,
                group,
                text: format!("{tag}{offset}.{i}"),
            }
        })
        .collect()
}

fn unread_single(r: &mut redis::Connection, to: u32, from: u32) -> i64 {
    redis::cmd("HGET")
        .arg(format!("unread_{to}"))
        .arg(from)
        .query::<Option<i64>>(r)
        .expect("HGET unread")
        .unwrap_or(0)
}

fn group_count(r: &mut redis::Connection, g: u32) -> i64 {
    redis::cmd("HGET")
        .arg(format!("{g}_im_group_msg"))
        .arg("count")
        .query::<Option<i64>>(r)
        .expect("HGET group count")
        .unwrap_or(0)
}

#[test]
fn concurrent_senders_every_acked_message_stored_once_with_consecutive_ids() {
    let _serial = serial();
    let stack = proxy("batch-concurrent", 4);
    let mut c = connect(&stack);
    let groups = Groups(vec![
        create_group(&mut c, &U, &group_name()),
        create_group(&mut c, &U[1..], &group_name()),
    ]);
    let tag = run_tag("concurrent");
    let mut redis = redis_conn(redis_db::UNREAD);
    let loads: Vec<Vec<Sent>> = (0..4)
        .map(|k| mixed_load(&tag, 150, k * 7, &groups.0))
        .collect();
    let before: HashMap<(u32, u32), i64> = loads
        .iter()
        .flatten()
        .filter(|m| !m.group)
        .map(|m| ((m.to, m.from), unread_single(&mut redis, m.to, m.from)))
        .collect();

    // Four connections, each pipelining its whole load.
    let port = stack.ports.db_proxy;
    let handles: Vec<_> = loads
        .iter()
        .cloned()
        .map(|load| {
            std::thread::spawn(move || {
                let mut c = PduClient::connect(port).skipping_heartbeats();
                pipelined(&mut c, &load)
            })
        })
        .collect();
    let acked: Vec<u32> = handles
        .into_iter()
        .flat_map(|h| h.join().expect("a sender thread"))
        .collect();
    let sent: Vec<Sent> = loads.into_iter().flatten().collect();
    assert!(
        acked.iter().all(|&id| id != 0),
        "every message acked: {} of {} were not",
        acked.iter().filter(|&&id| id == 0).count(),
        sent.len()
    );

    let mut db = mysql_conn();
    for ((table, conv), ids) in check_stored(&mut db, &tag, &sent, &acked, Unacked::Absent) {
        let (first, last) = (ids[0], ids[ids.len() - 1]);
        assert_eq!(
            (last - first + 1) as usize,
            ids.len(),
            "{table} {conv}: the acked ids are consecutive ({ids:?})"
        );
    }

    // The unread counters moved by exactly the messages stored.
    let mut expected: HashMap<(u32, u32), i64> = HashMap::new();
    for m in sent.iter().filter(|m| !m.group) {
        *expected.entry((m.to, m.from)).or_default() += 1;
    }
    for ((to, from), n) in expected {
        assert_eq!(
            unread_single(&mut redis, to, from) - before[&(to, from)],
            n,
            "unread_{to} of {from}"
        );
    }
    for &g in &groups.0 {
        let n = sent.iter().filter(|m| m.group && m.to == g).count() as i64;
        assert_eq!(group_count(&mut redis, g), n, "message count of group {g}");
    }
}

/// Reads PDUs from a raw stream until it ends (the daemon was killed), sending the msg id of
/// every `IMMsgData` reply, by seq, to `acks`; a PDU cut short by the kill is ignored.
fn read_replies(mut stream: TcpStream, acks: mpsc::Sender<(usize, u16, u32)>, conn: usize) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let n = match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        while buf.len() >= 16 {
            let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
            assert!(len >= 16, "a PDU length below its header");
            if buf.len() < len {
                break;
            }
            let command = u16::from_be_bytes([buf[10], buf[11]]);
            let seq = u16::from_be_bytes([buf[12], buf[13]]);
            if command == <ImMsgData as Command>::COMMAND_ID {
                let rsp = ImMsgData::decode(&buf[16..len]).expect("an IMMsgData reply");
                if acks.send((conn, seq, rsp.msg_id)).is_err() {
                    return;
                }
            }
            buf.drain(..len);
        }
    }
}

/// The texts of the newest messages `user` can read with `peer` (a user or a group).
fn history_texts(c: &mut PduClient, user: u32, peer: u32, group: bool) -> Vec<String> {
    let kind = if group {
        SessionType::Group
    } else {
        SessionType::Single
    };
    let rsp: ImGetMsgListRsp = c.call(&ImGetMsgListReq {
        user_id: user,
        session_type: kind as i32,
        session_id: peer,
        msg_id_begin: 0,
        msg_cnt: 1000,
        attach_data: None,
    });
    rsp.msg_list
        .into_iter()
        .map(|m| String::from_utf8_lossy(&m.msg_data).into_owned())
        .collect()
}

#[test]
fn killed_mid_batch_nothing_acked_is_lost_and_resends_of_the_unacked_store_each_once() {
    let _serial = serial();
    let mut stack = proxy("batch-kill", 4);
    let mut c = connect(&stack);
    let groups = Groups(vec![create_group(&mut c, &U, &group_name())]);
    let tag = run_tag("kill");
    let loads: Vec<Vec<Sent>> = (0..3)
        .map(|k| mixed_load(&tag, 200, k * 5, &groups.0))
        .collect();

    // Three connections pipeline their load; db_proxy is killed once 20 acks came back.
    let (tx, rx) = mpsc::channel();
    let mut seqs: Vec<HashMap<u16, usize>> = Vec::new();
    let mut readers = Vec::new();
    let mut clients = Vec::new();
    for (k, load) in loads.iter().enumerate() {
        let mut client = connect(&stack);
        let stream = client.stream().try_clone().expect("cloning the stream");
        let tx = tx.clone();
        readers.push(std::thread::spawn(move || read_replies(stream, tx, k)));
        seqs.push(
            load.iter()
                .enumerate()
                .map(|(i, m)| (client.send(&m.pdu()), i))
                .collect(),
        );
        clients.push(client);
    }
    drop(tx);
    let mut acked: Vec<Vec<u32>> = loads.iter().map(|l| vec![0; l.len()]).collect();
    let mut record = |(k, seq, id): (usize, u16, u32)| {
        acked[k][seqs[k][&seq]] = id;
    };
    for _ in 0..20 {
        record(rx.recv().expect("an ack before the kill"));
    }
    Stack::kill(&mut stack.db_proxy);
    for r in readers {
        r.join().expect("a reader thread");
    }
    for reply in rx.iter() {
        record(reply);
    }
    drop(clients);
    let sent: Vec<Sent> = loads.iter().flatten().cloned().collect();
    let mut acked: Vec<u32> = acked.into_iter().flatten().collect();
    let unacked = acked.iter().filter(|&&id| id == 0).count();
    eprintln!("killed with {unacked} of {} messages not acked", sent.len());

    // Acked ones are there; an unacked one was stored once or not at all.
    let mut db = mysql_conn();
    check_stored(&mut db, &tag, &sent, &acked, Unacked::AtMostOnce);

    // The client resends what its peer's history lacks (docs/RELIABILITY.md, "A client whose
    // ack was lost"), after db_proxy is back.
    stack.start_db_proxy();
    let mut c = connect(&stack);
    let mut seen: HashMap<(u32, u32, bool), Vec<String>> = HashMap::new();
    let mut resend = Vec::new();
    for (i, m) in sent.iter().enumerate().filter(|&(i, _)| acked[i] == 0) {
        let reader = if m.group { m.from } else { m.to };
        let texts = seen.entry((m.from, m.to, m.group)).or_insert_with(|| {
            history_texts(&mut c, reader, if m.group { m.to } else { m.from }, m.group)
        });
        if !texts.contains(&m.text) {
            resend.push(i);
        }
    }
    let again: Vec<Sent> = resend.iter().map(|&i| sent[i].clone()).collect();
    let ids = pipelined(&mut c, &again);
    for (&i, id) in resend.iter().zip(ids) {
        assert_ne!(id, 0, "{:?}: resent and acked", sent[i].text);
        acked[i] = id;
    }
    // Now each message is stored exactly once, under its ack where it has one.
    check_stored(&mut db, &tag, &sent, &acked, Unacked::Once);
}

/// BEFORE INSERT triggers that refuse the rows of one relation and one group: their message
/// tables stay usable for every other conversation (other tests share them). Dropped on drop.
struct Refusal {
    names: Vec<String>,
}

impl Refusal {
    fn install(db: &mut mysql::Conn, relate_id: u32, group: u32) -> Refusal {
        let names = vec![
            "tt_batch_test_refuse_single".to_string(),
            "tt_batch_test_refuse_group".to_string(),
        ];
        for name in &names {
            db.query_drop(format!("DROP TRIGGER IF EXISTS {name}"))
                .expect("dropping a trigger");
        }
        let refusal = Refusal { names };
        let tables = [
            (
                format!("IMMessage_{}", relate_id % 8),
                "relateId",
                relate_id,
            ),
            (format!("IMGroupMessage_{}", group % 8), "groupId", group),
        ];
        for (name, (table, column, id)) in refusal.names.iter().zip(tables) {
            db.query_drop(format!(
                "CREATE TRIGGER {name} BEFORE INSERT ON {table} FOR EACH ROW \
                 IF NEW.{column} = {id} THEN \
                 SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'refused by tests/batch.rs'; \
                 END IF"
            ))
            .expect("creating a trigger (the test user has the TRIGGER privilege)");
        }
        refusal
    }
}

impl Drop for Refusal {
    fn drop(&mut self) {
        let mut db = mysql_conn();
        for name in &self.names {
            let _ = db.query_drop(format!("DROP TRIGGER IF EXISTS {name}"));
        }
    }
}

#[test]
fn a_batch_whose_insert_fails_acks_none_of_its_messages_and_the_others_are_stored_once() {
    let _serial = serial();
    let stack = proxy("batch-refused", 2);
    let mut c = connect(&stack);
    let groups = Groups(vec![create_group(&mut c, &U[..3], &group_name())]);
    let g = groups.0[0];
    let tag = run_tag("refused");
    let msg = |from: u32, to: u32, group: bool, i: usize| Sent {
        from,
        to,
        group,
        text: format!("{tag}{from}.{to}.{i}"),
    };
    // Relations exist before the trigger names one.
    let before = [msg(U[0], U[1], false, 0), msg(U[2], U[3], false, 0)];
    let before_ids: Vec<u32> = before.iter().map(|m| send_one(&mut c, m)).collect();
    assert!(before_ids.iter().all(|&id| id != 0));
    let mut db = mysql_conn();
    let refused_pair = relation_id(&mut db, U[0], U[1]);
    let refusal = Refusal::install(&mut db, refused_pair, g);

    // Only refused conversations: nothing of the batch is acked.
    let refused: Vec<Sent> = (1..=20)
        .map(|i| msg(U[i % 2], U[1 - i % 2], false, i))
        .chain((1..=10).map(|i| msg(U[i % 3], g, true, i)))
        .collect();
    let ids = pipelined(&mut c, &refused);
    assert!(ids.iter().all(|&id| id == 0), "no ack: {ids:?}");

    // Refused and accepted conversations in one pipeline: the batches fail, their accepted
    // messages are stored alone, each once.
    let mixed: Vec<Sent> = (21..=60)
        .map(|i| match i % 3 {
            0 => msg(U[0], U[1], false, i),
            1 => msg(U[2], U[3], false, i),
            _ => msg(U[3], U[2], false, i),
        })
        .chain((21..=30).map(|i| msg(U[i % 3], g, true, i)))
        .collect();
    let mixed_ids = pipelined(&mut c, &mixed);
    for (m, &id) in mixed.iter().zip(&mixed_ids) {
        let refused = m.group || (m.from == U[0] && m.to == U[1]);
        assert_eq!(id == 0, refused, "{:?}: acked {id}", m.text);
    }
    let mut all = before.to_vec();
    all.extend(refused.iter().cloned());
    all.extend(mixed.iter().cloned());
    let mut acked = before_ids;
    acked.extend(vec![0; refused.len()]);
    acked.extend(&mixed_ids);
    check_stored(&mut db, &tag, &all, &acked, Unacked::Absent);

    // The table back: the same conversations are stored again.
    drop(refusal);
    assert_ne!(send_one(&mut c, &msg(U[0], U[1], false, 99)), 0);
    assert_ne!(send_one(&mut c, &msg(U[0], g, true, 99)), 0);
}

fn remove_session(c: &mut PduClient, user: u32, peer: u32) {
    let rsp: ImRemoveSessionRsp = c.call(&ImRemoveSessionReq {
        user_id: user,
        session_type: SessionType::Single as i32,
        session_id: peer,
        attach_data: None,
    });
    assert_eq!(rsp.result_code, 0, "{user} removed its session with {peer}");
}

/// Whether `user`'s newest single-chat session with `peer` is shown (status 0).
fn session_shown(db: &mut mysql::Conn, user: u32, peer: u32) -> bool {
    let status: u32 = db
        .exec_first(
            "SELECT status FROM IMRecentSession WHERE userId=? AND peerId=? AND type=1 \
             ORDER BY status ASC, updated DESC, id DESC LIMIT 1",
            (user, peer),
        )
        .expect("reading IMRecentSession")
        .expect("the session exists");
    status == 0
}

#[test]
fn cached_ids_follow_removed_sessions_and_relations_made_by_another_db_proxy() {
    let _serial = serial();
    let a = proxy("batch-cache-a", 2);
    let b = proxy("batch-cache-b", 2);
    let (mut ca, mut cb) = (connect(&a), connect(&b));
    let tag = run_tag("cache");
    let mut n = 0;
    let mut msg = |from: u32, to: u32| {
        n += 1;
        Sent {
            from,
            to,
            group: false,
            text: format!("{tag}{n}"),
        }
    };
    let mut db = mysql_conn();

    // The session is cached by a; removed through a, then through b: a's next message shows it
    // again both times.
    let (owner, peer) = (U[0], U[2]);
    assert_ne!(send_one(&mut ca, &msg(owner, peer)), 0);
    for by_b in [false, true] {
        remove_session(if by_b { &mut cb } else { &mut ca }, owner, peer);
        assert!(!session_shown(&mut db, owner, peer), "removed");
        assert_ne!(send_one(&mut ca, &msg(owner, peer)), 0);
        assert!(
            session_shown(&mut db, owner, peer),
            "shown again by a message"
        );
        assert!(
            session_shown(&mut db, peer, owner),
            "the peer's session too"
        );
    }

    // A pair without a relation: b creates it, a finds it (one row, one id sequence).
    let (x, y) = (U[3], U[4]);
    db.exec_drop(
        "DELETE FROM IMRelationShip WHERE smallId=? AND bigId=?",
        (x.min(y), x.max(y)),
    )
    .expect("deleting the pair's relation");
    let first = msg(x, y);
    let second = msg(y, x);
    let first_id = send_one(&mut cb, &first);
    let second_id = send_one(&mut ca, &second);
    assert_eq!(
        (first_id, second_id),
        (1, 2),
        "one id sequence for the pair"
    );
    let rows: u64 = db
        .exec_first(
            "SELECT COUNT(*) FROM IMRelationShip WHERE smallId=? AND bigId=?",
            (x.min(y), x.max(y)),
        )
        .expect("counting relations")
        .expect("one row");
    assert_eq!(rows, 1, "a used the relation b created");
    check_stored(
        &mut db,
        &tag,
        &[first, second],
        &[first_id, second_id],
        Unacked::Absent,
    );
}
