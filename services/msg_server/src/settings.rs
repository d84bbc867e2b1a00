//! msg_server settings read from `msgserver.conf` (the original's `msg_server.cpp` start-up).
//!
//! Keys of the original (spec msg_server.md §5.3): `ListenIP`, `ListenPort`, `IpAddr1`,
//! `IpAddr2`, `MaxConnCnt`, `aesKey`, `ConcurrentDBConnCnt`, `DBServerIP<n>`/`DBServerPort<n>`,
//! `LoginServerIP<n>`/`LoginServerPort<n>`, `RouteServerIP<n>`/`RouteServerPort<n>`,
//! `FileServerIP<n>`/`FileServerPort<n>` (file_server's msg_server port),
//! `PushServerIP<n>`/`PushServerPort<n>` (push_server; without one, no offline push is looked
//! up). `aesKey` decrypts the text of a message for its push.
//!
//! Keys added here (all optional):
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `MsgRateLimit` | 20 | messages (`CID_MSG_DATA`) one connection may send per second; more are dropped |
//! | `RelayRateLimit` | 100 | P2P commands, read acks and remove-session requests (relayed to other connections and msg_servers) one connection may send per second; more are dropped (0 = no limit) |
//! | `MaxPendingDbRequests` | 64 | requests one client connection may have waiting for a db_proxy/route_server reply; more are dropped with a log line |
//! | `MaxPduLen` | 1048576 | largest PDU accepted from a client (bytes, header included); a longer one closes the connection |
//! | `MaxOutputBuffer` | 16777216 | bytes queued for one connection (a client that stops reading, or a link) past which it is closed; at least 65536 |
//! | `MaxConnsPerIpBeforeLogin` | 1000 | client connections from one address that have not logged in yet; more are refused at accept (0 = no limit) |
//!
//! `MaxConnCnt` is enforced as well: past that many open client connections (logged in or
//! not) a new one is closed at once, with a log line (at most one a second).

use tt_common::{Conf, ConfError};

/// Smallest `MaxOutputBuffer`: below it a burst of ordinary replies could close a client.
pub const MIN_OUTPUT_BUFFER: usize = 64 * 1024;

/// Everything msg_server takes from its conf file.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen_ips: Vec<String>,
    pub listen_port: u16,
    pub ip_addr1: String,
    pub ip_addr2: String,
    pub max_conn_cnt: u32,
    pub concurrent_db_conn_cnt: usize,
    pub db_servers: Vec<(String, u16)>,
    pub login_servers: Vec<(String, u16)>,
    pub route_servers: Vec<(String, u16)>,
    pub push_servers: Vec<(String, u16)>,
    pub file_servers: Vec<(String, u16)>,
    /// `aesKey`: 32 bytes, the key of message texts (read for push texts).
    pub aes_key: String,
    pub msg_rate_limit: u32,
    pub relay_rate_limit: u32,
    pub max_pending_requests: usize,
    pub max_pdu_len: u32,
    pub max_output_buffer: usize,
    pub max_conns_per_ip_before_login: u32,
}

impl Settings {
    /// Reads and validates the settings. Errors name the file and the key.
    pub fn from_conf(conf: &Conf) -> Result<Settings, ConfError> {
        let db_servers = conf.server_list("DBServerIP", "DBServerPort")?;
        let login_servers = conf.server_list("LoginServerIP", "LoginServerPort")?;
        let route_servers = conf.server_list("RouteServerIP", "RouteServerPort")?;
        let push_servers = conf.server_list("PushServerIP", "PushServerPort")?;
        let file_servers = conf.server_list("FileServerIP", "FileServerPort")?;

        // Checked as the original does; push texts are decrypted with it.
        let aes_key = conf.require("aesKey")?.to_string();
        if aes_key.len() != 32 {
            return Err(conf.invalid("aesKey", &aes_key, "exactly 32 characters"));
        }
        if db_servers.len() < 2 {
            // The original needs two db_proxy entries (login pool and general pool).
            let key = format!("DBServerIP{}", db_servers.len() + 1);
            return Err(ConfError::Missing {
                file: conf.file().to_path_buf(),
                key,
            });
        }
        let concurrent_db_conn_cnt: usize = conf.get_parse("ConcurrentDBConnCnt", 10)?;
        if concurrent_db_conn_cnt == 0 {
            return Err(conf.invalid("ConcurrentDBConnCnt", "0", "a number of at least 1"));
        }
        let listen_ips = conf.require_list("ListenIP", ';')?;
        let listen_port: u16 = conf.require_parse("ListenPort")?;
        let ip_addr1 = conf.require("IpAddr1")?.to_string();
        let ip_addr2 = conf.get("IpAddr2").unwrap_or(&ip_addr1).to_string();
        let max_conn_cnt: u32 = conf.require_parse("MaxConnCnt")?;
        let msg_rate_limit: u32 = conf.get_parse("MsgRateLimit", 20)?;
        let relay_rate_limit: u32 = conf.get_parse("RelayRateLimit", 100)?;
        let max_pending_requests: usize = conf.get_parse("MaxPendingDbRequests", 64)?;
        if max_pending_requests == 0 {
            // 0 would drop every request and message of every client.
            return Err(conf.invalid("MaxPendingDbRequests", "0", "a number of at least 1"));
        }
        let max_pdu_len: u32 = conf.get_parse("MaxPduLen", 1024 * 1024)?;
        if max_pdu_len < 16 {
            return Err(conf.invalid("MaxPduLen", &max_pdu_len.to_string(), "at least 16"));
        }
        let max_output_buffer: usize = conf.get_parse("MaxOutputBuffer", 16 * 1024 * 1024)?;
        if max_output_buffer < MIN_OUTPUT_BUFFER {
            let value = max_output_buffer.to_string();
            return Err(conf.invalid("MaxOutputBuffer", &value, "at least 65536"));
        }
        let max_conns_per_ip_before_login: u32 =
            conf.get_parse("MaxConnsPerIpBeforeLogin", 1000)?;
        Ok(Settings {
            listen_ips,
            listen_port,
            ip_addr1,
            ip_addr2,
            max_conn_cnt,
            concurrent_db_conn_cnt,
            db_servers,
            login_servers,
            route_servers,
            push_servers,
            file_servers,
            aes_key,
            msg_rate_limit,
            relay_rate_limit,
            max_pending_requests,
            max_pdu_len,
            max_output_buffer,
            max_conns_per_ip_before_login,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "ListenIP=127.0.0.1\nListenPort=8000\nIpAddr1=1.2.3.4\nMaxConnCnt=10\n\
        aesKey=12345678901234567890123456789012\nDBServerIP1=127.0.0.1\nDBServerPort1=10600\n\
        DBServerIP2=127.0.0.1\nDBServerPort2=10600\n";

    #[test]
    fn reads_the_original_keys_with_defaults() {
        let s = Settings::from_conf(&Conf::parse(BASE, "msgserver.conf")).unwrap();
        assert_eq!(s.ip_addr2, "1.2.3.4");
        assert_eq!(s.concurrent_db_conn_cnt, 10);
        assert_eq!(s.db_servers.len(), 2);
        assert_eq!(s.msg_rate_limit, 20);
        assert_eq!(s.relay_rate_limit, 100);
        assert!(s.route_servers.is_empty());
        assert_eq!(s.max_output_buffer, 16 * 1024 * 1024);
        assert_eq!(s.max_conns_per_ip_before_login, 1000);
    }

    #[test]
    fn a_small_output_buffer_is_refused() {
        let text = format!("{BASE}MaxOutputBuffer=65535\n");
        let e = Settings::from_conf(&Conf::parse(&text, "msgserver.conf")).unwrap_err();
        assert!(e.to_string().contains("MaxOutputBuffer"), "{e}");
        let text = format!("{BASE}MaxOutputBuffer=65536\nMaxConnsPerIpBeforeLogin=0\n");
        let s = Settings::from_conf(&Conf::parse(&text, "msgserver.conf")).unwrap();
        assert_eq!(
            (s.max_output_buffer, s.max_conns_per_ip_before_login),
            (65536, 0)
        );
    }

    #[test]
    fn one_db_server_is_refused() {
        let text = BASE.replace("DBServerIP2=127.0.0.1\n", "");
        let e = Settings::from_conf(&Conf::parse(&text, "msgserver.conf")).unwrap_err();
        assert!(e.to_string().contains("DBServerIP2"), "{e}");
    }

    #[test]
    fn bad_aes_key_and_zero_db_conns_are_refused() {
        let text = BASE.replace("aesKey=1234", "aesKey=34");
        let e = Settings::from_conf(&Conf::parse(&text, "msgserver.conf")).unwrap_err();
        assert!(e.to_string().contains("aesKey"), "{e}");
        let text = format!("{BASE}MaxPendingDbRequests=0\n");
        let e = Settings::from_conf(&Conf::parse(&text, "msgserver.conf")).unwrap_err();
        assert!(e.to_string().contains("MaxPendingDbRequests"), "{e}");
        let text = format!("{BASE}ConcurrentDBConnCnt=0\n");
        let e = Settings::from_conf(&Conf::parse(&text, "msgserver.conf")).unwrap_err();
        assert!(e.to_string().contains("ConcurrentDBConnCnt"), "{e}");
    }
}
