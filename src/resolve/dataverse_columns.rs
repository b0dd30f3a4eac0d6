//! The Contact columns a Dynamics 365 destination writes, against
//! Dataverse's naming rules and the activations that send to it.
//!
//! Input: the model with its activations resolved. Output: errors where a
//! run would write a column Dataverse cannot have or address a Contact by
//! a key the members do not carry:
//! - A0128 at an `audience_fields` value or `alternate_key` that is no
//!   logical name, at an activated audience whose default column (its name
//!   in lower case, other characters as `_`) is none, and where two
//!   audiences of one destination share a column (clearing one would clear
//!   the other);
//! - A0129 at an activation to a destination with an `alternate_key` whose
//!   `map` does not map that column: its members could not be addressed.
//!
//! Pure.

use std::collections::BTreeMap;

use super::Model;
use crate::catalog::dataverse::{default_column, is_logical_name};
use crate::diag::{Diagnostic, codes};
use crate::source::Span;
use crate::syntax::{Destination, SettingValue, Sp};

const TYPE: &str = "dynamics365";

pub fn check(model: &Model, diags: &mut Vec<Diagnostic>) {
    for destination in &model.syntax.destinations {
        let is_dynamics = destination.ty.as_ref().is_some_and(|t| t.value == TYPE);
        if !is_dynamics {
            continue;
        }
        let fields = audience_fields(destination);
        for (_, column) in &fields {
            if !is_logical_name(&column.value) {
                diags.push(not_a_logical_name(
                    destination,
                    column,
                    "this column",
                    "write the column's logical name: lower case, a letter first, then letters, digits and `_` (like `nw_b2b_intent`)",
                ));
            }
        }
        let key = alternate_key(destination);
        if let Some(key) = &key
            && !is_logical_name(&key.value)
        {
            diags.push(not_a_logical_name(
                destination,
                key,
                "this alternate key column",
                "name the column of a Contact alternate key by its logical name (like `emailaddress1`)",
            ));
        }
        activations(model, destination, &fields, key.as_ref(), diags);
    }
}

/// `audience_fields` as written: audience -> column, with spans.
fn audience_fields(destination: &Destination) -> Vec<(Sp<String>, Sp<String>)> {
    destination
        .settings
        .iter()
        .filter(|s| s.key.value == "audience_fields")
        .flat_map(|s| match &s.value.value {
            SettingValue::Table(pairs) => pairs.clone(),
            _ => Vec::new(),
        })
        .collect()
}

fn alternate_key(destination: &Destination) -> Option<Sp<String>> {
    destination
        .settings
        .iter()
        .find(|s| s.key.value == "alternate_key")
        .and_then(|s| match &s.value.value {
            SettingValue::String(column) => Some(Sp::new(column.clone(), s.value.span)),
            _ => None,
        })
}

/// Every activation to `destination`: default columns, shared columns and
/// the alternate key's mapping.
fn activations(
    model: &Model,
    destination: &Destination,
    fields: &[(Sp<String>, Sp<String>)],
    key: Option<&Sp<String>>,
    diags: &mut Vec<Diagnostic>,
) {
    let given: BTreeMap<&str, &Sp<String>> = fields
        .iter()
        .map(|(audience, column)| (audience.value.as_str(), column))
        .collect();
    // column -> the first audience written to it, and where.
    let mut owners: BTreeMap<String, (String, Span)> = BTreeMap::new();
    for activation in &model.syntax.activations {
        let to_here = activation
            .destination
            .as_ref()
            .is_some_and(|d| d.value == destination.name.value);
        if !to_here {
            continue;
        }
        for audience in &activation.audiences {
            let (column, span) = match given.get(audience.value.as_str()) {
                Some(column) => (column.value.clone(), column.span),
                None => {
                    let column = default_column(&audience.value);
                    if !is_logical_name(&column) {
                        diags.push(no_default_column(
                            &activation.name.value,
                            destination,
                            audience,
                            &column,
                        ));
                        continue;
                    }
                    (column, audience.span)
                }
            };
            match owners.get(&column) {
                Some((owner, _)) if *owner == audience.value => {}
                Some((owner, first)) => diags.push(shared_column(
                    &activation.name.value,
                    destination,
                    &column,
                    (owner, *first),
                    (&audience.value, span),
                )),
                None => {
                    owners.insert(column, (audience.value.clone(), span));
                }
            }
        }
        if let Some(key) = key {
            let mapped = activation
                .map
                .iter()
                .any(|(column, _)| column.value == key.value);
            if !mapped {
                diags.push(
                    Diagnostic::new(
                        codes::spec::ALTERNATE_KEY_NOT_MAPPED,
                        activation.name.span,
                        format!(
                            "activation `{}` does not map `{}`, the alternate key destination `{}` finds Contacts by",
                            activation.name.value, key.value, destination.name.value
                        ),
                    )
                    .label("its members could not be addressed")
                    .with_secondary(key.span, "Contacts are upserted by this column")
                    .help(format!(
                        "add `{} = \"...\"` to the activation's `map`, or remove `alternate_key` to upsert by `contactId`",
                        key.value
                    )),
                );
            }
        }
    }
}

fn not_a_logical_name(
    destination: &Destination,
    column: &Sp<String>,
    what: &str,
    help: &str,
) -> Diagnostic {
    Diagnostic::new(
        codes::spec::INVALID_DATAVERSE_COLUMN,
        column.span,
        format!(
            "destination `{}`: {:?} is not a Dataverse logical name",
            destination.name.value, column.value
        ),
    )
    .label(format!("{what} cannot exist on Contact"))
    .help(help.to_string())
}

fn no_default_column(
    activation: &str,
    destination: &Destination,
    audience: &Sp<String>,
    column: &str,
) -> Diagnostic {
    Diagnostic::new(
        codes::spec::INVALID_DATAVERSE_COLUMN,
        audience.span,
        format!(
            "activation `{activation}`: audience `{}` has no Dataverse column at destination `{}`: its default name {column:?} is not a logical name",
            audience.value, destination.name.value
        ),
    )
    .label("the column holding this audience's status")
    .help(format!(
        "name its column in the destination: `audience_fields = {{ \"{}\" = \"nw_...\" }}`",
        audience.value
    ))
}

fn shared_column(
    activation: &str,
    destination: &Destination,
    column: &str,
    first: (&str, Span),
    second: (&str, Span),
) -> Diagnostic {
    Diagnostic::new(
        codes::spec::INVALID_DATAVERSE_COLUMN,
        second.1,
        format!(
            "activation `{activation}`: audiences `{}` and `{}` both write column `{column}` at destination `{}`",
            first.0, second.0, destination.name.value
        ),
    )
    .label("this audience's status goes to the same column")
    .with_secondary(first.1, format!("`{}` writes `{column}`", first.0))
    .help("give each audience its own column in `audience_fields`: a member leaving one would clear the other")
}
