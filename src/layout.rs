//! The canonical layout of a spec file (`accord fmt`): the keys of each
//! definition in one order per kind (a destination's settings in its
//! catalog type's order, a composition's steps in the order they apply,
//! any other key by name), `=` aligned within a run of one-line keys, one
//! space around `=`. Tables inside a definition (`map`, `fields`) keep their
//! keys' order: a map's order is the export's column order. Comments, blank lines between groups, the
//! order of tables and every value as written (multi-line CEL included) are
//! kept: only where keys sit and the spaces beside `=` change.
//!
//! Input: a file's text. Output: its canonical text, or the parse error.
//! Pure. Formatting is idempotent and independent of the keys' order in
//! the input, and never changes what the file means (the compiled plan's
//! fingerprint): `tests/layout.rs` checks all three.

use toml_edit::{DocumentMut, Item, Table, Value};

/// The key order of each kind's definitions; keys not listed come after
/// these, by name.
fn key_order(kind: &str) -> &'static [&'static str] {
    match kind {
        "project" => &["name", "format", "description", "audience_naming"],
        "environment" => &[
            "enforcement",
            "delivery",
            "engine",
            "spark_remote",
            "spark_token",
        ],
        "schema" => &["class", "key", "timestamp", "description"],
        "label" | "marketing_action" => &["description"],
        "policy" => &["description", "actions", "deny", "enforcement", "status"],
        "consent" => &["description", "actions", "require"],
        "waiver" => &["policy", "activation", "owner", "reason", "expires"],
        "computed" => &["type", "expr", "description"],
        "audience" => &["description", "entity", "evaluation", "rule"],
        "destination" => &["type", "description", "actions", "fields"],
        "activation" => &[
            "destination",
            "description",
            "audiences",
            "exclude",
            "people",
            "schedule",
            "export",
            "max_removed_ratio",
        ],
        "source" => &[
            "schema",
            "description",
            "path",
            "format",
            "postgres",
            "table",
            "query",
            "marketo",
            "activity_types",
            "endpoint",
            "max_age",
            "on_stale",
            "freshness_column",
            "append_only",
            "precedence",
        ],
        _ => &[],
    }
}

/// The file's canonical layout.
pub fn format(text: &str) -> Result<String, String> {
    let mut doc: DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| {
        e.to_string().lines().next().unwrap_or("").to_string()
    })?;
    let kinds: Vec<String> = doc.iter().map(|(k, _)| k.to_string()).collect();
    for kind in kinds {
        let Some(Item::Table(kind_table)) = doc.get_mut(&kind) else {
            continue;
        };
        if kind == "project" || kind == "guardrails" {
            arrange(kind_table, key_order(&kind));
            continue;
        }
        // `[computed.SCHEMA.NAME]` nests one level deeper than the others.
        let depth = if kind == "computed" { 2 } else { 1 };
        arrange_definitions(kind_table, key_order(&kind), depth);
        align(kind_table);
    }
    Ok(doc.to_string())
}

/// Arranges the definitions `depth` levels below `table`, and every table
/// inside them (`map`, `fields`, `compose`, ...), whose keys are aligned.
fn arrange_definitions(table: &mut Table, order: &[&str], depth: usize) {
    for (_, item) in table.iter_mut() {
        let Item::Table(inner) = item else { continue };
        if depth > 1 {
            arrange_definitions(inner, order, depth - 1);
        } else {
            // A destination's settings follow its catalog type's list.
            let settings: Vec<&str> = inner
                .get("type")
                .and_then(Item::as_str)
                .and_then(crate::catalog::lookup)
                .map(|ty| {
                    ty.settings
                        .iter()
                        .chain(ty.delivery_settings())
                        .map(|s| s.key)
                        .collect()
                })
                .unwrap_or_default();
            let order: Vec<&str> = order.iter().copied().chain(settings).collect();
            arrange(inner, &order);
            nested(inner);
        }
    }
}

/// The tables inside a definition keep their own key order, aligned.
fn nested(table: &mut Table) {
    for (_, item) in table.iter_mut() {
        if let Item::Table(inner) = item {
            align(inner);
            nested(inner);
        }
    }
}

/// The steps of a composition (`compose.from = ...` written as dotted
/// keys), in the order they apply.
const COMPOSE_ORDER: &[&str] = &["from", "merge", "exclude", "exclude_rule", "rank", "split"];

/// Orders a table's keys by `order` (others after, in their order) and
/// aligns them.
fn arrange(table: &mut Table, order: &[&str]) {
    sort(table, order);
    // Dotted keys (`compose.from = ...`) are written among the table's own
    // keys; a composition's go in the order its steps apply.
    if let Some(Item::Table(compose)) = table.get_mut("compose")
        && compose.is_dotted()
    {
        sort(compose, COMPOSE_ORDER);
    }
    align(table);
}

/// Keys in `order` first, then the others by name: a definition's meaning
/// never depends on its keys' order, so its layout does not either. Only
/// key/value pairs move; sub-tables stay where they are written.
fn sort(table: &mut Table, order: &[&str]) {
    let rank = |key: &str| order.iter().position(|k| *k == key).unwrap_or(order.len());
    table
        .sort_values_by(|k1, _, k2, _| (rank(k1.get()), k1.get()).cmp(&(rank(k2.get()), k2.get())));
}

/// Aligns `=` within each run of one-line keys of `table`: a blank line or
/// a comment before a key starts a new run. Spaces around `=` become one
/// (plus the alignment's).
fn align(table: &mut Table) {
    let keys: Vec<(String, bool, bool)> = table
        .iter()
        .filter(|(_, item)| item.is_value())
        .map(|(key, item)| {
            let prefix = table
                .key(key)
                .and_then(|k| k.leaf_decor().prefix())
                .and_then(|p| p.as_str())
                .unwrap_or("");
            let breaks = prefix.contains("\n\n") || prefix.contains('#');
            let one_line = !item.as_value().is_some_and(is_multi_line);
            (key.to_string(), breaks, one_line)
        })
        .collect();
    let mut start = 0;
    while start < keys.len() {
        let mut end = start + 1;
        while end < keys.len() && !keys[end].1 {
            end += 1;
        }
        let width = keys[start..end]
            .iter()
            .filter(|(_, _, one_line)| *one_line)
            .map(|(k, _, _)| shown_key_len(table, k))
            .max()
            .unwrap_or(0);
        for (key, _, one_line) in &keys[start..end] {
            let pad = if *one_line {
                width - shown_key_len(table, key)
            } else {
                0
            };
            if let Some(mut k) = table.key_mut(key) {
                k.leaf_decor_mut().set_suffix(" ".repeat(pad + 1));
            }
            if let Some(value) = table.get_mut(key).and_then(Item::as_value_mut) {
                let suffix = value
                    .decor()
                    .suffix()
                    .and_then(|s| s.as_str())
                    .map(str::to_string)
                    .unwrap_or_default();
                value.decor_mut().set_prefix(" ");
                // A trailing comment keeps its place; spaces alone go.
                if !suffix.contains('#') {
                    value.decor_mut().set_suffix("");
                }
            }
        }
        start = end;
    }
}

/// How wide a key is written (quoted keys count their quotes).
fn shown_key_len(table: &Table, key: &str) -> usize {
    table
        .key(key)
        .map(|k| k.display_repr().chars().count())
        .unwrap_or(key.len())
}

/// A value whose written form spans lines (a multi-line string or array):
/// aligning it would only push its first line.
fn is_multi_line(value: &Value) -> bool {
    value.to_string().trim_end().contains('\n')
}

#[cfg(test)]
mod tests {
    use super::format;

    #[test]
    fn keys_are_ordered_and_aligned_comments_kept() {
        let text = "\
# Accounts we want.
[audience.B2B_X]
rule = 'account.employees >= 10'   # the rule
description   =    \"big\"

[activation.a]
audiences = [\"B2B_X\"]
destination = \"files\"
[activation.a.map]
name = \"account.name\"
accountId = \"account.accountId\"
";
        let formatted = format(text).expect("formats");
        assert_eq!(
            formatted,
            "\
# Accounts we want.
[audience.B2B_X]
description = \"big\"
rule        = 'account.employees >= 10'   # the rule

[activation.a]
destination = \"files\"
audiences   = [\"B2B_X\"]
[activation.a.map]
name      = \"account.name\"
accountId = \"account.accountId\"
"
        );
        assert_eq!(format(&formatted).expect("formats"), formatted);
    }

    #[test]
    fn multi_line_rules_are_kept_as_written() {
        let text =
            "[audience.B2B_X]\nrule = '''\naccount.a\n  && account.b\n'''\ndescription = \"x\"\n";
        let formatted = format(text).expect("formats");
        assert_eq!(
            formatted,
            "[audience.B2B_X]\ndescription = \"x\"\nrule = '''\naccount.a\n  && account.b\n'''\n"
        );
    }

    #[test]
    fn a_parse_error_is_returned() {
        assert!(format("[audience.x\n").is_err());
    }
}
