//! The daily run of an append-only event source: 180 days of events, one
//! Parquet file per day, where one day is new since the last run. Timed in
//! one process: the incremental read (the cached rows of 179 days plus the
//! new day's file, and the cache extended) against a full read of the same
//! 180 files, each followed by the same unification and audiences.
//!
//! `cargo bench --features engine --bench incremental` (release); with a
//! cold release build, `cargo test --features engine --bench incremental`
//! runs the same in the dev profile (the figures are then labelled so).
//! Environment: `ACCORD_BENCH_EVENTS_PER_DAY` (default 20000), `ACCORD_BENCH_DAYS`
//! (default 180), `ACCORD_BENCH_REPEAT` (default 3; the best is kept).

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

#[path = "../tests/support/plans.rs"]
mod plans;
#[allow(dead_code)]
#[path = "../tests/support/rng.rs"]
mod rng;

use accord::run;
use accord::store::{Faults, Store};
use accord::time;
use datafusion::arrow::array::{ArrayRef, Int64Array, StringArray, TimestampMicrosecondArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::ArrowWriter;
use rng::Rng;

const NOW: &str = "2026-11-28T12:00:00Z";
const DAY: i64 = 86_400_000_000;
const ACCOUNTS: usize = 20_000;
const KINDS: &[&str] = &["page_view", "pricing_view", "demo_request", "docs_view"];

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn write_parquet(path: &Path, batch: RecordBatch) {
    let file = std::fs::File::create(path).expect("create parquet");
    let mut writer = ArrowWriter::try_new(file, batch.schema(), None).expect("writer");
    writer.write(&batch).expect("write batch");
    writer.close().expect("close parquet");
}

fn strings(v: Vec<String>) -> ArrayRef {
    Arc::new(StringArray::from(v))
}

const SPECS: &str = r#"
[project]
name = "incremental_bench"
format = 1

[environment.dev]
enforcement = "warn"

[schema.account]
class = "account"
key = "accountId"

[schema.account.fields]
accountId = { type = "string", identity = "crm_account_id" }
employees = "int"

[schema.web_visit]
class = "event"
key = "visitId"
timestamp = "occurredAt"

[schema.web_visit.fields]
visitId    = "string"
accountId  = "string"
occurredAt = "timestamp"
kind       = "string"
seconds    = "int"

[schema.web_visit.links.account]
to = "account"
by = "accountId"
reverse = "visits"

[source.accounts]
schema = "account"
path = "data/accounts.parquet"

[source.web_visits]
schema = "web_visit"
path = "data/visits/*.parquet"
APPEND_ONLY

[audience.B2B_Active_30d]
rule = "size(account.visits.filter(v, v.occurredAt > now - days(30))) >= 20"

[audience.B2B_Pricing_7d]
rule = 'account.visits.exists(v, v.kind == "pricing_view" && v.occurredAt > now - days(7))'

[audience.B2B_Demo_90d]
rule = 'account.visits.exists(v, v.kind == "demo_request" && v.occurredAt > now - days(90))'

[audience.B2B_Deep_Readers]
rule = 'size(account.visits.filter(v, v.kind == "docs_view" && v.seconds > 300)) >= 5'

[audience.B2B_Large_Engaged]
rule = "account.employees >= 1000 && size(account.visits.filter(v, v.occurredAt > now - days(14))) >= 5"
"#;

fn generate(dir: &Path, days: usize, per_day: usize) {
    std::fs::create_dir_all(dir.join("data/visits")).expect("mkdir");
    let now = time::parse_timestamp(NOW).expect("now");
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let schema = Arc::new(Schema::new(vec![
        Field::new("accountId", DataType::Utf8, true),
        Field::new("employees", DataType::Int64, true),
    ]));
    write_parquet(
        &dir.join("data/accounts.parquet"),
        RecordBatch::try_new(
            schema,
            vec![
                strings((0..ACCOUNTS).map(|i| format!("A{i:06}")).collect()),
                Arc::new(Int64Array::from(
                    (0..ACCOUNTS)
                        .map(|_| rng.below(5_000) as i64)
                        .collect::<Vec<_>>(),
                )),
            ],
        )
        .expect("accounts"),
    );
    let schema = Arc::new(Schema::new(vec![
        Field::new("visitId", DataType::Utf8, true),
        Field::new("accountId", DataType::Utf8, true),
        Field::new(
            "occurredAt",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
        Field::new("kind", DataType::Utf8, true),
        Field::new("seconds", DataType::Int64, true),
    ]));
    for day in 0..days {
        // Day `days - 1` is the newest, ending at `now`.
        let start = now - (days - day) as i64 * DAY;
        let name = time::format_timestamp(start + DAY)[..10].to_string();
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                strings((0..per_day).map(|i| format!("V{day:03}-{i:07}")).collect()),
                strings(
                    (0..per_day)
                        .map(|_| format!("A{:06}", rng.below(ACCOUNTS as u64)))
                        .collect(),
                ),
                Arc::new(
                    TimestampMicrosecondArray::from(
                        (0..per_day)
                            .map(|_| start + rng.below(DAY as u64) as i64)
                            .collect::<Vec<_>>(),
                    )
                    .with_timezone("UTC"),
                ),
                strings(
                    (0..per_day)
                        .map(|_| KINDS[rng.below(4) as usize].to_string())
                        .collect(),
                ),
                Arc::new(Int64Array::from(
                    (0..per_day)
                        .map(|_| rng.below(900) as i64)
                        .collect::<Vec<_>>(),
                )),
            ],
        )
        .expect("visits");
        write_parquet(&dir.join(format!("data/visits/{name}.parquet")), batch);
    }
}

fn copy_dir(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    for entry in walkdir::WalkDir::new(from) {
        let entry = entry.expect("walk");
        let target = to.join(entry.path().strip_prefix(from).expect("inside"));
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&target).expect("mkdir");
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

struct Timing {
    total: f64,
    read: f64,
    audiences: f64,
}

fn timing(started: Instant, e: &run::Evaluation) -> Timing {
    let ms = |p: &str| e.phases_ms.get(p).copied().unwrap_or(0) as f64 / 1000.0;
    Timing {
        total: started.elapsed().as_secs_f64(),
        read: ms("read"),
        audiences: ms("unify") + ms("audiences"),
    }
}

fn main() {
    let per_day = env_or("ACCORD_BENCH_EVENTS_PER_DAY", 20_000);
    let days = env_or("ACCORD_BENCH_DAYS", 180);
    let repeat = env_or("ACCORD_BENCH_REPEAT", 3).max(1);
    let profile = if cfg!(debug_assertions) {
        "dev profile (debug build; dependencies at opt-level 1)"
    } else {
        "release"
    };
    let scratch = std::env::temp_dir().join(format!("accord-bench-incr-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    let project = scratch.join("project");
    generate(&project, days, per_day);
    let now = time::parse_timestamp(NOW).expect("now");

    // Yesterday's run: every day but the newest, read in full, remembered.
    let newest = std::fs::read_dir(project.join("data/visits"))
        .expect("visits")
        .map(|e| e.expect("entry").path())
        .max()
        .expect("a day");
    let held = scratch.join("newest.parquet");
    std::fs::rename(&newest, &held).expect("hold the newest day");
    std::fs::write(
        project.join("accord.toml"),
        SPECS.replace("APPEND_ONLY", "append_only = true"),
    )
    .expect("specs");
    let (plan, jobs) = plans::datafusion_jobs(&project, "dev");
    {
        let store = Store::open(&project, &Faults::default()).expect("store");
        run::evaluate_in(
            &plan,
            &jobs,
            &project,
            now - DAY,
            &run::Places::default(),
            &run::engine::Choice::default(),
            Some(&store),
            true,
        )
        .expect("yesterday's run");
    }
    std::fs::rename(&held, &newest).expect("append the newest day");
    let yesterday = scratch.join("yesterday");
    copy_dir(&project.join(".accord"), &yesterday);

    let mut incremental: Option<(Timing, run::Evaluation)> = None;
    let mut full: Option<(Timing, run::Evaluation)> = None;
    for _ in 0..repeat {
        // Today's incremental run, from yesterday's record each time.
        copy_dir(&yesterday, &project.join(".accord"));
        let store = Store::open(&project, &Faults::default()).expect("store");
        let started = Instant::now();
        let e = run::evaluate_in(
            &plan,
            &jobs,
            &project,
            now,
            &run::Places::default(),
            &run::engine::Choice::default(),
            Some(&store),
            true,
        )
        .expect("incremental run");
        let t = timing(started, &e);
        let how = e.sources["web_visits"]
            .incremental
            .clone()
            .expect("append-only");
        assert_eq!(how.read, "incremental", "{how:?}");
        assert_eq!(how.files_read, 1);
        if incremental
            .as_ref()
            .is_none_or(|(best, _)| t.total < best.total)
        {
            incremental = Some((t, e));
        }

        // The same files read in full (the source without a store: every
        // file decoded and checked, nothing cached).
        let started = Instant::now();
        let e = run::evaluate(&plan, &jobs, &project, now).expect("full run");
        let t = timing(started, &e);
        if full.as_ref().is_none_or(|(best, _)| t.total < best.total) {
            full = Some((t, e));
        }
    }
    let (i, ie) = incremental.expect("timed");
    let (f, fe) = full.expect("timed");
    assert_eq!(
        ie.members.sets(),
        fe.members.sets(),
        "incremental and full audiences differ"
    );
    let rows = fe.sources["web_visits"].rows;
    println!(
        "append-only source, {days} days x {per_day} events ({rows} rows, one Parquet file a day), one day new; {ACCOUNTS} accounts, 5 audiences; {profile}; best of {repeat}"
    );
    println!("                       full read   incremental   incremental / full");
    let line = |what: &str, f: f64, i: f64| {
        println!(
            "  {what:<20} {f:>8.2} s   {i:>9.2} s   {:>8.3}",
            i / f.max(1e-9)
        );
    };
    line("read", f.read, i.read);
    line("unify + audiences", f.audiences, i.audiences);
    line("evaluation (total)", f.total, i.total);
    println!(
        "  audiences equal: yes ({} audiences, {} members in all)",
        fe.members.names().count(),
        fe.members.names().map(|m| fe.members.count(m)).sum::<u64>()
    );
    let _ = std::fs::remove_dir_all(&scratch);
}
