//! Test support: a small blocking PDU client over `std::net::TcpStream`, and logins with it
//! against a [`tt_testkit::Stack`] (db_proxy_server, route_server, login_server, msg_server
//! on ports of its own).

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use tt_proto::ids::{cid, sid};
use tt_proto::pb::login::{ImLoginReq, ImLoginRes};
use tt_proto::prost::Message;
use tt_proto::{Decoder, Pdu};
pub use tt_testkit::Stack;

/// Hang guard for every wait (not a timing assertion).
pub const WAIT: Duration = Duration::from_secs(20);
/// md5("123456"), what clients send as the password of every seeded user.
pub const PASSWORD_MD5: &str = "e10adc3949ba59abbe56e057f20f883e";

pub const CLIENT_WINDOWS: i32 = 0x01;
pub const CLIENT_MAC: i32 = 0x02;
pub const CLIENT_IOS: i32 = 0x11;
pub const CLIENT_ANDROID: i32 = 0x12;

/// The raw PDU client's view of a [`Stack`] (built with `Stack::start("msg_server", 1)`, or
/// `Stack::builder` for some servers only or extra conf lines): msg_server 0 is the one used.
pub trait MsgStack {
    fn connect(&self) -> Client;

    /// Logs in (the stack has waited for msg_server's links: no refusal is transient).
    fn login(&self, user: &str, client_type: i32) -> (Client, ImLoginRes) {
        self.login_with(user, PASSWORD_MD5, client_type)
    }

    /// Logs in with any password and returns the result, whatever it is.
    fn login_with(&self, user: &str, password: &str, client_type: i32) -> (Client, ImLoginRes) {
        let mut c = self.connect();
        let res = c.login(user, password, client_type);
        (c, res)
    }
}

impl MsgStack for Stack {
    fn connect(&self) -> Client {
        Client::connect(self.msg_port(0))
    }
}

/// A blocking PDU client.
pub struct Client {
    pub stream: TcpStream,
    decoder: Decoder,
    seq: u16,
}

impl Client {
    pub fn connect(port: u16) -> Client {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connecting to msg_server");
        stream.set_read_timeout(Some(WAIT)).unwrap();
        stream.set_nodelay(true).unwrap();
        Client {
            stream,
            decoder: Decoder::default(),
            seq: 0,
        }
    }

    pub fn next_seq(&mut self) -> u16 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    pub fn send_pdu(&mut self, pdu: &Pdu) {
        self.stream.write_all(&pdu.to_bytes()).expect("sending");
    }

    /// Sends a request with a fresh seq; returns the seq.
    pub fn send<M: tt_proto::Command>(&mut self, msg: &M) -> u16 {
        let seq = self.next_seq();
        self.send_pdu(&Pdu::command(seq, msg));
        seq
    }

    /// The next PDU (panics on EOF or after the hang guard).
    pub fn recv(&mut self) -> Pdu {
        self.try_recv()
            .expect("connection closed while waiting for a PDU")
    }

    /// The next PDU, or None at end of stream.
    pub fn try_recv(&mut self) -> Option<Pdu> {
        let mut buf = [0u8; 65536];
        loop {
            if let Some(p) = self.decoder.next_pdu().expect("framing") {
                return Some(p);
            }
            match self.stream.read(&mut buf) {
                Ok(0) => return None,
                Ok(n) => self.decoder.push(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return None,
                Err(e) => panic!("reading from msg_server: {e}"),
            }
        }
    }

    /// The next PDU if one arrives within `limit` (None on timeout).
    pub fn recv_within(&mut self, limit: Duration) -> Option<Pdu> {
        if let Some(p) = self.decoder.next_pdu().expect("framing") {
            return Some(p);
        }
        self.stream.set_read_timeout(Some(limit)).unwrap();
        let mut buf = [0u8; 65536];
        let r = self.stream.read(&mut buf);
        self.stream.set_read_timeout(Some(WAIT)).unwrap();
        match r {
            Ok(0) => panic!("connection closed"),
            Ok(n) => self.decoder.push(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return None;
            }
            Err(e) => panic!("reading from msg_server: {e}"),
        }
        Some(self.recv())
    }

    /// The next PDU with command `cmd`, skipping others (notifications).
    pub fn recv_cmd(&mut self, cmd: u16) -> Pdu {
        loop {
            let p = self.recv();
            if p.header.command_id == cmd {
                return p;
            }
        }
    }

    /// Like `recv_cmd`, decoding the body.
    pub fn recv_msg<M: tt_proto::Command>(&mut self) -> (Pdu, M) {
        let p = self.recv_cmd(M::COMMAND_ID);
        let m = M::decode(p.body.as_slice()).expect("decoding a reply");
        (p, m)
    }

    /// Reads until the server closes the connection (other PDUs are skipped); returns what was
    /// skipped.
    pub fn expect_eof(&mut self) -> Vec<Pdu> {
        let mut seen = Vec::new();
        while let Some(p) = self.try_recv() {
            seen.push(p);
        }
        seen
    }

    pub fn login(&mut self, user: &str, password: &str, client_type: i32) -> ImLoginRes {
        let req = ImLoginReq {
            user_name: user.into(),
            password: password.into(),
            online_status: 1,
            client_type,
            client_version: Some(b"test".to_vec()),
        };
        let seq = self.send(&req);
        let p = self.recv_cmd(cid::CID_LOGIN_RES_USERLOGIN);
        assert_eq!(
            p.header.seq_num, seq,
            "login reply carries the request's seq"
        );
        assert_eq!(p.header.service_id, sid::SID_LOGIN);
        ImLoginRes::decode(p.body.as_slice()).expect("IMLoginRes")
    }
}
