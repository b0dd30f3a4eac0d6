//! Run state: per activation, the last delivered membership, and the
//! crash-safe protocol that keeps it true.
//!
//! Files, under `<project>/.accord/state/`:
//! - `<activation>.json`: the committed state, the rows the destination has.
//! - `<activation>.pending.json`: a delivery in progress: its run id and the
//!   membership it delivers.
//!
//! The protocol, per activation:
//! 1. Compute the target membership; if it equals the committed one, stop.
//! 2. Write the pending record (atomic): run id + target.
//! 3. Deliver the difference between committed and target under the run id
//!    (file writes are idempotent: an identical file is not rewritten).
//! 4. Commit: write the target as the new state (atomic), remove the pending
//!    record.
//!
//! A crash anywhere leaves the old state, or the old state and a pending
//! record, or the new state (and perhaps a stale pending record equal to it).
//! A rerun first finishes a pending record: it delivers the same difference
//! under the same run id (so only the files the crash prevented are written),
//! commits, and only then evaluates anew. So every change is delivered once
//! under one run id, nothing twice and nothing lost.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::io::{self, Faults};

/// Destination rows by member key (account key or person key).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Membership {
    pub columns: Vec<String>,
    pub rows: BTreeMap<String, Vec<Value>>,
}

/// What the destination holds after a committed delivery.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub activation: String,
    pub run_id: String,
    pub membership: Membership,
}

/// A delivery in progress.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pending {
    pub activation: String,
    pub run_id: String,
    pub target: Membership,
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

/// Where the state files of a project live.
#[derive(Clone, Debug)]
pub struct Store {
    pub dir: PathBuf,
}

impl Store {
    pub fn new(project_root: &Path) -> Store {
        Store {
            dir: project_root.join(".accord").join("state"),
        }
    }

    fn path(&self, activation: &str, suffix: &str) -> PathBuf {
        self.dir.join(format!("{activation}{suffix}.json"))
    }

    pub fn load(&self, activation: &str) -> Result<Option<State>, String> {
        read_json(&self.path(activation, ""))
    }

    pub fn load_pending(&self, activation: &str) -> Result<Option<Pending>, String> {
        read_json(&self.path(activation, ".pending"))
    }

    pub fn begin(&self, pending: &Pending, faults: &Faults) -> Result<(), String> {
        write_json(&self.path(&pending.activation, ".pending"), pending, faults)
    }

    /// Commits a delivered pending record as the new state.
    pub fn commit(&self, pending: &Pending, faults: &Faults) -> Result<(), String> {
        let state = State {
            activation: pending.activation.clone(),
            run_id: pending.run_id.clone(),
            membership: pending.target.clone(),
        };
        write_json(&self.path(&pending.activation, ""), &state, faults)?;
        io::remove(&self.path(&pending.activation, ".pending"), faults)
            .map_err(|e| format!("{}: {e}", self.dir.display()))
    }
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>, String> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| format!("{}: unreadable run state: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

fn write_json<T: Serialize>(path: &Path, value: &T, faults: &Faults) -> Result<(), String> {
    let bytes = serde_json::to_vec(value).map_err(|e| e.to_string())?;
    io::write_atomic(path, &bytes, faults).map_err(|e| format!("{}: {e}", path.display()))
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
    }

    #[test]
    fn pending_then_commit() {
        let dir = std::env::temp_dir().join(format!("accord-state-{}", std::process::id()));
        let store = Store { dir: dir.clone() };
        let faults = Faults::default();
        assert_eq!(store.load("x").unwrap(), None);
        let p = Pending {
            activation: "x".into(),
            run_id: "r1".into(),
            target: m(&[("a", 1)]),
        };
        store.begin(&p, &faults).unwrap();
        assert_eq!(store.load_pending("x").unwrap(), Some(p.clone()));
        store.commit(&p, &faults).unwrap();
        assert_eq!(store.load_pending("x").unwrap(), None);
        assert_eq!(store.load("x").unwrap().unwrap().membership, p.target);
        let _ = std::fs::remove_dir_all(dir);
    }
}
