//! Stored group messages waiting for their group's member list (spec §10.3 steps 4–7).
//!
//! A group message needs the group's members before it can be delivered, and they come from
//! db_proxy (`IMGroupInfoListReq` → `IMGroupInfoListRsp`). Replies of db_proxy can come back
//! in any order (several links, several workers), so one member request per message would let
//! a later message overtake an earlier one. Instead each group has a queue, in the order the
//! stored messages arrived here (db_proxy's reply order on the origin server, route_server's
//! relay order elsewhere), and at most one member request in flight. A reply delivers every
//! message that was queued when its request was sent (the member list it carries is at least
//! as recent as their storage); whatever was queued meanwhile gets the next request.
//!
//! Bounded: at most [`MAX_QUEUED_MSGS`] messages and [`MAX_QUEUED_BYTES`] bytes of message
//! data wait in all; a message beyond either is dropped with a log line.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use netlib::ConnId;
use tt_proto::pb::message::ImMsgData;

/// Messages waiting over all groups.
pub const MAX_QUEUED_MSGS: usize = 100_000;
/// Bytes of `msg_data` waiting over all groups.
pub const MAX_QUEUED_BYTES: usize = 64 << 20;
/// A member request without a reply for this long is given up, and its messages dropped.
pub const MEMBERS_TIMEOUT: Duration = Duration::from_secs(30);

/// One stored group message to deliver.
#[derive(Debug, Clone)]
pub struct Pending {
    /// The message as stored, `attach_data` cleared.
    pub msg: ImMsgData,
    /// The sending connection's handle on this server, 0 for a message stored elsewhere.
    pub handle: u32,
}

/// The member request of a group that awaits its reply (`L`: the link it went on).
#[derive(Debug, Clone, Copy)]
struct InFlight<L> {
    /// How many queued messages the reply delivers.
    covers: usize,
    /// The msg id of the first of them (carried in the request, echoed by the reply).
    head_msg_id: u32,
    /// The db_proxy link the request went on.
    link: L,
    sent_at: Instant,
}

#[derive(Debug)]
struct Queue<L> {
    msgs: VecDeque<Pending>,
    in_flight: Option<InFlight<L>>,
}

/// What [`GroupQueues::push`] did with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// Queued behind a member request in flight.
    Waiting,
    /// Queued; the group has no request in flight: ask for its members.
    AskMembers,
    /// Dropped: the queues are full.
    Full,
}

/// The queues of every group with messages waiting; `L` names a db_proxy link.
#[derive(Debug)]
pub struct GroupQueues<L = ConnId> {
    groups: HashMap<u32, Queue<L>>,
    msgs: usize,
    bytes: usize,
    /// Messages refused as [`Pushed::Full`] since [`GroupQueues::take_refused`].
    refused: usize,
}

impl<L> Default for GroupQueues<L> {
    fn default() -> Self {
        GroupQueues {
            groups: HashMap::new(),
            msgs: 0,
            bytes: 0,
            refused: 0,
        }
    }
}

impl<L: Copy + Eq> GroupQueues<L> {
    /// Queues a message of group `msg.to_session_id`.
    pub fn push(&mut self, p: Pending) -> Pushed {
        let size = p.msg.msg_data.len();
        if self.msgs >= MAX_QUEUED_MSGS || self.bytes.saturating_add(size) > MAX_QUEUED_BYTES {
            self.refused += 1;
            return Pushed::Full;
        }
        self.msgs += 1;
        self.bytes += size;
        let q = self.groups.entry(p.msg.to_session_id).or_insert(Queue {
            msgs: VecDeque::new(),
            in_flight: None,
        });
        q.msgs.push_back(p);
        if q.in_flight.is_some() {
            Pushed::Waiting
        } else {
            Pushed::AskMembers
        }
    }

    /// The first waiting message of `group`, for a member request.
    pub fn head(&self, group: u32) -> Option<&Pending> {
        self.groups.get(&group)?.msgs.front()
    }

    /// Records that a member request for `group` went on `link`: its reply will deliver every
    /// message queued now.
    pub fn asked(&mut self, group: u32, link: L, now: Instant) {
        if let Some(q) = self.groups.get_mut(&group)
            && let Some(head) = q.msgs.front()
        {
            q.in_flight = Some(InFlight {
                covers: q.msgs.len(),
                head_msg_id: head.msg.msg_id,
                link,
                sent_at: now,
            });
        }
    }

    /// The messages a member reply delivers: those its request covered, if the reply is for
    /// the request in flight (`head_msg_id` as carried); `None` for any other reply (a late one
    /// of a request given up). The group's request is then no longer in flight.
    pub fn answered(&mut self, group: u32, head_msg_id: u32) -> Option<Vec<Pending>> {
        let q = self.groups.get_mut(&group)?;
        let f = q.in_flight.filter(|f| f.head_msg_id == head_msg_id)?;
        q.in_flight = None;
        Some(self.take(group, f.covers))
    }

    /// True if `group` has messages waiting and no request in flight (ask for its members).
    pub fn needs_asking(&self, group: u32) -> bool {
        self.groups
            .get(&group)
            .is_some_and(|q| q.in_flight.is_none() && !q.msgs.is_empty())
    }

    /// Drops every message of `group` (no db_proxy link to ask); returns how many.
    pub fn drop_group(&mut self, group: u32) -> usize {
        let n = self.groups.get(&group).map_or(0, |q| q.msgs.len());
        self.take(group, n).len()
    }

    /// The groups whose request went on `link` (which closed): they are no longer in flight,
    /// to be asked again.
    pub fn lost_on(&mut self, link: L) -> Vec<u32> {
        let mut lost = Vec::new();
        for (&g, q) in self.groups.iter_mut() {
            if q.in_flight.is_some_and(|f| f.link == link) {
                q.in_flight = None;
                lost.push(g);
            }
        }
        lost
    }

    /// Gives up the requests older than [`MEMBERS_TIMEOUT`]: their messages are dropped.
    /// Returns each such group with the number of messages dropped.
    pub fn expire(&mut self, now: Instant) -> Vec<(u32, usize)> {
        let late: Vec<(u32, usize)> = self
            .groups
            .iter()
            .filter_map(|(&g, q)| {
                let f = q.in_flight?;
                (now.saturating_duration_since(f.sent_at) > MEMBERS_TIMEOUT)
                    .then_some((g, f.covers))
            })
            .collect();
        for &(g, covers) in &late {
            if let Some(q) = self.groups.get_mut(&g) {
                q.in_flight = None;
            }
            self.take(g, covers);
        }
        late
    }

    /// Messages waiting over all groups.
    pub fn len(&self) -> usize {
        self.msgs
    }

    /// How many messages were refused as [`Pushed::Full`] since the last
    /// [`GroupQueues::take_refused`].
    pub fn refused(&self) -> usize {
        self.refused
    }

    /// [`GroupQueues::refused`], counted from 0 again.
    pub fn take_refused(&mut self) -> usize {
        std::mem::take(&mut self.refused)
    }

    /// Takes the first `n` messages of `group`; a group left without messages or request goes.
    fn take(&mut self, group: u32, n: usize) -> Vec<Pending> {
        let Some(q) = self.groups.get_mut(&group) else {
            return Vec::new();
        };
        let taken: Vec<Pending> = q.msgs.drain(..n.min(q.msgs.len())).collect();
        if q.msgs.is_empty() && q.in_flight.is_none() {
            self.groups.remove(&group);
        }
        self.msgs -= taken.len();
        self.bytes -= taken.iter().map(|p| p.msg.msg_data.len()).sum::<usize>();
        taken
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(group: u32, msg_id: u32, data: &[u8]) -> Pending {
        Pending {
            msg: ImMsgData {
                from_user_id: 1,
                to_session_id: group,
                msg_id,
                create_time: 0,
                msg_type: 17,
                msg_data: data.to_vec(),
                attach_data: None,
            },
            handle: 0,
        }
    }

    fn ids(batch: &[Pending]) -> Vec<u32> {
        batch.iter().map(|p| p.msg.msg_id).collect()
    }

    /// A db_proxy link, by number.
    const LINK: u8 = 7;

    #[test]
    fn a_reply_delivers_what_was_queued_before_its_request() {
        let mut q = GroupQueues::<u8>::default();
        let t = Instant::now();
        assert_eq!(q.push(msg(5, 1, b"a")), Pushed::AskMembers);
        assert_eq!(q.head(5).map(|p| p.msg.msg_id), Some(1));
        q.asked(5, LINK, t);
        assert_eq!(q.push(msg(5, 2, b"b")), Pushed::Waiting);
        assert_eq!(
            q.push(msg(6, 9, b"c")),
            Pushed::AskMembers,
            "groups are apart"
        );
        assert!(q.answered(5, 2).is_none(), "not the request in flight");
        assert_eq!(ids(&q.answered(5, 1).unwrap()), [1]);
        assert!(q.needs_asking(5), "message 2 came after the request");
        q.asked(5, LINK, t);
        assert!(!q.needs_asking(5));
        assert_eq!(ids(&q.answered(5, 2).unwrap()), [2]);
        assert!(!q.needs_asking(5));
        assert_eq!(q.len(), 1);
        assert_eq!(q.drop_group(6), 1);
        assert_eq!(q.len(), 0);
        assert!(q.groups.is_empty());
    }

    #[test]
    fn lost_and_late_requests() {
        let mut q = GroupQueues::<u8>::default();
        let t = Instant::now();
        q.push(msg(5, 1, b"a"));
        q.asked(5, LINK, t);
        q.push(msg(5, 2, b"b"));
        assert_eq!(q.lost_on(8), Vec::<u32>::new());
        assert_eq!(q.lost_on(LINK), [5]);
        assert!(q.needs_asking(5));
        q.asked(5, LINK, t);
        assert!(q.expire(t + MEMBERS_TIMEOUT).is_empty());
        assert_eq!(q.expire(t + MEMBERS_TIMEOUT * 2), [(5, 2)]);
        assert_eq!(q.len(), 0);
        assert!(
            q.answered(5, 1).is_none(),
            "a reply after the expiry is ignored"
        );
    }

    #[test]
    fn the_queues_are_bounded() {
        let mut q = GroupQueues::<u8>::default();
        let big = vec![0; MAX_QUEUED_BYTES / 2];
        assert_eq!(q.push(msg(5, 1, &big)), Pushed::AskMembers);
        q.asked(5, LINK, Instant::now());
        assert_eq!(q.push(msg(5, 2, &big)), Pushed::Waiting);
        assert_eq!(q.push(msg(5, 3, b"x")), Pushed::Full);
        assert_eq!(q.len(), 2);
        assert_eq!(q.refused(), 1);
        assert_eq!((q.take_refused(), q.refused()), (1, 0));
    }
}
