//! `accord explain account ID --audience NAME`: why one account is in or
//! out of an audience.
//!
//! Input: the plan, the rendered jobs, the data, `now`, an account key and
//! an audience. Output: an `Explanation` (plain data; the CLI prints it).
//! The engine evaluates every audience as in a run; the account's record,
//! with its related rows attached, is then read from the unified tables and
//! the rule is evaluated by the CEL interpreter, the reference semantics,
//! one sub-expression at a time: each `&&` / `||` / `!` operand and each
//! comprehension (with how many elements matched) is shown true or false.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::rc::Rc;

use serde::Serialize;
use serde_json::Value as Json;

use super::engine::{self, Engine, ident, literal};
use super::execute::evaluate_with;
use crate::cel::typed::{ArithOp, CmpOp, CompKind, Node, Typed};
use crate::plan::{AudienceDefinition, Entity, LinkFallback, Plan};
use crate::render::Jobs;
use crate::semantics::Model;
use crate::semantics::eval::{self, EvalCtx, Record, Value};
use crate::time;

#[derive(Clone, Debug, Serialize)]
pub struct Explanation {
    pub account: String,
    pub audience: String,
    /// Membership as the engine computed it.
    pub member: bool,
    /// The rule's value as the interpreter computed it (rule audiences).
    pub interpreter: Option<bool>,
    /// One line per sub-expression, indented by depth.
    pub steps: Vec<Step>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Step {
    pub depth: usize,
    pub expr: String,
    pub value: String,
}

pub fn explain_account(
    plan: &Plan,
    jobs: &Jobs,
    root: &Path,
    now: time::Micros,
    account: &str,
    audience: &str,
    places: &super::Places,
) -> Result<Explanation, String> {
    let base = audience.split('.').next().unwrap_or(audience);
    let definition = plan
        .audiences
        .get(base)
        .ok_or_else(|| format!("no audience `{base}` in the plan"))?;
    if definition.entity != Entity::Account {
        return Err(format!(
            "`{base}` is a person audience; explain account takes account audiences"
        ));
    }
    let evaluation = evaluate_with(plan, jobs, root, now, places).map_err(|e| e.to_string())?;
    let members = &evaluation.members;
    let member = members
        .get(audience)
        .ok_or_else(|| format!("no audience or part `{audience}`"))?
        .contains(account);
    let model = Model::new(plan);
    let record = account_record(&evaluation.engine, plan, &model.account, account, now)?;
    let record = Rc::new(record);
    let in_audience = |name: &str| members.get(name).is_some_and(|m| m.contains(account));
    let ctx = EvalCtx {
        now,
        in_audience: &in_audience,
    };
    let vars = vec![("account".to_string(), Value::Entity(record))];
    let mut steps = Vec::new();
    let mut interpreter = None;
    match &definition.definition {
        AudienceDefinition::Rule { expr } => {
            let typed = model.typed(expr, false)?;
            interpreter = Some(eval::eval(&typed, &vars, &ctx).truthy());
            walk(&typed, &vars, &ctx, 0, &mut steps);
        }
        AudienceDefinition::Compose {
            from,
            merge,
            exclude,
            exclude_rule,
            ..
        } => {
            let flag = |name: &str| if in_audience(name) { "in" } else { "out" }.to_string();
            steps.push(Step {
                depth: 0,
                expr: format!("merge ({merge}) of"),
                value: String::new(),
            });
            for f in from {
                steps.push(Step {
                    depth: 1,
                    expr: f.clone(),
                    value: flag(f),
                });
            }
            for e in exclude {
                steps.push(Step {
                    depth: 0,
                    expr: format!("exclude {e}"),
                    value: flag(e),
                });
            }
            if let Some(rule) = exclude_rule {
                let typed = model.typed(rule, false)?;
                steps.push(Step {
                    depth: 0,
                    expr: "exclude_rule".into(),
                    value: String::new(),
                });
                walk(&typed, &vars, &ctx, 1, &mut steps);
            }
            if audience != base {
                steps.push(Step {
                    depth: 0,
                    expr: format!("part {audience} (after rank or split)"),
                    value: flag(audience),
                });
            }
        }
    }
    Ok(Explanation {
        account: account.to_string(),
        audience: audience.to_string(),
        member,
        interpreter,
        steps,
    })
}

impl Explanation {
    pub fn render_text(&self) -> String {
        let mut s = format!(
            "account {} is {} {}\n",
            self.account,
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
        for step in &self.steps {
            s.push_str(&format!(
                "{}{}{}\n",
                "  ".repeat(step.depth + 1),
                step.expr,
                if step.value.is_empty() {
                    String::new()
                } else {
                    format!("  => {}", step.value)
                }
            ));
        }
        s
    }
}

fn show(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Double(d) => d.to_string(),
        Value::Str(s) => format!("{s:?}"),
        Value::Timestamp(t) => time::format_timestamp(*t),
        Value::Duration(d) => time::format_duration(*d),
        Value::List(items) => format!("[{} items]", items.len()),
        Value::Entity(r) => format!("<{}>", r.schema),
    }
}

/// Records sub-expression values: logical operators are opened up, other
/// nodes are shown whole with their value.
fn walk(t: &Typed, vars: &[(String, Value)], ctx: &EvalCtx, depth: usize, steps: &mut Vec<Step>) {
    let value = eval::eval(t, vars, ctx);
    let mut step = Step {
        depth,
        expr: print(t),
        value: show(&value),
    };
    match &t.node {
        Node::And(a, b) | Node::Or(a, b) => {
            step.expr = if matches!(t.node, Node::And(..)) {
                "all of (&&)"
            } else {
                "any of (||)"
            }
            .into();
            steps.push(step);
            walk(a, vars, ctx, depth + 1, steps);
            walk(b, vars, ctx, depth + 1, steps);
        }
        Node::Not(a) => {
            steps.push(step);
            walk(a, vars, ctx, depth + 1, steps);
        }
        Node::Comp {
            kind: CompKind::Exists | CompKind::All | CompKind::ExistsOne | CompKind::Filter,
            var,
            range,
            body,
            ..
        } => {
            // How many elements satisfy the body.
            if let Value::List(items) = eval::eval(range, vars, ctx) {
                let matched = items
                    .iter()
                    .filter(|item| {
                        let mut scope = vars.to_vec();
                        scope.push((var.clone(), (*item).clone()));
                        eval::eval(body, &scope, ctx).truthy()
                    })
                    .count();
                step.value = format!("{} ({matched} of {} match)", step.value, items.len());
            }
            steps.push(step);
        }
        _ => steps.push(step),
    }
}

/// CEL text of a typed tree (normalised spacing and parentheses).
pub fn print(t: &Typed) -> String {
    let bin = |a: &Typed, op: &str, b: &Typed| format!("{} {op} {}", paren(a), paren(b));
    match &t.node {
        Node::Null => "null".into(),
        Node::Bool(b) => b.to_string(),
        Node::Int(i) => i.to_string(),
        Node::Double(d) => d.to_string(),
        Node::Str(s) => format!("{s:?}"),
        Node::Var(v) => v.clone(),
        Node::Field { base, name } | Node::Link { base, name, .. } => {
            format!("{}.{name}", print(base))
        }
        Node::Not(a) => format!("!{}", paren(a)),
        Node::Neg(a) => format!("-{}", paren(a)),
        Node::And(a, b) => bin(a, "&&", b),
        Node::Or(a, b) => bin(a, "||", b),
        Node::Cmp(op, a, b) => {
            let op = match op {
                CmpOp::Eq => "==",
                CmpOp::Ne => "!=",
                CmpOp::Lt => "<",
                CmpOp::Le => "<=",
                CmpOp::Gt => ">",
                CmpOp::Ge => ">=",
            };
            bin(a, op, b)
        }
        Node::Arith(op, a, b) => {
            let op = match op {
                ArithOp::Add => "+",
                ArithOp::Sub => "-",
                ArithOp::Mul => "*",
                ArithOp::Div => "/",
                ArithOp::Rem => "%",
            };
            bin(a, op, b)
        }
        Node::Cond(c, a, b) => format!("{} ? {} : {}", paren(c), paren(a), paren(b)),
        Node::In(a, b) => bin(a, "in", b),
        Node::List(items) => format!(
            "[{}]",
            items.iter().map(print).collect::<Vec<_>>().join(", ")
        ),
        Node::Call { func, args } => {
            format!(
                "{func}({})",
                args.iter().map(print).collect::<Vec<_>>().join(", ")
            )
        }
        Node::Audience(name) => format!("in_audience({name:?})"),
        Node::Comp {
            kind,
            var,
            range,
            filter,
            body,
        } => {
            let name = match kind {
                CompKind::Exists => "exists",
                CompKind::All => "all",
                CompKind::ExistsOne => "exists_one",
                CompKind::Filter => "filter",
                CompKind::Map => "map",
            };
            match filter {
                Some(f) => format!(
                    "{}.{name}({var}, {}, {})",
                    print(range),
                    print(f),
                    print(body)
                ),
                None => format!("{}.{name}({var}, {})", print(range), print(body)),
            }
        }
    }
}

fn paren(t: &Typed) -> String {
    match &t.node {
        Node::And(..)
        | Node::Or(..)
        | Node::Cond(..)
        | Node::Cmp(..)
        | Node::Arith(..)
        | Node::In(..) => {
            format!("({})", print(t))
        }
        _ => print(t),
    }
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
fn rows(engine: &Engine, plan: &Plan, schema: &str, filter: &str) -> Result<Vec<Record>, String> {
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
    engine: &Engine,
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
                    "SELECT DISTINCT CAST({p} AS VARCHAR) AS parent, CAST({c} AS VARCHAR) AS child FROM {t} WHERE {p} IN ({in_list}) AND {c} IS NOT NULL",
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
                            "CAST({} AS VARCHAR) IN ({})",
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

fn account_record(
    engine: &Engine,
    plan: &Plan,
    account_schema: &str,
    id: &str,
    now: time::Micros,
) -> Result<Record, String> {
    let schema = &plan.schemas[account_schema];
    let key = schema.key.clone().unwrap_or_default();
    let mut found = rows(
        engine,
        plan,
        account_schema,
        &format!("{} = {}", ident(&key), literal(id)),
    )?;
    if found.is_empty() {
        return Err(format!("no account `{id}` in the data"));
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
    Ok(found.remove(0))
}
