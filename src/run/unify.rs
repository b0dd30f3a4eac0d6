//! Profile unification: the typed sources of each schema become one table
//! per schema, registered in the engine under the schema's name.
//!
//! - Merge: several sources of one schema merge by key; per field, the
//!   source with the lowest `precedence` that carries the field and has a
//!   value wins.
//! - A link report per person -> account link, counting the routes the
//!   rendered SQL takes: by key (the key names an account), by email domain
//!   (no key, and `fallback = "email_domain"`: the account whose domain is
//!   the email's domain, case-insensitive), through the relation schema of
//!   the person's many-to-many link to the account (people without an
//!   account of their own), or not at all; and accounts without people by
//!   any route. The tables themselves are not changed: the
//!   rendered SQL resolves links, so `run` does not re-derive them.

use std::collections::BTreeMap;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::Int64Type;

use super::engine::{Engine, ident};
use super::report::LinkReport;
use super::sources::Loaded;
use crate::plan::{LinkFallback, Plan, SchemaClass, SchemaPlan};

/// Registers one table per schema with data.
pub fn unify(engine: &dyn Engine, plan: &Plan, loaded: Vec<Loaded>) -> Result<(), String> {
    let mut by_schema: BTreeMap<String, Vec<Loaded>> = BTreeMap::new();
    for l in loaded {
        by_schema.entry(l.schema.clone()).or_default().push(l);
    }
    for (name, schema) in &plan.schemas {
        match by_schema.remove(name) {
            Some(sources) => merge(engine, name, schema, sources)?,
            // A schema without a source is an empty table, so rules over it
            // still run (and find nothing).
            None => engine.register(
                name,
                datafusion::arrow::record_batch::RecordBatch::new_empty(
                    super::sources::arrow_schema(schema),
                ),
            )?,
        }
    }
    Ok(())
}

/// The link reports, over the tables [`unify`] registered. They only read
/// those tables (a many-to-many or fallback link keeps a scratch table of
/// its own, `__linked`, while it counts), so they may be counted while
/// other queries read the same tables.
pub fn link_reports(engine: &dyn Engine, plan: &Plan) -> Result<Vec<LinkReport>, String> {
    let mut reports = Vec::new();
    for (name, schema) in &plan.schemas {
        for link in schema.links.values() {
            let Some(target) = plan.schemas.get(&link.to) else {
                continue;
            };
            if target.class != SchemaClass::Account || schema.class != SchemaClass::Person {
                continue;
            }
            if let Some(by) = &link.by {
                reports.push(link_people(
                    engine,
                    plan,
                    name,
                    schema,
                    by,
                    &link.to,
                    target,
                    link.fallback,
                )?);
            }
        }
    }
    Ok(reports)
}

/// Registers a source's rows (batches or streams) as table `name`; the
/// source keeps them too (Arrow arrays and streams are shared, not copied).
fn register(
    engine: &dyn Engine,
    name: &str,
    schema: &SchemaPlan,
    source: &Loaded,
) -> Result<(), String> {
    let arrow = super::sources::arrow_schema(schema);
    if source.streams.is_empty() {
        engine.register_batches(name, arrow, source.batches.clone())
    } else {
        engine.register_streams(name, arrow, source.streams.clone(), source.report.rows)
    }
}

fn merge(
    engine: &dyn Engine,
    name: &str,
    schema: &SchemaPlan,
    mut sources: Vec<Loaded>,
) -> Result<(), String> {
    if sources.len() == 1 {
        let only = sources.pop().expect("one source");
        return match &only.table {
            Some(table) => engine.alias(name, table),
            None => register(engine, name, schema, &only),
        };
    }
    let key = schema.key.as_ref().ok_or_else(|| {
        format!("schema `{name}` has several sources but no key to merge them by")
    })?;
    sources.sort_by(|a, b| a.precedence.cmp(&b.precedence).then(a.name.cmp(&b.name)));
    let mut tables = Vec::new();
    for (i, s) in sources.iter().enumerate() {
        let t = format!("__source_{i}");
        match &s.table {
            Some(table) => engine.alias(&t, table)?,
            None => register(engine, &t, schema, s)?,
        }
        tables.push(t);
    }
    let keys = tables
        .iter()
        .map(|t| {
            format!(
                "SELECT {k} AS __key FROM {t} WHERE {k} IS NOT NULL",
                k = ident(key)
            )
        })
        .collect::<Vec<_>>()
        .join(" UNION ");
    let columns = schema
        .fields
        .keys()
        .map(|f| {
            if f == key {
                return format!("k.__key AS {}", ident(f));
            }
            let carriers: Vec<String> = sources
                .iter()
                .zip(&tables)
                .filter(|(s, _)| s.present.contains(f))
                .map(|(_, t)| format!("{t}.{}", ident(f)))
                .collect();
            match carriers.len() {
                0 => format!("{t}.{f} AS {f}", t = tables[0], f = ident(f)),
                1 => format!("{} AS {}", carriers[0], ident(f)),
                _ => format!("COALESCE({}) AS {}", carriers.join(", "), ident(f)),
            }
        })
        .collect::<Vec<_>>()
        .join(", ");
    let joins = tables
        .iter()
        .map(|t| format!("LEFT JOIN {t} ON {t}.{k} = k.__key", k = ident(key)))
        .collect::<Vec<_>>()
        .join(" ");
    let sql = format!("SELECT {columns} FROM ({keys}) k {joins} ORDER BY k.__key");
    engine.keep(name, &sql)?;
    // The merged table holds the rows now: the sources' own tables would
    // hold them a second time to the end of the run.
    for t in &tables {
        engine.forget(t)?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn link_people(
    engine: &dyn Engine,
    plan: &Plan,
    name: &str,
    schema: &SchemaPlan,
    by: &str,
    account_name: &str,
    account: &SchemaPlan,
    fallback: Option<LinkFallback>,
) -> Result<LinkReport, String> {
    let account_key = account
        .key
        .as_deref()
        .ok_or_else(|| format!("schema `{account_name}` has no key"))?;
    let (a, p) = (ident(account_name), ident(name));
    let email = schema
        .fields
        .iter()
        .find(|(_, f)| f.identity.as_deref() == Some("email"))
        .map(|(n, _)| n.clone());
    let domain = account
        .fields
        .iter()
        .find(|(_, f)| f.identity.as_deref() == Some("domain"))
        .or_else(|| account.fields.iter().find(|(n, _)| n.as_str() == "domain"))
        .map(|(n, _)| n.clone());
    let fallback_domain = match (fallback, &email, &domain) {
        (Some(LinkFallback::EmailDomain), Some(e), Some(d)) => Some((e.clone(), d.clone())),
        _ => None,
    };
    let mut report = LinkReport {
        from: name.to_string(),
        to: account_name.to_string(),
        ..LinkReport::default()
    };
    // Many-to-many: people without an account of their own whom the
    // person's `via` link relates to an account (the route the export SQL
    // takes after the own account).
    let relation = crate::plan::relation_to(plan, name, account_name)
        .map(|(_, path)| path)
        .filter(|_| schema.key.is_some());
    if fallback_domain.is_none() && relation.is_none() {
        count_links_by_key(engine, (&p, by), (&a, account_key), &mut report)?;
        return Ok(report);
    }
    // Only the columns the counts read: the link key, the person's key for
    // the relation and, for the fallback, the email (the person table
    // itself is not copied).
    let mut read: Vec<&str> = vec![by];
    if relation.is_some() {
        read.extend(schema.key.as_deref());
    }
    if let Some((e, _)) = &fallback_domain {
        read.push(e);
    }
    read.sort_unstable();
    read.dedup();
    let direct = format!(
        "SELECT {cols}, acc.{ak} AS __direct FROM {p} p LEFT JOIN (SELECT DISTINCT {ak} FROM {a}) acc ON p.{by} = acc.{ak}",
        cols = read
            .iter()
            .map(|c| format!("p.{}", ident(c)))
            .collect::<Vec<_>>()
            .join(", "),
        ak = ident(account_key),
        by = ident(by),
    );
    let (domains, domain_join, domain_id) = match &fallback_domain {
        Some((e, d)) => (
            format!(
                ", d AS (SELECT lower({d}) AS __domain, min({ak}) AS __id FROM {a} WHERE {d} IS NOT NULL GROUP BY lower({d}))",
                d = ident(d),
                ak = ident(account_key)
            ),
            format!(
                "LEFT JOIN d ON p.{by} IS NULL AND lower(split_part(p.{e}, '@', 2)) = d.__domain",
                e = ident(e),
                by = ident(by)
            ),
            "d.__id".to_string(),
        ),
        None => (
            String::new(),
            String::new(),
            "CAST(NULL AS STRING)".to_string(),
        ),
    };
    let columns = read
        .iter()
        .map(|f| {
            if *f == by {
                format!("COALESCE(p.__direct, {domain_id}) AS {}", ident(f))
            } else {
                format!("p.{}", ident(f))
            }
        })
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "WITH p AS ({direct}){domains} SELECT {columns}, CASE WHEN p.__direct IS NOT NULL THEN 'key' WHEN {domain_id} IS NOT NULL THEN 'email_domain' END AS __link FROM p {domain_join}"
    );
    engine.keep("__linked", &sql)?;
    let counts = engine.query(
        "SELECT count(*) AS n, \
           count(CASE WHEN __link = 'key' THEN 1 END) AS by_key, \
           count(CASE WHEN __link = 'email_domain' THEN 1 END) AS by_domain \
         FROM __linked",
    )?;
    report.people = count_at(&counts, 0);
    report.by_key = count_at(&counts, 1);
    report.by_email_domain = count_at(&counts, 2);
    let mut related_accounts = String::new();
    if let (Some(rel), Some(person_key)) = (&relation, &schema.key) {
        let pairs = format!(
            "SELECT {pk} AS __person, {ak} AS __account FROM {r} WHERE {pk} IS NOT NULL AND {ak} IS NOT NULL",
            pk = ident(&rel.child_fk),
            ak = ident(&rel.parent_fk),
            r = ident(&rel.table)
        );
        let c = engine.query(&format!(
            "SELECT count(*) FROM __linked l WHERE l.__link IS NULL AND l.{k} IN (SELECT __person FROM ({pairs}) x)",
            k = ident(person_key),
        ))?;
        report.by_relation = count_at(&c, 0);
        related_accounts = format!(" UNION SELECT __account AS __k FROM ({pairs}) x");
    }
    report.unlinked = report
        .people
        .saturating_sub(report.by_key + report.by_email_domain + report.by_relation);
    count_accounts(
        engine,
        (&a, account_key),
        &format!(
            "SELECT DISTINCT {by} AS __k FROM __linked WHERE {by} IS NOT NULL{related_accounts}",
            by = ident(by)
        ),
        &mut report,
    )?;
    // The linked people were only for counting (10M rows at 10x data).
    engine.forget("__linked")?;
    // The person table stays as the sources gave it: the rendered SQL
    // resolves the link itself, with the same routes counted here.
    Ok(report)
}

/// The link report of people linked by key only (no email-domain
/// fallback, no relation): one counting query streamed over the tables,
/// with no table of linked people kept. It counts the people of each link
/// key against the accounts of each key: a person links to an account
/// when their keys meet, and an account has people when some person's
/// key meets its own (a null key meets none).
fn count_links_by_key(
    engine: &dyn Engine,
    (people, by): (&str, &str),
    (accounts, account_key): (&str, &str),
    report: &mut LinkReport,
) -> Result<(), String> {
    let (by, ak) = (ident(by), ident(account_key));
    let counts = engine.query(&format!(
        "SELECT COALESCE(sum(p.n), 0), COALESCE(sum(CASE WHEN a.n IS NOT NULL THEN p.n END), 0), \
         COALESCE(sum(a.n), 0), COALESCE(sum(CASE WHEN p.n IS NULL THEN a.n END), 0) \
         FROM (SELECT {by} AS __k, count(*) AS n FROM {people} GROUP BY {by}) p \
         FULL JOIN (SELECT {ak} AS __k, count(*) AS n FROM {accounts} GROUP BY {ak}) a \
         ON p.__k = a.__k"
    ))?;
    report.people = count_at(&counts, 0);
    report.by_key = count_at(&counts, 1);
    // By key alone: the only route.
    report.unlinked = report.people.saturating_sub(report.by_key);
    report.accounts = count_at(&counts, 2);
    report.accounts_without_people = count_at(&counts, 3);
    Ok(())
}

/// The accounts, and those without people: the accounts whose key is none
/// of `linked_keys` (a query giving the account keys people link to, as
/// `__k`).
fn count_accounts(
    engine: &dyn Engine,
    (accounts, account_key): (&str, &str),
    linked_keys: &str,
    report: &mut LinkReport,
) -> Result<(), String> {
    let acc = engine.query(&format!(
        "SELECT count(*), count(CASE WHEN l.__k IS NULL THEN 1 END) FROM {accounts} acc \
         LEFT JOIN ({linked_keys}) l ON acc.{ak} = l.__k",
        ak = ident(account_key)
    ))?;
    report.accounts = count_at(&acc, 0);
    report.accounts_without_people = count_at(&acc, 1);
    Ok(())
}

/// The count in column `i` of a one-row result (0 when it has no row).
fn count_at(batch: &datafusion::arrow::record_batch::RecordBatch, i: usize) -> u64 {
    let col = batch.column(i);
    if col.is_empty() {
        return 0;
    }
    datafusion::arrow::compute::cast(col, &datafusion::arrow::datatypes::DataType::Int64)
        .ok()
        .map(|c| c.as_primitive::<Int64Type>().value(0).max(0) as u64)
        .unwrap_or(0)
}
