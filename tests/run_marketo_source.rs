//! A Marketo activity source end to end: the project in
//! `tests/api_projects/marketo_activity/` run by the built binary against
//! a loopback Marketo fake that follows Adobe's published activity API
//! (activity types, paging tokens, pages that scan 300 activities of all
//! types, `moreResult`) and its limits.
//!
//! It proves: an audience of accounts whose people clicked an email in the
//! last 30 days is the same read from Marketo as from the same activities
//! in a local JSONL file, bad activities are reported as bad rows are in
//! the file; leads are linked to people through the store's lead ids from
//! accord's own upserts first, then through the email Marketo holds for
//! the others, the people streamed however many there are; activities
//! past a batch streamed as a text source's rows are; many pages
//! are read, within the destination's throttle (the fake counts every
//! request against its window and in-flight cap), the calls counting against the daily quota the deliveries share; wrong
//! credentials and an unreachable instance stop the run with R0011 naming
//! the source and the instance; an unknown activity type is R0014; a dry
//! run still reads; and no secret appears in any output.
#![cfg(feature = "engine")]

#[path = "support/fake/mod.rs"]
mod fake;
#[path = "support/fakes/marketo.rs"]
mod marketo_fake;
#[path = "support/project.rs"]
mod project;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use fake::{FakeLimits, FakeServer, Policy};
use marketo_fake::{Marketo, Options};
use serde_json::{Value, json};

/// The evaluation time of the runs: activity dates are relative to it.
const NOW: &str = "2026-11-28T12:00:00Z";
const LATER: &str = "2026-11-28T13:00:00Z";
const SECRET: &str = "fake-secret";

/// A scratch copy of the project with `endpoint` pointed at `url`.
fn project(url: &str) -> tempfile::TempDir {
    let temp = project::copy_of("tests/api_projects/marketo_activity", "mktsrc");
    edit(temp.path(), "http://127.0.0.1:9", url);
    temp
}

fn edit(dir: &Path, from: &str, to: &str) {
    let spec = dir.join("accord.toml");
    let text = std::fs::read_to_string(&spec).expect("read");
    assert!(text.contains(from), "{from} is in the spec");
    std::fs::write(&spec, text.replacen(from, to, 1)).expect("write");
}

fn run_with(dir: &Path, now: &str, secret: &str, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_accord"))
        .arg("run")
        .arg(dir)
        .args(["--env", "test", "--now", now, "--format", "json"])
        // Schedules are not what these tests are about: deliver each run.
        .arg("--all")
        .args(extra)
        .env("MARKETO_CLIENT_ID", "fake-client")
        .env("MARKETO_CLIENT_SECRET", secret)
        .env_remove("ACCORD_FAULT_AFTER")
        .output()
        .expect("accord runs")
}

fn run(dir: &Path, now: &str, extra: &[&str]) -> Output {
    run_with(dir, now, SECRET, extra)
}

fn text(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The report of a run that must have succeeded.
fn ok(out: Output) -> Value {
    assert!(out.status.success(), "{}", text(&out));
    assert_no_secret(&text(&out));
    serde_json::from_slice(&out.stdout).expect("a JSON report")
}

fn assert_no_secret(text: &str) {
    assert!(!text.contains(SECRET), "a secret in the output:\n{text}");
    assert!(
        !text.contains("wrong-secret"),
        "a secret in the output:\n{text}"
    );
    assert!(
        !text.contains("token-"),
        "an access token in the output:\n{text}"
    );
}

/// Every file a run left in the project (`.accord/`, `out/`), as text.
fn assert_no_secret_in_files(dir: &Path) {
    for entry in walkdir::WalkDir::new(dir) {
        let entry = entry.expect("walk");
        if entry.file_type().is_file() {
            let bytes = std::fs::read(entry.path()).expect("read");
            assert_no_secret(&String::from_utf8_lossy(&bytes));
        }
    }
}

fn start(options: Options, policy: Policy) -> (FakeServer, Arc<Marketo>) {
    Marketo::start(policy, options)
}

/// Marketo's refusals as HTTP 200 with error codes, without limits.
fn open() -> Policy {
    Policy::open()
}

/// `NOW` minus `days` days (and `hours`), as Marketo writes dates.
fn ago(days: i64, hours: i64) -> String {
    let now = chrono::DateTime::parse_from_rfc3339(NOW).expect("NOW");
    (now - chrono::Duration::days(days) - chrono::Duration::hours(hours))
        .to_utc()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// One email activity of the test data, as both sides see it.
struct Act {
    email: &'static str,
    kind: &'static str,
    days_ago: i64,
    mailing: &'static str,
    link: Option<&'static str>,
}

/// The activities of the closed-loop test: Alice (upserted by accord) and
/// Carol (a lead made in Marketo, with another case in her email) clicked
/// recently; Bob only opened; Dan clicked 40 days ago; Zed is no person.
const ACTS: &[Act] = &[
    Act {
        email: "alice@acme.example",
        kind: "Click Email",
        days_ago: 5,
        mailing: "Nurture 1",
        link: Some("https://northwind.example/warehouse"),
    },
    Act {
        email: "alice@acme.example",
        kind: "Open Email",
        days_ago: 5,
        mailing: "Nurture 1",
        link: None,
    },
    Act {
        email: "bob@acme.example",
        kind: "Open Email",
        days_ago: 3,
        mailing: "Nurture 2",
        link: None,
    },
    Act {
        email: "carol@globex.example",
        kind: "Click Email",
        days_ago: 2,
        mailing: "Newsletter",
        link: Some("https://northwind.example/blog"),
    },
    Act {
        email: "dan@initech.example",
        kind: "Click Email",
        days_ago: 40,
        mailing: "Nurture 1",
        link: Some("https://northwind.example/old"),
    },
    Act {
        email: "zed@elsewhere.example",
        kind: "Click Email",
        days_ago: 1,
        mailing: "Newsletter",
        link: Some("https://northwind.example/blog"),
    },
];

/// The person each email belongs to in `data/people.csv`.
fn person_of(email: &str) -> Option<&'static str> {
    match email {
        "alice@acme.example" => Some("p1"),
        "bob@acme.example" => Some("p2"),
        "carol@globex.example" => Some("p3"),
        "dan@initech.example" => Some("p4"),
        _ => None,
    }
}

/// Puts `ACTS` into the fake, with a visit of a web page between each
/// (a type the source does not read); returns the JSONL lines the same
/// activities are in a file: the schema's fields, as the source maps them.
fn seed(marketo: &Marketo) -> Vec<Value> {
    let mut lines = Vec::new();
    for (i, act) in ACTS.iter().enumerate() {
        let lead = match marketo.lead(act.email) {
            Some(lead) => lead.id,
            None => marketo.create_lead(act.email),
        };
        let date = ago(act.days_ago, i as i64);
        marketo.add_activity(lead, "Visit Webpage", &date, (3, "pricing.html"), None, &[]);
        lines.push(add_email_activity(
            marketo,
            EmailActivity {
                lead,
                email: act.email,
                kind: act.kind,
                date,
                mailing: act.mailing,
                link: act.link.map(str::to_string),
                mobile: i % 2 == 0,
            },
        ));
    }
    lines
}

/// One activity on a mailing of campaign 3001, by a lead.
struct EmailActivity<'a> {
    lead: u64,
    email: &'a str,
    kind: &'a str,
    date: String,
    mailing: &'a str,
    link: Option<String>,
    mobile: bool,
}

/// Puts `activity` into the fake; returns its line in a local file: the
/// schema's fields, as the source maps them.
fn add_email_activity(marketo: &Marketo, activity: EmailActivity) -> Value {
    let mut attributes = vec![("Is Mobile Device", json!(activity.mobile))];
    if let Some(link) = &activity.link {
        attributes.push(("Link", json!(link)));
    }
    let id = marketo.add_activity(
        activity.lead,
        activity.kind,
        &activity.date,
        (1021, activity.mailing),
        Some(3001),
        &attributes,
    );
    json!({
        "marketoGUID": id.to_string(),
        "leadId": activity.lead,
        "activityDate": activity.date,
        "activityType": activity.kind,
        "primaryAttributeValue": activity.mailing,
        "campaignId": 3001,
        "link": activity.link,
        "isMobileDevice": activity.mobile,
        "email": activity.email,
        "personId": person_of(activity.email),
    })
}

/// The project with its Marketo source replaced by `data/email_activity.jsonl`.
fn as_local_file(dir: &Path, lines: &[Value]) {
    edit(
        dir,
        "marketo = \"marketo\"\nactivity_types = [\"Open Email\", \"Click Email\"]",
        "path = \"data/email_activity.jsonl\"",
    );
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(dir.join("data/email_activity.jsonl"), text).expect("write");
}

/// The rows of every file the `files` activation wrote, sorted.
fn written_rows(dir: &Path) -> Vec<String> {
    let mut rows = Vec::new();
    for entry in walkdir::WalkDir::new(dir.join("out")) {
        let entry = entry.expect("walk");
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type().is_file() && name.ends_with(".csv") {
            let text = std::fs::read_to_string(entry.path()).expect("read");
            rows.extend(text.lines().map(str::to_string));
        }
    }
    rows.sort();
    rows
}

fn marketo_report(report: &Value) -> &Value {
    &report["sources"]["marketo_activity"]["marketo"]
}

#[test]
fn clicks_in_marketo_drive_the_same_audience_as_the_same_activities_in_a_file() {
    let (server, marketo) = start(Options::default(), open());
    let dir = project(&server.url());
    // The first run upserts the Software accounts' people (Alice, Bob,
    // Dan): the store keeps their lead ids. Marketo has no activity yet.
    let first = ok(run(dir.path(), NOW, &[]));
    assert_eq!(
        first["activations"]["nurture_marketo"]["status"],
        "delivered"
    );
    assert_eq!(marketo_report(&first)["activities"], 0);
    assert_eq!(first["audiences"]["B2B_Clicked_30d"], 0);
    let lines = seed(&marketo);
    // Only the second run's file is compared.
    std::fs::remove_dir_all(dir.path().join("out")).expect("remove the first files");

    let report = ok(run(dir.path(), LATER, &[]));
    let m = marketo_report(&report);
    assert_eq!(m["activities"], 6, "{m}");
    assert_eq!(
        m["activity_types"],
        json!({"Click Email": 11, "Open Email": 10})
    );
    assert_eq!(m["since"], "2026-08-30T13:00:00Z", "90 days back");
    // Alice, Bob and Dan from the store; Carol and Zed looked up.
    assert_eq!(m["leads"], 5);
    assert_eq!(m["leads_from_store"], 3);
    assert_eq!(m["leads_looked_up"], 2);
    assert_eq!(m["leads_without_email"], 0);
    assert_eq!(m["linked_by_email"], 1, "Carol, by her email");
    assert_eq!(m["unlinked"], 1, "Zed is no person");
    assert_eq!(report["sources"]["marketo_activity"]["bad_rows"], 0);
    // Acme (Alice) and Globex (Carol); Dan's click is 40 days old.
    assert_eq!(report["audiences"]["B2B_Clicked_30d"], 2);
    let from_marketo = written_rows(dir.path());
    assert!(
        from_marketo.iter().any(|r| r.contains("a1,Acme")),
        "{from_marketo:?}"
    );
    assert!(from_marketo.iter().any(|r| r.contains("a2,Globex")));
    assert_no_secret_in_files(dir.path());

    // The same activities in a local file: the same audience, row for row.
    let (other, _) = start(Options::default(), open());
    let local = project(&other.url());
    as_local_file(local.path(), &lines);
    let report = ok(run(local.path(), LATER, &[]));
    assert_eq!(report["audiences"]["B2B_Clicked_30d"], 2);
    assert_eq!(report["sources"]["marketo_activity"]["rows"], 6);
    assert_eq!(written_rows(local.path()), from_marketo);
}

/// The people that activities link to by email are streamed like every
/// other source, even with more rows than a batch (65,536): their emails
/// are read a batch at a time once every source is.
#[test]
fn people_linked_by_email_are_streamed_at_any_size() {
    use std::fmt::Write;
    let (server, marketo) = start(Options::default(), open());
    let dir = project(&server.url());
    let people = dir.path().join("data/people.csv");
    let mut text = std::fs::read_to_string(&people).expect("read the people");
    // People of a Fintech account: no activation sends them anywhere.
    for i in 0..70_000 {
        writeln!(text, "q{i},a4,q{i}@umbrella.example,Q{i}").expect("writes");
    }
    std::fs::write(&people, text).expect("write the people");
    ok(run(dir.path(), NOW, &[]));
    seed(&marketo);
    let report = ok(run(dir.path(), LATER, &[]));
    assert_eq!(report["sources"]["people"]["rows"], 70_005);
    let m = marketo_report(&report);
    assert_eq!(m["linked_by_email"], 1, "Carol, by her email: {m}");
    assert_eq!(report["audiences"]["B2B_Clicked_30d"], 2);
}

/// More activities than a batch of typed rows (65,536): written to a file
/// as the pages come and typed into one the engine streams, with the
/// people of the leads only Marketo knew filled in as it reads them. They
/// drive the same audience, row for row, as the same activities in a local
/// file. (The fake scans 1,000 activities a call, not Marketo's 300, so
/// that the test keeps within one rate window; accord reads whatever a
/// page holds.)
#[test]
fn activities_past_a_batch_are_streamed_and_drive_the_same_audience_as_a_file() {
    let options = Options {
        activity_scan: 1_000,
        ..Options::default()
    };
    let (server, marketo) = start(options, open());
    let dir = project(&server.url());
    ok(run(dir.path(), NOW, &[]));
    std::fs::remove_dir_all(dir.path().join("out")).expect("remove the first files");
    // Alice's lead is in the store, Carol's links by her email, Zed's to
    // no one; a third of the clicks are older than 30 days.
    let emails = [
        "alice@acme.example",
        "carol@globex.example",
        "zed@elsewhere.example",
    ];
    let leads: Vec<u64> = emails
        .iter()
        .map(|email| match marketo.lead(email) {
            Some(lead) => lead.id,
            None => marketo.create_lead(email),
        })
        .collect();
    let mut lines = Vec::new();
    for i in 0..70_000usize {
        lines.push(add_email_activity(
            &marketo,
            EmailActivity {
                lead: leads[i % 3],
                email: emails[i % 3],
                kind: "Click Email",
                date: ago((i % 45) as i64, (i % 24) as i64),
                mailing: "Newsletter",
                link: Some(format!("https://acme.example/{}", i % 7)),
                mobile: i % 2 == 0,
            },
        ));
    }

    let report = ok(run(dir.path(), LATER, &[]));
    let m = marketo_report(&report);
    assert_eq!(m["activities"], 70_000, "{m}");
    assert_eq!(m["leads_from_store"], 1, "Alice: {m}");
    assert_eq!(m["linked_by_email"], 23_333, "Carol's clicks: {m}");
    assert_eq!(m["unlinked"], 23_333, "Zed's clicks: {m}");
    let source = &report["sources"]["marketo_activity"];
    assert_eq!(source["rows"], 70_000);
    assert_eq!(source["bad_rows"], 0);
    assert_eq!(report["audiences"]["B2B_Clicked_30d"], 2);
    let from_marketo = written_rows(dir.path());
    assert!(from_marketo.iter().any(|r| r.contains("a2,Globex")));
    let tmp = dir.path().join(".accord/tmp");
    let left = std::fs::read_dir(&tmp).map_or(0, |d| d.count());
    assert_eq!(left, 0, "the activities' files go with the run");

    let (other, _) = start(Options::default(), open());
    let local = project(&other.url());
    as_local_file(local.path(), &lines);
    let report = ok(run(local.path(), LATER, &[]));
    assert_eq!(report["sources"]["marketo_activity"]["rows"], 70_000);
    assert_eq!(report["audiences"]["B2B_Clicked_30d"], 2);
    assert_eq!(written_rows(local.path()), from_marketo);
}

#[test]
fn bad_activities_are_reported_as_bad_rows_of_a_file_are() {
    let (server, marketo) = start(Options::default(), open());
    let dir = project(&server.url());
    let lead = marketo.create_lead("alice@acme.example");
    let good = marketo.add_activity(
        lead,
        "Click Email",
        &ago(1, 0),
        (1021, "N"),
        Some(3001),
        &[],
    );
    // A date that does not exist, and a campaign id that is no number.
    let bad_date = marketo.insert_activity(
        json!({"leadId": lead, "activityDate": "2026-11-31T10:00:00Z", "activityTypeId": 11,
               "primaryAttributeValueId": 1021, "primaryAttributeValue": "N"}),
        &ago(1, 1),
    );
    let bad_campaign = marketo.insert_activity(
        json!({"leadId": lead, "activityDate": ago(1, 2), "activityTypeId": 10, "campaignId": "spring",
               "primaryAttributeValueId": 1021, "primaryAttributeValue": "N"}),
        &ago(1, 2),
    );
    let report = ok(run(dir.path(), NOW, &["--preview"]));
    let source = &report["sources"]["marketo_activity"];
    assert_eq!(source["rows"], 1, "{source}");
    assert_eq!(source["bad_rows"], 2);
    let reasons = |samples: &Value| -> Vec<String> {
        samples
            .as_array()
            .expect("samples")
            .iter()
            .map(|s| {
                let s = s.as_str().expect("text");
                s.split_once(": ").expect("at: reason").1.to_string()
            })
            .collect()
    };
    let samples = &source["bad_row_samples"];
    assert!(
        samples[0]
            .as_str()
            .unwrap()
            .starts_with(&format!("activity {bad_campaign}: ")),
        "{samples}"
    );
    let from_marketo = reasons(samples);
    let codes = |report: &Value| -> Vec<String> {
        report["diagnostics"]
            .as_array()
            .expect("diagnostics")
            .iter()
            .map(|d| d["code"].as_str().unwrap_or("").to_string())
            .collect()
    };
    assert!(codes(&report).contains(&"R0010".to_string()));

    // The same three activities as JSON lines, in the same order.
    let line = |id: u64, date: &str, kind: &str, campaign: Value| {
        json!({"marketoGUID": id.to_string(), "leadId": lead, "activityDate": date,
               "activityType": kind, "primaryAttributeValue": "N", "campaignId": campaign,
               "email": "alice@acme.example"})
    };
    let (other, _) = start(Options::default(), open());
    let local = project(&other.url());
    as_local_file(
        local.path(),
        &[
            line(bad_campaign, &ago(1, 2), "Open Email", json!("spring")),
            line(bad_date, "2026-11-31T10:00:00Z", "Click Email", Value::Null),
            line(good, &ago(1, 0), "Click Email", json!(3001)),
        ],
    );
    let local_report = ok(run(local.path(), NOW, &["--preview"]));
    let local_source = &local_report["sources"]["marketo_activity"];
    assert_eq!(local_source["rows"], 1);
    assert_eq!(local_source["bad_rows"], 2);
    assert_eq!(reasons(&local_source["bad_row_samples"]), from_marketo);
    assert!(codes(&local_report).contains(&"R0010".to_string()));
}

#[test]
fn many_pages_are_read_within_the_throttle_and_count_against_the_daily_quota() {
    // Five calls a second and two in flight, at the fake and in the spec;
    // each call scans 7 activities of all types.
    let limits = FakeLimits {
        calls: 5,
        per: Duration::from_secs(1),
        concurrent: 2,
        daily: None,
    };
    let options = Options {
        activity_scan: 7,
        ..Options::default()
    };
    let (server, marketo) = start(options, open().limits(limits));
    let dir = project(&server.url());
    edit(
        dir.path(),
        "list_prefix = \"accord_\"",
        "list_prefix = \"accord_\"\nrate_limit = { calls = 5, per = \"1s\", concurrent = 2 }",
    );
    let lead = marketo.create_lead("alice@acme.example");
    let mut expected = 0;
    for i in 0..40 {
        let date = ago(10, i);
        let kind = match i % 4 {
            0 => "Click Email",
            1 => "Open Email",
            2 => "Visit Webpage",
            _ => "Email Delivered",
        };
        if i % 4 < 2 {
            expected += 1;
        }
        marketo.add_activity(lead, kind, &date, (1021, "N"), None, &[]);
    }
    let report = ok(run(dir.path(), NOW, &[]));
    let m = marketo_report(&report);
    assert_eq!(m["activities"], expected, "{m}");
    // 40 activities, 7 scanned a page: 6 pages, the last not full.
    assert_eq!(m["pages"], 6);
    assert_eq!(marketo.activity_calls(), 6);
    let snapshot = server.snapshot();
    assert_eq!(snapshot.violations, 0, "the throttle kept to the limits");
    assert_eq!(snapshot.throttled, 0);
    // Reading and delivering share the daily count: the delivery's
    // report counts the reads' calls too.
    let reads = m["calls"].as_u64().expect("calls");
    let api = &report["activations"]["nurture_marketo"]["api"];
    let delivery_calls = api["calls"].as_u64().expect("calls");
    assert_eq!(api["calls_today"].as_u64(), Some(reads + delivery_calls));
    assert_eq!(snapshot.requests, reads + delivery_calls);
}

#[test]
fn throttled_and_failing_reads_are_retried_and_an_expired_token_is_renewed() {
    // Marketo's 606 inside HTTP 200 and 500s, seeded; tokens that die
    // after 1 s although stated to live an hour (601/602 mid-read).
    let chaos = fake::Chaos {
        seed: 11,
        p_429: 0.15,
        p_500: 0.1,
        p_drop_after_apply: 0.0,
    };
    let options = Options {
        activity_scan: 3,
        token_lifetime: Duration::from_millis(400),
        stated_lifetime: Some(Duration::from_secs(3600)),
        ..Options::default()
    };
    let (server, marketo) = start(
        options,
        open()
            .chaos(chaos)
            .exempt_from_chaos("/identity/oauth/token"),
    );
    let dir = project(&server.url());
    let lead = marketo.create_lead("alice@acme.example");
    for i in 0..12 {
        marketo.add_activity(lead, "Open Email", &ago(3, i), (1021, "N"), None, &[]);
    }
    let report = ok(run(dir.path(), NOW, &["--preview"]));
    assert_eq!(marketo_report(&report)["activities"], 12);
    let snapshot = server.snapshot();
    assert!(
        snapshot.throttled + snapshot.chaos_500 > 0,
        "chaos happened"
    );
    assert!(marketo.tokens_issued() >= 1);
}

#[test]
fn a_dry_run_still_reads_and_sends_nothing() {
    let (server, marketo) = start(Options::default(), open());
    let dir = project(&server.url());
    let lead = marketo.create_lead("carol@globex.example");
    marketo.add_activity(lead, "Click Email", &ago(2, 0), (1021, "N"), None, &[]);
    let report = ok(run(dir.path(), NOW, &["--dry-run"]));
    assert_eq!(marketo_report(&report)["activities"], 1);
    assert_eq!(report["audiences"]["B2B_Clicked_30d"], 1);
    assert_eq!(
        report["activations"]["nurture_marketo"]["status"],
        "dry_run"
    );
    assert!(marketo.list_names().is_empty(), "nothing was sent");
}

#[test]
fn wrong_credentials_and_an_unreachable_instance_are_r0011() {
    let (server, _marketo) = start(Options::default(), open());
    let dir = project(&server.url());
    let out = run_with(dir.path(), NOW, "wrong-secret", &[]);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(2), "{shown}");
    assert!(shown.contains("R0011"), "{shown}");
    assert!(shown.contains("source `marketo_activity`"), "{shown}");
    assert!(shown.contains(&server.url()), "names the instance: {shown}");
    assert!(shown.contains("Bad client credentials"), "{shown}");
    assert_no_secret(&shown);
    assert_no_secret_in_files(dir.path());

    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", closed.local_addr().expect("addr"));
    drop(closed);
    let dir = project(&url);
    let out = run(dir.path(), NOW, &[]);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(2), "{shown}");
    assert!(shown.contains("R0011"), "{shown}");
    assert!(
        shown.contains(&format!("source `marketo_activity` ({url})")),
        "{shown}"
    );
    assert!(shown.contains("could not connect"), "{shown}");
    assert_no_secret(&shown);
}

#[test]
fn an_unknown_activity_type_is_r0014() {
    let (server, _marketo) = start(Options::default(), open());
    let dir = project(&server.url());
    // `check` refuses a misspelt standard type (A0135) and lets a name
    // unlike any pass as a custom type (A0136); the instance does not have
    // this one.
    edit(
        dir.path(),
        "activity_types = [\"Open Email\", \"Click Email\"]",
        "activity_types = [\"Open Email\", \"Attended Partner Roundtable\"]",
    );
    let out = run(dir.path(), NOW, &[]);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(2), "{shown}");
    assert!(shown.contains("R0014"), "{shown}");
    assert!(
        shown.contains("the instance has no activity type `Attended Partner Roundtable`"),
        "{shown}"
    );
    assert_no_secret(&shown);
}

#[test]
fn activities_older_than_the_lookback_are_not_read() {
    // The lookback is 90 days from the evaluation time; nothing is
    // remembered between runs, so each reads all that is in it.
    let (server, marketo) = start(Options::default(), open());
    let dir = project(&server.url());
    let lead = marketo.create_lead("bob@acme.example");
    marketo.add_activity(lead, "Open Email", &ago(89, 0), (1021, "N"), None, &[]);
    marketo.add_activity(lead, "Open Email", &ago(91, 0), (1021, "N"), None, &[]);
    let counts: BTreeMap<&str, Value> = [NOW, LATER]
        .into_iter()
        .map(|now| (now, ok(run(dir.path(), now, &["--preview"]))))
        .map(|(now, r)| (now, marketo_report(&r)["activities"].clone()))
        .collect();
    assert_eq!(counts[NOW], 1, "the 91-day-old open is out of the lookback");
    assert_eq!(counts[LATER], 1);
}
