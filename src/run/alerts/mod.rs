//! Alerts, after a run's activations end: each `[alert.NAME]` of the plan
//! is judged on this run's report and the last live run's figures, fired
//! (reported, and sent to its channel) or not, and its breach state kept
//! in the store.
//!
//! In: the plan's alerts, the report so far (its run id fixed), the store,
//! the run log. Out: the report's `alerts` (the ones whose condition
//! holds) and diagnostics (R0025 a send that failed, R0026 an alert this
//! run cannot judge). One concern per file: `condition` judges one alert
//! (pure), `baseline` finds the last live run's sizes in the log, `notify`
//! builds and sends the requests.
//!
//! Firing (`docs/alerts.md`):
//! - the live run in which the condition starts to hold records the breach
//!   in the store (`store::alerts`), with the size it compared with: while
//!   the breach lasts, a size alert keeps comparing with that size (so a
//!   drop that persists is still a breach), and the first live run where
//!   the condition no longer holds deletes it, which re-arms the alert;
//! - `repeat = "once"` (the default) fires when the breach begins: later
//!   runs report the alert as still breached without sending it again;
//!   `repeat = "every_run"` fires in every run while it holds;
//! - a live run sends; a send that failed is a warning (R0025), the alert
//!   is still reported, and the breach is recorded as not notified, so the
//!   next run that finds it holding sends it again;
//! - a dry run describes the request under `.accord/runs/<run id>/`
//!   (`alerts.jsonl`), sends nothing and leaves the breach state as it is,
//!   like every other store record; a preview reports only.

mod baseline;
pub mod condition;
pub mod notify;

use std::path::Path;

use condition::{Baseline, Verdict};
use notify::{Context, Secrets};

use super::error::RunError;
use super::file_targets::shown;
use super::io::{self, Faults};
use super::report::ActivationStatus;
use super::report::{AlertReport, RunDiagnostic, RunReport};
use super::state::Store;
use crate::deliver::http::Http;
use crate::diag::codes;
use crate::plan::{AlertPlan, AlertRepeat, AlertTargetKind, Plan};
use crate::store::Breach;
use crate::time::{self, Micros};

/// What the alerts of one run need besides the report.
pub struct AlertRun<'a> {
    pub plan: &'a Plan,
    pub root: &'a Path,
    pub store: &'a Store,
    pub faults: &'a Faults,
    pub runtime: &'a tokio::runtime::Runtime,
    pub now: Micros,
    pub preview: bool,
    pub dry_run: bool,
}

/// Judges, fires and records every alert of the plan into `report`.
pub fn check(cx: &AlertRun<'_>, report: &mut RunReport) -> Result<(), RunError> {
    if cx.plan.alerts.is_empty() {
        return Ok(());
    }
    let log = match super::history::read(cx.root) {
        Ok(log) => log.unwrap_or_default(),
        Err(e) => {
            report.warnings.push(format!(
                "the run log cannot be read ({e}): size alerts have no last run to compare with"
            ));
            String::new()
        }
    };
    let baselines = baseline::find(&log, cx.plan);
    let live = !cx.preview && !cx.dry_run;
    let mut described = Vec::new();
    let mut http = None;
    for (name, alert) in &cx.plan.alerts {
        let recorded = cx.store.alert_breach(name)?;
        // A breach recorded for another definition of the alert is not
        // this alert's: a changed alert starts armed.
        let standing = recorded
            .clone()
            .filter(|b| b.fingerprint == alert.fingerprint);
        // While a breach lasts, a size alert compares with the size before
        // it, so a drop that persists stays a breach (and is not notified
        // again) until the size comes back.
        let baseline = match standing.as_ref().and_then(|b| b.baseline.clone()) {
            Some((size, run_id)) => Some(Baseline { run_id, size }),
            None => baselines.get(name).cloned(),
        };
        if not_evaluated_by_schedule(cx.plan, alert, report) {
            // The run evaluated nothing this alert watches: the alert waits,
            // with its state, for the run that does.
            continue;
        }
        let (reason, figures) = match condition::evaluate(alert, report, baseline.as_ref()) {
            Verdict::Clear => {
                if live && recorded.is_some() {
                    cx.store.clear_alert_breach(name)?;
                }
                continue;
            }
            Verdict::Unknown(why) => {
                report.diagnostics.push(
                    RunDiagnostic::new(
                        codes::run::ALERT_NOT_EVALUATED,
                        format!("alert `{name}`: {why}: not evaluated"),
                    )
                    .help("the run's other diagnostics say why the figure is missing; the alert keeps its state"),
                );
                continue;
            }
            Verdict::Holds { reason, figures } => (reason, figures),
        };
        let notified_before = standing.as_ref().is_some_and(|b| b.notified);
        let fired = alert.repeat == AlertRepeat::EveryRun || !notified_before;
        let mut a = AlertReport {
            on: alert.on.clone(),
            when: alert.when,
            severity: alert.severity,
            fired,
            breached_since: standing.as_ref().map(|b| b.run_id.clone()),
            reason,
            figures,
            channel: alert.notify.as_ref().map(|n| n.channel().to_string()),
            notified: None,
            written: None,
        };
        let sent = fired && notify_one(cx, name, alert, &mut a, report, &mut described, &mut http);
        let notified = notified_before || sent;
        if live && (standing.is_none() || notified != notified_before) {
            let breach = match standing {
                Some(b) => Breach { notified, ..b },
                None => Breach {
                    fingerprint: alert.fingerprint.clone(),
                    run_id: report.run_id.clone(),
                    at: cx.now,
                    baseline: a.figures.previous.zip(a.figures.previous_run.clone()),
                    notified,
                },
            };
            cx.store.set_alert_breach(name, &breach)?;
        }
        report.alerts.insert(name.clone(), a);
    }
    if !described.is_empty() {
        let path = describe(cx, &report.run_id, &described)?;
        for a in report.alerts.values_mut() {
            if a.notified.as_deref() == Some("dry_run") {
                a.written = Some(path.clone());
            }
        }
    }
    Ok(())
}

/// Sends (live), describes (dry run) or skips (preview) a fired alert's
/// notification; true when it got through or there was none to send.
fn notify_one(
    cx: &AlertRun<'_>,
    name: &str,
    alert: &AlertPlan,
    a: &mut AlertReport,
    report: &mut RunReport,
    described: &mut Vec<serde_json::Value>,
    http: &mut Option<Http>,
) -> bool {
    let Some(notify) = &alert.notify else {
        return true;
    };
    let at = time::format_timestamp(cx.now);
    let context = Context {
        alert: name,
        project: &report.project,
        environment: report.environment.as_deref(),
        run_id: &report.run_id,
        at: &at,
    };
    if cx.preview {
        a.notified = Some("preview".into());
        return false;
    }
    if cx.dry_run {
        let request = notify::request(notify, &context, a, None);
        described.push(serde_json::json!({
            "alert": name,
            "channel": notify.channel(),
            "request": request.redacted(),
        }));
        a.notified = Some("dry_run".into());
        return false;
    }
    let sent = Secrets::read(notify, cx.root).and_then(|secrets| {
        let request = notify::request(notify, &context, a, Some(&secrets));
        // One client for the run's alerts (it pools connections).
        let client = match http.clone() {
            Some(client) => client,
            None => {
                let client = Http::new()?;
                *http = Some(client.clone());
                client
            }
        };
        cx.runtime
            .block_on(notify::send(&client, request, &secrets))
    });
    match sent {
        Ok(()) => {
            a.notified = Some("sent".into());
            true
        }
        Err(why) => {
            a.notified = Some("failed".into());
            report.diagnostics.push(
                RunDiagnostic::new(
                    codes::run::ALERT_NOT_SENT,
                    format!("alert `{name}`: not sent to {}: {why}", notify.channel()),
                )
                .help("the alert is reported here and will be sent again by the next run in which it still holds"),
            );
            false
        }
    }
}

/// Writes a dry run's alert requests to `.accord/runs/<run id>/alerts.jsonl`.
fn describe(
    cx: &AlertRun<'_>,
    run_id: &str,
    lines: &[serde_json::Value],
) -> Result<String, RunError> {
    let folder = io::inside(&cx.root.join(".accord").join("runs"), run_id, "", "the run")?;
    let path = folder.join("alerts.jsonl");
    let mut bytes = Vec::new();
    for line in lines {
        serde_json::to_writer(&mut bytes, line).map_err(|e| RunError::Data {
            reason: e.to_string(),
        })?;
        bytes.push(b'\n');
    }
    io::write_atomic(&path, &bytes, cx.faults).map_err(|e| RunError::Data {
        reason: format!("{}: {e}", shown(cx.root, &path)),
    })?;
    Ok(shown(cx.root, &path))
}

/// Whether the run left the alert's target out because no activation that
/// needs it was due: then the missing figure is the schedule's doing, not a
/// problem (R0026 is for figures a due run should have had).
fn not_evaluated_by_schedule(plan: &Plan, alert: &AlertPlan, report: &RunReport) -> bool {
    let not_due = |name: &str| {
        report
            .activations
            .get(name)
            .is_some_and(|a| a.status == ActivationStatus::NotDue)
    };
    let nothing_due = || report.activations.keys().all(|n| not_due(n));
    match alert.target() {
        Some((AlertTargetKind::Activation, name)) => not_due(name),
        Some((AlertTargetKind::Audience, name)) => {
            let base = name.split('.').next().unwrap_or(name);
            !report.audiences.contains_key(name)
                && plan
                    .activations
                    .iter()
                    .filter(|(_, a)| {
                        a.audiences
                            .iter()
                            .any(|r| r.split('.').next() == Some(base))
                    })
                    .all(|(n, _)| not_due(n))
        }
        Some((AlertTargetKind::Source, name)) => {
            !report.sources.contains_key(name) && nothing_due()
        }
        None => false,
    }
}
