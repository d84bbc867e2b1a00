//! Offline files (`FileModel`; storage-file.md §2.3, §5.24 – §5.26): one `IMTransmitFile` row
//! per file a sender left on the file_server for a receiver who was offline; status 0 waits
//! for the download.

use crate::store::{Db, StoreResult, col_bytes, col_u32};

/// Most offline files one "has offline" reply lists: the oldest ones, as the original's
/// `ORDER BY created` lists them first.
pub const MAX_LISTED: u32 = 100;

/// One waiting offline file.
pub struct OfflineFile {
    pub from: u32,
    pub task_id: Vec<u8>,
    pub file_name: Vec<u8>,
    pub size: u32,
}

/// The files waiting for `to`, oldest first (ties by insertion), at most [`MAX_LISTED`].
pub fn waiting_for(db: &mut Db, to: u32) -> StoreResult<Vec<OfflineFile>> {
    let rows = db.rows(
        "SELECT fromId, taskId, fileName, size FROM IMTransmitFile \
         WHERE toId=? AND status=0 ORDER BY created ASC, id ASC LIMIT ?",
        (to, MAX_LISTED),
    )?;
    Ok(rows
        .iter()
        .map(|row| OfflineFile {
            from: col_u32(row, 0),
            task_id: col_bytes(row, 1),
            file_name: col_bytes(row, 2),
            size: col_u32(row, 3),
        })
        .collect())
}

/// Stores a file waiting for `to`, created and updated at `now`.
pub fn add(db: &mut Db, to: u32, file: &OfflineFile, now: u32) -> StoreResult<()> {
    db.exec(
        "INSERT INTO IMTransmitFile (fromId, toId, fileName, size, taskId, status, created, \
         updated) VALUES (?, ?, ?, ?, ?, 0, ?, ?)",
        (
            file.from,
            to,
            &file.file_name,
            file.size,
            &file.task_id,
            now,
            now,
        ),
    )?;
    Ok(())
}

/// Deletes the rows of the transfer (from, to, task id); the number deleted.
pub fn delete(db: &mut Db, from: u32, to: u32, task_id: &[u8]) -> StoreResult<u64> {
    let (affected, _) = db.exec(
        "DELETE FROM IMTransmitFile WHERE fromId=? AND toId=? AND taskId=?",
        (from, to, task_id),
    )?;
    Ok(affected)
}
