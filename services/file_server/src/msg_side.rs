//! The msg_server port (storage-file.md §7.2): the address list, transfer requests creating
//! tasks, and deletion of stored offline files.

use netlib::{ConnId, Net};
use tt_common::pdu_io::{self, decode_or_log, peer_name};
use tt_proto::pb::base_define::{IpAddr, TransferFileType};
use tt_proto::pb::file::ImFileDelOfflineReq;
use tt_proto::pb::server::{ImFileServerIpRsp, ImFileTransferReq, ImFileTransferRsp};
use tt_proto::pdu::Header;
use tt_proto::values::{RESULT_FAILED, RESULT_OK};

use crate::server::{FileServer, cut};
use crate::store::{DeleteError, HEADER_LEN};
use crate::tasks::{State, Task};

/// Attempts at drawing a task id that is not in use (a repeat is practically impossible).
const ID_ATTEMPTS: usize = 4;

impl FileServer {
    pub(crate) fn on_ip_req(&mut self, net: &mut Net, conn: ConnId, header: &Header) {
        let rsp = ImFileServerIpRsp {
            ip_addr_list: self
                .advertised
                .iter()
                .map(|ip| IpAddr {
                    ip: ip.as_bytes().to_vec(),
                    port: u32::from(self.client_port),
                })
                .collect(),
        };
        pdu_io::reply(net, conn, header, &rsp);
    }

    /// A task for a transfer request, or a refusal (`result_code` 1, empty task id); the link
    /// stays open either way.
    pub(crate) fn on_transfer_req(
        &mut self,
        net: &mut Net,
        conn: ConnId,
        header: &Header,
        body: &[u8],
    ) {
        let Some(req) = decode_or_log::<ImFileTransferReq>(net, conn, body) else {
            return;
        };
        let mut rsp = ImFileTransferRsp {
            result_code: RESULT_FAILED,
            from_user_id: req.from_user_id,
            to_user_id: req.to_user_id,
            file_name: Some(req.file_name.clone()),
            file_size: Some(req.file_size),
            task_id: Some(Vec::new()),
            trans_mode: Some(req.trans_mode),
            attach_data: req.attach_data.clone(),
        };
        match self.create_task(net, &req) {
            Ok(id) => {
                log::info!(
                    "task {id}: {} file {:?} of {} bytes from {} to {}",
                    if req.trans_mode == TransferFileType::FileTypeOnline as i32 {
                        "online"
                    } else {
                        "offline"
                    },
                    cut(&String::from_utf8_lossy(&req.file_name)),
                    req.file_size,
                    req.from_user_id,
                    req.to_user_id
                );
                rsp.result_code = RESULT_OK;
                rsp.task_id = Some(id.into_bytes());
            }
            Err(why) => log::warn!(
                "msg_server link {conn:?} ({}): transfer request of {} bytes from {} to {} \
                 refused: {why}",
                peer_name(net, conn),
                req.file_size,
                req.from_user_id,
                req.to_user_id
            ),
        }
        pdu_io::reply(net, conn, header, &rsp);
    }

    fn create_task(&mut self, net: &Net, req: &ImFileTransferReq) -> Result<String, String> {
        let mode = TransferFileType::try_from(req.trans_mode)
            .map_err(|_| format!("transfer mode {}", req.trans_mode))?;
        if req.file_size > self.limits.max_file_size {
            return Err(format!(
                "over the {} byte limit (MaxFileSize)",
                self.limits.max_file_size
            ));
        }
        if self.tasks.len() >= self.limits.max_tasks {
            return Err(format!(
                "{} tasks in memory (MaxTasks)",
                self.limits.max_tasks
            ));
        }
        let mut id = None;
        for _ in 0..ID_ATTEMPTS {
            let candidate = self
                .random
                .task_id()
                .map_err(|e| format!("no random task id: {e}"))?;
            if !self.tasks.contains(&candidate) && !self.store.exists(&candidate) {
                id = Some(candidate);
                break;
            }
        }
        let id = id.ok_or("no unused task id")?;
        let mut task = Task::new(
            id.clone(),
            req.from_user_id,
            req.to_user_id,
            req.file_name.clone(),
            req.file_size,
            mode,
            State::Ready,
            net.now() + self.limits.task_wait,
        );
        if mode == TransferFileType::FileTypeOffline {
            let need = HEADER_LEN + u64::from(req.file_size);
            if !self.store.reserve(need) {
                return Err(format!(
                    "the offline files would pass OfflineDiskLimitMB ({} bytes stored)",
                    self.store.used()
                ));
            }
            task.reserved = need;
        }
        self.tasks.insert(task);
        Ok(id)
    }

    /// Deletes a stored offline file when the request's users are those of its header; no
    /// reply.
    pub(crate) fn on_del_offline(&mut self, net: &mut Net, conn: ConnId, body: &[u8]) {
        let Some(req) = decode_or_log::<ImFileDelOfflineReq>(net, conn, body) else {
            return;
        };
        let id = String::from_utf8_lossy(&req.task_id);
        match self.store.delete(&id, req.from_user_id, req.to_user_id) {
            Ok(len) => log::info!(
                "offline file of task {id} ({len} bytes, from {} to {}) deleted",
                req.from_user_id,
                req.to_user_id
            ),
            Err(e) => {
                let why = match e {
                    DeleteError::MalformedId => "malformed task id".to_string(),
                    DeleteError::NotFound => "no such file".to_string(),
                    DeleteError::OtherUsers => "the file belongs to other users".to_string(),
                    DeleteError::Io(e) => e,
                };
                log::warn!(
                    "msg_server link {conn:?} ({}): offline file {:?} of {} to {} not \
                     deleted: {why}",
                    peer_name(net, conn),
                    cut(&id),
                    req.from_user_id,
                    req.to_user_id
                );
            }
        }
    }
}
