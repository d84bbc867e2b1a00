//! What one token entry of an `IMPushToUserReq` becomes: a queued [`Notification`] or a
//! [`Refusal`] (result code 1), and the Gorush request body of a batch of notifications.
//!
//! Accepted entries:
//!
//! - client type iOS (0x11) with a token of 64 to 200 hex digits, an even count (APNs device
//!   tokens: 64 digits today, longer ones allowed for);
//! - client type Android (0x12) with a token of 1 to 4096 printable ASCII characters, no space
//!   (FCM registration tokens: letters, digits, `:`, `-`, `_`, about 160 of them);
//! - a request whose `flash` and `data` together are at most [`MAX_PAYLOAD`] bytes (APNs and
//!   FCM both refuse payloads over 4 KiB).
//!
//! Gorush body (`POST /api/push`): `{"notifications": [...]}`, one notification per distinct
//! (platform, badge, silent, flash, data), with every token sharing them in `tokens`:
//!
//! - `platform` 1 (iOS) or 2 (Android), `badge` = `push_count`;
//! - a normal push (`push_type` 1): `message` = `flash`, and on iOS `sound` = `bingbong.aiff`
//!   (the original's sound);
//! - a silent push (any other `push_type`): no `message`, no `sound`, `content_available`;
//! - on iOS `topic` = `PushTopic` when set;
//! - `data`: the request's `data` when it is a JSON object (msg_server sends `msg_type`,
//!   `from_id` and `group_id` that way), otherwise `{"custom": data}` (the original's APNs key
//!   for it); absent when `data` is empty.

use std::sync::Arc;

use serde_json::{Map, Value, json};
use tt_proto::pb::base_define::{ClientType, UserTokenInfo};
use tt_proto::values::PUSH_TYPE_NORMAL;

/// Largest `flash` + `data` of a request, in bytes.
pub const MAX_PAYLOAD: usize = 3 * 1024;
/// Shortest and longest iOS token, in hex digits.
pub const IOS_TOKEN_LEN: std::ops::RangeInclusive<usize> = 64..=200;
/// Longest Android token, in bytes.
pub const MAX_ANDROID_TOKEN: usize = 4096;
/// The sound of a normal iOS push, as the original.
pub const IOS_SOUND: &str = "bingbong.aiff";

/// Gorush's platform codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Platform {
    Ios = 1,
    Android = 2,
}

impl Platform {
    pub fn name(self) -> &'static str {
        match self {
            Platform::Ios => "ios",
            Platform::Android => "android",
        }
    }
}

/// The text and data of one request, shared by its notifications.
#[derive(Debug, PartialEq)]
pub struct Payload {
    pub flash: String,
    /// The Gorush `data` object (None: no `data`).
    pub data: Option<Map<String, Value>>,
}

/// One token's notification, waiting for the gateway.
#[derive(Debug, Clone)]
pub struct Notification {
    pub user_id: u32,
    pub platform: Platform,
    pub token: String,
    pub badge: u32,
    pub silent: bool,
    pub payload: Arc<Payload>,
}

/// Why an entry gets result code 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Neither iOS nor Android.
    ClientType(i32),
    /// Empty, too long or with characters a device token cannot have.
    Token,
    /// `flash` + `data` over [`MAX_PAYLOAD`].
    Payload,
    /// The queue is at its bound.
    QueueFull,
    /// The sender thread ended (it panicked): nothing takes from the queue.
    SenderGone,
    /// push_server is stopping: the queue is being emptied, nothing more joins it.
    Stopping,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::ClientType(t) => write!(f, "client type 0x{t:02x} is neither iOS nor Android"),
            Refusal::Token => f.write_str("not a device token"),
            Refusal::Payload => write!(f, "flash and data over {MAX_PAYLOAD} bytes"),
            Refusal::QueueFull => f.write_str("queue full"),
            Refusal::SenderGone => f.write_str("the sender thread is gone"),
            Refusal::Stopping => f.write_str("stopping"),
        }
    }
}

/// The payload of a request, or [`Refusal::Payload`] for every entry of it. Bytes that are
/// not UTF-8 (a flash cut inside a character, as msg_server cuts it at 37 bytes) become U+FFFD.
pub fn payload(flash: &[u8], data: &[u8]) -> Result<Arc<Payload>, Refusal> {
    if flash.len() + data.len() > MAX_PAYLOAD {
        return Err(Refusal::Payload);
    }
    let flash = String::from_utf8_lossy(flash).into_owned();
    let data = String::from_utf8_lossy(data);
    let data = match serde_json::from_str::<Value>(&data) {
        Ok(Value::Object(map)) => Some(map),
        _ if data.is_empty() => None,
        _ => Some(Map::from_iter([("custom".to_string(), Value::from(data))])),
    };
    Ok(Arc::new(Payload { flash, data }))
}

/// The notification of one token entry.
pub fn notification(
    entry: &UserTokenInfo,
    payload: &Arc<Payload>,
) -> Result<Notification, Refusal> {
    let platform = match ClientType::try_from(entry.user_type) {
        Ok(ClientType::Ios) => Platform::Ios,
        Ok(ClientType::Android) => Platform::Android,
        _ => return Err(Refusal::ClientType(entry.user_type)),
    };
    if !token_ok(platform, &entry.token) {
        return Err(Refusal::Token);
    }
    // Checked to be ASCII.
    let token = String::from_utf8_lossy(&entry.token).into_owned();
    Ok(Notification {
        user_id: entry.user_id,
        platform,
        token,
        badge: entry.push_count,
        silent: entry.push_type != PUSH_TYPE_NORMAL,
        payload: Arc::clone(payload),
    })
}

fn token_ok(platform: Platform, token: &[u8]) -> bool {
    match platform {
        Platform::Ios => {
            IOS_TOKEN_LEN.contains(&token.len())
                && token.len().is_multiple_of(2)
                && token.iter().all(u8::is_ascii_hexdigit)
        }
        Platform::Android => {
            !token.is_empty()
                && token.len() <= MAX_ANDROID_TOKEN
                && token.iter().all(u8::is_ascii_graphic)
        }
    }
}

/// Whether two notifications can share one Gorush notification (all but the token equal).
fn same_push(a: &Notification, b: &Notification) -> bool {
    a.platform == b.platform
        && a.badge == b.badge
        && a.silent == b.silent
        && (Arc::ptr_eq(&a.payload, &b.payload) || a.payload == b.payload)
}

/// The `POST /api/push` body of a batch: notifications sharing everything but the token are
/// one Gorush notification, in the order of their first token.
pub fn gorush_body(batch: &[Notification], topic: &str) -> Value {
    let mut groups: Vec<(&Notification, Vec<&str>)> = Vec::new();
    for n in batch {
        match groups.iter_mut().find(|(first, _)| same_push(first, n)) {
            Some((_, tokens)) => tokens.push(&n.token),
            None => groups.push((n, vec![&n.token])),
        }
    }
    let notifications: Vec<Value> = groups
        .into_iter()
        .map(|(n, tokens)| gorush_notification(n, tokens, topic))
        .collect();
    json!({ "notifications": notifications })
}

fn gorush_notification(n: &Notification, tokens: Vec<&str>, topic: &str) -> Value {
    let mut o = Map::new();
    o.insert("tokens".into(), json!(tokens));
    o.insert("platform".into(), json!(n.platform as u8));
    o.insert("badge".into(), json!(n.badge));
    if n.silent {
        o.insert("content_available".into(), json!(true));
    } else {
        o.insert("message".into(), json!(n.payload.flash));
        if n.platform == Platform::Ios {
            o.insert("sound".into(), json!(IOS_SOUND));
        }
    }
    if n.platform == Platform::Ios && !topic.is_empty() {
        o.insert("topic".into(), json!(topic));
    }
    if let Some(data) = &n.payload.data {
        o.insert("data".into(), Value::Object(data.clone()));
    }
    Value::Object(o)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tt_testkit::push_gateway::user_token;

    const IOS: i32 = ClientType::Ios as i32;
    const ANDROID: i32 = ClientType::Android as i32;

    fn ios_token(n: usize) -> String {
        "ab".repeat(n / 2)
    }

    #[test]
    fn tokens_and_client_types() {
        let p = payload(b"hi", b"").unwrap();
        let ok = |e: UserTokenInfo| notification(&e, &p).map(|n| n.platform);
        assert_eq!(
            ok(user_token(1, IOS, &ios_token(64), 1, 1)),
            Ok(Platform::Ios)
        );
        assert_eq!(
            ok(user_token(1, IOS, &"AF09".repeat(50), 1, 1)),
            Ok(Platform::Ios)
        );
        for bad in [
            ios_token(62),
            ios_token(202),
            format!("{}a", ios_token(64)),
            "g".repeat(64),
        ] {
            assert_eq!(
                ok(user_token(1, IOS, &bad, 1, 1)),
                Err(Refusal::Token),
                "{bad}"
            );
        }
        assert_eq!(
            ok(user_token(1, ANDROID, "fcm:APA91b-x_y", 1, 1)),
            Ok(Platform::Android)
        );
        for bad in [String::new(), "a b".into(), "x".repeat(4097), "é".into()] {
            assert_eq!(ok(user_token(1, ANDROID, &bad, 1, 1)), Err(Refusal::Token));
        }
        assert_eq!(
            ok(user_token(1, ClientType::Windows as i32, "tok", 1, 1)),
            Err(Refusal::ClientType(1))
        );
    }

    #[test]
    fn payload_bound_and_data() {
        assert_eq!(
            payload("x".repeat(MAX_PAYLOAD).as_bytes(), b"y"),
            Err(Refusal::Payload)
        );
        let p = payload(b"a", b"{\n\t\"from_id\": 12,\n\t\"msg_type\": 1 \n} \n").unwrap();
        assert_eq!(
            Value::Object(p.data.clone().unwrap()),
            json!({"from_id": 12, "msg_type": 1})
        );
        let p = payload(b"a", b"[1]").unwrap();
        assert_eq!(
            Value::Object(p.data.clone().unwrap()),
            json!({"custom": "[1]"})
        );
        assert_eq!(payload(b"a", b"").unwrap().data, None);
    }

    #[test]
    fn body_groups_same_pushes() {
        let p = payload(b"nick:hello", b"{\"from_id\":3}").unwrap();
        let n = |e: UserTokenInfo| notification(&e, &p).unwrap();
        let t1 = ios_token(64);
        let t2 = "cd".repeat(32);
        let batch = [
            n(user_token(1, IOS, &t1, 2, 1)),
            n(user_token(2, ANDROID, "fcm1", 2, 1)),
            n(user_token(3, IOS, &t2, 2, 1)),
            n(user_token(4, IOS, &t1, 5, 2)),
        ];
        let body = gorush_body(&batch, "com.example.tt");
        assert_eq!(
            body,
            json!({"notifications": [
                {"tokens": [t1, t2], "platform": 1, "badge": 2, "message": "nick:hello",
                 "sound": IOS_SOUND, "topic": "com.example.tt", "data": {"from_id": 3}},
                {"tokens": ["fcm1"], "platform": 2, "badge": 2, "message": "nick:hello",
                 "data": {"from_id": 3}},
                {"tokens": [t1], "platform": 1, "badge": 5, "content_available": true,
                 "topic": "com.example.tt", "data": {"from_id": 3}},
            ]})
        );
        let body = gorush_body(&batch[1..2], "");
        assert!(body["notifications"][0].get("topic").is_none());
    }
}
