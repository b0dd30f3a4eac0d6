//! The change set of an activation: the members added, updated and
//! removed between the committed state and the new evaluation, as one merge
//! join of two columnar memberships (`members`), both in member order.
//!
//! In: the old members (the store's file, or rows in memory) and the new
//! ones. Out: the changes as one batch, `change` (`added`, `updated`,
//! `removed`) then the new payload's columns, in member order, and their
//! counts. A member is updated when its payload hash differs; a removed
//! member keeps the values it was last delivered with.
//!
//! Why a merge and not the engine's hash join: both sides are already
//! sorted by member (a members file is written so), so one pass over the
//! keys and hashes finds every change. The old file is read twice, neither
//! time whole: first its key and hash columns, a batch at a time, then the
//! payload of the removed members only (a row selection, so the pages of
//! the others are skipped). DataFusion's hash join of the same two sides
//! took 16.9 s at 10M members; the merge takes a fraction of a second
//! (`benches/state.rs`, figures in `docs/scale.md`).

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, FixedSizeBinaryArray, RecordBatch, StringArray, new_null_array,
};
use datafusion::arrow::compute::{
    CastOptions, cast_with_options, concat_batches, interleave, take_record_batch,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::parquet::arrow::ProjectionMask;
use datafusion::parquet::arrow::arrow_reader::{ParquetRecordBatchReaderBuilder, RowSelection};

use super::members::Members;

/// Rows per batch read from a members file.
const BATCH_ROWS: usize = 64 * 1024;

/// The column that says what changed.
pub const CHANGE: &str = "change";

/// Where the old members are.
pub enum Old<'a> {
    /// No delivery yet.
    Nothing,
    /// The store's file of the committed state.
    File(&'a Path),
    /// Members in memory (a store of JSON rows, before the columnar state).
    Rows(&'a Members),
}

/// The changes between two memberships.
#[derive(Debug)]
pub struct Delta {
    /// `change`, then the new payload's columns; one row per changed
    /// member, in member order.
    pub rows: RecordBatch,
    pub added: u64,
    pub updated: u64,
    pub removed: u64,
}

impl Delta {
    pub fn is_empty(&self) -> bool {
        self.rows.num_rows() == 0
    }
}

/// One change, by where its row is: the new members' row, or the removed
/// members' row.
#[derive(Clone, Copy)]
enum Change {
    Added(usize),
    Updated(usize),
    Removed(usize),
}

/// The changes from `old` to `new` (see the module doc).
pub fn between(old: Old, new: &Members) -> Result<Delta, String> {
    let new_keys = new.keys();
    let new_hashes = new.hashes();
    let mut changes: Vec<Change> = Vec::new();
    // The old rows that are removed (their positions in the old members).
    let mut gone: Vec<usize> = Vec::new();
    let mut next = 0;
    let mut position = 0;
    let mut last: Option<String> = None;
    let mut merge = |keys: &StringArray, hashes: &FixedSizeBinaryArray| -> Result<(), String> {
        for i in 0..keys.len() {
            let key = keys.value(i);
            let previous = if i > 0 {
                Some(keys.value(i - 1))
            } else {
                last.as_deref()
            };
            if previous.is_some_and(|p| p >= key) {
                return Err(format!(
                    "the old members are not in member order at `{key}`"
                ));
            }
            while next < new_keys.len() && new_keys.value(next) < key {
                changes.push(Change::Added(next));
                next += 1;
            }
            if next < new_keys.len() && new_keys.value(next) == key {
                if new_hashes.value(next) != hashes.value(i) {
                    changes.push(Change::Updated(next));
                }
                next += 1;
            } else {
                changes.push(Change::Removed(gone.len()));
                gone.push(position);
            }
            position += 1;
            if i + 1 == keys.len() {
                last = Some(key.to_string());
            }
        }
        Ok(())
    };
    match &old {
        Old::Nothing => {}
        Old::Rows(members) => merge(members.keys(), members.hashes())?,
        Old::File(path) => {
            let reader = open(path)?;
            let schema = reader.parquet_schema();
            let width = reader.schema().fields().len();
            let keys_and_hashes = ProjectionMask::roots(schema, [0, width - 1]);
            let batches = reader
                .with_projection(keys_and_hashes)
                .with_batch_size(BATCH_ROWS)
                .build()
                .map_err(|e| e.to_string())?;
            for batch in batches {
                let batch = batch.map_err(|e| e.to_string())?;
                merge(
                    batch.column(0).as_string::<i32>(),
                    batch.column(1).as_fixed_size_binary(),
                )?;
            }
        }
    }
    changes.extend((next..new_keys.len()).map(Change::Added));
    let removed = removed_rows(&old, &gone, new)?;
    let payload = new.payload();
    let (mut added, mut updated) = (0, 0);
    let mut change_names = Vec::with_capacity(changes.len());
    let mut from: Vec<(usize, usize)> = Vec::with_capacity(changes.len());
    for change in &changes {
        let (name, at) = match *change {
            Change::Added(row) => {
                added += 1;
                ("added", (0, row))
            }
            Change::Updated(row) => {
                updated += 1;
                ("updated", (0, row))
            }
            Change::Removed(row) => ("removed", (1, row)),
        };
        change_names.push(name);
        from.push(at);
    }
    let mut columns: Vec<ArrayRef> = vec![Arc::new(StringArray::from(change_names))];
    for (c, column) in payload.columns().iter().enumerate() {
        let sides: [&dyn Array; 2] = [column.as_ref(), removed.column(c).as_ref()];
        columns.push(interleave(&sides, &from).map_err(|e| e.to_string())?);
    }
    let mut fields = vec![Field::new(CHANGE, DataType::Utf8, false)];
    fields.extend(payload.schema().fields().iter().map(|f| (**f).clone()));
    let rows =
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(|e| e.to_string())?;
    Ok(Delta {
        rows,
        added,
        updated,
        removed: gone.len() as u64,
    })
}

fn open(path: &Path) -> Result<ParquetRecordBatchReaderBuilder<File>, String> {
    let file = File::open(path).map_err(|e| e.to_string())?;
    ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| e.to_string())
}

/// The payload of the removed old members (at `gone`, in order) under the
/// new payload's columns.
fn removed_rows(old: &Old, gone: &[usize], new: &Members) -> Result<RecordBatch, String> {
    let payload = match old {
        Old::Nothing => None,
        _ if gone.is_empty() => None,
        Old::Rows(members) => {
            let indices = datafusion::arrow::array::UInt64Array::from_iter_values(
                gone.iter().map(|&i| i as u64),
            );
            Some(take_record_batch(&members.payload(), &indices).map_err(|e| e.to_string())?)
        }
        Old::File(path) => {
            let reader = open(path)?;
            let total = usize::try_from(reader.metadata().file_metadata().num_rows())
                .map_err(|e| e.to_string())?;
            let width = reader.schema().fields().len();
            let payload_columns = ProjectionMask::roots(reader.parquet_schema(), 1..width - 1);
            let selection =
                RowSelection::from_consecutive_ranges(gone.iter().map(|&i| i..i + 1), total);
            let batches = reader
                .with_projection(payload_columns)
                .with_row_selection(selection)
                .with_batch_size(BATCH_ROWS)
                .build()
                .map_err(|e| e.to_string())?;
            let schema = datafusion::arrow::record_batch::RecordBatchReader::schema(&batches);
            let batches = batches
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| e.to_string())?;
            Some(concat_batches(&schema, &batches).map_err(|e| e.to_string())?)
        }
    };
    // Under the new columns: as it is where the types agree, converted where
    // the column's type changed since the delivery (a value that does not
    // convert is left empty), empty where the column is new.
    let target = new.payload().schema();
    let safe = CastOptions {
        safe: true,
        ..CastOptions::default()
    };
    let columns = target
        .fields()
        .iter()
        .map(|field| {
            let column = payload
                .as_ref()
                .and_then(|p| p.column_by_name(field.name()));
            match column {
                Some(c) if c.data_type() == field.data_type() => Ok(c.clone()),
                Some(c) => cast_with_options(c, field.data_type(), &safe)
                    .or_else(|_| Ok(new_null_array(field.data_type(), gone.len()))),
                None => Ok(new_null_array(field.data_type(), gone.len())),
            }
        })
        .collect::<Result<Vec<_>, String>>()?;
    RecordBatch::try_new_with_options(
        target,
        columns,
        &datafusion::arrow::record_batch::RecordBatchOptions::new()
            .with_row_count(Some(gone.len())),
    )
    .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{ArrayRef, Int64Array, StringArray};

    use super::*;
    use crate::run::columns;

    fn members(rows: &[(&str, i64)], column: &str) -> Members {
        let payload = columns::assemble(
            &["audience".to_string(), column.to_string()],
            vec![
                Arc::new(StringArray::from(
                    rows.iter().map(|_| "a").collect::<Vec<_>>(),
                )) as ArrayRef,
                Arc::new(Int64Array::from(
                    rows.iter().map(|(_, v)| *v).collect::<Vec<_>>(),
                )),
            ],
            rows.len(),
        )
        .expect("a batch");
        Members::new(
            StringArray::from(
                rows.iter()
                    .map(|(k, _)| format!("a/{k}"))
                    .collect::<Vec<_>>(),
            ),
            &payload,
        )
        .expect("members")
    }

    fn changes(delta: &Delta) -> Vec<String> {
        let change = delta.rows.column(0).as_string::<i32>();
        let value = delta.rows.column(2);
        (0..delta.rows.num_rows())
            .map(|i| format!("{}:{}", change.value(i), crate::run::engine::cell(value, i)))
            .collect()
    }

    #[test]
    fn added_updated_and_removed_in_member_order() {
        let old = members(&[("1", 1), ("2", 2), ("4", 4)], "v");
        let new = members(&[("2", 20), ("3", 3), ("4", 4)], "v");
        let delta = between(Old::Rows(&old), &new).expect("a delta");
        assert_eq!(changes(&delta), ["removed:1", "updated:20", "added:3"]);
        assert_eq!((delta.added, delta.updated, delta.removed), (1, 1, 1));
        let same = between(Old::Rows(&new), &new).expect("a delta");
        assert!(same.is_empty());
        let first = between(Old::Nothing, &new).expect("a delta");
        assert_eq!(first.added, 3);
    }

    /// The committed members are read from their file wherever the project
    /// is, even in a folder whose name the engine could take for a glob or
    /// a URL.
    #[test]
    fn the_old_members_come_from_their_file() {
        let scratch = tempfile::Builder::new()
            .prefix("accord delta [a] %20 ")
            .tempdir()
            .expect("a folder");
        let old = members(&[("1", 1), ("2", 2)], "v");
        let faults = crate::faults::Faults::default();
        let pending =
            crate::run::state::save(scratch.path(), "files", "r1", &old, &faults).expect("saved");
        let path = crate::run::state::folder(scratch.path()).join(pending.file.expect("a file"));
        let new = members(&[("2", 3)], "v");
        let delta = between(Old::File(&path), &new).expect("a delta");
        assert_eq!(changes(&delta), ["removed:1", "updated:3"]);
    }

    /// Against the changes a map of every member finds, on memberships of
    /// every shape (empty, disjoint, equal, interleaved), from memory and
    /// from a file.
    #[test]
    fn the_merge_finds_what_maps_find() {
        let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
        let mut random = move |below: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % below
        };
        let scratch = tempfile::tempdir().expect("a folder");
        let faults = crate::faults::Faults::default();
        for round in 0..40 {
            let mut pick = |n: u64| -> std::collections::BTreeMap<String, i64> {
                (0..random(n + 1))
                    .map(|_| (format!("{:04}", random(400)), random(3) as i64))
                    .collect()
            };
            let (old_rows, new_rows) = (pick(300), pick(300));
            let as_members = |rows: &std::collections::BTreeMap<String, i64>| {
                let rows: Vec<(&str, i64)> = rows.iter().map(|(k, v)| (k.as_str(), *v)).collect();
                members(&rows, "v")
            };
            let (old, new) = (as_members(&old_rows), as_members(&new_rows));
            let mut expected = Vec::new();
            for key in old_rows
                .keys()
                .chain(new_rows.keys())
                .collect::<std::collections::BTreeSet<_>>()
            {
                match (old_rows.get(key), new_rows.get(key)) {
                    (None, Some(v)) => expected.push(format!("added:{v}")),
                    (Some(o), Some(v)) if o != v => expected.push(format!("updated:{v}")),
                    (Some(o), None) => expected.push(format!("removed:{o}")),
                    _ => {}
                }
            }
            let in_memory = between(Old::Rows(&old), &new).expect("a delta");
            assert_eq!(changes(&in_memory), expected, "round {round}, in memory");
            let run_id = format!("r{round}");
            let pending = crate::run::state::save(scratch.path(), "files", &run_id, &old, &faults)
                .expect("saved");
            let path =
                crate::run::state::folder(scratch.path()).join(pending.file.expect("a file"));
            let from_file = between(Old::File(&path), &new).expect("a delta");
            assert_eq!(changes(&from_file), expected, "round {round}, from a file");
            assert_eq!(
                from_file.added + from_file.updated + from_file.removed,
                expected.len() as u64
            );
        }
    }

    /// Old members out of member order (a file written by hand, or
    /// damaged) are refused, not merged into wrong changes.
    #[test]
    fn old_members_out_of_order_are_refused() {
        let unsorted = members(&[("2", 2), ("1", 1)], "v");
        let new = members(&[("1", 1)], "v");
        let refused = between(Old::Rows(&unsorted), &new).expect_err("refused");
        assert!(
            refused.contains("not in member order at `a/1`"),
            "{refused}"
        );
    }

    /// New columns update every member; a removed member's value in a
    /// column it never had is empty.
    #[test]
    fn renamed_columns_update_everyone() {
        let old = members(&[("1", 1), ("2", 2)], "v");
        let new = members(&[("2", 2)], "w");
        let delta = between(Old::Rows(&old), &new).expect("a delta");
        assert_eq!(changes(&delta), ["removed:null", "updated:2"]);
    }
}
