//! Property tests of every daemon's dispatch, over TCP against real daemons: proptest-generated
//! PDUs — a command id drawn from the daemon's own commands, from every command of
//! `tt_proto::ids::cid::ALL` or from any 16-bit value; a body of arbitrary bytes or a valid
//! message with fields mutated — sent to db_proxy_server, route_server, login_server (its
//! msg_server port, its client port, and its HTTP port with arbitrary bytes) and msg_server
//! (before a login, after one, and through route_server as another msg_server would).
//!
//! Each daemon runs in a stack of its own, started once; every case goes over a fresh
//! connection, which is then half-closed and read until the daemon closes it (a daemon handles
//! the bytes before the end of stream, so the case is done when the close arrives). After each
//! case the daemon must be alive and serving: a fresh connection gets a valid reply. After all
//! cases its resident memory must not have grown past a generous bound (the figures are
//! printed).
//!
//! Valid messages are built from the `.proto` files (compiled with protox at start): every
//! field of its type, required ones always, values drawn from a tape of random bytes (proptest
//! shrinks the tape towards zeros, so a failing case shrinks towards the simplest message).
//! User and session ids are those of `users::PROPS` or ids no database row has; group and
//! department ids are never ids of existing rows, so no case touches another test's data. The
//! login names are never those the checks log in with (failed logins lock a name out).

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use protox::prost_reflect::{Cardinality, DescriptorPool, Kind, MessageDescriptor};
use tt_proto::attach::{DbAttachData, PduAttachData};
use tt_proto::ids::{self, cid, sid};
use tt_proto::pb::base_define::{ClientType, UserStatType};
use tt_proto::pb::buddy::{ImUsersStatReq, ImUsersStatRsp};
use tt_proto::pb::login::{ImLoginReq, ImLoginRes, ImMsgServReq, ImMsgServRsp};
use tt_proto::pb::server::{ImMsgServInfo, ImValidateReq, ImValidateRsp};
use tt_proto::{Decoder, Header, Pdu};
use tt_testkit::users::{PASSWORD_MD5, PROPS};
use tt_testkit::{PduClient, Stack};

/// Hang guard of every read (a daemon that neither answers nor closes fails the case).
const GUARD: Duration = Duration::from_secs(20);

/// Cases of each target (unless `PROPTEST_CASES` says otherwise).
const CASES: u32 = 512;

/// Cases run before the resident memory taken as the baseline is read.
const WARM_UP: u32 = 16;

/// Growth of the resident memory over the baseline that counts as unbounded.
const RSS_SLACK_KB: u64 = 48 * 1024;

/// The user every check logs in as (never a fuzzed login name).
fn checker() -> u32 {
    PROPS.id(0)
}

/// Ids no table has a row for: the fuzzed ids besides those of `PROPS`.
const NOBODY: [u32; 4] = [0xF000_0001, 0xF000_0002, 0xF000_0003, u32::MAX];

// ---- the schema of every command ----

/// The message of every command id, from the `.proto` files.
struct Schema {
    by_cid: HashMap<u16, MessageDescriptor>,
    /// Rust message name (`ImLoginReq`) → command id.
    by_name: HashMap<String, u16>,
}

fn schema() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("proto");
        let dir = root.join("pb");
        let files: Vec<_> = std::fs::read_dir(&dir)
            .expect("proto/pb")
            .map(|e| e.expect("a directory entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "proto"))
            .collect();
        let fds = protox::compile(&files, [&dir]).expect("compiling proto/pb");
        let pool = DescriptorPool::from_file_descriptor_set(fds).expect("a descriptor pool");
        // The command table of tt_proto: `CID_NAME = 0x0101 => module::Message,` lines.
        let table = std::fs::read_to_string(root.join("src/ids.rs")).expect("proto/src/ids.rs");
        let mut by_cid = HashMap::new();
        let mut by_name = HashMap::new();
        for line in table.lines().map(str::trim) {
            let Some((left, right)) = line.split_once(" => ") else {
                continue;
            };
            let Some((_, hex)) = left.split_once("= 0x") else {
                continue;
            };
            let id = u16::from_str_radix(hex.trim(), 16).expect("a hexadecimal command id");
            let (module, rust_name) = right
                .trim_end_matches(',')
                .split_once("::")
                .expect("module::Message");
            let package = match module {
                "login" => "IM.Login",
                "buddy" => "IM.Buddy",
                "message" => "IM.Message",
                "group" => "IM.Group",
                "file" => "IM.File",
                "switch_service" => "IM.SwitchService",
                "other" => "IM.Other",
                "server" => "IM.Server",
                other => panic!("unknown module {other} in proto/src/ids.rs"),
            };
            // prost spells `IMLoginReq` as `ImLoginReq`: the same letters.
            let found: Vec<MessageDescriptor> = pool
                .all_messages()
                .filter(|m| m.package_name() == package && m.name().eq_ignore_ascii_case(rust_name))
                .collect();
            assert_eq!(found.len(), 1, "{rust_name} in {package}");
            by_cid.insert(id, found[0].clone());
            by_name.insert(rust_name.to_string(), id);
        }
        assert_eq!(by_cid.len(), cid::ALL.len(), "every command of cid::ALL");
        Schema { by_cid, by_name }
    })
}

/// The command ids of these Rust message names.
fn cids(names: &[&str]) -> Vec<u16> {
    names
        .iter()
        .map(|n| {
            *schema()
                .by_name
                .get(*n)
                .unwrap_or_else(|| panic!("no command has the message {n}"))
        })
        .collect()
}

// ---- valid messages from a tape of random bytes ----

/// Random bytes read in order; zeros once used up.
struct Tape<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Tape<'_> {
    fn u8(&mut self) -> u8 {
        let b = self.bytes.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        b
    }

    fn u32(&mut self) -> u32 {
        u32::from_be_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    /// `n` bytes: from the tape, then a pattern seeded by it.
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let seed = self.u8();
        (0..n)
            .map(|i| match self.bytes.get(self.at) {
                Some(&b) => {
                    self.at += 1;
                    b
                }
                None => seed.wrapping_add((i as u8).wrapping_mul(31)),
            })
            .collect()
    }
}

/// Pieces of the text fields: ASCII, SQL and JSON metacharacters, multi-byte characters.
const TEXT: &[&str] = &[
    "a", "Z", "0", " ", "'", "\"", "\\", "%", "_", ";--", "\n", "é", "中", "😀", "\u{0}", "<",
];

impl Tape<'_> {
    /// Valid UTF-8 of `n` pieces.
    fn text(&mut self, n: usize) -> Vec<u8> {
        (0..n)
            .flat_map(|_| TEXT[usize::from(self.u8()) % TEXT.len()].bytes())
            .collect()
    }
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn key(out: &mut Vec<u8>, number: u32, wire_type: u8) {
    varint(out, (u64::from(number) << 3) | u64::from(wire_type & 7));
}

fn delimited(out: &mut Vec<u8>, number: u32, payload: &[u8]) {
    key(out, number, 2);
    varint(out, payload.len() as u64);
    out.extend_from_slice(payload);
}

/// What a uint32 field holds, by its name.
fn uint32_value(name: &str, t: &mut Tape) -> u32 {
    let userish = ["user", "member", "session", "creator"]
        .iter()
        .any(|w| name.contains(w))
        && (name.ends_with("_id") || name.ends_with("_list"));
    let groupish = ["group", "dept", "department"]
        .iter()
        .any(|w| name.contains(w));
    if userish {
        match t.u8() % 8 {
            0 => 0,
            1..=5 => PROPS.id(u32::from(t.u8()) % PROPS.len()),
            _ => NOBODY[usize::from(t.u8()) % NOBODY.len()],
        }
    } else if groupish {
        match t.u8() % 3 {
            0 => 0,
            _ => NOBODY[usize::from(t.u8()) % NOBODY.len()],
        }
    } else {
        match t.u8() % 4 {
            0 | 1 => u32::from(t.u8() % 21),
            2 => t.u32(),
            _ => [u32::MAX, 0x7FFF_FFFF, 0x8000_0000, 1 << 16][usize::from(t.u8()) % 4],
        }
    }
}

/// What a string or bytes field holds, by its name.
fn bytes_value(name: &str, t: &mut Tape) -> Vec<u8> {
    if name == "user_name" {
        // Never the checker's name: ten failures lock a name out.
        return match t.u8() % 3 {
            0 => PROPS
                .name(2 + u32::from(t.u8()) % (PROPS.len() - 2))
                .into_bytes(),
            1 => format!("{}' OR '1'='1", PROPS.name(PROPS.len() - 1)).into_bytes(),
            _ => {
                let n = usize::from(t.u8() % 24);
                t.bytes(n)
            }
        };
    }
    if name == "attach_data" {
        return match t.u8() % 4 {
            0 => DbAttachData::new(t.u32() % 8, t.u32()).to_vec(),
            1 => {
                let n = usize::from(t.u8() % 32);
                PduAttachData::new(t.u32() % 8, t.u32(), t.bytes(n)).to_vec()
            }
            2 => Vec::new(),
            _ => {
                let n = usize::from(t.u8() % 40);
                t.bytes(n)
            }
        };
    }
    let n = match t.u8() % 8 {
        0..=2 => usize::from(t.u8() % 8),
        3..=5 => usize::from(t.u8()),
        6 => 1000 + usize::from(t.u8()),
        _ => 5000 + usize::from(t.u8()) * 4,
    };
    if t.u8() % 4 == 3 {
        t.bytes(n)
    } else {
        t.text(n)
    }
}

/// The fields of a message of type `m`, each encoded on its own (so that a mutation can drop,
/// repeat or reorder whole fields). `depth` bounds nesting.
fn fields(m: &MessageDescriptor, t: &mut Tape, depth: u32) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for f in m.fields() {
        let count = match f.cardinality() {
            Cardinality::Required => 1,
            Cardinality::Optional => usize::from(t.u8() % 2),
            Cardinality::Repeated if depth >= 2 => 0,
            Cardinality::Repeated => match t.u8() % 16 {
                15 if matches!(f.kind(), Kind::Uint32) => 200 + usize::from(t.u8()) * 2,
                n => usize::from(n % 4),
            },
        };
        let number = f.number();
        let packed = matches!(f.kind(), Kind::Uint32) && count > 1 && t.u8().is_multiple_of(2);
        let mut packed_payload = Vec::new();
        for _ in 0..count {
            let mut field = Vec::new();
            match f.kind() {
                Kind::Uint32 => {
                    let v = uint32_value(f.name(), t);
                    if packed {
                        varint(&mut packed_payload, u64::from(v));
                        continue;
                    }
                    key(&mut field, number, 0);
                    varint(&mut field, u64::from(v));
                }
                Kind::Enum(e) => {
                    let values: Vec<i32> = e.values().map(|v| v.number()).collect();
                    let v = match t.u8() % 16 {
                        0..=13 => values[usize::from(t.u8()) % values.len()],
                        14 => t.u32() as i32,
                        _ => 0,
                    };
                    key(&mut field, number, 0);
                    // Negative enum values are sign-extended to ten bytes, as protobuf does.
                    varint(&mut field, i64::from(v) as u64);
                }
                Kind::String | Kind::Bytes => {
                    delimited(&mut field, number, &bytes_value(f.name(), t));
                }
                Kind::Message(inner) => {
                    let body: Vec<u8> = if depth >= 3 {
                        Vec::new()
                    } else {
                        fields(&inner, t, depth + 1).concat()
                    };
                    delimited(&mut field, number, &body);
                }
                other => panic!("{}: a field of kind {other:?}", f.full_name()),
            }
            out.push(field);
        }
        if packed {
            let mut field = Vec::new();
            delimited(&mut field, number, &packed_payload);
            out.push(field);
        }
    }
    out
}

/// How a valid message is spoilt before it is sent.
#[derive(Clone, Debug)]
enum Mutation {
    None,
    /// Drops field number `n` (modulo the field count), a required one maybe.
    Drop(usize),
    /// Sends a field twice.
    Repeat(usize),
    /// Sends the fields in reverse order.
    Reverse,
    /// Rewrites a field's wire type (its payload then reads as something else).
    WireType(usize, u8),
    /// Cuts the body short.
    Truncate(usize),
    /// Flips bits of one byte.
    Flip(usize, u8),
    /// Adds an unknown length-delimited field.
    Unknown(u8, Vec<u8>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        20 => Just(Mutation::None),
        1 => any::<usize>().prop_map(Mutation::Drop),
        1 => any::<usize>().prop_map(Mutation::Repeat),
        1 => Just(Mutation::Reverse),
        1 => (any::<usize>(), any::<u8>()).prop_map(|(i, w)| Mutation::WireType(i, w)),
        1 => any::<usize>().prop_map(Mutation::Truncate),
        1 => (any::<usize>(), 1..=255u8).prop_map(|(i, x)| Mutation::Flip(i, x)),
        1 => (21u8..=120, vec(any::<u8>(), 0..16)).prop_map(|(n, b)| Mutation::Unknown(n, b)),
    ]
}

/// A valid body of `m` from the tape, then `mutation`.
fn build_body(m: &MessageDescriptor, tape: &[u8], mutation: &Mutation) -> Vec<u8> {
    let mut t = Tape { bytes: tape, at: 0 };
    let mut fs = fields(m, &mut t, 0);
    match mutation {
        Mutation::Drop(i) if !fs.is_empty() => {
            fs.remove(i % fs.len());
        }
        Mutation::Repeat(i) if !fs.is_empty() => {
            let f = fs[i % fs.len()].clone();
            fs.push(f);
        }
        Mutation::Reverse => fs.reverse(),
        Mutation::WireType(i, w) if !fs.is_empty() => {
            // The key's low three bits (a one-byte key for every field number below 16).
            let len = fs.len();
            let f = &mut fs[i % len];
            f[0] = (f[0] & !7) | (w & 7);
        }
        Mutation::Unknown(n, b) => {
            let mut f = Vec::new();
            delimited(&mut f, u32::from(*n), b);
            fs.push(f);
        }
        _ => {}
    }
    let mut body = fs.concat();
    match mutation {
        Mutation::Truncate(i) if !body.is_empty() => body.truncate(i % body.len()),
        Mutation::Flip(i, x) if !body.is_empty() => {
            let len = body.len();
            body[i % len] ^= x;
        }
        _ => {}
    }
    body
}

/// One generated PDU. `bytes` is what goes on the wire (shown when a case fails).
#[derive(Clone)]
struct FuzzPdu {
    what: String,
    bytes: Vec<u8>,
}

impl std::fmt::Debug for FuzzPdu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {:02x?}", self.what, self.bytes)
    }
}

/// A PDU of a command drawn from `own` (mostly), from every command or from any id; with the
/// header the original servers write (mostly) or arbitrary fields; with a valid, mutated body
/// (mostly) or arbitrary bytes.
fn fuzz_pdu(own: Vec<u16>) -> impl Strategy<Value = FuzzPdu> {
    let command = prop_oneof![
        6 => prop::sample::select(own),
        3 => prop::sample::select(cid::ALL.to_vec()),
        1 => any::<u16>(),
    ];
    let header = prop_oneof![
        4 => any::<u16>().prop_map(|seq| (None, seq, [1, 0, 0])),
        1 => (any::<u16>(), any::<u16>(), any::<[u16; 3]>()).prop_map(|(s, seq, f)| (Some(s), seq, f)),
    ];
    let body = prop_oneof![
        4 => (vec(any::<u8>(), 0..256), mutation()).prop_map(|(t, m)| (Some(t), m, Vec::new())),
        1 => vec(any::<u8>(), 0..64).prop_map(|b| (None, Mutation::None, b)),
    ];
    (command, header, body).prop_map(|(command_id, (service, seq, f), (tape, mutation, raw))| {
        let message = schema().by_cid.get(&command_id);
        let (body, what) = match (tape, message) {
            (Some(tape), Some(m)) => (
                build_body(m, &tape, &mutation),
                format!("{} ({mutation:?})", m.name()),
            ),
            _ => (raw, "arbitrary body".to_string()),
        };
        let header = Header {
            length: 0,
            version: f[0],
            flag: f[1],
            service_id: service.unwrap_or(ids::service_of(command_id)),
            command_id,
            seq_num: seq,
            reserved: f[2],
        };
        let name = ids::cid_name(command_id).unwrap_or("an undefined command");
        FuzzPdu {
            what: format!("{name} {command_id:#06x}: {what}"),
            bytes: Pdu::with_header(header, body).to_bytes(),
        }
    })
}

/// What one case sends: PDUs, then maybe bytes that do not frame.
#[derive(Clone, Debug)]
struct Case {
    pdus: Vec<FuzzPdu>,
    tail: Vec<u8>,
}

fn case(own: Vec<u16>) -> impl Strategy<Value = Case> {
    let tail = prop_oneof![
        7 => Just(Vec::new()),
        1 => vec(any::<u8>(), 1..24),
    ];
    (vec(fuzz_pdu(own), 1..6), tail).prop_map(|(pdus, tail)| Case { pdus, tail })
}

impl Case {
    fn bytes(&self) -> Vec<u8> {
        let mut b: Vec<u8> = self.pdus.iter().flat_map(|p| p.bytes.clone()).collect();
        b.extend_from_slice(&self.tail);
        b
    }
}

// ---- talking to the daemons ----

fn fail(why: impl Into<String>) -> TestCaseError {
    TestCaseError::fail(why.into())
}

fn connect(port: u16) -> PduClient {
    let mut c = PduClient::connect(port);
    c.set_hang_guard(GUARD);
    c
}

/// Sends `bytes` (the daemon may close the connection before it has them all), half-closes
/// the connection and reads until the daemon closes it. Returns what came back.
fn send_and_close(stream: &TcpStream, bytes: &[u8]) -> Result<Vec<u8>, TestCaseError> {
    let _ = (&*stream).write_all(bytes);
    let _ = stream.shutdown(Shutdown::Write);
    until_closed(stream)
}

/// Reads until `take`, given every chunk received, says it has what it waits for (true), or
/// the peer closes the connection (end of stream or reset: false).
fn read_chunks(
    stream: &TcpStream,
    waiting_for: &str,
    mut take: impl FnMut(&[u8]) -> Result<bool, TestCaseError>,
) -> Result<bool, TestCaseError> {
    stream
        .set_read_timeout(Some(GUARD))
        .map_err(|e| fail(format!("setting a timeout: {e}")))?;
    let mut buf = [0u8; 16 * 1024];
    loop {
        match (&*stream).read(&mut buf) {
            Ok(0) => return Ok(false),
            Ok(n) => {
                if take(&buf[..n])? {
                    return Ok(true);
                }
            }
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return Ok(false),
            Err(e) => return Err(fail(format!("no {waiting_for} within {GUARD:?}: {e}"))),
        }
    }
}

/// Everything the peer sends until it closes the connection.
fn until_closed(stream: &TcpStream) -> Result<Vec<u8>, TestCaseError> {
    let mut got = Vec::new();
    read_chunks(stream, "close of a half-closed connection", |chunk| {
        got.extend_from_slice(chunk);
        Ok(false)
    })?;
    Ok(got)
}

/// Reads PDUs until one with `command_id` and `seq` (returned) or the close (`None`).
fn until_reply(
    stream: &TcpStream,
    command_id: u16,
    seq: u16,
) -> Result<Option<Pdu>, TestCaseError> {
    let mut d = Decoder::default();
    let mut found = None;
    read_chunks(stream, &format!("reply {command_id:#06x}"), |chunk| {
        d.push(chunk);
        while let Some(p) = d
            .next_pdu()
            .map_err(|e| fail(format!("a reply that does not frame: {e}")))?
        {
            if p.header.command_id == command_id && p.header.seq_num == seq {
                found = Some(p);
                return Ok(true);
            }
        }
        Ok(false)
    })?;
    Ok(found)
}

/// Resident memory of a process in KiB, `None` once it is gone or a zombie.
fn rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    if status
        .lines()
        .any(|l| l.starts_with("State:") && l.contains('Z'))
    {
        return None;
    }
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn alive(name: &str, pid: u32) -> Result<(), TestCaseError> {
    match rss_kb(pid) {
        Some(_) => Ok(()),
        None => Err(fail(format!("{name} (pid {pid}) is gone"))),
    }
}

/// Runs `CASES` cases of `strategy` through `run`; `watched` are the daemons (name, pid) whose
/// memory is read after the warm-up and at the end.
fn run_target<S: Strategy>(
    target: &str,
    watched: &[(&str, u32)],
    strategy: S,
    run: impl Fn(S::Value) -> Result<(), TestCaseError>,
) where
    S::Value: std::fmt::Debug,
{
    // PROPTEST_CASES (proptest's own variable) runs more or fewer cases.
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(CASES);
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let count = std::cell::Cell::new(0u32);
    let baseline = std::cell::RefCell::new(Vec::new());
    let started = Instant::now();
    let result = runner.run(&strategy, |value| {
        count.set(count.get() + 1);
        if count.get() == WARM_UP {
            *baseline.borrow_mut() = watched.iter().map(|(_, pid)| rss_kb(*pid)).collect();
        }
        run(value)
    });
    if let Err(e) = result {
        panic!("{target}: {e}");
    }
    eprintln!(
        "[dispatch_props] {target}: {} cases in {:?}",
        count.get(),
        started.elapsed()
    );
    let baseline = baseline.into_inner();
    for ((name, pid), before) in watched.iter().zip(&baseline) {
        let after = rss_kb(*pid).unwrap_or_else(|| panic!("{name} is gone"));
        let before = before.unwrap_or_else(|| panic!("{name}: no baseline"));
        eprintln!(
            "[dispatch_props] {target}: {name} VmRSS {before} kB after {WARM_UP} cases, \
             {after} kB at the end"
        );
        assert!(
            after <= before + RSS_SLACK_KB,
            "{target}: {name} grew from {before} kB to {after} kB"
        );
    }
}

fn pid_of(d: &Option<tt_testkit::Daemon>) -> u32 {
    d.as_ref().and_then(|d| d.pid()).expect("a running daemon")
}

// ---- the targets ----

/// A validate request for the checker on a fresh connection is answered with success.
fn db_proxy_serves(port: u16) -> Result<(), TestCaseError> {
    let mut c = connect(port);
    let seq = c.send(&ImValidateReq {
        user_name: PROPS.name(0).into_bytes(),
        password: PASSWORD_MD5.into(),
        attach_data: Some(b"check".to_vec()),
    });
    let p = until_reply(c.stream(), cid::CID_OTHER_VALIDATE_RSP, seq)?
        .ok_or_else(|| fail("db_proxy_server closed a validate request"))?;
    let rsp: ImValidateRsp = p.decode_checked().map_err(|e| fail(e.to_string()))?;
    prop_assert_eq!(rsp.result_code, 0, "the checker's login is valid");
    prop_assert_eq!(rsp.user_info.map(|u| u.user_id), Some(checker()));
    Ok(())
}

#[test]
fn db_proxy_server_dispatch() {
    let stack = Stack::builder("props-db-proxy")
        .route(false)
        .login(false)
        .msg_servers(0)
        .start();
    let port = stack.ports.db_proxy;
    let pid = pid_of(&stack.db_proxy);
    let own = cids(&[
        "ImValidateReq",
        "ImAllUserReq",
        "ImChangeAvatarReq",
        "ImChangeSignInfoReq",
        "ImDepartmentReq",
        "ImDeviceTokenReq",
        "ImGetDeviceTokenReq",
        "ImFileAddOfflineReq",
        "ImFileDelOfflineReq",
        "ImFileHasOfflineReq",
        "ImGetLatestMsgIdReq",
        "ImGetMsgByIdReq",
        "ImGetMsgListReq",
        "ImGroupChangeMemberReq",
        "ImGroupCreateReq",
        "ImGroupGetShieldReq",
        "ImGroupInfoListReq",
        "ImGroupShieldReq",
        "ImNormalGroupListReq",
        "ImMsgData",
        "ImMsgDataReadAck",
        "ImPushShieldReq",
        "ImQueryPushShieldReq",
        "ImRecentContactSessionReq",
        "ImRemoveSessionReq",
        "ImUnreadMsgCntReq",
        "ImUsersInfoReq",
    ]);
    db_proxy_serves(port).expect("db_proxy_server serves before the cases");
    run_target(
        "db_proxy_server",
        &[("db_proxy_server", pid)],
        case(own),
        |c| {
            let conn = connect(port);
            send_and_close(conn.stream(), &c.bytes())?;
            alive("db_proxy_server", pid)?;
            db_proxy_serves(port)
        },
    );
}

/// A users-status request on a fresh msg_server link is answered.
fn route_serves(port: u16) -> Result<(), TestCaseError> {
    let mut c = connect(port);
    let seq = c.send(&ImUsersStatReq {
        user_id: checker(),
        user_id_list: vec![checker(), PROPS.id(1)],
        attach_data: Some(b"check".to_vec()),
    });
    let p = until_reply(c.stream(), cid::CID_BUDDY_LIST_USERS_STATUS_RESPONSE, seq)?
        .ok_or_else(|| fail("route_server closed a users-status request"))?;
    let rsp: ImUsersStatRsp = p.decode_checked().map_err(|e| fail(e.to_string()))?;
    prop_assert_eq!(rsp.user_id, checker());
    prop_assert_eq!(rsp.user_stat_list.len(), 2);
    prop_assert_eq!(rsp.attach_data.as_deref(), Some(&b"check"[..]));
    Ok(())
}

/// The PDUs a msg_server sends route_server, or route_server relays to msg_servers.
const ROUTE_COMMANDS: &[&str] = &[
    "ImUsersStatReq",
    "ImUserStatusUpdate",
    "ImRoleSet",
    "ImOnlineUserInfo",
    "ImServerKickUser",
    "ImServerPcLoginStatusNotify",
    "ImUserStatNotify",
    "ImMsgData",
    "ImMsgDataReadNotify",
    "ImGroupChangeMemberNotify",
    "ImFileNotify",
    "Imp2pCmdMsg",
    "ImRemoveSessionNotify",
    "ImSignInfoChangedNotify",
    "ImpcLoginStatusNotify",
    "ImHeartBeat",
];

#[test]
fn route_server_dispatch() {
    let stack = Stack::builder("props-route")
        .db_proxy(false)
        .login(false)
        .msg_servers(0)
        .start();
    let port = stack.ports.route;
    let pid = pid_of(&stack.route);
    route_serves(port).expect("route_server serves before the cases");
    // A second link sees what route_server relays and broadcasts; it is drained between cases.
    let observer = connect(port);
    observer
        .stream()
        .set_nonblocking(true)
        .expect("a non-blocking observer");
    run_target(
        "route_server",
        &[("route_server", pid)],
        case(cids(ROUTE_COMMANDS)),
        |c| {
            let conn = connect(port);
            send_and_close(conn.stream(), &c.bytes())?;
            alive("route_server", pid)?;
            route_serves(port)?;
            // Its heartbeat keeps the link from timing out.
            let _ = observer.stream().write_all(&Pdu::heartbeat().to_bytes());
            let mut buf = [0u8; 64 * 1024];
            while let Ok(n) = observer.stream().read(&mut buf) {
                if n == 0 {
                    return Err(fail("route_server closed an observing msg_server link"));
                }
            }
            Ok(())
        },
    );
}

/// login_server answers on each of its ports: a msg_server link's pick, a binary client's
/// request and an HTTP `/msg_server` request, each with the registered msg_server.
fn login_serves(
    registered: &mut PduClient,
    client_port: u16,
    http_port: u16,
) -> Result<(), TestCaseError> {
    // The registered link's pick: the next PDU other than a heartbeat is the reply.
    let rsp: ImMsgServRsp = registered.call(&ImMsgServReq {});
    prop_assert_eq!(rsp.result_code, 0, "a msg_server is registered");
    let mut c = connect(client_port);
    let seq = c.send(&ImMsgServReq {});
    let p = until_reply(c.stream(), cid::CID_LOGIN_RES_MSGSERVER, seq)?
        .ok_or_else(|| fail("login_server closed a binary client's request"))?;
    let rsp: ImMsgServRsp = p.decode_checked().map_err(|e| fail(e.to_string()))?;
    prop_assert_eq!(rsp.result_code, 0);
    let http = connect(http_port);
    let reply = send_and_close(
        http.stream(),
        b"GET /msg_server HTTP/1.1\r\nHost: t\r\n\r\n",
    )?;
    let text = String::from_utf8_lossy(&reply);
    prop_assert!(text.starts_with("HTTP/1.1 200"), "{}", text);
    let compact: String = text.split_whitespace().collect();
    prop_assert!(compact.contains("\"code\":0,"), "{}", text);
    Ok(())
}

/// Bytes for an HTTP port: arbitrary, or requests with arbitrary parts.
fn http_bytes() -> impl Strategy<Value = Vec<u8>> {
    let line = prop_oneof![
        Just(b"GET /msg_server HTTP/1.1\r\n".to_vec()),
        Just(b"POST /msg_server HTTP/1.0\r\n".to_vec()),
        "[A-Z]{1,8} /[ -~]{0,40} HTTP/1\\.[0-9]\r\n".prop_map(String::into_bytes),
        vec(any::<u8>(), 0..60),
    ];
    let field = prop_oneof![
        "[A-Za-z-]{1,16}: [ -~]{0,40}\r\n".prop_map(String::into_bytes),
        Just(b"Content-Length: 5\r\n".to_vec()),
        Just(b"Content-Length: 99999999999\r\n".to_vec()),
        Just(b"Transfer-Encoding: chunked\r\n".to_vec()),
        Just(b"Connection: keep-alive\r\n".to_vec()),
        vec(any::<u8>(), 0..30),
    ];
    let request = (line, vec(field, 0..8), vec(any::<u8>(), 0..1200))
        .prop_map(|(line, fields, body)| [line, fields.concat(), b"\r\n".to_vec(), body].concat());
    prop_oneof![
        1 => vec(any::<u8>(), 0..2048),
        3 => vec(request, 1..3).prop_map(|r| r.concat()),
    ]
}

#[test]
fn login_server_dispatch() {
    let stack = Stack::builder("props-login")
        .db_proxy(false)
        .route(false)
        .msg_servers(0)
        .start();
    let p = &stack.ports;
    let (msg_port, client_port, http_port) = (p.login_msg, p.login_client, p.login_http);
    let pid = pid_of(&stack.login);
    let mut registered = connect(msg_port).skipping_heartbeats();
    registered.notify(&ImMsgServInfo {
        ip1: "127.0.0.9".into(),
        ip2: "127.0.0.10".into(),
        port: 9,
        max_conn_cnt: 1_000_000,
        cur_conn_cnt: 0,
        host_name: "props".into(),
    });
    let registered = std::cell::RefCell::new(registered);
    let serves = || login_serves(&mut registered.borrow_mut(), client_port, http_port);
    serves().expect("login_server serves before the cases");
    let watched = [("login_server", pid)];
    let own = cids(&[
        "ImMsgServInfo",
        "ImUserCntUpdate",
        "ImMsgServReq",
        "ImHeartBeat",
    ]);
    for (target, port) in [
        ("login_server msg_server port", msg_port),
        ("login_server client port", client_port),
    ] {
        run_target(target, &watched, case(own.clone()), |c| {
            let conn = connect(port);
            send_and_close(conn.stream(), &c.bytes())?;
            alive("login_server", pid)?;
            serves()
        });
    }
    run_target("login_server HTTP port", &watched, http_bytes(), |bytes| {
        let conn = connect(http_port);
        send_and_close(conn.stream(), &bytes)?;
        alive("login_server", pid)?;
        serves()
    });
}

/// A heartbeat on a fresh client connection is echoed.
fn msg_server_serves(port: u16) -> Result<(), TestCaseError> {
    let mut c = connect(port);
    c.send_pdu(&Pdu::new(
        sid::SID_OTHER,
        cid::CID_OTHER_HEARTBEAT,
        7,
        Vec::new(),
    ));
    until_reply(c.stream(), cid::CID_OTHER_HEARTBEAT, 7)?
        .ok_or_else(|| fail("msg_server closed a connection that sent a heartbeat"))?;
    Ok(())
}

/// The checker logged in on a fresh connection (the login goes through db_proxy_server and
/// route_server, so this checks them as well).
fn checker_login(port: u16) -> Result<PduClient, TestCaseError> {
    let mut c = connect(port);
    let seq = c.send(&ImLoginReq {
        user_name: PROPS.name(0).into_bytes(),
        password: PASSWORD_MD5.into(),
        online_status: UserStatType::UserStatusOnline as i32,
        client_type: ClientType::Windows as i32,
        client_version: Some(b"props".to_vec()),
    });
    let p = until_reply(c.stream(), cid::CID_LOGIN_RES_USERLOGIN, seq)?
        .ok_or_else(|| fail("msg_server closed the checker's login"))?;
    let res: ImLoginRes = p.decode_checked().map_err(|e| fail(e.to_string()))?;
    prop_assert_eq!(res.result_code, 0, "the checker logs in");
    Ok(c)
}

/// The client commands of msg_server.
const CLIENT_COMMANDS: &[&str] = &[
    "ImLoginReq",
    "ImLogoutReq",
    "ImDeviceTokenReq",
    "ImKickPcClientReq",
    "ImPushShieldReq",
    "ImQueryPushShieldReq",
    "ImRecentContactSessionReq",
    "ImUsersInfoReq",
    "ImRemoveSessionReq",
    "ImAllUserReq",
    "ImUsersStatReq",
    "ImChangeAvatarReq",
    "ImDepartmentReq",
    "ImChangeSignInfoReq",
    "ImMsgData",
    "ImMsgDataAck",
    "ImMsgDataReadAck",
    "ImClientTimeReq",
    "ImUnreadMsgCntReq",
    "ImGetMsgListReq",
    "ImGetLatestMsgIdReq",
    "ImGetMsgByIdReq",
    "ImNormalGroupListReq",
    "ImGroupInfoListReq",
    "ImGroupCreateReq",
    "ImGroupChangeMemberReq",
    "ImGroupShieldReq",
    "ImFileReq",
    "ImFileHasOfflineReq",
    "ImFileAddOfflineReq",
    "ImFileDelOfflineReq",
    "Imp2pCmdMsg",
    "ImHeartBeat",
];

#[test]
fn msg_server_dispatch() {
    let stack = Stack::start("props-msg", 1);
    let port = stack.msg_port(0);
    let route_port = stack.ports.route;
    let msg_pid = pid_of(&stack.msg[0]);
    let watched = [
        ("msg_server", msg_pid),
        ("db_proxy_server", pid_of(&stack.db_proxy)),
        ("route_server", pid_of(&stack.route)),
    ];
    let serves = || -> Result<(), TestCaseError> {
        alive("msg_server", msg_pid)?;
        msg_server_serves(port)
    };
    serves().expect("msg_server serves before the cases");
    checker_login(port).expect("the checker logs in before the cases");
    let client = cids(CLIENT_COMMANDS);

    run_target(
        "msg_server before a login",
        &watched,
        case(client.clone()),
        |c| {
            let conn = connect(port);
            send_and_close(conn.stream(), &c.bytes())?;
            serves()
        },
    );

    run_target("msg_server after a login", &watched, case(client), |c| {
        let conn = checker_login(port)?;
        let mut bytes = c
            .pdus
            .iter()
            .flat_map(|p| p.bytes.clone())
            .collect::<Vec<u8>>();
        // A heartbeat after the PDUs: its echo comes once they are handled.
        bytes.extend(
            Pdu::new(sid::SID_OTHER, cid::CID_OTHER_HEARTBEAT, 0xbeef, Vec::new()).to_bytes(),
        );
        bytes.extend_from_slice(&c.tail);
        let _ = conn.stream().write_all(&bytes);
        until_reply(conn.stream(), cid::CID_OTHER_HEARTBEAT, 0xbeef)?;
        let _ = conn.stream().shutdown(Shutdown::Write);
        until_closed(conn.stream())?;
        serves()
    });

    // As another msg_server: route_server relays these to the stack's msg_server.
    run_target(
        "msg_server through route_server",
        &watched,
        case(cids(ROUTE_COMMANDS)),
        |c| {
            let conn = connect(route_port);
            send_and_close(conn.stream(), &c.bytes())?;
            route_serves(route_port)?;
            serves()
        },
    );
    checker_login(port).expect("the checker logs in after the cases");
}
