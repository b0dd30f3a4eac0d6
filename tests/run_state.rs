//! The run's own files under concurrency and failure: the project lock (a
//! second run is refused and names the holder; `--wait` waits for it) and
//! the run log (every run is logged as one whole line, failed runs too, and
//! a partial last line is ended first).
#![cfg(feature = "engine")]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

#[path = "support/temp.rs"]
mod temp;

/// A scratch copy of the smallest run fixture project.
fn small_project(scratch: &tempfile::TempDir) -> PathBuf {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/run_fixtures/ok_small_project");
    let to = scratch.path().join("project");
    for entry in walkdir::WalkDir::new(&from) {
        let entry = entry.expect("walk the fixture");
        let target = to.join(entry.path().strip_prefix(&from).expect("inside"));
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&target).expect("mkdir");
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
    to
}

fn accord_run(dir: &Path, extra: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_accord"));
    cmd.arg("run")
        .arg(dir)
        .args(["--env", "dev", "--now", "2026-11-28T12:00:00Z"])
        .args(extra)
        .env_remove("ACCORD_FAULT_AFTER");
    cmd
}

/// Whether `large_files` delivered anything: its files sit directly in
/// `out/`, named `large_files_<run id>.csv` and its manifest.
fn delivered_files(dir: &Path) -> bool {
    std::fs::read_dir(dir.join("out")).is_ok_and(|entries| {
        entries
            .filter_map(Result::ok)
            .any(|e| e.file_name().to_string_lossy().starts_with("large_files_"))
    })
}

fn log_lines(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join(".accord/runs.jsonl"))
        .expect("a run log")
        .split_inclusive('\n')
        .map(str::to_string)
        .collect()
}

#[test]
fn a_run_is_refused_while_another_holds_the_lock_and_waits_with_wait() {
    let scratch = temp::dir("run-lock");
    let dir = small_project(&scratch);
    // Hold the lock from this process, with the very call a run makes.
    let held = accord::run::lock::acquire(&dir, "small", false, "2026-11-28T11:59:00Z")
        .expect("the lock is free");

    let refused = accord_run(&dir, &[]).output().expect("accord runs");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("error[R0102]"), "{stderr}");
    // The refusal names the holder: this process, its host, its start.
    assert!(
        stderr.contains(&format!("pid {} on host ", std::process::id())),
        "{stderr}"
    );
    assert!(stderr.contains("started 2026-11-28T11:59:00Z"), "{stderr}");
    assert!(!delivered_files(&dir), "a refused run delivered");
    assert!(
        !dir.join(".accord/state").exists(),
        "a refused run wrote state"
    );

    // With --wait the run waits while the lock is held, then runs.
    let mut waiting = accord_run(&dir, &["--wait"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("accord starts");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert!(
        waiting.try_wait().expect("poll").is_none(),
        "`--wait` did not wait for the lock"
    );
    assert!(!delivered_files(&dir));
    drop(held);
    let done = waiting.wait_with_output().expect("accord ends");
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    assert!(String::from_utf8_lossy(&done.stderr).contains("waiting for the project lock"));
    assert!(delivered_files(&dir));
    assert_eq!(log_lines(&dir).len(), 1, "one run, one line");
}

#[test]
fn every_run_is_logged_as_one_whole_line_failed_runs_too() {
    let scratch = temp::dir("run-log");
    let dir = small_project(&scratch);
    // A log cut short in its last line, as by a run killed while appending.
    std::fs::create_dir_all(dir.join(".accord")).expect("mkdir");
    std::fs::write(dir.join(".accord/runs.jsonl"), "{\"run_id\":\"cut").expect("write");

    let ok = accord_run(&dir, &[]).output().expect("accord runs");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let lines = log_lines(&dir);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(
        lines[0], "{\"run_id\":\"cut\n",
        "the partial line is ended, not glued to"
    );
    let report: serde_json::Value = serde_json::from_str(&lines[1]).expect("a whole JSON line");
    assert_eq!(report["status"], "completed");
    assert_eq!(report["diagnostics"][0]["code"], "R0105", "{report}");

    // A run that stops before its activations is logged as failed.
    // The store cannot be opened: a folder stands where its file goes.
    for file in ["store.db", "store.db-wal", "store.db-shm"] {
        let _ = std::fs::remove_file(dir.join(".accord").join(file));
    }
    std::fs::create_dir(dir.join(".accord/store.db")).expect("a folder in the store's place");
    let stopped = accord_run(&dir, &[]).output().expect("accord runs");
    let stderr = String::from_utf8_lossy(&stopped.stderr);
    assert_eq!(stopped.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("error[R0107]"), "{stderr}");
    let lines = log_lines(&dir);
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(lines[2].ends_with('\n'));
    let failed: serde_json::Value = serde_json::from_str(&lines[2]).expect("a whole JSON line");
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(failed["diagnostics"][0]["code"], "R0107", "{failed}");
    assert!(!failed["run_id"].as_str().unwrap_or("").is_empty());
}
