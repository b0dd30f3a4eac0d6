//! `accord run --watch` end to end: the built binary watching a scratch
//! copy of `tests/watch_projects/hook/` (a folder of account files, the
//! large accounts streamed to a loopback webhook fake and written as
//! files), as a user runs it.
//!
//! - files dropped, rewritten and removed reach the webhook as exactly
//!   their adds, updates and removals, each within seconds (the latency is
//!   measured and printed); hidden and temporary files wake nothing;
//! - a watch killed at any step of a delivery (the crash hook,
//!   `ACCORD_FAULT_AFTER`) and started again loses nothing and applies
//!   nothing twice, at the webhook and in the delivered files;
//! - SIGTERM while idle exits 0, the store committed and the lock free;
//!   while it holds the lock, another `accord run` is refused (R0102);
//! - usage errors exit 2 before anything runs;
//! - the example project (`specs/`): the latency of one change.
#![cfg(feature = "engine")]

#[path = "support/fake/mod.rs"]
mod fake;
#[path = "support/project.rs"]
mod project;
#[path = "support/fakes/webhook.rs"]
mod webhook_fake;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{self, Receiver as Lines};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fake::{FakeServer, Policy};
use webhook_fake::Receiver;

const SECRET: &str = "watch-signing-secret";
/// The deadline of a change reaching the destination.
const WITHIN: Duration = Duration::from_secs(10);

fn start_fake() -> (FakeServer, Arc<Receiver>) {
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

/// A scratch copy of the project with its webhook pointed at `server`.
fn project(server: &FakeServer) -> tempfile::TempDir {
    let temp = project::copy_of("tests/watch_projects/hook", "watch");
    let spec = temp.path().join("accord.toml");
    let text = std::fs::read_to_string(&spec).expect("read");
    std::fs::write(&spec, text.replace("http://127.0.0.1:9", &server.url())).expect("write");
    temp
}

fn accord(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_accord"));
    cmd.arg("run")
        .arg(dir)
        .args(["--env", "dev"])
        .args(args)
        .env("ACCORD_WATCH_HOOK_SECRET", SECRET)
        .env_remove("ACCORD_FAULT_AFTER");
    cmd
}

/// A plain `accord run` of the project.
fn run(dir: &Path, args: &[&str]) -> Output {
    accord(dir, args).output().expect("accord runs")
}

/// `accord run --watch` as a child: its stdout lines as they come, its
/// stderr kept. Killed when dropped, if still running.
struct Watching {
    child: Child,
    lines: Lines<String>,
    stderr: Arc<Mutex<String>>,
}

impl Watching {
    fn start(dir: &Path, fault_after: Option<u64>) -> Watching {
        let mut cmd = accord(dir, &["--watch", "--poll-interval", "1h"]);
        if let Some(n) = fault_after {
            cmd.env("ACCORD_FAULT_AFTER", n.to_string());
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("accord run --watch starts");
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let keep = stderr.clone();
        let err = child.stderr.take().expect("stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                keep.lock().unwrap().push_str(&format!("{line}\n"));
            }
        });
        Watching {
            child,
            lines,
            stderr,
        }
    }

    /// The next cycle's line, or `None` when none comes within `wait` (or
    /// the process ended).
    fn line_within(&self, wait: Duration) -> Option<String> {
        self.lines.recv_timeout(wait).ok()
    }

    /// The next cycle's line, which must come within [`WITHIN`].
    fn line(&self) -> String {
        self.line_within(WITHIN)
            .unwrap_or_else(|| panic!("no cycle line; stderr:\n{}", self.stderr()))
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    fn signal(&self, name: &str) {
        let sent = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success());
    }

    /// Waits for the process to end (at most `wait`).
    fn exit_within(&mut self, wait: Duration) -> std::process::ExitStatus {
        let until = Instant::now() + wait;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < until,
                "still running after {wait:?}; stderr:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the webhook accepted: (operation, key, name) in arrival order.
type Applied = Vec<(String, String, String)>;

fn applied(receiver: &Receiver) -> Applied {
    receiver
        .applied
        .lock()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a.operation.clone(),
                a.key.clone(),
                a.fields["name"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn change(operation: &str, key: &str, name: &str) -> (String, String, String) {
    (operation.into(), key.into(), name.into())
}

/// Waits until the webhook has accepted `n` members in all; returns how
/// long after `since` the last of them arrived.
fn arrived(receiver: &Receiver, n: usize, since: Instant, watching: &Watching) -> Duration {
    let until = Instant::now() + WITHIN;
    loop {
        {
            let applied = receiver.applied.lock().unwrap();
            if applied.len() >= n {
                return applied[n - 1].arrived.duration_since(since);
            }
        }
        assert!(
            Instant::now() < until,
            "the webhook got {:?}, not {n} members, within {WITHIN:?}; stderr:\n{}",
            applied(receiver),
            watching.stderr()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The `large_hook` part of a cycle line (`large_hook delivered +1 ~0 -0`).
fn hook_part(line: &str) -> &str {
    let start = line.find("large_hook").unwrap_or_else(|| panic!("{line}"));
    let rest = &line[start..];
    let end = rest.find([',', ';', '(']).unwrap_or(rest.len());
    rest[..end].trim()
}

fn write(dir: &Path, rel: &str, text: &str) {
    std::fs::write(dir.join(rel), text).expect("write");
}

const FIRST: &str = "accountId,name,employees\nA-001,Contoso,2000\nA-002,Fabrikam,500\nA-003,Northwind Traders,5000\n";

#[test]
fn dropped_files_reach_the_webhook_as_their_changes_within_seconds() {
    let (server, receiver) = start_fake();
    let scratch = project(&server);
    let dir = scratch.path();
    let mut watching = Watching::start(dir, None);

    let first = watching.line();
    assert!(first.contains(" start: "), "{first}");
    assert_eq!(
        hook_part(&first),
        "large_hook delivered +2 ~0 -0",
        "{first}"
    );
    assert_eq!(
        applied(&receiver),
        [
            change("add", "A-001", "Contoso"),
            change("add", "A-003", "Northwind Traders")
        ]
    );

    // A file dropped in, written in chunks a little apart (under the quiet
    // time): read whole, once.
    let path = dir.join("data/accounts/2026-12.csv");
    let chunks = [
        "accountId,name,employees\nA-004,Wide W",
        "orld Importers,1200\n",
    ];
    let mut file = std::fs::File::create(&path).expect("create");
    for (i, chunk) in chunks.iter().enumerate() {
        std::io::Write::write_all(&mut file, chunk.as_bytes()).expect("write");
        std::io::Write::flush(&mut file).expect("flush");
        if i == 0 {
            std::thread::sleep(Duration::from_millis(150));
        }
    }
    drop(file);
    let dropped = Instant::now();
    let added = arrived(&receiver, 3, dropped, &watching);
    let line = watching.line();
    assert!(
        line.contains(" change data/accounts/2026-12.csv: "),
        "{line}"
    );
    assert_eq!(hook_part(&line), "large_hook delivered +1 ~0 -0", "{line}");

    // A file rewritten: one account renamed, one no longer large.
    write(
        dir,
        "data/accounts/2026-11.csv",
        &FIRST
            .replace("Contoso,", "Contoso Ltd,")
            .replace("5000", "50"),
    );
    let rewritten = Instant::now();
    let updated = arrived(&receiver, 5, rewritten, &watching);
    let line = watching.line();
    assert_eq!(hook_part(&line), "large_hook delivered +0 ~1 -1", "{line}");

    // A file removed.
    std::fs::remove_file(&path).expect("remove");
    let removed_at = Instant::now();
    let removed = arrived(&receiver, 6, removed_at, &watching);
    let line = watching.line();
    assert!(
        line.contains(" change data/accounts/2026-12.csv: "),
        "{line}"
    );
    assert_eq!(hook_part(&line), "large_hook delivered +0 ~0 -1", "{line}");

    // Hidden and temporary files, and the run's own reads and writes
    // (`out/`, `.accord/`), wake nothing.
    write(dir, "data/accounts/.2026-12.csv.swp", "x");
    write(dir, "data/accounts/2026-12.csv.tmp", "x");
    write(dir, "data/accounts/notes.txt", "not a csv");
    if let Some(extra) = watching.line_within(Duration::from_secs(2)) {
        panic!("a cycle nothing should have woken: {extra}");
    }

    let mut batch_two = applied(&receiver)[2..].to_vec();
    batch_two[1..3].sort();
    assert_eq!(
        batch_two,
        [
            change("add", "A-004", "Wide World Importers"),
            change("add", "A-001", "Contoso Ltd"),
            change("remove", "A-003", "Northwind Traders"),
            change("remove", "A-004", "Wide World Importers"),
        ],
        "exactly the changes, each once"
    );
    // Each cycle is logged like any run.
    let log = std::fs::read_to_string(dir.join(".accord/runs.jsonl")).expect("the run log");
    assert_eq!(log.lines().count(), 4);

    eprintln!(
        "latency (file written -> request at the webhook): added {added:?}, updated and removed {updated:?}, file removed {removed:?}"
    );
    watching.signal("TERM");
    assert_eq!(watching.exit_within(WITHIN).code(), Some(0));
}

#[test]
fn sigterm_while_idle_exits_0_with_the_lock_released() {
    let (server, receiver) = start_fake();
    let scratch = project(&server);
    let dir = scratch.path();
    let mut watching = Watching::start(dir, None);
    let first = watching.line();
    assert_eq!(
        hook_part(&first),
        "large_hook delivered +2 ~0 -0",
        "{first}"
    );

    // The watcher holds the lock between cycles: another run is refused,
    // naming it.
    let refused = run(dir, &[]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("R0102"), "{stderr}");
    assert!(
        stderr.contains(&format!("pid {}", watching.child.id())),
        "{stderr}"
    );

    watching.signal("TERM");
    assert_eq!(watching.exit_within(WITHIN).code(), Some(0));
    assert!(
        watching.stderr().contains("SIGTERM"),
        "{}",
        watching.stderr()
    );

    // Free at once (no `--wait`), with the state committed: nothing is
    // left to finish or to send again.
    let after = run(dir, &["--format", "json"]);
    assert!(
        after.status.success(),
        "{}",
        String::from_utf8_lossy(&after.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&after.stdout).expect("a report");
    assert_eq!(report["activations"]["large_hook"]["status"], "unchanged");
    assert_eq!(report["warnings"], serde_json::json!([]));
    assert_eq!(applied(&receiver).len(), 2);
}

#[test]
fn usage_errors_exit_2_before_anything_runs() {
    let scratch = project::copy_of("tests/watch_projects/hook", "watch-usage");
    let dir = scratch.path();
    for (args, says) in [
        (
            &["--watch", "--poll-interval", "0s"][..],
            "`--poll-interval 0s` is not a duration",
        ),
        (
            &["--watch", "--poll-interval", "5 min"][..],
            "not a duration",
        ),
        (&["--poll-interval", "5m"][..], "--watch"),
        (&["--watch", "--now", "2026-11-28T12:00:00Z"][..], "--now"),
        (&["--watch", "--preview"][..], "--preview"),
    ] {
        let out = run(dir, args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    assert!(!dir.join(".accord").exists(), "nothing ran");
}

/// The rows of every delivered file under `out/` (its header first),
/// counted: what the file destination received, whatever the file names.
fn file_rows(dir: &Path) -> BTreeMap<String, u32> {
    let mut rows = BTreeMap::new();
    for entry in walkdir::WalkDir::new(dir.join("out")) {
        let entry = entry.expect("walk");
        let name = entry.file_name().to_string_lossy();
        if !entry.file_type().is_file() || name.starts_with('.') || !name.ends_with(".csv") {
            continue;
        }
        let text = std::fs::read_to_string(entry.path()).expect("read");
        for line in text.lines().skip(1) {
            *rows.entry(line.to_string()).or_default() += 1;
        }
    }
    rows
}

/// The changes after the first delivery: one account added, one renamed,
/// one no longer large.
fn change_the_data(dir: &Path) {
    write(
        dir,
        "data/accounts/2026-12.csv",
        "accountId,name,employees\nA-004,Wide World Importers,1200\n",
    );
    write(
        dir,
        "data/accounts/2026-11.csv",
        &FIRST
            .replace("Contoso,", "Contoso Ltd,")
            .replace("5000", "50"),
    );
}

#[test]
fn a_watch_killed_mid_delivery_and_restarted_loses_nothing_and_repeats_nothing() {
    // The reference: the same steps, never killed.
    let (server, receiver) = start_fake();
    let scratch = project(&server);
    let dir = scratch.path();
    assert!(run(dir, &[]).status.success());
    change_the_data(dir);
    let watching = Watching::start(dir, None);
    let line = watching.line();
    assert_eq!(hook_part(&line), "large_hook delivered +1 ~1 -1", "{line}");
    drop(watching);
    let expected_members = receiver.members("large_hook", "B2B_Large");
    let expected_files = file_rows(dir);
    assert_eq!(expected_members.len(), 2);
    drop((scratch, server));

    let mut n = 0u64;
    let mut killed_deliveries = 0;
    loop {
        let (server, receiver) = start_fake();
        let scratch = project(&server);
        let dir = scratch.path();
        assert!(run(dir, &[]).status.success());
        change_the_data(dir);
        // Its first cycle delivers the changes; the hook aborts it before
        // its N+1-th durable step (a file operation, a store transaction,
        // a request), like a kill -9.
        let mut killed = Watching::start(dir, Some(n));
        let finished = match killed.line_within(WITHIN) {
            Some(line) => {
                assert_eq!(hook_part(&line), "large_hook delivered +1 ~1 -1", "{line}");
                true
            }
            None => {
                let status = killed.exit_within(WITHIN);
                assert!(!status.success(), "killed after {n}: {status:?}");
                killed_deliveries += 1;
                false
            }
        };
        drop(killed);
        // Started again: it finishes what the kill interrupted, then goes
        // on watching.
        let watching = Watching::start(dir, None);
        let line = watching.line();
        assert!(line.contains(" start: "), "killed after {n}: {line}");
        assert_eq!(
            receiver.members("large_hook", "B2B_Large"),
            expected_members,
            "killed after {n}: {line}\n{}",
            watching.stderr()
        );
        let snapshot = server.snapshot();
        assert!(
            snapshot.max_mutations() <= 1,
            "killed after {n}: a change applied twice: {:?}",
            snapshot.mutations
        );
        assert_eq!(
            file_rows(dir),
            expected_files,
            "killed after {n}: the delivered files differ"
        );
        drop(watching);
        drop((scratch, server));
        if finished {
            break;
        }
        // Every step early on, then every third: the steps repeat per file
        // and per request.
        n += if n < 12 { 1 } else { 3 };
    }
    assert!(
        killed_deliveries > 5,
        "the cycle took only {killed_deliveries} steps"
    );
}

#[test]
fn a_change_in_the_example_project_is_delivered_within_seconds() {
    let scratch = project::scratch("watch-example");
    let dir = scratch.path();
    let mut watching = Watching::start(dir, None);
    let first = watching.line();
    assert!(first.contains(" start: "), "{first}");
    // A new quarter of webinar attendance, as the platform drops it.
    let q4 = std::fs::read_to_string(dir.join("data/webinar_attended/2026-q4.csv")).expect("q4");
    let written = Instant::now();
    write(
        dir,
        "data/webinar_attended/2027-q1.csv",
        &q4.replace("WA-", "WX-"),
    );
    let line = watching.line();
    let latency = written.elapsed();
    assert!(
        line.contains(" change data/webinar_attended/2027-q1.csv: "),
        "{line}"
    );
    eprintln!(
        "example project: first cycle `{first}`; latency (file written -> cycle delivered and logged) {latency:?}"
    );
    assert!(latency < WITHIN, "{latency:?}");
    watching.signal("INT");
    assert_eq!(watching.exit_within(WITHIN).code(), Some(0));
}
