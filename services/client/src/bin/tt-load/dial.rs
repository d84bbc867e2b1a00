//! Opening client connections: to a msg_server given on the command line or handed out by
//! login_server, from the `--bind` source addresses in turn.

use std::io;
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tt_client::{Client, UserStatType};

use crate::options::{Options, Target};

/// Longest wait for one TCP connect.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A TCP connection to `addr`, from `source` (port picked by the kernel) when given.
/// `std::net::TcpStream` cannot bind before it connects; socket2 can.
pub(crate) fn open(addr: SocketAddr, source: Option<IpAddr>) -> io::Result<TcpStream> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if let Some(ip) = source {
        socket.bind(&SocketAddr::new(ip, 0).into())?;
    }
    socket.connect_timeout(&addr.into(), CONNECT_TIMEOUT)?;
    Ok(socket.into())
}

/// The source address of connection number `n` (`--bind` round robin; None: the kernel's).
pub(crate) fn source(opts: &Options, n: usize) -> Option<IpAddr> {
    (!opts.bind.is_empty()).then(|| opts.bind[n % opts.bind.len()])
}

/// Connection number `n` to msg_server number `server` of the list (modulo its length), or
/// to the one login_server hands out (its `prior_ip` first, then `backup_ip`).
pub(crate) fn stream(opts: &Options, server: usize, n: usize) -> Result<TcpStream, String> {
    let from = source(opts, n);
    let candidates: Vec<(String, u16)> = match &opts.target {
        Target::MsgServers(list) => {
            let addr = &list[server % list.len()];
            addr.to_socket_addrs()
                .map_err(|e| format!("resolving {addr}: {e}"))?
                .map(|a| (a.ip().to_string(), a.port()))
                .collect()
        }
        Target::LoginUrl(url) => Client::discover(url)
            .map_err(|e| format!("discovery at {url}: {e}"))?
            .candidates(),
    };
    let mut last = String::from("no msg_server address");
    for (host, port) in candidates {
        let addrs = match (host.as_str(), port).to_socket_addrs() {
            Ok(a) => a,
            Err(e) => {
                last = format!("resolving {host}:{port}: {e}");
                continue;
            }
        };
        for a in addrs {
            match open(a, from) {
                Ok(s) => return Ok(s),
                Err(e) => {
                    last = match from {
                        Some(ip) => format!("connect to {a} from {ip}: {e}"),
                        None => format!("connect to {a}: {e}"),
                    }
                }
            }
        }
    }
    Err(last)
}

/// `user` logged in on `stream` (online, `--client-type`, `--password`); `heartbeat: false`
/// turns the client's automatic heartbeat off.
pub(crate) fn login(
    opts: &Options,
    stream: TcpStream,
    user: u32,
    heartbeat: bool,
) -> Result<Client, String> {
    let mut c = Client::from_stream(stream).map_err(|e| format!("user{user}: {e}"))?;
    if !heartbeat {
        c.set_heartbeat_interval(None);
    }
    c.login(
        &format!("user{user}"),
        &opts.password,
        opts.client_type,
        UserStatType::UserStatusOnline,
    )
    .map_err(|e| format!("user{user} login: {e}"))?;
    Ok(c)
}
