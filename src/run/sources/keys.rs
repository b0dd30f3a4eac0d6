//! The duplicate-key checks. Parquet rows: a file's decoded batches and
//! the rows already found bad in, the (batch, row) of every row whose key
//! an earlier row holds out, hashed into buckets, checked in parallel; or
//! (streamed) the key hashes of every row, the repeated ones confirmed by
//! their text. Text rows: the set of keys seen so far ([`KeySet`]).

use std::collections::HashSet;
use std::hash::BuildHasher;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::DataType;
use rayon::prelude::*;

use super::parquet::Decoded;

/// The keys a text source has shown so far, for its duplicate-key check
/// row by row: 128 bits of hash per key (two 64-bit hashes under random
/// seeds), 16 bytes a key where its text took 50 or more (10M event ids:
/// about 200 MB, not 700). Two keys sharing all 128 bits would be taken
/// for one; with seeds drawn per read, the chance among a billion keys is
/// below 10^-20, far below that of a disk returning a wrong byte.
pub(super) struct KeySet {
    seen: HashSet<u128, foldhash::fast::FixedState>,
    hasher: KeyHasher,
}

/// The 128 bits a key is known by in one [`KeySet`]: its seeds, shared
/// with the cores that type rows for it.
#[derive(Clone, Default)]
pub(super) struct KeyHasher([foldhash::quality::RandomState; 2]);

impl KeyHasher {
    pub(super) fn hash(&self, key: &str) -> u128 {
        let [a, b] = &self.0;
        (u128::from(a.hash_one(key)) << 64) | u128::from(b.hash_one(key))
    }
}

impl KeySet {
    pub(super) fn new() -> KeySet {
        KeySet {
            seen: HashSet::with_hasher(foldhash::fast::FixedState::with_seed(0)),
            hasher: KeyHasher::default(),
        }
    }

    /// The 128 bits a key is known by in this set.
    pub(super) fn hash(&self, key: &str) -> u128 {
        self.hasher.hash(key)
    }

    pub(super) fn hasher(&self) -> KeyHasher {
        self.hasher.clone()
    }

    /// Whether `key` is new; it is seen from now on.
    pub(super) fn insert(&mut self, key: &str) -> bool {
        let hash = self.hash(key);
        self.seen.insert(hash)
    }

    /// [`KeySet::insert`] of a key by its [`KeySet::hash`].
    pub(super) fn insert_hash(&mut self, hash: u128) -> bool {
        self.seen.insert(hash)
    }

    pub(super) fn contains(&self, key: &str) -> bool {
        self.seen.contains(&self.hash(key))
    }

    pub(super) fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

/// The (batch, row) of every row whose key an earlier row already has,
/// rows in `bad` aside. Millions of event ids are the common case, so this
/// is a radix partition: every key's hash goes to one of 256 buckets (in
/// file order), then each bucket is checked with a set small enough for the
/// cache, the buckets shared among the cores. An entry is 8 bytes: the
/// row's number among all rows and as many bits of the hash as the rest
/// holds (see [`KeyHashes`]), so 100M event ids take 800 MB while they are
/// checked. Equal hashes are confirmed by the keys' text, so a hash shared
/// by two keys only costs a comparison.
pub(super) fn repeated_keys(
    decoded: &[Decoded],
    bad: &[std::collections::BTreeMap<usize, String>],
    k: usize,
) -> Result<Vec<(usize, usize)>, String> {
    repeated_keys_by(decoded, bad, k, key_hash)
}

/// [`repeated_keys`] with the key hash as a parameter (tests give a poor
/// one, to make every key's hash shared).
fn repeated_keys_by(
    decoded: &[Decoded],
    bad: &[std::collections::BTreeMap<usize, String>],
    k: usize,
    hash: impl Fn(&str) -> u64 + Sync,
) -> Result<Vec<(usize, usize)>, String> {
    // The number of each batch's first row among all rows, and the total.
    let mut starts = Vec::with_capacity(decoded.len() + 1);
    let mut total = 0usize;
    for d in decoded {
        starts.push(total);
        total += d.batch.num_rows();
    }
    let bits = RowBits::of(total)?;
    let locate = |row: u32| -> (usize, usize) {
        let row = row as usize;
        let batch = starts.partition_point(|&s| s <= row) - 1;
        (batch, row - starts[batch])
    };
    // Strings are read in place; other key types through their text.
    let owned: Vec<Option<Vec<String>>> = decoded
        .iter()
        .map(|d| {
            let col = d.batch.column(k);
            (col.data_type() != &DataType::Utf8).then(|| {
                (0..col.len())
                    .map(|i| {
                        datafusion::arrow::util::display::array_value_to_string(col, i)
                            .unwrap_or_default()
                    })
                    .collect()
            })
        })
        .collect();
    let key = |batch: usize, i: usize| -> Option<&str> {
        let col = decoded[batch].batch.column(k);
        if col.is_null(i) || bad[batch].contains_key(&i) {
            return None;
        }
        match &owned[batch] {
            Some(o) => Some(o[i].as_str()),
            None => Some(col.as_string::<i32>().value(i)),
        }
    };
    let parts = crate::run::engine::cores().clamp(1, BUCKETS);
    // 1. Partition: each core hashes a contiguous run of batches into its
    //    own buckets, in file order.
    let partition = |batches: std::ops::Range<usize>| {
        let rows: usize = decoded[batches.clone()]
            .iter()
            .map(|d| d.batch.num_rows())
            .sum();
        let mut hashes = KeyHashes::new(rows, bits);
        for bi in batches {
            for i in 0..decoded[bi].batch.num_rows() {
                if let Some(text) = key(bi, i) {
                    // `total` fits in u32 (checked above), so every row does.
                    hashes.push(hash(text), (starts[bi] + i) as u32);
                }
            }
        }
        hashes
    };
    let per_part = decoded.len().div_ceil(parts).max(1);
    let runs: Vec<KeyHashes> = (0..decoded.len().div_ceil(per_part))
        .into_par_iter()
        .map(|p| partition(p * per_part..decoded.len().min((p + 1) * per_part)))
        .collect();
    // 2. The rows whose hash an earlier row has, then their texts compared.
    let matches = KeyHashes::matches(&runs);
    drop(runs);
    let text = |row: u32| {
        let (batch, i) = locate(row);
        key(batch, i).unwrap_or_default()
    };
    Ok(repeated_among(&matches, text)
        .into_iter()
        .map(locate)
        .collect())
}

/// The hash of a key's text that [`repeated_keys`] and [`KeyHashes`] use.
pub(super) fn key_hash(text: &str) -> u64 {
    use std::hash::BuildHasher;
    foldhash::fast::FixedState::with_seed(0).hash_one(text)
}

/// The duplicate-key check's key hashes, bucketed as rows come (one
/// `KeyHashes` per run of rows; the runs in file order): the rows whose
/// hash an earlier row has are then the only candidates
/// ([`KeyHashes::matches`]), and only their keys' texts are compared
/// ([`repeated_among`]). A whole read ([`repeated_keys`]) reads the texts
/// from its batches; a streamed source keeps no key text while it reads,
/// and reads those keys again.
///
/// An entry is one `u64`: the row's number in its low [`RowBits`], and
/// above it the hash's bits below the 8 that chose the bucket, as many as
/// fit. The fewer a source's rows, the more bits of hash an entry keeps,
/// and the fewer rows share a hash without sharing a key (each such pair
/// is two keys a streamed source reads again from its files): at 10M rows,
/// 48 bits in all, about one such pair in five reads, where a fixed 40
/// bits gave about 45 pairs a read; at 100M rows, 45 bits and about 140
/// pairs, where 40 gave 4,500.
pub(super) struct KeyHashes {
    buckets: Vec<Vec<u64>>,
    bits: RowBits,
}

/// How many low bits of an entry number its row: enough for every row of
/// the source and one more (a [`FirstRows`] slot holds `row + 1`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct RowBits(u32);

impl RowBits {
    /// The bits for a source of `rows` rows: `rows` itself fits, so every
    /// `row + 1` does. A source's rows are numbered in u32, so one of more
    /// rows than that cannot be checked.
    pub(super) fn of(rows: usize) -> Result<RowBits, String> {
        if u32::try_from(rows).is_err() {
            return Err(format!(
                "{rows} rows are more than the duplicate-key check numbers ({})",
                u32::MAX
            ));
        }
        Ok(RowBits((usize::BITS - rows.leading_zeros()).max(1)))
    }

    fn mask(self) -> u64 {
        (1u64 << self.0) - 1
    }

    /// An entry's hash bits, the row's taken out.
    fn hash(self, entry: u64) -> u64 {
        entry >> self.0
    }

    fn row(self, entry: u64) -> u32 {
        // At most 32 bits: a source numbers its rows in u32.
        (entry & self.mask()) as u32
    }
}

/// How a run's keys came in the check pass. Keys each greater than the
/// one before (text order: sequential ids, time-ordered ids, files written
/// sorted by key) cannot repeat within the run, so they are compared, not
/// hashed: where every run's keys increase and the runs' ranges do not
/// meet ([`apart`]), the source has no repeated key and nothing is hashed.
/// Otherwise every key is hashed, the keys a run compared read again.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum RunKeys {
    /// Every key so far greater than the one before: the run's first and
    /// last key (`None` while it has none).
    Increasing(Option<(String, String)>),
    /// Hashed from the run's row `from` on (counted from its first row);
    /// the rows before it were compared only.
    Hashed { from: usize },
}

impl RunKeys {
    /// Takes the keys of a batch (`keys`, in row order) that starts at the
    /// run's row `start`: still increasing, or from which row on (of the
    /// run) they must be hashed. `Hashed` stays `Hashed`.
    pub(super) fn take<'a>(&mut self, start: usize, mut keys: impl Iterator<Item = &'a str>) {
        let RunKeys::Increasing(range) = self else {
            return;
        };
        let Some(first) = keys.next() else {
            return;
        };
        let mut last = first;
        let increasing = range
            .as_ref()
            .is_none_or(|(_, before)| first > before.as_str())
            && keys.all(|key| {
                let greater = key > last;
                last = key;
                greater
            });
        *self = match (increasing, range.take()) {
            (true, None) => RunKeys::Increasing(Some((first.to_string(), last.to_string()))),
            (true, Some((from, _))) => RunKeys::Increasing(Some((from, last.to_string()))),
            // No key before this batch: nothing of the run to read again.
            (false, None) => RunKeys::Hashed { from: 0 },
            (false, Some(_)) => RunKeys::Hashed { from: start },
        };
    }
}

/// Whether runs of increasing keys, each from its first to its last key,
/// hold no key twice: when no two of the ranges meet.
pub(super) fn apart<'a>(ranges: impl Iterator<Item = &'a (String, String)>) -> bool {
    let mut ranges: Vec<&(String, String)> = ranges.collect();
    ranges.sort_unstable();
    ranges.windows(2).all(|w| w[0].1 < w[1].0)
}

const BUCKETS: usize = 256;

impl KeyHashes {
    /// Buckets for about `rows` keys of a source whose rows take `bits`.
    /// Each starts at about its share of the rows, so it rarely grows (a
    /// doubling copies it and can leave half unused).
    pub(super) fn new(rows: usize, bits: RowBits) -> KeyHashes {
        let share = rows / BUCKETS;
        KeyHashes {
            buckets: (0..BUCKETS)
                .map(|_| Vec::with_capacity(share + share / 16 + 16))
                .collect(),
            bits,
        }
    }

    /// The key of row `row` (numbered among every row of the source).
    pub(super) fn push(&mut self, hash: u64, row: u32) {
        let entry = ((hash << 8) & !self.bits.mask()) | u64::from(row);
        self.buckets[(hash >> 56) as usize].push(entry);
    }

    /// Each row whose hash an earlier row has, with the first row of that
    /// hash; the rows of one hash in their order. `runs` are in file order
    /// and of one source (the same [`RowBits`]).
    pub(super) fn matches(runs: &[KeyHashes]) -> Vec<(u32, u32)> {
        Self::matches_split_past(runs, SPLIT_PAST)
    }

    /// [`KeyHashes::matches`], a bucket of more than `past` hashes matched
    /// in parts of about [`PART_HASHES`], split by the hash's top bits: a
    /// part's table of first rows stays in the processor's caches where
    /// the bucket's would not (at 100M keys, a bucket holds about 400k).
    fn matches_split_past(runs: &[KeyHashes], past: usize) -> Vec<(u32, u32)> {
        let Some(bits) = runs.first().map(|run| run.bits) else {
            return Vec::new();
        };
        assert!(
            runs.iter().all(|run| run.bits == bits),
            "the runs of one source number their rows alike"
        );
        let check = |bucket: usize| -> Vec<(u32, u32)> {
            let size: usize = runs.iter().map(|run| run.buckets[bucket].len()).sum();
            let entries = || {
                runs.iter()
                    .flat_map(|run| run.buckets[bucket].iter().copied())
            };
            let mut out = Vec::new();
            if size <= past {
                first_matches(&mut FirstRows::new(size, bits), entries(), &mut out);
                return out;
            }
            let (starts, split) = split_by_top_bits(size, entries);
            let largest = starts.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0);
            let mut first = FirstRows::new(largest, bits);
            for w in starts.windows(2) {
                first.clear();
                first_matches(&mut first, split[w[0]..w[1]].iter().copied(), &mut out);
            }
            out
        };
        (0..BUCKETS).into_par_iter().flat_map_iter(check).collect()
    }
}

/// A bucket larger than this is matched in parts ([`KeyHashes::matches`]):
/// its table of first rows would be 4 MB or more, past a core's own caches
/// (the buckets of 10M keys, about 39k hashes each, are matched whole).
const SPLIT_PAST: usize = 1 << 17;

/// About how many hashes a part holds: a table of 256 KB.
const PART_HASHES: usize = 1 << 14;

/// The `size` entries `entries` gives (twice: to count, then to place)
/// in parts of about [`PART_HASHES`] by the hash's top bits, and where
/// each part starts (one more start ends the last). A stable split (a
/// counting sort), so each part keeps the rows' order.
fn split_by_top_bits<I: Iterator<Item = u64>>(
    size: usize,
    entries: impl Fn() -> I,
) -> (Vec<usize>, Vec<u64>) {
    let bits = (size / PART_HASHES)
        .next_power_of_two()
        .clamp(2, 1 << 12)
        .trailing_zeros();
    let part = |entry: u64| (entry >> (64 - bits)) as usize;
    let mut starts = vec![0usize; (1 << bits) + 1];
    for entry in entries() {
        starts[part(entry) + 1] += 1;
    }
    for i in 1..starts.len() {
        starts[i] += starts[i - 1];
    }
    let mut next = starts.clone();
    let mut split = vec![0; size];
    for entry in entries() {
        let at = &mut next[part(entry)];
        split[*at] = entry;
        *at += 1;
    }
    (starts, split)
}

/// Into `out`, each of `entries` (in the rows' order) whose hash `first`
/// has seen, with that hash's first row.
fn first_matches(
    first: &mut FirstRows,
    entries: impl Iterator<Item = u64>,
    out: &mut Vec<(u32, u32)>,
) {
    for entry in entries {
        if let Some(earlier) = first.first(entry) {
            out.push((first.bits.row(entry), earlier));
        }
    }
}

/// The first row of each key hash of one bucket: an open-addressed table
/// of entries whose row is the first row's number plus one (0 marking a
/// free slot), probed linearly and at most half full. The hashes are
/// already uniform, so a slot is found by one multiplication, and a probe
/// reads one 8-byte slot where a general map hashes the key again and
/// matches a group of tags. Probing was about 8% of a profiled run that
/// checks 10M event ids; over 10M hashes this table takes about 0.7 of a
/// foldhash map's time.
struct FirstRows {
    slots: Vec<u64>,
    /// 64 minus the table's size in bits: a slot is the product's top bits.
    shift: u32,
    bits: RowBits,
}

impl FirstRows {
    /// A table for up to `keys` hashes, of entries whose rows take `bits`.
    fn new(keys: usize, bits: RowBits) -> FirstRows {
        let len = (keys.max(8) * 2).next_power_of_two();
        FirstRows {
            slots: vec![0; len],
            shift: 64 - len.trailing_zeros(),
            bits,
        }
    }

    /// Empties the table for another part of a bucket.
    fn clear(&mut self) {
        self.slots.fill(0);
    }

    /// The row that first had `entry`'s hash, if one did; else `entry`'s
    /// row is that row from now on. [`RowBits`] hold every `row + 1`, so
    /// it does not carry into the hash.
    fn first(&mut self, entry: u64) -> Option<u32> {
        let hash = self.bits.hash(entry);
        // Fibonacci hashing spreads all the hash's bits over the slots, so
        // hashes that differ only in their top bits (a part's are equal)
        // do not cluster.
        let mask = self.slots.len() - 1;
        let mut slot = (hash.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> self.shift) as usize;
        loop {
            let held = self.slots[slot];
            if held == 0 {
                self.slots[slot] = entry + 1;
                return None;
            }
            if self.bits.hash(held) == hash {
                return Some(self.bits.row(held) - 1);
            }
            slot = (slot + 1) & mask;
        }
    }
}

/// The rows among `matches` (from [`KeyHashes::matches`]) whose key an
/// earlier row holds, sorted: `text` gives the key of every row named in
/// `matches`. A key that differs from the first with its hash is
/// remembered: seen again, it is repeated.
pub(super) fn repeated_among<'a>(
    matches: &[(u32, u32)],
    text: impl Fn(u32) -> &'a str,
) -> Vec<u32> {
    let mut colliding = std::collections::HashSet::new();
    let mut repeated = Vec::new();
    for &(row, first) in matches {
        let key = text(row);
        // Texts are read only on a hash match: reading every key again
        // would be a cache miss per row.
        if key == text(first) || !colliding.insert(key) {
            repeated.push(row);
        }
    }
    repeated.sort_unstable();
    repeated
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashSet};
    use std::sync::Arc;

    use datafusion::arrow::array::{ArrayRef, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::arrow::record_batch::RecordBatch;

    use super::*;

    fn batch(keys: &[Option<String>]) -> Decoded {
        let column: ArrayRef = Arc::new(StringArray::from(keys.to_vec()));
        let schema = Schema::new(vec![Field::new("id", DataType::Utf8, true)]);
        Decoded::of(RecordBatch::try_new(Arc::new(schema), vec![column]).expect("a batch"))
    }

    /// A run's keys stay compared while each is above the one before,
    /// across batches, and are hashed from the batch where one is not.
    #[test]
    fn keys_that_only_increase_are_compared_not_hashed() {
        let mut run = RunKeys::Increasing(None);
        run.take(0, std::iter::empty());
        assert_eq!(run, RunKeys::Increasing(None));
        run.take(0, ["a1", "a2", "b"].into_iter());
        run.take(3, ["b1", "c"].into_iter());
        assert_eq!(run, RunKeys::Increasing(Some(("a1".into(), "c".into()))));
        // A key equal to the one before: hashed from this batch on, the
        // batches before read again.
        let mut repeated = run.clone();
        repeated.take(5, ["d", "d"].into_iter());
        assert_eq!(repeated, RunKeys::Hashed { from: 5 });
        // Not above the last batch's last key.
        let mut lower = run.clone();
        lower.take(5, ["c"].into_iter());
        assert_eq!(lower, RunKeys::Hashed { from: 5 });
        // Out of order in the run's first keys: nothing before to read.
        let mut first = RunKeys::Increasing(None);
        first.take(0, ["b", "a"].into_iter());
        assert_eq!(first, RunKeys::Hashed { from: 0 });
        first.take(2, ["x", "y"].into_iter());
        assert_eq!(first, RunKeys::Hashed { from: 0 });
    }

    /// Runs of increasing keys need no hashes when no two of their ranges
    /// meet, even at one end.
    #[test]
    fn ranges_apart_hold_no_key_twice() {
        let range = |a: &str, b: &str| (a.to_string(), b.to_string());
        let apart_of = |r: &[(String, String)]| apart(r.iter());
        assert!(apart_of(&[]));
        assert!(apart_of(&[range("m", "z"), range("a", "l")]));
        // Meeting at an end: that key may be in both runs.
        assert!(!apart_of(&[range("a", "m"), range("m", "z")]));
        assert!(!apart_of(&[range("a", "z"), range("c", "d")]));
        assert!(!apart_of(&[
            range("k", "k"),
            range("a", "l"),
            range("x", "y")
        ]));
    }

    /// The hash-first check of streamed sources against a set of the keys
    /// seen, in row order: over several runs, with many repeats, and with a
    /// poor hash (every key of a length shares one) in every other round,
    /// so that keys sharing a hash are told apart by their text.
    /// A key set says a key is new exactly once, across a million keys of
    /// one shape (event ids), and two sets draw different seeds.
    #[test]
    fn a_key_set_knows_the_keys_it_has_seen() {
        let mut set = KeySet::new();
        assert!(set.is_empty());
        for i in 0..1_000_000 {
            assert!(set.insert(&format!("E{i:09}")), "E{i:09}");
        }
        for i in (0..1_000_000).step_by(997) {
            assert!(!set.insert(&format!("E{i:09}")));
            assert!(set.contains(&format!("E{i:09}")));
        }
        assert!(!set.contains("E1000000000") && !set.contains(""));
        assert_ne!(KeySet::new().hash("k"), KeySet::new().hash("k"));
    }

    #[test]
    fn hashed_keys_repeat_where_a_set_says() {
        use std::collections::HashMap;
        let mut random = crate::run::test_random::numbers(0x9E37_79B9_7F4A_7C15);
        for round in 0..20 {
            let n = 1 + random(4000) as usize;
            let keys: Vec<String> = (0..n)
                .map(|_| format!("e{}", random(1 + n as u64 / 2)))
                .collect();
            let hash = |text: &str| {
                if round % 2 == 0 {
                    let len = text.len() as u64;
                    (len << 56) | len
                } else {
                    key_hash(text)
                }
            };
            let runs_of = 1 + random(4) as usize;
            let per_run = n.div_ceil(runs_of);
            let mut runs: Vec<KeyHashes> = (0..runs_of)
                .map(|_| KeyHashes::new(per_run, RowBits::of(n).expect("few rows")))
                .collect();
            for (row, key) in keys.iter().enumerate() {
                runs[row / per_run].push(hash(key), row as u32);
            }
            let matches = KeyHashes::matches(&runs);
            // Matched in parts (a bucket of over 0, 1 or 16 hashes), the
            // same matches, in the same order for the rows of one hash.
            for past in [0, 1, 16] {
                let of_hash = |matches: &[(u32, u32)]| {
                    let mut by_hash: Vec<(u64, u32, u32)> = matches
                        .iter()
                        .map(|&(row, first)| (hash(&keys[row as usize]), row, first))
                        .collect();
                    by_hash.sort_by_key(|&(hash, _, _)| hash);
                    by_hash
                };
                assert_eq!(
                    of_hash(&KeyHashes::matches_split_past(&runs, past)),
                    of_hash(&matches),
                    "round {round}, parts past {past}"
                );
            }
            let text: HashMap<u32, String> = matches
                .iter()
                .flat_map(|&(row, first)| [row, first])
                .map(|row| (row, keys[row as usize].clone()))
                .collect();
            let mut seen = HashSet::new();
            let expected: Vec<u32> = (0..n as u32)
                .filter(|&row| !seen.insert(keys[row as usize].as_str()))
                .collect();
            let key = |row: u32| text.get(&row).map_or("", String::as_str);
            assert_eq!(repeated_among(&matches, key), expected, "round {round}");
        }
    }

    /// The table of first rows against a map, with hashes drawn from a
    /// few values (many repeats), hashes differing only in their top bits
    /// (which a slot taken from the low bits would pile up), and a table
    /// filled to its limit; rows numbered from 0 in a small source, and
    /// up to the last a source may have (32 bits of row).
    #[test]
    fn first_rows_are_what_a_map_keeps() {
        use std::collections::HashMap;
        let mut random = crate::run::test_random::numbers(0x94D0_49BB_1331_11EB);
        for round in 0..30 {
            let n = random(5000) as usize;
            let (offset, source_rows) = if round % 2 == 0 {
                (0, n)
            } else {
                (u32::MAX - 5001, u32::MAX as usize - 1)
            };
            let bits = RowBits::of(source_rows).expect("rows numbered in u32");
            let hash_bits = 64 - bits.0;
            let hashes: Vec<u64> = (0..n)
                .map(|_| match round % 3 {
                    0 => random(1 + n as u64 / 3),
                    1 => random(64) << (hash_bits - 6),
                    _ => random(u64::MAX) >> bits.0,
                })
                .collect();
            let mut table = FirstRows::new(n, bits);
            let mut map = HashMap::new();
            for (row, &hash) in hashes.iter().enumerate() {
                let row = row as u32 + offset;
                let expected = map.get(&hash).copied();
                map.entry(hash).or_insert(row);
                let entry = (hash << bits.0) | u64::from(row);
                assert_eq!(table.first(entry), expected, "round {round}");
            }
        }
    }

    /// An entry keeps every bit of the hash its row leaves (beside the 8
    /// that chose its bucket): 40 at 10M rows, 32 at the most rows a
    /// source may have; and its row whole.
    #[test]
    fn an_entry_keeps_what_its_rows_leave_of_the_hash() {
        assert_eq!(RowBits::of(10_000_000), Ok(RowBits(24)));
        assert_eq!(RowBits::of(0), Ok(RowBits(1)));
        assert_eq!(RowBits::of(u32::MAX as usize), Ok(RowBits(32)));
        for (rows, hash_bits) in [(10_000_000, 40), (u32::MAX as usize, 32)] {
            let mut keys = KeyHashes::new(2, RowBits::of(rows).expect("rows numbered in u32"));
            let last = (rows - 1) as u32;
            keys.push(u64::MAX, last);
            let entry = keys.buckets[255][0];
            assert_eq!(keys.bits.row(entry), last);
            assert_eq!(keys.bits.hash(entry), u64::MAX >> (64 - hash_bits));
        }
    }

    /// Against a set of the keys seen, in file order: over several
    /// batches, with missing keys, rows already bad, and many repeats.
    #[test]
    fn the_repeats_are_what_a_set_finds() {
        let mut random = crate::run::test_random::numbers(0x2545_F491_4F6C_DD1D);
        for round in 0..20 {
            let batches: Vec<Decoded> = (0..1 + random(6))
                .map(|_| {
                    let keys: Vec<Option<String>> = (0..random(3000))
                        .map(|_| (random(20) != 0).then(|| format!("e{}", random(2000))))
                        .collect();
                    batch(&keys)
                })
                .collect();
            let bad: Vec<BTreeMap<usize, String>> = batches
                .iter()
                .map(|d| {
                    (0..d.batch.num_rows())
                        .filter(|i| i % 97 == 5)
                        .map(|i| (i, "bad".to_string()))
                        .collect()
                })
                .collect();
            let mut seen = HashSet::new();
            let mut expected = Vec::new();
            for (bi, (d, bad)) in batches.iter().zip(&bad).enumerate() {
                let keys = d.batch.column(0).as_string::<i32>();
                for i in 0..keys.len() {
                    if keys.is_valid(i) && !bad.contains_key(&i) && !seen.insert(keys.value(i)) {
                        expected.push((bi, i));
                    }
                }
            }
            let found = repeated_keys(&batches, &bad, 0).expect("checked");
            assert_eq!(found, expected, "round {round}");
            // Keys that share their hash in tens are still told apart by
            // their text.
            let poor = |text: &str| u64::from(*text.as_bytes().last().unwrap_or(&0));
            let found = repeated_keys_by(&batches, &bad, 0, poor).expect("checked");
            assert_eq!(found, expected, "round {round}, shared hashes");
        }
    }
}
