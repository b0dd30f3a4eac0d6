//! The embedded engine: a DataFusion session in this process.

use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::streaming::StreamingTable;
use datafusion::datasource::MemTable;
use datafusion::physical_plan::streaming::PartitionStream;
use datafusion::prelude::{SessionConfig, SessionContext};

use super::{Engine, cores};

/// Rows per batch in registered tables: DataFusion's default batch size.
const BATCH_ROWS: usize = 8192;

pub struct Embedded {
    ctx: SessionContext,
    runtime: tokio::runtime::Runtime,
}

impl Embedded {
    pub fn new() -> Result<Embedded, String> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        // Rendered SQL quotes every name from the specs, so the default
        // identifier normalisation leaves them as written.
        let config = SessionConfig::new().with_information_schema(false);
        Ok(Embedded {
            ctx: SessionContext::new_with_config(config),
            runtime,
        })
    }
}

impl Engine for Embedded {
    fn dialect(&self) -> &'static str {
        "datafusion"
    }

    fn register_batches(
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

    fn register_streams(
        &self,
        name: &str,
        schema: SchemaRef,
        streams: Vec<Arc<dyn PartitionStream>>,
    ) -> Result<(), String> {
        if streams.is_empty() {
            return self.register_batches(name, schema, Vec::new());
        }
        let table = StreamingTable::try_new(schema, streams).map_err(|e| e.to_string())?;
        let _ = self.ctx.deregister_table(name);
        self.ctx
            .register_table(name, Arc::new(table))
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    fn forget(&self, name: &str) -> Result<(), String> {
        self.ctx
            .deregister_table(name)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    fn sql(&self, sql: &str) -> Result<Vec<RecordBatch>, String> {
        self.runtime.block_on(async {
            let df = self.ctx.sql(sql).await.map_err(|e| e.to_string())?;
            df.collect().await.map_err(|e| e.to_string())
        })
    }

    fn query(&self, sql: &str) -> Result<RecordBatch, String> {
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
