//! Reading lead activities from Marketo Engage, following Adobe's published
//! REST API (Lead Database: Activities; Leads): the requests and what their
//! answers say, as pure functions. The run's Marketo activity source sends
//! them through `deliver::read`, with the destination's connection
//! (`munchkin_id` or `endpoint`, `client_id` and `client_secret`).
//!
//! The calls, in order:
//! - `GET /rest/v1/activities/types.json`: every activity type of the
//!   instance, `{id, name, primaryAttribute, attributes}`: names to ids;
//! - `GET /rest/v1/activities/pagingtoken.json?sinceDatetime=...`: a
//!   `nextPageToken` that stands for that time;
//! - `GET /rest/v1/activities.json?nextPageToken=...&activityTypeIds=...`
//!   (at most 10 type ids): up to 300 activities and the `nextPageToken`
//!   of the next page. Marketo scans 300 activities of all types per call
//!   and returns those of the types asked for, so a page may be short or
//!   empty (`result` absent) while `moreResult` is still true: the client
//!   pages until `moreResult` is false;
//! - `GET /rest/v1/leads.json?filterType=id&filterValues=...&fields=email`
//!   (at most 300 ids): the email of each lead that still exists; a lead
//!   that does not is simply absent from `result`.
//!
//! Request-level failures are HTTP 200 with `"success": false` and
//! `errors`, as for every Marketo call; the delivery core classifies the
//! token, rate and quota codes (601/602, 606/615, 607) before these parsers
//! see an answer.

use serde_json::Value;

use super::super::config::Config;
use super::super::wire::{WireRequest, WireResponse, percent_encode};
use super::marketo::{base_url, first_error};

/// Activity type ids one `activities.json` call may filter on.
pub const MAX_TYPES_PER_CALL: usize = 10;
/// Lead ids one `leads.json` call may look up.
pub const MAX_LEADS_PER_CALL: usize = 300;
/// Activities per page (Marketo's default and maximum `batchSize`).
pub const PAGE_SIZE: usize = 300;

/// One activity type of the instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActivityType {
    pub id: i64,
    pub name: String,
    /// The name of the primary attribute (`Mailing ID` for email types),
    /// whose value an activity carries as `primaryAttributeValueId` and
    /// `primaryAttributeValue`.
    pub primary_attribute: Option<String>,
}

/// One page of activities.
#[derive(Clone, Debug, PartialEq)]
pub struct ActivityPage {
    /// The activities as Marketo wrote them (JSON objects).
    pub activities: Vec<Value>,
    /// Where the next page starts.
    pub next_page_token: Option<String>,
    /// Whether to ask for the next page.
    pub more_result: bool,
}

/// The activity endpoints of one Marketo instance.
#[derive(Clone, Debug)]
pub struct ActivityApi {
    base: String,
}

impl ActivityApi {
    /// The instance of a `marketo_engage` destination: its `endpoint`, else
    /// `https://{munchkin_id}.mktorest.com`.
    pub fn new(config: &Config) -> Result<ActivityApi, String> {
        Ok(ActivityApi {
            base: base_url(config)?,
        })
    }

    /// The instance's base URL, as errors name it (it holds no secret).
    pub fn instance(&self) -> &str {
        &self.base
    }

    pub fn types_request(&self) -> WireRequest {
        WireRequest::new(
            "GET",
            format!("{}/rest/v1/activities/types.json", self.base),
        )
    }

    /// `sinceDatetime` is ISO 8601 (`2026-09-01T00:00:00Z`).
    pub fn paging_token_request(&self, since: &str) -> WireRequest {
        WireRequest::new(
            "GET",
            format!(
                "{}/rest/v1/activities/pagingtoken.json?sinceDatetime={}",
                self.base,
                percent_encode(since)
            ),
        )
    }

    /// One page of the activities of `types` (1 to 10 ids) from `token` on.
    pub fn activities_request(&self, token: &str, types: &[i64]) -> Result<WireRequest, String> {
        if types.is_empty() || types.len() > MAX_TYPES_PER_CALL {
            return Err(format!(
                "an activities call filters on 1 to {MAX_TYPES_PER_CALL} activity types, not {}",
                types.len()
            ));
        }
        Ok(WireRequest::new(
            "GET",
            format!(
                "{}/rest/v1/activities.json?nextPageToken={}&activityTypeIds={}&batchSize={PAGE_SIZE}",
                self.base,
                percent_encode(token),
                join(types)
            ),
        ))
    }

    /// The emails of 1 to 300 leads.
    pub fn leads_request(&self, ids: &[i64]) -> Result<WireRequest, String> {
        if ids.is_empty() || ids.len() > MAX_LEADS_PER_CALL {
            return Err(format!(
                "a leads call looks up 1 to {MAX_LEADS_PER_CALL} ids, not {}",
                ids.len()
            ));
        }
        Ok(WireRequest::new(
            "GET",
            format!(
                "{}/rest/v1/leads.json?filterType=id&filterValues={}&fields=id,email&batchSize={MAX_LEADS_PER_CALL}",
                self.base,
                join(ids)
            ),
        ))
    }
}

/// The activity types in an answer to [`ActivityApi::types_request`].
pub fn parse_types(response: &WireResponse) -> Result<Vec<ActivityType>, String> {
    let body = successful(response, "list the activity types")?;
    results(&body)
        .iter()
        .map(|t| {
            let id = t.get("id").and_then(Value::as_i64);
            let name = t.get("name").and_then(Value::as_str);
            match (id, name) {
                (Some(id), Some(name)) => Ok(ActivityType {
                    id,
                    name: name.to_string(),
                    primary_attribute: t
                        .pointer("/primaryAttribute/name")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                }),
                _ => Err("Marketo listed an activity type without an id or a name".to_string()),
            }
        })
        .collect()
}

/// The token in an answer to [`ActivityApi::paging_token_request`].
pub fn parse_paging_token(response: &WireResponse) -> Result<String, String> {
    let body = successful(response, "give a paging token")?;
    body.get("nextPageToken")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .ok_or_else(|| "Marketo answered the paging token call without a nextPageToken".into())
}

/// The page in an answer to [`ActivityApi::activities_request`].
pub fn parse_activities(response: &WireResponse) -> Result<ActivityPage, String> {
    let body = successful(response, "list activities")?;
    let activities = results(&body);
    if activities.iter().any(|a| !a.is_object()) {
        return Err("Marketo listed an activity that is not a JSON object".into());
    }
    let next_page_token = body
        .get("nextPageToken")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .map(str::to_string);
    let more_result = body.get("moreResult").and_then(Value::as_bool) == Some(true);
    if more_result && next_page_token.is_none() {
        return Err("Marketo said there are more activities but gave no nextPageToken".into());
    }
    Ok(ActivityPage {
        activities,
        next_page_token,
        more_result,
    })
}

/// `(lead id, email)` for each lead in an answer to
/// [`ActivityApi::leads_request`]; a lead without an email has `None`.
pub fn parse_leads(response: &WireResponse) -> Result<Vec<(i64, Option<String>)>, String> {
    let body = successful(response, "look up leads")?;
    results(&body)
        .iter()
        .map(|lead| {
            let id = lead
                .get("id")
                .and_then(Value::as_i64)
                .ok_or("Marketo returned a lead without an id")?;
            let email = lead
                .get("email")
                .and_then(Value::as_str)
                .filter(|e| !e.is_empty())
                .map(str::to_string);
            Ok((id, email))
        })
        .collect()
}

/// The body of a successful call, or what Marketo said instead.
fn successful(response: &WireResponse, what: &str) -> Result<Value, String> {
    let body = response.json();
    if response.status != 200 || !body.is_object() {
        return Err(format!(
            "Marketo could not {what}: HTTP {} with no JSON answer",
            response.status
        ));
    }
    if let Some((code, message)) = first_error(&body) {
        return Err(format!("Marketo could not {what}: {code} {message}"));
    }
    Ok(body)
}

/// `result`, which Marketo leaves out when there is none.
fn results(body: &Value) -> Vec<Value> {
    body.get("result")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn join(ids: &[i64]) -> String {
    ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::plan::SettingPlan;

    fn api() -> ActivityApi {
        let config = Config {
            name: "marketo".into(),
            kind: "marketo_engage".into(),
            endpoint: None,
            settings: [(
                "munchkin_id".to_string(),
                SettingPlan::Text("123-ABC-456".into()),
            )]
            .into_iter()
            .collect(),
            secrets: BTreeMap::new(),
            limits: Default::default(),
            lists: BTreeMap::new(),
            list_prefix: String::new(),
            dry_run: false,
        };
        ActivityApi::new(&config).unwrap()
    }

    fn answer(body: &str) -> WireResponse {
        WireResponse {
            status: 200,
            headers: vec![],
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn requests_follow_the_published_endpoints() {
        let api = api();
        assert_eq!(
            api.types_request().url,
            "https://123-ABC-456.mktorest.com/rest/v1/activities/types.json"
        );
        assert_eq!(
            api.paging_token_request("2026-09-01T00:00:00+02:00").url,
            "https://123-ABC-456.mktorest.com/rest/v1/activities/pagingtoken.json?sinceDatetime=2026-09-01T00%3A00%3A00%2B02%3A00"
        );
        assert_eq!(
            api.activities_request("GIYDAOBNGEYS", &[10, 11])
                .unwrap()
                .url,
            "https://123-ABC-456.mktorest.com/rest/v1/activities.json?nextPageToken=GIYDAOBNGEYS&activityTypeIds=10,11&batchSize=300"
        );
        assert_eq!(
            api.leads_request(&[1, 2]).unwrap().url,
            "https://123-ABC-456.mktorest.com/rest/v1/leads.json?filterType=id&filterValues=1,2&fields=id,email&batchSize=300"
        );
        assert!(api.activities_request("t", &[1; 11]).is_err());
        assert!(api.activities_request("t", &[]).is_err());
        assert!(api.leads_request(&[1; 301]).is_err());
    }

    #[test]
    fn answers_parse_as_the_documentation_shows_them() {
        let types = parse_types(&answer(
            r#"{"requestId":"6e78#148ad3b76f1","success":true,"result":[{"id":2,"name":"Fill Out Form","description":"User fills out and submits form on web page","primaryAttribute":{"name":"Webform ID","dataType":"integer"},"attributes":[{"name":"Client IP Address","dataType":"string"}]}]}"#,
        ))
        .unwrap();
        assert_eq!(
            types,
            vec![ActivityType {
                id: 2,
                name: "Fill Out Form".into(),
                primary_attribute: Some("Webform ID".into()),
            }]
        );
        assert_eq!(
            parse_paging_token(&answer(
                r#"{"requestId":"a9ae#148add1e53d","success":true,"nextPageToken":"GIYDAOBNGEYS2MBWKQYDAORQGA5DAMBOGAYDAKZQGAYDALBQ"}"#
            ))
            .unwrap(),
            "GIYDAOBNGEYS2MBWKQYDAORQGA5DAMBOGAYDAKZQGAYDALBQ"
        );
        // No activity of the types in the 300 scanned: no `result`, more to come.
        let empty = parse_activities(&answer(
            r#"{"requestId":"xyz123","success":true,"nextPageToken":"ABC","moreResult":true}"#,
        ))
        .unwrap();
        assert!(empty.activities.is_empty() && empty.more_result);
        assert_eq!(empty.next_page_token.as_deref(), Some("ABC"));
        let page = parse_activities(&answer(
            r#"{"requestId":"24fd#15188a88d7f","success":true,"nextPageToken":"WQV2","moreResult":false,"result":[{"id":102988,"marketoGUID":"102988","leadId":1,"activityDate":"2023-01-16T23:32:19Z","activityTypeId":1,"primaryAttributeValueId":71,"primaryAttributeValue":"localhost/munchkintest2.html","attributes":[{"name":"Client IP Address","value":"10.0.19.252"}]}]}"#,
        ))
        .unwrap();
        assert_eq!(page.activities.len(), 1);
        assert!(!page.more_result);
        let leads = parse_leads(&answer(
            r#"{"requestId":"e42b#14272d07d78","success":true,"result":[{"id":50,"email":"kjashaedd@klooblept.com"},{"id":51,"email":null}]}"#,
        ))
        .unwrap();
        assert_eq!(
            leads,
            vec![(50, Some("kjashaedd@klooblept.com".into())), (51, None)]
        );
    }

    #[test]
    fn failures_say_what_marketo_said() {
        let failed = answer(
            r#"{"requestId":"1","success":false,"errors":[{"code":"1003","message":"Invalid activity type id"}]}"#,
        );
        assert_eq!(
            parse_activities(&failed).unwrap_err(),
            "Marketo could not list activities: 1003 Invalid activity type id"
        );
        assert!(parse_paging_token(&answer(r#"{"success":true}"#)).is_err());
        assert!(
            parse_activities(&answer(r#"{"success":true,"moreResult":true}"#)).is_err(),
            "more results need a token"
        );
    }
}
