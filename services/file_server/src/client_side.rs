//! The client port (storage-file.md §7.4–§7.6): file login, pull requests and responses,
//! state changes, and what a closed connection does to its task.
//!
//! Online, the receiver's pull requests go to the sender unchanged and the sender's data comes
//! back under the seq of the last pull request. Offline, the server asks the uploader for
//! 32 KiB blocks in order and serves them to the downloader in order. Anything that does not
//! fit the connection's login, task and role closes the connection (a failed login is
//! answered first); when a connection of a task closes, the task goes with it.

use std::os::unix::fs::FileExt;

use netlib::{ConnId, Net};
use tt_common::pdu_io::{self, decode_or_log, peer_name};
use tt_proto::Command;
use tt_proto::pb::base_define::{ClientFileRole, ClientFileState, TransferFileType};
use tt_proto::pb::file::{
    ImFileLoginReq, ImFileLoginRsp, ImFilePullDataReq, ImFilePullDataRsp, ImFileState,
};
use tt_proto::pdu::Header;
use tt_proto::values::{RESULT_FAILED, RESULT_OK};

use crate::finisher::{Finished, Job};
use crate::server::{Client, FileServer, cut, send_state};
use crate::store::{self, BLOCK, HEADER_LEN};
use crate::task_id::is_task_id;
use crate::tasks::{MAX_PENDING_PULLS, Side, State, Task};

/// Why a connection is closed.
type Refusal = String;

impl FileServer {
    pub(crate) fn on_login(&mut self, net: &mut Net, conn: ConnId, header: &Header, body: &[u8]) {
        let Some(req) = decode_or_close::<ImFileLoginReq>(net, conn, body) else {
            return;
        };
        let id = String::from_utf8_lossy(&req.task_id).into_owned();
        let role = ClientFileRole::try_from(req.file_role);
        let result = role
            .map_err(|_| format!("role {}", req.file_role))
            .and_then(|role| self.login(net, conn, req.user_id, &id, role));
        let ok = result.is_ok();
        let rsp = ImFileLoginRsp {
            result_code: if ok { RESULT_OK } else { RESULT_FAILED },
            task_id: req.task_id.clone(),
        };
        pdu_io::reply(net, conn, header, &rsp);
        match result {
            Ok(()) => {
                log::info!(
                    "task {id}: user {} logged in as {} ({conn:?}, {})",
                    req.user_id,
                    role.map_or("?", |r| r.as_str_name()),
                    peer_name(net, conn)
                );
                self.after_login(net, conn, &id);
            }
            Err(why) => {
                log::warn!(
                    "{conn:?} ({}): file login of user {} to task {:?} refused: {why}",
                    peer_name(net, conn),
                    req.user_id,
                    cut(&id)
                );
                net.close(conn);
            }
        }
    }

    fn login(
        &mut self,
        net: &Net,
        conn: ConnId,
        user: u32,
        id: &str,
        role: ClientFileRole,
    ) -> Result<(), Refusal> {
        if self.clients.contains_key(&conn) {
            return Err("this connection is logged in already".into());
        }
        if !is_task_id(id) {
            return Err("malformed task id".into());
        }
        let download = role == ClientFileRole::ClientOfflineDownload;
        let loaded = !self.tasks.contains(id);
        if loaded {
            if !download {
                return Err("no such task".into());
            }
            if self.tasks.len() >= self.limits.max_tasks {
                return Err(format!(
                    "{} tasks in memory (MaxTasks)",
                    self.limits.max_tasks
                ));
            }
            let (h, file) = self.store.load(id).ok_or("no such task or stored file")?;
            let mut task = Task::new(
                id.to_string(),
                h.from,
                h.to,
                h.file_name,
                h.file_size,
                TransferFileType::FileTypeOffline,
                State::WaitingDownload,
                net.now() + self.limits.task_wait,
            );
            task.download = Some(file);
            self.tasks.insert(task);
        }
        let Some(task) = self.tasks.get_mut(id) else {
            return Err("no such task".into());
        };
        let mut result = task.login(user, role).map_err(String::from);
        if result.is_ok() && download && task.download.is_none() {
            match self.store.load(id) {
                Some((_, file)) => task.download = Some(file),
                None => result = Err("the stored file is gone".into()),
            }
        }
        if let Err(why) = result {
            if loaded {
                self.tasks.remove(id);
            }
            return Err(why);
        }
        *task.slot(Side::of(role)) = Some(conn);
        self.clients.insert(
            conn,
            Client {
                user,
                task: id.to_string(),
                role,
            },
        );
        Ok(())
    }

    /// Online: PEER_READY to the receiver once both are in. Offline upload: the first block is
    /// asked for (a 0-byte file is complete at once).
    fn after_login(&mut self, net: &mut Net, conn: ConnId, id: &str) {
        let Some(task) = self.tasks.get_mut(id) else {
            return;
        };
        match task.state {
            State::WaitingTransfer => {
                if let Some(r) = task.receiver {
                    send_state(net, r, ClientFileState::ClientFilePeerReady, id, task.from);
                }
            }
            State::WaitingUpload => {
                let header = store::Header {
                    task_id: id.to_string(),
                    from: task.from,
                    to: task.to,
                    create_time: unix_now(),
                    file_name: task.file_name.clone(),
                    file_size: task.size,
                };
                match self.store.begin_upload(&header) {
                    Ok(upload) => task.upload = Some(upload),
                    Err(e) => {
                        log::error!("task {id}: cannot create its offline file: {e}");
                        send_state(net, conn, ClientFileState::ClientFileCancel, id, task.from);
                        net.close(conn);
                        return;
                    }
                }
                if task.size == 0 {
                    self.finish_upload(net, conn, id);
                } else {
                    request_block(net, conn, task);
                }
            }
            _ => {}
        }
    }

    /// The receiver's pull request: relayed to the sender (online), or the next stored block
    /// (offline).
    pub(crate) fn on_pull_req(
        &mut self,
        net: &mut Net,
        conn: ConnId,
        header: &Header,
        body: &[u8],
    ) {
        let Some(req) = decode_or_close::<ImFilePullDataReq>(net, conn, body) else {
            return;
        };
        if let Err(why) = self.pull_req(net, conn, header, body, &req) {
            refuse(net, conn, "pull request", &why);
        }
    }

    fn pull_req(
        &mut self,
        net: &mut Net,
        conn: ConnId,
        header: &Header,
        body: &[u8],
        req: &ImFilePullDataReq,
    ) -> Result<(), Refusal> {
        let task = self.own_task(conn, req.user_id, &req.task_id, Side::Receiver)?;
        match task.mode {
            TransferFileType::FileTypeOnline => {
                if task.pending_pulls >= MAX_PENDING_PULLS {
                    return Err(format!("over {MAX_PENDING_PULLS} pulls unanswered"));
                }
                transferring(task)?;
                task.pull_seq = header.seq_num;
                task.pending_pulls += 1;
                if let Some(sender) = task.sender {
                    pdu_io::send_raw(net, sender, header, body);
                }
                Ok(())
            }
            TransferFileType::FileTypeOffline => serve_block(net, conn, header, req, task),
        }
    }

    /// The sender's data: relayed to the receiver (online), or the next uploaded block
    /// (offline).
    pub(crate) fn on_pull_rsp(
        &mut self,
        net: &mut Net,
        conn: ConnId,
        header: &Header,
        body: &[u8],
    ) {
        let Some(rsp) = decode_or_close::<ImFilePullDataRsp>(net, conn, body) else {
            return;
        };
        let id = String::from_utf8_lossy(&rsp.task_id).into_owned();
        match self.pull_rsp(net, conn, header, body, &rsp) {
            Ok(Upload::Going) => {}
            Ok(Upload::Complete) => self.finish_upload(net, conn, &id),
            Err(why) => refuse(net, conn, "data", &why),
        }
    }

    fn pull_rsp(
        &mut self,
        net: &mut Net,
        conn: ConnId,
        header: &Header,
        body: &[u8],
        rsp: &ImFilePullDataRsp,
    ) -> Result<Upload, Refusal> {
        let task = self.own_task(conn, rsp.user_id, &rsp.task_id, Side::Sender)?;
        match task.mode {
            TransferFileType::FileTypeOnline => {
                if task.pending_pulls == 0 {
                    return Err("data nobody pulled".into());
                }
                transferring(task)?;
                task.pending_pulls -= 1;
                let relayed = Header {
                    seq_num: task.pull_seq,
                    ..*header
                };
                if let Some(receiver) = task.receiver {
                    pdu_io::send_raw(net, receiver, &relayed, body);
                }
                Ok(Upload::Going)
            }
            TransferFileType::FileTypeOffline => store_block(net, conn, rsp, task),
        }
    }

    /// The task of a logged-in connection, checked against a PDU's user and task id and the
    /// side the PDU belongs to.
    fn own_task(
        &mut self,
        conn: ConnId,
        user: u32,
        task_id: &[u8],
        side: Side,
    ) -> Result<&mut Task, Refusal> {
        let client = self.clients.get(&conn).ok_or("not logged in")?;
        if user != client.user || task_id != client.task.as_bytes() {
            return Err(format!(
                "user {user} / task {:?} is not this connection's",
                cut(&String::from_utf8_lossy(task_id))
            ));
        }
        if Side::of(client.role) != side {
            return Err(format!("not for role {:?}", client.role));
        }
        let task = self.tasks.get_mut(&client.task).ok_or("task is gone")?;
        let peer = match side {
            Side::Sender => task.from,
            Side::Receiver => task.to,
        };
        if user != peer {
            return Err(format!("user {user} is not the task's"));
        }
        Ok(task)
    }

    /// The last block is written: the file goes to the finisher thread to be synced and
    /// renamed to its final name; the uploader hears DONE or CANCEL when it is done
    /// ([`FileServer::upload_finished`]). A full queue gets CANCEL now.
    fn finish_upload(&mut self, net: &mut Net, conn: ConnId, id: &str) {
        let Some(task) = self.tasks.get_mut(id) else {
            return;
        };
        let Some(upload) = task.upload.take() else {
            return;
        };
        let dest = upload.dest().to_path_buf();
        let job = Job {
            task: id.to_owned(),
            conn,
            reserved: std::mem::take(&mut task.reserved),
            upload,
        };
        match self.finisher.try_send(job) {
            Ok(()) => {
                task.state = State::Finishing;
                self.store.finishing(dest);
            }
            Err(e) => {
                let job = e.into_inner();
                log::error!("task {id}: no room to finish its offline file; cancelled");
                self.store.release(job.reserved);
                job.upload.abort();
                send_state(net, conn, ClientFileState::ClientFileCancel, id, task.from);
                net.close(conn);
            }
        }
    }

    /// The finisher thread's outcome: the uploader, if still there, gets DONE (or CANCEL) and
    /// is closed. A file complete on disk is kept even when its uploader left meanwhile.
    pub(crate) fn upload_finished(&mut self, net: &mut Net, done: Finished) {
        self.store.finished(
            &done.dest,
            done.reserved,
            done.result.as_ref().ok().copied(),
        );
        let id = &done.task;
        let task = self
            .tasks
            .get_mut(id)
            .filter(|t| t.state == State::Finishing && t.sender == Some(done.conn));
        let Some(task) = task else {
            match done.result {
                Ok(len) => log::info!(
                    "task {id}: offline file stored ({len} bytes on disk); its uploader left before DONE"
                ),
                Err(e) => log::error!(
                    "task {id}: cannot complete its offline file: {e} (its uploader left)"
                ),
            }
            return;
        };
        let state = match done.result {
            Ok(_) => {
                task.state = State::UploadEnd;
                log::info!("task {id}: offline file of {} bytes stored", task.size);
                ClientFileState::ClientFileDone
            }
            Err(e) => {
                log::error!("task {id}: cannot complete its offline file: {e}");
                ClientFileState::ClientFileCancel
            }
        };
        send_state(net, done.conn, state, id, task.from);
        net.close(done.conn);
    }

    /// A state change: relayed to the other side when it is the connection's own and one of
    /// CANCEL, REFUSE, DONE; the connection is closed in every case.
    pub(crate) fn on_state(&mut self, net: &mut Net, conn: ConnId, header: &Header, body: &[u8]) {
        if let Some(m) = decode_or_log::<ImFileState>(net, conn, body)
            && let Some(client) = self.clients.get(&conn)
            && m.user_id == client.user
            && m.task_id == client.task.as_bytes()
        {
            let relayed = matches!(
                ClientFileState::try_from(m.state),
                Ok(ClientFileState::ClientFileCancel
                    | ClientFileState::ClientFileRefuse
                    | ClientFileState::ClientFileDone)
            );
            if relayed
                && let Some(task) = self.tasks.get_mut(&client.task)
                && let Some(other) = task.opponent(conn)
            {
                pdu_io::send_raw(net, other, header, body);
            }
            log::info!(
                "task {}: user {} sent state {}",
                client.task,
                client.user,
                m.state
            );
        }
        net.close(conn);
    }

    /// A client connection is gone: its task goes with it (an online peer is closed, an
    /// unfinished upload removed).
    pub(crate) fn client_closed(&mut self, net: &mut Net, conn: ConnId) {
        let Some(client) = self.clients.remove(&conn) else {
            return;
        };
        if let Some(task) = self.tasks.get_mut(&client.task) {
            if task.upload.is_some() {
                log::warn!(
                    "task {}: uploader gone after {} of {} blocks; unfinished file removed",
                    client.task,
                    task.next_block,
                    store::blocks(task.size)
                );
            }
            *task.slot(Side::of(client.role)) = None;
        }
        self.drop_task(net, &client.task);
    }
}

/// What a stored block means for the upload.
enum Upload {
    Going,
    Complete,
}

/// An online task moves to Transferring once both peers are in.
fn transferring(task: &mut Task) -> Result<(), Refusal> {
    if !matches!(task.state, State::WaitingTransfer | State::Transferring) {
        return Err(format!("task in state {:?}", task.state));
    }
    task.state = State::Transferring;
    Ok(())
}

/// Asks the uploader for the task's next block (seq 0).
fn request_block(net: &mut Net, conn: ConnId, task: &Task) {
    let req = ImFilePullDataReq {
        task_id: task.id.as_bytes().to_vec(),
        user_id: task.from,
        trans_mode: TransferFileType::FileTypeOffline as i32,
        offset: task.next_block * BLOCK,
        data_size: store::block_len(task.size, task.next_block),
    };
    pdu_io::send(net, conn, 0, &req);
}

/// An uploaded block: at the expected offset and of the expected size, appended to the
/// temporary file; the next block is asked for. A write error gets CANCEL.
fn store_block(
    net: &mut Net,
    conn: ConnId,
    rsp: &ImFilePullDataRsp,
    task: &mut Task,
) -> Result<Upload, Refusal> {
    if !matches!(task.state, State::WaitingUpload | State::Uploading) {
        return Err(format!("task in state {:?}", task.state));
    }
    if rsp.result_code != RESULT_OK {
        return Err(format!("the uploader reported result {}", rsp.result_code));
    }
    let expected = task.next_block * BLOCK;
    let len = store::block_len(task.size, task.next_block);
    if task.next_block >= store::blocks(task.size) || rsp.offset != expected {
        return Err(format!("offset {}, {expected} expected", rsp.offset));
    }
    if rsp.file_data.len() != len as usize {
        return Err(format!(
            "{} bytes at offset {expected}, {len} expected",
            rsp.file_data.len()
        ));
    }
    let upload = task.upload.as_mut().ok_or("no upload under way")?;
    if let Err(e) = upload.write(&rsp.file_data) {
        log::error!("task {}: cannot write its offline file: {e}", task.id);
        send_state(
            net,
            conn,
            ClientFileState::ClientFileCancel,
            &task.id,
            task.from,
        );
        return Err("write error".into());
    }
    task.state = State::Uploading;
    task.next_block += 1;
    if task.next_block == store::blocks(task.size) {
        return Ok(Upload::Complete);
    }
    request_block(net, conn, task);
    Ok(Upload::Going)
}

/// The next stored block for the downloader, at the expected offset (the request's size is
/// not used: blocks are 32 KiB); after the last, DONE and the connection closed. A 0-byte file
/// is one empty block. A read error gets CANCEL.
fn serve_block(
    net: &mut Net,
    conn: ConnId,
    header: &Header,
    req: &ImFilePullDataReq,
    task: &mut Task,
) -> Result<(), Refusal> {
    if !matches!(task.state, State::WaitingDownload | State::Downloading) {
        return Err(format!("task in state {:?}", task.state));
    }
    let total = store::blocks(task.size).max(1);
    let expected = task.next_block * BLOCK;
    if task.next_block >= total || req.offset != expected {
        return Err(format!("offset {}, {expected} expected", req.offset));
    }
    task.state = State::Downloading;
    let file = task.download.as_ref().ok_or("no stored file open")?;
    let mut data = vec![0u8; store::block_len(task.size, task.next_block) as usize];
    if let Err(e) = file.read_exact_at(&mut data, HEADER_LEN + u64::from(expected)) {
        log::error!("task {}: cannot read its offline file: {e}", task.id);
        send_state(
            net,
            conn,
            ClientFileState::ClientFileCancel,
            &task.id,
            task.from,
        );
        return Err("read error".into());
    }
    let rsp = ImFilePullDataRsp {
        result_code: RESULT_OK,
        task_id: req.task_id.clone(),
        user_id: req.user_id,
        offset: req.offset,
        file_data: data,
    };
    pdu_io::reply(net, conn, header, &rsp);
    task.next_block += 1;
    if task.next_block == total {
        task.state = State::UploadEnd;
        task.download = None;
        log::info!("task {}: offline file downloaded by {}", task.id, task.to);
        send_state(
            net,
            conn,
            ClientFileState::ClientFileDone,
            &task.id,
            task.from,
        );
        net.close(conn);
    }
    Ok(())
}

/// A client's PDU body, or `None` with the connection closed (logged by `decode_or_log`).
fn decode_or_close<M: Command>(net: &mut Net, conn: ConnId, body: &[u8]) -> Option<M> {
    let m = decode_or_log(net, conn, body);
    if m.is_none() {
        net.close(conn);
    }
    m
}

/// Logs a refused PDU and closes its connection.
fn refuse(net: &mut Net, conn: ConnId, what: &str, why: &str) {
    log::warn!(
        "{conn:?} ({}): {what} refused: {why}; closing",
        peer_name(net, conn)
    );
    net.close(conn);
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
