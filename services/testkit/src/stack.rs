//! A whole TeamTalk stack for one test: db_proxy_server, route_server, login_server and one or
//! more msg_servers, spawned as real processes on free ports, each with a conf file in the
//! original format written to the test's own directory, against the project-local MariaDB and
//! Redis (`scripts/db-up.sh`).

use std::net::SocketAddr;
use std::time::Duration;

use crate::{Daemon, DbEnv, TempDir, free_port};

/// Hang guard for anything a daemon must do (start, reconnect): generous, never a timing check.
pub const LIMIT: Duration = Duration::from_secs(60);
pub const AES_KEY: &str = "12345678901234567890123456789012";

pub struct Ports {
    pub db_proxy: u16,
    pub route: u16,
    pub login_http: u16,
    pub login_msg: u16,
    pub login_client: u16,
    pub msg: Vec<u16>,
}

pub struct Stack {
    pub dir: TempDir,
    pub db: DbEnv,
    pub ports: Ports,
    pub db_proxy: Option<Daemon>,
    pub route: Option<Daemon>,
    pub login: Option<Daemon>,
    pub msg: Vec<Option<Daemon>>,
}

impl Stack {
    /// Starts the whole stack with `msg_servers` msg_servers and waits until every msg_server
    /// has its db_proxy, login_server and route_server links up.
    pub fn start(label: &str, msg_servers: usize) -> Stack {
        let ports = Ports {
            db_proxy: free_port(),
            route: free_port(),
            login_http: free_port(),
            login_msg: free_port(),
            login_client: free_port(),
            msg: (0..msg_servers).map(|_| free_port()).collect(),
        };
        let mut stack = Stack {
            dir: TempDir::new(label),
            db: DbEnv::from_env(),
            ports,
            db_proxy: None,
            route: None,
            login: None,
            msg: (0..msg_servers).map(|_| None).collect(),
        };
        stack.write_confs();
        stack.start_db_proxy();
        stack.start_route();
        stack.start_login();
        for i in 0..msg_servers {
            stack.start_msg(i);
        }
        stack
    }

    pub fn login_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports.login_http)
    }

    pub fn msg_addr(&self, i: usize) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.ports.msg[i]))
    }

    pub fn start_db_proxy(&mut self) {
        let mut d = Daemon::spawn("db_proxy_server", self.dir.path(), "dbproxyserver.conf");
        d.wait_ready(LIMIT);
        self.db_proxy = Some(d);
    }

    pub fn start_route(&mut self) {
        let mut d = Daemon::spawn("route_server", self.dir.path(), "routeserver.conf");
        d.wait_ready(LIMIT);
        self.route = Some(d);
    }

    pub fn start_login(&mut self) {
        let mut d = Daemon::spawn("login_server", self.dir.path(), "loginserver.conf");
        d.wait_ready(LIMIT);
        self.login = Some(d);
    }

    /// Starts msg_server `i` and waits until all three of its links are up.
    pub fn start_msg(&mut self, i: usize) {
        let conf = format!("msgserver{i}.conf");
        let mut d = Daemon::spawn("msg_server", self.dir.path(), &conf);
        d.wait_ready(LIMIT);
        for kind in ["db_proxy_server", "login_server", "route_server"] {
            assert!(
                d.wait_for_line(&format!("connected to {kind}"), LIMIT),
                "msg_server {i} did not connect to {kind}:\n{}",
                d.recent_log()
            );
        }
        self.msg[i] = Some(d);
    }

    /// Kills a daemon (SIGKILL): `kill(&mut stack.route)`.
    pub fn kill(daemon: &mut Option<Daemon>) {
        if let Some(mut d) = daemon.take() {
            d.kill();
        }
    }

    /// The msg_server's log, for waiting on its reconnects.
    pub fn msg_daemon(&mut self, i: usize) -> &mut Daemon {
        self.msg[i].as_mut().expect("msg_server running")
    }

    fn write_confs(&self) {
        let db = &self.db;
        let p = &self.ports;
        let pool = |name: &str| {
            format!(
                "{name}_host={}\n{name}_port={}\n{name}_dbname={}\n{name}_username={}\n\
                 {name}_password={}\n{name}_maxconncnt=4\n",
                db.mysql_host, db.mysql_port, db.mysql_db, db.mysql_user, db.mysql_password
            )
        };
        let cache = |name: &str, index: u32| {
            format!(
                "{name}_host={}\n{name}_port={}\n{name}_db={index}\n{name}_maxconncnt=4\n",
                db.redis_host, db.redis_port
            )
        };
        self.dir.write(
            "dbproxyserver.conf",
            &format!(
                "ListenIP=127.0.0.1\nListenPort={}\nThreadNum=4\nMsfsSite=http://127.0.0.1:8700\n\
                 aesKey={AES_KEY}\nDBInstances=teamtalk_master,teamtalk_slave\n{}{}\
                 CacheInstances=unread,group_set,token,sync,group_member\n{}{}{}{}{}",
                p.db_proxy,
                pool("teamtalk_master"),
                pool("teamtalk_slave"),
                cache("unread", 1),
                cache("group_set", 2),
                cache("sync", 3),
                cache("token", 4),
                cache("group_member", 5),
            ),
        );
        self.dir.write(
            "routeserver.conf",
            &format!("ListenIP=127.0.0.1\nListenMsgPort={}\n", p.route),
        );
        self.dir.write(
            "loginserver.conf",
            &format!(
                "ClientListenIP=127.0.0.1\nClientPort={}\nHttpListenIP=127.0.0.1\nHttpPort={}\n\
                 MsgServerListenIP=127.0.0.1\nMsgServerPort={}\n\
                 msfs=http://127.0.0.1:8700/\ndiscovery=http://127.0.0.1/api/discovery\n",
                p.login_client, p.login_http, p.login_msg
            ),
        );
        for (i, port) in p.msg.iter().enumerate() {
            self.dir.write(
                &format!("msgserver{i}.conf"),
                &format!(
                    "ListenIP=127.0.0.1\nListenPort={port}\nIpAddr1=127.0.0.1\nIpAddr2=127.0.0.1\n\
                     MaxConnCnt=1000\naesKey={AES_KEY}\nConcurrentDBConnCnt=2\n\
                     DBServerIP1=127.0.0.1\nDBServerPort1={db}\nDBServerIP2=127.0.0.1\nDBServerPort2={db}\n\
                     LoginServerIP1=127.0.0.1\nLoginServerPort1={login}\n\
                     RouteServerIP1=127.0.0.1\nRouteServerPort1={route}\n",
                    db = p.db_proxy,
                    login = p.login_msg,
                    route = p.route,
                ),
            );
        }
    }
}
