//! A blocking TeamTalk client: discovery through login_server, login to msg_server, messages,
//! lists and notifications — the library behind `tt-cli` and the integration tests.
//!
//! std networking only (a `TcpStream` with read timeouts), no threads, no async:
//!
//! ```no_run
//! use std::time::Duration;
//! use tt_client::{Client, ClientType, Event, UserStatType};
//!
//! let addr = Client::discover("http://127.0.0.1:8080")?;
//! let mut c = Client::connect(&addr)?;
//! let me = c.login("user1", "123456", ClientType::Windows, UserStatType::UserStatusOnline)?;
//! let ack = c.send_text(2, "hello")?;
//! println!("stored as {}", ack.msg_id);
//! while let Some(ev) = c.next_event(Duration::from_secs(5))? {
//!     if let Event::Message(m) = ev {
//!         println!("{} says {:?}", m.from, m.text);
//!     }
//! }
//! # let _ = me;
//! # Ok::<(), tt_client::Error>(())
//! ```
//!
//! Requests wait for the reply carrying their own `seq_num` (protocol.md §2.3); everything that
//! arrives meanwhile is kept, in order, in a bounded queue that [`Client::next_event`] returns.

mod client;
/// Message-content encryption and password hashing (shared with the servers, in `tt_proto`).
pub use tt_proto::crypto;
pub mod discovery;
pub mod file_transfer;
pub mod msfs;

use std::fmt;

pub use client::{
    Client, DEFAULT_HEARTBEAT_INTERVAL, DEFAULT_MAX_QUEUED_EVENTS, DEFAULT_TIMEOUT, Event,
    FileNotice, FileServerAddr, FileTask, GroupCreated, GroupMembersChange, LoginInfo, Message,
    OfflineFile, OfflineFiles, PushShield, RecentSession, SentAck, Session, SessionRemoval,
    SignInfoChange, UnreadCounts, UnreadSession,
};
pub use crypto::{CryptoError, DEFAULT_AES_KEY, KeyLengthError, MsgCipher, password_md5};
pub use discovery::MsgServerAddr;
pub use tt_proto;
pub use tt_proto::pb::base_define::{
    ClientType, DepartInfo, GroupInfo, GroupModifyType, GroupType, GroupVersionInfo, MsgType,
    SessionType, UserInfo, UserStat, UserStatType,
};

/// Everything that can go wrong talking to the servers.
#[derive(Debug)]
pub enum Error {
    /// A socket error (connect refused, reset, ...).
    Io(std::io::Error),
    /// A bad argument (URL, address, key).
    Usage(String),
    /// login_server could not be asked, or its reply made no sense.
    Discovery(String),
    /// login_server answered code 1: no msg_server is registered (its `msg` text).
    NoMsgServer(String),
    /// login_server answered code 2: every msg_server is full (its `msg` text).
    MsgServersFull(String),
    /// msg_server refused the login: `IMLoginRes.result_code` (a `ResultType`, e.g. 6 for a
    /// wrong password) and `result_string` as sent.
    Login {
        /// The original result code.
        code: i32,
        /// The server's text (Chinese in the original).
        text: String,
    },
    /// No reply within the client's timeout (what was awaited).
    Timeout(String),
    /// The server closed the connection (or it was closed after an error or a logout).
    Closed,
    /// The server sent something that cannot be framed or decoded.
    Protocol(String),
    /// Message text could not be encrypted.
    Crypto(CryptoError),
    /// A file transfer through file_server failed: a refused login, the peer's cancel or
    /// refusal, a close before the end.
    Transfer(String),
}

impl Error {
    /// The original result code of a refused login or discovery, if that is what this is.
    pub fn result_code(&self) -> Option<i32> {
        match self {
            Error::Login { code, .. } => Some(*code),
            Error::NoMsgServer(_) => Some(1),
            Error::MsgServersFull(_) => Some(2),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => write!(f, "i/o error: {e}"),
            Error::Usage(s) => write!(f, "{s}"),
            Error::Discovery(s) => write!(f, "discovery failed: {s}"),
            Error::NoMsgServer(m) => write!(f, "login_server has no msg_server (code 1: {m})"),
            Error::MsgServersFull(m) => {
                write!(f, "all msg_servers are full (code 2: {m})")
            }
            Error::Login { code, text } => {
                let name = ResultName(*code);
                write!(f, "login refused: code {code} ({name}): {text}")
            }
            Error::Timeout(what) => write!(f, "timed out waiting for {what}"),
            Error::Closed => f.write_str("connection closed"),
            Error::Protocol(s) => write!(f, "protocol error: {s}"),
            Error::Crypto(e) => write!(f, "message encryption failed: {e}"),
            Error::Transfer(s) => write!(f, "file transfer failed: {s}"),
        }
    }
}

struct ResultName(i32);

impl fmt::Display for ResultName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match tt_proto::pb::base_define::ResultType::try_from(self.0) {
            Ok(r) => f.write_str(r.as_str_name()),
            Err(_) => f.write_str("unknown"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            Error::Crypto(e) => Some(e),
            _ => None,
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e)
    }
}

impl From<CryptoError> for Error {
    fn from(e: CryptoError) -> Self {
        Error::Crypto(e)
    }
}

/// Result of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Protobuf `string` fields are bytes in `tt_proto`; this shows them as text (lossy UTF-8).
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
