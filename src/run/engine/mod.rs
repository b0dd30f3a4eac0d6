//! The engines that run the rendered SQL: the embedded DataFusion session
//! (`embedded`, the default) and Apache Spark through Spark Connect
//! (`spark`, behind the `spark` feature). Both hold the unified tables (one
//! per schema, named after it) and answer queries with Arrow record batches.
//!
//! Input: record batches (or, for the embedded engine, streams of them that
//! a source hands over: `sources::streamed`) and SQL text. Output: record
//! batches, or cells as JSON values for delivery. No file is opened here
//! (sources do that) and no SQL is written here beyond registering tables:
//! the SQL comes from `render` (in the engine's dialect) and from `unify`,
//! `execute` and `explain`, whose few statements are plain SQL both engines
//! read (the Spark session reads double-quoted names as identifiers, as the
//! others do).
//!
//! Nothing after evaluation knows which engine ran: results arrive in the
//! types the embedded engine gives (`conform`), so delivery, state and
//! reports see the same batches.

mod build_side;
mod embedded;
mod pool;
#[cfg(feature = "spark")]
pub mod spark;
mod streamed_table;

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::datatypes::{DataType, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use serde_json::Value;

pub use self::embedded::Embedded;
pub use self::streamed_table::{Scan, projected};

/// The largest piece of a table sent to Spark in one message (Arrow IPC
/// bytes, before gRPC framing): well under the server's default limit of
/// 128 MiB.
pub const PIECE_BYTES: usize = 32 << 20;
use crate::memory_limit::MemoryLimit;
use crate::time;

/// An engine: tables in, SQL run, record batches out. A run shares it
/// between threads: the next activations' export queries run while one
/// delivers, and the link reports may count beside the audience query
/// ([`Engine::queries_side_by_side`]).
pub trait Engine: Sync {
    /// The dialect of the rendered jobs it runs (`sql/<dialect>/...`).
    fn dialect(&self) -> &'static str;

    /// Registers (or replaces) a table made of `batches` (all of `schema`).
    fn register_batches(
        &self,
        name: &str,
        schema: SchemaRef,
        batches: Vec<RecordBatch>,
    ) -> Result<(), String>;

    /// Registers (or replaces) a table whose `rows` rows are `streams`
    /// (each a partition, all of `schema`): the embedded engine reads them
    /// again on every scan, Spark is sent them once, a piece at a time.
    /// An engine that takes neither refuses.
    fn register_streams(
        &self,
        name: &str,
        _schema: SchemaRef,
        _streams: Vec<Arc<dyn Scan>>,
        _rows: u64,
    ) -> Result<(), String> {
        Err(format!(
            "table `{name}`: this engine reads rows, not streams of them"
        ))
    }

    /// Lets go of table `name` once nothing reads it again, so its rows
    /// are not held to the end of the run. A remote engine's tables are
    /// its own to manage: the default keeps them.
    fn forget(&self, _name: &str) -> Result<(), String> {
        Ok(())
    }

    /// Runs one statement or query and collects its result. An error is
    /// the engine's reason alone: the SQL is rendered (or internal), and
    /// the caller names the definition that failed.
    fn sql(&self, sql: &str) -> Result<Vec<RecordBatch>, String>;

    /// Runs a query and concatenates its result into one batch (an empty
    /// result keeps the query's schema).
    fn query(&self, sql: &str) -> Result<RecordBatch, String>;

    /// The memory its queries are held to (`memory_limit`), in bytes, when
    /// they are: the run holds its own rows (an activation's members)
    /// within a share of it.
    fn memory_limit(&self) -> Option<u64> {
        None
    }

    /// Whether running two queries at once gains time here: they share
    /// this machine's cores, and neither is held to a limit the other
    /// takes from. The default (a remote engine, sent one query at a time)
    /// says no.
    fn queries_side_by_side(&self) -> bool {
        false
    }

    /// Runs a query and hands its result over a batch at a time, as the
    /// engine makes them: the result is never whole here (an export
    /// query's 10M rows). The schema comes first, before any row. An
    /// engine that answers whole (Spark's answer is one message) hands
    /// over its result in one batch: the default.
    fn stream(&self, sql: &str) -> Result<Batches<'_>, String> {
        let batch = self.query(sql)?;
        Ok(Batches {
            schema: batch.schema(),
            batches: Box::new(std::iter::once(Ok(batch))),
        })
    }

    /// Runs a query, keeps its result as table `name` where the engine
    /// holds its tables, and returns it. A remote engine keeps the table on
    /// its side rather than receiving and sending it back.
    fn materialize(&self, name: &str, sql: &str) -> Result<RecordBatch, String> {
        let batch = self.query(sql)?;
        self.register(name, batch.clone())?;
        Ok(batch)
    }

    /// [`Engine::materialize`] for a query that orders its rows by `key`
    /// (ascending, nulls last): an engine that can tell later queries so
    /// does, and they skip sorting by it again (an export query's members,
    /// in key order). The default keeps the table as `materialize` does.
    fn materialize_sorted(&self, name: &str, sql: &str, key: &str) -> Result<RecordBatch, String> {
        let _ = key;
        self.materialize(name, sql)
    }

    /// Runs a query and keeps its result as table `name`, as
    /// [`Engine::materialize`] does, without handing the rows back: for a
    /// table only later queries read (a merged source, the linked people
    /// that unify counts).
    fn keep(&self, name: &str, sql: &str) -> Result<(), String> {
        self.materialize(name, sql).map(drop)
    }

    /// Registers (or replaces) a table of one batch.
    fn register(&self, name: &str, batch: RecordBatch) -> Result<(), String> {
        self.register_batches(name, batch.schema(), vec![batch])
    }

    /// Makes `name` another name of the table `table` (a source the
    /// engine read itself, become its schema's table).
    fn alias(&self, name: &str, table: &str) -> Result<(), String> {
        self.keep(name, &format!("SELECT * FROM {}", ident(table)))
    }

    /// The Spark session, when this engine is one: it reads some sources
    /// itself (`sources::in_spark`).
    #[cfg(feature = "spark")]
    fn spark(&self) -> Option<&spark::Spark> {
        None
    }
}

/// A query's result as it comes ([`Engine::stream`]): its schema, then
/// its batches (an error ends them).
pub struct Batches<'a> {
    pub schema: SchemaRef,
    pub batches: Box<dyn Iterator<Item = Result<RecordBatch, String>> + 'a>,
}

/// Which engine a run uses, and how to reach it.
#[derive(Clone, Debug)]
pub enum Choice {
    /// The embedded DataFusion session (the default), its queries held to
    /// `memory_limit` when there is one.
    Embedded { memory_limit: Option<MemoryLimit> },
    /// A Spark Connect server.
    Spark(SparkRemote),
}

impl Default for Choice {
    fn default() -> Choice {
        Choice::Embedded { memory_limit: None }
    }
}

/// Where a Spark Connect server listens, and the token it asks for.
#[derive(Clone, Debug)]
pub struct SparkRemote {
    /// `sc://host:port[/;param=value...]`.
    pub remote: String,
    /// Sent as `Authorization: Bearer`; only over TLS, or to a loopback host.
    pub token: Option<secrecy::SecretString>,
    /// The largest piece of a table sent in one message: [`PIECE_BYTES`],
    /// or less under the tests' hook `ACCORD_SPARK_PIECE_BYTES` (small
    /// tables sent in many pieces).
    pub piece_bytes: usize,
}

/// Opens the chosen engine for the project at `root`: the embedded one,
/// under a memory limit, spills under `root/.accord/tmp/`.
pub fn open(choice: &Choice, root: &std::path::Path) -> Result<Box<dyn Engine>, String> {
    match choice {
        Choice::Embedded { memory_limit: None } => Ok(Box::new(Embedded::new()?)),
        Choice::Embedded {
            memory_limit: Some(limit),
        } => Ok(Box::new(Embedded::limited(*limit, root)?)),
        #[cfg(feature = "spark")]
        Choice::Spark(remote) => Ok(Box::new(spark::Spark::connect(remote)?)),
        #[cfg(not(feature = "spark"))]
        Choice::Spark(_) => Err(
            "this accord was built without Spark: build it with `--features spark` to run on \
             `--engine spark`"
                .into(),
        ),
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
