//! An activation's membership as columns: what a run delivers, what the
//! store keeps of it, and what the next run compares against.
//!
//! One Arrow batch, sorted by member and with one row per member (the
//! whole membership, or one batch of it: `member_batches`):
//! - `__member`: the member's key, `audience/key` (account or person key);
//! - the payload: the destination's columns in their delivered types
//!   (`columns`: decided by the columns' types where they can be, so every
//!   batch of an activation has the same), `audience` first;
//! - `__hash`: the payload hash, 32 bytes of BLAKE3 over the column names
//!   and the row's values in a stable encoding ([`payload_hashes`]).
//!
//! The change set compares hashes (`delta`); the payload stays so that a
//! removed member is still written with the values it was delivered with.
//! Nothing here holds a member as a Rust value: the rows stay columns from
//! the engine's result to the store's file. JSON values are made only for
//! the members of the chunk an API delivery is sending (`api`), and for the
//! JSON rows of stores written before the columnar state
//! ([`Members::from_legacy`]).

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, FixedSizeBinaryArray, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Float64Type, Int64Type, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use rayon::prelude::*;
use serde_json::Value;

use super::columns;
use super::engine;
use super::state::Membership;

/// The member key column.
pub const MEMBER: &str = "__member";
/// The payload hash column.
pub const HASH: &str = "__hash";
/// Bytes of a payload hash.
pub const HASH_BYTES: i32 = 32;

/// Rows hashed per task: large enough to amortise the task, small enough
/// that both cores share the work of a small activation too.
const HASH_CHUNK: usize = 16 * 1024;

/// An activation's members (see the module doc).
#[derive(Clone, Debug)]
pub struct Members {
    batch: RecordBatch,
}

impl Members {
    /// Members from their keys (sorted, unique) and their payload (any
    /// Arrow types, brought to the delivered ones here).
    pub fn new(members: StringArray, payload: &RecordBatch) -> Result<Members, String> {
        if members.len() != payload.num_rows() {
            return Err(format!(
                "{} member keys for {} rows",
                members.len(),
                payload.num_rows()
            ));
        }
        // Typed by the columns' types where they decide (every batch of an
        // activation alike), else by the values.
        let payload = match columns::delivered_schema(&payload.schema()) {
            Some(schema) => columns::delivered_as(payload, &schema)?,
            None => columns::delivered(payload)?,
        };
        let hashes = payload_hashes(&payload);
        let mut fields = vec![Field::new(MEMBER, DataType::Utf8, false)];
        fields.extend(payload.schema().fields().iter().map(|f| (**f).clone()));
        fields.push(Field::new(
            HASH,
            DataType::FixedSizeBinary(HASH_BYTES),
            false,
        ));
        let mut arrays: Vec<ArrayRef> = vec![Arc::new(members)];
        arrays.extend(payload.columns().iter().cloned());
        arrays.push(Arc::new(hashes));
        let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)
            .map_err(|e| e.to_string())?;
        Ok(Members { batch })
    }

    /// Members read back from the store's file: the batch must have the
    /// member and hash columns around the payload, as [`Members::new`]
    /// made it.
    pub fn from_stored(batch: RecordBatch) -> Result<Members, String> {
        stored_schema(&batch.schema())?;
        Ok(Members { batch })
    }

    /// The JSON rows of a store written before the columnar state, as
    /// members: the same delivered columns a run would have made.
    pub fn from_legacy(membership: &Membership) -> Result<Members, String> {
        let rows: Vec<&[Value]> = membership.rows.values().map(Vec::as_slice).collect();
        let payload = columns::from_values(&membership.columns, &rows)?;
        let keys = StringArray::from_iter_values(membership.rows.keys());
        Members::new(keys, &payload)
    }

    pub fn len(&self) -> usize {
        self.batch.num_rows()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The whole batch: member, payload, hash.
    pub fn batch(&self) -> &RecordBatch {
        &self.batch
    }

    /// The payload's column names, in order.
    pub fn columns(&self) -> Vec<String> {
        column_names(&payload_schema(&self.batch.schema()))
    }

    /// The payload: the destination's rows in member order.
    pub fn payload(&self) -> RecordBatch {
        let width = self.batch.num_columns();
        self.batch
            .project(&(1..width - 1).collect::<Vec<_>>())
            .expect("the payload columns are in the batch")
    }

    /// The member keys.
    pub fn keys(&self) -> &StringArray {
        self.batch.column(0).as_string::<i32>()
    }

    /// The first row whose key is `bound` or after it (the keys are
    /// sorted): where `bound` is, or would be.
    pub fn position(&self, bound: &str) -> usize {
        let keys = self.keys();
        let (mut low, mut high) = (0, keys.len());
        while low < high {
            let mid = (low + high) / 2;
            if keys.value(mid) < bound {
                low = mid + 1;
            } else {
                high = mid;
            }
        }
        low
    }

    /// Whether `member` (`audience/key`) is one of the members.
    pub fn contains(&self, member: &str) -> bool {
        let at = self.position(member);
        at < self.len() && self.keys().value(at) == member
    }

    /// The payload hashes.
    pub fn hashes(&self) -> &FixedSizeBinaryArray {
        self.batch
            .column(self.batch.num_columns() - 1)
            .as_fixed_size_binary()
    }

    /// Rows `offset..offset + len`.
    pub fn slice(&self, offset: usize, len: usize) -> Members {
        Members {
            batch: self.batch.slice(offset, len),
        }
    }
}

/// Of `rows` (rows of the two columns), one per member, in member order
/// (`AUDIENCE/MEMBER` as bytes): of two rows with one key, the later in
/// `rows` (as a map by key keeps the last written). Null audiences or keys
/// must have been left out.
///
/// Why not Arrow's lexicographic sort of the joined keys: at 10M rows it
/// took 19-23 s, comparing through a dynamic comparator and again over the
/// audience every key starts with. Here each row is an audience rank (the
/// audiences sorted as `AUDIENCE/`, which orders whole keys by audience
/// first, since no audience holds a `/`), the first 8 bytes of its member
/// key as one integer and its place; only rows that share both compare
/// member keys, and the sort runs on every core. Rows already in member
/// order (an account export's, whose query orders by audience and account)
/// are only checked.
pub fn member_order(audiences: &StringArray, members: &StringArray, rows: &[u32]) -> Vec<u32> {
    let key = |r: u32| {
        let r = r as usize;
        (audiences.value(r), members.value(r))
    };
    // Strictly before: same audience and a smaller member, or an earlier
    // audience.
    let before = |(a, m): (&str, &str), (b, n): (&str, &str)| match audience_order(a, b) {
        std::cmp::Ordering::Equal => m < n,
        order => order.is_lt(),
    };
    if rows.windows(2).all(|w| before(key(w[0]), key(w[1]))) {
        return rows.to_vec();
    }
    let mut names: Vec<&str> = rows.iter().map(|&r| audiences.value(r as usize)).collect();
    names.sort_unstable_by(|a, b| {
        a.as_bytes()
            .iter()
            .chain(b"/")
            .cmp(b.as_bytes().iter().chain(b"/"))
    });
    names.dedup();
    let rank: std::collections::HashMap<&str, u32> = names
        .iter()
        .enumerate()
        .map(|(i, a)| (*a, i as u32))
        .collect();
    let prefix = |member: &str| {
        let mut bytes = [0u8; 8];
        let head = &member.as_bytes()[..member.len().min(8)];
        bytes[..head.len()].copy_from_slice(head);
        u64::from_be_bytes(bytes)
    };
    let mut order: Vec<(u32, u64, u32)> = rows
        .iter()
        .enumerate()
        .map(|(place, &r)| {
            let r = r as usize;
            (
                rank[audiences.value(r)],
                prefix(members.value(r)),
                place as u32,
            )
        })
        .collect();
    let member = |place: u32| members.value(rows[place as usize] as usize);
    order.par_sort_unstable_by(|a, b| {
        (a.0, a.1)
            .cmp(&(b.0, b.1))
            .then_with(|| member(a.2).cmp(member(b.2)))
            .then(b.2.cmp(&a.2))
    });
    let mut unique = Vec::with_capacity(order.len());
    let mut last: Option<(u32, &str)> = None;
    for (audience, _, place) in order {
        let key = (audience, member(place));
        if last != Some(key) {
            unique.push(rows[place as usize]);
            last = Some(key);
        }
    }
    unique
}

/// `rows` (rows of the two columns) one per member, when they come in
/// member order: of two rows with one key (next to each other), the later
/// stays. `None` when a row comes before the one before it: the rows are
/// then in no order a stream can keep ([`member_order`] sorts them).
pub fn in_member_order(
    audiences: &StringArray,
    members: &StringArray,
    rows: &[u32],
) -> Option<Vec<u32>> {
    let key = |r: u32| (audiences.value(r as usize), members.value(r as usize));
    let mut kept: Vec<u32> = Vec::with_capacity(rows.len());
    for &row in rows {
        if let Some(&last) = kept.last() {
            let ((a, m), (b, n)) = (key(last), key(row));
            match audience_order(a, b).then_with(|| m.cmp(n)) {
                std::cmp::Ordering::Less => {}
                std::cmp::Ordering::Equal => {
                    kept.pop();
                }
                std::cmp::Ordering::Greater => return None,
            }
        }
        kept.push(row);
    }
    Some(kept)
}

/// The order of audiences in member keys: as `AUDIENCE/` (so `a-b`, whose
/// `-` comes before `/`, is before `a`).
fn audience_order(a: &str, b: &str) -> std::cmp::Ordering {
    let slash = b"/".iter();
    a.as_bytes()
        .iter()
        .chain(slash.clone())
        .cmp(b.as_bytes().iter().chain(slash))
}

/// The payload's columns of a membership's columns (`members`: the
/// member key, the payload, the hash).
pub fn payload_schema(members: &Schema) -> SchemaRef {
    let fields = members.fields();
    Arc::new(Schema::new(fields[1..fields.len() - 1].to_vec()))
}

/// The names of `schema`'s columns, in order.
pub fn column_names(schema: &Schema) -> Vec<String> {
    schema.fields().iter().map(|f| f.name().clone()).collect()
}

/// Whether a stored file's schema is a membership's: the member and hash
/// columns around the payload, as [`Members::new`] makes them.
pub fn stored_schema(schema: &Schema) -> Result<(), String> {
    let fields = schema.fields();
    let first = fields.first().map(|f| (f.name().as_str(), f.data_type()));
    let last = fields.last().map(|f| (f.name().as_str(), f.data_type()));
    if first != Some((MEMBER, &DataType::Utf8))
        || last != Some((HASH, &DataType::FixedSizeBinary(HASH_BYTES)))
        || fields.len() < 2
    {
        return Err(format!(
            "its columns are not a membership's (`{MEMBER}` text first, `{HASH}` of {HASH_BYTES} bytes last)"
        ));
    }
    Ok(())
}

/// The payload hash of every row: BLAKE3, keyed by the column names, over
/// each value's type tag and bytes (text length-prefixed, numbers
/// little-endian, other types as their JSON text). The encoding is accord's
/// own, not Arrow's row format, so a hash stored by one version of accord
/// compares with the next. A null is its own tag whatever the column's
/// type, so a column that was all missing (text) and now holds integers
/// still compares equal on its missing values.
pub fn payload_hashes(payload: &RecordBatch) -> FixedSizeBinaryArray {
    let key: [u8; 32] = names_hasher(&payload.schema()).finalize().into();
    let columns: Vec<Encoder> = payload.columns().iter().map(Encoder::of).collect();
    // Each task hashes its rows straight into its part of one buffer.
    let width = HASH_BYTES as usize;
    let mut hashes = vec![0u8; payload.num_rows() * width];
    hashes
        .par_chunks_mut(HASH_CHUNK * width)
        .enumerate()
        .for_each(|(chunk, out)| {
            let mut buffer = Vec::with_capacity(256);
            for (i, hash) in out.chunks_exact_mut(width).enumerate() {
                buffer.clear();
                for column in &columns {
                    column.encode(chunk * HASH_CHUNK + i, &mut buffer);
                }
                hash.copy_from_slice(blake3::keyed_hash(&key, &buffer).as_bytes());
            }
        });
    FixedSizeBinaryArray::new(HASH_BYTES, hashes.into(), None)
}

/// A hasher that has taken the payload's column names (length-prefixed):
/// what both the payload hashes and the run id's digest
/// (`member_batches`) start from.
pub(super) fn names_hasher(payload: &Schema) -> blake3::Hasher {
    let mut hasher = blake3::Hasher::new();
    for field in payload.fields() {
        hasher.update(&(field.name().len() as u64).to_le_bytes());
        hasher.update(field.name().as_bytes());
    }
    hasher
}

/// How one column's values are encoded for the payload hash.
enum Encoder<'a> {
    Text(&'a StringArray),
    Integer(&'a datafusion::arrow::array::Int64Array),
    Float(&'a datafusion::arrow::array::Float64Array),
    Boolean(&'a datafusion::arrow::array::BooleanArray),
    Other(&'a ArrayRef),
}

impl<'a> Encoder<'a> {
    fn of(column: &'a ArrayRef) -> Encoder<'a> {
        match column.data_type() {
            DataType::Utf8 => Encoder::Text(column.as_string::<i32>()),
            DataType::Int64 => Encoder::Integer(column.as_primitive::<Int64Type>()),
            DataType::Float64 => Encoder::Float(column.as_primitive::<Float64Type>()),
            DataType::Boolean => Encoder::Boolean(column.as_boolean()),
            _ => Encoder::Other(column),
        }
    }

    fn array(&self) -> &dyn Array {
        match self {
            Encoder::Text(a) => *a,
            Encoder::Integer(a) => *a,
            Encoder::Float(a) => *a,
            Encoder::Boolean(a) => *a,
            Encoder::Other(a) => a.as_ref(),
        }
    }

    fn encode(&self, row: usize, out: &mut Vec<u8>) {
        if self.array().is_null(row) {
            out.push(0);
            return;
        }
        match self {
            Encoder::Text(a) => text(1, a.value(row), out),
            Encoder::Integer(a) => {
                out.push(2);
                out.extend_from_slice(&a.value(row).to_le_bytes());
            }
            Encoder::Float(a) => {
                out.push(3);
                out.extend_from_slice(&a.value(row).to_bits().to_le_bytes());
            }
            Encoder::Boolean(a) => out.extend_from_slice(&[4, u8::from(a.value(row))]),
            Encoder::Other(a) => text(5, &engine::cell(a, row).to_string(), out),
        }
    }
}

fn text(tag: u8, value: &str, out: &mut Vec<u8>) {
    out.push(tag);
    out.extend_from_slice(&(value.len() as u64).to_le_bytes());
    out.extend_from_slice(value.as_bytes());
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{Int64Array, ListArray};
    use datafusion::arrow::datatypes::Int32Type;
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;
    use crate::run::member_batches::MemberBatches;

    fn payload(names: &[&str], columns: Vec<ArrayRef>) -> RecordBatch {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let rows = columns.first().map_or(0, |c| c.len());
        columns::assemble(&names, columns, rows).expect("a batch")
    }

    fn hashes(batch: &RecordBatch) -> Vec<Vec<u8>> {
        let h = payload_hashes(batch);
        (0..h.len()).map(|i| h.value(i).to_vec()).collect()
    }

    /// Equal rows hash equal, any difference in a value, its type, its
    /// presence or the column names changes the hash, and text is
    /// length-prefixed so values cannot run into each other.
    #[test]
    fn payload_hashes_tell_rows_apart() {
        let batch = payload(
            &["audience", "n"],
            vec![
                Arc::new(StringArray::from(vec![
                    Some("a"),
                    Some("a"),
                    Some("ab"),
                    Some("a"),
                    None,
                ])),
                Arc::new(Int64Array::from(vec![
                    Some(1),
                    Some(1),
                    Some(1),
                    Some(2),
                    Some(1),
                ])),
            ],
        );
        let h = hashes(&batch);
        assert_eq!(h[0], h[1]);
        for other in &h[2..] {
            assert_ne!(&h[0], other);
        }
        let renamed = payload(
            &["audience", "m"],
            vec![batch.column(0).clone(), batch.column(1).clone()],
        );
        assert_ne!(hashes(&renamed)[0], h[0]);
        // "a" + "b|" and "ab" + "|": the same bytes run together.
        let joined = payload(
            &["x", "y"],
            vec![
                Arc::new(StringArray::from(vec!["a", "ab"])),
                Arc::new(StringArray::from(vec!["b|", "|"])),
            ],
        );
        let j = hashes(&joined);
        assert_ne!(j[0], j[1]);
        // Lists hash through their values.
        let lists = payload(
            &["l"],
            vec![Arc::new(ListArray::from_iter_primitive::<Int32Type, _, _>(
                vec![Some(vec![Some(1), Some(2)]), Some(vec![Some(12)])],
            ))],
        );
        let l = hashes(&lists);
        assert_ne!(l[0], l[1]);
    }

    /// Rows in any order become one row per member in the byte order of
    /// `AUDIENCE/MEMBER`, the later of two rows with one key kept: against
    /// a map by the whole key, over audiences that order differently
    /// alone and with `/` (`a`, `a-b`, `a_b`), members sharing their first
    /// 8 bytes, empty members and NUL bytes.
    #[test]
    fn rows_are_put_in_member_order() {
        let mut random = crate::run::test_random::numbers(7);
        let audience_names = ["a", "a-b", "a_b", "B", "a.b"];
        let member_names = [
            "",
            "x",
            "x\0",
            "x\0\0",
            "prefix00",
            "prefix001",
            "prefix002",
            "prefix00\0",
            "p",
            "pr",
            "zzzzzzzzzzzz",
            "zzzzzzzzzzzy",
        ];
        for rows in [0, 1, 7, 200, 5_000] {
            let (mut audiences, mut members) = (Vec::new(), Vec::new());
            for _ in 0..rows {
                audiences.push(audience_names[random(audience_names.len() as u64) as usize]);
                let member = member_names[random(member_names.len() as u64) as usize];
                members.push(format!("{member}{}", random(3)));
            }
            // Some rows are left out, as the export's filters leave them.
            let kept: Vec<u32> = (0..rows as u32).filter(|_| random(10) > 0).collect();
            let audiences = StringArray::from(audiences);
            let members = StringArray::from(members);
            let mut expected: BTreeMap<String, u32> = BTreeMap::new();
            for &r in &kept {
                let key = format!(
                    "{}/{}",
                    audiences.value(r as usize),
                    members.value(r as usize)
                );
                expected.insert(key, r);
            }
            let order = member_order(&audiences, &members, &kept);
            let want: Vec<u32> = expected.values().copied().collect();
            assert_eq!(order, want, "{rows} rows");
            // Rows already in member order are kept as they are.
            assert_eq!(member_order(&audiences, &members, &want), want);
        }
        // In order but for a key twice: its later row stays.
        let audiences = StringArray::from(vec!["a", "a", "a"]);
        let members = StringArray::from(vec!["x", "x", "y"]);
        assert_eq!(member_order(&audiences, &members, &[0, 1, 2]), [1, 2]);
        assert_eq!(member_order(&audiences, &members, &[1, 0, 2]), [0, 2]);
    }

    /// A membership of JSON rows (an older store) and the same rows from
    /// the engine are the same members: same keys, same values, same
    /// hashes, same digest. Only a column without any value differs in
    /// type: text from JSON, its own type from the engine.
    #[test]
    fn legacy_rows_are_the_same_members() {
        let legacy = Membership {
            columns: vec!["audience".into(), "n".into(), "missing".into()],
            rows: [
                ("a/1".to_string(), vec![json!("a"), json!(5), Value::Null]),
                ("a/2".to_string(), vec![json!("a"), json!(7), Value::Null]),
            ]
            .into_iter()
            .collect(),
        };
        let from_json = Members::from_legacy(&legacy).expect("members");
        let typed = Members::new(
            StringArray::from(vec!["a/1", "a/2"]),
            &payload(
                &["audience", "n", "missing"],
                vec![
                    Arc::new(StringArray::from(vec!["a", "a"])),
                    Arc::new(datafusion::arrow::array::Int32Array::from(vec![5, 7])),
                    Arc::new(Int64Array::from(vec![None, None])),
                ],
            ),
        )
        .expect("members");
        assert_eq!(from_json.keys(), typed.keys());
        assert_eq!(from_json.hashes(), typed.hashes());
        for column in ["audience", "n"] {
            assert_eq!(
                from_json.batch().column_by_name(column),
                typed.batch().column_by_name(column)
            );
        }
        let missing = |m: &Members| {
            m.batch()
                .column_by_name("missing")
                .unwrap()
                .data_type()
                .clone()
        };
        assert_eq!(missing(&from_json), DataType::Utf8);
        assert_eq!(missing(&typed), DataType::Int64);
        let digest = |m: &Members| MemberBatches::of(m.clone()).digest().to_string();
        assert_eq!(digest(&from_json), digest(&typed));
        let payload = typed.payload();
        let rows: BTreeMap<String, Vec<Value>> = (0..typed.len())
            .map(|i| {
                let row = payload.columns().iter().map(|c| engine::cell(c, i));
                (typed.keys().value(i).to_string(), row.collect())
            })
            .collect();
        assert_eq!(rows, legacy.rows);
        assert_eq!(typed.columns(), legacy.columns);
        assert_eq!(MemberBatches::of(typed.clone()).count_in("a"), 2);
        let nobody = Members::new(
            StringArray::from(Vec::<String>::new()),
            &RecordBatch::new_empty(Arc::new(Schema::empty())),
        )
        .expect("no members");
        assert_ne!(digest(&typed), digest(&nobody));
    }
}
