//! Whether one alert's condition holds in a run: a pure function of the
//! alert, this run's report and the last live run's figures.
//!
//! The figures (`docs/alerts.md`):
//! - the size of an audience is its members (`audiences` in the report);
//!   the size of an activation is the rows its destination holds after the
//!   run (`members`), so a held or blocked activation keeps its size: the
//!   `failed` condition watches those;
//! - `size_drop` holds when the size fell by more than `threshold` of the
//!   last live run's size, `size_growth` when it grew by more; a last size
//!   of 0 (or no last run) has no ratio, so neither holds;
//! - `rejected_ratio`: the members an API destination rejected over those
//!   sent (`api.rejected / api.sent`); for a file destination the rows that
//!   failed over those written; nothing sent holds nothing;
//! - `failed`: the activation ended `failed`, `held` or `blocked` (the
//!   statuses that make the run exit 1);
//! - `stale`: the source's freshness is `stale`.

use crate::plan::{AlertKind, AlertPlan, AlertTargetKind};
use crate::run::report::{AlertFigures, RunReport};

/// The last live run's figures an alert compares sizes with.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Baseline {
    pub run_id: String,
    pub size: u64,
}

/// What the condition is in this run.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// It holds: why, with the figures.
    Holds {
        reason: String,
        figures: AlertFigures,
    },
    Clear,
    /// This run has no figure for the target (R0026): why.
    Unknown(String),
}

/// The size of a target in a report, if the report has one.
pub fn size(report: &RunReport, kind: AlertTargetKind, name: &str) -> Option<u64> {
    match kind {
        AlertTargetKind::Audience => report.audiences.get(name).copied(),
        AlertTargetKind::Activation => report.activations.get(name).map(|a| a.members),
        AlertTargetKind::Source => None,
    }
}

/// `ratio` as a percentage for people: `40%`, `12.5%`.
fn percent(ratio: f64) -> String {
    let p = ratio * 100.0;
    if (p - p.round()).abs() < 1e-9 {
        format!("{}%", p.round())
    } else {
        format!("{p:.1}%")
    }
}

pub fn evaluate(alert: &AlertPlan, report: &RunReport, baseline: Option<&Baseline>) -> Verdict {
    let Some((kind, name)) = alert.target() else {
        return Verdict::Unknown(format!("`{}` names no target", alert.on));
    };
    let threshold = alert.threshold.unwrap_or(0.0);
    match alert.when {
        AlertKind::SizeDrop | AlertKind::SizeGrowth => {
            let Some(current) = size(report, kind, name) else {
                return Verdict::Unknown(format!("{kind} `{name}` has no size in this run"));
            };
            let Some(last) = baseline.filter(|b| b.size > 0) else {
                return Verdict::Clear;
            };
            let (change, grew) = if current >= last.size {
                (current - last.size, true)
            } else {
                (last.size - current, false)
            };
            let ratio = change as f64 / last.size as f64;
            let drop = alert.when == AlertKind::SizeDrop;
            if grew == drop || change == 0 || ratio <= threshold {
                return Verdict::Clear;
            }
            let members = if kind == AlertTargetKind::Audience {
                "members"
            } else {
                "members in its destination"
            };
            Verdict::Holds {
                reason: format!(
                    "{kind} `{name}` {} from {} to {current} {members} ({}{}) since run {}, more than the threshold {}",
                    if drop { "fell" } else { "grew" },
                    last.size,
                    if drop { "-" } else { "+" },
                    percent(ratio),
                    last.run_id,
                    percent(threshold),
                ),
                figures: AlertFigures {
                    previous: Some(last.size),
                    previous_run: Some(last.run_id.clone()),
                    current: Some(current),
                    ratio: Some(ratio),
                    threshold: Some(threshold),
                    ..AlertFigures::default()
                },
            }
        }
        AlertKind::RejectedRatio => {
            let Some(a) = report.activations.get(name) else {
                return Verdict::Unknown(format!("activation `{name}` did not run"));
            };
            let (rejected, sent) = match &a.api {
                Some(api) => (api.rejected, api.sent),
                None => (a.failed, a.created + a.updated + a.removed + a.failed),
            };
            if sent == 0 {
                return Verdict::Clear;
            }
            let ratio = rejected as f64 / sent as f64;
            if ratio <= threshold {
                return Verdict::Clear;
            }
            Verdict::Holds {
                reason: format!(
                    "activation `{name}`: {rejected} of {sent} members sent were rejected ({}), more than the threshold {}",
                    percent(ratio),
                    percent(threshold)
                ),
                figures: AlertFigures {
                    rejected: Some(rejected),
                    sent: Some(sent),
                    ratio: Some(ratio),
                    threshold: Some(threshold),
                    ..AlertFigures::default()
                },
            }
        }
        AlertKind::Failed => {
            let Some(a) = report.activations.get(name) else {
                return Verdict::Unknown(format!("activation `{name}` did not run"));
            };
            if !a.status.is_failure() {
                return Verdict::Clear;
            }
            Verdict::Holds {
                reason: format!("activation `{name}` ended {}", a.status),
                figures: AlertFigures {
                    status: Some(a.status.to_string()),
                    ..AlertFigures::default()
                },
            }
        }
        AlertKind::Stale => {
            let Some(source) = report.sources.get(name) else {
                return Verdict::Unknown(format!("source `{name}` was not read in this run"));
            };
            if source.freshness != "stale" {
                return Verdict::Clear;
            }
            Verdict::Holds {
                reason: format!(
                    "source `{name}` is stale{}",
                    source
                        .newest
                        .as_deref()
                        .map(|n| format!(": its newest record is from {n}"))
                        .unwrap_or_default()
                ),
                figures: AlertFigures {
                    newest: source.newest.clone(),
                    ..AlertFigures::default()
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{AlertRepeat, AlertSeverity};
    use crate::run::report::{ActivationReport, ActivationStatus, ApiReport, SourceReport};

    fn alert(on: &str, when: AlertKind, threshold: Option<f64>) -> AlertPlan {
        AlertPlan {
            on: on.into(),
            when,
            threshold,
            severity: AlertSeverity::Error,
            repeat: AlertRepeat::Once,
            notify: None,
            fingerprint: String::new(),
        }
    }

    fn with_audience(n: u64) -> RunReport {
        let mut r = RunReport::default();
        r.audiences.insert("icp".into(), n);
        r
    }

    fn last(size: u64) -> Baseline {
        Baseline {
            run_id: "r1".into(),
            size,
        }
    }

    #[test]
    fn a_drop_holds_past_its_threshold_only() {
        let a = alert("audience.icp", AlertKind::SizeDrop, Some(0.3));
        let Verdict::Holds { reason, figures } = evaluate(&a, &with_audience(6), Some(&last(10)))
        else {
            panic!("a 40% drop passes 30%");
        };
        assert_eq!(
            reason,
            "audience `icp` fell from 10 to 6 members (-40%) since run r1, more than the threshold 30%"
        );
        assert_eq!(figures.ratio, Some(0.4));
        // Exactly the threshold is not past it; growth is not a drop.
        assert_eq!(
            evaluate(&a, &with_audience(7), Some(&last(10))),
            Verdict::Clear
        );
        assert_eq!(
            evaluate(&a, &with_audience(20), Some(&last(10))),
            Verdict::Clear
        );
        // No last run, or a last size of 0: no ratio.
        assert_eq!(evaluate(&a, &with_audience(0), None), Verdict::Clear);
        assert_eq!(
            evaluate(&a, &with_audience(0), Some(&last(0))),
            Verdict::Clear
        );
        assert!(matches!(
            evaluate(&a, &RunReport::default(), Some(&last(10))),
            Verdict::Unknown(_)
        ));
    }

    #[test]
    fn growth_past_its_threshold_holds() {
        let a = alert("audience.icp", AlertKind::SizeGrowth, Some(1.0));
        assert!(matches!(
            evaluate(&a, &with_audience(25), Some(&last(10))),
            Verdict::Holds { .. }
        ));
        assert_eq!(
            evaluate(&a, &with_audience(20), Some(&last(10))),
            Verdict::Clear
        );
        assert_eq!(
            evaluate(&a, &with_audience(2), Some(&last(10))),
            Verdict::Clear
        );
    }

    #[test]
    fn rejections_failures_and_staleness() {
        let mut r = RunReport::default();
        r.activations.insert(
            "api".into(),
            ActivationReport {
                status: ActivationStatus::Delivered,
                api: Some(ApiReport {
                    sent: 10,
                    rejected: 3,
                    ..ApiReport::default()
                }),
                ..ActivationReport::default()
            },
        );
        r.activations.insert(
            "held".into(),
            ActivationReport {
                status: ActivationStatus::Held,
                ..ActivationReport::default()
            },
        );
        r.sources.insert(
            "crm".into(),
            SourceReport {
                freshness: "stale".into(),
                newest: Some("2026-11-01T00:00:00Z".into()),
                ..SourceReport::default()
            },
        );
        let rejected = alert("activation.api", AlertKind::RejectedRatio, Some(0.2));
        assert!(matches!(
            evaluate(&rejected, &r, None),
            Verdict::Holds { .. }
        ));
        let strict = alert("activation.api", AlertKind::RejectedRatio, Some(0.3));
        assert_eq!(evaluate(&strict, &r, None), Verdict::Clear);
        let failed = alert("activation.held", AlertKind::Failed, None);
        let Verdict::Holds { reason, .. } = evaluate(&failed, &r, None) else {
            panic!("held is a failure");
        };
        assert_eq!(reason, "activation `held` ended held");
        assert_eq!(
            evaluate(&alert("activation.api", AlertKind::Failed, None), &r, None),
            Verdict::Clear
        );
        assert!(matches!(
            evaluate(&alert("source.crm", AlertKind::Stale, None), &r, None),
            Verdict::Holds { .. }
        ));
    }
}
