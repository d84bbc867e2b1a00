//! http_msg_server: the administrative HTTP API of TeamTalk (spec msg_server.md §13). It
//! creates groups and changes their members through db_proxy_server, and has route_server tell
//! the members online on every msg_server of a change; it also reads a group or a user back.
//!
//! | request | what |
//! |---|---|
//! | `POST /query/CreateGroup` | `{req_user_id, group_name, group_type, group_avatar, user_id_list}` → `{error_code, error_msg, group_id}` |
//! | `POST /query/ChangeMembers` | `{req_user_id, group_id, modify_type, user_id_list}` → `{error_code, error_msg}` |
//! | `GET /query/GroupInfo?group_id=` | the group: name, avatar, type, creator, version, members |
//! | `GET /query/UserInfo?user_id=` | the user: names, avatar, department, contact, status |
//!
//! Conf `httpmsgserver.conf`: see [`settings`].

mod api;
mod server;
mod settings;

use std::process::ExitCode;

use netlib::{Config, EventLoop};
use tt_common::{Conf, PduServer, daemon};

use crate::server::HttpMsgServer;
use crate::settings::Settings;

fn main() -> ExitCode {
    daemon::run_main(
        "HttpMsgServer",
        "httpmsgserver.conf",
        "http_msg_server",
        run,
    )
}

fn run(conf_path: &std::path::Path) -> Result<(), String> {
    let settings = Conf::load(conf_path)
        .and_then(|c| Settings::from_conf(&c))
        .map_err(|e| e.to_string())?;
    let config = Config {
        // HttpConn consumes request bytes as it parses them; PDUs from db_proxy are far smaller.
        max_input: 4 * 1024 * 1024,
        ..Config::default()
    };
    let mut ev = EventLoop::new(config).map_err(|e| format!("event loop: {e}"))?;
    let listeners = daemon::listen_all(ev.net(), &settings.listen_ips, settings.listen_port)?;
    let mut service = HttpMsgServer::new(listeners, &settings)?;
    service.start(ev.net());
    let mut server = PduServer::new(service, ev.net());
    daemon::serve("http_msg_server", &mut ev, &mut server)
}
