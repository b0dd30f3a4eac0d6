//! Azurite's Blob service (npm `azurite`, pinned in `scripts/test`), in
//! memory, on loopback. It checks Shared Key signatures like Azure: a wrong
//! account key is refused with 403 `AuthorizationFailure`.
//!
//! The account is Azurite's built-in development account; its key is the
//! one Microsoft publishes for the emulator, so it is no secret.

use std::process::Command;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{KeyInit, Mac};

use super::{Process, free_port, http, tool};

pub const ACCOUNT: &str = "devstoreaccount1";
pub const KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

pub struct Azurite {
    pub process: Process,
    /// A container that exists, made for this test.
    pub container: String,
}

impl Azurite {
    /// Starts Azurite's blob service with one container.
    pub fn start(container: &str) -> Azurite {
        let dir = tempfile::tempdir().expect("azurite dir");
        let port = free_port();
        let mut command = Command::new(tool("node_modules/.bin/azurite-blob"));
        command
            .args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()])
            // In memory; its debug and lock files (if any) in the temp dir.
            .current_dir(dir.path())
            .args([
                "--inMemoryPersistence",
                "--disableProductStyleUrl",
                "--skipApiVersionCheck",
                "--disableTelemetry",
            ]);
        let process = Process::start("azurite", command, port, dir, Duration::from_secs(60));
        create_container(&process, container);
        Azurite {
            process,
            container: container.to_string(),
        }
    }

    /// The endpoint a destination names: `http://127.0.0.1:PORT/ACCOUNT`.
    pub fn endpoint(&self) -> String {
        format!("{}/{ACCOUNT}", self.process.url())
    }
}

/// Create Container, signed with the account key (Shared Key, as Azure's
/// "Authorize with Shared Key" page spells the string to sign).
fn create_container(process: &Process, container: &str) {
    let date = chrono::DateTime::from_timestamp(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs() as i64,
        0,
    )
    .expect("date")
    .format("%a, %d %b %Y %H:%M:%S GMT")
    .to_string();
    let version = "2021-08-06";
    let path = format!("/{ACCOUNT}/{container}");
    let to_sign = format!(
        "PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{version}\n/{ACCOUNT}{path}\nrestype:container"
    );
    let key = STANDARD.decode(KEY).expect("key");
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).expect("hmac");
    mac.update(to_sign.as_bytes());
    let signature = STANDARD.encode(mac.finalize().into_bytes());
    let (status, body) = http(
        process.addr,
        "PUT",
        &format!("{path}?restype=container"),
        &[
            ("x-ms-date", date),
            ("x-ms-version", version.to_string()),
            ("Authorization", format!("SharedKey {ACCOUNT}:{signature}")),
        ],
        b"",
    );
    assert_eq!(status, 201, "azurite Create Container {container}: {body}");
}
