//! Outgoing server-to-server links with the original's reconnect back-off (`serv_info`,
//! `serv_init`, `serv_check_reconnect`, `serv_reset`).
//!
//! Each configured target (`XxxServerIP<n>` / `XxxServerPort<n>`) is a slot holding at most one
//! connection. Cadence, as in the original: connect at start; after a failure or a disconnect
//! the next attempt comes 4 ticks (seconds) later; consecutive failures wait 4, 8, 16, 32, 64,
//! then wrap to 4; a successful connect resets the sequence.
//!
//! Differences: a connect that fails at once backs off like any other failure (the original
//! kept the slot dead until restart, quirk B4), and every connect has netlib's connect timeout.
//! Host names are resolved once, when the links are built at start-up (an unresolvable name is
//! a start-up error): the loop never waits on the system resolver, where the original resolved
//! (blocking) at every reconnect.
//!
//! Keep-alive of the open links is the PDU-service adapter's job ([`crate::service`]), as for
//! every other connection.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Instant;

use netlib::{ConnId, Net};

use crate::conf::{Conf, ConfError};

/// Back-off bounds, in ticks (`MIN_RECONNECT_CNT` / `MAX_RECONNECT_CNT`).
pub const MIN_RECONNECT_CNT: u32 = 4;
pub const MAX_RECONNECT_CNT: u32 = 64;

/// One configured target.
#[derive(Debug, Clone)]
pub struct Slot {
    pub host: String,
    pub port: u16,
    /// `host` resolved at start-up.
    pub addr: SocketAddr,
    conn: Option<ConnId>,
    /// Connected (confirmed) since this instant.
    open_since: Option<Instant>,
    idle_cnt: u32,
    reconnect_cnt: u32,
}

impl Slot {
    /// The connection, connected or still connecting.
    pub fn conn(&self) -> Option<ConnId> {
        self.conn
    }

    /// The connection, once confirmed.
    pub fn open_conn(&self) -> Option<ConnId> {
        self.open_since.and(self.conn)
    }
}

/// The links from this daemon to every configured server of one kind.
#[derive(Debug, Clone)]
pub struct ServerLinks {
    kind: &'static str,
    slots: Vec<Slot>,
}

impl ServerLinks {
    /// `kind` names the target in log lines ("db_proxy_server", "route_server", …). Every
    /// target is resolved here, once; an unresolvable one is an error.
    pub fn new(kind: &'static str, targets: Vec<(String, u16)>) -> Result<ServerLinks, String> {
        let mut slots = Vec::with_capacity(targets.len());
        for (host, port) in targets {
            let addr = resolve(&host, port)
                .ok_or_else(|| format!("cannot resolve the {kind} address {host}:{port}"))?;
            slots.push(Slot {
                host,
                port,
                addr,
                conn: None,
                open_since: None,
                idle_cnt: 0,
                reconnect_cnt: MIN_RECONNECT_CNT / 2,
            });
        }
        Ok(ServerLinks { kind, slots })
    }

    /// The targets listed as `<ip_prefix>1`/`<port_prefix>1`, `…2`, … in `conf`.
    pub fn from_conf(
        conf: &Conf,
        kind: &'static str,
        ip_prefix: &str,
        port_prefix: &str,
    ) -> Result<ServerLinks, ConfError> {
        let targets = conf.server_list(ip_prefix, port_prefix)?;
        ServerLinks::new(kind, targets.clone()).map_err(|_| {
            let i = targets
                .iter()
                .position(|(h, p)| resolve(h, *p).is_none())
                .unwrap_or(0);
            let key = format!("{ip_prefix}{}", i + 1);
            conf.invalid(&key, &targets[i].0, "a resolvable host")
        })
    }

    pub fn kind(&self) -> &'static str {
        self.kind
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    pub fn slots(&self) -> &[Slot] {
        &self.slots
    }

    /// Connects every slot (`serv_init`).
    pub fn start(&mut self, net: &mut Net) {
        for i in 0..self.slots.len() {
            self.slots[i].idle_cnt = 0;
            self.slots[i].reconnect_cnt = MIN_RECONNECT_CNT / 2;
            self.connect(net, i);
        }
    }

    /// Once per tick (1 s): a reconnect for every empty slot whose back-off has passed
    /// (`serv_check_reconnect`).
    pub fn tick(&mut self, net: &mut Net) {
        for i in 0..self.slots.len() {
            let slot = &mut self.slots[i];
            if slot.conn.is_none() {
                slot.idle_cnt += 1;
                if slot.idle_cnt >= slot.reconnect_cnt {
                    self.connect(net, i);
                }
            }
        }
    }

    /// The slot that `conn` belongs to, if any.
    pub fn slot_of(&self, conn: ConnId) -> Option<usize> {
        self.slots.iter().position(|s| s.conn == Some(conn))
    }

    /// `conn` (one of ours) is connected: resets its back-off. Returns its slot.
    pub fn on_connect(&mut self, conn: ConnId, now: Instant) -> Option<usize> {
        let i = self.slot_of(conn)?;
        let slot = &mut self.slots[i];
        slot.open_since = Some(now);
        slot.reconnect_cnt = MIN_RECONNECT_CNT / 2;
        log::info!("connected to {} {}:{}", self.kind, slot.host, slot.port);
        Some(i)
    }

    /// `conn` (one of ours) is gone: empties its slot and doubles its back-off (`serv_reset`).
    /// Returns its slot.
    pub fn on_close(&mut self, conn: ConnId) -> Option<usize> {
        let i = self.slot_of(conn)?;
        self.reset(i);
        Some(i)
    }

    /// True if any link is connected.
    pub fn any_open(&self) -> bool {
        self.slots.iter().any(|s| s.open_since.is_some())
    }

    /// Every connected link.
    pub fn open_conns(&self) -> impl Iterator<Item = ConnId> + '_ {
        self.slots.iter().filter_map(Slot::open_conn)
    }

    /// The link connected the longest (msg_server's master route_server).
    pub fn oldest_open(&self) -> Option<ConnId> {
        self.slots
            .iter()
            .filter_map(|s| Some((s.open_since?, s.conn?)))
            .min_by_key(|(since, _)| *since)
            .map(|(_, conn)| conn)
    }

    /// A connected link chosen from `seed` (random start, then the next open one in circular
    /// order, as the original picks among file_server and db_proxy links).
    pub fn pick_open(&self, seed: usize) -> Option<ConnId> {
        let n = self.slots.len();
        (0..n)
            .map(|k| &self.slots[(seed + k) % n])
            .find_map(Slot::open_conn)
    }

    fn connect(&mut self, net: &mut Net, i: usize) {
        let slot = &mut self.slots[i];
        slot.conn = Some(net.connect(slot.addr));
        slot.open_since = None;
    }

    fn reset(&mut self, i: usize) {
        let slot = &mut self.slots[i];
        if slot.open_since.is_some() {
            log::warn!("lost the link to {} {}:{}", self.kind, slot.host, slot.port);
        }
        slot.conn = None;
        slot.open_since = None;
        slot.idle_cnt = 0;
        slot.reconnect_cnt *= 2;
        if slot.reconnect_cnt > MAX_RECONNECT_CNT {
            slot.reconnect_cnt = MIN_RECONNECT_CNT;
        }
    }
}

/// A conf address: dotted IPv4 first, else the system resolver (first IPv4 address, else the
/// first address).
pub fn resolve(host: &str, port: u16) -> Option<SocketAddr> {
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Some(SocketAddr::new(ip, port));
    }
    let addrs: Vec<SocketAddr> = (host, port).to_socket_addrs().ok()?.collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_off_doubles_then_wraps() {
        let mut links = ServerLinks::new("x", vec![("127.0.0.1".into(), 1)]).unwrap();
        let mut seen = Vec::new();
        for _ in 0..6 {
            links.reset(0);
            seen.push(links.slots[0].reconnect_cnt);
        }
        assert_eq!(seen, vec![4, 8, 16, 32, 64, 4]);
    }

    #[test]
    fn resolves_literals_and_names() {
        assert_eq!(
            resolve("127.0.0.1", 80),
            Some("127.0.0.1:80".parse().unwrap())
        );
        assert!(resolve("localhost", 80).is_some());
        assert_eq!(resolve("no such host.invalid", 80), None);
    }

    #[test]
    fn unresolvable_targets_are_refused_at_start_up() {
        let e = ServerLinks::new("x", vec![("no such host.invalid".into(), 1)]).unwrap_err();
        assert!(e.contains("no such host.invalid:1"), "{e}");
        let conf = Conf::parse(
            "DBServerIP1=127.0.0.1\nDBServerPort1=1\nDBServerIP2=no such host.invalid\nDBServerPort2=2\n",
            "msgserver.conf",
        );
        let e = ServerLinks::from_conf(&conf, "x", "DBServerIP", "DBServerPort").unwrap_err();
        assert!(e.to_string().contains("`DBServerIP2`"), "{e}");
    }
}
