//! route_server against fake msg_servers: blocking PDU clients (`tt_testkit::PduClient`).
//!
//! Synchronisation: PDUs of one link are handled in order, and everything route_server
//! broadcasts while handling a PDU is queued before it handles the next one. So a users-status
//! query on a link is a barrier: its reply arrives after everything caused by what was sent
//! before it, on any link, whose handling finished before the query was read.

use std::time::Duration;

use tt_proto::Command;
use tt_proto::ids::{cid, sid};
use tt_proto::pb::base_define::ServerUserStat;
use tt_proto::pb::buddy::{ImUserStatNotify, ImUsersStatReq, ImUsersStatRsp};
use tt_proto::pb::server::{
    ImOnlineUserInfo, ImRoleSet, ImServerKickUser, ImServerPcLoginStatusNotify, ImUserStatusUpdate,
};
use tt_proto::pdu::Header;
use tt_proto::prost::Message;
use tt_proto::{Pdu, pdu};
use tt_testkit::{Daemon, PduClient, TempDir, free_port};

const WIN: i32 = 0x01;
const MAC: i32 = 0x02;
const IOS: i32 = 0x11;
const ONLINE: u32 = 1;
const OFFLINE: u32 = 2;
const LEAVE: u32 = 3;

struct Route {
    daemon: Daemon,
    port: u16,
    _dir: TempDir,
}

fn start_route(label: &str) -> Route {
    let dir = TempDir::new(label);
    let port = free_port();
    dir.write(
        "routeserver.conf",
        &format!("# test conf\nListenIP=127.0.0.1\nListenMsgPort={port}\n"),
    );
    let mut daemon = Daemon::spawn("route_server", dir.path(), "routeserver.conf");
    daemon.wait_ready(Duration::from_secs(30));
    assert!(dir.path().join("server.pid").exists());
    Route {
        daemon,
        port,
        _dir: dir,
    }
}

/// A fake msg_server; heartbeats from route_server are not looked at, except where a test
/// asks for them.
struct Link {
    c: PduClient,
}

/// What a link received, decoded enough to compare.
#[derive(Debug, PartialEq, Eq)]
enum Got {
    LoginStatus(u32, u32),
    Buddy(u32, i32),
    Other(Pdu),
}

fn classify(p: Pdu) -> Got {
    match p.header.command_id {
        cid::CID_OTHER_LOGIN_STATUS_NOTIFY => {
            assert_eq!(p.header.service_id, sid::SID_OTHER);
            assert_eq!(p.header.seq_num, 0);
            let m: ImServerPcLoginStatusNotify = p.decode_checked().unwrap();
            Got::LoginStatus(m.user_id, m.login_status)
        }
        cid::CID_BUDDY_LIST_STATUS_NOTIFY => {
            assert_eq!(p.header.service_id, sid::SID_BUDDY_LIST);
            assert_eq!(p.header.seq_num, 0);
            let m: ImUserStatNotify = p.decode_checked().unwrap();
            Got::Buddy(m.user_stat.user_id, m.user_stat.status)
        }
        _ => Got::Other(p),
    }
}

impl Link {
    /// Connects and makes sure route_server has taken the link in (one barrier).
    fn connect(route: &Route) -> Link {
        let mut l = Link {
            c: PduClient::connect(route.port).skipping_heartbeats(),
        };
        assert!(l.barrier().is_empty());
        l
    }

    fn send_bytes(&mut self, b: &[u8]) {
        self.c.send_bytes(b);
    }

    /// Sends `msg` with seq 0, as msg_server does.
    fn send<M: Command>(&mut self, msg: &M) {
        self.c.notify(msg);
    }

    fn update(&mut self, user_id: u32, status: u32, client_type: i32) {
        self.send(&ImUserStatusUpdate {
            user_status: status,
            user_id,
            client_type,
        });
    }

    /// The next PDU that is not a heartbeat.
    fn recv(&mut self) -> Pdu {
        self.c.recv_pdu()
    }

    /// Users-status query with a fresh seq; returns what arrived before the reply, and the reply.
    fn query_with(
        &mut self,
        ids: &[u32],
        attach: Option<&[u8]>,
    ) -> (Vec<Got>, u16, ImUsersStatRsp) {
        let seq = self.c.send(&ImUsersStatReq {
            user_id: 9,
            user_id_list: ids.to_vec(),
            attach_data: attach.map(<[u8]>::to_vec),
        });
        let (before, p) = self.c.recv_until_matching(|p| {
            p.header.command_id == cid::CID_BUDDY_LIST_USERS_STATUS_RESPONSE
                && p.header.seq_num == seq
        });
        assert_eq!(p.header.service_id, sid::SID_BUDDY_LIST);
        let rsp: ImUsersStatRsp = p.decode_checked().unwrap();
        (before.into_iter().map(classify).collect(), seq, rsp)
    }

    /// Everything received before a barrier.
    fn barrier(&mut self) -> Vec<Got> {
        self.query_with(&[], None).0
    }

    /// Statuses of `ids` (after a barrier, so nothing may be pending).
    fn statuses(&mut self, ids: &[u32]) -> Vec<i32> {
        let (before, _, rsp) = self.query_with(ids, None);
        assert!(before.is_empty(), "unexpected: {before:?}");
        assert_eq!(rsp.user_stat_list.len(), ids.len());
        rsp.user_stat_list
            .iter()
            .zip(ids)
            .map(|(s, &id)| {
                assert_eq!(s.user_id, id);
                s.status
            })
            .collect()
    }

    /// Asserts that route_server closes the link (end of stream or reset, not the hang
    /// guard); heartbeats or notifies queued before the close are passed over.
    fn expect_closed(&mut self) {
        self.c.expect_closed();
    }
}

#[test]
fn status_updates_broadcast_by_the_rules() {
    let r = start_route("route-status");
    let mut a = Link::connect(&r);
    let mut b = Link::connect(&r);
    let mut c = Link::connect(&r);
    let u = 1001;

    // First PC login: PC login status 1 and buddy ONLINE to every link, the sender included.
    a.update(u, ONLINE, WIN);
    let both_on = vec![Got::LoginStatus(u, 1), Got::Buddy(u, ONLINE as i32)];
    assert_eq!(a.barrier(), both_on);
    assert_eq!(b.barrier(), both_on);
    assert_eq!(c.barrier(), both_on);

    // A mobile login while a PC is online: login status 1 again, no buddy notify.
    b.update(u, ONLINE, IOS);
    for l in [&mut b, &mut a, &mut c] {
        assert_eq!(l.barrier(), vec![Got::LoginStatus(u, 1)]);
    }

    // A second PC on another msg_server.
    c.update(u, ONLINE, MAC);
    for l in [&mut c, &mut a, &mut b] {
        assert_eq!(l.barrier(), both_on);
    }

    // One PC logs out while another PC remains: nothing at all.
    a.update(u, OFFLINE, WIN);
    for l in [&mut a, &mut b, &mut c] {
        assert_eq!(l.barrier(), vec![]);
    }
    assert_eq!(a.statuses(&[u]), vec![ONLINE as i32]);

    // An OFFLINE for a type that msg_server does not have is no logout (R6).
    a.update(u, OFFLINE, MAC);
    assert_eq!(a.statuses(&[u]), vec![ONLINE as i32]);
    assert_eq!(c.barrier(), vec![]);

    // The last PC goes, a mobile remains: PC login status 0 and buddy OFFLINE.
    c.update(u, OFFLINE, MAC);
    let pc_off = vec![Got::LoginStatus(u, 0), Got::Buddy(u, OFFLINE as i32)];
    for l in [&mut c, &mut a, &mut b] {
        assert_eq!(l.barrier(), pc_off);
    }
    assert_eq!(b.statuses(&[u]), vec![OFFLINE as i32]);

    // The mobile goes: the user is gone, a mobile change notifies nobody.
    b.update(u, OFFLINE, IOS);
    for l in [&mut b, &mut a, &mut c] {
        assert_eq!(l.barrier(), vec![]);
    }
}

#[test]
fn leave_is_a_status_change_and_bad_status_is_ignored() {
    let r = start_route("route-leave");
    let mut a = Link::connect(&r);
    let mut b = Link::connect(&r);
    let u = 1101;
    a.update(u, ONLINE, WIN);
    // The sender's barrier first: after it, the update was handled and its notifies queued.
    assert_eq!(a.barrier().len(), 2);
    assert_eq!(b.barrier().len(), 2);

    // ONLINE -> LEAVE on the same session: notifies carry LEAVE, but it is no new session.
    a.update(u, LEAVE, WIN);
    let leave = vec![Got::LoginStatus(u, 1), Got::Buddy(u, LEAVE as i32)];
    assert_eq!(a.barrier(), leave);
    assert_eq!(b.barrier(), leave);
    // So one OFFLINE ends it (the original kept the user online: R3).
    a.update(u, OFFLINE, WIN);
    assert_eq!(a.barrier(), vec![Got::Buddy(u, OFFLINE as i32)]);
    assert_eq!(b.barrier(), vec![Got::Buddy(u, OFFLINE as i32)]);
    assert_eq!(b.statuses(&[u]), vec![OFFLINE as i32]);

    // An undeclared status (the original aborted, R4) is ignored; the link stays up.
    a.update(u, 7, WIN);
    assert_eq!(a.barrier(), vec![]);
    assert_eq!(a.statuses(&[u]), vec![OFFLINE as i32]);
    assert!(r.daemon.pid().is_some());
}

#[test]
fn users_status_query_echoes_seq_and_attach() {
    let r = start_route("route-query");
    let mut a = Link::connect(&r);
    let mut b = Link::connect(&r);
    a.update(1201, ONLINE, MAC);
    a.update(1202, ONLINE, IOS);
    a.barrier();
    let attach = b"\x00\x00\x00\x01attach\xff".as_slice();
    let (before, seq, rsp) = b.query_with(&[1203, 1201, 1202, 1201], Some(attach));
    assert_eq!(before.len(), 2, "the notifies of 1201: {before:?}");
    assert_eq!(rsp.user_id, 9);
    assert_eq!(rsp.attach_data.as_deref(), Some(attach));
    let got: Vec<(u32, i32)> = rsp
        .user_stat_list
        .iter()
        .map(|s| (s.user_id, s.status))
        .collect();
    // Mobile-only users are OFFLINE; request order and duplicates kept.
    assert_eq!(
        got,
        vec![(1203, 2), (1201, 1), (1202, 2), (1201, 1)],
        "seq {seq}"
    );

    // Without attach_data the reply still carries the field, empty.
    let (_, _, rsp) = b.query_with(&[1201], None);
    assert_eq!(rsp.attach_data, Some(Vec::new()));

    // The seq is echoed whatever it is (here 0xfffe), in a fresh header.
    let req = ImUsersStatReq {
        user_id: 5,
        user_id_list: vec![1201],
        attach_data: None,
    };
    let mut h = Header::new(
        sid::SID_BUDDY_LIST,
        cid::CID_BUDDY_LIST_USERS_STATUS_REQUEST,
        0xfffe,
    );
    h.flag = 3;
    h.reserved = 4;
    b.send_bytes(&Pdu::with_header(h, req.encode_to_vec()).to_bytes());
    let p = b.recv();
    assert_eq!(
        p.header.command_id,
        cid::CID_BUDDY_LIST_USERS_STATUS_RESPONSE
    );
    assert_eq!(p.header.seq_num, 0xfffe);
    assert_eq!(
        (p.header.version, p.header.flag, p.header.reserved),
        (1, 0, 0)
    );
}

#[test]
fn relays_are_verbatim_to_the_others_and_sign_info_to_all() {
    let r = start_route("route-relay");
    let mut a = Link::connect(&r);
    let mut b = Link::connect(&r);
    let mut c = Link::connect(&r);

    // A CID_MSG_DATA with odd header fields and a body route_server must not parse.
    let h = Header {
        length: 0,
        version: 6,
        flag: 7,
        service_id: sid::SID_MSG,
        command_id: cid::CID_MSG_DATA,
        seq_num: 4321,
        reserved: 9,
    };
    let msg = Pdu::with_header(h, b"\x08\x01not really protobuf \x00\xff".to_vec());
    a.send_bytes(&msg.to_bytes());
    assert_eq!(a.barrier(), vec![], "the sender gets no copy");
    assert_eq!(b.barrier(), vec![Got::Other(msg.clone())]);
    assert_eq!(c.barrier(), vec![Got::Other(msg.clone())]);

    // SERVER_KICK_USER from B reaches A and C.
    let kick = Pdu::command(
        0,
        &ImServerKickUser {
            user_id: 1301,
            client_type: WIN,
            reason: 1,
        },
    );
    b.send_bytes(&kick.to_bytes());
    assert_eq!(b.barrier(), vec![]);
    assert_eq!(a.barrier(), vec![Got::Other(kick.clone())]);
    assert_eq!(c.barrier(), vec![Got::Other(kick.clone())]);

    // The sign-info notify goes to every link, the sender included.
    let sign = Pdu::new(
        sid::SID_BUDDY_LIST,
        cid::CID_BUDDY_LIST_SIGN_INFO_CHANGED_NOTIFY,
        0,
        b"\x08\x05\x12\x02hi".to_vec(),
    );
    c.send_bytes(&sign.to_bytes());
    for l in [&mut c, &mut a, &mut b] {
        assert_eq!(l.barrier(), vec![Got::Other(sign.clone())]);
    }

    // ROLE_SET, a heartbeat and an unknown command are taken without reply or relay.
    a.send(&ImRoleSet { master: 1 });
    a.send_bytes(&pdu::Pdu::heartbeat().to_bytes());
    a.send_bytes(&Pdu::new(sid::SID_OTHER, cid::CID_OTHER_USER_CNT_UPDATE, 0, vec![]).to_bytes());
    for l in [&mut a, &mut b, &mut c] {
        assert_eq!(l.barrier(), vec![]);
    }
}

#[test]
fn online_user_info_sets_presence_without_double_counting() {
    let r = start_route("route-online-info");
    let mut a = Link::connect(&r);
    let mut b = Link::connect(&r);
    let stat = |user_id, status: u32, client_type| ServerUserStat {
        user_id,
        status: status as i32,
        client_type,
    };
    let hello = ImOnlineUserInfo {
        user_stat_list: vec![
            stat(1404, LEAVE, MAC),
            stat(1404, ONLINE, MAC),
            stat(1401, ONLINE, WIN),
            stat(1402, ONLINE, IOS),
            stat(1401, ONLINE, IOS),
        ],
    };
    a.send(&hello);
    // Users whose first PC session appears are announced; mobile-only users are not.
    let on = vec![
        Got::LoginStatus(1401, 1),
        Got::Buddy(1401, ONLINE as i32),
        Got::LoginStatus(1404, 1),
        Got::Buddy(1404, ONLINE as i32),
    ];
    assert_eq!(a.barrier(), on);
    assert_eq!(b.barrier(), on);
    assert_eq!(
        b.statuses(&[1401, 1402, 1403, 1404]),
        vec![ONLINE as i32, OFFLINE as i32, OFFLINE as i32, ONLINE as i32]
    );
    // Each hello entry is a session, LEAVE ones too: 1404 has two MAC sessions.
    a.update(1404, OFFLINE, MAC);
    assert_eq!(a.barrier(), vec![]);
    assert_eq!(b.statuses(&[1404]), vec![ONLINE as i32]);
    a.update(1404, OFFLINE, MAC);
    let off_1404 = vec![Got::Buddy(1404, OFFLINE as i32)];
    assert_eq!(a.barrier(), off_1404);
    assert_eq!(b.barrier(), off_1404);

    // A drops; the msg_server reconnects and sends its sessions again: counted once (R1), so
    // one OFFLINE ends the PC session.
    drop(a);
    // 1401 had sessions on A only: gone entirely, so only the buddy notify.
    assert_eq!(b.recv_n(1), vec![Got::Buddy(1401, OFFLINE as i32)]);
    let off = vec![Got::LoginStatus(1401, 0), Got::Buddy(1401, OFFLINE as i32)];
    let mut a2 = Link::connect(&r);
    a2.send(&hello);
    assert_eq!(a2.barrier(), on);
    assert_eq!(b.barrier(), on);
    a2.update(1401, OFFLINE, WIN);
    assert_eq!(a2.barrier(), off);
    assert_eq!(b.barrier(), off);
    assert_eq!(b.statuses(&[1401]), vec![OFFLINE as i32]);
}

impl Link {
    fn recv_n(&mut self, n: usize) -> Vec<Got> {
        (0..n).map(|_| classify(self.recv())).collect()
    }
}

#[test]
fn closing_link_takes_its_users_offline() {
    let r = start_route("route-close");
    let mut a = Link::connect(&r);
    let mut b = Link::connect(&r);
    let mut c = Link::connect(&r);
    a.update(1501, ONLINE, WIN); // PC only, on A only
    a.update(1502, ONLINE, MAC); // PC on A, mobile on B
    b.update(1502, ONLINE, IOS);
    a.update(1503, ONLINE, IOS); // mobile only
    a.update(1504, ONLINE, WIN); // PC on A and on C
    c.update(1504, ONLINE, WIN);
    a.barrier();
    b.barrier();
    c.barrier();
    // Each link's updates were handled before its barrier reply; C's may have been handled
    // after B's barrier, so B takes what they caused with a second one.
    b.barrier();

    drop(a);
    // What the logouts of A's sessions would have broadcast, in user order.
    let expected = vec![
        Got::Buddy(1501, OFFLINE as i32),
        Got::LoginStatus(1502, 0),
        Got::Buddy(1502, OFFLINE as i32),
    ];
    assert_eq!(b.recv_n(3), expected);
    assert_eq!(c.recv_n(3), expected);
    assert_eq!(
        c.barrier(),
        vec![],
        "nothing for 1503 (mobile) or 1504 (PC elsewhere)"
    );
    assert_eq!(
        b.statuses(&[1501, 1502, 1503, 1504]),
        vec![
            OFFLINE as i32,
            OFFLINE as i32,
            OFFLINE as i32,
            ONLINE as i32
        ]
    );
}

#[test]
fn malformed_input_closes_only_that_link() {
    let r = start_route("route-garbage");
    let mut a = Link::connect(&r);
    let mut b = Link::connect(&r);
    let mut c = Link::connect(&r);
    b.update(1601, ONLINE, WIN);
    b.barrier();
    a.barrier();
    c.barrier();

    // A length below the header size.
    a.send_bytes(&[0, 0, 0, 5, 0, 1, 0, 0, 0, 7, 0, 1, 0, 0, 0, 0]);
    a.expect_closed();
    // An absurd length is refused at once, without waiting for the body.
    let mut huge = Header::new(sid::SID_MSG, cid::CID_MSG_DATA, 0);
    huge.length = u32::MAX;
    c.send_bytes(&huge.to_bytes());
    c.expect_closed();

    // A body that does not parse is logged and ignored; the link stays.
    b.send_bytes(
        &Pdu::new(
            sid::SID_OTHER,
            cid::CID_OTHER_USER_STATUS_UPDATE,
            0,
            vec![0xff, 0xff],
        )
        .to_bytes(),
    );
    assert_eq!(b.statuses(&[1601]), vec![ONLINE as i32]);
    // B's user is unaffected by the other links' closing.
    let mut d = Link::connect(&r);
    assert_eq!(d.statuses(&[1601]), vec![ONLINE as i32]);
}

#[test]
fn missing_conf_key_exits_with_1() {
    let dir = TempDir::new("route-conf");
    dir.write("routeserver.conf", "ListenIP=127.0.0.1\n");
    let mut d = Daemon::spawn("route_server", dir.path(), "routeserver.conf");
    assert_eq!(d.wait_exit(Duration::from_secs(30)), Some(1));
    assert!(
        d.recent_log().contains("ListenMsgPort"),
        "{}",
        d.recent_log()
    );
}

#[test]
fn silent_link_gets_heartbeats_then_is_closed_and_its_users_go() {
    let r = start_route("route-keepalive");
    let mut a = Link::connect(&r);
    a.update(1701, ONLINE, WIN);
    assert_eq!(a.barrier().len(), 2);
    // Silence from A: route_server sends heartbeats (after 5 s without sending), then closes
    // the link (after 30 s without receiving). The hang guard is generous.
    a.c.set_hang_guard(Duration::from_secs(90));
    let got = a.c.expect_closed();
    for p in &got {
        assert_eq!(p.header.command_id, cid::CID_OTHER_HEARTBEAT);
        assert_eq!(p.header.length, 16);
    }
    assert!(!got.is_empty(), "no heartbeat before the close");
    let mut b = Link::connect(&r);
    assert_eq!(b.statuses(&[1701]), vec![OFFLINE as i32]);
}

#[test]
fn version_flag() {
    let out = std::process::Command::new(tt_testkit::bin_path("route_server"))
        .arg("-v")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("Server Version: RouteServer/"));
}
