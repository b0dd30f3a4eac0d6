//! `accord run` delivering files to remote destinations end to end: the
//! small project in `tests/storage_projects/partner/` run by the built
//! binary against servers on loopback (moto for S3, Azurite for Azure Blob,
//! OpenSSH's sshd for SFTP, and for GCS a fake of its XML API, since no
//! emulator in the registries takes XML uploads), as a user runs it.
//!
//! What it proves, per store:
//! - the delivered objects are byte-identical to the local delivery of the
//!   same run (`--out`): same names, same sha256, the same manifest;
//! - killed at every file operation and store write, then run again, the
//!   remote holds every file once and a manifest only over complete files;
//! - wrong credentials, an unreachable endpoint and a host key that is not
//!   the pinned one end that activation `failed` with R0110 naming the
//!   destination, while the other activations of the run still deliver;
//! - a dry run describes the uploads and leaves the remote untouched.
//!
//! The store clients themselves have their own tests (`storage_*.rs`).
#![cfg(feature = "engine")]

#[path = "support/fake/mod.rs"]
mod fake;
#[path = "support/fakes/gcs.rs"]
mod gcs_fake;
#[path = "support/project.rs"]
mod project;
#[path = "support/servers/mod.rs"]
mod servers;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use object_store::ObjectStore;
use object_store::path::Path as ObjectPath;
use servers::azurite::{self, Azurite};
use servers::moto::Moto;
use servers::sshd::{self, Sshd};

const NOW: &str = "2026-11-28T12:00:00Z";
const ACTIVATIONS: [&str; 4] = ["to_s3", "to_azure", "to_gcs", "to_sftp"];
const GCS_BUCKET: &str = "partner-inbound";

/// The four servers, each with a fresh bucket, container or folder.
struct Servers {
    moto: Moto,
    azurite: Azurite,
    gcs: (fake::FakeServer, Arc<gcs_fake::Gcs>),
    sshd: Sshd,
}

fn start() -> Servers {
    Servers {
        moto: Moto::start("partner-inbound"),
        azurite: Azurite::start("partner-inbound"),
        gcs: gcs_fake::start(&[GCS_BUCKET]),
        sshd: sshd::start(),
    }
}

/// A scratch copy of the project, its placeholders filled in: every
/// destination writes under `prefix`, and `edit` changes the spec last.
fn project(servers: &Servers, prefix: &str, edit: &dyn Fn(String) -> String) -> tempfile::TempDir {
    let temp = project::copy_of("tests/storage_projects/partner", "storage");
    let spec = temp.path().join("accord.toml");
    let text = std::fs::read_to_string(&spec)
        .expect("read")
        .replace("@S3_BUCKET@", &servers.moto.bucket)
        .replace("@S3_ENDPOINT@", &servers.moto.process.url())
        .replace("@AZURE_CONTAINER@", &servers.azurite.container)
        .replace("@AZURE_ENDPOINT@", &servers.azurite.endpoint())
        .replace("@GCS_BUCKET@", GCS_BUCKET)
        .replace("@GCS_ENDPOINT@", &servers.gcs.0.url())
        .replace("@SFTP_PORT@", &servers.sshd.port().to_string())
        .replace("@HOST_KEY@", servers.sshd.host_key_ed25519.trim())
        .replace("@SFTP_USER@", &servers.sshd.user)
        .replace("@PREFIX@", prefix);
    std::fs::write(&spec, edit(text)).expect("write");
    std::fs::copy(gcs_fake::KEY_FILE, temp.path().join("gcs_key.json")).expect("gcs key");
    temp
}

fn run(servers: &Servers, dir: &Path, fault_after: Option<u64>, extra: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_accord"));
    cmd.arg("run")
        .arg(dir)
        .args(["--env", "test", "--now", NOW, "--format", "json"])
        // Every run is at NOW: deliver each, whatever the schedule says.
        .arg("--all")
        .args(extra)
        .env("TEST_S3_KEY_ID", &servers.moto.access_key_id)
        .env("TEST_S3_SECRET", &servers.moto.secret_access_key)
        .env("TEST_AZURE_KEY", azurite::KEY)
        .env("TEST_SFTP_KEY", &servers.sshd.client_key);
    match fault_after {
        Some(n) => cmd.env("ACCORD_FAULT_AFTER", n.to_string()),
        None => cmd.env_remove("ACCORD_FAULT_AFTER"),
    };
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

fn status<'a>(report: &'a serde_json::Value, activation: &str) -> &'a str {
    report["activations"][activation]["status"]
        .as_str()
        .unwrap_or_else(|| panic!("no status of {activation}: {report}"))
}

/// What one remote holds under a prefix: name -> bytes.
type Listing = BTreeMap<String, Vec<u8>>;

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(future)
}

fn list_objects(store: Arc<dyn ObjectStore>, prefix: &str) -> Listing {
    block_on(async {
        let root = ObjectPath::from(prefix);
        let listed = store
            .list_with_delimiter(Some(&root))
            .await
            .expect("list objects");
        let mut out = Listing::new();
        for meta in listed.objects {
            let bytes = store
                .get_opts(&meta.location, object_store::GetOptions::default())
                .await
                .expect("get")
                .bytes()
                .await
                .expect("bytes");
            let name = meta
                .location
                .as_ref()
                .strip_prefix(&format!("{prefix}/"))
                .expect("under the prefix")
                .to_string();
            out.insert(name, bytes.to_vec());
        }
        out
    })
}

fn s3(servers: &Servers) -> Arc<dyn ObjectStore> {
    Arc::new(
        object_store::aws::AmazonS3Builder::new()
            .with_bucket_name(&servers.moto.bucket)
            .with_region("us-east-1")
            .with_endpoint(servers.moto.process.url())
            .with_allow_http(true)
            .with_access_key_id(&servers.moto.access_key_id)
            .with_secret_access_key(&servers.moto.secret_access_key)
            .build()
            .expect("s3 client"),
    )
}

fn azure(servers: &Servers) -> Arc<dyn ObjectStore> {
    Arc::new(
        object_store::azure::MicrosoftAzureBuilder::new()
            .with_account(azurite::ACCOUNT)
            .with_container_name(&servers.azurite.container)
            .with_access_key(azurite::KEY)
            .with_endpoint(servers.azurite.endpoint())
            .with_allow_http(true)
            .build()
            .expect("azure client"),
    )
}

fn list_gcs(servers: &Servers, prefix: &str) -> Listing {
    let gcs = &servers.gcs.1;
    gcs.names(GCS_BUCKET)
        .into_iter()
        .filter_map(|name| {
            let short = name.strip_prefix(&format!("{prefix}/"))?.to_string();
            Some((short, gcs.object(GCS_BUCKET, &name).expect("listed")))
        })
        .collect()
}

/// Every file a folder holds, by name (hidden temporary files included).
fn list_folder(dir: &Path) -> Listing {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Listing::new();
    };
    entries
        .map(|e| e.expect("entry"))
        .filter(|e| e.file_type().expect("type").is_file())
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).expect("read"),
            )
        })
        .collect()
}

/// What each activation's destination holds under `prefix`.
fn remote(servers: &Servers, prefix: &str) -> BTreeMap<&'static str, Listing> {
    BTreeMap::from([
        ("to_s3", list_objects(s3(servers), prefix)),
        ("to_azure", list_objects(azure(servers), prefix)),
        ("to_gcs", list_gcs(servers, prefix)),
        ("to_sftp", list_folder(&servers.sshd.files.join(prefix))),
    ])
}

/// The manifest's files: name -> sha256.
fn manifest_files(manifest: &[u8]) -> BTreeMap<String, String> {
    let manifest: serde_json::Value = serde_json::from_slice(manifest).expect("manifest JSON");
    manifest["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| {
            (
                f["name"].as_str().expect("name").to_string(),
                f["sha256"].as_str().expect("sha256").to_string(),
            )
        })
        .collect()
}

fn sha256(bytes: &[u8]) -> String {
    accord::hash::sha256_hex(bytes)
}

/// A reader's view: a manifest names only files that are there, complete.
fn assert_manifests_cover_complete_files(listing: &Listing, context: &str) {
    for (name, bytes) in listing {
        if !name.ends_with(".manifest.json") {
            continue;
        }
        for (file, digest) in manifest_files(bytes) {
            let held = listing
                .get(&file)
                .unwrap_or_else(|| panic!("{context}: manifest {name} names {file}, not there"));
            assert_eq!(sha256(held), digest, "{context}: {file} is not complete");
        }
    }
}

/// The visible files (no temporary ones): exactly a manifest and its files.
fn assert_complete_delivery(listing: &Listing, context: &str) -> usize {
    let visible: BTreeMap<&String, &Vec<u8>> = listing
        .iter()
        .filter(|(n, _)| !n.starts_with('.'))
        .collect();
    let manifests: Vec<&&String> = visible
        .keys()
        .filter(|n| n.ends_with(".manifest.json"))
        .collect();
    assert_eq!(
        manifests.len(),
        1,
        "{context}: one manifest: {:?}",
        visible.keys()
    );
    let files = manifest_files(visible[*manifests[0]]);
    assert_eq!(
        visible.len(),
        files.len() + 1,
        "{context}: every file once, nothing else: {:?}",
        visible.keys()
    );
    assert_manifests_cover_complete_files(listing, context);
    files.len()
}

#[test]
fn remote_deliveries_are_byte_identical_to_local_ones_and_reruns_write_nothing_new() {
    let servers = start();
    let dir = project(&servers, "inbound", &|t| t);
    let out = run(&servers, dir.path(), None, &[]);
    let live = report(&out);
    assert!(out.status.success(), "{live}");
    for activation in ACTIVATIONS {
        assert_eq!(status(&live, activation), "delivered", "{live}");
    }
    assert_eq!(
        live["activations"]["to_s3"]["location"],
        format!("s3://{}/inbound/", servers.moto.bucket)
    );
    let delivered = remote(&servers, "inbound");
    // SFTP splits at 2 rows per file: 4 accounts in 2 files.
    assert_eq!(assert_complete_delivery(&delivered["to_sftp"], "sftp"), 2);
    assert_eq!(assert_complete_delivery(&delivered["to_s3"], "s3"), 1);
    assert_eq!(assert_complete_delivery(&delivered["to_azure"], "azure"), 1);
    assert_eq!(assert_complete_delivery(&delivered["to_gcs"], "gcs"), 1);

    // The same run delivered locally (`--out`) from a fresh copy: the same
    // run ids, so the same names and bytes, manifests included.
    let local_copy = project(&servers, "inbound", &|t| t);
    let out_dir = local_copy.path().join("local");
    let local = run(
        &servers,
        local_copy.path(),
        None,
        &["--out", out_dir.to_str().expect("utf-8")],
    );
    assert!(local.status.success(), "{}", report(&local));
    for (activation, destination) in [
        ("to_s3", "partner_s3"),
        ("to_azure", "partner_azure"),
        ("to_gcs", "partner_gcs"),
        ("to_sftp", "partner_sftp"),
    ] {
        let written = list_folder(&out_dir.join(destination));
        assert_eq!(
            written, delivered[activation],
            "{activation}: the remote holds exactly the local delivery's bytes"
        );
    }

    // A rerun of the same run id finds every file and the manifest there.
    let again = run(&servers, dir.path(), None, &[]);
    assert!(again.status.success(), "{}", report(&again));
    assert_eq!(remote(&servers, "inbound"), delivered);
}

#[test]
fn killed_at_every_step_and_rerun_each_remote_holds_every_file_once_and_the_manifest_last() {
    let servers = start();
    let dir = project(&servers, "crash", &|t| t);
    let mut killed = 0;
    for n in 0.. {
        let out = run(&servers, dir.path(), Some(n), &[]);
        let now = remote(&servers, "crash");
        for (activation, listing) in &now {
            assert_manifests_cover_complete_files(listing, &format!("{activation} after step {n}"));
        }
        if out.status.code().is_some() {
            // The run got past every step: nothing left to kill.
            assert!(out.status.success(), "{}", report(&out));
            break;
        }
        killed += 1;
        assert!(n < 500, "the run never finished");
    }
    assert!(
        killed > 20,
        "only {killed} steps: the crash points are not reached"
    );
    let out = run(&servers, dir.path(), None, &[]);
    assert!(out.status.success(), "{}", report(&out));
    for (activation, listing) in remote(&servers, "crash") {
        assert_complete_delivery(&listing, activation);
    }
}

#[test]
fn a_failing_store_fails_its_activation_alone_with_r0110() {
    let servers = start();
    // Wrong S3 secret, an Azure endpoint nobody listens on, and a pinned
    // host key that is not the server's.
    let closed = format!("http://127.0.0.1:{}/devstoreaccount1", servers::free_port());
    let other_key =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
    let dir = project(&servers, "refused", &|t| {
        t.replace(&servers.azurite.endpoint(), &closed)
            .replace(servers.sshd.host_key_ed25519.trim(), other_key)
    });
    let mut cmd_out = {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_accord"));
        cmd.arg("run")
            .arg(dir.path())
            .args(["--env", "test", "--now", NOW, "--format", "json"])
            .env("TEST_S3_KEY_ID", &servers.moto.access_key_id)
            .env("TEST_S3_SECRET", "not-the-secret")
            .env("TEST_AZURE_KEY", azurite::KEY)
            .env("TEST_SFTP_KEY", &servers.sshd.client_key)
            .env_remove("ACCORD_FAULT_AFTER");
        cmd.output().expect("accord runs")
    };
    let failed = report(&cmd_out);
    assert_eq!(cmd_out.status.code(), Some(1), "{failed}");
    let diagnostics = failed["diagnostics"].to_string();
    for (activation, destination) in [
        ("to_s3", "partner_s3"),
        ("to_azure", "partner_azure"),
        ("to_sftp", "partner_sftp"),
    ] {
        assert_eq!(status(&failed, activation), "failed", "{failed}");
        assert!(
            diagnostics.contains(&format!("destination `{destination}`")),
            "{activation}: {diagnostics}"
        );
    }
    assert_eq!(diagnostics.matches("R0110").count(), 3, "{diagnostics}");
    // The run's other activation delivers all the same.
    assert_eq!(status(&failed, "to_gcs"), "delivered", "{failed}");
    assert!(
        diagnostics.contains("SHA256:"),
        "the offered key's fingerprint: {diagnostics}"
    );
    assert!(!diagnostics.contains("not-the-secret"), "{diagnostics}");
    // Nothing reached the stores that refused.
    let refused = remote(&servers, "refused");
    for activation in ["to_s3", "to_azure", "to_sftp"] {
        assert!(refused[activation].is_empty(), "{activation}: {refused:?}");
    }
    assert_complete_delivery(&refused["to_gcs"], "gcs");

    // The S3 secret fixed (Azure and the host key still wrong): S3 delivers
    // now, alongside the two that still fail.
    cmd_out = run(&servers, dir.path(), None, &[]);
    let mixed = report(&cmd_out);
    assert_eq!(status(&mixed, "to_s3"), "delivered", "{mixed}");
    assert_eq!(status(&mixed, "to_azure"), "failed", "{mixed}");
    assert_eq!(status(&mixed, "to_sftp"), "failed", "{mixed}");
    assert_eq!(
        assert_complete_delivery(&remote(&servers, "refused")["to_s3"], "s3"),
        1
    );
}

#[test]
fn a_dry_run_describes_every_upload_and_writes_nothing_remote() {
    let servers = start();
    let dir = project(&servers, "dry", &|t| t);
    let out = run(&servers, dir.path(), None, &["--dry-run"]);
    let dry = report(&out);
    assert!(out.status.success(), "{dry}");
    for activation in ACTIVATIONS {
        assert_eq!(status(&dry, activation), "dry_run", "{dry}");
        let written = dry["activations"][activation]["written"][0]
            .as_str()
            .expect("the objects file");
        let lines = std::fs::read_to_string(dir.path().join(written)).expect("objects file");
        let writes: Vec<serde_json::Value> = lines
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect();
        let last = writes.last().expect("writes");
        assert_eq!(last["op"], "put_new", "the manifest comes last: {lines}");
        assert!(
            last["target"]
                .as_str()
                .expect("target")
                .ends_with(".manifest.json"),
            "{lines}"
        );
        assert!(writes[..writes.len() - 1].iter().all(|w| w["op"] == "put"));
    }
    assert!(remote(&servers, "dry").values().all(Listing::is_empty));
    // The store did not advance: a live run delivers everything.
    let out = run(&servers, dir.path(), None, &[]);
    assert!(out.status.success(), "{}", report(&out));
    for (activation, listing) in remote(&servers, "dry") {
        assert_complete_delivery(&listing, activation);
    }
}
