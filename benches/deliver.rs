//! The delivery benchmark: how fast accord's client sends an audience to
//! Google Customer Match, against how fast the Google fake can take it.
//!
//! Run with `cargo bench --bench deliver --features deliver`;
//! `-- --members N` changes the audience size (default 1,000,000).
//!
//! Both stages send the same members to the loopback Data Manager API fake
//! with its limits lifted (no window, no in-flight cap), in batches of
//! 10,000 (the API's maximum), 10 requests at once (Google's advice):
//! - baseline: a plain reqwest loop posting bodies encoded before the clock
//!   starts: the fake's own receive rate on this machine;
//! - accord: the executor (`deliver::send::deliver`) with the Google vendor:
//!   token, encoding, throttle, journal, classification.
//!
//! Reported per stage: members per second, and the CPU time per member of
//! the client's threads (read from `/proc`, so Linux only; elsewhere the
//! column is empty). The fake runs on its own threads and is not counted.

#[path = "../tests/support/fake/mod.rs"]
mod fake;
#[path = "../tests/support/fakes/google.rs"]
mod google_fake;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use accord::deliver::changes::{MemoryJournal, Work};
use accord::deliver::send::{SendOptions, deliver};
use accord::deliver::throttle::Throttle;
use accord::deliver::{Config, Limits, ListRef, Member, Op, Vendor, vendors};
use accord::plan::SettingPlan;
use secrecy::SecretString;
use tokio::sync::Semaphore;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const DEFAULT_MEMBERS: usize = 1_000_000;
const BATCH: usize = 10_000;
const IN_FLIGHT: usize = 10;
/// The client runtime's thread name, how its CPU time is told apart.
const CLIENT_THREAD: &str = "bench-client";

/// What one stage measured.
struct Measure {
    elapsed: Duration,
    cpu: Option<Duration>,
}

fn main() {
    let members = members_arg();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(CLIENT_THREAD)
        .enable_all()
        .build()
        .expect("client runtime");
    let people = Arc::new(people(members));
    println!(
        "delivering {members} members to the Google fake, batches of {BATCH}, {IN_FLIGHT} in flight"
    );
    // Spawned, so that all of a stage runs on the client's named threads.
    let baseline = runtime
        .block_on(runtime.spawn(raw_loop(people.clone())))
        .expect("baseline stage");
    let people = Arc::try_unwrap(people).expect("the baseline is done with the members");
    let accord = runtime
        .block_on(runtime.spawn(executor(people)))
        .expect("accord stage");
    report(members, &baseline, &accord);
}

fn members_arg() -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == "--members")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.replace('_', "").parse().ok())
        .unwrap_or(DEFAULT_MEMBERS)
}

fn people(n: usize) -> Vec<Member> {
    (0..n)
        .map(|i| Member {
            key: format!("p{i}"),
            fields: vec![(
                "email_lc_sha256".to_string(),
                serde_json::Value::String(accord::hash::sha256_hex(format!(
                    "person{i}@example.com"
                ))),
            )],
            remote_id: None,
        })
        .collect()
}

fn config(server: &fake::FakeServer) -> Config {
    Config {
        name: "google_bench".into(),
        kind: "google_customer_match".into(),
        endpoint: Some(server.url()),
        settings: BTreeMap::from([("customer_id".into(), SettingPlan::Text("1234567890".into()))]),
        secrets: BTreeMap::from([(
            "service_account".into(),
            SecretString::from(google_fake::KEY_FILE.to_string()),
        )]),
        limits: Limits {
            batch_size: BATCH,
            max_bytes: None,
            window: None,
            concurrent: IN_FLIGHT,
            daily: None,
        },
        lists: BTreeMap::new(),
        list_prefix: String::new(),
        dry_run: false,
    }
}

/// The baseline: bodies encoded (and the token fetched) before the clock
/// starts, then posted by a bare reqwest loop.
async fn raw_loop(people: Arc<Vec<Member>>) -> Measure {
    let (server, google) = google_fake::start(fake::Policy::open(), Default::default());
    let list = list_ref(google.add_list("bench"));
    let vendor = vendors::build(&config(&server)).expect("google vendor");
    let client = reqwest::Client::new();
    let token = fetch_token(&client, vendor.as_ref()).await;
    let bodies: Vec<Vec<u8>> = people
        .chunks(BATCH)
        .map(|chunk| {
            vendor
                .encode(Some(&list), Op::Add, chunk)
                .expect("encodes")
                .body
        })
        .collect();
    let url = format!("{}/v1/audienceMembers:ingest", server.url());
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    let cpu_before = client_cpu();
    let started = Instant::now();
    let mut sends = tokio::task::JoinSet::new();
    for body in bodies {
        let permit = slots.clone().acquire_owned().await.expect("semaphore");
        let request = client
            .post(&url)
            .bearer_auth(&token)
            .header("Content-Type", "application/json")
            .body(body);
        sends.spawn(async move {
            let status = request.send().await.expect("sent").status();
            drop(permit);
            assert!(status.is_success(), "the fake refused a batch: {status}");
        });
    }
    while let Some(sent) = sends.join_next().await {
        sent.expect("send task");
    }
    let measure = finish(started, cpu_before);
    assert_eq!(google.members(&list.id).len(), people.len());
    measure
}

/// accord's executor, from the members to the journal.
async fn executor(people: Vec<Member>) -> Measure {
    let (server, google) = google_fake::start(fake::Policy::open(), Default::default());
    let list = list_ref(google.add_list("bench"));
    let config = config(&server);
    let vendor = vendors::build(&config).expect("google vendor");
    let throttle = Throttle::new(&config.limits, 0);
    let mut journal = MemoryJournal::default();
    let count = people.len();
    let work = Work {
        activation: "bench".into(),
        audience: "bench".into(),
        list: Some(list.clone()),
        adds: people,
        removes: Vec::new(),
    };
    let cpu_before = client_cpu();
    let started = Instant::now();
    let report = deliver(
        vendor.as_ref(),
        &config,
        &throttle,
        vec![work],
        &mut journal,
        &SendOptions::default(),
    )
    .await;
    let measure = finish(started, cpu_before);
    let total = report.total();
    assert_eq!(total.failed, None);
    assert_eq!(total.accepted as usize, count);
    assert_eq!(google.members(&list.id).len(), count);
    measure
}

async fn fetch_token(client: &reqwest::Client, vendor: &dyn Vendor) -> String {
    let request = vendor
        .token_request(std::time::SystemTime::now())
        .expect("a token request");
    let response = client
        .post(&request.url)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(request.body)
        .send()
        .await
        .expect("token endpoint");
    let bytes = response.bytes().await.expect("token response");
    let body: serde_json::Value = serde_json::from_slice(&bytes).expect("token JSON");
    body["access_token"].as_str().expect("a token").to_string()
}

fn list_ref(id: String) -> ListRef {
    ListRef {
        audience: "bench".into(),
        name: "bench".into(),
        id,
    }
}

fn finish(started: Instant, cpu_before: Option<Duration>) -> Measure {
    let elapsed = started.elapsed();
    let cpu = cpu_before
        .zip(client_cpu())
        .map(|(before, after)| after.saturating_sub(before));
    Measure { elapsed, cpu }
}

/// CPU time (user + system) of the client runtime's threads so far.
fn client_cpu() -> Option<Duration> {
    let tasks = std::fs::read_dir("/proc/self/task").ok()?;
    // Linux reports thread times in clock ticks, 100 a second on every
    // platform Rust supports.
    let ticks_per_second = 100.0;
    let mut ticks = 0u64;
    for task in tasks.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if !comm.trim().starts_with(CLIENT_THREAD) {
            continue;
        }
        let stat = std::fs::read_to_string(task.path().join("stat")).ok()?;
        // Fields after the command (which may hold spaces) start at ") ".
        let fields: Vec<&str> = stat.rsplit_once(") ")?.1.split(' ').collect();
        let utime: u64 = fields.get(11)?.parse().ok()?;
        let stime: u64 = fields.get(12)?.parse().ok()?;
        ticks += utime + stime;
    }
    Some(Duration::from_secs_f64(ticks as f64 / ticks_per_second))
}

fn report(members: usize, baseline: &Measure, accord: &Measure) {
    println!();
    println!("| stage | time | members/s | client CPU per member | ÷ baseline (time) |");
    println!("|---|---|---|---|---|");
    for (name, m) in [
        ("raw reqwest loop (baseline)", baseline),
        ("accord executor", accord),
    ] {
        let rate = members as f64 / m.elapsed.as_secs_f64();
        let cpu = m
            .cpu
            .map(|c| format!("{:.2} µs", c.as_secs_f64() * 1e6 / members as f64))
            .unwrap_or_default();
        let ratio = m.elapsed.as_secs_f64() / baseline.elapsed.as_secs_f64();
        println!(
            "| {name} | {:.2?} | {rate:.0} | {cpu} | {ratio:.2}× |",
            m.elapsed
        );
    }
    if let (Some(a), Some(b)) = (accord.cpu, baseline.cpu) {
        let ratio = a.as_secs_f64() / b.as_secs_f64().max(1e-9);
        println!("\nclient CPU, accord ÷ baseline: {ratio:.2}×");
    }
}
