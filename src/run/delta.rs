//! The change set of an activation: the members added, updated and
//! removed between the committed state and the new evaluation, as one merge
//! join of columnar memberships (`members`), all in member order.
//!
//! In: the old members (the store's files, or rows in memory) and the new
//! ones. Out: the changes, in member order, and their counts; as rows
//! (`Delta::rows`: `change`, that is `added`, `updated` or `removed`, then
//! the new payload's columns) only when asked. A member is updated when its payload hash differs; a removed
//! member keeps the values it was last delivered with.
//!
//! The old members in files are a base file (every member, as one delivery
//! wrote them) and, optionally, a changes file against it: the members
//! added or updated since (their rows) and removed since (a tombstone: a
//! key with no hash). The same pass that finds the changes from the old
//! members also finds the new members' changes against the base
//! ([`Delta::since_base`]): what the next changes file holds, so a
//! delivery that changes few members writes few rows (`state::save`).
//!
//! The new members come as batches (`member_batches`, held or spilled),
//! and are read a batch at a time like the files; a change refers to a new
//! member by its place among all of them.
//!
//! Why a merge and not the engine's hash join: every side is already
//! sorted by member (a members file is written so), so one pass over the
//! keys and hashes finds every change. The base file is read twice,
//! neither time whole: first its key and hash columns, a batch at a time,
//! then the payload of the removed members only (a row selection, so the
//! pages of the others are skipped). DataFusion's hash join of the same two
//! sides took 16.9 s at 10M members; the merge takes a fraction of a
//! second (`benches/state.rs`, figures in `docs/scale.md`).

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, FixedSizeBinaryArray, RecordBatch, StringArray, UInt64Array,
    new_null_array,
};
use datafusion::arrow::compute::{
    CastOptions, cast_with_options, concat_batches, interleave, take_record_batch,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::{RecordBatchOptions, RecordBatchReader};
use datafusion::parquet::arrow::ProjectionMask;
use datafusion::parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ParquetRecordBatchReaderBuilder, RowSelection,
};
use rayon::prelude::*;

use super::member_batches::MemberBatches;
use super::members::{HASH_BYTES, Members, payload_schema};

/// Rows per batch read from a members file.
const BATCH_ROWS: usize = 64 * 1024;

/// A changes file is kept while it holds at most one row per this many
/// members of its base; past that, a delivery writes a new base instead,
/// so reading the old members never costs much more than the base alone.
pub const BASE_SHARE: u64 = 10;

/// The column that says what changed.
pub const CHANGE: &str = "change";

/// Where the old members are.
pub enum Old<'a> {
    /// No delivery yet.
    Nothing,
    /// The store's files of the committed state: a base file and the
    /// changes file applied to it, if any.
    Files {
        base: &'a Path,
        changes: Option<&'a Path>,
    },
    /// Members in memory (a store of JSON rows, before the columnar state).
    Rows(&'a Members),
}

/// The changes between two memberships.
#[derive(Debug)]
pub struct Delta {
    /// Where each change's row is, in member order.
    changes: Vec<Change>,
    /// The removed members' last delivered payload, in member order.
    removed_rows: RecordBatch,
    pub added: u64,
    pub updated: u64,
    pub removed: u64,
    /// The new members' changes against the old members' base file, in
    /// member order; `None` when the old members are not in a file, or
    /// when these changes outgrow [`BASE_SHARE`].
    pub since_base: Option<Vec<SinceBase>>,
}

impl Delta {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// The columns of [`Delta::rows`]: `change`, then the payload's.
    pub fn rows_schema(new: &MemberBatches) -> SchemaRef {
        let mut fields = vec![Field::new(CHANGE, DataType::Utf8, false)];
        fields.extend(
            payload_schema(new.schema())
                .fields()
                .iter()
                .map(|f| (**f).clone()),
        );
        Arc::new(Schema::new(fields))
    }

    /// The changes as rows ([`Delta::rows_schema`]): `change` (`added`,
    /// `updated`, `removed`), then the payload's columns of `new` (the
    /// members the changes were found against); one row per changed
    /// member, in member order, a batch per batch of `new` that has
    /// changes. Made when asked, for an incremental export's files, as
    /// the files are encoded: a full export never holds a second copy of
    /// its members' payload, and an incremental one a batch of it.
    pub fn rows<'a>(
        &'a self,
        new: &'a MemberBatches,
    ) -> impl Iterator<Item = Result<RecordBatch, String>> + 'a {
        let schema = Delta::rows_schema(new);
        let row = |change: &Change| match *change {
            Change::Added(row) | Change::Updated(row) => Some(row),
            Change::Removed(_) => None,
        };
        new.alongside(&self.changes, row).map(move |group| {
            let (batch, start, changes) = group?;
            let (names, from): (Vec<&str>, Vec<(usize, usize)>) = changes
                .iter()
                .map(|change| match *change {
                    Change::Added(row) => ("added", (0, row - start)),
                    Change::Updated(row) => ("updated", (0, row - start)),
                    Change::Removed(row) => ("removed", (1, row)),
                })
                .unzip();
            let payload = match &batch {
                Some(batch) => batch.payload(),
                None => self.removed_rows.slice(0, 0),
            };
            change_rows(&schema, names, &payload, &self.removed_rows, &from)
        })
    }
}

/// One batch of change rows: `names` (the change of each), then each
/// row's payload from `new` (side 0) or the removed members (side 1).
fn change_rows(
    schema: &SchemaRef,
    names: Vec<&str>,
    new: &RecordBatch,
    removed: &RecordBatch,
    from: &[(usize, usize)],
) -> Result<RecordBatch, String> {
    let mut columns: Vec<ArrayRef> = vec![Arc::new(StringArray::from(names))];
    for (c, column) in new.columns().iter().enumerate() {
        let sides: [&dyn Array; 2] = [column.as_ref(), removed.column(c).as_ref()];
        columns.push(interleave(&sides, from).map_err(|e| e.to_string())?);
    }
    RecordBatch::try_new(schema.clone(), columns).map_err(|e| e.to_string())
}

/// One row of a changes file, against its base.
#[derive(Clone, Debug, PartialEq)]
pub enum SinceBase {
    /// Added or updated since the base: the new members' row (its place
    /// among all of them).
    Row(usize),
    /// In the base, and removed since: the member's key.
    Removed(String),
}

/// One change, by where its row is: the new members' row (its place among
/// all of them), or the removed members' row.
#[derive(Clone, Copy, Debug)]
enum Change {
    Added(usize),
    Updated(usize),
    Removed(usize),
}

/// Where a removed member's last delivered row is.
#[derive(Clone, Copy)]
enum Origin {
    /// The base (its row in the file, or in the members in memory).
    Base(usize),
    /// The changes file.
    Changes(usize),
}

/// Key and hash batches of one side of the merge.
type Keyed<'a> = Box<dyn Iterator<Item = Result<(StringArray, FixedSizeBinaryArray), String>> + 'a>;

/// One side of the merge, at one member: its batches taken in order, each
/// checked to be in member order after the one before.
struct Cursor<'a> {
    batches: Keyed<'a>,
    side: &'static str,
    keys: StringArray,
    hashes: FixedSizeBinaryArray,
    /// The member's row in the current batch.
    at: usize,
    /// The current batch's first row among all of the side's.
    start: usize,
    /// The last key of the batch before.
    last: Option<String>,
}

impl<'a> Cursor<'a> {
    fn new(batches: Keyed<'a>, side: &'static str) -> Result<Cursor<'a>, String> {
        let mut cursor = Cursor {
            batches,
            side,
            keys: StringArray::from(Vec::<&str>::new()),
            hashes: FixedSizeBinaryArray::new_null(HASH_BYTES, 0),
            at: 0,
            start: 0,
            last: None,
        };
        cursor.load()?;
        Ok(cursor)
    }

    /// The next batch that has rows, once the current one is done.
    fn load(&mut self) -> Result<(), String> {
        while self.at == self.keys.len() {
            let Some(batch) = self.batches.next() else {
                return Ok(());
            };
            let (keys, hashes) = batch?;
            in_order(&keys, self.last.as_deref(), self.side)?;
            self.start += self.keys.len();
            if !keys.is_empty() {
                self.last = Some(keys.value(keys.len() - 1).to_string());
            }
            (self.keys, self.hashes, self.at) = (keys, hashes, 0);
        }
        Ok(())
    }

    fn key(&self) -> Option<&str> {
        (self.at < self.keys.len()).then(|| self.keys.value(self.at))
    }

    /// The member's hash: none for a changes file's tombstone.
    fn hash(&self) -> Option<&[u8]> {
        self.hashes
            .is_valid(self.at)
            .then(|| self.hashes.value(self.at))
    }

    /// The member's row among all of the side's.
    fn position(&self) -> usize {
        self.start + self.at
    }

    fn advance(&mut self) -> Result<(), String> {
        self.at += 1;
        self.load()
    }
}

/// Checks that keys are in member order (strictly increasing), after
/// `last`, the key before the first.
pub(super) fn in_order(keys: &StringArray, last: Option<&str>, side: &str) -> Result<(), String> {
    let mut previous = last;
    for key in keys.iter().flatten() {
        if previous.is_some_and(|p| p >= key) {
            return Err(format!("the {side} are not in member order at `{key}`"));
        }
        previous = Some(key);
    }
    Ok(())
}

/// The changes from `old` to `new` (see the module doc): one pass over the
/// three sides at once (the base, the changes file, the new members), each
/// read a batch at a time.
pub fn between(old: Old, new: &MemberBatches) -> Result<Delta, String> {
    let target = payload_schema(new.schema());
    let keyed = |batch: RecordBatch| {
        (
            batch.column(0).as_string::<i32>().clone(),
            batch.column(1).as_fixed_size_binary().clone(),
        )
    };
    let nothing = || -> Keyed<'_> { Box::new(std::iter::empty()) };
    let changes = match &old {
        Old::Files {
            changes: Some(path),
            ..
        } => {
            let batch = read_keyed(path)?;
            Box::new(std::iter::once(Ok(keyed(batch)))) as Keyed<'_>
        }
        _ => nothing(),
    };
    let (base, mut since_base, since_limit): (Keyed<'_>, _, _) = match &old {
        Old::Nothing => (nothing(), None, 0),
        Old::Rows(members) => (
            Box::new(std::iter::once(Ok((
                members.keys().clone(),
                members.hashes().clone(),
            )))),
            None,
            0,
        ),
        Old::Files { base, .. } => {
            let (members, batches) = key_batches(base)?;
            let limit = usize::try_from(members / BASE_SHARE).unwrap_or(usize::MAX);
            (
                Box::new(batches.map(move |b| b.map(keyed))),
                Some(Vec::new()),
                limit,
            )
        }
    };
    let new_keyed = new
        .batches()
        .map(|m| m.map(|m| (m.keys().clone(), m.hashes().clone())));
    let mut base = Cursor::new(base, "old members")?;
    let mut changes = Cursor::new(changes, "changes since the base")?;
    let mut new = Cursor::new(Box::new(new_keyed), "new members")?;
    let (mut out, mut gone) = (Vec::new(), Vec::new());
    loop {
        let (on_base, on_change, on_new) = {
            let Some((key, [on_base, on_change, on_new])) =
                first_key([base.key(), changes.key(), new.key()])
            else {
                break;
            };
            // The old members: the changes file's row where it has one (none
            // for a tombstone), else the base's.
            let old = if on_change {
                changes
                    .hash()
                    .map(|h| (h, Origin::Changes(changes.position())))
            } else if on_base {
                base.hash().map(|h| (h, Origin::Base(base.position())))
            } else {
                None
            };
            let new_hash = on_new.then(|| (new.position(), new.hash().unwrap_or_default()));
            match (old, new_hash) {
                (None, Some((n, _))) => out.push(Change::Added(n)),
                (Some((old, _)), Some((n, new))) if old != new => out.push(Change::Updated(n)),
                (Some((_, origin)), None) => {
                    out.push(Change::Removed(gone.len()));
                    gone.push(origin);
                }
                _ => {}
            }
            if let Some(since) = &mut since_base {
                let base_hash = on_base.then(|| base.hash()).flatten();
                match (base_hash, new_hash) {
                    (None, Some((n, _))) => since.push(SinceBase::Row(n)),
                    (Some(old), Some((n, new))) if old != new => since.push(SinceBase::Row(n)),
                    (Some(_), None) => since.push(SinceBase::Removed(key.to_string())),
                    _ => {}
                }
                if since.len() > since_limit {
                    since_base = None;
                }
            }
            (on_base, on_change, on_new)
        };
        if on_base {
            base.advance()?;
        }
        if on_change {
            changes.advance()?;
        }
        if on_new {
            new.advance()?;
        }
    }
    let removed_rows = removed_rows(&old, &gone, &target)?;
    let (mut added, mut updated) = (0, 0);
    for change in &out {
        match change {
            Change::Added(_) => added += 1,
            Change::Updated(_) => updated += 1,
            Change::Removed(_) => {}
        }
    }
    Ok(Delta {
        changes: out,
        removed_rows,
        added,
        updated,
        removed: gone.len() as u64,
        since_base,
    })
}

/// The first of the sides' keys (`None` when every side is done) and which
/// sides are at it: one comparison per side that has a key (the merge's
/// most frequent step: once per member).
fn first_key(keys: [Option<&str>; 3]) -> Option<(&str, [bool; 3])> {
    let mut first: Option<(&str, [bool; 3])> = None;
    for (side, key) in keys.into_iter().enumerate() {
        let Some(key) = key else { continue };
        match first.as_mut().map(|(at, sides)| (key.cmp(at), sides)) {
            Some((std::cmp::Ordering::Equal, sides)) => sides[side] = true,
            Some((std::cmp::Ordering::Greater, _)) => {}
            // Before the first so far, or the first side with a key.
            _ => {
                let mut sides = [false; 3];
                sides[side] = true;
                first = Some((key, sides));
            }
        }
    }
    first
}

/// The key and hash columns of a members file, a batch at a time, and its
/// number of rows. Its row groups are decoded a few at a time, one per
/// core, on a thread of their own, while the merge takes the ones before
/// in order: decoding is half of the merge's time, and the merge runs on
/// one core. At most two windows of groups are decoded ahead of the merge.
/// Each group gets its own handle on the file (handles cloned from one
/// would share its position).
type KeyBatches = Box<dyn Iterator<Item = Result<RecordBatch, String>>>;

fn key_batches(path: &Path) -> Result<(u64, KeyBatches), String> {
    let footer = footer(path)?;
    let rows = footer.metadata().file_metadata().num_rows().max(0) as u64;
    let width = footer.schema().fields().len();
    let mask = ProjectionMask::roots(
        footer.metadata().file_metadata().schema_descr(),
        [0, width - 1],
    );
    let groups: Vec<usize> = (0..footer.metadata().num_row_groups()).collect();
    let expected = groups.len();
    let path = path.to_path_buf();
    let decode = move |group: usize| decode_group(&path, &footer, &mask, group, None);
    let cores = crate::run::engine::cores().max(1);
    let (decoded, received) = std::sync::mpsc::sync_channel(cores);
    std::thread::spawn(move || {
        for window in groups.chunks(cores) {
            let window: Vec<Result<Vec<RecordBatch>, String>> =
                window.par_iter().map(|&g| decode(g)).collect();
            for group in window {
                // The merge stopped (an error): nothing more is wanted.
                if decoded.send(group).is_err() {
                    return;
                }
            }
        }
    });
    // A decoding thread that ended early (a panic) must not pass for the
    // end of the file.
    let mut groups = received.into_iter();
    let mut taken = 0;
    let batches = std::iter::from_fn(move || match groups.next() {
        Some(group) => {
            taken += 1;
            Some(group)
        }
        None if taken < expected => {
            taken = expected;
            Some(Err(
                "the members file's decoding stopped before its end".into()
            ))
        }
        None => None,
    })
    .flat_map(|group| match group {
        Ok(batches) => batches.into_iter().map(Ok).collect::<Vec<_>>(),
        Err(e) => vec![Err(e)],
    });
    Ok((rows, Box::new(batches)))
}

/// A members file's footer: its schema and row groups.
fn footer(path: &Path) -> Result<ArrowReaderMetadata, String> {
    let file = File::open(path).map_err(|e| e.to_string())?;
    ArrowReaderMetadata::load(&file, Default::default()).map_err(|e| e.to_string())
}

/// The `mask` columns of one row group of a members file (of its rows in
/// `selection`, if any), on a handle of its own.
fn decode_group(
    path: &Path,
    footer: &ArrowReaderMetadata,
    mask: &ProjectionMask,
    group: usize,
    selection: Option<RowSelection>,
) -> Result<Vec<RecordBatch>, String> {
    let file = File::open(path).map_err(|e| e.to_string())?;
    let mut reader = ParquetRecordBatchReaderBuilder::new_with_metadata(file, footer.clone())
        .with_projection(mask.clone())
        .with_row_groups(vec![group])
        .with_batch_size(BATCH_ROWS);
    if let Some(selection) = selection {
        reader = reader.with_row_selection(selection);
    }
    reader
        .build()
        .map_err(|e| e.to_string())?
        .map(|b| b.map_err(|e| e.to_string()))
        .collect()
}

/// The key and hash columns of a (small) members file, whole.
fn read_keyed(path: &Path) -> Result<RecordBatch, String> {
    let batches = key_batches(path)?.1.collect::<Result<Vec<_>, _>>()?;
    let schema = match batches.first() {
        Some(b) => b.schema(),
        None => Arc::new(Schema::new(vec![
            Field::new("key", DataType::Utf8, false),
            Field::new("hash", DataType::FixedSizeBinary(32), true),
        ])),
    };
    concat_batches(&schema, &batches).map_err(|e| e.to_string())
}

/// The payload of the rows at `rows` (in order) of a members file. Its
/// row groups are decoded in parallel, each at its own rows: one removed
/// member in a few hundred is on every page, so the whole payload is
/// decoded, and on one core that was a third of the change set's time at
/// 10M members.
fn file_rows(path: &Path, rows: &[usize]) -> Result<Option<RecordBatch>, String> {
    if rows.is_empty() {
        return Ok(None);
    }
    let footer = footer(path)?;
    let width = footer.schema().fields().len();
    let payload_columns: Vec<usize> = (1..width - 1).collect();
    let schema = Arc::new(
        footer
            .schema()
            .project(&payload_columns)
            .map_err(|e| e.to_string())?,
    );
    let mask = ProjectionMask::roots(
        footer.metadata().file_metadata().schema_descr(),
        payload_columns,
    );
    // Each group with rows to read: the group, its first row in the file,
    // its number of rows, and its rows of `rows`.
    let mut parts = Vec::new();
    let (mut first, mut taken) = (0, 0);
    for (group, meta) in footer.metadata().row_groups().iter().enumerate() {
        let len = usize::try_from(meta.num_rows()).map_err(|e| e.to_string())?;
        let end = taken + rows[taken..].partition_point(|&r| r < first + len);
        if end > taken {
            parts.push((group, first, len, &rows[taken..end]));
        }
        (first, taken) = (first + len, end);
    }
    if taken < rows.len() {
        return Err(format!(
            "row {} is past the end of the file ({first} rows)",
            rows[taken]
        ));
    }
    let decoded: Vec<Result<Vec<RecordBatch>, String>> = parts
        .par_iter()
        .map(|&(group, first, len, rows)| {
            let selection = RowSelection::from_consecutive_ranges(
                rows.iter().map(|&r| r - first..r - first + 1),
                len,
            );
            decode_group(path, &footer, &mask, group, Some(selection))
        })
        .collect();
    let mut batches = Vec::new();
    for group in decoded {
        batches.extend(group?);
    }
    concat_batches(&schema, &batches)
        .map(Some)
        .map_err(|e| e.to_string())
}

/// Every row of a members file, as one batch.
pub(super) fn read_file(path: &Path) -> Result<RecordBatch, String> {
    let file = File::open(path).map_err(|e| e.to_string())?;
    let batches = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| e.to_string())?
        .with_batch_size(BATCH_ROWS)
        .build()
        .map_err(|e| e.to_string())?;
    let schema = RecordBatchReader::schema(&batches);
    let batches = batches
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    concat_batches(&schema, &batches).map_err(|e| e.to_string())
}

/// The payload of the removed old members (at `gone`, in order) under the
/// new payload's columns (`target`).
fn removed_rows(old: &Old, gone: &[Origin], target: &SchemaRef) -> Result<RecordBatch, String> {
    let (mut in_base, mut in_changes) = (Vec::new(), Vec::new());
    for origin in gone {
        match *origin {
            Origin::Base(at) => in_base.push(at),
            Origin::Changes(at) => in_changes.push(at),
        }
    }
    let (base, changes) = match old {
        Old::Nothing => (None, None),
        Old::Rows(members) if !in_base.is_empty() => {
            let indices = UInt64Array::from_iter_values(in_base.iter().map(|&i| i as u64));
            let rows =
                take_record_batch(&members.payload(), &indices).map_err(|e| e.to_string())?;
            (Some(rows), None)
        }
        Old::Rows(_) => (None, None),
        Old::Files { base, changes } => (
            file_rows(base, &in_base)?,
            match changes {
                Some(path) => file_rows(path, &in_changes)?,
                None => None,
            },
        ),
    };
    let base = conform(base.as_ref(), target, in_base.len())?;
    if in_changes.is_empty() {
        return Ok(base);
    }
    let changes = conform(changes.as_ref(), target, in_changes.len())?;
    // Back in member order: the n-th removed member is the next row of the
    // side it came from.
    let (mut b, mut c) = (0, 0);
    let from: Vec<(usize, usize)> = gone
        .iter()
        .map(|origin| match origin {
            Origin::Base(_) => {
                b += 1;
                (0, b - 1)
            }
            Origin::Changes(_) => {
                c += 1;
                (1, c - 1)
            }
        })
        .collect();
    let columns = (0..target.fields().len())
        .map(|i| {
            let sides: [&dyn Array; 2] = [base.column(i).as_ref(), changes.column(i).as_ref()];
            interleave(&sides, &from).map_err(|e| e.to_string())
        })
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new_with_options(
        target.clone(),
        columns,
        &RecordBatchOptions::new().with_row_count(Some(gone.len())),
    )
    .map_err(|e| e.to_string())
}

/// `rows` payload rows (none: `rows` of nothing) under the `target`
/// columns: as they are where the types agree, converted where a column's
/// type changed since the delivery (a value that does not convert is left
/// empty), empty where the column is new.
fn conform(
    payload: Option<&RecordBatch>,
    target: &SchemaRef,
    rows: usize,
) -> Result<RecordBatch, String> {
    let safe = CastOptions {
        safe: true,
        ..CastOptions::default()
    };
    let columns = target
        .fields()
        .iter()
        .map(|field| {
            let column = payload.and_then(|p| p.column_by_name(field.name()));
            match column {
                Some(c) if c.data_type() == field.data_type() => Ok(c.clone()),
                Some(c) => cast_with_options(c, field.data_type(), &safe)
                    .or_else(|_| Ok(new_null_array(field.data_type(), rows))),
                None => Ok(new_null_array(field.data_type(), rows)),
            }
        })
        .collect::<Result<Vec<_>, String>>()?;
    RecordBatch::try_new_with_options(
        target.clone(),
        columns,
        &RecordBatchOptions::new().with_row_count(Some(rows)),
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

    /// Members of a map of keys to values (column `v`).
    fn as_members(rows: &std::collections::BTreeMap<String, i64>) -> Members {
        let rows: Vec<(&str, i64)> = rows.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        members(&rows, "v")
    }

    /// The changes from `old` to `new` as a map of every member finds
    /// them, in the form of [`changes`].
    fn by_maps(
        old: &std::collections::BTreeMap<String, i64>,
        new: &std::collections::BTreeMap<String, i64>,
    ) -> Vec<String> {
        let keys: std::collections::BTreeSet<_> = old.keys().chain(new.keys()).collect();
        keys.into_iter()
            .filter_map(|key| match (old.get(key), new.get(key)) {
                (None, Some(v)) => Some(format!("added:{v}")),
                (Some(o), Some(v)) if o != v => Some(format!("updated:{v}")),
                (Some(o), None) => Some(format!("removed:{o}")),
                _ => None,
            })
            .collect()
    }

    /// The changes as `change:value`, their rows made from `new` cut into
    /// batches otherwise than the change set's.
    fn changes(delta: &Delta, new: &Members) -> Vec<String> {
        let new = cut_by(new, &[2, 5]);
        let mut found = Vec::new();
        for rows in delta.rows(&new) {
            let rows = rows.expect("the change rows");
            assert_eq!(rows.schema(), Delta::rows_schema(&new));
            let change = rows.column(0).as_string::<i32>();
            let value = rows.column(2);
            found
                .extend((0..rows.num_rows()).map(|i| {
                    format!("{}:{}", change.value(i), crate::run::engine::cell(value, i))
                }));
        }
        found
    }

    /// `members` as batches of 3, 1 and 17 members, round and round.
    fn cut(members: &Members) -> MemberBatches {
        cut_by(members, &[3, 1, 17])
    }

    fn cut_by(members: &Members, sizes: &[usize]) -> MemberBatches {
        let mut builder = crate::run::member_batches::Builder::new(members.batch().schema(), None);
        let mut start = 0;
        for size in sizes.iter().cycle() {
            if start == members.len() {
                break;
            }
            let len = (*size).min(members.len() - start);
            builder.push(members.slice(start, len)).expect("in order");
            start += len;
        }
        builder.finish().expect("the batches")
    }

    #[test]
    fn added_updated_and_removed_in_member_order() {
        let old = members(&[("1", 1), ("2", 2), ("4", 4)], "v");
        let new = members(&[("2", 20), ("3", 3), ("4", 4)], "v");
        let delta = between(Old::Rows(&old), &cut(&new)).expect("a delta");
        assert_eq!(
            changes(&delta, &new),
            ["removed:1", "updated:20", "added:3"]
        );
        assert_eq!((delta.added, delta.updated, delta.removed), (1, 1, 1));
        let same = between(Old::Rows(&new), &cut(&new)).expect("a delta");
        assert!(same.is_empty());
        let first = between(Old::Nothing, &cut(&new)).expect("a delta");
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
            crate::run::state::save(scratch.path(), "files", "r1", &cut(&old), None, &faults)
                .expect("saved");
        let path = crate::run::state::folder(scratch.path()).join(pending.file.expect("a file"));
        let new = members(&[("2", 3)], "v");
        let delta = between(
            Old::Files {
                base: &path,
                changes: None,
            },
            &cut(&new),
        )
        .expect("a delta");
        assert_eq!(changes(&delta, &new), ["removed:1", "updated:3"]);
    }

    /// Against the changes a map of every member finds, on memberships of
    /// every shape (empty, disjoint, equal, interleaved), from memory and
    /// from a file.
    #[test]
    fn the_merge_finds_what_maps_find() {
        let mut random = crate::run::test_random::numbers(0x2545_F491_4F6C_DD1D);
        let scratch = tempfile::tempdir().expect("a folder");
        let faults = crate::faults::Faults::default();
        for round in 0..40 {
            let mut pick = |n: u64| -> std::collections::BTreeMap<String, i64> {
                (0..random(n + 1))
                    .map(|_| (format!("{:04}", random(400)), random(3) as i64))
                    .collect()
            };
            let (old_rows, new_rows) = (pick(300), pick(300));
            let (old, new) = (as_members(&old_rows), as_members(&new_rows));
            let expected = by_maps(&old_rows, &new_rows);
            let in_memory = between(Old::Rows(&old), &cut(&new)).expect("a delta");
            assert_eq!(
                changes(&in_memory, &new),
                expected,
                "round {round}, in memory"
            );
            let run_id = format!("r{round}");
            let pending = crate::run::state::save(
                scratch.path(),
                "files",
                &run_id,
                &cut(&old),
                None,
                &faults,
            )
            .expect("saved");
            let from = |base: &Path, how: &str| {
                let old = Old::Files {
                    base,
                    changes: None,
                };
                let delta = between(old, &cut(&new)).expect("a delta");
                assert_eq!(changes(&delta, &new), expected, "round {round}, {how}");
                delta
            };
            let path =
                crate::run::state::folder(scratch.path()).join(pending.file.expect("a file"));
            let from_file = from(&path, "from a file");
            assert_eq!(
                from_file.added + from_file.updated + from_file.removed,
                expected.len() as u64
            );
            // The same file cut into row groups of a few rows: decoded a
            // window of groups at a time ahead of the merge, and the removed
            // members' rows read group by group.
            let grouped = scratch.path().join(format!("grouped-{round}.parquet"));
            write_in_groups(&grouped, &old, 1 + random(9) as usize);
            from(&grouped, "from a file of small row groups");
        }
    }

    /// `members` as a members file whose row groups hold `rows` rows each.
    fn write_in_groups(path: &Path, members: &Members, rows: usize) {
        use datafusion::parquet::arrow::ArrowWriter;
        use datafusion::parquet::file::properties::WriterProperties;
        let properties = WriterProperties::builder()
            .set_max_row_group_row_count(Some(rows))
            .build();
        let file = File::create(path).expect("a file");
        let mut writer = ArrowWriter::try_new(file, members.batch().schema(), Some(properties))
            .expect("a writer");
        writer.write(members.batch()).expect("written");
        writer.close().expect("closed");
    }

    #[test]
    fn rows_past_the_end_of_a_members_file_are_an_error() {
        let scratch = tempfile::tempdir().expect("a folder");
        let path = scratch.path().join("members.parquet");
        write_in_groups(&path, &members(&[("1", 1), ("2", 2), ("3", 3)], "v"), 2);
        let rows = file_rows(&path, &[0, 2]).expect("read").expect("rows");
        let values: Vec<i64> = rows
            .column(1)
            .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
            .values()
            .to_vec();
        assert_eq!(values, [1, 3]);
        let past = file_rows(&path, &[1, 3]).expect_err("row 3 is past the end");
        assert!(past.contains("past the end"), "{past}");
    }

    #[test]
    fn the_first_key_is_found_with_every_side_at_it() {
        assert_eq!(first_key([None, None, None]), None);
        assert_eq!(
            first_key([Some("b"), None, Some("a")]),
            Some(("a", [false, false, true]))
        );
        assert_eq!(
            first_key([Some("a"), Some("b"), Some("a")]),
            Some(("a", [true, false, true]))
        );
        assert_eq!(
            first_key([Some("c"), Some("b"), Some("b")]),
            Some(("b", [false, true, true]))
        );
        assert_eq!(
            first_key([None, Some("ab"), Some("a")]),
            Some(("a", [false, false, true]))
        );
    }

    /// Deliveries that change a few members at a time write changes files
    /// against one base: the next change set from base plus changes is
    /// what maps find, the record reads back as the members it delivered,
    /// and once the changes outgrow a tenth of the base, a new base is
    /// written.
    #[test]
    fn changes_files_chain_on_one_base() {
        use std::collections::BTreeMap;

        use crate::run::state::{self, Rows, Store};

        let mut random = crate::run::test_random::numbers(0x9E37_79B9_7F4A_7C15);
        let scratch = tempfile::tempdir().expect("a folder");
        let root = scratch.path();
        let faults = crate::faults::Faults::default();
        let store = Store::open(root, &faults).expect("a store");
        let mut current: BTreeMap<String, i64> = (0..500)
            .map(|i| (format!("{i:04}"), (i % 3) as i64))
            .collect();
        let first = as_members(&current);
        let pending = state::save(root, "files", "r0", &cut(&first), None, &faults).expect("saved");
        store.begin(&pending).expect("begun");
        state::commit(root, &store, &pending, &faults).expect("committed");
        let (mut with_changes, mut new_bases) = (0, 0);
        for round in 1..60 {
            // A few members added, updated or removed; now and then many.
            let mut next = current.clone();
            let touched = if round % 15 == 0 { 200 } else { 1 + random(12) };
            for _ in 0..touched {
                let key = format!("{:04}", random(700));
                match random(3) {
                    0 => {
                        next.remove(&key);
                    }
                    _ => {
                        next.insert(key, random(5) as i64);
                    }
                }
            }
            let expected = by_maps(&current, &next);
            let record = state::committed(root, &store, "files")
                .expect("the state")
                .expect("a delivery");
            assert_eq!(
                record.members_count(),
                current.len() as u64,
                "round {round}"
            );
            let held = record.members().expect("the members");
            assert_eq!(held.batch(), as_members(&current).batch(), "round {round}");
            let target = as_members(&next);
            let delta = state::changes("files", Some(&record), &cut(&target)).expect("a delta");
            assert_eq!(changes(&delta, &target), expected, "round {round}");
            let run_id = format!("r{round}");
            let pending = state::save(
                root,
                "files",
                &run_id,
                &cut(&target),
                Some((&record, &delta)),
                &faults,
            )
            .expect("saved");
            if pending.changes.is_some() {
                with_changes += 1;
            } else {
                new_bases += 1;
            }
            store.begin(&pending).expect("begun");
            state::commit(root, &store, &pending, &faults).expect("committed");
            let kept = std::fs::read_dir(state::folder(root))
                .expect("the folder")
                .count();
            assert_eq!(
                kept,
                1 + usize::from(pending.changes.is_some()),
                "round {round}"
            );
            if let Rows::Files {
                changes: Some(path),
                ..
            } = &state::committed(root, &store, "files")
                .expect("the state")
                .expect("a delivery")
                .rows
            {
                let rows = crate::run::state::folder(root).join(path);
                assert!(rows.is_file());
            }
            current = next;
        }
        assert!(
            with_changes > 30,
            "{with_changes} deliveries wrote changes files"
        );
        assert!(new_bases >= 3, "{new_bases} deliveries wrote a new base");
    }

    /// Old members out of member order (a file written by hand, or
    /// damaged) are refused, not merged into wrong changes.
    #[test]
    fn old_members_out_of_order_are_refused() {
        let unsorted = members(&[("2", 2), ("1", 1)], "v");
        let new = members(&[("1", 1)], "v");
        let refused = between(Old::Rows(&unsorted), &cut(&new)).expect_err("refused");
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
        let delta = between(Old::Rows(&old), &cut(&new)).expect("a delta");
        assert_eq!(changes(&delta, &new), ["removed:null", "updated:2"]);
    }
}
