//! Marketo lead fields written by two activations with different mappings.
//!
//! Input: the model with its activations resolved. Output: a warning at the
//! second mapping of a lead field of one Marketo instance (the same
//! destination, or two destinations with the same `munchkin_id`) when the
//! first maps it differently. Marketo keeps one value per lead field, so the
//! later delivery silently overwrites the earlier one and the field flips
//! between the two meanings from run to run. Identity columns are the
//! lookup key, not a written field, and are left out. Pure.

use std::collections::BTreeMap;

use super::Model;
use crate::diag::{Diagnostic, codes};
use crate::source::Span;
use crate::syntax::{Destination, SettingValue, Sp};

/// The first mapping seen of one field of one instance.
struct FirstMapping<'m> {
    activation: &'m str,
    expr: &'m Sp<String>,
}

pub fn check(model: &Model, diags: &mut Vec<Diagnostic>) {
    let mut first: BTreeMap<(String, &str), FirstMapping<'_>> = BTreeMap::new();
    for activation in &model.syntax.activations {
        let Some(resolved) = model.activation_info.get(&activation.name.value) else {
            continue;
        };
        let Some(ty) = resolved
            .destination_type
            .filter(|t| t.name == "marketo_engage")
        else {
            continue;
        };
        let destination = &model.syntax.destinations[resolved.destination_index];
        let instance = instance_of(destination);
        for (column, expr) in &activation.map {
            if ty.identity(&column.value).is_some() {
                continue;
            }
            let key = (instance.clone(), column.value.as_str());
            match first.get(&key) {
                None => {
                    first.insert(
                        key,
                        FirstMapping {
                            activation: &activation.name.value,
                            expr,
                        },
                    );
                }
                Some(earlier) if same_expr(&earlier.expr.value, &expr.value) => {}
                Some(earlier) => diags.push(overwrite(
                    &column.value,
                    &activation.name.value,
                    expr.span,
                    earlier,
                )),
            }
        }
    }
}

/// One Marketo instance: its munchkin id (literal, or the reference that
/// holds it), else the destination itself.
fn instance_of(destination: &Destination) -> String {
    let munchkin = destination
        .settings
        .iter()
        .find(|s| s.key.value == "munchkin_id")
        .map(|s| &s.value.value);
    match munchkin {
        Some(SettingValue::String(id)) => format!("munchkin:{}", id.trim().to_ascii_lowercase()),
        Some(SettingValue::Reference { kind, name }) => format!("{kind}:{name}"),
        _ => format!("destination:{}", destination.name.value),
    }
}

/// Mappings that differ only in spacing are the same mapping.
fn same_expr(a: &str, b: &str) -> bool {
    a.split_whitespace().eq(b.split_whitespace())
}

fn overwrite(column: &str, activation: &str, span: Span, earlier: &FirstMapping<'_>) -> Diagnostic {
    Diagnostic::new(
        codes::plan::FIELD_OVERWRITTEN,
        span,
        format!(
            "activation `{activation}` writes Marketo field `{column}` that activation `{}` also writes, mapped differently",
            earlier.activation
        ),
    )
    .label("this delivery overwrites the other's value")
    .with_secondary(earlier.expr.span, format!("`{column}` as `{}` maps it", earlier.activation))
    .help(format!(
        "map `{column}` the same way in both activations, or write each meaning to its own field"
    ))
}
