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
//! FileCnt: the original rewrites `msfs.conf` at shutdown (so a crash lost the count, and the
//! conf file must be writable). Here the count is kept beside the files it counts, in
//! `BaseDir/.filecnt` (a decimal number and a line end), written through a temporary file
//! renamed over it: once a second while the count changes, and synced at shutdown. At start
//! the larger of that file and the conf's `FileCnt` is used; the conf file is never written.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Highest first-level (and second-level) directory.
const MAX_DIR: u64 = 255;
/// The count's file in BaseDir (a name downloads never serve).
const COUNT_FILE: &str = ".filecnt";
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
    /// Checks BaseDir, creating it (not its parents) if missing; the count is the larger of
    /// `file_cnt` (the conf's) and the one saved in BaseDir.
    pub fn open(base: &Path, files_per_dir: u64, file_cnt: u64) -> Result<Store, String> {
        match std::fs::create_dir(base) {
            Ok(()) => log::info!("created BaseDir {}", base.display()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(format!("cannot create BaseDir {}: {e}", base.display())),
        }
        if !base.is_dir() {
            return Err(format!("BaseDir {} is not a directory", base.display()));
        }
        let saved = saved_count(base)?;
        let file_cnt = file_cnt.max(saved.unwrap_or(0));
        Ok(Store {
            base: base.to_path_buf(),
            files_per_dir: files_per_dir.max(1),
            file_cnt,
            saved_cnt: saved.unwrap_or(u64::MAX),
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

    /// The file the count is saved in.
    pub fn count_file(&self) -> PathBuf {
        self.base.join(COUNT_FILE)
    }

    /// Saves the count if it changed since the last time (`sync`: also to disk, at shutdown).
    pub fn save_count(&mut self, sync: bool) -> io::Result<bool> {
        if self.file_cnt == self.saved_cnt {
            return Ok(false);
        }
        let tmp = self.base.join(format!("{COUNT_FILE}.tmp"));
        let mut f = File::create(&tmp)?;
        writeln!(f, "{}", self.file_cnt)?;
        if sync {
            f.sync_all()?;
        }
        drop(f);
        std::fs::rename(&tmp, self.count_file())?;
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

/// The count saved in BaseDir, if there is one.
fn saved_count(base: &Path) -> Result<Option<u64>, String> {
    let path = base.join(COUNT_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => text
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| format!("{} does not hold a number: {text:?}", path.display())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
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
        assert!(s.save_count(true).unwrap());
        assert!(!s.save_count(true).unwrap(), "unchanged");
        assert_eq!(std::fs::read_to_string(s.count_file()).unwrap(), "257\n");
        let again = Store::open(&dir, 1, 5).unwrap();
        assert_eq!(again.file_cnt(), 257, "the saved count when larger");
        let again = Store::open(&dir, 1, 300).unwrap();
        assert_eq!(again.file_cnt(), 300, "the conf's when larger");
        std::fs::write(s.count_file(), "x").unwrap();
        assert!(
            Store::open(&dir, 1, 0).is_err(),
            "a damaged count is an error"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
