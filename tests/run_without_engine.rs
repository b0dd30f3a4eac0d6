//! Without the `engine` feature, `accord run` says how to get it.
#![cfg(not(feature = "engine"))]

use std::process::Command;

#[test]
fn run_explains_how_to_get_the_engine() {
    let out = Command::new(env!("CARGO_BIN_EXE_accord"))
        .args(["run", "specs", "--env", "dev"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("accord runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cargo install --path . --features engine"),
        "{stderr}"
    );
}
