//! The forward table: every client request msg_server passes on with the client's user id and
//! handle, one row each (spec §9.1). A row names the request and reply messages, where the
//! request goes and the attach it carries:
//!
//! - the request is parsed (a bad body closes the client), its `user_id` set to the logged-in
//!   user, its `attach_data` set, and sent under the client's header to the target;
//! - the reply's `attach_data` names the client connection: it is cleared and the reply
//!   relayed there under its received header.
//!
//! A row that ends with `family(Request)`, `family(Reply)` or both has that side handled by
//! the named family module (checks, fallbacks, follow-ups), which registers it in its own
//! table; the row still gives the types, the target and the attach those handlers use.

use tt_proto::Command;
use tt_proto::pb::buddy::{
    ImAllUserReq, ImAllUserRsp, ImChangeAvatarReq, ImChangeAvatarRsp, ImChangeSignInfoReq,
    ImChangeSignInfoRsp, ImDepartmentReq, ImDepartmentRsp, ImRecentContactSessionReq,
    ImRecentContactSessionRsp, ImRemoveSessionReq, ImRemoveSessionRsp, ImUsersInfoReq,
    ImUsersInfoRsp, ImUsersStatReq, ImUsersStatRsp,
};
use tt_proto::pb::file::{ImFileHasOfflineReq, ImFileHasOfflineRsp};
use tt_proto::pb::group::{
    ImGroupChangeMemberReq, ImGroupChangeMemberRsp, ImGroupCreateReq, ImGroupCreateRsp,
    ImGroupInfoListReq, ImGroupInfoListRsp, ImGroupShieldReq, ImGroupShieldRsp,
    ImNormalGroupListReq, ImNormalGroupListRsp,
};
use tt_proto::pb::login::{
    ImPushShieldReq, ImPushShieldRsp, ImQueryPushShieldReq, ImQueryPushShieldRsp,
};
use tt_proto::pb::message::{
    ImGetLatestMsgIdReq, ImGetLatestMsgIdRsp, ImGetMsgByIdReq, ImGetMsgByIdRsp, ImGetMsgListReq,
    ImGetMsgListRsp, ImUnreadMsgCntReq, ImUnreadMsgCntRsp,
};

use crate::state::{
    ClientFn, DB_GENERAL, DB_LOGIN, Forwarded, MASTER_ROUTE, ServerFn, Target, forward_request,
    route_reply,
};
use crate::wire::{Attach, Routed};

/// A side of a forward that a family module handles itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Request,
    Reply,
}

/// One row of the table.
pub struct Forward {
    pub request: u16,
    pub reply: u16,
    pub target: Target,
    /// The plain client side ([`forward_request`]).
    pub forward: ClientFn,
    /// The plain reply side ([`route_reply`]).
    pub route_back: ServerFn,
    /// The family module that handles a side itself, and which.
    pub custom: Option<(&'static str, &'static [Side])>,
}

impl Forward {
    /// True if the family module handles `side`.
    pub fn is_custom(&self, side: Side) -> bool {
        self.custom.is_some_and(|(_, sides)| sides.contains(&side))
    }
}

macro_rules! routed {
    ($t:ident) => {
        impl Routed for $t {
            fn user_id(&self) -> u32 {
                self.user_id
            }
            fn set_user_id(&mut self, id: u32) {
                self.user_id = id;
            }
            fn attach_mut(&mut self) -> &mut Option<Vec<u8>> {
                &mut self.attach_data
            }
        }
    };
}

macro_rules! forwards {
    ($($req:ident => $rsp:ident, $to:ident, $attach:ident $(, $family:ident($($side:ident),+))?;)*) => {
        $(
            routed!($req);
            routed!($rsp);
            impl Forwarded for $req {
                type Reply = $rsp;
                const TARGET: Target = $to;
                const ATTACH: Attach = Attach::$attach;
            }
        )*

        pub const FORWARDS: &[Forward] = &[$(Forward {
            request: $req::COMMAND_ID,
            reply: $rsp::COMMAND_ID,
            target: $to,
            forward: forward_request::<$req>,
            route_back: route_reply::<$rsp>,
            custom: forwards!(@custom $($family($($side),+))?),
        }),*];
    };
    (@custom) => { None };
    (@custom $family:ident($($side:ident),+)) => {
        Some((stringify!($family), &[$(Side::$side),+]))
    };
}

forwards! {
    // request                 => reply,                     to,           attach
    ImPushShieldReq            => ImPushShieldRsp,           DB_GENERAL,   Long;
    ImQueryPushShieldReq       => ImQueryPushShieldRsp,      DB_GENERAL,   Long;
    ImUnreadMsgCntReq          => ImUnreadMsgCntRsp,         DB_LOGIN,     Short;
    ImGetMsgListReq            => ImGetMsgListRsp,           DB_LOGIN,     Short;
    ImGetLatestMsgIdReq        => ImGetLatestMsgIdRsp,       DB_GENERAL,   Short;
    ImGetMsgByIdReq            => ImGetMsgByIdRsp,           DB_LOGIN,     Short;
    ImRecentContactSessionReq  => ImRecentContactSessionRsp, DB_LOGIN,     Short;
    ImUsersInfoReq             => ImUsersInfoRsp,            DB_LOGIN,     Short;
    ImAllUserReq               => ImAllUserRsp,              DB_GENERAL,   Short;
    ImDepartmentReq            => ImDepartmentRsp,           DB_GENERAL,   Short;
    ImRemoveSessionReq         => ImRemoveSessionRsp,        DB_GENERAL,   Short, buddy(Request);
    ImUsersStatReq             => ImUsersStatRsp,            MASTER_ROUTE, Long,  buddy(Reply);
    ImChangeAvatarReq          => ImChangeAvatarRsp,         DB_GENERAL,   None,  buddy(Reply);
    ImChangeSignInfoReq        => ImChangeSignInfoRsp,       DB_GENERAL,   Long,  buddy(Reply);
    ImNormalGroupListReq       => ImNormalGroupListRsp,      DB_GENERAL,   Short, group(Request);
    ImGroupInfoListReq         => ImGroupInfoListRsp,        DB_GENERAL,   Long,  group(Request, Reply);
    ImGroupCreateReq           => ImGroupCreateRsp,          DB_GENERAL,   Short, group(Request);
    ImGroupChangeMemberReq     => ImGroupChangeMemberRsp,    DB_GENERAL,   Short, group(Request, Reply);
    ImGroupShieldReq           => ImGroupShieldRsp,          DB_GENERAL,   Short, group(Request);
    ImFileHasOfflineReq        => ImFileHasOfflineRsp,       DB_GENERAL,   Short, file(Request, Reply);
}
