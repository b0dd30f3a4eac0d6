//! Decoding Parquet: one file in (local, or an object through
//! `object::read_parquet`, which shares [`layout`] and [`typed`]), the
//! columns the run needs of its row groups decoded on every core and cast
//! to the schema's Arrow types out (`Decoded`, with the values that
//! did not type); then the checks text rows get (untyped values, closed
//! domains, missing and duplicate keys) leave the bad rows out of the
//! batches and count them in the source's `Builder`.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, new_null_array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};
use datafusion::parquet::arrow::ProjectionMask;
use datafusion::parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReader,
    ParquetRecordBatchReaderBuilder, RowSelection,
};
use datafusion::parquet::basic::{Encoding, PageType};
use datafusion::parquet::file::metadata::PageIndexPolicy;
use rayon::prelude::*;

use super::keys::repeated_keys;
use super::open;
use super::typing::{Builder, a_type, arrow_schema, outside_domain};
use crate::plan::{FieldPlan, SchemaPlan};

/// Rows per decoded batch.
pub(super) const BATCH_ROWS: usize = 65_536;

/// Batches of one Parquet file, typed, with the rows that did not type.
pub(super) struct Decoded {
    /// The row number (1-based, in the file) of the batch's first row.
    first_row: usize,
    pub(super) batch: RecordBatch,
    /// (row in batch, reason): a value that does not convert to its field's
    /// type (a plain cast would make it null) or is outside a closed domain.
    pub(super) bad: Vec<(usize, String)>,
}

#[cfg(test)]
impl Decoded {
    /// A batch that typed without a bad value, as the file's first rows.
    pub(super) fn of(batch: RecordBatch) -> Decoded {
        Decoded {
            first_row: 1,
            batch,
            bad: Vec::new(),
        }
    }
}

/// What to read of one Parquet file, from its footer (read once, shared
/// by every reader of the file): the columns it carries, the projection
/// of the columns the run needs, and its rows in [`Run`]s, one per core.
/// Row groups without rows are not read.
pub(super) struct Layout {
    pub(super) metadata: ArrowReaderMetadata,
    pub(super) columns: Vec<String>,
    pub(super) mask: ProjectionMask,
    /// The columns the mask reads.
    pub(super) read: BTreeSet<String>,
    pub(super) runs: Vec<Run>,
}

/// Contiguous rows of one file, read by one reader: whole row groups, or
/// a piece of a large row group when the file has fewer row groups than
/// there are cores (writers put a million rows or more in a row group, so
/// a file of one row group would otherwise be read on one core).
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Run {
    /// The row groups holding the run's rows, in order.
    pub(super) row_groups: Vec<usize>,
    /// The 1-based number in the file of the run's first row.
    pub(super) first_row: usize,
    /// The rows of the first row group before the run's (a piece of a
    /// row group that is not its first piece).
    pub(super) skip: usize,
    /// The run's rows.
    pub(super) rows: usize,
}

/// The fewest rows a piece of a split row group holds: fewer, and opening
/// a reader (and decoding its dictionary pages) costs more than the core
/// it adds saves.
const PIECE_ROWS: usize = 32 * 1024;

impl Run {
    /// The selection of the run's rows among those of its row groups;
    /// `None` when it is all of them.
    pub(super) fn selection(&self, layout: &Layout) -> Option<RowSelection> {
        let total = layout.rows_in(&self.row_groups);
        (self.rows < total).then(|| self.within(total, std::iter::once(0..self.rows)))
    }

    /// The run as one run per row group, in order.
    pub(super) fn by_group(&self, layout: &Layout) -> Vec<Run> {
        let mut runs = Vec::with_capacity(self.row_groups.len());
        let (mut first_row, mut skip, mut left) = (self.first_row, self.skip, self.rows);
        for &group in &self.row_groups {
            let rows = layout.rows_in(&[group]).saturating_sub(skip).min(left);
            runs.push(Run {
                row_groups: vec![group],
                first_row,
                skip,
                rows,
            });
            (first_row, skip, left) = (first_row + rows, 0, left - rows);
        }
        runs
    }

    /// `kept` (ranges of the run's rows, in order) as a selection among the
    /// `total` rows of its row groups.
    pub(super) fn within(
        &self,
        total: usize,
        kept: impl Iterator<Item = std::ops::Range<usize>>,
    ) -> RowSelection {
        let skip = self.skip;
        RowSelection::from_consecutive_ranges(kept.map(|r| r.start + skip..r.end + skip), total)
    }
}

/// The [`Layout`] of a file whose footer is `metadata`; `needed` is the
/// schema fields the run reads (`None`: every column).
pub(super) fn layout(metadata: ArrowReaderMetadata, needed: Option<&BTreeSet<String>>) -> Layout {
    let file_schema = metadata.schema().clone();
    let columns: Vec<String> = file_schema
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let read: BTreeSet<String> = columns
        .iter()
        .filter(|c| needed.is_none_or(|needed| needed.contains(*c)))
        .cloned()
        .collect();
    let mask = match needed {
        Some(_) => columns_mask(&metadata, &columns, &read),
        None => ProjectionMask::all(),
    };
    let mut groups = Vec::new();
    let mut next_row = 1;
    for (i, g) in metadata.metadata().row_groups().iter().enumerate() {
        let rows = g.num_rows().max(0) as usize;
        if rows > 0 {
            groups.push(Group {
                index: i,
                first_row: next_row,
                rows,
            });
        }
        next_row += rows;
    }
    let runs = runs_of(&groups, crate::run::engine::cores(), PIECE_ROWS);
    Layout {
        metadata,
        columns,
        mask,
        read,
        runs,
    }
}

/// A row group with rows.
struct Group {
    index: usize,
    /// The 1-based number in the file of its first row.
    first_row: usize,
    rows: usize,
}

/// The runs of a file's row `groups` for `cores` readers: with at least
/// as many groups as cores, contiguous groups, one run per core; with
/// fewer, each group split in pieces of about equal rows (at least
/// `piece_rows` each) so that every core has one.
fn runs_of(groups: &[Group], cores: usize, piece_rows: usize) -> Vec<Run> {
    let cores = cores.max(1);
    if groups.is_empty() {
        return Vec::new();
    }
    if groups.len() >= cores {
        return groups
            .chunks(groups.len().div_ceil(cores))
            .map(|chunk| Run {
                row_groups: chunk.iter().map(|g| g.index).collect(),
                first_row: chunk[0].first_row,
                skip: 0,
                rows: chunk.iter().map(|g| g.rows).sum(),
            })
            .collect();
    }
    let per_group = cores.div_ceil(groups.len());
    let mut runs = Vec::new();
    for group in groups {
        let pieces = per_group.min(group.rows / piece_rows.max(1)).max(1);
        let per_piece = group.rows.div_ceil(pieces);
        let mut skip = 0;
        while skip < group.rows {
            let rows = per_piece.min(group.rows - skip);
            runs.push(Run {
                row_groups: vec![group.index],
                first_row: group.first_row + skip,
                skip,
                rows,
            });
            skip += rows;
        }
    }
    runs
}

impl Layout {
    /// The row groups with rows, in order (each once, though a run may
    /// hold a piece of one).
    pub(super) fn row_groups(&self) -> Vec<usize> {
        let mut groups: Vec<usize> = self
            .runs
            .iter()
            .flat_map(|run| run.row_groups.iter().copied())
            .collect();
        groups.dedup();
        groups
    }

    /// The rows of `row_groups`.
    pub(super) fn rows_in(&self, row_groups: &[usize]) -> usize {
        let groups = self.metadata.metadata().row_groups();
        row_groups
            .iter()
            .map(|&g| groups[g].num_rows().max(0) as usize)
            .sum()
    }
}

/// The projection of a file (whose footer is `metadata` and columns
/// `columns`) on the columns `read`.
pub(super) fn columns_mask(
    metadata: &ArrowReaderMetadata,
    columns: &[String],
    read: &BTreeSet<String>,
) -> ProjectionMask {
    ProjectionMask::roots(
        metadata.metadata().file_metadata().schema_descr(),
        columns
            .iter()
            .enumerate()
            .filter(|(_, c)| read.contains(*c))
            .map(|(i, _)| i),
    )
}

/// Reads a local Parquet file: only the columns `needed` (every column
/// when `None`), its rows decoded on every core (each thread its own
/// reader over a [`Run`], the footer read once), in file order.
pub(super) fn read_parquet(
    file: &Path,
    shown: &str,
    schema: &SchemaPlan,
    needed: Option<&BTreeSet<String>>,
) -> Result<(Vec<Decoded>, Vec<String>), String> {
    let layout = layout(footer_with_pages(file, shown)?, needed);
    let decoded = decode_layout(file, shown, schema, &layout)?;
    Ok((decoded, layout.columns))
}

/// The footer of a local Parquet file.
pub(super) fn footer(file: &Path, shown: &str) -> Result<ArrowReaderMetadata, String> {
    ArrowReaderMetadata::load(&open(file)?, Default::default()).map_err(|e| format!("{shown}: {e}"))
}

/// The footer of a local Parquet file with where its pages are (its
/// offset index, when the writer wrote one, as most do): a reader of
/// some rows of a row group (a piece of it, or the rows a filter keeps)
/// then reads only the pages that hold them, not every page of the row
/// group's columns. Not for a store object's local copy, which holds
/// only the footer and the column chunks (`object::Remote::copy_parquet`).
pub(super) fn footer_with_pages(file: &Path, shown: &str) -> Result<ArrowReaderMetadata, String> {
    let options = ArrowReaderOptions::new().with_offset_index_policy(PageIndexPolicy::Optional);
    ArrowReaderMetadata::load(&open(file)?, options).map_err(|e| format!("{shown}: {e}"))
}

/// `metadata` with its string `columns` that are strings in `target` too
/// decoded as string views: each value a view into the page it was read
/// from instead of a copy, for values that are only looked at (hashed,
/// compared) or filtered (most of them dropped), and copied, the few
/// kept, when they are cast to the schema's types.
pub(super) fn with_string_views(
    metadata: &ArrowReaderMetadata,
    target: &Target,
    columns: &BTreeSet<String>,
) -> Result<ArrowReaderMetadata, String> {
    with_strings_as(metadata, target, |name| {
        columns.contains(name).then_some(DataType::Utf8View)
    })
}

/// `metadata` with its string `columns` that are strings in `target` too,
/// and dictionary-encoded in each of `row_groups`, decoded as dictionary
/// arrays: the column's distinct values once and a key per row, for a
/// filter's columns (a campaign, a country), which it judges a distinct
/// value at a time. A column some of whose pages are not
/// dictionary-encoded (a writer's fallback past its dictionary's size) is
/// decoded as strings, as before: its dictionary would have to be made.
pub(super) fn with_string_dictionaries(
    metadata: &ArrowReaderMetadata,
    target: &Target,
    columns: &BTreeSet<String>,
    row_groups: &[usize],
) -> Result<ArrowReaderMetadata, String> {
    let parquet = metadata.metadata();
    let descriptor = parquet.file_metadata().schema_descr();
    let encoded = |name: &str| {
        let Some(leaf) = (0..descriptor.num_columns()).find(|&i| {
            let column = descriptor.column(i);
            column.path().parts().len() == 1 && column.name() == name
        }) else {
            return false;
        };
        row_groups.iter().all(|&g| {
            let chunk = parquet.row_group(g).column(leaf);
            let dictionary = [Encoding::RLE_DICTIONARY, Encoding::PLAIN_DICTIONARY];
            let only_dictionary = chunk
                .page_encoding_stats_mask()
                .is_some_and(|mask| dictionary.iter().any(|&e| mask.is_only(e)))
                || chunk.page_encoding_stats().is_some_and(|stats| {
                    stats.iter().all(|s| {
                        !matches!(s.page_type, PageType::DATA_PAGE | PageType::DATA_PAGE_V2)
                            || dictionary.contains(&s.encoding)
                    })
                });
            chunk.dictionary_page_offset().is_some() && only_dictionary
        })
    };
    with_strings_as(metadata, target, |name| {
        (columns.contains(name) && encoded(name))
            .then(|| DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)))
    })
}

/// `metadata` with each string column that is a string in `target` too
/// decoded as the type `decoded_as` gives it (left as it is where `None`).
fn with_strings_as(
    metadata: &ArrowReaderMetadata,
    target: &Target,
    decoded_as: impl Fn(&str) -> Option<DataType>,
) -> Result<ArrowReaderMetadata, String> {
    use datafusion::arrow::datatypes::Schema;
    let string = |name: &str| {
        target
            .schema
            .field_with_name(name)
            .is_ok_and(|f| f.data_type() == &DataType::Utf8)
    };
    let fields: Vec<_> = metadata
        .schema()
        .fields()
        .iter()
        .map(|f| match (f.data_type(), decoded_as(f.name())) {
            (DataType::Utf8, Some(as_type)) if string(f.name()) => {
                Arc::new(f.as_ref().clone().with_data_type(as_type))
            }
            _ => f.clone(),
        })
        .collect();
    let schema = Schema::new_with_metadata(fields, metadata.schema().metadata().clone());
    let options = ArrowReaderOptions::new().with_schema(Arc::new(schema));
    ArrowReaderMetadata::try_new(metadata.metadata().clone(), options).map_err(|e| e.to_string())
}

/// The rows of `layout` decoded (its runs on every core) and typed,
/// in file order.
fn decode_layout(
    file: &Path,
    shown: &str,
    schema: &SchemaPlan,
    layout: &Layout,
) -> Result<Vec<Decoded>, String> {
    let target = Target::of(schema);
    let decode = |run: Run| -> Result<Vec<Decoded>, String> {
        let mut out = Vec::new();
        let mut next_row = run.first_row;
        for batch in row_group_reader(file, shown, layout, &run, BATCH_ROWS)? {
            let batch = batch.map_err(|e| format!("{shown}: {e}"))?;
            let decoded = typed(&batch, &target, schema, next_row, shown)?;
            next_row += batch.num_rows();
            out.push(decoded);
        }
        Ok(out)
    };
    let runs = layout.runs.clone();
    if runs.len() <= 1 {
        return match runs.into_iter().next() {
            Some(run) => decode(run),
            None => Ok(Vec::new()),
        };
    }
    let results: Vec<Result<Vec<Decoded>, String>> = runs.into_par_iter().map(decode).collect();
    let mut out = Vec::new();
    for r in results {
        out.extend(r?);
    }
    Ok(out)
}

/// A reader of the columns `layout` projects of the rows of `run`, in
/// batches of `batch_rows`, over the footer already read.
pub(super) fn row_group_reader(
    file: &Path,
    shown: &str,
    layout: &Layout,
    run: &Run,
    batch_rows: usize,
) -> Result<ParquetRecordBatchReader, String> {
    let mut builder =
        ParquetRecordBatchReaderBuilder::new_with_metadata(open(file)?, layout.metadata.clone())
            .with_projection(layout.mask.clone())
            .with_row_groups(run.row_groups.clone())
            .with_batch_size(batch_rows);
    if let Some(selection) = run.selection(layout) {
        builder = builder.with_row_selection(selection);
    }
    builder.build().map_err(|e| format!("{shown}: {e}"))
}

/// The Arrow schema a source's rows are typed to, with one all-null column
/// per field, shared: a field a batch lacks is a slice of it rather than
/// new nulls per batch (a text column's nulls still take 4 bytes a row,
/// 400 MB for 100M events).
pub(super) struct Target {
    pub(super) schema: SchemaRef,
    nulls: Vec<ArrayRef>,
}

impl Target {
    pub(super) fn of(schema: &SchemaPlan) -> Target {
        let schema = arrow_schema(schema);
        let nulls = schema
            .fields()
            .iter()
            .map(|f| new_null_array(f.data_type(), BATCH_ROWS))
            .collect();
        Target { schema, nulls }
    }

    /// `rows` nulls of field `i`.
    fn nulls(&self, i: usize, rows: usize) -> ArrayRef {
        let shared = &self.nulls[i];
        if rows <= shared.len() {
            shared.slice(0, rows)
        } else {
            new_null_array(shared.data_type(), rows)
        }
    }
}

/// `batch` cast to the schema's types (`target`): a schema field the batch
/// lacks (not in the file, or not read) is all null. A value that does not
/// convert becomes null; [`typed`] finds those.
pub(super) fn conformed(
    batch: &RecordBatch,
    target: &Target,
    shown: &str,
) -> Result<RecordBatch, String> {
    let err = |e: &dyn std::fmt::Display| format!("{shown}: {e}");
    let fields = target.schema.fields();
    let mut columns = Vec::with_capacity(fields.len());
    for (i, field) in fields.iter().enumerate() {
        columns.push(match batch.column_by_name(field.name()) {
            // A zoned timestamp becomes its UTC wall time.
            Some(col) => cast(col, field.data_type())
                .map_err(|e| err(&format!("`{}`: {e}", field.name())))?,
            None => target.nulls(i, batch.num_rows()),
        });
    }
    let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    RecordBatch::try_new_with_options(target.schema.clone(), columns, &options).map_err(|e| err(&e))
}

/// The rows of one decoded batch, cast to the schema's types (`target`):
/// a schema field the batch lacks (not in the file, or not read) is all
/// null; the values that did not type are kept for the checks.
/// `first_row` is the batch's first row in the file (1-based).
pub(super) fn typed(
    batch: &RecordBatch,
    target: &Target,
    schema: &SchemaPlan,
    first_row: usize,
    shown: &str,
) -> Result<Decoded, String> {
    let conformed = conformed(batch, target, shown)?;
    let mut bad = Vec::new();
    for (typed, (name, plan)) in conformed.columns().iter().zip(&schema.fields) {
        if let Some(raw) = batch.column_by_name(name) {
            bad.extend(untyped_rows(raw, typed, name, plan));
        }
    }
    Ok(Decoded {
        first_row,
        batch: conformed,
        bad,
    })
}

/// The rows of one column that did not type: a value the cast turned into
/// null, or a string outside the field's closed domain.
fn untyped_rows(
    raw: &ArrayRef,
    typed: &ArrayRef,
    name: &str,
    field: &FieldPlan,
) -> Vec<(usize, String)> {
    use datafusion::arrow::util::display::array_value_to_string;
    let mut bad = Vec::new();
    if typed.null_count() > raw.null_count() {
        for i in 0..raw.len() {
            if raw.is_valid(i) && typed.is_null(i) {
                let shown = array_value_to_string(raw, i).unwrap_or_default();
                bad.push((
                    i,
                    format!("`{name}`: `{shown}` is not {}", a_type(&field.ty)),
                ));
            }
        }
    }
    if let (Some(values), DataType::Utf8) = (&field.values, typed.data_type()) {
        let strings = typed.as_string::<i32>();
        for i in 0..strings.len() {
            if strings.is_valid(i) && !values.iter().any(|v| v == strings.value(i)) {
                bad.push((i, outside_domain(strings.value(i), name, values)));
            }
        }
    }
    bad
}

/// The checks of text rows, for the decoded batches of a source's Parquet
/// files (`(shown, batches)` in file order): untyped values (found while
/// decoding) and a missing or duplicate key, across every file of the
/// source. `earlier`: rows already read and checked (the cached part of an
/// append-only source), whose keys come first. Bad rows are counted and
/// sampled (`file:row N: reason`) and left out of the batches returned.
pub(super) fn check_parquet_rows(
    b: &mut Builder,
    files: Vec<(String, Vec<Decoded>)>,
    earlier: &[RecordBatch],
) -> Result<Vec<RecordBatch>, String> {
    // The text rows' keys, every one in the set.
    b.settle();
    // One list of batches: the earlier rows, then every file's, with the
    // file each batch is from (`None`: earlier).
    let mut owner: Vec<Option<usize>> = Vec::new();
    let mut decoded: Vec<Decoded> = Vec::new();
    let mut shown_of = Vec::new();
    for batch in earlier {
        owner.push(None);
        decoded.push(Decoded {
            first_row: 1,
            batch: batch.clone(),
            bad: Vec::new(),
        });
    }
    for (fi, (shown, batches)) in files.into_iter().enumerate() {
        shown_of.push(shown);
        for d in batches {
            owner.push(Some(fi));
            decoded.push(d);
        }
    }
    let mut bad_rows: Vec<std::collections::BTreeMap<usize, String>> = decoded
        .iter()
        .map(|d| {
            let mut rows = std::collections::BTreeMap::new();
            for (i, reason) in &d.bad {
                rows.entry(*i).or_insert_with(|| reason.clone());
            }
            rows
        })
        .collect();
    if let Some(k) = b.key() {
        let key_name = b.names()[k].clone();
        let text = |col: &ArrayRef, i: usize| {
            datafusion::arrow::util::display::array_value_to_string(col, i).unwrap_or_default()
        };
        // Missing keys, and keys the source's text files already hold.
        for ((d, bad), who) in decoded.iter().zip(bad_rows.iter_mut()).zip(&owner) {
            let col = d.batch.column(k);
            if who.is_none() || (col.null_count() == 0 && b.keys.is_empty()) {
                continue;
            }
            for i in 0..col.len() {
                if bad.contains_key(&i) {
                    continue;
                }
                if col.is_null(i) {
                    bad.insert(i, format!("missing key `{key_name}`"));
                } else if b.keys.contains(&text(col, i)) {
                    bad.insert(i, format!("duplicate key `{}`", text(col, i)));
                }
            }
        }
        // Keys repeated among the Parquet rows of every file: the first
        // stays.
        let first_new = earlier.len();
        for (batch, i) in repeated_keys(&decoded[first_new..], &bad_rows[first_new..], k)? {
            let batch = first_new + batch;
            let key = text(decoded[batch].batch.column(k), i);
            bad_rows[batch].insert(i, format!("duplicate key `{key}`"));
        }
        // Keys the earlier rows hold (checked when they were read, and
        // first): the new keys are few, so the earlier keys are looked up
        // in a set of the new ones, on every core, rather than all hashed
        // together.
        if first_new > 0 {
            let key_of = |col: &ArrayRef, i: usize| -> String {
                match col.data_type() {
                    DataType::Utf8 => col.as_string::<i32>().value(i).to_string(),
                    _ => text(col, i),
                }
            };
            let mut new_keys: std::collections::HashMap<String, Vec<(usize, usize)>> =
                std::collections::HashMap::new();
            for (bi, d) in decoded.iter().enumerate().skip(first_new) {
                let col = d.batch.column(k);
                for i in 0..col.len() {
                    if col.is_valid(i) && !bad_rows[bi].contains_key(&i) {
                        new_keys.entry(key_of(col, i)).or_default().push((bi, i));
                    }
                }
            }
            if !new_keys.is_empty() {
                let seen: Vec<String> = decoded[..first_new]
                    .par_iter()
                    .flat_map_iter(|d| {
                        let col = d.batch.column(k);
                        let utf8 = col.data_type() == &DataType::Utf8;
                        (0..col.len())
                            .filter(|&i| col.is_valid(i))
                            .filter_map(|i| {
                                let found = if utf8 {
                                    new_keys.contains_key(col.as_string::<i32>().value(i))
                                } else {
                                    new_keys.contains_key(&key_of(col, i))
                                };
                                found.then(|| key_of(col, i))
                            })
                            .collect::<Vec<_>>()
                    })
                    .collect();
                for key in seen {
                    for &(bi, i) in new_keys.get(&key).into_iter().flatten() {
                        bad_rows[bi].insert(i, format!("duplicate key `{key}`"));
                    }
                }
            }
        }
    }
    let mut out = Vec::new();
    for ((d, bad), who) in decoded.into_iter().zip(bad_rows).zip(owner) {
        let Some(fi) = who else { continue };
        let shown = &shown_of[fi];
        if bad.is_empty() {
            out.push(d.batch);
            continue;
        }
        for (i, reason) in &bad {
            b.bad(&format!("{shown}:row {}", d.first_row + i), reason.clone());
        }
        let keep: datafusion::arrow::array::BooleanArray = (0..d.batch.num_rows())
            .map(|i| Some(!bad.contains_key(&i)))
            .collect();
        out.push(
            datafusion::arrow::compute::filter_record_batch(&d.batch, &keep)
                .map_err(|e| format!("{shown}: {e}"))?,
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::datatypes::{Field, TimeUnit};
    use datafusion::parquet::file::properties::WriterProperties;

    use super::super::read_files as read;
    use super::super::tests::{field, parquet_source, schema_of, tiered};
    use super::*;

    fn write_parquet(dir: &Path, batch: &RecordBatch, props: Option<WriterProperties>) {
        let file = std::fs::File::create(dir.join("t.parquet")).expect("create");
        let mut writer =
            datafusion::parquet::arrow::ArrowWriter::try_new(file, batch.schema(), props)
                .expect("writer");
        writer.write(batch).expect("write");
        writer.close().expect("close");
    }

    /// A filter's string column is decoded as a dictionary only where
    /// every data page of its chunks in the row groups read is
    /// dictionary-encoded: not a column written plain, not one whose
    /// writer fell back to plain pages past its dictionary's size, not a
    /// string column that is no string field, not a column not asked for.
    #[test]
    fn filter_strings_are_dictionaries_only_where_every_page_is() {
        use datafusion::arrow::array::StringArray;
        use datafusion::parquet::schema::types::ColumnPath;

        let dir = std::env::temp_dir().join(format!("accord-parquet-dict-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let rows = 4_000;
        let text = |f: &dyn Fn(usize) -> String| -> ArrayRef {
            Arc::new(StringArray::from((0..rows).map(f).collect::<Vec<_>>()))
        };
        let columns = ["tier", "plain", "spilled", "n", "other"];
        let file_schema = Arc::new(datafusion::arrow::datatypes::Schema::new(
            columns
                .iter()
                .map(|c| Field::new(*c, DataType::Utf8, true))
                .collect::<Vec<_>>(),
        ));
        let batch = RecordBatch::try_new(
            file_schema,
            vec![
                text(&|i| ["gold", "silver"][i % 2].to_string()),
                text(&|i| ["gold", "silver"][i % 2].to_string()),
                // Distinct values past a dictionary of 1 KiB: the rest of
                // the row group is written plain.
                text(&|i| format!("value-{i:06}")),
                text(&|i| (i % 7).to_string()),
                text(&|i| ["x", "y"][i % 2].to_string()),
            ],
        )
        .expect("batch");
        let props = WriterProperties::builder()
            .set_max_row_group_row_count(Some(1_000))
            .set_column_dictionary_enabled(ColumnPath::from("plain"), false)
            .set_dictionary_page_size_limit(1_024)
            .build();
        write_parquet(&dir, &batch, Some(props));
        let schema = schema_of(
            "account",
            None,
            vec![
                ("tier", field("string", None)),
                ("plain", field("string", None)),
                ("spilled", field("string", None)),
                ("n", field("int", None)),
                ("other", field("string", None)),
            ],
        );
        let target = Target::of(&schema);
        let metadata = footer_with_pages(&dir.join("t.parquet"), "t.parquet").expect("a footer");
        let _ = std::fs::remove_dir_all(&dir);
        let asked: BTreeSet<String> = ["tier", "plain", "spilled", "n"].map(String::from).into();
        let groups: Vec<usize> = (0..metadata.metadata().num_row_groups()).collect();
        assert_eq!(groups.len(), 4, "the test needs several row groups");
        let decoded =
            with_string_dictionaries(&metadata, &target, &asked, &groups).expect("metadata");
        let types: Vec<String> = columns
            .iter()
            .map(|c| {
                let field = decoded.schema().field_with_name(c).expect("a column");
                format!("{c}: {}", field.data_type())
            })
            .collect();
        assert_eq!(
            types,
            [
                "tier: Dictionary(Int32, Utf8)",
                "plain: Utf8",
                "spilled: Utf8",
                "n: Utf8",
                "other: Utf8",
            ]
        );
    }

    /// A Parquet file of several row groups (decoded on several threads)
    /// comes back whole, in file order, typed by the schema: an int32
    /// column widened, a zoned timestamp kept as UTC, a schema field the
    /// file lacks as nulls, a column the schema lacks ignored.
    #[test]
    fn reads_parquet_row_groups_in_order() {
        use datafusion::arrow::array::{
            AsArray, Int32Array, StringArray, TimestampMicrosecondArray,
        };

        let dir = std::env::temp_dir().join(format!("accord-parquet-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let rows = 10_000;
        let file_schema = Arc::new(datafusion::arrow::datatypes::Schema::new(vec![
            Field::new("id", DataType::Utf8, true),
            Field::new("n", DataType::Int32, true),
            Field::new(
                "at",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                true,
            ),
            Field::new("extra", DataType::Utf8, true),
        ]));
        let batch = RecordBatch::try_new(
            file_schema.clone(),
            vec![
                Arc::new(StringArray::from(
                    (0..rows).map(|i| format!("K{i:05}")).collect::<Vec<_>>(),
                )),
                Arc::new(Int32Array::from((0..rows as i32).collect::<Vec<_>>())),
                Arc::new(
                    TimestampMicrosecondArray::from(
                        (0..rows as i64).map(|i| i * 1_000_000).collect::<Vec<_>>(),
                    )
                    .with_timezone("UTC"),
                ),
                Arc::new(StringArray::from(vec!["x"; rows])),
            ],
        )
        .expect("batch");
        let props = WriterProperties::builder()
            .set_max_row_group_row_count(Some(1_000))
            .build();
        write_parquet(&dir, &batch, Some(props));
        let schema = schema_of(
            "event",
            Some("at"),
            vec![
                ("id", field("string", None)),
                ("n", field("int", None)),
                ("at", field("timestamp", None)),
                ("missing", field("string", None)),
            ],
        );
        let source = parquet_source(Some("1d"));
        let now = 20_000 * 1_000_000;
        let groups =
            datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
                std::fs::File::open(dir.join("t.parquet")).expect("open"),
            )
            .expect("metadata")
            .metadata()
            .num_row_groups();
        assert_eq!(groups, 10, "the test needs several row groups");
        let loaded = read(&dir, "t", &source, &schema, now).expect("reads");
        let _ = std::fs::remove_dir_all(&dir);

        assert_eq!(loaded.report.rows, rows as u64);
        assert_eq!(loaded.present, vec!["at", "id", "n"]);
        assert_eq!(loaded.report.freshness, "fresh");
        let all =
            datafusion::arrow::compute::concat_batches(&arrow_schema(&schema), &loaded.batches)
                .expect("one schema");
        let ids = all.column_by_name("id").expect("id").as_string::<i32>();
        let ns = all
            .column_by_name("n")
            .expect("n")
            .as_primitive::<datafusion::arrow::datatypes::Int64Type>();
        for i in 0..rows {
            assert_eq!(ids.value(i), format!("K{i:05}"));
            assert_eq!(ns.value(i), i as i64);
        }
        assert_eq!(
            all.column_by_name("missing").expect("missing").null_count(),
            rows
        );
    }

    /// Parquet rows get the checks text rows get: a value that does not
    /// convert, a value outside a closed domain, a missing or duplicate key
    /// are counted, sampled with their row number and left out.
    #[test]
    fn parquet_rows_that_do_not_type_are_reported_and_left_out() {
        use datafusion::arrow::array::StringArray;

        let dir = std::env::temp_dir().join(format!("accord-parquet-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let text = |v: Vec<Option<&str>>| -> ArrayRef { Arc::new(StringArray::from(v)) };
        let file_schema = Arc::new(datafusion::arrow::datatypes::Schema::new(vec![
            Field::new("id", DataType::Utf8, true),
            Field::new("n", DataType::Utf8, true),
            Field::new("tier", DataType::Utf8, true),
        ]));
        let batch = RecordBatch::try_new(
            file_schema.clone(),
            vec![
                text(vec![
                    Some("a"),
                    Some("b"),
                    Some("c"),
                    Some("a"),
                    None,
                    Some("d"),
                ]),
                text(vec![
                    Some("1"),
                    Some("twelve"),
                    Some("3"),
                    Some("4"),
                    Some("5"),
                    None,
                ]),
                text(vec![
                    Some("gold"),
                    Some("gold"),
                    Some("platinum"),
                    Some("gold"),
                    Some("gold"),
                    None,
                ]),
            ],
        )
        .expect("batch");
        write_parquet(&dir, &batch, None);
        let schema = tiered(Vec::new());
        let source = parquet_source(None);
        let loaded = read(&dir, "t", &source, &schema, 0).expect("reads");
        let _ = std::fs::remove_dir_all(&dir);

        assert_eq!(
            loaded.report.bad_rows, 4,
            "{:?}",
            loaded.report.bad_row_samples
        );
        assert_eq!(
            loaded.report.bad_row_samples,
            vec![
                "t.parquet:row 2: `n`: `twelve` is not an int",
                "t.parquet:row 3: `platinum` is not one of the values of `tier` (gold, silver)",
                "t.parquet:row 4: duplicate key `a`",
                "t.parquet:row 5: missing key `id`",
            ]
        );
        assert_eq!(loaded.report.rows, 2);
        let ids: Vec<&str> = loaded
            .batches
            .iter()
            .flat_map(|b| {
                let col = b.column_by_name("id").expect("id").as_string::<i32>();
                (0..col.len()).map(|i| col.value(i)).collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(ids, vec!["a", "d"]);
    }

    /// A file's rows go one run per core: whole row groups when there
    /// are enough of them, pieces of its row groups (none smaller than the
    /// fewest rows a piece holds) when there are not; every row in exactly
    /// one run, in order.
    #[test]
    fn a_file_is_read_in_one_run_per_core() {
        let groups = |rows: &[usize]| -> Vec<Group> {
            let mut first_row = 1;
            rows.iter()
                .enumerate()
                .map(|(index, &rows)| {
                    let g = Group {
                        index,
                        first_row,
                        rows,
                    };
                    first_row += rows;
                    g
                })
                .collect()
        };
        let shape = |runs: Vec<Run>| -> Vec<(Vec<usize>, usize, usize, usize)> {
            runs.into_iter()
                .map(|r| (r.row_groups, r.first_row, r.skip, r.rows))
                .collect()
        };
        // Enough row groups: contiguous groups per core, none split.
        assert_eq!(
            shape(runs_of(&groups(&[10, 20, 30]), 2, 4)),
            vec![(vec![0, 1], 1, 0, 30), (vec![2], 31, 0, 30)]
        );
        // One row group, two cores: two pieces, the second skipping the first.
        assert_eq!(
            shape(runs_of(&groups(&[101]), 2, 4)),
            vec![(vec![0], 1, 0, 51), (vec![0], 52, 51, 50)]
        );
        // Two groups, four cores: each group in two pieces.
        assert_eq!(
            shape(runs_of(&groups(&[8, 9]), 4, 4)),
            vec![
                (vec![0], 1, 0, 4),
                (vec![0], 5, 4, 4),
                (vec![1], 9, 0, 5),
                (vec![1], 14, 5, 4)
            ]
        );
        // Too few rows to split in pieces of at least 4, or one core.
        assert_eq!(
            shape(runs_of(&groups(&[7]), 2, 4)),
            vec![(vec![0], 1, 0, 7)]
        );
        assert_eq!(
            shape(runs_of(&groups(&[100]), 1, 4)),
            vec![(vec![0], 1, 0, 100)]
        );
        assert_eq!(
            shape(runs_of(&groups(&[10]), 8, 4)),
            vec![(vec![0], 1, 0, 5), (vec![0], 6, 5, 5)]
        );
        assert!(runs_of(&[], 2, 4).is_empty());
    }
}
