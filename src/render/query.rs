//! The audience queries: every audience of the plan in one query per entity.
//!
//! Input: the plan, a dialect. Output: the SQL of the account query (one row
//! per account: key, fields, computed attributes, one boolean column per
//! audience and split part) and of the person query (one row per person, for
//! person audiences), or the expressions that cannot be lowered.
//!
//! Shape (one feature table for every audience; see docs/render.md):
//! `v_<schema>` views add to each table its link keys and its feature
//! columns (one aggregate per distinct sub-predicate, one pass per child
//! table); `c_<n>` layers add computed attributes in dependency order;
//! `m_<n>` layers add audiences in dependency order, a composition taking two
//! layers (its pre-membership, then rank or split).

use std::collections::BTreeMap;

use super::dialect::Dialect;
use super::lower::{Binding, Features, Lowerer, Scope};
use super::views::{account_link, link_column, views};
use crate::plan::{AudienceDefinition, Entity, Merge, Order, Plan, SplitPlan};
use crate::resolve::ExprSite;
use crate::semantics::{self, audience_column, audience_order, computed_order};

/// An expression that cannot be lowered: where it is and why.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct LowerError {
    /// `audience B2B_X`, `computed account.y`, `activation a, column c`.
    pub place: String,
    /// The same place as data, so `check` can point at the expression.
    pub site: ExprSite,
    pub expr: String,
    pub reason: String,
}

/// The schema graph the lowering needs: the plan as the interpreter reads
/// it (`semantics::Model`, which it derefs to), plus the links.
pub struct Model<'a> {
    pub base: semantics::Model<'a>,
    /// Schema -> link name -> (target schema, reverse collection name).
    pub links: BTreeMap<String, BTreeMap<String, (String, Option<String>)>>,
}

impl<'a> Model<'a> {
    pub fn new(plan: &'a Plan) -> Model<'a> {
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
            base: semantics::Model::new(plan),
            links,
        }
    }
}

impl<'a> std::ops::Deref for Model<'a> {
    type Target = semantics::Model<'a>;

    fn deref(&self) -> &semantics::Model<'a> {
        &self.base
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
                site: ExprSite::Computed(key.clone()),
                expr: c.expr.clone(),
                reason: "computed attributes of people are not lowered to SQL yet".into(),
            });
            continue;
        }
        let field = key.rsplit('.').next().unwrap_or(&key).to_string();
        match model
            .tree(&ExprSite::Computed(key.clone()), &c.expr, false)
            .and_then(|t| lw.value(&t, &scope))
        {
            Ok(sql) => computed_layers.push((field, sql)),
            Err(reason) => errors.push(LowerError {
                place: format!("computed {key}"),
                site: ExprSite::Computed(key.clone()),
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
        if a.entity != Entity::Account {
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
                    .tree(&ExprSite::AudienceRule(name.clone()), expr, false)
                    .and_then(|t| lw.boolean(&t, &scope))
                {
                    Ok(sql) => put(&mut layers, first, audience_column(&name), sql),
                    Err(reason) => errors.push(LowerError {
                        place,
                        site: ExprSite::AudienceRule(name.clone()),
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
                let merged = match merge {
                    Merge::Union => format!("({})", from_cols.join(" OR ")),
                    Merge::Intersection => format!("({})", from_cols.join(" AND ")),
                    Merge::ExcludeOverlap => format!(
                        "(({}) = 1)",
                        from_cols
                            .iter()
                            .map(|c| format!("CASE WHEN {c} THEN 1 ELSE 0 END"))
                            .collect::<Vec<_>>()
                            .join(" + ")
                    ),
                };
                let mut pre = vec![merged];
                for e in exclude {
                    pre.push(format!("NOT {}", col(e)));
                }
                if let Some(rule) = exclude_rule {
                    match model
                        .tree(&ExprSite::ExcludeRule(name.clone()), rule, false)
                        .and_then(|t| lw.boolean(&t, &scope))
                    {
                        Ok(sql) => pre.push(format!("NOT {sql}")),
                        Err(reason) => errors.push(LowerError {
                            place: format!("{place}, exclude_rule"),
                            site: ExprSite::ExcludeRule(name.clone()),
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
                        .tree(&ExprSite::RankBy(name.clone()), &rank.by, false)
                        .and_then(|t| lw.value(&t, &scope))
                    {
                        Ok(by) => {
                            if let Some(limit) = rank.limit {
                                let order = match rank.order {
                                    Order::Asc => "ASC",
                                    Order::Desc => "DESC",
                                };
                                finals[0].1 = format!(
                                    "({pre_ref} AND ROW_NUMBER() OVER (ORDER BY CASE WHEN {pre_ref} THEN 0 ELSE 1 END ASC NULLS LAST, CASE WHEN {by} IS NULL THEN 1 ELSE 0 END ASC NULLS LAST, {by} {order} NULLS LAST, {key_col} ASC NULLS LAST) <= {limit})"
                                );
                            }
                        }
                        Err(reason) => errors.push(LowerError {
                            place: format!("{place}, rank"),
                            site: ExprSite::RankBy(name.clone()),
                            expr: rank.by.clone(),
                            reason,
                        }),
                    }
                }
                match split {
                    Some(SplitPlan::Percent { seed, parts }) => {
                        // The bucket is computed once, next to the
                        // pre-membership; the parts compare it.
                        let bucket_col = format!("__bucket_{}", audience_column(&name));
                        put(
                            &mut layers,
                            first,
                            bucket_col.clone(),
                            bucket_sql(d, seed, &key_col),
                        );
                        let bucket = format!("r.{}", q(&bucket_col));
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
                        match model
                            .tree(&ExprSite::SplitBy(name.clone()), by, false)
                            .and_then(|t| lw.value(&t, &scope))
                        {
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
                                site: ExprSite::SplitBy(name.clone()),
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
                "SELECT {}\nFROM {prev} r\nORDER BY __account_key ASC NULLS LAST",
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
        .filter(|(_, a)| a.entity == Entity::Person)
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
    // The person's account is the row of `accord_accounts` (the result of
    // the account query, computed attributes included), joined as `a`.
    let scope = Scope {
        vars: vec![
            (
                "account".into(),
                Binding::Row {
                    alias: "a".into(),
                    schema: model.account.clone(),
                },
            ),
            (
                "person".into(),
                Binding::Row {
                    alias: "r".into(),
                    schema: person.clone(),
                },
            ),
        ],
        audiences: None,
        features: true,
        note: "a person audience reads the person, its own collections and its account's fields",
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
        let error = |reason| LowerError {
            place: format!("audience {name}"),
            site: ExprSite::AudienceRule(name.clone()),
            expr: expr.clone(),
            reason,
        };
        match model
            .tree(&ExprSite::AudienceRule(name.clone()), expr, true)
            .and_then(|t| lw.boolean(&t, &scope))
        {
            Ok(sql) => cols.push(format!("{sql} AS {}", q(&audience_column(name)))),
            Err(reason) => errors.push(error(reason)),
        }
        if features_of(&lw.features, &model.account) {
            errors.push(error(format!(
                "a condition over a collection of `{}` cannot be lowered in a person audience; use a computed attribute of the account",
                model.account
            )));
            lw.features
                .collections
                .retain(|(parent, _), _| *parent != model.account);
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
                "SELECT {}\nFROM v_{person} r\nLEFT JOIN accord_accounts a ON a.__account_key = r.{}\nORDER BY __person_key ASC NULLS LAST",
                out.join(",\n  "),
                q(&link_column(&account_link(model, person)))
            ),
        ),
        features: count,
    }))
}

/// Whether any feature hangs off `schema`.
fn features_of(features: &Features, schema: &str) -> bool {
    features.collections.keys().any(|(p, _)| p == schema)
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

/// The membership columns of the audiences of `entity`, with split parts,
/// in name order.
pub fn audience_columns(plan: &Plan, entity: &str) -> Vec<String> {
    let entity = Entity::parse(entity);
    let mut cols = Vec::new();
    for (name, a) in &plan.audiences {
        if Some(a.entity) != entity {
            continue;
        }
        cols.push(audience_column(name));
        for part in &a.parts {
            cols.push(audience_column(&format!("{name}.{part}")));
        }
    }
    cols
}
