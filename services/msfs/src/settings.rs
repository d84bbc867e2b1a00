//! msfs settings read from `msfs.conf` (storage-file.md §8.1).
//!
//! The original's keys, all required: `ListenIP` (`;` list), `ListenPort`, `BaseDir`,
//! `FileCnt`, `FilesPerDir`, `GetThreadCount`, `PostThreadCount` (both at least 1).
//! `GetThreadCount` is checked and otherwise unused: downloads are read on the loop thread
//! (see `server`).
//!
//! Keys added here (optional, defaults shown):
//! - `MaxUploadSize=10485760`: largest upload request body (the original's limit on
//!   `Content-Length`); a larger one is refused with the original's error 1 before it is read;
//! - `MaxUploadMemory=67108864`: request bytes held in memory by all connections together
//!   (bodies arriving, bodies being written); a request pushing past it is refused (503);
//! - `MaxConnections=4096`: open HTTP connections; further ones are closed at once;
//! - `RequestTimeout=120`: seconds from the first byte of a request to its last; a slower
//!   request is refused (408) and its connection closed;
//! - `IdleTimeout=30`: seconds without a byte received or sent before a connection is closed
//!   (the original's 30 s).

use std::path::PathBuf;
use std::time::Duration;

use tt_common::{Conf, ConfError};

/// Everything msfs takes from its conf file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub listen_ips: Vec<String>,
    pub listen_port: u16,
    /// `BaseDir`: the storage root (relative to the working directory unless absolute).
    pub base_dir: PathBuf,
    /// `FileCnt`: files stored so far; decides the directory of the next one.
    pub file_cnt: u64,
    /// `FilesPerDir`: files per leaf directory (at least 1).
    pub files_per_dir: u64,
    pub get_threads: usize,
    pub post_threads: usize,
    pub max_upload: usize,
    pub max_upload_memory: usize,
    pub max_connections: usize,
    pub request_timeout: Duration,
    pub idle_timeout: Duration,
}

/// Default of `MaxUploadSize`: the original's 10 MiB.
pub const MAX_UPLOAD: usize = 10 * 1024 * 1024;
/// Default of `MaxUploadMemory`.
pub const MAX_UPLOAD_MEMORY: usize = 64 * 1024 * 1024;

impl Settings {
    /// Reads the settings. Errors name the file and the key.
    pub fn from_conf(conf: &Conf) -> Result<Settings, ConfError> {
        let positive = |key: &str, default: u64| -> Result<u64, ConfError> {
            let v: u64 = match default {
                0 => conf.require_parse(key)?,
                d => conf.get_parse(key, d)?,
            };
            if v == 0 {
                return Err(conf.invalid(key, "0", "a number of at least 1"));
            }
            Ok(v)
        };
        let max_upload = positive("MaxUploadSize", MAX_UPLOAD as u64)?;
        let max_upload_memory = positive("MaxUploadMemory", MAX_UPLOAD_MEMORY as u64)?;
        if max_upload_memory < max_upload {
            return Err(conf.invalid(
                "MaxUploadMemory",
                &max_upload_memory.to_string(),
                "at least MaxUploadSize",
            ));
        }
        Ok(Settings {
            listen_ips: conf.require_list("ListenIP", ';')?,
            listen_port: conf.require_parse("ListenPort")?,
            base_dir: PathBuf::from(conf.require("BaseDir")?),
            file_cnt: conf.require_parse("FileCnt")?,
            files_per_dir: positive("FilesPerDir", 0)?,
            get_threads: to_usize(positive("GetThreadCount", 0)?),
            post_threads: to_usize(positive("PostThreadCount", 0)?),
            max_upload: to_usize(max_upload),
            max_upload_memory: to_usize(max_upload_memory),
            max_connections: to_usize(positive("MaxConnections", 4096)?),
            request_timeout: Duration::from_secs(positive("RequestTimeout", 120)?),
            idle_timeout: Duration::from_secs(positive("IdleTimeout", 30)?),
        })
    }
}

fn to_usize(v: u64) -> usize {
    usize::try_from(v).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONF: &str = "ListenIP=127.0.0.1;10.0.0.1\nListenPort=8700\nBaseDir=./tmp\n\
        FileCnt=12\nFilesPerDir=30000\nGetThreadCount=32\nPostThreadCount=1\n";

    #[test]
    fn reads_the_original_keys_and_defaults() {
        let s = Settings::from_conf(&Conf::parse(CONF, "msfs.conf")).unwrap();
        assert_eq!(s.listen_ips, ["127.0.0.1", "10.0.0.1"]);
        assert_eq!(s.listen_port, 8700);
        assert_eq!(s.base_dir, PathBuf::from("./tmp"));
        assert_eq!((s.file_cnt, s.files_per_dir), (12, 30000));
        assert_eq!((s.get_threads, s.post_threads), (32, 1));
        assert_eq!(s.max_upload, MAX_UPLOAD);
        assert_eq!(s.max_upload_memory, MAX_UPLOAD_MEMORY);
        assert_eq!(s.max_connections, 4096);
        assert_eq!(s.request_timeout, Duration::from_secs(120));
        assert_eq!(s.idle_timeout, Duration::from_secs(30));
    }

    #[test]
    fn every_original_key_is_required_and_counts_are_positive() {
        for key in [
            "ListenIP",
            "ListenPort",
            "BaseDir",
            "FileCnt",
            "FilesPerDir",
            "GetThreadCount",
            "PostThreadCount",
        ] {
            let text: String = CONF
                .lines()
                .filter(|l| !l.starts_with(&format!("{key}=")))
                .map(|l| format!("{l}\n"))
                .collect();
            let e = Settings::from_conf(&Conf::parse(&text, "msfs.conf")).unwrap_err();
            assert!(e.to_string().contains(key), "{key}: {e}");
        }
        for (key, bad) in [
            ("PostThreadCount", "PostThreadCount=0"),
            ("GetThreadCount", "GetThreadCount=0"),
            ("FilesPerDir", "FilesPerDir=0"),
        ] {
            let text = CONF.replace(&format!("{key}="), "X=") + bad + "\n";
            let e = Settings::from_conf(&Conf::parse(&text, "msfs.conf")).unwrap_err();
            assert!(e.to_string().contains(key), "{key}: {e}");
        }
        let small = format!("{CONF}MaxUploadSize=100\nMaxUploadMemory=99\n");
        let e = Settings::from_conf(&Conf::parse(&small, "msfs.conf")).unwrap_err();
        assert!(e.to_string().contains("MaxUploadMemory"), "{e}");
    }
}
