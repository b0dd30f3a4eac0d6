//! Destination rows as Arrow columns: the one typed form delivered files
//! are written from, whichever way the rows came.
//!
//! A delivery's rows come from the engine (the export query's batches),
//! from the store's members files (already delivered columns), or from
//! JSON values (a store written before the columnar state, an API
//! delivery's ledger). All are brought to the same *delivered* columns, so
//! one delivery always encodes to the same bytes, however it is encoded:
//!
//! - text (any string type) is `Utf8`; integers `Int64`; `Float64` stays,
//!   a value that is not finite is missing (JSON has no NaN); `Boolean`
//!   stays;
//! - a timestamp is `Utf8` text in RFC 3339, UTC (`2026-11-28T12:00:00Z`),
//!   as every report and JSON value of the run spells it;
//! - a list is a `List` of delivered items (JSON lines write it as an
//!   array; CSV and Parquet as its items' text joined with `|`,
//!   [`lists_as_text`]);
//! - where the column's type decides ([`delivered_type`]: every type above
//!   but unusual lists), the engine's rows take it whatever their values,
//!   so every batch of a delivery that comes a batch at a time has the same
//!   columns ([`delivered_schema`], [`delivered_as`]); where it does not,
//!   and for JSON values, a column without any value is `Utf8` nulls;
//! - anything else goes through its JSON value ([`engine::cell`]): what the
//!   JSON form of a cell is, the delivered column is.
//!
//! [`delivered`] is the engine's way (typed kernels, no per-cell JSON for
//! the common types), [`from_values`] the store's; a test holds the two to
//! the same result for every type.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float64Array, Int64Array, ListArray, StringArray,
    new_null_array,
};
use datafusion::arrow::buffer::{NullBuffer, OffsetBuffer};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{
    DataType, Field, Float64Type, Schema, SchemaRef, TimeUnit, TimestampMicrosecondType,
};
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};
use serde_json::Value;

use super::engine;
use crate::time;

/// The delivered type of a column of type `ty` where the type alone
/// decides it: the engine's common types (text, integers, `Float64`,
/// booleans, timestamps, lists of text, integers or booleans, and a column
/// of nothing but nulls as text). `None` for the others, whose delivered
/// type is found from their values ([`delivered`]).
pub fn delivered_type(ty: &DataType) -> Option<DataType> {
    Some(match ty {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null => {
            DataType::Utf8
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => DataType::Utf8,
        DataType::Int64 | DataType::Int32 | DataType::Int16 | DataType::Int8 => DataType::Int64,
        DataType::Float64 => DataType::Float64,
        DataType::Boolean => DataType::Boolean,
        DataType::List(item) | DataType::LargeList(item) => {
            let item = match delivered_type(item.data_type())? {
                DataType::Float64 | DataType::List(_) => return None,
                _ if matches!(item.data_type(), DataType::Timestamp(..) | DataType::Null) => {
                    return None;
                }
                item => item,
            };
            DataType::List(Arc::new(Field::new_list_field(item, true)))
        }
        _ => return None,
    })
}

/// The delivered columns of `schema`'s, when every column's type decides
/// its delivered type ([`delivered_type`]): the one schema of every batch
/// of a delivery that comes a batch at a time.
pub fn delivered_schema(schema: &Schema) -> Option<SchemaRef> {
    let fields = schema
        .fields()
        .iter()
        .map(|f| Some(Field::new(f.name(), delivered_type(f.data_type())?, true)))
        .collect::<Option<Vec<_>>>()?;
    Some(Arc::new(Schema::new(fields)))
}

/// `batch` brought to the delivered columns of `schema` (made by
/// [`delivered_schema`] from its own schema): a column keeps its type
/// where it has no value in this batch, so every batch of a delivery has
/// the same columns.
pub fn delivered_as(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, String> {
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(column, field)| {
            let target = field.data_type();
            let typed = typed_column(column)?;
            if typed.data_type() == target {
                Ok(typed)
            } else if typed.null_count() == typed.len() {
                Ok(new_null_array(target, typed.len()))
            } else {
                cast(&typed, target).map_err(|e| e.to_string())
            }
        })
        .collect::<Result<Vec<_>, String>>()?;
    RecordBatch::try_new_with_options(
        schema.clone(),
        columns,
        &RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
    )
    .map_err(|e| e.to_string())
}

/// `batch` with every column brought to its delivered type.
pub fn delivered(batch: &RecordBatch) -> Result<RecordBatch, String> {
    let columns = batch
        .columns()
        .iter()
        .map(delivered_column)
        .collect::<Result<Vec<_>, _>>()?;
    assemble(&names(batch), columns, batch.num_rows())
}

/// The column names of `batch`, in order.
fn names(batch: &RecordBatch) -> Vec<String> {
    batch
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect()
}

/// Rows of JSON values (one value per column, in `columns`' order) as
/// delivered columns.
pub fn from_values(columns: &[String], rows: &[&[Value]]) -> Result<RecordBatch, String> {
    let arrays = (0..columns.len())
        .map(|c| {
            let cells: Vec<&Value> = rows
                .iter()
                .map(|r| r.get(c).unwrap_or(&Value::Null))
                .collect();
            column_of(&cells)
        })
        .collect::<Result<Vec<_>, _>>()?;
    assemble(columns, arrays, rows.len())
}

/// `batch` (delivered) with every list column as text: its items' text
/// joined with `|` (a missing item is empty text), as CSV cells and
/// Parquet columns carry lists.
pub fn lists_as_text(batch: &RecordBatch) -> Result<RecordBatch, String> {
    if !batch
        .columns()
        .iter()
        .any(|c| matches!(c.data_type(), DataType::List(_)))
    {
        return Ok(batch.clone());
    }
    let columns = batch
        .columns()
        .iter()
        .map(|c| match c.data_type() {
            DataType::List(_) => {
                let texts: StringArray =
                    (0..c.len()).map(|i| text_of(&engine::cell(c, i))).collect();
                Arc::new(texts) as ArrayRef
            }
            _ => c.clone(),
        })
        .collect();
    assemble(&names(batch), columns, batch.num_rows())
}

/// A JSON value's text in a CSV cell or a Parquet text column: arrays
/// joined with `|`, `None` for a missing value.
pub fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Array(items) => Some(
            items
                .iter()
                .map(|i| text_of(i).unwrap_or_default())
                .collect::<Vec<_>>()
                .join("|"),
        ),
        other => Some(other.to_string()),
    }
}

/// A batch of nullable columns named `names`.
pub fn assemble(
    names: &[String],
    columns: Vec<ArrayRef>,
    rows: usize,
) -> Result<RecordBatch, String> {
    let fields: Vec<Field> = names
        .iter()
        .zip(&columns)
        .map(|(name, c)| Field::new(name, c.data_type().clone(), true))
        .collect();
    RecordBatch::try_new_with_options(
        Arc::new(Schema::new(fields)),
        columns,
        &RecordBatchOptions::new().with_row_count(Some(rows)),
    )
    .map_err(|e| e.to_string())
}

fn delivered_column(column: &ArrayRef) -> Result<ArrayRef, String> {
    Ok(without_values_as_text(typed_column(column)?))
}

/// A column in its delivered type, an empty one too (a column without
/// values keeps its type here).
fn typed_column(column: &ArrayRef) -> Result<ArrayRef, String> {
    let cast_to = |ty: &DataType| cast(column, ty).map_err(|e| e.to_string());
    let typed = match column.data_type() {
        DataType::Utf8 => column.clone(),
        DataType::LargeUtf8 | DataType::Utf8View => cast_to(&DataType::Utf8)?,
        DataType::Int64 | DataType::Boolean => column.clone(),
        DataType::Int32 | DataType::Int16 | DataType::Int8 => cast_to(&DataType::Int64)?,
        DataType::Float64 => {
            let floats = column.as_primitive::<Float64Type>();
            if floats.iter().flatten().all(f64::is_finite) {
                column.clone()
            } else {
                let finite: Float64Array =
                    floats.iter().map(|v| v.filter(|v| v.is_finite())).collect();
                Arc::new(finite)
            }
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            let texts: StringArray = column
                .as_primitive::<TimestampMicrosecondType>()
                .iter()
                .map(|v| v.map(time::format_timestamp))
                .collect();
            Arc::new(texts)
        }
        _ => {
            let cells: Vec<Value> = (0..column.len()).map(|i| engine::cell(column, i)).collect();
            return column_of(&cells.iter().collect::<Vec<_>>());
        }
    };
    Ok(typed)
}

/// A column without any value is text.
fn without_values_as_text(column: ArrayRef) -> ArrayRef {
    if column.null_count() == column.len() && column.data_type() != &DataType::Utf8 {
        new_null_array(&DataType::Utf8, column.len())
    } else {
        column
    }
}

/// JSON values as one delivered column: the type all its values share
/// (booleans, integers, numbers, lists), else their text.
fn column_of(cells: &[&Value]) -> Result<ArrayRef, String> {
    let present = || cells.iter().filter(|v| !v.is_null());
    if present().next().is_none() {
        return Ok(new_null_array(&DataType::Utf8, cells.len()));
    }
    Ok(if present().all(|v| v.is_boolean()) {
        Arc::new(cells.iter().map(|v| v.as_bool()).collect::<BooleanArray>())
    } else if present().all(|v| v.is_i64()) {
        Arc::new(cells.iter().map(|v| v.as_i64()).collect::<Int64Array>())
    } else if present().all(|v| v.is_number()) {
        Arc::new(cells.iter().map(|v| v.as_f64()).collect::<Float64Array>())
    } else if present().all(|v| v.is_array()) {
        let items: Vec<&Value> = cells
            .iter()
            .filter_map(|v| v.as_array())
            .flatten()
            .collect();
        let lengths = cells.iter().map(|v| v.as_array().map_or(0, Vec::len));
        let nulls = NullBuffer::from(cells.iter().map(|v| !v.is_null()).collect::<Vec<_>>());
        let values = column_of(&items)?;
        let field = Arc::new(Field::new_list_field(values.data_type().clone(), true));
        Arc::new(
            ListArray::try_new(
                field,
                OffsetBuffer::from_lengths(lengths),
                values,
                Some(nulls),
            )
            .map_err(|e| e.to_string())?,
        )
    } else {
        Arc::new(cells.iter().map(|v| text_of(v)).collect::<StringArray>())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{
        Int32Array, LargeStringArray, ListBuilder, StringBuilder, TimestampMicrosecondArray,
        UInt64Array,
    };

    /// The export query's batch, delivered directly and through the JSON
    /// values the store keeps, is the same batch: a delivery encodes to
    /// the same bytes either way.
    #[test]
    fn the_engine_and_the_store_deliver_the_same_columns() {
        let mut tags = ListBuilder::new(StringBuilder::new());
        tags.append_value([Some("a"), None, Some("=b")]);
        tags.append_null();
        tags.append_value([Some("c")]);
        let columns: Vec<(&str, ArrayRef)> = vec![
            (
                "text",
                Arc::new(StringArray::from(vec![Some("x"), None, Some("")])),
            ),
            (
                "large",
                Arc::new(LargeStringArray::from(vec![Some("y"), Some("z"), None])),
            ),
            (
                "int",
                Arc::new(Int32Array::from(vec![Some(-5), None, Some(7)])),
            ),
            (
                "float",
                Arc::new(Float64Array::from(vec![
                    Some(1.5),
                    Some(f64::NAN),
                    Some(2.0),
                ])),
            ),
            (
                "flag",
                Arc::new(BooleanArray::from(vec![Some(true), None, Some(false)])),
            ),
            (
                "at",
                Arc::new(TimestampMicrosecondArray::from(vec![
                    Some(1_795_867_200_000_000),
                    Some(1_795_867_200_000_001),
                    None,
                ])),
            ),
            ("tags", Arc::new(tags.finish())),
            (
                "nothing",
                Arc::new(Int64Array::from(vec![None::<i64>, None, None])),
            ),
            (
                "big",
                Arc::new(UInt64Array::from(vec![Some(u64::MAX), Some(1), None])),
            ),
        ];
        let names: Vec<String> = columns.iter().map(|(n, _)| n.to_string()).collect();
        let batch = assemble(&names, columns.into_iter().map(|(_, c)| c).collect(), 3).unwrap();
        let direct = delivered(&batch).unwrap();
        let cells: Vec<Vec<Value>> = (0..3)
            .map(|i| batch.columns().iter().map(|c| engine::cell(c, i)).collect())
            .collect();
        let rows: Vec<&[Value]> = cells.iter().map(Vec::as_slice).collect();
        let stored = from_values(&names, &rows).unwrap();
        assert_eq!(direct, stored);
        // Through the store's JSON text too.
        let text = serde_json::to_string(&cells).unwrap();
        let back: Vec<Vec<Value>> = serde_json::from_str(&text).unwrap();
        let rows: Vec<&[Value]> = back.iter().map(Vec::as_slice).collect();
        assert_eq!(direct, from_values(&names, &rows).unwrap());
        let types: Vec<String> = direct
            .schema()
            .fields()
            .iter()
            .map(|f| f.data_type().to_string())
            .collect();
        assert_eq!(
            types,
            [
                "Utf8",
                "Utf8",
                "Int64",
                "Float64",
                "Boolean",
                "Utf8",
                "List(Utf8)",
                "Utf8",
                "Float64"
            ]
        );
        let texts = lists_as_text(&direct).unwrap();
        let tags = texts.column_by_name("tags").unwrap().as_string::<i32>();
        assert_eq!(tags.value(0), "a||=b");
        assert!(tags.is_null(1));
        // By values alone, rows all missing in a column make a text column,
        // whatever the whole had.
        let middle = delivered(&direct.slice(1, 1)).unwrap();
        assert_eq!(
            middle.column_by_name("int").unwrap().data_type(),
            &DataType::Utf8
        );
    }

    /// Where the types decide, every batch of the same columns is
    /// delivered in the same types, one without a value in a column too;
    /// where they do not (an unsigned integer, whose values decide between
    /// an integer and a number), there is no such schema.
    #[test]
    fn types_decide_the_delivered_columns_of_every_batch() {
        let mut tags = ListBuilder::new(StringBuilder::new());
        tags.append_value([Some("a")]);
        tags.append_null();
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int32Array::from(vec![Some(1), None])),
            Arc::new(LargeStringArray::from(vec![Some("x"), None])),
            Arc::new(TimestampMicrosecondArray::from(vec![Some(0), None])),
            Arc::new(tags.finish()),
            Arc::new(Float64Array::from(vec![Some(f64::INFINITY), None])),
            new_null_array(&DataType::Null, 2),
        ];
        let names: Vec<String> = ["int", "text", "at", "tags", "float", "none"]
            .iter()
            .map(|n| n.to_string())
            .collect();
        let batch = assemble(&names, columns, 2).unwrap();
        let schema = delivered_schema(&batch.schema()).expect("types decide");
        let whole = delivered_as(&batch, &schema).unwrap();
        let empty_row = delivered_as(&batch.slice(1, 1), &schema).unwrap();
        assert_eq!(whole.schema(), schema);
        assert_eq!(empty_row.schema(), schema);
        assert_eq!(empty_row, whole.slice(1, 1));
        // Where a column has values, as by values (the infinite float is
        // missing: a column of no value, text by values).
        let by_values = delivered(&batch.slice(0, 1)).unwrap();
        for name in ["int", "text", "at", "tags"] {
            assert_eq!(
                whole.slice(0, 1).column_by_name(name),
                by_values.column_by_name(name),
                "{name}"
            );
        }
        let unsigned = assemble(
            &["big".to_string()],
            vec![Arc::new(UInt64Array::from(vec![1u64]))],
            1,
        )
        .unwrap();
        assert!(delivered_schema(&unsigned.schema()).is_none());
    }
}
