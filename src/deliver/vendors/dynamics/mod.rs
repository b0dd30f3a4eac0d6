//! Microsoft Dynamics 365 (catalog type `dynamics365`), following the
//! published Dataverse Web API and Microsoft Entra ID contracts: Contacts
//! are upserted in OData `$batch` requests, one `PATCH` per member.
//!
//! Membership: each audience has one text column on Contact. A member that
//! joins is upserted with its mapped columns and the audience's column set
//! to `active`; a member that leaves has the column cleared (`null`) by an
//! update that carries `If-Match: *`, so that a removal never creates a
//! Contact (Dataverse answers 404 when there is none: nothing to clear).
//!
//! In: the destination's `environment_url` (or `endpoint`), `tenant_id`,
//! the secrets `client_id` and `client_secret`, the optional
//! `audience_fields` (the column of each audience; default: the audience
//! name as a logical name, `catalog::dataverse::default_column`) and
//! `alternate_key` (the column Contacts are addressed by instead of
//! `contactid`), and the members of one batch. Out: the token request,
//! `$batch` requests, and what their answers mean as [`Outcome`]s.
//!
//! Limits (the catalog's): service protection allows 6,000 requests per user
//! in a sliding 5 minutes and 52 at once; a `$batch` holds at most 1,000
//! operations. Over a limit Dataverse answers 429 with `Retry-After` in
//! seconds, which the core waits out before sending again.

mod address;
pub mod multipart;

use std::collections::BTreeMap;
use std::time::SystemTime;

use secrecy::SecretString;
use serde_json::{Map, Value};

use crate::catalog::dataverse::{default_column, is_logical_name};
use crate::plan::SettingPlan;

use super::super::config::Config;
use super::super::vendor::{
    Auth, ListRef, Member, Op, Outcome, RecordResult, Token, Vendor, issued_token, secret,
    token_form,
};
use super::super::wire::{WireRequest, WireResponse, percent_encode};
use address::{PRIMARY_COLUMN, RecordKey};
use multipart::{Operation, PartResponse};

/// Microsoft Entra ID's token service.
const LOGIN: &str = "https://login.microsoftonline.com";
/// The Web API version every URL names.
const API: &str = "api/data/v9.2";
/// What an audience's column holds while the Contact is a member.
pub const ACTIVE: &str = "active";

/// Dynamics 365 for one destination.
#[derive(Debug)]
pub struct Dynamics {
    destination: String,
    /// The environment as the token's scope names it.
    environment_url: String,
    /// Where API requests go: `endpoint` when set, else the environment.
    api_base: String,
    /// Where token requests go: `endpoint` when set, else Entra ID.
    login_base: String,
    tenant_id: SecretString,
    client_id: SecretString,
    client_secret: SecretString,
    audience_fields: BTreeMap<String, String>,
    key: RecordKey,
}

impl Dynamics {
    pub fn new(config: &Config) -> Result<Dynamics, String> {
        let environment_url = environment_url(config)?;
        let audience_fields = match config.settings.get("audience_fields") {
            None => BTreeMap::new(),
            Some(SettingPlan::Table(fields)) => fields.clone(),
            Some(_) => {
                return Err(format!(
                    "destination `{}`: `audience_fields` is not a table of audience = \"column\"",
                    config.name
                ));
            }
        };
        let key = match config.text("alternate_key") {
            None => RecordKey::Primary,
            Some(column) if is_logical_name(column) => RecordKey::Alternate(column.to_string()),
            Some(column) => {
                return Err(format!(
                    "destination `{}`: `alternate_key` {column:?} is not a Dataverse logical name",
                    config.name
                ));
            }
        };
        Ok(Dynamics {
            destination: config.name.clone(),
            api_base: config.base_url(&environment_url),
            login_base: config.base_url(LOGIN),
            environment_url,
            tenant_id: match config.text("tenant_id") {
                Some(text) => SecretString::from(text.to_string()),
                None => config.secret("tenant_id")?.clone(),
            },
            client_id: config.secret("client_id")?.clone(),
            client_secret: config.secret("client_secret")?.clone(),
            audience_fields,
            key,
        })
    }

    /// The column an audience's status is written to.
    fn column(&self, audience: &str) -> Result<String, String> {
        let column = self
            .audience_fields
            .get(audience)
            .cloned()
            .unwrap_or_else(|| default_column(audience));
        if !is_logical_name(&column) {
            return Err(format!(
                "destination `{}`: the column of audience `{audience}`, {column:?}, is not a Dataverse logical name; set it in `audience_fields`",
                self.destination
            ));
        }
        Ok(column)
    }

    /// One `PATCH` of a member: an upsert that joins, or an update that
    /// clears and never creates.
    fn operation(&self, column: &str, op: Op, member: &Member) -> Result<Operation, String> {
        let path = self.key.path(member)?;
        let mut headers = vec![("Content-Type".to_string(), "application/json".to_string())];
        let mut body = Map::new();
        match op {
            Op::Upsert | Op::Add => {
                // The key is in the URL; `contactId` is the catalog's name
                // of `contactid`, never a column to write.
                for (name, value) in &member.fields {
                    if name != self.key.column() && name != PRIMARY_COLUMN {
                        body.insert(name.clone(), value.clone());
                    }
                }
                body.insert(column.to_string(), Value::String(ACTIVE.into()));
            }
            Op::Remove => {
                headers.push(("If-Match".to_string(), "*".to_string()));
                body.insert(column.to_string(), Value::Null);
            }
        }
        Ok(Operation {
            method: "PATCH",
            url: format!("{}/{API}/{path}", self.api_base),
            headers,
            body: serde_json::to_vec(&Value::Object(body)).expect("JSON values serialise"),
        })
    }
}

impl Vendor for Dynamics {
    fn kind(&self) -> &'static str {
        "dynamics365"
    }

    fn auth(&self) -> Auth {
        Auth::Fetched
    }

    fn token_request(&self, _now: SystemTime) -> Option<WireRequest> {
        let scope = format!("{}/.default", self.environment_url);
        let url = format!(
            "{}/{}/oauth2/v2.0/token",
            self.login_base,
            percent_encode(secret(&self.tenant_id))
        );
        Some(token_form(
            url,
            &[
                ("client_id", secret(&self.client_id)),
                ("client_secret", secret(&self.client_secret)),
                ("grant_type", "client_credentials"),
                ("scope", &scope),
            ],
        ))
    }

    fn parse_token(&self, response: &WireResponse) -> Result<Token, String> {
        issued_token(response, "Microsoft Entra ID", &self.destination)
    }

    fn add_ops(&self) -> &'static [Op] {
        &[Op::Upsert]
    }

    fn has_lists(&self) -> bool {
        false
    }

    fn placeholder_id(&self, member: &Member) -> String {
        format!("<contact of {}>", member.key)
    }

    fn encode(
        &self,
        list: Option<&ListRef>,
        op: Op,
        members: &[Member],
    ) -> Result<WireRequest, String> {
        let _ = (list, op, members);
        Err("a Dynamics 365 request writes its audience's column: requests are built by `encode_for`".into())
    }

    fn encode_for(
        &self,
        _activation: &str,
        audience: &str,
        _list: Option<&ListRef>,
        op: Op,
        members: &[Member],
    ) -> Result<WireRequest, String> {
        if members.is_empty() {
            return Err("a $batch request needs at least one member".into());
        }
        let column = self.column(audience)?;
        let operations = members
            .iter()
            .map(|m| self.operation(&column, op, m))
            .collect::<Result<Vec<_>, _>>()?;
        let encoded = multipart::encode(&operations);
        let mut request = WireRequest::new("POST", format!("{}/{API}/$batch", self.api_base))
            .header("Content-Type", encoded.content_type())
            .header("OData-MaxVersion", "4.0")
            .header("OData-Version", "4.0")
            .header("Accept", "application/json")
            // Every operation is tried and answered, not only those before
            // the first failure.
            .header("Prefer", "odata.continue-on-error");
        request.body = encoded.body;
        Ok(request)
    }

    fn classify(&self, op: Op, members: &[Member], response: &WireResponse) -> Outcome {
        if let Some(outcome) = classify_http(response) {
            return outcome;
        }
        if members.is_empty() {
            return Outcome::Accepted;
        }
        let content_type = response.header("content-type").unwrap_or("");
        let parts = match multipart::parse(content_type, &response.body) {
            Ok(parts) => parts,
            Err(message) => {
                return Outcome::Transient {
                    code: "malformed".into(),
                    message: format!("the $batch answer cannot be read: {message}"),
                };
            }
        };
        match in_member_order(parts, members.len()) {
            Ok(parts) => Outcome::Records(parts.iter().map(|p| record_result(op, p)).collect()),
            Err(message) => Outcome::Transient {
                code: "malformed".into(),
                message,
            },
        }
    }
}

/// `environment_url`: an https URL, without a trailing slash.
fn environment_url(config: &Config) -> Result<String, String> {
    let url = match config.text("environment_url") {
        Some(url) => url.trim().trim_end_matches('/').to_string(),
        None => {
            use secrecy::ExposeSecret;
            let url = config.secret("environment_url")?.expose_secret();
            url.trim().trim_end_matches('/').to_string()
        }
    };
    let host = url.strip_prefix("https://").unwrap_or("");
    if host.is_empty() || host.contains(['/', '?', '#', ' ']) {
        return Err(format!(
            "destination `{}`: `environment_url` must be the environment's https URL, like https://ORG.crm.dynamics.com",
            config.name
        ));
    }
    Ok(url)
}

/// Outcomes decided by the status of the `$batch` request itself; `None`
/// for a 2xx, whose parts say what happened.
fn classify_http(response: &WireResponse) -> Option<Outcome> {
    let status = response.status;
    let (code, message) = odata_error(status, &response.body);
    match status {
        200..=299 => None,
        401 => Some(Outcome::AuthExpired),
        429 => Some(Outcome::Throttled {
            retry_after: response.retry_after(),
            code,
        }),
        408 | 500..=599 => Some(Outcome::Transient { code, message }),
        // The application user lacks a role or the environment refuses it:
        // nothing sent there can succeed until an administrator acts.
        403 => Some(Outcome::Fatal { code, message }),
        _ => Some(Outcome::Refused {
            status,
            code,
            message,
        }),
    }
}

/// The parts in the order of the members: by `Content-ID` when the answer
/// carries them (part `i` answers operation `i`), else by position.
fn in_member_order(parts: Vec<PartResponse>, members: usize) -> Result<Vec<PartResponse>, String> {
    if parts.len() != members {
        return Err(format!(
            "the $batch answer has {} responses for {members} operations",
            parts.len()
        ));
    }
    if parts.iter().any(|p| p.content_id.is_none()) {
        return Ok(parts);
    }
    let mut slots: Vec<Option<PartResponse>> = vec![None; members];
    for part in parts {
        let id = part.content_id.as_deref().unwrap_or_default();
        let slot = id
            .trim()
            .parse::<usize>()
            .ok()
            .and_then(|n| n.checked_sub(1))
            .and_then(|i| slots.get_mut(i))
            .filter(|s| s.is_none())
            .ok_or_else(|| {
                format!("the $batch answer has an unknown or repeated Content-ID {id:?}")
            })?;
        *slot = Some(part);
    }
    Ok(slots.into_iter().flatten().collect())
}

/// What one operation's response means for its member.
fn record_result(op: Op, part: &PartResponse) -> RecordResult {
    let (code, message) = odata_error(part.status, &part.body);
    match part.status {
        200..=299 => RecordResult::Accepted { remote_id: None },
        // A removal carries `If-Match: *`: there is no Contact, so nothing
        // to clear.
        404 if op == Op::Remove => RecordResult::Accepted { remote_id: None },
        401 | 408 | 429 | 500..=599 => RecordResult::Retry { code, message },
        _ => RecordResult::Rejected { code, message },
    }
}

/// The code and message of an OData error body
/// (`{"error":{"code","message"}}`), else the status and the body's start.
fn odata_error(status: u16, body: &[u8]) -> (String, String) {
    let json: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let error = &json["error"];
    let code = error["code"]
        .as_str()
        .filter(|c| !c.is_empty())
        .map_or_else(|| status.to_string(), str::to_string);
    let message = error["message"].as_str().map_or_else(
        || String::from_utf8_lossy(body).chars().take(200).collect(),
        str::to_string,
    );
    (code, message)
}

#[cfg(test)]
mod tests;
