//! The embedded engine: a DataFusion session holding the unified tables
//! (one per schema, named after it), running the rendered SQL.
//!
//! Input: record batches and SQL text. Output: record batches, or cells as
//! JSON values for delivery. No files are read here (sources did that) and
//! no SQL is written here beyond registering tables: the SQL comes from
//! `render` (and from `unify`, for merging and linking).

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::datatypes::{DataType, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::datasource::MemTable;
use datafusion::prelude::{SessionConfig, SessionContext};
use serde_json::Value;

use crate::time;

/// Rows per batch in registered tables: DataFusion's default batch size.
const BATCH_ROWS: usize = 8192;

pub struct Engine {
    ctx: SessionContext,
    runtime: tokio::runtime::Runtime,
}

impl Engine {
    pub fn new() -> Result<Engine, String> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        // Rendered SQL quotes every name from the specs, so the default
        // identifier normalisation leaves them as written.
        let config = SessionConfig::new().with_information_schema(false);
        Ok(Engine {
            ctx: SessionContext::new_with_config(config),
            runtime,
        })
    }

    /// Registers (or replaces) a table.
    pub fn register(&self, name: &str, batch: RecordBatch) -> Result<(), String> {
        self.register_batches(name, batch.schema(), vec![batch])
    }

    /// Registers (or replaces) a table made of `batches` (all of `schema`).
    pub fn register_batches(
        &self,
        name: &str,
        schema: SchemaRef,
        batches: Vec<RecordBatch>,
    ) -> Result<(), String> {
        // Partitions so DataFusion can use every core, each a list of
        // batches of the session's batch size (zero-copy slices): operators
        // then work on cache-sized pieces, not millions of rows at once.
        let parts = cores();
        let mut partitions: Vec<Vec<RecordBatch>> = vec![Vec::new(); parts];
        let mut next = 0;
        for batch in batches {
            let rows = batch.num_rows();
            for start in (0..rows).step_by(BATCH_ROWS) {
                partitions[next % parts].push(batch.slice(start, BATCH_ROWS.min(rows - start)));
                next += 1;
            }
        }
        partitions.retain(|p| !p.is_empty());
        if partitions.is_empty() {
            partitions.push(vec![RecordBatch::new_empty(schema.clone())]);
        }
        let table = MemTable::try_new(schema, partitions).map_err(|e| e.to_string())?;
        let _ = self.ctx.deregister_table(name);
        self.ctx
            .register_table(name, Arc::new(table))
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    /// Runs one statement or query and collects its result. An error is
    /// the engine's reason alone: the SQL is rendered (or internal), and
    /// the caller names the definition that failed.
    pub fn sql(&self, sql: &str) -> Result<Vec<RecordBatch>, String> {
        self.runtime.block_on(async {
            let df = self.ctx.sql(sql).await.map_err(|e| e.to_string())?;
            df.collect().await.map_err(|e| e.to_string())
        })
    }

    /// Runs a query and concatenates its result into one batch.
    pub fn query(&self, sql: &str) -> Result<RecordBatch, String> {
        let batches = self.sql(sql)?;
        let schema = match batches.first() {
            Some(b) => b.schema(),
            None => {
                // An empty result still has a schema.
                return self.runtime.block_on(async {
                    let df = self.ctx.sql(sql).await.map_err(|e| e.to_string())?;
                    Ok(RecordBatch::new_empty(Arc::new(
                        df.schema().as_arrow().clone(),
                    )))
                });
            }
        };
        datafusion::arrow::compute::concat_batches(&schema, &batches).map_err(|e| e.to_string())
    }
}

/// The cores this run may use: partitions of registered tables, threads
/// decoding and checking sources.
pub fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .max(1)
}

/// Quotes an identifier for SQL.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Quotes a string literal for SQL.
pub fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// One cell as a JSON value (timestamps as RFC 3339 strings).
pub fn cell(array: &ArrayRef, row: usize) -> Value {
    if array.is_null(row) {
        return Value::Null;
    }
    match array.data_type() {
        DataType::Utf8 => Value::String(array.as_string::<i32>().value(row).to_string()),
        DataType::LargeUtf8 => Value::String(array.as_string::<i64>().value(row).to_string()),
        DataType::Utf8View => Value::String(array.as_string_view().value(row).to_string()),
        DataType::Boolean => Value::Bool(array.as_boolean().value(row)),
        DataType::Int64 => Value::from(
            array
                .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
                .value(row),
        ),
        DataType::Int32 => Value::from(
            array
                .as_primitive::<datafusion::arrow::datatypes::Int32Type>()
                .value(row),
        ),
        DataType::UInt64 => Value::from(
            array
                .as_primitive::<datafusion::arrow::datatypes::UInt64Type>()
                .value(row),
        ),
        DataType::Float64 => {
            let v = array
                .as_primitive::<datafusion::arrow::datatypes::Float64Type>()
                .value(row);
            serde_json::Number::from_f64(v)
                .map(Value::Number)
                .unwrap_or(Value::Null)
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => Value::String(time::format_timestamp(
            array
                .as_primitive::<datafusion::arrow::datatypes::TimestampMicrosecondType>()
                .value(row),
        )),
        DataType::List(_) => {
            let list = array.as_list::<i32>().value(row);
            Value::Array((0..list.len()).map(|i| cell(&list, i)).collect())
        }
        _ => {
            // Anything else through Arrow's display cast.
            match datafusion::arrow::compute::cast(&array.slice(row, 1), &DataType::Utf8) {
                Ok(s) => Value::String(s.as_string::<i32>().value(0).to_string()),
                Err(_) => Value::Null,
            }
        }
    }
}

/// A column as text keys (null stays `None`).
pub fn keys(batch: &RecordBatch, column: &str) -> Result<Vec<Option<String>>, String> {
    let col = batch
        .column_by_name(column)
        .ok_or_else(|| format!("the query has no column `{column}`"))?;
    Ok((0..batch.num_rows())
        .map(|i| match cell(col, i) {
            Value::Null => None,
            Value::String(s) => Some(s),
            other => Some(other.to_string()),
        })
        .collect())
}
