//! File transfer end to end (msg_server.md §6.5, §9.2.8–9.2.9, §11.2 type 5, §11.4;
//! storage-file.md §7): real msg_servers, route_server, db_proxy_server and file_server, the
//! bytes through `tt_client::file_transfer`, the offline files on file_server's disk.
//! Users: `tt_testkit::users::FILE_TRANSFER`.

mod live_client;

use std::io::Cursor;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use live_client::{WAIT, closes_on, login_at, raw_login};
use mysql::prelude::Queryable;
use tt_client::file_transfer::{FileConn, FileRole};
use tt_client::tt_proto::ids::cid;
use tt_client::tt_proto::pb::base_define::{IpAddr, TransferFileType, UserStatType};
use tt_client::tt_proto::pb::file::{
    ImFileAddOfflineReq, ImFileDelOfflineReq, ImFileHasOfflineReq, ImFileHasOfflineRsp, ImFileReq,
    ImFileRsp,
};
use tt_client::tt_proto::pb::server::{ImFileServerIpRsp, ImFileTransferReq, ImFileTransferRsp};
use tt_client::tt_proto::prost::Message;
use tt_client::{Client, ClientType, Event, FileNotice, FileTask};
use tt_testkit::stack::LIMIT;
use tt_testkit::users::{FILE_TRANSFER, PASSWORD};
use tt_testkit::{PduListener, Stack, mysql_conn, pseudo_random_bytes as data};

/// The sizes every mode is checked with: empty, one byte, around one 32 KiB block, 10 MiB.
const SIZES: [usize; 6] = [0, 1, 32767, 32768, 32769, 10 * 1024 * 1024];

/// Size of the header before a stored file's bytes (storage-file.md §7.5).
const STORED_HEADER: u64 = 960;

/// Removes the offline-file rows of earlier runs sent to `users`.
fn forget_offline_files(users: &[u32]) {
    let mut db = mysql_conn();
    for u in users {
        db.exec_drop("DELETE FROM IMTransmitFile WHERE toId = ?", (u,))
            .expect("deleting offline-file rows");
    }
}

/// Waits until route_server reports `user` online to `c` (logins reach route_server on
/// another link than the request asking; the status reply is the event to wait on).
fn wait_online(c: &mut Client, user: u32) {
    let deadline = Instant::now() + LIMIT;
    while Instant::now() < deadline {
        let stat = c.users_status(&[user]).expect("users status");
        if stat
            .iter()
            .any(|s| s.user_id == user && s.status == UserStatType::UserStatusOnline as i32)
        {
            return;
        }
        thread::sleep(Duration::from_millis(10));
    }
    panic!("user {user} is never reported online");
}

/// The file notice of `task` that `c` receives.
fn notice_of(c: &mut Client, task: &str, ready: bool) -> FileNotice {
    match c.wait_for(
        WAIT,
        |e| matches!(e, Event::File(n) if n.task_id == task && n.offline_ready == ready),
    ) {
        Ok(Some(Event::File(n))) => n,
        other => panic!("no file notice for task {task}: {other:?}"),
    }
}

/// An online transfer of `bytes` from `sender` to `receiver` (both logged in): the task, the
/// notice, the sender serving on a thread, the receiver pulling. Returns what arrived.
fn online(sender: &mut Client, receiver: &mut Client, bytes: &[u8], name: &str) -> Vec<u8> {
    let size = bytes.len() as u32;
    let task = sender
        .request_file(receiver.user_id(), name, size, false)
        .expect("file request");
    assert_eq!(task.result_code, 0, "{task:?}");
    assert!(!task.offline, "the receiver is online: {task:?}");
    assert!(!task.addrs.is_empty(), "{task:?}");
    let n = notice_of(receiver, &task.task_id, false);
    assert_eq!(
        (n.from_user_id, n.file_size, n.file_name.as_str(), n.offline),
        (sender.user_id(), size, name, false)
    );
    assert_eq!(n.addrs, task.addrs);
    let up = FileConn::open(
        &task.addrs,
        sender.user_id(),
        &task.task_id,
        FileRole::OnlineSender,
    )
    .expect("sender login");
    let served = {
        let bytes = bytes.to_vec();
        thread::spawn(move || up.serve(&mut Cursor::new(&bytes), bytes.len() as u64))
    };
    let down = FileConn::open(
        &n.addrs,
        receiver.user_id(),
        &n.task_id,
        FileRole::OnlineReceiver,
    )
    .expect("receiver login");
    let mut got = Vec::new();
    let received = down.receive(&mut got, u64::from(size)).expect("receive");
    assert_eq!(received, u64::from(size));
    let served = served.join().expect("sender thread").expect("serve");
    assert_eq!(served, u64::from(size));
    got
}

/// Uploads `bytes` for an offline task and records it for its receiver, as the official
/// clients do.
fn upload(sender: &mut Client, task: &FileTask, bytes: &[u8]) {
    assert_eq!(task.result_code, 0, "{task:?}");
    assert!(task.offline, "{task:?}");
    let up = FileConn::open(
        &task.addrs,
        sender.user_id(),
        &task.task_id,
        FileRole::OfflineUpload,
    )
    .expect("uploader login");
    let served = up
        .serve(&mut Cursor::new(bytes), bytes.len() as u64)
        .expect("upload");
    assert_eq!(served, bytes.len() as u64);
    sender
        .add_offline_file(task, bytes.len() as u32)
        .expect("add offline file");
}

/// Downloads offline file `task` of `size` bytes as `receiver`.
fn download(receiver: &mut Client, task: &str, size: u32) -> Vec<u8> {
    let list = receiver.offline_files().expect("offline files");
    assert!(
        !list.addrs.is_empty(),
        "the list carries file_server's address"
    );
    let down = FileConn::open(
        &list.addrs,
        receiver.user_id(),
        task,
        FileRole::OfflineDownload,
    )
    .expect("downloader login");
    let mut got = Vec::new();
    down.receive(&mut got, u64::from(size)).expect("download");
    got
}

/// Asks until offline file `task` is (`present`) or is not listed for `c`: adds and deletes
/// have no reply, so the list is the only thing to wait on (bounded).
fn wait_listed(c: &mut Client, task: &str, present: bool) {
    let deadline = Instant::now() + LIMIT;
    while Instant::now() < deadline {
        let list = c.offline_files().expect("offline files");
        if list.files.iter().any(|f| f.task_id == task) == present {
            return;
        }
        thread::sleep(Duration::from_millis(10));
    }
    panic!("task {task} listed is not {present}");
}

/// Waits until `path` is gone: the delete has no reply (bounded poll).
fn wait_gone(path: &Path) {
    let deadline = Instant::now() + LIMIT;
    while Instant::now() < deadline {
        if !path.exists() {
            return;
        }
        thread::sleep(Duration::from_millis(10));
    }
    panic!("{} is still on disk", path.display());
}

#[test]
fn online_and_offline_transfers_are_byte_identical() {
    let (a, b, c) = (
        FILE_TRANSFER.id(0),
        FILE_TRANSFER.id(1),
        FILE_TRANSFER.id(2),
    );
    forget_offline_files(&[a, b, c]);
    let stack = Stack::builder("file-transfer")
        .msg_servers(2)
        .file_server(true)
        .start();
    let mut sender = login_at(&stack, 0, a, ClientType::Windows);
    let mut far = login_at(&stack, 1, b, ClientType::Windows);
    let mut near = login_at(&stack, 0, c, ClientType::Windows);
    wait_online(&mut sender, b);

    // Online, to a receiver on the other msg_server: route_server is asked for its presence
    // and passes the notice on.
    for (i, size) in SIZES.into_iter().enumerate() {
        let bytes = data(size, 1 + i as u64);
        let got = online(&mut sender, &mut far, &bytes, &format!("online-{size}.bin"));
        assert!(got == bytes, "online transfer of {size} bytes differs");
    }
    // Online, to a receiver on the same msg_server.
    let bytes = data(40_000, 99);
    assert!(online(&mut sender, &mut near, &bytes, "near.bin") == bytes);

    // Offline: upload, notice to the receiver, list, download, the stored file on disk.
    for (i, size) in SIZES.into_iter().enumerate() {
        let bytes = data(size, 100 + i as u64);
        let name = format!("offline-{size}.bin");
        let task = sender
            .request_file(b, &name, size as u32, true)
            .expect("file request");
        upload(&mut sender, &task, &bytes);
        let n = notice_of(&mut far, &task.task_id, true);
        assert_eq!((n.file_size, n.offline), (size as u32, true));
        let stored = stack.offline_file_path(&task.task_id);
        let len = std::fs::metadata(&stored).expect("the stored file").len();
        assert_eq!(len, STORED_HEADER + size as u64);
        let got = download(&mut far, &task.task_id, size as u32);
        assert!(got == bytes, "offline transfer of {size} bytes differs");
        far.delete_offline_file(a, b, &task.task_id)
            .expect("delete");
        wait_gone(&stored);
    }

    // The same through tt-cli, as an operator checks a deployment.
    let dir = stack.dir.path().join("cli");
    std::fs::create_dir_all(dir.join("in")).expect("cli directory");
    let bytes = data(70_000, 500);
    std::fs::write(dir.join("sent.bin"), &bytes).expect("file to send");
    let path = dir.join("sent.bin").display().to_string();
    let peer = b.to_string();
    // Online: the receiver waits for the notice and takes the file.
    let receiving = {
        let (stack_dir, port) = (dir.clone(), stack.msg_port(1));
        thread::spawn(move || cli(port, b, &stack_dir, &["getfile", "next", "30", "in"]))
    };
    // Its login replaces the library client of the same user and type: once that is kicked,
    // the notice reaches tt-cli.
    let kicked = far.wait_for(WAIT, |e| matches!(e, Event::Kicked { .. }));
    assert!(matches!(kicked, Ok(Some(_))), "{kicked:?}");
    let out = cli(stack.msg_port(0), a, &dir, &["sendfile", &peer, &path]);
    assert!(
        out.contains("sendfile sent") && out.contains("bytes=70000"),
        "{out}"
    );
    let got = receiving.join().expect("getfile thread");
    assert!(got.contains("getfile received"), "{got}");
    assert!(std::fs::read(dir.join("in/sent.bin")).unwrap() == bytes);
    // Offline: upload, list, download, delete.
    std::fs::remove_file(dir.join("in/sent.bin")).expect("clean up");
    let out = cli(
        stack.msg_port(0),
        a,
        &dir,
        &["sendfile", &peer, &path, "offline"],
    );
    assert!(out.contains("sendfile uploaded"), "{out}");
    let task = word_after(&out, "task=");
    // The add goes through msg_server 0 with no reply; the list through msg_server 1 may
    // reach db_proxy first: asked again until listed (bounded).
    let listed = format!("task={task} name=sent.bin size=70000");
    let deadline = Instant::now() + LIMIT;
    let list = loop {
        let list = cli(stack.msg_port(1), b, &dir, &["getfile", "list"]);
        if list.contains(&listed) || Instant::now() >= deadline {
            break list;
        }
        thread::sleep(Duration::from_millis(50));
    };
    assert!(list.contains(&listed), "{list}");
    let got = cli(stack.msg_port(1), b, &dir, &["getfile", &task, "in"]);
    assert!(got.contains("getfile downloaded"), "{got}");
    assert!(std::fs::read(dir.join("in/sent.bin")).unwrap() == bytes);
    let rm = cli(stack.msg_port(1), b, &dir, &["rmfile", &task]);
    assert!(rm.contains("rmfile sent"), "{rm}");
    wait_gone(&stack.offline_file_path(&task));
}

/// Runs one tt-cli command as `user` against the msg_server on `port`, in `dir`; returns its
/// output (it must succeed).
fn cli(port: u16, user: u32, dir: &Path, command: &[&str]) -> String {
    let out = std::process::Command::new(tt_testkit::bin_path("tt-cli"))
        .current_dir(dir)
        .args(["--msg-server", &format!("127.0.0.1:{port}")])
        .args(["--user", &format!("user{user}"), "--password", PASSWORD])
        .args(command)
        .output()
        .expect("running tt-cli");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "tt-cli {command:?}: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// The word after `key` in `text`.
fn word_after(text: &str, key: &str) -> String {
    let at = text.find(key).expect(key) + key.len();
    text[at..]
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string()
}

#[test]
fn an_offline_file_waits_for_its_receiver_across_a_file_server_restart_until_deleted() {
    let (a, b, stranger) = (
        FILE_TRANSFER.id(3),
        FILE_TRANSFER.id(4),
        FILE_TRANSFER.id(5),
    );
    forget_offline_files(&[a, b, stranger]);
    let mut stack = Stack::builder("file-offline")
        .msg_servers(2)
        .file_server(true)
        .start();
    let mut sender = login_at(&stack, 0, a, ClientType::Windows);

    // An online request to a receiver who is not logged in anywhere becomes offline.
    let bytes = data(100_000, 7);
    let task = sender
        .request_file(b, "report.pdf", bytes.len() as u32, false)
        .expect("file request");
    assert!(
        task.offline,
        "route_server reports the receiver offline: {task:?}"
    );
    upload(&mut sender, &task, &bytes);
    let stored = stack.offline_file_path(&task.task_id);
    assert!(stored.exists(), "{} stored", stored.display());

    // file_server restarts; the file is on disk and the msg_servers link again.
    Stack::kill(&mut stack.file_server);
    stack.start_file_server();
    for i in 0..2 {
        assert!(
            stack
                .msg_daemon(i)
                .wait_for_line("addresses of file_server", LIMIT),
            "msg_server {i} did not link to the restarted file_server"
        );
    }

    // The receiver logs in later, finds the file and downloads it.
    let mut receiver = login_at(&stack, 1, b, ClientType::Windows);
    let list = receiver.offline_files().expect("offline files");
    let f = list
        .files
        .iter()
        .find(|f| f.task_id == task.task_id)
        .expect("the file is listed");
    assert_eq!(
        (f.from_user_id, f.file_name.as_str(), f.file_size),
        (a, "report.pdf", bytes.len() as u32)
    );
    let got = download(&mut receiver, &task.task_id, bytes.len() as u32);
    assert!(got == bytes, "the downloaded file differs");

    // A user with no part in the file cannot delete it.
    let mut other = raw_login(&stack, 0, stranger, ClientType::Windows);
    other.send(&ImFileDelOfflineReq {
        from_user_id: a,
        to_user_id: b,
        task_id: task.task_id.clone().into_bytes(),
    });
    assert!(
        stack
            .msg_daemon(0)
            .wait_for_line("for a file of other users", LIMIT)
    );
    assert!(stored.exists(), "a stranger's delete leaves the file");

    // The receiver's delete removes it from the list and from disk.
    receiver
        .delete_offline_file(a, b, &task.task_id)
        .expect("delete");
    wait_listed(&mut receiver, &task.task_id, false);
    wait_gone(&stored);
}

#[test]
fn bad_file_requests_are_refused_and_bad_bodies_close_the_client() {
    let (a, b, c) = (
        FILE_TRANSFER.id(6),
        FILE_TRANSFER.id(7),
        FILE_TRANSFER.id(8),
    );
    forget_offline_files(&[a, b, c]);
    let stack = Stack::builder("file-bad").file_server(true).start();
    let mut sender = login_at(&stack, 0, a, ClientType::Windows);

    // A file name over 255 characters: result 1, no task.
    let long = "x".repeat(256);
    let refused = sender.request_file(b, &long, 10, true).expect("answer");
    assert_eq!((refused.result_code, refused.task_id.as_str()), (1, ""));
    // Malformed bodies, and a transfer mode the protocol does not declare, close the
    // client's connection, with no answer.
    let bad_mode = ImFileReq {
        from_user_id: c,
        to_user_id: b,
        file_name: b"a.txt".to_vec(),
        file_size: 5,
        trans_mode: 3,
    };
    closes_on::<ImFileReq, ImFileRsp>(&stack, c, ClientType::Windows, &bad_mode.encode_to_vec());
    let garbage = [0xff, 0xff, 0xff];
    closes_on::<ImFileReq, ImFileRsp>(&stack, c, ClientType::Windows, &garbage);
    closes_on::<ImFileHasOfflineReq, ImFileHasOfflineRsp>(&stack, c, ClientType::Windows, &garbage);
    closes_on::<ImFileAddOfflineReq, ImFileRsp>(&stack, c, ClientType::Windows, &garbage);
    closes_on::<ImFileDelOfflineReq, ImFileRsp>(&stack, c, ClientType::Windows, &[0x0a]);

    // The server goes on: a good request gets its task.
    let ok = sender
        .request_file(b, "fine.txt", 10, true)
        .expect("answer");
    assert_eq!(ok.result_code, 0, "{ok:?}");
    assert!(ok.offline && !ok.task_id.is_empty(), "{ok:?}");
}

#[test]
fn without_a_file_server_a_transfer_is_refused_and_a_file_servers_answers_are_routed() {
    let a = FILE_TRANSFER.id(9);
    {
        let stack = Stack::builder("file-none").start();
        let mut sender = login_at(&stack, 0, a, ClientType::Windows);
        for offline in [false, true] {
            let t = sender.request_file(a, "a.txt", 1, offline).expect("answer");
            assert_eq!(t.result_code, 1, "{t:?}");
            assert!(t.task_id.is_empty() && t.addrs.is_empty(), "{t:?}");
        }
    }

    // A fake file_server: what msg_server asks and how it passes the answers on.
    let fake = PduListener::bind();
    let mut stack = Stack::builder("file-fake")
        .msg_conf_extra(&format!(
            "FileServerIP1=127.0.0.1\nFileServerPort1={}\n",
            fake.port()
        ))
        .start();
    let mut f = fake.accept().skipping_heartbeats();
    let ask = f.recv_pdu();
    assert_eq!(
        (ask.header.command_id, ask.header.seq_num),
        (cid::CID_OTHER_FILE_SERVER_IP_REQ, 0)
    );
    // More addresses than msg_server keeps.
    let many: Vec<IpAddr> = (0..20u32)
        .map(|i| IpAddr {
            ip: format!("10.0.0.{i}").into_bytes(),
            port: 8600,
        })
        .collect();
    f.reply(
        &ask.header,
        &ImFileServerIpRsp {
            ip_addr_list: many.clone(),
        },
    );
    assert!(
        stack
            .msg_daemon(0)
            .wait_for_line("addresses of file_server", LIMIT)
    );

    let mut sender = login_at(&stack, 0, a, ClientType::Windows);
    let seq = sender.peek_next_seq();
    let answering = thread::spawn(move || {
        let (h, req) = f.recv::<ImFileTransferReq>();
        assert_eq!(h.seq_num, seq, "the client's seq");
        assert_eq!((req.from_user_id, req.to_user_id, req.file_size), (a, a, 7));
        assert_eq!(req.trans_mode, TransferFileType::FileTypeOffline as i32);
        let mut rsp = ImFileTransferRsp {
            result_code: 0,
            from_user_id: a,
            to_user_id: a,
            file_name: Some(req.file_name.clone()),
            file_size: Some(7),
            task_id: Some(b"fake-task".to_vec()),
            trans_mode: Some(req.trans_mode),
            attach_data: Some(vec![1, 2, 3]),
        };
        // An answer whose attach_data names no connection is dropped; the link stays.
        f.reply(&h, &rsp);
        rsp.attach_data = req.attach_data;
        f.reply(&h, &rsp);
        f
    });
    let t = sender.request_file(a, "fake.bin", 7, true).expect("answer");
    let mut f = answering.join().expect("fake file_server");
    assert_eq!((t.result_code, t.task_id.as_str()), (0, "fake-task"));
    let kept: Vec<String> = many[..16]
        .iter()
        .map(|a| String::from_utf8_lossy(&a.ip).into_owned())
        .collect();
    let given: Vec<String> = t.addrs.iter().map(|a| a.ip.clone()).collect();
    assert_eq!(given, kept, "the first 16 addresses");
    // The task is notified to its receiver (here the sender itself).
    assert_eq!(notice_of(&mut sender, "fake-task", false).file_size, 7);

    // A delete goes to the file_server as sent.
    sender
        .delete_offline_file(a, a, "fake-task")
        .expect("delete");
    let (h, del) = f.recv::<ImFileDelOfflineReq>();
    assert_eq!(h.seq_num, 0);
    assert_eq!(
        (del.from_user_id, del.to_user_id, del.task_id.as_slice()),
        (a, a, &b"fake-task"[..])
    );

    // The list of addresses belongs to one connection: after a reconnect it is asked again
    // and holds only the new answer.
    drop(f);
    let mut f = fake.accept().skipping_heartbeats();
    let ask = f.recv_until(cid::CID_OTHER_FILE_SERVER_IP_REQ);
    f.reply(
        &ask.header,
        &ImFileServerIpRsp {
            ip_addr_list: many[..1].to_vec(),
        },
    );
    assert!(
        stack
            .msg_daemon(0)
            .wait_for_line("addresses of file_server", LIMIT)
    );
    let list = sender.offline_files().expect("offline files");
    let given: Vec<String> = list.addrs.iter().map(|a| a.ip.clone()).collect();
    assert_eq!(given, ["10.0.0.0"]);
}
