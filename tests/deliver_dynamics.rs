//! Dynamics 365 end to end on loopback: the vendor file driven by the
//! delivery executor against a fake Dataverse environment and Entra ID
//! token service written from Microsoft's published contracts, under
//! service protection limits, expiring tokens, per-operation failures and
//! seeded chaos; and the dry run's requests, snapshotted.
#![cfg(feature = "deliver")]

#[path = "support/fakes/dynamics.rs"]
mod dynamics_fake;
#[path = "support/fake/mod.rs"]
mod fake;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use accord::deliver::changes::{DeliveryReport, MemoryJournal, Work};
use accord::deliver::send::{SendOptions, deliver};
use accord::deliver::throttle::Throttle;
use accord::deliver::{Config, Limits, Member, Vendor, secrets, vendors};
use accord::plan::SettingPlan;
use dynamics_fake::{Dataverse, Options};
use fake::{Admission, Chaos, FakeLimits, FakeServer, Policy};
use secrecy::SecretString;
use serde_json::{Value, json};

const AUDIENCE: &str = "B2B_Intent_Surging";
/// The audience's default column.
const COLUMN: &str = "b2b_intent_surging";
const ENVIRONMENT: &str = "https://northwind-emea.crm4.dynamics.com";
const TOKEN_PATH: &str = "/contoso.onmicrosoft.com/oauth2/v2.0/token";

/// The destination as the run builds it, pointed at the fake.
fn config(endpoint: Option<String>, limits: Limits, extra: &[(&str, SettingPlan)]) -> Config {
    let secrets = [
        ("tenant_id", "contoso.onmicrosoft.com"),
        ("client_id", "fake-app"),
        ("client_secret", "fake-secret"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), SecretString::from(v.to_string())))
    .collect();
    let mut settings: BTreeMap<String, SettingPlan> = [
        ("environment_url", SettingPlan::Text(ENVIRONMENT.into())),
        (
            "tenant_id",
            SettingPlan::Reference("env:DYNAMICS_TENANT_ID".into()),
        ),
        (
            "client_id",
            SettingPlan::Reference("env:DYNAMICS_CLIENT_ID".into()),
        ),
        (
            "client_secret",
            SettingPlan::Reference("env:DYNAMICS_CLIENT_SECRET".into()),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    settings.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
    Config {
        name: "dynamics_emea".into(),
        kind: "dynamics365".into(),
        endpoint,
        settings,
        secrets,
        limits,
        lists: BTreeMap::new(),
        list_prefix: String::new(),
        dry_run: false,
    }
}

/// Dataverse's limits scaled down: `calls` per second, `concurrent` in flight.
fn limits(batch_size: usize, calls: u32, concurrent: usize) -> Limits {
    Limits {
        batch_size,
        max_bytes: None,
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

fn guid(n: usize) -> String {
    format!("7a3d6c2e-1b4f-4c8a-9e2d-{n:012}")
}

fn email(n: usize) -> String {
    format!("person{n:03}@example.com")
}

fn person(n: usize) -> Member {
    Member {
        key: format!("person-{n}"),
        fields: vec![
            ("contactId".into(), json!(guid(n))),
            ("firstname".into(), json!(format!("First{n}"))),
            ("emailaddress1".into(), json!(email(n))),
            ("nw_b2btier".into(), json!("high")),
        ],
        remote_id: None,
    }
}

fn work(adds: Vec<Member>, removes: Vec<Member>) -> Work {
    Work {
        activation: "intent_crm".into(),
        audience: AUDIENCE.into(),
        list: None,
        adds,
        removes,
    }
}

fn options() -> SendOptions {
    SendOptions {
        // Some tests tell the client more than the fake allows: they are
        // about refusals being waited out, not the attempt budget.
        max_attempts: 40,
        base_backoff: Duration::from_millis(20),
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
    fn new(server: &FakeServer, limits: Limits, extra: &[(&str, SettingPlan)]) -> Run {
        let config = config(Some(server.url()), limits, extra);
        let vendor = vendors::build(&config).expect("dynamics builds");
        Run { vendor, config }
    }

    async fn deliver(&self, items: Vec<Work>) -> (DeliveryReport, MemoryJournal) {
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
        (report, journal)
    }

    /// A run that must end with everything applied or rejected.
    async fn send(&self, items: Vec<Work>) -> DeliveryReport {
        let (report, _) = self.deliver(items).await;
        let total = report.total();
        assert_eq!(total.failed, None, "{report:?}");
        assert_eq!(total.pending, 0, "{report:?}");
        report
    }
}

fn guids(range: impl IntoIterator<Item = usize>) -> BTreeSet<String> {
    range.into_iter().map(guid).collect()
}

/// Contacts 0..20 exist before run 1; run 1 adds 0..40 (20..40 are
/// created); run 2 adds 40..50 and removes 0..15 and 90, a Contact deleted
/// in Dynamics since it was delivered.
async fn joins_then_leaves(server: &FakeServer, dataverse: &Dataverse, client: Limits) {
    for n in 0..20 {
        dataverse.create_contact(&guid(n), json!({"firstname": "Old", "lastname": "Known"}));
    }
    let run = Run::new(server, client, &[]);
    let first = run
        .send(vec![work((0..40).map(person).collect(), vec![])])
        .await;
    assert!(first.total().rejected.is_empty(), "{first:?}");
    // The token request counts in the fake's window: let run 1's pass.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut removes: Vec<Member> = (0..15).map(person).collect();
    removes.push(person(90));
    let second = run
        .send(vec![work((40..50).map(person).collect(), removes)])
        .await;
    assert!(second.total().rejected.is_empty(), "{second:?}");
}

fn assert_exact(dataverse: &Dataverse) {
    assert_eq!(dataverse.active(COLUMN), guids(15..50));
    for n in 0..15 {
        let contact = dataverse.contact(&guid(n)).expect("kept");
        assert_eq!(
            contact.get(COLUMN),
            Some(&Value::Null),
            "cleared, not dropped"
        );
    }
    assert_eq!(
        dataverse.contact(&guid(90)),
        None,
        "a removal never creates"
    );
    assert_eq!(dataverse.contact_count(), 50);
}

#[tokio::test]
async fn joins_set_the_column_and_leaves_clear_it_within_the_limits() {
    let policy = Policy::open()
        .limits(fake_limits(10, 3))
        .latency(Duration::from_millis(20));
    let (server, dataverse) = Dataverse::start(policy, Options::default());
    joins_then_leaves(&server, &dataverse, limits(7, 10, 3)).await;

    assert_exact(&dataverse);
    let kept = dataverse.contact(&guid(3)).unwrap();
    assert_eq!(kept["lastname"], "Known", "an upsert leaves other columns");
    assert_eq!(kept["firstname"], "First3");
    assert_eq!(kept["nw_b2btier"], "high");
    let snapshot = server.snapshot();
    assert_eq!(
        snapshot.violations, 0,
        "the client kept to the window and the cap"
    );
    assert_eq!(snapshot.max_mutations(), 1, "{:?}", snapshot.mutations);
    // 40 + 26 operations in batches of at most 7.
    assert_eq!(dataverse.batches(), 6 + 2 + 3);
}

#[tokio::test]
async fn an_alternate_key_addresses_contacts_by_email() {
    let (server, dataverse) = Dataverse::start(Policy::open(), Options::default());
    dataverse.create_contact(
        &guid(1000),
        json!({"emailaddress1": email(3), "lastname": "Known"}),
    );
    let extra = [
        ("alternate_key", SettingPlan::Text("emailaddress1".into())),
        (
            "audience_fields",
            SettingPlan::Table([(AUDIENCE.to_string(), "nw_intent".to_string())].into()),
        ),
    ];
    let run = Run::new(&server, limits(4, 100, 4), &extra);
    let mut quoted = person(7);
    quoted.fields[2].1 = json!("o'neil+crm@example.com");
    let mut adds: Vec<Member> = (0..6).map(person).collect();
    adds.push(quoted.clone());
    run.send(vec![work(adds, vec![])]).await;
    run.send(vec![work(vec![], vec![person(4), person(99), quoted])])
        .await;

    let status = |address: &str| {
        dataverse
            .contact_by("emailaddress1", address)
            .map(|c| c.get("nw_intent").cloned().unwrap_or(Value::Null))
    };
    let existing = dataverse.contact_by("emailaddress1", &email(3)).unwrap();
    assert_eq!(
        existing["contactid"],
        guid(1000),
        "found by its key, not created"
    );
    assert_eq!(existing["lastname"], "Known");
    assert!(
        !existing.contains_key("contactId"),
        "the catalog's contactId is never written as a column"
    );
    for n in [0, 1, 2, 3, 5] {
        assert_eq!(status(&email(n)), Some(json!("active")), "{n}");
    }
    assert_eq!(status(&email(4)), Some(Value::Null));
    assert_eq!(status("o'neil+crm@example.com"), Some(Value::Null));
    assert_eq!(status(&email(99)), None, "a removal never creates");
    assert_eq!(dataverse.contact_count(), 7);
}

#[tokio::test]
async fn retry_after_is_waited_out_before_the_next_request() {
    // The environment allows less than the client was told: each excess
    // request is answered 429 with the time until a slot frees.
    let policy = Policy::open()
        .limits(fake_limits(3, 10))
        .latency(Duration::from_millis(5));
    let (server, dataverse) = Dataverse::start(policy, Options::default());
    let run = Run::new(&server, limits(2, 20, 1), &[]);
    run.send(vec![work((0..20).map(person).collect(), vec![])])
        .await;

    assert_eq!(dataverse.active(COLUMN), guids(0..20));
    let log = server.snapshot().log;
    let mut throttled = 0;
    for (i, entry) in log.iter().enumerate() {
        if !matches!(entry.admission, Admission::Refused(_)) {
            continue;
        }
        throttled += 1;
        let retry_after = entry.retry_after.expect("a 429 carries Retry-After");
        let answered = entry.completed.expect("answered");
        let next = log.get(i + 1).expect("the refused batch is sent again");
        let gap = next.arrived.duration_since(answered);
        assert!(
            gap >= retry_after,
            "request {} came {gap:?} after a 429 asking for {retry_after:?}",
            i + 1
        );
    }
    assert!(throttled > 0, "the fake refused some requests");
}

#[tokio::test]
async fn operation_failures_are_rejected_or_resent_and_rejections_retried_next_run() {
    let fake_options = Options {
        fail_once: [guid(5)].into(),
        ..Options::default()
    };
    let (server, dataverse) = Dataverse::start(Policy::open(), fake_options);
    let run = Run::new(&server, limits(10, 100, 2), &[]);
    let mut long_title = person(3);
    long_title
        .fields
        .push(("jobtitle".into(), json!("x".repeat(150))));
    let mut adds: Vec<Member> = (0..10).map(person).collect();
    adds[3] = long_title;
    let report = run.send(vec![work(adds, vec![])]).await;

    let rejected = &report.total().rejected;
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert_eq!(rejected[0].key, "person-3");
    assert_eq!(rejected[0].code, "0x80044331");
    assert!(
        rejected[0].message.contains("jobtitle"),
        "{}",
        rejected[0].message
    );
    let mut expected = guids(0..10);
    expected.remove(&guid(3));
    assert_eq!(
        dataverse.active(COLUMN),
        expected,
        "the passing 500 was sent again"
    );

    // The store offers the rejected member again next run.
    let fixed = person(3);
    let again = run.send(vec![work(vec![fixed], vec![])]).await;
    assert!(again.total().rejected.is_empty());
    assert_eq!(dataverse.active(COLUMN), guids(0..10));
}

#[tokio::test]
async fn a_token_that_dies_mid_run_is_fetched_again() {
    // Tokens work for 300 ms but claim an hour: the executor learns of the
    // expiry only from Dataverse's 401 answers.
    let fake_options = Options {
        token_lifetime: Duration::from_millis(300),
        stated_lifetime: Some(Duration::from_secs(3600)),
        ..Options::default()
    };
    let policy = Policy::open().latency(Duration::from_millis(30));
    let (server, dataverse) = Dataverse::start(policy, fake_options);
    joins_then_leaves(&server, &dataverse, limits(3, 100, 2)).await;

    assert_exact(&dataverse);
    assert!(
        dataverse.tokens_issued() >= 2,
        "issued {}",
        dataverse.tokens_issued()
    );
}

#[tokio::test]
async fn seeded_chaos_ends_exact_with_no_contact_changed_twice() {
    let chaos = Chaos {
        seed: 20261130,
        p_429: 0.1,
        p_500: 0.1,
        p_drop_after_apply: 0.1,
    };
    let policy = Policy::open().chaos(chaos).exempt_from_chaos(TOKEN_PATH);
    let (server, dataverse) = Dataverse::start(policy, Options::default());
    joins_then_leaves(&server, &dataverse, limits(4, 200, 4)).await;

    assert_exact(&dataverse);
    let snapshot = server.snapshot();
    assert!(snapshot.dropped > 0 && snapshot.chaos_500 > 0 && snapshot.throttled > 0);
    assert_eq!(snapshot.max_mutations(), 1, "{:?}", snapshot.mutations);
}

#[tokio::test]
async fn batches_hold_the_catalogs_thousand_operations_at_most() {
    let (server, dataverse) = Dataverse::start(Policy::open(), Options::default());
    let run = Run::new(&server, limits(1000, 100, 10), &[]);
    run.send(vec![work((0..2500).map(person).collect(), vec![])])
        .await;
    assert_eq!(
        dataverse.batches(),
        3,
        "the fake refuses a batch over 1,000"
    );
    assert_eq!(dataverse.active(COLUMN), guids(0..2500));
}

#[tokio::test]
async fn a_rerun_with_nothing_changed_sends_nothing() {
    let (server, _dataverse) = Dataverse::start(Policy::open(), Options::default());
    let run = Run::new(&server, limits(1000, 100, 10), &[]);
    run.send(Vec::new()).await;
    assert_eq!(server.snapshot().requests, 0);
}

#[tokio::test]
async fn refused_credentials_fail_the_activation_with_entra_ids_reason() {
    let fake_options = Options {
        client_secret: "rotated".into(),
        ..Options::default()
    };
    let (server, dataverse) = Dataverse::start(Policy::open(), fake_options);
    let run = Run::new(&server, limits(1000, 100, 10), &[]);
    let (report, _) = run
        .deliver(vec![work((0..3).map(person).collect(), vec![])])
        .await;
    let total = report.total();
    let failed = total.failed.expect("no token, no delivery");
    assert!(
        failed.contains("AADSTS7000215") && failed.contains("dynamics_emea"),
        "{failed}"
    );
    assert!(!failed.contains("fake-secret"));
    assert_eq!(total.pending, 3);
    assert_eq!(dataverse.batches(), 0);
}

#[test]
fn the_dry_run_requests_of_a_few_members() {
    let mut config = config(None, limits(1000, 6000, 52), &[]);
    config.secrets = secrets::placeholders(&config.settings);
    config.dry_run = true;
    let vendor = vendors::build(&config).unwrap();
    let items = [work((1..=3).map(person).collect(), vec![person(9)])];
    let dry = accord::deliver::dry_run::dry_run(vendor.as_ref(), &config, &items);
    assert!(dry.unsendable.is_empty(), "{:?}", dry.unsendable);
    insta::with_settings!({
        snapshot_path => "../snapshots/deliver_dynamics",
        prepend_module_to_snapshot => false,
        omit_expression => true,
    }, {
        insta::assert_json_snapshot!("dry_run_requests", dry.requests);
    });
}
