//! Offline files (storage-file.md §5.24 – §5.26; the original's `FileAction.cpp`): the list
//! of files waiting for a user, and the rows msg_server adds when a sender leaves a file for
//! an offline receiver and deletes when the transfer is done.

use tt_proto::pb::base_define::OfflineFileInfo;
use tt_proto::pb::file::{
    ImFileAddOfflineReq, ImFileDelOfflineReq, ImFileHasOfflineReq, ImFileHasOfflineRsp,
};

use super::Shared;
use crate::model::now_secs;
use crate::model::transmit_file::{self, OfflineFile};
use crate::store::Stores;

/// Longest task id, in characters (`IMTransmitFile.taskId`; file_server's are 36-character
/// UUIDs).
const MAX_TASK_ID: usize = 64;
/// Longest file name, in characters (`IMTransmitFile.fileName`).
const MAX_FILE_NAME: usize = 255;

/// Whether `value` is UTF-8 text of at most `max` characters, as its column stores it; logs
/// why not.
fn fits(what: &str, value: &[u8], max: usize, from: u32, to: u32) -> bool {
    let problem = match std::str::from_utf8(value) {
        Err(_) => "not UTF-8".to_owned(),
        Ok(s) if s.chars().count() > max => format!("over {max} characters"),
        Ok(_) => return true,
    };
    log::warn!("offline file {from}->{to}: {what} {problem}; refused");
    false
}

/// The files waiting for the user (§5.24), oldest first, at most
/// [`transmit_file::MAX_LISTED`]; msg_server fills in the file_server addresses. A failed
/// query gives an empty list.
pub fn has_offline(
    st: &mut Stores,
    _sh: &Shared,
    req: ImFileHasOfflineReq,
) -> Option<ImFileHasOfflineRsp> {
    let files = transmit_file::waiting_for(&mut st.slave, req.user_id).unwrap_or_default();
    Some(ImFileHasOfflineRsp {
        user_id: req.user_id,
        offline_file_list: files
            .into_iter()
            .map(|f| OfflineFileInfo {
                from_user_id: f.from,
                task_id: f.task_id,
                file_name: f.file_name,
                file_size: f.size,
            })
            .collect(),
        ip_addr_list: Vec::new(),
        attach_data: req.attach_data,
    })
}

/// Stores a file left for an offline receiver (§5.25); no reply. A task id or file name
/// longer than its column is refused.
pub fn add_offline(st: &mut Stores, _sh: &Shared, req: ImFileAddOfflineReq) {
    let (from, to) = (req.from_user_id, req.to_user_id);
    if !fits("task id", &req.task_id, MAX_TASK_ID, from, to)
        || !fits("file name", &req.file_name, MAX_FILE_NAME, from, to)
    {
        return;
    }
    let file = OfflineFile {
        from,
        task_id: req.task_id,
        file_name: req.file_name,
        size: req.file_size,
    };
    let _ = transmit_file::add(&mut st.master, to, &file, now_secs());
}

/// Deletes the rows of a finished or refused offline transfer (§5.26); no reply. The task id
/// is a bound parameter (the original formatted it into the statement unescaped).
pub fn del_offline(st: &mut Stores, _sh: &Shared, req: ImFileDelOfflineReq) {
    let (from, to) = (req.from_user_id, req.to_user_id);
    if !fits("task id", &req.task_id, MAX_TASK_ID, from, to) {
        return;
    }
    if let Ok(0) = transmit_file::delete(&mut st.master, from, to, &req.task_id) {
        log::info!("offline file {from}->{to}: no row of that task to delete");
    }
}
