//! Push settings: the device token of a mobile client and the user's do-not-disturb switch
//! (push shield). A group's push shield is in [`super::groups`].

use tt_proto::pb::login;

use super::Client;
use crate::Result;

/// The reply to [`Client::set_push_shield`] and [`Client::query_push_shield`]
/// (`IMPushShieldRsp`, `IMQueryPushShieldRsp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PushShield {
    /// 0 success, 1 failure (no such user).
    pub result_code: u32,
    /// 1 do-not-disturb on, 0 off (present on success).
    pub shield_status: Option<u32>,
}

impl Client {
    /// Turns the do-not-disturb switch on or off (`CID_LOGIN_REQ_PUSH_SHIELD`).
    pub fn set_push_shield(&mut self, on: bool) -> Result<PushShield> {
        let req = login::ImPushShieldReq {
            user_id: self.user_id,
            shield_status: u32::from(on),
            attach_data: None,
        };
        let (_, rsp): (_, login::ImPushShieldRsp) = self.request(&req, "push-shield reply")?;
        Ok(PushShield {
            result_code: rsp.result_code,
            shield_status: rsp.shield_status,
        })
    }

    /// The do-not-disturb switch as stored (`CID_LOGIN_REQ_QUERY_PUSH_SHIELD`).
    pub fn query_push_shield(&mut self) -> Result<PushShield> {
        let req = login::ImQueryPushShieldReq {
            user_id: self.user_id,
            attach_data: None,
        };
        let (_, rsp): (_, login::ImQueryPushShieldRsp) =
            self.request(&req, "push-shield query reply")?;
        Ok(PushShield {
            result_code: rsp.result_code,
            shield_status: rsp.shield_status,
        })
    }

    /// Registers this device's push token (`CID_LOGIN_REQ_DEVICETOKEN`; an empty token
    /// unregisters). Only mobile clients get an answer: msg_server ignores the request from a
    /// PC client, and the call then fails with [`crate::Error::Timeout`].
    pub fn set_device_token(&mut self, token: &str) -> Result<()> {
        let req = login::ImDeviceTokenReq {
            user_id: self.user_id,
            device_token: token.as_bytes().to_vec(),
            client_type: None,
            attach_data: None,
        };
        let (_, _): (_, login::ImDeviceTokenRsp) = self.request(&req, "device-token reply")?;
        Ok(())
    }
}
