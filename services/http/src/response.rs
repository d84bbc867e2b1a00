//! The response writer.

use std::io::Write;

/// A status code with its reason phrase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Status {
    pub code: u16,
    pub reason: &'static str,
}

impl Status {
    pub const OK: Status = Status::new(200, "OK");
    pub const PARTIAL_CONTENT: Status = Status::new(206, "Partial Content");
    pub const NOT_MODIFIED: Status = Status::new(304, "Not Modified");
    pub const BAD_REQUEST: Status = Status::new(400, "Bad Request");
    pub const FORBIDDEN: Status = Status::new(403, "Forbidden");
    pub const NOT_FOUND: Status = Status::new(404, "Not Found");
    pub const METHOD_NOT_ALLOWED: Status = Status::new(405, "Method Not Allowed");
    pub const REQUEST_TIMEOUT: Status = Status::new(408, "Request Timeout");
    pub const PAYLOAD_TOO_LARGE: Status = Status::new(413, "Payload Too Large");
    pub const RANGE_NOT_SATISFIABLE: Status = Status::new(416, "Range Not Satisfiable");
    pub const HEADERS_TOO_LARGE: Status = Status::new(431, "Request Header Fields Too Large");
    pub const INTERNAL_ERROR: Status = Status::new(500, "Internal Server Error");
    pub const NOT_IMPLEMENTED: Status = Status::new(501, "Not Implemented");
    pub const UNAVAILABLE: Status = Status::new(503, "Service Unavailable");
    pub const INSUFFICIENT_STORAGE: Status = Status::new(507, "Insufficient Storage");

    pub const fn new(code: u16, reason: &'static str) -> Status {
        Status { code, reason }
    }
}

/// A response: status, header fields, body.
///
/// Written as `HTTP/1.1 <code> <reason>`, then `Connection:close` or `Connection:keep-alive`
/// (what [`crate::HttpConn`] decided), `Content-Length:<body length>`, then the fields given
/// here in their order, each `Name:value`, an empty line and the body. So
/// `Response::ok("text/html;charset=utf-8", body)` on a closing connection gives exactly the
/// bytes of the original's replies.
///
/// A field whose name or value holds a CR or LF is left out (and logged), so no value can
/// forge a header line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub status: Status,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// A response with no fields and an empty body.
    pub fn new(status: Status) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// 200 with a `Content-Type` and a body.
    pub fn ok(content_type: &str, body: impl Into<Vec<u8>>) -> Response {
        Response::new(Status::OK)
            .header("Content-Type", content_type)
            .body(body)
    }

    /// Adds a header field after those already given.
    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Response {
        self.headers.push((name, value.into()));
        self
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Response {
        self.body = body.into();
        self
    }

    /// Appends the response to `out`; the body only if `with_body` (not for `HEAD`).
    pub fn write_to(&self, out: &mut Vec<u8>, keep_alive: bool, with_body: bool) {
        self.write_head(out, keep_alive, self.body.len() as u64);
        if with_body {
            out.extend_from_slice(&self.body);
        }
    }

    /// Appends the status line and header fields to `out`, announcing `content_length` body
    /// bytes (the own body is not written: a streamed body follows separately).
    pub fn write_head(&self, out: &mut Vec<u8>, keep_alive: bool, content_length: u64) {
        let connection = if keep_alive { "keep-alive" } else { "close" };
        // Writing to a Vec cannot fail.
        let _ = write!(
            out,
            "HTTP/1.1 {} {}\r\nConnection:{connection}\r\nContent-Length:{content_length}\r\n",
            self.status.code, self.status.reason,
        );
        for (name, value) in &self.headers {
            if has_line_break(name) || has_line_break(value) {
                log::warn!("http: header field {name:?} with a line break left out");
                continue;
            }
            let _ = write!(out, "{name}:{value}\r\n");
        }
        out.extend_from_slice(b"\r\n");
    }

    /// The bytes [`Response::write_to`] appends.
    pub fn to_bytes(&self, keep_alive: bool, with_body: bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(128 + self.body.len());
        self.write_to(&mut out, keep_alive, with_body);
        out
    }
}

fn has_line_break(s: &str) -> bool {
    s.bytes().any(|b| b == b'\r' || b == b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_original_reply_bytes() {
        let body = "{\n   \"code\" : 1\n}\n";
        let r = Response::ok("text/html;charset=utf-8", body);
        assert_eq!(
            r.to_bytes(false, true),
            format!(
                "HTTP/1.1 200 OK\r\nConnection:close\r\nContent-Length:{}\r\n\
                 Content-Type:text/html;charset=utf-8\r\n\r\n{body}",
                body.len()
            )
            .into_bytes()
        );
    }

    #[test]
    fn keep_alive_head_and_fields_in_order() {
        let r = Response::new(Status::NOT_FOUND)
            .header("X-A", "1")
            .header("X-B", "2")
            .body("gone");
        assert_eq!(
            r.to_bytes(true, false),
            b"HTTP/1.1 404 Not Found\r\nConnection:keep-alive\r\nContent-Length:4\r\n\
              X-A:1\r\nX-B:2\r\n\r\n"
        );
        let forged = Response::new(Status::OK).header("X-Evil", "a\r\nSet-Cookie: x");
        assert_eq!(
            forged.to_bytes(false, true),
            b"HTTP/1.1 200 OK\r\nConnection:close\r\nContent-Length:0\r\n\r\n"
        );
    }
}
