//! Push-setting commands: the user's push shield (do not disturb) and the device token.

use tt_client::{Client, Error, PushShield};

use super::{Flow, arg_on_off, by_result, word};

pub fn execute(c: &mut Client, words: &[&str]) -> Result<Flow, Error> {
    match words[0] {
        "shield" => {
            let r = if words.len() > 1 {
                c.set_push_shield(arg_on_off(words, 1)?)?
            } else {
                c.query_push_shield()?
            };
            print_push_shield(&r);
            Ok(by_result(r.result_code))
        }
        "token" => {
            c.set_device_token(word(words, 1, "device token")?)?;
            println!("token ok");
            Ok(Flow::Continue)
        }
        other => unreachable!("{other} is not a push command"),
    }
}

fn print_push_shield(r: &PushShield) {
    match r.shield_status {
        Some(s) => println!("push-shield result={} status={s}", r.result_code),
        None => println!("push-shield result={}", r.result_code),
    }
}
