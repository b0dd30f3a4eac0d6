//! The contract between the delivery core and one vendor: what a vendor
//! file provides, as pure functions over requests and responses, so that the
//! dry run, the golden tests and the live run all go through the same code.
//!
//! The core (`send`) owns everything with I/O: the HTTP client, the
//! throttle, retries, the token cache and the store. A vendor file turns
//! members into requests (`encode`) and responses into outcomes
//! (`classify`), and says how it authenticates and how its lists are found
//! and created.

use std::time::Duration;

use secrecy::SecretString;
use serde_json::Value;

use super::wire::{WireRequest, WireResponse};

/// One member of an audience as the destination receives it: the mapped
/// columns, already normalised and hashed as the catalog requires.
#[derive(Clone, Debug, PartialEq)]
pub struct Member {
    /// accord's member key (the account key or the person key).
    pub key: String,
    /// Mapped columns in mapping order, as `(destination column, value)`.
    pub fields: Vec<(String, Value)>,
    /// The vendor's id for this member, from the store (Marketo lead id).
    pub remote_id: Option<String>,
}

impl Member {
    /// The value of a mapped column.
    pub fn field(&self, column: &str) -> Option<&Value> {
        self.fields
            .iter()
            .find(|(c, _)| c == column)
            .map(|(_, v)| v)
    }
}

/// What a request does to the members it carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    /// Create or update the member's record (Marketo leads); yields vendor ids.
    Upsert,
    /// Add the members to the audience's list or segment.
    Add,
    /// Remove the members from the audience's list or segment.
    Remove,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Upsert => "upsert",
            Op::Add => "add",
            Op::Remove => "remove",
        }
    }
}

/// The list or segment of one audience at the destination.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListRef {
    pub audience: String,
    /// The name accord gives it: the destination's `list_prefix` + audience.
    pub name: String,
    /// The vendor's id: pinned (`lists`), from the store, or found/created
    /// this run. In a dry run a list not yet created has a placeholder
    /// (`<list id of NAME>`).
    pub id: String,
}

/// An access token and when it stops working.
#[derive(Clone, Debug)]
pub struct Token {
    pub value: SecretString,
    /// Seconds it lives from when it was issued; `None`: until refused.
    pub expires_in: Option<Duration>,
}

/// The result of one record of a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordResult {
    /// Applied; an upsert may return the vendor's id.
    Accepted { remote_id: Option<String> },
    /// Refused for good: it goes to `rejected.jsonl` and is retried next run.
    Rejected { code: String, message: String },
    /// Not applied for a passing reason: sent again in this run.
    Retry { code: String, message: String },
}

/// What a response says, as the vendor's contract defines it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Per-record results, in the order of the request's members.
    Records(Vec<RecordResult>),
    /// The whole request succeeded (vendors without per-record results).
    Accepted,
    /// Over the vendor's rate window: every request to the destination
    /// waits (at least `retry_after`), then this one is sent again.
    Throttled {
        retry_after: Option<Duration>,
        code: String,
    },
    /// Over the vendor's cap on requests in flight (Marketo's 615): sent
    /// again after a backoff, and the destination sends one fewer at once.
    Busy { code: String },
    /// Timeouts, 5xx and the like: send again after a backoff.
    Transient { code: String, message: String },
    /// The token expired or was refused: authenticate again, once, and
    /// resend without counting an attempt.
    AuthExpired,
    /// The day's quota is spent: stop sending to this destination until the
    /// vendor's day turns; what is left stays pending.
    QuotaExhausted { code: String, message: String },
    /// The whole request was refused (a 4xx): split it to isolate the bad
    /// records; a single refused record is rejected.
    Refused {
        status: u16,
        code: String,
        message: String,
    },
    /// Nothing sent to this destination can succeed (bad credentials, a
    /// missing account): the activation fails.
    Fatal { code: String, message: String },
}

/// How a vendor authenticates.
#[derive(Clone, Debug)]
pub enum Auth {
    /// No credentials on requests (the webhook signs its bodies instead).
    None,
    /// A fixed bearer token from a secret reference.
    Bearer(SecretString),
    /// A token fetched with [`Vendor::token_request`], refreshed on expiry.
    Fetched,
}

/// One vendor's contract. Implementations are pure: no I/O, no clock.
pub trait Vendor: Send + Sync {
    /// The catalog type (`marketo_engage`).
    fn kind(&self) -> &'static str;

    fn auth(&self) -> Auth;

    /// The request that fetches an access token (`Auth::Fetched`), made at
    /// `now` (signed assertions carry their issue time). It carries
    /// credentials: it is never written to a dump or a log.
    fn token_request(&self, now: std::time::SystemTime) -> Option<WireRequest> {
        let _ = now;
        None
    }

    /// The token in a response to [`Vendor::token_request`].
    fn parse_token(&self, response: &WireResponse) -> Result<Token, String> {
        let _ = response;
        Err("this destination does not fetch tokens".into())
    }

    /// Adds the credentials to a request. The default sets
    /// `Authorization: Bearer TOKEN`.
    fn authorize(&self, request: &mut WireRequest, token: &SecretString) {
        request.set_secret_header("Authorization", format!("Bearer {}", secret(token)));
    }

    /// The operations that put a member into an audience, in order:
    /// `[Add]` for most vendors, `[Upsert, Add]` where list membership is by
    /// vendor id (Marketo).
    fn add_ops(&self) -> &'static [Op] {
        &[Op::Add]
    }

    /// Whether this vendor has lists or segments at all (the webhook has not).
    fn has_lists(&self) -> bool {
        true
    }

    /// The request that finds a list by name, so that a list created by a
    /// run whose response was lost is found rather than created twice.
    fn find_list_request(&self, name: &str) -> Option<WireRequest> {
        let _ = name;
        None
    }

    /// The id in a response to [`Vendor::find_list_request`], `Ok(None)`
    /// when no list has the name.
    fn parse_found_list(
        &self,
        name: &str,
        response: &WireResponse,
    ) -> Result<Option<String>, String> {
        let _ = (name, response);
        Ok(None)
    }

    /// The request that creates a list or segment.
    fn create_list_request(&self, name: &str) -> Option<WireRequest> {
        let _ = name;
        None
    }

    /// The id in a response to [`Vendor::create_list_request`].
    fn parse_created_list(&self, response: &WireResponse) -> Result<String, String> {
        let _ = response;
        Err("this destination does not create lists".into())
    }

    /// What a dry run shows for a member's vendor id that only a live run
    /// learns (`<lead id of alice@example.com>`).
    fn placeholder_id(&self, member: &Member) -> String {
        format!("<id of {}>", member.key)
    }

    /// How long a member stays in an audience without being sent again
    /// (The Trade Desk's TTL); the core re-sends members before half of it
    /// has passed. `None`: membership does not expire.
    fn ttl(&self) -> Option<Duration> {
        None
    }

    /// One request carrying `members` (at most the batch size; the core
    /// splits again when the body is over the byte limit).
    fn encode(
        &self,
        list: Option<&ListRef>,
        op: Op,
        members: &[Member],
    ) -> Result<WireRequest, String>;

    /// [`Vendor::encode`] for the audience of one activation: what the
    /// core calls. Vendors whose requests name the activation (the
    /// webhook) override it; the others need only `encode`.
    fn encode_for(
        &self,
        activation: &str,
        audience: &str,
        list: Option<&ListRef>,
        op: Op,
        members: &[Member],
    ) -> Result<WireRequest, String> {
        let _ = (activation, audience);
        self.encode(list, op, members)
    }

    /// What a response to an [`Vendor::encode`]d request says.
    fn classify(&self, op: Op, members: &[Member], response: &WireResponse) -> Outcome;

    /// The vendor's bulk jobs, for operations on more members than their
    /// threshold (Salesforce's Bulk API 2.0); `None`: every operation goes
    /// in batches through [`Vendor::encode`].
    fn bulk(&self) -> Option<&dyn BulkJobs> {
        None
    }

    /// The org's API usage a response reports, as (used, limit) calls of
    /// the vendor's day (Salesforce's `Sforce-Limit-Info`).
    fn api_usage(&self, response: &WireResponse) -> Option<(u64, u64)> {
        let _ = response;
        None
    }
}

/// The state of a bulk job, as the vendor reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobState {
    /// Created; takes uploads until it is closed.
    Open,
    /// Closed and queued or being processed.
    Processing,
    /// Done: every record was processed, each succeeded or failed.
    Complete,
    /// The job failed; some records may have been processed.
    Failed(String),
    /// Aborted: nothing more is processed.
    Aborted,
}

/// A bulk job as a response describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    pub id: String,
    pub state: JobState,
}

/// The data of one bulk job: the members it carries and the body uploaded.
#[derive(Clone, Debug, PartialEq)]
pub struct Upload {
    pub members: Vec<Member>,
    pub body: Vec<u8>,
}

/// A vendor's bulk-job protocol, as pure requests and parsers: create a
/// job, upload its data once, close it, poll its state, read its results.
/// The core (`deliver::bulk`) sends them through the same throttle, token
/// cache, retries and journal as the batches; [`Vendor::classify`] (with
/// no members) says what a non-2xx answer to any of them means.
pub trait BulkJobs: Send + Sync {
    /// Operations on more members than this go through a bulk job.
    fn threshold(&self) -> usize;

    /// The members of one operation as job uploads, each within the
    /// vendor's upload limit, and the members no upload can carry (with
    /// why).
    fn uploads(
        &self,
        audience: &str,
        op: Op,
        members: &[Member],
    ) -> (Vec<Upload>, Vec<(Member, String)>);

    fn create_job(&self) -> WireRequest;

    /// The job a create or status answer describes.
    fn parse_job(&self, response: &WireResponse) -> Result<Job, String>;

    fn upload_request(&self, job: &str, body: &[u8]) -> WireRequest;

    /// The request that closes a job for processing.
    fn close_request(&self, job: &str) -> WireRequest;

    /// The request that aborts a job whose upload may be incomplete.
    fn abort_request(&self, job: &str) -> WireRequest;

    fn status_request(&self, job: &str) -> WireRequest;

    /// The requests that read a finished job's results: the records that
    /// succeeded, failed, and were not processed.
    fn result_requests(&self, job: &str) -> [WireRequest; 3];

    /// Per member of the upload, in its order: what the job did with it,
    /// or `None` when it was not processed (it stays pending).
    fn parse_results(
        &self,
        members: &[Member],
        answers: &[WireResponse; 3],
    ) -> Result<Vec<Option<RecordResult>>, String>;
}

/// The token of an OAuth 2.0 token response (RFC 6749 section 5.1:
/// `access_token` and, optionally, `expires_in` seconds), or `None` when
/// the response is no successful token response.
pub fn oauth_token(response: &WireResponse) -> Option<Token> {
    let body = response.json();
    let token = body.get("access_token")?.as_str()?;
    (response.status == 200 && !token.is_empty()).then(|| Token {
        value: SecretString::from(token.to_string()),
        expires_in: body
            .get("expires_in")
            .and_then(serde_json::Value::as_u64)
            .map(Duration::from_secs),
    })
}

/// A form-encoded POST to an OAuth token endpoint (RFC 6749 section 4:
/// `application/x-www-form-urlencoded`), the values percent-encoded.
pub fn token_form(url: String, form: &[(&str, &str)]) -> WireRequest {
    let body = form
        .iter()
        .map(|(key, value)| format!("{key}={}", super::wire::percent_encode(value)))
        .collect::<Vec<_>>()
        .join("&");
    let mut request =
        WireRequest::new("POST", url).header("Content-Type", "application/x-www-form-urlencoded");
    request.body = body.into_bytes();
    request
}

/// The token of a token response, or why `issuer` gave none for the
/// destination: the status and the OAuth error (RFC 6749 section 5.2:
/// `error` and, optionally, `error_description`), never a credential.
pub fn issued_token(
    response: &WireResponse,
    issuer: &str,
    destination: &str,
) -> Result<Token, String> {
    oauth_token(response).ok_or_else(|| {
        let body = response.json();
        let error = body
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or("no error");
        let error = match body.get("error_description").and_then(Value::as_str) {
            Some(description) => format!("{error}: {description}"),
            None => error.to_string(),
        };
        format!(
            "{issuer} did not issue a token for destination `{destination}` (HTTP {}): {error}",
            response.status
        )
    })
}

/// The text of a secret, for the one place that puts it on the wire.
pub fn secret(s: &SecretString) -> &str {
    use secrecy::ExposeSecret;
    s.expose_secret()
}
