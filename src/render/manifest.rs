//! Delivery manifests: how the run delivers one activation's rows.
//!
//! Input: the plan, one activation, the rendered dialects. Output: a JSON
//! value with the destination (type, connection settings with credentials
//! only as references), the queries per dialect, the columns, schedule and
//! export mode, and either the file layout (`file_layout`: format, CSV
//! dialect, the names the run writes with what only the run knows as
//! placeholders, the row limit at which files split, the manifest) or the
//! API request shape, batch size and rate limit, following the vendor's
//! documented format.

use serde_json::{Value, json};

use crate::file_layout::{FileLayout, Format, NameValues, manifest_name};
use crate::plan::{ActivationPlan, ExportMode, Plan, SettingPlan};

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
    let delivery = match FileLayout::of(plan, a) {
        Some(layout) => files(a, name, &layout, setting("prefix").or(setting("path"))),
        None => api(a, &setting),
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

/// The file layout, its names as the run fills them (`file_layout`):
/// what only the run knows (`{run_id}`, `{date}`, `{audience}`, `{n}`)
/// stays a placeholder.
fn files(a: &ActivationPlan, name: &str, layout: &FileLayout, location: Option<String>) -> Value {
    let values = NameValues {
        activation: name,
        destination: &a.destination,
        ..NameValues::default()
    };
    let csv = &layout.csv;
    json!({
        "kind": "files",
        "location": location.unwrap_or_default(),
        "format": layout.format,
        "compression": if layout.gzip { "gzip" } else { "none" },
        "csv": if layout.format == Format::Csv {
            json!({
                "delimiter": csv.delimiter.to_string(),
                "quote": csv.quote.to_string(),
                "escape": csv.escape.to_string(),
                "null": csv.null,
                "header": csv.header,
                "formula_escape": csv.formula_escape,
            })
        } else {
            Value::Null
        },
        "file_name": layout.name(&values, 1),
        "split_name": layout.split_name(&values),
        "one_set_per_audience": layout.per_audience(),
        "placeholders": {
            "{audience}": "the audience name (one set of files per audience)",
            "{run_id}": "the run id, YYYYMMDDTHHMMSSZ-xxxxxxxx",
            "{date}": "the run's UTC date, YYYYMMDD",
            "{n}": "the part number, from 2, when a file splits",
        },
        "max_file_name_length": a.limits.max_file_name_len,
        "rows_per_file": layout.rows_per_file,
        "manifest_file": layout.manifest.then(|| manifest_name(name, None)),
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
