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
