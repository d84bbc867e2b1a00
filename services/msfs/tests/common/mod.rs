//! The msfs test harness: a real msfs process in a temporary directory, raw HTTP over
//! `TcpStream`, tiny valid images.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

use tt_testkit::{Daemon, TempDir};

/// A hang guard on every socket read (not a timing check).
pub const READ_LIMIT: Duration = Duration::from_secs(20);

pub struct Msfs {
    pub dir: TempDir,
    pub daemon: Daemon,
    pub port: u16,
}

impl Msfs {
    /// msfs with `FilesPerDir=1` (each upload in the next directory) and `extra` conf lines.
    pub fn start(label: &str, extra: &str) -> Msfs {
        let dir = TempDir::new(label);
        let port = tt_testkit::free_port();
        let conf = format!(
            "# msfs under test\nListenIP=127.0.0.1\nListenPort={port}\nBaseDir=./store\n\
             FileCnt=0\nFilesPerDir=1\nGetThreadCount=1\nPostThreadCount=2\n{extra}"
        );
        dir.write("msfs.conf", &conf);
        let daemon = Msfs::spawn(&dir);
        Msfs { dir, daemon, port }
    }

    fn spawn(dir: &TempDir) -> Daemon {
        let mut d = Daemon::spawn("msfs", dir.path(), "msfs.conf");
        d.wait_ready(tt_testkit::stack::LIMIT);
        d
    }

    /// Stops the daemon with SIGTERM (exit status 0 expected) and starts it again.
    pub fn restart(&mut self) {
        let pid = self.daemon.pid().expect("running");
        let status = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status()
            .expect("running kill");
        assert!(status.success());
        assert_eq!(self.daemon.wait_exit(tt_testkit::stack::LIMIT), Some(0));
        self.daemon = Msfs::spawn(&self.dir);
    }

    pub fn store(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    pub fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect to msfs");
        s.set_read_timeout(Some(READ_LIMIT)).unwrap();
        s
    }

    /// Sends `request` on a new connection, reads to the end of stream.
    pub fn exchange(&self, request: &[u8]) -> Vec<u8> {
        let mut s = self.connect();
        s.write_all(request).unwrap();
        read_to_end(&mut s)
    }

    /// One `Connection: close` request, its response parsed.
    pub fn request(&self, request: &[u8]) -> Reply {
        Reply::parse(&self.exchange(request)).expect("a whole HTTP response")
    }

    pub fn get(&self, path: &str, headers: &str) -> Reply {
        self.request(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{headers}\r\n")
                .as_bytes(),
        )
    }

    /// A multipart upload of `data` named `name`; the `Host` is `127.0.0.1:<port>`.
    pub fn upload(&self, name: &str, data: &[u8]) -> Reply {
        let body = multipart("b0undary", &format!("filename=\"{name}\""), data);
        self.request(&post(
            self.port,
            "multipart/form-data; boundary=b0undary",
            &body,
        ))
    }

    /// [`Msfs::upload`] that must succeed; returns the stored path.
    pub fn upload_ok(&self, name: &str, data: &[u8]) -> String {
        let r = self.upload(name, data);
        assert_eq!(r.status, 200, "{}", r.text());
        let text = r.text();
        let path = text
            .split("\"path\":\"")
            .nth(1)
            .and_then(|t| t.split('"').next())
            .unwrap_or_else(|| panic!("no path in {text}"))
            .to_string();
        assert_eq!(
            text,
            format!(
                "{{\"error_code\":0,\"error_msg\": \"成功\",\"path\":\"{path}\",\
                 \"url\":\"http://127.0.0.1:{}/{path}\"}}",
                self.port
            )
        );
        path
    }

    /// The daemon's resident set in KiB.
    pub fn rss_kib(&self) -> u64 {
        let pid = self.daemon.pid().expect("running");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS")
    }
}

/// A POST with `Content-Type` and a body, `Connection: close`.
pub fn post(port: u16, content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "POST / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\
         Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

/// One multipart part with `disposition_tail` after `form-data; name="file"; `.
pub fn multipart(boundary: &str, disposition_tail: &str, data: &[u8]) -> Vec<u8> {
    let mut b = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; {disposition_tail}\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    b.extend_from_slice(data);
    b.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    b
}

pub fn read_to_end(s: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    match s.read_to_end(&mut out) {
        Ok(_) => {}
        // A reset after the response (the server closed with unread input) ends it too.
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("reading the response: {e} (got {} bytes)", out.len()),
    }
    out
}

/// Half-closes the write side (a client that has sent everything).
pub fn finish(s: &TcpStream) {
    let _ = s.shutdown(Shutdown::Write);
}

/// A parsed response.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    /// The head as sent, status line to the empty line.
    pub head: String,
    pub body: Vec<u8>,
}

impl Reply {
    /// The first response in `bytes` (its body by `Content-Length`), or None if incomplete.
    pub fn parse(bytes: &[u8]) -> Option<Reply> {
        Reply::parse_prefix(bytes, false).map(|(r, _)| r)
    }

    /// A response at the start of `bytes` and its length; `head_only` for a HEAD or 304.
    pub fn parse_prefix(bytes: &[u8], head_only: bool) -> Option<(Reply, usize)> {
        let end = bytes.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
        let head = String::from_utf8(bytes[..end].to_vec()).ok()?;
        let status = head.get(9..12)?.parse().ok()?;
        let reply = Reply {
            status,
            head,
            body: Vec::new(),
        };
        let len: usize = if head_only || status == 304 {
            0
        } else {
            reply.header("Content-Length")?.parse().ok()?
        };
        let body = bytes.get(end..end + len)?.to_vec();
        Some((Reply { body, ..reply }, end + len))
    }

    /// A header value (`Name:value`, name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Reads one response from a kept-alive connection.
pub fn read_reply(s: &mut TcpStream, head_only: bool) -> Reply {
    let mut pending = Vec::new();
    let r = read_next(s, &mut pending, head_only);
    assert!(pending.is_empty(), "bytes after the response");
    r
}

/// Reads the next response, `pending` holding bytes read after the previous one (pipelined
/// responses arrive together).
pub fn read_next(s: &mut TcpStream, pending: &mut Vec<u8>, head_only: bool) -> Reply {
    let mut chunk = [0u8; 64 * 1024];
    loop {
        if let Some((r, n)) = Reply::parse_prefix(pending, head_only) {
            pending.drain(..n);
            return r;
        }
        let n = s.read(&mut chunk).expect("reading a response");
        assert!(
            n > 0,
            "closed before a whole response: {:?}",
            String::from_utf8_lossy(pending)
        );
        pending.extend_from_slice(&chunk[..n]);
    }
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn adler32(bytes: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &x in bytes {
        a = (a + u32::from(x)) % 65_521;
        b = (b + a) % 65_521;
    }
    (b << 16) | a
}

fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// A valid 1×1 RGB PNG of the colour `rgb` (IDAT a stored deflate block).
pub fn tiny_png(rgb: [u8; 3]) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&1u32.to_be_bytes());
    ihdr.extend_from_slice(&1u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    png_chunk(&mut out, b"IHDR", &ihdr);
    let raw = [0, rgb[0], rgb[1], rgb[2]];
    let mut z = vec![0x78, 0x01, 0x01, 4, 0, 0xfb, 0xff];
    z.extend_from_slice(&raw);
    z.extend_from_slice(&adler32(&raw).to_be_bytes());
    png_chunk(&mut out, b"IDAT", &z);
    png_chunk(&mut out, b"IEND", &[]);
    out
}

/// A valid 1×1 grey baseline JPEG: quantisation all ones, one-code Huffman tables, a scan of
/// one block with DC difference 0 and end-of-block.
pub fn tiny_jpeg() -> Vec<u8> {
    let mut out = vec![0xff, 0xd8];
    out.extend_from_slice(&[0xff, 0xdb, 0x00, 0x43, 0x00]);
    out.extend_from_slice(&[1u8; 64]);
    out.extend_from_slice(&[
        0xff, 0xc0, 0x00, 0x0b, 0x08, 0x00, 0x01, 0x00, 0x01, 0x01, 0x01, 0x11, 0x00,
    ]);
    for class in [0x00, 0x10] {
        out.extend_from_slice(&[0xff, 0xc4, 0x00, 0x14, class, 0x01]);
        out.extend_from_slice(&[0u8; 15]);
        out.push(0x00);
    }
    out.extend_from_slice(&[
        0xff, 0xda, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3f, 0x00, 0x3f, 0xff, 0xd9,
    ]);
    out
}
