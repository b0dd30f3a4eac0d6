//! The audience queries: every audience of the plan in one query per entity.
//!
//! Input: the plan, a dialect. Output: the SQL of the account query (one row
//! per account: key, fields, computed attributes, one boolean column per
//! audience and split part) and of the person query (one row per person, for
//! person audiences), or the expressions that cannot be lowered.
//!
//! Shape, following DESIGN.md "Evaluation: how audiences run fast":
//! `v_<schema>` views add to each table its link keys and its feature
//! columns (one aggregate per distinct sub-predicate, one pass per child
//! table); `c_<n>` layers add computed attributes in dependency order;
//! `m_<n>` layers add audiences in dependency order, a composition taking two
//! layers (its pre-membership, then rank or split).

use std::collections::{BTreeMap, BTreeSet};

use super::dialect::Dialect;
use super::lower::{Binding, Features, Lowerer, Scope, Source, audience_column};
use crate::cel::{CelEnv, Scope as CelScope, typed};
use crate::plan::{AudienceDefinition, Plan, SplitPlan};

/// An expression that cannot be lowered: where it is and why.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct LowerError {
    /// `audience B2B_X`, `computed account.y`, `activation a, column c`.
    pub place: String,
    pub expr: String,
    pub reason: String,
}

/// The schema graph the lowering needs.
pub struct Model<'a> {
    pub plan: &'a Plan,
    pub env: CelEnv,
    /// Schema -> link name -> (target schema, reverse collection name).
    pub links: BTreeMap<String, BTreeMap<String, (String, Option<String>)>>,
    pub account: String,
    pub person: Option<String>,
}

impl<'a> Model<'a> {
    pub fn new(plan: &'a Plan) -> Model<'a> {
        let by_class = |class: &str| {
            plan.schemas
                .iter()
                .find(|(_, s)| s.class == class)
                .map(|(n, _)| n.clone())
        };
        let links = plan
            .schemas
            .iter()
            .map(|(name, s)| {
                let links = s
                    .links
                    .iter()
                    .map(|(l, def)| (l.clone(), (def.to.clone(), def.reverse.clone())))
                    .collect();
                (name.clone(), links)
            })
            .collect();
        Model {
            plan,
            env: typed::env_from_plan(plan),
            links,
            account: by_class("account").unwrap_or_else(|| "account".into()),
            person: by_class("person"),
        }
    }

    pub fn key(&self, schema: &str) -> String {
        self.plan
            .schemas
            .get(schema)
            .and_then(|s| s.key.clone())
            .unwrap_or_else(|| "id".into())
    }

    /// Parses and types an expression in the account or person scope.
    pub fn typed(&self, expr: &str, person: bool) -> Result<typed::Typed, String> {
        let scope = if person {
            CelScope::person()
        } else {
            CelScope::account()
        };
        typed::build(expr, &self.env, &scope)
    }
}

/// A SQL layer: one CTE adding columns to the previous one.
struct Layer {
    columns: Vec<(String, String)>,
}

pub struct Built {
    pub sql: String,
    /// Feature columns computed, all views together.
    pub features: usize,
}

fn account_scope(account: &str) -> Scope {
    Scope {
        vars: vec![(
            "account".into(),
            Binding::Row {
                alias: "r".into(),
                schema: account.into(),
            },
        )],
        audiences: Some("r".into()),
        features: true,
        note: "",
    }
}

/// The account query, or every expression that cannot be lowered.
pub fn accounts(model: &Model, d: &dyn Dialect) -> Result<Built, Vec<LowerError>> {
    let plan = model.plan;
    let mut lw = Lowerer {
        dialect: d,
        links: &model.links,
        features: Features::default(),
    };
    let mut errors = Vec::new();
    let scope = account_scope(&model.account);
    let q = |s: &str| d.ident(s);

    // Computed attributes of the account, each after those it reads.
    let mut computed_layers: Vec<(String, String)> = Vec::new();
    for key in computed_order(plan) {
        let Some(c) = plan.computed.get(&key) else {
            continue;
        };
        if c.schema != model.account {
            errors.push(LowerError {
                place: format!("computed {key}"),
                expr: c.expr.clone(),
                reason: "computed attributes of people are not lowered to SQL yet".into(),
            });
            continue;
        }
        let field = key.rsplit('.').next().unwrap_or(&key).to_string();
        match model
            .typed(&c.expr, false)
            .and_then(|t| lw.value(&t, &scope))
        {
            Ok(sql) => computed_layers.push((field, sql)),
            Err(reason) => errors.push(LowerError {
                place: format!("computed {key}"),
                expr: c.expr.clone(),
                reason,
            }),
        }
    }

    // Audiences, layer by layer.
    let mut layers: Vec<Layer> = Vec::new();
    let mut level: BTreeMap<String, usize> = BTreeMap::new();
    let key_col = format!("r.{}", q(&model.key(&model.account)));
    for name in audience_order(plan) {
        let Some(a) = plan.audiences.get(&name) else {
            continue;
        };
        if a.entity != "account" {
            continue;
        }
        let first = a
            .depends_on
            .iter()
            .filter_map(|dep| level.get(dep))
            .map(|l| l + 1)
            .max()
            .unwrap_or(0);
        let col = |n: &str| format!("r.{}", q(&audience_column(n)));
        let put = |layers: &mut Vec<Layer>, at: usize, column: String, sql: String| {
            while layers.len() <= at {
                layers.push(Layer {
                    columns: Vec::new(),
                });
            }
            layers[at].columns.push((column, sql));
        };
        let place = format!("audience {name}");
        match &a.definition {
            AudienceDefinition::Rule { expr } => {
                match model
                    .typed(expr, false)
                    .and_then(|t| lw.boolean(&t, &scope))
                {
                    Ok(sql) => put(&mut layers, first, audience_column(&name), sql),
                    Err(reason) => errors.push(LowerError {
                        place,
                        expr: expr.clone(),
                        reason,
                    }),
                }
                level.insert(name.clone(), first);
            }
            AudienceDefinition::Compose {
                from,
                merge,
                exclude,
                exclude_rule,
                rank,
                split,
            } => {
                let from_cols: Vec<String> = from.iter().map(|f| col(f)).collect();
                let merged = match merge.as_str() {
                    "intersection" => format!("({})", from_cols.join(" AND ")),
                    "exclude_overlap" => format!(
                        "(({}) = 1)",
                        from_cols
                            .iter()
                            .map(|c| format!("CASE WHEN {c} THEN 1 ELSE 0 END"))
                            .collect::<Vec<_>>()
                            .join(" + ")
                    ),
                    _ => format!("({})", from_cols.join(" OR ")),
                };
                let mut pre = vec![merged];
                for e in exclude {
                    pre.push(format!("NOT {}", col(e)));
                }
                if let Some(rule) = exclude_rule {
                    match model
                        .typed(rule, false)
                        .and_then(|t| lw.boolean(&t, &scope))
                    {
                        Ok(sql) => pre.push(format!("NOT {sql}")),
                        Err(reason) => errors.push(LowerError {
                            place: format!("{place}, exclude_rule"),
                            expr: rule.clone(),
                            reason,
                        }),
                    }
                }
                let pre_col = format!("__pre_{}", audience_column(&name));
                put(
                    &mut layers,
                    first,
                    pre_col.clone(),
                    format!("({})", pre.join(" AND ")),
                );
                let pre_ref = format!("r.{}", q(&pre_col));
                let mut finals = vec![(audience_column(&name), pre_ref.clone())];
                if let Some(rank) = rank {
                    match model
                        .typed(&rank.by, false)
                        .and_then(|t| lw.value(&t, &scope))
                    {
                        Ok(by) => {
                            if let Some(limit) = rank.limit {
                                let order = if rank.order == "asc" { "ASC" } else { "DESC" };
                                finals[0].1 = format!(
                                    "({pre_ref} AND ROW_NUMBER() OVER (ORDER BY CASE WHEN {pre_ref} THEN 0 ELSE 1 END, CASE WHEN {by} IS NULL THEN 1 ELSE 0 END, {by} {order}, {key_col} ASC) <= {limit})"
                                );
                            }
                        }
                        Err(reason) => errors.push(LowerError {
                            place: format!("{place}, rank"),
                            expr: rank.by.clone(),
                            reason,
                        }),
                    }
                }
                match split {
                    Some(SplitPlan::Percent { seed, parts }) => {
                        let bucket = bucket_sql(d, seed, &key_col);
                        let mut lo = 0;
                        for part in parts {
                            let hi = lo + part.percent;
                            finals.push((
                                audience_column(&format!("{name}.{}", part.name)),
                                format!("({pre_ref} AND {bucket} >= {lo} AND {bucket} < {hi})"),
                            ));
                            lo = hi;
                        }
                    }
                    Some(SplitPlan::ByAttribute { by, parts, other }) => {
                        match model.typed(by, false).and_then(|t| lw.value(&t, &scope)) {
                            Ok(v) => {
                                let in_list = |vals: &[String]| {
                                    if vals.is_empty() {
                                        "FALSE".to_string()
                                    } else {
                                        let vals: Vec<String> =
                                            vals.iter().map(|s| d.string(s)).collect();
                                        format!("COALESCE({v} IN ({}), FALSE)", vals.join(", "))
                                    }
                                };
                                let mut earlier: Vec<String> = Vec::new();
                                for part in parts {
                                    let fresh: Vec<String> = part
                                        .values
                                        .iter()
                                        .filter(|x| !earlier.contains(x))
                                        .cloned()
                                        .collect();
                                    finals.push((
                                        audience_column(&format!("{name}.{}", part.name)),
                                        format!("({pre_ref} AND {})", in_list(&fresh)),
                                    ));
                                    earlier.extend(part.values.iter().cloned());
                                }
                                if let Some(other) = other {
                                    finals.push((
                                        audience_column(&format!("{name}.{other}")),
                                        format!("({pre_ref} AND NOT {})", in_list(&earlier)),
                                    ));
                                }
                            }
                            Err(reason) => errors.push(LowerError {
                                place: format!("{place}, split"),
                                expr: by.clone(),
                                reason,
                            }),
                        }
                    }
                    None => {}
                }
                for (c, sql) in finals {
                    put(&mut layers, first + 1, c, sql);
                }
                level.insert(name.clone(), first + 1);
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }

    let features = lw.features;
    let mut ctes = views(model, d, &features, &model.account);
    let mut prev = format!("v_{}", model.account);
    for (i, (field, sql)) in computed_layers.iter().enumerate() {
        let name = format!("c_{}", i + 1);
        ctes.push((
            name.clone(),
            format!("SELECT r.*, {sql} AS {} FROM {prev} r", q(field)),
        ));
        prev = name;
    }
    for (i, layer) in layers.iter().enumerate() {
        let name = format!("m_{}", i + 1);
        let cols: Vec<String> = layer
            .columns
            .iter()
            .map(|(c, sql)| format!("{sql} AS {}", q(c)))
            .collect();
        ctes.push((
            name.clone(),
            format!("SELECT r.*, {} FROM {prev} r", cols.join(", ")),
        ));
        prev = name;
    }
    let mut out = vec![format!("{key_col} AS __account_key")];
    if let Some(schema) = plan.schemas.get(&model.account) {
        out.extend(schema.fields.keys().map(|f| format!("r.{}", q(f))));
    }
    out.extend(computed_layers.iter().map(|(f, _)| format!("r.{}", q(f))));
    out.extend(
        audience_columns(plan, "account")
            .iter()
            .map(|c| format!("r.{}", q(c))),
    );
    let count = features
        .collections
        .values()
        .map(|c| c.features.len())
        .sum();
    Ok(Built {
        sql: assemble(
            &ctes,
            &format!(
                "SELECT {}\nFROM {prev} r\nORDER BY __account_key",
                out.join(",\n  ")
            ),
        ),
        features: count,
    })
}

/// The person query: one row per person with its person audiences.
pub fn people(model: &Model, d: &dyn Dialect) -> Result<Option<Built>, Vec<LowerError>> {
    let plan = model.plan;
    let Some(person) = &model.person else {
        return Ok(None);
    };
    let audiences: Vec<&String> = plan
        .audiences
        .iter()
        .filter(|(_, a)| a.entity == "person")
        .map(|(n, _)| n)
        .collect();
    if audiences.is_empty() {
        return Ok(None);
    }
    let mut lw = Lowerer {
        dialect: d,
        links: &model.links,
        features: Features::default(),
    };
    let scope = Scope {
        vars: vec![(
            "person".into(),
            Binding::Row {
                alias: "r".into(),
                schema: person.clone(),
            },
        )],
        audiences: None,
        features: true,
        note: "a person audience is lowered over the person and its own collections only",
    };
    let q = |s: &str| d.ident(s);
    let mut cols = Vec::new();
    let mut errors = Vec::new();
    for name in audiences {
        let Some(AudienceDefinition::Rule { expr }) =
            plan.audiences.get(name).map(|a| &a.definition)
        else {
            continue;
        };
        match model.typed(expr, true).and_then(|t| lw.boolean(&t, &scope)) {
            Ok(sql) => cols.push(format!("{sql} AS {}", q(&audience_column(name)))),
            Err(reason) => errors.push(LowerError {
                place: format!("audience {name}"),
                expr: expr.clone(),
                reason,
            }),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let features = lw.features;
    let ctes = views(model, d, &features, person);
    let mut out = vec![
        format!("r.{} AS __person_key", q(&model.key(person))),
        format!(
            "r.{} AS __account_key",
            q(&link_column(&account_link(model, person)))
        ),
    ];
    if let Some(schema) = plan.schemas.get(person) {
        out.extend(schema.fields.keys().map(|f| format!("r.{}", q(f))));
    }
    out.extend(cols);
    let count = features
        .collections
        .values()
        .map(|c| c.features.len())
        .sum();
    Ok(Some(Built {
        sql: assemble(
            &ctes,
            &format!(
                "SELECT {}\nFROM v_{person} r\nORDER BY __person_key",
                out.join(",\n  ")
            ),
        ),
        features: count,
    }))
}

/// The link of `schema` to the account schema, by name.
pub fn account_link(model: &Model, schema: &str) -> String {
    model
        .links
        .get(schema)
        .and_then(|l| l.iter().find(|(_, (to, _))| *to == model.account))
        .map(|(n, _)| n.clone())
        .unwrap_or_else(|| "account".into())
}

pub fn link_column(link: &str) -> String {
    format!("__link_{link}")
}

/// The bucket 0..100 of an account in a percent split:
/// `u32(hex(sha256(seed + ":" + key))[0..8]) % 100`.
pub fn bucket_sql(d: &dyn Dialect, seed: &str, key: &str) -> String {
    let text = format!(
        "({} || CAST({key} AS {}))",
        d.string(&format!("{seed}:")),
        d.type_name("string")
    );
    let hex = format!("SUBSTR({}, 1, 8)", d.sha256_hex(&text));
    d.modulo(&d.hex8_to_int(&hex), "100")
}

fn assemble(ctes: &[(String, String)], select: &str) -> String {
    let with: Vec<String> = ctes
        .iter()
        .map(|(name, sql)| format!("{name} AS (\n  {sql}\n)"))
        .collect();
    format!("WITH\n{}\n{select}\n", with.join(",\n"))
}

/// The `v_<schema>` views the root needs, children first.
pub fn views(
    model: &Model,
    d: &dyn Dialect,
    features: &Features,
    root: &str,
) -> Vec<(String, String)> {
    let mut order = Vec::new();
    let mut seen = BTreeSet::new();
    visit(root, features, &mut order, &mut seen);
    order
        .into_iter()
        .map(|s| (format!("v_{s}"), view(model, d, features, &s)))
        .collect()
}

fn visit(schema: &str, features: &Features, order: &mut Vec<String>, seen: &mut BTreeSet<String>) {
    if !seen.insert(schema.to_string()) {
        return;
    }
    for ((parent, _), coll) in &features.collections {
        if parent == schema {
            if let Source::Link { child, .. } = &coll.source {
                visit(child, features, order, seen);
            }
        }
    }
    order.push(schema.to_string());
}

/// One view: the table, its link keys, its features.
pub fn view(model: &Model, d: &dyn Dialect, features: &Features, schema: &str) -> String {
    let q = |s: &str| d.ident(s);
    let plan = model.plan;
    let mut cols = vec!["b.*".to_string()];
    let mut joins = Vec::new();
    if let Some(s) = plan.schemas.get(schema) {
        for (link, def) in &s.links {
            let Some(by) = &def.by else { continue };
            let fk = format!("b.{}", q(by));
            let email = s
                .fields
                .iter()
                .find(|(_, f)| f.identity.as_deref() == Some("email"));
            let domain = plan.schemas.get(&def.to).and_then(|t| {
                t.fields
                    .iter()
                    .find(|(_, f)| f.identity.as_deref() == Some("domain"))
            });
            match (def.fallback.as_deref(), email, domain) {
                (Some("email_domain"), Some((email, _)), Some((domain, _))) => {
                    // People without the key link by their email's domain.
                    let fb = format!("__fb_{link}");
                    joins.push(format!(
                        "LEFT JOIN {} {fb} ON {fk} IS NULL AND LOWER({fb}.{}) = LOWER({})",
                        q(&def.to),
                        q(domain),
                        d.email_domain(&format!("b.{}", q(email)))
                    ));
                    cols.push(format!(
                        "COALESCE({fk}, {fb}.{}) AS {}",
                        q(&model.key(&def.to)),
                        q(&link_column(link))
                    ));
                }
                _ => cols.push(format!("{fk} AS {}", q(&link_column(link)))),
            }
        }
    }
    let key = format!("b.{}", q(&model.key(schema)));
    let mut g = 0;
    for ((parent, _), coll) in &features.collections {
        if parent != schema {
            continue;
        }
        g += 1;
        let alias = format!("g{g}");
        let aggs: Vec<String> = coll
            .features
            .iter()
            .map(|f| format!("{} AS {}", f.aggregate, q(&f.column)))
            .collect();
        let sub = match &coll.source {
            Source::Link { child, link } => {
                let lc = format!("c.{}", q(&link_column(link)));
                format!(
                    "SELECT {lc} AS __key, {} FROM v_{child} c GROUP BY {lc}",
                    aggs.join(", ")
                )
            }
            Source::List { field } => format!(
                "SELECT c.__key, {} FROM {} c GROUP BY c.__key",
                aggs.join(", "),
                d.unnest(&q(schema), &q(&model.key(schema)), &q(field))
            ),
        };
        joins.push(format!(
            "LEFT JOIN ({sub}) {alias} ON {alias}.__key = {key}"
        ));
        for f in &coll.features {
            let c = format!("{alias}.{}", q(&f.column));
            cols.push(match f.default {
                Some(default) => format!("COALESCE({c}, {default}) AS {}", q(&f.column)),
                None => format!("{c} AS {}", q(&f.column)),
            });
        }
    }
    let mut sql = format!("SELECT {}\n  FROM {} b", cols.join(",\n    "), q(schema));
    for j in joins {
        sql.push_str("\n  ");
        sql.push_str(&j);
    }
    sql
}

/// Computed attributes, each after the computed attributes it reads.
pub fn computed_order(plan: &Plan) -> Vec<String> {
    let mut done: Vec<String> = Vec::new();
    let mut pending: Vec<&String> = plan.computed.keys().collect();
    while !pending.is_empty() {
        let before = pending.len();
        pending.retain(|key| {
            let ready = plan.computed[*key]
                .reads
                .iter()
                .all(|r| !plan.computed.contains_key(r) || done.contains(r) || r == *key);
            if ready {
                done.push((*key).clone());
            }
            !ready
        });
        if pending.len() == before {
            // A cycle is a resolve error; keep going deterministically.
            done.extend(pending.drain(..).cloned());
        }
    }
    done
}

/// Audiences, each after those it depends on; ties by name.
pub fn audience_order(plan: &Plan) -> Vec<String> {
    let mut done: Vec<String> = Vec::new();
    let mut pending: Vec<&String> = plan.audiences.keys().collect();
    while !pending.is_empty() {
        let before = pending.len();
        pending.retain(|name| {
            let ready = plan.audiences[*name]
                .depends_on
                .iter()
                .all(|d| done.contains(d) || !plan.audiences.contains_key(d));
            if ready {
                done.push((*name).clone());
            }
            !ready
        });
        if pending.len() == before {
            done.extend(pending.drain(..).cloned());
        }
    }
    done
}

/// The membership columns of the audiences of `entity`, with split parts,
/// in name order.
pub fn audience_columns(plan: &Plan, entity: &str) -> Vec<String> {
    let mut cols = Vec::new();
    for (name, a) in &plan.audiences {
        if a.entity != entity {
            continue;
        }
        cols.push(audience_column(name));
        for part in &a.parts {
            cols.push(audience_column(&format!("{name}.{part}")));
        }
    }
    cols
}
