//! Relation and session ids cached in the process, shared by the workers, so that storing a
//! message of a known pair or group issues no SELECT.
//!
//! * A relation id (`IMRelationShip`, per user pair) never changes once created: no process
//!   deletes a relation row or sets its status, so a cached id stays right for good.
//! * A session id (`IMRecentSession`, per owner, peer and type) names a row that its owner may
//!   hide (remove-session, status 1). The group commit writes `status=0, updated=now` to every
//!   session of a stored message, as the per-message path re-shows a removed session through
//!   `session::add`: a cached id of a session removed meanwhile (by this process or another
//!   db_proxy on the same database) is shown again by the next message, as it must be. The
//!   remove-session handler also forgets its entry, so this process looks the session up again.
//!   No process deletes session rows.
//!
//! A miss goes to MySQL as before (and creates what is missing under the pair lock); what it
//! finds is cached. Each map holds at most [`MAX_ENTRIES`] ids and is emptied when full.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;

use tt_proto::pb::base_define::SessionType;

/// Most ids each map keeps (about 40 bytes an entry).
pub const MAX_ENTRIES: usize = 200_000;

/// A map of at most `max` entries, emptied when an insert finds it full.
struct Bounded<K, V> {
    map: HashMap<K, V>,
    max: usize,
}

impl<K: Hash + Eq, V: Copy> Bounded<K, V> {
    fn new(max: usize) -> Self {
        Bounded {
            map: HashMap::new(),
            max,
        }
    }

    fn get(&self, k: &K) -> Option<V> {
        self.map.get(k).copied()
    }

    fn insert(&mut self, k: K, v: V) {
        if self.map.len() >= self.max && !self.map.contains_key(&k) {
            self.map.clear();
        }
        self.map.insert(k, v);
    }
}

/// (owner, peer, session type as its wire value).
type SessionKey = (u32, u32, i32);

/// The process's relation and session ids.
pub struct IdCache {
    relations: Mutex<Bounded<(u32, u32), u32>>,
    sessions: Mutex<Bounded<SessionKey, u32>>,
}

impl Default for IdCache {
    fn default() -> Self {
        IdCache::new(MAX_ENTRIES)
    }
}

/// A poisoned lock still holds a usable map (entries are plain ids).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl IdCache {
    pub fn new(max: usize) -> IdCache {
        IdCache {
            relations: Mutex::new(Bounded::new(max)),
            sessions: Mutex::new(Bounded::new(max)),
        }
    }

    /// The relation id of users `a` and `b` (either order), if cached.
    pub fn relation(&self, a: u32, b: u32) -> Option<u32> {
        lock(&self.relations).get(&(a.min(b), a.max(b)))
    }

    pub fn set_relation(&self, a: u32, b: u32, id: u32) {
        if id != 0 {
            lock(&self.relations).insert((a.min(b), a.max(b)), id);
        }
    }

    /// The session id of (owner, peer, kind), if cached.
    pub fn session(&self, owner: u32, peer: u32, kind: SessionType) -> Option<u32> {
        lock(&self.sessions).get(&(owner, peer, kind as i32))
    }

    pub fn set_session(&self, owner: u32, peer: u32, kind: SessionType, id: u32) {
        if id != 0 {
            lock(&self.sessions).insert((owner, peer, kind as i32), id);
        }
    }

    /// Forgets the session of (owner, peer, kind) (its owner removed it).
    pub fn forget_session(&self, owner: u32, peer: u32, kind: SessionType) {
        lock(&self.sessions).map.remove(&(owner, peer, kind as i32));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relations_in_either_order_and_sessions_by_owner() {
        let c = IdCache::new(10);
        c.set_relation(7, 3, 42);
        assert_eq!(c.relation(3, 7), Some(42));
        assert_eq!(c.relation(7, 3), Some(42));
        c.set_session(3, 7, SessionType::Single, 5);
        assert_eq!(c.session(3, 7, SessionType::Single), Some(5));
        assert_eq!(c.session(7, 3, SessionType::Single), None);
        assert_eq!(c.session(3, 7, SessionType::Group), None);
        c.forget_session(3, 7, SessionType::Single);
        assert_eq!(c.session(3, 7, SessionType::Single), None);
        c.set_relation(1, 2, 0);
        assert_eq!(c.relation(1, 2), None);
    }

    #[test]
    fn a_full_map_starts_over() {
        let c = IdCache::new(3);
        for i in 1..=3 {
            c.set_relation(i, 100, i);
        }
        c.set_relation(1, 100, 9);
        assert_eq!(
            c.relation(2, 100),
            Some(2),
            "an update does not empty the map"
        );
        c.set_relation(4, 100, 4);
        assert_eq!(c.relation(1, 100), None);
        assert_eq!(c.relation(4, 100), Some(4));
        assert!(lock(&c.relations).map.len() <= 3);
    }
}
