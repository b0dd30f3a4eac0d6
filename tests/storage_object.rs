//! Object-store file destinations (S3, Azure Blob Storage, GCS) against
//! servers on loopback, started by each test: moto and Azurite
//! (`scripts/test` installs them; a missing one fails the test) and, for
//! GCS, a fake of the XML API written from Google's reference
//! (`support/fakes/gcs.rs`: no emulator in the package registries accepts
//! the XML API uploads object_store sends).
//!
//! One contract, run against each store: what is written is read back byte
//! for byte (a 10 MB object too), names land under the prefix, `put_new`
//! creates only, wrong credentials are `Denied`, a missing bucket is
//! `NotFound`, and a dead endpoint is `Unreachable` within seconds.

#![cfg(feature = "deliver")]

#[path = "support/fake/mod.rs"]
mod fake;
#[path = "support/fakes/gcs.rs"]
mod gcs_fake;
#[path = "support/servers/mod.rs"]
mod servers;

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::time::{Duration, Instant};

use accord::deliver::storage::object::{Multipart, ObjectFileStore};
use accord::deliver::storage::{FileStore, StorageErrorKind};
use accord::plan::SettingPlan;
use secrecy::SecretString;

const GCS_KEY: &str = gcs_fake::KEY_FILE;
/// The same account with a key Google never issued: its tokens are refused.
const GCS_OTHER_KEY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/support/keys/google_service_account_OTHER_TEST_ONLY.json"
);

/// One store under test: how a destination of its type is configured.
struct Target {
    kind: &'static str,
    endpoint: String,
    /// The settings naming the bucket (or account and container), by bucket.
    place: fn(&str) -> Vec<(&'static str, String)>,
    bucket: String,
    good: Vec<(&'static str, String)>,
    /// Credentials the server refuses; `None` when it checks none.
    wrong: Option<Vec<(&'static str, String)>>,
}

impl Target {
    fn store(
        &self,
        bucket: &str,
        prefix: &str,
        secrets: &[(&'static str, String)],
    ) -> ObjectFileStore {
        self.try_store(bucket, prefix, secrets, &self.endpoint)
            .unwrap_or_else(|e| panic!("{}: {e}", self.kind))
    }

    fn try_store(
        &self,
        bucket: &str,
        prefix: &str,
        secrets: &[(&'static str, String)],
        endpoint: &str,
    ) -> Result<ObjectFileStore, accord::deliver::storage::StorageError> {
        let mut settings: BTreeMap<String, SettingPlan> = (self.place)(bucket)
            .into_iter()
            .map(|(k, v)| (k.to_string(), SettingPlan::Text(v)))
            .collect();
        if !prefix.is_empty() {
            settings.insert("prefix".into(), SettingPlan::Text(prefix.into()));
        }
        let mut resolved = BTreeMap::new();
        for (key, value) in secrets {
            settings.insert(
                key.to_string(),
                SettingPlan::Reference(format!("env:TEST_{key}")),
            );
            resolved.insert(key.to_string(), SecretString::from(value.clone()));
        }
        ObjectFileStore::new(self.kind, &settings, &resolved, Some(endpoint))
    }
}

fn s3(moto: &servers::moto::Moto) -> Target {
    Target {
        kind: "s3",
        endpoint: moto.process.url(),
        place: |b| {
            vec![
                ("bucket", b.to_string()),
                ("region", "eu-west-1".to_string()),
            ]
        },
        bucket: moto.bucket.clone(),
        good: vec![
            ("access_key_id", moto.access_key_id.clone()),
            ("secret_access_key", moto.secret_access_key.clone()),
        ],
        wrong: Some(vec![
            ("access_key_id", moto.access_key_id.clone()),
            ("secret_access_key", "not-the-secret".to_string()),
        ]),
    }
}

fn azure(azurite: &servers::azurite::Azurite) -> Target {
    use base64::Engine;
    let wrong_key = base64::engine::general_purpose::STANDARD.encode([7u8; 64]);
    Target {
        kind: "azure_blob",
        endpoint: azurite.endpoint(),
        place: |c| {
            vec![
                ("account", servers::azurite::ACCOUNT.to_string()),
                ("container", c.to_string()),
            ]
        },
        bucket: azurite.container.clone(),
        good: vec![("access_key", servers::azurite::KEY.to_string())],
        wrong: Some(vec![("access_key", wrong_key)]),
    }
}

fn gcs(endpoint: String, bucket: &str) -> Target {
    let key = std::fs::read_to_string(GCS_KEY).expect("test key");
    let other = std::fs::read_to_string(GCS_OTHER_KEY).expect("other test key");
    Target {
        kind: "gcs",
        endpoint,
        place: |b| vec![("bucket", b.to_string())],
        bucket: bucket.to_string(),
        good: vec![("credentials", key)],
        wrong: Some(vec![("credentials", other)]),
    }
}

const MIB: usize = 1024 * 1024;

/// Multipart uploads of files over 5 MiB, in parts of 5 MiB.
const SMALL_PARTS: Multipart = Multipart {
    threshold: 5 * MIB as u64,
    part: 5 * MIB,
};

/// Bytes that differ at every offset, so a truncated or shifted copy fails.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[1] ^ seed)
        .collect()
}

fn contract(target: &Target) {
    let kind = target.kind;
    let store = target.store(&target.bucket, "exports/acme/", &target.good);
    let root = target.store(&target.bucket, "", &target.good);
    assert!(
        store
            .location()
            .ends_with(&format!("{}/exports/acme/", target.bucket)),
        "{kind}: {}",
        store.location()
    );

    // Round trip, small and 10 MB, byte for byte.
    assert_eq!(
        store.size("run-1.csv").unwrap(),
        None,
        "{kind}: nothing yet"
    );
    assert_eq!(store.get("run-1.csv").unwrap(), None, "{kind}: nothing yet");
    store
        .put("run-1.csv", b"id,email\n1,a@example.com\n")
        .unwrap();
    assert_eq!(store.size("run-1.csv").unwrap(), Some(25), "{kind}");
    assert_eq!(
        store.get("run-1.csv").unwrap().as_deref(),
        Some(&b"id,email\n1,a@example.com\n"[..]),
        "{kind}"
    );
    let big = pattern(10 * 1024 * 1024, 3);
    store.put("big.parquet", &big).unwrap();
    assert_eq!(
        store.size("big.parquet").unwrap(),
        Some(big.len() as u64),
        "{kind}"
    );
    assert!(
        store.get("big.parquet").unwrap() == Some(big),
        "{kind}: 10 MB differ"
    );

    // A file over the multipart threshold goes up in parts (5 MiB here,
    // the smallest the stores take: three parts, the last short), one at
    // the threshold in one PUT, and a multipart upload replaces an object;
    // each reads back byte for byte.
    let parted = target
        .store(&target.bucket, "exports/acme/", &target.good)
        .with_multipart(SMALL_PARTS);
    let local = tempfile::tempdir().unwrap();
    for (name, len, seed) in [
        ("parts.csv", 2 * 5 * MIB + 12_345, 5),
        ("one-put.csv", 5 * MIB, 6),
        ("parts.csv", 3 * 5 * MIB + 1, 7),
    ] {
        let bytes = pattern(len, seed);
        let from = local.path().join(name);
        std::fs::write(&from, &bytes).unwrap();
        parted.put_file(name, &from).unwrap();
        assert_eq!(
            store.size(name).unwrap(),
            Some(len as u64),
            "{kind}: {name}"
        );
        assert!(
            store.get(name).unwrap() == Some(bytes),
            "{kind}: {name} of {len} bytes differs"
        );
    }
    let missing = parted
        .put_file("never.csv", &local.path().join("no-such-file"))
        .expect_err("a local file that is not there");
    assert!(
        missing.message.contains("reading the encoded file"),
        "{kind}: {missing}"
    );

    // `put` replaces.
    store.put("run-1.csv", b"replaced").unwrap();
    assert_eq!(
        store.get("run-1.csv").unwrap().as_deref(),
        Some(&b"replaced"[..])
    );

    // Names are under the prefix, and only there.
    assert_eq!(
        root.get("exports/acme/run-1.csv").unwrap().as_deref(),
        Some(&b"replaced"[..]),
        "{kind}: written under the prefix"
    );
    assert_eq!(
        root.size("run-1.csv").unwrap(),
        None,
        "{kind}: not at the root"
    );

    // `put_new` creates only: the first bytes stay.
    assert!(store.put_new("manifest.json", b"first").unwrap(), "{kind}");
    assert!(
        !store.put_new("manifest.json", b"second").unwrap(),
        "{kind}"
    );
    assert_eq!(
        store.get("manifest.json").unwrap().as_deref(),
        Some(&b"first"[..]),
        "{kind}: the first manifest stays"
    );

    // Called from inside a tokio runtime it still works (no nested-runtime panic).
    let outer = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let inside = outer.block_on(async { store.size("manifest.json") });
    assert_eq!(inside.unwrap(), Some(5), "{kind}: from inside a runtime");
    drop(outer);

    // A bucket that does not exist is NotFound, for every operation.
    let missing = target.store("accord-no-such-bucket", "x", &target.good);
    for (op, result) in [
        ("put", missing.put("a", b"1").map(|_| ())),
        ("put_new", missing.put_new("a", b"1").map(|_| ())),
        ("size", missing.size("a").map(|_| ())),
        ("get", missing.get("a").map(|_| ())),
    ] {
        let error = result.expect_err(&format!("{kind}: {op} into a missing bucket"));
        assert_eq!(
            error.kind,
            StorageErrorKind::NotFound,
            "{kind} {op}: {error}"
        );
        assert!(
            error.message.contains("accord-no-such-bucket"),
            "{kind} {op}: {error}"
        );
    }

    // Wrong credentials are Denied, and the message holds no credential.
    if let Some(wrong) = &target.wrong {
        let denied = target.store(&target.bucket, "exports/acme/", wrong);
        for (op, result) in [
            ("put", denied.put("b", b"1").map(|_| ())),
            ("size", denied.size("run-1.csv").map(|_| ())),
            ("get", denied.get("run-1.csv").map(|_| ())),
        ] {
            let error = result.expect_err(&format!("{kind}: {op} with wrong credentials"));
            assert_eq!(error.kind, StorageErrorKind::Denied, "{kind} {op}: {error}");
            for (_, secret) in wrong.iter().chain(&target.good) {
                assert!(
                    !error.message.contains(secret.as_str()),
                    "{kind} {op}: leaks a credential"
                );
            }
        }
    }
}

#[test]
fn s3_on_moto_keeps_the_contract() {
    let moto = servers::moto::Moto::start("accord-test");
    contract(&s3(&moto));
}

#[test]
fn azure_blob_on_azurite_keeps_the_contract() {
    let azurite = servers::azurite::Azurite::start("accord-test");
    contract(&azure(&azurite));
}

#[test]
fn gcs_on_the_xml_api_fake_keeps_the_contract() {
    let (server, fake) = gcs_fake::start(&["accord-test"]);
    contract(&gcs(server.url(), "accord-test"));
    // Nothing landed outside the prefix, nothing in the missing bucket.
    assert_eq!(
        fake.names("accord-test").into_iter().collect::<Vec<_>>(),
        [
            "exports/acme/big.parquet",
            "exports/acme/manifest.json",
            "exports/acme/one-put.csv",
            "exports/acme/parts.csv",
            "exports/acme/run-1.csv"
        ]
    );
    assert_eq!(fake.uploads_in_progress(), 0, "every upload completed");
}

#[test]
fn a_multipart_upload_that_fails_is_aborted_and_leaves_no_object() {
    let (server, fake) = gcs_fake::start(&["accord-test"]);
    let target = gcs(server.url(), "accord-test");
    let store = target
        .store(&target.bucket, "out", &target.good)
        .with_multipart(SMALL_PARTS);
    let local = tempfile::tempdir().unwrap();
    let (small, large) = (local.path().join("small"), local.path().join("large"));
    std::fs::write(&small, pattern(5 * MIB, 1)).unwrap();
    std::fs::write(&large, pattern(12 * MIB, 2)).unwrap();
    store.put("kept.csv", b"before").unwrap();
    fake.refuse_parts
        .store(true, std::sync::atomic::Ordering::SeqCst);
    // At the threshold: one PUT, which parts being refused does not touch.
    store.put_file("small.csv", &small).unwrap();
    let error = store
        .put_file("kept.csv", &large)
        .expect_err("its parts are refused");
    assert_eq!(error.kind, StorageErrorKind::Denied, "{error}");
    assert!(error.message.contains("out/kept.csv"), "{error}");
    assert_eq!(
        fake.uploads_in_progress(),
        0,
        "the failed upload was aborted, its parts dropped"
    );
    assert_eq!(
        store.get("kept.csv").unwrap().as_deref(),
        Some(&b"before"[..]),
        "the object it would have replaced is untouched"
    );
    assert_eq!(
        fake.names("accord-test").into_iter().collect::<Vec<_>>(),
        ["out/kept.csv", "out/small.csv"]
    );
}

/// A loopback port with nothing listening: connections are refused.
fn dead_endpoint() -> String {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("http://127.0.0.1:{port}")
}

#[test]
fn an_unreachable_endpoint_fails_fast_as_unreachable() {
    let key = std::fs::read_to_string(GCS_KEY).expect("test key");
    let targets = [
        Target {
            kind: "s3",
            endpoint: dead_endpoint(),
            place: |b| vec![("bucket", b.to_string())],
            bucket: "accord-test".into(),
            good: vec![
                ("access_key_id", "AKIA".into()),
                ("secret_access_key", "s".into()),
            ],
            wrong: None,
        },
        Target {
            kind: "azure_blob",
            endpoint: format!("{}/{}", dead_endpoint(), servers::azurite::ACCOUNT),
            place: |c| {
                vec![
                    ("account", servers::azurite::ACCOUNT.into()),
                    ("container", c.into()),
                ]
            },
            bucket: "accord-test".into(),
            good: vec![("access_key", servers::azurite::KEY.into())],
            wrong: None,
        },
        Target {
            kind: "gcs",
            endpoint: dead_endpoint(),
            place: |b| vec![("bucket", b.to_string())],
            bucket: "accord-test".into(),
            good: vec![("credentials", key)],
            wrong: None,
        },
    ];
    for target in &targets {
        let store = target.store(&target.bucket, "p", &target.good);
        let started = Instant::now();
        let error = store.put("a.csv", b"1").expect_err("nothing listens");
        let took = started.elapsed();
        assert_eq!(
            error.kind,
            StorageErrorKind::Unreachable,
            "{}: {error}",
            target.kind
        );
        assert!(
            took < Duration::from_secs(20),
            "{}: took {took:?}",
            target.kind
        );
        assert!(error.message.contains("a.csv"), "{}: {error}", target.kind);
        let error = store.size("a.csv").expect_err("nothing listens");
        assert_eq!(
            error.kind,
            StorageErrorKind::Unreachable,
            "{}: {error}",
            target.kind
        );
    }
}

/// How the client reads GCS refusals, whatever the request: 401 (a token
/// Google did not issue; the XML API fake answers it too) and 403 (a key
/// without access to the bucket, which the fake never answers), each with
/// the XML API's error body, from a loopback server that says just that.
#[test]
fn gcs_refusals_are_denied() {
    for (status, code) in [(401, "AuthenticationRequired"), (403, "AccessDenied")] {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let body =
            format!("<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code></Error>");
        let answer = format!(
            "HTTP/1.1 {status} Refused\r\nContent-Type: application/xml\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let server = std::thread::spawn(move || {
            use std::io::{Read, Write};
            listener.set_nonblocking(false).unwrap();
            // One refusal per request the client makes (it does not retry 4xx).
            for stream in listener.incoming().take(1) {
                let mut stream = stream.unwrap();
                let mut buf = [0u8; 65536];
                let _ = stream.read(&mut buf);
                stream.write_all(answer.as_bytes()).unwrap();
            }
        });
        let key = std::fs::read_to_string(GCS_KEY).expect("test key");
        let target = Target {
            kind: "gcs",
            endpoint: endpoint.clone(),
            place: |b| vec![("bucket", b.to_string())],
            bucket: "accord-test".into(),
            good: vec![("credentials", key)],
            wrong: None,
        };
        let store = target.store("accord-test", "p", &target.good);
        let error = store.put("a.csv", b"1").expect_err("refused");
        assert_eq!(error.kind, StorageErrorKind::Denied, "{status}: {error}");
        assert!(error.message.contains(code), "{status}: {error}");
        server.join().unwrap();
    }
}
