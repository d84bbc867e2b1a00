//! The command handlers, one module per family of commands, and the dispatch table built from
//! their tables and the forward table.
//!
//! | module | commands |
//! |---|---|
//! | [`login`] | login and validation, logout, kicks, device tokens |
//! | [`message`] | messages, acks, read acks, time |
//! | [`buddy`] | sessions, user status, avatar and signature, presence notices |
//! | [`group`] | group requests and their fallbacks, membership notices, group-message delivery |
//! | [`push`] | the push chain after a group message: shields, device tokens |
//! | [`file`](mod@file) | file transfer and offline files |
//! | [`switch`] | P2P commands |
//! | [`forwards`] | every request passed on to db_proxy or route_server, one row each |
//!
//! Each family module declares a [`Family`]: which of its functions handles each command id,
//! from clients (before and after the login), from db_proxy and from route_server. The family
//! modules do not use each other; what they share is in [`crate::state`].
//!
//! Adding a command: a plain forward (request → db_proxy → reply to the same client) is one
//! row of [`forwards`]; anything else is a function in its family module and a row of that
//! module's `FAMILY` (plus a `family(Request)`/`family(Reply)` row of [`forwards`] when the
//! command is a forward with a check, a fallback or a follow-up).

pub mod buddy;
pub mod file;
pub mod forwards;
pub mod group;
pub mod login;
pub mod message;
pub mod push;
pub mod switch;

use std::collections::HashMap;

use netlib::Net;

use crate::state::{ClientFn, Family, ServerFn, State, Target, rows};
use crate::wire::Received;
use forwards::{FORWARDS, Side};

/// Commands of the links themselves.
const LINKS: Family = Family {
    name: "links",
    db: rows! {
        CID_OTHER_STOP_RECV_PACKET  => stop_recv,
    },
    ..Family::EMPTY
};

/// `CID_OTHER_STOP_RECV_PACKET` from db_proxy: that link is no longer chosen.
fn stop_recv(s: &mut State, _: &mut Net, pdu: &Received<'_>) {
    s.links.db.stop_sending(pdu.conn);
}

const FAMILIES: &[&Family] = &[
    &login::FAMILY,
    &message::FAMILY,
    &buddy::FAMILY,
    &group::FAMILY,
    &file::FAMILY,
    &push::FAMILY,
    &switch::FAMILY,
    &LINKS,
];

/// Every command id → its handler, per kind of connection it arrives on.
#[derive(Default)]
pub struct Table {
    before_login: HashMap<u16, ClientFn>,
    client: HashMap<u16, ClientFn>,
    db: HashMap<u16, ServerFn>,
    route: HashMap<u16, ServerFn>,
    file: HashMap<u16, ServerFn>,
}

impl Table {
    /// Builds the table from the families and the forward table.
    ///
    /// # Panics
    /// If a command has two handlers, or a forward leaves a side to a family that does not
    /// handle it (a programming error, caught by this module's test).
    pub fn new() -> Table {
        let mut t = Table::default();
        for f in FAMILIES {
            add_all(&mut t.before_login, f.before_login, f.name);
            add_all(&mut t.client, f.client, f.name);
            add_all(&mut t.db, f.db, f.name);
            add_all(&mut t.route, f.route, f.name);
            add_all(&mut t.file, f.file, f.name);
        }
        for fwd in FORWARDS {
            let family = fwd
                .custom
                .and_then(|(name, _)| FAMILIES.iter().find(|f| f.name == name));
            let request = (fwd.request, fwd.forward, fwd.is_custom(Side::Request));
            add_side(&mut t.client, request, family.map(|f| f.client));
            let reply = (fwd.reply, fwd.route_back, fwd.is_custom(Side::Reply));
            match fwd.target {
                Target::Db(_) => add_side(&mut t.db, reply, family.map(|f| f.db)),
                Target::MasterRoute => add_side(&mut t.route, reply, family.map(|f| f.route)),
            }
        }
        t
    }

    /// The handler of a command a client may send before its login.
    pub fn before_login(&self, command_id: u16) -> Option<ClientFn> {
        self.before_login.get(&command_id).copied()
    }

    /// The handler of a command from a logged-in client.
    pub fn client(&self, command_id: u16) -> Option<ClientFn> {
        self.client.get(&command_id).copied()
    }

    /// The handler of a command from db_proxy.
    pub fn db(&self, command_id: u16) -> Option<ServerFn> {
        self.db.get(&command_id).copied()
    }

    /// The handler of a command from route_server.
    pub fn route(&self, command_id: u16) -> Option<ServerFn> {
        self.route.get(&command_id).copied()
    }

    /// The handler of a command from file_server.
    pub fn file(&self, command_id: u16) -> Option<ServerFn> {
        self.file.get(&command_id).copied()
    }
}

fn add_all<F: Copy>(map: &mut HashMap<u16, F>, rows: &[(u16, F)], owner: &str) {
    for &(command_id, f) in rows {
        add(map, command_id, f, owner);
    }
}

/// One side of a forward: its plain handler, or (when `custom`) a check that the family
/// module named by the forward registered its own.
fn add_side<F: Copy>(
    map: &mut HashMap<u16, F>,
    (command_id, plain, custom): (u16, F, bool),
    family: Option<&[(u16, F)]>,
) {
    if custom {
        let handled = family.is_some_and(|rows| rows.iter().any(|r| r.0 == command_id));
        assert!(
            handled,
            "{command_id:#06x} is left to a family that does not handle it"
        );
    } else {
        add(map, command_id, plain, "forwards");
    }
}

fn add<F>(map: &mut HashMap<u16, F>, command_id: u16, f: F, owner: &str) {
    let taken = map.insert(command_id, f).is_some();
    assert!(!taken, "{command_id:#06x} has a second handler in {owner}");
}

#[cfg(test)]
mod tests {
    use tt_proto::ids::cid;

    use super::*;

    #[test]
    fn every_command_has_one_handler() {
        let t = Table::new();
        assert!(t.before_login(cid::CID_LOGIN_REQ_USERLOGIN).is_some());
        assert!(t.client(cid::CID_LOGIN_REQ_USERLOGIN).is_none());
        // A plain forward: both sides from the forward table.
        assert!(t.client(cid::CID_MSG_UNREAD_CNT_REQUEST).is_some());
        assert!(t.db(cid::CID_MSG_UNREAD_CNT_RESPONSE).is_some());
        // A forward to route_server: its reply comes from route_server.
        assert!(t.client(cid::CID_BUDDY_LIST_USERS_STATUS_REQUEST).is_some());
        assert!(t.route(cid::CID_BUDDY_LIST_USERS_STATUS_RESPONSE).is_some());
        assert!(t.db(cid::CID_BUDDY_LIST_USERS_STATUS_RESPONSE).is_none());
        let clients = t.client.len() + t.before_login.len();
        assert_eq!(
            clients, 32,
            "client commands of spec §9.1 (heartbeat aside)"
        );
    }
}
