//! Verification, not trust: the rendered DuckDB SQL, run in a real DuckDB
//! over the sample data of `specs/`, gives exactly the CEL interpreter's
//! membership for every audience and split part; every export query runs.
//!
//! Needs the `duckdb` python package (`.ci/run` installs it); without it the
//! test fails and says so, it never skips.

#[path = "support/data.rs"]
mod data;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::rc::Rc;

use accord::cel::eval::parse_timestamp;
use accord::compile::{self, Options};
use accord::render::{self, semantics};

const NOW: &str = "2026-11-28T00:00:00Z";

fn plan() -> accord::plan::Plan {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("specs");
    let options = Options {
        environment: Some("dev".into()),
        today: compile::parse_date("2026-11-28"),
        ..Options::default()
    };
    let compiled = compile::check(&dir, &options).expect("specs load");
    compile::plan(&compiled).expect("specs compile to a plan")
}

fn require_python_module(module: &str) {
    let ok = Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "the `{module}` python package is missing: run `python3 -m pip install duckdb sqlglot` (as .ci/run does)"
    );
}

#[test]
fn duckdb_sql_agrees_with_the_interpreter_on_every_audience() {
    require_python_module("duckdb");
    let plan = plan();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("specs");
    let now = parse_timestamp(NOW).expect("now");

    // The reference: the interpreter over the same typed rows.
    let tables = data::load(&plan, &root);
    let (mut accounts, people) = data::records(&plan, &tables);
    semantics::add_computed(&plan, &mut accounts, now).expect("computed attributes evaluate");
    let accounts: Vec<Rc<_>> = accounts.into_iter().map(Rc::new).collect();
    let expected_accounts =
        semantics::account_memberships(&plan, &accounts, now).expect("audiences evaluate");
    let expected_people =
        semantics::person_memberships(&plan, &people, now).expect("person audiences evaluate");

    // The rendered jobs, run by DuckDB.
    let (jobs, problems) = render::render(
        &plan,
        &render::Options {
            dialects: vec!["duckdb".into()],
            ..render::Options::default()
        },
    );
    assert!(problems.is_empty(), "{problems:?}");
    let tmp = std::env::temp_dir().join(format!("accord-render-duckdb-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    data::write_canonical(&plan, &tables, &tmp.join("data"));
    for (path, text) in &jobs {
        let target = tmp.join("jobs").join(path);
        std::fs::create_dir_all(target.parent().expect("parent")).expect("mkdir");
        std::fs::write(&target, text).expect("write job");
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/duckdb_run.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(tmp.join("data"))
        .arg(tmp.join("jobs/sql/duckdb"))
        .arg("2026-11-28 00:00:00")
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "duckdb failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json result");
    let _ = std::fs::remove_dir_all(&tmp);

    let got = |side: &str| -> BTreeMap<String, BTreeSet<String>> {
        result[side]
            .as_object()
            .map(|m| {
                m.iter()
                    .filter(|(k, _)| !k.starts_with("__pre_"))
                    .map(|(k, v)| {
                        let keys = v
                            .as_array()
                            .map(|a| {
                                a.iter()
                                    .filter_map(|x| x.as_str().map(String::from))
                                    .collect()
                            })
                            .unwrap_or_default();
                        (k.clone(), keys)
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let (got_accounts, got_people) = (got("accounts"), got("people"));
    assert_eq!(
        got_accounts.keys().collect::<Vec<_>>(),
        expected_accounts.keys().collect::<Vec<_>>(),
        "the same audience columns"
    );
    for (audience, expected) in &expected_accounts {
        let got = &got_accounts[audience];
        assert_eq!(
            got,
            expected,
            "{audience}: duckdb only {:?}, interpreter only {:?}",
            got.difference(expected).collect::<Vec<_>>(),
            expected.difference(got).collect::<Vec<_>>()
        );
    }
    assert_eq!(got_people, expected_people);
    // The sample data exercises every audience: none is trivially empty
    // (which would make agreement meaningless).
    let empty: Vec<&String> = expected_accounts
        .iter()
        .chain(&expected_people)
        .filter(|(_, m)| m.is_empty())
        .map(|(a, _)| a)
        .collect();
    assert!(
        empty.is_empty(),
        "audiences without members in the sample data: {empty:?}"
    );
    for (a, m) in expected_accounts.iter().chain(&expected_people) {
        eprintln!("{a}: {}", m.len());
    }
    eprintln!("exports: {}", result["exports"]);
    let exports = result["exports"].as_object().expect("exports ran");
    assert_eq!(
        exports.len(),
        plan.activations.len(),
        "every export query ran"
    );
}
