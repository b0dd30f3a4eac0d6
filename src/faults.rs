//! The crash test hook, shared by every module that makes something durable
//! (the run's file writes, the store's transactions, the delivery's
//! requests).
//!
//! When the environment variable `ACCORD_FAULT_AFTER=N` is set, the process
//! aborts (as if killed) right before its N+1-th counted step. The writers
//! count every file operation (create, write, fsync, rename) and every store
//! transaction (before and after its commit), so a crash test that runs the
//! binary with N = 0, 1, 2, ... kills it between every pair of durable
//! effects and checks that a rerun delivers exactly the missing changes. The
//! CLI reads the variable once and hands it down as a value; library callers
//! leave it unset (`Faults::default()` never aborts).
//!
//! Standard library only: this is shared ground below every module that
//! writes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counts durable steps and aborts the process at the configured one.
/// Clones share one count, so the store and the file writers of one run
/// step through a single sequence.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    after: Option<u64>,
    done: Arc<AtomicU64>,
}

impl Faults {
    pub fn after(n: Option<u64>) -> Faults {
        Faults {
            after: n,
            done: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Called before every durable step.
    pub fn step(&self) {
        let done = self.done.fetch_add(1, Ordering::SeqCst);
        if let Some(after) = self.after
            && done >= after
        {
            // Abort, not exit: no destructors, no flushing, like a kill -9.
            std::process::abort();
        }
    }

    /// The steps taken so far.
    pub fn operations(&self) -> u64 {
        self.done.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_count_together_and_the_default_never_aborts() {
        let faults = Faults::default();
        let clone = faults.clone();
        faults.step();
        clone.step();
        assert_eq!(faults.operations(), 2);
        assert_eq!(Faults::after(Some(5)).operations(), 0);
    }
}
