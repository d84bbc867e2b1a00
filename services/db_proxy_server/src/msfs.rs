//! The HTTP side of audio messages (the original's libcurl `CHttpClient`, storage-file.md §4.9):
//! a multipart upload to msfs and the download of a stored clip, through a blocking `ureq`
//! agent. Both run on the worker threads, each bounded in time and in reply size.

use std::time::Duration;

use ureq::Agent;
use ureq::http::Uri;
use ureq::http::header::CONTENT_LENGTH;

/// Whole budget of one upload (connect, send, reply).
const UPLOAD_TIMEOUT: Duration = Duration::from_secs(10);
/// Whole budget of one download (the original's 2 s).
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(2);
/// Largest upload reply read (msfs answers with a short JSON).
const MAX_UPLOAD_REPLY: u64 = 64 * 1024;
/// Largest audio clip downloaded for a list.
pub const MAX_AUDIO: usize = 16 * 1024 * 1024;
/// Largest reply header block accepted.
const MAX_REPLY_HEAD: usize = 16 * 1024;

/// The multipart boundary of uploads.
pub const BOUNDARY: &str = "WebKitFormBoundary8riBH6S4ZsoT69so";

/// An `http://host[:port]/path` URL; one without a scheme is taken as `http://` + it (as curl
/// does). None for any other scheme or without a host.
pub fn parse_url(url: &str) -> Option<Uri> {
    let uri: Uri = if url.contains("://") {
        url.parse().ok()?
    } else {
        format!("http://{url}").parse().ok()?
    };
    let http = uri.scheme_str()?.eq_ignore_ascii_case("http");
    (http && uri.host().is_some_and(|h| !h.is_empty())).then_some(uri)
}

/// The upload body, byte for byte as the original builds it.
pub fn multipart_body(data: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(data.len() + 256);
    b.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
    b.extend_from_slice(b"Content-Disposition: form-data; name=\"file\"; filename=\"1.audio\"\r\n");
    b.extend_from_slice(b"Content-Type:image/jpg\r\n\r\n");
    b.extend_from_slice(data);
    b.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n\r\n").as_bytes());
    b
}

/// The msfs client shared by the workers.
pub struct Msfs {
    agent: Agent,
    /// `MsfsSite` + "/" (None if it is not a usable http URL: uploads then fail).
    upload_url: Option<Uri>,
}

impl Msfs {
    /// A client uploading to `site` + "/" (the original always appends "/", so a trailing slash
    /// in the setting gives "//": quirk 14).
    pub fn new(site: &str) -> Msfs {
        // One connection per request (sent with `Connection: close`), no proxy, no redirect:
        // the reply of msfs is used as it is, whatever its status.
        let agent = Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .proxy(None)
            .user_agent("")
            .max_response_header_size(MAX_REPLY_HEAD)
            .max_idle_connections(0)
            .max_idle_connections_per_host(0)
            .build()
            .new_agent();
        Msfs {
            agent,
            upload_url: parse_url(&format!("{site}/")),
        }
    }

    /// Whether uploads have a usable URL.
    pub fn has_upload_url(&self) -> bool {
        self.upload_url.is_some()
    }

    /// Posts `audio` as the multipart upload; the reply body (at most 64 KiB).
    pub fn upload(&self, audio: &[u8]) -> Result<Vec<u8>, String> {
        let url = self
            .upload_url
            .as_ref()
            .ok_or("MsfsSite is not a usable http URL")?;
        let body = multipart_body(audio);
        let content_type = format!("multipart/form-data; boundary={BOUNDARY}");
        // Header names in the original's letter case: some msfs implementations compare them
        // literally.
        let sent = self
            .agent
            .post(url)
            .config()
            .timeout_global(Some(UPLOAD_TIMEOUT))
            .build()
            .header_raw("Content-Type", content_type.as_bytes())
            .header_raw("Content-Length", body.len().to_string().as_bytes())
            .header_raw("Connection", b"close")
            .send(&body[..]);
        let mut rsp = sent.map_err(|e| format!("{url}: {e}"))?;
        rsp.body_mut()
            .with_config()
            .limit(MAX_UPLOAD_REPLY)
            .read_to_vec()
            .map_err(|e| format!("{url}: reply: {e}"))
    }

    /// The `size` bytes at `url`, if the reply announces exactly `size` bytes (logged
    /// otherwise).
    pub fn download(&self, url: &str, size: usize) -> Option<Vec<u8>> {
        if size > MAX_AUDIO {
            return None;
        }
        let uri = parse_url(url)?;
        let sent = self
            .agent
            .get(uri)
            .config()
            .timeout_global(Some(DOWNLOAD_TIMEOUT))
            .build()
            .header_raw("Connection", b"close")
            .call();
        let mut rsp = match sent {
            Ok(rsp) => rsp,
            Err(e) => {
                log::warn!("audio download {url}: {e}");
                return None;
            }
        };
        let announced = rsp
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<usize>().ok());
        if announced != Some(size) {
            log::warn!(
                "audio download {url}: status {}, {announced:?} bytes announced, {size} expected",
                rsp.status().as_u16()
            );
            return None;
        }
        match rsp
            .body_mut()
            .with_config()
            .limit(size as u64)
            .read_to_vec()
        {
            Ok(bytes) if bytes.len() == size => Some(bytes),
            Ok(bytes) => {
                log::warn!(
                    "audio download {url}: {} bytes, {size} expected",
                    bytes.len()
                );
                None
            }
            Err(e) => {
                log::warn!("audio download {url}: {e}");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = parse_url("http://127.0.0.1:8700/").expect("url");
        assert_eq!(
            (u.host(), u.port_u16(), u.path()),
            (Some("127.0.0.1"), Some(8700), "/")
        );
        let u = parse_url("127.0.0.1/").expect("url");
        assert_eq!(
            (u.host(), u.port_u16(), u.path()),
            (Some("127.0.0.1"), None, "/")
        );
        let u = parse_url("HTTP://h:1/g0/a.audio").expect("url");
        assert_eq!(u.path(), "/g0/a.audio");
        assert!(parse_url("https://h/").is_none());
        assert!(parse_url("http://:80/").is_none());
        assert!(parse_url("http://a b/").is_none());
    }

    #[test]
    fn multipart_layout() {
        let b = multipart_body(b"xy");
        assert!(b.starts_with(format!("--{BOUNDARY}\r\n").as_bytes()));
        assert!(b.ends_with(
            format!("Content-Type:image/jpg\r\n\r\nxy\r\n--{BOUNDARY}--\r\n\r\n").as_bytes()
        ));
    }

    /// Serves one connection with `reply` and hands back the request's bytes.
    fn one_shot(reply: Vec<u8>) -> (u16, std::thread::JoinHandle<Vec<u8>>) {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let t = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().expect("accept");
            s.set_read_timeout(Some(Duration::from_millis(300)))
                .expect("timeout");
            let mut got = Vec::new();
            let mut chunk = [0u8; 4096];
            while let Ok(n) = s.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&chunk[..n]);
            }
            s.write_all(&reply).expect("reply");
            got
        });
        (port, t)
    }

    #[test]
    fn upload_request_and_reply() {
        let (port, t) = one_shot(b"HTTP/1.1 500 Oops\r\nContent-Length:2\r\n\r\n{}".to_vec());
        let msfs = Msfs::new(&format!("http://127.0.0.1:{port}"));
        assert_eq!(msfs.upload(b"abc").expect("upload"), b"{}");
        let req = t.join().expect("server");
        let body = multipart_body(b"abc");
        let (head, sent) = req.split_at(req.len() - body.len());
        assert_eq!(sent, body.as_slice());
        let head = String::from_utf8(head.to_vec()).expect("utf-8");
        assert!(head.starts_with("POST / HTTP/1.1\r\n"), "{head}");
        assert!(head.contains(&format!("\r\nContent-Length: {}\r\n", body.len())));
        assert!(head.contains(&format!(
            "\r\nContent-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
        )));
        assert!(head.contains("\r\nConnection: close\r\n"));
    }

    #[test]
    fn download_checks_the_announced_size() {
        let (port, t) = one_shot(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nxyz".to_vec());
        let msfs = Msfs::new("127.0.0.1:1");
        let url = format!("http://127.0.0.1:{port}/g0/1.audio");
        assert_eq!(msfs.download(&url, 3).as_deref(), Some(&b"xyz"[..]));
        assert!(
            t.join()
                .expect("server")
                .starts_with(b"GET /g0/1.audio HTTP/1.1\r\n")
        );

        let (port, t) = one_shot(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nxyz".to_vec());
        let url = format!("http://127.0.0.1:{port}/g0/1.audio");
        assert_eq!(msfs.download(&url, 4), None);
        t.join().expect("server");
        assert_eq!(msfs.download(&url, MAX_AUDIO + 1), None);
    }
}
