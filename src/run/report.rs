//! The run report: what one run read, evaluated and delivered, per source
//! and per activation, with the metrics of dataflow monitoring. Appended as
//! one JSON line per run to `<project>/.accord/runs.jsonl` (the run log) and
//! rendered as text for the CLI to print.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::io::Faults;
use super::time;
use crate::diag::{Code, Severity, codes};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    pub run_id: String,
    /// `completed`, or `failed` when the run stopped before its activations
    /// finished (the error is in `diagnostics`, R0107 unless it has a code of
    /// its own). Statuses of activations are per activation.
    #[serde(default)]
    pub status: String,
    pub project: String,
    pub environment: Option<String>,
    /// The evaluation time, RFC 3339.
    pub now: String,
    pub preview: bool,
    pub sources: BTreeMap<String, SourceReport>,
    pub links: Vec<LinkReport>,
    /// Members per audience (and `NAME.part`).
    pub audiences: BTreeMap<String, u64>,
    /// Members shared by two audiences, for `--preview`: `(a, b) -> n`,
    /// only pairs that share members.
    pub overlaps: Vec<Overlap>,
    pub activations: BTreeMap<String, ActivationReport>,
    /// Run-wide warnings, such as stale sources.
    pub warnings: Vec<String>,
    /// Coded problems found while running (`R0xxx`), in the order found.
    #[serde(default)]
    pub diagnostics: Vec<RunDiagnostic>,
    pub duration_ms: u64,
    /// Milliseconds per phase (`read`, `unify`, `audiences`, `activations`),
    /// to see where a long run spends its time.
    #[serde(default)]
    pub phases_ms: BTreeMap<String, u64>,
}

/// A coded problem found while running: the run-time counterpart of the
/// checker's diagnostics. There is no span to point at (the problem is in
/// the data, the state or a delivery), so the message names its subject
/// (`source \`crm_people\`: ...`) and `location` says where, when known.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunDiagnostic {
    /// The registered code, such as `R0001`.
    pub code: String,
    /// `error` or `warning`: the code's default unless the run raised it
    /// (a warning that blocks in a blocking environment becomes an error).
    pub severity: String,
    pub message: String,
    /// A data file and row (`data/people.csv:14`) or a spec file and line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
}

impl RunDiagnostic {
    /// A diagnostic with the code's registered severity.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        RunDiagnostic {
            code: code.as_str().to_string(),
            severity: code.info().severity.as_str().to_string(),
            message: message.into(),
            location: None,
            help: None,
        }
    }

    pub fn at(mut self, location: impl Into<String>) -> Self {
        self.location = Some(location.into());
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Raised to an error, for example in a blocking environment.
    pub fn error(mut self) -> Self {
        self.severity = Severity::Error.as_str().to_string();
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error.as_str()
    }

    /// The diagnostic as the CLI prints it (on stderr when it stops a run).
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        self.render_text(&mut s);
        s
    }

    fn render_text(&self, s: &mut String) {
        s.push_str(&format!(
            "{}[{}]: {}\n",
            self.severity, self.code, self.message
        ));
        if let Some(location) = &self.location {
            s.push_str(&format!("  --> {location}\n"));
        }
        if let Some(help) = &self.help {
            s.push_str(&format!("  = help: {help}\n"));
        }
    }
}

/// An error of the run's own code paths (reading, the engine, state writes)
/// that carries no code of its own stops the run as R0107: every run-time
/// error reaches the user and the log coded.
impl From<String> for RunDiagnostic {
    fn from(message: String) -> Self {
        RunDiagnostic::new(codes::run::RUN_FAILED, message)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SourceReport {
    pub schema: String,
    pub files: Vec<String>,
    pub rows: u64,
    pub bad_rows: u64,
    /// The first bad rows, `file:line: reason`.
    pub bad_row_samples: Vec<String>,
    /// The newest timestamp in the source, RFC 3339.
    pub newest: Option<String>,
    /// `fresh`, `stale` or `unknown` (no max_age or no timestamps).
    pub freshness: String,
}

/// How the people of a person schema link to accounts.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LinkReport {
    pub from: String,
    pub to: String,
    pub people: u64,
    pub by_key: u64,
    pub by_email_domain: u64,
    pub by_relation: u64,
    /// People with a key that names no account and no fallback match.
    pub unlinked: u64,
    pub accounts: u64,
    pub accounts_without_people: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Overlap {
    pub a: String,
    pub b: String,
    pub members: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ActivationReport {
    pub destination: String,
    pub destination_type: String,
    /// `delivered`, `unchanged`, `not_due`, `held` (the removal guard,
    /// R0103), `blocked`, `dry_run`, `preview`, `skipped` or `failed`.
    pub status: String,
    pub run_id: Option<String>,
    pub export: String,
    /// Candidate rows of the activated audiences (accounts or people).
    pub profiles_received: u64,
    pub created: u64,
    pub updated: u64,
    pub removed: u64,
    pub excluded_consent: u64,
    pub excluded_missing_identity: u64,
    pub excluded_policy: u64,
    pub failed: u64,
    /// Rows in the destination after the run.
    pub members: u64,
    pub files: u64,
    pub bytes: u64,
    /// Relative to the output folder.
    pub location: Option<String>,
    pub warnings: Vec<String>,
}

/// Bytes after the last line break of the log (0 when it ends in one or is
/// empty), read backwards from the end in blocks: the log grows with every
/// run, and only its tail matters.
fn partial_line(file: &mut std::fs::File) -> std::io::Result<u64> {
    use std::io::{Read, Seek, SeekFrom};
    let len = file.metadata()?.len();
    let mut end = len;
    let mut block = vec![0u8; 8192];
    while end > 0 {
        let start = end.saturating_sub(block.len() as u64);
        let n = (end - start) as usize;
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut block[..n])?;
        if let Some(i) = block[..n].iter().rposition(|&b| b == b'\n') {
            return Ok(len - (start + i as u64 + 1));
        }
        end = start;
    }
    Ok(len)
}

impl RunReport {
    /// Appends this report as one line to the run log, in one write. A log
    /// that ends in a partial line (a run killed while appending, an edit)
    /// gets its line ended first, in the same write, and the repair is
    /// reported (R0105) in this report, so this line stays whole and
    /// readable on its own. The caller holds the project lock, so nothing
    /// appends between the look at the end and the write.
    pub fn append_to_log(&mut self, project_root: &Path, faults: &Faults) -> Result<(), String> {
        let dir = project_root.join(".accord");
        let path = dir.join("runs.jsonl");
        let failed = |e: std::io::Error| format!("{}: {e}", path.display());
        faults.step();
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        faults.step();
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)
            .map_err(failed)?;
        let partial = partial_line(&mut file).map_err(failed)?;
        let mut line = Vec::new();
        if partial > 0 {
            line.push(b'\n');
            self.diagnostics.push(
                RunDiagnostic::new(
                    codes::run::LOG_PARTIAL_LINE,
                    format!(
                        "run log `.accord/runs.jsonl`: it ended in a partial line of {partial} bytes, \
                         which was ended before this report"
                    ),
                )
                .help("the partial line is a report cut short; tools reading the log skip lines that are not JSON"),
            );
        }
        serde_json::to_writer(&mut line, self).map_err(|e| e.to_string())?;
        line.push(b'\n');
        faults.step();
        file.write_all(&line).map_err(failed)
    }

    /// The report as people read it.
    pub fn render_text(&self) -> String {
        let mut s = String::new();
        let env = self
            .environment
            .as_deref()
            .map(|e| format!(" --env {e}"))
            .unwrap_or_default();
        s.push_str(&format!(
            "run {} of {}{} at {}{}\n",
            self.run_id,
            self.project,
            env,
            self.now,
            if self.preview {
                " (preview: nothing delivered)"
            } else {
                ""
            }
        ));
        s.push_str("\nsources\n");
        for (name, src) in &self.sources {
            s.push_str(&format!(
                "  {name:<28} {:<18} {:>9} rows  {:>5} bad  {}{}\n",
                src.schema,
                src.rows,
                src.bad_rows,
                src.freshness,
                src.newest
                    .as_deref()
                    .map(|n| format!(" (newest {n})"))
                    .unwrap_or_default()
            ));
            for sample in &src.bad_row_samples {
                s.push_str(&format!("      bad row: {sample}\n"));
            }
        }
        for link in &self.links {
            let pct = |n: u64| {
                if link.people == 0 {
                    0.0
                } else {
                    n as f64 * 100.0 / link.people as f64
                }
            };
            s.push_str(&format!(
                "\nlinks {} -> {}: {} people; by key {} ({:.1}%), by email domain {} ({:.1}%), by relation {} ({:.1}%), unlinked {} ({:.1}%); {} of {} accounts have no people\n",
                link.from,
                link.to,
                link.people,
                link.by_key,
                pct(link.by_key),
                link.by_email_domain,
                pct(link.by_email_domain),
                link.by_relation,
                pct(link.by_relation),
                link.unlinked,
                pct(link.unlinked),
                link.accounts_without_people,
                link.accounts
            ));
        }
        s.push_str("\naudiences\n");
        for (name, n) in &self.audiences {
            s.push_str(&format!("  {name:<44} {n:>9}\n"));
        }
        if self.preview && !self.overlaps.is_empty() {
            s.push_str("\noverlaps\n");
            for o in &self.overlaps {
                s.push_str(&format!("  {} & {}: {}\n", o.a, o.b, o.members));
            }
        }
        s.push_str("\nactivations\n");
        for (name, a) in &self.activations {
            s.push_str(&format!(
                "  {name} -> {} ({}, {}): {}\n",
                a.destination, a.destination_type, a.export, a.status
            ));
            s.push_str(&format!(
                "      received {}  created {}  updated {}  removed {}  members {}\n",
                a.profiles_received, a.created, a.updated, a.removed, a.members
            ));
            s.push_str(&format!(
                "      excluded: consent {}  missing identity {}  policy {}  failed {}\n",
                a.excluded_consent, a.excluded_missing_identity, a.excluded_policy, a.failed
            ));
            if a.files > 0 {
                s.push_str(&format!(
                    "      {} file{}, {} bytes{}\n",
                    a.files,
                    if a.files == 1 { "" } else { "s" },
                    a.bytes,
                    a.location
                        .as_deref()
                        .map(|l| format!(" in {l}"))
                        .unwrap_or_default()
                ));
            }
            for w in &a.warnings {
                s.push_str(&format!("      warning: {w}\n"));
            }
        }
        for w in &self.warnings {
            s.push_str(&format!("warning: {w}\n"));
        }
        if !self.diagnostics.is_empty() {
            s.push('\n');
        }
        for d in &self.diagnostics {
            d.render_text(&mut s);
        }
        let took = |ms: u64| {
            let secs = ms as f64 / 1000.0;
            if secs < 60.0 {
                format!("{secs:.2}s")
            } else {
                time::format_duration(ms as i64 * 1000)
            }
        };
        let phases: Vec<String> = ["read", "unify", "audiences", "activations"]
            .into_iter()
            .filter_map(|p| self.phases_ms.get(p).map(|ms| format!("{p} {}", took(*ms))))
            .collect();
        s.push_str(&format!("\ndone in {}", took(self.duration_ms)));
        if !phases.is_empty() {
            s.push_str(&format!(" ({})", phases.join(", ")));
        }
        s.push('\n');
        s
    }
}
