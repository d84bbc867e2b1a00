//! The file_server state and dispatch (the original's `FileMsgServerConn`, `FileClientConn`
//! and `TransferTaskManager`), run by `tt_common::PduServer`.
//!
//! Two kinds of connections, by the listener that accepted them:
//! - msg_server links (`msg_side.rs`): address list, transfer requests, offline-file
//!   deletions; heartbeats echoed; closed after 30 s of receive silence;
//! - clients (`client_side.rs`): one task per connection (file login, pulls, state);
//!   heartbeats echoed; closed after 120 s of receive silence.
//!
//! The last block of an upload hands the file to the finisher thread (`finisher.rs`); its
//! outcome comes back as a message, and a graceful stop waits for it.
//!
//! Once a second, tasks past their wait deadline whose peers are not all logged in are dropped
//! (their connections closed); every `OfflineFileCheckInterval` stored files past their age are
//! deleted.

use std::collections::HashMap;
use std::time::Instant;

use crossbeam_channel::Sender;
use netlib::{CloseReason, ConnId, ListenerId, Net};
use tt_common::metrics::Scrape;
use tt_common::pdu_io::{self, CLIENT_TIMEOUT, SERVER_TIMEOUT, peer_name};
use tt_common::{Accepted, KeepAlive, PduService};
use tt_proto::ids::cid;
use tt_proto::pb::base_define::{ClientFileRole, ClientFileState};
use tt_proto::pb::file::ImFileState;
use tt_proto::pdu::Header;

use crate::finisher::{Finished, Job};
use crate::settings::{Limits, Settings};
use crate::store::Store;
use crate::task_id::Random;
use crate::tasks::Tasks;

/// Largest PDU from a client: a 32 KiB offline block, the Windows client's 34 KiB online
/// chunks, with room for other clients' larger chunks.
pub const MAX_CLIENT_PDU_LEN: u32 = 256 * 1024;
/// Largest PDU from a msg_server (a transfer request carries a file name).
pub const MAX_MSG_SERVER_PDU_LEN: u32 = 64 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    MsgServer,
    Client,
}

/// A logged-in client connection: its user, task and role.
#[derive(Debug)]
pub struct Client {
    pub user: u32,
    pub task: String,
    pub role: ClientFileRole,
}

pub struct FileServer {
    listeners: Vec<(ListenerId, Kind)>,
    pub(crate) advertised: Vec<String>,
    pub(crate) client_port: u16,
    pub(crate) limits: Limits,
    pub(crate) tasks: Tasks,
    pub(crate) clients: HashMap<ConnId, Client>,
    pub(crate) store: Store,
    pub(crate) random: Random,
    check_interval: std::time::Duration,
    next_check: Option<Instant>,
    /// Uploads to finish, to the finisher thread.
    pub(crate) finisher: Sender<Job>,
}

impl FileServer {
    pub fn new(
        listeners: Vec<(ListenerId, Kind)>,
        settings: &Settings,
        store: Store,
        random: Random,
        finisher: Sender<Job>,
    ) -> FileServer {
        FileServer {
            listeners,
            advertised: settings.advertised_ips.clone(),
            client_port: settings.client_port,
            limits: settings.limits,
            tasks: Tasks::default(),
            clients: HashMap::new(),
            store,
            random,
            check_interval: settings.store.check_interval,
            next_check: None,
            finisher,
        }
    }

    /// Drops a task: its connections are closed, an upload under way removed, its disk
    /// reservation given back.
    /// After the loop ended (a stop cut at `StopTimeout`): the temporary files of uploads
    /// still under way are removed.
    pub fn abort_uploads(&mut self) {
        for mut task in self.tasks.take_all() {
            if let Some(upload) = task.upload.take() {
                log::info!("task {}: upload cut by the stop; removed", task.id);
                upload.abort();
            }
        }
    }

    pub(crate) fn drop_task(&mut self, net: &mut Net, id: &str) {
        let Some(mut task) = self.tasks.remove(id) else {
            return;
        };
        for conn in task.conns() {
            self.clients.remove(&conn);
            net.close(conn);
        }
        if let Some(upload) = task.upload.take() {
            upload.abort();
        }
        self.store.release(task.reserved);
    }
}

/// At most 64 characters of a peer's text, for log lines.
pub(crate) fn cut(s: &str) -> &str {
    match s.char_indices().nth(64) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Sends `IMFileState` (seq 0).
pub(crate) fn send_state(
    net: &mut Net,
    conn: ConnId,
    state: ClientFileState,
    task_id: &str,
    user_id: u32,
) {
    let m = ImFileState {
        state: state as i32,
        task_id: task_id.as_bytes().to_vec(),
        user_id,
    };
    pdu_io::send(net, conn, 0, &m);
}

impl PduService for FileServer {
    type Kind = Kind;
    type Msg = Finished;

    fn accept(&mut self, _net: &mut Net, accepted: Accepted) -> Option<Kind> {
        let &(_, kind) = self
            .listeners
            .iter()
            .find(|(id, _)| *id == accepted.listener)?;
        if kind == Kind::MsgServer {
            log::info!(
                "msg_server link {:?} from {} accepted",
                accepted.conn,
                accepted.peer
            );
        }
        Some(kind)
    }

    fn keep_alive(&self, _conn: ConnId, kind: Kind) -> KeepAlive {
        let timeout = match kind {
            Kind::MsgServer => SERVER_TIMEOUT,
            Kind::Client => CLIENT_TIMEOUT,
        };
        KeepAlive {
            heartbeat: None,
            timeout,
        }
    }

    fn max_pdu_len(&self, kind: Kind) -> u32 {
        match kind {
            Kind::MsgServer => MAX_MSG_SERVER_PDU_LEN,
            Kind::Client => MAX_CLIENT_PDU_LEN,
        }
    }

    fn echo_heartbeat(&self, _kind: Kind) -> bool {
        true
    }

    fn pdu(&mut self, net: &mut Net, conn: ConnId, kind: Kind, header: &Header, body: &[u8]) {
        match (kind, header.command_id) {
            (Kind::MsgServer, cid::CID_OTHER_FILE_SERVER_IP_REQ) => {
                self.on_ip_req(net, conn, header)
            }
            (Kind::MsgServer, cid::CID_OTHER_FILE_TRANSFER_REQ) => {
                self.on_transfer_req(net, conn, header, body)
            }
            (Kind::MsgServer, cid::CID_FILE_DEL_OFFLINE_REQ) => {
                self.on_del_offline(net, conn, body)
            }
            (Kind::Client, cid::CID_FILE_LOGIN_REQ) => self.on_login(net, conn, header, body),
            (Kind::Client, cid::CID_FILE_PULL_DATA_REQ) => {
                self.on_pull_req(net, conn, header, body)
            }
            (Kind::Client, cid::CID_FILE_PULL_DATA_RSP) => {
                self.on_pull_rsp(net, conn, header, body)
            }
            (Kind::Client, cid::CID_FILE_STATE) => self.on_state(net, conn, header, body),
            (_, other) => log::warn!(
                "{kind:?} {conn:?} ({}): unhandled command 0x{other:04x}, ignored",
                peer_name(net, conn)
            ),
        }
    }

    fn closed(&mut self, net: &mut Net, conn: ConnId, kind: Kind, reason: CloseReason) {
        match kind {
            Kind::MsgServer => log::info!("msg_server link {conn:?} closed ({reason:?})"),
            Kind::Client => self.client_closed(net, conn),
        }
    }

    /// Tasks still waiting for a peer are dropped; transfers under way go on (to the end, or
    /// until `StopTimeout`).
    fn stop(&mut self, net: &mut Net) {
        let waiting = self.tasks.inactive();
        for id in &waiting {
            self.drop_task(net, id);
        }
        log::info!(
            "stopping: {} tasks waiting for a peer dropped, {} transfers under way",
            waiting.len(),
            self.tasks.active_count()
        );
    }

    fn drained(&self, _net: &Net) -> bool {
        self.tasks.active_count() == 0 && self.store.finishing_count() == 0
    }

    fn message(&mut self, net: &mut Net, done: Finished) {
        self.upload_finished(net, done);
    }

    fn metrics(&self, out: &mut Scrape) {
        let active = self.tasks.active_count();
        out.gauge(
            "tt_files_in_transfer",
            "Tasks with their peers connected: a file being sent",
            active as i64,
        );
        out.gauge(
            "tt_file_tasks_waiting",
            "Tasks waiting for their peers to log in",
            (self.tasks.len() - active) as i64,
        );
        out.gauge(
            "tt_offline_file_bytes",
            "Disk taken by offline files (reservations of uploads under way included)",
            i64::try_from(self.store.used()).unwrap_or(i64::MAX),
        );
    }

    fn tick(&mut self, net: &mut Net) {
        let now = net.now();
        for id in self.tasks.overdue(now) {
            log::info!(
                "task {id}: its peers did not all log in within {:?}; dropped",
                self.limits.task_wait
            );
            self.drop_task(net, &id);
        }
        if self.next_check.is_none_or(|t| now >= t) {
            if self.next_check.is_some() {
                let deleted = self.store.sweep(std::time::SystemTime::now(), false);
                if deleted > 0 {
                    log::info!(
                        "{deleted} expired offline files deleted; {} bytes stored",
                        self.store.used()
                    );
                }
            }
            self.next_check = Some(now + self.check_interval);
        }
    }
}
