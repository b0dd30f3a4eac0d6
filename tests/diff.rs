//! `accord diff`: every pair `tests/diff/NAME/{old,new}/` (two spec
//! projects) is planned for `prod` and diffed; text and JSON are
//! snapshotted in `snapshots/diff/`. Plus the exit codes, two plan files,
//! and `--base REV` against a real git repository.

#[path = "support/cli.rs"]
mod cli;
#[path = "support/git.rs"]
mod git;
#[path = "support/plans.rs"]
mod plans;
#[path = "support/temp.rs"]
mod temp;
use git::git;
use plans::root;

use std::path::{Path, PathBuf};
use std::process::Output;

fn plan_of(dir: &Path) -> accord::plan::Plan {
    plans::plan_of(dir, "prod")
}

fn accord(dir: &Path, args: &[&str]) -> Output {
    cli::accord_in(dir, args)
}

#[test]
fn diff_pairs_match_their_snapshots() {
    let mut pairs: Vec<PathBuf> = std::fs::read_dir(root().join("tests/diff"))
        .expect("tests/diff exists")
        .map(|e| e.expect("entry").path())
        .collect();
    pairs.sort();
    assert!(!pairs.is_empty());
    for pair in pairs {
        let name = pair.file_name().unwrap().to_string_lossy().into_owned();
        let d = accord::diff::diff(&plan_of(&pair.join("old")), &plan_of(&pair.join("new")));
        assert_eq!(d.is_empty(), name == "no_change", "{name}");
        let json = serde_json::to_string_pretty(&d).expect("serialises");
        insta::with_settings!({
            snapshot_path => "../snapshots/diff",
            prepend_module_to_snapshot => false,
            omit_expression => true,
        }, {
            insta::assert_snapshot!(format!("{name}_text"), accord::diff::render(&d));
            insta::assert_snapshot!(format!("{name}_json"), json);
            insta::assert_snapshot!(
                format!("{name}_markdown"),
                accord::diff::markdown::render(&d)
            );
        });
    }
}

fn copy_project(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("readable") {
        let path = entry.expect("entry").path();
        std::fs::copy(&path, to.join(path.file_name().unwrap())).expect("copy");
    }
}

#[test]
fn two_plan_files_diff_with_terraform_exit_codes() {
    let tmp = temp::dir("diff-files");
    let pair = root().join("tests/diff/activation_changes");
    let write = |name: &str, dir: &Path| {
        let path = tmp.path().join(name);
        std::fs::write(&path, accord::plan::to_json(&plan_of(dir))).expect("write");
        path.to_string_lossy().into_owned()
    };
    let old = write("old.json", &pair.join("old"));
    let new = write("new.json", &pair.join("new"));
    let out = accord(tmp.path(), &["diff", &old, &new]);
    assert_eq!(out.status.code(), Some(2));
    let out = accord(tmp.path(), &["diff", &old, &old]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "no changes\n");
    let out = accord(tmp.path(), &["diff", &old, &new, "--format", "json"]);
    assert_eq!(out.status.code(), Some(2));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(json["activations_removed"][0], "fintech_files");
    let out = accord(tmp.path(), &["diff", &old, "no-such-plan.json"]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn diff_base_compares_a_git_revision_with_the_working_tree() {
    let tmp = temp::dir("diff-git");
    let pair = root().join("tests/diff/activation_changes");
    let project = tmp.path().join("marketing/specs");
    git(tmp.path(), &["init", "-q"]);
    copy_project(&pair.join("old"), &project);
    // An untracked file at the revision must not count: only tracked files do.
    git(tmp.path(), &["add", "-A"]);
    git(tmp.path(), &["commit", "-q", "-m", "old"]);
    let args = [
        "diff",
        "marketing/specs",
        "--base",
        "HEAD",
        "--env",
        "prod",
        "--today",
        "2026-11-28",
    ];
    let out = accord(tmp.path(), &args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    copy_project(&pair.join("new"), &project);
    let out = accord(tmp.path(), &args);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains("- activation fintech_files"), "{text}");
    assert!(text.contains("+ activation enterprise_files"), "{text}");

    // From inside the project folder, too.
    let out = accord(
        &project,
        &[
            "diff",
            "--base",
            "HEAD",
            "--env",
            "prod",
            "--today",
            "2026-11-28",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = accord(
        tmp.path(),
        &[
            "diff",
            "marketing/specs",
            "--base",
            "no-such-rev",
            "--env",
            "prod",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
}
