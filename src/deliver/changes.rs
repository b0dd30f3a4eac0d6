//! What the executor is given and what it gives back: the membership
//! changes of each (activation, audience) for one destination ([`Work`]),
//! the [`Journal`] every request is written to (the run's store implements
//! it; [`MemoryJournal`] keeps it in memory), and the [`DeliveryReport`].
//!
//! The journal is written around every request: the intent (which members,
//! which operation) before it is sent, the per-member results after, so a
//! run killed in between knows what may have been applied.

use std::collections::BTreeMap;
use std::time::Duration;

use super::vendor::{ListRef, Member, Op, RecordResult};

/// The changes of one audience of one activation.
#[derive(Clone, Debug, PartialEq)]
pub struct Work {
    pub activation: String,
    pub audience: String,
    /// The list's id when known (pinned or from the store); else it is
    /// found by name or created.
    pub list: Option<ListRef>,
    pub adds: Vec<Member>,
    /// Only members the destination holds (the store says so).
    pub removes: Vec<Member>,
}

/// A request about to be sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Intent {
    pub request_id: u64,
    pub activation: String,
    pub audience: String,
    pub op: Op,
    pub keys: Vec<String>,
}

/// Where the executor records what it does. Errors are the store's, as text.
pub trait Journal: Send {
    /// Before a request: what it carries.
    fn intent(&mut self, request: &Intent) -> Result<(), String>;
    /// After a request: the result per member key.
    fn records(
        &mut self,
        request_id: u64,
        activation: &str,
        audience: &str,
        op: Op,
        results: &[(String, RecordResult)],
        attempts: u32,
    ) -> Result<(), String>;
    /// The id of an audience's list, found or created.
    fn list_id(&mut self, activation: &str, audience: &str, id: &str) -> Result<(), String>;
    /// One request made to `destination` (counted against its daily quota).
    fn call(&mut self, destination: &str) -> Result<(), String>;
}

/// One recorded result of [`MemoryJournal`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recorded {
    pub request_id: u64,
    pub activation: String,
    pub audience: String,
    pub op: Op,
    pub key: String,
    pub result: RecordResult,
    pub attempts: u32,
}

/// A journal in memory, for tests and dry checks.
#[derive(Clone, Debug, Default)]
pub struct MemoryJournal {
    pub intents: Vec<Intent>,
    pub records: Vec<Recorded>,
    /// By (activation, audience).
    pub list_ids: BTreeMap<(String, String), String>,
    pub calls: BTreeMap<String, u64>,
}

impl Journal for MemoryJournal {
    fn intent(&mut self, request: &Intent) -> Result<(), String> {
        self.intents.push(request.clone());
        Ok(())
    }

    fn records(
        &mut self,
        request_id: u64,
        activation: &str,
        audience: &str,
        op: Op,
        results: &[(String, RecordResult)],
        attempts: u32,
    ) -> Result<(), String> {
        self.records
            .extend(results.iter().map(|(key, result)| Recorded {
                request_id,
                activation: activation.to_string(),
                audience: audience.to_string(),
                op,
                key: key.clone(),
                result: result.clone(),
                attempts,
            }));
        Ok(())
    }

    fn list_id(&mut self, activation: &str, audience: &str, id: &str) -> Result<(), String> {
        self.list_ids.insert(
            (activation.to_string(), audience.to_string()),
            id.to_string(),
        );
        Ok(())
    }

    fn call(&mut self, destination: &str) -> Result<(), String> {
        *self.calls.entry(destination.to_string()).or_default() += 1;
        Ok(())
    }
}

/// A member the destination refused for good.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub audience: String,
    pub key: String,
    pub op: Op,
    pub code: String,
    pub message: String,
    pub attempts: u32,
}

/// What happened to one activation's changes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ActivationReport {
    /// Member operations planned (adds count once per add op, plus removes).
    pub planned: u64,
    /// Member operations sent at least once.
    pub sent: u64,
    pub accepted: u64,
    pub rejected: Vec<Rejection>,
    /// Members the caller found invalid before delivery (the caller sets it).
    pub invalid: u64,
    /// Member operations not done: quota, attempts budget or a failure.
    pub pending: u64,
    /// Requests made, token and list requests included.
    pub calls: u64,
    /// Time waiting for the throttle and for retries.
    pub throttle_wait: Duration,
    /// The day's quota ran out while sending.
    pub quota_exhausted: bool,
    /// Why the activation failed: a fatal answer or a request that failed
    /// for good.
    pub failed: Option<String>,
    /// The vendor's API usage of its day as (used, limit), from the last
    /// answer that reported it (Salesforce's `Sforce-Limit-Info`).
    pub api_usage: Option<(u64, u64)>,
}

/// Per activation, what one `deliver` did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DeliveryReport {
    pub activations: BTreeMap<String, ActivationReport>,
}

impl DeliveryReport {
    pub fn activation(&mut self, name: &str) -> &mut ActivationReport {
        self.activations.entry(name.to_string()).or_default()
    }

    /// Totals over every activation (`failed`: the first failure).
    pub fn total(&self) -> ActivationReport {
        let mut total = ActivationReport::default();
        for report in self.activations.values() {
            total.planned += report.planned;
            total.sent += report.sent;
            total.accepted += report.accepted;
            total.rejected.extend(report.rejected.iter().cloned());
            total.invalid += report.invalid;
            total.pending += report.pending;
            total.calls += report.calls;
            total.throttle_wait += report.throttle_wait;
            total.quota_exhausted |= report.quota_exhausted;
            total.api_usage = total.api_usage.max(report.api_usage);
            if total.failed.is_none() {
                total.failed.clone_from(&report.failed);
            }
        }
        total
    }
}
