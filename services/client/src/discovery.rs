//! msg_server discovery through login_server's HTTP interface (base-login-route.md §3.4):
//! `GET /msg_server` with the `ureq` client, one request per connection, a JSON body.

use std::time::Duration;

use crate::Error;

/// Upper bound on the head and on the body of login_server's HTTP reply (the real one is a few
/// hundred bytes).
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
/// whole exchange (resolving, connecting, the request, the reply).
pub fn discover(login_url: &str, timeout: Duration) -> Result<MsgServerAddr, Error> {
    let (host, port) = parse_http_url(login_url)?;
    let body = http_get(&host, port, "/msg_server", timeout)?;
    parse_reply(&body)
}

/// One `GET` with `Connection: close` through `ureq` (plain HTTP, no proxy, no redirect);
/// returns the body of a 200 reply. `timeout` bounds the whole exchange.
fn http_get(host: &str, port: u16, path: &str, timeout: Duration) -> Result<Vec<u8>, Error> {
    let url = if host.contains(':') {
        format!("http://[{host}]:{port}{path}")
    } else {
        format!("http://{host}:{port}{path}")
    };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .proxy(None)
        .max_redirects(0)
        .http_status_as_error(false)
        .max_response_header_size(MAX_HTTP_REPLY)
        .build()
        .into();
    let mut response = agent
        .get(&url)
        .header("Connection", "close")
        .call()
        .map_err(|e| match e {
            ureq::Error::Io(e) if !is_timeout(&e) => Error::Io(e),
            ureq::Error::HostNotFound => Error::Discovery(format!("cannot resolve {host}:{port}")),
            other => reply_error(other),
        })?;
    let status = response.status();
    if status != ureq::http::StatusCode::OK {
        return Err(Error::Discovery(format!(
            "login_server answered {} {}",
            status.as_str(),
            status.canonical_reason().unwrap_or("")
        )));
    }
    response
        .body_mut()
        .with_config()
        .limit(MAX_HTTP_REPLY as u64)
        .read_to_vec()
        .map_err(reply_error)
}

/// A failure while waiting for or reading the reply: a timeout, or a reply that is cut short,
/// too large or not HTTP.
fn reply_error(e: ureq::Error) -> Error {
    match e {
        ureq::Error::Timeout(_) => Error::Timeout("login_server HTTP reply".into()),
        ureq::Error::Io(io) if is_timeout(&io) => Error::Timeout("login_server HTTP reply".into()),
        ureq::Error::BodyExceedsLimit(_) | ureq::Error::LargeResponseHeader(..) => {
            Error::Discovery(format!("login_server reply exceeds {MAX_HTTP_REPLY} bytes"))
        }
        other => Error::Discovery(format!("login_server reply: {other}")),
    }
}

pub(crate) fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
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
    fn refused_connection_is_io_and_oversized_reply_is_refused() {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let url = format!("http://127.0.0.1:{port}");
        assert!(matches!(
            discover(&url, Duration::from_secs(5)),
            Err(Error::Io(_))
        ));

        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let _ = s.read(&mut [0u8; 1024]);
            let body = vec![b' '; MAX_HTTP_REPLY + 1];
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length:{}\r\n\r\n", body.len());
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(&body);
        });
        match discover(&url, Duration::from_secs(5)) {
            Err(Error::Discovery(m)) => assert!(m.contains("exceeds"), "{m}"),
            other => panic!("{other:?}"),
        }
        server.join().unwrap();
    }
}
