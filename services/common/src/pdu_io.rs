//! PDU connections over netlib: framing of received bytes, typed sending, heartbeats and idle
//! timeouts (the original's `CImConn`).
//!
//! Sending never spells out service and command ids: they come from the message type
//! ([`tt_proto::Command`]).
//!
//! | what                                   | function                       |
//! |----------------------------------------|--------------------------------|
//! | a command of this server               | [`send`] (seq given)           |
//! | the direct reply to a request          | [`reply`] (request's seq)      |
//! | a received PDU with a modified body    | [`relay`] (received header)    |
//! | a received PDU as it is                | [`send_raw`]                   |
//! | the same bytes to many connections     | [`encode`], [`encode_relay`], [`raw_bytes`], then [`send_bytes`] or [`send_all`] |
//!
//! Every PDU sent through these is counted by command in [`tt_metrics::PDUS_OUT`] (one
//! relaxed atomic add for the PDU and one for its bytes).

use std::time::Duration;

use netlib::{Buffer, ConnId, Net};
use tt_metrics::PDUS_OUT;
use tt_proto::Command;
use tt_proto::pb::other::ImHeartBeat;
use tt_proto::pdu::{
    FrameError, HEADER_LEN, Header, Pdu, encode_command_into, encode_with_header_into, peek_frame,
};

/// Server-to-server links: send a heartbeat when nothing was sent for more than this.
pub const SERVER_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(5);
/// Server-to-server links: close when nothing was received for more than this.
pub const SERVER_TIMEOUT: Duration = Duration::from_secs(30);
/// PC clients (msg_server), file_server clients, login_server binary clients.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(120);
/// Mobile clients (msg_server).
pub const MOBILE_CLIENT_TIMEOUT: Duration = Duration::from_secs(300);
/// How often every daemon checks its connections (the original's 1000 ms timers).
pub const TICK: Duration = Duration::from_secs(1);

/// What the PDU handler wants after one PDU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// Stop handling this connection's buffer (it was closed: quirk B3 fixed).
    Stop,
}

/// Hands every whole PDU at the front of `input` to `handle`, in arrival order, consuming each
/// after its handler ran. Stops early on [`Flow::Stop`]. A malformed length (under 16, over
/// `max_len`) is returned as an error: the caller closes the connection.
pub fn drain_pdus(
    input: &mut Buffer,
    max_len: u32,
    mut handle: impl FnMut(&Header, &[u8]) -> Flow,
) -> Result<(), FrameError> {
    while let Some(header) = peek_frame(input.data(), max_len)? {
        let len = header.length as usize;
        let flow = handle(&header, &input.data()[HEADER_LEN..len]);
        input.consume(len);
        if flow == Flow::Stop {
            break;
        }
    }
    Ok(())
}

/// Sends `msg` as a fresh PDU of its command (ids from its type), encoded straight into
/// `conn`'s output. False if the connection is gone.
pub fn send<M: Command>(net: &mut Net, conn: ConnId, seq_num: u16, msg: &M) -> bool {
    send_counted(net, conn, M::COMMAND_ID, |out| {
        encode_command_into(out, seq_num, msg)
    })
}

/// Appends one PDU of `command_id` to `conn`'s output with `fill`, counting it as sent.
#[inline]
fn send_counted(
    net: &mut Net,
    conn: ConnId,
    command_id: u16,
    fill: impl FnOnce(&mut Vec<u8>),
) -> bool {
    net.send_with(conn, |out| {
        let start = out.len();
        fill(out);
        PDUS_OUT.count(command_id, out.len() - start);
    })
}

/// Sends `msg` as the direct reply to `request`: a fresh header of `M`'s command carrying the
/// request's seq (protocol.md §2.3 rule 1).
pub fn reply<M: Command>(net: &mut Net, conn: ConnId, request: &Header, msg: &M) -> bool {
    let header = request.reply(M::COMMAND_ID);
    send_counted(net, conn, M::COMMAND_ID, |out| {
        encode_with_header_into(out, &header, msg)
    })
}

/// Sends `msg` under a received header (every field kept, the length recomputed): a request
/// or reply passed on with a modified body.
pub fn relay<M: prost::Message>(net: &mut Net, conn: ConnId, header: &Header, msg: &M) -> bool {
    send_counted(net, conn, header.command_id, |out| {
        encode_with_header_into(out, header, msg)
    })
}

/// Sends a received PDU as it is, every header byte kept.
pub fn send_raw(net: &mut Net, conn: ConnId, header: &Header, body: &[u8]) -> bool {
    send_counted(net, conn, header.command_id, |out| {
        out.extend_from_slice(&header.to_bytes());
        out.extend_from_slice(body);
    })
}

/// The wire bytes of a fresh PDU of `M`'s command (to send the same bytes to several
/// connections).
pub fn encode<M: Command>(seq_num: u16, msg: &M) -> Vec<u8> {
    let mut out = Vec::new();
    encode_command_into(&mut out, seq_num, msg);
    out
}

/// The wire bytes of `msg` under a given header.
pub fn encode_relay<M: prost::Message>(header: &Header, msg: &M) -> Vec<u8> {
    let mut out = Vec::new();
    encode_with_header_into(&mut out, header, msg);
    out
}

/// The wire bytes of a received PDU.
pub fn raw_bytes(header: &Header, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.extend_from_slice(&header.to_bytes());
    out.extend_from_slice(body);
    out
}

/// Sends the wire bytes of one whole PDU (from [`encode`], [`encode_relay`], [`raw_bytes`] or
/// a worker thread), counted by the command id in its header.
pub fn send_bytes(net: &mut Net, conn: ConnId, bytes: &[u8]) -> bool {
    let command_id = match bytes.get(10..12) {
        Some(&[hi, lo]) => u16::from_be_bytes([hi, lo]),
        _ => 0,
    };
    send_counted(net, conn, command_id, |out| out.extend_from_slice(bytes))
}

/// Sends the same bytes (one whole PDU) to each connection.
pub fn send_all(net: &mut Net, conns: &[ConnId], bytes: &[u8]) {
    for &c in conns {
        send_bytes(net, c, bytes);
    }
}

/// Sends a whole PDU as it is (relays keep every header byte).
pub fn send_pdu(net: &mut Net, conn: ConnId, pdu: &Pdu) -> bool {
    send_counted(net, conn, pdu.header.command_id, |out| pdu.encode_into(out))
}

/// Sends the empty `CID_OTHER_HEARTBEAT` (16 bytes, seq 0).
pub fn send_heartbeat(net: &mut Net, conn: ConnId) -> bool {
    send(net, conn, 0, &ImHeartBeat {})
}

/// Heartbeat and idle-timeout policy of one kind of connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeepAlive {
    /// Send a heartbeat when nothing was sent for more than this (None: never).
    pub heartbeat: Option<Duration>,
    /// Close when nothing was received for more than this.
    pub timeout: Duration,
}

/// What [`KeepAlive::check`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Liveness {
    Alive,
    HeartbeatSent,
    /// Nothing received for longer than the timeout: the connection was closed.
    TimedOut,
    /// Not an open connection.
    Gone,
}

impl KeepAlive {
    /// Server-to-server links: heartbeat after 5 s of send silence, close after 30 s of
    /// receive silence.
    pub const SERVER: KeepAlive = KeepAlive {
        heartbeat: Some(SERVER_HEARTBEAT_INTERVAL),
        timeout: SERVER_TIMEOUT,
    };

    /// Run from a 1 s timer for each connection: strict "greater than" comparisons, as the
    /// original. Closes a silent connection (its owner then gets `on_close`).
    pub fn check(&self, net: &mut Net, conn: ConnId) -> Liveness {
        let Some(activity) = net.activity(conn) else {
            return Liveness::Gone;
        };
        let now = net.now();
        if now.saturating_duration_since(activity.last_recv) > self.timeout {
            log::info!(
                "closing {:?} ({}): nothing received for {:?}",
                conn,
                peer_name(net, conn),
                self.timeout
            );
            net.close(conn);
            return Liveness::TimedOut;
        }
        if let Some(interval) = self.heartbeat
            && net.is_connected(conn)
            && now.saturating_duration_since(activity.last_send) > interval
        {
            send_heartbeat(net, conn);
            return Liveness::HeartbeatSent;
        }
        Liveness::Alive
    }
}

/// The peer's address for log lines ("?" when unknown).
pub fn peer_name(net: &Net, conn: ConnId) -> String {
    net.peer_addr(conn)
        .map_or_else(|| "?".to_string(), |a| a.to_string())
}

/// Decodes a body with the original's proto2 rules (required fields, declared enum values).
/// A failure is logged with the connection and the message name, and `None` returned: the
/// caller drops the PDU (or closes the connection, for an untrusted peer).
pub fn decode_or_log<M: tt_proto::Command>(net: &Net, conn: ConnId, body: &[u8]) -> Option<M> {
    match tt_proto::required::decode_checked::<M>(body) {
        Ok(m) => Some(m),
        Err(e) => {
            tt_metrics::dropped(tt_metrics::DropReason::ParseError);
            log::warn!(
                "{conn:?} ({}): bad {} body ({e})",
                peer_name(net, conn),
                M::NAME
            );
            None
        }
    }
}
