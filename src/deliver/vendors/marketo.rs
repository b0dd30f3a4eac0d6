//! Adobe Marketo Engage (catalog type `marketo_engage`), following Adobe's
//! published REST API: people are upserted as leads by email, and each
//! audience is one static list whose members are lead ids.
//!
//! In: the destination's `munchkin_id` (or `endpoint`), the secrets
//! `client_id` and `client_secret`, the optional settings `folder` (the id
//! of the folder accord creates static lists in) and `partition` (the lead
//! partition new people are created in), and the members of one batch.
//! Out: the wire requests for the identity, lead, list-membership and
//! static-list endpoints, and what their responses mean as [`Outcome`]s.
//!
//! Marketo answers almost everything with HTTP 200: a request-level failure
//! is `"success": false` with an `errors` array, a record-level one is a
//! `skipped` status with `reasons`. Classification therefore reads the body
//! first and the HTTP status only for the few transport-level answers (413,
//! 414, 5xx).
//!
//! Limits (the catalog's): 100 calls in any 20 s, 10 in flight, 50,000 a day,
//! 300 records a call, 1 MB a body. Over the window Marketo answers 606, over
//! the concurrency 615, with no `Retry-After`; Adobe's guidance is to wait
//! for the 20 s window to pass before calling again, which the core's
//! backoff and sliding-window throttle do. 607 means the day's quota is
//! spent; it resets at midnight US Central time.

use std::time::SystemTime;

use secrecy::SecretString;
use serde_json::{Map, Value, json};

use crate::plan::SettingPlan;

use super::super::config::Config;
use super::super::vendor::{
    Auth, ListRef, Member, Op, Outcome, RecordResult, Token, Vendor, oauth_token, secret,
};
use super::super::wire::{WireRequest, WireResponse, percent_encode};

/// The lookup field of every upsert: the catalog's identity for Marketo.
const EMAIL: &str = "email";

/// Marketo Engage for one destination.
#[derive(Debug)]
pub struct Marketo {
    destination: String,
    base: String,
    client_id: SecretString,
    client_secret: SecretString,
    /// Where new static lists go; `None`: accord cannot create lists.
    folder: Option<i64>,
    /// `partitionName` of upserts; `None`: Marketo's default partition.
    partition: Option<String>,
}

impl Marketo {
    pub fn new(config: &Config) -> Result<Marketo, String> {
        Ok(Marketo {
            destination: config.name.clone(),
            base: base_url(config)?,
            client_id: config.secret("client_id")?.clone(),
            client_secret: config.secret("client_secret")?.clone(),
            folder: folder_setting(config)?,
            partition: config.text("partition").map(str::to_string),
        })
    }

    fn upsert_request(&self, members: &[Member]) -> Result<WireRequest, String> {
        let input = members
            .iter()
            .map(lead_input)
            .collect::<Result<Vec<_>, _>>()?;
        let mut body = json!({
            "action": "createOrUpdate",
            "lookupField": EMAIL,
            "input": input,
        });
        if let Some(partition) = &self.partition {
            body["partitionName"] = Value::String(partition.clone());
        }
        Ok(WireRequest::new("POST", format!("{}/rest/v1/leads.json", self.base)).json(&body))
    }

    fn membership_request(
        &self,
        list: Option<&ListRef>,
        op: Op,
        members: &[Member],
    ) -> Result<WireRequest, String> {
        let list = list.ok_or_else(|| format!("Marketo {} needs a static list", op.as_str()))?;
        let input = members
            .iter()
            .map(|m| lead_id_of(m).map(|id| json!({ "id": id })))
            .collect::<Result<Vec<_>, _>>()?;
        let method = if op == Op::Remove { "DELETE" } else { "POST" };
        let url = format!(
            "{}/rest/v1/lists/{}/leads.json",
            self.base,
            path_segment(&list.id)
        );
        Ok(WireRequest::new(method, url).json(&json!({ "input": input })))
    }
}

impl Vendor for Marketo {
    fn kind(&self) -> &'static str {
        "marketo_engage"
    }

    fn auth(&self) -> Auth {
        Auth::Fetched
    }

    fn token_request(&self, _now: SystemTime) -> Option<WireRequest> {
        let url = format!(
            "{}/identity/oauth/token?grant_type=client_credentials&client_id={}&client_secret={}",
            self.base,
            percent_encode(secret(&self.client_id)),
            percent_encode(secret(&self.client_secret)),
        );
        Some(WireRequest::new("GET", url))
    }

    fn parse_token(&self, response: &WireResponse) -> Result<Token, String> {
        oauth_token(response).ok_or_else(|| {
            format!(
                "Marketo did not issue a token for destination `{}` (HTTP {}): {}",
                self.destination,
                response.status,
                token_error(&response.json())
            )
        })
    }

    fn add_ops(&self) -> &'static [Op] {
        &[Op::Upsert, Op::Add]
    }

    fn find_list_request(&self, name: &str) -> Option<WireRequest> {
        let url = format!(
            "{}/rest/asset/v1/staticList/byName.json?name={}",
            self.base,
            percent_encode(name)
        );
        Some(WireRequest::new("GET", url))
    }

    fn parse_found_list(
        &self,
        name: &str,
        response: &WireResponse,
    ) -> Result<Option<String>, String> {
        let body = asset_body(response, "find the static list")?;
        if let Some((code, message)) = first_error(&body) {
            // 702: "No data found for given search criteria".
            return match code.as_str() {
                "702" | "610" => self.not_found(),
                _ => Err(format!(
                    "Marketo could not look up the static list `{name}`: {code} {message}"
                )),
            };
        }
        let found = body
            .get("result")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|list| list.get("name").and_then(Value::as_str) == Some(name));
        match found {
            Some(list) => asset_id(list, "static list").map(Some),
            // Not there, and there is nowhere to create it: say what to set
            // rather than fail later without a reason.
            None => self.not_found(),
        }
    }

    fn create_list_request(&self, name: &str) -> Option<WireRequest> {
        let folder = self.folder?;
        let form = [
            (
                "folder",
                json!({ "id": folder, "type": "Folder" }).to_string(),
            ),
            ("name", name.to_string()),
            (
                "description",
                "Audience membership kept by accord; changes here are overwritten.".to_string(),
            ),
        ];
        let body = form
            .iter()
            .map(|(key, value)| format!("{key}={}", percent_encode(value)))
            .collect::<Vec<_>>()
            .join("&");
        let mut request = WireRequest::new(
            "POST",
            format!("{}/rest/asset/v1/staticLists.json", self.base),
        )
        .header("Content-Type", "application/x-www-form-urlencoded");
        request.body = body.into_bytes();
        Some(request)
    }

    fn parse_created_list(&self, response: &WireResponse) -> Result<String, String> {
        let body = asset_body(response, "create the static list")?;
        if let Some((code, message)) = first_error(&body) {
            return Err(format!(
                "Marketo did not create the static list: {code} {message}"
            ));
        }
        let created = body
            .get("result")
            .and_then(Value::as_array)
            .and_then(|r| r.first())
            .ok_or("Marketo answered the static list creation without a result")?;
        asset_id(created, "static list")
    }

    fn placeholder_id(&self, member: &Member) -> String {
        let email = member
            .field(EMAIL)
            .and_then(Value::as_str)
            .unwrap_or(&member.key);
        format!("<lead id of {email}>")
    }

    fn encode(
        &self,
        list: Option<&ListRef>,
        op: Op,
        members: &[Member],
    ) -> Result<WireRequest, String> {
        if members.is_empty() {
            return Err("a Marketo request needs at least one member".into());
        }
        match op {
            Op::Upsert => self.upsert_request(members),
            Op::Add | Op::Remove => self.membership_request(list, op, members),
        }
    }

    fn classify(&self, op: Op, members: &[Member], response: &WireResponse) -> Outcome {
        if let Some(outcome) = classify_http(response) {
            return outcome;
        }
        let body = response.json();
        if !body.is_object() {
            return Outcome::Transient {
                code: "malformed".into(),
                message: "Marketo answered with a body that is not a JSON object".into(),
            };
        }
        if let Some((code, message)) = first_error(&body) {
            return classify_error(response.status, code, message);
        }
        // List lookups and creations carry no members; their bodies go to
        // the list parsers.
        if members.is_empty() {
            return Outcome::Accepted;
        }
        classify_records(op, members, &body)
    }
}

impl Marketo {
    /// A list that is not there: the core creates it next, unless there is
    /// no `folder` to create it in, which is then said here, with what to set.
    fn not_found(&self) -> Result<Option<String>, String> {
        match self.folder {
            Some(_) => Ok(None),
            None => Err(self.no_folder_message()),
        }
    }

    fn no_folder_message(&self) -> String {
        format!(
            "destination `{}` has no `folder`: set `folder` to the id of the Marketo folder \
             accord creates static lists in, or pin each audience's list in `lists`",
            self.destination
        )
    }
}

/// `https://{munchkin_id}.mktorest.com`, or the destination's `endpoint`.
pub(super) fn base_url(config: &Config) -> Result<String, String> {
    if config.endpoint.is_some() {
        return Ok(config.base_url(""));
    }
    let munchkin = config.require("munchkin_id")?;
    let well_formed = !munchkin.is_empty()
        && munchkin
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-');
    if !well_formed {
        return Err(format!(
            "destination `{}`: `munchkin_id` {munchkin:?} is not a Munchkin id (like 123-ABC-456)",
            config.name
        ));
    }
    Ok(config.base_url(&format!("https://{munchkin}.mktorest.com")))
}

/// The optional `folder` setting: a folder id, as an integer or its digits.
fn folder_setting(config: &Config) -> Result<Option<i64>, String> {
    let parsed = match config.settings.get("folder") {
        None => return Ok(None),
        Some(SettingPlan::Integer(id)) => Some(*id),
        Some(SettingPlan::Text(text)) => text.trim().parse::<i64>().ok(),
        Some(_) => None,
    };
    match parsed {
        Some(id) if id > 0 => Ok(Some(id)),
        _ => Err(format!(
            "destination `{}`: `folder` must be the id of a Marketo folder (a positive integer)",
            config.name
        )),
    }
}

/// One lead of an upsert: every mapped column, with the email it is found by.
fn lead_input(member: &Member) -> Result<Value, String> {
    let has_email = member
        .field(EMAIL)
        .and_then(Value::as_str)
        .is_some_and(|e| !e.is_empty());
    if !has_email {
        return Err(format!(
            "member `{}` has no email: Marketo finds leads by email, so map `email`",
            member.key
        ));
    }
    let fields: Map<String, Value> = member.fields.iter().cloned().collect();
    Ok(Value::Object(fields))
}

/// The lead id a list operation carries: a number; a dry run's placeholder
/// stays text so the request shows what a live run would learn.
fn lead_id_of(member: &Member) -> Result<Value, String> {
    let id = member.remote_id.as_deref().ok_or_else(|| {
        format!(
            "member `{}` has no Marketo lead id: it must be upserted before list changes",
            member.key
        )
    })?;
    if let Ok(number) = id.parse::<u64>() {
        return Ok(json!(number));
    }
    if id.starts_with('<') && id.ends_with('>') {
        return Ok(Value::String(id.to_string()));
    }
    Err(format!(
        "member `{}`: {id:?} is not a Marketo lead id",
        member.key
    ))
}

/// Outcomes decided by the HTTP status alone; `None` for a 2xx, whose body
/// says what happened.
fn classify_http(response: &WireResponse) -> Option<Outcome> {
    let status = response.status;
    let message = || {
        String::from_utf8_lossy(&response.body)
            .chars()
            .take(200)
            .collect::<String>()
    };
    match status {
        200..=299 => None,
        401 => Some(Outcome::AuthExpired),
        429 => Some(Outcome::Throttled {
            retry_after: response.retry_after(),
            code: "429".into(),
        }),
        500..=599 => Some(Outcome::Transient {
            code: status.to_string(),
            message: message(),
        }),
        _ => Some(Outcome::Refused {
            status,
            code: status.to_string(),
            message: message(),
        }),
    }
}

/// A request-level error (`"success": false`), by Marketo's error codes.
fn classify_error(status: u16, code: String, message: String) -> Outcome {
    match code.as_str() {
        // Empty, invalid and expired access tokens.
        "600" | "601" | "602" => Outcome::AuthExpired,
        // 606: over 100 calls in 20 s; 615: over 10 calls in flight.
        "606" => Outcome::Throttled {
            retry_after: None,
            code,
        },
        "615" => Outcome::Busy { code },
        "607" => Outcome::QuotaExhausted { code, message },
        // Timed out, temporarily unavailable, system error, transient
        // error, lock wait timeout: Marketo's own advice is to retry.
        "604" | "608" | "611" | "713" | "719" => Outcome::Transient { code, message },
        // Access denied, unsupported method, resource not found, invalid
        // subscription: no request to this destination can succeed.
        "603" | "605" | "610" | "614" | "616" => Outcome::Fatal { code, message },
        // 1013: the static list does not exist (deleted in Marketo).
        "1013" => Outcome::Fatal {
            code,
            message: format!("{message}: the audience's static list is gone; unpin or recreate it"),
        },
        _ => Outcome::Refused {
            status,
            code,
            message,
        },
    }
}

/// Per-record results of a successful call, in the order of `members`.
fn classify_records(op: Op, members: &[Member], body: &Value) -> Outcome {
    let results = body.get("result").and_then(Value::as_array);
    let results = match results {
        Some(r) if r.len() == members.len() => r,
        _ => {
            return Outcome::Transient {
                code: "malformed".into(),
                message: format!(
                    "Marketo answered {} results for {} records",
                    results.map_or(0, Vec::len),
                    members.len()
                ),
            };
        }
    };
    Outcome::Records(results.iter().map(|r| record_result(op, r)).collect())
}

fn record_result(op: Op, result: &Value) -> RecordResult {
    let status = result.get("status").and_then(Value::as_str).unwrap_or("");
    match (op, status) {
        (Op::Upsert, "created" | "updated") => match result.get("id").and_then(id_text) {
            Some(id) => RecordResult::Accepted {
                remote_id: Some(id),
            },
            None => RecordResult::Retry {
                code: "malformed".into(),
                message: format!("Marketo {status} a lead without returning its id"),
            },
        },
        (Op::Add, "added") | (Op::Remove, "removed") => RecordResult::Accepted { remote_id: None },
        _ => {
            let (code, message) = first_reason(result, status);
            // Removing a lead that is gone, or not in the list, leaves the
            // list as accord wants it.
            if op == Op::Remove && (code == "1004" || code == "1015") {
                RecordResult::Accepted { remote_id: None }
            } else {
                RecordResult::Rejected { code, message }
            }
        }
    }
}

/// The first `reasons` entry of a record, or the status itself.
fn first_reason(result: &Value, status: &str) -> (String, String) {
    result
        .get("reasons")
        .and_then(Value::as_array)
        .and_then(|r| r.first())
        .map(code_and_message)
        .unwrap_or_else(|| {
            (
                status.to_string(),
                format!("Marketo answered status {status:?}"),
            )
        })
}

/// The first entry of a response's `errors`, when `success` is false or
/// errors are present.
pub(super) fn first_error(body: &Value) -> Option<(String, String)> {
    let first = body
        .get("errors")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
        .map(code_and_message);
    let failed = body.get("success").and_then(Value::as_bool) == Some(false);
    match first {
        Some(error) => Some(error),
        None if failed => Some(("unknown".into(), "Marketo answered success: false".into())),
        None => None,
    }
}

fn code_and_message(entry: &Value) -> (String, String) {
    let code = entry.get("code").map(|c| match c {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    });
    let message = entry.get("message").and_then(Value::as_str).unwrap_or("");
    (
        code.unwrap_or_else(|| "unknown".into()),
        message.to_string(),
    )
}

/// The body of an asset call (static lists), which must be a JSON object.
fn asset_body(response: &WireResponse, what: &str) -> Result<Value, String> {
    let body = response.json();
    if response.status != 200 || !body.is_object() {
        return Err(format!(
            "Marketo could not {what}: HTTP {} with no JSON answer",
            response.status
        ));
    }
    Ok(body)
}

fn asset_id(asset: &Value, what: &str) -> Result<String, String> {
    asset
        .get("id")
        .and_then(id_text)
        .ok_or_else(|| format!("Marketo returned a {what} without an id"))
}

/// A Marketo id as text (the API gives numbers).
fn id_text(id: &Value) -> Option<String> {
    match id {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

/// What the identity endpoint said when it issued no token: its OAuth
/// `error` and `error_description`, never the body itself.
fn token_error(body: &Value) -> String {
    let field = |key: &str| body.get(key).and_then(Value::as_str).unwrap_or("");
    match (field("error"), field("error_description")) {
        ("", "") => "no access_token in the answer".into(),
        (error, "") => error.to_string(),
        (error, description) => format!("{error} ({description})"),
    }
}

/// A list id as a path segment: ids are numbers; a dry run's placeholder
/// stays readable (it is never sent); anything else is escaped.
fn path_segment(id: &str) -> String {
    let placeholder = id.starts_with('<') && id.ends_with('>');
    if placeholder || id.chars().all(|c| c.is_ascii_digit()) {
        id.to_string()
    } else {
        percent_encode(id)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::deliver::config::Limits;
    use std::time::Duration;

    fn config(settings: &[(&str, SettingPlan)]) -> Config {
        let secrets = [("client_id", "id-1"), ("client_secret", "s3cr&t=x")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), SecretString::from(v.to_string())))
            .collect();
        Config {
            name: "marketo".into(),
            kind: "marketo_engage".into(),
            endpoint: None,
            settings: settings
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            secrets,
            limits: Limits {
                batch_size: 300,
                max_bytes: Some(1_048_576),
                window: Some((100, Duration::from_secs(20))),
                concurrent: 10,
                daily: Some(50_000),
            },
            lists: BTreeMap::new(),
            list_prefix: "accord_".into(),
            dry_run: false,
        }
    }

    fn marketo() -> Marketo {
        Marketo::new(&config(&[
            ("munchkin_id", SettingPlan::Text("123-ABC-456".into())),
            ("folder", SettingPlan::Integer(1034)),
        ]))
        .unwrap()
    }

    fn member(email: &str, id: Option<&str>) -> Member {
        Member {
            key: format!("p:{email}"),
            fields: vec![
                ("email".into(), json!(email)),
                ("firstName".into(), json!("Ada")),
            ],
            remote_id: id.map(str::to_string),
        }
    }

    fn list() -> ListRef {
        ListRef {
            audience: "B2B_Intent_Surging".into(),
            name: "accord_B2B_Intent_Surging".into(),
            id: "1021".into(),
        }
    }

    fn answer(status: u16, body: &str) -> WireResponse {
        WireResponse {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.as_bytes().to_vec(),
        }
    }

    fn body_of(request: &WireRequest) -> Value {
        serde_json::from_slice(&request.body).unwrap()
    }

    fn error_body(code: &str, message: &str) -> String {
        format!(
            r#"{{"requestId":"e42b#14272d07d78","success":false,"errors":[{{"code":"{code}","message":"{message}"}}]}}"#
        )
    }

    #[test]
    fn the_base_url_is_the_munchkin_host_unless_an_endpoint_replaces_it() {
        let m = marketo();
        let upsert = m
            .encode(None, Op::Upsert, &[member("a@x.com", None)])
            .unwrap();
        assert_eq!(
            upsert.url,
            "https://123-ABC-456.mktorest.com/rest/v1/leads.json"
        );
        let mut c = config(&[]);
        c.endpoint = Some("http://127.0.0.1:9/".into());
        let m = Marketo::new(&c).unwrap();
        let upsert = m
            .encode(None, Op::Upsert, &[member("a@x.com", None)])
            .unwrap();
        assert_eq!(upsert.url, "http://127.0.0.1:9/rest/v1/leads.json");
    }

    #[test]
    fn bad_settings_are_clear_errors() {
        let no_munchkin = Marketo::new(&config(&[])).unwrap_err();
        assert!(no_munchkin.contains("munchkin_id"), "{no_munchkin}");
        let odd = Marketo::new(&config(&[(
            "munchkin_id",
            SettingPlan::Text("a/b?c".into()),
        )]));
        assert!(odd.unwrap_err().contains("not a Munchkin id"));
        let folder = Marketo::new(&config(&[
            ("munchkin_id", SettingPlan::Text("123-ABC-456".into())),
            ("folder", SettingPlan::Text("Marketing".into())),
        ]));
        assert!(folder.unwrap_err().contains("`folder`"));
        let mut c = config(&[("munchkin_id", SettingPlan::Text("123-ABC-456".into()))]);
        c.secrets.remove("client_secret");
        assert!(Marketo::new(&c).unwrap_err().contains("client_secret"));
    }

    #[test]
    fn the_token_request_encodes_the_credentials_and_debug_hides_them() {
        let m = marketo();
        let request = m.token_request(SystemTime::UNIX_EPOCH).unwrap();
        assert_eq!(request.method, "GET");
        assert_eq!(
            request.url,
            "https://123-ABC-456.mktorest.com/identity/oauth/token?grant_type=client_credentials&client_id=id-1&client_secret=s3cr%26t%3Dx"
        );
        assert!(!format!("{m:?}").contains("s3cr"));
    }

    #[test]
    fn a_token_answer_gives_the_token_and_its_lifetime() {
        let m = marketo();
        let ok = answer(
            200,
            r#"{"access_token":"cdf01657-110d-4155-99a7-f986b2ff13a0:int","token_type":"bearer","expires_in":3599,"scope":"apis@acmeinc.com"}"#,
        );
        let token = m.parse_token(&ok).unwrap();
        assert_eq!(
            secret(&token.value),
            "cdf01657-110d-4155-99a7-f986b2ff13a0:int"
        );
        assert_eq!(token.expires_in, Some(Duration::from_secs(3599)));
        let refused = answer(
            401,
            r#"{"error":"invalid_client","error_description":"Bad client credentials"}"#,
        );
        let error = m.parse_token(&refused).unwrap_err();
        assert!(
            error.contains("invalid_client (Bad client credentials)"),
            "{error}"
        );
        assert!(!error.contains("s3cr"));
    }

    #[test]
    fn an_upsert_carries_the_mapped_fields_by_email() {
        let mut c = config(&[
            ("munchkin_id", SettingPlan::Text("123-ABC-456".into())),
            ("partition", SettingPlan::Text("EMEA".into())),
        ]);
        c.endpoint = None;
        let m = Marketo::new(&c).unwrap();
        let request = m
            .encode(
                None,
                Op::Upsert,
                &[member("a@x.com", None), member("b@x.com", Some("7"))],
            )
            .unwrap();
        assert_eq!(request.method, "POST");
        assert_eq!(
            body_of(&request),
            json!({
                "action": "createOrUpdate",
                "lookupField": "email",
                "partitionName": "EMEA",
                "input": [
                    {"email": "a@x.com", "firstName": "Ada"},
                    {"email": "b@x.com", "firstName": "Ada"},
                ],
            })
        );
        assert!(
            request
                .headers
                .contains(&("Content-Type".into(), "application/json".into()))
        );
    }

    #[test]
    fn an_upsert_without_email_or_members_is_an_error() {
        let m = marketo();
        let mut nameless = member("a@x.com", None);
        nameless.fields.retain(|(c, _)| c != "email");
        let error = m.encode(None, Op::Upsert, &[nameless]).unwrap_err();
        assert!(error.contains("no email"), "{error}");
        assert!(m.encode(None, Op::Upsert, &[]).is_err());
    }

    #[test]
    fn list_changes_carry_lead_ids() {
        let m = marketo();
        let members = [
            member("a@x.com", Some("318594")),
            member("b@x.com", Some("318595")),
        ];
        let add = m.encode(Some(&list()), Op::Add, &members).unwrap();
        assert_eq!(
            (add.method, add.url.as_str()),
            (
                "POST",
                "https://123-ABC-456.mktorest.com/rest/v1/lists/1021/leads.json"
            )
        );
        assert_eq!(
            body_of(&add),
            json!({"input": [{"id": 318594}, {"id": 318595}]})
        );
        let remove = m.encode(Some(&list()), Op::Remove, &members).unwrap();
        assert_eq!(remove.method, "DELETE");
        assert_eq!(remove.url, add.url);
        assert_eq!(body_of(&remove), body_of(&add));
    }

    #[test]
    fn list_changes_without_a_list_or_a_lead_id_are_errors() {
        let m = marketo();
        assert!(
            m.encode(None, Op::Add, &[member("a@x.com", Some("1"))])
                .is_err()
        );
        let error = m
            .encode(Some(&list()), Op::Add, &[member("a@x.com", None)])
            .unwrap_err();
        assert!(error.contains("no Marketo lead id"), "{error}");
        let error = m
            .encode(Some(&list()), Op::Add, &[member("a@x.com", Some("12x"))])
            .unwrap_err();
        assert!(error.contains("not a Marketo lead id"), "{error}");
    }

    #[test]
    fn a_dry_run_shows_placeholders_for_ids_it_cannot_know() {
        let m = marketo();
        let planned = member("a@x.com", None);
        assert_eq!(m.placeholder_id(&planned), "<lead id of a@x.com>");
        let with_placeholder = member("a@x.com", Some("<lead id of a@x.com>"));
        let unknown_list = ListRef {
            id: "<list id of accord_X>".into(),
            ..list()
        };
        let add = m
            .encode(Some(&unknown_list), Op::Add, &[with_placeholder])
            .unwrap();
        assert!(
            add.url
                .ends_with("/rest/v1/lists/<list id of accord_X>/leads.json")
        );
        assert_eq!(
            body_of(&add),
            json!({"input": [{"id": "<lead id of a@x.com>"}]})
        );
    }

    #[test]
    fn upsert_results_map_to_lead_ids_or_reasons_in_input_order() {
        let m = marketo();
        let members = [
            member("a@x.com", None),
            member("b@x.com", None),
            member("c@x.com", None),
        ];
        let body = r#"{"requestId":"e42b#14272d07d78","success":true,"result":[{"id":50,"status":"created"},{"id":51,"status":"updated"},{"status":"skipped","reasons":[{"code":"1006","message":"Field 'b2bTier' not found"}]}]}"#;
        assert_eq!(
            m.classify(Op::Upsert, &members, &answer(200, body)),
            Outcome::Records(vec![
                RecordResult::Accepted {
                    remote_id: Some("50".into())
                },
                RecordResult::Accepted {
                    remote_id: Some("51".into())
                },
                RecordResult::Rejected {
                    code: "1006".into(),
                    message: "Field 'b2bTier' not found".into()
                },
            ])
        );
        let short = r#"{"requestId":"1","success":true,"result":[{"id":50,"status":"created"}]}"#;
        assert!(matches!(
            m.classify(Op::Upsert, &members, &answer(200, short)),
            Outcome::Transient { .. }
        ));
    }

    #[test]
    fn add_results_follow_the_published_example() {
        let m = marketo();
        let members = [
            member("a@x.com", Some("318594")),
            member("b@x.com", Some("318595")),
        ];
        let body = r#"{"requestId":"6860#1706170ba29","result":[{"id":318594,"status":"added"},{"id":318595,"status":"skipped","reasons":[{"code":"1004","message":"Lead not found"}]}],"success":true}"#;
        assert_eq!(
            m.classify(Op::Add, &members, &answer(200, body)),
            Outcome::Records(vec![
                RecordResult::Accepted { remote_id: None },
                RecordResult::Rejected {
                    code: "1004".into(),
                    message: "Lead not found".into()
                },
            ])
        );
    }

    #[test]
    fn removing_a_lead_that_is_gone_or_not_listed_is_accepted() {
        let m = marketo();
        let members = [
            member("a@x.com", Some("318603")),
            member("b@x.com", Some("999999")),
            member("c@x.com", Some("318600")),
            member("d@x.com", Some("318601")),
        ];
        let body = r#"{"requestId":"9e79#17061689ac3","result":[{"id":318603,"status":"removed"},{"id":999999,"status":"skipped","reasons":[{"code":"1004","message":"Lead not found"}]},{"id":318600,"status":"skipped","reasons":[{"code":"1015","message":"Lead not in list"}]},{"id":318601,"status":"skipped","reasons":[{"code":"1003","message":"Invalid data"}]}],"success":true}"#;
        assert_eq!(
            m.classify(Op::Remove, &members, &answer(200, body)),
            Outcome::Records(vec![
                RecordResult::Accepted { remote_id: None },
                RecordResult::Accepted { remote_id: None },
                RecordResult::Accepted { remote_id: None },
                RecordResult::Rejected {
                    code: "1003".into(),
                    message: "Invalid data".into()
                },
            ])
        );
    }

    #[test]
    fn request_level_errors_map_to_outcomes() {
        let m = marketo();
        let members = [member("a@x.com", None)];
        let classify = |code: &str, message: &str| {
            m.classify(
                Op::Upsert,
                &members,
                &answer(200, &error_body(code, message)),
            )
        };
        assert_eq!(
            classify("601", "Access token invalid"),
            Outcome::AuthExpired
        );
        assert_eq!(
            classify("602", "Access token expired"),
            Outcome::AuthExpired
        );
        assert_eq!(
            classify("606", "Max rate limit '100' exceeded with in '20' secs"),
            Outcome::Throttled {
                retry_after: None,
                code: "606".into()
            }
        );
        assert_eq!(
            classify("615", "Concurrent access limit '10' reached"),
            Outcome::Busy { code: "615".into() }
        );
        assert_eq!(
            classify("607", "Daily quota reached"),
            Outcome::QuotaExhausted {
                code: "607".into(),
                message: "Daily quota reached".into()
            }
        );
        for code in ["604", "608", "611", "713"] {
            assert!(matches!(classify(code, "x"), Outcome::Transient { code: c, .. } if c == code));
        }
        assert_eq!(
            classify("1003", "Invalid data"),
            Outcome::Refused {
                status: 200,
                code: "1003".into(),
                message: "Invalid data".into()
            }
        );
        assert!(matches!(
            classify("603", "Access denied"),
            Outcome::Fatal { .. }
        ));
        assert!(matches!(
            classify("1013", "Static list not found"),
            Outcome::Fatal { .. }
        ));
    }

    #[test]
    fn http_level_answers_map_to_outcomes() {
        let m = marketo();
        let members = [member("a@x.com", None)];
        let classify =
            |status: u16, body: &str| m.classify(Op::Upsert, &members, &answer(status, body));
        assert!(
            matches!(classify(502, "Bad Gateway"), Outcome::Transient { code, .. } if code == "502")
        );
        assert!(matches!(classify(503, ""), Outcome::Transient { .. }));
        assert!(matches!(
            classify(413, "Request Entity Too Large"),
            Outcome::Refused { status: 413, .. }
        ));
        assert!(matches!(
            classify(414, ""),
            Outcome::Refused { status: 414, .. }
        ));
        assert!(matches!(classify(200, "<html>"), Outcome::Transient { .. }));
        let mut throttled = answer(429, "");
        throttled.headers.push(("retry-after".into(), "3".into()));
        assert_eq!(
            m.classify(Op::Upsert, &members, &throttled),
            Outcome::Throttled {
                retry_after: Some(Duration::from_secs(3)),
                code: "429".into()
            }
        );
    }

    #[test]
    fn static_lists_are_found_by_name_and_created_in_the_folder() {
        let m = marketo();
        let find = m.find_list_request("accord_B2B Intent").unwrap();
        assert_eq!(
            find.url,
            "https://123-ABC-456.mktorest.com/rest/asset/v1/staticList/byName.json?name=accord_B2B%20Intent"
        );
        let found = r#"{"success":true,"errors":[],"requestId":"28ab#1641fa246b9","result":[{"id":1021,"name":"accord_B2B Intent","createdAt":"2017-07-27T01:38:33Z+0000","updatedAt":"2017-07-27T01:39:26Z+0000","folder":{"id":13,"type":"Folder"},"computedUrl":"https://app-sjqe.marketo.com/#ST1021A1"}]}"#;
        assert_eq!(
            m.parse_found_list("accord_B2B Intent", &answer(200, found)),
            Ok(Some("1021".into()))
        );
        let none = r#"{"success":true,"warnings":["No assets found for the given search criteria."],"errors":[],"requestId":"1"}"#;
        assert_eq!(
            m.parse_found_list("accord_B2B Intent", &answer(200, none)),
            Ok(None)
        );
        assert_eq!(
            m.parse_found_list(
                "x",
                &answer(
                    200,
                    &error_body("702", "No data found for given search criteria")
                )
            ),
            Ok(None)
        );
        assert!(
            m.parse_found_list("x", &answer(200, &error_body("603", "Access denied")))
                .is_err()
        );

        let create = m.create_list_request("accord_B2B Intent").unwrap();
        assert_eq!(
            (create.method, create.url.as_str()),
            (
                "POST",
                "https://123-ABC-456.mktorest.com/rest/asset/v1/staticLists.json"
            )
        );
        let form = String::from_utf8(create.body.clone()).unwrap();
        assert!(form.starts_with("folder=%7B%22id%22%3A1034%2C%22type%22%3A%22Folder%22%7D&name=accord_B2B%20Intent&description="), "{form}");
        let created = r#"{"success":true,"errors":[],"requestId":"1","warnings":[],"result":[{"id":1027,"name":"accord_B2B Intent","folder":{"id":1034,"type":"Folder"}}]}"#;
        assert_eq!(
            m.parse_created_list(&answer(200, created)),
            Ok("1027".into())
        );
        let taken = error_body("709", "Static list name already exists");
        assert!(
            m.parse_created_list(&answer(200, &taken))
                .unwrap_err()
                .contains("709")
        );
    }

    #[test]
    fn without_a_folder_a_missing_list_says_what_to_set() {
        let m = Marketo::new(&config(&[(
            "munchkin_id",
            SettingPlan::Text("123-ABC-456".into()),
        )]))
        .unwrap();
        assert!(m.create_list_request("accord_X").is_none());
        let none = r#"{"success":true,"warnings":["No assets found for the given search criteria."],"errors":[],"requestId":"1"}"#;
        let error = m
            .parse_found_list("accord_X", &answer(200, none))
            .unwrap_err();
        assert!(
            error.contains("set `folder`") && error.contains("`lists`"),
            "{error}"
        );
        let found =
            r#"{"success":true,"errors":[],"requestId":"1","result":[{"id":7,"name":"accord_X"}]}"#;
        assert_eq!(
            m.parse_found_list("accord_X", &answer(200, found)),
            Ok(Some("7".into()))
        );
    }

    #[test]
    fn list_calls_carry_no_members_and_succeed_as_a_whole() {
        let m = marketo();
        let created = r#"{"success":true,"errors":[],"requestId":"1","warnings":[],"result":[{"id":1027,"name":"x"}]}"#;
        assert_eq!(
            m.classify(Op::Add, &[], &answer(200, created)),
            Outcome::Accepted
        );
        let throttled = error_body("606", "Max rate limit '100' exceeded with in '20' secs");
        assert!(matches!(
            m.classify(Op::Add, &[], &answer(200, &throttled)),
            Outcome::Throttled { .. }
        ));
    }
}
