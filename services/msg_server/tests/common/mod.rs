//! Test support: logins with the blocking PDU client of `tt_testkit` against a
//! [`tt_testkit::Stack`] (db_proxy_server, route_server, login_server, msg_server on ports of
//! its own), with the seeded users of [`USERS`].

#![allow(dead_code)]

use std::time::Duration;

use tt_proto::ids::sid;
use tt_proto::pb::login::{ImLoginReq, ImLoginRes};
pub use tt_testkit::users::PASSWORD_MD5;
use tt_testkit::users::UserRange;
pub use tt_testkit::{PduClient, Stack};

/// The seeded users of these tests.
pub const USERS: UserRange = tt_testkit::users::MSG_SERVER;

/// Hang guard for every wait (not a timing assertion).
pub const WAIT: Duration = tt_testkit::HANG_GUARD;

pub const CLIENT_WINDOWS: i32 = 0x01;
pub const CLIENT_MAC: i32 = 0x02;
pub const CLIENT_IOS: i32 = 0x11;
pub const CLIENT_ANDROID: i32 = 0x12;

/// A [`Stack`] as seen by a PDU client (built with `Stack::start("msg_server", 1)`, or
/// `Stack::builder` for some servers only or extra conf lines): msg_server 0 is the one used.
pub trait MsgStack {
    fn connect(&self) -> PduClient;

    /// Logs in (the stack has waited for msg_server's links: no refusal is transient).
    fn login(&self, user: &str, client_type: i32) -> (PduClient, ImLoginRes) {
        self.login_with(user, PASSWORD_MD5, client_type)
    }

    /// Logs in with any password and returns the result, whatever it is.
    fn login_with(&self, user: &str, password: &str, client_type: i32) -> (PduClient, ImLoginRes) {
        let mut c = self.connect();
        let res = c.login(user, password, client_type);
        (c, res)
    }
}

impl MsgStack for Stack {
    fn connect(&self) -> PduClient {
        PduClient::connect(self.msg_port(0))
    }
}

/// The login request of a TeamTalk client.
pub trait Login {
    /// Sends the login request and returns msg_server's answer (checked to carry the request's
    /// seq and `SID_LOGIN`); notifications before it are skipped.
    fn login(&mut self, user: &str, password: &str, client_type: i32) -> ImLoginRes;
}

impl Login for PduClient {
    fn login(&mut self, user: &str, password: &str, client_type: i32) -> ImLoginRes {
        let seq = self.send(&ImLoginReq {
            user_name: user.into(),
            password: password.into(),
            online_status: 1,
            client_type,
            client_version: Some(b"test".to_vec()),
        });
        let (h, res) = self.recv::<ImLoginRes>();
        assert_eq!(h.seq_num, seq, "login reply carries the request's seq");
        assert_eq!(h.service_id, sid::SID_LOGIN);
        res
    }
}
