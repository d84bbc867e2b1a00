//! http_msg_server (skeleton).

fn main() {}
