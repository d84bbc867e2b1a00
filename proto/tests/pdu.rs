//! PDU header, framing and the byte-exact examples of protocol.md §2.8.

use tt_proto::attach::{ATTACH_TYPE_HANDLE, DbAttachData};
use tt_proto::ids::{cid, sid};
use tt_proto::pb::base_define::{ClientType, UserStatType};
use tt_proto::pb::buddy::ImUsersStatReq;
use tt_proto::pb::login::{ImLoginReq, ImLoginRes};
use tt_proto::pb::other::ImHeartBeat;
use tt_proto::pdu::{
    DEFAULT_MAX_PDU_LEN, Decoder, FrameError, HEADER_LEN, Header, PDU_VERSION, Pdu,
    encode_command_into, encode_msg_into, encode_with_header_into, peek_frame,
};

fn hex(s: &str) -> Vec<u8> {
    s.split_whitespace()
        .filter(|t| *t != "|")
        .map(|t| u8::from_str_radix(t, 16).unwrap())
        .collect()
}

fn login_req() -> ImLoginReq {
    ImLoginReq {
        user_name: "a".into(),
        password: "b".into(),
        online_status: UserStatType::UserStatusOnline as i32,
        client_type: ClientType::Windows as i32,
        client_version: None,
    }
}

#[test]
fn header_round_trip() {
    let h = Header {
        length: 0x0102_0304,
        version: 0x0506,
        flag: 0x0708,
        service_id: 0x090a,
        command_id: 0x0b0c,
        seq_num: 0x0d0e,
        reserved: 0x0f10,
    };
    let bytes = h.to_bytes();
    assert_eq!(
        bytes,
        [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]
    );
    assert_eq!(Header::parse(&bytes), h);

    let mut out = [0xff; HEADER_LEN];
    h.write_to(&mut out);
    assert_eq!(out, bytes);

    let all_ones = Header::parse(&[0xff; HEADER_LEN]);
    assert_eq!(all_ones.length, u32::MAX);
    assert_eq!(all_ones.to_bytes(), [0xff; HEADER_LEN]);
    assert_eq!(all_ones.body_len(), u32::MAX as usize - HEADER_LEN);
    assert_eq!(Header::default().body_len(), 0);
}

/// §2.8 example 1: the client login PDU.
#[test]
fn vector_login_request() {
    let body = hex("0a 01 61 12 01 62 18 01 20 01");
    let whole = [
        hex("00 00 00 1a 00 01 00 00 00 01 01 03 00 05 00 00"),
        body.clone(),
    ]
    .concat();

    let pdu = Pdu::from_msg(
        sid::SID_LOGIN,
        cid::CID_LOGIN_REQ_USERLOGIN,
        5,
        &login_req(),
    );
    assert_eq!(pdu.body, body);
    assert_eq!(pdu.to_bytes(), whole);
    assert_eq!(Pdu::command(5, &login_req()).to_bytes(), whole);

    let mut out = Vec::new();
    encode_msg_into(
        &mut out,
        sid::SID_LOGIN,
        cid::CID_LOGIN_REQ_USERLOGIN,
        5,
        &login_req(),
    );
    assert_eq!(out, whole);
    out.clear();
    encode_command_into(&mut out, 5, &login_req());
    assert_eq!(out, whole);

    let header = peek_frame(&whole, DEFAULT_MAX_PDU_LEN).unwrap().unwrap();
    assert_eq!(header, pdu.header);
    let parsed = Pdu::from_frame(&whole, header);
    assert_eq!(parsed, pdu);
    assert_eq!(parsed.decode_body::<ImLoginReq>().unwrap(), login_req());
    assert_eq!(parsed.decode_checked::<ImLoginReq>().unwrap(), login_req());
}

/// §2.8 example 2: msg_server → route_server users-status query with a 12-byte attach record.
#[test]
fn vector_users_status_query() {
    let body = hex("08 05 | 10 07 | 10 ac 02 | a2 01 0c 00 00 00 01 00 00 00 09 00 00 00 00");
    assert_eq!(body.len(), 22);
    let header = hex("00 00 00 26 00 01 00 00 00 02 02 0a 00 00 00 00");

    let req = ImUsersStatReq {
        user_id: 5,
        user_id_list: vec![7, 300],
        attach_data: Some(DbAttachData::new(ATTACH_TYPE_HANDLE, 9).to_vec()),
    };
    let pdu = Pdu::from_msg(
        sid::SID_BUDDY_LIST,
        cid::CID_BUDDY_LIST_USERS_STATUS_REQUEST,
        0,
        &req,
    );
    assert_eq!(pdu.body, body);
    assert_eq!(pdu.to_bytes(), [header, body.clone()].concat());

    let back: ImUsersStatReq = pdu.decode_checked().unwrap();
    assert_eq!(back, req);
    let attach = DbAttachData::decode(back.attach_data.as_deref().unwrap()).unwrap();
    assert_eq!(attach, DbAttachData::new(1, 9));
}

/// §2.8 example 3 / §2.1: the heartbeat a server creates.
#[test]
fn vector_heartbeat() {
    let bytes = hex("00 00 00 10 | 00 01 | 00 00 | 00 07 | 07 01 | 00 00 | 00 00");
    assert_eq!(Pdu::heartbeat().to_bytes(), bytes);
    assert_eq!(Pdu::command(0, &ImHeartBeat {}).to_bytes(), bytes);
    let mut out = Vec::new();
    encode_msg_into(
        &mut out,
        sid::SID_OTHER,
        cid::CID_OTHER_HEARTBEAT,
        0,
        &ImHeartBeat {},
    );
    assert_eq!(out, bytes);
    assert_eq!(
        peek_frame(&bytes, DEFAULT_MAX_PDU_LEN).unwrap(),
        Some(Pdu::heartbeat().header)
    );
}

#[test]
fn new_pdu_header_fields() {
    let pdu = Pdu::new(3, 0x0301, 77, vec![1, 2, 3]);
    assert_eq!(
        pdu.header,
        Header {
            length: 19,
            version: PDU_VERSION,
            flag: 0,
            service_id: 3,
            command_id: 0x0301,
            seq_num: 77,
            reserved: 0,
        }
    );
    assert_eq!(pdu.encoded_len(), 19);
    assert_eq!(pdu.header.body_len(), 3);
}

/// A client header as the Android client sends it (version 6, reserved '0').
fn android_request() -> Header {
    Header {
        length: 26,
        version: 6,
        flag: 0,
        service_id: sid::SID_LOGIN,
        command_id: cid::CID_LOGIN_REQ_USERLOGIN,
        seq_num: 0x1234,
        reserved: 0x0030,
    }
}

#[test]
fn reply_is_a_fresh_header_with_the_request_seq() {
    let res = ImLoginRes {
        server_time: 1,
        result_code: 0,
        ..Default::default()
    };
    let pdu = Pdu::reply_to(&android_request(), cid::CID_LOGIN_RES_USERLOGIN, &res);
    assert_eq!(
        pdu.header,
        Header {
            length: (HEADER_LEN + pdu.body.len()) as u32,
            version: PDU_VERSION,
            flag: 0,
            service_id: sid::SID_LOGIN,
            command_id: cid::CID_LOGIN_RES_USERLOGIN,
            seq_num: 0x1234,
            reserved: 0,
        }
    );
    // The service id follows the reply's command id.
    let validate = android_request().reply(cid::CID_OTHER_VALIDATE_REQ);
    assert_eq!(validate.service_id, sid::SID_OTHER);
    assert_eq!(validate.seq_num, 0x1234);

    let mut out = Vec::new();
    encode_with_header_into(
        &mut out,
        &android_request().reply(cid::CID_LOGIN_RES_USERLOGIN),
        &res,
    );
    assert_eq!(out, pdu.to_bytes());
}

#[test]
fn relay_keeps_every_received_header_field() {
    let mut req = login_req();
    req.client_version = Some("6.0".into());
    let received = android_request();
    let pdu = Pdu::relay(&received, &req);
    assert_eq!(
        pdu.header,
        Header {
            length: (HEADER_LEN + pdu.body.len()) as u32,
            ..received
        }
    );
    assert_ne!(pdu.header.length, received.length);

    let mut out = Vec::new();
    encode_with_header_into(&mut out, &received, &req);
    assert_eq!(out, pdu.to_bytes());
}

#[test]
fn encoding_always_writes_the_body_length() {
    let mut pdu = Pdu::new(1, 2, 3, vec![9; 4]);
    pdu.header.length = 999;
    let bytes = pdu.to_bytes();
    assert_eq!(&bytes[0..4], &[0, 0, 0, 20]);
    assert_eq!(bytes.len(), 20);
    let mut out = vec![0xaa];
    pdu.encode_into(&mut out);
    assert_eq!(out[1..], bytes[..]);
}

fn sample_stream() -> (Vec<Pdu>, Vec<u8>) {
    let pdus = vec![
        Pdu::heartbeat(),
        Pdu::command(5, &login_req()),
        Pdu::new(7, 0x0731, 65535, vec![0x42; 300]),
        Pdu::relay(&android_request(), &login_req()),
        Pdu::new(2, 0x0215, 1, Vec::new()),
    ];
    let mut bytes = Vec::new();
    for p in &pdus {
        p.encode_into(&mut bytes);
    }
    (pdus, bytes)
}

fn drain(decoder: &mut Decoder, into: &mut Vec<Pdu>) {
    while let Some(pdu) = decoder.next_pdu().unwrap() {
        into.push(pdu);
    }
}

#[test]
fn decoder_byte_at_a_time_equals_all_at_once() {
    let (pdus, bytes) = sample_stream();

    let mut whole = Decoder::new(DEFAULT_MAX_PDU_LEN);
    whole.push(&bytes);
    let mut at_once = Vec::new();
    drain(&mut whole, &mut at_once);
    assert_eq!(at_once, pdus);
    assert_eq!(whole.buffered(), 0);

    let mut single = Decoder::new(DEFAULT_MAX_PDU_LEN);
    let mut one_by_one = Vec::new();
    for (i, b) in bytes.iter().enumerate() {
        single.push(std::slice::from_ref(b));
        drain(&mut single, &mut one_by_one);
        // Never more than one incomplete PDU buffered.
        assert!(single.buffered() < 16 + 300, "at byte {i}");
    }
    assert_eq!(one_by_one, pdus);
    assert_eq!(single.buffered(), 0);

    // Arbitrary chunkings give the same result.
    for chunk in [2, 3, 15, 16, 17, 100, 1000] {
        let mut d = Decoder::default();
        let mut got = Vec::new();
        for piece in bytes.chunks(chunk) {
            d.push(piece);
            drain(&mut d, &mut got);
        }
        assert_eq!(got, pdus, "chunk size {chunk}");
    }
}

#[test]
fn peek_frame_waits_for_header_and_body() {
    let bytes = Pdu::command(5, &login_req()).to_bytes();
    for n in 0..bytes.len() {
        assert_eq!(
            peek_frame(&bytes[..n], DEFAULT_MAX_PDU_LEN),
            Ok(None),
            "{n} bytes"
        );
    }
    let mut longer = bytes.clone();
    longer.extend_from_slice(&[0; 5]);
    let header = peek_frame(&longer, DEFAULT_MAX_PDU_LEN).unwrap().unwrap();
    assert_eq!(header.length as usize, bytes.len());
    assert_eq!(Pdu::from_frame(&longer, header).to_bytes(), bytes);
}

fn header_with_length(length: u32) -> [u8; HEADER_LEN] {
    Header {
        length,
        ..Header::new(7, 0x0701, 0)
    }
    .to_bytes()
}

#[test]
fn lengths_below_the_header_are_rejected_at_once() {
    for length in [0, 1, 15] {
        let head = header_with_length(length);
        // Nothing is decided before the 16 header bytes are there.
        assert_eq!(peek_frame(&head[..15], DEFAULT_MAX_PDU_LEN), Ok(None));
        assert_eq!(
            peek_frame(&head, DEFAULT_MAX_PDU_LEN),
            Err(FrameError::TooShort(length))
        );

        let mut d = Decoder::default();
        d.push(&head);
        assert_eq!(d.next_pdu(), Err(FrameError::TooShort(length)));
    }
    // 16 is a valid, empty PDU.
    assert!(
        peek_frame(&header_with_length(16), DEFAULT_MAX_PDU_LEN)
            .unwrap()
            .is_some()
    );
}

#[test]
fn over_max_is_rejected_as_soon_as_the_header_is_there() {
    let max = 1024;
    let head = header_with_length(max + 1);
    assert_eq!(peek_frame(&head[..15], max), Ok(None));
    assert_eq!(
        peek_frame(&head, max),
        Err(FrameError::TooLong {
            length: max + 1,
            max
        })
    );
    // Exactly max is fine (waits for the body).
    assert_eq!(peek_frame(&header_with_length(max), max), Ok(None));

    let huge = header_with_length(u32::MAX);
    let mut d = Decoder::new(DEFAULT_MAX_PDU_LEN);
    d.push(&huge);
    assert_eq!(
        d.next_pdu(),
        Err(FrameError::TooLong {
            length: u32::MAX,
            max: DEFAULT_MAX_PDU_LEN
        })
    );
}

#[test]
fn decoder_stays_failed() {
    let mut d = Decoder::new(64);
    let good = Pdu::heartbeat().to_bytes();
    d.push(&good);
    d.push(&header_with_length(3));
    d.push(&good);
    assert_eq!(d.next_pdu(), Ok(Some(Pdu::heartbeat())));
    assert_eq!(d.next_pdu(), Err(FrameError::TooShort(3)));
    assert_eq!(d.error(), Some(FrameError::TooShort(3)));
    assert_eq!(d.buffered(), 0);
    d.push(&good);
    assert_eq!(d.buffered(), 0);
    assert_eq!(d.next_pdu(), Err(FrameError::TooShort(3)));
    assert_eq!(d.max_len(), 64);
}

#[test]
fn frame_errors_read_well() {
    assert_eq!(
        FrameError::TooShort(0).to_string(),
        "malformed PDU: length field is 0, less than the 16-byte header"
    );
    assert_eq!(
        FrameError::TooLong {
            length: 20_000_000,
            max: DEFAULT_MAX_PDU_LEN
        }
        .to_string(),
        "PDU too large: length field is 20000000 bytes, the limit is 16777216 bytes"
    );
    let _: &dyn std::error::Error = &FrameError::TooShort(1);
}
