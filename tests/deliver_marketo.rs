//! Marketo Engage end to end on loopback: the vendor file driven by the
//! delivery executor against a fake instance written from Adobe's published
//! REST API, under its limits, expiring tokens and seeded failures; and the
//! dry run's requests, snapshotted.
#![cfg(feature = "deliver")]

#[path = "support/fake/mod.rs"]
mod fake;
#[path = "support/fakes/marketo.rs"]
mod marketo_fake;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use accord::deliver::changes::{MemoryJournal, Work};
use accord::deliver::send::{SendOptions, deliver};
use accord::deliver::throttle::Throttle;
use accord::deliver::{
    Config, Limits, ListRef, Member, Op, Outcome, RecordResult, Vendor, WireRequest, WireResponse,
    vendors,
};
use accord::plan::SettingPlan;
use fake::{Chaos, FakeLimits, FakeServer, Policy};
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
        dry_run: false,
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

fn work(list: Option<ListRef>, adds: Vec<Member>, removes: Vec<Member>) -> Work {
    Work {
        activation: "intent_marketo".into(),
        audience: AUDIENCE.into(),
        list,
        adds,
        removes,
    }
}

fn options() -> SendOptions {
    SendOptions {
        // Some tests tell the client more than the fake allows, so a request
        // can lose the race for a slot many times on a loaded machine: these
        // tests are about refusals being waited out, not the attempt budget.
        max_attempts: 40,
        base_backoff: Duration::from_millis(20),
        // Marketo's advice on 606 is to wait out the window (1 s here).
        max_backoff: Duration::from_secs(1),
        ..SendOptions::default()
    }
}

/// One run of the executor against the fake.
struct Run {
    vendor: Box<dyn Vendor>,
    config: Config,
}

impl Run {
    fn new(server: &FakeServer, limits: Limits) -> Run {
        let config = config(Some(server.url()), limits);
        let vendor = vendors::build(&config).expect("marketo builds");
        Run { vendor, config }
    }

    async fn send(&self, items: Vec<Work>) -> MemoryJournal {
        let throttle = Throttle::new(&self.config.limits, 0);
        let mut journal = MemoryJournal::default();
        let report = deliver(
            self.vendor.as_ref(),
            &self.config,
            &throttle,
            items,
            &mut journal,
            &options(),
        )
        .await;
        let total = report.total();
        assert_eq!(total.failed, None, "{report:?}");
        assert_eq!(total.pending, 0, "{report:?}");
        journal
    }
}

/// The lead ids the upserts returned, by member key: what the store keeps
/// so that later removes can name the lead.
fn lead_ids(journal: &MemoryJournal) -> BTreeMap<String, String> {
    journal
        .records
        .iter()
        .filter(|r| r.op == Op::Upsert)
        .filter_map(|r| match &r.result {
            RecordResult::Accepted {
                remote_id: Some(id),
            } => Some((r.key.clone(), id.clone())),
            _ => None,
        })
        .collect()
}

fn known(n: usize, ids: &BTreeMap<String, String>) -> Member {
    let mut member = person(n);
    member.remote_id = Some(ids[&member.key].clone());
    member
}

fn emails(range: impl IntoIterator<Item = usize>) -> BTreeSet<String> {
    range.into_iter().map(email).collect()
}

/// Run 1 adds people 0..40; run 2 adds 40..50 and removes 0..15, naming
/// the leads by the ids run 1 learnt.
async fn adds_then_removes(server: &FakeServer, client: Limits) {
    let run = Run::new(server, client);
    let first = run
        .send(vec![work(None, (0..40).map(person).collect(), vec![])])
        .await;
    let ids = lead_ids(&first);
    assert_eq!(ids.len(), 40);
    let list_id = first.list_ids[&("intent_marketo".to_string(), AUDIENCE.to_string())].clone();
    let list = ListRef {
        audience: AUDIENCE.into(),
        name: LIST_NAME.into(),
        id: list_id,
    };
    // Marketo does not count identity calls against its limits, the fake's
    // gateway does: let run 1's window pass before run 2 fetches its token.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let removes = (0..15).map(|n| known(n, &ids)).collect();
    run.send(vec![work(
        Some(list),
        (40..50).map(person).collect(),
        removes,
    )])
    .await;
}

#[tokio::test]
async fn adds_then_removes_leave_exactly_the_audience_within_the_limits() {
    let policy = Policy::open()
        .limits(fake_limits(10, 3))
        .latency(Duration::from_millis(20));
    let (server, marketo) = Marketo::start(policy, Options::default());
    adds_then_removes(&server, limits(7, 10, 3)).await;

    assert_eq!(marketo.members(LIST_NAME), emails(15..50));
    assert_eq!(marketo.list_names(), [LIST_NAME]);
    let lead = marketo.lead(&email(3)).expect("upserted");
    assert_eq!(lead.fields["b2bTier"], "high");
    let snapshot = server.snapshot();
    assert_eq!(
        snapshot.violations, 0,
        "the client kept to the window and the cap"
    );
    assert_eq!(snapshot.max_mutations(), 1);
}

#[tokio::test]
async fn rate_and_concurrency_refusals_606_and_615_are_waited_out() {
    // The instance allows less than the client was told: every excess call
    // is answered 606 (window) or 615 (in flight), inside an HTTP 200.
    let policy = Policy::open()
        .limits(fake_limits(6, 2))
        .latency(Duration::from_millis(40));
    let (server, marketo) = Marketo::start(policy, Options::default());
    adds_then_removes(&server, limits(5, 8, 3)).await;

    assert_eq!(marketo.members(LIST_NAME), emails(15..50));
    let snapshot = server.snapshot();
    assert!(
        snapshot.throttled > 0,
        "the fake refused some calls: {snapshot:?}"
    );
    // The fake counts refused calls in its window, as Marketo does: a
    // client that kept to the limit it was told would be refused on and
    // on. It learns the instance's limits from the first refusals instead.
    assert!(
        snapshot.throttled <= 12,
        "refusals are a handful, not a storm: {} of {} calls",
        snapshot.throttled,
        snapshot.requests
    );
    let refused_paths: BTreeSet<_> = snapshot
        .log
        .iter()
        .filter(|e| matches!(e.admission, fake::Admission::Refused(_)))
        .map(|e| e.path.clone())
        .collect();
    assert!(!refused_paths.is_empty());
    assert_eq!(snapshot.max_mutations(), 1);
}

#[tokio::test]
async fn a_token_that_dies_mid_run_is_fetched_again() {
    // Tokens work for 300 ms but claim an hour: the executor learns of the
    // expiry only from Marketo's 601/602 answers.
    let fake_options = Options {
        token_lifetime: Duration::from_millis(300),
        stated_lifetime: Some(Duration::from_secs(3600)),
        ..Options::default()
    };
    let policy = Policy::open().latency(Duration::from_millis(30));
    let (server, marketo) = Marketo::start(policy, fake_options);
    adds_then_removes(&server, limits(3, 100, 2)).await;

    assert_eq!(marketo.members(LIST_NAME), emails(15..50));
    assert!(
        marketo.tokens_issued() >= 2,
        "issued {}",
        marketo.tokens_issued()
    );
}

#[tokio::test]
async fn seeded_chaos_ends_exact_with_no_member_changed_twice() {
    let chaos = Chaos {
        seed: 20261130,
        p_429: 0.1,
        p_500: 0.1,
        p_drop_after_apply: 0.1,
    };
    let policy = Policy::open()
        .chaos(chaos)
        .exempt_from_chaos("/identity/oauth/token")
        // A creation whose answer is lost is resent as is, and Marketo
        // refuses a second list of one name (709); lists are tested above.
        .exempt_from_chaos("/rest/asset/v1/staticLists.json");
    let (server, marketo) = Marketo::start(policy, Options::default());
    adds_then_removes(&server, limits(4, 200, 4)).await;

    assert_eq!(marketo.members(LIST_NAME), emails(15..50));
    assert_eq!(marketo.list_names(), [LIST_NAME]);
    let snapshot = server.snapshot();
    assert!(snapshot.dropped > 0 && snapshot.chaos_500 > 0 && snapshot.throttled > 0);
    assert_eq!(snapshot.max_mutations(), 1, "{:?}", snapshot.mutations);
}

#[tokio::test]
async fn a_rerun_with_nothing_changed_sends_nothing() {
    let (server, _marketo) = Marketo::start(Policy::open(), Options::default());
    let run = Run::new(&server, limits(300, 100, 10));
    run.send(Vec::new()).await;
    assert_eq!(server.snapshot().requests, 0);
}

#[tokio::test]
async fn a_missing_list_without_a_folder_fails_with_what_to_set() {
    let (server, _marketo) = Marketo::start(Policy::open(), Options::default());
    let mut config = config(Some(server.url()), limits(300, 100, 10));
    config.settings.remove("folder");
    let vendor = vendors::build(&config).unwrap();
    let throttle = Throttle::new(&config.limits, 0);
    let mut journal = MemoryJournal::default();
    let items = vec![work(None, (0..3).map(person).collect(), vec![])];
    let report = deliver(
        vendor.as_ref(),
        &config,
        &throttle,
        items,
        &mut journal,
        &options(),
    )
    .await;
    let failed = report.total().failed.expect("no list, no folder");
    assert!(
        failed.contains("set `folder`") && failed.contains("`lists`"),
        "{failed}"
    );
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
        outcomes.contains(&Outcome::Busy { code: "615".into() }),
        "{outcomes:?}"
    );
}
