//! Append-only sources read incrementally: the audiences of every
//! incremental read equal those of a full read over the same files, as
//! months of events are appended (a bad row and a key repeated across old
//! and new files among them); a preview reads incrementally and remembers
//! nothing; a file that changes under the source is R0015 and a full read.
#![cfg(feature = "engine")]

#[path = "support/plans.rs"]
mod plans;
#[path = "support/project.rs"]
mod project;

use std::path::Path;

use accord::run;
use accord::store::{Faults, Store};
use accord::time;
use project::{NOW, copy_of, run as run_cli};

const SOURCE: &str = "marketo_email_opens";
const EVENTS: &str = "data/email_opened";

/// Marks the example project's email opens append-only.
fn append_only(dir: &Path) {
    let path = dir.join("sources.toml");
    let text = std::fs::read_to_string(&path).expect("sources.toml");
    let marked = text.replace(
        "\"data/email_opened/*.jsonl\"\n",
        "\"data/email_opened/*.jsonl\"\nappend_only = true\n",
    );
    assert_ne!(marked, text, "the email opens source is where it was");
    std::fs::write(path, marked).expect("write sources.toml");
}

/// Moves the event files after `keep` out of the source, into `held/`.
fn hold_after(dir: &Path, keep: &str) {
    std::fs::create_dir_all(dir.join("held")).expect("mkdir");
    for entry in std::fs::read_dir(dir.join(EVENTS)).expect("events") {
        let entry = entry.expect("entry");
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.as_str() > keep {
            std::fs::rename(entry.path(), dir.join("held").join(&name)).expect("hold");
        }
    }
}

fn release(dir: &Path, name: &str) {
    std::fs::rename(dir.join("held").join(name), dir.join(EVENTS).join(name)).expect("release");
}

/// The first line of an event file, with its key and campaign replaced.
fn event(id: &str, person: &str, at: &str, campaign: &str) -> String {
    format!(
        "{{\"eventId\":\"{id}\",\"personId\":\"{person}\",\"occurredAt\":\"{at}\",\"campaign\":\"{campaign}\"}}\n"
    )
}

fn nothing(_: &Path, _: &str) {}

fn august(d: &Path, _: &str) {
    release(d, "2026-08.jsonl");
}

/// September, and a late file: a row repeating a June key, a row whose
/// time does not type, and a key written twice.
fn september(d: &Path, june_key: &str) {
    release(d, "2026-09.jsonl");
    let mut late = event(
        june_key,
        "P-000001",
        "2026-09-30T10:00:00Z",
        "dw-nurture-2026-q4",
    );
    late.push_str("{\"eventId\":\"EO-9000001\",\"personId\":\"P-000002\",\"occurredAt\":\"yesterday\",\"campaign\":\"x\"}\n");
    late.push_str(&event(
        "EO-9000002",
        "P-000003",
        "2026-09-30T11:00:00Z",
        "dw-nurture-2026-q4",
    ));
    late.push_str(&event(
        "EO-9000002",
        "P-000004",
        "2026-09-30T12:00:00Z",
        "dw-nurture-2026-q4",
    ));
    std::fs::write(d.join(EVENTS).join("2026-09-late.jsonl"), late).expect("write");
}

fn autumn(d: &Path, _: &str) {
    release(d, "2026-10.jsonl");
    release(d, "2026-11.jsonl");
}

fn december(d: &Path, _: &str) {
    let mut text = event(
        "EO-9000002",
        "P-000005",
        "2026-12-01T09:00:00Z",
        "dw-nurture-2026-q4",
    );
    text.push_str(&event(
        "EO-9000003",
        "P-000006",
        "2026-12-01T09:30:00Z",
        "dw-nurture-2026-q4",
    ));
    std::fs::write(d.join(EVENTS).join("2026-12.jsonl"), text).expect("write");
}

fn november_grew(d: &Path, _: &str) {
    let path = d.join(EVENTS).join("2026-11.jsonl");
    let mut text = std::fs::read_to_string(&path).expect("november");
    text.push_str(&event(
        "EO-9000004",
        "P-000007",
        "2026-11-27T09:00:00Z",
        "dw-nurture-2026-q4",
    ));
    std::fs::write(path, text).expect("write");
}

#[test]
fn incremental_reads_give_the_audiences_of_full_reads() {
    let scratch = copy_of("specs", "incremental");
    let dir = scratch.path();
    append_only(dir);
    hold_after(dir, "2026-07.jsonl");
    let (plan, jobs) = plans::datafusion_jobs(dir, "dev");
    let store = Store::open(dir, &Faults::default()).expect("the store opens");
    let first_key = std::fs::read_to_string(dir.join(EVENTS).join("2026-06.jsonl"))
        .expect("june")
        .split('"')
        .nth(3)
        .expect("an event id")
        .to_string();

    // (what changes before the run, how the source should be read)
    type Change = fn(&Path, &str);
    let steps: Vec<(&str, Change, &str)> = vec![
        ("two months", nothing as Change, "full: first read"),
        ("august appended", august as Change, "incremental"),
        (
            "september, and a file with a bad row and an old key",
            september as Change,
            "incremental",
        ),
        (
            "october and november at once",
            autumn as Change,
            "incremental",
        ),
        ("nothing new", nothing as Change, "incremental"),
        (
            "a December file repeating a key of the September file",
            december as Change,
            "incremental",
        ),
        (
            "november grew",
            november_grew as Change,
            "full: files changed",
        ),
        ("after the full read", nothing as Change, "incremental"),
    ];
    let mut seen_members = std::collections::BTreeSet::new();
    let start = time::parse_timestamp(NOW).expect("now");
    for (day, (what, change, expected)) in steps.into_iter().enumerate() {
        change(dir, &first_key);
        let now = start + day as i64 * 86_400_000_000;
        let places = run::Places::default();
        let incremental = run::evaluate_in(
            &plan,
            &jobs,
            dir,
            now,
            &places,
            &run::engine::Choice::Embedded,
            Some(&store),
            true,
        )
        .unwrap_or_else(|e| panic!("{what}: {e}"));
        let full = run::evaluate(&plan, &jobs, dir, now).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(
            incremental.members, full.members,
            "{what}: the audiences differ"
        );
        let (i, f) = (&incremental.sources[SOURCE], &full.sources[SOURCE]);
        let how = i.incremental.as_ref().expect("an append-only report");
        assert_eq!(how.read, expected, "{what}: {how:?}");
        if expected == "incremental" {
            assert!(how.files_reused > 0, "{what}: {how:?}");
        }
        assert_eq!(
            (&i.files, i.rows, i.bad_rows, &i.bad_row_samples, &i.newest),
            (&f.files, f.rows, f.bad_rows, &f.bad_row_samples, &f.newest),
            "{what}: the source reports differ"
        );
        let codes = |d: &[run::report::RunDiagnostic]| -> Vec<String> {
            d.iter()
                .map(|d| d.code.clone())
                .filter(|c| c != "R0015")
                .collect()
        };
        let new_codes = codes(&incremental.diagnostics);
        if what.starts_with("september") {
            assert_eq!(i.bad_rows, 3, "{:?}", i.bad_row_samples);
            assert!(
                i.bad_row_samples
                    .iter()
                    .any(|s| s.contains(&format!("duplicate key `{first_key}`"))),
                "{:?}",
                i.bad_row_samples
            );
        }
        if what == "november grew" {
            assert!(
                incremental.diagnostics.iter().any(|d| d.code == "R0015"
                    && d.location.as_deref() == Some("data/email_opened/2026-11.jsonl")),
                "{:?}",
                incremental.diagnostics
            );
        } else {
            assert!(
                !incremental.diagnostics.iter().any(|d| d.code == "R0015"),
                "{what}: {:?}",
                incremental.diagnostics
            );
        }
        // R0007 and R0005 of files read before are shown once, when read.
        if expected != "incremental" {
            assert_eq!(new_codes, codes(&full.diagnostics), "{what}");
        }
        seen_members.insert(format!("{:?}", incremental.members));
    }
    assert!(
        seen_members.len() > 2,
        "the appended events change the audiences, so the test shows something"
    );
}

fn json_report(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn how_read(report: &serde_json::Value) -> (String, u64, u64) {
    let i = &report["sources"][SOURCE]["incremental"];
    (
        i["read"].as_str().unwrap_or("?").to_string(),
        i["files_reused"].as_u64().unwrap_or(99),
        i["files_read"].as_u64().unwrap_or(99),
    )
}

fn cache_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join(".accord/sources").join(SOURCE))
        .map(|r| {
            r.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn a_preview_reads_incrementally_and_remembers_nothing() {
    let scratch = copy_of("specs", "incremental-preview");
    let dir = scratch.path();
    append_only(dir);
    hold_after(dir, "2026-10.jsonl");
    let json = ["--format", "json"];

    // A preview before any run reads everything and writes no cache.
    let preview = json_report(&run_cli(dir, NOW, None, &["--preview", "--format", "json"]));
    assert_eq!(how_read(&preview).0, "full: first read");
    assert!(cache_files(dir).is_empty());

    let first = json_report(&run_cli(dir, NOW, None, &json));
    assert_eq!(how_read(&first), ("full: first read".into(), 0, 5));
    let cached = cache_files(dir);
    assert_eq!(cached, ["000001.arrow"]);

    release(dir, "2026-11.jsonl");
    let preview = json_report(&run_cli(dir, NOW, None, &["--preview", "--format", "json"]));
    assert_eq!(how_read(&preview), ("incremental".into(), 5, 1));
    assert_eq!(cache_files(dir), cached, "a preview writes no segment");

    let second = json_report(&run_cli(dir, NOW, None, &json));
    assert_eq!(
        how_read(&second),
        ("incremental".into(), 5, 1),
        "the preview did not advance the record"
    );
    assert_eq!(second["audiences"], preview["audiences"]);
    assert_eq!(cache_files(dir), ["000001.arrow", "000002.arrow"]);
    let third = json_report(&run_cli(dir, NOW, None, &json));
    assert_eq!(how_read(&third), ("incremental".into(), 6, 0));
    assert_eq!(third["audiences"], second["audiences"]);

    // Deleting the cache forces a full read, which replaces the record.
    std::fs::remove_dir_all(dir.join(".accord/sources")).expect("remove the cache");
    let forced = json_report(&run_cli(dir, NOW, None, &json));
    assert_eq!(how_read(&forced), ("full: cache missing".into(), 0, 6));
    assert_eq!(forced["audiences"], third["audiences"]);
    assert_eq!(cache_files(dir), ["000003.arrow"]);

    // A file that shrank: R0015 in the report, and a full read.
    let june = dir.join(EVENTS).join("2026-06.jsonl");
    let text = std::fs::read_to_string(&june).expect("june");
    let shorter: String = text.lines().skip(1).map(|l| format!("{l}\n")).collect();
    std::fs::write(&june, shorter).expect("write");
    let changed = json_report(&run_cli(dir, NOW, None, &json));
    assert_eq!(how_read(&changed).0, "full: files changed");
    let r0015: Vec<&serde_json::Value> = changed["diagnostics"]
        .as_array()
        .expect("diagnostics")
        .iter()
        .filter(|d| d["code"] == "R0015")
        .collect();
    assert_eq!(r0015.len(), 1, "{:?}", changed["diagnostics"]);
    assert_eq!(r0015[0]["location"], "data/email_opened/2026-06.jsonl");
    assert_eq!(
        cache_files(dir),
        ["000004.arrow"],
        "the replaced segments are gone"
    );
}
