//! One run, in order: finish deliveries a crash interrupted, read and unify
//! the data, evaluate the audiences (the rendered audience queries), build
//! each activation's destination rows (the rendered export queries), deliver
//! the changes, commit state, record the run.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Instant;

use datafusion::arrow::record_batch::RecordBatch;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::deliver::{self, About, Encoded};
use super::delta::Delta;
use super::engine::{self, Engine};
use super::error::{Places, RunError};
use super::file_targets::{FILE_TYPES, FileTarget, file_target, shown};
use super::io::{self, Faults};
use super::local_store::LocalFileStore;
use super::member_batches::{Builder, MemberBatches, SpillPast};
use super::members::{Members, payload_schema};
use super::memberships::Memberships;
use super::report::{
    ActivationReport, ActivationStatus, LinkReport, Overlap, RunDiagnostic, RunReport, RunStatus,
    ScheduleReport, SourceReport,
};
use super::stale::{self, Stale};
use super::state::{self, Store};
use super::{Options, Select, alerts, api, lock, log, schedule, sources, unify};
use crate::deliver::storage::{FileStore, StorageErrorKind};
use crate::diag::codes;
use crate::file_layout::{self, FileLayout};
use crate::plan::{
    ActivationPlan, DeliveryMode, Enforcement, Entity, EnvEnforcement, ExportMode, Plan,
    PolicyVerdict, SchemaClass,
};
use crate::render::Jobs;
use crate::render::dialect::NOW_PLACEHOLDER;
use crate::semantics::{audience_column, audience_references};
use crate::time;

/// One run: the lock, the run under it, the report's line in the log. An
/// error stops the run (it is logged too); problems of one activation end
/// that activation `failed` in the report instead.
pub fn run(
    plan: &Plan,
    jobs: &Jobs,
    root: &Path,
    options: &Options,
) -> Result<RunReport, RunError> {
    let started = Instant::now();
    let _lock = lock_project(plan, root, options)?;
    run_from(plan, jobs, root, options, started)
}

/// One run by a process that holds the project's lock already, for as
/// long as it lives: `accord run --watch` takes it once and runs cycle
/// after cycle under it, so that no other run interleaves. Otherwise
/// [`run`].
pub fn run_held(
    plan: &Plan,
    jobs: &Jobs,
    root: &Path,
    options: &Options,
    _held: &lock::ProjectLock,
) -> Result<RunReport, RunError> {
    run_from(plan, jobs, root, options, Instant::now())
}

/// The run under the lock, from `started` (the duration counts a wait for
/// the lock).
fn run_from(
    plan: &Plan,
    jobs: &Jobs,
    root: &Path,
    options: &Options,
    started: Instant,
) -> Result<RunReport, RunError> {
    let faults = Faults::after(options.fault_after);
    let mut report = RunReport {
        status: RunStatus::Completed,
        project: plan.project.clone(),
        environment: plan.environment.clone(),
        now: time::format_timestamp(options.now),
        preview: options.preview,
        dry_run: !options.preview && dry_run(plan, options),
        ..RunReport::default()
    };
    let outcome = run_locked(plan, jobs, root, options, &faults, &mut report);
    report.duration_ms = started.elapsed().as_millis() as u64;
    if let Err(stop) = &outcome {
        record_stop(&mut report, stop, options.now);
    }
    if !options.preview {
        let logged = log::append(&mut report, root, &faults);
        if outcome.is_ok() {
            logged?;
        }
    }
    outcome.map(|()| report)
}

/// The lock before anything else, even the state of an unfinished delivery,
/// is read: two runs of one project would deliver the same changes. A
/// preview writes nothing and takes no lock. A refused run never started:
/// the log belongs to the holder, so nothing is appended.
fn lock_project(
    plan: &Plan,
    root: &Path,
    options: &Options,
) -> Result<Option<lock::ProjectLock>, RunError> {
    if options.preview {
        return Ok(None);
    }
    // The wall clock, not `now`: the holder's note says when it really
    // started, for a person deciding whether it hangs.
    let wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64);
    lock::acquire(
        root,
        &plan.project,
        options.wait,
        &time::format_timestamp(wall),
    )
    .map(Some)
}

/// A run that stopped is in the log too: `failed`, its error among the
/// diagnostics, and a run id from the error when it got no further.
fn record_stop(report: &mut RunReport, stop: &RunError, now: time::Micros) {
    let stop = stop.diagnostic();
    report.status = RunStatus::Failed;
    if report.run_id.is_empty() {
        let digest = crate::hash::sha256_hex(&stop.message);
        report.run_id = format!("{}-{}", time::compact_timestamp(now), &digest[..8]);
    }
    report.diagnostics.push(stop);
}

/// How many activations the preparing thread may run ahead of the one
/// delivering. Each holds its members until it is delivered, so under a
/// `memory_limit` they share what members may take (`Activating::prepare`).
const PREPARED_AHEAD: usize = 2;

/// The run itself, under the project lock: everything after the lock up to
/// the report's line in the log.
fn run_locked(
    plan: &Plan,
    jobs: &Jobs,
    root: &Path,
    options: &Options,
    faults: &Faults,
    report: &mut RunReport,
) -> Result<(), RunError> {
    let store = state::open(root, options.preview, faults)?;
    let unfinished = if options.preview {
        BTreeSet::new()
    } else {
        finish_unfinished(plan, root, options, &store, faults, report)?
    };
    let timings = timings(plan, &store, options)?;
    // A run where no activation is due reads no data: the schedules, not
    // the data, said there is nothing to deliver. A preview evaluates every
    // activation it considers, due or not, and says which a run would deliver.
    let any_runs = options.preview || timings.values().any(Timing::runs);
    let evaluated = if any_runs {
        Some(evaluate_for_delivery(
            plan, jobs, root, options, &store, &timings, report,
        )?)
    } else {
        None
    };
    let activations_started = Instant::now();
    let delivery_runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| RunError::Data {
            reason: format!("the delivery runtime cannot start: {e}"),
        })?;
    let cx = evaluated.as_ref().map(|e| Activating {
        api: api::ApiRun {
            plan,
            root,
            store: &store,
            faults,
            throttles: &e.throttles,
            runtime: &delivery_runtime,
            now: options.now,
            dry_run: dry_run(plan, options),
            max_reject_ratio: options.max_reject_ratio,
            progress: options.progress.is_some(),
            chunk: options.api_chunk.unwrap_or(api::CHUNK),
        },
        plan,
        jobs,
        root,
        options,
        faults,
        store: &store,
        engine: e.data.engine.as_ref(),
        now_sql: &e.now_sql,
        stale: &e.data.stale,
        undeliverable: e.undeliverable.as_deref(),
        audiences_failed: e.audiences_failed,
    });
    // The activations evaluated in this run, in order: the others are not
    // due, or wait for their unfinished delivery.
    let evaluated: Vec<&str> = timings
        .iter()
        .filter(|(name, timing)| {
            cx.is_some()
                && (options.preview || timing.runs())
                && !unfinished.contains(name.as_str())
                && plan.activations.contains_key(name.as_str())
        })
        .map(|(name, _)| name.as_str())
        .collect();
    let mut run_hash = Sha256::new();
    std::thread::scope(|scope| -> Result<(), RunError> {
        // Each evaluated activation's rows are prepared on a thread of
        // their own, up to `PREPARED_AHEAD` activations ahead (one waiting
        // in the channel, one being prepared): the export queries and
        // the members' hashes of the next ones take the cores the delivery
        // of this one leaves idle (writing files, waiting on the disk), and
        // a short delivery does not wait on a long preparation. Only the
        // preparing reads the engine's tables and nothing durable, so the
        // durable steps (state, store, files) keep their order.
        let (ahead, prepared) = std::sync::mpsc::sync_channel(PREPARED_AHEAD - 1);
        if let Some(cx) = &cx {
            let evaluated = evaluated.clone();
            scope.spawn(move || {
                for name in evaluated {
                    let activation = &plan.activations[name];
                    let mut a = new_report(activation);
                    let rows = cx.prepare(name, activation, &mut a);
                    // The run stopped: nothing more is asked for.
                    if ahead.send((a, rows)).is_err() {
                        break;
                    }
                }
            });
        }
        let mut evaluated = evaluated.iter().peekable();
        for (i, (name, timing)) in timings.iter().enumerate() {
            let Some(activation) = plan.activations.get(name) else {
                continue;
            };
            progress(
                options,
                &format!("activation {}/{}: {name}", i + 1, timings.len()),
            );
            let mut a = new_report(activation);
            if unfinished.contains(name) {
                // Its unfinished delivery failed above (the reason is in the
                // diagnostics): a new one on top would assume the destination
                // has what it may not have.
                a.status = ActivationStatus::Failed;
            } else if let (Some(cx), Some(_)) = (&cx, evaluated.next_if_eq(&&name.as_str())) {
                let (prepared_report, rows) = prepared.recv().map_err(|_| RunError::Data {
                    reason: format!("activation `{name}`: its rows were not evaluated"),
                })?;
                a = prepared_report;
                let outcome = rows.and_then(|rows| {
                    cx.activate(
                        name,
                        activation,
                        rows,
                        &mut a,
                        &mut report.diagnostics,
                        &mut run_hash,
                    )
                });
                if let Err(problem) = outcome {
                    if !problem.fails_one_activation() {
                        return Err(problem);
                    }
                    fail(report, &mut a, problem);
                }
            } else {
                // Not due: not evaluated, nothing sent; the destination keeps
                // what the last delivery gave it.
                a.status = ActivationStatus::NotDue;
                a.members = previous_members(root, &store, name)?;
            }
            // A delivery that reached the destination, or found it up to date,
            // serves the window it was due for; a dry run, a preview, a failed,
            // held or blocked activation serve none.
            let mut last = timing.last;
            if matches!(
                a.status,
                ActivationStatus::Delivered | ActivationStatus::Unchanged
            ) {
                store.set_last_delivered(name, options.now)?;
                last = Some(options.now);
            }
            a.schedule = Some(ScheduleReport {
                schedule: activation.schedule.to_string(),
                due: timing.due,
                forced_by: timing.forced_by.filter(|_| !timing.due).map(str::to_string),
                last_delivered: last.map(time::format_timestamp),
                next_due: schedule::next_due(activation.schedule, last).map(time::format_timestamp),
            });
            report.activations.insert(name.clone(), a);
        }
        Ok(())
    })?;
    let run_digest = crate::hash::hex(&run_hash.finalize()[..4]);
    report.run_id = format!("{}-{run_digest}", time::compact_timestamp(options.now));
    report.phases_ms.insert(
        "activations".into(),
        activations_started.elapsed().as_millis() as u64,
    );
    alerts::check(
        &alerts::AlertRun {
            plan,
            root,
            store: &store,
            faults,
            runtime: &delivery_runtime,
            now: options.now,
            preview: options.preview,
            dry_run: dry_run(plan, options),
        },
        report,
    )
}

/// An activation's report before it is evaluated.
fn new_report(activation: &ActivationPlan) -> ActivationReport {
    ActivationReport {
        destination: activation.destination.clone(),
        destination_type: activation.destination_type.clone(),
        export: activation.export.to_string(),
        ..ActivationReport::default()
    }
}

/// Whether nothing may leave the machine: `--dry-run`, or the
/// environment's `delivery = "dry-run"`.
fn dry_run(plan: &Plan, options: &Options) -> bool {
    options.dry_run || plan.delivery == Some(DeliveryMode::DryRun)
}

/// An activation's schedule as the run starts.
struct Timing {
    /// Its last successful delivery.
    last: Option<time::Micros>,
    /// Whether its schedule calls for a delivery at the run's `now`.
    due: bool,
    /// `--all` or `--activation`: delivered whether due or not.
    forced_by: Option<&'static str>,
}

impl Timing {
    /// Whether the run evaluates and delivers the activation.
    fn runs(&self) -> bool {
        self.due || self.forced_by.is_some()
    }
}

/// The activations the run considers (all, or those `--activation`
/// names), with their schedules at `now`, read from the store.
fn timings(
    plan: &Plan,
    store: &Store,
    options: &Options,
) -> Result<BTreeMap<String, Timing>, RunError> {
    let mut out = BTreeMap::new();
    for (name, activation) in &plan.activations {
        let forced_by = match &options.select {
            Select::Due => None,
            Select::All => Some("--all"),
            Select::Only(names) if names.contains(name) => Some("--activation"),
            Select::Only(_) => continue,
        };
        let last = store.last_delivered(name)?;
        out.insert(
            name.clone(),
            Timing {
                last,
                due: schedule::is_due(activation.schedule, last, options.now),
                forced_by,
            },
        );
    }
    Ok(out)
}

/// The members the destination holds from an activation's last delivery.
fn previous_members(root: &Path, store: &Store, name: &str) -> Result<u64, RunError> {
    Ok(state::committed(root, store, name)?.map_or(0, |r| r.members_count()))
}

/// What the activations of a run share once the data is read and the
/// audiences are evaluated.
struct Evaluated {
    data: Data,
    throttles: api::Throttles,
    now_sql: String,
    /// Why no activation may deliver in this run, if so.
    undeliverable: Option<String>,
    audiences_failed: bool,
}

/// Steps 2 and 3 for a run with something to evaluate: reads the data
/// into the report, then evaluates the audiences.
fn evaluate_for_delivery(
    plan: &Plan,
    jobs: &Jobs,
    root: &Path,
    options: &Options,
    store: &Store,
    timings: &BTreeMap<String, Timing>,
    report: &mut RunReport,
) -> Result<Evaluated, RunError> {
    progress(
        options,
        &format!(
            "reading {} sources, evaluating {} audiences",
            plan.sources.len(),
            plan.audiences.len()
        ),
    );
    // Made before the sources are read: a Marketo source reads through its
    // destination's throttle, which the deliveries then go on using.
    let throttles = api::Throttles::default();
    let mut data = read_data(
        plan,
        &options.engine,
        root,
        options.now,
        Some(store),
        !options.preview,
        &throttles,
    )?;
    // Data that did not read cleanly (an error, such as a quote that
    // swallowed rows or a schema without data) stops every delivery: the
    // audiences are evaluated together and linked across schemas, so any of
    // them may be short, and an incremental export would remove members who
    // are only missing from this run's reading.
    let data_errors: BTreeSet<&str> = data
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| d.code.as_str())
        .collect();
    let mut undeliverable = (!data_errors.is_empty()).then(|| {
        format!(
            "the data has errors ({})",
            data_errors.into_iter().collect::<Vec<_>>().join(", ")
        )
    });
    report.diagnostics.extend(data.diagnostics.iter().cloned());
    report.sources = std::mem::take(&mut data.sources);
    report.warnings.append(&mut data.warnings);
    report.phases_ms = data.phases_ms.clone();
    // A stale source that blocks stops only the activations that read its
    // schema (R0012), not every delivery; those not due this run are not
    // blocked by it.
    if !options.preview {
        for stale in data.stale.iter().filter(|s| s.blocks) {
            let readers: Vec<&String> = plan
                .activations
                .iter()
                .filter(|(_, a)| !stale::blocking(plan, a, std::slice::from_ref(stale)).is_empty())
                .map(|(name, _)| name)
                .collect();
            let blocked: Vec<&str> = readers
                .iter()
                .filter(|n| timings.get(n.as_str()).is_some_and(Timing::runs))
                .map(|n| n.as_str())
                .collect();
            if blocked.is_empty() && !readers.is_empty() {
                report.warnings.push(format!(
                    "{} (no activation that reads it is due in this run)",
                    stale.warning()
                ));
            } else {
                report.diagnostics.push(stale.diagnostic(&blocked));
            }
        }
    }

    let now_sql = now_sql(options.now);
    let audiences_started = Instant::now();
    let mut audiences_failed = false;
    let (members, links) =
        audiences_and_links(data.engine.as_ref(), plan, jobs, &now_sql, &options.places);
    // A link report that cannot be counted stops the run, as reading does.
    report.links = links.map_err(|reason| RunError::Data { reason })?;
    let members = match members {
        Ok(members) => members,
        // An audience the engine cannot evaluate leaves every activation
        // without rows: they fail (exit 1), and the report still shows the
        // data. Any other error stops the run.
        Err(e @ (RunError::Engine { .. } | RunError::Audiences { .. })) => {
            undeliverable = Some(format!(
                "the audiences could not be evaluated ({})",
                codes::run::ENGINE_FAILED.as_str()
            ));
            report.diagnostics.push(e.diagnostic());
            audiences_failed = true;
            Memberships::default()
        }
        Err(e) => return Err(e),
    };
    report.phases_ms.insert(
        "audiences".into(),
        audiences_started.elapsed().as_millis() as u64,
    );
    for name in members.names() {
        report
            .audiences
            .insert(name.to_string(), members.count(name));
    }
    if options.preview {
        report.overlaps = overlaps(&members);
    }
    Ok(Evaluated {
        data,
        throttles,
        now_sql,
        undeliverable,
        audiences_failed,
    })
}

fn progress(options: &Options, what: &str) {
    if let Some(f) = options.progress {
        f(what)
    }
}

/// Step 1: finish what a crash interrupted, before anything new. An
/// activation whose unfinished delivery cannot be finished fails, alone:
/// returned, its problem in the report.
fn finish_unfinished(
    plan: &Plan,
    root: &Path,
    options: &Options,
    store: &Store,
    faults: &Faults,
    report: &mut RunReport,
) -> Result<BTreeSet<String>, RunError> {
    let mut unfinished = BTreeSet::new();
    for (name, activation) in &plan.activations {
        match finish_pending(plan, name, activation, root, options, store, faults) {
            Ok(Some(run_id)) => report.warnings.push(format!(
                "finished the delivery {run_id} of `{name}` that an earlier run left unfinished"
            )),
            Ok(None) => {}
            Err(problem) if problem.fails_one_activation() => {
                report.diagnostics.push(problem.diagnostic());
                unfinished.insert(name.clone());
            }
            Err(problem) => return Err(problem),
        }
    }
    Ok(unfinished)
}

/// Members shared by two audiences, for `--preview`.
fn overlaps(members: &Memberships) -> Vec<Overlap> {
    let mut out = Vec::new();
    let names: Vec<&str> = members.names().collect();
    for (i, a) in names.iter().enumerate() {
        for b in &names[i + 1..] {
            // A part and its own audience always overlap: not news.
            if b.starts_with(&format!("{a}.")) {
                continue;
            }
            let n = members.overlap(a, b);
            if n > 0 {
                out.push(Overlap {
                    a: a.to_string(),
                    b: b.to_string(),
                    members: n,
                });
            }
        }
    }
    out
}

/// An activation's rows as [`Activating::prepare`] leaves them for the
/// rest of the activation.
enum Prepared {
    /// The audiences could not be evaluated: the activation has no rows.
    NoAudiences,
    /// No export job was rendered for it.
    NoJob,
    /// The destination rows, and the audiences whose rows were left out.
    Rows {
        blocked: BTreeSet<String>,
        target: MemberBatches,
    },
}

/// What every activation of one run shares.
struct Activating<'a> {
    /// Deliveries to API destinations.
    api: api::ApiRun<'a>,
    plan: &'a Plan,
    jobs: &'a Jobs,
    root: &'a Path,
    options: &'a Options,
    faults: &'a Faults,
    store: &'a Store,
    engine: &'a dyn Engine,
    now_sql: &'a str,
    /// The stale sources of the run; those that block, block the
    /// activations that read their schema.
    stale: &'a [Stale],
    /// Why no activation may deliver in this run (data errors, audiences
    /// the engine could not evaluate), if so.
    undeliverable: Option<&'a str>,
    /// The audience tables are missing: no export query can run.
    audiences_failed: bool,
}

impl Activating<'_> {
    /// The first part of an activation: its destination rows, less the
    /// rows of the audiences its policies block, counted in `a`. It reads
    /// only the engine's tables (no state, no store, nothing durable), so
    /// it runs ahead, beside the delivery of the activation before it
    /// ([`run_locked`]).
    fn prepare(
        &self,
        name: &str,
        activation: &ActivationPlan,
        a: &mut ActivationReport,
    ) -> Result<Prepared, RunError> {
        if self.audiences_failed {
            return Ok(Prepared::NoAudiences);
        }
        let Some(sql) = job(
            self.engine,
            self.jobs,
            &format!("exports/{name}.sql"),
            self.now_sql,
        ) else {
            return Ok(Prepared::NoJob);
        };
        let (plan, options) = (self.plan, self.options);
        let mut blocked = blocked_audiences(plan, activation, a);
        // A dataflow that violates a blocking policy for one audience stops
        // whole, as `check` stops it: none of its audiences is delivered.
        if !blocked.is_empty() {
            blocked = activation.audiences.iter().cloned().collect();
        }
        let engine_failed = |reason: String| RunError::Engine {
            kind: "activation",
            name: name.to_string(),
            place: options.places.of("activation", name),
            reason,
        };
        let batching = match options.spill_members_by {
            // The tests' hook: small batches, every one spilled.
            Some(rows) => MemberBatching {
                rows: rows.max(1),
                spill: Some(SpillPast {
                    root: self.root,
                    bytes: 0,
                }),
            },
            // Under a memory limit, the activations holding their members
            // at once (one delivering, those prepared ahead) share a
            // quarter of it, each spilling past its share (a twelfth).
            None => MemberBatching {
                spill: self.engine.memory_limit().map(|limit| SpillPast {
                    root: self.root,
                    bytes: usize::try_from(limit / 4 / (PREPARED_AHEAD as u64 + 1))
                        .unwrap_or(usize::MAX),
                }),
                ..MemberBatching::held()
            },
        };
        let target = destination_rows(self.engine, activation, &sql, &blocked, a, batching)
            .map_err(engine_failed)?;
        if let Some(consent) = job(
            self.engine,
            self.jobs,
            &format!("exports/{name}.consent.sql"),
            self.now_sql,
        ) {
            a.excluded_consent =
                consent_excluded(self.engine, &consent, &blocked).map_err(engine_failed)?;
        }
        // Received: every candidate row, before consent and the other
        // exclusions (the export query's rows are after consent).
        a.profiles_received += a.excluded_consent;
        a.members = target.len() as u64;
        a.members_spilled = target.spilled_bytes();
        if blocked.is_empty() {
            below_minimum(activation, &target, a);
        }
        Ok(Prepared::Rows { blocked, target })
    }

    /// The rest of an activation, once [`Activating::prepare`] gave its
    /// rows: the changes against its state, the guards, then the delivery.
    /// Sets the activation's status; an error is either this activation's
    /// (the caller ends it `failed`) or the run's.
    fn activate(
        &self,
        name: &str,
        activation: &ActivationPlan,
        prepared: Prepared,
        a: &mut ActivationReport,
        diagnostics: &mut Vec<RunDiagnostic>,
        run_hash: &mut Sha256,
    ) -> Result<(), RunError> {
        let (plan, options) = (self.plan, self.options);
        let (blocked, target) = match prepared {
            Prepared::NoAudiences => {
                a.status = ActivationStatus::Failed;
                a.members = self.previous_members(name)?;
                a.warnings.push(format!(
                    "not delivered: {}; nothing was sent or removed",
                    self.undeliverable
                        .unwrap_or("the audiences could not be evaluated")
                ));
                return Ok(());
            }
            Prepared::NoJob => {
                a.status = ActivationStatus::Skipped;
                a.warnings
                    .push("no rendered export job for this activation".into());
                return Ok(());
            }
            Prepared::Rows { blocked, target } => (blocked, target),
        };
        let old = state::committed(self.root, self.store, name)?;
        let delta = state::changes(name, old.as_ref(), &target)?;
        (a.created, a.updated, a.removed) = (delta.added, delta.updated, delta.removed);
        // The run id's suffix comes from what every activation evaluated
        // to, so two runs (previews too) that differ in content differ in id.
        let digest = target.digest().to_string();
        run_hash.update(digest.as_bytes());
        // The removal guard: "its members" are the members delivered last
        // time; the removals, the ones of them the new evaluation no longer
        // has, whatever the export mode (a full export drops them too).
        let previous = old.as_ref().map_or(0, |r| r.members_count());
        let ratio = activation.max_removed_ratio;
        let too_many_removals = previous > 0 && a.removed as f64 > ratio * previous as f64;
        let allowed = options.allow_removals.contains(name);
        let removals = format!(
            "the delivery would remove {} of its {previous} members ({}%), more than max_removed_ratio {ratio} allows",
            a.removed,
            a.removed * 100 / previous.max(1)
        );
        if too_many_removals && allowed {
            a.warnings.push(format!(
                "{removals}: let through by `--allow-removals {name}`"
            ));
        }
        let stale = stale::blocking(plan, activation, self.stale);
        let stale_sources = stale
            .iter()
            .map(|s| format!("`{}`", s.source))
            .collect::<Vec<_>>()
            .join(", ");
        if options.preview {
            a.status = ActivationStatus::Preview;
            if too_many_removals && !allowed {
                a.warnings.push(format!("a run would hold it: {removals}"));
            }
            if !stale.is_empty() {
                a.warnings.push(format!(
                    "a run would block it: source {stale_sources} is stale ({})",
                    codes::run::SOURCE_STALE.as_str()
                ));
            }
        } else if !blocked.is_empty() {
            a.status = ActivationStatus::Blocked;
            (a.created, a.updated, a.removed) = (0, 0, 0);
            a.members = previous;
        } else if !stale.is_empty() {
            a.status = ActivationStatus::Blocked;
            (a.created, a.updated, a.removed) = (0, 0, 0);
            a.members = previous;
            a.warnings.push(format!(
                "not delivered: source {stale_sources} is stale ({}); nothing was sent or removed",
                codes::run::SOURCE_STALE.as_str()
            ));
        } else if let Some(why) = self.undeliverable {
            a.status = ActivationStatus::Failed;
            (a.created, a.updated, a.removed) = (0, 0, 0);
            a.members = previous;
            a.warnings
                .push(format!("not delivered: {why}; nothing was sent or removed"));
        } else if too_many_removals && !allowed {
            // Held: nothing is delivered and the state stays, so the
            // destination keeps its members until a person lets it through.
            a.status = ActivationStatus::Held;
            a.members = previous;
            diagnostics.push(
                RunDiagnostic::new(
                    codes::run::REMOVALS_HELD,
                    format!("activation `{name}`: held: {removals}"),
                )
                .help(format!(
                    "check the sources of this run; if the removals are real, run again with `--allow-removals {name}`"
                )),
            );
        } else {
            let run_id = format!("{}-{}", time::compact_timestamp(options.now), &digest[..8]);
            self.deliver(
                name,
                activation,
                &run_id,
                &target,
                (old.as_ref(), &delta),
                a,
            )?;
        }
        Ok(())
    }

    /// The delivery of an activation that passed every guard: skipped where
    /// this runner cannot deliver, `unchanged` when an incremental export
    /// has nothing to send, else the files under the pending record and the
    /// commit. A delivery that fails keeps its pending record: the next run
    /// finishes it first, under the same run id. `committed` and `delta`:
    /// the state the change set is from, and the change set.
    fn deliver(
        &self,
        name: &str,
        activation: &ActivationPlan,
        run_id: &str,
        target: &MemberBatches,
        (committed, delta): (Option<&state::Record>, &Delta),
        a: &mut ActivationReport,
    ) -> Result<(), RunError> {
        // The store writes only the changes against the committed members
        // where they are few.
        let from = committed.map(|record| (record, delta));
        if !FILE_TYPES.contains(&activation.destination_type.as_str()) {
            return self.deliver_api(name, activation, run_id, target, from, a);
        }
        let Some(files) = file_target(
            self.plan,
            name,
            activation,
            self.root,
            self.options,
            self.faults,
            self.api.dry_run,
        )?
        else {
            a.status = ActivationStatus::Skipped;
            (a.created, a.updated, a.removed) = (0, 0, 0);
            a.warnings
                .push("the destination is not in the plan: nothing was written".into());
            return Ok(());
        };
        if delta.is_empty() && activation.export != ExportMode::Full {
            a.status = ActivationStatus::Unchanged;
            return Ok(());
        }
        let encode = || {
            encode_delivery(
                self.plan, self.root, name, activation, run_id, target, delta,
            )
        };
        let location = files.store().location();
        if let FileTarget::DryRun(dry) = &files {
            // Nothing leaves the machine and the store does not advance:
            // what a live run would upload is described, in order.
            let encoded = encode()?;
            write_delivery(dry, name, activation, &encoded)?;
            let folder = io::inside(
                &self.root.join(".accord").join("runs"),
                run_id,
                "",
                &format!("activation `{name}`"),
            )?;
            let path = io::inside(
                &folder,
                name,
                ".objects.jsonl",
                &format!("activation `{name}`"),
            )?;
            let mut lines = Vec::new();
            for write in dry.writes() {
                serde_json::to_writer(&mut lines, &write).map_err(|e| RunError::Data {
                    reason: e.to_string(),
                })?;
                lines.push(b'\n');
            }
            io::write_atomic(&path, &lines, self.faults).map_err(|e| RunError::Delivery {
                activation: name.to_string(),
                destination: activation.destination.clone(),
                path: shown(self.root, &path),
                reason: e.to_string(),
            })?;
            a.status = ActivationStatus::DryRun;
            (a.files, a.bytes) = encoded.totals();
            a.location = Some(location);
            a.written.push(shown(self.root, &path));
            return Ok(());
        }
        // Encoding the files writes nothing, and the members file is the
        // first durable step: the two run side by side (each about as long
        // as the other, seconds at millions of members), the members file
        // on a thread of its own rather than the shared pool, which the
        // next activations' preparing uses meanwhile. An encoding that
        // fails leaves a members file no record names, as a crash before
        // the pending record does; the next commit removes it.
        let (encoded, pending) = beside(encode, || {
            state::save(self.root, name, run_id, target, from, self.faults)
        });
        let encoded = encoded?;
        let pending = pending?;
        self.store.begin(&pending)?;
        write_target(&files, name, activation, &encoded, self.faults)?;
        state::commit(self.root, self.store, &pending, self.faults)?;
        // Counted once written: a failed activation reports no files.
        (a.files, a.bytes) = encoded.totals();
        a.location = Some(location);
        a.status = ActivationStatus::Delivered;
        a.run_id = Some(pending.run_id);
        Ok(())
    }

    /// The delivery to an API destination, planned against the store's
    /// ledger (`api`). The membership is committed as the activation's
    /// state as well (what the removal guard and the change counts compare
    /// with), unless nothing was sent: a dry run, or a failure.
    fn deliver_api(
        &self,
        name: &str,
        activation: &ActivationPlan,
        run_id: &str,
        target: &MemberBatches,
        from: Option<(&state::Record, &Delta)>,
        a: &mut ActivationReport,
    ) -> Result<(), RunError> {
        self.api.deliver(name, activation, target, run_id, a)?;
        if matches!(
            a.status,
            ActivationStatus::Delivered | ActivationStatus::Unchanged
        ) {
            let pending = state::save(self.root, name, run_id, target, from, self.faults)?;
            self.store.begin(&pending)?;
            state::commit(self.root, self.store, &pending, self.faults)?;
            a.run_id = Some(pending.run_id);
        }
        Ok(())
    }

    /// The members the destination holds from the last delivery.
    fn previous_members(&self, name: &str) -> Result<u64, RunError> {
        previous_members(self.root, self.store, name)
    }
}

/// Warns of activated audiences below the destination's minimum size.
fn below_minimum(activation: &ActivationPlan, target: &MemberBatches, a: &mut ActivationReport) {
    let Some(min) = activation.limits.min_audience_size else {
        return;
    };
    for audience in &activation.audiences {
        let n = target.count_in(audience);
        if n < min {
            a.warnings.push(format!(
                "`{audience}` has {n} members, below the {} minimum of {min}: the destination will not serve it",
                activation.destination_type
            ));
        }
    }
}

/// A rendered job in the engine's dialect, `now` filled in.
pub(super) fn job(engine: &dyn Engine, jobs: &Jobs, path: &str, now_sql: &str) -> Option<String> {
    jobs.get(&format!("sql/{}/{path}", engine.dialect()))
        .map(|sql| sql.replace(NOW_PLACEHOLDER, now_sql))
}

/// `now` as the rendered SQL takes it.
fn now_sql(now: time::Micros) -> String {
    time::format_timestamp(now)
        .trim_end_matches('Z')
        .replacen('T', " ", 1)
}

/// Ends an activation `failed`, the problem in the report. Nothing reached
/// the destination, so no change is counted.
fn fail(report: &mut RunReport, a: &mut ActivationReport, problem: RunError) {
    a.status = ActivationStatus::Failed;
    (a.created, a.updated, a.removed) = (0, 0, 0);
    report.diagnostics.push(problem.diagnostic());
}

/// Finishes the delivery a crash left pending for one activation: the same
/// difference under the same run id (only the files the crash prevented
/// are written), then the commit. Returns the run id it finished.
fn finish_pending(
    plan: &Plan,
    name: &str,
    activation: &ActivationPlan,
    root: &Path,
    options: &Options,
    store: &Store,
    faults: &Faults,
) -> Result<Option<String>, RunError> {
    let Some((pending, target)) = state::pending(root, store, name)? else {
        return Ok(None);
    };
    let committed = state::committed(root, store, name)?;
    // A crash between committing the state and removing the pending
    // record: the delivery is complete already.
    let done = committed
        .as_ref()
        .is_some_and(|s| s.run_id == pending.run_id);
    if !done && let Some(files) = file_target(plan, name, activation, root, options, faults, false)?
    {
        let members = MemberBatches::of(target.members()?);
        let delta = state::changes(name, committed.as_ref(), &members)?;
        let encoded = encode_delivery(
            plan,
            root,
            name,
            activation,
            &pending.run_id,
            &members,
            &delta,
        )?;
        write_target(&files, name, activation, &encoded, faults)?;
    }
    state::commit(root, store, &pending, faults)?;
    Ok(Some(pending.run_id))
}

/// The data read and the audiences evaluated, before any delivery.
pub struct Evaluation {
    /// The session, holding the unified tables and `accord_accounts`
    /// (and `accord_people`), which the export queries read.
    pub engine: Box<dyn Engine>,
    /// The members of every audience and `NAME.part`.
    pub members: Memberships,
    pub sources: BTreeMap<String, SourceReport>,
    pub links: Vec<LinkReport>,
    pub warnings: Vec<String>,
    /// Coded problems of the data (R00xx), in source order.
    pub diagnostics: Vec<RunDiagnostic>,
    /// `now` as the rendered SQL takes it.
    pub now_sql: String,
    /// Milliseconds per phase: `read`, `unify`, `audiences`.
    pub phases_ms: BTreeMap<String, u64>,
}

/// Reads, types and unifies every source, then runs the rendered audience
/// queries: the membership of every audience at `now`. An engine error
/// names the failing audience without its `file:line`; a caller holding
/// the compiled specs passes their places to [`evaluate_with`].
pub fn evaluate(
    plan: &Plan,
    jobs: &Jobs,
    root: &Path,
    now: time::Micros,
) -> Result<Evaluation, String> {
    evaluate_with(
        plan,
        jobs,
        root,
        now,
        &Places::default(),
        &engine::Choice::default(),
    )
    .map_err(|e| e.to_string())
}

/// [`evaluate`], with where the definitions are written, on the chosen
/// engine.
pub fn evaluate_with(
    plan: &Plan,
    jobs: &Jobs,
    root: &Path,
    now: time::Micros,
    places: &Places,
    choice: &engine::Choice,
) -> Result<Evaluation, RunError> {
    evaluate_in(plan, jobs, root, now, places, choice, None, false)
}

/// [`evaluate_with`], reading append-only sources incrementally from what
/// `store` remembers, and (with `remember`) recording what was read, as a
/// run does.
#[allow(clippy::too_many_arguments)]
pub fn evaluate_in(
    plan: &Plan,
    jobs: &Jobs,
    root: &Path,
    now: time::Micros,
    places: &Places,
    choice: &engine::Choice,
    store: Option<&crate::store::Store>,
    remember: bool,
) -> Result<Evaluation, RunError> {
    let data = read_data(
        plan,
        choice,
        root,
        now,
        store,
        remember,
        &api::Throttles::default(),
    )?;
    let started = Instant::now();
    let now_sql = now_sql(now);
    let (members, links) = audiences_and_links(data.engine.as_ref(), plan, jobs, &now_sql, places);
    let links = links.map_err(|reason| RunError::Data { reason })?;
    let members = members?;
    let mut phases_ms = data.phases_ms;
    phases_ms.insert("audiences".into(), started.elapsed().as_millis() as u64);
    Ok(Evaluation {
        engine: data.engine,
        members,
        sources: data.sources,
        links,
        // Evaluating delivers nothing: a stale source that would block a
        // run is a warning here.
        warnings: data
            .warnings
            .into_iter()
            .chain(data.stale.iter().filter(|s| s.blocks).map(|s| {
                format!(
                    "{} (on_stale: block; a run blocks the activations that read it)",
                    s.warning()
                )
            }))
            .collect(),
        diagnostics: data.diagnostics,
        now_sql,
        phases_ms,
    })
}

/// The data read, typed and unified into the engine's tables.
struct Data {
    engine: Box<dyn Engine>,
    sources: BTreeMap<String, SourceReport>,
    warnings: Vec<String>,
    diagnostics: Vec<RunDiagnostic>,
    /// The stale sources (those that do not block are in `warnings` too).
    stale: Vec<Stale>,
    /// `read` and `unify`.
    phases_ms: BTreeMap<String, u64>,
}

/// Step 2: reads and types every source, then unifies them (merging the
/// sources of a schema, linking people to accounts). `store` is the run's
/// (none when only evaluating); `remember`: what is read may be recorded in
/// it (not in a preview).
fn read_data(
    plan: &Plan,
    choice: &engine::Choice,
    root: &Path,
    now: time::Micros,
    store: Option<&crate::store::Store>,
    remember: bool,
    throttles: &api::Throttles,
) -> Result<Data, RunError> {
    let data = |reason: String| RunError::Data { reason };
    let mut phases_ms = BTreeMap::new();
    let started = Instant::now();
    let engine = engine::open(choice, root).map_err(data)?;
    let mut warnings = Vec::new();
    let mut diagnostics = Vec::new();
    let mut sources_report = BTreeMap::new();
    let mut loaded = Vec::new();
    let read_cx = sources::ReadContext {
        root,
        plan,
        now,
        store,
        remember,
        throttles,
        // Both engines take streams: the embedded one scans them, Spark is
        // sent them a piece at a time.
        stream: true,
    };
    // Marketo activities link to people through the people's rows, read
    // once every source is: accord reads those sources itself.
    let linked = sources::marketo::people_linked_by_email(plan);
    for (name, source) in &plan.sources {
        let schema = plan.schemas.get(&source.schema).ok_or_else(|| {
            data(format!(
                "source `{name}` reads unknown schema `{}`",
                source.schema
            ))
        })?;
        let in_engine = if linked.contains(source.schema.as_str()) {
            None
        } else {
            read_in_engine(engine.as_ref(), &read_cx, name, source, schema)?
        };
        let l = match in_engine {
            Some(l) => l,
            None => sources::read(&read_cx, name, source, schema)?,
        };
        diagnostics.extend(l.diagnostics.iter().cloned());
        if l.report.bad_rows > 0 {
            diagnostics.push(bad_rows(name, &l.report));
        }
        sources_report.insert(name.clone(), l.report.clone());
        loaded.push(l);
    }
    // Marketo activities whose lead only Marketo knew link to the person
    // with their lead's email, now that the people are read.
    sources::marketo::link_people(plan, &mut loaded).map_err(data)?;
    for l in loaded.iter().filter(|l| l.report.marketo.is_some()) {
        sources_report.insert(l.name.clone(), l.report.clone());
    }
    diagnostics.extend(missing_data(plan, &loaded));
    // A stale source that does not block is a warning of the run; one that
    // blocks is R0012 of the run (`run_locked`).
    let stale = stale::stale_sources(plan, &sources_report, now);
    warnings.extend(stale.iter().filter(|s| !s.blocks).map(Stale::warning));
    phases_ms.insert("read".into(), started.elapsed().as_millis() as u64);
    let started = Instant::now();
    unify::unify(engine.as_ref(), plan, loaded).map_err(data)?;
    phases_ms.insert("unify".into(), started.elapsed().as_millis() as u64);
    Ok(Data {
        engine,
        sources: sources_report,
        warnings,
        diagnostics,
        stale,
        phases_ms,
    })
}

/// A source the engine reads itself (Spark reading Parquet files), or
/// `None`: accord reads it and registers its rows.
#[cfg_attr(not(feature = "spark"), allow(unused_variables))]
fn read_in_engine(
    engine: &dyn Engine,
    cx: &sources::ReadContext<'_>,
    name: &str,
    source: &crate::plan::SourcePlan,
    schema: &crate::plan::SchemaPlan,
) -> Result<Option<sources::Loaded>, RunError> {
    #[cfg(feature = "spark")]
    if let Some(spark) = engine.spark() {
        return sources::in_spark::read(cx, spark, name, source, schema);
    }
    Ok(None)
}

/// R0010: the bad rows of one source, located at the first.
fn bad_rows(name: &str, report: &SourceReport) -> RunDiagnostic {
    let mut d = RunDiagnostic::new(
        codes::run::BAD_ROWS,
        format!(
            "source `{name}`: {} bad row{} left out",
            report.bad_rows,
            if report.bad_rows == 1 { "" } else { "s" }
        ),
    )
    .help("the source report lists the first ones as `file:line: reason`; fix them in the data");
    if let Some(first) = report
        .bad_row_samples
        .first()
        .and_then(|s| s.split(": ").next())
    {
        d = d.at(first);
    }
    d
}

/// The audiences evaluated, and the link reports counted beside them on a
/// thread of their own: both only read the engine's tables, and the
/// counting (every person grouped by account) takes the cores the audience
/// query leaves idle. Where the engine gains nothing from that (a
/// `memory_limit` the two would share, Spark), the reports are counted
/// first, and one that cannot be counted leaves the audiences unevaluated.
fn audiences_and_links(
    engine: &dyn Engine,
    plan: &Plan,
    jobs: &Jobs,
    now_sql: &str,
    places: &Places,
) -> (
    Result<Memberships, RunError>,
    Result<Vec<LinkReport>, String>,
) {
    if !engine.queries_side_by_side() {
        return match unify::link_reports(engine, plan) {
            Ok(links) => (
                evaluate_audiences(engine, plan, jobs, now_sql, places),
                Ok(links),
            ),
            failed => (Ok(Memberships::default()), failed),
        };
    }
    beside(
        || evaluate_audiences(engine, plan, jobs, now_sql, places),
        || unify::link_reports(engine, plan),
    )
}

/// `here` on this thread and `there` on a thread of its own, at once: both
/// results, or the panic of either, once both end. Not the shared pool
/// (rayon): the work that pool is given meanwhile does not wait on these.
fn beside<A, B: Send>(here: impl FnOnce() -> A, there: impl FnOnce() -> B + Send) -> (A, B) {
    std::thread::scope(|scope| {
        let other = scope.spawn(there);
        let mine = here();
        let theirs = other
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (mine, theirs)
    })
}

/// Step 3: the rendered audience queries, registered as the tables the
/// export queries read (`accord_accounts`, `accord_people`); the members of
/// every audience and part.
fn evaluate_audiences(
    engine: &dyn Engine,
    plan: &Plan,
    jobs: &Jobs,
    now_sql: &str,
    places: &Places,
) -> Result<Memberships, RunError> {
    let data = |reason: String| RunError::Data { reason };
    let audiences_sql =
        job(engine, jobs, "audiences.sql", now_sql).ok_or_else(|| RunError::MissingJob {
            path: format!("sql/{}/audiences.sql", engine.dialect()),
        })?;
    // The audience queries end ordered by their key (`render::query`),
    // which the export queries then need not sort by again.
    let accounts = engine
        .materialize_sorted("accord_accounts", &audiences_sql, "__account_key")
        .map_err(|e| audience_failure(engine, plan, places, Entity::Account, &audiences_sql, e))?;
    let mut members = Memberships::default();
    let references = audience_references(plan, Entity::Account);
    members
        .add(accounts, "__account_key", references)
        .map_err(data)?;
    if let Some(sql) = job(engine, jobs, "person_audiences.sql", now_sql) {
        let people = engine
            .materialize_sorted("accord_people", &sql, "__person_key")
            .map_err(|e| audience_failure(engine, plan, places, Entity::Person, &sql, e))?;
        let references = audience_references(plan, Entity::Person);
        members
            .add(people, "__person_key", references)
            .map_err(data)?;
    }
    Ok(members)
}

/// Data the plan reads that the sources do not hold: a schema without any
/// source (R0006, an error: its table is empty) and a field no file of its
/// sources carries (R0004, a warning; an error where enforcement blocks).
/// Read means read by an audience, a computed attribute or a mapping, plus
/// the account schema every audience starts from.
fn missing_data(plan: &Plan, loaded: &[sources::Loaded]) -> Vec<RunDiagnostic> {
    let blocking = plan.enforcement == Some(EnvEnforcement::Block);
    // (schema, field) -> the first definition that reads it.
    let mut reads: BTreeMap<(&str, &str), String> = BTreeMap::new();
    let readers = plan
        .audiences
        .iter()
        .flat_map(|(name, a)| {
            a.reads
                .iter()
                .map(move |r| (r, format!("audience `{name}`")))
        })
        .chain(plan.computed.iter().flat_map(|(name, c)| {
            c.reads
                .iter()
                .map(move |r| (r, format!("computed attribute `{name}`")))
        }))
        .chain(plan.activations.iter().flat_map(|(name, a)| {
            a.mapping.iter().flat_map(move |m| {
                m.reads
                    .iter()
                    .map(move |r| (r, format!("the mapping of activation `{name}`")))
            })
        }));
    for (read, by) in readers {
        if let Some((schema, field)) = read.split_once('.') {
            reads.entry((schema, field)).or_insert(by);
        }
    }
    let mut read_schemas: BTreeSet<&str> = reads.keys().map(|(s, _)| *s).collect();
    read_schemas.extend(
        plan.schemas
            .iter()
            .filter(|(_, s)| s.class == SchemaClass::Account)
            .map(|(n, _)| n.as_str()),
    );
    let mut out = Vec::new();
    for schema in read_schemas {
        let Some(plan_schema) = plan.schemas.get(schema) else {
            continue;
        };
        let feeding: Vec<&sources::Loaded> = loaded.iter().filter(|l| l.schema == schema).collect();
        if feeding.is_empty() {
            out.push(
                RunDiagnostic::new(
                    codes::run::SCHEMA_WITHOUT_SOURCE,
                    format!(
                        "schema `{schema}` has no source: its table is empty, so nothing that reads it finds a member"
                    ),
                )
                .help(format!(
                    "add a `[source.NAME]` with schema = \"{schema}\" and the path of its data"
                )),
            );
            continue;
        }
        // A source with a file it could not read (R0001, R0008, ...) already
        // stops the deliveries; its fields missing too would be noise.
        if feeding
            .iter()
            .any(|l| l.diagnostics.iter().any(RunDiagnostic::is_error))
        {
            continue;
        }
        for ((_, field), by) in reads.iter().filter(|((s, _), _)| *s == schema) {
            if !plan_schema.fields.contains_key(*field) {
                continue;
            }
            if feeding.iter().any(|l| l.present.iter().any(|p| p == field)) {
                continue;
            }
            let names: Vec<String> = feeding.iter().map(|l| format!("`{}`", l.name)).collect();
            let mut d = RunDiagnostic::new(
                codes::run::FIELD_WITHOUT_DATA,
                format!(
                    "field `{field}` of schema `{schema}` is in no data of source {}: it is null for every row, yet {by} reads it",
                    names.join(", ")
                ),
            )
            .help("name the column (or JSON key) in the data as the field, or rename the field in the schema; R0005 lists the data's columns that match no field");
            if let Some(file) = feeding.iter().find_map(|l| l.report.files.first()) {
                d = d.at(file.clone());
            }
            if blocking {
                d = d.error();
            }
            out.push(d);
        }
    }
    out
}

/// An audience query that failed in the engine, as the user reads it: the
/// audience that fails and where it is written, never the SQL (`accord
/// render` shows that). The query computes every audience at once, so each
/// audience column is queried alone (the engine computes only what a column
/// needs) and the first failing one whose own audiences pass is blamed.
fn audience_failure(
    engine: &dyn Engine,
    plan: &Plan,
    places: &Places,
    entity: Entity,
    sql: &str,
    reason: String,
) -> RunError {
    let key = match entity {
        Entity::Account => "__account_key",
        Entity::Person => "__person_key",
    };
    let alone = |column: &str| {
        engine
            .sql(&format!("SELECT {column} FROM (\n{sql}\n) __q"))
            .is_ok()
    };
    let whole = || RunError::Audiences {
        entity,
        reason: reason.clone(),
    };
    if !alone(key) {
        return whole();
    }
    let failing: Vec<&String> = plan
        .audiences
        .iter()
        .filter(|(_, a)| a.entity == entity)
        .filter(|(name, _)| !alone(&engine::ident(&audience_column(name))))
        .map(|(name, _)| name)
        .collect();
    match failing.iter().find(|name| {
        !plan.audiences[name.as_str()]
            .depends_on
            .iter()
            .any(|d| failing.contains(&d))
    }) {
        Some(name) => RunError::Engine {
            kind: "audience",
            name: name.to_string(),
            place: places.of("audience", name),
            reason: reason.clone(),
        },
        None => whole(),
    }
}

/// The files of a delivery of `target` under its run id, encoded to files
/// under `.accord/tmp/` (removed with the returned `Encoded`): a full
/// export's membership, or an incremental one's changes
/// (`delta`, a `change` column first). The run that evaluated the target
/// and a rerun that finishes its pending record read the same columns (the
/// members file holds the delivered types), so they encode the same bytes
/// and the rerun finds what a crash left written. Writing them is
/// [`write_target`]'s.
pub fn encode_delivery(
    plan: &Plan,
    root: &Path,
    name: &str,
    activation: &ActivationPlan,
    run_id: &str,
    target: &MemberBatches,
    delta: &Delta,
) -> Result<Encoded, RunError> {
    let failed = |reason: String| RunError::Delivery {
        activation: name.to_string(),
        destination: activation.destination.clone(),
        path: activation.destination.clone(),
        reason,
    };
    let layout = FileLayout::of(plan, activation).ok_or_else(|| {
        failed(format!(
            "`{}` destinations take no files",
            activation.destination_type
        ))
    })?;
    // A full export writes every member, an incremental one its changes
    // (`change` first); both in member order, a batch at a time.
    let (schema, rows): (_, Box<dyn Iterator<Item = Result<RecordBatch, String>>>) =
        if activation.export == ExportMode::Full {
            let rows = target.batches().map(|m| m.map(|m| m.payload()));
            (payload_schema(target.schema()), Box::new(rows))
        } else {
            (Delta::rows_schema(target), Box::new(delta.rows(target)))
        };
    let export = activation.export.to_string();
    let about = About {
        activation: name,
        destination: &activation.destination,
        export: &export,
        run_id,
        date: file_layout::run_date(run_id),
        audiences: &activation.audiences,
    };
    // The files are encoded to disk, under the project, and written from
    // there: a delivery is never whole in memory.
    let spool = io::scratch_folder(root, "deliver", &format!("activation `{name}`"))
        .map_err(|e| failed(e.to_string()))?;
    deliver::encode(&layout, (&schema, rows), &about, spool).map_err(failed)
}

/// A local folder refuses a name that would leave it, or that a symbolic
/// link holds, with the run's own code (R0101) before anything is written.
fn check_local_names(store: &LocalFileStore, encoded: &Encoded) -> Result<(), RunError> {
    let names = encoded.files.iter().map(|f| &f.name);
    for name in names.chain(encoded.manifest.iter().map(|m| &m.name)) {
        store.path(name)?;
    }
    Ok(())
}

/// Writes an encoded delivery to a live target: a local folder's names
/// checked first (R0101), a remote store's failures as R0110.
fn write_target(
    target: &FileTarget,
    name: &str,
    activation: &ActivationPlan,
    encoded: &Encoded,
    faults: &Faults,
) -> Result<(), RunError> {
    match target {
        FileTarget::Local(local) => {
            check_local_names(local, encoded)?;
            write_delivery(local, name, activation, encoded)
        }
        FileTarget::Remote(remote) => {
            deliver::write(remote.as_ref(), encoded, faults).map_err(|e| RunError::Storage {
                activation: name.to_string(),
                destination: activation.destination.clone(),
                location: remote.location(),
                kind: e.kind.unwrap_or(StorageErrorKind::Other),
                reason: format!("{}: {}", e.name, e.reason),
            })
        }
        FileTarget::DryRun(dry) => write_delivery(dry, name, activation, encoded),
    }
}

/// Writes an encoded delivery to a store that counts its own crash steps
/// or makes no durable effect (a local folder, a dry run's recorder):
/// missing files, then the manifest only when absent. A file that cannot
/// be written is R0106, naming the destination and the file.
fn write_delivery(
    store: &dyn FileStore,
    name: &str,
    activation: &ActivationPlan,
    encoded: &Encoded,
) -> Result<(), RunError> {
    deliver::write(store, encoded, &Faults::default()).map_err(|e| RunError::Delivery {
        activation: name.to_string(),
        destination: activation.destination.clone(),
        path: format!("{}/{}", store.location().trim_end_matches('/'), e.name),
        reason: e.reason,
    })
}

/// Members (sorted keys) of every audience and split part of one entity,
/// read from the boolean columns of the rendered audience query.
/// The activated audiences whose verdicts in the plan block them: a policy
/// `violated` where enforcement blocks, unless the policy is advisory (the
/// rule is `govern::violation_blocks`, the one `check` applies). Every
/// violation is a warning in the report.
pub(super) fn blocked_audiences(
    plan: &Plan,
    activation: &ActivationPlan,
    report: &mut ActivationReport,
) -> BTreeSet<String> {
    let environment_blocks = plan.enforcement == Some(EnvEnforcement::Block);
    let mut blocked = BTreeSet::new();
    for reference in &activation.audiences {
        let Some(governance) = activation.governance.get(reference) else {
            continue;
        };
        let (blocking, reported): (Vec<&str>, Vec<&str>) = governance
            .policies
            .iter()
            .filter(|(_, v)| **v == PolicyVerdict::Violated)
            .map(|(p, _)| p.as_str())
            .partition(|p| {
                // A policy the plan does not list blocks: the safe reading.
                let enforcement = plan
                    .policies
                    .get(*p)
                    .map_or(Enforcement::Hard, |p| p.enforcement);
                crate::govern::violation_blocks(environment_blocks, enforcement)
            });
        if !blocking.is_empty() {
            report.warnings.push(format!(
                "`{reference}` not activated: it violates {}",
                blocking.join(", ")
            ));
            blocked.insert(reference.clone());
        }
        if !reported.is_empty() {
            let why = if environment_blocks {
                "advisory: reported, never blocks"
            } else {
                "enforcement is not block: activated anyway"
            };
            report.warnings.push(format!(
                "`{reference}` violates {} ({why})",
                reported.join(", ")
            ));
        }
    }
    blocked
}

/// Whether a mapped value is there: not null, not empty.
pub(super) fn is_present(value: &Value) -> bool {
    !value.is_null() && *value != Value::String(String::new())
}

/// [`is_present`] on row `i` of an engine column, without making the cell a
/// JSON value: the run tests every identity cell of an export this way.
fn is_present_at(col: &datafusion::arrow::array::ArrayRef, i: usize) -> bool {
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::datatypes::DataType;
    col.is_valid(i)
        && match col.data_type() {
            DataType::Utf8 => !col.as_string::<i32>().value(i).is_empty(),
            DataType::LargeUtf8 => !col.as_string::<i64>().value(i).is_empty(),
            DataType::Utf8View => !col.as_string_view().value(i).is_empty(),
            _ => true,
        }
}

/// Whether a row (its mapped values, in mapping order) is left out for
/// want of an identity: the activation maps identity columns and none of
/// them has a value.
pub(super) fn lacks_identity(activation: &ActivationPlan, values: &[Value]) -> bool {
    let identities: Vec<&Value> = activation
        .mapping
        .iter()
        .zip(values)
        .filter(|(m, _)| m.identity.is_some())
        .map(|(_, v)| v)
        .collect();
    !identities.is_empty() && !identities.into_iter().any(is_present)
}

/// Rows consent removed, from the rendered `exports/<name>.consent.sql`
/// (per audience); audiences not delivered for a policy are not counted.
fn consent_excluded(
    engine: &dyn Engine,
    sql: &str,
    blocked: &BTreeSet<String>,
) -> Result<u64, String> {
    let batch = engine.query(sql)?;
    let audiences = engine::keys(&batch, "__audience")?;
    let counts = batch
        .column_by_name("__excluded")
        .ok_or("the consent query has no column `__excluded`")?;
    let mut total = 0;
    for (i, audience) in audiences.iter().enumerate() {
        if audience.as_ref().is_some_and(|a| blocked.contains(a)) {
            continue;
        }
        if let Some(n) = engine::cell(counts, i).as_i64() {
            total += n.max(0) as u64;
        }
    }
    Ok(total)
}

/// The rows an activation delivers: the rendered export query's rows (one
/// per member and activated audience, exclusions, people filter, consent and
/// hashing applied by the SQL), less rows without any identity and rows of
/// `blocked` audiences, as members keyed by `audience/member` (so changes
/// are per audience) in key order; what it leaves out is counted in
/// `report`. The rows stay columns: the kept rows are picked, sorted and
/// deduplicated by index. They are taken as the query streams them when
/// they come in member order ([`streamed_rows`], in batches as `batching`
/// says), else from the whole result in one batch.
pub(super) fn destination_rows(
    engine: &dyn Engine,
    activation: &ActivationPlan,
    sql: &str,
    blocked: &BTreeSet<String>,
    report: &mut ActivationReport,
    batching: MemberBatching,
) -> Result<MemberBatches, String> {
    let counted = (
        report.profiles_received,
        report.failed,
        report.excluded_policy,
        report.excluded_missing_identity,
    );
    if let Some(members) = streamed_rows(engine, activation, sql, blocked, report, batching)? {
        return Ok(members);
    }
    // The whole result, put in member order here: the rows it counted
    // while streaming are counted again.
    (
        report.profiles_received,
        report.failed,
        report.excluded_policy,
        report.excluded_missing_identity,
    ) = counted;
    let batch = engine.query(sql)?;
    let (members, payload) = kept_rows(&batch, activation, blocked, report, Order::Sort)?
        .ok_or("the export query's rows could not be put in member order")?;
    // The query's result is dropped before the members are hashed: the
    // two are never held with the hashes.
    drop(batch);
    Members::new(members, &payload).map(MemberBatches::of)
}

/// Rows of the export query taken together into one batch of members:
/// enough that hashing them shares the cores, few enough to hold many.
const MEMBER_BATCH_ROWS: usize = 128 * 1024;

/// How [`destination_rows`] batches an activation's members.
pub(super) struct MemberBatching<'a> {
    /// Rows of the export query per batch of members.
    pub rows: usize,
    /// Where and past what the batches spill; `None`: all held.
    pub spill: Option<SpillPast<'a>>,
}

impl MemberBatching<'_> {
    /// Batches of [`MEMBER_BATCH_ROWS`], all held.
    pub(super) fn held() -> Self {
        MemberBatching {
            rows: MEMBER_BATCH_ROWS,
            spill: None,
        }
    }
}

/// The members of [`destination_rows`] as the query streams them, a batch
/// of `batching.rows` query rows at a time (held, or spilled past
/// `batching.spill`), when its rows come in member order. `None` when they
/// do not (every batch is checked, not trusted to follow the rendered
/// `ORDER BY`), or when a
/// column's delivered type depends on its values (the batches would
/// disagree): the caller then takes the whole result.
fn streamed_rows(
    engine: &dyn Engine,
    activation: &ActivationPlan,
    sql: &str,
    blocked: &BTreeSet<String>,
    report: &mut ActivationReport,
    batching: MemberBatching,
) -> Result<Option<MemberBatches>, String> {
    use datafusion::arrow::array::Array;
    use datafusion::arrow::compute::concat_batches;
    use datafusion::arrow::datatypes::DataType;

    let engine::Batches { schema, batches } = engine.stream(sql)?;
    // The query sorts the key as text (an integer key by its text, as the
    // members are keyed), so its rows come in member order either way.
    let typed = |name: &str, types: &[DataType]| {
        schema
            .field_with_name(name)
            .is_ok_and(|f| types.contains(f.data_type()))
    };
    let keys = [DataType::Utf8, DataType::Int64, DataType::Int32];
    if !typed(row_key_column(activation), &keys) || !typed("__audience", &[DataType::Utf8]) {
        return Ok(None);
    }
    // The members' columns, and whether the types decide them: an empty
    // batch of the query's columns taken through the same steps.
    let empty = RecordBatch::new_empty(schema.clone());
    let Some((keys, payload)) = kept_rows(&empty, activation, blocked, report, Order::Stream)?
    else {
        return Ok(None);
    };
    if super::columns::delivered_schema(&payload.schema()).is_none() {
        return Ok(None);
    }
    let members_schema = Members::new(keys, &payload)?.batch().schema();
    let mut builder = Builder::new(members_schema, batching.spill);
    // The engine's batches are taken `batching.rows` rows at a time, the
    // rest of the last one carried to the next members batch.
    let (mut taken, mut held): (Vec<RecordBatch>, usize) = (Vec::new(), 0);
    let mut batches = batches.fuse();
    loop {
        let next = batches.next().transpose()?;
        let done = next.is_none();
        if let Some(batch) = next {
            held += batch.num_rows();
            taken.push(batch);
        }
        while held >= batching.rows || (done && held > 0) {
            let all = concat_batches(&schema, &taken).map_err(|e| e.to_string())?;
            taken.clear();
            let part = all.slice(0, batching.rows.min(held));
            if part.num_rows() < held {
                taken.push(all.slice(part.num_rows(), held - part.num_rows()));
            }
            held -= part.num_rows();
            drop(all);
            let Some((keys, payload)) =
                kept_rows(&part, activation, blocked, report, Order::Stream)?
            else {
                return Ok(None);
            };
            drop(part);
            if keys.is_empty() {
                continue;
            }
            if !builder.follows(keys.value(0)) {
                return Ok(None);
            }
            builder.push(Members::new(keys, &payload)?)?;
        }
        if done {
            break;
        }
    }
    builder.finish().map(Some)
}

/// The export query's column of the member's own key.
fn row_key_column(activation: &ActivationPlan) -> &'static str {
    if activation.rows == Entity::Person {
        "__person_key"
    } else {
        "__account_key"
    }
}

/// How [`kept_rows`] puts rows in member order.
#[derive(Clone, Copy, PartialEq)]
enum Order {
    /// Sorts them (the query's whole result).
    Sort,
    /// Takes them as they come, if they come in member order (a batch of
    /// a stream): `None` if they do not.
    Stream,
}

/// The member keys and payload of the rows of `batch` (the export query's)
/// that are kept, in member order, counting the others in `report`.
fn kept_rows(
    batch: &RecordBatch,
    activation: &ActivationPlan,
    blocked: &BTreeSet<String>,
    report: &mut ActivationReport,
    order: Order,
) -> Result<
    Option<(
        datafusion::arrow::array::StringArray,
        datafusion::arrow::record_batch::RecordBatch,
    )>,
    String,
> {
    use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringBuilder, UInt32Array};
    use datafusion::arrow::compute::{cast, take};
    use datafusion::arrow::datatypes::DataType;
    use rayon::prelude::*;

    let text = |name: &str| -> Result<ArrayRef, String> {
        let column = batch
            .column_by_name(name)
            .ok_or_else(|| format!("the export query has no column `{name}`"))?;
        cast(column, &DataType::Utf8).map_err(|e| e.to_string())
    };
    let row_keys = text(row_key_column(activation))?;
    let row_keys = row_keys.as_string::<i32>();
    let audiences = text("__audience")?;
    let audiences = audiences.as_string::<i32>();
    let mut columns: Vec<(&crate::plan::MappingPlan, ArrayRef)> = Vec::new();
    for m in &activation.mapping {
        let col = batch
            .column_by_name(&m.column)
            .ok_or_else(|| format!("the export query has no column `{}`", m.column))?;
        columns.push((m, col.clone()));
    }
    let identities: Vec<&ArrayRef> = columns
        .iter()
        .filter(|(m, _)| m.identity.is_some())
        .map(|(_, c)| c)
        .collect();
    let mut kept: Vec<u32> = Vec::new();
    for i in 0..batch.num_rows() {
        report.profiles_received += 1;
        if row_keys.is_null(i) || audiences.is_null(i) {
            report.failed += 1;
            continue;
        }
        let audience = audiences.value(i);
        if blocked.contains(audience) {
            report.excluded_policy += 1;
            continue;
        }
        if !identities.is_empty() && !identities.iter().any(|c| is_present_at(c, i)) {
            report.excluded_missing_identity += 1;
            continue;
        }
        kept.push(u32::try_from(i).map_err(|_| "the export query has too many rows")?);
    }
    // Ordered by key; of two rows with one key, the later one stays.
    let rows = match order {
        Order::Sort => super::members::member_order(audiences, row_keys, &kept),
        Order::Stream => match super::members::in_member_order(audiences, row_keys, &kept) {
            Some(rows) => rows,
            None => return Ok(None),
        },
    };
    let rows = UInt32Array::from(rows);
    // The keys and the payload are gathered in member order, on every
    // core: at 10M rows each is a pass of random reads.
    let keys = || {
        let bytes = rows
            .values()
            .iter()
            .map(|&i| audiences.value(i as usize).len() + 1 + row_keys.value(i as usize).len())
            .sum();
        let mut keys = StringBuilder::with_capacity(rows.len(), bytes);
        let mut key = String::new();
        for &i in rows.values() {
            key.clear();
            key.push_str(audiences.value(i as usize));
            key.push('/');
            key.push_str(row_keys.value(i as usize));
            keys.append_value(&key);
        }
        keys.finish()
    };
    let mut names = vec!["audience".to_string()];
    let mut sources: Vec<&dyn Array> = vec![audiences];
    for (m, col) in &columns {
        names.push(m.column.clone());
        sources.push(col.as_ref());
    }
    let payload = || {
        sources
            .par_iter()
            .map(|column| take(*column, &rows, None).map_err(|e| e.to_string()))
            .collect::<Result<Vec<ArrayRef>, String>>()
    };
    let (members, arrays) = rayon::join(keys, payload);
    let payload = super::columns::assemble(&names, arrays?, rows.len())?;
    Ok(Some((members, payload)))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{ArrayRef, Int64Array, StringArray};

    use super::{engine, is_present, is_present_at};

    /// The columnar test and the value test are one rule: explain reads
    /// values, the run reads columns, and they must leave out the same rows.
    #[test]
    fn presence_is_the_same_on_columns_and_on_values() {
        let columns: [ArrayRef; 2] = [
            Arc::new(StringArray::from(vec![Some("a@x.com"), Some(""), None])),
            Arc::new(Int64Array::from(vec![Some(0), None, Some(7)])),
        ];
        for col in &columns {
            for i in 0..col.len() {
                assert_eq!(
                    is_present_at(col, i),
                    is_present(&engine::cell(col, i)),
                    "row {i} of {col:?}"
                );
            }
        }
    }
}
