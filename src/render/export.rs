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
use super::lower::{Binding, Features, Lowerer, Scope, audience_column};
use super::normalise;
use super::query::{LowerError, Model, Site};
use super::views::{account_link, account_relation, link_column, view};
use crate::catalog::Normalise;
use crate::plan::{ActivationPlan, Entity};

/// The rendered queries of one activation.
#[derive(Debug)]
pub struct ExportSql {
    /// The rows to deliver.
    pub rows: String,
    /// `__audience, __excluded`: per audience, the rows consent removed;
    /// only for person rows with consent policies.
    pub consent_excluded: Option<String>,
}

/// The export queries of `activation`, or what cannot be lowered.
pub fn export_sql(
    model: &Model,
    d: &dyn Dialect,
    name: &str,
    activation: &ActivationPlan,
) -> Result<ExportSql, Vec<LowerError>> {
    let q = |s: &str| d.ident(s);
    let mut lw = Lowerer {
        dialect: d,
        links: &model.links,
        features: Features::default(),
    };
    let mut errors = Vec::new();
    let person_rows = activation.rows == Entity::Person;
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
    let mut lower =
        |what: String, site: Site, expr: &str, boolean: bool, rule: Normalise| -> Option<String> {
            let result = model.typed(expr, person_rows).and_then(|t| {
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
            Site::Map(name.to_string(), m.column.clone()),
            &m.expr,
            false,
            rule,
        ) {
            let sql = if normalise::applies_to_raw(m.transform, rule) {
                normalise::sql(d, rule, &sql)
            } else {
                sql
            };
            columns.push(format!("{sql} AS {}", q(&m.column)));
        }
    }
    let mut filters = Vec::new();
    let mut consent = Vec::new();
    if person_rows {
        if let Some(people) = &activation.people {
            filters.extend(lower(
                "people".into(),
                Site::People(name.to_string()),
                people,
                true,
                Normalise::None,
            ));
        }
        for c in &activation.consent {
            consent.extend(lower(
                format!("consent {}", c.policy),
                Site::Consent(c.policy.clone()),
                &c.require,
                true,
                Normalise::None,
            ));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }

    let is_person_audience = |a: &str| {
        let base = a.split('.').next().unwrap_or(a);
        model
            .plan
            .audiences
            .get(base)
            .is_some_and(|x| x.entity == Entity::Person)
    };
    // People reach a member account through their own account link and,
    // with a many-to-many link from person to account, through its relation.
    let relation = model
        .person
        .as_ref()
        .and_then(|p| account_relation(model, p))
        .filter(|_| person_rows);
    let mut selects = Vec::new();
    let mut refused = Vec::new();
    let mut kept = Vec::new();
    let mut with_person_view = false;
    for audience in &activation.audiences {
        let col = q(&audience_column(audience));
        let mut wheres = Vec::new();
        let person_audience = is_person_audience(audience);
        let (keys, from) = if person_audience {
            wheres.push(format!("p.{col}"));
            (
                "p.__account_key, p.__person_key".to_string(),
                "accord_people p\nLEFT JOIN accord_accounts r ON r.__account_key = p.__account_key"
                    .to_string(),
            )
        } else if person_rows {
            with_person_view = true;
            let person = model.person.clone().unwrap_or_default();
            wheres.push(format!("r.{col}"));
            let from = if relation.is_some() {
                format!(
                    "accord_accounts r\nJOIN __account_people ap ON ap.__account_key = r.__account_key\nJOIN v_{person} p ON p.{} = ap.__person_key",
                    q(&model.key(&person))
                )
            } else {
                format!(
                    "accord_accounts r\nJOIN v_{person} p ON p.{} = r.__account_key",
                    q(&link_column(&account_link(model, &person)))
                )
            };
            (
                format!(
                    "r.__account_key, p.{} AS __person_key",
                    q(&model.key(&person))
                ),
                from,
            )
        } else {
            wheres.push(format!("r.{col}"));
            (
                "r.__account_key".to_string(),
                "accord_accounts r".to_string(),
            )
        };
        for e in &activation.exclude {
            wheres.push(format!("NOT COALESCE(r.{}, FALSE)", q(&audience_column(e))));
        }
        wheres.extend(filters.iter().cloned());
        let label = format!("{} AS __audience", d.string(audience));
        // Several routes can reach one person (many-to-many): the person
        // leaves once, through the first route that passes every filter.
        let routes = relation.is_some() && !person_audience;
        let person_key = if person_audience {
            "p.__person_key".to_string()
        } else {
            format!(
                "p.{}",
                q(&model.key(model.person.as_deref().unwrap_or_default()))
            )
        };
        if !consent.is_empty() {
            // The negation of the consent conjunction, with unknown as not
            // consenting: exactly the rows the export's filters remove.
            let mut refused_where = wheres.clone();
            refused_where.push(format!("NOT COALESCE({}, FALSE)", consent.join(" AND ")));
            refused.push(format!(
                "SELECT {label}, {person_key} AS __person_key\nFROM {from}\nWHERE {}",
                refused_where.join("\n  AND ")
            ));
            if routes {
                let mut kept_where = wheres.clone();
                kept_where.extend(consent.iter().cloned());
                kept.push(format!(
                    "SELECT {label}, {person_key} AS __person_key\nFROM {from}\nWHERE {}",
                    kept_where.join("\n  AND ")
                ));
            }
        }
        wheres.extend(consent.iter().cloned());
        let mut cols = vec![keys, label];
        cols.extend(columns.iter().cloned());
        if routes {
            cols.push(format!(
                "ROW_NUMBER() OVER (PARTITION BY {person_key} ORDER BY ap.__route ASC NULLS LAST, r.__account_key ASC NULLS LAST) AS __pick"
            ));
        }
        let select = format!(
            "SELECT {}\nFROM {from}\nWHERE {}",
            cols.join(",\n  "),
            wheres.join("\n  AND ")
        );
        selects.push(if routes {
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
    // Engines disagree on where NULLs sort by default (Spark and BigQuery
    // first, DuckDB and DataFusion last), and a person without an account
    // has a NULL account key: every key says where NULLs go.
    let order = if person_rows {
        "__audience ASC NULLS LAST, __account_key ASC NULLS LAST, __person_key ASC NULLS LAST"
    } else {
        "__audience ASC NULLS LAST, __account_key ASC NULLS LAST"
    };
    let mut with = String::new();
    if with_person_view && let Some(person) = &model.person {
        let v = view(model, d, &Features::default(), person);
        with = format!("WITH v_{person} AS (\n  {v}\n)");
        if let Some((_, rel)) = &relation {
            // Every (account, person) pair and its route: 0 the person's
            // own account link, 1 the relation.
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
    }
    let rows = format!(
        "{with}{}\nORDER BY {order}\n",
        selects.join("\nUNION ALL\n")
    );
    // A person counts once per audience, and not when another route of
    // theirs is exported.
    let consent_excluded = (!refused.is_empty()).then(|| {
        let refused = refused.join("\nUNION ALL\n");
        if kept.is_empty() {
            format!(
                "{with}SELECT __audience, COUNT(DISTINCT __person_key) AS __excluded\nFROM (\n{refused}\n) refused\nGROUP BY __audience\nORDER BY __audience ASC NULLS LAST\n"
            )
        } else {
            format!(
                "{with}SELECT f.__audience, COUNT(DISTINCT f.__person_key) AS __excluded\nFROM (\n{refused}\n) f\nLEFT JOIN (\n{}\n) k ON k.__audience = f.__audience AND k.__person_key = f.__person_key\nWHERE k.__person_key IS NULL\nGROUP BY f.__audience\nORDER BY f.__audience ASC NULLS LAST\n",
                kept.join("\nUNION ALL\n")
            )
        }
    });
    Ok(ExportSql {
        rows,
        consent_excluded,
    })
}
