//! A run's counters as an OpenMetrics text exposition (`accord run
//! --metrics FILE`), for a collector that reads files, such as
//! node_exporter's textfile collector.
//!
//! In: the run report and the names of the plan's alerts. Out: the text,
//! ending in `# EOF`. Pure: the CLI writes it atomically (a temporary file
//! renamed over the old one), so a collector never reads half a file.
//!
//! Every metric is a gauge (the figures of the last run, not counters that
//! grow across runs), so the file reads the same to an OpenMetrics parser
//! and to Prometheus's text parser; a status is a gauge per possible value
//! (1 for the one that holds, 0 for the others), so a dashboard can select
//! a state without knowing the ones it has not seen. Every sample carries
//! `project` and `environment`, so files of several projects can sit side
//! by side in one collector's folder. `docs/alerts.md` lists each metric.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use super::report::{ActivationStatus, RunReport, RunStatus};
use crate::plan::AlertSeverity;
use crate::time;

/// The exposition of `report`; `alerts` are the plan's alert names (an
/// alert that did not hold is still a series, at 0).
pub fn render(report: &RunReport, alerts: &BTreeSet<String>) -> String {
    let mut m = Metrics {
        out: String::new(),
        base: vec![
            ("project", report.project.clone()),
            (
                "environment",
                report.environment.clone().unwrap_or_default(),
            ),
        ],
    };
    m.family(
        "accord_run_status",
        "whether the run got through its activations (1 for its status, 0 for the other)",
    );
    for status in RunStatus::ALL {
        m.sample(
            "accord_run_status",
            &[("status", status.as_str())],
            u64::from(*status == report.status),
        );
    }
    m.one(
        "accord_run_exit_code",
        "the exit code of accord run (0 ok, 1 failures or error alerts, 2 stopped)",
        report.exit_code(),
    );
    if let Some(now) = time::parse_timestamp(&report.now) {
        m.family(
            "accord_run_timestamp_seconds",
            "the run's evaluation time (--now), in seconds since the Unix epoch",
        );
        m.sample_f("accord_run_timestamp_seconds", &[], now as f64 / 1e6);
    }
    m.family("accord_run_duration_seconds", "how long the run took");
    m.sample_f(
        "accord_run_duration_seconds",
        &[],
        report.duration_ms as f64 / 1000.0,
    );
    m.family(
        "accord_run_phase_duration_seconds",
        "how long each phase of the run took (read, unify, audiences, activations)",
    );
    for (phase, ms) in &report.phases_ms {
        m.sample_f(
            "accord_run_phase_duration_seconds",
            &[("phase", phase)],
            *ms as f64 / 1000.0,
        );
    }
    m.family(
        "accord_run_diagnostics",
        "coded problems the run reported (R codes), by severity",
    );
    for severity in ["error", "warning"] {
        let n = report
            .diagnostics
            .iter()
            .filter(|d| d.severity == severity)
            .count() as u64;
        m.sample("accord_run_diagnostics", &[("severity", severity)], n);
    }

    type SourceFigure = fn(&super::report::SourceReport) -> u64;
    let source_figures: [(&str, &str, SourceFigure); 3] = [
        ("accord_source_rows", "rows read from the source", |s| {
            s.rows
        }),
        (
            "accord_source_bad_rows",
            "rows of the source that could not be read or typed and were left out",
            |s| s.bad_rows,
        ),
        (
            "accord_source_stale",
            "1 when the source is older than its max_age",
            |s| u64::from(s.freshness == "stale"),
        ),
    ];
    for (name, help, figure) in source_figures {
        m.family(name, help);
        for (source, s) in &report.sources {
            m.sample(name, &[("source", source)], figure(s));
        }
    }
    m.family(
        "accord_source_age_seconds",
        "how old the source's newest record is at the run's time (sources with timestamps)",
    );
    let now = time::parse_timestamp(&report.now);
    for (source, s) in &report.sources {
        let newest = s.newest.as_deref().and_then(time::parse_timestamp);
        if let (Some(now), Some(newest)) = (now, newest) {
            m.sample_f(
                "accord_source_age_seconds",
                &[("source", source)],
                (now - newest) as f64 / 1e6,
            );
        }
    }

    m.family(
        "accord_audience_members",
        "members of the audience (and of each split part, NAME.part)",
    );
    for (audience, n) in &report.audiences {
        m.sample("accord_audience_members", &[("audience", audience)], *n);
    }

    m.family(
        "accord_activation_status",
        "how the activation ended the run (1 for its status, 0 for the others)",
    );
    for (activation, a) in &report.activations {
        for status in ActivationStatus::ALL {
            m.sample(
                "accord_activation_status",
                &[("activation", activation), ("status", status.as_str())],
                u64::from(*status == a.status),
            );
        }
    }
    type ActivationFigure = fn(&super::report::ActivationReport) -> u64;
    let activation_figures: [(&str, &str, ActivationFigure); 8] = [
        (
            "accord_activation_received",
            "candidate rows of the activated audiences, before consent and the other exclusions",
            |a| a.profiles_received,
        ),
        (
            "accord_activation_created",
            "members added in the destination by this run",
            |a| a.created,
        ),
        (
            "accord_activation_updated",
            "members whose row changed in the destination",
            |a| a.updated,
        ),
        (
            "accord_activation_removed",
            "members removed from the destination",
            |a| a.removed,
        ),
        (
            "accord_activation_delivered",
            "member operations the destination took in this run (API: accepted; files: rows written)",
            |a| match (&a.api, a.status) {
                (Some(api), _) => api.accepted,
                (None, ActivationStatus::Delivered) => a.created + a.updated + a.removed,
                (None, _) => 0,
            },
        ),
        (
            "accord_activation_rejected",
            "members the destination refused (API) or rows that failed (files)",
            |a| a.api.as_ref().map_or(a.failed, |api| api.rejected),
        ),
        (
            "accord_activation_excluded",
            "rows left out by consent, a missing identity or a policy",
            |a| a.excluded_consent + a.excluded_missing_identity + a.excluded_policy,
        ),
        (
            "accord_activation_members",
            "rows in the destination after the run",
            |a| a.members,
        ),
    ];
    for (name, help, figure) in activation_figures {
        m.family(name, help);
        for (activation, a) in &report.activations {
            m.sample(name, &[("activation", activation)], figure(a));
        }
    }

    m.family(
        "accord_alert_breached",
        "1 when the alert's condition holds in this run (fired now or before)",
    );
    for alert in alerts {
        m.sample(
            "accord_alert_breached",
            &[("alert", alert)],
            u64::from(report.alerts.contains_key(alert)),
        );
    }
    m.family("accord_alert_fired", "1 when the alert fired in this run");
    for alert in alerts {
        let fired = report.alerts.get(alert).is_some_and(|a| a.fired);
        m.sample("accord_alert_fired", &[("alert", alert)], u64::from(fired));
    }
    m.family(
        "accord_alerts_fired",
        "alerts that fired in this run, by severity",
    );
    for severity in AlertSeverity::ALL {
        let n = report
            .alerts
            .values()
            .filter(|a| a.fired && a.severity == *severity)
            .count() as u64;
        m.sample("accord_alerts_fired", &[("severity", severity.as_str())], n);
    }
    m.out.push_str("# EOF\n");
    m.out
}

struct Metrics {
    out: String,
    /// The labels every sample carries.
    base: Vec<(&'static str, String)>,
}

impl Metrics {
    fn family(&mut self, name: &str, help: &str) {
        let _ = writeln!(self.out, "# TYPE {name} gauge");
        let _ = writeln!(self.out, "# HELP {name} {}", escape_help(help));
    }

    fn one(&mut self, name: &str, help: &str, value: impl Into<u64>) {
        self.family(name, help);
        self.sample(name, &[], value.into());
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: u64) {
        self.line(name, labels, &value.to_string());
    }

    fn sample_f(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.line(name, labels, &format!("{value:.3}"));
    }

    fn line(&mut self, name: &str, labels: &[(&str, &str)], value: &str) {
        let all: Vec<String> = self
            .base
            .iter()
            .map(|(k, v)| (*k, v.as_str()))
            .chain(labels.iter().copied())
            .map(|(k, v)| format!("{k}=\"{}\"", escape_label(v)))
            .collect();
        let _ = writeln!(self.out, "{name}{{{}}} {value}", all.join(","));
    }
}

/// A label value: backslash, double quote and line feed escaped.
fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A HELP text: backslash and line feed escaped.
fn escape_help(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::report::{ActivationReport, SourceReport};

    #[test]
    fn the_exposition_is_well_formed() {
        let mut r = RunReport {
            project: "p\"q".into(),
            now: "2026-11-28T12:00:00Z".into(),
            duration_ms: 1500,
            ..RunReport::default()
        };
        r.audiences.insert("icp".into(), 7);
        r.sources.insert(
            "crm".into(),
            SourceReport {
                rows: 10,
                newest: Some("2026-11-28T11:00:00Z".into()),
                freshness: "fresh".into(),
                ..SourceReport::default()
            },
        );
        r.activations.insert(
            "files".into(),
            ActivationReport {
                status: ActivationStatus::Delivered,
                created: 3,
                ..ActivationReport::default()
            },
        );
        let text = render(&r, &BTreeSet::from(["drop".to_string()]));
        assert!(text.ends_with("# EOF\n"));
        assert!(text.contains(
            "accord_audience_members{project=\"p\\\"q\",environment=\"\",audience=\"icp\"} 7\n"
        ));
        assert!(text.contains("accord_source_age_seconds{project=\"p\\\"q\",environment=\"\",source=\"crm\"} 3600.000\n"));
        assert!(text.contains("accord_activation_delivered{project=\"p\\\"q\",environment=\"\",activation=\"files\"} 3\n"));
        assert!(
            text.contains(
                "accord_run_duration_seconds{project=\"p\\\"q\",environment=\"\"} 1.500\n"
            )
        );
        // Every sample's family is declared, once, before it.
        let mut declared = BTreeSet::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let name = rest.split(' ').next().unwrap_or_default();
                assert!(declared.insert(name.to_string()), "{name} twice");
            } else if !line.starts_with('#') {
                let name = line.split('{').next().unwrap_or_default();
                assert!(declared.contains(name), "{name} undeclared");
            }
        }
    }
}
