//! Reading sources: one `[source.*]` (a file, a folder or a glob of CSV,
//! JSONL or Parquet files, on local disk or in an object store) in, one
//! Arrow batch typed by its schema out, with a report of its bad rows (file
//! and line) and its freshness.
//!
//! Typing: every schema field becomes a nullable column of its type
//! (`string` Utf8, `int` Int64, `double` Float64, `bool` Boolean,
//! `timestamp` Timestamp(µs) holding UTC, `list<T>` List(T)). A field the files do
//! not carry is all null, and is recorded as absent so that unification
//! lets another source provide it. An empty CSV cell is null. In CSV a list
//! is a JSON array (`["a","b"]`) or `|`-separated values.
//!
//! Bad rows (wrong arity, a value of the wrong type, a value outside a
//! closed domain, a missing or duplicate key, a JSON key written twice) are
//! never dropped silently: each is counted, and the first ones are reported
//! as `file:line: reason`.
//!
//! What is wrong with a file rather than a row is a coded diagnostic in
//! [`Loaded::diagnostics`]: a quoted CSV field that swallows the lines after
//! it (its lines are counted as bad rows), a header that names a column
//! twice (the file is not read), a column no field declares, an empty file,
//! a symbolic link that points nowhere or loops. Folder and glob sources
//! follow symbolic links to files and folders.
//!
//! Parquet files are read by the columns the run needs (`columns`): the
//! row checks cover those, and the report names them. A source of Parquet
//! files is streamed when the run allows it ([`ReadContext::stream`]):
//! checked first, then read by the engine a batch at a time on every scan
//! (`streamed`), never held whole; objects are copied to local disk first,
//! by the columns the run needs. A text or PostgreSQL source in such a run
//! has its typed rows written to a local Parquet file a batch at a time
//! (`spill`), and is streamed from there; a source of both text and
//! Parquet files has its text rows typed into such a file first, and its
//! Parquet files streamed after them ([`read_mixed`]).
//!
//! One concern per file: `typing` types values into Arrow columns and
//! accounts for bad rows; `csv`, `jsonl` and `parquet` decode their
//! format; `keys` finds keys repeated among Parquet rows; `columns` says
//! which columns the plan reads; `object` lists and fetches the objects of
//! an `s3://`, `az://` or `gs://` source; `remember` reads an append-only
//! source incrementally (cached rows plus new files); `in_spark` has Spark
//! read a Parquet source itself (`--engine spark`); `marketo` reads lead activities
//! from Marketo's API (a source with `marketo = ...`); `streamed` checks
//! Parquet files (local, or copies of objects) and streams them into the
//! engine; `spill` writes typed rows (text files, PostgreSQL) to a file
//! streamed the same way. This file drives them: it
//! resolves the source's files (local files or objects), reads each by its
//! format through one path, and judges the source's freshness.

mod columns;
mod csv;
mod freshness;
#[cfg(feature = "spark")]
pub mod in_spark;
mod jsonl;
mod keys;
pub mod marketo;
mod object;
mod parquet;
mod postgres;
mod remember;
mod spill;
mod streamed;
mod typing;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use datafusion::arrow::array::Array;
use datafusion::arrow::record_batch::RecordBatch;

use self::csv::read_csv;
pub use self::freshness::freshness;
use self::freshness::{Modified, judge};
use self::jsonl::read_jsonl;
use self::object::{Object, Remote};
use self::parquet::{check_parquet_rows, read_parquet};
use self::spill::{Rows, Spill};
use self::streamed::Origin;
use self::typing::Builder;
pub use self::typing::{arrow_schema, arrow_type};
use super::error::RunError;
use super::files;
use super::report::{RunDiagnostic, SourceReport};
use crate::plan::{Plan, SchemaPlan, SourcePlan};
use crate::time::Micros;

/// How many bad rows a source report lists (all are counted).
const BAD_ROW_SAMPLES: usize = 10;

/// A source read and typed.
pub struct Loaded {
    pub name: String,
    pub schema: String,
    pub precedence: i64,
    /// Schema fields the files carry, in schema order.
    pub present: Vec<String>,
    /// Every schema field, in schema (sorted) order; one batch per file
    /// (Parquet: per row group), not concatenated: the engine scans them
    /// as they are. Empty when the rows are streamed.
    pub batches: Vec<RecordBatch>,
    /// The rows as streams the engine reads a batch at a time, on every
    /// scan (Parquet files, `streamed`): `batches` is then empty.
    pub streams: Vec<std::sync::Arc<dyn crate::run::engine::Scan>>,
    pub report: SourceReport,
    /// Problems with the source's files (not single rows), in file order.
    pub diagnostics: Vec<RunDiagnostic>,
    /// The engine's table that holds the rows, when the engine read the
    /// files itself (Spark reading Parquet): `batches` is then empty.
    pub table: Option<String>,
    /// The file that holds exactly the rows this read typed or checked
    /// (not an append-only source's cached rows): where the cache's next
    /// segment is copied from, in a streamed read.
    pub(super) spilled: Option<Spilled>,
}

impl Loaded {
    /// Every row, a batch at a time, in order: the batches held, then the
    /// streams read here as the engine would scan them (a streamed file
    /// decoded again). For what reads a source besides the engine: linking
    /// Marketo activities to people by email. A source Spark read into its
    /// own table has no rows here.
    pub fn each_batch(
        &self,
        mut f: impl FnMut(&RecordBatch) -> Result<(), String>,
    ) -> Result<(), String> {
        use futures_util::StreamExt as _;
        for batch in &self.batches {
            f(batch)?;
        }
        if self.streams.is_empty() {
            return Ok(());
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .map_err(|e| format!("source `{}`: {e}", self.name))?;
        let context = std::sync::Arc::new(datafusion::execution::TaskContext::default());
        for stream in &self.streams {
            let mut batches = stream.execute(context.clone());
            while let Some(batch) = runtime.block_on(batches.next()) {
                f(&batch.map_err(|e| format!("source `{}`: {e}", self.name))?)?;
            }
        }
        Ok(())
    }
}

/// A read's own rows in one local file.
pub(super) struct Spilled {
    pub(super) path: PathBuf,
    pub(super) rows: u64,
    /// The file's folder, kept while the file is needed.
    pub(super) _folder: Option<std::sync::Arc<tempfile::TempDir>>,
}

impl Loaded {
    /// A source read, its rows not given yet (no batches, streams or
    /// table): `present` is its fields the files carry.
    fn of(
        name: &str,
        source: &SourcePlan,
        present: Vec<String>,
        report: SourceReport,
        diagnostics: Vec<RunDiagnostic>,
    ) -> Loaded {
        Loaded {
            name: name.to_string(),
            schema: source.schema.clone(),
            precedence: source.precedence,
            present,
            batches: Vec::new(),
            streams: Vec::new(),
            report,
            diagnostics,
            table: None,
            spilled: None,
        }
    }
}

/// What reading a source may need besides its own plan.
pub struct ReadContext<'a> {
    /// The project folder: local paths and `file:` references are relative
    /// to it.
    pub root: &'a Path,
    /// The whole plan: a Marketo source reuses a destination's connection.
    pub plan: &'a Plan,
    /// The evaluation time, for the freshness check.
    pub now: Micros,
    /// The run's store (lead ids of upserts, what append-only sources
    /// read); `None` when only evaluating (`explain`, tests).
    pub store: Option<&'a crate::store::Store>,
    /// Whether what is read may be recorded in the store: not in a preview.
    pub remember: bool,
    /// The run's API throttles, one per destination instance: a Marketo
    /// source reads within the limits its destination's deliveries share.
    pub throttles: &'a crate::run::api::Throttles,
    /// Whether sources may be streamed (`Loaded::streams`): Parquet files
    /// (local or objects), and text and PostgreSQL sources through a spill
    /// file. Both engines take streams (the embedded one scans them, Spark
    /// is sent them a piece at a time); linking Marketo activities to
    /// people by email reads the people's rows a batch at a time
    /// ([`Loaded::each_batch`]).
    pub stream: bool,
}

/// Reads one source from where its plan says: local files, an object
/// store, PostgreSQL or Marketo. Errors name the source.
pub fn read(
    cx: &ReadContext<'_>,
    name: &str,
    source: &SourcePlan,
    schema: &SchemaPlan,
) -> Result<Loaded, RunError> {
    if let Some(pg) = &source.postgres {
        return postgres::read(cx, name, source, pg, schema);
    }
    if let Some(marketo) = &source.marketo {
        return marketo::read(cx, name, source, marketo, schema);
    }
    // Incremental reading covers local files; an append-only object-store
    // source is read in full (`docs/run.md`, "Append-only sources").
    if source.append_only && source.object_store().is_none() {
        return remember::read_append_only(cx, name, source, schema);
    }
    let needed = columns::needed(cx.plan, &source.schema, schema, source);
    if source.object_store().is_some() {
        let remote = Remote::open(cx.root, name, source)?;
        let objects = remote.list(source.format.as_str())?;
        let parquet = objects
            .iter()
            .all(|o| is_parquet(Path::new(&o.shown), source.format.as_str()));
        if let Some(folder) = (cx.stream && parquet)
            .then(|| run_folder(cx.root, name))
            .flatten()
        {
            let plans = (source, schema);
            return read_copies((cx.now, folder), name, plans, &needed, &remote, objects);
        }
        // Text objects are typed and checked as they are read, then spilled.
        let text = !objects
            .iter()
            .any(|o| is_parquet(Path::new(&o.shown), source.format.as_str()));
        let spill = (cx.stream && text).then_some(cx.root);
        let inputs = objects.into_iter().map(Input::Object).collect();
        if let Some(folder) = (cx.stream && !text)
            .then(|| run_folder(cx.root, name))
            .flatten()
        {
            let inputs = (inputs, Some(&remote), Vec::new());
            let at = (cx.root, cx.now);
            let plans = (source, schema);
            return read_mixed(at, name, plans, &needed, inputs, folder, Earlier::default());
        }
        return decode(
            name,
            source,
            schema,
            cx.now,
            Some(&needed),
            Inputs {
                inputs,
                remote: Some(&remote),
                problems: Vec::new(),
                spill,
            },
            Earlier::default(),
        );
    }
    let failed = |reason: String| RunError::Source {
        source: name.to_string(),
        reason,
    };
    let (files, problems) =
        files::resolve(cx.root, name, &source.path, source.format.as_str()).map_err(failed)?;
    if cx.stream && files.iter().all(|f| is_parquet(f, source.format.as_str())) {
        let files = files
            .into_iter()
            .map(|file| {
                let shown = shown_path(cx.root, &file);
                (file, shown)
            })
            .collect();
        return streamed::read_streamed(
            name,
            (source, schema),
            cx.now,
            &needed,
            (files, Origin::Local),
            problems,
            Earlier::default(),
        );
    }
    // Text files are typed and checked as they are read, then spilled.
    let text = !files.iter().any(|f| is_parquet(f, source.format.as_str()));
    let spill = (cx.stream && text).then_some(cx.root);
    let inputs = files
        .into_iter()
        .map(|file| Input::Local {
            shown: shown_path(cx.root, &file),
            file,
        })
        .collect();
    if let Some(folder) = (cx.stream && !text)
        .then(|| run_folder(cx.root, name))
        .flatten()
    {
        let inputs = (inputs, None, problems);
        let at = (cx.root, cx.now);
        let plans = (source, schema);
        return read_mixed(at, name, plans, &needed, inputs, folder, Earlier::default());
    }
    decode(
        name,
        source,
        schema,
        cx.now,
        Some(&needed),
        Inputs {
            inputs,
            remote: None,
            problems,
            spill,
        },
        Earlier::default(),
    )
}

/// A new folder for the run's files of a source (copies of objects, spilled
/// rows) under `.accord/tmp/` (`io::scratch_folder`), removed when the last
/// holder lets go. `None` when it cannot be made (a read-only project, a
/// symbolic link at `.accord/tmp`): the source is then read whole, as
/// before streaming.
fn run_folder(root: &Path, name: &str) -> Option<std::sync::Arc<tempfile::TempDir>> {
    crate::run::io::scratch_folder(root, name, &format!("source `{name}`"))
        .ok()
        .map(std::sync::Arc::new)
}

/// Streams an object-store source of Parquet objects: the objects are
/// copied, by the columns the run reads, into a folder under
/// `.accord/tmp/` (removed once the run lets go of the source), and the
/// copies are streamed like local files.
fn read_copies(
    (now, folder): (Micros, std::sync::Arc<tempfile::TempDir>),
    name: &str,
    (source, schema): (&SourcePlan, &SchemaPlan),
    needed: &BTreeSet<String>,
    remote: &Remote,
    objects: Vec<Object>,
) -> Result<Loaded, RunError> {
    let (files, origin) = copies_of(remote, objects, needed, folder)?;
    streamed::read_streamed(
        name,
        (source, schema),
        now,
        needed,
        (files, origin),
        Vec::new(),
        Earlier::default(),
    )
}

/// Parquet `objects` copied into `folder` by the `needed` columns: the
/// copies as a streamed read takes them (`(path, shown)`), and where they
/// came from (the folder kept while they are read).
fn copies_of(
    remote: &Remote,
    objects: Vec<Object>,
    needed: &BTreeSet<String>,
    folder: std::sync::Arc<tempfile::TempDir>,
) -> Result<(Vec<(PathBuf, String)>, Origin), RunError> {
    let copies = remote.copy_parquet(&objects, needed, folder.path())?;
    let files = copies
        .into_iter()
        .zip(&objects)
        .map(|(copy, object)| (copy, object.shown.clone()))
        .collect();
    let origin = Origin::Copies {
        bytes_read: remote.bytes_read(),
        objects: objects.into_iter().map(Input::Object).collect(),
        folder,
    };
    Ok((files, origin))
}

/// Streams a source of both text and Parquet files. The text files are
/// typed and checked first, as a text source's are, into one file in
/// `folder`; then the Parquet files are checked and streamed after those
/// rows, as an append-only source's new files are after its cache. So a
/// key is kept where it is first read (text files are read first, as in a
/// whole read), and freshness is judged once, over every row. An object
/// store's Parquet objects are copied into the same folder, by the columns
/// the run reads. `inputs`: the files (or objects) in path order, the
/// store, and the problems found locating them.
///
/// `cache`: an append-only source's cached rows, when these are the new
/// files of one read (else `Earlier::default()`): they come first (the
/// text rows checked against their keys, then the Parquet rows), and with
/// `cache.folder` the new rows, text and Parquet, are written there as
/// one file for the cache's next segment (`Loaded::spilled`).
fn read_mixed(
    (root, now): (&Path, Micros),
    name: &str,
    (source, schema): (&SourcePlan, &SchemaPlan),
    needed: &BTreeSet<String>,
    (inputs, remote, problems): (Vec<Input>, Option<&Remote>, Vec<RunDiagnostic>),
    folder: std::sync::Arc<tempfile::TempDir>,
    cache: Earlier,
) -> Result<Loaded, RunError> {
    let failed = |reason: String| RunError::Source {
        source: name.to_string(),
        reason,
    };
    let (parquet, text): (Vec<Input>, Vec<Input>) = inputs
        .into_iter()
        .partition(|i| is_parquet(Path::new(i.shown()), source.format.as_str()));
    let text_modified = modified(source, &text);
    let inputs = Inputs {
        inputs: text,
        remote,
        problems,
        spill: Some(root),
    };
    let earlier = Earlier {
        files: cache.files,
        segments: cache.segments.clone(),
        present: cache.present,
        bad_rows: cache.bad_rows,
        samples: cache.samples,
        folder: Some(folder.clone()),
        parquet_after: true,
        ..Earlier::default()
    };
    let typed = decode(name, source, schema, now, Some(needed), inputs, earlier)?;
    let spilled = typed
        .spilled
        .as_ref()
        .ok_or_else(|| failed("the text files' rows were not written to a file".into()))?;
    let shown = shown_path(root, &spilled.path);
    let segment = remember::CachedSegment {
        path: spilled.path.clone(),
        footer: parquet::footer(&spilled.path, &shown).map_err(failed)?,
    };
    let mut segments = cache.segments;
    segments.push(segment);
    let earlier = Earlier {
        files: typed.report.files,
        segments,
        folder: cache.folder,
        present: typed.present,
        bad_rows: typed.report.bad_rows,
        samples: typed.report.bad_row_samples,
        typed_text: Some(TypedText {
            modified: text_modified,
            folder: folder.clone(),
        }),
        ..Earlier::default()
    };
    let (files, origin) = match remote {
        None => {
            let files = parquet
                .into_iter()
                .filter_map(|i| match i {
                    Input::Local { file, shown } => Some((file, shown)),
                    Input::Object(_) => None,
                })
                .collect();
            (files, Origin::Local)
        }
        Some(remote) => {
            let objects: Vec<Object> = parquet
                .into_iter()
                .filter_map(|i| match i {
                    Input::Object(o) => Some(o),
                    Input::Local { .. } => None,
                })
                .collect();
            copies_of(remote, objects, needed, folder)?
        }
    };
    streamed::read_streamed(
        name,
        (source, schema),
        now,
        needed,
        (files, origin),
        typed.diagnostics,
        earlier,
    )
}

/// Reads a local source (a file, a folder or a glob under the project),
/// every column of it: what the format modules' tests read through.
#[cfg(test)]
fn read_files(
    root: &Path,
    name: &str,
    source: &SourcePlan,
    schema: &SchemaPlan,
    now: Micros,
) -> Result<Loaded, String> {
    let (inputs, problems) = tests::local_inputs(root, &source.path, source.format.as_str());
    let inputs = Inputs {
        inputs,
        remote: None,
        problems,
        spill: None,
    };
    decode(name, source, schema, now, None, inputs, Earlier::default()).map_err(|e| e.to_string())
}

/// What a read starts from: the rows of an append-only source that earlier
/// runs read and checked (its cache), the text rows of a source that mixes
/// text and Parquet files ([`read_mixed`]), or nothing.
#[derive(Default)]
pub(super) struct Earlier {
    /// The files those rows came from, as shown.
    pub(super) files: Vec<String>,
    /// The rows, held (a read that is not streamed)...
    pub(super) batches: Vec<RecordBatch>,
    /// ...or the cache's segment files, streamed with the new rows.
    pub(in crate::run::sources) segments: Vec<remember::CachedSegment>,
    /// Where the new rows are written as one file, however few (the cache
    /// takes it as its next segment): in a read that streams.
    pub(super) folder: Option<std::sync::Arc<tempfile::TempDir>>,
    pub(super) present: Vec<String>,
    pub(super) bad_rows: u64,
    pub(super) samples: Vec<String>,
    /// The last segment holds a mixed source's text rows, typed by this
    /// read: the newest modification time of their files (for freshness,
    /// in place of the segment's own), and the folder the segment is in,
    /// kept while the engine streams it.
    pub(in crate::run::sources) typed_text: Option<TypedText>,
    /// Parquet files are streamed after these rows ([`read_mixed`]): that
    /// read judges freshness over every row, so this one does not.
    pub(super) parquet_after: bool,
}

/// A mixed source's text files once typed into a file ([`Earlier`]).
pub(in crate::run::sources) struct TypedText {
    pub(in crate::run::sources) modified: Option<Modified>,
    pub(in crate::run::sources) folder: std::sync::Arc<tempfile::TempDir>,
}

/// The text files first, then the Parquet files, each in path order: the
/// order rows are read in (and so which of two rows with one key stays).
pub(super) fn read_order(files: &[PathBuf], format: &str) -> Vec<usize> {
    let mut order: Vec<usize> = (0..files.len())
        .filter(|&i| !is_parquet(&files[i], format))
        .collect();
    order.extend((0..files.len()).filter(|&i| is_parquet(&files[i], format)));
    order
}

/// Whether a source's file is read as Parquet: by its name, else by the
/// source's `format`.
pub(super) fn is_parquet(file: &Path, format: &str) -> bool {
    files::format_of(file).unwrap_or_else(|| format.to_string()) == "parquet"
}

/// Reads the local `files` after the rows of `earlier`, every column (the
/// cache must hold whatever a later plan reads): keys must be unique across
/// both, and the result holds both (earlier rows first). `spill`: the
/// project, where text rows are typed into a file (`Earlier::folder`).
#[allow(clippy::too_many_arguments)]
pub(super) fn read_these(
    root: &Path,
    name: &str,
    source: &SourcePlan,
    schema: &SchemaPlan,
    now: Micros,
    (files, spill): (&[PathBuf], Option<&Path>),
    problems: Vec<RunDiagnostic>,
    earlier: Earlier,
) -> Result<Loaded, RunError> {
    let inputs = read_order(files, source.format.as_str())
        .into_iter()
        .map(|i| Input::Local {
            shown: shown_path(root, &files[i]),
            file: files[i].clone(),
        })
        .collect();
    let inputs = Inputs {
        inputs,
        remote: None,
        problems,
        spill,
    };
    decode(name, source, schema, now, None, inputs, earlier)
}

/// A file of a source: on local disk, or an object in a store.
enum Input {
    Local { file: PathBuf, shown: String },
    Object(Object),
}

impl Input {
    /// The name reports show: relative to the project, or the object's URI.
    fn shown(&self) -> &str {
        match self {
            Input::Local { shown, .. } => shown,
            Input::Object(o) => &o.shown,
        }
    }
}

/// The files of a source, the store they are in (object stores), and the
/// problems found locating them (broken links).
struct Inputs<'a> {
    inputs: Vec<Input>,
    remote: Option<&'a Remote>,
    problems: Vec<RunDiagnostic>,
    /// The project whose `.accord/tmp/` typed rows spill to (text files
    /// only, in a run that streams): the source is then streamed from
    /// there once it fills a batch (`spill`).
    spill: Option<&'a Path>,
}

fn shown_path(root: &Path, file: &Path) -> String {
    file.strip_prefix(root)
        .unwrap_or(file)
        .to_string_lossy()
        .replace('\\', "/")
}

/// Decodes a source's files by their format, checks their rows, and
/// judges the source's freshness. `needed`: the columns of Parquet files
/// to read (`None`: all). `now` is for the freshness check.
fn decode(
    name: &str,
    source: &SourcePlan,
    schema: &SchemaPlan,
    now: Micros,
    needed: Option<&BTreeSet<String>>,
    inputs: Inputs<'_>,
    mut earlier: Earlier,
) -> Result<Loaded, RunError> {
    let failed = |reason: String| RunError::Source {
        source: name.to_string(),
        reason,
    };
    let Inputs {
        inputs,
        remote,
        problems,
        spill,
    } = inputs;
    let mut b = Builder::new(&source.schema, schema);
    // An append-only source's new rows, written to one file for its cache
    // (or a mixed source's text rows, for its Parquet files' read).
    let for_cache = earlier.folder.is_some();
    let parquet_after = earlier.parquet_after;
    if let Some(root) = spill {
        let spill = Spill::new((root, name), (source, schema), now);
        b.spill = Some(match earlier.folder.take() {
            Some(folder) => spill.in_folder(folder),
            None => spill,
        });
    }
    b.source = name.to_string();
    b.diagnostics = problems;
    b.report.files = earlier.files;
    b.report.bad_rows = earlier.bad_rows;
    b.report.bad_row_samples = earlier.samples;
    let mut present: Vec<bool> = b
        .names()
        .iter()
        .map(|n| earlier.present.contains(n))
        .collect();
    let format_of = |input: &Input| {
        files::format_of(Path::new(input.shown())).unwrap_or_else(|| source.format.to_string())
    };
    // Parquet objects are fetched all at once (objects and row groups in
    // parallel), before the loop takes them in order.
    let mut remote_parquet = match remote {
        Some(remote) => {
            let objects: Vec<&Object> = inputs
                .iter()
                .filter(|i| format_of(i) == "parquet")
                .filter_map(|i| match i {
                    Input::Object(o) => Some(o),
                    Input::Local { .. } => None,
                })
                .collect();
            remote.read_parquet(&objects, schema, needed)?
        }
        None => Vec::new(),
    }
    .into_iter();
    // Text rows check their keys in the builder's set: it starts with the
    // earlier rows' keys when there are text files to read.
    let text_inputs = inputs.iter().any(|i| format_of(i) != "parquet");
    if text_inputs && let Some(k) = b.key() {
        for batch in &earlier.batches {
            let col = batch.column(k);
            for i in 0..col.len() {
                if col.is_valid(i) {
                    b.keys.insert(&typing::key_text(col, i));
                }
            }
        }
    }
    // The cached segments of a streamed read are read here for their keys
    // (when text rows are to be checked against them) and their freshness,
    // a batch at a time; the engine streams their rows later.
    let cached = if earlier.segments.is_empty() {
        None
    } else {
        Some(
            remember::scan_cached(
                &earlier.segments,
                (source, schema),
                now,
                text_inputs,
                &mut b,
            )
            .map_err(failed)?,
        )
    };
    let mut parquet_files = Vec::new();
    let mut text_files = false;
    for input in &inputs {
        let shown = input.shown().to_string();
        b.report.files.push(shown.clone());
        let format = format_of(input);
        if format == "parquet" {
            let (decoded, columns) = match input {
                Input::Local { file, .. } => {
                    read_parquet(file, &shown, schema, needed).map_err(failed)?
                }
                Input::Object(_) => remote_parquet
                    .next()
                    .ok_or_else(|| failed(format!("{shown}: not read")))?,
            };
            for (i, field) in b.names().iter().enumerate() {
                present[i] |= columns.iter().any(|c| c == *field);
            }
            for column in columns.iter().filter(|c| !schema.fields.contains_key(*c)) {
                b.unknown_column(&shown, &shown, "column", column);
            }
            if decoded.iter().all(|d| d.batch.num_rows() == 0) {
                b.empty_file(&shown, "holds no rows");
            }
            parquet_files.push((shown, decoded));
            continue;
        }
        text_files = true;
        let reader: Box<dyn std::io::Read> = match input {
            Input::Local { file, .. } => Box::new(open(file).map_err(failed)?),
            Input::Object(object) => {
                let remote = remote.ok_or_else(|| failed(format!("{shown}: no store")))?;
                Box::new(std::io::Cursor::new(remote.fetch(object)?))
            }
        };
        if format == "csv" {
            read_csv(reader, &shown, &mut b, &mut present).map_err(failed)?;
        } else {
            read_jsonl(reader, &shown, &mut b, &mut present).map_err(failed)?;
        }
    }
    // After the text files, so a key they hold and a Parquet row repeats is
    // reported on the Parquet row.
    let parquet = !parquet_files.is_empty();
    let parquet_batches = if parquet {
        check_parquet_rows(&mut b, parquet_files, &earlier.batches).map_err(failed)?
    } else {
        Vec::new()
    };
    if let Some(e) = b.spill_failed.take() {
        return Err(failed(e));
    }
    let spill = b.spill.take();
    let (columns, mut report, mut diagnostics) = b.finish();
    if let Some(spill) = spill {
        let (rows, mut found) = spill.finish(columns).map_err(failed)?;
        let present = present_fields(schema, &present);
        let spilled = match &rows {
            Rows::File(file) if for_cache => Some(Spilled {
                path: file.path.clone(),
                rows: report.rows,
                _folder: file._folder.clone(),
            }),
            _ => None,
        };
        let rows = match (cached, rows) {
            (None, rows) => rows.into_tables(),
            (Some(cached), Rows::File(file)) => {
                report.rows += cached.rows;
                let mut newest = cached.newest;
                newest.merge(found);
                found = newest;
                let target = file.target.clone();
                let mut files =
                    remember::cached_files(name, &earlier.segments, schema).map_err(failed)?;
                files.push(*file);
                (Vec::new(), streamed::streams(files, &target))
            }
            (Some(_), Rows::Held(_)) => {
                return Err(failed(
                    "the new rows of an append-only source were not written to a file".into(),
                ));
            }
        };
        let mut loaded = Loaded::of(name, source, present, report, diagnostics);
        (loaded.batches, loaded.streams) = rows;
        loaded.spilled = spilled;
        if let Some(remote) = remote {
            // Every field of a text file is typed, so checked.
            loaded.report.columns_checked = schema.fields.keys().cloned().collect();
            loaded.report.bytes_read = Some(remote.bytes_read());
        }
        if !parquet_after {
            freshness::judge_found(
                &mut loaded.report,
                &mut loaded.diagnostics,
                name,
                (source, schema),
                found,
                modified(source, &inputs),
                now,
            );
        }
        return Ok(loaded);
    }
    let arrow = arrow_schema(schema);
    let mut batches = Vec::new();
    for batch in earlier.batches {
        report.rows += batch.num_rows() as u64;
        batches.push(batch);
    }
    if columns.first().map(|c| c.len()).unwrap_or(0) > 0
        || (parquet_batches.is_empty() && batches.is_empty())
    {
        batches
            .push(RecordBatch::try_new(arrow.clone(), columns).map_err(|e| failed(e.to_string()))?);
    }
    for batch in parquet_batches {
        report.rows += batch.num_rows() as u64;
        batches.push(batch);
    }
    // Which columns the row checks covered: every field of text files, the
    // columns read of Parquet ones. Shown for object stores, and where
    // Parquet columns were left out.
    let checked: Vec<String> = schema
        .fields
        .keys()
        .filter(|f| text_files || !parquet || needed.is_none_or(|n| n.contains(*f)))
        .cloned()
        .collect();
    if remote.is_some() || checked.len() < schema.fields.len() {
        report.columns_checked = checked;
    }
    if let Some(remote) = remote {
        report.bytes_read = Some(remote.bytes_read());
    }
    judge(
        &mut report,
        &mut diagnostics,
        name,
        (source, schema),
        &batches,
        modified(source, &inputs),
        now,
    );
    let present = present_fields(schema, &present);
    Ok(Loaded {
        batches,
        ..Loaded::of(name, source, present, report, diagnostics)
    })
}

/// The schema fields among `needed`, in schema order: the columns a
/// Parquet source's checks covered, which its report names when some
/// fields were left out.
pub(super) fn columns_read(schema: &SchemaPlan, needed: &BTreeSet<String>) -> Vec<String> {
    schema
        .fields
        .keys()
        .filter(|f| needed.contains(*f))
        .cloned()
        .collect()
}

/// The fields `present` flags (one flag per field, in schema order): the
/// fields a source's data carried.
pub(super) fn present_fields(schema: &SchemaPlan, present: &[bool]) -> Vec<String> {
    schema
        .fields
        .keys()
        .zip(present)
        .filter(|(_, p)| **p)
        .map(|(n, _)| n.clone())
        .collect()
}

/// The newest modification time of a source's inputs, for freshness when
/// no row carries a time: objects always (the store lists it), local files
/// only for a source with `max_age` (see `freshness`).
fn modified(source: &SourcePlan, inputs: &[Input]) -> Option<Modified> {
    let objects = inputs
        .iter()
        .filter_map(|i| match i {
            Input::Object(o) => Some(o.meta.last_modified.timestamp_micros()),
            Input::Local { .. } => None,
        })
        .max();
    if let Some(at) = objects {
        return Some(Modified {
            at,
            basis: "object modification time",
        });
    }
    source.max_age.as_ref()?;
    inputs
        .iter()
        .filter_map(|i| match i {
            Input::Local { file, .. } => std::fs::metadata(file).and_then(|m| m.modified()).ok(),
            Input::Object(_) => None,
        })
        .filter_map(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_micros() as Micros)
        .max()
        .map(|at| Modified {
            at,
            basis: "file modification time",
        })
}

fn open(file: &Path) -> Result<std::fs::File, String> {
    std::fs::File::open(file).map_err(|e| format!("{}: {e}", file.display()))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::plan::FieldPlan;

    // The schemas, sources and scratch folders below are `pub(super)`: the
    // format modules' tests read through `read` with them too.

    pub(super) fn field(ty: &str, values: Option<Vec<String>>) -> FieldPlan {
        FieldPlan {
            ty: ty.into(),
            values,
            identity: None,
            labels: vec![],
        }
    }

    /// A schema keyed by `id`.
    pub(super) fn schema_of(
        class: &str,
        timestamp: Option<&str>,
        fields: Vec<(&str, FieldPlan)>,
    ) -> SchemaPlan {
        SchemaPlan {
            class: crate::plan::SchemaClass::parse(class).expect("a schema class"),
            key: Some("id".into()),
            timestamp: timestamp.map(String::from),
            fields: fields
                .into_iter()
                .map(|(n, f)| (n.to_string(), f))
                .collect(),
            links: BTreeMap::new(),
            fingerprint: String::new(),
        }
    }

    /// A schema keyed by `id` with an int `n` and a `tier` of gold or
    /// silver, then `more` fields: the Parquet checks' tests read it.
    pub(super) fn tiered(more: Vec<(&str, FieldPlan)>) -> SchemaPlan {
        let mut fields = vec![
            ("id", field("string", None)),
            ("n", field("int", None)),
            (
                "tier",
                field("string", Some(vec!["gold".into(), "silver".into()])),
            ),
        ];
        fields.extend(more);
        schema_of("account", None, fields)
    }

    /// The source of `t.parquet` in the project folder.
    pub(super) fn parquet_source(max_age: Option<&str>) -> SourcePlan {
        SourcePlan {
            max_age: max_age.map(String::from),
            precedence: 0,
            ..SourcePlan::files("t", "t.parquet", crate::plan::SourceFormat::Parquet)
        }
    }

    /// A folder for one test, removed when dropped.
    pub(super) struct Scratch(pub(super) std::path::PathBuf);

    impl Scratch {
        pub(super) fn new(name: &str) -> Scratch {
            let dir =
                std::env::temp_dir().join(format!("accord-sources-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("mkdir");
            Scratch(dir)
        }

        pub(super) fn write(&self, path: &str, text: &str) {
            let path = self.0.join(path);
            std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
            std::fs::write(path, text).expect("write");
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// The files of `path` under `root` in path order, as a read takes
    /// them, and the problems found locating them.
    pub(super) fn local_inputs(
        root: &Path,
        path: &str,
        format: &str,
    ) -> (Vec<Input>, Vec<RunDiagnostic>) {
        let (files, problems) =
            crate::run::files::resolve(root, "t", path, format).expect("resolves");
        let inputs = files
            .into_iter()
            .map(|file| Input::Local {
                shown: shown_path(root, &file),
                file,
            })
            .collect();
        (inputs, problems)
    }

    /// A source of `path` (a file, folder or glob) of `format`.
    pub(super) fn text_source(path: &str, format: &str) -> SourcePlan {
        SourcePlan {
            path: path.into(),
            format: crate::plan::SourceFormat::parse(format).expect("a source format"),
            ..parquet_source(None)
        }
    }

    /// The account schema of the text tests: `id`, `name`, `employees`.
    pub(super) fn accounts() -> SchemaPlan {
        schema_of(
            "account",
            None,
            vec![
                ("id", field("string", None)),
                ("name", field("string", None)),
                ("employees", field("int", None)),
            ],
        )
    }

    /// The first column of every batch, as text, in order (the held rows).
    pub(super) fn first_column(loaded: &Loaded) -> Vec<String> {
        use datafusion::arrow::array::{Array, AsArray};
        loaded
            .batches
            .iter()
            .flat_map(|b| {
                let ids = b.column(0).as_string::<i32>().clone();
                (0..ids.len()).map(move |i| ids.value(i).to_string())
            })
            .collect()
    }

    pub(super) fn codes_of(loaded: &Loaded) -> Vec<(&str, Option<&str>)> {
        loaded
            .diagnostics
            .iter()
            .map(|d| (d.code.as_str(), d.location.as_deref()))
            .collect()
    }

    /// Links to files and folders are followed; one that points nowhere
    /// (R0002) or back to a folder that holds it (R0003) is named.
    #[test]
    fn folder_sources_follow_links_and_name_the_broken_ones() {
        let dir = Scratch::new("links");
        let header = "id,name,employees\n";
        dir.write("data/a.csv", &format!("{header}a1,Acme,5\n"));
        dir.write("elsewhere/b.csv", &format!("{header}a2,Globex,7\n"));
        dir.write("elsewhere/more/c.csv", &format!("{header}a3,Initech,9\n"));
        std::os::unix::fs::symlink("../elsewhere/b.csv", dir.0.join("data/b.csv")).expect("link");
        std::os::unix::fs::symlink("../elsewhere/more", dir.0.join("data/more")).expect("link");
        let source = text_source("data", "csv");
        let loaded = read_files(&dir.0, "t", &source, &accounts(), 0).expect("reads");
        assert_eq!(loaded.report.rows, 3, "{:?}", loaded.report.files);
        assert!(loaded.diagnostics.is_empty(), "{:?}", loaded.diagnostics);

        std::os::unix::fs::symlink("../gone.csv", dir.0.join("data/gone.csv")).expect("link");
        std::os::unix::fs::symlink(".", dir.0.join("data/again")).expect("link");
        // An editor's lock file is a hidden dangling link: skipped.
        std::os::unix::fs::symlink("nobody@host", dir.0.join("data/.#a.csv")).expect("link");
        let loaded = read_files(&dir.0, "t", &source, &accounts(), 0).expect("reads");
        assert_eq!(
            codes_of(&loaded),
            vec![
                ("R0003", Some("data/again")),
                ("R0002", Some("data/gone.csv"))
            ]
        );
        assert_eq!(loaded.report.rows, 3);
    }

    /// File-level problems: a header naming a column twice (the file is
    /// not read), columns and keys no field declares (with a suggestion),
    /// a key written twice in a JSON line (a bad row), empty files.
    #[test]
    fn file_problems_are_coded() {
        let dir = Scratch::new("files");
        dir.write("twice/t.csv", "id,name,name\na1,Acme,Acme Corp\n");
        let loaded =
            read_files(&dir.0, "t", &text_source("twice", "csv"), &accounts(), 0).expect("reads");
        assert_eq!(codes_of(&loaded), vec![("R0008", Some("twice/t.csv:1"))]);
        assert_eq!(loaded.report.rows, 0);

        dir.write("typo/t.csv", "id,name,employes\na1,Acme,5\n");
        let loaded =
            read_files(&dir.0, "t", &text_source("typo", "csv"), &accounts(), 0).expect("reads");
        assert_eq!(codes_of(&loaded), vec![("R0005", Some("typo/t.csv:1"))]);
        assert!(
            loaded.diagnostics[0]
                .help
                .as_deref()
                .unwrap_or("")
                .contains("did you mean `employees`?"),
            "{:?}",
            loaded.diagnostics
        );
        assert_eq!(loaded.present, vec!["id", "name"]);

        dir.write(
            "json/t.jsonl",
            "{\"id\": \"a1\", \"name\": \"Acme\", \"name\": \"Other\"}\n{\"id\": \"a2\", \"region\": \"EMEA\"}\n",
        );
        let loaded =
            read_files(&dir.0, "t", &text_source("json", "jsonl"), &accounts(), 0).expect("reads");
        assert_eq!(
            codes_of(&loaded),
            vec![
                ("R0005", Some("json/t.jsonl:2")),
                ("R0009", Some("json/t.jsonl:1"))
            ]
        );
        assert_eq!((loaded.report.rows, loaded.report.bad_rows), (1, 1));

        dir.write("empty/a.csv", "");
        dir.write("empty/b.csv", "id,name,employees\n");
        dir.write("empty/c.jsonl", "\n\n");
        let loaded =
            read_files(&dir.0, "t", &text_source("empty/*", "csv"), &accounts(), 0).expect("reads");
        assert_eq!(
            codes_of(&loaded),
            vec![
                ("R0007", Some("empty/a.csv")),
                ("R0007", Some("empty/b.csv")),
                ("R0007", Some("empty/c.jsonl"))
            ]
        );
    }
}
