//! The executor: sends one destination's [`Work`] within its limits and
//! journals every request.
//!
//! In: the vendor file, the destination's config, its shared [`Throttle`],
//! the changes per (activation, audience), a [`Journal`] and options. Out:
//! a [`DeliveryReport`] per activation.
//!
//! Per work item, in order: the list is found by name or created when its
//! id is not known; the adds go through the vendor's add operations in
//! order (an upsert's vendor ids feed the next operation; members it
//! rejects go no further); then the removes. Within one operation, batches
//! go out concurrently up to the in-flight cap. Each answer is classified by
//! the vendor file: records accepted, rejected or retried; whole batches
//! throttled or failing for a while are resent after a backoff; an expired
//! token is fetched again once; a refused batch is split in halves until the
//! bad record is alone; a spent quota or a fatal answer stops sending, and
//! what is left stays pending for the next run.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use secrecy::SecretString;
use tokio::task::JoinSet;

use super::auth::TokenCache;
use super::batch;
use super::changes::{ActivationReport, DeliveryReport, Intent, Journal, Rejection, Work};
use super::config::Config;
use super::http::Http;
use super::progress::Progress;
use super::retry::Backoff;
use super::throttle::Throttle;
use super::vendor::{ListRef, Member, Op, Outcome, RecordResult, Vendor};
use super::wire::{WireRequest, WireResponse};

/// Where the crash-test hook is called.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultPoint {
    /// The intent is journaled; the request is not sent yet.
    BeforeRequest,
    /// The vendor answered (and applied the change); the answer is not
    /// journaled yet: a kill here loses the response.
    AfterResponse,
}

/// Called at every [`FaultPoint`] (the run's crash tests abort there).
pub type FaultHook = Arc<dyn Fn(FaultPoint) + Send + Sync>;

/// How the executor retries, and its hooks.
#[derive(Clone)]
pub struct SendOptions {
    /// Sends of one request (or one retried record) before it fails for good.
    pub max_attempts: u32,
    pub base_backoff: Duration,
    pub max_backoff: Duration,
    pub fault_point: Option<FaultHook>,
    /// The id of the first request journaled; the store passes one past
    /// its last, so ids stay unique across runs.
    pub first_request_id: u64,
    /// Draw a progress bar (on a terminal only).
    pub progress: bool,
    /// How long one bulk job is waited for before its members are left
    /// pending (see `bulk`).
    pub max_job_wait: Duration,
}

impl Default for SendOptions {
    fn default() -> SendOptions {
        let backoff = Backoff::default();
        SendOptions {
            max_attempts: 5,
            base_backoff: backoff.base,
            max_backoff: backoff.max,
            fault_point: None,
            first_request_id: 1,
            progress: false,
            max_job_wait: super::bulk::MAX_JOB_WAIT,
        }
    }
}

impl SendOptions {
    pub(super) fn backoff(&self) -> Backoff {
        Backoff {
            base: self.base_backoff,
            max: self.max_backoff,
        }
    }
}

/// Sends `work` to one destination; never panics on what the vendor answers.
/// The work items are taken one at a time, each once the one before is
/// done: a caller may plan them as they are asked for (the run plans an
/// audience's changes a chunk at a time), so what is held is one item.
pub async fn deliver(
    vendor: &dyn Vendor,
    config: &Config,
    throttle: &Throttle,
    work: impl IntoIterator<Item = Work>,
    journal: &mut dyn Journal,
    options: &SendOptions,
) -> DeliveryReport {
    let mut report = DeliveryReport::default();
    let http = match Http::new() {
        Ok(http) => http,
        Err(message) => return nothing_sent(work, message),
    };
    let progress = match options.progress {
        true => Progress::new(0, &config.name),
        false => Progress::hidden(),
    };
    let mut sender = Sender::new(vendor, config, throttle, http, journal, options, progress);
    for item in work {
        let r = report.activation(&item.activation);
        let members = (item.adds.len() + item.removes.len()) as u64;
        r.planned += members;
        sender.progress.planned(members);
        if r.failed.is_some() || sender.quota_spent {
            r.pending += members;
            r.quota_exhausted |= sender.quota_spent;
            sender.progress.done(members);
            continue;
        }
        sender.work(item, r).await;
    }
    sender.progress.finish();
    report
}

fn nothing_sent(work: impl IntoIterator<Item = Work>, message: String) -> DeliveryReport {
    let mut report = DeliveryReport::default();
    for item in work {
        let r = report.activation(&item.activation);
        let members = (item.adds.len() + item.removes.len()) as u64;
        r.planned += members;
        r.pending += members;
        r.failed = Some(message.clone());
    }
    report
}

/// Why sending to the destination stops.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Stop {
    /// The activation fails.
    Fatal(String),
    /// The vendor refused the credentials (no token issued, or a fresh
    /// token refused): nothing sent to it can succeed.
    Denied(String),
    /// The vendor could not be reached on any attempt.
    Unreachable(String),
    /// The day's quota is spent: nothing more goes to this destination.
    Quota,
}

/// The (activation, audience) a request belongs to.
pub(super) struct Scope {
    pub(super) activation: String,
    pub(super) audience: String,
}

/// A member waiting to be sent by one operation.
struct Pending {
    member: Member,
    /// Sends whose answer asked to send it again.
    attempts: u32,
    sent: bool,
}

/// An encoded request and the members it carries.
struct Batch {
    members: Vec<Pending>,
    request: WireRequest,
    ready_at: Instant,
    /// Sends refused as throttled or failed in passing.
    attempts: u32,
    /// The last send was refused for its token, and a new one was fetched.
    auth_retried: bool,
}

/// A batch on the wire.
struct Flight {
    batch: Batch,
    request_id: u64,
    token_generation: u64,
}

/// What one operation over a set of members ended with.
#[derive(Default)]
pub(super) struct OpDone {
    /// Members applied, with the vendor ids an upsert returned.
    pub(super) accepted: Vec<Member>,
    pub(super) pending: u64,
    pub(super) stop: Option<Stop>,
}

/// Who waits before a refused batch is sent again.
enum Wait {
    /// The vendor's window is full: no batch to the destination goes out
    /// before this one's backoff (at least the `Retry-After`) has passed.
    Everyone(Option<Duration>),
    /// Only the refused batch backs off.
    Batch,
}

/// The state of one operation while its batches go out.
struct OpRun<'s> {
    scope: &'s Scope,
    list: Option<&'s ListRef>,
    op: Op,
    /// The last operation of the member's path: its acceptances are final.
    last: bool,
    queue: VecDeque<Batch>,
    /// No batch goes out before this: a `Retry-After` holds the whole
    /// destination, not only the batch it answered.
    hold: Instant,
    flights: JoinSet<(Flight, Result<WireResponse, String>)>,
    done: OpDone,
}

pub(super) struct Sender<'a> {
    vendor: &'a dyn Vendor,
    pub(super) config: &'a Config,
    throttle: Throttle,
    http: Http,
    pub(super) journal: &'a mut dyn Journal,
    pub(super) options: &'a SendOptions,
    tokens: TokenCache,
    pub(super) next_request_id: u64,
    quota_spent: bool,
    pub(super) progress: Progress,
}

impl<'a> Sender<'a> {
    /// A sender for one destination, with no token yet.
    pub(super) fn new(
        vendor: &'a dyn Vendor,
        config: &'a Config,
        throttle: &Throttle,
        http: Http,
        journal: &'a mut dyn Journal,
        options: &'a SendOptions,
        progress: Progress,
    ) -> Sender<'a> {
        Sender {
            vendor,
            config,
            throttle: throttle.clone(),
            http,
            journal,
            options,
            tokens: TokenCache::new(vendor.auth()),
            next_request_id: options.first_request_id,
            quota_spent: false,
            progress,
        }
    }
}

impl Sender<'_> {
    async fn work(&mut self, item: Work, r: &mut ActivationReport) {
        let scope = Scope {
            activation: item.activation.clone(),
            audience: item.audience.clone(),
        };
        let list = match self.list(&item, r).await {
            Ok(list) => list,
            Err(stop) => {
                let members = (item.adds.len() + item.removes.len()) as u64;
                r.pending += members;
                self.progress.done(members);
                return self.stopped(stop, r);
            }
        };
        let removes = item.removes;
        let stop = match self.adds(&scope, list.as_ref(), item.adds, r).await {
            Some(stop) => {
                r.pending += removes.len() as u64;
                self.progress.done(removes.len() as u64);
                Some(stop)
            }
            None => {
                let done = self
                    .op(&scope, list.as_ref(), Op::Remove, true, removes, r)
                    .await;
                r.pending += done.pending;
                r.accepted += done.accepted.len() as u64;
                done.stop
            }
        };
        if let Some(stop) = stop {
            self.stopped(stop, r);
        }
    }

    /// The add operations in order; returns why sending stopped, if it did.
    async fn adds(
        &mut self,
        scope: &Scope,
        list: Option<&ListRef>,
        mut members: Vec<Member>,
        r: &mut ActivationReport,
    ) -> Option<Stop> {
        let ops = self.vendor.add_ops();
        for (i, op) in ops.iter().enumerate() {
            let last = i + 1 == ops.len();
            let done = self.op(scope, list, *op, last, members, r).await;
            r.pending += done.pending;
            members = done.accepted;
            if let Some(stop) = done.stop {
                if last {
                    r.accepted += members.len() as u64;
                } else {
                    r.pending += members.len() as u64;
                    self.progress.done(members.len() as u64);
                }
                return Some(stop);
            }
        }
        r.accepted += members.len() as u64;
        None
    }

    fn stopped(&mut self, stop: Stop, r: &mut ActivationReport) {
        match stop {
            Stop::Fatal(message) | Stop::Denied(message) | Stop::Unreachable(message) => {
                r.failed = r.failed.take().or(Some(message))
            }
            Stop::Quota => {
                self.quota_spent = true;
                r.quota_exhausted = true;
            }
        }
    }
}

impl Sender<'_> {
    /// One operation over `members`: batches out concurrently, answers
    /// settled as they come.
    async fn op(
        &mut self,
        scope: &Scope,
        list: Option<&ListRef>,
        op: Op,
        last: bool,
        members: Vec<Member>,
        r: &mut ActivationReport,
    ) -> OpDone {
        if let Some(jobs) = self.vendor.bulk()
            && members.len() > jobs.threshold()
        {
            return self.bulk_op(jobs, scope, op, members, r).await;
        }
        let mut run = OpRun {
            scope,
            list,
            op,
            last,
            queue: VecDeque::new(),
            hold: Instant::now(),
            flights: JoinSet::new(),
            done: OpDone::default(),
        };
        let fresh = members.into_iter().map(|member| Pending {
            member,
            attempts: 0,
            sent: false,
        });
        self.enqueue(&mut run, fresh.collect(), Instant::now(), r);
        loop {
            // Read each time: a refusal for requests in flight lowers it.
            let cap = self.throttle.concurrency();
            let sending = run.done.stop.is_none() && run.flights.len() < cap;
            let now = Instant::now();
            let ready = sending
                .then(|| {
                    run.queue
                        .iter()
                        .position(|b| b.ready_at.max(run.hold) <= now)
                })
                .flatten();
            if let Some(i) = ready {
                let batch = run.queue.remove(i).expect("the position is in the queue");
                self.dispatch(&mut run, batch, r).await;
                continue;
            }
            let next_ready = sending
                .then(|| run.queue.iter().map(|b| b.ready_at.max(run.hold)).min())
                .flatten();
            if run.flights.is_empty() {
                let Some(at) = next_ready else { break };
                tokio::time::sleep_until(at.into()).await;
                r.throttle_wait += now.elapsed();
                continue;
            }
            let joined = match next_ready {
                Some(at) => tokio::select! {
                    joined = run.flights.join_next() => joined,
                    _ = tokio::time::sleep_until(at.into()) => None,
                },
                None => run.flights.join_next().await,
            };
            if let Some(joined) = joined {
                let (flight, result) =
                    joined.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
                self.settle(&mut run, flight, result, r);
            }
        }
        let left: usize = run.queue.iter().map(|b| b.members.len()).sum();
        run.done.pending += left as u64;
        self.progress.done(left as u64);
        run.done
    }

    /// Encodes `members` into batches ready at `ready_at`; members no
    /// request can carry are rejected.
    fn enqueue(
        &mut self,
        run: &mut OpRun,
        members: Vec<Pending>,
        ready_at: Instant,
        r: &mut ActivationReport,
    ) {
        if members.is_empty() {
            return;
        }
        let plain: Vec<Member> = members.iter().map(|p| p.member.clone()).collect();
        let (encoded, unsendable) = batch::encode(
            self.vendor,
            (&run.scope.activation, &run.scope.audience),
            run.list,
            run.op,
            &plain,
            &self.config.limits,
        );
        let mut states: std::collections::HashMap<String, (u32, bool)> = members
            .iter()
            .map(|p| (p.member.key.clone(), (p.attempts, p.sent)))
            .collect();
        let mut state = |member: &Member| states.remove(&member.key).unwrap_or((0, false));
        for encoded in encoded {
            let members = encoded
                .members
                .into_iter()
                .map(|member| {
                    let (attempts, sent) = state(&member);
                    Pending {
                        member,
                        attempts,
                        sent,
                    }
                })
                .collect();
            run.queue.push_back(Batch {
                members,
                request: encoded.request,
                ready_at,
                attempts: 0,
                auth_retried: false,
            });
        }
        for bad in unsendable {
            let (attempts, _) = state(&bad.member);
            self.reject(run, &bad.member, bad.code, &bad.message, attempts, r);
        }
    }

    fn reject(
        &mut self,
        run: &OpRun,
        member: &Member,
        code: &str,
        message: &str,
        attempts: u32,
        r: &mut ActivationReport,
    ) {
        r.rejected.push(Rejection {
            audience: run.scope.audience.clone(),
            key: member.key.clone(),
            op: run.op,
            code: code.to_string(),
            message: message.to_string(),
            attempts,
        });
        self.progress.done(1);
    }

    /// Journals the intent and puts the batch on the wire; a stop leaves
    /// the batch pending.
    async fn dispatch(&mut self, run: &mut OpRun<'_>, mut batch: Batch, r: &mut ActivationReport) {
        let token = match self.token(r).await {
            Ok(token) => token,
            Err(stop) => return self.halt(run, stop, batch),
        };
        let waiting = Instant::now();
        let permit = match self.throttle.acquire().await {
            Ok(permit) => permit,
            Err(_) => return self.halt(run, Stop::Quota, batch),
        };
        r.throttle_wait += waiting.elapsed();
        let request_id = self.next_request_id;
        self.next_request_id += 1;
        let intent = Intent {
            request_id,
            activation: run.scope.activation.clone(),
            audience: run.scope.audience.clone(),
            op: run.op,
            keys: batch.members.iter().map(|p| p.member.key.clone()).collect(),
        };
        if let Err(stop) = self
            .count_call(r)
            .and_then(|()| journaled(self.journal.intent(&intent)))
        {
            return self.halt(run, stop, batch);
        }
        self.fault(FaultPoint::BeforeRequest);
        for pending in &mut batch.members {
            if !pending.sent
                && (run.op == Op::Remove || self.vendor.add_ops().first() == Some(&run.op))
            {
                r.sent += 1;
            }
            pending.sent = true;
        }
        let mut request = batch.request.clone();
        let token_generation = token.as_ref().map_or(0, |(_, generation)| *generation);
        if let Some((token, _)) = &token {
            self.vendor.authorize(&mut request, token);
        }
        let http = self.http.clone();
        run.flights.spawn(async move {
            let result = http.send(request).await;
            drop(permit);
            (
                Flight {
                    batch,
                    request_id,
                    token_generation,
                },
                result,
            )
        });
    }

    fn halt(&mut self, run: &mut OpRun, stop: Stop, batch: Batch) {
        run.done.pending += batch.members.len() as u64;
        self.progress.done(batch.members.len() as u64);
        run.done.stop.get_or_insert(stop);
    }

    /// The API usage the vendor reports, kept as the latest seen.
    fn usage(&self, response: &WireResponse, r: &mut ActivationReport) {
        if let Some(usage) = self.vendor.api_usage(response) {
            r.api_usage = Some(usage);
        }
    }

    fn count_call(&mut self, r: &mut ActivationReport) -> Result<(), Stop> {
        r.calls += 1;
        let destination = self.config.name.clone();
        journaled(self.journal.call(&destination))
    }

    pub(super) fn fault(&self, point: FaultPoint) {
        if let Some(hook) = &self.options.fault_point {
            hook(point);
        }
    }
}

impl Sender<'_> {
    /// What an answer (or a network failure) means for its batch.
    fn settle(
        &mut self,
        run: &mut OpRun,
        flight: Flight,
        result: Result<WireResponse, String>,
        r: &mut ActivationReport,
    ) {
        let Flight {
            batch,
            request_id,
            token_generation,
        } = flight;
        let response = match result {
            Ok(response) => response,
            Err(message) => return self.resend(run, batch, Wait::Batch, "network", &message),
        };
        self.fault(FaultPoint::AfterResponse);
        self.usage(&response, r);
        let members: Vec<Member> = batch.members.iter().map(|p| p.member.clone()).collect();
        let outcome = self.vendor.classify(run.op, &members, &response);
        let results = journal_results(&outcome, members.len());
        let keyed: Vec<(String, RecordResult)> =
            members.iter().map(|m| m.key.clone()).zip(results).collect();
        let attempts = batch.attempts + 1;
        let written = self.journal.records(
            request_id,
            &run.scope.activation,
            &run.scope.audience,
            run.op,
            &keyed,
            attempts,
        );
        if let Err(stop) = journaled(written) {
            return self.halt(run, stop, batch);
        }
        self.apply(run, batch, outcome, token_generation, r);
    }

    fn apply(
        &mut self,
        run: &mut OpRun,
        mut batch: Batch,
        outcome: Outcome,
        token_generation: u64,
        r: &mut ActivationReport,
    ) {
        match outcome {
            Outcome::Records(results) if results.len() == batch.members.len() => {
                self.records(run, batch, results, r)
            }
            Outcome::Records(results) => {
                let message = format!(
                    "the vendor answered {} results for {} records",
                    results.len(),
                    batch.members.len()
                );
                self.halt(run, Stop::Fatal(message), batch)
            }
            Outcome::Accepted => {
                let accepted =
                    vec![RecordResult::Accepted { remote_id: None }; batch.members.len()];
                self.records(run, batch, accepted, r)
            }
            Outcome::Throttled { retry_after, code } => {
                self.throttle.refused_for_window();
                self.resend(run, batch, Wait::Everyone(retry_after), &code, "throttled")
            }
            Outcome::Busy { code } => {
                self.throttle.refused_for_concurrency();
                self.resend(
                    run,
                    batch,
                    Wait::Batch,
                    &code,
                    "too many requests in flight",
                )
            }
            Outcome::Transient { code, message } => {
                self.resend(run, batch, Wait::Batch, &code, &message)
            }
            Outcome::AuthExpired if batch.auth_retried || self.tokens.refused(token_generation) => {
                let message = format!("{} refused the credentials", self.config.name);
                self.halt(run, Stop::Fatal(message), batch)
            }
            Outcome::AuthExpired => {
                batch.auth_retried = true;
                batch.ready_at = Instant::now();
                run.queue.push_front(batch);
            }
            Outcome::QuotaExhausted { .. } => self.halt(run, Stop::Quota, batch),
            Outcome::Refused {
                status,
                code,
                message,
            } => self.refused(run, batch, status, &code, &message, r),
            Outcome::Fatal { code, message } => {
                let message = format!("{} answered {code}: {message}", self.config.name);
                self.halt(run, Stop::Fatal(message), batch)
            }
        }
    }

    fn records(
        &mut self,
        run: &mut OpRun,
        batch: Batch,
        results: Vec<RecordResult>,
        r: &mut ActivationReport,
    ) {
        let mut again = Vec::new();
        for (mut pending, result) in batch.members.into_iter().zip(results) {
            pending.attempts += 1;
            match result {
                RecordResult::Accepted { remote_id } => {
                    if remote_id.is_some() {
                        pending.member.remote_id = remote_id;
                    }
                    if run.last {
                        self.progress.done(1);
                    }
                    run.done.accepted.push(pending.member);
                }
                RecordResult::Rejected { code, message } => {
                    self.reject(run, &pending.member, &code, &message, pending.attempts, r);
                }
                RecordResult::Retry { code, message }
                    if pending.attempts >= self.options.max_attempts =>
                {
                    self.reject(run, &pending.member, &code, &message, pending.attempts, r);
                }
                RecordResult::Retry { .. } => again.push(pending),
            }
        }
        let attempt = again.iter().map(|p| p.attempts).max().unwrap_or(1);
        let ready_at = Instant::now()
            + self
                .options
                .backoff()
                .delay(attempt, None, &mut rand::rng());
        if run.done.stop.is_some() {
            run.done.pending += again.len() as u64;
            self.progress.done(again.len() as u64);
        } else {
            self.enqueue(run, again, ready_at, r);
        }
    }

    /// Sends the batch again after a backoff, or fails it for good.
    fn resend(&mut self, run: &mut OpRun, mut batch: Batch, wait: Wait, code: &str, message: &str) {
        batch.attempts += 1;
        batch.auth_retried = false;
        if run.done.stop.is_some() {
            run.done.pending += batch.members.len() as u64;
            return self.progress.done(batch.members.len() as u64);
        }
        if batch.attempts >= self.options.max_attempts {
            let message = format!(
                "a request failed {} times; last: {code}: {message}",
                batch.attempts
            );
            return self.halt(run, Stop::Fatal(message), batch);
        }
        let retry_after = match wait {
            Wait::Everyone(retry_after) => retry_after,
            Wait::Batch => None,
        };
        let delay = self
            .options
            .backoff()
            .delay(batch.attempts, retry_after, &mut rand::rng());
        batch.ready_at = Instant::now() + delay;
        if let Wait::Everyone(_) = wait {
            run.hold = run.hold.max(batch.ready_at);
        }
        run.queue.push_back(batch);
    }

    /// A batch refused whole: halves are sent again until the bad record
    /// is alone, then it is rejected.
    fn refused(
        &mut self,
        run: &mut OpRun,
        batch: Batch,
        status: u16,
        code: &str,
        message: &str,
        r: &mut ActivationReport,
    ) {
        let mut members = batch.members;
        if let [single] = members.as_mut_slice() {
            single.attempts += 1;
            let text = format!("HTTP {status}: {message}");
            let (member, attempts) = (single.member.clone(), single.attempts);
            return self.reject(run, &member, code, &text, attempts, r);
        }
        if run.done.stop.is_some() {
            run.done.pending += members.len() as u64;
            return self.progress.done(members.len() as u64);
        }
        let right = members.split_off(members.len() / 2);
        let now = Instant::now();
        self.enqueue(run, members, now, r);
        self.enqueue(run, right, now, r);
    }
}

pub(super) fn journaled(result: Result<(), String>) -> Result<(), Stop> {
    result.map_err(|e| Stop::Fatal(format!("cannot record the delivery in the store: {e}")))
}

/// What the journal records per member for an answer.
fn journal_results(outcome: &Outcome, members: usize) -> Vec<RecordResult> {
    let retry = |code: &str, message: &str| RecordResult::Retry {
        code: code.to_string(),
        message: message.to_string(),
    };
    let every = |result: RecordResult| vec![result; members];
    match outcome {
        Outcome::Records(results) if results.len() == members => results.clone(),
        Outcome::Records(_) => every(retry("malformed", "the answer does not match the request")),
        Outcome::Accepted => every(RecordResult::Accepted { remote_id: None }),
        Outcome::Throttled { code, .. } | Outcome::Busy { code } => every(retry(code, "throttled")),
        Outcome::Transient { code, message } | Outcome::QuotaExhausted { code, message } => {
            every(retry(code, message))
        }
        Outcome::AuthExpired => every(retry("auth_expired", "the token was refused")),
        Outcome::Refused { code, message, .. } if members == 1 => every(RecordResult::Rejected {
            code: code.clone(),
            message: message.clone(),
        }),
        Outcome::Refused { code, message, .. } => every(retry(code, message)),
        Outcome::Fatal { code, message } => every(retry(code, message)),
    }
}

impl Sender<'_> {
    /// The credentials for the next request, fetching a token when due.
    async fn token(
        &mut self,
        r: &mut ActivationReport,
    ) -> Result<Option<(SecretString, u64)>, Stop> {
        if self.tokens.needs_fetch(Instant::now()) {
            self.fetch_token(r).await?;
        }
        Ok(self.tokens.current())
    }

    /// Fetches a token, retrying throttled and failing token requests.
    /// Nothing about the request is ever printed: it carries credentials.
    async fn fetch_token(&mut self, r: &mut ActivationReport) -> Result<(), Stop> {
        let mut attempts = 0;
        loop {
            let Some(request) = self.vendor.token_request(SystemTime::now()) else {
                return Err(Stop::Fatal(format!(
                    "{} makes no token request",
                    self.vendor.kind()
                )));
            };
            let requested_at = Instant::now();
            let (retry_after, problem, network) = match self.exchange(request, r).await? {
                Ok(response) if passing(response.status) => (
                    response.retry_after(),
                    format!("HTTP {}", response.status),
                    false,
                ),
                Ok(response) => {
                    let token = self.vendor.parse_token(&response).map_err(|e| {
                        Stop::Denied(format!("{}: authentication failed: {e}", self.config.name))
                    })?;
                    self.tokens.store(token, requested_at);
                    return Ok(());
                }
                Err(network) => (None, network, true),
            };
            attempts += 1;
            if attempts >= self.options.max_attempts {
                let message = format!(
                    "{}: the token request failed {attempts} times; last: {problem}",
                    self.config.name
                );
                return Err(if network {
                    Stop::Unreachable(message)
                } else {
                    Stop::Fatal(message)
                });
            }
            self.pause(attempts, retry_after, r).await;
        }
    }

    /// One request outside the batches (token, list), through the throttle.
    async fn exchange(
        &mut self,
        request: WireRequest,
        r: &mut ActivationReport,
    ) -> Result<Result<WireResponse, String>, Stop> {
        let waiting = Instant::now();
        let permit = self.throttle.acquire().await.map_err(|_| Stop::Quota)?;
        r.throttle_wait += waiting.elapsed();
        self.count_call(r)?;
        let result = self.http.send(request).await;
        drop(permit);
        if let Ok(response) = &result {
            self.usage(response, r);
        }
        Ok(result)
    }

    pub(super) async fn pause(
        &mut self,
        attempt: u32,
        retry_after: Option<Duration>,
        r: &mut ActivationReport,
    ) {
        let delay = self
            .options
            .backoff()
            .delay(attempt, retry_after, &mut rand::rng());
        tokio::time::sleep(delay).await;
        r.throttle_wait += delay;
    }

    /// The audience's list: known, found by name, or created.
    async fn list(
        &mut self,
        item: &Work,
        r: &mut ActivationReport,
    ) -> Result<Option<ListRef>, Stop> {
        if !self.vendor.has_lists() {
            return Ok(None);
        }
        if let Some(list) = &item.list {
            return Ok(Some(list.clone()));
        }
        let name = self.config.list_name(&item.audience);
        let id = match self.config.lists.get(&item.audience) {
            Some(pinned) => pinned.clone(),
            None => self.find_or_create(&name, r).await?,
        };
        let written = self.journal.list_id(&item.activation, &item.audience, &id);
        journaled(written)?;
        Ok(Some(ListRef {
            audience: item.audience.clone(),
            name,
            id,
        }))
    }

    /// The id of the list named `name`: found, else created. A create
    /// whose answer is lost or unclear (a dropped connection, a 5xx, a
    /// vendor's "name exists") may have made the list, so it is never sent
    /// again blindly: the list is looked up again first, so that a retry
    /// never makes a second list of one name.
    async fn find_or_create(
        &mut self,
        name: &str,
        r: &mut ActivationReport,
    ) -> Result<String, Stop> {
        let fatal = |e: String| Stop::Fatal(format!("list `{name}`: {e}"));
        let mut attempts = 0;
        loop {
            if let Some(request) = self.vendor.find_list_request(name)
                && let Some(response) = self.side_exchange(request, r, false).await?
                && let Some(id) = self
                    .vendor
                    .parse_found_list(name, &response)
                    .map_err(fatal)?
            {
                return Ok(id);
            }
            let Some(request) = self.vendor.create_list_request(name) else {
                return Err(fatal(format!(
                    "{} cannot create lists; pin its id in `lists`",
                    self.vendor.kind()
                )));
            };
            let findable = self.vendor.find_list_request(name).is_some();
            let answer = self.side_exchange(request, r, findable).await?;
            let problem = match answer.map(|a| self.vendor.parse_created_list(&a)) {
                Some(Ok(id)) => return Ok(id),
                Some(Err(e)) if !findable => return Err(fatal(e)),
                Some(Err(e)) => e,
                None => "no clear answer".to_string(),
            };
            attempts += 1;
            if attempts >= self.options.max_attempts {
                return Err(fatal(format!(
                    "not created after {attempts} attempts; last: {problem}"
                )));
            }
            self.pause(attempts, None, r).await;
        }
    }

    /// A request outside the batches (a list's, a bulk job's) with its
    /// credentials, resent while the vendor says so; any other answer goes
    /// to the vendor's parser.
    /// With `once`, a request the vendor would have resent is not: `None`
    /// says its answer was lost or unclear.
    pub(super) async fn side_exchange(
        &mut self,
        request: WireRequest,
        r: &mut ActivationReport,
        once: bool,
    ) -> Result<Option<WireResponse>, Stop> {
        let (mut attempts, mut auth_retried) = (0, false);
        loop {
            let token = self.token(r).await?;
            let mut authorized = request.clone();
            if let Some((token, _)) = &token {
                self.vendor.authorize(&mut authorized, token);
            }
            let (retry_after, problem, network) = match self.exchange(authorized, r).await? {
                Err(network) => (None, network, true),
                Ok(response) => match self.vendor.classify(Op::Add, &[], &response) {
                    Outcome::Throttled { retry_after, code } => {
                        self.throttle.refused_for_window();
                        (retry_after, code, false)
                    }
                    Outcome::Busy { code } => {
                        self.throttle.refused_for_concurrency();
                        (None, code, false)
                    }
                    Outcome::Transient { code, message } => {
                        (None, format!("{code}: {message}"), false)
                    }
                    Outcome::AuthExpired if !auth_retried => {
                        let generation = token.map_or(0, |(_, generation)| generation);
                        if self.tokens.refused(generation) {
                            return Err(Stop::Denied(format!(
                                "{} refused the credentials",
                                self.config.name
                            )));
                        }
                        auth_retried = true;
                        continue;
                    }
                    Outcome::AuthExpired => {
                        return Err(Stop::Denied(format!(
                            "{} refused the credentials",
                            self.config.name
                        )));
                    }
                    Outcome::QuotaExhausted { .. } => return Err(Stop::Quota),
                    Outcome::Fatal { code, message } => {
                        return Err(Stop::Fatal(format!(
                            "{} answered {code}: {message}",
                            self.config.name
                        )));
                    }
                    _ => return Ok(Some(response)),
                },
            };
            if once {
                return Ok(None);
            }
            auth_retried = false;
            attempts += 1;
            if attempts >= self.options.max_attempts {
                let message = format!("a request failed {attempts} times; last: {problem}");
                return Err(if network {
                    Stop::Unreachable(message)
                } else {
                    Stop::Fatal(message)
                });
            }
            self.pause(attempts, retry_after, r).await;
        }
    }
}

/// Statuses a token request is simply made again after.
fn passing(status: u16) -> bool {
    status == 408 || status == 429 || status >= 500
}
