//! Reading from a vendor's API through the delivery core, so that reads
//! keep to the limits deliveries keep to: the destination instance's shared
//! [`Throttle`] (sliding window, in-flight cap, daily quota), its token
//! cache (fetched when due, fetched again once when the vendor refuses it),
//! and the backoff that resends throttled, failing and unanswered
//! requests. A Marketo activity source reads this way.
//!
//! In: the vendor file, the destination's config and throttle, a journal
//! that counts each call against the daily quota ([`CallsOnly`] adapts a
//! closure), and the send options. Out: one answer per request, for the
//! caller to parse, or a [`ReadError`] saying whether the vendor could not
//! be reached, refused the credentials, is out of quota, or failed.
//!
//! One request is in flight at a time: reads page through cursors, each
//! page naming the next.

use std::time::Duration;

use super::changes::{ActivationReport, Intent, Journal};
use super::config::Config;
use super::http::Http;
use super::progress::Progress;
use super::send::{SendOptions, Sender, Stop};
use super::throttle::Throttle;
use super::vendor::{Op, RecordResult, Vendor};
use super::wire::{WireRequest, WireResponse};

/// Why a read stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadFailure {
    /// No attempt reached the vendor (connection refused, DNS, timeouts).
    Unreachable,
    /// The vendor issued no token for the credentials, or refused a fresh one.
    Denied,
    /// The destination's daily quota is spent.
    Quota,
    /// Anything else the vendor answered that no retry fixes.
    Failed,
}

/// A read that stopped; the message never holds a secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadError {
    pub failure: ReadFailure,
    pub message: String,
}

/// Reads from one destination's API.
pub struct Reader<'a> {
    sender: Sender<'a>,
    report: ActivationReport,
}

impl<'a> Reader<'a> {
    pub fn new(
        vendor: &'a dyn Vendor,
        config: &'a Config,
        throttle: &Throttle,
        calls: &'a mut dyn Journal,
        options: &'a SendOptions,
    ) -> Result<Reader<'a>, ReadError> {
        let http = Http::new().map_err(|message| ReadError {
            failure: ReadFailure::Failed,
            message,
        })?;
        Ok(Reader {
            sender: Sender::new(
                vendor,
                config,
                throttle,
                http,
                calls,
                options,
                Progress::hidden(),
            ),
            report: ActivationReport::default(),
        })
    }

    /// Sends `request` with the destination's credentials, resending it
    /// while the vendor throttles it or fails in passing; any other answer
    /// is the caller's to read.
    pub async fn get(&mut self, request: WireRequest) -> Result<WireResponse, ReadError> {
        match self
            .sender
            .side_exchange(request, &mut self.report, false)
            .await
        {
            Ok(Some(response)) => Ok(response),
            Ok(None) => Err(ReadError {
                failure: ReadFailure::Failed,
                message: "the request got no clear answer".into(),
            }),
            Err(stop) => Err(read_error(stop, &self.sender.config.name)),
        }
    }

    /// Requests made, token requests included.
    pub fn calls(&self) -> u64 {
        self.report.calls
    }

    /// Time spent waiting for the throttle and between retries.
    pub fn waited(&self) -> Duration {
        self.report.throttle_wait
    }
}

fn read_error(stop: Stop, destination: &str) -> ReadError {
    let (failure, message) = match stop {
        Stop::Unreachable(message) => (ReadFailure::Unreachable, message),
        Stop::Denied(message) => (ReadFailure::Denied, message),
        Stop::Fatal(message) => (ReadFailure::Failed, message),
        Stop::Quota => (
            ReadFailure::Quota,
            format!("the daily API quota of destination `{destination}` is spent"),
        ),
    };
    ReadError { failure, message }
}

/// A [`Journal`] that only counts calls, with `count(destination)`: reads
/// change nothing at the vendor, so they have no intents or results.
pub struct CallsOnly<F>(pub F);

impl<F: FnMut(&str) -> Result<(), String> + Send> Journal for CallsOnly<F> {
    fn intent(&mut self, _request: &Intent) -> Result<(), String> {
        Ok(())
    }

    fn records(
        &mut self,
        _request_id: u64,
        _activation: &str,
        _audience: &str,
        _op: Op,
        _results: &[(String, RecordResult)],
        _attempts: u32,
    ) -> Result<(), String> {
        Ok(())
    }

    fn list_id(&mut self, _activation: &str, _audience: &str, _id: &str) -> Result<(), String> {
        Ok(())
    }

    fn call(&mut self, destination: &str) -> Result<(), String> {
        (self.0)(destination)
    }
}
