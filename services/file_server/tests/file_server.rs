//! file_server as a process, on free ports in a directory of its own, against blocking PDU
//! peers (`tt_testkit::PduClient`) playing msg_server and the clients. No database is used;
//! user ids are arbitrary.
//!
//! Synchronisation: deletions have no reply, so the tests wait for the daemon's log line. A
//! closed client connection's task is dropped before the next event the daemon handles, so a
//! request answered on the msg_server port after a client saw its close comes after that.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use tt_proto::Pdu;
use tt_proto::ids::cid;
use tt_proto::pb::base_define::{ClientFileRole, ClientFileState, TransferFileType};
use tt_proto::pb::file::{
    ImFileDelOfflineReq, ImFileLoginReq, ImFileLoginRsp, ImFilePullDataReq, ImFilePullDataRsp,
    ImFileState,
};
use tt_proto::pb::other::ImHeartBeat;
use tt_proto::pb::server::{
    ImFileServerIpReq, ImFileServerIpRsp, ImFileTransferReq, ImFileTransferRsp,
};
use tt_testkit::{Daemon, PduClient, READY_MARKER, TempDir, free_port, pseudo_random_bytes};

const LIMIT: Duration = Duration::from_secs(30);
const BLOCK: usize = 32 * 1024;
const HEADER_LEN: usize = 960;

struct FileServer {
    daemon: Daemon,
    dir: TempDir,
    client_port: u16,
    msg_port: u16,
}

impl FileServer {
    /// A file_server with the base conf plus `extra` lines.
    fn start(label: &str, extra: &str) -> FileServer {
        let dir = TempDir::new(label);
        let (client_port, msg_port) = (free_port(), free_port());
        dir.write(
            "fileserver.conf",
            &format!(
                "ClientListenIP=127.0.0.1\nClientListenPort={client_port}\n\
                 MsgServerListenIP=127.0.0.1\nMsgServerListenPort={msg_port}\nTaskTimeout=60\n\
                 {extra}"
            ),
        );
        let daemon = spawn(&dir);
        assert!(dir.path().join("server.pid").exists());
        FileServer {
            daemon,
            dir,
            client_port,
            msg_port,
        }
    }

    /// Kills the process and starts it again on the same directory and ports.
    fn restart(&mut self) {
        self.daemon.kill();
        self.daemon = spawn(&self.dir);
    }

    fn msg_link(&self) -> PduClient {
        PduClient::connect(self.msg_port)
    }

    fn client(&self) -> PduClient {
        PduClient::connect(self.client_port)
    }

    fn offline_path(&self, task_id: &str) -> PathBuf {
        self.dir
            .path()
            .join("offline_file")
            .join(&task_id[..2])
            .join(task_id)
    }

    fn wait_log(&mut self, needle: &str) {
        assert!(
            self.daemon.wait_for_line(needle, LIMIT),
            "file_server did not log {needle:?}; last lines:\n{}",
            self.daemon.recent_log()
        );
    }
}

fn spawn(dir: &TempDir) -> Daemon {
    let mut d = Daemon::spawn("file_server", dir.path(), "fileserver.conf");
    assert!(
        d.wait_for_line(READY_MARKER, LIMIT),
        "file_server did not start:\n{}",
        d.recent_log()
    );
    d
}

fn transfer_req(
    msg: &mut PduClient,
    from: u32,
    to: u32,
    size: u32,
    mode: TransferFileType,
) -> ImFileTransferRsp {
    let rsp: ImFileTransferRsp = msg.call(&ImFileTransferReq {
        from_user_id: from,
        to_user_id: to,
        file_name: b"report.pdf".to_vec(),
        file_size: size,
        trans_mode: mode as i32,
        attach_data: Some(vec![1, 2, 3]),
    });
    assert_eq!((rsp.from_user_id, rsp.to_user_id), (from, to));
    assert_eq!(rsp.attach_data.as_deref(), Some(&[1u8, 2, 3][..]));
    assert_eq!(rsp.trans_mode, Some(mode as i32));
    rsp
}

/// A task the daemon accepted: its id.
fn new_task(msg: &mut PduClient, from: u32, to: u32, size: u32, mode: TransferFileType) -> String {
    let rsp = transfer_req(msg, from, to, size, mode);
    assert_eq!(rsp.result_code, 0, "transfer request refused");
    let id = String::from_utf8(rsp.task_id.expect("task id")).unwrap();
    assert_eq!(id.len(), 36, "{id}");
    id
}

fn login(c: &mut PduClient, user: u32, task_id: &str, role: ClientFileRole) -> u32 {
    let rsp: ImFileLoginRsp = c.call(&ImFileLoginReq {
        user_id: user,
        task_id: task_id.as_bytes().to_vec(),
        file_role: role as i32,
    });
    assert_eq!(rsp.task_id, task_id.as_bytes());
    rsp.result_code
}

/// A login the daemon refuses: result 1, then the connection is closed.
fn refused_login(fs: &FileServer, user: u32, task_id: &str, role: ClientFileRole) {
    let mut c = fs.client();
    assert_eq!(login(&mut c, user, task_id, role), 1);
    c.expect_closed();
}

fn expect_state(c: &mut PduClient, state: ClientFileState, task_id: &str, user: u32) {
    let (h, m) = c.expect::<ImFileState>();
    assert_eq!(h.seq_num, 0);
    assert_eq!(m.state, state as i32);
    assert_eq!(
        (m.task_id.as_slice(), m.user_id),
        (task_id.as_bytes(), user)
    );
}

/// Uploads `bytes` as the server asks for them; DONE and the close follow.
fn upload(fs: &FileServer, task_id: &str, from: u32, bytes: &[u8]) {
    let mut c = fs.client();
    assert_eq!(
        login(&mut c, from, task_id, ClientFileRole::ClientOfflineUpload),
        0
    );
    let mut offset = 0;
    while offset < bytes.len() {
        let (h, req) = c.expect::<ImFilePullDataReq>();
        assert_eq!(h.seq_num, 0);
        assert_eq!(req.task_id, task_id.as_bytes());
        assert_eq!(req.user_id, from);
        assert_eq!(req.trans_mode, TransferFileType::FileTypeOffline as i32);
        assert_eq!(req.offset as usize, offset);
        let size = BLOCK.min(bytes.len() - offset);
        assert_eq!(req.data_size as usize, size);
        c.reply(
            &h,
            &ImFilePullDataRsp {
                result_code: 0,
                task_id: task_id.as_bytes().to_vec(),
                user_id: from,
                offset: req.offset,
                file_data: bytes[offset..offset + size].to_vec(),
            },
        );
        offset += size;
    }
    expect_state(&mut c, ClientFileState::ClientFileDone, task_id, from);
    assert!(c.expect_closed().is_empty());
}

/// Downloads a stored file of `size` bytes (at least one pull, 0 bytes too); DONE and the
/// close follow.
fn download(fs: &FileServer, task_id: &str, from: u32, to: u32, size: usize) -> Vec<u8> {
    let mut c = fs.client();
    assert_eq!(
        login(&mut c, to, task_id, ClientFileRole::ClientOfflineDownload),
        0
    );
    let mut got = Vec::new();
    loop {
        let seq = c.send(&ImFilePullDataReq {
            task_id: task_id.as_bytes().to_vec(),
            user_id: to,
            trans_mode: TransferFileType::FileTypeOffline as i32,
            offset: got.len() as u32,
            data_size: 34_816,
        });
        let (h, rsp) = c.expect::<ImFilePullDataRsp>();
        assert_eq!(h.seq_num, seq);
        assert_eq!((rsp.result_code, rsp.offset as usize), (0, got.len()));
        assert_eq!(
            (rsp.task_id.as_slice(), rsp.user_id),
            (task_id.as_bytes(), to)
        );
        assert!(rsp.file_data.len() <= BLOCK);
        got.extend_from_slice(&rsp.file_data);
        if got.len() >= size {
            break;
        }
    }
    expect_state(&mut c, ClientFileState::ClientFileDone, task_id, from);
    assert!(c.expect_closed().is_empty());
    got
}

/// The NUL-terminated text of a header field.
fn field(header: &[u8], at: usize, size: usize) -> String {
    let f = &header[at..at + size];
    let end = f.iter().position(|&b| b == 0).unwrap_or(size);
    assert!(f[end..].iter().all(|&b| b == 0), "NUL padding");
    String::from_utf8(f[..end].to_vec()).unwrap()
}

fn ip_rsp(msg: &mut PduClient) -> Vec<(String, u32)> {
    let rsp: ImFileServerIpRsp = msg.call(&ImFileServerIpReq {});
    rsp.ip_addr_list
        .into_iter()
        .map(|a| (String::from_utf8(a.ip).unwrap(), a.port))
        .collect()
}

#[test]
fn address_list_and_heartbeats() {
    let fs = FileServer::start("fs-ips", "FileServerIp=10.1.2.3;10.1.2.4\n");
    let mut msg = fs.msg_link();
    let port = u32::from(fs.client_port);
    assert_eq!(
        ip_rsp(&mut msg),
        vec![
            ("10.1.2.3".to_string(), port),
            ("10.1.2.4".to_string(), port)
        ]
    );
    let seq = msg.send(&ImHeartBeat {});
    let (h, _) = msg.expect::<ImHeartBeat>();
    assert_eq!(h.seq_num, seq, "a heartbeat comes back as it was");
    let mut c = fs.client();
    c.send(&ImHeartBeat {});
    c.expect::<ImHeartBeat>();

    // Without FileServerIp, a wildcard listen address is handed out as 127.0.0.1.
    let wild = TempDir::new("fs-ips-wild");
    let (client_port, msg_port) = (free_port(), free_port());
    wild.write(
        "fileserver.conf",
        &format!(
            "ClientListenIP=0.0.0.0\nClientListenPort={client_port}\n\
             MsgServerListenIP=127.0.0.1\nMsgServerListenPort={msg_port}\nTaskTimeout=60\n"
        ),
    );
    let _d = spawn(&wild);
    let mut msg = PduClient::connect(msg_port);
    assert_eq!(
        ip_rsp(&mut msg),
        vec![("127.0.0.1".to_string(), u32::from(client_port))]
    );
}

#[test]
fn the_obsolete_auto_setup_conf_is_refused_naming_the_keys() {
    let dir = TempDir::new("fs-obsolete");
    dir.write(
        "fileserver.conf",
        "Address=0.0.0.0\nListenPort=8600\nTaskTimeout=60\n",
    );
    let mut d = Daemon::spawn("file_server", dir.path(), "fileserver.conf");
    assert!(
        d.wait_for_line("ClientListenIP", LIMIT),
        "{}",
        d.recent_log()
    );
    assert_eq!(d.wait_exit(LIMIT), Some(1));
}

/// Receiver and sender of an online task, both logged in; the receiver got PEER_READY.
fn online_pair(
    fs: &FileServer,
    msg: &mut PduClient,
    from: u32,
    to: u32,
) -> (String, PduClient, PduClient) {
    let id = new_task(msg, from, to, 100_000, TransferFileType::FileTypeOnline);
    let mut receiver = fs.client();
    assert_eq!(
        login(&mut receiver, to, &id, ClientFileRole::ClientRealtimeRecver),
        0
    );
    let mut sender = fs.client();
    assert_eq!(
        login(&mut sender, from, &id, ClientFileRole::ClientRealtimeSender),
        0
    );
    expect_state(
        &mut receiver,
        ClientFileState::ClientFilePeerReady,
        &id,
        from,
    );
    (id, sender, receiver)
}

/// The receiver pulls `chunk` bytes at a time; every pull reaches the sender as it was sent,
/// every answer reaches the receiver under the pull's seq; the receiver's DONE reaches the
/// sender and both connections are closed.
fn relay(
    id: &str,
    sender: &mut PduClient,
    receiver: &mut PduClient,
    from: u32,
    to: u32,
    file: &[u8],
) {
    let chunk = 34_816;
    let mut got = Vec::new();
    while got.len() < file.len() {
        let pull = Pdu::command(
            receiver.next_seq(),
            &ImFilePullDataReq {
                task_id: id.as_bytes().to_vec(),
                user_id: to,
                trans_mode: TransferFileType::FileTypeOnline as i32,
                offset: got.len() as u32,
                data_size: chunk,
            },
        );
        receiver.send_pdu(&pull);
        let relayed = sender.recv_pdu();
        assert_eq!(
            relayed.to_bytes(),
            pull.to_bytes(),
            "the pull is relayed unchanged"
        );
        let n = (chunk as usize).min(file.len() - got.len());
        let rsp = ImFilePullDataRsp {
            result_code: 0,
            task_id: id.as_bytes().to_vec(),
            user_id: from,
            offset: got.len() as u32,
            file_data: file[got.len()..got.len() + n].to_vec(),
        };
        let answer = Pdu::command(relayed.header.seq_num.wrapping_add(500), &rsp);
        sender.send_pdu(&answer);
        let back = receiver.recv_pdu();
        assert_eq!(back.header.command_id, cid::CID_FILE_PULL_DATA_RSP);
        assert_eq!(back.header.seq_num, pull.header.seq_num, "the pull's seq");
        assert_eq!(back.body, answer.body, "the data is relayed unchanged");
        got.extend_from_slice(&rsp.file_data);
    }
    assert_eq!(got, file);
    let done = ImFileState {
        state: ClientFileState::ClientFileDone as i32,
        task_id: id.as_bytes().to_vec(),
        user_id: to,
    };
    receiver.send(&done);
    let (_, m) = sender.expect::<ImFileState>();
    assert_eq!(m, done);
    assert!(sender.expect_closed().is_empty());
    assert!(receiver.expect_closed().is_empty());
}

#[test]
fn online_transfer_is_relayed_with_seqs_kept() {
    let fs = FileServer::start("fs-online", "");
    let mut msg = fs.msg_link();
    let (id, mut sender, mut receiver) = online_pair(&fs, &mut msg, 11, 12);
    relay(
        &id,
        &mut sender,
        &mut receiver,
        11,
        12,
        &pseudo_random_bytes(100_000, 1),
    );
    // The task is gone with its connections.
    refused_login(&fs, 11, &id, ClientFileRole::ClientRealtimeSender);
}

#[test]
fn offline_files_of_every_block_boundary_upload_download_and_survive_a_restart() {
    let mut fs = FileServer::start("fs-offline", "");
    let mut msg = fs.msg_link();
    let (from, to) = (21, 22);
    let sizes = [0, 1, BLOCK - 1, BLOCK, BLOCK + 1, 10 * 1024 * 1024];
    let mut stored = Vec::new();
    for (i, &size) in sizes.iter().enumerate() {
        let file = pseudo_random_bytes(size, 101 + 2 * i as u64);
        let id = new_task(
            &mut msg,
            from,
            to,
            size as u32,
            TransferFileType::FileTypeOffline,
        );
        assert!(
            !fs.offline_path(&id).exists(),
            "nothing stored before the upload"
        );
        upload(&fs, &id, from, &file);
        let disk = std::fs::read(fs.offline_path(&id)).unwrap();
        assert_eq!(disk.len(), HEADER_LEN + size);
        let h = &disk[..HEADER_LEN];
        assert_eq!(field(h, 0, 128), id);
        assert_eq!(field(h, 128, 64), from.to_string());
        assert_eq!(field(h, 192, 64), to.to_string());
        let created: u64 = field(h, 256, 128).parse().unwrap();
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!(
            created <= now && created + 3600 > now,
            "create_time {created}"
        );
        assert_eq!(field(h, 384, 512), "report.pdf");
        assert_eq!(field(h, 896, 64), size.to_string());
        assert_eq!(&disk[HEADER_LEN..], file.as_slice());
        assert_eq!(download(&fs, &id, from, to, size), file, "{size} bytes");
        stored.push((id, file));
    }
    // The sender cannot download, a second upload of a stored task is refused.
    let (id, _) = &stored[2];
    refused_login(&fs, from, id, ClientFileRole::ClientOfflineDownload);
    refused_login(&fs, from, id, ClientFileRole::ClientOfflineUpload);

    fs.restart();
    for (id, file) in &stored[3..] {
        assert_eq!(download(&fs, id, from, to, file.len()), *file);
    }

    // Deletion through the msg_server port: a malformed id and other users are refused.
    let mut msg = fs.msg_link();
    let (id, file) = &stored[4];
    let del = |task_id: &str, from: u32, to: u32| ImFileDelOfflineReq {
        from_user_id: from,
        to_user_id: to,
        task_id: task_id.as_bytes().to_vec(),
    };
    msg.notify(&del("../../etc", from, to));
    fs.wait_log("not deleted: malformed task id");
    msg.notify(&del(id, from, 99));
    fs.wait_log("not deleted: the file belongs to other users");
    assert_eq!(download(&fs, id, from, to, file.len()), *file);
    msg.notify(&del(id, from, to));
    fs.wait_log(&format!("offline file of task {id} ("));
    assert!(!fs.offline_path(id).exists());
    refused_login(&fs, to, id, ClientFileRole::ClientOfflineDownload);
    assert_eq!(ip_rsp(&mut msg).len(), 1, "the link goes on");
}

#[test]
fn bounds_refuse_without_closing_the_link() {
    let fs = FileServer::start(
        "fs-bounds",
        "MaxFileSize=800000\nMaxTasks=3\nOfflineDiskLimitMB=1\n",
    );
    let mut msg = fs.msg_link();
    let refused = |msg: &mut PduClient, size: u32, mode: TransferFileType| {
        let rsp = transfer_req(msg, 31, 32, size, mode);
        assert_eq!(rsp.result_code, 1, "{size} bytes {mode:?}");
        assert_eq!(rsp.task_id.as_deref(), Some(&b""[..]));
    };
    refused(&mut msg, 800_001, TransferFileType::FileTypeOnline);
    // The disk limit counts reservations: 600 000 fits in 1 MiB, another 600 000 does not.
    let big = new_task(&mut msg, 31, 32, 600_000, TransferFileType::FileTypeOffline);
    refused(&mut msg, 600_000, TransferFileType::FileTypeOffline);
    let online = new_task(&mut msg, 31, 32, 10, TransferFileType::FileTypeOnline);
    let third = new_task(&mut msg, 31, 32, 10, TransferFileType::FileTypeOffline);
    refused(&mut msg, 10, TransferFileType::FileTypeOnline);
    assert_eq!(ip_rsp(&mut msg).len(), 1, "the link goes on");

    // The upload of `big` dies with its connection: the reservation and a task slot are
    // given back, nothing stays on disk.
    let mut c = fs.client();
    assert_eq!(
        login(&mut c, 31, &big, ClientFileRole::ClientOfflineUpload),
        0
    );
    c.expect::<ImFilePullDataReq>();
    let temp = fs.offline_path(&big).with_file_name(format!("{big}.tmp"));
    assert!(
        temp.exists(),
        "the upload is written under a temporary name"
    );
    c.stream().shutdown(std::net::Shutdown::Write).unwrap();
    c.expect_closed();
    let second = new_task(&mut msg, 31, 32, 600_000, TransferFileType::FileTypeOffline);
    assert!(!temp.exists() && !fs.offline_path(&big).exists());
    refused_login(&fs, 31, &big, ClientFileRole::ClientOfflineUpload);
    // Three tasks again: the limit holds.
    refused(&mut msg, 10, TransferFileType::FileTypeOnline);
    for id in [&online, &third, &second] {
        assert_ne!(id, &big);
    }
}

#[test]
fn a_second_sender_is_refused_while_the_first_transfer_completes() {
    let fs = FileServer::start("fs-second", "");
    let mut msg = fs.msg_link();
    let (id, mut sender, mut receiver) = online_pair(&fs, &mut msg, 41, 42);
    refused_login(&fs, 41, &id, ClientFileRole::ClientRealtimeSender);
    refused_login(&fs, 42, &id, ClientFileRole::ClientRealtimeRecver);
    relay(
        &id,
        &mut sender,
        &mut receiver,
        41,
        42,
        &pseudo_random_bytes(70_000, 3),
    );

    // Offline: a second uploader is refused, the first one's upload completes.
    let file = pseudo_random_bytes(BLOCK + 5, 5);
    let up = new_task(
        &mut msg,
        41,
        42,
        file.len() as u32,
        TransferFileType::FileTypeOffline,
    );
    let mut first = fs.client();
    assert_eq!(
        login(&mut first, 41, &up, ClientFileRole::ClientOfflineUpload),
        0
    );
    refused_login(&fs, 41, &up, ClientFileRole::ClientOfflineUpload);
    for _ in 0..2 {
        let (h, req) = first.expect::<ImFilePullDataReq>();
        let at = req.offset as usize;
        first.reply(
            &h,
            &ImFilePullDataRsp {
                result_code: 0,
                task_id: up.as_bytes().to_vec(),
                user_id: 41,
                offset: req.offset,
                file_data: file[at..at + req.data_size as usize].to_vec(),
            },
        );
    }
    expect_state(&mut first, ClientFileState::ClientFileDone, &up, 41);
    first.expect_closed();
    assert_eq!(download(&fs, &up, 41, 42, file.len()), file);
}

#[test]
fn bad_input_is_refused_and_other_transfers_go_on() {
    let fs = FileServer::start("fs-bad", "");
    let mut msg = fs.msg_link();
    let closed = |bytes: &[u8]| {
        let mut c = fs.client();
        let _ = c.try_send_bytes(bytes);
        c.expect_closed();
    };
    // Garbage, a length under 16, a PDU over the limit, a truncated login body.
    closed(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    closed(&[0, 0, 0, 3, 0, 1, 0, 0, 0, 5, 5, 1, 0, 0, 0, 0]);
    closed(&[0, 0x10, 0, 0, 0, 1, 0, 0, 0, 5, 5, 1, 0, 0, 0, 0]);
    let login_pdu = Pdu::command(
        1,
        &ImFileLoginReq {
            user_id: 1,
            task_id: b"0b7c9a52-3f1e-4c2d-9a8b-5e6f7a8b9c0d".to_vec(),
            file_role: ClientFileRole::ClientOfflineDownload as i32,
        },
    );
    let cut = Pdu::with_header(login_pdu.header, login_pdu.body[..5].to_vec());
    closed(&cut.to_bytes());
    // A pull before any login.
    let pull = ImFilePullDataReq {
        task_id: b"0b7c9a52-3f1e-4c2d-9a8b-5e6f7a8b9c0d".to_vec(),
        user_id: 1,
        trans_mode: TransferFileType::FileTypeOffline as i32,
        offset: 0,
        data_size: 10,
    };
    closed(&Pdu::command(1, &pull).to_bytes());
    // Unknown, malformed and path-like task ids, an unknown role.
    refused_login(
        &fs,
        1,
        "0b7c9a52-3f1e-4c2d-9a8b-5e6f7a8b9c0d",
        ClientFileRole::ClientOfflineDownload,
    );
    refused_login(
        &fs,
        1,
        "../../../../etc/passwd",
        ClientFileRole::ClientOfflineDownload,
    );
    refused_login(&fs, 1, "", ClientFileRole::ClientRealtimeSender);
    let bad_role = ImFileLoginReq {
        user_id: 1,
        task_id: b"x".to_vec(),
        file_role: 9,
    };
    closed(&Pdu::command(1, &bad_role).to_bytes());

    // The msg_server port: a truncated transfer request is ignored, the link goes on; garbage
    // closes that link only.
    let req = Pdu::command(
        7,
        &ImFileTransferReq {
            from_user_id: 1,
            to_user_id: 2,
            file_name: b"x".to_vec(),
            file_size: 1,
            trans_mode: TransferFileType::FileTypeOffline as i32,
            attach_data: None,
        },
    );
    msg.send_pdu(&Pdu::with_header(req.header, req.body[..3].to_vec()));
    assert_eq!(ip_rsp(&mut msg).len(), 1);
    let mut junk = fs.msg_link();
    let _ = junk.try_send_bytes(&[0xff; 64]);
    junk.expect_closed();

    // An uploader whose block is short, or at the wrong offset, is closed; nothing is stored.
    let (from, to) = (51, 52);
    for (offset, len) in [(0u32, BLOCK - 1), (BLOCK as u32, BLOCK)] {
        let id = new_task(
            &mut msg,
            from,
            to,
            3 * BLOCK as u32,
            TransferFileType::FileTypeOffline,
        );
        let mut c = fs.client();
        assert_eq!(
            login(&mut c, from, &id, ClientFileRole::ClientOfflineUpload),
            0
        );
        let (h, _) = c.expect::<ImFilePullDataReq>();
        c.reply(
            &h,
            &ImFilePullDataRsp {
                result_code: 0,
                task_id: id.as_bytes().to_vec(),
                user_id: from,
                offset,
                file_data: vec![7; len],
            },
        );
        c.expect_closed();
        ip_rsp(&mut msg);
        let sub = fs.offline_path(&id).parent().unwrap().to_path_buf();
        let left: Vec<_> = std::fs::read_dir(&sub)
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(
            !left.iter().any(|n| n.to_string_lossy().starts_with(&id)),
            "{left:?}"
        );
    }

    // A download pull at the wrong offset closes the downloader; a new login can start over.
    let file = pseudo_random_bytes(2 * BLOCK, 7);
    let id = new_task(
        &mut msg,
        from,
        to,
        file.len() as u32,
        TransferFileType::FileTypeOffline,
    );
    upload(&fs, &id, from, &file);
    let mut c = fs.client();
    assert_eq!(
        login(&mut c, to, &id, ClientFileRole::ClientOfflineDownload),
        0
    );
    c.send(&ImFilePullDataReq {
        task_id: id.as_bytes().to_vec(),
        user_id: to,
        trans_mode: TransferFileType::FileTypeOffline as i32,
        offset: BLOCK as u32,
        data_size: BLOCK as u32,
    });
    c.expect_closed();
    assert_eq!(download(&fs, &id, from, to, file.len()), file);
}

#[test]
fn a_store_that_cannot_be_written_cancels_the_upload() {
    let dir_file = "not-a-directory";
    let fs = FileServer::start("fs-nodisk", &format!("OfflineFileDir={dir_file}\n"));
    std::fs::write(fs.dir.path().join(dir_file), b"x").unwrap();
    let mut msg = fs.msg_link();
    let id = new_task(&mut msg, 61, 62, 10, TransferFileType::FileTypeOffline);
    let mut c = fs.client();
    assert_eq!(
        login(&mut c, 61, &id, ClientFileRole::ClientOfflineUpload),
        0
    );
    expect_state(&mut c, ClientFileState::ClientFileCancel, &id, 61);
    c.expect_closed();
    assert_eq!(ip_rsp(&mut msg).len(), 1, "the daemon goes on");
}

#[test]
fn waiting_tasks_and_old_files_expire() {
    let mut fs = FileServer::start(
        "fs-expiry",
        "TaskWaitTimeout=1\nOfflineFileDays=7\nOfflineFileCheckInterval=1\n",
    );
    let mut msg = fs.msg_link();
    // A sender whose receiver never comes is closed with its task.
    let id = new_task(&mut msg, 71, 72, 10, TransferFileType::FileTypeOnline);
    let mut sender = fs.client();
    assert_eq!(
        login(&mut sender, 71, &id, ClientFileRole::ClientRealtimeSender),
        0
    );
    sender.expect_closed();
    refused_login(&fs, 72, &id, ClientFileRole::ClientRealtimeRecver);

    // A stored file older than OfflineFileDays is deleted by the periodic check.
    let file = pseudo_random_bytes(100, 9);
    let id = new_task(&mut msg, 71, 72, 100, TransferFileType::FileTypeOffline);
    upload(&fs, &id, 71, &file);
    let path = fs.offline_path(&id);
    let old = SystemTime::now() - Duration::from_secs(8 * 86_400);
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(old)
        .unwrap();
    fs.wait_log(&format!("offline file of task {id} expired"));
    assert!(!path.exists());
    refused_login(&fs, 72, &id, ClientFileRole::ClientOfflineDownload);
}
