//! `accord explain account` and `accord explain person`: the interpreter's
//! account of one account's or person's membership next to the engine's
//! verdict, a composition's rank position and split bucket, and why a person
//! is or is not exported, on the sample data and on the small project in
//! `tests/explain_projects/people` (a tie at a rank cutoff, a split, a person
//! audience, consent, identities that are missing or do not normalise).
//! Every person's export explanation is checked against a real run.
#![cfg(feature = "engine")]

#[path = "support/project.rs"]
mod project;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use serde_json::Value;
use sha2::{Digest, Sha256};

const NOW: &str = "2026-11-28T12:00:00Z";
/// The small project, relative to the repository.
const PEOPLE: &str = "tests/explain_projects/people";

/// `accord explain WORDS... --now NOW ARGS...` from the repository root:
/// the exit code and stdout then stderr.
fn explain(words: &[&str], args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_accord"))
        .arg("explain")
        .args(words)
        .args(args)
        .args(["--now", NOW])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("NO_COLOR", "1")
        .output()
        .expect("the accord binary runs");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

/// A successful explanation's text.
fn explained(words: &[&str], args: &[&str]) -> String {
    let (code, text) = explain(words, args);
    assert_eq!(code, 0, "accord explain {words:?} {args:?}:\n{text}");
    text
}

fn snapshot(name: &str, text: &str) {
    insta::with_settings!({
        snapshot_path => "../snapshots/run_explain",
        prepend_module_to_snapshot => false,
        omit_expression => true,
    }, {
        insta::assert_snapshot!(name, text);
    });
}

#[test]
fn an_account_outside_an_audience_shows_which_conditions_failed() {
    let text = explained(
        &["account", "ACC-000001", "specs"],
        &["--audience", "B2B_ICP_Enterprise"],
    );
    assert!(
        text.contains("account ACC-000001 is OUT of B2B_ICP_Enterprise"),
        "{text}"
    );
    assert!(
        text.contains("account.employees >= 1000  => false"),
        "{text}"
    );
    assert!(text.contains("account.people.exists("), "{text}");
}

#[test]
fn an_unknown_account_or_audience_is_a_clear_error() {
    let (code, text) = explain(
        &["account", "NO-SUCH-ACCOUNT", "specs"],
        &["--audience", "B2B_ICP_Enterprise"],
    );
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("no account `NO-SUCH-ACCOUNT`"), "{text}");
    let (code, text) = explain(
        &["account", "ACC-000001", "specs"],
        &["--audience", "B2B_No_Such_Audience"],
    );
    assert_eq!(code, 2, "{text}");
}

/// A3 and A4 tie at the cutoff of B2B_Top3 (limit 3): A3, the smaller key,
/// is just inside, A4 just outside; A5, a customer, is no candidate.
#[test]
fn a_ranked_composition_shows_the_position_and_the_cutoff() {
    let mut text = String::new();
    for account in ["A3", "A4", "A5"] {
        text += &explained(&["account", account, PEOPLE], &["--audience", "B2B_Top3"]);
    }
    assert!(
        text.contains("position 3 of 5 candidates; the audience keeps the top 3  => kept"),
        "{text}"
    );
    assert!(
        text.contains("position 4 of 5 candidates; the audience keeps the top 3  => cut"),
        "{text}"
    );
    snapshot("ranked_composition", &text);
}

/// The position counts every candidate, as the engine ranks them: the
/// JSON's position and candidates for each account of the ranked
/// composition give each candidate a distinct place 1..=n, and exactly the
/// top `limit` are members.
#[test]
fn rank_positions_are_a_permutation_of_the_candidates() {
    let mut positions = BTreeSet::new();
    let mut members = 0;
    for account in ["A1", "A2", "A3", "A4", "A5", "A6", "A7"] {
        let (code, text) = explain(
            &["account", account, PEOPLE],
            &["--audience", "B2B_Top3", "--format", "json"],
        );
        assert_eq!(code, 0, "{text}");
        let json: Value = serde_json::from_str(&text).expect("JSON");
        let rank = &json["rank"];
        assert_eq!(rank["candidates"], 5, "{json}");
        if let Some(p) = rank["position"].as_u64() {
            assert!(positions.insert(p), "position {p} twice");
            assert_eq!(json["member"], p <= 3, "{json}");
        } else {
            assert_eq!(json["member"], false, "{json}");
        }
        members += usize::from(json["member"] == true);
    }
    assert_eq!(positions, (1..=5).collect());
    assert_eq!(members, 3);
}

/// The bucket is sha256(seed + ":" + key)'s first 8 hex digits mod 100,
/// computed here independently of accord.
#[test]
fn a_split_part_shows_the_bucket_and_the_seed() {
    let text = explained(
        &["account", "A1", PEOPLE],
        &["--audience", "B2B_Holdout.control"],
    );
    let digest = Sha256::digest(b"holdout-2026:A1");
    let bucket = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]) % 100;
    assert!(text.contains(&format!("bucket {bucket}")), "{text}");
    let (code, json) = explain(
        &["account", "A6", PEOPLE],
        &["--audience", "B2B_Holdout.test", "--format", "json"],
    );
    assert_eq!(code, 0, "{json}");
    let json: Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(
        json["split"]["candidate"], false,
        "A6 is not engaged: {json}"
    );
    assert_eq!(json["split"]["seed"], "holdout-2026");
    snapshot("split_part", &text);
}

#[test]
fn the_example_projects_split_and_rank() {
    let mut text = explained(
        &["account", "ACC-000001", "specs"],
        &["--audience", "B2B_Webinar_Invite.control"],
    );
    text += &explained(
        &["account", "ACC-000001", "specs"],
        &["--audience", "B2B_ABM_Top"],
    );
    snapshot("example_split_and_rank", &text);
}

#[test]
fn a_person_audience_shows_the_persons_rule() {
    let mut text = String::new();
    for person in ["P08", "P05"] {
        text += &explained(
            &["person", person, PEOPLE],
            &["--audience", "B2B_Webinar_People"],
        );
    }
    assert!(
        text.contains("person P08 is IN B2B_Webinar_People"),
        "{text}"
    );
    assert!(
        text.contains("person P05 is OUT of B2B_Webinar_People"),
        "{text}"
    );
    snapshot("person_audience", &text);
}

/// One person per reason: consent (P03), the people filter (P02), no
/// identity at all (P04: no email, a phone that is no E.164 number), one
/// identity that does not normalise (P10), no account (P08), an excluded
/// account (P06), an account just outside a rank cutoff but a person
/// audience member (P12).
#[test]
fn why_a_person_is_or_is_not_exported() {
    let mut text = String::new();
    for (person, activation) in [
        ("P03", "people_files"),
        ("P02", "people_files"),
        ("P04", "people_google"),
        ("P10", "people_google"),
        ("P08", "people_google"),
        ("P08", "people_files"),
        ("P06", "people_google"),
        ("P12", "people_files"),
    ] {
        text += &explained(&["person", person, PEOPLE], &["--activation", activation]);
        text.push('\n');
    }
    for (needle, why) in [
        (
            "consent policy email_opt_in is not met",
            "P03 has no email consent",
        ),
        (
            "every identity column is empty: the run leaves the row out",
            "P04 has no identity",
        ),
        (
            "without phone_sha256_e.164",
            "P10's phone is no E.164 number",
        ),
        ("the person is linked to no account", "P08 has no account"),
        (
            "account A5 is in the excluded audience B2B_Customers",
            "A5 is a customer",
        ),
    ] {
        assert!(text.contains(needle), "{why}:\n{text}");
    }
    snapshot("person_exports", &text);
}

/// For every person of the project and every person-row activation, the
/// explanation's verdict per audience is what a real run exports: the
/// file activation's delivered rows, and the Google activation's counts
/// (exported, left out for consent, left out without an identity).
#[test]
fn every_persons_explanation_agrees_with_the_run() {
    let scratch = project::copy_of(PEOPLE, "explain-agree");
    let dir = scratch.path();
    let out = project::run(dir, NOW, None, &["--format", "json"]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "a JSON report ({e}):\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    // The file rows: (audience, personId).
    let files: Vec<(String, Vec<u8>)> = project::delivered(dir)
        .into_iter()
        .filter(|(name, _)| name.contains("people_files") && name.ends_with(".csv"))
        .collect();
    assert_eq!(
        files.len(),
        1,
        "{:?}",
        files.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    let csv = String::from_utf8(files[0].1.clone()).expect("UTF-8");
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().expect("a header").split(',').collect();
    let person_col = header
        .iter()
        .position(|h| *h == "personId")
        .expect("personId");
    let delivered: BTreeSet<(String, String)> = lines
        .map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            (cells[0].to_string(), cells[person_col].to_string())
        })
        .collect();
    assert!(!delivered.is_empty(), "{csv}");

    let people = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(PEOPLE)
            .join("data/people.csv"),
    )
    .expect("people.csv");
    let ids: Vec<String> = people
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap_or_default().to_string())
        .collect();
    let dir_arg = dir.to_string_lossy().into_owned();
    let mut explained_files = BTreeSet::new();
    let (mut google_exported, mut google_consent, mut google_no_identity) = (0, 0, 0);
    for id in &ids {
        for activation in ["people_files", "people_google"] {
            let (code, text) = explain(
                &["person", id.as_str(), dir_arg.as_str()],
                &[
                    "--activation",
                    activation,
                    "--env",
                    "dev",
                    "--format",
                    "json",
                ],
            );
            assert_eq!(code, 0, "{id} {activation}: {text}");
            let json: Value = serde_json::from_str(&text).expect("JSON");
            assert!(json.get("warnings").is_none(), "{json}");
            for a in json["audiences"].as_array().expect("audiences") {
                let audience = a["audience"].as_str().expect("a name").to_string();
                let reason = a["reason"].as_str().unwrap_or_default();
                let exported = a["exported"] == true;
                if activation == "people_files" {
                    if exported {
                        explained_files.insert((audience, id.clone()));
                    }
                } else if exported {
                    google_exported += 1;
                } else if reason.starts_with("consent policy") {
                    google_consent += 1;
                } else if reason.starts_with("every identity column is empty") {
                    google_no_identity += 1;
                }
            }
            assert_eq!(
                json["exported"],
                json["audiences"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|x| x["exported"] == true)),
                "{json}"
            );
        }
    }
    assert_eq!(explained_files, delivered, "people_files");
    let google = &report["activations"]["people_google"];
    assert_eq!(google["members"], google_exported, "{google}");
    assert_eq!(google["excluded_consent"], google_consent, "{google}");
    assert_eq!(
        google["excluded_missing_identity"], google_no_identity,
        "{google}"
    );
    assert!(google_consent > 0 && google_no_identity > 0, "{google}");
}

/// Input the explanations cannot take: each a usage error (exit 2) with a
/// help line.
#[test]
fn bad_input_is_a_clear_usage_error() {
    let mut text = String::new();
    for (words, args) in [
        (
            vec!["person", "P99", PEOPLE],
            vec!["--activation", "people_files"],
        ),
        (
            vec!["person", "P01", PEOPLE],
            vec!["--activation", "people_file"],
        ),
        (
            vec!["person", "P01", PEOPLE],
            vec!["--activation", "holdout_files"],
        ),
        (vec!["person", "P01", PEOPLE], vec![]),
        (
            vec!["person", "P01", PEOPLE],
            vec![
                "--activation",
                "people_files",
                "--audience",
                "B2B_Webinar_People",
            ],
        ),
        (
            vec!["person", "P01", PEOPLE],
            vec!["--audience", "B2B_Top3"],
        ),
        (
            vec!["account", "A1", PEOPLE],
            vec!["--audience", "B2B_Webinar_People"],
        ),
        (
            vec!["account", "A1", PEOPLE],
            vec!["--audience", "B2B_Holdout.treatment"],
        ),
        (
            vec!["account", "A1", PEOPLE],
            vec!["--activation", "people_files"],
        ),
    ] {
        let (code, out) = explain(&words, &args);
        text += &format!(
            "$ accord explain {} {}\n{out}\n",
            words.join(" "),
            args.join(" ")
        );
        assert_eq!(code, 2, "{words:?} {args:?}: {out}");
        assert!(out.contains("= help: "), "{words:?} {args:?}: {out}");
    }
    snapshot("bad_input", &text);
}
