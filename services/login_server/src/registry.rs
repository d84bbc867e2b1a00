//! The msg_server registry (the original's `g_msg_serv_info`, §3.2) and the least-loaded
//! choice (§3.3).
//!
//! Entries are kept in registration order (the original iterated in socket-descriptor order,
//! which is close to connection order); a tie goes to the earliest registered entry. An entry
//! lives as long as the msg_server's connection, so the registry is bounded by the connections.

use netlib::ConnId;

/// What a msg_server reported about itself (`IMMsgServInfo`), plus its running count.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MsgServ {
    /// "Telecom" address (`ip1`), given to clients as `priorIP`.
    pub ip1: String,
    /// "Netcom" address (`ip2`), given to clients as `backupIP`.
    pub ip2: String,
    pub port: u16,
    pub max_conn_cnt: u32,
    pub cur_conn_cnt: u32,
    pub hostname: String,
}

/// Outcome of the choice.
#[derive(Debug, PartialEq, Eq)]
pub enum Pick<'a> {
    NoMsgServer,
    AllFull,
    Chosen(&'a MsgServ),
}

#[derive(Debug, Default)]
pub struct Registry {
    entries: Vec<(ConnId, MsgServ)>,
}

impl Registry {
    pub fn new() -> Registry {
        Registry::default()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Sum of the reported counts (only logged, as in the original).
    pub fn total(&self) -> u64 {
        self.entries
            .iter()
            .map(|(_, e)| u64::from(e.cur_conn_cnt))
            .sum()
    }

    /// Registers `conn`'s msg_server; a second report on the same connection replaces the
    /// first in place (keeping its rank). Returns true if it replaced one.
    pub fn set(&mut self, conn: ConnId, info: MsgServ) -> bool {
        match self.entries.iter_mut().find(|(c, _)| *c == conn) {
            Some((_, e)) => {
                *e = info;
                true
            }
            None => {
                self.entries.push((conn, info));
                false
            }
        }
    }

    pub fn get_mut(&mut self, conn: ConnId) -> Option<&mut MsgServ> {
        self.entries
            .iter_mut()
            .find(|(c, _)| *c == conn)
            .map(|(_, e)| e)
    }

    pub fn remove(&mut self, conn: ConnId) -> Option<MsgServ> {
        let pos = self.entries.iter().position(|(c, _)| *c == conn)?;
        Some(self.entries.remove(pos).1)
    }

    /// The entry with room (`cur < max`) and the smallest `cur`; the earliest on a tie.
    pub fn pick(&self) -> Pick<'_> {
        if self.entries.is_empty() {
            return Pick::NoMsgServer;
        }
        let mut best: Option<&MsgServ> = None;
        for (_, e) in &self.entries {
            if e.cur_conn_cnt < e.max_conn_cnt
                && best.is_none_or(|b| e.cur_conn_cnt < b.cur_conn_cnt)
            {
                best = Some(e);
            }
        }
        best.map_or(Pick::AllFull, Pick::Chosen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conns(n: usize) -> Vec<ConnId> {
        let mut ev = netlib::EventLoop::<()>::new(netlib::Config::default()).unwrap();
        let addr = "127.0.0.1:9".parse().unwrap();
        (0..n).map(|_| ev.net().connect(addr)).collect()
    }

    fn ms(port: u16, cur: u32, max: u32) -> MsgServ {
        MsgServ {
            ip1: "10.0.0.1".into(),
            ip2: "10.0.0.2".into(),
            port,
            max_conn_cnt: max,
            cur_conn_cnt: cur,
            hostname: "h".into(),
        }
    }

    #[test]
    fn least_loaded_with_room_earliest_on_tie() {
        let c = conns(3);
        let mut r = Registry::new();
        assert_eq!(r.pick(), Pick::NoMsgServer);
        r.set(c[0], ms(1, 5, 5));
        assert_eq!(r.pick(), Pick::AllFull);
        r.set(c[1], ms(2, 3, 10));
        r.set(c[2], ms(3, 3, 10));
        assert_eq!(r.pick(), Pick::Chosen(&ms(2, 3, 10)));
        r.get_mut(c[2]).unwrap().cur_conn_cnt = 2;
        assert_eq!(r.pick(), Pick::Chosen(&ms(3, 2, 10)));
        assert!(r.set(c[1], ms(2, 0, 10)), "replaces");
        assert_eq!(r.len(), 3);
        assert_eq!(r.total(), 7);
        assert_eq!(r.pick(), Pick::Chosen(&ms(2, 0, 10)));
        assert!(r.remove(c[1]).is_some());
        assert_eq!(r.pick(), Pick::Chosen(&ms(3, 2, 10)));
    }
}
