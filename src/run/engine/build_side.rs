//! Which side of a hash join the embedded engine builds its table from,
//! where DataFusion's statistics cannot tell.
//!
//! The audience query joins each table to its children grouped by its
//! key (`person LEFT JOIN (events grouped by person)`; see
//! docs/render.md). The grouped side holds one row per parent key that a
//! child passing the features' filters reaches, so never more rows than
//! the parents (links to missing parents aside). DataFusion does not know
//! that: it estimates a filter to keep a fifth of its input (an `OR` of
//! features cannot be judged from column statistics) and a grouping to
//! keep every row, so 10M events filtered and grouped by person look
//! twice the size of 1M people, and it built its table from the people.
//! [`BuildOnGroups`] runs after DataFusion's `JoinSelection` and turns
//! such a join round: the table is built from the grouped side and the
//! parent table streams past it.

use std::sync::Arc;

use datafusion::common::JoinType;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::error::Result;
use datafusion::physical_expr::PhysicalExprRef;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::joins::{HashJoinExec, PartitionMode};
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::repartition::RepartitionExec;

/// Builds a partitioned hash join's table from its probe side when that
/// side is grouped on the join's keys and the build side is not (see the
/// module's documentation). Joins built from one partition
/// (`CollectLeft`: DataFusion found the build side small), joins whose
/// sides are both grouped, and join types other than inner and left are
/// left as DataFusion planned them.
#[derive(Debug)]
pub struct BuildOnGroups;

impl PhysicalOptimizerRule for BuildOnGroups {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            let Some(join) = node.downcast_ref::<HashJoinExec>() else {
                return Ok(Transformed::no(node));
            };
            let turn = *join.partition_mode() == PartitionMode::Partitioned
                && matches!(join.join_type(), JoinType::Inner | JoinType::Left)
                && columns(join.on().iter().map(|(_, right)| right))
                    .is_some_and(|k| one_row_per_key(join.right(), &k))
                && !columns(join.on().iter().map(|(left, _)| left))
                    .is_some_and(|k| one_row_per_key(join.left(), &k));
            if turn {
                join.swap_inputs(PartitionMode::Partitioned)
                    .map(Transformed::yes)
            } else {
                Ok(Transformed::no(node))
            }
        })
        .data()
    }

    fn name(&self) -> &str {
        "accord_build_on_groups"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// Where this rule goes among DataFusion's: right after `JoinSelection`,
/// before the rules that repartition the join's inputs and push its
/// build side's keys into the probe side's scan as a filter (a join
/// cannot be turned round after that).
pub fn with_build_on_groups(
    mut rules: Vec<Arc<dyn PhysicalOptimizerRule + Send + Sync>>,
) -> Vec<Arc<dyn PhysicalOptimizerRule + Send + Sync>> {
    let at = rules
        .iter()
        .position(|r| r.name() == "join_selection")
        .map_or(0, |i| i + 1);
    rules.insert(at, Arc::new(BuildOnGroups));
    rules
}

/// The column indices of one side's join keys, when every key is a
/// plain column of that side.
fn columns<'a>(keys: impl Iterator<Item = &'a PhysicalExprRef>) -> Option<Vec<usize>> {
    keys.map(|key| key.downcast_ref::<Column>().map(Column::index))
        .collect()
}

/// Whether `plan` yields at most one row per value of the columns
/// `keys`: a grouping (not its partial stage, which may emit a key once
/// per batch) whose group columns are all among the keys, seen through
/// the operators that keep or drop rows without making new ones.
fn one_row_per_key(plan: &Arc<dyn ExecutionPlan>, keys: &[usize]) -> bool {
    if let Some(aggregate) = plan.downcast_ref::<AggregateExec>() {
        let groups = aggregate.group_expr();
        return *aggregate.mode() != AggregateMode::Partial
            && groups.is_single()
            && !groups.expr().is_empty()
            && (0..groups.expr().len()).all(|g| keys.contains(&g));
    }
    if let Some(projection) = plan.downcast_ref::<ProjectionExec>() {
        // A key computed by the projection is not the grouping's column.
        let inner: Option<Vec<usize>> = keys
            .iter()
            .map(|&k| {
                let expr = &projection.expr().get(k)?.expr;
                expr.downcast_ref::<Column>().map(Column::index)
            })
            .collect();
        return inner.is_some_and(|inner| one_row_per_key(projection.input(), &inner));
    }
    // These pass their input's columns through unchanged.
    let input = if let Some(filter) = plan.downcast_ref::<FilterExec>() {
        if filter.projection().is_some() {
            return false;
        }
        filter.input()
    } else if let Some(repartition) = plan.downcast_ref::<RepartitionExec>() {
        repartition.input()
    } else if let Some(coalesce) = plan.downcast_ref::<CoalescePartitionsExec>() {
        coalesce.input()
    } else {
        return false;
    };
    one_row_per_key(input, keys)
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{Int64Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::arrow::record_batch::RecordBatch;
    use datafusion::arrow::util::pretty::pretty_format_batches;
    use datafusion::datasource::MemTable;
    use datafusion::execution::SessionStateBuilder;
    use datafusion::physical_plan::displayable;
    use datafusion::prelude::{SessionConfig, SessionContext};

    use super::*;

    /// A session on two partitions that never builds a join's table in
    /// one partition, with or without the rule, holding `parents` (1,000
    /// rows, keys p0..p999) and `children` (3,000 rows: four for each of
    /// the first 600 parents, and 600 of missing parents).
    fn session(with_rule: bool) -> SessionContext {
        let mut config = SessionConfig::new().with_target_partitions(2);
        let optimizer = &mut config.options_mut().optimizer;
        optimizer.hash_join_single_partition_threshold = 0;
        optimizer.hash_join_single_partition_threshold_rows = 0;
        let mut builder = SessionStateBuilder::new()
            .with_config(config)
            .with_default_features();
        if with_rule {
            let rules = datafusion::physical_optimizer::optimizer::PhysicalOptimizer::new().rules;
            builder = builder.with_physical_optimizer_rules(with_build_on_groups(rules));
        }
        let ctx = SessionContext::new_with_state(builder.build());
        let table = |name: &str, keys: Vec<String>, values: Vec<i64>| {
            let schema = Arc::new(Schema::new(vec![
                Field::new("k", DataType::Utf8, false),
                Field::new("v", DataType::Int64, false),
            ]));
            let batch = RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(StringArray::from(keys)),
                    Arc::new(Int64Array::from(values)),
                ],
            )
            .expect("batch");
            let table = MemTable::try_new(schema, vec![vec![batch]]).expect("table");
            ctx.register_table(name, Arc::new(table)).expect("register");
        };
        table(
            "parents",
            (0..1000).map(|i| format!("p{i}")).collect(),
            (0..1000).collect(),
        );
        let children: Vec<String> = (0..3000)
            .map(|i| match i {
                0..2400 => format!("p{}", i % 600),
                _ => format!("missing{i}"),
            })
            .collect();
        table("children", children, (0..3000).collect());
        ctx
    }

    /// The query's physical plan and its sorted result.
    fn run(ctx: &SessionContext, sql: &str) -> (String, String) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let df = ctx.sql(sql).await.expect("plan");
            let plan = df
                .clone()
                .create_physical_plan()
                .await
                .expect("physical plan");
            let shown = displayable(plan.as_ref()).indent(true).to_string();
            let batches = df.collect().await.expect("run");
            (
                shown,
                pretty_format_batches(&batches).expect("shown").to_string(),
            )
        })
    }

    /// The first hash join's line of a plan.
    fn first_join(plan: &str) -> &str {
        plan.lines()
            .find(|l| l.contains("HashJoinExec"))
            .expect("a hash join")
            .trim()
    }

    const PARENTS_AND_GROUPED_CHILDREN: &str = "SELECT p.k, p.v, COALESCE(g.n, 0) AS n \
         FROM parents p LEFT JOIN (SELECT k, count(*) AS n FROM children WHERE v >= 0 GROUP BY k) g \
         ON g.k = p.k ORDER BY p.k";

    #[test]
    fn a_parent_table_streams_past_its_children_grouped_by_its_key() {
        let (before, rows_before) = run(&session(false), PARENTS_AND_GROUPED_CHILDREN);
        let (after, rows_after) = run(&session(true), PARENTS_AND_GROUPED_CHILDREN);
        // DataFusion estimates the grouping at 3,000 rows and builds on
        // the 1,000 parents; the rule builds on the grouping.
        assert!(first_join(&before).contains("join_type=Left"), "{before}");
        assert!(first_join(&after).contains("join_type=Right"), "{after}");
        assert!(first_join(&after).contains("on=[(k@0, k@0)]"), "{after}");
        assert_eq!(rows_before, rows_after);
        assert!(rows_after.contains("| p599 | 599 | 4 |"), "{rows_after}");
        assert!(rows_after.contains("| p999 | 999 | 0 |"), "{rows_after}");
        assert_eq!(
            rows_after.lines().filter(|l| l.starts_with("| p")).count(),
            1000
        );
    }

    #[test]
    fn joins_of_tables_or_of_two_groupings_are_left_as_planned() {
        for sql in [
            "SELECT p.k, c.v FROM parents p JOIN children c ON c.k = p.k ORDER BY p.k, c.v",
            "SELECT a.k, a.n, b.n AS m FROM (SELECT k, count(*) AS n FROM parents GROUP BY k) a \
             LEFT JOIN (SELECT k, count(*) AS n FROM children GROUP BY k) b ON b.k = a.k ORDER BY a.k",
            // Grouped on the key and another column: a key's rows repeat.
            "SELECT p.k, g.v FROM parents p LEFT JOIN (SELECT k, v FROM children GROUP BY k, v) g \
             ON g.k = p.k ORDER BY p.k, g.v",
            // The grouping's key is not the join's key.
            "SELECT p.k, g.n FROM parents p LEFT JOIN (SELECT k, count(*) AS n FROM children GROUP BY k) g \
             ON g.n = p.v ORDER BY p.k, g.n",
        ] {
            let (before, rows_before) = run(&session(false), sql);
            let (after, rows_after) = run(&session(true), sql);
            assert_eq!(first_join(&before), first_join(&after), "{sql}");
            assert_eq!(rows_before, rows_after, "{sql}");
        }
    }
}
