use std::time::Duration;

use serde_json::json;

use super::*;
use crate::deliver::Limits;

const GUID_1: &str = "7a3d6c2e-1b4f-4c8a-9e2d-000000000001";
const GUID_2: &str = "7a3d6c2e-1b4f-4c8a-9e2d-000000000002";

fn config(settings: &[(&str, SettingPlan)]) -> Config {
    let mut all: BTreeMap<String, SettingPlan> = [
        (
            "environment_url",
            SettingPlan::Text("https://northwind.crm4.dynamics.com/".into()),
        ),
        ("tenant_id", SettingPlan::Reference("env:TENANT".into())),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    all.extend(settings.iter().map(|(k, v)| (k.to_string(), v.clone())));
    let secrets = [
        ("tenant_id", "contoso.onmicrosoft.com"),
        ("client_id", "app-1"),
        ("client_secret", "s3cr&t=x"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), SecretString::from(v.to_string())))
    .collect();
    Config {
        name: "dynamics_emea".into(),
        kind: "dynamics365".into(),
        endpoint: None,
        settings: all,
        secrets,
        limits: Limits {
            batch_size: 1000,
            max_bytes: None,
            window: Some((6000, Duration::from_secs(300))),
            concurrent: 52,
            daily: None,
        },
        lists: BTreeMap::new(),
        list_prefix: String::new(),
        dry_run: false,
    }
}

fn dynamics() -> Dynamics {
    Dynamics::new(&config(&[])).unwrap()
}

fn member(id: &str, email: &str) -> Member {
    Member {
        key: format!("person-{email}"),
        fields: vec![
            ("contactId".into(), json!(id)),
            ("emailaddress1".into(), json!(email)),
            ("firstname".into(), json!("Ada")),
        ],
        remote_id: None,
    }
}

fn answer(status: u16, content_type: &str, body: &str) -> WireResponse {
    WireResponse {
        status,
        headers: vec![("content-type".into(), content_type.into())],
        body: body.as_bytes().to_vec(),
    }
}

fn batch_answer(parts: &[(Option<u32>, &str, &str)]) -> WireResponse {
    let mut body = String::new();
    for (id, status, json) in parts {
        body.push_str("--batchresponse_1\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n");
        if let Some(id) = id {
            body.push_str(&format!("Content-ID: {id}\r\n"));
        }
        body.push_str(&format!("\r\nHTTP/1.1 {status}\r\n"));
        if !json.is_empty() {
            body.push_str("Content-Type: application/json; odata.metadata=minimal\r\n");
        }
        body.push_str(&format!("OData-Version: 4.0\r\n\r\n{json}\r\n"));
    }
    body.push_str("--batchresponse_1--\r\n");
    answer(200, "multipart/mixed; boundary=batchresponse_1", &body)
}

fn body_text(request: &WireRequest) -> String {
    String::from_utf8(request.body.clone()).unwrap()
}

#[test]
fn the_token_comes_from_entra_id_for_the_environment() {
    let d = dynamics();
    let request = d.token_request(SystemTime::now()).unwrap();
    assert_eq!(request.method, "POST");
    assert_eq!(
        request.url,
        "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
    );
    assert_eq!(
        body_text(&request),
        "client_id=app-1&client_secret=s3cr%26t%3Dx&grant_type=client_credentials&scope=https%3A%2F%2Fnorthwind.crm4.dynamics.com%2F.default"
    );
    assert!(!format!("{d:?}").contains("s3cr"));
    let ok = answer(
        200,
        "application/json",
        r#"{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":"eyJ0eXAi"}"#,
    );
    let token = d.parse_token(&ok).unwrap();
    assert_eq!(token.expires_in, Some(Duration::from_secs(3599)));
    let refused = answer(
        401,
        "application/json",
        r#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided."}"#,
    );
    let error = d.parse_token(&refused).unwrap_err();
    assert!(error.contains("invalid_client: AADSTS7000215"), "{error}");
}

#[test]
fn an_endpoint_takes_every_request_with_the_real_paths() {
    let mut c = config(&[]);
    c.endpoint = Some("http://127.0.0.1:9/".into());
    let d = Dynamics::new(&c).unwrap();
    let token = d.token_request(SystemTime::now()).unwrap();
    assert_eq!(
        token.url,
        "http://127.0.0.1:9/contoso.onmicrosoft.com/oauth2/v2.0/token"
    );
    assert!(
        body_text(&token).ends_with("scope=https%3A%2F%2Fnorthwind.crm4.dynamics.com%2F.default")
    );
    let batch = d
        .encode_for(
            "a",
            "B2B_Intent",
            None,
            Op::Upsert,
            &[member(GUID_1, "a@x.com")],
        )
        .unwrap();
    assert_eq!(batch.url, "http://127.0.0.1:9/api/data/v9.2/$batch");
    assert!(body_text(&batch).contains("PATCH http://127.0.0.1:9/api/data/v9.2/contacts("));
}

#[test]
fn joins_upsert_by_contact_id_and_set_the_column_active() {
    let d = dynamics();
    let request = d
        .encode_for(
            "a",
            "B2B_Intent.Surging",
            None,
            Op::Upsert,
            &[member(GUID_1, "a@x.com")],
        )
        .unwrap();
    assert_eq!(request.method, "POST");
    assert_eq!(
        request.url,
        "https://northwind.crm4.dynamics.com/api/data/v9.2/$batch"
    );
    let header = |name: &str| {
        request
            .headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(header("OData-Version").as_deref(), Some("4.0"));
    assert_eq!(header("OData-MaxVersion").as_deref(), Some("4.0"));
    assert_eq!(header("Accept").as_deref(), Some("application/json"));
    assert_eq!(header("Prefer").as_deref(), Some("odata.continue-on-error"));
    let boundary = multipart::boundary_of(&header("Content-Type").unwrap()).unwrap();
    let text = body_text(&request);
    assert!(text.starts_with(&format!("--{boundary}\r\n")));
    assert!(text.contains(&format!(
        "PATCH https://northwind.crm4.dynamics.com/api/data/v9.2/contacts({GUID_1}) HTTP/1.1\r\nContent-Type: application/json\r\n\r\n{{\"b2b_intent_surging\":\"active\",\"emailaddress1\":\"a@x.com\",\"firstname\":\"Ada\"}}\r\n"
    )), "{text}");
    assert!(!text.contains("If-Match"));
}

#[test]
fn leaves_clear_the_column_and_never_create() {
    let d = Dynamics::new(&config(&[
        (
            "audience_fields",
            SettingPlan::Table([("B2B_Intent".to_string(), "nw_intent".to_string())].into()),
        ),
        ("alternate_key", SettingPlan::Text("emailaddress1".into())),
    ]))
    .unwrap();
    let request = d
        .encode_for(
            "a",
            "B2B_Intent",
            None,
            Op::Remove,
            &[member(GUID_1, "o'neil@x.com")],
        )
        .unwrap();
    let text = body_text(&request);
    assert!(text.contains(
        "PATCH https://northwind.crm4.dynamics.com/api/data/v9.2/contacts(emailaddress1='o%27%27neil%40x.com') HTTP/1.1\r\nContent-Type: application/json\r\nIf-Match: *\r\n\r\n{\"nw_intent\":null}\r\n"
    ), "{text}");
    let join = d
        .encode_for(
            "a",
            "B2B_Intent",
            None,
            Op::Upsert,
            &[member(GUID_1, "a@x.com")],
        )
        .unwrap();
    assert!(
        body_text(&join).contains("\r\n\r\n{\"firstname\":\"Ada\",\"nw_intent\":\"active\"}\r\n")
    );
}

#[test]
fn members_that_cannot_be_addressed_and_bad_settings_are_errors() {
    let d = dynamics();
    let mut nameless = member(GUID_1, "a@x.com");
    nameless.fields.retain(|(c, _)| c != "contactId");
    let error = d
        .encode_for("a", "X", None, Op::Upsert, &[nameless])
        .unwrap_err();
    assert!(error.contains("no `contactId`"), "{error}");
    assert!(d.encode_for("a", "X", None, Op::Upsert, &[]).is_err());
    assert!(
        d.encode(None, Op::Upsert, &[member(GUID_1, "a@x.com")])
            .is_err()
    );
    let error = d
        .encode_for(
            "a",
            "3rd_party",
            None,
            Op::Upsert,
            &[member(GUID_1, "a@x.com")],
        )
        .unwrap_err();
    assert!(error.contains("audience_fields"), "{error}");
    for (key, value) in [
        ("alternate_key", SettingPlan::Text("EmailAddress1".into())),
        ("audience_fields", SettingPlan::Text("x".into())),
        (
            "environment_url",
            SettingPlan::Text("http://org.crm.dynamics.com".into()),
        ),
        (
            "environment_url",
            SettingPlan::Text("https://org.crm.dynamics.com/main.aspx".into()),
        ),
    ] {
        assert!(Dynamics::new(&config(&[(key, value)])).is_err(), "{key}");
    }
}

#[test]
fn operation_results_map_to_members_by_position() {
    let d = dynamics();
    let members = [
        member(GUID_1, "a@x.com"),
        member(GUID_2, "b@x.com"),
        member(GUID_1, "c@x.com"),
    ];
    let outcome = d.classify(
        Op::Upsert,
        &members,
        &batch_answer(&[
            (None, "204 No Content", ""),
            (None, "400 Bad Request", r#"{"error":{"code":"0x80044331","message":"The length of the 'jobtitle' attribute of the 'contact' entity exceeded the maximum allowed length of '100'."}}"#),
            (None, "429 Too Many Requests", r#"{"error":{"code":"0x80072322","message":"Number of requests exceeded the limit of 6000 over time window of 300 seconds."}}"#),
        ]),
    );
    let Outcome::Records(results) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(results[0], RecordResult::Accepted { remote_id: None });
    assert!(
        matches!(&results[1], RecordResult::Rejected { code, message } if code == "0x80044331" && message.contains("jobtitle"))
    );
    assert!(matches!(&results[2], RecordResult::Retry { code, .. } if code == "0x80072322"));
}

#[test]
fn content_ids_put_results_back_in_order() {
    let d = dynamics();
    let members = [member(GUID_1, "a@x.com"), member(GUID_2, "b@x.com")];
    let outcome = d.classify(
        Op::Remove,
        &members,
        &batch_answer(&[
            (Some(2), "404 Not Found", r#"{"error":{"code":"0x80040217","message":"contact With Id = 7a3d6c2e Does Not Exist"}}"#),
            (Some(1), "503 Service Unavailable", ""),
        ]),
    );
    assert_eq!(
        outcome,
        Outcome::Records(vec![
            RecordResult::Retry {
                code: "503".into(),
                message: String::new()
            },
            RecordResult::Accepted { remote_id: None },
        ])
    );
    // A 404 on an upsert is no success.
    let outcome = d.classify(
        Op::Upsert,
        &members[..1],
        &batch_answer(&[(None, "404 Not Found", "")]),
    );
    assert!(
        matches!(outcome, Outcome::Records(r) if matches!(r[0], RecordResult::Rejected { .. }))
    );
}

#[test]
fn answers_that_do_not_match_the_request_are_transient() {
    let d = dynamics();
    let members = [member(GUID_1, "a@x.com"), member(GUID_2, "b@x.com")];
    for broken in [
        batch_answer(&[(None, "204 No Content", "")]),
        batch_answer(&[
            (Some(1), "204 No Content", ""),
            (Some(1), "204 No Content", ""),
        ]),
        batch_answer(&[
            (Some(1), "204 No Content", ""),
            (Some(3), "204 No Content", ""),
        ]),
        answer(200, "application/json", "{}"),
        answer(
            200,
            "multipart/mixed; boundary=x",
            "--x\r\nContent-Type: application/http\r\n\r\nHTTP/1.1 204\r\n",
        ),
    ] {
        let outcome = d.classify(Op::Upsert, &members, &broken);
        assert!(
            matches!(&outcome, Outcome::Transient { code, .. } if code == "malformed"),
            "{outcome:?}"
        );
    }
}

#[test]
fn batch_level_statuses_map_to_outcomes() {
    let d = dynamics();
    let members = [member(GUID_1, "a@x.com")];
    let classify = |status: u16, body: &str| {
        d.classify(
            Op::Upsert,
            &members,
            &answer(status, "application/json", body),
        )
    };
    let mut throttled = answer(
        429,
        "application/json",
        r#"{"error":{"code":"0x80072321","message":"Combined execution time of incoming requests exceeded limit of 1,200,000 milliseconds over time window of 300 seconds."}}"#,
    );
    throttled.headers.push(("retry-after".into(), "7".into()));
    assert_eq!(
        d.classify(Op::Upsert, &members, &throttled),
        Outcome::Throttled {
            retry_after: Some(Duration::from_secs(7)),
            code: "0x80072321".into()
        }
    );
    assert_eq!(classify(401, ""), Outcome::AuthExpired);
    assert!(matches!(classify(503, ""), Outcome::Transient { .. }));
    assert!(
        matches!(classify(403, r#"{"error":{"code":"0x80040220","message":"Principal user is missing prvWritecontact privilege"}}"#), Outcome::Fatal { code, .. } if code == "0x80040220")
    );
    assert!(matches!(
        classify(400, "bad batch"),
        Outcome::Refused { status: 400, .. }
    ));
    assert!(matches!(
        classify(413, ""),
        Outcome::Refused { status: 413, .. }
    ));
}
