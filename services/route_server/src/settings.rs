//! route_server settings read from `routeserver.conf`: `ListenIP` (a `;` list) and
//! `ListenMsgPort`, the keys of the original.

use tt_common::{Conf, ConfError};

/// Everything route_server takes from its conf file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub listen_ips: Vec<String>,
    pub listen_port: u16,
}

impl Settings {
    /// Reads the settings. Errors name the file and the key.
    pub fn from_conf(conf: &Conf) -> Result<Settings, ConfError> {
        Ok(Settings {
            listen_ips: conf.require_list("ListenIP", ';')?,
            listen_port: conf.require_parse("ListenMsgPort")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_original_keys() {
        let conf = Conf::parse(
            "ListenIP=127.0.0.1;0.0.0.0\nListenMsgPort=8200\n",
            "routeserver.conf",
        );
        let s = Settings::from_conf(&conf).unwrap();
        assert_eq!(s.listen_ips, vec!["127.0.0.1", "0.0.0.0"]);
        assert_eq!(s.listen_port, 8200);
        let e = Settings::from_conf(&Conf::parse("ListenIP=127.0.0.1\n", "routeserver.conf"))
            .unwrap_err();
        assert!(e.to_string().contains("ListenMsgPort"), "{e}");
    }
}
