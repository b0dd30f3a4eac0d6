//! Marketo Engage end to end on loopback: the vendor file driven by the
//! delivery executor against a fake instance written from Adobe's published
//! REST API, under its limits, expiring tokens and seeded failures; and the
//! dry run's requests, snapshotted.
#![cfg(feature = "deliver")]

#[path = "support/fake/mod.rs"]
mod fake;
#[path = "support/fakes/marketo.rs"]
mod marketo_fake;

use std::collections::BTreeMap;
use std::time::Duration;

use accord::deliver::{
    Config, Limits, ListRef, Member, Op, Outcome, RecordResult, Vendor, WireRequest, WireResponse,
    vendors,
};
use accord::plan::SettingPlan;
use fake::{FakeLimits, FakeServer, Policy};
use marketo_fake::{Marketo, Options};
use secrecy::SecretString;
use serde_json::json;

const AUDIENCE: &str = "B2B_Intent_Surging";
const LIST_NAME: &str = "accord_B2B_Intent_Surging";

/// The destination as the run builds it, pointed at the fake.
fn config(endpoint: Option<String>, limits: Limits) -> Config {
    let secrets = [
        ("client_id", "fake-client"),
        ("client_secret", "fake-secret"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), SecretString::from(v.to_string())))
    .collect();
    let settings = [
        ("munchkin_id", SettingPlan::Text("417-NWA-902".into())),
        ("folder", SettingPlan::Integer(1034)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    Config {
        name: "marketo".into(),
        kind: "marketo_engage".into(),
        endpoint,
        settings,
        secrets,
        limits,
        lists: BTreeMap::new(),
        list_prefix: "accord_".into(),
    }
}

/// Marketo's limits scaled down: `calls` per second, `concurrent` in flight.
fn limits(batch_size: usize, calls: u32, concurrent: usize) -> Limits {
    Limits {
        batch_size,
        max_bytes: Some(1_048_576),
        window: Some((calls, Duration::from_secs(1))),
        concurrent,
        daily: None,
    }
}

fn fake_limits(calls: u32, concurrent: u32) -> FakeLimits {
    FakeLimits {
        calls,
        per: Duration::from_secs(1),
        concurrent,
        daily: None,
    }
}

fn email(n: usize) -> String {
    format!("person{n:03}@example.com")
}

fn person(n: usize) -> Member {
    Member {
        key: format!("person-{n}"),
        fields: vec![
            ("email".into(), json!(email(n))),
            ("firstName".into(), json!(format!("First{n}"))),
            ("b2bTier".into(), json!("high")),
        ],
        remote_id: None,
    }
}

#[test]
fn the_dry_run_requests_of_a_few_members() {
    let config = config(None, limits(300, 100, 10));
    let vendor = vendors::build(&config).unwrap();
    let members: Vec<Member> = (1..=3).map(person).collect();
    let placeheld: Vec<Member> = members
        .iter()
        .map(|m| Member {
            remote_id: Some(vendor.placeholder_id(m)),
            ..m.clone()
        })
        .collect();
    let list = ListRef {
        audience: AUDIENCE.into(),
        name: LIST_NAME.into(),
        id: format!("<list id of {LIST_NAME}>"),
    };
    let requests = json!({
        "find_list": vendor.find_list_request(LIST_NAME).unwrap().redacted(),
        "create_list": vendor.create_list_request(LIST_NAME).unwrap().redacted(),
        "upsert": vendor.encode(None, Op::Upsert, &members).unwrap().redacted(),
        "add": vendor.encode(Some(&list), Op::Add, &placeheld).unwrap().redacted(),
        "remove": vendor.encode(Some(&list), Op::Remove, &placeheld[..1]).unwrap().redacted(),
    });
    insta::with_settings!({
        snapshot_path => "../snapshots/deliver_marketo",
        prepend_module_to_snapshot => false,
        omit_expression => true,
    }, {
        insta::assert_json_snapshot!("dry_run_requests", requests);
    });
}

/// One request on the wire, as the executor sends it (credentials added by
/// the vendor's `authorize`).
async fn exchange(
    vendor: &dyn Vendor,
    mut request: WireRequest,
    token: Option<&SecretString>,
) -> WireResponse {
    if let Some(token) = token {
        vendor.authorize(&mut request, token);
    }
    let method = reqwest::Method::from_bytes(request.method.as_bytes()).unwrap();
    let mut builder = reqwest::Client::new().request(method, &request.url);
    for (name, value) in &request.headers {
        builder = builder.header(name, value);
    }
    for (name, value) in &request.secret_headers {
        builder = builder.header(name, secrecy::ExposeSecret::expose_secret(value));
    }
    let response = builder
        .body(request.body.clone())
        .send()
        .await
        .expect("loopback answers");
    WireResponse {
        status: response.status().as_u16(),
        headers: response
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
            .collect(),
        body: response.bytes().await.unwrap().to_vec(),
    }
}

fn marketo_for(server: &FakeServer) -> Box<dyn Vendor> {
    vendors::build(&config(Some(server.url()), limits(300, 100, 10))).expect("marketo builds")
}

async fn token(vendor: &dyn Vendor) -> SecretString {
    let request = vendor.token_request(std::time::SystemTime::now()).unwrap();
    vendor
        .parse_token(&exchange(vendor, request, None).await)
        .expect("a token")
        .value
}

fn accepted_ids(outcome: Outcome) -> Vec<String> {
    let Outcome::Records(records) = outcome else {
        panic!("records expected: {outcome:?}");
    };
    records
        .into_iter()
        .map(|r| match r {
            RecordResult::Accepted { remote_id } => remote_id.unwrap_or_default(),
            other => panic!("accepted expected: {other:?}"),
        })
        .collect()
}

#[tokio::test]
async fn every_call_the_vendor_makes_is_understood_both_ways() {
    let (server, marketo) = Marketo::start(Policy::open(), Options::default());
    let vendor = marketo_for(&server);
    let token = token(vendor.as_ref()).await;
    let t = Some(&token);

    let find = vendor.find_list_request(LIST_NAME).unwrap();
    let found = exchange(vendor.as_ref(), find.clone(), t).await;
    assert_eq!(vendor.classify(Op::Add, &[], &found), Outcome::Accepted);
    assert_eq!(vendor.parse_found_list(LIST_NAME, &found), Ok(None));
    let create = vendor.create_list_request(LIST_NAME).unwrap();
    let created = exchange(vendor.as_ref(), create, t).await;
    let list_id = vendor.parse_created_list(&created).expect("created");
    let found = exchange(vendor.as_ref(), find, t).await;
    assert_eq!(
        vendor.parse_found_list(LIST_NAME, &found),
        Ok(Some(list_id.clone()))
    );

    let people: Vec<Member> = (0..4).map(person).collect();
    let upsert = vendor.encode(None, Op::Upsert, &people).unwrap();
    let upserted = exchange(vendor.as_ref(), upsert, t).await;
    let ids = accepted_ids(vendor.classify(Op::Upsert, &people, &upserted));
    let known: Vec<Member> = people
        .iter()
        .zip(&ids)
        .map(|(m, id)| Member {
            remote_id: Some(id.clone()),
            ..m.clone()
        })
        .collect();
    let list = ListRef {
        audience: AUDIENCE.into(),
        name: LIST_NAME.into(),
        id: list_id,
    };
    let add = vendor.encode(Some(&list), Op::Add, &known).unwrap();
    let added = exchange(vendor.as_ref(), add, t).await;
    accepted_ids(vendor.classify(Op::Add, &known, &added));
    assert_eq!(marketo.members(LIST_NAME).len(), 4);

    // The second remove finds the lead already out of the list (1015): done.
    for _ in 0..2 {
        let remove = vendor.encode(Some(&list), Op::Remove, &known[..2]).unwrap();
        let removed = exchange(vendor.as_ref(), remove, t).await;
        accepted_ids(vendor.classify(Op::Remove, &known[..2], &removed));
    }
    assert_eq!(
        marketo.members(LIST_NAME),
        [email(2), email(3)].into_iter().collect()
    );
    assert_eq!(
        marketo.lead(&email(1)).unwrap().fields["firstName"],
        "First1"
    );
}

#[tokio::test]
async fn marketo_refusals_inside_http_200_are_classified() {
    let expiring = Options {
        token_lifetime: Duration::from_millis(50),
        ..Options::default()
    };
    let (server, _m) = Marketo::start(Policy::open(), expiring);
    let vendor = marketo_for(&server);
    let people = [person(1)];
    let upsert = vendor.encode(None, Op::Upsert, &people).unwrap();
    let stale = token(vendor.as_ref()).await;
    tokio::time::sleep(Duration::from_millis(80)).await;
    let answer = exchange(vendor.as_ref(), upsert.clone(), Some(&stale)).await;
    assert_eq!(
        vendor.classify(Op::Upsert, &people, &answer),
        Outcome::AuthExpired
    );
    let forged = SecretString::from("not-a-token".to_string());
    let answer = exchange(vendor.as_ref(), upsert.clone(), Some(&forged)).await;
    assert_eq!(
        vendor.classify(Op::Upsert, &people, &answer),
        Outcome::AuthExpired
    );

    let window = Policy::open().limits(FakeLimits {
        daily: None,
        ..fake_limits(2, 10)
    });
    let (server, _m) = Marketo::start(window, Options::default());
    let vendor = marketo_for(&server);
    let upsert = vendor.encode(None, Op::Upsert, &people).unwrap();
    let t = token(vendor.as_ref()).await;
    exchange(vendor.as_ref(), upsert.clone(), Some(&t)).await;
    let answer = exchange(vendor.as_ref(), upsert.clone(), Some(&t)).await;
    assert_eq!(
        vendor.classify(Op::Upsert, &people, &answer),
        Outcome::Throttled {
            retry_after: None,
            code: "606".into()
        }
    );

    let daily = Policy::open().limits(FakeLimits {
        daily: Some(2),
        ..fake_limits(100, 10)
    });
    let (server, _m) = Marketo::start(daily, Options::default());
    let vendor = marketo_for(&server);
    let upsert = vendor.encode(None, Op::Upsert, &people).unwrap();
    let t = token(vendor.as_ref()).await;
    exchange(vendor.as_ref(), upsert.clone(), Some(&t)).await;
    let answer = exchange(vendor.as_ref(), upsert.clone(), Some(&t)).await;
    assert!(matches!(
        vendor.classify(Op::Upsert, &people, &answer),
        Outcome::QuotaExhausted { code, .. } if code == "607"
    ));

    let in_flight = Policy::open()
        .limits(fake_limits(100, 1))
        .latency(Duration::from_millis(200));
    let (server, _m) = Marketo::start(in_flight, Options::default());
    let vendor = marketo_for(&server);
    let upsert = vendor.encode(None, Op::Upsert, &people).unwrap();
    let t = token(vendor.as_ref()).await;
    let (a, b) = tokio::join!(
        exchange(vendor.as_ref(), upsert.clone(), Some(&t)),
        exchange(vendor.as_ref(), upsert.clone(), Some(&t)),
    );
    let outcomes = [
        vendor.classify(Op::Upsert, &people, &a),
        vendor.classify(Op::Upsert, &people, &b),
    ];
    assert!(
        outcomes.contains(&Outcome::Throttled {
            retry_after: None,
            code: "615".into()
        }),
        "{outcomes:?}"
    );
}
