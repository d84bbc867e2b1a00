//! Logged-in users of this msg_server: mirrors the original's `CImUser` and `CImUserManager`
//! (`server/src/msg_server/ImUser.cpp`).
//!
//! A user exists while at least one of its connections is logged in here; it is created at the
//! first successful login and dropped when its last connection closes, so the registry is tied to
//! connection lifetimes. Connections are kept in ascending handle order (handles only grow, so
//! that is also the order of login), which is the order every broadcast and kick walks.
//!
//! Differences from the original: there is no registry by login name. A login in progress is
//! tracked on its own connection (see `clients`), so a validate response can never be orphaned
//! by another connection of the same name closing (quirk §15.11).

use std::collections::BTreeMap;

use netlib::ConnId;
use tt_proto::pb::base_define::ClientType;

/// One logged-in connection of a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserConn {
    pub conn: ConnId,
    pub client_type: i32,
    /// The status the client asked for at login (1 online or 3 leave).
    pub online_status: i32,
}

/// `CImUser`: one user id logged in on this server.
#[derive(Debug, Clone)]
pub struct ImUser {
    pub user_id: u32,
    pub nick_name: Vec<u8>,
    /// PC presence anywhere, from route_server's login-status notify (initially 2, as the
    /// original).
    pub pc_login_status: u32,
    conns: BTreeMap<u32, UserConn>,
}

impl ImUser {
    fn new(user_id: u32) -> ImUser {
        ImUser {
            user_id,
            nick_name: Vec::new(),
            pc_login_status: 2,
            conns: BTreeMap::new(),
        }
    }

    /// The logged-in connections, by ascending handle.
    pub fn conns(&self) -> impl Iterator<Item = (u32, &UserConn)> + '_ {
        self.conns.iter().map(|(h, c)| (*h, c))
    }

    /// PC (`mobile == false`) or mobile connections, other than `except`.
    pub fn conn_ids_of_kind(&self, mobile: bool, except: Option<ConnId>) -> Vec<ConnId> {
        self.conns
            .values()
            .filter(|c| Some(c.conn) != except && ClientType::is_mobile(c.client_type) == mobile)
            .map(|c| c.conn)
            .collect()
    }

    /// The connections of the same kind as `client_type`, other than `except` (those a login
    /// of that type kicks).
    pub fn same_kind_conns(&self, client_type: i32, except: Option<ConnId>) -> Vec<ConnId> {
        self.conns
            .values()
            .filter(|c| Some(c.conn) != except && ClientType::same_kind(c.client_type, client_type))
            .map(|c| c.conn)
            .collect()
    }
}

/// `CImUserManager`: the users logged in here, by id (ascending, the order of the online-user
/// list sent to route_server).
#[derive(Debug, Default)]
pub struct ImUserManager {
    users: BTreeMap<u32, ImUser>,
}

impl ImUserManager {
    pub fn new() -> ImUserManager {
        ImUserManager::default()
    }

    pub fn get(&self, user_id: u32) -> Option<&ImUser> {
        self.users.get(&user_id)
    }

    /// Users logged in here.
    pub fn user_count(&self) -> usize {
        self.users.len()
    }

    /// Logged-in connections of every user.
    pub fn conn_count(&self) -> usize {
        self.users.values().map(|u| u.conns.len()).sum()
    }

    pub fn get_mut(&mut self, user_id: u32) -> Option<&mut ImUser> {
        self.users.get_mut(&user_id)
    }

    /// The user `user_id`, created (with no connection yet) if absent.
    pub fn get_or_create(&mut self, user_id: u32) -> &mut ImUser {
        self.users
            .entry(user_id)
            .or_insert_with(|| ImUser::new(user_id))
    }

    /// Registers a logged-in connection.
    pub fn add_conn(&mut self, user_id: u32, handle: u32, conn: UserConn) {
        self.get_or_create(user_id).conns.insert(handle, conn);
    }

    /// Forgets a connection; drops the user when it was the last one. True if it was there.
    pub fn remove_conn(&mut self, user_id: u32, handle: u32) -> bool {
        let Some(user) = self.users.get_mut(&user_id) else {
            return false;
        };
        let was = user.conns.remove(&handle).is_some();
        if user.conns.is_empty() {
            self.users.remove(&user_id);
        }
        was
    }

    /// The connection `handle` of user `user_id`, if it is logged in here (the original's
    /// `GetMsgConnByHandle`, used to route every reply).
    pub fn conn_by_handle(&self, user_id: u32, handle: u32) -> Option<ConnId> {
        self.users.get(&user_id)?.conns.get(&handle).map(|c| c.conn)
    }

    /// True if `user_id` has a logged-in connection here other than `except`.
    pub fn has_conn_other_than(&self, user_id: u32, except: Option<ConnId>) -> bool {
        self.users
            .get(&user_id)
            .is_some_and(|u| u.conns.values().any(|c| Some(c.conn) != except))
    }

    /// Every user, ascending id.
    pub fn users(&self) -> impl Iterator<Item = &ImUser> + '_ {
        self.users.values()
    }

    /// Logged-in connections over all users (reported to login_server).
    pub fn total_conns(&self) -> usize {
        self.users.values().map(|u| u.conns.len()).sum()
    }

    /// Every logged-in connection of a kind (PC or mobile, or both with `None`), users by
    /// ascending id, connections by ascending handle.
    pub fn all_conns(&self, mobile: Option<bool>) -> Vec<ConnId> {
        self.users
            .values()
            .flat_map(|u| u.conns.values())
            .filter(|c| mobile.is_none_or(|m| ClientType::is_mobile(c.client_type) == m))
            .map(|c| c.conn)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_lives_as_long_as_its_connections() {
        let mut users = ImUserManager::new();
        assert!(!users.remove_conn(5, 1));
        users.get_or_create(5);
        assert!(users.get(5).is_some());
        assert!(!users.remove_conn(5, 1), "a user without connections goes");
        assert!(users.get(5).is_none());
        assert_eq!(users.total_conns(), 0);
    }
}
