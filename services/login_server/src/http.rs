//! The `/msg_server` HTTP interface (§3.4): request framing and the reply bytes.

use serde_json::{Map, Value, json};

/// A request buffer holding more than this is closed without a reply (as the original).
pub const MAX_REQUEST: usize = 1024;

/// What the bytes received so far amount to.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// Not a whole request yet.
    Incomplete,
    /// Cannot become a valid request (or not one that fits the size limit).
    Malformed(String),
    /// A whole request; its target (path plus query, as sent).
    Complete(String),
}

/// Parses the whole buffer from the beginning: request line and headers with httparse, then
/// a body of `Content-Length` bytes or a chunked body (the body itself is ignored).
pub fn parse(buf: &[u8]) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Parsed::Incomplete,
        Err(e) => return Parsed::Malformed(e.to_string()),
    };
    let target = req.path.unwrap_or_default().to_string();
    let mut content_length: Option<usize> = None;
    let mut chunked = false;
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let Some(n) = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok())
            else {
                return Parsed::Malformed("bad Content-Length".into());
            };
            if content_length.is_some_and(|m| m != n) {
                return Parsed::Malformed("conflicting Content-Length headers".into());
            }
            content_length = Some(n);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = std::str::from_utf8(h.value)
                .is_ok_and(|v| v.to_ascii_lowercase().contains("chunked"));
        }
    }
    let body = &buf[head_len..];
    if chunked {
        return match chunked_complete(body) {
            Some(true) => Parsed::Complete(target),
            Some(false) => Parsed::Incomplete,
            None => Parsed::Malformed("bad chunked body".into()),
        };
    }
    let need = content_length.unwrap_or(0);
    if head_len.saturating_add(need) > MAX_REQUEST {
        return Parsed::Malformed(format!("body of {need} bytes over the size limit"));
    }
    if body.len() < need {
        Parsed::Incomplete
    } else {
        Parsed::Complete(target)
    }
}

/// Whether a chunked body is complete (Some(true)), not yet (Some(false)) or malformed (None).
fn chunked_complete(mut body: &[u8]) -> Option<bool> {
    loop {
        let Some(eol) = body.windows(2).position(|w| w == b"\r\n") else {
            return Some(false);
        };
        let line = std::str::from_utf8(&body[..eol]).ok()?;
        let size_text = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).ok()?;
        body = &body[eol + 2..];
        if size == 0 {
            // Trailers, then an empty line.
            loop {
                let Some(eol) = body.windows(2).position(|w| w == b"\r\n") else {
                    return Some(false);
                };
                if eol == 0 {
                    return Some(true);
                }
                body = &body[eol + 2..];
            }
        }
        let chunk_end = size.checked_add(2)?;
        if body.len() < chunk_end {
            return Some(false);
        }
        if &body[size..chunk_end] != b"\r\n" {
            return None;
        }
        body = &body[chunk_end..];
    }
}

/// The body for "no msg_server registered" (code 1).
pub fn no_msg_server_body() -> String {
    styled(&json!({ "code": 1, "msg": "没有msg_server" }))
}

/// The body for "every msg_server is full" (code 2).
pub fn all_full_body() -> String {
    styled(&json!({ "code": 2, "msg": "负载过高" }))
}

/// The success body (code 0). `port` is a string, as in the original.
pub fn ok_body(prior_ip: &str, backup_ip: &str, port: u16, msfs: &str, discovery: &str) -> String {
    styled(&json!({
        "backupIP": backup_ip,
        "code": 0,
        "discovery": discovery,
        "msfsBackup": msfs,
        "msfsPrior": msfs,
        "msg": "",
        "port": port.to_string(),
        "priorIP": prior_ip,
    }))
}

/// Writes a flat JSON object the way jsoncpp's `StyledWriter` does: `{` on its own line, one
/// `   "key" : value` per line in byte-wise key order, commas between members, `}`, newline.
fn styled(value: &Value) -> String {
    let empty = Map::new();
    let map = value.as_object().unwrap_or(&empty);
    let mut members: Vec<(&String, &Value)> = map.iter().collect();
    members.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut out = String::from("{\n");
    for (i, (k, v)) in members.iter().enumerate() {
        out.push_str("   ");
        out.push_str(&Value::String((*k).clone()).to_string());
        out.push_str(" : ");
        out.push_str(&v.to_string());
        if i + 1 < members.len() {
            out.push(',');
        }
        out.push('\n');
    }
    out.push_str("}\n");
    out
}

/// The whole HTTP reply: the original's exact header bytes, then the body.
pub fn reply(body: &str) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 200 OK\r\nConnection:close\r\nContent-Length:{}\r\n\
         Content-Type:text/html;charset=utf-8\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_have_the_original_sizes_and_layout() {
        assert_eq!(no_msg_server_body().len(), 49);
        assert_eq!(all_full_body().len(), 45);
        assert_eq!(
            no_msg_server_body(),
            "{\n   \"code\" : 1,\n   \"msg\" : \"没有msg_server\"\n}\n"
        );
        let ok = ok_body(
            "127.0.0.1",
            "127.0.0.1",
            8000,
            "http://127.0.0.1:8700/",
            "http://127.0.0.1/api/discovery",
        );
        assert_eq!(
            ok,
            "{\n   \"backupIP\" : \"127.0.0.1\",\n   \"code\" : 0,\n   \"discovery\" : \
             \"http://127.0.0.1/api/discovery\",\n   \"msfsBackup\" : \"http://127.0.0.1:8700/\",\n   \
             \"msfsPrior\" : \"http://127.0.0.1:8700/\",\n   \"msg\" : \"\",\n   \"port\" : \"8000\",\n   \
             \"priorIP\" : \"127.0.0.1\"\n}\n"
        );
    }

    #[test]
    fn framing() {
        assert_eq!(
            parse(b"GET /msg_server HTTP/1.1\r\nHost: x\r\n"),
            Parsed::Incomplete
        );
        assert_eq!(
            parse(b"GET /msg_server?a=1 HTTP/1.1\r\nHost: x\r\n\r\n"),
            Parsed::Complete("/msg_server?a=1".into())
        );
        assert_eq!(
            parse(b"POST /msg_server HTTP/1.0\r\nContent-Length: 4\r\n\r\nab"),
            Parsed::Incomplete
        );
        assert_eq!(
            parse(b"POST /msg_server HTTP/1.0\r\nContent-Length: 4\r\n\r\nabcd"),
            Parsed::Complete("/msg_server".into())
        );
        let chunked = b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n";
        assert_eq!(parse(chunked), Parsed::Incomplete);
        let mut done = chunked.to_vec();
        done.extend_from_slice(b"0\r\n\r\n");
        assert_eq!(parse(&done), Parsed::Complete("/x".into()));
        assert!(matches!(
            parse(b"\x16\x03\x01 garbage\r\n\r\n"),
            Parsed::Malformed(_)
        ));
        assert!(matches!(
            parse(b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n"),
            Parsed::Malformed(_)
        ));
        assert!(matches!(
            parse(b"GET / HTTP/1.1\r\nContent-Length: 5000\r\n\r\n"),
            Parsed::Malformed(_)
        ));
    }
}
