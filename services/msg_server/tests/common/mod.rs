//! Test support: a local stack (db_proxy_server, route_server, login_server, msg_server) on
//! ports of its own, and a small blocking PDU client over `std::net::TcpStream`.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use tt_proto::ids::{cid, sid};
use tt_proto::pb::login::{ImLoginReq, ImLoginRes};
use tt_proto::prost::Message;
use tt_proto::{Decoder, Pdu};
use tt_testkit::{Daemon, DbEnv, TempDir, free_port};

/// Hang guard for every wait (not a timing assertion).
pub const WAIT: Duration = Duration::from_secs(20);
/// md5("123456"), what clients send as the password of every seeded user.
pub const PASSWORD_MD5: &str = "e10adc3949ba59abbe56e057f20f883e";

pub const CLIENT_WINDOWS: i32 = 0x01;
pub const CLIENT_MAC: i32 = 0x02;
pub const CLIENT_IOS: i32 = 0x11;
pub const CLIENT_ANDROID: i32 = 0x12;

/// Which servers a stack runs besides msg_server.
#[derive(Clone, Copy)]
pub struct Parts {
    pub db: bool,
    pub route: bool,
    pub login: bool,
}

pub const FULL: Parts = Parts {
    db: true,
    route: true,
    login: true,
};

/// One test's servers. Killed on drop.
pub struct Stack {
    pub msg_port: u16,
    pub msg: Daemon,
    _others: Vec<Daemon>,
    _dir: TempDir,
}

fn db_proxy_conf(port: u16) -> String {
    let e = DbEnv::from_env();
    let mut s = format!(
        "ListenIP=127.0.0.1\nListenPort={port}\nThreadNum=2\nMsfsSite=http://127.0.0.1:1\n\
         aesKey=12345678901234567890123456789012\nDBInstances=teamtalk_master,teamtalk_slave\n"
    );
    for name in ["teamtalk_master", "teamtalk_slave"] {
        s += &format!(
            "{name}_host={}\n{name}_port={}\n{name}_dbname={}\n{name}_username={}\n\
             {name}_password={}\n{name}_maxconncnt=4\n",
            e.mysql_host, e.mysql_port, e.mysql_db, e.mysql_user, e.mysql_password
        );
    }
    s += "CacheInstances=unread,group_set,token,sync,group_member\n";
    for (name, db) in [
        ("unread", 1),
        ("group_set", 2),
        ("sync", 3),
        ("token", 4),
        ("group_member", 5),
    ] {
        s += &format!(
            "{name}_host={}\n{name}_port={}\n{name}_db={db}\n{name}_maxconncnt=4\n",
            e.redis_host, e.redis_port
        );
    }
    s
}

impl Stack {
    /// db_proxy, route_server and login_server (as `parts` says; a missing one is configured
    /// on a port nobody listens on) and a msg_server with `extra` conf lines.
    pub fn start(parts: Parts, extra: &str) -> Stack {
        let dir = TempDir::new("msg_server");
        let (db_port, route_port, login_port, msg_port) =
            (free_port(), free_port(), free_port(), free_port());
        let mut others = Vec::new();

        if parts.db {
            dir.write("dbproxyserver.conf", &db_proxy_conf(db_port));
            let mut db = Daemon::spawn("db_proxy_server", dir.path(), "dbproxyserver.conf");
            db.wait_ready(WAIT);
            others.push(db);
        }
        if parts.route {
            dir.write(
                "routeserver.conf",
                &format!("ListenIP=127.0.0.1\nListenMsgPort={route_port}\n"),
            );
            let mut route = Daemon::spawn("route_server", dir.path(), "routeserver.conf");
            route.wait_ready(WAIT);
            others.push(route);
        }
        if parts.login {
            dir.write(
                "loginserver.conf",
                &format!(
                    "ClientListenIP=127.0.0.1\nClientPort={}\nHttpListenIP=127.0.0.1\n\
                     HttpPort={}\nMsgServerListenIP=127.0.0.1\nMsgServerPort={login_port}\n\
                     msfs=http://127.0.0.1:1/\ndiscovery=http://127.0.0.1/api/discovery\n",
                    free_port(),
                    free_port()
                ),
            );
            let mut login = Daemon::spawn("login_server", dir.path(), "loginserver.conf");
            login.wait_ready(WAIT);
            others.push(login);
        }
        dir.write(
            "msgserver.conf",
            &format!(
                "ListenIP=127.0.0.1\nListenPort={msg_port}\nIpAddr1=127.0.0.1\nIpAddr2=127.0.0.1\n\
                 MaxConnCnt=100000\naesKey=12345678901234567890123456789012\n\
                 ConcurrentDBConnCnt=1\nDBServerIP1=127.0.0.1\nDBServerPort1={db_port}\n\
                 DBServerIP2=127.0.0.1\nDBServerPort2={db_port}\n\
                 LoginServerIP1=127.0.0.1\nLoginServerPort1={login_port}\n\
                 RouteServerIP1=127.0.0.1\nRouteServerPort1={route_port}\n{extra}"
            ),
        );
        let mut msg = Daemon::spawn("msg_server", dir.path(), "msgserver.conf");
        msg.wait_ready(WAIT);
        Stack {
            msg_port,
            msg,
            _others: others,
            _dir: dir,
        }
    }

    pub fn connect(&self) -> Client {
        Client::connect(self.msg_port)
    }

    /// Logs in, retrying while msg_server's links are still coming up (refusals 3/4/5).
    pub fn login(&self, user: &str, client_type: i32) -> (Client, ImLoginRes) {
        self.login_with(user, PASSWORD_MD5, client_type, &[])
    }

    /// Logs in, retrying while the result code is one of 3, 4, 5 not in `accept`.
    pub fn login_with(
        &self,
        user: &str,
        password: &str,
        client_type: i32,
        accept: &[i32],
    ) -> (Client, ImLoginRes) {
        let deadline = Instant::now() + WAIT;
        loop {
            let mut c = self.connect();
            let res = c.login(user, password, client_type);
            let transient =
                (3..=5).contains(&res.result_code) && !accept.contains(&res.result_code);
            if !transient {
                return (c, res);
            }
            assert!(
                Instant::now() < deadline,
                "msg_server kept refusing logins with code {}",
                res.result_code
            );
            c.expect_eof();
            std::thread::sleep(Duration::from_millis(100));
        }
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
