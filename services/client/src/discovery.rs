//! msg_server discovery through login_server's HTTP interface (base-login-route.md §3.4):
//! `GET /msg_server`, one request per connection, a JSON body.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use crate::Error;

/// Upper bound on the HTTP reply read from login_server (the real one is a few hundred bytes).
pub const MAX_HTTP_REPLY: usize = 64 * 1024;

/// Where to log in, as login_server's `/msg_server` reply gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MsgServerAddr {
    /// `priorIP`: the address to try first.
    pub prior_ip: String,
    /// `backupIP`: the address to try if the first fails.
    pub backup_ip: String,
    /// `port` (a decimal string in the JSON).
    pub port: u16,
    /// `msfsPrior` (file-storage URL), empty when absent.
    pub msfs_prior: String,
    /// `msfsBackup`, empty when absent.
    pub msfs_backup: String,
    /// `discovery` URL, empty when absent.
    pub discovery: String,
}

impl MsgServerAddr {
    /// An address with only an IP and a port (e.g. from `--msg-server host:port`).
    pub fn new(ip: &str, port: u16) -> MsgServerAddr {
        MsgServerAddr {
            prior_ip: ip.to_string(),
            backup_ip: ip.to_string(),
            port,
            msfs_prior: String::new(),
            msfs_backup: String::new(),
            discovery: String::new(),
        }
    }

    /// Parses `host:port`.
    pub fn parse(host_port: &str) -> Result<MsgServerAddr, Error> {
        let (host, port) = split_host_port(host_port)
            .ok_or_else(|| Error::Usage(format!("expected host:port, got {host_port:?}")))?;
        Ok(MsgServerAddr::new(host, port))
    }

    /// The addresses to try, prior first, without a duplicate.
    pub fn candidates(&self) -> Vec<(String, u16)> {
        let mut out = vec![(self.prior_ip.clone(), self.port)];
        if !self.backup_ip.is_empty() && self.backup_ip != self.prior_ip {
            out.push((self.backup_ip.clone(), self.port));
        }
        out
    }
}

/// `host:port` → (host, port); accepts `[v6]:port`.
fn split_host_port(s: &str) -> Option<(&str, u16)> {
    let (host, port) = s.rsplit_once(':')?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() {
        return None;
    }
    Some((host, port.parse().ok()?))
}

/// `http://host:port[/...]` → (host, port). Only plain HTTP exists in TeamTalk.
fn parse_http_url(url: &str) -> Result<(String, u16), Error> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| Error::Usage(format!("login URL must start with http://, got {url:?}")))?;
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    if authority.is_empty() {
        return Err(Error::Usage(format!("login URL has no host: {url:?}")));
    }
    match split_host_port(authority) {
        Some((h, p)) => Ok((h.to_string(), p)),
        None if !authority.contains(':') => Ok((authority.to_string(), 80)),
        None => Err(Error::Usage(format!("bad host:port in login URL {url:?}"))),
    }
}

/// Asks login_server at `login_url` (`http://host:port`) for a msg_server; `timeout` bounds the
/// connect and every read.
pub fn discover(login_url: &str, timeout: Duration) -> Result<MsgServerAddr, Error> {
    let (host, port) = parse_http_url(login_url)?;
    let body = http_get(&host, port, "/msg_server", timeout)?;
    parse_reply(&body)
}

/// One `GET` with `Connection: close`; returns the body of a 200 reply.
fn http_get(host: &str, port: u16, path: &str, timeout: Duration) -> Result<Vec<u8>, Error> {
    let addrs: Vec<_> = (host, port)
        .to_socket_addrs()
        .map_err(|e| Error::Discovery(format!("cannot resolve {host}:{port}: {e}")))?
        .collect();
    let mut last_err = None;
    let mut stream = None;
    for a in &addrs {
        match TcpStream::connect_timeout(a, timeout) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last_err = Some(e),
        }
    }
    let mut stream = match (stream, last_err) {
        (Some(s), _) => s,
        (None, Some(e)) => return Err(Error::Io(e)),
        (None, None) => {
            return Err(Error::Discovery(format!("{host}:{port} has no address")));
        }
    };
    let host_header = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host_header}\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    );
    stream.set_write_timeout(Some(timeout))?;
    stream.write_all(request.as_bytes())?;

    // Read until the body is complete (Content-Length) or the server closes.
    let deadline = Instant::now() + timeout;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        if let Some((head_len, Some(n))) = parse_head(&buf)? {
            if buf.len() >= head_len + n {
                return Ok(buf[head_len..head_len + n].to_vec());
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Error::Timeout("login_server HTTP reply".into()));
        }
        stream.set_read_timeout(Some(left))?;
        let n = match stream.read(&mut chunk) {
            Ok(n) => n,
            Err(e) if is_timeout(&e) => {
                return Err(Error::Timeout("login_server HTTP reply".into()));
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::Io(e)),
        };
        if n == 0 {
            // Closed: without a Content-Length the body is what we have.
            return match parse_head(&buf)? {
                Some((head_len, None)) => Ok(buf[head_len..].to_vec()),
                Some((_, Some(n))) => Err(Error::Discovery(format!(
                    "login_server closed the connection before the whole body ({n} bytes) arrived"
                ))),
                None => Err(Error::Discovery(
                    "login_server closed the connection without a complete HTTP reply".into(),
                )),
            };
        }
        if buf.len() + n > MAX_HTTP_REPLY {
            return Err(Error::Discovery(format!(
                "login_server reply exceeds {MAX_HTTP_REPLY} bytes"
            )));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

pub(crate) fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

/// If the head is complete: (head length including the blank line, Content-Length). Fails on a
/// non-200 status or a malformed head.
fn parse_head(buf: &[u8]) -> Result<Option<(usize, Option<usize>)>, Error> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = String::from_utf8_lossy(&buf[..end]);
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or("");
    let mut parts = status.split_whitespace();
    let version = parts.next().unwrap_or("");
    let code = parts.next().unwrap_or("");
    if !version.starts_with("HTTP/") {
        return Err(Error::Discovery(format!("not an HTTP reply: {status:?}")));
    }
    if code != "200" {
        return Err(Error::Discovery(format!(
            "login_server answered {status:?}"
        )));
    }
    let mut content_length = None;
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            if name.trim().eq_ignore_ascii_case("content-length") {
                let n = value.trim().parse::<usize>().map_err(|_| {
                    Error::Discovery(format!("bad Content-Length: {:?}", value.trim()))
                })?;
                if n > MAX_HTTP_REPLY {
                    return Err(Error::Discovery(format!(
                        "login_server reply exceeds {MAX_HTTP_REPLY} bytes"
                    )));
                }
                content_length = Some(n);
            }
        }
    }
    Ok(Some((end + 4, content_length)))
}

/// Interprets the JSON body of `/msg_server`.
pub fn parse_reply(body: &[u8]) -> Result<MsgServerAddr, Error> {
    let v: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
        Error::Discovery(format!(
            "login_server reply is not JSON ({e}): {:?}",
            String::from_utf8_lossy(&body[..body.len().min(200)])
        ))
    })?;
    let code = v
        .get("code")
        .and_then(json_u64)
        .ok_or_else(|| Error::Discovery("login_server reply has no numeric \"code\"".into()))?;
    let msg = v
        .get("msg")
        .and_then(|m| m.as_str())
        .unwrap_or("")
        .to_string();
    match code {
        0 => {}
        1 => return Err(Error::NoMsgServer(msg)),
        2 => return Err(Error::MsgServersFull(msg)),
        other => {
            return Err(Error::Discovery(format!(
                "login_server answered code {other}: {msg}"
            )));
        }
    }
    let text = |key: &str| -> String {
        v.get(key)
            .and_then(|x| x.as_str())
            .unwrap_or("")
            .to_string()
    };
    let prior_ip = text("priorIP");
    let backup_ip = text("backupIP");
    if prior_ip.is_empty() && backup_ip.is_empty() {
        return Err(Error::Discovery(
            "login_server reply (code 0) has neither priorIP nor backupIP".into(),
        ));
    }
    // The original sends the port as a string; accept a number too.
    let port = v
        .get("port")
        .and_then(|p| match p {
            serde_json::Value::String(s) => s.trim().parse::<u16>().ok(),
            other => json_u64(other).and_then(|n| u16::try_from(n).ok()),
        })
        .filter(|p| *p != 0)
        .ok_or_else(|| Error::Discovery("login_server reply has no valid \"port\"".into()))?;
    Ok(MsgServerAddr {
        prior_ip: if prior_ip.is_empty() {
            backup_ip.clone()
        } else {
            prior_ip.clone()
        },
        backup_ip: if backup_ip.is_empty() {
            prior_ip
        } else {
            backup_ip
        },
        port,
        msfs_prior: text("msfsPrior"),
        msfs_backup: text("msfsBackup"),
        discovery: text("discovery"),
    })
}

fn json_u64(v: &serde_json::Value) -> Option<u64> {
    match v {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        assert_eq!(
            parse_http_url("http://127.0.0.1:8080").unwrap(),
            ("127.0.0.1".to_string(), 8080)
        );
        assert_eq!(
            parse_http_url("http://example.org/x").unwrap(),
            ("example.org".to_string(), 80)
        );
        assert_eq!(
            parse_http_url("http://[::1]:81/").unwrap(),
            ("::1".to_string(), 81)
        );
        assert!(parse_http_url("https://x:1").is_err());
        assert!(parse_http_url("http://").is_err());
        assert!(parse_http_url("http://h:notaport").is_err());
        assert_eq!(MsgServerAddr::parse("10.0.0.1:8000").unwrap().port, 8000);
        assert!(MsgServerAddr::parse("10.0.0.1").is_err());
    }

    #[test]
    fn parses_the_three_original_bodies() {
        let ok = "{\n   \"backupIP\" : \"127.0.0.2\",\n   \"code\" : 0,\n   \"discovery\" : \"http://127.0.0.1/api/discovery\",\n   \"msfsBackup\" : \"http://127.0.0.1:8700/\",\n   \"msfsPrior\" : \"http://127.0.0.1:8700/\",\n   \"msg\" : \"\",\n   \"port\" : \"8000\",\n   \"priorIP\" : \"127.0.0.1\"\n}\n";
        let a = parse_reply(ok.as_bytes()).unwrap();
        assert_eq!(a.prior_ip, "127.0.0.1");
        assert_eq!(a.backup_ip, "127.0.0.2");
        assert_eq!(a.port, 8000);
        assert_eq!(a.msfs_prior, "http://127.0.0.1:8700/");
        assert_eq!(
            a.candidates(),
            vec![("127.0.0.1".into(), 8000), ("127.0.0.2".into(), 8000)]
        );
        let none = "{\n   \"code\" : 1,\n   \"msg\" : \"没有msg_server\"\n}\n";
        assert_eq!(none.len(), 49);
        match parse_reply(none.as_bytes()) {
            Err(Error::NoMsgServer(m)) => assert_eq!(m, "没有msg_server"),
            other => panic!("{other:?}"),
        }
        let full = "{\n   \"code\" : 2,\n   \"msg\" : \"负载过高\"\n}\n";
        assert_eq!(full.len(), 45);
        match parse_reply(full.as_bytes()) {
            Err(Error::MsgServersFull(m)) => assert_eq!(m, "负载过高"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(parse_reply(b"<html>"), Err(Error::Discovery(_))));
        assert!(matches!(
            parse_reply(b"{\"code\":0,\"priorIP\":\"1.2.3.4\",\"port\":\"x\"}"),
            Err(Error::Discovery(_))
        ));
        assert_eq!(
            parse_reply(b"{\"code\":0,\"priorIP\":\"1.2.3.4\",\"port\":9}")
                .unwrap()
                .backup_ip,
            "1.2.3.4"
        );
    }

    #[test]
    fn head_parsing() {
        assert_eq!(parse_head(b"HTTP/1.1 200 OK\r\nConn").unwrap(), None);
        assert_eq!(
            parse_head(b"HTTP/1.1 200 OK\r\nContent-Length:12\r\n\r\nabc").unwrap(),
            Some((38, Some(12)))
        );
        assert!(parse_head(b"HTTP/1.1 404 Not Found\r\n\r\n").is_err());
        assert!(parse_head(b"SSH-2.0\r\n\r\n").is_err());
    }
}
