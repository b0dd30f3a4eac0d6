use std::collections::BTreeMap;

use serde_json::json;

use super::*;
use crate::deliver::config::Limits;
use crate::deliver::vendor::{JobState, RecordResult};

fn config(settings: &[(&str, SettingPlan)]) -> Config {
    let mut all: BTreeMap<String, SettingPlan> = [
        ("domain", SettingPlan::Text("acme.my.salesforce.com".into())),
        ("object", SettingPlan::Text("contact".into())),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    all.extend(settings.iter().map(|(k, v)| (k.to_string(), v.clone())));
    Config {
        name: "crm".into(),
        kind: "salesforce".into(),
        endpoint: None,
        settings: all,
        secrets: [("client_id", "id&1"), ("client_secret", "s=2")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), SecretString::from(v.to_string())))
            .collect(),
        limits: Limits {
            batch_size: 200,
            max_bytes: None,
            window: None,
            concurrent: 4,
            daily: None,
        },
        lists: BTreeMap::new(),
        list_prefix: String::new(),
        dry_run: false,
    }
}

fn sf(settings: &[(&str, SettingPlan)]) -> Salesforce {
    Salesforce::new(&config(settings)).expect("builds")
}

fn member(n: u32) -> Member {
    Member {
        key: format!("p{n}"),
        fields: vec![
            ("salesforceId".into(), json!(format!("003{n:015}"))),
            ("LastName".into(), json!(format!("Last{n}"))),
            ("Email".into(), json!(format!("p{n}@example.com"))),
            ("Title".into(), Value::Null),
        ],
        remote_id: None,
    }
}

fn answer(status: u16, body: &str) -> WireResponse {
    WireResponse {
        status,
        headers: vec![("sforce-limit-info".into(), "api-usage=18/15000".into())],
        body: body.as_bytes().to_vec(),
    }
}

#[test]
fn the_token_request_is_client_credentials_on_my_domain() {
    let request = sf(&[]).token_request(SystemTime::now()).unwrap();
    assert_eq!(request.method, "POST");
    assert_eq!(
        request.url,
        "https://acme.my.salesforce.com/services/oauth2/token"
    );
    assert_eq!(
        String::from_utf8(request.body).unwrap(),
        "grant_type=client_credentials&client_id=id%261&client_secret=s%3D2"
    );
    let token = sf(&[])
        .parse_token(&answer(
            200,
            r#"{"access_token":"00D!x","instance_url":"https://acme.my.salesforce.com","token_type":"Bearer","issued_at":"1"}"#,
        ))
        .unwrap();
    assert_eq!(token.expires_in, None);
    let refused = sf(&[])
        .parse_token(&answer(
            400,
            r#"{"error":"invalid_client","error_description":"invalid client credentials"}"#,
        ))
        .unwrap_err();
    assert!(refused.contains("invalid client credentials"), "{refused}");
}

#[test]
fn a_join_sets_the_fields_and_the_audience_field_by_id() {
    let request = sf(&[])
        .encode_for("a", "Hot Leads", None, Op::Upsert, &[member(1)])
        .unwrap();
    assert_eq!(request.method, "PATCH");
    assert_eq!(
        request.url,
        "https://acme.my.salesforce.com/services/data/v62.0/composite/sobjects/Contact/Id"
    );
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(
        body,
        json!({"allOrNone": false, "records": [{
            "attributes": {"type": "Contact"},
            "Id": "003000000000000001",
            "LastName": "Last1",
            "Email": "p1@example.com",
            "Hot_Leads__c": "active",
        }]})
    );
}

#[test]
fn a_leave_clears_the_audience_field_by_the_external_id() {
    let sf = sf(&[
        ("external_id", SettingPlan::Text("Email".into())),
        ("object", SettingPlan::Text("lead".into())),
        (
            "audience_fields",
            SettingPlan::Table([("hot".to_string(), "Hot__c".to_string())].into()),
        ),
    ]);
    let request = sf
        .encode_for("a", "hot", None, Op::Remove, &[member(2)])
        .unwrap();
    assert!(request.url.ends_with("/composite/sobjects/Lead/Email"));
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(
        body["records"],
        json!([{"attributes": {"type": "Lead"}, "Email": "p2@example.com", "Hot__c": null}])
    );
    let mut nameless = member(3);
    nameless.fields.retain(|(c, _)| c != "Email");
    let error = sf
        .encode_for("a", "hot", None, Op::Upsert, &[nameless])
        .unwrap_err();
    assert!(error.contains("has no `Email`"), "{error}");
}

#[test]
fn record_results_follow_the_published_example() {
    let members = [member(1), member(2), member(3)];
    let body = r#"[
        {"id":"003000000000000001","success":true,"errors":[],"created":false},
        {"success":false,"errors":[{"statusCode":"REQUIRED_FIELD_MISSING","message":"Required fields are missing: [LastName]","fields":["LastName"]}]},
        {"success":false,"errors":[{"statusCode":"UNABLE_TO_LOCK_ROW","message":"unable to obtain exclusive access","fields":[]}]}
    ]"#;
    let outcome = sf(&[]).classify(Op::Upsert, &members, &answer(200, body));
    assert_eq!(
        outcome,
        Outcome::Records(vec![
            RecordResult::Accepted {
                remote_id: Some("003000000000000001".into())
            },
            RecordResult::Rejected {
                code: "REQUIRED_FIELD_MISSING".into(),
                message: "Required fields are missing: [LastName] (fields: LastName)".into()
            },
            RecordResult::Retry {
                code: "UNABLE_TO_LOCK_ROW".into(),
                message: "unable to obtain exclusive access".into()
            },
        ])
    );
    let short = sf(&[]).classify(Op::Upsert, &members, &answer(200, "[]"));
    assert!(matches!(short, Outcome::Transient { .. }), "{short:?}");
}

#[test]
fn error_answers_map_to_outcomes() {
    let sf = sf(&[]);
    let error = |status, code: &str, message: &str| {
        let body = json!([{ "errorCode": code, "message": message }]).to_string();
        sf.classify(Op::Upsert, &[member(1)], &answer(status, &body))
    };
    assert_eq!(
        error(401, "INVALID_SESSION_ID", "Session expired or invalid"),
        Outcome::AuthExpired
    );
    assert!(matches!(
        error(
            403,
            "REQUEST_LIMIT_EXCEEDED",
            "TotalRequests Limit exceeded."
        ),
        Outcome::QuotaExhausted { .. }
    ));
    assert!(matches!(
        error(
            403,
            "REQUEST_LIMIT_EXCEEDED",
            "ConcurrentPerOrgLongTxn Limit exceeded."
        ),
        Outcome::Throttled { .. }
    ));
    assert!(matches!(
        error(503, "SERVER_UNAVAILABLE", "down"),
        Outcome::Transient { .. }
    ));
    assert!(matches!(
        error(400, "INVALID_FIELD", "No such column 'Hot__c'"),
        Outcome::Fatal { .. }
    ));
    assert!(matches!(
        error(400, "JSON_PARSER_ERROR", "bad"),
        Outcome::Refused { status: 400, .. }
    ));
    assert_eq!(sf.api_usage(&answer(200, "[]")), Some((18, 15_000)));
    assert_eq!(
        api_usage("per-app-api-usage=1/2,api-usage=7/100"),
        Some((7, 100))
    );
}

#[test]
fn bad_settings_are_clear_errors() {
    for (setting, value, says) in [
        ("bulk_threshold", SettingPlan::Integer(0), "at least 1"),
        ("domain", SettingPlan::Text("acme/x".into()), "My Domain"),
        (
            "object",
            SettingPlan::Text("account".into()),
            "`contact` or `lead`",
        ),
        (
            "audience_fields",
            SettingPlan::Text("x".into()),
            "not a table",
        ),
    ] {
        let error = Salesforce::new(&config(&[(setting, value)])).unwrap_err();
        assert!(error.contains(says), "{setting}: {error}");
    }
    let long = sf(&[])
        .encode_for("a", &"x".repeat(41), None, Op::Upsert, &[member(1)])
        .unwrap_err();
    assert!(long.contains("at most 40"), "{long}");
}

#[test]
fn a_bulk_job_uploads_csv_and_reads_results_back_by_match_key() {
    let sf = sf(&[]);
    let members: Vec<Member> = (1..=4).map(member).collect();
    let (uploads, unsendable) = sf.uploads("hot", Op::Upsert, &members);
    assert!(unsendable.is_empty());
    assert_eq!(
        String::from_utf8(uploads[0].body.clone()).unwrap(),
        "Id,LastName,Email,hot__c\n\
         003000000000000001,Last1,p1@example.com,active\n\
         003000000000000002,Last2,p2@example.com,active\n\
         003000000000000003,Last3,p3@example.com,active\n\
         003000000000000004,Last4,p4@example.com,active\n"
    );
    let create: Value = serde_json::from_slice(&sf.create_job().body).unwrap();
    assert_eq!(
        create,
        json!({"object": "Contact", "externalIdFieldName": "Id", "contentType": "CSV", "operation": "upsert", "lineEnding": "LF"})
    );
    let job = sf
        .parse_job(&answer(200, r#"{"id":"750x","state":"JobComplete"}"#))
        .unwrap();
    assert_eq!(job.state, JobState::Complete);
    let answers = [
        answer(
            200,
            "sf__Id,sf__Created,Id,LastName,Email,hot__c\n003000000000000003,false,003000000000000003,Last3,p3@example.com,active\n",
        ),
        answer(
            200,
            "sf__Id,sf__Error,Id,LastName,Email,hot__c\n,INVALID_EMAIL_ADDRESS:Email: invalid email address: p1:Email --,003000000000000001,Last1,p1@example.com,active\n",
        ),
        answer(
            200,
            "Id,LastName,Email,hot__c\n003000000000000004,Last4,p4@example.com,active\n",
        ),
    ];
    let results = sf.parse_results(&members, &answers).unwrap();
    assert_eq!(
        results,
        vec![
            Some(RecordResult::Rejected {
                code: "INVALID_EMAIL_ADDRESS".into(),
                message: "Email: invalid email address: p1:Email".into()
            }),
            None,
            Some(RecordResult::Accepted {
                remote_id: Some("003000000000000003".into())
            }),
            None,
        ]
    );
}

#[test]
fn bulk_uploads_split_at_the_byte_limit() {
    let sf = sf(&[]);
    let members: Vec<Member> = (1..=10).map(member).collect();
    let (uploads, unsendable) = sf.uploads_within("hot", Op::Remove, &members, 80);
    assert!(unsendable.is_empty());
    assert!(uploads.len() > 1);
    assert!(uploads.iter().all(|u| u.body.len() <= 80));
    assert!(uploads.iter().all(|u| u.body.starts_with(b"Id,hot__c\n")));
    assert_eq!(uploads.iter().map(|u| u.members.len()).sum::<usize>(), 10);
    let text = String::from_utf8(uploads[0].body.clone()).unwrap();
    assert!(text.contains("003000000000000001,#N/A\n"), "{text}");
    let (none, too_big) = sf.uploads_within("hot", Op::Remove, &members[..1], 20);
    assert!(none.is_empty() && too_big.len() == 1);
}
