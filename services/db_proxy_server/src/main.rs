//! db_proxy_server (placeholder: being built).
fn main() {}
