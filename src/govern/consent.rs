//! Consent: a consent policy whose action a dataflow performs filters the
//! people that dataflow exports. The filter is recorded on the activation's
//! verdict (plan and run apply it); when the activation exports people but the
//! filter cannot be applied, that is an error, because accord never exports
//! people it cannot filter. Account rows carry no people, so consent does not
//! apply to them.

use std::collections::BTreeMap;

use crate::catalog::Rows;
use crate::diag::{Diagnostic, codes};
use crate::resolve::{Entity, ExprSite, Model, ResolvedActivation};
use crate::syntax::Activation;

use super::actions::ActionSource;

/// A consent filter applied to an activation's people.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct AppliedConsent {
    pub consent: String,
    /// The actions of the dataflow that trigger it.
    pub actions: Vec<String>,
    pub require: String,
}

pub fn check(
    model: &Model,
    activation: &Activation,
    resolved: &ResolvedActivation,
    actions: &BTreeMap<String, ActionSource>,
    diags: &mut Vec<Diagnostic>,
) -> Vec<AppliedConsent> {
    let produces_people = resolved.rows == Entity::Person;
    let person_level = resolved.destination_type.map(|t| t.rows) == Some(Rows::Person);
    if !produces_people && !person_level {
        return Vec::new();
    }
    let mut out = Vec::new();
    for (name, index) in model.consents.iter() {
        let c = &model.syntax.consents[index];
        let triggered: Vec<String> = c
            .actions
            .iter()
            .filter(|a| actions.contains_key(&a.value))
            .map(|a| a.value.clone())
            .collect();
        if triggered.is_empty() {
            continue;
        }
        let checked = model
            .exprs
            .contains_key(&ExprSite::Consent(name.to_string()));
        if !checked || !produces_people {
            let why = if !checked {
                "its condition could not be checked against the person schema"
            } else {
                "the destination takes person rows but the activation produces none"
            };
            diags.push(
                Diagnostic::new(
                    codes::governance::CONSENT_UNSATISFIABLE,
                    activation.name.span,
                    format!(
                        "activation `{}` must apply consent policy `{name}` but cannot: {why}",
                        activation.name.value
                    ),
                )
                .label(format!("performs {}", triggered.join(", ")))
                .with_secondary(c.name.span, "the consent policy")
                .help("add `people = '...'` to expand the account audience to its people, or activate a person audience"),
            );
            continue;
        }
        out.push(AppliedConsent {
            consent: name.to_string(),
            actions: triggered,
            require: c
                .require
                .as_ref()
                .map(|r| r.value.clone())
                .unwrap_or_default(),
        });
    }
    out
}
