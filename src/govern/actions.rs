//! The marketing actions of a dataflow: what its destination's catalog type
//! implies plus what the destination adds with `actions = [...]`. A
//! destination cannot remove an implied action, so there is no subtraction.

use std::collections::BTreeMap;

use crate::catalog;
use crate::closed_set::closed_set;
use crate::syntax::Destination;

closed_set! {
    /// Why a dataflow performs an action.
    pub enum ActionSource {
        /// Implied by the catalog type (and not removable).
        Fixed = "fixed",
        /// Implied by the catalog type.
        Implied = "implied",
        /// Listed in the destination's `actions`.
        Destination = "destination",
    }
}

pub fn of(destination: &Destination) -> BTreeMap<String, ActionSource> {
    let mut out = BTreeMap::new();
    if let Some(ty) = destination
        .ty
        .as_ref()
        .and_then(|t| catalog::lookup(&t.value))
    {
        for action in ty.implied_actions {
            let source = if ty.fixed_actions.contains(action) {
                ActionSource::Fixed
            } else {
                ActionSource::Implied
            };
            out.insert(action.to_string(), source);
        }
    }
    for action in &destination.actions {
        out.entry(action.value.clone())
            .or_insert(ActionSource::Destination);
    }
    out
}
