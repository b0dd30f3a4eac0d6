//! A Salesforce org on loopback, written from Salesforce's published REST
//! API: the OAuth 2.0 client credentials token endpoint, sObject
//! Collections upserts by an external id field, and Bulk API 2.0 ingest
//! jobs (create, one CSV upload, close, state, result sets).
//!
//! In: a gateway [`Policy`] (its in-flight cap is the org's concurrent
//! long-request limit, answered as Salesforce does with
//! `REQUEST_LIMIT_EXCEEDED` / `ConcurrentPerOrgLongTxn`) and [`Options`]
//! (credentials, token lifetime, the 24-hour API allocation, the custom
//! fields that exist, how a job behaves). Out: the running server and a
//! handle on its records ([`Salesforce`]).
//!
//! Every API answer carries `Sforce-Limit-Info: api-usage=USED/LIMIT`;
//! once the allocation is spent every API request is answered 403
//! `REQUEST_LIMIT_EXCEEDED` (`TotalRequests Limit exceeded.`). A record
//! created without `LastName` (and `Company` for Leads) fails with
//! `REQUIRED_FIELD_MISSING`, an email without `@` and a dot with
//! `INVALID_EMAIL_ADDRESS`; an unknown field fails the whole request with
//! `INVALID_FIELD`. Only changes of state are mutations, so a request
//! resent after its answer was lost is not one.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post, put};
use serde_json::{Map, Value, json};

use crate::fake::{FakeServer, Policy, Refusal, Stats, Tokens};

pub const VERSION: &str = "v62.0";
const MAX_RECORDS: usize = 200;
const STANDARD_FIELDS: &[&str] = &[
    "Id",
    "FirstName",
    "LastName",
    "Email",
    "Company",
    "Title",
    "Phone",
];

#[derive(Clone, Debug)]
pub struct Options {
    pub client_id: String,
    pub client_secret: String,
    /// How long an issued token works (Salesforce states no lifetime).
    pub token_lifetime: Duration,
    /// API requests the org may make in its 24 hours.
    pub allocation: u64,
    /// Custom fields that exist on the object.
    pub custom_fields: Vec<String>,
    /// `Contact` or `Lead`.
    pub object: String,
    /// Status polls a closed job answers `InProgress` to before it is done.
    pub polls_in_progress: u32,
    /// A job fails after processing this many rows; the rest are
    /// unprocessed.
    pub fail_job_after: Option<usize>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            client_id: "fake-client".into(),
            client_secret: "fake-secret".into(),
            token_lifetime: Duration::from_secs(3600),
            allocation: 100_000,
            custom_fields: Vec::new(),
            object: "Contact".into(),
            polls_in_progress: 1,
            fail_job_after: None,
        }
    }
}

/// A record: its Id and fields (`Id` included).
pub type Record = BTreeMap<String, Value>;

#[derive(Clone, Debug)]
struct Job {
    object: String,
    external_id: String,
    state: String,
    data: Option<Vec<u8>>,
    polls: u32,
    successful: Vec<Vec<String>>,
    failed: Vec<Vec<String>>,
    unprocessed: Vec<Vec<String>>,
    header: Vec<String>,
    error: Option<String>,
}

#[derive(Default)]
struct Data {
    records: BTreeMap<String, Record>,
    jobs: BTreeMap<String, Job>,
    next: u64,
    used: u64,
}

pub struct Salesforce {
    options: Options,
    data: Mutex<Data>,
    tokens: Tokens,
    stats: Arc<Stats>,
}

impl Salesforce {
    pub fn start(policy: Policy, options: Options) -> (FakeServer, Arc<Salesforce>) {
        let slot: Arc<Mutex<Option<Arc<Salesforce>>>> = Arc::default();
        let captured = slot.clone();
        let server = FakeServer::start(policy.refuse_with(refusal), move |stats| {
            let org = Arc::new(Salesforce {
                options,
                data: Mutex::new(Data::default()),
                tokens: Tokens::default(),
                stats,
            });
            *captured.lock().unwrap() = Some(org.clone());
            router(org)
        });
        let org = slot.lock().unwrap().take().expect("router built");
        (server, org)
    }

    /// A record that exists before the run; returns its Id.
    pub fn create(&self, fields: &[(&str, &str)]) -> String {
        let mut data = self.data.lock().unwrap();
        let id = next_id(&mut data);
        let mut record: Record = fields
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        record.insert("Id".into(), json!(id));
        data.records.insert(id.clone(), record);
        id
    }

    pub fn records(&self) -> Vec<Record> {
        self.data
            .lock()
            .unwrap()
            .records
            .values()
            .cloned()
            .collect()
    }

    /// The values of `key` of the records whose `field` is `active`.
    pub fn active(&self, field: &str, key: &str) -> BTreeSet<String> {
        self.records()
            .into_iter()
            .filter(|r| r.get(field) == Some(&json!("active")))
            .filter_map(|r| r.get(key).and_then(Value::as_str).map(str::to_string))
            .collect()
    }

    /// API requests counted against the allocation.
    pub fn used(&self) -> u64 {
        self.data.lock().unwrap().used
    }

    /// Bulk jobs created.
    pub fn jobs(&self) -> usize {
        self.data.lock().unwrap().jobs.len()
    }

    pub fn tokens_issued(&self) -> u64 {
        self.tokens.count()
    }
}

/// The gateway's refusals, as Salesforce answers them: its in-flight cap
/// is the 25 concurrent long-running requests.
fn refusal(refusal: Refusal) -> Response {
    let message = match refusal {
        Refusal::Daily => "TotalRequests Limit exceeded.",
        _ => "ConcurrentPerOrgLongTxn Limit exceeded.",
    };
    error(StatusCode::FORBIDDEN, "REQUEST_LIMIT_EXCEEDED", message)
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!([{ "errorCode": code, "message": message }])),
    )
        .into_response()
}

fn next_id(data: &mut Data) -> String {
    data.next += 1;
    format!("003{:015}", data.next)
}

fn router(org: Arc<Salesforce>) -> Router {
    let data = format!("/services/data/{VERSION}");
    let api = Router::new()
        .route(
            &format!("{data}/composite/sobjects/{{object}}/{{field}}"),
            patch(collections),
        )
        .route(&format!("{data}/jobs/ingest"), post(create_job))
        .route(
            &format!("{data}/jobs/ingest/{{id}}"),
            get(job_info).patch(set_state),
        )
        .route(&format!("{data}/jobs/ingest/{{id}}/batches"), put(upload))
        .route(
            &format!("{data}/jobs/ingest/{{id}}/successfulResults/"),
            get(successful),
        )
        .route(
            &format!("{data}/jobs/ingest/{{id}}/failedResults/"),
            get(failed),
        )
        .route(
            &format!("{data}/jobs/ingest/{{id}}/unprocessedrecords/"),
            get(unprocessed),
        )
        .layer(middleware::from_fn_with_state(org.clone(), api_gate));
    Router::new()
        .route("/services/oauth2/token", post(token))
        .merge(api)
        .with_state(org)
}

/// Every API request: the session, the 24-hour allocation, and
/// `Sforce-Limit-Info` on the answer.
async fn api_gate(State(org): State<Arc<Salesforce>>, request: Request, next: Next) -> Response {
    let limit = org.options.allocation;
    let bearer = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string);
    let mut response = if bearer.is_none_or(|t| org.tokens.check_value(&t).is_err()) {
        error(
            StatusCode::UNAUTHORIZED,
            "INVALID_SESSION_ID",
            "Session expired or invalid",
        )
    } else {
        let spent = {
            let mut data = org.data.lock().unwrap();
            let spent = data.used >= limit;
            if !spent {
                data.used += 1;
            }
            spent
        };
        if spent {
            error(
                StatusCode::FORBIDDEN,
                "REQUEST_LIMIT_EXCEEDED",
                "TotalRequests Limit exceeded.",
            )
        } else {
            next.run(request).await
        }
    };
    let used = org.data.lock().unwrap().used;
    response.headers_mut().insert(
        "sforce-limit-info",
        format!("api-usage={used}/{limit}").parse().unwrap(),
    );
    response
}

async fn token(State(org): State<Arc<Salesforce>>, body: Bytes) -> Response {
    let form: BTreeMap<String, String> = String::from_utf8_lossy(&body)
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_string(), decode(v)))
        .collect();
    let get = |k: &str| form.get(k).map(String::as_str);
    if get("grant_type") != Some("client_credentials") {
        return (StatusCode::BAD_REQUEST, axum::Json(json!({"error": "unsupported_grant_type", "error_description": "grant type not supported"}))).into_response();
    }
    if get("client_id") != Some(&org.options.client_id)
        || get("client_secret") != Some(&org.options.client_secret)
    {
        return (StatusCode::BAD_REQUEST, axum::Json(json!({"error": "invalid_client", "error_description": "invalid client credentials"}))).into_response();
    }
    let token = org.tokens.issue(org.options.token_lifetime);
    axum::Json(json!({
        "access_token": token,
        "instance_url": "https://fake.my.salesforce.com",
        "id": "https://login.salesforce.com/id/00D/005",
        "token_type": "Bearer",
        "issued_at": "1764500000000",
        "signature": "c2lnbmF0dXJl",
    }))
    .into_response()
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("00");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What one upsert did to a record, or the error Salesforce reports.
enum Upserted {
    Done {
        id: String,
        created: bool,
    },
    Failed {
        code: &'static str,
        message: String,
        fields: Vec<String>,
    },
}

impl Salesforce {
    fn known(&self, field: &str) -> bool {
        STANDARD_FIELDS.contains(&field) || self.options.custom_fields.iter().any(|f| f == field)
    }

    /// Upserts one record matched on `external_id`; `null` clears a field.
    fn upsert(&self, data: &mut Data, external_id: &str, fields: &Map<String, Value>) -> Upserted {
        let key = fields
            .get(external_id)
            .and_then(Value::as_str)
            .unwrap_or("");
        if key.is_empty() {
            return Upserted::Failed {
                code: "MISSING_ARGUMENT",
                message: format!("{external_id} not specified"),
                fields: vec![],
            };
        }
        if let Some(email) = fields.get("Email").and_then(Value::as_str)
            && !(email.contains('@') && email.rsplit('@').next().is_some_and(|d| d.contains('.')))
        {
            return Upserted::Failed {
                code: "INVALID_EMAIL_ADDRESS",
                message: format!("Email: invalid email address: {email}"),
                fields: vec!["Email".into()],
            };
        }
        let found = data
            .records
            .values()
            .find(|r| r.get(external_id).and_then(Value::as_str) == Some(key))
            .and_then(|r| r.get("Id").and_then(Value::as_str).map(str::to_string));
        let created = found.is_none();
        if created && external_id == "Id" {
            return Upserted::Failed {
                code: "NOT_FOUND",
                message: format!(
                    "Provided external ID field does not exist or is not accessible: {key}"
                ),
                fields: vec![],
            };
        }
        let mut record = found
            .as_ref()
            .map(|id| data.records[id].clone())
            .unwrap_or_default();
        for (field, value) in fields {
            if field == "Id" {
                continue;
            }
            if value.is_null() {
                record.remove(field);
            } else {
                record.insert(field.clone(), value.clone());
            }
        }
        let mut required = vec!["LastName"];
        if self.options.object == "Lead" {
            required.push("Company");
        }
        let missing: Vec<String> = required
            .iter()
            .filter(|f| {
                record
                    .get(**f)
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
            })
            .map(|f| f.to_string())
            .collect();
        if !missing.is_empty() {
            return Upserted::Failed {
                code: "REQUIRED_FIELD_MISSING",
                message: format!("Required fields are missing: [{}]", missing.join(", ")),
                fields: missing,
            };
        }
        let id = found.unwrap_or_else(|| next_id(data));
        record.insert("Id".into(), json!(id));
        if data.records.get(&id) != Some(&record) {
            self.stats.mutation(key, "upsert");
            data.records.insert(id.clone(), record);
        }
        Upserted::Done { id, created }
    }
}

async fn collections(
    State(org): State<Arc<Salesforce>>,
    Path((object, field)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    if object != org.options.object {
        return error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            &format!("The requested resource does not exist: {object}"),
        );
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "JSON_PARSER_ERROR",
            "the body is not JSON",
        );
    };
    if body.get("allOrNone") != Some(&json!(false)) {
        return error(
            StatusCode::BAD_REQUEST,
            "INVALID_FIELD",
            "accord sends allOrNone: false",
        );
    }
    let Some(records) = body.get("records").and_then(Value::as_array) else {
        return error(StatusCode::BAD_REQUEST, "JSON_PARSER_ERROR", "no records");
    };
    if records.len() > MAX_RECORDS {
        return error(
            StatusCode::BAD_REQUEST,
            "EXCEEDED_ID_LIMIT",
            "record limit reached. cannot submit more than 200 records into this call",
        );
    }
    for record in records {
        let Some(fields) = record.as_object() else {
            return error(
                StatusCode::BAD_REQUEST,
                "JSON_PARSER_ERROR",
                "a record is not an object",
            );
        };
        if record.pointer("/attributes/type").and_then(Value::as_str) != Some(object.as_str()) {
            return error(
                StatusCode::BAD_REQUEST,
                "INVALID_TYPE",
                "attributes.type does not match the object",
            );
        }
        if let Some(unknown) = fields.keys().find(|f| *f != "attributes" && !org.known(f)) {
            return error(
                StatusCode::BAD_REQUEST,
                "INVALID_FIELD",
                &format!("No such column '{unknown}' on sobject of type {object}"),
            );
        }
    }
    if !org.known(&field) {
        return error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            &format!("Provided external ID field does not exist or is not accessible: {field}"),
        );
    }
    let mut data = org.data.lock().unwrap();
    let results: Vec<Value> = records
        .iter()
        .map(|record| {
            let mut fields = record.as_object().cloned().unwrap_or_default();
            fields.remove("attributes");
            match org.upsert(&mut data, &field, &fields) {
                Upserted::Done { id, created } => json!({"id": id, "success": true, "errors": [], "created": created}),
                Upserted::Failed { code, message, fields } => json!({"success": false, "errors": [{"statusCode": code, "message": message, "fields": fields}]}),
            }
        })
        .collect();
    axum::Json(results).into_response()
}

fn job_json(id: &str, job: &Job) -> Value {
    json!({
        "id": id,
        "operation": "upsert",
        "object": job.object,
        "externalIdFieldName": job.external_id,
        "state": job.state,
        "contentType": "CSV",
        "lineEnding": "LF",
        "columnDelimiter": "COMMA",
        "apiVersion": 62.0,
        "numberRecordsProcessed": job.successful.len() + job.failed.len(),
        "numberRecordsFailed": job.failed.len(),
        "errorMessage": job.error,
    })
}

async fn create_job(State(org): State<Arc<Salesforce>>, body: Bytes) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let text = |k: &str| {
        body.get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    if text("object") != org.options.object
        || text("operation") != "upsert"
        || text("contentType") != "CSV"
        || text("lineEnding") != "LF"
        || !org.known(&text("externalIdFieldName"))
    {
        return error(
            StatusCode::BAD_REQUEST,
            "INVALIDJOB",
            &format!("invalid job: {body}"),
        );
    }
    let mut data = org.data.lock().unwrap();
    data.next += 1;
    let id = format!("750{:015}", data.next);
    let job = Job {
        object: text("object"),
        external_id: text("externalIdFieldName"),
        state: "Open".into(),
        data: None,
        polls: 0,
        successful: vec![],
        failed: vec![],
        unprocessed: vec![],
        header: vec![],
        error: None,
    };
    let answer = job_json(&id, &job);
    data.jobs.insert(id, job);
    axum::Json(answer).into_response()
}

async fn upload(
    State(org): State<Arc<Salesforce>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if headers.get("content-type").and_then(|v| v.to_str().ok()) != Some("text/csv") {
        return error(
            StatusCode::BAD_REQUEST,
            "INVALIDCONTENTTYPE",
            "the content type is text/csv",
        );
    }
    let mut data = org.data.lock().unwrap();
    let Some(job) = data.jobs.get_mut(&id) else {
        return error(StatusCode::NOT_FOUND, "NOT_FOUND", "no such job");
    };
    if job.state != "Open" || job.data.is_some() {
        return error(
            StatusCode::CONFLICT,
            "INVALIDJOBSTATE",
            "data was uploaded to this job already, or it is not open",
        );
    }
    job.data = Some(body.to_vec());
    StatusCode::CREATED.into_response()
}

async fn set_state(
    State(org): State<Arc<Salesforce>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut data = org.data.lock().unwrap();
    let Some(job) = data.jobs.get(&id).cloned() else {
        return error(StatusCode::NOT_FOUND, "NOT_FOUND", "no such job");
    };
    let job = match body.get("state").and_then(Value::as_str) {
        Some("UploadComplete") if job.state == "Open" && job.data.is_some() => {
            org.process(&mut data, job)
        }
        Some("Aborted") if matches!(job.state.as_str(), "Open" | "UploadComplete") => Job {
            state: "Aborted".into(),
            ..job
        },
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "INVALIDJOBSTATE",
                &format!("job is {}: cannot change to {body}", job.state),
            );
        }
    };
    let answer = job_json(&id, &job);
    data.jobs.insert(id, job);
    axum::Json(answer).into_response()
}

impl Salesforce {
    /// Processes a closed job's rows at once; its state says
    /// `UploadComplete` then `InProgress` until enough polls have passed.
    fn process(&self, data: &mut Data, mut job: Job) -> Job {
        job.state = "UploadComplete".into();
        let bytes = job.data.clone().unwrap_or_default();
        let mut reader = csv::ReaderBuilder::new().from_reader(bytes.as_slice());
        let header: Vec<String> = reader
            .headers()
            .map(|h| h.iter().map(str::to_string).collect())
            .unwrap_or_default();
        job.header = header.clone();
        if let Some(unknown) = header.iter().find(|f| !self.known(f)) {
            job.error = Some(format!("InvalidBatch : Field name not found : {unknown}"));
            job.state = "Failed".into();
            return job;
        }
        for (n, row) in reader.records().enumerate() {
            let row: Vec<String> = row
                .map(|r| r.iter().map(str::to_string).collect())
                .unwrap_or_default();
            if self.options.fail_job_after.is_some_and(|after| n >= after) {
                job.unprocessed.push(row);
                continue;
            }
            // Empty leaves a field as it is; #N/A clears it.
            let fields: Map<String, Value> = header
                .iter()
                .zip(&row)
                .filter(|(_, v)| !v.is_empty())
                .map(|(h, v)| (h.clone(), if v == "#N/A" { Value::Null } else { json!(v) }))
                .collect();
            match self.upsert(data, &job.external_id, &fields) {
                Upserted::Done { id, created } => job
                    .successful
                    .push([vec![id, created.to_string()], row].concat()),
                Upserted::Failed {
                    code,
                    message,
                    fields,
                } => job.failed.push(
                    [
                        vec![
                            String::new(),
                            format!("{code}:{message}:{} --", fields.join(",")),
                        ],
                        row,
                    ]
                    .concat(),
                ),
            }
        }
        if self.options.fail_job_after.is_some() && !job.unprocessed.is_empty() {
            job.error = Some("InvalidBatch : the job failed while processing".into());
        }
        job
    }
}

async fn job_info(State(org): State<Arc<Salesforce>>, Path(id): Path<String>) -> Response {
    let mut data = org.data.lock().unwrap();
    let Some(job) = data.jobs.get_mut(&id) else {
        return error(StatusCode::NOT_FOUND, "NOT_FOUND", "no such job");
    };
    if matches!(job.state.as_str(), "UploadComplete" | "InProgress") {
        job.polls += 1;
        job.state = if job.polls <= org.options.polls_in_progress {
            "InProgress".into()
        } else if job.error.is_some() {
            "Failed".into()
        } else {
            "JobComplete".into()
        };
    }
    axum::Json(job_json(&id, job)).into_response()
}

/// A result set of a job: its header and rows.
type ResultSet = fn(&Job) -> (Vec<String>, &Vec<Vec<String>>);

fn results(org: &Salesforce, id: &str, pick: ResultSet) -> Response {
    let data = org.data.lock().unwrap();
    let Some(job) = data.jobs.get(id) else {
        return error(StatusCode::NOT_FOUND, "NOT_FOUND", "no such job");
    };
    if !matches!(job.state.as_str(), "JobComplete" | "Failed" | "Aborted") {
        return error(
            StatusCode::BAD_REQUEST,
            "INVALIDJOBSTATE",
            "the job is not finished",
        );
    }
    let (header, rows) = pick(job);
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    writer.write_record(&header).unwrap();
    for row in rows {
        writer.write_record(row).unwrap();
    }
    let body = writer.into_inner().unwrap();
    ([("content-type", "text/csv")], body).into_response()
}

async fn successful(State(org): State<Arc<Salesforce>>, Path(id): Path<String>) -> Response {
    results(&org, &id, |j| {
        (
            [
                vec!["sf__Id".into(), "sf__Created".into()],
                j.header.clone(),
            ]
            .concat(),
            &j.successful,
        )
    })
}

async fn failed(State(org): State<Arc<Salesforce>>, Path(id): Path<String>) -> Response {
    results(&org, &id, |j| {
        (
            [vec!["sf__Id".into(), "sf__Error".into()], j.header.clone()].concat(),
            &j.failed,
        )
    })
}

async fn unprocessed(State(org): State<Arc<Salesforce>>, Path(id): Path<String>) -> Response {
    results(&org, &id, |j| (j.header.clone(), &j.unprocessed))
}
