//! The request handlers (storage-file.md §1.6, §5), run on the worker threads, one module per
//! command family as the original's `business/` files:
//!
//! | module      | original                                   | commands                       |
//! |-------------|--------------------------------------------|--------------------------------|
//! | [`login`]   | `Login.cpp`                                | validate                       |
//! | [`push`]    | `Login.cpp`, device tokens of `MessageCounter.cpp` | push shield set / query, set / get device tokens |
//! | [`buddy`]   | `RecentSession.cpp`, `UserAction.cpp`, `DepartAction.cpp` | recent sessions, remove session, users, changed users, departments, sign info, avatar |
//! | [`message`] | `MessageContent.cpp`, `MessageCounter.cpp` | send, read ack, unread counts, history, by id, latest id |
//! | [`group`]   | `GroupAction.cpp`                          | normal list, info, create, change members, set / get push shield |
//! | [`file`]    | `FileAction.cpp`                           | has offline files, add / delete an offline file |
//!
//! [`ROUTES`] is the one table from request command id to handler: the I/O thread asks it
//! whether a command is handled ([`is_handled`]) before queueing, a worker runs the handler it
//! names ([`handle`]).
//!
//! A handler takes the decoded request and returns its reply message (or `None` where the
//! original sends none: preconditions not met); the reply goes out under a header of the reply
//! type's command id carrying the request's seq. A body that does not parse gets no reply
//! (validate excepted). A storage failure is logged where it happens and gives the reply the
//! original gives when its query fails (mostly an empty list). Every SQL statement and Redis
//! command is in [`crate::model`].

mod buddy;
mod file;
mod group;
mod login;
mod message;
mod push;

use std::sync::Mutex;
use std::sync::atomic::AtomicU32;

use tt_proto::Command;
use tt_proto::pb::buddy::{
    ImAllUserReq, ImChangeAvatarReq, ImChangeSignInfoReq, ImDepartmentReq,
    ImRecentContactSessionReq, ImRemoveSessionReq, ImUsersInfoReq,
};
use tt_proto::pb::file::{ImFileAddOfflineReq, ImFileDelOfflineReq, ImFileHasOfflineReq};
use tt_proto::pb::group::{
    ImGroupChangeMemberReq, ImGroupCreateReq, ImGroupInfoListReq, ImGroupShieldReq,
    ImNormalGroupListReq,
};
use tt_proto::pb::login::{ImDeviceTokenReq, ImPushShieldReq, ImQueryPushShieldReq};
use tt_proto::pb::message::{
    ImGetLatestMsgIdReq, ImGetMsgByIdReq, ImGetMsgListReq, ImMsgData, ImMsgDataReadAck,
    ImUnreadMsgCntReq,
};
use tt_proto::pb::server::{ImGetDeviceTokenReq, ImGroupGetShieldReq, ImValidateReq};
use tt_proto::pdu::{Header, encode_with_header_into};

pub use login::LoginFailures;

use crate::id_cache::IdCache;
use crate::msfs::Msfs;
use crate::store::Stores;

/// State shared by all workers.
pub struct Shared {
    /// The original's `CSyncCenter::lastUpdate` (§4.11): gates the changed-users query.
    pub last_update: AtomicU32,
    /// `[语音]` encrypted with `aesKey` (§4.10): shown instead of audio content in lists.
    pub audio_placeholder: Vec<u8>,
    pub login_failures: Mutex<LoginFailures>,
    /// The msfs client of audio uploads and downloads.
    pub msfs: Msfs,
    /// Relation and session ids of the message store.
    pub ids: IdCache,
}

/// What a handler answers.
pub trait Reply {
    /// The encoded reply PDU to `request`, if there is one.
    fn encode(self, request: &Header) -> Option<Vec<u8>>;
}

/// A reply message, or `None` for no reply.
impl<M: Command> Reply for Option<M> {
    fn encode(self, request: &Header) -> Option<Vec<u8>> {
        let msg = self?;
        let mut out = Vec::with_capacity(16 + msg.encoded_len());
        encode_with_header_into(&mut out, &request.reply(M::COMMAND_ID), &msg);
        Some(out)
    }
}

/// A command that is never answered (read ack, offline file add / delete).
impl Reply for () {
    fn encode(self, _request: &Header) -> Option<Vec<u8>> {
        None
    }
}

/// Parses with the original's proto2 rules; a failure is logged.
fn decode<M: Command>(body: &[u8]) -> Option<M> {
    match tt_proto::required::decode_checked::<M>(body) {
        Ok(m) => Some(m),
        Err(e) => {
            log::warn!("{}: parse failed: {e}", M::NAME);
            None
        }
    }
}

/// Decodes a request body, runs its handler, encodes the reply.
type Run = fn(&mut Stores, &Shared, &Header, &[u8]) -> Option<Vec<u8>>;

/// One handled command.
pub struct Route {
    /// The request's command id (its message type's).
    pub command_id: u16,
    run: Run,
}

/// Builds [`ROUTES`] from `request type => handler` lines; `unparsable` names what answers a
/// body that does not parse (by default nothing does).
macro_rules! routes {
    ($($request:ty => $handler:path $(, unparsable: $bad:path)?;)*) => {
        /// Every handled command, keyed by its request message type.
        pub const ROUTES: &[Route] = &[$(Route {
            command_id: <$request as Command>::COMMAND_ID,
            run: |st, sh, header, body| match decode::<$request>(body) {
                Some(req) => $handler(st, sh, req).encode(header),
                None => routes!(@unparsable header $($bad)?),
            },
        }),*];
    };
    (@unparsable $header:ident) => {
        None
    };
    (@unparsable $header:ident $bad:path) => {
        $bad().encode($header)
    };
}

routes! {
    ImValidateReq => login::validate, unparsable: login::unparsable;
    ImDeviceTokenReq => push::set_device_token;
    ImGetDeviceTokenReq => push::get_device_tokens;
    ImPushShieldReq => push::set_push_shield;
    ImQueryPushShieldReq => push::query_push_shield;
    ImRecentContactSessionReq => buddy::recent_sessions;
    ImRemoveSessionReq => buddy::remove_session;
    ImUsersInfoReq => buddy::users_info;
    ImAllUserReq => buddy::changed_users;
    ImDepartmentReq => buddy::departments;
    ImChangeSignInfoReq => buddy::change_sign_info;
    ImChangeAvatarReq => buddy::change_avatar;
    ImMsgData => message::send;
    ImMsgDataReadAck => message::read_ack;
    ImUnreadMsgCntReq => message::unread_counts;
    ImGetMsgListReq => message::history;
    ImGetMsgByIdReq => message::by_ids;
    ImGetLatestMsgIdReq => message::latest_msg_id;
    ImNormalGroupListReq => group::normal_list;
    ImGroupInfoListReq => group::info;
    ImGroupCreateReq => group::create;
    ImGroupChangeMemberReq => group::change_members;
    ImGroupShieldReq => group::set_shield;
    ImGroupGetShieldReq => group::get_shield;
    ImFileHasOfflineReq => file::has_offline;
    ImFileAddOfflineReq => file::add_offline;
    ImFileDelOfflineReq => file::del_offline;
}

fn route(command_id: u16) -> Option<&'static Route> {
    ROUTES.iter().find(|r| r.command_id == command_id)
}

/// Whether the command has a handler here (checked on the I/O thread before queueing).
pub fn is_handled(command_id: u16) -> bool {
    route(command_id).is_some()
}

/// Runs the handler of `header.command_id`; the encoded reply PDU, if any.
pub fn handle(st: &mut Stores, sh: &Shared, header: &Header, body: &[u8]) -> Option<Vec<u8>> {
    match route(header.command_id) {
        Some(r) => (r.run)(st, sh, header, body),
        None => {
            log::warn!("no handler for packet type 0x{:04x}", header.command_id);
            None
        }
    }
}

/// Whether requests of the command are stored together by [`handle_batch`] (messages).
pub fn is_batched(command_id: u16) -> bool {
    command_id == <ImMsgData as Command>::COMMAND_ID
}

/// Runs requests of a batched command ([`is_batched`]) taken from the queue together; the
/// encoded reply PDU of each, in order.
pub fn handle_batch(
    st: &mut Stores,
    sh: &Shared,
    requests: &[(&Header, &[u8])],
) -> Vec<Option<Vec<u8>>> {
    let bodies: Vec<&[u8]> = requests.iter().map(|&(_, body)| body).collect();
    message::send_batch(st, sh, &bodies)
        .into_iter()
        .zip(requests)
        .map(|(reply, &(header, _))| reply.encode(header))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_route_per_command() {
        for (i, r) in ROUTES.iter().enumerate() {
            assert!(
                ROUTES[i + 1..].iter().all(|o| o.command_id != r.command_id),
                "0x{:04x} routed twice",
                r.command_id
            );
            assert!(is_handled(r.command_id));
        }
        assert!(!is_handled(tt_proto::ids::cid::CID_OTHER_HEARTBEAT));
    }
}
