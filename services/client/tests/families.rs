//! The group, buddy-list and push requests of the client against the scripted fake msg_server:
//! what each puts on the wire, what it makes of the reply, and the notifications of these
//! families as events.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{FakeMsgServer, members_changed, serve_user};
use tt_client::tt_proto::pb::{base_define, buddy, group, login};
use tt_client::{
    Client, ClientType, Event, GroupModifyType, GroupType, GroupVersionInfo, PushShield, Session,
    SessionType, UserStatType,
};

const WAIT: Duration = Duration::from_secs(20);

fn logged_in(addr: SocketAddr, client_type: ClientType) -> Client {
    let mut c = Client::connect_to(addr).expect("connect");
    c.login(
        "user41",
        "123456",
        client_type,
        UserStatType::UserStatusOnline,
    )
    .expect("login");
    c
}

#[test]
fn group_requests_and_the_member_change_notify() {
    let fake = serve_user(41, "user41", |conn| {
        conn.answer(
            |_, _: group::ImNormalGroupListReq| group::ImNormalGroupListRsp {
                user_id: 41,
                group_version_list: vec![GroupVersionInfo {
                    group_id: 3,
                    version: 7,
                }],
                attach_data: None,
            },
        );
        // Info by id asks with version 0, so every group comes back.
        conn.answer(|_, req: group::ImGroupInfoListReq| {
            let asked: Vec<(u32, u32)> = req
                .group_version_list
                .iter()
                .map(|v| (v.group_id, v.version))
                .collect();
            assert_eq!(asked, vec![(3, 0), (4, 0)]);
            group::ImGroupInfoListRsp {
                user_id: 41,
                group_info_list: vec![base_define::GroupInfo {
                    group_id: 3,
                    version: 7,
                    group_name: "team 3".into(),
                    group_avatar: Vec::new(),
                    group_creator_id: 42,
                    group_type: GroupType::Normal as i32,
                    shield_status: 0,
                    group_member_list: vec![41, 42],
                }],
                attach_data: None,
            }
        });
        // Create: a temporary group; a member-change notify arrives before the reply.
        conn.answer(|conn, req: group::ImGroupCreateReq| {
            assert_eq!(req.group_type, GroupType::Tmp as i32);
            assert_eq!(req.group_name, "今天 lunch".as_bytes());
            assert_eq!(req.member_id_list, vec![43, 41, 42]);
            conn.notify(&group::ImGroupChangeMemberNotify {
                user_id: 42,
                change_type: GroupModifyType::Add as i32,
                group_id: 3,
                cur_user_id_list: vec![41, 42, 44],
                chg_user_id_list: vec![44],
            });
            group::ImGroupCreateRsp {
                user_id: 41,
                result_code: 0,
                group_id: Some(9),
                group_name: req.group_name,
                user_id_list: vec![41, 42, 43],
                attach_data: None,
            }
        });
        // Remove members, refused; then add members.
        conn.answer(|_, req: group::ImGroupChangeMemberReq| {
            assert_eq!(
                (req.change_type, req.group_id, req.member_id_list),
                (GroupModifyType::Del as i32, 9, vec![42])
            );
            members_changed(41, 9, req.change_type, 1, vec![], vec![])
        });
        conn.answer(|_, req: group::ImGroupChangeMemberReq| {
            assert_eq!(req.change_type, GroupModifyType::Add as i32);
            members_changed(41, 9, req.change_type, 0, vec![41, 42, 43, 45], vec![45])
        });
        conn.answer(|_, req: group::ImGroupShieldReq| {
            assert_eq!((req.group_id, req.shield_status), (9, 1));
            group::ImGroupShieldRsp {
                user_id: 41,
                group_id: 9,
                result_code: 0,
                attach_data: None,
            }
        });
    });

    let mut c = logged_in(fake.addr, ClientType::Windows);
    let list = c.normal_groups().expect("normal groups");
    assert_eq!(
        list.iter()
            .map(|g| (g.group_id, g.version))
            .collect::<Vec<_>>(),
        vec![(3, 7)]
    );
    let info = c.group_info(&[3, 4]).expect("group info");
    assert_eq!(info.len(), 1);
    assert_eq!(info[0].group_name, b"team 3");
    assert_eq!(info[0].group_member_list, vec![41, 42]);

    let created = c
        .create_group("今天 lunch", "", &[43, 41, 42])
        .expect("create");
    assert_eq!(created.result_code, 0);
    assert_eq!(created.group_id, Some(9));
    assert_eq!(created.members, vec![41, 42, 43]);
    assert_eq!(created.group_name, "今天 lunch".as_bytes());

    let refused = c.remove_group_members(9, &[42]).expect("remove");
    assert_eq!((refused.result_code, refused.group_id), (1, 9));
    assert!(refused.current.is_empty() && refused.changed.is_empty());
    let added = c.add_group_members(9, &[45]).expect("add");
    assert_eq!(added.result_code, 0);
    assert_eq!(added.change_type, GroupModifyType::Add as i32);
    assert_eq!(
        (added.current, added.changed),
        (vec![41, 42, 43, 45], vec![45])
    );
    assert_eq!(c.shield_group(9, true).expect("shield"), 0);

    // The notify that came while create waited is an event.
    assert_eq!(
        c.next_event(WAIT).expect("event"),
        Some(Event::GroupMembersChanged {
            user_id: 42,
            group_id: 3,
            change_type: GroupModifyType::Add as i32,
            current: vec![41, 42, 44],
            changed: vec![44],
        })
    );
    fake.finish();
}

#[test]
fn a_normal_group_can_be_asked_for_and_goes_unanswered() {
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let fake = serve_user(41, "user41", move |conn| {
        let p = conn.expect_request(tt_client::tt_proto::ids::cid::CID_GROUP_CREATE_REQUEST);
        let req: group::ImGroupCreateReq = p.decode_checked().expect("create req");
        assert_eq!(req.group_type, GroupType::Normal as i32);
        // msg_server drops it: no answer.
        let _ = done_rx.recv_timeout(common::GUARD);
    });
    let mut c = logged_in(fake.addr, ClientType::Windows);
    c.set_timeout(Duration::from_millis(200));
    let e = c
        .create_group_of_type(GroupType::Normal, "n", "", &[41])
        .expect_err("no answer");
    assert!(e.to_string().contains("CID_GROUP_CREATE_RESPONSE"), "{e}");
    done_tx.send(()).expect("done");
    fake.finish();
}

#[test]
fn buddy_list_changes_and_their_notifications() {
    let fake = serve_user(41, "user41", |conn| {
        conn.answer(|conn, req: buddy::ImChangeSignInfoReq| {
            assert_eq!(req.sign_info, "在 work".as_bytes());
            // The notify (from route_server) may overtake the reply.
            conn.notify(&buddy::ImSignInfoChangedNotify {
                changed_user_id: 41,
                sign_info: req.sign_info.clone(),
            });
            buddy::ImChangeSignInfoRsp {
                user_id: 41,
                result_code: 0,
                sign_info: Some(req.sign_info),
                attach_data: None,
            }
        });
        conn.answer(|conn, req: buddy::ImChangeAvatarReq| {
            assert_eq!(req.avatar_url, b"http://a/1.png");
            conn.notify(&buddy::ImAvatarChangedNotify {
                changed_user_id: 42,
                avatar_url: b"http://a/42.png".to_vec(),
            });
            buddy::ImChangeAvatarRsp {
                user_id: 41,
                result_code: 0,
                attach_data: None,
            }
        });
        conn.answer(|conn, req: buddy::ImRemoveSessionReq| {
            assert_eq!(
                (req.session_type, req.session_id),
                (SessionType::Group as i32, 9)
            );
            conn.notify(&buddy::ImRemoveSessionNotify {
                user_id: 41,
                session_type: SessionType::Single as i32,
                session_id: 42,
            });
            buddy::ImRemoveSessionRsp {
                user_id: 41,
                result_code: 1,
                session_type: SessionType::Group as i32,
                session_id: 9,
                attach_data: None,
            }
        });
    });

    let mut c = logged_in(fake.addr, ClientType::Windows);
    let sign = c.change_sign_info("在 work").expect("sign");
    assert_eq!(sign.result_code, 0);
    assert_eq!(sign.sign_info.as_deref(), Some("在 work".as_bytes()));
    assert_eq!(c.change_avatar("http://a/1.png").expect("avatar"), 0);
    let removed = c.remove_session(Session::group(9)).expect("remove");
    assert_eq!(
        (removed.result_code, removed.session),
        (1, Session::group(9))
    );

    let events: Vec<Event> = (0..3)
        .map(|_| c.next_event(WAIT).expect("event").expect("an event"))
        .collect();
    assert_eq!(
        events,
        vec![
            Event::SignInfoChanged {
                user_id: 41,
                sign_info: "在 work".into()
            },
            Event::AvatarChanged {
                user_id: 42,
                avatar_url: "http://a/42.png".into()
            },
            Event::SessionRemoved {
                user_id: 41,
                session_id: 42,
                session_type: SessionType::Single as i32
            },
        ]
    );
    fake.finish();
}

#[test]
fn push_shield_and_device_token() {
    let fake = serve_user(41, "user41", |conn| {
        conn.answer(|_, req: login::ImPushShieldReq| {
            assert_eq!(req.shield_status, 1);
            login::ImPushShieldRsp {
                user_id: 41,
                result_code: 0,
                shield_status: Some(1),
                attach_data: None,
            }
        });
        conn.answer(
            |_, _: login::ImQueryPushShieldReq| login::ImQueryPushShieldRsp {
                user_id: 41,
                result_code: 1,
                shield_status: None,
                attach_data: None,
            },
        );
        conn.answer(|_, req: login::ImDeviceTokenReq| {
            assert_eq!(req.device_token, b"tok-41");
            login::ImDeviceTokenRsp {
                user_id: 41,
                attach_data: None,
            }
        });
    });
    let mut c = logged_in(fake.addr, ClientType::Ios);
    assert_eq!(
        c.set_push_shield(true).expect("set"),
        PushShield {
            result_code: 0,
            shield_status: Some(1)
        }
    );
    assert_eq!(
        c.query_push_shield().expect("query"),
        PushShield {
            result_code: 1,
            shield_status: None
        }
    );
    c.set_device_token("tok-41").expect("token");
    fake.finish();
}
