//! Bulk jobs: an operation on more members than the vendor's bulk
//! threshold goes as jobs (Salesforce's Bulk API 2.0) instead of batches.
//!
//! In: the vendor's [`BulkJobs`] protocol (pure requests and parsers), the
//! members of one operation. Out: the same [`OpDone`] as batches, every
//! request through the executor's throttle, token cache and retries, and
//! the journal written around each job (its members' intent before the job
//! is created, their results after they are read back).
//!
//! Per upload (one job each): create the job; upload its data once (an
//! upload whose answer is lost or unclear may have been taken in part, so
//! that job is aborted and a new one made); close it (an unclear close is
//! checked against the job's state before it is sent again); poll with a
//! doubling wait until it is done; read its successful, failed and
//! unprocessed records. Failed records are rejections; unprocessed ones,
//! and those of a job that was aborted or took longer than
//! [`SendOptions::max_job_wait`], stay pending: the next run sends them
//! again, which is safe because a vendor's upsert by external id is
//! idempotent. For the same reason a job a crash interrupted is simply
//! done again by the next run.

use std::time::{Duration, Instant};

use super::batch::UNENCODABLE;
use super::changes::{ActivationReport, Intent, Rejection};
use super::send::{FaultPoint, OpDone, Scope, Sender, Stop, journaled};
use super::vendor::{BulkJobs, Job, JobState, Member, Op, RecordResult, Upload};
use super::wire::{WireRequest, WireResponse};

/// Code journaled for a member a job did not process.
pub const UNPROCESSED: &str = "unprocessed";

impl Sender<'_> {
    /// One operation over `members` as bulk jobs.
    pub(super) async fn bulk_op(
        &mut self,
        jobs: &dyn BulkJobs,
        scope: &Scope,
        op: Op,
        members: Vec<Member>,
        r: &mut ActivationReport,
    ) -> OpDone {
        let mut done = OpDone::default();
        let (uploads, unsendable) = jobs.uploads(&scope.audience, op, &members);
        for (member, message) in unsendable {
            r.rejected.push(Rejection {
                audience: scope.audience.clone(),
                key: member.key,
                op,
                code: UNENCODABLE.to_string(),
                message,
                attempts: 0,
            });
            self.progress.done(1);
        }
        for upload in uploads {
            let count = upload.members.len() as u64;
            if done.stop.is_some() {
                done.pending += count;
                self.progress.done(count);
                continue;
            }
            match self.job(jobs, scope, op, &upload, r).await {
                Ok(results) => self.settle_job(scope, op, upload, results, &mut done, r),
                Err(stop) => {
                    done.pending += count;
                    self.progress.done(count);
                    done.stop = Some(stop);
                }
            }
        }
        done
    }

    fn settle_job(
        &mut self,
        scope: &Scope,
        op: Op,
        upload: Upload,
        results: Vec<Option<RecordResult>>,
        done: &mut OpDone,
        r: &mut ActivationReport,
    ) {
        for (mut member, result) in upload.members.into_iter().zip(results) {
            self.progress.done(1);
            match result {
                Some(RecordResult::Accepted { remote_id }) => {
                    if remote_id.is_some() {
                        member.remote_id = remote_id;
                    }
                    done.accepted.push(member);
                }
                Some(RecordResult::Rejected { code, message }) => r.rejected.push(Rejection {
                    audience: scope.audience.clone(),
                    key: member.key,
                    op,
                    code,
                    message,
                    attempts: 1,
                }),
                Some(RecordResult::Retry { .. }) | None => done.pending += 1,
            }
        }
    }

    /// One job, journaled: its members' results in upload order.
    async fn job(
        &mut self,
        jobs: &dyn BulkJobs,
        scope: &Scope,
        op: Op,
        upload: &Upload,
        r: &mut ActivationReport,
    ) -> Result<Vec<Option<RecordResult>>, Stop> {
        let request_id = self.next_request_id;
        self.next_request_id += 1;
        let intent = Intent {
            request_id,
            activation: scope.activation.clone(),
            audience: scope.audience.clone(),
            op,
            keys: upload.members.iter().map(|m| m.key.clone()).collect(),
        };
        journaled(self.journal.intent(&intent))?;
        self.fault(FaultPoint::BeforeRequest);
        r.sent += upload.members.len() as u64;
        let job = self.run_job(jobs, upload, r).await?;
        let results = match job.map(|j| (j.state, j.id)) {
            Some((JobState::Complete | JobState::Failed(_), id)) => {
                let answers = self.read_results(jobs, &id, r).await?;
                jobs.parse_results(&upload.members, &answers)
                    .map_err(|e| self.fatal(format!("Bulk API job {id}: {e}")))?
            }
            _ => vec![None; upload.members.len()],
        };
        self.fault(FaultPoint::AfterResponse);
        let keyed: Vec<(String, RecordResult)> = upload
            .members
            .iter()
            .zip(&results)
            .map(|(member, result)| {
                let result = result.clone().unwrap_or_else(|| RecordResult::Retry {
                    code: UNPROCESSED.into(),
                    message: "the job did not process it".into(),
                });
                (member.key.clone(), result)
            })
            .collect();
        let written = self.journal.records(
            request_id,
            &scope.activation,
            &scope.audience,
            op,
            &keyed,
            1,
        );
        journaled(written)?;
        Ok(results)
    }

    /// Creates, fills, closes and waits for one job; `None` when it did
    /// not finish within [`SendOptions::max_job_wait`] (it may still run:
    /// its members stay pending).
    async fn run_job(
        &mut self,
        jobs: &dyn BulkJobs,
        upload: &Upload,
        r: &mut ActivationReport,
    ) -> Result<Option<Job>, Stop> {
        let mut attempts = 0;
        let id = loop {
            let created = self.job_step(jobs.create_job(), r).await?;
            let job = jobs
                .parse_job(&created)
                .map_err(|e| self.fatal(format!("Bulk API: {e}")))?;
            let request = jobs.upload_request(&job.id, &upload.body);
            if self.step(request, r, true).await?.is_some() {
                break job.id;
            }
            // Best effort: an open job that is never closed is never
            // processed, so an abort that fails changes nothing.
            self.side_exchange(jobs.abort_request(&job.id), r, true)
                .await?;
            attempts += 1;
            if attempts >= self.options.max_attempts {
                return Err(self.fatal(format!(
                    "a Bulk API upload had no clear answer {attempts} times"
                )));
            }
            self.pause(attempts, None, r).await;
        };
        self.close(jobs, &id, r).await?;
        let started = Instant::now();
        let mut polls = 0;
        loop {
            polls += 1;
            let wait = self.options.backoff().ceiling(polls);
            if started.elapsed() + wait > self.options.max_job_wait {
                return Ok(None);
            }
            tokio::time::sleep(wait).await;
            let answer = self.job_step(jobs.status_request(&id), r).await?;
            let job = jobs
                .parse_job(&answer)
                .map_err(|e| self.fatal(format!("Bulk API: {e}")))?;
            if matches!(job.state, JobState::Open | JobState::Processing) {
                continue;
            }
            return Ok(Some(job));
        }
    }

    /// Closes a job for processing. A close whose answer is unclear is not
    /// sent again blindly: the job's state says whether it was taken.
    async fn close(
        &mut self,
        jobs: &dyn BulkJobs,
        id: &str,
        r: &mut ActivationReport,
    ) -> Result<(), Stop> {
        let mut attempts = 0;
        loop {
            if self.step(jobs.close_request(id), r, true).await?.is_some() {
                return Ok(());
            }
            let answer = self.job_step(jobs.status_request(id), r).await?;
            let job = jobs
                .parse_job(&answer)
                .map_err(|e| self.fatal(format!("Bulk API: {e}")))?;
            if job.state != JobState::Open {
                return Ok(());
            }
            attempts += 1;
            if attempts >= self.options.max_attempts {
                return Err(self.fatal(format!(
                    "Bulk API job {id} was not closed after {attempts} attempts"
                )));
            }
            self.pause(attempts, None, r).await;
        }
    }

    /// The successful, failed and unprocessed records of a finished job.
    async fn read_results(
        &mut self,
        jobs: &dyn BulkJobs,
        id: &str,
        r: &mut ActivationReport,
    ) -> Result<[WireResponse; 3], Stop> {
        let [successful, failed, unprocessed] = jobs.result_requests(id);
        Ok([
            self.job_step(successful, r).await?,
            self.job_step(failed, r).await?,
            self.job_step(unprocessed, r).await?,
        ])
    }

    /// A job request that can be sent again until it has an answer.
    async fn job_step(
        &mut self,
        request: WireRequest,
        r: &mut ActivationReport,
    ) -> Result<WireResponse, Stop> {
        match self.step(request, r, false).await? {
            Some(response) => Ok(response),
            None => Err(self.fatal("a Bulk API request had no answer".into())),
        }
    }

    /// A job request through [`Sender::side_exchange`]; a 2xx answer, or
    /// `None` (with `once`) when it was unclear. Any other answer the
    /// vendor did not classify as passing stops the operation.
    async fn step(
        &mut self,
        request: WireRequest,
        r: &mut ActivationReport,
        once: bool,
    ) -> Result<Option<WireResponse>, Stop> {
        let what = format!("{} {}", request.method, path_of(&request.url));
        let Some(response) = self.side_exchange(request, r, once).await? else {
            return Ok(None);
        };
        if (200..300).contains(&response.status) {
            return Ok(Some(response));
        }
        let body: String = String::from_utf8_lossy(&response.body)
            .chars()
            .take(200)
            .collect();
        Err(self.fatal(format!(
            "the Bulk API refused {what}: HTTP {}: {body}",
            response.status
        )))
    }

    fn fatal(&self, message: String) -> Stop {
        Stop::Fatal(format!("{}: {message}", self.config.name))
    }
}

/// The path of a URL, for messages (the host is the destination's).
fn path_of(url: &str) -> &str {
    url.split_once("://")
        .and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..]))
        .unwrap_or(url)
}

/// How long a run waits for one job by default: Salesforce processes most
/// jobs in minutes; one still running after this is left to finish on its
/// own, and its members are sent again next run.
pub const MAX_JOB_WAIT: Duration = Duration::from_secs(3_600);
