//! Alerts end to end: the built binary runs `tests/alert_projects/drops`
//! against an alert receiver on loopback (a signed webhook and a Slack
//! incoming webhook, `support/fakes/alerts.rs`), with the audience's data
//! changed between runs: a drop fires once per breach (not again while it
//! persists, again after it recovers and drops again), `every_run` fires
//! in each run, an error exits 1 and a warning does not, the signature
//! verifies, Slack gets its payload, a 500 is retried, a send that fails is
//! R0025 and is sent again by the next run, a dry run describes and sends
//! nothing, and the URLs and the key show nowhere.
#![cfg(feature = "engine")]

#[path = "support/fakes/alerts.rs"]
mod alerts_fake;
#[path = "support/fake/mod.rs"]
mod fake;
#[path = "support/project.rs"]
mod project;

use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use alerts_fake::{Receiver, SLACK_PATH, WEBHOOK_PATH};
use fake::{FakeServer, Policy};
use serde_json::Value;

const SECRET: &str = "alert-signing-k3y-5ecret";

const ALL: &str = "accountId,name,employees\na1,Acme,5000\na2,Globex,1200\na3,Initech,1500\na4,Umbrella,1000\na5,Hooli,3000\na6,Small,10\n";
/// Three of the five large accounts: a drop of 40%.
const SHRUNK: &str =
    "accountId,name,employees\na1,Acme,5000\na2,Globex,1200\na3,Initech,1500\na6,Small,10\n";

fn start() -> (FakeServer, Arc<Receiver>) {
    let slot = Arc::new(Mutex::new(None));
    let keep = slot.clone();
    let server = FakeServer::start(Policy::open(), move |stats| {
        let (router, receiver) = Receiver::router(SECRET, stats);
        *keep.lock().unwrap() = Some(receiver);
        router
    });
    let receiver = slot.lock().unwrap().take().unwrap();
    (server, receiver)
}

struct Project {
    dir: tempfile::TempDir,
    webhook_url: String,
    slack_url: String,
}

impl Project {
    fn new(server: &FakeServer) -> Project {
        Project {
            dir: project::copy_of("tests/alert_projects/drops", "alerts"),
            webhook_url: format!("{}{WEBHOOK_PATH}", server.url()),
            slack_url: format!("{}{SLACK_PATH}", server.url()),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn data(&self, csv: &str) {
        std::fs::write(self.path().join("data/accounts.csv"), csv).expect("write the data");
    }

    /// `accord run --all` at hour `hour` of 2026-11-28, JSON report: the
    /// activation is daily, and these runs are about alerts, not schedules.
    fn run(&self, hour: u32, extra: &[&str]) -> Output {
        self.run_at(&format!("2026-11-28T{hour:02}:00:00Z"), &["--all"], extra)
    }

    /// `accord run` at `now` as a scheduler would start it, JSON report.
    fn run_at(&self, now: &str, select: &[&str], extra: &[&str]) -> Output {
        let out = Command::new(env!("CARGO_BIN_EXE_accord"))
            .arg("run")
            .arg(self.path())
            .args(["--env", "dev", "--format", "json", "--now", now])
            .args(select)
            .args(extra)
            .env("ALERT_WEBHOOK_URL", &self.webhook_url)
            .env("ALERT_SECRET", SECRET)
            .env("SLACK_WEBHOOK_URL", &self.slack_url)
            .env_remove("ACCORD_FAULT_AFTER")
            .output()
            .expect("accord runs");
        self.no_secret_in(&String::from_utf8_lossy(&out.stdout), "stdout");
        self.no_secret_in(&String::from_utf8_lossy(&out.stderr), "stderr");
        out
    }

    /// Neither URL (nor its token) nor the key is in `text`.
    fn no_secret_in(&self, text: &str, what: &str) {
        for secret in [
            SECRET,
            &self.webhook_url,
            &self.slack_url,
            "T0KEN",
            WEBHOOK_PATH,
            SLACK_PATH,
        ] {
            assert!(
                !text.contains(secret),
                "`{secret}` shows in {what}:\n{text}"
            );
        }
    }

    /// Every file the runs wrote under `.accord/`: the log, dry-run
    /// requests, and the store (read as bytes: a URL or key written into
    /// it would show as text).
    fn no_secret_in_files(&self) {
        for entry in walkdir::WalkDir::new(self.path().join(".accord")) {
            let entry = entry.expect("walk .accord");
            if entry.file_type().is_file() {
                let bytes = std::fs::read(entry.path()).expect("read");
                self.no_secret_in(
                    &String::from_utf8_lossy(&bytes),
                    &entry.path().display().to_string(),
                );
            }
        }
    }
}

fn report(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not a JSON report ({e}):\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

#[test]
fn a_drop_fires_once_per_breach_and_every_run_fires_each_run() {
    let (server, receiver) = start();
    let p = Project::new(&server);

    // The first run has nothing to compare with.
    let first = p.run(1, &[]);
    assert_eq!(
        code(&first),
        0,
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(report(&first).get("alerts").is_none());

    // 5 -> 3 members: both alerts fire; the error one fails the run.
    p.data(SHRUNK);
    let second = p.run(2, &[]);
    let r = report(&second);
    assert_eq!(code(&second), 1, "an error alert fired");
    let shrinks = &r["alerts"]["shrinks"];
    assert_eq!(shrinks["fired"], true);
    assert_eq!(shrinks["notified"], "sent");
    assert_eq!(shrinks["figures"]["previous"], 5);
    assert_eq!(shrinks["figures"]["current"], 3);
    assert_eq!(shrinks["figures"]["ratio"], 0.4);
    assert_eq!(r["alerts"]["every"]["notified"], "sent");
    let hooks = receiver.webhooks();
    assert_eq!(hooks.len(), 1);
    assert_eq!(receiver.bad_signatures.load(Ordering::SeqCst), 0);
    let body = &hooks[0];
    assert_eq!(body["alert"], "shrinks");
    assert_eq!(body["on"], "audience.B2B_Large");
    assert_eq!(body["when"], "size_drop");
    assert_eq!(body["severity"], "error");
    assert_eq!(body["project"], "drops");
    assert_eq!(body["environment"], "dev");
    assert_eq!(body["run_id"], r["run_id"]);
    assert_eq!(body["at"], "2026-11-28T02:00:00Z");
    assert_eq!(body["figures"], shrinks["figures"]);
    assert!(
        body["reason"]
            .as_str()
            .unwrap()
            .starts_with("audience `B2B_Large` fell from 5 to 3 members (-40%)"),
        "{body}"
    );
    // Slack's payload: an object with a text, nothing else.
    let slack = receiver.slack();
    assert_eq!(slack.len(), 1);
    assert_eq!(
        slack[0].as_object().map(|o| o.len()),
        Some(1),
        "{}",
        slack[0]
    );
    let text = slack[0]["text"].as_str().unwrap();
    assert!(
        text.starts_with(
            "[warning] accord alert `every` (size_drop on audience.B2B_Large) in drops --env dev"
        ),
        "{text}"
    );

    // The drop persists: `shrinks` is still breached but not sent again,
    // and the run exits 0; `every` (a warning) is sent again.
    let third = p.run(3, &[]);
    let r = report(&third);
    assert_eq!(code(&third), 0, "a standing breach fires nothing");
    assert_eq!(r["alerts"]["shrinks"]["fired"], false);
    assert_eq!(
        r["alerts"]["shrinks"]["breached_since"],
        report(&second)["run_id"]
    );
    assert_eq!(r["alerts"]["every"]["fired"], true);
    assert_eq!(receiver.webhooks().len(), 1);
    assert_eq!(receiver.slack().len(), 2);

    // It recovers: no alert holds, both re-arm.
    p.data(ALL);
    let fourth = p.run(4, &[]);
    assert_eq!(code(&fourth), 0);
    assert!(report(&fourth).get("alerts").is_none());
    assert_eq!(receiver.webhooks().len(), 1);
    assert_eq!(receiver.slack().len(), 2);

    // And drops again: fired again.
    p.data(SHRUNK);
    let fifth = p.run(5, &[]);
    assert_eq!(code(&fifth), 1);
    assert_eq!(report(&fifth)["alerts"]["shrinks"]["fired"], true);
    assert_eq!(receiver.webhooks().len(), 2);
    assert_eq!(receiver.slack().len(), 3);
    assert_eq!(receiver.bad_signatures.load(Ordering::SeqCst), 0);

    // The text report says the same, without a secret.
    p.data(ALL);
    p.run(6, &[]);
    p.data(SHRUNK);
    let text = Command::new(env!("CARGO_BIN_EXE_accord"))
        .arg("run")
        .arg(p.path())
        .args(["--env", "dev", "--now", "2026-11-28T07:00:00Z", "--all"])
        .env("ALERT_WEBHOOK_URL", &p.webhook_url)
        .env("ALERT_SECRET", SECRET)
        .env("SLACK_WEBHOOK_URL", &p.slack_url)
        .output()
        .expect("accord runs");
    let stdout = String::from_utf8_lossy(&text.stdout);
    p.no_secret_in(&stdout, "the text report");
    assert!(
        stdout.contains("\nalerts\n  every (warning) on audience.B2B_Large, size_drop: fired\n"),
        "{stdout}"
    );
    assert!(stdout.contains("      notify webhook: sent\n"), "{stdout}");

    // Half an hour later nothing is due: the audience is not evaluated, so
    // the alerts wait for the next run that evaluates it, without a warning.
    let idle = p.run_at("2026-11-28T07:30:00Z", &[], &[]);
    let r = report(&idle);
    assert_eq!(r["activations"]["large_files"]["status"], "not_due");
    assert!(r.get("alerts").is_none(), "{r}");
    assert!(!String::from_utf8_lossy(&idle.stdout).contains("R0026"));
    p.no_secret_in_files();
    drop(server);
}

#[test]
fn a_500_is_retried_and_a_send_that_keeps_failing_is_r0025_then_sent_by_the_next_run() {
    let (server, receiver) = start();
    let p = Project::new(&server);
    p.run(1, &[]);
    p.data(SHRUNK);

    // Two 500s, then the receiver answers: `every` (first in name order)
    // is sent on its third attempt, `shrinks` on its first.
    receiver.fail_next.store(2, Ordering::SeqCst);
    let out = p.run(2, &[]);
    let r = report(&out);
    assert_eq!(r["alerts"]["every"]["notified"], "sent");
    assert_eq!(r["alerts"]["shrinks"]["notified"], "sent");
    assert_eq!(receiver.slack().len(), 1);
    assert_eq!(receiver.webhooks().len(), 1);
    assert_eq!(
        receiver.arrivals.load(Ordering::SeqCst),
        4,
        "3 to Slack, 1 webhook"
    );

    // Recover, drop again with the receiver down for every attempt.
    p.data(ALL);
    p.run(3, &[]);
    p.data(SHRUNK);
    receiver.fail_next.store(100, Ordering::SeqCst);
    let out = p.run(4, &[]);
    let r = report(&out);
    assert_eq!(code(&out), 1, "the error alert still fails the run");
    assert_eq!(r["alerts"]["shrinks"]["fired"], true);
    assert_eq!(r["alerts"]["shrinks"]["notified"], "failed");
    let warnings: Vec<&Value> = r["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["code"] == "R0025")
        .collect();
    assert_eq!(warnings.len(), 2, "{}", r["diagnostics"]);
    assert_eq!(warnings[0]["severity"], "warning");
    let message = warnings[0]["message"].as_str().unwrap();
    assert!(
        message.contains("gave up after 4 attempts; last: answered 500"),
        "{message}"
    );

    // The receiver is back: the next run, the drop still standing, sends
    // what could not be sent, once.
    receiver.fail_next.store(0, Ordering::SeqCst);
    let out = p.run(5, &[]);
    let r = report(&out);
    assert_eq!(r["alerts"]["shrinks"]["fired"], true);
    assert_eq!(r["alerts"]["shrinks"]["notified"], "sent");
    assert_eq!(receiver.webhooks().len(), 2);
    let out = p.run(6, &[]);
    assert_eq!(report(&out)["alerts"]["shrinks"]["fired"], false);
    assert_eq!(receiver.webhooks().len(), 2);
    p.no_secret_in_files();
    drop(server);
}

#[test]
fn a_dry_run_describes_the_requests_sends_nothing_and_keeps_the_breach_state() {
    let (server, receiver) = start();
    let p = Project::new(&server);
    p.run(1, &[]);
    p.data(SHRUNK);
    let out = p.run(2, &["--dry-run"]);
    let r = report(&out);
    assert_eq!(code(&out), 1, "the error alert fired, if only on paper");
    assert_eq!(r["dry_run"], true);
    assert_eq!(r["alerts"]["shrinks"]["notified"], "dry_run");
    let written = r["alerts"]["shrinks"]["written"].as_str().unwrap();
    assert_eq!(
        written,
        format!(
            ".accord/runs/{}/alerts.jsonl",
            r["run_id"].as_str().unwrap()
        )
    );
    assert_eq!(receiver.arrivals.load(Ordering::SeqCst), 0, "nothing sent");
    let lines: Vec<Value> = std::fs::read_to_string(p.path().join(written))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    let every = &lines[0];
    assert_eq!(every["alert"], "every");
    assert_eq!(every["request"]["url"], "<env:SLACK_WEBHOOK_URL>");
    let shrinks = &lines[1];
    assert_eq!(shrinks["request"]["url"], "<env:ALERT_WEBHOOK_URL>");
    assert_eq!(
        shrinks["request"]["headers"]["X-Accord-Signature"],
        "<redacted>"
    );
    assert_eq!(shrinks["request"]["body"]["alert"], "shrinks");

    // The dry run is no baseline and recorded no breach: the live run
    // after it compares with run 1 and fires, for real.
    let out = p.run(3, &[]);
    assert_eq!(report(&out)["alerts"]["shrinks"]["notified"], "sent");
    assert_eq!(receiver.webhooks().len(), 1);
    p.no_secret_in_files();
    drop(server);
}

#[test]
fn a_missing_secret_is_r0025_without_naming_a_value() {
    let (server, receiver) = start();
    let p = Project::new(&server);
    p.run(1, &[]);
    p.data(SHRUNK);
    let out = Command::new(env!("CARGO_BIN_EXE_accord"))
        .arg("run")
        .arg(p.path())
        .args([
            "--env",
            "dev",
            "--format",
            "json",
            "--now",
            "2026-11-28T02:00:00Z",
        ])
        .env("ALERT_WEBHOOK_URL", &p.webhook_url)
        .env_remove("ALERT_SECRET")
        .env("SLACK_WEBHOOK_URL", &p.slack_url)
        .output()
        .expect("accord runs");
    let r = report(&out);
    let sent: Vec<&str> = r["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["code"] == "R0025")
        .map(|d| d["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        sent,
        ["alert `shrinks`: not sent to webhook: the secret `secret` is not set (env ALERT_SECRET)"]
    );
    assert_eq!(receiver.webhooks().len(), 0);
    assert_eq!(receiver.slack().len(), 1);
    p.no_secret_in(&String::from_utf8_lossy(&out.stdout), "stdout");
    drop(server);
}
