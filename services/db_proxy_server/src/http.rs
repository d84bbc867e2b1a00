//! A minimal blocking HTTP/1.1 client for the audio path (the original's libcurl `CHttpClient`):
//! upload to msfs (multipart POST) and download (GET), with a deadline and bounded sizes.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// `http://host[:port]/path`; a URL without a scheme is taken as a host (as curl does).
#[derive(Debug, PartialEq, Eq)]
pub struct Url {
    pub host: String,
    pub port: u16,
    pub path: String,
}

impl Url {
    pub fn parse(url: &str) -> Option<Url> {
        let rest = match url.get(..7) {
            Some(s) if s.eq_ignore_ascii_case("http://") => &url[7..],
            _ if url.contains("://") => return None,
            _ => url,
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (h, p.parse().ok()?),
            None => (authority, 80),
        };
        if host.is_empty() {
            return None;
        }
        Some(Url {
            host: host.to_string(),
            port,
            path: path.to_string(),
        })
    }
}

pub struct Response {
    pub status: u16,
    pub content_length: Option<usize>,
    pub body: Vec<u8>,
}

/// Largest response header block accepted.
const MAX_HEAD: usize = 16 * 1024;

fn remaining(deadline: Instant) -> Result<Duration, String> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err("timed out".to_string())
    } else {
        Ok(left)
    }
}

/// Sends one request (`Connection: close`) and reads the response, all within `timeout`;
/// a body longer than `max_body` is an error.
pub fn request(
    url: &Url,
    method: &str,
    extra_headers: &[(&str, String)],
    body: &[u8],
    timeout: Duration,
    max_body: usize,
) -> Result<Response, String> {
    let deadline = Instant::now() + timeout;
    let addr = (url.host.as_str(), url.port)
        .to_socket_addrs()
        .map_err(|e| format!("resolve {}: {e}", url.host))?
        .next()
        .ok_or_else(|| format!("resolve {}: no address", url.host))?;
    let mut s = TcpStream::connect_timeout(&addr, remaining(deadline)?)
        .map_err(|e| format!("connect {addr}: {e}"))?;
    let mut head = format!(
        "{method} {} HTTP/1.1\r\nHost: {}:{}\r\nAccept: */*\r\nConnection: close\r\n",
        url.path, url.host, url.port
    );
    for (k, v) in extra_headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if method == "POST" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    s.set_write_timeout(Some(remaining(deadline)?))
        .map_err(|e| e.to_string())?;
    s.write_all(head.as_bytes())
        .and_then(|()| s.write_all(body))
        .map_err(|e| format!("send: {e}"))?;

    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > MAX_HEAD {
            return Err("response header too long".to_string());
        }
        let n = read_some(&mut s, &mut chunk, deadline)?;
        if n == 0 {
            return Err("connection closed before the response header".to_string());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or_else(|| "bad status line".to_string())?;
    let mut content_length = None;
    let mut chunked = false;
    for line in lines {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let (k, v) = (k.trim(), v.trim());
        if k.eq_ignore_ascii_case("content-length") {
            content_length = v.parse::<usize>().ok();
        } else if k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked") {
            chunked = true;
        }
    }
    if content_length.is_some_and(|n| n > max_body) {
        return Err("response body too long".to_string());
    }
    let mut body = buf.split_off(head_end);
    loop {
        if let Some(n) = content_length
            && !chunked
            && body.len() >= n
        {
            body.truncate(n);
            break;
        }
        if body.len() > max_body + 64 * 1024 {
            return Err("response body too long".to_string());
        }
        let n = read_some(&mut s, &mut chunk, deadline)?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    if chunked {
        body = dechunk(&body).ok_or_else(|| "bad chunked body".to_string())?;
    }
    if body.len() > max_body {
        return Err("response body too long".to_string());
    }
    Ok(Response {
        status,
        content_length,
        body,
    })
}

fn read_some(s: &mut TcpStream, chunk: &mut [u8], deadline: Instant) -> Result<usize, String> {
    s.set_read_timeout(Some(remaining(deadline)?))
        .map_err(|e| e.to_string())?;
    loop {
        match s.read(chunk) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("receive: {e}")),
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = find(data, b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..eol]).ok()?;
        let size_text = size_text.split(';').next()?.trim();
        let size = usize::from_str_radix(size_text, 16).ok()?;
        data = &data[eol + 2..];
        if size == 0 {
            return Some(out);
        }
        if data.len() < size + 2 {
            return None;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

/// The multipart boundary db_proxy uses for uploads.
pub const BOUNDARY: &str = "WebKitFormBoundary8riBH6S4ZsoT69so";

/// The upload body, byte for byte as the original builds it (§4.9).
pub fn multipart_body(data: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(data.len() + 256);
    b.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
    b.extend_from_slice(b"Content-Disposition: form-data; name=\"file\"; filename=\"1.audio\"\r\n");
    b.extend_from_slice(b"Content-Type:image/jpg\r\n\r\n");
    b.extend_from_slice(data);
    b.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n\r\n").as_bytes());
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = Url::parse("http://127.0.0.1:8700/").expect("url");
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("127.0.0.1", 8700, "/")
        );
        let u = Url::parse("127.0.0.1/").expect("url");
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("127.0.0.1", 80, "/")
        );
        let u = Url::parse("HTTP://h:1/g0/a.audio").expect("url");
        assert_eq!(u.path, "/g0/a.audio");
        assert!(Url::parse("https://h/").is_none());
        assert!(Url::parse("http://:80/").is_none());
    }

    #[test]
    fn chunked() {
        assert_eq!(
            dechunk(b"3\r\nabc\r\n2;x\r\nde\r\n0\r\n\r\n").as_deref(),
            Some(&b"abcde"[..])
        );
        assert!(dechunk(b"5\r\nab").is_none());
    }
}
