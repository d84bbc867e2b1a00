//! Code every TeamTalk daemon shares (the original's `base/` above the socket layer):
//!
//! | original                                   | here                                  |
//! |--------------------------------------------|---------------------------------------|
//! | `CConfigFileReader`                        | [`conf::Conf`]                        |
//! | `CImConn` (framing, `HandlePdu`, `OnTimer`) shared by every daemon | [`service::PduServer`] running a [`service::PduService`] |
//! | `CImConn::SendPdu`                         | [`pdu_io::send`], [`pdu_io::reply`], [`pdu_io::relay`] |
//! | `OnTimer` heartbeat / receive timeout      | [`pdu_io::KeepAlive`]                 |
//! | `serv_info`, `serv_init`, `serv_check_reconnect`, `serv_reset` | [`links::ServerLinks`] |
//! | db_proxy login/general pools, the master route_server | [`pools::DbPool`], [`pools::MasterLink`] |
//! | `slog` / `log` macros                      | `log` + `env_logger` ([`daemon::init_logging`]) |
//! | `main` boilerplate (`-v`, `server.pid`)    | [`daemon`]                            |
//! | (none: the original stops on the spot)     | [`stop`]: graceful stop, `StopTimeout` |
//! | (none)                                     | [`metrics`]: `/metrics` and `/healthz` on `MetricsPort` |

pub mod conf;
pub mod daemon;
pub mod links;
pub mod metrics;
pub mod pdu_io;
pub mod pools;
pub mod service;
pub mod stop;

pub use conf::{Conf, ConfError};
pub use links::ServerLinks;
pub use pdu_io::{Flow, KeepAlive};
pub use service::{Accepted, PduServer, PduService};
