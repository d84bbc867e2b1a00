//! A scripted fake msg_server for the client tests: the server side of `tt_testkit`'s
//! [`PduClient`], with what a msg_server answers to a login.

#![allow(dead_code)]

pub mod tt_cli;

use std::net::SocketAddr;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use tt_client::tt_proto::ids::cid;
use tt_client::tt_proto::pb::{base_define, group, login};
use tt_client::tt_proto::{Command, Pdu};
use tt_testkit::{PduClient, PduListener};

/// Hang guard for every blocking wait of the fake server.
pub const GUARD: Duration = tt_testkit::HANG_GUARD;

/// The fake server's side of the one connection.
pub type FakeConn = PduClient;

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
    let listener = PduListener::bind();
    let addr = listener.addr();
    let fake = thread::spawn(move || {
        let mut conn = listener.accept();
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

/// What the fake msg_server does on its connection beyond [`PduClient`].
pub trait FakeMsgServer {
    /// The next PDU that is not a heartbeat or a delivery ack.
    fn read_request(&mut self) -> Pdu;

    /// The next request (as [`read_request`](Self::read_request)), asserted to be `command_id`.
    fn expect_request(&mut self, command_id: u16) -> Pdu;

    /// The next request, asserted to be a `Q` that parses with the original's rules, answered
    /// with what `reply` makes of it (under the request's seq). `reply` may send other PDUs
    /// first on the connection it is given.
    fn answer<Q: Command, R: Command>(&mut self, reply: impl FnOnce(&mut FakeConn, Q) -> R);

    /// Reads the login request and accepts it as user `id`.
    fn accept_login(&mut self, id: u32, name: &str) -> login::ImLoginReq;

    /// Reads the login request and refuses it with `code` and `text`.
    fn refuse_login(&mut self, code: i32, text: &str) -> login::ImLoginReq;
}

impl FakeMsgServer for FakeConn {
    fn read_request(&mut self) -> Pdu {
        loop {
            let p = self.recv_pdu();
            let c = p.header.command_id;
            if c != cid::CID_OTHER_HEARTBEAT && c != cid::CID_MSG_DATA_ACK {
                return p;
            }
        }
    }

    fn expect_request(&mut self, command_id: u16) -> Pdu {
        let p = self.read_request();
        assert_eq!(
            p.header.command_id, command_id,
            "expected request {command_id:#06x}, got {:#06x}",
            p.header.command_id
        );
        p
    }

    fn answer<Q: Command, R: Command>(&mut self, reply: impl FnOnce(&mut FakeConn, Q) -> R) {
        let p = self.expect_request(Q::COMMAND_ID);
        let q = p
            .decode_checked::<Q>()
            .unwrap_or_else(|e| panic!("{}: {e}", Q::NAME));
        let r = reply(self, q);
        self.reply(&p.header, &r);
    }

    fn accept_login(&mut self, id: u32, name: &str) -> login::ImLoginReq {
        let (p, req) = read_login(self);
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

    fn refuse_login(&mut self, code: i32, text: &str) -> login::ImLoginReq {
        let (p, req) = read_login(self);
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
}

fn read_login(conn: &mut FakeConn) -> (Pdu, login::ImLoginReq) {
    let p = conn.expect_request(cid::CID_LOGIN_REQ_USERLOGIN);
    let req = p.decode_checked().expect("login request");
    (p, req)
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

/// A member-change reply to `user` about group `group_id`.
pub fn members_changed(
    user: u32,
    group_id: u32,
    change_type: i32,
    result_code: u32,
    current: Vec<u32>,
    changed: Vec<u32>,
) -> group::ImGroupChangeMemberRsp {
    group::ImGroupChangeMemberRsp {
        user_id: user,
        change_type,
        result_code,
        group_id,
        cur_user_id_list: current,
        chg_user_id_list: changed,
        attach_data: None,
    }
}
