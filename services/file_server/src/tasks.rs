//! Transfer tasks (the original's `BaseTransferTask`, `OnlineTransferTask`,
//! `OfflineTransferTask`): one per file, created by a msg_server's transfer request (or, for a
//! download, by loading a stored file), keyed by task id.

use std::collections::HashMap;
use std::fs::File;
use std::time::Instant;

use netlib::ConnId;
use tt_proto::pb::base_define::{ClientFileRole, TransferFileType};

use crate::store::Upload;

/// States of a task (storage-file.md §7.3; the unused ones of the original are left out).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Ready,
    /// Online: the receiver is logged in.
    WaitingSender,
    /// Online: the sender is logged in.
    WaitingReceiver,
    /// Online: both are logged in.
    WaitingTransfer,
    Transferring,
    /// Offline: the uploader is logged in.
    WaitingUpload,
    Uploading,
    /// Offline: every block is written; the file is being synced and renamed (off the loop).
    Finishing,
    UploadEnd,
    WaitingDownload,
    Downloading,
}

/// The connection slot a role takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// Sender or uploader.
    Sender,
    /// Receiver or downloader.
    Receiver,
}

impl Side {
    pub fn of(role: ClientFileRole) -> Side {
        match role {
            ClientFileRole::ClientRealtimeSender | ClientFileRole::ClientOfflineUpload => {
                Side::Sender
            }
            ClientFileRole::ClientRealtimeRecver | ClientFileRole::ClientOfflineDownload => {
                Side::Receiver
            }
        }
    }
}

/// Most pull requests relayed to an online sender and not answered yet.
pub const MAX_PENDING_PULLS: u32 = 16;

/// One file transfer.
#[derive(Debug)]
pub struct Task {
    pub id: String,
    pub from: u32,
    pub to: u32,
    pub file_name: Vec<u8>,
    pub size: u32,
    pub mode: TransferFileType,
    pub state: State,
    pub sender: Option<ConnId>,
    pub receiver: Option<ConnId>,
    /// Dropped at this time unless every peer it waits for is logged in.
    pub deadline: Instant,
    /// Online: seq of the receiver's last pull request.
    pub pull_seq: u16,
    /// Online: pull requests relayed to the sender and not answered.
    pub pending_pulls: u32,
    /// Offline: the next block to upload or download.
    pub next_block: u32,
    pub upload: Option<Upload>,
    pub download: Option<File>,
    /// Disk bytes reserved in the store for this task's upload.
    pub reserved: u64,
}

impl Task {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: String,
        from: u32,
        to: u32,
        file_name: Vec<u8>,
        size: u32,
        mode: TransferFileType,
        state: State,
        deadline: Instant,
    ) -> Task {
        Task {
            id,
            from,
            to,
            file_name,
            size,
            mode,
            state,
            sender: None,
            receiver: None,
            deadline,
            pull_seq: 0,
            pending_pulls: 0,
            next_block: 0,
            upload: None,
            download: None,
            reserved: 0,
        }
    }

    pub fn slot(&mut self, side: Side) -> &mut Option<ConnId> {
        match side {
            Side::Sender => &mut self.sender,
            Side::Receiver => &mut self.receiver,
        }
    }

    /// The connection of the other side than `conn`'s.
    pub fn opponent(&self, conn: ConnId) -> Option<ConnId> {
        if self.sender == Some(conn) {
            self.receiver
        } else if self.receiver == Some(conn) {
            self.sender
        } else {
            None
        }
    }

    /// Every peer the task waits for is connected: online both sides, offline its one side.
    pub fn is_active(&self) -> bool {
        match self.mode {
            TransferFileType::FileTypeOnline => self.sender.is_some() && self.receiver.is_some(),
            TransferFileType::FileTypeOffline => self.sender.is_some() || self.receiver.is_some(),
        }
    }

    /// The connections of the task.
    pub fn conns(&self) -> impl Iterator<Item = ConnId> {
        self.sender.into_iter().chain(self.receiver)
    }

    /// Role check and state change of a login (§7.4 step 2, plus one connection per slot).
    pub fn login(&mut self, user: u32, role: ClientFileRole) -> Result<(), &'static str> {
        use ClientFileRole as R;
        use State as S;
        let side = Side::of(role);
        let (want_user, online) = match role {
            R::ClientRealtimeSender => (self.from, true),
            R::ClientRealtimeRecver => (self.to, true),
            R::ClientOfflineUpload => (self.from, false),
            R::ClientOfflineDownload => (self.to, false),
        };
        if online != (self.mode == TransferFileType::FileTypeOnline) {
            return Err("role does not fit the transfer mode");
        }
        if user != want_user {
            return Err("user is not this task's peer for that role");
        }
        if self.slot(side).is_some() {
            return Err("that role is taken by another connection");
        }
        self.state = match (self.state, role) {
            (S::Ready, R::ClientRealtimeSender) => S::WaitingReceiver,
            (S::Ready, R::ClientRealtimeRecver) => S::WaitingSender,
            (S::WaitingSender, R::ClientRealtimeSender) => S::WaitingTransfer,
            (S::WaitingReceiver, R::ClientRealtimeRecver) => S::WaitingTransfer,
            (S::Ready, R::ClientOfflineUpload) => S::WaitingUpload,
            (S::UploadEnd | S::WaitingDownload, R::ClientOfflineDownload) => S::WaitingDownload,
            _ => return Err("the task is not in a state for that role"),
        };
        Ok(())
    }
}

/// The tasks in memory.
#[derive(Default)]
pub struct Tasks {
    map: HashMap<String, Task>,
}

impl Tasks {
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn contains(&self, id: &str) -> bool {
        self.map.contains_key(id)
    }

    pub fn get_mut(&mut self, id: &str) -> Option<&mut Task> {
        self.map.get_mut(id)
    }

    pub fn insert(&mut self, task: Task) {
        self.map.insert(task.id.clone(), task);
    }

    pub fn remove(&mut self, id: &str) -> Option<Task> {
        self.map.remove(id)
    }

    /// Ids of the tasks whose peers are not all connected (nothing in transfer).
    pub fn inactive(&self) -> Vec<String> {
        self.map
            .values()
            .filter(|t| !t.is_active())
            .map(|t| t.id.clone())
            .collect()
    }

    /// Tasks with their peers connected: a transfer under way.
    pub fn active_count(&self) -> usize {
        self.map.values().filter(|t| t.is_active()).count()
    }

    /// Takes every task out.
    pub fn take_all(&mut self) -> Vec<Task> {
        self.map.drain().map(|(_, t)| t).collect()
    }

    /// Ids of the tasks past their deadline that are not active.
    pub fn overdue(&self, now: Instant) -> Vec<String> {
        self.map
            .values()
            .filter(|t| now > t.deadline && !t.is_active())
            .map(|t| t.id.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(mode: TransferFileType) -> Task {
        Task::new(
            "t".into(),
            1,
            2,
            Vec::new(),
            10,
            mode,
            State::Ready,
            Instant::now(),
        )
    }

    #[test]
    fn online_logins_in_either_order() {
        let mut t = task(TransferFileType::FileTypeOnline);
        assert!(t.login(2, ClientFileRole::ClientRealtimeSender).is_err());
        assert!(t.login(1, ClientFileRole::ClientOfflineUpload).is_err());
        t.login(2, ClientFileRole::ClientRealtimeRecver).unwrap();
        assert_eq!(t.state, State::WaitingSender);
        assert!(t.login(2, ClientFileRole::ClientRealtimeRecver).is_err());
        t.login(1, ClientFileRole::ClientRealtimeSender).unwrap();
        assert_eq!(t.state, State::WaitingTransfer);
    }

    #[test]
    fn offline_upload_then_download() {
        let mut t = task(TransferFileType::FileTypeOffline);
        assert!(t.login(2, ClientFileRole::ClientOfflineDownload).is_err());
        t.login(1, ClientFileRole::ClientOfflineUpload).unwrap();
        assert_eq!(t.state, State::WaitingUpload);
        t.state = State::UploadEnd;
        t.sender = None;
        t.login(2, ClientFileRole::ClientOfflineDownload).unwrap();
        assert_eq!(t.state, State::WaitingDownload);
    }
}
