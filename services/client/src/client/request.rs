//! Request plumbing: sending commands and PDUs, and waiting for the reply that carries a
//! request's own `seq_num` while everything else goes to the event queue.

use std::io::Write;
use std::time::Instant;

use tt_proto::Pdu;
use tt_proto::ids::{Command, cid};

use super::Client;
use crate::discovery::is_timeout;
use crate::{Error, Result};

impl Client {
    /// Sends any command message with the next seq; returns the seq.
    pub fn send_command<M: Command>(&mut self, msg: &M) -> Result<u16> {
        let seq = self.alloc_seq();
        self.send_pdu(&Pdu::command(seq, msg))?;
        Ok(seq)
    }

    /// Sends a PDU exactly as given (its seq is not tracked).
    pub fn send_pdu(&mut self, pdu: &Pdu) -> Result<()> {
        if self.closed {
            return Err(Error::Closed);
        }
        let bytes = pdu.to_bytes();
        match self.stream.write_all(&bytes) {
            Ok(()) => {
                self.last_send = Instant::now();
                Ok(())
            }
            Err(e) => {
                log::debug!("write to {} failed: {e}", self.peer);
                self.mark_closed();
                Err(if is_timeout(&e) {
                    Error::Timeout("the server to read our data".into())
                } else {
                    Error::Io(e)
                })
            }
        }
    }

    /// Sends `req` with a fresh seq and waits for the reply of type `Rsp` carrying that seq;
    /// returns (seq, reply). Other PDUs arriving meanwhile are queued as events. The reply is
    /// decoded leniently (prost rules). `what` names the reply in a timeout error.
    pub fn request<Req: Command, Rsp: Command>(
        &mut self,
        req: &Req,
        what: &str,
    ) -> Result<(u16, Rsp)> {
        let seq = self.send_command(req)?;
        let pdu = self.wait_reply(seq, Rsp::COMMAND_ID, what)?;
        let rsp = pdu.decode_body::<Rsp>().map_err(|e| {
            Error::Protocol(format!(
                "cannot decode {} ({} bytes): {e}",
                cid_label(Rsp::COMMAND_ID),
                pdu.body.len()
            ))
        })?;
        Ok((seq, rsp))
    }

    /// Waits for the PDU with `command_id` and `seq`, queueing everything else.
    pub fn wait_reply(&mut self, seq: u16, command_id: u16, what: &str) -> Result<Pdu> {
        let deadline = Instant::now() + self.timeout;
        loop {
            match self.wait_pdu(deadline)? {
                Some(p) if p.header.command_id == command_id && p.header.seq_num == seq => {
                    return Ok(p);
                }
                Some(p) => {
                    self.dispatch(p);
                }
                None => {
                    self.abandon(seq, command_id);
                    return Err(Error::Timeout(format!(
                        "{what} ({}, seq {seq}) from {}",
                        cid_label(command_id),
                        self.peer
                    )));
                }
            }
        }
    }
}

pub(super) fn cid_label(command_id: u16) -> String {
    match cid::name(command_id) {
        Some(n) => n.to_string(),
        None => format!("command {command_id:#06x}"),
    }
}
