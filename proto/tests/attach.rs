//! attach_data layouts (protocol.md §9.2, §9.3).

use tt_proto::attach::{
    ATTACH_TYPE_HANDLE, ATTACH_TYPE_HANDLE_AND_PDU, ATTACH_TYPE_HANDLE_AND_PDU_FOR_FILE,
    ATTACH_TYPE_PDU_FOR_PUSH, AttachError, DB_ATTACH_LEN, DbAttachData, PDU_ATTACH_HEADER_LEN,
    PduAttachData, encode_pdu_attach_into, http, split_pdu_attach,
};
use tt_proto::pb::base_define::MsgType;
use tt_proto::pb::message::ImMsgData;
use tt_proto::prost::Message;

#[test]
fn type_values() {
    assert_eq!(
        [
            ATTACH_TYPE_HANDLE,
            ATTACH_TYPE_HANDLE_AND_PDU,
            ATTACH_TYPE_PDU_FOR_PUSH,
            ATTACH_TYPE_HANDLE_AND_PDU_FOR_FILE
        ],
        [1, 3, 4, 5]
    );
    assert_eq!(http::ATTACH_TYPE_HANDLE, 3);
}

#[test]
fn db_attach_round_trip() {
    let a = DbAttachData {
        attach_type: 1,
        handle: 0x0102_0304,
        service_type: 0,
    };
    let bytes = a.to_bytes();
    assert_eq!(bytes, [0, 0, 0, 1, 1, 2, 3, 4, 0, 0, 0, 0]);
    assert_eq!(a.to_vec(), bytes.to_vec());
    assert_eq!(DbAttachData::decode(&bytes), Ok(a));
    assert_eq!(DbAttachData::new(1, 0x0102_0304), a);

    let odd = DbAttachData {
        attach_type: u32::MAX,
        handle: 7,
        service_type: 0x8000_0001,
    };
    assert_eq!(DbAttachData::decode(&odd.to_bytes()), Ok(odd));
}

#[test]
fn db_attach_truncated() {
    let bytes = DbAttachData::new(1, 9).to_bytes();
    for n in 0..DB_ATTACH_LEN {
        assert_eq!(
            DbAttachData::decode(&bytes[..n]),
            Err(AttachError::Truncated {
                needed: 12,
                available: n
            })
        );
    }
}

#[test]
fn pdu_attach_round_trip() {
    let msg = ImMsgData {
        from_user_id: 1,
        to_session_id: 2,
        msg_id: 3,
        create_time: 4,
        msg_type: MsgType::GroupText as i32,
        msg_data: b"hi".to_vec(),
        attach_data: Some(DbAttachData::new(1, 5).to_vec()),
    };
    let a = PduAttachData::from_msg(ATTACH_TYPE_HANDLE_AND_PDU, 42, &msg);
    let bytes = a.to_vec();
    assert_eq!(bytes.len(), a.encoded_len());
    assert_eq!(
        bytes[..PDU_ATTACH_HEADER_LEN],
        [
            0,
            0,
            0,
            3,
            0,
            0,
            0,
            42,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            msg.encoded_len() as u8
        ]
    );
    assert_eq!(bytes[PDU_ATTACH_HEADER_LEN..], msg.encode_to_vec()[..]);

    let back = PduAttachData::decode(&bytes).unwrap();
    assert_eq!(back, a);
    assert_eq!(ImMsgData::decode(back.pdu.as_slice()).unwrap(), msg);

    let (head, body) = split_pdu_attach(&bytes).unwrap();
    assert_eq!(head, a.head());
    assert_eq!(body, &a.pdu[..]);

    let mut out = vec![0xee];
    encode_pdu_attach_into(&mut out, &a.head(), &a.pdu);
    assert_eq!(out[1..], bytes[..]);

    // The 12-byte reader accepts the long form.
    assert_eq!(DbAttachData::decode(&bytes), Ok(a.head()));
}

#[test]
fn pdu_attach_sixteen_byte_handle_form() {
    let a = PduAttachData::new(ATTACH_TYPE_HANDLE, 9, Vec::new());
    let bytes = a.to_vec();
    assert_eq!(bytes, [0, 0, 0, 1, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(PduAttachData::decode(&bytes), Ok(a));
    assert_eq!(DbAttachData::decode(&bytes), Ok(DbAttachData::new(1, 9)));
}

#[test]
fn pdu_attach_truncated() {
    let a = PduAttachData::new(ATTACH_TYPE_PDU_FOR_PUSH, 0, vec![1, 2, 3, 4, 5]);
    let bytes = a.to_vec();
    for n in 0..PDU_ATTACH_HEADER_LEN {
        assert_eq!(
            PduAttachData::decode(&bytes[..n]),
            Err(AttachError::Truncated {
                needed: 16,
                available: n
            }),
            "{n} bytes"
        );
    }
    for n in PDU_ATTACH_HEADER_LEN..bytes.len() {
        assert_eq!(
            split_pdu_attach(&bytes[..n]),
            Err(AttachError::Truncated {
                needed: 21,
                available: n
            }),
            "{n} bytes"
        );
    }
    // A 12-byte record given to the long reader.
    assert!(PduAttachData::decode(&DbAttachData::new(1, 9).to_bytes()).is_err());

    // An absurd N does not allocate or panic.
    let mut huge = DbAttachData::new(3, 1).to_vec();
    huge.extend_from_slice(&u32::MAX.to_be_bytes());
    huge.extend_from_slice(&[0; 8]);
    assert_eq!(
        PduAttachData::decode(&huge),
        Err(AttachError::Truncated {
            needed: 16 + u64::from(u32::MAX),
            available: 24
        })
    );
    assert_eq!(
        AttachError::Truncated {
            needed: 21,
            available: 12
        }
        .to_string(),
        "truncated attach_data: record needs 21 bytes, only 12 present"
    );
}

#[test]
fn trailing_bytes_are_ignored() {
    let mut bytes = PduAttachData::new(5, 8, vec![7, 7]).to_vec();
    bytes.extend_from_slice(&[1, 2, 3]);
    let (head, body) = split_pdu_attach(&bytes).unwrap();
    assert_eq!(head, DbAttachData::new(5, 8));
    assert_eq!(body, [7, 7]);
}
