//! Groups end to end: db_proxy_server, route_server, login_server and two msg_servers spawned
//! as processes, the project-local MariaDB and Redis, clients from `tt_client`. Group
//! management (create, list, info, members, shield), group messages (delivery on both
//! msg_servers, ack, unread, history, read acks), a 50-member group, bad input, and what is
//! left in the database after a db_proxy restart.
//!
//! The users are those of `tt_testkit::users::GROUPS`, split between the tests (each takes its
//! own slice, so they can run in parallel). Every run creates fresh groups, so the database may
//! keep what earlier runs left.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mysql::prelude::Queryable;
use redis::Commands;
use tt_client::tt_proto::ids::cid;
use tt_client::tt_proto::pb::message::ImMsgDataAck;
use tt_client::{
    Client, ClientType, Event, GroupModifyType, GroupType, GroupVersionInfo, Message, MsgCipher,
    MsgType, Session, UnreadSession,
};
use tt_proto::pb::group::{
    ImGroupChangeMemberReq, ImGroupChangeMemberRsp, ImGroupCreateReq, ImGroupCreateRsp,
    ImGroupInfoListReq, ImGroupInfoListRsp, ImGroupShieldReq, ImGroupShieldRsp,
    ImNormalGroupListReq, ImNormalGroupListRsp,
};
use tt_proto::pb::message::ImMsgData;
use tt_proto::values::{RESULT_FAILED as FAILED, RESULT_OK as OK};
use tt_testkit::Stack;
use tt_testkit::stack::LIMIT;
use tt_testkit::users::GROUPS;

mod live_client;
use live_client::{WAIT, closes_on, login_at, next_group_change, restart_db_proxy};

/// `GroupModifyType` values as the change events carry them.
const ADD: i32 = GroupModifyType::Add as i32;
const DEL: i32 = GroupModifyType::Del as i32;

/// `N` users of the test's slice of `GROUPS`, from its index `first` on.
fn users<const N: usize>(first: u32) -> [u32; N] {
    std::array::from_fn(|i| GROUPS.id(first + i as u32))
}

/// A group name no earlier run used.
fn fresh_name(tag: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{tag}-{}-{nanos}", std::process::id())
}

/// Creates a temporary group of `members` and returns its id.
fn create_group(c: &mut Client, tag: &str, members: &[u32]) -> u32 {
    let name = fresh_name(tag);
    let created = c.create_group(&name, "", members).expect("create reply");
    assert_eq!(created.result_code, OK, "{created:?}");
    assert_eq!(created.group_name, name.as_bytes());
    let mut sorted = members.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(created.members, sorted, "the members, ascending");
    created.group_id.expect("a created group has an id")
}

/// A request msg_server answers itself: whatever it sent this connection before has arrived
/// (and is queued as events) once this returns.
fn barrier(c: &mut Client) {
    c.server_time().expect("time reply");
}

/// A request db_proxy does not answer: once its log has `line` (db_proxy saying so, the event
/// waited for), nothing but events may have reached `c`.
fn unanswered(stack: &mut Stack, c: &mut Client, line: &str) {
    let db = stack.db_proxy.as_mut().expect("db_proxy running");
    assert!(db.wait_for_line(line, LIMIT), "{}", db.recent_log());
    barrier(c);
    let other = c.wait_for(Duration::ZERO, |e| matches!(e, Event::Other(_)));
    assert!(matches!(other, Ok(None)), "user {}: {other:?}", c.user_id());
}

/// True if a member-change event of `group` is queued (after a [`barrier`]).
fn has_change(c: &mut Client, group: u32) -> bool {
    let e = c.wait_for(
        Duration::ZERO,
        |e| matches!(e, Event::GroupMembersChanged { group_id, .. } if *group_id == group),
    );
    matches!(e, Ok(Some(_)))
}

/// The next message of `group`.
fn next_group_message(c: &mut Client, group: u32) -> Message {
    let e = c.wait_for(
        WAIT,
        |e| matches!(e, Event::Message(m) if m.to == group && m.is_group()),
    );
    match e {
        Ok(Some(Event::Message(m))) => m,
        other => panic!(
            "user {}: no message of group {group}: {other:?}",
            c.user_id()
        ),
    }
}

/// Every message of `group` already queued (after a [`barrier`]).
fn queued_group_messages(c: &mut Client, group: u32) -> Vec<Message> {
    let mut got = Vec::new();
    while let Ok(Some(Event::Message(m))) = c.wait_for(
        Duration::ZERO,
        |e| matches!(e, Event::Message(m) if m.to == group),
    ) {
        got.push(m);
    }
    got
}

/// The unread entry of `group` (None: nothing unread there).
fn group_unread(c: &mut Client, group: u32) -> Option<UnreadSession> {
    let unread = c.unread_counts().expect("unread counts");
    unread.sessions.into_iter().find(|u| u.session_id == group)
}

#[test]
fn create_list_info_members_and_shield() {
    let mut stack = Stack::builder("groups-manage").msg_servers(2).start();
    let [creator, m1, m2, newcomer, leaver, outsider] = users(0);
    let mut c = login_at(&stack, 0, creator, ClientType::Windows);
    // The creator's other device, on the other msg_server.
    let mut c_phone = login_at(&stack, 1, creator, ClientType::Android);
    let mut a = login_at(&stack, 0, m1, ClientType::Windows);
    let mut b = login_at(&stack, 1, m2, ClientType::Mac);
    let mut n = login_at(&stack, 1, newcomer, ClientType::Windows);
    let mut l = login_at(&stack, 0, leaver, ClientType::Windows);
    let mut o = login_at(&stack, 0, outsider, ClientType::Windows);

    let members = [creator, m1, m2, leaver];
    let g = create_group(&mut c, "manage", &members);

    // Group info from a member on the other msg_server: the record and the members.
    let infos = b.group_info(&[g]).expect("group info");
    assert_eq!(infos.len(), 1, "{infos:?}");
    let info = &infos[0];
    assert_eq!(info.group_id, g);
    assert_eq!(info.group_creator_id, creator);
    assert_eq!(info.group_type, GroupType::Tmp as i32);
    assert!(info.group_name.starts_with(b"manage-"));
    assert_eq!(info.group_member_list, members);
    // The version rule: a group is listed only when its version is above the one known.
    let known = [GroupVersionInfo {
        group_id: g,
        version: info.version,
    }];
    assert!(b.group_info_since(&known).expect("info").is_empty());
    // A temporary group is not a normal group.
    let normal = c.normal_groups().expect("normal list");
    assert!(normal.iter().all(|v| v.group_id != g), "{normal:?}");

    // Adding a member: the reply, then one notify for every member old and new, on both
    // msg_servers, and the requester's other device; not the requesting connection.
    let added = c.add_group_members(g, &[newcomer]).expect("add reply");
    assert_eq!(added.result_code, OK, "{added:?}");
    assert_eq!(added.changed, [newcomer]);
    let after_add = vec![creator, m1, m2, newcomer, leaver];
    assert_eq!(added.current, after_add);
    for x in [&mut c_phone, &mut a, &mut b, &mut n, &mut l] {
        let change = next_group_change(x, g);
        assert_eq!(change, (creator, ADD, after_add.clone(), vec![newcomer]));
    }
    let infos = n.group_info(&[g]).expect("info");
    assert_eq!(infos[0].group_member_list, after_add);
    assert!(
        infos[0].version > info.version,
        "a change raises the version"
    );

    // Removing a member: the removed one is told too.
    let removed = c.remove_group_members(g, &[leaver]).expect("remove reply");
    assert_eq!(removed.result_code, OK, "{removed:?}");
    let after_del = vec![creator, m1, m2, newcomer];
    assert_eq!(
        (removed.current.clone(), removed.changed),
        (after_del.clone(), vec![leaver])
    );
    for x in [&mut c_phone, &mut a, &mut b, &mut n, &mut l] {
        // The next change event is this one: the add was told once.
        let change = next_group_change(x, g);
        assert_eq!(change, (creator, DEL, after_del.clone(), vec![leaver]));
    }
    barrier(&mut c);
    assert!(
        !has_change(&mut c, g),
        "the requesting connection gets the reply only"
    );
    for x in [&mut c_phone, &mut a, &mut l] {
        barrier(x);
        assert!(
            !has_change(x, g),
            "user {}: one notify per change",
            x.user_id()
        );
    }

    // Only the creator removes members; anyone adds to a temporary group.
    let refused = a.remove_group_members(g, &[m2]).expect("remove reply");
    assert_eq!(refused.result_code, FAILED, "{refused:?}");
    barrier(&mut b);
    assert!(!has_change(&mut b, g), "a refused change is not told");

    // Push shield of the group: members only; stored per user.
    assert_eq!(a.shield_group(g, true).expect("shield"), OK);
    assert_eq!(
        l.shield_group(g, true).expect("shield"),
        FAILED,
        "no longer a member"
    );
    assert_eq!(
        o.shield_group(g, true).expect("shield"),
        FAILED,
        "never a member"
    );
    assert_eq!(stored_shield(&stack, g, m1).as_deref(), Some("1"));
    assert_eq!(a.shield_group(g, false).expect("unshield"), OK);
    assert_eq!(stored_shield(&stack, g, m1).as_deref(), Some("0"));

    // Creating: a normal group is refused, so are an empty member list and one over the bound.
    let normal = c
        .create_group_of_type(GroupType::Normal, &fresh_name("normal"), "", &[creator])
        .expect("create reply");
    assert_eq!((normal.result_code, normal.group_id), (FAILED, None));
    let empty = c
        .create_group(&fresh_name("empty"), "", &[])
        .expect("create reply");
    assert_eq!(empty.result_code, FAILED);
    let crowd: Vec<u32> = (1..=5000).collect();
    let crowd_rsp = c
        .create_group(&fresh_name("crowd"), "", &crowd)
        .expect("create reply");
    assert_eq!((crowd_rsp.result_code, crowd_rsp.group_id), (FAILED, None));
    let more = c.add_group_members(g, &crowd).expect("add reply");
    assert_eq!(more.result_code, FAILED, "thousands of ids are refused");
    assert_eq!(
        c.group_info(&[g]).expect("info")[0].group_member_list,
        after_del
    );

    // A normal group made on the admin side is listed for its members.
    let normal_id = admin_normal_group(&stack, &[m1, m2]);
    let listed = a.normal_groups().expect("normal list");
    assert!(listed.iter().any(|v| v.group_id == normal_id), "{listed:?}");
    assert!(
        o.normal_groups()
            .expect("normal list")
            .iter()
            .all(|v| v.group_id != normal_id)
    );

    // Unknown groups: left out of group info; no reply to a change or a shield (db_proxy says
    // so in its log, which is the event waited for here).
    let nowhere = u32::MAX - 7;
    assert!(a.group_info(&[nowhere]).expect("info").is_empty());
    a.send_command(&ImGroupChangeMemberReq {
        user_id: m1,
        change_type: ADD,
        group_id: nowhere,
        member_id_list: vec![m2],
        attach_data: None,
    })
    .expect("send");
    unanswered(
        &mut stack,
        &mut a,
        &format!("group {nowhere} does not exist"),
    );
}

#[test]
fn group_messages_reach_every_member_on_both_servers_once() {
    let mut stack = Stack::builder("groups-messages").msg_servers(2).start();
    let [alice, bob, carol, dave, eve] = users(10);
    let mut a = login_at(&stack, 0, alice, ClientType::Windows);
    // alice's other device is on the same msg_server (the 50-member test has one on the other).
    let mut a_phone = login_at(&stack, 0, alice, ClientType::Android);
    let mut b = login_at(&stack, 0, bob, ClientType::Windows);
    let mut c = login_at(&stack, 1, carol, ClientType::Windows);
    let mut e = login_at(&stack, 0, eve, ClientType::Windows);
    let g = create_group(&mut a, "messages", &[alice, bob, carol, dave]);
    assert_eq!(a.latest_msg_id(Session::group(g)).expect("latest"), 0);

    // From alice on msg_server 0: bob and alice's phone here, carol there.
    let first = a.send_group_text(g, "hello group").expect("ack");
    assert_eq!(
        (first.session_id, first.session_type, first.msg_id),
        (g, Session::group(g).kind as i32, 1)
    );
    for x in [&mut b, &mut c, &mut a_phone] {
        let m = next_group_message(x, g);
        assert_eq!((m.from, m.msg_id), (alice, 1), "user {}", x.user_id());
        assert_eq!(m.text.as_deref(), Some("hello group"));
    }
    // bob got it: msg_server 0 has delivered it to everyone there, so it is not on its way to
    // the sending connection either.
    barrier(&mut a);
    assert!(
        queued_group_messages(&mut a, g).is_empty(),
        "never back to the sender"
    );

    // From carol on msg_server 1.
    let second = c
        .send_group_text(g, "hi from the other server")
        .expect("ack");
    assert_eq!(second.msg_id, 2);
    for x in [&mut a, &mut b, &mut a_phone] {
        let m = next_group_message(x, g);
        assert_eq!((m.from, m.msg_id), (carol, 2), "user {}", x.user_id());
    }
    // Each exactly once: the next message of the group is the next one sent.
    let third = b.send_group_text(g, "third").expect("ack");
    for x in [&mut a, &mut c, &mut a_phone] {
        let m = next_group_message(x, g);
        assert_eq!(
            (m.from, m.msg_id),
            (bob, third.msg_id),
            "user {}",
            x.user_id()
        );
    }
    for x in [&mut a, &mut b, &mut c, &mut a_phone] {
        barrier(x);
        assert!(
            queued_group_messages(x, g).is_empty(),
            "user {}",
            x.user_id()
        );
    }

    // A non-member's message is neither acked nor delivered nor stored.
    e.send_msg_nowait(g, MsgType::GroupText, b"not a member".to_vec())
        .expect("send");
    unanswered(
        &mut stack,
        &mut e,
        &format!("{eve} is not a member of group {g}"),
    );
    assert_eq!(
        a.latest_msg_id(Session::group(g)).expect("latest"),
        third.msg_id
    );
    for x in [&mut a, &mut b, &mut c] {
        barrier(x);
        assert!(
            queued_group_messages(x, g).is_empty(),
            "user {}",
            x.user_id()
        );
    }

    // dave was offline: three unread, the latest is bob's; history newest first, by id, and
    // paged.
    let mut d = login_at(&stack, 1, dave, ClientType::Windows);
    let mut d_phone = login_at(&stack, 0, dave, ClientType::Ios);
    let unread = group_unread(&mut d, g).expect("an unread entry for the group");
    assert_eq!(unread.unread_cnt, 3);
    assert_eq!(unread.session_type, Session::group(g).kind as i32);
    assert_eq!(
        (unread.latest.msg_id, unread.latest.from),
        (third.msg_id, bob)
    );
    assert_eq!(unread.latest.text.as_deref(), Some("third"));
    let history = d.get_msg_list(Session::group(g), 0, 10).expect("history");
    let got: Vec<(u32, u32)> = history.iter().map(|m| (m.msg_id, m.from)).collect();
    assert_eq!(got, [(3, bob), (2, carol), (1, alice)]);
    assert_eq!(history[1].text.as_deref(), Some("hi from the other server"));
    let page = d
        .get_msg_list(Session::group(g), 2, 1)
        .expect("history page");
    assert_eq!(page.iter().map(|m| m.msg_id).collect::<Vec<_>>(), [2]);
    let by_id = d.get_msgs_by_id(Session::group(g), &[1, 3]).expect("by id");
    let mut ids: Vec<u32> = by_id.iter().map(|m| m.msg_id).collect();
    ids.sort_unstable();
    assert_eq!(ids, [1, 3]);
    assert_eq!(d.latest_msg_id(Session::group(g)).expect("latest"), 3);

    // A read ack clears the count and tells dave's other device.
    d.read_ack(Session::group(g), 3).expect("read ack");
    match d_phone.wait_for(WAIT, |ev| matches!(ev, Event::ReadNotify { .. })) {
        Ok(Some(Event::ReadNotify {
            user_id,
            session_id,
            msg_id,
            session_type,
        })) => assert_eq!(
            (user_id, session_id, msg_id, session_type),
            (dave, g, 3, Session::group(g).kind as i32)
        ),
        other => panic!("no read notify: {other:?}"),
    }
    // The read ack has no reply: poll until db_proxy has stored it (bounded).
    let deadline = Instant::now() + LIMIT;
    let cleared = loop {
        if group_unread(&mut d, g).is_none() {
            break true;
        }
        if Instant::now() >= deadline {
            break false;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(cleared, "the group's unread count never went to 0");
}

#[test]
fn a_fifty_member_group_across_two_servers() {
    let stack = Stack::builder("groups-fifty").msg_servers(2).start();
    let members: [u32; 50] = users(20);
    let (online, offline) = members.split_at(30);
    // Senders: two on each msg_server; alice also has a phone on the other one.
    let senders = [online[0], online[1], online[15], online[16]];
    let mut clients: BTreeMap<u32, Client> = BTreeMap::new();
    for (i, &u) in online.iter().enumerate() {
        clients.insert(u, login_at(&stack, i / 15, u, ClientType::Windows));
    }
    let mut phone = login_at(&stack, 1, senders[0], ClientType::Android);
    let creator = clients.get_mut(&senders[0]).expect("creator");
    let g = create_group(creator, "fifty", &members);

    // 20 messages, five from each sender: four each with the senders at the same time (each
    // sender waits for its ack before its next message), then the fifth of each in turn, so
    // that the last one stored is known.
    let mut threads = Vec::new();
    for &s in &senders {
        let mut c = clients.remove(&s).expect("sender");
        threads.push(std::thread::spawn(move || {
            let acks: Vec<u32> = (0..4).map(|k| send_numbered(&mut c, g, k)).collect();
            (s, c, acks)
        }));
    }
    let mut sent: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    for t in threads {
        let (s, c, acks) = t.join().expect("sender thread");
        clients.insert(s, c);
        sent.insert(s, acks);
    }
    let mut last = (0, 0);
    for &s in &senders {
        let c = clients.get_mut(&s).expect("sender");
        let id = send_numbered(c, g, 4);
        sent.get_mut(&s).expect("sender").push(id);
        last = (id, s);
    }
    let (last, last_sender) = last;
    let mut all_ids: Vec<u32> = sent.values().flatten().copied().collect();
    all_ids.sort_unstable();
    assert_eq!(
        all_ids,
        (1..=20).collect::<Vec<_>>(),
        "20 stored messages, ids 1..=20"
    );
    assert_eq!(last, 20);

    // Offline members: 20 unread, the latest message the last one stored.
    for &u in offline {
        let mut c = login_at(&stack, (u % 2) as usize, u, ClientType::Windows);
        let unread = group_unread(&mut c, g).expect("an unread entry for the group");
        assert_eq!(unread.unread_cnt, 20, "user {u}");
        assert_eq!(
            (unread.latest.msg_id, unread.latest.from),
            (last, last_sender)
        );
        assert_eq!(
            unread.latest.text,
            Some(format!("{last_sender}:{}", sent[&last_sender].len() - 1))
        );
        c.logout().expect("logout");
    }

    // Each sender ends with a marker: a member has everything of a sender once that sender's
    // marker arrived (one sender's messages reach a member in order, so a duplicate of an earlier
    // one would have come before it).
    for s in senders {
        let c = clients.get_mut(&s).expect("sender");
        c.send_group_text(g, &format!("{s}:end")).expect("ack");
    }
    for (&u, c) in clients.iter_mut() {
        let others: Vec<u32> = senders.iter().copied().filter(|&s| s != u).collect();
        check_senders(u, c, g, &sent, &others);
        if senders.contains(&u) {
            barrier(c);
            let own = queued_group_messages(c, g);
            assert!(
                own.iter().all(|m| m.from != u),
                "user {u} got its own message back"
            );
        }
    }
    // The phone of the first sender gets its messages too.
    let mut all = senders.to_vec();
    all.sort_unstable();
    check_senders(senders[0], &mut phone, g, &sent, &all);
}

/// Messages sent in bursts (many in flight at once, so that several wait together for their
/// group's members) reach every member once and in order; a member added between two
/// messages gets the second one, a member removed between them does not.
#[test]
fn bursts_and_members_changed_between_messages() {
    // No per-connection message limit: a burst is sent at once.
    let stack = Stack::builder("groups-bursts")
        .msg_servers(2)
        .msg_conf_extra("MsgRateLimit=0\n")
        .start();
    let [alice, bob, carol, dave, newcomer] = users(73);
    let mut a = login_at(&stack, 0, alice, ClientType::Windows);
    let mut a_phone = login_at(&stack, 1, alice, ClientType::Android);
    let mut b = login_at(&stack, 0, bob, ClientType::Windows);
    let c = login_at(&stack, 1, carol, ClientType::Windows);
    let mut d = login_at(&stack, 1, dave, ClientType::Windows);
    let mut n = login_at(&stack, 1, newcomer, ClientType::Windows);
    let g = create_group(&mut a, "bursts", &[alice, bob, carol, dave]);

    // alice here and carol there each send 30 messages without waiting for an ack.
    const BURST: usize = 30;
    let mut sent: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    let mut bursts = Vec::new();
    for (s, mut x) in [(alice, a), (carol, c)] {
        bursts.push(std::thread::spawn(move || {
            let ids = send_burst(&mut x, g, BURST);
            (s, x, ids)
        }));
    }
    let mut senders = Vec::new();
    for t in bursts {
        let (s, x, ids) = t.join().expect("burst thread");
        sent.insert(s, ids);
        senders.push(x);
    }
    let (mut a, mut c) = (senders.remove(0), senders.remove(0));
    for x in [&mut a, &mut c] {
        let me = x.user_id();
        x.send_group_text(g, &format!("{me}:end")).expect("ack");
    }
    // Pipelined messages may be stored in another order than sent (several db_proxy links):
    // every member gets each message once, and a sender's messages in one order everywhere.
    let mut orders: BTreeMap<u32, Vec<Vec<(u32, String)>>> = BTreeMap::new();
    let expect = |s: u32| -> Vec<(u32, String)> {
        let mut m: Vec<(u32, String)> = sent[&s]
            .iter()
            .enumerate()
            .map(|(k, &id)| (id, format!("{s}:{k}")))
            .collect();
        m.sort_unstable();
        m
    };
    let mut receivers: Vec<(&mut Client, Vec<u32>)> = vec![
        (&mut a, vec![carol]),
        (&mut c, vec![alice]),
        (&mut b, vec![alice, carol]),
        (&mut d, vec![alice, carol]),
        (&mut a_phone, vec![alice, carol]),
    ];
    for (x, from) in receivers.iter_mut() {
        let who = x.user_id();
        let got = received_until_ends(x, g, from);
        for (s, msgs) in got {
            let mut sorted = msgs.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, expect(s), "user {who} from {s}: each message once");
            orders.entry(s).or_default().push(msgs);
        }
    }
    for (s, seen) in &orders {
        assert!(
            seen.windows(2).all(|w| w[0] == w[1]),
            "the messages of {s} in one order at every member: {seen:?}"
        );
    }
    for x in [&mut a, &mut c] {
        barrier(x);
        let own = queued_group_messages(x, g);
        assert!(own.is_empty(), "user {}: {own:?}", x.user_id());
    }
    barrier(&mut n);
    assert!(
        queued_group_messages(&mut n, g).is_empty(),
        "not a member yet"
    );

    // newcomer joins: carol's next message reaches it.
    let added = a.add_group_members(g, &[newcomer]).expect("add reply");
    assert_eq!(added.result_code, OK, "{added:?}");
    let hello = c.send_group_text(g, "welcome").expect("ack");
    let m = next_group_message(&mut n, g);
    assert_eq!((m.from, m.msg_id), (carol, hello.msg_id));
    assert_eq!(next_group_message(&mut d, g).msg_id, hello.msg_id);

    // dave leaves: bob's next message reaches newcomer (on dave's msg_server), not dave.
    let removed = a.remove_group_members(g, &[dave]).expect("remove reply");
    assert_eq!(removed.result_code, OK, "{removed:?}");
    let bye = b.send_group_text(g, "after dave").expect("ack");
    let m = next_group_message(&mut n, g);
    assert_eq!((m.from, m.msg_id), (bob, bye.msg_id));
    barrier(&mut d);
    assert!(
        queued_group_messages(&mut d, g).is_empty(),
        "a removed member gets nothing more"
    );
}

/// Sends messages `0..count` of this sender to `group` (texts `<sender>:<k>`) without waiting
/// for their acks, then collects the acks; returns the msg ids in sending order.
fn send_burst(c: &mut Client, group: u32, count: usize) -> Vec<u32> {
    let cipher = MsgCipher::default();
    let me = c.user_id();
    let mut seqs = BTreeMap::new();
    for k in 0..count {
        let data = cipher
            .encrypt(format!("{me}:{k}").as_bytes())
            .expect("encrypt");
        let seq = c
            .send_msg_nowait(group, MsgType::GroupText, data)
            .expect("send");
        seqs.insert(seq, k);
    }
    let mut ids = vec![0; count];
    for _ in 0..count {
        let ev = c
            .wait_for(
                WAIT,
                |e| matches!(e, Event::Other(p) if p.header.command_id == cid::CID_MSG_DATA_ACK),
            )
            .expect("waiting for an ack");
        let Some(Event::Other(pdu)) = ev else {
            panic!("user {me}: an ack missing");
        };
        let ack: ImMsgDataAck = pdu.decode_body().expect("ack decodes");
        let k = seqs
            .remove(&pdu.header.seq_num)
            .expect("the ack of a message sent");
        assert_ne!(ack.msg_id, 0, "user {me}: message {k} stored");
        ids[k] = ack.msg_id;
    }
    ids
}

/// Reads the messages of `group` until the end marker of each of `from` arrived; returns the
/// others by sender, (msg id, text) in the order received. Nothing from anyone else may come.
fn received_until_ends(
    c: &mut Client,
    group: u32,
    from: &[u32],
) -> BTreeMap<u32, Vec<(u32, String)>> {
    let who = c.user_id();
    let mut got: BTreeMap<u32, Vec<(u32, String)>> = BTreeMap::new();
    let mut ended = 0;
    while ended < from.len() {
        let m = next_group_message(c, group);
        assert!(
            from.contains(&m.from),
            "user {who}: a message of {}",
            m.from
        );
        let text = m.text.unwrap_or_default();
        if text.ends_with(":end") {
            ended += 1;
        } else {
            got.entry(m.from).or_default().push((m.msg_id, text));
        }
    }
    got
}

/// Sends message number `k` of this sender to `group` (text `<sender>:<k>`); returns its id.
fn send_numbered(c: &mut Client, group: u32, k: usize) -> u32 {
    let text = format!("{}:{k}", c.user_id());
    c.send_group_text(group, &text).expect("ack").msg_id
}

/// Reads the messages of `group` at member `who` until the end marker of each of
/// `expect_from` arrived, and checks that it got every message each of them sent
/// (`sent[sender]`: the msg ids, in sending order), once and in order, and nothing else.
fn check_senders(
    who: u32,
    c: &mut Client,
    group: u32,
    sent: &BTreeMap<u32, Vec<u32>>,
    expect_from: &[u32],
) {
    let mut got: BTreeMap<u32, Vec<(u32, String)>> = BTreeMap::new();
    let mut ended: Vec<u32> = Vec::new();
    while ended.len() < expect_from.len() {
        let m = next_group_message(c, group);
        let text = m.text.clone().unwrap_or_default();
        if text.ends_with(":end") {
            ended.push(m.from);
        } else {
            got.entry(m.from).or_default().push((m.msg_id, text));
        }
    }
    ended.sort_unstable();
    assert_eq!(ended, expect_from, "user {who}: one marker per sender");
    for &s in expect_from {
        let want: Vec<(u32, String)> = sent[&s]
            .iter()
            .enumerate()
            .map(|(k, &id)| (id, format!("{s}:{k}")))
            .collect();
        assert_eq!(
            got.remove(&s).unwrap_or_default(),
            want,
            "user {who} from {s}"
        );
    }
    assert!(got.is_empty(), "user {who}: messages from others {got:?}");
}

#[test]
fn bad_input_and_what_a_db_proxy_restart_keeps() {
    let mut stack = Stack::builder("groups-bad").msg_servers(2).start();
    let [owner, member, other] = users(70);

    // A body that does not parse closes the client's connection, for every group command:
    // required fields missing, a truncated varint, a change type the protocol does not declare.
    let pc = ClientType::Windows;
    closes_on::<ImNormalGroupListReq, ImNormalGroupListRsp>(&stack, owner, pc, &[]);
    closes_on::<ImGroupInfoListReq, ImGroupInfoListRsp>(&stack, owner, pc, &[0x08]);
    closes_on::<ImGroupCreateReq, ImGroupCreateRsp>(&stack, owner, pc, &[0x08, 0x01]);
    let bad_change = ImGroupChangeMemberReq {
        user_id: owner,
        change_type: 9,
        group_id: 1,
        member_id_list: vec![],
        attach_data: None,
    };
    let bad_change = prost::Message::encode_to_vec(&bad_change);
    closes_on::<ImGroupChangeMemberReq, ImGroupChangeMemberRsp>(&stack, owner, pc, &bad_change);
    closes_on::<ImGroupShieldReq, ImGroupShieldRsp>(&stack, owner, pc, &[0xff, 0xff, 0xff]);
    let mut c = login_at(&stack, 0, owner, ClientType::Windows);
    c.send_command(&ImMsgData {
        from_user_id: owner,
        to_session_id: 1,
        msg_id: 0,
        create_time: 0,
        msg_type: MsgType::GroupText as i32,
        msg_data: vec![],
        attach_data: None,
    })
    .expect("send");
    // An empty message is dropped, and the connection stays.
    barrier(&mut c);

    // What the database keeps across a db_proxy restart: the group, its members, a shield,
    // the messages and the unread count.
    let g = create_group(&mut c, "restart", &[owner, member]);
    let mut o = login_at(&stack, 1, other, ClientType::Windows);
    let added = o.add_group_members(g, &[other]).expect("add reply");
    assert_eq!(added.result_code, OK, "anyone adds to a temporary group");
    assert_eq!(o.shield_group(g, true).expect("shield"), OK);
    let sent = c.send_group_text(g, "kept").expect("ack");
    drop(o);

    restart_db_proxy(&mut stack);
    let mut m = login_at(&stack, 1, member, ClientType::Windows);
    let info = m.group_info(&[g]).expect("info");
    assert_eq!(info.len(), 1, "{info:?}");
    assert_eq!(info[0].group_member_list, [owner, member, other]);
    let unread = group_unread(&mut m, g).expect("unread entry");
    assert_eq!((unread.unread_cnt, unread.latest.msg_id), (1, sent.msg_id));
    let history = m.get_msg_list(Session::group(g), 0, 10).expect("history");
    assert_eq!(
        history
            .iter()
            .map(|x| x.text.as_deref())
            .collect::<Vec<_>>(),
        [Some("kept")]
    );
    assert_eq!(stored_shield(&stack, g, other).as_deref(), Some("1"));
    // Messages still flow: the member's message reaches the owner on the other server.
    let after = m.send_group_text(g, "after the restart").expect("ack");
    let got = next_group_message(&mut c, g);
    assert_eq!((got.from, got.msg_id), (member, after.msg_id));
}

/// The push shield of `user` for `group` as db_proxy stored it (Redis `group_set_<group>`,
/// field `<user>_1`).
fn stored_shield(stack: &Stack, group: u32, user: u32) -> Option<String> {
    redis_conn(stack, 2)
        .hget(format!("group_set_{group}"), format!("{user}_1"))
        .expect("HGET group_set")
}

/// A connection to the Redis database `db` of the stack (its conf: 2 group_set, 5 group_member).
fn redis_conn(stack: &Stack, db: u32) -> redis::Connection {
    redis::Client::open(stack.db.redis_url(db))
        .expect("redis url")
        .get_connection()
        .expect("connect to redis")
}

/// A normal group as the admin side makes one: the `IMGroup` row, the member rows, the
/// members in Redis. Returns its id.
fn admin_normal_group(stack: &Stack, members: &[u32]) -> u32 {
    let opts = mysql::Opts::from_url(&stack.db.mysql_url()).expect("mysql url");
    let mut conn = mysql::Conn::new(opts).expect("connect to mysql");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    conn.exec_drop(
        "INSERT INTO IMGroup (name, avatar, creator, type, userCnt, status, version, \
         lastChated, updated, created) VALUES (?, '', 0, 1, ?, 0, 1, 0, ?, ?)",
        (fresh_name("normal"), members.len(), now, now),
    )
    .expect("insert IMGroup");
    let g = u32::try_from(conn.last_insert_id()).expect("group id");
    let mut redis = redis_conn(stack, 5);
    for &u in members {
        conn.exec_drop(
            "INSERT INTO IMGroupMember (groupId, userId, status, created, updated) \
             VALUES (?, ?, 0, ?, ?)",
            (g, u, now, now),
        )
        .expect("insert IMGroupMember");
        let _: () = redis
            .hset(format!("group_member_{g}"), u, now)
            .expect("HSET group_member");
    }
    g
}
