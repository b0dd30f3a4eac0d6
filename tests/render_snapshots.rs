//! Snapshots of the rendered jobs of `specs/` (`accord render specs --env
//! dev`): every SQL file and manifest, one snapshot each in
//! `snapshots/render/`, so a change to the lowering shows as a reviewable
//! diff. Also: rendering is deterministic, user templates override built-in
//! ones by name, and the CLI writes exactly the jobs.

use std::collections::BTreeMap;
use std::process::Command;

use accord::render::{self, Jobs};

#[path = "support/plans.rs"]
mod plans;
#[path = "support/temp.rs"]
mod temp;

fn plan() -> accord::plan::Plan {
    plans::plan_of("specs", "dev")
}

fn jobs(options: &render::Options) -> Jobs {
    let (jobs, problems) = render::render(&plan(), options);
    assert!(problems.is_empty(), "{problems:?}");
    jobs
}

#[test]
fn rendered_jobs_of_the_example_project() {
    let jobs = jobs(&render::Options::default());
    assert!(jobs.contains_key("plan.json"));
    for (path, text) in &jobs {
        if path == "plan.json" {
            continue; // the plan has its own snapshots
        }
        let name = path.replace('/', "__");
        insta::with_settings!({
            snapshot_path => "../snapshots/render",
            prepend_module_to_snapshot => false,
            omit_expression => true,
        }, {
            insta::assert_snapshot!(name, text);
        });
    }
}

/// Engines disagree on where NULLs sort and on the time zone of a bare
/// timestamp literal: every rendered `ORDER BY` key says where NULLs go,
/// and `now` says UTC, in every dialect.
#[test]
fn order_and_now_do_not_depend_on_the_engine_or_its_time_zone() {
    let jobs = jobs(&render::Options::default());
    let mut orders = 0;
    for (path, text) in jobs.iter().filter(|(p, _)| p.ends_with(".sql")) {
        for order in text.split("ORDER BY ").skip(1) {
            // The keys run to the end of the line or the window's `)`.
            let keys = order.split(['\n', ')']).next().unwrap_or_default();
            for key in keys.split(", ") {
                orders += 1;
                assert!(
                    key.ends_with(" NULLS LAST"),
                    "{path}: `{key}` in ORDER BY {keys}"
                );
            }
        }
        // In a literal (the header comment names the placeholder too).
        for (at, _) in text.match_indices("'@ACCORD_NOW@") {
            let now = &text[at + "'@ACCORD_NOW@".len()..];
            assert!(
                now.starts_with("Z'") || now.starts_with("+00:00'") || now.starts_with(" +00:00'"),
                "{path}: now without UTC: {}",
                &now[..now.len().min(30)]
            );
        }
    }
    assert!(orders > 100, "the example project orders its rows");
}

/// Rows come in member order, the order of `audience/key` as text: an
/// integer key is sorted by its text in every dialect (`10` before `9`, as
/// among member keys), so the run takes the rows as they stream; a text
/// key is sorted as it is.
#[test]
fn an_integer_key_is_sorted_by_its_text_in_every_dialect() {
    // Accounts keyed by an integer (`accounts`), people by text (`full`).
    let plan = plans::plan_of("tests/state_projects/people", "dev");
    let (jobs, problems) = render::render(&plan, &render::Options::default());
    assert!(problems.is_empty(), "{problems:?}");
    let order = |dialect: &str, activation: &str| -> String {
        let text = jobs
            .get(&format!("sql/{dialect}/exports/{activation}.sql"))
            .unwrap_or_else(|| panic!("no {dialect} export of `{activation}`"));
        let tail = text.rsplit("ORDER BY ").next().expect("an ORDER BY");
        tail.lines().next().unwrap_or_default().to_string()
    };
    for (dialect, text) in [
        ("datafusion", "VARCHAR"),
        ("duckdb", "VARCHAR"),
        ("snowflake", "VARCHAR"),
        ("spark", "STRING"),
        ("bigquery", "STRING"),
    ] {
        assert_eq!(
            order(dialect, "accounts"),
            format!(
                "__audience || '/' ASC NULLS LAST, CAST(__account_key AS {text}) ASC NULLS LAST"
            ),
            "{dialect}"
        );
        assert_eq!(
            order(dialect, "full"),
            "__audience || '/' ASC NULLS LAST, __person_key ASC NULLS LAST, __account_key ASC NULLS LAST",
            "{dialect}"
        );
    }
}

#[test]
fn rendering_is_deterministic() {
    let a = jobs(&render::Options::default());
    let b = jobs(&render::Options::default());
    assert_eq!(a, b);
}

#[test]
fn a_user_template_overrides_the_built_in_one_by_name() {
    let mut templates = BTreeMap::new();
    templates.insert(
        "export.sql.tera".to_string(),
        "-- custom header for {{ activation }}\n{{ sql }}\n".to_string(),
    );
    let jobs = jobs(&render::Options {
        dialects: vec!["duckdb".into()],
        templates,
    });
    let export = &jobs["sql/duckdb/exports/icp_linkedin.sql"];
    assert!(
        export.starts_with("-- custom header for icp_linkedin\n"),
        "{export}"
    );
    assert!(jobs["sql/duckdb/audiences.sql"].starts_with("-- accord northwind"));
    assert!(
        !jobs.keys().any(|k| k.starts_with("sql/spark")),
        "only the asked dialect"
    );
}

#[test]
fn the_cli_writes_the_jobs() {
    let scratch = temp::dir("render-cli");
    let out = scratch.path().join("out");
    let status = Command::new(env!("CARGO_BIN_EXE_accord"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "render",
            "specs",
            "--env",
            "dev",
            "--today",
            "2026-11-28",
            "--dialect",
            "duckdb",
            "--out",
        ])
        .arg(&out)
        .output()
        .expect("accord runs");
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let expected = jobs(&render::Options {
        dialects: vec!["duckdb".into()],
        ..render::Options::default()
    });
    for (path, text) in &expected {
        let written = std::fs::read_to_string(out.join(path)).expect(path);
        assert_eq!(&written, text, "{path}");
    }
}

/// `accord explain account` reads the account query with the steps of each
/// composition as columns: the same lowering, so the same membership SQL,
/// plus the candidate flag, the rank position and value, the bucket and the
/// split value.
#[test]
fn the_explained_account_query_is_the_jobs_with_the_composition_steps() {
    let plan = plan();
    let model = render::query::Model::new(&plan);
    let d = render::dialect::by_name("datafusion").expect("the datafusion dialect");
    let job = render::query::accounts(&model, d.as_ref())
        .expect("lowers")
        .sql;
    let explained = render::query::accounts_explained(&model, d.as_ref())
        .expect("lowers")
        .sql;
    // Every membership column of the job, expression and all, is in the
    // explained query unchanged.
    let memberships: Vec<&str> = job
        .lines()
        .flat_map(|l| l.split(", "))
        .filter(|c| c.contains(") AS \"B2B_") || c.contains("ROW_NUMBER()"))
        .collect();
    assert!(!memberships.is_empty());
    for m in memberships {
        assert!(explained.contains(m), "{m}");
    }
    for (audience, columns) in [
        ("B2B_ABM_Top", vec!["candidate", "position", "rank_value"]),
        ("B2B_Webinar_Invite", vec!["candidate", "bucket"]),
        ("B2B_Engagement_Tiers", vec!["candidate", "split_value"]),
    ] {
        let steps = render::query::Steps::of(audience);
        for c in columns {
            let name = match c {
                "candidate" => &steps.candidate,
                "position" => &steps.position,
                "rank_value" => &steps.rank_value,
                "bucket" => &steps.bucket,
                _ => &steps.split_value,
            };
            assert!(
                explained.contains(&format!("r.\"{name}\"")),
                "{audience}: {name} is not selected"
            );
            if c != "candidate" && c != "bucket" {
                assert!(!job.contains(name.as_str()), "the job computes {name}");
            }
        }
    }
}

/// `accord explain person` reads the export's conditions as columns: the
/// same people filter, consent and mapped SQL as the export job.
#[test]
fn the_explained_export_has_the_exports_conditions_as_columns() {
    let plan = plan();
    let model = render::query::Model::new(&plan);
    let d = render::dialect::by_name("datafusion").expect("the datafusion dialect");
    let name = "abm_nurture_marketo";
    let activation = &plan.activations[name];
    let export = render::export::export_sql(&model, d.as_ref(), name, activation)
        .expect("lowers")
        .rows;
    let explained =
        render::export::explain_sql(&model, d.as_ref(), name, activation).expect("lowers");
    use render::export::ExplainColumns;
    for column in [
        ExplainColumns::MEMBER.to_string(),
        ExplainColumns::ROUTE.to_string(),
        ExplainColumns::PEOPLE.to_string(),
        ExplainColumns::excluded(0),
        ExplainColumns::consent(0),
    ] {
        assert!(explained.contains(&format!(" AS {column}")), "{column}");
    }
    // Each filter of the export is a column of the explanation.
    let wheres: Vec<&str> = export
        .lines()
        .filter_map(|l| l.trim().strip_prefix("AND "))
        .collect();
    assert!(!wheres.is_empty());
    for w in wheres {
        let condition = w.strip_prefix("NOT ").unwrap_or(w);
        assert!(explained.contains(condition), "{condition}");
    }
    // Nothing is filtered: the export's WHERE per audience is gone, the
    // person view's own are kept.
    assert_eq!(
        explained.matches("WHERE ").count(),
        export
            .split("\nSELECT ")
            .next()
            .unwrap_or_default()
            .matches("WHERE ")
            .count(),
        "{explained}"
    );
}
