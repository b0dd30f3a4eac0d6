//! Delivery to file destinations: rows in, files out.
//!
//! Input: the destination rows of one activation (columns in mapping order,
//! cells as JSON values), the file settings of the destination, and the run
//! id. Output: data files split at the row limit (`name.csv`, `name_2.csv`,
//! ...), optionally gzipped, and a `manifest.json`, all under
//! `<root>/<activation>/<run id>/`. Identities are normalised and SHA-256
//! hashed here, per the catalog (`hash_email`, `hash_phone`).
//!
//! Invariants: every file is written atomically, and a file that already
//! holds the same bytes is not written again, so delivering a run id twice
//! (a rerun after a crash) writes exactly the files the crash prevented.
//! Data files come before the manifest: a manifest names only complete files.
//!
//! CSV cells that a spreadsheet would run as a formula (text starting with
//! `=`, `+`, `-`, `@`, a tab or a carriage return) are written with a `'`
//! in front unless the destination sets `formula_escape = false`: delivered
//! files are opened in spreadsheets by people other than the author of the
//! data. Only text cells are escaped: a number such as `-5` is typed data in
//! a numeric column, never a formula, and stays as it is.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::io::{self, Faults};

/// How files are written, from the destination's settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileFormat {
    /// `csv`, `jsonl` or `parquet`.
    pub format: String,
    pub gzip: bool,
    /// Rows per file; the catalog's limit (5,000,000 for object storage).
    pub max_rows_per_file: u64,
    pub delimiter: u8,
    /// CSV: prefix text cells that start a spreadsheet formula with `'`.
    pub formula_escape: bool,
}

impl Default for FileFormat {
    fn default() -> Self {
        FileFormat {
            format: "csv".into(),
            gzip: false,
            max_rows_per_file: 5_000_000,
            delimiter: b',',
            formula_escape: true,
        }
    }
}

/// A file that could not be written, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriteError {
    pub path: PathBuf,
    pub reason: String,
}

/// One delivered file, as the manifest lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRecord {
    /// Relative to the run folder.
    pub name: String,
    pub rows: u64,
    pub bytes: u64,
    pub sha256: String,
}

/// A table of destination rows.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rows {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
}

fn cell_text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(cell_text).collect::<Vec<_>>().join("|"),
        other => other.to_string(),
    }
}

/// The characters a spreadsheet reads as the start of a formula (OWASP's
/// CSV injection list).
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// A CSV cell's text, escaped when it is text that would start a formula.
fn csv_cell(v: &Value, formula_escape: bool) -> String {
    let text = cell_text(v);
    let is_text = matches!(v, Value::String(_) | Value::Array(_));
    if formula_escape && is_text && text.starts_with(FORMULA_STARTS) {
        format!("'{text}")
    } else {
        text
    }
}

/// Encodes rows in a format (without compression).
pub fn encode(rows: &Rows, format: &FileFormat) -> Result<Vec<u8>, String> {
    match format.format.as_str() {
        "csv" => {
            let mut out = Vec::new();
            let line = |out: &mut Vec<u8>, cells: &mut dyn Iterator<Item = String>| {
                let mut first = true;
                for c in cells {
                    if !first {
                        out.push(format.delimiter);
                    }
                    first = false;
                    let needs_quotes = c
                        .bytes()
                        .any(|b| b == format.delimiter || b == b'"' || b == b'\n' || b == b'\r');
                    if needs_quotes {
                        out.push(b'"');
                        out.extend_from_slice(c.replace('"', "\"\"").as_bytes());
                        out.push(b'"');
                    } else {
                        out.extend_from_slice(c.as_bytes());
                    }
                }
                out.push(b'\n');
            };
            line(&mut out, &mut rows.columns.iter().cloned());
            for row in &rows.rows {
                line(
                    &mut out,
                    &mut row.iter().map(|v| csv_cell(v, format.formula_escape)),
                );
            }
            Ok(out)
        }
        "jsonl" | "json" => {
            let mut out = Vec::new();
            for row in &rows.rows {
                let obj: serde_json::Map<String, Value> = rows
                    .columns
                    .iter()
                    .cloned()
                    .zip(row.iter().cloned())
                    .collect();
                serde_json::to_writer(&mut out, &obj).map_err(|e| e.to_string())?;
                out.push(b'\n');
            }
            Ok(out)
        }
        "parquet" => encode_parquet(rows),
        other => Err(format!("unknown file format `{other}`")),
    }
}

#[cfg(feature = "engine")]
fn encode_parquet(rows: &Rows) -> Result<Vec<u8>, String> {
    use datafusion::arrow::array::{ArrayRef, BooleanArray, Float64Array, Int64Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::arrow::record_batch::RecordBatch;
    use datafusion::parquet::arrow::ArrowWriter;
    use std::sync::Arc;

    let mut fields = Vec::new();
    let mut arrays: Vec<ArrayRef> = Vec::new();
    for (i, name) in rows.columns.iter().enumerate() {
        let cells = rows.rows.iter().map(|r| r.get(i).unwrap_or(&Value::Null));
        let non_null: Vec<&Value> = cells.clone().filter(|v| !v.is_null()).collect();
        let (ty, array): (DataType, ArrayRef) =
            if !non_null.is_empty() && non_null.iter().all(|v| v.is_boolean()) {
                (
                    DataType::Boolean,
                    Arc::new(cells.map(|v| v.as_bool()).collect::<BooleanArray>()),
                )
            } else if !non_null.is_empty() && non_null.iter().all(|v| v.is_i64()) {
                (
                    DataType::Int64,
                    Arc::new(cells.map(|v| v.as_i64()).collect::<Int64Array>()),
                )
            } else if !non_null.is_empty() && non_null.iter().all(|v| v.is_number()) {
                (
                    DataType::Float64,
                    Arc::new(cells.map(|v| v.as_f64()).collect::<Float64Array>()),
                )
            } else {
                (
                    DataType::Utf8,
                    Arc::new(
                        cells
                            .map(|v| (!v.is_null()).then(|| cell_text(v)))
                            .collect::<StringArray>(),
                    ),
                )
            };
        fields.push(Field::new(name, ty, true));
        arrays.push(array);
    }
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(schema.clone(), arrays).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut out, schema, None).map_err(|e| e.to_string())?;
    writer.write(&batch).map_err(|e| e.to_string())?;
    writer.close().map_err(|e| e.to_string())?;
    Ok(out)
}

#[cfg(not(feature = "engine"))]
fn encode_parquet(_rows: &Rows) -> Result<Vec<u8>, String> {
    Err("parquet files need the `engine` feature".into())
}

fn gzip(bytes: &[u8]) -> Result<Vec<u8>, String> {
    // No file name or time in the header, so the same rows give the same bytes.
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).map_err(|e| e.to_string())?;
    enc.finish().map_err(|e| e.to_string())
}

/// The file names for `parts` files: `base.ext`, `base_2.ext`, ...
pub fn file_name(base: &str, format: &FileFormat, part: usize) -> String {
    let ext = match format.format.as_str() {
        "json" => "jsonl",
        f => f,
    };
    let gz = if format.gzip { ".gz" } else { "" };
    if part <= 1 {
        format!("{base}.{ext}{gz}")
    } else {
        format!("{base}_{part}.{ext}{gz}")
    }
}

/// Writes rows as files under `dir`, split at the row limit. An empty table
/// still gets one file with a header (CSV) so consumers see the run.
pub fn write_files(
    dir: &Path,
    base: &str,
    rows: &Rows,
    format: &FileFormat,
    faults: &Faults,
) -> Result<Vec<FileRecord>, WriteError> {
    let limit = format.max_rows_per_file.max(1) as usize;
    let chunks: Vec<&[Vec<Value>]> = if rows.rows.is_empty() {
        vec![&[]]
    } else {
        rows.rows.chunks(limit).collect()
    };
    let mut records = Vec::new();
    for (i, chunk) in chunks.into_iter().enumerate() {
        let part = Rows {
            columns: rows.columns.clone(),
            rows: chunk.to_vec(),
        };
        let name = file_name(base, format, i + 1);
        let path = dir.join(&name);
        let failed = |reason: String| WriteError {
            path: path.clone(),
            reason,
        };
        let mut bytes = encode(&part, format).map_err(failed)?;
        if format.gzip {
            bytes = gzip(&bytes).map_err(failed)?;
        }
        write_if_changed(&path, &bytes, faults)?;
        records.push(FileRecord {
            name,
            rows: chunk.len() as u64,
            bytes: bytes.len() as u64,
            sha256: crate::hash::sha256_hex(&bytes),
        });
    }
    Ok(records)
}

/// Writes a file atomically unless it already holds these bytes (so
/// delivering one run id twice is idempotent).
pub fn write_if_changed(path: &Path, bytes: &[u8], faults: &Faults) -> Result<(), WriteError> {
    if std::fs::read(path).ok().as_deref() == Some(bytes) {
        return Ok(());
    }
    io::write_atomic(path, bytes, faults).map_err(|e| WriteError {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// The manifest of one delivery: what a consumer needs to pick the files up.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub run_id: String,
    pub activation: String,
    pub destination: String,
    /// `full` or `incremental`.
    pub export: String,
    pub format: String,
    pub gzip: bool,
    pub columns: Vec<String>,
    pub files: Vec<FileRecord>,
    pub rows: u64,
}

pub fn write_manifest(
    dir: &Path,
    manifest: &Manifest,
    faults: &Faults,
) -> Result<PathBuf, WriteError> {
    let path = dir.join("manifest.json");
    let mut bytes = serde_json::to_vec_pretty(manifest).map_err(|e| WriteError {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    bytes.push(b'\n');
    write_if_changed(&path, &bytes, faults)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn csv_quotes_and_splits() {
        let rows = Rows {
            columns: vec!["a".into(), "b".into()],
            rows: vec![
                vec![json!("x,y"), json!(1)],
                vec![json!("q\""), Value::Null],
                vec![json!(["l", "m"]), json!(true)],
            ],
        };
        let text = String::from_utf8(encode(&rows, &FileFormat::default()).unwrap()).unwrap();
        assert_eq!(text, "a,b\n\"x,y\",1\n\"q\"\"\",\nl|m,true\n");
        let dir = std::env::temp_dir().join(format!("accord-deliver-{}", std::process::id()));
        let format = FileFormat {
            max_rows_per_file: 2,
            gzip: true,
            ..FileFormat::default()
        };
        let files = write_files(&dir, "out", &rows, &format, &Faults::default()).unwrap();
        let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["out.csv.gz", "out_2.csv.gz"]);
        assert_eq!(files[1].rows, 1);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn csv_escapes_text_that_starts_a_formula() {
        let rows = Rows {
            columns: vec!["name".into(), "n".into()],
            rows: vec![
                vec![json!("=HYPERLINK(\"http://x\")"), json!(-5)],
                vec![json!("+1 555"), json!(1.5)],
                vec![json!("-5"), json!(-0.5)],
                vec![json!("@SUM(A1)"), Value::Null],
                vec![json!("\tx"), json!(true)],
                vec![json!("\rx"), json!(0)],
                vec![json!(["=a", "b"]), json!(2)],
                vec![json!("plain = fine"), json!(3)],
            ],
        };
        let text = String::from_utf8(encode(&rows, &FileFormat::default()).unwrap()).unwrap();
        assert_eq!(
            text,
            "name,n\n\"'=HYPERLINK(\"\"http://x\"\")\",-5\n'+1 555,1.5\n'-5,-0.5\n'@SUM(A1),\n\
             '\tx,true\n\"'\rx\",0\n'=a|b,2\nplain = fine,3\n"
        );
        let raw = FileFormat {
            formula_escape: false,
            ..FileFormat::default()
        };
        let text = String::from_utf8(encode(&rows, &raw).unwrap()).unwrap();
        assert!(
            text.contains("\n+1 555,1.5\n-5,-0.5\n@SUM(A1),\n"),
            "{text}"
        );
    }
}
