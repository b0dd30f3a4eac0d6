//! A Marketo Engage instance on loopback, written from Adobe's published
//! REST API: the identity endpoint, lead upserts by email, leads read by
//! id or email, static-list membership by lead id, static lists found by
//! name and created in a folder, and lead activities (activity types,
//! paging tokens, activity pages).
//!
//! Activities follow the published paging contract: a paging token stands
//! for a point in time; each `activities.json` call scans the next
//! activities of all types (300, or [`Options::activity_scan`]) in date
//! order and returns those of the requested types, so a page may be short
//! or empty, without `result`, while `moreResult` is still true; the
//! `nextPageToken` of each page starts the next.
//!
//! In: a gateway [`Policy`] (limits scaled down, chaos) and [`Options`]
//! (credentials, token lifetime). Out: the running server and a handle on
//! its state ([`Marketo`]) that tests compare with the audience they expect.
//!
//! Like Marketo, it answers nearly everything with HTTP 200: request-level
//! failures are `"success": false` with `errors` (600-602 for tokens, 606
//! over the window, 615 over the in-flight cap, 607 over the daily quota),
//! record-level ones a `skipped` status with `reasons`. Only changes of
//! state are recorded as mutations, so a retried request that changes
//! nothing is not one.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value, json};

use crate::fake::{FakeServer, Policy, Refusal, Stats, TokenError, Tokens};

/// Records per call, as Marketo allows.
const MAX_RECORDS: usize = 300;

/// The instance's credentials and how long its tokens live.
#[derive(Clone, Debug)]
pub struct Options {
    pub client_id: String,
    pub client_secret: String,
    /// How long an issued token works.
    pub token_lifetime: Duration,
    /// The `expires_in` the token endpoint states; longer than the real
    /// lifetime, it makes a token die mid-run, as a token revoked in
    /// LaunchPoint does, so that 601/602 answers can be tested.
    pub stated_lifetime: Option<Duration>,
    /// Activities of all types each `activities.json` call scans (300 in
    /// Marketo); lowered, a test pages through few activities.
    pub activity_scan: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            client_id: "fake-client".into(),
            client_secret: "fake-secret".into(),
            token_lifetime: Duration::from_secs(3600),
            stated_lifetime: None,
            activity_scan: MAX_RECORDS,
        }
    }
}

/// The standard activity types of an instance that this fake knows:
/// `(id, name, primary attribute, attributes)`, as `types.json` lists them.
const ACTIVITY_TYPES: &[(i64, &str, &str, &[&str])] = &[
    (
        1,
        "Visit Webpage",
        "Webpage ID",
        &[
            "Client IP Address",
            "Query Parameters",
            "Referrer URL",
            "User Agent",
            "Webpage URL",
        ],
    ),
    (
        2,
        "Fill Out Form",
        "Webform ID",
        &[
            "Client IP Address",
            "Form Fields",
            "Query Parameters",
            "Referrer URL",
            "User Agent",
            "Webpage ID",
        ],
    ),
    (
        6,
        "Send Email",
        "Mailing ID",
        &[
            "Campaign Run ID",
            "Choice Number",
            "Step ID",
            "Test Variant",
        ],
    ),
    (
        7,
        "Email Delivered",
        "Mailing ID",
        &[
            "Campaign Run ID",
            "Choice Number",
            "Step ID",
            "Test Variant",
        ],
    ),
    (
        10,
        "Open Email",
        "Mailing ID",
        &[
            "Campaign Run ID",
            "Choice Number",
            "Device",
            "Is Mobile Device",
            "Platform",
            "Step ID",
            "Test Variant",
            "User Agent",
            "Is Bot Activity",
        ],
    ),
    (
        11,
        "Click Email",
        "Mailing ID",
        &[
            "Campaign Run ID",
            "Choice Number",
            "Device",
            "Is Mobile Device",
            "Link",
            "Platform",
            "Step ID",
            "Test Variant",
            "User Agent",
            "Is Bot Activity",
        ],
    ),
    (12, "New Lead", "", &["Source Type", "Form Name"]),
];

/// An activity as the instance keeps it: the JSON it answers with, and
/// where it sorts (date, then id).
#[derive(Clone, Debug)]
pub struct Activity {
    pub at: i64,
    pub id: u64,
    pub json: Value,
}

/// A lead: its id and its fields (including `email`).
#[derive(Clone, Debug, PartialEq)]
pub struct Lead {
    pub id: u64,
    pub fields: Map<String, Value>,
}

#[derive(Clone, Debug)]
pub struct StaticList {
    pub name: String,
    pub folder: Value,
    pub members: BTreeSet<u64>,
}

#[derive(Default)]
struct Data {
    leads: BTreeMap<String, Lead>,
    lists: BTreeMap<u64, StaticList>,
    next_lead: u64,
    next_list: u64,
    /// By (date in µs, id): the order pages scan them in.
    activities: BTreeMap<(i64, u64), Activity>,
    next_activity: u64,
}

/// The instance's state, shared by its handlers and the test.
pub struct Marketo {
    options: Options,
    data: Mutex<Data>,
    tokens: Tokens,
    stats: Arc<Stats>,
}

impl Marketo {
    /// Starts the instance behind the gateway; refusals answer as Marketo
    /// does, inside HTTP 200 bodies.
    pub fn start(policy: Policy, options: Options) -> (FakeServer, Arc<Marketo>) {
        let slot: Arc<Mutex<Option<Arc<Marketo>>>> = Arc::default();
        let captured = slot.clone();
        let server = FakeServer::start(policy.refuse_with(refusal), move |stats| {
            let marketo = Arc::new(Marketo {
                options,
                data: Mutex::new(Data {
                    next_lead: 1000,
                    next_list: 5000,
                    next_activity: 700_000,
                    ..Data::default()
                }),
                tokens: Tokens::default(),
                stats,
            });
            *captured.lock().unwrap() = Some(marketo.clone());
            router(marketo)
        });
        let marketo = slot.lock().unwrap().take().expect("router built");
        (server, marketo)
    }

    /// A list that exists before the run (a pinned one).
    pub fn create_list(&self, name: &str) -> u64 {
        let mut data = self.data.lock().unwrap();
        insert_list(&mut data, name, json!({"id": 1, "type": "Folder"}))
    }

    /// A lead that exists before the run.
    pub fn create_lead(&self, email: &str) -> u64 {
        let mut data = self.data.lock().unwrap();
        let mut fields = Map::new();
        fields.insert("email".into(), json!(email));
        upsert_lead(&mut data, fields).0
    }

    /// The emails of a list's members, by the list's name.
    pub fn members(&self, list_name: &str) -> BTreeSet<String> {
        let data = self.data.lock().unwrap();
        let emails: HashMap<u64, &String> = data.leads.iter().map(|(e, l)| (l.id, e)).collect();
        data.lists
            .values()
            .filter(|l| l.name == list_name)
            .flat_map(|l| l.members.iter().map(|id| emails[id].clone()))
            .collect()
    }

    /// Deletes a lead (its activities stay, as Marketo's do until purged).
    pub fn delete_lead(&self, email: &str) {
        self.data.lock().unwrap().leads.remove(email);
    }

    /// Records an activity of the type named `kind` for lead `lead` at
    /// `date` (RFC 3339): its primary attribute's id and value, its campaign
    /// and attributes (`(name, value)`, in Marketo's names). Returns its id.
    pub fn add_activity(
        &self,
        lead: u64,
        kind: &str,
        date: &str,
        primary: (u64, &str),
        campaign: Option<u64>,
        attributes: &[(&str, Value)],
    ) -> u64 {
        let type_id = ACTIVITY_TYPES
            .iter()
            .find(|t| t.1 == kind)
            .map(|t| t.0)
            .unwrap_or_else(|| panic!("the fake has no activity type {kind:?}"));
        let mut json = json!({
            "leadId": lead,
            "activityDate": date,
            "activityTypeId": type_id,
            "primaryAttributeValueId": primary.0,
            "primaryAttributeValue": primary.1,
            "attributes": attributes
                .iter()
                .map(|(name, value)| json!({"name": name, "value": value}))
                .collect::<Vec<_>>(),
        });
        if let Some(campaign) = campaign {
            json["campaignId"] = json!(campaign);
        }
        self.insert_activity(json, date)
    }

    /// Records an activity as raw JSON (its `id` and `marketoGUID` are
    /// given here), sorted at `sorts_at` (RFC 3339): how a test puts in one
    /// that Marketo would not write, such as a date that does not exist.
    pub fn insert_activity(&self, mut json: Value, sorts_at: &str) -> u64 {
        let mut data = self.data.lock().unwrap();
        data.next_activity += 1;
        let id = data.next_activity;
        json["id"] = json!(id);
        json["marketoGUID"] = json!(id.to_string());
        let at = micros(sorts_at).unwrap_or_else(|| panic!("{sorts_at:?} is no time"));
        data.activities.insert((at, id), Activity { at, id, json });
        id
    }

    /// How many `activities.json` calls arrived (refused ones too).
    pub fn activity_calls(&self) -> usize {
        self.stats
            .snapshot()
            .log
            .iter()
            .filter(|e| e.path == "/rest/v1/activities.json")
            .count()
    }

    pub fn lead(&self, email: &str) -> Option<Lead> {
        self.data.lock().unwrap().leads.get(email).cloned()
    }

    /// Static lists by name (a second list of one name would be a bug).
    pub fn list_names(&self) -> Vec<String> {
        let data = self.data.lock().unwrap();
        data.lists.values().map(|l| l.name.clone()).collect()
    }

    pub fn tokens_issued(&self) -> u64 {
        self.tokens.count()
    }

    /// Marketo's answer to a call without a valid bearer token, if so.
    fn unauthorized(&self, headers: &HeaderMap) -> Option<Response> {
        let error = self.tokens.check(headers).err()?;
        Some(match error {
            TokenError::Missing => failure("600", "Access token empty"),
            TokenError::Unknown => failure("601", "Access token invalid"),
            TokenError::Expired => failure("602", "Access token expired"),
        })
    }
}

/// Marketo's answers to a refused call: HTTP 200 with a request-level error.
fn refusal(refusal: Refusal) -> Response {
    match refusal {
        Refusal::Window { .. } | Refusal::Chaos => {
            failure("606", "Max rate limit '100' exceeded with in '20' secs")
        }
        Refusal::InFlight => failure("615", "Concurrent access limit reached"),
        Refusal::Daily => failure("607", "Daily quota reached"),
    }
}

fn router(marketo: Arc<Marketo>) -> Router {
    Router::new()
        .route("/identity/oauth/token", get(token).post(token))
        .route("/rest/v1/leads.json", post(upsert).get(leads_by_filter))
        .route("/rest/v1/activities/types.json", get(activity_types))
        .route("/rest/v1/activities/pagingtoken.json", get(paging_token))
        .route("/rest/v1/activities.json", get(activities))
        .route(
            "/rest/v1/lists/{list}/leads.json",
            post(add_to_list).delete(remove_from_list),
        )
        .route("/rest/asset/v1/staticList/byName.json", get(list_by_name))
        .route("/rest/asset/v1/staticLists.json", post(create_static_list))
        .with_state(marketo)
}

async fn token(
    State(marketo): State<Arc<Marketo>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let given = |key: &str| query.get(key).map(String::as_str);
    let valid = given("grant_type") == Some("client_credentials")
        && given("client_id") == Some(marketo.options.client_id.as_str())
        && given("client_secret") == Some(marketo.options.client_secret.as_str());
    if !valid {
        let body =
            json!({"error": "invalid_client", "error_description": "Bad client credentials"});
        return (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response();
    }
    let lifetime = marketo.options.token_lifetime;
    let token = marketo.tokens.issue(lifetime);
    let stated = marketo.options.stated_lifetime.unwrap_or(lifetime);
    axum::Json(json!({
        "access_token": token,
        "token_type": "bearer",
        "expires_in": stated.as_secs(),
        "scope": "apis@fake.example",
    }))
    .into_response()
}

async fn upsert(State(marketo): State<Arc<Marketo>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(answer) = marketo.unauthorized(&headers) {
        return answer;
    }
    let request: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(_) => return failure("609", "Invalid JSON"),
    };
    let shape_ok = request["action"] == "createOrUpdate" && request["lookupField"] == "email";
    let input = match request["input"].as_array() {
        Some(input) if shape_ok && !input.is_empty() && input.len() <= MAX_RECORDS => input,
        _ => return failure("1003", "Invalid data"),
    };
    let mut data = marketo.data.lock().unwrap();
    let result = input
        .iter()
        .map(|lead| upsert_one(&marketo.stats, &mut data, lead))
        .collect();
    success(result)
}

fn upsert_one(stats: &Stats, data: &mut Data, lead: &Value) -> Value {
    let fields = lead.as_object().cloned().unwrap_or_default();
    let Some(email) = fields
        .get("email")
        .and_then(Value::as_str)
        .map(str::to_string)
    else {
        return skipped(None, "1003", "Value for lookup field 'email' not set");
    };
    let (id, created, changed) = upsert_lead(data, fields);
    if created {
        stats.mutation(&email, "create");
    } else if changed {
        stats.mutation(&email, "update");
    }
    json!({"id": id, "status": if created { "created" } else { "updated" }})
}

/// Creates or updates a lead; (id, created, changed).
fn upsert_lead(data: &mut Data, fields: Map<String, Value>) -> (u64, bool, bool) {
    let email = fields["email"].as_str().unwrap_or_default().to_string();
    if let Some(lead) = data.leads.get_mut(&email) {
        let before = lead.fields.clone();
        lead.fields.extend(fields);
        return (lead.id, false, lead.fields != before);
    }
    data.next_lead += 1;
    let id = data.next_lead;
    data.leads.insert(email, Lead { id, fields });
    (id, true, true)
}

async fn add_to_list(
    State(marketo): State<Arc<Marketo>>,
    Path(list): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    membership(&marketo, &list, &query, &headers, &body, true)
}

async fn remove_from_list(
    State(marketo): State<Arc<Marketo>>,
    Path(list): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    membership(&marketo, &list, &query, &headers, &body, false)
}

/// Lead ids of a membership call: the JSON body's `input`, or the
/// documented `id` query parameters.
fn lead_ids(query: &[(String, String)], body: &[u8]) -> Option<Vec<Value>> {
    if body.is_empty() {
        let ids: Vec<Value> = query
            .iter()
            .filter(|(k, _)| k == "id")
            .map(|(_, v)| v.parse::<u64>().map(Value::from).unwrap_or(json!(v)))
            .collect();
        return (!ids.is_empty()).then_some(ids);
    }
    let request: Value = serde_json::from_slice(body).ok()?;
    let input = request["input"].as_array()?;
    Some(input.iter().map(|r| r["id"].clone()).collect())
}

fn membership(
    marketo: &Marketo,
    list: &str,
    query: &[(String, String)],
    headers: &HeaderMap,
    body: &[u8],
    add: bool,
) -> Response {
    if let Some(answer) = marketo.unauthorized(headers) {
        return answer;
    }
    let ids = match lead_ids(query, body) {
        Some(ids) if ids.len() <= MAX_RECORDS => ids,
        _ => return failure("1003", "Invalid data"),
    };
    let mut data = marketo.data.lock().unwrap();
    let Some(list_id) = list
        .parse::<u64>()
        .ok()
        .filter(|id| data.lists.contains_key(id))
    else {
        return failure("1013", "Static list not found");
    };
    let result = ids
        .iter()
        .map(|id| change_member(&marketo.stats, &mut data, list_id, id, add))
        .collect();
    success(result)
}

fn change_member(stats: &Stats, data: &mut Data, list_id: u64, id: &Value, add: bool) -> Value {
    let email = id
        .as_u64()
        .and_then(|id| data.leads.iter().find(|(_, l)| l.id == id))
        .map(|(e, _)| e.clone());
    let Some(email) = email else {
        return skipped(Some(id), "1004", "Lead not found");
    };
    let lead = id.as_u64().unwrap_or_default();
    let members = &mut data.lists.get_mut(&list_id).expect("checked").members;
    if add {
        if members.insert(lead) {
            stats.mutation(&format!("{list_id}:{email}"), "add");
        }
        return json!({"id": lead, "status": "added"});
    }
    if !members.remove(&lead) {
        return skipped(Some(id), "1015", "Lead not in list");
    }
    stats.mutation(&format!("{list_id}:{email}"), "remove");
    json!({"id": lead, "status": "removed"})
}

async fn list_by_name(
    State(marketo): State<Arc<Marketo>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Some(answer) = marketo.unauthorized(&headers) {
        return answer;
    }
    let Some(name) = query.get("name") else {
        return failure("701", "name cannot be blank");
    };
    let data = marketo.data.lock().unwrap();
    let found: Vec<Value> = data
        .lists
        .iter()
        .filter(|(_, l)| &l.name == name)
        .map(|(id, l)| list_json(*id, l))
        .collect();
    if found.is_empty() {
        return axum::Json(json!({
            "success": true,
            "warnings": ["No assets found for the given search criteria."],
            "errors": [],
            "requestId": request_id(),
        }))
        .into_response();
    }
    asset_success(found)
}

async fn create_static_list(
    State(marketo): State<Arc<Marketo>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(answer) = marketo.unauthorized(&headers) {
        return answer;
    }
    let form_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let form = form_fields(&body);
    let (Some(name), Some(folder)) = (form.get("name"), form.get("folder")) else {
        return failure("701", "name and folder cannot be blank");
    };
    let folder: Value = serde_json::from_str(folder).unwrap_or(Value::Null);
    if !form_type || folder["id"].as_u64().is_none() || folder["type"].as_str().is_none() {
        return failure("1003", "Invalid data");
    }
    let mut data = marketo.data.lock().unwrap();
    if data.lists.values().any(|l| &l.name == name) {
        return failure("709", "Static list name already exists");
    }
    let id = insert_list(&mut data, name, folder);
    marketo.stats.mutation(name, "create_list");
    asset_success(vec![list_json(id, &data.lists[&id])])
}

fn insert_list(data: &mut Data, name: &str, folder: Value) -> u64 {
    data.next_list += 1;
    let id = data.next_list;
    let list = StaticList {
        name: name.to_string(),
        folder,
        members: BTreeSet::new(),
    };
    data.lists.insert(id, list);
    id
}

/// An `application/x-www-form-urlencoded` body, decoded the way the
/// query-string extractor decodes a query.
fn form_fields(body: &[u8]) -> HashMap<String, String> {
    let text = String::from_utf8_lossy(body);
    let uri: Uri = format!("/?{text}")
        .parse()
        .unwrap_or_else(|_| Uri::from_static("/"));
    Query::<HashMap<String, String>>::try_from_uri(&uri)
        .map(|q| q.0)
        .unwrap_or_default()
}

fn list_json(id: u64, list: &StaticList) -> Value {
    json!({
        "id": id,
        "name": list.name,
        "createdAt": "2026-01-01T00:00:00Z+0000",
        "updatedAt": "2026-01-01T00:00:00Z+0000",
        "folder": list.folder,
        "computedUrl": format!("https://app-fake.marketo.com/#ST{id}A1"),
    })
}

fn request_id() -> String {
    "e42b#14272d07d78".into()
}

fn success(result: Vec<Value>) -> Response {
    axum::Json(json!({"requestId": request_id(), "result": result, "success": true}))
        .into_response()
}

fn asset_success(result: Vec<Value>) -> Response {
    axum::Json(json!({
        "success": true,
        "errors": [],
        "requestId": request_id(),
        "warnings": [],
        "result": result,
    }))
    .into_response()
}

fn failure(code: &str, message: &str) -> Response {
    axum::Json(json!({
        "requestId": request_id(),
        "success": false,
        "errors": [{"code": code, "message": message}],
    }))
    .into_response()
}

fn skipped(id: Option<&Value>, code: &str, message: &str) -> Value {
    let mut record = json!({"status": "skipped", "reasons": [{"code": code, "message": message}]});
    if let Some(id) = id {
        record["id"] = id.clone();
    }
    record
}

/// `GET /rest/v1/leads.json?filterType=id&filterValues=1,2&fields=email`:
/// the leads found (those that are not found are left out), each with its
/// `id` and the fields asked for.
async fn leads_by_filter(
    State(marketo): State<Arc<Marketo>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Some(answer) = marketo.unauthorized(&headers) {
        return answer;
    }
    let (Some(filter), Some(values)) = (query.get("filterType"), query.get("filterValues")) else {
        return failure("1002", "Missing value for required parameter 'filterType'");
    };
    let values: Vec<&str> = values.split(',').filter(|v| !v.is_empty()).collect();
    if values.is_empty() || values.len() > MAX_RECORDS {
        return failure("1003", "Invalid data");
    }
    let batch_ok =
        |b: &String| matches!(b.parse::<usize>(), Ok(b) if (1..=MAX_RECORDS).contains(&b));
    if query.get("batchSize").is_some_and(|b| !batch_ok(b)) {
        return failure("1003", "Invalid batchSize");
    }
    let fields: Vec<&str> = query
        .get("fields")
        .map(|f| f.split(',').collect())
        .unwrap_or_else(|| {
            vec![
                "id",
                "email",
                "firstName",
                "lastName",
                "updatedAt",
                "createdAt",
            ]
        });
    let data = marketo.data.lock().unwrap();
    let found: Vec<&Lead> = match filter.as_str() {
        "id" => values
            .iter()
            .filter_map(|v| v.parse::<u64>().ok())
            .filter_map(|id| data.leads.values().find(|l| l.id == id))
            .collect(),
        "email" => values.iter().filter_map(|e| data.leads.get(*e)).collect(),
        _ => return failure("1003", "Invalid filterType"),
    };
    let result = found
        .into_iter()
        .map(|lead| {
            let mut record = Map::new();
            record.insert("id".into(), json!(lead.id));
            for field in &fields {
                if *field != "id" {
                    let value = lead.fields.get(*field).cloned().unwrap_or(Value::Null);
                    record.insert(field.to_string(), value);
                }
            }
            Value::Object(record)
        })
        .collect();
    success(result)
}

async fn activity_types(State(marketo): State<Arc<Marketo>>, headers: HeaderMap) -> Response {
    if let Some(answer) = marketo.unauthorized(&headers) {
        return answer;
    }
    let result = ACTIVITY_TYPES
        .iter()
        .map(|(id, name, primary, attributes)| {
            let mut t = json!({
                "id": id,
                "name": name,
                "description": format!("{name} (fake)"),
                "attributes": attributes
                    .iter()
                    .map(|a| json!({"name": a, "dataType": "string"}))
                    .collect::<Vec<_>>(),
            });
            if !primary.is_empty() {
                t["primaryAttribute"] = json!({"name": primary, "dataType": "integer"});
            }
            t
        })
        .collect();
    success(result)
}

/// A paging token: an opaque text that stands for "from (date, id) on".
fn token_of(at: i64, id: u64) -> String {
    format!("{at}.{id}")
        .bytes()
        .map(|b| format!("{b:02X}"))
        .collect()
}

fn token_position(token: &str) -> Option<(i64, u64)> {
    let bytes: Option<Vec<u8>> = (0..token.len())
        .step_by(2)
        .map(|i| {
            token
                .get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect();
    let text = String::from_utf8(bytes?).ok()?;
    let (at, id) = text.split_once('.')?;
    Some((at.parse().ok()?, id.parse().ok()?))
}

/// RFC 3339 (with `Z` or an offset) or a date, in µs; `None` otherwise.
fn micros(text: &str) -> Option<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Some(t.timestamp_micros());
    }
    if let Ok(t) = chrono::DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%z") {
        return Some(t.timestamp_micros());
    }
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| d.and_utc().timestamp_micros())
}

/// Marketo's answer to a request without a parameter the endpoint requires.
fn missing(name: &str) -> Response {
    failure(
        "1002",
        &format!("Missing value for required parameter '{name}'"),
    )
}

/// `GET /rest/v1/activities/pagingtoken.json?sinceDatetime=...`.
async fn paging_token(
    State(marketo): State<Arc<Marketo>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Some(answer) = marketo.unauthorized(&headers) {
        return answer;
    }
    let Some(since) = query.get("sinceDatetime") else {
        return missing("sinceDatetime");
    };
    let Some(at) = micros(since) else {
        return failure("1001", "Invalid value for parameter 'sinceDatetime'");
    };
    axum::Json(json!({
        "requestId": request_id(),
        "success": true,
        "nextPageToken": token_of(at, 0),
    }))
    .into_response()
}

/// `GET /rest/v1/activities.json?nextPageToken=...&activityTypeIds=...`.
async fn activities(
    State(marketo): State<Arc<Marketo>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Some(answer) = marketo.unauthorized(&headers) {
        return answer;
    }
    let Some(token) = query.get("nextPageToken") else {
        return missing("nextPageToken");
    };
    let Some(from) = token_position(token) else {
        return failure("1003", "Invalid paging token");
    };
    let Some(types) = query.get("activityTypeIds") else {
        return missing("activityTypeIds");
    };
    let types: Option<BTreeSet<i64>> = types.split(',').map(|t| t.trim().parse().ok()).collect();
    let types = match types {
        Some(t) if !t.is_empty() && t.len() <= 10 => t,
        _ => return failure("1003", "Invalid value for 'activityTypeIds'"),
    };
    if let Some(unknown) = types
        .iter()
        .find(|t| !ACTIVITY_TYPES.iter().any(|k| k.0 == **t))
    {
        return failure("1003", &format!("Invalid activity type id {unknown}"));
    }
    let batch = match query.get("batchSize").map(|b| b.parse::<usize>()) {
        None => MAX_RECORDS,
        Some(Ok(b)) if (1..=MAX_RECORDS).contains(&b) => b,
        _ => return failure("1003", "Invalid batchSize"),
    };
    let data = marketo.data.lock().unwrap();
    let mut result = Vec::new();
    let mut last = None;
    for (position, activity) in data
        .activities
        .range(from..)
        .take(marketo.options.activity_scan)
    {
        last = Some(*position);
        let kind = activity.json["activityTypeId"].as_i64().unwrap_or(-1);
        if types.contains(&kind) {
            result.push(activity.json.clone());
            if result.len() == batch {
                break;
            }
        }
    }
    let next = match last {
        Some((at, id)) => (at, id + 1),
        None => from,
    };
    let more = data.activities.range(next..).next().is_some();
    let mut body = json!({
        "requestId": request_id(),
        "success": true,
        "nextPageToken": token_of(next.0, next.1),
        "moreResult": more,
    });
    if !result.is_empty() {
        body["result"] = Value::Array(result);
    }
    axum::Json(body).into_response()
}
