//! `tt-load`'s default users are the range the test user table keeps for it
//! (`tt_testkit::users::TT_LOAD`), so a load run with the defaults does not log out or message
//! the users of tests running at the same time.

use std::process::Command;

use tt_testkit::free_port;
use tt_testkit::users::{ALLOTTED, TT_LOAD, UserRange};

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
