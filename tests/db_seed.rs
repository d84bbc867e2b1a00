//! Checks that the project-local MariaDB and Redis from `scripts/db-up.sh` are up and seeded.
//!
//! Connection settings come from the same environment variables, with the same defaults, as
//! `scripts/env.sh`. When a database is unreachable the test fails (it does not skip): run
//! `scripts/db-up.sh` first.

use std::env;
use std::time::Duration;

use md5::{Digest, Md5};
use mysql::prelude::Queryable;
use mysql::{Conn, OptsBuilder};
use redis::Commands;
use tt_testkit::users::{self, SEEDED};

/// Plaintext password of every seeded user (`sql/seed.sql`).
const SEED_PASSWORD: &str = users::PASSWORD;
/// Redis database owned by the tests (db_proxy uses 1..5).
const REDIS_TEST_DB: u8 = 15;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

fn setting(name: &str, default: &str) -> String {
    env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

fn port(name: &str, default: &str) -> u16 {
    let value = setting(name, default);
    value
        .parse()
        .unwrap_or_else(|_| panic!("{name}={value:?} is not a TCP port"))
}

fn md5_hex(data: &str) -> String {
    format!("{:x}", Md5::digest(data.as_bytes()))
}

/// The original's stored form (storage-file.md §2.7): md5hex(md5hex(plaintext) + salt).
fn stored_password(plaintext: &str, salt: &str) -> String {
    md5_hex(&(md5_hex(plaintext) + salt))
}

fn mysql_conn() -> Conn {
    let host = setting("TT_MYSQL_HOST", "127.0.0.1");
    let port = port("TT_MYSQL_PORT", "13306");
    let db = setting("TT_MYSQL_DB", "teamtalk");
    let user = setting("TT_MYSQL_USER", "teamtalk");
    let opts = OptsBuilder::new()
        .ip_or_hostname(Some(host.clone()))
        .tcp_port(port)
        .db_name(Some(db.clone()))
        .user(Some(user.clone()))
        .pass(Some(setting("TT_MYSQL_PASSWORD", "12345")))
        // Stay on TCP like the servers do, instead of switching to the server's socket.
        .prefer_socket(false)
        .tcp_connect_timeout(Some(CONNECT_TIMEOUT));
    Conn::new(opts).unwrap_or_else(|e| {
        panic!(
            "cannot connect to MariaDB at {host}:{port} (database {db}, user {user}): {e}\n\
             start the project databases with `scripts/db-up.sh` first"
        )
    })
}

#[test]
fn password_scheme_matches_the_spec_test_vector() {
    assert_eq!(md5_hex(SEED_PASSWORD), "e10adc3949ba59abbe56e057f20f883e");
    assert_eq!(md5_hex(SEED_PASSWORD), users::PASSWORD_MD5);
    assert_eq!(
        stored_password(SEED_PASSWORD, "1234"),
        "b605e86d02eef8bfd0646f6a704c17c9"
    );
}

#[test]
fn mysql_is_seeded() {
    let mut conn = mysql_conn();

    let (id, name, salt, password): (u32, String, String, String) = conn
        .exec_first(
            "SELECT id, name, salt, password FROM IMUser WHERE name = ? AND status = 0",
            ("user1",),
        )
        .expect("query IMUser")
        .expect("seeded user `user1` is missing: re-run `scripts/db-up.sh`");
    assert_eq!((id, name.as_str()), (1, "user1"));
    assert!(
        (1..=4).contains(&salt.len()) && salt.bytes().all(|b| b.is_ascii_digit()),
        "salt {salt:?} is not 1-4 decimal digits"
    );
    assert_eq!(password, stored_password(SEED_PASSWORD, &salt));

    // Every seeded user (the users every test range is taken from) can log in with the seed
    // password.
    let seeded: Vec<(u32, String, String)> = conn
        .exec(
            "SELECT id, salt, password FROM IMUser \
             WHERE id BETWEEN ? AND ? AND name = CONCAT('user', id) AND status = 0",
            (SEEDED.first, SEEDED.last),
        )
        .expect("query seeded users");
    assert_eq!(
        seeded.len(),
        SEEDED.len() as usize,
        "seeded users user{}..user{}: re-run `scripts/db-up.sh`",
        SEEDED.first,
        SEEDED.last
    );
    for (id, salt, password) in &seeded {
        assert_eq!(password, &stored_password(SEED_PASSWORD, salt), "user{id}");
    }

    let mut shards: Vec<String> = conn
        .query(
            "SELECT table_name FROM information_schema.tables \
             WHERE table_schema = DATABASE() \
             AND (table_name LIKE 'IMMessage\\_%' OR table_name LIKE 'IMGroupMessage\\_%')",
        )
        .expect("list message shards");
    shards.sort();
    let mut expected: Vec<String> = (0..8)
        .flat_map(|i| [format!("IMMessage_{i}"), format!("IMGroupMessage_{i}")])
        .collect();
    expected.sort();
    assert_eq!(shards, expected);
}

#[test]
fn redis_round_trip() {
    let host = setting("TT_REDIS_HOST", "127.0.0.1");
    let port = port("TT_REDIS_PORT", "16379");
    let url = format!("redis://{host}:{port}/{REDIS_TEST_DB}");
    let mut con = redis::Client::open(url.as_str())
        .and_then(|client| client.get_connection_with_timeout(CONNECT_TIMEOUT))
        .unwrap_or_else(|e| {
            panic!(
                "cannot connect to Redis at {url}: {e}\n\
                 start the project databases with `scripts/db-up.sh` first"
            )
        });

    let key = format!("tt_test_db_seed_{}", std::process::id());
    // An expiry so that a failed run leaves nothing behind for long.
    let () = con.set_ex(&key, "hello", 60).expect("SET");
    let value: Option<String> = con.get(&key).expect("GET");
    assert_eq!(value.as_deref(), Some("hello"));
    let deleted: usize = con.del(&key).expect("DEL");
    assert_eq!(deleted, 1);
    let gone: Option<String> = con.get(&key).expect("GET after DEL");
    assert_eq!(gone, None);
}
