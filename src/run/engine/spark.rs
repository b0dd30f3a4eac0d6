//! Apache Spark through Spark Connect: the rendered `spark` jobs run in a
//! session of a Spark Connect server (a self-run one, Databricks, Dataproc),
//! and their results come back as Arrow record batches.
//!
//! - Tables accord reads (the sources it types, as batches or as streams
//!   over local files) go to the session as Arrow local relations, in
//!   pieces of at most [`PIECE_BYTES`](super::PIECE_BYTES) so no message passes the server's
//!   gRPC limit (128 MiB by default,
//!   `spark.connect.grpc.maxInboundMessageSize`), and become temporary
//!   views. A streamed source is read a batch at a time as its pieces are
//!   sent, so the run never holds it whole.
//! - Tables the run derives (merged sources, `accord_accounts`,
//!   `accord_people`) are cached in the session (`CACHE TABLE ... AS`):
//!   only what the run reads back (memberships, export rows) crosses the
//!   network.
//! - The session is set up to read SQL as the embedded engine does: in UTC,
//!   double-quoted names as identifiers (ANSI mode), names case-sensitive.
//! - Results are conformed to the types the embedded engine gives
//!   (`conform`), so nothing downstream knows which engine ran.

use std::io::Cursor;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{
    DataType, Field, Schema, SchemaRef, TimeUnit, TimestampMicrosecondType,
};
use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::arrow::ipc::writer::StreamWriter;
use datafusion::execution::TaskContext;
use secrecy::ExposeSecret;
use spark_connect_core::{ChannelBuilder, RetryPolicy, SparkConnectClient};
use spark_connect_proto as proto;

use super::{Engine, SparkRemote};

/// The column of a view of files ([`Spark::read_files`]) that names each
/// row's file, and the one that numbers it in its file.
pub const FILE_COLUMN: &str = "__accord_file";
pub const ROW_COLUMN: &str = "__accord_row";

/// How often the session's setup retries a server that does not answer
/// (backing off from half a second to eight: about 15 s in all).
const SETUP_RETRIES: u32 = 5;

/// Session settings every run makes, in order. ANSI mode comes before the
/// double-quoted identifiers, which need it.
const SESSION: &[(&str, &str)] = &[
    // `now` and timestamps are UTC whatever the server's JVM zone.
    ("spark.sql.session.timeZone", "UTC"),
    ("spark.sql.ansi.enabled", "true"),
    // The run's own statements quote names as the SQL standard does.
    ("spark.sql.ansi.doubleQuotedIdentifiers", "true"),
    // Field names differing only in case are different fields, as in the
    // specs and the embedded engine.
    ("spark.sql.caseSensitive", "true"),
];

pub struct Spark {
    client: SparkConnectClient,
    runtime: tokio::runtime::Runtime,
    /// The server runs on this machine (a loopback address): it can read
    /// the project's local files itself.
    local: bool,
    /// See [`SparkRemote::piece_bytes`].
    piece_bytes: usize,
}

impl Spark {
    /// Opens a session on the server at `remote` and sets it up.
    pub fn connect(remote: &SparkRemote) -> Result<Spark, String> {
        let mut builder = ChannelBuilder::parse(&remote.remote)
            .map_err(|e| format!("`{}` is no Spark Connect address: {e}", shown(remote)))?;
        if let Some(token) = &remote.token {
            builder.set("token", token.expose_secret());
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let mut client = runtime
            .block_on(SparkConnectClient::connect(&builder))
            .map_err(|e| format!("cannot reach Spark at {}: {e}", shown(remote)))?;
        // The client's default retries an unreachable server for about ten
        // minutes; a run that cannot reach its engine should say so sooner.
        client.set_retry_policy(RetryPolicy {
            max_retries: Some(SETUP_RETRIES),
            initial_backoff_ms: 500,
            max_backoff_ms: Some(8_000),
            ..RetryPolicy::default()
        });
        let mut spark = Spark {
            client,
            runtime,
            local: builder.is_loopback(),
            piece_bytes: remote.piece_bytes,
        };
        for (key, value) in SESSION {
            spark
                .runtime
                .block_on(spark.client.set_config(key, value))
                .map_err(|e| {
                    format!(
                        "Spark at {}: cannot set `{key}` to `{value}`: {e}",
                        shown(remote)
                    )
                })?;
        }
        // Once the session is up, a job that meets a passing outage (a
        // restarting driver, a dropped stream) is retried as pyspark does.
        spark.client.set_retry_policy(RetryPolicy::default());
        Ok(spark)
    }

    /// Runs a plan and collects the Arrow batches it answers with.
    fn execute(&self, plan: proto::plan::OpType) -> Result<Vec<RecordBatch>, String> {
        let request = proto::ExecutePlanRequest {
            session_id: self.client.session_id().to_string(),
            // The server keys sessions by user and session id: the same user
            // as the client's configuration requests, or this is another
            // session, without the settings.
            user_context: Some(proto::UserContext {
                user_id: self.client.user_id().unwrap_or_default().to_string(),
                ..Default::default()
            }),
            plan: Some(proto::Plan {
                op_type: Some(plan),
            }),
            client_type: Some(format!("accord/{}", env!("CARGO_PKG_VERSION"))),
            ..Default::default()
        };
        self.runtime.block_on(async {
            let mut stream = self
                .client
                .execute_plan_reattachable(request)
                .await
                .map_err(|e| e.to_string())?;
            let mut batches = Vec::new();
            while let Some(response) = stream.message().await.map_err(|e| e.to_string())? {
                if let Some(proto::execute_plan_response::ResponseType::ArrowBatch(arrow)) =
                    response.response_type
                {
                    let reader = StreamReader::try_new(Cursor::new(arrow.data), None)
                        .map_err(|e| format!("Spark's result is no Arrow stream: {e}"))?;
                    for batch in reader {
                        let batch =
                            batch.map_err(|e| format!("Spark's result does not decode: {e}"))?;
                        batches.push(conform(&batch)?);
                    }
                }
            }
            Ok(batches)
        })
    }

    /// Whether the server runs on this machine, and so sees the project's
    /// files at their paths.
    pub fn on_this_machine(&self) -> bool {
        self.local
    }

    /// Makes the files at `paths` (URIs Spark reads: `file:`, `s3a://`,
    /// `abfss://`, `gs://`) of `format` the temporary view `name`; Parquet
    /// files of different columns merge into their union. Each row also
    /// says where it came from, as the columns [`FILE_COLUMN`] (Spark's URI
    /// of its file) and [`ROW_COLUMN`] (its index in the file, from 0):
    /// Spark's hidden `_metadata` column, which a view does not pass on.
    pub fn read_files(&self, name: &str, format: &str, paths: Vec<String>) -> Result<(), String> {
        let mut options = std::collections::HashMap::new();
        options.insert("mergeSchema".to_string(), "true".to_string());
        let read = proto::Relation {
            rel_type: Some(proto::relation::RelType::Read(proto::Read {
                read_type: Some(proto::read::ReadType::DataSource(proto::read::DataSource {
                    format: Some(format.to_string()),
                    options,
                    paths,
                    ..Default::default()
                })),
                is_streaming: false,
            })),
            ..Default::default()
        };
        let expression = |text: String| proto::Expression {
            expr_type: Some(proto::expression::ExprType::ExpressionString(
                proto::expression::ExpressionString { expression: text },
            )),
            ..Default::default()
        };
        let projected = proto::Relation {
            rel_type: Some(proto::relation::RelType::Project(Box::new(
                proto::Project {
                    input: Some(Box::new(read)),
                    expressions: vec![
                        expression("*".to_string()),
                        expression(format!("_metadata.file_path AS {FILE_COLUMN}")),
                        expression(format!("_metadata.row_index AS {ROW_COLUMN}")),
                    ],
                },
            ))),
            ..Default::default()
        };
        self.view(name, projected)
    }

    /// Runs a statement (a view, a cache) for its effect.
    pub fn command(&self, sql: &str) -> Result<(), String> {
        let command = proto::Command {
            command_type: Some(proto::command::CommandType::SqlCommand(proto::SqlCommand {
                input: Some(sql_relation(sql)),
                ..Default::default()
            })),
        };
        self.execute(proto::plan::OpType::Command(command))
            .map(|_| ())
    }

    /// Makes `relation` the temporary view `name`, replacing one of the
    /// same name.
    fn view(&self, name: &str, relation: proto::Relation) -> Result<(), String> {
        let command = proto::Command {
            command_type: Some(proto::command::CommandType::CreateDataframeView(
                proto::CreateDataFrameViewCommand {
                    input: Some(relation),
                    name: name.to_string(),
                    is_global: false,
                    replace: true,
                },
            )),
        };
        self.execute(proto::plan::OpType::Command(command))
            .map(|_| ())
    }
}

impl Engine for Spark {
    fn dialect(&self) -> &'static str {
        "spark"
    }

    fn register_batches(
        &self,
        name: &str,
        schema: SchemaRef,
        batches: Vec<RecordBatch>,
    ) -> Result<(), String> {
        let mut pieces = Pieces::new(self, name, &schema);
        for batch in &batches {
            pieces.push(batch)?;
        }
        pieces.finish()
    }

    /// Reads the streams a batch at a time and sends them a piece at a
    /// time: the run never holds the table, only the piece it is filling.
    fn register_streams(
        &self,
        name: &str,
        schema: SchemaRef,
        streams: Vec<Arc<dyn super::Scan>>,
        _rows: u64,
    ) -> Result<(), String> {
        use futures_util::StreamExt;
        let mut pieces = Pieces::new(self, name, &schema);
        let context = Arc::new(TaskContext::default());
        for stream in streams {
            let mut batches = stream.execute(context.clone());
            while let Some(batch) = self.runtime.block_on(batches.next()) {
                pieces.push(&batch.map_err(|e| e.to_string())?)?;
            }
        }
        pieces.finish()
    }

    fn sql(&self, sql: &str) -> Result<Vec<RecordBatch>, String> {
        self.execute(proto::plan::OpType::Root(sql_relation(sql)))
    }

    fn query(&self, sql: &str) -> Result<RecordBatch, String> {
        let batches = self.sql(sql)?;
        // Spark answers an empty result with one empty batch, which
        // carries the schema.
        let schema = batches
            .first()
            .map(|b| b.schema())
            .ok_or("Spark answered without a result")?;
        datafusion::arrow::compute::concat_batches(&schema, &batches).map_err(|e| e.to_string())
    }

    fn alias(&self, name: &str, table: &str) -> Result<(), String> {
        self.command(&format!(
            "CREATE OR REPLACE TEMPORARY VIEW {} AS SELECT * FROM {}",
            super::ident(name),
            super::ident(table)
        ))
    }

    fn spark(&self) -> Option<&Spark> {
        Some(self)
    }

    fn materialize(&self, name: &str, sql: &str) -> Result<RecordBatch, String> {
        self.keep(name, sql)?;
        self.query(&format!("SELECT * FROM {}", super::ident(name)))
    }

    /// Cached on the server; no row comes back.
    fn keep(&self, name: &str, sql: &str) -> Result<(), String> {
        let quoted = super::ident(name);
        self.command(&format!("DROP VIEW IF EXISTS {quoted}"))?;
        self.command(&format!("CACHE TABLE {quoted} AS {sql}"))
    }
}

/// The remote as it may be shown: without its `;token=...` parameter.
fn shown(remote: &SparkRemote) -> String {
    match remote.remote.split_once(';') {
        Some((address, _)) => format!("{address} (parameters not shown)"),
        None => remote.remote.clone(),
    }
}

fn sql_relation(sql: &str) -> proto::Relation {
    proto::Relation {
        rel_type: Some(proto::relation::RelType::Sql(proto::Sql {
            query: sql.to_string(),
            ..Default::default()
        })),
        ..Default::default()
    }
}

/// A table sent to the session in pieces of at most [`PIECE_BYTES`](super::PIECE_BYTES) (or
/// the tests' smaller size, [`SparkRemote::piece_bytes`]), each
/// a view as soon as it is full; the table is the one piece's view, or
/// the union of them all.
struct Pieces<'a> {
    spark: &'a Spark,
    name: &'a str,
    schema: SchemaRef,
    /// The piece being filled, and its size.
    held: Vec<RecordBatch>,
    bytes: usize,
    /// The views of the pieces sent.
    sent: Vec<String>,
}

impl<'a> Pieces<'a> {
    fn new(spark: &'a Spark, name: &'a str, schema: &SchemaRef) -> Pieces<'a> {
        Pieces {
            spark,
            name,
            schema: for_spark_schema(schema),
            held: Vec::new(),
            bytes: 0,
            sent: Vec::new(),
        }
    }

    /// Adds a batch, sending the piece first if the batch would overfill it.
    fn push(&mut self, batch: &RecordBatch) -> Result<(), String> {
        let batch = cast_to(batch, &self.schema)?;
        let bytes = batch.get_array_memory_size();
        if self.bytes > 0 && self.bytes + bytes > self.spark.piece_bytes {
            self.send()?;
        }
        self.bytes += bytes;
        self.held.push(batch);
        Ok(())
    }

    fn send(&mut self) -> Result<(), String> {
        let part = format!("{}__piece_{}", self.name, self.sent.len());
        self.spark
            .view(&part, local_relation(&self.schema, &self.held)?)?;
        self.sent.push(part);
        self.held.clear();
        self.bytes = 0;
        Ok(())
    }

    /// Makes the table: the piece as it is when it is the only one (an
    /// empty table included), else the union of every piece.
    fn finish(mut self) -> Result<(), String> {
        if self.sent.is_empty() {
            return self
                .spark
                .view(self.name, local_relation(&self.schema, &self.held)?);
        }
        if !self.held.is_empty() {
            self.send()?;
        }
        let parts: Vec<String> = self
            .sent
            .iter()
            .map(|part| format!("SELECT * FROM {}", super::ident(part)))
            .collect();
        self.spark.command(&format!(
            "CREATE OR REPLACE TEMPORARY VIEW {} AS {}",
            super::ident(self.name),
            parts.join(" UNION ALL ")
        ))
    }
}

/// Batches as an Arrow local relation: one IPC stream (the schema, then
/// the batches).
fn local_relation(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<proto::Relation, String> {
    let mut writer = StreamWriter::try_new(Vec::new(), schema).map_err(|e| e.to_string())?;
    for batch in batches {
        writer.write(batch).map_err(|e| e.to_string())?;
    }
    let data = writer.into_inner().map_err(|e| e.to_string())?;
    Ok(proto::Relation {
        rel_type: Some(proto::relation::RelType::LocalRelation(
            proto::LocalRelation {
                data: Some(data.into()),
                schema: None,
            },
        )),
        ..Default::default()
    })
}

/// The types Spark reads from Arrow for the embedded engine's types: a
/// timestamp with its zone (UTC; a zoneless one would be Spark's
/// `TIMESTAMP_NTZ`, which compares differently), plain UTF-8 strings.
fn for_spark_type(ty: &DataType) -> DataType {
    match ty {
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
        }
        DataType::Utf8View | DataType::LargeUtf8 => DataType::Utf8,
        DataType::List(item) => DataType::List(Arc::new(Field::new(
            item.name(),
            for_spark_type(item.data_type()),
            true,
        ))),
        other => other.clone(),
    }
}

fn for_spark_schema(schema: &SchemaRef) -> SchemaRef {
    Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| Field::new(f.name(), for_spark_type(f.data_type()), true))
            .collect::<Vec<_>>(),
    ))
}

/// `batch` with its columns cast to `schema`'s types (Spark's, or, coming
/// back, the embedded engine's).
fn cast_to(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, String> {
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(column, field)| retype(column, field.data_type()))
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new(schema.clone(), columns).map_err(|e| e.to_string())
}

/// The embedded engine's type for one of Spark's: timestamps without a
/// zone (they hold UTC), decimals as doubles, large or view strings and
/// lists as plain ones.
fn embedded_type(ty: &DataType) -> DataType {
    match ty {
        DataType::Timestamp(_, _) => DataType::Timestamp(TimeUnit::Microsecond, None),
        DataType::Decimal128(_, _) | DataType::Decimal256(_, _) => DataType::Float64,
        DataType::Utf8View | DataType::LargeUtf8 => DataType::Utf8,
        DataType::List(item) | DataType::LargeList(item) => DataType::List(Arc::new(Field::new(
            item.name(),
            embedded_type(item.data_type()),
            true,
        ))),
        other => other.clone(),
    }
}

/// A result batch of Spark in the embedded engine's types (see
/// [`embedded_type`]).
pub fn conform(batch: &RecordBatch) -> Result<RecordBatch, String> {
    let schema = Arc::new(Schema::new(
        batch
            .schema()
            .fields()
            .iter()
            .map(|f| Field::new(f.name(), embedded_type(f.data_type()), f.is_nullable()))
            .collect::<Vec<_>>(),
    ));
    cast_to(batch, &schema)
}

/// One column in `to`. A timestamp keeps its instants: only the zone
/// label changes (a cast would shift zoneless values by the zone).
fn retype(column: &ArrayRef, to: &DataType) -> Result<ArrayRef, String> {
    if column.data_type() == to {
        return Ok(column.clone());
    }
    match (column.data_type(), to) {
        (DataType::Timestamp(TimeUnit::Microsecond, _), DataType::Timestamp(_, zone)) => {
            let values = column.as_primitive::<TimestampMicrosecondType>().clone();
            Ok(Arc::new(values.with_timezone_opt(zone.clone())))
        }
        (DataType::Timestamp(_, _), DataType::Timestamp(_, zone)) => {
            // Another unit: to microseconds, keeping the zone, then relabel.
            let micros = cast(
                column,
                &DataType::Timestamp(
                    TimeUnit::Microsecond,
                    match column.data_type() {
                        DataType::Timestamp(_, z) => z.clone(),
                        _ => None,
                    },
                ),
            )
            .map_err(|e| e.to_string())?;
            let values = micros.as_primitive::<TimestampMicrosecondType>().clone();
            Ok(Arc::new(values.with_timezone_opt(zone.clone())))
        }
        _ => cast(column, to).map_err(|e| format!("Spark's {} column: {e}", column.data_type())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Decimal128Array, LargeStringArray, TimestampMicrosecondArray};

    #[test]
    fn spark_results_take_the_embedded_engines_types() {
        let schema = Arc::new(Schema::new(vec![
            Field::new(
                "at",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                true,
            ),
            Field::new("score", DataType::Decimal128(5, 2), true),
            Field::new("name", DataType::LargeUtf8, true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(
                    TimestampMicrosecondArray::from(vec![Some(1_000_000)]).with_timezone("UTC"),
                ),
                Arc::new(
                    Decimal128Array::from(vec![Some(1250)])
                        .with_precision_and_scale(5, 2)
                        .unwrap(),
                ),
                Arc::new(LargeStringArray::from(vec![Some("a")])),
            ],
        )
        .unwrap();
        let conformed = conform(&batch).unwrap();
        let types: Vec<DataType> = conformed
            .schema()
            .fields()
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        assert_eq!(
            types,
            vec![
                DataType::Timestamp(TimeUnit::Microsecond, None),
                DataType::Float64,
                DataType::Utf8
            ]
        );
        // The instant is kept, not shifted by a zone.
        assert_eq!(
            conformed
                .column(0)
                .as_primitive::<TimestampMicrosecondType>()
                .value(0),
            1_000_000
        );
        assert_eq!(
            super::super::cell(conformed.column(1), 0),
            serde_json::json!(12.5)
        );
    }

    #[test]
    fn tables_go_to_spark_with_utc_timestamps() {
        let schema = Arc::new(Schema::new(vec![Field::new(
            "at",
            DataType::Timestamp(TimeUnit::Microsecond, None),
            true,
        )]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(TimestampMicrosecondArray::from(vec![Some(7)]))],
        )
        .unwrap();
        let to = for_spark_schema(&schema);
        let sent = cast_to(&batch, &to).unwrap();
        assert_eq!(
            sent.schema().field(0).data_type(),
            &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
        );
        assert_eq!(
            sent.column(0)
                .as_primitive::<TimestampMicrosecondType>()
                .value(0),
            7
        );
    }

    #[test]
    fn the_shown_remote_leaves_out_its_parameters() {
        let remote = SparkRemote {
            remote: "sc://spark.internal:15002/;token=abc;use_ssl=true".into(),
            token: None,
            piece_bytes: crate::run::engine::PIECE_BYTES,
        };
        assert_eq!(
            shown(&remote),
            "sc://spark.internal:15002/ (parameters not shown)"
        );
    }
}
