//! The run's store (`.accord/store.db`): the ledger, the request journal,
//! the tallies and the file-delivery state round-trip through a database on
//! disk; its format is checked; the old JSON state files are imported once;
//! a preview writes nothing.
#![cfg(feature = "deliver")]

use std::collections::BTreeMap;
use std::path::Path;

use accord::faults::Faults;
use accord::store::{
    self, Intent, LedgerUpdate, ListRecord, Membership, Pending, ReadItem, ReadRecord, ReadUpdate,
    Segment, State, Status, Store, StoreError,
};
use serde_json::json;
use sha2::{Digest, Sha256};

#[path = "support/temp.rs"]
mod temp;

fn membership(rows: &[(&str, i64)]) -> Membership {
    Membership {
        columns: vec!["employees".into()],
        rows: rows
            .iter()
            .map(|(k, v)| (k.to_string(), vec![json!(v)]))
            .collect(),
    }
}

fn pending(activation: &str, run_id: &str, rows: &[(&str, i64)]) -> Pending {
    Pending {
        format: store::FORMAT,
        activation: activation.into(),
        run_id: run_id.into(),
        target: membership(rows),
        file: None,
        changes: None,
    }
}

/// What format 5 added, removed again: the changes file column.
const WITHOUT_CHANGES_FILES: &str =
    "ALTER TABLE file_state DROP COLUMN changes; ALTER TABLE file_pending DROP COLUMN changes;";

/// What formats 4 and 5 added, removed again: the members file columns.
const WITHOUT_MEMBERS_FILES: &str = concat!(
    "ALTER TABLE file_state DROP COLUMN changes; ALTER TABLE file_pending DROP COLUMN changes;",
    "ALTER TABLE file_state DROP COLUMN file; ALTER TABLE file_pending DROP COLUMN file;"
);

/// Turns the project's store back into format `version`: `undo` drops what
/// the later formats added.
fn make_older(root: &Path, undo: &str, version: i64) {
    let raw = rusqlite::Connection::open(store::path(root)).unwrap();
    raw.execute_batch(&format!("{undo} PRAGMA user_version = {version};"))
        .unwrap();
}

/// The format the project's store is in.
fn format_of(root: &Path) -> i64 {
    let raw = rusqlite::Connection::open(store::path(root)).unwrap();
    raw.query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap()
}

fn accepted(member: &str, payload: &str, remote_id: Option<&str>, at: i64) -> LedgerUpdate {
    LedgerUpdate::Accepted {
        member: member.into(),
        payload: payload.as_bytes().to_vec(),
        remote_id: remote_id.map(str::to_string),
        at,
    }
}

fn open(root: &Path) -> Store {
    Store::open(root, &Faults::default()).expect("the store opens")
}

#[test]
fn the_store_is_send_and_sync() {
    fn shared<T: Send + Sync>() {}
    shared::<Store>();
}

#[test]
fn the_ledger_keeps_what_the_destination_accepted() {
    let scratch = temp::dir("store-ledger");
    let store = open(scratch.path());
    store
        .record(
            "mkto",
            "Big",
            &[
                accepted("b@x.com", r#"{"email":"b@x.com"}"#, Some("1002"), 10),
                accepted("a@x.com", r#"{"email":"a@x.com"}"#, Some("1001"), 10),
                LedgerUpdate::Rejected {
                    member: "c@x.com".into(),
                    code: "1003".into(),
                    message: "Invalid email".into(),
                },
            ],
        )
        .unwrap();
    // Another audience and activation keep their own rows.
    store
        .record("mkto", "Small", &[accepted("a@x.com", "{}", None, 10)])
        .unwrap();
    store
        .record("other", "Big", &[accepted("z@x.com", "{}", None, 10)])
        .unwrap();
    // Later: a changes without a new id, b is refused, c goes pending, z leaves.
    store
        .record(
            "mkto",
            "Big",
            &[
                accepted("a@x.com", r#"{"email":"a@x.com","n":2}"#, None, 20),
                LedgerUpdate::Rejected {
                    member: "b@x.com".into(),
                    code: "1006".into(),
                    message: "Field not found".into(),
                },
                LedgerUpdate::Pending {
                    member: "c@x.com".into(),
                },
            ],
        )
        .unwrap();
    store
        .record(
            "other",
            "Big",
            &[LedgerUpdate::Removed {
                member: "z@x.com".into(),
            }],
        )
        .unwrap();
    drop(store);

    let store = open(scratch.path());
    let held = store.held("mkto", "Big").unwrap();
    let members: Vec<&str> = held.iter().map(|r| r.member.as_str()).collect();
    assert_eq!(members, ["a@x.com", "b@x.com", "c@x.com"], "member order");
    let (a, b, c) = (&held[0], &held[1], &held[2]);
    let a_payload = br#"{"email":"a@x.com","n":2}"#;
    assert_eq!(a.status, Status::Accepted);
    assert_eq!(a.payload.as_deref(), Some(&a_payload[..]));
    let digest: [u8; 32] = Sha256::digest(a_payload).into();
    assert_eq!(a.payload_hash, Some(digest));
    assert_eq!(
        a.remote_id.as_deref(),
        Some("1001"),
        "an id once given stays"
    );
    assert_eq!(
        (a.attempts, a.accepted_at, a.error.clone()),
        (0, Some(20), None)
    );
    // A refusal keeps what the destination last accepted.
    assert_eq!(b.status, Status::Rejected);
    assert_eq!(b.payload.as_deref(), Some(&br#"{"email":"b@x.com"}"#[..]));
    assert_eq!(b.remote_id.as_deref(), Some("1002"));
    assert_eq!(b.error, Some(("1006".into(), "Field not found".into())));
    assert_eq!((b.attempts, b.accepted_at), (1, Some(10)));
    // Never accepted: no payload; pending keeps the refusal that came before.
    assert_eq!(c.status, Status::Pending);
    assert_eq!((c.payload.clone(), c.payload_hash), (None, None));
    assert_eq!(c.attempts, 2);
    assert_eq!(c.error, Some(("1003".into(), "Invalid email".into())));
    assert_eq!(store.held("mkto", "Small").unwrap().len(), 1);
    assert!(store.held("other", "Big").unwrap().is_empty());
    assert!(store.held("mkto", "Nobody").unwrap().is_empty());
    // The vendor's ids lead back to the members, over the activation's
    // audiences (what a Marketo activity source links leads with).
    let remote: Vec<(String, String)> = store
        .remote_members("mkto")
        .unwrap()
        .into_iter()
        .map(|r| (r.remote_id, r.member))
        .collect();
    assert_eq!(
        remote,
        [
            ("1001".to_string(), "a@x.com".to_string()),
            ("1002".to_string(), "b@x.com".to_string())
        ]
    );
    assert!(store.remote_members("other").unwrap().is_empty());
}

#[test]
fn the_journal_shows_requests_that_never_completed() {
    let scratch = temp::dir("store-journal");
    let store = open(scratch.path());
    let members = vec!["a@x.com".to_string(), "b@x.com".to_string()];
    let intent = |audience: &'static str, op: &'static str| Intent {
        run_id: "20261130T120000Z-1234abcd",
        activation: "mkto",
        audience,
        op,
        members: &members,
        at: 100,
    };
    let first = store.intent(&intent("Big", "upsert")).unwrap();
    let second = store.intent(&intent("Big", "remove")).unwrap();
    let third = store.intent(&intent("Small", "add")).unwrap();
    assert!(first < second && second < third, "request ids grow");
    store.complete(second, 150, "200: 2 accepted").unwrap();
    drop(store);

    // As a run killed after its first and third requests left it.
    let store = open(scratch.path());
    let open_intents = store.open_intents("mkto").unwrap();
    let ids: Vec<i64> = open_intents.iter().map(|i| i.request_id).collect();
    assert_eq!(ids, [first, third]);
    assert_eq!(open_intents[0].op, "upsert");
    assert_eq!(open_intents[0].members, members);
    assert_eq!(open_intents[1].audience, "Small");
    assert_eq!(open_intents[1].run_id, "20261130T120000Z-1234abcd");
    assert_eq!(open_intents[1].started_at, 100);
    assert!(store.open_intents("other").unwrap().is_empty());
    // An outcome for a request never journaled is a mistake, not a no-op.
    assert!(store.complete(third + 100, 1, "?").is_err());
}

#[test]
fn lists_calls_and_last_deliveries_persist() {
    let scratch = temp::dir("store-tallies");
    let store = open(scratch.path());
    assert_eq!(store.list_id("li", "Big").unwrap(), None);
    let list = ListRecord {
        id: "urn:li:dmpSegment:123".into(),
        name: "accord Big".into(),
    };
    store.set_list_id("li", "Big", &list).unwrap();
    store.add_calls("marketo", "2026-11-30", 40).unwrap();
    store.add_calls("marketo", "2026-11-30", 2).unwrap();
    store.add_calls("marketo", "2026-12-01", 1).unwrap();
    store.set_last_delivered("li", 5).unwrap();
    store.set_last_delivered("li", 7).unwrap();
    drop(store);

    let store = open(scratch.path());
    assert_eq!(store.list_id("li", "Big").unwrap(), Some(list));
    assert_eq!(store.list_id("li", "Small").unwrap(), None);
    assert_eq!(store.calls_used("marketo", "2026-11-30").unwrap(), 42);
    assert_eq!(store.calls_used("marketo", "2026-12-01").unwrap(), 1);
    assert_eq!(store.calls_used("linkedin", "2026-11-30").unwrap(), 0);
    assert_eq!(store.last_delivered("li").unwrap(), Some(7));
    assert_eq!(store.last_delivered("other").unwrap(), None);
}

#[test]
fn a_pending_delivery_becomes_the_state_on_commit() {
    let scratch = temp::dir("store-files");
    let store = open(scratch.path());
    assert_eq!(store.load("files").unwrap(), None);
    let first = pending("files", "r1", &[("a1", 5000), ("a2", 120)]);
    store.begin(&first).unwrap();
    // Begun, not committed: the state is still the old one (none).
    assert_eq!(store.load("files").unwrap(), None);
    assert_eq!(store.load_pending("files").unwrap(), Some(first.clone()));
    store.commit(&first).unwrap();
    assert_eq!(store.load_pending("files").unwrap(), None);

    // The next delivery drops a2 and adds a3: the state is the target, whole.
    let second = pending("files", "r2", &[("a1", 5000), ("a3", 1500)]);
    store.begin(&second).unwrap();
    drop(store);
    let store = open(scratch.path());
    assert_eq!(
        store.load("files").unwrap().map(|s| s.run_id),
        Some("r1".to_string()),
        "a pending delivery survives, the old state with it"
    );
    store.commit(&second).unwrap();
    let state = store.load("files").unwrap().unwrap();
    assert_eq!(
        (
            state.activation.as_str(),
            state.run_id.as_str(),
            state.format
        ),
        ("files", "r2", store::FORMAT)
    );
    assert_eq!(state.membership, second.target);
    // Committing what is not pending is refused, and changes nothing.
    assert!(store.commit(&pending("files", "r3", &[])).is_err());
    assert_eq!(
        store.load("files").unwrap().unwrap().membership,
        second.target
    );
}

#[test]
fn every_write_is_a_crash_test_step_on_both_sides_of_its_commit() {
    let scratch = temp::dir("store-faults");
    let faults = Faults::after(None);
    let store = Store::open(scratch.path(), &faults).unwrap();
    let opened = faults.operations();
    store.begin(&pending("x", "r1", &[("a", 1)])).unwrap();
    assert_eq!(faults.operations(), opened + 2);
    store.set_last_delivered("x", 1).unwrap();
    assert_eq!(faults.operations(), opened + 4);
    store.held("x", "A").unwrap();
    store.load("x").unwrap();
    assert_eq!(faults.operations(), opened + 4, "reads are no steps");
}

#[test]
fn a_store_of_a_newer_format_or_no_store_at_all_is_refused() {
    let scratch = temp::dir("store-version");
    drop(open(scratch.path()));
    let db = store::path(scratch.path());
    let raw = rusqlite::Connection::open(&db).unwrap();
    raw.pragma_update(None, "user_version", store::VERSION + 1)
        .unwrap();
    drop(raw);
    let refused = Store::open(scratch.path(), &Faults::default()).unwrap_err();
    assert_eq!(
        refused,
        StoreError::Newer {
            found: store::VERSION + 1,
            reads: store::VERSION
        }
    );
    assert!(refused.refused());
    assert!(
        refused
            .to_string()
            .contains(&format!("format {}", store::VERSION + 1)),
        "{refused}"
    );
    assert!(Store::peek(scratch.path()).unwrap_err().refused());

    std::fs::write(&db, "these are not the members you are looking for").unwrap();
    std::fs::remove_file(db.with_extension("db-wal")).ok();
    std::fs::remove_file(db.with_extension("db-shm")).ok();
    let not_a_store = Store::open(scratch.path(), &Faults::default()).unwrap_err();
    assert!(
        matches!(not_a_store, StoreError::NotAStore { .. }),
        "{not_a_store:?}"
    );
    assert_eq!(not_a_store.path(), ".accord/store.db");

    // A folder where the database goes cannot be opened: not refused, failed.
    std::fs::remove_file(&db).unwrap();
    std::fs::create_dir(&db).unwrap();
    let failed = Store::open(scratch.path(), &Faults::default()).unwrap_err();
    assert!(!failed.refused(), "{failed:?}");
}

/// Writes an old state file as accord wrote them before the store.
fn write_old(root: &Path, name: &str, text: &str) {
    let dir = root.join(".accord/state");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), text).unwrap();
}

fn old_state(activation: &str, run_id: &str, rows: &[(&str, i64)]) -> String {
    serde_json::to_string(&State {
        format: store::FORMAT,
        activation: activation.into(),
        run_id: run_id.into(),
        membership: membership(rows),
        file: None,
        changes: None,
    })
    .unwrap()
}

#[test]
fn the_old_state_files_are_imported_once_and_kept_aside() {
    let scratch = temp::dir("store-migrate");
    let root = scratch.path();
    write_old(
        root,
        "files.json",
        &old_state("files", "r1", &[("a1", 5000)]),
    );
    let unfinished = pending("files", "r2", &[("a1", 5000), ("a2", 120)]);
    write_old(
        root,
        "files.pending.json",
        &serde_json::to_string(&unfinished).unwrap(),
    );
    // Written before the format was recorded: format 1.
    write_old(
        root,
        "early.json",
        r#"{"activation":"early","run_id":"r0","membership":{"columns":["v"],"rows":{"k":[1]}}}"#,
    );
    // The temporary file of a write a kill cut short is no state.
    write_old(root, ".files.json.tmp", "{\"activ");

    let store = open(root);
    assert_eq!(store.load("files").unwrap().unwrap().run_id, "r1");
    assert_eq!(
        store.load_pending("files").unwrap(),
        Some(unfinished.clone())
    );
    assert_eq!(
        store.load("early").unwrap().unwrap().membership.rows["k"],
        vec![json!(1)]
    );
    assert!(!root.join(".accord/state").exists());
    assert!(root.join(".accord/state.migrated/files.json").is_file());
    store.commit(&unfinished).unwrap();
    drop(store);

    // Never read again: a folder that reappears is put aside unread.
    write_old(root, "files.json", &old_state("files", "r0", &[]));
    let store = open(root);
    assert_eq!(store.load("files").unwrap().unwrap().run_id, "r2");
    assert!(root.join(".accord/state.migrated.2/files.json").is_file());
}

#[test]
fn a_foreign_state_file_stops_the_migration_and_nothing_is_imported() {
    let scratch = temp::dir("store-migrate-foreign");
    let root = scratch.path();
    write_old(root, "all.json", &old_state("all", "r1", &[("a1", 1)]));
    // Another activation's state, copied over this one's.
    write_old(root, "large.json", &old_state("all", "r1", &[("a1", 1)]));
    let refused = Store::open(root, &Faults::default()).unwrap_err();
    assert!(refused.refused(), "{refused:?}");
    assert_eq!(refused.path(), ".accord/state/large.json");
    assert!(
        refused
            .to_string()
            .contains("activation `large`: the state file holds the state of activation `all`"),
        "{refused}"
    );
    assert!(
        root.join(".accord/state/all.json").is_file(),
        "kept as it was"
    );

    for (text, why) in [
        (
            old_state("large", "r1", &[]).replace("\"format\":1", "\"format\":2"),
            "format 2",
        ),
        ("{}".to_string(), "not a run state"),
    ] {
        write_old(root, "large.json", &text);
        let refused = Store::open(root, &Faults::default()).unwrap_err();
        assert!(refused.to_string().contains(why), "{refused}");
    }

    // Fixed by the user: the next open imports everything.
    std::fs::remove_file(root.join(".accord/state/large.json")).unwrap();
    let store = open(root);
    assert_eq!(store.load("all").unwrap().unwrap().run_id, "r1");
    assert_eq!(store.load("large").unwrap(), None);
}

#[test]
fn a_state_folder_that_is_a_file_stops_the_first_open() {
    let scratch = temp::dir("store-migrate-file");
    let root = scratch.path();
    std::fs::create_dir_all(root.join(".accord")).unwrap();
    std::fs::write(root.join(".accord/state"), "not a folder").unwrap();
    let failed = Store::open(root, &Faults::default()).unwrap_err();
    assert!(!failed.refused(), "{failed:?}");
    assert_eq!(failed.path(), ".accord/state");
}

#[test]
fn a_peek_reads_what_a_run_would_and_writes_nothing() {
    let scratch = temp::dir("store-peek");
    let root = scratch.path();
    write_old(
        root,
        "files.json",
        &old_state("files", "r1", &[("a1", 5000)]),
    );
    // Before the first run: the old files, read where they are.
    let peeked = Store::peek(root).unwrap();
    assert_eq!(peeked.load("files").unwrap().unwrap().run_id, "r1");
    drop(peeked);
    assert!(!store::path(root).exists(), "a peek created the store");
    assert!(root.join(".accord/state/files.json").is_file());

    // After it: the store, read only.
    let store = open(root);
    store.begin(&pending("files", "r2", &[])).unwrap();
    let peeked = Store::peek(root).unwrap();
    assert_eq!(peeked.load_pending("files").unwrap().unwrap().run_id, "r2");
    assert!(
        peeked.set_last_delivered("files", 1).is_err(),
        "a peek wrote"
    );
    assert_eq!(store.last_delivered("files").unwrap(), None);
}

#[test]
fn stored_rows_that_do_not_decode_are_refused_as_corrupt() {
    let scratch = temp::dir("store-corrupt");
    let store = open(scratch.path());
    store.begin(&pending("files", "r1", &[("a1", 1)])).unwrap();
    store.commit(&pending("files", "r1", &[("a1", 1)])).unwrap();
    drop(store);
    let raw = rusqlite::Connection::open(store::path(scratch.path())).unwrap();
    raw.execute("UPDATE file_rows SET row = '[1,' WHERE member = 'a1'", [])
        .unwrap();
    drop(raw);
    let corrupt = open(scratch.path()).load("files").unwrap_err();
    assert!(
        matches!(&corrupt, StoreError::Corrupt { activation, .. } if activation == "files"),
        "{corrupt:?}"
    );
}

fn read_item(item: &str, size: u64) -> ReadItem {
    ReadItem {
        item: item.into(),
        size,
        modified: Some(7),
    }
}

/// What an append-only source read: replaced by a full read, extended by
/// an incremental one, each one transaction (two crash steps), forgotten on
/// demand; a preview reads it and cannot write it.
#[test]
fn what_append_only_sources_read_is_replaced_extended_and_forgotten() {
    let scratch = temp::dir("store-reads");
    let root = scratch.path();
    let faults = Faults::default();
    let store = Store::open(root, &faults).unwrap();
    assert_eq!(store.read_record("events").unwrap(), None);
    let first = ReadRecord {
        fingerprint: "f1".into(),
        kind: "files".into(),
        mark: None,
        present: vec!["id".into(), "at".into()],
        bad_rows: 1,
        samples: vec!["d/1.csv:3: `x` is not an int".into()],
        items: vec![read_item("d/2.csv", 20), read_item("d/1.csv", 10)],
        segments: vec![Segment {
            seq: 1,
            file: "000001.parquet".into(),
            rows: 30,
        }],
    };
    let before = faults.operations();
    store
        .remember_read("events", &ReadUpdate::Replace(first.clone()))
        .unwrap();
    assert_eq!(faults.operations(), before + 2);
    let mut expected = first.clone();
    expected.items.sort_by(|a, b| a.item.cmp(&b.item));
    assert_eq!(store.read_record("events").unwrap(), Some(expected.clone()));

    let segment = Segment {
        seq: 2,
        file: "000002.parquet".into(),
        rows: 4,
    };
    store
        .remember_read(
            "events",
            &ReadUpdate::Extend {
                items: vec![read_item("d/3.csv", 5)],
                segment: Some(segment.clone()),
                present: vec!["id".into()],
                bad_rows: 2,
                samples: vec!["a".into(), "b".into()],
                mark: None,
            },
        )
        .unwrap();
    let extended = store.read_record("events").unwrap().unwrap();
    assert_eq!(extended.items.len(), 3);
    assert_eq!(extended.segments, vec![first.segments[0].clone(), segment]);
    assert_eq!((extended.bad_rows, extended.present.len()), (2, 1));

    // A record is per source; extending one that has none is refused.
    let extend_nothing = ReadUpdate::Extend {
        items: vec![],
        segment: None,
        present: vec![],
        bad_rows: 0,
        samples: vec![],
        mark: Some("2026-11-30".into()),
    };
    assert!(store.remember_read("other", &extend_nothing).is_err());
    assert_eq!(store.read_record("other").unwrap(), None);

    let peeked = Store::peek(root).unwrap();
    assert_eq!(peeked.read_record("events").unwrap(), Some(extended));
    assert!(peeked.forget_read("events").is_err(), "a peek wrote");
    drop(peeked);
    store.forget_read("events").unwrap();
    assert_eq!(store.read_record("events").unwrap(), None);
}

/// A store of format 1 (before append-only sources) opens as format 2,
/// keeping what it held; a preview reads it as it is, with no records.
#[test]
fn a_store_of_format_1_is_upgraded_when_a_run_opens_it() {
    let scratch = temp::dir("store-upgrade");
    let root = scratch.path();
    let store = open(root);
    store.set_last_delivered("files", 42).unwrap();
    drop(store);
    make_older(
        root,
        &format!(
            "DROP TABLE source_read; DROP TABLE source_items; DROP TABLE source_segments; DROP TABLE alert_breaches; {WITHOUT_MEMBERS_FILES}"
        ),
        1,
    );

    let peeked = Store::peek(root).unwrap();
    assert_eq!(peeked.read_record("events").unwrap(), None);
    assert_eq!(peeked.last_delivered("files").unwrap(), Some(42));
    drop(peeked);

    let store = open(root);
    assert_eq!(store.last_delivered("files").unwrap(), Some(42));
    assert_eq!(store.read_record("events").unwrap(), None);
    store
        .remember_read(
            "events",
            &ReadUpdate::Replace(ReadRecord {
                fingerprint: "f".into(),
                kind: "files".into(),
                mark: None,
                present: vec![],
                bad_rows: 0,
                samples: vec![],
                items: vec![],
                segments: vec![],
            }),
        )
        .unwrap();
    drop(store);
    assert_eq!(format_of(root), store::VERSION);
}

/// A store of format 2 (before alerts) opens as the current format,
/// keeping what it held, every alert armed; a preview peeking at it (which
/// upgrades nothing) reads no breach rather than failing.
#[test]
fn a_store_of_format_2_gains_alert_breaches_when_a_run_opens_it() {
    let scratch = temp::dir("store-upgrade-alerts");
    let root = scratch.path();
    let store = open(root);
    store.set_last_delivered("files", 42).unwrap();
    drop(store);
    make_older(
        root,
        &format!("DROP TABLE alert_breaches; {WITHOUT_MEMBERS_FILES}"),
        2,
    );

    let peeked = Store::peek(root).unwrap();
    assert_eq!(peeked.alert_breach("icp_shrinks").unwrap(), None);
    drop(peeked);

    let store = open(root);
    assert_eq!(store.last_delivered("files").unwrap(), Some(42));
    let breach = store::Breach {
        fingerprint: "f".into(),
        run_id: "r".into(),
        at: 7,
        baseline: None,
        notified: false,
    };
    store.set_alert_breach("icp_shrinks", &breach).unwrap();
    assert_eq!(store.alert_breach("icp_shrinks").unwrap(), Some(breach));
    drop(store);
    assert_eq!(format_of(root), store::VERSION);
}

/// A store of format 3 keeps the rows of its states in the database: a
/// preview reads them where they are, a run upgrades the store to the
/// current format and reads the same rows (no file yet); a commit that names a members
/// file replaces them.
#[test]
fn a_store_of_format_3_keeps_its_rows_until_the_next_commit() {
    let scratch = temp::dir("store-upgrade-members");
    let root = scratch.path();
    let store = open(root);
    let old = pending("files", "r1", &[("a1", 1), ("a2", 2)]);
    store.begin(&old).unwrap();
    store.commit(&old).unwrap();
    drop(store);
    make_older(root, WITHOUT_MEMBERS_FILES, 3);

    let peeked = Store::peek(root).unwrap();
    let state = peeked.load("files").unwrap().expect("the state");
    assert_eq!(state.membership, old.target);
    assert_eq!(state.file, None);
    drop(peeked);

    let store = open(root);
    let state = store.load("files").unwrap().expect("the state");
    assert_eq!((state.membership, state.file), (old.target.clone(), None));
    let next = Pending {
        target: Membership {
            columns: old.target.columns.clone(),
            rows: BTreeMap::new(),
        },
        file: Some("files.r2.parquet".into()),
        ..pending("files", "r2", &[])
    };
    store.begin(&next).unwrap();
    store.commit(&next).unwrap();
    let state = store.load("files").unwrap().expect("the state");
    assert_eq!(state.file.as_deref(), Some("files.r2.parquet"));
    assert!(
        state.membership.rows.is_empty(),
        "the rows moved to the file"
    );
    drop(store);
    assert_eq!(format_of(root), store::VERSION);
}

/// A store of format 4 names one members file per record: a preview reads
/// it as it is, a run upgrades the store to format 5 (no changes file yet),
/// and a commit may then name a changes file beside the base.
#[test]
fn a_store_of_format_4_gains_changes_files() {
    let scratch = temp::dir("store-upgrade-changes");
    let root = scratch.path();
    let store = open(root);
    let first = Pending {
        file: Some("files.r1.parquet".into()),
        ..pending("files", "r1", &[])
    };
    store.begin(&first).unwrap();
    store.commit(&first).unwrap();
    drop(store);
    make_older(root, WITHOUT_CHANGES_FILES, 4);

    let peeked = Store::peek(root).unwrap();
    let state = peeked.load("files").unwrap().expect("the state");
    assert_eq!(
        (state.file.as_deref(), state.changes),
        (Some("files.r1.parquet"), None)
    );
    drop(peeked);
    assert_eq!(format_of(root), 4, "a preview writes nothing");

    let store = open(root);
    let next = Pending {
        file: Some("files.r1.parquet".into()),
        changes: Some("files.r2.changes.parquet".into()),
        ..pending("files", "r2", &[])
    };
    store.begin(&next).unwrap();
    assert_eq!(store.load_pending("files").unwrap(), Some(next.clone()));
    store.commit(&next).unwrap();
    let state = store.load("files").unwrap().expect("the state");
    assert_eq!(
        (state.file.as_deref(), state.changes.as_deref()),
        (Some("files.r1.parquet"), Some("files.r2.changes.parquet"))
    );
    drop(store);
    assert_eq!(format_of(root), store::VERSION);
}
