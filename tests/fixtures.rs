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

#[path = "support/folders.rs"]
mod folders;

fn fixture_dirs() -> Vec<PathBuf> {
    folders::fixture_folders("fixtures")
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

/// The definition a byte offset of a spec file belongs to: the kind and
/// name of the last `[KIND.NAME...]` header at or before it. `None` outside
/// any definition (`[project]`, `[guardrails]`, before the first header).
fn owner(text: &str, offset: usize) -> Option<(String, String)> {
    let mut found = None;
    let mut start = 0;
    for line in text.split_inclusive('\n') {
        if start > offset {
            break;
        }
        let trimmed = line.trim();
        if trimmed.starts_with('[') && !trimmed.starts_with("[[") {
            let header = trimmed.trim_start_matches('[');
            let header = header.split(']').next().unwrap_or("");
            found = definition_of(header);
        }
        start += line.len();
    }
    found
}

/// `audience."B2B X".compose` -> ("audience", "B2B X"); the name of a
/// computed attribute is its third part.
fn definition_of(header: &str) -> Option<(String, String)> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut quote = None;
    for c in header.chars() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '.') => parts.push(std::mem::take(&mut current).trim().to_string()),
            _ => current.push(c),
        }
    }
    parts.push(current.trim().to_string());
    let kind = parts.first()?.clone();
    let index = match kind.as_str() {
        "computed" => 2,
        k if accord::syntax::KINDS.contains(&k) || k == "environment" => 1,
        _ => return None,
    };
    Some((kind, parts.get(index)?.clone()))
}

/// Codes whose diagnostics are about a file or a table, not a definition.
const NOT_ABOUT_A_DEFINITION: &[&str] = &[
    "A0001", // the file does not parse
    "A0002", // a table that is no kind
    "A0008", // the project file as a whole
    "A0009", // a table in the wrong file
    "A0013", // a link, not a definition
    "P0001", // project-wide guardrails, counted over every definition
    "P0002", "P0003",
    // A dataflow's violation sits at the field whose label flows; the
    // message names the activation.
    "G0001", "G0002",
];

#[test]
fn every_message_names_its_definition() {
    let mut missing = Vec::new();
    for dir in fixture_dirs() {
        let Ok(compiled) = compile::check(&dir, &options(&dir)) else {
            continue;
        };
        for d in &compiled.diagnostics {
            if NOT_ABOUT_A_DEFINITION.contains(&d.code.as_str()) {
                continue;
            }
            let file = compiled.sources.file(d.primary.span.source);
            let Some((kind, def)) = owner(&file.text, d.primary.span.start as usize) else {
                continue;
            };
            // A computed attribute is named with its entity: `account.score`.
            let named = d.message.contains(&format!("`{def}`"))
                || (kind == "computed" && d.message.contains(&format!(".{def}`")));
            if def.is_empty() || named {
                continue;
            }
            missing.push(format!(
                "{} {} ({kind} `{def}`): {}",
                name(&dir),
                d.code.as_str(),
                d.message
            ));
        }
    }
    assert!(
        missing.is_empty(),
        "messages that do not name their definition:\n{}",
        missing.join("\n")
    );
}
