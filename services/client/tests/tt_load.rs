//! `tt-load`'s default users are the range the test user table keeps for it
//! (`tt_testkit::users::TT_LOAD`), so a load run with the defaults does not log out or message
//! the users of tests running at the same time. `--hold` against a fake msg_server: the
//! sockets are spread over the `--bind` source addresses.

mod common;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::process::Command;
use std::thread;

use common::FakeMsgServer;
use tt_testkit::users::{ALLOTTED, TT_LOAD, UserRange};
use tt_testkit::{PduListener, free_port};

/// The `users A..=B` of tt-load's start line, run with its default users against a port where
/// nothing listens (every login fails at once; the start line comes before).
fn default_users() -> UserRange {
    let out = Command::new(env!("CARGO_BIN_EXE_tt-load"))
        .args(["--msg-server", &format!("127.0.0.1:{}", free_port())])
        .output()
        .expect("run tt-load");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(3),
        "the logins fail: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (first, last) = stdout
        .split_once("(users ")
        .and_then(|(_, rest)| rest.split_once(')'))
        .and_then(|(range, _)| range.split_once("..="))
        .unwrap_or_else(|| panic!("no user range in the start line: {stdout}"));
    UserRange::new(
        first.parse().expect("first user id"),
        last.parse().expect("last user id"),
    )
}

#[test]
fn default_users_are_the_tt_load_range_and_no_tests() {
    let users = default_users();
    assert_eq!(users.first, TT_LOAD.first, "default --first-user");
    assert!(TT_LOAD.covers(&users), "{users:?} beyond {TT_LOAD:?}");
    for (name, range) in ALLOTTED {
        if *range != TT_LOAD {
            assert!(!range.overlaps(&users), "{users:?} overlaps {name}");
        }
    }
}

#[test]
fn hold_spreads_the_connections_over_the_bind_addresses() {
    const CONNS: u32 = 30;
    let listener = PduListener::bind();
    let addr = listener.addr();
    // Every connection is answered a successful login and kept open until the end.
    let fake = thread::spawn(move || {
        (0..CONNS)
            .map(|_| {
                let mut conn = listener.accept();
                let req = conn.accept_login(1, "user1");
                assert_eq!(req.client_type, 0x12, "--client-type mobile: Android");
                let from = conn.stream().peer_addr().expect("peer address").ip();
                (from, conn)
            })
            .collect::<Vec<_>>()
    });
    let out = Command::new(env!("CARGO_BIN_EXE_tt-load"))
        .args(["--msg-server", &addr.to_string(), "--hold", "0.1"])
        .args(["--users", &CONNS.to_string(), "--logins", "3"])
        .args(["--client-type", "mobile", "--bind", "127.0.0.1*3"])
        .args(["--rss-pid", &std::process::id().to_string()])
        .output()
        .expect("run tt-load");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let held = fake.join().expect("the fake msg_server");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("logged in: 30 of 30"), "{stdout}");
    assert!(stdout.contains("RSS per held connection: "), "{stdout}");
    let mut per_source: BTreeMap<IpAddr, u32> = BTreeMap::new();
    for (from, _) in &held {
        *per_source.entry(*from).or_default() += 1;
    }
    let expected: BTreeMap<IpAddr, u32> = ["127.0.0.1", "127.0.0.2", "127.0.0.3"]
        .iter()
        .map(|ip| (ip.parse().unwrap(), CONNS / 3))
        .collect();
    assert_eq!(per_source, expected, "connections per source address");
}
