//! Typing values into Arrow columns: a text cell (CSV) or a JSON value
//! (JSONL) and the field it belongs to in, a typed `Cell` (or why it does
//! not type) out; the schema's Arrow types; and the `Builder` that pushes
//! rows of cells into one column per field, checking keys and closed
//! domains, counting and sampling bad rows.

use std::collections::HashSet;
use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BooleanBuilder, Float64Builder, Int64Builder, ListBuilder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use serde_json::Value;

use super::BAD_ROW_SAMPLES;
use super::keys::KeySet;
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

/// A typed cell, before it goes into a column.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Cell {
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
pub(super) fn from_text(text: &str, field: &FieldPlan) -> Result<Cell, String> {
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
pub(super) fn from_json(value: &Value, field: &FieldPlan) -> Result<Cell, String> {
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

/// Reads rows into typed columns, checking keys and closed domains.
pub(super) struct Builder<'a> {
    pub(super) schema: &'a SchemaPlan,
    pub(super) names: Vec<&'a String>,
    columns: Vec<Column>,
    pub(super) key: Option<usize>,
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
    /// Rows typed since the columns were last taken.
    pending: usize,
}

impl<'a> Builder<'a> {
    pub(super) fn new(schema_name: &str, schema: &'a SchemaPlan) -> Builder<'a> {
        let names: Vec<&String> = schema.fields.keys().collect();
        let key = schema
            .key
            .as_ref()
            .and_then(|k| names.iter().position(|n| *n == k));
        Builder {
            schema,
            columns: schema.fields.values().map(|f| Column::new(&f.ty)).collect(),
            names,
            key,
            keys: KeySet::new(),
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
        }
    }

    pub(super) fn bad(&mut self, at: &str, reason: String) {
        self.bad_rows(at, reason, 1);
    }

    /// `n` bad rows with one reason (the lines a broken quote swallowed).
    pub(super) fn bad_rows(&mut self, at: &str, reason: String, n: u64) {
        self.report.bad_rows += n;
        if self.report.bad_row_samples.len() < BAD_ROW_SAMPLES {
            self.report.bad_row_samples.push(format!("{at}: {reason}"));
        }
    }

    /// A column or key of `shown` that no field declares (R0005), with the
    /// closest field when one is near; once per source.
    pub(super) fn unknown_column(&mut self, shown: &str, at: &str, what: &str, name: &str) {
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
    pub(super) fn row(&mut self, at: &str, cells: Vec<Cell>) {
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
                    if !self.keys.insert(key) {
                        return self.bad(at, format!("duplicate key `{key}`"));
                    }
                }
                Cell::Null => return self.bad(at, format!("missing key `{}`", self.names[k])),
                other => {
                    let key = format!("{other:?}");
                    if !self.keys.insert(&key) {
                        return self.bad(at, format!("duplicate key {key}"));
                    }
                }
            }
        }
        for (col, cell) in self.columns.iter_mut().zip(&cells) {
            col.push(cell);
        }
        self.report.rows += 1;
        self.pending += 1;
        if self.pending >= SPILL_ROWS && self.spill.is_some() {
            let columns = self.take_columns();
            if let Some(spill) = self.spill.as_mut()
                && let Err(e) = spill.write(columns)
            {
                self.spill_failed.get_or_insert(e);
            }
        }
    }

    /// The rows added so far as columns, with fresh builders for the next:
    /// a source read as a stream (PostgreSQL) is typed in batches, while the
    /// keys and the report carry on.
    pub(super) fn take_columns(&mut self) -> Vec<ArrayRef> {
        let fresh = self
            .schema
            .fields
            .values()
            .map(|f| Column::new(&f.ty))
            .collect();
        self.pending = 0;
        std::mem::replace(&mut self.columns, fresh)
            .into_iter()
            .map(Column::finish)
            .collect()
    }

    pub(super) fn finish(self) -> (Vec<ArrayRef>, SourceReport, Vec<RunDiagnostic>) {
        (
            self.columns.into_iter().map(Column::finish).collect(),
            self.report,
            self.diagnostics,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
