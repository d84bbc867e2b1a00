//! Property tests of the request parser (`HttpConn::next_request` over a netlib `Buffer`) on
//! arbitrary bytes and arbitrary splits into chunks: no panic, no request over the limits
//! accepted, input left waiting never over the head limit, and valid requests (pipelined,
//! answered at once or later) parse the same however they are cut.

use netlib::Buffer;
use proptest::collection::vec;
use proptest::prelude::*;
use tt_http::{HttpConn, HttpError, Limits, Request, Response};

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        ..ProptestConfig::default()
    }
}

/// Small limits, so that generated requests fall on both sides of each.
fn limits() -> impl Strategy<Value = Limits> {
    (16usize..400, 0usize..8, 0usize..400, 16usize..800).prop_map(
        |(max_head, max_headers, max_body, max_request)| Limits {
            max_head,
            max_headers,
            max_body,
            max_request,
        },
    )
}

/// How a generated request frames its body.
#[derive(Clone, Debug)]
enum Framing {
    /// No framing field (an empty body).
    None,
    ContentLength,
    /// Chunked, cut at these offsets (modulo the body length).
    Chunked(Vec<usize>),
}

/// A well-formed request, as generated.
#[derive(Clone, Debug)]
struct Valid {
    method: &'static str,
    target: String,
    minor: u8,
    fields: Vec<(String, String)>,
    body: Vec<u8>,
    framing: Framing,
}

impl Valid {
    /// Its wire bytes, and the length of its head (request line, fields, empty line).
    fn encode(&self) -> (Vec<u8>, usize) {
        let mut head = format!("{} {} HTTP/1.{}\r\n", self.method, self.target, self.minor);
        for (name, value) in &self.fields {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if self.minor == 0 {
            head.push_str("Connection: keep-alive\r\n");
        }
        let mut body = Vec::new();
        match &self.framing {
            Framing::None => {}
            Framing::ContentLength => {
                head.push_str(&format!("Content-Length: {}\r\n", self.body.len()));
                body.extend_from_slice(&self.body);
            }
            Framing::Chunked(cuts) => {
                head.push_str("Transfer-Encoding: chunked\r\n");
                for piece in cut(&self.body, cuts) {
                    if !piece.is_empty() {
                        body.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
                        body.extend_from_slice(piece);
                        body.extend_from_slice(b"\r\n");
                    }
                }
                body.extend_from_slice(b"0\r\n\r\n");
            }
        }
        head.push_str("\r\n");
        let head_len = head.len();
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(&body);
        (bytes, head_len)
    }

    /// Header fields in the parsed request: the generated ones and the framing ones.
    fn field_count(&self) -> usize {
        self.fields.len()
            + usize::from(self.minor == 0)
            + usize::from(!matches!(self.framing, Framing::None))
    }

    /// Whether `r` is this request.
    fn matches(&self, r: &Request) -> bool {
        r.method() == self.method
            && r.target() == self.target
            && r.minor_version() == self.minor
            && r.body() == self.body.as_slice()
            && r.keep_alive()
            && self
                .fields
                .iter()
                .all(|(n, v)| r.headers().any(|(rn, rv)| rn == n && rv == v.as_bytes()))
    }
}

fn valid() -> impl Strategy<Value = Valid> {
    let method = prop::sample::select(vec!["GET", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"]);
    let target = "/[A-Za-z0-9_./?=&%-]{0,40}";
    let field = ("X-[A-Za-z0-9-]{1,12}", "([!-~]([ -~]{0,24}[!-~])?)?");
    let framing = prop_oneof![
        Just(Framing::ContentLength),
        vec(any::<usize>(), 0..5).prop_map(Framing::Chunked),
    ];
    (
        method,
        target,
        0u8..=1,
        vec(field, 0..5),
        vec(any::<u8>(), 0..300),
        framing,
    )
        .prop_map(|(method, target, minor, fields, body, framing)| {
            let framing = if body.is_empty() && matches!(framing, Framing::ContentLength) {
                Framing::None
            } else {
                framing
            };
            Valid {
                method,
                target,
                minor,
                fields,
                body,
                framing,
            }
        })
}

/// Bytes that are partly HTTP: request pieces, line ends, framing fields and noise.
fn noisy() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        2 => valid().prop_map(|v| v.encode().0),
        1 => vec(any::<u8>(), 0..40),
        1 => prop::sample::select(vec![
            &b"\r\n"[..],
            b"\n",
            b"GET / HTTP/1.1\r\n",
            b"POST /x HTTP/1.0\r\n",
            b"Content-Length: 10\r\n",
            b"Content-Length: 99999999999999999999\r\n",
            b"Transfer-Encoding: chunked\r\n",
            b"Transfer-Encoding: gzip\r\n",
            b"ffffffff\r\n",
            b"5;x=y\r\nabcde\r\n",
            b"0\r\nX-T: 1\r\n\r\n",
        ])
        .prop_map(<[u8]>::to_vec),
    ];
    vec(piece, 0..8).prop_map(|p| p.concat())
}

/// `bytes` cut at `cuts` (modulo its length) into consecutive pieces.
fn cut<'a>(bytes: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut at: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    at.sort_unstable();
    let mut out = Vec::new();
    let mut from = 0;
    for to in at.into_iter().chain([bytes.len()]) {
        out.push(&bytes[from..to]);
        from = to;
    }
    out
}

/// What one connection made of its input.
#[derive(Debug)]
struct Outcome {
    requests: Vec<Request>,
    error: Option<HttpError>,
}

/// Feeds the chunks to one connection, taking every request out as soon as it is whole; the
/// requests flagged in `late` are answered only after the next chunk arrived (held meanwhile).
/// Checks on the way that no request is over the limits and that what is left waiting in the
/// input never exceeds the head limit.
fn drive(limits: Limits, chunks: &[&[u8]], late: &[bool]) -> Outcome {
    let mut c = HttpConn::new(limits);
    let mut input = Buffer::new();
    let mut requests = Vec::new();
    let mut out = Vec::new();
    let ok = Response::ok("text/plain", "ok");
    let mut pending = false;
    // After the input, empty chunks let held requests out.
    let mut chunks = chunks.iter().copied();
    loop {
        let chunk = match chunks.next() {
            Some(chunk) => chunk,
            None if pending => &[][..],
            None => break,
        };
        input.extend(chunk);
        if pending {
            match c.next_request(&mut input) {
                Ok(None) => assert!(input.is_empty(), "bytes behind a pending response are held"),
                Ok(Some(r)) => panic!("a request handed out while one is in flight: {r:?}"),
                Err(e) => {
                    assert_eq!(e, HttpError::Backlog);
                    return Outcome {
                        requests,
                        error: Some(e),
                    };
                }
            }
            assert!(c.answer(&ok, &mut out), "kept alive");
            pending = false;
        }
        loop {
            match c.next_request(&mut input) {
                Ok(Some(r)) => {
                    assert!(
                        r.body().len() <= limits.max_body,
                        "a body of {} bytes accepted over the limit {limits:?}",
                        r.body().len()
                    );
                    assert!(r.headers().count() <= limits.max_headers);
                    let is_late = late.get(requests.len()).copied().unwrap_or(false);
                    requests.push(r);
                    if is_late {
                        pending = true;
                        break;
                    }
                    if !c.answer(&ok, &mut out) {
                        return Outcome {
                            requests,
                            error: None,
                        };
                    }
                }
                Ok(None) => {
                    assert!(
                        input.len() <= limits.max_head,
                        "{} bytes left waiting over the head limit {limits:?}",
                        input.len()
                    );
                    break;
                }
                Err(e) => {
                    return Outcome {
                        requests,
                        error: Some(e),
                    };
                }
            }
        }
    }
    Outcome {
        requests,
        error: None,
    }
}

proptest! {
    #![proptest_config(config())]

    /// Arbitrary and half-HTTP bytes, cut anywhere, at any limits: no panic, and the checks of
    /// `drive` hold.
    #[test]
    fn arbitrary_bytes_and_splits(
        bytes in prop_oneof![vec(any::<u8>(), 0..600), noisy()],
        cuts in vec(any::<usize>(), 0..16),
        late in vec(any::<bool>(), 0..8),
        limits in prop_oneof![Just(Limits::default()), Just(Limits::total(1024)), limits()],
    ) {
        drive(limits, &cut(&bytes, &cuts), &late);
    }

    /// One valid request at arbitrary limits: accepted exactly when its head, fields, body and
    /// whole size are within them, and then parsed as sent.
    #[test]
    fn a_request_is_accepted_only_within_the_limits(
        v in valid(),
        limits in limits(),
        cuts in vec(any::<usize>(), 0..6),
    ) {
        let (bytes, head_len) = v.encode();
        let within = head_len <= limits.max_head
            && v.field_count() <= limits.max_headers
            && v.body.len() <= limits.max_body
            && head_len + v.body.len() <= limits.max_request;
        let got = drive(limits, &cut(&bytes, &cuts), &[]);
        if within {
            prop_assert_eq!(got.error, None);
            prop_assert_eq!(got.requests.len(), 1);
            prop_assert!(v.matches(&got.requests[0]), "{:?} parsed as {:?}", v, got.requests[0]);
        } else {
            prop_assert!(got.requests.is_empty(), "over {:?}: {:?}", limits, got.requests);
            let refused = matches!(
                got.error,
                Some(HttpError::HeadTooLarge | HttpError::BodyTooLarge)
            );
            prop_assert!(refused, "over {:?}: {:?}", limits, got.error);
        }
    }

    /// Pipelined valid requests, cut anywhere and answered at once or later, parse the same
    /// as when they arrive at once, in order.
    #[test]
    fn pipelined_requests_cut_anywhere(
        reqs in vec(valid(), 1..5),
        cuts in vec(any::<usize>(), 0..16),
        late in vec(any::<bool>(), 0..5),
    ) {
        let bytes: Vec<u8> = reqs.iter().flat_map(|v| v.encode().0).collect();
        let limits = Limits::default();
        let whole = drive(limits, &[&bytes], &[]);
        prop_assert_eq!(whole.error, None);
        prop_assert_eq!(whole.requests.len(), reqs.len());
        for (v, r) in reqs.iter().zip(&whole.requests) {
            prop_assert!(v.matches(r), "{:?} parsed as {:?}", v, r);
        }
        let split = drive(limits, &cut(&bytes, &cuts), &late);
        prop_assert_eq!(split.error, None);
        prop_assert_eq!(&split.requests, &whole.requests);
    }
}
