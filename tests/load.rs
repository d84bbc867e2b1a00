//! Correctness under concurrency (not a speed test): ten pairs of users on two msg_servers, every
//! sender sending as fast as its acks allow (some with several messages in flight), every
//! receiver on the other msg_server, so each message crosses route_server. Every acked message
//! must be delivered exactly once, with the msg_id of its ack and the text that was sent, the
//! ids of a pair must be consecutive, and the history in the database must hold them all.
//!
//! The seeded users of `tt_testkit::users::LOAD_TEST` belong to this test. No timing
//! assertions: the waits are hang guards.

use std::collections::{HashMap, HashSet};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tt_client::tt_proto::ids::cid;
use tt_client::tt_proto::pb::message::ImMsgDataAck;
use tt_client::{Client, ClientType, Event, Message, MsgCipher, MsgType, UserStatType};
use tt_testkit::Stack;
use tt_testkit::users::{LOAD_TEST, PASSWORD};

/// Hang guard for one reply or event that must come.
const WAIT: Duration = Duration::from_secs(30);
/// Hang guard for a whole sender or receiver.
const WHOLE: Duration = Duration::from_secs(120);

const FIRST_USER: u32 = LOAD_TEST.first;
const PAIRS: usize = 10;
const _: () = assert!(
    2 * PAIRS as u32 <= LOAD_TEST.len(),
    "more pairs than LOAD_TEST users"
);
const MESSAGES: u32 = 30;
/// Messages in flight per pair's sender (1: one at a time). msg_server's MaxPendingDbRequests
/// (64) is above all of them.
const WINDOWS: [usize; PAIRS] = [1, 1, 1, 2, 4, 8, 16, 30, 3, 5];

fn login_at(stack: &Stack, server: usize, user: u32) -> Client {
    let mut c = Client::connect_to(stack.msg_addr(server)).expect("connect to msg_server");
    let info = c
        .login(
            &format!("user{user}"),
            PASSWORD,
            ClientType::Windows,
            UserStatType::UserStatusOnline,
        )
        .unwrap_or_else(|e| panic!("user{user} login: {e}"));
    assert_eq!(info.user_id, user);
    c
}

fn text(tag: &str, pair: usize, n: u32) -> String {
    format!("load {tag} pair={pair} n={n}")
}

/// A message the sender had acked: (msg_id, n).
type Acked = (u32, u32);

/// Sends `MESSAGES` messages with at most `window` unacked, then one more alone (the end
/// marker: the receiver has everything of the pair once it has that one). Returns the acks in
/// the order they came.
fn send_all(c: &mut Client, tag: &str, pair: usize, peer: u32, window: usize) -> Vec<Acked> {
    let cipher = MsgCipher::default();
    let deadline = Instant::now() + WHOLE;
    let mut acked = Vec::new();
    let mut inflight: HashMap<u16, u32> = HashMap::new();
    let mut next = 0u32;
    let total = MESSAGES + 1;
    while acked.len() < total as usize {
        // The end marker goes alone, after every other ack.
        let limit = if next == MESSAGES { 1 } else { window };
        while next < total && inflight.len() < limit && (next < MESSAGES || inflight.is_empty()) {
            let data = cipher
                .encrypt(text(tag, pair, next).as_bytes())
                .expect("encrypt");
            let seq = c
                .send_msg_nowait(peer, MsgType::SingleText, data)
                .unwrap_or_else(|e| panic!("pair {pair}: send {next}: {e}"));
            assert!(inflight.insert(seq, next).is_none(), "seq {seq} reused");
            next += 1;
        }
        assert!(
            Instant::now() < deadline,
            "pair {pair}: hang guard: {} acks of {total} after {WHOLE:?}",
            acked.len()
        );
        let ev = c
            .wait_for(
                WAIT,
                |e| matches!(e, Event::Other(p) if p.header.command_id == cid::CID_MSG_DATA_ACK),
            )
            .unwrap_or_else(|e| panic!("pair {pair}: waiting for an ack: {e}"));
        let Some(Event::Other(pdu)) = ev else {
            panic!(
                "pair {pair}: no ack within {WAIT:?}; {} in flight: {:?}",
                inflight.len(),
                inflight.values().collect::<Vec<_>>()
            );
        };
        let ack: ImMsgDataAck = pdu.decode_body().expect("ack decodes");
        let n = inflight
            .remove(&pdu.header.seq_num)
            .unwrap_or_else(|| panic!("pair {pair}: ack with unknown seq {}", pdu.header.seq_num));
        assert_eq!(ack.session_id, peer, "pair {pair}: ack of message {n}");
        assert_eq!(ack.session_type, 1, "pair {pair}: ack of message {n}");
        assert_ne!(ack.msg_id, 0, "pair {pair}: ack of message {n}");
        acked.push((ack.msg_id, n));
    }
    acked
}

/// Every message from `from` until the one with the end-marker text; everything else (status
/// notifies) is skipped.
fn receive_all(c: &mut Client, tag: &str, pair: usize, from: u32) -> Vec<Message> {
    let marker = text(tag, pair, MESSAGES);
    let deadline = Instant::now() + WHOLE;
    let mut got = Vec::new();
    loop {
        assert!(
            Instant::now() < deadline,
            "pair {pair}: hang guard: {} messages after {WHOLE:?}",
            got.len()
        );
        let ev = c
            .wait_for(WAIT, |e| matches!(e, Event::Message(_)))
            .unwrap_or_else(|e| panic!("pair {pair}: receiving: {e}"));
        let Some(Event::Message(m)) = ev else {
            panic!(
                "pair {pair}: no message within {WAIT:?} after {} messages",
                got.len()
            );
        };
        assert_eq!(m.from, from, "pair {pair}: message from a stranger: {m:?}");
        let end = m.text.as_deref() == Some(marker.as_str());
        got.push(m);
        if end {
            return got;
        }
    }
}

#[test]
fn every_acked_message_is_delivered_exactly_once_under_concurrency() {
    // No rate limit: the senders go as fast as their acks allow.
    let stack = Stack::builder("load")
        .msg_servers(2)
        .msg_conf_extra("MsgRateLimit=0\n")
        .start();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock");
    let tag = format!("t{}.{}", std::process::id(), now.as_micros());

    let sender_id = |p: usize| FIRST_USER + 2 * p as u32;
    // Senders first, on msg_server p % 2; then each receiver on the other msg_server. A sender
    // starts once the status notify of its receiver came through route_server, so route_server
    // knows where the receiver is.
    let mut senders: Vec<Client> = (0..PAIRS)
        .map(|p| login_at(&stack, p % 2, sender_id(p)))
        .collect();
    let receivers: Vec<Client> = (0..PAIRS)
        .map(|p| login_at(&stack, (p + 1) % 2, sender_id(p) + 1))
        .collect();
    for (p, s) in senders.iter_mut().enumerate() {
        let peer = sender_id(p) + 1;
        let online = UserStatType::UserStatusOnline as i32;
        let ev = s
            .wait_for(WAIT, |e| {
                matches!(e, Event::UserStatus { user_id, status } if *user_id == peer && *status == online)
            })
            .expect("status notify");
        assert!(
            ev.is_some(),
            "user{peer} online was never notified to user{}",
            sender_id(p)
        );
    }

    let (tx, rx) = mpsc::channel();
    let results: Vec<(Vec<Acked>, Vec<Message>, Client)> = thread::scope(|scope| {
        let mut rec_handles = Vec::new();
        for (p, mut r) in receivers.into_iter().enumerate() {
            let tag = &tag;
            rec_handles.push(scope.spawn(move || {
                let got = receive_all(&mut r, tag, p, sender_id(p));
                (got, r)
            }));
        }
        let mut send_handles = Vec::new();
        for (p, mut s) in senders.into_iter().enumerate() {
            let (tag, tx) = (&tag, tx.clone());
            send_handles.push(scope.spawn(move || {
                let acked = send_all(&mut s, tag, p, sender_id(p) + 1, WINDOWS[p]);
                // Keep the sender logged in until the receivers are done.
                let _ = tx.send(s);
                acked
            }));
        }
        let acks: Vec<Vec<Acked>> = send_handles
            .into_iter()
            .map(|h| h.join().expect("sender thread"))
            .collect();
        let got: Vec<(Vec<Message>, Client)> = rec_handles
            .into_iter()
            .map(|h| h.join().expect("receiver thread"))
            .collect();
        acks.into_iter()
            .zip(got)
            .map(|(a, (g, r))| (a, g, r))
            .collect()
    });
    drop(rx);

    for (p, (acked, got, mut r)) in results.into_iter().enumerate() {
        let from = sender_id(p);
        assert_eq!(acked.len(), MESSAGES as usize + 1, "pair {p}");
        // Every message was acked once; the ids of the pair are consecutive.
        let by_n: HashMap<u32, u32> = acked.iter().map(|&(id, n)| (n, id)).collect();
        assert_eq!(by_n.len(), acked.len(), "pair {p}: a message acked twice");
        let mut ids: Vec<u32> = acked.iter().map(|&(id, _)| id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(
            ids.len(),
            acked.len(),
            "pair {p}: a msg_id given twice: {acked:?}"
        );
        let first = ids[0];
        let want: Vec<u32> = (first..first + ids.len() as u32).collect();
        assert_eq!(ids, want, "pair {p}: acked msg ids not consecutive");
        let reordered = acked.windows(2).filter(|w| w[1].1 < w[0].1).count();
        eprintln!(
            "pair {p}: window {}, msg ids {first}..={}, acks out of send order: {reordered}",
            WINDOWS[p],
            first + acked.len() as u32 - 1
        );
        if WINDOWS[p] == 1 {
            // One at a time: ids follow the send order.
            for (i, &(id, n)) in acked.iter().enumerate() {
                assert_eq!(n, i as u32, "pair {p}: acks out of send order");
                assert_eq!(id, first + n, "pair {p}: msg_id of message {n}");
            }
        }

        // Delivered exactly once each, with the acked id and the text sent, in the order the
        // sender's msg_server acked them (which is msg_id order when one was sent at a time).
        let delivered: Vec<u32> = got.iter().map(|m| m.msg_id).collect();
        let unique: HashSet<u32> = delivered.iter().copied().collect();
        assert_eq!(
            unique.len(),
            delivered.len(),
            "pair {p}: duplicate delivery: {delivered:?}"
        );
        let ack_order: Vec<u32> = acked.iter().map(|&(id, _)| id).collect();
        assert_eq!(
            delivered, ack_order,
            "pair {p}: delivery order (left) vs ack order"
        );
        if WINDOWS[p] == 1 {
            assert_eq!(delivered, want, "pair {p}: not delivered in msg_id order");
        }
        let n_of: HashMap<u32, u32> = acked.iter().copied().collect();
        for m in &got {
            let n = n_of[&m.msg_id];
            assert_eq!(m.from, from, "pair {p}");
            assert_eq!(m.to, from + 1, "pair {p}");
            assert_eq!(m.msg_type, MsgType::SingleText as i32, "pair {p}");
            assert_eq!(
                m.text.as_deref(),
                Some(text(&tag, p, n).as_str()),
                "pair {p}: text of msg_id {}",
                m.msg_id
            );
        }
        // Nothing else arrived meanwhile (a late duplicate would be queued here).
        let late = r
            .wait_for(Duration::ZERO, |e| matches!(e, Event::Message(_)))
            .unwrap_or_else(|e| panic!("pair {p}: receiver: {e}"));
        assert!(
            late.is_none(),
            "pair {p}: a message after the end marker: {late:?}"
        );

        // The history in the database has them all, with the same texts.
        let last = *ids.last().expect("ids");
        let hist = r
            .get_msg_list(from, last, MESSAGES + 1)
            .unwrap_or_else(|e| panic!("pair {p}: history: {e}"));
        let mut hist_ids: Vec<u32> = hist.iter().map(|m| m.msg_id).collect();
        hist_ids.sort_unstable();
        assert_eq!(hist_ids, want, "pair {p}: history ids");
        for m in &hist {
            let n = n_of[&m.msg_id];
            assert_eq!(m.from, from, "pair {p}: history sender of {}", m.msg_id);
            assert_eq!(
                m.text.as_deref(),
                Some(text(&tag, p, n).as_str()),
                "pair {p}: history text of msg_id {}",
                m.msg_id
            );
        }
    }
}
