//! Test support: loads a spec project's sample data (JSONL and CSV sources
//! of the plan) into interpreter records, and writes the same typed rows as
//! canonical JSONL for SQL engines, so the interpreter and every engine read
//! exactly the same input.
//!
//! Rules (the same for both sides): an empty CSV cell is missing; sources of
//! one schema merge by key, the lower `precedence` winning per field; a
//! person links to its account by key, or by email domain when the key is
//! missing and the link has `fallback = "email_domain"`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use accord::plan::Plan;
use accord::semantics::{Record, Value};
use accord::time::parse_timestamp;

/// Typed rows per schema, in key order.
pub type Tables = BTreeMap<String, Vec<BTreeMap<String, Value>>>;

pub fn load(plan: &Plan, root: &Path) -> Tables {
    let mut tables: Tables = BTreeMap::new();
    for (schema_name, schema) in &plan.schemas {
        let mut sources: Vec<_> = plan
            .sources
            .values()
            .filter(|s| &s.schema == schema_name)
            .collect();
        sources.sort_by_key(|s| s.precedence);
        let key = schema.key.clone().unwrap_or_default();
        let mut merged: BTreeMap<String, BTreeMap<String, Value>> = BTreeMap::new();
        let mut unkeyed = Vec::new();
        for source in sources {
            for path in files(&root.join(&source.path)) {
                let text = std::fs::read_to_string(&path).expect("read source");
                let raw = if source.format == accord::plan::SourceFormat::Csv {
                    csv_rows(&text)
                } else {
                    jsonl_rows(&text)
                };
                for row in raw {
                    let mut typed = BTreeMap::new();
                    for (field, def) in &schema.fields {
                        if let Some(v) = row.get(field).and_then(|v| convert(v, &def.ty)) {
                            typed.insert(field.clone(), v);
                        }
                    }
                    match typed.get(&key) {
                        Some(Value::Str(k)) => {
                            let entry = merged.entry(k.clone()).or_default();
                            for (f, v) in typed {
                                entry.entry(f).or_insert(v);
                            }
                        }
                        _ => unkeyed.push(typed),
                    }
                }
            }
        }
        let mut rows: Vec<_> = merged.into_values().collect();
        rows.extend(unkeyed);
        tables.insert(schema_name.clone(), rows);
    }
    tables
}

fn files(path: &Path) -> Vec<PathBuf> {
    let text = path.to_string_lossy();
    let (dir, ext) = if let Some(stripped) = text.strip_suffix("*.jsonl") {
        (PathBuf::from(stripped), Some("jsonl"))
    } else if let Some(stripped) = text.strip_suffix("*.csv") {
        (PathBuf::from(stripped), Some("csv"))
    } else if path.is_dir() {
        (path.to_path_buf(), None)
    } else {
        return vec![path.to_path_buf()];
    };
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("source folder")
        .flatten()
        .map(|e| e.path())
        .filter(|p| ext.is_none_or(|x| p.extension().is_some_and(|e| e == x)))
        .collect();
    out.sort();
    out
}

fn jsonl_rows(text: &str) -> Vec<BTreeMap<String, serde_json::Value>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("jsonl row"))
        .collect()
}

/// A small CSV reader: header row, `"` quoting with `""` escapes.
fn csv_rows(text: &str) -> Vec<BTreeMap<String, serde_json::Value>> {
    let mut records = Vec::new();
    let (mut row, mut field, mut quoted) = (Vec::new(), String::new(), false);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => row.push(std::mem::take(&mut field)),
            ('\n', false) => {
                row.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut row));
            }
            ('\r', false) => {}
            (c, _) => field.push(c),
        }
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        records.push(row);
    }
    let mut it = records.into_iter();
    let header = it.next().unwrap_or_default();
    it.map(|r| {
        header
            .iter()
            .zip(r)
            .filter(|(_, v)| !v.is_empty())
            .map(|(h, v)| (h.clone(), serde_json::Value::String(v)))
            .collect()
    })
    .collect()
}

fn convert(v: &serde_json::Value, ty: &str) -> Option<Value> {
    use serde_json::Value as J;
    Some(match (ty, v) {
        (_, J::Null) => return None,
        ("string", J::String(s)) => Value::Str(s.clone()),
        ("int", J::Number(n)) => Value::Int(n.as_i64()?),
        ("int", J::String(s)) => Value::Int(s.trim().parse().ok()?),
        ("double", J::Number(n)) => Value::Double(n.as_f64()?),
        ("double", J::String(s)) => Value::Double(s.trim().parse().ok()?),
        ("bool", J::Bool(b)) => Value::Bool(*b),
        ("bool", J::String(s)) => Value::Bool(s == "true"),
        ("timestamp", J::String(s)) => Value::Timestamp(parse_timestamp(s)?),
        (list, J::Array(items)) if list.starts_with("list<") => {
            let elem = &list[5..list.len() - 1];
            Value::List(items.iter().filter_map(|i| convert(i, elem)).collect())
        }
        _ => return None,
    })
}

/// The account records (related rows attached, leaf schemas first) and the
/// person records.
pub fn records(plan: &Plan, tables: &Tables) -> (Vec<Record>, Vec<Rc<Record>>) {
    let class = |c: &str| {
        plan.schemas
            .iter()
            .find(|(_, s)| s.class.as_str() == c)
            .map(|(n, _)| n.clone())
            .unwrap_or_default()
    };
    let (account, person) = (class("account"), class("person"));
    let mut built: BTreeMap<String, Vec<Record>> = tables
        .iter()
        .map(|(schema, rows)| {
            let recs = rows
                .iter()
                .map(|r| Record {
                    schema: schema.clone(),
                    fields: r.clone(),
                    ..Record::default()
                })
                .collect();
            (schema.clone(), recs)
        })
        .collect();
    // Children before parents: a schema is attached once nothing links to it
    // that is still pending.
    let mut pending: Vec<String> = plan.schemas.keys().cloned().collect();
    let mut people_rc = Vec::new();
    while !pending.is_empty() {
        let Some(pos) = pending.iter().position(|s| {
            !pending.iter().any(|other| {
                plan.schemas[other]
                    .links
                    .values()
                    .any(|l| &l.to == s && other != s)
            })
        }) else {
            break;
        };
        let schema = pending.remove(pos);
        if schema == account {
            continue;
        }
        let recs: Vec<Rc<Record>> = built
            .remove(&schema)
            .unwrap_or_default()
            .into_iter()
            .map(Rc::new)
            .collect();
        if schema == person {
            people_rc = recs.clone();
        }
        for (link_name, link) in &plan.schemas[&schema].links {
            // Many-to-many: the target's collection holds the rows its
            // relation pairs it with, each once.
            if let (Some(path), Some(reverse)) = (
                accord::plan::relation_path(plan, &schema, link_name),
                &link.reverse,
            ) {
                let own_key = plan.schemas[&schema].key.clone().unwrap_or_default();
                let target_key = plan.schemas[&link.to].key.clone().unwrap_or_default();
                let text = |v: Option<&Value>| match v {
                    Some(Value::Str(s)) => Some(s.clone()),
                    Some(Value::Int(i)) => Some(i.to_string()),
                    _ => None,
                };
                let pairs: std::collections::BTreeSet<(String, String)> = tables
                    .get(&path.table)
                    .into_iter()
                    .flatten()
                    .filter_map(|row| {
                        Some((
                            text(row.get(&path.parent_fk))?,
                            text(row.get(&path.child_fk))?,
                        ))
                    })
                    .collect();
                if let Some(parents) = built.get_mut(&link.to) {
                    for parent in parents.iter_mut() {
                        let Some(pk) = text(parent.fields.get(&target_key)) else {
                            continue;
                        };
                        let related: Vec<Rc<Record>> = recs
                            .iter()
                            .filter(|r| {
                                text(r.fields.get(&own_key))
                                    .is_some_and(|k| pairs.contains(&(pk.clone(), k)))
                            })
                            .cloned()
                            .collect();
                        parent.many.insert(reverse.clone(), related);
                    }
                }
                continue;
            }
            let (Some(by), Some(reverse)) = (&link.by, &link.reverse) else {
                continue;
            };
            let target_key = plan.schemas[&link.to].key.clone().unwrap_or_default();
            let email = plan.schemas[&schema]
                .fields
                .iter()
                .find(|(_, f)| f.identity.as_deref() == Some("email"))
                .map(|(n, _)| n.clone());
            let domain = plan.schemas[&link.to]
                .fields
                .iter()
                .find(|(_, f)| f.identity.as_deref() == Some("domain"))
                .map(|(n, _)| n.clone());
            let Some(parents) = built.get_mut(&link.to) else {
                continue;
            };
            // Domain fallback: the smallest account key with that domain.
            let mut by_domain: BTreeMap<String, Value> = BTreeMap::new();
            if let Some(d) = &domain {
                for parent in parents.iter() {
                    if let (Some(Value::Str(dom)), Some(k @ Value::Str(key))) =
                        (parent.fields.get(d), parent.fields.get(&target_key))
                    {
                        let entry = by_domain
                            .entry(dom.to_lowercase())
                            .or_insert_with(|| k.clone());
                        if matches!(&*entry, Value::Str(best) if key < best) {
                            *entry = k.clone();
                        }
                    }
                }
            }
            for rec in &recs {
                for parent in parents.iter_mut() {
                    let linked = match rec.fields.get(by) {
                        Some(v) => parent.fields.get(&target_key) == Some(v),
                        None => match (link.fallback.map(|f| f.as_str()), &email) {
                            (Some("email_domain"), Some(e)) => match rec.fields.get(e) {
                                Some(Value::Str(e)) => {
                                    let dom = e.split('@').nth(1).unwrap_or("").to_lowercase();
                                    by_domain.contains_key(&dom)
                                        && by_domain.get(&dom) == parent.fields.get(&target_key)
                                }
                                _ => false,
                            },
                            _ => false,
                        },
                    };
                    if linked {
                        parent
                            .many
                            .entry(reverse.clone())
                            .or_default()
                            .push(rec.clone());
                    }
                }
            }
        }
    }
    (built.remove(&account).unwrap_or_default(), people_rc)
}

/// `YYYY-MM-DD HH:MM:SS` of microseconds since the epoch.
pub fn timestamp_text(micros: i64) -> String {
    accord::time::utc(micros)
        .expect("a timestamp of the data")
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

fn json_of(v: &Value) -> serde_json::Value {
    match v {
        Value::Null => serde_json::Value::Null,
        Value::Bool(b) => (*b).into(),
        Value::Int(i) => (*i).into(),
        Value::Double(d) => serde_json::json!(d),
        Value::Str(s) => s.clone().into(),
        Value::Timestamp(t) | Value::Duration(t) => timestamp_text(*t).into(),
        Value::List(items) => items.iter().map(json_of).collect(),
        Value::Entity(_) => serde_json::Value::Null,
    }
}

/// Writes `<schema>.jsonl` per table and `tables.json` (schema -> column ->
/// SQL type) for the engines' loaders.
pub fn write_canonical(plan: &Plan, tables: &Tables, dir: &Path) {
    std::fs::create_dir_all(dir).expect("tmp dir");
    let mut types = BTreeMap::new();
    for (schema, rows) in tables {
        let text: String = rows
            .iter()
            .map(|r| {
                let obj: serde_json::Map<String, serde_json::Value> =
                    r.iter().map(|(k, v)| (k.clone(), json_of(v))).collect();
                serde_json::Value::Object(obj).to_string() + "\n"
            })
            .collect();
        std::fs::write(dir.join(format!("{schema}.jsonl")), text).expect("write table");
        let cols: BTreeMap<String, String> = plan.schemas[schema]
            .fields
            .iter()
            .map(|(f, d)| {
                let t = match d.ty.as_str() {
                    "int" => "BIGINT",
                    "double" => "DOUBLE",
                    "bool" => "BOOLEAN",
                    "timestamp" => "TIMESTAMP",
                    "list<string>" => "VARCHAR[]",
                    "list<int>" => "BIGINT[]",
                    "list<double>" => "DOUBLE[]",
                    _ => "VARCHAR",
                };
                (f.clone(), t.to_string())
            })
            .collect();
        types.insert(schema.clone(), cols);
    }
    std::fs::write(
        dir.join("tables.json"),
        serde_json::to_string(&types).expect("json"),
    )
    .expect("write types");
}
