//! The store benchmark: the ledger of one activation at 1M and 10M members,
//! against a baseline measured in the same process: the same rows as one
//! JSON file, as the run's state was kept before the store (written whole
//! with an fsync, read and parsed whole).
//!
//! Per size it times, on disk (WAL, `synchronous=FULL`):
//! - insert: every member accepted, in batches of 10k (one transaction per
//!   batch, as the delivery records one request's outcome);
//! - read: one (activation, audience) back, while a second audience of 10%
//!   of the size shares the table;
//! - update: 10k outcomes spread over the audience, one transaction; the
//!   baseline has to write the whole file again for it.
//!
//! `cargo bench --features deliver --bench store`; `ACCORD_STORE_BENCH_SIZES`
//! (default `1000000,10000000`) sets the sizes.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use accord::faults::Faults;
use accord::store::{LedgerUpdate, Store};

const BATCH: usize = 10_000;
const UPDATES: usize = 10_000;

fn member(i: usize) -> String {
    format!("person{i:09}@example.com")
}

fn payload(i: usize, version: u32) -> Vec<u8> {
    format!(
        r#"{{"email":"{}","company":"Company {}","employees":{},"v":{version}}}"#,
        member(i),
        i % 100_000,
        i % 5_000
    )
    .into_bytes()
}

fn accepted(i: usize, version: u32) -> LedgerUpdate {
    LedgerUpdate::Accepted {
        member: member(i),
        payload: payload(i, version),
        remote_id: Some(format!("{}", 1_000_000 + i)),
        at: 1_764_504_000_000_000,
    }
}

/// The members an update of 10k outcomes touches: spread evenly.
fn spread(size: usize) -> impl Iterator<Item = usize> {
    let step = (size / UPDATES).max(1);
    (0..size).step_by(step).take(UPDATES)
}

struct Timings {
    insert: Duration,
    read: Duration,
    update: Duration,
    bytes: u64,
}

/// Accepts members `0..n` of an audience, one transaction per batch.
fn insert(store: &Store, audience: &str, n: usize) {
    let mut batch = Vec::with_capacity(BATCH);
    for i in 0..n {
        batch.push(accepted(i, 1));
        if batch.len() == BATCH || i + 1 == n {
            store.record("bench", audience, &batch).expect("record");
            batch.clear();
        }
    }
}

fn store_run(dir: &Path, size: usize) -> Timings {
    let store = Store::open(dir, &Faults::default()).expect("open the store");
    let started = Instant::now();
    insert(&store, "Big", size);
    let insert_time = started.elapsed();
    insert(&store, "Other", size / 10);
    let started = Instant::now();
    let held = store.held("bench", "Big").expect("held");
    let read = started.elapsed();
    assert_eq!(held.len(), size);
    drop(held);
    let updates: Vec<LedgerUpdate> = spread(size).map(|i| accepted(i, 2)).collect();
    let started = Instant::now();
    store.record("bench", "Big", &updates).expect("update");
    let update = started.elapsed();
    drop(store);
    Timings {
        insert: insert_time,
        read,
        update,
        bytes: folder_bytes(&dir.join(".accord")),
    }
}

/// The ledger's columns of one member, as the old state kept a row.
type JsonRow = (String, String, String, String, i64);

fn json_row(i: usize, version: u32) -> JsonRow {
    let payload = String::from_utf8(payload(i, version)).expect("utf-8");
    let hash = accord::hash::sha256_hex(&payload);
    (
        payload,
        hash,
        format!("{}", 1_000_000 + i),
        "accepted".to_string(),
        1_764_504_000_000_000,
    )
}

fn write_json(path: &Path, rows: &BTreeMap<String, JsonRow>) {
    let bytes = serde_json::to_vec(rows).expect("serialise");
    let mut file = std::fs::File::create(path).expect("create");
    file.write_all(&bytes).expect("write");
    file.sync_all().expect("fsync");
}

fn json_run(dir: &Path, size: usize) -> Timings {
    let path = dir.join("state.json");
    let started = Instant::now();
    let mut rows: BTreeMap<String, JsonRow> =
        (0..size).map(|i| (member(i), json_row(i, 1))).collect();
    write_json(&path, &rows);
    let insert = started.elapsed();
    drop(rows);
    let started = Instant::now();
    let bytes = std::fs::read(&path).expect("read");
    rows = serde_json::from_slice(&bytes).expect("parse");
    let read = started.elapsed();
    assert_eq!(rows.len(), size);
    let started = Instant::now();
    for i in spread(size) {
        rows.insert(member(i), json_row(i, 2));
    }
    write_json(&path, &rows);
    let update = started.elapsed();
    Timings {
        insert,
        read,
        update,
        bytes: bytes.len() as u64,
    }
}

fn folder_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

fn ratio(store: Duration, json: Duration) -> String {
    format!("{:.2}x", store.as_secs_f64() / json.as_secs_f64().max(1e-9))
}

fn main() {
    let sizes: Vec<usize> = std::env::var("ACCORD_STORE_BENCH_SIZES")
        .unwrap_or_else(|_| "1000000,10000000".into())
        .split(',')
        .map(|s| s.trim().parse().expect("ACCORD_STORE_BENCH_SIZES: numbers"))
        .collect();
    println!("size | step | store | json file | store/json");
    for size in sizes {
        let scratch = tempfile::tempdir().expect("scratch");
        let json = json_run(scratch.path(), size);
        std::fs::remove_file(scratch.path().join("state.json")).expect("remove");
        let store = store_run(scratch.path(), size);
        for (step, s, j) in [
            ("insert", store.insert, json.insert),
            ("read one audience", store.read, json.read),
            ("update 10k outcomes", store.update, json.update),
        ] {
            println!(
                "{size} | {step} | {:.3}s | {:.3}s | {}",
                s.as_secs_f64(),
                j.as_secs_f64(),
                ratio(s, j)
            );
        }
        println!(
            "{size} | bytes on disk | {} | {} | {:.2}x",
            store.bytes,
            json.bytes,
            store.bytes as f64 / json.bytes.max(1) as f64
        );
    }
}
