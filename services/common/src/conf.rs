//! The original's `key=value` conf files (`CConfigFileReader`), read the same way, with the
//! original's silent failures turned into errors that name the file and the key.
//!
//! Parsing rules (base-login-route.md §2.11), and where this reader differs:
//! - everything from the first `#` is a comment; lines without `=` are ignored;
//! - the key is before the first `=`, the value after it; spaces and tabs around both are
//!   trimmed; an empty key or value drops the line (an empty value is a missing key);
//! - keys are case-sensitive and the **first** occurrence of a key wins;
//! - difference: a trailing `\r` (a CRLF file) is removed — the original kept it in the value,
//!   which then failed to parse as an address (quirk C1);
//! - difference: lines are not cut at 255 bytes (the original split longer lines into pieces
//!   and parsed each on its own);
//! - difference: numbers are checked — `port=80x` is an error naming the key, where the
//!   original's `atoi` read 80 (and `abc` read 0);
//! - difference: a list with an empty item (`a;;b`, a trailing `;`) is an error (undefined
//!   behaviour in the original).

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// A conf file that could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfError {
    /// The file could not be read.
    Unreadable { file: PathBuf, reason: String },
    /// A required key is absent (or has an empty value).
    Missing { file: PathBuf, key: String },
    /// A key's value does not parse as what it must be.
    Invalid {
        file: PathBuf,
        key: String,
        value: String,
        expected: String,
    },
}

impl fmt::Display for ConfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfError::Unreadable { file, reason } => {
                write!(f, "{}: cannot read the conf file: {reason}", file.display())
            }
            ConfError::Missing { file, key } => {
                write!(f, "{}: required key `{key}` is missing", file.display())
            }
            ConfError::Invalid {
                file,
                key,
                value,
                expected,
            } => write!(
                f,
                "{}: key `{key}` = `{value}` is not {expected}",
                file.display()
            ),
        }
    }
}

impl std::error::Error for ConfError {}

/// A parsed conf file.
#[derive(Debug, Clone, Default)]
pub struct Conf {
    file: PathBuf,
    map: HashMap<String, String>,
}

impl Conf {
    /// Reads and parses `path`.
    pub fn load(path: impl AsRef<Path>) -> Result<Conf, ConfError> {
        let path = path.as_ref();
        let text = std::fs::read(path).map_err(|e| ConfError::Unreadable {
            file: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        Ok(Conf::parse(&String::from_utf8_lossy(&text), path))
    }

    /// Parses conf text; `file` is only used in error messages.
    pub fn parse(text: &str, file: impl AsRef<Path>) -> Conf {
        let mut map = HashMap::new();
        for line in text.lines() {
            let line = line.strip_suffix('\r').unwrap_or(line);
            let line = match line.find('#') {
                Some(i) => &line[..i],
                None => line,
            };
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let blank = |c: char| c == ' ' || c == '\t';
            let (key, value) = (key.trim_matches(blank), value.trim_matches(blank));
            if key.is_empty() || value.is_empty() {
                continue;
            }
            map.entry(key.to_string())
                .or_insert_with(|| value.to_string());
        }
        Conf {
            file: file.as_ref().to_path_buf(),
            map,
        }
    }

    /// The file this was read from.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.map.get(key).map(String::as_str)
    }

    /// The value of a required key.
    pub fn require(&self, key: &str) -> Result<&str, ConfError> {
        self.get(key).ok_or_else(|| ConfError::Missing {
            file: self.file.clone(),
            key: key.to_string(),
        })
    }

    /// A required key parsed as `T` (numbers: decimal, nothing else on the line).
    pub fn require_parse<T: FromStr>(&self, key: &str) -> Result<T, ConfError> {
        let value = self.require(key)?;
        self.parse_value(key, value)
    }

    /// An optional key parsed as `T`, or `default` when absent.
    pub fn get_parse<T: FromStr>(&self, key: &str, default: T) -> Result<T, ConfError> {
        match self.get(key) {
            Some(value) => self.parse_value(key, value),
            None => Ok(default),
        }
    }

    /// A required list split on `sep` (e.g. `;` for listen addresses, `,` for pool names).
    /// Items are not trimmed, as in the original; an empty item is an error.
    pub fn require_list(&self, key: &str, sep: char) -> Result<Vec<String>, ConfError> {
        let value = self.require(key)?;
        let items: Vec<String> = value.split(sep).map(str::to_string).collect();
        if items.iter().any(String::is_empty) {
            return Err(self.invalid(key, value, &format!("a `{sep}`-separated list")));
        }
        Ok(items)
    }

    /// The numbered list `<ip_prefix>1`/`<port_prefix>1`, `…2`, …, ending at the first index
    /// where either key is missing (the original's `read_server_config`).
    pub fn server_list(
        &self,
        ip_prefix: &str,
        port_prefix: &str,
    ) -> Result<Vec<(String, u16)>, ConfError> {
        let mut out = Vec::new();
        for i in 1.. {
            let (ip_key, port_key) = (format!("{ip_prefix}{i}"), format!("{port_prefix}{i}"));
            let (Some(ip), Some(_)) = (self.get(&ip_key), self.get(&port_key)) else {
                break;
            };
            let port: u16 = self.require_parse(&port_key)?;
            out.push((ip.to_string(), port));
        }
        Ok(out)
    }

    /// The error for a value that is present but unusable.
    pub fn invalid(&self, key: &str, value: &str, expected: &str) -> ConfError {
        ConfError::Invalid {
            file: self.file.clone(),
            key: key.to_string(),
            value: value.to_string(),
            expected: expected.to_string(),
        }
    }

    fn parse_value<T: FromStr>(&self, key: &str, value: &str) -> Result<T, ConfError> {
        value.parse().map_err(|_| {
            let expected = std::any::type_name::<T>();
            self.invalid(key, value, &format!("a valid {expected}"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# a comment line\n\
        ListenIP = 0.0.0.0;127.0.0.1 \t# trailing comment\n\
        ListenPort=8000\r\n\
        \n\
        no equals sign here\n\
        Empty=   \n\
        =novalue\n\
        url=http://x/?a=b\n\
        ListenPort=9999\n\
        DBServerIP1=127.0.0.1\nDBServerPort1=10600\n\
        DBServerIP2=db2\nDBServerPort2=10601\n\
        DBServerIP4=gap\nDBServerPort4=1\n\
        bad=80x\nbadlist=a;;b\n";

    fn conf() -> Conf {
        Conf::parse(TEXT, "msgserver.conf")
    }

    #[test]
    fn parses_like_the_original() {
        let c = conf();
        assert_eq!(c.get("ListenIP"), Some("0.0.0.0;127.0.0.1"));
        assert_eq!(
            c.require_parse::<u16>("ListenPort").unwrap(),
            8000,
            "first wins, CR gone"
        );
        assert_eq!(c.get("Empty"), None, "an empty value is a missing key");
        assert_eq!(c.get(""), None);
        assert_eq!(c.get("url"), Some("http://x/?a=b"), "split at the first =");
        assert_eq!(c.get("listenip"), None, "case-sensitive");
        assert_eq!(
            c.require_list("ListenIP", ';').unwrap(),
            vec!["0.0.0.0", "127.0.0.1"]
        );
        assert_eq!(c.get_parse("Missing", 10u32).unwrap(), 10);
    }

    #[test]
    fn numbered_server_lists_stop_at_the_first_gap() {
        let list = conf().server_list("DBServerIP", "DBServerPort").unwrap();
        assert_eq!(
            list,
            vec![("127.0.0.1".to_string(), 10600), ("db2".to_string(), 10601)]
        );
        assert!(conf().server_list("Nothing", "Here").unwrap().is_empty());
    }

    #[test]
    fn errors_name_the_file_and_the_key() {
        let c = conf();
        let e = c.require("aesKey").unwrap_err();
        assert_eq!(
            e.to_string(),
            "msgserver.conf: required key `aesKey` is missing"
        );
        let e = c.require_parse::<u16>("bad").unwrap_err();
        assert!(e.to_string().contains("`bad` = `80x`"), "{e}");
        assert!(c.require_list("badlist", ';').is_err());
        let e = Conf::load("/nonexistent/dir/x.conf").unwrap_err();
        assert!(matches!(e, ConfError::Unreadable { .. }));
        assert!(
            e.to_string()
                .starts_with("/nonexistent/dir/x.conf: cannot read")
        );
    }
}
