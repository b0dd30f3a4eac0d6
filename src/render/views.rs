//! The `v_<schema>` views of a query: each table with its link keys and its
//! feature columns.
//!
//! Input: the plan model, a dialect, the features the lowering registered.
//! Output: the views a root schema needs, children before parents. A view
//! is the table (`b`), a `__link_<link>` column per link (people without an
//! account key link by email domain when the link has that fallback), and
//! per collection one `GROUP BY` pass computing all of its features, joined
//! on the parent key with the feature's value for an empty collection. A
//! many-to-many collection groups the child rows joined to the relation's
//! distinct pairs by the relation's key of the parent.

use std::collections::BTreeSet;

use super::dialect::Dialect;
use super::lower::{Features, Source};
use super::query::Model;
use crate::plan::LinkFallback;

/// The link of `schema` to its one account (not a many-to-many link), by
/// name.
pub fn account_link(model: &Model, schema: &str) -> String {
    model
        .plan
        .schemas
        .get(schema)
        .and_then(|s| {
            s.links
                .iter()
                .find(|(_, l)| l.to == model.account && l.via.is_none())
        })
        .map(|(n, _)| n.clone())
        .unwrap_or_else(|| "account".into())
}

/// The many-to-many link of `schema` to the account schema, if any: its
/// name and relation path.
pub fn account_relation(
    model: &Model,
    schema: &str,
) -> Option<(String, crate::plan::RelationPath)> {
    crate::plan::relation_to(model.plan, schema, &model.account)
}

pub fn link_column(link: &str) -> String {
    format!("__link_{link}")
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
        if parent == schema
            && let Source::Link { child, .. } = &coll.source
        {
            visit(child, features, order, seen);
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
            match (def.fallback, email, domain) {
                (Some(LinkFallback::EmailDomain), Some((email, _)), Some((domain, _))) => {
                    // People without the key link by their email's domain,
                    // to one account: the smallest key among those with
                    // that domain, so no person row is duplicated.
                    let fb = format!("__fb_{link}");
                    let key = q(&model.key(&def.to));
                    joins.push(format!(
                        "LEFT JOIN (SELECT LOWER({domain}) AS __domain, MIN({key}) AS __key FROM {table} GROUP BY LOWER({domain})) {fb} ON {fk} IS NULL AND {fb}.__domain = LOWER({email})",
                        domain = q(domain),
                        table = q(&def.to),
                        email = d.email_domain(&format!("b.{}", q(email)))
                    ));
                    cols.push(format!(
                        "COALESCE({fk}, {fb}.__key) AS {}",
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
        // Only the rows that can change some feature are grouped: a recent
        // event filter or a campaign match keeps a fraction of an event
        // table, and a parent left without rows gets each feature's default.
        let rows: Option<Vec<String>> = coll
            .features
            .iter()
            .map(|f| f.rows.as_ref().map(|r| format!("({r})")))
            .collect();
        let filter = match rows {
            Some(rows) => format!(" WHERE {}", rows.join(" OR ")),
            None => String::new(),
        };
        let sub = match &coll.source {
            Source::Link { child, link } => match crate::plan::relation_path(plan, child, link) {
                // Many-to-many: each child row once per related parent, so
                // a pair listed twice in the relation counts once.
                Some(rel) => {
                    let (cfk, pfk) = (q(&rel.child_fk), q(&rel.parent_fk));
                    format!(
                        "SELECT r.{pfk} AS __key, {} FROM v_{child} c JOIN (SELECT DISTINCT {cfk}, {pfk} FROM {} WHERE {cfk} IS NOT NULL AND {pfk} IS NOT NULL) r ON r.{cfk} = c.{}{filter} GROUP BY r.{pfk}",
                        aggs.join(", "),
                        q(&rel.table),
                        q(&model.key(child))
                    )
                }
                None => {
                    let lc = format!("c.{}", q(&link_column(link)));
                    format!(
                        "SELECT {lc} AS __key, {} FROM v_{child} c{filter} GROUP BY {lc}",
                        aggs.join(", ")
                    )
                }
            },
            Source::List { field } => format!(
                "SELECT c.__key, {} FROM {} c{filter} GROUP BY c.__key",
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
