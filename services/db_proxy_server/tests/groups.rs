//! db_proxy_server's group commands against the real binary, the local MariaDB and Redis:
//! normal list, info (version rule), create, change members (permissions, bounds), the push
//! shield (set by members, read for the fan-out), group messages of members and non-members,
//! and the database effect before and after a restart.
//!
//! Users: `tt_testkit::users::DB_PROXY_GROUPS` only, each test its own (the constants below).
//! Every test creates fresh groups and deletes them (rows and Redis keys) at its end. Ids beyond
//! the seeded users (from [`PHANTOM`]) only appear in requests that are refused.
//!
//! db_proxy runs with one worker, so replies come in request order: a request that gets no
//! reply is recognised by the reply of the request sent after it coming first ([`no_reply`]).

use std::time::{SystemTime, UNIX_EPOCH};

use mysql::prelude::Queryable;
use tt_proto::pb::base_define::{
    GroupInfo, GroupModifyType, GroupType, GroupVersionInfo, MsgType, SessionType,
};
use tt_proto::pb::group::{
    ImGroupChangeMemberReq, ImGroupChangeMemberRsp, ImGroupCreateReq, ImGroupCreateRsp,
    ImGroupInfoListReq, ImGroupInfoListRsp, ImGroupShieldReq, ImGroupShieldRsp,
    ImNormalGroupListReq, ImNormalGroupListRsp,
};
use tt_proto::pb::message::{ImMsgData, ImUnreadMsgCntReq, ImUnreadMsgCntRsp};
use tt_proto::pb::server::{ImGroupGetShieldReq, ImGroupGetShieldRsp};
use tt_proto::{Command, Pdu};
use tt_testkit::users::DB_PROXY_GROUPS as USERS;
use tt_testkit::{PduClient, Stack, drop_group, mysql_conn, redis_conn, redis_db};

/// Lifecycle: the creator, two first members, one added later.
const OWNER: u32 = USERS.id(0);
const MEMBER_A: u32 = USERS.id(1);
const MEMBER_B: u32 = USERS.id(2);
const LATER: u32 = USERS.id(3);
/// Permissions: creator, member, outsider.
const P_OWNER: u32 = USERS.id(5);
const P_MEMBER: u32 = USERS.id(6);
const P_OUTSIDER: u32 = USERS.id(7);
/// Shield: two members and an outsider.
const S_A: u32 = USERS.id(8);
const S_B: u32 = USERS.id(9);
const S_OUTSIDER: u32 = USERS.id(10);
/// Messages: sender, reader, outsider.
const M_SENDER: u32 = USERS.id(11);
const M_READER: u32 = USERS.id(12);
const M_OUTSIDER: u32 = USERS.id(13);
/// The group whose members all leave.
const L_A: u32 = USERS.id(17);
const L_B: u32 = USERS.id(18);
/// Bounds and malformed bodies.
const BOUNDS: u32 = USERS.id(19);
/// Membership rebuilt after Redis lost it: a sender and a reader.
const R_SENDER: u32 = USERS.id(20);
const R_READER: u32 = USERS.id(21);

/// Ids no seeded user has, for lists that are refused before anything is stored.
const PHANTOM: u32 = 2_000_000_000;
/// A group id no group has.
const NO_GROUP: u32 = 4_000_000_000;
/// One id more than a group may have (`MAX_GROUP_MEMBERS`, documented in COMPATIBILITY.md).
const OVER_MAX: u32 = 1001;

const ADD: GroupModifyType = GroupModifyType::Add;
const DEL: GroupModifyType = GroupModifyType::Del;

fn now() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs() as u32
}

/// A group name no earlier run used.
fn fresh_name(label: &str) -> Vec<u8> {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    format!("dbp-groups {label} {nanos}").into_bytes()
}

/// db_proxy_server alone, with one worker (see the module doc).
fn start(label: &str) -> Stack {
    Stack::builder(label)
        .msg_servers(0)
        .route(false)
        .login(false)
        .db_threads(1)
        .start()
}

fn connect(stack: &Stack) -> PduClient {
    PduClient::connect(stack.ports.db_proxy)
}

const UNREAD_DB: u32 = redis_db::UNREAD;
const GROUP_SET_DB: u32 = redis_db::GROUP_SET;
const GROUP_MEMBER_DB: u32 = redis_db::GROUP_MEMBER;

// ---- requests ----

fn create(
    c: &mut PduClient,
    user: u32,
    kind: GroupType,
    name: &[u8],
    members: &[u32],
) -> ImGroupCreateRsp {
    let req = ImGroupCreateReq {
        user_id: user,
        group_type: kind as i32,
        group_name: name.to_vec(),
        group_avatar: b"avatar.png".to_vec(),
        member_id_list: members.to_vec(),
        attach_data: Some(b"create".to_vec()),
    };
    let rsp: ImGroupCreateRsp = c.call(&req);
    assert_eq!(rsp.user_id, user);
    assert_eq!(rsp.group_name, name);
    assert_eq!(rsp.attach_data.as_deref(), Some(&b"create"[..]));
    rsp
}

fn change_req(
    user: u32,
    kind: GroupModifyType,
    group: u32,
    members: &[u32],
) -> ImGroupChangeMemberReq {
    ImGroupChangeMemberReq {
        user_id: user,
        change_type: kind as i32,
        group_id: group,
        member_id_list: members.to_vec(),
        attach_data: Some(b"change".to_vec()),
    }
}

fn change(
    c: &mut PduClient,
    user: u32,
    kind: GroupModifyType,
    group: u32,
    members: &[u32],
) -> ImGroupChangeMemberRsp {
    let rsp: ImGroupChangeMemberRsp = c.call(&change_req(user, kind, group, members));
    assert_eq!(
        (rsp.user_id, rsp.change_type, rsp.group_id),
        (user, kind as i32, group)
    );
    assert_eq!(rsp.attach_data.as_deref(), Some(&b"change"[..]));
    rsp
}

/// A refused change: result 1 and no lists.
fn assert_refused(rsp: &ImGroupChangeMemberRsp) {
    assert_eq!(rsp.result_code, 1);
    assert!(rsp.cur_user_id_list.is_empty() && rsp.chg_user_id_list.is_empty());
}

fn info_req(user: u32, versions: &[(u32, u32)]) -> ImGroupInfoListReq {
    ImGroupInfoListReq {
        user_id: user,
        group_version_list: versions
            .iter()
            .map(|&(group_id, version)| GroupVersionInfo { group_id, version })
            .collect(),
        attach_data: Some(b"info".to_vec()),
    }
}

fn info(c: &mut PduClient, user: u32, versions: &[(u32, u32)]) -> Vec<GroupInfo> {
    let rsp: ImGroupInfoListRsp = c.call(&info_req(user, versions));
    assert_eq!(rsp.user_id, user);
    assert_eq!(rsp.attach_data.as_deref(), Some(&b"info"[..]));
    rsp.group_info_list
}

/// The info of one group asked with version 0 (always newer when the group exists).
fn info_of(c: &mut PduClient, user: u32, group: u32) -> GroupInfo {
    let mut list = info(c, user, &[(group, 0)]);
    assert_eq!(list.len(), 1, "info of group {group}");
    list.remove(0)
}

fn normal_list(c: &mut PduClient, user: u32) -> Vec<(u32, u32)> {
    let rsp: ImNormalGroupListRsp = c.call(&ImNormalGroupListReq {
        user_id: user,
        attach_data: Some(b"normal".to_vec()),
    });
    assert_eq!(rsp.user_id, user);
    assert_eq!(rsp.attach_data.as_deref(), Some(&b"normal"[..]));
    rsp.group_version_list
        .iter()
        .map(|v| (v.group_id, v.version))
        .collect()
}

fn shield_req(user: u32, group: u32, status: u32) -> ImGroupShieldReq {
    ImGroupShieldReq {
        user_id: user,
        group_id: group,
        shield_status: status,
        attach_data: Some(b"shield".to_vec()),
    }
}

/// Sets a push shield; the result code.
fn shield(c: &mut PduClient, user: u32, group: u32, status: u32) -> u32 {
    let rsp: ImGroupShieldRsp = c.call(&shield_req(user, group, status));
    assert_eq!((rsp.user_id, rsp.group_id), (user, group));
    assert_eq!(rsp.attach_data.as_deref(), Some(&b"shield"[..]));
    rsp.result_code
}

fn get_shield_req(group: u32, users: &[u32]) -> ImGroupGetShieldReq {
    ImGroupGetShieldReq {
        group_id: group,
        user_id: users.to_vec(),
        attach_data: Some(b"get-shield".to_vec()),
    }
}

/// The push shields of `users`, in their order.
fn get_shield(c: &mut PduClient, group: u32, users: &[u32]) -> Vec<u32> {
    let rsp: ImGroupGetShieldRsp = c.call(&get_shield_req(group, users));
    assert_eq!(rsp.group_id, group);
    assert_eq!(rsp.attach_data.as_deref(), Some(&b"get-shield"[..]));
    let listed: Vec<(u32, u32)> = rsp
        .shield_status_list
        .iter()
        .map(|s| (s.user_id, s.group_id))
        .collect();
    let expected: Vec<(u32, u32)> = users.iter().map(|&u| (u, group)).collect();
    assert_eq!(listed, expected);
    rsp.shield_status_list
        .iter()
        .map(|s| s.shield_status)
        .collect()
}

fn group_msg(from: u32, group: u32, text: &str) -> ImMsgData {
    ImMsgData {
        from_user_id: from,
        to_session_id: group,
        msg_id: 0,
        create_time: now(),
        msg_type: MsgType::GroupText as i32,
        msg_data: text.as_bytes().to_vec(),
        attach_data: Some(b"msg".to_vec()),
    }
}

/// Sends a group message that must be stored; its msg id.
fn send_ok(c: &mut PduClient, from: u32, group: u32, text: &str) -> u32 {
    let rsp: ImMsgData = c.call(&group_msg(from, group, text));
    assert_eq!((rsp.from_user_id, rsp.to_session_id), (from, group));
    assert_ne!(rsp.msg_id, 0, "a member's message is stored");
    rsp.msg_id
}

/// The user's unread count in the group (None: no entry).
fn group_unread(c: &mut PduClient, user: u32, group: u32) -> Option<u32> {
    let rsp: ImUnreadMsgCntRsp = c.call(&ImUnreadMsgCntReq {
        user_id: user,
        attach_data: None,
    });
    rsp.unreadinfo_list
        .iter()
        .find(|e| e.session_id == group && e.session_type == SessionType::Group as i32)
        .map(|e| e.unread_cnt)
}

/// Sends `pdu`, which must get no reply: the reply of the request sent after it is the very
/// next PDU (and shows that the connection still serves requests).
fn no_reply(c: &mut PduClient, pdu: &Pdu) {
    c.send_pdu(pdu);
    normal_list(c, BOUNDS);
}

/// `msg` as a PDU of its own command.
fn pdu<M: Command>(msg: &M) -> Pdu {
    Pdu::command(0, msg)
}

/// A PDU of `M`'s command with the raw `body`.
fn raw<M: Command>(body: &[u8]) -> Pdu {
    Pdu::new(M::SERVICE_ID, M::COMMAND_ID, 0, body.to_vec())
}

// ---- database state ----

/// (creator, type, userCnt, status, version) of an IMGroup row.
fn group_row(db: &mut mysql::Conn, group: u32) -> Option<(u32, u32, u32, u32, u32)> {
    db.exec_first(
        "SELECT creator, type, userCnt, status, version FROM IMGroup WHERE id=?",
        (group,),
    )
    .expect("select IMGroup")
}

/// (userId, status) of the group's IMGroupMember rows, by user.
fn member_rows(db: &mut mysql::Conn, group: u32) -> Vec<(u32, u32)> {
    db.exec(
        "SELECT userId, status FROM IMGroupMember WHERE groupId=? ORDER BY userId",
        (group,),
    )
    .expect("select IMGroupMember")
}

/// The members in Redis `group_member_<group>`, ascending.
fn redis_members(r: &mut redis::Connection, group: u32) -> Vec<u32> {
    let mut m: Vec<u32> = redis::cmd("HKEYS")
        .arg(format!("group_member_{group}"))
        .query(r)
        .expect("hkeys");
    m.sort_unstable();
    m
}

/// Everything a test's groups left: rows, sessions, messages and Redis keys.
fn cleanup(db: &mut mysql::Conn, groups: &[u32], users: &[u32]) {
    for &g in groups {
        drop_group(db, g, users);
    }
}

/// One test's db_proxy_server, connection and database handle; on drop (also when the test
/// fails) the daemon is stopped and the groups the test created are removed.
struct Fixture {
    stack: Stack,
    c: PduClient,
    db: mysql::Conn,
    /// The test's users (their unread markers go with the groups).
    users: Vec<u32>,
    groups: Vec<u32>,
}

impl Fixture {
    fn start(label: &str, users: &[u32]) -> Fixture {
        let stack = start(label);
        Fixture {
            c: connect(&stack),
            stack,
            db: mysql_conn(),
            users: users.to_vec(),
            groups: Vec::new(),
        }
    }

    /// Creates a temporary group that must succeed; its id.
    fn create_ok(&mut self, user: u32, label: &str, members: &[u32]) -> u32 {
        let rsp = create(
            &mut self.c,
            user,
            GroupType::Tmp,
            &fresh_name(label),
            members,
        );
        assert_eq!(rsp.result_code, 0);
        let g = rsp.group_id.expect("group id of a created group");
        self.groups.push(g);
        g
    }

    /// Restarts db_proxy_server and connects to the new process.
    fn restart(&mut self) {
        Stack::kill(&mut self.stack.db_proxy);
        self.stack.start_db_proxy();
        self.c = connect(&self.stack);
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        Stack::kill(&mut self.stack.db_proxy);
        cleanup(&mut self.db, &self.groups, &self.users);
    }
}

// ---- tests ----

#[test]
fn create_info_add_del_and_restart() {
    let mut f = Fixture::start("dbp-groups-life", &[OWNER, MEMBER_A, MEMBER_B, LATER]);
    let mut members = redis_conn(GROUP_MEMBER_DB);
    let mut unread = redis_conn(UNREAD_DB);
    let name = fresh_name("life");

    // Create: members de-duplicated and ascending; the creator only because it is listed.
    let rsp = create(
        &mut f.c,
        OWNER,
        GroupType::Tmp,
        &name,
        &[MEMBER_B, MEMBER_A, OWNER, MEMBER_A],
    );
    assert_eq!(rsp.result_code, 0);
    assert_eq!(rsp.user_id_list, vec![OWNER, MEMBER_A, MEMBER_B]);
    let g = rsp.group_id.expect("group id");
    f.groups.push(g);
    // userCnt counts each member once.
    assert_eq!(group_row(&mut f.db, g), Some((OWNER, 2, 3, 0, 1)));
    assert_eq!(
        member_rows(&mut f.db, g),
        vec![(OWNER, 0), (MEMBER_A, 0), (MEMBER_B, 0)]
    );
    assert_eq!(
        redis_members(&mut members, g),
        vec![OWNER, MEMBER_A, MEMBER_B]
    );
    let counter: Option<String> = redis::cmd("GET")
        .arg(format!("group_msg_id_{g}"))
        .query(&mut unread)
        .expect("get");
    assert_eq!(counter.as_deref(), Some("0"));

    // Info: every field; only for a requested version below the stored one.
    let i = info_of(&mut f.c, MEMBER_A, g);
    assert_eq!((i.group_id, i.version), (g, 1));
    assert_eq!(i.group_name, name);
    assert_eq!(i.group_avatar, b"avatar.png");
    assert_eq!(i.group_creator_id, OWNER);
    assert_eq!(i.group_type, GroupType::Tmp as i32);
    assert_eq!(i.shield_status, 0);
    assert_eq!(i.group_member_list, vec![OWNER, MEMBER_A, MEMBER_B]);
    assert!(info(&mut f.c, MEMBER_A, &[(g, 1)]).is_empty());
    assert!(info(&mut f.c, MEMBER_A, &[(g, 7)]).is_empty());
    // Listed twice: the last version counts.
    assert_eq!(info(&mut f.c, MEMBER_A, &[(g, 7), (g, 0)]).len(), 1);
    assert!(info(&mut f.c, MEMBER_A, &[(NO_GROUP, 0)]).is_empty());
    // A temporary group is no normal group.
    assert!(!normal_list(&mut f.c, OWNER).iter().any(|&(id, _)| id == g));

    // A message from MEMBER_B gives it a group session, and the group a count of 1.
    let first = send_ok(&mut f.c, MEMBER_B, g, "before the change");
    assert_eq!(first, 1);
    assert_eq!(group_unread(&mut f.c, MEMBER_A, g), Some(1));

    // Add: members already in are left out of the change.
    let rsp = change(&mut f.c, OWNER, ADD, g, &[LATER, MEMBER_A]);
    assert_eq!(rsp.result_code, 0);
    assert_eq!(rsp.chg_user_id_list, vec![LATER]);
    assert_eq!(rsp.cur_user_id_list, vec![OWNER, MEMBER_A, MEMBER_B, LATER]);
    assert_eq!(group_row(&mut f.db, g), Some((OWNER, 2, 4, 0, 2)));
    // The one added has nothing unread: what was sent before it joined is not for it.
    assert_eq!(group_unread(&mut f.c, LATER, g), None);

    // Del: the removed member's rows stay with status 1, its Redis entry and session go.
    let rsp = change(&mut f.c, OWNER, DEL, g, &[MEMBER_B]);
    assert_eq!(rsp.result_code, 0);
    assert_eq!(rsp.chg_user_id_list, vec![MEMBER_B]);
    assert_eq!(rsp.cur_user_id_list, vec![OWNER, MEMBER_A, LATER]);
    assert_eq!(group_row(&mut f.db, g), Some((OWNER, 2, 3, 0, 3)));
    assert_eq!(
        member_rows(&mut f.db, g),
        vec![(OWNER, 0), (MEMBER_A, 0), (MEMBER_B, 1), (LATER, 0)]
    );
    let sessions: Vec<u32> =
        f.db.exec(
            "SELECT status FROM IMRecentSession WHERE userId=? AND peerId=? AND type=2",
            (MEMBER_B, g),
        )
        .expect("sessions");
    assert!(!sessions.is_empty() && sessions.iter().all(|&s| s == 1));
    // Removed: no longer a member for messages.
    no_reply(&mut f.c, &pdu(&group_msg(MEMBER_B, g, "after removal")));

    // Info after the changes: version 3, the current members.
    let i = info(&mut f.c, LATER, &[(g, 2)]);
    assert_eq!(i.len(), 1);
    assert_eq!(i[0].version, 3);
    assert_eq!(i[0].group_member_list, vec![OWNER, MEMBER_A, LATER]);
    assert_eq!(shield(&mut f.c, MEMBER_A, g, 1), 0);

    // Everything is still there for a new db_proxy process.
    f.restart();
    let i = info_of(&mut f.c, MEMBER_A, g);
    assert_eq!(i.version, 3);
    assert_eq!(i.shield_status, 1);
    assert_eq!(i.group_member_list, vec![OWNER, MEMBER_A, LATER]);
    assert_eq!(get_shield(&mut f.c, g, &[OWNER, MEMBER_A]), vec![0, 1]);
    assert_eq!(group_row(&mut f.db, g), Some((OWNER, 2, 3, 0, 3)));
    assert_eq!(redis_members(&mut members, g), vec![OWNER, MEMBER_A, LATER]);
    assert_eq!(send_ok(&mut f.c, LATER, g, "after the restart"), first + 1);
}

#[test]
fn permissions_and_normal_groups() {
    let mut f = Fixture::start("dbp-groups-perm", &[P_OWNER, P_MEMBER, P_OUTSIDER]);

    // A normal group (as the HTTP API creates them) is in its members' normal list.
    let rsp = create(
        &mut f.c,
        P_OWNER,
        GroupType::Normal,
        &fresh_name("normal"),
        &[P_OWNER, P_MEMBER],
    );
    assert_eq!(rsp.result_code, 0);
    let normal = rsp.group_id.expect("group id");
    f.groups.push(normal);
    assert!(normal_list(&mut f.c, P_MEMBER).contains(&(normal, 1)));
    assert!(
        !normal_list(&mut f.c, P_OUTSIDER)
            .iter()
            .any(|&(g, _)| g == normal)
    );

    // Normal group: only the creator (or the server, user 0) may change members.
    assert_refused(&change(&mut f.c, P_MEMBER, ADD, normal, &[P_OUTSIDER]));
    assert_refused(&change(&mut f.c, P_MEMBER, DEL, normal, &[P_OWNER]));
    assert_refused(&change(&mut f.c, P_OUTSIDER, ADD, normal, &[P_OUTSIDER]));
    assert_eq!(group_row(&mut f.db, normal).map(|r| r.4), Some(1));
    let rsp = change(&mut f.c, 0, DEL, normal, &[P_MEMBER]);
    assert_eq!(rsp.result_code, 0);
    assert_eq!(rsp.cur_user_id_list, vec![P_OWNER]);
    assert!(
        !normal_list(&mut f.c, P_MEMBER)
            .iter()
            .any(|&(g, _)| g == normal)
    );
    assert!(normal_list(&mut f.c, P_OWNER).contains(&(normal, 2)));

    // Temporary group: anyone may add (the original's rule), only the creator remove.
    let tmp = f.create_ok(P_OWNER, "perm-tmp", &[P_OWNER, P_MEMBER]);
    assert_refused(&change(&mut f.c, P_MEMBER, DEL, tmp, &[P_OWNER]));
    let rsp = change(&mut f.c, P_OUTSIDER, ADD, tmp, &[P_OUTSIDER]);
    assert_eq!(rsp.result_code, 0);
    assert_eq!(rsp.chg_user_id_list, vec![P_OUTSIDER]);
    // Adding only members already in changes nothing: result 1, version unchanged.
    assert_refused(&change(
        &mut f.c,
        P_OWNER,
        ADD,
        tmp,
        &[P_MEMBER, P_OUTSIDER],
    ));
    assert_eq!(group_row(&mut f.db, tmp).map(|r| r.4), Some(2));
    let rsp = change(&mut f.c, P_OWNER, DEL, tmp, &[P_OUTSIDER, P_MEMBER]);
    assert_eq!(rsp.result_code, 0);
    assert_eq!(rsp.chg_user_id_list, vec![P_MEMBER, P_OUTSIDER]);
    assert_eq!(rsp.cur_user_id_list, vec![P_OWNER]);
    assert_eq!(group_row(&mut f.db, tmp), Some((P_OWNER, 2, 1, 0, 3)));

    // A group that does not exist: no reply to a change.
    no_reply(
        &mut f.c,
        &pdu(&change_req(P_OWNER, ADD, NO_GROUP, &[P_MEMBER])),
    );
}

#[test]
fn push_shield_set_and_get() {
    let mut f = Fixture::start("dbp-groups-shield", &[S_A, S_B]);
    let mut set = redis_conn(GROUP_SET_DB);
    let g = f.create_ok(S_A, "shield", &[S_A, S_B]);

    assert_eq!(
        get_shield(&mut f.c, g, &[S_B, S_A, S_OUTSIDER]),
        vec![0, 0, 0]
    );
    assert_eq!(shield(&mut f.c, S_A, g, 1), 0);
    // A non-member is refused and nothing is stored for it.
    assert_eq!(shield(&mut f.c, S_OUTSIDER, g, 1), 1);
    assert_eq!(
        get_shield(&mut f.c, g, &[S_B, S_A, S_OUTSIDER]),
        vec![0, 1, 0]
    );
    let stored: Option<String> = redis::cmd("HGET")
        .arg(format!("group_set_{g}"))
        .arg(format!("{S_A}_1"))
        .query(&mut set)
        .expect("hget");
    assert_eq!(stored.as_deref(), Some("1"));
    let outsider: Option<String> = redis::cmd("HGET")
        .arg(format!("group_set_{g}"))
        .arg(format!("{S_OUTSIDER}_1"))
        .query(&mut set)
        .expect("hget");
    assert_eq!(outsider, None);
    // Group info shows the requester's own shield.
    assert_eq!(info_of(&mut f.c, S_A, g).shield_status, 1);
    assert_eq!(info_of(&mut f.c, S_B, g).shield_status, 0);
    assert_eq!(shield(&mut f.c, S_A, g, 0), 0);
    assert_eq!(get_shield(&mut f.c, g, &[S_A]), vec![0]);

    // Unknown group: no reply to either.
    no_reply(&mut f.c, &pdu(&shield_req(S_A, NO_GROUP, 1)));
    no_reply(&mut f.c, &pdu(&get_shield_req(NO_GROUP, &[S_A])));
}

#[test]
fn group_messages_of_members_and_others() {
    let mut f = Fixture::start("dbp-groups-msg", &[M_SENDER, M_READER]);
    let g = f.create_ok(M_SENDER, "messages", &[M_SENDER, M_READER]);

    let m1 = send_ok(&mut f.c, M_SENDER, g, "one");
    let m2 = send_ok(&mut f.c, M_SENDER, g, "two");
    assert_eq!((m1, m2), (1, 2));
    assert_eq!(group_unread(&mut f.c, M_READER, g), Some(2));
    assert_eq!(group_unread(&mut f.c, M_SENDER, g), None);
    // A non-member's message gets no reply and is not stored.
    no_reply(&mut f.c, &pdu(&group_msg(M_OUTSIDER, g, "let me in")));
    let rows: Vec<(u32, u32)> =
        f.db.exec(
            format!(
                "SELECT userId, msgId FROM IMGroupMessage_{} WHERE groupId=? ORDER BY msgId",
                g % 8
            ),
            (g,),
        )
        .expect("messages");
    assert_eq!(rows, vec![(M_SENDER, 1), (M_SENDER, 2)]);

    // Once removed, the reader's messages are refused too.
    assert_eq!(
        change(&mut f.c, M_SENDER, DEL, g, &[M_READER]).result_code,
        0
    );
    no_reply(&mut f.c, &pdu(&group_msg(M_READER, g, "still here?")));
}

#[test]
fn membership_lost_by_redis_is_rebuilt_from_mysql() {
    let mut f = Fixture::start("dbp-groups-rebuild", &[R_SENDER, R_READER]);
    let g = f.create_ok(R_SENDER, "rebuild", &[R_SENDER, R_READER]);
    assert_eq!(send_ok(&mut f.c, R_SENDER, g, "before"), 1);

    // Redis loses the member hash (an empty restart, an older snapshot): the next message of a
    // member is stored all the same, and the hash holds the members again.
    let mut members = redis_conn(GROUP_MEMBER_DB);
    let _: () = redis::cmd("DEL")
        .arg(format!("group_member_{g}"))
        .query(&mut members)
        .expect("deleting the member hash");
    assert_eq!(send_ok(&mut f.c, R_READER, g, "after"), 2);
    assert_eq!(redis_members(&mut members, g), vec![R_SENDER, R_READER]);
    let mut expected = vec![R_SENDER, R_READER];
    expected.sort_by_key(|id| id.to_string());
    assert_eq!(info_of(&mut f.c, R_SENDER, g).group_member_list, expected);
}

#[test]
fn a_group_whose_members_all_leave() {
    let mut f = Fixture::start("dbp-groups-empty", &[L_A, L_B]);
    let mut members = redis_conn(GROUP_MEMBER_DB);
    let g = f.create_ok(L_A, "empty", &[L_A, L_B]);

    let rsp = change(&mut f.c, L_A, DEL, g, &[L_A, L_B]);
    assert_eq!(rsp.result_code, 0);
    assert_eq!(rsp.chg_user_id_list, vec![L_A, L_B]);
    assert!(rsp.cur_user_id_list.is_empty());
    // The group stays, with no members: userCnt 0, the next version.
    assert_eq!(group_row(&mut f.db, g), Some((L_A, 2, 0, 0, 2)));
    assert!(redis_members(&mut members, g).is_empty());
    let i = info_of(&mut f.c, L_B, g);
    assert_eq!(i.version, 2);
    assert!(i.group_member_list.is_empty());
    // Nobody may send; the creator may bring members back.
    no_reply(&mut f.c, &pdu(&group_msg(L_A, g, "anyone?")));
    let rsp = change(&mut f.c, L_A, ADD, g, &[L_B]);
    assert_eq!(rsp.result_code, 0);
    assert_eq!(rsp.cur_user_id_list, vec![L_B]);
    assert_eq!(group_row(&mut f.db, g), Some((L_A, 2, 1, 0, 3)));
    assert_eq!(send_ok(&mut f.c, L_B, g, "back"), 1);

    // Emptied again and its row marked deleted (status 1): then it no longer exists.
    assert_eq!(change(&mut f.c, L_A, DEL, g, &[L_B]).result_code, 0);
    f.db.exec_drop("UPDATE IMGroup SET status=1 WHERE id=?", (g,))
        .expect("mark deleted");
    assert!(info(&mut f.c, L_A, &[(g, 0)]).is_empty());
    no_reply(&mut f.c, &pdu(&change_req(L_A, ADD, g, &[L_A])));
}

#[test]
fn bounds_unknown_groups_and_malformed_bodies() {
    let mut f = Fixture::start("dbp-groups-bad", &[BOUNDS]);
    let too_many: Vec<u32> = (0..OVER_MAX).map(|i| PHANTOM + i).collect();

    // Create: too many members, no members, no name.
    let name = fresh_name("too-many");
    let rsp = create(&mut f.c, BOUNDS, GroupType::Tmp, &name, &too_many);
    assert_eq!((rsp.result_code, rsp.group_id), (1, None));
    assert!(rsp.user_id_list.is_empty());
    let made: Option<u32> =
        f.db.exec_first("SELECT COUNT(*) FROM IMGroup WHERE name=?", (&name,))
            .expect("count");
    assert_eq!(made, Some(0));
    let rsp = create(&mut f.c, BOUNDS, GroupType::Tmp, &fresh_name("nobody"), &[]);
    assert_eq!((rsp.result_code, rsp.group_id), (1, None));
    let rsp = create(&mut f.c, BOUNDS, GroupType::Tmp, b"", &[BOUNDS]);
    assert_eq!((rsp.result_code, rsp.group_id), (1, None));
    assert_eq!(rsp.user_id_list, vec![BOUNDS]);

    // Change: a list past the bound, and an add that would take the group past it.
    let g = f.create_ok(BOUNDS, "bounds", &[BOUNDS]);
    assert_refused(&change(&mut f.c, BOUNDS, ADD, g, &too_many));
    assert_refused(&change(&mut f.c, BOUNDS, ADD, g, &too_many[..1000]));
    assert_eq!(group_row(&mut f.db, g), Some((BOUNDS, 2, 1, 0, 1)));
    // Shield query past the bound: no reply; info past its bound: an empty list.
    no_reply(&mut f.c, &pdu(&get_shield_req(g, &too_many)));
    let asked: Vec<(u32, u32)> = (0..OVER_MAX).map(|i| (g + i, 0)).collect();
    assert!(info(&mut f.c, BOUNDS, &asked).is_empty());

    // Malformed bodies (not protobuf, required fields missing, undeclared enum values): no
    // reply, the connection goes on.
    let garbage = [0xff, 0xff, 0xff, 0xff];
    no_reply(&mut f.c, &raw::<ImNormalGroupListReq>(&garbage));
    no_reply(&mut f.c, &raw::<ImNormalGroupListReq>(&[]));
    no_reply(&mut f.c, &raw::<ImGroupInfoListReq>(&garbage));
    no_reply(&mut f.c, &raw::<ImGroupInfoListReq>(&[]));
    no_reply(&mut f.c, &raw::<ImGroupCreateReq>(&garbage));
    no_reply(&mut f.c, &raw::<ImGroupCreateReq>(&[]));
    no_reply(&mut f.c, &raw::<ImGroupChangeMemberReq>(&garbage));
    no_reply(&mut f.c, &raw::<ImGroupChangeMemberReq>(&[]));
    no_reply(&mut f.c, &raw::<ImGroupShieldReq>(&garbage));
    no_reply(&mut f.c, &raw::<ImGroupShieldReq>(&[]));
    no_reply(&mut f.c, &raw::<ImGroupGetShieldReq>(&garbage));
    no_reply(&mut f.c, &raw::<ImGroupGetShieldReq>(&[]));
    let bad_type = ImGroupCreateReq {
        user_id: BOUNDS,
        group_type: 9,
        group_name: fresh_name("bad-type"),
        group_avatar: Vec::new(),
        member_id_list: vec![BOUNDS],
        attach_data: None,
    };
    no_reply(&mut f.c, &pdu(&bad_type));
    let mut bad_change = change_req(BOUNDS, ADD, g, &[BOUNDS]);
    bad_change.change_type = 9;
    no_reply(&mut f.c, &pdu(&bad_change));
    // Still serving, the group untouched.
    assert_eq!(info_of(&mut f.c, BOUNDS, g).group_member_list, vec![BOUNDS]);
}
