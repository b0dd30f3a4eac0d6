//! Hashing throughput: `hash_email(person.email)` (trim, lower-case, then
//! SHA-256 as hex) the way a run computes it, against `sha2` hashing the
//! same already-normalised bytes in a loop (the floor).
//!
//! The run hashes in the rendered export SQL, on the embedded engine. So
//! the benchmark renders a project with two activations of the same
//! people that differ only in one column, `hash_email(person.email)`
//! against `person.email`, runs both rendered export queries on the run's
//! own engine session (the data read and the audiences evaluated as a run
//! does), and takes the difference: the cost of normalising and hashing,
//! with everything else of the query the same. Rows per second per core
//! divide by the cores the engine uses; under `taskset -c 0` that is one.
//!
//! `cargo bench --features engine --bench hash` (release); with a cold
//! release build, `cargo bench --profile dev --features engine --bench
//! hash` (label the figures debug-profile). Environment:
//! `ACCORD_BENCH_PEOPLE` (default 1,000,000), `ACCORD_BENCH_REPEAT`
//! (default 3; the best time of each is kept).

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use accord::compile;
use accord::run;
use accord::time;
use datafusion::arrow::array::{ArrayRef, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::ArrowWriter;
use sha2::{Digest, Sha256};

const NOW: &str = "2026-11-28T12:00:00Z";

const SPECS: &str = r#"
[project]
name = "hash_bench"
format = 1

[environment.dev]
enforcement = "warn"

[schema.account]
class = "account"
key = "accountId"
[schema.account.fields]
accountId = { type = "string", identity = "crm_account_id" }

[schema.person]
class = "person"
key = "personId"
[schema.person.fields]
personId  = "string"
accountId = "string"
email     = { type = "string", identity = "email" }
[schema.person.links.account]
to = "account"
by = "accountId"
reverse = "people"

[source.accounts]
schema = "account"
path = "data/accounts.parquet"
[source.people]
schema = "person"
path = "data/people.parquet"

[audience.B2B_Everyone]
rule = 'account.accountId != ""'

[destination.files]
type = "filesystem"
path = "out"

[activation.hashed]
destination = "files"
audiences = ["B2B_Everyone"]
people = 'person.personId != ""'
export = "full"
[activation.hashed.map]
personId = "person.personId"
email_sha256 = "hash_email(person.email)"

[activation.raw]
destination = "files"
audiences = ["B2B_Everyone"]
people = 'person.personId != ""'
export = "full"
[activation.raw.map]
personId = "person.personId"
email = "person.email"
"#;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn write_parquet(path: &Path, columns: Vec<(&str, Vec<String>)>) {
    let schema = Arc::new(Schema::new(
        columns
            .iter()
            .map(|(n, _)| Field::new(*n, DataType::Utf8, true))
            .collect::<Vec<_>>(),
    ));
    let arrays: Vec<ArrayRef> = columns
        .into_iter()
        .map(|(_, v)| Arc::new(StringArray::from(v)) as ArrayRef)
        .collect();
    let batch = RecordBatch::try_new(schema.clone(), arrays).expect("batch");
    let file = std::fs::File::create(path).expect("create parquet");
    let mut writer = ArrowWriter::try_new(file, schema, None).expect("writer");
    writer.write(&batch).expect("write");
    writer.close().expect("close");
}

/// Email `i` as people type them: padded, mixed case.
fn email(i: usize) -> String {
    format!("  First.Last{i}@Example-{}.COM ", i % 997)
}

fn best(repeat: usize, mut f: impl FnMut() -> usize) -> (f64, usize) {
    let mut best = f64::MAX;
    let mut rows = 0;
    for _ in 0..repeat {
        let started = Instant::now();
        rows = f();
        best = best.min(started.elapsed().as_secs_f64());
    }
    (best, rows)
}

fn main() {
    let people = env_or("ACCORD_BENCH_PEOPLE", 1_000_000);
    let repeat = env_or("ACCORD_BENCH_REPEAT", 3).max(1);
    let temp = tempfile::Builder::new()
        .prefix("accord-bench-hash-")
        .tempdir()
        .expect("temp");
    let dir = temp.path();
    std::fs::create_dir_all(dir.join("data")).expect("mkdir");
    let accounts = (people / 10).max(1);
    write_parquet(
        &dir.join("data/accounts.parquet"),
        vec![(
            "accountId",
            (0..accounts).map(|i| format!("A{i:07}")).collect(),
        )],
    );
    write_parquet(
        &dir.join("data/people.parquet"),
        vec![
            (
                "personId",
                (0..people).map(|i| format!("P{i:08}")).collect(),
            ),
            (
                "accountId",
                (0..people)
                    .map(|i| format!("A{:07}", i % accounts))
                    .collect(),
            ),
            ("email", (0..people).map(email).collect()),
        ],
    );
    std::fs::write(dir.join("accord.toml"), SPECS).expect("specs");

    let options = compile::Options {
        environment: Some("dev".into()),
        today: compile::parse_date("2026-11-28"),
        ..compile::Options::default()
    };
    let checked = compile::check(dir, &options).expect("the bench project loads");
    let plan = compile::plan(&checked).expect("the bench project compiles");
    let (jobs, problems) = accord::render::render(
        &plan,
        &accord::render::Options {
            dialects: vec!["datafusion".into()],
            ..accord::render::Options::default()
        },
    );
    assert!(problems.is_empty(), "{problems:?}");
    let now = time::parse_timestamp(NOW).expect("now");
    let evaluation = run::evaluate(&plan, &jobs, dir, now).expect("evaluate");
    let export = |name: &str| {
        jobs[&format!("sql/datafusion/exports/{name}.sql")].replace(
            accord::render::dialect::NOW_PLACEHOLDER,
            &evaluation.now_sql,
        )
    };
    let (hashed_sql, raw_sql) = (export("hashed"), export("raw"));
    assert!(
        hashed_sql.contains("SHA256"),
        "the hashed export hashes in SQL"
    );
    let rows_of = |sql: &str| {
        evaluation
            .engine
            .sql(sql)
            .expect("export query")
            .iter()
            .map(|b| b.num_rows())
            .sum::<usize>()
    };
    let (hashed_s, hashed_rows) = best(repeat, || rows_of(&hashed_sql));
    let (raw_s, raw_rows) = best(repeat, || rows_of(&raw_sql));
    assert_eq!(hashed_rows, people, "every person is exported once");
    assert_eq!(raw_rows, people);
    let cores = run::engine::cores();

    // The floor: the same emails, normalised beforehand, hashed in a loop
    // on one core.
    let normalised: Vec<String> = (0..people)
        .map(|i| email(i).trim().to_lowercase())
        .collect();
    let (floor_s, _) = best(repeat, || {
        let mut acc = 0u8;
        for e in &normalised {
            acc ^= Sha256::digest(e.as_bytes())[0];
        }
        std::hint::black_box(acc) as usize
    });
    let (floor_hex_s, _) = best(repeat, || {
        let mut acc = 0usize;
        for e in &normalised {
            acc += accord::hash::sha256_hex(e.as_bytes()).len();
        }
        std::hint::black_box(acc)
    });

    let hashing_s = (hashed_s - raw_s).max(1e-9);
    let per_core = people as f64 / hashing_s / cores as f64;
    let floor = people as f64 / floor_s.max(1e-9);
    let floor_hex = people as f64 / floor_hex_s.max(1e-9);
    println!("{people} emails, engine on {cores} cores, best of {repeat}");
    println!(
        "export query with hash_email: {hashed_s:.3}s; with the raw email: {raw_s:.3}s; hashing: {hashing_s:.3}s"
    );
    println!(
        "accord (normalise + SHA-256 + hex in the rendered SQL): {:.0} rows/s per core",
        per_core
    );
    println!("floor (sha2 over the normalised bytes, one core): {floor:.0} rows/s");
    println!("sha2 + hex over the normalised bytes, one core: {floor_hex:.0} rows/s");
    println!(
        "ratio floor / accord per core: {:.2}; (sha2 + hex) / accord: {:.2}",
        floor / per_core,
        floor_hex / per_core
    );
}
