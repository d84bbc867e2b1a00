//! The model layer (storage-file.md §4): every SQL statement and every Redis command of
//! db_proxy_server, one module per model of the original. Handlers call these functions and
//! build protobuf replies from what they return.
//!
//! Every statement binds its values as parameters; only table-name suffixes (a number 0..7)
//! are formatted into SQL text.
//!
//! | original                                       | module       |
//! |------------------------------------------------|--------------|
//! | `UserModel`, `CSyncCenter` (user change time)  | [`user`]     |
//! | `DepartModel`                                  | [`depart`]   |
//! | `RelationModel`                                | [`relation`] |
//! | `SessionModel`                                 | [`session`]  |
//! | `MessageModel`, `GroupMessageModel`            | [`message`]  |
//! | group commit of messages (no original)         | [`batch`]    |
//! | `GroupModel` (groups, membership, push shield) | [`group`]    |
//! | `GroupModel` (create, membership changes)      | [`group_member`] |
//! | unread counters (§4.7)                         | [`unread`]   |
//! | device tokens (§5.16, §5.17)                   | [`token`]    |
//! | `AudioModel`                                   | [`audio`]    |
//! | `FileModel` (offline files)                    | [`transmit_file`] |

pub mod audio;
pub mod batch;
pub mod depart;
pub mod group;
pub mod group_member;
pub mod message;
pub mod relation;
pub mod session;
pub mod token;
pub mod transmit_file;
pub mod unread;
pub mod user;

/// Seconds since the Unix epoch, as the original's `time(NULL)` in a uint32 column.
pub fn now_secs() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX))
}

/// Most ids one query's `IN (…)` list carries; longer lists are queried in chunks or cut.
pub const MAX_IN_LIST: usize = 1000;

/// `?,?,…` with `n` placeholders.
fn placeholders(n: usize) -> String {
    let mut s = String::with_capacity(n * 2);
    for i in 0..n {
        if i > 0 {
            s.push(',');
        }
        s.push('?');
    }
    s
}
