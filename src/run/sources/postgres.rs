//! PostgreSQL sources: a `[source.*]` with `postgres = { env = "..." }` and a
//! `table` or a `query` in, the schema's fields as Arrow batches out, with
//! the same bad-row checks as files (rows located as `crm.contacts:row N`).
//!
//! The driver is `tokio-postgres`: the maintained pure-Rust client of the
//! rust-postgres project, on the tokio the run already builds, with no C
//! library (libpq) to link and no crypto backend of its own (TLS is ours,
//! over tokio-rustls on ring, the one backend of the crate). Rows come in
//! one binary `COPY (SELECT ...) TO STDOUT (FORMAT binary)`: the server
//! streams them as they are produced, a row costs no text parsing, and the
//! values are decoded straight into the typed columns, flushed as one Arrow
//! batch every [`BATCH_ROWS`] rows. ConnectorX-style partitioned reads would
//! read faster from a large table, but need a partition column and several
//! connections and snapshots; one stream is enough at the sizes one machine
//! evaluates, and it reads one consistent snapshot.
//!
//! At the start the table's (or the query's) columns are described without
//! reading a row: a field whose column is missing, or whose type does not
//! convert to the field's ([`conversion`]), stops the run with R0013 naming
//! them all; a column no field declares is an R0005 warning. Only the
//! fields' columns are selected, each cast by the server to one wire type
//! per field type (`text`, `int8`, `float8`, `bool`, `timestamptz`, their
//! arrays), in a read-only transaction with the time zone set to UTC (a
//! `timestamp` without zone and a `date` are read as UTC).
//!
//! Secrets: the connection URL is read from its reference and only ever
//! shown as `postgres://HOST:PORT/DB`; the server's own messages are
//! scrubbed of the URL and the password before they reach an error.
//!
//! TLS follows the URL's `sslmode`: `disable`, `allow`, `prefer` and no
//! `sslmode` connect without TLS; `require`, `verify-ca` and `verify-full`
//! connect over TLS and verify the server's certificate and name (stricter
//! than libpq's `require`, which verifies nothing) against Mozilla's roots,
//! or against the PEM file `sslrootcert` names (relative to the project).

use std::future::Future;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use datafusion::arrow::record_batch::RecordBatch;
use secrecy::{ExposeSecret, SecretString};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::binary_copy::BinaryCopyOutStream;
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::error::SqlState;
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};
use tokio_postgres::types::{FromSql, Kind, Type};
use tokio_rustls::rustls;

use super::freshness::judge_found;
use super::spill::Spill;
use super::typing::{Builder, Cell, Line, a_type, arrow_schema};
use super::{Loaded, ReadContext, judge};
use crate::deliver::storage::StorageErrorKind;
use crate::diag::did_you_mean;
use crate::plan::{PostgresSourcePlan, SchemaPlan, SourcePlan};
use crate::run::error::{ColumnMismatch, RunError};
use crate::run::report::{RunDiagnostic, SourceReport};
use crate::time::Micros;

/// Rows per Arrow batch.
const BATCH_ROWS: usize = 65_536;

/// How long connecting may take when the URL does not say
/// (`connect_timeout`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01).
const PG_EPOCH: Micros = 946_684_800_000_000;

/// Reads a PostgreSQL source. Errors name the source and where it reads,
/// never the URL or the password.
pub(super) fn read(
    cx: &ReadContext<'_>,
    name: &str,
    source: &SourcePlan,
    pg: &PostgresSourcePlan,
    schema: &SchemaPlan,
) -> Result<Loaded, RunError> {
    let plain = |reason: String| RunError::Source {
        source: name.to_string(),
        reason,
    };
    let url = crate::deliver::secrets::read("postgres", &pg.url, cx.root).map_err(plain)?;
    let target = Target::parse(&url, &pg.url, cx.root).map_err(plain)?;
    let relation = Relation::of(pg).map_err(plain)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| plain(e.to_string()))?;
    // In a run that streams, the rows go to a spill file, not memory.
    let spill = cx.stream.then_some(cx.root);
    let job = Job {
        name,
        source,
        schema,
        now: cx.now,
        target: &target,
        relation: &relation,
        spill,
    };
    crate::deliver::storage::object::block_on(&runtime, job.run())
}

/// What the source reads: a table, or a query.
enum Relation {
    /// The table's name as written (`crm.contacts`), and quoted for SQL.
    Table {
        shown: String,
        sql: String,
    },
    Query(String),
}

impl Relation {
    fn of(pg: &PostgresSourcePlan) -> Result<Relation, String> {
        match (&pg.table, &pg.query) {
            (Some(table), None) => Ok(Relation::Table {
                shown: table.clone(),
                sql: quote_table(table)?,
            }),
            (None, Some(query)) => {
                let query = query.trim().trim_end_matches(';').trim_end();
                if query.is_empty() {
                    return Err("the `query` is empty".into());
                }
                Ok(Relation::Query(query.to_string()))
            }
            (Some(_), Some(_)) => {
                Err("a PostgreSQL source reads a `table` or a `query`, not both".into())
            }
            (None, None) => Err("a PostgreSQL source needs a `table` or a `query`".into()),
        }
    }

    /// How rows and diagnostics locate themselves: the table's name, or
    /// `query`.
    fn shown(&self) -> &str {
        match self {
            Relation::Table { shown, .. } => shown,
            Relation::Query(_) => "query",
        }
    }

    /// `table crm.contacts` or `query`, for messages.
    fn described(&self) -> String {
        match self {
            Relation::Table { shown, .. } => format!("table {shown}"),
            Relation::Query(_) => "query".into(),
        }
    }

    /// The relation as a `FROM` item.
    fn sql_from(&self) -> String {
        match self {
            Relation::Table { sql, .. } => format!("{sql} AS accord_source"),
            Relation::Query(query) => format!("({query}) AS accord_source"),
        }
    }
}

/// `crm.contacts` as `"crm"."contacts"`: each part either double-quoted
/// (kept as written) or a plain identifier, which PostgreSQL folds to lower
/// case as it does in SQL.
fn quote_table(table: &str) -> Result<String, String> {
    let wrong = || format!("`{table}` is not a table name (`schema.table` or `table`)");
    let mut parts = Vec::new();
    let mut rest = table.trim();
    loop {
        let (part, after) = if let Some(quoted) = rest.strip_prefix('"') {
            let mut name = String::new();
            let mut chars = quoted.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                if c == '"' {
                    if quoted[i + 1..].starts_with('"') {
                        name.push('"');
                        chars.next();
                    } else {
                        end = Some(i + 1);
                        break;
                    }
                } else {
                    name.push(c);
                }
            }
            let end = end.ok_or_else(wrong)?;
            (name, &quoted[end..])
        } else {
            let end = rest.find('.').unwrap_or(rest.len());
            let word = &rest[..end];
            let plain = word
                .chars()
                .next()
                .is_some_and(|c| c.is_alphabetic() || c == '_')
                && word
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '_' || c == '$');
            if !plain {
                return Err(wrong());
            }
            (word.to_lowercase(), &rest[end..])
        };
        if part.is_empty() {
            return Err(wrong());
        }
        parts.push(quote_ident(&part));
        match after.strip_prefix('.') {
            Some(next) => rest = next,
            None if after.is_empty() => break,
            None => return Err(wrong()),
        }
    }
    if parts.len() > 3 {
        return Err(wrong());
    }
    Ok(parts.join("."))
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The `sslmode` of a URL, as this reader honours it.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Tls {
    /// `disable`, `allow`, `prefer` or none: no TLS.
    Off,
    /// `require`, `verify-ca`, `verify-full`: TLS, certificate verified.
    Verified,
}

/// Where a source connects: the driver's configuration (which holds the
/// password), how, and where as it may be shown.
struct Target {
    config: tokio_postgres::Config,
    tls: Tls,
    /// `sslrootcert`, resolved against the project.
    root_cert: Option<std::path::PathBuf>,
    /// `postgres://HOST:PORT/DB`.
    location: String,
    /// What must never appear in a message: the URL and the password.
    secrets: Vec<String>,
}

impl Target {
    /// Parses a connection URL (`postgres://...` or `host=... dbname=...`).
    /// `reference` names where it came from, for errors, which never quote
    /// the URL.
    fn parse(url: &SecretString, reference: &str, root: &Path) -> Result<Target, String> {
        let text = url.expose_secret().trim();
        let (kind, name) = reference.split_once(':').unwrap_or(("", reference));
        let from = format!("the connection URL ({kind} {name})");
        let mut tls = Tls::Off;
        let mut root_cert = None;
        let mut take = |key: &str, value: &str| -> Result<bool, String> {
            match key {
                "sslmode" => {
                    tls = match value {
                        "disable" | "allow" | "prefer" => Tls::Off,
                        "require" | "verify-ca" | "verify-full" => Tls::Verified,
                        other => {
                            return Err(format!(
                                "{from} has `sslmode={other}`: use disable, prefer, require, verify-ca or verify-full"
                            ));
                        }
                    };
                    Ok(true)
                }
                "sslrootcert" => {
                    root_cert = Some(root.join(percent_decode(value)));
                    Ok(true)
                }
                _ => Ok(false),
            }
        };
        // The driver knows `sslmode` only up to `require` and no
        // `sslrootcert`: both are taken out here and applied below.
        let rest = if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            match text.split_once('?') {
                Some((base, query)) => {
                    let mut kept = Vec::new();
                    for pair in query.split('&').filter(|p| !p.is_empty()) {
                        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                        if !take(k, v)? {
                            kept.push(pair);
                        }
                    }
                    if kept.is_empty() {
                        base.to_string()
                    } else {
                        format!("{base}?{}", kept.join("&"))
                    }
                }
                None => text.to_string(),
            }
        } else {
            let mut kept = Vec::new();
            for word in text.split_whitespace() {
                let (k, v) = word.split_once('=').unwrap_or((word, ""));
                if !take(k.trim(), v.trim().trim_matches('\''))? {
                    kept.push(word);
                }
            }
            kept.join(" ")
        };
        let mut config: tokio_postgres::Config = rest.parse().map_err(|e| {
            scrub(
                &format!("{from} is not a PostgreSQL connection URL: {e}"),
                &[text.to_string()],
            )
        })?;
        config.ssl_mode(match tls {
            Tls::Off => SslMode::Disable,
            Tls::Verified => SslMode::Require,
        });
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        config.application_name("accord");
        let host = match config.get_hosts().first() {
            Some(Host::Tcp(host)) if host.contains(':') => format!("[{host}]"),
            Some(Host::Tcp(host)) => host.clone(),
            Some(Host::Unix(path)) => path.display().to_string(),
            None => return Err(format!("{from} names no host")),
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let db = config
            .get_dbname()
            .or(config.get_user())
            .unwrap_or("postgres");
        let mut secrets = vec![text.to_string(), rest];
        if let Some(password) = config.get_password() {
            let password = String::from_utf8_lossy(password).into_owned();
            if !password.is_empty() {
                // As written in the URL, too (percent-encoded).
                secrets.push(percent_encode(&password));
                secrets.push(password);
            }
        }
        Ok(Target {
            location: format!("postgres://{host}:{port}/{db}"),
            config,
            tls,
            root_cert,
            secrets,
        })
    }
}

/// `message` with every secret replaced by `<redacted>`: server messages
/// are the server's, and a driver error may one day quote its input.
fn scrub(message: &str, secrets: &[String]) -> String {
    let mut out = message.to_string();
    let mut secrets: Vec<&String> = secrets.iter().filter(|s| s.len() >= 3).collect();
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    for secret in secrets {
        out = out.replace(secret.as_str(), "<redacted>");
    }
    out
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// One read of one source.
struct Job<'a> {
    name: &'a str,
    source: &'a SourcePlan,
    schema: &'a SchemaPlan,
    now: Micros,
    target: &'a Target,
    relation: &'a Relation,
    /// The project whose `.accord/tmp/` the typed rows spill to
    /// (`super::spill`), in a run that streams.
    spill: Option<&'a Path>,
}

impl Job<'_> {
    fn access(&self, kind: StorageErrorKind, reason: String) -> RunError {
        RunError::SourceAccess {
            source: self.name.to_string(),
            location: self.target.location.clone(),
            kind,
            reason: scrub(&reason, &self.target.secrets),
        }
    }

    /// A driver error, classified: refused credentials, an unreachable
    /// server, a database or table that does not exist.
    fn failed(&self, doing: &str, e: &tokio_postgres::Error) -> RunError {
        if let Some(db) = e.as_db_error() {
            let code = db.code();
            let kind = if *code == SqlState::INVALID_PASSWORD
                || *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
                || *code == SqlState::INSUFFICIENT_PRIVILEGE
            {
                StorageErrorKind::Denied
            } else if *code == SqlState::INVALID_CATALOG_NAME
                || *code == SqlState::UNDEFINED_TABLE
                || *code == SqlState::INVALID_SCHEMA_NAME
            {
                StorageErrorKind::NotFound
            } else {
                StorageErrorKind::Other
            };
            return self.access(kind, format!("{doing}: {}", db.message()));
        }
        let mut reason = e.to_string();
        let mut cause = std::error::Error::source(e);
        let mut io_error = false;
        while let Some(c) = cause {
            io_error |= c.is::<io::Error>();
            let text = c.to_string();
            if !reason.contains(&text) {
                reason = format!("{reason}: {text}");
            }
            cause = c.source();
        }
        let tls =
            reason.contains("certificate") || reason.contains("TLS") || reason.contains("tls");
        let kind = if tls {
            StorageErrorKind::Denied
        } else if io_error || reason.contains("timed out") || reason.contains("connect") {
            StorageErrorKind::Unreachable
        } else {
            StorageErrorKind::Other
        };
        self.access(kind, format!("{doing}: {reason}"))
    }

    async fn run(self) -> Result<Loaded, RunError> {
        let client = match self.target.tls {
            Tls::Off => {
                let (client, connection) = self
                    .target
                    .config
                    .connect(tokio_postgres::NoTls)
                    .await
                    .map_err(|e| self.failed("cannot connect", &e))?;
                tokio::spawn(connection);
                client
            }
            Tls::Verified => {
                let tls = RustlsConnect::new(self.target.root_cert.as_deref())
                    .map_err(|reason| self.access(StorageErrorKind::Other, reason))?;
                let (client, connection) = self
                    .target
                    .config
                    .connect(tls)
                    .await
                    .map_err(|e| self.failed("cannot connect", &e))?;
                tokio::spawn(connection);
                client
            }
        };
        // One snapshot for the description and the rows; nothing written.
        client
            .batch_execute(
                "SET TIME ZONE 'UTC'; START TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY",
            )
            .await
            .map_err(|e| self.failed("cannot start a read-only transaction", &e))?;
        let described = client
            .prepare(&format!("SELECT * FROM {}", self.relation.sql_from()))
            .await
            .map_err(|e| match self.relation {
                Relation::Table { shown, .. } => {
                    self.failed(&format!("cannot read table {shown}"), &e)
                }
                Relation::Query(_) => self.failed("the query fails", &e),
            })?;
        let columns: Vec<(String, Type)> = described
            .columns()
            .iter()
            .map(|c| (c.name().to_string(), c.type_().clone()))
            .collect();

        let shown = self.relation.shown().to_string();
        let mut b = Builder::new(&self.source.schema, self.schema);
        b.source = self.name.to_string();
        b.report.files.push(format!(
            "{} ({})",
            self.target.location,
            self.relation.described()
        ));
        let selected = self.check_columns(&columns, &mut b, &shown)?;
        if let Some(root) = self.spill {
            let plans = (self.source, self.schema);
            b.spill = Some(Spill::new((root, self.name), plans, self.now));
        }

        let select = selected;
        let copy = format!(
            "COPY (SELECT {} FROM {}) TO STDOUT (FORMAT binary)",
            if select.is_empty() {
                "1".to_string()
            } else {
                select.join(", ")
            },
            self.relation.sql_from()
        );
        let mut wire: Vec<Type> = self
            .schema
            .fields
            .values()
            .map(|f| wire_type(&f.ty))
            .collect();
        if select.is_empty() {
            wire = vec![Type::INT4];
        }
        let stream = client
            .copy_out(copy.as_str())
            .await
            .map_err(|e| self.failed(&format!("cannot read {}", self.relation.described()), &e))?;
        let rows = BinaryCopyOutStream::new(stream, &wire);
        self.stream(rows, b, &shown).await
    }

    /// Checks the fields against the described columns: R0013 for every
    /// field without a column of a type that converts, R0005 for every
    /// column no field declares. Returns the select list, in field order.
    fn check_columns(
        &self,
        columns: &[(String, Type)],
        b: &mut Builder,
        shown: &str,
    ) -> Result<Vec<String>, RunError> {
        let mut mismatches = Vec::new();
        let mut select = Vec::new();
        for (field, plan) in &self.schema.fields {
            match columns.iter().find(|(c, _)| c == field) {
                None => mismatches.push(ColumnMismatch {
                    column: field.clone(),
                    found: None,
                    expected: a_type(&plan.ty),
                    near: did_you_mean(field, columns.iter().map(|(c, _)| c.as_str()))
                        .map(str::to_string),
                }),
                Some((_, ty)) if !conversion(ty, &plan.ty) => mismatches.push(ColumnMismatch {
                    column: field.clone(),
                    found: Some(type_name(ty)),
                    expected: a_type(&plan.ty),
                    near: None,
                }),
                Some(_) => select.push(format!("{}::{}", quote_ident(field), cast(&plan.ty))),
            }
        }
        if !mismatches.is_empty() {
            return Err(RunError::SourceColumns {
                source: self.name.to_string(),
                location: self.target.location.clone(),
                relation: self.relation.described(),
                schema: self.source.schema.clone(),
                mismatches,
            });
        }
        for (column, _) in columns {
            if !self.schema.fields.contains_key(column) {
                b.unknown_column(shown, shown, "column", column);
            }
        }
        Ok(select)
    }
}

impl Job<'_> {
    /// Streams the COPY rows into the builder, a batch every [`BATCH_ROWS`].
    async fn stream(
        &self,
        rows: BinaryCopyOutStream,
        mut b: Builder<'_>,
        shown: &str,
    ) -> Result<Loaded, RunError> {
        use futures_util::StreamExt;
        let job = self;
        let mut rows = Box::pin(rows);
        let fields: Vec<String> = job.schema.fields.values().map(|f| f.ty.clone()).collect();
        let names: Vec<String> = job.schema.fields.keys().cloned().collect();
        let arrow = arrow_schema(job.schema);
        let mut batches = Vec::new();
        let mut pending = 0usize;
        let mut n = 0usize;
        let rows_of = b.file(format!("{shown}:row "));
        while let Some(row) = rows.next().await {
            let row = row.map_err(|e| {
                job.failed(&format!("cannot read {}", job.relation.described()), &e)
            })?;
            n += 1;
            let at = || format!("{shown}:row {n}");
            let mut cells = Vec::with_capacity(fields.len());
            let mut error = None;
            for (i, ty) in fields.iter().enumerate() {
                let raw: Raw = row
                    .try_get(i)
                    .map_err(|e| job.failed("cannot decode a row", &e))?;
                match decode(raw.0, ty) {
                    Ok(cell) => cells.push(cell),
                    Err(e) => {
                        error = Some(format!("`{}`: {e}", names[i]));
                        break;
                    }
                }
            }
            match error {
                Some(e) => b.bad(&at(), e),
                None => {
                    b.row_at(
                        Line {
                            file: rows_of,
                            number: n as u64,
                        },
                        cells,
                    );
                    pending += 1;
                }
            }
            if pending >= BATCH_ROWS && b.spill.is_none() {
                batches.push(
                    RecordBatch::try_new(arrow.clone(), b.take_columns())
                        .map_err(|e| job.access(StorageErrorKind::Other, e.to_string()))?,
                );
                pending = 0;
            }
        }
        if n == 0 {
            b.empty_file(shown, "holds no rows");
        }
        if let Some(e) = b.spill_failed.take() {
            return Err(job.local(e));
        }
        if let Some(spill) = b.spill.take() {
            let (rows, found) = spill.finish(b.take_columns()).map_err(|e| job.local(e))?;
            let (mut report, mut diagnostics) = (b.report, b.diagnostics);
            judge_found(
                &mut report,
                &mut diagnostics,
                job.name,
                (job.source, job.schema),
                found,
                None,
                job.now,
            );
            let (batches, streams) = rows.into_tables();
            return Ok(job.loaded(batches, streams, report, diagnostics));
        }
        if pending > 0 || batches.is_empty() {
            batches.push(
                RecordBatch::try_new(arrow.clone(), b.take_columns())
                    .map_err(|e| job.access(StorageErrorKind::Other, e.to_string()))?,
            );
        }
        let mut report = std::mem::take(&mut b.report);
        let mut diagnostics = std::mem::take(&mut b.diagnostics);
        // `check` holds `freshness_column` to a timestamp field (A0137).
        judge(
            &mut report,
            &mut diagnostics,
            job.name,
            (job.source, job.schema),
            &batches,
            None,
            job.now,
        );
        Ok(job.loaded(batches, Vec::new(), report, diagnostics))
    }

    /// The source read: its rows as `batches` or `streams`.
    fn loaded(
        &self,
        batches: Vec<RecordBatch>,
        streams: Vec<Arc<dyn crate::run::engine::Scan>>,
        report: SourceReport,
        diagnostics: Vec<RunDiagnostic>,
    ) -> Loaded {
        let present = self.schema.fields.keys().cloned().collect();
        Loaded {
            batches,
            streams,
            ..Loaded::of(self.name, self.source, present, report, diagnostics)
        }
    }

    /// A problem with the run's own files (the spill file), not the server.
    fn local(&self, reason: String) -> RunError {
        RunError::Source {
            source: self.name.to_string(),
            reason,
        }
    }
}

/// The PostgreSQL type a field's column is cast to for the wire.
fn wire_type(ty: &str) -> Type {
    match ty {
        "int" => Type::INT8,
        "double" => Type::FLOAT8,
        "bool" => Type::BOOL,
        "timestamp" => Type::TIMESTAMPTZ,
        "list<string>" => Type::TEXT_ARRAY,
        "list<int>" => Type::INT8_ARRAY,
        "list<double>" => Type::FLOAT8_ARRAY,
        _ => Type::TEXT,
    }
}

/// The SQL name of [`wire_type`], for the cast in the select list.
fn cast(ty: &str) -> &'static str {
    match ty {
        "int" => "int8",
        "double" => "float8",
        "bool" => "bool",
        "timestamp" => "timestamptz",
        "list<string>" => "text[]",
        "list<int>" => "int8[]",
        "list<double>" => "float8[]",
        _ => "text",
    }
}

/// Whether a column of PostgreSQL type `ty` converts to a field of type
/// `field` without loss or guessing (the types table of docs/sources.md).
fn conversion(ty: &Type, field: &str) -> bool {
    if let Kind::Domain(inner) = ty.kind() {
        return conversion(inner, field);
    }
    let scalar = |ty: &Type, field: &str| -> bool {
        if let Kind::Domain(inner) = ty.kind() {
            return conversion(inner, field);
        }
        let integer = [Type::INT2, Type::INT4, Type::INT8].contains(ty);
        match field {
            "string" => {
                integer
                    || [
                        Type::TEXT,
                        Type::VARCHAR,
                        Type::BPCHAR,
                        Type::NAME,
                        Type::UUID,
                    ]
                    .contains(ty)
                    || matches!(ty.kind(), Kind::Enum(_))
                    || ty.name() == "citext"
            }
            "int" => integer,
            "double" => integer || [Type::FLOAT4, Type::FLOAT8, Type::NUMERIC].contains(ty),
            "bool" => *ty == Type::BOOL,
            "timestamp" => [Type::TIMESTAMPTZ, Type::TIMESTAMP, Type::DATE].contains(ty),
            _ => false,
        }
    };
    match (
        field
            .strip_prefix("list<")
            .and_then(|f| f.strip_suffix('>')),
        ty.kind(),
    ) {
        (Some(item), Kind::Array(inner)) => scalar(inner, item),
        (Some(_), _) => false,
        (None, Kind::Array(_)) => false,
        (None, _) => scalar(ty, field),
    }
}

/// `text`, `numeric`, `integer[]`, for messages.
fn type_name(ty: &Type) -> String {
    match ty.kind() {
        Kind::Array(inner) => format!("{}[]", type_name(inner)),
        _ => ty.name().to_string(),
    }
}

/// A value's bytes as the server sent them (`None`: SQL null).
struct Raw<'a>(Option<&'a [u8]>);

impl<'a> FromSql<'a> for Raw<'a> {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(Some(raw)))
    }

    fn from_sql_null(_: &Type) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(None))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// Decodes one value of the wire type of a field of type `ty` (see
/// [`wire_type`]) into a cell, or says why it does not type.
fn decode<'r>(raw: Option<&'r [u8]>, ty: &str) -> Result<Cell<'r>, String> {
    let Some(raw) = raw else {
        return Ok(Cell::Null);
    };
    Ok(match ty {
        "int" => Cell::Int(int8(raw)?),
        "double" => Cell::Float(f64::from_bits(int8(raw)? as u64)),
        "bool" => Cell::Bool(raw.first().is_some_and(|b| *b != 0)),
        "timestamp" => Cell::Ts(timestamp(raw)?),
        "list<string>" => Cell::Strs(
            array(raw)?
                .into_iter()
                .map(|item| text(item?))
                .collect::<Result<_, _>>()?,
        ),
        "list<int>" => Cell::Ints(
            array(raw)?
                .into_iter()
                .map(|item| int8(item?))
                .collect::<Result<_, _>>()?,
        ),
        "list<double>" => Cell::Floats(
            array(raw)?
                .into_iter()
                .map(|item| Ok::<_, String>(f64::from_bits(int8(item?)? as u64)))
                .collect::<Result<_, _>>()?,
        ),
        _ => Cell::Str(text(raw)?.into()),
    })
}

fn int8(raw: &[u8]) -> Result<i64, String> {
    let bytes: [u8; 8] = raw
        .try_into()
        .map_err(|_| format!("{} bytes are not an 8-byte value", raw.len()))?;
    Ok(i64::from_be_bytes(bytes))
}

fn text(raw: &[u8]) -> Result<String, String> {
    String::from_utf8(raw.to_vec()).map_err(|_| "not UTF-8 text".to_string())
}

/// A `timestamptz`: microseconds since 2000-01-01 UTC; infinities and
/// years a file's timestamp cannot write (outside 0000-9999) do not type.
fn timestamp(raw: &[u8]) -> Result<Micros, String> {
    let v = int8(raw)?;
    if v == i64::MAX {
        return Err("`infinity` is not a timestamp".into());
    }
    if v == i64::MIN {
        return Err("`-infinity` is not a timestamp".into());
    }
    let t = v
        .checked_add(PG_EPOCH)
        .ok_or_else(|| "a timestamp outside the years 0000 to 9999".to_string())?;
    // 0000-01-01 and 10000-01-01, in microseconds since 1970.
    const FIRST: Micros = -62_167_219_200_000_000;
    const END: Micros = 253_402_300_800_000_000;
    if !(FIRST..END).contains(&t) {
        return Err("a timestamp outside the years 0000 to 9999".into());
    }
    Ok(t)
}

/// The items of a one-dimensional array (`None`: a null item, which does
/// not type: a list holds no nulls).
fn array(raw: &[u8]) -> Result<Vec<Result<&[u8], String>>, String> {
    let bad = || "not an array".to_string();
    let int4 = |at: usize| -> Result<i32, String> {
        raw.get(at..at + 4)
            .and_then(|b| b.try_into().ok())
            .map(i32::from_be_bytes)
            .ok_or_else(bad)
    };
    let dims = int4(0)?;
    if dims == 0 {
        return Ok(Vec::new());
    }
    if dims != 1 {
        return Err(format!("an array of {dims} dimensions is not a list"));
    }
    let len = usize::try_from(int4(12)?).map_err(|_| bad())?;
    let mut at = 20;
    let mut items = Vec::with_capacity(len);
    for _ in 0..len {
        let n = int4(at)?;
        at += 4;
        if n < 0 {
            items.push(Err("a list with a null item".to_string()));
            continue;
        }
        let n = n as usize;
        items.push(Ok(raw.get(at..at + n).ok_or_else(bad)?));
        at += n;
    }
    Ok(items)
}

/// TLS for the driver: tokio-rustls on ring, verifying the server's
/// certificate and name against Mozilla's roots or an `sslrootcert` file.
#[derive(Clone)]
struct RustlsConnect(Arc<rustls::ClientConfig>);

impl RustlsConnect {
    fn new(root_cert: Option<&Path>) -> Result<RustlsConnect, String> {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        match root_cert {
            Some(path) => {
                let shown = path.file_name().map_or_else(
                    || path.display().to_string(),
                    |n| n.to_string_lossy().into_owned(),
                );
                let certs = CertificateDer::pem_file_iter(path)
                    .map_err(|e| format!("the `sslrootcert` file `{shown}` cannot be read: {e}"))?;
                for cert in certs {
                    let cert = cert.map_err(|e| {
                        format!("the `sslrootcert` file `{shown}` is not PEM certificates: {e}")
                    })?;
                    roots.add(cert).map_err(|e| {
                        format!("the `sslrootcert` file `{shown}` holds a certificate rustls refuses: {e}")
                    })?;
                }
                if roots.is_empty() {
                    return Err(format!(
                        "the `sslrootcert` file `{shown}` holds no certificate"
                    ));
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(RustlsConnect(Arc::new(config)))
    }
}

impl<S> MakeTlsConnect<S> for RustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type TlsConnect = RustlsTlsConnect;
    type Error = io::Error;

    fn make_tls_connect(&mut self, domain: &str) -> Result<RustlsTlsConnect, io::Error> {
        let name = rustls::pki_types::ServerName::try_from(domain.to_string())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        Ok(RustlsTlsConnect {
            config: self.0.clone(),
            name,
        })
    }
}

struct RustlsTlsConnect {
    config: Arc<rustls::ClientConfig>,
    name: rustls::pki_types::ServerName<'static>,
}

impl<S> TlsConnect<S> for RustlsTlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<RustlsStream<S>>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            let tls = tokio_rustls::TlsConnector::from(self.config)
                .connect(self.name, stream)
                .await?;
            Ok(RustlsStream(tls))
        })
    }
}

struct RustlsStream<S>(tokio_rustls::client::TlsStream<S>);

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for RustlsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for RustlsStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> TlsStream for RustlsStream<S> {
    /// No channel binding: SCRAM authenticates without it, and the
    /// certificate is verified by the handshake.
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_are_quoted_as_postgresql_reads_them() {
        assert_eq!(quote_table("crm.contacts").unwrap(), "\"crm\".\"contacts\"");
        assert_eq!(quote_table("Contacts").unwrap(), "\"contacts\"");
        assert_eq!(
            quote_table("\"CRM\".\"My \"\"T\"\"\"").unwrap(),
            "\"CRM\".\"My \"\"T\"\"\""
        );
        assert!(quote_table("crm.contacts; drop table x").is_err());
        assert!(quote_table("").is_err());
        assert!(quote_table("a..b").is_err());
    }

    #[test]
    fn urls_are_shown_without_credentials() {
        let root = Path::new("/project");
        let url = SecretString::from(
            "postgres://crm:s3cr%2Ft@db.internal:6543/crm?sslmode=verify-full&sslrootcert=certs/ca.pem&connect_timeout=3",
        );
        let target = Target::parse(&url, "env:CRM_DATABASE_URL", root).expect("parses");
        assert_eq!(target.location, "postgres://db.internal:6543/crm");
        assert_eq!(target.tls, Tls::Verified);
        assert_eq!(
            target.root_cert.as_deref(),
            Some(Path::new("/project/certs/ca.pem"))
        );
        assert_eq!(
            scrub("password s3cr/t or s3cr%2Ft", &target.secrets),
            "password <redacted> or <redacted>"
        );
        let kv = SecretString::from("host=127.0.0.1 port=5 user=u password=pw123 dbname=d");
        let target = Target::parse(&kv, "env:X", root).expect("parses");
        assert_eq!(target.location, "postgres://127.0.0.1:5/d");
        assert_eq!(target.tls, Tls::Off);
        let wrong = SecretString::from("postgres://u:topsecret@h/d?sslmode=sometimes");
        let e = Target::parse(&wrong, "env:X", root).err().expect("refused");
        assert!(!e.contains("topsecret"), "{e}");
        let unknown = SecretString::from("postgres://u:topsecret@h/d?colour=blue");
        let e = Target::parse(&unknown, "env:X", root)
            .err()
            .expect("refused");
        assert!(!e.contains("topsecret") && e.contains("env X"), "{e}");
    }

    #[test]
    fn values_decode_from_the_binary_wire_format() {
        assert_eq!(decode(None, "int"), Ok(Cell::Null));
        assert_eq!(decode(Some(&7i64.to_be_bytes()), "int"), Ok(Cell::Int(7)));
        assert_eq!(
            decode(Some(&2.5f64.to_bits().to_be_bytes()), "double"),
            Ok(Cell::Float(2.5))
        );
        assert_eq!(
            decode(Some(&0i64.to_be_bytes()), "timestamp"),
            Ok(Cell::Ts(PG_EPOCH))
        );
        assert!(decode(Some(&i64::MAX.to_be_bytes()), "timestamp").is_err());
        // text[] {"a", NULL}
        let mut a = Vec::new();
        for v in [1i32, 1, 25, 2, 1] {
            a.extend(v.to_be_bytes());
        }
        a.extend(1i32.to_be_bytes());
        a.push(b'a');
        a.extend((-1i32).to_be_bytes());
        assert_eq!(
            decode(Some(&a), "list<string>"),
            Err("a list with a null item".into())
        );
        let empty = [0u8; 12];
        assert_eq!(decode(Some(&empty), "list<int>"), Ok(Cell::Ints(vec![])));
    }

    #[test]
    fn types_convert_only_without_loss() {
        assert!(conversion(&Type::INT4, "int"));
        assert!(conversion(&Type::INT4, "string"));
        assert!(conversion(&Type::NUMERIC, "double"));
        assert!(!conversion(&Type::NUMERIC, "int"));
        assert!(!conversion(&Type::TEXT, "int"));
        assert!(conversion(&Type::DATE, "timestamp"));
        assert!(conversion(&Type::VARCHAR_ARRAY, "list<string>"));
        assert!(!conversion(&Type::TEXT, "list<string>"));
        assert!(!conversion(&Type::TEXT_ARRAY, "string"));
        assert_eq!(type_name(&Type::INT4_ARRAY), "int4[]");
    }
}
