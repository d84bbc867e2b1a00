//! push_server (skeleton).

fn main() {}
