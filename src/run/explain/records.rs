//! The records the CEL interpreter reads, from the run's unified tables:
//! one account or person with its related rows attached (collections
//! depth-first, as the rules read them) and its computed attributes.

use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use serde_json::Value as Json;

use crate::plan::{LinkFallback, Plan};
use crate::run::engine::{self, Engine, ident, literal};
use crate::semantics::Model;
use crate::semantics::eval::{Record, Value};
use crate::time;

/// The account `id` with its collections and computed attributes; `None`
/// when the data has no such account.
pub(super) fn account_record(
    engine: &dyn Engine,
    plan: &Plan,
    id: &str,
    now: time::Micros,
) -> Result<Option<Record>, String> {
    let model = Model::new(plan);
    let account_schema = &model.account;
    let schema = &plan.schemas[account_schema];
    let key = schema.key.clone().unwrap_or_default();
    let mut found = rows(engine, plan, account_schema, &key_is(&key, id))?;
    if found.is_empty() {
        return Ok(None);
    }
    let domain = schema
        .fields
        .iter()
        .find(|(_, f)| f.identity.as_deref() == Some("domain"))
        .and_then(|(n, _)| match found[0].fields.get(n) {
            Some(Value::Str(d)) => Some(d.clone()),
            _ => None,
        });
    attach(engine, plan, account_schema, &mut found, domain, 0)?;
    crate::semantics::add_computed(plan, &mut found, now)?;
    Ok(Some(found.remove(0)))
}

/// The person `id` with its own collections, and with `account` (its
/// account's record, when it has one) as `person.<link>`, the link to the
/// account schema that rules read as `person.account`; `None` when the
/// data has no such person.
pub(super) fn person_record(
    engine: &dyn Engine,
    plan: &Plan,
    id: &str,
    account: Option<Rc<Record>>,
) -> Result<Option<Record>, String> {
    let model = Model::new(plan);
    let Some(person) = &model.person else {
        return Ok(None);
    };
    let key = model.key(person);
    let mut found = rows(engine, plan, person, &key_is(&key, id))?;
    if found.is_empty() {
        return Ok(None);
    }
    attach(engine, plan, person, &mut found, None, 0)?;
    let mut record = found.remove(0);
    let link = plan.schemas[person]
        .links
        .iter()
        .find(|(_, l)| l.to == model.account && l.via.is_none())
        .map(|(name, _)| name.clone());
    if let (Some(link), Some(account)) = (link, account) {
        record.one.insert(link, account);
    }
    Ok(Some(record))
}

/// The SQL condition "the key column is `id`", whatever the key's type.
fn key_is(key: &str, id: &str) -> String {
    format!("CAST({} AS STRING) = {}", ident(key), literal(id))
}

/// A value from the engine, typed by the schema field.
fn to_value(json: &Json, ty: &str) -> Value {
    match (json, ty) {
        (Json::Null, _) => Value::Null,
        (Json::String(s), "timestamp") => {
            time::parse_timestamp(s).map_or(Value::Null, Value::Timestamp)
        }
        (Json::String(s), _) => Value::Str(s.clone()),
        (Json::Bool(b), _) => Value::Bool(*b),
        (Json::Number(n), "double") => n.as_f64().map_or(Value::Null, Value::Double),
        (Json::Number(n), _) => n
            .as_i64()
            .map(Value::Int)
            .or_else(|| n.as_f64().map(Value::Double))
            .unwrap_or(Value::Null),
        (Json::Array(items), ty) => {
            let inner = ty
                .strip_prefix("list<")
                .and_then(|t| t.strip_suffix('>'))
                .unwrap_or("string");
            Value::List(items.iter().map(|i| to_value(i, inner)).collect())
        }
        (other, _) => Value::Str(other.to_string()),
    }
}

/// Rows of `schema` matching `filter`, as records keyed by their key.
fn rows(
    engine: &dyn Engine,
    plan: &Plan,
    schema: &str,
    filter: &str,
) -> Result<Vec<Record>, String> {
    let s = &plan.schemas[schema];
    let batch = engine.query(&format!("SELECT * FROM {} WHERE {filter}", ident(schema)))?;
    let mut out = Vec::new();
    for i in 0..batch.num_rows() {
        let mut fields = BTreeMap::new();
        for (name, f) in &s.fields {
            if let Some(col) = batch.column_by_name(name) {
                fields.insert(name.clone(), to_value(&engine::cell(col, i), &f.ty));
            }
        }
        out.push(Record {
            schema: schema.to_string(),
            fields,
            ..Record::default()
        });
    }
    Ok(out)
}

fn key_text(r: &Record, key: &str) -> Option<String> {
    match r.fields.get(key) {
        Some(Value::Str(s)) => Some(s.clone()),
        Some(Value::Int(i)) => Some(i.to_string()),
        _ => None,
    }
}

/// Attaches the collections of `records` (of `schema`), depth-first.
fn attach(
    engine: &dyn Engine,
    plan: &Plan,
    schema: &str,
    records: &mut [Record],
    parent_domain: Option<String>,
    depth: usize,
) -> Result<(), String> {
    let Some(key) = plan.schemas[schema].key.clone() else {
        return Ok(());
    };
    if depth > 3 || records.is_empty() {
        return Ok(());
    }
    let keys: BTreeSet<String> = records.iter().filter_map(|r| key_text(r, &key)).collect();
    let in_list = keys
        .iter()
        .map(|k| literal(k))
        .collect::<Vec<_>>()
        .join(", ");
    for (child, cs) in &plan.schemas {
        for (link_name, link) in &cs.links {
            if link.to != schema {
                continue;
            }
            if let (Some(path), Some(reverse)) = (
                crate::plan::relation_path(plan, child, link_name),
                &link.reverse,
            ) {
                // Many-to-many: the rows the relation pairs each record
                // with, each once (as the rendered SQL reads them).
                let pairs = engine.query(&format!(
                    "SELECT DISTINCT CAST({p} AS STRING) AS parent, CAST({c} AS STRING) AS child FROM {t} WHERE {p} IN ({in_list}) AND {c} IS NOT NULL",
                    p = ident(&path.parent_fk),
                    c = ident(&path.child_fk),
                    t = ident(&path.table)
                ))?;
                let parents = engine::keys(&pairs, "parent")?;
                let children_of = engine::keys(&pairs, "child")?;
                let pairs: BTreeSet<(String, String)> = parents
                    .into_iter()
                    .zip(children_of)
                    .filter_map(|(p, c)| Some((p?, c?)))
                    .collect();
                let Some(child_key) = cs.key.clone() else {
                    continue;
                };
                let wanted = pairs
                    .iter()
                    .map(|(_, c)| literal(c))
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect::<Vec<_>>();
                let mut children = if wanted.is_empty() {
                    Vec::new()
                } else {
                    rows(
                        engine,
                        plan,
                        child,
                        &format!(
                            "CAST({} AS STRING) IN ({})",
                            ident(&child_key),
                            wanted.join(", ")
                        ),
                    )?
                };
                attach(engine, plan, child, &mut children, None, depth + 1)?;
                let children: Vec<Rc<Record>> = children.into_iter().map(Rc::new).collect();
                for r in records.iter_mut() {
                    let k = key_text(r, &key).unwrap_or_default();
                    let mine = children
                        .iter()
                        .filter(|c| {
                            key_text(c, &child_key)
                                .is_some_and(|ck| pairs.contains(&(k.clone(), ck)))
                        })
                        .cloned()
                        .collect();
                    r.many.insert(reverse.clone(), mine);
                }
                continue;
            }
            let (Some(by), Some(reverse)) = (&link.by, &link.reverse) else {
                continue;
            };
            let mut filter = format!("{} IN ({in_list})", ident(by));
            // The email-domain fallback, as the rendered SQL links people.
            if let (Some(LinkFallback::EmailDomain), Some(domain)) = (link.fallback, &parent_domain)
                && let Some((email, _)) = cs
                    .fields
                    .iter()
                    .find(|(_, f)| f.identity.as_deref() == Some("email"))
            {
                filter = format!(
                    "({filter}) OR ({by} IS NULL AND lower(split_part({e}, '@', 2)) = lower({d}))",
                    by = ident(by),
                    e = ident(email),
                    d = literal(domain)
                );
            }
            let mut children = rows(engine, plan, child, &filter)?;
            attach(engine, plan, child, &mut children, None, depth + 1)?;
            for r in records.iter_mut() {
                let k = key_text(r, &key);
                let mine: Vec<Rc<Record>> = children
                    .iter()
                    .filter(|c| {
                        let fk = key_text(c, by);
                        fk == k
                            || (fk.is_none() && parent_domain.is_some() && link.fallback.is_some())
                    })
                    .cloned()
                    .map(Rc::new)
                    .collect();
                r.many.insert(reverse.clone(), mine);
            }
        }
    }
    Ok(())
}
