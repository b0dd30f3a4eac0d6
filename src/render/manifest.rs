//! Delivery manifests: how the run delivers one activation's rows.
//!
//! Input: the plan, one activation, the rendered dialects. Output: a JSON
//! value with the destination (type, connection settings with credentials
//! only as references), the queries per dialect, the columns, schedule and
//! export mode, and either the file layout (format, naming with `{audience}`
//! and `{date}` macros, the 255-character limit, the row limit at which
//! files split) or the API request shape, batch size and rate limit,
//! following the vendor's documented format.

use serde_json::{Value, json};

use crate::plan::{ActivationPlan, Delivery, ExportMode, Plan, SettingPlan};

/// File names are cut to this many characters (the platform's limit: names <= 255).
const MAX_FILE_NAME: u32 = 255;
/// Files split at this many rows when the destination sets no other limit.
const DEFAULT_ROWS_PER_FILE: u64 = 5_000_000;

pub fn manifest(plan: &Plan, name: &str, a: &ActivationPlan, dialects: &[&str]) -> Value {
    let dest = plan.destinations.get(&a.destination);
    let setting = |key: &str| -> Option<String> {
        dest.and_then(|d| d.settings.get(key))
            .and_then(|s| match s {
                SettingPlan::Text(t) | SettingPlan::Reference(t) => Some(t.clone()),
                SettingPlan::Integer(i) => Some(i.to_string()),
                _ => None,
            })
    };
    let connection: serde_json::Map<String, Value> = dest
        .map(|d| {
            d.settings
                .iter()
                .map(|(k, v)| {
                    let v = match v {
                        SettingPlan::Text(t) => json!(t),
                        SettingPlan::Integer(i) => json!(i),
                        SettingPlan::Bool(b) => json!(b),
                        SettingPlan::List(l) => json!(l),
                        SettingPlan::Table(t) => json!(t),
                        SettingPlan::Reference(r) => json!({ "secret": r }),
                    };
                    (k.clone(), v)
                })
                .collect()
        })
        .unwrap_or_default();
    let queries: serde_json::Map<String, Value> = dialects
        .iter()
        .map(|d| (d.to_string(), json!(format!("sql/{d}/exports/{name}.sql"))))
        .collect();
    let columns: Vec<Value> = a
        .mapping
        .iter()
        .map(|m| {
            json!({
                "name": m.column,
                "expr": m.expr,
                "transform": m.transform,
                "identity": m.identity,
            })
        })
        .collect();
    let delivery = if dest.is_some_and(|d| d.delivery == Delivery::Batch)
        || a.destination_type == "filesystem"
    {
        files(
            a,
            name,
            setting("format"),
            setting("prefix").or(setting("path")),
        )
    } else {
        api(a, &setting)
    };
    // Verdicts the run must honour or report: anything but allowed or not
    // applicable, per activated audience (warn environments render them).
    let governance: serde_json::Map<String, Value> = a
        .governance
        .iter()
        .filter_map(|(audience, g)| {
            let notable: serde_json::Map<String, Value> = g
                .policies
                .iter()
                .filter(|(_, v)| v.is_notable())
                .map(|(p, v)| (p.clone(), json!(v)))
                .collect();
            (!notable.is_empty()).then(|| (audience.clone(), Value::Object(notable)))
        })
        .collect();
    json!({
        "activation": name,
        "environment": plan.environment,
        "enforcement": plan.enforcement,
        "governance": governance,
        "destination": {
            "name": a.destination,
            "type": a.destination_type,
            "connection": connection,
        },
        "rows": a.rows,
        "audiences": a.audiences,
        "exclude": a.exclude,
        "queries": queries,
        "inputs": {
            "accord_accounts": "sql/{dialect}/audiences.sql",
            "accord_people": "sql/{dialect}/person_audiences.sql",
        },
        "parameters": { super::dialect::NOW_PLACEHOLDER: "the evaluation time, UTC, YYYY-MM-DD HH:MM:SS" },
        "columns": columns,
        "schedule": a.schedule,
        "export": {
            "mode": a.export,
            // Incremental exports carry added and removed members per audience.
            "membership_status": a.export == ExportMode::Incremental,
            "first_run": match a.export {
                ExportMode::Incremental => "full backfill",
                ExportMode::Full => "full",
            },
        },
        "min_audience_size": a.limits.min_audience_size,
        "delivery": delivery,
        "plan_fingerprint": a.fingerprint,
    })
}

fn files(a: &ActivationPlan, name: &str, format: Option<String>, prefix: Option<String>) -> Value {
    let format = format.unwrap_or_else(|| "csv".into());
    let prefix = prefix
        .map(|p| {
            if p.ends_with('/') || p.is_empty() {
                p
            } else {
                format!("{p}/")
            }
        })
        .unwrap_or_default();
    json!({
        "kind": "files",
        "format": format,
        "csv": if format == "csv" { json!({ "delimiter": ",", "quote": "\"", "escape": "\"", "null": "", "header": true, "compression": "none" }) } else { Value::Null },
        "file_name": format!("{prefix}{name}_{{audience}}_{{date}}.{format}"),
        "macros": { "{audience}": "the audience name, `.` as `_`", "{date}": "the run date, YYYYMMDD", "{n}": "the file number from 2 when a file splits" },
        "max_file_name_length": a.limits.max_file_name_len.unwrap_or(MAX_FILE_NAME),
        "max_rows_per_file": a.limits.max_rows_per_file.unwrap_or(DEFAULT_ROWS_PER_FILE),
        "split_name": format!("{prefix}{name}_{{audience}}_{{date}}_{{n}}.{format}"),
        "manifest_file": format!("{prefix}{name}_{{date}}.manifest.json"),
    })
}

fn api(a: &ActivationPlan, setting: &dyn Fn(&str) -> Option<String>) -> Value {
    let batch = a.limits.batch_size;
    let s = |k: &str| setting(k).unwrap_or_else(|| format!("{{{k}}}"));
    let request = match a.destination_type.as_str() {
        "marketo_engage" => json!({
            "auth": { "kind": "oauth2_client_credentials", "token_url": format!("https://{}.mktorest.com/identity/oauth/token", s("munchkin_id")) },
            "method": "POST",
            "url": format!("https://{}.mktorest.com/rest/v1/leads.json", s("munchkin_id")),
            "body": { "action": "createOrUpdate", "lookupField": "email", "input": "[{row}]" },
            "membership": { "method": "POST", "url": format!("https://{}.mktorest.com/rest/v1/lists/{{listId}}/leads.json", s("munchkin_id")), "body": { "input": "[{\"id\": leadId}]" }, "remove_method": "DELETE" },
        }),
        "linkedin_companies" => json!({
            "auth": { "kind": "oauth2_refresh_token", "token_url": "https://www.linkedin.com/oauth/v2/accessToken" },
            "method": "POST",
            "url": "https://api.linkedin.com/rest/dmpSegments/{segmentId}/companies",
            "headers": { "X-Restli-Method": "BATCH_CREATE", "LinkedIn-Version": "202608", "X-Restli-Protocol-Version": "2.0.0" },
            "segment": { "account": s("ad_account"), "type": "COMPANY", "create_url": "https://api.linkedin.com/rest/dmpSegments" },
            "body": { "elements": "[{\"action\": \"ADD\" | \"REMOVE\", \"companyName\": row.companyName, \"companyWebsiteDomain\": row.companyDomain}]" },
        }),
        "linkedin_contacts" => json!({
            "auth": { "kind": "oauth2_refresh_token", "token_url": "https://www.linkedin.com/oauth/v2/accessToken" },
            "method": "POST",
            "url": "https://api.linkedin.com/rest/dmpSegments/{segmentId}/users",
            "headers": { "X-Restli-Method": "BATCH_CREATE", "LinkedIn-Version": "202608" },
            "body": { "elements": "[{\"action\": \"ADD\" | \"REMOVE\", \"userIds\": [{\"idType\": \"SHA256_EMAIL\", \"idValue\": row.email_lc_sha256}]}]" },
        }),
        "salesforce" => json!({
            "auth": { "kind": "oauth2_client_credentials", "token_url": format!("https://{}/services/oauth2/token", s("domain")) },
            "method": "PATCH",
            "url": format!("https://{}/services/data/v61.0/composite/sobjects/{}/Id", s("domain"), capitalise(&s("object"))),
            "body": { "allOrNone": false, "records": format!("[{{\"attributes\": {{\"type\": \"{}\"}}, ...row}}]", capitalise(&s("object"))) },
        }),
        "dynamics365" => json!({
            "auth": { "kind": "oauth2_client_credentials", "token_url": format!("https://login.microsoftonline.com/{}/oauth2/v2.0/token", s("tenant_id")) },
            "method": "PATCH",
            "url": format!("{}/api/data/v9.2/contacts({{contactId}})", s("environment_url")),
            "batch_url": format!("{}/api/data/v9.2/$batch", s("environment_url")),
            "body": "{row without contactId}",
        }),
        "google_customer_match" => json!({
            "auth": { "kind": "service_account_jwt", "token_url": "https://oauth2.googleapis.com/token", "scope": "https://www.googleapis.com/auth/datamanager" },
            "method": "POST",
            "url": "https://datamanager.googleapis.com/v1/audienceMembers:ingest",
            "remove_url": "https://datamanager.googleapis.com/v1/audienceMembers:remove",
            "body": { "destinations": [{ "operatingAccount": { "accountType": "GOOGLE_ADS", "accountId": s("customer_id").replace('-', "") }, "productDestinationId": "{userListId}" }], "encoding": "HEX", "audienceMembers": "[{\"userData\": {\"userIdentifiers\": [{\"emailAddress\": row.email_lc_sha256}, {\"phoneNumber\": row.phone_sha256_e.164}]}}]" },
        }),
        other => json!({ "method": "POST", "url": s("url"), "body": "[{row}]", "type": other }),
    };
    json!({
        "kind": "api",
        "batch_size": batch,
        "max_payload_bytes": a.limits.max_payload_bytes,
        "rate_limit": a.limits.rate_limit,
        "request": request,
    })
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}
