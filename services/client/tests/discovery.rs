//! `Client::discover` against a tiny HTTP server that answers like login_server
//! (base-login-route.md §3.4): exact original header bytes, the three original bodies.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::thread;
use std::time::Duration;

use tt_client::{Client, Error};

const GUARD: Duration = Duration::from_secs(20);

const OK_BODY: &str = "{\n   \"backupIP\" : \"127.0.0.2\",\n   \"code\" : 0,\n   \"discovery\" : \"http://127.0.0.1/api/discovery\",\n   \"msfsBackup\" : \"http://127.0.0.1:8700/\",\n   \"msfsPrior\" : \"http://127.0.0.1:8700/\",\n   \"msg\" : \"\",\n   \"port\" : \"8000\",\n   \"priorIP\" : \"127.0.0.1\"\n}\n";
const NONE_BODY: &str = "{\n   \"code\" : 1,\n   \"msg\" : \"没有msg_server\"\n}\n";
const FULL_BODY: &str = "{\n   \"code\" : 2,\n   \"msg\" : \"负载过高\"\n}\n";

/// Serves one request with `reply` (split in two writes) and returns the request head it got.
fn serve_once(reply: Vec<u8>) -> (String, thread::JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let h = thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        s.set_read_timeout(Some(GUARD)).expect("timeout");
        let mut req = Vec::new();
        let mut buf = [0u8; 1024];
        while !req.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = s.read(&mut buf).expect("read request");
            assert!(n > 0, "client closed before the request head ended");
            req.extend_from_slice(&buf[..n]);
            assert!(
                req.len() <= 1024,
                "login_server refuses requests over 1024 bytes"
            );
        }
        let (a, b) = reply.split_at(reply.len() / 2);
        s.write_all(a).expect("write");
        s.flush().expect("flush");
        s.write_all(b).expect("write");
        // Connection: close — the server closes after the reply.
        String::from_utf8(req).expect("ascii request")
    });
    (url, h)
}

/// The reply bytes login_server writes: no space after the colons.
fn original_reply(body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\nConnection:close\r\nContent-Length:{}\r\nContent-Type:text/html;charset=utf-8\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[test]
fn success_body_gives_the_address() {
    let (url, h) = serve_once(original_reply(OK_BODY));
    let a = Client::discover(&url).expect("discover");
    assert_eq!(a.prior_ip, "127.0.0.1");
    assert_eq!(a.backup_ip, "127.0.0.2");
    assert_eq!(a.port, 8000);
    assert_eq!(a.msfs_prior, "http://127.0.0.1:8700/");
    assert_eq!(a.discovery, "http://127.0.0.1/api/discovery");
    let req = h.join().expect("server");
    assert!(req.starts_with("GET /msg_server HTTP/1.1\r\n"), "{req}");
}

#[test]
fn code_1_is_no_msg_server() {
    let (url, h) = serve_once(original_reply(NONE_BODY));
    match Client::discover(&url) {
        Err(Error::NoMsgServer(msg)) => assert_eq!(msg, "没有msg_server"),
        other => panic!("{other:?}"),
    }
    h.join().expect("server");
}

#[test]
fn code_2_is_all_full() {
    let (url, h) = serve_once(original_reply(FULL_BODY));
    let err = Client::discover(&url).expect_err("full");
    assert!(
        matches!(&err, Error::MsgServersFull(m) if m == "负载过高"),
        "{err:?}"
    );
    assert_eq!(err.result_code(), Some(2));
    h.join().expect("server");
}

#[test]
fn body_without_content_length_ends_at_close() {
    let reply = format!("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{OK_BODY}").into_bytes();
    let (url, h) = serve_once(reply);
    assert_eq!(Client::discover(&url).expect("discover").port, 8000);
    h.join().expect("server");
}

#[test]
fn http_errors_and_garbage_are_discovery_errors() {
    let (url, h) = serve_once(b"HTTP/1.1 404 Not Found\r\nContent-Length:0\r\n\r\n".to_vec());
    assert!(matches!(Client::discover(&url), Err(Error::Discovery(_))));
    h.join().expect("server");

    let (url, h) = serve_once(original_reply("not json"));
    assert!(matches!(Client::discover(&url), Err(Error::Discovery(_))));
    h.join().expect("server");

    // Closed before the announced body arrived.
    let (url, h) = serve_once(b"HTTP/1.1 200 OK\r\nContent-Length:100\r\n\r\n{".to_vec());
    assert!(matches!(Client::discover(&url), Err(Error::Discovery(_))));
    h.join().expect("server");

    assert!(matches!(
        Client::discover("ftp://127.0.0.1:1"),
        Err(Error::Usage(_))
    ));
}

#[test]
fn silent_server_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let h = thread::spawn(move || {
        let (_s, _) = listener.accept().expect("accept");
        // Keep the connection open, say nothing, until the client gave up.
        let _ = done_rx.recv_timeout(GUARD);
    });
    match Client::discover_with_timeout(&url, Duration::from_millis(200)) {
        Err(Error::Timeout(_)) => {}
        other => panic!("expected a timeout, got {other:?}"),
    }
    done_tx.send(()).expect("done");
    h.join().expect("server");
}
