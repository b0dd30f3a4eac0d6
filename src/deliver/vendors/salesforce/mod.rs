//! Salesforce CRM (catalog type `salesforce`), following Salesforce's
//! published REST API (one version, [`API_VERSION`]).
//!
//! Membership is a custom text field per audience on each Contact or Lead:
//! a member who joins is upserted with its mapped fields and the audience's
//! field set to `active`; one who leaves is upserted with only its match
//! key and the field cleared. Upserts match on `external_id` (`Id`, the
//! `salesforceId` column, by default). So there are no lists: joins are the
//! `Upsert` operation, leaves the `Remove` one, both upserts on the wire.
//!
//! In: the destination's `domain` (or `endpoint`), `object`,
//! `audience_fields`, `external_id`, `bulk_threshold`, the secrets
//! `client_id` and `client_secret`. Out: the OAuth 2.0 client credentials
//! token request; sObject Collections upserts (`collections`) for work up
//! to the threshold and Bulk API 2.0 ingest jobs (`bulk`, with `csv`)
//! above it; what the answers mean as [`Outcome`]s.
//!
//! Limits: 200 records per Collections call; `REQUEST_LIMIT_EXCEEDED` is
//! either the org's 24-hour API allocation spent (the destination is
//! parked, the rest stays pending) or, with a `ConcurrentPerOrgLongTxn`
//! message, the 25 concurrent long requests (waited out). Every answer
//! carries `Sforce-Limit-Info: api-usage=USED/LIMIT`, which the run reports.

mod bulk;
mod collections;
mod csv;

use std::collections::BTreeMap;
use std::time::SystemTime;

use secrecy::SecretString;
use serde_json::Value;

use crate::catalog::salesforce::{custom_field_problem, default_audience_field};
use crate::plan::SettingPlan;

use super::super::config::Config;
use super::super::vendor::{
    Auth, BulkJobs, ListRef, Member, Op, Outcome, Token, Vendor, issued_token, secret, token_form,
};
use super::super::wire::{WireRequest, WireResponse};

/// The REST API version of every request.
pub const API_VERSION: &str = "v62.0";

/// The catalog's identity column: the record Id on the wire.
const SALESFORCE_ID: &str = "salesforceId";

/// The value of an audience's field while a member is in the audience.
pub const ACTIVE: &str = "active";

/// `bulk_threshold` when unset: Salesforce's advice is Bulk API 2.0 above
/// about 2,000 records.
const DEFAULT_BULK_THRESHOLD: usize = 2_000;

/// Salesforce for one destination.
#[derive(Debug)]
pub struct Salesforce {
    destination: String,
    base: String,
    client_id: SecretString,
    client_secret: SecretString,
    /// `Contact` or `Lead`.
    object: &'static str,
    /// The field upserts match on (`Id`, or an External ID field).
    external_id: String,
    /// `audience_fields` as written; other audiences take the default name.
    audience_fields: BTreeMap<String, String>,
    bulk_threshold: usize,
}

impl Salesforce {
    pub fn new(config: &Config) -> Result<Salesforce, String> {
        let object = match config.text("object") {
            Some("contact") => "Contact",
            Some("lead") => "Lead",
            other => {
                return Err(format!(
                    "destination `{}`: `object` must be `contact` or `lead`, not {other:?}",
                    config.name
                ));
            }
        };
        Ok(Salesforce {
            destination: config.name.clone(),
            base: base_url(config)?,
            client_id: config.secret("client_id")?.clone(),
            client_secret: config.secret("client_secret")?.clone(),
            object,
            external_id: config.text("external_id").unwrap_or("Id").to_string(),
            audience_fields: audience_fields(config)?,
            bulk_threshold: bulk_threshold(config)?,
        })
    }

    fn api(&self, path: &str) -> String {
        format!("{}/services/data/{API_VERSION}{path}", self.base)
    }

    /// The custom field that holds `audience`'s status.
    fn audience_field(&self, audience: &str) -> Result<String, String> {
        let field = self
            .audience_fields
            .get(audience)
            .cloned()
            .unwrap_or_else(|| default_audience_field(audience));
        match custom_field_problem(&field) {
            None => Ok(field),
            Some(problem) => Err(format!(
                "destination `{}`: the field of audience `{audience}` is not a custom field name: {problem}",
                self.destination
            )),
        }
    }

    /// The value a member is matched on, as text.
    fn match_key(&self, member: &Member) -> Result<String, String> {
        let column = self.match_column();
        let key = member.field(column).and_then(|v| match v {
            Value::String(s) => Some(s.trim().to_string()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        });
        match key {
            Some(key) if !key.is_empty() => Ok(key),
            _ => Err(format!(
                "member `{}` has no `{column}`: upserts to `{}` match on `{}`",
                member.key, self.destination, self.external_id
            )),
        }
    }

    /// The mapped column that holds the match key.
    fn match_column(&self) -> &str {
        if self.external_id == "Id" {
            SALESFORCE_ID
        } else {
            &self.external_id
        }
    }

    /// What one record of `op` sets, as (field API name, value): a join
    /// sets the mapped fields (a column with no value is left out, so the
    /// record keeps what it has) and the audience field to `active`; a
    /// leave sets only the match key and clears the audience field
    /// (`Value::Null`). The `salesforceId` column is the record's `Id`,
    /// sent only when upserts match on it (Salesforce does not take an Id
    /// in an upsert by another field).
    fn record(
        &self,
        audience_field: &str,
        op: Op,
        member: &Member,
    ) -> Result<Vec<(String, Value)>, String> {
        let key = self.match_key(member)?;
        let mut fields = vec![(self.external_id.clone(), Value::String(key))];
        if op == Op::Remove {
            fields.push((audience_field.to_string(), Value::Null));
            return Ok(fields);
        }
        for (column, value) in &member.fields {
            if column == self.match_column() || column == SALESFORCE_ID || value.is_null() {
                continue;
            }
            fields.push((column.clone(), value.clone()));
        }
        fields.push((audience_field.to_string(), Value::String(ACTIVE.into())));
        Ok(fields)
    }
}

impl Vendor for Salesforce {
    fn kind(&self) -> &'static str {
        "salesforce"
    }

    fn auth(&self) -> Auth {
        Auth::Fetched
    }

    /// OAuth 2.0 client credentials, on the My Domain host: the API calls
    /// go there too, since it is the `instance_url` Salesforce answers for
    /// a My Domain org.
    fn token_request(&self, _now: SystemTime) -> Option<WireRequest> {
        Some(token_form(
            format!("{}/services/oauth2/token", self.base),
            &[
                ("grant_type", "client_credentials"),
                ("client_id", secret(&self.client_id)),
                ("client_secret", secret(&self.client_secret)),
            ],
        ))
    }

    fn parse_token(&self, response: &WireResponse) -> Result<Token, String> {
        issued_token(response, "Salesforce", &self.destination)
    }

    fn add_ops(&self) -> &'static [Op] {
        &[Op::Upsert]
    }

    fn has_lists(&self) -> bool {
        false
    }

    fn encode(
        &self,
        _list: Option<&ListRef>,
        _op: Op,
        _members: &[Member],
    ) -> Result<WireRequest, String> {
        Err("a Salesforce upsert names its audience: the core calls encode_for".into())
    }

    fn encode_for(
        &self,
        _activation: &str,
        audience: &str,
        _list: Option<&ListRef>,
        op: Op,
        members: &[Member],
    ) -> Result<WireRequest, String> {
        let field = self.audience_field(audience)?;
        collections::upsert_request(self, &field, op, members)
    }

    fn classify(&self, _op: Op, members: &[Member], response: &WireResponse) -> Outcome {
        if (200..300).contains(&response.status) {
            // Bulk job steps carry no members; their bodies go to the
            // bulk parsers.
            if members.is_empty() {
                return Outcome::Accepted;
            }
            return collections::classify_records(members, &response.json());
        }
        classify_error(response)
    }

    fn bulk(&self) -> Option<&dyn BulkJobs> {
        Some(self)
    }

    fn api_usage(&self, response: &WireResponse) -> Option<(u64, u64)> {
        api_usage(response.header("sforce-limit-info")?)
    }
}

/// `https://{domain}`, or the destination's `endpoint`.
fn base_url(config: &Config) -> Result<String, String> {
    if config.endpoint.is_some() {
        return Ok(config.base_url(""));
    }
    let domain = config.require("domain")?;
    let host = domain
        .trim()
        .trim_start_matches("https://")
        .trim_end_matches('/');
    let well_formed = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    if !well_formed {
        return Err(format!(
            "destination `{}`: `domain` {domain:?} is not a My Domain host (like acme.my.salesforce.com)",
            config.name
        ));
    }
    Ok(config.base_url(&format!("https://{host}")))
}

/// `audience_fields = { AUDIENCE = "Field__c" }`.
fn audience_fields(config: &Config) -> Result<BTreeMap<String, String>, String> {
    match config.settings.get("audience_fields") {
        None => Ok(BTreeMap::new()),
        Some(SettingPlan::Table(fields)) => Ok(fields.clone()),
        Some(_) => Err(format!(
            "destination `{}`: `audience_fields` is not a table {{ AUDIENCE = \"Field__c\" }}",
            config.name
        )),
    }
}

fn bulk_threshold(config: &Config) -> Result<usize, String> {
    match config.settings.get("bulk_threshold") {
        None => Ok(DEFAULT_BULK_THRESHOLD),
        Some(SettingPlan::Integer(n)) if *n >= 1 => Ok(*n as usize),
        Some(_) => Err(format!(
            "destination `{}`: `bulk_threshold` must be a whole number of at least 1",
            config.name
        )),
    }
}

/// `api-usage=USED/LIMIT` of a `Sforce-Limit-Info` header (which may list
/// other usages too, comma separated).
fn api_usage(header: &str) -> Option<(u64, u64)> {
    header.split(',').find_map(|part| {
        let (used, limit) = part.trim().strip_prefix("api-usage=")?.split_once('/')?;
        Some((used.trim().parse().ok()?, limit.trim().parse().ok()?))
    })
}

/// The first error of a Salesforce error body: REST and Bulk API 2.0
/// answer `[{"errorCode", "message"}]`, OAuth `{"error", "error_description"}`.
fn first_error(response: &WireResponse) -> (String, String) {
    let body = response.json();
    let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(str::to_string);
    if let Some(first) = body.as_array().and_then(|a| a.first())
        && let Some(code) = text(first, "errorCode")
    {
        return (code, text(first, "message").unwrap_or_default());
    }
    if let Some(code) = text(&body, "error") {
        return (code, text(&body, "error_description").unwrap_or_default());
    }
    let snippet: String = String::from_utf8_lossy(&response.body)
        .chars()
        .take(200)
        .collect();
    (response.status.to_string(), snippet)
}

/// What a non-2xx answer means, by Salesforce's error codes.
fn classify_error(response: &WireResponse) -> Outcome {
    let status = response.status;
    let (code, message) = first_error(response);
    match (status, code.as_str()) {
        (401, _) => Outcome::AuthExpired,
        // The same code for two limits: the 25 concurrent long-running
        // requests (wait and send again) and the 24-hour allocation.
        (_, "REQUEST_LIMIT_EXCEEDED") if message.contains("ConcurrentPerOrgLongTxn") => {
            Outcome::Throttled {
                retry_after: response.retry_after(),
                code,
            }
        }
        (_, "REQUEST_LIMIT_EXCEEDED") => Outcome::QuotaExhausted { code, message },
        (429, _) => Outcome::Throttled {
            retry_after: response.retry_after(),
            code,
        },
        (_, "SERVER_UNAVAILABLE" | "UNABLE_TO_LOCK_ROW") | (408 | 500..=599, _) => {
            Outcome::Transient { code, message }
        }
        // The object or a field is not there or not writable by the
        // integration user, or the API is off: no request can succeed.
        (
            _,
            "INVALID_FIELD"
            | "INVALID_TYPE"
            | "NOT_FOUND"
            | "INVALID_FIELD_FOR_INSERT_UPDATE"
            | "INSUFFICIENT_ACCESS"
            | "INSUFFICIENT_ACCESS_OR_READONLY"
            | "API_DISABLED_FOR_ORG"
            | "API_CURRENTLY_DISABLED",
        )
        | (403 | 404, _) => Outcome::Fatal { code, message },
        _ => Outcome::Refused {
            status,
            code,
            message,
        },
    }
}

#[cfg(test)]
mod tests;
