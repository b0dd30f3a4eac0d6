//! The run report: what one run read, evaluated and delivered, per source
//! and per activation, with the metrics of dataflow monitoring. Appended as
//! one JSON line per run to `<project>/.accord/runs.jsonl` (the run log) and
//! rendered as text for the CLI to print.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::closed_set::closed_set;
use crate::diag::{Code, Severity};
use crate::exit::{EXIT_ERRORS, EXIT_OK, EXIT_USAGE};
use crate::plan::{AlertKind, AlertSeverity};
use crate::time;

closed_set! {
    /// Whether a run got through its activations.
    #[derive(Default)]
    pub enum RunStatus {
        /// Every activation ended in a status of its own (which may be `failed`).
        #[default]
        Completed = "completed",
        /// The run stopped before its activations finished: the error is in
        /// `diagnostics` (R0107 unless it has a code of its own).
        Failed = "failed",
    }
}

closed_set! {
    /// How one activation ended one run: exactly one of these, an enum here
    /// and its name in the report and the run log.
    #[derive(Default)]
    pub enum ActivationStatus {
        /// The changes (or the full file) reached the destination; state committed.
        Delivered = "delivered",
        /// Nothing changed since the last delivery: nothing sent.
        Unchanged = "unchanged",
        /// Its schedule does not call for a delivery at this run's time.
        NotDue = "not_due",
        /// The removal guard (`max_removed_ratio`, R0103) held the delivery.
        Held = "held",
        /// A policy or freshness rule blocks it where enforcement is `block`.
        Blocked = "blocked",
        /// A dry run: what would be delivered, without delivering.
        DryRun = "dry_run",
        /// A `--preview` run: evaluated and counted, nothing delivered.
        Preview = "preview",
        /// Nothing this runner can deliver to; a warning says why.
        Skipped = "skipped",
        /// A problem of this activation stopped its delivery (the diagnostics
        /// say which); nothing was sent or removed. The default, so that an
        /// activation never reads as a success before it has been judged.
        #[default]
        Failed = "failed",
    }
}

impl ActivationStatus {
    /// Whether the activation ending so makes the run exit 1: its delivery
    /// did not happen for a reason a person must look at.
    pub fn is_failure(self) -> bool {
        matches!(
            self,
            ActivationStatus::Failed | ActivationStatus::Held | ActivationStatus::Blocked
        )
    }
}

/// Compares with the report's name, as tools and tests read it.
impl PartialEq<str> for ActivationStatus {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for ActivationStatus {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    pub run_id: String,
    /// Statuses of activations are per activation; this one says whether
    /// the run got through them at all.
    #[serde(default)]
    pub status: RunStatus,
    pub project: String,
    pub environment: Option<String>,
    /// The evaluation time, RFC 3339.
    pub now: String,
    pub preview: bool,
    /// Nothing left the machine (`--dry-run`, or the environment's
    /// `delivery = "dry-run"`); absent in live runs' lines.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
    pub sources: BTreeMap<String, SourceReport>,
    pub links: Vec<LinkReport>,
    /// Members per audience (and `NAME.part`).
    pub audiences: BTreeMap<String, u64>,
    /// Members shared by two audiences, for `--preview`: `(a, b) -> n`,
    /// only pairs that share members.
    pub overlaps: Vec<Overlap>,
    pub activations: BTreeMap<String, ActivationReport>,
    /// Alerts whose condition holds in this run, by name: fired now, or
    /// still breached since an earlier run fired them (`repeat = "once"`).
    /// Absent when none holds.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub alerts: BTreeMap<String, AlertReport>,
    /// Run-wide warnings, such as stale sources.
    pub warnings: Vec<String>,
    /// Coded problems found while running (`R0xxx`), in the order found.
    #[serde(default)]
    pub diagnostics: Vec<RunDiagnostic>,
    pub duration_ms: u64,
    /// Milliseconds per phase (`read`, `unify`, `audiences`, `activations`),
    /// to see where a long run spends its time. `unify` is the merging of
    /// the sources; the link reports count within `audiences` (beside the
    /// audience query, or before it under a `memory_limit` or with Spark:
    /// `Engine::queries_side_by_side`).
    #[serde(default)]
    pub phases_ms: BTreeMap<String, u64>,
}

/// An alert whose condition holds in a run (`docs/alerts.md`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertReport {
    /// `activation.NAME`, `audience.NAME` or `source.NAME`.
    pub on: String,
    pub when: AlertKind,
    pub severity: AlertSeverity,
    /// Fired in this run; `false`: a breach that began in an earlier run
    /// and was notified then (`repeat = "once"`).
    pub fired: bool,
    /// The run in which the breach began, when it began before this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breached_since: Option<String>,
    /// Why it holds, with the figures, as people read it.
    pub reason: String,
    pub figures: AlertFigures,
    /// Where a fired alert went: `webhook` or `slack`; absent when the
    /// alert has no `notify`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// `sent`, `failed` (R0025), `dry_run` (described, not sent) or
    /// `preview` (neither); absent when nothing was to be sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notified: Option<String>,
    /// A dry run's description of the request, relative to the project.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub written: Option<String>,
}

/// The figures an alert compared; only those of its condition are set.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AlertFigures {
    /// Size kinds: the size in the last live run, and that run's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_run: Option<String>,
    /// Size kinds: the size in this run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<u64>,
    /// `rejected_ratio`: members rejected, of those sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent: Option<u64>,
    /// The ratio compared: the drop, the growth or the share rejected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ratio: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// `failed`: how the activation ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// `stale`: the source's newest record (RFC 3339), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newest: Option<String>,
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

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SourceReport {
    pub schema: String,
    pub files: Vec<String>,
    pub rows: u64,
    pub bad_rows: u64,
    /// The first bad rows, `file:line: reason`.
    pub bad_row_samples: Vec<String>,
    /// The newest timestamp in the source, RFC 3339 (never later than the
    /// run's `now`: later ones are in `future_timestamps`).
    pub newest: Option<String>,
    /// What `newest` was read from: `column NAME` (the source's
    /// `freshness_column`), `event time field NAME`, `timestamp field NAME`,
    /// `file modification time` or `object modification time`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub freshness_basis: Option<String>,
    /// Timestamps of the fields freshness reads that are later than the
    /// run's `now` (R0020): left out of `newest`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub future_timestamps: Vec<FutureTimestamps>,
    /// `fresh`, `stale` or `unknown` (no max_age or no timestamps).
    pub freshness: String,
    /// The fields whose values were read and checked, when not every field
    /// was (Parquet reads only the columns the plan needs), and always for
    /// an object-store source; empty: every field.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns_checked: Vec<String>,
    /// Bytes fetched from an object store (whole CSV and JSONL objects,
    /// Parquet footers and column chunks); `None` for local files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_read: Option<u64>,
    /// A Marketo activity source: what it read and how its leads linked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub marketo: Option<MarketoReport>,
    /// An append-only source: what this run reused of what earlier runs
    /// read, and what it read anew (absent for other sources).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incremental: Option<IncrementalReport>,
}

/// Values of one field later than the run's `now` (R0020).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FutureTimestamps {
    pub field: String,
    pub rows: u64,
    /// The latest of them, RFC 3339.
    pub latest: String,
}

/// What a Marketo activity source read (docs/destinations.md, "Marketo
/// activity as a source").
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MarketoReport {
    /// The instance's base URL (no secret).
    pub instance: String,
    /// The activity types read, by name, with the instance's ids.
    pub activity_types: BTreeMap<String, i64>,
    /// Activities from this time on were read (`sinceDatetime`).
    pub since: String,
    pub pages: u64,
    /// Requests made, token requests included; each counts against the
    /// destination's daily quota.
    pub calls: u64,
    /// Time spent waiting for the destination's throttle and retries.
    pub throttle_wait_ms: u64,
    pub activities: u64,
    /// Distinct leads the activities belong to.
    pub leads: u64,
    /// Leads the store knows from accord's upserts (lead id -> person).
    pub leads_from_store: u64,
    /// Leads whose email was looked up in Marketo.
    pub leads_looked_up: u64,
    /// Looked-up leads Marketo no longer has, or that have no email.
    pub leads_without_email: u64,
    /// Activities linked to a person by the email of their lead.
    pub linked_by_email: u64,
    /// Activities linked to no person (their lead is no known person).
    pub unlinked: u64,
}

/// How an append-only source was read (`docs/run.md`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct IncrementalReport {
    /// `incremental` (cached rows plus new files), or `full` with the
    /// reason: `first read`, `source or schema changed`, `cache missing`,
    /// `files changed` (R0015).
    pub read: String,
    /// Files whose rows came from the cache, and those rows.
    pub files_reused: u64,
    pub rows_reused: u64,
    /// Files decoded and type-checked by this run.
    pub files_read: u64,
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
    pub status: ActivationStatus,
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
    /// Where the files were written: the destination's folder (relative
    /// to the project when inside it) or its remote location.
    pub location: Option<String>,
    /// Deliveries to an API: what was planned and sent, what the
    /// destination said, and the limits it cost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api: Option<ApiReport>,
    /// Files a dry run wrote under `.accord/runs/` to describe what a live
    /// run would upload (relative to the project).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub written: Vec<String>,
    /// Bytes of this activation's members written to a spill file under
    /// `.accord/tmp/` as they came from the export query: a run under a
    /// `memory_limit` whose members outgrew a twelfth of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub members_spilled: Option<u64>,
    /// The activation's schedule at this run (absent in logs of runs
    /// before schedules were honoured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<ScheduleReport>,
    pub warnings: Vec<String>,
}

/// An activation's schedule as one run found it (`docs/operate.md`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ScheduleReport {
    /// As written: `daily@02:00`, `every 6h`, `streaming`.
    pub schedule: String,
    /// Whether the schedule called for a delivery at this run's `now`.
    pub due: bool,
    /// What made the run deliver an activation its schedule did not call
    /// for: `--all` or `--activation`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forced_by: Option<String>,
    /// The last successful delivery (`delivered` or `unchanged`), after
    /// this run, RFC 3339.
    pub last_delivered: Option<String>,
    /// When the schedule next calls for a delivery, after this run: the
    /// first window that opens after `last_delivered` (at or before `now`
    /// when the window this run was due for is still unserved). Absent:
    /// due on every run (streaming, or never delivered).
    pub next_due: Option<String>,
}

/// One activation's delivery to an API destination.
///
/// Every planned member ends in exactly one of accepted, rejected or
/// pending: `planned = accepted + rejected + pending`. Invalid members
/// (an identity that cannot be sent) are never planned.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ApiReport {
    /// Member operations to send: additions, updates, re-sends before
    /// expiry, removals, and earlier rejections tried again.
    pub planned: u64,
    /// Member operations put in a request (a retried one counts once).
    pub sent: u64,
    pub accepted: u64,
    /// Refused by the destination for good in this run; in `rejected.jsonl`,
    /// and tried again next run.
    pub rejected: u64,
    /// Rows never sent: no identity the destination can match.
    pub invalid: u64,
    /// Not sent in this run (daily quota, a failure): sent next run.
    pub pending: u64,
    /// Requests made, token and list requests included.
    pub calls: u64,
    /// The limit the requests kept to, as people read it.
    pub limit: Option<String>,
    /// Requests counted against the destination's daily quota today,
    /// this run's included.
    pub calls_today: u64,
    /// Time spent waiting for the throttle or a `Retry-After`.
    pub throttle_wait_ms: u64,
    /// The vendor's own count of its day's API calls, `USED/LIMIT`, from
    /// its last answer that reported it (Salesforce's `Sforce-Limit-Info`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor_usage: Option<String>,
    /// A dry run: the minimum time the limits imply for these requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_duration_ms: Option<u64>,
    /// Where the requests (dry run) or rejected members are written,
    /// relative to the project.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub written: Vec<String>,
}

impl ApiReport {
    fn render_text(&self, s: &mut String) {
        s.push_str(&format!(
            "      api: planned {}  sent {}  accepted {}  rejected {}  invalid {}  pending {}
",
            self.planned, self.sent, self.accepted, self.rejected, self.invalid, self.pending
        ));
        let secs = |ms: u64| format!("{:.1}s", ms as f64 / 1000.0);
        s.push_str(&format!(
            "      calls {} ({} today{}{}), waited {} on limits{}
",
            self.calls,
            self.calls_today,
            self.limit
                .as_deref()
                .map(|l| format!("; limit {l}"))
                .unwrap_or_default(),
            self.vendor_usage
                .as_deref()
                .map(|u| format!("; the vendor counts {u}"))
                .unwrap_or_default(),
            secs(self.throttle_wait_ms),
            self.min_duration_ms
                .map(|ms| format!("; at least {} when sent", secs(ms)))
                .unwrap_or_default()
        ));
        for w in &self.written {
            s.push_str(&format!(
                "      wrote {w}
"
            ));
        }
    }
}

impl ScheduleReport {
    /// `not due until <time>` for an activation its schedule skipped; what
    /// made the run deliver one that was not due; in a preview, whether a
    /// run would deliver it. Nothing for a run that was due, as most are.
    fn render_text(&self, status: ActivationStatus, members: u64, s: &mut String) {
        let until = || {
            self.next_due
                .as_deref()
                .map(|t| format!("not due until {t}"))
                .unwrap_or_else(|| "not due".into())
        };
        let last = || {
            self.last_delivered
                .as_deref()
                .map(|t| format!("; last delivered {t}"))
                .unwrap_or_default()
        };
        let line = if status == ActivationStatus::NotDue {
            format!(
                "{} ({}{}); members {members}",
                until(),
                self.schedule,
                last()
            )
        } else if let Some(by) = &self.forced_by {
            if self.due {
                return;
            }
            format!(
                "run by {by}, though {} ({}{})",
                until(),
                self.schedule,
                last()
            )
        } else if status == ActivationStatus::Preview {
            if self.due {
                format!("a run would deliver it: {} is due", self.schedule)
            } else {
                format!(
                    "a run would not deliver it: {} ({}{})",
                    until(),
                    self.schedule,
                    last()
                )
            }
        } else {
            return;
        };
        s.push_str(&format!("      {line}\n"));
    }
}

impl RunReport {
    /// The exit code of `accord run` for this report, the run contract's:
    ///
    /// | the run                                                  | exit |
    /// |----------------------------------------------------------|------|
    /// | every activation `delivered`, `unchanged`, `not_due`,    | 0    |
    /// | `dry_run`, `preview` or `skipped`; no error diagnostic   |      |
    /// | any activation `failed`, `held` or `blocked`, an         | 1    |
    /// | error-level diagnostic, or an alert of severity `error`  |      |
    /// | fired                                                    |      |
    /// | stopped before its activations (`status: failed`)       | 2    |
    ///
    pub fn exit_code(&self) -> u8 {
        if self.status == RunStatus::Failed {
            return EXIT_USAGE;
        }
        let failed = self.activations.values().any(|a| a.status.is_failure())
            || self.diagnostics.iter().any(RunDiagnostic::is_error)
            || self
                .alerts
                .values()
                .any(|a| a.fired && a.severity == AlertSeverity::Error);
        if failed { EXIT_ERRORS } else { EXIT_OK }
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
        if self.sources.is_empty()
            && !self.activations.is_empty()
            && self
                .activations
                .values()
                .all(|a| a.status == ActivationStatus::NotDue)
        {
            s.push_str("  none read: no activation is due\n");
        }
        for (name, src) in &self.sources {
            s.push_str(&format!(
                "  {name:<28} {:<18} {:>9} rows  {:>5} bad  {}{}\n",
                src.schema,
                src.rows,
                src.bad_rows,
                src.freshness,
                src.newest
                    .as_deref()
                    .map(|n| format!(
                        " (newest {n}{})",
                        src.freshness_basis
                            .as_deref()
                            .map(|b| format!(", by {b}"))
                            .unwrap_or_default()
                    ))
                    .unwrap_or_default()
            ));
            for f in &src.future_timestamps {
                s.push_str(&format!(
                    "      {} row{} with `{}` later than the run's time, the latest {}: not counted as newest\n",
                    f.rows,
                    if f.rows == 1 { "" } else { "s" },
                    f.field,
                    f.latest
                ));
            }
            if let Some(bytes) = src.bytes_read {
                s.push_str(&format!("      read {bytes} bytes\n"));
            }
            if !src.columns_checked.is_empty() {
                s.push_str(&format!(
                    "      columns read and checked: {}\n",
                    src.columns_checked.join(", ")
                ));
            }
            if let Some(m) = &src.marketo {
                s.push_str(&format!(
                    "      marketo {}: {} activities ({}) since {}; {} pages, {} calls; {} leads: {} from the store, {} looked up ({} without email); {} linked by email, {} unlinked\n",
                    m.instance,
                    m.activities,
                    m.activity_types.keys().cloned().collect::<Vec<_>>().join(", "),
                    m.since,
                    m.pages,
                    m.calls,
                    m.leads,
                    m.leads_from_store,
                    m.leads_looked_up,
                    m.leads_without_email,
                    m.linked_by_email,
                    m.unlinked,
                ));
            }
            if let Some(i) = &src.incremental {
                let files = |n: u64| format!("{n} file{}", if n == 1 { "" } else { "s" });
                s.push_str(&match i.read.strip_prefix("full: ") {
                    Some(why) => format!(
                        "      append-only, read in full ({why}): {} read\n",
                        files(i.files_read)
                    ),
                    None => format!(
                        "      append-only, read incrementally: {} read, {} ({} rows) from the cache\n",
                        files(i.files_read),
                        files(i.files_reused),
                        i.rows_reused
                    ),
                });
            }
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
            if let Some(schedule) = &a.schedule {
                schedule.render_text(a.status, a.members, &mut s);
            }
            if a.status == ActivationStatus::NotDue {
                continue;
            }
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
                    "      {} file{}, {} bytes{}{}\n",
                    a.files,
                    if a.files == 1 { "" } else { "s" },
                    a.bytes,
                    a.location
                        .as_deref()
                        .map(|l| format!(" in {l}"))
                        .unwrap_or_default(),
                    // Every file's name carries the delivery's run id.
                    a.run_id
                        .as_deref()
                        .map(|id| format!(", named by run {id}"))
                        .unwrap_or_default()
                ));
            }
            if let Some(api) = &a.api {
                api.render_text(&mut s);
            }
            for w in &a.warnings {
                s.push_str(&format!("      warning: {w}\n"));
            }
        }
        if !self.alerts.is_empty() {
            s.push_str("\nalerts\n");
        }
        for (name, a) in &self.alerts {
            let since = a
                .breached_since
                .as_deref()
                .map(|run| format!(", breached since run {run}"))
                .unwrap_or_default();
            let state = match a.fired {
                true => format!("fired{since}"),
                false => format!("still breached{since}, notified then"),
            };
            s.push_str(&format!(
                "  {name} ({}) on {}, {}: {state}\n      {}\n",
                a.severity, a.on, a.when, a.reason
            ));
            if let (Some(channel), Some(notified)) = (&a.channel, &a.notified) {
                s.push_str(&format!("      notify {channel}: {notified}\n"));
            }
            if let Some(w) = &a.written {
                s.push_str(&format!("      wrote {w}\n"));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::codes;

    fn report(statuses: &[ActivationStatus]) -> RunReport {
        let mut r = RunReport::default();
        for (i, status) in statuses.iter().enumerate() {
            r.activations.insert(
                format!("a{i}"),
                ActivationReport {
                    status: *status,
                    ..ActivationReport::default()
                },
            );
        }
        r
    }

    #[test]
    fn each_status_has_its_exit_code() {
        use crate::exit::{EXIT_ERRORS, EXIT_OK};
        use ActivationStatus::*;
        for &status in ActivationStatus::ALL {
            let expected = match status {
                Delivered | Unchanged | NotDue | DryRun | Preview | Skipped => EXIT_OK,
                Failed | Held | Blocked => EXIT_ERRORS,
            };
            assert_eq!(report(&[status]).exit_code(), expected, "{status}");
            // One activation that fails is enough, whatever the others did.
            assert_eq!(
                report(&[Delivered, status, Unchanged]).exit_code(),
                expected,
                "{status} among successes"
            );
        }
        assert_eq!(report(&[]).exit_code(), EXIT_OK, "no activations");
    }

    #[test]
    fn an_error_diagnostic_exits_1_and_a_warning_does_not() {
        use crate::exit::{EXIT_ERRORS, EXIT_OK};
        let mut r = report(&[ActivationStatus::Preview]);
        r.diagnostics.push(RunDiagnostic::new(
            codes::run::LOG_PARTIAL_LINE,
            "a warning",
        ));
        assert_eq!(r.exit_code(), EXIT_OK);
        r.diagnostics
            .push(RunDiagnostic::new(codes::run::LOG_PARTIAL_LINE, "raised").error());
        assert_eq!(r.exit_code(), EXIT_ERRORS);
    }

    #[test]
    fn a_fired_error_alert_exits_1_and_a_warning_or_a_standing_one_does_not() {
        use crate::exit::{EXIT_ERRORS, EXIT_OK};
        let alert = |severity, fired| AlertReport {
            on: "audience.a".into(),
            when: AlertKind::SizeDrop,
            severity,
            fired,
            breached_since: None,
            reason: "fell".into(),
            figures: AlertFigures::default(),
            channel: None,
            notified: None,
            written: None,
        };
        let mut r = report(&[ActivationStatus::Delivered]);
        r.alerts
            .insert("w".into(), alert(AlertSeverity::Warning, true));
        r.alerts
            .insert("e".into(), alert(AlertSeverity::Error, false));
        assert_eq!(r.exit_code(), EXIT_OK);
        r.alerts
            .insert("e".into(), alert(AlertSeverity::Error, true));
        assert_eq!(r.exit_code(), EXIT_ERRORS);
    }

    #[test]
    fn a_run_that_stopped_exits_2() {
        let mut r = report(&[ActivationStatus::Delivered]);
        r.status = RunStatus::Failed;
        assert_eq!(r.exit_code(), EXIT_USAGE);
    }

    #[test]
    fn statuses_keep_their_names_in_the_report() {
        for &status in ActivationStatus::ALL {
            let json = serde_json::to_string(&status).expect("serialises");
            assert_eq!(json, format!("\"{}\"", status.as_str()));
            let back: ActivationStatus = serde_json::from_str(&json).expect("reads back");
            assert_eq!(back, status);
        }
        assert_eq!(
            serde_json::to_string(&RunStatus::Completed).expect("serialises"),
            "\"completed\""
        );
        assert_eq!(
            serde_json::to_string(&RunStatus::Failed).expect("serialises"),
            "\"failed\""
        );
    }
}
