//! The seeded users (`sql/seed.sql`: `user<id>` for every id of [`SEEDED`], password
//! [`PASSWORD`]) and which test owns which of them.
//!
//! Tests run in parallel, and against one database that keeps its state between runs, so two
//! tests never share a user: each test file (or crate) takes its users from its own range here,
//! and the unit tests below check that the ranges are disjoint and seeded. `tt-load` has a range
//! of its own, so a load run does not disturb tests running at the same time.
//!
//! | range | ids | used by |
//! |---|---|---|
//! | [`CHAT`] | 1..=20 | `tests/chat.rs` |
//! | [`LOAD_TEST`] | 21..=40 | `tests/load.rs` |
//! | [`PROPS`] | 41..=49 | `tests/dispatch_props.rs` |
//! | [`CLIENT_LIVE`] | 50..=59 | `services/client/tests/live.rs` |
//! | [`MSG_SERVER`] | 60..=79 | `services/msg_server/tests/msg_server.rs` |
//! | [`FILE_TRANSFER`] | 80..=89 | `tests/file_transfer.rs` |
//! | [`DB_PROXY`] | 90..=99 | `services/db_proxy_server/tests/db_proxy.rs` |
//! | [`GROUPS`] | 101..=180 | `tests/groups.rs` |
//! | [`BUDDY`] | 181..=200 | `tests/buddy.rs` |
//! | [`PUSH`] | 201..=210 | `tests/push.rs` |
//! | [`DB_PROXY_GROUPS`] | 211..=240 | `services/db_proxy_server/tests/groups.rs` |
//! | [`DB_PROXY_BUDDY`] | 241..=260 | `services/db_proxy_server/tests/buddy.rs` |
//! | [`DB_PROXY_FILES`] | 261..=270 | `services/db_proxy_server/tests/files.rs` |
//! | [`DB_PROXY_RELIABILITY`] | 271..=280 | `services/db_proxy_server/tests/reliability.rs` |
//! | [`HOSTILE`] | 281..=290 | `tests/hostile.rs` |
//! | [`FILES`] | 291..=300 | `tests/files.rs` |
//! | [`TT_LOAD`] | 301..=900 | `tt-load`'s default users (from `--first-user` 301) |
//! | [`HTTP_API`] | 901..=940 | `tests/http_api.rs` (http_msg_server) |
//! | [`OFFLINE_PUSH`] | 941..=980 | `tests/offline_push.rs` (msg_server → push_server) |
//! | [`GRACEFUL_STOP`] | 981..=990 | `tests/graceful_stop.rs` |
//! | [`METRICS`] | 991..=1000 | `tests/metrics.rs` |
//! | [`FAULTS`] | 1001..=1100 | `tests/faults.rs` |
//! | [`SOAK`] | 1101..=11100 | `scripts/soak.sh` (`tt-load --first-user 1101`, up to 10 000 clients) |
//!
//! Ids of [`SEEDED`] outside every range (100) are free for the
//! next test that needs users. Tests against fake servers (route_server's, login_server's, the client
//! library's) use ids that no database sees and need no range.

use std::ops::RangeInclusive;

/// An inclusive range of user ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UserRange {
    pub first: u32,
    pub last: u32,
}

impl UserRange {
    pub const fn new(first: u32, last: u32) -> UserRange {
        assert!(0 < first && first <= last, "an empty user range");
        UserRange { first, last }
    }

    /// Number of users in the range.
    pub const fn len(&self) -> u32 {
        self.last - self.first + 1
    }

    /// Never true: a range has at least one user.
    pub const fn is_empty(&self) -> bool {
        false
    }

    /// The id of the range's user number `i` (from 0). Panics beyond the range.
    pub const fn id(&self, i: u32) -> u32 {
        assert!(i < self.len(), "user index beyond the range");
        self.first + i
    }

    /// The login name of the range's user number `i`: `user<id>`.
    pub fn name(&self, i: u32) -> String {
        format!("user{}", self.id(i))
    }

    pub const fn contains(&self, id: u32) -> bool {
        self.first <= id && id <= self.last
    }

    /// True if every id of `other` is in this range.
    pub const fn covers(&self, other: &UserRange) -> bool {
        self.first <= other.first && other.last <= self.last
    }

    pub const fn overlaps(&self, other: &UserRange) -> bool {
        self.first <= other.last && other.first <= self.last
    }

    pub fn ids(&self) -> RangeInclusive<u32> {
        self.first..=self.last
    }
}

/// Every user `sql/seed.sql` creates (ids = the numbers in the names).
pub const SEEDED: UserRange = UserRange::new(1, 11100);

/// The plaintext password of every seeded user.
pub const PASSWORD: &str = "123456";

/// md5 of [`PASSWORD`] in lower-case hex: what clients send.
pub const PASSWORD_MD5: &str = "e10adc3949ba59abbe56e057f20f883e";

/// `tests/chat.rs`: end-to-end chat through the whole stack.
pub const CHAT: UserRange = UserRange::new(1, 20);

/// `tests/load.rs`: ten pairs under concurrency.
pub const LOAD_TEST: UserRange = UserRange::new(21, 40);

/// `tests/dispatch_props.rs`: arbitrary PDUs against every daemon, logged in and not.
pub const PROPS: UserRange = UserRange::new(41, 49);

/// `services/client/tests/live.rs`: the client library and `tt-cli` against the daemons.
pub const CLIENT_LIVE: UserRange = UserRange::new(50, 59);

/// `services/msg_server/tests/msg_server.rs`.
pub const MSG_SERVER: UserRange = UserRange::new(60, 79);

/// `tests/file_transfer.rs`: file transfers through file_server, online and offline.
pub const FILE_TRANSFER: UserRange = UserRange::new(80, 89);

/// `services/db_proxy_server/tests/db_proxy.rs`.
pub const DB_PROXY: UserRange = UserRange::new(90, 99);

/// `tests/groups.rs`: groups across two msg_servers (a 50-member group among them).
pub const GROUPS: UserRange = UserRange::new(101, 180);

/// `tests/buddy.rs`: signature, avatar, sessions and changed users across two msg_servers.
pub const BUDDY: UserRange = UserRange::new(181, 200);

/// `tests/push.rs`: device tokens and push shields.
pub const PUSH: UserRange = UserRange::new(201, 210);

/// `services/db_proxy_server/tests/groups.rs`.
pub const DB_PROXY_GROUPS: UserRange = UserRange::new(211, 240);

/// `services/db_proxy_server/tests/buddy.rs`.
pub const DB_PROXY_BUDDY: UserRange = UserRange::new(241, 260);

/// `services/db_proxy_server/tests/files.rs`: offline files.
pub const DB_PROXY_FILES: UserRange = UserRange::new(261, 270);

/// `services/db_proxy_server/tests/reliability.rs`: msg ids across Redis losing its data.
pub const DB_PROXY_RELIABILITY: UserRange = UserRange::new(271, 280);

/// `tests/hostile.rs`: slow and hostile peers, hostile strings in every text field.
pub const HOSTILE: UserRange = UserRange::new(281, 290);

/// `tests/files.rs`: offline files through msg_server.
pub const FILES: UserRange = UserRange::new(291, 300);

/// `tt-load`: its default `--first-user` is this range's first id, and its default user count
/// (40) lies within it, as do runs of up to 600 users from there
/// (checked by `services/client/tests/tt_load.rs`).
pub const TT_LOAD: UserRange = UserRange::new(301, 900);

/// `tests/http_api.rs`: http_msg_server's group API, its effects seen by clients.
pub const HTTP_API: UserRange = UserRange::new(901, 940);

/// `tests/offline_push.rs`: msg_server's offline pushes through push_server to a gateway.
pub const OFFLINE_PUSH: UserRange = UserRange::new(941, 980);

/// `tests/graceful_stop.rs`: pairs chatting while daemons get SIGTERM.
pub const GRACEFUL_STOP: UserRange = UserRange::new(981, 990);

/// `tests/metrics.rs`: logins, messages and rate-limit drops counted on `/metrics`.
pub const METRICS: UserRange = UserRange::new(991, 1000);

/// `tests/faults.rs`: twenty pairs and a twenty-member group under kill -9 of every daemon,
/// MariaDB and Redis.
pub const FAULTS: UserRange = UserRange::new(1001, 1100);

/// `scripts/soak.sh`: `tt-load` from this range's first id, as many users as clients (at most
/// this range's 10 000).
pub const SOAK: UserRange = UserRange::new(1101, 11100);

/// Every allotted range, by name.
pub const ALLOTTED: &[(&str, UserRange)] = &[
    ("CHAT", CHAT),
    ("LOAD_TEST", LOAD_TEST),
    ("PROPS", PROPS),
    ("CLIENT_LIVE", CLIENT_LIVE),
    ("MSG_SERVER", MSG_SERVER),
    ("FILE_TRANSFER", FILE_TRANSFER),
    ("DB_PROXY", DB_PROXY),
    ("GROUPS", GROUPS),
    ("BUDDY", BUDDY),
    ("PUSH", PUSH),
    ("DB_PROXY_GROUPS", DB_PROXY_GROUPS),
    ("DB_PROXY_BUDDY", DB_PROXY_BUDDY),
    ("DB_PROXY_FILES", DB_PROXY_FILES),
    ("DB_PROXY_RELIABILITY", DB_PROXY_RELIABILITY),
    ("HOSTILE", HOSTILE),
    ("FILES", FILES),
    ("TT_LOAD", TT_LOAD),
    ("HTTP_API", HTTP_API),
    ("OFFLINE_PUSH", OFFLINE_PUSH),
    ("GRACEFUL_STOP", GRACEFUL_STOP),
    ("METRICS", METRICS),
    ("FAULTS", FAULTS),
    ("SOAK", SOAK),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_two_ranges_overlap() {
        for (i, (a_name, a)) in ALLOTTED.iter().enumerate() {
            for (b_name, b) in &ALLOTTED[i + 1..] {
                assert!(!a.overlaps(b), "{a_name} {a:?} overlaps {b_name} {b:?}");
            }
        }
    }

    #[test]
    fn every_range_is_seeded() {
        for (name, r) in ALLOTTED {
            assert!(SEEDED.covers(r), "{name} {r:?} is not within {SEEDED:?}");
        }
    }

    #[test]
    fn the_table_has_each_range_once() {
        let mut names: Vec<&str> = ALLOTTED.iter().map(|(n, _)| *n).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ALLOTTED.len());
    }

    #[test]
    fn ids_and_names() {
        assert_eq!(MSG_SERVER.id(0), 60);
        assert_eq!(MSG_SERVER.name(19), "user79");
        assert_eq!(TT_LOAD.len(), 600);
        assert_eq!(SOAK.len(), 10_000);
        assert!(DB_PROXY.contains(99) && !DB_PROXY.contains(100));
        assert!(LOAD_TEST.overlaps(&UserRange::new(40, 41)));
        assert!(!LOAD_TEST.overlaps(&UserRange::new(41, 49)));
    }

    #[test]
    #[should_panic(expected = "beyond the range")]
    fn an_index_beyond_the_range_panics() {
        DB_PROXY.id(10);
    }
}
