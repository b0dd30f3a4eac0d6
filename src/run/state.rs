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
//!
//! Every file carries its `activation` and a `format` version, and both are
//! checked on reading (R0104): a file copied from another activation, or
//! written by another format, is refused rather than read as this
//! activation's state or as no state at all, either of which would deliver
//! changes the destination never had. Files written before the version was
//! recorded read as format 1, which they are. File names are built from
//! activation names through `io::inside` (R0101).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::RunError;
use super::io::{self, Faults};

/// The format of the state files this accord reads and writes.
pub const FORMAT: u32 = 1;

fn format_one() -> u32 {
    FORMAT
}

/// Destination rows by member key (account key or person key).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Membership {
    pub columns: Vec<String>,
    pub rows: BTreeMap<String, Vec<Value>>,
}

/// What the destination holds after a committed delivery.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct State {
    #[serde(default = "format_one")]
    pub format: u32,
    pub activation: String,
    pub run_id: String,
    pub membership: Membership,
}

/// A delivery in progress.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pending {
    #[serde(default = "format_one")]
    pub format: u32,
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

/// What every state file says about itself, checked before it is used.
trait Owned {
    fn owner(&self) -> (&str, u32);
}

impl Owned for State {
    fn owner(&self) -> (&str, u32) {
        (&self.activation, self.format)
    }
}

impl Owned for Pending {
    fn owner(&self) -> (&str, u32) {
        (&self.activation, self.format)
    }
}

impl Store {
    pub fn new(project_root: &Path) -> Store {
        Store {
            dir: project_root.join(".accord").join("state"),
        }
    }

    fn path(&self, activation: &str, suffix: &str) -> Result<PathBuf, RunError> {
        io::inside(
            &self.dir,
            activation,
            &format!("{suffix}.json"),
            &format!("activation `{activation}`"),
        )
    }

    pub fn load(&self, activation: &str) -> Result<Option<State>, RunError> {
        read_json(&self.path(activation, "")?, activation)
    }

    pub fn load_pending(&self, activation: &str) -> Result<Option<Pending>, RunError> {
        read_json(&self.path(activation, ".pending")?, activation)
    }

    pub fn begin(&self, pending: &Pending, faults: &Faults) -> Result<(), RunError> {
        write_json(
            &self.path(&pending.activation, ".pending")?,
            pending,
            faults,
        )
    }

    /// Commits a delivered pending record as the new state.
    pub fn commit(&self, pending: &Pending, faults: &Faults) -> Result<(), RunError> {
        let state = State {
            format: FORMAT,
            activation: pending.activation.clone(),
            run_id: pending.run_id.clone(),
            membership: pending.target.clone(),
        };
        write_json(&self.path(&pending.activation, "")?, &state, faults)?;
        self.abandon(&pending.activation, faults)
    }

    /// Removes the pending record of an activation (after its commit, or
    /// after a delivery that failed: the state was not advanced, so the next
    /// run computes the changes anew).
    pub fn abandon(&self, activation: &str, faults: &Faults) -> Result<(), RunError> {
        let path = self.path(activation, ".pending")?;
        io::remove(&path, faults).map_err(|e| write_failed(&path, activation, &e))
    }
}

/// `.accord/state/NAME.json`, as messages show it (relative to the project).
fn shown(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!(".accord/state/{name}")
}

fn write_failed(path: &Path, activation: &str, e: &dyn std::fmt::Display) -> RunError {
    RunError::State {
        activation: activation.to_string(),
        path: shown(path),
        writing: true,
        reason: e.to_string(),
    }
}

fn read_json<T: for<'de> Deserialize<'de> + Owned>(
    path: &Path,
    activation: &str,
) -> Result<Option<T>, RunError> {
    let foreign = |why: String| RunError::ForeignState {
        activation: activation.to_string(),
        path: shown(path),
        why,
    };
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(RunError::State {
                activation: activation.to_string(),
                path: shown(path),
                writing: false,
                reason: e.to_string(),
            });
        }
    };
    let value: T = serde_json::from_slice(&bytes).map_err(|e| {
        foreign(format!(
            "the state file is not a run state of this accord: {e}"
        ))
    })?;
    let (owner, format) = value.owner();
    if owner != activation {
        return Err(foreign(format!(
            "the state file holds the state of activation `{owner}`"
        )));
    }
    if format != FORMAT {
        return Err(foreign(format!(
            "the state file has format {format}, and this accord reads format {FORMAT}"
        )));
    }
    Ok(Some(value))
}

fn write_json<T: Serialize + Owned>(
    path: &Path,
    value: &T,
    faults: &Faults,
) -> Result<(), RunError> {
    let activation = value.owner().0;
    let bytes = serde_json::to_vec(value).map_err(|e| write_failed(path, activation, &e))?;
    io::write_atomic(path, &bytes, faults).map_err(|e| write_failed(path, activation, &e))
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
            format: FORMAT,
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

    #[test]
    fn foreign_state_is_refused() {
        let dir = std::env::temp_dir().join(format!("accord-state-foreign-{}", std::process::id()));
        let store = Store { dir: dir.clone() };
        let faults = Faults::default();
        let p = Pending {
            format: FORMAT,
            activation: "other".into(),
            run_id: "r1".into(),
            target: m(&[("a", 1)]),
        };
        store.begin(&p, &faults).unwrap();
        store.commit(&p, &faults).unwrap();
        // Another activation's state, copied over this one's.
        std::fs::copy(dir.join("other.json"), dir.join("mine.json")).unwrap();
        let refused = store.load("mine").unwrap_err().diagnostic();
        assert_eq!(refused.code, "R0104");
        assert!(
            refused.message.contains("activation `other`"),
            "{}",
            refused.message
        );
        // A later format, and a file that is no state at all.
        let text = std::fs::read_to_string(dir.join("other.json")).unwrap();
        std::fs::write(
            dir.join("other.json"),
            text.replace("\"format\":1", "\"format\":2"),
        )
        .unwrap();
        assert!(
            store
                .load("other")
                .unwrap_err()
                .diagnostic()
                .message
                .contains("format 2")
        );
        std::fs::write(dir.join("mine.pending.json"), "{}").unwrap();
        assert_eq!(
            store.load_pending("mine").unwrap_err().diagnostic().code,
            "R0104"
        );
        // A file without a format (written before it was recorded) is format 1.
        std::fs::write(
            dir.join("old.json"),
            r#"{"activation":"old","run_id":"r0","membership":{"columns":[],"rows":{}}}"#,
        )
        .unwrap();
        assert_eq!(store.load("old").unwrap().unwrap().format, FORMAT);
        // Hostile names never reach the file system.
        assert_eq!(
            store.load("../../escape").unwrap_err().diagnostic().code,
            "R0101"
        );
        assert_eq!(store.load("").unwrap_err().diagnostic().code, "R0101");
        let _ = std::fs::remove_dir_all(dir);
    }
}
