//! tt-cli (placeholder).
fn main() {}
