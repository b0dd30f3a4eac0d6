//! The settings of each `[source.NAME]` against where it reads: local
//! files, an object store (`s3://`, `az://`, `gs://`), PostgreSQL or
//! Marketo's activities. A source reads one place; every key it carries
//! must apply there (an `endpoint` on a local path, S3 keys on an `az://`
//! path, `table` without `postgres` are mistakes a run would silently
//! ignore); object-store URIs name a bucket (or an account and a
//! container); the connection URL of PostgreSQL, which holds a password, is
//! a reference; Marketo's activities come through a `marketo_engage`
//! destination and name activity types Marketo has; `freshness_column`,
//! `on_stale` and `append_only` can do what they say.
//!
//! `A0130` for "no place at all" is the syntax stage's (it knows whether a
//! `path` was written as a reference, refused there). The credentials of
//! an object-store source are checked by `storage_credentials`, as a
//! storage destination's are, and literal secrets by the destinations'
//! `A0110` check.
//!
//! Input: the model (schemas, destinations, sources). Output: diagnostics.
//! Pure.

use super::Model;
use super::destinations::literal_credential;
use super::endpoint;
use super::names::expect;
use super::schemas::FieldType;
use crate::catalog::{self, marketo_activities};
use crate::diag::{Diagnostic, codes};
use crate::source::Span;
use crate::syntax::data_source::{STORE_KEYS, object_store_of};
use crate::syntax::{DataSource, Setting, SettingValue, Sp};

/// Where a source reads, as far as `check` can tell.
enum Place<'a> {
    /// Local files (a file, a folder or a glob).
    Files,
    /// An object store: the storage destination type whose credentials it
    /// takes (`s3`, `azure_blob`, `gcs`), `None` when the URI is malformed.
    Store(Option<&'static str>),
    Postgres(&'a Sp<SettingValue>),
    Marketo(&'a Sp<String>),
    /// None, or more than one (both reported already).
    Unknown,
}

pub fn check(model: &Model, diags: &mut Vec<Diagnostic>) {
    for source in &model.syntax.sources {
        let what = format!("source `{}`", source.name.value);
        let place = place(&what, source, diags);
        keys_of_place(&what, source, &place, diags);
        match &place {
            Place::Store(Some(store)) => store_settings(&what, source, store, diags),
            Place::Postgres(url) => postgres(&what, source, url, diags),
            Place::Marketo(destination) => marketo(model, &what, source, destination, diags),
            _ => {}
        }
        freshness(model, &what, source, diags);
        append_only(model, &what, source, &place, diags);
    }
}

/// The one place a source reads (`A0130` when there are two), with its
/// object-store URI checked (`A0131`).
fn place<'a>(what: &str, source: &'a DataSource, diags: &mut Vec<Diagnostic>) -> Place<'a> {
    let mut given: Vec<(&str, Span)> = [
        source.path.as_ref().map(|p| ("path", p.span)),
        source.postgres.as_ref().map(|p| ("postgres", p.span)),
        source.marketo.as_ref().map(|m| ("marketo", m.span)),
    ]
    .into_iter()
    .flatten()
    .collect();
    // In the order written: the second is the one reported.
    given.sort_by_key(|(_, span)| (span.source, span.start));
    if let [(first, first_span), (second, second_span), rest @ ..] = given.as_slice() {
        let mut d = Diagnostic::new(
            codes::spec::SOURCE_LOCATION,
            *second_span,
            match rest {
                [] => format!("{what} reads from both `{first}` and `{second}`"),
                _ => format!("{what} reads from `path`, `postgres` and `marketo` at once"),
            },
        )
        .label("a second place to read from")
        .with_secondary(*first_span, "the first");
        for (_, span) in rest {
            d = d.with_secondary(*span, "and a third");
        }
        diags.push(d.help(
            "a source reads one place: keep one, and define another `[source.NAME]` \
             of the same schema for the other (`precedence` decides between them per field)",
        ));
        return Place::Unknown;
    }
    if let Some(url) = &source.postgres {
        return Place::Postgres(url);
    }
    if let Some(destination) = &source.marketo {
        return Place::Marketo(destination);
    }
    match &source.path {
        Some(path) if path.value.contains("://") => match store_uri(&path.value) {
            Ok(store) => Place::Store(Some(store)),
            Err(problem) => {
                diags.push(invalid_uri(what, path, problem));
                Place::Store(None)
            }
        },
        Some(_) => Place::Files,
        None => Place::Unknown,
    }
}

/// Why an object-store URI cannot be read.
#[derive(Debug, PartialEq, Eq)]
enum UriProblem {
    /// A scheme that is no object store accord reads.
    Scheme(String),
    /// `s3://` or `gs://` without a (valid) bucket name.
    Bucket(&'static str),
    /// `az://` without an account or a container.
    Azure(&'static str),
}

/// The storage destination type of a well-formed object-store URI:
/// `s3://BUCKET[/KEY]`, `gs://BUCKET[/KEY]`,
/// `az://ACCOUNT/CONTAINER[/PATH]` (or `azure://`).
fn store_uri(uri: &str) -> Result<&'static str, UriProblem> {
    let (scheme, rest) = uri.split_once("://").unwrap_or((uri, ""));
    let Some(store) = object_store_of(uri) else {
        return Err(UriProblem::Scheme(scheme.to_string()));
    };
    let mut parts = rest.split('/');
    let first = parts.next().unwrap_or_default();
    let plain = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    };
    match store {
        "azure_blob" => {
            if !plain(first) {
                return Err(UriProblem::Azure("account"));
            }
            if !parts.next().is_some_and(plain) {
                return Err(UriProblem::Azure("container"));
            }
        }
        _ if !plain(first) => {
            return Err(UriProblem::Bucket(if store == "s3" { "s3" } else { "gs" }));
        }
        _ => {}
    }
    Ok(store)
}

fn invalid_uri(what: &str, path: &Sp<String>, problem: UriProblem) -> Diagnostic {
    let forms = "write `s3://BUCKET/PATH` (with `endpoint` for an S3-compatible server), \
                 `az://ACCOUNT/CONTAINER/PATH` or `gs://BUCKET/PATH`";
    let d = |message: String, label: &str| {
        Diagnostic::new(codes::spec::INVALID_SOURCE_URI, path.span, message).label(label)
    };
    match problem {
        UriProblem::Scheme(scheme) => {
            let lower = scheme.to_ascii_lowercase();
            let d = d(
                format!("{what}: `{scheme}://` is not a store accord reads"),
                "not s3://, az://, azure:// or gs://",
            );
            match lower.as_str() {
                "http" | "https" => d.help(format!(
                    "accord reads object stores through their APIs, not from plain URLs: {forms}"
                )),
                "file" => d.help(
                    "write a local path without `file://`, relative to the project or absolute",
                ),
                _ => d.suggest(&lower, ["s3", "az", "azure", "gs"], forms),
            }
        }
        UriProblem::Bucket(scheme) => d(
            format!("{what}: the `{scheme}://` URI names no bucket"),
            "no bucket name after the scheme",
        )
        .help(format!(
            "write `{scheme}://BUCKET/PATH`: a bucket name of letters, digits, `-`, `_` and `.`"
        )),
        UriProblem::Azure(part) => d(
            format!("{what}: the `az://` URI names no {part}"),
            if part == "account" {
                "no storage account after the scheme"
            } else {
                "no container after the storage account"
            },
        )
        .help(
            "write `az://ACCOUNT/CONTAINER/PATH`: the storage account, then the blob \
             container, then the path in it",
        ),
    }
}

/// `A0132` for every key that does not apply where the source reads.
fn keys_of_place(what: &str, source: &DataSource, place: &Place<'_>, diags: &mut Vec<Diagnostic>) {
    let store = matches!(place, Place::Store(_));
    let (is_postgres, is_marketo) = (
        matches!(place, Place::Postgres(_)),
        matches!(place, Place::Marketo(_)),
    );
    // Nothing is judged against a place that is not known.
    if matches!(place, Place::Unknown) {
        return;
    }
    let reads = match place {
        Place::Files => "local files",
        Place::Store(_) => "an object store",
        Place::Postgres(_) => "PostgreSQL",
        Place::Marketo(_) => "Marketo",
        Place::Unknown => "",
    };
    let mut refuse = |key: &str, span: Span, label: &str, help: &str| {
        diags.push(
            Diagnostic::new(
                codes::spec::KEY_NOT_FOR_SOURCE,
                span,
                format!("{what} reads {reads}: `{key}` does not apply"),
            )
            .label(label)
            .help(help.to_string()),
        );
    };
    if !store {
        if let Some(endpoint) = &source.endpoint {
            refuse(
                "endpoint",
                endpoint.span,
                "`endpoint` is the base URL of an object store",
                "remove it; only sources on s3://, az:// or gs:// take `endpoint`",
            );
        }
        for setting in &source.settings {
            refuse(
                &setting.key.value,
                setting.key.span,
                "a setting of object-store sources",
                "remove it; only sources on s3://, az:// or gs:// take store settings",
            );
        }
    }
    if !is_postgres {
        for (key, value) in [("table", &source.table), ("query", &source.query)] {
            if let Some(value) = value {
                refuse(
                    key,
                    value.span,
                    "only PostgreSQL sources read a table or a query",
                    "remove it, or read from PostgreSQL: `postgres = { env = \"DATABASE_URL\" }`",
                );
            }
        }
    }
    if !is_marketo && let Some(first) = source.activity_types.first() {
        refuse(
            "activity_types",
            first.span,
            "only Marketo activity sources read activity types",
            "remove it, or read Marketo's activities: `marketo = \"DESTINATION\"`",
        );
    }
    if (is_postgres || is_marketo)
        && let Some(format) = &source.format
    {
        refuse(
            "format",
            format.span,
            "`format` is the format of data files",
            "remove it: rows come typed by the source's schema, not from files",
        );
    }
}

/// The endpoint and credential keys of an object-store source: keys of
/// its store (`A0132` for another store's), secrets as references
/// (`A0110`), and the credential rules storage destinations follow
/// (`A0120`-`A0122`).
fn store_settings(what: &str, source: &DataSource, store: &str, diags: &mut Vec<Diagnostic>) {
    if let Some(url) = &source.endpoint
        && let Err(problem) = endpoint::check(&url.value)
    {
        diags.push(
            Diagnostic::new(
                codes::spec::INVALID_ENDPOINT,
                url.span,
                format!("{what}: `endpoint` is not a URL accord reads from"),
            )
            .label(problem.to_string())
            .help("write `https://HOST[:PORT][/PATH]` (http only for 127.0.0.1, [::1] or localhost); credentials go in their own keys, as references"),
        );
    }
    let Some(ty) = catalog::lookup(store) else {
        return;
    };
    let own: Vec<&str> = STORE_KEYS
        .iter()
        .copied()
        .filter(|key| ty.setting(key).is_some())
        .collect();
    let mut valid: Vec<Setting> = Vec::new();
    for setting in &source.settings {
        let key = &setting.key.value;
        let Some(spec) = ty.setting(key) else {
            let scheme = source
                .path
                .as_ref()
                .and_then(|p| p.value.split_once("://"))
                .map_or("", |(s, _)| s);
            diags.push(
                Diagnostic::new(
                    codes::spec::KEY_NOT_FOR_SOURCE,
                    setting.key.span,
                    format!("{what} reads `{scheme}://`: `{key}` is not one of its settings"),
                )
                .label(format!("a setting of another store, not of `{}`", ty.name))
                .help(format!(
                    "`{scheme}://` sources take {}; absent, the store's default credentials are used",
                    own.iter()
                        .map(|k| format!("`{k}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            );
            continue;
        };
        let is_reference = matches!(setting.value.value, SettingValue::Reference { .. });
        if spec.secret && !is_reference {
            diags.push(literal_credential(
                what,
                setting,
                &format!("{}_{key}", source.name.value),
            ));
            // Given, if wrongly: the pair and conflict rules still see it.
            valid.push(setting.clone());
            continue;
        }
        if !spec.secret && !is_reference && !matches!(setting.value.value, SettingValue::String(_))
        {
            diags.push(
                Diagnostic::new(
                    codes::spec::WRONG_TYPE,
                    setting.value.span,
                    format!("{what}: expected a string for `{key}`"),
                )
                .label("wrong type")
                .help("write a string here"),
            );
            continue;
        }
        valid.push(setting.clone());
    }
    super::storage_credentials::check(what, &valid, store, diags);
}

/// `postgres` is a reference to the connection URL (`A0110` for a
/// literal, `A0122` for a profile), with exactly one of `table` and
/// `query` (`A0133`), the table a plain identifier.
fn postgres(what: &str, source: &DataSource, url: &Sp<SettingValue>, diags: &mut Vec<Diagnostic>) {
    match &url.value {
        SettingValue::Reference { kind, .. } if kind == "profile" => diags.push(
            Diagnostic::new(
                codes::spec::WRONG_REFERENCE_KIND,
                url.span,
                format!("{what}: `postgres` cannot be read from this reference"),
            )
            .label("a profile names a set of AWS keys, not a connection URL")
            .help("write `postgres = { env = \"VARIABLE\" }` or `{ file = \"PATH\" }`, holding `postgresql://USER:PASSWORD@HOST/DATABASE`"),
        ),
        SettingValue::Reference { .. } => {}
        SettingValue::String(_) => {
            // The key has no span of its own here: the value's stands in.
            let setting = Setting {
                key: Sp::new("postgres".to_string(), url.span),
                value: url.clone(),
            };
            diags.push(literal_credential(
                what,
                &setting,
                &format!("{}_DATABASE_URL", source.name.value),
            ));
        }
        _ => diags.push(
            Diagnostic::new(
                codes::spec::WRONG_TYPE,
                url.span,
                format!("{what}: expected a reference for `postgres`"),
            )
            .label("not `{ env = ... }` or `{ file = ... }`")
            .help("write `postgres = { env = \"DATABASE_URL\" }`: the variable holds `postgresql://USER:PASSWORD@HOST/DATABASE`"),
        ),
    }
    let problem = |span: Span, message: String, label: &str| {
        Diagnostic::new(codes::spec::POSTGRES_TABLE_OR_QUERY, span, message).label(label)
    };
    match (&source.table, &source.query) {
        (None, None) => diags.push(
            problem(
                url.span,
                format!("{what} reads PostgreSQL without `table` or `query`"),
                "what to read is missing",
            )
            .help("add `table = \"SCHEMA.TABLE\"`, or `query = \"SELECT ...\"` for anything else"),
        ),
        (Some(table), Some(query)) => diags.push(
            problem(
                query.span,
                format!("{what} has both `table` and `query`"),
                "a second thing to read",
            )
            .with_secondary(table.span, "the first")
            .help(
                "keep one: `table` reads the whole table, `query` the rows and columns it selects",
            ),
        ),
        (Some(table), None) => {
            if !is_table_name(&table.value) {
                diags.push(
                    problem(
                        table.span,
                        format!("{what}: `{}` is not a table name", table.value),
                        "not `TABLE` or `SCHEMA.TABLE`",
                    )
                    .help("a table is one identifier (letters, digits, `_` and `$`, not starting with a digit; at most 63 bytes), optionally after its schema and a dot; for anything else write `query = \"SELECT ...\"`"),
                );
            }
        }
        (None, Some(query)) => {
            if query.value.trim().is_empty() {
                diags.push(
                    problem(
                        query.span,
                        format!("{what}: `query` is empty"),
                        "nothing to run",
                    )
                    .help("write the query, `query = \"SELECT ...\"`, or read a whole table with `table`"),
                );
            }
        }
    }
}

/// `TABLE` or `SCHEMA.TABLE`, each an unquoted PostgreSQL identifier.
fn is_table_name(text: &str) -> bool {
    let ident = |part: &str| {
        let mut bytes = part.bytes();
        !part.is_empty()
            && part.len() <= 63
            && bytes
                .next()
                .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
            && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$')
    };
    let parts: Vec<&str> = text.split('.').collect();
    parts.len() <= 2 && parts.iter().all(|p| ident(p))
}

/// `marketo` names a `marketo_engage` destination (`A0106` when it names
/// none, `A0134` another type) and `activity_types` are given (`A0135`),
/// each a standard type (`A0135` for a misspelt one) or a custom one
/// (`A0136`, a warning).
fn marketo(
    model: &Model,
    what: &str,
    source: &DataSource,
    destination: &Sp<String>,
    diags: &mut Vec<Diagnostic>,
) {
    if let Some(index) = expect(
        &model.destinations,
        what,
        destination,
        "destination",
        codes::spec::UNKNOWN_DESTINATION,
        diags,
    ) {
        let found = &model.syntax.destinations[index];
        if let Some(ty) = &found.ty
            && ty.value != "marketo_engage"
        {
            let marketo: Vec<&str> = model
                .syntax
                .destinations
                .iter()
                .filter(|d| d.ty.as_ref().is_some_and(|t| t.value == "marketo_engage"))
                .map(|d| d.name.value.as_str())
                .collect();
            diags.push(
                Diagnostic::new(
                    codes::spec::MARKETO_SOURCE_DESTINATION,
                    destination.span,
                    format!(
                        "{what}: destination `{}` is of type `{}`, not `marketo_engage`",
                        destination.value, ty.value
                    ),
                )
                .label("Marketo activities are read through a Marketo destination's connection")
                .with_secondary(ty.span, "its type")
                .help(if marketo.is_empty() {
                    "name a destination of type `marketo_engage`: its `munchkin_id`, `client_id` and `client_secret` are reused".to_string()
                } else {
                    format!(
                        "name a `marketo_engage` destination: {}",
                        marketo
                            .iter()
                            .map(|n| format!("`{n}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                }),
            );
        }
    }
    if source.activity_types.is_empty() {
        diags.push(
            Diagnostic::new(
                codes::spec::INVALID_ACTIVITY_TYPES,
                destination.span,
                format!("{what} reads Marketo without `activity_types`"),
            )
            .label("which activities to read is missing")
            .help("add `activity_types = [\"Open Email\", \"Click Email\"]`: the activity types, as Marketo names them"),
        );
    }
    for name in &source.activity_types {
        match marketo_activities::classify(&name.value) {
            marketo_activities::Known::Standard => {}
            marketo_activities::Known::Misspelt(standard) => diags.push(
                Diagnostic::new(
                    codes::spec::INVALID_ACTIVITY_TYPES,
                    name.span,
                    format!("{what}: `{}` is not a Marketo activity type", name.value),
                )
                .label("a misspelt standard activity type")
                .help(format!("did you mean `{standard}`?")),
            ),
            marketo_activities::Known::Other => diags.push(
                Diagnostic::new(
                    codes::spec::CUSTOM_ACTIVITY_TYPE,
                    name.span,
                    format!(
                        "{what}: `{}` is not a standard Marketo activity type",
                        name.value
                    ),
                )
                .label("read only if the instance has a custom activity type of this name")
                .help("the run looks every name up among the instance's activity types and stops when one is missing; `accord explain A0136` lists the standard ones"),
            ),
        }
    }
}

/// `freshness_column` names a timestamp field of the source's schema
/// (`A0102` for no field, `A0137` for another type), and `on_stale` has a
/// `max_age` to judge by (`A0138`).
fn freshness(model: &Model, what: &str, source: &DataSource, diags: &mut Vec<Diagnostic>) {
    if let Some(on_stale) = &source.on_stale
        && source.max_age.is_none()
    {
        diags.push(
            Diagnostic::new(
                codes::spec::ON_STALE_WITHOUT_MAX_AGE,
                on_stale.span,
                format!("{what}: `on_stale` without `max_age` never fires"),
            )
            .label("without `max_age` the source is never stale")
            .help("add `max_age = \"26h\"` (how old the newest row may be), or remove `on_stale`"),
        );
    }
    let (Some(column), Some(schema)) = (&source.freshness_column, &source.schema) else {
        return;
    };
    let Some(info) = model.schema_info.get(&schema.value) else {
        return;
    };
    let timestamps: Vec<&str> = info
        .fields
        .iter()
        .filter(|(_, f)| f.ty == FieldType::Timestamp)
        .map(|(n, _)| n.as_str())
        .collect();
    let listed = if timestamps.is_empty() {
        format!(
            "schema `{}` has no timestamp field: add one, or remove `freshness_column`",
            schema.value
        )
    } else {
        format!(
            "timestamp fields of `{}`: {}",
            schema.value,
            timestamps
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    match info.fields.get(&column.value) {
        None => diags.push(
            Diagnostic::new(
                codes::spec::UNKNOWN_FIELD,
                column.span,
                format!(
                    "{what}: schema `{}` has no field `{}`",
                    schema.value, column.value
                ),
            )
            .label("no field has this name")
            .suggest(
                &column.value,
                timestamps
                    .iter()
                    .copied()
                    .chain(info.fields.keys().map(String::as_str)),
                listed,
            ),
        ),
        Some(field) if field.ty != FieldType::Timestamp => diags.push(
            Diagnostic::new(
                codes::spec::FRESHNESS_COLUMN_NOT_TIMESTAMP,
                column.span,
                format!(
                    "{what}: `freshness_column` `{}` is a `{}` field, not a timestamp",
                    column.value,
                    field.ty.name()
                ),
            )
            .label("freshness compares times")
            .with_secondary(field.span, format!("declared `{}` here", field.ty.name()))
            .help(listed),
        ),
        Some(_) => {}
    }
}

/// `append_only = true` needs rows that are never changed once written
/// (an `event` schema) and a way to tell the new ones: files and their
/// sizes, Marketo's activity dates, or, on PostgreSQL, `freshness_column`
/// as a high-water mark (`A0139` otherwise).
fn append_only(
    model: &Model,
    what: &str,
    source: &DataSource,
    place: &Place<'_>,
    diags: &mut Vec<Diagnostic>,
) {
    let Some(flag) = source.append_only.as_ref().filter(|a| a.value) else {
        return;
    };
    if let Some(schema) = &source.schema
        && let Some(index) = model.schemas.get(&schema.value)
        && let Some(class) = &model.syntax.schemas[index].class
        && class.value != "event"
    {
        diags.push(
            Diagnostic::new(
                codes::spec::APPEND_ONLY_NOT_ALLOWED,
                flag.span,
                format!(
                    "{what}: `append_only` on schema `{}`, whose rows are not events",
                    schema.value
                ),
            )
            .label("only events are never changed once written")
            .with_secondary(class.span, format!("its class: `{}`", class.value))
            .help("remove `append_only`: a changed or deleted row of this schema would be missed by reading only what is new"),
        );
        return;
    }
    if matches!(place, Place::Postgres(_)) && source.freshness_column.is_none() {
        diags.push(
            Diagnostic::new(
                codes::spec::APPEND_ONLY_NOT_ALLOWED,
                flag.span,
                format!("{what}: `append_only` on PostgreSQL without `freshness_column`"),
            )
            .label("nothing tells the rows read from the new ones")
            .help("add `freshness_column = \"FIELD\"`, a timestamp field whose newest value read is remembered: the next run reads the rows after it"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_store_uris() {
        assert_eq!(store_uri("s3://lake/crm/*.parquet"), Ok("s3"));
        assert_eq!(store_uri("S3://lake"), Ok("s3"));
        assert_eq!(store_uri("gs://lake/events/"), Ok("gcs"));
        assert_eq!(store_uri("az://acct/lake/x.parquet"), Ok("azure_blob"));
        assert_eq!(store_uri("azure://acct/lake"), Ok("azure_blob"));
        assert_eq!(store_uri("s3://"), Err(UriProblem::Bucket("s3")));
        assert_eq!(store_uri("s3:///x"), Err(UriProblem::Bucket("s3")));
        assert_eq!(store_uri("gs://a b/x"), Err(UriProblem::Bucket("gs")));
        assert_eq!(store_uri("az://acct"), Err(UriProblem::Azure("container")));
        assert_eq!(store_uri("az://acct/"), Err(UriProblem::Azure("container")));
        assert_eq!(store_uri("az:///c/x"), Err(UriProblem::Azure("account")));
        assert_eq!(store_uri("s4://lake"), Err(UriProblem::Scheme("s4".into())));
        assert_eq!(
            store_uri("https://lake.example/x"),
            Err(UriProblem::Scheme("https".into()))
        );
    }

    #[test]
    fn table_names() {
        for ok in ["accounts", "crm.accounts", "_t", "t$1", "CRM.Accounts"] {
            assert!(is_table_name(ok), "{ok}");
        }
        for bad in [
            "",
            "crm.",
            "a.b.c",
            "1t",
            "crm accounts",
            "\"crm\".\"accounts\"",
            "accounts; drop table x",
            &"a".repeat(64),
        ] {
            assert!(!is_table_name(bad), "{bad}");
        }
    }
}
