//! The msg_server connection: requests matched to replies by `seq_num`, notifications queued as
//! [`Event`]s.

use std::collections::VecDeque;
use std::io::{ErrorKind, Read};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use tt_proto::ids::cid;
use tt_proto::pb::base_define::{ClientType, UserInfo, UserStatType};
use tt_proto::pb::{login, other};
use tt_proto::pdu::DEFAULT_MAX_PDU_LEN;
use tt_proto::{Decoder, Pdu};

mod buddy_list;
mod events;
mod files;
mod groups;
mod messages;
mod push;
mod request;
mod session;

pub use buddy_list::{RecentSession, SessionRemoval, SignInfoChange};
pub use events::Event;
pub use files::{FileNotice, FileServerAddr, FileTask, OfflineFile, OfflineFiles};
pub use groups::{GroupCreated, GroupMembersChange};
pub use push::PushShield;
pub use session::{Message, SentAck, Session, UnreadCounts, UnreadSession};

use crate::crypto::{MsgCipher, password_md5};
use crate::discovery::{MsgServerAddr, is_timeout};
use crate::{Error, Result, text};
use request::cid_label;

/// How long a request waits for its reply (also the connect and write timeout).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The original clients send a heartbeat every 30 s; msg_server closes a PC client after 120 s
/// of silence.
pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(30);

/// Events kept for [`Client::next_event`] at most; past that the oldest is dropped (counted by
/// [`Client::dropped_events`]).
pub const DEFAULT_MAX_QUEUED_EVENTS: usize = 10_000;

/// Replies that arrive after their request timed out are recognised (and dropped) for this many
/// of the most recent abandoned requests.
const ABANDONED_KEEP: usize = 64;

const READ_CHUNK: usize = 16 * 1024;

/// What a successful login returned.
#[derive(Debug, Clone)]
pub struct LoginInfo {
    /// The logged-in user's id.
    pub user_id: u32,
    /// `IMLoginRes.server_time` (unix seconds).
    pub server_time: u32,
    /// The accepted online status (`UserStatType` value).
    pub online_status: i32,
    /// `result_string` ("成功" from the original db_proxy).
    pub result_string: String,
    /// The user's record.
    pub user_info: UserInfo,
}

/// A connection to msg_server.
pub struct Client {
    stream: TcpStream,
    peer: SocketAddr,
    decoder: Decoder,
    events: VecDeque<Event>,
    max_events: usize,
    dropped: u64,
    seq: u16,
    abandoned: VecDeque<(u16, u16)>,
    cipher: Option<MsgCipher>,
    timeout: Duration,
    heartbeat_interval: Option<Duration>,
    last_send: Instant,
    user_id: u32,
    closed: bool,
    closed_reported: bool,
    auto_ack: bool,
    chunk: Vec<u8>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("peer", &self.peer)
            .field("user_id", &self.user_id)
            .field("closed", &self.closed)
            .field("queued_events", &self.events.len())
            .finish()
    }
}

impl Client {
    // ----- discovery and connection -------------------------------------------------------

    /// Asks login_server (`http://host:port`) which msg_server to use ([`DEFAULT_TIMEOUT`]).
    pub fn discover(login_url: &str) -> Result<MsgServerAddr> {
        crate::discovery::discover(login_url, DEFAULT_TIMEOUT)
    }

    /// Like [`Client::discover`] with another timeout.
    pub fn discover_with_timeout(login_url: &str, timeout: Duration) -> Result<MsgServerAddr> {
        crate::discovery::discover(login_url, timeout)
    }

    /// Connects to the msg_server: `prior_ip` first, then `backup_ip`.
    pub fn connect(addr: &MsgServerAddr) -> Result<Client> {
        let mut last = None;
        for (ip, port) in addr.candidates() {
            match Client::connect_to((ip.as_str(), port)) {
                Ok(c) => return Ok(c),
                Err(e) => {
                    log::debug!("connecting to {ip}:{port} failed: {e}");
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| Error::Usage("no msg_server address".into())))
    }

    /// Connects to a msg_server at a socket address (`"127.0.0.1:8000"`, `(ip, port)`, ...).
    pub fn connect_to<A: ToSocketAddrs>(addr: A) -> Result<Client> {
        let mut last = None;
        for a in addr.to_socket_addrs()? {
            match TcpStream::connect_timeout(&a, DEFAULT_TIMEOUT) {
                Ok(s) => return Client::from_stream(s),
                Err(e) => last = Some(e),
            }
        }
        Err(match last {
            Some(e) => Error::Io(e),
            None => Error::Usage("the address resolves to nothing".into()),
        })
    }

    /// Wraps an already connected stream.
    pub fn from_stream(stream: TcpStream) -> Result<Client> {
        let peer = stream.peer_addr()?;
        stream.set_nodelay(true)?;
        stream.set_write_timeout(Some(DEFAULT_TIMEOUT))?;
        Ok(Client {
            stream,
            peer,
            decoder: Decoder::new(DEFAULT_MAX_PDU_LEN),
            events: VecDeque::new(),
            max_events: DEFAULT_MAX_QUEUED_EVENTS,
            dropped: 0,
            seq: 0,
            abandoned: VecDeque::new(),
            cipher: Some(MsgCipher::default()),
            timeout: DEFAULT_TIMEOUT,
            heartbeat_interval: Some(DEFAULT_HEARTBEAT_INTERVAL),
            last_send: Instant::now(),
            user_id: 0,
            closed: false,
            closed_reported: false,
            auto_ack: true,
            chunk: vec![0; READ_CHUNK],
        })
    }

    // ----- settings -----------------------------------------------------------------------

    /// How long requests wait for their reply (and writes may block). Default [`DEFAULT_TIMEOUT`].
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout.max(Duration::from_millis(1));
        let _ = self.stream.set_write_timeout(Some(self.timeout));
    }

    /// The message cipher: `Some` encrypts sent text and decrypts received text (default: the
    /// original key [`crate::DEFAULT_AES_KEY`]); `None` sends and shows text as plain bytes.
    pub fn set_cipher(&mut self, cipher: Option<MsgCipher>) {
        self.cipher = cipher;
    }

    /// Interval of the automatic heartbeat sent while [`Client::next_event`] or
    /// [`Client::keepalive`] run and nothing else was sent; `None` turns it off.
    pub fn set_heartbeat_interval(&mut self, interval: Option<Duration>) {
        self.heartbeat_interval = interval;
    }

    /// Whether received messages are acknowledged with `CID_MSG_DATA_ACK` as the original
    /// clients do (default true).
    pub fn set_auto_ack(&mut self, on: bool) {
        self.auto_ack = on;
    }

    /// Bound of the event queue (at least 1). Default [`DEFAULT_MAX_QUEUED_EVENTS`].
    pub fn set_max_queued_events(&mut self, max: usize) {
        self.max_events = max.max(1);
        while self.events.len() > self.max_events {
            self.events.pop_front();
            self.dropped += 1;
        }
    }

    // ----- state --------------------------------------------------------------------------

    /// Our user id (0 before a successful login).
    pub fn user_id(&self) -> u32 {
        self.user_id
    }

    /// The msg_server's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// The local address of the connection.
    pub fn local_addr(&self) -> Result<SocketAddr> {
        Ok(self.stream.local_addr()?)
    }

    /// True once the connection is closed (by the server, an error, or [`Client::logout`]).
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Events dropped because the queue was full.
    pub fn dropped_events(&self) -> u64 {
        self.dropped
    }

    /// Events waiting for [`Client::next_event`].
    pub fn queued_events(&self) -> usize {
        self.events.len()
    }

    /// The seq number the next request will use.
    pub fn peek_next_seq(&self) -> u16 {
        next_seq_after(self.seq)
    }

    // ----- login and logout ---------------------------------------------------------------

    /// Logs in with the plain password (sent as its lowercase hex MD5, like the original
    /// clients). On refusal: [`Error::Login`] with the original result code and text (the server
    /// then closes the connection).
    pub fn login(
        &mut self,
        user: &str,
        password: &str,
        client_type: ClientType,
        status: UserStatType,
    ) -> Result<LoginInfo> {
        self.login_hashed(user, &password_md5(password), client_type, status)
    }

    /// Logs in with the password already hashed (the string is sent as is).
    pub fn login_hashed(
        &mut self,
        user: &str,
        password_md5_hex: &str,
        client_type: ClientType,
        status: UserStatType,
    ) -> Result<LoginInfo> {
        let req = login::ImLoginReq {
            user_name: user.as_bytes().to_vec(),
            password: password_md5_hex.as_bytes().to_vec(),
            online_status: status as i32,
            client_type: client_type as i32,
            client_version: Some(concat!("tt-client/", env!("CARGO_PKG_VERSION")).into()),
        };
        let (_, res): (_, login::ImLoginRes) = self.request(&req, "login result")?;
        if res.result_code != 0 {
            return Err(Error::Login {
                code: res.result_code,
                text: text(res.result_string.as_deref().unwrap_or_default()),
            });
        }
        let user_info = res
            .user_info
            .ok_or_else(|| Error::Protocol("login succeeded without user_info".into()))?;
        self.user_id = user_info.user_id;
        Ok(LoginInfo {
            user_id: user_info.user_id,
            server_time: res.server_time,
            online_status: res.online_status.unwrap_or(status as i32),
            result_string: text(res.result_string.as_deref().unwrap_or_default()),
            user_info,
        })
    }

    /// Logs out: waits for `CID_LOGIN_RES_LOGINOUT` (result code returned), then closes.
    pub fn logout(&mut self) -> Result<u32> {
        let (_, rsp): (_, login::ImLogoutRsp) =
            self.request(&login::ImLogoutReq {}, "logout reply")?;
        self.close();
        Ok(rsp.result_code)
    }

    /// Closes the connection (no logout PDU). Later calls fail with [`Error::Closed`].
    pub fn close(&mut self) {
        if !self.closed {
            let _ = self.stream.shutdown(Shutdown::Both);
            self.closed = true;
            // A close we asked for is not an event.
            self.closed_reported = true;
        }
    }

    // ----- heartbeat and events -----------------------------------------------------------

    /// Sends a heartbeat and waits for msg_server's echo; returns the round-trip time.
    pub fn heartbeat(&mut self) -> Result<Duration> {
        let start = Instant::now();
        let (_, _): (_, other::ImHeartBeat) =
            self.request(&other::ImHeartBeat {}, "heartbeat echo")?;
        Ok(start.elapsed())
    }

    /// For long-running programs: sends a heartbeat if nothing was sent for the heartbeat
    /// interval, and takes whatever already arrived into the event queue. Never blocks on the
    /// network for longer than a write.
    pub fn keepalive(&mut self) -> Result<()> {
        if self.closed {
            return Err(Error::Closed);
        }
        self.heartbeat_if_due()?;
        while let Some(pdu) = self.wait_pdu(Instant::now())? {
            self.dispatch(pdu);
        }
        Ok(())
    }

    /// The next event, waiting up to `timeout` (`Duration::ZERO` only looks at what already
    /// arrived). `Ok(None)`: nothing within the time. After the server closed the connection,
    /// [`Event::Closed`] is returned once (after the events received before), then
    /// [`Error::Closed`]. Sends the automatic heartbeat while waiting.
    pub fn next_event(&mut self, timeout: Duration) -> Result<Option<Event>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(e) = self.events.pop_front() {
                return Ok(Some(e));
            }
            if self.closed {
                if !self.closed_reported {
                    self.closed_reported = true;
                    return Ok(Some(Event::Closed));
                }
                return Err(Error::Closed);
            }
            self.heartbeat_if_due()?;
            let wake = match (self.heartbeat_interval, self.closed) {
                (Some(i), false) => deadline.min(self.last_send + i),
                _ => deadline,
            };
            match self.wait_pdu(wake) {
                Ok(Some(pdu)) => {
                    self.dispatch(pdu);
                }
                Ok(None) => {
                    if Instant::now() >= deadline {
                        return Ok(None);
                    }
                }
                // Closed: loop round to report the queued events, then Closed.
                Err(Error::Closed) => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Waits up to `timeout` for an event that `pick` accepts; the events it skips stay queued
    /// in order. `Ok(None)` on timeout. Convenient in tests:
    /// `c.wait_for(t, |e| matches!(e, Event::Message(m) if m.msg_id == id))`.
    pub fn wait_for<F>(&mut self, timeout: Duration, mut pick: F) -> Result<Option<Event>>
    where
        F: FnMut(&Event) -> bool,
    {
        if let Some(i) = self.events.iter().position(&mut pick) {
            return Ok(self.events.remove(i));
        }
        let deadline = Instant::now() + timeout;
        loop {
            if self.closed {
                if !self.closed_reported && pick(&Event::Closed) {
                    self.closed_reported = true;
                    return Ok(Some(Event::Closed));
                }
                return Err(Error::Closed);
            }
            self.heartbeat_if_due()?;
            let wake = match self.heartbeat_interval {
                Some(i) => deadline.min(self.last_send + i),
                None => deadline,
            };
            match self.wait_pdu(wake) {
                Ok(Some(pdu)) => {
                    // A new event goes to the back; the ones before it were checked already.
                    if self.dispatch(pdu) && self.events.back().is_some_and(&mut pick) {
                        return Ok(self.events.pop_back());
                    }
                }
                Ok(None) => {
                    if Instant::now() >= deadline {
                        return Ok(None);
                    }
                }
                Err(Error::Closed) => {}
                Err(e) => return Err(e),
            }
        }
    }

    // ----- internals ----------------------------------------------------------------------

    fn alloc_seq(&mut self) -> u16 {
        self.seq = next_seq_after(self.seq);
        self.seq
    }

    fn abandon(&mut self, seq: u16, command_id: u16) {
        if self.abandoned.len() == ABANDONED_KEEP {
            self.abandoned.pop_front();
        }
        self.abandoned.push_back((seq, command_id));
    }

    fn heartbeat_if_due(&mut self) -> Result<()> {
        if let Some(i) = self.heartbeat_interval {
            if self.last_send.elapsed() >= i {
                log::debug!("sending heartbeat to {}", self.peer);
                self.send_command(&other::ImHeartBeat {})?;
            }
        }
        Ok(())
    }

    fn mark_closed(&mut self) {
        if !self.closed {
            let _ = self.stream.shutdown(Shutdown::Both);
            self.closed = true;
        }
    }

    /// The next whole PDU, reading until `deadline`. `Ok(None)` at the deadline (a deadline in
    /// the past still takes what the socket already holds); `Err(Closed)` when the connection
    /// is closed and no whole PDU is left.
    fn wait_pdu(&mut self, deadline: Instant) -> Result<Option<Pdu>> {
        loop {
            match self.decoder.next_pdu() {
                Ok(Some(p)) => return Ok(Some(p)),
                Ok(None) => {}
                Err(e) => {
                    log::warn!("closing the connection to {}: {e}", self.peer);
                    self.mark_closed();
                    return Err(Error::Protocol(e.to_string()));
                }
            }
            if self.closed {
                return Err(Error::Closed);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let got = if left < Duration::from_millis(1) {
                self.read_nonblocking()?
            } else {
                self.read_blocking(left)?
            };
            if !got && Instant::now() >= deadline {
                return Ok(None);
            }
        }
    }

    /// One read with a timeout; false if nothing arrived in time.
    fn read_blocking(&mut self, limit: Duration) -> Result<bool> {
        self.stream.set_read_timeout(Some(limit))?;
        let r = self.stream.read(&mut self.chunk);
        self.after_read(r)
    }

    /// One read that does not wait; false if nothing was there.
    fn read_nonblocking(&mut self) -> Result<bool> {
        self.stream.set_nonblocking(true)?;
        let r = self.stream.read(&mut self.chunk);
        self.stream.set_nonblocking(false)?;
        self.after_read(r)
    }

    fn after_read(&mut self, r: std::io::Result<usize>) -> Result<bool> {
        match r {
            Ok(0) => {
                log::debug!("{} closed the connection", self.peer);
                self.mark_closed();
                Ok(true)
            }
            Ok(n) => {
                self.decoder.push(&self.chunk[..n]);
                Ok(true)
            }
            Err(e) if is_timeout(&e) || e.kind() == ErrorKind::Interrupted => Ok(false),
            Err(e) => {
                log::debug!("read from {} failed: {e}", self.peer);
                self.mark_closed();
                Ok(true)
            }
        }
    }

    /// Turns an unsolicited PDU into an event (or drops it: heartbeat echoes, late replies).
    /// True if an event was queued.
    fn dispatch(&mut self, pdu: Pdu) -> bool {
        let h = pdu.header;
        if h.command_id == cid::CID_OTHER_HEARTBEAT {
            return false;
        }
        if let Some(i) = self
            .abandoned
            .iter()
            .position(|&(s, c)| s == h.seq_num && c == h.command_id)
        {
            self.abandoned.remove(i);
            log::debug!(
                "dropping late reply {} seq {}",
                cid_label(h.command_id),
                h.seq_num
            );
            return false;
        }
        let event = match self.decode_event(&pdu) {
            Ok(e) => e,
            Err(e) => {
                log::warn!(
                    "cannot decode {} from {}: {e}; kept as a raw event",
                    cid_label(h.command_id),
                    self.peer
                );
                Event::Other(pdu)
            }
        };
        if let Event::Message(m) = &event {
            if self.auto_ack && m.from != self.user_id {
                let m = m.clone();
                if let Err(e) = self.ack_delivery(&m) {
                    log::debug!("delivery ack failed: {e}");
                }
            }
        }
        if self.events.len() >= self.max_events {
            self.events.pop_front();
            self.dropped += 1;
            log::warn!(
                "event queue full ({} events): dropped the oldest",
                self.max_events
            );
        }
        self.events.push_back(event);
        true
    }
}

/// Seq numbers run 1, 2, …, 65535, 1, …: 0 is what servers put in PDUs they originate, so it is
/// never used for a request.
fn next_seq_after(seq: u16) -> u16 {
    match seq.wrapping_add(1) {
        0 => 1,
        n => n,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_wraps_and_skips_zero() {
        assert_eq!(next_seq_after(0), 1);
        assert_eq!(next_seq_after(1), 2);
        assert_eq!(next_seq_after(65534), 65535);
        assert_eq!(next_seq_after(65535), 1);
    }
    #[test]
    fn login_request_pdu_matches_the_spec_example() {
        // protocol.md §2.8 example 1.
        let req = login::ImLoginReq {
            user_name: b"a".to_vec(),
            password: b"b".to_vec(),
            online_status: UserStatType::UserStatusOnline as i32,
            client_type: ClientType::Windows as i32,
            client_version: None,
        };
        let bytes = Pdu::command(5, &req).to_bytes();
        let mut want = vec![
            0x00, 0x00, 0x00, 0x1a, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x01, 0x03, 0x00, 0x05,
            0x00, 0x00,
        ];
        want.extend_from_slice(&[0x0a, 0x01, 0x61, 0x12, 0x01, 0x62, 0x18, 0x01, 0x20, 0x01]);
        assert_eq!(bytes, want);
    }

    #[test]
    fn heartbeat_pdu_matches_the_spec_example() {
        let bytes = Pdu::command(0, &other::ImHeartBeat {}).to_bytes();
        assert_eq!(bytes, [0, 0, 0, 0x10, 0, 1, 0, 0, 0, 7, 7, 1, 0, 0, 0, 0]);
    }
}
