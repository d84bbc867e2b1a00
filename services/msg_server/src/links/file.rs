//! Links to file_server: the original's `CFileServConn` (`FileServConn.cpp`, spec §6.5).
//!
//! Every configured file_server (`FileServerIP<n>`/`FileServerPort<n>`) gets a link. On
//! connect msg_server asks for the addresses clients should use (`IMFileServerIPReq`); the
//! answer fills that connection's address list, which starts empty on every connection and
//! holds at most [`MAX_ADDRS`] entries. A transfer request goes to a link picked as the
//! original does: a random slot, else the next open one in circular order.

use netlib::{CloseReason, ConnId, Net};
use tt_common::{ServerLinks, pdu_io};
use tt_proto::Command;
use tt_proto::pb::base_define::IpAddr;
use tt_proto::pb::server::{ImFileServerIpReq, ImFileServerIpRsp};

use super::Rng;

/// Advertised addresses kept per connection; more are dropped with a log line.
pub const MAX_ADDRS: usize = 16;
/// Longest advertised address (bytes) kept; a longer one is dropped with a log line.
pub const MAX_ADDR_LEN: usize = 255;

pub struct FileLinks {
    pub(super) links: ServerLinks,
    /// Per slot: the addresses its file_server advertised on the current connection.
    addrs: Vec<Vec<IpAddr>>,
    rng: Rng,
}

impl FileLinks {
    pub fn new(targets: Vec<(String, u16)>) -> Result<FileLinks, String> {
        let addrs = vec![Vec::new(); targets.len()];
        Ok(FileLinks {
            links: ServerLinks::new("file_server", targets)?,
            addrs,
            rng: Rng::seeded(),
        })
    }

    /// A link is up: its address list starts empty and is asked for.
    pub fn connected(&mut self, net: &mut Net, conn: ConnId) {
        let Some(slot) = self.links.on_connect(conn, net.now()) else {
            return;
        };
        self.addrs[slot].clear();
        pdu_io::send(net, conn, 0, &ImFileServerIpReq {});
    }

    pub fn closed(&mut self, conn: ConnId, reason: CloseReason) {
        log::debug!("file_server link {conn:?} closed: {reason:?}");
        if let Some(slot) = self.links.on_close(conn) {
            self.addrs[slot].clear();
        }
    }

    /// `IMFileServerIPRsp`: its addresses are appended to the connection's list, up to
    /// [`MAX_ADDRS`] of at most [`MAX_ADDR_LEN`] bytes each.
    pub fn add_addrs(&mut self, conn: ConnId, rsp: ImFileServerIpRsp) {
        let Some(slot) = self.links.slot_of(conn) else {
            return;
        };
        let list = &mut self.addrs[slot];
        let mut dropped = 0;
        for a in rsp.ip_addr_list {
            if list.len() < MAX_ADDRS && a.ip.len() <= MAX_ADDR_LEN {
                list.push(a);
            } else {
                dropped += 1;
            }
        }
        if dropped > 0 {
            log::warn!(
                "file_server link {conn:?}: {dropped} advertised addresses dropped (at most \
                 {MAX_ADDRS} of at most {MAX_ADDR_LEN} bytes are kept)"
            );
        }
        let shown: Vec<String> = list
            .iter()
            .map(|a| format!("{}:{}", String::from_utf8_lossy(&a.ip), a.port))
            .collect();
        let target = &self.links.slots()[slot];
        log::info!(
            "addresses of file_server {}:{}: {}",
            target.host,
            target.port,
            shown.join(", ")
        );
    }

    /// The addresses advertised on `conn` (empty for a connection that is not a link).
    pub fn addrs(&self, conn: ConnId) -> &[IpAddr] {
        self.links
            .slot_of(conn)
            .map_or(&[], |slot| self.addrs[slot].as_slice())
    }

    /// A connected link: a random slot, else the next open one (§6.5).
    pub fn pick(&mut self) -> Option<ConnId> {
        if self.links.is_empty() {
            return None;
        }
        let seed = (self.rng.next_u64() % self.links.len() as u64) as usize;
        self.links.pick_open(seed)
    }

    /// Sends a command of this server (seq 0) to every connected file_server.
    pub fn send_all<M: Command>(&self, net: &mut Net, msg: &M) {
        let bytes = pdu_io::encode(0, msg);
        let conns: Vec<ConnId> = self.links.open_conns().collect();
        pdu_io::send_all(net, &conns, &bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_to_pick_without_links() {
        let mut links = FileLinks::new(Vec::new()).unwrap();
        assert_eq!(links.pick(), None);
        let mut one = FileLinks::new(vec![("127.0.0.1".into(), 1)]).unwrap();
        assert_eq!(one.pick(), None, "configured but not connected");
    }
}
