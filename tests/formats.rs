//! The machine-readable output formats (JSON Lines, SARIF 2.1.0, GitHub
//! workflow commands) for one project with problems in several files,
//! snapshotted in `snapshots/formats/`, plus the structural guarantees tools
//! rely on: every JSON line carries the documented keys, and the SARIF log has
//! the properties the 2.1.0 schema requires.

use std::path::{Path, PathBuf};

use accord::cli::output::{github, json, sarif};
use accord::compile::{self, Compiled, Options};

const FIXTURE: &str = "multiple_errors_across_files";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn compiled(name: &str) -> Compiled {
    compile::check(&fixture(name), &Options::default()).expect("fixture loads")
}

fn snapshot(name: &str, text: &str) {
    insta::with_settings!({
        snapshot_path => "../snapshots/formats",
        prepend_module_to_snapshot => false,
        omit_expression => true,
    }, {
        insta::assert_snapshot!(name, text);
    });
}

/// The tool version changes with every release; the snapshot should not.
fn without_tool_version(text: &str) -> String {
    text.replace(
        &format!("\"version\": \"{}\"", env!("CARGO_PKG_VERSION")),
        "\"version\": \"[accord version]\"",
    )
}

#[test]
fn json_lines_carry_every_documented_key() {
    let c = compiled(FIXTURE);
    assert!(
        c.diagnostics.len() >= 5,
        "the fixture has problems in several files"
    );
    let text = json(&c.diagnostics, &c.sources);
    assert_eq!(
        text.lines().count(),
        c.diagnostics.len(),
        "one line per diagnostic"
    );
    for line in text.lines() {
        let value: serde_json::Value = serde_json::from_str(line).expect("each line is JSON");
        for key in [
            "code",
            "severity",
            "message",
            "file",
            "line",
            "column",
            "byte_start",
            "byte_end",
            "help",
        ] {
            assert!(value.get(key).is_some(), "json line lacks `{key}`: {line}");
        }
        let code = value["code"].as_str().unwrap();
        assert!(
            accord::diag::codes::lookup(code).is_some(),
            "unregistered code {code}"
        );
        assert!(matches!(
            value["severity"].as_str(),
            Some("error" | "warning")
        ));
        assert!(value["line"].as_u64().unwrap() >= 1 && value["column"].as_u64().unwrap() >= 1);
        assert!(value["byte_start"].as_u64() <= value["byte_end"].as_u64());
    }
    snapshot("json", &text);
}

#[test]
fn sarif_is_a_valid_2_1_0_log() {
    let c = compiled(FIXTURE);
    let text = sarif(&c.diagnostics, &c.sources);
    let log: serde_json::Value = serde_json::from_str(&text).expect("sarif is JSON");
    assert_eq!(log["version"], "2.1.0");
    assert!(log["$schema"].as_str().unwrap().contains("sarif-2.1.0"));
    let runs = log["runs"].as_array().expect("runs is an array");
    assert_eq!(runs.len(), 1);
    let run = &runs[0];
    assert_eq!(run["tool"]["driver"]["name"], "accord");
    let rules = run["tool"]["driver"]["rules"].as_array().expect("rules");
    for rule in rules {
        assert!(rule["id"].is_string(), "reportingDescriptor.id is required");
    }
    let results = run["results"].as_array().expect("results");
    assert_eq!(results.len(), c.diagnostics.len());
    for result in results {
        assert!(
            result["message"]["text"].is_string(),
            "result.message is required"
        );
        assert!(matches!(
            result["level"].as_str(),
            Some("none" | "note" | "warning" | "error")
        ));
        let index = result["ruleIndex"].as_u64().expect("ruleIndex") as usize;
        assert_eq!(
            rules[index]["id"], result["ruleId"],
            "ruleIndex points at ruleId"
        );
        let locations = result["locations"].as_array().unwrap();
        let related = result["relatedLocations"].as_array().unwrap();
        for location in locations.iter().chain(related) {
            let physical = &location["physicalLocation"];
            assert!(physical["artifactLocation"]["uri"].is_string());
            let region = &physical["region"];
            for key in ["startLine", "startColumn", "endLine", "endColumn"] {
                assert!(region[key].as_u64().unwrap() >= 1, "{key} >= 1: {region}");
            }
            let start = (region["startLine"].as_u64(), region["startColumn"].as_u64());
            let end = (region["endLine"].as_u64(), region["endColumn"].as_u64());
            assert!(start <= end, "region ends before it starts: {region}");
        }
        for r in related {
            assert!(
                r["id"].as_i64().unwrap() >= -1,
                "location.id is an integer >= -1"
            );
        }
    }
    snapshot("sarif", &without_tool_version(&text));
}

#[test]
fn sarif_of_a_clean_project_has_no_results() {
    let c = compiled("valid_minimal");
    let log: serde_json::Value = serde_json::from_str(&sarif(&c.diagnostics, &c.sources)).unwrap();
    assert_eq!(log["version"], "2.1.0");
    assert_eq!(log["runs"][0]["results"].as_array().map(Vec::len), Some(0));
}

#[test]
fn github_annotations_are_one_line_each() {
    let c = compiled(FIXTURE);
    let text = github(&c.diagnostics, &c.sources);
    assert_eq!(
        text.lines().count(),
        c.diagnostics.len(),
        "newlines in messages are escaped"
    );
    for line in text.lines() {
        assert!(
            line.starts_with("::error file=") || line.starts_with("::warning file="),
            "{line}"
        );
    }
    snapshot("github", &text);
}

#[test]
fn a_literal_secret_is_printed_in_no_format() {
    for (fixture, secret) in [
        (
            "A0110_literal_token",
            "AQXdSP_W41_UPs5ioT_t8HESyODB4FqbkJ8LrV_5mff4gPODzOYR",
        ),
        ("A0110_literal_client_secret", "9f8e7d6c5b4a"),
        ("multiple_errors_across_files", "AQXdSP_W41_UPs5ioT"),
    ] {
        let c = compiled(fixture);
        assert!(
            c.diagnostics.iter().any(|d| d.code.as_str() == "A0110"),
            "{fixture} reports the literal secret"
        );
        let style = accord::cli::HumanStyle {
            color: false,
            width: 100,
        };
        for (format, text) in [
            (
                "human",
                accord::cli::output::human(&c.diagnostics, &c.sources, style),
            ),
            ("json", json(&c.diagnostics, &c.sources)),
            ("sarif", sarif(&c.diagnostics, &c.sources)),
            ("github", github(&c.diagnostics, &c.sources)),
        ] {
            assert!(
                !text.contains(secret),
                "{fixture}: the {format} format prints the secret:\n{text}"
            );
        }
    }
}

#[test]
fn a_literal_secret_is_hidden_in_other_diagnostics_excerpts_too() {
    // The line after the secret has its own problem: its excerpt shows the
    // secret's line as context.
    let project = "[project]\nname = \"x\"\nformat = 1\n";
    let spec = "[destination.linkedin_ads]\ntype = \"linkedin_companies\"\n\
                token = \"s3cr3t-t0ken-value\"\nad_acount = \"urn:li:sponsoredAccount:5\"\n";
    let sources = accord::source::SourceSet::new(vec![
        accord::source::SourceFile::new("accord.toml", project),
        accord::source::SourceFile::new("destinations.toml", spec),
    ]);
    let c = compile::check_sources(sources, &Options::default());
    let codes: Vec<&str> = c.diagnostics.iter().map(|d| d.code.as_str()).collect();
    assert!(
        codes.contains(&"A0110") && codes.contains(&"A0003"),
        "{codes:?}"
    );
    let style = accord::cli::HumanStyle {
        color: false,
        width: 100,
    };
    let human = accord::cli::output::human(&c.diagnostics, &c.sources, style);
    assert!(!human.contains("s3cr3t"), "{human}");
    assert!(human.contains("token = \"******************\""), "{human}");
}
