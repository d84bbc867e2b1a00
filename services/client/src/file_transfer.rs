//! The file_server side of a transfer (storage-file.md §7.4–7.6): a blocking connection to
//! a file_server's client port, logged in to one task with one role, that serves or takes the
//! file's bytes.
//!
//! ```no_run
//! use tt_client::file_transfer::{FileConn, FileRole};
//! # fn run(c: &mut tt_client::Client, data: &[u8]) -> tt_client::Result<()> {
//! let task = c.request_file(2, "notes.txt", data.len() as u32, true)?;
//! let mut up = FileConn::open(&task.addrs, c.user_id(), &task.task_id, FileRole::OfflineUpload)?;
//! up.serve(&mut std::io::Cursor::new(data), data.len() as u64)?;
//! c.add_offline_file(&task, data.len() as u32)?;
//! # Ok(()) }
//! ```
//!
//! Who drives: the receiver of an online transfer pulls blocks (the Windows client's
//! [`ONLINE_BLOCK`]) that file_server relays to the sender; an offline upload is pulled by
//! file_server in [`OFFLINE_BLOCK`]s; an offline download pulls `OFFLINE_BLOCK`s at offsets
//! `i × OFFLINE_BLOCK`. Each ends with `FILE_STATE` DONE; CANCEL, REFUSE or a close before
//! that is an [`Error::Transfer`].

use std::io::{Read, Seek, SeekFrom, Write};
use std::time::Duration;

use tt_proto::Pdu;
use tt_proto::ids::cid;
use tt_proto::pb::base_define::{ClientFileRole, ClientFileState, TransferFileType};
use tt_proto::pb::file;

use crate::client::{Client, Event, FileServerAddr};
use crate::{Error, Result};

/// The block an online receiver asks for (what the Windows client asks for).
pub const ONLINE_BLOCK: u32 = 34 * 1024;
/// The block of offline uploads and downloads (file_server's).
pub const OFFLINE_BLOCK: u32 = 32 * 1024;
/// The most a sender serves for one pull; a receiver asking for more gets this much.
pub const MAX_SERVED_BLOCK: u32 = 1024 * 1024;
/// Default wait for the next step of a transfer (the peer's or file_server's).
pub const DEFAULT_STEP_WAIT: Duration = Duration::from_secs(60);

/// Which side of a task a connection is (`ClientFileRole`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileRole {
    /// The sender of an online transfer: serves the receiver's pulls.
    OnlineSender,
    /// The receiver of an online transfer: pulls the file from the sender.
    OnlineReceiver,
    /// The sender of an offline file: serves file_server's pulls.
    OfflineUpload,
    /// The receiver of an offline file: pulls it from file_server.
    OfflineDownload,
}

impl FileRole {
    fn wire(self) -> ClientFileRole {
        match self {
            FileRole::OnlineSender => ClientFileRole::ClientRealtimeSender,
            FileRole::OnlineReceiver => ClientFileRole::ClientRealtimeRecver,
            FileRole::OfflineUpload => ClientFileRole::ClientOfflineUpload,
            FileRole::OfflineDownload => ClientFileRole::ClientOfflineDownload,
        }
    }

    fn offline(self) -> bool {
        matches!(self, FileRole::OfflineUpload | FileRole::OfflineDownload)
    }
}

/// A connection to file_server logged in to one task.
pub struct FileConn {
    conn: Client,
    user_id: u32,
    task_id: String,
    role: FileRole,
    wait: Duration,
}

impl std::fmt::Debug for FileConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileConn")
            .field("peer", &self.conn.peer_addr())
            .field("task_id", &self.task_id)
            .field("role", &self.role)
            .finish()
    }
}

impl FileConn {
    /// Connects to the first address of `addrs` that answers and logs in to `task_id` as
    /// `user_id` in `role`. A refused login is an [`Error::Transfer`].
    pub fn open(
        addrs: &[FileServerAddr],
        user_id: u32,
        task_id: &str,
        role: FileRole,
    ) -> Result<FileConn> {
        let mut last = Error::Transfer("no file_server address".into());
        for a in addrs {
            match Client::connect_to((a.ip.as_str(), a.port)) {
                Ok(conn) => return FileConn::login(conn, user_id, task_id, role),
                Err(e) => {
                    log::debug!("connecting to file_server {}:{} failed: {e}", a.ip, a.port);
                    last = e;
                }
            }
        }
        Err(last)
    }

    /// Logs in to `task_id` on an open connection (`CID_FILE_LOGIN_REQ`).
    pub fn login(conn: Client, user_id: u32, task_id: &str, role: FileRole) -> Result<FileConn> {
        let mut c = FileConn {
            conn,
            user_id,
            task_id: task_id.to_string(),
            role,
            wait: DEFAULT_STEP_WAIT,
        };
        let req = file::ImFileLoginReq {
            user_id,
            task_id: task_id.as_bytes().to_vec(),
            file_role: role.wire() as i32,
        };
        let (_, rsp): (_, file::ImFileLoginRsp) = c.conn.request(&req, "file login answer")?;
        if rsp.result_code != 0 {
            return Err(Error::Transfer(format!(
                "file_server refused the login to task {task_id} as {role:?} (result {})",
                rsp.result_code
            )));
        }
        Ok(c)
    }

    /// How long to wait for each next step (the peer's pull or data, file_server's pull or
    /// state). Default [`DEFAULT_STEP_WAIT`].
    pub fn set_step_wait(&mut self, wait: Duration) {
        self.wait = wait.max(Duration::from_millis(1));
    }

    /// The sending side (online sender, offline upload): answers every pull with the bytes of
    /// `src` at the offset and size asked for (at most [`MAX_SERVED_BLOCK`], never past
    /// `size`) until the transfer is DONE. Returns the bytes served.
    pub fn serve<R: Read + Seek>(mut self, src: &mut R, size: u64) -> Result<u64> {
        let mut served = 0u64;
        loop {
            let pdu = self.next_pdu("a pull or the end of the transfer")?;
            match pdu.header.command_id {
                cid::CID_FILE_PULL_DATA_REQ => {
                    let pull: file::ImFilePullDataReq = decode(&pdu)?;
                    let offset = u64::from(pull.offset);
                    let n = u64::from(pull.data_size.min(MAX_SERVED_BLOCK))
                        .min(size.saturating_sub(offset));
                    let mut file_data = vec![0; n as usize];
                    src.seek(SeekFrom::Start(offset))?;
                    src.read_exact(&mut file_data)?;
                    let rsp = file::ImFilePullDataRsp {
                        result_code: 0,
                        task_id: self.task_id.as_bytes().to_vec(),
                        user_id: self.user_id,
                        offset: pull.offset,
                        file_data,
                    };
                    self.conn
                        .send_pdu(&Pdu::command(pdu.header.seq_num, &rsp))?;
                    served += n;
                }
                cid::CID_FILE_STATE => match self.state(&pdu)? {
                    ClientFileState::ClientFileDone => return Ok(served),
                    ClientFileState::ClientFilePeerReady => {}
                    other => return Err(self.ended(other)),
                },
                other => log::debug!("file_server sent {other:#06x}: ignored"),
            }
        }
    }

    /// The receiving side (online receiver, offline download): pulls the `size` bytes of the
    /// file in blocks and writes them to `dst`. An online receiver first waits for the sender
    /// (PEER_READY) and ends the transfer with DONE; a download ends with file_server's DONE.
    /// Returns the bytes received.
    pub fn receive<W: Write>(mut self, dst: &mut W, size: u64) -> Result<u64> {
        if !self.role.offline() {
            loop {
                let pdu = self.next_pdu("the sender")?;
                if pdu.header.command_id == cid::CID_FILE_STATE {
                    match self.state(&pdu)? {
                        ClientFileState::ClientFilePeerReady => break,
                        other => return Err(self.ended(other)),
                    }
                }
            }
        }
        let (block, mode) = if self.role.offline() {
            (OFFLINE_BLOCK, TransferFileType::FileTypeOffline)
        } else {
            (ONLINE_BLOCK, TransferFileType::FileTypeOnline)
        };
        // A 0-byte offline file is one empty block.
        let mut empty_block = self.role.offline() && size == 0;
        let mut offset = 0u64;
        while offset < size || empty_block {
            let ask = (size - offset).min(u64::from(block)) as u32;
            let pull = file::ImFilePullDataReq {
                task_id: self.task_id.as_bytes().to_vec(),
                user_id: self.user_id,
                trans_mode: mode as i32,
                offset: offset as u32,
                data_size: ask,
            };
            self.conn.send_command(&pull)?;
            let data = self.wait_data(offset)?;
            if std::mem::take(&mut empty_block) && data.is_empty() {
                break;
            }
            if data.is_empty() || data.len() as u64 > size - offset {
                return Err(Error::Transfer(format!(
                    "task {}: {} bytes at offset {offset} of a {size}-byte file",
                    self.task_id,
                    data.len()
                )));
            }
            dst.write_all(&data)?;
            offset += data.len() as u64;
        }
        dst.flush()?;
        if self.role.offline() {
            self.wait_done()?;
        } else {
            self.end(ClientFileState::ClientFileDone)?;
        }
        Ok(offset)
    }

    /// Ends the transfer from this side (`FILE_STATE` CANCEL); file_server tells the peer and
    /// closes the connection.
    pub fn cancel(mut self) -> Result<()> {
        self.end(ClientFileState::ClientFileCancel)
    }

    /// Sends `state` (DONE, CANCEL) and waits for file_server to close the connection, as it
    /// does after every state (within the step wait), so the state is read before the socket
    /// goes.
    fn end(&mut self, state: ClientFileState) -> Result<()> {
        let msg = file::ImFileState {
            state: state as i32,
            task_id: self.task_id.as_bytes().to_vec(),
            user_id: self.user_id,
        };
        self.conn.send_command(&msg)?;
        while let Ok(Some(e)) = self.conn.next_event(self.wait) {
            if e == Event::Closed {
                break;
            }
        }
        self.conn.close();
        Ok(())
    }

    /// The data of the pull at `offset`.
    fn wait_data(&mut self, offset: u64) -> Result<Vec<u8>> {
        loop {
            let pdu = self.next_pdu("file data")?;
            match pdu.header.command_id {
                cid::CID_FILE_PULL_DATA_RSP => {
                    let rsp: file::ImFilePullDataRsp = decode(&pdu)?;
                    if rsp.result_code != 0 || u64::from(rsp.offset) != offset {
                        return Err(Error::Transfer(format!(
                            "task {}: pull at offset {offset} answered with result {} at offset {}",
                            self.task_id, rsp.result_code, rsp.offset
                        )));
                    }
                    return Ok(rsp.file_data);
                }
                cid::CID_FILE_STATE => {
                    let state = self.state(&pdu)?;
                    return Err(self.ended(state));
                }
                other => log::debug!("file_server sent {other:#06x}: ignored"),
            }
        }
    }

    /// file_server's DONE after the last block of a download (a close after every byte
    /// arrived counts as done).
    fn wait_done(&mut self) -> Result<()> {
        loop {
            let pdu = match self.next_pdu("the end of the download") {
                Ok(p) => p,
                Err(Error::Transfer(_)) if self.conn.is_closed() => return Ok(()),
                Err(e) => return Err(e),
            };
            if pdu.header.command_id == cid::CID_FILE_STATE {
                return match self.state(&pdu)? {
                    ClientFileState::ClientFileDone => Ok(()),
                    other => Err(self.ended(other)),
                };
            }
        }
    }

    /// The next PDU from file_server; a close is an [`Error::Transfer`], nothing within the
    /// step wait an [`Error::Timeout`].
    fn next_pdu(&mut self, what: &str) -> Result<Pdu> {
        loop {
            match self.conn.next_event(self.wait) {
                Ok(Some(Event::Other(pdu))) => return Ok(pdu),
                Ok(Some(Event::Closed)) | Err(Error::Closed) => {
                    return Err(Error::Transfer(format!(
                        "file_server closed the connection of task {} while waiting for {what}",
                        self.task_id
                    )));
                }
                Ok(Some(e)) => log::debug!("file_server connection: {e:?} ignored"),
                Ok(None) => {
                    return Err(Error::Timeout(format!("{what} (task {})", self.task_id)));
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn state(&self, pdu: &Pdu) -> Result<ClientFileState> {
        let s: file::ImFileState = decode(pdu)?;
        ClientFileState::try_from(s.state)
            .map_err(|_| Error::Protocol(format!("unknown file state {}", s.state)))
    }

    fn ended(&self, state: ClientFileState) -> Error {
        let how = match state {
            ClientFileState::ClientFileCancel => "cancelled",
            ClientFileState::ClientFileRefuse => "refused",
            ClientFileState::ClientFileDone => "ended early",
            ClientFileState::ClientFilePeerReady => "not started",
        };
        Error::Transfer(format!("task {}: the transfer was {how}", self.task_id))
    }
}

fn decode<M: tt_proto::Command>(pdu: &Pdu) -> Result<M> {
    pdu.decode_body::<M>()
        .map_err(|e| Error::Protocol(format!("cannot decode {}: {e}", M::NAME)))
}
