//! The disk layout (storage-file.md §8.2) and the file counter.
//!
//! File number n goes to `BaseDir/<first>/<second>/` with first = (n / FilesPerDir) / 255 and
//! second = (n mod (FilesPerDir·255)) / FilesPerDir, three digits each: the original's
//! formula, its divisor 255 included, so the same FileCnt gives the same paths. Directories
//! are created when their first file is written (the original creates all 65 536 at start).
//! Past first = 255 the store is full: uploads are refused (the original answered a URL of a
//! file it could not write).
//!
//! Names are `<µs since the epoch>_<six digits of the pid><six digits of a counter>`, cut at
//! 29 bytes as the original's, then the suffix (`.<ext>` or `_<W>x<H>.<ext>`). A file is
//! written as `.<name>.tmp` (a name downloads never serve) created exclusively with mode
//! 0640, synced, then linked to its name (which fails if the name exists) and the directory
//! synced; a write that fails removes what it wrote, so a half file is never served.
//!
//! FileCnt: the original rewrites `msfs.conf` at shutdown (so a crash lost the count). Here
//! the conf file's `FileCnt` line alone is replaced, the rest of the file kept byte for byte,
//! through a temporary file renamed over it: once a second while the count changes, and
//! synced at shutdown.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Highest first-level (and second-level) directory.
const MAX_DIR: u64 = 255;
/// The original's cap on the unique part of a name.
const UNIQUE_LEN: usize = 29;

/// Where one upload is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `g0/NNN/NNN/name`: the `path` of the answer and of download URLs.
    pub url_path: String,
    /// The leaf directory.
    pub dir: PathBuf,
    /// The file.
    pub file: PathBuf,
}

/// The counter and the layout.
#[derive(Debug)]
pub struct Store {
    base: PathBuf,
    files_per_dir: u64,
    file_cnt: u64,
    /// The count last written to the conf file.
    saved_cnt: u64,
    seq: u64,
    pid: u32,
}

impl Store {
    /// Checks BaseDir, creating it (not its parents) if missing.
    pub fn open(base: &Path, files_per_dir: u64, file_cnt: u64) -> Result<Store, String> {
        match std::fs::create_dir(base) {
            Ok(()) => log::info!("created BaseDir {}", base.display()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(format!("cannot create BaseDir {}: {e}", base.display())),
        }
        if !base.is_dir() {
            return Err(format!("BaseDir {} is not a directory", base.display()));
        }
        Ok(Store {
            base: base.to_path_buf(),
            files_per_dir: files_per_dir.max(1),
            file_cnt,
            saved_cnt: file_cnt,
            seq: 0,
            pid: std::process::id(),
        })
    }

    pub fn base(&self) -> &Path {
        &self.base
    }

    pub fn file_cnt(&self) -> u64 {
        self.file_cnt
    }

    /// The directories of file number `n`, or `None` past the last one.
    pub fn dirs(&self, n: u64) -> Option<(u64, u64)> {
        let first = (n / self.files_per_dir) / MAX_DIR;
        let second = (n % (self.files_per_dir * MAX_DIR)) / self.files_per_dir;
        (first <= MAX_DIR).then_some((first, second))
    }

    /// The place of the next upload (the count moves on), or `None` when the store is full.
    pub fn next(&mut self, suffix: &str) -> Option<Target> {
        let (first, second) = self.dirs(self.file_cnt)?;
        self.file_cnt += 1;
        self.seq = (self.seq + 1) % 1_000_000;
        let micros = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros());
        let mut unique = format!("{micros}_{:06}{:06}", self.pid % 1_000_000, self.seq);
        unique.truncate(UNIQUE_LEN);
        let name = format!("{unique}{suffix}");
        let rel_dir = format!("{first:03}/{second:03}");
        let dir = self.base.join(&rel_dir);
        Some(Target {
            url_path: format!("g0/{rel_dir}/{name}"),
            file: dir.join(&name),
            dir,
        })
    }

    /// Writes FileCnt into the conf file if it changed since the last time (`sync`: also
    /// to disk, at shutdown).
    pub fn save_count(&mut self, conf: &Path, sync: bool) -> io::Result<bool> {
        if self.file_cnt == self.saved_cnt {
            return Ok(false);
        }
        rewrite_file_cnt(conf, self.file_cnt, sync)?;
        self.saved_cnt = self.file_cnt;
        Ok(true)
    }
}

/// Stores `data` at `target` (run by a worker thread).
pub fn write(target: &Target, data: &[u8]) -> io::Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o777)
        .create(&target.dir)?;
    let name = target
        .file
        .file_name()
        .unwrap_or_default()
        .to_string_lossy();
    let tmp = target.dir.join(format!(".{name}.tmp"));
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o640)
        .open(&tmp)?;
    let written = f
        .write_all(data)
        .and_then(|()| f.sync_all())
        .and_then(|()| std::fs::hard_link(&tmp, &target.file));
    drop(f);
    let _ = std::fs::remove_file(&tmp);
    written?;
    // The new directory entry, durable as the data.
    File::open(&target.dir)?.sync_all()
}

/// Replaces the first `FileCnt=` line of the conf file (a comment after it is kept) with the
/// count, through a temporary file renamed over the original.
pub fn rewrite_file_cnt(conf: &Path, count: u64, sync: bool) -> io::Result<()> {
    let text = std::fs::read_to_string(conf)?;
    let mut done = false;
    let mut out = String::with_capacity(text.len() + 16);
    for line in text.split_inclusive('\n') {
        let (content, comment) = line.split_at(line.find('#').unwrap_or(line.len()));
        let is_key = content
            .split_once('=')
            .is_some_and(|(k, v)| k.trim() == "FileCnt" && !v.trim().is_empty());
        if done || !is_key {
            out.push_str(line);
            continue;
        }
        done = true;
        out.push_str(&format!("FileCnt={count}"));
        if !comment.is_empty() {
            out.push(' ');
            out.push_str(comment);
        } else if line.ends_with('\n') {
            out.push_str(if line.ends_with("\r\n") { "\r\n" } else { "\n" });
        }
    }
    if !done {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&format!("FileCnt={count}\n"));
    }
    let mut tmp = conf.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f = File::create(&tmp)?;
    f.write_all(out.as_bytes())?;
    if sync {
        f.sync_all()?;
    }
    drop(f);
    std::fs::rename(&tmp, conf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_original_directory_formula() {
        let dir = std::env::temp_dir().join(format!("msfs-store-{}", std::process::id()));
        let s = Store::open(&dir, 30000, 0).unwrap();
        assert_eq!(s.dirs(0), Some((0, 0)));
        assert_eq!(s.dirs(29_999), Some((0, 0)));
        assert_eq!(s.dirs(30_000), Some((0, 1)));
        assert_eq!(s.dirs(30_000 * 254), Some((0, 254)));
        assert_eq!(
            s.dirs(30_000 * 255),
            Some((1, 0)),
            "divisor 255: 255 is never second"
        );
        assert_eq!(s.dirs(30_000 * 255 * 256 - 1), Some((255, 254)));
        assert_eq!(s.dirs(30_000 * 255 * 256), None);
        let mut s = Store::open(&dir, 1, 256).unwrap();
        let t = s.next(".png").unwrap();
        assert!(t.url_path.starts_with("g0/001/001/"), "{}", t.url_path);
        let name = t.url_path.rsplit('/').next().unwrap();
        assert_eq!(name.len(), UNIQUE_LEN + 4, "{name}");
        assert!(
            name.ends_with(".png") && name.as_bytes()[16] == b'_',
            "{name}"
        );
        assert_eq!(s.file_cnt(), 257);
        write(&t, b"abc").unwrap();
        assert_eq!(std::fs::read(&t.file).unwrap(), b"abc");
        assert!(write(&t, b"again").is_err(), "created exclusively");
        let conf = dir.join("msfs.conf");
        std::fs::write(
            &conf,
            "# c\nBaseDir=./tmp\nFileCnt = 3 # kept\nFileCnt=9\nX=1",
        )
        .unwrap();
        assert!(s.save_count(&conf, true).unwrap());
        assert!(!s.save_count(&conf, true).unwrap(), "unchanged");
        let text = std::fs::read_to_string(&conf).unwrap();
        assert_eq!(
            text,
            "# c\nBaseDir=./tmp\nFileCnt=257 # kept\nFileCnt=9\nX=1"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
