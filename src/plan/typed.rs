//! The typed trees of a plan's expressions: what `check` built when it
//! checked them, carried to `render` (and the interpreter) so nothing parses
//! or types CEL a second time.
//!
//! Not part of the plan file: the trees follow from the plan's expression
//! texts and the schemas, so a plan's JSON, its fingerprints and its
//! equality ignore them. A plan read from a file has none; rendering it is
//! refused with a reason rather than re-typing its text.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::cel::typed::Typed;
use crate::cel::{CelEnv, Scope};
use crate::resolve::{ExprSite, Model, expressions};

/// The trees of a built plan, shared by its clones.
#[derive(Clone, Default)]
pub struct TypedExprs(Option<Arc<Trees>>);

/// A tree, or why the tree does not model the expression.
pub type Tree = Result<Arc<Typed>, String>;

struct Trees {
    /// Expression text and tree, by where the expression sits.
    by_site: BTreeMap<ExprSite, (String, Tree)>,
    /// The same trees by text, for callers that hold only the text.
    by_text: HashMap<String, Tree>,
    /// What an expression outside the checked model (a plan edited after it
    /// was built) is checked against.
    env: Arc<CelEnv>,
    roots: expressions::Roots,
}

/// The reason given where a plan carries no trees.
const NO_TREES: &str = "the plan carries no typed expressions (it was read from a file): \
                        render a plan compiled from the specs";

impl TypedExprs {
    /// The trees of every checked expression of `model`.
    pub fn of(model: &Model) -> TypedExprs {
        let mut by_text = HashMap::new();
        let by_site = model
            .exprs
            .iter()
            .map(|(site, expr)| {
                let tree = expr.checked.typed.clone();
                by_text
                    .entry(expr.text.clone())
                    .or_insert_with(|| tree.clone());
                (site.clone(), (expr.text.clone(), tree))
            })
            .collect();
        TypedExprs(Some(Arc::new(Trees {
            by_site,
            by_text,
            env: model.cel_env.clone(),
            roots: model.roots.clone(),
        })))
    }

    /// The tree of the expression `text` at `site`; `person` says whether
    /// the person is in scope, for an expression the checked model did not
    /// hold at that site.
    pub fn at(&self, site: &ExprSite, text: &str, person: bool) -> Tree {
        let trees = self.0.as_ref().ok_or(NO_TREES)?;
        match trees.by_site.get(site) {
            Some((checked, tree)) if checked == text => tree.clone(),
            _ => self.of_text(text, person),
        }
    }

    /// The tree of the expression `text`, wherever it sits.
    pub fn of_text(&self, text: &str, person: bool) -> Tree {
        let trees = self.0.as_ref().ok_or(NO_TREES)?;
        if let Some(tree) = trees.by_text.get(text) {
            return tree.clone();
        }
        // An expression the specs do not hold (a plan edited after it was
        // built, as tests do): checked now, against the same schemas.
        let scope: Scope = expressions::scope(&trees.roots, true, person);
        crate::cel::check::checked_tree(text, &trees.env, &scope)
    }
}

impl PartialEq for TypedExprs {
    /// Always equal: the trees follow from what the comparison covers.
    fn eq(&self, _: &TypedExprs) -> bool {
        true
    }
}

impl std::fmt::Debug for TypedExprs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Some(trees) => write!(f, "TypedExprs({} expressions)", trees.by_site.len()),
            None => f.write_str("TypedExprs(none)"),
        }
    }
}
