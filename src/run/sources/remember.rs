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
//! The cache: one Arrow IPC file per read that found new rows (a segment),
//! under `.accord/sources/<source>/`, written atomically before the store
//! transaction that names it. A crash before that commit leaves a file no
//! record names (removed by the next remembering read) and the old record;
//! after it, the new record and its segment. So the record always names
//! segments that exist and hold exactly the rows of its files.
//!
//! Data errors (a coded error among the read's diagnostics) are never
//! remembered: the next run reads the same files again and reports them.

use std::path::{Path, PathBuf};

use datafusion::arrow::record_batch::RecordBatch;

use super::{Earlier, Loaded, ReadContext, arrow_schema, read_order, read_these};
use crate::diag::codes;
use crate::plan::{SchemaPlan, SourcePlan};
use crate::run::error::RunError;
use crate::run::files;
use crate::run::io::{self, Faults};
use crate::run::report::{IncrementalReport, RunDiagnostic};
use crate::store::{ReadItem, ReadRecord, ReadUpdate, Segment};

/// How many changed files R0015 names (all are counted).
const CHANGES_NAMED: usize = 3;

/// The record's fingerprint: what the cached rows are typed for.
fn fingerprint(source: &SourcePlan, schema: &SchemaPlan) -> String {
    let what = serde_json::json!({
        "accord": env!("CARGO_PKG_VERSION"),
        "cache": 1,
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

/// The cached rows a record names, in order; `None` when a segment is
/// missing, unreadable or typed otherwise (the source is then read in full).
fn load_segments(dir: &Path, record: &ReadRecord, schema: &SchemaPlan) -> Option<Vec<RecordBatch>> {
    use datafusion::arrow::ipc::reader::FileReader;
    let expected = arrow_schema(schema);
    let mut batches = Vec::new();
    for segment in &record.segments {
        let file = std::fs::File::open(dir.join(&segment.file)).ok()?;
        let reader = FileReader::try_new(std::io::BufReader::new(file), None).ok()?;
        if reader.schema().fields() != expected.fields() {
            return None;
        }
        let mut rows = 0u64;
        for batch in reader {
            let batch = batch.ok()?;
            rows += batch.num_rows() as u64;
            batches.push(batch);
        }
        if rows != segment.rows {
            return None;
        }
    }
    Some(batches)
}

/// Writes `batches` as the segment `file` of `dir`, atomically (temporary
/// file, fsync, rename), each operation a crash test step.
fn write_segment(
    dir: &Path,
    file: &str,
    schema: &SchemaPlan,
    batches: &[RecordBatch],
    faults: &Faults,
) -> Result<(), String> {
    use datafusion::arrow::ipc::writer::FileWriter;
    let shown = |e: &dyn std::fmt::Display| format!(".accord/sources: {e}");
    faults.step();
    std::fs::create_dir_all(dir).map_err(|e| shown(&e))?;
    let path = dir.join(file);
    let tmp = dir.join(format!(".{file}.tmp"));
    faults.step();
    let out = std::fs::File::create(&tmp).map_err(|e| shown(&e))?;
    faults.step();
    let mut writer = FileWriter::try_new(std::io::BufWriter::new(out), &arrow_schema(schema))
        .map_err(|e| shown(&e))?;
    for batch in batches {
        writer.write(batch).map_err(|e| shown(&e))?;
    }
    writer.finish().map_err(|e| shown(&e))?;
    let out = writer
        .into_inner()
        .map_err(|e| shown(&e))?
        .into_inner()
        .map_err(|e| shown(&e.error()))?;
    faults.step();
    out.sync_all().map_err(|e| shown(&e))?;
    drop(out);
    faults.step();
    std::fs::rename(&tmp, &path).map_err(|e| shown(&e))?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
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
    let mut earlier = Earlier::default();
    let (new, how) = match (decided, &record) {
        (Ok(new), Some(record)) => match load_segments(&dir, record, schema) {
            Some(batches) => {
                let known: std::collections::BTreeSet<&str> =
                    record.items.iter().map(|i| i.item.as_str()).collect();
                earlier = Earlier {
                    files: order
                        .iter()
                        .map(|&i| &listing[i].item)
                        .filter(|f| known.contains(f.as_str()))
                        .cloned()
                        .collect(),
                    batches,
                    present: record.present.clone(),
                    bad_rows: record.bad_rows,
                    samples: record.samples.clone(),
                };
                (new, "incremental")
            }
            None => ((0..files.len()).collect(), "full: cache missing"),
        },
        (Ok(_), None) => ((0..files.len()).collect(), "full: first read"),
        (Err(full), _) => {
            if !full.changes.is_empty() {
                diagnostics.push(changed(name, &full.changes));
            }
            let how = match full.why {
                "first read" => "full: first read",
                "source or schema changed" => "full: source or schema changed",
                _ => "full: files changed",
            };
            ((0..files.len()).collect(), how)
        }
    };
    let incremental = how == "incremental";
    let files_reused = earlier.files.len() as u64;
    let earlier_batches = earlier.batches.len();
    let rows_reused: u64 = earlier.batches.iter().map(|b| b.num_rows() as u64).sum();
    let new_files: Vec<PathBuf> = new.iter().map(|&i| files[i].clone()).collect();
    let mut loaded = read_these(
        cx.root,
        name,
        source,
        schema,
        cx.now,
        &new_files,
        link_problems,
        earlier,
    )?;
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
    let fresh = &loaded.batches[earlier_batches..];
    let rows: u64 = fresh.iter().map(|b| b.num_rows() as u64).sum();
    let segment = if rows > 0 {
        let file = format!("{next_seq:06}.arrow");
        write_segment(&dir, &file, schema, fresh, faults).map_err(fail)?;
        Some(Segment {
            seq: next_seq,
            file,
            rows,
        })
    } else {
        None
    };
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
    use super::*;

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
