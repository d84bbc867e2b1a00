//! File transfer through msg_server: asking for a transfer task, the notices of files sent to
//! us, offline files (list, add, delete). The bytes go through file_server: see
//! [`crate::file_transfer`].

use tt_proto::pb::base_define::{IpAddr, TransferFileType};
use tt_proto::pb::file;

use super::Client;
use crate::{Result, text};

/// Where a file_server listens for clients (`IpAddr`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FileServerAddr {
    pub ip: String,
    pub port: u16,
}

impl FileServerAddr {
    fn list(addrs: Vec<IpAddr>) -> Vec<FileServerAddr> {
        addrs
            .into_iter()
            .filter_map(|a| {
                Some(FileServerAddr {
                    ip: text(&a.ip),
                    port: u16::try_from(a.port).ok()?,
                })
            })
            .collect()
    }
}

/// The answer to [`Client::request_file`] (`IMFileRsp`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileTask {
    /// 0: a task was created; 1: refused (no file_server, a bad request).
    pub result_code: u32,
    pub to_user_id: u32,
    pub file_name: String,
    /// The task id (empty when refused).
    pub task_id: String,
    /// Where to send the bytes.
    pub addrs: Vec<FileServerAddr>,
    /// The mode the server chose: an online request to a receiver with no PC client online
    /// becomes offline.
    pub offline: bool,
}

/// A file sent to us (`CID_FILE_NOTIFY`): an online transfer waiting for us to take it, or an
/// offline file uploaded and ready (`offline_ready`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileNotice {
    pub from_user_id: u32,
    pub to_user_id: u32,
    pub file_name: String,
    pub file_size: u32,
    pub task_id: String,
    pub addrs: Vec<FileServerAddr>,
    /// Offline transfer (else online).
    pub offline: bool,
    /// For an offline file: uploaded, ready to download.
    pub offline_ready: bool,
}

impl From<file::ImFileNotify> for FileNotice {
    fn from(n: file::ImFileNotify) -> FileNotice {
        FileNotice {
            from_user_id: n.from_user_id,
            to_user_id: n.to_user_id,
            file_name: text(&n.file_name),
            file_size: n.file_size,
            task_id: text(&n.task_id),
            addrs: FileServerAddr::list(n.ip_addr_list),
            offline: n.trans_mode == TransferFileType::FileTypeOffline as i32,
            offline_ready: n.offline_ready != 0,
        }
    }
}

/// One offline file waiting for us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfflineFile {
    pub from_user_id: u32,
    pub task_id: String,
    pub file_name: String,
    pub file_size: u32,
}

/// The answer to [`Client::offline_files`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfflineFiles {
    pub files: Vec<OfflineFile>,
    /// Where to download them (empty when msg_server has no file_server).
    pub addrs: Vec<FileServerAddr>,
}

impl Client {
    /// Asks for a transfer task (`CID_FILE_REQUEST`) for a file of `file_size` bytes to
    /// `to_user_id`, online or offline, and waits for msg_server's answer. An online request
    /// may come back offline (the receiver has no PC client online); a refusal is result 1.
    pub fn request_file(
        &mut self,
        to_user_id: u32,
        file_name: &str,
        file_size: u32,
        offline: bool,
    ) -> Result<FileTask> {
        let mode = if offline {
            TransferFileType::FileTypeOffline
        } else {
            TransferFileType::FileTypeOnline
        };
        let req = file::ImFileReq {
            from_user_id: self.user_id,
            to_user_id,
            file_name: file_name.as_bytes().to_vec(),
            file_size,
            trans_mode: mode as i32,
        };
        let (_, rsp): (_, file::ImFileRsp) = self.request(&req, "file transfer answer")?;
        Ok(FileTask {
            result_code: rsp.result_code,
            to_user_id: rsp.to_user_id,
            file_name: text(&rsp.file_name),
            task_id: text(&rsp.task_id),
            addrs: FileServerAddr::list(rsp.ip_addr_list),
            offline: rsp.trans_mode == TransferFileType::FileTypeOffline as i32,
        })
    }

    /// The offline files waiting for us (`CID_FILE_HAS_OFFLINE_REQ`).
    pub fn offline_files(&mut self) -> Result<OfflineFiles> {
        let req = file::ImFileHasOfflineReq {
            user_id: self.user_id,
            attach_data: None,
        };
        let (_, rsp): (_, file::ImFileHasOfflineRsp) = self.request(&req, "offline files")?;
        Ok(OfflineFiles {
            files: rsp
                .offline_file_list
                .into_iter()
                .map(|f| OfflineFile {
                    from_user_id: f.from_user_id,
                    task_id: text(&f.task_id),
                    file_name: text(&f.file_name),
                    file_size: f.file_size,
                })
                .collect(),
            addrs: FileServerAddr::list(rsp.ip_addr_list),
        })
    }

    /// Records an uploaded offline file for its receiver (`CID_FILE_ADD_OFFLINE_REQ`, what the
    /// official clients send after an offline upload; no answer). The receiver is notified.
    pub fn add_offline_file(&mut self, task: &FileTask, file_size: u32) -> Result<()> {
        let req = file::ImFileAddOfflineReq {
            from_user_id: self.user_id,
            to_user_id: task.to_user_id,
            task_id: task.task_id.as_bytes().to_vec(),
            file_name: task.file_name.as_bytes().to_vec(),
            file_size,
        };
        self.send_command(&req).map(drop)
    }

    /// Deletes an offline file (`CID_FILE_DEL_OFFLINE_REQ`, no answer): its record, and the
    /// stored file on the file_servers.
    pub fn delete_offline_file(
        &mut self,
        from_user_id: u32,
        to_user_id: u32,
        task_id: &str,
    ) -> Result<()> {
        let req = file::ImFileDelOfflineReq {
            from_user_id,
            to_user_id,
            task_id: task_id.as_bytes().to_vec(),
        };
        self.send_command(&req).map(drop)
    }
}
