//! A streamed table as the embedded engine scans it: its partitions are
//! read again on every scan (`sources::streamed`), so what a scan decodes
//! is what a query costs. Two things a `StreamingTable` does not do, each
//! measured (docs/scale.md):
//!
//! - **It tells the planner how many rows it holds.** DataFusion picks the
//!   side of a hash join it builds its table from by the two sides'
//!   statistics, and swaps them only when both sides have some: without a
//!   row count, a join of the 10M people with the 1M accounts built its
//!   table from the people. The count is known once a source is checked,
//!   so the scan says it (an estimate: `Inexact`).
//! - **A scan decodes only the columns its query uses.** A source is read
//!   with every column the run needs somewhere (its key always), and each
//!   query uses a few: an audience over events never reads their key, and
//!   a `StreamingTable` decoded every column and then dropped the others.
//! - **A scan is given the query's filters on the table.** A partition may
//!   leave out the rows they refuse as it reads (a Parquet partition then
//!   decodes the other columns of the rows kept only); the engine still
//!   filters what the scan gives (`Inexact`), so a partition that ignores
//!   them, or cannot judge a row, gives a right answer too.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::Session;
use datafusion::common::stats::Precision;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DFSchema, Result, Statistics, internal_err};
use datafusion::datasource::{TableProvider, TableType};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::expr_rewriter::unnormalize_col;
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{BinaryExpr, Expr, Operator, TableProviderFilterPushDown};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::coop::make_cooperative;
use datafusion::physical_plan::execution_plan::{
    Boundedness, ChildrenPropertiesMode, EmissionType, ReplaceChildrenOptions, SchedulingType,
};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
    SendableRecordBatchStream,
};
use futures_util::StreamExt;

/// A partition of a streamed table, scanned for one query.
pub trait Scan: PartitionStream {
    /// The partition's rows as a query scans them: the columns of
    /// `projection` (indices into the schema; every column when `None`).
    /// `filter` is the query's filters on the table, over its columns
    /// (the schema's, not the projection's): rows it does not keep (false
    /// or null) may be left out, or given; the engine filters after the
    /// scan. The default reads every column and every row, and drops the
    /// columns not projected.
    fn scan(
        &self,
        projection: Option<&[usize]>,
        _filter: Option<&Arc<dyn PhysicalExpr>>,
        ctx: Arc<TaskContext>,
    ) -> SendableRecordBatchStream {
        projected(self.execute(ctx), self.schema(), projection)
    }
}

/// `stream` (of `schema`) with only the columns of `projection`.
pub fn projected(
    stream: SendableRecordBatchStream,
    schema: &SchemaRef,
    projection: Option<&[usize]>,
) -> SendableRecordBatchStream {
    let Some(projection) = projection.map(<[usize]>::to_vec) else {
        return stream;
    };
    let schema = match schema.project(&projection) {
        Ok(schema) => Arc::new(schema),
        Err(e) => {
            let e = datafusion::error::DataFusionError::from(e);
            return Box::pin(RecordBatchStreamAdapter::new(
                Arc::new(datafusion::arrow::datatypes::Schema::empty()),
                futures_util::stream::once(async move { Err(e) }),
            ));
        }
    };
    Box::pin(RecordBatchStreamAdapter::new(
        schema,
        stream.map(move |batch| Ok(batch?.project(&projection)?)),
    ))
}

/// A table of streamed partitions holding `rows` rows.
pub struct StreamedTable {
    schema: SchemaRef,
    partitions: Vec<Arc<dyn Scan>>,
    rows: usize,
}

impl fmt::Debug for StreamedTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamedTable")
            .field("partitions", &self.partitions.len())
            .field("rows", &self.rows)
            .finish()
    }
}

impl StreamedTable {
    /// The table; every partition must have `schema`.
    pub fn new(
        schema: SchemaRef,
        partitions: Vec<Arc<dyn Scan>>,
        rows: usize,
    ) -> Result<StreamedTable, String> {
        if let Some(p) = partitions.iter().find(|p| p.schema() != &schema) {
            return Err(format!(
                "a streamed partition's columns differ from its table's: {:?} against {:?}",
                p.schema(),
                schema
            ));
        }
        Ok(StreamedTable {
            schema,
            partitions,
            rows,
        })
    }
}

#[async_trait]
impl TableProvider for StreamedTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    /// Every filter on the table reaches its scan, which may or may not
    /// apply it: the engine filters after the scan.
    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        // Over the table's columns, unqualified (the filters name the
        // table). A filter the engine cannot plan here is left to the
        // filter above the scan.
        let filter = conjunction(filters.iter().cloned()).and_then(|expr| {
            let columns = DFSchema::try_from(self.schema.clone()).ok()?;
            state
                .create_physical_expr(unnormalize_col(true_where(expr)), &columns)
                .ok()
        });
        let projected = match projection {
            Some(p) => Arc::new(self.schema.project(p)?),
            None => self.schema.clone(),
        };
        let properties = PlanProperties::new(
            EquivalenceProperties::new(projected.clone()),
            Partitioning::UnknownPartitioning(self.partitions.len()),
            EmissionType::Incremental,
            Boundedness::Bounded,
        )
        .with_scheduling_type(SchedulingType::Cooperative);
        Ok(Arc::new(StreamedScan {
            partitions: self.partitions.clone(),
            projection: projection.cloned(),
            filter,
            schema: projected,
            properties: Arc::new(properties),
            rows: limit.map_or(self.rows, |l| l.min(self.rows)),
        }))
    }
}

/// `filter` with each `x IS NOT NULL AND x` among its `AND` and `OR`
/// operands made `x`: true for the same rows, and a scan keeps the rows a
/// filter holds true (whether an `AND`/`OR` is true depends only on which
/// of its operands are). DataFusion writes the rendered `COALESCE(x,
/// FALSE)` so, and judging it as written compares every row twice.
fn true_where(filter: Expr) -> Expr {
    match filter {
        Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::And,
            right,
        }) if matches!(&*left, Expr::IsNotNull(x) if **x == *right) => true_where(*right),
        Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::And,
            right,
        }) if matches!(&*right, Expr::IsNotNull(x) if **x == *left) => true_where(*left),
        Expr::BinaryExpr(BinaryExpr {
            left,
            op: op @ (Operator::And | Operator::Or),
            right,
        }) => Expr::BinaryExpr(BinaryExpr::new(
            Box::new(true_where(*left)),
            op,
            Box::new(true_where(*right)),
        )),
        other => other,
    }
}

/// The scan of a [`StreamedTable`] for one query.
struct StreamedScan {
    partitions: Vec<Arc<dyn Scan>>,
    projection: Option<Vec<usize>>,
    filter: Option<Arc<dyn PhysicalExpr>>,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
    rows: usize,
}

impl fmt::Debug for StreamedScan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamedScan")
            .field("projection", &self.projection)
            .field("filter", &self.filter)
            .field("rows", &self.rows)
            .finish()
    }
}

impl DisplayAs for StreamedScan {
    fn fmt_as(&self, _: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "StreamedScan: partitions={}, rows={}, projection={:?}",
            self.partitions.len(),
            self.rows,
            self.projection
        )?;
        match &self.filter {
            Some(filter) => write!(f, ", filter={filter}"),
            None => Ok(()),
        }
    }
}

impl ExecutionPlan for StreamedScan {
    fn name(&self) -> &str {
        "StreamedScan"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        Vec::new()
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        match &self.filter {
            Some(filter) => f(filter),
            None => Ok(TreeNodeRecursion::Continue),
        }
    }

    fn replace_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
        _: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if children.is_empty() {
            Ok(self)
        } else {
            internal_err!("StreamedScan has no children")
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
        let Some(part) = self.partitions.get(partition) else {
            return internal_err!("StreamedScan has no partition {partition}");
        };
        let stream = part.scan(self.projection.as_deref(), self.filter.as_ref(), context);
        Ok(make_cooperative(stream))
    }

    fn partition_statistics(&self, partition: Option<usize>) -> Result<Arc<Statistics>> {
        let parts = self.partitions.len().max(1);
        let rows = match partition {
            None => self.rows,
            Some(_) => self.rows.div_ceil(parts),
        };
        let mut statistics = Statistics::new_unknown(&self.schema);
        statistics.num_rows = Precision::Inexact(rows);
        Ok(Arc::new(statistics))
    }
}

#[cfg(test)]
mod tests {
    use datafusion::prelude::{col, lit, not};

    use super::*;

    fn coalesced(x: Expr) -> Expr {
        x.clone().is_not_null().and(x)
    }

    /// `COALESCE(x, FALSE)` as DataFusion writes it, under `AND` and `OR`
    /// (either way round), is judged as `x`; under a `NOT` it is left as it
    /// is (there the rows where `x` is null would change sides).
    #[test]
    fn a_coalesced_operand_is_judged_once() {
        let (a, b) = (col("a").eq(lit("c4")), col("b").gt(lit(1)));
        let written = coalesced(a.clone()).or(b.clone().and(b.clone().is_not_null()));
        assert_eq!(true_where(written), a.clone().or(b.clone()));

        let nested = coalesced(coalesced(a.clone()).and(b.clone()));
        assert_eq!(true_where(nested), a.clone().and(b.clone()));

        let negated = not(coalesced(a.clone()));
        assert_eq!(true_where(negated.clone()), negated);

        let other = a.clone().is_not_null().and(b.clone());
        assert_eq!(true_where(other.clone()), other);
    }
}
