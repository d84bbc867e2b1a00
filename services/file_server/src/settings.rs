//! file_server settings read from `fileserver.conf`.
//!
//! Keys of the original (all required): `ClientListenIP` (`;` list), `ClientListenPort`,
//! `MsgServerListenIP` (`;` list here, one address in the original), `MsgServerListenPort`,
//! `TaskTimeout` (seconds; read and checked, as the original, which never uses it either).
//!
//! Optional keys:
//! - `FileServerIp` (`;` list): the addresses handed to msg_server instead of `ClientListenIP`
//!   (the balloonwj fork's key). Without it `ClientListenIP` is handed out, except that
//!   `0.0.0.0` (or `::`) becomes `127.0.0.1`, with a warning;
//! - `OfflineFileDir` (default `offline_file`, relative to the working directory): where
//!   offline files are stored, as `<dir>/<first two chars of the task id>/<task id>`;
//! - `MaxFileSize` (bytes, default 1 GiB, at most 4294967295): larger transfer requests are
//!   refused;
//! - `MaxTasks` (default 10000): transfer requests beyond this many tasks in memory are refused;
//! - `OfflineDiskLimitMB` (MiB, default 10240): offline files (headers included) plus the
//!   uploads under way never take more of `OfflineFileDir`; an offline transfer request that
//!   would pass it is refused;
//! - `TaskWaitTimeout` (seconds, default 3600): a task whose peers are not all logged in this
//!   long after its creation is dropped (its connections closed);
//! - `OfflineFileDays` (default 7, 0: never): stored offline files older than this are deleted;
//! - `OfflineFileCheckInterval` (seconds, default 3600): how often that is checked (also at
//!   start).

use std::path::PathBuf;
use std::time::Duration;

use tt_common::{Conf, ConfError};

/// Keys of the shipped `auto_setup` conf that the original's code does not read.
const OBSOLETE_KEYS: [&str; 2] = ["Address", "ListenPort"];

/// Everything file_server takes from its conf file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub client_ips: Vec<String>,
    pub client_port: u16,
    pub msg_server_ips: Vec<String>,
    pub msg_server_port: u16,
    /// `TaskTimeout`, as read.
    pub task_timeout: u32,
    /// The addresses sent in `IMFileServerIPRsp`, with `client_port`.
    pub advertised_ips: Vec<String>,
    pub limits: Limits,
    pub store: StoreSettings,
}

/// Bounds on tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_file_size: u32,
    pub max_tasks: usize,
    pub task_wait: Duration,
}

/// Where and how long offline files are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreSettings {
    pub dir: PathBuf,
    /// Bytes.
    pub disk_limit: u64,
    /// `None`: files never expire.
    pub max_age: Option<Duration>,
    pub check_interval: Duration,
}

impl Settings {
    /// Reads the settings. Errors name the file and the key.
    pub fn from_conf(conf: &Conf) -> Result<Settings, ConfError> {
        if conf.get("ClientListenIP").is_none() {
            for key in OBSOLETE_KEYS {
                if let Some(value) = conf.get(key) {
                    return Err(conf.invalid(
                        key,
                        value,
                        "read by file_server: the auto_setup conf's `Address`/`ListenPort` are \
                         obsolete; the keys are ClientListenIP, ClientListenPort, \
                         MsgServerListenIP, MsgServerListenPort and TaskTimeout",
                    ));
                }
            }
        }
        let client_ips = conf.require_list("ClientListenIP", ';')?;
        let client_port = conf.require_parse("ClientListenPort")?;
        let msg_server_ips = conf.require_list("MsgServerListenIP", ';')?;
        let msg_server_port = conf.require_parse("MsgServerListenPort")?;
        let task_timeout = conf.require_parse("TaskTimeout")?;
        let advertised_ips = match conf.get("FileServerIp") {
            Some(_) => conf.require_list("FileServerIp", ';')?,
            None => client_ips.iter().map(|ip| advertised(ip)).collect(),
        };
        let max_file_size = conf.get_parse("MaxFileSize", 1u32 << 30)?;
        let max_tasks = positive(conf, "MaxTasks", 10_000)?;
        let disk_mb: u64 = positive(conf, "OfflineDiskLimitMB", 10_240)?;
        let task_wait = positive(conf, "TaskWaitTimeout", 3600)?;
        let days: u64 = conf.get_parse("OfflineFileDays", 7)?;
        let check = positive(conf, "OfflineFileCheckInterval", 3600)?;
        Ok(Settings {
            client_ips,
            client_port,
            msg_server_ips,
            msg_server_port,
            task_timeout,
            advertised_ips,
            limits: Limits {
                max_file_size,
                max_tasks,
                task_wait: Duration::from_secs(task_wait),
            },
            store: StoreSettings {
                dir: PathBuf::from(conf.get("OfflineFileDir").unwrap_or("offline_file")),
                disk_limit: disk_mb.saturating_mul(1024 * 1024),
                max_age: (days > 0).then(|| Duration::from_secs(days.saturating_mul(86_400))),
                check_interval: Duration::from_secs(check),
            },
        })
    }
}

/// An optional number of at least 1.
fn positive<T>(conf: &Conf, key: &str, default: T) -> Result<T, ConfError>
where
    T: std::str::FromStr + PartialOrd + From<u8> + Copy + std::fmt::Display,
{
    let v: T = conf.get_parse(key, default)?;
    if v < T::from(1) {
        return Err(conf.invalid(key, &v.to_string(), "a number of at least 1"));
    }
    Ok(v)
}

/// The address handed out for a listen address: a wildcard is no address a client can use.
fn advertised(ip: &str) -> String {
    if ip == "0.0.0.0" || ip == "::" {
        log::warn!(
            "ClientListenIP {ip} cannot be handed to clients; 127.0.0.1 is advertised instead \
             (set FileServerIp to the address clients reach)"
        );
        "127.0.0.1".to_string()
    } else {
        ip.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONF: &str = "ClientListenIP=0.0.0.0;10.0.0.2\nClientListenPort=8600\n\
        MsgServerListenIP=127.0.0.1\nMsgServerListenPort=8601\nTaskTimeout=60\n";

    fn parse(text: &str) -> Result<Settings, ConfError> {
        Settings::from_conf(&Conf::parse(text, "fileserver.conf"))
    }

    #[test]
    fn reads_the_original_keys_with_defaults() {
        let s = parse(CONF).unwrap();
        assert_eq!(s.client_ips, vec!["0.0.0.0", "10.0.0.2"]);
        assert_eq!((s.client_port, s.msg_server_port), (8600, 8601));
        assert_eq!(s.msg_server_ips, vec!["127.0.0.1"]);
        assert_eq!(s.task_timeout, 60);
        assert_eq!(s.advertised_ips, vec!["127.0.0.1", "10.0.0.2"]);
        assert_eq!(s.limits.max_file_size, 1 << 30);
        assert_eq!(s.limits.max_tasks, 10_000);
        assert_eq!(s.limits.task_wait, Duration::from_secs(3600));
        assert_eq!(s.store.dir, PathBuf::from("offline_file"));
        assert_eq!(s.store.disk_limit, 10_240 * 1024 * 1024);
        assert_eq!(s.store.max_age, Some(Duration::from_secs(7 * 86_400)));
        assert_eq!(s.store.check_interval, Duration::from_secs(3600));
    }

    #[test]
    fn optional_keys() {
        let s = parse(&format!(
            "{CONF}FileServerIp=1.2.3.4;5.6.7.8\nOfflineFileDir=/var/tt\nMaxFileSize=100\n\
             MaxTasks=3\nOfflineDiskLimitMB=2\nTaskWaitTimeout=5\nOfflineFileDays=0\n\
             OfflineFileCheckInterval=9\n"
        ))
        .unwrap();
        assert_eq!(s.advertised_ips, vec!["1.2.3.4", "5.6.7.8"]);
        assert_eq!(s.store.dir, PathBuf::from("/var/tt"));
        assert_eq!(s.limits.max_file_size, 100);
        assert_eq!(s.limits.max_tasks, 3);
        assert_eq!(s.store.disk_limit, 2 * 1024 * 1024);
        assert_eq!(s.limits.task_wait, Duration::from_secs(5));
        assert_eq!(s.store.max_age, None);
        assert_eq!(s.store.check_interval, Duration::from_secs(9));
        for bad in ["MaxTasks=0", "TaskWaitTimeout=0", "MaxFileSize=4294967296"] {
            let e = parse(&format!("{CONF}{bad}\n")).unwrap_err();
            let key = bad.split('=').next().unwrap();
            assert!(e.to_string().contains(key), "{bad}: {e}");
        }
    }

    #[test]
    fn every_original_key_is_required() {
        for key in [
            "ClientListenIP",
            "ClientListenPort",
            "MsgServerListenIP",
            "MsgServerListenPort",
            "TaskTimeout",
        ] {
            let text: String = CONF
                .lines()
                .filter(|l| !l.starts_with(&format!("{key}=")))
                .map(|l| format!("{l}\n"))
                .collect();
            let e = parse(&text).unwrap_err();
            assert!(e.to_string().contains(key), "{key}: {e}");
        }
    }

    #[test]
    fn the_obsolete_auto_setup_keys_are_named() {
        let e = parse("Address=0.0.0.0\nListenPort=8600\nTaskTimeout=60\n").unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("Address") && text.contains("ClientListenIP"),
            "{text}"
        );
    }
}
