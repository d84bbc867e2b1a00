//! What the workspace tests of the buddy-list and push families share: logging in to a
//! msg_server of a [`Stack`] with `tt_client` or as a raw PDU peer, restarting db_proxy_server,
//! sending a request with a body the library would never send, waiting for a group's member
//! change.

#![allow(dead_code)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tt_client::tt_proto::pb::login;
use tt_client::tt_proto::{Command, Pdu};
use tt_client::{Client, ClientType, Event, UserStatType};
use tt_testkit::stack::LIMIT;
use tt_testkit::users::{PASSWORD, PASSWORD_MD5};
use tt_testkit::{PduClient, Stack};

/// Hang guard for a reply or an event that must come.
pub const WAIT: Duration = Duration::from_secs(20);

/// `user` logged in to msg_server `server` as a `ct` client.
pub fn login_at(stack: &Stack, server: usize, user: u32, ct: ClientType) -> Client {
    let mut c = Client::connect_to(stack.msg_addr(server)).expect("connect to msg_server");
    c.set_timeout(WAIT);
    let info = c
        .login(
            &format!("user{user}"),
            PASSWORD,
            ct,
            UserStatType::UserStatusOnline,
        )
        .unwrap_or_else(|e| panic!("user{user} login: {e}"));
    assert_eq!(info.user_id, user);
    c
}

/// `user` logged in to msg_server `server` as a raw PDU peer, for bodies the library would
/// never send.
pub fn raw_login(stack: &Stack, server: usize, user: u32, ct: ClientType) -> PduClient {
    let mut c = PduClient::connect_to(stack.msg_addr(server));
    c.set_hang_guard(WAIT);
    c.skip_heartbeats(true);
    c.send(&login::ImLoginReq {
        user_name: format!("user{user}").into_bytes(),
        password: PASSWORD_MD5.into(),
        online_status: UserStatType::UserStatusOnline as i32,
        client_type: ct as i32,
        client_version: None,
    });
    let (_, res) = c.recv::<login::ImLoginRes>();
    assert_eq!(res.result_code, 0, "user{user} logs in");
    c
}

/// Sends request type `Q` with `body` instead of its encoding from a `ct` client of `user`:
/// the server must close the connection without a reply of type `R`.
pub fn closes_on<Q: Command + Default, R: Command>(
    stack: &Stack,
    user: u32,
    ct: ClientType,
    body: &[u8],
) {
    let mut c = raw_login(stack, 0, user, ct);
    let mut pdu = Pdu::command(c.next_seq(), &Q::default());
    pdu.body = body.to_vec();
    c.send_pdu(&pdu);
    let seen = c.expect_closed();
    assert!(
        seen.iter().all(|p| p.header.command_id != R::COMMAND_ID),
        "{} with body {body:?} was answered: {seen:?}",
        Q::NAME
    );
}

/// The next member change of `group` `c` hears of: (by, type, current, changed).
pub fn next_group_change(c: &mut Client, group: u32) -> (u32, i32, Vec<u32>, Vec<u32>) {
    let e = c.wait_for(
        WAIT,
        |e| matches!(e, Event::GroupMembersChanged { group_id, .. } if *group_id == group),
    );
    match e {
        Ok(Some(Event::GroupMembersChanged {
            user_id,
            change_type,
            current,
            changed,
            ..
        })) => (user_id, change_type, current, changed),
        other => panic!(
            "user {}: no member change of group {group}: {other:?}",
            c.user_id()
        ),
    }
}

/// A text no earlier run has stored: `what` and the current time in nanoseconds.
pub fn fresh(what: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    format!("{what} {nanos}")
}

/// Waits until every msg_server of the stack logged a line containing `line`.
fn every_msg_server_logs(stack: &mut Stack, line: &str) {
    for i in 0..stack.msg.len() {
        assert!(
            stack.msg_daemon(i).wait_for_line(line, LIMIT),
            "msg_server {i} did not log {line:?}"
        );
    }
}

/// Kills db_proxy_server and starts it again; returns once every msg_server has its link
/// back.
pub fn restart_db_proxy(stack: &mut Stack) {
    Stack::kill(&mut stack.db_proxy);
    every_msg_server_logs(stack, "lost the link to db_proxy_server");
    stack.start_db_proxy();
    every_msg_server_logs(stack, "connected to db_proxy_server");
}
