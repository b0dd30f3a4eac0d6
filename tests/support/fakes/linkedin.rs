//! A loopback LinkedIn Matched Audiences for delivery tests, written from
//! LinkedIn's published contract: the OAuth refresh-token grant, the DMP
//! segment finder and creation, and the `companies` and `users` streams
//! (Rest.li 2.0 `BATCH_CREATE`, one status per element).
//!
//! In: [`Options`] (credentials, token lifetime, the member's role, how long
//! a new segment takes to become available). Out: a router for
//! [`crate::fake::FakeServer`] and a [`LinkedInState`] the test reads: the
//! segments of each account and their members. Every API call must carry a
//! valid bearer token, `LinkedIn-Version` and `X-Restli-Protocol-Version:
//! 2.0.0`; the streams must say `X-RestLi-Method: BATCH_CREATE`.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::fake::{Stats, TokenError, Tokens, too_many_requests};

/// The client credentials the fake accepts.
pub const CLIENT_ID: &str = "li-client";
pub const CLIENT_SECRET: &str = "li-client-secret";
pub const REFRESH_TOKEN: &str = "li-refresh-token";

/// How the fake LinkedIn behaves.
#[derive(Clone, Debug)]
pub struct Options {
    /// Lifetime of each access token it issues.
    pub token_lifetime: Duration,
    /// The `expires_in` it states, when it differs from the real lifetime
    /// (a token revoked early is refused with 401 before it says it expires).
    pub stated_lifetime: Option<Duration>,
    /// The member's role on every ad account; `VIEWER` may not manage audiences.
    pub role: &'static str,
    /// After creation, streams to a segment are answered 404 for this long.
    pub settle: Duration,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            token_lifetime: Duration::from_secs(3600),
            stated_lifetime: None,
            role: "CAMPAIGN_MANAGER",
            settle: Duration::ZERO,
        }
    }
}

/// One DMP segment and what was streamed into it.
#[derive(Clone, Debug)]
pub struct Segment {
    pub id: u64,
    pub name: String,
    pub account: String,
    pub kind: String,
    pub source_platform: String,
    pub created: Instant,
    /// Users as `ID_TYPE:value`; companies as `name|domain`.
    pub members: BTreeSet<String>,
}

#[derive(Default)]
pub struct LinkedInState {
    segments: Mutex<BTreeMap<u64, Segment>>,
    next_id: Mutex<u64>,
    pub tokens: Tokens,
    pub refreshes: Mutex<u64>,
}

impl LinkedInState {
    pub fn segments(&self) -> Vec<Segment> {
        self.segments.lock().unwrap().values().cloned().collect()
    }

    pub fn segment_named(&self, name: &str) -> Option<Segment> {
        self.segments().into_iter().find(|s| s.name == name)
    }

    /// Adds a segment as if created earlier (settled).
    pub fn seed_segment(&self, name: &str, account: &str, kind: &str) -> u64 {
        self.insert(
            name,
            account,
            kind,
            "SEEDED",
            Instant::now() - Duration::from_secs(3600),
        )
    }

    fn insert(&self, name: &str, account: &str, kind: &str, source: &str, created: Instant) -> u64 {
        let mut next = self.next_id.lock().unwrap();
        *next += 1;
        let id = 9_000 + *next;
        self.segments.lock().unwrap().insert(
            id,
            Segment {
                id,
                name: name.to_string(),
                account: account.to_string(),
                kind: kind.to_string(),
                source_platform: source.to_string(),
                created,
                members: BTreeSet::new(),
            },
        );
        id
    }
}

#[derive(Clone)]
struct App {
    state: Arc<LinkedInState>,
    stats: Arc<Stats>,
    options: Options,
}

/// The router, and the state it serves.
pub fn router(options: Options, stats: Arc<Stats>) -> (Router, Arc<LinkedInState>) {
    let state = Arc::new(LinkedInState::default());
    let app = App {
        state: state.clone(),
        stats,
        options,
    };
    let router = Router::new()
        .route("/oauth/v2/accessToken", post(token))
        .route("/rest/dmpSegments", get(find).post(create))
        .route("/rest/dmpSegments/{id}/users", post(stream_users))
        .route("/rest/dmpSegments/{id}/companies", post(stream_companies))
        .with_state(app);
    (router, state)
}

/// LinkedIn's throttling answer, for the gateway's refusals.
pub fn refusal(refusal: crate::fake::Refusal) -> Response {
    match refusal {
        crate::fake::Refusal::Window { retry_after } => too_many_requests(retry_after),
        _ => too_many_requests(Duration::from_millis(200)),
    }
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({ "status": status.as_u16(), "code": code, "message": message });
    (status, Json(body)).into_response()
}

async fn token(State(app): State<App>, body: String) -> Response {
    let form: HashMap<String, String> = match serde_urlencoded_pairs(&body) {
        Some(form) => form,
        None => return oauth_error("invalid_request", "the body is not a form"),
    };
    let field = |k: &str| form.get(k).map(String::as_str);
    if field("grant_type") != Some("refresh_token") {
        return oauth_error("unsupported_grant_type", "grant_type must be refresh_token");
    }
    if field("client_id") != Some(CLIENT_ID) || field("client_secret") != Some(CLIENT_SECRET) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid_client"})),
        )
            .into_response();
    }
    if field("refresh_token") != Some(REFRESH_TOKEN) {
        return oauth_error("invalid_grant", "the refresh token is invalid");
    }
    *app.state.refreshes.lock().unwrap() += 1;
    let lifetime = app.options.token_lifetime;
    let access_token = app.state.tokens.issue(lifetime);
    Json(json!({
        "access_token": access_token,
        "expires_in": app.options.stated_lifetime.unwrap_or(lifetime).as_secs(),
        "refresh_token": REFRESH_TOKEN,
        "refresh_token_expires_in": 31_536_000,
    }))
    .into_response()
}

fn oauth_error(error: &str, description: &str) -> Response {
    let body = json!({ "error": error, "error_description": description });
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

/// `application/x-www-form-urlencoded` into pairs.
fn serde_urlencoded_pairs(body: &str) -> Option<HashMap<String, String>> {
    body.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=')?;
            Some((decode(k)?, decode(v)?))
        })
        .collect()
}

fn decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
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
    String::from_utf8(out).ok()
}

/// The refusal of an API call that fails the checks every call passes
/// before its handler's own; `None` when it passes them.
fn refuse_call(app: &App, headers: &HeaderMap) -> Option<Response> {
    match app.state.tokens.check(headers) {
        Ok(()) => {}
        Err(TokenError::Expired) => {
            return Some(error(
                StatusCode::UNAUTHORIZED,
                "EXPIRED_ACCESS_TOKEN",
                "The token used in the request has expired",
            ));
        }
        Err(_) => {
            return Some(error(
                StatusCode::UNAUTHORIZED,
                "INVALID_ACCESS_TOKEN",
                "Invalid access token",
            ));
        }
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let version_ok = header("linkedin-version")
        .is_some_and(|v| v.len() == 6 && v.bytes().all(|b| b.is_ascii_digit()));
    if !version_ok {
        return Some(error(
            StatusCode::BAD_REQUEST,
            "VERSION_MISSING",
            "A version must be present",
        ));
    }
    if header("x-restli-protocol-version") != Some("2.0.0") {
        return Some(error(
            StatusCode::BAD_REQUEST,
            "PROTOCOL_VERSION",
            "Rest.li protocol 2.0.0 is required",
        ));
    }
    None
}

/// Managing audiences needs a role other than VIEWER on the ad account.
fn refuse_viewer(app: &App) -> Option<Response> {
    if app.options.role == "VIEWER" {
        return Some(error(
            StatusCode::FORBIDDEN,
            "ACCESS_DENIED",
            "Not enough permissions: the member's role on the ad account is VIEWER",
        ));
    }
    None
}

async fn find(
    State(app): State<App>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if let Some(response) = refuse_call(&app, &headers) {
        return response;
    }
    if query.get("q").map(String::as_str) != Some("account") {
        return error(
            StatusCode::BAD_REQUEST,
            "ILLEGAL_ARGUMENT",
            "unknown finder",
        );
    }
    let Some(account) = query.get("account") else {
        return error(
            StatusCode::BAD_REQUEST,
            "ILLEGAL_ARGUMENT",
            "account is required",
        );
    };
    let start: usize = query.get("start").and_then(|s| s.parse().ok()).unwrap_or(0);
    let count: usize = query
        .get("count")
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let all: Vec<Value> = app
        .state
        .segments()
        .iter()
        .filter(|s| &s.account == account)
        .map(|s| json!({"id": s.id, "name": s.name, "account": s.account, "type": s.kind, "sourcePlatform": s.source_platform, "status": "READY"}))
        .collect();
    let page: Vec<Value> = all.iter().skip(start).take(count).cloned().collect();
    Json(json!({"elements": page, "paging": {"start": start, "count": count, "total": all.len()}}))
        .into_response()
}

async fn create(State(app): State<App>, headers: HeaderMap, body: String) -> Response {
    if let Some(response) = refuse_call(&app, &headers).or_else(|| refuse_viewer(&app)) {
        return response;
    }
    let Ok(body) = serde_json::from_str::<Value>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "ILLEGAL_ARGUMENT",
            "the body is not JSON",
        );
    };
    let text = |k: &str| {
        body.get(k)
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
    };
    let (Some(name), Some(account), Some(kind), Some(source)) = (
        text("name"),
        text("account"),
        text("type"),
        text("sourcePlatform"),
    ) else {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "FIELD_REQUIRED",
            "name, account, type and sourcePlatform are required",
        );
    };
    if !matches!(kind, "USER" | "COMPANY") || !account.starts_with("urn:li:sponsoredAccount:") {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_VALUE",
            "bad type or account",
        );
    }
    if body.get("destinations") != Some(&json!([{"destination": "LINKEDIN"}])) {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_VALUE",
            "destinations must be LINKEDIN",
        );
    }
    let id = app
        .state
        .insert(name, account, kind, source, Instant::now());
    app.stats.mutation(&format!("segment:{name}"), "create");
    (
        StatusCode::CREATED,
        [
            ("x-restli-id", id.to_string()),
            ("x-linkedin-id", id.to_string()),
            ("location", format!("/dmpSegments/{id}")),
        ],
    )
        .into_response()
}

async fn stream_users(
    State(app): State<App>,
    Path(id): Path<u64>,
    headers: HeaderMap,
    body: String,
) -> Response {
    stream(app, id, "USER", headers, body, user_keys)
}

async fn stream_companies(
    State(app): State<App>,
    Path(id): Path<u64>,
    headers: HeaderMap,
    body: String,
) -> Response {
    stream(app, id, "COMPANY", headers, body, company_keys)
}

/// The membership keys of one element, or why it is refused.
type KeysOf = fn(&Value) -> Result<Vec<String>, String>;

fn stream(
    app: App,
    id: u64,
    kind: &str,
    headers: HeaderMap,
    body: String,
    keys_of: KeysOf,
) -> Response {
    if let Some(response) = refuse_call(&app, &headers).or_else(|| refuse_viewer(&app)) {
        return response;
    }
    if headers.get("x-restli-method").and_then(|v| v.to_str().ok()) != Some("BATCH_CREATE") {
        return error(
            StatusCode::BAD_REQUEST,
            "ILLEGAL_ARGUMENT",
            "X-RestLi-Method: BATCH_CREATE is required",
        );
    }
    let Some(elements) = serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|b| b.get("elements").and_then(Value::as_array).cloned())
    else {
        return error(
            StatusCode::BAD_REQUEST,
            "ILLEGAL_ARGUMENT",
            "elements are required",
        );
    };
    let mut segments = app.state.segments.lock().unwrap();
    let Some(segment) = segments
        .get_mut(&id)
        .filter(|s| s.created.elapsed() >= app.options.settle)
    else {
        return error(StatusCode::NOT_FOUND, "NOT_FOUND", "DMP segment not found");
    };
    if segment.kind != kind {
        return error(
            StatusCode::BAD_REQUEST,
            "ILLEGAL_ARGUMENT",
            "the segment is of another type",
        );
    }
    let statuses: Vec<Value> = elements
        .iter()
        .map(|e| apply(&app.stats, segment, e, keys_of))
        .collect();
    Json(json!({ "elements": statuses })).into_response()
}

fn apply(stats: &Stats, segment: &mut Segment, element: &Value, keys_of: KeysOf) -> Value {
    let action = element.get("action").and_then(Value::as_str);
    let keys = match (action, keys_of(element)) {
        (Some("ADD" | "REMOVE"), Ok(keys)) => keys,
        (_, Err(message)) => {
            return json!({"status": 400, "error": {"status": 400, "code": "INVALID_VALUE", "message": message}});
        }
        _ => {
            return json!({"status": 400, "error": {"status": 400, "code": "INVALID_VALUE", "message": "action must be ADD or REMOVE"}});
        }
    };
    for key in keys {
        let changed = match action {
            Some("ADD") => segment.members.insert(key.clone()),
            _ => segment.members.remove(&key),
        };
        if changed {
            stats.mutation(
                &format!("{}:{key}", segment.name),
                &action.unwrap().to_lowercase(),
            );
        }
    }
    json!({"status": 201})
}

fn user_keys(element: &Value) -> Result<Vec<String>, String> {
    let ids = element
        .get("userIds")
        .and_then(Value::as_array)
        .filter(|ids| !ids.is_empty())
        .ok_or("userIds are required")?;
    ids.iter()
        .map(|id| {
            let kind = id.get("idType").and_then(Value::as_str).unwrap_or("");
            let value = id.get("idValue").and_then(Value::as_str).unwrap_or("");
            let valid = match kind {
                "SHA256_EMAIL" => value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit()),
                "GOOGLE_AID" | "APPLE_IDFA" => !value.is_empty(),
                _ => false,
            };
            valid
                .then(|| format!("{kind}:{value}"))
                .ok_or(format!("invalid user id {kind}:{value}"))
        })
        .collect()
}

fn company_keys(element: &Value) -> Result<Vec<String>, String> {
    let name = element
        .get("companyName")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or("companyName is required")?;
    let domain = element
        .get("companyWebsiteDomain")
        .and_then(Value::as_str)
        .unwrap_or("");
    Ok(vec![format!("{name}|{domain}")])
}
