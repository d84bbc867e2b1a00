//! login_server (placeholder: being built).
fn main() {}
