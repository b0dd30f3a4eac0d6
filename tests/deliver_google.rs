//! Google Customer Match end to end: the Data Manager API client and the
//! delivery executor against the loopback fake of the API, with its limits
//! scaled down (300 requests a minute and 10 at once become a few per
//! hundred milliseconds), tokens that expire, fast-failing batches and
//! seeded chaos.
#![cfg(feature = "deliver")]

#[path = "support/fake/mod.rs"]
mod fake;
#[path = "support/fakes/google.rs"]
mod google_fake;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use accord::deliver::changes::{DeliveryReport, MemoryJournal, Work};
use accord::deliver::send::{SendOptions, deliver};
use accord::deliver::throttle::Throttle;
use accord::deliver::{Config, Limits, ListRef, Member, Op, vendors};
use accord::plan::SettingPlan;
use fake::{Chaos, FakeLimits, FakeServer, Policy, Snapshot};
use google_fake::TokenPolicy;
use secrecy::SecretString;
use serde_json::json;

const LIST_NAME: &str = "accord_vip";

fn email_hash(i: usize) -> String {
    accord::hash::sha256_hex(format!("person{i}@example.com"))
}

fn people(range: std::ops::Range<usize>) -> Vec<Member> {
    range
        .map(|i| Member {
            key: format!("p{i}"),
            fields: vec![("email_lc_sha256".to_string(), json!(email_hash(i)))],
            remote_id: None,
        })
        .collect()
}

fn hashes(range: std::ops::Range<usize>) -> BTreeSet<String> {
    range.map(email_hash).collect()
}

/// The fake's limits, and the same limits as the destination declares them.
fn scaled_limits(calls: u32, per_ms: u64, concurrent: u32) -> (FakeLimits, Limits) {
    let per = Duration::from_millis(per_ms);
    let fake = FakeLimits {
        calls,
        per,
        concurrent,
        daily: None,
    };
    let ours = Limits {
        batch_size: 10_000,
        max_bytes: None,
        window: Some((calls, per)),
        concurrent: concurrent as usize,
        daily: None,
    };
    (fake, ours)
}

fn config(server: &FakeServer, limits: Limits, batch_size: usize) -> Config {
    config_at(Some(server.url()), limits, batch_size)
}

fn config_at(endpoint: Option<String>, limits: Limits, batch_size: usize) -> Config {
    Config {
        name: "google_ads".into(),
        kind: "google_customer_match".into(),
        endpoint,
        settings: BTreeMap::from([(
            "customer_id".to_string(),
            SettingPlan::Text("123-456-7890".into()),
        )]),
        secrets: BTreeMap::from([(
            "service_account".to_string(),
            SecretString::from(google_fake::KEY_FILE.to_string()),
        )]),
        limits: Limits {
            batch_size,
            ..limits
        },
        lists: BTreeMap::new(),
        list_prefix: "accord_".into(),
        dry_run: false,
    }
}

fn work(list: Option<ListRef>, adds: Vec<Member>, removes: Vec<Member>) -> Work {
    Work {
        activation: "vip_to_google".into(),
        audience: "vip".into(),
        list,
        adds,
        removes,
    }
}

fn options() -> SendOptions {
    SendOptions {
        max_attempts: 8,
        base_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(100),
        ..SendOptions::default()
    }
}

async fn run(config: &Config, work: Work, journal: &mut MemoryJournal) -> DeliveryReport {
    let vendor = vendors::build(config).expect("the google vendor builds");
    let throttle = Throttle::new(&config.limits, 0);
    deliver(
        vendor.as_ref(),
        config,
        &throttle,
        vec![work],
        journal,
        &options(),
    )
    .await
}

fn assert_clean(report: &DeliveryReport, snapshot: &Snapshot) {
    let total = report.total();
    assert_eq!(total.failed, None, "{total:?}");
    assert_eq!(total.pending, 0, "{total:?}");
    assert_eq!(snapshot.violations, 0, "the client went over the limits");
    assert!(snapshot.max_mutations() <= 1, "a member changed twice");
}

#[tokio::test]
async fn the_list_is_created_and_ends_equal_to_the_audience() {
    let (fake_limits, limits) = scaled_limits(6, 100, 3);
    let policy = Policy::open()
        .limits(fake_limits)
        .latency(Duration::from_millis(5));
    let (server, google) = google_fake::start(policy, TokenPolicy::default());
    let config = config(&server, limits, 20);
    let mut journal = MemoryJournal::default();

    let first = run(&config, work(None, people(0..250), vec![]), &mut journal).await;
    assert_clean(&first, &server.snapshot());
    let id = google
        .list_named(LIST_NAME)
        .expect("the run created the list");
    assert_eq!(google.members(&id), hashes(0..250));
    let recorded = journal.list_ids.values().next().cloned();
    assert_eq!(recorded, Some(id.clone()));

    // The next run knows the list (from the store) and applies the changes;
    // it starts a window later, as a run after another does.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let list = ListRef {
        audience: "vip".into(),
        name: LIST_NAME.into(),
        id: id.clone(),
    };
    let second = run(
        &config,
        work(Some(list), people(250..300), people(0..100)),
        &mut journal,
    )
    .await;
    assert_clean(&second, &server.snapshot());
    assert_eq!(google.members(&id), hashes(100..300));
    assert_eq!(second.total().accepted, 150);
    assert_eq!(google.lists.lock().unwrap().len(), 1, "one list, made once");
}

#[tokio::test]
async fn a_list_made_by_an_earlier_run_is_found_not_made_again() {
    let (server, google) = google_fake::start(Policy::open(), TokenPolicy::default());
    let id = google.add_list(LIST_NAME);
    let (_, limits) = scaled_limits(50, 100, 4);
    let config = config(&server, limits, 100);
    let mut journal = MemoryJournal::default();
    let report = run(&config, work(None, people(0..10), vec![]), &mut journal).await;
    assert_clean(&report, &server.snapshot());
    assert_eq!(google.lists.lock().unwrap().len(), 1);
    assert_eq!(google.members(&id), hashes(0..10));
}

#[tokio::test]
async fn one_bad_hash_in_a_thousand_rejects_only_that_member() {
    let (server, google) = google_fake::start(Policy::open(), TokenPolicy::default());
    let id = google.add_list(LIST_NAME);
    let (_, limits) = scaled_limits(100, 100, 4);
    let config = config(&server, limits, 1000);
    let mut members = people(0..1000);
    members[537].fields[0].1 = json!("not-a-sha256-hash");
    let list = ListRef {
        audience: "vip".into(),
        name: LIST_NAME.into(),
        id: id.clone(),
    };
    let mut journal = MemoryJournal::default();
    let report = run(&config, work(Some(list), members, vec![]), &mut journal).await;

    let total = report.total();
    assert_eq!(total.failed, None);
    let rejected: Vec<(&str, &str)> = total
        .rejected
        .iter()
        .map(|r| (r.key.as_str(), r.code.as_str()))
        .collect();
    assert_eq!(rejected, [("p537", "INVALID_ARGUMENT")]);
    let mut expected = hashes(0..1000);
    expected.remove(&email_hash(537));
    assert_eq!(google.members(&id), expected);
    assert_eq!(total.accepted, 999);
}

#[tokio::test]
async fn retry_after_is_honoured() {
    // Chaos answers 429 RESOURCE_EXHAUSTED with `Retry-After`. Each delivery
    // is one batch, so the request after a refused one is its resend.
    let (fake_limits, limits) = scaled_limits(100, 100, 1);
    let policy = Policy::open()
        .limits(fake_limits)
        .chaos(Chaos {
            seed: 11,
            p_429: 0.4,
            p_500: 0.0,
            p_drop_after_apply: 0.0,
        })
        .exempt_from_chaos("/token");
    let (server, google) = google_fake::start(policy, TokenPolicy::default());
    let id = google.add_list(LIST_NAME);
    let config = config(&server, limits, 10);
    let list = ListRef {
        audience: "vip".into(),
        name: LIST_NAME.into(),
        id: id.clone(),
    };
    let mut journal = MemoryJournal::default();
    for start in (0..60).step_by(10) {
        let one_batch = work(Some(list.clone()), people(start..start + 10), vec![]);
        let report = run(&config, one_batch, &mut journal).await;
        assert_clean(&report, &server.snapshot());
    }
    assert_eq!(google.members(&id), hashes(0..60));

    let snapshot = server.snapshot();
    let data: Vec<&fake::Entry> = snapshot
        .log
        .iter()
        .filter(|e| e.path.starts_with("/v1/audienceMembers"))
        .collect();
    let throttled = data
        .iter()
        .filter(|e| e.admission == fake::Admission::Refused(fake::Refusal::Chaos))
        .count();
    assert!(throttled > 0, "the seed throttles some requests");
    for pair in data.windows(2) {
        if let (fake::Admission::Refused(_), Some(wait)) = (pair[0].admission, pair[0].retry_after)
        {
            let gap = pair[1].arrived.duration_since(pair[0].arrived);
            assert!(
                gap >= wait,
                "resent after {gap:?}, Retry-After was {wait:?}"
            );
        }
    }
}

#[tokio::test]
async fn an_expired_token_is_refreshed_mid_run() {
    let (fake_limits, limits) = scaled_limits(100, 100, 1);
    let policy = Policy::open()
        .limits(fake_limits)
        .latency(Duration::from_millis(15));
    // The token says it lives an hour but dies after 120 ms, as a revoked
    // or rotated one would: the API answers 401 UNAUTHENTICATED.
    let tokens = TokenPolicy {
        lifetime: Duration::from_millis(120),
        advertised: 3599,
    };
    let (server, google) = google_fake::start(policy, tokens);
    let id = google.add_list(LIST_NAME);
    let config = config(&server, limits, 10);
    let list = ListRef {
        audience: "vip".into(),
        name: LIST_NAME.into(),
        id: id.clone(),
    };
    let mut journal = MemoryJournal::default();
    let report = run(
        &config,
        work(Some(list), people(0..300), vec![]),
        &mut journal,
    )
    .await;
    assert_clean(&report, &server.snapshot());
    assert_eq!(google.members(&id), hashes(0..300));
    assert!(google.tokens_issued() >= 2, "the token was fetched again");
}

#[tokio::test]
async fn seeded_chaos_ends_exact() {
    let (fake_limits, limits) = scaled_limits(8, 100, 3);
    let policy = Policy::open()
        .limits(fake_limits)
        .chaos(Chaos {
            seed: 20261130,
            p_429: 0.1,
            p_500: 0.1,
            p_drop_after_apply: 0.1,
        })
        .latency(Duration::from_millis(3));
    let (server, google) = google_fake::start(policy, TokenPolicy::default());
    let config = config(&server, limits, 25);
    let mut journal = MemoryJournal::default();
    let first = run(&config, work(None, people(0..400), vec![]), &mut journal).await;
    assert_clean(&first, &server.snapshot());
    let id = google.list_named(LIST_NAME).expect("the list exists");
    assert_eq!(google.members(&id), hashes(0..400));

    let list = ListRef {
        audience: "vip".into(),
        name: LIST_NAME.into(),
        id: id.clone(),
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let second = run(
        &config,
        work(Some(list), people(400..450), people(0..150)),
        &mut journal,
    )
    .await;
    let snapshot = server.snapshot();
    assert_clean(&second, &snapshot);
    assert!(
        second.total().rejected.is_empty(),
        "{:?}",
        second.total().rejected
    );
    assert_eq!(google.members(&id), hashes(150..450));
    assert!(
        snapshot.dropped > 0 && snapshot.chaos_500 > 0,
        "the seed injects faults"
    );
}

#[test]
fn dry_run_requests_match_the_published_shapes() {
    // No endpoint: the snapshot shows the real API's URLs.
    let config = config_at(None, scaled_limits(1, 100, 1).1, 10_000);
    let google = vendors::build(&config).unwrap();
    let list = ListRef {
        audience: "vip".into(),
        name: LIST_NAME.into(),
        id: "4242".into(),
    };
    let members = people(0..3);
    let mut requests = Vec::new();
    for op in [Op::Add, Op::Remove] {
        let mut request = google.encode(Some(&list), op, &members).unwrap();
        google.authorize(&mut request, &SecretString::from("a-token".to_string()));
        requests.push(request.redacted());
    }
    requests.push(google.find_list_request(LIST_NAME).unwrap().redacted());
    requests.push(google.create_list_request(LIST_NAME).unwrap().redacted());
    let shown = serde_json::to_string(&requests).unwrap();
    assert!(!shown.contains("a-token"));
    insta::with_settings!({
        snapshot_path => "../snapshots/deliver_google",
        prepend_module_to_snapshot => false,
        omit_expression => true,
    }, {
        insta::assert_json_snapshot!("dry_run_requests", requests);
    });
}

#[tokio::test]
async fn a_key_google_did_not_issue_is_refused_and_nothing_is_sent() {
    let (server, google) = google_fake::start(Policy::open(), TokenPolicy::default());
    let id = google.add_list(LIST_NAME);
    let (_, limits) = scaled_limits(50, 100, 2);
    let mut config = config(&server, limits, 10);
    let other_key = google_fake::KEY_FILE.replace("_TEST_ONLY", "_OTHER_TEST_ONLY");
    config
        .secrets
        .insert("service_account".into(), SecretString::from(other_key));
    let list = ListRef {
        audience: "vip".into(),
        name: LIST_NAME.into(),
        id: id.clone(),
    };
    let mut journal = MemoryJournal::default();
    let report = run(
        &config,
        work(Some(list), people(0..30), vec![]),
        &mut journal,
    )
    .await;
    let total = report.total();
    let failure = total.failed.expect("the activation fails");
    assert!(failure.contains("Invalid JWT Signature"), "{failure}");
    assert_eq!(total.pending, 30);
    assert!(google.members(&id).is_empty());
    assert!(google.data_requests.lock().unwrap().is_empty());
}
