//! How tt-cli prints: one line per result or event, `key=value` fields, text as it is.
//!
//! Text fields are printed as received. Only what would break the line or hide bytes is
//! escaped: `\` as `\\`, newline, CR and tab as `\n`, `\r`, `\t`, other ASCII control
//! characters and bytes that are not UTF-8 as `\xNN`, other control characters as `\u{NNNN}`.

use std::fmt::Write as _;

use tt_client::{Event, FileNotice, FileServerAddr, GroupInfo, Message, UserInfo};

/// `bytes` as printable text (see the module documentation).
pub fn esc(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for ch in chunk.valid().chars() {
            match ch {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if c.is_ascii_control() => {
                    let _ = write!(out, "\\x{:02x}", c as u32);
                }
                c if c.is_control() => {
                    let _ = write!(out, "\\u{{{:04x}}}", c as u32);
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

/// Ids as `1,2,3` (empty for none).
pub fn ids(list: &[u32]) -> String {
    let words: Vec<String> = list.iter().map(u32::to_string).collect();
    words.join(",")
}

pub fn status_name(s: i32) -> String {
    match s {
        1 => "online".into(),
        2 => "offline".into(),
        3 => "leave".into(),
        n => n.to_string(),
    }
}

pub fn session_type_name(t: i32) -> String {
    match t {
        1 => "single".into(),
        2 => "group".into(),
        n => n.to_string(),
    }
}

pub fn group_type_name(t: i32) -> String {
    match t {
        1 => "normal".into(),
        2 => "tmp".into(),
        n => n.to_string(),
    }
}

pub fn change_type_name(t: i32) -> String {
    match t {
        1 => "add".into(),
        2 => "remove".into(),
        n => n.to_string(),
    }
}

/// File-server addresses as `ip:port,ip:port` (empty for none).
pub fn file_addrs(list: &[FileServerAddr]) -> String {
    let words: Vec<String> = list
        .iter()
        .map(|a| format!("{}:{}", esc(a.ip.as_bytes()), a.port))
        .collect();
    words.join(",")
}

pub fn mode_name(offline: bool) -> &'static str {
    if offline { "offline" } else { "online" }
}

/// A file sent to us (`CID_FILE_NOTIFY`).
pub fn print_notice(n: &FileNotice) {
    println!(
        "file-notify from={} to={} task={} name={} size={} mode={} ready={} addrs={}",
        n.from_user_id,
        n.to_user_id,
        esc(n.task_id.as_bytes()),
        esc(n.file_name.as_bytes()),
        n.file_size,
        mode_name(n.offline),
        u8::from(n.offline_ready),
        file_addrs(&n.addrs)
    );
}

pub fn print_event(ev: &Event) {
    match ev {
        Event::Message(m) => print_message(m),
        Event::Kicked { user_id, reason } => println!("kick user_id={user_id} reason={reason}"),
        Event::UserStatus { user_id, status } => {
            println!(
                "status-notify user_id={user_id} status={}",
                status_name(*status)
            )
        }
        Event::ReadNotify {
            user_id,
            session_id,
            msg_id,
            session_type,
        } => println!(
            "read-notify user_id={user_id} session={session_id} type={} msg_id={msg_id}",
            session_type_name(*session_type)
        ),
        Event::PcLoginStatus { user_id, status } => {
            println!("pc-login user_id={user_id} status={}", status_name(*status))
        }
        Event::SessionRemoved {
            user_id,
            session_id,
            session_type,
        } => println!(
            "session-removed user_id={user_id} session={session_id} type={}",
            session_type_name(*session_type)
        ),
        Event::SignInfoChanged { user_id, sign_info } => {
            println!(
                "sign-changed user_id={user_id} sign={}",
                esc(sign_info.as_bytes())
            )
        }
        Event::AvatarChanged {
            user_id,
            avatar_url,
        } => println!(
            "avatar-changed user_id={user_id} avatar={}",
            esc(avatar_url.as_bytes())
        ),
        Event::GroupMembersChanged {
            user_id,
            group_id,
            change_type,
            current,
            changed,
        } => println!(
            "group-members user_id={user_id} group={group_id} change={} changed={} current={}",
            change_type_name(*change_type),
            ids(changed),
            ids(current)
        ),
        Event::File(n) => print_notice(n),
        Event::Other(p) => println!(
            "pdu cmd={:#06x} name={} seq={} len={}",
            p.header.command_id,
            tt_client::tt_proto::ids::cid_name(p.header.command_id).unwrap_or("unknown"),
            p.header.seq_num,
            p.body.len()
        ),
        Event::Closed => println!("closed"),
    }
}

pub fn print_message(m: &Message) {
    println!(
        "msg from={} to={} id={} type={} time={} {}",
        m.from,
        m.to,
        m.msg_id,
        m.msg_type,
        m.create_time,
        content(m)
    );
}

/// `text=...` when the content is readable text, else `raw=...` (the bytes as received).
pub fn content(m: &Message) -> String {
    match &m.text {
        Some(t) => format!("text={}", esc(t.as_bytes())),
        None => format!("raw={}", esc(&m.raw)),
    }
}

pub fn print_user(u: &UserInfo) {
    println!(
        "user id={} name={} dept={} status={} gender={} nick={} real={} email={} tel={} \
         avatar={} sign={}",
        u.user_id,
        esc(&u.user_domain),
        u.department_id,
        u.status,
        u.user_gender,
        esc(&u.user_nick_name),
        esc(&u.user_real_name),
        esc(&u.email),
        esc(&u.user_tel),
        esc(&u.avatar_url),
        esc(u.sign_info.as_deref().unwrap_or_default())
    );
}

pub fn print_group(g: &GroupInfo) {
    println!(
        "group id={} version={} type={} creator={} shield={} members={} avatar={} name={}",
        g.group_id,
        g.version,
        group_type_name(g.group_type),
        g.group_creator_id,
        g.shield_status,
        ids(&g.group_member_list),
        esc(&g.group_avatar),
        esc(&g.group_name)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_printed_as_it_is() {
        assert_eq!(esc(b"User 1"), "User 1");
        assert_eq!(esc("个性 签名 ✓".as_bytes()), "个性 签名 ✓");
        assert_eq!(esc(b""), "");
    }

    #[test]
    fn line_breaking_and_hidden_characters_are_escaped() {
        assert_eq!(esc(b"a\\b"), "a\\\\b");
        assert_eq!(esc(b"1\n2\r3\t4"), "1\\n2\\r3\\t4");
        assert_eq!(esc(b"bell\x07 del\x7f"), "bell\\x07 del\\x7f");
        assert_eq!(esc("c1\u{85}".as_bytes()), "c1\\u{0085}");
    }

    #[test]
    fn bytes_that_are_not_utf8_are_escaped_one_by_one() {
        assert_eq!(esc(b"ok\xff\xfe end"), "ok\\xff\\xfe end");
        // A truncated multi-byte sequence, then valid text.
        assert_eq!(esc(b"\xe4\xb8 x"), "\\xe4\\xb8 x");
    }

    #[test]
    fn id_lists() {
        assert_eq!(ids(&[]), "");
        assert_eq!(ids(&[3, 1, 2]), "3,1,2");
    }
}
