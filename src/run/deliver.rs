//! Delivery to file destinations: rows in, files out, in two steps that a
//! caller may take apart.
//!
//! [`encode`] turns the destination rows of one activation (an Arrow batch,
//! columns in mapping order) into the bytes of every data file and of the
//! manifest, in memory, named by the activation's `FileLayout`
//! (`crate::file_layout`, the names the rendered manifest shows), through
//! Arrow's writers: `arrow-csv`, `arrow-json`, `parquet`. The bytes are
//! deterministic (gzip without a name or time; the columns brought to one
//! delivered form by `columns`), so a rerun under the same run id encodes
//! the same files. A dry run stops here.
//!
//! [`write`] puts them through a `FileStore` (a local folder, a bucket, an
//! SFTP folder: it does not know which): a data file whose size there is
//! already its length is skipped (a rerun after a crash writes only what
//! is missing), the others are put whole, and the manifest comes last and
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
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, BooleanArray, StringArray};
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::datatypes::DataType;
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

/// One encoded file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodedFile {
    pub name: String,
    /// The audience of its rows, when files are written per audience.
    pub audience: Option<String>,
    pub rows: u64,
    pub bytes: Vec<u8>,
}

/// Every file of one delivery, the manifest last (`None` with
/// `manifest = false`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Encoded {
    pub files: Vec<EncodedFile>,
    pub manifest: Option<EncodedFile>,
}

impl Encoded {
    /// Data files and bytes, as the report counts them.
    pub fn totals(&self) -> (u64, u64) {
        (
            self.files.len() as u64,
            self.files.iter().map(|f| f.bytes.len() as u64).sum(),
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

/// Encodes a delivery: the data files (per audience with `{audience}` in
/// the name, split at `rows_per_file`) and the manifest. `rows` are the
/// destination rows in the order they are written, as Arrow columns
/// (brought to their delivered types here, `columns::delivered`).
pub fn encode(layout: &FileLayout, rows: &RecordBatch, about: &About) -> Result<Encoded, String> {
    let rows = columns::delivered(rows)?;
    let values = NameValues {
        activation: about.activation,
        destination: about.destination,
        audience: None,
        run_id: Some(about.run_id),
        date: Some(about.date),
    };
    let mut files = Vec::new();
    for (audience, set) in sets(layout, &rows, about.audiences)? {
        let values = NameValues {
            audience: audience.as_deref(),
            ..values
        };
        let limit = usize::try_from(layout.rows_per_file).unwrap_or(usize::MAX);
        // An empty delivery still gets a file (a header for CSV), so its
        // reader sees the run.
        let parts = set.num_rows().div_ceil(limit).max(1);
        for i in 0..parts {
            let name = layout.name(&values, i + 1);
            let start = i * limit;
            let chunk = set.slice(start, limit.min(set.num_rows() - start));
            let mut bytes = encode_rows(layout, &chunk).map_err(|e| format!("{name}: {e}"))?;
            if layout.gzip {
                bytes = gzip(&bytes).map_err(|e| format!("{name}: {e}"))?;
            }
            files.push(EncodedFile {
                name,
                audience: audience.clone(),
                rows: chunk.num_rows() as u64,
                bytes,
            });
        }
    }
    let manifest = layout
        .manifest
        .then(|| manifest_file(layout, &rows, about, &files))
        .transpose()?;
    Ok(Encoded { files, manifest })
}

/// The rows of each set of files: one set, or one per audience (the
/// activation's audiences in order, then any other a row names, so no
/// row is left out).
fn sets(
    layout: &FileLayout,
    rows: &RecordBatch,
    audiences: &[String],
) -> Result<Vec<(Option<String>, RecordBatch)>, String> {
    let column = rows
        .column_by_name("audience")
        .filter(|c| c.data_type() == &DataType::Utf8);
    let (true, Some(column)) = (layout.per_audience(), column) else {
        return Ok(vec![(None, rows.clone())]);
    };
    let column = column.as_string::<i32>();
    let mut names: Vec<String> = audiences.to_vec();
    let mut others: Vec<String> = column
        .iter()
        .flatten()
        .filter(|a| !names.iter().any(|n| n == a))
        .map(str::to_string)
        .collect();
    others.sort();
    others.dedup();
    names.extend(others);
    names
        .into_iter()
        .map(|name| {
            let mask: BooleanArray = column
                .iter()
                .map(|a| Some(a == Some(name.as_str())))
                .collect();
            let set = filter_record_batch(rows, &mask).map_err(|e| e.to_string())?;
            Ok((Some(name), set))
        })
        .collect()
}

fn manifest_file(
    layout: &FileLayout,
    rows: &RecordBatch,
    about: &About,
    files: &[EncodedFile],
) -> Result<EncodedFile, String> {
    let manifest = Manifest {
        run_id: about.run_id,
        activation: about.activation,
        destination: about.destination,
        export: about.export,
        format: layout.format,
        gzip: layout.gzip,
        csv: (layout.format == Format::Csv).then_some(&layout.csv),
        columns: &rows
            .schema()
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
                bytes: f.bytes.len() as u64,
                sha256: crate::hash::sha256_hex(&f.bytes),
            })
            .collect(),
        rows: rows.num_rows() as u64,
    };
    let mut bytes = serde_json::to_vec_pretty(&manifest).map_err(|e| e.to_string())?;
    bytes.push(b'\n');
    Ok(EncodedFile {
        name: manifest_name(about.activation, Some(about.run_id)),
        audience: None,
        rows: manifest.rows,
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
        if size == Some(file.bytes.len() as u64) {
            continue;
        }
        faults.step();
        store
            .put(&file.name, &file.bytes)
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

/// Encodes one file's rows in the layout's format (without compression).
fn encode_rows(layout: &FileLayout, rows: &RecordBatch) -> Result<Vec<u8>, String> {
    // A file's columns are delivered alone: a column without a value in
    // this file is text, whatever the other files hold.
    let rows = columns::delivered(rows)?;
    match layout.format {
        Format::Csv => csv(&layout.csv, &rows),
        Format::Jsonl => jsonl(&rows),
        Format::Parquet => parquet(&rows),
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
fn csv(dialect: &CsvDialect, rows: &RecordBatch) -> Result<Vec<u8>, ArrowError> {
    use datafusion::arrow::csv::{QuoteStyle, WriterBuilder};
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
    let rows = columns::assemble(&names, cells, rows.num_rows()).map_err(ArrowError::CsvError)?;
    let mut writer = WriterBuilder::new()
        .with_header(dialect.header)
        .with_delimiter(ascii(dialect.delimiter))
        .with_quote(ascii(dialect.quote))
        .with_escape(ascii(dialect.escape))
        .with_double_quote(dialect.escape == dialect.quote)
        .with_null(dialect.null.clone())
        .with_quote_style(QuoteStyle::Necessary)
        .build(Vec::new());
    writer.write(&rows)?;
    Ok(writer.into_inner())
}

/// A dialect character as the writer takes it: `check` holds every one to
/// one ASCII character (A0117), and `FileLayout` falls back to the
/// catalog's default for any other.
fn ascii(c: char) -> u8 {
    u8::try_from(c).unwrap_or(b'"')
}

/// One JSON object per line (`arrow-json`), its keys in mapping order (a
/// JSON map would sort them), a missing value as `null`.
fn jsonl(rows: &RecordBatch) -> Result<Vec<u8>, ArrowError> {
    use datafusion::arrow::json::{WriterBuilder, writer::LineDelimited};
    let mut writer = WriterBuilder::new()
        .with_explicit_nulls(true)
        .build::<_, LineDelimited>(Vec::new());
    writer.write(rows)?;
    writer.finish()?;
    Ok(writer.into_inner())
}

/// One Parquet file (one row group up to the writer's million rows), lists
/// as their text.
fn parquet(rows: &RecordBatch) -> Result<Vec<u8>, ArrowError> {
    use datafusion::parquet::arrow::ArrowWriter;
    let rows = columns::lists_as_text(rows).map_err(ArrowError::ParquetError)?;
    let mut out = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut out, rows.schema(), None)?;
    writer.write(&rows)?;
    writer.close()?;
    Ok(out)
}

fn gzip(bytes: &[u8]) -> Result<Vec<u8>, String> {
    // No file name or time in the header, so the same rows give the same bytes.
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).map_err(|e| e.to_string())?;
    enc.finish().map_err(|e| e.to_string())
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
        String::from_utf8(encode_rows(layout, &rows.batch().unwrap()).unwrap()).unwrap()
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
            rows: ["A", "B", "A", "A", "C"]
                .iter()
                .enumerate()
                .map(|(i, a)| vec![json!(a), json!(i)])
                .collect(),
        };
        let audiences = ["A".to_string(), "B".into(), "Empty".into()];
        let about = About {
            activation: "act",
            destination: "d",
            export: "full",
            run_id: "R",
            date: "20261128",
            audiences: &audiences,
        };
        let encoded = encode(&layout, &rows.batch().unwrap(), &about).unwrap();
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
        assert_eq!(
            encode(&layout, &rows.batch().unwrap(), &about).unwrap(),
            encoded,
            "deterministic"
        );
        let manifest = encoded.manifest.expect("a manifest");
        assert_eq!(manifest.name, "act_R.manifest.json");
        let json: Value = serde_json::from_slice(&manifest.bytes).unwrap();
        assert_eq!(json["files"][4]["audience"], "C");
        assert_eq!(json["csv"]["delimiter"], ",");
        layout.manifest = false;
        assert!(
            encode(&layout, &rows.batch().unwrap(), &about)
                .unwrap()
                .manifest
                .is_none()
        );
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
        let about = About {
            activation: "act",
            destination: "d",
            export: "full",
            run_id: "R",
            date: "20261128",
            audiences: &[],
        };
        let encoded = encode(&layout, &rows.batch().unwrap(), &about).unwrap();
        let store = Memory::default();
        // A crash left the first file whole and the second cut short.
        store
            .files
            .lock()
            .unwrap()
            .insert("act_R.csv".into(), encoded.files[0].bytes.clone());
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
