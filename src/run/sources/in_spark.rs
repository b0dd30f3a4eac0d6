//! Parquet sources that Spark reads itself (`--engine spark`): the files
//! never pass through accord. accord lists them (the same files, in the same
//! order, as for the embedded engine), Spark reads them into a view, and
//! the row checks run there as SQL, with the embedded reader's rules:
//!
//! - each field is cast to its type; a value that does not cast, or a
//!   string outside a closed domain, makes the row bad (the first such
//!   field in schema order gives the reason);
//! - then a missing key, and a key repeated among the rows left (the first
//!   in file order, then row order, stays);
//! - bad rows are counted and the first ten sampled as `file:row N: reason`
//!   (Spark numbers Parquet rows: `_metadata.row_index`, which the view
//!   carries as a column);
//! - only the columns the plan reads are read and checked, as for the
//!   embedded engine (`columns::needed`); the report says which;
//! - freshness is judged from the checked rows' timestamps, aggregated in
//!   Spark.
//!
//! Which sources: Parquet files (every file of the source), not
//! append-only, on an object store (Spark reads `s3a://`, `abfss://`,
//! `gs://` with the cluster's own credentials), or local when the server
//! runs on this machine. Any other source is read by accord and sent.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{Int64Type, TimestampMicrosecondType};

use super::freshness::{Newest, judge_found, judges_freshness};
use super::object::Remote;
use super::typing::{Builder, a_type};
use super::{BAD_ROW_SAMPLES, Input, Loaded, ReadContext, columns, modified, present_fields};
use crate::plan::{SchemaPlan, SourcePlan};
use crate::run::engine::spark::{FILE_COLUMN, ROW_COLUMN, Spark};
use crate::run::engine::{Engine, ident, literal};
use crate::run::error::RunError;
use crate::run::files;
use crate::time;

/// Reads `source` in Spark when Spark can read it (see the module), else
/// `None`: the caller reads it and sends its rows.
pub fn read(
    cx: &ReadContext<'_>,
    spark: &Spark,
    name: &str,
    source: &SourcePlan,
    schema: &SchemaPlan,
) -> Result<Option<Loaded>, RunError> {
    if source.postgres.is_some()
        || source.marketo.is_some()
        || source.append_only
        || source.format.as_str() != "parquet"
    {
        return Ok(None);
    }
    let failed = |reason: String| RunError::Source {
        source: name.to_string(),
        reason,
    };
    let (inputs, problems): (Vec<Input>, _) = if source.object_store().is_some() {
        let remote = Remote::open(cx.root, name, source)?;
        let objects = remote.list("parquet")?;
        (objects.into_iter().map(Input::Object).collect(), Vec::new())
    } else {
        if !spark.on_this_machine() {
            return Ok(None);
        }
        let (found, problems) =
            files::resolve(cx.root, name, &source.path, "parquet").map_err(failed)?;
        let inputs = found
            .into_iter()
            .map(|file| Input::Local {
                shown: super::shown_path(cx.root, &file),
                file,
            })
            .collect();
        (inputs, problems)
    };
    // A folder that mixes formats, or holds nothing: the embedded reader's
    // rules and messages apply.
    let all_parquet = inputs
        .iter()
        .all(|i| files::format_of(Path::new(i.shown())).is_none_or(|f| f == "parquet"));
    if inputs.is_empty() || !all_parquet {
        return Ok(None);
    }
    let paths: Vec<String> = inputs
        .iter()
        .map(|i| match i {
            Input::Local { file, .. } => file_uri(file),
            Input::Object(o) => spark_uri(&o.shown),
        })
        .collect::<Result<_, _>>()
        .map_err(failed)?;
    let needed = columns::needed(cx.plan, &source.schema, schema, source);
    let spark_failed = |why: String| failed(format!("Spark: {why}"));
    let views = Views::of(name);
    spark
        .read_files(&views.raw, "parquet", paths.clone())
        .map_err(spark_failed)?;

    let mut b = Builder::new(&source.schema, schema);
    b.source = name.to_string();
    b.diagnostics = problems;
    b.report.files = inputs.iter().map(|i| i.shown().to_string()).collect();

    // The columns the files carry (their union).
    let carried = spark
        .query(&format!("SELECT * FROM {} LIMIT 0", ident(&views.raw)))
        .map_err(spark_failed)?;
    let carried: Vec<String> = carried
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .filter(|n| n != FILE_COLUMN && n != ROW_COLUMN)
        .collect();
    let present: Vec<bool> = b.names().iter().map(|n| carried.contains(n)).collect();

    // Rows per file, as Spark names the files: which name is which of
    // ours, and which files hold no rows.
    let per_file = spark
        .query(&format!(
            "SELECT {FILE_COLUMN} AS f, count(*) AS n FROM {} GROUP BY {FILE_COLUMN}",
            ident(&views.raw)
        ))
        .map_err(spark_failed)?;
    let spark_names = per_file.column(0).as_string::<i32>();
    let mut order: Vec<(String, usize)> = Vec::new();
    for i in 0..per_file.num_rows() {
        let seen = spark_names.value(i);
        let Some(at) = paths.iter().position(|p| same_file(p, seen)) else {
            return Err(failed(format!(
                "Spark read `{seen}`, which is none of the source's files"
            )));
        };
        order.push((seen.to_string(), at));
    }
    // File by file, as the embedded reader says them: the columns no field
    // declares (a local file's own columns, from its footer; an object's
    // are known only together, and said at the first), then no rows.
    for (at, input) in inputs.iter().enumerate() {
        let shown = input.shown().to_string();
        let own = match input {
            Input::Local { file, .. } => Some(footer_columns(file).map_err(failed)?),
            Input::Object(_) => (at == 0).then(|| carried.clone()),
        };
        for column in own
            .iter()
            .flatten()
            .filter(|c| !schema.fields.contains_key(*c))
        {
            b.unknown_column(&shown, &shown, "column", column);
        }
        if !order.iter().any(|(_, i)| *i == at) {
            b.empty_file(&shown, "holds no rows");
        }
    }

    // The checked rows: every field typed, the reason a row is bad.
    let checked = checked_sql(&views.raw, schema, &carried, &needed, &order);
    spark
        .command(&format!(
            "CACHE TABLE {} AS {checked}",
            ident(&views.checked)
        ))
        .map_err(spark_failed)?;
    let counts = spark
        .query(&format!(
            "SELECT count(*) AS n, count(__reason) AS bad FROM {}",
            ident(&views.checked)
        ))
        .map_err(spark_failed)?;
    let int = |batch: &RecordBatch, c: usize| -> u64 {
        let col = batch.column(c);
        if col.is_null(0) {
            0
        } else {
            col.as_primitive::<Int64Type>().value(0).max(0) as u64
        }
    };
    let (all, bad) = (int(&counts, 0), int(&counts, 1));
    if bad > 0 {
        let samples = spark
            .query(&format!(
                "SELECT __file, __row, __reason FROM {} WHERE __reason IS NOT NULL \
                 ORDER BY __file, __row LIMIT {BAD_ROW_SAMPLES}",
                ident(&views.checked)
            ))
            .map_err(spark_failed)?;
        let files_col = samples.column(0).as_primitive::<Int64Type>();
        let rows_col = samples.column(1).as_primitive::<Int64Type>();
        let reasons = samples.column(2).as_string::<i32>();
        for i in 0..samples.num_rows() {
            let shown = inputs[files_col.value(i) as usize].shown();
            b.bad(
                &format!("{shown}:row {}", rows_col.value(i) + 1),
                reasons.value(i).to_string(),
            );
        }
        b.report.bad_rows += bad - samples.num_rows() as u64;
    }
    let (_, mut report, mut diagnostics) = b.finish();
    report.rows = all - bad;
    let fields: Vec<String> = schema.fields.keys().map(|f| ident(f)).collect();
    spark
        .command(&format!(
            "CREATE OR REPLACE TEMPORARY VIEW {} AS SELECT {} FROM {} WHERE __reason IS NULL",
            ident(&views.rows),
            fields.join(", "),
            ident(&views.checked)
        ))
        .map_err(spark_failed)?;
    let checked_columns = super::columns_read(schema, &needed);
    if source.object_store().is_some() || checked_columns.len() < schema.fields.len() {
        report.columns_checked = checked_columns;
    }
    let found = newest(spark, &views.rows, schema, source, cx.now).map_err(spark_failed)?;
    judge_found(
        &mut report,
        &mut diagnostics,
        name,
        (source, schema),
        found,
        modified(source, &inputs),
        cx.now,
    );
    let present = present_fields(schema, &present);
    Ok(Some(Loaded {
        table: Some(views.rows),
        ..Loaded::of(name, source, present, report, diagnostics)
    }))
}

/// The session's views of one source.
struct Views {
    /// The files as Spark reads them.
    raw: String,
    /// Every row typed, with `__file` (its file's place in the source's
    /// order), `__row` (0-based in its file) and `__reason` (null: good).
    checked: String,
    /// The good rows, the schema's fields.
    rows: String,
}

impl Views {
    fn of(source: &str) -> Views {
        Views {
            raw: format!("__read_{source}"),
            checked: format!("__checked_{source}"),
            rows: format!("__rows_{source}"),
        }
    }
}

/// The SQL of the checked rows (see [`Views`]): `carried` are the columns
/// the files hold, `needed` the fields the plan reads (the others are
/// null, unread), `order` Spark's name of each file and its place.
fn checked_sql(
    raw: &str,
    schema: &SchemaPlan,
    carried: &[String],
    needed: &BTreeSet<String>,
    order: &[(String, usize)],
) -> String {
    let mut typed = Vec::new();
    let mut reasons = Vec::new();
    for (name, field) in &schema.fields {
        let spark_type = spark_type(&field.ty);
        let column = ident(name);
        if !carried.contains(name) || !needed.contains(name) {
            typed.push(format!("CAST(NULL AS {spark_type}) AS {column}"));
            continue;
        }
        let raw_column = format!("r.{column}");
        let cast = format!("TRY_CAST({raw_column} AS {spark_type})");
        typed.push(format!("{cast} AS {column}"));
        reasons.push(format!(
            "WHEN {raw_column} IS NOT NULL AND {cast} IS NULL THEN concat({}, CAST({raw_column} AS STRING), {})",
            literal(&format!("`{name}`: `")),
            literal(&format!("` is not {}", a_type(&field.ty)))
        ));
        if let Some(values) = &field.values
            && field.ty == "string"
        {
            let list: Vec<String> = values.iter().map(|v| literal(v)).collect();
            reasons.push(format!(
                "WHEN {cast} IS NOT NULL AND {cast} NOT IN ({}) THEN concat('`', {cast}, {})",
                list.join(", "),
                literal(&format!(
                    "` is not one of the values of `{name}` ({})",
                    values.join(", ")
                ))
            ));
        }
    }
    let file_order = if order.is_empty() {
        "0".to_string()
    } else {
        format!(
            "CASE {FILE_COLUMN} {} END",
            order
                .iter()
                .map(|(seen, at)| format!("WHEN {} THEN {at}", literal(seen)))
                .collect::<Vec<_>>()
                .join(" ")
        )
    };
    let typed_reason = if reasons.is_empty() {
        "CAST(NULL AS STRING)".to_string()
    } else {
        format!("CASE {} END", reasons.join(" "))
    };
    let inner = format!(
        "SELECT {}, CAST({file_order} AS BIGINT) AS __file, {ROW_COLUMN} AS __row, {typed_reason} AS __typed FROM {} r",
        typed.join(", "),
        ident(raw)
    );
    // The key: missing, or repeated among the rows that typed (the first
    // in file order stays).
    let reason = match schema.key.as_ref().filter(|k| carried.contains(*k)) {
        Some(key) => {
            let k = ident(key);
            format!(
                "CASE WHEN __typed IS NOT NULL THEN __typed \
                 WHEN {k} IS NULL THEN {missing} \
                 WHEN ROW_NUMBER() OVER (PARTITION BY {k}, __typed IS NULL ORDER BY __file, __row) > 1 \
                 THEN concat('duplicate key `', CAST({k} AS STRING), '`') END",
                missing = literal(&format!("missing key `{key}`")),
            )
        }
        None => match &schema.key {
            // A key column no file carries: every row misses its key.
            Some(key) => format!(
                "coalesce(__typed, {})",
                literal(&format!("missing key `{key}`"))
            ),
            None => "__typed".to_string(),
        },
    };
    let fields: Vec<String> = schema.fields.keys().map(|f| ident(f)).collect();
    format!(
        "SELECT {}, __file, __row, {reason} AS __reason FROM ({inner}) t",
        fields.join(", ")
    )
}

/// Spark's SQL type of a field type.
fn spark_type(ty: &str) -> &'static str {
    match ty {
        "int" => "BIGINT",
        "double" => "DOUBLE",
        "bool" => "BOOLEAN",
        "timestamp" => "TIMESTAMP",
        "list<string>" => "ARRAY<STRING>",
        "list<int>" => "ARRAY<BIGINT>",
        "list<double>" => "ARRAY<DOUBLE>",
        _ => "STRING",
    }
}

/// The newest timestamp not later than `now`, and the later ones per
/// field, of the fields freshness reads: one aggregate in Spark.
fn newest(
    spark: &Spark,
    rows: &str,
    schema: &SchemaPlan,
    source: &SourcePlan,
    now: time::Micros,
) -> Result<Newest, String> {
    let judged: Vec<&String> = schema
        .fields
        .keys()
        .filter(|n| {
            schema.fields[*n].ty == "timestamp"
                && judges_freshness(schema, source.freshness_column.as_deref(), n)
        })
        .collect();
    let mut out = Newest {
        newest: None,
        future: BTreeMap::new(),
    };
    if judged.is_empty() {
        return Ok(out);
    }
    let now_sql = format!("TIMESTAMP {}", literal(&time::format_timestamp(now)));
    let mut aggregates = Vec::new();
    for field in &judged {
        let f = ident(field);
        aggregates.push(format!("max(CASE WHEN {f} <= {now_sql} THEN {f} END)"));
        aggregates.push(format!("count(CASE WHEN {f} > {now_sql} THEN 1 END)"));
        aggregates.push(format!("max(CASE WHEN {f} > {now_sql} THEN {f} END)"));
    }
    let batch = spark.query(&format!(
        "SELECT {} FROM {}",
        aggregates.join(", "),
        ident(rows)
    ))?;
    let micros = |c: usize| -> Option<time::Micros> {
        let col = batch.column(c);
        (!col.is_null(0)).then(|| col.as_primitive::<TimestampMicrosecondType>().value(0))
    };
    for (i, field) in judged.iter().enumerate() {
        if let Some(t) = micros(3 * i)
            && out.newest.as_ref().is_none_or(|(n, _)| t > *n)
        {
            out.newest = Some((t, field.to_string()));
        }
        let later = batch.column(3 * i + 1).as_primitive::<Int64Type>().value(0);
        if later > 0
            && let Some(latest) = micros(3 * i + 2)
        {
            out.future.insert(field.to_string(), (later as u64, latest));
        }
    }
    Ok(out)
}

/// The columns of a local Parquet file, from its footer.
fn footer_columns(file: &Path) -> Result<Vec<String>, String> {
    use datafusion::parquet::arrow::arrow_reader::ArrowReaderMetadata;
    let shown = file.display();
    let opened = std::fs::File::open(file).map_err(|e| format!("{shown}: {e}"))?;
    let metadata = ArrowReaderMetadata::load(&opened, Default::default())
        .map_err(|e| format!("{shown}: {e}"))?;
    Ok(metadata
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect())
}

/// A local file as Spark reads it: `file:` and its absolute path.
fn file_uri(file: &Path) -> Result<String, String> {
    let absolute = std::fs::canonicalize(file).map_err(|e| format!("{}: {e}", file.display()))?;
    Ok(format!("file://{}", absolute.display()))
}

/// An object-store URI of the specs as Spark's Hadoop file systems read
/// it: `s3://` is `s3a://`, `az://ACCOUNT/CONTAINER/PATH` (or `azure://`)
/// is `abfss://CONTAINER@ACCOUNT.dfs.core.windows.net/PATH`, `gs://` stays.
pub fn spark_uri(uri: &str) -> Result<String, String> {
    if let Some(rest) = uri.strip_prefix("s3://") {
        return Ok(format!("s3a://{rest}"));
    }
    if uri.starts_with("gs://") {
        return Ok(uri.to_string());
    }
    let rest = uri
        .strip_prefix("az://")
        .or_else(|| uri.strip_prefix("azure://"))
        .ok_or_else(|| format!("`{uri}` is no object-store URI Spark reads"))?;
    let mut parts = rest.splitn(3, '/');
    let (Some(account), Some(container)) = (parts.next(), parts.next()) else {
        return Err(format!("`{uri}` names no account and container"));
    };
    let path = parts.next().unwrap_or("");
    Ok(format!(
        "abfss://{container}@{account}.dfs.core.windows.net/{path}"
    ))
}

/// Whether Spark's name of a file (`_metadata.file_path`, [`FILE_COLUMN`]: a URI,
/// percent-encoded, `file:/x` or `file:///x` for local files) is `ours`.
fn same_file(ours: &str, seen: &str) -> bool {
    let normal = |uri: &str| -> String {
        let decoded = percent_decoded(uri);
        match decoded.strip_prefix("file:") {
            Some(path) => format!("file:/{}", path.trim_start_matches('/')),
            None => decoded,
        }
    };
    normal(ours) == normal(seen)
}

/// `%XX` escapes decoded (what is not valid UTF-8 after it stays as it was).
fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(high), Some(low)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(high * 16 + low);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|_| text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_store_uris_become_what_spark_reads() {
        assert_eq!(
            spark_uri("s3://lake/crm/a.parquet").unwrap(),
            "s3a://lake/crm/a.parquet"
        );
        assert_eq!(
            spark_uri("gs://lake/a.parquet").unwrap(),
            "gs://lake/a.parquet"
        );
        assert_eq!(
            spark_uri("az://acme/exports/crm/a.parquet").unwrap(),
            "abfss://exports@acme.dfs.core.windows.net/crm/a.parquet"
        );
        assert_eq!(
            spark_uri("azure://acme/exports/a.parquet").unwrap(),
            "abfss://exports@acme.dfs.core.windows.net/a.parquet"
        );
        assert!(spark_uri("az://acme").is_err());
        assert!(spark_uri("/data/a.parquet").is_err());
    }

    #[test]
    fn spark_names_of_local_files_match_ours() {
        assert!(same_file(
            "file:///tmp/a b/x.parquet",
            "file:/tmp/a%20b/x.parquet"
        ));
        assert!(same_file("file:///tmp/x.parquet", "file:///tmp/x.parquet"));
        assert!(!same_file("file:///tmp/x.parquet", "file:/tmp/y.parquet"));
        assert!(same_file("s3a://lake/a.parquet", "s3a://lake/a.parquet"));
        assert_eq!(percent_decoded("100%"), "100%");
        assert_eq!(percent_decoded("%zz"), "%zz");
    }
}
