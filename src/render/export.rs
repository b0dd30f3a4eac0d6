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
use super::views::{account_link, link_column, view};
use crate::catalog::Normalise;
use crate::plan::ActivationPlan;

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
    let person_rows = activation.rows == "person";
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
            let sql = if normalise::applies_to_raw(&m.transform, rule) {
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
            .is_some_and(|x| x.entity == "person")
    };
    let mut selects = Vec::new();
    let mut refused = Vec::new();
    let mut with_person_view = false;
    for audience in &activation.audiences {
        let col = q(&audience_column(audience));
        let mut wheres = Vec::new();
        let (keys, from) = if is_person_audience(audience) {
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
            (
                format!(
                    "r.__account_key, p.{} AS __person_key",
                    q(&model.key(&person))
                ),
                format!(
                    "accord_accounts r\nJOIN v_{person} p ON p.{} = r.__account_key",
                    q(&link_column(&account_link(model, &person)))
                ),
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
        if !consent.is_empty() {
            // The negation of the consent conjunction, with unknown as not
            // consenting: exactly the rows the export's filters remove.
            let mut refused_where = wheres.clone();
            refused_where.push(format!("NOT COALESCE({}, FALSE)", consent.join(" AND ")));
            refused.push(format!(
                "SELECT {label}\nFROM {from}\nWHERE {}",
                refused_where.join("\n  AND ")
            ));
        }
        wheres.extend(consent.iter().cloned());
        let mut cols = vec![keys, label];
        cols.extend(columns.iter().cloned());
        selects.push(format!(
            "SELECT {}\nFROM {from}\nWHERE {}",
            cols.join(",\n  "),
            wheres.join("\n  AND ")
        ));
    }
    let order = if person_rows {
        "__audience, __account_key, __person_key"
    } else {
        "__audience, __account_key"
    };
    let mut with = String::new();
    if with_person_view && let Some(person) = &model.person {
        let v = view(model, d, &Features::default(), person);
        with = format!("WITH v_{person} AS (\n  {v}\n)\n");
    }
    let rows = format!(
        "{with}{}\nORDER BY {order}\n",
        selects.join("\nUNION ALL\n")
    );
    let consent_excluded = (!refused.is_empty()).then(|| {
        format!(
            "{with}SELECT __audience, COUNT(*) AS __excluded\nFROM (\n{}\n) refused\nGROUP BY __audience\nORDER BY __audience\n",
            refused.join("\nUNION ALL\n")
        )
    });
    Ok(ExportSql {
        rows,
        consent_excluded,
    })
}
