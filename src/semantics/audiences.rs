//! The reference semantics of audiences over a data set: computed
//! attributes, rules and composition (merge, exclude, exclude_rule, rank,
//! split), evaluated by the CEL interpreter one account at a time.
//!
//! Input: the plan, the account records (people, opportunities and events
//! attached), the person records, `now`. Output: members per audience
//! column (split parts as `NAME__part`, as in the SQL), as sorted keys.
//! The rendered SQL must produce exactly these sets; tests hold them together.

use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use super::eval::{self, EvalCtx, Record, Value, order};
use super::model::{Model, audience_column, audience_order, computed_order};
use crate::hash::sha256_hex;
use crate::plan::{AudienceDefinition, Entity, Merge, Order, Plan, SplitPlan, percent_ranges};

/// Members (keys) per audience column.
pub type Memberships = BTreeMap<String, BTreeSet<String>>;

/// The bucket 0..100 of a percent split: the first 8 hex digits of
/// sha256(seed + ":" + key), as an unsigned integer, modulo 100.
pub fn bucket(seed: &str, key: &str) -> u32 {
    let hex = sha256_hex(format!("{seed}:{key}"));
    u32::from_str_radix(&hex[..8], 16).unwrap_or(0) % 100
}

pub(crate) fn key_of(record: &Record, key: &str) -> String {
    match record.fields.get(key) {
        Some(Value::Str(s)) => s.clone(),
        Some(Value::Int(i)) => i.to_string(),
        _ => String::new(),
    }
}

/// Adds the account computed attributes to every account, in dependency order.
pub fn add_computed(plan: &Plan, accounts: &mut [Record], now: i64) -> Result<(), String> {
    let model = Model::new(plan);
    let none = |_: &str| false;
    let ctx = EvalCtx {
        now,
        in_audience: &none,
    };
    for key in computed_order(plan) {
        let c = &plan.computed[&key];
        if c.schema != model.account {
            continue;
        }
        let tree = model.typed(&c.expr, false)?;
        let field = key.rsplit('.').next().unwrap_or(&key).to_string();
        for account in accounts.iter_mut() {
            let v = eval::eval(
                &tree,
                &[("account".into(), Value::Entity(Rc::new(account.clone())))],
                &ctx,
            );
            account.fields.insert(field.clone(), v);
        }
    }
    Ok(())
}

/// Every account audience's members; `accounts` must carry computed attributes.
pub fn account_memberships(
    plan: &Plan,
    accounts: &[Rc<Record>],
    now: i64,
) -> Result<Memberships, String> {
    let model = Model::new(plan);
    let key_field = model.key(&model.account);
    let keys: Vec<String> = accounts.iter().map(|a| key_of(a, &key_field)).collect();
    let mut members: Memberships = BTreeMap::new();
    for name in audience_order(plan) {
        let a = &plan.audiences[&name];
        if a.entity != Entity::Account {
            continue;
        }
        let evaluate = |expr: &str, members: &Memberships| -> Result<Vec<Value>, String> {
            let tree = model.typed(expr, false)?;
            Ok(accounts
                .iter()
                .zip(&keys)
                .map(|(acc, key)| {
                    let lookup = |aud: &str| {
                        members
                            .get(&audience_column(aud))
                            .is_some_and(|m| m.contains(key))
                    };
                    let ctx = EvalCtx {
                        now,
                        in_audience: &lookup,
                    };
                    eval::eval(
                        &tree,
                        &[("account".into(), Value::Entity(acc.clone()))],
                        &ctx,
                    )
                })
                .collect())
        };
        match &a.definition {
            AudienceDefinition::Rule { expr } => {
                let values = evaluate(expr, &members)?;
                let set = keys
                    .iter()
                    .zip(values)
                    .filter(|(_, v)| v.truthy())
                    .map(|(k, _)| k.clone())
                    .collect();
                members.insert(audience_column(&name), set);
            }
            AudienceDefinition::Compose {
                from,
                merge,
                exclude,
                exclude_rule,
                rank,
                split,
            } => {
                let has = |aud: &str, k: &String| {
                    members
                        .get(&audience_column(aud))
                        .is_some_and(|m| m.contains(k))
                };
                let excluded_by_rule = match exclude_rule {
                    Some(rule) => evaluate(rule, &members)?,
                    None => vec![Value::Bool(false); keys.len()],
                };
                let mut pre: Vec<usize> = Vec::new();
                for (i, k) in keys.iter().enumerate() {
                    let n = from.iter().filter(|f| has(f, k)).count();
                    let merged = match merge {
                        Merge::Union => n > 0,
                        Merge::Intersection => n == from.len(),
                        Merge::ExcludeOverlap => n == 1,
                    };
                    if merged && !exclude.iter().any(|e| has(e, k)) && !excluded_by_rule[i].truthy()
                    {
                        pre.push(i);
                    }
                }
                if let Some(rank) = rank
                    && let Some(limit) = rank.limit
                {
                    let by = evaluate(&rank.by, &members)?;
                    let desc = rank.order == Order::Desc;
                    pre.sort_by(|&x, &y| {
                        let (vx, vy) = (&by[x], &by[y]);
                        let nulls = (*vx == Value::Null).cmp(&(*vy == Value::Null));
                        let mut o = order(vx, vy).unwrap_or(std::cmp::Ordering::Equal);
                        if desc {
                            o = o.reverse();
                        }
                        nulls.then(o).then_with(|| keys[x].cmp(&keys[y]))
                    });
                    pre.truncate(usize::try_from(limit).unwrap_or(0));
                }
                let set: BTreeSet<String> = pre.iter().map(|&i| keys[i].clone()).collect();
                match split {
                    Some(SplitPlan::Percent { seed, parts }) => {
                        for (part, lo, hi) in percent_ranges(parts) {
                            let in_part = set
                                .iter()
                                .filter(|k| {
                                    let b = i64::from(bucket(seed, k));
                                    b >= lo && b < hi
                                })
                                .cloned()
                                .collect();
                            members
                                .insert(audience_column(&format!("{name}.{}", part.name)), in_part);
                        }
                    }
                    Some(SplitPlan::ByAttribute { by, parts, other }) => {
                        let values = evaluate(by, &members)?;
                        let mut assigned: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
                        for &i in &pre {
                            let part = match &values[i] {
                                Value::Str(s) => parts
                                    .iter()
                                    .find(|p| p.values.contains(s))
                                    .map(|p| p.name.clone()),
                                _ => None,
                            }
                            .or_else(|| other.clone());
                            if let Some(part) = part {
                                assigned.entry(part).or_default().insert(keys[i].clone());
                            }
                        }
                        for part in parts.iter().map(|p| &p.name).chain(other) {
                            members.insert(
                                audience_column(&format!("{name}.{part}")),
                                assigned.remove(part).unwrap_or_default(),
                            );
                        }
                    }
                    None => {}
                }
                members.insert(audience_column(&name), set);
            }
        }
    }
    Ok(members)
}

/// Each person with its account attached as `person.<link>` (the link to
/// the account schema), and that account: the first account, in key order,
/// whose collection holds the person.
pub fn people_with_accounts(
    plan: &Plan,
    accounts: &[Rc<Record>],
    people: &[Rc<Record>],
) -> Vec<(Rc<Record>, Option<Rc<Record>>)> {
    let model = Model::new(plan);
    let Some(person) = &model.person else {
        return Vec::new();
    };
    let person_key = model.key(person);
    let account_key = model.key(&model.account);
    let link = plan.schemas.get(person).and_then(|s| {
        s.links
            .iter()
            .find(|(_, l)| l.to == model.account && l.via.is_none())
            .map(|(name, l)| (name.clone(), l.reverse.clone().unwrap_or_default()))
    });
    let mut sorted: Vec<&Rc<Record>> = accounts.iter().collect();
    sorted.sort_by_key(|a| key_of(a, &account_key));
    let mut account_of: BTreeMap<String, Rc<Record>> = BTreeMap::new();
    if let Some((_, reverse)) = &link {
        for acc in sorted {
            for p in acc.many.get(reverse).into_iter().flatten() {
                account_of
                    .entry(key_of(p, &person_key))
                    .or_insert_with(|| acc.clone());
            }
        }
    }
    people
        .iter()
        .map(|p| {
            let acc = account_of.get(&key_of(p, &person_key)).cloned();
            match (&link, &acc) {
                (Some((name, _)), Some(acc)) => {
                    let mut with = (**p).clone();
                    with.one.insert(name.clone(), acc.clone());
                    (Rc::new(with), Some(acc.clone()))
                }
                _ => (p.clone(), acc),
            }
        })
        .collect()
}

/// Every person audience's members (person keys). `accounts` carry their
/// computed attributes: a person rule reads its account as `account` or
/// `person.account`.
pub fn person_memberships(
    plan: &Plan,
    accounts: &[Rc<Record>],
    people: &[Rc<Record>],
    now: i64,
) -> Result<Memberships, String> {
    let model = Model::new(plan);
    let Some(person) = &model.person else {
        return Ok(BTreeMap::new());
    };
    let key_field = model.key(person);
    let none = |_: &str| false;
    let ctx = EvalCtx {
        now,
        in_audience: &none,
    };
    let linked = people_with_accounts(plan, accounts, people);
    let mut members = BTreeMap::new();
    for (name, a) in &plan.audiences {
        let AudienceDefinition::Rule { expr } = &a.definition else {
            continue;
        };
        if a.entity != Entity::Person {
            continue;
        }
        let tree = model.typed(expr, true)?;
        let set = linked
            .iter()
            .filter(|(p, acc)| {
                let vars = vec![
                    ("person".to_string(), Value::Entity(p.clone())),
                    (
                        "account".to_string(),
                        acc.clone().map_or(Value::Null, Value::Entity),
                    ),
                ];
                eval::eval(&tree, &vars, &ctx).truthy()
            })
            .map(|(p, _)| key_of(p, &key_field))
            .collect();
        members.insert(audience_column(name), set);
    }
    Ok(members)
}

#[cfg(test)]
mod tests {
    use super::bucket;

    #[test]
    fn the_bucket_is_the_first_eight_hex_digits_mod_100() {
        // sha256("s:k") starts with these digits; pinned so every engine
        // and this function stay equal.
        let hex = crate::hash::sha256_hex("s:k");
        let expected = u32::from_str_radix(&hex[..8], 16).unwrap_or(0) % 100;
        assert_eq!(bucket("s", "k"), expected);
        assert!(bucket("webinar", "ACC-000001") < 100);
    }
}
