//! Object-store sources: a source whose `path` is `s3://BUCKET/...`,
//! `az://ACCOUNT/CONTAINER/...` (or `azure://`) or `gs://BUCKET/...` in,
//! its objects listed and fetched out, for the decoders the local files go
//! through.
//!
//! The client is the storage destinations' own
//! (`deliver::storage::object::client`): the same credential settings and
//! values, the default credential chain when the source names none, the
//! same `endpoint`, timeouts and bounded retries.
//!
//! What is fetched: a CSV or JSONL object whole (one GET), then decoded
//! like a local file; of a Parquet object, its footer once, then only the
//! column chunks of the columns the run needs (`columns::needed`), of the
//! row groups that hold rows, as ranged GETs (adjacent ranges coalesced by
//! object_store), row groups fetched on every core, then either decoded
//! (`read_parquet`) or written into a local copy that `streamed` reads
//! (`copy_parquet`). Every byte fetched is counted for the source report.
//!
//! Objects are matched like local files: a glob (`s3://lake/crm/*.parquet`,
//! `**` across folders), a folder (`s3://lake/events/`: every object of the
//! source's format under it) or one object; sorted by name; hidden objects
//! (a part of the name after the listed prefix starting with `.` or `_`,
//! such as `_SUCCESS` and `_temporary/` of Spark and Hive writers) are
//! skipped.
//!
//! Errors: a store that cannot be reached, refuses the credentials or has
//! no such bucket is `RunError::SourceAccess` (R0011), naming the source
//! and where it reads, never a secret or a signed URL.

use std::collections::BTreeSet;
use std::ops::Range;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use datafusion::parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
use datafusion::parquet::arrow::async_reader::{AsyncFileReader, ParquetRecordBatchStreamBuilder};
use datafusion::parquet::errors::ParquetError;
use datafusion::parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};
use object_store::path::Path;
use object_store::{GetOptions, ObjectMeta, ObjectStore, ObjectStoreExt};

use super::parquet::{BATCH_ROWS, Decoded, layout, typed};
use crate::deliver::secrets;
use crate::deliver::storage::object::{Bucket, client, describe, kind_of};
use crate::plan::{SchemaPlan, SourcePlan};
use crate::run::error::RunError;
use crate::run::files;

/// How many objects (or runs of rows) are fetched at once.
const IN_FLIGHT: usize = 8;

/// An object-store source's store, with the bytes fetched so far.
pub(super) struct Remote {
    store: Arc<dyn ObjectStore>,
    /// `None` only while dropping.
    runtime: Option<tokio::runtime::Runtime>,
    /// The source's name, for errors.
    source: String,
    /// `s3://lake`: object names are shown under it.
    root: String,
    /// `s3://lake/crm/`: where the source reads, as errors show it.
    location: String,
    /// The name prefix listed (no leading or trailing `/`).
    prefix: String,
    /// What the names under `prefix` must match; `None`: the source's
    /// format (a folder), or one object (`single`).
    pattern: Option<globset::GlobMatcher>,
    /// The path names one object (neither a glob nor ending in `/`).
    single: bool,
    bytes: Arc<AtomicU64>,
    /// Bytes the first GET of a copy's footer asks for ([`FOOTER_HINT`];
    /// tests make it small, so their small objects are copied in parts).
    footer_hint: u64,
}

/// An object of the source, and its name as reports show it
/// (`s3://lake/crm/a.parquet`).
pub(super) struct Object {
    pub(super) meta: ObjectMeta,
    pub(super) shown: String,
}

/// `(bucket parts, key)` of an object-store URI: `s3://lake/crm/a.csv` is
/// `(["lake"], "crm/a.csv")`; Azure's has the account and the container.
fn split_uri(uri: &str) -> Result<(&'static str, Vec<&str>, &str), String> {
    let (scheme, rest) = uri
        .split_once("://")
        .ok_or_else(|| format!("{uri}: not an object-store URI"))?;
    let kind = crate::plan::object_store_of(uri)
        .ok_or_else(|| format!("{uri}: `{scheme}://` is not an object store (s3, az, gs)"))?;
    let parts = if kind == "azure_blob" { 2 } else { 1 };
    let mut split = rest.splitn(parts + 1, '/');
    let mut names = Vec::new();
    for _ in 0..parts {
        match split.next() {
            Some(name) if !name.is_empty() => names.push(name),
            _ => {
                return Err(format!(
                    "{uri}: names no {}",
                    if kind == "azure_blob" {
                        "account and container (az://ACCOUNT/CONTAINER/...)"
                    } else {
                        "bucket"
                    }
                ));
            }
        }
    }
    Ok((kind, names, split.next().unwrap_or("")))
}

impl Remote {
    /// The store of `source` (its `path` an object-store URI), with its
    /// credentials read from where the settings point (`root` for `file:`
    /// references).
    pub(super) fn open(
        root: &std::path::Path,
        name: &str,
        source: &SourcePlan,
    ) -> Result<Remote, RunError> {
        let fail = |reason: String| RunError::Source {
            source: name.to_string(),
            reason,
        };
        let (kind, names, key) = split_uri(&source.path).map_err(fail)?;
        let bucket = match kind {
            "s3" => Bucket::S3(names[0]),
            "azure_blob" => Bucket::Azure {
                account: names[0],
                container: names[1],
            },
            _ => Bucket::Gcs(names[0]),
        };
        let secrets = secrets::resolve_storage(&source.settings, root).map_err(fail)?;
        let store = client(
            &bucket,
            &source.settings,
            &secrets,
            source.endpoint.as_deref(),
        )
        .map_err(|e| fail(e.message))?;
        let parts: Vec<&str> = key.split('/').filter(|p| !p.is_empty()).collect();
        let first_glob = parts.iter().position(|p| p.contains(['*', '?', '[', '{']));
        let (prefix, pattern) = match first_glob {
            Some(i) => {
                let pattern = files::glob(&parts[i..].join("/"))
                    .map_err(|e| fail(format!("{}: not a glob: {e}", source.path)))?;
                (parts[..i].join("/"), Some(pattern))
            }
            None => (parts.join("/"), None),
        };
        let single = first_glob.is_none() && !key.is_empty() && !key.ends_with('/');
        let root_uri = bucket.root();
        let location = if prefix.is_empty() || single {
            source.path.clone()
        } else {
            format!("{root_uri}/{prefix}/")
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(crate::run::engine::cores().max(2))
            .enable_all()
            .build()
            .map_err(|e| fail(format!("{root_uri}: {e}")))?;
        Ok(Remote {
            store,
            runtime: Some(runtime),
            source: name.to_string(),
            root: root_uri,
            location,
            prefix,
            pattern,
            single,
            bytes: Arc::new(AtomicU64::new(0)),
            footer_hint: FOOTER_HINT,
        })
    }

    /// A store's objects under `prefix`, as the source `source` reads them
    /// (`root` is how names are shown: `s3://lake`).
    #[cfg(test)]
    pub(super) fn over(
        store: Arc<dyn ObjectStore>,
        source: &str,
        root: &str,
        prefix: &str,
    ) -> Remote {
        Remote {
            store,
            runtime: Some(
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("a runtime"),
            ),
            source: source.to_string(),
            root: root.to_string(),
            location: format!("{root}/{prefix}/"),
            prefix: prefix.to_string(),
            pattern: None,
            single: false,
            bytes: Arc::new(AtomicU64::new(0)),
            // The footer's length and magic only.
            footer_hint: 8,
        }
    }

    /// Bytes fetched so far (listings aside).
    pub(super) fn bytes_read(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    fn access(&self, error: &object_store::Error) -> RunError {
        access(&self.source, &self.location, error)
    }

    /// Runs `future` on the store's runtime, from any thread (inside
    /// another runtime, on a scoped helper thread).
    pub(super) fn block_on<F: Future + Send>(&self, future: F) -> F::Output
    where
        F::Output: Send,
    {
        crate::deliver::storage::object::block_on(
            self.runtime.as_ref().expect("the runtime lives until drop"),
            future,
        )
    }

    /// The source's objects of `format` (a folder) or matching its glob,
    /// sorted by name, hidden ones skipped. None is an error naming the
    /// source.
    pub(super) fn list(&self, format: &str) -> Result<Vec<Object>, RunError> {
        let prefix = Path::from(self.prefix.as_str());
        let metas = self.block_on(async {
            if self.single {
                match self.store.head(&prefix).await {
                    Ok(meta) => return Ok(vec![meta]),
                    // Not an object: a folder written without its `/`.
                    Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(self.access(&e)),
                }
            }
            let mut listing = self.store.list(Some(&prefix));
            let mut metas = Vec::new();
            while let Some(next) = std::future::poll_fn(|cx| listing.as_mut().poll_next(cx)).await {
                metas.push(next.map_err(|e| self.access(&e))?);
            }
            Ok(metas)
        })?;
        let mut objects: Vec<Object> = metas
            .into_iter()
            .filter(|meta| {
                let name = meta.location.as_ref();
                let relative = name
                    .strip_prefix(self.prefix.as_str())
                    .unwrap_or(name)
                    .trim_start_matches('/');
                if relative.is_empty() {
                    // The object the path names.
                    return self.single;
                }
                let hidden = relative
                    .split('/')
                    .any(|part| part.starts_with('.') || part.starts_with('_'));
                !hidden
                    && match &self.pattern {
                        Some(pattern) => pattern.is_match(relative),
                        None => {
                            files::format_of(std::path::Path::new(relative)).as_deref()
                                == Some(format)
                        }
                    }
            })
            .map(|meta| Object {
                shown: format!("{}/{}", self.root, meta.location),
                meta,
            })
            .collect();
        objects.sort_by(|a, b| a.meta.location.cmp(&b.meta.location));
        if objects.is_empty() {
            return Err(RunError::Source {
                source: self.source.clone(),
                reason: format!("{}: no {format} objects", self.location),
            });
        }
        Ok(objects)
    }

    /// A whole object (CSV, JSONL).
    pub(super) fn fetch(&self, object: &Object) -> Result<Bytes, RunError> {
        let bytes = self.block_on(async {
            let got = self
                .store
                .get_opts(&object.meta.location, GetOptions::default())
                .await?;
            got.bytes().await
        });
        let bytes = bytes.map_err(|e| access(&self.source, &object.shown, &e))?;
        self.bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        Ok(bytes)
    }

    /// Parquet objects: each footer once, then the `needed` columns of the
    /// row groups with rows, several objects and runs of rows at once.
    /// Per object, in order: its decoded batches and the columns it carries.
    #[allow(clippy::type_complexity)]
    pub(super) fn read_parquet(
        &self,
        objects: &[&Object],
        schema: &SchemaPlan,
        needed: Option<&BTreeSet<String>>,
    ) -> Result<Vec<(Vec<Decoded>, Vec<String>)>, RunError> {
        let target = Arc::new(super::parquet::Target::of(schema));
        let readers: Vec<Counted> = objects
            .iter()
            .map(|o| Counted {
                store: self.store.clone(),
                path: o.meta.location.clone(),
                size: o.meta.size,
                bytes: self.bytes.clone(),
            })
            .collect();
        self.block_on(async {
            let permits = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
            // The footers.
            let mut tasks = tokio::task::JoinSet::new();
            for (i, reader) in readers.into_iter().enumerate() {
                let permits = permits.clone();
                tasks.spawn(async move {
                    let _permit = permits.acquire_owned().await;
                    let mut reader = reader;
                    let metadata =
                        ArrowReaderMetadata::load_async(&mut reader, Default::default()).await;
                    (i, reader, metadata)
                });
            }
            let mut layouts = Vec::new();
            while let Some(done) = tasks.join_next().await {
                let (i, reader, metadata) = done.map_err(|e| self.panicked(e))?;
                let metadata = metadata.map_err(|e| self.parquet_error(objects[i], e))?;
                layouts.push((i, reader, layout(metadata, needed)));
            }
            layouts.sort_by_key(|(i, _, _)| *i);
            // The rows, in runs.
            let mut runs = tokio::task::JoinSet::new();
            let mut out: Vec<(Vec<Vec<Decoded>>, Vec<String>)> = Vec::new();
            for (i, reader, layout) in layouts {
                out.push((
                    (0..layout.runs.len()).map(|_| Vec::new()).collect(),
                    layout.columns.clone(),
                ));
                for (r, run) in layout.runs.iter().cloned().enumerate() {
                    let permits = permits.clone();
                    let reader = reader.clone();
                    let metadata = layout.metadata.clone();
                    let mask = layout.mask.clone();
                    let selection = run.selection(&layout);
                    let target = target.clone();
                    let schema = schema.clone();
                    let shown = objects[i].shown.clone();
                    runs.spawn(async move {
                        let _permit = permits.acquire_owned().await;
                        let decoded = async {
                            let mut builder = ParquetRecordBatchStreamBuilder::new_with_metadata(
                                reader, metadata,
                            )
                            .with_projection(mask)
                            .with_row_groups(run.row_groups)
                            .with_batch_size(BATCH_ROWS);
                            if let Some(selection) = selection {
                                builder = builder.with_row_selection(selection);
                            }
                            let mut stream = builder.build()?;
                            let mut out = Vec::new();
                            let mut next_row = run.first_row;
                            while let Some(group) = stream.next_row_group().await? {
                                for batch in group {
                                    let batch = batch?;
                                    let decoded = typed(&batch, &target, &schema, next_row, &shown)
                                        .map_err(ParquetError::General)?;
                                    next_row += batch.num_rows();
                                    out.push(decoded);
                                }
                            }
                            Ok::<_, ParquetError>(out)
                        }
                        .await;
                        (i, r, decoded)
                    });
                }
            }
            while let Some(done) = runs.join_next().await {
                let (i, r, decoded) = done.map_err(|e| self.panicked(e))?;
                out[i].0[r] = decoded.map_err(|e| self.parquet_error(objects[i], e))?;
            }
            Ok(out
                .into_iter()
                .map(|(runs, columns)| (runs.into_iter().flatten().collect(), columns))
                .collect())
        })
    }

    /// Local copies of Parquet `objects` in `dir` (`0.parquet`, `1.parquet`,
    /// ... in order), for the streamed read (`super::streamed`). A copy is a
    /// file of the object's size holding only what a read projected on
    /// `needed` touches: the footer and, of every row group with rows, the
    /// column chunks of the `needed` columns, each at its offset. The rest
    /// is a hole: it takes no disk and nothing reads it, since every read of
    /// a streamed source is projected on `needed`. The footers are fetched
    /// first, then the row groups, several at once, each written as it
    /// comes: memory holds only the chunks in flight.
    pub(super) fn copy_parquet(
        &self,
        objects: &[Object],
        needed: &BTreeSet<String>,
        dir: &std::path::Path,
    ) -> Result<Vec<std::path::PathBuf>, RunError> {
        let copies: Vec<std::path::PathBuf> = (0..objects.len())
            .map(|i| dir.join(format!("{i}.parquet")))
            .collect();
        let copy_failed = |object: &Object, e: std::io::Error| RunError::Source {
            source: self.source.clone(),
            reason: format!("{}: copying it to {}: {e}", object.shown, dir.display()),
        };
        self.block_on(async {
            let permits = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
            let mut tasks = tokio::task::JoinSet::new();
            for (i, (object, copy)) in objects.iter().zip(&copies).enumerate() {
                let (permits, store, bytes) =
                    (permits.clone(), self.store.clone(), self.bytes.clone());
                let (path, size, copy) =
                    (object.meta.location.clone(), object.meta.size, copy.clone());
                let hint = self.footer_hint;
                tasks.spawn(async move {
                    let _permit = permits.acquire_owned().await;
                    let object = (&*store, &path, size);
                    (i, copy_footer(object, hint, &copy, &bytes).await)
                });
            }
            let mut row_groups = tokio::task::JoinSet::new();
            while let Some(done) = tasks.join_next().await {
                let (i, footer) = done.map_err(|e| self.panicked(e))?;
                let object = &objects[i];
                match footer {
                    Err(Copy::Store(e)) => return Err(access(&self.source, &object.shown, &e)),
                    Err(Copy::File(e)) => return Err(copy_failed(object, e)),
                    Ok(()) => {}
                }
                // A footer that does not parse is the whole read's error.
                let metadata =
                    super::parquet::footer(&copies[i], &object.shown).map_err(|reason| {
                        RunError::Source {
                            source: self.source.clone(),
                            reason,
                        }
                    })?;
                let layout = layout(metadata, Some(needed));
                for group in layout.row_groups() {
                    let meta = layout.metadata.metadata().row_group(group);
                    let ranges: Vec<Range<u64>> = (0..meta.num_columns())
                        .filter(|&c| layout.mask.leaf_included(c))
                        .map(|c| {
                            let (start, len) = meta.column(c).byte_range();
                            start..start.saturating_add(len)
                        })
                        .collect();
                    let (permits, store, bytes) =
                        (permits.clone(), self.store.clone(), self.bytes.clone());
                    let (path, copy) = (object.meta.location.clone(), copies[i].clone());
                    row_groups.spawn(async move {
                        let _permit = permits.acquire_owned().await;
                        let copied = async {
                            let got = store
                                .get_ranges(&path, &ranges)
                                .await
                                .map_err(Copy::Store)?;
                            let n: usize = got.iter().map(Bytes::len).sum();
                            bytes.fetch_add(n as u64, Ordering::Relaxed);
                            let pieces = ranges.iter().map(|r| r.start).zip(got);
                            write_at(&copy, pieces).map_err(Copy::File)
                        }
                        .await;
                        (i, copied)
                    });
                }
            }
            while let Some(done) = row_groups.join_next().await {
                let (i, copied) = done.map_err(|e| self.panicked(e))?;
                match copied {
                    Err(Copy::Store(e)) => return Err(access(&self.source, &objects[i].shown, &e)),
                    Err(Copy::File(e)) => return Err(copy_failed(&objects[i], e)),
                    Ok(()) => {}
                }
            }
            Ok(copies)
        })
    }

    fn panicked(&self, error: tokio::task::JoinError) -> RunError {
        match error.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(e) => RunError::Source {
                source: self.source.clone(),
                reason: format!("{}: {e}", self.location),
            },
        }
    }

    /// A Parquet read that failed: the store's error (R0011) when a fetch
    /// failed, else what is wrong with the file.
    fn parquet_error(&self, object: &Object, error: ParquetError) -> RunError {
        if let ParquetError::External(inner) = &error
            && let Some(store) = inner.downcast_ref::<object_store::Error>()
        {
            return access(&self.source, &object.shown, store);
        }
        RunError::Source {
            source: self.source.clone(),
            reason: format!("{}: {error}", object.shown),
        }
    }
}

/// R0011 for a failed request: the kind (unreachable, denied, not found)
/// and the store's words without URLs.
fn access(source: &str, location: &str, error: &object_store::Error) -> RunError {
    RunError::SourceAccess {
        source: source.to_string(),
        location: location.to_string(),
        kind: kind_of(error),
        reason: describe(error),
    }
}

/// Why a copy failed: a request (R0011), or the local file.
enum Copy {
    Store(object_store::Error),
    File(std::io::Error),
}

/// Bytes a footer's first GET fetches: the file's last 64 KiB, which
/// holds most footers whole.
const FOOTER_HINT: u64 = 64 * 1024;

/// Starts the copy of an object (of `size` bytes) at `copy`: the file, of
/// the object's size, and the object's tail (its footer and length) at
/// their offsets, the last `hint` bytes fetched first. A tail that is not
/// a Parquet footer is copied as it is, and reading the copy then says
/// what is wrong.
async fn copy_footer(
    (store, path, size): (&dyn ObjectStore, &Path, u64),
    hint: u64,
    copy: &std::path::Path,
    bytes: &AtomicU64,
) -> Result<(), Copy> {
    std::fs::File::create(copy)
        .and_then(|file| file.set_len(size))
        .map_err(Copy::File)?;
    if size == 0 {
        return Ok(());
    }
    let start = size.saturating_sub(hint.max(8));
    let tail = store
        .get_range(path, start..size)
        .await
        .map_err(Copy::Store)?;
    bytes.fetch_add(tail.len() as u64, Ordering::Relaxed);
    // `<footer><footer length: 4 bytes LE>PAR1` ends the file.
    let footer_start = match tail.len().checked_sub(8) {
        Some(at) if tail.ends_with(b"PAR1") => {
            let length = u32::from_le_bytes(tail[at..at + 4].try_into().expect("4 bytes"));
            size.checked_sub(8 + u64::from(length))
        }
        _ => None,
    };
    let mut pieces = vec![(start, tail)];
    if let Some(footer_start) = footer_start.filter(|&at| at < start) {
        let rest = store
            .get_range(path, footer_start..start)
            .await
            .map_err(Copy::Store)?;
        bytes.fetch_add(rest.len() as u64, Ordering::Relaxed);
        pieces.push((footer_start, rest));
    }
    write_at(copy, pieces).map_err(Copy::File)
}

/// Writes each `(offset, bytes)` into the file at `copy`.
fn write_at(
    copy: &std::path::Path,
    pieces: impl IntoIterator<Item = (u64, Bytes)>,
) -> Result<(), std::io::Error> {
    use std::io::{Seek, SeekFrom, Write};
    let mut file = std::fs::OpenOptions::new().write(true).open(copy)?;
    for (offset, bytes) in pieces {
        file.seek(SeekFrom::Start(offset))?;
        file.write_all(&bytes)?;
    }
    Ok(())
}

/// A Parquet object read through ranged GETs, counting the bytes fetched.
#[derive(Clone)]
struct Counted {
    store: Arc<dyn ObjectStore>,
    path: Path,
    size: u64,
    bytes: Arc<AtomicU64>,
}

type Fetch<'a, T> = Pin<Box<dyn Future<Output = Result<T, ParquetError>> + Send + 'a>>;

fn external(error: object_store::Error) -> ParquetError {
    ParquetError::External(Box::new(error))
}

impl AsyncFileReader for Counted {
    fn get_bytes(&mut self, range: Range<u64>) -> Fetch<'_, Bytes> {
        Box::pin(async move {
            let mut got = self
                .store
                .get_ranges(&self.path, std::slice::from_ref(&range))
                .await
                .map_err(external)?;
            let bytes = got.pop().unwrap_or_default();
            self.bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
            Ok(bytes)
        })
    }

    fn get_byte_ranges(&mut self, ranges: Vec<Range<u64>>) -> Fetch<'_, Vec<Bytes>> {
        Box::pin(async move {
            // object_store merges close ranges into one request.
            let got = self
                .store
                .get_ranges(&self.path, &ranges)
                .await
                .map_err(external)?;
            let n: usize = got.iter().map(Bytes::len).sum();
            self.bytes.fetch_add(n as u64, Ordering::Relaxed);
            Ok(got)
        })
    }

    fn get_metadata<'a>(
        &'a mut self,
        _options: Option<&'a ArrowReaderOptions>,
    ) -> Fetch<'a, Arc<ParquetMetaData>> {
        Box::pin(async move {
            let size = self.size;
            // One GET of the file's last 64 KiB holds most footers.
            let metadata = ParquetMetaDataReader::new()
                .with_prefetch_hint(Some(64 * 1024))
                .load_and_finish(self, size)
                .await?;
            Ok(Arc::new(metadata))
        })
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        // Dropping a runtime inside another one panics; let this one wind
        // down in the background there.
        if tokio::runtime::Handle::try_current().is_ok()
            && let Some(runtime) = self.runtime.take()
        {
            runtime.shutdown_background();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_name_their_bucket_and_key() {
        assert_eq!(
            split_uri("s3://lake/crm/*.parquet"),
            Ok(("s3", vec!["lake"], "crm/*.parquet"))
        );
        assert_eq!(
            split_uri("az://acct/box/events/"),
            Ok(("azure_blob", vec!["acct", "box"], "events/"))
        );
        assert_eq!(
            split_uri("azure://acct/box"),
            Ok(("azure_blob", vec!["acct", "box"], ""))
        );
        assert_eq!(split_uri("gs://b"), Ok(("gcs", vec!["b"], "")));
        assert!(split_uri("s3:///crm").is_err());
        assert!(split_uri("az://acct").is_err());
    }
}
