//! Group requests: the normal-group list, group info, creating a temporary group, adding and
//! removing members, and a member's push shield for a group. Group messages go through
//! [`Client::send_group_text`] and the message calls with a [`super::Session::group`].

use tt_proto::pb::base_define::{GroupInfo, GroupModifyType, GroupType, GroupVersionInfo};
use tt_proto::pb::group;

use super::Client;
use crate::Result;

/// The reply to [`Client::create_group`] (`CID_GROUP_CREATE_RESPONSE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupCreated {
    /// 0 created, 1 refused.
    pub result_code: u32,
    /// The new group's id (present when created).
    pub group_id: Option<u32>,
    /// The requested name.
    pub group_name: Vec<u8>,
    /// The members (de-duplicated, ascending, as db_proxy stored them).
    pub members: Vec<u32>,
}

/// The reply to [`Client::change_group_members`] (`CID_GROUP_CHANGE_MEMBER_RESPONSE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMembersChange {
    /// 0 changed, 1 refused (no permission, nothing to change).
    pub result_code: u32,
    /// The group.
    pub group_id: u32,
    /// `GroupModifyType` value (1 add, 2 remove).
    pub change_type: i32,
    /// The members after the change (filled on success).
    pub current: Vec<u32>,
    /// The users actually added or removed (filled on success).
    pub changed: Vec<u32>,
}

impl Client {
    /// The normal (permanent) groups we belong to, with their versions
    /// (`CID_GROUP_NORMAL_LIST_REQUEST`). Temporary groups are not listed: they show up in
    /// the recent sessions.
    pub fn normal_groups(&mut self) -> Result<Vec<GroupVersionInfo>> {
        let req = group::ImNormalGroupListReq {
            user_id: self.user_id,
            attach_data: None,
        };
        let (_, rsp): (_, group::ImNormalGroupListRsp) = self.request(&req, "normal group list")?;
        Ok(rsp.group_version_list)
    }

    /// Group records by id, whatever their version (version 0 is sent, below every stored
    /// version). Groups that do not exist are left out of the reply.
    pub fn group_info(&mut self, group_ids: &[u32]) -> Result<Vec<GroupInfo>> {
        let versions: Vec<GroupVersionInfo> = group_ids
            .iter()
            .map(|&group_id| GroupVersionInfo {
                group_id,
                version: 0,
            })
            .collect();
        self.group_info_since(&versions)
    }

    /// Group records newer than the versions we know (`CID_GROUP_INFO_REQUEST`): a group
    /// whose stored version is not above the given one is left out.
    pub fn group_info_since(&mut self, known: &[GroupVersionInfo]) -> Result<Vec<GroupInfo>> {
        let req = group::ImGroupInfoListReq {
            user_id: self.user_id,
            group_version_list: known.to_vec(),
            attach_data: None,
        };
        let (_, rsp): (_, group::ImGroupInfoListRsp) = self.request(&req, "group info")?;
        Ok(rsp.group_info_list)
    }

    /// Creates a temporary group with these members (`CID_GROUP_CREATE_REQUEST`). The creator
    /// is not added on its own: list yourself to be a member.
    pub fn create_group(
        &mut self,
        name: &str,
        avatar: &str,
        members: &[u32],
    ) -> Result<GroupCreated> {
        self.create_group_of_type(GroupType::Tmp, name, avatar, members)
    }

    /// Like [`Client::create_group`] with any group type. msg_server refuses a request for a
    /// normal group (`result_code` 1: normal groups are created by the HTTP API); the original
    /// msg_server leaves it unanswered, so there the call ends in [`crate::Error::Timeout`].
    pub fn create_group_of_type(
        &mut self,
        group_type: GroupType,
        name: &str,
        avatar: &str,
        members: &[u32],
    ) -> Result<GroupCreated> {
        let req = group::ImGroupCreateReq {
            user_id: self.user_id,
            group_type: group_type as i32,
            group_name: name.as_bytes().to_vec(),
            group_avatar: avatar.as_bytes().to_vec(),
            member_id_list: members.to_vec(),
            attach_data: None,
        };
        let (_, rsp): (_, group::ImGroupCreateRsp) = self.request(&req, "group create reply")?;
        Ok(GroupCreated {
            result_code: rsp.result_code,
            group_id: rsp.group_id,
            group_name: rsp.group_name,
            members: rsp.user_id_list,
        })
    }

    /// Adds users to a group ([`Client::change_group_members`] with `Add`).
    pub fn add_group_members(
        &mut self,
        group_id: u32,
        user_ids: &[u32],
    ) -> Result<GroupMembersChange> {
        self.change_group_members(group_id, GroupModifyType::Add, user_ids)
    }

    /// Removes users from a group ([`Client::change_group_members`] with `Del`).
    pub fn remove_group_members(
        &mut self,
        group_id: u32,
        user_ids: &[u32],
    ) -> Result<GroupMembersChange> {
        self.change_group_members(group_id, GroupModifyType::Del, user_ids)
    }

    /// Adds or removes group members (`CID_GROUP_CHANGE_MEMBER_REQUEST`). Every member, old
    /// and new, gets [`crate::Event::GroupMembersChanged`] on their other connections.
    pub fn change_group_members(
        &mut self,
        group_id: u32,
        change: GroupModifyType,
        user_ids: &[u32],
    ) -> Result<GroupMembersChange> {
        let req = group::ImGroupChangeMemberReq {
            user_id: self.user_id,
            change_type: change as i32,
            group_id,
            member_id_list: user_ids.to_vec(),
            attach_data: None,
        };
        let (_, rsp): (_, group::ImGroupChangeMemberRsp) =
            self.request(&req, "group member change reply")?;
        Ok(GroupMembersChange {
            result_code: rsp.result_code,
            group_id: rsp.group_id,
            change_type: rsp.change_type,
            current: rsp.cur_user_id_list,
            changed: rsp.chg_user_id_list,
        })
    }

    /// Turns push notifications for a group's messages off (`shielded`) or on again
    /// (`CID_GROUP_SHIELD_GROUP_REQUEST`); returns the result code (0 success, 1 not a
    /// member).
    pub fn shield_group(&mut self, group_id: u32, shielded: bool) -> Result<u32> {
        let req = group::ImGroupShieldReq {
            user_id: self.user_id,
            group_id,
            shield_status: u32::from(shielded),
            attach_data: None,
        };
        let (_, rsp): (_, group::ImGroupShieldRsp) = self.request(&req, "group shield reply")?;
        Ok(rsp.result_code)
    }
}
