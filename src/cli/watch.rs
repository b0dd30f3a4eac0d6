//! `accord run --watch`: the lock for the whole process, then cycles on
//! `run::watch`'s loop, each compiled and run at the current time (as a
//! plain `accord run` would be), each printed as one line.
//!
//! Problems before the first cycle (the poll interval, the lock, the file
//! events) exit 2 like a run's configuration errors; after it, a cycle that
//! fails is printed and the loop goes on.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use super::run::{Prepared, RunArgs, prepare};
use super::{DataFormat, EXIT_OK, EXIT_USAGE};
use crate::run::watch::{self, Cycles, Interests, Trigger, WatchOptions};
use crate::run::{self, RunReport, lock};
use crate::time;

/// The poll interval when `--poll-interval` is not given.
const DEFAULT_POLL: &str = "60s";

/// Runs `accord run --watch` until a signal stops it: 0 then, 2 when it
/// cannot start. `first` was compiled when the command started (its
/// problems have stopped it already); `options` are the run's.
pub(super) fn watch_cmd(args: &RunArgs, first: Prepared, options: run::Options) -> u8 {
    let text = args.poll_interval.as_deref().unwrap_or(DEFAULT_POLL);
    let poll = match crate::duration::parse_micros(text) {
        Ok(micros) => Duration::from_micros(micros as u64),
        Err(why) => {
            eprintln!(
                "error: `--poll-interval {text}` is not a duration: {why}\n  = help: write a whole number and a unit, such as 30s, 5m or 1h"
            );
            return EXIT_USAGE;
        }
    };
    // Taken once, held until the process ends: no run of the project
    // interleaves with the cycles.
    let held = match lock::acquire(
        &args.dir,
        &first.plan.project,
        args.wait,
        &time::format_timestamp(wall_now()),
    ) {
        Ok(held) => held,
        Err(refused) => {
            eprint!("{}", refused.diagnostic().to_text());
            return EXIT_USAGE;
        }
    };
    let interests = watch::interests(&first.plan, &args.dir, args.out.as_deref());
    let mut cycles = CliCycles {
        args,
        held: &held,
        first: Some(first),
        options,
        terminal: std::io::stderr().is_terminal(),
    };
    let watching = WatchOptions {
        poll,
        quiet: watch::QUIET,
    };
    eprintln!(
        "[accord run] watching {}: a run on every change of its local sources and at least every {text}; Ctrl-C or SIGTERM stops",
        args.dir.display()
    );
    match watch::watch(interests, &watching, &mut cycles) {
        Ok(()) => {
            eprintln!("[accord run] stopped");
            EXIT_OK
        }
        Err(e) => {
            eprintln!("error: {e}");
            EXIT_USAGE
        }
    }
}

/// The wall clock, in the run's microseconds.
fn wall_now() -> time::Micros {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

struct CliCycles<'a> {
    args: &'a RunArgs,
    held: &'a lock::ProjectLock,
    /// The compilation the command started with, for the first cycle.
    first: Option<Prepared>,
    options: run::Options,
    terminal: bool,
}

impl Cycles for CliCycles<'_> {
    fn cycle(&mut self, trigger: &Trigger) -> Option<Interests> {
        let started = Instant::now();
        let dir = &self.args.dir;
        // Compiled again each time at the current time: waivers expire and
        // spec edits apply as they would for a plain `accord run`.
        let prepared = match self.first.take() {
            Some(first) => first,
            None => match prepare(dir, self.args.env.clone(), None, &self.args.engine) {
                Ok(p) => p,
                // `prepare` has said why.
                Err(_) => {
                    self.line(trigger, started, &Outcome::NoPlan);
                    return None;
                }
            },
        };
        self.options.now = prepared.now;
        self.options.places = prepared.places;
        self.options.engine = prepared.engine;
        let result = run::run_held(
            &prepared.plan,
            &prepared.jobs,
            dir,
            &self.options,
            self.held,
        );
        if self.terminal {
            // Clear the progress line.
            eprint!("\r\x1b[K");
        }
        let outcome = match &result {
            Ok(report) => Outcome::Ran(report),
            Err(stop) => {
                eprint!("{}", stop.diagnostic().to_text());
                Outcome::Stopped(stop.diagnostic().code)
            }
        };
        self.line(trigger, started, &outcome);
        Some(watch::interests(
            &prepared.plan,
            dir,
            self.args.out.as_deref(),
        ))
    }

    fn warn(&mut self, message: &str) {
        eprintln!("[accord run] warning: {message}");
    }
}

/// How a cycle ended, for its line.
enum Outcome<'a> {
    Ran(&'a RunReport),
    /// Stopped before its activations (the code of why; it is logged).
    Stopped(String),
    /// The specs did not compile: nothing ran.
    NoPlan,
}

impl CliCycles<'_> {
    /// One line per cycle on stdout: a person's line, or with `--format
    /// json` a JSON object (`time`, `trigger`, `report` or `error`).
    fn line(&self, trigger: &Trigger, started: Instant, outcome: &Outcome) {
        let now = wall_now();
        let at = time::format_timestamp(now - now.rem_euclid(1_000_000));
        match self.args.format {
            DataFormat::Text => outln!("{}", cycle_line(&at, trigger, started, outcome)),
            DataFormat::Json => {
                let mut line = serde_json::json!({ "time": at, "trigger": trigger.to_string() });
                match outcome {
                    Outcome::Ran(report) => line["report"] = serde_json::json!(report),
                    Outcome::Stopped(code) => line["error"] = serde_json::json!(code),
                    Outcome::NoPlan => line["error"] = serde_json::json!("the specs have errors"),
                }
                outln!("{line}");
            }
        }
    }
}

/// `TIME TRIGGER: ACTIVATION STATUS +created ~updated -removed, ... (DURATION)`,
/// then the codes of the problems the run found, if any.
fn cycle_line(at: &str, trigger: &Trigger, started: Instant, outcome: &Outcome) -> String {
    let took = format!("{:.1}s", started.elapsed().as_secs_f64());
    let what = match outcome {
        Outcome::NoPlan => "not run: the specs have errors".to_string(),
        Outcome::Stopped(code) => format!("stopped before its activations ({code})"),
        Outcome::Ran(report) => {
            let mut parts: Vec<String> = report
                .activations
                .iter()
                .map(|(name, a)| {
                    let mut part = format!("{name} {}", a.status.as_str());
                    if a.created + a.updated + a.removed > 0 {
                        part.push_str(&format!(" +{} ~{} -{}", a.created, a.updated, a.removed));
                    }
                    part
                })
                .collect();
            if parts.is_empty() {
                parts.push("no activations".into());
            }
            let mut codes: Vec<&str> = report
                .diagnostics
                .iter()
                .filter(|d| d.is_error())
                .map(|d| d.code.as_str())
                .collect();
            codes.sort_unstable();
            codes.dedup();
            let mut what = parts.join(", ");
            if !codes.is_empty() {
                what.push_str(&format!(
                    "; problems {} (`accord status`, .accord/runs.jsonl)",
                    codes.join(", ")
                ));
            }
            what
        }
    };
    format!("{at} {trigger}: {what} ({took})")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::report::{ActivationReport, ActivationStatus};

    #[test]
    fn a_cycle_is_one_line() {
        let mut report = RunReport::default();
        report.activations.insert(
            "hook".into(),
            ActivationReport {
                status: ActivationStatus::Delivered,
                created: 1,
                removed: 2,
                ..ActivationReport::default()
            },
        );
        report.activations.insert(
            "files".into(),
            ActivationReport {
                status: ActivationStatus::Unchanged,
                ..ActivationReport::default()
            },
        );
        let line = cycle_line(
            "2026-11-30T20:00:00Z",
            &Trigger::Change(vec!["data/a.csv".into()]),
            Instant::now(),
            &Outcome::Ran(&report),
        );
        assert_eq!(
            line,
            "2026-11-30T20:00:00Z change data/a.csv: files unchanged, hook delivered +1 ~0 -2 (0.0s)"
        );
        let stopped = cycle_line(
            "2026-11-30T20:01:00Z",
            &Trigger::Tick,
            Instant::now(),
            &Outcome::Stopped("R0107".into()),
        );
        assert_eq!(
            stopped,
            "2026-11-30T20:01:00Z tick: stopped before its activations (R0107) (0.0s)"
        );
    }
}
