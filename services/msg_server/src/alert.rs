//! What an offline push of a stored message says (spec §10.4 steps 3–5), and the bounds of
//! the push chain.
//!
//! The alert text ("flash") is built as the original builds it: a picture (its start marker
//! before its end marker) reads `您收到了一条消息`; otherwise, when the sender's nick is
//! known, an audio message reads nick + `给您发送了一条语音消息` (single) or nick +
//! `在群聊中发送了一条语音消息` (group) and any other message nick + `:` + its text; with no
//! nick, `您收到了一条消息`. A flash longer than 37 bytes is cut to at most 37 and `...` is
//! appended; the cut is moved back to a character boundary (the original may split a UTF-8
//! sequence).
//!
//! The `data` is the JSON object the original's jsonxx writer produces: `from_id`, `group_id`
//! (group messages only) and `msg_type`, keys in byte order, one TAB-indented member a line.
//!
//! The chain of lookups behind a push (group shields, device tokens, PC presence) keeps no
//! state here: the request it ends with travels in the lookups' `attach_data`. What is
//! counted ([`Lookups`]) is how many lookups wait for their answer, per link, so that a slow
//! db_proxy or route_server cannot make them pile up.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use netlib::ConnId;
use tt_proto::crypto::MsgCipher;
use tt_proto::pb::base_define::MsgType;
use tt_proto::pb::message::ImMsgData;
use tt_proto::pb::server::ImPushToUserReq;

/// The marker that opens a picture in a message text.
pub const PICTURE_START: &[u8] = b"&$#@~^@[{:";
/// The marker that closes a picture in a message text.
pub const PICTURE_END: &[u8] = b":}]&$~@#@";
/// The flash of a picture, or of a sender whose nick is not known.
pub const ANY_MESSAGE: &str = "您收到了一条消息";
/// After the nick: a single audio message.
pub const SINGLE_AUDIO: &str = "给您发送了一条语音消息";
/// After the nick: a group audio message.
pub const GROUP_AUDIO: &str = "在群聊中发送了一条语音消息";
/// Longest flash before it is cut (bytes); `...` follows the cut.
pub const FLASH_CUT: usize = 37;
/// Token entries in one push request (and one presence query for it).
pub const MAX_TOKENS_PER_PUSH: usize = 500;
/// Lookups of the push chain waiting for their answer, over all links; a push whose lookup
/// would go past it is dropped (logged).
pub const MAX_PENDING_LOOKUPS: usize = 10_000;
/// A lookup without an answer for this long no longer counts.
pub const LOOKUP_TIMEOUT: Duration = Duration::from_secs(30);

/// The push request of a stored message before its tokens are known: its flash and data.
/// `None` when the text of a text message cannot be decrypted (the original pushes nothing
/// then).
pub fn template(
    msg: &ImMsgData,
    cipher: &MsgCipher,
    nick: Option<&[u8]>,
) -> Option<ImPushToUserReq> {
    let is_text =
        msg.msg_type == MsgType::SingleText as i32 || msg.msg_type == MsgType::GroupText as i32;
    let text = if is_text {
        cipher.decrypt(&msg.msg_data).ok()?
    } else {
        msg.msg_data.clone()
    };
    let group = MsgType::is_group(msg.msg_type).then_some(msg.to_session_id);
    Some(ImPushToUserReq {
        flash: flash(msg.msg_type, &text, nick),
        data: data(msg.msg_type, msg.from_user_id, group).into_bytes(),
        user_token_list: Vec::new(),
    })
}

/// The alert text of a message of `msg_type` with plain `text` from a sender with `nick`.
pub fn flash(msg_type: i32, text: &[u8], nick: Option<&[u8]>) -> Vec<u8> {
    let nick = match nick {
        Some(n) if !is_picture(text) => n,
        _ => return ANY_MESSAGE.as_bytes().to_vec(),
    };
    let mut out = nick.to_vec();
    if msg_type == MsgType::GroupAudio as i32 {
        out.extend_from_slice(GROUP_AUDIO.as_bytes());
    } else if msg_type == MsgType::SingleAudio as i32 {
        out.extend_from_slice(SINGLE_AUDIO.as_bytes());
    } else {
        out.push(b':');
        out.extend_from_slice(text);
    }
    if out.len() > FLASH_CUT {
        let mut cut = FLASH_CUT;
        // Back to the first byte of a character (never inside a UTF-8 sequence).
        while cut > 0 && out[cut] & 0xC0 == 0x80 {
            cut -= 1;
        }
        out.truncate(cut);
        out.extend_from_slice(b"...");
    }
    out
}

/// True if the first picture start marker comes before the first end marker.
fn is_picture(text: &[u8]) -> bool {
    let find = |needle: &[u8]| text.windows(needle.len()).position(|w| w == needle);
    matches!((find(PICTURE_START), find(PICTURE_END)), (Some(s), Some(e)) if s < e)
}

/// The `data` of a push, in the original's layout.
pub fn data(msg_type: i32, from: u32, group: Option<u32>) -> String {
    match group {
        Some(g) => format!(
            "{{\n\t\"from_id\": {from},\n\t\"group_id\": {g},\n\t\"msg_type\": {msg_type} \n}} \n"
        ),
        None => format!("{{\n\t\"from_id\": {from},\n\t\"msg_type\": {msg_type} \n}} \n"),
    }
}

/// The lookups of the push chain waiting for their answer, per link (`L`: a link), each with
/// the time it was sent.
#[derive(Debug)]
pub struct Lookups<L = ConnId> {
    per_link: HashMap<L, VecDeque<Instant>>,
    total: usize,
    /// Pushes dropped at the bound since [`Lookups::take_refused`].
    refused: usize,
}

impl<L> Default for Lookups<L> {
    fn default() -> Self {
        Lookups {
            per_link: HashMap::new(),
            total: 0,
            refused: 0,
        }
    }
}

impl<L: Copy + Eq + std::hash::Hash> Lookups<L> {
    /// Counts a lookup about to go on `link`; false (counted as refused) at the bound.
    pub fn begin(&mut self, link: L, now: Instant) -> bool {
        if self.total >= MAX_PENDING_LOOKUPS {
            self.refused += 1;
            return false;
        }
        self.per_link.entry(link).or_default().push_back(now);
        self.total += 1;
        true
    }

    /// An answer came on `link`: its oldest lookup is done.
    pub fn answered(&mut self, link: L) {
        if let Some(q) = self.per_link.get_mut(&link)
            && q.pop_front().is_some()
        {
            self.total -= 1;
            if q.is_empty() {
                self.per_link.remove(&link);
            }
        }
    }

    /// `link` closed: its lookups will not be answered.
    pub fn lost(&mut self, link: L) {
        if let Some(q) = self.per_link.remove(&link) {
            self.total -= q.len();
        }
    }

    /// Forgets the lookups sent more than [`LOOKUP_TIMEOUT`] before `now` (a request the
    /// server dropped without an answer); returns how many.
    pub fn expire(&mut self, now: Instant) -> usize {
        let mut gone = 0;
        self.per_link.retain(|_, q| {
            while q
                .front()
                .is_some_and(|&t| now.saturating_duration_since(t) > LOOKUP_TIMEOUT)
            {
                q.pop_front();
                gone += 1;
            }
            !q.is_empty()
        });
        self.total -= gone;
        gone
    }

    /// Pushes refused at the bound since the last call.
    pub fn take_refused(&mut self) -> usize {
        std::mem::take(&mut self.refused)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_is_the_original_layout() {
        let single = data(1, 1_345_232, None);
        assert_eq!(
            single,
            "{\n\t\"from_id\": 1345232,\n\t\"msg_type\": 1 \n} \n"
        );
        assert_eq!(single.len(), 42);
        assert_eq!(
            data(17, 12, Some(u32::MAX)),
            "{\n\t\"from_id\": 12,\n\t\"group_id\": 4294967295,\n\t\"msg_type\": 17 \n} \n"
        );
    }

    #[test]
    fn flash_texts() {
        let nick = Some("张三".as_bytes());
        assert_eq!(flash(1, b"hi", nick), "张三:hi".as_bytes());
        assert_eq!(flash(1, b"hi", None), ANY_MESSAGE.as_bytes());
        assert_eq!(
            flash(2, b"\x00\x01", nick),
            cut("张三给您发送了一条语音消息")
        );
        let pic = b"look &$#@~^@[{:http://x/1.png:}]&$~@#@";
        assert_eq!(flash(17, pic, nick), ANY_MESSAGE.as_bytes());
        // The end marker first: not a picture.
        let not_pic = b":}]&$~@#@ then &$#@~^@[{:";
        assert!(flash(1, not_pic, Some(b"a")).starts_with(b"a::}"));
    }

    /// The expected cut of an alert: at most 37 bytes on a character boundary, then `...`.
    fn cut(s: &str) -> Vec<u8> {
        if s.len() <= FLASH_CUT {
            return s.as_bytes().to_vec();
        }
        let mut end = FLASH_CUT;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}...", &s[..end]).into_bytes()
    }

    #[test]
    fn long_flashes_are_cut_on_a_character_boundary() {
        let ascii = flash(1, &[b'x'; 100], Some(b"n"));
        assert_eq!(ascii.len(), FLASH_CUT + 3);
        assert!(ascii.ends_with(b"x..."));
        let cjk = flash(18, b"", Some("长长长长长长长长长长".as_bytes()));
        let expected = cut("长长长长长长长长长长在群聊中发送了一条语音消息");
        assert_eq!(cjk, expected);
        assert!(std::str::from_utf8(&cjk).is_ok());
        assert_eq!(cjk.len(), 36 + 3);
    }

    #[test]
    fn text_is_decrypted_and_a_bad_one_stops_the_push() {
        let cipher = MsgCipher::default();
        let mut msg = ImMsgData {
            from_user_id: 7,
            to_session_id: 9,
            msg_id: 1,
            create_time: 0,
            msg_type: MsgType::SingleText as i32,
            msg_data: cipher.encrypt("hello".as_bytes()).unwrap(),
            attach_data: None,
        };
        let t = template(&msg, &cipher, Some(b"bob")).unwrap();
        assert_eq!(t.flash, b"bob:hello");
        assert_eq!(t.data, data(1, 7, None).as_bytes());
        msg.msg_data = b"not encrypted".to_vec();
        assert!(template(&msg, &cipher, Some(b"bob")).is_none());
        msg.msg_type = MsgType::GroupAudio as i32;
        let t = template(&msg, &cipher, None).unwrap();
        assert_eq!(t.flash, ANY_MESSAGE.as_bytes());
        assert_eq!(t.data, data(18, 7, Some(9)).as_bytes());
    }

    #[test]
    fn lookups_are_bounded_and_forgotten_with_their_link_or_in_time() {
        let mut l = Lookups::<u8>::default();
        let t = Instant::now();
        assert!(l.begin(1, t));
        l.answered(1);
        l.answered(1);
        assert_eq!(l.total, 0);
        for _ in 0..MAX_PENDING_LOOKUPS {
            assert!(l.begin(1, t));
        }
        assert!(!l.begin(2, t));
        assert_eq!(l.take_refused(), 1);
        l.lost(1);
        assert_eq!(l.total, 0);
        assert!(l.begin(2, t));
        assert!(l.begin(2, t + LOOKUP_TIMEOUT));
        assert_eq!(l.expire(t + LOOKUP_TIMEOUT), 0);
        assert_eq!(l.expire(t + LOOKUP_TIMEOUT * 2), 1);
        assert_eq!(l.total, 1);
    }
}
