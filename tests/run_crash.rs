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
