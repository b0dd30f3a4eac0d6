//! The dry run: the exact requests a live delivery of the same work would
//! make, without sending any. Pure: no network, no clock, no store.
//!
//! It goes through the same batching as the live run (`batch::encode`), so
//! the bodies are byte for byte what would be sent. What only a live run can
//! know shows as a placeholder: a list not yet known is looked up (and, for
//! vendors that create lists, created) as `<list id of NAME>`, and vendor
//! ids an upsert would return are the vendor's `placeholder_id`
//! (`<lead id of alice@example.com>`). Credentials are redacted; a token
//! request is counted, never written.
//!
//! An operation above the vendor's bulk threshold shows as its jobs: the
//! create, the data upload and the close of each (job ids as `<job N>`),
//! and counts the three result reads. How many times a live run polls a
//! job before it is done cannot be known ahead: [`DryRun::bulk_jobs`]
//! says how many jobs there are, so the run can say so.

use std::collections::BTreeMap;
use std::time::Duration;

use secrecy::SecretString;
use serde_json::Value;

use super::batch;
use super::changes::Work;
use super::config::{Config, Limits};
use super::secrets::PLACEHOLDER;
use super::vendor::{Auth, BulkJobs, ListRef, Member, Op, Vendor};
use super::wire::WireRequest;

/// What a dry run would send.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DryRun {
    /// The requests, redacted (`WireRequest::redacted`), in sending order.
    /// A caller that adds work an item at a time may take them after each
    /// ([`DryRun::add`]); `calls` counts them all the same.
    pub requests: Vec<Value>,
    /// Requests a live run would make, the token request included (once
    /// [`DryRun::finish`] has run).
    pub calls: u64,
    /// The least time the limits allow these calls in.
    pub min_duration: Duration,
    /// Members no request can carry (alone over the byte limit, or not
    /// encodable), with why: a live run rejects them.
    pub unsendable: Vec<(String, String)>,
    /// Bulk jobs a live run makes; `calls` counts none of their polls.
    pub bulk_jobs: u64,
    /// The lists looked up so far, by audience: an audience whose work
    /// comes in several items looks its list up once, as a live run does.
    lists: BTreeMap<String, ListRef>,
    /// Whether any work was added (a live run fetches a token then).
    any: bool,
}

/// The requests of `work`, as a live run would make them.
pub fn dry_run(vendor: &dyn Vendor, config: &Config, work: &[Work]) -> DryRun {
    let mut out = DryRun::default();
    for item in work {
        out.add(vendor, config, item);
    }
    out.finish(vendor, config);
    out
}

impl DryRun {
    /// The requests of one more work item, after those of the items added
    /// before it.
    pub fn add(&mut self, vendor: &dyn Vendor, config: &Config, item: &Work) {
        self.any = true;
        let list = list(vendor, config, item, self);
        let scope = (item.activation.as_str(), item.audience.as_str());
        let mut members = item.adds.clone();
        for op in vendor.add_ops() {
            send(
                vendor,
                scope,
                list.as_ref(),
                *op,
                &members,
                &config.limits,
                self,
            );
            if *op == Op::Upsert {
                members = members
                    .into_iter()
                    .map(|m| with_placeholder(vendor, m))
                    .collect();
            }
        }
        send(
            vendor,
            scope,
            list.as_ref(),
            Op::Remove,
            &item.removes,
            &config.limits,
            self,
        );
    }

    /// Counts the calls no request shows (the token, the jobs' result
    /// reads) and the least time they all take, once every item is added.
    pub fn finish(&mut self, vendor: &dyn Vendor, config: &Config) {
        if matches!(vendor.auth(), Auth::Fetched) && self.any {
            self.calls += 1;
        }
        self.calls += RESULT_READS * self.bulk_jobs;
        self.min_duration = min_duration(self.calls, &config.limits);
    }

    fn push(&mut self, vendor: &dyn Vendor, request: WireRequest) {
        self.calls += 1;
        self.requests.push(authorized(vendor, request).redacted());
    }
}

/// The audience's list: known, or looked up (and created) under a
/// placeholder id.
fn list(vendor: &dyn Vendor, config: &Config, item: &Work, out: &mut DryRun) -> Option<ListRef> {
    if !vendor.has_lists() {
        return None;
    }
    if let Some(list) = &item.list {
        return Some(list.clone());
    }
    if let Some(list) = out.lists.get(&item.audience) {
        return Some(list.clone());
    }
    let name = config.list_name(&item.audience);
    let id = match config.lists.get(&item.audience) {
        Some(pinned) => pinned.clone(),
        None => {
            let requests = [
                vendor.find_list_request(&name),
                vendor.create_list_request(&name),
            ];
            for request in requests.into_iter().flatten() {
                out.push(vendor, request);
            }
            format!("<list id of {name}>")
        }
    };
    let list = ListRef {
        audience: item.audience.clone(),
        name,
        id,
    };
    out.lists.insert(item.audience.clone(), list.clone());
    Some(list)
}

fn send(
    vendor: &dyn Vendor,
    scope: (&str, &str),
    list: Option<&ListRef>,
    op: Op,
    members: &[Member],
    limits: &Limits,
    out: &mut DryRun,
) {
    if let Some(jobs) = vendor.bulk()
        && members.len() > jobs.threshold()
    {
        return bulk(vendor, jobs, scope.1, op, members, out);
    }
    let (encoded, unsendable) = batch::encode(vendor, scope, list, op, members, limits);
    for e in encoded {
        out.push(vendor, e.request);
    }
    out.unsendable.extend(
        unsendable
            .into_iter()
            .map(|u| (u.member.key, format!("{}: {}", u.code, u.message))),
    );
}

/// The result sets a live run reads of each finished job.
const RESULT_READS: u64 = 3;

/// The jobs of one operation: per job, its create, upload and close.
fn bulk(
    vendor: &dyn Vendor,
    jobs: &dyn BulkJobs,
    audience: &str,
    op: Op,
    members: &[Member],
    out: &mut DryRun,
) {
    let (uploads, unsendable) = jobs.uploads(audience, op, members);
    for upload in uploads {
        out.bulk_jobs += 1;
        let id = format!("<job {}>", out.bulk_jobs);
        let requests = [
            jobs.create_job(),
            jobs.upload_request(&id, &upload.body),
            jobs.close_request(&id),
        ];
        for request in requests {
            out.push(vendor, request);
        }
    }
    out.unsendable.extend(
        unsendable
            .into_iter()
            .map(|(member, why)| (member.key, format!("{}: {why}", batch::UNENCODABLE))),
    );
}

/// A request with the credentials a live run adds, as placeholders: the
/// dump shows which header carries them, redacted.
fn authorized(vendor: &dyn Vendor, mut request: WireRequest) -> WireRequest {
    if !matches!(vendor.auth(), Auth::None) {
        vendor.authorize(&mut request, &SecretString::from(PLACEHOLDER));
    }
    request
}

/// A member as the next operation sees it after an upsert: with the id
/// the vendor would have returned.
fn with_placeholder(vendor: &dyn Vendor, mut member: Member) -> Member {
    if member.remote_id.is_none() {
        member.remote_id = Some(vendor.placeholder_id(&member));
    }
    member
}

/// The least time `calls` take within the limits: full windows of the
/// sliding-window limit, and whole days where the daily quota is smaller.
fn min_duration(calls: u64, limits: &Limits) -> Duration {
    let mut least = Duration::ZERO;
    if let Some((n, window)) = limits.window
        && n > 0
        && calls > u64::from(n)
    {
        let windows = (calls - 1) / u64::from(n);
        least = window * u32::try_from(windows).unwrap_or(u32::MAX);
    }
    if let Some(daily) = limits.daily
        && daily > 0
        && calls > daily
    {
        let days = (calls - 1) / daily;
        least = least.max(Duration::from_secs(86_400 * days));
    }
    least
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(window: Option<(u32, Duration)>, daily: Option<u64>) -> Limits {
        Limits {
            batch_size: 100,
            max_bytes: None,
            window,
            concurrent: 1,
            daily,
        }
    }

    #[test]
    fn calls_within_one_window_take_no_time() {
        let l = limits(Some((100, Duration::from_secs(20))), None);
        assert_eq!(min_duration(100, &l), Duration::ZERO);
        assert_eq!(min_duration(101, &l), Duration::from_secs(20));
        assert_eq!(min_duration(250, &l), Duration::from_secs(40));
    }

    #[test]
    fn a_small_daily_quota_spreads_calls_over_days() {
        let l = limits(Some((100, Duration::from_secs(20))), Some(1_000));
        assert_eq!(min_duration(2_500, &l), Duration::from_secs(2 * 86_400));
    }
}
