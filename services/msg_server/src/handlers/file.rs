//! File family: transfer requests, offline files, and what file_server sends (spec §6.5,
//! §9.2.8, §9.2.9, §11.2, §11.4).
//!
//! A transfer request becomes a task on a file_server: offline at once; online at once when
//! the receiver is logged in here with a PC presence, else after route_server has told whether
//! the receiver has a PC client online anywhere (users-status request with attach type 5,
//! answered in [`super::buddy`] through [`State::file_receiver_status`]). file_server's answer goes to the requester with that link's
//! address list, and a created task is notified to the receiver here and, through
//! route_server, on every other msg_server.

use netlib::Net;
use tt_common::pdu_io;
use tt_proto::Command;
use tt_proto::attach::{ATTACH_TYPE_HANDLE_AND_PDU_FOR_FILE, PduAttachData};
use tt_proto::pb::base_define::TransferFileType;
use tt_proto::pb::buddy::ImUsersStatReq;
use tt_proto::pb::file::{
    ImFileAddOfflineReq, ImFileDelOfflineReq, ImFileHasOfflineReq, ImFileHasOfflineRsp,
    ImFileNotify, ImFileReq, ImFileRsp,
};
use tt_proto::pb::server::{ImFileServerIpRsp, ImFileTransferReq, ImFileTransferRsp};

use crate::clients::Request;
use crate::links::db::Pool;
use crate::state::{Family, Forwarded, State, file_refused, forward_request, rows};
use crate::wire::{Attach, Received, handle_of};

pub const FAMILY: Family = Family {
    name: "file",
    client: rows! {
        CID_FILE_REQUEST            => transfer,
        CID_FILE_HAS_OFFLINE_REQ    => has_offline,
        CID_FILE_ADD_OFFLINE_REQ    => add_offline,
        CID_FILE_DEL_OFFLINE_REQ    => del_offline,
    },
    db: rows! {
        CID_FILE_HAS_OFFLINE_RES    => offline_listed,
    },
    route: rows! {
        CID_FILE_NOTIFY             => notify,
    },
    file: rows! {
        CID_OTHER_FILE_SERVER_IP_RSP => server_addrs,
        CID_OTHER_FILE_TRANSFER_RSP  => task_created,
    },
    ..Family::EMPTY
};

/// Longest file name (characters) a transfer request or an offline file may carry: the
/// `IMTransmitFile.fileName` column.
pub const MAX_FILE_NAME_CHARS: usize = 255;

/// Longest task id (bytes) an offline-file request may carry: the `IMTransmitFile.taskId`
/// column.
pub const MAX_TASK_ID_LEN: usize = 64;

/// A file name a request may carry: UTF-8 of at most [`MAX_FILE_NAME_CHARS`] characters.
fn file_name_ok(name: &[u8]) -> bool {
    std::str::from_utf8(name).is_ok_and(|n| n.chars().count() <= MAX_FILE_NAME_CHARS)
}

/// `CID_FILE_REQUEST` (§9.2.8): a task on a file_server, for an offline transfer at once,
/// for an online one once the receiver's presence is known. Refused (`IMFileRsp` result 1)
/// without a file_server, for a file name over [`MAX_FILE_NAME_CHARS`] characters or not
/// UTF-8, no route_server to ask, or too many requests of this client waiting for an answer.
/// (A transfer mode other than online or offline does not parse: the client is closed.)
fn transfer(s: &mut State, net: &mut Net, req: &Request<'_>) {
    let Some(q) = req.parse::<ImFileReq>(net) else {
        return;
    };
    let Some(client) = s.clients.get(req.conn) else {
        return;
    };
    let handle = client.handle;
    let seq = req.header.seq_num;
    let task = ImFileTransferReq {
        from_user_id: req.me,
        to_user_id: q.to_user_id,
        file_name: q.file_name,
        file_size: q.file_size,
        trans_mode: q.trans_mode,
        attach_data: Attach::Short.data(handle),
    };
    let offline = task.trans_mode == TransferFileType::FileTypeOffline as i32;
    let refusal = if !file_name_ok(&task.file_name) {
        Some("a file name that is not UTF-8 or too long")
    } else if s.links.file.pick().is_none() {
        Some("no file_server link")
    } else if !s.begin_request(net, req) {
        Some("too many requests waiting")
    } else {
        None
    };
    if let Some(why) = refusal {
        log::info!("user {}: file transfer refused: {why}", req.me);
        pdu_io::send(net, req.conn, seq, &file_refused(&task));
        return;
    }
    let receiver_here = s
        .users
        .get(task.to_user_id)
        .is_some_and(|u| u.pc_login_status != 0);
    if offline || receiver_here {
        s.request_file_task(net, handle, seq, &task);
        return;
    }
    let ask = ImUsersStatReq {
        user_id: req.me,
        user_id_list: vec![task.to_user_id],
        attach_data: Some(
            PduAttachData::from_msg(ATTACH_TYPE_HANDLE_AND_PDU_FOR_FILE, handle, &task).to_vec(),
        ),
    };
    if !s.links.route.send_msg_seq_to_master(net, seq, &ask) {
        log::info!(
            "user {}: file transfer refused: no route_server to ask",
            req.me
        );
        s.answer_client(net, req.me, handle, seq, &file_refused(&task));
    }
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

/// `CID_FILE_HAS_OFFLINE_RES` from db_proxy (§11.1): to the client, with the address list of
/// a file_server link when one is connected.
fn offline_listed(s: &mut State, net: &mut Net, pdu: &Received<'_>) {
    let Some(mut m) = pdu.parse::<ImFileHasOfflineRsp>(net) else {
        return;
    };
    let attach = m.attach_data.take();
    let Some(handle) = handle_of(attach.as_deref(), pdu.header.command_id) else {
        return;
    };
    if let Some(f) = s.links.file.pick() {
        m.ip_addr_list.extend_from_slice(s.links.file.addrs(f));
    }
    s.reply_to_client(net, m.user_id, handle, pdu.header, &m);
}

/// An offline-file request of the logged-in user `me`, made fit to pass on to db_proxy: the
/// message to forward, or why it is dropped.
trait OfflineFile: Command {
    fn checked_for(self, me: u32) -> Result<Self, &'static str>;
    fn task_id(&self) -> &[u8];
}

impl OfflineFile for ImFileAddOfflineReq {
    /// The sender stores the file: it is the logged-in user, whatever the body says.
    fn checked_for(mut self, me: u32) -> Result<Self, &'static str> {
        self.from_user_id = me;
        if file_name_ok(&self.file_name) {
            Ok(self)
        } else {
            Err("with a file name that is not UTF-8 or too long")
        }
    }

    fn task_id(&self) -> &[u8] {
        &self.task_id
    }
}

impl OfflineFile for ImFileDelOfflineReq {
    /// The receiver deletes the file once it has it, naming its sender: forwarded as sent
    /// when the logged-in user is the file's sender or its receiver, dropped otherwise.
    fn checked_for(self, me: u32) -> Result<Self, &'static str> {
        if self.from_user_id == me || self.to_user_id == me {
            Ok(self)
        } else {
            Err("for a file of other users")
        }
    }

    fn task_id(&self) -> &[u8] {
        &self.task_id
    }
}

/// An offline-file request (§9.2.9), checked and passed on to db_proxy (no reply expected);
/// returned for what follows. Dropped with a log line when the logged-in user has no part in
/// the file, or its task id or file name is over the columns' size.
fn offline_to_db<M: OfflineFile>(s: &mut State, net: &mut Net, req: &Request<'_>) -> Option<M> {
    let m = req.parse::<M>(net)?;
    if m.task_id().len() > MAX_TASK_ID_LEN {
        log::warn!(
            "user {} sent {} with a task id too long: dropped",
            req.me,
            M::NAME
        );
        return None;
    }
    match m.checked_for(req.me) {
        Ok(m) => {
            s.links.db.relay(net, Pool::General, req.header, &m);
            Some(m)
        }
        Err(why) => {
            log::warn!("user {} sent {} {why}: dropped", req.me, M::NAME);
            None
        }
    }
}

/// `CID_FILE_ADD_OFFLINE_REQ`: to db_proxy, and with a file_server link the receiver is told
/// the file is ready (`IMFileNotify{offline_ready: 1}`), here and through route_server.
fn add_offline(s: &mut State, net: &mut Net, req: &Request<'_>) {
    let Some(m) = offline_to_db::<ImFileAddOfflineReq>(s, net, req) else {
        return;
    };
    let Some(f) = s.links.file.pick() else {
        return;
    };
    let notify = ImFileNotify {
        from_user_id: m.from_user_id,
        to_user_id: m.to_user_id,
        file_name: m.file_name,
        file_size: m.file_size,
        task_id: m.task_id,
        ip_addr_list: s.links.file.addrs(f).to_vec(),
        trans_mode: TransferFileType::FileTypeOffline as i32,
        offline_ready: 1,
    };
    notify_receiver(s, net, &notify);
}

/// `CID_FILE_DEL_OFFLINE_REQ`: to db_proxy, and the same request to every file_server, which
/// deletes the stored file.
fn del_offline(s: &mut State, net: &mut Net, req: &Request<'_>) {
    if let Some(m) = offline_to_db::<ImFileDelOfflineReq>(s, net, req) {
        s.links.file.send_all(net, &m);
    }
}

/// `IMFileNotify` to every connection of the receiver here and to the master route_server
/// (which passes it to every other msg_server).
fn notify_receiver(s: &mut State, net: &mut Net, notify: &ImFileNotify) {
    let bytes = pdu_io::encode(0, notify);
    s.send_to_user(net, notify.to_user_id, None, &bytes);
    s.links.route.send_to_master(net, &bytes);
}

/// `CID_FILE_NOTIFY` from another msg_server: to the receiver's connections here.
fn notify(s: &mut State, net: &mut Net, pdu: &Received<'_>) {
    if let Some(m) = pdu.parse::<ImFileNotify>(net) {
        s.send_to_user(net, m.to_user_id, None, &pdu.raw());
    }
}

/// `CID_OTHER_FILE_SERVER_IP_RSP`: the addresses clients use to reach that file_server.
fn server_addrs(s: &mut State, net: &mut Net, pdu: &Received<'_>) {
    if let Some(m) = pdu.parse::<ImFileServerIpRsp>(net) {
        s.links.file.add_addrs(pdu.conn, m);
    }
}

/// `CID_OTHER_FILE_TRANSFER_RSP` (§11.4): the requester gets `IMFileRsp` with this link's
/// address list (under the answer's seq, the request's); a created task is notified to the
/// receiver.
fn task_created(s: &mut State, net: &mut Net, pdu: &Received<'_>) {
    let Some(mut m) = pdu.parse::<ImFileTransferRsp>(net) else {
        return;
    };
    let attach = m.attach_data.take();
    let Some(handle) = handle_of(attach.as_deref(), pdu.header.command_id) else {
        return;
    };
    let ip_addr_list = s.links.file.addrs(pdu.conn).to_vec();
    let file_name = m.file_name.unwrap_or_default();
    let task_id = m.task_id.unwrap_or_default();
    let trans_mode = m
        .trans_mode
        .unwrap_or(TransferFileType::FileTypeOnline as i32);
    let rsp = ImFileRsp {
        result_code: m.result_code,
        from_user_id: m.from_user_id,
        to_user_id: m.to_user_id,
        file_name: file_name.clone(),
        task_id: task_id.clone(),
        ip_addr_list: ip_addr_list.clone(),
        trans_mode,
    };
    s.answer_client(net, m.from_user_id, handle, pdu.header.seq_num, &rsp);
    if m.result_code == 0 {
        let notify = ImFileNotify {
            from_user_id: m.from_user_id,
            to_user_id: m.to_user_id,
            file_name,
            file_size: m.file_size.unwrap_or(0),
            task_id,
            ip_addr_list,
            trans_mode,
            offline_ready: 0,
        };
        notify_receiver(s, net, &notify);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_bounded_utf8() {
        assert!(file_name_ok(b"report.pdf"));
        assert!(file_name_ok("é".repeat(255).as_bytes()));
        assert!(!file_name_ok("é".repeat(256).as_bytes()));
        assert!(!file_name_ok(&[0xff, 0xfe]));
    }
}
