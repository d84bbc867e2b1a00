//! msfs against a real daemon process: uploads and downloads byte for byte, the original's
//! answers, refusals of bad input, conditional and range requests, keep-alive, FileCnt across
//! a restart.

mod common;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;

use common::{
    Msfs, Reply, finish, multipart, post, read_next, read_reply, read_to_end, tiny_jpeg, tiny_png,
};

const HEAD_200: &str = "HTTP/1.1 200 OK\r\nConnection:close\r\nContent-Length:";

#[test]
fn png_and_jpeg_round_trip_with_the_original_answers() {
    let m = Msfs::start("msfs-roundtrip", "");
    let png = tiny_png([200, 10, 30]);
    let r = m.upload("face_120x160.png", &png);
    let body = r.text();
    assert_eq!(
        r.head,
        format!(
            "{HEAD_200}{}\r\nContent-Type:text/html;charset=utf-8\r\n\r\n",
            r.body.len()
        ),
        "the original's head, byte for byte"
    );
    let png_path = m.upload_ok("face_120x160.png", &png);
    assert!(body.contains("\"path\":\"g0/000/000/"), "{body}");
    assert!(
        png_path.starts_with("g0/000/001/"),
        "FilesPerDir=1: {png_path}"
    );
    let name = png_path.rsplit('/').next().unwrap();
    assert_eq!(name.len(), 29 + "_120x160.png".len(), "{name}");
    assert!(name.ends_with("_120x160.png"), "size hint kept: {name}");

    let jpeg = tiny_jpeg();
    let jpeg_path = m.upload_ok("photo.JPG", &jpeg);
    assert!(jpeg_path.starts_with("g0/000/002/") && jpeg_path.ends_with(".JPG"));
    let other_path = m.upload_ok("notes.bin", b"\x00\x01binary");

    for (path, bytes, content_type) in [
        (&png_path, &png, "image/png"),
        (&jpeg_path, &jpeg, "image/JPG"),
        (
            &other_path,
            &b"\x00\x01binary".to_vec(),
            "application/octet-stream",
        ),
    ] {
        let r = m.get(&format!("/{path}"), "");
        assert_eq!(r.status, 200, "{}", r.head);
        assert_eq!(&r.body, bytes, "{path}: identical bytes");
        assert_eq!(r.header("Content-Type"), Some(content_type));
        assert_eq!(
            r.header("Content-Length"),
            Some(bytes.len().to_string().as_str())
        );
        let on_disk = m.store().join(path.strip_prefix("g0/").unwrap());
        assert_eq!(&std::fs::read(&on_disk).unwrap(), bytes);
        let mode = std::fs::metadata(&on_disk).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o640, "{path}");
    }
    // The first component is ignored, as the original ignores it; a query too.
    let r = m.get(
        &format!("/g9/{}?v=1", png_path.strip_prefix("g0/").unwrap()),
        "",
    );
    assert_eq!((r.status, &r.body), (200, &png));

    let raw = m.exchange(
        format!("HEAD /{png_path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
    );
    let (head, n) = Reply::parse_prefix(&raw, true).unwrap();
    assert_eq!(n, raw.len(), "HEAD: no body");
    assert_eq!(
        head.header("Content-Length"),
        Some(png.len().to_string().as_str())
    );

    let missing = m.get("/g0/000/000/1426151231123456_140234567890.png", "");
    assert_eq!(missing.status, 404);
    assert!(missing.body.is_empty());
}

#[test]
fn malformed_uploads_get_the_original_error_codes() {
    let m = Msfs::start("msfs-malformed", "");
    let format_error = |code: u32| {
        format!("{{\"error_code\":{code},\"error_msg\": \"格式错误\",\"path\":\"\",\"url\":\"\"}}")
    };
    let png = tiny_png([1, 2, 3]);
    let ct = "multipart/form-data; boundary=b0undary";
    let part = |tail: &str| multipart("b0undary", tail, &png);
    let cases: [(u32, &str, Vec<u8>); 5] = [
        // No boundary in the Content-Type.
        (4, "multipart/form-data", part("filename=\"a.png\"")),
        // No file name.
        (3, ct, part("size=\"3\"")),
        // No Content-Disposition.
        (
            2,
            ct,
            b"--b0undary\r\nContent-Type: image/png\r\n\r\nabc\r\n--b0undary--\r\n".to_vec(),
        ),
        // No extension.
        (10, ct, part("filename=\"picture\"")),
        // A boundary that is not in the body.
        (
            5,
            "multipart/form-data; boundary=elsewhere",
            part("filename=\"a.png\""),
        ),
    ];
    for (code, content_type, body) in cases {
        let r = m.request(&post(m.port, content_type, &body));
        assert_eq!(r.status, 200, "error {code}: {}", r.head);
        assert_eq!(r.text(), format_error(code));
        assert_eq!(r.header("Content-Type"), Some("text/html;charset=utf-8"));
    }
    assert!(
        std::fs::read_dir(m.store()).unwrap().next().is_none(),
        "nothing stored"
    );
    // The daemon goes on.
    m.upload_ok("ok.png", &png);
}

#[test]
fn an_over_limit_body_is_refused_before_it_is_read() {
    let m = Msfs::start("msfs-limit", "MaxUploadSize=1048576\n");
    let before = m.rss_kib();
    let announced: usize = 512 * 1024 * 1024;
    let mut s = m.connect();
    write!(
        s,
        "POST / HTTP/1.1\r\nHost: h\r\nContent-Type: multipart/form-data; boundary=b\r\n\
         Content-Length: {announced}\r\n\r\n"
    )
    .unwrap();
    // Some of the body follows; the answer is there without the rest.
    let _ = s.write_all(&vec![b'x'; 256 * 1024]);
    let r = read_reply(&mut s, false);
    assert_eq!(r.status, 413, "{}", r.head);
    assert_eq!(
        r.text(),
        "{\"error_code\":1,\"error_msg\": \"上传文件过大\",\"url\":\"\"}"
    );
    assert_eq!(r.header("Connection"), Some("close"));
    drop(s);

    // A chunked body is refused as soon as it grows past the limit.
    let mut s = m.connect();
    s.write_all(
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Type: multipart/form-data; boundary=b\r\n\
          Transfer-Encoding: chunked\r\n\r\n80000\r\n",
    )
    .unwrap();
    let _ = s.write_all(&vec![b'y'; 0x80000]);
    let _ = s.write_all(b"\r\n90000\r\n");
    let r = read_reply(&mut s, false);
    assert_eq!(r.status, 413, "{}", r.head);
    drop(s);

    let grown = m.rss_kib().saturating_sub(before);
    assert!(
        grown < 64 * 1024,
        "RSS grew by {grown} KiB for a {announced} byte announcement"
    );
    m.upload_ok("after.png", &tiny_png([0, 0, 0]));
}

#[test]
fn traversal_and_odd_paths_are_refused() {
    let m = Msfs::start("msfs-paths", "");
    let path = m.upload_ok("a.png", &tiny_png([9, 9, 9]));
    std::fs::write(m.dir.path().join("secret.png"), b"secret").unwrap();
    let leaf = m.store().join("000/000");
    std::os::unix::fs::symlink(m.dir.path().join("secret.png"), leaf.join("link.png")).unwrap();
    for (target, status) in [
        ("/g0/000/000/../../secret.png", 400),
        ("/g0/../secret.png", 400),
        ("/../secret.png", 400),
        ("/g0/000/%2e%2e/%2e%2e/secret.png", 400),
        ("/g0/000/000/..%2fsecret.png", 400),
        ("/g0//000/a.png", 400),
        ("//etc/passwd", 400),
        ("http://x/g0/000/000/a.png", 400),
        ("/g0/000/000/a\\b.png", 400),
        ("/g0/000/000/link.png", 403),
        ("/etc/passwd", 404),
        ("/g0/000/000", 404),
        ("/g0/000/000/", 400),
        ("/g0/999/000/a.png", 404),
        ("/g0/000/000/.hidden", 404),
        ("/secret.png", 404),
    ] {
        let r = m.get(target, "");
        assert_eq!(r.status, status, "{target}: {}", r.head);
        assert!(!r.body.windows(6).any(|w| w == b"secret"), "{target}");
    }
    // A NUL byte in the target is not HTTP: 400 or a close, never the file.
    let raw = m.exchange(b"GET /g0/000/000/a\x00.png HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(
        raw.is_empty() || raw.starts_with(b"HTTP/1.1 400"),
        "{raw:?}"
    );
    assert_eq!(m.get(&format!("/{path}"), "").status, 200);
}

#[test]
fn conditional_requests_ranges_and_keep_alive() {
    let m = Msfs::start("msfs-conditional", "");
    let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
    let path = m.upload_ok("range.gif", &data);
    let full = m.get(&format!("/{path}"), "");
    let etag = full.header("ETag").expect("ETag").to_string();
    let modified = full
        .header("Last-Modified")
        .expect("Last-Modified")
        .to_string();
    assert_eq!(full.header("Accept-Ranges"), Some("bytes"));
    assert_eq!(full.header("Content-Type"), Some("image/gif"));

    let r = m.get(&format!("/{path}"), &format!("If-None-Match: {etag}\r\n"));
    assert_eq!(r.status, 304, "{}", r.head);
    let r = m.get(&format!("/{path}"), "If-None-Match: \"other\"\r\n");
    assert_eq!((r.status, r.body.len()), (200, 1000));
    let r = m.get(
        &format!("/{path}"),
        &format!("If-Modified-Since: {modified}\r\n"),
    );
    assert_eq!(r.status, 304, "{}", r.head);
    let r = m.get(
        &format!("/{path}"),
        "If-Modified-Since: Thu, 01 Jan 1970 00:00:00 GMT\r\n",
    );
    assert_eq!(r.status, 200);

    let r = m.get(&format!("/{path}"), "Range: bytes=10-19\r\n");
    assert_eq!(r.status, 206, "{}", r.head);
    assert_eq!(r.header("Content-Range"), Some("bytes 10-19/1000"));
    assert_eq!(r.body, &data[10..20]);
    let r = m.get(&format!("/{path}"), "Range: bytes=-5\r\n");
    assert_eq!((r.status, &r.body[..]), (206, &data[995..]));
    let r = m.get(&format!("/{path}"), "Range: bytes=1000-\r\n");
    assert_eq!(r.status, 416);
    assert_eq!(r.header("Content-Range"), Some("bytes */1000"));

    // A request that does not ask for keep-alive is answered and closed, as the original
    // closes every connection: a client may read the answer up to the end of the connection.
    let mut s = m.connect();
    write!(s, "GET /{path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let raw = read_to_end(&mut s);
    assert!(
        raw.starts_with(b"HTTP/1.1 200 OK\r\nConnection:close\r\n"),
        "{raw:?}"
    );
    assert!(raw.ends_with(&data));

    // Two requests on one connection (browsers ask for keep-alive), then an upload on it too.
    let mut s = m.connect();
    let mut pending = Vec::new();
    let get = format!("GET /{path} HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n");
    s.write_all(get.as_bytes()).unwrap();
    let first = read_next(&mut s, &mut pending, false);
    assert_eq!(first.header("Connection"), Some("keep-alive"));
    assert_eq!(first.body, data);
    // Pipelined: both requests at once, answered in order.
    s.write_all(
        format!(
            "{get}GET /g0/000/000/none.png HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n"
        )
        .as_bytes(),
    )
    .unwrap();
    assert_eq!(read_next(&mut s, &mut pending, false).body, data);
    assert_eq!(read_next(&mut s, &mut pending, false).status, 404);
    let body = multipart("kb", "filename=\"k.png\"", b"kept");
    write!(
        s,
        "POST /any HTTP/1.1\r\nHost: h:1\r\nContent-Type: multipart/form-data; boundary=kb\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(&body).unwrap();
    let up = read_next(&mut s, &mut pending, false);
    assert_eq!(up.status, 200, "{}", up.text());
    assert!(
        up.text().contains("\"url\":\"http://h:1/g0/000/001/"),
        "{}",
        up.text()
    );
    assert!(
        read_to_end(&mut s).is_empty(),
        "closed after Connection: close"
    );
}

#[test]
fn bad_bytes_get_a_refusal_and_others_are_served() {
    let m = Msfs::start("msfs-garbage", "");
    let path = m.upload_ok("g.png", &tiny_png([5, 5, 5]));
    let raw = m.exchange(b"\x16\x03\x01\x02\x00garbage\r\n\r\n");
    assert!(
        raw.is_empty() || raw.starts_with(b"HTTP/1.1 400"),
        "{raw:?}"
    );
    let raw = m.exchange(b"NOT HTTP AT ALL\r\n\r\n");
    assert!(
        raw.is_empty() || raw.starts_with(b"HTTP/1.1 400"),
        "{raw:?}"
    );
    // A truncated request, then the client's end of stream.
    let mut s = m.connect();
    s.write_all(b"GET /g0/000/000/x.png HTTP/1.1\r\nHo")
        .unwrap();
    finish(&s);
    assert!(read_to_end(&mut s).is_empty());
    // A truncated upload body.
    let mut s = m.connect();
    s.write_all(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\nshort")
        .unwrap();
    finish(&s);
    assert!(read_to_end(&mut s).is_empty());
    let r = m.request(b"DELETE /g0/000/000/x.png HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_eq!(r.status, 405);
    assert_eq!(r.header("Allow"), Some("GET, HEAD, POST"));
    assert_eq!(m.get(&format!("/{path}"), "").status, 200, "still serving");
}

#[test]
fn a_large_file_streams_and_file_cnt_survives_a_restart() {
    let mut m = Msfs::start("msfs-restart", "");
    let big: Vec<u8> = (0..9 * 1024 * 1024u32)
        .map(|i| (i * 7 % 251) as u8)
        .collect();
    let big_path = m.upload_ok("big.png", &big);
    assert!(big_path.starts_with("g0/000/000/"));
    let r = m.get(&format!("/{big_path}"), "");
    assert_eq!(r.body.len(), big.len());
    assert!(r.body == big, "9 MiB identical");
    let second = m.upload_ok("s.png", b"2");
    assert!(second.starts_with("g0/000/001/"));

    m.restart();
    let saved = std::fs::read_to_string(m.store().join(".filecnt")).unwrap();
    assert_eq!(saved, "2\n", "the count saved beside the files");
    let conf = std::fs::read_to_string(m.dir.path().join("msfs.conf")).unwrap();
    assert!(
        conf.contains("\nFileCnt=0\n"),
        "the conf file is not written: {conf}"
    );
    assert_eq!(m.get("/g0/000/000/.filecnt", "").status, 404);
    let third = m.upload_ok("t.png", b"3");
    assert!(
        third.starts_with("g0/000/002/"),
        "counting goes on: {third}"
    );
    assert_eq!(m.get(&format!("/{second}"), "").body, b"2");
}

#[test]
fn memory_bound_expect_continue_and_request_deadline() {
    let m = Msfs::start(
        "msfs-bounds",
        "MaxUploadSize=1048576\nMaxUploadMemory=1572864\nRequestTimeout=1\n",
    );
    // Two uploads of 1 MiB, each missing its last byte: once msfs has read both (it reads
    // whatever arrives), the bytes held pass 1.5 MiB and exactly one of them is refused
    // with the busy answer; the other one is answered when its last byte comes.
    let head = |s: &mut std::net::TcpStream| {
        write!(
            s,
            "POST / HTTP/1.1\r\nHost: h\r\nContent-Type: multipart/form-data; boundary=b\r\n\
             Content-Length: 1048576\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let _ = s.write_all(&vec![b'x'; 1048576 - 1]);
    };
    let (mut a, mut b) = (m.connect(), m.connect());
    head(&mut a);
    head(&mut b);
    // Each connection read on its own thread: the first answer is the refusal, which comes
    // without the last byte; then the other upload gets its last byte and its answer.
    let (tx, rx) = std::sync::mpsc::channel();
    let mut writers = Vec::new();
    for (i, s) in [a, b].into_iter().enumerate() {
        writers.push(s.try_clone().unwrap());
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut s = s;
            let _ = tx.send((i, read_reply(&mut s, false)));
        });
    }
    let (first, busy) = rx.recv_timeout(common::READ_LIMIT).expect("a refusal");
    assert_eq!(busy.status, 503, "{}", busy.head);
    assert_eq!(
        busy.text(),
        "{\"error_code\":13,\"error_msg\": \"服务器繁忙\",\"path\":\"\",\"url\":\"\"}"
    );
    writers[1 - first].write_all(b"x").unwrap();
    let (second, other) = rx.recv_timeout(common::READ_LIMIT).expect("an answer");
    assert_eq!(second, 1 - first);
    assert_eq!(
        other.status, 200,
        "a whole body of x: format error 2; {}",
        other.head
    );

    // One upload near the limit fits: its bytes count once, not as both body and job. Half
    // of it is sent first and a request on another connection answered, so that msfs has
    // most likely read that half before the rest comes (correct code passes either way).
    let body = multipart("n3ar", "filename=\"near.png\"", &vec![b'n'; 1000 * 1024]);
    let request = post(m.port, "multipart/form-data; boundary=n3ar", &body);
    let mut s = m.connect();
    s.write_all(&request[..request.len() / 2]).unwrap();
    assert_eq!(m.get("/g0/000/000/none.png", "").status, 404);
    s.write_all(&request[request.len() / 2..]).unwrap();
    let r = read_reply(&mut s, false);
    assert_eq!(r.status, 200, "{}", r.text());

    // Expect: 100-continue gets the interim answer before the body is sent.
    let body = multipart("Kq7", "filename=\"c.png\"", b"continued");
    let mut s = m.connect();
    write!(
        s,
        "POST / HTTP/1.1\r\nHost: h\r\nContent-Type: multipart/form-data; boundary=Kq7\r\n\
         Content-Length: {}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    let mut interim = [0u8; 25];
    std::io::Read::read_exact(&mut s, &mut interim).unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    s.write_all(&body).unwrap();
    let r = read_reply(&mut s, false);
    assert_eq!(r.status, 200, "{}", r.text());

    // A request trickling past RequestTimeout is refused (the read waits for that event).
    let mut s = m.connect();
    s.write_all(b"GET /g0/000/000/x.png HTTP/1.1\r\nHost")
        .unwrap();
    let raw = read_to_end(&mut s);
    assert!(
        raw.starts_with(b"HTTP/1.1 408 Request Timeout\r\n"),
        "{raw:?}"
    );
}
