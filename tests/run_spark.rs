//! `accord run --engine spark` against a real Spark Connect server (started
//! on loopback from the pyspark package that `scripts/test` installs): the
//! same audiences, split parts, export rows, consent counts and reports as
//! the embedded engine, which `run_differential` holds to the interpreter;
//! the random rules are also held to the interpreter here.
//!
//! Each Spark job costs a good part of a second on two cores, so one
//! server serves every case, in one test, in order; the CLI's own errors
//! (no server, a wrong address) need none.
#![cfg(feature = "spark")]

#[path = "support/cli.rs"]
mod cli;
#[allow(dead_code)]
#[path = "support/data.rs"]
mod data;
#[path = "support/people_project.rs"]
mod people_project;
#[path = "support/plans.rs"]
mod plans;
#[allow(dead_code)]
#[path = "support/random_rules.rs"]
mod random_rules;
#[allow(dead_code)]
#[path = "support/rng.rs"]
mod rng;
#[path = "support/servers/mod.rs"]
mod servers;
#[path = "support/temp.rs"]
mod temp;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::rc::Rc;

use accord::plan::{Entity, Plan};
use accord::run::engine::{Choice, SparkRemote};
use accord::semantics::{self, audience_column};
use serde_json::Value;

const NOW: &str = "2026-11-28T12:00:00Z";
/// `accord run --preview` of the project in the working folder.
const RUN_PREVIEW: &[&str] = &["run", ".", "--env", "dev", "--preview", "--now", NOW];
/// [`RUN_PREVIEW`], as JSON.
const PREVIEW: &[&str] = &[
    "run",
    ".",
    "--env",
    "dev",
    "--preview",
    "--now",
    NOW,
    "--format",
    "json",
];

#[test]
fn spark_agrees_with_the_embedded_engine_and_the_interpreter() {
    let spark = servers::spark::Spark::start();
    let remote = spark.remote();

    // Parquet sources Spark reads itself (the server is on this machine):
    // the same rows kept, the same bad rows reported, the same warnings.
    let parquet = parquet_project();
    let report = same_run(parquet.path(), &remote, &[]);
    assert!(report > 0);
    let mut args = PREVIEW.to_vec();
    args.extend(["--engine", "spark", "--spark-remote", &remote]);
    let out = cli::accord_in(parquet.path(), &args);
    let preview: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", cli::printed(&out)));
    let accounts = &preview["sources"]["accounts"];
    assert_eq!(accounts["bad_rows"], 4, "{accounts:#}");
    assert_eq!(accounts["rows"], 7, "{accounts:#}");
    let samples = accounts["bad_row_samples"].to_string();
    for expected in [
        "data/accounts/b.parquet:row 1: duplicate key `A1`",
        "data/accounts/b.parquet:row 2: missing key `accountId`",
        "`bronze` is not one of the values of `tier`",
        "`employees`: `lots` is not an int",
    ] {
        assert!(samples.contains(expected), "{expected}: {samples}");
    }
    let diagnostics = preview.to_string();
    for code in ["R0005", "R0007", "R0020"] {
        assert!(diagnostics.contains(code), "{code}: {preview:#}");
    }

    // The example project, every activation: sizes, parts, consent counts,
    // files and the exact requests of its dry-run deliveries.
    let specs = plans::root().join("specs");
    let rows = same_run(&specs, &remote, &[]);
    assert!(rows > 100, "the example project exports rows: {rows}");
    // A client in another zone than UTC changes nothing (the server's JVM
    // runs in America/Los_Angeles too: the session zone decides).
    same_run(&specs, &remote, &[("TZ", "America/Los_Angeles")]);

    // The render edge cases: every composition (intersection, exclusion,
    // ranks with ties and missing values, splits), missing values, empty
    // lists, identity normalisation.
    let semantics = plans::root().join("tests/render_projects/semantics");
    same_run(&semantics, &remote, &[]);

    // A text source of more rows than a spill batch (100,000 people):
    // typed into a local file and streamed, a batch at a time, to Spark in
    // pieces of 1 MiB (the tests' hook; 32 MiB otherwise), as the
    // embedded engine streams it. Its accounts are keyed by an integer,
    // which both engines sort by its text.
    let people = temp::dir("spark-people");
    people_project::write(people.path(), 100_000, false);
    let rows = same_run(
        people.path(),
        &remote,
        &[("ACCORD_SPARK_PIECE_BYTES", "1048576")],
    );
    assert!(rows > 100_000, "every person is exported: {rows}");

    same_preview_and_explanations(&specs, &remote);
    random_rules_agree(&remote);
}

/// `tests/source_projects/spark_parquet` with its Parquet files written:
/// three account files (typed rows; a duplicate, a missing key, a value
/// outside a closed domain, one that is not an int, a time in the future
/// and a column no field declares; no rows at all), people, and a second
/// source of account fields.
fn parquet_project() -> tempfile::TempDir {
    use std::sync::Arc;

    use datafusion::arrow::array::{
        ArrayRef, BooleanArray, Float64Array, ListBuilder, StringArray, StringBuilder,
        TimestampMicrosecondArray,
    };
    use datafusion::arrow::record_batch::RecordBatch;
    use datafusion::parquet::arrow::ArrowWriter;

    let dir = copy_project(
        &plans::root().join("tests/source_projects/spark_parquet"),
        "parquet",
    );
    let data = dir.path().join("data/accounts");
    std::fs::create_dir_all(&data).expect("mkdir");
    let write = |path: PathBuf, columns: Vec<(&str, ArrayRef)>| {
        let batch = RecordBatch::try_from_iter(columns).expect("batch");
        let file = std::fs::File::create(&path).expect("create");
        let mut writer = ArrowWriter::try_new(file, batch.schema(), None).expect("writer");
        writer.write(&batch).expect("write");
        writer.close().expect("close");
    };
    let strings = |v: &[Option<&str>]| -> ArrayRef { Arc::new(StringArray::from(v.to_vec())) };
    let micros =
        |day: &str| accord::time::parse_timestamp(&format!("{day}T10:00:00Z")).expect("time");
    let times = |v: &[Option<&str>]| -> ArrayRef {
        Arc::new(
            TimestampMicrosecondArray::from(v.iter().map(|d| d.map(micros)).collect::<Vec<_>>())
                .with_timezone("UTC"),
        )
    };
    let tags = |v: &[&[&str]]| -> ArrayRef {
        let mut b = ListBuilder::new(StringBuilder::new());
        for row in v {
            for t in *row {
                b.values().append_value(t);
            }
            b.append(true);
        }
        Arc::new(b.finish())
    };
    write(
        data.join("a.parquet"),
        vec![
            (
                "accountId",
                strings(&[Some("A1"), Some("A2"), Some("A3"), Some("A4"), Some("A5")]),
            ),
            (
                "name",
                strings(&[
                    Some("Acme"),
                    Some("Globex"),
                    Some("Initech"),
                    None,
                    Some("Umbrella"),
                ]),
            ),
            (
                "tier",
                strings(&[
                    Some("gold"),
                    Some("silver"),
                    Some("gold"),
                    None,
                    Some("gold"),
                ]),
            ),
            (
                "employees",
                strings(&[Some("1500"), Some("20"), Some("3000"), Some("999"), None]),
            ),
            (
                "revenue",
                Arc::new(Float64Array::from(vec![
                    Some(1.5e6),
                    None,
                    Some(2.25),
                    Some(0.0),
                    Some(7.0),
                ])),
            ),
            (
                "public",
                Arc::new(BooleanArray::from(vec![
                    Some(true),
                    Some(false),
                    None,
                    Some(true),
                    Some(false),
                ])),
            ),
            (
                "tags",
                tags(&[&["abm", "q4"], &[], &["abm"], &["other"], &["abm"]]),
            ),
            (
                "updatedAt",
                times(&[
                    Some("2026-11-20"),
                    Some("2026-10-01"),
                    None,
                    Some("2026-11-27"),
                    Some("2026-09-30"),
                ]),
            ),
        ],
    );
    write(
        data.join("b.parquet"),
        vec![
            (
                "accountId",
                strings(&[
                    Some("A1"),
                    None,
                    Some("A7"),
                    Some("A8"),
                    Some("A9"),
                    Some("A10"),
                ]),
            ),
            (
                "name",
                strings(&[
                    Some("Acme again"),
                    Some("No key"),
                    Some("Bronze"),
                    Some("Lots"),
                    Some("Future"),
                    Some("Hooli"),
                ]),
            ),
            (
                "tier",
                strings(&[
                    Some("gold"),
                    Some("gold"),
                    Some("bronze"),
                    Some("silver"),
                    Some("silver"),
                    Some("gold"),
                ]),
            ),
            (
                "employees",
                strings(&[
                    Some("10"),
                    Some("10"),
                    Some("10"),
                    Some("lots"),
                    Some("5000"),
                    Some("1200"),
                ]),
            ),
            ("revenue", Arc::new(Float64Array::from(vec![Some(1.0); 6]))),
            ("public", Arc::new(BooleanArray::from(vec![Some(true); 6]))),
            ("tags", tags(&[&[], &[], &[], &[], &["abm"], &["abm", "x"]])),
            (
                "updatedAt",
                times(&[
                    Some("2026-11-01"),
                    Some("2026-11-01"),
                    Some("2026-11-01"),
                    Some("2026-11-01"),
                    Some("2027-06-01"),
                    Some("2026-11-02"),
                ]),
            ),
            ("region", strings(&[Some("EMEA"); 6])),
        ],
    );
    write(
        data.join("c.parquet"),
        vec![("accountId", strings(&[])), ("name", strings(&[]))],
    );
    write(
        dir.path().join("data/people.parquet"),
        vec![
            (
                "personId",
                strings(&[Some("P1"), Some("P2"), Some("P3"), Some("P3"), Some("P4")]),
            ),
            (
                "email",
                strings(&[
                    Some("a@acme.example"),
                    Some("b@globex.example"),
                    Some("c@x.example"),
                    Some("c2@x.example"),
                    None,
                ]),
            ),
            (
                "accountId",
                strings(&[Some("A1"), Some("A2"), Some("A10"), Some("A3"), None]),
            ),
            (
                "seniority",
                strings(&[Some("VP"), Some("IC"), Some("VP"), Some("VP"), Some("CEO")]),
            ),
        ],
    );
    write(
        dir.path().join("data/updates.parquet"),
        vec![
            ("accountId", strings(&[Some("A2"), Some("A3"), Some("A11")])),
            (
                "revenue",
                Arc::new(Float64Array::from(vec![Some(9.5), None, Some(1.0)])),
            ),
            ("employees", strings(&[Some("2500"), Some("1"), Some("1")])),
        ],
    );
    dir
}

/// Runs `project` (a copy) on both engines with every activation forced,
/// deliveries dry: the reports (but their times and run ids), the delivered
/// files and the described requests must be equal. Returns the rows of
/// the delivered files, so a caller can see the comparison was not empty.
fn same_run(project: &Path, remote: &str, env: &[(&str, &str)]) -> usize {
    let embedded = copy_project(project, "embedded");
    let spark = copy_project(project, "spark");
    let run = |dir: &Path, engine: &[&str]| {
        let mut args = vec![
            "run",
            ".",
            "--env",
            "dev",
            "--all",
            "--dry-run",
            "--now",
            NOW,
            "--format",
            "json",
            "--out",
            "delivered",
        ];
        args.extend_from_slice(engine);
        let mut command = Command::new(env!("CARGO_BIN_EXE_accord"));
        command
            .args(&args)
            .current_dir(dir)
            .env("NO_COLOR", "1")
            .envs(env.iter().copied());
        let out = command.output().expect("accord runs");
        (out.status.code(), out)
    };
    let (code_e, out_e) = run(embedded.path(), &[]);
    let (code_s, out_s) = run(
        spark.path(),
        &["--engine", "spark", "--spark-remote", remote],
    );
    let what = format!("{} (environment {env:?})", project.display());
    assert_eq!(
        code_s,
        code_e,
        "{what}: exit codes\nspark: {}\nembedded: {}",
        cli::printed(&out_s),
        cli::printed(&out_e)
    );
    let report_e: Value = serde_json::from_slice(&out_e.stdout)
        .unwrap_or_else(|e| panic!("{what}: embedded report: {e}\n{}", cli::printed(&out_e)));
    let report_s: Value = serde_json::from_slice(&out_s.stdout)
        .unwrap_or_else(|e| panic!("{what}: spark report: {e}\n{}", cli::printed(&out_s)));
    assert_eq!(
        comparable(&report_s),
        comparable(&report_e),
        "{what}: the run reports differ"
    );
    let delivered_e = files(&embedded.path().join("delivered"));
    let delivered_s = files(&spark.path().join("delivered"));
    assert_eq!(
        delivered_s.keys().collect::<Vec<_>>(),
        delivered_e.keys().collect::<Vec<_>>(),
        "{what}: the same files are delivered"
    );
    for (name, bytes) in &delivered_e {
        assert!(
            delivered_s[name] == *bytes,
            "{what}: {name} differs\nspark:\n{}\nembedded:\n{}",
            String::from_utf8_lossy(&delivered_s[name]),
            String::from_utf8_lossy(bytes)
        );
    }
    let requests_e = requests(embedded.path(), &report_e);
    let requests_s = requests(spark.path(), &report_s);
    assert_eq!(
        requests_s.keys().collect::<Vec<_>>(),
        requests_e.keys().collect::<Vec<_>>(),
        "{what}: the same requests are described"
    );
    for (name, text) in &requests_e {
        assert_eq!(&requests_s[name], text, "{what}: request {name} differs");
    }
    delivered_e
        .values()
        .map(|bytes| bytes.iter().filter(|b| **b == b'\n').count())
        .sum()
}

/// A report without what differs between any two runs: times, durations,
/// run ids and the engine's phases.
fn comparable(report: &Value) -> Value {
    match report {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| {
                    !matches!(
                        k.as_str(),
                        "run_id" | "started" | "finished" | "duration_ms" | "phases_ms"
                    ) && !k.ends_with("_ms")
                })
                .map(|(k, v)| (k.clone(), comparable(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(comparable).collect()),
        other => other.clone(),
    }
}

/// The request files a dry run described, by path under its run folder,
/// the run id replaced.
fn requests(dir: &Path, report: &Value) -> BTreeMap<String, String> {
    let run_id = report["run_id"].as_str().unwrap_or_default().to_string();
    let runs = dir.join(".accord/runs");
    let mut out = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(&runs) else {
        return out;
    };
    for entry in entries.flatten() {
        for (name, bytes) in files(&entry.path()) {
            let text = String::from_utf8_lossy(&bytes).replace(&run_id, "<run id>");
            out.insert(name, text);
        }
    }
    out
}

/// Every file under `root` by its path relative to it.
fn files(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for entry in walkdir::WalkDir::new(root).sort_by_file_name() {
        let Ok(entry) = entry else { continue };
        if entry.file_type().is_file() {
            let name = entry
                .path()
                .strip_prefix(root)
                .expect("under root")
                .display()
                .to_string();
            out.insert(name, std::fs::read(entry.path()).expect("read"));
        }
    }
    out
}

/// A copy of a project folder without its run state or deliveries.
fn copy_project(from: &Path, name: &str) -> tempfile::TempDir {
    let to = temp::dir(&format!("spark-{name}"));
    for entry in walkdir::WalkDir::new(from) {
        let entry = entry.expect("walk");
        let relative = entry.path().strip_prefix(from).expect("under");
        let first = relative
            .components()
            .next()
            .map(|c| c.as_os_str().to_owned());
        if matches!(
            first.as_ref().and_then(|f| f.to_str()),
            Some(".accord" | "out")
        ) {
            continue;
        }
        let target: PathBuf = to.path().join(relative);
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&target).expect("mkdir");
        } else if entry.file_type().is_file() {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
    to
}

/// `run --preview` and `explain account` say the same on both engines.
fn same_preview_and_explanations(specs: &Path, remote: &str) {
    let both = |args: &[&str]| {
        let embedded = cli::accord_in(specs, args);
        let mut with_spark = args.to_vec();
        with_spark.extend(["--engine", "spark", "--spark-remote", remote]);
        let spark = cli::accord_in(specs, &with_spark);
        assert_eq!(
            spark.status.code(),
            embedded.status.code(),
            "{args:?}: exit codes\nspark: {}\nembedded: {}",
            cli::printed(&spark),
            cli::printed(&embedded)
        );
        (embedded, spark)
    };
    let (embedded, spark) = both(PREVIEW);
    let e: Value = serde_json::from_slice(&embedded.stdout).expect("embedded preview");
    let s: Value = serde_json::from_slice(&spark.stdout).expect("spark preview");
    assert_eq!(comparable(&s), comparable(&e), "the previews differ");

    let account = an_enterprise_member();
    for (id, audience) in [
        (account.as_str(), "B2B_ICP_Enterprise"),
        ("no-such-account", "B2B_ICP_Enterprise"),
    ] {
        let (embedded, spark) = both(&[
            "explain",
            "account",
            id,
            ".",
            "--audience",
            audience,
            "--env",
            "dev",
            "--now",
            NOW,
        ]);
        assert_eq!(
            cli::printed(&spark),
            cli::printed(&embedded),
            "explain account {id} --audience {audience}"
        );
    }
}

/// An account of `B2B_ICP_Enterprise` in the example project, as the
/// embedded engine evaluates it.
fn an_enterprise_member() -> String {
    let plan = plans::plan_of("specs", "dev");
    let (_, jobs) = plans::datafusion_jobs("specs", "dev");
    let now = accord::time::parse_timestamp(NOW).expect("now");
    let evaluation = accord::run::evaluate(&plan, &jobs, &plans::root().join("specs"), now)
        .expect("the embedded engine evaluates");
    evaluation
        .members
        .keys("B2B_ICP_Enterprise")
        .into_iter()
        .next()
        .expect("a member")
}

/// Seeded random rules over random data (the generator of
/// `run_differential`), each seed's audiences in one evaluation: Spark's
/// members equal the embedded engine's and the interpreter's.
fn random_rules_agree(remote: &str) {
    let base = plans::plan_of("specs", "dev");
    let now = accord::time::parse_timestamp(NOW).expect("now");
    let choice = Choice::Spark(SparkRemote {
        remote: remote.to_string(),
        token: None,
        piece_bytes: accord::run::engine::PIECE_BYTES,
    });
    let mut checked = 0;
    for (stream, predicate, words) in [
        (
            0x9e37_79b9_7f4a_7c15u64,
            random_rules::predicate as random_rules::Predicate,
            random_rules::WORDS,
        ),
        (
            0x0ed9_e5e5_2026_0011,
            random_rules::edge_predicate,
            random_rules::EDGE_WORDS,
        ),
    ] {
        for seed in 1..=2u64 {
            let scratch = temp::dir(&format!("spark-random-{seed}"));
            let root = scratch.path();
            let plan = random_rules::random_plan(&base, stream, seed, predicate, words, root);
            let what = format!("stream {stream:#x}, seed {seed}: {:#?}", rules(&plan));
            let places = accord::run::Places::default();
            let spark = accord::run::evaluate_with(
                &plan,
                &jobs(&plan, "spark"),
                root,
                now,
                &places,
                &choice,
            )
            .unwrap_or_else(|e| panic!("{what}: spark: {e}"));
            let embedded = accord::run::evaluate(&plan, &jobs(&plan, "datafusion"), root, now)
                .unwrap_or_else(|e| panic!("{what}: embedded: {e}"));
            assert_eq!(
                spark.members.sets(),
                embedded.members.sets(),
                "{what}: spark and embedded"
            );
            let interpreter = interpreter(&plan, root, now);
            let spark_columns: BTreeMap<String, BTreeSet<String>> = spark
                .members
                .sets()
                .into_iter()
                .map(|(a, m)| (audience_column(&a), m))
                .collect();
            assert_eq!(
                spark_columns, interpreter,
                "{what}: spark and the interpreter"
            );
            checked += plan.audiences.len();
        }
    }
    assert!(checked >= 24, "{checked} random audiences");
}

fn rules(plan: &Plan) -> BTreeMap<&String, String> {
    plan.audiences
        .iter()
        .map(|(n, a)| match &a.definition {
            accord::plan::AudienceDefinition::Rule { expr } => (n, expr.clone()),
            _ => (n, String::new()),
        })
        .collect()
}

fn jobs(plan: &Plan, dialect: &str) -> accord::render::Jobs {
    let (jobs, problems) = accord::render::render(
        plan,
        &accord::render::Options {
            dialects: vec![dialect.into()],
            ..accord::render::Options::default()
        },
    );
    assert!(problems.is_empty(), "{problems:?}");
    jobs
}

/// The interpreter's account memberships, by audience column.
fn interpreter(plan: &Plan, root: &Path, now: i64) -> BTreeMap<String, BTreeSet<String>> {
    let tables = data::load(plan, root);
    let (mut accounts, _people) = data::records(plan, &tables);
    semantics::add_computed(plan, &mut accounts, now).expect("computed attributes evaluate");
    let accounts: Vec<Rc<_>> = accounts.into_iter().map(Rc::new).collect();
    semantics::account_memberships(plan, &accounts, now)
        .expect("audiences evaluate")
        .into_iter()
        .filter(|(a, _)| !a.starts_with("__pre_"))
        .filter(|(a, _)| {
            let base = a.split('.').next().unwrap_or(a);
            plan.audiences
                .get(base)
                .is_none_or(|p| p.entity == Entity::Account)
        })
        .collect()
}

/// The engine's own errors need no server: a Spark run without an address,
/// with one that is not Spark Connect's, and with nothing listening.
#[test]
fn a_spark_run_without_a_server_is_a_usage_error_that_says_what_to_do() {
    let specs = plans::root().join("specs");
    let cases: [(&[&str], &str); 3] = [
        (
            &["--engine", "spark"],
            "pass `--spark-remote sc://HOST:PORT`",
        ),
        (
            &[
                "--engine",
                "spark",
                "--spark-remote",
                "http://127.0.0.1:15002",
            ],
            "is not a Spark Connect address",
        ),
        (
            &["--spark-remote", "sc://127.0.0.1:1"],
            "add `--engine spark`",
        ),
    ];
    for (extra, expected) in cases {
        let mut args = RUN_PREVIEW.to_vec();
        args.extend_from_slice(extra);
        let out = cli::accord_in(&specs, &args);
        let text = cli::printed(&out);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {text}");
        assert!(text.contains(expected), "{extra:?}: {text}");
    }
    // Nothing listens on the port: the run stops before its activations,
    // saying where it tried, within the client's retries.
    let port = servers::free_port();
    let remote = format!("sc://127.0.0.1:{port}");
    let started = std::time::Instant::now();
    let mut args = RUN_PREVIEW.to_vec();
    args.extend(["--engine", "spark", "--spark-remote", &remote]);
    let out = cli::accord_in(&specs, &args);
    let text = cli::printed(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "gave up after {:?}",
        started.elapsed()
    );
}
