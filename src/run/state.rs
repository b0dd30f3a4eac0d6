//! Run state: per activation, the last delivered membership, and the
//! crash-safe protocol that keeps it true. The records live in the run's
//! store (`crate::store`, `.accord/store.db`); the members they name are
//! columnar files beside it (`.accord/members/ACTIVATION.RUN_ID.parquet`:
//! member key, payload and payload hash, see `members`). This module opens
//! the store for a run and reads and writes those files; the changes
//! between two memberships are `delta`'s.
//!
//! The records, per activation:
//! - the committed state: the rows the destination has, and the run id that
//!   delivered them;
//! - the pending record: a delivery in progress, its run id and the
//!   membership it delivers.
//!
//! The protocol, per activation:
//! 1. Compute the target membership; if it equals the committed one, stop.
//! 2. Write the target's members file (atomically, synced), then the
//!    pending record that names it (one transaction): run id + target.
//! 3. Deliver the difference between committed and target under the run id
//!    (file writes are idempotent: an identical file is not rewritten).
//! 4. Commit: the pending target becomes the state and the pending record
//!    is dropped (one transaction); then the activation's files that no
//!    record names any more are removed (a crash before that leaves a file
//!    the next commit removes).
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

use std::fs::File;
use std::path::{Path, PathBuf};

use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use datafusion::parquet::basic::Compression;
use datafusion::parquet::file::properties::{EnabledStatistics, WriterProperties};
use datafusion::parquet::schema::types::ColumnPath;

use super::delta::{self, Delta, Old};
use super::error::RunError;
use super::io::{self, Faults};
use super::members::{HASH, Members, stored_schema};
use crate::store::StoreError;
pub use crate::store::{FORMAT, Membership, Pending, State, Store};

/// Rows per row group of a members file: a reader (the change set's merge)
/// streams it a group at a time.
const ROW_GROUP: usize = 1 << 20;

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

/// `<project>/.accord/members`: the members files of the records.
pub fn folder(root: &Path) -> PathBuf {
    root.join(".accord").join("members")
}

/// A record's members: a file, or the JSON rows of an older store.
pub enum Rows {
    File(PathBuf),
    Held(Members),
}

/// The committed state or the pending record of one activation.
pub struct Record {
    pub activation: String,
    pub run_id: String,
    pub rows: Rows,
    /// How many members (a file's count is read from its footer once).
    members: u64,
}

impl Record {
    fn of(
        root: &Path,
        activation: &str,
        run_id: String,
        membership: &Membership,
        file: Option<String>,
    ) -> Result<Record, RunError> {
        let (rows, members) = match file {
            Some(name) => {
                let path = io::inside(
                    &folder(root),
                    &name,
                    "",
                    &format!("activation `{activation}`"),
                )?;
                // A file that is gone, or is no members file, is found here,
                // where the store is refused (R0104), not halfway through
                // the change set.
                let members = footer_count(activation, &path)?;
                (Rows::File(path), members)
            }
            None => {
                let members =
                    Members::from_legacy(membership).map_err(|why| corrupt(activation, why))?;
                let count = members.len() as u64;
                (Rows::Held(members), count)
            }
        };
        Ok(Record {
            activation: activation.to_string(),
            run_id,
            rows,
            members,
        })
    }

    /// The members, for the change set's merge (a file is streamed by it).
    pub fn old(&self) -> Old<'_> {
        match &self.rows {
            Rows::File(path) => Old::File(path),
            Rows::Held(members) => Old::Rows(members),
        }
    }

    /// How many members.
    pub fn members_count(&self) -> u64 {
        self.members
    }

    /// Every member, read whole (a delivery of the full membership that a
    /// crash left to finish).
    pub fn members(&self) -> Result<Members, RunError> {
        let path = match &self.rows {
            Rows::File(path) => path,
            Rows::Held(members) => return Ok(members.clone()),
        };
        let unreadable = |why: String| unreadable(&self.activation, path, why);
        let reader = ParquetRecordBatchReaderBuilder::try_new(open_file(&self.activation, path)?)
            .and_then(|b| b.build())
            .map_err(|e| unreadable(e.to_string()))?;
        let schema = datafusion::arrow::record_batch::RecordBatchReader::schema(&reader);
        let batches = reader
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| unreadable(e.to_string()))?;
        let batch = datafusion::arrow::compute::concat_batches(&schema, &batches)
            .map_err(|e| unreadable(e.to_string()))?;
        Members::from_stored(batch).map_err(unreadable)
    }
}

/// The members in a file, from its footer, once its columns are checked to
/// be a membership's.
fn footer_count(activation: &str, path: &Path) -> Result<u64, RunError> {
    let unreadable = |why: String| unreadable(activation, path, why);
    let reader = ParquetRecordBatchReaderBuilder::try_new(open_file(activation, path)?)
        .map_err(|e| unreadable(e.to_string()))?;
    stored_schema(reader.schema()).map_err(unreadable)?;
    Ok(u64::try_from(reader.metadata().file_metadata().num_rows()).unwrap_or(0))
}

fn open_file(activation: &str, path: &Path) -> Result<File, RunError> {
    File::open(path).map_err(|e| unreadable(activation, path, e.to_string()))
}

fn unreadable(activation: &str, path: &Path, why: String) -> RunError {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    corrupt(
        activation,
        format!("the members file `.accord/members/{name}`: {why}"),
    )
}

/// The changes from an activation's committed state (none: its first
/// delivery) to `target`. The old members that cannot be read, or are out
/// of member order, are the store's problem (R0104), not the run's.
pub fn changes(
    activation: &str,
    committed: Option<&Record>,
    target: &Members,
) -> Result<Delta, RunError> {
    let old = committed.map_or(Old::Nothing, Record::old);
    delta::between(old, target).map_err(|why| corrupt(activation, why))
}

fn corrupt(activation: &str, why: String) -> RunError {
    RunError::Store(StoreError::Corrupt {
        activation: activation.to_string(),
        why,
    })
}

/// The committed state of an activation.
pub fn committed(root: &Path, store: &Store, activation: &str) -> Result<Option<Record>, RunError> {
    store
        .load(activation)?
        .map(|s| Record::of(root, activation, s.run_id, &s.membership, s.file))
        .transpose()
}

/// The delivery in progress of an activation: its record as the store
/// holds it, and its members.
pub fn pending(
    root: &Path,
    store: &Store,
    activation: &str,
) -> Result<Option<(Pending, Record)>, RunError> {
    let Some(pending) = store.load_pending(activation)? else {
        return Ok(None);
    };
    let record = Record::of(
        root,
        activation,
        pending.run_id.clone(),
        &pending.target,
        pending.file.clone(),
    )?;
    Ok(Some((pending, record)))
}

/// The name of the members file of one delivery.
fn file_name(activation: &str, run_id: &str) -> String {
    format!("{activation}.{run_id}.parquet")
}

/// Writes the members of a delivery to their file (atomically, synced)
/// and returns the pending record that names it, for [`Store::begin`].
pub fn save(
    root: &Path,
    activation: &str,
    run_id: &str,
    members: &Members,
    faults: &Faults,
) -> Result<Pending, RunError> {
    let name = file_name(activation, run_id);
    let path = io::inside(
        &folder(root),
        &name,
        "",
        &format!("activation `{activation}`"),
    )?;
    // LZ4: the file is read back on every run, so decoding speed counts
    // more than its size; the hashes do not compress, and keys and hashes
    // are unique, so neither gets a dictionary; nothing reads statistics
    // (the change set reads every key and hash).
    let properties = WriterProperties::builder()
        .set_compression(Compression::LZ4_RAW)
        .set_column_compression(ColumnPath::from(HASH), Compression::UNCOMPRESSED)
        .set_dictionary_enabled(false)
        .set_column_dictionary_enabled(ColumnPath::from("audience"), true)
        .set_statistics_enabled(EnabledStatistics::None)
        .set_max_row_group_row_count(Some(ROW_GROUP))
        .build();
    let batch = members.batch();
    io::write_atomic_with(&path, faults, |file| {
        let mut writer = ArrowWriter::try_new(file, batch.schema(), Some(properties))
            .map_err(std::io::Error::other)?;
        writer.write(batch).map_err(std::io::Error::other)?;
        writer.close().map_err(std::io::Error::other)?;
        Ok(())
    })
    .map_err(|e| {
        RunError::Store(StoreError::Io {
            path: format!(".accord/members/{name}"),
            reason: e.to_string(),
        })
    })?;
    Ok(Pending {
        format: FORMAT,
        activation: activation.to_string(),
        run_id: run_id.to_string(),
        target: Membership {
            columns: members.columns(),
            rows: Default::default(),
        },
        file: Some(name),
    })
}

/// Removes the members files of an activation that neither its committed
/// state nor its pending record names: left by the commit just made, or by
/// a run killed before it could remove them.
pub fn tidy(root: &Path, store: &Store, activation: &str, faults: &Faults) -> Result<(), RunError> {
    let mut named = Vec::new();
    if let Some(state) = store.load(activation)? {
        named.extend(state.file);
    }
    if let Some(pending) = store.load_pending(activation)? {
        named.extend(pending.file);
    }
    let dir = folder(root);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(());
    };
    let prefix = format!("{activation}.");
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        // A temporary file a killed write left is `.NAME.tmp`.
        let written = name
            .strip_prefix('.')
            .and_then(|n| n.strip_suffix(".tmp"))
            .unwrap_or(&name);
        let Some(rest) = written.strip_prefix(&prefix) else {
            continue;
        };
        // Another activation's file would have a dot in what follows the
        // prefix before the run id (`a.b.RUN.parquet` for `a`); run ids
        // have none.
        if rest.matches('.').count() != 1 || named.contains(&name) {
            continue;
        }
        io::remove(&entry.path(), faults).map_err(|e| {
            RunError::Store(StoreError::Io {
                path: format!(".accord/members/{name}"),
                reason: e.to_string(),
            })
        })?;
    }
    Ok(())
}
