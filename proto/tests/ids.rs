//! The `ids` constants agree with the enums generated from IM.BaseDefine.proto.

use tt_proto::Command;
use tt_proto::ids::{cid, cid_name, service_of, sid};
use tt_proto::pb::base_define::{
    BuddyListCmdId, FileCmdId, GroupCmdId, LoginCmdId, MessageCmdId, OtherCmdId, ServiceId,
    SwitchServiceCmdId,
};
use tt_proto::pb::{buddy, login, message, other, server, switch_service};

/// The proto name of `value` in whichever *CmdID enum declares it.
fn enum_name(value: u16) -> Option<&'static str> {
    let v = i32::from(value);
    LoginCmdId::try_from(v)
        .map(|e| e.as_str_name())
        .or_else(|_| BuddyListCmdId::try_from(v).map(|e| e.as_str_name()))
        .or_else(|_| MessageCmdId::try_from(v).map(|e| e.as_str_name()))
        .or_else(|_| GroupCmdId::try_from(v).map(|e| e.as_str_name()))
        .or_else(|_| FileCmdId::try_from(v).map(|e| e.as_str_name()))
        .or_else(|_| SwitchServiceCmdId::try_from(v).map(|e| e.as_str_name()))
        .or_else(|_| OtherCmdId::try_from(v).map(|e| e.as_str_name()))
        .ok()
}

#[test]
fn command_ids_match_the_proto_enums_exactly() {
    let mut from_enums = 0;
    for value in 0..=u16::MAX {
        let ours = cid_name(value);
        assert_eq!(ours, enum_name(value), "{value:#06x}");
        assert_eq!(ours.is_some(), cid::ALL.contains(&value), "{value:#06x}");
        if ours.is_some() {
            from_enums += 1;
        }
    }
    // 15 + 21 + 14 + 11 + 12 + 1 + 21 values in the seven *CmdID enums.
    assert_eq!(from_enums, 95);
    assert_eq!(cid::ALL.len(), 95);
    assert!(cid::ALL.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn service_ids_match_the_proto_enum() {
    for value in 0..=u16::MAX {
        let proto = ServiceId::try_from(i32::from(value))
            .ok()
            .map(|e| e.as_str_name());
        assert_eq!(sid::name(value), proto, "{value:#06x}");
    }
    assert_eq!(sid::ALL.len(), 8);
    assert_eq!(sid::SID_LOGIN, 0x0001);
    assert_eq!(sid::SID_INTERNAL, 0x0008);
}

#[test]
fn service_is_the_high_byte_of_every_command() {
    for &c in cid::ALL {
        let s = service_of(c);
        assert!((sid::SID_LOGIN..=sid::SID_OTHER).contains(&s), "{c:#06x}");
        let service = sid::name(s).unwrap();
        let expected_prefix = match s {
            sid::SID_LOGIN => "CID_LOGIN_",
            sid::SID_BUDDY_LIST => "CID_BUDDY_LIST_",
            sid::SID_MSG => "CID_MSG_",
            sid::SID_GROUP => "CID_GROUP_",
            sid::SID_FILE => "CID_FILE_",
            sid::SID_SWITCH_SERVICE => "CID_SWITCH_",
            _ => "CID_OTHER_",
        };
        assert!(
            cid_name(c).unwrap().starts_with(expected_prefix),
            "{c:#06x} in {service}"
        );
    }
    assert_eq!(
        service_of(cid::CID_OTHER_FILE_SERVER_IP_RSP),
        sid::SID_OTHER
    );
}

#[test]
fn spot_checks() {
    assert_eq!(cid::CID_LOGIN_REQ_MSGSERVER, 0x0101);
    assert_eq!(cid::CID_BUDDY_LIST_SIGN_INFO_CHANGED_NOTIFY, 0x0215);
    assert_eq!(cid::CID_MSG_GET_BY_MSG_ID_RES, 0x030e);
    assert_eq!(cid::CID_OTHER_SERVER_KICK_USER, 0x070d);
    assert_eq!(cid::CID_OTHER_FILE_TRANSFER_REQ, 0x0731);
    assert_eq!(cid::CID_OTHER_FILE_SERVER_IP_RSP, 0x0734);
    assert_eq!(cid_name(0x070c), None);
    assert_eq!(cid_name(0x0103), Some("CID_LOGIN_REQ_USERLOGIN"));
    assert_eq!(sid::name(0), None);
}

#[test]
fn message_types_know_their_command() {
    assert_eq!(login::ImLoginReq::COMMAND_ID, cid::CID_LOGIN_REQ_USERLOGIN);
    assert_eq!(login::ImLoginReq::SERVICE_ID, sid::SID_LOGIN);
    assert_eq!(buddy::ImpcLoginStatusNotify::COMMAND_ID, 0x020e);
    assert_eq!(message::ImMsgData::COMMAND_ID, cid::CID_MSG_DATA);
    assert_eq!(other::ImHeartBeat::COMMAND_ID, cid::CID_OTHER_HEARTBEAT);
    assert_eq!(server::ImStopReceivePacket::COMMAND_ID, 0x0702);
    assert_eq!(server::ImStopReceivePacket::SERVICE_ID, sid::SID_OTHER);
    assert_eq!(server::ImFileServerIpRsp::COMMAND_ID, 0x0734);
    assert_eq!(
        switch_service::Imp2pCmdMsg::SERVICE_ID,
        sid::SID_SWITCH_SERVICE
    );
}
