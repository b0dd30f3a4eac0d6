//! Delivery to file destinations: rows in, files out, in two steps that a
//! caller may take apart.
//!
//! [`encode`] turns the destination rows of one activation (an Arrow batch,
//! columns in mapping order) into every data file, named by the
//! activation's `FileLayout` (`crate::file_layout`, the names the rendered
//! manifest shows), and the manifest, through Arrow's writers: `arrow-csv`,
//! `arrow-json`, `parquet`. A data file is encoded a slice of 65,536 rows at
//! a time into a local spool file (its length and SHA-256 counted as it is
//! written), so a delivery's bytes are never in memory: only a slice's, and
//! the manifest's. The bytes are deterministic (gzip without a name or
//! time; the columns brought to one delivered form by `columns`; the same
//! slices), so a rerun under the same run id encodes the same files. A dry
//! run stops here.
//!
//! [`write`] puts them through a `FileStore` (a local folder, a bucket, an
//! SFTP folder: it does not know which): a data file whose size there is
//! already its length is skipped (a rerun after a crash writes only what
//! is missing), the others are put whole from their spool file
//! (`FileStore::put_file`), and the manifest comes last and
//! only when absent (`put_new`), so a reader that sees it sees every file
//! it lists. A manifest that exists with other bytes is never overwritten:
//! a reader may have picked it up.
//!
//! CSV cells that a spreadsheet would run as a formula (text starting with
//! `=`, `+`, `-`, `@`, a tab or a carriage return) are written with a `'`
//! in front unless the destination sets `formula_escape = false`: delivered
//! files are opened in spreadsheets by people other than the author of the
//! data. Only text cells are escaped: a number such as `-5` is typed data in
//! a numeric column, never a formula, and stays as it is.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use std::collections::BTreeMap;

use datafusion::arrow::array::{Array, AsArray, StringArray};
use datafusion::arrow::compute::concat_batches;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::record_batch::RecordBatch;
use serde::Serialize;

use super::columns;
use super::io::Faults;
use crate::deliver::storage::{FileStore, StorageError, StorageErrorKind};
use crate::file_layout::{CsvDialect, FileLayout, Format, NameValues, manifest_name};

/// What names a delivery and its manifest.
#[derive(Clone, Copy, Debug)]
pub struct About<'a> {
    pub activation: &'a str,
    pub destination: &'a str,
    /// `full` or `incremental`.
    pub export: &'a str,
    pub run_id: &'a str,
    /// The run's UTC date, YYYYMMDD.
    pub date: &'a str,
    /// The activation's audiences: with `{audience}` in the name, each gets
    /// its files, an empty one too (its reader sees the run).
    pub audiences: &'a [String],
}

/// One encoded data file: its bytes are in a file of the encoding's spool
/// folder, never in memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodedFile {
    pub name: String,
    /// The audience of its rows, when files are written per audience.
    pub audience: Option<String>,
    pub rows: u64,
    /// Its length in bytes.
    pub len: u64,
    /// SHA-256 of its bytes, hex, as the manifest lists it.
    pub sha256: String,
    /// Where its bytes are.
    pub path: PathBuf,
}

/// The manifest of a delivery, in memory (a few hundred bytes per file).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestFile {
    pub name: String,
    pub bytes: Vec<u8>,
}

/// Every file of one delivery, the manifest last (`None` with
/// `manifest = false`). The data files' folder is removed when this is
/// dropped.
#[derive(Debug)]
pub struct Encoded {
    pub files: Vec<EncodedFile>,
    pub manifest: Option<ManifestFile>,
    _spool: tempfile::TempDir,
}

impl Encoded {
    /// Data files and bytes, as the report counts them.
    pub fn totals(&self) -> (u64, u64) {
        (
            self.files.len() as u64,
            self.files.iter().map(|f| f.len).sum(),
        )
    }
}

/// One delivered file, as the manifest lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FileRecord {
    /// Relative to the destination's location.
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    pub rows: u64,
    pub bytes: u64,
    pub sha256: String,
}

/// The manifest of one delivery: what a reader needs to pick the files up.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Manifest<'a> {
    pub run_id: &'a str,
    pub activation: &'a str,
    pub destination: &'a str,
    pub export: &'a str,
    pub format: Format,
    pub gzip: bool,
    /// The dialect of CSV files, `null` for other formats.
    pub csv: Option<&'a CsvDialect>,
    pub columns: &'a [String],
    pub files: Vec<FileRecord>,
    pub rows: u64,
}

/// A file that could not be written, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriteError {
    /// The file's name under the destination's location.
    pub name: String,
    pub reason: String,
    /// What the store said went wrong; `None` when the store did its part
    /// and the delivery refused (a manifest it must not replace).
    pub kind: Option<StorageErrorKind>,
}

/// Rows encoded at a time: each file is written a slice of this many rows
/// after the other, so only a slice's encoding is in memory. A multiple of
/// the Parquet writer's mini-batch (1,024 rows), so a file's pages are cut
/// where one write of all its rows would cut them.
const ENCODE_ROWS: usize = 64 * 1024;

/// Encodes a delivery into `spool` (a folder the returned `Encoded` owns
/// and removes): the data files (per audience with `{audience}` in the
/// name, split at `rows_per_file`), each written to its own file there a
/// slice of rows at a time, and the manifest. `rows` are the destination
/// rows in the order they are written (the rows of one audience together),
/// a batch at a time, in the delivered types of `schema` (`columns`): a
/// file is cut into slices of [`ENCODE_ROWS`] from its first row whatever
/// batches its rows came in, so the same rows encode to the same bytes.
pub fn encode<'a>(
    layout: &FileLayout,
    (schema, rows): (
        &SchemaRef,
        impl Iterator<Item = Result<RecordBatch, String>> + 'a,
    ),
    about: &About,
    spool: tempfile::TempDir,
) -> Result<Encoded, String> {
    let values = NameValues {
        activation: about.activation,
        destination: about.destination,
        audience: None,
        run_id: Some(about.run_id),
        date: Some(about.date),
    };
    let audience = schema
        .index_of("audience")
        .ok()
        .filter(|&i| layout.per_audience() && schema.field(i).data_type() == &DataType::Utf8);
    let limit = usize::try_from(layout.rows_per_file)
        .unwrap_or(usize::MAX)
        .max(1);
    let mut feed = Feed {
        rows: Box::new(rows),
        batch: None,
        offset: 0,
        audience,
        error: None,
    };
    let mut files: Vec<EncodedFile> = Vec::new();
    let mut parts: BTreeMap<Option<String>, usize> = BTreeMap::new();
    let add = |set: Option<String>,
               slices: &mut dyn Iterator<Item = RecordBatch>,
               files: &mut Vec<EncodedFile>,
               parts: &mut BTreeMap<Option<String>, usize>|
     -> Result<(), String> {
        let part = parts.entry(set.clone()).or_default();
        *part += 1;
        let values = NameValues {
            audience: set.as_deref(),
            ..values
        };
        let name = layout.name(&values, *part);
        // Spooled under a number: a name is the destination's to judge.
        let path = spool.path().join(files.len().to_string());
        let (len, sha256) =
            encode_file(layout, schema, slices, &path).map_err(|e| format!("{name}: {e}"))?;
        files.push(EncodedFile {
            name,
            audience: set,
            rows: 0,
            len,
            sha256,
            path,
        });
        Ok(())
    };
    while let Some(set) = feed.next_set() {
        let mut slices = FileSlices {
            feed: &mut feed,
            set: set.clone(),
            left: limit,
            taken: 0,
        };
        add(set, &mut slices, &mut files, &mut parts)?;
        let taken = slices.taken;
        if let Some(e) = feed.error.take() {
            return Err(e);
        }
        if let Some(file) = files.last_mut() {
            file.rows = taken;
        }
    }
    if let Some(e) = feed.error.take() {
        return Err(e);
    }
    // An empty delivery still gets a file (a header for CSV), so its
    // reader sees the run; with `{audience}` in the name, each audience.
    let sets: Vec<Option<String>> = match audience {
        Some(_) => about.audiences.iter().cloned().map(Some).collect(),
        None => vec![None],
    };
    for set in sets {
        if !parts.contains_key(&set) {
            let empty = RecordBatch::new_empty(schema.clone());
            add(set, &mut std::iter::once(empty), &mut files, &mut parts)?;
        }
    }
    // The activation's audiences in order, then any other a row names (in
    // name order); each audience's parts in order.
    let rank = |set: &Option<String>| match set
        .as_ref()
        .and_then(|a| about.audiences.iter().position(|n| n == a))
    {
        Some(i) => (i, None),
        None => (about.audiences.len(), set.clone()),
    };
    files.sort_by_cached_key(|f| rank(&f.audience));
    let manifest = layout
        .manifest
        .then(|| manifest_file(layout, schema, about, &files))
        .transpose()?;
    Ok(Encoded {
        files,
        manifest,
        _spool: spool,
    })
}

/// The rows of a delivery as its files take them: the batches in order,
/// and where the next row is.
struct Feed<'a> {
    rows: Box<dyn Iterator<Item = Result<RecordBatch, String>> + 'a>,
    batch: Option<RecordBatch>,
    offset: usize,
    /// The `audience` column, when files are per audience.
    audience: Option<usize>,
    /// What went wrong making the rows: it ends them.
    error: Option<String>,
}

impl Feed<'_> {
    /// The batch with the next row, and where in it that row is.
    fn current(&mut self) -> Option<(RecordBatch, usize)> {
        loop {
            if let Some(batch) = &self.batch
                && self.offset < batch.num_rows()
            {
                return Some((batch.clone(), self.offset));
            }
            match self.rows.next() {
                Some(Ok(batch)) => (self.batch, self.offset) = (Some(batch), 0),
                Some(Err(e)) => {
                    self.error = Some(e);
                    self.batch = None;
                    return None;
                }
                None => {
                    self.batch = None;
                    return None;
                }
            }
        }
    }

    /// The set of files the next row goes to (its audience, when files are
    /// per audience), or `None` when the rows are done.
    fn next_set(&mut self) -> Option<Option<String>> {
        let (batch, offset) = self.current()?;
        Some(self.audience.and_then(|c| {
            let audiences = batch.column(c).as_string::<i32>();
            audiences
                .is_valid(offset)
                .then(|| audiences.value(offset).to_string())
        }))
    }
}

/// The rows of one file, as slices of [`ENCODE_ROWS`] taken from the
/// feed: up to `left` rows of its set; `taken` so far.
struct FileSlices<'f, 'a> {
    feed: &'f mut Feed<'a>,
    set: Option<String>,
    left: usize,
    taken: u64,
}

impl Iterator for FileSlices<'_, '_> {
    type Item = RecordBatch;

    fn next(&mut self) -> Option<RecordBatch> {
        let mut parts = Vec::new();
        let mut n = 0;
        while n < ENCODE_ROWS && self.left > 0 {
            let Some((batch, offset)) = self.feed.current() else {
                break;
            };
            let most = (batch.num_rows() - offset)
                .min(ENCODE_ROWS - n)
                .min(self.left);
            let run = match self.feed.audience {
                Some(c) => {
                    let audiences = batch.column(c).as_string::<i32>();
                    let set = self.set.as_deref();
                    (offset..offset + most)
                        .take_while(|&i| (audiences.is_valid(i).then(|| audiences.value(i))) == set)
                        .count()
                }
                None => most,
            };
            if run == 0 {
                break;
            }
            parts.push(batch.slice(offset, run));
            self.feed.offset += run;
            self.left -= run;
            n += run;
        }
        self.taken += n as u64;
        match parts.len() {
            0 => None,
            1 => parts.pop(),
            _ => match concat_batches(&parts[0].schema(), &parts) {
                Ok(slice) => Some(slice),
                Err(e) => {
                    self.feed.error = Some(e.to_string());
                    None
                }
            },
        }
    }
}

fn manifest_file(
    layout: &FileLayout,
    schema: &SchemaRef,
    about: &About,
    files: &[EncodedFile],
) -> Result<ManifestFile, String> {
    let manifest = Manifest {
        run_id: about.run_id,
        activation: about.activation,
        destination: about.destination,
        export: about.export,
        format: layout.format,
        gzip: layout.gzip,
        csv: (layout.format == Format::Csv).then_some(&layout.csv),
        columns: &schema
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect::<Vec<_>>(),
        files: files
            .iter()
            .map(|f| FileRecord {
                name: f.name.clone(),
                audience: f.audience.clone(),
                rows: f.rows,
                bytes: f.len,
                sha256: f.sha256.clone(),
            })
            .collect(),
        rows: files.iter().map(|f| f.rows).sum(),
    };
    let mut bytes = serde_json::to_vec_pretty(&manifest).map_err(|e| e.to_string())?;
    bytes.push(b'\n');
    Ok(ManifestFile {
        name: manifest_name(about.activation, Some(about.run_id)),
        bytes,
    })
}

/// Writes an encoded delivery through a store: missing or short data files
/// first, the manifest last and only when absent. Each write (not the
/// reads: killing the run before a read is killing it after the write
/// before) is a crash test step before and after, so a remote store gets
/// crash points too; a local store counts its own finer steps and is
/// passed a `Faults` that never aborts.
pub fn write(store: &dyn FileStore, encoded: &Encoded, faults: &Faults) -> Result<(), WriteError> {
    let failed = |name: &str, e: StorageError| WriteError {
        name: name.to_string(),
        reason: e.message,
        kind: Some(e.kind),
    };
    for file in &encoded.files {
        let size = store.size(&file.name).map_err(|e| failed(&file.name, e))?;
        if size == Some(file.len) {
            continue;
        }
        faults.step();
        store
            .put_file(&file.name, &file.path)
            .map_err(|e| failed(&file.name, e))?;
        faults.step();
    }
    let Some(manifest) = &encoded.manifest else {
        return Ok(());
    };
    faults.step();
    let created = store
        .put_new(&manifest.name, &manifest.bytes)
        .map_err(|e| failed(&manifest.name, e))?;
    faults.step();
    if created {
        return Ok(());
    }
    let existing = store
        .get(&manifest.name)
        .map_err(|e| failed(&manifest.name, e))?;
    if existing.as_deref() == Some(manifest.bytes.as_slice()) {
        return Ok(());
    }
    Err(WriteError {
        name: manifest.name.clone(),
        kind: None,
        reason: "a manifest with other contents is there already; it is never replaced, since a reader may have picked it up: move it away if no reader did".into(),
    })
}

/// Encodes one file's rows (its slices, in order; an empty file one empty
/// slice) into a new file at `path`, in the layout's format and gzipped
/// when it says so: the file's length and SHA-256 (hex), counted as the
/// bytes are written.
fn encode_file(
    layout: &FileLayout,
    schema: &SchemaRef,
    slices: &mut dyn Iterator<Item = RecordBatch>,
    path: &Path,
) -> Result<(u64, String), String> {
    let file = std::fs::File::create(path).map_err(|e| e.to_string())?;
    let out = crate::hash::Sha256Writer::new(std::io::BufWriter::new(file));
    let out = if layout.gzip {
        // No file name or time in the header, so the same rows give the
        // same bytes.
        let gzip = flate2::write::GzEncoder::new(out, flate2::Compression::default());
        encode_slices(layout, schema, slices, Unflushed(gzip))?
            .0
            .finish()
            .map_err(|e| e.to_string())?
    } else {
        encode_slices(layout, schema, slices, out)?
    };
    out.finish().map_err(|e| e.to_string())
}

/// A compressor whose writers may not flush it: a flush of a gzip stream
/// ends a DEFLATE block there (a few bytes more each time), and the file's
/// bytes would then depend on when its writer flushed. `finish` writes the
/// end.
struct Unflushed<W: Write>(W);

impl<W: Write> Write for Unflushed<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Encodes one file's slices in the layout's format (without compression)
/// into `out`. A file's columns are the delivery's (`schema`): a column
/// keeps its type in every file, one without a value in this file too.
fn encode_slices<W: Write + Send>(
    layout: &FileLayout,
    schema: &SchemaRef,
    slices: &mut dyn Iterator<Item = RecordBatch>,
    out: W,
) -> Result<W, String> {
    match layout.format {
        Format::Csv => csv(&layout.csv, slices, out),
        Format::Jsonl => jsonl(slices, out),
        Format::Parquet => parquet(schema, slices, out),
    }
    .map_err(|e| e.to_string())
}

/// The characters a spreadsheet reads as the start of a formula (OWASP's
/// CSV injection list).
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// CSV through Arrow's writer (`arrow-csv`): a cell is quoted when it holds
/// the delimiter, the quote, a line feed or a carriage return (or, with an
/// escape other than the quote, the escape); a quote inside is doubled, or
/// written after the escape. Before it, lists become their text, and text
/// cells get the `'` of `formula_escape` and, with an escape other than the
/// quote, their escapes doubled (Arrow's writer escapes only quotes; a
/// reader takes an escape as "the next character as it is", so a lone one
/// would be lost).
fn csv<W: Write>(
    dialect: &CsvDialect,
    slices: impl Iterator<Item = RecordBatch>,
    out: W,
) -> Result<W, ArrowError> {
    use datafusion::arrow::csv::{QuoteStyle, WriterBuilder};
    let mut writer = WriterBuilder::new()
        .with_header(dialect.header)
        .with_delimiter(ascii(dialect.delimiter))
        .with_quote(ascii(dialect.quote))
        .with_escape(ascii(dialect.escape))
        .with_double_quote(dialect.escape == dialect.quote)
        .with_null(dialect.null.clone())
        .with_quote_style(QuoteStyle::Necessary)
        .build(out);
    // The header comes with the first slice written.
    for rows in slices {
        writer.write(&csv_cells(dialect, &rows)?)?;
    }
    Ok(writer.into_inner())
}

/// The rows as the CSV writer takes them: lists as their text, text cells
/// with the `'` of `formula_escape` and, with an escape other than the
/// quote, their escapes doubled.
fn csv_cells(dialect: &CsvDialect, rows: &RecordBatch) -> Result<RecordBatch, ArrowError> {
    let rows = columns::lists_as_text(rows).map_err(ArrowError::CsvError)?;
    let doubled = |text: &str| -> String {
        if dialect.escape == dialect.quote {
            return text.to_string();
        }
        let mut out = String::with_capacity(text.len() + 1);
        for c in text.chars() {
            if c == dialect.escape {
                out.push(c);
            }
            out.push(c);
        }
        out
    };
    let needs = |text: &str| {
        (dialect.formula_escape && text.starts_with(FORMULA_STARTS))
            || (dialect.escape != dialect.quote && text.contains(dialect.escape))
    };
    let mut names = Vec::new();
    let mut cells = Vec::new();
    for (field, column) in rows.schema().fields().iter().zip(rows.columns()) {
        names.push(doubled(field.name()));
        let text = match column.data_type() {
            DataType::Utf8 => column.as_string::<i32>(),
            _ => {
                cells.push(column.clone());
                continue;
            }
        };
        if !text.iter().flatten().any(&needs) {
            cells.push(column.clone());
            continue;
        }
        let written: StringArray = text
            .iter()
            .map(|v| {
                v.map(|v| {
                    if dialect.formula_escape && v.starts_with(FORMULA_STARTS) {
                        doubled(&format!("'{v}"))
                    } else {
                        doubled(v)
                    }
                })
            })
            .collect();
        cells.push(Arc::new(written));
    }
    columns::assemble(&names, cells, rows.num_rows()).map_err(ArrowError::CsvError)
}

/// A dialect character as the writer takes it: `check` holds every one to
/// one ASCII character (A0117), and `FileLayout` falls back to the
/// catalog's default for any other.
fn ascii(c: char) -> u8 {
    u8::try_from(c).unwrap_or(b'"')
}

/// One JSON object per line (`arrow-json`), its keys in mapping order (a
/// JSON map would sort them), a missing value as `null`.
fn jsonl<W: Write>(slices: impl Iterator<Item = RecordBatch>, out: W) -> Result<W, ArrowError> {
    use datafusion::arrow::json::{WriterBuilder, writer::LineDelimited};
    let mut writer = WriterBuilder::new()
        .with_explicit_nulls(true)
        .build::<_, LineDelimited>(out);
    for rows in slices {
        writer.write(&rows)?;
    }
    writer.finish()?;
    Ok(writer.into_inner())
}

/// One Parquet file (one row group up to the writer's million rows), lists
/// as their text. A text column whose first rows all differ (a key, a
/// hashed email) is written without a dictionary ([`all_different`]); the
/// others keep the writer's default, a dictionary while it stays small.
fn parquet<W: Write + Send>(
    schema: &SchemaRef,
    slices: impl Iterator<Item = RecordBatch>,
    out: W,
) -> Result<W, ArrowError> {
    use datafusion::parquet::arrow::ArrowWriter;
    use datafusion::parquet::file::properties::WriterProperties;
    use datafusion::parquet::schema::types::ColumnPath;
    let mut slices = slices.peekable();
    let mut properties = WriterProperties::builder();
    for name in slices.peek().map(all_different).unwrap_or_default() {
        properties = properties.set_column_dictionary_enabled(ColumnPath::from(name), false);
    }
    let schema = columns::lists_as_text(&RecordBatch::new_empty(schema.clone()))
        .map_err(ArrowError::ParquetError)?
        .schema();
    let mut writer = ArrowWriter::try_new(out, schema, Some(properties.build()))?;
    for rows in slices {
        writer.write(&columns::lists_as_text(&rows).map_err(ArrowError::ParquetError)?)?;
    }
    Ok(writer.into_inner()?)
}

/// Rows of a file's first slice that [`all_different`] looks at.
const DICTIONARY_SAMPLE: usize = 1024;

/// The text columns whose first [`DICTIONARY_SAMPLE`] values (of at least
/// half as many rows) all differ. A dictionary of such a column only grows:
/// the writer hashes every value into it until it outgrows its page (1 MiB)
/// and falls back to plain values, and that hashing was about half of
/// encoding a file of 91,000 account keys. A column of a few thousand
/// values (cities) repeats within the sample and keeps its dictionary.
fn all_different(rows: &RecordBatch) -> Vec<String> {
    let mut out = Vec::new();
    for (field, column) in rows.schema().fields().iter().zip(rows.columns()) {
        let Some(text) = column.as_string_opt::<i32>() else {
            continue;
        };
        // Stops at the first repeated value.
        let mut seen = std::collections::HashSet::with_capacity(DICTIONARY_SAMPLE);
        let differ = text
            .iter()
            .flatten()
            .take(DICTIONARY_SAMPLE)
            .all(|v| seen.insert(v));
        if differ && seen.len() >= DICTIONARY_SAMPLE / 2 {
            out.push(field.name().clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Destination rows written as JSON values, for the tests to read.
    struct Rows {
        columns: Vec<String>,
        rows: Vec<Vec<Value>>,
    }

    impl Rows {
        fn batch(&self) -> Result<RecordBatch, String> {
            let rows: Vec<&[Value]> = self.rows.iter().map(Vec::as_slice).collect();
            columns::from_values(&self.columns, &rows)
        }
    }
    use serde_json::{Value, json};

    fn layout() -> FileLayout {
        FileLayout {
            format: Format::Csv,
            gzip: false,
            csv: CsvDialect {
                delimiter: ',',
                quote: '"',
                escape: '"',
                null: String::new(),
                header: true,
                formula_escape: true,
            },
            rows_per_file: 5_000_000,
            file_name: crate::catalog::file_name::DEFAULT_PATTERN.into(),
            manifest: true,
        }
    }

    fn text(layout: &FileLayout, rows: &Rows) -> String {
        String::from_utf8(one_slice(layout, &rows.batch().unwrap())).unwrap()
    }

    /// One file's rows written in one slice.
    fn one_slice(layout: &FileLayout, rows: &RecordBatch) -> Vec<u8> {
        encode_slices(
            layout,
            &rows.schema(),
            &mut std::iter::once(rows.clone()),
            Vec::new(),
        )
        .unwrap()
    }

    /// Encodes into a fresh spool folder, the rows in one batch.
    fn encoded(layout: &FileLayout, rows: &RecordBatch, about: &About) -> Encoded {
        encoded_in(layout, rows, &[rows.num_rows()], about)
    }

    /// Encodes into a fresh spool folder, the rows cut into batches of
    /// `cuts` rows (round and round) as they come.
    fn encoded_in(
        layout: &FileLayout,
        rows: &RecordBatch,
        cuts: &[usize],
        about: &About,
    ) -> Encoded {
        let mut batches = Vec::new();
        let mut start = 0;
        for cut in cuts.iter().cycle() {
            if start == rows.num_rows() {
                break;
            }
            let len = (*cut).max(1).min(rows.num_rows() - start);
            batches.push(Ok(rows.slice(start, len)));
            start += len;
        }
        let rows = (&rows.schema(), batches.into_iter());
        encode(layout, rows, about, tempfile::tempdir().unwrap()).unwrap()
    }

    /// A full export of activation `act` under run `R`.
    fn about(audiences: &[String]) -> About<'_> {
        About {
            activation: "act",
            destination: "d",
            export: "full",
            run_id: "R",
            date: "20261128",
            audiences,
        }
    }

    /// What identifies an encoded file, wherever it was spooled.
    fn identity(encoded: &Encoded) -> Vec<(String, u64, u64, String)> {
        encoded
            .files
            .iter()
            .map(|f| (f.name.clone(), f.rows, f.len, f.sha256.clone()))
            .collect()
    }

    #[test]
    fn csv_quotes_escapes_and_writes_null_text() {
        let rows = Rows {
            columns: vec!["a".into(), "b".into()],
            rows: vec![
                vec![json!("x,y"), json!("1")],
                vec![json!("q\""), Value::Null],
                vec![json!(["l", "m"]), json!("true")],
                vec![json!(""), json!("back\\slash \"q\"")],
            ],
        };
        // Arrow's writer quotes by content alone: the empty text and a
        // missing value (the empty `null` text) are written alike.
        assert_eq!(
            text(&layout(), &rows),
            "a,b\n\"x,y\",1\n\"q\"\"\",\nl|m,true\n,\"back\\slash \"\"q\"\"\"\n"
        );
        let mut other = layout();
        other.csv = CsvDialect {
            delimiter: ';',
            quote: '\'',
            escape: '\\',
            null: "NULL".into(),
            header: false,
            formula_escape: false,
        };
        assert_eq!(
            text(&other, &rows),
            "x,y;1\nq\";NULL\nl|m;true\n;'back\\\\slash \"q\"'\n"
        );
        let rows = Rows {
            columns: vec!["a\\b".into()],
            rows: vec![vec![json!("NULL")], vec![json!("it's")], vec![json!("\\")]],
        };
        other.csv.header = true;
        assert_eq!(text(&other, &rows), "'a\\\\b'\nNULL\n'it\\'s'\n'\\\\'\n");
    }

    #[test]
    fn csv_escapes_text_that_starts_a_formula() {
        let rows = Rows {
            columns: vec!["name".into(), "n".into(), "x".into()],
            rows: vec![
                vec![json!("=HYPERLINK(\"http://x\")"), json!(-5), json!(1.5)],
                vec![json!("+1 555"), json!(1), json!(-0.5)],
                vec![json!("-5"), Value::Null, json!(2.0)],
                vec![json!("@SUM(A1)"), json!(0), Value::Null],
                vec![json!("\tx"), json!(2), json!(0.25)],
                vec![json!("\rx"), json!(3), json!(1e21)],
                vec![json!(["=a", "b"]), json!(4), json!(-1.0)],
                vec![json!("plain = fine"), json!(5), json!(3.0)],
            ],
        };
        assert_eq!(
            text(&layout(), &rows),
            "name,n,x\n\"'=HYPERLINK(\"\"http://x\"\")\",-5,1.5\n'+1 555,1,-0.5\n'-5,,2.0\n'@SUM(A1),0,\n\
             '\tx,2,0.25\n\"'\rx\",3,1e21\n'=a|b,4,-1.0\nplain = fine,5,3.0\n"
        );
        let mut raw = layout();
        raw.csv.formula_escape = false;
        assert!(
            text(&raw, &rows).contains("\n+1 555,1,-0.5\n-5,,2.0\n@SUM(A1),0,\n"),
            "{}",
            text(&raw, &rows)
        );
    }

    #[test]
    fn jsonl_keeps_mapping_order() {
        let mut jsonl = layout();
        jsonl.format = Format::Jsonl;
        let rows = Rows {
            columns: vec!["zeta".into(), "alpha".into(), "mid".into()],
            rows: vec![
                vec![json!("z\"\u{1}"), Value::Null, json!(["a", null])],
                vec![json!("y"), json!(-2), json!([])],
                vec![json!("x"), json!(3), Value::Null],
            ],
        };
        assert_eq!(
            text(&jsonl, &rows),
            "{\"zeta\":\"z\\\"\\u0001\",\"alpha\":null,\"mid\":[\"a\",null]}\n\
             {\"zeta\":\"y\",\"alpha\":-2,\"mid\":[]}\n\
             {\"zeta\":\"x\",\"alpha\":3,\"mid\":null}\n"
        );
    }

    #[test]
    fn files_split_per_audience_and_part() {
        let mut layout = layout();
        layout.rows_per_file = 2;
        layout.file_name = "{activation}_{audience}_{run_id}.{ext}".into();
        layout.gzip = true;
        let rows = Rows {
            columns: vec!["audience".into(), "id".into()],
            rows: ["A", "A", "A", "B", "C"]
                .iter()
                .enumerate()
                .map(|(i, a)| vec![json!(a), json!(i)])
                .collect(),
        };
        let audiences = ["A".to_string(), "B".into(), "Empty".into()];
        let about = about(&audiences);
        let encoded = encoded(&layout, &rows.batch().unwrap(), &about);
        let names: Vec<(&str, u64)> = encoded
            .files
            .iter()
            .map(|f| (f.name.as_str(), f.rows))
            .collect();
        assert_eq!(
            names,
            [
                ("act_A_R.csv.gz", 2),
                ("act_A_R_2.csv.gz", 1),
                ("act_B_R.csv.gz", 1),
                ("act_Empty_R.csv.gz", 0),
                ("act_C_R.csv.gz", 1),
            ]
        );
        let again = self::encoded(&layout, &rows.batch().unwrap(), &about);
        assert_eq!(identity(&again), identity(&encoded), "deterministic");
        // However the rows come in batches.
        let cut = encoded_in(&layout, &rows.batch().unwrap(), &[1, 2], &about);
        assert_eq!(identity(&cut), identity(&encoded), "cut into batches");
        assert_eq!(again.manifest, encoded.manifest);
        for file in &encoded.files {
            let bytes = std::fs::read(&file.path).unwrap();
            assert_eq!(bytes.len() as u64, file.len, "{}", file.name);
            assert_eq!(
                crate::hash::sha256_hex(&bytes),
                file.sha256,
                "{}",
                file.name
            );
        }
        let manifest = encoded.manifest.expect("a manifest");
        assert_eq!(manifest.name, "act_R.manifest.json");
        let json: Value = serde_json::from_slice(&manifest.bytes).unwrap();
        assert_eq!(json["files"][4]["audience"], "C");
        assert_eq!(json["csv"]["delimiter"], ",");
        layout.manifest = false;
        assert!(
            self::encoded(&layout, &rows.batch().unwrap(), &about)
                .manifest
                .is_none()
        );
    }

    /// A file is written a slice at a time, cut from its first row,
    /// whatever batches its rows came in: the same bytes whether the rows
    /// came whole or cut anyhow, in every format. CSV and JSON lines are
    /// also the bytes of one write of every row (the header once, cells
    /// escaped where their slice needs it); Parquet the same rows, and a
    /// column without a value in the first slice keeps its type.
    #[test]
    fn a_file_written_in_slices_is_the_file_written_at_once() {
        use datafusion::arrow::array::{ArrayRef, Int64Array, ListBuilder, StringBuilder};
        let n = 2 * ENCODE_ROWS + 4_321;
        let names: Vec<Option<String>> = (0..n)
            .map(|i| match i % 7 {
                0 => None,
                // Escaped in a later slice only.
                _ if i == ENCODE_ROWS + 5 => Some("=SUM(A1)".into()),
                _ => Some(format!("name {i}, \"q\"")),
            })
            .collect();
        let late: Vec<Option<i64>> = (0..n)
            .map(|i| (i > ENCODE_ROWS + 10 && i % 3 == 0).then_some(i as i64))
            .collect();
        let mut tags = ListBuilder::new(StringBuilder::new());
        for i in 0..n {
            if i % 5 == 0 {
                tags.append_null();
            } else {
                tags.append_value([Some(format!("t{}", i % 11)), None]);
            }
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(names)),
            Arc::new(Int64Array::from(late)),
            Arc::new(tags.finish()),
        ];
        let rows =
            columns::assemble(&["name".into(), "late".into(), "tags".into()], columns, n).unwrap();
        let about = about(&[]);
        for format in [Format::Csv, Format::Jsonl, Format::Parquet] {
            for gzip in [false, true] {
                let mut layout = layout();
                (layout.format, layout.gzip) = (format, gzip);
                let whole = encoded(&layout, &rows, &about);
                let cut = encoded_in(&layout, &rows, &[1_000, 7, 70_000, 1], &about);
                assert_eq!(identity(&cut), identity(&whole), "{format:?}, gzip {gzip}");
                let bytes = std::fs::read(&whole.files[0].path).unwrap();
                assert_eq!(
                    (whole.files[0].len, whole.files[0].sha256.clone()),
                    (bytes.len() as u64, crate::hash::sha256_hex(&bytes))
                );
                let plain = if gzip {
                    let mut plain = Vec::new();
                    std::io::Read::read_to_end(
                        &mut flate2::read::GzDecoder::new(&bytes[..]),
                        &mut plain,
                    )
                    .unwrap();
                    plain
                } else {
                    bytes
                };
                let at_once = one_slice(&layout, &rows);
                if format == Format::Parquet {
                    // The writer's pages may be cut elsewhere (a few bytes
                    // of difference): the same schema and rows.
                    assert_eq!(parquet_rows(&plain), parquet_rows(&at_once));
                    let first = parquet_rows(&plain);
                    assert_eq!(
                        first.column_by_name("late").unwrap().data_type(),
                        &DataType::Int64
                    );
                } else {
                    assert!(
                        plain == at_once,
                        "{format:?}: {} and {} bytes",
                        plain.len(),
                        at_once.len()
                    );
                }
            }
        }
        // An empty file is a header.
        let empty = one_slice(&layout(), &rows.slice(0, 0));
        assert_eq!(String::from_utf8(empty).unwrap(), "name,late,tags\n");
    }

    /// A key column (every value different) is written without a
    /// dictionary, a column of a few values with one; the values read back
    /// the same either way.
    #[test]
    fn parquet_keeps_dictionaries_for_repeated_text_only() {
        use datafusion::parquet::file::reader::{FileReader, SerializedFileReader};
        let n = 3 * DICTIONARY_SAMPLE;
        let keys: Vec<String> = (0..n).map(|i| format!("acct-{i:06}")).collect();
        let countries: Vec<&str> = (0..n).map(|i| ["US", "DE", "FR"][i % 3]).collect();
        let rows = RecordBatch::try_from_iter([
            (
                "accountId",
                Arc::new(StringArray::from(keys.clone())) as datafusion::arrow::array::ArrayRef,
            ),
            (
                "country",
                Arc::new(StringArray::from(countries.clone())) as _,
            ),
        ])
        .unwrap();
        let mut parquet_layout = layout();
        parquet_layout.format = Format::Parquet;
        let bytes = one_slice(&parquet_layout, &rows);
        let file = SerializedFileReader::new(bytes::Bytes::from(bytes.clone())).unwrap();
        let group = file.metadata().row_group(0);
        let dictionary = |i: usize| group.column(i).dictionary_page_offset().is_some();
        assert!(!dictionary(0), "a key column has no dictionary");
        assert!(dictionary(1), "a repeated column keeps its dictionary");
        assert_eq!(parquet_rows(&bytes).columns(), rows.columns());
        // Fewer rows than half the sample: the writer's default.
        assert!(all_different(&rows.slice(0, DICTIONARY_SAMPLE / 2 - 1)).is_empty());
        assert_eq!(all_different(&rows), vec!["accountId".to_string()]);
    }

    /// The rows of a Parquet file, as one batch.
    fn parquet_rows(bytes: &[u8]) -> RecordBatch {
        use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::copy_from_slice(bytes))
            .unwrap()
            .build()
            .unwrap();
        let schema = datafusion::arrow::record_batch::RecordBatchReader::schema(&reader);
        let batches: Vec<RecordBatch> = reader.map(Result::unwrap).collect();
        datafusion::arrow::compute::concat_batches(&schema, &batches).unwrap()
    }

    /// A store in memory that records the names it was asked to write.
    #[derive(Default)]
    struct Memory {
        files: std::sync::Mutex<std::collections::BTreeMap<String, Vec<u8>>>,
        puts: std::sync::Mutex<Vec<String>>,
    }

    impl FileStore for Memory {
        fn location(&self) -> String {
            "memory:".into()
        }
        fn size(&self, name: &str) -> Result<Option<u64>, crate::deliver::storage::StorageError> {
            Ok(self.files.lock().unwrap().get(name).map(|b| b.len() as u64))
        }
        fn put(
            &self,
            name: &str,
            bytes: &[u8],
        ) -> Result<(), crate::deliver::storage::StorageError> {
            self.puts.lock().unwrap().push(name.to_string());
            self.files
                .lock()
                .unwrap()
                .insert(name.into(), bytes.to_vec());
            Ok(())
        }
        fn put_new(
            &self,
            name: &str,
            bytes: &[u8],
        ) -> Result<bool, crate::deliver::storage::StorageError> {
            let mut files = self.files.lock().unwrap();
            if files.contains_key(name) {
                return Ok(false);
            }
            self.puts.lock().unwrap().push(name.to_string());
            files.insert(name.into(), bytes.to_vec());
            Ok(true)
        }
        fn get(
            &self,
            name: &str,
        ) -> Result<Option<Vec<u8>>, crate::deliver::storage::StorageError> {
            Ok(self.files.lock().unwrap().get(name).cloned())
        }
    }

    #[test]
    fn a_rerun_writes_only_what_is_missing_and_never_replaces_a_manifest() {
        let mut layout = layout();
        layout.rows_per_file = 1;
        let rows = Rows {
            columns: vec!["id".into()],
            rows: vec![vec![json!("a")], vec![json!("b")]],
        };
        let about = about(&[]);
        let encoded = encoded(&layout, &rows.batch().unwrap(), &about);
        let store = Memory::default();
        // A crash left the first file whole and the second cut short.
        store.files.lock().unwrap().insert(
            "act_R.csv".into(),
            std::fs::read(&encoded.files[0].path).unwrap(),
        );
        store
            .files
            .lock()
            .unwrap()
            .insert("act_R_2.csv".into(), b"i".to_vec());
        let faults = Faults::default();
        write(&store, &encoded, &faults).unwrap();
        assert_eq!(
            *store.puts.lock().unwrap(),
            ["act_R_2.csv", "act_R.manifest.json"]
        );
        // One put and one put_new, a step before and after each (reads
        // are no crash points).
        assert_eq!(faults.operations(), 4);
        // Again: nothing to write, the same manifest is fine.
        store.puts.lock().unwrap().clear();
        write(&store, &encoded, &faults).unwrap();
        assert!(store.puts.lock().unwrap().is_empty());
        // A manifest with other bytes is an error naming it, and stays.
        store
            .files
            .lock()
            .unwrap()
            .insert("act_R.manifest.json".into(), b"{}".to_vec());
        let refused = write(&store, &encoded, &faults).unwrap_err();
        assert_eq!(refused.name, "act_R.manifest.json");
        assert_eq!(store.get("act_R.manifest.json").unwrap().unwrap(), b"{}");
    }
}
