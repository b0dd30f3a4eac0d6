//! A Dataverse environment and its Microsoft Entra ID token service on
//! loopback, written from Microsoft's published contracts: client
//! credentials at `/{tenant}/oauth2/v2.0/token`, and the Web API's OData
//! `$batch` at `/api/data/v9.2/$batch` with `PATCH` upserts of Contacts
//! addressed by id or by an alternate key.
//!
//! In: a gateway [`Policy`] (limits scaled down, chaos) and [`Options`]
//! (credentials, token lifetime, Contact's columns and alternate keys).
//! Out: the running server and a handle on its Contacts ([`Dataverse`])
//! that tests compare with the audience they expect.
//!
//! It parses the multipart body itself (not with accord's parser), so a
//! request that only accord could read is refused here. Like Dataverse:
//! over a limit it answers 429 with `Retry-After` and an OData error; an
//! expired or unknown token is a 401; each operation gets its own
//! `application/http` response (204, or 4xx/5xx with an OData error), all
//! of them with `Prefer: odata.continue-on-error`, else up to the first
//! failure; a `PATCH` without `If-Match` creates a missing Contact, one with
//! `If-Match: *` answers 404 instead. Only changes of state are recorded
//! as mutations, so a resent operation that changes nothing is not one.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Map, Value, json};

use crate::fake::{FakeServer, Policy, Refusal, Stats, Tokens};

/// Operations per `$batch`, as Dataverse allows.
const MAX_OPERATIONS: usize = 1000;
/// `jobtitle`'s maximum length on Contact.
const JOBTITLE_MAX: usize = 100;

/// The environment's credentials, Contact's shape and token lifetimes.
#[derive(Clone, Debug)]
pub struct Options {
    pub tenant_id: String,
    pub client_id: String,
    pub client_secret: String,
    /// The environment URL the token's scope must name.
    pub environment_url: String,
    pub token_lifetime: Duration,
    /// The `expires_in` the token service states; longer than the real
    /// lifetime, it makes a token die mid-run (a revoked one).
    pub stated_lifetime: Option<Duration>,
    /// Contact's columns besides `contactid`.
    pub columns: BTreeSet<String>,
    /// Columns with an alternate key defined on Contact.
    pub alternate_keys: BTreeSet<String>,
    /// Key values (contact ids or alternate key values) whose first
    /// operation fails with a passing 500, as a deadlock or timeout would.
    pub fail_once: BTreeSet<String>,
}

impl Default for Options {
    fn default() -> Options {
        let columns = [
            "firstname",
            "lastname",
            "emailaddress1",
            "jobtitle",
            "nw_b2btier",
            "nw_intent",
            "b2b_intent_surging",
        ];
        Options {
            tenant_id: "contoso.onmicrosoft.com".into(),
            client_id: "fake-app".into(),
            client_secret: "fake-secret".into(),
            environment_url: "https://northwind-emea.crm4.dynamics.com".into(),
            token_lifetime: Duration::from_secs(3600),
            stated_lifetime: None,
            columns: columns.iter().map(|c| c.to_string()).collect(),
            alternate_keys: ["emailaddress1".to_string()].into(),
            fail_once: BTreeSet::new(),
        }
    }
}

#[derive(Default)]
struct Data {
    /// Contacts by id.
    contacts: BTreeMap<String, Map<String, Value>>,
    next_id: u64,
    failed: BTreeSet<String>,
    batches: u64,
}

/// The environment's state, shared by its handlers and the test.
pub struct Dataverse {
    options: Options,
    data: Mutex<Data>,
    tokens: Tokens,
    stats: Arc<Stats>,
}

impl Dataverse {
    /// Starts the environment behind the gateway; refusals answer as
    /// Dataverse's service protection does.
    pub fn start(policy: Policy, options: Options) -> (FakeServer, Arc<Dataverse>) {
        let slot: Arc<Mutex<Option<Arc<Dataverse>>>> = Arc::default();
        let captured = slot.clone();
        let server = FakeServer::start(policy.refuse_with(refusal), move |stats| {
            let dataverse = Arc::new(Dataverse {
                options,
                data: Mutex::new(Data::default()),
                tokens: Tokens::default(),
                stats,
            });
            *captured.lock().unwrap() = Some(dataverse.clone());
            router(dataverse)
        });
        let dataverse = slot.lock().unwrap().take().expect("router built");
        (server, dataverse)
    }

    /// A Contact that exists before the run.
    pub fn create_contact(&self, id: &str, fields: Value) {
        let mut data = self.data.lock().unwrap();
        let mut contact = fields.as_object().cloned().unwrap_or_default();
        contact.insert("contactid".into(), json!(id));
        data.contacts.insert(id.to_string(), contact);
    }

    pub fn contact(&self, id: &str) -> Option<Map<String, Value>> {
        self.data.lock().unwrap().contacts.get(id).cloned()
    }

    /// The Contact whose `column` holds `value`.
    pub fn contact_by(&self, column: &str, value: &str) -> Option<Map<String, Value>> {
        let data = self.data.lock().unwrap();
        data.contacts
            .values()
            .find(|c| c.get(column).and_then(Value::as_str) == Some(value))
            .cloned()
    }

    /// The ids of the Contacts whose `column` is `active`.
    pub fn active(&self, column: &str) -> BTreeSet<String> {
        let data = self.data.lock().unwrap();
        data.contacts
            .iter()
            .filter(|(_, c)| c.get(column).and_then(Value::as_str) == Some("active"))
            .map(|(id, _)| id.clone())
            .collect()
    }

    pub fn contact_count(&self) -> usize {
        self.data.lock().unwrap().contacts.len()
    }

    pub fn batches(&self) -> u64 {
        self.data.lock().unwrap().batches
    }

    pub fn tokens_issued(&self) -> u64 {
        self.tokens.count()
    }
}

/// Service protection's answer: 429, `Retry-After` in seconds (fractions
/// under a second, so that scaled-down tests stay fast), an OData error
/// naming the limit.
fn refusal(refusal: Refusal) -> Response {
    let (retry_after, code, message) = match refusal {
        Refusal::Window { retry_after } => (
            retry_after,
            "0x80072322",
            "Number of requests exceeded the limit of 6000 over time window of 300 seconds.",
        ),
        Refusal::InFlight => (
            Duration::from_millis(200),
            "0x80072326",
            "Number of concurrent requests exceeded the limit of 52.",
        ),
        Refusal::Daily | Refusal::Chaos => (
            Duration::from_millis(150),
            "0x80072321",
            "Combined execution time of incoming requests exceeded limit of 1,200,000 milliseconds over time window of 300 seconds.",
        ),
    };
    let value = if retry_after >= Duration::from_secs(1) {
        retry_after.as_secs_f64().ceil().to_string()
    } else {
        format!("{:.3}", retry_after.as_secs_f64())
    };
    (
        StatusCode::TOO_MANY_REQUESTS,
        [("Retry-After", value)],
        axum::Json(json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}

fn router(dataverse: Arc<Dataverse>) -> Router {
    Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(token))
        .route("/api/data/v9.2/$batch", post(batch))
        .with_state(dataverse)
}

async fn token(
    State(dataverse): State<Arc<Dataverse>>,
    Path(tenant): Path<String>,
    body: Bytes,
) -> Response {
    let form: HashMap<String, String> = form_urlencoded(&body);
    let given = |key: &str| form.get(key).map(String::as_str);
    let o = &dataverse.options;
    let entra_error = |status: StatusCode, error: &str, description: &str| {
        (
            status,
            axum::Json(json!({"error": error, "error_description": description})),
        )
            .into_response()
    };
    if tenant != o.tenant_id {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_tenant",
            &format!("AADSTS90002: Tenant '{tenant}' not found."),
        );
    }
    if given("grant_type") != Some("client_credentials") {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "AADSTS70003: The app requested an unsupported grant type.",
        );
    }
    let scope = format!("{}/.default", o.environment_url);
    if given("scope") != Some(scope.as_str()) {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "AADSTS1002012: The provided value for scope is not valid.",
        );
    }
    if given("client_id") != Some(o.client_id.as_str())
        || given("client_secret") != Some(o.client_secret.as_str())
    {
        return entra_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "AADSTS7000215: Invalid client secret provided.",
        );
    }
    let token = dataverse.tokens.issue(o.token_lifetime);
    let stated = o.stated_lifetime.unwrap_or(o.token_lifetime).as_secs();
    axum::Json(json!({
        "token_type": "Bearer",
        "expires_in": stated,
        "ext_expires_in": stated,
        "access_token": token,
    }))
    .into_response()
}

fn form_urlencoded(body: &[u8]) -> HashMap<String, String> {
    String::from_utf8_lossy(body)
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (percent_decode(k), percent_decode(&v.replace('+', " "))))
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        if bytes[i] == b'%'
            && let Some(byte) = hex
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn odata_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        [("OData-Version", "4.0")],
        axum::Json(json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}

async fn batch(
    State(dataverse): State<Arc<Dataverse>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if dataverse.tokens.check(&headers).is_err() {
        return (
            StatusCode::UNAUTHORIZED,
            [("WWW-Authenticate", "Bearer error=\"invalid_token\"")],
        )
            .into_response();
    }
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    if header("odata-version") != "4.0" || header("odata-maxversion") != "4.0" {
        return odata_error(
            StatusCode::BAD_REQUEST,
            "0x80048d19",
            "OData-Version 4.0 is required.",
        );
    }
    let Some(boundary) = boundary(header("content-type")) else {
        return odata_error(
            StatusCode::BAD_REQUEST,
            "0x80048d19",
            "The batch request must have a \"Content-Type\" header of multipart/mixed with a boundary.",
        );
    };
    let text = String::from_utf8_lossy(&body);
    let parts = match split(&text, &boundary) {
        Some(parts) => parts,
        None => {
            return odata_error(
                StatusCode::BAD_REQUEST,
                "0x80048d19",
                "The batch request body is not a complete multipart/mixed message.",
            );
        }
    };
    if parts.is_empty() || parts.len() > MAX_OPERATIONS {
        return odata_error(
            StatusCode::BAD_REQUEST,
            "0x80048d19",
            &format!(
                "A batch holds 1 to {MAX_OPERATIONS} requests; this one holds {}.",
                parts.len()
            ),
        );
    }
    let continue_on_error = header("prefer")
        .split(',')
        .any(|p| p.trim() == "odata.continue-on-error");
    let mut data = dataverse.data.lock().unwrap();
    data.batches += 1;
    let mut answer = String::new();
    let response_boundary = format!("batchresponse_{:08x}", data.batches);
    for part in parts {
        let (content_id, status, json) = dataverse.operation(&mut data, &part);
        answer.push_str(&format!(
            "--{response_boundary}\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n"
        ));
        if let Some(id) = content_id {
            answer.push_str(&format!("Content-ID: {id}\r\n"));
        }
        answer.push_str(&format!("\r\nHTTP/1.1 {status}\r\nOData-Version: 4.0\r\n"));
        match &json {
            Some(body) => answer.push_str(&format!(
                "Content-Type: application/json; odata.metadata=minimal\r\n\r\n{body}\r\n"
            )),
            None => answer.push_str("\r\n\r\n"),
        }
        if json.is_some() && !continue_on_error {
            break;
        }
    }
    answer.push_str(&format!("--{response_boundary}--\r\n"));
    (
        StatusCode::OK,
        [
            (
                "Content-Type",
                format!("multipart/mixed; boundary={response_boundary}"),
            ),
            ("OData-Version", "4.0".to_string()),
        ],
        answer,
    )
        .into_response()
}

fn boundary(content_type: &str) -> Option<String> {
    let mut params = content_type.split(';');
    if params.next()?.trim() != "multipart/mixed" {
        return None;
    }
    params
        .filter_map(|p| p.trim().strip_prefix("boundary="))
        .map(|b| b.trim_matches('"').to_string())
        .find(|b| !b.is_empty())
}

/// The parts between `--boundary` lines, which must end with `--boundary--`.
fn split(text: &str, boundary: &str) -> Option<Vec<String>> {
    let open = format!("--{boundary}\r\n");
    let close = format!("--{boundary}--");
    let (body, _epilogue) = text.split_once(&close)?;
    let mut parts: Vec<String> = body.split(&open).map(str::to_string).collect();
    // Whatever precedes the first delimiter is the preamble.
    parts.remove(0);
    Some(
        parts
            .into_iter()
            .map(|p| p.strip_suffix("\r\n").map(str::to_string).unwrap_or(p))
            .collect(),
    )
}

/// One operation's answer: its Content-ID, the status line and an error.
type Answer = (Option<String>, String, Option<Value>);

fn failure(content_id: Option<String>, status: &str, code: &str, message: &str) -> Answer {
    (
        content_id,
        status.to_string(),
        Some(json!({"error": {"code": code, "message": message}})),
    )
}

impl Dataverse {
    fn operation(&self, data: &mut Data, part: &str) -> Answer {
        let (part_headers, message) = part.split_once("\r\n\r\n").unwrap_or((part, ""));
        let content_id = part_headers
            .split("\r\n")
            .find_map(|l| l.strip_prefix("Content-ID: "))
            .map(str::to_string);
        let http_part = part_headers
            .split("\r\n")
            .any(|l| l == "Content-Type: application/http");
        let (head, body) = message.split_once("\r\n\r\n").unwrap_or((message, ""));
        let mut lines = head.split("\r\n");
        let request_line = lines.next().unwrap_or("");
        let if_match = lines.any(|l| l.eq_ignore_ascii_case("If-Match: *"));
        let words: Vec<&str> = request_line.split(' ').collect();
        let [method, url, "HTTP/1.1"] = words.as_slice() else {
            return failure(
                content_id,
                "400 Bad Request",
                "0x80048d19",
                "The request line is malformed.",
            );
        };
        if !http_part || *method != "PATCH" {
            return failure(
                content_id,
                "405 Method Not Allowed",
                "0x80060888",
                "Only PATCH of contacts is supported here.",
            );
        }
        let Some(key) = url
            .split_once("/api/data/v9.2/")
            .map(|(_, rest)| rest)
            .and_then(|rest| rest.strip_prefix("contacts("))
            .and_then(|rest| rest.strip_suffix(')'))
        else {
            return failure(
                content_id,
                "404 Not Found",
                "0x80060888",
                &format!("Resource not found for the segment '{url}'."),
            );
        };
        let fields: Map<String, Value> = match serde_json::from_str(body) {
            Ok(Value::Object(fields)) => fields,
            _ => {
                return failure(
                    content_id,
                    "400 Bad Request",
                    "0x80048d19",
                    "Error identified in Payload provided by the user for Entity :'contacts'.",
                );
            }
        };
        for column in fields.keys() {
            if !self.options.columns.contains(column) {
                return failure(
                    content_id,
                    "400 Bad Request",
                    "0x80060888",
                    &format!(
                        "Could not find a property named '{column}' on type 'Microsoft.Dynamics.CRM.contact'."
                    ),
                );
            }
        }
        if let Some(title) = fields.get("jobtitle").and_then(Value::as_str)
            && title.chars().count() > JOBTITLE_MAX
        {
            return failure(
                content_id,
                "400 Bad Request",
                "0x80044331",
                &format!(
                    "A validation error occurred. The length of the 'jobtitle' attribute of the 'contact' entity exceeded the maximum allowed length of '{JOBTITLE_MAX}'."
                ),
            );
        }
        let address = match self.address(key) {
            Ok(address) => address,
            Err(message) => return failure(content_id, "400 Bad Request", "0x80060888", &message),
        };
        let key_value = match &address {
            Address::Id(id) => id.clone(),
            Address::Alternate(_, value) => value.clone(),
        };
        if self.options.fail_once.contains(&key_value) && data.failed.insert(key_value.clone()) {
            return failure(
                content_id,
                "500 Internal Server Error",
                "0x80040216",
                "An unexpected error occurred.",
            );
        }
        let existing = match &address {
            Address::Id(id) => data.contacts.contains_key(id).then(|| id.clone()),
            Address::Alternate(column, value) => data
                .contacts
                .iter()
                .find(|(_, c)| c.get(column).and_then(Value::as_str) == Some(value))
                .map(|(id, _)| id.clone()),
        };
        let id = match existing {
            Some(id) => id,
            None if if_match => {
                return failure(
                    content_id,
                    "404 Not Found",
                    "0x80040217",
                    &format!("contact With Ids = {key_value} Does Not Exist"),
                );
            }
            None => {
                let (id, mut contact) = match &address {
                    Address::Id(id) => (id.clone(), Map::new()),
                    Address::Alternate(column, value) => {
                        data.next_id += 1;
                        let mut contact = Map::new();
                        contact.insert(column.clone(), json!(value));
                        (
                            format!("00000000-0000-4000-8000-{:012x}", data.next_id),
                            contact,
                        )
                    }
                };
                contact.insert("contactid".into(), json!(id));
                data.contacts.insert(id.clone(), contact);
                self.stats.mutation(&key_value, "create");
                id
            }
        };
        let contact = data.contacts.get_mut(&id).expect("found or created");
        let before = contact.clone();
        for (column, value) in fields {
            contact.insert(column, value);
        }
        if *contact != before {
            let what = if if_match { "clear" } else { "update" };
            self.stats.mutation(&key_value, what);
        }
        (content_id, "204 No Content".into(), None)
    }

    fn address(&self, key: &str) -> Result<Address, String> {
        let Some((column, literal)) = key.split_once('=') else {
            let id = key.to_ascii_lowercase();
            let ok = id.len() == 36 && id.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
            return match ok {
                true => Ok(Address::Id(id)),
                false => Err(format!(
                    "Bad Request - Error in query syntax: '{key}' is not a Guid."
                )),
            };
        };
        if !self.options.alternate_keys.contains(column) {
            return Err(format!(
                "The key attribute '{column}' is not defined as an alternate key for the contact table."
            ));
        }
        let literal = percent_decode(literal);
        let value = match literal
            .strip_prefix('\'')
            .and_then(|l| l.strip_suffix('\''))
        {
            Some(quoted) if !quoted.replace("''", "").contains('\'') => quoted.replace("''", "'"),
            Some(_) => return Err(format!("Bad Request - Error in query syntax: {literal}")),
            None => literal,
        };
        Ok(Address::Alternate(column.to_string(), value))
    }
}

enum Address {
    Id(String),
    Alternate(String, String),
}
