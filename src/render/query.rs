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
use crate::plan::{
    AudienceDefinition, Entity, Merge, Order, PercentPart, Plan, RankPlan, SplitPlan, ValuePart,
    percent_ranges,
};
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
    account_query(model, d, false)
}

/// The account query with, besides, the steps of every composition as
/// columns (see [`Steps`]): what `accord explain account` reads, so that
/// a position or a bucket it shows is the one the run's SQL computes.
pub fn accounts_explained(model: &Model, d: &dyn Dialect) -> Result<Built, Vec<LowerError>> {
    account_query(model, d, true)
}

/// The columns of a composition's steps in [`accounts_explained`].
pub struct Steps {
    /// Whether the account survives merge, exclude and exclude_rule: a
    /// candidate of the rank or split.
    pub candidate: String,
    /// A ranked composition's order: 1 for the first candidate (every
    /// candidate sorts before every other account).
    pub position: String,
    /// The rank value (`rank.by`).
    pub rank_value: String,
    /// A percent split's bucket, 0..100.
    pub bucket: String,
    /// A split by attribute's value (`split.by`).
    pub split_value: String,
}

impl Steps {
    pub fn of(audience: &str) -> Steps {
        let column = audience_column(audience);
        Steps {
            candidate: format!("__pre_{column}"),
            position: format!("__position_{column}"),
            rank_value: format!("__rank_value_{column}"),
            bucket: format!("__bucket_{column}"),
            split_value: format!("__split_value_{column}"),
        }
    }
}

fn account_query(
    model: &Model,
    d: &dyn Dialect,
    explained: bool,
) -> Result<Built, Vec<LowerError>> {
    let mut query = AccountQuery {
        model,
        d,
        lw: Lowerer {
            dialect: d,
            links: &model.links,
            features: Features::default(),
        },
        scope: account_scope(&model.account),
        key_col: format!("r.{}", d.ident(&model.key(&model.account))),
        errors: Vec::new(),
        layers: Vec::new(),
        explained,
        steps: Vec::new(),
    };
    let computed = query.computed();
    query.audiences();
    if !query.errors.is_empty() {
        return Err(query.errors);
    }
    Ok(query.assemble(&computed))
}

/// The account query being lowered: the lowerer (which collects the
/// feature columns), the membership layers so far and the expressions that
/// did not lower.
struct AccountQuery<'m, 'd> {
    model: &'m Model<'m>,
    d: &'d dyn Dialect,
    lw: Lowerer<'d>,
    scope: Scope,
    /// The account key column, `r."id"`: ranks and buckets break ties by it.
    key_col: String,
    errors: Vec<LowerError>,
    /// Audience columns by layer: an audience sits one layer after the
    /// audiences it reads (a composition takes two).
    layers: Vec<Layer>,
    /// Whether the compositions' steps are columns of the result too.
    explained: bool,
    /// Those step columns, when `explained`.
    steps: Vec<String>,
}

impl<'m, 'd> AccountQuery<'m, 'd>
where
    'm: 'd,
{
    fn q(&self, s: &str) -> String {
        self.d.ident(s)
    }

    /// The SQL of the expression at `site`, or `None` with the reason
    /// recorded under `place`.
    fn lower(
        &mut self,
        place: String,
        site: ExprSite,
        expr: &str,
        boolean: bool,
    ) -> Option<String> {
        let lowered = self.model.tree(&site, expr, false).and_then(|t| {
            if boolean {
                self.lw.boolean(&t, &self.scope)
            } else {
                self.lw.value(&t, &self.scope)
            }
        });
        match lowered {
            Ok(sql) => Some(sql),
            Err(reason) => {
                self.errors.push(LowerError {
                    place,
                    site,
                    expr: expr.to_string(),
                    reason,
                });
                None
            }
        }
    }

    /// The account's computed attributes as (field, SQL), each after those
    /// it reads.
    fn computed(&mut self) -> Vec<(String, String)> {
        let plan = self.model.plan;
        let mut columns = Vec::new();
        for key in computed_order(plan) {
            let Some(c) = plan.computed.get(&key) else {
                continue;
            };
            let place = format!("computed {key}");
            let site = ExprSite::Computed(key.clone());
            if c.schema != self.model.account {
                self.errors.push(LowerError {
                    place,
                    site,
                    expr: c.expr.clone(),
                    reason: "computed attributes of people are not lowered to SQL yet".into(),
                });
                continue;
            }
            let field = key.rsplit('.').next().unwrap_or(&key).to_string();
            if let Some(sql) = self.lower(place, site, &c.expr, false) {
                columns.push((field, sql));
            }
        }
        columns
    }

    /// Adds `column` to layer `at`.
    fn put(&mut self, at: usize, column: String, sql: String) {
        while self.layers.len() <= at {
            self.layers.push(Layer {
                columns: Vec::new(),
            });
        }
        self.layers[at].columns.push((column, sql));
    }

    /// The membership column of an audience in the previous layers.
    fn col(&self, name: &str) -> String {
        format!("r.{}", self.q(&audience_column(name)))
    }

    /// Every account audience, layer by layer.
    fn audiences(&mut self) {
        let plan = self.model.plan;
        let mut level: BTreeMap<String, usize> = BTreeMap::new();
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
            let placed = match &a.definition {
                AudienceDefinition::Rule { expr } => {
                    let place = format!("audience {name}");
                    let site = ExprSite::AudienceRule(name.clone());
                    if let Some(sql) = self.lower(place, site, expr, true) {
                        self.put(first, audience_column(&name), sql);
                    }
                    first
                }
                AudienceDefinition::Compose { .. } => {
                    self.composition(&name, &a.definition, first);
                    first + 1
                }
            };
            level.insert(name, placed);
        }
    }

    /// A composition: its pre-membership (merge, exclude, exclude_rule) in
    /// layer `first`, its final columns (rank, split parts) in the next.
    fn composition(&mut self, name: &str, definition: &AudienceDefinition, first: usize) {
        let AudienceDefinition::Compose {
            from,
            merge,
            exclude,
            exclude_rule,
            rank,
            split,
        } = definition
        else {
            return;
        };
        let mut pre = vec![self.merged(from, merge)];
        for e in exclude {
            pre.push(format!("NOT {}", self.col(e)));
        }
        if let Some(rule) = exclude_rule {
            let place = format!("audience {name}, exclude_rule");
            let site = ExprSite::ExcludeRule(name.to_string());
            if let Some(sql) = self.lower(place, site, rule, true) {
                pre.push(format!("NOT {sql}"));
            }
        }
        let steps = Steps::of(name);
        let pre_col = steps.candidate.clone();
        self.put(first, pre_col.clone(), format!("({})", pre.join(" AND ")));
        self.step(&pre_col);
        let pre_ref = format!("r.{}", self.q(&pre_col));
        let mut finals = Vec::new();
        let membership = match rank {
            Some(rank) => self.ranked(name, rank, &pre_ref, &mut finals),
            None => pre_ref.clone(),
        };
        finals.insert(0, (audience_column(name), membership));
        match split {
            Some(SplitPlan::Percent { seed, parts }) => {
                finals.extend(self.percent_parts(name, seed, parts, &pre_ref, first));
            }
            Some(SplitPlan::ByAttribute { by, parts, other }) => {
                let parts = self.value_parts(name, by, parts, other.as_deref(), &pre_ref);
                finals.extend(parts);
            }
            None => {}
        }
        for (c, sql) in finals {
            self.put(first + 1, c, sql);
        }
    }

    /// The merge of the `from` audiences.
    fn merged(&self, from: &[String], merge: &Merge) -> String {
        let from_cols: Vec<String> = from.iter().map(|f| self.col(f)).collect();
        match merge {
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
        }
    }

    /// Records a step column of the explained query.
    fn step(&mut self, column: &str) {
        if self.explained {
            self.steps.push(column.to_string());
        }
    }

    /// The membership of a ranked composition: the first `limit` members by
    /// `rank.by`, ties by the account key; all members without a limit.
    /// Explained, the position and the rank value join `finals`.
    fn ranked(
        &mut self,
        name: &str,
        rank: &RankPlan,
        pre_ref: &str,
        finals: &mut Vec<(String, String)>,
    ) -> String {
        let place = format!("audience {name}, rank");
        let site = ExprSite::RankBy(name.to_string());
        let Some(by) = self.lower(place, site, &rank.by, false) else {
            return pre_ref.to_string();
        };
        let order = match rank.order {
            Order::Asc => "ASC",
            Order::Desc => "DESC",
        };
        let key_col = &self.key_col;
        let position = format!(
            "ROW_NUMBER() OVER (ORDER BY CASE WHEN {pre_ref} THEN 0 ELSE 1 END ASC NULLS LAST, CASE WHEN {by} IS NULL THEN 1 ELSE 0 END ASC NULLS LAST, {by} {order} NULLS LAST, {key_col} ASC NULLS LAST)"
        );
        let membership = match rank.limit {
            Some(limit) => format!("({pre_ref} AND {position} <= {limit})"),
            None => pre_ref.to_string(),
        };
        if self.explained {
            let steps = Steps::of(name);
            finals.push((steps.position.clone(), position));
            finals.push((steps.rank_value.clone(), by));
            self.step(&steps.position);
            self.step(&steps.rank_value);
        }
        membership
    }

    /// The parts of a percent split: each the members whose bucket (computed
    /// once, beside the pre-membership in layer `first`) is in its range.
    fn percent_parts(
        &mut self,
        name: &str,
        seed: &str,
        parts: &[PercentPart],
        pre_ref: &str,
        first: usize,
    ) -> Vec<(String, String)> {
        let bucket_col = Steps::of(name).bucket;
        let bucket_sql = bucket_sql(self.d, seed, &self.key_col);
        self.put(first, bucket_col.clone(), bucket_sql);
        self.step(&bucket_col);
        let bucket = format!("r.{}", self.q(&bucket_col));
        percent_ranges(parts)
            .into_iter()
            .map(|(part, lo, hi)| {
                (
                    audience_column(&format!("{name}.{}", part.name)),
                    format!("({pre_ref} AND {bucket} >= {lo} AND {bucket} < {hi})"),
                )
            })
            .collect()
    }

    /// The parts of a split by attribute: each the members whose value is
    /// one of its values not taken by an earlier part; `other` the rest.
    fn value_parts(
        &mut self,
        name: &str,
        by: &str,
        parts: &[ValuePart],
        other: Option<&str>,
        pre_ref: &str,
    ) -> Vec<(String, String)> {
        let place = format!("audience {name}, split");
        let site = ExprSite::SplitBy(name.to_string());
        let Some(v) = self.lower(place, site, by, false) else {
            return Vec::new();
        };
        let mut columns = Vec::new();
        if self.explained {
            let value = Steps::of(name).split_value;
            self.step(&value);
            columns.push((value, v.clone()));
        }
        let d = self.d;
        let in_list = |vals: &[String]| {
            if vals.is_empty() {
                "FALSE".to_string()
            } else {
                let vals: Vec<String> = vals.iter().map(|s| d.string(s)).collect();
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
            columns.push((
                audience_column(&format!("{name}.{}", part.name)),
                format!("({pre_ref} AND {})", in_list(&fresh)),
            ));
            earlier.extend(part.values.iter().cloned());
        }
        if let Some(other) = other {
            columns.push((
                audience_column(&format!("{name}.{other}")),
                format!("({pre_ref} AND NOT {})", in_list(&earlier)),
            ));
        }
        columns
    }

    /// The query: the feature views, a layer per computed attribute, the
    /// membership layers, and the account row with every column.
    fn assemble(self, computed: &[(String, String)]) -> Built {
        let (model, d) = (self.model, self.d);
        let q = |s: &str| d.ident(s);
        let features = self.lw.features;
        let mut ctes = views(model, d, &features, &model.account);
        let mut prev = format!("v_{}", model.account);
        for (i, (field, sql)) in computed.iter().enumerate() {
            let name = format!("c_{}", i + 1);
            ctes.push((
                name.clone(),
                format!("SELECT r.*, {sql} AS {} FROM {prev} r", q(field)),
            ));
            prev = name;
        }
        for (i, layer) in self.layers.iter().enumerate() {
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
        let mut out = vec![format!("{} AS __account_key", self.key_col)];
        if let Some(schema) = model.plan.schemas.get(&model.account) {
            out.extend(schema.fields.keys().map(|f| format!("r.{}", q(f))));
        }
        out.extend(computed.iter().map(|(f, _)| format!("r.{}", q(f))));
        out.extend(
            audience_columns(model.plan, "account")
                .iter()
                .chain(&self.steps)
                .map(|c| format!("r.{}", q(c))),
        );
        let count = features
            .collections
            .values()
            .map(|c| c.features.len())
            .sum();
        Built {
            sql: assemble(
                &ctes,
                &format!(
                    "SELECT {}\nFROM {prev} r\nORDER BY __account_key ASC NULLS LAST",
                    out.join(",\n  ")
                ),
            ),
            features: count,
        }
    }
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
    let Some(entity) = Entity::parse(entity) else {
        return Vec::new();
    };
    crate::semantics::audience_references(plan, entity)
        .iter()
        .map(|reference| audience_column(reference))
        .collect()
}
