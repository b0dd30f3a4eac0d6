//! Export rows per activation: which accounts or people leave, with which
//! columns.
//!
//! Input: the plan model, a dialect, one activation. Output: a SQL query
//! over `accord_accounts` (the result of the account audience query) and,
//! for person audiences, `accord_people` (the result of the person audience
//! query); for person rows of account audiences, the person table itself,
//! linked to its account as in the audience query.
//!
//! Rows: one per member and activated audience (`__audience`), so an
//! incremental export can tell added from removed members per audience.
//! Exclusions, the people filter and every consent filter apply; mapping
//! expressions carry their normalise-and-hash (`hash_email`, `hash_phone`).
//!
//! With consent policies, a second query counts per audience the rows that
//! consent removed (the same rows, consent negated), so a run reports
//! "excluded by consent" from a rendered job instead of re-deriving it.

use super::dialect::Dialect;
use super::lower::{Binding, Features, Lowerer, Scope};
use super::normalise;
use super::query::{LowerError, Model};
use super::views::{account_link, account_relation, link_column, links_view};
use crate::catalog::Normalise;
use crate::plan::{ActivationPlan, Entity, RelationPath};
use crate::resolve::ExprSite;
use crate::semantics::audience_column;

/// The rendered queries of one activation.
#[derive(Debug)]
pub struct ExportSql {
    /// The rows to deliver.
    pub rows: String,
    /// `__audience, __excluded`: per audience, the rows consent removed;
    /// only for person rows with consent policies.
    pub consent_excluded: Option<String>,
}

/// People reach a member account through their own account link and,
/// with a many-to-many link from person to account, through its relation:
/// that relation, for person rows.
fn person_relation(
    model: &Model,
    person_rows: bool,
) -> Option<(String, crate::plan::RelationPath)> {
    model
        .person
        .as_ref()
        .and_then(|p| account_relation(model, p))
        .filter(|_| person_rows)
}

/// The export queries of `activation`, or what cannot be lowered.
pub fn export_sql(
    model: &Model,
    d: &dyn Dialect,
    name: &str,
    activation: &ActivationPlan,
) -> Result<ExportSql, Vec<LowerError>> {
    let person_rows = activation.rows == Entity::Person;
    let lowered = lower_expressions(model, d, name, activation, person_rows)?;
    let relation = person_relation(model, person_rows);
    let mut selects = Selects::default();
    for audience in &activation.audiences {
        let source = audience_source(model, d, audience, person_rows, relation.is_some());
        selects.with_person_view |= source.reads_person_view;
        audience_select(d, activation, &lowered, audience, &source, &mut selects);
    }
    let with = if selects.with_person_view {
        with_person_view(model, d, relation.as_ref())
    } else {
        String::new()
    };
    let member_key = member_key_order(model, d, person_rows);
    Ok(ExportSql {
        rows: rows_query(&with, &selects.rows, person_rows, &member_key),
        consent_excluded: consent_excluded_query(&with, &selects.refused, &selects.kept),
    })
}

/// The activation's expressions in SQL: the mapped columns (`expr AS
/// column`, normalised as the destination's identity needs), the people
/// filter and the consent requirements (person rows only).
struct Lowered {
    columns: Vec<String>,
    filters: Vec<String>,
    consent: Vec<String>,
}

fn lower_expressions(
    model: &Model,
    d: &dyn Dialect,
    name: &str,
    activation: &ActivationPlan,
    person_rows: bool,
) -> Result<Lowered, Vec<LowerError>> {
    let mut lw = Lowerer {
        dialect: d,
        links: &model.links,
        features: Features::default(),
    };
    let mut errors = Vec::new();
    let row = |alias: &str, schema: &str| Binding::Row {
        alias: alias.into(),
        schema: schema.into(),
    };
    let mut vars = vec![("account".to_string(), row("r", &model.account))];
    if let Some(person) = &model.person
        && person_rows
    {
        vars.push(("person".to_string(), row("p", person)));
    }
    let scope = Scope {
        vars,
        audiences: None,
        features: false,
        note: "an account-row export reads the account only; add `people` to read the person",
    };
    let mut lower = |what: String,
                     site: ExprSite,
                     expr: &str,
                     boolean: bool,
                     rule: Normalise|
     -> Option<String> {
        let result = model.tree(&site, expr, person_rows).and_then(|t| {
            let t = normalise::prepare(t, rule);
            if boolean {
                lw.boolean(&t, &scope)
            } else {
                lw.value(&t, &scope)
            }
        });
        match result {
            Ok(sql) => Some(sql),
            Err(reason) => {
                errors.push(LowerError {
                    place: format!("activation {name}, {what}"),
                    site,
                    expr: expr.to_string(),
                    reason,
                });
                None
            }
        }
    };
    let mut columns = Vec::new();
    for m in &activation.mapping {
        let rule = normalise::rule(&activation.destination_type, &m.column);
        if let Some(sql) = lower(
            format!("column {}", m.column),
            ExprSite::Map(name.to_string(), m.column.clone()),
            &m.expr,
            false,
            rule,
        ) {
            let sql = if normalise::applies_to_raw(m.transform, rule) {
                normalise::sql(d, rule, &sql)
            } else {
                sql
            };
            columns.push(format!("{sql} AS {}", d.ident(&m.column)));
        }
    }
    let mut filters = Vec::new();
    let mut consent = Vec::new();
    if person_rows {
        if let Some(people) = &activation.people {
            filters.extend(lower(
                "people".into(),
                ExprSite::People(name.to_string()),
                people,
                true,
                Normalise::None,
            ));
        }
        for c in &activation.consent {
            consent.extend(lower(
                format!("consent {}", c.policy),
                ExprSite::Consent(c.policy.clone()),
                &c.require,
                true,
                Normalise::None,
            ));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Lowered {
        columns,
        filters,
        consent,
    })
}

/// Where the rows of one activated audience come from.
struct AudienceSource {
    /// The key columns of a row.
    keys: String,
    from: String,
    /// The membership condition.
    member: String,
    /// The person key expression, for consent counts and route picking.
    person_key: String,
    /// `from` reads the person view (person rows of an account audience).
    reads_person_view: bool,
    /// Several routes can reach one person (many-to-many): the person
    /// leaves once, through the first route that passes every filter.
    routes: bool,
}

fn audience_source(
    model: &Model,
    d: &dyn Dialect,
    audience: &str,
    person_rows: bool,
    relation: bool,
) -> AudienceSource {
    let q = |s: &str| d.ident(s);
    let col = q(&audience_column(audience));
    let base = audience.split('.').next().unwrap_or(audience);
    let person_audience = model
        .plan
        .audiences
        .get(base)
        .is_some_and(|x| x.entity == Entity::Person);
    let person = model.person.as_deref().unwrap_or_default();
    if person_audience {
        return AudienceSource {
            keys: "p.__account_key, p.__person_key".to_string(),
            from:
                "accord_people p\nLEFT JOIN accord_accounts r ON r.__account_key = p.__account_key"
                    .to_string(),
            member: format!("p.{col}"),
            person_key: "p.__person_key".to_string(),
            reads_person_view: false,
            routes: false,
        };
    }
    let person_key = format!("p.{}", q(&model.key(person)));
    if !person_rows {
        return AudienceSource {
            keys: "r.__account_key".to_string(),
            from: "accord_accounts r".to_string(),
            member: format!("r.{col}"),
            person_key,
            reads_person_view: false,
            routes: false,
        };
    }
    let from = if relation {
        format!(
            "accord_accounts r\nJOIN __account_people ap ON ap.__account_key = r.__account_key\nJOIN v_{person} p ON p.{} = ap.__person_key",
            q(&model.key(person))
        )
    } else {
        format!(
            "accord_accounts r\nJOIN v_{person} p ON p.{} = r.__account_key",
            q(&link_column(&account_link(model, person)))
        )
    };
    AudienceSource {
        keys: format!("r.__account_key, {person_key} AS __person_key"),
        from,
        member: format!("r.{col}"),
        person_key,
        reads_person_view: true,
        routes: relation,
    }
}

/// The selects of an export, one per activated audience.
#[derive(Default)]
struct Selects {
    /// The exported rows.
    rows: Vec<String>,
    /// The rows consent removes, per audience.
    refused: Vec<String>,
    /// With several routes, the rows consent keeps, so a person refused on
    /// one route and exported on another is not counted as removed.
    kept: Vec<String>,
    with_person_view: bool,
}

/// The rows of one activated audience: members, less exclusions, through
/// the people filter and consent, with the mapped columns; and, with
/// consent, the rows consent removes (and keeps, with several routes).
fn audience_select(
    d: &dyn Dialect,
    activation: &ActivationPlan,
    lowered: &Lowered,
    audience: &str,
    source: &AudienceSource,
    out: &mut Selects,
) {
    let q = |s: &str| d.ident(s);
    let AudienceSource {
        keys,
        from,
        person_key,
        routes,
        ..
    } = source;
    let mut wheres = vec![source.member.clone()];
    for e in excluded_in(d, activation) {
        wheres.push(format!("NOT {e}"));
    }
    wheres.extend(lowered.filters.iter().cloned());
    let label = format!("{} AS __audience", d.string(audience));
    let consent = &lowered.consent;
    if !consent.is_empty() {
        // The negation of the consent conjunction, with unknown as not
        // consenting: exactly the rows the export's filters remove.
        let mut refused_where = wheres.clone();
        refused_where.push(format!("NOT COALESCE({}, FALSE)", consent.join(" AND ")));
        out.refused.push(format!(
            "SELECT {label}, {person_key} AS __person_key\nFROM {from}\nWHERE {}",
            refused_where.join("\n  AND ")
        ));
        if *routes {
            let mut kept_where = wheres.clone();
            kept_where.extend(consent.iter().cloned());
            out.kept.push(format!(
                "SELECT {label}, {person_key} AS __person_key\nFROM {from}\nWHERE {}",
                kept_where.join("\n  AND ")
            ));
        }
    }
    wheres.extend(consent.iter().cloned());
    let mut cols = vec![keys.clone(), label];
    cols.extend(lowered.columns.iter().cloned());
    if *routes {
        cols.push(format!(
            "ROW_NUMBER() OVER (PARTITION BY {person_key} ORDER BY ap.__route ASC NULLS LAST, r.__account_key ASC NULLS LAST) AS __pick"
        ));
    }
    let select = format!(
        "SELECT {}\nFROM {from}\nWHERE {}",
        cols.join(",\n  "),
        wheres.join("\n  AND ")
    );
    out.rows.push(if *routes {
        let names: Vec<String> = ["__account_key", "__person_key", "__audience"]
            .into_iter()
            .map(String::from)
            .chain(activation.mapping.iter().map(|m| q(&m.column)))
            .collect();
        format!(
            "SELECT {}\nFROM (\n{select}\n) routed\nWHERE __pick = 1",
            names.join(", ")
        )
    } else {
        select
    });
}

/// Per excluded audience of the activation, whether the row's account is
/// in it (unknown as not).
fn excluded_in(d: &dyn Dialect, activation: &ActivationPlan) -> Vec<String> {
    activation
        .exclude
        .iter()
        .map(|e| format!("COALESCE(r.{}, FALSE)", d.ident(&audience_column(e))))
        .collect()
}

/// The columns of [`explain_sql`]'s rows besides the keys, `__audience` and
/// the mapped columns.
pub struct ExplainColumns;

impl ExplainColumns {
    /// Whether the row's account (or person) is in the audience.
    pub const MEMBER: &'static str = "__member";
    /// The way to the person: 0 the person's own account, 1 a relation.
    pub const ROUTE: &'static str = "__route";
    /// The people filter's value.
    pub const PEOPLE: &'static str = "__people";

    /// Whether the row's account is in the `i`th excluded audience.
    pub fn excluded(i: usize) -> String {
        format!("__excluded_{i}")
    }

    /// The `i`th consent requirement's value.
    pub fn consent(i: usize) -> String {
        format!("__consent_{i}")
    }
}

/// Every candidate row of a person-row activation with each condition the
/// export query filters on as a column of its own ([`ExplainColumns`]),
/// nothing filtered: what `accord explain person` reads to say which
/// condition keeps a person out. The conditions and mapped columns are the
/// export query's own SQL.
pub fn explain_sql(
    model: &Model,
    d: &dyn Dialect,
    name: &str,
    activation: &ActivationPlan,
) -> Result<String, Vec<LowerError>> {
    let person_rows = activation.rows == Entity::Person;
    let lowered = lower_expressions(model, d, name, activation, person_rows)?;
    let relation = person_relation(model, person_rows);
    let mut reads_person_view = false;
    let mut selects = Vec::new();
    for audience in &activation.audiences {
        let source = audience_source(model, d, audience, person_rows, relation.is_some());
        reads_person_view |= source.reads_person_view;
        let mut cols = vec![
            source.keys.clone(),
            format!("{} AS __audience", d.string(audience)),
            format!(
                "COALESCE({}, FALSE) AS {}",
                source.member,
                ExplainColumns::MEMBER
            ),
            format!(
                "{} AS {}",
                if source.routes { "ap.__route" } else { "0" },
                ExplainColumns::ROUTE
            ),
        ];
        for (i, e) in excluded_in(d, activation).into_iter().enumerate() {
            cols.push(format!("{e} AS {}", ExplainColumns::excluded(i)));
        }
        if let Some(filter) = lowered.filters.first() {
            cols.push(format!("{filter} AS {}", ExplainColumns::PEOPLE));
        }
        for (i, c) in lowered.consent.iter().enumerate() {
            cols.push(format!("{c} AS {}", ExplainColumns::consent(i)));
        }
        cols.extend(lowered.columns.iter().cloned());
        selects.push(format!(
            "SELECT {}\nFROM {}",
            cols.join(",\n  "),
            source.from
        ));
    }
    let with = if reads_person_view {
        with_person_view(model, d, relation.as_ref())
    } else {
        String::new()
    };
    Ok(format!("{with}{}\n", selects.join("\nUNION ALL\n")))
}

/// The `WITH` clause of the person view that person rows of account
/// audiences read and, with a relation, every (account, person) pair and
/// its route: 0 the person's own account link, 1 the relation.
fn with_person_view(
    model: &Model,
    d: &dyn Dialect,
    relation: Option<&(String, RelationPath)>,
) -> String {
    let q = |s: &str| d.ident(s);
    let Some(person) = &model.person else {
        return String::new();
    };
    let v = links_view(model, d, person);
    let mut with = format!("WITH v_{person} AS (\n  {v}\n)");
    if let Some((_, rel)) = relation {
        with.push_str(&format!(
            ",\n__account_people AS (\n  SELECT {link} AS __account_key, {key} AS __person_key, 0 AS __route FROM v_{person} WHERE {link} IS NOT NULL\n  UNION ALL\n  SELECT DISTINCT {pfk}, {cfk}, 1 FROM {table} WHERE {pfk} IS NOT NULL AND {cfk} IS NOT NULL\n)",
            link = q(&link_column(&account_link(model, person))),
            key = q(&model.key(person)),
            pfk = q(&rel.parent_fk),
            cfk = q(&rel.child_fk),
            table = q(&rel.table),
        ));
    }
    with.push('\n');
    with
}

/// How the rows' own key (`__person_key` for person rows, else
/// `__account_key`) sorts: as the run's member keys do, as text. An
/// integer key is sorted by its text (`10` before `9`), so that its rows
/// stream in member order too.
fn member_key_order(model: &Model, d: &dyn Dialect, person_rows: bool) -> String {
    let (schema, column) = if person_rows {
        (model.person.as_deref(), "__person_key")
    } else {
        (Some(model.account.as_str()), "__account_key")
    };
    let integer = schema
        .and_then(|name| Some((name, model.plan.schemas.get(name)?)))
        .and_then(|(name, s)| s.fields.get(&model.key(name)))
        .is_some_and(|f| f.ty == "int");
    if integer {
        format!("CAST({column} AS {})", d.type_name("string"))
    } else {
        column.to_string()
    }
}

/// The rows to deliver: every audience's rows, in a total order.
fn rows_query(with: &str, selects: &[String], person_rows: bool, member_key: &str) -> String {
    // Engines disagree on where NULLs sort by default (Spark and BigQuery
    // first, DuckDB and DataFusion last), and a person without an account
    // has a NULL account key: every key says where NULLs go. Rows come in
    // member order: the run keys its members `audience/member`, keeps them
    // in that order, and takes the rows as they stream when they arrive in
    // it. So audiences sort as `audience/` does: `big-x/` and `X.high/`
    // (a split part) before `big/` and `X/`, where the names alone sort
    // the other way, and the member's key as text (`member_key`).
    let order = if person_rows {
        format!(
            "__audience || '/' ASC NULLS LAST, {member_key} ASC NULLS LAST, __account_key ASC NULLS LAST"
        )
    } else {
        format!("__audience || '/' ASC NULLS LAST, {member_key} ASC NULLS LAST")
    };
    // The rows are a subquery: an ORDER BY after a UNION may name its
    // columns but, in some engines, not compute on them.
    format!(
        "{with}SELECT *\nFROM (\n{}\n) __rows\nORDER BY {order}\n",
        selects.join("\nUNION ALL\n")
    )
}

/// Per audience, the people consent removed: a person counts once per
/// audience, and not when another route of theirs is exported.
fn consent_excluded_query(with: &str, refused: &[String], kept: &[String]) -> Option<String> {
    if refused.is_empty() {
        return None;
    }
    let refused = refused.join("\nUNION ALL\n");
    Some(if kept.is_empty() {
        format!(
            "{with}SELECT __audience, COUNT(DISTINCT __person_key) AS __excluded\nFROM (\n{refused}\n) refused\nGROUP BY __audience\nORDER BY __audience ASC NULLS LAST\n"
        )
    } else {
        format!(
            "{with}SELECT f.__audience, COUNT(DISTINCT f.__person_key) AS __excluded\nFROM (\n{refused}\n) f\nLEFT JOIN (\n{}\n) k ON k.__audience = f.__audience AND k.__person_key = f.__person_key\nWHERE k.__person_key IS NULL\nGROUP BY f.__audience\nORDER BY f.__audience ASC NULLS LAST\n",
            kept.join("\nUNION ALL\n")
        )
    })
}
