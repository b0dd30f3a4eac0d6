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

fn plan(dir: &Path) -> accord::plan::Plan {
    let options = Options {
        environment: Some("dev".into()),
        today: compile::parse_date("2026-11-28"),
        ..Options::default()
    };
    let compiled = compile::check(dir, &options).expect("specs load");
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
fn duckdb_sql_agrees_with_the_interpreter_on_the_example_project() {
    differential("specs", true);
}

/// Compositions (intersection, exclude_overlap, ascending rank with missing
/// values and ties, three-part split, split by attribute without `other`)
/// and the CEL constructs over data with missing values and empty lists.
#[test]
fn duckdb_sql_agrees_with_the_interpreter_on_edge_cases() {
    differential("tests/render_projects/semantics", false);
}

/// Runs the project's audiences and exports in DuckDB and in the
/// interpreter and compares them; `populated`: every audience and export of
/// the project must have members, so agreement is not vacuous.
fn differential(project: &str, populated: bool) {
    require_python_module("duckdb");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(project);
    let plan = plan(&root);
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
    let tmp = std::env::temp_dir().join(format!(
        "accord-render-duckdb-{}-{}",
        std::process::id(),
        project.replace('/', "_")
    ));
    let _ = std::fs::remove_dir_all(&tmp);
    data::write_canonical(&plan, &tables, &tmp.join("data"));
    let columns = serde_json::json!({
        "account": render::query::audience_columns(&plan, "account"),
        "person": render::query::audience_columns(&plan, "person"),
    });
    std::fs::write(tmp.join("data/audiences.json"), columns.to_string()).expect("write audiences");
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
        !populated || empty.is_empty(),
        "audiences without members in the sample data: {empty:?}"
    );
    for (a, m) in expected_accounts.iter().chain(&expected_people) {
        eprintln!("{a}: {}", m.len());
    }
    let exports = result["exports"].as_object().expect("exports ran");
    assert_eq!(
        exports.len(),
        plan.activations.len(),
        "every export query ran"
    );

    // Export rows: the same accounts, people and mapped values.
    for name in plan.activations.keys() {
        let expected = semantics::export_rows(
            &plan,
            name,
            &accounts,
            &people,
            &expected_accounts,
            &expected_people,
            now,
        )
        .expect("export rows evaluate");
        let mut expected: Vec<serde_json::Value> = expected
            .iter()
            .map(|r| {
                let mut row = vec![
                    serde_json::json!(r.audience),
                    serde_json::json!(r.account),
                    serde_json::json!(r.person),
                ];
                row.extend(r.values.iter().map(json_of));
                serde_json::Value::Array(row)
            })
            .collect();
        let mut got: Vec<serde_json::Value> = exports[name].as_array().cloned().unwrap_or_default();
        let key = |v: &serde_json::Value| v.to_string();
        expected.sort_by_key(key);
        got.sort_by_key(key);
        eprintln!("{name}: {} rows", got.len());
        assert!(
            !populated || !expected.is_empty(),
            "{name}: no rows in the sample data"
        );
        if got != expected {
            let only_sql: Vec<_> = got
                .iter()
                .filter(|r| !expected.contains(r))
                .take(3)
                .collect();
            let only_cel: Vec<_> = expected
                .iter()
                .filter(|r| !got.contains(r))
                .take(3)
                .collect();
            panic!(
                "{name}: export rows differ ({} from duckdb, {} from the interpreter); duckdb only: {only_sql:?}; interpreter only: {only_cel:?}",
                got.len(),
                expected.len()
            );
        }
    }
}

fn json_of(v: &accord::cel::eval::Value) -> serde_json::Value {
    use accord::cel::eval::Value;
    match v {
        Value::Null => serde_json::Value::Null,
        Value::Bool(b) => serde_json::json!(b),
        Value::Int(i) => serde_json::json!(i),
        Value::Double(d) => serde_json::json!(d),
        Value::Str(s) => serde_json::json!(s),
        Value::Timestamp(t) => serde_json::json!(data::timestamp_text(*t)),
        other => serde_json::json!(format!("{other:?}")),
    }
}
