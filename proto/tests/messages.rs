//! Generated messages: wire encoding (proto2 rules of protocol.md §3) and checked decoding.

use tt_proto::pb::base_define::{
    ClientType, ContactSessionInfo, GroupModifyType, GroupType, MsgType, SessionStatusType,
    SessionType, UserInfo, UserStat, UserStatType,
};
use tt_proto::pb::buddy::{
    ImRecentContactSessionRsp, ImUserStatNotify, ImUsersInfoReq, ImUsersStatRsp,
};
use tt_proto::pb::group::{ImGroupChangeMemberRsp, ImGroupCreateReq};
use tt_proto::pb::login::{ImDeviceTokenRsp, ImLoginReq, ImLoginRes, ImLogoutRsp, ImMsgServRsp};
use tt_proto::pb::message::ImMsgData;
use tt_proto::pb::other::ImHeartBeat;
use tt_proto::pb::server::ImGetDeviceTokenReq;
use tt_proto::pb::switch_service::Imp2pCmdMsg;
use tt_proto::prost::Message;
use tt_proto::required::{BodyError, check, decode_checked};

fn user_info(id: u32) -> UserInfo {
    UserInfo {
        user_id: id,
        user_gender: 1,
        user_nick_name: "nick".into(),
        avatar_url: "http://a/b.png".into(),
        department_id: 3,
        email: "x@y".into(),
        user_real_name: "张三".into(),
        user_tel: "123".into(),
        user_domain: "zhangsan".into(),
        status: 0,
        sign_info: Some("hello".into()),
    }
}

fn round_trip<M: Message + Default + PartialEq + std::fmt::Debug>(msg: &M) -> Vec<u8> {
    let bytes = msg.encode_to_vec();
    assert_eq!(&M::decode(bytes.as_slice()).unwrap(), msg);
    bytes
}

#[test]
fn repeated_uint32_is_written_unpacked() {
    let req = ImUsersInfoReq {
        user_id: 1,
        user_id_list: vec![1, 2, 300],
        attach_data: None,
    };
    assert_eq!(
        round_trip(&req),
        [0x08, 0x01, 0x10, 0x01, 0x10, 0x02, 0x10, 0xac, 0x02]
    );

    let tokens = ImGetDeviceTokenReq {
        user_id: vec![5, 6],
        attach_data: Some(vec![0xab]),
    };
    assert_eq!(
        round_trip(&tokens),
        [0x08, 0x05, 0x08, 0x06, 0xa2, 0x01, 0x01, 0xab]
    );

    let rsp = ImGroupChangeMemberRsp {
        user_id: 1,
        change_type: GroupModifyType::Del as i32,
        result_code: 0,
        group_id: 9,
        cur_user_id_list: vec![1, 2],
        chg_user_id_list: vec![3],
        attach_data: None,
    };
    assert_eq!(
        round_trip(&rsp),
        [
            0x08, 0x01, 0x10, 0x02, 0x18, 0x00, 0x20, 0x09, 0x28, 0x01, 0x28, 0x02, 0x30, 0x03
        ]
    );
}

#[test]
fn packed_repeated_input_is_accepted() {
    // Field 2 as one packed run: 12 04 | 01 02 ac 02.
    let packed = [0x08, 0x01, 0x12, 0x04, 0x01, 0x02, 0xac, 0x02];
    let req: ImUsersInfoReq = decode_checked(&packed).unwrap();
    assert_eq!(req.user_id_list, [1, 2, 300]);
}

#[test]
fn required_fields_are_always_written_optional_only_when_set() {
    assert_eq!(ImLogoutRsp { result_code: 0 }.encode_to_vec(), [0x08, 0x00]);
    assert_eq!(ImDeviceTokenRsp::default().encode_to_vec(), [0x08, 0x00]);

    let refused = ImMsgServRsp {
        result_code: 0,
        ..Default::default()
    };
    assert_eq!(refused.encode_to_vec(), [0x08, 0x00]);

    // An optional field set to an empty value is present on the wire.
    let res = ImLoginRes {
        server_time: 1,
        result_code: 6,
        result_string: Some(Vec::new()),
        ..Default::default()
    };
    assert_eq!(round_trip(&res), [0x08, 0x01, 0x10, 0x06, 0x1a, 0x00]);
}

#[test]
fn defaults_follow_proto2() {
    // The one explicit default.
    let create = ImGroupCreateReq::default();
    assert_eq!(create.group_type, GroupType::Tmp as i32);
    assert_eq!(create.group_type(), GroupType::Tmp);

    // Enums without an explicit default use their first declared value.
    let login = ImLoginReq::default();
    assert_eq!(login.online_status(), UserStatType::UserStatusOnline);
    assert_eq!(login.client_type(), ClientType::Windows);
    let res = ImLoginRes::default();
    assert_eq!(res.online_status, None);
    assert_eq!(res.online_status(), UserStatType::UserStatusOnline);
    assert_eq!(res.result_string(), b"");
}

#[test]
fn nested_messages_round_trip() {
    let res = ImLoginRes {
        server_time: 1_700_000_000,
        result_code: 0,
        result_string: Some("ok".into()),
        online_status: Some(UserStatType::UserStatusLeave as i32),
        user_info: Some(user_info(42)),
    };
    let bytes = round_trip(&res);
    assert_eq!(decode_checked::<ImLoginRes>(&bytes).unwrap(), res);

    let sessions = ImRecentContactSessionRsp {
        user_id: 42,
        contact_session_list: vec![
            ContactSessionInfo {
                session_id: 7,
                session_type: SessionType::Single as i32,
                session_status: SessionStatusType::SessionStatusOk as i32,
                updated_time: 100,
                latest_msg_id: 5,
                latest_msg_data: vec![0, 1, 2, 0xff],
                latest_msg_type: MsgType::SingleAudio as i32,
                latest_msg_from_user_id: 7,
            },
            ContactSessionInfo {
                session_id: 9,
                session_type: SessionType::Group as i32,
                session_status: SessionStatusType::SessionStatusDelete as i32,
                updated_time: 200,
                latest_msg_id: 6,
                latest_msg_data: Vec::new(),
                latest_msg_type: MsgType::GroupText as i32,
                latest_msg_from_user_id: 42,
            },
        ],
        attach_data: Some(vec![0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 0]),
    };
    let bytes = round_trip(&sessions);
    assert_eq!(
        decode_checked::<ImRecentContactSessionRsp>(&bytes).unwrap(),
        sessions
    );

    let msg = ImMsgData {
        from_user_id: 1,
        to_session_id: 2,
        msg_id: 0,
        create_time: 3,
        msg_type: MsgType::SingleText as i32,
        msg_data: vec![0x80, 0x00, 0xfe],
        attach_data: None,
    };
    assert_eq!(
        round_trip(&msg),
        [
            0x08, 0x01, 0x10, 0x02, 0x18, 0x00, 0x20, 0x03, 0x28, 0x01, 0x32, 0x03, 0x80, 0x00,
            0xfe
        ]
    );
}

#[test]
fn string_fields_accept_non_utf8() {
    let p2p = Imp2pCmdMsg {
        from_user_id: 1,
        to_user_id: 2,
        cmd_msg_data: vec![b'{', 0xff, 0xfe, b'}'],
    };
    let bytes = round_trip(&p2p);
    assert_eq!(
        bytes,
        [0x08, 0x01, 0x10, 0x02, 0x1a, 0x04, b'{', 0xff, 0xfe, b'}']
    );
    assert_eq!(decode_checked::<Imp2pCmdMsg>(&bytes).unwrap(), p2p);
}

fn missing(message: &'static str, field: &'static str) -> BodyError {
    BodyError::MissingRequired { message, field }
}

#[test]
fn missing_required_field_is_rejected_by_checked_decoding_only() {
    // user_name, online_status, client_type; no password.
    let body = [0x0a, 0x01, b'a', 0x18, 0x01, 0x20, 0x01];
    assert!(ImLoginReq::decode(&body[..]).is_ok());
    assert_eq!(
        decode_checked::<ImLoginReq>(&body),
        Err(missing("IM.Login.IMLoginReq", "password"))
    );
    assert_eq!(
        check::<ImLoginReq>(&body),
        Err(missing("IM.Login.IMLoginReq", "password"))
    );

    // P9: the empty device-token reply of the original is invalid.
    assert_eq!(
        decode_checked::<ImDeviceTokenRsp>(&[]),
        Err(missing("IM.Login.IMDeviceTokenRsp", "user_id"))
    );
    // Empty messages are fine with an empty body.
    assert_eq!(decode_checked::<ImHeartBeat>(&[]), Ok(ImHeartBeat {}));
}

#[test]
fn undeclared_enum_values() {
    // client_type 5 is not a ClientType: the required field counts as missing.
    let body = [0x0a, 0x01, b'a', 0x12, 0x01, b'b', 0x18, 0x01, 0x20, 0x05];
    assert_eq!(ImLoginReq::decode(&body[..]).unwrap().client_type, 5);
    assert_eq!(
        decode_checked::<ImLoginReq>(&body),
        Err(missing("IM.Login.IMLoginReq", "client_type"))
    );

    // In an optional enum field it is just an unknown field.
    let res = [0x08, 0x01, 0x10, 0x00, 0x20, 0x09];
    let decoded = decode_checked::<ImLoginRes>(&res).unwrap();
    assert_eq!(decoded.online_status(), UserStatType::UserStatusOnline);
}

#[test]
fn embedded_messages_are_checked() {
    let mut info = user_info(1);
    info.email = Vec::new();
    let mut res = ImLoginRes {
        server_time: 1,
        result_code: 0,
        user_info: Some(info),
        ..Default::default()
    };
    // prost always writes required fields, so drop `email` (field 6) by hand.
    let full = res.encode_to_vec();
    let without_email: Vec<u8> = {
        let info_bytes = res.user_info.as_ref().unwrap().encode_to_vec();
        let pos = info_bytes
            .windows(2)
            .position(|w| w == [0x32, 0x00])
            .unwrap();
        let mut trimmed = info_bytes.clone();
        trimmed.drain(pos..pos + 2);
        res.user_info = None;
        let mut body = res.encode_to_vec();
        body.push(0x2a);
        body.push(trimmed.len() as u8);
        body.extend_from_slice(&trimmed);
        body
    };
    assert!(decode_checked::<ImLoginRes>(&full).is_ok());
    assert_eq!(
        decode_checked::<ImLoginRes>(&without_email),
        Err(missing("IM.BaseDefine.UserInfo", "email"))
    );

    // Every element of a repeated embedded message is checked.
    let stat_ok = [0x08, 0x07, 0x10, 0x01];
    let stat_bad = [0x08, 0x08];
    let mut body = vec![0x08, 0x01];
    for stat in [&stat_ok[..], &stat_bad[..]] {
        body.push(0x12);
        body.push(stat.len() as u8);
        body.extend_from_slice(stat);
    }
    assert_eq!(
        decode_checked::<ImUsersStatRsp>(&body),
        Err(missing("IM.BaseDefine.UserStat", "status"))
    );
}

#[test]
fn singular_embedded_message_occurrences_merge() {
    // user_stat sent twice: {user_id} then {status}; proto2 merges them into one valid UserStat.
    let body = [0x0a, 0x02, 0x08, 0x05, 0x0a, 0x02, 0x10, 0x02];
    let notify = decode_checked::<ImUserStatNotify>(&body).unwrap();
    assert_eq!(
        notify.user_stat,
        UserStat {
            user_id: 5,
            status: UserStatType::UserStatusOffline as i32
        }
    );
    // A required embedded message is a plain field and always written.
    assert_eq!(
        ImUserStatNotify::default().encode_to_vec(),
        [0x0a, 0x04, 0x08, 0x00, 0x10, 0x01]
    );
    assert_eq!(
        decode_checked::<ImUserStatNotify>(&body[..4]),
        Err(missing("IM.BaseDefine.UserStat", "status"))
    );
    // A required embedded message that is absent.
    assert_eq!(
        decode_checked::<ImUserStatNotify>(&[]),
        Err(missing("IM.Buddy.IMUserStatNotify", "user_stat"))
    );
}

#[test]
fn unknown_fields_are_ignored() {
    let mut body = ImLogoutRsp { result_code: 3 }.encode_to_vec();
    body.extend_from_slice(&[0xf8, 0x06, 0x01]); // field 111, varint
    body.extend_from_slice(&[0x1d, 1, 2, 3, 4]); // field 3, fixed32
    body.extend_from_slice(&[0x23, 0x08, 0x01, 0x24]); // field 4, a group holding a varint
    assert_eq!(check::<ImLogoutRsp>(&body), Ok(()));
    assert_eq!(
        decode_checked::<ImLogoutRsp>(&body),
        Ok(ImLogoutRsp { result_code: 3 })
    );
}

#[test]
fn malformed_bodies() {
    // Truncated varint.
    assert_eq!(
        check::<ImLogoutRsp>(&[0x08, 0x80]),
        Err(BodyError::Malformed)
    );
    assert!(matches!(
        decode_checked::<ImLogoutRsp>(&[0x08, 0x80]),
        Err(BodyError::Decode(_))
    ));
    // Length beyond the end.
    assert_eq!(
        check::<ImLoginReq>(&[0x0a, 0x05, b'a']),
        Err(BodyError::Malformed)
    );
    // Field number 0, end-group without start, unterminated group, wire type 7.
    for body in [
        &[0x00, 0x01][..],
        &[0x0c][..],
        &[0x0b, 0x08, 0x01][..],
        &[0x0f][..],
    ] {
        assert_eq!(
            check::<ImLogoutRsp>(body),
            Err(BodyError::Malformed),
            "{body:x?}"
        );
    }
    // Deeply nested groups do not overflow the stack.
    let deep: Vec<u8> = std::iter::repeat_n(0x0b, 100_000).collect();
    assert_eq!(check::<ImLogoutRsp>(&deep), Err(BodyError::Malformed));
    // A known field with the wrong wire type is an unknown field to the original.
    assert_eq!(
        check::<ImLogoutRsp>(&[0x0d, 0, 0, 0, 0]),
        Err(missing("IM.Login.IMLogoutRsp", "result_code"))
    );
}

#[test]
fn body_errors_read_well() {
    assert_eq!(
        missing("IM.Login.IMLoginReq", "password").to_string(),
        "required field IM.Login.IMLoginReq.password is missing (or holds an undeclared enum value)"
    );
    let e = decode_checked::<ImLogoutRsp>(&[0x08]).unwrap_err();
    assert!(e.to_string().starts_with("protobuf decode failed: "), "{e}");
    assert!(std::error::Error::source(&e).is_some());
}
