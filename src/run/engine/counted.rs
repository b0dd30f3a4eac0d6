//! A streamed table that tells the planner how many rows it holds.
//!
//! DataFusion picks the side of a hash join it builds its table from by
//! the two sides' statistics, and swaps them only when both sides have
//! some. A `StreamingTable` has none, so a join of a streamed person table
//! (10M rows) with the accounts (1M) built its hash table from the people,
//! as written: most of the time of linking people to accounts went to
//! building and probing that table, and its memory was the people's. The
//! row count of a streamed source is known once it is checked, so the scan
//! says it (an estimate to the planner: `Inexact`), and the planner builds
//! from the smaller side.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::Session;
use datafusion::catalog::streaming::StreamingTable;
use datafusion::common::stats::Precision;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{Result, Statistics, internal_err};
use datafusion::datasource::{TableProvider, TableType};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::Expr;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::execution_plan::{ChildrenPropertiesMode, ReplaceChildrenOptions};
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties, SendableRecordBatchStream,
};

/// A [`StreamingTable`] of `rows` rows.
#[derive(Debug)]
pub struct CountedTable {
    inner: StreamingTable,
    rows: usize,
}

impl CountedTable {
    pub fn new(inner: StreamingTable, rows: usize) -> CountedTable {
        CountedTable { inner, rows }
    }
}

#[async_trait]
impl TableProvider for CountedTable {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }

    fn table_type(&self) -> TableType {
        self.inner.table_type()
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let inner = self.inner.scan(state, projection, filters, limit).await?;
        let rows = limit.map_or(self.rows, |l| l.min(self.rows));
        Ok(Arc::new(CountedScan { inner, rows }))
    }
}

/// The scan of a [`CountedTable`]: the streaming scan, with its row count.
#[derive(Debug)]
struct CountedScan {
    inner: Arc<dyn ExecutionPlan>,
    rows: usize,
}

impl DisplayAs for CountedScan {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CountedScan: rows={}, ", self.rows)?;
        self.inner.fmt_as(t, f)
    }
}

impl ExecutionPlan for CountedScan {
    fn name(&self) -> &str {
        "CountedScan"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.inner.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        Vec::new()
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
        _: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if children.is_empty() {
            Ok(self)
        } else {
            internal_err!("CountedScan has no children")
        }
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.replace_children(
            children,
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
        )
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        self.inner.execute(partition, context)
    }

    fn partition_statistics(&self, partition: Option<usize>) -> Result<Arc<Statistics>> {
        let parts = self.properties().partitioning.partition_count().max(1);
        let rows = match partition {
            None => self.rows,
            Some(_) => self.rows.div_ceil(parts),
        };
        let mut statistics = Statistics::new_unknown(&self.schema());
        statistics.num_rows = Precision::Inexact(rows);
        Ok(Arc::new(statistics))
    }
}
