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
//!
//! A child with features of its own is read in the form each of the
//! parent's features needs (see [`Form`]): the features that read none of
//! the child's features read its table with link keys only, and those
//! that hold only of children with a row in one of their collections read
//! only those children. Each form is one pass, so an account's "a person
//! who opened an email" never left-joins every person to their opens.

use std::collections::{BTreeMap, BTreeSet};

use super::dialect::Dialect;
use super::lower::{Collection, Feature, Features, Source};
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

/// The form of a schema's view a pass reads.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Form {
    /// `l_<schema>`: the table and its link keys, without features: what
    /// a parent's features that read none of the schema's own need.
    Links,
    /// `v_<schema>`: the table, its link keys, every feature.
    Whole,
    /// `h<n>_<schema>`: the rows of the schema with a row in collection
    /// `having`, with the features of the collections in `reads`: what a
    /// parent's features that hold only of such rows need (a person who
    /// opened an email), without the other collections' passes.
    Having {
        having: String,
        reads: BTreeSet<String>,
    },
}

impl Form {
    /// Whether the form has the features of `schema`'s collection `name`.
    fn has(&self, name: &str) -> bool {
        match self {
            Form::Links => false,
            Form::Whole => true,
            Form::Having { reads, .. } => reads.contains(name),
        }
    }
}

/// The names of the views a query reads, by schema and form.
type Names = BTreeMap<(String, Form), String>;

/// Whether a row of `schema` has a row in its collection `name` is one
/// join: that collection's features are one pass (its elements have no
/// features of their own to split it by).
fn one_pass(features: &Features, schema: &str, name: &str) -> bool {
    match features
        .collections
        .get(&(schema.to_string(), name.to_string()))
        .map(|c| &c.source)
    {
        Some(Source::List { .. }) => true,
        Some(Source::Link { child, .. }) => !features.has_features(child),
        None => false,
    }
}

/// A collection's features by the form of the child view they read, one
/// pass each: the narrowest form that has every row a feature can change.
/// A list's elements are read from the list; a child without features has
/// one view.
fn passes<'f>(features: &Features, coll: &'f Collection) -> Vec<(Form, Vec<&'f Feature>)> {
    let child = match &coll.source {
        Source::Link { child, .. } if features.has_features(child) => child,
        _ => return vec![(Form::Whole, coll.features.iter().collect())],
    };
    // First by what a feature needs of the child: none of its features
    // (`None`), every row with its features (`Some(None)`), or only the
    // rows with a row in one of its collections (`Some(Some(name))`).
    let mut by_need: BTreeMap<Option<Option<&String>>, Vec<&Feature>> = BTreeMap::new();
    for f in &coll.features {
        let need = (!f.nested.reads.is_empty()).then(|| {
            f.rows
                .as_ref()
                .and(f.nested.needs.iter().find(|n| one_pass(features, child, n)))
        });
        by_need.entry(need).or_default().push(f);
    }
    let mut passes: BTreeMap<Form, Vec<&Feature>> = BTreeMap::new();
    for (need, pass) in by_need {
        let form = match need {
            None => Form::Links,
            Some(None) => Form::Whole,
            Some(Some(having)) => Form::Having {
                having: having.clone(),
                reads: pass.iter().flat_map(|f| f.nested.reads.clone()).collect(),
            },
        };
        passes.entry(form).or_default().extend(pass);
    }
    passes.into_iter().collect()
}

/// The views the root needs, children first: each schema in every form
/// that a parent's pass (or the root query, the whole view) reads.
pub fn views(
    model: &Model,
    d: &dyn Dialect,
    features: &Features,
    root: &str,
) -> Vec<(String, String)> {
    let mut order = Vec::new();
    let mut seen = BTreeSet::new();
    visit(root, features, &mut order, &mut seen);
    let mut forms: BTreeMap<&str, BTreeSet<Form>> = BTreeMap::new();
    forms.entry(root).or_default().insert(Form::Whole);
    // Parents before children: a collection some form of the parent has
    // reads its child in the forms of its passes.
    for schema in order.iter().rev() {
        let parent_forms = forms.get(schema.as_str()).cloned().unwrap_or_default();
        for ((parent, name), coll) in &features.collections {
            if parent != schema || !parent_forms.iter().any(|f| f.has(name)) {
                continue;
            }
            if let Source::Link { child, .. } = &coll.source {
                for (form, _) in passes(features, coll) {
                    forms.entry(child.as_str()).or_default().insert(form);
                }
            }
        }
    }
    let mut names = Names::new();
    for (schema, forms) in &forms {
        let mut having = 0;
        for form in forms {
            let name = match form {
                Form::Links => format!("l_{schema}"),
                Form::Whole => format!("v_{schema}"),
                Form::Having { .. } => {
                    having += 1;
                    format!("h{having}_{schema}")
                }
            };
            names.insert((schema.to_string(), form.clone()), name);
        }
    }
    let mut out = Vec::new();
    for schema in &order {
        for form in forms.get(schema.as_str()).into_iter().flatten() {
            let sql = view_of(model, d, features, schema, form, &names);
            out.push((names[&(schema.clone(), form.clone())].clone(), sql));
        }
    }
    out
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

/// The view of `schema` without features: the table and its link keys.
pub fn links_view(model: &Model, d: &dyn Dialect, schema: &str) -> String {
    view_of(
        model,
        d,
        &Features::default(),
        schema,
        &Form::Links,
        &Names::new(),
    )
}

/// One view in one form: `Links` has no passes; `Having` joins its
/// collection's pass (only the rows with a row in it) and left-joins the
/// other passes it has.
fn view_of(
    model: &Model,
    d: &dyn Dialect,
    features: &Features,
    schema: &str,
    form: &Form,
    names: &Names,
) -> String {
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
    for ((parent, name), coll) in &features.collections {
        if parent != schema || !form.has(name) {
            continue;
        }
        let join = match form {
            Form::Having { having, .. } if having == name => "JOIN",
            _ => "LEFT JOIN",
        };
        for (child_form, pass) in passes(features, coll) {
            g += 1;
            let alias = format!("g{g}");
            let sub = pass_query(model, d, schema, coll, &child_form, &pass, names);
            joins.push(format!("{join} ({sub}) {alias} ON {alias}.__key = {key}"));
            for f in pass {
                let c = format!("{alias}.{}", q(&f.column));
                cols.push(match f.default {
                    Some(default) => format!("COALESCE({c}, {default}) AS {}", q(&f.column)),
                    None => format!("{c} AS {}", q(&f.column)),
                });
            }
        }
    }
    let mut sql = format!("SELECT {}\n  FROM {} b", cols.join(",\n    "), q(schema));
    for j in joins {
        sql.push_str("\n  ");
        sql.push_str(&j);
    }
    sql
}

/// One pass over a collection of `schema`: its features in `pass`, over
/// the rows of the child view in `form` that can change one, grouped by
/// the parent key.
fn pass_query(
    model: &Model,
    d: &dyn Dialect,
    schema: &str,
    coll: &Collection,
    form: &Form,
    pass: &[&Feature],
    names: &Names,
) -> String {
    let q = |s: &str| d.ident(s);
    let plan = model.plan;
    let aggs: Vec<String> = pass
        .iter()
        .map(|f| format!("{} AS {}", f.aggregate, q(&f.column)))
        .collect();
    // Only the rows that can change some feature are grouped: a recent
    // event filter or a campaign match keeps a fraction of an event
    // table, and a parent left without rows gets each feature's default.
    let rows: Option<Vec<String>> = pass
        .iter()
        .map(|f| f.rows.as_ref().map(|r| format!("({r})")))
        .collect();
    let filter = match rows {
        Some(rows) => format!(" WHERE {}", rows.join(" OR ")),
        None => String::new(),
    };
    match &coll.source {
        Source::Link { child, link } => {
            // `views` named every form a pass reads before rendering any.
            let from = &names[&(child.clone(), form.clone())];
            match crate::plan::relation_path(plan, child, link) {
                // Many-to-many: each child row once per related parent, so
                // a pair listed twice in the relation counts once.
                Some(rel) => {
                    let (cfk, pfk) = (q(&rel.child_fk), q(&rel.parent_fk));
                    format!(
                        "SELECT r.{pfk} AS __key, {} FROM {from} c JOIN (SELECT DISTINCT {cfk}, {pfk} FROM {} WHERE {cfk} IS NOT NULL AND {pfk} IS NOT NULL) r ON r.{cfk} = c.{}{filter} GROUP BY r.{pfk}",
                        aggs.join(", "),
                        q(&rel.table),
                        q(&model.key(child))
                    )
                }
                None => {
                    let lc = format!("c.{}", q(&link_column(link)));
                    format!(
                        "SELECT {lc} AS __key, {} FROM {from} c{filter} GROUP BY {lc}",
                        aggs.join(", ")
                    )
                }
            }
        }
        Source::List { field } => format!(
            "SELECT c.__key, {} FROM {} c{filter} GROUP BY c.__key",
            aggs.join(", "),
            d.unnest(&q(schema), &q(&model.key(schema)), &q(field))
        ),
    }
}
