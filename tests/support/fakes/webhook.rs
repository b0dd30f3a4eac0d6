//! A webhook receiver on the fake framework: checks each body's
//! `X-Accord-Signature` (401 when wrong), refuses a whole batch with 400
//! when a member key starts with `bad`, and keeps the members per
//! (activation, audience), recording each add or remove that changed them,
//! and every member of every accepted batch in arrival order (`applied`).
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;

use crate::fake::Stats;

pub const PATH: &str = "/hook";

/// Members by (activation, audience).
pub type Audiences = BTreeMap<(String, String), BTreeSet<String>>;

pub struct Receiver {
    pub secret: String,
    pub audiences: Mutex<Audiences>,
    /// Every member of every accepted batch, in arrival order.
    pub applied: Mutex<Vec<Applied>>,
    stats: Arc<Stats>,
}

/// One member of an accepted batch.
#[derive(Clone, Debug)]
pub struct Applied {
    pub arrived: Instant,
    pub activation: String,
    pub audience: String,
    /// `add` or `remove`.
    pub operation: String,
    pub key: String,
    pub fields: Value,
}

impl Receiver {
    pub fn router(secret: &str, stats: Arc<Stats>) -> (Router, Arc<Receiver>) {
        let receiver = Arc::new(Receiver {
            secret: secret.to_string(),
            audiences: Mutex::default(),
            applied: Mutex::default(),
            stats,
        });
        (
            Router::new()
                .route(PATH, post(receive))
                .with_state(receiver.clone()),
            receiver,
        )
    }

    pub fn members(&self, activation: &str, audience: &str) -> BTreeSet<String> {
        let audiences = self.audiences.lock().unwrap();
        audiences
            .get(&(activation.to_string(), audience.to_string()))
            .cloned()
            .unwrap_or_default()
    }
}

fn signed(secret: &str, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

async fn receive(
    State(receiver): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let signature = headers
        .get("x-accord-signature")
        .and_then(|v| v.to_str().ok());
    if signature != Some(signed(&receiver.secret, &body).as_str()) {
        return (StatusCode::UNAUTHORIZED, "bad signature".into());
    }
    let Ok(batch) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "not JSON".into());
    };
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let arrived = Instant::now();
    let members: Vec<(String, Value)> = batch["members"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| (text(&m["key"]), m["fields"].clone()))
        .collect();
    let keys: Vec<String> = members.iter().map(|(k, _)| k.clone()).collect();
    if keys.iter().any(|k| k.starts_with("bad")) {
        return (StatusCode::BAD_REQUEST, "a member is malformed".into());
    }
    let operation = text(&batch["operation"]);
    let scope = (text(&batch["activation"]), text(&batch["audience"]));
    if !matches!(operation.as_str(), "add" | "remove") {
        return (StatusCode::BAD_REQUEST, "unknown operation".into());
    }
    receiver
        .applied
        .lock()
        .unwrap()
        .extend(members.into_iter().map(|(key, fields)| Applied {
            arrived,
            activation: scope.0.clone(),
            audience: scope.1.clone(),
            operation: operation.clone(),
            key,
            fields,
        }));
    let mut audiences = receiver.audiences.lock().unwrap();
    let members = audiences.entry(scope).or_default();
    for key in keys {
        let changed = if operation == "add" {
            members.insert(key.clone())
        } else {
            members.remove(&key)
        };
        if changed {
            receiver.stats.mutation(&key, &operation);
        }
    }
    (StatusCode::OK, "{}".into())
}
