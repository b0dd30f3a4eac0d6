//! A destination's `lists` against the activations that send to it: each
//! pinned audience should be one an activation delivers there.
//!
//! Input: the model with its activations resolved. Output: a warning at each
//! `lists` key that no activation of the destination delivers (a typo, or
//! an audience moved to another destination): the pin is then unused, and
//! the audience it was meant for gets a new list instead. Pure.

use super::Model;
use crate::diag::{Diagnostic, codes};
use crate::syntax::Destination;

pub fn check(model: &Model, diags: &mut Vec<Diagnostic>) {
    for destination in &model.syntax.destinations {
        let Some(lists) = &destination.delivery.lists else {
            continue;
        };
        // On a file type `lists` is already reported as an unknown key.
        let api_type = destination
            .ty
            .as_ref()
            .and_then(|t| crate::catalog::lookup(&t.value))
            .is_none_or(|t| t.is_api());
        if !api_type {
            continue;
        }
        let activated = activated_to(model, destination);
        for (audience, _) in &lists.value.value {
            if activated.contains(&audience.value.as_str()) {
                continue;
            }
            diags.push(
                Diagnostic::new(
                    codes::spec::UNUSED_LIST_PIN,
                    audience.span,
                    format!(
                        "destination `{}` pins a list for `{}`, which no activation sends there",
                        destination.name.value, audience.value
                    ),
                )
                .label("this pin is never used")
                .suggest(
                    &audience.value,
                    activated.iter().copied(),
                    otherwise(&activated),
                ),
            );
        }
    }
}

/// The audience references (`NAME` or `NAME.part`) activated to `destination`.
fn activated_to<'m>(model: &'m Model, destination: &Destination) -> Vec<&'m str> {
    let mut audiences: Vec<&str> = model
        .syntax
        .activations
        .iter()
        .filter(|a| {
            a.destination
                .as_ref()
                .is_some_and(|d| d.value == destination.name.value)
        })
        .flat_map(|a| a.audiences.iter().map(|s| s.value.as_str()))
        .collect();
    audiences.sort_unstable();
    audiences.dedup();
    audiences
}

fn otherwise(activated: &[&str]) -> String {
    if activated.is_empty() {
        return "no activation sends to this destination; remove the pin or add the activation"
            .to_string();
    }
    let names: Vec<String> = activated.iter().map(|a| format!("`{a}`")).collect();
    format!("audiences activated here: {}", names.join(", "))
}
