//! Message commands: send, receive, history, unread counts, read acks.

use std::time::{Duration, Instant};

use tt_client::{Client, Error, Event};

use super::output::{content, print_event, print_message, session_type_name};
use super::{Flow, arg_session, arg_u32, arg_u32_opt, ids_from, rest, session_label};

pub fn execute(c: &mut Client, words: &[&str]) -> Result<Flow, Error> {
    match words[0] {
        "send" | "gsend" => {
            let to = arg_u32(words, 1, "user id")?;
            let body = rest(words, 2);
            if body.is_empty() {
                return Err(Error::Usage(format!("{}: missing text", words[0])));
            }
            let ack = if words[0] == "send" {
                c.send_text(to, &body)?
            } else {
                c.send_group_text(to, &body)?
            };
            println!(
                "sent to={} msg_id={} type={} seq={}",
                ack.session_id,
                ack.msg_id,
                session_type_name(ack.session_type),
                ack.seq
            );
        }
        "recv" => recv(c, words)?,
        "history" => {
            let s = arg_session(words, 1)?;
            let count = arg_u32_opt(words, 2, "count", 20)?;
            let begin = arg_u32_opt(words, 3, "begin msg id", 0)?;
            let list = c.get_msg_list(s, begin, count)?;
            println!("history session={} count={}", session_label(s), list.len());
            list.iter().for_each(print_message);
        }
        "getmsg" => {
            let s = arg_session(words, 1)?;
            let ids = ids_from(words, 2, "msg id")?;
            let list = c.get_msgs_by_id(s, &ids)?;
            println!("getmsg session={} count={}", session_label(s), list.len());
            list.iter().for_each(print_message);
        }
        "latest" => {
            let s = arg_session(words, 1)?;
            let id = c.latest_msg_id(s)?;
            println!("latest session={} msg_id={id}", session_label(s));
        }
        "unread" => {
            let u = c.unread_counts()?;
            println!("unread total={} sessions={}", u.total, u.sessions.len());
            for s in &u.sessions {
                println!(
                    "unread session={} type={} count={} latest_id={} from={} {}",
                    s.session_id,
                    session_type_name(s.session_type),
                    s.unread_cnt,
                    s.latest.msg_id,
                    s.latest.from,
                    content(&s.latest)
                );
            }
        }
        "read" => {
            let s = arg_session(words, 1)?;
            let msg_id = arg_u32(words, 2, "msg id")?;
            c.read_ack(s, msg_id)?;
            println!("read session={} msg_id={msg_id}", session_label(s));
        }
        other => unreachable!("{other} is not a message command"),
    }
    Ok(Flow::Continue)
}

/// `recv [seconds]`: waits for a message (or a kick), printing every event that arrives
/// meanwhile, then every event already received.
fn recv(c: &mut Client, words: &[&str]) -> Result<(), Error> {
    let secs: f64 = match words.get(1) {
        Some(w) => w
            .parse()
            .ok()
            .filter(|s: &f64| s.is_finite() && *s >= 0.0 && *s < 86_400.0)
            .ok_or_else(|| Error::Usage(format!("recv: bad seconds {w:?}")))?,
        None => 1.0,
    };
    let mut n = 0;
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let mut done_waiting = false;
    loop {
        let wait = if done_waiting {
            Duration::ZERO
        } else {
            deadline.saturating_duration_since(Instant::now())
        };
        let Some(ev) = c.next_event(wait)? else { break };
        print_event(&ev);
        n += 1;
        if matches!(ev, Event::Closed) {
            break;
        }
        // Once a message (or a kick) came, print only what is already there; notices (status
        // changes…) do not end the wait.
        if matches!(ev, Event::Message(_) | Event::Kicked { .. }) {
            done_waiting = true;
        }
    }
    if n == 0 {
        println!("recv none");
    }
    Ok(())
}
