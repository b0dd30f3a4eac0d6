//! The duplicate-key check of Parquet rows: a file's decoded batches and
//! the rows already found bad in, the (batch, row) of every row whose key
//! an earlier row holds out. Hashed into buckets, checked in parallel.

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::DataType;
use rayon::prelude::*;

use super::parquet::Decoded;

/// The (batch, row) of every row whose key an earlier row already has,
/// rows in `bad` aside. Millions of event ids are the common case, so this
/// is a radix partition: every key's hash goes to one of 256 buckets (in
/// file order), then each bucket is checked with a set small enough for the
/// cache, the buckets shared among the cores.
pub(super) fn repeated_keys(
    decoded: &[Decoded],
    bad: &[std::collections::BTreeMap<usize, String>],
    k: usize,
) -> Vec<(usize, usize)> {
    use std::collections::HashMap;
    use std::hash::BuildHasher;
    const BUCKETS: usize = 256;
    let hasher = foldhash::fast::FixedState::with_seed(0);
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
    // 1. Partition: (hash, batch, row) per bucket, in file order; each core
    //    hashes a contiguous run of batches, and the runs join in order.
    let partition = |batches: std::ops::Range<usize>| {
        let mut buckets: Vec<Vec<(u64, u32, u32)>> = vec![Vec::new(); BUCKETS];
        for bi in batches {
            for i in 0..decoded[bi].batch.num_rows() {
                if let Some(text) = key(bi, i) {
                    let h = hasher.hash_one(text);
                    buckets[(h >> 56) as usize].push((h, bi as u32, i as u32));
                }
            }
        }
        buckets
    };
    let per_part = decoded.len().div_ceil(parts).max(1);
    let runs: Vec<Vec<Vec<(u64, u32, u32)>>> = (0..decoded.len().div_ceil(per_part))
        .into_par_iter()
        .map(|p| partition(p * per_part..decoded.len().min((p + 1) * per_part)))
        .collect();
    let mut buckets: Vec<Vec<(u64, u32, u32)>> = vec![Vec::new(); BUCKETS];
    for run in runs {
        for (bucket, part) in buckets.iter_mut().zip(run) {
            bucket.extend(part);
        }
    }
    // 2. Per bucket, the first row of each key stays; a later row whose
    //    hash matches is compared by its text.
    let check = |bucket: &[(u64, u32, u32)]| -> Vec<(usize, usize)> {
        let mut first: HashMap<u64, (u32, u32), foldhash::fast::FixedState> =
            HashMap::with_capacity_and_hasher(bucket.len(), hasher.clone());
        let mut colliding: std::collections::HashSet<&str> = std::collections::HashSet::new();
        let mut repeated = Vec::new();
        for &(h, bi, i) in bucket {
            match first.get(&h) {
                None => {
                    first.insert(h, (bi, i));
                }
                Some(&(fb, fi)) => {
                    // Texts are read only on a hash match: reading every
                    // key again would be a cache miss per row.
                    let (bi, i) = (bi as usize, i as usize);
                    let text = key(bi, i).unwrap_or_default();
                    let earlier = key(fb as usize, fi as usize).unwrap_or_default();
                    // Equal hashes of different keys are rare enough for a
                    // plain set of the texts that differ from the first.
                    if text == earlier || !colliding.insert(text) {
                        repeated.push((bi, i));
                    }
                }
            }
        }
        repeated
    };
    let mut all: Vec<(usize, usize)> = buckets
        .par_iter()
        .flat_map_iter(|bucket| check(bucket))
        .collect();
    all.sort_unstable();
    all
}
