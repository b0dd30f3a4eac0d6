//! Reading sources: one `[source.*]` (a file, a folder or a glob of CSV,
//! JSONL or Parquet files) in, one Arrow batch typed by its schema out, with
//! a report of its bad rows (file and line) and its freshness.
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

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanBuilder, Float64Builder, Int64Builder, ListBuilder,
    StringBuilder, TimestampMicrosecondBuilder, new_null_array,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use rayon::prelude::*;
use serde_json::Value;

use super::files;
use super::report::{RunDiagnostic, SourceReport};
use super::time::{self, Micros};
use crate::diag::{codes, did_you_mean};
use crate::plan::{FieldPlan, SchemaPlan, SourcePlan};

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
    /// as they are.
    pub batches: Vec<RecordBatch>,
    pub report: SourceReport,
    /// Problems with the source's files (not single rows), in file order.
    pub diagnostics: Vec<RunDiagnostic>,
}

pub fn arrow_type(ty: &str) -> DataType {
    let item = |t: DataType| DataType::List(Arc::new(Field::new("item", t, true)));
    match ty {
        "int" => DataType::Int64,
        "double" => DataType::Float64,
        "bool" => DataType::Boolean,
        "timestamp" => DataType::Timestamp(TimeUnit::Microsecond, None),
        "list<string>" => item(DataType::Utf8),
        "list<int>" => item(DataType::Int64),
        "list<double>" => item(DataType::Float64),
        _ => DataType::Utf8,
    }
}

pub fn arrow_schema(schema: &SchemaPlan) -> SchemaRef {
    Arc::new(Schema::new(
        schema
            .fields
            .iter()
            .map(|(name, f)| Field::new(name, arrow_type(&f.ty), true))
            .collect::<Vec<_>>(),
    ))
}

/// A typed cell, before it goes into a column.
#[derive(Clone, Debug, PartialEq)]
enum Cell {
    Null,
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Ts(Micros),
    Strs(Vec<String>),
    Ints(Vec<i64>),
    Floats(Vec<f64>),
}

enum Column {
    Str(StringBuilder),
    Int(Int64Builder),
    Float(Float64Builder),
    Bool(BooleanBuilder),
    Ts(TimestampMicrosecondBuilder),
    Strs(ListBuilder<StringBuilder>),
    Ints(ListBuilder<Int64Builder>),
    Floats(ListBuilder<Float64Builder>),
}

impl Column {
    fn new(ty: &str) -> Column {
        match ty {
            "int" => Column::Int(Int64Builder::new()),
            "double" => Column::Float(Float64Builder::new()),
            "bool" => Column::Bool(BooleanBuilder::new()),
            "timestamp" => Column::Ts(TimestampMicrosecondBuilder::new()),
            "list<string>" => Column::Strs(ListBuilder::new(StringBuilder::new())),
            "list<int>" => Column::Ints(ListBuilder::new(Int64Builder::new())),
            "list<double>" => Column::Floats(ListBuilder::new(Float64Builder::new())),
            _ => Column::Str(StringBuilder::new()),
        }
    }

    fn push(&mut self, cell: &Cell) {
        match (self, cell) {
            (Column::Str(b), Cell::Str(s)) => b.append_value(s),
            (Column::Str(b), _) => b.append_null(),
            (Column::Int(b), Cell::Int(v)) => b.append_value(*v),
            (Column::Int(b), _) => b.append_null(),
            (Column::Float(b), Cell::Float(v)) => b.append_value(*v),
            (Column::Float(b), Cell::Int(v)) => b.append_value(*v as f64),
            (Column::Float(b), _) => b.append_null(),
            (Column::Bool(b), Cell::Bool(v)) => b.append_value(*v),
            (Column::Bool(b), _) => b.append_null(),
            (Column::Ts(b), Cell::Ts(v)) => b.append_value(*v),
            (Column::Ts(b), _) => b.append_null(),
            (Column::Strs(b), Cell::Strs(v)) => {
                for s in v {
                    b.values().append_value(s);
                }
                b.append(true);
            }
            (Column::Strs(b), _) => b.append(false),
            (Column::Ints(b), Cell::Ints(v)) => {
                for s in v {
                    b.values().append_value(*s);
                }
                b.append(true);
            }
            (Column::Ints(b), _) => b.append(false),
            (Column::Floats(b), Cell::Floats(v)) => {
                for s in v {
                    b.values().append_value(*s);
                }
                b.append(true);
            }
            (Column::Floats(b), _) => b.append(false),
        }
    }

    fn finish(self) -> ArrayRef {
        match self {
            Column::Str(mut b) => Arc::new(b.finish()),
            Column::Int(mut b) => Arc::new(b.finish()),
            Column::Float(mut b) => Arc::new(b.finish()),
            Column::Bool(mut b) => Arc::new(b.finish()),
            Column::Ts(mut b) => Arc::new(b.finish()),
            Column::Strs(mut b) => Arc::new(b.finish()),
            Column::Ints(mut b) => Arc::new(b.finish()),
            Column::Floats(mut b) => Arc::new(b.finish()),
        }
    }
}

/// Types a text cell (CSV). Empty is null.
fn from_text(text: &str, field: &FieldPlan) -> Result<Cell, String> {
    if text.is_empty() {
        return Ok(Cell::Null);
    }
    let list = |t: &str| -> Result<Vec<String>, String> {
        if t.trim_start().starts_with('[') {
            serde_json::from_str::<Vec<Value>>(t)
                .map_err(|e| format!("not a JSON list: {e}"))
                .map(|items| {
                    items
                        .into_iter()
                        .map(|v| match v {
                            Value::String(s) => s,
                            other => other.to_string(),
                        })
                        .collect()
                })
        } else {
            Ok(t.split('|').map(str::to_string).collect())
        }
    };
    Ok(match field.ty.as_str() {
        "int" => Cell::Int(
            text.trim()
                .parse()
                .map_err(|_| format!("`{text}` is not an int"))?,
        ),
        "double" => Cell::Float(
            text.trim()
                .parse()
                .map_err(|_| format!("`{text}` is not a double"))?,
        ),
        "bool" => Cell::Bool(match text.trim().to_ascii_lowercase().as_str() {
            "true" | "1" => true,
            "false" | "0" => false,
            _ => return Err(format!("`{text}` is not a bool")),
        }),
        "timestamp" => Cell::Ts(
            time::check_timestamp(text)
                .map_err(|why| format!("`{text}` is not a timestamp: {why}"))?,
        ),
        "list<string>" => Cell::Strs(list(text)?),
        "list<int>" => Cell::Ints(
            list(text)?
                .iter()
                .map(|s| s.trim().parse().map_err(|_| format!("`{s}` is not an int")))
                .collect::<Result<_, _>>()?,
        ),
        "list<double>" => Cell::Floats(
            list(text)?
                .iter()
                .map(|s| {
                    s.trim()
                        .parse()
                        .map_err(|_| format!("`{s}` is not a double"))
                })
                .collect::<Result<_, _>>()?,
        ),
        _ => Cell::Str(text.to_string()),
    })
}

/// Why a value outside a field's closed domain is a bad row.
fn outside_domain(value: &str, field: &str, values: &[String]) -> String {
    format!(
        "`{value}` is not one of the values of `{field}` ({})",
        values.join(", ")
    )
}

/// "an int", "a timestamp", "a list<string>".
fn a_type(ty: &str) -> String {
    if ty.starts_with("int") {
        format!("an {ty}")
    } else {
        format!("a {ty}")
    }
}

/// Types a JSON value (JSONL). Strict: a number is not a string.
fn from_json(value: &Value, field: &FieldPlan) -> Result<Cell, String> {
    let wrong = || format!("{value} is not {}", a_type(&field.ty));
    Ok(match (field.ty.as_str(), value) {
        (_, Value::Null) => Cell::Null,
        ("int", Value::Number(n)) => Cell::Int(n.as_i64().ok_or_else(wrong)?),
        ("double", Value::Number(n)) => Cell::Float(n.as_f64().ok_or_else(wrong)?),
        ("bool", Value::Bool(b)) => Cell::Bool(*b),
        ("timestamp", Value::String(s)) => Cell::Ts(
            time::check_timestamp(s).map_err(|why| format!("{value} is not a timestamp: {why}"))?,
        ),
        ("string", Value::String(s)) => Cell::Str(s.clone()),
        ("list<string>", Value::Array(items)) => Cell::Strs(
            items
                .iter()
                .map(|v| v.as_str().map(str::to_string).ok_or_else(wrong))
                .collect::<Result<_, _>>()?,
        ),
        ("list<int>", Value::Array(items)) => Cell::Ints(
            items
                .iter()
                .map(|v| v.as_i64().ok_or_else(wrong))
                .collect::<Result<_, _>>()?,
        ),
        ("list<double>", Value::Array(items)) => Cell::Floats(
            items
                .iter()
                .map(|v| v.as_f64().ok_or_else(wrong))
                .collect::<Result<_, _>>()?,
        ),
        _ => return Err(wrong()),
    })
}

/// Reads rows into typed columns, checking keys and closed domains.
struct Builder<'a> {
    schema: &'a SchemaPlan,
    names: Vec<&'a String>,
    columns: Vec<Column>,
    key: Option<usize>,
    keys: HashSet<String>,
    report: SourceReport,
    newest: Option<Micros>,
    timestamp_columns: Vec<usize>,
    /// The source's name, for diagnostics.
    source: String,
    diagnostics: Vec<RunDiagnostic>,
    /// Unknown columns already reported: once per source, not per file of
    /// a folder of exports that all carry it.
    unknown: HashSet<String>,
}

impl<'a> Builder<'a> {
    fn new(schema_name: &str, schema: &'a SchemaPlan) -> Builder<'a> {
        let names: Vec<&String> = schema.fields.keys().collect();
        let key = schema
            .key
            .as_ref()
            .and_then(|k| names.iter().position(|n| *n == k));
        // Freshness reads the event time of an event schema, else every
        // timestamp field.
        let timestamp_columns = names
            .iter()
            .enumerate()
            .filter(|(_, n)| match &schema.timestamp {
                Some(t) => *n == &t,
                None => schema.fields[**n].ty == "timestamp",
            })
            .map(|(i, _)| i)
            .collect();
        Builder {
            schema,
            columns: schema.fields.values().map(|f| Column::new(&f.ty)).collect(),
            names,
            key,
            keys: HashSet::new(),
            report: SourceReport {
                schema: schema_name.to_string(),
                ..SourceReport::default()
            },
            newest: None,
            timestamp_columns,
            source: String::new(),
            diagnostics: Vec::new(),
            unknown: HashSet::new(),
        }
    }

    fn bad(&mut self, at: &str, reason: String) {
        self.bad_rows(at, reason, 1);
    }

    /// `n` bad rows with one reason (the lines a broken quote swallowed).
    fn bad_rows(&mut self, at: &str, reason: String, n: u64) {
        self.report.bad_rows += n;
        if self.report.bad_row_samples.len() < BAD_ROW_SAMPLES {
            self.report.bad_row_samples.push(format!("{at}: {reason}"));
        }
    }

    /// A column or key of `shown` that no field declares (R0005), with the
    /// closest field when one is near; once per source.
    fn unknown_column(&mut self, shown: &str, at: &str, what: &str, name: &str) {
        if !self.unknown.insert(name.to_string()) {
            return;
        }
        let fields = self.names.iter().map(|n| n.as_str());
        let help = match did_you_mean(name, fields) {
            Some(best) => format!(
                "did you mean `{best}`? rename the {what} in the data or the field in the schema"
            ),
            None => format!(
                "declare a field `{name}` in schema `{}` to read it, or leave it out of the file",
                self.report.schema
            ),
        };
        self.diagnostics.push(
            RunDiagnostic::new(
                codes::run::UNKNOWN_COLUMN,
                format!(
                    "source `{}`: {shown} has a {what} `{name}` that no field of schema `{}` declares",
                    self.source, self.report.schema
                ),
            )
            .at(at)
            .help(help),
        );
    }

    /// A file without rows (R0007).
    fn empty_file(&mut self, shown: &str, what: &str) {
        self.diagnostics.push(
            RunDiagnostic::new(
                codes::run::EMPTY_DATA_FILE,
                format!("source `{}`: {shown} {what}", self.source),
            )
            .at(shown)
            .help("rerun the export that writes the file, or remove it from the source"),
        );
    }

    /// Adds one row of cells (one per schema field), or counts it as bad.
    fn row(&mut self, at: &str, cells: Vec<Cell>) {
        for (i, cell) in cells.iter().enumerate() {
            let field = &self.schema.fields[self.names[i]];
            if let (Some(values), Cell::Str(s)) = (&field.values, cell)
                && !values.contains(s)
            {
                return self.bad(at, outside_domain(s, self.names[i], values));
            }
        }
        if let Some(k) = self.key {
            match &cells[k] {
                Cell::Str(key) => {
                    if !self.keys.insert(key.clone()) {
                        return self.bad(at, format!("duplicate key `{key}`"));
                    }
                }
                Cell::Null => return self.bad(at, format!("missing key `{}`", self.names[k])),
                other => {
                    let key = format!("{other:?}");
                    if !self.keys.insert(key.clone()) {
                        return self.bad(at, format!("duplicate key {key}"));
                    }
                }
            }
        }
        for &i in &self.timestamp_columns {
            if let Cell::Ts(t) = cells[i] {
                self.newest = Some(self.newest.map_or(t, |n| n.max(t)));
            }
        }
        for (col, cell) in self.columns.iter_mut().zip(&cells) {
            col.push(cell);
        }
        self.report.rows += 1;
    }

    fn finish(
        self,
    ) -> (
        Vec<ArrayRef>,
        SourceReport,
        Option<Micros>,
        Vec<RunDiagnostic>,
    ) {
        (
            self.columns.into_iter().map(Column::finish).collect(),
            self.report,
            self.newest,
            self.diagnostics,
        )
    }
}

/// Reads one source. `now` is for the freshness check.
pub fn read(
    root: &Path,
    name: &str,
    source: &SourcePlan,
    schema: &SchemaPlan,
    now: Micros,
) -> Result<Loaded, String> {
    let (files, link_problems) = files::resolve(root, name, &source.path, source.format.as_str())?;
    let mut b = Builder::new(&source.schema, schema);
    b.source = name.to_string();
    b.diagnostics = link_problems;
    let mut present = vec![false; b.names.len()];
    let mut parquet_files = Vec::new();
    for file in &files {
        let shown = file
            .strip_prefix(root)
            .unwrap_or(file)
            .to_string_lossy()
            .replace('\\', "/");
        b.report.files.push(shown.clone());
        let format = files::format_of(file).unwrap_or_else(|| source.format.to_string());
        match format.as_str() {
            "csv" => read_csv(file, &shown, &mut b, &mut present)?,
            "parquet" => {
                let (decoded, columns) = read_parquet(file, &shown, schema, &mut present)?;
                for column in columns.iter().filter(|c| !schema.fields.contains_key(*c)) {
                    b.unknown_column(&shown, &shown, "column", column);
                }
                if decoded.iter().all(|d| d.batch.num_rows() == 0) {
                    b.empty_file(&shown, "holds no rows");
                }
                parquet_files.push((shown.clone(), decoded));
            }
            _ => read_jsonl(file, &shown, &mut b, &mut present)?,
        }
    }
    // After the text files, so a key they hold and a Parquet row repeats is
    // reported on the Parquet row.
    let mut parquet_batches = Vec::new();
    for (shown, decoded) in parquet_files {
        parquet_batches.push(check_parquet_rows(&mut b, &shown, decoded)?);
    }
    let arrow = arrow_schema(schema);
    let (columns, mut report, mut newest, diagnostics) = b.finish();
    let mut batches = Vec::new();
    if columns.first().map(|c| c.len()).unwrap_or(0) > 0 || parquet_batches.is_empty() {
        batches.push(RecordBatch::try_new(arrow.clone(), columns).map_err(|e| e.to_string())?);
    }
    for batch in parquet_batches.into_iter().flatten() {
        report.rows += batch.num_rows() as u64;
        newest = newest.max(newest_in(&batch, schema));
        batches.push(batch);
    }
    report.newest = newest.map(time::format_timestamp);
    report.freshness = match (
        source.max_age.as_deref().and_then(time::parse_duration),
        newest,
    ) {
        (Some(max), Some(n)) if now - n > max => "stale".into(),
        (Some(_), Some(_)) => "fresh".into(),
        _ => "unknown".into(),
    };
    Ok(Loaded {
        name: name.to_string(),
        schema: source.schema.clone(),
        precedence: source.precedence,
        present: schema
            .fields
            .keys()
            .zip(&present)
            .filter(|(_, p)| **p)
            .map(|(n, _)| n.clone())
            .collect(),
        batches,
        report,
        diagnostics,
    })
}

fn open(file: &Path) -> Result<std::fs::File, String> {
    std::fs::File::open(file).map_err(|e| format!("{}: {e}", file.display()))
}

fn read_csv(
    file: &Path,
    shown: &str,
    b: &mut Builder<'_>,
    present: &mut [bool],
) -> Result<(), String> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(std::io::BufReader::new(open(file)?));
    let headers = reader
        .headers()
        .map_err(|e| format!("{shown}: {e}"))?
        .clone();
    if headers.is_empty() {
        b.empty_file(shown, "is empty");
        return Ok(());
    }
    // A column named twice: which one holds the field is a guess, so the
    // file is not read.
    let names: Vec<&str> = headers.iter().map(str::trim).collect();
    if let Some((first, second)) = (0..names.len())
        .flat_map(|j| (0..j).map(move |i| (i, j)))
        .find(|&(i, j)| names[i] == names[j] && !names[i].is_empty())
    {
        b.diagnostics.push(
            RunDiagnostic::new(
                codes::run::DUPLICATE_HEADER,
                format!(
                    "source `{}`: the header of {shown} names the column `{}` twice (columns {} and {}); the file is not read",
                    b.source,
                    names[first],
                    first + 1,
                    second + 1
                ),
            )
            .at(format!("{shown}:1"))
            .help("rename or remove one of the two columns"),
        );
        return Ok(());
    }
    let unknown: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| !n.is_empty() && !b.names.iter().any(|f| f.as_str() == *n))
        .collect();
    for name in unknown {
        b.unknown_column(shown, &format!("{shown}:1"), "column", name);
    }
    // For each schema field, its column in this file.
    let index: Vec<Option<usize>> = b
        .names
        .iter()
        .map(|n| names.iter().position(|h| *h == n.as_str()))
        .collect();
    for (i, idx) in index.iter().enumerate() {
        present[i] |= idx.is_some();
    }
    let mut records = 0u64;
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                records += 1;
                let line = record.position().map(|p| p.line()).unwrap_or(0);
                let at = format!("{shown}:{line}");
                if let Some(opened) = swallowing_quote(&record, headers.len(), line) {
                    // The record and every line it took in were rows.
                    // (A quote that runs to the end of the file holds the
                    // file's last line break too: not a line.)
                    let lines: u64 = record
                        .iter()
                        .map(|f| f.trim_end_matches(['\r', '\n']).matches('\n').count() as u64)
                        .sum();
                    b.bad_rows(
                        &format!("{shown}:{opened}"),
                        format!(
                            "a quoted field opens here and is not closed on its line: {} lines read as one field",
                            lines + 1
                        ),
                        lines + 1,
                    );
                    b.diagnostics.push(
                        RunDiagnostic::new(
                            codes::run::UNTERMINATED_QUOTE,
                            match lines {
                                0 => format!(
                                    "source `{}`: a quoted field of {shown} opens on line {opened} and is never closed",
                                    b.source
                                ),
                                n => format!(
                                    "source `{}`: a quoted field of {shown} opens on line {opened} and is not closed there; the {n} line{} after it {} read as part of that field",
                                    b.source,
                                    if n == 1 { "" } else { "s" },
                                    if n == 1 { "was" } else { "were" }
                                ),
                            },
                        )
                        .at(format!("{shown}:{opened}"))
                        .help("close the quote, or double a quote that belongs inside a quoted field (`\"\"`); every delivery waits until the file reads cleanly"),
                    );
                    continue;
                }
                if record.len() != headers.len() {
                    b.bad(
                        &at,
                        format!("{} fields, the header has {}", record.len(), headers.len()),
                    );
                    continue;
                }
                let mut cells = Vec::with_capacity(index.len());
                let mut error = None;
                for (i, idx) in index.iter().enumerate() {
                    let text = idx.and_then(|j| record.get(j)).unwrap_or("");
                    match from_text(text, &b.schema.fields[b.names[i]]) {
                        Ok(c) => cells.push(c),
                        Err(e) => {
                            error = Some(format!("`{}`: {e}", b.names[i]));
                            break;
                        }
                    }
                }
                match error {
                    Some(e) => b.bad(&at, e),
                    None => b.row(&at, cells),
                }
            }
            Err(e) => {
                records += 1;
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                b.bad(&format!("{shown}:{line}"), e.to_string());
                if !matches!(e.kind(), csv::ErrorKind::Utf8 { .. }) {
                    return Err(format!("{shown}:{line}: {e}"));
                }
            }
        }
    }
    if records == 0 {
        b.empty_file(shown, "holds only a header");
    }
    Ok(())
}

/// The line where a quote opened that swallowed the lines after it, when
/// `record` (starting on `line`) looks like one: a multi-line record with
/// the wrong number of fields, or a multi-line field that holds a whole
/// row (as many separators as the header has). A genuine multi-line value
/// (an address) has neither.
fn swallowing_quote(record: &csv::StringRecord, header_len: usize, line: u64) -> Option<u64> {
    let multi = record.iter().position(|f| f.contains('\n'))?;
    let holds_a_row = header_len > 1
        && record.iter().any(|f| {
            f.split('\n')
                .skip(1)
                .any(|l| l.matches(',').count() + 1 >= header_len)
        });
    if record.len() != header_len || holds_a_row {
        let before: u64 = record
            .iter()
            .take(multi)
            .map(|f| f.matches('\n').count() as u64)
            .sum();
        Some(line + before)
    } else {
        None
    }
}

fn read_jsonl(
    file: &Path,
    shown: &str,
    b: &mut Builder<'_>,
    present: &mut [bool],
) -> Result<(), String> {
    use std::io::BufRead;
    let reader = std::io::BufReader::new(open(file)?);
    let mut lines_with_data = 0u64;
    // Keys no field declares, with the first line that holds each.
    let mut unknown: Vec<(String, usize)> = Vec::new();
    // Lines with a key written twice: (first line, key), count.
    let mut duplicated: Option<(usize, String)> = None;
    let mut duplicates = 0u64;
    for (n, line) in reader.lines().enumerate() {
        let at = format!("{shown}:{}", n + 1);
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                lines_with_data += 1;
                b.bad(&at, e.to_string());
                continue;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        lines_with_data += 1;
        let obj = match serde_json::from_str::<Object>(&line) {
            Ok(o) => o,
            Err(e) if e.classify() == serde_json::error::Category::Data => {
                b.bad(&at, "not a JSON object".into());
                continue;
            }
            Err(e) => {
                b.bad(&at, format!("not JSON: {e}"));
                continue;
            }
        };
        if let Some(key) = obj.duplicate {
            duplicates += 1;
            duplicated.get_or_insert((n + 1, key.clone()));
            b.bad(&at, format!("the key `{key}` appears twice"));
            continue;
        }
        let obj = obj.map;
        let mut cells = Vec::with_capacity(b.names.len());
        let mut error = None;
        let mut found = 0;
        for (i, name) in b.names.iter().enumerate() {
            match obj.get(name.as_str()) {
                None => cells.push(Cell::Null),
                Some(v) => {
                    found += 1;
                    present[i] = true;
                    match from_json(v, &b.schema.fields[*name]) {
                        Ok(c) => cells.push(c),
                        Err(e) => {
                            error = Some(format!("`{name}`: {e}"));
                            break;
                        }
                    }
                }
            }
        }
        // Only a line with more keys than it has fields is searched for
        // the others, so the common line costs nothing more.
        if error.is_none() && obj.len() > found {
            for key in obj.keys() {
                if !b.schema.fields.contains_key(key) && !unknown.iter().any(|(k, _)| k == key) {
                    unknown.push((key.clone(), n + 1));
                }
            }
        }
        match error {
            Some(e) => b.bad(&at, e),
            None => b.row(&at, cells),
        }
    }
    for (key, line) in unknown {
        b.unknown_column(shown, &format!("{shown}:{line}"), "key", &key);
    }
    if let Some((line, key)) = duplicated {
        let others = match duplicates {
            1 => String::new(),
            n => format!(" ({n} lines have a key twice)"),
        };
        b.diagnostics.push(
            RunDiagnostic::new(
                codes::run::DUPLICATE_JSON_KEY,
                format!(
                    "source `{}`: line {line} of {shown} has the key `{key}` twice{others}; such lines are bad rows",
                    b.source
                ),
            )
            .at(format!("{shown}:{line}"))
            .help("write each key once per line in the program that writes the file"),
        );
    }
    if lines_with_data == 0 {
        b.empty_file(shown, "holds no JSON lines");
    }
    Ok(())
}

/// A JSON object as read from one line, with the first key it writes
/// twice: `serde_json` keeps the last value of a repeated key silently.
struct Object {
    map: serde_json::Map<String, Value>,
    duplicate: Option<String>,
}

impl<'de> serde::Deserialize<'de> for Object {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Entries;
        impl<'de> serde::de::Visitor<'de> for Entries {
            type Value = Object;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut access: A,
            ) -> Result<Object, A::Error> {
                let mut map = serde_json::Map::new();
                let mut duplicate = None;
                while let Some((key, value)) = access.next_entry::<String, Value>()? {
                    if let Some(_earlier) = map.insert(key.clone(), value) {
                        duplicate.get_or_insert(key);
                    }
                }
                Ok(Object { map, duplicate })
            }
        }
        d.deserialize_map(Entries)
    }
}

/// Batches of one Parquet file, typed, with the rows that did not type.
struct Decoded {
    /// The row number (1-based, in the file) of the batch's first row.
    first_row: usize,
    batch: RecordBatch,
    /// (row in batch, reason): a value that does not convert to its field's
    /// type (a plain cast would make it null) or is outside a closed domain.
    bad: Vec<(usize, String)>,
}

/// Reads a Parquet file and casts its columns to the schema's types. Row
/// groups are decoded on every core (each thread its own reader over a
/// contiguous run of row groups), and come back in file order.
fn read_parquet(
    file: &Path,
    shown: &str,
    schema: &SchemaPlan,
    present: &mut [bool],
) -> Result<(Vec<Decoded>, Vec<String>), String> {
    use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let err = |e: &dyn std::fmt::Display| format!("{shown}: {e}");
    let builder = ParquetRecordBatchReaderBuilder::try_new(open(file)?).map_err(|e| err(&e))?;
    let file_schema = builder.schema().clone();
    let columns: Vec<String> = file_schema
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let group_rows: Vec<usize> = builder
        .metadata()
        .row_groups()
        .iter()
        .map(|g| g.num_rows().max(0) as usize)
        .collect();
    let groups = group_rows.len();
    let target = arrow_schema(schema);
    for (i, field) in target.fields().iter().enumerate() {
        present[i] |= file_schema.field_with_name(field.name()).is_ok();
    }
    let threads = super::engine::cores().clamp(1, groups.max(1));
    let per_thread = groups.div_ceil(threads).max(1);
    let runs: Vec<Vec<usize>> = (0..groups)
        .step_by(per_thread)
        .map(|start| (start..groups.min(start + per_thread)).collect())
        .collect();
    let decode = |row_groups: Vec<usize>| -> Result<Vec<Decoded>, String> {
        let mut next_row = 1 + group_rows[..row_groups.first().copied().unwrap_or(0)]
            .iter()
            .sum::<usize>();
        let reader = ParquetRecordBatchReaderBuilder::try_new(open(file)?)
            .map_err(|e| err(&e))?
            .with_row_groups(row_groups)
            .with_batch_size(65_536)
            .build()
            .map_err(|e| err(&e))?;
        let mut out = Vec::new();
        for batch in reader {
            let batch = batch.map_err(|e| err(&e))?;
            let mut columns = Vec::new();
            let mut bad = Vec::new();
            for (field, (name, plan)) in target.fields().iter().zip(&schema.fields) {
                let Some(col) = batch.column_by_name(field.name()) else {
                    columns.push(new_null_array(field.data_type(), batch.num_rows()));
                    continue;
                };
                // A zoned timestamp becomes its UTC wall time.
                let typed = cast(col, field.data_type())
                    .map_err(|e| err(&format!("`{}`: {e}", field.name())))?;
                bad.extend(untyped_rows(col, &typed, name, plan));
                columns.push(typed);
            }
            let rows = batch.num_rows();
            out.push(Decoded {
                first_row: next_row,
                batch: RecordBatch::try_new(target.clone(), columns).map_err(|e| err(&e))?,
                bad,
            });
            next_row += rows;
        }
        Ok(out)
    };
    if runs.len() <= 1 {
        return Ok((
            decode(runs.into_iter().next().unwrap_or_default())?,
            columns,
        ));
    }
    let results: Vec<Result<Vec<Decoded>, String>> = runs.into_par_iter().map(decode).collect();
    let mut out = Vec::new();
    for r in results {
        out.extend(r?);
    }
    Ok((out, columns))
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

/// The (batch, row) of every row whose key an earlier row already has,
/// rows in `bad` aside. Millions of event ids are the common case, so this
/// is a radix partition: every key's hash goes to one of 256 buckets (in
/// file order), then each bucket is checked with a set small enough for the
/// cache, the buckets shared among the cores.
fn repeated_keys(
    decoded: &[Decoded],
    bad: &[std::collections::BTreeMap<usize, String>],
    k: usize,
) -> Vec<(usize, usize)> {
    use std::collections::HashMap;
    use std::hash::BuildHasher;
    const BUCKETS: usize = 256;
    let hasher = foldhash::fast::FixedState::with_seed(0);
    // Strings are read in place; other key types through their text.
    let owned: Vec<Option<Vec<String>>> = decoded
        .iter()
        .map(|d| {
            let col = d.batch.column(k);
            (col.data_type() != &DataType::Utf8).then(|| {
                (0..col.len())
                    .map(|i| {
                        datafusion::arrow::util::display::array_value_to_string(col, i)
                            .unwrap_or_default()
                    })
                    .collect()
            })
        })
        .collect();
    let key = |batch: usize, i: usize| -> Option<&str> {
        let col = decoded[batch].batch.column(k);
        if col.is_null(i) || bad[batch].contains_key(&i) {
            return None;
        }
        match &owned[batch] {
            Some(o) => Some(o[i].as_str()),
            None => Some(col.as_string::<i32>().value(i)),
        }
    };
    let parts = super::engine::cores().clamp(1, BUCKETS);
    // 1. Partition: (hash, batch, row) per bucket, in file order; each core
    //    hashes a contiguous run of batches, and the runs join in order.
    let partition = |batches: std::ops::Range<usize>| {
        let mut buckets: Vec<Vec<(u64, u32, u32)>> = vec![Vec::new(); BUCKETS];
        for bi in batches {
            for i in 0..decoded[bi].batch.num_rows() {
                if let Some(text) = key(bi, i) {
                    let h = hasher.hash_one(text);
                    buckets[(h >> 56) as usize].push((h, bi as u32, i as u32));
                }
            }
        }
        buckets
    };
    let per_part = decoded.len().div_ceil(parts).max(1);
    let runs: Vec<Vec<Vec<(u64, u32, u32)>>> = (0..decoded.len().div_ceil(per_part))
        .into_par_iter()
        .map(|p| partition(p * per_part..decoded.len().min((p + 1) * per_part)))
        .collect();
    let mut buckets: Vec<Vec<(u64, u32, u32)>> = vec![Vec::new(); BUCKETS];
    for run in runs {
        for (bucket, part) in buckets.iter_mut().zip(run) {
            bucket.extend(part);
        }
    }
    // 2. Per bucket, the first row of each key stays; a later row whose
    //    hash matches is compared by its text.
    let check = |bucket: &[(u64, u32, u32)]| -> Vec<(usize, usize)> {
        let mut first: HashMap<u64, (u32, u32), foldhash::fast::FixedState> =
            HashMap::with_capacity_and_hasher(bucket.len(), hasher.clone());
        let mut colliding: std::collections::HashSet<&str> = std::collections::HashSet::new();
        let mut repeated = Vec::new();
        for &(h, bi, i) in bucket {
            match first.get(&h) {
                None => {
                    first.insert(h, (bi, i));
                }
                Some(&(fb, fi)) => {
                    // Texts are read only on a hash match: reading every
                    // key again would be a cache miss per row.
                    let (bi, i) = (bi as usize, i as usize);
                    let text = key(bi, i).unwrap_or_default();
                    let earlier = key(fb as usize, fi as usize).unwrap_or_default();
                    // Equal hashes of different keys are rare enough for a
                    // plain set of the texts that differ from the first.
                    if text == earlier || !colliding.insert(text) {
                        repeated.push((bi, i));
                    }
                }
            }
        }
        repeated
    };
    let mut all: Vec<(usize, usize)> = buckets
        .par_iter()
        .flat_map_iter(|bucket| check(bucket))
        .collect();
    all.sort_unstable();
    all
}

/// The checks of text rows, for a Parquet file's decoded batches in file
/// order: untyped values (found while decoding) and a missing or duplicate
/// key. Bad rows are counted and sampled (`file:row N: reason`) and left
/// out of the batches returned.
fn check_parquet_rows(
    b: &mut Builder,
    shown: &str,
    decoded: Vec<Decoded>,
) -> Result<Vec<RecordBatch>, String> {
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
    if let Some(k) = b.key {
        let key_name = b.names[k].clone();
        let text = |col: &ArrayRef, i: usize| {
            datafusion::arrow::util::display::array_value_to_string(col, i).unwrap_or_default()
        };
        // Missing keys, and keys the source's text files already hold.
        for (d, bad) in decoded.iter().zip(bad_rows.iter_mut()) {
            let col = d.batch.column(k);
            if col.null_count() == 0 && b.keys.is_empty() {
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
        // Keys repeated within the Parquet rows: the first stays.
        for (batch, i) in repeated_keys(&decoded, &bad_rows, k) {
            let key = text(decoded[batch].batch.column(k), i);
            bad_rows[batch].insert(i, format!("duplicate key `{key}`"));
        }
    }
    let mut out = Vec::new();
    for (d, bad) in decoded.into_iter().zip(bad_rows) {
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

fn newest_in(batch: &RecordBatch, schema: &SchemaPlan) -> Option<Micros> {
    use datafusion::arrow::array::TimestampMicrosecondArray;
    let mut newest: Option<Micros> = None;
    for (name, field) in &schema.fields {
        let wanted = match &schema.timestamp {
            Some(t) => t == name,
            None => field.ty == "timestamp",
        };
        if !wanted {
            continue;
        }
        if let Some(col) = batch
            .column_by_name(name)
            .and_then(|c| c.as_any().downcast_ref::<TimestampMicrosecondArray>())
            && let Some(max) = datafusion::arrow::compute::max(col)
        {
            newest = Some(newest.map_or(max, |n| n.max(max)));
        }
    }
    newest
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use datafusion::parquet::file::properties::WriterProperties;

    use super::*;

    fn field(ty: &str, values: Option<Vec<String>>) -> FieldPlan {
        FieldPlan {
            ty: ty.into(),
            values,
            identity: None,
            labels: vec![],
        }
    }

    /// A schema keyed by `id`.
    fn schema_of(
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

    /// The source of `t.parquet` in the project folder.
    fn parquet_source(max_age: Option<&str>) -> SourcePlan {
        SourcePlan {
            schema: "t".into(),
            path: "t.parquet".into(),
            format: crate::plan::SourceFormat::Parquet,
            max_age: max_age.map(String::from),
            precedence: 0,
            fingerprint: String::new(),
        }
    }

    fn write_parquet(dir: &Path, batch: &RecordBatch, props: Option<WriterProperties>) {
        let file = std::fs::File::create(dir.join("t.parquet")).expect("create");
        let mut writer =
            datafusion::parquet::arrow::ArrowWriter::try_new(file, batch.schema(), props)
                .expect("writer");
        writer.write(batch).expect("write");
        writer.close().expect("close");
    }

    #[test]
    fn types_text_cells() {
        let f = |ty: &str| FieldPlan {
            ty: ty.into(),
            values: None,
            identity: None,
            labels: vec![],
        };
        assert_eq!(from_text("12", &f("int")), Ok(Cell::Int(12)));
        assert!(from_text("twelve", &f("int")).is_err());
        assert_eq!(from_text("", &f("string")), Ok(Cell::Null));
        assert_eq!(
            from_text("a|b", &f("list<string>")),
            Ok(Cell::Strs(vec!["a".into(), "b".into()]))
        );
        assert_eq!(
            from_text("[1,2]", &f("list<int>")),
            Ok(Cell::Ints(vec![1, 2]))
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
        let schema = schema_of(
            "account",
            None,
            vec![
                ("id", field("string", None)),
                ("n", field("int", None)),
                (
                    "tier",
                    field("string", Some(vec!["gold".into(), "silver".into()])),
                ),
            ],
        );
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

    /// A folder for one test, removed when dropped.
    struct Scratch(std::path::PathBuf);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            let dir =
                std::env::temp_dir().join(format!("accord-sources-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("mkdir");
            Scratch(dir)
        }

        fn write(&self, path: &str, text: &str) {
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

    /// A source of `path` (a file, folder or glob) of `format`.
    fn text_source(path: &str, format: &str) -> SourcePlan {
        SourcePlan {
            path: path.into(),
            format: crate::plan::SourceFormat::parse(format).expect("a source format"),
            ..parquet_source(None)
        }
    }

    /// The account schema of the text tests: `id`, `name`, `employees`.
    fn accounts() -> SchemaPlan {
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

    fn codes_of(loaded: &Loaded) -> Vec<(&str, Option<&str>)> {
        loaded
            .diagnostics
            .iter()
            .map(|d| (d.code.as_str(), d.location.as_deref()))
            .collect()
    }

    /// A quote opened and never closed swallows the rest of the file into
    /// one field: reported where it opened (R0001), every swallowed line a
    /// bad row, instead of "1 bad row".
    #[test]
    fn an_unterminated_quote_is_reported_where_it_opened() {
        let dir = Scratch::new("quote");
        dir.write(
            "t.csv",
            "id,name,employees\na1,Acme,5\na2,\"Globex Corp,7\na3,Initech,9\na4,Umbrella,11\n",
        );
        let loaded =
            read(&dir.0, "t", &text_source("t.csv", "csv"), &accounts(), 0).expect("reads");
        assert_eq!(codes_of(&loaded), vec![("R0001", Some("t.csv:3"))]);
        assert_eq!(loaded.report.rows, 1);
        assert_eq!(
            loaded.report.bad_rows, 3,
            "{:?}",
            loaded.report.bad_row_samples
        );
        // Closed by a later quote: the record has the wrong arity.
        dir.write(
            "t.csv",
            "id,name,employees\na1,\"Acme,5\na2,Globex,7\na3,\"Initech\",9\na4,Umbrella,11\n",
        );
        let loaded =
            read(&dir.0, "t", &text_source("t.csv", "csv"), &accounts(), 0).expect("reads");
        assert_eq!(codes_of(&loaded), vec![("R0001", Some("t.csv:2"))]);
        assert_eq!(loaded.report.rows, 1, "a4 only");
        assert_eq!(loaded.report.bad_rows, 3);
    }

    /// A quoted value that spans lines on purpose (an address) is a value.
    #[test]
    fn a_multi_line_value_is_not_a_broken_quote() {
        let dir = Scratch::new("multiline");
        dir.write(
            "t.csv",
            "id,name,employees\na1,\"Acme\nHead Office\",5\na2,Globex,7\n",
        );
        let loaded =
            read(&dir.0, "t", &text_source("t.csv", "csv"), &accounts(), 0).expect("reads");
        assert!(loaded.diagnostics.is_empty(), "{:?}", loaded.diagnostics);
        assert_eq!((loaded.report.rows, loaded.report.bad_rows), (2, 0));
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
        let loaded = read(&dir.0, "t", &source, &accounts(), 0).expect("reads");
        assert_eq!(loaded.report.rows, 3, "{:?}", loaded.report.files);
        assert!(loaded.diagnostics.is_empty(), "{:?}", loaded.diagnostics);

        std::os::unix::fs::symlink("../gone.csv", dir.0.join("data/gone.csv")).expect("link");
        std::os::unix::fs::symlink(".", dir.0.join("data/again")).expect("link");
        // An editor's lock file is a hidden dangling link: skipped.
        std::os::unix::fs::symlink("nobody@host", dir.0.join("data/.#a.csv")).expect("link");
        let loaded = read(&dir.0, "t", &source, &accounts(), 0).expect("reads");
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
            read(&dir.0, "t", &text_source("twice", "csv"), &accounts(), 0).expect("reads");
        assert_eq!(codes_of(&loaded), vec![("R0008", Some("twice/t.csv:1"))]);
        assert_eq!(loaded.report.rows, 0);

        dir.write("typo/t.csv", "id,name,employes\na1,Acme,5\n");
        let loaded = read(&dir.0, "t", &text_source("typo", "csv"), &accounts(), 0).expect("reads");
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
            read(&dir.0, "t", &text_source("json", "jsonl"), &accounts(), 0).expect("reads");
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
            read(&dir.0, "t", &text_source("empty/*", "csv"), &accounts(), 0).expect("reads");
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
