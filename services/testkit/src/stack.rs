//! A whole TeamTalk stack for one test: db_proxy_server, route_server, login_server, one or
//! more msg_servers and, when asked for, a file_server and a push_server, spawned as real
//! processes on free ports, each in a directory of its own
//! with a conf file in the original format, against the project-local MariaDB and Redis
//! (`scripts/db-up.sh`).
//!
//! ```no_run
//! use tt_testkit::Stack;
//!
//! // Everything, two msg_servers, each waiting until its links are up:
//! let stack = Stack::start("e2e-chat", 2);
//! let _addr = stack.msg_addr(1);
//!
//! // No route_server (msg_server is pointed at a port nobody listens on), extra conf lines:
//! let mut stack = Stack::builder("no-route")
//!     .route(false)
//!     .msg_conf_extra("MsgRateLimit=5\n")
//!     .start();
//! assert!(stack.route.is_none());
//! stack.msg_daemon(0).wait_for_line("connected to db_proxy_server", tt_testkit::stack::LIMIT);
//!
//! // With a file_server (its offline files under `stack.file_dir()`):
//! let stack = Stack::builder("files").file_server(true).start();
//! let _client_port = stack.ports.file_client;
//!
//! // With a push_server delivering to a gateway at that URL (every msg_server linked to it):
//! let stack = Stack::builder("push").push_gateway("http://127.0.0.1:9").start();
//! let _port = stack.ports.push;
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::{Daemon, DbEnv, READY_MARKER, TempDir, free_port};

/// Hang guard for anything a daemon must do (start, reconnect): generous, never a timing check.
pub const LIMIT: Duration = Duration::from_secs(60);
pub const AES_KEY: &str = "12345678901234567890123456789012";

/// Every port of a stack, chosen when it is built. A server the stack does not run keeps its
/// port: the msg_servers are configured with it, and nobody listens there. While the stack
/// starts, a daemon that finds its port taken meanwhile (a free port is only free until some
/// other process binds it) is moved to new ones; a restart later reuses its ports.
pub struct Ports {
    pub db_proxy: u16,
    pub route: u16,
    pub login_http: u16,
    pub login_msg: u16,
    pub login_client: u16,
    pub msg: Vec<u16>,
    /// file_server's client port (`ClientListenPort`).
    pub file_client: u16,
    /// file_server's msg_server port (`MsgServerListenPort`).
    pub file_msg: u16,
    /// push_server's port (`ListenPort`).
    pub push: u16,
}

/// What [`Stack::builder`] starts. Defaults: every server but file_server and push_server,
/// one msg_server, msg_servers wait for their links, no extra conf lines.
#[must_use = "nothing runs until `start`"]
pub struct StackBuilder {
    label: String,
    msg_servers: usize,
    db_proxy: bool,
    route: bool,
    login: bool,
    file_server: bool,
    /// `Some(PushGatewayUrl)`: push_server runs.
    push_gateway: Option<String>,
    wait_links: bool,
    msg_conf_extra: String,
    db_threads: usize,
    redis_port: Option<u16>,
    db: Option<DbEnv>,
    metrics: bool,
}

impl StackBuilder {
    /// How many msg_servers (0 is allowed).
    pub fn msg_servers(mut self, n: usize) -> StackBuilder {
        self.msg_servers = n;
        self
    }

    /// Whether db_proxy_server runs.
    pub fn db_proxy(mut self, on: bool) -> StackBuilder {
        self.db_proxy = on;
        self
    }

    /// Whether route_server runs.
    pub fn route(mut self, on: bool) -> StackBuilder {
        self.route = on;
        self
    }

    /// Whether login_server runs.
    pub fn login(mut self, on: bool) -> StackBuilder {
        self.login = on;
        self
    }

    /// Whether file_server runs (default: no). With it, every msg_server is configured with
    /// `FileServerIP1`/`FileServerPort1` pointing at its msg_server port.
    pub fn file_server(mut self, on: bool) -> StackBuilder {
        self.file_server = on;
        self
    }

    /// Whether push_server runs (default: no), with an empty `PushGatewayUrl` (notifications
    /// logged, not sent). With it, every msg_server is configured with
    /// `PushServerIP1`/`PushServerPort1` pointing at it.
    pub fn push_server(mut self, on: bool) -> StackBuilder {
        self.push_gateway = on.then(String::new);
        self
    }

    /// push_server runs and delivers to the push gateway at `url` (`PushGatewayUrl`, e.g.
    /// `http://127.0.0.1:<port>`).
    pub fn push_gateway(mut self, url: &str) -> StackBuilder {
        self.push_gateway = Some(url.to_string());
        self
    }

    /// Whether starting a msg_server waits until it is connected to each server the stack runs
    /// at that moment (default: yes). It never waits for a server the stack does not run.
    pub fn wait_links(mut self, on: bool) -> StackBuilder {
        self.wait_links = on;
        self
    }

    /// db_proxy_server's `ThreadNum` (default 2). With 1, replies of one connection come in
    /// request order.
    pub fn db_threads(mut self, n: usize) -> StackBuilder {
        self.db_threads = n;
        self
    }

    /// The port of the Redis db_proxy_server uses (default: the project-local one of
    /// [`DbEnv::from_env`]), e.g. a private redis-server a test may kill.
    pub fn redis_port(mut self, port: u16) -> StackBuilder {
        self.redis_port = Some(port);
        self
    }

    /// The MariaDB and Redis db_proxy_server uses (default: [`DbEnv::from_env`]), e.g. a
    /// private pair started by `scripts/db-up.sh` that a test may kill. [`Stack::db`] is this.
    pub fn db_env(mut self, db: DbEnv) -> StackBuilder {
        self.db = Some(db);
        self
    }

    /// Conf lines (each ending in `\n`) for every msg_server. They come first in the file and
    /// the conf reader keeps the first value of a key, so they may also override a default.
    pub fn msg_conf_extra(mut self, lines: &str) -> StackBuilder {
        self.msg_conf_extra.push_str(lines);
        self
    }

    /// Gives every daemon a `MetricsPort` of its own ([`Stack::metrics_port`]).
    pub fn metrics(mut self, on: bool) -> StackBuilder {
        self.metrics = on;
        self
    }

    /// Writes the conf files and starts the servers: db_proxy_server, route_server,
    /// login_server, file_server (each waited for until ready), then the msg_servers in order.
    pub fn start(self) -> Stack {
        let n = self.msg_servers;
        let ports = Ports {
            db_proxy: free_port(),
            route: free_port(),
            login_http: free_port(),
            login_msg: free_port(),
            login_client: free_port(),
            msg: (0..n).map(|_| free_port()).collect(),
            file_client: free_port(),
            file_msg: free_port(),
            push: free_port(),
        };
        let mut db = self.db.unwrap_or_else(DbEnv::from_env);
        if let Some(port) = self.redis_port {
            db.redis_port = port;
        }
        let mut stack = Stack {
            dir: TempDir::new(&self.label),
            db,
            ports,
            db_proxy: None,
            route: None,
            login: None,
            file_server: None,
            push_server: None,
            msg: (0..n).map(|_| None).collect(),
            with_file_server: self.file_server,
            push_gateway: self.push_gateway,
            wait_links: self.wait_links,
            msg_conf_extra: self.msg_conf_extra,
            db_threads: self.db_threads,
            starting: true,
            metrics_ports: if self.metrics {
                let dirs = ["db_proxy", "route", "login", "file", "push"];
                let msgs = (0..n).map(|i| format!("msg{i}"));
                dirs.map(String::from)
                    .into_iter()
                    .chain(msgs)
                    .map(|d| (d, free_port()))
                    .collect()
            } else {
                Vec::new()
            },
        };
        stack.write_confs();
        if self.db_proxy {
            stack.start_db_proxy();
        }
        if self.route {
            stack.start_route();
        }
        if self.login {
            stack.start_login();
        }
        if self.file_server {
            stack.start_file_server();
        }
        if stack.push_gateway.is_some() {
            stack.start_push_server();
        }
        for i in 0..n {
            stack.start_msg(i);
        }
        stack.starting = false;
        stack
    }
}

/// A running stack. Every daemon is killed when the stack is dropped, then its directory is
/// removed.
pub struct Stack {
    // Daemons before `dir`: fields drop in order, so the processes are gone before the
    // directory they run in.
    pub db_proxy: Option<Daemon>,
    pub route: Option<Daemon>,
    pub login: Option<Daemon>,
    pub file_server: Option<Daemon>,
    pub push_server: Option<Daemon>,
    pub msg: Vec<Option<Daemon>>,
    pub ports: Ports,
    pub db: DbEnv,
    pub dir: TempDir,
    /// Built with [`StackBuilder::file_server`]: the msg_servers are configured with it.
    with_file_server: bool,
    /// Built with [`StackBuilder::push_gateway`] or [`StackBuilder::push_server`]: its
    /// `PushGatewayUrl`.
    push_gateway: Option<String>,
    wait_links: bool,
    msg_conf_extra: String,
    db_threads: usize,
    /// In [`StackBuilder::start`]: a daemon whose port was taken may move to another.
    starting: bool,
    /// `MetricsPort` of each daemon, by directory (empty unless built with
    /// [`StackBuilder::metrics`]).
    metrics_ports: Vec<(String, u16)>,
}

/// One daemon of a stack.
#[derive(Clone, Copy)]
enum Server {
    DbProxy,
    Route,
    Login,
    File,
    Push,
    Msg(usize),
}

impl Server {
    fn bin(self) -> &'static str {
        match self {
            Server::DbProxy => "db_proxy_server",
            Server::Route => "route_server",
            Server::Login => "login_server",
            Server::File => "file_server",
            Server::Push => "push_server",
            Server::Msg(_) => "msg_server",
        }
    }

    /// Its directory in the stack's.
    fn dir(self) -> String {
        match self {
            Server::DbProxy => "db_proxy".into(),
            Server::Route => "route".into(),
            Server::Login => "login".into(),
            Server::File => "file".into(),
            Server::Push => "push".into(),
            Server::Msg(i) => format!("msg{i}"),
        }
    }

    fn conf(self) -> &'static str {
        match self {
            Server::DbProxy => "dbproxyserver.conf",
            Server::Route => "routeserver.conf",
            Server::Login => "loginserver.conf",
            Server::File => "fileserver.conf",
            Server::Push => "pushserver.conf",
            Server::Msg(_) => "msgserver.conf",
        }
    }
}

impl Stack {
    /// Starts the whole stack with `msg_servers` msg_servers and waits until every msg_server
    /// has its db_proxy, login_server and route_server links up.
    pub fn start(label: &str, msg_servers: usize) -> Stack {
        Stack::builder(label).msg_servers(msg_servers).start()
    }

    /// A stack to configure: see [`StackBuilder`] for the defaults. `label` names its directory.
    pub fn builder(label: &str) -> StackBuilder {
        StackBuilder {
            label: label.to_string(),
            msg_servers: 1,
            db_proxy: true,
            route: true,
            login: true,
            file_server: false,
            push_gateway: None,
            wait_links: true,
            msg_conf_extra: String::new(),
            db_threads: 2,
            redis_port: None,
            db: None,
            metrics: false,
        }
    }

    /// The `MetricsPort` of a daemon by its directory (`db_proxy`, `route`, `login`, `file`,
    /// `push`, `msg0`…), for a stack built with [`StackBuilder::metrics`].
    pub fn metrics_port(&self, daemon_dir: &str) -> Option<u16> {
        self.metrics_ports
            .iter()
            .find(|(d, _)| d == daemon_dir)
            .map(|&(_, p)| p)
    }

    /// login_server's HTTP address (discovery), `http://127.0.0.1:<port>`.
    pub fn login_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports.login_http)
    }

    /// The client port of msg_server `i`.
    pub fn msg_port(&self, i: usize) -> u16 {
        self.ports.msg[i]
    }

    /// The client address of msg_server `i`.
    pub fn msg_addr(&self, i: usize) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.ports.msg[i]))
    }

    /// Starts db_proxy_server (again, after [`Stack::kill`]) and waits until it is ready.
    pub fn start_db_proxy(&mut self) {
        self.db_proxy = Some(self.spawn_ready(Server::DbProxy));
    }

    /// Starts route_server (again, after [`Stack::kill`]) and waits until it is ready.
    pub fn start_route(&mut self) {
        self.route = Some(self.spawn_ready(Server::Route));
    }

    /// Starts login_server (again, after [`Stack::kill`]) and waits until it is ready.
    pub fn start_login(&mut self) {
        self.login = Some(self.spawn_ready(Server::Login));
    }

    /// Starts file_server (again, after [`Stack::kill`]: its offline files stay) and waits
    /// until it is ready. Panics for a stack built without [`StackBuilder::file_server`].
    pub fn start_file_server(&mut self) {
        assert!(
            self.with_file_server,
            "the stack was built without file_server"
        );
        self.file_server = Some(self.spawn_ready(Server::File));
    }

    /// Starts push_server (again, after [`Stack::kill`]) and waits until it is ready. Panics
    /// for a stack built without it.
    pub fn start_push_server(&mut self) {
        assert!(
            self.push_gateway.is_some(),
            "the stack was built without push_server"
        );
        self.push_server = Some(self.spawn_ready(Server::Push));
    }

    /// file_server's directory (its working directory: `offline_file/` is in it).
    pub fn file_dir(&self) -> PathBuf {
        self.daemon_dir(&Server::File.dir())
    }

    /// Where file_server stores the offline file of `task_id`:
    /// `offline_file/<first two characters>/<task_id>` under [`Stack::file_dir`].
    pub fn offline_file_path(&self, task_id: &str) -> PathBuf {
        let prefix = task_id.get(..2).unwrap_or(task_id);
        self.file_dir()
            .join("offline_file")
            .join(prefix)
            .join(task_id)
    }

    /// Starts msg_server `i` and waits until it is ready and, unless the stack was built with
    /// `wait_links(false)`, connected to each of db_proxy_server, login_server, route_server
    /// file_server and push_server that runs now (and, for file_server, holding its address
    /// list).
    pub fn start_msg(&mut self, i: usize) {
        let mut d = self.spawn_ready(Server::Msg(i));
        if self.wait_links {
            let links: Vec<&str> = [
                ("connected to db_proxy_server", self.db_proxy.is_some()),
                ("connected to login_server", self.login.is_some()),
                ("connected to route_server", self.route.is_some()),
                ("connected to file_server", self.file_server.is_some()),
                // The addresses clients are given, asked for on connect.
                ("addresses of file_server", self.file_server.is_some()),
                ("connected to push_server", self.push_server.is_some()),
            ]
            .into_iter()
            .filter_map(|(line, running)| running.then_some(line))
            .collect();
            let missing = d.wait_for_lines(&links, LIMIT);
            assert!(
                missing.is_empty(),
                "msg_server {i} did not log {missing:?}:\n{}",
                d.recent_log()
            );
            // Connected is not registered yet: login_server hands the msg_server out only
            // once it has read its MSG_SERV_INFO (logged as `…:<port> max_conn_cnt=…`).
            let port = self.ports.msg[i];
            if let Some(login) = self.login.as_mut() {
                assert!(
                    login.wait_for_line(&format!(":{port} max_conn_cnt="), LIMIT),
                    "login_server did not register msg_server {i}:\n{}",
                    login.recent_log()
                );
            }
        }
        self.msg[i] = Some(d);
    }

    /// Kills a daemon (SIGKILL): `kill(&mut stack.route)`.
    pub fn kill(daemon: &mut Option<Daemon>) {
        if let Some(mut d) = daemon.take() {
            d.kill();
        }
    }

    /// msg_server `i`, e.g. to wait on its log. Panics if it is not running.
    pub fn msg_daemon(&mut self, i: usize) -> &mut Daemon {
        self.msg[i].as_mut().expect("msg_server running")
    }

    /// The directory of one daemon: `db_proxy`, `route`, `login`, `msg0`, `msg1`…
    pub fn daemon_dir(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Spawns `server` and waits until it is ready. While the stack starts, a port taken since
    /// it was chosen moves the server to new ports (the msg_servers, started last, are
    /// configured with the final ones); otherwise, or after a few moves, panics with its log.
    fn spawn_ready(&mut self, server: Server) -> Daemon {
        let mut moves = 0;
        loop {
            let dir = self.daemon_dir(&server.dir());
            let mut d = Daemon::spawn(server.bin(), &dir, server.conf());
            if d.wait_for_line(READY_MARKER, LIMIT) {
                return d;
            }
            let log = d.recent_log();
            if !(self.starting && moves < 5 && log.contains("cannot listen on")) {
                panic!(
                    "{} did not become ready; last log lines:\n{log}",
                    server.bin()
                );
            }
            moves += 1;
            eprintln!("[tt-testkit] {}: a port was taken, moving", server.bin());
            let p = &mut self.ports;
            match server {
                Server::DbProxy => p.db_proxy = free_port(),
                Server::Route => p.route = free_port(),
                Server::Login => {
                    p.login_http = free_port();
                    p.login_msg = free_port();
                    p.login_client = free_port();
                }
                Server::File => {
                    p.file_client = free_port();
                    p.file_msg = free_port();
                }
                Server::Push => p.push = free_port(),
                Server::Msg(i) => p.msg[i] = free_port(),
            }
            self.write_confs();
        }
    }

    fn write_conf(&self, dir: &str, conf: &str, contents: &str) {
        let metrics = self
            .metrics_port(dir)
            .map_or_else(String::new, |p| format!("MetricsPort={p}\n"));
        let dir = self.daemon_dir(dir);
        std::fs::create_dir_all(&dir).expect("creating a daemon directory");
        std::fs::write(dir.join(conf), format!("{contents}{metrics}"))
            .expect("writing a conf file");
    }

    fn write_confs(&self) {
        let msg_extra = &self.msg_conf_extra;
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
        self.write_conf(
            "db_proxy",
            "dbproxyserver.conf",
            &format!(
                "ListenIP=127.0.0.1\nListenPort={}\nThreadNum={}\nMsfsSite=http://127.0.0.1:8700\n\
                 aesKey={AES_KEY}\nDBInstances=teamtalk_master,teamtalk_slave\n{}{}\
                 CacheInstances=unread,group_set,token,sync,group_member\n{}{}{}{}{}",
                p.db_proxy,
                self.db_threads,
                pool("teamtalk_master"),
                pool("teamtalk_slave"),
                cache("unread", 1),
                cache("group_set", 2),
                cache("sync", 3),
                cache("token", 4),
                cache("group_member", 5),
            ),
        );
        self.write_conf(
            "route",
            "routeserver.conf",
            &format!("ListenIP=127.0.0.1\nListenMsgPort={}\n", p.route),
        );
        self.write_conf(
            "login",
            "loginserver.conf",
            &format!(
                "ClientListenIP=127.0.0.1\nClientPort={}\nHttpListenIP=127.0.0.1\nHttpPort={}\n\
                 MsgServerListenIP=127.0.0.1\nMsgServerPort={}\n\
                 msfs=http://127.0.0.1:8700/\ndiscovery=http://127.0.0.1/api/discovery\n",
                p.login_client, p.login_http, p.login_msg
            ),
        );
        if self.with_file_server {
            self.write_conf(
                "file",
                "fileserver.conf",
                &format!(
                    "ClientListenIP=127.0.0.1\nClientListenPort={}\n\
                     MsgServerListenIP=127.0.0.1\nMsgServerListenPort={}\nTaskTimeout=60\n",
                    p.file_client, p.file_msg
                ),
            );
        }
        let mut links = if self.with_file_server {
            format!("FileServerIP1=127.0.0.1\nFileServerPort1={}\n", p.file_msg)
        } else {
            String::new()
        };
        if let Some(url) = &self.push_gateway {
            self.write_conf(
                "push",
                "pushserver.conf",
                &format!(
                    "ListenIP=127.0.0.1\nListenPort={}\nPushGatewayUrl={url}\n",
                    p.push
                ),
            );
            links.push_str(&format!(
                "PushServerIP1=127.0.0.1\nPushServerPort1={}\n",
                p.push
            ));
        }
        for (i, port) in p.msg.iter().enumerate() {
            self.write_conf(
                &format!("msg{i}"),
                "msgserver.conf",
                &format!(
                    "{msg_extra}{links}\
                     ListenIP=127.0.0.1\nListenPort={port}\nIpAddr1=127.0.0.1\nIpAddr2=127.0.0.1\n\
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
