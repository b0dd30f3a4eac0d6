//! The change set of an activation, computed by the engine: the members
//! added, updated and removed between the committed state and the new
//! evaluation, as one join of two columnar memberships (`members`).
//!
//! In: the old members (the store's file, streamed from disk by the
//! engine, or rows in memory) and the new ones. Out: the changes as one
//! batch, `change` (`added`, `updated`, `removed`) then the new payload's
//! columns, in member order, and their counts. A member is updated when its
//! payload hash differs; a removed member keeps the values it was last
//! delivered with.
//!
//! The join runs in its own DataFusion session, whichever engine evaluated
//! the audiences: the state is local, and a remote engine would have to be
//! sent all of it.

use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::datasource::MemTable;
use datafusion::prelude::{
    Expr, JoinType, ParquetReadOptions, SessionConfig, SessionContext, ident, lit, try_cast, when,
};

use super::engine::cores;
use super::members::{HASH, MEMBER, Members};

/// Rows per batch of the in-memory side: DataFusion's batch size.
const BATCH_ROWS: usize = 8192;

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

/// The changes from `old` to `new` (see the module doc).
pub fn between(old: Old, new: &Members) -> Result<Delta, String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores())
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(join(old, new)).map_err(|e| e.to_string())
}

async fn join(old: Old<'_>, new: &Members) -> datafusion::error::Result<Delta> {
    // Text stays `Utf8` as written (not views), so both sides of the union
    // have the delivered types.
    let config = SessionConfig::new().set_bool(
        "datafusion.execution.parquet.schema_force_view_types",
        false,
    );
    let ctx = SessionContext::new_with_config(config);
    let new_df = ctx.read_table(Arc::new(in_memory(new)?))?;
    let old_df = match old {
        Old::Nothing => ctx.read_table(Arc::new(in_memory(&Members::empty())?))?,
        Old::File(path) => {
            ctx.read_parquet(file_url(path)?, ParquetReadOptions::default())
                .await?
        }
        Old::Rows(members) => ctx.read_table(Arc::new(in_memory(members)?))?,
    };
    let payload = new.columns();
    let new_schema = new.schema();
    let old_schema = old_df.schema().as_arrow().clone();

    // Added and updated: the new rows whose member is not in the old state,
    // or whose hash differs.
    let old_keys = old_df.clone().select(vec![
        ident(MEMBER).alias("__old_member"),
        ident(HASH).alias("__old_hash"),
    ])?;
    let mut changed_columns = vec![
        when(ident("__old_member").is_null(), lit("added"))
            .otherwise(lit("updated"))?
            .alias(CHANGE),
        ident(MEMBER),
    ];
    changed_columns.extend(payload.iter().map(|c| ident(c.as_str())));
    let changed = new_df
        .clone()
        .join_on(
            old_keys,
            JoinType::Left,
            [ident(MEMBER).eq(ident("__old_member"))],
        )?
        .filter(
            ident("__old_member")
                .is_null()
                .or(ident(HASH).not_eq(ident("__old_hash"))),
        )?
        .select(changed_columns)?;

    // Removed: the old rows whose member is gone, with their last values
    // under the new columns.
    let new_keys = new_df.select(vec![ident(MEMBER).alias("__new_member")])?;
    let mut removed_columns = vec![lit("removed").alias(CHANGE), ident(MEMBER)];
    for name in &payload {
        let ty = new_schema
            .field_with_name(name)
            .map_err(datafusion::error::DataFusionError::from)?
            .data_type()
            .clone();
        removed_columns.push(old_column(&old_schema, name, ty).alias(name.as_str()));
    }
    let removed = old_df
        .join_on(
            new_keys,
            JoinType::LeftAnti,
            [ident(MEMBER).eq(ident("__new_member"))],
        )?
        .select(removed_columns)?;

    let mut batches = changed
        .union(removed)?
        .sort(vec![ident(MEMBER).sort(true, false)])?
        .collect()
        .await?;
    let schema = match batches.first() {
        Some(b) => b.schema(),
        None => changes_schema(new),
    };
    batches.retain(|b| b.num_rows() > 0);
    let all = datafusion::arrow::compute::concat_batches(&schema, &batches)?;
    let (mut added, mut updated, mut removed) = (0, 0, 0);
    for change in all.column(0).as_string::<i32>().iter().flatten() {
        match change {
            "added" => added += 1,
            "updated" => updated += 1,
            _ => removed += 1,
        }
    }
    // The member column ordered the rows; the delivery does not write it.
    let keep: Vec<usize> = (0..all.num_columns()).filter(|&i| i != 1).collect();
    Ok(Delta {
        rows: all.project(&keep)?,
        added,
        updated,
        removed,
    })
}

/// `path` as a `file://` URL, every byte but the unreserved ones
/// percent-encoded: a path is taken for a glob where it holds `*`, `?` or
/// `[`, and a URL is not.
fn file_url(path: &Path) -> datafusion::error::Result<String> {
    let absolute = std::path::absolute(path)?;
    let mut url = String::from("file://");
    for byte in absolute.as_os_str().as_encoded_bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                url.push(char::from(*byte));
            }
            _ => url.push_str(&format!("%{byte:02X}")),
        }
    }
    Ok(url)
}

/// An old column under the new column's type: as it is when the types
/// agree, converted when the column's type changed since the delivery (a
/// value that does not convert is left empty), empty when the column is
/// new.
fn old_column(old: &Schema, name: &str, ty: DataType) -> Expr {
    match old.field_with_name(name) {
        Ok(field) if field.data_type() == &ty => ident(name),
        Ok(_) => try_cast(ident(name), ty),
        Err(_) => try_cast(lit(datafusion::common::ScalarValue::Null), ty),
    }
}

/// The schema of an empty change set.
fn changes_schema(new: &Members) -> Arc<Schema> {
    let mut fields = vec![
        Field::new(CHANGE, DataType::Utf8, false),
        Field::new(MEMBER, DataType::Utf8, false),
    ];
    let schema = new.schema();
    let payload = &schema.fields()[1..schema.fields().len() - 1];
    fields.extend(payload.iter().map(|f| (**f).clone()));
    Arc::new(Schema::new(fields))
}

/// Members as a table split across the cores, in batch-sized slices.
fn in_memory(members: &Members) -> datafusion::error::Result<MemTable> {
    let batch = members.batch();
    let parts = cores();
    let mut partitions: Vec<Vec<RecordBatch>> = vec![Vec::new(); parts];
    let rows = batch.num_rows();
    for (n, start) in (0..rows).step_by(BATCH_ROWS).enumerate() {
        partitions[n % parts].push(batch.slice(start, BATCH_ROWS.min(rows - start)));
    }
    partitions.retain(|p| !p.is_empty());
    if partitions.is_empty() {
        partitions.push(vec![RecordBatch::new_empty(batch.schema())]);
    }
    MemTable::try_new(batch.schema(), partitions)
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
