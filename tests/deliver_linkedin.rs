//! LinkedIn Matched Audiences end to end: the vendor file and the executor
//! against a loopback LinkedIn built from its published contract. The
//! segment ends holding exactly the audience (adds, then removes), within
//! the per-minute limit (scaled down), across token refreshes, a segment
//! that takes a moment to become available, and seeded chaos.
#![cfg(feature = "deliver")]

#[path = "support/fake/mod.rs"]
mod fake;
#[path = "support/fakes/linkedin.rs"]
mod linkedin_fake;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use accord::deliver::changes::{MemoryJournal, Work};
use accord::deliver::send::{SendOptions, deliver};
use accord::deliver::throttle::Throttle;
use accord::deliver::{Config, Limits, ListRef, Member, Op, Vendor, vendors};
use accord::plan::SettingPlan;
use fake::{Chaos, FakeLimits, FakeServer, Policy};
use linkedin_fake::{LinkedInState, Options};
use secrecy::SecretString;
use serde_json::Value;

const ACCOUNT: &str = "urn:li:sponsoredAccount:5150";
const AUDIENCE: &str = "buyers";
/// The scaled-down per-minute limit: `CALLS` in any `WINDOW`.
const CALLS: u32 = 6;
const WINDOW: Duration = Duration::from_millis(300);

struct LinkedIn {
    server: FakeServer,
    state: Arc<LinkedInState>,
}

fn start(options: Options, policy: Policy) -> LinkedIn {
    let mut state = None;
    let server = FakeServer::start(policy.refuse_with(linkedin_fake::refusal), |stats| {
        let (router, s) = linkedin_fake::router(options, stats);
        state = Some(s);
        router
    });
    LinkedIn {
        server,
        state: state.expect("router built"),
    }
}

/// The gateway's limits: the client's window, a little more lenient in
/// time so that network jitter never turns a well-spaced client into a
/// violator.
fn limited() -> Policy {
    Policy::open().limits(FakeLimits {
        calls: CALLS,
        per: WINDOW - Duration::from_millis(30),
        concurrent: 4,
        daily: None,
    })
}

fn config(kind: &str, url: &str, batch_size: usize) -> Config {
    let settings: BTreeMap<String, SettingPlan> =
        [("ad_account", ACCOUNT), ("source_platform", "ACCORD_TEST")]
            .iter()
            .map(|(k, v)| (k.to_string(), SettingPlan::Text(v.to_string())))
            .collect();
    let secrets = [
        ("client_id", linkedin_fake::CLIENT_ID),
        ("client_secret", linkedin_fake::CLIENT_SECRET),
        ("refresh_token", linkedin_fake::REFRESH_TOKEN),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), SecretString::from(v.to_string())))
    .collect();
    Config {
        name: "linkedin".into(),
        kind: kind.into(),
        endpoint: Some(url.to_string()),
        settings,
        secrets,
        limits: Limits {
            batch_size,
            max_bytes: None,
            window: Some((CALLS, WINDOW)),
            concurrent: 4,
            daily: None,
        },
        lists: BTreeMap::new(),
        list_prefix: "accord_".into(),
        dry_run: false,
    }
}

fn send_options() -> SendOptions {
    SendOptions {
        max_attempts: 12,
        base_backoff: Duration::from_millis(40),
        max_backoff: Duration::from_millis(400),
        ..SendOptions::default()
    }
}

fn email_hash(i: usize) -> String {
    format!("{i:064x}")
}

fn contact(i: usize) -> Member {
    Member {
        key: format!("person-{i}"),
        fields: vec![("email_lc_sha256".into(), Value::String(email_hash(i)))],
        remote_id: None,
    }
}

fn company(i: usize) -> Member {
    Member {
        key: format!("account-{i}"),
        fields: vec![
            ("companyName".into(), Value::String(format!("Company {i}"))),
            (
                "companyDomain".into(),
                Value::String(format!("c{i}.example")),
            ),
        ],
        remote_id: None,
    }
}

fn work(list: Option<ListRef>, adds: Vec<Member>, removes: Vec<Member>) -> Work {
    Work {
        activation: "li_act".into(),
        audience: AUDIENCE.into(),
        list,
        adds,
        removes,
    }
}

/// Adds `adds`, then removes `removes` in a second run that knows the
/// segment from the first; returns both journals.
async fn add_then_remove(
    vendor: &dyn Vendor,
    config: &Config,
    adds: Vec<Member>,
    removes: Vec<Member>,
) -> (MemoryJournal, MemoryJournal) {
    let throttle = Throttle::new(&config.limits, 0);
    let mut first = MemoryJournal::default();
    let report = deliver(
        vendor,
        config,
        &throttle,
        vec![work(None, adds, vec![])],
        &mut first,
        &send_options(),
    )
    .await;
    let total = report.total();
    assert_eq!(total.failed, None, "{total:?}");
    assert_eq!((total.pending, total.rejected.len()), (0, 0), "{total:?}");
    let id = first
        .list_ids
        .values()
        .next()
        .expect("the segment's id is journaled")
        .clone();
    let list = ListRef {
        audience: AUDIENCE.into(),
        name: config.list_name(AUDIENCE),
        id,
    };
    let mut second = MemoryJournal::default();
    let report = deliver(
        vendor,
        config,
        &throttle,
        vec![work(Some(list), vec![], removes)],
        &mut second,
        &send_options(),
    )
    .await;
    let total = report.total();
    assert_eq!(total.failed, None, "{total:?}");
    assert_eq!((total.pending, total.rejected.len()), (0, 0), "{total:?}");
    (first, second)
}

fn segment_members(state: &LinkedInState) -> BTreeSet<String> {
    let segment = state
        .segment_named(&format!("accord_{AUDIENCE}"))
        .expect("the segment exists");
    assert_eq!(segment.account, ACCOUNT);
    segment.members
}

#[tokio::test]
async fn contacts_end_as_the_audience_within_the_limit_on_a_new_segment() {
    let options = Options {
        settle: Duration::from_millis(1200),
        ..Options::default()
    };
    let li = start(options, limited());
    let config = config("linkedin_contacts", &li.server.url(), 7);
    let vendor = vendors::build(&config).unwrap();
    let adds: Vec<Member> = (0..40).map(contact).collect();
    let removes: Vec<Member> = (0..10).map(contact).collect();
    add_then_remove(vendor.as_ref(), &config, adds, removes).await;

    let expected: BTreeSet<String> = (10..40)
        .map(|i| format!("SHA256_EMAIL:{}", email_hash(i)))
        .collect();
    assert_eq!(segment_members(&li.state), expected);
    let segment = li.state.segment_named("accord_buyers").unwrap();
    assert_eq!(
        (segment.kind.as_str(), segment.source_platform.as_str()),
        ("USER", "ACCORD_TEST")
    );
    let snap = li.server.snapshot();
    assert_eq!(snap.violations, 0, "the client kept to the window");
    assert_eq!(li.state.segments().len(), 1, "one segment, created once");
}

#[tokio::test]
async fn the_token_is_refreshed_mid_run_when_linkedin_refuses_it() {
    let options = Options {
        token_lifetime: Duration::from_millis(400),
        stated_lifetime: Some(Duration::from_secs(3600)),
        ..Options::default()
    };
    let li = start(options, limited().latency(Duration::from_millis(20)));
    let config = config("linkedin_contacts", &li.server.url(), 2);
    let vendor = vendors::build(&config).unwrap();
    let adds: Vec<Member> = (0..30).map(contact).collect();
    let removes: Vec<Member> = (0..5).map(contact).collect();
    add_then_remove(vendor.as_ref(), &config, adds, removes).await;

    let expected: BTreeSet<String> = (5..30)
        .map(|i| format!("SHA256_EMAIL:{}", email_hash(i)))
        .collect();
    assert_eq!(segment_members(&li.state), expected);
    let refreshes = *li.state.refreshes.lock().unwrap();
    assert!(refreshes >= 3, "tokens refreshed mid-run: {refreshes}");
    assert_eq!(li.server.snapshot().violations, 0);
}

#[tokio::test]
async fn companies_end_exact_under_seeded_chaos() {
    for seed in [3, 17, 2026] {
        let chaos = Chaos {
            seed,
            p_429: 0.1,
            p_500: 0.1,
            p_drop_after_apply: 0.1,
        };
        // Chaos spares the token and the segment calls: a lost answer to a
        // creation is the executor's to recover, not this vendor's.
        let policy = limited()
            .chaos(chaos)
            .exempt_from_chaos("/oauth/v2/accessToken")
            .exempt_from_chaos("/rest/dmpSegments");
        let li = start(Options::default(), policy);
        li.state
            .seed_segment("accord_buyers", "urn:li:sponsoredAccount:1", "COMPANY");
        li.state.seed_segment("accord_buyers", ACCOUNT, "USER");
        let config = config("linkedin_companies", &li.server.url(), 4);
        let vendor = vendors::build(&config).unwrap();
        let adds: Vec<Member> = (0..24).map(company).collect();
        let removes: Vec<Member> = (0..6).map(company).collect();
        add_then_remove(vendor.as_ref(), &config, adds, removes).await;

        let segment = li
            .state
            .segments()
            .into_iter()
            .find(|s| s.account == ACCOUNT && s.kind == "COMPANY")
            .expect("a company segment on the account");
        let expected: BTreeSet<String> = (6..24)
            .map(|i| format!("Company {i}|c{i}.example"))
            .collect();
        assert_eq!(segment.members, expected, "seed {seed}");
        let snap = li.server.snapshot();
        assert_eq!(snap.violations, 0, "seed {seed}");
        assert!(
            snap.max_mutations() <= 1,
            "seed {seed}: a member changed twice"
        );
    }
}

#[tokio::test]
async fn a_viewer_cannot_manage_audiences_and_the_activation_fails() {
    let options = Options {
        role: "VIEWER",
        ..Options::default()
    };
    let li = start(options, Policy::open());
    let config = config("linkedin_contacts", &li.server.url(), 10);
    let vendor = vendors::build(&config).unwrap();
    let seeded = li.state.seed_segment("accord_buyers", ACCOUNT, "USER");
    let list = ListRef {
        audience: AUDIENCE.into(),
        name: "accord_buyers".into(),
        id: seeded.to_string(),
    };
    let throttle = Throttle::new(&config.limits, 0);
    let mut journal = MemoryJournal::default();
    let report = deliver(
        vendor.as_ref(),
        &config,
        &throttle,
        vec![work(Some(list), (0..3).map(contact).collect(), vec![])],
        &mut journal,
        &send_options(),
    )
    .await;
    let failed = report.total().failed.expect("the activation fails");
    assert!(failed.contains("ACCESS_DENIED"), "{failed}");
    assert!(segment_members(&li.state).is_empty());
}

#[test]
fn dry_run_requests_are_stable() {
    let config = config("linkedin_contacts", "https://api.linkedin.example", 10);
    let contacts = vendors::build(&config).unwrap();
    let companies = vendors::build(&Config {
        kind: "linkedin_companies".into(),
        ..config.clone()
    })
    .unwrap();
    let list = ListRef {
        audience: AUDIENCE.into(),
        name: "accord_buyers".into(),
        id: "<list id of accord_buyers>".into(),
    };
    let mut people: Vec<Member> = (1..3).map(contact).collect();
    people[1].fields.push((
        "gaid".into(),
        Value::String("38400000-8cf0-11bd-b23e-10b96e40000d".into()),
    ));
    let requests = serde_json::json!({
        "find": contacts.find_list_request("accord_buyers").unwrap().redacted(),
        "create": companies.create_list_request("accord_buyers").unwrap().redacted(),
        "add_contacts": contacts.encode(Some(&list), Op::Add, &people).unwrap().redacted(),
        "remove_companies": companies.encode(Some(&list), Op::Remove, &[company(1), company(2)]).unwrap().redacted(),
    });
    insta::with_settings!({
        snapshot_path => "../snapshots/deliver",
        prepend_module_to_snapshot => false,
        omit_expression => true,
    }, {
        insta::assert_json_snapshot!("linkedin_dry_run", requests);
    });
}
