//! Run history (`accord status`): what the run log, `.accord/runs.jsonl`,
//! says of each activation's last runs and of each audience's size over
//! time.
//!
//! Input: the log's text. Output: a [`History`] (plain data; the CLI prints
//! it as text or JSON). Pure but for [`read`]. Outside the `engine` gate:
//! reading past runs needs no engine. A line that is not a run report (a
//! hand edit, a partial line a crash left) is counted and named by its line
//! number, never skipped silently.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use super::report::{ActivationStatus, RunReport, RunStatus};

/// The run log of the project in `root`, read whole; `None` when no run
/// has written one yet.
pub fn read(root: &Path) -> Result<Option<String>, String> {
    let path = root.join(".accord").join("runs.jsonl");
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct History {
    /// The project's name, from its last run.
    pub project: Option<String>,
    /// Runs in the log (previews are not logged).
    pub runs: u64,
    pub failed_runs: u64,
    /// When the last run evaluated (`now`), RFC 3339.
    pub last_run: Option<String>,
    /// Per activation, its last runs, newest first.
    pub activations: BTreeMap<String, Vec<ActivationRun>>,
    /// Per activation, when its schedule next calls for a delivery, as its
    /// last logged run left it.
    pub schedules: BTreeMap<String, NextDue>,
    /// Per audience, its size in the last runs that evaluated it, oldest
    /// first.
    pub audiences: BTreeMap<String, Vec<Size>>,
    /// Line numbers (1-based) of lines that are not run reports.
    pub unreadable_lines: Vec<u64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ActivationRun {
    pub run_id: String,
    /// The run's evaluation time, RFC 3339.
    pub at: String,
    pub status: ActivationStatus,
    pub destination: String,
    pub created: u64,
    pub updated: u64,
    pub removed: u64,
    /// Refused by the destination (API destinations) or failed rows.
    pub rejected: u64,
    /// Rows in the destination after the run.
    pub members: u64,
    /// The whole run's duration (activations share a run).
    pub run_duration_ms: u64,
}

/// When an activation is next due, from the last run that logged it.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct NextDue {
    /// As written: `daily@02:00`, `every 6h`, `streaming`.
    pub schedule: String,
    /// RFC 3339; absent: due on every run (streaming, or never delivered).
    pub next_due: Option<String>,
    /// Whether `next_due` had come by that run's time: the window is
    /// unserved, and the next run delivers.
    pub overdue: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Size {
    pub at: String,
    pub members: u64,
}

/// The history in `log`, keeping the last `last` runs of each activation.
pub fn history(log: &str, last: usize) -> History {
    let mut h = History::default();
    for (i, line) in log.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let Ok(report) = serde_json::from_str::<RunReport>(line) else {
            h.unreadable_lines.push(i as u64 + 1);
            continue;
        };
        h.runs += 1;
        if report.status == RunStatus::Failed {
            h.failed_runs += 1;
        }
        h.last_run = Some(report.now.clone());
        h.project = Some(report.project.clone());
        for (name, a) in &report.activations {
            if let Some(schedule) = &a.schedule {
                // RFC 3339 UTC texts of one shape compare as times.
                let overdue = schedule
                    .next_due
                    .as_deref()
                    .is_some_and(|next| next <= report.now.as_str());
                h.schedules.insert(
                    name.clone(),
                    NextDue {
                        schedule: schedule.schedule.clone(),
                        next_due: schedule.next_due.clone(),
                        overdue,
                    },
                );
            }
            let rejected = a.api.as_ref().map_or(a.failed, |api| api.rejected);
            h.activations
                .entry(name.clone())
                .or_default()
                .push(ActivationRun {
                    run_id: report.run_id.clone(),
                    at: report.now.clone(),
                    status: a.status,
                    destination: a.destination.clone(),
                    created: a.created,
                    updated: a.updated,
                    removed: a.removed,
                    rejected,
                    members: a.members,
                    run_duration_ms: report.duration_ms,
                });
        }
        for (name, members) in &report.audiences {
            h.audiences.entry(name.clone()).or_default().push(Size {
                at: report.now.clone(),
                members: *members,
            });
        }
    }
    let last = last.max(1);
    for runs in h.activations.values_mut() {
        runs.reverse();
        runs.truncate(last);
    }
    for sizes in h.audiences.values_mut() {
        let extra = sizes.len().saturating_sub(last);
        sizes.drain(..extra);
    }
    h
}

/// The audience sizes of the newest run in the log that recorded any (a
/// run that failed before evaluating records none): what `accord report`
/// shows beside each audience.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct LastSizes {
    pub run_id: String,
    /// The run's evaluation time, RFC 3339.
    pub at: String,
    /// Members per audience and `NAME.part`.
    pub audiences: BTreeMap<String, u64>,
}

/// The last line of `log` that is a run report with audience sizes; lines
/// that are not run reports are passed over (`accord status` names them).
pub fn last_sizes(log: &str) -> Option<LastSizes> {
    log.lines().rev().find_map(|line| {
        let report = serde_json::from_str::<RunReport>(line).ok()?;
        (!report.audiences.is_empty()).then_some(LastSizes {
            run_id: report.run_id,
            at: report.now,
            audiences: report.audiences,
        })
    })
}

impl History {
    /// What `accord status` prints.
    pub fn render_text(&self) -> String {
        let mut w = String::new();
        let project = self.project.as_deref().unwrap_or("the project");
        if self.runs == 0 && self.unreadable_lines.is_empty() {
            let _ = writeln!(w, "{project}: no runs yet (`accord run` records each run)");
            return w;
        }
        let _ = writeln!(
            w,
            "{project}: {} run{} logged, {} failed; the last evaluated {}",
            self.runs,
            if self.runs == 1 { "" } else { "s" },
            self.failed_runs,
            self.last_run.as_deref().unwrap_or("-")
        );
        if !self.unreadable_lines.is_empty() {
            let lines: Vec<String> = self.unreadable_lines.iter().map(u64::to_string).collect();
            let what = if lines.len() == 1 {
                format!(
                    "line {} of .accord/runs.jsonl is not a run report and was",
                    lines[0]
                )
            } else {
                format!(
                    "lines {} of .accord/runs.jsonl are not run reports and were",
                    lines.join(", ")
                )
            };
            let _ = writeln!(w, "warning: {what} left out");
        }
        for (name, runs) in &self.activations {
            let destination = runs.first().map_or("", |r| r.destination.as_str());
            let due = self.schedules.get(name).map(|s| {
                let when = match (&s.next_due, s.overdue) {
                    (Some(t), false) => format!("next due {t}"),
                    (Some(t), true) => format!("due since {t}"),
                    (None, _) if s.schedule == "streaming" => "due on every run".into(),
                    (None, _) => "due on the next run".into(),
                };
                format!("  ({}; {when})", s.schedule)
            });
            let _ = writeln!(
                w,
                "\nactivation {name} -> {destination}{}",
                due.unwrap_or_default()
            );
            for r in runs {
                let _ = writeln!(
                    w,
                    "  {}  {:<10} +{} ~{} -{}  rejected {}  members {}  run {}",
                    r.at,
                    r.status.as_str(),
                    r.created,
                    r.updated,
                    r.removed,
                    r.rejected,
                    r.members,
                    duration(r.run_duration_ms)
                );
            }
        }
        if !self.audiences.is_empty() {
            let _ = writeln!(w, "\naudience sizes (oldest to newest)");
            for (name, sizes) in &self.audiences {
                let trend: Vec<String> = sizes.iter().map(|s| s.members.to_string()).collect();
                let change = match (sizes.first(), sizes.last()) {
                    (Some(first), Some(last)) if sizes.len() > 1 && first.members > 0 => {
                        let ratio = (last.members as f64 - first.members as f64)
                            / first.members as f64
                            * 100.0;
                        format!("  ({ratio:+.0}% over {} runs)", sizes.len())
                    }
                    _ => String::new(),
                };
                let _ = writeln!(w, "  {name}: {}{change}", trend.join(" -> "));
            }
        }
        w
    }
}

/// `850 ms`, `12.3 s`.
fn duration(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else {
        format!("{:.1} s", ms as f64 / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::report::ActivationReport;

    fn line(now: &str, members: u64, status: ActivationStatus) -> String {
        let mut report = RunReport {
            run_id: format!("{now}-run"),
            project: "p".into(),
            now: now.into(),
            duration_ms: 1500,
            ..RunReport::default()
        };
        report.audiences.insert("B2B_X".into(), members);
        report.activations.insert(
            "x_files".into(),
            ActivationReport {
                destination: "files".into(),
                status,
                created: members,
                members,
                ..ActivationReport::default()
            },
        );
        serde_json::to_string(&report).expect("serialises")
    }

    #[test]
    fn runs_are_newest_first_and_bad_lines_are_named() {
        let log = [
            line("2026-11-28T12:00:00Z", 10, ActivationStatus::Delivered),
            "{not a report".to_string(),
            line("2026-11-29T12:00:00Z", 8, ActivationStatus::Unchanged),
            line("2026-11-30T12:00:00Z", 12, ActivationStatus::Failed),
        ]
        .join("\n");
        let h = history(&log, 2);
        assert_eq!((h.runs, h.unreadable_lines.clone()), (3, vec![2]));
        let runs = &h.activations["x_files"];
        assert_eq!(runs.len(), 2, "the last two");
        assert_eq!(runs[0].at, "2026-11-30T12:00:00Z");
        assert_eq!(runs[0].status, ActivationStatus::Failed);
        let sizes: Vec<u64> = h.audiences["B2B_X"].iter().map(|s| s.members).collect();
        assert_eq!(sizes, [8, 12], "the last two, oldest first");
        let text = h.render_text();
        assert!(
            text.contains("line 2 of .accord/runs.jsonl is not a run report"),
            "{text}"
        );
        assert!(
            text.contains("B2B_X: 8 -> 12  (+50% over 2 runs)"),
            "{text}"
        );
        assert!(
            text.contains("failed     +12 ~0 -0  rejected 0  members 12  run 1.5 s"),
            "{text}"
        );
    }

    #[test]
    fn sizes_come_from_the_last_run_that_recorded_any() {
        let mut failed: RunReport =
            serde_json::from_str(&line("2026-11-30T12:00:00Z", 0, ActivationStatus::Failed))
                .expect("a report");
        failed.audiences.clear();
        let log = [
            line("2026-11-28T12:00:00Z", 10, ActivationStatus::Delivered),
            line("2026-11-29T12:00:00Z", 8, ActivationStatus::Unchanged),
            serde_json::to_string(&failed).expect("serialises"),
            "{a partial line".to_string(),
        ]
        .join("\n");
        let last = last_sizes(&log).expect("sizes");
        assert_eq!(last.at, "2026-11-29T12:00:00Z");
        assert_eq!(last.audiences["B2B_X"], 8);
        assert_eq!(last_sizes(""), None);
    }

    #[test]
    fn an_empty_log_says_so() {
        assert!(history("", 5).render_text().contains("no runs yet"));
    }
}
