//! Salesforce end to end on loopback: the vendor file driven by the
//! delivery executor against a fake org written from Salesforce's published
//! REST API (sObject Collections, Bulk API 2.0, OAuth 2.0 client
//! credentials), under its limits, expiring sessions and seeded failures;
//! and the dry run's requests, snapshotted.
#![cfg(feature = "deliver")]

#[path = "support/fake/mod.rs"]
mod fake;
#[path = "support/fakes/salesforce.rs"]
mod salesforce_fake;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use accord::deliver::changes::{DeliveryReport, MemoryJournal, Work};
use accord::deliver::dry_run::dry_run;
use accord::deliver::send::{SendOptions, deliver};
use accord::deliver::throttle::Throttle;
use accord::deliver::{Config, Limits, Member, Op, RecordResult, Vendor, vendors};
use accord::plan::SettingPlan;
use fake::{Chaos, FakeLimits, FakeServer, Policy};
use salesforce_fake::{Options, Salesforce};
use secrecy::SecretString;
use serde_json::json;

const ACTIVATION: &str = "surging_crm";
const AUDIENCE: &str = "B2B_Intent_Surging";
const FIELD: &str = "B2B_Intent_Surging__c";

/// The destination as the run builds it, matching on Email, pointed at
/// the fake; `threshold` is `bulk_threshold`.
fn config(endpoint: Option<String>, threshold: i64, concurrent: usize) -> Config {
    let secrets = [
        ("client_id", "fake-client"),
        ("client_secret", "fake-secret"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), SecretString::from(v.to_string())))
    .collect();
    let settings = [
        ("domain", SettingPlan::Text("acme.my.salesforce.com".into())),
        ("object", SettingPlan::Text("contact".into())),
        ("external_id", SettingPlan::Text("Email".into())),
        ("bulk_threshold", SettingPlan::Integer(threshold)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    Config {
        name: "crm".into(),
        kind: "salesforce".into(),
        endpoint,
        settings,
        secrets,
        limits: Limits {
            batch_size: 200,
            max_bytes: None,
            window: None,
            concurrent,
            daily: None,
        },
        lists: BTreeMap::new(),
        list_prefix: String::new(),
        dry_run: false,
    }
}

fn email(n: usize) -> String {
    format!("person{n:04}@example.com")
}

fn person(n: usize) -> Member {
    Member {
        key: format!("person-{n}"),
        fields: vec![
            ("Email".into(), json!(email(n))),
            ("LastName".into(), json!(format!("Last{n}"))),
            ("Title".into(), json!("VP, Sales")),
        ],
        remote_id: None,
    }
}

fn people(range: std::ops::Range<usize>) -> Vec<Member> {
    range.map(person).collect()
}

fn emails(range: impl IntoIterator<Item = usize>) -> BTreeSet<String> {
    range.into_iter().map(email).collect()
}

fn work(adds: Vec<Member>, removes: Vec<Member>) -> Work {
    Work {
        activation: ACTIVATION.into(),
        audience: AUDIENCE.into(),
        list: None,
        adds,
        removes,
    }
}

fn options() -> SendOptions {
    SendOptions {
        max_attempts: 12,
        base_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(200),
        ..SendOptions::default()
    }
}

/// The org with the audience's field, its 25 concurrent long requests
/// scaled to `concurrent`.
fn org(
    policy: Policy,
    options: Options,
    concurrent: u32,
) -> (FakeServer, std::sync::Arc<Salesforce>) {
    let policy = policy.limits(FakeLimits {
        calls: 1_000_000,
        per: Duration::from_secs(1),
        concurrent,
        daily: None,
    });
    let options = Options {
        custom_fields: vec![FIELD.into()],
        ..options
    };
    Salesforce::start(policy, options)
}

struct Run {
    vendor: Box<dyn Vendor>,
    config: Config,
}

impl Run {
    fn new(server: &FakeServer, threshold: i64, concurrent: usize) -> Run {
        let config = config(Some(server.url()), threshold, concurrent);
        let vendor = vendors::build(&config).expect("salesforce builds");
        Run { vendor, config }
    }

    async fn send(&self, items: Vec<Work>) -> (DeliveryReport, MemoryJournal) {
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

    /// Sends and expects every member accepted.
    async fn send_all(&self, items: Vec<Work>) -> MemoryJournal {
        let (report, journal) = self.send(items).await;
        let total = report.total();
        assert_eq!(total.failed, None, "{report:?}");
        assert_eq!(total.pending, 0, "{report:?}");
        assert!(total.rejected.is_empty(), "{report:?}");
        journal
    }
}

/// Run 1 puts 0..n in the audience; run 2 adds n..n+extra and takes out
/// 0..out (with the payload the store last held, as the run does).
async fn joins_then_leaves(
    server: &FakeServer,
    threshold: i64,
    n: usize,
    extra: usize,
    out: usize,
) {
    let run = Run::new(server, threshold, 4);
    run.send_all(vec![work(people(0..n), vec![])]).await;
    run.send_all(vec![work(people(n..n + extra), people(0..out))])
        .await;
}

#[tokio::test]
async fn collections_joins_set_the_field_and_leaves_clear_it_within_the_limits() {
    let policy = Policy::open().latency(Duration::from_millis(10));
    let (server, sf) = org(policy, Options::default(), 4);
    joins_then_leaves(&server, 2_000, 450, 50, 120).await;

    assert_eq!(sf.active(FIELD, "Email"), emails(120..500));
    let records = sf.records();
    assert_eq!(records.len(), 500, "left members keep their record");
    let left = records
        .iter()
        .find(|r| r["Email"] == json!(email(3)))
        .unwrap();
    assert!(
        !left.contains_key(FIELD),
        "a leave clears the field: {left:?}"
    );
    assert_eq!(left["Title"], json!("VP, Sales"), "and nothing else");
    let snapshot = server.snapshot();
    assert_eq!(snapshot.violations, 0, "the client kept to the cap");
    assert_eq!(snapshot.max_mutations(), 2, "one join, one leave at most");
    let collections = snapshot
        .log
        .iter()
        .filter(|e| e.path.contains("/composite/sobjects/Contact/Email"))
        .count();
    assert_eq!(collections, 3 + 1 + 1, "200 records a call");
    assert_eq!(sf.jobs(), 0);
}

#[tokio::test]
async fn bulk_jobs_above_the_threshold_reach_the_same_state() {
    let policy = Policy::open().latency(Duration::from_millis(5));
    let (server, sf) = org(policy, Options::default(), 4);
    joins_then_leaves(&server, 100, 450, 50, 120).await;

    assert_eq!(sf.active(FIELD, "Email"), emails(120..500));
    // Run 1: one job of 450; run 2: 50 joins by Collections, one job of
    // 120 leaves.
    assert_eq!(sf.jobs(), 2);
    let left = sf
        .records()
        .into_iter()
        .find(|r| r["Email"] == json!(email(7)))
        .unwrap();
    assert!(!left.contains_key(FIELD), "#N/A clears the field: {left:?}");
    assert_eq!(server.snapshot().violations, 0);
}

#[tokio::test]
async fn collections_record_errors_are_rejections_and_the_rest_lands() {
    let (server, sf) = org(Policy::open(), Options::default(), 4);
    let run = Run::new(&server, 2_000, 4);
    let mut members = people(0..10);
    members[2].fields.retain(|(c, _)| c != "LastName");
    members[5].fields[0].1 = json!("not-an-email");
    let (report, journal) = run.send(vec![work(members, vec![])]).await;
    let total = report.total();
    let mut codes: Vec<(String, String)> = total
        .rejected
        .iter()
        .map(|r| (r.key.clone(), r.code.clone()))
        .collect();
    codes.sort();
    assert_eq!(
        codes,
        [
            ("person-2".to_string(), "REQUIRED_FIELD_MISSING".to_string()),
            ("person-5".to_string(), "INVALID_EMAIL_ADDRESS".to_string()),
        ]
    );
    assert_eq!(total.accepted, 8);
    assert_eq!(sf.active(FIELD, "Email").len(), 8);
    // The record ids the upserts returned are journaled with them.
    assert!(journal.records.iter().any(|r| matches!(
        &r.result,
        RecordResult::Accepted { remote_id: Some(id) } if id.starts_with("003")
    )));
    assert_eq!(total.api_usage.map(|(_, limit)| limit), Some(100_000));
}

#[tokio::test]
async fn a_failed_bulk_job_lands_failures_as_rejections_and_unprocessed_rows_as_pending() {
    let fake = Options {
        fail_job_after: Some(25),
        polls_in_progress: 2,
        ..Options::default()
    };
    let (server, sf) = org(Policy::open(), fake, 4);
    let run = Run::new(&server, 5, 4);
    let mut members = people(0..30);
    members[3].fields[0].1 = json!("nobody");
    members[10].fields.retain(|(c, _)| c != "LastName");
    let (report, journal) = run.send(vec![work(members, vec![])]).await;
    let total = report.total();
    assert_eq!(total.failed, None, "{report:?}");
    let rejected: BTreeMap<String, String> = total
        .rejected
        .iter()
        .map(|r| (r.key.clone(), r.code.clone()))
        .collect();
    assert_eq!(
        rejected,
        BTreeMap::from([
            (
                "person-10".to_string(),
                "REQUIRED_FIELD_MISSING".to_string()
            ),
            ("person-3".to_string(), "INVALID_EMAIL_ADDRESS".to_string()),
        ])
    );
    assert_eq!(total.accepted, 23);
    assert_eq!(total.pending, 5, "rows 25..30 were not processed");
    assert_eq!(total.planned, 30);
    // The journal has the intent before and every member's result after.
    assert_eq!(journal.intents.len(), 1);
    assert_eq!(journal.records.len(), 30);
    let unprocessed = journal
        .records
        .iter()
        .filter(|r| matches!(&r.result, RecordResult::Retry { code, .. } if code == "unprocessed"))
        .count();
    assert_eq!(unprocessed, 5);
    assert_eq!(
        sf.active(FIELD, "Email"),
        emails((0..25).filter(|n| *n != 3 && *n != 10))
    );
}

#[tokio::test]
async fn a_rerun_with_nothing_changed_sends_nothing() {
    let (server, _sf) = org(Policy::open(), Options::default(), 4);
    let run = Run::new(&server, 2_000, 4);
    run.send_all(Vec::new()).await;
    assert_eq!(server.snapshot().requests, 0);
}

#[tokio::test]
async fn a_session_that_dies_mid_run_is_fetched_again() {
    let fake = Options {
        token_lifetime: Duration::from_millis(150),
        polls_in_progress: 3,
        ..Options::default()
    };
    let policy = Policy::open().latency(Duration::from_millis(30));
    let (server, sf) = org(policy, fake, 2);
    let run = Run::new(&server, 300, 2);
    // Collections for the 250 joins, then a job for the 400.
    run.send_all(vec![work(people(0..250), vec![])]).await;
    run.send_all(vec![work(people(250..650), people(0..50))])
        .await;
    assert_eq!(sf.active(FIELD, "Email"), emails(50..650));
    assert!(sf.tokens_issued() >= 3, "issued {}", sf.tokens_issued());
}

#[tokio::test]
async fn the_spent_24_hour_allocation_parks_the_destination_with_the_rest_pending() {
    // Three API calls left: three Collections upserts of 200.
    let fake = Options {
        allocation: 3,
        ..Options::default()
    };
    let (server, sf) = org(Policy::open(), fake, 1);
    let run = Run::new(&server, 2_000, 1);
    let items = vec![
        work(people(0..1_000), vec![]),
        Work {
            audience: "Other".into(),
            ..work(people(0..10), vec![])
        },
    ];
    let (report, _) = run.send(items).await;
    let total = report.total();
    assert!(total.quota_exhausted, "{report:?}");
    assert_eq!(total.failed, None, "a spent allocation is no failure");
    assert_eq!(total.accepted, 600);
    assert_eq!(total.pending, 410);
    assert_eq!(sf.active(FIELD, "Email").len(), 600);
    assert_eq!(total.api_usage, Some((3, 3)));
    let refused = server
        .snapshot()
        .log
        .iter()
        .filter(|e| e.path.contains("/services/data/"))
        .count();
    assert_eq!(refused, 4, "one refused call, then nothing more is sent");
}

#[tokio::test]
async fn seeded_chaos_never_loses_or_duplicates() {
    let chaos = Chaos {
        seed: 20261130,
        p_429: 0.1,
        p_500: 0.1,
        p_drop_after_apply: 0.15,
    };
    let policy = Policy::open()
        .chaos(chaos)
        .exempt_from_chaos("/services/oauth2/token");
    let (server, sf) = org(policy, Options::default(), 3);
    // Collections and bulk jobs both: the joins of run 1 and the leaves of
    // run 2 go as jobs, the 50 joins of run 2 by Collections.
    let run = Run::new(&server, 60, 3);
    run.send_all(vec![work(people(0..300), vec![])]).await;
    run.send_all(vec![work(people(300..350), people(0..100))])
        .await;
    assert_eq!(sf.active(FIELD, "Email"), emails(100..350));
    assert_eq!(sf.records().len(), 350, "no record was created twice");
    let snapshot = server.snapshot();
    assert!(snapshot.dropped > 0 && snapshot.chaos_500 > 0 && snapshot.throttled > 0);
    assert!(snapshot.max_mutations() <= 2, "{:?}", snapshot.mutations);
    assert_eq!(snapshot.violations, 0);
}

#[test]
fn the_dry_run_requests_of_collections_and_a_bulk_job() {
    let config = config(None, 3, 4);
    let vendor = vendors::build(&config).unwrap();
    let items = vec![
        work(people(0..2), people(10..14)),
        Work {
            audience: "Hot Leads".into(),
            ..work(people(20..22), vec![])
        },
    ];
    let dry = dry_run(vendor.as_ref(), &config, &items);
    assert_eq!(dry.bulk_jobs, 1);
    // Token, 2 Collections joins, a job's create, upload and close, its 3
    // result reads, and the other audience's Collections call.
    assert_eq!(dry.calls, 1 + 1 + 3 + 3 + 1);
    insta::with_settings!({
        snapshot_path => "../snapshots/deliver_salesforce",
        prepend_module_to_snapshot => false,
        omit_expression => true,
    }, {
        insta::assert_json_snapshot!("dry_run_requests", dry.requests);
    });
}

#[test]
fn a_join_is_an_upsert_and_nothing_else() {
    let config = config(None, 3, 4);
    let vendor = vendors::build(&config).unwrap();
    assert_eq!(vendor.add_ops(), [Op::Upsert]);
    assert!(!vendor.has_lists());
    assert!(vendors::supports("salesforce"));
}
