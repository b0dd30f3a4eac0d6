//! The rendered Spark, BigQuery and Snowflake SQL (and DuckDB's) parses with
//! a real SQL parser for that dialect: sqlglot. Engines we cannot run in CI
//! are held at least to their grammar.
//!
//! Needs the `sqlglot` python package (`.ci/run` installs it); without it
//! the test fails and says so, it never skips.

use std::path::Path;
use std::process::Command;

use accord::compile::{self, Options};
use accord::render;

#[test]
fn warehouse_sql_parses_in_its_dialect() {
    let ok = Command::new("python3")
        .args(["-c", "import sqlglot"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "the `sqlglot` python package is missing: run `python3 -m pip install duckdb sqlglot` (as .ci/run does)"
    );
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("specs");
    let options = Options {
        environment: Some("dev".into()),
        today: compile::parse_date("2026-11-28"),
        ..Options::default()
    };
    let compiled = compile::check(&dir, &options).expect("specs load");
    let plan = compile::plan(&compiled).expect("specs compile to a plan");
    let (jobs, problems) = render::render(&plan, &render::Options::default());
    assert!(problems.is_empty(), "{problems:?}");
    let tmp = std::env::temp_dir().join(format!("accord-render-sqlglot-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    for (path, text) in &jobs {
        let target = tmp.join(path);
        std::fs::create_dir_all(target.parent().expect("parent")).expect("mkdir");
        std::fs::write(&target, text).expect("write job");
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/sqlglot_parse.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(&tmp)
        .args(["spark", "bigquery", "snowflake", "duckdb"])
        .output()
        .expect("python3 runs");
    let _ = std::fs::remove_dir_all(&tmp);
    assert!(
        out.status.success(),
        "sqlglot rejected rendered SQL:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
