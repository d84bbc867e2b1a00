//! Messages (storage-file.md §5.10 – §5.15; the original's `MessageContent.cpp` and
//! `MessageCounter.cpp`): send, read ack, unread counts, history, by id, latest id.

use tt_proto::pb::base_define::{MsgInfo, MsgType, SessionType, UnreadInfo};
use tt_proto::pb::message::{
    ImGetLatestMsgIdReq, ImGetLatestMsgIdRsp, ImGetMsgByIdReq, ImGetMsgByIdRsp, ImGetMsgListReq,
    ImGetMsgListRsp, ImMsgData, ImMsgDataReadAck, ImUnreadMsgCntReq, ImUnreadMsgCntRsp,
};

use super::Shared;
use crate::metrics;
use crate::model::batch::{self, Outcome};
use crate::model::message::{self, MAX_HISTORY, Outgoing};
use crate::model::{audio, group, now_secs, relation, unread};
use crate::store::{StoreResult, Stores};

/// Requests name a single chat with session type 1; any other value is read as a group.
fn is_single(session_type: i32) -> bool {
    session_type == SessionType::Single as i32
}

/// A message that may be stored, with its type; `Err` holds the reply of one that may not
/// (`None`: no reply at all, for an invalid type or empty data; msg id 0 for text that does not
/// fit the content column).
fn checked(mut req: ImMsgData) -> Result<(ImMsgData, MsgType), Option<ImMsgData>> {
    let (from, to) = (req.from_user_id, req.to_session_id);
    let msg_type = MsgType::declared(req.msg_type);
    let Some(msg_type) = msg_type.filter(|_| !req.msg_data.is_empty()) else {
        log::warn!(
            "IMMsgData from {from} to {to}: type {} / {} bytes of data, no reply",
            req.msg_type,
            req.msg_data.len()
        );
        return Err(None);
    };
    req.msg_id = 0;
    if !msg_type.is_audio() && !message::fits_content_column(&req.msg_data) {
        // Checked before a msg id is allocated: the INSERT would fail and burn the id.
        log::warn!(
            "IMMsgData from {from} to {to}: {} bytes of text do not fit the content column, \
             not stored",
            req.msg_data.len()
        );
        return Err(Some(req));
    }
    if !msg_type.is_audio() && std::str::from_utf8(&req.msg_data).is_err() {
        // The content column is utf8mb4: MySQL refuses the INSERT after the id is allocated.
        log::warn!(
            "IMMsgData from {from} to {to}: {} bytes of text that is not UTF-8, not stored",
            req.msg_data.len()
        );
        return Err(Some(req));
    }
    Ok((req, msg_type))
}

/// Whether the sender may write to the group, from `may` of [`group::members_may_send`]: `Err`
/// holds the reply when not (no reply for a sender that is not a member or a group that does
/// not exist; msg id 0 when membership is unknown because Redis failed, logged, so msg_server
/// ends the sender's request at once).
fn member_may_send(req: ImMsgData, may: StoreResult<bool>) -> Result<ImMsgData, Option<ImMsgData>> {
    let (from, to) = (req.from_user_id, req.to_session_id);
    match may {
        Ok(true) => Ok(req),
        Ok(false) => {
            log::warn!(
                "IMMsgData: {from} is not a member of group {to} (or it does not exist), \
                 no reply"
            );
            Err(None)
        }
        Err(_) => Err(Some(req)),
    }
}

/// A single-chat message names two distinct, non-zero users.
fn valid_pair(req: &ImMsgData) -> bool {
    let (from, to) = (req.from_user_id, req.to_session_id);
    from != to && from != 0 && to != 0
}

/// Counts a stored message in the metrics.
fn count_stored(req: &ImMsgData) {
    if req.msg_id != 0 {
        if MsgType::is_group(req.msg_type) {
            metrics::GROUP_STORED.inc();
        } else {
            metrics::SINGLE_STORED.inc();
        }
    }
}

/// Stores the message and echoes it with its msg id (0 when it was not stored). No reply at
/// all for an invalid type, empty data, or a group the sender is not a member of.
pub fn send(st: &mut Stores, sh: &Shared, req: ImMsgData) -> Option<ImMsgData> {
    let (req, msg_type) = match checked(req) {
        Ok(ok) => ok,
        Err(reply) => return reply,
    };
    let mut req = if MsgType::is_group(req.msg_type) {
        let pair = (req.from_user_id, req.to_session_id);
        let may = group::members_may_send(st, &[pair]).pop();
        match member_may_send(req, may.unwrap_or(Ok(false))) {
            Ok(req) => req,
            Err(reply) => return reply,
        }
    } else {
        req
    };
    req.msg_id = store_alone(st, sh, &req, msg_type);
    count_stored(&req);
    Some(req)
}

/// Stores one message (the sender's membership of a group checked) by the per-message path;
/// its msg id, 0 when it was not stored.
fn store_alone(st: &mut Stores, sh: &Shared, req: &ImMsgData, msg_type: MsgType) -> u32 {
    let out = Outgoing {
        msg: req,
        msg_type,
        msfs: &sh.msfs,
    };
    let stored = if MsgType::is_group(req.msg_type) {
        message::store_group(st, &out)
    } else if valid_pair(req) {
        message::store_single(st, &out)
    } else {
        Ok(0)
    };
    stored.unwrap_or(0)
}

/// Stores the messages of several `IMMsgData` requests (`bodies`, as taken from the queue
/// together) and returns each one's reply, in order. Text messages are stored by one group
/// commit ([`batch::store`]); audio (an upload to msfs each) and messages refused by the checks
/// of [`send`] are handled one by one first. When the group commit fails before its COMMIT,
/// each of its messages is stored alone, so that one bad message cannot sink the others; when
/// the COMMIT itself fails, none is acked. The senders of the group messages are checked for
/// membership together, in one Redis round trip.
pub fn send_batch(st: &mut Stores, sh: &Shared, bodies: &[&[u8]]) -> Vec<Option<ImMsgData>> {
    let mut replies: Vec<Option<ImMsgData>> = Vec::with_capacity(bodies.len());
    // (reply index, type) of the messages for the group commit.
    let mut pending: Vec<(usize, MsgType)> = Vec::new();
    // (reply index, type) of the group messages, checked for membership below.
    let mut of_groups: Vec<(usize, MsgType)> = Vec::new();
    for body in bodies {
        let at = replies.len();
        let Some(req) = super::decode::<ImMsgData>(body) else {
            replies.push(None);
            continue;
        };
        let (req, msg_type) = match checked(req) {
            Ok(ok) => ok,
            Err(reply) => {
                replies.push(reply);
                continue;
            }
        };
        if msg_type.is_audio() {
            replies.push(send(st, sh, req));
            continue;
        }
        if MsgType::is_group(req.msg_type) {
            of_groups.push((at, msg_type));
        } else if valid_pair(&req) {
            pending.push((at, msg_type));
        }
        replies.push(Some(req));
    }
    let pairs: Vec<(u32, u32)> = of_groups
        .iter()
        .filter_map(|&(at, _)| replies[at].as_ref())
        .map(|r| (r.from_user_id, r.to_session_id))
        .collect();
    let checks = group::members_may_send(st, &pairs);
    for (&(at, msg_type), may) in of_groups.iter().zip(checks) {
        let Some(req) = replies[at].take() else {
            continue;
        };
        match member_may_send(req, may) {
            Ok(req) => {
                replies[at] = Some(req);
                pending.push((at, msg_type));
            }
            Err(reply) => replies[at] = reply,
        }
    }
    // The batch keeps the order the requests came in.
    pending.sort_unstable_by_key(|&(at, _)| at);
    if pending.is_empty() {
        return replies;
    }
    let mut items: Vec<batch::Item> = pending
        .iter()
        .filter_map(|&(at, _)| replies[at].as_ref())
        .map(|r| {
            batch::Item::new(
                r.from_user_id,
                r.to_session_id,
                MsgType::is_group(r.msg_type),
                r.msg_type as u32,
                r.create_time,
                &r.msg_data,
            )
        })
        .collect();
    let outcome = batch::store(st, &sh.ids, &mut items, now_secs());
    if outcome == Outcome::RolledBack {
        log::warn!(
            "group commit of {} messages rolled back; storing each alone",
            items.len()
        );
    }
    let ids: Vec<u32> = items.iter().map(|i| i.msg_id).collect();
    drop(items);
    for (&(at, msg_type), id) in pending.iter().zip(ids) {
        let Some(req) = replies[at].as_mut() else {
            continue;
        };
        req.msg_id = match outcome {
            Outcome::Committed => id,
            Outcome::Refused => 0,
            Outcome::RolledBack => {
                let alone = req.clone();
                store_alone(st, sh, &alone, msg_type)
            }
        };
        count_stored(req);
    }
    replies
}

pub fn read_ack(st: &mut Stores, _sh: &Shared, req: ImMsgDataReadAck) {
    let _ = unread::clear(st, req.user_id, req.session_id, req.session_type);
}

pub fn unread_counts(
    st: &mut Stores,
    sh: &Shared,
    req: ImUnreadMsgCntReq,
) -> Option<ImUnreadMsgCntRsp> {
    let user = req.user_id;
    let placeholder = &sh.audio_placeholder;
    let mut total: u32 = 0;
    let mut list = Vec::new();
    for (peer, cnt) in unread::single(st, user).unwrap_or_default() {
        let Ok(Some(last)) = message::last_single(&mut st.slave, peer, user, placeholder) else {
            continue;
        };
        total = total.wrapping_add(cnt);
        list.push(UnreadInfo {
            session_id: peer,
            session_type: SessionType::Single as i32,
            unread_cnt: cnt,
            latest_msg_id: last.msg_id,
            latest_msg_data: last.data,
            latest_msg_type: last.msg_type,
            latest_msg_from_user_id: peer,
        });
    }
    for g in group::of_user(&mut st.slave, user).unwrap_or_default() {
        let Ok(Some(cnt)) = unread::group(st, user, g) else {
            continue;
        };
        if cnt == 0 {
            continue;
        }
        // Counted before the last-message check, as the original (quirk 12).
        total = total.wrapping_add(cnt);
        let Ok(Some(last)) = message::last_group(&mut st.slave, g, placeholder) else {
            continue;
        };
        list.push(UnreadInfo {
            session_id: g,
            session_type: SessionType::Group as i32,
            unread_cnt: cnt,
            latest_msg_id: last.msg_id,
            latest_msg_data: last.data,
            latest_msg_type: last.msg_type,
            latest_msg_from_user_id: last.from,
        });
    }
    Some(ImUnreadMsgCntRsp {
        user_id: user,
        total_cnt: total,
        unreadinfo_list: list,
        attach_data: req.attach_data,
    })
}

/// Where the messages a user may read in a session are.
enum Readable {
    /// Those of the pair's relation.
    Single { relate_id: u32 },
    /// Those the group received since the user joined.
    Group { joined: u32 },
}

/// None when the user has nothing to read there (no relation with the peer, not a member).
fn readable(st: &mut Stores, user: u32, peer: u32, kind: i32) -> StoreResult<Option<Readable>> {
    if is_single(kind) {
        let relate_id = relation::find(&mut st.slave, user, peer)?;
        return Ok((relate_id != 0).then_some(Readable::Single { relate_id }));
    }
    if !group::has_member(st, user, peer)? {
        return Ok(None);
    }
    let joined = group::join_time(st, user, peer)?;
    Ok(Some(Readable::Group { joined }))
}

/// The audio of the listed messages fetched; empty when a query failed.
fn with_audio(st: &mut Stores, sh: &Shared, list: StoreResult<Vec<MsgInfo>>) -> Vec<MsgInfo> {
    audio::expand(st, &sh.msfs, list.unwrap_or_default())
}

pub fn history(st: &mut Stores, sh: &Shared, req: ImGetMsgListReq) -> Option<ImGetMsgListRsp> {
    let (user, peer, begin) = (req.user_id, req.session_id, req.msg_id_begin);
    let limit = req.msg_cnt.min(MAX_HISTORY);
    let list = readable(st, user, peer, req.session_type).and_then(|r| match r {
        Some(Readable::Single { relate_id }) => {
            message::single_history(&mut st.slave, relate_id, begin, limit)
        }
        Some(Readable::Group { joined }) => {
            message::group_history(&mut st.slave, peer, begin, joined, limit)
        }
        None => Ok(Vec::new()),
    });
    Some(ImGetMsgListRsp {
        user_id: user,
        session_type: req.session_type,
        session_id: peer,
        msg_id_begin: begin,
        msg_list: with_audio(st, sh, list),
        attach_data: req.attach_data,
    })
}

pub fn by_ids(st: &mut Stores, sh: &Shared, req: ImGetMsgByIdReq) -> Option<ImGetMsgByIdRsp> {
    let (user, peer, ids) = (req.user_id, req.session_id, &req.msg_id_list);
    let list = if ids.is_empty() {
        Ok(Vec::new())
    } else {
        readable(st, user, peer, req.session_type).and_then(|r| match r {
            Some(Readable::Single { relate_id }) => {
                message::single_by_ids(&mut st.slave, relate_id, ids)
            }
            Some(Readable::Group { joined }) => {
                message::group_by_ids(&mut st.slave, peer, ids, joined)
            }
            None => Ok(Vec::new()),
        })
    };
    Some(ImGetMsgByIdRsp {
        user_id: user,
        session_type: req.session_type,
        session_id: peer,
        msg_list: with_audio(st, sh, list),
        attach_data: req.attach_data,
    })
}

pub fn latest_msg_id(
    st: &mut Stores,
    sh: &Shared,
    req: ImGetLatestMsgIdReq,
) -> Option<ImGetLatestMsgIdRsp> {
    let placeholder = &sh.audio_placeholder;
    let last = if is_single(req.session_type) {
        message::last_single(&mut st.slave, req.user_id, req.session_id, placeholder)
    } else {
        message::last_group(&mut st.slave, req.session_id, placeholder)
    };
    Some(ImGetLatestMsgIdRsp {
        user_id: req.user_id,
        session_type: req.session_type,
        session_id: req.session_id,
        latest_msg_id: last.ok().flatten().map_or(0, |m| m.msg_id),
        attach_data: req.attach_data,
    })
}
