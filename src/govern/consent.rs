//! Consent: a consent policy whose action a dataflow performs filters the
//! people that dataflow exports. The filter is recorded on the activation's
//! verdict (plan and run apply it); when the activation exports people but the
//! filter cannot be applied, that is an error, because accord never exports
//! people it cannot filter. Account rows carry no people, so consent does not
//! apply to them.

use std::collections::BTreeMap;

use crate::catalog::{self, Rows};
use crate::diag::{Diagnostic, codes};
use crate::resolve::{ExprSite, Model, audiences::base_name};
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
    actions: &BTreeMap<String, ActionSource>,
    diags: &mut Vec<Diagnostic>,
) -> Vec<AppliedConsent> {
    let rows = activation
        .destination
        .as_ref()
        .and_then(|d| model.destinations.get(&d.value))
        .and_then(|i| model.syntax.destinations[i].ty.as_ref())
        .and_then(|t| catalog::lookup(&t.value))
        .map(|t| t.rows);
    let person_audience = activation.audiences.iter().any(|a| {
        model
            .audiences
            .get(base_name(&a.value))
            .and_then(|i| model.syntax.audiences[i].entity.as_ref())
            .is_some_and(|e| e.as_str() == "person")
    });
    let produces_people = activation.people.is_some() || person_audience;
    let person_level = rows == Some(Rows::Person);
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
