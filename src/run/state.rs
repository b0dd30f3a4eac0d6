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
//! 2. Write the target's members file or changes file (atomically, synced),
//!    then the pending record that names it (one transaction): run id +
//!    target.
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

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, RecordBatch, StringArray, new_null_array,
};
use datafusion::arrow::compute::interleave;
use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use datafusion::parquet::basic::Compression;
use datafusion::parquet::file::metadata::KeyValue;
use datafusion::parquet::file::properties::{EnabledStatistics, WriterProperties};
use datafusion::parquet::schema::types::ColumnPath;

use super::delta::{self, Delta, Old, SinceBase};
use super::error::RunError;
use super::io::{self, Faults};
use super::member_batches::MemberBatches;
use super::members::{HASH, MEMBER, Members, stored_schema};
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

/// A record's members: files, or the JSON rows of an older store.
pub enum Rows {
    Files {
        base: PathBuf,
        /// The base's columns (from its footer).
        schema: SchemaRef,
        changes: Option<PathBuf>,
    },
    Held(Members),
}

/// The committed state or the pending record of one activation.
pub struct Record {
    pub activation: String,
    pub run_id: String,
    pub rows: Rows,
    /// How many members (read from the files' footers once).
    members: u64,
}

/// The key-value metadata of a changes file that holds how many members
/// its base and it make together.
const MEMBERS_KEY: &str = "accord:members";

impl Record {
    fn of(
        root: &Path,
        activation: &str,
        run_id: String,
        membership: &Membership,
        file: Option<String>,
        changes: Option<String>,
    ) -> Result<Record, RunError> {
        let path = |name: &str| {
            io::inside(
                &folder(root),
                name,
                "",
                &format!("activation `{activation}`"),
            )
        };
        let (rows, members) = match file {
            Some(name) => {
                let base = path(&name)?;
                // A file that is gone, or is no members file, is found here,
                // where the store is refused (R0104), not halfway through
                // the change set.
                let Footer { schema, rows, .. } = footer(activation, &base)?;
                let (changes, members) = match changes {
                    Some(name) => {
                        let changes = path(&name)?;
                        let members = footer(activation, &changes)?.members.ok_or_else(|| {
                            unreadable(
                                activation,
                                &changes,
                                format!(
                                    "it does not say how many members it makes (`{MEMBERS_KEY}`)"
                                ),
                            )
                        })?;
                        (Some(changes), members)
                    }
                    None => (None, rows),
                };
                let rows = Rows::Files {
                    base,
                    schema,
                    changes,
                };
                (rows, members)
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

    /// The members, for the change set's merge (files are streamed by it).
    pub fn old(&self) -> Old<'_> {
        match &self.rows {
            Rows::Files { base, changes, .. } => Old::Files {
                base,
                changes: changes.as_deref(),
            },
            Rows::Held(members) => Old::Rows(members),
        }
    }

    /// How many members.
    pub fn members_count(&self) -> u64 {
        self.members
    }

    /// Every member, read whole (a delivery of the full membership that a
    /// crash left to finish): the base, with the changes file applied.
    pub fn members(&self) -> Result<Members, RunError> {
        let (base, changes) = match &self.rows {
            Rows::Files { base, changes, .. } => (base, changes),
            Rows::Held(members) => return Ok(members.clone()),
        };
        let base_rows = read_whole(&self.activation, base)?;
        let Some(changes) = changes else {
            return Members::from_stored(base_rows)
                .map_err(|e| unreadable(&self.activation, base, e));
        };
        let changes_rows = read_whole(&self.activation, changes)?;
        applied(&base_rows, &changes_rows)
            .and_then(Members::from_stored)
            .map_err(|e| unreadable(&self.activation, changes, e))
    }
}

/// A members file, every row.
fn read_whole(activation: &str, path: &Path) -> Result<RecordBatch, RunError> {
    delta::read_file(path).map_err(|why| unreadable(activation, path, why))
}

/// The base's rows with the changes applied: a member's row from the
/// changes where they have it (none where it is a tombstone), else the
/// base's; both in member order, and so the result.
fn applied(base: &RecordBatch, changes: &RecordBatch) -> Result<RecordBatch, String> {
    let width = base.num_columns();
    if changes.num_columns() != width
        || (0..width)
            .any(|i| base.schema().field(i).data_type() != changes.schema().field(i).data_type())
    {
        return Err("the changes file's columns are not its base's".into());
    }
    let (base_keys, change_keys) = (
        base.column(0).as_string::<i32>(),
        changes.column(0).as_string::<i32>(),
    );
    delta::in_order(base_keys, None, "members of the base")?;
    delta::in_order(change_keys, None, "changes since the base")?;
    let change_hashes = changes.column(width - 1);
    let mut from: Vec<(usize, usize)> = Vec::with_capacity(base.num_rows());
    let (mut b, mut c) = (0, 0);
    while b < base_keys.len() || c < change_keys.len() {
        let order = match (b < base_keys.len(), c < change_keys.len()) {
            (true, true) => base_keys.value(b).cmp(change_keys.value(c)),
            (true, false) => std::cmp::Ordering::Less,
            _ => std::cmp::Ordering::Greater,
        };
        if order.is_lt() {
            from.push((0, b));
            b += 1;
            continue;
        }
        if order.is_eq() {
            b += 1;
        }
        if change_hashes.is_valid(c) {
            from.push((1, c));
        }
        c += 1;
    }
    let columns = (0..width)
        .map(|i| {
            let sides: [&dyn Array; 2] = [base.column(i).as_ref(), changes.column(i).as_ref()];
            interleave(&sides, &from).map_err(|e| e.to_string())
        })
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new(base.schema(), columns).map_err(|e| e.to_string())
}

/// What a members file's footer says.
struct Footer {
    schema: SchemaRef,
    rows: u64,
    /// A changes file's: how many members it and its base make.
    members: Option<u64>,
}

/// The footer of a members file (a base or a changes file), once its
/// columns are checked to be a membership's.
fn footer(activation: &str, path: &Path) -> Result<Footer, RunError> {
    let unreadable = |why: String| unreadable(activation, path, why);
    let reader = ParquetRecordBatchReaderBuilder::try_new(open_file(activation, path)?)
        .map_err(|e| unreadable(e.to_string()))?;
    stored_schema(reader.schema()).map_err(unreadable)?;
    let metadata = reader.metadata().file_metadata();
    let members = metadata
        .key_value_metadata()
        .into_iter()
        .flatten()
        .find(|kv| kv.key == MEMBERS_KEY)
        .and_then(|kv| kv.value.as_deref()?.parse().ok());
    Ok(Footer {
        schema: reader.schema().clone(),
        rows: u64::try_from(metadata.num_rows()).unwrap_or(0),
        members,
    })
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
    target: &MemberBatches,
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
        .map(|s| Record::of(root, activation, s.run_id, &s.membership, s.file, s.changes))
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
        pending.changes.clone(),
    )?;
    Ok(Some((pending, record)))
}

/// The name of the members file of one delivery.
fn file_name(activation: &str, run_id: &str) -> String {
    format!("{activation}.{run_id}.parquet")
}

/// The name of the changes file of one delivery.
fn changes_name(activation: &str, run_id: &str) -> String {
    format!("{activation}.{run_id}.changes.parquet")
}

/// Writes the members of a delivery (atomically, synced) and returns the
/// pending record that names them, for [`Store::begin`]. Given the
/// committed record and the change set from it, a delivery whose changes
/// against the committed base are few writes only those (a changes file
/// naming that base); else, and on a first delivery, every member (a new
/// base).
pub fn save(
    root: &Path,
    activation: &str,
    run_id: &str,
    members: &MemberBatches,
    from: Option<(&Record, &Delta)>,
    faults: &Faults,
) -> Result<Pending, RunError> {
    let mut pending = Pending {
        format: FORMAT,
        activation: activation.to_string(),
        run_id: run_id.to_string(),
        target: Membership {
            columns: members.columns(),
            rows: Default::default(),
        },
        file: None,
        changes: None,
    };
    if let Some((base, since)) = from.and_then(|(record, delta)| {
        let since = delta.since_base.as_deref()?;
        let Rows::Files { base, schema, .. } = &record.rows else {
            return None;
        };
        same_columns(schema, members.schema()).then_some((base, since))
    }) {
        let name = changes_name(activation, run_id);
        let count = KeyValue::new(MEMBERS_KEY.to_string(), members.len().to_string());
        let schema = changes_schema(members.schema());
        let rows = changes_rows(members, &schema, since);
        write_members(
            root,
            activation,
            &name,
            (&schema, rows),
            vec![count],
            faults,
        )?;
        pending.file = base.file_name().map(|n| n.to_string_lossy().into_owned());
        pending.changes = Some(name);
        return Ok(pending);
    }
    let name = file_name(activation, run_id);
    let rows = members.batches().map(|m| m.map(|m| m.batch().clone()));
    write_members(
        root,
        activation,
        &name,
        (members.schema(), rows),
        Vec::new(),
        faults,
    )?;
    pending.file = Some(name);
    Ok(pending)
}

/// Whether two members files have the same columns, of the same types.
fn same_columns(a: &Schema, b: &Schema) -> bool {
    a.fields().len() == b.fields().len()
        && a.fields()
            .iter()
            .zip(b.fields())
            .all(|(a, b)| a.name() == b.name() && a.data_type() == b.data_type())
}

/// The columns of a changes file: the members', every one but the key
/// nullable (a tombstone has no payload and no hash).
fn changes_schema(members: &SchemaRef) -> SchemaRef {
    let fields: Vec<Field> = members
        .fields()
        .iter()
        .map(|f| (**f).clone().with_nullable(f.name() != MEMBER))
        .collect();
    Arc::new(Schema::new(fields))
}

/// The rows of a changes file, a batch per batch of the members that has
/// changes: per change against the base (`since`, in member order), the
/// new member's row, or a tombstone (its key; no payload, no hash).
fn changes_rows<'a>(
    members: &'a MemberBatches,
    schema: &'a SchemaRef,
    since: &'a [SinceBase],
) -> impl Iterator<Item = Result<RecordBatch, String>> + 'a {
    let row = |change: &SinceBase| match change {
        SinceBase::Row(row) => Some(*row),
        SinceBase::Removed(_) => None,
    };
    members.alongside(since, row).map(move |group| {
        let (batch, start, since) = group?;
        let mut removed: Vec<&str> = Vec::new();
        let from: Vec<(usize, usize)> = since
            .iter()
            .map(|change| match change {
                SinceBase::Row(row) => (0, row - start),
                SinceBase::Removed(key) => {
                    removed.push(key);
                    (1, removed.len() - 1)
                }
            })
            .collect();
        let tombstones = removed.len();
        let tombstone_keys: ArrayRef = Arc::new(StringArray::from(removed));
        let rows = batch.map_or_else(
            || RecordBatch::new_empty(members.schema().clone()),
            |b| b.batch().clone(),
        );
        let columns = schema
            .fields()
            .iter()
            .enumerate()
            .map(|(i, field)| {
                // A tombstone's key is its own; its payload and hash are
                // null.
                let other = if field.name() == MEMBER {
                    tombstone_keys.clone()
                } else {
                    new_null_array(field.data_type(), tombstones)
                };
                let sides: [&dyn Array; 2] = [rows.column(i).as_ref(), other.as_ref()];
                interleave(&sides, &from).map_err(|e| e.to_string())
            })
            .collect::<Result<Vec<_>, _>>()?;
        RecordBatch::try_new(schema.clone(), columns).map_err(|e| e.to_string())
    })
}

/// Writes one members file (a base or a changes file) atomically.
fn write_members(
    root: &Path,
    activation: &str,
    name: &str,
    (schema, batches): (
        &SchemaRef,
        impl Iterator<Item = Result<RecordBatch, String>>,
    ),
    metadata: Vec<KeyValue>,
    faults: &Faults,
) -> Result<(), RunError> {
    let path = io::inside(
        &folder(root),
        name,
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
        .set_key_value_metadata(Some(metadata).filter(|m| !m.is_empty()))
        .build();
    io::write_atomic_with(&path, faults, |file| {
        let mut writer = ArrowWriter::try_new(file, schema.clone(), Some(properties))
            .map_err(std::io::Error::other)?;
        for batch in batches {
            writer
                .write(&batch.map_err(std::io::Error::other)?)
                .map_err(std::io::Error::other)?;
        }
        writer.close().map_err(std::io::Error::other)?;
        Ok(())
    })
    .map_err(|e| {
        RunError::Store(StoreError::Io {
            path: format!(".accord/members/{name}"),
            reason: e.to_string(),
        })
    })
}

/// Step 4 of the protocol: the delivered pending record becomes the
/// activation's state, then the members files no record names any more are
/// removed.
pub fn commit(
    root: &Path,
    store: &Store,
    pending: &Pending,
    faults: &Faults,
) -> Result<(), RunError> {
    store.commit(pending)?;
    tidy(root, store, &pending.activation, faults)
}

/// Removes the members files of an activation that neither its committed
/// state nor its pending record names: left by the commit just made, or by
/// a run killed before it could remove them.
fn tidy(root: &Path, store: &Store, activation: &str, faults: &Faults) -> Result<(), RunError> {
    let mut named = Vec::new();
    if let Some(state) = store.load(activation)? {
        named.extend(state.file);
        named.extend(state.changes);
    }
    if let Some(pending) = store.load_pending(activation)? {
        named.extend(pending.file);
        named.extend(pending.changes);
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
        // have none, and none is `changes`.
        let run_id = rest
            .strip_suffix(".changes.parquet")
            .or_else(|| rest.strip_suffix(".parquet"));
        let ours = run_id.is_some_and(|r| !r.contains('.') && r != "changes");
        if !ours || named.contains(&name) {
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
