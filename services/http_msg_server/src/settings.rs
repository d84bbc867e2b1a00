//! http_msg_server settings read from `httpmsgserver.conf`.
//!
//! Keys of the original (spec msg_server.md §13.1): `ListenIP` (`;` list) and `ListenPort`
//! (required), `ConcurrentDBConnCnt` (default 2, at least 1), `DBServerIP<n>`/`DBServerPort<n>`
//! (none, or at least two entries), `RouteServerIP<n>`/`RouteServerPort<n>`.
//!
//! Keys added here (all optional):
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `AppKey` | empty (no check) | shared secret: a request whose `app_key` differs is refused with error 5 |
//! | `RequestTimeoutMs` | 10000 | a request db_proxy has not answered by then gets 504 and error 10 |
//! | `MaxBodySize` | 65536 | largest request body in bytes; a larger one is refused with 413 before it is read |
//! | `MaxPendingRequests` | 1024 | requests waiting for db_proxy at once; past it 503 and error 10 |
//! | `HttpTimeout` | 60 | seconds of receive silence after which an idle HTTP connection is closed |

use std::time::Duration;

use tt_common::{Conf, ConfError};

/// Everything http_msg_server takes from its conf file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub listen_ips: Vec<String>,
    pub listen_port: u16,
    pub concurrent_db_conn_cnt: usize,
    pub db_servers: Vec<(String, u16)>,
    pub route_servers: Vec<(String, u16)>,
    /// `AppKey`; `None` when absent (every `app_key` passes, as the original's stub).
    pub app_key: Option<String>,
    pub request_timeout: Duration,
    pub max_body: usize,
    pub max_pending: usize,
    pub http_timeout: Duration,
}

impl Settings {
    /// Reads and validates the settings. Errors name the file and the key.
    pub fn from_conf(conf: &Conf) -> Result<Settings, ConfError> {
        let db_servers = conf.server_list("DBServerIP", "DBServerPort")?;
        let route_servers = conf.server_list("RouteServerIP", "RouteServerPort")?;
        if db_servers.len() == 1 {
            // As the original: db_proxy entries come in pools, so one alone is a mistake.
            return Err(ConfError::Missing {
                file: conf.file().to_path_buf(),
                key: "DBServerIP2".into(),
            });
        }
        let concurrent_db_conn_cnt: usize = conf.get_parse("ConcurrentDBConnCnt", 2)?;
        if concurrent_db_conn_cnt == 0 {
            return Err(conf.invalid("ConcurrentDBConnCnt", "0", "a number of at least 1"));
        }
        let request_timeout_ms: u64 = conf.get_parse("RequestTimeoutMs", 10_000)?;
        if request_timeout_ms == 0 {
            return Err(conf.invalid("RequestTimeoutMs", "0", "milliseconds, at least 1"));
        }
        let max_body: usize = conf.get_parse("MaxBodySize", 64 * 1024)?;
        let max_pending: usize = conf.get_parse("MaxPendingRequests", 1024)?;
        if max_pending == 0 {
            return Err(conf.invalid("MaxPendingRequests", "0", "a number of at least 1"));
        }
        let http_timeout: u64 = conf.get_parse("HttpTimeout", 60)?;
        if http_timeout == 0 {
            return Err(conf.invalid("HttpTimeout", "0", "a number of seconds of at least 1"));
        }
        Ok(Settings {
            listen_ips: conf.require_list("ListenIP", ';')?,
            listen_port: conf.require_parse("ListenPort")?,
            concurrent_db_conn_cnt,
            db_servers,
            route_servers,
            app_key: conf.get("AppKey").map(str::to_string),
            request_timeout: Duration::from_millis(request_timeout_ms),
            max_body,
            max_pending,
            http_timeout: Duration::from_secs(http_timeout),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONF: &str = "ListenIP=127.0.0.1;10.0.0.1\nListenPort=8400\n\
        DBServerIP1=127.0.0.1\nDBServerPort1=10600\nDBServerIP2=127.0.0.1\nDBServerPort2=10600\n\
        RouteServerIP1=127.0.0.1\nRouteServerPort1=8200\n";

    fn parse(text: &str) -> Result<Settings, ConfError> {
        Settings::from_conf(&Conf::parse(text, "httpmsgserver.conf"))
    }

    #[test]
    fn reads_the_original_keys_with_defaults() {
        let s = parse(CONF).unwrap();
        assert_eq!(s.listen_ips, vec!["127.0.0.1", "10.0.0.1"]);
        assert_eq!(s.listen_port, 8400);
        assert_eq!(s.concurrent_db_conn_cnt, 2);
        assert_eq!(s.db_servers.len(), 2);
        assert_eq!(s.route_servers, vec![("127.0.0.1".to_string(), 8200)]);
        assert_eq!(s.app_key, None);
        assert_eq!(s.request_timeout, Duration::from_secs(10));
        assert_eq!(s.max_body, 65536);
        assert_eq!(s.max_pending, 1024);
        assert_eq!(s.http_timeout, Duration::from_secs(60));
        let more = format!(
            "{CONF}AppKey=s3cret\nRequestTimeoutMs=1500\nMaxBodySize=1048576\n\
             MaxPendingRequests=8\nHttpTimeout=5\nConcurrentDBConnCnt=3\n"
        );
        let s = parse(&more).unwrap();
        assert_eq!(s.app_key.as_deref(), Some("s3cret"));
        assert_eq!(s.request_timeout, Duration::from_millis(1500));
        assert_eq!((s.max_body, s.max_pending), (1 << 20, 8));
        assert_eq!(s.http_timeout, Duration::from_secs(5));
        assert_eq!(s.concurrent_db_conn_cnt, 3);
        // No db_proxy at all is allowed (every request then gets error 10).
        let none = "ListenIP=127.0.0.1\nListenPort=8400\n";
        assert!(parse(none).unwrap().db_servers.is_empty());
    }

    #[test]
    fn the_shipped_conf_file() {
        let text = include_str!("../../../conf/httpmsgserver.conf");
        let s = parse(text).unwrap();
        assert_eq!(s.listen_port, 8400);
        assert_eq!(s.db_servers, vec![("127.0.0.1".to_string(), 10600); 2]);
        assert_eq!(s.route_servers, vec![("127.0.0.1".to_string(), 8200)]);
        assert_eq!(s.app_key, None);
    }

    #[test]
    fn refusals_name_the_key() {
        let cases = [
            (CONF.replace("ListenPort=8400\n", ""), "ListenPort"),
            (
                CONF.replace("ListenIP=127.0.0.1;10.0.0.1\n", ""),
                "ListenIP",
            ),
            (CONF.replace("DBServerIP2=127.0.0.1\n", ""), "DBServerIP2"),
            (
                format!("{CONF}ConcurrentDBConnCnt=0\n"),
                "ConcurrentDBConnCnt",
            ),
            (format!("{CONF}RequestTimeoutMs=0\n"), "RequestTimeoutMs"),
            (
                format!("{CONF}MaxPendingRequests=0\n"),
                "MaxPendingRequests",
            ),
            (format!("{CONF}HttpTimeout=0\n"), "HttpTimeout"),
            (format!("{CONF}MaxBodySize=big\n"), "MaxBodySize"),
        ];
        for (text, key) in cases {
            let e = parse(&text).unwrap_err();
            assert!(e.to_string().contains(key), "{key}: {e}");
        }
    }
}
