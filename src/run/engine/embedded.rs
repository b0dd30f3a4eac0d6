//! The embedded engine: a DataFusion session in this process.

use std::num::NonZeroUsize;
use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::UInt32Array;
use datafusion::arrow::compute::take_record_batch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::datasource::MemTable;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::TrackConsumersPool;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::physical_optimizer::optimizer::PhysicalOptimizer;
use datafusion::prelude::{SessionConfig, SessionContext};

use super::build_side::with_build_on_groups;
use super::pool::RunPool;
use super::streamed_table::{Scan, StreamedTable};
use super::{Batches, Engine, cores};
use crate::memory_limit::MemoryLimit;

/// Rows per batch in registered tables: DataFusion's default batch size.
const BATCH_ROWS: usize = 8192;

pub struct Embedded {
    ctx: SessionContext,
    runtime: tokio::runtime::Runtime,
    /// Where the queries spill (`None`: the system's temporary folder);
    /// removed with the engine, after the session that wrote into it.
    _spill: Option<tempfile::TempDir>,
    /// The memory pool's size, when one limits the queries.
    limit: Option<u64>,
}

impl Embedded {
    /// A session whose queries may hold any amount of memory (the
    /// default, without a `memory_limit`), spilling nowhere.
    pub fn new() -> Result<Embedded, String> {
        Embedded::with_runtime(RuntimeEnvBuilder::new(), None, None)
    }

    /// A session whose sorts, groupings and joins together hold at most
    /// `limit` (of what the machine has, [`machine_memory`]): the sorts and
    /// groupings spill to a folder under `root/.accord/tmp/` beyond it
    /// (the system's temporary folder where the project has none to
    /// give), and an operator that cannot spill (a hash join's build
    /// side) fails with the engine's "Resources exhausted". The limit
    /// covers the engine's operators, not the rows the run holds itself
    /// (an activation's members) nor the engine's registered tables. Its
    /// costs: tables registered from whole batches are copied into the
    /// session's batches (see `register_batches`), and each sort keeps
    /// 10 MB per core aside for merging what it spilled.
    pub fn limited(limit: MemoryLimit, root: &Path) -> Result<Embedded, String> {
        let bytes = match (limit, machine_memory()) {
            (MemoryLimit::Share(_), None) => None,
            (limit, available) => Some(limit.bytes(available.unwrap_or(0))),
        };
        let spill = crate::run::io::scratch_folder(root, "engine", "the engine's spill files").ok();
        let disk = DiskManagerBuilder::default().with_mode(match &spill {
            Some(folder) => DiskManagerMode::Directories(vec![folder.path().to_path_buf()]),
            None => DiskManagerMode::OsTmpDirectory,
        });
        let mut env = RuntimeEnvBuilder::new().with_disk_manager_builder(disk);
        if let Some(bytes) = bytes {
            // Fair: each spilling operator of a query gets its share, so
            // one sort cannot starve the next, counted over at least one
            // per core; repartitions are always granted (`pool`); the
            // error of an operator that cannot get its memory names the
            // largest holders.
            let bytes = usize::try_from(bytes).unwrap_or(usize::MAX);
            let headroom = SessionConfig::new()
                .options()
                .execution
                .sort_spill_reservation_bytes;
            let pool = RunPool::new(bytes, cores(), headroom);
            let top = NonZeroUsize::new(3).expect("three");
            env = env.with_memory_pool(Arc::new(TrackConsumersPool::new(pool, top)));
        }
        Embedded::with_runtime(env, spill, bytes)
    }

    fn with_runtime(
        env: RuntimeEnvBuilder,
        spill: Option<tempfile::TempDir>,
        limit: Option<u64>,
    ) -> Result<Embedded, String> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        // Rendered SQL quotes every name from the specs, so the default
        // identifier normalisation leaves them as written.
        let config = SessionConfig::new().with_information_schema(false);
        let env = env.build_arc().map_err(|e| e.to_string())?;
        let rules = with_build_on_groups(PhysicalOptimizer::new().rules);
        let state = SessionStateBuilder::new()
            .with_config(config)
            .with_runtime_env(env)
            .with_default_features()
            .with_physical_optimizer_rules(rules)
            .build();
        Ok(Embedded {
            ctx: SessionContext::new_with_state(state),
            runtime,
            _spill: spill,
            limit,
        })
    }
}

/// The memory this process may use, in bytes: the machine's
/// (`/proc/meminfo`), or less where a control group limits it (a
/// container's `memory.max`). `None` where neither can be read (not
/// Linux): a share of it then limits nothing.
fn machine_memory() -> Option<u64> {
    let total = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
            let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kib * 1024)
        });
    // cgroup v2, then v1 (whose "no limit" is a huge number).
    let group = [
        "/sys/fs/cgroup/memory.max",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    ]
    .iter()
    .find_map(|path| {
        std::fs::read_to_string(path)
            .ok()?
            .trim()
            .parse::<u64>()
            .ok()
    });
    match (total, group) {
        (Some(t), Some(g)) => Some(t.min(g)),
        (one, other) => one.or(other),
    }
}

impl Embedded {
    /// Registers (or replaces) a table of `batches`; with `key`, the
    /// batches hold its rows in ascending order of that column, nulls
    /// last, and the table says so.
    fn register_in_order(
        &self,
        name: &str,
        schema: SchemaRef,
        batches: Vec<RecordBatch>,
        key: Option<&str>,
    ) -> Result<(), String> {
        // Partitions so DataFusion can use every core, each a list of
        // batches of the session's batch size (zero-copy slices): operators
        // then work on cache-sized pieces, not millions of rows at once.
        // Under a memory limit the slices are copies: an operator counts
        // a slice as the whole buffer it points into, so a join over the
        // slices of one large batch would count that batch once per slice.
        let parts = cores();
        let mut partitions: Vec<Vec<RecordBatch>> = vec![Vec::new(); parts];
        let mut next = 0;
        for batch in batches {
            let rows = batch.num_rows();
            for start in (0..rows).step_by(BATCH_ROWS) {
                let end = rows.min(start + BATCH_ROWS);
                let piece = if self.limit.is_some() && end - start < rows {
                    let rows = UInt32Array::from_iter_values(start as u32..end as u32);
                    take_record_batch(&batch, &rows).map_err(|e| e.to_string())?
                } else {
                    batch.slice(start, end - start)
                };
                partitions[next % parts].push(piece);
                next += 1;
            }
        }
        partitions.retain(|p| !p.is_empty());
        if partitions.is_empty() {
            partitions.push(vec![RecordBatch::new_empty(schema.clone())]);
        }
        let mut table = MemTable::try_new(schema, partitions).map_err(|e| e.to_string())?;
        if let Some(key) = key {
            // Each partition takes every n-th slice of the ordered rows,
            // so each is in order too (a table's order is its partitions').
            let order = datafusion::prelude::ident(key).sort(true, false);
            table = table.with_sort_order(vec![vec![order]]);
        }
        let _ = self.ctx.deregister_table(name);
        self.ctx
            .register_table(name, Arc::new(table))
            .map_err(|e| e.to_string())?;
        Ok(())
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
        self.register_in_order(name, schema, batches, None)
    }

    fn materialize_sorted(&self, name: &str, sql: &str, key: &str) -> Result<RecordBatch, String> {
        let batch = self.query(sql)?;
        self.register_in_order(name, batch.schema(), vec![batch.clone()], Some(key))?;
        Ok(batch)
    }

    fn register_streams(
        &self,
        name: &str,
        schema: SchemaRef,
        streams: Vec<Arc<dyn Scan>>,
        rows: u64,
    ) -> Result<(), String> {
        if streams.is_empty() {
            return self.register_batches(name, schema, Vec::new());
        }
        let table =
            StreamedTable::new(schema, streams, usize::try_from(rows).unwrap_or(usize::MAX))?;
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
        self.collect(sql).map(|(_, batches)| batches)
    }

    fn query(&self, sql: &str) -> Result<RecordBatch, String> {
        let (schema, batches) = self.collect(sql)?;
        datafusion::arrow::compute::concat_batches(&schema, &batches).map_err(|e| e.to_string())
    }

    fn memory_limit(&self) -> Option<u64> {
        self.limit
    }

    fn queries_side_by_side(&self) -> bool {
        self.limit.is_none()
    }

    /// DataFusion's stream of the query's batches, each polled on this
    /// engine's runtime when the caller asks for it: its operators run as
    /// the caller takes their rows (a sort's spilled runs are merged a
    /// batch at a time), and nothing is collected.
    fn stream(&self, sql: &str) -> Result<Batches<'_>, String> {
        use futures_util::StreamExt;
        let mut stream = self.runtime.block_on(async {
            let df = self.ctx.sql(sql).await.map_err(|e| e.to_string())?;
            df.execute_stream().await.map_err(|e| e.to_string())
        })?;
        let schema = stream.schema();
        let batches = std::iter::from_fn(move || {
            self.runtime
                .block_on(stream.next())
                .map(|batch| batch.map_err(|e| e.to_string()))
        });
        Ok(Batches {
            schema,
            batches: Box::new(batches),
        })
    }

    /// The query's batches registered as they came: no copy of the result
    /// into one batch (10M linked people are half a gigabyte).
    fn keep(&self, name: &str, sql: &str) -> Result<(), String> {
        let (schema, batches) = self.collect(sql)?;
        self.register_batches(name, schema, batches)
    }
}

impl Embedded {
    /// A query's result batches and schema (an empty result keeps the
    /// query's schema).
    fn collect(&self, sql: &str) -> Result<(SchemaRef, Vec<RecordBatch>), String> {
        self.runtime.block_on(async {
            let df = self.ctx.sql(sql).await.map_err(|e| e.to_string())?;
            let schema = Arc::new(df.schema().as_arrow().clone());
            let batches = df.collect().await.map_err(|e| e.to_string())?;
            // The batches' own schema: the plan's may differ in metadata or
            // nullability from what execution produced.
            let schema = batches.first().map_or(schema, |b| b.schema());
            Ok((schema, batches))
        })
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::StringArray;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    /// 1,500,000 rows of two text columns (about 130 MB), out of order.
    fn register_rows(engine: &Embedded) {
        let rows = 1_500_000u64;
        let keys: StringArray = (0..rows)
            .map(|i| Some(format!("key-{:08}", (i * 7_919) % rows)))
            .collect();
        let values: StringArray = (0..rows).map(|i| Some(format!("{i:064}"))).collect();
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Utf8, true),
            Field::new("v", DataType::Utf8, true),
        ]));
        let batch =
            RecordBatch::try_new(schema.clone(), vec![Arc::new(keys), Arc::new(values)]).unwrap();
        engine.register_batches("t", schema, vec![batch]).unwrap();
    }

    const SORT: &str = "SELECT k, v FROM t ORDER BY k";

    /// Above the 10 MB each partition's sort reserves for merging what it
    /// spilled.
    const LIMIT: u64 = 48 << 20;

    /// Under a limit about a third of its rows' size, a sort spills to the
    /// project's `.accord/tmp/` and answers what it answers without a
    /// limit; the same limit with nowhere to spill fails the query, so the
    /// limit did bind. The spill folder goes with the engine.
    #[test]
    fn a_sort_over_the_limit_spills_and_answers_the_same() {
        let unlimited = Embedded::new().unwrap();
        register_rows(&unlimited);
        let want = unlimited.query(SORT).unwrap();

        let project = tempfile::tempdir().unwrap();
        let limited = Embedded::limited(MemoryLimit::Bytes(LIMIT), project.path()).unwrap();
        register_rows(&limited);
        assert_eq!(limited.query(SORT).unwrap(), want);
        let tmp = project.path().join(".accord").join("tmp");
        assert_eq!(
            std::fs::read_dir(&tmp).unwrap().count(),
            1,
            "one spill folder"
        );
        drop(limited);
        assert_eq!(
            std::fs::read_dir(&tmp).unwrap().count(),
            0,
            "removed with the engine"
        );

        let pool = datafusion::execution::memory_pool::FairSpillPool::new(LIMIT as usize);
        let nowhere = DiskManagerBuilder::default().with_mode(DiskManagerMode::Disabled);
        let env = RuntimeEnvBuilder::new()
            .with_memory_pool(Arc::new(pool))
            .with_disk_manager_builder(nowhere);
        let cannot_spill = Embedded::with_runtime(env, None, Some(LIMIT)).unwrap();
        register_rows(&cannot_spill);
        let error = cannot_spill.query(SORT).unwrap_err();
        assert!(error.contains("Resources exhausted"), "{error}");
    }

    /// A table kept in its key's order says so: an export query's
    /// `ORDER BY` of the audience (one literal) and the key merges the
    /// partitions instead of sorting, and the rows come in the same order
    /// as from the table without the order said, which sorts.
    #[test]
    fn a_table_kept_in_key_order_spares_the_export_sort() {
        let sql = "SELECT k, v FROM t ORDER BY k";
        let export = "SELECT * FROM (SELECT r.k AS __account_key, 'A' AS __audience FROM accord_accounts r WHERE r.v <> '') x \
             ORDER BY __audience || '/' ASC NULLS LAST, __account_key ASC NULLS LAST";
        let plan = |engine: &Embedded| {
            let rows = engine.sql(&format!("EXPLAIN {export}")).unwrap();
            datafusion::arrow::util::pretty::pretty_format_batches(&rows)
                .unwrap()
                .to_string()
        };
        let ordered = Embedded::new().unwrap();
        register_rows(&ordered);
        ordered
            .materialize_sorted("accord_accounts", sql, "k")
            .unwrap();
        let unordered = Embedded::new().unwrap();
        register_rows(&unordered);
        unordered.materialize("accord_accounts", sql).unwrap();

        assert!(!plan(&ordered).contains("SortExec"), "{}", plan(&ordered));
        assert!(
            plan(&unordered).contains("SortExec"),
            "{}",
            plan(&unordered)
        );
        let got = ordered.query(export).unwrap();
        assert_eq!(got, unordered.query(export).unwrap());
        assert_eq!(got.num_rows(), 1_500_000);
    }

    /// A grouping on two cores under a tight limit, whose repartition
    /// would spill: DataFusion 55's repartition could then wait forever
    /// (`pool`). Every attempt ends, answered or refused, within seconds.
    #[test]
    fn a_query_under_a_tight_limit_ends() {
        let project = tempfile::tempdir().unwrap();
        let engine = Embedded::limited(MemoryLimit::Bytes(2 << 20), project.path()).unwrap();
        for set in [
            "SET datafusion.execution.target_partitions = 2",
            "SET datafusion.execution.batch_size = 64",
            "CREATE TABLE t AS SELECT v % 13 AS g, md5(CAST(v % 337 AS VARCHAR)) AS trace_id \
             FROM generate_series(1, 40000) AS s(v)",
        ] {
            engine.sql(set).unwrap();
        }
        let engine = Arc::new(engine);
        for attempt in 0..12 {
            let (done, ended) = std::sync::mpsc::channel();
            let running = engine.clone();
            std::thread::spawn(move || {
                let sql = "SELECT g, count(DISTINCT trace_id) AS n FROM t GROUP BY g";
                let _ = done.send(running.sql(sql).map(|_| ()));
            });
            let answer = ended.recv_timeout(std::time::Duration::from_secs(30));
            assert!(answer.is_ok(), "attempt {attempt} never ended");
        }
    }

    #[test]
    fn the_machine_has_some_memory() {
        assert!(machine_memory().is_some_and(|bytes| bytes > 0));
    }
}
