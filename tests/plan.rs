//! `accord plan`: the plan of the example project (text and JSON snapshots in
//! `snapshots/plan/`), byte-identical output however the project is laid out
//! and wherever it runs, and the `--out` / `--check` lock.

#[path = "support/temp.rs"]
mod temp;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn accord(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_accord"))
        .args(args)
        .current_dir(root())
        .env("NO_COLOR", "1")
        .envs(env.iter().copied())
        .output()
        .expect("the accord binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn plan(dir: &str, format: &str, env: &[(&str, &str)]) -> Vec<u8> {
    let out = accord(
        &[
            "plan",
            dir,
            "--env",
            "prod",
            "--today",
            "2026-11-28",
            "--format",
            format,
        ],
        env,
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn the_example_plan_matches_its_snapshots() {
    for format in ["text", "json"] {
        let text = String::from_utf8(plan("specs", format, &[])).expect("utf-8");
        insta::with_settings!({
            snapshot_path => "../snapshots/plan",
            prepend_module_to_snapshot => false,
            omit_expression => true,
        }, {
            insta::assert_snapshot!(format!("specs_prod_{format}"), text);
        });
    }
}

/// Splits a spec file into its definitions: a top-level table with the
/// sub-tables that extend it (`[schema.a]`, `[schema.a.fields]`).
fn definitions(text: &str) -> Vec<String> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        let header = line
            .strip_prefix('[')
            .and_then(|l| l.split_once(']'))
            .map(|(h, _)| h.trim().to_string());
        match header {
            Some(h)
                if out
                    .last()
                    .is_none_or(|(top, _)| !h.starts_with(&format!("{top}."))) =>
            {
                out.push((h, format!("{line}\n")));
            }
            _ => match out.last_mut() {
                Some((_, body)) => {
                    body.push_str(line);
                    body.push('\n');
                }
                None => assert!(
                    line.trim().is_empty() || line.trim_start().starts_with('#'),
                    "a key outside any table: {line}"
                ),
            },
        }
    }
    out.into_iter().map(|(_, body)| body).collect()
}

fn spec_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable") {
        let path = entry.expect("entry").path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        // Hidden files (the editor's `.taplo.toml`) are not specs, as in the loader.
        if name.starts_with('.') {
            continue;
        }
        if path.is_dir() && !["data", "out"].contains(&name.as_str()) {
            spec_files(&path, out);
        } else if name.ends_with(".toml") && name != "accord.toml" {
            out.push(path);
        }
    }
}

#[test]
fn the_plan_is_byte_identical_whatever_the_file_layout_locale_and_time_zone() {
    let specs = root().join("specs");
    let copy = temp::dir("plan-layout");
    std::fs::copy(specs.join("accord.toml"), copy.path().join("accord.toml")).expect("copy");
    let mut files = Vec::new();
    spec_files(&specs, &mut files);
    files.sort();
    let mut all: Vec<String> = files
        .iter()
        .flat_map(|f| definitions(&std::fs::read_to_string(f).expect("readable")))
        .collect();
    assert!(all.len() > 40, "the example project has many definitions");
    // Reverse the definitions and deal them into differently named files in
    // other folders: every definition moves, and files merge.
    all.reverse();
    let targets = ["zz/last.toml", "aa/nested/first.toml", "middle.toml"];
    let mut texts = vec![String::new(); targets.len()];
    for (i, def) in all.iter().enumerate() {
        texts[i % targets.len()].push_str(def);
        texts[i % targets.len()].push('\n');
    }
    for (target, text) in targets.iter().zip(&texts) {
        let path = copy.path().join(target);
        std::fs::create_dir_all(path.parent().unwrap()).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }
    let copy_dir = copy.path().to_string_lossy().into_owned();
    for format in ["text", "json"] {
        let original = plan("specs", format, &[]);
        let moved = plan(
            &copy_dir,
            format,
            &[
                ("TZ", "Pacific/Chatham"),
                ("LC_ALL", "tr_TR.UTF-8"),
                ("LANG", "tr_TR.UTF-8"),
            ],
        );
        assert!(
            original == moved,
            "the {format} plan changed with the layout"
        );
    }
}

#[test]
fn plan_check_passes_on_the_committed_plan_and_fails_with_the_diff_otherwise() {
    let tmp = temp::dir("plan-lock");
    let lock = tmp.path().join("plan.json");
    let lock = lock.to_string_lossy().into_owned();
    let base = ["plan", "specs", "--env", "prod", "--today", "2026-11-28"];
    let out = accord(&[&base[..], &["--out", &lock]].concat(), &[]);
    assert_eq!(out.status.code(), Some(0));
    let written = std::fs::read_to_string(&lock).expect("written");
    assert!(written.ends_with("}\n"));
    assert_eq!(written.as_bytes(), plan("specs", "json", &[]).as_slice());

    let out = accord(&[&base[..], &["--check", &lock]].concat(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));

    // A committed plan without one mapping column: the check fails and shows it.
    let edited = written.replacen(
        "\"column\": \"companyDomain\"",
        "\"column\": \"companyWebsite\"",
        1,
    );
    assert_ne!(edited, written);
    std::fs::write(&lock, edited).expect("write");
    let out = accord(&[&base[..], &["--check", &lock]].concat(), &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("+ map companyDomain"),
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains("- map companyWebsite"),
        "{}",
        stdout(&out)
    );

    // A plan file of another format version is refused, not misread.
    std::fs::write(
        &lock,
        written.replacen("\"format_version\": 1", "\"format_version\": 2", 1),
    )
    .expect("write");
    let out = accord(&[&base[..], &["--check", &lock]].concat(), &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("format_version 2 is not supported"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn a_project_with_errors_has_no_plan() {
    let out = accord(
        &["plan", "tests/fixtures/P0104_marketo_field_not_declared"],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("P0104"));
}
