//! The changes an API delivery sends, planned against the store's ledger a
//! chunk at a time.
//!
//! In: the activation's members (batches of columns, in member order), the
//! audiences to deliver, the store. Out: [`Work`] items of at most `chunk`
//! changes each, in audience then member order, made only when the
//! executor asks for the next one (`deliver::send::deliver` takes an
//! iterator).
//!
//! Per audience, one merge of two sorted sides: the audience's members
//! (their keys `AUDIENCE/MEMBER` sort by audience first, so they are one
//! run of rows, read a batch at a time from the batch that holds the
//! first) and the ledger's rows, read a page at a time by key. A
//! member is sent when the payload the destination holds differs from the
//! one evaluated (new, changed, rejected or never sent), or when its
//! membership is about to expire; it is removed only when the ledger says
//! the destination holds it (see docs/destinations.md). A member becomes
//! JSON values only while its chunk is planned and sent: no step holds
//! every member of an activation, nor the ledger whole.
//!
//! The journal needs the payload of every member the current chunk adds
//! (it records what the destination accepted): [`InFlight`] holds that
//! chunk's, replaced when the next chunk is planned, which the executor
//! asks for only once it is done with the one before.

use std::collections::{BTreeMap, VecDeque};
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use datafusion::arrow::array::RecordBatch;
use serde_json::Value;

use crate::deliver::changes::Work;
use crate::deliver::{ListRef, Member};
use crate::run::engine;
use crate::run::member_batches::MemberBatches;
use crate::run::members::Members;
use crate::store::{LedgerRow, Status, Store};
use crate::time::Micros;

/// Changes per work item: what one item holds as values (a few hundred
/// bytes a member), and large enough that an operation above a vendor's
/// bulk threshold still goes as few large jobs.
pub const CHUNK: usize = 50_000;

/// Ledger rows read per page.
const LEDGER_PAGE: usize = 10_000;

/// The payloads (the JSON the ledger keeps) of the members the chunk being
/// sent adds, and the vendor ids an upsert returned for them, by
/// (audience, key): what the journal records accepted members with.
#[derive(Default)]
pub(super) struct InFlight {
    pub payloads: BTreeMap<(String, String), Vec<u8>>,
    pub remote_ids: BTreeMap<(String, String), String>,
}

/// Finds an audience's list (pinned, or found or created by an earlier
/// chunk or run): asked again for every chunk, since the chunk before may
/// have created it.
pub(super) type ListOf<'a> = Box<dyn FnMut(&str) -> Result<Option<ListRef>, String> + 'a>;

/// The planner: an iterator of work items (see the module doc). A failure
/// to read the ledger ends the items; [`Changes::failed`] says why.
pub(super) struct Changes<'a> {
    store: &'a Store,
    activation: &'a str,
    members: &'a MemberBatches,
    /// The payload's column names; the first is the audience.
    columns: Vec<String>,
    audiences: VecDeque<String>,
    current: Option<Cursor<'a>>,
    list_of: ListOf<'a>,
    in_flight: Arc<Mutex<InFlight>>,
    ttl: Option<Duration>,
    now: Micros,
    chunk: usize,
    page: usize,
    /// Changes planned so far.
    pub planned: u64,
    failed: Option<String>,
}

/// Where the merge of one audience stands.
struct Cursor<'a> {
    audience: String,
    /// The batches of members after `batch`, from the one that holds the
    /// audience's first member; `None` once the audience's last member
    /// has been read.
    batches: Option<Box<dyn Iterator<Item = Result<Members, String>> + 'a>>,
    /// The batch being merged, its payload, and its rows of the audience
    /// not merged yet.
    batch: Option<(Members, RecordBatch)>,
    rows: Range<usize>,
    /// The ledger page being merged, and the last key read.
    held: VecDeque<LedgerRow>,
    after: Option<String>,
    ledger_read: bool,
}

/// What one merge step found.
enum Step {
    /// A member to send, and the JSON of its payload (what the ledger
    /// keeps once the destination accepts it).
    Add(Member, Vec<u8>),
    Remove(LedgerRow),
    Nothing,
    Done,
}

impl<'a> Changes<'a> {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        store: &'a Store,
        activation: &'a str,
        members: &'a MemberBatches,
        audiences: &[String],
        list_of: ListOf<'a>,
        in_flight: Arc<Mutex<InFlight>>,
        (ttl, now): (Option<Duration>, Micros),
        chunk: usize,
    ) -> Changes<'a> {
        Changes {
            store,
            activation,
            members,
            columns: members.columns(),
            audiences: audiences.iter().cloned().collect(),
            current: None,
            list_of,
            in_flight,
            ttl,
            now,
            chunk: chunk.max(1),
            page: LEDGER_PAGE,
            planned: 0,
            failed: None,
        }
    }

    /// Why planning stopped early, if it did.
    pub(super) fn failed(&self) -> Option<&str> {
        self.failed.as_deref()
    }

    fn next_work(&mut self) -> Result<Option<Work>, String> {
        loop {
            let mut cursor = match self.current.take() {
                Some(cursor) => cursor,
                None => {
                    let Some(audience) = self.audiences.pop_front() else {
                        return Ok(None);
                    };
                    Cursor {
                        batches: Some(Box::new(self.members.batches_from(&format!("{audience}/")))),
                        batch: None,
                        rows: 0..0,
                        audience,
                        held: VecDeque::new(),
                        after: None,
                        ledger_read: false,
                    }
                }
            };
            let audience = cursor.audience.clone();
            let (mut adds, mut removes) = (Vec::new(), Vec::new());
            let mut payloads = BTreeMap::new();
            let mut finished = false;
            while adds.len() + removes.len() < self.chunk {
                match self.step(&mut cursor)? {
                    Step::Add(member, json) => {
                        payloads.insert((audience.clone(), member.key.clone()), json);
                        adds.push(member);
                    }
                    Step::Remove(row) => removes.push(removed(row)),
                    Step::Nothing => {}
                    Step::Done => {
                        finished = true;
                        break;
                    }
                }
            }
            if !finished {
                self.current = Some(cursor);
            }
            if adds.is_empty() && removes.is_empty() {
                continue;
            }
            let list = (self.list_of)(&audience)?;
            let mut in_flight = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
            in_flight.payloads = payloads;
            in_flight.remote_ids.clear();
            self.planned += (adds.len() + removes.len()) as u64;
            return Ok(Some(Work {
                activation: self.activation.to_string(),
                audience,
                list,
                adds,
                removes,
            }));
        }
    }

    /// One step of an audience's merge: the smaller of the next member and
    /// the next ledger row (both, when they are one member).
    fn step(&self, cursor: &mut Cursor<'a>) -> Result<Step, String> {
        if cursor.held.is_empty() && !cursor.ledger_read {
            let rows = self
                .store
                .held_page(
                    self.activation,
                    &cursor.audience,
                    cursor.after.as_deref(),
                    self.page,
                )
                .map_err(|e| e.to_string())?;
            cursor.ledger_read = rows.len() < self.page;
            if let Some(last) = rows.last() {
                cursor.after = Some(last.member.clone());
            }
            cursor.held.extend(rows);
        }
        next_member(cursor)?;
        let next = match (&cursor.batch, cursor.rows.is_empty()) {
            (Some((members, payload)), false) => {
                let row = cursor.rows.start;
                Some((row, member_key(members, row), payload))
            }
            _ => None,
        };
        match (next, cursor.held.front()) {
            (None, None) => Ok(Step::Done),
            (Some((row, key, payload)), held) if held.is_none_or(|h| key < h.member.as_str()) => {
                let (fields, json) = self.payload_at(payload, row);
                let member = Member {
                    key: key.to_string(),
                    fields,
                    remote_id: None,
                };
                cursor.rows.start += 1;
                Ok(Step::Add(member, json))
            }
            (Some((row, key, payload)), Some(held)) if key == held.member => {
                // The payload is made once: to compare, and to send.
                let (fields, json) = self.payload_at(payload, row);
                let current = self.current(held, &json);
                let key = key.to_string();
                cursor.rows.start += 1;
                let held = cursor.held.pop_front().expect("a ledger row is next");
                Ok(match current {
                    true => Step::Nothing,
                    false => Step::Add(
                        Member {
                            key,
                            fields,
                            remote_id: held.remote_id,
                        },
                        json,
                    ),
                })
            }
            _ => {
                let held = cursor.held.pop_front().expect("a ledger row is next");
                Ok(match held.payload.is_some() {
                    true => Step::Remove(held),
                    false => Step::Nothing,
                })
            }
        }
    }

    /// Row `row`'s mapped columns as the vendors take them, and their JSON.
    fn payload_at(&self, payload: &RecordBatch, row: usize) -> (Vec<(String, Value)>, Vec<u8>) {
        let fields = fields(&self.columns, payload, row);
        let json = payload_json(&fields);
        (fields, json)
    }

    /// Whether the destination holds the payload `json`, current:
    /// accepted, the same payload, and not about to expire.
    fn current(&self, held: &LedgerRow, json: &[u8]) -> bool {
        held.status == Status::Accepted
            && !expiring(held, self.ttl, self.now)
            && held
                .payload_hash
                .is_some_and(|hash| hash == crate::hash::sha256(json))
    }
}

/// Brings the cursor's next member of its audience into `rows`, reading
/// the next batch when the one held has no more: a batch's rows of the
/// audience are one range (`AUDIENCE/` up to `AUDIENCE0`, the next prefix:
/// `0` follows `/`), and a batch with a row past it holds the last.
fn next_member(cursor: &mut Cursor) -> Result<(), String> {
    while cursor.rows.is_empty() {
        let Some(batches) = &mut cursor.batches else {
            return Ok(());
        };
        let Some(members) = batches.next().transpose()? else {
            cursor.batches = None;
            return Ok(());
        };
        let start = members.position(&format!("{}/", cursor.audience));
        let end = members.position(&format!("{}0", cursor.audience));
        if end < members.len() {
            cursor.batches = None;
        }
        cursor.rows = start..end;
        let payload = members.payload();
        cursor.batch = Some((members, payload));
    }
    Ok(())
}

impl Iterator for Changes<'_> {
    type Item = Work;

    fn next(&mut self) -> Option<Work> {
        if self.failed.is_some() {
            return None;
        }
        match self.next_work() {
            Ok(work) => work,
            Err(why) => {
                self.failed = Some(why);
                None
            }
        }
    }
}

/// The member part of row `row`'s key (after `AUDIENCE/`) in a batch.
fn member_key(members: &Members, row: usize) -> &str {
    let key = members.keys().value(row);
    key.split_once('/').map_or(key, |(_, member)| member)
}

/// A row's mapped columns as the vendors take them: every payload column
/// but the audience, as JSON values.
fn fields(columns: &[String], payload: &RecordBatch, row: usize) -> Vec<(String, Value)> {
    columns
        .iter()
        .zip(payload.columns())
        .skip(1)
        .map(|(name, column)| (name.clone(), engine::cell(column, row)))
        .collect()
}

/// A removed member as the vendors take it: the columns the destination
/// last accepted.
fn removed(row: LedgerRow) -> Member {
    Member {
        fields: row
            .payload
            .as_deref()
            .and_then(|p| serde_json::from_slice::<serde_json::Map<String, Value>>(p).ok())
            .map(|m| m.into_iter().collect())
            .unwrap_or_default(),
        key: row.member,
        remote_id: row.remote_id,
    }
}

/// The JSON the ledger keeps of a member's columns (and hashes).
fn payload_json(fields: &[(String, Value)]) -> Vec<u8> {
    let map: serde_json::Map<String, Value> = fields.iter().cloned().collect();
    serde_json::to_vec(&map).expect("JSON values serialise")
}

/// Whether a member's membership passes half of its lifetime by `now`:
/// sent again then, so that it never lapses between runs.
fn expiring(row: &LedgerRow, ttl: Option<Duration>, now: Micros) -> bool {
    let (Some(ttl), Some(at)) = (ttl, row.accepted_at) else {
        return false;
    };
    let half = (ttl.as_micros() / 2) as i64;
    now.saturating_sub(at) >= half
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{ArrayRef, Int64Array, StringArray};

    use super::*;
    use crate::store::LedgerUpdate;

    /// One audience's changes: the adds (whether each carries the vendor
    /// id the ledger has), the removes.
    type Planned<K> = (K, Vec<(K, bool)>, Vec<K>);

    const NOW: Micros = 10_000_000_000;
    const MINUTE: Micros = 60_000_000;

    /// Members of audiences `A`, `AB` (a name `A` is a prefix of) and `B`,
    /// each row `(key, email, n)`.
    fn members(rows: &[(&str, &str, i64)]) -> Members {
        let keys = StringArray::from_iter_values(rows.iter().map(|r| r.0));
        let audience: ArrayRef = Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| r.0.split_once('/').expect("a key").0),
        ));
        let email: ArrayRef = Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1)));
        let n: ArrayRef = Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.2)));
        let names = ["audience", "email", "n"].map(String::from);
        let payload = crate::run::columns::assemble(&names, vec![audience, email, n], rows.len())
            .expect("a batch");
        Members::new(keys, &payload).expect("members")
    }

    fn payload(email: &str, n: i64) -> Vec<u8> {
        payload_json(&[
            ("email".to_string(), Value::from(email)),
            ("n".to_string(), Value::from(n)),
        ])
    }

    fn accepted(member: &str, email: &str, n: i64, at: Micros) -> LedgerUpdate {
        LedgerUpdate::Accepted {
            member: member.into(),
            payload: payload(email, n),
            remote_id: Some(format!("id-{member}")),
            at,
        }
    }

    /// A ledger with one member of every kind, and the changes each
    /// audience must get: the adds (with the vendor id the ledger has) and
    /// the removes.
    fn ledger() -> (Store, Vec<Planned<&'static str>>) {
        let store = Store::open_in_memory().expect("a store");
        let fresh = NOW - MINUTE;
        let updates = [
            accepted("a1", "a1@x", 1, fresh),
            accepted("a2", "a2@x", 1, fresh),
            accepted("a3", "a3@x", 3, fresh),
            LedgerUpdate::Rejected {
                member: "a3".into(),
                code: "1".into(),
                message: "no".into(),
            },
            accepted("a4", "a4@x", 4, NOW - 120 * MINUTE),
            accepted("a5", "a5@x", 5, fresh),
            LedgerUpdate::Pending {
                member: "a6".into(),
            },
            accepted("z9", "z9@x", 9, fresh),
        ];
        store.record("act", "A", &updates).expect("recorded");
        store
            .record("act", "C", &[accepted("c1", "c1@x", 1, fresh)])
            .expect("recorded");
        // Another activation's ledger is not this one's.
        store
            .record("other", "B", &[accepted("b1", "b1@x", 1, fresh)])
            .expect("recorded");
        let expected = vec![
            // a0 new, a1 current, a2 changed, a3 rejected, a4 expiring, a7
            // new; a5 and z9 held and gone, a6 never accepted.
            (
                "A",
                vec![
                    ("a0", false),
                    ("a2", true),
                    ("a3", true),
                    ("a4", true),
                    ("a7", false),
                ],
                vec!["a5", "z9"],
            ),
            ("AB", vec![("x", false)], vec![]),
            ("B", vec![("b1", false), ("b2", false)], vec![]),
            ("C", vec![], vec!["c1"]),
        ];
        (store, expected)
    }

    fn evaluated() -> Members {
        members(&[
            ("A/a0", "a0@x", 0),
            ("A/a1", "a1@x", 1),
            ("A/a2", "a2@x", 2),
            ("A/a3", "a3@x", 3),
            ("A/a4", "a4@x", 4),
            ("A/a7", "a7@x", 7),
            ("AB/x", "x@x", 1),
            ("B/b1", "b1@x", 1),
            ("B/b2", "b2@x", 2),
        ])
    }

    /// Members cut into batches of `rows`, held or spilled under `root`.
    fn cut(members: &Members, rows: usize, spill_to: Option<&std::path::Path>) -> MemberBatches {
        use crate::run::member_batches::{Builder, SpillPast};
        let spill = spill_to.map(|root| SpillPast { root, bytes: 0 });
        let mut builder = Builder::new(members.batch().schema(), spill);
        for start in (0..members.len()).step_by(rows) {
            let len = rows.min(members.len() - start);
            builder.push(members.slice(start, len)).expect("in order");
        }
        builder.finish().expect("members")
    }

    /// Whatever the chunk and page sizes, and however the members are cut
    /// into batches (an audience across several, or a batch across
    /// audiences; held or spilled), the work items are the same changes in
    /// audience then member order, each item within the chunk, with its
    /// adds' payloads in flight while it is sent.
    #[test]
    fn changes_are_planned_a_chunk_at_a_time() {
        let (store, expected) = ledger();
        let root = tempfile::tempdir().expect("a folder");
        let evaluated = evaluated();
        let mut cuts = vec![MemberBatches::of(evaluated.clone())];
        for rows in [1, 2, 4] {
            cuts.push(cut(&evaluated, rows, None));
            cuts.push(cut(&evaluated, rows, Some(root.path())));
        }
        assert!(cuts.last().is_some_and(|c| c.spilled_bytes().is_some()));
        // The audiences in an order of their own: each is found where it is.
        let audiences = ["B", "A", "D", "AB", "C"].map(String::from);
        let order = ["B", "A", "AB", "C"];
        for (members, chunk) in cuts.iter().flat_map(|m| [1, 2, 3, CHUNK].map(|c| (m, c))) {
            for page in [1, 2, LEDGER_PAGE] {
                let lists = std::cell::Cell::new(0);
                let list_of: ListOf = Box::new(|_| {
                    lists.set(lists.get() + 1);
                    Ok(None)
                });
                let in_flight = Arc::new(Mutex::new(InFlight::default()));
                let mut changes = Changes::new(
                    &store,
                    "act",
                    members,
                    &audiences,
                    list_of,
                    in_flight.clone(),
                    (Some(Duration::from_secs(3600)), NOW),
                    chunk,
                );
                changes.page = page;
                let mut got: Vec<Planned<String>> = Vec::new();
                let mut items = 0;
                for work in changes.by_ref() {
                    items += 1;
                    let size = work.adds.len() + work.removes.len();
                    assert!(size >= 1 && size <= chunk, "chunk {chunk}: {size} changes");
                    let flying = in_flight.lock().expect("in flight");
                    let keys: Vec<&String> = flying.payloads.keys().map(|(_, k)| k).collect();
                    let adds: Vec<&String> = work.adds.iter().map(|m| &m.key).collect();
                    assert_eq!(keys, adds, "the item's payloads are in flight");
                    for m in &work.adds {
                        let id = (work.audience.clone(), m.key.clone());
                        assert_eq!(flying.payloads[&id], payload_json(&m.fields));
                    }
                    drop(flying);
                    if got.last().is_none_or(|g| g.0 != work.audience) {
                        got.push((work.audience.clone(), vec![], vec![]));
                    }
                    let entry = got.last_mut().expect("an entry");
                    for m in work.adds {
                        entry
                            .1
                            .push((m.key.clone(), m.remote_id == Some(format!("id-{}", m.key))));
                    }
                    for m in work.removes {
                        assert_eq!(
                            m.field("email"),
                            Some(&Value::from(format!("{}@x", m.key))),
                            "a removed member keeps its last accepted columns"
                        );
                        entry.2.push(m.key);
                    }
                }
                assert_eq!(changes.failed(), None);
                let want: Vec<Planned<String>> = order
                    .iter()
                    .map(|a| expected.iter().find(|e| e.0 == *a).expect("expected"))
                    .map(|(a, adds, removes)| {
                        (
                            a.to_string(),
                            adds.iter().map(|(k, id)| (k.to_string(), *id)).collect(),
                            removes.iter().map(|k| k.to_string()).collect(),
                        )
                    })
                    .collect();
                let batches = members.batches().count();
                assert_eq!(got, want, "chunk {chunk}, page {page}, {batches} batches");
                assert_eq!(changes.planned, 11);
                assert_eq!(lists.get(), items, "a list is asked for per item");
                if chunk == CHUNK {
                    assert_eq!(items, 4, "one item per audience with changes");
                }
            }
        }
    }

    /// Members accepted by one chunk's sending enter the ledger behind the
    /// page being read: the next chunks neither send nor remove them again.
    #[test]
    fn what_a_chunk_records_does_not_come_back() {
        let store = Store::open_in_memory().expect("a store");
        let fresh = NOW - MINUTE;
        store
            .record(
                "act",
                "A",
                &[
                    accepted("k2", "old", 0, fresh),
                    accepted("k5", "k5@x", 5, fresh),
                ],
            )
            .expect("recorded");
        let members = MemberBatches::of(members(&[
            ("A/k1", "k1@x", 1),
            ("A/k2", "k2@x", 2),
            ("A/k3", "k3@x", 3),
            ("A/k4", "k4@x", 4),
            ("A/k6", "k6@x", 6),
        ]));
        let audiences = ["A".to_string()];
        let in_flight = Arc::new(Mutex::new(InFlight::default()));
        let mut changes = Changes::new(
            &store,
            "act",
            &members,
            &audiences,
            Box::new(|_| Ok(None)),
            in_flight,
            (None, NOW),
            1,
        );
        changes.page = 1;
        let mut sent = Vec::new();
        for work in changes.by_ref() {
            // The destination takes every change at once.
            let updates: Vec<LedgerUpdate> = work
                .adds
                .iter()
                .map(|m| LedgerUpdate::Accepted {
                    member: m.key.clone(),
                    payload: payload_json(&m.fields),
                    remote_id: None,
                    at: NOW,
                })
                .chain(work.removes.iter().map(|m| LedgerUpdate::Removed {
                    member: m.key.clone(),
                }))
                .collect();
            store.record("act", "A", &updates).expect("recorded");
            sent.extend(work.adds.iter().map(|m| format!("+{}", m.key)));
            sent.extend(work.removes.iter().map(|m| format!("-{}", m.key)));
        }
        assert_eq!(sent, ["+k1", "+k2", "+k3", "+k4", "-k5", "+k6"]);
        let held: Vec<String> = store
            .held("act", "A")
            .expect("held")
            .into_iter()
            .map(|r| r.member)
            .collect();
        assert_eq!(held, ["k1", "k2", "k3", "k4", "k6"]);
    }
}
