//! Offline files on disk, in the original's layout (storage-file.md §7.5):
//! `<dir>/<first two chars of the task id>/<task id>`, a 960-byte header of six NUL-padded
//! ASCII fields, then the file's bytes.
//!
//! An upload is written to `<task id>.tmp` beside its final name and renamed only after its
//! last block was written and synced, so a file under a task id is always complete. The store
//! keeps the bytes on disk (headers included) plus the bytes reserved by uploads under way
//! within a limit; files older than the configured age are deleted by [`Store::sweep`].

use std::collections::HashSet;
use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, FileExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::settings::StoreSettings;
use crate::task_id::is_task_id;

/// Size of the header before a stored file's bytes.
pub const HEADER_LEN: u64 = 960;
/// Offline uploads and downloads move the file in blocks of this size (the last is shorter).
pub const BLOCK: u32 = 32 * 1024;
/// Suffix of an upload under way.
const TEMP_SUFFIX: &str = ".tmp";

/// Header fields: offset and size.
const TASK_ID: (usize, usize) = (0, 128);
const FROM: (usize, usize) = (128, 64);
const TO: (usize, usize) = (192, 64);
const CREATE_TIME: (usize, usize) = (256, 128);
const FILE_NAME: (usize, usize) = (384, 512);
const FILE_SIZE: (usize, usize) = (896, 64);

/// Number of blocks of a file of `size` bytes.
pub fn blocks(size: u32) -> u32 {
    size.div_ceil(BLOCK)
}

/// Size of block `i` of a file of `size` bytes.
pub fn block_len(size: u32, i: u32) -> u32 {
    size.saturating_sub(i.saturating_mul(BLOCK)).min(BLOCK)
}

/// What the header of a stored file says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub task_id: String,
    pub from: u32,
    pub to: u32,
    pub create_time: u64,
    pub file_name: Vec<u8>,
    pub file_size: u32,
}

impl Header {
    /// The 960 header bytes. The file name is cut to leave at least one NUL (at a character
    /// boundary when it is UTF-8).
    pub fn encode(&self) -> [u8; HEADER_LEN as usize] {
        let mut out = [0u8; HEADER_LEN as usize];
        let mut put = |(at, size): (usize, usize), value: &[u8]| {
            let n = value.len().min(size - 1);
            out[at..at + n].copy_from_slice(&value[..n]);
        };
        put(TASK_ID, self.task_id.as_bytes());
        put(FROM, self.from.to_string().as_bytes());
        put(TO, self.to.to_string().as_bytes());
        put(CREATE_TIME, self.create_time.to_string().as_bytes());
        put(FILE_NAME, cut_name(&self.file_name, FILE_NAME.1 - 1));
        put(FILE_SIZE, self.file_size.to_string().as_bytes());
        out
    }

    /// Reads a header; `None` if a number field does not parse.
    pub fn decode(b: &[u8; HEADER_LEN as usize]) -> Option<Header> {
        let field = |(at, size): (usize, usize)| {
            let f = &b[at..at + size];
            &f[..f.iter().position(|&c| c == 0).unwrap_or(size)]
        };
        let number = |f| std::str::from_utf8(field(f)).ok()?.parse::<u64>().ok();
        Some(Header {
            task_id: String::from_utf8_lossy(field(TASK_ID)).into_owned(),
            from: u32::try_from(number(FROM)?).ok()?,
            to: u32::try_from(number(TO)?).ok()?,
            create_time: number(CREATE_TIME)?,
            file_name: field(FILE_NAME).to_vec(),
            file_size: u32::try_from(number(FILE_SIZE)?).ok()?,
        })
    }
}

/// At most `max` bytes of `name`, not splitting a UTF-8 character.
fn cut_name(name: &[u8], max: usize) -> &[u8] {
    if name.len() <= max {
        return name;
    }
    let mut n = max;
    if std::str::from_utf8(name).is_ok() {
        while n > 0 && (name[n] & 0xc0) == 0x80 {
            n -= 1;
        }
    }
    &name[..n]
}

/// An upload under way: the temporary file and where it goes once complete.
#[derive(Debug)]
pub struct Upload {
    file: File,
    temp: PathBuf,
    dest: PathBuf,
}

impl Upload {
    /// Appends one block.
    pub fn write(&mut self, data: &[u8]) -> io::Result<()> {
        self.file.write_all(data)
    }

    /// The final path of the file.
    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// Syncs the file, gives it its final name and syncs the directory; returns its length.
    /// On an error the temporary file is removed.
    pub fn finish(self) -> io::Result<u64> {
        let done = self
            .file
            .sync_all()
            .and_then(|()| self.file.metadata())
            .and_then(|m| std::fs::rename(&self.temp, &self.dest).map(|()| m.len()));
        match done {
            Ok(len) => {
                if let Some(dir) = self.dest.parent()
                    && let Err(e) = File::open(dir).and_then(|d| d.sync_all())
                {
                    log::warn!("cannot sync {}: {e}", dir.display());
                }
                Ok(len)
            }
            Err(e) => {
                self.abort();
                Err(e)
            }
        }
    }

    /// Removes the temporary file.
    pub fn abort(self) {
        drop(self.file);
        if let Err(e) = std::fs::remove_file(&self.temp) {
            log::warn!("cannot remove {}: {e}", self.temp.display());
        }
    }
}

/// Why a deletion did not happen.
#[derive(Debug, PartialEq, Eq)]
pub enum DeleteError {
    MalformedId,
    NotFound,
    /// The stored header names other users.
    OtherUsers,
    Io(String),
}

/// The offline files of one directory, and the disk they take.
pub struct Store {
    dir: PathBuf,
    limit: u64,
    max_age: Option<Duration>,
    /// Bytes of complete files.
    used: u64,
    /// Bytes promised to transfers not yet complete.
    reserved: u64,
    /// Final paths of uploads being finished by the helper thread: their bytes are counted
    /// when the outcome reaches the loop, so a sweep meanwhile leaves them out.
    finishing: HashSet<PathBuf>,
}

impl Store {
    /// The store of `settings.dir`: leftover temporary files are removed, expired files
    /// deleted and the rest counted.
    pub fn open(settings: &StoreSettings) -> Store {
        let mut store = Store {
            dir: settings.dir.clone(),
            limit: settings.disk_limit,
            max_age: settings.max_age,
            used: 0,
            reserved: 0,
            finishing: HashSet::new(),
        };
        store.sweep(SystemTime::now(), true);
        log::info!(
            "offline files in {}: {} bytes of {} allowed",
            store.dir.display(),
            store.used,
            store.limit
        );
        store
    }

    /// Bytes of complete files.
    pub fn used(&self) -> u64 {
        self.used
    }

    /// Reserves `bytes` for a transfer; false if the limit would be passed.
    pub fn reserve(&mut self, bytes: u64) -> bool {
        if self.used + self.reserved + bytes > self.limit {
            return false;
        }
        self.reserved += bytes;
        true
    }

    /// Gives a reservation back.
    pub fn release(&mut self, bytes: u64) {
        self.reserved = self.reserved.saturating_sub(bytes);
    }

    /// A complete file of `len` bytes, written under a reservation of `reserved`.
    pub fn committed(&mut self, reserved: u64, len: u64) {
        self.release(reserved);
        self.used += len;
    }

    /// Uploads handed to the helper thread whose outcome has not come back.
    pub fn finishing_count(&self) -> usize {
        self.finishing.len()
    }

    /// An upload handed to the helper thread, to become the file at `dest`.
    pub fn finishing(&mut self, dest: PathBuf) {
        self.finishing.insert(dest);
    }

    /// The outcome of a finish: the file of `len` bytes counted (`Some`), or the reservation
    /// given back.
    pub fn finished(&mut self, dest: &Path, reserved: u64, len: Option<u64>) {
        self.finishing.remove(dest);
        match len {
            Some(len) => self.committed(reserved, len),
            None => self.release(reserved),
        }
    }

    fn path(&self, id: &str) -> PathBuf {
        self.dir.join(&id[..2]).join(id)
    }

    /// Starts the upload of a task: the temporary file with its header written.
    pub fn begin_upload(&self, header: &Header) -> io::Result<Upload> {
        let dest = self.path(&header.task_id);
        let sub = dest.parent().unwrap_or(&self.dir);
        DirBuilder::new().recursive(true).mode(0o755).create(sub)?;
        let temp = sub.join(format!("{}{TEMP_SUFFIX}", header.task_id));
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)?;
        let mut upload_file = || file.write_all(&header.encode());
        if let Err(e) = upload_file() {
            let _ = std::fs::remove_file(&temp);
            return Err(e);
        }
        Ok(Upload { file, temp, dest })
    }

    /// Whether anything (complete or under way) exists under a task id.
    pub fn exists(&self, id: &str) -> bool {
        let path = self.path(id);
        path.exists() || path.with_extension("tmp").exists()
    }

    /// The complete file of a task, opened, with its header: the original's check (file length
    /// minus the header equals the header's size), plus the header naming this task.
    pub fn load(&self, id: &str) -> Option<(Header, File)> {
        if !is_task_id(id) {
            return None;
        }
        let file = File::open(self.path(id)).ok()?;
        let header = read_header(&file)?;
        let len = file.metadata().ok()?.len();
        if len.checked_sub(HEADER_LEN) != Some(u64::from(header.file_size)) || header.task_id != id
        {
            log::warn!("offline file of task {id}: header does not match the file");
            return None;
        }
        Some((header, file))
    }

    /// Deletes the file of task `id` if its header names `from` and `to`; returns its length.
    pub fn delete(&mut self, id: &str, from: u32, to: u32) -> Result<u64, DeleteError> {
        if !is_task_id(id) {
            return Err(DeleteError::MalformedId);
        }
        let path = self.path(id);
        let file = File::open(&path).map_err(|_| DeleteError::NotFound)?;
        let header = read_header(&file).ok_or(DeleteError::NotFound)?;
        if (header.from, header.to) != (from, to) {
            return Err(DeleteError::OtherUsers);
        }
        let len = file.metadata().map_or(0, |m| m.len());
        std::fs::remove_file(&path).map_err(|e| DeleteError::Io(e.to_string()))?;
        self.used = self.used.saturating_sub(len);
        Ok(len)
    }

    /// Walks the directory: deletes complete files older than the maximum age (by their
    /// modification time, the end of their upload), at start also leftover temporary files,
    /// and recounts the bytes of the rest. Returns how many files were deleted.
    pub fn sweep(&mut self, now: SystemTime, at_start: bool) -> usize {
        let mut used = 0;
        let mut deleted = 0;
        for path in files_of(&self.dir) {
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            if name.ends_with(TEMP_SUFFIX) {
                if at_start {
                    log::info!("removing an unfinished upload: {}", path.display());
                    let _ = std::fs::remove_file(&path);
                }
                continue;
            }
            if !is_task_id(name) || self.finishing.contains(&path) {
                continue;
            }
            let age = meta
                .modified()
                .ok()
                .and_then(|m| now.duration_since(m).ok());
            if let (Some(max), Some(age)) = (self.max_age, age)
                && age > max
            {
                match std::fs::remove_file(&path) {
                    Ok(()) => {
                        log::info!("offline file of task {name} expired: deleted");
                        deleted += 1;
                        continue;
                    }
                    Err(e) => log::warn!("cannot delete {}: {e}", path.display()),
                }
            }
            used += meta.len();
        }
        self.used = used;
        deleted
    }
}

fn read_header(file: &File) -> Option<Header> {
    let mut b = [0u8; HEADER_LEN as usize];
    file.read_exact_at(&mut b, 0).ok()?;
    Header::decode(&b)
}

/// The files of the two-character subdirectories of `dir`.
fn files_of(dir: &Path) -> Vec<PathBuf> {
    let Ok(subs) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for sub in subs.flatten() {
        if sub.file_name().len() != 2 || !sub.path().is_dir() {
            continue;
        }
        if let Ok(files) = std::fs::read_dir(sub.path()) {
            out.extend(files.flatten().map(|f| f.path()).filter(|p| p.is_file()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_math() {
        assert_eq!(blocks(0), 0);
        assert_eq!(blocks(1), 1);
        assert_eq!(blocks(BLOCK), 1);
        assert_eq!(blocks(BLOCK + 1), 2);
        assert_eq!(block_len(BLOCK + 1, 0), BLOCK);
        assert_eq!(block_len(BLOCK + 1, 1), 1);
        assert_eq!(block_len(BLOCK - 1, 0), BLOCK - 1);
        assert_eq!(block_len(u32::MAX, blocks(u32::MAX) - 1), u32::MAX % BLOCK);
    }

    /// A file renamed by the finisher before its outcome reaches the loop is counted once:
    /// by the outcome, not by a sweep in between.
    #[test]
    fn a_finishing_upload_is_counted_once() {
        let dir = tt_testkit::TempDir::new("fs-store-finish");
        let mut store = Store::open(&StoreSettings {
            dir: dir.path().to_path_buf(),
            disk_limit: 1 << 20,
            max_age: None,
            check_interval: Duration::from_secs(60),
        });
        let header = Header {
            task_id: "0b7c9a52-3f1e-4c2d-9a8b-5e6f7a8b9c0d".into(),
            from: 1,
            to: 2,
            create_time: 1_700_000_000,
            file_name: b"a".to_vec(),
            file_size: 3,
        };
        assert!(store.reserve(HEADER_LEN + 3));
        let mut upload = store.begin_upload(&header).unwrap();
        upload.write(b"abc").unwrap();
        let dest = upload.dest().to_path_buf();
        store.finishing(dest.clone());
        let len = upload.finish().unwrap();
        assert_eq!(len, HEADER_LEN + 3);
        assert!(dest.exists());
        store.sweep(SystemTime::now(), false);
        assert_eq!(store.used(), 0, "a sweep counted a file still finishing");
        store.finished(&dest, HEADER_LEN + 3, Some(len));
        assert_eq!(store.used(), len);
        store.sweep(SystemTime::now(), false);
        assert_eq!(store.used(), len);
        assert!(
            store.reserve((1 << 20) - len),
            "the reservation was not given back"
        );
    }

    #[test]
    fn header_round_trip_and_layout() {
        let h = Header {
            task_id: "0b7c9a52-3f1e-4c2d-9a8b-5e6f7a8b9c0d".into(),
            from: 7,
            to: 4_000_000_000,
            create_time: 1_700_000_000,
            file_name: "é".repeat(300).into_bytes(),
            file_size: 12345,
        };
        let b = h.encode();
        assert_eq!(&b[128..130], b"7\0");
        assert_eq!(&b[896..902], b"12345\0");
        let back = Header::decode(&b).unwrap();
        assert_eq!(back.file_name.len(), 510);
        assert!(std::str::from_utf8(&back.file_name).is_ok());
        assert_eq!(
            Header {
                file_name: back.file_name.clone(),
                ..h
            },
            back
        );
        let mut bad = b;
        bad[128] = b'x';
        assert_eq!(Header::decode(&bad), None);
    }
}
