//! Data-driven tests: every folder in `tests/fixtures/` is a spec project;
//! its `accord check` output (human format, no colour, 100 columns) is
//! snapshotted in `snapshots/fixtures/NAME.snap`.
//!
//! Fixtures are named after what they show: a folder starting with a code
//! (`A0103_unknown_label`) must report that code, and every registered code
//! must have at least one such folder. An optional `fixture.args` file holds
//! extra `check` arguments such as `--env prod`.
//!
//! A `fixture.fixme` file marks a fixture whose code the compiler does not
//! report yet (its text says why). The snapshot records today's output, and
//! the test fails once the code *is* reported, so whoever fixes the compiler
//! deletes the marker and the fixture becomes a regular one.

use std::path::{Path, PathBuf};

use accord::cli::HumanStyle;
use accord::cli::output;
use accord::compile::{self, Options};

fn fixture_dirs() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("tests/fixtures exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

fn name(dir: &Path) -> String {
    dir.file_name().unwrap().to_string_lossy().into_owned()
}

fn options(dir: &Path) -> Options {
    let mut options = Options::default();
    let args = std::fs::read_to_string(dir.join("fixture.args")).unwrap_or_default();
    let mut words = args.split_whitespace();
    while let Some(word) = words.next() {
        match word {
            "--env" => options.environment = words.next().map(str::to_string),
            "--today" => {
                options.today = words.next().and_then(compile::parse_date);
                assert!(
                    options.today.is_some(),
                    "{}: --today needs YYYY-MM-DD",
                    dir.display()
                );
            }
            other => panic!("{}: unknown fixture argument {other}", dir.display()),
        }
    }
    options
}

/// What `accord check` prints for a fixture.
fn check_output(dir: &Path) -> (String, Vec<String>) {
    match compile::check(dir, &options(dir)) {
        Err(e) => (format!("error: {e}\n"), Vec::new()),
        Ok(compiled) => {
            let style = HumanStyle {
                color: false,
                width: 100,
            };
            let mut text = output::human(&compiled.diagnostics, &compiled.sources, style);
            text.push_str(&output::summary(&compiled.diagnostics));
            text.push('\n');
            let mut codes: Vec<String> = compiled
                .diagnostics
                .iter()
                .map(|d| d.code.as_str().to_string())
                .collect();
            // `fixture.render`: the fixture is about `accord render`, which
            // runs on a clean check (with the fixture's `templates/`).
            if dir.join("fixture.render").is_file()
                && let Some(plan) = compile::plan(&compiled)
            {
                let (_, problems) = accord::render::render(
                    &plan,
                    &accord::render::Options {
                        templates: fixture_templates(dir),
                        ..accord::render::Options::default()
                    },
                );
                text.push_str("render:\n");
                for p in problems {
                    text.push_str(&format!("error[{}]: {}\n", p.code.as_str(), p.message));
                    if let Some(help) = p.help {
                        text.push_str(&format!("  = help: {help}\n"));
                    }
                    codes.push(p.code.as_str().to_string());
                }
            }
            (text, codes)
        }
    }
}

/// The fixture's `templates/*.tera`, by file name.
fn fixture_templates(dir: &Path) -> std::collections::BTreeMap<String, String> {
    let Ok(entries) = std::fs::read_dir(dir.join("templates")) else {
        return Default::default();
    };
    entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "tera"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&p).unwrap())
        })
        .collect()
}

#[test]
fn fixtures_match_their_snapshots() {
    for dir in fixture_dirs() {
        let name = name(&dir);
        let (text, codes) = check_output(&dir);
        let fixme = dir.join("fixture.fixme").is_file();
        if let Some(code) = name
            .split('_')
            .next()
            .filter(|c| accord::diag::codes::lookup(c).is_some())
        {
            let reported = codes.iter().any(|c| c == code);
            if fixme {
                assert!(
                    !reported,
                    "fixture {name} now reports {code}: delete its fixture.fixme"
                );
            } else {
                assert!(reported, "fixture {name} must report {code}, got {codes:?}");
            }
        }
        if name.starts_with("valid_") {
            assert!(
                codes.is_empty(),
                "fixture {name} must check clean, got {codes:?}"
            );
        }
        insta::with_settings!({
            snapshot_path => "../snapshots/fixtures",
            prepend_module_to_snapshot => false,
            omit_expression => true,
        }, {
            insta::assert_snapshot!(name, text);
        });
    }
}

#[test]
fn every_code_has_a_fixture() {
    let names: Vec<String> = fixture_dirs().iter().map(|d| name(d)).collect();
    // Run-time codes (`R`) have their fixtures in tests/run_fixtures.
    let missing: Vec<&str> = accord::diag::codes::all()
        .map(|c| c.code)
        .filter(|code| !code.starts_with('R'))
        .filter(|code| !names.iter().any(|n| n.starts_with(&format!("{code}_"))))
        .collect();
    assert!(
        missing.is_empty(),
        "codes without a fixture in tests/fixtures: {missing:?}"
    );
}
