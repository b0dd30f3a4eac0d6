//! `accord run` reading sources from PostgreSQL end to end: the built binary
//! against a PostgreSQL server from Debian's packages started on loopback
//! (`support/servers/postgres.rs`), as a user runs it.
//!
//! What it proves:
//! - the same rows in PostgreSQL and in local files give the same audiences
//!   and byte-identical exports, for the small project in
//!   `tests/source_projects/crm_accounts/` (a table of typed columns: an
//!   enum, `varchar[]`, `numeric`, `integer`, `timestamptz`) and for the
//!   example project (`specs/`) with its people read from a table and its
//!   opportunities from a query;
//! - bad rows are reported as they are for files, with the same reasons,
//!   located as `crm.accounts:row N`;
//! - a schema whose columns the table lacks or holds in another type stops
//!   the run with R0013 naming the columns; an undeclared column is R0005;
//! - a wrong password, a missing database or table, an unreachable server
//!   and an unverifiable certificate stop the run with R0011 naming the
//!   source and `postgres://HOST:PORT/DB`;
//! - TLS (`sslmode=require` with `sslrootcert`) reads the same rows;
//! - no secret (the password, the URL) appears in stdout, stderr, the run
//!   log or anything under `.accord/`.
#![cfg(feature = "engine")]

#[path = "support/project.rs"]
mod project;
#[path = "support/servers/mod.rs"]
mod servers;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use servers::postgres::{self, Postgres};

const NOW: &str = "2026-11-28T12:00:00Z";
const URL_VAR: &str = "ACCORD_TEST_CRM_DATABASE_URL";

/// The small project, with its source read from PostgreSQL through
/// `source` (the TOML lines after `schema = ...`); `None`: from its CSV.
fn crm_project(source: Option<&str>) -> tempfile::TempDir {
    let temp = project::copy_of("tests/source_projects/crm_accounts", "pgsrc");
    if let Some(source) = source {
        let spec = temp.path().join("accord.toml");
        let text = std::fs::read_to_string(&spec)
            .expect("read")
            .replace("path = \"data/accounts.csv\"\n", &format!("{source}\n"));
        std::fs::write(&spec, text).expect("write");
    }
    temp
}

/// A server with the small project's tables loaded (`load.sql`).
fn server() -> Postgres {
    let server = postgres::start();
    load(&server);
    server
}

fn load(server: &Postgres) {
    server.psql("postgres", "CREATE DATABASE crm");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/source_projects/crm_accounts");
    server.psql_file(&dir, "crm", "load.sql");
}

/// `accord run DIR --env dev --now NOW --out DIR/delivered`, with the
/// connection URL in the environment.
fn run(dir: &Path, url: Option<&str>, extra: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_accord"));
    cmd.arg("run")
        .arg(dir)
        .args(["--env", "dev", "--now", NOW, "--out"])
        .arg(dir.join("delivered"))
        // Every run is at NOW: deliver each, whatever the schedule says.
        .arg("--all")
        .args(extra)
        .env("NO_COLOR", "1")
        .env_remove("ACCORD_FAULT_AFTER");
    match url {
        Some(url) => cmd.env(URL_VAR, url),
        None => cmd.env_remove(URL_VAR),
    };
    cmd.output().expect("accord runs")
}

fn text(out: &Output) -> String {
    format!(
        "{}\n--- stderr\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The last run's report (the last line of `.accord/runs.jsonl`).
fn report(dir: &Path) -> serde_json::Value {
    let log = std::fs::read_to_string(dir.join(".accord/runs.jsonl")).expect("the run log");
    serde_json::from_str(log.lines().last().expect("a run")).expect("a JSON report")
}

/// Delivered files, run ids replaced (they hash the plan, which names the
/// source differently).
fn delivered(dir: &Path) -> BTreeMap<String, String> {
    let ids = regex::Regex::new(r"\d{8}T\d{6}Z-[0-9a-f]{8}").expect("pattern");
    project::delivered(dir)
        .into_iter()
        .map(|(name, bytes)| {
            (
                ids.replace_all(&name, "<run>").into_owned(),
                ids.replace_all(&String::from_utf8_lossy(&bytes), "<run>")
                    .into_owned(),
            )
        })
        .collect()
}

/// Asserts that no secret appears in the output or anything the run wrote.
fn assert_no_secret(dir: &Path, out: &Output, secrets: &[&str]) {
    let mut places = vec![("output".to_string(), text(out))];
    for entry in walkdir::WalkDir::new(dir.join(".accord"))
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
    {
        let bytes = std::fs::read(entry.path()).expect("read");
        places.push((
            entry.path().display().to_string(),
            String::from_utf8_lossy(&bytes).into_owned(),
        ));
    }
    for (place, text) in places {
        for secret in secrets {
            assert!(
                !text.contains(secret),
                "{place} holds a secret ({secret}):\n{text}"
            );
        }
    }
}

/// The reasons of bad rows, without their locations (`file:line: ` or
/// `table:row N: `).
fn reasons(report: &serde_json::Value, source: &str) -> Vec<String> {
    report["sources"][source]["bad_row_samples"]
        .as_array()
        .expect("samples")
        .iter()
        .map(|s| {
            let s = s.as_str().expect("text");
            s.split_once(": ").map_or(s, |(_, r)| r).to_string()
        })
        .collect()
}

const TABLE_SOURCE: &str =
    "postgres = { env = \"ACCORD_TEST_CRM_DATABASE_URL\" }\ntable = \"crm.accounts\"";

#[test]
fn a_table_reads_as_its_csv_does() {
    let server = server();
    let url = server.url("crm");

    let files = crm_project(None);
    let out = run(files.path(), None, &[]);
    assert!(out.status.success(), "{}", text(&out));
    let from_files = report(files.path());

    let pg = crm_project(Some(TABLE_SOURCE));
    let out = run(pg.path(), Some(&url), &[]);
    assert!(out.status.success(), "{}", text(&out));
    let from_pg = report(pg.path());
    let shown = text(&out);

    assert_eq!(delivered(files.path()), delivered(pg.path()));
    assert!(!delivered(pg.path()).is_empty());
    assert_eq!(from_files["audiences"], from_pg["audiences"], "{shown}");
    let (f, p) = (
        &from_files["sources"]["accounts"],
        &from_pg["sources"]["accounts"],
    );
    for key in ["rows", "bad_rows", "newest", "freshness"] {
        assert_eq!(f[key], p[key], "{key}: {shown}");
    }
    assert_eq!(p["rows"], 6, "{shown}");
    assert_eq!(p["freshness"], "fresh", "{shown}");
    // The same bad rows for the same reasons, located in the table.
    assert_eq!(
        reasons(&from_files, "accounts"),
        reasons(&from_pg, "accounts")
    );
    assert_eq!(
        p["bad_row_samples"],
        serde_json::json!([
            "crm.accounts:row 5: duplicate key `A1`",
            "crm.accounts:row 6: missing key `accountId`",
            "crm.accounts:row 7: `platinum` is not one of the values of `tier` (gold, silver, bronze)",
        ]),
        "{shown}"
    );
    assert_eq!(
        p["files"],
        serde_json::json!([format!(
            "postgres://127.0.0.1:{}/crm (table crm.accounts)",
            server.port()
        )])
    );
    // The column no field declares is named (R0005), once.
    assert!(
        shown.contains("warning[R0005]: source `accounts`: crm.accounts has a column `notes`"),
        "{shown}"
    );
    assert!(shown.contains("warning[R0010]"), "{shown}");
    assert_no_secret(pg.path(), &out, &[&server.password, &url]);
    // Sources smaller than a spill batch are held: no spill folder (the
    // delivery's spool folder is gone too).
    for dir in [files.path(), pg.path()] {
        let left = std::fs::read_dir(dir.join(".accord/tmp")).map_or(0, |d| d.count());
        assert_eq!(left, 0, "{}", dir.display());
    }
}

#[test]
fn a_query_and_freshness_column_read_as_the_table_does() {
    let server = server();
    let url = server.url("crm");
    let table = crm_project(Some(TABLE_SOURCE));
    let out = run(table.path(), Some(&url), &[]);
    assert!(out.status.success(), "{}", text(&out));

    // A query may rename and cast; only the schema's fields are read, and
    // freshness is judged on the `freshness_column` it names.
    let query = crm_project(Some(
        "postgres = { env = \"ACCORD_TEST_CRM_DATABASE_URL\" }\n\
         query = \"SELECT a.*, a.notes AS remarks FROM crm.accounts a;\"\n\
         freshness_column = \"updatedAt\"",
    ));
    let out = run(query.path(), Some(&url), &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(delivered(table.path()), delivered(query.path()));
    let (t, q) = (report(table.path()), report(query.path()));
    let source = &q["sources"]["accounts"];
    assert_eq!(
        source["newest"],
        t["sources"]["accounts"]["newest"],
        "{}",
        text(&out)
    );
    assert_eq!(
        source["bad_row_samples"][0],
        "query:row 5: duplicate key `A1`"
    );
}

#[test]
fn the_example_project_reads_people_and_opportunities_from_postgresql() {
    let server = postgres::start();
    server.psql("postgres", "CREATE DATABASE crm");
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("specs");
    server.psql_file(
        &data,
        "crm",
        &write_temp_sql(
            "CREATE SCHEMA crm;\n\
             CREATE TABLE crm.contacts (\"personId\" text, \"accountId\" text, email text, phone text,\n\
               \"firstName\" text, \"lastName\" text, \"jobTitle\" text, seniority text, department text,\n\
               \"emailConsent\" char(1), \"adsConsent\" char(1), \"salesforceContactId\" text,\n\
               \"dynamicsContactId\" text, \"createdAt\" timestamptz);\n\
             \\copy crm.contacts FROM 'data/people.csv' CSV HEADER\n\
             CREATE TABLE crm.opportunities (id text, \"accountId\" text, name text, stage text,\n\
               product text, amount numeric(14, 2), \"createdAt\" timestamptz, \"closeDate\" timestamp);\n\
             \\copy crm.opportunities FROM 'data/opportunities.csv' CSV HEADER\n",
        ),
    );
    let url = server.url("crm");

    let files = project::scratch("pgsrc-files");
    let out = run(files.path(), None, &[]);
    let files_text = text(&out);

    let pg = project::scratch("pgsrc-pg");
    let sources = pg.path().join("sources.toml");
    // The `path` lines, however they are aligned, become the database's.
    let spec: String = std::fs::read_to_string(&sources)
        .expect("read")
        .lines()
        .map(|line| {
            if line.starts_with("path") && line.contains("\"data/people.csv\"") {
                "postgres = { env = \"ACCORD_TEST_CRM_DATABASE_URL\" }\ntable = \"crm.contacts\"\n"
                    .to_string()
            } else if line.starts_with("path") && line.contains("\"data/opportunities.csv\"") {
                "postgres = { env = \"ACCORD_TEST_CRM_DATABASE_URL\" }\n\
                 query = \"SELECT id AS \\\"opportunityId\\\", * FROM crm.opportunities ORDER BY id\"\n"
                    .to_string()
            } else {
                format!("{line}\n")
            }
        })
        .collect();
    assert!(spec.contains("crm.contacts") && spec.contains("crm.opportunities"));
    std::fs::write(&sources, spec).expect("write");
    let out = run(pg.path(), Some(&url), &[]);
    let pg_text = text(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "files:\n{files_text}\npostgres:\n{pg_text}"
    );

    assert_eq!(delivered(files.path()), delivered(pg.path()));
    let (f, p) = (report(files.path()), report(pg.path()));
    assert_eq!(f["audiences"], p["audiences"]);
    for source in ["crm_contacts", "crm_opportunities"] {
        for key in ["rows", "bad_rows", "newest"] {
            assert_eq!(
                f["sources"][source][key], p["sources"][source][key],
                "{source} {key}"
            );
        }
    }
    assert_no_secret(pg.path(), &out, &[&server.password, &url]);
}

#[test]
fn columns_that_do_not_fit_the_schema_stop_the_run_with_r0013() {
    let server = server();
    let url = server.url("crm");
    let dir = crm_project(Some(
        "postgres = { env = \"ACCORD_TEST_CRM_DATABASE_URL\" }\ntable = \"crm.accounts_wrong\"",
    ));
    let out = run(dir.path(), Some(&url), &[]);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(2), "{shown}");
    let port = server.port();
    assert!(
        shown.contains(&format!(
            "error[R0013]: source `accounts` (postgres://127.0.0.1:{port}/crm, table crm.accounts_wrong): \
             the columns do not fit schema `account`: column `employees` is text, which does not convert to an int; \
             column `tier` is missing (a string expected)"
        )),
        "{shown}"
    );
    assert!(shown.contains("--> table crm.accounts_wrong"), "{shown}");
    assert!(delivered(dir.path()).is_empty());
    assert_no_secret(dir.path(), &out, &[&server.password, &url]);
}

#[test]
fn unreachable_refused_and_missing_are_r0011_naming_the_source() {
    let server = server();
    let port = server.port();
    let dir = crm_project(Some(TABLE_SOURCE));
    let good = server.url("crm");
    let wrong_password = good.replace(&server.password, "not-the-password-42");
    let cases = [
        (
            wrong_password.clone(),
            format!(
                "source `accounts` (postgres://127.0.0.1:{port}/crm): cannot connect: password authentication failed for user \"accord\""
            ),
        ),
        (
            server.url("nothere"),
            format!(
                "source `accounts` (postgres://127.0.0.1:{port}/nothere): cannot connect: database \"nothere\" does not exist"
            ),
        ),
        (
            format!("postgresql://accord:{}@127.0.0.1:9/crm", server.password),
            "source `accounts` (postgres://127.0.0.1:9/crm): cannot connect: ".to_string(),
        ),
    ];
    for (url, expected) in &cases {
        let out = run(dir.path(), Some(url), &[]);
        let shown = text(&out);
        assert_eq!(out.status.code(), Some(2), "{shown}");
        assert!(
            shown.contains(&format!("error[R0011]: {expected}")),
            "{shown}"
        );
        assert_no_secret(
            dir.path(),
            &out,
            &[&server.password, url, "not-the-password-42"],
        );
    }
    // A table that does not exist.
    let missing = crm_project(Some(
        "postgres = { env = \"ACCORD_TEST_CRM_DATABASE_URL\" }\ntable = \"crm.nothing\"",
    ));
    let out = run(missing.path(), Some(&good), &[]);
    let shown = text(&out);
    assert!(
        shown.contains(&format!(
            "error[R0011]: source `accounts` (postgres://127.0.0.1:{port}/crm): cannot read table crm.nothing: relation \"crm.nothing\" does not exist"
        )),
        "{shown}"
    );
    // The URL not set: named by its reference.
    let out = run(dir.path(), None, &[]);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(2), "{shown}");
    assert!(
        shown.contains(
            "source `accounts`: the secret `postgres` is not set (env ACCORD_TEST_CRM_DATABASE_URL)"
        ),
        "{shown}"
    );
}

#[test]
fn tls_reads_the_same_rows_and_refuses_an_unknown_certificate() {
    let server = postgres::with_tls();
    load(&server);
    let ca = server.ca_pem.clone().expect("a CA");
    let dir = crm_project(Some(TABLE_SOURCE));
    std::fs::copy(&ca, dir.path().join("ca.pem")).expect("copy the CA");
    // `tls_only` may log in only over TLS (pg_hba.conf).
    let base = format!(
        "postgresql://tls_only:{}@127.0.0.1:{}/crm",
        server.password,
        server.port()
    );
    server.psql("crm", "GRANT USAGE ON SCHEMA crm TO tls_only; GRANT SELECT ON ALL TABLES IN SCHEMA crm TO tls_only");

    let out = run(
        dir.path(),
        Some(&format!("{base}?sslmode=require&sslrootcert=ca.pem")),
        &[],
    );
    assert!(out.status.success(), "{}", text(&out));
    let plain = crm_project(None);
    let files = run(plain.path(), None, &[]);
    assert!(files.status.success(), "{}", text(&files));
    assert_eq!(delivered(plain.path()), delivered(dir.path()));

    // Without TLS the server refuses the user; with TLS but Mozilla's
    // roots the certificate is unknown: both R0011.
    for url in [base.clone(), format!("{base}?sslmode=verify-full")] {
        let out = run(dir.path(), Some(&url), &[]);
        let shown = text(&out);
        assert_eq!(out.status.code(), Some(2), "{shown}");
        assert!(shown.contains("error[R0011]: source `accounts`"), "{shown}");
        assert_no_secret(dir.path(), &out, &[&server.password, &url]);
    }
}

/// Reading many rows from PostgreSQL against the same rows from a local
/// CSV file: prints the read phase's rows/s of each and their ratio
/// (`ACCORD_PG_BENCH_ROWS`, 100,000 by default: more than a spill batch,
/// so both are streamed from spill files, and deliver the same).
#[test]
fn benchmark_postgresql_against_a_local_file() {
    let rows: usize = std::env::var("ACCORD_PG_BENCH_ROWS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(100_000);
    let server = server();
    server.psql(
        "crm",
        &format!(
            "CREATE TABLE crm.many AS SELECT 'K' || g AS \"accountId\", 'name ' || g AS name,\n\
             (g % 5000)::int AS employees, (ARRAY['gold','silver','bronze'])[1 + g % 3]::text AS tier,\n\
             ARRAY['t' || (g % 7)]::text[] AS tags, (g % 1000)::float8 AS revenue, g % 2 = 0 AS active,\n\
             timestamptz '2026-11-27 00:00:00+00' - (g % 1000) * interval '1 minute' AS \"updatedAt\"\n\
             FROM generate_series(1, {rows}) AS g"
        ),
    );
    let csv = tempfile::Builder::new()
        .prefix("accord-pgsrc-bench")
        .tempdir()
        .expect("temp");
    let csv_path = csv.path().join("many.csv");
    server.psql(
        "crm",
        &format!(
            "\\copy (SELECT \"accountId\", name, employees, tier, array_to_string(tags, '|') AS tags, revenue, \
             CASE WHEN active THEN 'true' ELSE 'false' END AS active, \
             to_char(\"updatedAt\" AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS \"updatedAt\" FROM crm.many) \
             TO '{}' CSV HEADER",
            csv_path.display()
        ),
    );
    let url = server.url("crm");
    let read_seconds = |source: &str| {
        let dir = crm_project(Some(source));
        std::fs::copy(&csv_path, dir.path().join("data/many.csv")).expect("copy");
        let out = run(dir.path(), Some(&url), &[]);
        assert!(out.status.success(), "{}", text(&out));
        let r = report(dir.path());
        assert_eq!(r["sources"]["accounts"]["rows"], rows, "{}", text(&out));
        // Spilled, and the spill files removed once the run ended.
        let tmp = dir.path().join(".accord/tmp");
        let left = std::fs::read_dir(&tmp).expect("the spill folder").count();
        assert_eq!(left, 0, "{}", tmp.display());
        let seconds = r["phases_ms"]["read"].as_f64().expect("a read phase") / 1000.0;
        (seconds, delivered(dir.path()))
    };
    let (pg_s, from_pg) =
        read_seconds("postgres = { env = \"ACCORD_TEST_CRM_DATABASE_URL\" }\ntable = \"crm.many\"");
    let (csv_s, from_csv) = read_seconds("path = \"data/many.csv\"");
    assert_eq!(from_pg, from_csv);
    assert!(!from_pg.is_empty());
    println!(
        "read {rows} rows: PostgreSQL {pg_s:.3}s ({:.0} rows/s), local CSV {csv_s:.3}s ({:.0} rows/s); \
         PostgreSQL takes {:.2}x the time of the CSV",
        rows as f64 / pg_s.max(0.001),
        rows as f64 / csv_s.max(0.001),
        pg_s / csv_s.max(0.001)
    );
}

/// A SQL file in a temporary folder that lives as long as the test binary.
fn write_temp_sql(sql: &str) -> String {
    let path = std::env::temp_dir().join(format!("accord-pgsrc-{}.sql", std::process::id()));
    std::fs::write(&path, sql).expect("write SQL");
    path.display().to_string()
}
