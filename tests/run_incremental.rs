//! Append-only sources read incrementally: the audiences of every
//! incremental read equal those of a full read over the same files, as
//! months of events are appended (a bad row and a key repeated across old
//! and new files among them); a preview reads incrementally and remembers
//! nothing; a file that changes under the source is R0015 and a full read;
//! a Parquet file appended is read with the cached rows (whole, where text
//! files are streamed), as a full read reads it.
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
            &run::engine::Choice::default(),
            Some(&store),
            true,
        )
        .unwrap_or_else(|e| panic!("{what}: {e}"));
        let full = run::evaluate(&plan, &jobs, dir, now).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(
            incremental.members.sets(),
            full.members.sets(),
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
        seen_members.insert(format!("{:?}", incremental.members.sets()));
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
    assert_eq!(cached, ["000001.parquet"]);

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
    assert_eq!(cache_files(dir), ["000001.parquet", "000002.parquet"]);
    let third = json_report(&run_cli(dir, NOW, None, &json));
    assert_eq!(how_read(&third), ("incremental".into(), 6, 0));
    assert_eq!(third["audiences"], second["audiences"]);

    // Deleting the cache forces a full read, which replaces the record.
    std::fs::remove_dir_all(dir.join(".accord/sources")).expect("remove the cache");
    let forced = json_report(&run_cli(dir, NOW, None, &json));
    assert_eq!(how_read(&forced), ("full: cache missing".into(), 0, 6));
    assert_eq!(forced["audiences"], third["audiences"]);
    assert_eq!(cache_files(dir), ["000003.parquet"]);

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
        ["000004.parquet"],
        "the replaced segments are gone"
    );
}

/// Events as a Parquet file: `(eventId, personId, occurredAt)`.
fn write_parquet_events(path: &Path, events: &[(&str, &str, &str)]) {
    use std::sync::Arc;

    use datafusion::arrow::array::{ArrayRef, StringArray, TimestampMicrosecondArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
    use datafusion::arrow::record_batch::RecordBatch;
    use datafusion::parquet::arrow::ArrowWriter;

    let texts = |column: usize| -> ArrayRef {
        let value = |e: &(&str, &str, &str)| [e.0, e.1, "dw-nurture-2026-q4"][column].to_string();
        Arc::new(StringArray::from_iter_values(events.iter().map(value)))
    };
    let at: Vec<i64> = events
        .iter()
        .map(|e| time::parse_timestamp(e.2).expect("a time"))
        .collect();
    let timestamp = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    let schema = Arc::new(Schema::new(vec![
        Field::new("eventId", DataType::Utf8, true),
        Field::new("personId", DataType::Utf8, true),
        Field::new("occurredAt", timestamp, true),
        Field::new("campaign", DataType::Utf8, true),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            texts(0),
            texts(1),
            Arc::new(TimestampMicrosecondArray::from(at).with_timezone("UTC")),
            texts(2),
        ],
    )
    .expect("a batch");
    let file = std::fs::File::create(path).expect("create");
    let mut writer = ArrowWriter::try_new(file, schema, None).expect("a writer");
    writer.write(&batch).expect("write");
    writer.close().expect("close");
}

/// The source report and audiences of a full read of the project's files:
/// a preview with the cache moved away (so the record stays as it is).
fn full_read(dir: &Path) -> serde_json::Value {
    let cache = dir.join(".accord/sources");
    std::fs::rename(&cache, dir.join("cache")).expect("move the cache");
    let full = json_report(&run_cli(dir, NOW, None, &["--preview", "--format", "json"]));
    assert_eq!(how_read(&full).0, "full: cache missing");
    std::fs::rename(dir.join("cache"), &cache).expect("restore the cache");
    full
}

/// Whether two reports read the source alike: its files, rows, bad rows
/// and their samples and newest time, and the audiences.
fn assert_read_alike(report: &serde_json::Value, full: &serde_json::Value, what: &str) {
    for field in ["files", "rows", "bad_rows", "bad_row_samples", "newest"] {
        assert_eq!(
            report["sources"][SOURCE][field], full["sources"][SOURCE][field],
            "{what}: {field}"
        );
    }
    assert_eq!(report["audiences"], full["audiences"], "{what}");
}

/// Parquet files appended to an append-only source of JSON lines: text
/// and Parquet files appended together are read with the cached rows
/// whole; Parquet files alone are checked against the cached rows' keys
/// and streamed with them (their rows copied to the next segment). Each
/// read gives what a full read of the same files gives, and the cache is
/// streamed again by the next run. (A text file appended after a Parquet
/// file would be read before it, so only a full read can take it: R0015.)
#[test]
fn parquet_files_appended_are_read_as_a_full_read_reads_them() {
    let scratch = copy_of("specs", "incremental-parquet");
    let dir = scratch.path();
    append_only(dir);
    let sources = dir.join("sources.toml");
    let text = std::fs::read_to_string(&sources).expect("sources.toml");
    let both = text.replace(
        "\"data/email_opened/*.jsonl\"",
        "\"data/email_opened/*.{jsonl,parquet}\"",
    );
    assert_ne!(both, text);
    std::fs::write(&sources, both).expect("write sources.toml");
    let json = ["--format", "json"];
    let first = json_report(&run_cli(dir, NOW, None, &json));
    let (how, _, jsonl_files) = how_read(&first);
    assert_eq!(how, "full: first read");
    assert_eq!(cache_files(dir), ["000001.parquet"]);
    let bad_before = first["sources"][SOURCE]["bad_rows"]
        .as_u64()
        .expect("bad rows");
    let june = std::fs::read_to_string(dir.join(EVENTS).join("2026-06.jsonl")).expect("june");
    let june_key = june.split('"').nth(3).expect("an event id").to_string();

    // A text file and a Parquet file at once: read with the cache whole.
    std::fs::write(
        dir.join(EVENTS).join("2026-12.jsonl"),
        event("EO-9100001", "P-000004", "2026-11-28T08:00:00Z", "x"),
    )
    .expect("write");
    write_parquet_events(
        &dir.join(EVENTS).join("2026-12.parquet"),
        &[
            ("EO-9100002", "P-000005", "2026-11-28T09:00:00Z"),
            // A key of June's file: a duplicate, left out.
            (&june_key, "P-000006", "2026-11-28T10:00:00Z"),
        ],
    );
    let second = json_report(&run_cli(dir, NOW, None, &json));
    assert_eq!(how_read(&second), ("incremental".into(), jsonl_files, 2));
    assert_eq!(second["sources"][SOURCE]["bad_rows"], bad_before + 1);
    assert_eq!(cache_files(dir), ["000001.parquet", "000002.parquet"]);
    assert_read_alike(&second, &full_read(dir), "text and Parquet files appended");

    // Nothing new: both segments streamed, the same rows.
    let third = json_report(&run_cli(dir, NOW, None, &json));
    assert_eq!(how_read(&third), ("incremental".into(), jsonl_files + 2, 0));
    assert_read_alike(&third, &second, "nothing new");

    // A Parquet file alone: streamed with the cache.
    write_parquet_events(
        &dir.join(EVENTS).join("2027-01.parquet"),
        &[
            ("EO-9100003", "P-000001", "2026-11-28T11:00:00Z"),
            // Keys of the text and the Parquet file appended before.
            ("EO-9100001", "P-000002", "2026-11-28T11:30:00Z"),
            ("EO-9100002", "P-000002", "2026-11-28T11:40:00Z"),
            ("EO-9100004", "P-000003", "2026-11-28T12:00:00Z"),
        ],
    );
    let fourth = json_report(&run_cli(dir, NOW, None, &json));
    assert_eq!(
        how_read(&fourth),
        ("incremental".into(), jsonl_files + 2, 1),
        "{}",
        fourth["sources"][SOURCE]
    );
    assert_eq!(fourth["sources"][SOURCE]["bad_rows"], bad_before + 3);
    assert_eq!(
        cache_files(dir),
        ["000001.parquet", "000002.parquet", "000003.parquet"]
    );
    assert_read_alike(&fourth, &full_read(dir), "a Parquet file appended");
    let fifth = json_report(&run_cli(dir, NOW, None, &json));
    assert_eq!(how_read(&fifth), ("incremental".into(), jsonl_files + 3, 0));
    assert_read_alike(&fifth, &fourth, "nothing new after it");
}
