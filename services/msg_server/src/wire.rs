//! Wire helpers of msg_server, below everything else: the `attach_data` it puts in the requests
//! it forwards and reads back from their replies (spec msg_server.md §3), the `user_id` and
//! `attach_data` access of forwarded messages, received server PDUs, protocol timestamps.

use std::time::{SystemTime, UNIX_EPOCH};

use netlib::{ConnId, Net};
use tt_common::pdu_io;
use tt_proto::Command;
use tt_proto::attach::{ATTACH_TYPE_HANDLE, DbAttachData, PduAttachData};
use tt_proto::pdu::Header;

/// The `attach_data` put in a request sent on behalf of a client connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attach {
    /// No attach: no reply is expected.
    None,
    /// 12 bytes `{1, handle, 0}`.
    Short,
    /// 16 bytes `{1, handle, 0, 0}`.
    Long,
}

impl Attach {
    /// The bytes for client connection `handle`.
    pub fn data(self, handle: u32) -> Option<Vec<u8>> {
        match self {
            Attach::None => None,
            Attach::Short => Some(DbAttachData::new(ATTACH_TYPE_HANDLE, handle).to_vec()),
            Attach::Long => {
                Some(PduAttachData::new(ATTACH_TYPE_HANDLE, handle, Vec::new()).to_vec())
            }
        }
    }
}

/// The client handle in the `attach_data` of a reply or stored message (its first 12 bytes:
/// the short and the long form both qualify); a bad one is logged and the PDU is dropped.
pub fn handle_of(attach: Option<&[u8]>, command_id: u16) -> Option<u32> {
    match DbAttachData::decode(attach.unwrap_or_default()) {
        Ok(a) => Some(a.handle),
        Err(e) => {
            log::warn!("{command_id:#06x} with bad attach_data ({e}): dropped");
            None
        }
    }
}

/// A forwarded request or its reply: the requester's `user_id` and the `attach_data` that
/// routes the reply back to its connection.
pub trait Routed: Command {
    fn user_id(&self) -> u32;
    fn set_user_id(&mut self, id: u32);
    fn attach_mut(&mut self) -> &mut Option<Vec<u8>>;
}

/// One PDU received from a server link.
#[derive(Clone, Copy)]
pub struct Received<'a> {
    pub conn: ConnId,
    pub header: &'a Header,
    pub body: &'a [u8],
}

impl Received<'_> {
    /// The body, parsed with the original's proto2 rules; a failure is logged and the PDU is
    /// ignored (the link stays).
    pub fn parse<M: Command>(&self, net: &Net) -> Option<M> {
        pdu_io::decode_or_log(net, self.conn, self.body)
    }

    /// The PDU as received, every header byte kept (to pass it on to many connections).
    pub fn raw(&self) -> Vec<u8> {
        pdu_io::raw_bytes(self.header, self.body)
    }
}

/// Current Unix time in seconds (protocol timestamps).
pub fn unix_now() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attach_forms_carry_the_handle() {
        assert_eq!(Attach::None.data(7), None);
        let short = Attach::Short.data(7).unwrap();
        let long = Attach::Long.data(7).unwrap();
        assert_eq!(short, [0, 0, 0, 1, 0, 0, 0, 7, 0, 0, 0, 0]);
        assert_eq!(long.len(), 16);
        assert_eq!(long[..12], short[..]);
        assert_eq!(handle_of(Some(&short), 0), Some(7));
        assert_eq!(handle_of(Some(&long), 0), Some(7));
        assert_eq!(handle_of(None, 0), None);
    }
}
