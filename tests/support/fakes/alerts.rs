//! An alert receiver on the fake framework: a signed webhook at
//! [`WEBHOOK_PATH`] (checks `X-Accord-Signature` against its secret,
//! 401 when wrong) and a Slack incoming webhook at [`SLACK_PATH`] (takes
//! only Slack's payload, `{"text": "..."}`, answering `ok` as Slack does,
//! 400 `invalid_payload` otherwise). Both can be told to answer 500 to the
//! next requests, to prove the retries; every request is recorded.
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;

use crate::fake::Stats;

/// Paths with a token in them, as real webhook URLs have: the tests prove
/// the token never shows.
pub const WEBHOOK_PATH: &str = "/hooks/alert-T0KEN-webhook";
pub const SLACK_PATH: &str = "/services/T000/B000/slackT0KEN";

pub struct Receiver {
    secret: String,
    /// Bodies of accepted webhook requests, in order.
    pub webhooks: Mutex<Vec<Value>>,
    /// Bodies of accepted Slack requests, in order.
    pub slack: Mutex<Vec<Value>>,
    /// Requests that arrived, answered or not.
    pub arrivals: AtomicUsize,
    /// Requests with a signature that did not verify.
    pub bad_signatures: AtomicUsize,
    /// The next this many requests are answered 500.
    pub fail_next: AtomicUsize,
}

impl Receiver {
    pub fn router(secret: &str, _stats: Arc<Stats>) -> (Router, Arc<Receiver>) {
        let receiver = Arc::new(Receiver {
            secret: secret.to_string(),
            webhooks: Mutex::default(),
            slack: Mutex::default(),
            arrivals: AtomicUsize::new(0),
            bad_signatures: AtomicUsize::new(0),
            fail_next: AtomicUsize::new(0),
        });
        (
            Router::new()
                .route(WEBHOOK_PATH, post(webhook))
                .route(SLACK_PATH, post(slack))
                .with_state(receiver.clone()),
            receiver,
        )
    }

    pub fn webhooks(&self) -> Vec<Value> {
        self.webhooks.lock().unwrap().clone()
    }

    pub fn slack(&self) -> Vec<Value> {
        self.slack.lock().unwrap().clone()
    }

    /// Answers 500 when told to, counting the arrival either way.
    fn failing(&self) -> bool {
        self.arrivals.fetch_add(1, Ordering::SeqCst);
        self.fail_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }
}

/// Verifies `sha256=<hex>` in constant time, as a receiver should.
fn verifies(secret: &str, body: &[u8], header: Option<&str>) -> bool {
    let Some(hex) = header.and_then(|h| h.strip_prefix("sha256=")) else {
        return false;
    };
    let Some(bytes) = (0..hex.len())
        .step_by(2)
        .map(|i| {
            hex.get(i..i + 2)
                .and_then(|b| u8::from_str_radix(b, 16).ok())
        })
        .collect::<Option<Vec<u8>>>()
    else {
        return false;
    };
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    mac.verify_slice(&bytes).is_ok()
}

async fn webhook(
    State(receiver): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    if receiver.failing() {
        return (StatusCode::INTERNAL_SERVER_ERROR, "try later".into());
    }
    let signature = headers
        .get("x-accord-signature")
        .and_then(|v| v.to_str().ok());
    if !verifies(&receiver.secret, &body, signature) {
        receiver.bad_signatures.fetch_add(1, Ordering::SeqCst);
        return (StatusCode::UNAUTHORIZED, "bad signature".into());
    }
    if headers.get("content-type").and_then(|v| v.to_str().ok()) != Some("application/json") {
        return (StatusCode::UNSUPPORTED_MEDIA_TYPE, "not JSON".into());
    }
    match serde_json::from_slice::<Value>(&body) {
        Ok(value) => {
            receiver.webhooks.lock().unwrap().push(value);
            (StatusCode::OK, "{}".into())
        }
        Err(_) => (StatusCode::BAD_REQUEST, "not JSON".into()),
    }
}

async fn slack(State(receiver): State<Arc<Receiver>>, body: Bytes) -> (StatusCode, String) {
    if receiver.failing() {
        return (StatusCode::INTERNAL_SERVER_ERROR, "try later".into());
    }
    // Slack's incoming webhooks answer `invalid_payload` to anything but a
    // JSON object with a text (or blocks).
    match serde_json::from_slice::<Value>(&body) {
        Ok(value) if value.get("text").is_some_and(Value::is_string) => {
            receiver.slack.lock().unwrap().push(value);
            (StatusCode::OK, "ok".into())
        }
        _ => (StatusCode::BAD_REQUEST, "invalid_payload".into()),
    }
}
