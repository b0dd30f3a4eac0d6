//! Delivery to vendor APIs: the stage after evaluation that turns each
//! activation's membership changes into requests, sends them within the
//! vendor's limits, and records what the destination accepted in the store.
//!
//! One concern per file:
//! - `wire`: requests and responses as data (what the dry run writes);
//! - `vendor`: the contract a vendor file implements (pure: encode and
//!   classify, no I/O);
//! - `vendors/`: one file per vendor (Marketo, LinkedIn, Google Customer
//!   Match, The Trade Desk, Dynamics 365, the generic webhook);
//! - `config`: a destination's settings, limits and secrets as a vendor reads them;
//! - `throttle`: the sliding-window, in-flight and daily limits of one
//!   destination instance, shared by every activation that sends to it;
//! - `retry`: full-jitter exponential backoff that honours `Retry-After`;
//! - `read`: requests that read from a vendor (a Marketo activity
//!   source) through the same throttle, token cache and retries;
//! - `send`: the executor: batches by records and bytes, authenticates,
//!   sends, classifies, retries, splits refused batches and journals every
//!   request;
//! - `changes`: what the executor takes (`Work`) and gives back
//!   (`DeliveryReport`), and the `Journal` it writes around each request;
//! - `batch`: members into encoded requests within the batch and byte limits;
//! - `bulk`: operations above a vendor's bulk threshold as bulk jobs
//!   (create, upload, close, poll, results), journaled like batches;
//! - `http`: the one place requests go on the wire (reqwest, rustls);
//! - `auth`: the token cache (fixed bearer or fetched and refreshed);
//! - `progress`: the progress bar on a terminal;
//! - `storage`: where file deliveries land (folders, buckets, SFTP).

pub mod auth;
pub mod batch;
pub mod bulk;
pub mod changes;
pub mod config;
pub mod dry_run;
pub mod http;
pub mod progress;
pub mod read;
pub mod retry;
pub mod secrets;
pub mod send;
pub mod storage;
pub mod throttle;
pub mod vendor;
pub mod vendors;
pub mod wire;

pub use config::{Config, Limits};
pub use vendor::{
    Auth, BulkJobs, Job, JobState, ListRef, Member, Op, Outcome, RecordResult, Token, Upload,
    Vendor,
};
pub use wire::{WireRequest, WireResponse};
