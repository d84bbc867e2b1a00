//! Buddy-list commands: sessions, users, status, departments, signature and avatar.

use tt_client::{Client, Error, Session};

use super::output::{content, esc, print_user, session_type_name, status_name};
use super::{Flow, arg_u32, by_result, ids_from, rest, word};

pub fn execute(c: &mut Client, words: &[&str]) -> Result<Flow, Error> {
    match words[0] {
        "sessions" => {
            let list = c.recent_sessions(0)?;
            println!("sessions count={}", list.len());
            for s in &list {
                println!(
                    "session id={} type={} status={} updated={} latest_id={} from={} {}",
                    s.session_id,
                    session_type_name(s.session_type),
                    s.session_status,
                    s.updated_time,
                    s.latest.msg_id,
                    s.latest.from,
                    content(&s.latest)
                );
            }
        }
        "rmsession" => {
            let id = arg_u32(words, 2, "session id")?;
            let session = match word(words, 1, "single or group")? {
                "single" => Session::user(id),
                "group" => Session::group(id),
                w => {
                    return Err(Error::Usage(format!(
                        "rmsession: single or group, got {w:?}"
                    )));
                }
            };
            let r = c.remove_session(session)?;
            println!(
                "rmsession result={} session={} type={}",
                r.result_code,
                r.session.id,
                session_type_name(r.session.kind as i32)
            );
            return Ok(by_result(r.result_code));
        }
        "users" => {
            let (list, _) = c.all_users(0)?;
            println!("users count={}", list.len());
            list.iter().for_each(print_user);
        }
        "whois" => {
            let ids = ids_from(words, 1, "user id")?;
            let list = c.user_info(&ids)?;
            println!("whois count={}", list.len());
            list.iter().for_each(print_user);
        }
        "status" => {
            let ids = ids_from(words, 1, "user id")?;
            for s in c.users_status(&ids)? {
                println!(
                    "status user_id={} status={}",
                    s.user_id,
                    status_name(s.status)
                );
            }
        }
        "depts" => {
            let list = c.departments(0)?;
            println!("depts count={}", list.len());
            for d in &list {
                println!(
                    "dept id={} parent={} priority={} status={} name={}",
                    d.dept_id,
                    d.parent_dept_id,
                    d.priority,
                    d.dept_status,
                    esc(&d.dept_name)
                );
            }
        }
        "sign" => {
            let r = c.change_sign_info(&rest(words, 1))?;
            println!(
                "sign result={} sign={}",
                r.result_code,
                esc(r.sign_info.as_deref().unwrap_or_default())
            );
            return Ok(by_result(r.result_code));
        }
        "avatar" => {
            let url = word(words, 1, "avatar url")?;
            let code = c.change_avatar(url)?;
            println!("avatar result={code}");
            return Ok(by_result(code));
        }
        other => unreachable!("{other} is not a buddy-list command"),
    }
    Ok(Flow::Continue)
}
