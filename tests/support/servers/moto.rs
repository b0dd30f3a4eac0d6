//! moto's server mode: an S3 that checks SigV4 signatures and IAM
//! permissions, on loopback. `scripts/test` installs it (tests/requirements.txt).
//!
//! moto checks credentials only after its first `INITIAL_NO_AUTH_ACTION_COUNT`
//! requests; the setup spends exactly those on making an IAM user allowed
//! `s3:*`, its access key and the test's bucket, so every request the
//! store under test sends is authenticated like on AWS: a wrong secret is
//! refused with 403 `SignatureDoesNotMatch`.

use std::process::Command;
use std::time::Duration;

use super::{Process, free_port, http, tool, xml_text};

/// The requests the setup makes before moto starts checking credentials.
const SETUP_REQUESTS: u32 = 4;

pub struct Moto {
    pub process: Process,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// A bucket that exists, made for this test.
    pub bucket: String,
}

/// A fake SigV4 header naming `service`: moto routes an unauthenticated
/// request on a bare `127.0.0.1` to the service the credential scope names.
fn scope(service: &str) -> (&'static str, String) {
    (
        "Authorization",
        format!(
            "AWS4-HMAC-SHA256 Credential=AKIASETUP/20260101/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=0"
        ),
    )
}

fn iam(process: &Process, form: &str) -> String {
    let (status, body) = http(
        process.addr,
        "POST",
        "/",
        &[
            scope("iam"),
            (
                "Content-Type",
                "application/x-www-form-urlencoded".to_string(),
            ),
        ],
        format!("{form}&Version=2010-05-08").as_bytes(),
    );
    assert_eq!(status, 200, "moto IAM `{form}`: {body}");
    body
}

impl Moto {
    /// Starts moto with one IAM user and one bucket.
    pub fn start(bucket: &str) -> Moto {
        let dir = tempfile::tempdir().expect("moto dir");
        let port = free_port();
        let mut command = Command::new(tool("bin/moto_server"));
        command
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("INITIAL_NO_AUTH_ACTION_COUNT", SETUP_REQUESTS.to_string())
            .env("MOTO_ALLOW_NONEXISTENT_REGION", "false")
            .current_dir(dir.path());
        let process = Process::start("moto", command, port, dir, Duration::from_secs(60));
        iam(&process, "Action=CreateUser&UserName=accord");
        let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#;
        iam(
            &process,
            &format!(
                "Action=PutUserPolicy&UserName=accord&PolicyName=s3&PolicyDocument={}",
                form_encode(policy)
            ),
        );
        let key = iam(&process, "Action=CreateAccessKey&UserName=accord");
        let access_key_id = xml_text(&key, "AccessKeyId")
            .expect("AccessKeyId")
            .to_string();
        let secret_access_key = xml_text(&key, "SecretAccessKey")
            .expect("SecretAccessKey")
            .to_string();
        let (status, body) = http(
            process.addr,
            "PUT",
            &format!("/{bucket}"),
            &[scope("s3")],
            b"",
        );
        assert_eq!(status, 200, "moto CreateBucket {bucket}: {body}");
        Moto {
            process,
            access_key_id,
            secret_access_key,
            bucket: bucket.to_string(),
        }
    }
}

fn form_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
