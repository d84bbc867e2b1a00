//! The `attach_data` byte layouts (protocol.md §9).
//!
//! msg_server stores "where the reply must go" in the `attach_data` field (number 20) of the
//! requests it sends to db_proxy, route_server and file_server; those peers echo the bytes
//! unchanged (they must treat them as opaque) and msg_server decodes them when the reply arrives.
//! All integers are unsigned 32-bit big-endian.
//!
//! * [`DbAttachData`] (`CDbAttachData`, 12 bytes): `type | handle | service_type`.
//! * [`PduAttachData`] (`CPduAttachData`, 16 + N bytes): `type | handle | service_type | N | N
//!   bytes`, the N bytes being a protobuf body (no PDU header) of another message.
//!
//! A 12-byte reader accepts the 16-byte form (it reads the first 12 bytes only). Decoding never
//! panics: truncated input is an [`AttachError`], which a server should treat as "originator
//! unknown" and drop that one reply (the original closed the whole server connection instead).
//! Bytes after the record are ignored, as by the original reader.
//!
//! The `handle` slot is opaque to every other server; the rewrite may store any unique connection
//! id there (a never-reused 32-bit id is recommended, §9.5).

use std::fmt;

/// Size of a [`DbAttachData`] record.
pub const DB_ATTACH_LEN: usize = 12;

/// Size of a [`PduAttachData`] record without its embedded body.
pub const PDU_ATTACH_HEADER_LEN: usize = 16;

/// msg_server: the reply goes to the client connection `handle` (12 bytes, or 16 with N = 0).
pub const ATTACH_TYPE_HANDLE: u32 = 1;
/// msg_server: declared by the original, unused.
pub const ATTACH_TYPE_PDU: u32 = 2;
/// msg_server: group-message fan-out; embedded `IMMsgData` body, `handle` = the sender's connection
/// (0 when the message came from route_server).
pub const ATTACH_TYPE_HANDLE_AND_PDU: u32 = 3;
/// msg_server: offline-push decision via route_server; `handle` 0, embedded `IMPushToUserReq`.
pub const ATTACH_TYPE_PDU_FOR_PUSH: u32 = 4;
/// msg_server: online/offline decision for a file transfer via route_server; embedded
/// `IMFileTransferReq`, `handle` = the requester's connection.
pub const ATTACH_TYPE_HANDLE_AND_PDU_FOR_FILE: u32 = 5;

/// http_msg_server's own numbering of the `type` field (same layouts, §9.3).
pub mod http {
    /// Declared by the original, unused.
    pub const ATTACH_TYPE_PDU_FOR_XIAOT: u32 = 1;
    /// Declared by the original, unused.
    pub const ATTACH_TYPE_PDU_FOR_INTERNAL: u32 = 2;
    /// 12-byte record whose `handle` is the HTTP connection id (a counter starting at 1).
    pub const ATTACH_TYPE_HANDLE: u32 = 3;
}

/// An attach record could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachError {
    /// The input ends before the record does.
    Truncated {
        /// Bytes the record needs (for a [`PduAttachData`], header plus announced N).
        needed: u64,
        /// Bytes available.
        available: usize,
    },
}

impl fmt::Display for AttachError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            AttachError::Truncated { needed, available } => write!(
                f,
                "truncated attach_data: record needs {needed} bytes, only {available} present"
            ),
        }
    }
}

impl std::error::Error for AttachError {}

/// The 12-byte `CDbAttachData` record, also the first 12 bytes of a [`PduAttachData`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct DbAttachData {
    /// Record type (`ATTACH_TYPE_*`).
    pub attach_type: u32,
    /// The originating connection (see the module docs).
    pub handle: u32,
    /// Always 0 in the original.
    pub service_type: u32,
}

impl DbAttachData {
    /// A record with `service_type` 0.
    pub const fn new(attach_type: u32, handle: u32) -> Self {
        DbAttachData {
            attach_type,
            handle,
            service_type: 0,
        }
    }

    /// The record's 12 wire bytes.
    pub fn to_bytes(&self) -> [u8; DB_ATTACH_LEN] {
        let mut b = [0; DB_ATTACH_LEN];
        b[0..4].copy_from_slice(&self.attach_type.to_be_bytes());
        b[4..8].copy_from_slice(&self.handle.to_be_bytes());
        b[8..12].copy_from_slice(&self.service_type.to_be_bytes());
        b
    }

    /// The record as a `Vec`, ready for an `attach_data` field.
    pub fn to_vec(&self) -> Vec<u8> {
        self.to_bytes().to_vec()
    }

    /// Reads the first 12 bytes of `bytes` (a 16 + N byte [`PduAttachData`] is accepted too).
    pub fn decode(bytes: &[u8]) -> Result<Self, AttachError> {
        let Some(b) = bytes.first_chunk::<DB_ATTACH_LEN>() else {
            return Err(AttachError::Truncated {
                needed: DB_ATTACH_LEN as u64,
                available: bytes.len(),
            });
        };
        Ok(DbAttachData {
            attach_type: be_u32(b, 0),
            handle: be_u32(b, 4),
            service_type: be_u32(b, 8),
        })
    }
}

/// The `CPduAttachData` record: a [`DbAttachData`] head, then a 32-bit length N and N bytes of an
/// embedded protobuf body.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct PduAttachData {
    /// Record type (`ATTACH_TYPE_*`).
    pub attach_type: u32,
    /// The originating connection (see the module docs).
    pub handle: u32,
    /// Always 0 in the original.
    pub service_type: u32,
    /// The embedded protobuf body (may be empty: the 16-byte form of `ATTACH_TYPE_HANDLE`).
    pub pdu: Vec<u8>,
}

impl PduAttachData {
    /// A record with `service_type` 0.
    pub fn new(attach_type: u32, handle: u32, pdu: Vec<u8>) -> Self {
        PduAttachData {
            attach_type,
            handle,
            service_type: 0,
            pdu,
        }
    }

    /// A record embedding the encoding of `msg`.
    pub fn from_msg<M: prost::Message>(attach_type: u32, handle: u32, msg: &M) -> Self {
        PduAttachData::new(attach_type, handle, msg.encode_to_vec())
    }

    /// The first 12 bytes of the record.
    pub fn head(&self) -> DbAttachData {
        DbAttachData {
            attach_type: self.attach_type,
            handle: self.handle,
            service_type: self.service_type,
        }
    }

    /// Number of bytes the record encodes to: `16 + pdu.len()`.
    pub fn encoded_len(&self) -> usize {
        PDU_ATTACH_HEADER_LEN + self.pdu.len()
    }

    /// Appends the record's wire bytes to `out`.
    ///
    /// # Panics
    /// If the embedded body is longer than `u32::MAX` bytes.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        encode_pdu_attach_into(out, &self.head(), &self.pdu);
    }

    /// The record's wire bytes, ready for an `attach_data` field.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.encode_into(&mut out);
        out
    }

    /// Decodes a record, copying the embedded body (see [`split_pdu_attach`] to borrow it).
    pub fn decode(bytes: &[u8]) -> Result<Self, AttachError> {
        let (head, pdu) = split_pdu_attach(bytes)?;
        Ok(PduAttachData {
            attach_type: head.attach_type,
            handle: head.handle,
            service_type: head.service_type,
            pdu: pdu.to_vec(),
        })
    }
}

/// Decodes a [`PduAttachData`] record without copying: its head and the embedded body, borrowed
/// from `bytes`. Fails if `bytes` is shorter than 16 bytes or than `16 + N`.
pub fn split_pdu_attach(bytes: &[u8]) -> Result<(DbAttachData, &[u8]), AttachError> {
    let Some(b) = bytes.first_chunk::<PDU_ATTACH_HEADER_LEN>() else {
        return Err(AttachError::Truncated {
            needed: PDU_ATTACH_HEADER_LEN as u64,
            available: bytes.len(),
        });
    };
    let head = DbAttachData {
        attach_type: be_u32(b, 0),
        handle: be_u32(b, 4),
        service_type: be_u32(b, 8),
    };
    let n = be_u32(b, 12);
    let rest = &bytes[PDU_ATTACH_HEADER_LEN..];
    match usize::try_from(n).ok().and_then(|n| rest.get(..n)) {
        Some(pdu) => Ok((head, pdu)),
        None => Err(AttachError::Truncated {
            needed: PDU_ATTACH_HEADER_LEN as u64 + u64::from(n),
            available: bytes.len(),
        }),
    }
}

/// Appends a [`PduAttachData`] record built from `head` and `pdu` to `out` without building the
/// struct first.
///
/// # Panics
/// If `pdu` is longer than `u32::MAX` bytes.
pub fn encode_pdu_attach_into(out: &mut Vec<u8>, head: &DbAttachData, pdu: &[u8]) {
    let n = u32::try_from(pdu.len()).expect("embedded attach body longer than u32::MAX bytes");
    out.reserve(PDU_ATTACH_HEADER_LEN + pdu.len());
    out.extend_from_slice(&head.to_bytes());
    out.extend_from_slice(&n.to_be_bytes());
    out.extend_from_slice(pdu);
}

fn be_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
