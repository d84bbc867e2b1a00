//! A scripted fake msg_server (std sockets) for the client tests.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use tt_client::tt_proto::ids::Command;
use tt_client::tt_proto::pb::{base_define, login};
use tt_client::tt_proto::{Decoder, Header, Pdu};

/// Hang guard for every blocking read of the fake server.
pub const GUARD: Duration = Duration::from_secs(20);

pub struct FakeServer {
    listener: TcpListener,
}

impl FakeServer {
    pub fn start() -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        FakeServer { listener }
    }

    pub fn addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("local addr")
    }

    pub fn accept(&self) -> FakeConn {
        let (stream, _) = self.listener.accept().expect("accept");
        stream.set_read_timeout(Some(GUARD)).expect("timeout");
        FakeConn {
            stream,
            decoder: Decoder::default(),
        }
    }
}

/// A fake msg_server running `script` on its one connection in a thread; see [`serve`].
#[must_use = "call finish() to check the fake server's side"]
pub struct Served {
    /// Where the client connects.
    pub addr: SocketAddr,
    fake: Option<JoinHandle<()>>,
}

impl Served {
    /// Waits for the script to end (the fake then closes the connection) and fails the test with
    /// the fake side's own panic if it had one.
    pub fn finish(mut self) {
        self.join();
    }

    fn join(&mut self) {
        if let Some(Err(panic)) = self.fake.take().map(JoinHandle::join) {
            std::panic::resume_unwind(panic);
        }
    }
}

impl Drop for Served {
    /// A test that forgets `finish()` still checks the fake side; after a panic of the test
    /// itself the fake thread is left alone (it may be blocked on the client).
    fn drop(&mut self) {
        if !thread::panicking() {
            self.join();
        }
    }
}

/// Starts a fake msg_server that accepts one connection and runs `script` on it.
pub fn serve(script: impl FnOnce(&mut FakeConn) + Send + 'static) -> Served {
    let server = FakeServer::start();
    let addr = server.addr();
    let fake = thread::spawn(move || {
        let mut conn = server.accept();
        script(&mut conn);
    });
    Served {
        addr,
        fake: Some(fake),
    }
}

/// [`serve`] with the login of user `id` (named `name`) accepted before `script`.
pub fn serve_user(
    id: u32,
    name: &'static str,
    script: impl FnOnce(&mut FakeConn) + Send + 'static,
) -> Served {
    serve(move |conn| {
        conn.accept_login(id, name);
        script(conn);
    })
}

pub struct FakeConn {
    pub stream: TcpStream,
    decoder: Decoder,
}

impl FakeConn {
    /// The next PDU from the client (panics after the hang guard).
    pub fn read_pdu(&mut self) -> Pdu {
        let mut buf = [0u8; 4096];
        loop {
            if let Some(p) = self.decoder.next_pdu().expect("client framing") {
                return p;
            }
            let n = self.stream.read(&mut buf).expect("fake server read");
            assert!(n > 0, "client closed the connection unexpectedly");
            self.decoder.push(&buf[..n]);
        }
    }

    /// The next PDU that is not a heartbeat or a delivery ack.
    pub fn read_request(&mut self) -> Pdu {
        loop {
            let p = self.read_pdu();
            let c = p.header.command_id;
            if c != 0x0701 && c != 0x0302 {
                return p;
            }
        }
    }

    /// The next request (as [`read_request`](Self::read_request)), asserted to be `command_id`.
    pub fn expect_request(&mut self, command_id: u16) -> Pdu {
        let p = self.read_request();
        assert_eq!(
            p.header.command_id, command_id,
            "expected request {command_id:#06x}, got {:#06x}",
            p.header.command_id
        );
        p
    }

    /// True if the client closed (EOF) before sending anything else.
    pub fn wait_eof(&mut self) -> bool {
        let mut buf = [0u8; 4096];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => return true,
                Ok(n) => self.decoder.push(&buf[..n]),
                Err(_) => return false,
            }
        }
    }

    pub fn send(&mut self, pdu: &Pdu) {
        self.stream
            .write_all(&pdu.to_bytes())
            .expect("fake server write");
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("fake server write");
    }

    /// Sends `msg` as a reply to `req` (same seq).
    pub fn reply<M: Command>(&mut self, req: &Header, msg: &M) {
        self.send(&Pdu::command(req.seq_num, msg));
    }

    /// Sends `msg` as a server-originated PDU (seq 0).
    pub fn notify<M: Command>(&mut self, msg: &M) {
        self.send(&Pdu::command(0, msg));
    }

    /// Reads the login request and accepts it as user `id`.
    pub fn accept_login(&mut self, id: u32, name: &str) -> login::ImLoginReq {
        let (p, req) = self.read_login();
        let res = login::ImLoginRes {
            server_time: 1_700_000_000,
            result_code: 0,
            result_string: Some("成功".into()),
            online_status: Some(req.online_status),
            user_info: Some(user(id, name)),
        };
        self.reply(&p.header, &res);
        req
    }

    /// Reads the login request and refuses it with `code` and `text`.
    pub fn refuse_login(&mut self, code: i32, text: &str) -> login::ImLoginReq {
        let (p, req) = self.read_login();
        let res = login::ImLoginRes {
            server_time: 1,
            result_code: code,
            result_string: Some(text.into()),
            online_status: None,
            user_info: None,
        };
        self.reply(&p.header, &res);
        req
    }

    fn read_login(&mut self) -> (Pdu, login::ImLoginReq) {
        let p = self.expect_request(0x0103);
        let req = p.decode_checked().expect("login request");
        (p, req)
    }
}

pub fn user(id: u32, name: &str) -> base_define::UserInfo {
    base_define::UserInfo {
        user_id: id,
        user_gender: 1,
        user_nick_name: format!("nick {name}").into_bytes(),
        avatar_url: Vec::new(),
        department_id: 1,
        email: format!("{name}@example.org").into_bytes(),
        user_real_name: name.as_bytes().to_vec(),
        user_tel: b"123".to_vec(),
        user_domain: name.as_bytes().to_vec(),
        status: 0,
        sign_info: Some(Vec::new()),
    }
}
