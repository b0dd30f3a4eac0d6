//! The `accord run` benchmark: B2B data at 100k accounts, 1M people, 10M
//! email-open events (Parquet, written with the Arrow writer), audiences
//! generated from five rule shapes, run end to end by `accord` (compile,
//! render, read, unify, evaluate, deliver one activation) and, on the same
//! files in the same process run, the same audiences written by hand as one
//! SQL query each in DuckDB (the `duckdb` python package).
//!
//! With `-- --activated`, every audience is activated instead, each by its
//! own activation to a file destination (full export, four columns), once
//! with CSV files and once with Parquet, against DuckDB writing each
//! hand-written audience's members (the same columns) to Parquet in the
//! same run, and both against a floor: one DuckDB query that scans each
//! table once.
//!
//! With `-- --spark` (built with `--features spark`), the same project runs
//! on a Spark Connect server on this machine against the embedded engine.
//!
//! `cargo bench --features engine --bench run`; environment:
//! - `ACCORD_BENCH_SCALE` (default 1.0) scales the data (0.1 = 10k accounts,
//!   10 = the 10x set: 1M accounts, 10M people, 100M events);
//! - `ACCORD_BENCH_DATA` (default `~/.cache/accord-bench-data`): where the
//!   data is generated on first use and kept, one folder per scale;
//! - `ACCORD_BENCH_AUDIENCES` (default `5,50`) the audience counts to time,
//!   to show how the time grows with the number of audiences;
//! - `ACCORD_BENCH_OBJECT` (default `1`; `0` skips it): also run the first
//!   audience count with the same Parquet files read from a local S3 server
//!   (moto, from `scripts/test-deps`) instead of local disk, and print the
//!   ratio of the two runs and the bytes fetched against the bytes stored;
//! - `ACCORD_BENCH_CSV` (default `1`; `0` skips it): also run the first
//!   audience count with the same data as CSV files (written once by DuckDB
//!   into `<data folder>-csv/`, beside the Parquet project): text sources
//!   are typed, checked and spilled to local Parquet files, then streamed;
//!   prints the time,
//!   the phases and the peak memory against the Parquet run's;
//! - `ACCORD_BENCH_REPEAT` (default 3; `--activated` only): the rounds of
//!   floor, accord and DuckDB, alternated, whose medians the table gives.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

#[allow(dead_code)]
#[path = "../tests/support/rng.rs"]
mod rng;
#[path = "../tests/support/servers/mod.rs"]
mod servers;

use accord::compile::{self, Options};
use accord::run;
use accord::time;
use datafusion::arrow::array::{ArrayRef, Int64Array, StringArray, TimestampMicrosecondArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::ArrowWriter;
use rng::Rng;

// The `accord` binary's allocator, so that time and peak memory are what a
// user's run has (the system allocator differs in both).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const NOW: &str = "2026-11-28T12:00:00Z";
const INDUSTRIES: &[&str] = &[
    "Software",
    "Fintech",
    "Healthcare",
    "Retail",
    "Manufacturing",
];
const COUNTRIES: &[&str] = &["US", "GB", "DE", "FR", "JP"];
const SENIORITY: &[&str] = &[
    "C-Level",
    "VP",
    "Director",
    "Manager",
    "Individual Contributor",
];
const DEPARTMENTS: &[&str] = &["Data", "Engineering", "IT", "Finance", "Marketing"];

fn write_parquet(path: &Path, batches: impl Iterator<Item = RecordBatch>) {
    let mut batches = batches.peekable();
    let schema = batches.peek().expect("one batch").schema();
    let file = std::fs::File::create(path).expect("create parquet");
    let mut writer = ArrowWriter::try_new(file, schema, None).expect("writer");
    for b in batches {
        writer.write(&b).expect("write batch");
    }
    writer.close().expect("close parquet");
}

fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

fn strings(v: Vec<String>) -> ArrayRef {
    Arc::new(StringArray::from(v))
}

/// Writes the data files; returns (accounts, people, events).
fn generate(dir: &Path, scale: f64) -> (usize, usize, usize) {
    let accounts = ((100_000.0 * scale) as usize).max(100);
    let people = accounts * 10;
    let events = people * 10;
    let now = time::parse_timestamp(NOW).expect("now");
    std::fs::create_dir_all(dir.join("data")).expect("mkdir");
    let mut rng = Rng(0x1234_5678_9abc_def1);

    let schema = Arc::new(Schema::new(vec![
        Field::new("accountId", DataType::Utf8, true),
        Field::new("industry", DataType::Utf8, true),
        Field::new("employees", DataType::Int64, true),
        Field::new("country", DataType::Utf8, true),
        Field::new("updatedAt", ts_type(), true),
    ]));
    let batch = RecordBatch::try_new(
        schema,
        vec![
            strings((0..accounts).map(|i| format!("A{i:07}")).collect()),
            strings(
                (0..accounts)
                    .map(|_| INDUSTRIES[rng.below(5) as usize].to_string())
                    .collect(),
            ),
            Arc::new(Int64Array::from(
                (0..accounts)
                    .map(|_| rng.below(10_000) as i64)
                    .collect::<Vec<_>>(),
            )),
            strings(
                (0..accounts)
                    .map(|_| COUNTRIES[rng.below(5) as usize].to_string())
                    .collect(),
            ),
            Arc::new(
                TimestampMicrosecondArray::from(vec![now - 3_600_000_000; accounts])
                    .with_timezone("UTC"),
            ),
        ],
    )
    .expect("accounts batch");
    write_parquet(&dir.join("data/accounts.parquet"), std::iter::once(batch));

    let schema = Arc::new(Schema::new(vec![
        Field::new("personId", DataType::Utf8, true),
        Field::new("accountId", DataType::Utf8, true),
        Field::new("seniority", DataType::Utf8, true),
        Field::new("department", DataType::Utf8, true),
    ]));
    let batch = RecordBatch::try_new(
        schema,
        vec![
            strings((0..people).map(|i| format!("P{i:08}")).collect()),
            strings(
                (0..people)
                    .map(|_| format!("A{:07}", rng.below(accounts as u64)))
                    .collect(),
            ),
            strings(
                (0..people)
                    .map(|_| SENIORITY[rng.below(5) as usize].to_string())
                    .collect(),
            ),
            strings(
                (0..people)
                    .map(|_| DEPARTMENTS[rng.below(5) as usize].to_string())
                    .collect(),
            ),
        ],
    )
    .expect("people batch");
    write_parquet(&dir.join("data/people.parquet"), std::iter::once(batch));

    let schema = Arc::new(Schema::new(vec![
        Field::new("eventId", DataType::Utf8, true),
        Field::new("personId", DataType::Utf8, true),
        Field::new("occurredAt", ts_type(), true),
        Field::new("campaign", DataType::Utf8, true),
    ]));
    let chunk = 1_000_000usize;
    let batches = (0..events).step_by(chunk).map(|start| {
        let n = chunk.min(events - start);
        let mut r = Rng(0x5151_0000 + start as u64);
        RecordBatch::try_new(
            schema.clone(),
            vec![
                strings((start..start + n).map(|i| format!("E{i:09}")).collect()),
                strings(
                    (0..n)
                        .map(|_| format!("P{:08}", r.below(people as u64)))
                        .collect(),
                ),
                Arc::new(
                    TimestampMicrosecondArray::from(
                        (0..n)
                            .map(|_| now - (r.below(180 * 86_400) as i64) * 1_000_000)
                            .collect::<Vec<_>>(),
                    )
                    .with_timezone("UTC"),
                ),
                strings((0..n).map(|_| format!("c{}", r.below(40))).collect()),
            ],
        )
        .expect("events batch")
    });
    write_parquet(&dir.join("data/email_opened.parquet"), batches);
    (accounts, people, events)
}

/// Audience `i`: a CEL rule and the hand-written DuckDB condition on its
/// accounts (`a`, the accounts table), which counts its members or writes
/// them out.
fn audience(i: usize) -> (String, String) {
    let industry = INDUSTRIES[i % 5];
    let country = COUNTRIES[(i / 5) % 5];
    let k = 1000 + (i * 137) % 8000;
    let days = 3 + i % 60;
    let people = "read_parquet('data/people.parquet')";
    let events = "read_parquet('data/email_opened.parquet')";
    let now = "TIMESTAMPTZ '2026-11-28 12:00:00+00'";
    match i % 5 {
        0 => (
            format!(r#"account.industry == "{industry}" && account.employees >= {k}"#),
            format!("a.industry = '{industry}' AND a.employees >= {k}"),
        ),
        1 => (
            format!(
                r#"account.country == "{country}" && account.people.exists(p, p.seniority == "{}")"#,
                SENIORITY[i % 5]
            ),
            format!(
                "a.country = '{country}' AND EXISTS (SELECT 1 FROM {people} p WHERE p.accountId = a.accountId AND p.seniority = '{}')",
                SENIORITY[i % 5]
            ),
        ),
        2 => (
            format!(
                "account.people.exists(p, p.emailOpens.exists(e, e.occurredAt > now - days({days})))"
            ),
            format!(
                "a.accountId IN (SELECT p.accountId FROM {people} p JOIN {events} e ON e.personId = p.personId WHERE e.occurredAt > {now} - INTERVAL {days} DAY)"
            ),
        ),
        3 => (
            format!(
                r#"size(account.people.filter(p, p.department == "{}")) >= {}"#,
                DEPARTMENTS[i % 5],
                1 + i % 4
            ),
            format!(
                "a.accountId IN (SELECT accountId FROM {people} WHERE department = '{}' GROUP BY accountId HAVING count(*) >= {})",
                DEPARTMENTS[i % 5],
                1 + i % 4
            ),
        ),
        _ => (
            format!(
                r#"account.industry != "{industry}" && account.people.exists(p, p.emailOpens.exists(e, e.campaign == "c{}"))"#,
                i % 40
            ),
            format!(
                "a.industry <> '{industry}' AND a.accountId IN (SELECT p.accountId FROM {people} p JOIN {events} e ON e.personId = p.personId WHERE e.campaign = 'c{}')",
                i % 40
            ),
        ),
    }
}

/// The accounts table as the DuckDB queries read it.
const DUCK_ACCOUNTS: &str = "read_parquet('data/accounts.parquet') a";

/// The columns every activation of the activated mode delivers, as accord
/// maps them and as the DuckDB queries select them.
const EXPORT_COLUMNS: &[&str] = &["accountId", "industry", "country", "employees"];

/// What the project activates.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Activated {
    /// One activation of the first audience (the evaluation benchmark).
    One,
    /// Every audience, each by its own activation, to a file destination
    /// of this format, full export (what real projects do).
    Every(&'static str),
}

fn write_project(dir: &Path, audiences: usize, activated: Activated) {
    let mut specs = String::from(
        r#"[project]
name = "bench"
format = 1

[environment.dev]
enforcement = "warn"

[schema.account]
class = "account"
key = "accountId"
[schema.account.fields]
accountId = { type = "string", identity = "crm_account_id" }
industry  = { type = "string", values = ["Software", "Fintech", "Healthcare", "Retail", "Manufacturing"] }
employees = "int"
country   = "string"
updatedAt = "timestamp"

[schema.person]
class = "person"
key = "personId"
[schema.person.fields]
personId   = "string"
accountId  = "string"
seniority  = "string"
department = "string"
[schema.person.links.account]
to = "account"
by = "accountId"
reverse = "people"

[schema.email_opened]
class = "event"
key = "eventId"
timestamp = "occurredAt"
[schema.email_opened.fields]
eventId    = "string"
personId   = "string"
occurredAt = "timestamp"
campaign   = "string"
[schema.email_opened.links.person]
to = "person"
by = "personId"
reverse = "emailOpens"

[source.accounts]
schema = "account"
path = "data/accounts.parquet"
[source.people]
schema = "person"
path = "data/people.parquet"
[source.opens]
schema = "email_opened"
path = "data/email_opened.parquet"

"#,
    );
    let format = match activated {
        Activated::One => "csv",
        Activated::Every(format) => format,
    };
    let _ = write!(
        specs,
        "\n[destination.files]\ntype = \"filesystem\"\npath = \"out\"\nformat = \"{format}\"\n"
    );
    let activations: Vec<usize> = match activated {
        Activated::One => vec![0],
        Activated::Every(_) => (0..audiences).collect(),
    };
    for i in activations {
        let _ = write!(
            specs,
            "\n[activation.bench_{i}]\ndestination = \"files\"\naudiences = [\"B2B_Bench_{i}\"]\nschedule = \"daily@02:00\"\nexport = \"full\"\n[activation.bench_{i}.map]\n"
        );
        let columns = match activated {
            Activated::One => &EXPORT_COLUMNS[..1],
            Activated::Every(_) => EXPORT_COLUMNS,
        };
        for c in columns {
            let _ = writeln!(specs, "{c} = \"account.{c}\"");
        }
    }
    for i in 0..audiences {
        let (rule, _) = audience(i);
        let _ = write!(specs, "\n[audience.B2B_Bench_{i}]\nrule = '''{rule}'''\n");
    }
    std::fs::write(dir.join("accord.toml"), specs).expect("write specs");
}

/// `accord run` through the library, end to end; returns (seconds, sizes).
fn time_accord(dir: &Path) -> (f64, Vec<u64>, String) {
    let (secs, sizes, phases, _) = run_accord(dir);
    (secs, sizes, phases)
}

/// [`time_accord`], with the run report.
fn run_accord(dir: &Path) -> (f64, Vec<u64>, String, run::RunReport) {
    run_accord_on(dir, &run::engine::Choice::default())
}

/// [`run_accord`] on the chosen engine.
fn run_accord_on(
    dir: &Path,
    engine: &run::engine::Choice,
) -> (f64, Vec<u64>, String, run::RunReport) {
    let dialect = match engine {
        run::engine::Choice::Embedded { .. } => "datafusion",
        run::engine::Choice::Spark(_) => "spark",
    };
    let _ = std::fs::remove_dir_all(dir.join(".accord"));
    let _ = std::fs::remove_dir_all(dir.join("out"));
    reset_peak_memory();
    let started = Instant::now();
    let options = Options {
        environment: Some("dev".into()),
        today: compile::parse_date("2026-11-28"),
        ..Options::default()
    };
    let compiled = compile::check(dir, &options).expect("bench project loads");
    let plan = compile::plan(&compiled)
        .unwrap_or_else(|| panic!("bench project has errors: {:?}", compiled.diagnostics.len()));
    let (jobs, problems) = accord::render::render(
        &plan,
        &accord::render::Options {
            dialects: vec![dialect.into()],
            ..accord::render::Options::default()
        },
    );
    assert!(problems.is_empty(), "{problems:?}");
    let report = run::run(
        &plan,
        &jobs,
        dir,
        &run::Options {
            now: time::parse_timestamp(NOW).expect("now"),
            engine: engine.clone(),
            ..run::Options::default()
        },
    )
    .expect("accord run");
    let secs = started.elapsed().as_secs_f64();
    let mut sizes: Vec<(usize, u64)> = report
        .audiences
        .iter()
        .map(|(n, s)| (n.trim_start_matches("B2B_Bench_").parse().unwrap_or(0), *s))
        .collect();
    sizes.sort();
    let mut phases = report
        .phases_ms
        .iter()
        .map(|(p, ms)| format!("{p} {:.2}s", *ms as f64 / 1000.0))
        .collect::<Vec<_>>()
        .join(", ");
    phases.push_str(&format!("; peak memory {:.2} GB", peak_memory_gb()));
    (
        secs,
        sizes.into_iter().map(|(_, s)| s).collect(),
        phases,
        report,
    )
}

/// The same project and data, read from local disk and from a local S3
/// server: (local seconds, S3 seconds, bytes fetched, bytes stored).
fn time_object_store(dir: &Path, audiences: usize) -> (f64, f64, u64, u64) {
    use object_store::ObjectStoreExt;
    let moto = servers::moto::Moto::start("bench");
    let store = object_store::aws::AmazonS3Builder::new()
        .with_bucket_name("bench")
        .with_region("us-east-1")
        .with_endpoint(moto.process.url())
        .with_allow_http(true)
        .with_access_key_id(&moto.access_key_id)
        .with_secret_access_key(&moto.secret_access_key)
        .build()
        .expect("s3 client");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut stored = 0;
    for name in ["accounts", "people", "email_opened"] {
        let bytes = std::fs::read(dir.join(format!("data/{name}.parquet"))).expect("read");
        stored += bytes.len() as u64;
        let path = object_store::path::Path::from(format!("data/{name}.parquet"));
        runtime
            .block_on(store.put(&path, bytes.into()))
            .expect("upload to moto");
    }
    let remote = tempfile::Builder::new()
        .prefix("accord-bench-s3-")
        .tempdir()
        .expect("temp");
    write_project(remote.path(), audiences, Activated::One);
    std::fs::write(remote.path().join("key_id"), &moto.access_key_id).expect("key");
    std::fs::write(remote.path().join("secret"), &moto.secret_access_key).expect("key");
    let spec = remote.path().join("accord.toml");
    let text = std::fs::read_to_string(&spec).expect("specs").replace(
        "path = \"data/",
        &format!(
            "endpoint = \"{}\"\naccess_key_id = {{ file = \"key_id\" }}\nsecret_access_key = {{ file = \"secret\" }}\npath = \"s3://bench/data/",
            moto.process.url()
        ),
    );
    std::fs::write(&spec, text).expect("specs");
    write_project(dir, audiences, Activated::One);
    let (local_s, local_sizes, _) = time_accord(dir);
    let (s3_s, s3_sizes, phases, report) = run_accord(remote.path());
    assert_eq!(local_sizes, s3_sizes, "S3 and local disk disagree");
    println!("object store run's phases: {phases}");
    let fetched = report.sources.values().filter_map(|s| s.bytes_read).sum();
    (local_s, s3_s, fetched, stored)
}

/// The same project and data as CSV files (in `<dir>-csv/` beside `dir`,
/// not in it, where its specs would join the Parquet project's; written
/// once by DuckDB, timestamps as RFC 3339 UTC): (CSV seconds, its phases),
/// after asserting it finds the audiences the Parquet files give.
fn time_csv(dir: &Path, audiences: usize) -> (f64, String) {
    let name = dir.file_name().expect("the data folder has a name");
    let csv = dir.with_file_name(format!("{}-csv", name.to_string_lossy()));
    let out = csv.join("data");
    let out = out.display();
    if !csv.join(".written").exists() {
        let _ = std::fs::remove_dir_all(&csv);
        std::fs::create_dir_all(csv.join("data")).expect("the CSV folder");
        let iso = "'%Y-%m-%dT%H:%M:%SZ'";
        let statements = [
            format!(
                "COPY (SELECT * REPLACE (strftime(updatedAt, {iso}) AS updatedAt) FROM 'data/accounts.parquet') TO '{out}/accounts.csv' (HEADER)"
            ),
            format!("COPY (SELECT * FROM 'data/people.parquet') TO '{out}/people.csv' (HEADER)"),
            format!(
                "COPY (SELECT * REPLACE (strftime(occurredAt, {iso}) AS occurredAt) FROM 'data/email_opened.parquet') TO '{out}/email_opened.csv' (HEADER)"
            ),
        ];
        // A COPY returns its row count, as the queries `duckdb` runs do.
        duckdb(dir, &statements);
        std::fs::write(csv.join(".written"), "").expect("the CSV folder takes its marker");
    }
    write_project(dir, audiences, Activated::One);
    let (_, parquet_sizes, _) = time_accord(dir);
    let specs = std::fs::read_to_string(dir.join("accord.toml")).expect("specs");
    std::fs::write(
        csv.join("accord.toml"),
        specs.replace(".parquet\"", ".csv\""),
    )
    .expect("the CSV project");
    let (csv_s, csv_sizes, phases) = time_accord(&csv);
    assert_eq!(csv_sizes, parquet_sizes, "CSV and Parquet disagree");
    (csv_s, phases)
}

/// The hand-written DuckDB queries counting each audience; returns
/// (seconds, sizes).
fn time_duckdb(dir: &Path, audiences: usize) -> (f64, Vec<u64>) {
    let statements: Vec<String> = (0..audiences)
        .map(|i| {
            format!(
                "SELECT count(*) FROM {DUCK_ACCOUNTS} WHERE {}",
                audience(i).1
            )
        })
        .collect();
    duckdb(dir, &statements)
}

/// Each hand-written audience's members written to Parquet by DuckDB (the
/// columns accord's activations deliver); returns (seconds, rows written).
fn time_duckdb_export(dir: &Path, audiences: usize) -> (f64, Vec<u64>) {
    let out = dir.join("duck_out");
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).expect("duckdb's output folder");
    let columns = EXPORT_COLUMNS
        .iter()
        .map(|c| format!("a.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    let statements: Vec<String> = (0..audiences)
        .map(|i| {
            format!(
                "COPY (SELECT {columns} FROM {DUCK_ACCOUNTS} WHERE {}) TO 'duck_out/bench_{i}.parquet' (FORMAT parquet)",
                audience(i).1
            )
        })
        .collect();
    duckdb(dir, &statements)
}

/// The floor: one DuckDB query that scans each table once, reading every
/// column the audiences read; returns seconds.
fn time_duckdb_floor(dir: &Path) -> f64 {
    let statement = "SELECT \
         (SELECT sum(length(accountId) + length(industry) + length(country) + employees) FROM read_parquet('data/accounts.parquet')) + \
         (SELECT sum(length(personId) + length(accountId) + length(seniority) + length(department)) FROM read_parquet('data/people.parquet')) + \
         (SELECT sum(length(personId) + length(campaign)) + count(occurredAt) FROM read_parquet('data/email_opened.parquet'))";
    duckdb(dir, &[statement.to_string()]).0
}

/// The peak resident memory of the last DuckDB process, in GB (f64 bits).
static DUCKDB_PEAK_GB: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Runs statements in one DuckDB connection (the `duckdb` python package);
/// returns (seconds, the first value of each statement's result).
fn duckdb(dir: &Path, statements: &[String]) -> (f64, Vec<u64>) {
    let script = "import duckdb, json, sys, time\n\
         t = time.time()\n\
         con = duckdb.connect()\n\
         con.execute(\"SET TimeZone = 'UTC'\")\n\
         con.execute('SET enable_progress_bar = false')\n\
         sizes = [con.execute(q).fetchone()[0] for q in json.loads(sys.argv[1])]\n\
         hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM:')]\n\
         peak = int(hwm[0].split()[1]) / 1e6 if hwm else 0.0\n\
         print(json.dumps({'seconds': time.time() - t, 'sizes': sizes, 'peak_gb': peak}))\n";
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(serde_json::to_string(statements).expect("json"))
        .current_dir(dir)
        .output()
        .expect("python3 runs (the duckdb python package is needed)");
    assert!(
        out.status.success(),
        "duckdb failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The last line: anything DuckDB prints goes before it.
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(last).expect("json");
    if let Some(peak) = v["peak_gb"].as_f64() {
        DUCKDB_PEAK_GB.store(peak.to_bits(), std::sync::atomic::Ordering::Relaxed);
    }
    (
        v["seconds"].as_f64().unwrap_or(0.0),
        v["sizes"]
            .as_array()
            .map(|a| a.iter().filter_map(|x| x.as_u64()).collect())
            .unwrap_or_default(),
    )
}

/// The activated mode: per audience count and format, every audience
/// activated to files by accord against DuckDB writing each audience's
/// members to Parquet, and both against the floor. A single run of either
/// varies by up to 1.5x on a shared 2-core machine, so each is timed
/// `ACCORD_BENCH_REPEAT` times (default 3), the three alternated round by
/// round (floor, accord, DuckDB): the table gives the median of each time
/// and of each round's ratios, with the ratios' range.
fn activated_mode(dir: &Path, counts: &[usize]) {
    let repeat = std::env::var("ACCORD_BENCH_REPEAT")
        .ok()
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(3)
        .max(1);
    println!(
        "{repeat} alternated rounds per row; times are medians, ratios the median (and range) of the rounds' ratios"
    );
    println!(
        "{:>10} {:>8} {:>10} {:>14} {:>9} {:>18} {:>18} {:>18}",
        "audiences",
        "format",
        "accord (s)",
        "duckdb->pq (s)",
        "floor (s)",
        "accord/duck",
        "accord/floor",
        "duck/floor"
    );
    let mut phases = Vec::new();
    for &n in counts {
        for format in ["csv", "parquet"] {
            write_project(dir, n, Activated::Every(format));
            let mut rounds = Vec::with_capacity(repeat);
            for _ in 0..repeat {
                rounds.push(activated_round(dir, n));
            }
            let time = |of: fn(&Round) -> f64| middle(rounds.iter().map(of).collect(), |v| *v);
            let ratio = |of: fn(&Round) -> f64| spread(rounds.iter().map(of).collect());
            println!(
                "{n:>10} {format:>8} {:>10.2} {:>14.2} {:>9.2} {:>18} {:>18} {:>18}",
                time(|r| r.accord_s),
                time(|r| r.duck_s),
                time(|r| r.floor_s),
                ratio(|r| r.accord_s / r.duck_s.max(1e-9)),
                ratio(|r| r.accord_s / r.floor_s.max(1e-9)),
                ratio(|r| r.duck_s / r.floor_s.max(1e-9)),
            );
            // The phases of accord's median run.
            let median_run = middle(rounds.iter().collect(), |r| r.accord_s);
            phases.push(format!(
                "{n:>10} audiences, {format}: {}",
                median_run.phases
            ));
        }
    }
    println!("accord's phases in its median run (compile and render not included):");
    for p in phases {
        println!("{p}");
    }
}

/// One round of the activated mode: the floor, accord's run and DuckDB's
/// export, one after the other.
struct Round {
    floor_s: f64,
    accord_s: f64,
    duck_s: f64,
    phases: String,
}

/// A round of the activated mode over the project `write_project` wrote
/// for `n` audiences, after asserting that accord delivered every
/// activation and the same members as DuckDB's files hold.
fn activated_round(dir: &Path, n: usize) -> Round {
    let floor_s = time_duckdb_floor(dir);
    let (accord_s, _, phases, report) = run_accord(dir);
    let delivered: Vec<u64> = (0..n)
        .map(|i| {
            let a = &report.activations[&format!("bench_{i}")];
            assert_eq!(
                a.status,
                run::ActivationStatus::Delivered,
                "bench_{i} was not delivered: {:?}",
                a.warnings
            );
            a.members
        })
        .collect();
    let (duck_s, duck_rows) = time_duckdb_export(dir, n);
    assert_eq!(
        delivered, duck_rows,
        "accord's deliveries and DuckDB's files disagree on members"
    );
    Round {
        floor_s,
        accord_s,
        duck_s,
        phases,
    }
}

/// The median one of `items` by `key` (the upper one of an even count).
fn middle<T>(mut items: Vec<T>, key: impl Fn(&T) -> f64) -> T {
    items.sort_by(|a, b| key(a).total_cmp(&key(b)));
    items.swap_remove(items.len() / 2)
}

/// `values`' median and range, as `median (min-max)`.
fn spread(values: Vec<f64>) -> String {
    let low = values.iter().copied().fold(f64::INFINITY, f64::min);
    let high = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{:.2} ({low:.2}-{high:.2})", middle(values, |v| *v))
}

/// The Spark mode (`-- --spark`, a build with `--features spark`): a Spark
/// Connect server on this machine (two local cores, from the pyspark
/// package `scripts/test-deps` installs) runs the same project, which must
/// find the same audience sizes as the embedded engine; prints where
/// Spark's time goes: the server's start, the session's setup, and the
/// run's phases (`read`: Spark reading and checking the Parquet sources;
/// `unify`; `audiences`: the audience job and the memberships coming back;
/// `activations`: the export job, its rows coming back, and the files).
#[cfg(feature = "spark")]
fn spark_mode(dir: &Path, counts: &[usize]) {
    let started = Instant::now();
    let server = servers::spark::Spark::start();
    let start_s = started.elapsed().as_secs_f64();
    let remote = run::engine::SparkRemote {
        remote: server.remote(),
        token: None,
        piece_bytes: run::engine::PIECE_BYTES,
    };
    let started = Instant::now();
    let session = run::engine::open(&run::engine::Choice::Spark(remote.clone()), dir)
        .expect("a Spark session");
    drop(session);
    let session_s = started.elapsed().as_secs_f64();
    println!(
        "Spark Connect server: listening after {start_s:.1}s; a session set up in {session_s:.2}s"
    );
    println!(
        "{:>10} {:>14} {:>12} {:>8}",
        "audiences", "embedded (s)", "spark (s)", "ratio"
    );
    let mut phases = Vec::new();
    for &n in counts {
        write_project(dir, n, Activated::One);
        let (embedded_s, embedded_sizes, _, _) = run_accord(dir);
        let (spark_s, spark_sizes, spark_phases, _) =
            run_accord_on(dir, &run::engine::Choice::Spark(remote.clone()));
        assert_eq!(
            spark_sizes, embedded_sizes,
            "Spark and the embedded engine disagree on audience sizes"
        );
        phases.push(format!("{n:>10} audiences: {spark_phases}"));
        println!(
            "{n:>10} {embedded_s:>14.2} {spark_s:>12.2} {:>8.2}",
            spark_s / embedded_s.max(1e-9)
        );
    }
    println!("Spark's phases (compile and render not included):");
    for p in phases {
        println!("{p}");
    }
}

/// Where the data of one scale is generated on first use and kept for the
/// next runs, outside the repository: `ACCORD_BENCH_DATA` (default
/// `~/.cache/accord-bench-data`), one folder per scale. The 10x data set
/// takes minutes to write and several GB.
fn data_folder(scale: f64) -> PathBuf {
    let base = std::env::var_os("ACCORD_BENCH_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/tmp".into()))
                .join(".cache")
                .join("accord-bench-data")
        });
    base.join(format!("scale-{scale}"))
}

/// Starts a new peak of this process's resident memory (Linux: writing 5
/// to `clear_refs` resets `VmHWM`).
fn reset_peak_memory() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// This process's peak resident memory since the last reset, in GB.
fn peak_memory_gb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1e6)
}

fn main() {
    let scale: f64 = std::env::var("ACCORD_BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    let counts: Vec<usize> = std::env::var("ACCORD_BENCH_AUDIENCES")
        .unwrap_or_else(|_| "5,50".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    // `--activated` (cargo passes `--bench` too): the activated mode.
    let activated = std::env::args().any(|a| a == "--activated");
    let dir = data_folder(scale);
    let done = dir.join(".generated");
    let started = Instant::now();
    if let Ok(text) = std::fs::read_to_string(&done) {
        println!(
            "data: {} (Parquet, cached in {})",
            text.trim(),
            dir.display()
        );
    } else {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("the data folder can be created");
        let (a, p, e) = generate(&dir, scale);
        let what = format!("{a} accounts, {p} people, {e} events");
        std::fs::write(&done, &what).expect("the data folder takes its marker");
        println!(
            "data: {what} (Parquet), generated in {:.1}s into {}",
            started.elapsed().as_secs_f64(),
            dir.display()
        );
    }
    if activated {
        activated_mode(&dir, &counts);
        return;
    }
    if std::env::args().any(|a| a == "--spark") {
        #[cfg(feature = "spark")]
        spark_mode(&dir, &counts);
        #[cfg(not(feature = "spark"))]
        panic!("`--spark` needs a build with `--features spark`");
        #[allow(unreachable_code)]
        return;
    }
    println!(
        "{:>10} {:>12} {:>12} {:>8}",
        "audiences", "accord (s)", "duckdb (s)", "ratio"
    );
    let mut phases = Vec::new();
    let first_count = counts.clone();
    for n in counts {
        write_project(&dir, n, Activated::One);
        let (accord_s, accord_sizes, accord_phases) = time_accord(&dir);
        phases.push(format!("{n:>10} audiences: {accord_phases}"));
        let (duck_s, duck_sizes) = time_duckdb(&dir, n);
        assert_eq!(
            accord_sizes, duck_sizes,
            "accord and the hand-written DuckDB SQL disagree on audience sizes"
        );
        println!(
            "{n:>10} {accord_s:>12.2} {duck_s:>12.2} {:>8.2}",
            accord_s / duck_s.max(1e-9)
        );
        let duck_peak = f64::from_bits(DUCKDB_PEAK_GB.load(std::sync::atomic::Ordering::Relaxed));
        phases.push(format!(
            "{n:>10} audiences, DuckDB's peak memory {duck_peak:.2} GB"
        ));
    }
    println!("accord's phases (compile and render not included):");
    for p in phases {
        println!("{p}");
    }
    let object = std::env::var("ACCORD_BENCH_OBJECT").as_deref() != Ok("0");
    if let (true, Some(&n)) = (object, first_count.first()) {
        let (local_s, s3_s, fetched, stored) = time_object_store(&dir, n);
        println!(
            "{n} audiences, sources on local disk: {local_s:.2}s; on a local S3 server (moto): {s3_s:.2}s; ratio {:.2}",
            s3_s / local_s.max(1e-9)
        );
        println!(
            "fetched {fetched} of the {stored} bytes stored ({:.0}%)",
            fetched as f64 * 100.0 / stored.max(1) as f64
        );
    }
    let csv = std::env::var("ACCORD_BENCH_CSV").as_deref() != Ok("0");
    if let (true, Some(&n)) = (csv, first_count.first()) {
        write_project(&dir, n, Activated::One);
        let (parquet_s, _, parquet_phases) = time_accord(&dir);
        let (csv_s, csv_phases) = time_csv(&dir, n);
        println!(
            "{n} audiences, sources as Parquet: {parquet_s:.2}s ({parquet_phases}); as CSV: {csv_s:.2}s ({csv_phases}); ratio {:.2}",
            csv_s / parquet_s.max(1e-9)
        );
    }
}
