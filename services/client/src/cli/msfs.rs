//! `upload` and `download`: images on msfs, through [`tt_client::msfs`]. They need no login:
//! tt-cli runs them before logging in when they are the one-shot command, and in a session
//! they use the msfs URL of the session's discovery.
//!
//! The msfs base URL is `--msfs-url` if given, else the `msfsPrior` login_server hands out at
//! discovery; a download of a full `http://` URL needs neither.

use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use tt_client::{Client, Error, msfs};

use super::{Flow, word};

/// The msfs base URL of the session (from discovery or `--msfs-url`).
static SESSION_URL: OnceLock<String> = OnceLock::new();

/// Remembers the session's msfs base URL (an empty one is ignored).
pub fn set_session_url(url: &str) {
    if !url.is_empty() {
        let _ = SESSION_URL.set(url.to_string());
    }
}

/// Runs `upload <file>` or `download <url|path> <out-file>`. `msfs_url` is the explicit base
/// URL; without it the session's is used, or one is discovered through `login_url`.
pub fn execute(
    words: &[&str],
    msfs_url: Option<&str>,
    login_url: Option<&str>,
    timeout: Duration,
) -> Result<Flow, Error> {
    let base = || -> Result<String, Error> {
        if let Some(url) = msfs_url.or(SESSION_URL.get().map(String::as_str)) {
            return Ok(url.to_string());
        }
        let login_url = login_url
            .ok_or_else(|| Error::Usage(format!("{}: no msfs URL (give --msfs-url)", words[0])))?;
        let addr = Client::discover_with_timeout(login_url, timeout)?;
        if addr.msfs_prior.is_empty() {
            return Err(Error::Discovery(
                "login_server handed out no msfs URL (give --msfs-url)".into(),
            ));
        }
        Ok(addr.msfs_prior)
    };
    match words[0] {
        "upload" => {
            let file = word(words, 1, "file")?;
            let up = msfs::upload_file(&base()?, Path::new(file), timeout)?;
            println!("upload ok path={} url={}", up.path, up.url);
            Ok(Flow::Continue)
        }
        "download" => {
            let what = word(words, 1, "url or path")?;
            let out = word(words, 2, "output file")?;
            let base = if what.starts_with("http://") {
                String::new()
            } else {
                base()?
            };
            let n = msfs::download_to(&base, what, Path::new(out), timeout)?;
            println!("download ok bytes={n} file={out}");
            Ok(Flow::Continue)
        }
        other => Err(Error::Usage(format!("{other}: not an msfs command"))),
    }
}
