//! File-transfer commands: send a file (online or offline), list and take the files sent to
//! us, delete an offline file. The bytes go through file_server
//! ([`tt_client::file_transfer`]).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tt_client::file_transfer::{FileConn, FileRole};
use tt_client::{Client, Error, Event, FileNotice, FileServerAddr, OfflineFile};

use super::output::{esc, file_addrs, mode_name, print_notice};
use super::{Flow, arg_u32, by_result, word};

pub fn execute(c: &mut Client, words: &[&str]) -> Result<Flow, Error> {
    match words[0] {
        "sendfile" => send_file(c, words),
        "getfile" => get_file(c, words),
        "rmfile" => remove_file(c, words),
        other => unreachable!("{other} is not a file command"),
    }
}

/// `sendfile <user> <path> [offline]`.
fn send_file(c: &mut Client, words: &[&str]) -> Result<Flow, Error> {
    let to = arg_u32(words, 1, "user id")?;
    let path = Path::new(word(words, 2, "file path")?);
    let offline = match words.get(3) {
        None => false,
        Some(&"offline") => true,
        Some(w) => {
            return Err(Error::Usage(format!(
                "sendfile: the mode is `offline` or nothing, got {w:?}"
            )));
        }
    };
    let mut file = File::open(path)?;
    let size = u32::try_from(file.metadata()?.len())
        .map_err(|_| Error::Usage("sendfile: files of 4 GiB and more cannot be sent".into()))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let task = c.request_file(to, &name, size, offline)?;
    println!(
        "file-task result={} task={} mode={} addrs={}",
        task.result_code,
        esc(task.task_id.as_bytes()),
        mode_name(task.offline),
        file_addrs(&task.addrs)
    );
    if task.result_code != 0 {
        return Ok(by_result(task.result_code));
    }
    let role = if task.offline {
        FileRole::OfflineUpload
    } else {
        FileRole::OnlineSender
    };
    let conn = FileConn::open(&task.addrs, c.user_id(), &task.task_id, role)?;
    let sent = conn.serve(&mut file, u64::from(size))?;
    if task.offline {
        c.add_offline_file(&task, size)?;
        println!("sendfile uploaded task={} bytes={sent}", task.task_id);
    } else {
        println!("sendfile sent task={} bytes={sent}", task.task_id);
    }
    Ok(Flow::Continue)
}

/// `getfile list`, `getfile next [secs] [dir]`, `getfile <task> [dir]`.
fn get_file(c: &mut Client, words: &[&str]) -> Result<Flow, Error> {
    match word(words, 1, "task id, list or next")? {
        "list" => {
            let list = c.offline_files()?;
            for f in &list.files {
                print_offline_file(f);
            }
            println!(
                "offline-files count={} addrs={}",
                list.files.len(),
                file_addrs(&list.addrs)
            );
            Ok(Flow::Continue)
        }
        "next" => {
            let secs = match words.get(2) {
                Some(_) => arg_u32(words, 2, "seconds")?,
                None => 60,
            };
            let dir = out_dir(words, 3);
            let wait = Duration::from_secs(u64::from(secs));
            match c.wait_for(wait, |e| matches!(e, Event::File(_)))? {
                Some(Event::File(n)) => take_notice(c, &n, &dir),
                _ => {
                    println!("getfile none");
                    Ok(Flow::Refused)
                }
            }
        }
        task => {
            let dir = out_dir(words, 2);
            let list = c.offline_files()?;
            if let Some(f) = list.files.iter().find(|f| f.task_id == task) {
                let name = f.file_name.clone();
                return download(c, &list.addrs, task, &name, f.file_size, &dir);
            }
            // Not an offline file: an online transfer notified to us (now or soon).
            let timeout = Duration::from_secs(60);
            match c.wait_for(
                timeout,
                |e| matches!(e, Event::File(n) if n.task_id == task),
            )? {
                Some(Event::File(n)) => take_notice(c, &n, &dir),
                _ => Err(Error::Usage(format!(
                    "getfile: no offline file and no transfer notified with task {task}"
                ))),
            }
        }
    }
}

/// `rmfile <task>`: one of our offline files.
fn remove_file(c: &mut Client, words: &[&str]) -> Result<Flow, Error> {
    let task = word(words, 1, "task id")?;
    let list = c.offline_files()?;
    let Some(f) = list.files.iter().find(|f| f.task_id == task) else {
        return Err(Error::Usage(format!(
            "rmfile: task {task} is not among my offline files"
        )));
    };
    c.delete_offline_file(f.from_user_id, c.user_id(), task)?;
    println!("rmfile sent task={task}");
    Ok(Flow::Continue)
}

/// Takes the file of a notice: an online transfer, or an offline file ready to download.
fn take_notice(c: &mut Client, n: &FileNotice, dir: &Path) -> Result<Flow, Error> {
    print_notice(n);
    if n.offline {
        if !n.offline_ready {
            println!("getfile not-ready task={}", esc(n.task_id.as_bytes()));
            return Ok(Flow::Refused);
        }
        return download(c, &n.addrs, &n.task_id, &n.file_name, n.file_size, dir);
    }
    let path = target_path(dir, &n.file_name, &n.task_id);
    let mut out = File::create_new(&path)?;
    let conn = FileConn::open(&n.addrs, c.user_id(), &n.task_id, FileRole::OnlineReceiver)?;
    let got = conn.receive(&mut out, u64::from(n.file_size))?;
    println!(
        "getfile received task={} path={} bytes={got}",
        n.task_id,
        path.display()
    );
    Ok(Flow::Continue)
}

fn download(
    c: &mut Client,
    addrs: &[FileServerAddr],
    task: &str,
    name: &str,
    size: u32,
    dir: &Path,
) -> Result<Flow, Error> {
    let path = target_path(dir, name, task);
    let mut out = File::create_new(&path)?;
    let conn = FileConn::open(addrs, c.user_id(), task, FileRole::OfflineDownload)?;
    let got = conn.receive(&mut out, u64::from(size))?;
    println!(
        "getfile downloaded task={task} path={} bytes={got}",
        path.display()
    );
    Ok(Flow::Continue)
}

fn out_dir(words: &[&str], i: usize) -> PathBuf {
    PathBuf::from(words.get(i).copied().unwrap_or("."))
}

/// Where a received file goes: the last component of the sender's file name in `dir`, or the
/// task id when that name is empty or names no file (`..`, `/`).
fn target_path(dir: &Path, name: &str, task: &str) -> PathBuf {
    let file = Path::new(name)
        .file_name()
        .filter(|n| !n.is_empty())
        .map_or_else(|| task.into(), |n| n.to_os_string());
    dir.join(file)
}

fn print_offline_file(f: &OfflineFile) {
    println!(
        "offline-file from={} task={} name={} size={}",
        f.from_user_id,
        esc(f.task_id.as_bytes()),
        esc(f.file_name.as_bytes()),
        f.file_size
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn received_files_stay_in_their_directory() {
        let dir = Path::new("/tmp/in");
        assert_eq!(target_path(dir, "a.txt", "t"), dir.join("a.txt"));
        assert_eq!(
            target_path(dir, "../../etc/passwd", "t"),
            dir.join("passwd")
        );
        assert_eq!(target_path(dir, "..", "t"), dir.join("t"));
        assert_eq!(target_path(dir, "", "t"), dir.join("t"));
        assert_eq!(target_path(dir, "/", "t"), dir.join("t"));
    }
}
