//! PDU framing (protocol.md §2): the 16-byte big-endian header, incremental framing with a length
//! limit, and helpers that build headers the way the original servers do.
//!
//! Header rules (§2.2, §2.3), and the helper for each:
//!
//! | PDU | header | helper |
//! |---|---|---|
//! | created by a server on its own (notify, kick, internal request) | version 1, flag 0, reserved 0, seq 0 (or a seq carried over, §2.3 rules 3–5), service id of the command | [`Pdu::new`], [`Pdu::from_msg`], [`Pdu::command`], [`encode_msg_into`] |
//! | direct reply to a request | as above, with the request's `seq_num` | [`Pdu::reply_to`], [`Header::reply`] |
//! | relayed after re-encoding a modified body | every field of the received header kept, only `length` recomputed | [`Pdu::relay`], [`encode_with_header_into`] |
//! | relayed verbatim | every byte unchanged | forward the received [`Pdu`] as is |
//!
//! Servers must not validate `version`, `flag` or `reserved`, and dispatch on `command_id` alone.

use std::fmt;

use prost::{DecodeError, Message};

use crate::ids::{self, Command, cid, sid};
use crate::required::{self, BodyError};

/// Size of the PDU header in bytes.
pub const HEADER_LEN: usize = 16;

/// The `version` the original servers write in every PDU they create (`IM_PDU_VERSION`).
pub const PDU_VERSION: u16 = 1;

/// Default upper bound for a PDU's `length` (header included). The original has no limit; no
/// legitimate peer sends more (§2.5).
pub const DEFAULT_MAX_PDU_LEN: u32 = 16 * 1024 * 1024;

/// The 16-byte PDU header. All fields are big-endian on the wire, in declaration order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Header {
    /// Total PDU length in bytes, header included.
    pub length: u32,
    /// Protocol version; 1 in PDUs the servers create, anything from clients. Never checked.
    pub version: u16,
    /// Unused, never checked; 0 in PDUs the servers create.
    pub flag: u16,
    /// Service id ([`ids::sid`]); informational, not used for dispatch.
    pub service_id: u16,
    /// Command id ([`ids::cid`]); the only field used for dispatch.
    pub command_id: u16,
    /// Request/reply correlation number chosen by the requester.
    pub seq_num: u16,
    /// Unused (spelled `reversed` in the original), never checked; 0 in PDUs the servers create.
    pub reserved: u16,
}

impl Header {
    /// The header of a PDU a server creates itself: version 1, flag 0, reserved 0, and a `length`
    /// that covers the header only (the body-building helpers set the real length).
    pub const fn new(service_id: u16, command_id: u16, seq_num: u16) -> Header {
        Header {
            length: HEADER_LEN as u32,
            version: PDU_VERSION,
            flag: 0,
            service_id,
            command_id,
            seq_num,
            reserved: 0,
        }
    }

    /// Decodes a header from its 16 wire bytes. Never fails: every bit pattern is a header; the
    /// length is validated by [`peek_frame`].
    pub const fn parse(b: &[u8; HEADER_LEN]) -> Header {
        Header {
            length: u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            version: u16::from_be_bytes([b[4], b[5]]),
            flag: u16::from_be_bytes([b[6], b[7]]),
            service_id: u16::from_be_bytes([b[8], b[9]]),
            command_id: u16::from_be_bytes([b[10], b[11]]),
            seq_num: u16::from_be_bytes([b[12], b[13]]),
            reserved: u16::from_be_bytes([b[14], b[15]]),
        }
    }

    /// Writes the header's 16 wire bytes into `out`, exactly as the fields say.
    pub fn write_to(&self, out: &mut [u8; HEADER_LEN]) {
        out[0..4].copy_from_slice(&self.length.to_be_bytes());
        out[4..6].copy_from_slice(&self.version.to_be_bytes());
        out[6..8].copy_from_slice(&self.flag.to_be_bytes());
        out[8..10].copy_from_slice(&self.service_id.to_be_bytes());
        out[10..12].copy_from_slice(&self.command_id.to_be_bytes());
        out[12..14].copy_from_slice(&self.seq_num.to_be_bytes());
        out[14..16].copy_from_slice(&self.reserved.to_be_bytes());
    }

    /// The header's 16 wire bytes.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut b = [0; HEADER_LEN];
        self.write_to(&mut b);
        b
    }

    /// Body length announced by `length` (`length - 16`, or 0 if `length` is below 16).
    pub const fn body_len(&self) -> usize {
        (self.length as usize).saturating_sub(HEADER_LEN)
    }

    /// The header of a direct reply to this request (§2.2, §2.3 rule 1): a fresh header (version 1,
    /// flag 0, reserved 0, the service id of `command_id`) carrying this request's `seq_num`.
    pub const fn reply(&self, command_id: u16) -> Header {
        Header::new(ids::service_of(command_id), command_id, self.seq_num)
    }
}

/// Why a byte stream cannot be framed. The connection must be closed: the stream cannot be
/// resynchronised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// The header announces a `length` smaller than the header itself (0 included).
    TooShort(u32),
    /// The header announces a `length` above the configured limit.
    TooLong {
        /// The announced length.
        length: u32,
        /// The limit in force.
        max: u32,
    },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            FrameError::TooShort(length) => write!(
                f,
                "malformed PDU: length field is {length}, less than the {HEADER_LEN}-byte header"
            ),
            FrameError::TooLong { length, max } => write!(
                f,
                "PDU too large: length field is {length} bytes, the limit is {max} bytes"
            ),
        }
    }
}

impl std::error::Error for FrameError {}

/// Incremental framing over a byte buffer.
///
/// * `Ok(None)`: need more bytes (fewer than 16 buffered, or the PDU is not complete yet);
/// * `Ok(Some(header))`: a whole PDU of `header.length` bytes is at the front of `buf`
///   (take it with [`Pdu::from_frame`], then drop `header.length` bytes);
/// * `Err(_)`: the stream is malformed and the connection must be closed. A bad `length`
///   (below 16, or above `max_len`) is reported as soon as the 16 header bytes are there,
///   without waiting for the body.
pub fn peek_frame(buf: &[u8], max_len: u32) -> Result<Option<Header>, FrameError> {
    let Some(head) = buf.first_chunk::<HEADER_LEN>() else {
        return Ok(None);
    };
    let header = Header::parse(head);
    if header.length < HEADER_LEN as u32 {
        return Err(FrameError::TooShort(header.length));
    }
    if header.length > max_len {
        return Err(FrameError::TooLong {
            length: header.length,
            max: max_len,
        });
    }
    if buf.len() < header.length as usize {
        return Ok(None);
    }
    Ok(Some(header))
}

/// A whole PDU: header plus protobuf body.
///
/// When encoding, the `length` written is always `16 + body.len()`, whatever `header.length` says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pdu {
    /// The header; `length` matches the body for PDUs built by this crate.
    pub header: Header,
    /// The protobuf body (no length prefix).
    pub body: Vec<u8>,
}

impl Pdu {
    /// A PDU a server creates itself: version 1, flag 0, reserved 0, `length = 16 + body.len()`.
    ///
    /// # Panics
    /// If the body does not fit the 32-bit length field (more than `u32::MAX - 16` bytes).
    pub fn new(service_id: u16, command_id: u16, seq_num: u16, body: Vec<u8>) -> Pdu {
        Pdu::with_header(Header::new(service_id, command_id, seq_num), body)
    }

    /// Like [`Pdu::new`], with the body encoded from `msg`.
    pub fn from_msg<M: Message>(service_id: u16, command_id: u16, seq_num: u16, msg: &M) -> Pdu {
        Pdu::new(service_id, command_id, seq_num, msg.encode_to_vec())
    }

    /// Like [`Pdu::from_msg`], with the service and command ids taken from the message type.
    pub fn command<M: Command>(seq_num: u16, msg: &M) -> Pdu {
        Pdu::from_msg(M::SERVICE_ID, M::COMMAND_ID, seq_num, msg)
    }

    /// A direct reply to `request` (§2.2, §2.3 rule 1): a fresh header (version 1, flag 0,
    /// reserved 0, service id of `command_id`) carrying the request's `seq_num`. This is what
    /// login_server, msg_server, db_proxy, route_server and file_server do for their replies.
    pub fn reply_to<M: Message>(request: &Header, command_id: u16, msg: &M) -> Pdu {
        Pdu::with_header(request.reply(command_id), msg.encode_to_vec())
    }

    /// A received PDU re-encoded after its body was modified (§2.2; e.g. msg_server overwriting
    /// `user_id`/`attach_data` before forwarding): every field of `received` is kept (version,
    /// flag, service id, command id, seq, reserved), only `length` is recomputed.
    pub fn relay<M: Message>(received: &Header, msg: &M) -> Pdu {
        Pdu::with_header(*received, msg.encode_to_vec())
    }

    /// A PDU with the given header fields and body; `length` is set to `16 + body.len()`.
    ///
    /// # Panics
    /// If the body does not fit the 32-bit length field.
    pub fn with_header(header: Header, body: Vec<u8>) -> Pdu {
        let length = pdu_len(body.len());
        Pdu {
            header: Header { length, ..header },
            body,
        }
    }

    /// The heartbeat a server creates: `SID_OTHER`, `CID_OTHER_HEARTBEAT`, seq 0, empty body.
    /// (Heartbeats from peers that must be echoed are sent back verbatim instead.)
    pub fn heartbeat() -> Pdu {
        Pdu::new(sid::SID_OTHER, cid::CID_OTHER_HEARTBEAT, 0, Vec::new())
    }

    /// Decodes the body as `M` with prost's lenient semantics (missing required fields and
    /// unknown enum values are accepted). See [`Pdu::decode_checked`] for the original's rules.
    pub fn decode_body<M: Message + Default>(&self) -> Result<M, DecodeError> {
        M::decode(self.body.as_slice())
    }

    /// Decodes the body as `M` with the original's proto2 rules: also fails when a required field
    /// is missing or a required enum field holds an undeclared value (see [`required`]).
    pub fn decode_checked<M: Command>(&self) -> Result<M, BodyError> {
        required::decode_checked(&self.body)
    }

    /// Number of bytes [`Pdu::encode_into`] writes: `16 + body.len()`.
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN + self.body.len()
    }

    /// Appends the PDU's wire bytes to `out` (`length` computed from the body).
    ///
    /// # Panics
    /// If the body does not fit the 32-bit length field.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let header = Header {
            length: pdu_len(self.body.len()),
            ..self.header
        };
        out.reserve(self.encoded_len());
        out.extend_from_slice(&header.to_bytes());
        out.extend_from_slice(&self.body);
    }

    /// The PDU's wire bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.encode_into(&mut out);
        out
    }

    /// Copies one whole PDU from the front of `buf`, given the header [`peek_frame`] returned for
    /// that same buffer.
    ///
    /// # Panics
    /// If `buf` is shorter than `header.length` or `header.length` is below 16, i.e. if `header`
    /// did not come from a successful [`peek_frame`] on `buf`.
    pub fn from_frame(buf: &[u8], header: Header) -> Pdu {
        Pdu {
            header,
            body: buf[HEADER_LEN..header.length as usize].to_vec(),
        }
    }
}

/// An owning incremental decoder (for client code and tests; servers can use [`peek_frame`] on
/// their own buffers): push received bytes, pop whole PDUs.
///
/// Used as intended — call [`Decoder::next_pdu`] until it returns `Ok(None)` after each
/// [`Decoder::push`] — its buffer never holds more than one incomplete PDU (at most `max_len`
/// bytes) plus what was pushed in one call. After an error it stays failed: the buffer is
/// released, further pushes are ignored and `next_pdu` keeps returning the same error.
#[derive(Debug)]
pub struct Decoder {
    buf: Vec<u8>,
    /// Start of the unconsumed bytes in `buf`.
    start: usize,
    max_len: u32,
    error: Option<FrameError>,
}

/// Capacity above which an emptied decoder buffer is released rather than kept for reuse.
const KEEP_CAPACITY: usize = 64 * 1024;

impl Decoder {
    /// A decoder rejecting PDUs longer than `max_len` bytes (header included); see
    /// [`DEFAULT_MAX_PDU_LEN`]. A `max_len` below 16 rejects every PDU.
    pub fn new(max_len: u32) -> Self {
        Decoder {
            buf: Vec::new(),
            start: 0,
            max_len,
            error: None,
        }
    }

    /// Appends received bytes. Ignored once the decoder has failed.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.error.is_some() {
            return;
        }
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole PDU, `Ok(None)` if more bytes are needed, or the framing error (the
    /// connection must then be closed).
    pub fn next_pdu(&mut self) -> Result<Option<Pdu>, FrameError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let pending = &self.buf[self.start..];
        match peek_frame(pending, self.max_len) {
            Ok(Some(header)) => {
                let pdu = Pdu::from_frame(pending, header);
                self.start += header.length as usize;
                if self.start == self.buf.len() {
                    self.clear();
                }
                Ok(Some(pdu))
            }
            Ok(None) => Ok(None),
            Err(e) => {
                self.error = Some(e);
                self.buf = Vec::new();
                self.start = 0;
                Err(e)
            }
        }
    }

    /// Number of received bytes not yet returned as PDUs.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// The limit this decoder enforces.
    pub fn max_len(&self) -> u32 {
        self.max_len
    }

    /// The error that made this decoder fail, if any.
    pub fn error(&self) -> Option<FrameError> {
        self.error
    }

    fn clear(&mut self) {
        if self.buf.capacity() > KEEP_CAPACITY {
            self.buf = Vec::new();
        } else {
            self.buf.clear();
        }
        self.start = 0;
    }
}

impl Default for Decoder {
    /// A decoder with the [`DEFAULT_MAX_PDU_LEN`] limit.
    fn default() -> Self {
        Decoder::new(DEFAULT_MAX_PDU_LEN)
    }
}

/// Appends a fresh PDU (version 1, flag 0, reserved 0) with `msg` as body to `out`, encoding the
/// message in place (no intermediate body buffer).
///
/// # Panics
/// If the encoded message does not fit the 32-bit length field.
pub fn encode_msg_into<M: Message>(
    out: &mut Vec<u8>,
    service_id: u16,
    command_id: u16,
    seq_num: u16,
    msg: &M,
) {
    encode_with_header_into(out, &Header::new(service_id, command_id, seq_num), msg);
}

/// Like [`encode_msg_into`], with the service and command ids taken from the message type.
pub fn encode_command_into<M: Command>(out: &mut Vec<u8>, seq_num: u16, msg: &M) {
    encode_msg_into(out, M::SERVICE_ID, M::COMMAND_ID, seq_num, msg);
}

/// Appends a PDU with the fields of `header` (except `length`, computed from the message) and
/// `msg` as body to `out`, encoding in place. With a received header this is the in-place form of
/// [`Pdu::relay`]; with [`Header::reply`] that of [`Pdu::reply_to`].
///
/// # Panics
/// If the encoded message does not fit the 32-bit length field.
pub fn encode_with_header_into<M: Message>(out: &mut Vec<u8>, header: &Header, msg: &M) {
    let body_len = msg.encoded_len();
    let header = Header {
        length: pdu_len(body_len),
        ..*header
    };
    out.reserve(HEADER_LEN + body_len);
    out.extend_from_slice(&header.to_bytes());
    // A Vec grows as needed, so prost's capacity check cannot fail.
    msg.encode(out)
        .expect("encoding into a Vec<u8> cannot run out of capacity");
}

/// `16 + body_len` as the 32-bit wire length.
fn pdu_len(body_len: usize) -> u32 {
    u32::try_from(body_len)
        .ok()
        .and_then(|n| n.checked_add(HEADER_LEN as u32))
        .unwrap_or_else(|| {
            panic!("PDU body of {body_len} bytes does not fit the 32-bit length field")
        })
}
