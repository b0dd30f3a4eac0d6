//! Decoding Parquet: one file in (local, or an object through
//! `object::read_parquet`, which shares [`layout`] and [`typed`]), the
//! columns the run needs of its row groups decoded on every core and cast
//! to the schema's Arrow types out (`Decoded`, with the values that
//! did not type); then the checks text rows get (untyped values, closed
//! domains, missing and duplicate keys) leave the bad rows out of the
//! batches and count them in the source's `Builder`.

use std::collections::BTreeSet;
use std::path::Path;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, new_null_array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};
use datafusion::parquet::arrow::ProjectionMask;
use datafusion::parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder,
};
use rayon::prelude::*;

use super::keys::repeated_keys;
use super::open;
use super::typing::{Builder, a_type, arrow_schema, outside_domain};
use crate::plan::{FieldPlan, SchemaPlan};

/// Rows per decoded batch.
pub(super) const BATCH_ROWS: usize = 65_536;

/// Batches of one Parquet file, typed, with the rows that did not type.
pub(super) struct Decoded {
    /// The row number (1-based, in the file) of the batch's first row.
    first_row: usize,
    pub(super) batch: RecordBatch,
    /// (row in batch, reason): a value that does not convert to its field's
    /// type (a plain cast would make it null) or is outside a closed domain.
    pub(super) bad: Vec<(usize, String)>,
}

#[cfg(test)]
impl Decoded {
    /// A batch that typed without a bad value, as the file's first rows.
    pub(super) fn of(batch: RecordBatch) -> Decoded {
        Decoded {
            first_row: 1,
            batch,
            bad: Vec::new(),
        }
    }
}

/// What to read of one Parquet file, from its footer (read once, shared
/// by every reader of the file): the columns it carries, the projection
/// of the columns the run needs, and the row groups to decode in runs of
/// contiguous groups (one run per core), each with the 1-based row number
/// of its first row. Row groups without rows are not read.
pub(super) struct Layout {
    pub(super) metadata: ArrowReaderMetadata,
    pub(super) columns: Vec<String>,
    pub(super) mask: ProjectionMask,
    /// The columns the mask reads.
    pub(super) read: BTreeSet<String>,
    pub(super) runs: Vec<(Vec<usize>, usize)>,
}

/// The [`Layout`] of a file whose footer is `metadata`; `needed` is the
/// schema fields the run reads (`None`: every column).
pub(super) fn layout(metadata: ArrowReaderMetadata, needed: Option<&BTreeSet<String>>) -> Layout {
    let file_schema = metadata.schema().clone();
    let columns: Vec<String> = file_schema
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let read: BTreeSet<String> = columns
        .iter()
        .filter(|c| needed.is_none_or(|needed| needed.contains(*c)))
        .cloned()
        .collect();
    let mask = match needed {
        Some(_) => columns_mask(&metadata, &columns, &read),
        None => ProjectionMask::all(),
    };
    let mut groups = Vec::new();
    let mut first_rows = Vec::new();
    let mut next_row = 1;
    for (i, g) in metadata.metadata().row_groups().iter().enumerate() {
        let rows = g.num_rows().max(0) as usize;
        if rows > 0 {
            groups.push(i);
            first_rows.push(next_row);
        }
        next_row += rows;
    }
    let threads = crate::run::engine::cores().clamp(1, groups.len().max(1));
    let per_thread = groups.len().div_ceil(threads).max(1);
    let runs = groups
        .chunks(per_thread)
        .zip(first_rows.chunks(per_thread))
        .map(|(g, first)| (g.to_vec(), first[0]))
        .collect();
    Layout {
        metadata,
        columns,
        mask,
        read,
        runs,
    }
}

impl Layout {
    /// The rows of `row_groups` (a run).
    pub(super) fn rows_in(&self, row_groups: &[usize]) -> usize {
        let groups = self.metadata.metadata().row_groups();
        row_groups
            .iter()
            .map(|&g| groups[g].num_rows().max(0) as usize)
            .sum()
    }
}

/// The projection of a file (whose footer is `metadata` and columns
/// `columns`) on the columns `read`.
pub(super) fn columns_mask(
    metadata: &ArrowReaderMetadata,
    columns: &[String],
    read: &BTreeSet<String>,
) -> ProjectionMask {
    ProjectionMask::roots(
        metadata.metadata().file_metadata().schema_descr(),
        columns
            .iter()
            .enumerate()
            .filter(|(_, c)| read.contains(*c))
            .map(|(i, _)| i),
    )
}

/// Reads a local Parquet file: only the columns `needed` (every column
/// when `None`), its row groups decoded on every core (each thread its own
/// reader over a run of row groups, the footer read once), in file order.
pub(super) fn read_parquet(
    file: &Path,
    shown: &str,
    schema: &SchemaPlan,
    needed: Option<&BTreeSet<String>>,
) -> Result<(Vec<Decoded>, Vec<String>), String> {
    let layout = layout(footer(file, shown)?, needed);
    let decoded = decode_layout(file, shown, schema, &layout)?;
    Ok((decoded, layout.columns))
}

/// The footer of a local Parquet file.
pub(super) fn footer(file: &Path, shown: &str) -> Result<ArrowReaderMetadata, String> {
    ArrowReaderMetadata::load(&open(file)?, Default::default()).map_err(|e| format!("{shown}: {e}"))
}

/// The row groups of `layout` decoded (its runs on every core) and typed,
/// in file order.
fn decode_layout(
    file: &Path,
    shown: &str,
    schema: &SchemaPlan,
    layout: &Layout,
) -> Result<Vec<Decoded>, String> {
    let target = Target::of(schema);
    let decode = |(row_groups, first_row): (Vec<usize>, usize)| -> Result<Vec<Decoded>, String> {
        let mut out = Vec::new();
        let mut next_row = first_row;
        for batch in row_group_reader(file, shown, layout, row_groups, BATCH_ROWS)? {
            let batch = batch.map_err(|e| format!("{shown}: {e}"))?;
            let decoded = typed(&batch, &target, schema, next_row, shown)?;
            next_row += batch.num_rows();
            out.push(decoded);
        }
        Ok(out)
    };
    let runs = layout.runs.clone();
    if runs.len() <= 1 {
        return match runs.into_iter().next() {
            Some(run) => decode(run),
            None => Ok(Vec::new()),
        };
    }
    let results: Vec<Result<Vec<Decoded>, String>> = runs.into_par_iter().map(decode).collect();
    let mut out = Vec::new();
    for r in results {
        out.extend(r?);
    }
    Ok(out)
}

/// A reader of the columns `layout` projects of `row_groups`, in batches
/// of `batch_rows`, over the footer already read.
pub(super) fn row_group_reader(
    file: &Path,
    shown: &str,
    layout: &Layout,
    row_groups: Vec<usize>,
    batch_rows: usize,
) -> Result<ParquetRecordBatchReader, String> {
    ParquetRecordBatchReaderBuilder::new_with_metadata(open(file)?, layout.metadata.clone())
        .with_projection(layout.mask.clone())
        .with_row_groups(row_groups)
        .with_batch_size(batch_rows)
        .build()
        .map_err(|e| format!("{shown}: {e}"))
}

/// The Arrow schema a source's rows are typed to, with one all-null column
/// per field, shared: a field a batch lacks is a slice of it rather than
/// new nulls per batch (a text column's nulls still take 4 bytes a row,
/// 400 MB for 100M events).
pub(super) struct Target {
    pub(super) schema: SchemaRef,
    nulls: Vec<ArrayRef>,
}

impl Target {
    pub(super) fn of(schema: &SchemaPlan) -> Target {
        let schema = arrow_schema(schema);
        let nulls = schema
            .fields()
            .iter()
            .map(|f| new_null_array(f.data_type(), BATCH_ROWS))
            .collect();
        Target { schema, nulls }
    }

    /// `rows` nulls of field `i`.
    fn nulls(&self, i: usize, rows: usize) -> ArrayRef {
        let shared = &self.nulls[i];
        if rows <= shared.len() {
            shared.slice(0, rows)
        } else {
            new_null_array(shared.data_type(), rows)
        }
    }
}

/// `batch` cast to the schema's types (`target`): a schema field the batch
/// lacks (not in the file, or not read) is all null. A value that does not
/// convert becomes null; [`typed`] finds those.
pub(super) fn conformed(
    batch: &RecordBatch,
    target: &Target,
    shown: &str,
) -> Result<RecordBatch, String> {
    let err = |e: &dyn std::fmt::Display| format!("{shown}: {e}");
    let fields = target.schema.fields();
    let mut columns = Vec::with_capacity(fields.len());
    for (i, field) in fields.iter().enumerate() {
        columns.push(match batch.column_by_name(field.name()) {
            // A zoned timestamp becomes its UTC wall time.
            Some(col) => cast(col, field.data_type())
                .map_err(|e| err(&format!("`{}`: {e}", field.name())))?,
            None => target.nulls(i, batch.num_rows()),
        });
    }
    let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    RecordBatch::try_new_with_options(target.schema.clone(), columns, &options).map_err(|e| err(&e))
}

/// The rows of one decoded batch, cast to the schema's types (`target`):
/// a schema field the batch lacks (not in the file, or not read) is all
/// null; the values that did not type are kept for the checks.
/// `first_row` is the batch's first row in the file (1-based).
pub(super) fn typed(
    batch: &RecordBatch,
    target: &Target,
    schema: &SchemaPlan,
    first_row: usize,
    shown: &str,
) -> Result<Decoded, String> {
    let conformed = conformed(batch, target, shown)?;
    let mut bad = Vec::new();
    for (typed, (name, plan)) in conformed.columns().iter().zip(&schema.fields) {
        if let Some(raw) = batch.column_by_name(name) {
            bad.extend(untyped_rows(raw, typed, name, plan));
        }
    }
    Ok(Decoded {
        first_row,
        batch: conformed,
        bad,
    })
}

/// The rows of one column that did not type: a value the cast turned into
/// null, or a string outside the field's closed domain.
fn untyped_rows(
    raw: &ArrayRef,
    typed: &ArrayRef,
    name: &str,
    field: &FieldPlan,
) -> Vec<(usize, String)> {
    use datafusion::arrow::util::display::array_value_to_string;
    let mut bad = Vec::new();
    if typed.null_count() > raw.null_count() {
        for i in 0..raw.len() {
            if raw.is_valid(i) && typed.is_null(i) {
                let shown = array_value_to_string(raw, i).unwrap_or_default();
                bad.push((
                    i,
                    format!("`{name}`: `{shown}` is not {}", a_type(&field.ty)),
                ));
            }
        }
    }
    if let (Some(values), DataType::Utf8) = (&field.values, typed.data_type()) {
        let strings = typed.as_string::<i32>();
        for i in 0..strings.len() {
            if strings.is_valid(i) && !values.iter().any(|v| v == strings.value(i)) {
                bad.push((i, outside_domain(strings.value(i), name, values)));
            }
        }
    }
    bad
}

/// The checks of text rows, for the decoded batches of a source's Parquet
/// files (`(shown, batches)` in file order): untyped values (found while
/// decoding) and a missing or duplicate key, across every file of the
/// source. `earlier`: rows already read and checked (the cached part of an
/// append-only source), whose keys come first. Bad rows are counted and
/// sampled (`file:row N: reason`) and left out of the batches returned.
pub(super) fn check_parquet_rows(
    b: &mut Builder,
    files: Vec<(String, Vec<Decoded>)>,
    earlier: &[RecordBatch],
) -> Result<Vec<RecordBatch>, String> {
    // The text rows' keys, every one in the set.
    b.settle();
    // One list of batches: the earlier rows, then every file's, with the
    // file each batch is from (`None`: earlier).
    let mut owner: Vec<Option<usize>> = Vec::new();
    let mut decoded: Vec<Decoded> = Vec::new();
    let mut shown_of = Vec::new();
    for batch in earlier {
        owner.push(None);
        decoded.push(Decoded {
            first_row: 1,
            batch: batch.clone(),
            bad: Vec::new(),
        });
    }
    for (fi, (shown, batches)) in files.into_iter().enumerate() {
        shown_of.push(shown);
        for d in batches {
            owner.push(Some(fi));
            decoded.push(d);
        }
    }
    let mut bad_rows: Vec<std::collections::BTreeMap<usize, String>> = decoded
        .iter()
        .map(|d| {
            let mut rows = std::collections::BTreeMap::new();
            for (i, reason) in &d.bad {
                rows.entry(*i).or_insert_with(|| reason.clone());
            }
            rows
        })
        .collect();
    if let Some(k) = b.key() {
        let key_name = b.names()[k].clone();
        let text = |col: &ArrayRef, i: usize| {
            datafusion::arrow::util::display::array_value_to_string(col, i).unwrap_or_default()
        };
        // Missing keys, and keys the source's text files already hold.
        for ((d, bad), who) in decoded.iter().zip(bad_rows.iter_mut()).zip(&owner) {
            let col = d.batch.column(k);
            if who.is_none() || (col.null_count() == 0 && b.keys.is_empty()) {
                continue;
            }
            for i in 0..col.len() {
                if bad.contains_key(&i) {
                    continue;
                }
                if col.is_null(i) {
                    bad.insert(i, format!("missing key `{key_name}`"));
                } else if b.keys.contains(&text(col, i)) {
                    bad.insert(i, format!("duplicate key `{}`", text(col, i)));
                }
            }
        }
        // Keys repeated among the Parquet rows of every file: the first
        // stays.
        let first_new = earlier.len();
        for (batch, i) in repeated_keys(&decoded[first_new..], &bad_rows[first_new..], k)? {
            let batch = first_new + batch;
            let key = text(decoded[batch].batch.column(k), i);
            bad_rows[batch].insert(i, format!("duplicate key `{key}`"));
        }
        // Keys the earlier rows hold (checked when they were read, and
        // first): the new keys are few, so the earlier keys are looked up
        // in a set of the new ones, on every core, rather than all hashed
        // together.
        if first_new > 0 {
            let key_of = |col: &ArrayRef, i: usize| -> String {
                match col.data_type() {
                    DataType::Utf8 => col.as_string::<i32>().value(i).to_string(),
                    _ => text(col, i),
                }
            };
            let mut new_keys: std::collections::HashMap<String, Vec<(usize, usize)>> =
                std::collections::HashMap::new();
            for (bi, d) in decoded.iter().enumerate().skip(first_new) {
                let col = d.batch.column(k);
                for i in 0..col.len() {
                    if col.is_valid(i) && !bad_rows[bi].contains_key(&i) {
                        new_keys.entry(key_of(col, i)).or_default().push((bi, i));
                    }
                }
            }
            if !new_keys.is_empty() {
                let seen: Vec<String> = decoded[..first_new]
                    .par_iter()
                    .flat_map_iter(|d| {
                        let col = d.batch.column(k);
                        let utf8 = col.data_type() == &DataType::Utf8;
                        (0..col.len())
                            .filter(|&i| col.is_valid(i))
                            .filter_map(|i| {
                                let found = if utf8 {
                                    new_keys.contains_key(col.as_string::<i32>().value(i))
                                } else {
                                    new_keys.contains_key(&key_of(col, i))
                                };
                                found.then(|| key_of(col, i))
                            })
                            .collect::<Vec<_>>()
                    })
                    .collect();
                for key in seen {
                    for &(bi, i) in new_keys.get(&key).into_iter().flatten() {
                        bad_rows[bi].insert(i, format!("duplicate key `{key}`"));
                    }
                }
            }
        }
    }
    let mut out = Vec::new();
    for ((d, bad), who) in decoded.into_iter().zip(bad_rows).zip(owner) {
        let Some(fi) = who else { continue };
        let shown = &shown_of[fi];
        if bad.is_empty() {
            out.push(d.batch);
            continue;
        }
        for (i, reason) in &bad {
            b.bad(&format!("{shown}:row {}", d.first_row + i), reason.clone());
        }
        let keep: datafusion::arrow::array::BooleanArray = (0..d.batch.num_rows())
            .map(|i| Some(!bad.contains_key(&i)))
            .collect();
        out.push(
            datafusion::arrow::compute::filter_record_batch(&d.batch, &keep)
                .map_err(|e| format!("{shown}: {e}"))?,
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::datatypes::{Field, TimeUnit};
    use datafusion::parquet::file::properties::WriterProperties;

    use super::super::read_files as read;
    use super::super::tests::{field, parquet_source, schema_of, tiered};
    use super::*;

    fn write_parquet(dir: &Path, batch: &RecordBatch, props: Option<WriterProperties>) {
        let file = std::fs::File::create(dir.join("t.parquet")).expect("create");
        let mut writer =
            datafusion::parquet::arrow::ArrowWriter::try_new(file, batch.schema(), props)
                .expect("writer");
        writer.write(batch).expect("write");
        writer.close().expect("close");
    }

    /// A Parquet file of several row groups (decoded on several threads)
    /// comes back whole, in file order, typed by the schema: an int32
    /// column widened, a zoned timestamp kept as UTC, a schema field the
    /// file lacks as nulls, a column the schema lacks ignored.
    #[test]
    fn reads_parquet_row_groups_in_order() {
        use datafusion::arrow::array::{
            AsArray, Int32Array, StringArray, TimestampMicrosecondArray,
        };

        let dir = std::env::temp_dir().join(format!("accord-parquet-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let rows = 10_000;
        let file_schema = Arc::new(datafusion::arrow::datatypes::Schema::new(vec![
            Field::new("id", DataType::Utf8, true),
            Field::new("n", DataType::Int32, true),
            Field::new(
                "at",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                true,
            ),
            Field::new("extra", DataType::Utf8, true),
        ]));
        let batch = RecordBatch::try_new(
            file_schema.clone(),
            vec![
                Arc::new(StringArray::from(
                    (0..rows).map(|i| format!("K{i:05}")).collect::<Vec<_>>(),
                )),
                Arc::new(Int32Array::from((0..rows as i32).collect::<Vec<_>>())),
                Arc::new(
                    TimestampMicrosecondArray::from(
                        (0..rows as i64).map(|i| i * 1_000_000).collect::<Vec<_>>(),
                    )
                    .with_timezone("UTC"),
                ),
                Arc::new(StringArray::from(vec!["x"; rows])),
            ],
        )
        .expect("batch");
        let props = WriterProperties::builder()
            .set_max_row_group_row_count(Some(1_000))
            .build();
        write_parquet(&dir, &batch, Some(props));
        let schema = schema_of(
            "event",
            Some("at"),
            vec![
                ("id", field("string", None)),
                ("n", field("int", None)),
                ("at", field("timestamp", None)),
                ("missing", field("string", None)),
            ],
        );
        let source = parquet_source(Some("1d"));
        let now = 20_000 * 1_000_000;
        let groups =
            datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
                std::fs::File::open(dir.join("t.parquet")).expect("open"),
            )
            .expect("metadata")
            .metadata()
            .num_row_groups();
        assert_eq!(groups, 10, "the test needs several row groups");
        let loaded = read(&dir, "t", &source, &schema, now).expect("reads");
        let _ = std::fs::remove_dir_all(&dir);

        assert_eq!(loaded.report.rows, rows as u64);
        assert_eq!(loaded.present, vec!["at", "id", "n"]);
        assert_eq!(loaded.report.freshness, "fresh");
        let all =
            datafusion::arrow::compute::concat_batches(&arrow_schema(&schema), &loaded.batches)
                .expect("one schema");
        let ids = all.column_by_name("id").expect("id").as_string::<i32>();
        let ns = all
            .column_by_name("n")
            .expect("n")
            .as_primitive::<datafusion::arrow::datatypes::Int64Type>();
        for i in 0..rows {
            assert_eq!(ids.value(i), format!("K{i:05}"));
            assert_eq!(ns.value(i), i as i64);
        }
        assert_eq!(
            all.column_by_name("missing").expect("missing").null_count(),
            rows
        );
    }

    /// Parquet rows get the checks text rows get: a value that does not
    /// convert, a value outside a closed domain, a missing or duplicate key
    /// are counted, sampled with their row number and left out.
    #[test]
    fn parquet_rows_that_do_not_type_are_reported_and_left_out() {
        use datafusion::arrow::array::StringArray;

        let dir = std::env::temp_dir().join(format!("accord-parquet-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let text = |v: Vec<Option<&str>>| -> ArrayRef { Arc::new(StringArray::from(v)) };
        let file_schema = Arc::new(datafusion::arrow::datatypes::Schema::new(vec![
            Field::new("id", DataType::Utf8, true),
            Field::new("n", DataType::Utf8, true),
            Field::new("tier", DataType::Utf8, true),
        ]));
        let batch = RecordBatch::try_new(
            file_schema.clone(),
            vec![
                text(vec![
                    Some("a"),
                    Some("b"),
                    Some("c"),
                    Some("a"),
                    None,
                    Some("d"),
                ]),
                text(vec![
                    Some("1"),
                    Some("twelve"),
                    Some("3"),
                    Some("4"),
                    Some("5"),
                    None,
                ]),
                text(vec![
                    Some("gold"),
                    Some("gold"),
                    Some("platinum"),
                    Some("gold"),
                    Some("gold"),
                    None,
                ]),
            ],
        )
        .expect("batch");
        write_parquet(&dir, &batch, None);
        let schema = tiered(Vec::new());
        let source = parquet_source(None);
        let loaded = read(&dir, "t", &source, &schema, 0).expect("reads");
        let _ = std::fs::remove_dir_all(&dir);

        assert_eq!(
            loaded.report.bad_rows, 4,
            "{:?}",
            loaded.report.bad_row_samples
        );
        assert_eq!(
            loaded.report.bad_row_samples,
            vec![
                "t.parquet:row 2: `n`: `twelve` is not an int",
                "t.parquet:row 3: `platinum` is not one of the values of `tier` (gold, silver)",
                "t.parquet:row 4: duplicate key `a`",
                "t.parquet:row 5: missing key `id`",
            ]
        );
        assert_eq!(loaded.report.rows, 2);
        let ids: Vec<&str> = loaded
            .batches
            .iter()
            .flat_map(|b| {
                let col = b.column_by_name("id").expect("id").as_string::<i32>();
                (0..col.len()).map(|i| col.value(i)).collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(ids, vec!["a", "d"]);
    }
}
