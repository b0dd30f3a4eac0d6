//! The built `accord` binary, run the way a user runs it: in a folder, no
//! colours.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

/// `accord ARGS` run in `dir`.
pub fn accord_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_accord"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .expect("the accord binary runs")
}

/// What a command printed, stdout then stderr.
pub fn printed(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
