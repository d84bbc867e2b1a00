//! Group commands: the normal-group list, group info, creating a temporary group, changing
//! members, a group's push shield.

use tt_client::{Client, Error, GroupModifyType};

use super::output::{change_type_name, esc, ids, print_group};
use super::{Flow, arg_on_off, arg_u32, by_result, ids_from, word};

pub fn execute(c: &mut Client, words: &[&str]) -> Result<Flow, Error> {
    match words[0] {
        "groups" => {
            let list = c.normal_groups()?;
            println!("groups count={}", list.len());
            for g in &list {
                println!("group id={} version={}", g.group_id, g.version);
            }
            Ok(Flow::Continue)
        }
        "group" => group(c, words),
        "shield" => {
            let group_id = arg_u32(words, 1, "group id")?;
            let on = arg_on_off(words, 2)?;
            let code = c.shield_group(group_id, on)?;
            println!(
                "group-shield result={code} group={group_id} status={}",
                u32::from(on)
            );
            Ok(by_result(code))
        }
        other => unreachable!("{other} is not a group command"),
    }
}

/// `group create|add|remove|info ...`: the words after `group` are the command.
fn group(c: &mut Client, words: &[&str]) -> Result<Flow, Error> {
    let sub = word(words, 1, "create, add, remove or info")?;
    let words = &words[1..];
    match sub {
        "create" => {
            let name = word(words, 1, "group name")?;
            let members = ids_from(words, 2, "member id")?;
            let r = c.create_group(name, "", &members)?;
            let id = r.group_id.map_or_else(String::new, |id| id.to_string());
            println!(
                "group-created result={} group={id} members={} name={}",
                r.result_code,
                ids(&r.members),
                esc(&r.group_name)
            );
            Ok(by_result(r.result_code))
        }
        "add" | "remove" => {
            let group_id = arg_u32(words, 1, "group id")?;
            let users = ids_from(words, 2, "user id")?;
            let change = if sub == "add" {
                GroupModifyType::Add
            } else {
                GroupModifyType::Del
            };
            let r = c.change_group_members(group_id, change, &users)?;
            println!(
                "group-members result={} group={} change={} changed={} current={}",
                r.result_code,
                r.group_id,
                change_type_name(r.change_type),
                ids(&r.changed),
                ids(&r.current)
            );
            Ok(by_result(r.result_code))
        }
        "info" => {
            let group_ids = ids_from(words, 1, "group id")?;
            let list = c.group_info(&group_ids)?;
            println!("group-info count={}", list.len());
            list.iter().for_each(print_group);
            Ok(Flow::Continue)
        }
        w => Err(Error::Usage(format!(
            "group: create, add, remove or info, got {w:?}"
        ))),
    }
}
