//! Text views of the catalog for `accord destinations [TYPE]`.
//!
//! Input: catalog entries. Output: plain text without colour or trailing
//! spaces, the same on every machine (the snapshots hold it to that).

use crate::diag::thousands;
use std::fmt::Write as _;

use super::{
    Delivery, DestinationType, HashingRule, IdentityRule, Membership, Normalise, Quirk, Rows,
    SettingValue, all,
};

/// The table behind `accord destinations`: one line per type.
pub fn render_list() -> String {
    let header = ["type", "delivery", "rows", "identities", "implied actions"];
    let rows: Vec<[String; 5]> = all()
        .iter()
        .map(|t| {
            [
                t.name.to_string(),
                delivery(t.delivery).to_string(),
                rows(t.rows).to_string(),
                identity_columns(t),
                implied_actions(t),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    let mut out = String::new();
    push_row(&mut out, &header.map(String::from), &widths);
    push_row(&mut out, &widths.map(|w| "-".repeat(w)), &widths);
    for row in &rows {
        push_row(&mut out, row, &widths);
    }
    out.push_str(
        "\n(fixed) actions cannot be removed; `accord destinations TYPE` shows every fact\n",
    );
    out
}

fn push_row(out: &mut String, cells: &[String; 5], widths: &[usize; 5]) {
    let mut line = String::new();
    for (cell, width) in cells.iter().zip(widths) {
        let _ = write!(line, "{cell:<width$}  ");
    }
    out.push_str(line.trim_end());
    out.push('\n');
}

/// Every fact about one type, one per line, for `accord destinations TYPE`.
pub fn render_one(t: &DestinationType) -> String {
    let mut out = String::new();
    let mut fact = |key: &str, value: &str| {
        let line = format!("{:<22}{value}", format!("{key}:"));
        out.push_str(line.trim_end());
        out.push('\n');
    };
    fact("type", t.name);
    fact("title", t.title);
    fact("summary", t.summary);
    fact("delivery", delivery(t.delivery));
    fact("rows", rows(t.rows));
    fact("membership", membership(t.membership));
    fact("identities", identity_rule(t.identity_rule));
    for i in t.identities {
        fact(
            &format!("  {}", i.column),
            &format!(
                "namespace {}, {}, normalise: {}",
                i.namespace,
                hashing(i.hashing),
                normalise(i.normalise)
            ),
        );
    }
    for (a, b) in t.exclusive_identities {
        fact("never both", &format!("{a} and {b}"));
    }
    let required: Vec<String> = t
        .required_columns
        .iter()
        .map(|r| match r.when {
            None => r.column.to_string(),
            Some((key, value)) => format!("{} (when {key} = \"{value}\")", r.column),
        })
        .collect();
    fact("required columns", &list(&required));
    fact("fixed columns", &list(t.fixed_columns));
    let columns = if t.any_columns {
        "any column"
    } else if t.declares_fields {
        "identity and fixed columns, and the destination's `fields`"
    } else {
        "identity and fixed columns only"
    };
    fact("mapping targets", columns);
    fact("implied actions", &implied_actions(t));
    let schedules: Vec<&str> = t.schedules.iter().map(|s| s.as_str()).collect();
    fact("schedules", &list(&schedules));
    let modes: Vec<&str> = t.export_modes.iter().map(|m| m.as_str()).collect();
    fact("export modes", &list(&modes));
    fact("formats", &list(t.formats));
    fact("settings", "");
    for s in t.settings.iter().chain(t.delivery_settings()) {
        let mut about = vec![if s.required { "required" } else { "optional" }.to_string()];
        if s.secret {
            about.push("secret reference".to_string());
        }
        about.push(setting_value(s.value));
        if let Some(default) = s.default {
            // Written as in a spec: numbers and booleans bare, text quoted.
            about.push(match s.value {
                SettingValue::Integer | SettingValue::Bool => format!("default {default}"),
                _ => format!("default {default:?}"),
            });
        }
        fact(
            &format!("  {}", s.key),
            &format!("{}: {}", about.join(", "), s.description),
        );
    }
    let l = &t.limits;
    fact("limits", "");
    fact("  min audience size", &opt(l.min_audience_size));
    fact(
        "  audiences/dataflow",
        &thousands(u64::from(l.max_audiences_per_dataflow)),
    );
    fact(
        "  mapped attributes",
        &thousands(u64::from(l.max_mapped_attributes)),
    );
    fact("  rows per file", &opt(l.max_rows_per_file));
    fact(
        "  file name length",
        &opt(l.max_file_name_len.map(u64::from)),
    );
    let rate = match l.rate_limit {
        None => "-".to_string(),
        Some(r) => {
            let mut parts = Vec::new();
            if let Some(w) = r.window {
                parts.push(format!(
                    "{} calls per {} s",
                    thousands(u64::from(w.calls)),
                    thousands(u64::from(w.per_seconds))
                ));
            }
            if let Some(c) = r.concurrency {
                parts.push(format!("{} concurrent", thousands(u64::from(c))));
            }
            if let Some(d) = r.daily {
                parts.push(format!("{} per day", thousands(u64::from(d))));
            }
            parts.join(", ")
        }
    };
    fact("  rate limit", &rate);
    fact("  records per call", &opt(l.batch_size.map(u64::from)));
    fact("  payload bytes", &opt(l.max_payload_bytes));
    fact(
        "  audience fields",
        &opt(l.max_audience_fields.map(u64::from)),
    );
    let quirks: Vec<&str> = t.quirks.iter().map(|q| quirk(*q)).collect();
    fact("quirks", &list(&quirks));
    out
}

fn delivery(d: Delivery) -> &'static str {
    match d {
        Delivery::Streaming => "streaming",
        Delivery::Batch => "batch",
        Delivery::Either => "streaming or batch",
    }
}

fn rows(r: Rows) -> &'static str {
    match r {
        Rows::Account => "account",
        Rows::Person => "person",
        Rows::Either => "account or person",
    }
}

fn membership(m: Membership) -> &'static str {
    match m {
        Membership::ListMembership => "one list or segment per audience at the destination",
        Membership::AudienceField => "one text field per audience holds the membership status",
        Membership::FileRows => "members are rows of the exported files",
        Membership::ApiUpsert => "each record is sent with its audiences and status",
    }
}

fn identity_rule(r: IdentityRule) -> &'static str {
    match r {
        IdentityRule::AnyOf => "map at least one of",
        IdentityRule::AllOf => "map all of",
        IdentityRule::NotRequired => "none required",
    }
}

fn hashing(h: HashingRule) -> &'static str {
    match h {
        HashingRule::Required => "sha256 only",
        HashingRule::Forbidden => "raw only",
        HashingRule::Either => "raw or sha256",
    }
}

fn normalise(n: Normalise) -> &'static str {
    match n {
        Normalise::None => "none",
        Normalise::Trim => "trim",
        Normalise::EmailLower => "trim, lowercase",
        Normalise::EmailGmail => {
            "trim, lowercase, gmail.com (and googlemail.com) drops dots and +suffix"
        }
        Normalise::Domain => "trim, lowercase, drop scheme, path and www.",
        Normalise::PhoneE164 => "E.164",
    }
}

fn setting_value(v: SettingValue) -> String {
    match v {
        SettingValue::Text => "text".to_string(),
        SettingValue::Integer => "integer".to_string(),
        SettingValue::Bool => "true or false".to_string(),
        SettingValue::List => "list of text".to_string(),
        SettingValue::Table => "table".to_string(),
        SettingValue::Choice(values) => format!("one of {}", values.join(" | ")),
    }
}

fn quirk(q: Quirk) -> &'static str {
    match q {
        Quirk::UnknownFieldsFailSilently => "updates to unknown fields fail silently",
        Quirk::EmptyDatesRejected => "an empty date value rejects the record",
    }
}

fn identity_columns(t: &DestinationType) -> String {
    if t.identities.is_empty() {
        return "any".to_string();
    }
    let columns: Vec<&str> = t.identities.iter().map(|i| i.column).collect();
    columns.join(", ")
}

fn implied_actions(t: &DestinationType) -> String {
    let actions: Vec<String> = t
        .implied_actions
        .iter()
        .map(|a| {
            if t.fixed_actions.contains(a) {
                format!("{a} (fixed)")
            } else {
                a.to_string()
            }
        })
        .collect();
    list(&actions)
}

fn list<S: AsRef<str>>(items: &[S]) -> String {
    if items.is_empty() {
        return "-".to_string();
    }
    let items: Vec<&str> = items.iter().map(AsRef::as_ref).collect();
    items.join(", ")
}

fn opt(n: Option<u64>) -> String {
    n.map_or_else(|| "-".to_string(), thousands)
}
