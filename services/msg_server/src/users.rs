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
use std::slice;

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

/// The logged-in connections of a user by ascending handle: the usual one inline (no
/// allocation), more in a vector.
#[derive(Debug, Clone, Default)]
enum ConnList {
    #[default]
    None,
    One((u32, UserConn)),
    Many(Vec<(u32, UserConn)>),
}

impl ConnList {
    fn as_slice(&self) -> &[(u32, UserConn)] {
        match self {
            ConnList::None => &[],
            ConnList::One(entry) => slice::from_ref(entry),
            ConnList::Many(v) => v,
        }
    }

    fn values(&self) -> impl Iterator<Item = &UserConn> + '_ {
        self.as_slice().iter().map(|(_, c)| c)
    }

    fn get(&self, handle: u32) -> Option<&UserConn> {
        let list = self.as_slice();
        list.binary_search_by_key(&handle, |e| e.0)
            .ok()
            .map(|i| &list[i].1)
    }

    /// Adds or replaces the connection of `handle`.
    fn insert(&mut self, handle: u32, conn: UserConn) {
        match self {
            ConnList::None => *self = ConnList::One((handle, conn)),
            ConnList::One(entry) if entry.0 == handle => entry.1 = conn,
            ConnList::One(entry) => {
                let mut v = Vec::with_capacity(2);
                v.push(*entry);
                let at = usize::from(handle > entry.0);
                v.insert(at, (handle, conn));
                *self = ConnList::Many(v);
            }
            ConnList::Many(v) => match v.binary_search_by_key(&handle, |e| e.0) {
                Ok(i) => v[i].1 = conn,
                Err(i) => v.insert(i, (handle, conn)),
            },
        }
    }

    /// Removes the connection of `handle`; true if it was there.
    fn remove(&mut self, handle: u32) -> bool {
        match self {
            ConnList::One(entry) if entry.0 == handle => {
                *self = ConnList::None;
                true
            }
            ConnList::Many(v) => match v.binary_search_by_key(&handle, |e| e.0) {
                Ok(i) => {
                    v.remove(i);
                    if v.len() == 1 {
                        *self = ConnList::One(v[0]);
                    }
                    true
                }
                Err(_) => false,
            },
            _ => false,
        }
    }

    fn len(&self) -> usize {
        self.as_slice().len()
    }

    fn is_empty(&self) -> bool {
        matches!(self, ConnList::None)
    }
}

/// `CImUser`: one user id logged in on this server.
#[derive(Debug, Clone)]
pub struct ImUser {
    pub user_id: u32,
    /// PC presence anywhere, from route_server's login-status notify (initially 2, as the
    /// original).
    pub pc_login_status: u32,
    pub nick_name: Box<[u8]>,
    conns: ConnList,
}

impl ImUser {
    fn new(user_id: u32) -> ImUser {
        ImUser {
            user_id,
            pc_login_status: 2,
            nick_name: Box::default(),
            conns: ConnList::None,
        }
    }

    /// The logged-in connections, by ascending handle.
    pub fn conns(&self) -> impl Iterator<Item = (u32, &UserConn)> + '_ {
        self.conns.as_slice().iter().map(|(h, c)| (*h, c))
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
        let was = user.conns.remove(handle);
        if user.conns.is_empty() {
            self.users.remove(&user_id);
        }
        was
    }

    /// The connection `handle` of user `user_id`, if it is logged in here (the original's
    /// `GetMsgConnByHandle`, used to route every reply).
    pub fn conn_by_handle(&self, user_id: u32, handle: u32) -> Option<ConnId> {
        self.users.get(&user_id)?.conns.get(handle).map(|c| c.conn)
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
pub(crate) mod tests {
    use super::*;

    /// Distinct connection ids (of connects to a closed port: never used as connections).
    pub(crate) fn conn_ids(n: usize) -> Vec<ConnId> {
        let mut ev = netlib::EventLoop::<()>::new(netlib::Config::default()).unwrap();
        let dead = "127.0.0.1:1".parse().unwrap();
        (0..n).map(|_| ev.net().connect(dead)).collect()
    }

    fn conn(id: ConnId) -> UserConn {
        UserConn {
            conn: id,
            client_type: 0x01,
            online_status: 1,
        }
    }

    #[test]
    fn connections_are_kept_by_ascending_handle() {
        let ids = conn_ids(11);
        let mut users = ImUserManager::new();
        for handle in [5, 2, 9, 7] {
            users.add_conn(3, handle, conn(ids[handle as usize]));
        }
        let handles: Vec<u32> = users.get(3).unwrap().conns().map(|(h, _)| h).collect();
        assert_eq!(handles, [2, 5, 7, 9]);
        users.add_conn(3, 5, conn(ids[10]));
        assert_eq!(
            users.conn_count(),
            4,
            "a handle added again replaces its connection"
        );
        assert_eq!(users.conn_by_handle(3, 5), Some(ids[10]));
        for (handle, left) in [(2, 3), (9, 2), (4, 2), (5, 1), (7, 0)] {
            users.remove_conn(3, handle);
            assert_eq!(users.conn_count(), left);
        }
        assert!(users.get(3).is_none(), "gone with its last connection");
        users.add_conn(3, 1, conn(ids[1]));
        users.add_conn(3, 2, conn(ids[2]));
        assert!(users.remove_conn(3, 2));
        assert_eq!(users.conn_by_handle(3, 1), Some(ids[1]));
        assert_eq!(users.conn_by_handle(3, 2), None);
        assert_eq!(users.conn_count(), 1);
    }

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
