//! One HTTP connection: requests parsed from its netlib input, responses written to it.

use std::fmt;

use netlib::{Buffer, ConnId, Net};

use crate::request::{Request, wants_keep_alive};
use crate::response::{Response, Status};

/// The interim response to `Expect: 100-continue` ([`HttpConn::take_continue`]).
pub const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// Size limits of one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Request line and header fields, the empty line included; also the longest chunk-size
    /// line and all trailer fields together.
    pub max_head: usize,
    /// Header fields.
    pub max_headers: usize,
    /// Body bytes (`Content-Length`, or the chunk data of a chunked body).
    pub max_body: usize,
    /// Head and body together; also what may wait behind a request whose response is pending.
    pub max_request: usize,
}

impl Limits {
    /// Head limit of [`Limits::with_body`].
    pub const HEAD: usize = 8 * 1024;
    /// Header field limit of [`Limits::with_body`] and [`Limits::total`].
    pub const HEADERS: usize = 64;

    /// A head of up to [`Limits::HEAD`] bytes and [`Limits::HEADERS`] fields, a body of up to
    /// `max_body` bytes.
    pub const fn with_body(max_body: usize) -> Limits {
        Limits {
            max_head: Limits::HEAD,
            max_headers: Limits::HEADERS,
            max_body,
            max_request: Limits::HEAD + max_body,
        }
    }

    /// Head and body together at most `max_request` bytes (login_server's 1024).
    pub const fn total(max_request: usize) -> Limits {
        Limits {
            max_head: max_request,
            max_headers: Limits::HEADERS,
            max_body: max_request,
            max_request,
        }
    }
}

impl Default for Limits {
    /// Bodies of up to 64 KiB.
    fn default() -> Limits {
        Limits::with_body(64 * 1024)
    }
}

/// Why a connection's bytes are not (or no longer) a request; the connection should go, with
/// [`HttpConn::reject`] or without a reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HttpError {
    /// Not HTTP/1.x, or a broken body framing (400).
    Malformed(String),
    /// The head is over [`Limits::max_head`] or has over [`Limits::max_headers`] fields (431).
    HeadTooLarge,
    /// The body is over [`Limits::max_body`], or head and body over [`Limits::max_request`]
    /// (413).
    BodyTooLarge,
    /// A transfer coding other than `chunked` alone (501).
    UnsupportedEncoding(String),
    /// Over [`Limits::max_request`] bytes arrived while a response was pending.
    Backlog,
}

impl HttpError {
    /// The status that answers it.
    pub fn status(&self) -> Status {
        match self {
            HttpError::Malformed(_) | HttpError::Backlog => Status::BAD_REQUEST,
            HttpError::HeadTooLarge => Status::HEADERS_TOO_LARGE,
            HttpError::BodyTooLarge => Status::PAYLOAD_TOO_LARGE,
            HttpError::UnsupportedEncoding(_) => Status::NOT_IMPLEMENTED,
        }
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::Malformed(why) => write!(f, "malformed request ({why})"),
            HttpError::HeadTooLarge => f.write_str("request head over the size limit"),
            HttpError::BodyTooLarge => f.write_str("request body over the size limit"),
            HttpError::UnsupportedEncoding(coding) => {
                write!(f, "unsupported transfer coding {coding:?}")
            }
            HttpError::Backlog => f.write_str("too many bytes behind a pending response"),
        }
    }
}

impl std::error::Error for HttpError {}

/// What a request handler of [`HttpConn::serve`] did with a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// Write this response (then keep or close the connection, as decided for the request).
    Respond(Response),
    /// The response comes later through [`HttpConn::respond`].
    Later,
    /// Close the connection without a response.
    Close,
}

/// Where the connection is in its current request.
#[derive(Debug)]
enum Phase {
    /// Waiting for a whole request line and header fields.
    Head,
    /// Reading the body of a request whose head is parsed.
    Body(Pending),
    /// A request was handed out and is not answered yet.
    InFlight { head_only: bool, keep_alive: bool },
    /// The head of a streamed response is written; its body is being written by the server.
    Streaming { keep_alive: bool },
    /// No more requests: the connection is closing.
    Closed,
}

/// A request whose body is still arriving.
#[derive(Debug)]
struct Pending {
    request: Request,
    head_len: usize,
    framing: Framing,
}

#[derive(Debug)]
enum Framing {
    /// `Content-Length`: body bytes still to come.
    Length(usize),
    /// Chunked transfer coding; trailer bytes read so far.
    Chunked { step: Chunk, trailer_len: usize },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Chunk {
    /// A chunk-size line.
    Size,
    /// Data bytes of the current chunk still to come.
    Data(usize),
    /// The line end after a chunk's data.
    DataEnd,
    /// Trailer fields up to the empty line.
    Trailer,
}

/// Parses requests from one connection's input and writes their responses (see the crate
/// documentation for the rules).
#[derive(Debug)]
pub struct HttpConn {
    limits: Limits,
    keep_alive: bool,
    /// Keep a connection whose request did not ask for it in a `Connection` field.
    keep_unasked: bool,
    phase: Phase,
    /// Bytes that arrived while a response was pending, parsed before any newer input.
    held: Buffer,
    /// Bytes at the front of the parsed input already searched for a line end.
    scanned: usize,
    /// httparse runs over the current head.
    head_parses: usize,
    /// The request being read asked for `Expect: 100-continue` and no interim response went.
    expect_continue: bool,
}

impl HttpConn {
    pub fn new(limits: Limits) -> HttpConn {
        HttpConn {
            limits,
            keep_alive: true,
            keep_unasked: true,
            phase: Phase::Head,
            held: Buffer::new(),
            scanned: 0,
            head_parses: 0,
            expect_continue: false,
        }
    }

    /// `false`: close the connection after every response, whatever the client asked.
    pub fn keep_alive(mut self, keep_alive: bool) -> HttpConn {
        self.keep_alive = keep_alive;
        self
    }

    /// Keep the connection only for a request whose `Connection` field asks for
    /// `keep-alive` (browsers do), close after the response otherwise, as servers that always
    /// close do: a client written for those may read a response up to the end of the
    /// connection.
    pub fn keep_alive_when_asked(mut self) -> HttpConn {
        self.keep_unasked = false;
        self
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// A request was handed out and its response is not written yet.
    pub fn in_flight(&self) -> bool {
        matches!(self.phase, Phase::InFlight { .. })
    }

    /// A streamed response is being written ([`HttpConn::start_stream`] until
    /// [`HttpConn::finish_stream`]).
    pub fn streaming(&self) -> bool {
        matches!(self.phase, Phase::Streaming { .. })
    }

    /// True once per request that asked for `Expect: 100-continue` and whose body has not
    /// all arrived: the owner then sends [`CONTINUE`] so the client sends the body (a server
    /// that refuses the request from its head answers instead, and never calls this).
    pub fn take_continue(&mut self) -> bool {
        let due = self.expect_continue && matches!(self.phase, Phase::Body(_));
        self.expect_continue = false;
        due
    }

    /// Request bytes this connection holds: the body read so far of a request still arriving,
    /// and the bytes held behind a pending response.
    pub fn buffered(&self) -> usize {
        let body = match &self.phase {
            Phase::Body(pending) => pending.request.body.len(),
            _ => 0,
        };
        body + self.held.len()
    }

    /// The next whole request, its bytes consumed from `input` (or from the bytes held while a
    /// response was pending). `None`: more bytes are needed, a request is in flight (new bytes
    /// are then held, see [`HttpConn::hold`]), or the connection is closing.
    pub fn next_request(&mut self, input: &mut Buffer) -> Result<Option<Request>, HttpError> {
        match self.phase {
            Phase::Closed => {
                input.consume(input.len());
                return Ok(None);
            }
            Phase::InFlight { .. } | Phase::Streaming { .. } => {
                self.hold(input)?;
                return Ok(None);
            }
            Phase::Head | Phase::Body(_) => {}
        }
        if self.held.is_empty() {
            return self.parse(input);
        }
        self.held.extend(input.data());
        input.consume(input.len());
        let mut held = std::mem::take(&mut self.held);
        let parsed = self.parse(&mut held);
        self.held = held;
        parsed
    }

    /// Moves `input` into the connection's own buffer, to be parsed once the pending response
    /// is written. Fails past [`Limits::max_request`] held bytes (`input` is then left alone).
    pub fn hold(&mut self, input: &mut Buffer) -> Result<(), HttpError> {
        if self.held.len() + input.len() > self.limits.max_request {
            return Err(HttpError::Backlog);
        }
        self.held.extend(input.data());
        input.consume(input.len());
        Ok(())
    }

    /// Appends the response to the request in flight to `out` and says whether the connection
    /// stays open (both the request and this server want it). False without writing anything if
    /// no request is in flight.
    pub fn answer(&mut self, response: &Response, out: &mut Vec<u8>) -> bool {
        let Phase::InFlight {
            head_only,
            keep_alive,
        } = self.phase
        else {
            return false;
        };
        let keep = keep_alive && self.keep_alive;
        response.write_to(out, keep, !head_only);
        self.phase = if keep { Phase::Head } else { Phase::Closed };
        keep
    }

    /// Writes the response to the request in flight, then closes the connection unless it is
    /// kept alive. True if the connection stays open: [`HttpConn::resume`] then goes on with
    /// bytes that arrived meanwhile.
    pub fn respond(&mut self, net: &mut Net, conn: ConnId, response: &Response) -> bool {
        if !self.in_flight() {
            log::warn!("http {conn:?}: a response with no request in flight, not sent");
            return net.is_open(conn);
        }
        let mut keep = false;
        let sent = net.send_with(conn, |out| keep = self.answer(response, out));
        if sent && keep {
            return true;
        }
        self.phase = Phase::Closed;
        // Queued output is written before the socket goes.
        net.close(conn);
        false
    }

    /// Hands every whole request to `handle` in order and carries out its [`Answer`], until
    /// more bytes are needed, a response is left for later or the connection closes. An error
    /// leaves the connection open for the caller to [`HttpConn::reject`] or close.
    pub fn serve(
        &mut self,
        net: &mut Net,
        conn: ConnId,
        input: &mut Buffer,
        mut handle: impl FnMut(&mut Net, Request) -> Answer,
    ) -> Result<(), HttpError> {
        while let Some(request) = self.next_request(input)? {
            match handle(net, request) {
                Answer::Respond(response) => {
                    if !self.respond(net, conn, &response) {
                        return Ok(());
                    }
                }
                Answer::Later => return self.hold(input),
                Answer::Close => {
                    self.phase = Phase::Closed;
                    net.close(conn);
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// Starts a streamed response to the request in flight: writes the head of `response`
    /// announcing `body_len` body bytes (its own body is ignored). `Some(true)`: the caller
    /// writes exactly `body_len` bytes to the connection, then calls
    /// [`HttpConn::finish_stream`]; `Some(false)`: no body is due (a `HEAD` request, or a
    /// status without a body such as 304), call [`HttpConn::finish_stream`] at once. `None`:
    /// no request was in flight, or the connection closed on this write.
    pub fn start_stream(
        &mut self,
        net: &mut Net,
        conn: ConnId,
        response: &Response,
        body_len: u64,
    ) -> Option<bool> {
        let Phase::InFlight {
            head_only,
            keep_alive,
        } = self.phase
        else {
            log::warn!("http {conn:?}: a streamed response with no request in flight, not sent");
            return None;
        };
        let keep = keep_alive && self.keep_alive;
        if !net.send_with(conn, |out| response.write_head(out, keep, body_len)) {
            self.phase = Phase::Closed;
            return None;
        }
        self.phase = Phase::Streaming { keep_alive: keep };
        let no_body = response.status.code == 304 || response.status.code < 200;
        Some(!head_only && !no_body)
    }

    /// Ends a streamed response: the connection goes on to its next request (true: call
    /// [`HttpConn::resume`]) or is closed once its output is written (false).
    pub fn finish_stream(&mut self, net: &mut Net, conn: ConnId) -> bool {
        let Phase::Streaming { keep_alive } = self.phase else {
            return net.is_open(conn) && !matches!(self.phase, Phase::Closed);
        };
        if keep_alive && net.is_open(conn) {
            self.phase = Phase::Head;
            return true;
        }
        self.phase = Phase::Closed;
        net.close(conn);
        false
    }

    /// [`HttpConn::serve`] over the bytes held while a response was pending (call it after
    /// [`HttpConn::respond`] kept the connection open).
    pub fn resume(
        &mut self,
        net: &mut Net,
        conn: ConnId,
        handle: impl FnMut(&mut Net, Request) -> Answer,
    ) -> Result<(), HttpError> {
        self.serve(net, conn, &mut Buffer::new(), handle)
    }

    /// Closes the connection after `error`, answering with its status (empty body) unless a
    /// request is in flight, whose response would have had to come first.
    pub fn reject(&mut self, net: &mut Net, conn: ConnId, error: &HttpError) {
        self.reject_with(net, conn, &Response::new(error.status()));
    }

    /// Like [`HttpConn::reject`] with a response of the server's own (a body explaining the
    /// refusal).
    pub fn reject_with(&mut self, net: &mut Net, conn: ConnId, response: &Response) {
        if matches!(self.phase, Phase::Head | Phase::Body(_)) {
            net.send_with(conn, |out| response.write_to(out, false, true));
        }
        self.phase = Phase::Closed;
        net.close(conn);
    }

    /// Head, then body, from `src`: a whole request or `None` for more bytes.
    fn parse(&mut self, src: &mut Buffer) -> Result<Option<Request>, HttpError> {
        if matches!(self.phase, Phase::Head) && !self.parse_head(src)? {
            return Ok(None);
        }
        let Phase::Body(pending) = &mut self.phase else {
            return Ok(None);
        };
        if !pending.read_body(src, &self.limits, &mut self.scanned)? {
            return Ok(None);
        }
        let Phase::Body(pending) = std::mem::replace(&mut self.phase, Phase::Closed) else {
            return Ok(None);
        };
        let request = pending.request;
        self.phase = Phase::InFlight {
            head_only: request.method == "HEAD",
            keep_alive: request.keep_alive && (self.keep_unasked || request.asked_keep_alive()),
        };
        Ok(Some(request))
    }

    /// Parses the head once it may have grown by a line (or on the first bytes, to refuse
    /// what is not HTTP at once); on success consumes it and enters [`Phase::Body`].
    fn parse_head(&mut self, src: &mut Buffer) -> Result<bool, HttpError> {
        let limits = self.limits;
        let data = src.data();
        let window = &data[..data.len().min(limits.max_head)];
        let first = self.scanned == 0 && !window.is_empty();
        let new_line = window[self.scanned.min(window.len())..].contains(&b'\n');
        self.scanned = window.len();
        // An incomplete head that already fills the limit cannot fit in it.
        let incomplete = || {
            if data.len() >= limits.max_head {
                Err(HttpError::HeadTooLarge)
            } else {
                Ok(false)
            }
        };
        if !first && !new_line {
            return incomplete();
        }
        self.head_parses += 1;
        // Request line, fields, the empty line and a few empty lines before the request.
        if self.head_parses > limits.max_headers + 8 {
            return Err(HttpError::HeadTooLarge);
        }
        let mut fields = vec![httparse::EMPTY_HEADER; limits.max_headers];
        let mut head = httparse::Request::new(&mut fields);
        let head_len = match head.parse(window) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => return incomplete(),
            Err(httparse::Error::TooManyHeaders) => return Err(HttpError::HeadTooLarge),
            Err(e) => return Err(HttpError::Malformed(e.to_string())),
        };
        let headers: Vec<(String, Vec<u8>)> = head
            .headers
            .iter()
            .map(|h| (h.name.to_string(), h.value.to_vec()))
            .collect();
        let minor_version = head.version.unwrap_or(1);
        let framing = framing(&headers, head_len, &limits)?;
        self.expect_continue = !matches!(framing, Framing::Length(0))
            && headers.iter().any(|(n, v)| {
                n.eq_ignore_ascii_case("expect")
                    && v.trim_ascii().eq_ignore_ascii_case(b"100-continue")
            });
        let request = Request {
            method: head.method.unwrap_or_default().to_string(),
            target: head.path.unwrap_or_default().to_string(),
            minor_version,
            keep_alive: wants_keep_alive(minor_version, &headers),
            headers,
            body: Vec::new(),
        };
        take(src, head_len, &mut self.scanned);
        self.head_parses = 0;
        self.phase = Phase::Body(Pending {
            request,
            head_len,
            framing,
        });
        Ok(true)
    }
}

impl Pending {
    /// Moves body bytes from `src` into the request; true once the body is whole.
    fn read_body(
        &mut self,
        src: &mut Buffer,
        limits: &Limits,
        scanned: &mut usize,
    ) -> Result<bool, HttpError> {
        let (step, trailer_len) = match &mut self.framing {
            Framing::Length(left) => {
                *left -= self.request.append_body(src, *left, scanned);
                return Ok(*left == 0);
            }
            Framing::Chunked { step, trailer_len } => (step, trailer_len),
        };
        loop {
            match *step {
                Chunk::Size => {
                    let Some(n) = find_line(src.data(), scanned, limits.max_head)? else {
                        return Ok(false);
                    };
                    let size = chunk_size(&src.data()[..n])?;
                    take(src, n, scanned);
                    let body = self.request.body.len().saturating_add(size);
                    if body > limits.max_body
                        || self.head_len.saturating_add(body) > limits.max_request
                    {
                        return Err(HttpError::BodyTooLarge);
                    }
                    *step = if size == 0 {
                        Chunk::Trailer
                    } else {
                        Chunk::Data(size)
                    };
                }
                Chunk::Data(left) => {
                    let left = left - self.request.append_body(src, left, scanned);
                    if left > 0 {
                        *step = Chunk::Data(left);
                        return Ok(false);
                    }
                    *step = Chunk::DataEnd;
                }
                Chunk::DataEnd => {
                    let data = src.data();
                    let n = if data.starts_with(b"\r\n") {
                        2
                    } else if data.starts_with(b"\n") {
                        1
                    } else if data.is_empty() || data == b"\r" {
                        return Ok(false);
                    } else {
                        return Err(HttpError::Malformed("chunk data without a line end".into()));
                    };
                    take(src, n, scanned);
                    *step = Chunk::Size;
                }
                Chunk::Trailer => {
                    let Some(n) = find_line(src.data(), scanned, limits.max_head)? else {
                        return Ok(false);
                    };
                    let empty = matches!(&src.data()[..n], b"\n" | b"\r\n");
                    take(src, n, scanned);
                    if empty {
                        return Ok(true);
                    }
                    *trailer_len += n;
                    if *trailer_len > limits.max_head {
                        return Err(HttpError::HeadTooLarge);
                    }
                }
            }
        }
    }
}

impl Request {
    /// Moves up to `max` bytes from the front of `src` to the body; returns how many.
    fn append_body(&mut self, src: &mut Buffer, max: usize, scanned: &mut usize) -> usize {
        let n = max.min(src.len());
        self.body.extend_from_slice(&src.data()[..n]);
        take(src, n, scanned);
        n
    }
}

/// Consumes `n` bytes of `src`; the line search starts again at its new front.
fn take(src: &mut Buffer, n: usize, scanned: &mut usize) {
    src.consume(n);
    *scanned = 0;
}

/// The length of the first line of `data`, its `\n` included, searching only bytes not searched
/// before. A line (or the bytes without a line end) over `max_line` is an error.
fn find_line(
    data: &[u8],
    scanned: &mut usize,
    max_line: usize,
) -> Result<Option<usize>, HttpError> {
    let from = (*scanned).min(data.len());
    let found = data[from..].iter().position(|&b| b == b'\n');
    let len = found.map_or(data.len(), |i| from + i + 1);
    if len > max_line {
        return Err(HttpError::Malformed(format!(
            "a chunk-size or trailer line over {max_line} bytes"
        )));
    }
    *scanned = data.len();
    Ok(found.map(|_| len))
}

/// The hexadecimal size at the start of a chunk-size line (extensions after `;` ignored).
fn chunk_size(line: &[u8]) -> Result<usize, HttpError> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    let rest = &line[digits..];
    if digits == 0 || !matches!(rest.first(), None | Some(b';' | b' ' | b'\t')) {
        return Err(HttpError::Malformed(format!(
            "bad chunk-size line {:?}",
            String::from_utf8_lossy(line)
        )));
    }
    let zeros = line.iter().take_while(|&&b| b == b'0').count().min(digits);
    let significant = &line[zeros..digits];
    // Fifteen hexadecimal digits exceed any body limit.
    if significant.len() > 15 {
        return Err(HttpError::BodyTooLarge);
    }
    Ok(significant
        .iter()
        .fold(0usize, |n, &b| n * 16 + hex_value(b)))
}

fn hex_value(b: u8) -> usize {
    match b {
        b'0'..=b'9' => usize::from(b - b'0'),
        b'a'..=b'f' => usize::from(b - b'a' + 10),
        _ => usize::from(b - b'A' + 10),
    }
}

/// How the body of a request with these fields is framed; checks its announced size.
fn framing(
    headers: &[(String, Vec<u8>)],
    head_len: usize,
    limits: &Limits,
) -> Result<Framing, HttpError> {
    let mut length: Option<usize> = None;
    let mut codings: Vec<&[u8]> = Vec::new();
    for (name, value) in headers {
        if name.eq_ignore_ascii_case("content-length") {
            let n = content_length(value).ok_or_else(|| {
                HttpError::Malformed(format!(
                    "bad Content-Length {:?}",
                    String::from_utf8_lossy(value)
                ))
            })?;
            if length.is_some_and(|m| m != n) {
                return Err(HttpError::Malformed(
                    "conflicting Content-Length fields".into(),
                ));
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            codings.extend(
                value
                    .split(|&b| b == b',')
                    .map(<[u8]>::trim_ascii)
                    .filter(|c| !c.is_empty()),
            );
        }
    }
    if !codings.is_empty() {
        if length.is_some() {
            return Err(HttpError::Malformed(
                "both Content-Length and Transfer-Encoding".into(),
            ));
        }
        if codings.len() > 1 || !codings[0].eq_ignore_ascii_case(b"chunked") {
            let text: Vec<String> = codings
                .iter()
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect();
            return Err(HttpError::UnsupportedEncoding(text.join(", ")));
        }
        return Ok(Framing::Chunked {
            step: Chunk::Size,
            trailer_len: 0,
        });
    }
    let n = length.unwrap_or(0);
    if n > limits.max_body || head_len.saturating_add(n) > limits.max_request {
        return Err(HttpError::BodyTooLarge);
    }
    Ok(Framing::Length(n))
}

/// A `Content-Length` value: decimal digits only (an over-long one counts as too large).
fn content_length(value: &[u8]) -> Option<usize> {
    let digits = value.trim_ascii();
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        digits
            .iter()
            .try_fold(0usize, |n, &b| {
                n.checked_mul(10)?.checked_add(usize::from(b - b'0'))
            })
            .unwrap_or(usize::MAX),
    )
}

#[cfg(test)]
mod tests;
