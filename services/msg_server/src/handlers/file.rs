//! File family: transfer requests and offline files (spec §9.2.8, §9.2.9, §11.2). This
//! server opens no file_server links, so a transfer request gets the original's "no file
//! server" answer.

use netlib::Net;
use tt_common::pdu_io;
use tt_proto::Command;
use tt_proto::pb::file::{
    ImFileAddOfflineReq, ImFileDelOfflineReq, ImFileHasOfflineReq, ImFileHasOfflineRsp,
    ImFileNotify, ImFileReq, ImFileRsp,
};
use tt_proto::values::RESULT_FAILED;

use crate::clients::Request;
use crate::links::db::Pool;
use crate::state::{Family, Forwarded, State, forward_request, rows};
use crate::wire::Received;

pub const FAMILY: Family = Family {
    name: "file",
    client: rows! {
        CID_FILE_REQUEST            => transfer,
        CID_FILE_HAS_OFFLINE_REQ    => has_offline,
        CID_FILE_ADD_OFFLINE_REQ    => to_db_for_me::<ImFileAddOfflineReq>,
        CID_FILE_DEL_OFFLINE_REQ    => to_db_for_me::<ImFileDelOfflineReq>,
    },
    route: rows! {
        CID_FILE_NOTIFY             => notify,
    },
    ..Family::EMPTY
};

/// `CID_FILE_REQUEST`: answered with "no file server" (result failed).
fn transfer(_: &mut State, net: &mut Net, req: &Request<'_>) {
    let Some(q) = req.parse::<ImFileReq>(net) else {
        return;
    };
    let rsp = ImFileRsp {
        result_code: RESULT_FAILED,
        from_user_id: req.me,
        to_user_id: q.to_user_id,
        file_name: q.file_name,
        task_id: Vec::new(),
        ip_addr_list: Vec::new(),
        trans_mode: q.trans_mode,
    };
    pdu_io::reply(net, req.conn, req.header, &rsp);
}

/// `CID_FILE_HAS_OFFLINE_REQ`: forwarded; without a db_proxy link answered with an empty
/// list, the request not even parsed.
fn has_offline(s: &mut State, net: &mut Net, req: &Request<'_>) {
    if s.link_for(ImFileHasOfflineReq::TARGET).is_none() {
        let rsp = ImFileHasOfflineRsp {
            user_id: req.me,
            ..Default::default()
        };
        pdu_io::reply(net, req.conn, req.header, &rsp);
    } else {
        forward_request::<ImFileHasOfflineReq>(s, net, req);
    }
}

/// An offline-file request of the logged-in user `me`, made fit to pass on to db_proxy: the
/// message to forward, or `None` when `me` has no part in the file.
trait OfflineFile: Command {
    fn checked_for(self, me: u32) -> Option<Self>;
}

impl OfflineFile for ImFileAddOfflineReq {
    /// The sender stores the file: it is the logged-in user, whatever the body says.
    fn checked_for(mut self, me: u32) -> Option<Self> {
        self.from_user_id = me;
        Some(self)
    }
}

impl OfflineFile for ImFileDelOfflineReq {
    /// The receiver deletes the file once it has it, naming its sender: forwarded as sent
    /// when the logged-in user is the file's sender or its receiver, dropped otherwise.
    fn checked_for(self, me: u32) -> Option<Self> {
        (self.from_user_id == me || self.to_user_id == me).then_some(self)
    }
}

/// `CID_FILE_ADD_OFFLINE_REQ`, `CID_FILE_DEL_OFFLINE_REQ` (spec §9.2.9): to db_proxy, no
/// reply expected.
fn to_db_for_me<M: OfflineFile>(s: &mut State, net: &mut Net, req: &Request<'_>) {
    let Some(m) = req.parse::<M>(net) else {
        return;
    };
    match m.checked_for(req.me) {
        Some(m) => {
            s.links.db.relay(net, Pool::General, req.header, &m);
        }
        None => log::warn!(
            "user {} sent {} for a file of other users: dropped",
            req.me,
            M::NAME
        ),
    }
}

/// `CID_FILE_NOTIFY` from another msg_server: to the receiver's connections here.
fn notify(s: &mut State, net: &mut Net, pdu: &Received<'_>) {
    if let Some(m) = pdu.parse::<ImFileNotify>(net) {
        s.send_to_user(net, m.to_user_id, None, &pdu.raw());
    }
}
