//! Audio messages (storage-file.md §4.9): the bytes go to msfs, MySQL keeps an `IMAudio` row
//! and the message content is that row's id; lists expand the id back into
//! `duration (4 bytes, big-endian) + audio bytes` by downloading from msfs.

use std::time::Duration;

use tt_proto::pb::base_define::MsgInfo;

use crate::http::{self, BOUNDARY, Url};
use crate::model::is_audio;
use crate::store::{StoreResult, Stores, col_bytes, col_u32};

const UPLOAD_TIMEOUT: Duration = Duration::from_secs(10);
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(2);
/// Largest upload reply read (msfs answers with a short JSON).
const MAX_UPLOAD_REPLY: usize = 64 * 1024;
/// Largest audio clip downloaded for a list.
const MAX_AUDIO: usize = 16 * 1024 * 1024;

/// Uploads the audio of `msg_data` and inserts its IMAudio row; the row id, or None when the
/// data is too short or the upload failed (logged).
pub fn save(
    st: &mut Stores,
    upload: Option<&Url>,
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
    let Some(url) = upload else {
        log::error!("audio {from}->{to}: MsfsSite is not a usable http URL");
        return Ok(None);
    };
    let headers = [(
        "Content-Type",
        format!("multipart/form-data; boundary={BOUNDARY}"),
    )];
    let body = http::multipart_body(raw);
    let rsp = match http::request(
        url,
        "POST",
        &headers,
        &body,
        UPLOAD_TIMEOUT,
        MAX_UPLOAD_REPLY,
    ) {
        Ok(r) => r,
        Err(e) => {
            log::error!("audio upload to {}:{}{}: {e}", url.host, url.port, url.path);
            return Ok(None);
        }
    };
    let json: serde_json::Value = match serde_json::from_slice(&rsp.body) {
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
pub fn expand(st: &mut Stores, list: Vec<MsgInfo>) -> Vec<MsgInfo> {
    let mut out = Vec::with_capacity(list.len());
    for mut msg in list {
        if !is_audio(msg.msg_type as u32) {
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
                && let Some(bytes) = download(&path, size)
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

/// The first `size` bytes at `path`, if the response announces exactly `size` bytes.
fn download(path: &[u8], size: usize) -> Option<Vec<u8>> {
    if size > MAX_AUDIO {
        return None;
    }
    let url = Url::parse(std::str::from_utf8(path).ok()?)?;
    match http::request(&url, "GET", &[], &[], DOWNLOAD_TIMEOUT, MAX_AUDIO) {
        Ok(r) if r.content_length == Some(size) && r.body.len() >= size => {
            let mut body = r.body;
            body.truncate(size);
            Some(body)
        }
        Ok(r) => {
            log::warn!(
                "audio download {}: status {}, {:?} bytes announced, {size} expected",
                String::from_utf8_lossy(path),
                r.status,
                r.content_length
            );
            None
        }
        Err(e) => {
            log::warn!("audio download {}: {e}", String::from_utf8_lossy(path));
            None
        }
    }
}
