//! Departments (`DepartModel`; storage-file.md §5.8).

use tt_proto::pb::base_define::{DepartInfo, DepartmentStatusType};

use crate::store::{Db, StoreResult, col_bytes, col_u32};

/// The departments updated after `since` whose status is a `DepartmentStatusType` (rows with
/// another status are left out), by id, and the latest update time among all updated ones
/// (`since` if none).
pub fn changed_since(db: &mut Db, since: u32) -> StoreResult<(Vec<DepartInfo>, u32)> {
    let rows = db.rows(
        "SELECT id, priority, departName, parentId, status, updated FROM IMDepart \
         WHERE updated>? ORDER BY id",
        (since,),
    )?;
    let mut latest = since;
    let mut list = Vec::with_capacity(rows.len());
    for row in &rows {
        latest = latest.max(col_u32(row, 5));
        let Ok(status) = DepartmentStatusType::try_from(col_u32(row, 4) as i32) else {
            continue;
        };
        list.push(DepartInfo {
            dept_id: col_u32(row, 0),
            priority: col_u32(row, 1),
            dept_name: col_bytes(row, 2),
            parent_dept_id: col_u32(row, 3),
            dept_status: status as i32,
        });
    }
    Ok((list, latest))
}
