//! Offline files through msg_server and db_proxy_server (msg_server.md §9.2.9, storage-file.md
//! §5.24–§5.26): the sender's add, the receiver's list and delete, and a delete from a user who
//! has no part in the file. Without a file_server no transfer happens; what is checked is the
//! bookkeeping the official clients drive. Users: `tt_testkit::users::FILES`.

mod live_client;

use std::time::Duration;

use live_client::{WAIT, fresh, raw_login};
use tt_client::ClientType;
use tt_client::tt_proto::pb::base_define::OfflineFileInfo;
use tt_client::tt_proto::pb::file::{
    ImFileAddOfflineReq, ImFileDelOfflineReq, ImFileHasOfflineReq, ImFileHasOfflineRsp,
};
use tt_testkit::stack::LIMIT;
use tt_testkit::users::FILES;
use tt_testkit::{PduClient, Stack};

const SENDER: u32 = FILES.id(0);
const RECEIVER: u32 = FILES.id(1);
const STRANGER: u32 = FILES.id(2);

/// The receiver's waiting files with task id `task`.
fn waiting(c: &mut PduClient, task: &str) -> Vec<OfflineFileInfo> {
    // Status notices of other users may come first.
    let seq = c.send(&ImFileHasOfflineReq {
        user_id: 0,
        attach_data: None,
    });
    let (header, rsp) = c.recv::<ImFileHasOfflineRsp>();
    assert_eq!(header.seq_num, seq);
    assert_eq!(rsp.user_id, RECEIVER);
    assert_eq!(rsp.attach_data, None, "msg_server clears its attach_data");
    rsp.offline_file_list
        .into_iter()
        .filter(|f| f.task_id == task.as_bytes())
        .collect()
}

/// Asks until the file with `task` is (`present`) or is not listed. Adds and deletes have no
/// reply, and msg_server spreads requests over several db_proxy links, so the list is the only
/// thing to wait on (bounded: each round trip is a real request).
fn wait_listed(c: &mut PduClient, task: &str, present: bool) -> Vec<OfflineFileInfo> {
    for _ in 0..200 {
        let files = waiting(c, task);
        if files.is_empty() != present {
            return files;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!(
        "the file {task:?} is still {}listed",
        if present { "not " } else { "" }
    );
}

#[test]
fn a_receiver_lists_and_deletes_the_offline_files_sent_to_it() {
    let mut stack = Stack::start("files", 2);
    let mut sender = raw_login(&stack, 0, SENDER, ClientType::Windows);
    let mut receiver = raw_login(&stack, 1, RECEIVER, ClientType::Windows);
    let mut stranger = raw_login(&stack, 0, STRANGER, ClientType::Windows);
    receiver.set_hang_guard(WAIT);
    let task = fresh("task");

    // The body's sender is replaced by the logged-in user.
    sender.send(&ImFileAddOfflineReq {
        from_user_id: STRANGER,
        to_user_id: RECEIVER,
        task_id: task.clone().into_bytes(),
        file_name: "report.pdf".into(),
        file_size: 12_345,
    });
    let files = wait_listed(&mut receiver, &task, true);
    assert_eq!(files.len(), 1);
    let f = &files[0];
    assert_eq!(f.from_user_id, SENDER);
    assert_eq!(
        (f.file_name.as_slice(), f.file_size),
        (&b"report.pdf"[..], 12_345)
    );

    // A user with no part in the file cannot delete it: the request is dropped.
    let del = ImFileDelOfflineReq {
        from_user_id: SENDER,
        to_user_id: RECEIVER,
        task_id: task.clone().into_bytes(),
    };
    stranger.send(&del);
    assert!(
        stack
            .msg_daemon(0)
            .wait_for_line("for a file of other users: dropped", LIMIT),
        "msg_server did not drop the stranger's delete"
    );
    assert_eq!(waiting(&mut receiver, &task).len(), 1);
    // The receiver's own delete names the file's sender, as the official clients' does.
    receiver.send(&del);
    wait_listed(&mut receiver, &task, false);
}
