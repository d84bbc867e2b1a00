//! db_proxy_server's offline-file commands against the real binary and the local MariaDB:
//! has offline (fields, order, the listing bound), add and delete (the rows they leave, also
//! after a restart), task ids with SQL metacharacters, oversized fields and malformed bodies.
//!
//! Users: `tt_testkit::users::DB_PROXY_FILES` only, each test its own (the constants below).
//! Every test deletes the `IMTransmitFile` rows of its users at its start and its end.
//!
//! db_proxy runs with one worker, so requests are handled in order: add and delete get no
//! reply, and the "has offline" reply sent after them shows their effect.

use mysql::prelude::Queryable;
use tt_proto::pb::base_define::OfflineFileInfo;
use tt_proto::pb::file::{
    ImFileAddOfflineReq, ImFileDelOfflineReq, ImFileHasOfflineReq, ImFileHasOfflineRsp,
};
use tt_proto::{Command, Pdu};
use tt_testkit::users::DB_PROXY_FILES as USERS;
use tt_testkit::{PduClient, Stack, mysql_conn};

/// Lifecycle: two senders, one receiver.
const L_SENDER_A: u32 = USERS.id(0);
const L_SENDER_B: u32 = USERS.id(1);
const L_RECEIVER: u32 = USERS.id(2);
/// SQL metacharacters: sender, receiver.
const Q_SENDER: u32 = USERS.id(3);
const Q_RECEIVER: u32 = USERS.id(4);
/// Bounds: sender, receiver.
const B_SENDER: u32 = USERS.id(5);
const B_RECEIVER: u32 = USERS.id(6);
/// Malformed bodies: sender, receiver.
const M_SENDER: u32 = USERS.id(7);
const M_RECEIVER: u32 = USERS.id(8);

/// Most files one reply lists (`MAX_LISTED`, documented in COMPATIBILITY.md).
const MAX_LISTED: usize = 100;

/// A row of `IMTransmitFile`: (fromId, toId, taskId, fileName, size, status).
type Row = (u32, u32, Vec<u8>, Vec<u8>, u32, u32);

/// One test's db_proxy_server (one worker), connection and database handle; the rows of its
/// users are deleted at the start and on drop (also when the test fails).
struct Fixture {
    stack: Stack,
    c: PduClient,
    db: mysql::Conn,
    users: Vec<u32>,
}

impl Fixture {
    fn start(label: &str, users: &[u32]) -> Fixture {
        let mut db = mysql_conn();
        cleanup(&mut db, users);
        let stack = Stack::builder(label)
            .msg_servers(0)
            .route(false)
            .login(false)
            .db_threads(1)
            .start();
        Fixture {
            c: PduClient::connect(stack.ports.db_proxy),
            stack,
            db,
            users: users.to_vec(),
        }
    }

    /// Restarts db_proxy_server and connects to the new process.
    fn restart(&mut self) {
        Stack::kill(&mut self.stack.db_proxy);
        self.stack.start_db_proxy();
        self.c = PduClient::connect(self.stack.ports.db_proxy);
    }

    fn add(&mut self, from: u32, to: u32, task: &[u8], name: &[u8], size: u32) {
        self.c.send(&ImFileAddOfflineReq {
            from_user_id: from,
            to_user_id: to,
            task_id: task.to_vec(),
            file_name: name.to_vec(),
            file_size: size,
        });
    }

    fn del(&mut self, from: u32, to: u32, task: &[u8]) {
        self.c.send(&ImFileDelOfflineReq {
            from_user_id: from,
            to_user_id: to,
            task_id: task.to_vec(),
        });
    }

    /// The files listed for `user`; the reply's other fields checked.
    fn listed(&mut self, user: u32) -> Vec<OfflineFileInfo> {
        let rsp: ImFileHasOfflineRsp = self.c.call(&ImFileHasOfflineReq {
            user_id: user,
            attach_data: Some(b"attach".to_vec()),
        });
        assert_eq!(rsp.user_id, user);
        assert_eq!(rsp.attach_data.as_deref(), Some(&b"attach"[..]));
        assert!(
            rsp.ip_addr_list.is_empty(),
            "msg_server fills the addresses"
        );
        rsp.offline_file_list
    }

    /// The rows waiting for `to`, by id.
    fn rows_to(&mut self, to: u32) -> Vec<Row> {
        self.db
            .exec_map(
                "SELECT fromId, toId, taskId, fileName, size, status FROM IMTransmitFile \
                 WHERE toId=? ORDER BY id",
                (to,),
                |(f, t, task, name, size, status)| (f, t, task, name, size, status),
            )
            .expect("select IMTransmitFile")
    }

    /// A row written directly, with its own `created` and `status`.
    fn insert_row(&mut self, from: u32, to: u32, task: &str, created: u32, status: u32) {
        self.db
            .exec_drop(
                "INSERT INTO IMTransmitFile (fromId, toId, fileName, size, taskId, status, \
                 created, updated) VALUES (?, ?, ?, 1, ?, ?, ?, ?)",
                (
                    from,
                    to,
                    format!("{task}.bin"),
                    task,
                    status,
                    created,
                    created,
                ),
            )
            .expect("insert IMTransmitFile");
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        Stack::kill(&mut self.stack.db_proxy);
        cleanup(&mut self.db, &self.users);
    }
}

/// Deletes every row from or to the users.
fn cleanup(db: &mut mysql::Conn, users: &[u32]) {
    for &u in users {
        db.exec_drop(
            "DELETE FROM IMTransmitFile WHERE fromId=? OR toId=?",
            (u, u),
        )
        .expect("delete IMTransmitFile");
    }
}

fn info(from: u32, task: &[u8], name: &[u8], size: u32) -> OfflineFileInfo {
    OfflineFileInfo {
        from_user_id: from,
        task_id: task.to_vec(),
        file_name: name.to_vec(),
        file_size: size,
    }
}

/// A PDU of `M`'s command with the raw `body`.
fn raw<M: Command>(body: &[u8]) -> Pdu {
    Pdu::new(M::SERVICE_ID, M::COMMAND_ID, 0, body.to_vec())
}

#[test]
fn add_list_delete_and_restart() {
    let mut f = Fixture::start("dbp-files-life", &[L_SENDER_A, L_SENDER_B, L_RECEIVER]);
    assert!(f.listed(L_RECEIVER).is_empty());

    let (task_a, task_b) = (b"task-a-0000".as_slice(), b"task-b-0000".as_slice());
    f.add(
        L_SENDER_A,
        L_RECEIVER,
        task_a,
        "報告 a.pdf".as_bytes(),
        1234,
    );
    f.add(L_SENDER_B, L_RECEIVER, task_b, b"b.zip", 99);
    // An older file, one already downloaded (status 1) and one for someone else.
    f.insert_row(L_SENDER_B, L_RECEIVER, "task-old", 1000, 0);
    f.insert_row(L_SENDER_A, L_RECEIVER, "task-done", 900, 1);
    f.insert_row(L_RECEIVER, L_SENDER_A, "task-other", 800, 0);

    let first = vec![
        info(L_SENDER_B, b"task-old", b"task-old.bin", 1),
        info(L_SENDER_A, task_a, "報告 a.pdf".as_bytes(), 1234),
        info(L_SENDER_B, task_b, b"b.zip", 99),
    ];
    assert_eq!(
        f.listed(L_RECEIVER),
        first,
        "oldest first, ties in insertion order"
    );
    let rows = f.rows_to(L_RECEIVER);
    let added: Vec<&Row> = rows.iter().filter(|r| r.2.starts_with(b"task-a")).collect();
    assert_eq!(
        added,
        vec![&(
            L_SENDER_A,
            L_RECEIVER,
            task_a.to_vec(),
            "報告 a.pdf".as_bytes().to_vec(),
            1234,
            0
        )]
    );
    let created: Option<(u32, u32)> =
        f.db.exec_first(
            "SELECT created, updated FROM IMTransmitFile WHERE taskId=? AND toId=?",
            (task_a, L_RECEIVER),
        )
        .expect("select times");
    let (created, updated) = created.expect("the added row");
    assert!(created > 1000 && created == updated);

    // A delete needs sender, receiver and task id to match.
    f.del(L_SENDER_B, L_RECEIVER, task_a);
    f.del(L_SENDER_A, L_SENDER_B, task_a);
    assert_eq!(f.listed(L_RECEIVER), first);
    f.del(L_SENDER_A, L_RECEIVER, task_a);
    let second = vec![first[0].clone(), first[2].clone()];
    assert_eq!(f.listed(L_RECEIVER), second);
    assert!(f.rows_to(L_RECEIVER).iter().all(|r| r.2 != task_a));
    assert_eq!(
        f.listed(L_SENDER_A),
        vec![info(L_RECEIVER, b"task-other", b"task-other.bin", 1)]
    );

    f.restart();
    assert_eq!(f.listed(L_RECEIVER), second);
    f.del(L_SENDER_B, L_RECEIVER, task_b);
    assert_eq!(f.listed(L_RECEIVER), vec![first[0].clone()]);
}

#[test]
fn task_ids_with_sql_metacharacters_are_values() {
    let mut f = Fixture::start("dbp-files-quote", &[Q_SENDER, Q_RECEIVER]);
    let plain = b"plain-task".as_slice();
    let quoted = b"x' OR '1'='1".as_slice();
    let statement = b"'; DELETE FROM IMTransmitFile; -- \\".as_slice();
    f.add(Q_SENDER, Q_RECEIVER, plain, b"plain.txt", 1);
    f.add(Q_SENDER, Q_RECEIVER, quoted, b"it's \"quoted\".txt", 2);
    f.add(Q_SENDER, Q_RECEIVER, statement, b"--;.txt", 3);
    assert_eq!(
        f.listed(Q_RECEIVER),
        vec![
            info(Q_SENDER, plain, b"plain.txt", 1),
            info(Q_SENDER, quoted, b"it's \"quoted\".txt", 2),
            info(Q_SENDER, statement, b"--;.txt", 3),
        ]
    );
    let tasks: Vec<Vec<u8>> = f.rows_to(Q_RECEIVER).into_iter().map(|r| r.2).collect();
    assert_eq!(
        tasks,
        vec![plain.to_vec(), quoted.to_vec(), statement.to_vec()]
    );

    // Each deletes exactly its own row.
    f.del(Q_SENDER, Q_RECEIVER, quoted);
    assert_eq!(
        f.listed(Q_RECEIVER),
        vec![
            info(Q_SENDER, plain, b"plain.txt", 1),
            info(Q_SENDER, statement, b"--;.txt", 3),
        ]
    );
    f.del(Q_SENDER, Q_RECEIVER, statement);
    assert_eq!(
        f.listed(Q_RECEIVER),
        vec![info(Q_SENDER, plain, b"plain.txt", 1)]
    );
    // A pattern is no wildcard.
    f.del(Q_SENDER, Q_RECEIVER, b"%");
    assert_eq!(f.rows_to(Q_RECEIVER).len(), 1);
}

#[test]
fn oversized_fields_and_the_listing_bound() {
    let mut f = Fixture::start("dbp-files-bounds", &[B_SENDER, B_RECEIVER]);
    // At the column widths, counted in characters: stored.
    let task_64 = "任".repeat(64);
    let name_255 = "文".repeat(255);
    f.add(
        B_SENDER,
        B_RECEIVER,
        task_64.as_bytes(),
        name_255.as_bytes(),
        7,
    );
    // One character over, or not UTF-8: refused.
    let task_65 = "t".repeat(65);
    let name_256 = "n".repeat(256);
    f.add(B_SENDER, B_RECEIVER, task_65.as_bytes(), b"ok.txt", 8);
    f.add(B_SENDER, B_RECEIVER, b"ok-task", name_256.as_bytes(), 9);
    f.add(B_SENDER, B_RECEIVER, b"bad\xff", b"ok.txt", 10);
    f.add(B_SENDER, B_RECEIVER, b"ok-task", b"bad\xfe.txt", 11);
    assert_eq!(
        f.listed(B_RECEIVER),
        vec![info(B_SENDER, task_64.as_bytes(), name_255.as_bytes(), 7)]
    );
    assert_eq!(f.rows_to(B_RECEIVER).len(), 1);
    // An oversized task id deletes nothing.
    f.del(B_SENDER, B_RECEIVER, format!("{task_64}x").as_bytes());
    assert_eq!(f.rows_to(B_RECEIVER).len(), 1);
    f.del(B_SENDER, B_RECEIVER, task_64.as_bytes());
    assert!(f.listed(B_RECEIVER).is_empty());

    // More waiting files than one reply lists: the oldest ones.
    let total = MAX_LISTED + 5;
    for i in 0..total {
        // Created in reverse order of insertion: the listing follows `created`.
        let created = 10_000 - i as u32;
        f.insert_row(B_SENDER, B_RECEIVER, &format!("bulk-{i:03}"), created, 0);
    }
    let listed = f.listed(B_RECEIVER);
    assert_eq!(listed.len(), MAX_LISTED);
    let expected: Vec<Vec<u8>> = (0..total)
        .rev()
        .take(MAX_LISTED)
        .map(|i| format!("bulk-{i:03}").into_bytes())
        .collect();
    let got: Vec<Vec<u8>> = listed.into_iter().map(|f| f.task_id).collect();
    assert_eq!(got, expected);
}

#[test]
fn malformed_bodies_get_no_reply() {
    let mut f = Fixture::start("dbp-files-bad", &[M_SENDER, M_RECEIVER]);
    let garbage = [0xff, 0xff, 0xff, 0xff];
    // Required fields missing: file size of an add, task id of a delete.
    let mut no_size = Vec::new();
    for (field, value) in [(1u8, M_SENDER), (2, M_RECEIVER)] {
        no_size.extend([field << 3, value as u8, (value >> 7) as u8]);
    }
    no_size[1] |= 0x80;
    no_size[4] |= 0x80;
    no_size.extend([3 << 3 | 2, 1, b't', 4 << 3 | 2, 1, b'n']);
    let bodies: [(Pdu, &str); 6] = [
        (raw::<ImFileHasOfflineReq>(&garbage), "has offline, garbage"),
        (raw::<ImFileHasOfflineReq>(&[]), "has offline, empty"),
        (raw::<ImFileAddOfflineReq>(&garbage), "add, garbage"),
        (raw::<ImFileAddOfflineReq>(&no_size), "add, no file size"),
        (raw::<ImFileDelOfflineReq>(&garbage), "delete, garbage"),
        (raw::<ImFileDelOfflineReq>(&[]), "delete, empty"),
    ];
    f.add(M_SENDER, M_RECEIVER, b"kept", b"kept.txt", 5);
    for (pdu, what) in bodies {
        f.c.send_pdu(&pdu);
        // The reply to the next request comes first: no reply to the malformed one, and the
        // connection still serves.
        assert_eq!(
            f.listed(M_RECEIVER),
            vec![info(M_SENDER, b"kept", b"kept.txt", 5)],
            "after {what}"
        );
    }
    assert_eq!(f.rows_to(M_RECEIVER).len(), 1);
}
