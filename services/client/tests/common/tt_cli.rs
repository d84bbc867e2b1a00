//! `tt-cli` as a child process of a test.

use std::io::Write;
use std::process::{Command, Output, Stdio};

/// A `tt-cli` command (the binary cargo built for this test run), logging warnings only.
pub fn cli() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tt-cli"));
    c.env("RUST_LOG", "warn");
    c
}

/// Runs `cmd` with `input` on its stdin and collects its exit status, stdout and stderr.
pub fn run_with_stdin(mut cmd: Command, input: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tt-cli");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("tt-cli output")
}
