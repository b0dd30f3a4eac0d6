//! Run-time governance takes its verdicts from the plan, so `check`, `plan`
//! and `run` agree: an advisory violation is reported and never blocks; a
//! violation that blocks stops the whole activation (`blocked`), nothing
//! delivered.
#![cfg(feature = "engine")]

use std::path::Path;
use std::process::Command;

#[path = "support/project.rs"]
mod project;
#[path = "support/temp.rs"]
mod temp;

/// The run fixture whose activation sends a third-party field to an
/// analytics destination, with its policy set to `enforcement`.
fn project_with_policy(dir: &Path, enforcement: &str) {
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/run_fixtures/ok_advisory_policy_in_prod");
    for file in ["accord.toml", "specs.toml", "data/accounts.csv"] {
        let to = dir.join(file);
        std::fs::create_dir_all(to.parent().expect("a parent")).expect("mkdir");
        let text = std::fs::read_to_string(fixture.join(file)).expect("read the fixture");
        let text = text.replace(
            "enforcement = \"advisory\"",
            &format!("enforcement = \"{enforcement}\""),
        );
        std::fs::write(to, text).expect("write");
    }
}

/// Runs a plan compiled for `dev` (where violations never stop `check`) as
/// if its environment blocked: the run must stop what the verdicts stop,
/// however the plan reached it.
fn run_as_blocking(dir: &Path) -> accord::run::RunReport {
    let now = accord::time::parse_timestamp("2026-11-28T12:00:00Z").expect("a time");
    let compiled = accord::compile::check(
        dir,
        &accord::compile::Options {
            environment: Some("dev".into()),
            ..Default::default()
        },
    )
    .expect("the project loads");
    let mut plan = accord::compile::plan(&compiled).expect("no errors in dev");
    plan.enforcement = Some(accord::plan::EnvEnforcement::Block);
    let (jobs, problems) = accord::render::render(
        &plan,
        &accord::render::Options {
            dialects: vec!["datafusion".into()],
            ..Default::default()
        },
    );
    assert!(problems.is_empty());
    accord::run::run(
        &plan,
        &jobs,
        dir,
        &accord::run::Options {
            now,
            ..Default::default()
        },
    )
    .expect("the run completes")
}

#[test]
fn a_blocking_violation_blocks_the_activation_and_an_advisory_one_does_not() {
    let scratch = temp::dir("run-governance");
    for (enforcement, status) in [
        ("hard", "blocked"),
        ("soft", "blocked"),
        ("advisory", "delivered"),
    ] {
        let dir = scratch.path().join(enforcement);
        project_with_policy(&dir, enforcement);
        let report = run_as_blocking(&dir);
        let a = &report.activations["large_files"];
        assert_eq!(a.status, status, "{enforcement}: {a:?}");
        if status == "blocked" {
            assert_eq!((a.created, a.removed, a.files), (0, 0, 0), "{a:?}");
            assert_eq!(a.excluded_policy, 3, "{a:?}");
            assert!(
                !dir.join("out").exists(),
                "{enforcement}: nothing is delivered"
            );
        } else {
            assert_eq!((a.created, a.excluded_policy), (3, 0), "{a:?}");
            assert!(
                a.warnings
                    .iter()
                    .any(|w| w.contains("advisory: reported, never blocks")),
                "{a:?}"
            );
        }
    }
}

/// The example project in prod: `check --env prod` passes with advisory
/// warnings on the two Marketo flows that read vendor data, and `run --env
/// prod` does not refuse them.
#[test]
fn the_example_project_in_prod_runs_its_advisory_violations() {
    let scratch = project::scratch("run-governance-prod");
    let dir = scratch.path();
    let out = Command::new(env!("CARGO_BIN_EXE_accord"))
        .arg("run")
        .arg(dir)
        .args([
            "--env",
            "prod",
            "--now",
            project::NOW,
            "--preview",
            "--format",
            "json",
        ])
        .output()
        .expect("accord runs");
    drop(scratch);
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("a JSON report");
    for name in ["intent_marketo", "displacement_marketo"] {
        let a = &report["activations"][name];
        assert_eq!(a["excluded_policy"], 0, "{name}: {a}");
        let warnings = a["warnings"].as_array().expect("warnings");
        assert!(
            warnings
                .iter()
                .all(|w| !w.as_str().unwrap_or("").contains("not activated")),
            "{name}: {a}"
        );
        assert!(
            warnings.iter().any(|w| w
                .as_str()
                .unwrap_or("")
                .contains("review_third_party_in_email (advisory: reported, never blocks)")),
            "{name}: {a}"
        );
    }
}
