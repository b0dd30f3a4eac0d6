//! The rendered Spark, BigQuery and Snowflake SQL (and DuckDB's) parses with
//! a real SQL parser for that dialect: sqlglot. Engines we cannot run in CI
//! are held at least to their grammar.
//!
//! Needs the `sqlglot` python package (`scripts/test` installs it); without it
//! the test fails and says so, it never skips.

use std::path::Path;
use std::process::Command;

use accord::render;

#[path = "support/plans.rs"]
mod plans;
#[path = "support/temp.rs"]
mod temp;

#[test]
fn warehouse_sql_parses_in_its_dialect() {
    parses("specs");
}

/// The edge-case project exercises more of the lowering: list unnesting,
/// durations, integer division and modulo, domain and gmail normalisation.
#[test]
fn warehouse_sql_of_the_edge_cases_parses_in_its_dialect() {
    parses("tests/render_projects/semantics");
}

/// Integer keys: the exports sort them by their text (`CAST(... AS
/// STRING)` in Spark and BigQuery, `VARCHAR` elsewhere).
#[test]
fn warehouse_sql_of_integer_keys_parses_in_its_dialect() {
    parses("tests/state_projects/people");
}

fn parses(project: &str) {
    let ok = Command::new("python3")
        .args(["-c", "import sqlglot"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "the `sqlglot` python package is missing: run the tests with `scripts/test`, which installs it"
    );
    let plan = plans::plan_of(project, "dev");
    let (jobs, problems) = render::render(&plan, &render::Options::default());
    assert!(problems.is_empty(), "{problems:?}");
    let scratch = temp::dir("render-sqlglot");
    let tmp = scratch.path();
    for (path, text) in &jobs {
        let target = tmp.join(path);
        std::fs::create_dir_all(target.parent().expect("parent")).expect("mkdir");
        std::fs::write(&target, text).expect("write job");
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/sqlglot_parse.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(tmp)
        .args(["spark", "bigquery", "snowflake", "duckdb"])
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "sqlglot rejected rendered SQL:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
