//! What the command handlers work on: the server's state (clients, users, links, limits, group
//! messages waiting for their members, push lookups waiting for their answers), the shape of
//! a command family's table, and what several families do alike: forward a client's request,
//! route a reply back to its client, send to every connection of a user, ask db_proxy for a
//! group's members, take the steps of an offline push.

use netlib::{ConnId, Net};
use prost::Message;
use tt_proto::Command;
use tt_proto::attach::{ATTACH_TYPE_HANDLE_AND_PDU, ATTACH_TYPE_PDU_FOR_PUSH, PduAttachData};
use tt_proto::crypto::MsgCipher;
use tt_proto::pb::base_define::{GroupVersionInfo, TransferFileType, UserStat};
use tt_proto::pb::buddy::ImUsersStatReq;
use tt_proto::pb::file::ImFileRsp;
use tt_proto::pb::group::ImGroupInfoListReq;
use tt_proto::pb::message::ImMsgData;
use tt_proto::pb::server::{ImFileTransferReq, ImPushToUserReq};
use tt_proto::pdu::Header;
use tt_proto::required::decode_checked;
use tt_proto::values::RESULT_FAILED;

use crate::alert::{self, Lookups};
use crate::clients::{Clients, Request};
use crate::group_queue::{GroupQueues, Pending, Pushed};
use crate::links::Links;
use crate::links::db::Pool;
use crate::settings::Settings;
use crate::users::ImUserManager;
use crate::wire::{Attach, Received, Routed, handle_of};

/// The per-client limits of the conf file.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// `MsgRateLimit`: messages a second.
    pub msg_rate: u32,
    /// `RelayRateLimit`: relayed commands a second (0 = no limit).
    pub relay_rate: u32,
    /// `MaxPendingDbRequests`: requests waiting for a reply.
    pub max_pending: usize,
}

pub struct State {
    pub limits: Limits,
    pub clients: Clients,
    pub users: ImUserManager,
    pub links: Links,
    /// Stored group messages waiting for their group's member list.
    pub group_msgs: GroupQueues,
    /// Lookups of the push chain waiting for their answer.
    pub push_lookups: Lookups,
    /// `aesKey`: decrypts the text of a message for its push.
    pub cipher: MsgCipher,
}

/// Where a forwarded request goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Db(Pool),
    MasterRoute,
}

pub const DB_LOGIN: Target = Target::Db(Pool::Login);
pub const DB_GENERAL: Target = Target::Db(Pool::General);
pub const MASTER_ROUTE: Target = Target::MasterRoute;

/// A client request forwarded with the client's user id and handle: where it goes and which
/// attach it carries (declared once per request in the forward table).
pub trait Forwarded: Routed {
    /// The reply's message.
    type Reply: Routed;
    const TARGET: Target;
    const ATTACH: Attach;
}

/// Handles a PDU from a client connection.
pub type ClientFn = fn(&mut State, &mut Net, &Request<'_>);
/// Handles a PDU from a server link.
pub type ServerFn = fn(&mut State, &mut Net, &Received<'_>);

/// The command table of one family of commands: which handler takes each command id, per
/// kind of connection it arrives on.
pub struct Family {
    pub name: &'static str,
    /// From clients that have not logged in yet (only the login request).
    pub before_login: &'static [(u16, ClientFn)],
    /// From logged-in clients.
    pub client: &'static [(u16, ClientFn)],
    /// From db_proxy.
    pub db: &'static [(u16, ServerFn)],
    /// From route_server.
    pub route: &'static [(u16, ServerFn)],
    /// From file_server.
    pub file: &'static [(u16, ServerFn)],
}

impl Family {
    /// A family without commands (the start of a struct update).
    pub const EMPTY: Family = Family {
        name: "",
        before_login: &[],
        client: &[],
        db: &[],
        route: &[],
        file: &[],
    };
}

/// The rows of a [`Family`] table: `CID_NAME => handler, …` (command ids of
/// `tt_proto::ids::cid`).
macro_rules! rows {
    ($($cid:ident => $handler:expr),* $(,)?) => {
        &[$((tt_proto::ids::cid::$cid, $handler)),*]
    };
}
pub(crate) use rows;

impl State {
    pub fn new(settings: &Settings) -> Result<State, String> {
        Ok(State {
            limits: Limits {
                msg_rate: settings.msg_rate_limit,
                relay_rate: settings.relay_rate_limit,
                max_pending: settings.max_pending_requests,
            },
            clients: Clients::default(),
            users: ImUserManager::new(),
            links: Links::new(settings)?,
            group_msgs: GroupQueues::default(),
            push_lookups: Lookups::default(),
            cipher: MsgCipher::new(settings.aes_key.as_bytes())
                .map_err(|e| format!("aesKey: {e}"))?,
        })
    }

    /// A connected link of `target` (a random one of a db pool, or the master route_server).
    pub fn link_for(&mut self, target: Target) -> Option<ConnId> {
        match target {
            Target::Db(pool) => self.links.db.pick(pool),
            Target::MasterRoute => self.links.route.master(),
        }
    }

    /// Forwards a parsed client request under its header, with `user_id` set to the logged-in
    /// user and the client's handle in attach_data; the reply comes back through
    /// [`State::route_back`]. Dropped (logged) without a link, or when the client already has
    /// `MaxPendingDbRequests` requests waiting.
    pub fn forward<M: Forwarded>(&mut self, net: &mut Net, req: &Request<'_>, mut msg: M) {
        let Some(dest) = self.link_for(M::TARGET) else {
            log::debug!(
                "no {:?} link: {:#06x} dropped",
                M::TARGET,
                req.header.command_id
            );
            return;
        };
        if M::ATTACH != Attach::None && !self.begin_request(net, req) {
            return;
        }
        let Some(client) = self.clients.get(req.conn) else {
            return;
        };
        msg.set_user_id(client.user_id);
        *msg.attach_mut() = M::ATTACH.data(client.handle);
        tt_common::pdu_io::relay(net, dest, req.header, &msg);
    }

    /// Counts a client request that expects an answer; false (logged, at most once a second
    /// per client) when the client already has `MaxPendingDbRequests` requests waiting.
    pub fn begin_request(&mut self, net: &Net, req: &Request<'_>) -> bool {
        let max = self.limits.max_pending;
        let Some(client) = self.clients.get_mut(req.conn) else {
            return false;
        };
        if client.begin_request(net.now(), max) {
            return true;
        }
        if client.note_drop() {
            log::warn!(
                "client {} (user {}) has {max} requests waiting: {:#06x} dropped",
                client.peer,
                client.user_id,
                req.header.command_id
            );
        }
        false
    }

    /// The way back of a forwarded request: parse the reply, read the handle from its
    /// attach_data, clear that, and relay the reply (received header: the client sees its own
    /// seq) to that connection of the reply's user. Returns the reply for follow-up work.
    pub fn route_back<M: Routed>(&mut self, net: &mut Net, pdu: &Received<'_>) -> Option<M> {
        let mut m = pdu.parse::<M>(net)?;
        let attach = m.attach_mut().take();
        if let Some(handle) = handle_of(attach.as_deref(), pdu.header.command_id) {
            self.reply_to_client(net, m.user_id(), handle, pdu.header, &m);
        }
        Some(m)
    }

    /// Relays a reply (already without attach_data) to connection `handle` of `user_id`,
    /// under the reply's header. Dropped when that connection is gone or not logged in.
    pub fn reply_to_client<M: prost::Message>(
        &mut self,
        net: &mut Net,
        user_id: u32,
        handle: u32,
        header: &Header,
        msg: &M,
    ) {
        let Some(conn) = self.users.conn_by_handle(user_id, handle) else {
            log::debug!(
                "reply {:#06x} for user {user_id} handle {handle}: connection gone",
                header.command_id
            );
            return;
        };
        self.clients.end_request(conn);
        tt_common::pdu_io::relay(net, conn, header, msg);
    }

    /// Sends a message of this server under `seq` to connection `handle` of `user_id`, as the
    /// answer to its request. Dropped when that connection is gone or not logged in.
    pub fn answer_client<M: Command>(
        &mut self,
        net: &mut Net,
        user_id: u32,
        handle: u32,
        seq: u16,
        msg: &M,
    ) {
        let Some(conn) = self.users.conn_by_handle(user_id, handle) else {
            log::debug!(
                "{} for user {user_id} handle {handle}: connection gone",
                M::NAME
            );
            return;
        };
        self.clients.end_request(conn);
        tt_common::pdu_io::send(net, conn, seq, msg);
    }

    /// Sends a transfer request (under `seq`) to a file_server picked as spec §6.5; with none
    /// connected, the requester (`req.from_user_id`, connection `handle`) is answered "no file
    /// server" (`IMFileRsp` result 1, no task).
    pub fn request_file_task(
        &mut self,
        net: &mut Net,
        handle: u32,
        seq: u16,
        req: &ImFileTransferReq,
    ) {
        match self.links.file.pick() {
            Some(f) => {
                tt_common::pdu_io::send(net, f, seq, req);
            }
            None => {
                log::debug!(
                    "no file_server link: the transfer of user {} is refused",
                    req.from_user_id
                );
                let rsp = file_refused(req);
                self.answer_client(net, req.from_user_id, handle, seq, &rsp);
            }
        }
    }

    /// The users-status answer to a transfer request whose receiver is not here (spec §11.2,
    /// attach type 5; `embedded` is the `IMFileTransferReq` body): the task is asked for
    /// online if the receiver has a PC client online somewhere, else offline.
    pub fn file_receiver_status(
        &mut self,
        net: &mut Net,
        seq: u16,
        handle: u32,
        embedded: &[u8],
        receiver_online: bool,
    ) {
        let Ok(mut task) = decode_checked::<ImFileTransferReq>(embedded) else {
            log::warn!(
                "users-status reply with a bad file-transfer request in attach_data: dropped"
            );
            return;
        };
        task.trans_mode = if receiver_online {
            TransferFileType::FileTypeOnline
        } else {
            TransferFileType::FileTypeOffline
        } as i32;
        self.request_file_task(net, handle, seq, &task);
    }

    /// Parses a command that is relayed to other connections and servers (P2P command, read
    /// ack, remove session), counted against `RelayRateLimit`: `None` when the client is over
    /// the limit (dropped, logged once a second) or the body does not parse (closed).
    pub fn relayed<M: Command>(
        &mut self,
        net: &mut Net,
        req: &Request<'_>,
        what: &str,
    ) -> Option<M> {
        let limit = self.limits.relay_rate;
        if self.clients.relay_allowed(req.conn, limit, what) {
            req.parse(net)
        } else {
            None
        }
    }

    /// Sends bytes to every logged-in connection of `user_id` here, except `except`.
    pub fn send_to_user(&self, net: &mut Net, user_id: u32, except: Option<ConnId>, bytes: &[u8]) {
        if let Some(u) = self.users.get(user_id) {
            for (_, c) in u.conns() {
                if Some(c.conn) != except {
                    tt_common::pdu_io::send_bytes(net, c.conn, bytes);
                }
            }
        }
    }
}

/// Group messages on their way to the members here (spec §10.3 steps 4–7): see
/// [`crate::group_queue`] for why they wait in a queue per group.
impl State {
    /// Queues a stored group message (from the sending connection `handle` here, 0 for one
    /// stored elsewhere) and asks db_proxy for the members unless a request is in flight.
    pub fn queue_group_message(&mut self, net: &mut Net, mut msg: ImMsgData, handle: u32) {
        msg.attach_data = None;
        let (group, msg_id) = (msg.to_session_id, msg.msg_id);
        match self.group_msgs.push(Pending { msg, handle }) {
            Pushed::AskMembers => self.ask_group_members(net, group),
            Pushed::Waiting => {}
            // The first refusal of a second is logged here, the rest summed up by the tick.
            Pushed::Full => {
                if self.group_msgs.refused() == 1 {
                    log::warn!(
                        "{} group messages wait for their members: message {msg_id} of group \
                         {group} dropped",
                        self.group_msgs.len()
                    );
                }
            }
        }
    }

    /// Asks db_proxy for the members of `group` if it has messages waiting and no request in
    /// flight: `IMGroupInfoListReq` {first sender, [{group, version 0}], long attach {type 3,
    /// its handle, the message}}. Without a db_proxy link the group's messages are dropped.
    pub fn ask_group_members(&mut self, net: &mut Net, group: u32) {
        if !self.group_msgs.needs_asking(group) {
            return;
        }
        let Some(head) = self.group_msgs.head(group) else {
            return;
        };
        let Some(db) = self.links.db.pick(Pool::General) else {
            let n = self.group_msgs.drop_group(group);
            log::warn!("no db_proxy link: {n} messages of group {group} not delivered");
            return;
        };
        let attach = PduAttachData::from_msg(ATTACH_TYPE_HANDLE_AND_PDU, head.handle, &head.msg);
        let req = ImGroupInfoListReq {
            user_id: head.msg.from_user_id,
            group_version_list: vec![GroupVersionInfo {
                group_id: group,
                version: 0,
            }],
            attach_data: Some(attach.to_vec()),
        };
        tt_common::pdu_io::send(net, db, 0, &req);
        self.group_msgs.asked(group, db, net.now());
    }

    /// A db_proxy link closed: the member requests it carried are sent again.
    pub fn db_link_lost(&mut self, net: &mut Net, link: ConnId) {
        for group in self.group_msgs.lost_on(link) {
            self.ask_group_members(net, group);
        }
    }

    /// Once a second: member requests without a reply for too long are given up, and the
    /// group messages refused since the last tick beyond the first are logged.
    pub fn tick_group_messages(&mut self, net: &mut Net) {
        let refused = self.group_msgs.take_refused();
        if refused > 1 {
            log::warn!(
                "{} more group messages dropped: too many waiting",
                refused - 1
            );
        }
        for (group, n) in self.group_msgs.expire(net.now()) {
            log::warn!(
                "db_proxy did not answer for the members of group {group}: {n} messages not delivered"
            );
            self.ask_group_members(net, group);
        }
    }
}

/// Offline pushes (spec §10.4): a stored message's push request travels through its lookups
/// (group shields, device tokens, PC presence) in their `attach_data`; see [`crate::alert`].
impl State {
    /// The push request of a stored message before its tokens are known, encoded for the
    /// lookups' `attach_data`; `None` without a push_server, or when the text of a text
    /// message cannot be decrypted (no push, as the original). The sender's nick is known when
    /// the sender is logged in here.
    pub fn push_template(&self, msg: &ImMsgData) -> Option<Vec<u8>> {
        if !self.links.push.configured() {
            return None;
        }
        let nick = self.users.get(msg.from_user_id).map(|u| &u.nick_name[..]);
        let template = alert::template(msg, &self.cipher, nick);
        if template.is_none() {
            log::debug!(
                "message {} of user {}: text not decrypted, no push",
                msg.msg_id,
                msg.from_user_id
            );
        }
        template.map(|t| t.encode_to_vec())
    }

    /// Sends a lookup of the push chain to db_proxy, on `link` (where the previous step was
    /// answered) or a general link; counted until answered, dropped (logged by the tick) when
    /// [`alert::MAX_PENDING_LOOKUPS`] wait.
    pub fn push_lookup<M: Command>(&mut self, net: &mut Net, link: Option<ConnId>, msg: &M) {
        let Some(db) = link.or_else(|| self.links.db.pick(Pool::General)) else {
            log::debug!("no db_proxy link: push lookup dropped");
            return;
        };
        if self.push_lookups.begin(db, net.now()) {
            tt_common::pdu_io::send(net, db, 0, msg);
        }
    }

    /// Sends a presence query for a push request's receivers to the master route_server,
    /// counted until answered; false (nothing sent) without a master.
    pub fn push_presence_query(&mut self, net: &mut Net, req: &ImPushToUserReq) -> bool {
        let Some(route) = self.links.route.master() else {
            return false;
        };
        if self.push_lookups.begin(route, net.now()) {
            let query = ImUsersStatReq {
                user_id: 0,
                user_id_list: req.user_token_list.iter().map(|t| t.user_id).collect(),
                attach_data: Some(
                    PduAttachData::from_msg(ATTACH_TYPE_PDU_FOR_PUSH, 0, req).to_vec(),
                ),
            };
            tt_common::pdu_io::send(net, route, 0, &query);
        }
        true
    }

    /// route_server's presence answer to a push query (attach type 4, `embedded`: the push
    /// request) came on `link`: the request goes to push_server.
    pub fn push_presence_known(
        &mut self,
        net: &mut Net,
        link: ConnId,
        embedded: &[u8],
        stats: &[UserStat],
    ) {
        self.push_lookups.answered(link);
        match decode_checked::<ImPushToUserReq>(embedded) {
            Ok(req) => self.links.push.send_with_presence(net, req, stats),
            Err(e) => log::warn!("users-status reply with a bad push request ({e}): dropped"),
        }
    }

    /// Once a second: lookups unanswered for too long are forgotten, and the pushes dropped
    /// at the bound of waiting lookups are logged.
    pub fn tick_pushes(&mut self, net: &Net) {
        let late = self.push_lookups.expire(net.now());
        if late > 0 {
            log::warn!("{late} push lookups got no answer: those pushes are dropped");
        }
        let refused = self.push_lookups.take_refused();
        if refused > 0 {
            log::warn!(
                "{refused} offline pushes dropped: {} lookups wait for an answer",
                alert::MAX_PENDING_LOOKUPS
            );
        }
    }
}

/// The answer to a transfer request that gets no task: `IMFileRsp` result 1, no task id, no
/// address.
pub fn file_refused(req: &ImFileTransferReq) -> ImFileRsp {
    ImFileRsp {
        result_code: RESULT_FAILED,
        from_user_id: req.from_user_id,
        to_user_id: req.to_user_id,
        file_name: req.file_name.clone(),
        task_id: Vec::new(),
        ip_addr_list: Vec::new(),
        trans_mode: req.trans_mode,
    }
}

/// The client side of a plain forward: parse (a bad body closes the client), then
/// [`State::forward`].
pub fn forward_request<M: Forwarded>(s: &mut State, net: &mut Net, req: &Request<'_>) {
    if let Some(msg) = req.parse::<M>(net) {
        s.forward(net, req, msg);
    }
}

/// The reply side of a plain forward: [`State::route_back`].
pub fn route_reply<M: Routed>(s: &mut State, net: &mut Net, pdu: &Received<'_>) {
    s.route_back::<M>(net, pdu);
}
