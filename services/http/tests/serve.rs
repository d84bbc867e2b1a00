//! `HttpConn::serve` on a real netlib loop against a blocking client: keep-alive, pipelining
//! with a late response, `Connection: close`, a rejected request.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use netlib::{Buffer, CloseReason, Config, ConnId, EventLoop, Handler, ListenerId, Net};
use tt_http::{Answer, HttpConn, Limits, Request, Response, Status};

const GUARD: Duration = Duration::from_secs(20);

/// `/echo` answers with the body, `/later` is answered on the next loop turn, `/close` closes.
#[derive(Default)]
struct Server {
    conns: HashMap<ConnId, HttpConn>,
    later: Vec<(ConnId, String)>,
}

fn handle(later: &mut Vec<(ConnId, String)>, conn: ConnId, request: Request) -> Answer {
    match request.path() {
        "/echo" => Answer::Respond(Response::ok("text/plain", request.into_body())),
        "/later" => {
            later.push((conn, request.query().unwrap_or("").to_string()));
            Answer::Later
        }
        "/close" => Answer::Close,
        _ => Answer::Respond(Response::new(Status::NOT_FOUND)),
    }
}

impl Server {
    /// Answers the requests left for later, and goes on with what their connections sent
    /// meanwhile.
    fn answer_later(&mut self, net: &mut Net) {
        for (conn, text) in std::mem::take(&mut self.later) {
            let Some(http) = self.conns.get_mut(&conn) else {
                continue;
            };
            if http.respond(net, conn, &Response::ok("text/plain", text)) {
                let later = &mut self.later;
                if let Err(e) = http.resume(net, conn, |_, r| handle(later, conn, r)) {
                    http.reject(net, conn, &e);
                }
            }
        }
    }
}

impl Handler for Server {
    type Msg = ();

    fn on_accept(&mut self, _net: &mut Net, _l: ListenerId, conn: ConnId, _peer: SocketAddr) {
        self.conns.insert(conn, HttpConn::new(Limits::default()));
    }

    fn on_read(&mut self, net: &mut Net, conn: ConnId, input: &mut Buffer) {
        let Some(http) = self.conns.get_mut(&conn) else {
            return;
        };
        let later = &mut self.later;
        if let Err(e) = http.serve(net, conn, input, |_, r| handle(later, conn, r)) {
            http.reject(net, conn, &e);
        }
    }

    fn on_close(&mut self, _net: &mut Net, conn: ConnId, _reason: CloseReason) {
        self.conns.remove(&conn);
    }
}

/// Runs the server loop until `client` returns; its result.
fn with_server<T: Send + 'static>(client: impl FnOnce(SocketAddr) -> T + Send + 'static) -> T {
    let mut ev = EventLoop::<()>::new(Config::default()).unwrap();
    let listener = ev.net().listen("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = ev.net().listener_addr(listener).unwrap();
    let mut server = Server::default();
    let client = thread::spawn(move || client(addr));
    let deadline = Instant::now() + GUARD;
    while !client.is_finished() {
        assert!(Instant::now() < deadline, "client did not finish");
        ev.turn(&mut server).unwrap();
        server.answer_later(ev.net());
    }
    client.join().unwrap()
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(GUARD)).unwrap();
    s
}

/// Reads one response with a `Content-Length`: (head, body).
fn read_response(s: &mut TcpStream, pending: &mut Vec<u8>) -> (String, Vec<u8>) {
    loop {
        if let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8(pending[..end].to_vec()).unwrap();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length:"))
                .expect("a Content-Length")
                .parse()
                .unwrap();
            if pending.len() >= end + 4 + len {
                let body = pending[end + 4..end + 4 + len].to_vec();
                pending.drain(..end + 4 + len);
                return (head, body);
            }
        }
        let mut buf = [0u8; 4096];
        let n = s.read(&mut buf).expect("a response");
        assert!(n > 0, "closed before a whole response");
        pending.extend_from_slice(&buf[..n]);
    }
}

fn read_to_close(s: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    match s.read_to_end(&mut out) {
        Ok(_) => out,
        Err(e) if e.kind() == ErrorKind::ConnectionReset => out,
        Err(e) => panic!("not closed: {e}"),
    }
}

#[test]
fn keep_alive_pipelining_and_a_late_response() {
    with_server(|addr| {
        let mut s = connect(addr);
        let mut pending = Vec::new();
        // Pipelined: the late one is answered first, the echo after it.
        s.write_all(
            b"GET /later?first HTTP/1.1\r\n\r\n\
              POST /echo HTTP/1.1\r\nContent-Length: 6\r\n\r\nsecond",
        )
        .unwrap();
        let (head, body) = read_response(&mut s, &mut pending);
        assert!(head.contains("Connection:keep-alive"), "{head}");
        assert_eq!(body, b"first");
        assert_eq!(read_response(&mut s, &mut pending).1, b"second");
        // Chunked, then a request asking to close.
        s.write_all(
            b"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\
              4\r\nthir\r\n1\r\nd\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(read_response(&mut s, &mut pending).1, b"third");
        s.write_all(b"GET /nothing HTTP/1.1\r\nConnection: close\r\n\r\n")
            .unwrap();
        let (head, _) = read_response(&mut s, &mut pending);
        assert!(head.starts_with("HTTP/1.1 404 Not Found\r\nConnection:close\r\n"));
        assert_eq!(read_to_close(&mut s), b"");
    });
}

#[test]
fn closing_and_rejecting() {
    with_server(|addr| {
        let mut s = connect(addr);
        s.write_all(b"GET /close HTTP/1.1\r\n\r\n").unwrap();
        assert_eq!(read_to_close(&mut s), b"");

        let mut s = connect(addr);
        s.write_all(b"GET / HTTP/1.1\r\nBad Header\r\n\r\n")
            .unwrap();
        assert_eq!(
            read_to_close(&mut s),
            b"HTTP/1.1 400 Bad Request\r\nConnection:close\r\nContent-Length:0\r\n\r\n"
        );

        // HTTP/1.0 without keep-alive: one response, then closed.
        let mut s = connect(addr);
        s.write_all(b"POST /echo HTTP/1.0\r\nContent-Length: 2\r\n\r\nhi")
            .unwrap();
        let reply = read_to_close(&mut s);
        assert!(reply.starts_with(b"HTTP/1.1 200 OK\r\nConnection:close\r\n"));
        assert!(reply.ends_with(b"\r\n\r\nhi"));
    });
}
