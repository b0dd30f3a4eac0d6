//! `accord explain account ID --audience NAME` (and `accord explain person
//! ID --audience NAME` for person audiences): why one account or person is
//! in or out of an audience.
//!
//! A rule is shown one sub-expression at a time by the interpreter; a
//! composition as its merge and exclusions, then its rank (the account's
//! position among the candidates, and the cutoff) or its split (the bucket
//! or value, and each part's range), read from the account query with its
//! steps as columns (`render::query::accounts_explained`), so a position or
//! a bucket is the one the run computes, ties broken as it breaks them.

use std::rc::Rc;

use serde::Serialize;
use serde_json::Value as Json;

use super::records::{account_record, person_record};
use super::steps::{Step, render_steps, walk};
use super::{Context, Members, Problem, audience_of};
use crate::diag::thousands;
use crate::plan::{AudienceDefinition, Entity, Order, Plan, RankPlan, SplitPlan, percent_ranges};
use crate::render::dialect::{self, NOW_PLACEHOLDER};
use crate::render::query::{self, Steps};
use crate::run::engine::{self, Engine, ident, literal};
use crate::run::execute::Evaluation;
use crate::semantics::Model;
use crate::semantics::eval::{self, EvalCtx, Value};

#[derive(Clone, Debug, Serialize)]
pub struct Explanation {
    /// `account` or `person`.
    pub entity: Entity,
    /// The account's or person's key.
    pub id: String,
    pub audience: String,
    /// Membership as the engine computed it.
    pub member: bool,
    /// The rule's value as the interpreter computed it (rule audiences).
    pub interpreter: Option<bool>,
    /// One line per sub-expression or stage, indented by depth.
    pub steps: Vec<Step>,
    /// A ranked composition's rank.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rank: Option<RankStep>,
    /// A split composition's split.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub split: Option<SplitStep>,
}

/// Where the account stands in a ranked composition.
#[derive(Clone, Debug, Serialize)]
pub struct RankStep {
    /// The rank expression and its order; ties go to the smaller key.
    pub by: String,
    pub order: Order,
    /// The account's rank value (null ranks last).
    pub value: Json,
    /// Whether merge and exclusions leave the account in: only candidates
    /// are ranked.
    pub candidate: bool,
    /// 1 for the first candidate; `None` for an account that is none.
    pub position: Option<u64>,
    pub candidates: u64,
    pub limit: Option<i64>,
    /// The rank value of the last candidate the limit keeps, when the
    /// limit cuts.
    pub cutoff_value: Option<Json>,
}

/// Where the account lands in a split composition.
#[derive(Clone, Debug, Serialize)]
pub struct SplitStep {
    /// Whether the composition before its split holds the account: only
    /// its members are split.
    pub candidate: bool,
    /// A percent split: the seed and the account's bucket, 0..100.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bucket: Option<i64>,
    /// A split by attribute: the expression and the account's value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<Json>,
    pub parts: Vec<SplitPart>,
}

#[derive(Clone, Debug, Serialize)]
pub struct SplitPart {
    pub name: String,
    /// A percent part's buckets, `from` included, `to` excluded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<i64>,
    /// A part by attribute's values (empty for `other`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
    /// Whether the account is in this part, as the engine computed it.
    pub holds: bool,
}

/// Why account `account` is in or out of `audience` (a name or `NAME.part`).
pub fn explain_account(
    cx: &Context<'_>,
    account: &str,
    audience: &str,
) -> Result<Explanation, Problem> {
    let Context { plan, now, .. } = *cx;
    let (base, definition) = audience_of(plan, audience, Entity::Account)?;
    let evaluation = cx.evaluate()?;
    let members = &evaluation.members;
    let Some(record) = account_record(evaluation.engine.as_ref(), plan, account, now)? else {
        return Err(no_such(plan, Entity::Account, account));
    };
    let record = Rc::new(record);
    let in_audience = |name: &str| members.contains(name, account);
    let ctx = EvalCtx {
        now,
        in_audience: &in_audience,
    };
    let vars = vec![("account".to_string(), Value::Entity(record))];
    let model = Model::new(plan);
    let mut explanation = Explanation {
        entity: Entity::Account,
        id: account.to_string(),
        audience: audience.to_string(),
        member: in_audience(audience),
        interpreter: None,
        steps: Vec::new(),
        rank: None,
        split: None,
    };
    match &definition.definition {
        AudienceDefinition::Rule { expr } => {
            let typed = model.typed(expr, false)?;
            explanation.interpreter = Some(eval::eval(&typed, &vars, &ctx).truthy());
            walk(&typed, &vars, &ctx, 0, &mut explanation.steps);
        }
        AudienceDefinition::Compose {
            from,
            merge,
            exclude,
            exclude_rule,
            rank,
            split,
        } => {
            let flag = |name: &str| if in_audience(name) { "in" } else { "out" }.to_string();
            let steps = &mut explanation.steps;
            steps.push(Step::new(0, format!("merge ({merge}) of"), ""));
            for f in from {
                steps.push(Step::new(1, f.clone(), flag(f)));
            }
            for e in exclude {
                steps.push(Step::new(0, format!("exclude {e}"), flag(e)));
            }
            if let Some(rule) = exclude_rule {
                let typed = model.typed(rule, false)?;
                steps.push(Step::new(0, "exclude_rule", ""));
                walk(&typed, &vars, &ctx, 1, steps);
            }
            if rank.is_some() || split.is_some() {
                let table = StepsTable::evaluate(&evaluation, plan)?;
                if let Some(rank) = rank {
                    let r = table.rank(base, rank, account)?;
                    rank_steps(&r, steps);
                    explanation.rank = Some(r);
                }
                if let Some(split) = split {
                    let s = table.split(base, split, account, members)?;
                    split_steps(&s, base, steps);
                    explanation.split = Some(s);
                }
            }
            if audience != base {
                explanation
                    .steps
                    .push(Step::new(0, format!("part {audience}"), flag(audience)));
            }
        }
    }
    Ok(explanation)
}

/// Why person `person` is in or out of the person audience `audience`.
pub fn explain_person(
    cx: &Context<'_>,
    person: &str,
    audience: &str,
) -> Result<Explanation, Problem> {
    let Context { plan, now, .. } = *cx;
    let (_, definition) = audience_of(plan, audience, Entity::Person)?;
    let evaluation = cx.evaluate()?;
    let engine = evaluation.engine.as_ref();
    // The person's account as the person query links it.
    let account_key = person_account(engine, person)?;
    let account = match &account_key {
        Some(key) => account_record(engine, plan, key, now)?.map(Rc::new),
        None => None,
    };
    let Some(record) = person_record(engine, plan, person, account.clone())? else {
        return Err(no_such(plan, Entity::Person, person));
    };
    let members = &evaluation.members;
    let AudienceDefinition::Rule { expr } = &definition.definition else {
        return Err(Problem::new(format!(
            "`{audience}` is a person audience without a rule"
        )));
    };
    let none = |_: &str| false;
    let ctx = EvalCtx {
        now,
        in_audience: &none,
    };
    let vars = vec![
        ("person".to_string(), Value::Entity(Rc::new(record))),
        (
            "account".to_string(),
            account.map_or(Value::Null, Value::Entity),
        ),
    ];
    let typed = Model::new(plan).typed(expr, true)?;
    let mut steps = vec![Step::new(
        0,
        "the person's account",
        account_key.map_or("none".to_string(), |k| format!("{k:?}")),
    )];
    walk(&typed, &vars, &ctx, 0, &mut steps);
    Ok(Explanation {
        entity: Entity::Person,
        id: person.to_string(),
        audience: audience.to_string(),
        member: members.contains(audience, person),
        interpreter: Some(eval::eval(&typed, &vars, &ctx).truthy()),
        steps,
        rank: None,
        split: None,
    })
}

/// The account the person query (`accord_people`) links `person` to.
fn person_account(engine: &dyn Engine, person: &str) -> Result<Option<String>, String> {
    let batch = engine.query(&format!(
        "SELECT CAST(__account_key AS STRING) AS k FROM accord_people WHERE CAST(__person_key AS STRING) = {}",
        literal(person)
    ))?;
    Ok(engine::keys(&batch, "k")?.into_iter().flatten().next())
}

/// An id the data does not hold.
pub(super) fn no_such(plan: &Plan, entity: Entity, id: &str) -> Problem {
    let model = Model::new(plan);
    let schema = match entity {
        Entity::Account => Some(model.account.clone()),
        Entity::Person => model.person.clone(),
    };
    let help = match schema {
        Some(schema) => format!(
            "give the `{}` of a `{schema}` row of the data (`accord run --preview` reads the sources)",
            model.key(&schema)
        ),
        None => "the project has no person schema".to_string(),
    };
    Problem::new(format!("no {entity} `{id}` in the data")).help(help)
}

/// The account query with its composition steps as columns, evaluated on
/// the run's tables and registered for the few queries an explanation asks.
struct StepsTable<'e> {
    engine: &'e dyn Engine,
}

impl<'e> StepsTable<'e> {
    const NAME: &'static str = "accord_explained_accounts";

    fn evaluate(evaluation: &'e Evaluation, plan: &Plan) -> Result<StepsTable<'e>, String> {
        let engine = evaluation.engine.as_ref();
        let d = dialect::by_name(engine.dialect())
            .ok_or_else(|| format!("no {} dialect", engine.dialect()))?;
        let model = query::Model::new(plan);
        let built = query::accounts_explained(&model, d.as_ref()).map_err(|errors| {
            errors
                .iter()
                .map(|e| format!("{}: {}", e.place, e.reason))
                .collect::<Vec<_>>()
                .join("; ")
        })?;
        engine.materialize(
            Self::NAME,
            &built.sql.replace(NOW_PLACEHOLDER, &evaluation.now_sql),
        )?;
        Ok(StepsTable { engine })
    }

    /// The columns of the account `id`'s row, as JSON values.
    fn row(&self, id: &str, columns: &[&str]) -> Result<Vec<Json>, String> {
        let list: Vec<String> = columns.iter().map(|c| ident(c)).collect();
        let batch = self.engine.query(&format!(
            "SELECT {} FROM {} WHERE CAST(__account_key AS STRING) = {}",
            list.join(", "),
            Self::NAME,
            literal(id)
        ))?;
        if batch.num_rows() == 0 {
            return Err(format!("account `{id}` is not in the account query"));
        }
        Ok((0..columns.len())
            .map(|i| engine::cell(batch.column(i), 0))
            .collect())
    }

    /// One value: the first column of the first row, null without rows.
    fn value(&self, sql: &str) -> Result<Json, String> {
        let batch = self.engine.query(sql)?;
        Ok(if batch.num_rows() == 0 {
            Json::Null
        } else {
            engine::cell(batch.column(0), 0)
        })
    }

    fn rank(&self, name: &str, rank: &RankPlan, id: &str) -> Result<RankStep, String> {
        let steps = Steps::of(name);
        let row = self.row(
            id,
            &[
                steps.candidate.as_str(),
                steps.position.as_str(),
                steps.rank_value.as_str(),
            ],
        )?;
        let candidate = row[0] == Json::Bool(true);
        let candidates = self
            .value(&format!(
                "SELECT COUNT(*) FROM {} WHERE {}",
                Self::NAME,
                ident(&steps.candidate)
            ))?
            .as_u64()
            .unwrap_or(0);
        let cutoff_value = match rank.limit {
            Some(limit) if (limit as u64) < candidates => Some(self.value(&format!(
                "SELECT {} FROM {} WHERE {} = {limit}",
                ident(&steps.rank_value),
                Self::NAME,
                ident(&steps.position)
            ))?),
            _ => None,
        };
        Ok(RankStep {
            by: rank.by.clone(),
            order: rank.order,
            value: row[2].clone(),
            candidate,
            position: candidate.then(|| row[1].as_u64()).flatten(),
            candidates,
            limit: rank.limit,
            cutoff_value,
        })
    }

    fn split(
        &self,
        name: &str,
        split: &SplitPlan,
        id: &str,
        members: &Members,
    ) -> Result<SplitStep, String> {
        let steps = Steps::of(name);
        let holds = |part: &str| members.contains(&format!("{name}.{part}"), id);
        Ok(match split {
            SplitPlan::Percent { seed, parts } => {
                let row = self.row(id, &[steps.candidate.as_str(), steps.bucket.as_str()])?;
                SplitStep {
                    candidate: row[0] == Json::Bool(true),
                    seed: Some(seed.clone()),
                    bucket: row[1].as_i64(),
                    by: None,
                    value: None,
                    parts: percent_ranges(parts)
                        .into_iter()
                        .map(|(part, lo, hi)| SplitPart {
                            name: part.name.clone(),
                            from: Some(lo),
                            to: Some(hi),
                            values: Vec::new(),
                            holds: holds(&part.name),
                        })
                        .collect(),
                }
            }
            SplitPlan::ByAttribute { by, parts, other } => {
                let row = self.row(id, &[steps.candidate.as_str(), steps.split_value.as_str()])?;
                SplitStep {
                    candidate: row[0] == Json::Bool(true),
                    seed: None,
                    bucket: None,
                    by: Some(by.clone()),
                    value: Some(row[1].clone()),
                    parts: parts
                        .iter()
                        .map(|p| (p.name.clone(), p.values.clone()))
                        .chain(other.iter().map(|o| (o.clone(), Vec::new())))
                        .map(|(name, values)| SplitPart {
                            holds: holds(&name),
                            name,
                            from: None,
                            to: None,
                            values,
                        })
                        .collect(),
                }
            }
        })
    }
}

/// A ranked composition as steps: the rank value, the position and the
/// cutoff.
fn rank_steps(r: &RankStep, steps: &mut Vec<Step>) {
    steps.push(Step::new(
        0,
        format!(
            "rank by {} ({}; ties by account key, ascending)",
            r.by, r.order
        ),
        "",
    ));
    if !r.candidate {
        steps.push(Step::new(
            1,
            format!(
                "not a candidate: merge and exclusions leave it out ({} candidates)",
                thousands(r.candidates)
            ),
            "not ranked",
        ));
        return;
    }
    steps.push(Step::new(1, r.by.clone(), r.value.to_string()));
    let position = r.position.unwrap_or(0);
    let (keeps, kept) = match r.limit {
        Some(limit) => (
            format!(
                "the audience keeps the top {}",
                thousands(limit.max(0) as u64)
            ),
            position <= limit.max(0) as u64,
        ),
        None => (
            "no limit: the audience keeps every candidate".to_string(),
            true,
        ),
    };
    steps.push(Step::new(
        1,
        format!(
            "position {} of {} candidates; {keeps}",
            thousands(position),
            thousands(r.candidates)
        ),
        if kept { "kept" } else { "cut" },
    ));
    if let (Some(cutoff), Some(limit)) = (&r.cutoff_value, r.limit) {
        let tie = if *cutoff == r.value {
            " (a tie with this account: the smaller account key goes first)"
        } else {
            ""
        };
        steps.push(Step::new(
            1,
            format!(
                "{} of the last kept, position {}{tie}",
                r.by,
                thousands(limit as u64)
            ),
            cutoff.to_string(),
        ));
    }
}

/// A split composition as steps: the bucket or value, and each part.
fn split_steps(s: &SplitStep, name: &str, steps: &mut Vec<Step>) {
    let header = match (&s.seed, &s.by) {
        (Some(seed), _) => format!(
            "split by bucket: sha256({:?} + key), first 8 hex digits, mod 100",
            format!("{seed}:")
        ),
        (_, Some(by)) => format!("split by {by}"),
        _ => "split".to_string(),
    };
    steps.push(Step::new(
        0,
        header,
        match (s.bucket, &s.value) {
            (Some(b), _) => format!("bucket {b}"),
            (_, Some(v)) => v.to_string(),
            _ => String::new(),
        },
    ));
    steps.push(Step::new(
        1,
        format!("{name} before its split (merge and exclusions)"),
        if s.candidate {
            "in"
        } else {
            "out: no part holds it"
        },
    ));
    for part in &s.parts {
        let what = match (part.from, part.to) {
            (Some(lo), Some(hi)) => format!("buckets {lo} to {}", hi - 1),
            _ if part.values.is_empty() => "every other value".to_string(),
            _ => part
                .values
                .iter()
                .map(|v| format!("{v:?}"))
                .collect::<Vec<_>>()
                .join(", "),
        };
        steps.push(Step::new(
            1,
            format!("part {}: {what}", part.name),
            if part.holds { "holds it" } else { "" },
        ));
    }
}

impl Explanation {
    pub fn render_text(&self) -> String {
        let mut s = format!(
            "{} {} is {} {}\n",
            self.entity,
            self.id,
            if self.member { "IN" } else { "OUT of" },
            self.audience
        );
        if let Some(i) = self.interpreter
            && i != self.member
        {
            s.push_str(&format!(
                "warning: the CEL interpreter says {i}: the engine and the interpreter disagree (a bug; please report it)\n"
            ));
        }
        s.push_str(&render_steps(&self.steps, 1));
        s
    }
}
