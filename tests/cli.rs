//! The binary's contract: exit codes and where output goes, for each command.
//! 0 clean (warnings allowed), 1 errors, 2 usage or I/O errors.

use std::path::Path;
use std::process::{Command, Output};

#[path = "support/temp.rs"]
mod temp;

fn accord(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_accord"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("NO_COLOR", "1")
        .output()
        .expect("the accord binary runs")
}

fn code(output: &Output) -> i32 {
    output.status.code().expect("exited normally")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn the_example_project_checks_clean_in_dev() {
    // The date is pinned: the example's waiver expires on 2027-03-31 by
    // design, and this test must not start failing on that day.
    let out = accord(&["check", "specs", "--env", "dev", "--today", "2026-11-28"]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    assert!(stdout(&out).contains("0 errors"));
}

#[test]
fn errors_exit_1_in_every_format() {
    let dir = "tests/fixtures/A0105_activation_of_unknown_audience";
    assert!(Path::new(env!("CARGO_MANIFEST_DIR")).join(dir).is_dir());
    for format in ["human", "json", "sarif", "github"] {
        let out = accord(&["check", dir, "--format", format]);
        assert_eq!(code(&out), 1, "format {format}");
        assert!(
            stdout(&out).contains("A0105"),
            "format {format}: {}",
            stdout(&out)
        );
    }
}

/// Every format names files from the folder the command runs in (here the
/// repository's root), so GitHub annotations and SARIF results attach to
/// the file; `--path-base` names them from another folder.
#[test]
fn diagnostics_name_files_from_the_current_folder() {
    let dir = "tests/fixtures/A0105_activation_of_unknown_audience";
    let file = format!("{dir}/accord.toml");
    for format in ["human", "json", "sarif", "github"] {
        let out = accord(&["check", dir, "--format", format]);
        assert!(
            stdout(&out).contains(&file),
            "format {format}: {}",
            stdout(&out)
        );
    }
    let out = accord(&["check", dir, "--format", "github", "--path-base", "tests"]);
    assert!(
        stdout(&out).contains("file=fixtures/A0105_activation_of_unknown_audience/accord.toml,"),
        "{}",
        stdout(&out)
    );
    let out = accord(&["check", dir, "--format", "github", "--path-base", dir]);
    assert!(
        stdout(&out).contains("file=accord.toml,"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn a_missing_folder_is_a_usage_error() {
    let out = accord(&["check", "no/such/folder"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("is not a folder"), "{}", stderr(&out));
}

#[test]
fn a_folder_without_accord_toml_is_a_usage_error() {
    let out = accord(&["check", "src"]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("has no accord.toml"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn an_unknown_environment_is_a_usage_error() {
    let out = accord(&["check", "specs", "--env", "staging"]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("unknown environment `staging`"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_bad_flag_is_a_usage_error() {
    let out = accord(&["check", "specs", "--format", "xml"]);
    assert_eq!(code(&out), 2);
}

#[test]
fn explain_prints_the_page_of_every_code() {
    for info in accord::diag::codes::all() {
        let out = accord(&["explain", info.code]);
        assert_eq!(code(&out), 0, "{}", info.code);
        assert!(stdout(&out).contains("## What it does"), "{}", info.code);
    }
    let out = accord(&["explain", "A9999"]);
    assert_eq!(code(&out), 2);
    let out = accord(&["explain", "codes"]);
    assert_eq!(code(&out), 0);
    assert!(stdout(&out).contains("A0001"));
}

#[test]
fn destinations_lists_the_catalog_and_shows_one_type() {
    let out = accord(&["destinations"]);
    assert_eq!(code(&out), 0);
    assert!(stdout(&out).contains("linkedin_companies"));
    let out = accord(&["destinations", "marketo_engage", "--format", "json"]);
    assert_eq!(code(&out), 0);
    let value: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
    assert_eq!(value["name"], "marketo_engage");
    let out = accord(&["destinations", "linkedin"]);
    assert_eq!(code(&out), 2);
}

#[test]
fn a_blocking_environment_fails_on_an_expired_waiver() {
    let ok = accord(&["check", "specs", "--env", "prod", "--today", "2026-11-28"]);
    assert_eq!(code(&ok), 0, "{}", stdout(&ok));
    let lapsed = accord(&["check", "specs", "--env", "prod", "--today", "2027-04-01"]);
    assert_eq!(code(&lapsed), 1, "{}", stdout(&lapsed));
    assert!(stdout(&lapsed).contains("G0007"), "{}", stdout(&lapsed));
    let bad = accord(&["check", "specs", "--today", "next tuesday"]);
    assert_eq!(code(&bad), 2);
    assert!(stderr(&bad).contains("--today"), "{}", stderr(&bad));
}

#[test]
fn explain_activation_prints_verdicts() {
    let out = accord(&[
        "explain",
        "activation",
        "partner_contoso_s3",
        "specs",
        "--env",
        "prod",
        "--today",
        "2026-11-28",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).contains("waived by `contoso_cosell_fy2027`"),
        "{}",
        stdout(&out)
    );
    let json = accord(&[
        "explain",
        "activation",
        "icp_linkedin",
        "specs",
        "--format",
        "json",
    ]);
    assert_eq!(code(&json), 0, "{}", stderr(&json));
    let value: serde_json::Value = serde_json::from_str(&stdout(&json)).expect("json");
    assert_eq!(value["destination"], "linkedin_ads");
    let unknown = accord(&["explain", "activation", "partner_contoso", "specs"]);
    assert_eq!(code(&unknown), 2);
    assert!(
        stderr(&unknown).contains("did you mean `partner_contoso_s3`?"),
        "{}",
        stderr(&unknown)
    );
}

/// Runs accord with stdout a pipe whose reading end is already closed, as
/// when `accord ... | head` has read all it wants: every write fails with
/// EPIPE, deterministically.
fn accord_into_closed_pipe(args: &[&str]) -> Output {
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    Command::new(env!("CARGO_BIN_EXE_accord"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("NO_COLOR", "1")
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .expect("the accord binary runs")
}

#[test]
fn a_closed_pipe_ends_every_command_quietly() {
    for (args, expected) in [
        (&["explain", "G0001"][..], 0),
        (&["explain", "codes"][..], 0),
        (&["destinations"][..], 0),
        (
            &["check", "specs", "--env", "dev", "--today", "2026-11-28"][..],
            0,
        ),
        (
            &["plan", "specs", "--env", "dev", "--today", "2026-11-28"][..],
            0,
        ),
        (
            &[
                "check",
                "tests/fixtures/A0105_activation_of_unknown_audience",
            ][..],
            1,
        ),
    ] {
        let out = accord_into_closed_pipe(args);
        assert_eq!(
            out.status.code(),
            Some(expected),
            "{args:?}: {}",
            stderr(&out)
        );
        assert_eq!(stderr(&out), "", "{args:?} says nothing about the pipe");
    }
}

#[test]
fn a_malformed_accord_toml_shows_its_parse_error_with_an_environment() {
    let scratch = temp::dir("cli-malformed");
    let dir = scratch.path();
    std::fs::write(
        dir.join("accord.toml"),
        "[project]\nname = \"x\"\nformat = 1\n[environment.dev\nenforcement = \"warn\"\n",
    )
    .unwrap();
    let out = accord(&["check", dir.to_str().unwrap(), "--env", "dev"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(stdout(&out).contains("A0001"), "{}", stdout(&out));
    assert!(
        !stderr(&out).contains("unknown environment"),
        "{}",
        stderr(&out)
    );
}
