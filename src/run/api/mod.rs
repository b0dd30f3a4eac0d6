//! Delivery of one activation to an API destination, through `crate::deliver`.
//!
//! Input: the activation's members (`MemberBatches` of keys
//! `AUDIENCE/MEMBER`, first payload column the audience, then the mapped
//! columns), the store, the run's options. Output: the requests sent (or,
//! in a dry run, written to `.accord/runs/<delivery id>/requests.jsonl`),
//! the store's ledger brought up to what the destination accepted,
//! rejected members in `.accord/runs/<delivery id>/rejected.jsonl`, and the
//! activation's `api` report.
//!
//! The delivery is planned against the ledger, not against the last
//! evaluation (see docs/destinations.md): a member is sent when the payload
//! the destination holds differs from the one evaluated (new, changed,
//! rejected or never sent), or when its membership is about to expire; it
//! is removed only when the ledger says the destination holds it. The
//! changes are planned a chunk at a time as the executor takes them
//! ([`changes`]), so a large audience is never held as JSON values whole.

mod changes;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

pub use changes::CHUNK;
use changes::{Changes, InFlight};

use super::error::RunError;
use super::io;
use super::member_batches::MemberBatches;
use super::report::{ActivationReport, ActivationStatus, ApiReport};
use crate::deliver::changes::{ActivationReport as Delivered, Intent, Journal, Work};
use crate::deliver::{self, Config, Limits, ListRef, Op, RecordResult, Vendor};
use crate::faults::Faults;
use crate::plan::{ActivationPlan, DestinationPlan, Plan};
use crate::store::{LedgerUpdate, Store};
use crate::time::{self, Micros};

/// Microseconds in an hour.
const HOUR: Micros = 3_600_000_000;

/// Members per request when the catalog states no batch size.
const DEFAULT_BATCH: usize = 1_000;

/// What the API deliveries of one run share: one throttle per destination
/// instance, so that activations sending to the same destination keep to
/// its limits together.
#[derive(Default)]
pub struct Throttles {
    by_destination: Mutex<BTreeMap<String, Arc<deliver::throttle::Throttle>>>,
}

impl Throttles {
    /// The throttle of `destination`, made on first use with its limits
    /// and the calls the store counted today: deliveries and reads (a
    /// Marketo activity source) share it.
    pub(crate) fn get(
        &self,
        destination: &str,
        limits: &Limits,
        used_today: u64,
    ) -> Arc<deliver::throttle::Throttle> {
        let mut map = self
            .by_destination
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        map.entry(destination.to_string())
            .or_insert_with(|| Arc::new(deliver::throttle::Throttle::new(limits, used_today)))
            .clone()
    }
}

/// Everything one API delivery needs from the run.
pub struct ApiRun<'a> {
    pub plan: &'a Plan,
    pub root: &'a Path,
    pub store: &'a Store,
    pub faults: &'a Faults,
    pub throttles: &'a Throttles,
    pub runtime: &'a tokio::runtime::Runtime,
    pub now: Micros,
    pub dry_run: bool,
    pub max_reject_ratio: f64,
    /// Draw a progress bar of members sent (on a terminal).
    pub progress: bool,
    /// Changes planned and sent per work item ([`CHUNK`]; the tests make
    /// it small to cross chunk edges).
    pub chunk: usize,
}

impl ApiRun<'_> {
    /// Delivers one activation; sets its status and `api` report.
    pub fn deliver(
        &self,
        name: &str,
        activation: &ActivationPlan,
        members: &MemberBatches,
        delivery_id: &str,
        a: &mut ActivationReport,
    ) -> Result<(), RunError> {
        let failed = |reason: String| RunError::Api {
            activation: name.to_string(),
            destination: activation.destination.clone(),
            reason,
        };
        let destination = self
            .plan
            .destinations
            .get(&activation.destination)
            .ok_or_else(|| failed("the destination is not in the plan".into()))?;
        let mut config = Config::from_plan(
            &activation.destination,
            destination,
            limits(activation, destination),
        );
        if !deliver::vendors::supports(&destination.ty) {
            a.status = ActivationStatus::Skipped;
            a.warnings.push(format!(
                "{} is not delivered by this accord yet: nothing was sent",
                destination.ty
            ));
            return Ok(());
        }
        config.dry_run = self.dry_run;
        config.secrets = if self.dry_run {
            deliver::secrets::placeholders(&destination.settings)
        } else {
            deliver::secrets::resolve(&destination.settings, self.root).map_err(failed)?
        };
        let vendor = deliver::vendors::build(&config).map_err(failed)?;
        let report = ApiReport {
            invalid: a.excluded_missing_identity,
            limit: destination.rate_limit.map(|r| describe_limit(&r)),
            ..ApiReport::default()
        };
        let in_flight = Arc::new(Mutex::new(InFlight::default()));
        let list_of = {
            let (config, vendor) = (&config, vendor.as_ref());
            Box::new(move |audience: &str| self.known_list(name, audience, config, vendor))
        };
        let mut changes = Changes::new(
            self.store,
            name,
            members,
            &activation.audiences,
            list_of,
            in_flight.clone(),
            (vendor.ttl(), self.now),
            self.chunk,
        );
        let first = changes.next();
        if let Some(why) = changes.failed() {
            return Err(failed(why.to_string()));
        }
        let Some(first) = first else {
            a.status = ActivationStatus::Unchanged;
            a.api = Some(report);
            return Ok(());
        };
        let folder = io::inside(
            &self.root.join(".accord").join("runs"),
            delivery_id,
            "",
            &format!("activation `{name}`"),
        )?;
        if self.dry_run {
            return self.dry_run(
                name,
                (vendor.as_ref(), &config),
                (first, changes),
                &folder,
                report,
                a,
            );
        }
        let day = quota_day(&activation.destination_type, self.now);
        let used = self
            .store
            .calls_used(&activation.destination, &day)
            .map_err(|e| failed(e.to_string()))?;
        let throttle = self
            .throttles
            .get(&activation.destination, &config.limits, used);
        let mut journal = StoreJournal {
            store: self.store,
            run_id: delivery_id,
            day: &day,
            now: self.now,
            in_flight,
            membership_op: vendor.add_ops().last().copied().unwrap_or(Op::Add),
            request_ids: BTreeMap::new(),
            list_names: activation
                .audiences
                .iter()
                .map(|a| (a.clone(), config.list_name(a)))
                .collect(),
        };
        let options = deliver::send::SendOptions {
            fault_point: Some(self.fault_point()),
            progress: self.progress,
            ..deliver::send::SendOptions::default()
        };
        let mut delivered = self.runtime.block_on(deliver::send::deliver(
            vendor.as_ref(),
            &config,
            &throttle,
            std::iter::once(first).chain(&mut changes),
            &mut journal,
            &options,
        ));
        if let Some(why) = changes.failed() {
            return Err(failed(why.to_string()));
        }
        let outcome = delivered.activations.remove(name).unwrap_or_default();
        self.finish(name, activation, outcome, &folder, report, a)
    }

    /// A dry run: the requests a live run would make, written a chunk at a
    /// time to `<folder>/<activation>.requests.jsonl`; nothing is sent and
    /// the store is not touched.
    fn dry_run(
        &self,
        name: &str,
        (vendor, config): (&dyn Vendor, &Config),
        (first, mut changes): (Work, Changes),
        folder: &Path,
        mut report: ApiReport,
        a: &mut ActivationReport,
    ) -> Result<(), RunError> {
        let failed = |reason: String| RunError::Api {
            activation: name.to_string(),
            destination: config.name.clone(),
            reason,
        };
        let mut dry = deliver::dry_run::DryRun::default();
        let path = folder.join(format!("{name}.requests.jsonl"));
        io::write_atomic_with(&path, self.faults, |file| {
            let mut out = std::io::BufWriter::new(file);
            for item in std::iter::once(first).chain(&mut changes) {
                dry.add(vendor, config, &item);
                for request in dry.requests.drain(..) {
                    serde_json::to_writer(&mut out, &request).map_err(std::io::Error::other)?;
                    out.write_all(b"\n")?;
                }
            }
            // A plan cut short is no dump of it: the file is not put in place.
            if let Some(why) = changes.failed() {
                return Err(std::io::Error::other(why.to_string()));
            }
            out.flush()
        })
        .map_err(|e| failed(e.to_string()))?;
        dry.finish(vendor, config);
        for (key, why) in &dry.unsendable {
            a.warnings
                .push(format!("member `{key}` cannot be sent: {why}"));
        }
        if dry.bulk_jobs > 0 {
            a.warnings.push(format!(
                "{} bulk jobs: a live run also polls each until it is done, \
                 which no dry run can know; those polls are not in the calls",
                dry.bulk_jobs
            ));
        }
        report.planned = changes.planned;
        report.calls = dry.calls;
        report.pending = report.planned;
        report.min_duration_ms = Some(dry.min_duration.as_millis() as u64);
        report.written.push(shown(self.root, &path));
        a.status = ActivationStatus::DryRun;
        a.api = Some(report);
        Ok(())
    }

    /// The report, the rejected members' file and the status.
    fn finish(
        &self,
        name: &str,
        activation: &ActivationPlan,
        outcome: Delivered,
        folder: &Path,
        mut report: ApiReport,
        a: &mut ActivationReport,
    ) -> Result<(), RunError> {
        report.sent = outcome.sent;
        report.accepted = outcome.accepted;
        report.rejected = outcome.rejected.len() as u64;
        report.planned = outcome.planned.max(report.planned);
        report.pending = outcome.pending;
        report.calls = outcome.calls;
        report.throttle_wait_ms = outcome.throttle_wait.as_millis() as u64;
        report.vendor_usage = outcome
            .api_usage
            .map(|(used, limit)| format!("{used}/{limit}"));
        report.calls_today = self
            .store
            .calls_used(
                &activation.destination,
                &quota_day(&activation.destination_type, self.now),
            )
            .unwrap_or(0);
        if !outcome.rejected.is_empty() {
            let lines: Vec<Value> = outcome
                .rejected
                .iter()
                .map(|r| {
                    serde_json::json!({
                        "key": r.key, "audience": r.audience, "operation": r.op.as_str(),
                        "code": r.code, "message": r.message, "attempts": r.attempts,
                    })
                })
                .collect();
            let path = folder.join(format!("{name}.rejected.jsonl"));
            write_lines(&path, &lines, self.faults).map_err(|e| RunError::Api {
                activation: name.to_string(),
                destination: activation.destination.clone(),
                reason: e.to_string(),
            })?;
            report.written.push(shown(self.root, &path));
        }
        let ratio = if report.sent == 0 {
            0.0
        } else {
            report.rejected as f64 / report.sent as f64
        };
        a.status = if let Some(why) = &outcome.failed {
            a.warnings.push(format!("delivery failed: {why}"));
            ActivationStatus::Failed
        } else if ratio > self.max_reject_ratio {
            a.warnings.push(format!(
                "{} of {} members sent were rejected ({:.1}%), more than --max-reject-ratio {} allows",
                report.rejected,
                report.sent,
                ratio * 100.0,
                self.max_reject_ratio
            ));
            ActivationStatus::Failed
        } else {
            ActivationStatus::Delivered
        };
        if report.pending > 0 && outcome.failed.is_none() {
            a.warnings.push(format!(
                "{} member operations were not sent (the daily quota): the next run sends them",
                report.pending
            ));
        }
        a.api = Some(report);
        Ok(())
    }

    /// The list id of an audience when it is known: pinned in the spec,
    /// or found or created by an earlier run or chunk. In a dry run a list
    /// not yet known shows as a placeholder. Errors are the store's.
    fn known_list(
        &self,
        activation: &str,
        audience: &str,
        config: &Config,
        vendor: &dyn Vendor,
    ) -> Result<Option<ListRef>, String> {
        if !vendor.has_lists() {
            return Ok(None);
        }
        let name = config.list_name(audience);
        let id = match config.lists.get(audience) {
            Some(id) => Some(id.clone()),
            None => self
                .store
                .list_id(activation, audience)
                .map_err(|e| e.to_string())?
                .map(|l| l.id),
        };
        Ok(id.map(|id| ListRef {
            audience: audience.to_string(),
            name,
            id,
        }))
    }

    fn fault_point(&self) -> Arc<dyn Fn(deliver::send::FaultPoint) + Send + Sync> {
        let faults = self.faults.clone();
        Arc::new(move |_| faults.step())
    }
}

/// The limits requests to a destination keep to: the catalog's batch and
/// payload sizes, the destination's effective rate limit.
fn limits(activation: &ActivationPlan, destination: &DestinationPlan) -> Limits {
    Limits {
        batch_size: activation
            .limits
            .batch_size
            .map_or(DEFAULT_BATCH, |b| b as usize),
        max_bytes: activation.limits.max_payload_bytes.map(|b| b as usize),
        ..rate_limits(destination)
    }
}

/// The destination's effective rate limit as the throttle takes it: the
/// window, the in-flight cap and the daily quota (no batching).
pub(crate) fn rate_limits(destination: &DestinationPlan) -> Limits {
    let rate = destination.rate_limit;
    Limits {
        batch_size: 0,
        max_bytes: None,
        window: rate.map(|r| (r.calls, Duration::from_secs(u64::from(r.per_seconds)))),
        concurrent: rate.and_then(|r| r.concurrent).map_or(4, |c| c as usize),
        daily: rate.and_then(|r| r.daily).map(u64::from),
    }
}

fn describe_limit(r: &crate::plan::RateLimitPlan) -> String {
    let mut s = format!("{} per {}s", r.calls, r.per_seconds);
    if let Some(c) = r.concurrent {
        s.push_str(&format!(", {c} in flight"));
    }
    if let Some(d) = r.daily {
        s.push_str(&format!(", {d} per day"));
    }
    s
}

/// The vendor's day a request counts against, `YYYY-MM-DD`: daily quotas
/// reset at the vendor's midnight, not at UTC's. Marketo's resets at
/// 00:00 US Central Standard Time (UTC-6) and Google's at midnight US
/// Pacific time (UTC-8 is taken all year: during daylight time the day
/// turns an hour later than Google's, which only ever counts too much);
/// the others count UTC days.
pub(crate) fn quota_day(destination_type: &str, now: Micros) -> String {
    let offset = match destination_type {
        "marketo_engage" => -6,
        "google_customer_match" => -8,
        _ => 0,
    };
    time::utc(now + offset * HOUR)
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

/// The journal of the executor, over the store: intents before requests,
/// outcomes into the ledger after them.
struct StoreJournal<'a> {
    store: &'a Store,
    run_id: &'a str,
    day: &'a str,
    now: Micros,
    /// The payloads of the members the chunk being sent adds, and the
    /// vendor ids an upsert returned for them.
    in_flight: Arc<Mutex<InFlight>>,
    /// The add operation whose acceptance puts a member in the audience:
    /// the vendor's last (`Add`; an `Upsert` where membership is a field
    /// of the record, as in Salesforce).
    membership_op: Op,
    /// The store's request id of each executor request id.
    request_ids: BTreeMap<u64, i64>,
    /// The name of each audience's list, as accord creates it.
    list_names: BTreeMap<String, String>,
}

impl Journal for StoreJournal<'_> {
    fn intent(&mut self, request: &Intent) -> Result<(), String> {
        let id = self
            .store
            .intent(&crate::store::Intent {
                run_id: self.run_id,
                activation: &request.activation,
                audience: &request.audience,
                op: request.op.as_str(),
                members: &request.keys,
                at: self.now,
            })
            .map_err(|e| e.to_string())?;
        self.request_ids.insert(request.request_id, id);
        Ok(())
    }

    fn records(
        &mut self,
        request_id: u64,
        activation: &str,
        audience: &str,
        op: Op,
        results: &[(String, RecordResult)],
        _attempts: u32,
    ) -> Result<(), String> {
        let mut updates = Vec::new();
        let mut in_flight = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        for (key, result) in results {
            let id = (audience.to_string(), key.clone());
            match (op, result) {
                (Op::Upsert, RecordResult::Accepted { remote_id })
                    if self.membership_op != Op::Upsert =>
                {
                    if let Some(r) = remote_id {
                        in_flight.remote_ids.insert(id, r.clone());
                    }
                }
                (Op::Add | Op::Upsert, RecordResult::Accepted { remote_id }) => {
                    updates.push(LedgerUpdate::Accepted {
                        member: key.clone(),
                        payload: in_flight.payloads.get(&id).cloned().unwrap_or_default(),
                        remote_id: remote_id
                            .clone()
                            .or_else(|| in_flight.remote_ids.get(&id).cloned()),
                        at: self.now,
                    })
                }
                (Op::Remove, RecordResult::Accepted { .. }) => {
                    updates.push(LedgerUpdate::Removed {
                        member: key.clone(),
                    })
                }
                (_, RecordResult::Rejected { code, message }) => {
                    updates.push(LedgerUpdate::Rejected {
                        member: key.clone(),
                        code: code.clone(),
                        message: message.clone(),
                    })
                }
                (_, RecordResult::Retry { .. }) => {}
            }
        }
        drop(in_flight);
        self.store
            .record(activation, audience, &updates)
            .map_err(|e| e.to_string())?;
        if let Some(id) = self.request_ids.remove(&request_id) {
            let summary = format!("{} results", results.len());
            self.store
                .complete(id, self.now, &summary)
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    fn list_id(&mut self, activation: &str, audience: &str, id: &str) -> Result<(), String> {
        let name = self.list_names.get(audience).cloned().unwrap_or_default();
        self.store
            .set_list_id(
                activation,
                audience,
                &crate::store::ListRecord {
                    id: id.to_string(),
                    name,
                },
            )
            .map_err(|e| e.to_string())
    }

    fn call(&mut self, destination: &str) -> Result<(), String> {
        self.store
            .add_calls(destination, self.day, 1)
            .map_err(|e| e.to_string())
    }
}

/// Writes JSON lines atomically.
fn write_lines(path: &Path, lines: &[Value], faults: &Faults) -> std::io::Result<()> {
    let mut bytes = Vec::new();
    for line in lines {
        serde_json::to_writer(&mut bytes, line).map_err(std::io::Error::other)?;
        bytes.push(b'\n');
    }
    io::write_atomic(path, &bytes, faults)
}

fn shown(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}
