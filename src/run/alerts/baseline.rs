//! The last live run's sizes, from the run log (`.accord/runs.jsonl`, what
//! `accord status` reads): what size alerts compare with.
//!
//! A run counts when it got through its activations and was live: a dry
//! run (its line says `dry_run`, or, in lines written before that key, an
//! activation ended `dry_run`) evaluates like a live one but fires nothing
//! for good, so comparing with it would hide a drop from the next live run
//! (previews are not logged at all). A stopped run has no sizes. Each
//! target takes the newest line that has a size for it; the log is read
//! from its end and the scan stops once every target is found. Lines that
//! are not run reports are skipped here (`accord status` names them).

use std::collections::BTreeMap;

use super::condition::{Baseline, size};
use crate::plan::{AlertKind, Plan};
use crate::run::report::{ActivationStatus, RunReport, RunStatus};

/// Per size alert of `plan`, the last live run's size of its target.
pub fn find(log: &str, plan: &Plan) -> BTreeMap<String, Baseline> {
    let mut wanted: BTreeMap<&str, _> = plan
        .alerts
        .iter()
        .filter(|(_, a)| matches!(a.when, AlertKind::SizeDrop | AlertKind::SizeGrowth))
        .filter_map(|(name, a)| Some((name.as_str(), a.target()?)))
        .collect();
    let mut found = BTreeMap::new();
    for line in log.lines().rev() {
        if wanted.is_empty() {
            break;
        }
        let Ok(report) = serde_json::from_str::<RunReport>(line) else {
            continue;
        };
        if !is_live(&report) {
            continue;
        }
        wanted.retain(|name, (kind, target)| match size(&report, *kind, target) {
            Some(n) => {
                found.insert(
                    name.to_string(),
                    Baseline {
                        run_id: report.run_id.clone(),
                        size: n,
                    },
                );
                false
            }
            None => true,
        });
    }
    found
}

/// A completed run that sent for real.
fn is_live(report: &RunReport) -> bool {
    report.status == RunStatus::Completed
        && !report.preview
        && !report.dry_run
        && !report
            .activations
            .values()
            .any(|a| a.status == ActivationStatus::DryRun)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{AlertPlan, AlertRepeat, AlertSeverity};

    fn plan() -> Plan {
        let mut plan = Plan {
            format_version: 1,
            project: "p".into(),
            environment: None,
            enforcement: None,
            delivery: None,
            engine: None,
            schemas: BTreeMap::new(),
            sources: BTreeMap::new(),
            computed: BTreeMap::new(),
            audiences: BTreeMap::new(),
            destinations: BTreeMap::new(),
            activations: BTreeMap::new(),
            policies: BTreeMap::new(),
            alerts: BTreeMap::new(),
            fingerprint: String::new(),
            typed: Default::default(),
        };
        plan.alerts.insert(
            "drop".into(),
            AlertPlan {
                on: "audience.icp".into(),
                when: AlertKind::SizeDrop,
                threshold: Some(0.3),
                severity: AlertSeverity::Error,
                repeat: AlertRepeat::Once,
                notify: None,
                fingerprint: String::new(),
            },
        );
        plan
    }

    fn line(run_id: &str, size: Option<u64>, dry_run: bool, status: RunStatus) -> String {
        let mut r = RunReport {
            run_id: run_id.into(),
            status,
            dry_run,
            ..RunReport::default()
        };
        if let Some(n) = size {
            r.audiences.insert("icp".into(), n);
        }
        serde_json::to_string(&r).expect("serialises")
    }

    #[test]
    fn the_newest_live_run_with_a_size_is_the_baseline() {
        let log = [
            line("r1", Some(10), false, RunStatus::Completed),
            line("r2", Some(8), false, RunStatus::Completed),
            "{not a report".to_string(),
            line("r3", Some(2), true, RunStatus::Completed),
            line("r4", None, false, RunStatus::Failed),
            line("r5", None, false, RunStatus::Completed),
        ]
        .join("\n");
        let found = find(&log, &plan());
        assert_eq!(
            found["drop"],
            Baseline {
                run_id: "r2".into(),
                size: 8
            }
        );
        assert!(find("", &plan()).is_empty());
    }
}
