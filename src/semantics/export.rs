//! The reference semantics of export rows: which members, people and
//! mapped values an activation exports, evaluated by the interpreter. The
//! export SQL must produce exactly these rows.

use std::collections::BTreeMap;
use std::rc::Rc;

use super::audiences::{Memberships, key_of, people_with_accounts};
use super::eval::{self, EvalCtx, Record, Value};
use super::model::{Model, audience_column};
use super::normalise;
use crate::plan::{Entity, Plan};

/// One exported row: the audience it is exported for, the account, the
/// person (for person rows) and the mapped values in mapping order.
#[derive(Clone, Debug, PartialEq)]
pub struct ExportRow {
    pub audience: String,
    pub account: Option<String>,
    pub person: Option<String>,
    pub values: Vec<Value>,
}

/// A way to an exported row: (route: 0 the person's own account, 1 a
/// relation; the account; the person).
type Candidate<'r> = (u8, Option<&'r Rc<Record>>, Option<&'r Rc<Record>>);

/// What an activation exports, as its export SQL must produce it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Exported {
    pub rows: Vec<ExportRow>,
    /// Per audience, the rows the people filter kept and consent removed
    /// (audiences without any are absent).
    pub consent_excluded: BTreeMap<String, u64>,
}

/// The rows an activation exports, as the export SQL must produce them:
/// members of each activated audience, minus members of any excluded
/// audience; person rows expand to the account's people that pass the people
/// filter and every consent filter; mapped values evaluated per row.
pub fn export_rows(
    plan: &Plan,
    name: &str,
    accounts: &[Rc<Record>],
    people: &[Rc<Record>],
    members: &Memberships,
    person_members: &Memberships,
    now: i64,
) -> Result<Exported, String> {
    let model = Model::new(plan);
    let a = plan
        .activations
        .get(name)
        .ok_or_else(|| format!("no activation {name}"))?;
    let person_rows = a.rows == Entity::Person;
    let account_key = model.key(&model.account);
    let person_key = model
        .person
        .as_ref()
        .map(|p| model.key(p))
        .unwrap_or_default();
    let people_link = model.person.as_ref().and_then(|p| {
        plan.schemas
            .get(p)?
            .links
            .values()
            .find(|l| l.to == model.account && l.via.is_none())?
            .reverse
            .clone()
    });
    // The account's collection of people related through a many-to-many
    // link, when the person has one.
    let relation_link = model.person.as_ref().and_then(|p| {
        crate::plan::relation_to(plan, p, &model.account)
            .and_then(|(name, _)| plan.schemas.get(p)?.links.get(&name)?.reverse.clone())
    });
    let none = |_: &str| false;
    let ctx = EvalCtx {
        now,
        in_audience: &none,
    };
    let typed = |e: &str| model.typed(e, person_rows);
    // Each column with its destination's identity rule.
    let mapping = a
        .mapping
        .iter()
        .map(|m| {
            let rule = normalise::rule(&a.destination_type, &m.column);
            let raw = normalise::applies_to_raw(m.transform, rule);
            typed(&m.expr).map(|t| (normalise::prepare(t, rule), rule, raw))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut filters = Vec::new();
    let mut consent = Vec::new();
    if person_rows {
        if let Some(p) = &a.people {
            filters.push(typed(p)?);
        }
        for c in &a.consent {
            consent.push(typed(&c.require)?);
        }
    }
    let excluded = |key: &str| {
        a.exclude.iter().any(|e| {
            members
                .get(&audience_column(e))
                .is_some_and(|m| m.contains(key))
        })
    };
    let by_key: BTreeMap<String, &Rc<Record>> = accounts
        .iter()
        .map(|r| (key_of(r, &account_key), r))
        .collect();
    // Each person with its account attached, so `person.account` reads it.
    let linked: BTreeMap<String, (Rc<Record>, Option<Rc<Record>>)> =
        people_with_accounts(plan, accounts, people)
            .into_iter()
            .map(|(p, acc)| (key_of(&p, &person_key), (p, acc)))
            .collect();
    // Per row: None when the people filter drops it, Some(Err(())) when
    // consent does, Some(Ok(row)) when it is exported.
    let outcome = |audience: &str,
                   acc: Option<&Rc<Record>>,
                   person: Option<&Rc<Record>>|
     -> Option<Result<ExportRow, ()>> {
        let mut vars = vec![(
            "account".to_string(),
            acc.map_or(Value::Null, |r| Value::Entity(r.clone())),
        )];
        if let Some(p) = person {
            vars.push(("person".into(), Value::Entity(p.clone())));
        }
        if !filters.iter().all(|f| eval::eval(f, &vars, &ctx).truthy()) {
            return None;
        }
        if !consent.iter().all(|f| eval::eval(f, &vars, &ctx).truthy()) {
            return Some(Err(()));
        }
        Some(Ok(ExportRow {
            audience: audience.to_string(),
            account: acc.map(|r| key_of(r, &account_key)),
            person: person.map(|p| key_of(p, &person_key)),
            values: mapping
                .iter()
                .map(|(m, rule, raw)| {
                    let v = eval::eval(m, &vars, &ctx);
                    if *raw { normalise::value(*rule, v) } else { v }
                })
                .collect(),
        }))
    };
    let mut rows = Vec::new();
    let mut consent_excluded: BTreeMap<String, u64> = BTreeMap::new();
    for audience in &a.audiences {
        let base = audience.split('.').next().unwrap_or(audience);
        let is_person = plan
            .audiences
            .get(base)
            .is_some_and(|x| x.entity == Entity::Person);
        let Some(set) =
            (if is_person { person_members } else { members }).get(&audience_column(audience))
        else {
            continue;
        };
        // Candidates (route, account, person): a person reached through
        // several member accounts is exported once, through the first route
        // that passes every filter (its own account before a relation, then
        // the smallest account key); consent counts people, not routes.
        let mut candidates: Vec<Candidate> = Vec::new();
        if is_person {
            for (p, acc) in linked
                .values()
                .filter(|(p, _)| set.contains(&key_of(p, &person_key)))
            {
                if acc
                    .as_ref()
                    .is_some_and(|r| excluded(&key_of(r, &account_key)))
                {
                    continue;
                }
                candidates.push((0, acc.as_ref(), Some(p)));
            }
        } else {
            for key in set {
                let Some(acc) = by_key.get(key).copied() else {
                    continue;
                };
                if excluded(key) {
                    continue;
                }
                if !person_rows {
                    candidates.push((0, Some(acc), None));
                    continue;
                }
                let routes = people_link
                    .iter()
                    .map(|l| (0, l))
                    .chain(relation_link.iter().map(|l| (1, l)));
                for (route, link) in routes {
                    for p in acc.many.get(link).into_iter().flatten() {
                        let p = linked.get(&key_of(p, &person_key)).map_or(p, |(l, _)| l);
                        candidates.push((route, Some(acc), Some(p)));
                    }
                }
            }
        }
        candidates.sort_by_key(|(route, acc, _)| (*route, acc.map(|a| key_of(a, &account_key))));
        let mut exported = std::collections::BTreeSet::new();
        let mut refused = std::collections::BTreeSet::new();
        for (_, acc, person) in candidates {
            let who = person.map(|p| key_of(p, &person_key));
            if who.is_some() && exported.contains(&who) {
                continue;
            }
            match outcome(audience, acc, person) {
                Some(Ok(row)) => {
                    exported.insert(who);
                    rows.push(row);
                }
                Some(Err(())) => {
                    refused.insert(who);
                }
                None => {}
            }
        }
        let refused = refused.difference(&exported).count() as u64;
        if refused > 0 {
            consent_excluded.insert(audience.clone(), refused);
        }
    }
    Ok(Exported {
        rows,
        consent_excluded,
    })
}
