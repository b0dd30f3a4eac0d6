//! Append-only sources (`append_only = true`): a source that only ever
//! gains files is read incrementally. In: the source's files (path, size,
//! modification time), the record of what earlier runs read (the store's
//! `reads`) and the cached typed rows of that part. Out: the same `Loaded`
//! a full read gives (the same rows, bad-row counts and samples, present
//! fields and freshness), having decoded and type-checked only the new
//! files; and, when the run may remember, the record and cache extended.
//!
//! When the cache is used (every condition, else the source is read in
//! full and the record replaced):
//! - a record exists for the same source path, format, schema and accord
//!   version (its fingerprint);
//! - every file read before is still there with the same size and
//!   modification time; one that is gone, shrank, grew or was rewritten is
//!   a warning (R0015), never silently wrong;
//! - every new file is read after every file read before (text files
//!   before Parquet files, each in path order, as a full read goes), so
//!   the first of two rows with one key is the same row as in a full read;
//!   otherwise R0015 too;
//! - every cached segment is there and holds the schema's columns.
//!
//! The cache: one Parquet file per read that found new rows (a segment),
//! under `.accord/sources/<source>/`, written atomically before the store
//! transaction that names it. A crash before that commit leaves a file no
//! record names (removed by the next remembering read) and the old record;
//! after it, the new record and its segment. So the record always names
//! segments that exist and hold exactly the rows of its files.
//!
//! Data errors (a coded error among the read's diagnostics) are never
//! remembered: the next run reads the same files again and reports them.
//!
//! Streamed (every run, unless no folder can be made under `.accord/tmp`):
//! the cached segments are read a batch at a time for their keys (the new
//! rows are checked against them) and freshness; the new rows go to one
//! file (text typed into a spill file however few they are, `spill`;
//! Parquet rows copied once checked, `streamed::read_streamed`; new files
//! of both kinds typed, then checked, after the cache, `read_mixed`, and
//! copied together), which becomes the next segment by a copy; and the
//! engine streams the segments and that file. No row is held.

use std::path::{Path, PathBuf};

use datafusion::arrow::array::Array;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ParquetRecordBatchReaderBuilder,
};
use datafusion::parquet::arrow::{ArrowWriter, ProjectionMask};

use super::freshness::{Newest, judges_freshness};
use super::spill::{checked_file, spill_properties};
use super::streamed::{self, File, Origin};
use super::typing::{Builder, key_text};
use super::{Earlier, Loaded, ReadContext, arrow_schema, is_parquet, read_order, read_these};
use crate::diag::codes;
use crate::plan::{SchemaPlan, SourcePlan};
use crate::run::error::RunError;
use crate::run::files;
use crate::run::io::{self, Faults};
use crate::run::report::{IncrementalReport, RunDiagnostic};
use crate::store::{ReadItem, ReadRecord, ReadUpdate, Segment};
use crate::time::Micros;

/// How many changed files R0015 names (all are counted).
const CHANGES_NAMED: usize = 3;

/// The record's fingerprint: what the cached rows are typed for.
fn fingerprint(source: &SourcePlan, schema: &SchemaPlan) -> String {
    let what = serde_json::json!({
        "accord": env!("CARGO_PKG_VERSION"),
        // 2: segments are Parquet files (they were Arrow IPC files).
        "cache": 2,
        "path": source.path,
        "format": source.format.as_str(),
        "schema": source.schema,
        "schema_fingerprint": schema.fingerprint,
        "key": schema.key,
        "fields": schema.fields.iter().map(|(n, f)| (n.clone(), f.ty.clone(), f.values.clone())).collect::<Vec<_>>(),
    });
    crate::hash::sha256_hex(what.to_string())
}

/// A file's size and modification time (µs since the epoch).
fn stat(file: &Path, shown: String) -> Result<ReadItem, String> {
    let meta = std::fs::metadata(file).map_err(|e| format!("{shown}: {e}"))?;
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_micros() as i64);
    Ok(ReadItem {
        item: shown,
        size: meta.len(),
        modified,
    })
}

/// Why the cache cannot be used, and the R0015 changes when files changed.
struct Full {
    why: &'static str,
    changes: Vec<(String, String)>,
}

/// Which files to read: `Ok(new files, in listing order)` when the record
/// covers the others, else why the source is read in full.
fn decide(
    record: Option<&ReadRecord>,
    fingerprint: &str,
    listing: &[ReadItem],
    order: &[usize],
) -> Result<Vec<usize>, Full> {
    let full = |why| Full {
        why,
        changes: Vec::new(),
    };
    let Some(record) = record else {
        return Err(full("first read"));
    };
    if record.fingerprint != fingerprint || record.kind != "files" {
        return Err(full("source or schema changed"));
    }
    let mut changes = Vec::new();
    let listed: std::collections::BTreeMap<&str, &ReadItem> =
        listing.iter().map(|i| (i.item.as_str(), i)).collect();
    for old in &record.items {
        let change = match listed.get(old.item.as_str()) {
            None => Some("is gone".to_string()),
            Some(now) if now.size < old.size => {
                Some(format!("shrank from {} to {} bytes", old.size, now.size))
            }
            Some(now) if now.size > old.size => {
                Some(format!("grew from {} to {} bytes", old.size, now.size))
            }
            Some(now) if now.modified != old.modified => {
                Some("was rewritten (same size, another modification time)".to_string())
            }
            Some(_) => None,
        };
        if let Some(change) = change {
            changes.push((old.item.clone(), change));
        }
    }
    let known: std::collections::BTreeSet<&str> =
        record.items.iter().map(|i| i.item.as_str()).collect();
    let is_old = |i: usize| known.contains(listing[i].item.as_str());
    // In read order, every old file must come before every new one.
    let last_old = order.iter().rposition(|&i| is_old(i));
    if let Some(last_old) = last_old {
        for &i in &order[..last_old] {
            if !is_old(i) {
                changes.push((
                    listing[i].item.clone(),
                    format!(
                        "is new but is read before {}, which was read already",
                        listing[order[last_old]].item
                    ),
                ));
            }
        }
    }
    if !changes.is_empty() {
        return Err(Full {
            why: "files changed",
            changes,
        });
    }
    Ok((0..listing.len()).filter(|&i| !is_old(i)).collect())
}

/// R0015: the files of an append-only source changed under it.
fn changed(name: &str, changes: &[(String, String)]) -> RunDiagnostic {
    let shown: Vec<String> = changes
        .iter()
        .take(CHANGES_NAMED)
        .map(|(f, why)| format!("{f} {why}"))
        .collect();
    let more = changes.len().saturating_sub(CHANGES_NAMED);
    let mut message = format!("source `{name}` is append-only, but {}", shown.join("; "));
    if more > 0 {
        message.push_str(&format!(
            " (and {more} more file{})",
            if more == 1 { "" } else { "s" }
        ));
    }
    message.push_str(": the source is read in full again");
    RunDiagnostic::new(codes::run::APPEND_ONLY_CHANGED, message)
        .at(changes[0].0.clone())
        .help("append-only sources only gain new files; write corrections as new files, or drop `append_only` from the source if its files are rewritten")
}

/// `.accord/sources/<source>/`.
fn cache_dir(root: &Path, name: &str) -> Result<PathBuf, RunError> {
    io::inside(
        &root.join(".accord").join("sources"),
        name,
        "",
        &format!("source `{name}`"),
    )
}

/// A cached segment: its file, and its footer read once.
#[derive(Clone)]
pub(super) struct CachedSegment {
    pub(super) path: PathBuf,
    pub(super) footer: ArrowReaderMetadata,
}

impl CachedSegment {
    fn open(path: PathBuf) -> Result<CachedSegment, String> {
        let failed =
            |e: &dyn std::fmt::Display| format!(".accord/sources: {}: {e}", path.display());
        let file = std::fs::File::open(&path).map_err(|e| failed(&e))?;
        let footer =
            ArrowReaderMetadata::load(&file, Default::default()).map_err(|e| failed(&e))?;
        Ok(CachedSegment { path, footer })
    }

    /// A reader of its rows, from the footer already read.
    fn reader(&self) -> Result<ParquetRecordBatchReaderBuilder<std::fs::File>, String> {
        let file = std::fs::File::open(&self.path)
            .map_err(|e| format!(".accord/sources: {}: {e}", self.path.display()))?;
        Ok(ParquetRecordBatchReaderBuilder::new_with_metadata(
            file,
            self.footer.clone(),
        ))
    }
}

/// The cached segments a record names, in order; `None` when one is
/// missing, unreadable, typed otherwise or of another number of rows (the
/// source is then read in full).
fn segment_files(
    dir: &Path,
    record: &ReadRecord,
    schema: &SchemaPlan,
) -> Option<Vec<CachedSegment>> {
    let expected = arrow_schema(schema);
    let mut segments = Vec::new();
    for segment in &record.segments {
        let cached = CachedSegment::open(dir.join(&segment.file)).ok()?;
        let rows = cached.footer.metadata().file_metadata().num_rows();
        if cached.footer.schema().fields() != expected.fields()
            || u64::try_from(rows).ok()? != segment.rows
        {
            return None;
        }
        segments.push(cached);
    }
    Some(segments)
}

/// Every row of the segments, in order (a read that is not streamed).
fn read_segments(segments: &[CachedSegment]) -> Result<Vec<RecordBatch>, String> {
    let mut batches = Vec::new();
    for segment in segments {
        let shown =
            |e: &dyn std::fmt::Display| format!(".accord/sources: {}: {e}", segment.path.display());
        for batch in segment.reader()?.build().map_err(|e| shown(&e))? {
            batches.push(batch.map_err(|e| shown(&e))?);
        }
    }
    Ok(batches)
}

/// Writes `batches` as the segment `file` of `dir` (a Parquet file, as a
/// spill file is written), atomically: temporary file, fsync, rename, each
/// operation a crash test step.
fn write_segment(
    dir: &Path,
    file: &str,
    schema: &SchemaPlan,
    batches: &[RecordBatch],
    faults: &Faults,
) -> Result<(), String> {
    io::write_atomic_with(&dir.join(file), faults, |out| {
        let mut writer = ArrowWriter::try_new(out, arrow_schema(schema), Some(spill_properties()))?;
        for batch in batches {
            writer.write(batch)?;
        }
        writer.close()?;
        Ok(())
    })
    .map_err(|e| format!(".accord/sources: {e}"))
}

/// Copies a file of new rows (a streamed read's spill file) as the segment
/// `file` of `dir`, atomically as [`write_segment`] writes.
fn copy_segment(dir: &Path, file: &str, from: &Path, faults: &Faults) -> Result<(), String> {
    io::write_atomic_with(&dir.join(file), faults, |out| {
        std::io::copy(&mut std::fs::File::open(from)?, out).map(|_| ())
    })
    .map_err(|e| format!(".accord/sources: {e}"))
}

/// What a streamed read finds in the cached segments before it reads the
/// new files.
pub(super) struct Cached {
    pub(super) rows: u64,
    pub(super) newest: Newest,
}

/// Reads the cached segments' key (when `keys`: into the builder's key
/// set, so new text rows are checked against them) and freshness columns,
/// a batch at a time: their rows, and what freshness finds in them.
pub(super) fn scan_cached(
    segments: &[CachedSegment],
    (source, schema): (&SourcePlan, &SchemaPlan),
    now: Micros,
    keys: bool,
    b: &mut Builder,
) -> Result<Cached, String> {
    let column = source.freshness_column.as_deref();
    let key = schema.key.as_deref().filter(|_| keys);
    let mut cached = Cached {
        rows: 0,
        newest: Newest::none(),
    };
    for segment in segments {
        let shown =
            |e: &dyn std::fmt::Display| format!(".accord/sources: {}: {e}", segment.path.display());
        let builder = segment.reader()?;
        let wanted: Vec<usize> = builder
            .schema()
            .fields()
            .iter()
            .enumerate()
            .filter(|(_, f)| {
                Some(f.name().as_str()) == key || judges_freshness(schema, column, f.name())
            })
            .map(|(i, _)| i)
            .collect();
        let mask = ProjectionMask::roots(builder.parquet_schema(), wanted);
        let reader = builder
            .with_projection(mask)
            .build()
            .map_err(|e| shown(&e))?;
        for batch in reader {
            let batch = batch.map_err(|e| shown(&e))?;
            cached.rows += batch.num_rows() as u64;
            if let Some(col) = key.and_then(|k| batch.column_by_name(k)) {
                for i in 0..col.len() {
                    if col.is_valid(i) {
                        b.keys.insert(&key_text(col, i));
                    }
                }
            }
            cached.newest.merge(Newest::of(
                std::slice::from_ref(&batch),
                schema,
                source,
                now,
            ));
        }
    }
    Ok(cached)
}

/// The cached segments as files a streamed source reads (checked when
/// they were cached: no row is left out).
pub(super) fn cached_files(
    name: &str,
    segments: &[CachedSegment],
    schema: &SchemaPlan,
) -> Result<Vec<File>, String> {
    segments
        .iter()
        .map(|segment| {
            let (path, footer) = (segment.path.clone(), segment.footer.clone());
            checked_file(
                (path.clone(), segment_shown(name, &path)),
                footer,
                schema,
                None,
            )
        })
        .collect()
}

/// A segment as messages name it, under the project.
pub(super) fn segment_shown(name: &str, path: &Path) -> String {
    format!(
        ".accord/sources/{name}/{}",
        path.file_name().unwrap_or_default().to_string_lossy()
    )
}

/// Removes the files of `dir` that `keep` does not name (segments of
/// replaced records, files of interrupted runs).
fn remove_others(dir: &Path, keep: &[Segment], faults: &Faults) -> Result<(), String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    let mut names: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .filter(|e| {
            !keep
                .iter()
                .any(|s| e.file_name().to_string_lossy() == s.file)
        })
        .map(|e| e.path())
        .collect();
    names.sort();
    for path in names {
        io::remove(&path, faults).map_err(|e| format!(".accord/sources: {e}"))?;
    }
    Ok(())
}

/// Reads an append-only source (see the module doc).
pub(super) fn read_append_only(
    cx: &ReadContext<'_>,
    name: &str,
    source: &SourcePlan,
    schema: &SchemaPlan,
) -> Result<Loaded, RunError> {
    let fail = |reason: String| RunError::Source {
        source: name.to_string(),
        reason,
    };
    let (files, link_problems) =
        files::resolve(cx.root, name, &source.path, source.format.as_str()).map_err(fail)?;
    let shown = |file: &Path| {
        file.strip_prefix(cx.root)
            .unwrap_or(file)
            .to_string_lossy()
            .replace('\\', "/")
    };
    let listing: Vec<ReadItem> = files
        .iter()
        .map(|f| stat(f, shown(f)))
        .collect::<Result<_, _>>()
        .map_err(fail)?;
    let order = read_order(&files, source.format.as_str());
    let fingerprint = fingerprint(source, schema);
    let record = match cx.store {
        Some(store) => store.read_record(name)?,
        None => None,
    };
    let dir = cache_dir(cx.root, name)?;

    let mut diagnostics = Vec::new();
    let decided = decide(record.as_ref(), &fingerprint, &listing, &order);
    let (new, how, cached) = match (decided, &record) {
        (Ok(new), Some(record)) => match segment_files(&dir, record, schema) {
            Some(segments) => (new, "incremental", Some((record, segments))),
            None => ((0..files.len()).collect(), "full: cache missing", None),
        },
        (Ok(_), None) => ((0..files.len()).collect(), "full: first read", None),
        (Err(full), _) => {
            if !full.changes.is_empty() {
                diagnostics.push(changed(name, &full.changes));
            }
            let how = match full.why {
                "first read" => "full: first read",
                "source or schema changed" => "full: source or schema changed",
                _ => "full: files changed",
            };
            ((0..files.len()).collect(), how, None)
        }
    };
    let incremental = how == "incremental";
    let new_files: Vec<PathBuf> = new.iter().map(|&i| files[i].clone()).collect();
    // Streamed: the new rows go to a file (text typed into it, Parquet
    // copied there once checked; text then Parquet when the new files are
    // of both kinds), which the cache then takes as its next segment, and
    // the engine reads the cached segments and the new rows a batch at a
    // time. Read whole, the cached rows with them, only where no folder
    // can be made.
    let format = source.format.as_str();
    let text = new_files.iter().all(|f| !is_parquet(f, format));
    let parquet = !new_files.is_empty() && new_files.iter().all(|f| is_parquet(f, format));
    let folder = cx
        .stream
        .then(|| super::run_folder(cx.root, name))
        .flatten();
    let mut earlier = Earlier::default();
    let mut rows_reused = 0;
    if let Some((record, segments)) = cached {
        rows_reused = record.segments.iter().map(|s| s.rows).sum();
        let known: std::collections::BTreeSet<&str> =
            record.items.iter().map(|i| i.item.as_str()).collect();
        earlier = Earlier {
            files: order
                .iter()
                .map(|&i| &listing[i].item)
                .filter(|f| known.contains(f.as_str()))
                .cloned()
                .collect(),
            present: record.present.clone(),
            bad_rows: record.bad_rows,
            samples: record.samples.clone(),
            ..Earlier::default()
        };
        if folder.is_some() {
            earlier.segments = segments;
        } else {
            earlier.batches = read_segments(&segments).map_err(|e| {
                fail(format!(
                    "{e}; delete `.accord/sources/{name}` to read the source in full"
                ))
            })?;
        }
    }
    let files_reused = earlier.files.len() as u64;
    let earlier_batches = earlier.batches.len();
    let mixed = !text && !parquet;
    let mut loaded = if let Some(run) = folder.clone().filter(|_| mixed) {
        // The next segment is copied, like new Parquet rows, only when the
        // cache is kept.
        earlier.folder = folder.filter(|_| cx.remember && cx.store.is_some());
        let every: std::collections::BTreeSet<String> = schema.fields.keys().cloned().collect();
        let inputs = new
            .iter()
            .map(|&i| super::Input::Local {
                file: files[i].clone(),
                shown: listing[i].item.clone(),
            })
            .collect();
        super::read_mixed(
            (cx.root, cx.now),
            name,
            (source, schema),
            &every,
            (inputs, None, link_problems),
            run,
            earlier,
        )?
    } else if parquet && folder.is_some() {
        // Checked Parquet rows are copied for the cache only when it is
        // kept (not in a preview).
        earlier.folder = folder.filter(|_| cx.remember && cx.store.is_some());
        let every: std::collections::BTreeSet<String> = schema.fields.keys().cloned().collect();
        let new_files = new
            .iter()
            .map(|&i| (files[i].clone(), listing[i].item.clone()));
        streamed::read_streamed(
            name,
            (source, schema),
            cx.now,
            &every,
            (new_files.collect(), Origin::Local),
            link_problems,
            earlier,
        )?
    } else {
        earlier.folder = folder.clone();
        let spill = folder.is_some().then_some(cx.root);
        read_these(
            cx.root,
            name,
            source,
            schema,
            cx.now,
            (&new_files, spill),
            link_problems,
            earlier,
        )?
    };
    loaded.diagnostics.extend(diagnostics);
    loaded.report.incremental = Some(IncrementalReport {
        read: how.to_string(),
        files_reused,
        rows_reused,
        files_read: new_files.len() as u64,
    });

    let Some(store) = cx.store.filter(|_| cx.remember) else {
        return Ok(loaded);
    };
    if loaded.diagnostics.iter().any(|d| d.is_error()) || (incremental && new.is_empty()) {
        return Ok(loaded);
    }
    let faults = store.faults();
    let next_seq = record
        .as_ref()
        .and_then(|r| r.segments.iter().map(|s| s.seq).max())
        .unwrap_or(0)
        + 1;
    let file = format!("{next_seq:06}.parquet");
    // Taken: its folder goes once the engine lets go of the new rows too.
    let rows = match &loaded.spilled.take() {
        // The new rows' file, copied as it is.
        Some(spilled) => {
            if spilled.rows > 0 {
                copy_segment(&dir, &file, &spilled.path, faults).map_err(fail)?;
            }
            spilled.rows
        }
        None => {
            let fresh = &loaded.batches[earlier_batches..];
            let rows: u64 = fresh.iter().map(|b| b.num_rows() as u64).sum();
            if rows > 0 {
                write_segment(&dir, &file, schema, fresh, faults).map_err(fail)?;
            }
            rows
        }
    };
    let segment = (rows > 0).then_some(Segment {
        seq: next_seq,
        file,
        rows,
    });
    let present = loaded.present.clone();
    let bad_rows = loaded.report.bad_rows;
    let samples = loaded.report.bad_row_samples.clone();
    let (update, keep) = if incremental {
        let mut keep = record.map(|r| r.segments).unwrap_or_default();
        keep.extend(segment.clone());
        (
            ReadUpdate::Extend {
                items: new.iter().map(|&i| listing[i].clone()).collect(),
                segment,
                present,
                bad_rows,
                samples,
                mark: None,
            },
            keep,
        )
    } else {
        let segments: Vec<Segment> = segment.into_iter().collect();
        (
            ReadUpdate::Replace(ReadRecord {
                fingerprint,
                kind: "files".into(),
                mark: None,
                present,
                bad_rows,
                samples,
                items: listing,
                segments: segments.clone(),
            }),
            segments,
        )
    };
    store.remember_read(name, &update)?;
    remove_others(&dir, &keep, faults).map_err(fail)?;
    Ok(loaded)
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;

    use super::super::streamed::tests::{rows_of, write as write_parquet};
    use super::super::tests::{Scratch, field, text_source, tiered};
    use super::super::{Input, Inputs, decode, shown_path};
    use super::*;

    /// A Parquet file as a cached segment.
    fn cached(path: &Path) -> CachedSegment {
        CachedSegment::open(path.to_path_buf()).expect("a segment")
    }

    /// Every row of a read, in key order, as one batch.
    fn all_rows(loaded: &Loaded) -> RecordBatch {
        let rows = rows_of(loaded);
        datafusion::arrow::compute::concat_batches(&rows[0].schema(), &rows).expect("concats")
    }

    /// The cache's rows and new files, read as the run reads them: the
    /// cache whole with the new files (`whole`), or streamed (the segments
    /// and the new rows' file; text files typed into that file, Parquet
    /// files checked and copied there).
    fn read_after(dir: &Scratch, segment: &Path, new: &[&str], whole: bool) -> Loaded {
        let schema = tiered(vec![("at", field("timestamp", None))]);
        let source = text_source("data", "csv");
        let now = 1_000 * 3_600_000_000i64;
        let mut earlier = Earlier {
            files: vec!["data/0-old.csv".into()],
            present: vec!["at".into(), "id".into(), "n".into(), "tier".into()],
            bad_rows: 1,
            samples: vec!["data/0-old.csv:3: a sample".into()],
            ..Earlier::default()
        };
        let files: Vec<PathBuf> = new.iter().map(|f| dir.0.join(f)).collect();
        if whole {
            earlier.batches = read_segments(&[cached(segment)]).expect("the segment");
        } else {
            earlier.segments = vec![cached(segment)];
            earlier.folder = Some(super::super::run_folder(&dir.0, "t").expect("a folder"));
        }
        let parquet = new.iter().filter(|f| f.ends_with(".parquet")).count();
        let inputs: Vec<Input> = files
            .iter()
            .map(|file| Input::Local {
                shown: shown_path(&dir.0, file),
                file: file.clone(),
            })
            .collect();
        if !whole && parquet > 0 && parquet < new.len() {
            let every = schema.fields.keys().cloned().collect();
            let run = super::super::run_folder(&dir.0, "t").expect("a folder");
            return super::super::read_mixed(
                (&dir.0, now),
                "t",
                (&source, &schema),
                &every,
                (inputs, None, Vec::new()),
                run,
                earlier,
            )
            .expect("reads");
        }
        if !whole && !new.is_empty() && parquet == new.len() {
            let every = schema.fields.keys().cloned().collect();
            let new = files.iter().map(|f| (f.clone(), shown_path(&dir.0, f)));
            let read = (new.collect(), Origin::Local);
            return streamed::read_streamed(
                "t",
                (&source, &schema),
                now,
                &every,
                read,
                Vec::new(),
                earlier,
            )
            .expect("reads");
        }
        let inputs = Inputs {
            inputs,
            remote: None,
            problems: Vec::new(),
            spill: (!whole).then_some(dir.0.as_path()),
        };
        decode("t", &source, &schema, now, None, inputs, earlier).expect("reads")
    }

    /// A streamed read after the cache gives what reading the cache whole
    /// with the new files gives (rows, report, diagnostics; a new row
    /// repeating a cached key left out, the newest time a cached row's),
    /// holds no batch, and writes exactly the new rows to the file the
    /// cache takes next: for new text files, new Parquet files, both, and
    /// none.
    #[test]
    fn a_streamed_read_after_the_cache_is_the_read_with_the_cache_whole() {
        let dir = Scratch::new("remember-streamed");
        let hour = 3_600_000_000i64;
        let now = 1_000 * hour;
        let at = |h: i64| crate::time::format_timestamp(now - h * hour);
        // The cache: a segment of the rows of an older file (the newest
        // time among them).
        let mut old = String::from("id,n,tier,at\n");
        for i in 0..1_000 {
            writeln!(old, "c{i},{i},gold,{}", at(5 + i % 7)).expect("writes");
        }
        writeln!(old, "c-newest,1,silver,{}", at(1)).expect("writes");
        dir.write("old/0-old.csv", &old);
        let schema = tiered(vec![("at", field("timestamp", None))]);
        let old_rows = {
            let source = text_source("old", "csv");
            let inputs = Inputs {
                inputs: vec![Input::Local {
                    file: dir.0.join("old/0-old.csv"),
                    shown: "data/0-old.csv".into(),
                }],
                remote: None,
                problems: Vec::new(),
                spill: None,
            };
            decode("t", &source, &schema, now, None, inputs, Earlier::default()).expect("reads")
        };
        let segments = dir.0.join(".accord/sources/t");
        let faults = Faults::default();
        write_segment(
            &segments,
            "000001.parquet",
            &schema,
            &old_rows.batches,
            &faults,
        )
        .expect("the segment");
        let segment = segments.join("000001.parquet");

        // New text rows: a cached key again, a bad value, good rows.
        let mut text = String::from("id,n,tier,at\n");
        writeln!(text, "c7,1,gold,{}", at(2)).expect("writes");
        writeln!(text, "n1,one,gold,{}", at(2)).expect("writes");
        for i in 0..300 {
            writeln!(text, "t{i},{i},silver,{}", at(3)).expect("writes");
        }
        dir.write("data/1-new.csv", &text);
        // New Parquet rows: a cached key again, one outside its domain.
        write_parquet(
            &dir,
            "data/2-new.parquet",
            &[
                (Some("p1"), "1", "gold", now - 3 * hour),
                (Some("c9"), "2", "gold", now - 3 * hour),
                (Some("p3"), "3", "tin", now - 3 * hour),
                (Some("p4"), "4", "silver", now - 4 * hour),
            ],
        );
        for (new, rows, bad) in [
            (&["data/1-new.csv"][..], 300u64, 2u64),
            (&["data/2-new.parquet"][..], 2, 2),
            (&["data/1-new.csv", "data/2-new.parquet"][..], 302, 4),
            (&[][..], 0, 0),
        ] {
            let whole = read_after(&dir, &segment, new, true);
            let streamed = read_after(&dir, &segment, new, false);
            assert!(streamed.batches.is_empty(), "{new:?}: no batch is held");
            assert!(!streamed.streams.is_empty(), "{new:?}");
            assert_eq!(streamed.report, whole.report, "{new:?}");
            assert_eq!(streamed.report.rows, 1_001 + rows, "{new:?}");
            assert_eq!(streamed.report.bad_rows, 1 + bad, "{new:?}");
            assert_eq!(streamed.report.newest, Some(at(1)), "{new:?}");
            assert_eq!(streamed.present, whole.present, "{new:?}");
            assert_eq!(
                format!("{:?}", streamed.diagnostics),
                format!("{:?}", whole.diagnostics),
                "{new:?}"
            );
            assert_eq!(all_rows(&streamed), all_rows(&whole), "{new:?}");
            // The next segment: the new rows, every column.
            let spilled = streamed.spilled.as_ref().expect("the new rows' file");
            assert_eq!(spilled.rows, rows, "{new:?}");
            let copied = read_segments(&[cached(&spilled.path)]).expect("the new rows");
            let copied: usize = copied.iter().map(|b| b.num_rows()).sum();
            assert_eq!(copied as u64, rows, "{new:?}");
        }
    }

    fn item(name: &str, size: u64, modified: i64) -> ReadItem {
        ReadItem {
            item: name.into(),
            size,
            modified: Some(modified),
        }
    }

    fn record(items: Vec<ReadItem>) -> ReadRecord {
        ReadRecord {
            fingerprint: "f".into(),
            kind: "files".into(),
            mark: None,
            present: vec![],
            bad_rows: 0,
            samples: vec![],
            items,
            segments: vec![],
        }
    }

    #[test]
    fn only_files_after_the_ones_read_are_new() {
        let old = record(vec![item("d/1.jsonl", 10, 1), item("d/2.jsonl", 10, 1)]);
        let listing = vec![
            item("d/1.jsonl", 10, 1),
            item("d/2.jsonl", 10, 1),
            item("d/3.jsonl", 5, 2),
        ];
        let order = vec![0, 1, 2];
        assert_eq!(
            decide(Some(&old), "f", &listing, &order).ok(),
            Some(vec![2])
        );
        assert_eq!(
            decide(Some(&old), "g", &listing, &order)
                .err()
                .map(|f| f.why),
            Some("source or schema changed")
        );
        assert_eq!(
            decide(None, "f", &listing, &order).err().map(|f| f.why),
            Some("first read")
        );

        let shrunk = vec![item("d/1.jsonl", 9, 1), item("d/2.jsonl", 10, 1)];
        let full = decide(Some(&old), "f", &shrunk, &[0, 1]).expect_err("full");
        assert_eq!(
            full.changes,
            vec![(
                "d/1.jsonl".to_string(),
                "shrank from 10 to 9 bytes".to_string()
            )]
        );
        let touched = vec![item("d/1.jsonl", 10, 1), item("d/2.jsonl", 10, 7)];
        assert_eq!(
            decide(Some(&old), "f", &touched, &[0, 1])
                .err()
                .map(|f| f.changes.len()),
            Some(1)
        );
        let gone = vec![item("d/2.jsonl", 10, 1)];
        assert_eq!(
            decide(Some(&old), "f", &gone, &[0])
                .err()
                .map(|f| f.changes),
            Some(vec![("d/1.jsonl".to_string(), "is gone".to_string())])
        );
        // A new file that sorts among the old ones: a full read keeps its
        // keys first, so the cache cannot be used.
        let between = vec![
            item("d/1.jsonl", 10, 1),
            item("d/15.jsonl", 3, 2),
            item("d/2.jsonl", 10, 1),
        ];
        let full = decide(Some(&old), "f", &between, &[0, 1, 2]).expect_err("full");
        assert_eq!(full.changes[0].0, "d/15.jsonl");
    }
}
