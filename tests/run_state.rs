//! The run's own files under concurrency, failure and a memory limit: the
//! project lock (a second run is refused and names the holder; `--wait`
//! waits for it), the run log (every run is logged as one whole line,
//! failed runs too, and a partial last line is ended first), and an
//! activation's members spilled to disk under a `memory_limit` (the same
//! deliveries and the same state as members held).
#![cfg(feature = "engine")]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

#[path = "support/people_project.rs"]
mod people_project;
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

/// Every file under `dir` (relative path and bytes), `.accord/tmp` aside.
fn files_under(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| e.expect("walk"))
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            let rel = e.path().strip_prefix(dir).expect("inside");
            (
                rel.to_string_lossy().into_owned(),
                std::fs::read(e.path()).expect("read"),
            )
        })
        .collect();
    files.sort();
    files
}

/// A Parquet file's rows, in one batch.
fn rows_of(parquet: &[u8]) -> datafusion::arrow::record_batch::RecordBatch {
    use std::io::Write as _;

    use datafusion::arrow::record_batch::RecordBatchReader as _;
    use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let mut file = tempfile::tempfile().expect("a file");
    file.write_all(parquet).expect("write");
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .expect("a Parquet file")
        .build()
        .expect("a reader");
    let schema = reader.schema();
    let batches: Vec<_> = reader.map(|b| b.expect("a batch")).collect();
    datafusion::arrow::compute::concat_batches(&schema, &batches).expect("one batch")
}

/// The members each activation spilled in the last run (its log's last
/// line), by activation.
fn spilled(dir: &Path) -> Vec<(String, bool)> {
    let lines = log_lines(dir);
    let report: serde_json::Value =
        serde_json::from_str(lines.last().expect("a run")).expect("a report");
    let activations = report["activations"].as_object().expect("activations");
    activations
        .iter()
        .map(|(name, a)| {
            assert_eq!(a["status"], "delivered", "{name}: {a}");
            (
                name.clone(),
                a["members_spilled"].as_u64().is_some_and(|b| b > 0),
            )
        })
        .collect()
}

/// Under a memory limit, an activation's members past a quarter of it go
/// to a spill file as they come from the export query, and every step
/// after reads them back: the delivered files (full and incremental,
/// cut in parts) and the members files are the same, byte for byte, as a
/// run that holds its members, on a first delivery and on a second with a
/// few changes. So are they with the members taken 50,000 rows at a time
/// and every batch spilled (the run's test hook): there every activation
/// spills, the one keyed by an integer too (its query sorts the key as
/// text, the order of member keys, so its rows stream as they come).
#[test]
fn members_spilled_under_a_memory_limit_deliver_what_members_held_do() {
    let scratch = temp::dir("run-spilled");
    let [held, limited, batched] = ["held", "limited", "batched"].map(|d| scratch.path().join(d));
    for (step, now) in [
        (false, "2026-11-28T12:00:00Z"),
        (true, "2026-11-29T12:00:00Z"),
    ] {
        for (dir, extra, spill_by) in [
            (&held, &[][..], None),
            (&limited, &["--memory-limit", "64MiB"][..], None),
            (&batched, &[][..], Some("50000")),
        ] {
            people_project::write(dir, 300_000, step);
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_accord"));
            cmd.arg("run")
                .arg(dir)
                .args(["--env", "dev", "--now", now])
                .args(extra)
                .env_remove("ACCORD_FAULT_AFTER")
                .env_remove("ACCORD_SPILL_MEMBERS_BY");
            if let Some(rows) = spill_by {
                cmd.env("ACCORD_SPILL_MEMBERS_BY", rows);
            }
            let out = cmd.output().expect("accord runs");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let activations = |spills: [bool; 4]| {
            ["accounts", "changes", "full", "prefixed"]
                .iter()
                .zip(spills)
                .map(|(name, spilled)| (name.to_string(), spilled))
                .collect::<Vec<_>>()
        };
        assert_eq!(spilled(&held), activations([false, false, false, false]));
        // The largest activations pass a quarter of the limit.
        let under_limit = spilled(&limited);
        assert!(under_limit[1].1 && under_limit[2].1, "{under_limit:?}");
        // Every query streams in member order, integer keys included.
        assert_eq!(spilled(&batched), activations([true, true, true, true]));
        for other in [&limited, &batched] {
            for folder in ["out", ".accord/members"] {
                let (a, b) = (
                    files_under(&held.join(folder)),
                    files_under(&other.join(folder)),
                );
                let names =
                    |f: &[(String, Vec<u8>)]| f.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
                assert_eq!(names(&a), names(&b), "{folder}, second run: {step}");
                if other == &batched && folder == ".accord/members" {
                    // Written in other batches, a members file's pages fall
                    // elsewhere: the same rows, not the same bytes.
                    for ((name, a), (_, b)) in a.iter().zip(&b) {
                        assert!(rows_of(a) == rows_of(b), "{name}, second run: {step}");
                    }
                } else {
                    assert!(a == b, "{folder}: the same bytes, second run: {step}");
                }
            }
        }
    }
    // The full export was cut into parts, and the second delivery of the
    // incremental one wrote its changes only (a changes file).
    let out = files_under(&limited.join("out/full"));
    assert!(
        out.iter()
            .any(|(n, _)| n.contains("full_everyone_") && n.ends_with("_2.csv"))
    );
    let members = files_under(&limited.join(".accord/members"));
    assert!(
        members
            .iter()
            .any(|(n, _)| n.starts_with("changes.") && n.ends_with(".changes.parquet"))
    );
    let members = |dir: &Path, activation: &str| -> u64 {
        let report: serde_json::Value =
            serde_json::from_str(log_lines(dir).last().expect("a run")).expect("a report");
        report["activations"][activation]["members"]
            .as_u64()
            .expect("members")
    };
    // The activation keyed by an integer has every account of its
    // audience (`10` sorts before `9` as member keys do), and the one of
    // two audiences, one's name a prefix of the other's, every member of
    // both.
    let big = (0..2_000).filter(|i| i % 97 >= 50).count() as u64;
    assert_eq!(members(&batched, "accounts"), big);
    let employees = |i: usize| ((i * 7) % 2_000) % 97;
    let first: u64 = (0..300_000)
        .map(|i| u64::from(employees(i) >= 50) + u64::from(employees(i) >= 90))
        .sum();
    let second = {
        let kept = (0..300_000).filter(|i| i % 250 != 3);
        let added = (300_000..300_600).map(|i: usize| (i % 2_000) % 97);
        kept.map(employees)
            .chain(added)
            .map(|e| u64::from(e >= 50) + u64::from(e >= 90))
            .sum::<u64>()
    };
    assert_ne!(first, second);
    assert_eq!(members(&batched, "prefixed"), second);
    // Nothing is left in the spill folder.
    for dir in [&limited, &batched] {
        let tmp = std::fs::read_dir(dir.join(".accord/tmp")).map_or(0, |d| d.count());
        assert_eq!(tmp, 0);
    }
}
