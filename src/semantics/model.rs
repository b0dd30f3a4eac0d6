//! The plan as the interpreter and the SQL lowering both read it: which
//! schema is the account and which the person, each schema's key, each
//! expression's typed tree, the order computed attributes and audiences
//! are evaluated in, and the column a membership is named by. One copy,
//! so the interpreter and the rendered SQL cannot read the plan two ways.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use crate::cel::typed::Typed;
use crate::plan::{Entity, Plan, SchemaClass};
use crate::resolve::ExprSite;

/// The plan's schema roles and its typed expressions.
pub struct Model<'a> {
    pub plan: &'a Plan,
    pub account: String,
    pub person: Option<String>,
}

impl<'a> Model<'a> {
    pub fn new(plan: &'a Plan) -> Model<'a> {
        let by_class = |class: SchemaClass| {
            plan.schemas
                .iter()
                .find(|(_, s)| s.class == class)
                .map(|(n, _)| n.clone())
        };
        Model {
            plan,
            account: by_class(SchemaClass::Account).unwrap_or_else(|| "account".into()),
            person: by_class(SchemaClass::Person),
        }
    }

    pub fn key(&self, schema: &str) -> String {
        self.plan
            .schemas
            .get(schema)
            .and_then(|s| s.key.clone())
            .unwrap_or_else(|| "id".into())
    }

    /// The typed tree of the expression `expr` at `site`, as the check
    /// built it; `person` says whether the person is in scope.
    pub fn tree(&self, site: &ExprSite, expr: &str, person: bool) -> Result<Arc<Typed>, String> {
        self.plan.typed.at(site, expr, person)
    }

    /// The typed tree of an expression of the plan given by its text only
    /// (callers that walk the plan by text): in the account or person scope.
    pub fn typed(&self, expr: &str, person: bool) -> Result<Arc<Typed>, String> {
        self.plan.typed.of_text(expr, person)
    }
}

/// The column of an audience (or split part) in membership tables, and
/// the interpreter's key for its members: part names join with `__`
/// because some engines forbid dots in column names.
pub fn audience_column(name: &str) -> String {
    name.replace('.', "__")
}

/// The audiences of `entity` and their split parts (`NAME.part`), in name
/// order: the references a membership table has a column for.
pub fn audience_references(plan: &Plan, entity: Entity) -> Vec<String> {
    plan.audiences
        .iter()
        .filter(|(_, audience)| audience.entity == entity)
        .flat_map(|(name, audience)| {
            std::iter::once(name.clone())
                .chain(audience.parts.iter().map(move |p| format!("{name}.{p}")))
        })
        .collect()
}

/// Computed attributes, each after the computed attributes it reads.
pub fn computed_order(plan: &Plan) -> Vec<String> {
    dependency_order(&plan.computed, |c| &c.reads)
}

/// Audiences, each after those it depends on; ties by name.
pub fn audience_order(plan: &Plan) -> Vec<String> {
    dependency_order(&plan.audiences, |a| &a.depends_on)
}

/// The names of `nodes`, each after the names it depends on, ties in name
/// order. A dependency outside `nodes` (a source field) or on itself is
/// no constraint; a cycle is a resolve error, so it never reaches a plan,
/// but here its members still come out, in name order, rather than being
/// lost.
fn dependency_order<T>(
    nodes: &BTreeMap<String, T>,
    depends_on: impl Fn(&T) -> &Vec<String>,
) -> Vec<String> {
    let mut done: Vec<String> = Vec::with_capacity(nodes.len());
    let mut placed: HashSet<&str> = HashSet::with_capacity(nodes.len());
    let mut pending: Vec<(&String, &T)> = nodes.iter().collect();
    while !pending.is_empty() {
        let before = pending.len();
        pending.retain(|(name, node)| {
            let ready = depends_on(node)
                .iter()
                .all(|d| d == *name || placed.contains(d.as_str()) || !nodes.contains_key(d));
            if ready {
                placed.insert(name.as_str());
                done.push((*name).clone());
            }
            !ready
        });
        if pending.len() == before {
            done.extend(pending.drain(..).map(|(name, _)| name.clone()));
        }
    }
    done
}
