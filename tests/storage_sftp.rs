//! The SFTP store against OpenSSH's own sshd on loopback (each test starts
//! its own, with fresh keys): byte-identical round trips, folders made on
//! demand, no partial file ever visible, create-only manifests, the pinned
//! host key enforced, logins refused as `Denied`, an unreachable server
//! failing fast, and the blocking rule around async runtimes.
#![cfg(feature = "deliver")]

// Only `next` is used here.
#[allow(dead_code)]
#[path = "support/rng.rs"]
mod rng;
#[path = "support/servers/mod.rs"]
mod servers;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use accord::deliver::storage::sftp::{Login, SftpFileStore, SftpSettings};
use accord::deliver::storage::{FileStore, StorageErrorKind};
use accord::host_key;
use secrecy::SecretString;
use servers::sshd::{self, PASSPHRASE, Sshd};

/// A key no test server has.
const STRANGER: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMRWf/LhwpBfuFwTNUnE1iLi4VzHDioKu62zODnMj1C8";

fn settings(server: &Sshd, path: &str, host_key: &str, login: Login) -> SftpSettings {
    SftpSettings {
        host: "127.0.0.1".into(),
        port: server.port(),
        username: server.user.clone(),
        path: path.into(),
        host_key: host_key::parse(host_key).expect("the server's key parses"),
        login,
    }
}

fn key_login(key: &str) -> Login {
    Login::PrivateKey {
        key: SecretString::from(key.to_string()),
        passphrase: None,
    }
}

fn store(server: &Sshd, path: &str) -> SftpFileStore {
    let login = key_login(&server.client_key);
    SftpFileStore::new(settings(server, path, &server.host_key_ed25519, login)).unwrap()
}

fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = rng::Rng(seed);
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        out.extend(rng.next().to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Every name in a folder on the server's disk, sorted.
fn listing(folder: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(folder)
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn files_round_trip_byte_identical_up_to_10_mb() {
    let server = sshd::start();
    let store = store(&server, "inbound");
    assert_eq!(
        store.location(),
        format!("sftp://127.0.0.1:{}/~/inbound/", server.port())
    );
    assert_eq!(store.size("a.csv").unwrap(), None);
    assert_eq!(store.get("a.csv").unwrap(), None);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty.csv", Vec::new()),
        ("one.csv", b"x".to_vec()),
        ("text.csv", "id,name\n1,Zoë\n".as_bytes().to_vec()),
        // Just over and under the request size, so the last chunk is short.
        ("chunks.bin", random_bytes(255 * 1024 + 1, 1)),
        ("ten_mb.bin", random_bytes(10 * 1024 * 1024 + 7, 2)),
    ];
    for (name, bytes) in &cases {
        let started = Instant::now();
        store.put(name, bytes).unwrap();
        let took = started.elapsed();
        assert_eq!(
            store.size(name).unwrap(),
            Some(bytes.len() as u64),
            "{name}"
        );
        assert_eq!(
            store.get(name).unwrap().as_deref(),
            Some(&bytes[..]),
            "{name}"
        );
        let on_disk = std::fs::read(server.files.join("inbound").join(name)).unwrap();
        assert!(on_disk == *bytes, "{name}: the server's file differs");
        eprintln!("{name}: {} bytes put in {took:?}", bytes.len());
    }
    // From a local file (a delivery's encoded file), streamed a write at a
    // time: the same bytes.
    let local = tempfile::tempdir().unwrap();
    for (name, bytes) in &cases {
        let from = local.path().join(name);
        std::fs::write(&from, bytes).unwrap();
        let copy = format!("from-file-{name}");
        store.put_file(&copy, &from).unwrap();
        let on_disk = std::fs::read(server.files.join("inbound").join(&copy)).unwrap();
        assert!(on_disk == *bytes, "{copy}: the server's file differs");
    }
    let missing = store.put_file("never.csv", &local.path().join("no-such-file"));
    assert!(
        missing
            .unwrap_err()
            .message
            .contains("reading the encoded file"),
        "a local file that cannot be read is said so"
    );
    // Replacing a file replaces it whole.
    store.put("text.csv", b"id\n").unwrap();
    assert_eq!(store.get("text.csv").unwrap().unwrap(), b"id\n");
    let names: Vec<&str> = cases.iter().map(|(n, _)| *n).collect();
    let mut expected: Vec<String> = names
        .iter()
        .flat_map(|n| [n.to_string(), format!("from-file-{n}")])
        .collect();
    expected.sort();
    assert_eq!(listing(&server.files.join("inbound")), expected);
}

#[test]
fn missing_folders_are_created_relative_or_absolute() {
    let server = sshd::start();
    store(&server, "deep/er/inbound/")
        .put("a.csv", b"1")
        .unwrap();
    assert_eq!(
        std::fs::read(server.files.join("deep/er/inbound/a.csv")).unwrap(),
        b"1"
    );
    let absolute = server.files.join("abs/olute");
    let absolute_store = store(&server, absolute.to_str().unwrap());
    assert_eq!(
        absolute_store.location(),
        format!("sftp://127.0.0.1:{}{}/", server.port(), absolute.display())
    );
    absolute_store.put("sub/b.csv", b"2").unwrap();
    assert_eq!(std::fs::read(absolute.join("sub/b.csv")).unwrap(), b"2");
    // The login folder itself.
    store(&server, "").put("c.csv", b"3").unwrap();
    assert_eq!(std::fs::read(server.files.join("c.csv")).unwrap(), b"3");
}

#[test]
fn a_folder_that_cannot_be_created_is_not_found() {
    let server = sshd::start();
    std::fs::write(server.files.join("blocker"), b"a file, not a folder").unwrap();
    let err = store(&server, "blocker/inbound")
        .put("a.csv", b"1")
        .unwrap_err();
    assert_eq!(err.kind, StorageErrorKind::NotFound, "{err}");
    assert!(err.message.contains("blocker/inbound"), "{err}");
    assert!(
        err.message
            .contains(&format!("127.0.0.1:{}", server.port())),
        "{err}"
    );
}

#[test]
fn put_never_shows_a_partial_file_and_leaves_no_temporary_one() {
    let server = sshd::start();
    let store = store(&server, "inbound");
    let folder = server.files.join("inbound");
    let old = random_bytes(3 * 1024 * 1024, 3);
    let new = random_bytes(8 * 1024 * 1024 + 5, 4);
    store.put("data.bin", &old).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (done, folder) = (done.clone(), folder.clone());
        let sizes = [old.len() as u64, new.len() as u64];
        std::thread::spawn(move || {
            let (mut looks, mut saw_temporary) = (0u64, false);
            while !done.load(Ordering::SeqCst) {
                for name in listing(&folder) {
                    if name == "data.bin" {
                        // A vanished file between listing and stat is fine.
                        if let Ok(meta) = std::fs::metadata(folder.join(&name)) {
                            assert!(
                                sizes.contains(&meta.len()),
                                "a reader saw data.bin with {} bytes",
                                meta.len()
                            );
                        }
                    } else {
                        assert!(
                            name.starts_with(".data.bin.") && name.ends_with(".accord-tmp"),
                            "an unexpected file: {name}"
                        );
                        saw_temporary = true;
                    }
                }
                looks += 1;
            }
            (looks, saw_temporary)
        })
    };
    store.put("data.bin", &new).unwrap();
    done.store(true, Ordering::SeqCst);
    let (looks, saw_temporary) = watcher.join().unwrap();
    eprintln!("the watcher looked {looks} times; saw the temporary file: {saw_temporary}");
    assert!(looks > 0);
    assert_eq!(listing(&folder), ["data.bin"]);
    assert!(std::fs::read(folder.join("data.bin")).unwrap() == new);
}

#[test]
fn without_posix_rename_put_still_replaces_whole_files() {
    // The server announces posix-rename but refuses it: the store removes
    // the old file and renames the new one in, never showing a partial one.
    let server = sshd::start_denying(&["posix-rename"]);
    let store = store(&server, "inbound");
    for round in 0..3u64 {
        let bytes = random_bytes(300_000 + round as usize, 20 + round);
        store.put("data.bin", &bytes).unwrap();
        assert!(store.get("data.bin").unwrap().unwrap() == bytes, "{round}");
    }
    // Rounds after the first replace a file: had the refused posix-rename
    // not fallen back, they would have failed.
    assert_eq!(listing(&server.files.join("inbound")), ["data.bin"]);
}

#[test]
fn a_leftover_temporary_file_of_another_upload_is_left_alone() {
    // A crashed (or still running) upload's temporary file is not this
    // store's to remove or overwrite: each upload has a name of its own.
    let server = sshd::start();
    let folder = server.files.join("inbound");
    std::fs::create_dir(&folder).unwrap();
    let leftover = ".a.csv.0123456789abcdef.accord-tmp";
    std::fs::write(folder.join(leftover), b"half of an older upl").unwrap();
    store(&server, "inbound").put("a.csv", b"whole").unwrap();
    assert_eq!(listing(&folder), [leftover, "a.csv"]);
    assert_eq!(std::fs::read(folder.join("a.csv")).unwrap(), b"whole");
}

#[test]
fn put_new_writes_once_and_keeps_the_first_bytes() {
    let server = sshd::start();
    let store = store(&server, "inbound");
    assert!(store.put_new("manifest.json", b"{\"first\":true}").unwrap());
    assert!(
        !store
            .put_new("manifest.json", b"{\"second\":true}")
            .unwrap()
    );
    assert_eq!(
        store.get("manifest.json").unwrap().unwrap(),
        b"{\"first\":true}"
    );
    assert_eq!(listing(&server.files.join("inbound")), ["manifest.json"]);
}

#[test]
fn put_new_refuses_to_replace_even_when_the_file_appears_during_the_upload() {
    // Two stores race for the same manifest name: exactly one wins, its
    // bytes stay, and no temporary file is left behind.
    let server = sshd::start();
    let stores: Vec<SftpFileStore> = (0..4).map(|_| store(&server, "inbound")).collect();
    let payloads: Vec<Vec<u8>> = (0..4).map(|i| random_bytes(512 * 1024, 10 + i)).collect();
    let wins: Vec<bool> = std::thread::scope(|scope| {
        let handles: Vec<_> = stores
            .iter()
            .zip(&payloads)
            .map(|(store, bytes)| {
                scope.spawn(move || store.put_new("manifest.json", bytes).unwrap())
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(wins.iter().filter(|w| **w).count(), 1, "{wins:?}");
    let winner = wins.iter().position(|w| *w).unwrap();
    let landed = std::fs::read(server.files.join("inbound/manifest.json")).unwrap();
    assert!(landed == payloads[winner]);
    assert_eq!(listing(&server.files.join("inbound")), ["manifest.json"]);
}

#[test]
fn a_server_with_another_host_key_is_refused_and_nothing_is_written() {
    let server = sshd::start();
    let login = key_login(&server.client_key);
    let store = SftpFileStore::new(settings(&server, "inbound", STRANGER, login)).unwrap();
    let offered = host_key::parse(&server.host_key_ed25519)
        .unwrap()
        .fingerprint();
    for err in [
        store.put("a.csv", b"secret rows").unwrap_err(),
        store.put_new("m.json", b"{}").map(drop).unwrap_err(),
        store.size("a.csv").map(drop).unwrap_err(),
    ] {
        assert_eq!(err.kind, StorageErrorKind::HostKeyMismatch, "{err}");
        assert!(err.message.contains(&offered), "{err}");
        assert!(
            err.message
                .contains(&host_key::parse(STRANGER).unwrap().fingerprint()),
            "{err}"
        );
    }
    assert!(listing(&server.files).is_empty());
    // The fingerprint is the one OpenSSH itself prints for the key.
    let pub_file = server.process.dir.path().join("host_ed25519.pub");
    let keygen = std::process::Command::new("ssh-keygen")
        .arg("-lf")
        .arg(pub_file)
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&keygen.stdout);
    assert!(printed.contains(&offered), "{printed} vs {offered}");
}

#[test]
fn a_pinned_ecdsa_or_rsa_key_is_the_one_the_server_presents() {
    let server = sshd::start();
    for (name, pinned) in [
        ("ecdsa.csv", &server.host_key_ecdsa),
        ("rsa.csv", &server.host_key_rsa),
    ] {
        let login = key_login(&server.client_key);
        let store = SftpFileStore::new(settings(&server, "inbound", pinned, login)).unwrap();
        store.put(name, name.as_bytes()).unwrap();
        assert_eq!(store.get(name).unwrap().unwrap(), name.as_bytes());
    }
    // A pinned type the server has no key of is refused as a mismatch too.
    let ecdsa_384 = {
        let mut blob = Vec::new();
        for part in [&b"ecdsa-sha2-nistp384"[..], b"nistp384"] {
            blob.extend((part.len() as u32).to_be_bytes());
            blob.extend(part);
        }
        let mut point = vec![4u8];
        point.extend([9u8; 96]);
        blob.extend((point.len() as u32).to_be_bytes());
        blob.extend(point);
        use base64::Engine as _;
        format!(
            "ecdsa-sha2-nistp384 {}",
            base64::engine::general_purpose::STANDARD.encode(blob)
        )
    };
    let login = key_login(&server.client_key);
    let err = SftpFileStore::new(settings(&server, "inbound", &ecdsa_384, login))
        .unwrap()
        .put("x.csv", b"x")
        .unwrap_err();
    assert_eq!(err.kind, StorageErrorKind::HostKeyMismatch, "{err}");
    assert!(
        err.message.contains("no ecdsa-sha2-nistp384 host key"),
        "{err}"
    );
}

#[test]
fn logins_the_server_refuses_are_denied_and_name_no_secret() {
    let server = sshd::start();
    let wrong_password = "hunter2-not-the-password";
    let cases = [
        ("unknown key", key_login(&server.unknown_client_key)),
        (
            "password",
            Login::Password(SecretString::from(wrong_password.to_string())),
        ),
        (
            "encrypted key without its passphrase",
            key_login(&server.encrypted_client_key),
        ),
        (
            "encrypted key with a wrong passphrase",
            Login::PrivateKey {
                key: SecretString::from(server.encrypted_client_key.clone()),
                passphrase: Some(SecretString::from("wrong".to_string())),
            },
        ),
        ("not a key at all", key_login("-----BEGIN NOTHING-----")),
    ];
    for (what, login) in cases {
        let store = SftpFileStore::new(settings(
            &server,
            "inbound",
            &server.host_key_ed25519,
            login,
        ))
        .unwrap();
        let err = store.put("a.csv", b"1").unwrap_err();
        assert_eq!(err.kind, StorageErrorKind::Denied, "{what}: {err}");
        assert!(!err.message.contains(wrong_password), "{what}: {err}");
        assert!(!err.message.contains("PRIVATE KEY"), "{what}: {err}");
        assert!(err.message.contains("127.0.0.1"), "{what}: {err}");
    }
    assert!(listing(&server.files).is_empty());
}

#[test]
fn an_encrypted_key_logs_in_with_its_passphrase() {
    let server = sshd::start();
    let login = Login::PrivateKey {
        key: SecretString::from(server.encrypted_client_key.clone()),
        passphrase: Some(SecretString::from(PASSPHRASE.to_string())),
    };
    let store = SftpFileStore::new(settings(
        &server,
        "inbound",
        &server.host_key_ed25519,
        login,
    ))
    .unwrap();
    store.put("a.csv", b"1").unwrap();
    assert_eq!(store.size("a.csv").unwrap(), Some(1));
}

#[test]
fn an_unreachable_server_fails_fast() {
    // A port nobody listens on: refused at once, reported as unreachable.
    let port = servers::free_port();
    let store = SftpFileStore::new(SftpSettings {
        host: "127.0.0.1".into(),
        port,
        username: "nobody".into(),
        path: "inbound".into(),
        host_key: host_key::parse(STRANGER).unwrap(),
        login: Login::Password(SecretString::from("x".to_string())),
    })
    .unwrap();
    let started = Instant::now();
    let err = store.put("a.csv", b"1").unwrap_err();
    assert_eq!(err.kind, StorageErrorKind::Unreachable, "{err}");
    assert!(err.message.contains(&format!("127.0.0.1:{port}")), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_lost_connection_is_reopened_on_the_next_call() {
    let server = sshd::start();
    let store = store(&server, "inbound");
    store.put("a.csv", b"1").unwrap();
    // sshd forks a process per connection: end ours (children of the
    // server this test started), the listener stays.
    let pids = std::process::Command::new("pgrep")
        .args(["-P", &server.process.pid().to_string()])
        .output()
        .unwrap();
    let pids = String::from_utf8_lossy(&pids.stdout).to_string();
    assert!(!pids.trim().is_empty(), "no session process found");
    for pid in pids.split_whitespace() {
        let _ = std::process::Command::new("kill").arg(pid).status();
    }
    std::thread::sleep(Duration::from_millis(300));
    // The first call after the loss may fail (it finds out); the next one
    // connects again.
    let first = store.put("b.csv", b"2");
    if let Err(err) = &first {
        assert_eq!(err.kind, StorageErrorKind::Unreachable, "{err}");
        store.put("b.csv", b"2").unwrap();
    }
    assert_eq!(store.get("b.csv").unwrap().unwrap(), b"2");
}

#[test]
fn the_store_blocks_safely_around_async_runtimes() {
    let server = sshd::start();
    let store = Arc::new(store(&server, "inbound"));
    // Inside a multi-threaded runtime's worker: it works.
    let multi = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let inside = store.clone();
    multi
        .block_on(async move { tokio::spawn(async move { inside.put("a.csv", b"1") }).await })
        .unwrap()
        .unwrap();
    // Inside a current-thread runtime's only thread: it blocks it for the
    // call (the rule says not to), but works, with no panic and no hang.
    let single = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let inside = store.clone();
    let size = single.block_on(async move { inside.size("a.csv") });
    assert_eq!(size.unwrap(), Some(1));
    // From spawn_blocking, as the rule says, it works.
    let inside = store.clone();
    let size = single
        .block_on(async move { tokio::task::spawn_blocking(move || inside.size("a.csv")).await })
        .unwrap()
        .unwrap();
    assert_eq!(size, Some(1));
    // Dropped inside a runtime: no panic.
    let last = Arc::try_unwrap(store).ok().unwrap();
    single.block_on(async move { drop(last) });
}

#[test]
fn settings_come_from_a_destination_and_its_resolved_secrets() {
    use accord::deliver::Config;
    use accord::plan::SettingPlan;
    let text = |s: &str| SettingPlan::Text(s.to_string());
    let mut settings = BTreeMap::from([
        ("host".to_string(), text("sftp.partner.example")),
        ("host_key".to_string(), text(STRANGER)),
        ("username".to_string(), text("northwind")),
        ("path".to_string(), text("inbound/")),
        (
            "private_key".to_string(),
            SettingPlan::Reference("env:KEY".into()),
        ),
    ]);
    let config = |settings: &BTreeMap<String, SettingPlan>, secrets: &[&str]| Config {
        name: "partner".into(),
        kind: "sftp".into(),
        endpoint: None,
        settings: settings.clone(),
        secrets: secrets
            .iter()
            .map(|k| (k.to_string(), SecretString::from("s".to_string())))
            .collect(),
        limits: accord::deliver::Limits {
            batch_size: 1,
            max_bytes: None,
            window: None,
            concurrent: 1,
            daily: None,
        },
        lists: BTreeMap::new(),
        list_prefix: String::new(),
        dry_run: false,
    };
    let parsed = SftpSettings::from_config(&config(&settings, &["private_key"])).unwrap();
    assert_eq!(parsed.port, 22);
    assert_eq!(
        parsed.location(),
        "sftp://sftp.partner.example:22/~/inbound/"
    );
    assert!(matches!(
        parsed.login,
        Login::PrivateKey {
            passphrase: None,
            ..
        }
    ));

    settings.insert("port".into(), SettingPlan::Integer(70000));
    let err = SftpSettings::from_config(&config(&settings, &["private_key"]))
        .err()
        .unwrap();
    assert!(err.message.contains("`port` 70000"), "{err}");
    settings.insert("port".into(), SettingPlan::Integer(2222));
    let err = SftpSettings::from_config(&config(&settings, &["private_key", "password"]))
        .err()
        .unwrap();
    assert!(err.message.contains("exactly one"), "{err}");
    settings.insert("host_key".into(), text("ssh-ed25519 AAAA"));
    let err = SftpSettings::from_config(&config(&settings, &["private_key"]))
        .err()
        .unwrap();
    assert!(
        err.message.contains("destination `partner`: `host_key`"),
        "{err}"
    );
}
