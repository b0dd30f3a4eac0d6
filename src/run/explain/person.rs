//! `accord explain person ID --activation NAME`: why a person is or is not
//! exported by a person-row activation.
//!
//! The verdict is the run's: the activation's rendered export query, its
//! rows kept or dropped by the run's own rules (`execute::destination_rows`:
//! audiences blocked by policy, rows without any identity). The reasons come
//! from the same conditions as columns (`render::export::explain_sql`): per
//! activated audience and per way to the person (its own account, or a
//! relation), whether the account (or, for a person audience, the person)
//! is a member, each excluded audience, the people filter, each consent
//! requirement and the mapped identity columns; the people filter and the
//! consent requirements are also shown step by step by the interpreter.

use std::collections::BTreeMap;
use std::rc::Rc;

use serde::Serialize;
use serde_json::Value as Json;

use super::account::no_such;
use super::records::{account_record, person_record};
use super::steps::{Step, render_steps, walk};
use super::{Context, Problem};
use crate::diag::thousands;
use crate::plan::{ActivationPlan, Entity, Plan};
use crate::render::dialect::{self, NOW_PLACEHOLDER};
use crate::render::export::{ExplainColumns, explain_sql};
use crate::render::query;
use crate::run::engine::{self, literal};
use crate::run::execute::{
    MemberBatching, blocked_audiences, destination_rows, is_present, job, lacks_identity,
};
use crate::run::report::ActivationReport;
use crate::semantics::Model;
use crate::semantics::eval::{self, EvalCtx, Record, Value};

#[derive(Clone, Debug, Serialize)]
pub struct ExportExplanation {
    pub person: String,
    pub activation: String,
    pub destination: String,
    pub destination_type: String,
    /// Whether the run exports a row of the person, for any audience.
    pub exported: bool,
    pub audiences: Vec<AudienceExport>,
    /// Where the interpreter and the engine disagree: a bug.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// One activated audience: whether the person leaves for it, and why.
#[derive(Clone, Debug, Serialize)]
pub struct AudienceExport {
    pub audience: String,
    /// As the run computes it.
    pub exported: bool,
    /// Why, in a phrase: the first condition that keeps the person out,
    /// or the account the row goes through.
    pub reason: String,
    /// Every way to the person, in the order the export tries them.
    pub routes: Vec<Route>,
    /// The same as lines, with the interpreter's steps.
    pub steps: Vec<Step>,
}

/// One way to the person: through an account of the audience.
#[derive(Clone, Debug, Serialize)]
pub struct Route {
    /// The account the row goes through (none: the person has no account).
    pub account: Option<String>,
    /// `own account` (the person's account link) or `relation`.
    pub via: &'static str,
    /// Whether the account (the person, for a person audience) is in the
    /// audience.
    pub member: bool,
    /// Excluded audiences that hold the account.
    pub excluded_by: Vec<String>,
    /// The people filter's value; absent without a filter, null unknown
    /// (which leaves the person out).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub people: Option<Json>,
    pub consent: Vec<ConsentCheck>,
    pub identities: Vec<IdentityCheck>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ConsentCheck {
    pub policy: String,
    pub actions: Vec<String>,
    pub require: String,
    /// The requirement's value; null (unknown) counts as no consent.
    pub value: Json,
}

/// An identity column of the row: its value after normalisation (and
/// hashing), and the fields it is made of.
#[derive(Clone, Debug, Serialize)]
pub struct IdentityCheck {
    pub column: String,
    pub identity: String,
    pub value: Json,
    pub present: bool,
    /// `schema.field` and its value in the data.
    pub reads: Vec<(String, Json)>,
}

impl Route {
    /// The first condition that keeps the row out, if any (identity aside:
    /// that one drops the row after the export query).
    fn refusal(&self, audience: &str, person_audience: bool) -> Option<String> {
        let account = self.account.as_deref().unwrap_or("(none)");
        if !self.member {
            return Some(if person_audience {
                format!("the person is not in {audience}")
            } else {
                format!("account {account} is not in {audience}")
            });
        }
        if let Some(e) = self.excluded_by.first() {
            return Some(format!("account {account} is in the excluded audience {e}"));
        }
        if self.people.as_ref().is_some_and(|v| *v != Json::Bool(true)) {
            return Some("the people filter leaves the person out".into());
        }
        if let Some(c) = self.consent.iter().find(|c| c.value != Json::Bool(true)) {
            return Some(format!(
                "consent policy {} is not met ({})",
                c.policy, c.require
            ));
        }
        None
    }
}

/// The activation `name`, which must export person rows.
fn person_activation<'p>(plan: &'p Plan, name: &str) -> Result<&'p ActivationPlan, Problem> {
    let person_rows = || {
        plan.activations
            .iter()
            .filter(|(_, a)| a.rows == Entity::Person)
            .map(|(n, _)| n.as_str())
    };
    let list = || {
        let names: Vec<String> = person_rows().map(|n| format!("`{n}`")).collect();
        if names.is_empty() {
            "the project has no activation of person rows".to_string()
        } else {
            format!("activations of person rows: {}", names.join(", "))
        }
    };
    let Some(activation) = plan.activations.get(name) else {
        let help = match crate::diag::did_you_mean(name, person_rows()) {
            Some(m) => format!("did you mean `{m}`? {}", list()),
            None => list(),
        };
        return Err(Problem::new(format!("no activation `{name}` in the plan")).help(help));
    };
    if activation.rows != Entity::Person {
        let audience = activation.audiences.first().map_or("NAME", String::as_str);
        return Err(Problem::new(format!(
            "`{name}` exports account rows (to {}, a {} destination): no person is exported by it",
            activation.destination, activation.destination_type
        ))
        .help(format!(
            "`accord explain account ID --audience {audience}` explains an account's membership; {}",
            list()
        )));
    }
    Ok(activation)
}

/// Why person `person` is or is not exported by the activation `name`.
pub fn explain_person_export(
    cx: &Context<'_>,
    person: &str,
    name: &str,
) -> Result<ExportExplanation, Problem> {
    let Context {
        plan, jobs, now, ..
    } = *cx;
    let activation = person_activation(plan, name)?;
    let evaluation = cx.evaluate()?;
    let engine = evaluation.engine.as_ref();

    // The verdict, as the run reaches it.
    let mut report = ActivationReport::default();
    let mut blocked = blocked_audiences(plan, activation, &mut report);
    if !blocked.is_empty() {
        // As the run: one blocked audience stops the whole dataflow.
        blocked = activation.audiences.iter().cloned().collect();
    }
    let sql = job(
        engine,
        jobs,
        &format!("exports/{name}.sql"),
        &evaluation.now_sql,
    )
    .ok_or_else(|| Problem::new(format!("no rendered export job for `{name}`")))?;
    let exported_rows = destination_rows(
        engine,
        activation,
        &sql,
        &blocked,
        &mut report,
        MemberBatching::held(),
    )?;
    let exported = |audience: &str| exported_rows.contains(&format!("{audience}/{person}"));

    // The reasons: the export's conditions as columns, for this person.
    let d = dialect::by_name("datafusion").ok_or("no datafusion dialect")?;
    let model = query::Model::new(plan);
    let conditions = explain_sql(&model, d.as_ref(), name, activation).map_err(|errors| {
        errors
            .iter()
            .map(|e| format!("{}: {}", e.place, e.reason))
            .collect::<Vec<_>>()
            .join("; ")
    })?;
    let batch = engine.query(&format!(
        "SELECT * FROM (\n{}\n) __q WHERE CAST(__person_key AS STRING) = {}",
        conditions.replace(NOW_PLACEHOLDER, &evaluation.now_sql),
        literal(person)
    ))?;
    let mut routes: BTreeMap<String, Vec<Route>> = BTreeMap::new();
    let mut mapped: BTreeMap<(String, Option<String>), Vec<Json>> = BTreeMap::new();
    let column = |name: &str| {
        batch
            .column_by_name(name)
            .ok_or_else(|| format!("the explain query has no column `{name}`"))
    };
    let accounts = engine::keys(&batch, "__account_key")?;
    let audiences = engine::keys(&batch, "__audience")?;
    for i in 0..batch.num_rows() {
        let cell = |name: &str| column(name).map(|c| engine::cell(c, i));
        let audience = audiences[i].clone().unwrap_or_default();
        let values = activation
            .mapping
            .iter()
            .map(|m| cell(&m.column))
            .collect::<Result<Vec<_>, _>>()?;
        let mut excluded_by = Vec::new();
        for (j, e) in activation.exclude.iter().enumerate() {
            if cell(&ExplainColumns::excluded(j))? == Json::Bool(true) {
                excluded_by.push(e.clone());
            }
        }
        let consent = activation
            .consent
            .iter()
            .enumerate()
            .map(|(j, c)| {
                Ok(ConsentCheck {
                    policy: c.policy.clone(),
                    actions: c.actions.clone(),
                    require: c.require.clone(),
                    value: cell(&ExplainColumns::consent(j))?,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let route = Route {
            account: accounts[i].clone(),
            via: if cell(ExplainColumns::ROUTE)?.as_i64() == Some(1) {
                "relation"
            } else {
                "own account"
            },
            member: cell(ExplainColumns::MEMBER)? == Json::Bool(true),
            excluded_by,
            people: match activation.people {
                Some(_) => Some(cell(ExplainColumns::PEOPLE)?),
                None => None,
            },
            consent,
            identities: Vec::new(),
        };
        mapped.insert((audience.clone(), route.account.clone()), values);
        routes.entry(audience).or_default().push(route);
    }
    for list in routes.values_mut() {
        // The order the export tries them in: own account, then relation;
        // then by account key.
        list.sort_by(|a, b| {
            (a.via != "own account", &a.account).cmp(&(b.via != "own account", &b.account))
        });
    }

    // The records the interpreter reads.
    let own_account = routes
        .values()
        .flatten()
        .find(|r| r.via == "own account")
        .and_then(|r| r.account.clone());
    let mut records: BTreeMap<String, Rc<Record>> = BTreeMap::new();
    for key in routes.values().flatten().filter_map(|r| r.account.clone()) {
        if let std::collections::btree_map::Entry::Vacant(slot) = records.entry(key.clone())
            && let Some(r) = account_record(engine, plan, &key, now)?
        {
            slot.insert(Rc::new(r));
        }
    }
    let own = own_account.as_ref().and_then(|k| records.get(k).cloned());
    let Some(person_record) = person_record(engine, plan, person, own)? else {
        return Err(no_such(plan, Entity::Person, person));
    };
    let person_record = Rc::new(person_record);
    let semantics = Model::new(plan);
    let people_filter = match &activation.people {
        Some(p) => Some(semantics.typed(p, true)?),
        None => None,
    };
    let consent_rules = activation
        .consent
        .iter()
        .map(|c| semantics.typed(&c.require, true))
        .collect::<Result<Vec<_>, _>>()?;
    let none = |_: &str| false;
    let ctx = EvalCtx {
        now,
        in_audience: &none,
    };

    let mut warnings = Vec::new();
    let mut explained = Vec::new();
    for audience in &activation.audiences {
        let base = audience.split('.').next().unwrap_or(audience);
        let person_audience = plan
            .audiences
            .get(base)
            .is_some_and(|a| a.entity == Entity::Person);
        let mut list = routes.remove(audience).unwrap_or_default();
        let mut steps = Vec::new();
        let mut chosen: Option<usize> = None;
        for (i, route) in list.iter_mut().enumerate() {
            let account = route.account.as_ref().and_then(|k| records.get(k).cloned());
            let vars = vec![
                (
                    "account".to_string(),
                    account.clone().map_or(Value::Null, Value::Entity),
                ),
                ("person".to_string(), Value::Entity(person_record.clone())),
            ];
            let values = mapped
                .get(&(audience.clone(), route.account.clone()))
                .cloned()
                .unwrap_or_default();
            route.identities = identities(
                activation,
                &values,
                &semantics,
                &person_record,
                account.as_deref(),
            );
            let refusal = route.refusal(audience, person_audience);
            if refusal.is_none() && chosen.is_none() {
                chosen = Some(i);
            }
            steps.push(Step::new(
                0,
                match &route.account {
                    Some(a) => format!("through account {a} ({})", route.via),
                    None => "without an account".to_string(),
                },
                refusal
                    .clone()
                    .unwrap_or_else(|| "passes every filter".into()),
            ));
            let flag = |b: bool| if b { "in" } else { "out" };
            steps.push(Step::new(
                1,
                if person_audience {
                    format!("the person in {audience}")
                } else {
                    format!("in {audience}")
                },
                flag(route.member),
            ));
            for e in &activation.exclude {
                steps.push(Step::new(
                    1,
                    format!("exclude {e}"),
                    flag(route.excluded_by.contains(e)),
                ));
            }
            if let (Some(value), Some(filter)) = (&route.people, &people_filter) {
                steps.push(Step::new(1, "people filter", value.to_string()));
                let interpreted = eval::eval(filter, &vars, &ctx).truthy();
                if interpreted != (*value == Json::Bool(true)) {
                    warnings.push(disagreement("the people filter", interpreted));
                }
                walk(filter, &vars, &ctx, 2, &mut steps);
            }
            for (check, rule) in route.consent.iter().zip(&consent_rules) {
                steps.push(Step::new(
                    1,
                    format!(
                        "consent {} (for {}): requires {}",
                        check.policy,
                        check.actions.join(", "),
                        check.require
                    ),
                    match &check.value {
                        Json::Null => "unknown: counts as no consent".to_string(),
                        v => v.to_string(),
                    },
                ));
                let interpreted = eval::eval(rule, &vars, &ctx).truthy();
                if interpreted != (check.value == Json::Bool(true)) {
                    warnings.push(disagreement(
                        &format!("consent {}", check.policy),
                        interpreted,
                    ));
                }
                walk(rule, &vars, &ctx, 2, &mut steps);
            }
            for id in &route.identities {
                let value = if id.present {
                    id.value.to_string()
                } else {
                    let reads: Vec<String> = id
                        .reads
                        .iter()
                        .map(|(field, v)| format!("{field} = {v}"))
                        .collect();
                    let any_read = id.reads.iter().any(|(_, v)| is_present(v));
                    match (reads.is_empty(), any_read) {
                        (true, _) => "missing".to_string(),
                        (false, true) => {
                            format!("missing: {} does not normalise", reads.join(", "))
                        }
                        (false, false) => format!("missing: {}", reads.join(", ")),
                    }
                };
                steps.push(Step::new(
                    1,
                    format!("identity {} ({})", id.column, id.identity),
                    value,
                ));
            }
        }
        let is_exported = exported(audience)?;
        let reason = if blocked.contains(audience) {
            let why = report
                .warnings
                .iter()
                .find(|w| w.contains("not activated"))
                .cloned()
                .unwrap_or_else(|| "a policy blocks the activation".into());
            format!("blocked: {why}")
        } else if list.is_empty() {
            if person_audience {
                format!("the person is not in {audience}")
            } else {
                "the person is linked to no account".to_string()
            }
        } else if let Some(i) = chosen {
            let route = &list[i];
            let values = mapped
                .get(&(audience.clone(), route.account.clone()))
                .cloned()
                .unwrap_or_default();
            if lacks_identity(activation, &values) {
                "every identity column is empty: the run leaves the row out".to_string()
            } else {
                let missing: Vec<&str> = route
                    .identities
                    .iter()
                    .filter(|i| !i.present)
                    .map(|i| i.column.as_str())
                    .collect();
                let through = match &route.account {
                    Some(a) => format!("exported through account {a}"),
                    None => "exported".to_string(),
                };
                if missing.is_empty() {
                    through
                } else {
                    format!("{through}, without {}", missing.join(", "))
                }
            }
        } else {
            list[0]
                .refusal(audience, person_audience)
                .unwrap_or_default()
        };
        // What the conditions predict, against what the run does.
        let predicted = !blocked.contains(audience)
            && chosen.is_some_and(|i| {
                let values = mapped
                    .get(&(audience.clone(), list[i].account.clone()))
                    .cloned()
                    .unwrap_or_default();
                !lacks_identity(activation, &values)
            });
        if predicted != is_exported {
            warnings.push(format!(
                "{audience}: the conditions say {}, the export query says {}: they disagree (a bug; please report it)",
                if predicted { "exported" } else { "not exported" },
                if is_exported { "exported" } else { "not exported" },
            ));
        }
        explained.push(AudienceExport {
            audience: audience.clone(),
            exported: is_exported,
            reason,
            routes: list,
            steps,
        });
    }
    Ok(ExportExplanation {
        person: person.to_string(),
        activation: name.to_string(),
        destination: activation.destination.clone(),
        destination_type: activation.destination_type.clone(),
        exported: explained.iter().any(|a| a.exported),
        audiences: explained,
        warnings,
    })
}

fn disagreement(what: &str, interpreted: bool) -> String {
    format!(
        "{what}: the CEL interpreter says {interpreted}: the engine and the interpreter disagree (a bug; please report it)"
    )
}

/// The identity columns of a row, with the fields each reads.
fn identities(
    activation: &ActivationPlan,
    values: &[Json],
    model: &Model,
    person: &Record,
    account: Option<&Record>,
) -> Vec<IdentityCheck> {
    activation
        .mapping
        .iter()
        .zip(values)
        .filter_map(|(m, value)| {
            let identity = m.identity.clone()?;
            let reads = m
                .reads
                .iter()
                .filter_map(|read| {
                    let (schema, field) = read.split_once('.')?;
                    let record = if Some(schema) == model.person.as_deref() {
                        Some(person)
                    } else if schema == model.account {
                        account
                    } else {
                        None
                    }?;
                    let value = record.fields.get(field).map_or(Json::Null, json_of);
                    Some((read.clone(), value))
                })
                .collect();
            Some(IdentityCheck {
                column: m.column.clone(),
                identity,
                value: value.clone(),
                present: is_present(value),
                reads,
            })
        })
        .collect()
}

/// A record's value as JSON, for the fields an identity reads.
fn json_of(v: &Value) -> Json {
    match v {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(i) => Json::from(*i),
        Value::Double(d) => serde_json::Number::from_f64(*d).map_or(Json::Null, Json::Number),
        Value::Str(s) => Json::String(s.clone()),
        other => Json::String(super::steps::show(other)),
    }
}

impl ExportExplanation {
    pub fn render_text(&self) -> String {
        let mut s = format!(
            "person {} is {} by {} (to {}, a {} destination)\n",
            self.person,
            if self.exported {
                "EXPORTED"
            } else {
                "NOT exported"
            },
            self.activation,
            self.destination,
            self.destination_type
        );
        for w in &self.warnings {
            s.push_str(&format!("warning: {w}\n"));
        }
        let total = self.audiences.len() as u64;
        for a in &self.audiences {
            s.push_str(&format!(
                "  audience {}  => {}: {}\n",
                a.audience,
                if a.exported {
                    "exported"
                } else {
                    "not exported"
                },
                a.reason
            ));
            s.push_str(&render_steps(&a.steps, 2));
        }
        if total > 1 {
            let n = self.audiences.iter().filter(|a| a.exported).count() as u64;
            s.push_str(&format!(
                "  exported for {} of {} audiences\n",
                thousands(n),
                thousands(total)
            ));
        }
        s
    }
}
