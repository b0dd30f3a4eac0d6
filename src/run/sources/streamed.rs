//! Parquet sources streamed into the embedded engine, so a run never
//! holds a source's rows: the rows are checked first, then read again, a
//! batch at a time, each time the engine scans the table.
//!
//! 1. The check pass decodes only the columns whose values can be bad: the
//!    key (missing or repeated), closed domains, and columns whose Parquet
//!    type is not the field's type (a value may not convert). A column
//!    whose Parquet type is the field's type, with no domain, holds nothing
//!    a check could refuse. Once a batch is checked, only its keys are kept
//!    (repeated keys are found across every file); the pass records the
//!    rows left out, by their number in the file. Freshness then decodes
//!    the columns it judges, a batch at a time, without those rows.
//! 2. The table: one partition per core ([`Scan`]), each reading its share
//!    of the files' runs of rows (`parquet::Run`: whole row groups, or a
//!    piece of a large one) one after the other, decodes the columns the
//!    scanning query uses (of those the run reads), types them, and skips
//!    the rows the check pass refused (a row selection). A file changed
//!    between the two passes (its size or modification time) fails the
//!    scan rather than giving rows that were not checked.
//!
//! The report is the one a whole read gives: the same bad rows, samples,
//! row count and freshness. The files are the project's, or local copies
//! of a store's objects holding the columns the run reads
//! (`object::Remote::copy_parquet`; [`Origin`]), and an append-only
//! source's cached segments before its new files
//! ([`read_streamed`]'s `earlier`), or a mixed source's text rows before
//! its Parquet files (`super::read_mixed`). Text files are typed into a
//! spill file first (`super::spill`). Spark reads a local Parquet source
//! itself where it can (`super::in_spark`); otherwise it is sent the
//! streams' batches, a piece at a time.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, StringArray, StringViewArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::compute::{
    SlicesIterator, concat_batches, filter_record_batch, prep_null_mask_filter,
};
use datafusion::arrow::datatypes::{DataType, FieldRef, Schema, SchemaRef};
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};
use datafusion::error::DataFusionError;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReader;
use datafusion::parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ParquetRecordBatchReaderBuilder, RowSelection, RowSelector,
};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::utils::collect_columns;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;

use super::freshness::{Newest, judge_found, judges_freshness};
use super::keys::{KeyHashes, RowBits, RunKeys, apart, key_hash, repeated_among};
use super::parquet::{
    BATCH_ROWS, Layout, Run, Target, columns_mask, conformed, footer, footer_with_pages, layout,
    row_group_reader, typed, with_string_dictionaries, with_string_views,
};
use super::spill::spill_properties;
use super::typing::{Builder, arrow_type};
use super::{Earlier, Input, Loaded, Spilled, columns_read, modified, present_fields};
use crate::plan::{SchemaPlan, SourcePlan};
use crate::run::engine::{Scan, projected};
use crate::run::error::RunError;
use crate::run::report::RunDiagnostic;
use crate::time::Micros;

/// Rows per streamed batch: the engine's batch size, so operators work on
/// cache-sized pieces.
const STREAM_ROWS: usize = 8192;

/// Where the files of a streamed source are.
pub(super) enum Origin {
    /// The project's own files.
    Local,
    /// Local copies of a store's objects (`object::Remote::copy_parquet`),
    /// in a folder removed once the engine lets go of the streams.
    Copies {
        /// The objects, for their modification times.
        objects: Vec<Input>,
        bytes_read: u64,
        folder: Arc<tempfile::TempDir>,
    },
}

/// Checks the Parquet `files` (`(path, shown)`, in read order) of a source
/// and returns it as streams over them: `needed` is the columns the run
/// reads, `problems` what was found locating the files.
///
/// `earlier`: an append-only source's cache (`earlier.segments`, checked
/// when they were cached), a mixed source's text rows (one segment typed
/// by this run, `earlier.typed_text`), or nothing. Its rows come first, so a new row
/// repeating a cached key is the one left out; their keys and freshness
/// columns are read, their rows streamed with the new ones, and the report
/// goes on from the cache's (files, bad rows, samples, fields present).
/// With `earlier.folder`, the new files' rows (checked, every column) are
/// also written there as one file (`Loaded::spilled`), for the cache to
/// keep as its next segment: the typed text rows' segment first, when
/// there is one (an append-only source whose new files mix both kinds).
pub(super) fn read_streamed(
    name: &str,
    (source, schema): (&SourcePlan, &SchemaPlan),
    now: Micros,
    needed: &BTreeSet<String>,
    (files, origin): (Vec<(PathBuf, String)>, Origin),
    problems: Vec<RunDiagnostic>,
    earlier: Earlier,
) -> Result<Loaded, RunError> {
    let failed = |reason: String| RunError::Source {
        source: name.to_string(),
        reason,
    };
    let mut b = Builder::new(&source.schema, schema);
    b.source = name.to_string();
    b.diagnostics = problems;
    b.report.files = earlier.files;
    b.report.bad_rows = earlier.bad_rows;
    b.report.bad_row_samples = earlier.samples;
    let target = Arc::new(Target::of(schema));
    let mut present: Vec<bool> = b
        .names()
        .iter()
        .map(|n| earlier.present.contains(n))
        .collect();
    let mut tables = Vec::new();
    let mut checks = Vec::new();
    let mut rows = 0usize;
    // The cached segments: only their keys are checked (against the new
    // rows'), and they are not the report's files (the cache's are).
    let cached = earlier.segments.len();
    let segments = earlier.segments.iter().map(|s| {
        (
            s.path.clone(),
            super::remember::segment_shown(name, &s.path),
        )
    });
    let files: Vec<(PathBuf, String)> = segments.chain(files).collect();
    let local = matches!(origin, Origin::Local);
    // Every footer first: the duplicate-key check numbers the rows of the
    // whole source, and keeps the more bits of each key's hash the fewer
    // they are (`KeyHashes`).
    let mut footers = Vec::with_capacity(files.len());
    for (n, (file, shown)) in files.iter().enumerate() {
        footers.push(match earlier.segments.get(n) {
            Some(segment) => segment.footer.clone(),
            None if local => footer_with_pages(file, shown).map_err(failed)?,
            None => footer(file, shown).map_err(failed)?,
        });
    }
    let source_rows: usize = footers
        .iter()
        .map(|f| f.metadata().file_metadata().num_rows().max(0) as usize)
        .sum();
    let bits = RowBits::of(source_rows).map_err(failed)?;
    for (n, ((file, shown), metadata)) in files.iter().zip(footers).enumerate() {
        let stamp = stamp(file).map_err(|e| failed(format!("{shown}: {e}")))?;
        if n < cached {
            let check: BTreeSet<String> = schema.key.iter().cloned().collect();
            let first = rows;
            rows += metadata.metadata().file_metadata().num_rows().max(0) as usize;
            let check_layout =
                check_pass_layout(&metadata, schema, &target, &check).map_err(failed)?;
            let checked = check_file(file, shown, schema, &check_layout, &target, (first, bits))
                .map_err(failed)?;
            checks.push((first, check_layout, checked));
            tables.push((layout(metadata, Some(needed)), stamp));
            continue;
        }
        b.report.files.push(shown.clone());
        let check = check_columns(schema, needed, metadata.schema());
        let check_layout = check_pass_layout(&metadata, schema, &target, &check).map_err(failed)?;
        let columns = check_layout.columns.clone();
        for (i, field) in b.names().iter().enumerate() {
            present[i] |= columns.iter().any(|c| c == *field);
        }
        for column in columns.iter().filter(|c| !schema.fields.contains_key(*c)) {
            b.unknown_column(shown, shown, "column", column);
        }
        let file_rows = metadata.metadata().file_metadata().num_rows().max(0) as usize;
        if file_rows == 0 {
            b.empty_file(shown, "holds no rows");
        }
        let first = rows;
        rows += file_rows;
        let checked = if check.is_empty() {
            Vec::new()
        } else {
            check_file(file, shown, schema, &check_layout, &target, (first, bits))
                .map_err(failed)?
        };
        checks.push((first, check_layout, checked));
        tables.push((layout(metadata, Some(needed)), stamp));
    }
    // Per file: the rows left out, numbered from 0, and why.
    let mut bad: Vec<BTreeMap<usize, String>> = Vec::with_capacity(files.len());
    for (_, _, runs) in &mut checks {
        let mut rows = BTreeMap::new();
        for run in runs.iter_mut() {
            rows.extend(std::mem::take(&mut run.bad));
        }
        bad.push(rows);
    }
    let hashes = key_hashes(&files, &mut checks, &bad, schema, bits).map_err(failed)?;
    let matches = KeyHashes::matches(&hashes);
    drop(hashes);
    if !matches.is_empty() {
        let firsts: Vec<usize> = checks.iter().map(|(first, _, _)| *first).collect();
        let mut wanted: Vec<u32> = matches.iter().flat_map(|&(r, f)| [r, f]).collect();
        wanted.sort_unstable();
        wanted.dedup();
        let mut text = HashMap::new();
        for (((file, shown), (layout, _)), &first) in files.iter().zip(&tables).zip(&firsts) {
            keys_of(
                file,
                shown,
                (schema, &target),
                layout,
                first,
                &wanted,
                &mut text,
            )
            .map_err(failed)?;
        }
        let key = |row: u32| text.get(&row).map_or("", String::as_str);
        for row in repeated_among(&matches, key) {
            let repeated = key(row);
            let row = row as usize;
            let f = firsts.partition_point(|&first| first <= row) - 1;
            bad[f].insert(row - firsts[f], format!("duplicate key `{repeated}`"));
        }
    }
    if bad[..cached].iter().any(|rows| !rows.is_empty()) {
        return Err(failed(
            "the cached rows repeat a key; delete `.accord/sources` to read the source in full"
                .into(),
        ));
    }
    let mut left_out = Vec::with_capacity(files.len());
    for ((_, shown), rows) in files.iter().zip(bad) {
        for (row, reason) in &rows {
            b.bad(&format!("{shown}:row {}", row + 1), reason.clone());
        }
        left_out.push(rows.into_keys().collect::<Vec<usize>>());
    }
    let (_, mut report, mut diagnostics) = b.finish();
    report.rows = (rows - left_out.iter().map(Vec::len).sum::<usize>()) as u64;
    let read = columns_read(schema, needed);
    // A mixed source's text rows: their files' modification times count,
    // not their segment's (written by this run), and they are new rows.
    let first_new = cached - usize::from(earlier.typed_text.is_some());
    let (text_modified, text_folder) = match earlier.typed_text {
        Some(typed) => (Some(typed.modified), Some(typed.folder)),
        None => (None, None),
    };
    let (inputs, folder) = match origin {
        Origin::Local => {
            let segments = if text_modified.is_some() { cached } else { 0 };
            let inputs = files[segments..]
                .iter()
                .map(|(file, shown)| Input::Local {
                    file: file.clone(),
                    shown: shown.clone(),
                })
                .collect();
            (inputs, text_folder)
        }
        Origin::Copies {
            objects,
            bytes_read,
            folder,
        } => {
            // An object store's report always names the columns checked.
            report.bytes_read = Some(bytes_read);
            report.columns_checked = read.clone();
            (objects, Some(folder))
        }
    };
    if read.len() < schema.fields.len() {
        report.columns_checked = read;
    }
    let mut found = Newest::none();
    for (((file, shown), (layout, _)), left_out) in files.iter().zip(&tables).zip(&left_out) {
        found.merge(
            newest(
                file,
                shown,
                (source, schema),
                layout,
                left_out,
                &target,
                now,
            )
            .map_err(failed)?,
        );
    }
    let modified = [text_modified.flatten(), modified(source, &inputs)]
        .into_iter()
        .flatten()
        .max_by_key(|m| m.at);
    judge_found(
        &mut report,
        &mut diagnostics,
        name,
        (source, schema),
        found,
        modified,
        now,
    );
    let checked: Vec<Arc<File>> = files
        .into_iter()
        .zip(tables)
        .zip(left_out)
        .map(|(((path, shown), (layout, stamp)), left_out)| {
            Arc::new(File {
                path,
                shown,
                layout,
                stamp,
                left_out,
                target: target.clone(),
                _folder: folder.clone(),
            })
        })
        .collect();
    let spilled = match earlier.folder {
        Some(folder) => {
            let (path, rows) =
                copy_rows(&checked[first_new..], &target, folder.path()).map_err(failed)?;
            Some(Spilled {
                path,
                rows,
                _folder: Some(folder),
            })
        }
        None => None,
    };
    let streams = streams_of(checked, &target);
    let present = present_fields(schema, &present);
    Ok(Loaded {
        streams,
        spilled,
        ..Loaded::of(name, source, present, report, diagnostics)
    })
}

/// The layout the check pass reads a file with: the columns `check`, a
/// string key read as views (it is only hashed: its values need no copy),
/// unless its values are checked against a list.
fn check_pass_layout(
    metadata: &ArrowReaderMetadata,
    schema: &SchemaPlan,
    target: &Target,
    check: &BTreeSet<String>,
) -> Result<Layout, String> {
    let key: BTreeSet<String> = schema
        .key
        .iter()
        .filter(|k| schema.fields.get(*k).is_some_and(|f| f.values.is_none()))
        .cloned()
        .collect();
    Ok(layout(
        with_string_views(metadata, target, &key)?,
        Some(check),
    ))
}

/// Writes the rows of checked `files` (typed as `target`, without the
/// rows left out) as one file in `folder`, as a spill file is written: its
/// path, and its rows.
fn copy_rows(
    files: &[Arc<File>],
    target: &Target,
    folder: &Path,
) -> Result<(PathBuf, u64), String> {
    // Not `rows.parquet`: a mixed read's typed text rows, among those
    // copied, may be that file of the same folder.
    let path = folder.join("new-rows.parquet");
    let shown = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let out = std::fs::File::create(&path).map_err(|e| shown(&e))?;
    let mut writer = ArrowWriter::try_new(out, target.schema.clone(), Some(spill_properties()))
        .map_err(|e| shown(&e))?;
    let mut rows = 0;
    for file in files {
        for run in file.layout.runs.clone() {
            let run = Piece {
                file: file.clone(),
                run,
            };
            for batch in run.batches(None, None) {
                let batch = batch.map_err(|e| e.to_string())?;
                rows += batch.num_rows() as u64;
                writer.write(&batch).map_err(|e| shown(&e))?;
            }
        }
    }
    writer.close().map_err(|e| shown(&e))?;
    Ok((path, rows))
}

/// What the check pass found in one run of rows.
struct RunChecked {
    /// The rows left out (numbered from 0 in the file) and why: the first
    /// value that did not type or is outside its domain, or a missing key.
    bad: BTreeMap<usize, String>,
    /// How its keys came (a schema with a key).
    order: RunKeys,
    /// The hashes of the other rows' keys from where the keys stopped
    /// increasing ([`RunKeys::Hashed`]).
    keys: Option<KeyHashes>,
}

/// The check pass over one file (its runs of rows on every core):
/// the columns of `layout` typed and checked a batch at a time, the keys
/// hashed and nothing kept. `first` is the number of the file's first row
/// among every row of the source, whose numbers take `bits`.
fn check_file(
    file: &Path,
    shown: &str,
    schema: &SchemaPlan,
    layout: &Layout,
    target: &Target,
    (first, bits): (usize, RowBits),
) -> Result<Vec<RunChecked>, String> {
    use rayon::prelude::*;
    let key = schema
        .key
        .as_ref()
        .and_then(|k| schema.fields.keys().position(|f| f == k).map(|i| (i, k)));
    let run = |run: Run| -> Result<RunChecked, String> {
        let mut out = RunChecked {
            bad: BTreeMap::new(),
            order: RunKeys::Increasing(None),
            keys: None,
        };
        let mut next = run.first_row - 1;
        let mut kept: Vec<usize> = Vec::new();
        for batch in row_group_reader(file, shown, layout, &run, BATCH_ROWS)? {
            let mut batch = batch.map_err(|e| format!("{shown}: {e}"))?;
            let start = next;
            next += batch.num_rows();
            // A key read as views is only hashed, as it was read: it is
            // taken out, and the other columns are typed and checked.
            let viewed_key = key
                .and_then(|(_, name)| batch.schema().index_of(name).ok())
                .filter(|&i| batch.column(i).data_type() == &DataType::Utf8View)
                .map(|i| batch.remove_column(i));
            let decoded = typed(&batch, target, schema, start + 1, shown)?;
            for (i, reason) in decoded.bad {
                out.bad.entry(start + i).or_insert(reason);
            }
            let Some((k, key_name)) = key else {
                continue;
            };
            let col = viewed_key.as_ref().unwrap_or(decoded.batch.column(k));
            // The rows of this batch already left out (few): skipped by
            // walking them in order beside the rows, not by a lookup per row.
            let left_out: Vec<usize> = out
                .bad
                .range(start..next)
                .map(|(&row, _)| row - start)
                .collect();
            let mut left_out = left_out.into_iter().peekable();
            let nulls = col.logical_nulls();
            kept.clear();
            for i in 0..col.len() {
                if left_out.next_if_eq(&i).is_some() {
                    continue;
                }
                if nulls.as_ref().is_some_and(|n| n.is_null(i)) {
                    out.bad
                        .insert(start + i, format!("missing key `{key_name}`"));
                    continue;
                }
                kept.push(i);
            }
            let keys = KeyColumn::of(col);
            keys.compare(&mut out.order, start + 1 - run.first_row, &kept);
            let RunKeys::Hashed { .. } = out.order else {
                continue;
            };
            let hashes = out
                .keys
                .get_or_insert_with(|| KeyHashes::new(run.rows, bits));
            for &i in &kept {
                // The source's rows fit in u32 (checked by the caller).
                hashes.push(keys.hash(i), (first + start + i) as u32);
            }
        }
        Ok(out)
    };
    // In the layout's order: `key_hashes` reads a run's keys again by it.
    layout.runs.clone().into_par_iter().map(run).collect()
}

/// The key hashes of a source's runs, in file order, for the duplicate-key
/// check: none when every run's keys increased and no two runs' ranges
/// meet (no key can repeat); else every key, the rows a run only compared
/// ([`RunKeys`]) read again and hashed ahead of the run's own hashes, so
/// that a repeated key's first row stays the one kept.
fn key_hashes(
    files: &[(PathBuf, String)],
    checks: &mut [(usize, Layout, Vec<RunChecked>)],
    bad: &[BTreeMap<usize, String>],
    schema: &SchemaPlan,
    bits: RowBits,
) -> Result<Vec<KeyHashes>, String> {
    use rayon::prelude::*;
    let runs = || checks.iter().flat_map(|(_, _, runs)| runs);
    let mut ranges = Vec::new();
    let increasing = runs().all(|run| match &run.order {
        RunKeys::Increasing(range) => {
            ranges.extend(range);
            true
        }
        RunKeys::Hashed { .. } => false,
    });
    if increasing && apart(ranges.into_iter()) {
        return Ok(Vec::new());
    }
    let Some(key) = &schema.key else {
        return Ok(Vec::new());
    };
    let only_key = BTreeSet::from([key.clone()]);
    let mut hashes = Vec::new();
    for (((file, shown), (first, layout, runs)), bad) in
        files.iter().zip(checks.iter_mut()).zip(bad)
    {
        let key_layout = super::parquet::layout(layout.metadata.clone(), Some(&only_key));
        let compared = |(checked, run): (&RunChecked, &Run)| match &checked.order {
            RunKeys::Increasing(Some(_)) => run.rows,
            RunKeys::Increasing(None) => 0,
            RunKeys::Hashed { from } => *from,
        };
        // `check_file` gave the runs in the layout's order.
        let again: Vec<Option<KeyHashes>> = runs
            .par_iter()
            .zip(&layout.runs)
            .map(|(checked, run)| match compared((checked, run)) {
                0 => Ok(None),
                rows => {
                    let prefix = (file.as_path(), shown.as_str(), &key_layout, run, rows);
                    compared_keys(prefix, bad, *first, bits).map(Some)
                }
            })
            .collect::<Result<_, String>>()?;
        for (run, again) in runs.iter_mut().zip(again) {
            hashes.extend(again);
            hashes.extend(run.keys.take());
        }
    }
    Ok(hashes)
}

/// The hashes of the keys of the first `rows` rows of `run` (of a file
/// whose first row is the source's row `first`), read again, without the
/// rows left out (`bad`, numbered from 0 in the file).
fn compared_keys(
    (file, shown, layout, run, rows): (&Path, &str, &Layout, &Run, usize),
    bad: &BTreeMap<usize, String>,
    first: usize,
    bits: RowBits,
) -> Result<KeyHashes, String> {
    let mut hashes = KeyHashes::new(rows, bits);
    let start = run.first_row - 1;
    // The rows left out (few), walked beside the rows as the check pass
    // walks them, not looked up per row.
    let mut left_out = bad
        .range(start..start + rows)
        .map(|(&row, _)| row)
        .peekable();
    let mut next = start;
    for batch in row_group_reader(file, shown, layout, run, BATCH_ROWS)? {
        let batch = batch.map_err(|e| format!("{shown}: {e}"))?;
        let keys = KeyColumn::of(batch.column(0));
        let take = batch.num_rows().min(start + rows - next);
        for i in 0..take {
            let row = next + i;
            if left_out.next_if_eq(&row).is_none() {
                hashes.push(keys.hash(i), (first + row) as u32);
            }
        }
        next += take;
        if next >= start + rows {
            break;
        }
    }
    Ok(hashes)
}

/// A key column as the check pass reads it: text (views or strings) taken
/// without a cast or a dynamic call per row, another type by its text.
struct KeyColumn<'a> {
    column: &'a ArrayRef,
    strings: Option<&'a StringArray>,
    views: Option<&'a StringViewArray>,
}

impl<'a> KeyColumn<'a> {
    fn of(column: &'a ArrayRef) -> KeyColumn<'a> {
        KeyColumn {
            column,
            strings: column.as_string_opt::<i32>(),
            views: column.as_string_view_opt(),
        }
    }

    /// Takes the keys of `rows` (of a batch that starts at the run's row
    /// `start`) into `order`; keys of other types than text are hashed,
    /// since their text's order is not theirs.
    fn compare(&self, order: &mut RunKeys, start: usize, rows: &[usize]) {
        match (self.strings, self.views) {
            (Some(strings), _) => order.take(start, rows.iter().map(|&i| strings.value(i))),
            (_, Some(views)) => order.take(start, rows.iter().map(|&i| views.value(i))),
            _ => *order = RunKeys::Hashed { from: 0 },
        }
    }

    fn hash(&self, i: usize) -> u64 {
        match (self.strings, self.views) {
            (Some(strings), _) => key_hash(strings.value(i)),
            (_, Some(views)) => key_hash(views.value(i)),
            _ => key_hash(&key_text(self.column, i)),
        }
    }
}

/// The key of a row as the checks compare it: a string as it is, another
/// type by its text.
fn key_text(col: &ArrayRef, i: usize) -> std::borrow::Cow<'_, str> {
    match col.data_type() {
        DataType::Utf8 => col.as_string::<i32>().value(i).into(),
        _ => datafusion::arrow::util::display::array_value_to_string(col, i)
            .unwrap_or_default()
            .into(),
    }
}

/// The keys of the rows `wanted` (numbered among every row of the source,
/// sorted) that are in one file, whose first row is `first`: its key column
/// decoded again, only those rows selected.
fn keys_of(
    file: &Path,
    shown: &str,
    (schema, target): (&SchemaPlan, &Target),
    layout: &Layout,
    first: usize,
    wanted: &[u32],
    text: &mut HashMap<u32, String>,
) -> Result<(), String> {
    let Some(key) = &schema.key else {
        return Ok(());
    };
    let rows = layout.metadata.metadata().file_metadata().num_rows().max(0) as usize;
    let from = wanted.partition_point(|&r| (r as usize) < first);
    let to = wanted.partition_point(|&r| (r as usize) < first + rows);
    if from == to {
        return Ok(());
    }
    let k = schema
        .fields
        .keys()
        .position(|f| f == key)
        .ok_or_else(|| format!("{shown}: no key field"))?;
    let only_key = BTreeSet::from([key.clone()]);
    let layout = super::parquet::layout(layout.metadata.clone(), Some(&only_key));
    // Only the pages that hold a wanted row are decoded.
    let wanted = &wanted[from..to];
    let selection = RowSelection::from_consecutive_ranges(
        wanted
            .iter()
            .map(|&r| r as usize - first..r as usize - first + 1),
        rows,
    );
    let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(
        super::open(file)?,
        layout.metadata.clone(),
    )
    .with_projection(layout.mask.clone())
    .with_row_selection(selection)
    .with_batch_size(BATCH_ROWS)
    .build()
    .map_err(|e| format!("{shown}: {e}"))?;
    let mut wanted = wanted.iter();
    for batch in reader {
        let batch = batch.map_err(|e| format!("{shown}: {e}"))?;
        let typed = conformed(&batch, target, shown)?;
        let col = typed.column(k);
        for i in 0..col.len() {
            let row = wanted
                .next()
                .ok_or_else(|| format!("{shown}: more rows than were selected"))?;
            text.insert(*row, key_text(col, i).into_owned());
        }
    }
    Ok(())
}

/// What freshness finds in one file: its columns that freshness judges,
/// decoded again a batch at a time (the check pass kept only the keys),
/// without the rows left out, except in the row groups whose footer tells
/// it all ([`newest_in_footer`]). `layout` is the file's, projected on the
/// columns the run needs.
fn newest(
    file: &Path,
    shown: &str,
    (source, schema): (&SourcePlan, &SchemaPlan),
    layout: &Layout,
    left_out: &[usize],
    target: &Target,
    now: Micros,
) -> Result<Newest, String> {
    use rayon::prelude::*;
    let column = source.freshness_column.as_deref();
    let judged: BTreeSet<String> = layout
        .columns
        .iter()
        .filter(|c| schema.fields.contains_key(*c) && judges_freshness(schema, column, c))
        .cloned()
        .collect();
    if judged.is_empty() {
        return Ok(Newest::none());
    }
    let layout = super::parquet::layout(layout.metadata.clone(), Some(&judged));
    let in_footer = newest_in_footer(&layout, &judged, left_out, now);
    let run = |run: Run| -> Result<Newest, String> {
        let mut found = Newest::none();
        if let Some(groups) = run
            .row_groups
            .iter()
            .map(|&g| in_footer[g].as_ref())
            .collect::<Option<Vec<_>>>()
        {
            for group in groups {
                found.merge(group.clone());
            }
            return Ok(found);
        }
        let mut next = run.first_row - 1;
        for batch in row_group_reader(file, shown, &layout, &run, STREAM_ROWS)? {
            let batch = batch.map_err(|e| format!("{shown}: {e}"))?;
            let start = next;
            next += batch.num_rows();
            let typed = conformed(&batch, target, shown)?;
            let kept = without(&typed, left_out, start).map_err(|e| format!("{shown}: {e}"))?;
            found.merge(Newest::of(&[kept], schema, source, now));
        }
        Ok(found)
    };
    let mut found = Newest::none();
    for part in layout
        .runs
        .clone()
        .into_par_iter()
        .map(run)
        .collect::<Vec<_>>()
    {
        found.merge(part?);
    }
    Ok(found)
}

/// Per row group of `layout`'s file: what freshness finds in it, taken
/// from the footer's statistics of the `judged` columns where they tell it
/// all, so that the group is not decoded; `None` where they do not. They
/// tell it all when no row of the group is left out (the statistics count
/// every row), each judged column holds timestamps in microseconds of UTC
/// (the values the run would decode, unconverted), and its newest value is
/// at or before `now` (no later time to count) or it holds only nulls.
fn newest_in_footer(
    layout: &Layout,
    judged: &BTreeSet<String>,
    left_out: &[usize],
    now: Micros,
) -> Vec<Option<Newest>> {
    use datafusion::arrow::datatypes::TimeUnit;
    use datafusion::parquet::file::statistics::Statistics;
    let parquet = layout.metadata.metadata();
    let arrow = layout.metadata.schema();
    let leaves = parquet.file_metadata().schema_descr().columns();
    let judged: Option<Vec<(usize, &String)>> = judged
        .iter()
        .map(|name| {
            let utc = matches!(
                arrow.field_with_name(name).ok()?.data_type(),
                DataType::Timestamp(TimeUnit::Microsecond, zone)
                    if zone.as_deref().is_none_or(|z| matches!(z, "UTC" | "+00:00"))
            );
            let leaf = leaves
                .iter()
                .position(|leaf| leaf.path().parts() == [name.as_str()])?;
            utc.then_some((leaf, name))
        })
        .collect();
    let mut first = 0;
    parquet
        .row_groups()
        .iter()
        .map(|group| {
            let rows = group.num_rows().max(0) as usize;
            let (start, end) = (first, first + rows);
            first = end;
            let next_left_out = left_out[left_out.partition_point(|&r| r < start)..].first();
            if next_left_out.is_some_and(|&r| r < end) {
                return None;
            }
            let mut found = Newest::none();
            for &(leaf, name) in judged.as_ref()? {
                let Some(Statistics::Int64(values)) = group.column(leaf).statistics() else {
                    return None;
                };
                match values.max_opt() {
                    Some(&max) if values.max_is_exact() && max <= now => found.merge(Newest {
                        newest: Some((max, name.clone())),
                        future: BTreeMap::new(),
                    }),
                    None if values.null_count_opt() == Some(rows as u64) => {}
                    _ => return None,
                }
            }
            Some(found)
        })
        .collect()
}

/// The columns of `needed` the check pass reads, for a file whose columns
/// are `file_schema`: those whose values can be refused.
fn check_columns(
    schema: &SchemaPlan,
    needed: &BTreeSet<String>,
    file_schema: &SchemaRef,
) -> BTreeSet<String> {
    needed
        .iter()
        .filter(|name| {
            let Some(field) = schema.fields.get(*name) else {
                return false;
            };
            let Ok(in_file) = file_schema.field_with_name(name) else {
                // Not in the file: all null, nothing to check.
                return false;
            };
            schema.key.as_deref() == Some(name.as_str())
                || field.values.is_some()
                || in_file.data_type() != &arrow_type(&field.ty)
        })
        .cloned()
        .collect()
}

/// What a file looked like when it was checked: its size and modification
/// time.
#[derive(Debug, PartialEq)]
pub(super) struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
}

pub(super) fn stamp(file: &Path) -> std::io::Result<Stamp> {
    let meta = std::fs::metadata(file)?;
    Ok(Stamp {
        len: meta.len(),
        modified: meta.modified().ok(),
    })
}

/// One checked Parquet file of a streamed source.
pub(super) struct File {
    pub(super) path: PathBuf,
    pub(super) shown: String,
    /// The footer read by the check pass, projected on the columns the run
    /// needs.
    pub(super) layout: Layout,
    /// The file when it was checked.
    pub(super) stamp: Stamp,
    /// The rows the check pass left out, numbered from 0, in order.
    pub(super) left_out: Vec<usize>,
    pub(super) target: Arc<Target>,
    /// The folder of a copy, kept while the file is read.
    pub(super) _folder: Option<Arc<tempfile::TempDir>>,
}

/// The table over checked `files`: one partition per core, each a share
/// of the files' runs of rows read one after the other (a source of
/// a thousand files opens two at a time, not a thousand).
pub(super) fn streams(files: Vec<File>, target: &Arc<Target>) -> Vec<Arc<dyn Scan>> {
    streams_of(files.into_iter().map(Arc::new).collect(), target)
}

/// [`streams`] over files shared with another reader.
fn streams_of(files: Vec<Arc<File>>, target: &Arc<Target>) -> Vec<Arc<dyn Scan>> {
    let mut runs = Vec::new();
    for file in files {
        for run in file.layout.runs.clone() {
            runs.push(Piece {
                file: file.clone(),
                run,
            });
        }
    }
    let parts = crate::run::engine::cores().clamp(1, runs.len().max(1));
    let mut partitions: Vec<Partition> = (0..parts)
        .map(|_| Partition {
            target: target.clone(),
            runs: Vec::new(),
        })
        .collect();
    for (i, run) in runs.into_iter().enumerate() {
        partitions[i % parts].runs.push(run);
    }
    partitions
        .into_iter()
        .filter(|p| !p.runs.is_empty())
        .map(|p| Arc::new(p) as Arc<dyn Scan>)
        .collect()
}

/// A partition of the table: runs of rows, read one after the other;
/// each run's file is opened when the run is reached.
struct Partition {
    target: Arc<Target>,
    runs: Vec<Piece>,
}

/// A run of rows of one checked file.
#[derive(Clone)]
struct Piece {
    file: Arc<File>,
    run: Run,
}

impl std::fmt::Debug for Partition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(
                self.runs
                    .iter()
                    .map(|piece| (&piece.file.shown, piece.run.first_row, piece.run.rows)),
            )
            .finish()
    }
}

impl PartitionStream for Partition {
    fn schema(&self) -> &SchemaRef {
        &self.target.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        self.read(None, None)
    }
}

impl Scan for Partition {
    fn scan(
        &self,
        projection: Option<&[usize]>,
        filter: Option<&Arc<dyn PhysicalExpr>>,
        _ctx: Arc<TaskContext>,
    ) -> SendableRecordBatchStream {
        projected(
            self.read(projection, filter),
            &self.target.schema,
            projection,
        )
    }
}

impl Partition {
    /// The partition's runs, one after the other, every field of the
    /// schema, of which only those of `projection` are decoded (the others
    /// null), without rows `filter` refuses where it judges them as it
    /// reads ([`Piece::batches`]): `flat_map` starts a run (and opens its
    /// file) only once the run before it is read.
    fn read(
        &self,
        projection: Option<&[usize]>,
        filter: Option<&Arc<dyn PhysicalExpr>>,
    ) -> SendableRecordBatchStream {
        let projection = projection.map(<[usize]>::to_vec);
        let filter = filter.cloned();
        let batches = self
            .runs
            .clone()
            .into_iter()
            .flat_map(move |piece| piece.batches(projection.as_deref(), filter.as_ref()));
        Box::pin(RecordBatchStreamAdapter::new(
            self.target.schema.clone(),
            futures_util::stream::iter(batches),
        ))
    }
}

/// The fewest rows read, on average, between two edges of the runs of
/// rows a filter keeps for the other columns to be read by a selection
/// of those rows: fewer, and the selection skips no page (the reader
/// then decodes every row and filters them, only with more steps).
const CLUSTERED_ROWS: usize = 1024;

impl Piece {
    /// The run's rows, typed, without the rows the check pass left out:
    /// the fields of `projection` decoded (every field when `None`), the
    /// others null, as are fields the file lacks or the run does not read.
    /// With a `filter` over some of those fields and others to decode, the
    /// rows it refuses are left out as they are read ([`Piece::judged`]):
    /// an audience over a window of days of events written in time order
    /// decodes the people of the events in the window, not of every event.
    fn batches(
        &self,
        projection: Option<&[usize]>,
        filter: Option<&Arc<dyn PhysicalExpr>>,
    ) -> Box<dyn Iterator<Item = Result<RecordBatch, DataFusionError>> + Send> {
        let fail = |reason: String| DataFusionError::Execution(reason);
        let file = self.file.clone();
        let unchanged = match stamp(&file.path) {
            Ok(now) if now == file.stamp => Ok(()),
            Ok(_) => Err(format!(
                "{}: the file changed while the run read it; run again",
                file.shown
            )),
            Err(e) => Err(format!("{}: {e}", file.shown)),
        };
        if let Err(reason) = unchanged {
            return Box::new(std::iter::once(Err(fail(reason))));
        }
        let decoded = self.decoded(projection);
        if let Some((filter, columns)) =
            filter.and_then(|f| Some((f.clone(), self.split(f, &decoded)?)))
        {
            // A row group at a time: what is judged is held until the rest
            // is read, and each reader decodes its columns' dictionaries.
            let groups: Vec<Piece> = self
                .run
                .by_group(&file.layout)
                .into_iter()
                .map(|run| Piece {
                    file: file.clone(),
                    run,
                })
                .collect();
            return Box::new(groups.into_iter().flat_map(move |group| {
                match group.judged(&filter, (&columns.0, &columns.1)) {
                    Ok(batches) => batches.into_iter().map(Ok).collect(),
                    Err(reason) => vec![Err(fail(reason))],
                }
            }));
        }
        let reader = match self.reader(&decoded, self.kept()) {
            Ok(reader) => reader,
            Err(reason) => return Box::new(std::iter::once(Err(fail(reason)))),
        };
        Box::new(reader.map(move |batch| {
            let batch = batch.map_err(|e| fail(format!("{}: {e}", file.shown)))?;
            conformed(&batch, &file.target, &file.shown).map_err(fail)
        }))
    }

    /// The columns a scan of `projection` decodes: those projected that
    /// the run reads. A scan that uses no column (`count(*)`) still needs
    /// the rows: it reads the run's columns.
    fn decoded(&self, projection: Option<&[usize]>) -> BTreeSet<String> {
        let layout = &self.file.layout;
        let fields = self.file.target.schema.fields();
        let decoded: BTreeSet<String> = match projection {
            Some(p) => p
                .iter()
                .map(|&i| fields[i].name())
                .filter(|name| layout.read.contains(*name))
                .cloned()
                .collect(),
            None => layout.read.clone(),
        };
        if decoded.is_empty() {
            layout.read.clone()
        } else {
            decoded
        }
    }

    /// The columns of `decoded` that `filter` reads, and the others, when
    /// both are some: only then does judging rows as they are read spare
    /// decoding (the others', for the rows refused).
    fn split(
        &self,
        filter: &Arc<dyn PhysicalExpr>,
        decoded: &BTreeSet<String>,
    ) -> Option<(BTreeSet<String>, BTreeSet<String>)> {
        let fields = self.file.target.schema.fields();
        let judged: BTreeSet<String> = collect_columns(filter)
            .iter()
            .filter_map(|c| fields.get(c.index()))
            .map(|f| f.name())
            .filter(|name| decoded.contains(*name))
            .cloned()
            .collect();
        let rest: BTreeSet<String> = decoded.difference(&judged).cloned().collect();
        (!judged.is_empty() && !rest.is_empty()).then_some((judged, rest))
    }

    /// The rows of the run that the check pass kept, as a selection among
    /// the rows of the run's row groups (the rows left out are skipped,
    /// not decoded and dropped); `None` when that is every row.
    fn kept(&self) -> Option<RowSelection> {
        let run = &self.run;
        let layout = &self.file.layout;
        match kept_rows(&self.file.left_out, run.first_row - 1, run.rows) {
            Some(kept) => Some(run.within(layout.rows_in(&run.row_groups), kept.into_iter())),
            None => run.selection(layout),
        }
    }

    /// A reader of `columns` (those the run reads) of the rows of the run's
    /// row groups that `selection` selects (every row when `None`).
    fn reader(
        &self,
        columns: &BTreeSet<String>,
        selection: Option<RowSelection>,
    ) -> Result<ParquetRecordBatchReader, String> {
        self.reader_with(self.file.layout.metadata.clone(), columns, selection)
    }

    /// [`Piece::reader`], its strings decoded as views
    /// ([`with_string_views`]).
    fn reader_of_views(
        &self,
        columns: &BTreeSet<String>,
        selection: Option<RowSelection>,
    ) -> Result<ParquetRecordBatchReader, String> {
        let metadata = with_string_views(&self.file.layout.metadata, &self.file.target, columns)
            .map_err(|e| format!("{}: {e}", self.file.shown))?;
        self.reader_with(metadata, columns, selection)
    }

    fn reader_with(
        &self,
        metadata: ArrowReaderMetadata,
        columns: &BTreeSet<String>,
        selection: Option<RowSelection>,
    ) -> Result<ParquetRecordBatchReader, String> {
        let file = &self.file;
        let layout = &file.layout;
        let mut builder =
            ParquetRecordBatchReaderBuilder::new_with_metadata(super::open(&file.path)?, metadata)
                .with_projection(columns_mask(&layout.metadata, &layout.columns, columns))
                .with_row_groups(self.run.row_groups.clone())
                .with_batch_size(STREAM_ROWS);
        if let Some(selection) = selection {
            builder = builder.with_row_selection(selection);
        }
        builder.build().map_err(|e| format!("{}: {e}", file.shown))
    }

    /// The rows of the run that the check pass kept and `filter` keeps,
    /// typed: the `judged` columns (those the
    /// filter reads) of the rows kept decoded and judged first, then the
    /// `rest`. Where the rows the filter keeps come in long runs (events
    /// in time order, a window of days), only theirs are decoded (a row
    /// selection, whose pages alone are read); where they are scattered
    /// (a page holds some of them either way), the rest of every row kept
    /// is decoded in the same batches as the judged columns and filtered
    /// with them. A row the filter cannot judge (it fails) is kept: the
    /// engine filters again after the scan, and fails there.
    fn judged(
        &self,
        filter: &Arc<dyn PhysicalExpr>,
        (judged, rest): (&BTreeSet<String>, &BTreeSet<String>),
    ) -> Result<Vec<RecordBatch>, String> {
        let (target, shown) = (&self.file.target, &self.file.shown);
        let err = |e: &dyn std::fmt::Display| format!("{shown}: {e}");
        let total = self.file.layout.rows_in(&self.run.row_groups);
        let kept = self
            .kept()
            .unwrap_or_else(|| RowSelection::from(vec![RowSelector::select(total)]));
        let fields = target.schema.fields();
        let at: Vec<usize> = (0..fields.len())
            .filter(|&i| judged.contains(fields[i].name()))
            .collect();
        // Per batch: the judged columns, and which rows the filter keeps.
        // Dictionary-encoded strings stay so while judged: the filter
        // compares each distinct value once, not every row's copy.
        let dictionaries = with_string_dictionaries(
            &self.file.layout.metadata,
            target,
            judged,
            &self.run.row_groups,
        )
        .map_err(|e| err(&e))?;
        let mut batches = Vec::new();
        for batch in self.reader_with(dictionaries, judged, Some(kept.clone()))? {
            let (batch, keeps) = judged_rows(filter, &batch.map_err(|e| err(&e))?, target, shown)?;
            batches.push((batch.project(&at).map_err(|e| err(&e))?, keeps));
        }
        // The judged columns of the rows kept, cast to the schema's types.
        let typed = |judged: &RecordBatch| -> Result<Vec<ArrayRef>, String> {
            (judged.columns().iter().zip(&at))
                .map(|(column, &i)| cast(column, fields[i].data_type()).map_err(|e| err(&e)))
                .collect()
        };
        let count: usize = batches.iter().map(|(_, k)| k.true_count()).sum();
        if count == 0 {
            return Ok(Vec::new());
        }
        let read: usize = batches.iter().map(|(b, _)| b.num_rows()).sum();
        let runs: usize = batches
            .iter()
            .map(|(_, k)| SlicesIterator::new(k).count())
            .sum();
        // Both columns of one row, typed: the rest's batch with the judged
        // columns put in.
        let together = |rest: &RecordBatch, judged: &[ArrayRef]| -> Result<RecordBatch, String> {
            let mut columns = rest.columns().to_vec();
            for (column, &i) in judged.iter().zip(&at) {
                columns[i] = column.clone();
            }
            let options = RecordBatchOptions::new().with_row_count(Some(rest.num_rows()));
            RecordBatch::try_new_with_options(target.schema.clone(), columns, &options)
                .map_err(|e| err(&e))
        };
        let mut out = Vec::new();
        if runs * CLUSTERED_ROWS > read {
            // Most rows are dropped: their strings are decoded as views
            // into the pages, and only the rows kept are copied, by the
            // cast to the schema's types.
            let mut batches = batches.into_iter();
            for batch in self.reader_of_views(rest, Some(kept))? {
                let batch = batch.map_err(|e| err(&e))?;
                let (judged, keeps) = batches
                    .next()
                    .filter(|(judged, _)| judged.num_rows() == batch.num_rows())
                    .ok_or_else(|| {
                        err(&"the columns of one row group read apart do not line up")
                    })?;
                if keeps.true_count() == 0 {
                    continue;
                }
                let filter =
                    |batch: &RecordBatch| filter_record_batch(batch, &keeps).map_err(|e| err(&e));
                let rest = conformed(&filter(&batch)?, target, shown)?;
                out.push(together(&rest, &typed(&filter(&judged)?)?)?);
            }
            return Ok(out);
        }
        let masks: Vec<BooleanArray> = batches.iter().map(|(_, k)| k.clone()).collect();
        let selection = kept.and_then(&RowSelection::from_filters(&masks));
        let schema = Arc::new(target.schema.project(&at).map_err(|e| err(&e))?);
        let mut passed = Vec::with_capacity(batches.len());
        for (judged, keeps) in &batches {
            let judged = filter_record_batch(judged, keeps).map_err(|e| err(&e))?;
            passed
                .push(RecordBatch::try_new(schema.clone(), typed(&judged)?).map_err(|e| err(&e))?);
        }
        let passed = concat_batches(&schema, &passed).map_err(|e| err(&e))?;
        let mut next = 0;
        for batch in self.reader(rest, Some(selection))? {
            let batch = conformed(&batch.map_err(|e| err(&e))?, target, shown)?;
            let n = batch.num_rows();
            if next + n > count {
                return Err(err(&"more rows read than the filter kept"));
            }
            let judged: Vec<ArrayRef> = passed.columns().iter().map(|c| c.slice(next, n)).collect();
            out.push(together(&batch, &judged)?);
            next += n;
        }
        if next != count {
            return Err(err(&format!(
                "{next} rows read where the filter kept {count}"
            )));
        }
        Ok(out)
    }
}

/// The columns of a decoded `batch` (its strings dictionary-encoded where
/// [`with_string_dictionaries`] found them so) as the schema's, and which
/// rows `filter` keeps: judged with the dictionaries as they are, and
/// again over the schema's types when the filter cannot take them; every
/// row when it cannot judge them either.
fn judged_rows(
    filter: &Arc<dyn PhysicalExpr>,
    batch: &RecordBatch,
    target: &Target,
    shown: &str,
) -> Result<(RecordBatch, BooleanArray), String> {
    let encoded = batch
        .columns()
        .iter()
        .any(|c| matches!(c.data_type(), DataType::Dictionary(..)));
    if encoded {
        let kept = dictionaries_kept(batch, target, shown)?;
        if let Some(keeps) = judge(filter, &kept) {
            return Ok((kept, keeps));
        }
    }
    let batch = conformed(batch, target, shown)?;
    let keeps =
        judge(filter, &batch).unwrap_or_else(|| BooleanArray::from(vec![true; batch.num_rows()]));
    Ok((batch, keeps))
}

/// [`conformed`], but a dictionary of strings for a string field stays a
/// dictionary (and the batch's schema says so).
fn dictionaries_kept(
    batch: &RecordBatch,
    target: &Target,
    shown: &str,
) -> Result<RecordBatch, String> {
    let err = |e: &dyn std::fmt::Display| format!("{shown}: {e}");
    let schema = batch.schema();
    let (encoded, plain): (Vec<usize>, Vec<usize>) = (0..batch.num_columns())
        .partition(|&i| matches!(schema.field(i).data_type(), DataType::Dictionary(..)));
    let typed = conformed(&batch.project(&plain).map_err(|e| err(&e))?, target, shown)?;
    let mut fields: Vec<FieldRef> = typed.schema().fields().iter().cloned().collect();
    let mut columns = typed.columns().to_vec();
    for i in encoded {
        let field = schema.field(i);
        if let Ok(at) = target.schema.index_of(field.name()) {
            let kept = target.schema.field(at).clone();
            fields[at] = Arc::new(kept.with_data_type(field.data_type().clone()));
            columns[at] = batch.column(i).clone();
        }
    }
    let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    RecordBatch::try_new_with_options(Arc::new(Schema::new(fields)), columns, &options)
        .map_err(|e| err(&e))
}

/// Which rows of `batch` `filter` keeps: true where it is true; where it
/// is false or null, false; `None` when it cannot judge them.
fn judge(filter: &Arc<dyn PhysicalExpr>, batch: &RecordBatch) -> Option<BooleanArray> {
    let judged = filter
        .evaluate(batch)
        .and_then(|v| v.into_array(batch.num_rows()))
        .ok()?;
    let judged = judged.as_boolean_opt()?;
    Some(if judged.null_count() > 0 {
        prep_null_mask_filter(judged)
    } else {
        judged.clone()
    })
}

/// The rows to read of a run of `rows` rows whose first row is row
/// `start` of its file, without the rows `left_out` (sorted row numbers
/// of the file), as ranges of the run's rows; `None` when none of them is
/// in the run.
fn kept_rows(left_out: &[usize], start: usize, rows: usize) -> Option<Vec<Range<usize>>> {
    let from = left_out.partition_point(|&r| r < start);
    let to = left_out.partition_point(|&r| r < start + rows);
    if from == to {
        return None;
    }
    let mut kept = Vec::new();
    let mut next = 0;
    for &row in &left_out[from..to] {
        let row = row - start;
        if next < row {
            kept.push(next..row);
        }
        next = row + 1;
    }
    if next < rows {
        kept.push(next..rows);
    }
    Some(kept)
}

/// `batch` (whose first row is row `start` of its file) without the rows
/// of `left_out` (sorted row numbers of the file).
fn without(
    batch: &RecordBatch,
    left_out: &[usize],
    start: usize,
) -> Result<RecordBatch, datafusion::arrow::error::ArrowError> {
    let end = start + batch.num_rows();
    let from = left_out.partition_point(|&r| r < start);
    let to = left_out.partition_point(|&r| r < end);
    if from == to {
        return Ok(batch.clone());
    }
    let mut keep = vec![true; batch.num_rows()];
    for &r in &left_out[from..to] {
        keep[r - start] = false;
    }
    filter_record_batch(batch, &BooleanArray::from(keep))
}

#[cfg(test)]
pub(super) mod tests {
    use datafusion::arrow::array::{ArrayRef, StringArray, TimestampMicrosecondArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
    use datafusion::parquet::arrow::ArrowWriter;
    use datafusion::parquet::file::properties::WriterProperties;

    use super::super::arrow_schema;
    use super::super::tests::{Scratch, field, text_source, tiered};
    use super::*;
    use crate::run::engine::{Embedded, Engine};

    fn strings(values: &[Option<&str>]) -> ArrayRef {
        Arc::new(StringArray::from(values.to_vec()))
    }

    /// A file of rows `(id, n, tier, at)`: `n` is text in the file (the
    /// field is an int, so it is cast and checked), `at` a zoned time.
    /// Row groups of 4 rows: several per file, so the rows left out fall
    /// in several partitions and batches.
    pub(in crate::run::sources) fn write(
        dir: &Scratch,
        path: &str,
        rows: &[(Option<&str>, &str, &str, i64)],
    ) {
        write_groups(dir, path, rows, 4);
    }

    /// [`write`], in row groups of `group_rows` rows.
    fn write_groups(
        dir: &Scratch,
        path: &str,
        rows: &[(Option<&str>, &str, &str, i64)],
        group_rows: usize,
    ) {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Utf8, true),
            Field::new("n", DataType::Utf8, true),
            Field::new("tier", DataType::Utf8, true),
            Field::new(
                "at",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                true,
            ),
            Field::new("note", DataType::Utf8, true),
        ]));
        let ids: Vec<Option<&str>> = rows.iter().map(|r| r.0).collect();
        let ns: Vec<Option<&str>> = rows.iter().map(|r| Some(r.1)).collect();
        let tiers: Vec<Option<&str>> = rows.iter().map(|r| Some(r.2)).collect();
        let notes: Vec<Option<&str>> = rows.iter().map(|_| Some("free text")).collect();
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                strings(&ids),
                strings(&ns),
                strings(&tiers),
                Arc::new(
                    TimestampMicrosecondArray::from(rows.iter().map(|r| r.3).collect::<Vec<_>>())
                        .with_timezone("UTC"),
                ),
                strings(&notes),
            ],
        )
        .expect("batch");
        let path = dir.0.join(path);
        std::fs::create_dir_all(path.parent().expect("a folder")).expect("mkdir");
        let props = WriterProperties::builder()
            .set_max_row_group_row_count(Some(group_rows))
            .build();
        let mut writer = ArrowWriter::try_new(
            std::fs::File::create(path).expect("create"),
            schema,
            Some(props),
        )
        .expect("writer");
        writer.write(&batch).expect("write");
        writer.close().expect("close");
    }

    /// The Parquet files under `data` of `dir`, streamed, every field read.
    fn stream_data(dir: &Scratch, plans: (&SourcePlan, &SchemaPlan), now: Micros) -> Loaded {
        let needed: BTreeSet<String> = plans.1.fields.keys().cloned().collect();
        stream_columns(dir, plans, now, &needed)
    }

    /// [`stream_data`], the fields `needed` read.
    fn stream_columns(
        dir: &Scratch,
        plans: (&SourcePlan, &SchemaPlan),
        now: Micros,
        needed: &BTreeSet<String>,
    ) -> Loaded {
        let (files, problems) =
            crate::run::files::resolve(&dir.0, "t", "data", "parquet").expect("resolves");
        let files = files
            .into_iter()
            .map(|f| (f.clone(), super::super::shown_path(&dir.0, &f)))
            .collect();
        let read = (files, Origin::Local);
        read_streamed("t", plans, now, needed, read, problems, Earlier::default()).expect("reads")
    }

    /// An engine with a source's rows (`arrow` its schema) registered as
    /// table `t`, as a run registers them.
    fn engine_of(loaded: &Loaded, arrow: &SchemaRef) -> Embedded {
        let engine = Embedded::new().expect("engine");
        if loaded.streams.is_empty() {
            engine.register_batches("t", arrow.clone(), loaded.batches.clone())
        } else {
            engine.register_streams(
                "t",
                arrow.clone(),
                loaded.streams.clone(),
                loaded.report.rows,
            )
        }
        .expect("registers");
        engine
    }

    /// The rows of a source, registered as the engine registers it, in key
    /// order.
    pub(in crate::run::sources) fn rows_of(loaded: &Loaded) -> Vec<RecordBatch> {
        let arrow = loaded
            .batches
            .first()
            .map(|b| b.schema())
            .or_else(|| loaded.streams.first().map(|s| s.schema().clone()))
            .expect("rows");
        let engine = engine_of(loaded, &arrow);
        // Scanned twice: a stream is read again on every scan.
        engine.sql("SELECT COUNT(*) FROM t").expect("counts");
        engine.sql("SELECT * FROM t ORDER BY id").expect("queries")
    }

    /// Three files (row groups of 4 rows) with bad values of every kind:
    /// a value that does not type, one outside its domain, a missing key,
    /// a key repeated within a file and one across files, a future time,
    /// an empty file, and the newest time on a repeated key's row.
    fn write_bad_rows(dir: &Scratch, now: i64) {
        let hour = 3_600_000_000;
        write(
            dir,
            "data/a.parquet",
            &[
                (Some("a1"), "1", "gold", now - hour),
                (Some("a2"), "five", "gold", now - hour),
                (None, "3", "gold", now - hour),
                (Some("a4"), "4", "tin", now - 2 * hour),
                (Some("a5"), "5", "silver", now + hour),
                // The newest time is on a repeated key's row: left out.
                (Some("a1"), "6", "gold", now - 1),
                (Some("a7"), "7", "silver", now - 3 * hour),
                (Some("a8"), "8", "gold", now - hour),
                (Some("a9"), "9", "gold", now - hour),
            ],
        );
        write(
            dir,
            "data/b.parquet",
            &[
                (Some("b1"), "10", "gold", now - hour),
                (Some("a8"), "11", "gold", now - hour),
                (Some("b3"), "", "silver", now - 30 * hour),
                (Some("b4"), "12", "gold", now - hour),
                (Some("b5"), "13", "gold", now - hour),
            ],
        );
        write(dir, "data/c.parquet", &[]);
    }

    /// The source of [`write_bad_rows`] (its schema with a time, a note
    /// and a field no file holds), read whole and streamed.
    struct BadRows {
        dir: Scratch,
        now: Micros,
        schema: SchemaPlan,
        source: SourcePlan,
        whole: Loaded,
        streamed: Loaded,
    }

    fn bad_rows_read(name: &str) -> BadRows {
        let dir = Scratch::new(name);
        let now = 1_000 * 3_600_000_000;
        write_bad_rows(&dir, now);
        let schema = tiered(vec![
            ("at", field("timestamp", None)),
            ("note", field("string", None)),
            ("absent", field("string", None)),
        ]);
        let source = text_source("data", "parquet");
        let whole = super::super::read_files(&dir.0, "t", &source, &schema, now).expect("reads");
        let streamed = stream_data(&dir, (&source, &schema), now);
        BadRows {
            dir,
            now,
            schema,
            source,
            whole,
            streamed,
        }
    }

    /// A streamed source gives what reading it whole gives: the same rows
    /// and the same report (rows, bad rows and their samples, freshness,
    /// file problems), with bad values of every kind in several files and
    /// row groups.
    #[test]
    fn a_streamed_source_is_the_source_read_whole() {
        let BadRows {
            dir,
            now,
            schema,
            whole,
            streamed,
            ..
        } = bad_rows_read("streamed");
        let hour = 3_600_000_000;
        assert!(streamed.batches.is_empty());
        assert!((1..=crate::run::engine::cores()).contains(&streamed.streams.len()));
        assert_eq!(streamed.report, whole.report);
        assert_eq!(streamed.report.rows, 8, "{:?}", streamed.report);
        assert_eq!(streamed.report.bad_rows, 6, "{:?}", streamed.report);
        assert_eq!(
            streamed.report.newest,
            Some(crate::time::format_timestamp(now - hour)),
            "{:?}",
            streamed.report
        );
        assert_eq!(streamed.present, whole.present);
        assert_eq!(
            format!("{:?}", streamed.diagnostics),
            format!("{:?}", whole.diagnostics)
        );
        assert_eq!(
            codes(&streamed),
            vec!["R0007", "R0020"],
            "{:?}",
            streamed.diagnostics
        );
        let (s, w) = (rows_of(&streamed), rows_of(&whole));
        assert_eq!(
            datafusion::arrow::util::pretty::pretty_format_batches(&s)
                .expect("shows")
                .to_string(),
            datafusion::arrow::util::pretty::pretty_format_batches(&w)
                .expect("shows")
                .to_string()
        );

        // A file rewritten after the check fails the scan, naming it.
        write(&dir, "data/b.parquet", &[(Some("b1"), "1", "gold", now)]);
        let engine = Embedded::new().expect("engine");
        engine
            .register_streams(
                "t",
                arrow_schema(&schema),
                streamed.streams.clone(),
                streamed.report.rows,
            )
            .expect("registers");
        let err = engine.sql("SELECT * FROM t").expect_err("refused");
        assert!(err.contains("data/b.parquet: the file changed"), "{err}");
    }

    /// A scan reads the columns its query uses (`Scan::scan`), skipping
    /// the rows the check left out: queries over a column cast to its
    /// field's type, a zoned time, a field no file holds, a count of rows
    /// (no column) give what the source read whole gives; and a field the
    /// run does not read stays null, whatever its files hold.
    #[test]
    fn a_scan_reads_what_its_query_uses() {
        let read = bad_rows_read("scan");
        let (schema, now) = (&read.schema, read.now);
        let hour = 3_600_000_000;
        let arrow = arrow_schema(schema);
        let engines = [&read.whole, &read.streamed].map(|loaded| engine_of(loaded, &arrow));
        let at = crate::time::format_timestamp(now - 2 * hour);
        let queries = [
            "SELECT id, n FROM t WHERE n >= 5 ORDER BY id".to_string(),
            format!("SELECT id FROM t WHERE at > TIMESTAMP '{at}' OR tier = 'silver' ORDER BY id"),
            "SELECT count(*) FROM t WHERE tier = 'gold'".to_string(),
            "SELECT count(*) FROM t".to_string(),
            "SELECT id, note FROM t WHERE absent IS NULL AND n < 12 ORDER BY id".to_string(),
            "SELECT tier, count(*) FROM t WHERE id <> 'a4' GROUP BY tier ORDER BY tier".to_string(),
        ];
        for sql in &queries {
            let [w, s] = [&engines[0], &engines[1]].map(|e| {
                datafusion::arrow::util::pretty::pretty_format_batches(&e.sql(sql).expect(sql))
                    .expect("shows")
                    .to_string()
            });
            assert_eq!(s, w, "{sql}");
            assert!(w.lines().count() > 4, "{sql} finds rows:\n{w}");
        }
        // A filter that refuses every row; one that fails on a value (the
        // scan keeps what it cannot judge, and the engine fails after it).
        let none = "SELECT id FROM t WHERE absent = 'x' OR n > 100";
        for e in &engines {
            assert!(e.sql(none).expect(none).iter().all(|b| b.num_rows() == 0));
        }
        let fails = "SELECT id FROM t WHERE CAST(note AS INT) > 1";
        let [w, s] = [&engines[0], &engines[1]].map(|e| e.sql(fails).expect_err(fails));
        assert_eq!(s, w);

        // The query's columns and filter reach the scan.
        let plan = engines[1]
            .sql("EXPLAIN SELECT id FROM t AS x WHERE x.tier = 'silver'")
            .expect("explains");
        let plan = datafusion::arrow::util::pretty::pretty_format_batches(&plan)
            .expect("shows")
            .to_string();
        let index = |name: &str| arrow.index_of(name).expect("a field");
        let (id, tier) = (index("id"), index("tier"));
        assert!(
            plan.contains(&format!(
                "StreamedScan: partitions=2, rows=8, projection=Some([{id}, {tier}]), filter=tier@{tier} = silver"
            )),
            "{plan}"
        );

        // A partition gives the projected column of the rows kept.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        let ctx = Arc::new(TaskContext::default());
        let mut ids = Vec::new();
        for part in &read.streamed.streams {
            let stream = part.scan(Some(&[id]), None, ctx.clone());
            for batch in runtime
                .block_on(datafusion::physical_plan::common::collect(stream))
                .expect("scans")
            {
                assert_eq!(batch.num_columns(), 1);
                let col = batch.column(0).as_string::<i32>();
                ids.extend(col.iter().map(|v| v.unwrap_or_default().to_string()));
            }
        }
        ids.sort();
        assert_eq!(ids, ["a1", "a5", "a7", "a8", "a9", "b1", "b4", "b5"]);

        // A partition given a filter leaves out the rows it refuses, and
        // gives the others' columns.
        use datafusion::physical_expr::expressions::{binary, col, lit};
        let silver = binary(
            col("tier", &arrow).expect("a column"),
            datafusion::logical_expr::Operator::Eq,
            lit("silver"),
            &arrow,
        )
        .expect("a filter");
        let mut kept = Vec::new();
        for part in &read.streamed.streams {
            let stream = part.scan(Some(&[id, tier]), Some(&silver), ctx.clone());
            for batch in runtime
                .block_on(datafusion::physical_plan::common::collect(stream))
                .expect("scans")
            {
                let (ids, tiers) = (
                    batch.column(0).as_string::<i32>(),
                    batch.column(1).as_string::<i32>(),
                );
                kept.extend(
                    ids.iter().zip(tiers).map(|(i, t)| {
                        format!("{}:{}", i.unwrap_or_default(), t.unwrap_or_default())
                    }),
                );
            }
        }
        kept.sort();
        assert_eq!(kept, ["a5:silver", "a7:silver"]);

        // `note` unread: null in the table, whatever its files hold.
        let needed: BTreeSet<String> = schema
            .fields
            .keys()
            .filter(|f| *f != "note")
            .cloned()
            .collect();
        let unread = stream_columns(&read.dir, (&read.source, schema), now, &needed);
        let engine = Embedded::new().expect("engine");
        engine
            .register_streams("t", arrow, unread.streams.clone(), unread.report.rows)
            .expect("registers");
        for (sql, rows) in [
            ("SELECT count(*) AS n FROM t WHERE note IS NULL", 8),
            ("SELECT count(*) AS n FROM t WHERE note = 'free text'", 0),
        ] {
            let batch = engine.query(sql).expect(sql);
            let n = batch
                .column(0)
                .as_primitive::<datafusion::arrow::datatypes::Int64Type>();
            assert_eq!(n.value(0), rows, "{sql}");
        }
    }

    /// A CSV file beside the Parquet files of `write_bad_rows`, named to
    /// come first in path order (a whole read lists files in path order, a
    /// mixed read the text files first): a key a Parquet file repeats
    /// (`b4`), values outside their domain and of the wrong type, a future
    /// time, and the source's newest time.
    fn write_text_rows(dir: &Scratch, now: i64) {
        let at = |t: i64| crate::time::format_timestamp(t);
        let minute = 60_000_000;
        let hour = 60 * minute;
        dir.write(
            "data/0-text.csv",
            &format!(
                "id,n,tier,at,note\n\
                 t1,1,gold,{},newest\n\
                 b4,2,silver,{},first read\n\
                 t3,3,bronze,{},domain\n\
                 t4,four,gold,{},type\n\
                 t5,5,gold,{},future\n",
                at(now - minute),
                at(now - hour),
                at(now - hour),
                at(now - hour),
                at(now + hour),
            ),
        );
    }

    /// A source of text and Parquet files, streamed (the text rows typed
    /// into a file first, the Parquet files checked and streamed after
    /// them), gives what reading it whole gives: the rows, the bad rows in
    /// read order (a key of a text row repeated in a Parquet file is left
    /// out on the Parquet row), the newest time (a text row's) and the
    /// future times of both kinds of file.
    #[test]
    fn a_mixed_source_streamed_is_the_source_read_whole() {
        use super::super::tests::local_inputs;
        use super::super::{read_mixed, run_folder};

        let dir = Scratch::new("mixed");
        let hour = 3_600_000_000;
        let now = 1_000 * hour;
        write_bad_rows(&dir, now);
        write_text_rows(&dir, now);
        let schema = tiered(vec![
            ("at", field("timestamp", None)),
            ("note", field("string", None)),
            ("absent", field("string", None)),
        ]);
        // A glob takes files of every format (a folder, its format's only).
        let source = text_source("data/*", "csv");
        let whole = super::super::read_files(&dir.0, "t", &source, &schema, now).expect("reads");
        let (inputs, problems) = local_inputs(&dir.0, "data/*", "csv");
        let needed: BTreeSet<String> = schema.fields.keys().cloned().collect();
        let folder = run_folder(&dir.0, "t").expect("a folder");
        let streamed = read_mixed(
            (&dir.0, now),
            "t",
            (&source, &schema),
            &needed,
            (inputs, None, problems),
            folder,
            Earlier::default(),
        )
        .expect("streams");
        assert!(streamed.batches.is_empty() && !streamed.streams.is_empty());
        assert_eq!(streamed.report, whole.report);
        assert_eq!(streamed.report.rows, 10, "{:?}", streamed.report);
        assert_eq!(streamed.report.bad_rows, 9, "{:?}", streamed.report);
        assert!(
            streamed
                .report
                .bad_row_samples
                .iter()
                .any(|s| s.starts_with("data/b.parquet") && s.contains("duplicate key `b4`")),
            "{:?}",
            streamed.report.bad_row_samples
        );
        assert_eq!(
            streamed.report.newest,
            Some(crate::time::format_timestamp(now - 60_000_000))
        );
        assert_eq!(streamed.report.future_timestamps[0].rows, 2);
        assert_eq!(streamed.present, whole.present);
        assert_eq!(
            format!("{:?}", streamed.diagnostics),
            format!("{:?}", whole.diagnostics)
        );
        let shown = |b: &[RecordBatch]| {
            datafusion::arrow::util::pretty::pretty_format_batches(b)
                .expect("shows")
                .to_string()
        };
        assert_eq!(shown(&rows_of(&streamed)), shown(&rows_of(&whole)));
        // The text rows' file goes once the source is let go of.
        let tmp = dir.0.join(".accord/tmp");
        let folders = || std::fs::read_dir(&tmp).expect("the folder").count();
        assert_eq!(folders(), 1);
        drop(streamed);
        assert_eq!(folders(), 0);
    }

    /// The files of `a_streamed_source_is_the_source_read_whole` as
    /// objects of a store: copied and streamed, they give what reading the
    /// objects whole gives, fetching less; the copies go once the source
    /// is let go of.
    #[test]
    fn streamed_objects_are_the_objects_read_whole() {
        use object_store::{ObjectStore, ObjectStoreExt, PutPayload, memory::InMemory};

        use super::super::{Earlier, Inputs, decode, read_copies, run_folder};
        use crate::run::report::SourceReport;
        use crate::run::sources::object::Remote;

        let dir = Scratch::new("streamed-objects");
        let now = 1_000 * 3_600_000_000;
        write_bad_rows(&dir, now);
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let remote = || Remote::over(store.clone(), "t", "s3://lake", "data");
        let setup = remote();
        for name in ["a", "b", "c"] {
            let bytes = std::fs::read(dir.0.join(format!("data/{name}.parquet"))).expect("file");
            let path = object_store::path::Path::from(format!("data/{name}.parquet"));
            setup
                .block_on(store.put(&path, PutPayload::from(bytes)))
                .expect("put");
        }
        let schema = tiered(vec![
            ("at", field("timestamp", None)),
            ("note", field("string", None)),
            ("absent", field("string", None)),
        ]);
        let source = text_source("s3://lake/data/", "parquet");
        // `note` is read by nothing: not fetched.
        let needed: BTreeSet<String> = ["id", "n", "tier", "at", "absent"].map(String::from).into();
        let (one, two) = (remote(), remote());
        let whole = decode(
            "t",
            &source,
            &schema,
            now,
            Some(&needed),
            Inputs {
                inputs: one
                    .list("parquet")
                    .expect("lists")
                    .into_iter()
                    .map(Input::Object)
                    .collect(),
                remote: Some(&one),
                problems: Vec::new(),
                spill: None,
            },
            Earlier::default(),
        )
        .expect("reads");
        let objects = two.list("parquet").expect("lists");
        let folder = run_folder(&dir.0, "t").expect("a folder");
        let streamed = read_copies(
            (now, folder),
            "t",
            (&source, &schema),
            &needed,
            &two,
            objects,
        )
        .expect("streams");
        assert!(streamed.batches.is_empty() && !streamed.streams.is_empty());
        // The copies fetch each footer exactly (the test's hint) and the
        // chunks of the columns read once: less than the objects. The whole
        // read fetches their last 64 KiB (here every byte), then the chunks.
        let bytes = |l: &Loaded| l.report.bytes_read.expect("bytes read");
        let total: u64 = ["a", "b", "c"]
            .iter()
            .map(|n| {
                let file = dir.0.join(format!("data/{n}.parquet"));
                std::fs::metadata(file).expect("file").len()
            })
            .sum();
        assert!(bytes(&whole) > total, "{}", bytes(&whole));
        assert!(bytes(&streamed) < total, "{}", bytes(&streamed));
        let without_bytes = |l: &Loaded| SourceReport {
            bytes_read: None,
            ..l.report.clone()
        };
        assert_eq!(without_bytes(&streamed), without_bytes(&whole));
        assert_eq!(streamed.report.bad_rows, 6, "{:?}", streamed.report);
        assert_eq!(
            format!("{:?}", streamed.diagnostics),
            format!("{:?}", whole.diagnostics)
        );
        let (s, w) = (rows_of(&streamed), rows_of(&whole));
        let shown = |b: &[RecordBatch]| {
            datafusion::arrow::util::pretty::pretty_format_batches(b)
                .expect("shows")
                .to_string()
        };
        assert_eq!(shown(&s), shown(&w));
        let tmp = dir.0.join(".accord/tmp");
        let copies = || std::fs::read_dir(&tmp).expect("the folder").count();
        assert_eq!(copies(), 1);
        drop(streamed);
        assert_eq!(copies(), 0);

        // The copies of a run killed before it removed them (its process
        // gone) are removed by the next read; a live run's stay.
        let dead = tmp.join("4294967295-t-abc");
        let live = tmp.join(format!("{}-t-def", std::process::id()));
        for folder in [&dead, &live] {
            std::fs::create_dir_all(folder).expect("a folder");
        }
        let three = remote();
        let objects = three.list("parquet").expect("lists");
        let folder = run_folder(&dir.0, "t").expect("a folder");
        read_copies(
            (now, folder),
            "t",
            (&source, &schema),
            &needed,
            &three,
            objects,
        )
        .expect("streams");
        assert!(!dead.exists() && live.exists());
    }

    /// A folder of many files is as many partitions as there are cores,
    /// each reading its files one after the other.
    #[test]
    fn many_files_are_read_through_a_partition_per_core() {
        let dir = Scratch::new("streamed-many");
        for i in 0..300 {
            let id = format!("k{i:03}");
            write(
                &dir,
                &format!("data/p{i:03}.parquet"),
                &[(Some(id.as_str()), "1", "gold", 0)],
            );
        }
        let schema = tiered(vec![("at", field("timestamp", None))]);
        let source = text_source("data", "parquet");
        let loaded = stream_data(&dir, (&source, &schema), 1);
        assert!((1..=crate::run::engine::cores()).contains(&loaded.streams.len()));
        let rows = rows_of(&loaded);
        let shown = datafusion::arrow::util::pretty::pretty_format_batches(&rows)
            .expect("shows")
            .to_string();
        assert_eq!(rows.iter().map(RecordBatch::num_rows).sum::<usize>(), 300);
        assert!(shown.contains("k000") && shown.contains("k299"), "{shown}");
    }

    /// Keys in increasing order are compared rather than hashed; a key
    /// repeated anywhere is still found, as reading the source whole
    /// finds it: runs whose ranges meet at one key (across files), and a
    /// key of the file's first batch repeated in its last row (the keys
    /// compared before the batch where they stop increasing are read again
    /// and hashed).
    #[test]
    fn keys_in_order_are_compared_and_repeats_still_found() {
        let dir = Scratch::new("streamed-ordered");
        let (now, hour) = (1_000 * 3_600_000_000i64, 3_600_000_000);
        let total: usize = 3 * BATCH_ROWS + 10;
        let keys: Vec<String> = (0..total).map(|i| format!("k{i:07}")).collect();
        let mut rows: Vec<(Option<&str>, &str, &str, i64)> = (0..total)
            .map(|i| (Some(keys[i].as_str()), "1", "gold", now - hour))
            .collect();
        // The last row repeats a key of the file's first batch: wherever
        // the row group is split (one piece a core), the keys stop
        // increasing in a batch that is not its piece's first, and the
        // rows compared before it are read again.
        let repeated = BATCH_ROWS / 2;
        rows[total - 1].0 = Some(keys[repeated].as_str());
        rows[7].0 = None;
        write_groups(&dir, "data/big.parquet", &rows, total);
        // In order and apart from every other file's keys.
        write(
            &dir,
            "data/c.parquet",
            &[
                (Some("z1"), "1", "gold", now),
                (Some("z2"), "1", "gold", now),
            ],
        );
        let schema = tiered(vec![("at", field("timestamp", None))]);
        let source = text_source("data", "parquet");
        let whole = super::super::read_files(&dir.0, "t", &source, &schema, now).expect("reads");
        let streamed = stream_data(&dir, (&source, &schema), now);
        assert_eq!(streamed.report, whole.report);
        // Less the missing key and the repeat, with c.parquet's two.
        assert_eq!(streamed.report.rows as usize, total);
        let samples = format!("{:?}", streamed.report.bad_row_samples);
        assert!(
            samples.contains(&format!(
                "big.parquet:row {total}: duplicate key `{}`",
                keys[repeated]
            )),
            "{samples}"
        );
        assert!(samples.contains("big.parquet:row 8:"), "{samples}");
        assert_eq!(rows_of(&streamed), rows_of(&whole));

        // Files each in order, whose ranges meet at one key.
        let dir = Scratch::new("streamed-ordered-meet");
        write(
            &dir,
            "data/a.parquet",
            &[
                (Some("a1"), "1", "gold", now),
                (Some("a2"), "1", "gold", now),
                (Some("a9"), "1", "gold", now),
            ],
        );
        write(
            &dir,
            "data/b.parquet",
            &[
                (Some("a9"), "1", "gold", now),
                (Some("b1"), "1", "gold", now),
            ],
        );
        write(&dir, "data/c.parquet", &[(Some("c1"), "1", "gold", now)]);
        let whole = super::super::read_files(&dir.0, "t", &source, &schema, now).expect("reads");
        let streamed = stream_data(&dir, (&source, &schema), now);
        assert_eq!(streamed.report, whole.report);
        assert_eq!(streamed.report.rows, 5);
        let samples = format!("{:?}", streamed.report.bad_row_samples);
        assert!(
            samples.contains("b.parquet:row 1: duplicate key `a9`"),
            "{samples}"
        );
    }

    /// A file of one large row group is read on every core, in pieces of
    /// the row group: the rows left out on either side of where it is
    /// split (a value that does not type, a missing key, a key repeated
    /// from the other piece, one outside its domain) are left out and
    /// numbered as in the file, and the rows are those of the source read
    /// whole, filtered as they are read or not.
    #[test]
    fn a_large_row_group_is_read_on_every_core() {
        let dir = Scratch::new("streamed-pieces");
        let (now, hour) = (1_000 * 3_600_000_000i64, 3_600_000_000);
        let total: usize = 5 * 32 * 1024 + 5;
        // Where two pieces meet (on two cores or more).
        let second = total.div_ceil(2);
        let keys: Vec<String> = (0..total).map(|i| format!("k{i:06}")).collect();
        let numbers: Vec<String> = (0..total).map(|i| i.to_string()).collect();
        let mut rows: Vec<(Option<&str>, &str, &str, i64)> = (0..total)
            .map(|i| {
                (
                    Some(keys[i].as_str()),
                    numbers[i].as_str(),
                    "gold",
                    now - hour,
                )
            })
            .collect();
        rows[10].1 = "ten";
        rows[second - 1].1 = "last";
        rows[second].0 = None;
        rows[60_000].0 = Some(keys[5].as_str());
        rows[total - 1].2 = "tin";
        write_groups(&dir, "data/big.parquet", &rows, total);
        let schema = tiered(vec![("at", field("timestamp", None))]);
        let source = text_source("data", "parquet");
        let whole = super::super::read_files(&dir.0, "t", &source, &schema, now).expect("reads");
        let streamed = stream_data(&dir, (&source, &schema), now);

        if crate::run::engine::cores() > 1 {
            assert_eq!(streamed.streams.len(), 2);
            let pieces = format!("{:?}", streamed.streams);
            assert!(
                pieces.contains(&format!("{}, {}", second + 1, total - second)),
                "{pieces}"
            );
        }
        assert_eq!(streamed.report, whole.report);
        assert_eq!(streamed.report.rows as usize, total - 5);
        let samples = format!("{:?}", streamed.report.bad_row_samples);
        for row in [11, second, second + 1, 60_001, total] {
            assert!(
                samples.contains(&format!("big.parquet:row {row}:")),
                "{row}: {samples}"
            );
        }
        let (s, w) = (rows_of(&streamed), rows_of(&whole));
        assert_eq!(
            s.iter().map(RecordBatch::num_rows).sum::<usize>(),
            total - 5
        );
        assert_eq!(s, w);

        let arrow = arrow_schema(&schema);
        let [whole, streamed] = [&whole, &streamed].map(|loaded| engine_of(loaded, &arrow));
        for sql in [
            "SELECT count(*), sum(n), min(id), max(id) FROM t WHERE n % 7 = 0",
            "SELECT count(*), sum(n), min(id), max(id) FROM t WHERE id > 'k060000' AND n < 200000",
            "SELECT count(*), sum(n) FROM t WHERE tier = 'silver'",
        ] {
            let [w, s] = [&whole, &streamed].map(|e| {
                datafusion::arrow::util::pretty::pretty_format_batches(&e.sql(sql).expect(sql))
                    .expect("shows")
                    .to_string()
            });
            assert_eq!(s, w, "{sql}");
        }
    }

    #[test]
    fn freshness_is_read_from_the_footer_where_it_tells_it_all() {
        let dir = Scratch::new("streamed-footer-freshness");
        let (now, hour) = (1_000 * 3_600_000_000i64, 3_600_000_000);
        let rows: Vec<(Option<&str>, &str, &str, i64)> = vec![
            // Told by the footer.
            (Some("a1"), "1", "gold", now - 3 * hour),
            (Some("a2"), "2", "gold", now - 5 * hour),
            // A time later than now: counted, so decoded.
            (Some("b1"), "3", "gold", now - hour),
            (Some("b2"), "4", "gold", now + hour),
            // The newest time is on a bad row, left out: decoded.
            (Some("c1"), "five", "gold", now - 1),
            (Some("c2"), "6", "gold", now - 4 * hour),
            // Told by the footer, and the newest record of the source.
            (Some("d1"), "7", "gold", now - 2),
            (Some("d2"), "8", "gold", now),
        ];
        write_groups(&dir, "data/t.parquet", &rows, 2);
        let schema = tiered(vec![("at", field("timestamp", None))]);
        let source = text_source("data", "parquet");
        let whole = super::super::read_files(&dir.0, "t", &source, &schema, now).expect("reads");
        let streamed = stream_data(&dir, (&source, &schema), now);
        assert_eq!(streamed.report, whole.report);
        assert_eq!(streamed.report.bad_rows, 1);

        let file = dir.0.join("data/t.parquet");
        let judged = BTreeSet::from(["at".to_string()]);
        let layout = super::super::parquet::layout(
            footer(&file, "t.parquet").expect("footer"),
            Some(&judged),
        );
        let told = newest_in_footer(&layout, &judged, &[4], now);
        let newest = |t: i64| Newest {
            newest: Some((t, "at".to_string())),
            future: BTreeMap::new(),
        };
        assert_eq!(
            told,
            vec![Some(newest(now - 3 * hour)), None, None, Some(newest(now))]
        );
        // The file's newest record and later times, footer and decoded
        // groups together.
        let found = super::newest(
            &file,
            "t.parquet",
            (&source, &schema),
            &layout,
            &[4],
            &Target::of(&schema),
            now,
        )
        .expect("newest");
        assert_eq!(found.newest, Some((now, "at".to_string())));
        assert_eq!(found.future.get("at"), Some(&(1, now + hour)));
        // A column of another time unit is decoded.
        let millis = Scratch::new("streamed-footer-millis");
        let schema_ms = Arc::new(Schema::new(vec![Field::new(
            "at",
            DataType::Timestamp(TimeUnit::Millisecond, None),
            true,
        )]));
        let batch = RecordBatch::try_new(
            schema_ms.clone(),
            vec![Arc::new(
                datafusion::arrow::array::TimestampMillisecondArray::from(vec![1_000]),
            )],
        )
        .expect("batch");
        let path = millis.0.join("ms.parquet");
        let mut writer = ArrowWriter::try_new(
            std::fs::File::create(&path).expect("create"),
            schema_ms,
            None,
        )
        .expect("writer");
        writer.write(&batch).expect("write");
        writer.close().expect("close");
        let layout = super::super::parquet::layout(
            footer(&path, "ms.parquet").expect("footer"),
            Some(&judged),
        );
        assert_eq!(newest_in_footer(&layout, &judged, &[], now), vec![None]);
    }

    fn codes(loaded: &Loaded) -> Vec<&str> {
        loaded.diagnostics.iter().map(|d| d.code.as_str()).collect()
    }

    /// Only the rows of the batch's range are left out, wherever the list
    /// of the file's rows starts and ends.
    #[test]
    fn leaves_out_the_rows_in_its_range() {
        use datafusion::arrow::array::{AsArray, Int64Array};
        use datafusion::arrow::datatypes::{DataType, Field, Int64Type, Schema};
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
        let batch =
            RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from_iter_values(10..15))])
                .expect("batch");
        let kept = |left_out: &[usize]| -> Vec<i64> {
            let b = without(&batch, left_out, 10).expect("filters");
            b.column(0).as_primitive::<Int64Type>().values().to_vec()
        };
        assert_eq!(kept(&[]), vec![10, 11, 12, 13, 14]);
        assert_eq!(kept(&[2, 9, 15, 40]), vec![10, 11, 12, 13, 14]);
        assert_eq!(kept(&[3, 10, 12, 14, 15]), vec![11, 13]);
    }
}
