//! sObject Collections upserts: up to 200 records per call, matched on the
//! external id field, `allOrNone: false` so that each record succeeds or
//! fails on its own; the answer lists one result per record in input order.

use serde_json::{Map, Value, json};

use super::super::super::vendor::{Member, Op, Outcome, RecordResult};
use super::super::super::wire::{WireRequest, percent_encode};
use super::Salesforce;

/// Records Salesforce takes per Collections call.
pub const MAX_RECORDS: usize = 200;

/// `PATCH /composite/sobjects/{SObject}/{externalIdField}`.
pub fn upsert_request(
    sf: &Salesforce,
    audience_field: &str,
    op: Op,
    members: &[Member],
) -> Result<WireRequest, String> {
    if members.is_empty() || members.len() > MAX_RECORDS {
        return Err(format!(
            "a Collections upsert carries 1 to {MAX_RECORDS} records, not {}",
            members.len()
        ));
    }
    let records = members
        .iter()
        .map(|member| {
            let mut record = Map::new();
            record.insert("attributes".into(), json!({ "type": sf.object }));
            record.extend(sf.record(audience_field, op, member)?);
            Ok(Value::Object(record))
        })
        .collect::<Result<Vec<_>, String>>()?;
    let url = sf.api(&format!(
        "/composite/sobjects/{}/{}",
        sf.object,
        percent_encode(&sf.external_id)
    ));
    Ok(WireRequest::new("PATCH", url).json(&json!({
        "allOrNone": false,
        "records": records,
    })))
}

/// The per-record results of a 200 answer, in the order of `members`.
pub fn classify_records(members: &[Member], body: &Value) -> Outcome {
    let results = match body.as_array() {
        Some(results) if results.len() == members.len() => results,
        _ => {
            return Outcome::Transient {
                code: "malformed".into(),
                message: format!(
                    "Salesforce answered a Collections upsert of {} records without one result per record",
                    members.len()
                ),
            };
        }
    };
    Outcome::Records(results.iter().map(record_result).collect())
}

fn record_result(result: &Value) -> RecordResult {
    if result.get("success").and_then(Value::as_bool) == Some(true) {
        return RecordResult::Accepted {
            remote_id: result.get("id").and_then(Value::as_str).map(str::to_string),
        };
    }
    let error = result
        .get("errors")
        .and_then(Value::as_array)
        .and_then(|e| e.first());
    let text = |key: &str| {
        error
            .and_then(|e| e.get(key))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let code = match text("statusCode") {
        code if code.is_empty() => "UNKNOWN_ERROR".to_string(),
        code => code,
    };
    let fields: Vec<&str> = error
        .and_then(|e| e.get("fields"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let mut message = text("message");
    if !fields.is_empty() {
        message = format!("{message} (fields: {})", fields.join(", "));
    }
    match code.as_str() {
        // Another transaction held the record: Salesforce's advice is to
        // send it again.
        "UNABLE_TO_LOCK_ROW" => RecordResult::Retry { code, message },
        _ => RecordResult::Rejected { code, message },
    }
}
