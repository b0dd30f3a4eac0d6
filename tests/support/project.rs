//! Helpers for the `run` tests: a scratch copy of the example project, the
//! built binary, and a listing of delivered files.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

pub const NOW: &str = "2026-11-28T12:00:00Z";
pub const LATER: &str = "2026-12-05T12:00:00Z";

/// A fresh copy of `specs/` (without outputs or run state) in a temp
/// folder, removed when the returned handle drops (also on a panic).
pub fn scratch(tag: &str) -> tempfile::TempDir {
    copy_of("specs", tag)
}

/// A fresh copy of the project at `rel` (relative to the repository, such
/// as `tests/api_projects/crm`), without outputs or run state, in a temp
/// folder removed when the returned handle drops.
pub fn copy_of(rel: &str, tag: &str) -> tempfile::TempDir {
    let temp = tempfile::Builder::new()
        .prefix(&format!("accord-{tag}-"))
        .tempdir()
        .expect("temp dir");
    copy_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join(rel),
        temp.path(),
    );
    temp
}

/// Copies the project at `from` into `to` (created when missing), without
/// its outputs (`out/`) or run state (`.accord/`).
pub fn copy_tree(from: &Path, to: &Path) {
    for entry in walkdir::WalkDir::new(from) {
        let entry = entry.expect("walk the project");
        let rel = entry.path().strip_prefix(from).expect("inside the project");
        let first = rel
            .components()
            .next()
            .map(|c| c.as_os_str().to_string_lossy().into_owned());
        if matches!(first.as_deref(), Some("out") | Some(".accord")) {
            continue;
        }
        let target = to.join(rel);
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&target).expect("mkdir");
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// Runs `accord run DIR --env dev --now NOW --out DIR/delivered ARGS`.
pub fn run(dir: &Path, now: &str, fault_after: Option<u64>, extra: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_accord"));
    cmd.arg("run")
        .arg(dir)
        .args(["--env", "dev", "--now", now, "--out"])
        .arg(dir.join("delivered"))
        .args(extra);
    match fault_after {
        Some(n) => cmd.env("ACCORD_FAULT_AFTER", n.to_string()),
        None => cmd.env_remove("ACCORD_FAULT_AFTER"),
    };
    cmd.output().expect("accord runs")
}

/// Every delivered file (temporary files excluded), relative path -> bytes.
pub fn delivered(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let root = dir.join("delivered");
    let mut out = BTreeMap::new();
    if !root.exists() {
        return out;
    }
    for entry in walkdir::WalkDir::new(&root).sort_by_file_name() {
        let entry = entry.expect("walk");
        if !entry.file_type().is_file() || entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let rel = entry
            .path()
            .strip_prefix(&root)
            .expect("inside")
            .to_string_lossy()
            .replace('\\', "/");
        out.insert(rel, std::fs::read(entry.path()).expect("read"));
    }
    out
}
