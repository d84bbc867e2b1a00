//! msfs (skeleton).

fn main() {}
