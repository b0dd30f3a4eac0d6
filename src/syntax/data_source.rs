//! `[source.NAME]`: where `accord run` reads the data of a schema.

use toml::de::{DeTable, DeValue};

use super::destination::{Setting, SettingValue, setting_value};
use super::reader::{Cx, Sp, Table};
use crate::diag::{Diagnostic, codes};
use crate::source::Span;

#[derive(Clone, Debug)]
pub struct DataSource {
    pub name: Sp<String>,
    pub schema: Option<Sp<String>>,
    /// A file, a folder or a glob, relative to the project root.
    pub path: Option<Sp<String>>,
    /// `csv`, `jsonl` or `parquet`; inferred from the extension when omitted.
    pub format: Option<Sp<String>>,
    /// A duration such as `26h` or `7d`: the newest record must be younger.
    pub max_age: Option<Sp<String>>,
    /// When several sources feed one schema, the lower value wins per field.
    pub precedence: Option<Sp<i64>>,
    pub description: Option<Sp<String>>,
    /// Object-store sources: the base URL of an S3-compatible store, an
    /// Azure emulator or a GCS endpoint.
    pub endpoint: Option<Sp<String>>,
    /// Object-store sources: the credential keys of the storage destination
    /// of the same store ([`STORE_KEYS`]), as destination settings.
    pub settings: Vec<Setting>,
    /// PostgreSQL sources: where the connection URL is (`{ env = ... }` or
    /// `{ file = ... }`); the URL holds the password, so never a literal.
    pub postgres: Option<Sp<SettingValue>>,
    /// PostgreSQL sources: the table (`schema.table`) or the query read.
    pub table: Option<Sp<String>>,
    pub query: Option<Sp<String>>,
    /// Marketo activity sources: the `marketo_engage` destination whose
    /// connection is reused, and the activity type names read.
    pub marketo: Option<Sp<String>>,
    pub activity_types: Vec<Sp<String>>,
    /// Remember what was read; read only what is new next run.
    pub append_only: Option<Sp<bool>>,
    /// `block` or `warn` when the source is stale.
    pub on_stale: Option<Sp<String>>,
    /// The timestamp field freshness is judged on.
    pub freshness_column: Option<Sp<String>>,
}

pub const FORMATS: &[&str] = &["csv", "jsonl", "parquet"];

/// What a stale source does to the run.
pub const ON_STALE: &[&str] = &["block", "warn"];

/// The credential settings an object-store source may carry: those of the
/// `s3`, `azure_blob` and `gcs` destinations.
pub const STORE_KEYS: &[&str] = &[
    "credentials",
    "access_key_id",
    "secret_access_key",
    "session_token",
    "region",
    "access_key",
    "sas_token",
];

pub fn data_source(cx: &mut Cx<'_>, name: Sp<String>, table: &DeTable<'_>) -> DataSource {
    let mut t = Table::new(table, name.span, format!("source `{}`", name.value));
    let path = match table.get("path") {
        // `path = { env = ... }` is refused, not read as "no path": where a
        // run reads is part of the reviewed spec.
        Some(value) if matches!(value.get_ref(), DeValue::Table(_)) => {
            t.raw("path");
            cx.report(reference_not_allowed(
                &format!("source `{}`", name.value),
                cx.span(value),
            ));
            None
        }
        // A database or Marketo source has no path; two places at once
        // are reported in `resolve` (`source_settings`), at the second.
        _ => {
            if !PLACES.iter().any(|key| table.contains_key(*key)) {
                cx.report(reads_from_nowhere(&name));
            }
            t.string(cx, "path")
        }
    };
    if let Some(diagnostic) = path
        .as_ref()
        .and_then(|path| path_leaves_project(&format!("source `{}`", name.value), path))
    {
        cx.report(diagnostic);
    }
    let s = DataSource {
        schema: t.required_string(cx, "schema"),
        path,
        format: t.choice(cx, "format", FORMATS),
        max_age: t
            .string(cx, "max_age")
            .filter(|age| valid_max_age(cx, &name, age)),
        precedence: t.int(cx, "precedence"),
        description: t.string(cx, "description"),
        endpoint: t.string(cx, "endpoint"),
        settings: STORE_KEYS
            .iter()
            .filter_map(|key| {
                let value = t.raw(key)?;
                let (k, _) = table.get_key_value(*key)?;
                Some(Setting {
                    key: Sp::new(key.to_string(), cx.span(k)),
                    value: Sp::new(setting_value(cx, value), cx.span(value)),
                })
            })
            .collect(),
        postgres: t
            .raw("postgres")
            .map(|value| Sp::new(setting_value(cx, value), cx.span(value))),
        table: t.string(cx, "table"),
        query: t.string(cx, "query"),
        marketo: t.string(cx, "marketo"),
        activity_types: t.string_list(cx, "activity_types"),
        append_only: t.bool(cx, "append_only"),
        on_stale: t.choice(cx, "on_stale", ON_STALE),
        freshness_column: t.string(cx, "freshness_column"),
        name,
    };
    t.finish(cx);
    s
}

/// The storage destination type of an object-store URI (`s3://`, `az://`
/// or `azure://`, `gs://`), `None` for a local path or another scheme: the
/// one place that maps schemes to stores (`check` and the plan use it).
pub fn object_store_of(path: &str) -> Option<&'static str> {
    let (scheme, _) = path.split_once("://")?;
    match scheme.to_ascii_lowercase().as_str() {
        "s3" => Some("s3"),
        "az" | "azure" => Some("azure_blob"),
        "gs" => Some("gcs"),
        _ => None,
    }
}

/// The keys that say where a source reads; exactly one is given.
pub const PLACES: &[&str] = &["path", "postgres", "marketo"];

/// `A0130` for a source with none of [`PLACES`]: it would read nothing.
fn reads_from_nowhere(name: &Sp<String>) -> Diagnostic {
    Diagnostic::new(
        codes::spec::SOURCE_LOCATION,
        name.span,
        format!("source `{}` reads from nowhere", name.value),
    )
    .label("no `path`, `postgres` or `marketo`")
    .help(
        "add one: `path = \"data/accounts.csv\"` (local files, or an s3://, az:// or gs:// URI), \
         `postgres = { env = \"DATABASE_URL\" }` with `table`, or `marketo = \"DESTINATION\"` \
         with `activity_types`",
    )
}

/// `A0006` when `max_age` is not a duration: a run could not judge the
/// source's freshness, and would call it "unknown" without a word.
fn valid_max_age(cx: &mut Cx<'_>, source: &Sp<String>, age: &Sp<String>) -> bool {
    let Err(error) = crate::duration::parse_micros(&age.value) else {
        return true;
    };
    cx.report(
        Diagnostic::new(
            codes::spec::INVALID_VALUE,
            age.span,
            format!(
                "`max_age` of source `{}` is not a duration: `{}`",
                source.value, age.value
            ),
        )
        .label(error.to_string())
        .help("write a whole number and one unit: `30m`, `26h`, `7d` or `2w` (s, m, h, d, w)"),
    );
    false
}

/// True when a local relative path has a `..` component, so it reaches
/// outside the folder it is relative to. Absolute paths and URLs
/// (`s3://...`) are not relative to the project.
pub fn climbs_out(path: &str) -> bool {
    let absolute = path.starts_with(['/', '\\'])
        || path.contains("://")
        || path.as_bytes().get(1) == Some(&b':');
    !absolute && path.split(['/', '\\']).any(|part| part == "..")
}

/// `A0011` when `path` of `what` (such as "source `crm`") climbs out of the
/// project with `..`.
pub fn path_leaves_project(what: &str, path: &Sp<String>) -> Option<Diagnostic> {
    if !climbs_out(&path.value) {
        return None;
    }
    Some(
        Diagnostic::new(
            codes::spec::PATH_LEAVES_PROJECT,
            path.span,
            format!("`path` of {what} climbs out of the project with `..`"),
        )
        .label("relative to the project folder, this leaves it")
        .help(
            "keep the files inside the project, or write an absolute path to \
             reach outside it on purpose",
        ),
    )
}

/// `A0012` for a `path` written as a reference (`{ env = ... }`) in `what`.
pub fn reference_not_allowed(what: &str, span: Span) -> Diagnostic {
    Diagnostic::new(
        codes::spec::REFERENCE_NOT_ALLOWED,
        span,
        format!("`path` of {what} cannot be a reference"),
    )
    .label("accord does not read a path from the environment")
    .help(
        "write the path here, relative to the project or absolute: where a run \
         reads and writes is part of the reviewed spec",
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_relative_paths_with_dot_dot_climb_out() {
        use super::climbs_out;
        assert!(climbs_out("../data/a.csv"));
        assert!(climbs_out("data/../../a.csv"));
        assert!(climbs_out("data\\..\\..\\a.csv"));
        assert!(!climbs_out("data/a..b.csv"));
        assert!(!climbs_out("/srv/../data/a.csv"));
        assert!(!climbs_out("C:\\data\\..\\a.csv"));
        assert!(!climbs_out("s3://lake/../x"));
    }
}
