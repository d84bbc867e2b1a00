//! msg_server's outgoing links against fake route_servers and a fake login_server (listeners
//! in the test): what each link is sent on connect, and the master route election; the
//! start-up: conf errors, the open-files limit.

mod common;

use std::time::Duration;

use common::WAIT;
use tt_proto::ids::cid;
use tt_proto::pb::server::{ImMsgServInfo, ImOnlineUserInfo, ImRoleSet};
use tt_proto::prost::Message;
use tt_testkit::{Daemon, PduClient, PduListener, TempDir, free_port};

/// The server side of a link msg_server opens; heartbeats are not looked at.
fn accept(listener: &PduListener) -> PduClient {
    listener.accept().skipping_heartbeats()
}

#[test]
fn links_say_hello_and_the_oldest_route_link_is_master() {
    let route_a = PduListener::bind();
    let login = PduListener::bind();
    let port_b = free_port(); // route_server B is not up yet
    let msg_port = free_port();
    let dir = TempDir::new("msg_server-links");
    dir.write(
        "msgserver.conf",
        &format!(
            "ListenIP=127.0.0.1\nListenPort={msg_port}\nIpAddr1=10.0.0.1\nMaxConnCnt=1234\n\
             aesKey=12345678901234567890123456789012\nConcurrentDBConnCnt=1\n\
             DBServerIP1=127.0.0.1\nDBServerPort1={db}\nDBServerIP2=127.0.0.1\nDBServerPort2={db}\n\
             LoginServerIP1=127.0.0.1\nLoginServerPort1={login}\n\
             RouteServerIP1=127.0.0.1\nRouteServerPort1={a}\n\
             RouteServerIP2=127.0.0.1\nRouteServerPort2={port_b}\n",
            db = free_port(),
            login = login.port(),
            a = route_a.port(),
        ),
    );
    let mut msg = Daemon::spawn("msg_server", dir.path(), "msgserver.conf");
    msg.wait_ready(WAIT);

    // login_server: IMMsgServInfo.
    let mut l = accept(&login);
    let p = l.recv_pdu();
    assert_eq!(p.header.command_id, cid::CID_OTHER_MSG_SERV_INFO);
    assert_eq!(p.header.seq_num, 0);
    let info = ImMsgServInfo::decode(p.body.as_slice()).unwrap();
    assert_eq!(info.ip1, b"10.0.0.1", "ip1");
    assert_eq!(info.ip2, b"10.0.0.1", "IpAddr2 defaults to IpAddr1");
    assert_eq!(u32::from(msg_port), info.port);
    assert_eq!((info.max_conn_cnt, info.cur_conn_cnt), (1234, 0));

    // route A (the only one up): elected master, then the online-user list.
    let mut a = accept(&route_a);
    let p = a.recv_pdu();
    assert_eq!(p.header.command_id, cid::CID_OTHER_ROLE_SET);
    assert_eq!(ImRoleSet::decode(p.body.as_slice()).unwrap().master, 1);
    let p = a.recv_pdu();
    assert_eq!(p.header.command_id, cid::CID_OTHER_ONLINE_USER_INFO);
    assert!(
        ImOnlineUserInfo::decode(p.body.as_slice())
            .unwrap()
            .user_stat_list
            .is_empty()
    );

    // route B comes up: msg_server reconnects (back-off); B is not master.
    let route_b = PduListener::bind_port(port_b); // panics if the port was taken since
    // msg_server retries with its back-off (at most 64 s between tries): the hang guard
    // covers two tries.
    let mut b = route_b
        .accept_within(Duration::from_secs(130))
        .skipping_heartbeats();
    let p = b.recv_pdu();
    assert_eq!(
        p.header.command_id,
        cid::CID_OTHER_ONLINE_USER_INFO,
        "a newer link does not displace the master"
    );

    // A goes away: B is elected.
    drop(a);
    let p = b.recv_pdu();
    assert_eq!(p.header.command_id, cid::CID_OTHER_ROLE_SET);
    assert_eq!(ImRoleSet::decode(p.body.as_slice()).unwrap().master, 1);
}

#[test]
fn conf_errors_name_the_key_and_exit_with_status_1() {
    let dir = TempDir::new("msg_server-conf");
    dir.write(
        "msgserver.conf",
        "ListenIP=127.0.0.1\nListenPort=1\nIpAddr1=127.0.0.1\nMaxConnCnt=1\n\
         aesKey=12345678901234567890123456789012\nDBServerIP1=127.0.0.1\nDBServerPort1=1\n",
    );
    let mut msg = Daemon::spawn("msg_server", dir.path(), "msgserver.conf");
    assert!(
        msg.wait_for_line("DBServerIP2", WAIT),
        "{}",
        msg.recent_log()
    );
    assert_eq!(msg.wait_exit(WAIT), Some(1));
}

#[test]
fn the_open_files_soft_limit_is_raised_to_the_hard_limit() {
    use rlimit::Resource;
    let (soft, hard) = Resource::NOFILE.get().expect("getrlimit");
    // Started with a soft limit below the hard one (inherited from this process)…
    let lowered = (hard / 2).clamp(64, 4096);
    assert!(lowered < hard, "hard limit {hard} too low to test");
    Resource::NOFILE
        .set(lowered, hard)
        .expect("lower the soft limit");
    let dir = TempDir::new("msg_server-nofile");
    dir.write(
        "msgserver.conf",
        &format!(
            "ListenIP=127.0.0.1\nListenPort={}\nIpAddr1=127.0.0.1\nMaxConnCnt=100\n\
             aesKey=12345678901234567890123456789012\nConcurrentDBConnCnt=1\n\
             DBServerIP1=127.0.0.1\nDBServerPort1={db}\nDBServerIP2=127.0.0.1\nDBServerPort2={db}\n\
             LoginServerIP1=127.0.0.1\nLoginServerPort1={}\n\
             RouteServerIP1=127.0.0.1\nRouteServerPort1={}\n",
            free_port(),
            free_port(),
            free_port(),
            db = free_port(),
        ),
    );
    let mut msg = Daemon::spawn("msg_server", dir.path(), "msgserver.conf");
    Resource::NOFILE
        .set(soft, hard)
        .expect("restore the soft limit");
    // …it raises it to the hard limit and says so.
    let line = format!("open-files limit raised from {lowered} to {hard}");
    assert!(msg.wait_for_line(&line, WAIT), "{}", msg.recent_log());
    msg.wait_ready(WAIT);
    let pid = msg.pid().expect("running");
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("limits");
    let open_files: Vec<&str> = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("a Max open files line")
        .split_whitespace()
        .collect();
    assert_eq!(
        open_files[3..5],
        [hard.to_string(), hard.to_string()],
        "soft and hard: {limits}"
    );
    msg.kill();
}
