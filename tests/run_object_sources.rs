//! Sources in object stores (`s3://`, `az://`), end to end: the built
//! binary runs a project whose sources read a bucket on a server the test
//! starts on loopback (moto's S3, Azurite), against the same project
//! reading the same files from local disk.
//!
//! What it proves:
//! - the example project (JSONL and CSV files, a glob, a folder), its data
//!   uploaded to S3 and to Azure, gives the same audiences, the same
//!   deliveries byte for byte and the same source reports (rows, bad rows
//!   and their samples, files named by their URI) as read locally;
//! - a Parquet project read from S3 reads only the columns the plan needs
//!   (the report names them and the bytes fetched, fewer than the objects
//!   hold), with the same audiences and the same bad rows as locally;
//! - wrong credentials, an unreachable endpoint and a missing bucket stop
//!   the run with R0011 naming the source and where it reads; no object
//!   matching is an error naming the source; no secret appears in stdout,
//!   stderr or anything the run writes.
#![cfg(feature = "engine")]

#[path = "support/project.rs"]
mod project;
#[path = "support/servers/mod.rs"]
mod servers;

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Int64Array, StringArray, TimestampMicrosecondArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::file::properties::WriterProperties;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use servers::azurite::{self, Azurite};
use servers::moto::Moto;

use project::NOW;

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(future)
}

fn s3_client(moto: &Moto) -> Arc<dyn ObjectStore> {
    Arc::new(
        object_store::aws::AmazonS3Builder::new()
            .with_bucket_name(&moto.bucket)
            .with_region("us-east-1")
            .with_endpoint(moto.process.url())
            .with_allow_http(true)
            .with_access_key_id(&moto.access_key_id)
            .with_secret_access_key(&moto.secret_access_key)
            .build()
            .expect("s3 client"),
    )
}

fn azure_client(azurite: &Azurite) -> Arc<dyn ObjectStore> {
    Arc::new(
        object_store::azure::MicrosoftAzureBuilder::new()
            .with_account(azurite::ACCOUNT)
            .with_access_key(azurite::KEY)
            .with_container_name(&azurite.container)
            .with_endpoint(azurite.endpoint())
            .with_allow_http(true)
            .build()
            .expect("azure client"),
    )
}

/// Uploads every file under `dir/data` as `data/...`, plus a writer's
/// marker and a hidden temporary object that a folder or `**` must skip.
fn upload(store: &Arc<dyn ObjectStore>, dir: &Path) {
    block_on(async {
        for entry in walkdir::WalkDir::new(dir.join("data")).sort_by_file_name() {
            let entry = entry.expect("walk");
            if !entry.file_type().is_file() {
                continue;
            }
            let rel = entry
                .path()
                .strip_prefix(dir)
                .expect("inside")
                .to_string_lossy()
                .replace('\\', "/");
            let bytes = std::fs::read(entry.path()).expect("read");
            store
                .put(&ObjectPath::from(rel.as_str()), bytes.into())
                .await
                .expect("upload");
        }
        for junk in [
            "data/webinar_attended/_SUCCESS",
            "data/email_opened/.part-0.jsonl",
        ] {
            store
                .put(&ObjectPath::from(junk), b"not data".to_vec().into())
                .await
                .expect("upload");
        }
    });
}

/// Points every `path = "data/..."` of the project's specs at `base/data/...`
/// and adds `extra` (endpoint, credentials) to each source.
fn point_sources(dir: &Path, file: &str, base: &str, extra: &str) {
    let spec = dir.join(file);
    let text = std::fs::read_to_string(&spec).expect("read specs");
    let mut out = String::new();
    let mut pointed = 0;
    for line in text.lines() {
        let local = line
            .split_once('=')
            .filter(|(key, _)| key.trim() == "path")
            .and_then(|(_, value)| value.trim().strip_prefix("\"data/"));
        match local {
            Some(rest) => {
                pointed += 1;
                out.push_str(&format!("path = \"{base}/data/{rest}\n{extra}\n"));
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    assert!(pointed > 0, "no `path = \"data/...\"` in {file}");
    std::fs::write(spec, out).expect("write specs");
}

fn run(dir: &Path, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_accord"));
    cmd.arg("run")
        .arg(dir)
        .args(["--env", "dev", "--now", NOW, "--format", "json", "--out"])
        .arg(dir.join("delivered"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("accord runs")
}

fn report(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON report ({e}):\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// The source reports with object names made local (`s3://b/data/x` ->
/// `data/x`) and what only object sources report left out.
fn sources_as_local(report: &serde_json::Value, base: &str) -> serde_json::Value {
    let mut sources = report["sources"].clone();
    let text = serde_json::to_string(&sources)
        .expect("json")
        .replace(&format!("{base}/"), "");
    sources = serde_json::from_str(&text).expect("json");
    for (_, s) in sources.as_object_mut().expect("sources").iter_mut() {
        let s = s.as_object_mut().expect("a source");
        s.remove("bytes_read");
        s.remove("columns_checked");
    }
    sources
}

/// The source reports of a local and a remote run agree, but where the
/// data holds no timestamp: there the remote one's newest is its newest
/// object's time (the local one has none).
fn assert_same_sources(local: &serde_json::Value, remote: &serde_json::Value, base: &str) {
    let (l, mut r) = (
        sources_as_local(local, base),
        sources_as_local(remote, base),
    );
    for (name, source) in l.as_object().expect("sources") {
        if source["newest"].is_null() {
            let theirs = &mut r[name];
            assert!(theirs["newest"].is_string(), "{name}: {theirs}");
            theirs["newest"] = serde_json::Value::Null;
            theirs["freshness"] = source["freshness"].clone();
            assert_eq!(
                theirs["freshness_basis"], "object modification time",
                "{name}: {theirs}"
            );
            theirs
                .as_object_mut()
                .expect("a source")
                .remove("freshness_basis");
        }
    }
    assert_eq!(l, r);
}

/// The example project, its sample data with one bad row added, in a
/// scratch folder.
fn example_project(tag: &str) -> tempfile::TempDir {
    let temp = project::scratch(tag);
    let people = temp.path().join("data/people.csv");
    let mut text = std::fs::read_to_string(&people).expect("people");
    text.push_str(
        "P-999999,ACC-000001,x@example.com,,X,Y,Z,Director,Engineering,y,y,,,not-a-time\n",
    );
    std::fs::write(people, text).expect("people");
    temp
}

/// Local and remote runs of the same project: same audiences, same
/// deliveries, same source reports.
fn assert_same_run(local: &Path, remote: &Path, remote_out: &Output, base: &str) {
    let local_out = run(local, &[]);
    let (l, r) = (report(&local_out), report(remote_out));
    assert_eq!(
        local_out.status.code(),
        remote_out.status.code(),
        "{}",
        String::from_utf8_lossy(&remote_out.stderr)
    );
    assert_eq!(l["audiences"], r["audiences"]);
    assert!(
        l["audiences"].as_object().is_some_and(|a| !a.is_empty()),
        "{l}"
    );
    assert_same_sources(&l, &r, base);
    let bad = &r["sources"]["crm_contacts"];
    assert_eq!(bad["bad_rows"], 1, "{bad}");
    let sample = bad["bad_row_samples"][0].as_str().unwrap_or("");
    assert!(
        sample.starts_with(&format!("{base}/data/people.csv:")),
        "{sample}"
    );
    assert!(
        r["sources"]["crm_contacts"]["bytes_read"]
            .as_u64()
            .unwrap_or(0)
            > 0
    );
    let delivered_local = project::delivered(local);
    assert!(!delivered_local.is_empty());
    assert_eq!(delivered_local, project::delivered(remote));
}

#[test]
fn the_example_project_reads_the_same_from_s3_as_from_disk() {
    let moto = Moto::start("lake");
    let local = example_project("objsrc-local");
    upload(&s3_client(&moto), local.path());
    let remote = example_project("objsrc-s3");
    let base = format!("s3://{}", moto.bucket);
    point_sources(
        remote.path(),
        "sources.toml",
        &base,
        &format!(
            "endpoint = \"{}\"\naccess_key_id = {{ env = \"TEST_S3_KEY_ID\" }}\nsecret_access_key = {{ env = \"TEST_S3_SECRET\" }}",
            moto.process.url()
        ),
    );
    let out = run(
        remote.path(),
        &[
            ("TEST_S3_KEY_ID", &moto.access_key_id),
            ("TEST_S3_SECRET", &moto.secret_access_key),
        ],
    );
    assert_same_run(local.path(), remote.path(), &out, &base);
    assert_no_secret(&out, remote.path(), &[&moto.secret_access_key]);
}

#[test]
fn the_example_project_reads_the_same_from_azure_as_from_disk() {
    let azurite = Azurite::start("lake");
    let local = example_project("objsrc-local");
    upload(&azure_client(&azurite), local.path());
    let remote = example_project("objsrc-az");
    let base = format!("az://{}/{}", azurite::ACCOUNT, azurite.container);
    point_sources(
        remote.path(),
        "sources.toml",
        &base,
        &format!(
            "endpoint = \"{}\"\naccess_key = {{ env = \"TEST_AZURE_KEY\" }}",
            azurite.endpoint()
        ),
    );
    let out = run(remote.path(), &[("TEST_AZURE_KEY", azurite::KEY)]);
    assert_same_run(local.path(), remote.path(), &out, &base);
    assert_no_secret(&out, remote.path(), &[azurite::KEY]);
}

/// No secret in stdout, stderr or any file the run wrote (`.accord/`:
/// the report log, run folders).
fn assert_no_secret(out: &Output, dir: &Path, secrets: &[&str]) {
    let mut texts = vec![
        (
            "stdout".to_string(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        ),
        (
            "stderr".to_string(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ),
    ];
    for entry in walkdir::WalkDir::new(dir.join(".accord")) {
        let entry = entry.expect("walk");
        if entry.file_type().is_file() {
            let bytes = std::fs::read(entry.path()).expect("read");
            texts.push((
                entry.path().display().to_string(),
                String::from_utf8_lossy(&bytes).into_owned(),
            ));
        }
    }
    for (name, text) in texts {
        for secret in secrets {
            assert!(!text.contains(secret), "a secret in {name}:\n{text}");
        }
    }
}

// --- Parquet: only the columns the plan needs -------------------------

const PARQUET_SPECS: &str = r#"[project]
name = "lake"
format = 1

[environment.dev]
enforcement = "warn"

[schema.account]
class = "account"
key = "accountId"
[schema.account.fields]
accountId = { type = "string", identity = "crm_account_id" }
industry  = { type = "string", values = ["Software", "Retail"] }
employees = "int"
notes     = "string"
updatedAt = "timestamp"

[schema.person]
class = "person"
key = "personId"
[schema.person.fields]
personId  = "string"
accountId = "string"
seniority = "string"
bio       = "string"
[schema.person.links.account]
to = "account"
by = "accountId"
reverse = "people"

[source.accounts]
schema = "account"
path = "@BASE@data/accounts.parquet"
max_age = "2d"
@EXTRA@

[source.people]
schema = "person"
path = "@BASE@data/people/**"
format = "parquet"
@EXTRA@

[audience.B2B_Large_Software]
rule = 'account.industry == "Software" && account.employees >= 500'

[audience.B2B_With_Directors]
rule = 'account.people.exists(p, p.seniority == "Director")'

[destination.files]
type = "filesystem"
path = "out"
format = "csv"

[activation.large_files]
destination = "files"
audiences = ["B2B_Large_Software", "B2B_With_Directors"]
schedule = "daily@02:00"
export = "full"
[activation.large_files.map]
accountId = "account.accountId"
"#;

fn strings(v: Vec<Option<String>>) -> ArrayRef {
    Arc::new(StringArray::from(v))
}

fn write_parquet(path: &Path, batch: &RecordBatch) {
    std::fs::create_dir_all(path.parent().expect("a folder")).expect("mkdir");
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(500))
        .build();
    let file = std::fs::File::create(path).expect("create");
    let mut writer = ArrowWriter::try_new(file, batch.schema(), Some(props)).expect("writer");
    writer.write(batch).expect("write");
    writer.close().expect("close");
}

/// 2,000 accounts (a long unread `notes` column; one account repeated,
/// one industry outside its domain, one note the schema could not type if
/// it were read: it is a string, so nothing) and their people in two files.
fn write_lake(dir: &Path) {
    let n = 2_000;
    let now = accord::time::parse_timestamp(NOW).expect("now");
    let mut ids: Vec<Option<String>> = (0..n).map(|i| Some(format!("A{i:05}"))).collect();
    ids[1_500] = Some("A00007".into());
    let mut industries: Vec<Option<String>> = (0..n)
        .map(|i| Some(["Software", "Retail"][i % 2].to_string()))
        .collect();
    industries[42] = Some("Mining".into());
    let accounts = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("accountId", DataType::Utf8, true),
            Field::new("industry", DataType::Utf8, true),
            Field::new("employees", DataType::Int64, true),
            Field::new("notes", DataType::Utf8, true),
            Field::new(
                "updatedAt",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                true,
            ),
        ])),
        vec![
            strings(ids),
            strings(industries),
            Arc::new(Int64Array::from(
                (0..n as i64).map(|i| (i * 37) % 1_000).collect::<Vec<_>>(),
            )),
            strings(
                (0..n)
                    .map(|i| Some(format!("{i} {}", "long free text ".repeat(40))))
                    .collect(),
            ),
            Arc::new(
                TimestampMicrosecondArray::from(vec![now - 3_600_000_000; n]).with_timezone("UTC"),
            ),
        ],
    )
    .expect("accounts");
    write_parquet(&dir.join("data/accounts.parquet"), &accounts);
    for part in 0..2 {
        let m = 3_000;
        let people = RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new("personId", DataType::Utf8, true),
                Field::new("accountId", DataType::Utf8, true),
                Field::new("seniority", DataType::Utf8, true),
                Field::new("bio", DataType::Utf8, true),
            ])),
            vec![
                strings((0..m).map(|i| Some(format!("P{part}-{i:05}"))).collect()),
                strings(
                    (0..m)
                        .map(|i| Some(format!("A{:05}", (i * 7 + part) % n)))
                        .collect(),
                ),
                strings(
                    (0..m)
                        .map(|i| Some(["Director", "Manager", "VP"][(i + part) % 3].to_string()))
                        .collect(),
                ),
                strings(
                    (0..m)
                        .map(|i| Some(format!("bio {i} {}", "x".repeat(200))))
                        .collect(),
                ),
            ],
        )
        .expect("people");
        write_parquet(
            &dir.join(format!("data/people/part-{part}.parquet")),
            &people,
        );
    }
}

fn parquet_project(base: &str, extra: &str) -> tempfile::TempDir {
    let temp = tempfile::Builder::new()
        .prefix("accord-objsrc-pq-")
        .tempdir()
        .expect("temp dir");
    std::fs::write(
        temp.path().join("accord.toml"),
        PARQUET_SPECS
            .replace("@BASE@", base)
            .replace("@EXTRA@", extra),
    )
    .expect("specs");
    temp
}

#[test]
fn parquet_objects_are_read_by_the_columns_the_plan_needs() {
    let moto = Moto::start("lake");
    let local = parquet_project("", "");
    write_lake(local.path());
    upload(&s3_client(&moto), local.path());
    let base = format!("s3://{}/", moto.bucket);
    let remote = parquet_project(
        &base,
        &format!(
            "endpoint = \"{}\"\naccess_key_id = {{ env = \"TEST_S3_KEY_ID\" }}\nsecret_access_key = {{ env = \"TEST_S3_SECRET\" }}",
            moto.process.url()
        ),
    );
    let out = run(
        remote.path(),
        &[
            ("TEST_S3_KEY_ID", &moto.access_key_id),
            ("TEST_S3_SECRET", &moto.secret_access_key),
        ],
    );
    let r = report(&out);
    let local_out = run(local.path(), &[]);
    let l = report(&local_out);
    assert_eq!(l["audiences"], r["audiences"]);
    assert_same_sources(&l, &r, &format!("s3://{}", moto.bucket));
    assert_eq!(
        project::delivered(local.path()),
        project::delivered(remote.path())
    );

    let accounts = &r["sources"]["accounts"];
    assert_eq!(accounts["rows"], 1_998, "{accounts}");
    assert_eq!(accounts["bad_rows"], 2, "{accounts}");
    assert_eq!(
        accounts["bad_row_samples"],
        serde_json::json!([
            format!(
                "s3://{}/data/accounts.parquet:row 43: `Mining` is not one of the values of `industry` (Software, Retail)",
                moto.bucket
            ),
            format!(
                "s3://{}/data/accounts.parquet:row 1501: duplicate key `A00007`",
                moto.bucket
            ),
        ])
    );
    // `notes` and `bio` are read by nothing: not fetched, not checked.
    assert_eq!(
        accounts["columns_checked"],
        serde_json::json!(["accountId", "employees", "industry", "updatedAt"])
    );
    assert_eq!(
        r["sources"]["people"]["columns_checked"],
        serde_json::json!(["accountId", "personId", "seniority"])
    );
    let size = |p: &str| std::fs::metadata(local.path().join(p)).expect("size").len();
    let fetched = accounts["bytes_read"].as_u64().expect("bytes_read");
    assert!(
        fetched * 2 < size("data/accounts.parquet"),
        "fetched {fetched} of {} bytes",
        size("data/accounts.parquet")
    );
    // Local Parquet reads the same columns.
    assert_eq!(
        l["sources"]["accounts"]["columns_checked"],
        accounts["columns_checked"]
    );
    assert_eq!(
        l["sources"]["accounts"]["bytes_read"],
        serde_json::Value::Null
    );
    assert_eq!(accounts["freshness"], "fresh");
    // The objects were streamed through local copies of the columns read,
    // removed once the run ended.
    let copies = std::fs::read_dir(remote.path().join(".accord/tmp"))
        .expect("the copies' folder")
        .count();
    assert_eq!(copies, 0);
}

// --- Errors ------------------------------------------------------------

/// The small project with its accounts read from `path`, with `extra`.
fn small_remote(path: &str, extra: &str) -> tempfile::TempDir {
    let temp = project::copy_of("tests/run_fixtures/ok_small_project", "objsrc-err");
    let spec = temp.path().join("specs.toml");
    let text = std::fs::read_to_string(&spec).expect("specs");
    assert!(text.contains("path = \"data/accounts.csv\""), "{text}");
    std::fs::write(
        &spec,
        text.replace(
            "path = \"data/accounts.csv\"",
            &format!("path = \"{path}\"\n{extra}"),
        ),
    )
    .expect("specs");
    temp
}

fn stderr_of(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn s3_keys(endpoint: &str) -> String {
    format!(
        "endpoint = \"{endpoint}\"\naccess_key_id = {{ env = \"TEST_S3_KEY_ID\" }}\nsecret_access_key = {{ env = \"TEST_S3_SECRET\" }}"
    )
}

#[test]
fn access_problems_are_r0011_naming_the_source_never_a_secret() {
    let moto = Moto::start("lake");
    let store = s3_client(&moto);
    block_on(async {
        store
            .put(
                &ObjectPath::from("crm/accounts.csv"),
                b"accountId,name,employees,updatedAt\nA1,Acme,5000,2026-11-27T10:00:00Z\n"
                    .to_vec()
                    .into(),
            )
            .await
            .expect("upload")
    });
    let wrong = "wrong-secret-0123456789abcdefWRONG";
    let cases: Vec<(&str, String, String, &str, &str)> = vec![
        (
            "wrong credentials",
            format!("s3://{}/crm/*.csv", moto.bucket),
            s3_keys(&moto.process.url()),
            wrong,
            "the store answered HTTP 403",
        ),
        (
            "unreachable endpoint",
            format!("s3://{}/crm/*.csv", moto.bucket),
            s3_keys(&format!("http://127.0.0.1:{}", servers::free_port())),
            &moto.secret_access_key,
            "cannot connect",
        ),
        (
            "missing bucket",
            "s3://no-such-bucket/crm/".to_string(),
            s3_keys(&moto.process.url()),
            &moto.secret_access_key,
            "NoSuchBucket",
        ),
    ];
    for (what, path, extra, secret, reason) in cases {
        let dir = small_remote(&path, &extra);
        let out = Command::new(env!("CARGO_BIN_EXE_accord"))
            .arg("run")
            .arg(dir.path())
            .args(["--env", "dev", "--now", NOW])
            .env("TEST_S3_KEY_ID", &moto.access_key_id)
            .env("TEST_S3_SECRET", secret)
            .output()
            .expect("accord runs");
        let text = stderr_of(&out);
        assert_eq!(out.status.code(), Some(2), "{what}: {text}");
        assert!(
            text.contains("error[R0011]: source `accounts`"),
            "{what}: {text}"
        );
        let location = path.split('*').next().unwrap_or(&path);
        assert!(text.contains(location), "{what}: {text}");
        assert!(text.contains(reason), "{what}: {text}");
        assert_no_secret(&out, dir.path(), &[secret, &moto.secret_access_key]);
    }

    // No object matches: an error naming the source and the pattern.
    let dir = small_remote(
        &format!("s3://{}/crm/*.parquet", moto.bucket),
        &s3_keys(&moto.process.url()),
    );
    let out = run(
        dir.path(),
        &[
            ("TEST_S3_KEY_ID", &moto.access_key_id),
            ("TEST_S3_SECRET", &moto.secret_access_key),
        ],
    );
    let text = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("source `accounts`"), "{text}");
    assert!(text.contains("no parquet objects"), "{text}");
}
