//! Customer Match user lists through the Data Manager API's `userLists`
//! resource (`accountTypes/GOOGLE_ADS/accounts/{customer}/userLists`).
//!
//! In: the account's resource URL, a list's display name (the destination's
//! `list_prefix` + audience) and the destination's [`ListKind`]. Out: the
//! request that finds a list by its display name (`userLists.list` with a
//! `display_name` filter), the request that creates one (`userLists.create`),
//! and the ids in their responses. Display names are unique per account, so
//! a list created by a run whose response was lost is found, not made twice.

use reqwest::Url;
use serde_json::{Value, json};

use super::encode::ListKind;
use crate::deliver::wire::{WireRequest, WireResponse};

/// The most lists one `userLists.list` page returns.
const PAGE_SIZE: &str = "1000";

/// `GET {lists_url}?filter=display_name = "NAME"`.
pub fn find_request(lists_url: &str, name: &str) -> Option<WireRequest> {
    let filter = format!("display_name = \"{}\"", quote(name));
    let url = Url::parse_with_params(
        lists_url,
        [("filter", filter.as_str()), ("pageSize", PAGE_SIZE)],
    )
    .ok()?;
    Some(WireRequest::new("GET", url.as_str()))
}

/// The id of the list named `name` in a `userLists.list` response.
pub fn parse_found(name: &str, response: &WireResponse) -> Result<Option<String>, String> {
    let body = success(response, "find the user list")?;
    let lists = body.get("userLists").and_then(Value::as_array);
    // The filter already matched; compare again so that a server that
    // ignores it cannot hand back another list.
    lists
        .into_iter()
        .flatten()
        .find(|list| list.get("displayName").and_then(Value::as_str) == Some(name))
        .map(list_id)
        .transpose()
}

/// `POST {lists_url}` with a Customer Match `UserList`.
pub fn create_request(lists_url: &str, name: &str, kind: &ListKind) -> WireRequest {
    let info = match kind {
        ListKind::Contact => json!({
            "uploadKeyTypes": ["CONTACT_ID"],
            "contactIdInfo": {"dataSourceType": "DATA_SOURCE_TYPE_FIRST_PARTY"},
        }),
        ListKind::Mobile { app_id, key_space } => json!({
            "uploadKeyTypes": ["MOBILE_ID"],
            "mobileIdInfo": {
                "dataSourceType": "DATA_SOURCE_TYPE_FIRST_PARTY",
                "keySpace": key_space,
                "appId": app_id,
            },
        }),
    };
    let list = json!({
        "displayName": name,
        "description": "Audience delivered by accord",
        "membershipStatus": "OPEN",
        "ingestedUserListInfo": info,
    });
    WireRequest::new("POST", lists_url).json(&list)
}

/// The id of the list in a `userLists.create` response.
pub fn parse_created(response: &WireResponse) -> Result<String, String> {
    list_id(&success(response, "create the user list")?)
}

fn success(response: &WireResponse, doing: &str) -> Result<Value, String> {
    if (200..300).contains(&response.status) {
        return Ok(response.json());
    }
    let (code, message) = super::classify::status(response);
    Err(format!(
        "Google could not {doing} (HTTP {} {code}): {message}",
        response.status
    ))
}

/// A list's id: `id`, or the last segment of its resource `name`.
fn list_id(list: &Value) -> Result<String, String> {
    let from_name = || {
        list.get("name")
            .and_then(Value::as_str)
            .and_then(|n| n.rsplit_once("/userLists/"))
            .map(|(_, id)| id)
    };
    list.get("id")
        .and_then(Value::as_str)
        .or_else(from_name)
        .filter(|id| !id.is_empty())
        .map(str::to_string)
        .ok_or_else(|| "Google's user list has no id".to_string())
}

/// A filter string literal: backslashes and quotes escaped.
fn quote(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    const LISTS: &str = "https://datamanager.googleapis.com/v1/accountTypes/GOOGLE_ADS/accounts/1234567890/userLists";

    fn ok(body: Value) -> WireResponse {
        WireResponse {
            status: 200,
            headers: vec![],
            body: body.to_string().into_bytes(),
        }
    }

    #[test]
    fn the_find_request_filters_on_the_display_name() {
        let request = find_request(LISTS, "accord_\"vip\"").unwrap();
        assert_eq!(request.method, "GET");
        let url = Url::parse(&request.url).unwrap();
        let filter = url.query_pairs().find(|(k, _)| k == "filter").unwrap().1;
        assert_eq!(filter, r#"display_name = "accord_\"vip\"""#);
    }

    #[test]
    fn found_lists_are_matched_by_name() {
        let body = json!({"userLists": [
            {"name": "accountTypes/GOOGLE_ADS/accounts/1/userLists/7", "id": "7", "displayName": "other"},
            {"name": "accountTypes/GOOGLE_ADS/accounts/1/userLists/9", "displayName": "accord_vip"},
        ]});
        assert_eq!(
            parse_found("accord_vip", &ok(body.clone())),
            Ok(Some("9".into()))
        );
        assert_eq!(parse_found("missing", &ok(body)), Ok(None));
        assert_eq!(parse_found("x", &ok(json!({}))), Ok(None));
    }

    #[test]
    fn created_lists_are_customer_match_lists() {
        let request = create_request(LISTS, "accord_vip", &ListKind::Contact);
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        assert_eq!(body["displayName"], "accord_vip");
        assert_eq!(
            body["ingestedUserListInfo"]["uploadKeyTypes"],
            json!(["CONTACT_ID"])
        );
        let mobile = ListKind::from_app_id(Some("476943146"));
        let body: Value =
            serde_json::from_slice(&create_request(LISTS, "m", &mobile).body).unwrap();
        assert_eq!(
            body["ingestedUserListInfo"]["mobileIdInfo"]["keySpace"],
            "IOS"
        );
        assert_eq!(
            parse_created(&ok(json!({"id": "55", "displayName": "m"}))),
            Ok("55".into())
        );
    }

    #[test]
    fn refusals_say_what_failed() {
        let refused = WireResponse {
            status: 400,
            headers: vec![],
            body: br#"{"error":{"code":400,"status":"INVALID_ARGUMENT","message":"name taken"}}"#
                .to_vec(),
        };
        let error = parse_created(&refused).unwrap_err();
        assert!(
            error.contains("INVALID_ARGUMENT") && error.contains("name taken"),
            "{error}"
        );
    }
}
