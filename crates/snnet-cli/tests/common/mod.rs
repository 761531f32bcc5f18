//! What the CLI's integration tests share.
#![allow(dead_code, clippy::expect_used)]

use std::process::{Command, Output};

/// Runs the `snnet` binary with `args`.
pub(crate) fn snnet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_snnet"))
        .args(args)
        .output()
        .expect("the snnet binary runs")
}
