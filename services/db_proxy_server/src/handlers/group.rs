//! Groups (storage-file.md §5.18 – §5.23; the original's `GroupAction.cpp`): the normal group
//! list, group info, create, change members, and the push shield (set by a member, read by
//! msg_server's group-message fan-out).
//!
//! A group that does not exist ([`group::exists`]) gets no reply to a change, a shield request
//! or a shield query, as in the original; group info leaves it out. A list of more than
//! [`MAX_GROUP_MEMBERS`] user ids (or [`MAX_INFO_GROUPS`] groups) is refused with a log line:
//! result 1 where the reply has a result code, an empty list for group info, no reply for the
//! shield query.

use std::collections::{BTreeMap, BTreeSet};

use tt_proto::pb::base_define::{
    GroupInfo, GroupModifyType, GroupType, GroupVersionInfo, SessionType, ShieldStatus,
};
use tt_proto::pb::group::{
    ImGroupChangeMemberReq, ImGroupChangeMemberRsp, ImGroupCreateReq, ImGroupCreateRsp,
    ImGroupInfoListReq, ImGroupInfoListRsp, ImGroupShieldReq, ImGroupShieldRsp,
    ImNormalGroupListReq, ImNormalGroupListRsp,
};
use tt_proto::pb::server::{ImGroupGetShieldReq, ImGroupGetShieldRsp};
use tt_proto::values::{RESULT_FAILED, RESULT_OK};

use super::Shared;
use crate::model::group::{self, MAX_GROUP_MEMBERS, MAX_INFO_GROUPS};
use crate::model::group_member::{self, NewGroup, Owner};
use crate::model::{now_secs, unread};
use crate::store::{StoreResult, Stores};

/// Longest group name and avatar URL, in characters (`IMGroup.name`, `IMGroup.avatar`).
const GROUP_TEXT_CHARS: usize = 256;

/// Whether a group name or avatar fits its utf8mb4 column: UTF-8 of at most
/// [`GROUP_TEXT_CHARS`] characters (MySQL refuses anything else).
fn fits_group_column(text: &[u8]) -> bool {
    std::str::from_utf8(text).is_ok_and(|t| t.chars().count() <= GROUP_TEXT_CHARS)
}

/// The distinct ids of a request's list, ascending (the original's `set<uint32_t>`).
fn id_set(ids: &[u32]) -> Vec<u32> {
    ids.iter()
        .copied()
        .collect::<BTreeSet<u32>>()
        .into_iter()
        .collect()
}

/// True (logged) when a request lists more user ids than a group may have.
fn too_many(what: &str, user: u32, ids: &[u32]) -> bool {
    let over = ids.len() > MAX_GROUP_MEMBERS;
    if over {
        log::warn!(
            "{what} of user {user}: {} ids listed, at most {MAX_GROUP_MEMBERS} allowed; refused",
            ids.len()
        );
    }
    over
}

/// Whether the group exists; a storage failure counts as no (and is logged where it happened).
fn exists(st: &mut Stores, what: &str, group: u32) -> bool {
    let found = matches!(group::exists(st, group), Ok(true));
    if !found {
        log::warn!("{what}: group {group} does not exist, no reply");
    }
    found
}

pub fn normal_list(
    st: &mut Stores,
    _sh: &Shared,
    req: ImNormalGroupListReq,
) -> Option<ImNormalGroupListRsp> {
    let groups = id_set(&group::of_user(&mut st.slave, req.user_id).unwrap_or_default());
    let versions = if groups.is_empty() {
        Vec::new()
    } else {
        group::normal_versions(&mut st.slave, &groups).unwrap_or_default()
    };
    Some(ImNormalGroupListRsp {
        user_id: req.user_id,
        group_version_list: versions
            .into_iter()
            .map(|(group_id, version)| GroupVersionInfo { group_id, version })
            .collect(),
        attach_data: req.attach_data,
    })
}

/// The info of the listed groups that exist and whose stored version is above the requested
/// one; `shield_status` is the requester's push shield of the group.
pub fn info(st: &mut Stores, _sh: &Shared, req: ImGroupInfoListReq) -> Option<ImGroupInfoListRsp> {
    let user = req.user_id;
    let mut list = Vec::new();
    if req.group_version_list.len() > MAX_INFO_GROUPS {
        log::warn!(
            "group info of user {user}: {} groups asked, at most {MAX_INFO_GROUPS} allowed; \
             empty reply",
            req.group_version_list.len()
        );
    } else {
        // A group listed twice: the last entry's version counts.
        let asked: BTreeMap<u32, u32> = req
            .group_version_list
            .iter()
            .map(|v| (v.group_id, v.version))
            .collect();
        let ids: Vec<u32> = asked.keys().copied().collect();
        for row in group::rows(&mut st.slave, &ids).unwrap_or_default() {
            let newer = asked.get(&row.id).is_some_and(|&v| v < row.version);
            if !newer || GroupType::try_from(row.kind).is_err() {
                continue;
            }
            // What `group::exists` says, from the row at hand.
            if !row.active && !matches!(group::has_member_hash(st, row.id), Ok(true)) {
                continue;
            }
            let Ok(members) = group::members(st, row.id) else {
                continue;
            };
            let shield = group::shields(st, row.id, &[user]).unwrap_or_default();
            list.push(GroupInfo {
                group_id: row.id,
                version: row.version,
                group_name: row.name,
                group_avatar: row.avatar,
                group_creator_id: row.creator,
                group_type: row.kind,
                shield_status: shield.first().copied().unwrap_or(0),
                group_member_list: members,
            });
        }
    }
    Some(ImGroupInfoListRsp {
        user_id: user,
        group_info_list: list,
        attach_data: req.attach_data,
    })
}

/// Creates a group of the listed members (the creator is a member only if listed).
pub fn create(st: &mut Stores, _sh: &Shared, req: ImGroupCreateReq) -> Option<ImGroupCreateRsp> {
    let user = req.user_id;
    let kind = GroupType::try_from(req.group_type).ok()?;
    let mut rsp = ImGroupCreateRsp {
        user_id: user,
        result_code: RESULT_FAILED,
        group_id: None,
        group_name: req.group_name,
        user_id_list: Vec::new(),
        attach_data: req.attach_data,
    };
    if too_many("create group", user, &req.member_id_list) {
        return Some(rsp);
    }
    rsp.user_id_list = id_set(&req.member_id_list);
    if rsp.group_name.is_empty() || rsp.user_id_list.is_empty() {
        log::warn!("create group of user {user}: empty name or no members; refused");
        return Some(rsp);
    }
    let misfit = [("name", &rsp.group_name), ("avatar", &req.group_avatar)]
        .into_iter()
        .find(|(_, text)| !fits_group_column(text))
        .map(|(what, text)| (what, text.len()));
    if let Some((what, len)) = misfit {
        log::warn!(
            "create group of user {user}: {what} of {len} bytes is not UTF-8 of at most \
             {GROUP_TEXT_CHARS} characters; refused"
        );
        return Some(rsp);
    }
    let new = NewGroup {
        name: &rsp.group_name,
        avatar: &req.group_avatar,
        creator: user,
        kind,
        members: &rsp.user_id_list,
    };
    if let Ok(id) = group_member::create(st, &new, now_secs()) {
        rsp.result_code = RESULT_OK;
        rsp.group_id = Some(id);
    }
    Some(rsp)
}

/// What a membership change did.
enum Change {
    /// The requester may not make it, or the group would exceed its bound.
    Refused,
    /// Done; `ok` false when an add found nobody to add.
    Done { users: Vec<u32>, ok: bool },
}

/// The original's permission rule: the server itself (user 0), anyone adding to a temporary
/// group, or the creator.
fn may_change(user: u32, add: bool, owner: Option<&Owner>) -> bool {
    user == 0
        || owner.is_some_and(|o| (o.kind == GroupType::Tmp as i32 && add) || o.creator == user)
}

/// Adds or removes members under the group's lock.
fn apply_change(
    st: &mut Stores,
    user: u32,
    group: u32,
    add: bool,
    users: Vec<u32>,
) -> StoreResult<Change> {
    group_member::change(st, group, now_secs(), |owner, locked| {
        if !may_change(user, add, owner.as_ref()) {
            log::warn!("change members of group {group}: user {user} may not; refused");
            return Ok(Change::Refused);
        }
        let users = if add {
            group::non_members(locked.stores(), group, &users)?
        } else {
            users
        };
        if add {
            let total = group::member_count(locked.stores(), group)? + users.len();
            if total > MAX_GROUP_MEMBERS {
                log::warn!(
                    "change members of group {group}: {total} members would pass the bound \
                     {MAX_GROUP_MEMBERS}; refused"
                );
                return Ok(Change::Refused);
            }
            if users.is_empty() {
                return Ok(Change::Done { users, ok: false });
            }
            locked.add(&users)?;
        } else {
            locked.remove(&users)?;
        }
        locked.bump_version()?;
        Ok(Change::Done { users, ok: true })
    })
}

pub fn change_members(
    st: &mut Stores,
    _sh: &Shared,
    req: ImGroupChangeMemberReq,
) -> Option<ImGroupChangeMemberRsp> {
    let (user, group) = (req.user_id, req.group_id);
    let add = GroupModifyType::try_from(req.change_type).ok()? == GroupModifyType::Add;
    let mut rsp = ImGroupChangeMemberRsp {
        user_id: user,
        change_type: req.change_type,
        result_code: RESULT_FAILED,
        group_id: group,
        cur_user_id_list: Vec::new(),
        chg_user_id_list: Vec::new(),
        attach_data: req.attach_data,
    };
    if !exists(st, "change members", group) {
        return None;
    }
    if too_many("change members", user, &req.member_id_list) {
        return Some(rsp);
    }
    let users = id_set(&req.member_id_list);
    let Ok(Change::Done { users, ok: true }) = apply_change(st, user, group, add, users) else {
        return Some(rsp);
    };
    // Added and removed members have read everything there is (for a removed member, up to its
    // removal).
    for &u in &users {
        let _ = unread::clear(st, u, group, SessionType::Group as i32);
    }
    rsp.result_code = RESULT_OK;
    rsp.cur_user_id_list = group::members(st, group).unwrap_or_default();
    rsp.chg_user_id_list = users;
    Some(rsp)
}

pub fn set_shield(
    st: &mut Stores,
    _sh: &Shared,
    req: ImGroupShieldReq,
) -> Option<ImGroupShieldRsp> {
    let (user, group) = (req.user_id, req.group_id);
    if !exists(st, "group shield", group) {
        return None;
    }
    let result_code = match group::has_member(st, user, group) {
        Ok(true) => match group::set_shield(st, group, user, req.shield_status) {
            Ok(()) => RESULT_OK,
            Err(_) => RESULT_FAILED,
        },
        Ok(false) => {
            log::warn!("group shield: user {user} is not a member of group {group}; refused");
            RESULT_FAILED
        }
        Err(_) => RESULT_FAILED,
    };
    Some(ImGroupShieldRsp {
        user_id: user,
        group_id: group,
        result_code,
        attach_data: req.attach_data,
    })
}

/// The push shield of each listed user in the group, in the request's order.
pub fn get_shield(
    st: &mut Stores,
    _sh: &Shared,
    req: ImGroupGetShieldReq,
) -> Option<ImGroupGetShieldRsp> {
    let group = req.group_id;
    if !exists(st, "get group shield", group) {
        return None;
    }
    if req.user_id.len() > MAX_GROUP_MEMBERS {
        log::warn!(
            "get group shield of group {group}: {} users listed, at most {MAX_GROUP_MEMBERS} \
             allowed; no reply",
            req.user_id.len()
        );
        return None;
    }
    let statuses = group::shields(st, group, &req.user_id).unwrap_or_default();
    Some(ImGroupGetShieldRsp {
        group_id: group,
        shield_status_list: req
            .user_id
            .iter()
            .zip(statuses)
            .map(|(&user_id, shield_status)| ShieldStatus {
                user_id,
                group_id: group,
                shield_status,
            })
            .collect(),
        attach_data: req.attach_data,
    })
}
