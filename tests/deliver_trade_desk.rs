//! The Trade Desk first-party data end to end: the vendor file and the
//! executor against a loopback data server built from the published Data
//! API. Members join the named segment for the destination's TTL, leave it
//! with a TTL of 0, are extended when sent again, and malformed ids come
//! back as per-member rejections; seeded chaos still ends exact.
#![cfg(feature = "deliver")]

#[path = "support/fake/mod.rs"]
mod fake;
#[path = "support/fakes/trade_desk.rs"]
mod trade_desk_fake;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use accord::deliver::changes::{MemoryJournal, Work};
use accord::deliver::send::{SendOptions, deliver};
use accord::deliver::throttle::Throttle;
use accord::deliver::{Config, Limits, ListRef, Member, Op, Vendor, vendors};
use accord::plan::SettingPlan;
use fake::{Chaos, FakeServer, Policy};
use secrecy::SecretString;
use serde_json::Value;
use trade_desk_fake::TradeDeskState;

const SEGMENT: &str = "accord_buyers";
const TTL_DAYS: i64 = 14;

fn start(policy: Policy) -> (FakeServer, Arc<TradeDeskState>) {
    let mut state = None;
    let server = FakeServer::start(policy, |stats| {
        let (router, s) = trade_desk_fake::router(stats);
        state = Some(s);
        router
    });
    (server, state.expect("router built"))
}

fn config(url: &str, token: &str) -> Config {
    let settings: BTreeMap<String, SettingPlan> = [
        (
            "advertiser_id".to_string(),
            SettingPlan::Text(trade_desk_fake::ADVERTISER.into()),
        ),
        ("ttl_days".to_string(), SettingPlan::Integer(TTL_DAYS)),
    ]
    .into();
    Config {
        name: "ttd".into(),
        kind: "trade_desk".into(),
        endpoint: Some(url.to_string()),
        settings,
        secrets: [("token".to_string(), SecretString::from(token.to_string()))].into(),
        limits: Limits {
            batch_size: 5,
            max_bytes: None,
            window: None,
            concurrent: 3,
            daily: None,
        },
        lists: BTreeMap::new(),
        list_prefix: "accord_".into(),
        dry_run: false,
    }
}

fn options() -> SendOptions {
    SendOptions {
        max_attempts: 12,
        base_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(200),
        ..SendOptions::default()
    }
}

fn tdid(i: usize) -> String {
    format!("{i:08x}-0000-4000-8000-000000000000")
}

fn person(i: usize) -> Member {
    Member {
        key: format!("person-{i}"),
        fields: vec![("tdid".into(), Value::String(tdid(i)))],
        remote_id: None,
    }
}

/// A list the caller already knows: a segment's id is its name.
fn segment() -> ListRef {
    ListRef {
        audience: "buyers".into(),
        name: SEGMENT.into(),
        id: SEGMENT.into(),
    }
}

async fn send(
    vendor: &dyn Vendor,
    config: &Config,
    adds: Vec<Member>,
    removes: Vec<Member>,
) -> MemoryJournal {
    let throttle = Throttle::new(&config.limits, 0);
    let work = Work {
        activation: "ttd_act".into(),
        audience: "buyers".into(),
        // The vendor names the segment: list_prefix + audience.
        list: None,
        adds,
        removes,
    };
    let mut journal = MemoryJournal::default();
    let report = deliver(
        vendor,
        config,
        &throttle,
        vec![work],
        &mut journal,
        &options(),
    )
    .await;
    let total = report.total();
    assert_eq!(
        (total.failed.as_deref(), total.pending),
        (None, 0),
        "{total:?}"
    );
    journal
}

fn live(state: &TradeDeskState) -> Vec<String> {
    state.members(SEGMENT, SystemTime::now())
}

fn expected(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("TDID:{}", tdid(i))).collect()
}

#[tokio::test]
async fn members_join_for_the_ttl_and_leave_with_a_ttl_of_zero() {
    let (server, state) = start(Policy::open());
    let config = config(&server.url(), trade_desk_fake::TOKEN);
    let vendor = vendors::build(&config).unwrap();
    let before = SystemTime::now();
    send(
        vendor.as_ref(),
        &config,
        (0..12).map(person).collect(),
        vec![],
    )
    .await;
    assert_eq!(live(&state), expected(0..12));
    let ttl = Duration::from_secs(TTL_DAYS as u64 * 86_400);
    assert_eq!(vendor.ttl(), Some(ttl));
    let expiry = state.expiry(SEGMENT, &format!("TDID:{}", tdid(0))).unwrap();
    assert!(
        expiry >= before + ttl && expiry <= SystemTime::now() + ttl,
        "the membership lives the TTL"
    );

    send(
        vendor.as_ref(),
        &config,
        vec![],
        (0..4).map(person).collect(),
    )
    .await;
    assert_eq!(live(&state), expected(4..12));
    assert_eq!(
        state.members(SEGMENT, before + ttl + Duration::from_secs(60)),
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn sending_members_again_extends_their_membership() {
    let (server, state) = start(Policy::open());
    let config = config(&server.url(), trade_desk_fake::TOKEN);
    let vendor = vendors::build(&config).unwrap();
    let key = format!("TDID:{}", tdid(1));
    send(
        vendor.as_ref(),
        &config,
        (0..3).map(person).collect(),
        vec![],
    )
    .await;
    let first = state.expiry(SEGMENT, &key).unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    send(
        vendor.as_ref(),
        &config,
        (0..3).map(person).collect(),
        vec![],
    )
    .await;
    let second = state.expiry(SEGMENT, &key).unwrap();
    assert!(second > first, "the re-send extends the membership");
    let mutations = server.snapshot().mutations;
    assert_eq!(
        mutations[&(format!("{SEGMENT}:{key}"), "refresh".to_string())],
        1
    );
}

#[tokio::test]
async fn malformed_ids_are_rejected_one_by_one() {
    let (server, state) = start(Policy::open());
    let config = config(&server.url(), trade_desk_fake::TOKEN);
    let vendor = vendors::build(&config).unwrap();
    let mut adds: Vec<Member> = (0..8).map(person).collect();
    adds[2].fields = vec![("tdid".into(), Value::String("not-a-guid".into()))];
    adds[6].fields = vec![("gaid".into(), Value::String("zz".into()))];
    let throttle = Throttle::new(&config.limits, 0);
    let work = Work {
        activation: "ttd_act".into(),
        audience: "buyers".into(),
        list: None,
        adds,
        removes: vec![],
    };
    let mut journal = MemoryJournal::default();
    let report = deliver(
        vendor.as_ref(),
        &config,
        &throttle,
        vec![work],
        &mut journal,
        &options(),
    )
    .await;
    let total = report.total();
    let mut rejected: Vec<(String, String)> = total
        .rejected
        .iter()
        .map(|r| (r.key.clone(), r.code.clone()))
        .collect();
    rejected.sort();
    assert_eq!(
        rejected,
        [
            ("person-2".to_string(), "InvalidParameterFormat".to_string()),
            ("person-6".to_string(), "InvalidParameterFormat".to_string())
        ]
    );
    let mut expected = expected(0..8);
    expected.retain(|id| id != &format!("TDID:{}", tdid(2)) && id != &format!("TDID:{}", tdid(6)));
    assert_eq!(live(&state), expected);
}

#[tokio::test]
async fn a_refused_token_fails_the_activation() {
    let (server, state) = start(Policy::open());
    let config = config(&server.url(), "not-the-token");
    let vendor = vendors::build(&config).unwrap();
    let throttle = Throttle::new(&config.limits, 0);
    let work = Work {
        activation: "ttd_act".into(),
        audience: "buyers".into(),
        list: Some(segment()),
        adds: (0..3).map(person).collect(),
        removes: vec![],
    };
    let mut journal = MemoryJournal::default();
    let report = deliver(
        vendor.as_ref(),
        &config,
        &throttle,
        vec![work],
        &mut journal,
        &options(),
    )
    .await;
    let failed = report.total().failed.expect("the activation fails");
    assert!(
        !failed.contains("not-the-token"),
        "the token never shows: {failed}"
    );
    assert!(live(&state).is_empty());
}

#[tokio::test]
async fn seeded_chaos_ends_exact() {
    for seed in [5, 41, 1999] {
        let chaos = Chaos {
            seed,
            p_429: 0.1,
            p_500: 0.1,
            p_drop_after_apply: 0.1,
        };
        let (server, state) = start(Policy::open().chaos(chaos));
        let config = config(&server.url(), trade_desk_fake::TOKEN);
        let vendor = vendors::build(&config).unwrap();
        send(
            vendor.as_ref(),
            &config,
            (0..20).map(person).collect(),
            vec![],
        )
        .await;
        send(
            vendor.as_ref(),
            &config,
            vec![],
            (0..7).map(person).collect(),
        )
        .await;
        assert_eq!(live(&state), expected(7..20), "seed {seed}");
        let snap = server.snapshot();
        let removed_twice = snap
            .mutations
            .iter()
            .any(|((_, op), n)| op == "remove" && *n > 1);
        assert!(!removed_twice, "seed {seed}: a member left twice");
    }
}

#[test]
fn dry_run_requests_are_stable() {
    let config = config("https://use-data.adsrvr.example", "dry-run-token");
    let vendor = vendors::build(&config).unwrap();
    let mut people: Vec<Member> = (1..3).map(person).collect();
    people.push(Member {
        key: "person-phone".into(),
        fields: vec![(
            "idfa".into(),
            Value::String("6d92078a-8246-4ba4-ae5b-76104861e7dc".into()),
        )],
        remote_id: None,
    });
    let mut add = vendor
        .encode_for("ttd_act", "buyers", None, Op::Add, &people)
        .unwrap();
    vendor.authorize(&mut add, &SecretString::from("dry-run-token".to_string()));
    let requests = serde_json::json!({
        "add": add.redacted(),
        "remove": vendor.encode(Some(&segment()), Op::Remove, &people[..1]).unwrap().redacted(),
    });
    assert!(!requests.to_string().contains("dry-run-token"));
    insta::with_settings!({
        snapshot_path => "../snapshots/deliver",
        prepend_module_to_snapshot => false,
        omit_expression => true,
    }, {
        insta::assert_json_snapshot!("trade_desk_dry_run", requests);
    });
}
