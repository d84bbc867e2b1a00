//! The msfs client (storage-file.md §8): image upload as a multipart `POST` and download by
//! `GET`, through `ureq` (plain HTTP, no proxy, no redirect), one request per connection.
//!
//! The msfs base URL is what login_server hands out at discovery (`msfsPrior` of
//! [`crate::MsgServerAddr`], e.g. `http://127.0.0.1:8700/`); a download takes either the full
//! `url` of an upload's answer or its `path` (`g0/000/000/<name>`), joined to the base URL.
//!
//! ```no_run
//! use std::time::Duration;
//! let up = tt_client::msfs::upload("http://127.0.0.1:8700/", "face_120x160.png", b"...",
//!     Duration::from_secs(10))?;
//! let bytes = tt_client::msfs::download("http://127.0.0.1:8700/", &up.path,
//!     Duration::from_secs(10))?;
//! # Ok::<(), tt_client::Error>(())
//! ```

use std::io::Write;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::Error;
use crate::discovery::is_timeout;

/// Largest answer to an upload read (the real one is under 300 bytes).
pub const MAX_ANSWER: usize = 64 * 1024;
/// Largest file [`download`] and [`download_to`] accept.
pub const MAX_DOWNLOAD: u64 = 64 * 1024 * 1024;

/// What msfs answered to a stored upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uploaded {
    /// `g0/NNN/NNN/<name>`.
    pub path: String,
    /// `http://<host>/<path>`, the host being the `Host` the request named.
    pub url: String,
}

/// Uploads `data` under the file name `file_name` (its extension, and a `_<W>x<H>` size hint
/// before it, are kept by msfs). A refusal is [`Error::Protocol`] with msfs's `error_code`
/// and `error_msg`.
pub fn upload(
    msfs_url: &str,
    file_name: &str,
    data: &[u8],
    timeout: Duration,
) -> Result<Uploaded, Error> {
    if file_name.contains(['"', '\r', '\n']) {
        return Err(Error::Usage(format!(
            "a file name for msfs cannot hold quotes or line breaks: {file_name:?}"
        )));
    }
    let boundary = boundary_for(data);
    let mut body = Vec::with_capacity(data.len() + 256);
    let _ = write!(
        body,
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    );
    body.extend_from_slice(data);
    let _ = write!(body, "\r\n--{boundary}--\r\n");
    let mut response = agent(timeout)
        .post(base(msfs_url)?)
        .header("Connection", "close")
        .content_type(format!("multipart/form-data; boundary={boundary}"))
        .send(&body[..])
        .map_err(|e| http_error(e, "msfs upload answer"))?;
    let status = response.status().as_u16();
    let answer = response
        .body_mut()
        .with_config()
        .limit(MAX_ANSWER as u64)
        .read_to_vec()
        .map_err(|e| http_error(e, "msfs upload answer"))?;
    parse_answer(status, &answer)
}

/// [`upload`] of a file from disk, under its own file name.
pub fn upload_file(msfs_url: &str, file: &Path, timeout: Duration) -> Result<Uploaded, Error> {
    let name = file
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| Error::Usage(format!("no usable file name in {}", file.display())))?;
    let data = std::fs::read(file)?;
    upload(msfs_url, name, &data, timeout)
}

/// Interprets msfs's JSON answer to an upload.
pub fn parse_answer(status: u16, body: &[u8]) -> Result<Uploaded, Error> {
    let v: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
        Error::Protocol(format!(
            "msfs answered {status} with no JSON ({e}): {:?}",
            String::from_utf8_lossy(&body[..body.len().min(200)])
        ))
    })?;
    let code = v.get("error_code").and_then(serde_json::Value::as_i64);
    let text = |key: &str| {
        v.get(key)
            .and_then(|x| x.as_str())
            .unwrap_or("")
            .to_string()
    };
    match code {
        Some(0) if status == 200 && !text("path").is_empty() => Ok(Uploaded {
            path: text("path"),
            url: text("url"),
        }),
        _ => Err(Error::Protocol(format!(
            "msfs refused the upload: status {status}, error_code {}, error_msg {:?}",
            code.map_or_else(|| "?".to_string(), |c| c.to_string()),
            text("error_msg")
        ))),
    }
}

/// The URL of `url_or_path`: itself if it is a full `http://` URL, else joined to the msfs
/// base URL.
pub fn resolve(msfs_url: &str, url_or_path: &str) -> Result<String, Error> {
    if url_or_path.starts_with("http://") {
        return Ok(url_or_path.to_string());
    }
    Ok(format!(
        "{}/{}",
        base(msfs_url)?.trim_end_matches('/'),
        url_or_path.trim_start_matches('/')
    ))
}

/// Downloads `url_or_path` (see [`resolve`]) into memory.
pub fn download(msfs_url: &str, url_or_path: &str, timeout: Duration) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    fetch(msfs_url, url_or_path, timeout, &mut out)?;
    Ok(out)
}

/// Downloads `url_or_path` into the file `out` (created or truncated); returns its size. A
/// failed download removes the partial file.
pub fn download_to(
    msfs_url: &str,
    url_or_path: &str,
    out: &Path,
    timeout: Duration,
) -> Result<u64, Error> {
    let mut file = std::fs::File::create(out)?;
    let fetched = fetch(msfs_url, url_or_path, timeout, &mut file).and_then(|n| {
        file.sync_all()?;
        Ok(n)
    });
    if fetched.is_err() {
        let _ = std::fs::remove_file(out);
    }
    fetched
}

fn fetch(
    msfs_url: &str,
    url_or_path: &str,
    timeout: Duration,
    out: &mut impl Write,
) -> Result<u64, Error> {
    let url = resolve(msfs_url, url_or_path)?;
    let mut response = agent(timeout)
        .get(&url)
        .header("Connection", "close")
        .call()
        .map_err(|e| http_error(e, "msfs download"))?;
    let status = response.status();
    if status != ureq::http::StatusCode::OK {
        return Err(Error::Protocol(format!(
            "msfs answered {} {} for {url}",
            status.as_str(),
            status.canonical_reason().unwrap_or("")
        )));
    }
    let mut reader = response
        .body_mut()
        .with_config()
        .limit(MAX_DOWNLOAD)
        .reader();
    std::io::copy(&mut reader, out).map_err(|e| {
        if is_timeout(&e) {
            Error::Timeout("msfs download".into())
        } else {
            Error::Protocol(format!("msfs download of {url}: {e}"))
        }
    })
}

/// The base URL checked: plain `http://` with a host.
fn base(msfs_url: &str) -> Result<&str, Error> {
    let rest = msfs_url.strip_prefix("http://").ok_or_else(|| {
        Error::Usage(format!(
            "msfs URL must start with http://, got {msfs_url:?}"
        ))
    })?;
    if rest.split(['/', '?']).next().unwrap_or("").is_empty() {
        return Err(Error::Usage(format!("msfs URL has no host: {msfs_url:?}")));
    }
    Ok(msfs_url)
}

fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .proxy(None)
        .max_redirects(0)
        .http_status_as_error(false)
        .max_response_header_size(MAX_ANSWER)
        .build()
        .into()
}

fn http_error(e: ureq::Error, what: &str) -> Error {
    match e {
        ureq::Error::Io(io) if !is_timeout(&io) => Error::Io(io),
        ureq::Error::Io(_) | ureq::Error::Timeout(_) => Error::Timeout(what.to_string()),
        other => Error::Protocol(format!("{what}: {other}")),
    }
}

/// A multipart boundary that does not occur in `data`.
fn boundary_for(data: &[u8]) -> String {
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    (0u64..)
        .map(|i| {
            format!(
                "----ttcli{:016x}",
                seed.wrapping_add(i.wrapping_mul(0x9e37_79b9))
            )
        })
        .find(|b| !data.windows(b.len()).any(|w| w == b.as_bytes()))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_and_urls() {
        let ok = "{\"error_code\":0,\"error_msg\": \"成功\",\"path\":\"g0/000/000/1_2.png\",\
                  \"url\":\"http://h:1/g0/000/000/1_2.png\"}";
        let up = parse_answer(200, ok.as_bytes()).unwrap();
        assert_eq!(up.path, "g0/000/000/1_2.png");
        assert_eq!(up.url, "http://h:1/g0/000/000/1_2.png");
        let bad = "{\"error_code\":3,\"error_msg\": \"格式错误\",\"path\":\"\",\"url\":\"\"}";
        let e = parse_answer(400, bad.as_bytes()).unwrap_err().to_string();
        assert!(e.contains("error_code 3"), "{e}");
        assert!(parse_answer(200, b"<html>").is_err());
        assert_eq!(
            resolve("http://h:8700/", "g0/000/000/a.png").unwrap(),
            "http://h:8700/g0/000/000/a.png"
        );
        assert_eq!(
            resolve("http://h:8700", "/g0/a.png").unwrap(),
            "http://h:8700/g0/a.png"
        );
        assert_eq!(resolve("x", "http://o/p").unwrap(), "http://o/p");
        assert!(resolve("https://h/", "p").is_err());
        let b = boundary_for(b"data");
        assert!(b.starts_with("----ttcli") && b.len() == 25, "{b}");
    }
}
