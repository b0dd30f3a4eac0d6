//! `accord run` delivering to an API end to end: the example of a small
//! project (`tests/api_projects/marketo/`) run by the built binary against a
//! loopback Marketo fake, as a user runs it. The delivery core and each
//! vendor have their own tests (`deliver_*.rs`); this one proves the run
//! around them: planning against the store's ledger, reruns that send
//! nothing, changes that send only the difference, dry runs that send
//! nothing and keep the store, missing secrets (R0109), members read back
//! from a spill file, and a run killed at every file operation, store
//! write and request, then finished by the next run with the fake in
//! exactly the target state.
#![cfg(feature = "engine")]

#[path = "support/fake/mod.rs"]
mod fake;
#[path = "support/fakes/marketo.rs"]
mod marketo_fake;
#[path = "support/project.rs"]
mod project;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use fake::{FakeServer, Policy};
use marketo_fake::{Marketo, Options};

const NOW: &str = "2026-11-28T12:00:00Z";
const LATER: &str = "2026-11-28T13:00:00Z";

/// A scratch copy of the project with `endpoint` pointed at `url`.
fn project(url: &str) -> tempfile::TempDir {
    let temp = project::copy_of("tests/api_projects/marketo", "api");
    let spec = temp.path().join("accord.toml");
    let text = std::fs::read_to_string(&spec).expect("read");
    std::fs::write(&spec, text.replace("http://127.0.0.1:9", url)).expect("write");
    temp
}

fn run(dir: &Path, now: &str, fault_after: Option<u64>, extra: &[&str]) -> Output {
    run_in_chunks(dir, now, fault_after, extra, None)
}

/// [`run`], its API changes planned and sent `chunk` members at a time
/// (the run's test hook), so that four members cross chunk edges.
fn run_in_chunks(
    dir: &Path,
    now: &str,
    fault_after: Option<u64>,
    extra: &[&str],
    chunk: Option<u32>,
) -> Output {
    let mut cmd = command(dir, now, extra);
    if let Some(n) = chunk {
        cmd.env("ACCORD_API_CHUNK", n.to_string());
    }
    if let Some(n) = fault_after {
        cmd.env("ACCORD_FAULT_AFTER", n.to_string());
    }
    cmd.output().expect("accord runs")
}

/// `accord run` of the project at `now`, with the fake's secrets and no
/// test hook.
fn command(dir: &Path, now: &str, extra: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_accord"));
    cmd.arg("run")
        .arg(dir)
        .args(["--env", "test", "--now", now, "--format", "json"])
        .args(extra)
        .env("MARKETO_CLIENT_ID", "fake-client")
        .env("MARKETO_CLIENT_SECRET", "fake-secret");
    for hook in [
        "ACCORD_API_CHUNK",
        "ACCORD_FAULT_AFTER",
        "ACCORD_SPILL_MEMBERS_BY",
    ] {
        cmd.env_remove(hook);
    }
    cmd
}

/// The run report of a run that must have succeeded.
fn ok(out: Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("a JSON report")
}

fn status(report: &serde_json::Value) -> &str {
    report["activations"]["nurture_marketo"]["status"]
        .as_str()
        .expect("a status")
}

fn emails(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn start() -> (FakeServer, Arc<Marketo>) {
    Marketo::start(Policy::open(), Options::default())
}

/// What the data of the project puts in each list (Eve has no email).
fn expected_first(marketo: &Marketo) {
    assert_eq!(
        marketo.members("accord_B2B_Software"),
        emails(&[
            "alice@acme.example",
            "bob@acme.example",
            "dan@initech.example"
        ])
    );
    assert_eq!(
        marketo.members("accord_B2B_Fintech"),
        emails(&["carol@globex.example"])
    );
}

#[test]
fn a_run_delivers_and_a_rerun_sends_nothing() {
    let (server, marketo) = start();
    let dir = project(&server.url());
    let report = ok(run(dir.path(), NOW, None, &[]));
    assert_eq!(status(&report), "delivered");
    let api = &report["activations"]["nurture_marketo"]["api"];
    assert_eq!(api["planned"], 4);
    assert_eq!(api["accepted"], 4);
    assert_eq!(api["rejected"], 0);
    expected_first(&marketo);
    assert_eq!(
        marketo.lead("alice@acme.example").expect("a lead").fields["company"],
        "Acme"
    );
    let requests = server.snapshot().requests;

    // Unchanged data: nothing to send, not even a token request.
    let report = ok(run(dir.path(), LATER, None, &[]));
    assert_eq!(status(&report), "unchanged");
    assert_eq!(server.snapshot().requests, requests);
}

#[test]
fn a_change_sends_only_the_difference() {
    change_sends_only_the_difference(None);
}

/// The same, the members taken a row at a time and spilled (the run's
/// test hook): each audience's changes are planned from the spill file,
/// from the batch that holds its first member (`B2B_Software`, planned
/// first, sorts after `B2B_Fintech`).
#[test]
fn members_spilled_send_what_members_held_send() {
    change_sends_only_the_difference(Some(1));
}

fn change_sends_only_the_difference(spill_members_by: Option<u32>) {
    let (server, marketo) = start();
    let dir = project(&server.url());
    let deliver = |now: &str| {
        let mut cmd = command(dir.path(), now, &[]);
        if let Some(rows) = spill_members_by {
            cmd.env("ACCORD_SPILL_MEMBERS_BY", rows.to_string());
        }
        let report = ok(cmd.output().expect("accord runs"));
        let spilled = &report["activations"]["nurture_marketo"]["members_spilled"];
        assert_eq!(
            spilled.as_u64().is_some_and(|b| b > 0),
            spill_members_by.is_some()
        );
        report
    };
    deliver(NOW);
    expected_first(&marketo);
    // Bob leaves, Dan's account becomes Fintech, Alice gets a new name.
    std::fs::write(
        dir.path().join("data/people.csv"),
        "personId,accountId,email,firstName\np1,a1,alice@acme.example,Alicia\np3,a2,carol@globex.example,Carol\np4,a3,dan@initech.example,Dan\n",
    )
    .expect("write");
    std::fs::write(
        dir.path().join("data/accounts.csv"),
        "accountId,name,industry,updatedAt\na1,Acme,Software,2026-11-27T10:00:00Z\na2,Globex,Fintech,2026-11-27T10:00:00Z\na3,Initech,Fintech,2026-11-27T10:00:00Z\n",
    )
    .expect("write");
    let report = deliver(LATER);
    assert_eq!(status(&report), "delivered");
    assert_eq!(
        marketo.members("accord_B2B_Software"),
        emails(&["alice@acme.example"])
    );
    assert_eq!(
        marketo.members("accord_B2B_Fintech"),
        emails(&["carol@globex.example", "dan@initech.example"])
    );
    assert_eq!(
        marketo.lead("alice@acme.example").expect("a lead").fields["firstName"],
        "Alicia"
    );
    // Alice updated, Bob and Dan removed from Software, Dan added to Fintech.
    let api = &report["activations"]["nurture_marketo"]["api"];
    assert_eq!(api["planned"], 4, "{api}");
    assert_eq!(marketo.list_names().len(), 2, "no list is created twice");
}

#[test]
fn a_dry_run_sends_nothing_and_keeps_the_store() {
    let (server, marketo) = start();
    let dir = project(&server.url());
    let report = ok(run(dir.path(), NOW, None, &["--dry-run"]));
    assert_eq!(status(&report), "dry_run");
    assert_eq!(server.snapshot().requests, 0);
    let api = &report["activations"]["nurture_marketo"]["api"];
    let written = api["written"][0].as_str().expect("a requests file");
    let requests = std::fs::read_to_string(dir.path().join(written)).expect("requests");
    assert!(
        requests.contains("<lead id of alice@acme.example>"),
        "{requests}"
    );
    assert!(!requests.contains("fake-secret"), "no secret in a dump");
    // The store did not advance: a live run sends everything.
    let report = ok(run(dir.path(), LATER, None, &[]));
    assert_eq!(status(&report), "delivered");
    expected_first(&marketo);
}

/// A dry run planned a member at a time describes the same members, and
/// looks each list up once, as a live run in chunks does.
#[test]
fn a_dry_run_in_chunks_looks_each_list_up_once() {
    let (server, _marketo) = start();
    let dir = project(&server.url());
    let lines = |chunk| {
        let report = ok(run_in_chunks(dir.path(), NOW, None, &["--dry-run"], chunk));
        let api = &report["activations"]["nurture_marketo"]["api"];
        assert_eq!(api["planned"], 4, "{api}");
        let written = api["written"][0].as_str().expect("a requests file");
        let text = std::fs::read_to_string(dir.path().join(written)).expect("requests");
        let requests: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("a request"))
            .collect();
        (requests, api["calls"].clone())
    };
    let (whole, whole_calls) = lines(None);
    let (chunked, chunked_calls) = lines(Some(1));
    let paths = |requests: &[serde_json::Value], part: &str| -> usize {
        requests
            .iter()
            .filter(|r| r["url"].as_str().is_some_and(|u| u.contains(part)))
            .count()
    };
    // Found by name, else created: once per audience either way.
    for part in ["/staticList/byName.json", "/staticLists.json"] {
        assert_eq!(paths(&chunked, part), 2, "{part}");
        assert_eq!(paths(&whole, part), 2, "{part}");
    }
    let leads = |requests: &[serde_json::Value]| -> BTreeSet<String> {
        let text = serde_json::to_string(requests).expect("json");
        ["alice", "bob", "carol", "dan"]
            .into_iter()
            .filter(|who| text.contains(&format!("{who}@")))
            .map(String::from)
            .collect()
    };
    assert_eq!(leads(&whole), leads(&chunked));
    assert_eq!(leads(&chunked).len(), 4);
    assert!(chunked.len() > whole.len(), "members go a request each");
    assert!(chunked_calls.as_u64() > whole_calls.as_u64());
    assert_eq!(server.snapshot().requests, 0);
}

#[test]
fn a_missing_secret_fails_the_activation_with_r0109() {
    let (server, _marketo) = start();
    let dir = project(&server.url());
    let out = Command::new(env!("CARGO_BIN_EXE_accord"))
        .arg("run")
        .arg(dir.path())
        .args(["--env", "test", "--now", NOW])
        .env_remove("MARKETO_CLIENT_ID")
        .env_remove("MARKETO_CLIENT_SECRET")
        .output()
        .expect("accord runs");
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("R0109"), "{text}");
    assert!(text.contains("MARKETO_CLIENT_ID"), "{text}");
    assert_eq!(server.snapshot().requests, 0);
}

#[test]
fn a_killed_run_is_finished_by_the_next_one() {
    killed_runs_are_finished(None);
}

/// The same, the changes planned and sent a member at a time: a run killed
/// between chunks leaves the ledger at a chunk's edge, and the next run
/// plans from there.
#[test]
fn a_run_killed_between_chunks_is_finished_by_the_next_one() {
    killed_runs_are_finished(Some(1));
}

fn killed_runs_are_finished(chunk: Option<u32>) {
    let mut n = 0u64;
    loop {
        let (server, marketo) = start();
        let dir = project(&server.url());
        let killed = run_in_chunks(dir.path(), NOW, Some(n), &[], chunk);
        let finished = killed.status.success();
        ok(run_in_chunks(dir.path(), NOW, None, &[], chunk));
        expected_first(&marketo);
        assert_eq!(
            marketo.list_names().len(),
            2,
            "killed after {n}: a list created twice"
        );
        let again = ok(run_in_chunks(dir.path(), LATER, None, &[], chunk));
        assert_eq!(
            status(&again),
            "unchanged",
            "killed after {n}: the rerun left work"
        );
        if finished {
            break;
        }
        n += 1;
        assert!(n < 500, "the run never finished");
    }
    assert!(n > 10, "the fault points were reached ({n})");
}
