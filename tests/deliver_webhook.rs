//! The delivery core end to end with the webhook vendor against its fake:
//! limits, Retry-After, chaos, refused batches and the daily quota.
#![cfg(feature = "deliver")]

#[path = "support/fake/mod.rs"]
mod fake;
#[path = "support/fakes/webhook.rs"]
mod webhook_fake;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use accord::deliver::changes::{DeliveryReport, MemoryJournal, Work};
use accord::deliver::send::{SendOptions, deliver};
use accord::deliver::throttle::Throttle;
use accord::deliver::vendors::webhook::Webhook;
use accord::deliver::{Config, Limits, Member};
use accord::plan::SettingPlan;
use fake::{Chaos, FakeLimits, FakeServer, Policy};
use secrecy::SecretString;
use webhook_fake::Receiver;

const SECRET: &str = "s3cret-signing-key";

fn start(policy: Policy) -> (FakeServer, Arc<Receiver>) {
    let slot = Arc::new(Mutex::new(None));
    let keep = slot.clone();
    let server = FakeServer::start(policy, move |stats| {
        let (router, receiver) = Receiver::router(SECRET, stats);
        *keep.lock().unwrap() = Some(receiver);
        router
    });
    let receiver = slot.lock().unwrap().take().unwrap();
    (server, receiver)
}

fn config(server: &FakeServer, limits: Limits) -> Config {
    let mut settings = BTreeMap::new();
    settings.insert(
        "signing_secret".to_string(),
        SettingPlan::Reference("env:HOOK_SECRET".into()),
    );
    let mut secrets = BTreeMap::new();
    secrets.insert(
        "signing_secret".to_string(),
        SecretString::from(SECRET.to_string()),
    );
    Config {
        name: "hook".into(),
        kind: "http".into(),
        endpoint: Some(format!("{}{}", server.url(), webhook_fake::PATH)),
        settings,
        secrets,
        limits,
        lists: BTreeMap::new(),
        list_prefix: String::new(),
        dry_run: false,
    }
}

fn limits(
    batch_size: usize,
    window: Option<(u32, Duration)>,
    concurrent: usize,
    daily: Option<u64>,
) -> Limits {
    Limits {
        batch_size,
        max_bytes: None,
        window,
        concurrent,
        daily,
    }
}

fn members(prefix: &str, n: usize) -> Vec<Member> {
    (0..n)
        .map(|i| Member {
            key: format!("{prefix}{i}"),
            fields: vec![(
                "email".into(),
                serde_json::json!(format!("{prefix}{i}@example.com")),
            )],
            remote_id: None,
        })
        .collect()
}

fn work(adds: Vec<Member>, removes: Vec<Member>) -> Vec<Work> {
    vec![Work {
        activation: "act".into(),
        audience: "aud".into(),
        list: None,
        adds,
        removes,
    }]
}

fn fast() -> SendOptions {
    SendOptions {
        max_attempts: 10,
        base_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(40),
        ..SendOptions::default()
    }
}

async fn send(
    config: &Config,
    throttle: &Throttle,
    work: Vec<Work>,
    options: &SendOptions,
) -> (DeliveryReport, MemoryJournal) {
    let vendor = Webhook::new(config).unwrap();
    let mut journal = MemoryJournal::default();
    let report = deliver(&vendor, config, throttle, work, &mut journal, options).await;
    (report, journal)
}

fn keys(members: &[Member]) -> BTreeSet<String> {
    members.iter().map(|m| m.key.clone()).collect()
}

#[tokio::test]
async fn every_member_arrives_within_the_window_and_in_flight_limits() {
    let vendor_limits = FakeLimits {
        calls: 10,
        per: Duration::from_millis(200),
        concurrent: 3,
        daily: None,
    };
    let (server, receiver) = start(
        Policy::open()
            .limits(vendor_limits)
            .latency(Duration::from_millis(15)),
    );
    let config = config(
        &server,
        limits(5, Some((10, Duration::from_millis(200))), 3, None),
    );
    let throttle = Throttle::new(&config.limits, 0);
    let all = members("m", 150);
    let (report, journal) = send(&config, &throttle, work(all.clone(), vec![]), &fast()).await;
    let total = report.total();
    assert_eq!(
        (total.planned, total.accepted, total.pending, total.failed),
        (150, 150, 0, None)
    );
    assert_eq!(receiver.members("act", "aud"), keys(&all));

    let (report, _) = send(
        &config,
        &throttle,
        work(vec![], all[..40].to_vec()),
        &fast(),
    )
    .await;
    assert_eq!(report.total().accepted, 40);
    assert_eq!(receiver.members("act", "aud"), keys(&all[40..]));

    let snapshot = server.snapshot();
    assert_eq!(snapshot.violations, 0, "the client kept to the limits");
    assert_eq!(snapshot.throttled, 0);
    assert!(journal.intents.len() >= 30 && journal.records.len() == 150);
    let overlapping = snapshot
        .log
        .windows(2)
        .any(|w| w[0].completed.is_some_and(|done| w[1].arrived < done));
    assert!(overlapping, "batches went out concurrently");
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let vendor_limits = FakeLimits {
        calls: 2,
        per: Duration::from_millis(300),
        concurrent: 5,
        daily: None,
    };
    let policy = Policy::open()
        .limits(vendor_limits)
        .refuse_with(|refusal| match refusal {
            fake::Refusal::Window { retry_after } => fake::too_many_requests(retry_after),
            _ => fake::too_many_requests(Duration::from_secs(1)),
        });
    let (server, receiver) = start(policy);
    // The client does not know the vendor's window: the vendor's 429s pace it.
    let config = config(&server, limits(4, None, 1, None));
    let all = members("r", 24);
    let (report, _) = send(
        &config,
        &Throttle::new(&config.limits, 0),
        work(all.clone(), vec![]),
        &fast(),
    )
    .await;
    assert_eq!(report.total().accepted, 24);
    assert_eq!(receiver.members("act", "aud"), keys(&all));
    let log = server.snapshot().log;
    let refused: Vec<_> = log
        .iter()
        .enumerate()
        .filter(|(_, e)| e.retry_after.is_some())
        .collect();
    assert!(!refused.is_empty(), "the vendor refused some requests");
    for (i, entry) in refused {
        let next = &log[i + 1];
        let gap = next.arrived.duration_since(entry.completed.unwrap());
        assert!(
            gap >= entry.retry_after.unwrap(),
            "resent after {gap:?}, asked {:?}",
            entry.retry_after
        );
    }
}

#[tokio::test]
async fn chaos_ends_with_the_exact_audience() {
    let chaos = Chaos {
        seed: 11,
        p_429: 0.15,
        p_500: 0.15,
        p_drop_after_apply: 0.15,
    };
    let (server, receiver) = start(Policy::open().chaos(chaos));
    let config = config(
        &server,
        limits(3, Some((50, Duration::from_millis(100))), 4, None),
    );
    let all = members("c", 90);
    let (report, _) = send(
        &config,
        &Throttle::new(&config.limits, 0),
        work(all.clone(), vec![]),
        &fast(),
    )
    .await;
    let total = report.total();
    assert_eq!(
        (total.accepted, total.pending, total.failed.clone()),
        (90, 0, None),
        "{total:?}"
    );
    assert_eq!(receiver.members("act", "aud"), keys(&all));
    let snapshot = server.snapshot();
    assert!(snapshot.dropped > 0 && snapshot.chaos_500 > 0 && snapshot.throttled > 0);
    assert_eq!(snapshot.max_mutations(), 1, "every member added once");
    assert_eq!(snapshot.mutations.len(), 90);
}

#[tokio::test]
async fn a_refused_batch_is_split_until_the_bad_record_is_alone() {
    let (server, receiver) = start(Policy::open());
    let config = config(&server, limits(8, None, 2, None));
    let mut all = members("g", 7);
    all.insert(
        3,
        Member {
            key: "bad-1".into(),
            fields: vec![],
            remote_id: None,
        },
    );
    let (report, _) = send(
        &config,
        &Throttle::new(&config.limits, 0),
        work(all.clone(), vec![]),
        &fast(),
    )
    .await;
    let total = report.total();
    assert_eq!(total.accepted, 7);
    assert_eq!(total.rejected.len(), 1);
    assert_eq!(
        (
            total.rejected[0].key.as_str(),
            total.rejected[0].code.as_str()
        ),
        ("bad-1", "400")
    );
    assert_eq!(receiver.members("act", "aud"), keys(&members("g", 7)));
}

#[tokio::test]
async fn the_daily_quota_leaves_members_pending() {
    let (server, receiver) = start(Policy::open());
    let config = config(&server, limits(5, None, 2, Some(10)));
    let throttle = Throttle::new(&config.limits, 7);
    let (report, journal) = send(&config, &throttle, work(members("q", 40), vec![]), &fast()).await;
    let total = report.total();
    assert_eq!((total.accepted, total.pending, total.calls), (15, 25, 3));
    assert!(total.quota_exhausted && total.failed.is_none());
    assert_eq!(journal.calls["hook"], 3);
    assert_eq!(receiver.members("act", "aud").len(), 15);
    assert_eq!(server.snapshot().requests, 3);
}
