//! login_server settings read from `loginserver.conf`, with the keys of the original:
//! `ClientListenIP`, `ClientPort`, `HttpListenIP`, `HttpPort`, `MsgServerListenIP`,
//! `MsgServerPort` (IP keys take `;` lists), `msfs` and `discovery` (handed to HTTP clients
//! verbatim). All are required.
//!
//! Key added here (optional): `HttpTimeout` (seconds, default 60, at least 1): an HTTP
//! connection is closed when it has been silent that long, and when its request is not
//! complete that long after the accept (a client trickling its request byte by byte).

use std::time::Duration;

use tt_common::{Conf, ConfError};

use crate::server::Kind;

/// Everything login_server takes from its conf file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub client_ips: Vec<String>,
    pub client_port: u16,
    pub http_ips: Vec<String>,
    pub http_port: u16,
    pub msg_server_ips: Vec<String>,
    pub msg_server_port: u16,
    /// The file-storage URL (`msfsPrior` and `msfsBackup` of the HTTP reply).
    pub msfs: String,
    /// The `discovery` URL of the HTTP reply.
    pub discovery: String,
    /// `HttpTimeout`: receive silence, and time from the accept to a complete request.
    pub http_timeout: Duration,
}

impl Settings {
    /// Reads the settings. Errors name the file and the key.
    pub fn from_conf(conf: &Conf) -> Result<Settings, ConfError> {
        let http_timeout: u64 = conf.get_parse("HttpTimeout", 60)?;
        if http_timeout == 0 {
            return Err(conf.invalid("HttpTimeout", "0", "a number of seconds of at least 1"));
        }
        Ok(Settings {
            client_ips: conf.require_list("ClientListenIP", ';')?,
            client_port: conf.require_parse("ClientPort")?,
            http_ips: conf.require_list("HttpListenIP", ';')?,
            http_port: conf.require_parse("HttpPort")?,
            msg_server_ips: conf.require_list("MsgServerListenIP", ';')?,
            msg_server_port: conf.require_parse("MsgServerPort")?,
            msfs: conf.require("msfs")?.to_string(),
            discovery: conf.require("discovery")?.to_string(),
            http_timeout: Duration::from_secs(http_timeout),
        })
    }

    /// The listen addresses, port and connection kind of each of the three interfaces.
    pub fn listeners(&self) -> [(&[String], u16, Kind); 3] {
        [
            (&self.client_ips, self.client_port, Kind::Client),
            (&self.http_ips, self.http_port, Kind::Http),
            (&self.msg_server_ips, self.msg_server_port, Kind::MsgServer),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONF: &str = "ClientListenIP=0.0.0.0\nClientPort=8008\n\
        HttpListenIP=127.0.0.1;10.0.0.1\nHttpPort=8080\n\
        MsgServerListenIP=127.0.0.1\nMsgServerPort=8100\n\
        msfs=http://127.0.0.1:8700/\ndiscovery=http://127.0.0.1/api/discovery\n";

    #[test]
    fn reads_the_original_keys() {
        let s = Settings::from_conf(&Conf::parse(CONF, "loginserver.conf")).unwrap();
        assert_eq!(s.client_ips, vec!["0.0.0.0"]);
        assert_eq!(s.client_port, 8008);
        assert_eq!(s.http_ips, vec!["127.0.0.1", "10.0.0.1"]);
        assert_eq!(s.http_port, 8080);
        assert_eq!(s.msg_server_ips, vec!["127.0.0.1"]);
        assert_eq!(s.msg_server_port, 8100);
        assert_eq!(s.msfs, "http://127.0.0.1:8700/");
        assert_eq!(s.discovery, "http://127.0.0.1/api/discovery");
        assert_eq!(s.http_timeout, Duration::from_secs(60));
        let kinds: Vec<(u16, Kind)> = s.listeners().iter().map(|l| (l.1, l.2)).collect();
        assert_eq!(
            kinds,
            [
                (8008, Kind::Client),
                (8080, Kind::Http),
                (8100, Kind::MsgServer)
            ]
        );
    }

    #[test]
    fn every_key_is_required() {
        for key in [
            "ClientListenIP",
            "ClientPort",
            "HttpListenIP",
            "HttpPort",
            "MsgServerListenIP",
            "MsgServerPort",
            "msfs",
            "discovery",
        ] {
            let text: String = CONF
                .lines()
                .filter(|l| !l.starts_with(&format!("{key}=")))
                .map(|l| format!("{l}\n"))
                .collect();
            let e = Settings::from_conf(&Conf::parse(&text, "loginserver.conf")).unwrap_err();
            assert!(e.to_string().contains(key), "{key}: {e}");
        }
        let bad = CONF.replace("HttpPort=8080", "HttpPort=80800");
        let e = Settings::from_conf(&Conf::parse(&bad, "loginserver.conf")).unwrap_err();
        assert!(e.to_string().contains("HttpPort"), "{e}");
        let zero = format!("{CONF}HttpTimeout=0\n");
        let e = Settings::from_conf(&Conf::parse(&zero, "loginserver.conf")).unwrap_err();
        assert!(e.to_string().contains("HttpTimeout"), "{e}");
        let two = format!("{CONF}HttpTimeout=2\n");
        let s = Settings::from_conf(&Conf::parse(&two, "loginserver.conf")).unwrap();
        assert_eq!(s.http_timeout, Duration::from_secs(2));
    }
}
