//! Run state: per activation, the last delivered membership, and the
//! crash-safe protocol that keeps it true. The records live in the run's
//! store (`crate::store`, `.accord/store.db`); this module opens it for a
//! run and computes changes between memberships.
//!
//! The records, per activation:
//! - the committed state: the rows the destination has, and the run id that
//!   delivered them;
//! - the pending record: a delivery in progress, its run id and the
//!   membership it delivers.
//!
//! The protocol, per activation:
//! 1. Compute the target membership; if it equals the committed one, stop.
//! 2. Write the pending record (one transaction): run id + target.
//! 3. Deliver the difference between committed and target under the run id
//!    (file writes are idempotent: an identical file is not rewritten).
//! 4. Commit: the pending target becomes the state and the pending record
//!    is dropped (one transaction).
//!
//! A crash anywhere leaves the old state, or the old state and a pending
//! record, or the new state. A rerun first finishes a pending record: it
//! delivers the same difference under the same run id (so only the files
//! the crash prevented are written), commits, and only then evaluates anew.
//! So every change is delivered once under one run id, nothing twice and
//! nothing lost.
//!
//! The store's format is checked when it is opened (R0104 for a newer one);
//! the JSON state files of earlier versions (`.accord/state/`) are imported
//! on first open, each checked to be its activation's and of format 1
//! (R0104 otherwise), and are never read again.

use std::path::Path;

use super::error::RunError;
use super::io::Faults;
pub use crate::store::{FORMAT, Membership, Pending, State, Store};

/// The project's store as a run uses it: a preview reads it and writes
/// nothing (not even a store that does not exist yet); a run opens it,
/// creating and migrating it on first use.
pub fn open(project_root: &Path, preview: bool, faults: &Faults) -> Result<Store, RunError> {
    let store = if preview {
        Store::peek(project_root)
    } else {
        Store::open(project_root, faults)
    };
    Ok(store?)
}

/// Members added, changed and removed between two memberships, by key.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Changes {
    pub added: Vec<String>,
    pub updated: Vec<String>,
    pub removed: Vec<String>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.updated.is_empty() && self.removed.is_empty()
    }
}

pub fn changes(old: &Membership, new: &Membership) -> Changes {
    let mut c = Changes::default();
    let same_columns = old.columns == new.columns;
    for (key, row) in &new.rows {
        match old.rows.get(key) {
            None => c.added.push(key.clone()),
            Some(prev) if prev != row || !same_columns => c.updated.push(key.clone()),
            Some(_) => {}
        }
    }
    for key in old.rows.keys() {
        if !new.rows.contains_key(key) {
            c.removed.push(key.clone());
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn m(rows: &[(&str, i64)]) -> Membership {
        Membership {
            columns: vec!["v".into()],
            rows: rows
                .iter()
                .map(|(k, v)| (k.to_string(), vec![json!(v)]))
                .collect(),
        }
    }

    #[test]
    fn changes_between_memberships() {
        let c = changes(&m(&[("a", 1), ("b", 2)]), &m(&[("b", 3), ("c", 1)]));
        assert_eq!(c.added, ["c"]);
        assert_eq!(c.updated, ["b"]);
        assert_eq!(c.removed, ["a"]);
        assert!(changes(&m(&[("a", 1)]), &m(&[("a", 1)])).is_empty());
        // New columns change every row, even with equal values.
        let mut renamed = m(&[("a", 1)]);
        renamed.columns = vec!["w".into()];
        assert_eq!(changes(&m(&[("a", 1)]), &renamed).updated, ["a"]);
    }
}
