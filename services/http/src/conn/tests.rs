use super::*;

const GET: &[u8] = b"GET /msg_server?a=1 HTTP/1.1\r\nHost: x\r\nX-Case: V\r\n\r\n";
const POST: &[u8] =
    b"POST /api/x HTTP/1.0\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\nabcde";
const CHUNKED: &[u8] = b"POST /up HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n\
    3;ext=1\r\nabc\r\n00A\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n";
const LEADING_CRLF: &[u8] = b"\r\nGET / HTTP/1.1\r\n\r\n";

fn conn() -> HttpConn {
    HttpConn::new(Limits::default())
}

/// Appends `bytes` to `input` and asks for the next request.
fn feed(c: &mut HttpConn, input: &mut Buffer, bytes: &[u8]) -> Result<Option<Request>, HttpError> {
    input.extend(bytes);
    c.next_request(input)
}

/// The one request in `bytes`, given all at once.
fn whole(bytes: &[u8]) -> Request {
    let mut input = Buffer::new();
    let r = feed(&mut conn(), &mut input, bytes)
        .unwrap()
        .expect("a whole request");
    assert!(input.is_empty(), "every byte consumed");
    r
}

fn error(limits: Limits, bytes: &[u8]) -> HttpError {
    let mut c = HttpConn::new(limits);
    feed(&mut c, &mut Buffer::new(), bytes).expect_err("an error")
}

fn ok() -> Response {
    Response::ok("text/plain", "ok")
}

#[test]
fn the_parts_of_a_request() {
    let r = whole(GET);
    assert_eq!((r.method(), r.target()), ("GET", "/msg_server?a=1"));
    assert_eq!((r.path(), r.query()), ("/msg_server", Some("a=1")));
    assert_eq!(r.minor_version(), 1);
    assert_eq!(r.header("x-case"), Some("V"));
    assert!(r.body().is_empty() && r.keep_alive());

    let r = whole(POST);
    assert_eq!(
        (r.method(), r.minor_version(), r.body()),
        ("POST", 0, &b"abcde"[..])
    );
    assert!(r.keep_alive());

    let r = whole(CHUNKED);
    assert_eq!(r.body(), b"abc0123456789");
    assert_eq!(r.header("x-trailer"), None, "trailers are dropped");

    assert_eq!(whole(LEADING_CRLF).path(), "/");
    let bare_lf = whole(b"GET /lf HTTP/1.1\nContent-Length: 2\n\nhi");
    assert_eq!((bare_lf.path(), bare_lf.body()), ("/lf", &b"hi"[..]));
    let lf_chunks = whole(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\nhi\n0\n\n");
    assert_eq!(lf_chunks.body(), b"hi");
}

#[test]
fn partial_input_at_every_split_point() {
    for sample in [GET, POST, CHUNKED, LEADING_CRLF] {
        let expected = whole(sample);
        for split in 0..sample.len() {
            let mut c = conn();
            let mut input = Buffer::new();
            assert_eq!(
                feed(&mut c, &mut input, &sample[..split]),
                Ok(None),
                "{split}"
            );
            let r = feed(&mut c, &mut input, &sample[split..]);
            assert_eq!(r, Ok(Some(expected.clone())), "split at {split}");
            assert!(input.is_empty());
        }
        // One byte at a time.
        let mut c = conn();
        let mut input = Buffer::new();
        for (i, b) in sample.iter().enumerate() {
            let r = feed(&mut c, &mut input, std::slice::from_ref(b)).unwrap();
            assert_eq!(r.is_some(), i + 1 == sample.len(), "byte {i}");
        }
    }
}

#[test]
fn a_trickled_head_is_parsed_once_per_line() {
    let head = format!(
        "GET / HTTP/1.1\r\nX-Long: {}\r\nHost: h\r\n\r\n",
        "v".repeat(4000)
    );
    let mut c = conn();
    let mut input = Buffer::new();
    let mut most = 0;
    for b in head.as_bytes() {
        if feed(&mut c, &mut input, std::slice::from_ref(b))
            .unwrap()
            .is_some()
        {
            break;
        }
        most = most.max(c.head_parses);
    }
    // The first byte, then the three line ends before the last one.
    assert_eq!(most, 4);
}

#[test]
fn login_server_limit_of_1024_bytes() {
    let login = Limits::total(1024);
    let long = format!("GET / HTTP/1.1\r\nX-Pad: {}\r\n\r\n", "a".repeat(1100));
    assert_eq!(error(login, long.as_bytes()), HttpError::HeadTooLarge);
    // Trickled without a line end: refused once the limit is reached.
    let mut c = HttpConn::new(login);
    let mut input = Buffer::new();
    assert_eq!(feed(&mut c, &mut input, b"GET /"), Ok(None));
    let mut refused = None;
    for i in 0..2000 {
        if let Err(e) = feed(&mut c, &mut input, b"a") {
            refused = Some((i, e));
            break;
        }
    }
    assert_eq!(refused, Some((1024 - 5 - 1, HttpError::HeadTooLarge)));
    assert_eq!(
        error(login, b"POST / HTTP/1.1\r\nContent-Length: 5000\r\n\r\n"),
        HttpError::BodyTooLarge
    );
    // Head and body together.
    let head = b"POST / HTTP/1.1\r\nContent-Length: 1000\r\n\r\n";
    assert_eq!(error(login, head), HttpError::BodyTooLarge);
    let fits = b"POST / HTTP/1.1\r\nContent-Length: 984\r\n\r\n";
    assert_eq!(fits.len() + 984, 1024);
    let mut c = HttpConn::new(login);
    let mut input = Buffer::new();
    assert_eq!(feed(&mut c, &mut input, fits), Ok(None));
    let r = feed(&mut c, &mut input, &[b'b'; 984]).unwrap().unwrap();
    assert_eq!(r.body().len(), 984);
    let over = b"POST / HTTP/1.1\r\nContent-Length: 985\r\n\r\n";
    assert_eq!(error(login, over), HttpError::BodyTooLarge);
    let mut chunked = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..4 {
        chunked.extend_from_slice(b"100\r\n");
        chunked.extend_from_slice(&[b'x'; 256]);
        chunked.extend_from_slice(b"\r\n");
    }
    assert_eq!(error(login, &chunked), HttpError::BodyTooLarge);
}

#[test]
fn other_limits() {
    let limits = Limits {
        max_head: 200,
        max_headers: 4,
        max_body: 10,
        max_request: 1000,
    };
    let many = b"GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\n\r\n";
    assert_eq!(error(limits, many), HttpError::HeadTooLarge);
    let body = b"POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n";
    assert_eq!(error(limits, body), HttpError::BodyTooLarge);
    let chunks = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\n6\r\n";
    assert_eq!(error(limits, chunks), HttpError::BodyTooLarge);
    let huge = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n";
    assert_eq!(error(limits, huge), HttpError::BodyTooLarge);
    let huge = b"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n";
    assert_eq!(error(limits, huge), HttpError::BodyTooLarge);
    let trailers = format!(
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nA: {}\r\nB: {}\r\n",
        "a".repeat(150),
        "b".repeat(150)
    );
    assert_eq!(error(limits, trailers.as_bytes()), HttpError::HeadTooLarge);
    let ext = format!(
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1;{}",
        "e".repeat(300)
    );
    assert!(matches!(
        error(limits, ext.as_bytes()),
        HttpError::Malformed(_)
    ));
    // Many empty lines trickled before a request line.
    let mut c = HttpConn::new(limits);
    let mut input = Buffer::new();
    let r: Result<Vec<_>, _> = (0..20).map(|_| feed(&mut c, &mut input, b"\n")).collect();
    assert_eq!(r, Err(HttpError::HeadTooLarge));
}

#[test]
fn malformed_requests() {
    let limits = Limits::default();
    for bad in [
        &b"\x16\x03\x01\x02\x00 hello\r\n\r\n"[..],
        b"\x16\x03\x01",
        b"GET /msg_server HTTP/1.1\r\nBad Header\r\n\r\n",
        b"GET / HTTP/2.0\r\n\r\n",
        b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
        b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3x\r\n",
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX",
    ] {
        let e = error(limits, bad);
        assert!(matches!(e, HttpError::Malformed(_)), "{bad:?}: {e:?}");
        assert_eq!(e.status(), Status::BAD_REQUEST);
    }
    let gzip = b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n";
    let e = error(limits, gzip);
    assert_eq!(e, HttpError::UnsupportedEncoding("gzip, chunked".into()));
    assert_eq!(e.status().code, 501);
    // Repeated equal lengths are one length.
    let r = whole(b"POST / HTTP/1.1\r\nContent-Length: 2\r\ncontent-length: 2\r\n\r\nab");
    assert_eq!(r.body(), b"ab");
}

#[test]
fn keep_alive_and_closing() {
    let mut out = Vec::new();
    // HTTP/1.1: kept unless the request says close.
    let mut c = conn();
    let mut input = Buffer::new();
    feed(&mut c, &mut input, GET).unwrap().unwrap();
    assert!(c.answer(&ok(), &mut out));
    assert!(out.starts_with(b"HTTP/1.1 200 OK\r\nConnection:keep-alive\r\n"));
    assert!(feed(&mut c, &mut input, GET).unwrap().is_some());

    let close = b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n";
    let mut c = conn();
    feed(&mut c, &mut input, close).unwrap().unwrap();
    out.clear();
    assert!(!c.answer(&ok(), &mut out));
    assert!(out.starts_with(b"HTTP/1.1 200 OK\r\nConnection:close\r\n"));
    // Closing: later bytes are dropped.
    assert_eq!(feed(&mut c, &mut input, GET), Ok(None));
    assert!(input.is_empty());

    // HTTP/1.0: closed unless asked for keep-alive.
    let mut c = conn();
    feed(&mut c, &mut input, b"GET / HTTP/1.0\r\n\r\n")
        .unwrap()
        .unwrap();
    assert!(!c.answer(&ok(), &mut out));
    let mut c = conn();
    feed(&mut c, &mut input, POST).unwrap().unwrap();
    assert!(c.answer(&ok(), &mut out));

    // A server that closes after every response.
    let mut c = conn().keep_alive(false);
    feed(&mut c, &mut input, GET).unwrap().unwrap();
    out.clear();
    assert!(!c.answer(&ok(), &mut out));
    assert!(out.starts_with(b"HTTP/1.1 200 OK\r\nConnection:close\r\n"));

    // No request in flight: nothing written.
    let mut c = conn();
    out.clear();
    assert!(!c.answer(&ok(), &mut out));
    assert!(out.is_empty());
}

#[test]
fn head_requests_get_no_body() {
    let mut c = conn();
    feed(&mut c, &mut Buffer::new(), b"HEAD /img HTTP/1.1\r\n\r\n")
        .unwrap()
        .unwrap();
    let mut out = Vec::new();
    c.answer(&ok(), &mut out);
    assert_eq!(
        out,
        b"HTTP/1.1 200 OK\r\nConnection:keep-alive\r\nContent-Length:2\r\n\
          Content-Type:text/plain\r\n\r\n"
    );
}

#[test]
fn pipelined_requests_one_at_a_time_in_order() {
    let mut c = conn();
    let mut input = Buffer::new();
    let mut both = GET.to_vec();
    both.extend_from_slice(POST);
    let first = feed(&mut c, &mut input, &both).unwrap().unwrap();
    assert_eq!(first.method(), "GET");
    // Answered at once: the second is parsed straight from the input.
    assert!(c.answer(&ok(), &mut Vec::new()));
    assert_eq!(
        c.next_request(&mut input).unwrap().unwrap().method(),
        "POST"
    );
    assert!(input.is_empty());

    // Answered later: further bytes are held, then parsed in order.
    let mut c = conn();
    let first = feed(&mut c, &mut input, &both).unwrap().unwrap();
    assert_eq!(first.method(), "GET");
    c.hold(&mut input).unwrap();
    assert!(input.is_empty() && c.in_flight());
    assert_eq!(feed(&mut c, &mut input, GET), Ok(None), "in flight");
    assert!(input.is_empty(), "held");
    assert!(c.answer(&ok(), &mut Vec::new()));
    let second = c.next_request(&mut input).unwrap().unwrap();
    assert_eq!(second.method(), "POST");
    assert!(c.answer(&ok(), &mut Vec::new()));
    // The held bytes come before newer input.
    let third = feed(&mut c, &mut input, b"DELETE / HTTP/1.1\r\n\r\n")
        .unwrap()
        .unwrap();
    assert_eq!(third.method(), "GET");
    assert!(c.answer(&ok(), &mut Vec::new()));
    assert_eq!(
        c.next_request(&mut input).unwrap().unwrap().method(),
        "DELETE"
    );

    // No more than one request's worth is held.
    let mut c = HttpConn::new(Limits::total(100));
    feed(&mut c, &mut input, GET).unwrap().unwrap();
    assert_eq!(feed(&mut c, &mut input, &[b'x'; 80]), Ok(None));
    assert_eq!(
        feed(&mut c, &mut input, &[b'x'; 80]),
        Err(HttpError::Backlog)
    );
}

#[test]
fn expect_continue_is_due_while_the_body_is_missing() {
    let head = b"POST /up HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n";
    let mut c = conn();
    let mut input = Buffer::new();
    assert!(feed(&mut c, &mut input, head).unwrap().is_none());
    assert!(c.take_continue(), "body not there yet");
    assert!(!c.take_continue(), "once per request");
    assert_eq!(c.buffered(), 0);
    assert!(feed(&mut c, &mut input, b"ab").unwrap().is_none());
    assert_eq!(c.buffered(), 2, "the body read so far");
    assert!(feed(&mut c, &mut input, b"c").unwrap().is_some());
    // Head and body together: nothing to continue.
    let mut c = conn();
    let mut whole = head.to_vec();
    whole.extend_from_slice(b"abc");
    assert!(feed(&mut c, &mut Buffer::new(), &whole).unwrap().is_some());
    assert!(!c.take_continue());
    // No body: nothing to continue.
    let mut c = conn();
    let get = b"GET / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n";
    assert!(feed(&mut c, &mut Buffer::new(), get).unwrap().is_some());
    assert!(!c.take_continue());
}
