//! tt-cli's commands: the words of one command line, run against a logged-in [`Client`].
//! One module per command family, as in the library: messages, buddy lists, groups, push
//! settings, files; [`output`] prints.

mod buddy;
mod files;
mod groups;
mod messages;
pub mod msfs;
pub mod output;
mod push;

use tt_client::{Client, Error, Session, SessionType};

pub const HELP: &str = "\
messages (a PEER is a user id, or g<group_id> for a group: g5):
send <user_id> <text...>        send a text message, wait for its ack
gsend <group_id> <text...>      send a group text message
recv [seconds]                  wait up to seconds (default 1) for a message, print every event
history <peer> [count] [begin_msg_id]
                                messages of a conversation, newest first (count 20)
getmsg <peer> <msg_id...>       messages by id
latest <peer>                   newest message id of a conversation
unread                          unread counts
read <peer> <msg_id>            mark read (no reply)
buddy lists:
sessions                        recent sessions
rmsession single|group <id>     remove a recent session
users                           all users
whois <user_id...>              user records
status <user_id...>             online status
depts                           departments
sign <text...>                  change my signature
avatar <url>                    change my avatar
groups:
groups                          my normal groups and their versions
group create <name> <user_id...>
                                create a temporary group (list yourself to be a member)
group add <group_id> <user_id...>
group remove <group_id> <user_id...>
                                change members
group info <group_id...>        group records
shield <group_id> on|off        push shield of a group
push settings:
shield                          my push shield (do not disturb)
shield on|off                   set it
token <device_token>            register a device token (mobile clients only)
files (through file_server):
sendfile <user_id> <path> [offline]
                                send a file: online (the receiver takes it; becomes offline
                                when the receiver has no PC client online) or offline
getfile list                    offline files waiting for me
getfile <task_id> [dir]         download an offline file, or take an online transfer
                                notified to me, into dir (default .)
getfile next [seconds] [dir]    wait for a file notice (default 60 s) and take that file
rmfile <task_id>                delete one of my offline files
images (msfs; no login needed as the one-shot command):
upload <file>                   store a file on msfs, print its path and url
download <url|path> <out-file>  fetch a file from msfs
other:
time                            server time
heartbeat                       heartbeat round trip
help                            this text
logout                          log out and exit
quit                            close and exit";

/// What the session does after a command.
pub enum Flow {
    Continue,
    /// The command ran and printed the server's answer, which was a refusal (a non-zero
    /// result code): the session goes on, the exit status will say that something failed.
    Refused,
    Exit,
}

/// `Continue` for result code 0, else `Refused`.
fn by_result(code: u32) -> Flow {
    if code == 0 {
        Flow::Continue
    } else {
        Flow::Refused
    }
}

pub fn execute(c: &mut Client, words: &[&str]) -> Result<Flow, Error> {
    match words[0] {
        "send" | "gsend" | "recv" | "history" | "getmsg" | "latest" | "unread" | "read" => {
            messages::execute(c, words)
        }
        "sessions" | "rmsession" | "users" | "whois" | "status" | "depts" | "sign" | "avatar" => {
            buddy::execute(c, words)
        }
        "groups" | "group" => groups::execute(c, words),
        // `shield <group_id> on|off` is a group's; `shield [on|off]` the user's.
        "shield" if words.get(1).is_some_and(|w| w.parse::<u32>().is_ok()) => {
            groups::execute(c, words)
        }
        "shield" | "token" => push::execute(c, words),
        "sendfile" | "getfile" | "rmfile" => files::execute(c, words),
        "upload" | "download" => msfs::execute(words, None, None, tt_client::DEFAULT_TIMEOUT),
        "time" => {
            println!("time server_time={}", c.server_time()?);
            Ok(Flow::Continue)
        }
        "heartbeat" => {
            let rtt = c.heartbeat()?;
            println!("heartbeat ok rtt_ms={}", rtt.as_millis());
            Ok(Flow::Continue)
        }
        "help" => {
            println!("{HELP}");
            Ok(Flow::Continue)
        }
        "logout" => {
            let code = c.logout()?;
            println!("logout result={code}");
            Ok(Flow::Exit)
        }
        "quit" | "exit" => {
            c.close();
            Ok(Flow::Exit)
        }
        other => Err(Error::Usage(format!(
            "unknown command {other:?} (try help)"
        ))),
    }
}

fn word<'a>(words: &[&'a str], i: usize, what: &str) -> Result<&'a str, Error> {
    words
        .get(i)
        .copied()
        .ok_or_else(|| Error::Usage(format!("{}: missing {what}", words[0])))
}

fn arg_u32(words: &[&str], i: usize, what: &str) -> Result<u32, Error> {
    let w = word(words, i, what)?;
    w.parse()
        .map_err(|_| Error::Usage(format!("{}: {what} must be a number, got {w:?}", words[0])))
}

fn arg_u32_opt(words: &[&str], i: usize, what: &str, default: u32) -> Result<u32, Error> {
    if words.len() > i {
        arg_u32(words, i, what)
    } else {
        Ok(default)
    }
}

fn ids_from(words: &[&str], from: usize, what: &str) -> Result<Vec<u32>, Error> {
    if words.len() <= from {
        return Err(Error::Usage(format!("{}: missing {what}", words[0])));
    }
    (from..words.len())
        .map(|i| arg_u32(words, i, what))
        .collect()
}

/// `on` or `off`.
fn arg_on_off(words: &[&str], i: usize) -> Result<bool, Error> {
    match word(words, i, "on or off")? {
        "on" => Ok(true),
        "off" => Ok(false),
        w => Err(Error::Usage(format!("{}: on or off, got {w:?}", words[0]))),
    }
}

/// A conversation: a user id, or `g<group_id>`.
fn arg_session(words: &[&str], i: usize) -> Result<Session, Error> {
    let w = word(words, i, "peer (user id or g<group_id>)")?;
    let (digits, group) = match w.strip_prefix('g') {
        Some(d) => (d, true),
        None => (w, false),
    };
    let id: u32 = digits.parse().map_err(|_| {
        Error::Usage(format!(
            "{}: a peer is a user id or g<group_id>, got {w:?}",
            words[0]
        ))
    })?;
    Ok(if group {
        Session::group(id)
    } else {
        Session::user(id)
    })
}

/// A session as tt-cli reads it: `2` or `g5`.
fn session_label(s: Session) -> String {
    match s.kind {
        SessionType::Group => format!("g{}", s.id),
        SessionType::Single => s.id.to_string(),
    }
}

/// The text after the first `skip` words of `words`, joined by single spaces.
fn rest(words: &[&str], skip: usize) -> String {
    words[skip.min(words.len())..].join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_are_users_or_groups() {
        assert_eq!(arg_session(&["history", "7"], 1).unwrap(), Session::user(7));
        assert_eq!(
            arg_session(&["history", "g7"], 1).unwrap(),
            Session::group(7)
        );
        assert!(arg_session(&["history", "x7"], 1).is_err());
        assert!(arg_session(&["history", "g"], 1).is_err());
        assert!(arg_session(&["history"], 1).is_err());
        assert_eq!(session_label(Session::group(7)), "g7");
        assert_eq!(session_label(Session::user(7)), "7");
    }

    #[test]
    fn on_off_and_results() {
        assert!(arg_on_off(&["shield", "on"], 1).unwrap());
        assert!(!arg_on_off(&["shield", "off"], 1).unwrap());
        assert!(arg_on_off(&["shield", "maybe"], 1).is_err());
        assert!(matches!(by_result(0), Flow::Continue));
        assert!(matches!(by_result(1), Flow::Refused));
    }
}
