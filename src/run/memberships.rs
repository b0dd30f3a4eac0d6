//! Which accounts and people each audience holds, as the audience queries
//! left them: the `accord_accounts` and `accord_people` tables, one row per
//! account (person) in key order, a boolean column per audience and part.
//!
//! Counted and compared a column at a time: no member becomes a Rust value,
//! so an audience of ten million people costs a pass over two columns, not
//! a set of ten million strings (which the run built before, a JSON value
//! per cell on the way). Keys become text only where one key is asked
//! about (`explain`) or a caller wants the sets themselves (tests).

use std::collections::{BTreeMap, BTreeSet};

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, StringArray};
use datafusion::arrow::compute::kernels::boolean::{and, is_not_null};
use datafusion::arrow::compute::kernels::cmp::distinct;
use datafusion::arrow::compute::{cast, concat, prep_null_mask_filter};
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::record_batch::RecordBatch;

use crate::semantics::audience_column;

/// The audiences of a run (see the module doc).
#[derive(Default)]
pub struct Memberships {
    /// Each entity's key column, by table.
    keys: Vec<ArrayRef>,
    /// Every audience and `NAME.part`, sorted: its table, and its members
    /// as a mask over the table's rows (made once, when added).
    references: BTreeMap<String, (usize, BooleanArray)>,
}

impl Memberships {
    /// Adds the audiences `references` (names and `NAME.part`s) of one
    /// entity from its audience table `batch`, whose key column is `key`.
    pub fn add(
        &mut self,
        batch: RecordBatch,
        key: &str,
        references: impl IntoIterator<Item = String>,
    ) -> Result<(), String> {
        let keys = batch
            .column_by_name(key)
            .ok_or_else(|| format!("the audience query has no column `{key}`"))?
            .clone();
        let counted = first_of_each_key(&keys)?;
        let table = self.keys.len();
        let mut masks = Vec::new();
        for reference in references {
            let column = audience_column(&reference);
            let verdicts = match batch.column_by_name(&column) {
                Some(c) if c.data_type() == &DataType::Boolean => c.as_boolean(),
                Some(c) => {
                    return Err(format!(
                        "the audience query's column `{column}` is {}, not a boolean",
                        c.data_type()
                    ));
                }
                None => return Err(format!("the audience query has no column `{column}`")),
            };
            // A null verdict (unknown) is no member.
            let members = and(verdicts, &counted).map_err(|e| e.to_string())?;
            let members = match members.nulls() {
                Some(_) => prep_null_mask_filter(&members),
                None => members,
            };
            masks.push((reference, (table, members)));
        }
        self.references.extend(masks);
        self.keys.push(keys);
        Ok(())
    }

    /// Every audience and `NAME.part`, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.references.keys().map(String::as_str)
    }

    /// How many members `reference` has (0 for one the run does not know).
    pub fn count(&self, reference: &str) -> u64 {
        self.references
            .get(reference)
            .map_or(0, |(_, mask)| mask.true_count() as u64)
    }

    /// How many members `a` and `b` share: only audiences of one entity
    /// can (an account's key and a person's never name one member).
    pub fn overlap(&self, a: &str, b: &str) -> u64 {
        match (self.references.get(a), self.references.get(b)) {
            (Some((ta, ma)), Some((tb, mb))) if ta == tb => {
                and(ma, mb).map_or(0, |m| m.true_count() as u64)
            }
            _ => 0,
        }
    }

    /// Whether the member whose key reads `key` is in `reference`.
    pub fn contains(&self, reference: &str, key: &str) -> bool {
        self.keys_and_mask(reference).is_some_and(|(keys, mask)| {
            (0..keys.len()).any(|i| mask.value(i) && keys.value(i) == key)
        })
    }

    /// The members of `reference` as keys, sorted (empty for one the run
    /// does not know): for callers that want the sets themselves.
    pub fn keys(&self, reference: &str) -> BTreeSet<String> {
        let Some((keys, mask)) = self.keys_and_mask(reference) else {
            return BTreeSet::new();
        };
        (0..keys.len())
            .filter(|&i| mask.value(i))
            .map(|i| keys.value(i).to_string())
            .collect()
    }

    /// Every audience's members as keys: [`Memberships::keys`] of each.
    pub fn sets(&self) -> BTreeMap<String, BTreeSet<String>> {
        self.names()
            .map(|name| (name.to_string(), self.keys(name)))
            .collect()
    }

    /// `reference`'s table's keys as text, and its members' mask.
    fn keys_and_mask(&self, reference: &str) -> Option<(StringArray, &BooleanArray)> {
        let (table, mask) = self.references.get(reference)?;
        let keys = cast(&self.keys[*table], &DataType::Utf8).ok()?;
        Some((keys.as_string::<i32>().clone(), mask))
    }
}

/// True for each row with a key that differs from the row before's.
fn first_of_each_key(keys: &ArrayRef) -> Result<BooleanArray, String> {
    let present = is_not_null(keys).map_err(|e| e.to_string())?;
    if keys.len() < 2 {
        return Ok(present);
    }
    let later = keys.slice(1, keys.len() - 1);
    let earlier = keys.slice(0, keys.len() - 1);
    let changed = distinct(&later, &earlier).map_err(|e| e.to_string())?;
    let first = BooleanArray::from(vec![true]);
    let changed = concat(&[&first, &changed]).map_err(|e| e.to_string())?;
    and(&present, changed.as_boolean()).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{Int64Array, StringArray};
    use datafusion::arrow::datatypes::{Field, Schema};

    use super::*;

    fn table(keys: ArrayRef, columns: &[(&str, Vec<Option<bool>>)]) -> RecordBatch {
        let mut fields = vec![Field::new("__key", keys.data_type().clone(), true)];
        let mut arrays = vec![keys];
        for (name, values) in columns {
            fields.push(Field::new(*name, DataType::Boolean, true));
            arrays.push(Arc::new(BooleanArray::from(values.clone())));
        }
        RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).unwrap()
    }

    /// The counts, overlaps, lookups and sets are those of sets of keys:
    /// a null key or verdict is no member, a key twice (in key order) is
    /// one member, and integer keys read as their text.
    #[test]
    fn columns_count_what_sets_of_keys_count() {
        let names = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        let accounts = table(
            Arc::new(StringArray::from(vec![
                Some("a1"),
                Some("a2"),
                Some("a2"),
                None,
                Some("a4"),
            ])),
            &[
                (
                    "A",
                    vec![Some(true), Some(true), Some(true), Some(true), None],
                ),
                (
                    "B",
                    vec![Some(true), Some(false), Some(true), Some(true), Some(true)],
                ),
                ("B__x", vec![Some(true), None, None, None, Some(false)]),
                ("B__y", vec![Some(false), None, None, None, Some(true)]),
            ],
        );
        let people = table(
            Arc::new(Int64Array::from(vec![Some(1), Some(2), Some(10)])),
            &[("P", vec![Some(true), Some(false), Some(true)])],
        );
        let mut m = Memberships::default();
        m.add(accounts, "__key", names(&["A", "B", "B.x", "B.y"]))
            .unwrap();
        m.add(people, "__key", names(&["P"])).unwrap();
        let wrong = table(Arc::new(Int64Array::from(vec![1])), &[]);
        assert!(
            m.add(wrong, "__key", names(&["Q"])).is_err(),
            "no column `Q`"
        );
        assert_eq!(m.names().collect::<Vec<_>>(), ["A", "B", "B.x", "B.y", "P"]);
        let sets = m.sets();
        let set = |keys: &[&str]| keys.iter().map(|k| k.to_string()).collect::<BTreeSet<_>>();
        assert_eq!(sets["A"], set(&["a1", "a2"]));
        // `a2`'s first row is not in B: the first row of a key decides.
        assert_eq!(sets["B"], set(&["a1", "a4"]));
        assert_eq!(sets["B.x"], set(&["a1"]));
        assert_eq!(sets["B.y"], set(&["a4"]));
        assert_eq!(sets["P"], set(&["1", "10"]));
        for name in m.names() {
            assert_eq!(m.count(name), sets[name].len() as u64, "{name}");
        }
        assert_eq!(m.overlap("A", "B"), 1);
        assert_eq!(m.overlap("B", "B.y"), 1);
        assert_eq!(m.overlap("A", "P"), 0, "an account is no person");
        assert!(m.contains("P", "10"));
        assert!(!m.contains("P", "2"));
        assert!(!m.contains("Nope", "a1"));
        assert_eq!(m.count("Nope"), 0);
    }
}
