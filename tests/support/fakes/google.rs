//! A Data Manager API fake for Google Customer Match, on the loopback fake
//! framework: written from Google's published contract, not from accord's
//! client.
//!
//! In: the test service-account key (its public half verifies the JWT
//! assertions), the Google Ads customer id the fake owns, the gateway
//! policy (limits scaled down, chaos) and how long its tokens really live.
//! Out: `POST /token` (the JWT-bearer grant), `GET`/`POST
//! /v1/accountTypes/GOOGLE_ADS/accounts/{id}/userLists`, `POST
//! /v1/audienceMembers:ingest` and `:remove`, the members of each user list,
//! and the mutations that changed them.
//!
//! Like the API it fails fast: one invalid member (an identifier that is not
//! 64 hex characters) fails the whole request with 400 `INVALID_ARGUMENT`
//! and nothing in it is applied. Errors are `google.rpc.Status` JSON.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::signature::{KeyPair, RSA_PKCS1_2048_8192_SHA256, RsaKeyPair, UnparsedPublicKey};
use serde_json::{Value, json};

use crate::fake::{FakeServer, Policy, Refusal, Stats, Tokens};

/// The test key the client signs with (never a real credential).
pub const KEY_FILE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/support/keys/google_service_account_TEST_ONLY.json"
);
pub const CUSTOMER_ID: &str = "1234567890";
const MAX_MEMBERS: usize = 10_000;
const MAX_IDENTIFIERS: usize = 10;
const SCOPE: &str = "https://www.googleapis.com/auth/datamanager";

/// How the fake's tokens behave.
#[derive(Clone, Copy, Debug)]
pub struct TokenPolicy {
    /// How long a token really works.
    pub lifetime: Duration,
    /// The `expires_in` the token response states (Google says 3599).
    pub advertised: u64,
}

impl Default for TokenPolicy {
    fn default() -> TokenPolicy {
        TokenPolicy {
            lifetime: Duration::from_secs(3600),
            advertised: 3599,
        }
    }
}

/// A user list.
#[derive(Clone, Debug, Default)]
pub struct UserList {
    pub name: String,
    /// Members by their first identifier (the hashed email in the tests).
    pub members: BTreeSet<String>,
}

/// The fake's state.
pub struct Google {
    stats: Arc<Stats>,
    tokens: Tokens,
    token_policy: TokenPolicy,
    client_email: String,
    public_key: Vec<u8>,
    pub lists: Mutex<BTreeMap<String, UserList>>,
    next_list_id: Mutex<u64>,
    /// Member-carrying requests that reached a handler, by op.
    pub data_requests: Mutex<BTreeMap<String, u64>>,
}

impl Google {
    /// The members of the list `id`.
    pub fn members(&self, id: &str) -> BTreeSet<String> {
        let lists = self.lists.lock().unwrap();
        lists.get(id).map(|l| l.members.clone()).unwrap_or_default()
    }

    /// The id of the list named `name`.
    pub fn list_named(&self, name: &str) -> Option<String> {
        let lists = self.lists.lock().unwrap();
        lists
            .iter()
            .find(|(_, l)| l.name == name)
            .map(|(id, _)| id.clone())
    }

    /// A list made before the run (a pinned id).
    pub fn add_list(&self, name: &str) -> String {
        let mut next = self.next_list_id.lock().unwrap();
        *next += 1;
        let id = next.to_string();
        self.lists.lock().unwrap().insert(
            id.clone(),
            UserList {
                name: name.to_string(),
                members: BTreeSet::new(),
            },
        );
        id
    }

    pub fn tokens_issued(&self) -> u64 {
        self.tokens.count()
    }
}

/// Starts the fake behind `policy` (whose refusals it answers as Google does).
pub fn start(policy: Policy, tokens: TokenPolicy) -> (FakeServer, Arc<Google>) {
    let key: Value = serde_json::from_str(&std::fs::read_to_string(KEY_FILE).unwrap()).unwrap();
    let pem = key["private_key"].as_str().unwrap();
    let der: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let pair = RsaKeyPair::from_pkcs8(&STANDARD.decode(der).unwrap()).unwrap();
    let holder: Arc<Mutex<Option<Arc<Google>>>> = Arc::default();
    let slot = holder.clone();
    let server = FakeServer::start(policy.refuse_with(throttled), move |stats| {
        let google = Arc::new(Google {
            stats,
            tokens: Tokens::default(),
            token_policy: tokens,
            client_email: key["client_email"].as_str().unwrap().to_string(),
            public_key: pair.public_key().as_ref().to_vec(),
            lists: Mutex::default(),
            next_list_id: Mutex::new(1000),
            data_requests: Mutex::default(),
        });
        *slot.lock().unwrap() = Some(google.clone());
        router(google)
    });
    let google = holder.lock().unwrap().take().unwrap();
    (server, google)
}

fn router(google: Arc<Google>) -> Router {
    Router::new()
        .route("/token", post(token))
        .route(
            "/v1/accountTypes/{account_type}/accounts/{account}/userLists",
            get(list_lists).post(create_list),
        )
        .route("/v1/{method}", post(audience_members))
        .with_state(google)
}

/// A `google.rpc.Status` error.
fn status(code: StatusCode, canonical: &str, message: &str) -> Response {
    status_with(code, canonical, message, Vec::new())
}

fn status_with(code: StatusCode, canonical: &str, message: &str, details: Vec<Value>) -> Response {
    let body = json!({"error": {
        "code": code.as_u16(), "message": message, "status": canonical, "details": details,
    }});
    (code, axum::Json(body)).into_response()
}

/// A `google.rpc.Status` error where a helper returns `Result` (boxed:
/// a response is large).
fn refuse(code: StatusCode, canonical: &str, message: &str) -> Box<Response> {
    Box::new(status(code, canonical, message))
}

/// Google's answer to a request over its limits.
fn throttled(refusal: Refusal) -> Response {
    let retry_after = match refusal {
        Refusal::Window { retry_after } => retry_after,
        _ => Duration::from_millis(50),
    };
    let mut response = status(
        StatusCode::TOO_MANY_REQUESTS,
        "RESOURCE_EXHAUSTED",
        "Quota exceeded for quota metric 'Requests' of service 'datamanager.googleapis.com'.",
    );
    let value = format!("{:.3}", retry_after.as_secs_f64());
    response
        .headers_mut()
        .insert("retry-after", value.parse().unwrap());
    response
}

// --- OAuth: the JWT-bearer grant -------------------------------------------

async fn token(State(google): State<Arc<Google>>, headers: HeaderMap, body: String) -> Response {
    let form: BTreeMap<String, String> = body
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_string(), v.replace("%3A", ":").replace("%3a", ":")))
        .collect();
    if form.get("grant_type").map(String::as_str)
        != Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
    {
        return oauth_error("unsupported_grant_type", "Invalid grant_type.");
    }
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let audience = format!("http://{host}/token");
    let assertion = form.get("assertion").map(String::as_str).unwrap_or("");
    if let Err(why) = google.verify(assertion, &audience) {
        return oauth_error("invalid_grant", why);
    }
    let token = google.tokens.issue(google.token_policy.lifetime);
    axum::Json(json!({
        "access_token": token,
        "expires_in": google.token_policy.advertised,
        "token_type": "Bearer",
    }))
    .into_response()
}

fn oauth_error(error: &str, description: &str) -> Response {
    let body = json!({"error": error, "error_description": description});
    (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
}

impl Google {
    /// Checks an assertion as Google's token endpoint does.
    fn verify(&self, assertion: &str, audience: &str) -> Result<(), &'static str> {
        let (signed, signature) = assertion.rsplit_once('.').ok_or("Invalid JWT.")?;
        let (header, claims) = signed.split_once('.').ok_or("Invalid JWT.")?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| "Invalid JWT.")?;
        UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &self.public_key)
            .verify(signed.as_bytes(), &signature)
            .map_err(|_| "Invalid JWT Signature.")?;
        let header = decode_part(header)?;
        let claims = decode_part(claims)?;
        if header["alg"] != "RS256" {
            return Err("Invalid JWT: alg must be RS256.");
        }
        if claims["iss"] != self.client_email.as_str() {
            return Err("Invalid issuer.");
        }
        let scopes = claims["scope"].as_str().unwrap_or("");
        if !scopes.split(' ').any(|s| s == SCOPE) {
            return Err("Invalid scope.");
        }
        if claims["aud"] != audience {
            return Err("Invalid JWT: audience.");
        }
        check_times(&claims)
    }
}

fn decode_part(part: &str) -> Result<Value, &'static str> {
    let bytes = URL_SAFE_NO_PAD.decode(part).map_err(|_| "Invalid JWT.")?;
    serde_json::from_slice(&bytes).map_err(|_| "Invalid JWT.")
}

/// `iat` near now, `exp` after it and at most an hour later.
fn check_times(claims: &Value) -> Result<(), &'static str> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let iat = claims["iat"].as_u64().ok_or("Invalid JWT: iat.")?;
    let exp = claims["exp"].as_u64().ok_or("Invalid JWT: exp.")?;
    if iat > now + 300 || now > exp || exp <= iat || exp - iat > 3600 {
        return Err(
            "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe.",
        );
    }
    Ok(())
}

// --- user lists ------------------------------------------------------------

fn authorize(google: &Google, headers: &HeaderMap) -> Result<(), Box<Response>> {
    google.tokens.check(headers).map_err(|_| {
        refuse(
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            "Request had invalid authentication credentials.",
        )
    })
}

fn own_account(account_type: &str, account: &str) -> Result<(), Box<Response>> {
    if account_type != "GOOGLE_ADS" || account != CUSTOMER_ID {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            "PERMISSION_DENIED",
            "The caller does not have permission.",
        ));
    }
    Ok(())
}

async fn list_lists(
    State(google): State<Arc<Google>>,
    Path((account_type, account)): Path<(String, String)>,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = authorize(&google, &headers).and_then(|_| own_account(&account_type, &account))
    {
        return *r;
    }
    let wanted = query.get("filter").map(|f| display_name_filter(f));
    let wanted = match wanted {
        Some(None) => {
            return status(
                StatusCode::BAD_REQUEST,
                "INVALID_ARGUMENT",
                "Invalid filter.",
            );
        }
        Some(Some(name)) => Some(name),
        None => None,
    };
    let lists = google.lists.lock().unwrap();
    let found: Vec<Value> = lists
        .iter()
        .filter(|(_, l)| wanted.as_deref().is_none_or(|w| l.name == w))
        .map(|(id, l)| list_json(id, &l.name))
        .collect();
    axum::Json(json!({"userLists": found})).into_response()
}

/// The name in `display_name = "NAME"` (quotes and backslashes escaped).
fn display_name_filter(filter: &str) -> Option<String> {
    let rest = filter.trim().strip_prefix("display_name")?.trim_start();
    let quoted = rest.strip_prefix('=')?.trim();
    let inner = quoted.strip_prefix('"')?.strip_suffix('"')?;
    let mut name = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        name.push(if c == '\\' { chars.next()? } else { c });
    }
    Some(name)
}

fn list_json(id: &str, name: &str) -> Value {
    json!({
        "name": format!("accountTypes/GOOGLE_ADS/accounts/{CUSTOMER_ID}/userLists/{id}"),
        "id": id,
        "displayName": name,
        "membershipStatus": "OPEN",
        "ingestedUserListInfo": {
            "uploadKeyTypes": ["CONTACT_ID"],
            "contactIdInfo": {"dataSourceType": "DATA_SOURCE_TYPE_FIRST_PARTY"},
        },
    })
}

async fn create_list(
    State(google): State<Arc<Google>>,
    Path((account_type, account)): Path<(String, String)>,
    headers: HeaderMap,
    body: String,
) -> Response {
    if let Err(r) = authorize(&google, &headers).and_then(|_| own_account(&account_type, &account))
    {
        return *r;
    }
    let list: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let Some(name) = list["displayName"].as_str().filter(|n| !n.is_empty()) else {
        return status(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            "displayName is required.",
        );
    };
    let info = &list["ingestedUserListInfo"];
    if info["uploadKeyTypes"] != json!(["CONTACT_ID"]) || info["contactIdInfo"].is_null() {
        return status(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            "ingestedUserListInfo must be a CONTACT_ID list with contactIdInfo.",
        );
    }
    if google.list_named(name).is_some() {
        return status(
            StatusCode::CONFLICT,
            "ALREADY_EXISTS",
            "A user list with this name exists.",
        );
    }
    let id = google.add_list(name);
    google.stats.mutation(name, "create_list");
    axum::Json(list_json(&id, name)).into_response()
}

// --- audience members ------------------------------------------------------

async fn audience_members(
    State(google): State<Arc<Google>>,
    Path(method): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let op = match method.as_str() {
        "audienceMembers:ingest" => "add",
        "audienceMembers:remove" => "remove",
        _ => return status(StatusCode::NOT_FOUND, "NOT_FOUND", "Method not found."),
    };
    if let Err(r) = authorize(&google, &headers) {
        return *r;
    }
    *google
        .data_requests
        .lock()
        .unwrap()
        .entry(op.to_string())
        .or_default() += 1;
    let body: Value = match serde_json::from_str(&body) {
        Ok(body) => body,
        Err(_) => {
            return status(
                StatusCode::BAD_REQUEST,
                "INVALID_ARGUMENT",
                "Invalid JSON payload.",
            );
        }
    };
    let list = match google.destination(&body) {
        Ok(list) => list,
        Err(response) => return *response,
    };
    let keys = match validate(&body, op) {
        Ok(keys) => keys,
        Err(response) => return *response,
    };
    google.apply(&list, op, keys);
    axum::Json(json!({"requestId": format!("req-{}", std::process::id())})).into_response()
}

impl Google {
    /// The user list of the request's one destination.
    fn destination(&self, body: &Value) -> Result<String, Box<Response>> {
        let destinations = body["destinations"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let [destination] = destinations else {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                "INVALID_ARGUMENT",
                "Exactly one destination is required here.",
            ));
        };
        let account = &destination["operatingAccount"];
        if account["accountType"] != "GOOGLE_ADS" || account["accountId"] != CUSTOMER_ID {
            return Err(refuse(
                StatusCode::FORBIDDEN,
                "PERMISSION_DENIED",
                "The caller does not have permission.",
            ));
        }
        let id = destination["productDestinationId"].as_str().unwrap_or("");
        if !self.lists.lock().unwrap().contains_key(id) {
            return Err(refuse(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                "The user list does not exist.",
            ));
        }
        Ok(id.to_string())
    }

    fn apply(&self, list: &str, op: &str, keys: Vec<String>) {
        let mut lists = self.lists.lock().unwrap();
        let members = &mut lists.get_mut(list).unwrap().members;
        for key in keys {
            let changed = if op == "add" {
                members.insert(key.clone())
            } else {
                members.remove(&key)
            };
            if changed {
                self.stats.mutation(&key, op);
            }
        }
    }
}

/// The members' keys, or the fast-fail answer for the first invalid one.
fn validate(body: &Value, op: &str) -> Result<Vec<String>, Box<Response>> {
    let invalid = |message: &str| refuse(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", message);
    if body["encoding"] != "HEX" {
        return Err(invalid("encoding must be set for UserData uploads."));
    }
    if op == "add" {
        if body["termsOfService"]["customerMatchTermsOfServiceStatus"] != "ACCEPTED" {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                "FAILED_PRECONDITION",
                "The Customer Match terms of service must be accepted.",
            ));
        }
        let consent = &body["consent"];
        if consent["adUserData"] != "CONSENT_GRANTED"
            || consent["adPersonalization"] != "CONSENT_GRANTED"
        {
            return Err(invalid(
                "Consent must be granted for Customer Match uploads.",
            ));
        }
    } else if body.get("termsOfService").is_some() || body.get("consent").is_some() {
        return Err(invalid("Unknown field in RemoveAudienceMembersRequest."));
    }
    let members = body["audienceMembers"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    if members.is_empty() || members.len() > MAX_MEMBERS {
        return Err(invalid("Between 1 and 10000 audienceMembers are required."));
    }
    members
        .iter()
        .enumerate()
        .map(|(i, m)| member_key(m).ok_or_else(|| Box::new(invalid_member(i))))
        .collect()
}

fn invalid_member(index: usize) -> Response {
    let violation = json!({
        "@type": "type.googleapis.com/google.rpc.BadRequest",
        "fieldViolations": [{
            "field": format!("audience_members[{index}].user_data.user_identifiers"),
            "description": "Incorrectly formatted hashed value.",
        }],
    });
    status_with(
        StatusCode::BAD_REQUEST,
        "INVALID_ARGUMENT",
        "There was a problem with the request.",
        vec![violation],
    )
}

/// A valid member's first identifier.
fn member_key(member: &Value) -> Option<String> {
    let identifiers = member["userData"]["userIdentifiers"].as_array()?;
    if identifiers.is_empty() || identifiers.len() > MAX_IDENTIFIERS {
        return None;
    }
    let mut values = Vec::new();
    for identifier in identifiers {
        let object = identifier.as_object()?;
        let [(field, value)] = object.iter().collect::<Vec<_>>()[..] else {
            return None;
        };
        let value = value.as_str().filter(|v| is_sha256_hex(v))?;
        if field != "emailAddress" && field != "phoneNumber" {
            return None;
        }
        values.push(value.to_string());
    }
    values.into_iter().next()
}

fn is_sha256_hex(value: &str) -> bool {
    value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit())
}
