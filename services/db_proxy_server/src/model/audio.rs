//! Audio messages (storage-file.md §4.9): the bytes go to msfs, MySQL keeps an `IMAudio` row
//! and the message content is that row's id; lists expand the id back into
//! `duration (4 bytes, big-endian) + audio bytes` by downloading from msfs.

use tt_proto::pb::base_define::{MsgInfo, MsgType};

use crate::msfs::Msfs;
use crate::store::{StoreResult, Stores, col_bytes, col_u32};

/// Uploads the audio of `msg_data` and inserts its IMAudio row; the row id, or None when the
/// data is too short or the upload failed (logged).
pub fn save(
    st: &mut Stores,
    msfs: &Msfs,
    from: u32,
    to: u32,
    create_time: u32,
    msg_data: &[u8],
) -> StoreResult<Option<u32>> {
    let Some((head, raw)) = msg_data.split_first_chunk::<4>() else {
        log::warn!("audio {from}->{to}: {} bytes, too short", msg_data.len());
        return Ok(None);
    };
    if raw.is_empty() {
        log::warn!("audio {from}->{to}: no audio after the duration");
        return Ok(None);
    }
    let duration = u32::from_be_bytes(*head);
    let reply = match msfs.upload(raw) {
        Ok(r) => r,
        Err(e) => {
            log::error!("audio upload {from}->{to}: {e}");
            return Ok(None);
        }
    };
    let json: serde_json::Value = match serde_json::from_slice(&reply) {
        Ok(v) => v,
        Err(e) => {
            log::error!("audio upload: reply is not JSON ({e})");
            return Ok(None);
        }
    };
    let code = json.get("error_code").and_then(serde_json::Value::as_i64);
    let path = json.get("url").and_then(serde_json::Value::as_str);
    let (Some(0), Some(path)) = (code, path) else {
        log::error!("audio upload failed: {json}");
        return Ok(None);
    };
    let (_, id) = st.master.exec(
        "INSERT INTO IMAudio (fromId, toId, path, size, duration, created) \
         VALUES (?, ?, ?, ?, ?, ?)",
        (from, to, path, raw.len() as u64, duration, create_time),
    )?;
    Ok(u32::try_from(id).ok())
}

/// Replaces the content of audio messages by their bytes where msfs has them. A message whose
/// IMAudio lookup fails is removed (content not a number included, as the original's SQL then
/// failed); a missing row or a failed download leaves the message as it is.
pub fn expand(st: &mut Stores, msfs: &Msfs, list: Vec<MsgInfo>) -> Vec<MsgInfo> {
    let mut out = Vec::with_capacity(list.len());
    for mut msg in list {
        if !MsgType::declared(msg.msg_type).is_some_and(MsgType::is_audio) {
            out.push(msg);
            continue;
        }
        let digits = !msg.msg_data.is_empty() && msg.msg_data.iter().all(u8::is_ascii_digit);
        let id = std::str::from_utf8(&msg.msg_data)
            .ok()
            .and_then(|s| s.parse::<u64>().ok());
        let (true, Some(id)) = (digits, id) else {
            log::warn!("audio message {}: content is not an audio id", msg.msg_id);
            continue;
        };
        let rows = match st
            .slave
            .rows("SELECT path, size, duration FROM IMAudio WHERE id=?", (id,))
        {
            Ok(rows) => rows,
            Err(_) => continue,
        };
        if let Some(row) = rows.first() {
            let path = col_bytes(row, 0);
            let (size, duration) = (col_u32(row, 1) as usize, col_u32(row, 2));
            if !path.is_empty()
                && size != 0
                && duration != 0
                && let Ok(url) = std::str::from_utf8(&path)
                && let Some(bytes) = msfs.download(url, size)
            {
                let mut data = duration.to_be_bytes().to_vec();
                data.extend_from_slice(&bytes);
                msg.msg_data = data;
            }
        }
        out.push(msg);
    }
    out
}
