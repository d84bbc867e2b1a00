//! file_server (skeleton).

fn main() {}
