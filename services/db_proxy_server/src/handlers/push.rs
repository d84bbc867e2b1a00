//! Push settings (storage-file.md §5.2, §5.3, §5.16, §5.17; the original's `Login.cpp` and
//! the device tokens of `MessageCounter.cpp`): the do-not-disturb flag (push shield), set and
//! queried by its user, and the device tokens msg_server looks up to push a message.

use tt_proto::pb::base_define::{ClientType, UserTokenInfo};
use tt_proto::pb::login::{
    ImDeviceTokenReq, ImDeviceTokenRsp, ImPushShieldReq, ImPushShieldRsp, ImQueryPushShieldReq,
    ImQueryPushShieldRsp,
};
use tt_proto::pb::server::{ImGetDeviceTokenReq, ImGetDeviceTokenRsp};
use tt_proto::values::{PUSH_TYPE_NORMAL, RESULT_FAILED, RESULT_OK};

use super::Shared;
use crate::model::user::Change;
use crate::model::{token, unread, user};
use crate::store::Stores;

/// Longest device token stored (APNs tokens are 64 hex digits, FCM ones about 160 bytes); it
/// also names a Redis key.
const MAX_DEVICE_TOKEN: usize = 512;

/// Sets the user's push shield (§5.2): result 0 if the user exists; the status is echoed on
/// success. A status other than 0 or 1 is refused (result 1).
pub fn set_push_shield(
    st: &mut Stores,
    sh: &Shared,
    req: ImPushShieldReq,
) -> Option<ImPushShieldRsp> {
    let (user, status) = (req.user_id, req.shield_status);
    let ok = user::apply(st, &sh.last_update, user, Change::PushShield(status));
    Some(ImPushShieldRsp {
        user_id: user,
        result_code: if ok { RESULT_OK } else { RESULT_FAILED },
        shield_status: ok.then_some(status),
        attach_data: req.attach_data,
    })
}

/// The user's push shield (§5.3): result 1 (and no status) for an unknown user.
pub fn query_push_shield(
    st: &mut Stores,
    _sh: &Shared,
    req: ImQueryPushShieldReq,
) -> Option<ImQueryPushShieldRsp> {
    let status = user::push_shield(&mut st.slave, req.user_id);
    Some(ImQueryPushShieldRsp {
        user_id: req.user_id,
        result_code: if status.is_some() {
            RESULT_OK
        } else {
            RESULT_FAILED
        },
        shield_status: status,
        attach_data: req.attach_data,
    })
}

/// Stores the user's device token (§5.16). The reply carries its one required field,
/// `user_id`, and is sent also when nothing could be stored.
pub fn set_device_token(
    st: &mut Stores,
    _sh: &Shared,
    req: ImDeviceTokenReq,
) -> Option<ImDeviceTokenRsp> {
    let token = &req.device_token;
    if token.len() > MAX_DEVICE_TOKEN {
        log::warn!(
            "device token of user {}: {} bytes, over {MAX_DEVICE_TOKEN}; not stored",
            req.user_id,
            token.len()
        );
        return Some(ImDeviceTokenRsp {
            user_id: req.user_id,
            attach_data: req.attach_data,
        });
    }
    let mut value = match req.client_type.map(ClientType::try_from) {
        Some(Ok(ClientType::Ios)) => b"ios:".to_vec(),
        Some(Ok(ClientType::Android)) => b"android:".to_vec(),
        _ => Vec::new(),
    };
    value.extend_from_slice(token);
    let _ = token::set(st, req.user_id, &value, token);
    Some(ImDeviceTokenRsp {
        user_id: req.user_id,
        attach_data: req.attach_data,
    })
}

/// The push targets among the users (§5.17): their mobile tokens and unread counts. A user
/// whose push shield is on gets no push at any hour, on iOS and Android (the original leaves
/// out iOS tokens between 22:00 and 07:59 only).
pub fn get_device_tokens(
    st: &mut Stores,
    _sh: &Shared,
    req: ImGetDeviceTokenReq,
) -> Option<ImGetDeviceTokenRsp> {
    let found = token::get_many(st, &req.user_id);
    let owners: Vec<u32> = found.iter().map(|(user, _)| *user).collect();
    let shielded = if owners.is_empty() {
        Default::default()
    } else {
        user::push_shielded(&mut st.slave, &owners)
    };
    let mut list = Vec::new();
    for (user, value) in found {
        let Some(i) = value.iter().position(|&b| b == b':') else {
            continue;
        };
        let (kind, token) = (&value[..i], &value[i + 1..]);
        let user_type = match kind {
            b"ios" => ClientType::Ios,
            b"android" => ClientType::Android,
            _ => continue,
        };
        if shielded.contains(&user) {
            continue;
        }
        list.push(UserTokenInfo {
            user_id: user,
            user_type: user_type as i32,
            token: token.to_vec(),
            push_count: unread::total(st, user),
            push_type: PUSH_TYPE_NORMAL,
        });
    }
    Some(ImGetDeviceTokenRsp {
        user_token_info: list,
        attach_data: req.attach_data,
    })
}
