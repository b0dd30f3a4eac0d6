//! The one-time move from the JSON state files that came before the store.
//!
//! In: `<project>/.accord/state/`, with `<activation>.json` (a committed
//! `State`) and `<activation>.pending.json` (a `Pending` delivery), each
//! carrying its `activation` and `format` (files written before the format
//! was recorded read as format 1, which they are). Out: the same records in
//! the store, imported in the transaction that creates it, and the folder
//! renamed `.accord/state.migrated/` after that commit (kept for the user,
//! never read again). A crash between the two leaves a store that already
//! holds the import and the folder in place: the next open only renames it.
//!
//! A file that belongs to another activation or format, or is no state
//! file, is refused (R0104) and nothing is imported: read as empty it
//! would re-deliver a full backfill, read as its own it would deliver
//! changes the destination never had. The folder then stays as it is.

use std::path::{Path, PathBuf};

use rusqlite::Transaction;
use serde::de::DeserializeOwned;

use super::files::{self, FORMAT, Pending, State};
use super::{Faults, StoreError};

/// `<project>/.accord/state`.
pub fn folder(project_root: &Path) -> PathBuf {
    project_root.join(".accord").join("state")
}

/// Imports every state file of `dir` (none when it does not exist) in the
/// caller's transaction.
pub fn import(tx: &Transaction, dir: &Path) -> Result<(), StoreError> {
    for (name, path) in state_files(dir)? {
        if let Some(activation) = name.strip_suffix(".pending.json") {
            let pending: Pending = read(&path, &name, activation, |p: &Pending| {
                (&p.activation, p.format)
            })?;
            files::write_pending(tx, &pending)?;
        } else if let Some(activation) = name.strip_suffix(".json") {
            let state: State = read(&path, &name, activation, |s: &State| {
                (&s.activation, s.format)
            })?;
            files::write_state(tx, &state)?;
        }
    }
    Ok(())
}

/// Renames the imported folder out of the way, to the first free name of
/// `state.migrated`, `state.migrated.2`, ...
pub fn retire(project_root: &Path, faults: &Faults) -> Result<(), StoreError> {
    let from = folder(project_root);
    if !from.is_dir() {
        return Ok(());
    }
    let accord = project_root.join(".accord");
    let to = (1..)
        .map(|n| match n {
            1 => accord.join("state.migrated"),
            n => accord.join(format!("state.migrated.{n}")),
        })
        .find(|p| std::fs::symlink_metadata(p).is_err())
        .unwrap_or_else(|| accord.join("state.migrated"));
    faults.step();
    std::fs::rename(&from, &to).map_err(|e| StoreError::Io {
        path: ".accord/state".into(),
        reason: e.to_string(),
    })?;
    // Make the rename durable (best effort: not every system syncs folders).
    if let Ok(d) = std::fs::File::open(&accord) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// The JSON files of the folder, by name, sorted; hidden files (a temporary
/// file a killed write left) are not state.
fn state_files(dir: &Path) -> Result<Vec<(String, PathBuf)>, StoreError> {
    let io = |e: std::io::Error| StoreError::Io {
        path: ".accord/state".into(),
        reason: e.to_string(),
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(e)),
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".json") && !name.starts_with('.') {
            found.push((name, entry.path()));
        }
    }
    found.sort();
    Ok(found)
}

/// Reads one state file and proves it is `activation`'s, of this format.
fn read<T: DeserializeOwned>(
    path: &Path,
    name: &str,
    activation: &str,
    owner: impl Fn(&T) -> (&String, u32),
) -> Result<T, StoreError> {
    let shown = format!(".accord/state/{name}");
    let foreign = |why: String| StoreError::ForeignFile {
        path: shown.clone(),
        why: format!("activation `{activation}`: {why}"),
    };
    let bytes = std::fs::read(path).map_err(|e| StoreError::Io {
        path: shown.clone(),
        reason: e.to_string(),
    })?;
    let value: T = serde_json::from_slice(&bytes).map_err(|e| {
        foreign(format!(
            "the state file is not a run state of this accord: {e}"
        ))
    })?;
    let (found, format) = owner(&value);
    if found != activation {
        return Err(foreign(format!(
            "the state file holds the state of activation `{found}`"
        )));
    }
    if format != FORMAT {
        return Err(foreign(format!(
            "the state file has format {format}, and this accord reads format {FORMAT}"
        )));
    }
    Ok(value)
}
