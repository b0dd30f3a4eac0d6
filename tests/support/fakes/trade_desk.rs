//! A loopback The Trade Desk data server for delivery tests, written from
//! the published Data API: `POST /data/advertiser` with a `TTD-Auth` token,
//! items that carry one id (`TDID` or `DAID`) and the named segments it
//! joins for `TTLInMinutes` (0 removes it).
//!
//! In: the token and advertiser it accepts. Out: a router for
//! [`crate::fake::FakeServer`] and a [`TradeDeskState`]: per segment, each
//! id and when its membership expires. Malformed items are answered, with
//! HTTP 200, as `FailedLines` naming the item's 1-based `ItemNumber`.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::fake::Stats;

pub const TOKEN: &str = "ttd-data-token";
pub const ADVERTISER: &str = "adv-7";

/// The Data API's longest membership, in minutes (180 days).
const MAX_TTL_MINUTES: i64 = 259_200;
const MAX_NAME: usize = 256;

#[derive(Default)]
pub struct TradeDeskState {
    /// Segment name -> id (`TDID:..` or `DAID:..`) -> when it expires.
    segments: Mutex<BTreeMap<String, BTreeMap<String, SystemTime>>>,
}

impl TradeDeskState {
    /// The ids in a segment whose membership is live at `at`.
    pub fn members(&self, segment: &str, at: SystemTime) -> Vec<String> {
        let segments = self.segments.lock().unwrap();
        let Some(members) = segments.get(segment) else {
            return Vec::new();
        };
        members
            .iter()
            .filter(|(_, expires)| **expires > at)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// When a member's membership expires.
    pub fn expiry(&self, segment: &str, id: &str) -> Option<SystemTime> {
        self.segments.lock().unwrap().get(segment)?.get(id).copied()
    }
}

#[derive(Clone)]
struct App {
    state: Arc<TradeDeskState>,
    stats: Arc<Stats>,
}

pub fn router(stats: Arc<Stats>) -> (Router, Arc<TradeDeskState>) {
    let state = Arc::new(TradeDeskState::default());
    let app = App {
        state: state.clone(),
        stats,
    };
    let router = Router::new()
        .route("/data/advertiser", post(advertiser))
        .with_state(app);
    (router, state)
}

fn plain(status: StatusCode, text: &str) -> Response {
    (status, text.to_string()).into_response()
}

async fn advertiser(State(app): State<App>, headers: HeaderMap, body: String) -> Response {
    if headers.get("ttd-auth").and_then(|v| v.to_str().ok()) != Some(TOKEN) {
        return plain(
            StatusCode::UNAUTHORIZED,
            "Invalid or missing authentication token",
        );
    }
    let Ok(body) = serde_json::from_str::<Value>(&body) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"ErrorCode": "SerializationFailed", "Message": "invalid JSON"})),
        )
            .into_response();
    };
    if body.get("AdvertiserId").and_then(Value::as_str) != Some(ADVERTISER) {
        return plain(
            StatusCode::FORBIDDEN,
            "Cannot create new targeting data for this advertiser",
        );
    }
    let Some(items) = body
        .get("Items")
        .and_then(Value::as_array)
        .filter(|i| !i.is_empty())
    else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"ErrorCode": "MissingData", "Message": "Items are required"})),
        )
            .into_response();
    };
    let now = SystemTime::now();
    let failed: Vec<Value> = items
        .iter()
        .enumerate()
        .filter_map(|(i, item)| {
            apply(&app, item, now)
                .err()
                .map(|(code, message)| failed_line(i, item, code, &message))
        })
        .collect();
    Json(json!({ "FailedLines": failed })).into_response()
}

fn failed_line(index: usize, item: &Value, code: &str, message: &str) -> Value {
    let mut line =
        json!({"ErrorCode": code, "Message": message, "ItemNumber": (index + 1).to_string()});
    if let Some(tdid) = item
        .get("TDID")
        .and_then(Value::as_str)
        .filter(|t| is_guid(t))
    {
        line["TDID"] = json!(tdid);
    }
    line
}

/// Applies one item, or says why it failed.
fn apply(app: &App, item: &Value, now: SystemTime) -> Result<(), (&'static str, String)> {
    let id = item_id(item)?;
    let data = item
        .get("Data")
        .and_then(Value::as_array)
        .filter(|d| !d.is_empty())
        .ok_or(("MissingData", "Data is required".to_string()))?;
    let mut entries = Vec::new();
    for entry in data {
        let name = entry
            .get("Name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .ok_or(("MissingData", "Name is required".to_string()))?;
        if name.len() > MAX_NAME {
            return Err((
                "DataNameTooLong",
                format!("Name is over {MAX_NAME} characters"),
            ));
        }
        let ttl = entry
            .get("TTLInMinutes")
            .and_then(Value::as_i64)
            .unwrap_or(129_600);
        if !(0..=MAX_TTL_MINUTES).contains(&ttl) {
            return Err((
                "InvalidTtlInMinutes",
                format!("TTLInMinutes {ttl} is out of range"),
            ));
        }
        entries.push((name.to_string(), ttl));
    }
    let mut segments = app.state.segments.lock().unwrap();
    for (name, ttl) in entries {
        let members = segments.entry(name.clone()).or_default();
        let key = format!("{name}:{id}");
        if ttl == 0 {
            if members.remove(&id).is_some() {
                app.stats.mutation(&key, "remove");
            }
            continue;
        }
        let expires = now + Duration::from_secs(ttl as u64 * 60);
        let live = members.get(&id).is_some_and(|e| *e > now);
        members.insert(id.clone(), expires);
        app.stats
            .mutation(&key, if live { "refresh" } else { "add" });
    }
    Ok(())
}

/// The item's one id as `TDID:..` or `DAID:..`.
fn item_id(item: &Value) -> Result<String, (&'static str, String)> {
    let tdid = item.get("TDID").and_then(Value::as_str);
    let daid = item.get("DAID").and_then(Value::as_str);
    match (tdid, daid) {
        (Some(t), None) if is_guid(t) => Ok(format!("TDID:{}", t.to_ascii_lowercase())),
        (None, Some(d)) if is_guid(d) => Ok(format!("DAID:{}", d.to_ascii_lowercase())),
        (None, None) => Err(("MissingUserId", "the item has no user id".to_string())),
        (Some(_), Some(_)) => Err((
            "InvalidParameterFormat",
            "an item carries exactly one id".to_string(),
        )),
        _ => Err((
            "InvalidParameterFormat",
            "the id is not a 36-character GUID".to_string(),
        )),
    }
}

/// A 36-character GUID with dashes, as TDIDs and device ids are sent.
fn is_guid(text: &str) -> bool {
    text.len() == 36
        && text.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}
