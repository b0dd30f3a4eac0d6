//! A Salesforce destination's membership settings against the activations
//! that send to it: each audience's custom field (`audience_fields`, or the
//! name derived from the audience) is a valid custom field name; every
//! activation maps the `external_id` upserts match on; `bulk_threshold` is
//! at least 1. A run would otherwise fail (or reject every member) at the
//! vendor; here it is reported at the spec. Pure.

use super::Model;
use crate::catalog::salesforce::{custom_field_problem, default_audience_field};
use crate::diag::{Diagnostic, codes};
use crate::syntax::{Destination, SettingValue};

pub fn check(model: &Model, diags: &mut Vec<Diagnostic>) {
    for destination in &model.syntax.destinations {
        if destination
            .ty
            .as_ref()
            .is_none_or(|t| t.value != "salesforce")
        {
            continue;
        }
        bulk_threshold(destination, diags);
        audience_fields(model, destination, diags);
        external_id(model, destination, diags);
    }
}

fn setting<'d>(destination: &'d Destination, key: &str) -> Option<&'d crate::syntax::Setting> {
    destination.settings.iter().find(|s| s.key.value == key)
}

fn bulk_threshold(destination: &Destination, diags: &mut Vec<Diagnostic>) {
    let Some(setting) = setting(destination, "bulk_threshold") else {
        return;
    };
    if let SettingValue::Integer(n) = setting.value.value
        && n < 1
    {
        diags.push(
            Diagnostic::new(
                codes::spec::INVALID_BULK_THRESHOLD,
                setting.value.span,
                format!(
                    "destination `{}`: `bulk_threshold` is {n}",
                    destination.name.value
                ),
            )
            .label("at least 1")
            .help("it is the number of members of one audience change above which a run uses a Bulk API 2.0 job; Salesforce advises 2000, the default"),
        );
    }
}

fn audience_fields(model: &Model, destination: &Destination, diags: &mut Vec<Diagnostic>) {
    let given = match setting(destination, "audience_fields").map(|s| &s.value.value) {
        Some(SettingValue::Table(pairs)) => pairs.as_slice(),
        _ => &[],
    };
    for (audience, field) in given {
        if let Some(problem) = custom_field_problem(&field.value) {
            diags.push(
                Diagnostic::new(
                    codes::spec::INVALID_AUDIENCE_FIELD,
                    field.span,
                    format!(
                        "destination `{}`: the field of audience `{}` is not a custom field name: {problem}",
                        destination.name.value, audience.value
                    ),
                )
                .label("not a Salesforce custom field API name")
                .help("a custom field's API name is a letter, then letters, digits and single `_`, at most 40 characters, then `__c` (such as `Intent_Surging__c`)"),
            );
        }
    }
    for activation in activations_to(model, destination) {
        for audience in &activation.audiences {
            if given.iter().any(|(a, _)| a.value == audience.value) {
                continue;
            }
            let field = default_audience_field(&audience.value);
            if let Some(problem) = custom_field_problem(&field) {
                diags.push(
                    Diagnostic::new(
                        codes::spec::INVALID_AUDIENCE_FIELD,
                        audience.span,
                        format!(
                            "activation `{}`: audience `{}` has no valid default field at Salesforce destination `{}`: {problem}",
                            activation.name.value, audience.value, destination.name.value
                        ),
                    )
                    .label("its field name is derived from the audience name")
                    .help(format!(
                        "name its field in the destination: `audience_fields = {{ \"{}\" = \"Short_Name__c\" }}`",
                        audience.value
                    )),
                );
            }
        }
    }
}

fn external_id(model: &Model, destination: &Destination, diags: &mut Vec<Diagnostic>) {
    let Some(setting) = setting(destination, "external_id") else {
        return;
    };
    let SettingValue::String(field) = &setting.value.value else {
        return;
    };
    if field == "Id" {
        return;
    }
    for activation in activations_to(model, destination) {
        if activation
            .map
            .iter()
            .any(|(column, _)| column.value == *field)
        {
            continue;
        }
        diags.push(
            Diagnostic::new(
                codes::spec::UNMAPPED_EXTERNAL_ID,
                activation.name.span,
                format!(
                    "activation `{}` does not map `{field}`, which destination `{}` matches records on",
                    activation.name.value, destination.name.value
                ),
            )
            .label(format!("no `{field}` in its map"))
            .with_secondary(setting.value.span, "upserts match on this field")
            .help(format!(
                "add `{field} = \"...\"` to `[activation.{}.map]`, or match on the record Id (`external_id = \"Id\"`, mapping `salesforceId`)",
                activation.name.value
            )),
        );
    }
}

fn activations_to<'m>(
    model: &'m Model,
    destination: &'m Destination,
) -> impl Iterator<Item = &'m crate::syntax::Activation> {
    model.syntax.activations.iter().filter(|a| {
        a.destination
            .as_ref()
            .is_some_and(|d| d.value == destination.name.value)
    })
}
