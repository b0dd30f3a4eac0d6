//! Crash safety: a run killed at any file operation, then rerun, delivers
//! exactly what an uninterrupted run delivers: nothing twice, nothing lost.
//!
//! Uses the test hook `ACCORD_FAULT_AFTER=N` (see `src/run/io.rs`): the
//! process aborts right before its N+1-th file operation, like a kill.
#![cfg(feature = "engine")]

#[path = "support/project.rs"]
mod project;

use project::{LATER, NOW, delivered, run, scratch};

fn ok(out: std::process::Output) {
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_killed_run_is_finished_by_the_next_one() {
    // The reference: two uninterrupted runs a week apart.
    let reference_dir = scratch("crash-ref");
    let reference = reference_dir.path();
    ok(run(reference, NOW, None, &[]));
    ok(run(reference, LATER, None, &[]));
    let expected = delivered(reference);
    assert!(!expected.is_empty());
    drop(reference_dir);

    // Kill the first run, or the second, at many points.
    for phase in 0..2 {
        let mut n = 0u64;
        loop {
            let scratch_dir = scratch("crash");
            let dir = scratch_dir.path();
            if phase == 1 {
                ok(run(dir, NOW, None, &[]));
            }
            let now = if phase == 0 { NOW } else { LATER };
            let killed = run(dir, now, Some(n), &[]);
            let finished = killed.status.success();
            // The rerun finishes the interrupted delivery, then carries on.
            ok(run(dir, now, None, &[]));
            if phase == 0 {
                ok(run(dir, LATER, None, &[]));
            }
            assert_eq!(
                delivered(dir).keys().collect::<Vec<_>>(),
                expected.keys().collect::<Vec<_>>(),
                "phase {phase}, killed after {n} file operations"
            );
            assert!(
                delivered(dir) == expected,
                "phase {phase}, killed after {n}: a file differs"
            );
            drop(scratch_dir);
            if finished {
                break;
            }
            // Every point early on, then every third: the operations repeat
            // per file.
            n += if n < 12 { 1 } else { 3 };
        }
        assert!(n > 5, "phase {phase}: the run did only {n} file operations");
    }
}

/// Marks the example project's email opens append-only.
fn append_only_project(tag: &str) -> tempfile::TempDir {
    let scratch_dir = scratch(tag);
    let dir = scratch_dir.path();
    let sources = dir.join("sources.toml");
    let text = std::fs::read_to_string(&sources).expect("sources.toml");
    let marked = text.replace(
        "\"data/email_opened/*.jsonl\"\n",
        "\"data/email_opened/*.jsonl\"\nappend_only = true\n",
    );
    assert_ne!(marked, text);
    std::fs::write(&sources, marked).expect("write");
    scratch_dir
}

/// A new file of opens, read incrementally by the second run.
fn append_december(dir: &std::path::Path) {
    let opens: String = (0..3)
        .map(|i| {
            format!(
                "{{\"eventId\":\"EO-900000{i}\",\"personId\":\"P-00000{}\",\"occurredAt\":\"2026-12-0{}T10:00:00Z\",\"campaign\":\"dw-nurture-2026-q4\"}}\n",
                i + 1,
                i + 1
            )
        })
        .collect();
    std::fs::write(dir.join("data/email_opened/2026-12.jsonl"), opens).expect("append december");
}

/// How the email opens were read, and the run's audiences.
fn opens(out: std::process::Output) -> (String, u64, serde_json::Value) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("a JSON report");
    let source = &report["sources"]["marketo_email_opens"];
    (
        source["incremental"]["read"]
            .as_str()
            .unwrap_or("?")
            .to_string(),
        source["rows"].as_u64().unwrap_or(0),
        report["audiences"].clone(),
    )
}

/// An append-only source's record and cache survive a kill at any step:
/// the rerun delivers what an uninterrupted pair of runs delivers, and the
/// run after it reads incrementally the rows a full read gives.
#[test]
fn a_killed_incremental_read_leaves_a_consistent_record() {
    let json = ["--format", "json"];
    let reference_dir = append_only_project("crash-incr-ref");
    let reference = reference_dir.path();
    ok(run(reference, NOW, None, &[]));
    append_december(reference);
    ok(run(reference, LATER, None, &[]));
    let expected = delivered(reference);
    let (how, rows, audiences) = opens(run(reference, LATER, None, &json));
    assert_eq!(how, "incremental");
    drop(reference_dir);

    for phase in 0..2 {
        let mut n = 0u64;
        loop {
            let scratch_dir = append_only_project("crash-incr");
            let dir = scratch_dir.path();
            if phase == 1 {
                ok(run(dir, NOW, None, &[]));
                append_december(dir);
            }
            let now = if phase == 0 { NOW } else { LATER };
            let killed = run(dir, now, Some(n), &[]);
            let finished = killed.status.success();
            ok(run(dir, now, None, &[]));
            if phase == 0 {
                append_december(dir);
                ok(run(dir, LATER, None, &[]));
            }
            assert!(
                delivered(dir) == expected,
                "phase {phase}, killed after {n}: the deliveries differ"
            );
            let (how, after, members) = opens(run(dir, LATER, None, &json));
            assert_eq!(
                (how.as_str(), after, &members),
                ("incremental", rows, &audiences),
                "phase {phase}, killed after {n}"
            );
            drop(scratch_dir);
            if finished {
                break;
            }
            // Every point through the read (its record and cache are
            // written before any delivery), then a sample of the rest,
            // which the test above covers point by point.
            n += if n < 16 { 1 } else { 16 };
        }
    }
}
