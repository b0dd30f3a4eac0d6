//! Typing values into Arrow columns: a text cell (CSV) or a JSON value
//! (JSONL) and the field it belongs to in, a typed `Cell` (or why it does
//! not type) out; the schema's Arrow types; and the `Builder` that pushes
//! rows of cells into one column per field, checking keys and closed
//! domains, counting and sampling bad rows.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BooleanBuilder, Float64Builder, Int64Builder, ListBuilder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use serde_json::Value;

use super::BAD_ROW_SAMPLES;
use super::keys::{KeyHasher, KeySet};
use super::spill::{SPILL_ROWS, Spill};
use crate::diag::{codes, did_you_mean};
use crate::plan::{FieldPlan, SchemaPlan};
use crate::run::report::{RunDiagnostic, SourceReport};
use crate::time::{self, Micros};

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

/// A typed cell, before it goes into a column. A string borrows the text
/// it was read from where it can: a CSV field or a JSON string is copied
/// once, into its column.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Cell<'a> {
    Null,
    Str(Cow<'a, str>),
    Int(i64),
    Float(f64),
    Bool(bool),
    Ts(Micros),
    Strs(Vec<String>),
    Ints(Vec<i64>),
    Floats(Vec<f64>),
}

impl Cell<'_> {
    /// The cell with its text copied, when what it borrows from goes first.
    pub(super) fn into_owned(self) -> Cell<'static> {
        match self {
            Cell::Null => Cell::Null,
            Cell::Str(s) => Cell::Str(Cow::Owned(s.into_owned())),
            Cell::Int(v) => Cell::Int(v),
            Cell::Float(v) => Cell::Float(v),
            Cell::Bool(v) => Cell::Bool(v),
            Cell::Ts(v) => Cell::Ts(v),
            Cell::Strs(v) => Cell::Strs(v),
            Cell::Ints(v) => Cell::Ints(v),
            Cell::Floats(v) => Cell::Floats(v),
        }
    }
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

    fn push(&mut self, cell: &Cell<'_>) {
        match (self, cell) {
            (Column::Str(b), Cell::Str(s)) => b.append_value(s.as_ref()),
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

    /// The text of row `row` of a string column (the key of a row found
    /// repeated, for its sample).
    fn text(&self, row: usize) -> String {
        match self {
            Column::Str(b) => {
                let offsets = b.offsets_slice();
                let (from, to) = (offsets[row] as usize, offsets[row + 1] as usize);
                String::from_utf8_lossy(&b.values_slice()[from..to]).into_owned()
            }
            _ => String::new(),
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
pub(super) fn from_text<'t>(text: &'t str, field: &FieldPlan) -> Result<Cell<'t>, String> {
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
        _ => Cell::Str(Cow::Borrowed(text)),
    })
}

/// Why a value outside a field's closed domain is a bad row.
pub(super) fn outside_domain(value: &str, field: &str, values: &[String]) -> String {
    format!(
        "`{value}` is not one of the values of `{field}` ({})",
        values.join(", ")
    )
}

/// "an int", "a timestamp", "a list<string>".
pub(super) fn a_type(ty: &str) -> String {
    if ty.starts_with("int") {
        format!("an {ty}")
    } else {
        format!("a {ty}")
    }
}

/// Types a JSON value (JSONL). Strict: a number is not a string.
pub(super) fn from_json<'v>(value: &'v Value, field: &FieldPlan) -> Result<Cell<'v>, String> {
    let wrong = || format!("{value} is not {}", a_type(&field.ty));
    Ok(match (field.ty.as_str(), value) {
        (_, Value::Null) => Cell::Null,
        ("int", Value::Number(n)) => Cell::Int(n.as_i64().ok_or_else(wrong)?),
        ("double", Value::Number(n)) => Cell::Float(n.as_f64().ok_or_else(wrong)?),
        ("bool", Value::Bool(b)) => Cell::Bool(*b),
        ("timestamp", Value::String(s)) => Cell::Ts(
            time::check_timestamp(s).map_err(|why| format!("{value} is not a timestamp: {why}"))?,
        ),
        ("string", Value::String(s)) => Cell::Str(Cow::Borrowed(s)),
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

/// The key of row `i` of a typed key column as [`Builder::row`] keeps it
/// in its set of keys: a string as it is, another value as its `Cell`.
pub(super) fn key_text(col: &ArrayRef, i: usize) -> String {
    use datafusion::arrow::array::{AsArray, BooleanArray};
    use datafusion::arrow::datatypes::{Float64Type, Int64Type, TimestampMicrosecondType};
    let cell = match col.data_type() {
        DataType::Utf8 => return col.as_string::<i32>().value(i).to_string(),
        DataType::Int64 => Cell::Int(col.as_primitive::<Int64Type>().value(i)),
        DataType::Float64 => Cell::Float(col.as_primitive::<Float64Type>().value(i)),
        DataType::Boolean => Cell::Bool(
            col.as_any()
                .downcast_ref::<BooleanArray>()
                .is_some_and(|b| b.value(i)),
        ),
        DataType::Timestamp(..) => {
            Cell::Ts(col.as_primitive::<TimestampMicrosecondType>().value(i))
        }
        _ => {
            return datafusion::arrow::util::display::array_value_to_string(col, i)
                .unwrap_or_default();
        }
    };
    format!("{cell:?}")
}

/// What typing a row needs of its schema: the fields in column order, the
/// key's column and the hash the key set knows keys by. Shared by the
/// builder and the cores that type parts of a file for it ([`Part`]).
#[derive(Clone)]
pub(super) struct Fields<'a> {
    /// In name order (the schema's), so a name can be searched for.
    pub(super) names: Vec<&'a String>,
    pub(super) fields: Vec<&'a FieldPlan>,
    pub(super) key: Option<usize>,
    hasher: KeyHasher,
}

/// A good row's key, for the key set: its hash, and its text when it is
/// not a string (a string key is read back from its column).
type RowKey = (u128, Option<String>);

impl Fields<'_> {
    /// A row's closed domains and key: why the row is bad, or its key
    /// (`None` where the schema has none).
    fn check(&self, cells: &[Cell<'_>]) -> Result<Option<RowKey>, String> {
        for (i, cell) in cells.iter().enumerate() {
            if let (Some(values), Cell::Str(s)) = (&self.fields[i].values, cell)
                && !values.iter().any(|v| v == s)
            {
                return Err(outside_domain(s, self.names[i], values));
            }
        }
        let Some(k) = self.key else {
            return Ok(None);
        };
        match &cells[k] {
            Cell::Str(key) => Ok(Some((self.hasher.hash(key), None))),
            Cell::Null => Err(format!("missing key `{}`", self.names[k])),
            other => {
                let key = format!("{other:?}");
                Ok(Some((self.hasher.hash(&key), Some(key))))
            }
        }
    }

    fn columns(&self) -> Vec<Column> {
        self.fields.iter().map(|f| Column::new(&f.ty)).collect()
    }
}

/// Rows of a file typed and checked away from the builder (on another
/// core), in file order: their columns, their bad rows, and the keys to
/// check against the source's ([`Builder::absorb`] takes them in).
pub(super) struct Part<'a> {
    of: Fields<'a>,
    columns: Vec<Column>,
    rows: usize,
    /// Each bad row (or run of rows) with the number of good rows before it
    /// in the part; a sample's text only while the part has fewer than
    /// [`BAD_ROW_SAMPLES`] (a later one could never be sampled).
    bad: Vec<(usize, Option<String>, u64)>,
    unchecked: Vec<Unchecked>,
    /// Rows whose key an earlier row holds, when the part checked its keys
    /// itself ([`Part::settle`]).
    dropped: Vec<usize>,
}

impl<'a> Part<'a> {
    pub(super) fn new(of: &Fields<'a>) -> Part<'a> {
        Part {
            columns: of.columns(),
            of: of.clone(),
            rows: 0,
            bad: Vec::new(),
            unchecked: Vec::new(),
            dropped: Vec::new(),
        }
    }

    /// Checks the part's keys in `keys`, which holds every key before the
    /// part, as [`Builder::settle`] would once the part is taken in: on
    /// the core that typed it, so that the core parsing the file only
    /// parses (`place`: where a line is, for a repeated key's sample).
    pub(super) fn settle(&mut self, keys: &mut KeySet, place: &dyn Fn(Line) -> String) {
        let repeated = repeats(keys, std::mem::take(&mut self.unchecked));
        if repeated.is_empty() {
            return;
        }
        let k = self.of.key.unwrap_or(0);
        let mut duplicates = Vec::with_capacity(repeated.len());
        for u in repeated {
            let key = match u.text {
                Some(text) => text,
                None => format!("`{}`", self.columns[k].text(u.row)),
            };
            let sample = format!("{}: duplicate key {key}", place(u.at));
            duplicates.push((u.row, (u.row, Some(sample), 1)));
            self.dropped.push(u.row);
        }
        let bad = std::mem::take(&mut self.bad);
        self.bad = in_file_order(bad.into_iter().map(|b| (b.0, b)), duplicates);
    }

    /// `n` bad rows at `at` (asked only for a sample).
    pub(super) fn bad(
        &mut self,
        at: impl FnOnce() -> String,
        reason: impl FnOnce() -> String,
        n: u64,
    ) {
        let sample = (self.bad.len() < BAD_ROW_SAMPLES).then(|| format!("{}: {}", at(), reason()));
        self.bad.push((self.rows, sample, n));
    }

    /// A row at line `at` (shown as `prefix` and its number), as
    /// [`Builder::row_at`] adds one.
    pub(super) fn row_at(&mut self, at: Line, prefix: &str, cells: Vec<Cell<'_>>) {
        match self.of.check(&cells) {
            Err(reason) => self.bad(|| format!("{prefix}{}", at.number), || reason, 1),
            Ok(key) => {
                if let Some((hash, text)) = key {
                    self.unchecked.push(Unchecked {
                        hash,
                        row: self.rows,
                        at,
                        text,
                    });
                }
                for (col, cell) in self.columns.iter_mut().zip(&cells) {
                    col.push(cell);
                }
                self.rows += 1;
            }
        }
    }
}

/// Reads rows into typed columns, checking keys and closed domains.
pub(super) struct Builder<'a> {
    pub(super) schema: &'a SchemaPlan,
    /// The field of each name (looked up once, not per cell) and the key,
    /// for typing rows here or on other cores.
    of: Fields<'a>,
    /// Rows added one at a time, after the sealed ones.
    columns: Vec<Column>,
    /// Rows already in arrays (parts typed on other cores, and the rows
    /// added before each), in order, before those of `columns`.
    sealed: Vec<Vec<ArrayRef>>,
    pub(super) keys: KeySet,
    pub(super) report: SourceReport,
    /// The source's name, for diagnostics.
    pub(super) source: String,
    pub(super) diagnostics: Vec<RunDiagnostic>,
    /// Unknown columns already reported: once per source, not per file of
    /// a folder of exports that all carry it.
    unknown: HashSet<String>,
    /// Where full batches of typed rows go instead of being held: a text
    /// source streamed (`spill`); its first error, the read's.
    pub(super) spill: Option<Spill<'a>>,
    pub(super) spill_failed: Option<String>,
    /// Rows typed since the columns were last taken (sealed and not).
    pending: usize,
    /// The rows added by [`Builder::row_at`] or [`Builder::absorb`] whose
    /// keys are not checked yet (see [`Builder::settle`]), and the files
    /// their lines are in.
    unchecked: Vec<Unchecked>,
    files: Vec<String>,
    /// Rows of the columns whose key an earlier row holds: left out when
    /// the columns are taken.
    dropped: Vec<usize>,
    /// For each bad-row sample taken since the keys were last settled, the
    /// number of rows in the columns when it was found: where a repeated
    /// key found later goes among them.
    samples_after: Vec<usize>,
}

/// A row whose key is checked later: the key's hash, its row in the
/// columns, where it is, and the key's text when it is not a string (a
/// string key is read back from its column).
struct Unchecked {
    hash: u128,
    row: usize,
    at: Line,
    text: Option<String>,
}

/// Where a row is: a file registered with [`Builder::file`] and a line
/// (or row) number in it.
#[derive(Clone, Copy)]
pub(super) struct Line {
    pub(super) file: u32,
    pub(super) number: u64,
}

impl<'a> Builder<'a> {
    pub(super) fn new(schema_name: &str, schema: &'a SchemaPlan) -> Builder<'a> {
        let names: Vec<&String> = schema.fields.keys().collect();
        let key = schema
            .key
            .as_ref()
            .and_then(|k| names.iter().position(|n| *n == k));
        let keys = KeySet::new();
        let of = Fields {
            names,
            fields: schema.fields.values().collect(),
            key,
            hasher: keys.hasher(),
        };
        Builder {
            schema,
            columns: of.columns(),
            sealed: Vec::new(),
            of,
            keys,
            report: SourceReport {
                schema: schema_name.to_string(),
                ..SourceReport::default()
            },
            source: String::new(),
            diagnostics: Vec::new(),
            unknown: HashSet::new(),
            spill: None,
            spill_failed: None,
            pending: 0,
            unchecked: Vec::new(),
            files: Vec::new(),
            dropped: Vec::new(),
            samples_after: Vec::new(),
        }
    }

    /// The schema's field names, in the order of the columns.
    pub(super) fn names(&self) -> &[&'a String] {
        &self.of.names
    }

    /// The key's column, where the schema has a key.
    pub(super) fn key(&self) -> Option<usize> {
        self.of.key
    }

    /// What typing a row needs, for parts typed on other cores.
    pub(super) fn of(&self) -> Fields<'a> {
        self.of.clone()
    }

    /// Registers a file whose rows are added with [`Builder::row_at`]:
    /// `prefix` and a line's number are where a row is (`t.csv:` and 7:
    /// `t.csv:7`).
    pub(super) fn file(&mut self, prefix: String) -> u32 {
        self.files.push(prefix);
        (self.files.len() - 1) as u32
    }

    fn place(&self, at: Line) -> String {
        format!("{}{}", self.files[at.file as usize], at.number)
    }

    pub(super) fn bad(&mut self, at: &str, reason: String) {
        self.bad_rows(at, reason, 1);
    }

    /// `n` bad rows with one reason (the lines a broken quote swallowed).
    pub(super) fn bad_rows(&mut self, at: &str, reason: String, n: u64) {
        self.report.bad_rows += n;
        if self.report.bad_row_samples.len() < BAD_ROW_SAMPLES {
            self.sample(format!("{at}: {reason}"), self.pending);
        }
    }

    /// A bad row's sample, found when `after` rows were in the columns.
    fn sample(&mut self, text: String, after: usize) {
        self.report.bad_row_samples.push(text);
        if !self.unchecked.is_empty() {
            self.samples_after.push(after);
        }
    }
    /// A column or key of `shown` that no field declares (R0005), with the
    /// closest field when one is near; once per source.
    pub(super) fn unknown_column(&mut self, shown: &str, at: &str, what: &str, name: &str) {
        if !self.unknown.insert(name.to_string()) {
            return;
        }
        let fields = self.of.names.iter().map(|n| n.as_str());
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
    pub(super) fn empty_file(&mut self, shown: &str, what: &str) {
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
    /// `at` says where the row is, asked only for a bad row: most rows are
    /// good, and a location's text per row cost a tenth of reading a CSV
    /// file. The key is checked now.
    pub(super) fn row(&mut self, at: impl Fn() -> String, cells: Vec<Cell<'_>>) {
        self.settle();
        let key = match self.of.check(&cells) {
            Err(reason) => return self.bad(&at(), reason),
            Ok(key) => key,
        };
        if let Some((hash, text)) = key
            && !self.keys.insert_hash(hash)
        {
            let key = match text {
                None => format!("`{}`", key_str(&cells, self.of.key)),
                Some(text) => text,
            };
            return self.bad(&at(), format!("duplicate key {key}"));
        }
        self.push(cells);
    }

    /// [`Builder::row`] for a row of a file, whose key is checked with the
    /// keys of the rows around it when they are taken ([`Builder::settle`]):
    /// checked a row at a time, between typing the rows, each key cost a
    /// miss of the processor's caches (the set of keys outgrows them), and
    /// checking a key took a fifth of reading a large CSV file. Checked
    /// together, the misses overlap. The outcome is the same: a row whose
    /// key an earlier row holds is bad, with its sample in file order.
    pub(super) fn row_at(&mut self, at: Line, cells: Vec<Cell<'_>>) {
        let key = match self.of.check(&cells) {
            Err(reason) => return self.bad(&self.place(at), reason),
            Ok(key) => key,
        };
        if let Some((hash, text)) = key {
            self.unchecked.push(Unchecked {
                hash,
                row: self.pending,
                at,
                text,
            });
        }
        self.push(cells);
    }

    fn push(&mut self, cells: Vec<Cell<'_>>) {
        for (col, cell) in self.columns.iter_mut().zip(&cells) {
            col.push(cell);
        }
        self.report.rows += 1;
        self.pending += 1;
        self.spill_when_full();
    }

    /// A full batch goes to the spill file, when there is one.
    fn spill_when_full(&mut self) {
        if self.pending >= SPILL_ROWS && self.spill.is_some() {
            let columns = self.take_columns();
            if let Some(spill) = self.spill.as_mut()
                && let Err(e) = spill.write(columns)
            {
                self.spill_failed.get_or_insert(e);
            }
        }
    }

    /// Takes in a part of a file typed on another core, after every row
    /// added before it: its rows, its bad rows (samples in order) and its
    /// keys, checked with the others when the rows are taken.
    pub(super) fn absorb(&mut self, part: Part<'_>) {
        self.seal();
        let base = self.pending;
        self.unchecked
            .extend(part.unchecked.into_iter().map(|u| Unchecked {
                row: base + u.row,
                ..u
            }));
        for (after, sample, n) in part.bad {
            self.report.bad_rows += n;
            if let Some(text) = sample
                && self.report.bad_row_samples.len() < BAD_ROW_SAMPLES
            {
                self.sample(text, base + after);
            }
        }
        if part.rows > 0 {
            self.sealed
                .push(part.columns.into_iter().map(Column::finish).collect());
        }
        self.dropped
            .extend(part.dropped.iter().map(|row| base + row));
        self.report.rows += (part.rows - part.dropped.len()) as u64;
        self.pending += part.rows;
        self.spill_when_full();
    }

    /// The rows added one at a time so far, into arrays behind the sealed
    /// ones, so that a part taken in next comes after them.
    fn seal(&mut self) {
        let sealed: usize = self.sealed.iter().map(|c| c[0].len()).sum();
        if self.pending > sealed {
            let fresh = self.of.columns();
            let columns = std::mem::replace(&mut self.columns, fresh);
            self.sealed
                .push(columns.into_iter().map(Column::finish).collect());
        }
    }

    /// The text of the string key of row `row` of the columns.
    fn key_text_at(&self, mut row: usize) -> String {
        let k = self.of.key.unwrap_or(0);
        for columns in &self.sealed {
            let n = columns[k].len();
            if row < n {
                return key_text(&columns[k], row);
            }
            row -= n;
        }
        self.columns[k].text(row)
    }

    /// Checks the keys of the rows added by [`Builder::row_at`] since the
    /// last time, in their order: a row whose key an earlier row holds is
    /// bad (left out when the columns are taken), and its sample goes
    /// where it was found among the others. Called before the columns or
    /// the set of keys are used.
    pub(super) fn settle(&mut self) {
        let after = std::mem::take(&mut self.samples_after);
        let first = self.report.bad_row_samples.len() - after.len();
        let repeated = repeats(&mut self.keys, std::mem::take(&mut self.unchecked));
        if repeated.is_empty() {
            return;
        }
        let mut duplicates = Vec::with_capacity(repeated.len());
        for u in &repeated {
            let key = match &u.text {
                Some(text) => text.clone(),
                None => format!("`{}`", self.key_text_at(u.row)),
            };
            duplicates.push((u.row, format!("{}: duplicate key {key}", self.place(u.at))));
            self.dropped.push(u.row);
        }
        // This batch's samples and its repeated keys, in file order; then
        // the first ones, as a read in order samples them.
        let found: Vec<(usize, String)> = after
            .into_iter()
            .zip(self.report.bad_row_samples.drain(first..))
            .collect();
        let samples = in_file_order(found, duplicates);
        self.report.bad_row_samples.extend(samples);
        self.report.bad_row_samples.truncate(BAD_ROW_SAMPLES);
        let n = repeated.len() as u64;
        self.report.rows -= n;
        self.report.bad_rows += n;
    }

    /// The rows added so far as columns, with fresh builders for the next:
    /// a source read as a stream (PostgreSQL) is typed in batches, while the
    /// keys and the report carry on.
    pub(super) fn take_columns(&mut self) -> Vec<ArrayRef> {
        self.settle();
        self.seal();
        self.pending = 0;
        let sealed = std::mem::take(&mut self.sealed);
        without_rows(
            joined(sealed, &self.of.fields),
            std::mem::take(&mut self.dropped),
        )
    }

    pub(super) fn finish(mut self) -> (Vec<ArrayRef>, SourceReport, Vec<RunDiagnostic>) {
        let columns = self.take_columns();
        (columns, self.report, self.diagnostics)
    }
}

/// The rows among `unchecked` whose key `keys` already holds (or an
/// earlier row among them holds), in order; the others' keys are held
/// from now on.
fn repeats(keys: &mut KeySet, unchecked: Vec<Unchecked>) -> Vec<Unchecked> {
    unchecked
        .into_iter()
        .filter(|u| !keys.insert_hash(u.hash))
        .collect()
}

/// Bad rows found while typing (each with the number of good rows before
/// it) and rows left out for a repeated key (each with its row number), as
/// one list in file order: a bad row found when `n` rows were in comes
/// before row `n`.
fn in_file_order<T>(
    found: impl IntoIterator<Item = (usize, T)>,
    repeated: impl IntoIterator<Item = (usize, T)>,
) -> Vec<T> {
    let mut all: Vec<((usize, bool), T)> = found
        .into_iter()
        .map(|(after, t)| ((after, false), t))
        .chain(repeated.into_iter().map(|(row, t)| ((row, true), t)))
        .collect();
    all.sort_by_key(|(at, _)| *at);
    all.into_iter().map(|(_, t)| t).collect()
}

/// Runs of columns as one run of columns (empty ones where there are none).
fn joined(mut runs: Vec<Vec<ArrayRef>>, fields: &[&FieldPlan]) -> Vec<ArrayRef> {
    match runs.len() {
        0 => fields.iter().map(|f| Column::new(&f.ty).finish()).collect(),
        1 => runs.remove(0),
        _ => (0..fields.len())
            .map(|c| {
                let parts: Vec<&dyn datafusion::arrow::array::Array> =
                    runs.iter().map(|run| run[c].as_ref()).collect();
                datafusion::arrow::compute::concat(&parts).expect("columns of one type")
            })
            .collect(),
    }
}

/// `columns` without the rows numbered in `dropped` (ascending).
fn without_rows(columns: Vec<ArrayRef>, dropped: Vec<usize>) -> Vec<ArrayRef> {
    use datafusion::arrow::array::BooleanArray;
    let Some(len) = columns.first().map(|c| c.len()) else {
        return columns;
    };
    if dropped.is_empty() {
        return columns;
    }
    let mut keep = vec![true; len];
    for row in dropped {
        keep[row] = false;
    }
    let keep = BooleanArray::from(keep);
    columns
        .iter()
        .map(|c| {
            datafusion::arrow::compute::filter(c, &keep).expect("a filter as long as its columns")
        })
        .collect()
}

/// The text of a string key among `cells`.
fn key_str<'c>(cells: &'c [Cell<'_>], key: Option<usize>) -> &'c str {
    match key.map(|k| &cells[k]) {
        Some(Cell::Str(s)) => s,
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keys checked later, a batch at a time (`row_at`, settled at random
    /// points, as the columns are taken or a Parquet file's rows are
    /// checked; runs of rows typed as parts, as on another core, and taken
    /// in), give what checking each key at once (`row`) gives: the
    /// same rows, the same counts, the same samples in file order (a
    /// repeated key among rows bad for other reasons, and past the tenth
    /// sample), over string and int keys, across two files.
    #[test]
    fn keys_checked_later_are_keys_checked_at_once() {
        use super::super::tests::{field, schema_of, tiered};
        let mut random = crate::run::test_random::numbers(0xA076_1D64_78BD_642F);
        let by_int = schema_of(
            "account",
            None,
            vec![("id", field("int", None)), ("n", field("int", None))],
        );
        let by_text = tiered(vec![]);
        for round in 0..60 {
            let schema = if round % 3 == 2 { &by_int } else { &by_text };
            let rows = 1 + random(400) as usize;
            let keys = 1 + random(rows as u64);
            // (file, line, cells as text)
            let lines: Vec<(usize, u64, [String; 3])> = (0..rows)
                .map(|i| {
                    let id = match random(30) {
                        0 => String::new(),
                        _ => random(keys).to_string(),
                    };
                    let tier = ["gold", "silver", "tin"][(random(20) / 9) as usize].to_string();
                    let file = usize::from(i >= rows / 2);
                    (file, i as u64 + 2, [id, i.to_string(), tier])
                })
                .collect();
            let typed = |cells: &[String; 3]| -> Vec<Cell<'static>> {
                let names: Vec<&String> = schema.fields.keys().collect();
                names
                    .iter()
                    .map(|name| {
                        let text = match name.as_str() {
                            "id" => &cells[0],
                            "n" => &cells[1],
                            _ => &cells[2],
                        };
                        from_text(text, &schema.fields[*name])
                            .expect("types")
                            .into_owned()
                    })
                    .collect()
            };
            let at_once = {
                let mut b = Builder::new("t", schema);
                let mut taken = Vec::new();
                for (file, line, cells) in &lines {
                    b.row(|| format!("f{file}.csv:{line}"), typed(cells));
                }
                taken.push(b.take_columns());
                (taken, b.report)
            };
            let later = {
                let mut b = Builder::new("t", schema);
                let files = [b.file("f0.csv:".into()), b.file("f1.csv:".into())];
                let mut taken = Vec::new();
                // Some runs of lines are typed as a part, as on another core.
                let mut part: Option<Part<'_>> = None;
                for (file, line, cells) in &lines {
                    let at = Line {
                        file: files[*file],
                        number: *line,
                    };
                    match &mut part {
                        Some(p) => p.row_at(at, &format!("f{file}.csv:"), typed(cells)),
                        None => b.row_at(at, typed(cells)),
                    }
                    match random(40) {
                        0 => taken.push(b.take_columns()),
                        1 => b.settle(),
                        2..=4 => match part.take() {
                            Some(mut p) => {
                                // Checked by the part itself, as on the
                                // core that typed it, or with the builder's.
                                if random(2) == 0 {
                                    b.settle();
                                    p.settle(&mut b.keys, &|at| {
                                        format!("f{}.csv:{}", at.file, at.number)
                                    });
                                }
                                b.absorb(p)
                            }
                            None => part = Some(Part::new(&b.of())),
                        },
                        _ => {}
                    }
                }
                if let Some(p) = part.take() {
                    b.absorb(p);
                }
                taken.push(b.take_columns());
                (taken, b.report)
            };
            assert_eq!(later.1, at_once.1, "round {round}");
            let concat = |taken: &[Vec<ArrayRef>]| -> Vec<ArrayRef> {
                (0..taken[0].len())
                    .map(|c| {
                        let parts: Vec<&dyn datafusion::arrow::array::Array> =
                            taken.iter().map(|t| t[c].as_ref()).collect();
                        datafusion::arrow::compute::concat(&parts).expect("concats")
                    })
                    .collect()
            };
            assert_eq!(concat(&later.0), concat(&at_once.0), "round {round}");
        }
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
}
