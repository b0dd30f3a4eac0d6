//! The run state at scale: an incremental delivery of one activation of
//! 10M members, where a second run changes 1% of them (0.5% updated, 0.25%
//! removed, 0.25% added). Timed from the evaluated audience to the committed
//! store, not counting the delivered files:
//! - members: the payload hashes and the run id's digest of the new
//!   evaluation, a batch of 131,072 members at a time as the run takes
//!   them from the export query (`Members::new`, `member_batches`);
//! - delta: the merge of the committed members file against them;
//! - save: what the store keeps of the new members, written and synced (a
//!   changes file against the committed base: 1% is under a tenth of it);
//! - commit: the pending record, the commit, and the old files removed.
//!
//! Two baselines are measured in the same process. The first is saving
//! the same members as a new base (every member written again), as each
//! delivery did before changes files, and as a delivery still does once
//! its changes pass a tenth of the base. The second is the state as it was kept
//! before the columnar one: every member a JSON row in a map, the change set
//! computed over the maps, the target's rows written into the store's
//! tables. It is run at the sizes up to `ACCORD_BENCH_BASELINE_MAX`
//! (default 1M): at 10M it takes minutes.
//!
//! `cargo bench --features engine --bench state`; `ACCORD_BENCH_SIZES`
//! (default `1000000,10000000`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use accord::faults::Faults;
use accord::run::delta;
use accord::run::member_batches::{Builder, MemberBatches};
use accord::run::members::Members;
use accord::run::state::{self, Membership, Pending, Store};
use datafusion::arrow::array::{Array, ArrayRef, Int64Array, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use serde_json::{Value, json};

/// One evaluation: member `i` for `i` in `ids`, its payload at `version`.
fn payload(ids: &[u64], version: impl Fn(u64) -> u64) -> (StringArray, RecordBatch) {
    let keys = StringArray::from_iter_values(ids.iter().map(|i| format!("buyers/{i:010}")));
    let hex = |i: u64, v: u64| format!("{:064x}", i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ v);
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(ids.iter().map(|_| "buyers"))),
        Arc::new(StringArray::from_iter_values(
            ids.iter().map(|&i| hex(i, version(i))),
        )),
        Arc::new(StringArray::from_iter_values(
            ids.iter().map(|i| format!("Company {}", i % 100_000)),
        )),
        Arc::new(Int64Array::from_iter_values(
            ids.iter().map(|&i| (i % 5_000) as i64 + version(i) as i64),
        )),
    ];
    let schema = Schema::new(vec![
        Field::new("audience", DataType::Utf8, true),
        Field::new("email_sha256", DataType::Utf8, true),
        Field::new("company", DataType::Utf8, true),
        Field::new("employees", DataType::Int64, true),
    ]);
    let batch = RecordBatch::try_new(Arc::new(schema), columns).expect("a batch");
    (keys, batch)
}

/// The members of one evaluation, a batch at a time as a run takes them.
fn members_of((keys, batch): (StringArray, RecordBatch)) -> MemberBatches {
    const BATCH: usize = 128 * 1024;
    let mut builder = None;
    for start in (0..keys.len()).step_by(BATCH) {
        let len = BATCH.min(keys.len() - start);
        let members =
            Members::new(keys.slice(start, len), &batch.slice(start, len)).expect("members");
        builder
            .get_or_insert_with(|| Builder::new(members.batch().schema(), None))
            .push(members)
            .expect("in order");
    }
    let members = builder.expect("members").finish().expect("members");
    // The run's digest is taken as the batches come.
    assert_eq!(members.digest().len(), 64);
    members
}

/// The second run's members: every 200th updated, every 400th (offset)
/// removed, as many new ones added past the end.
fn second(size: u64) -> (Vec<u64>, impl Fn(u64) -> u64) {
    let mut ids: Vec<u64> = (0..size).filter(|i| i % 400 != 7).collect();
    ids.extend(size..size + size / 400);
    (ids, |i: u64| u64::from(i % 200 == 3))
}

struct Columnar {
    members: Duration,
    delta: Duration,
    save: Duration,
    commit: Duration,
    changes: (u64, u64, u64),
    file_bytes: u64,
    /// Saving the same members as a new base instead.
    new_base: Duration,
    base_bytes: u64,
}

impl Columnar {
    fn total(&self) -> Duration {
        self.members + self.delta + self.save + self.commit
    }
}

fn columnar(size: u64) -> Columnar {
    let root = tempfile::tempdir().expect("a folder");
    let faults = Faults::default();
    let store = Store::open(root.path(), &faults).expect("a store");
    let commit = |members: &MemberBatches, run_id: &str| {
        let pending =
            state::save(root.path(), "files", run_id, members, None, &faults).expect("saved");
        store.begin(&pending).expect("begun");
        state::commit(root.path(), &store, &pending, &faults).expect("committed");
    };
    // The first run: everyone added.
    let ids: Vec<u64> = (0..size).collect();
    let first = members_of(payload(&ids, |_| 0));
    commit(&first, "20261128T120000Z-00000001");
    drop(first);

    let (ids, version) = second(size);
    let evaluated = payload(&ids, version);
    let started = Instant::now();
    let members = members_of(evaluated);
    let hashed = started.elapsed();
    let old = state::committed(root.path(), &store, "files")
        .expect("the state")
        .expect("a first delivery");
    let started = Instant::now();
    let delta = delta::between(old.old(), &members).expect("a delta");
    let joined = started.elapsed();
    // The baseline: the same members as a new base, saved under another
    // run id and left for the commit to remove.
    let started = Instant::now();
    let base = state::save(
        root.path(),
        "files",
        "20261129T120000Z-0000000b",
        &members,
        None,
        &faults,
    )
    .expect("saved");
    let new_base = started.elapsed();
    let bytes = |name: Option<&str>| {
        std::fs::metadata(state::folder(root.path()).join(name.expect("a file")))
            .map(|m| m.len())
            .unwrap_or(0)
    };
    let base_bytes = bytes(base.file.as_deref());
    let started = Instant::now();
    let pending = state::save(
        root.path(),
        "files",
        "20261129T120000Z-00000002",
        &members,
        Some((&old, &delta)),
        &faults,
    )
    .expect("saved");
    let saved = started.elapsed();
    assert!(
        pending.changes.is_some(),
        "1% changed writes a changes file"
    );
    let started = Instant::now();
    store.begin(&pending).expect("begun");
    state::commit(root.path(), &store, &pending, &faults).expect("committed");
    let committed = started.elapsed();
    let file_bytes = bytes(pending.changes.as_deref());
    Columnar {
        members: hashed,
        delta: joined,
        save: saved,
        commit: committed,
        changes: (delta.added, delta.updated, delta.removed),
        file_bytes,
        new_base,
        base_bytes,
    }
}

/// The state as it was kept before: JSON rows by member, changes over the
/// maps, the rows in the store's tables.
fn baseline(size: u64) -> (Duration, (u64, u64, u64)) {
    let root = tempfile::tempdir().expect("a folder");
    let faults = Faults::default();
    let store = Store::open(root.path(), &faults).expect("a store");
    let rows = |ids: &[u64], version: &dyn Fn(u64) -> u64| -> BTreeMap<String, Vec<Value>> {
        ids.iter()
            .map(|&i| {
                (
                    format!("buyers/{i:010}"),
                    vec![
                        json!("buyers"),
                        json!(format!(
                            "{:064x}",
                            i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ version(i)
                        )),
                        json!(format!("Company {}", i % 100_000)),
                        json!((i % 5_000) as i64 + version(i) as i64),
                    ],
                )
            })
            .collect()
    };
    let columns: Vec<String> = ["audience", "email_sha256", "company", "employees"]
        .map(String::from)
        .to_vec();
    let commit = |rows: BTreeMap<String, Vec<Value>>, run_id: &str| {
        let pending = Pending {
            format: state::FORMAT,
            activation: "files".into(),
            run_id: run_id.into(),
            target: Membership {
                columns: columns.clone(),
                rows,
            },
            file: None,
            changes: None,
        };
        store.begin(&pending).expect("begun");
        store.commit(&pending).expect("committed");
    };
    let ids: Vec<u64> = (0..size).collect();
    commit(rows(&ids, &|_| 0), "20261128T120000Z-00000001");
    let (ids, version) = second(size);
    let new = rows(&ids, &version);
    let started = Instant::now();
    let old = store.load("files").expect("the state").expect("a state");
    let old = &old.membership.rows;
    let (mut added, mut updated, mut removed) = (0, 0, 0);
    for (key, row) in &new {
        match old.get(key) {
            None => added += 1,
            Some(prev) if prev != row => updated += 1,
            Some(_) => {}
        }
    }
    for key in old.keys() {
        if !new.contains_key(key) {
            removed += 1;
        }
    }
    commit(new, "20261129T120000Z-00000002");
    (started.elapsed(), (added, updated, removed))
}

fn env_list(name: &str, default: &str) -> Vec<u64> {
    std::env::var(name)
        .unwrap_or_else(|_| default.to_string())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}

fn main() {
    let profile = if cfg!(debug_assertions) {
        "dev profile (debug build; dependencies at opt-level 1)"
    } else {
        "release"
    };
    let baseline_max = env_list("ACCORD_BENCH_BASELINE_MAX", "1000000")
        .first()
        .copied()
        .unwrap_or(1_000_000);
    println!("run state, second run with 1% of members changed; {profile}");
    for size in env_list("ACCORD_BENCH_SIZES", "1000000,10000000") {
        let c = columnar(size);
        let secs = |d: Duration| d.as_secs_f64();
        println!(
            "{size} members: columnar {:.2} s (members {:.2} s, delta {:.2} s, save {:.3} s, commit {:.3} s); changes {:?}; changes file {:.1} MB",
            secs(c.total()),
            secs(c.members),
            secs(c.delta),
            secs(c.save),
            secs(c.commit),
            c.changes,
            c.file_bytes as f64 / 1e6
        );
        println!(
            "{size} members: saving a new base instead {:.2} s ({:.0} MB); changes file/new base = {:.3}; total with a new base {:.2} s",
            secs(c.new_base),
            c.base_bytes as f64 / 1e6,
            secs(c.save) / secs(c.new_base),
            secs(c.total() - c.save + c.new_base)
        );
        if size <= baseline_max {
            let (b, changes) = baseline(size);
            assert_eq!(changes, c.changes, "both ways find the same changes");
            println!(
                "{size} members: JSON rows (before) {:.2} s; columnar/before = {:.3}",
                secs(b),
                secs(c.total()) / secs(b)
            );
        }
    }
}
