//! LinkedIn Matched Audiences (catalog types `linkedin_companies` and
//! `linkedin_contacts`), following LinkedIn's published Marketing API
//! contract for DMP segments: each audience is one DMP segment of the ad
//! account, streamed to with the segment's `companies` or `users`
//! sub-resource.
//!
//! In: the destination's `ad_account` (a `urn:li:sponsoredAccount:N`), the
//! secrets `client_id`, `client_secret` and `refresh_token` (LinkedIn's
//! Marketing APIs take 3-legged OAuth only, so a run trades the member's
//! refresh token for access tokens), the optional `source_platform` (the
//! `sourcePlatform` LinkedIn assigns when it grants the Audiences program;
//! without it accord cannot create segments and each audience's segment id
//! must be pinned in `lists`), and the members of one batch. Out: the wire
//! requests for the OAuth token, segment finder, segment creation and the
//! streaming endpoints, and what their answers mean as [`Outcome`]s.
//!
//! Every API call carries `LinkedIn-Version` ([`LINKEDIN_VERSION`]) and
//! `X-Restli-Protocol-Version: 2.0.0`; the streaming calls are Rest.li
//! `BATCH_CREATE`s whose answer has one status per element, in request
//! order, which become per-record results.
//!
//! LinkedIn asks for a wait of about five seconds between creating a
//! segment and streaming to it ([`SETTLE_AFTER_CREATE`]). A stream to a
//! segment that is not available yet is answered 404, which this file
//! classifies as transient, so the executor's backoff covers the wait.

use std::time::{Duration, SystemTime};

use secrecy::SecretString;
use serde_json::{Value, json};

use super::super::config::Config;
use super::super::vendor::{
    Auth, ListRef, Member, Op, Outcome, RecordResult, Token, Vendor, issued_token, secret,
    token_form,
};
use super::super::wire::{WireRequest, WireResponse, percent_encode};

/// The Marketing API version every call asks for (`YYYYMM`). LinkedIn
/// supports a version for a year after its release; this one is from
/// August 2026.
pub const LINKEDIN_VERSION: &str = "202608";

/// How long LinkedIn asks a client to wait after creating a segment before
/// streaming to it.
pub const SETTLE_AFTER_CREATE: Duration = Duration::from_secs(5);

const API_BASE: &str = "https://api.linkedin.com/rest";
const OAUTH_TOKEN_URL: &str = "https://www.linkedin.com/oauth/v2/accessToken";

/// Segments the finder returns per page. accord reads the first page only:
/// it finds a segment by name only to recover one whose creation answer was
/// lost, which is among the account's newest.
const FINDER_PAGE: u32 = 100;

/// The mapped column of each user id and LinkedIn's `idType` for it.
const USER_IDS: [(&str, &str); 3] = [
    ("email_lc_sha256", "SHA256_EMAIL"),
    ("gaid", "GOOGLE_AID"),
    ("idfa", "APPLE_IDFA"),
];

/// Which stream a destination feeds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Matched {
    /// `linkedin_companies`: company lists (`/companies`, segment type `COMPANY`).
    Companies,
    /// `linkedin_contacts`: contact lists (`/users`, segment type `USER`).
    Contacts,
}

impl Matched {
    fn kind(self) -> &'static str {
        match self {
            Matched::Companies => "linkedin_companies",
            Matched::Contacts => "linkedin_contacts",
        }
    }

    fn segment_type(self) -> &'static str {
        match self {
            Matched::Companies => "COMPANY",
            Matched::Contacts => "USER",
        }
    }

    fn stream(self) -> &'static str {
        match self {
            Matched::Companies => "companies",
            Matched::Contacts => "users",
        }
    }
}

/// LinkedIn Matched Audiences for one destination.
#[derive(Debug)]
pub struct LinkedIn {
    matched: Matched,
    destination: String,
    api: String,
    token_url: String,
    ad_account: String,
    source_platform: Option<String>,
    client_id: SecretString,
    client_secret: SecretString,
    refresh_token: SecretString,
}

impl LinkedIn {
    pub fn new(config: &Config, matched: Matched) -> Result<LinkedIn, String> {
        let ad_account = config.require("ad_account")?;
        if !ad_account.starts_with("urn:li:sponsoredAccount:") {
            return Err(format!(
                "destination `{}`: `ad_account` must be a urn:li:sponsoredAccount:N, not `{ad_account}`",
                config.name
            ));
        }
        let (api, token_url) = match config.endpoint.as_deref() {
            Some(endpoint) => {
                let root = endpoint.trim_end_matches('/');
                (
                    format!("{root}/rest"),
                    format!("{root}/oauth/v2/accessToken"),
                )
            }
            None => (API_BASE.to_string(), OAUTH_TOKEN_URL.to_string()),
        };
        Ok(LinkedIn {
            matched,
            destination: config.name.clone(),
            api,
            token_url,
            ad_account: ad_account.to_string(),
            source_platform: config.text("source_platform").map(str::to_string),
            client_id: config.secret("client_id")?.clone(),
            client_secret: config.secret("client_secret")?.clone(),
            refresh_token: config.secret("refresh_token")?.clone(),
        })
    }

    /// A Rest.li call with the headers LinkedIn requires on every API call.
    fn api_request(&self, method: &'static str, path: &str) -> WireRequest {
        WireRequest::new(method, format!("{}{path}", self.api))
            .header("LinkedIn-Version", LINKEDIN_VERSION)
            .header("X-Restli-Protocol-Version", "2.0.0")
    }

    fn element(&self, op: Op, member: &Member) -> Result<Value, String> {
        let action = match op {
            Op::Add => "ADD",
            Op::Remove => "REMOVE",
            Op::Upsert => return Err("LinkedIn segments have no upsert".into()),
        };
        match self.matched {
            Matched::Companies => company_element(action, member),
            Matched::Contacts => user_element(action, member),
        }
    }
}

impl Vendor for LinkedIn {
    fn kind(&self) -> &'static str {
        self.matched.kind()
    }

    fn auth(&self) -> Auth {
        Auth::Fetched
    }

    fn token_request(&self, _now: SystemTime) -> Option<WireRequest> {
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", secret(&self.refresh_token)),
            ("client_id", secret(&self.client_id)),
            ("client_secret", secret(&self.client_secret)),
        ];
        Some(token_form(self.token_url.clone(), &form))
    }

    fn parse_token(&self, response: &WireResponse) -> Result<Token, String> {
        issued_token(response, "LinkedIn", &self.destination)
    }

    fn find_list_request(&self, _name: &str) -> Option<WireRequest> {
        let path = format!(
            "/dmpSegments?q=account&account={}&start=0&count={FINDER_PAGE}",
            percent_encode(&self.ad_account)
        );
        Some(self.api_request("GET", &path))
    }

    fn parse_found_list(
        &self,
        name: &str,
        response: &WireResponse,
    ) -> Result<Option<String>, String> {
        if response.status != 200 {
            return Err(format!(
                "LinkedIn could not list the segments of {} (HTTP {}): {}",
                self.ad_account,
                response.status,
                error_message(&response.json())
            ));
        }
        let body = response.json();
        let segments = body
            .get("elements")
            .and_then(Value::as_array)
            .ok_or("LinkedIn answered the segment finder without `elements`")?;
        segments
            .iter()
            .find(|s| self.is_segment_named(s, name))
            .map(|s| {
                segment_id(s.get("id")).ok_or("LinkedIn listed a segment without an id".into())
            })
            .transpose()
    }

    fn create_list_request(&self, name: &str) -> Option<WireRequest> {
        let source_platform = self.source_platform.as_deref()?;
        let body = json!({
            "name": name,
            "account": self.ad_account,
            "accessPolicy": "PRIVATE",
            "type": self.matched.segment_type(),
            "sourcePlatform": source_platform,
            "destinations": [{ "destination": "LINKEDIN" }],
        });
        Some(self.api_request("POST", "/dmpSegments").json(&body))
    }

    fn parse_created_list(&self, response: &WireResponse) -> Result<String, String> {
        if !(200..300).contains(&response.status) {
            return Err(format!(
                "LinkedIn did not create the segment (HTTP {}): {}",
                response.status,
                error_message(&response.json())
            ));
        }
        created_id(response).ok_or_else(|| {
            "LinkedIn created the segment but named no id (no x-restli-id, x-linkedin-id or Location)"
                .to_string()
        })
    }

    fn encode(
        &self,
        list: Option<&ListRef>,
        op: Op,
        members: &[Member],
    ) -> Result<WireRequest, String> {
        let list = list.ok_or("a LinkedIn stream needs its DMP segment")?;
        if members.is_empty() {
            return Err("a LinkedIn stream needs at least one member".into());
        }
        let elements = members
            .iter()
            .map(|m| self.element(op, m))
            .collect::<Result<Vec<_>, _>>()?;
        let path = format!(
            "/dmpSegments/{}/{}",
            percent_encode(&list.id),
            self.matched.stream()
        );
        Ok(self
            .api_request("POST", &path)
            .header("X-RestLi-Method", "BATCH_CREATE")
            .json(&json!({ "elements": elements })))
    }

    fn classify(&self, _op: Op, members: &[Member], response: &WireResponse) -> Outcome {
        if let Some(outcome) = classify_status(response) {
            return outcome;
        }
        if members.is_empty() {
            return Outcome::Accepted;
        }
        match response.json().get("elements").and_then(Value::as_array) {
            Some(elements) if elements.len() == members.len() => {
                Outcome::Records(elements.iter().map(element_result).collect())
            }
            Some(elements) => Outcome::Transient {
                code: "element_count".into(),
                message: format!(
                    "LinkedIn answered {} element statuses for {} members",
                    elements.len(),
                    members.len()
                ),
            },
            // A BATCH_CREATE answered 2xx without statuses applied them all.
            None => Outcome::Accepted,
        }
    }
}

impl LinkedIn {
    /// The finder lists every segment of the account: the same name may be
    /// used by a company and a contact segment.
    fn is_segment_named(&self, segment: &Value, name: &str) -> bool {
        let named = segment.get("name").and_then(Value::as_str) == Some(name);
        let typed = segment
            .get("type")
            .and_then(Value::as_str)
            .is_none_or(|t| t == self.matched.segment_type());
        named && typed
    }
}

/// What the HTTP status alone says; `None` for a 2xx, whose body says more.
fn classify_status(response: &WireResponse) -> Option<Outcome> {
    let status = response.status;
    let body = response.json();
    let code = || error_code(&body, status);
    let message = || error_message(&body);
    Some(match status {
        200..=299 => return None,
        401 => Outcome::AuthExpired,
        429 => Outcome::Throttled {
            retry_after: response.retry_after(),
            code: code(),
        },
        // The member's role on the ad account (VIEWER) or the app's
        // permissions: nothing sent to this account can succeed.
        403 => Outcome::Fatal {
            code: code(),
            message: message(),
        },
        // A segment created moments ago is not available yet.
        404 => Outcome::Transient {
            code: code(),
            message: format!("segment not available yet: {}", message()),
        },
        408 | 500..=599 => Outcome::Transient {
            code: code(),
            message: message(),
        },
        _ => Outcome::Refused {
            status,
            code: code(),
            message: message(),
        },
    })
}

/// One element's status in a `BATCH_CREATE` answer.
fn element_result(element: &Value) -> RecordResult {
    let status = element.get("status").and_then(Value::as_u64).unwrap_or(0) as u16;
    let error = element.get("error").cloned().unwrap_or(Value::Null);
    let code = error_code(&error, status);
    let message = error_message(&error);
    match status {
        200..=299 => RecordResult::Accepted { remote_id: None },
        429 | 500..=599 => RecordResult::Retry { code, message },
        _ => RecordResult::Rejected { code, message },
    }
}

fn user_element(action: &str, member: &Member) -> Result<Value, String> {
    let user_ids: Vec<Value> = USER_IDS
        .iter()
        .filter_map(|(column, id_type)| {
            text_field(member, column).map(|value| json!({ "idType": id_type, "idValue": value }))
        })
        .collect();
    if user_ids.is_empty() {
        return Err(format!(
            "member `{}` has none of email_lc_sha256, gaid, idfa",
            member.key
        ));
    }
    Ok(json!({ "action": action, "userIds": user_ids }))
}

fn company_element(action: &str, member: &Member) -> Result<Value, String> {
    let name = text_field(member, "companyName")
        .ok_or_else(|| format!("company `{}` has no companyName", member.key))?;
    let mut element = json!({ "action": action, "companyName": name });
    if let Some(domain) = text_field(member, "companyDomain") {
        element["companyWebsiteDomain"] = Value::String(domain.to_string());
    }
    Ok(element)
}

/// A mapped column's text, `None` when absent, null or empty.
fn text_field<'m>(member: &'m Member, column: &str) -> Option<&'m str> {
    member
        .field(column)
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty())
}

/// The new segment's id: Rest.li names it in `x-restli-id` (LinkedIn also
/// sends `x-linkedin-id`), and the `Location` ends with it.
fn created_id(response: &WireResponse) -> Option<String> {
    ["x-restli-id", "x-linkedin-id"]
        .iter()
        .filter_map(|h| response.header(h))
        .map(str::trim)
        .find(|id| !id.is_empty())
        .map(str::to_string)
        .or_else(|| {
            let location = response.header("location")?;
            let id = location.trim_end_matches('/').rsplit('/').next()?;
            (!id.is_empty()).then(|| id.to_string())
        })
        .or_else(|| segment_id(response.json().get("id")))
}

fn segment_id(id: Option<&Value>) -> Option<String> {
    match id? {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

/// LinkedIn's error body: `{status, serviceErrorCode, code, message}`.
fn error_code(body: &Value, status: u16) -> String {
    match (
        body.get("code").and_then(Value::as_str),
        body.get("serviceErrorCode"),
    ) {
        (Some(code), _) => code.to_string(),
        (None, Some(Value::Number(n))) => n.to_string(),
        _ => status.to_string(),
    }
}

fn error_message(body: &Value) -> String {
    body.get("message")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| "no message".to_string())
}

/// OAuth's error body: `{error, error_description}`.
#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::deliver::config::Limits;
    use crate::plan::SettingPlan;

    fn config(kind: &str, source_platform: Option<&str>) -> Config {
        let mut settings = BTreeMap::new();
        settings.insert(
            "ad_account".to_string(),
            SettingPlan::Text("urn:li:sponsoredAccount:42".into()),
        );
        if let Some(platform) = source_platform {
            settings.insert("source_platform".into(), SettingPlan::Text(platform.into()));
        }
        let secrets = ["client_id", "client_secret", "refresh_token"]
            .iter()
            .map(|k| (k.to_string(), SecretString::from(format!("{k}-value"))))
            .collect();
        Config {
            name: "li".into(),
            kind: kind.into(),
            endpoint: None,
            settings,
            secrets,
            limits: Limits {
                batch_size: 100,
                max_bytes: None,
                window: None,
                concurrent: 1,
                daily: None,
            },
            lists: BTreeMap::new(),
            list_prefix: String::new(),
            dry_run: false,
        }
    }

    fn member(key: &str, fields: &[(&str, &str)]) -> Member {
        Member {
            key: key.into(),
            fields: fields
                .iter()
                .map(|(c, v)| (c.to_string(), Value::String(v.to_string())))
                .collect(),
            remote_id: None,
        }
    }

    fn list() -> ListRef {
        ListRef {
            audience: "a".into(),
            name: "a".into(),
            id: "77".into(),
        }
    }

    fn response(status: u16, headers: &[(&str, &str)], body: Value) -> WireResponse {
        WireResponse {
            status,
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            body: serde_json::to_vec(&body).unwrap(),
        }
    }

    #[test]
    fn users_are_streamed_with_every_id_they_have() {
        let li = LinkedIn::new(&config("linkedin_contacts", None), Matched::Contacts).unwrap();
        let members = [member("p1", &[("email_lc_sha256", "ab"), ("idfa", "I-1")])];
        let request = li.encode(Some(&list()), Op::Remove, &members).unwrap();
        assert_eq!(
            request.url,
            "https://api.linkedin.com/rest/dmpSegments/77/users"
        );
        let dump = request.redacted();
        assert_eq!(dump["headers"]["X-RestLi-Method"], "BATCH_CREATE");
        assert_eq!(dump["headers"]["LinkedIn-Version"], LINKEDIN_VERSION);
        assert_eq!(
            dump["body"],
            json!({"elements": [{"action": "REMOVE", "userIds": [
                {"idType": "SHA256_EMAIL", "idValue": "ab"},
                {"idType": "APPLE_IDFA", "idValue": "I-1"}]}]})
        );
    }

    #[test]
    fn companies_need_a_name_and_take_a_domain() {
        let li = LinkedIn::new(&config("linkedin_companies", None), Matched::Companies).unwrap();
        let ok = [member(
            "c1",
            &[("companyName", "Acme"), ("companyDomain", "acme.com")],
        )];
        let body = li.encode(Some(&list()), Op::Add, &ok).unwrap().redacted()["body"].clone();
        assert_eq!(
            body,
            json!({"elements": [{"action": "ADD", "companyName": "Acme", "companyWebsiteDomain": "acme.com"}]})
        );
        let nameless = [member("c2", &[("companyDomain", "x.com")])];
        let error = li.encode(Some(&list()), Op::Add, &nameless).unwrap_err();
        assert!(error.contains("c2"), "{error}");
    }

    #[test]
    fn element_statuses_become_record_results() {
        let li = LinkedIn::new(&config("linkedin_contacts", None), Matched::Contacts).unwrap();
        let members = [
            member("a", &[("gaid", "g")]),
            member("b", &[("gaid", "h")]),
            member("c", &[("gaid", "i")]),
        ];
        let answer = response(
            200,
            &[],
            json!({"elements": [{"status": 201}, {"status": 400, "error": {"message": "bad id"}}, {"status": 503}]}),
        );
        let Outcome::Records(records) = li.classify(Op::Add, &members, &answer) else {
            panic!("per-record results expected");
        };
        assert_eq!(records[0], RecordResult::Accepted { remote_id: None });
        assert!(
            matches!(&records[1], RecordResult::Rejected { message, .. } if message == "bad id")
        );
        assert!(matches!(records[2], RecordResult::Retry { .. }));
    }

    #[test]
    fn statuses_map_to_outcomes() {
        let li = LinkedIn::new(&config("linkedin_contacts", None), Matched::Contacts).unwrap();
        let m = [member("a", &[("gaid", "g")])];
        let throttled = li.classify(
            Op::Add,
            &m,
            &response(429, &[("retry-after", "3")], Value::Null),
        );
        assert_eq!(
            throttled,
            Outcome::Throttled {
                retry_after: Some(Duration::from_secs(3)),
                code: "429".into()
            }
        );
        assert_eq!(
            li.classify(Op::Add, &m, &response(401, &[], Value::Null)),
            Outcome::AuthExpired
        );
        let viewer = json!({"status": 403, "code": "ACCESS_DENIED", "message": "role VIEWER"});
        assert!(matches!(
            li.classify(Op::Add, &m, &response(403, &[], viewer)),
            Outcome::Fatal { .. }
        ));
        assert!(matches!(
            li.classify(Op::Add, &m, &response(502, &[], Value::Null)),
            Outcome::Transient { .. }
        ));
        assert!(matches!(
            li.classify(Op::Add, &m, &response(404, &[], Value::Null)),
            Outcome::Transient { .. }
        ));
        assert!(matches!(
            li.classify(Op::Add, &m, &response(422, &[], Value::Null)),
            Outcome::Refused { status: 422, .. }
        ));
    }

    #[test]
    fn segments_are_found_by_name_and_type_and_created_with_the_platform() {
        let li = LinkedIn::new(
            &config("linkedin_companies", Some("PARTNER")),
            Matched::Companies,
        )
        .unwrap();
        let find = li.find_list_request("aud").unwrap();
        assert_eq!(
            find.url,
            "https://api.linkedin.com/rest/dmpSegments?q=account&account=urn%3Ali%3AsponsoredAccount%3A42&start=0&count=100"
        );
        let listing = json!({"elements": [
            {"id": 1, "name": "aud", "type": "USER"},
            {"id": 2, "name": "aud", "type": "COMPANY"}]});
        assert_eq!(
            li.parse_found_list("aud", &response(200, &[], listing))
                .unwrap(),
            Some("2".into())
        );
        let create = li.create_list_request("aud").unwrap().redacted();
        assert_eq!(create["body"]["sourcePlatform"], "PARTNER");
        assert_eq!(create["body"]["type"], "COMPANY");
        let created = response(201, &[("x-restli-id", "9")], Value::Null);
        assert_eq!(li.parse_created_list(&created).unwrap(), "9");
        let located = response(201, &[("location", "/dmpSegments/10")], Value::Null);
        assert_eq!(li.parse_created_list(&located).unwrap(), "10");
    }

    #[test]
    fn without_a_source_platform_segments_are_not_created() {
        let li = LinkedIn::new(&config("linkedin_contacts", None), Matched::Contacts).unwrap();
        assert!(li.create_list_request("aud").is_none());
    }

    #[test]
    fn the_token_request_refreshes_and_never_shows_the_secrets() {
        let mut cfg = config("linkedin_contacts", None);
        cfg.endpoint = Some("http://127.0.0.1:9/".into());
        let li = LinkedIn::new(&cfg, Matched::Contacts).unwrap();
        let request = li.token_request(SystemTime::now()).unwrap();
        assert_eq!(request.url, "http://127.0.0.1:9/oauth/v2/accessToken");
        let body = String::from_utf8(request.body).unwrap();
        assert_eq!(
            body,
            "grant_type=refresh_token&refresh_token=refresh_token-value&client_id=client_id-value&client_secret=client_secret-value"
        );
        assert!(!format!("{li:?}").contains("-value"));
        let token = li
            .parse_token(&response(
                200,
                &[],
                json!({"access_token": "t", "expires_in": 60}),
            ))
            .unwrap();
        assert_eq!(token.expires_in, Some(Duration::from_secs(60)));
        let refused = li
            .parse_token(&response(400, &[], json!({"error": "invalid_grant"})))
            .unwrap_err();
        assert!(refused.contains("invalid_grant"), "{refused}");
    }

    #[test]
    fn a_bad_ad_account_is_a_clear_error() {
        let mut cfg = config("linkedin_contacts", None);
        cfg.settings
            .insert("ad_account".into(), SettingPlan::Text("42".into()));
        let error = LinkedIn::new(&cfg, Matched::Contacts).unwrap_err();
        assert!(error.contains("urn:li:sponsoredAccount"), "{error}");
    }
}
