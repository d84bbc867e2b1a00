//! msg_server (placeholder: being built).
fn main() {}
