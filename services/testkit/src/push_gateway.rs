//! A push gateway inside a test: an HTTP/1.1 listener that takes push_server's Gorush
//! requests (`POST /api/push`), records each request it receives and answers it as
//! scripted (a status, or no answer at all), one thread per connection, keep-alive. Tests
//! read what it received notification by notification or request by request.
//!
//! ```no_run
//! use tt_testkit::push_gateway::{Answer, PushGateway};
//! use tt_testkit::Stack;
//!
//! let mut gateway = PushGateway::start(&[]); // answers 200
//! let _stack = Stack::builder("push").push_gateway(&gateway.url()).start();
//! let n = gateway.next_notification();
//! assert_eq!(n.platform, 1);
//! let mut hanging = PushGateway::start(&[Answer::Hang]); // the first request is never answered
//! let request = hanging.next_request(); // a whole request: path and JSON body
//! assert_eq!(request.body["notifications"].as_array().map(Vec::len), Some(1));
//! ```

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tt_proto::pb::base_define::UserTokenInfo;

use crate::HANG_GUARD;

/// Largest request body read (a Gorush batch of push_server is far smaller).
const MAX_BODY: usize = 16 << 20;

/// How the gateway answers one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    Status(u16),
    /// The request is recorded and never answered.
    Hang,
}

/// One request as the gateway received it.
#[derive(Clone, Debug)]
pub struct Request {
    pub path: String,
    /// The JSON body (`Null` when it is not JSON).
    pub body: Value,
}

/// One entry of the token list of a push request to push_server (`IMPushToUserReq`).
pub fn user_token(
    user_id: u32,
    user_type: i32,
    token: &str,
    push_count: u32,
    push_type: u32,
) -> UserTokenInfo {
    UserTokenInfo {
        user_id,
        user_type,
        token: token.as_bytes().to_vec(),
        push_count,
        push_type,
    }
}

/// One Gorush notification as the gateway received it.
#[derive(Clone, Debug)]
pub struct Notification {
    /// Gorush's platform: 1 iOS, 2 Android.
    pub platform: u64,
    pub tokens: Vec<String>,
    /// The alert text; absent for a silent push.
    pub message: Option<String>,
    pub badge: Option<u64>,
    /// A silent push (`content_available`).
    pub silent: bool,
    /// The `data` object.
    pub data: Value,
}

impl Notification {
    fn from_json(v: &Value) -> Notification {
        Notification {
            platform: v["platform"].as_u64().expect("a platform"),
            tokens: v["tokens"]
                .as_array()
                .expect("tokens")
                .iter()
                .map(|t| t.as_str().expect("a token").to_string())
                .collect(),
            message: v["message"].as_str().map(str::to_string),
            badge: v["badge"].as_u64(),
            silent: v["content_available"].as_bool() == Some(true),
            data: v["data"].clone(),
        }
    }

    /// One notification per token, the rest shared.
    fn per_token(self) -> impl Iterator<Item = Notification> {
        let tokens = self.tokens.clone();
        tokens.into_iter().map(move |t| Notification {
            tokens: vec![t],
            ..self.clone()
        })
    }

    /// The one token of a notification split by [`PushGateway::next_notification`].
    pub fn token(&self) -> &str {
        &self.tokens[0]
    }
}

/// The listener; it runs until the test process ends.
pub struct PushGateway {
    port: u16,
    received: Receiver<Request>,
    /// Notifications of requests read but not handed out yet, one token each.
    pending: VecDeque<Notification>,
}

impl PushGateway {
    /// Listens on a free port; requests are answered in the order of `answers`, then with 200.
    pub fn start(answers: &[Answer]) -> PushGateway {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the push gateway");
        let port = listener.local_addr().expect("its address").port();
        let answers = Arc::new(Mutex::new(answers.iter().copied().collect::<VecDeque<_>>()));
        let (tx, received) = mpsc::channel();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { break };
                let (tx, answers) = (tx.clone(), answers.clone());
                std::thread::spawn(move || serve(stream, &tx, &answers));
            }
        });
        PushGateway {
            port,
            received,
            pending: VecDeque::new(),
        }
    }

    /// `http://127.0.0.1:<port>`, for `PushGatewayUrl`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The next request received, whole; its notifications are not handed out by
    /// [`PushGateway::next_notification`]. Panics after [`HANG_GUARD`] without one.
    pub fn next_request(&mut self) -> Request {
        self.received
            .recv_timeout(HANG_GUARD)
            .expect("no push reached the gateway (hang guard)")
    }

    /// The next notification received, one token each (a notification of several tokens is
    /// handed out once per token, in order); panics after [`HANG_GUARD`] without one.
    pub fn next_notification(&mut self) -> Notification {
        while self.pending.is_empty() {
            let Request { path, body } = self.next_request();
            assert_eq!(path, "/api/push", "push_server posts to Gorush's path");
            let list = body["notifications"]
                .as_array()
                .expect("a Gorush body has notifications");
            for n in list {
                self.pending.extend(Notification::from_json(n).per_token());
            }
        }
        self.pending.pop_front().expect("one is pending")
    }

    /// Notifications (one token each) until one for `token` arrives; returns those before it
    /// and that one.
    pub fn until_token(&mut self, token: &str) -> (Vec<Notification>, Notification) {
        let mut before = Vec::new();
        loop {
            let n = self.next_notification();
            if n.token() == token {
                return (before, n);
            }
            before.push(n);
        }
    }
}

/// Reads requests of one connection and answers them; records each body.
fn serve(stream: TcpStream, tx: &Sender<Request>, answers: &Mutex<VecDeque<Answer>>) {
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut out = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line.split(' ').nth(1).unwrap_or("").to_string();
        let mut len = 0usize;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            if h == "\r\n" || h == "\n" {
                break;
            }
            if let Some((k, v)) = h.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                len = v.trim().parse().unwrap_or(0);
            }
        }
        if len > MAX_BODY {
            return;
        }
        let mut body = vec![0; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let answer = answers
            .lock()
            .expect("answers")
            .pop_front()
            .unwrap_or(Answer::Status(200));
        let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if tx.send(Request { path, body }).is_err() {
            return;
        }
        match answer {
            Answer::Status(code) => {
                let reply = b"{\"success\":\"ok\"}";
                let head = format!(
                    "HTTP/1.1 {code} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                    reply.len()
                );
                if out.write_all(head.as_bytes()).is_err() || out.write_all(reply).is_err() {
                    return;
                }
            }
            Answer::Hang => {
                // Holds the connection open, unanswered, until the peer goes away.
                let _ = std::io::copy(&mut reader, &mut std::io::sink());
                return;
            }
        }
    }
}
