//! Binding the references between definitions: actions in policies, consent
//! policies and destinations; audiences in compositions and activations;
//! destinations of activations; policies and activations of waivers; schemas
//! of sources and computed attributes; and literal credentials.

use std::collections::BTreeMap;

use super::Model;
use super::names::{NameIndex, expect, unknown};
use crate::builtins::{CORE_ACTIONS, CORE_LABELS};
use crate::diag::{Diagnostic, codes};
use crate::syntax::{Declared, Sp, Syntax};

/// Core labels plus the project's, with duplicates of either reported.
pub fn labels(syntax: &Syntax, diags: &mut Vec<Diagnostic>) -> BTreeMap<String, String> {
    vocabulary("label", CORE_LABELS, &syntax.labels, diags)
}

pub fn actions(syntax: &Syntax, diags: &mut Vec<Diagnostic>) -> BTreeMap<String, String> {
    vocabulary(
        "marketing action",
        CORE_ACTIONS,
        &syntax.marketing_actions,
        diags,
    )
}

fn vocabulary(
    kind: &str,
    core: &[(&str, &str)],
    custom: &[Declared],
    diags: &mut Vec<Diagnostic>,
) -> BTreeMap<String, String> {
    let mut all: BTreeMap<String, String> = core
        .iter()
        .map(|(n, d)| (n.to_string(), d.to_string()))
        .collect();
    let _ = NameIndex::build(kind, custom.iter().map(|d| &d.name), diags);
    for declared in custom {
        if all.contains_key(&declared.name.value)
            && core.iter().any(|(n, _)| *n == declared.name.value)
        {
            diags.push(
                Diagnostic::new(
                    codes::spec::DUPLICATE_NAME,
                    declared.name.span,
                    format!("{kind} `{}` is built in", declared.name.value),
                )
                .label("a core name cannot be redefined")
                .help(format!(
                    "remove this definition, or give the custom {kind} another name"
                )),
            );
            continue;
        }
        all.entry(declared.name.value.clone()).or_insert_with(|| {
            declared
                .description
                .as_ref()
                .map(|d| d.value.clone())
                .unwrap_or_default()
        });
    }
    all
}

pub fn check(model: &Model, diags: &mut Vec<Diagnostic>) {
    let syntax = &model.syntax;
    let action_names = || model.actions.keys().map(String::as_str);
    let check_action = |from: &str, action: &Sp<String>, diags: &mut Vec<Diagnostic>| {
        if !model.actions.contains_key(&action.value) {
            diags.push(
                unknown(
                    codes::spec::UNKNOWN_ACTION,
                    from,
                    action,
                    "marketing action",
                    action_names(),
                )
                .label("not a core or declared marketing action"),
            );
        }
    };
    for policy in &syntax.policies {
        let from = format!("policy `{}`", policy.name.value);
        policy
            .actions
            .iter()
            .for_each(|a| check_action(&from, a, diags));
    }
    for consent in &syntax.consents {
        let from = format!("consent policy `{}`", consent.name.value);
        consent
            .actions
            .iter()
            .for_each(|a| check_action(&from, a, diags));
    }
    for destination in &syntax.destinations {
        let from = format!("destination `{}`", destination.name.value);
        destination
            .actions
            .iter()
            .for_each(|a| check_action(&from, a, diags));
        super::destinations::check(destination, diags);
    }
    for waiver in &syntax.waivers {
        let from = format!("waiver `{}`", waiver.name.value);
        if let Some(policy) = &waiver.policy
            && !model.policies.contains(&policy.value)
            && !crate::builtins::CORE_POLICIES
                .iter()
                .any(|p| p.name == policy.value)
        {
            let candidates = model
                .policies
                .names()
                .chain(crate::builtins::CORE_POLICIES.iter().map(|p| p.name));
            diags.push(unknown(
                codes::spec::UNKNOWN_POLICY,
                &from,
                policy,
                "policy",
                candidates,
            ));
        }
        if let Some(activation) = &waiver.activation {
            expect(
                &model.activations,
                &from,
                activation,
                "activation",
                codes::spec::UNKNOWN_ACTIVATION,
                diags,
            );
        }
    }
    for source in &syntax.sources {
        if let Some(schema) = &source.schema {
            expect(
                &model.schemas,
                &format!("source `{}`", source.name.value),
                schema,
                "schema",
                codes::spec::UNKNOWN_SCHEMA,
                diags,
            );
        }
    }
    for activation in &syntax.activations {
        let from = format!("activation `{}`", activation.name.value);
        if let Some(destination) = &activation.destination {
            expect(
                &model.destinations,
                &from,
                destination,
                "destination",
                codes::spec::UNKNOWN_DESTINATION,
                diags,
            );
        }
        for audience in activation.audiences.iter().chain(&activation.exclude) {
            check_audience(model, &from, audience, diags);
        }
    }
    for audience in &syntax.audiences {
        if let Some(compose) = &audience.compose {
            let from = format!("audience `{}`", audience.name.value);
            for reference in compose.from.iter().chain(&compose.exclude) {
                check_audience(model, &from, reference, diags);
            }
        }
    }
}

/// Audiences are referenced by name, or by `NAME.part` for a split part.
pub fn check_audience(
    model: &Model,
    from: &str,
    reference: &Sp<String>,
    diags: &mut Vec<Diagnostic>,
) {
    if audience_exists(model, &reference.value) {
        return;
    }
    let parts = split_part_names(model);
    let candidates = model
        .audiences
        .names()
        .map(str::to_string)
        .chain(parts)
        .collect::<Vec<_>>();
    diags.push(unknown(
        codes::spec::UNKNOWN_AUDIENCE,
        from,
        reference,
        "audience",
        candidates.iter().map(String::as_str),
    ));
}

pub fn audience_exists(model: &Model, name: &str) -> bool {
    if model.audiences.contains(name) {
        return true;
    }
    let Some((base, part)) = name.rsplit_once('.') else {
        return false;
    };
    model
        .audiences
        .get(base)
        .and_then(|i| model.syntax.audiences[i].compose.as_ref())
        .and_then(|c| c.split.as_ref())
        .is_some_and(|s| s.part_names().iter().any(|p| p.value == part))
}

/// Every addressable split part, `AUDIENCE.part`.
pub fn split_part_names(model: &Model) -> Vec<String> {
    let mut out = Vec::new();
    for (name, i) in model.audiences.iter() {
        if let Some(split) = model.syntax.audiences[i]
            .compose
            .as_ref()
            .and_then(|c| c.split.as_ref())
        {
            out.extend(
                split
                    .part_names()
                    .iter()
                    .map(|p| format!("{name}.{}", p.value)),
            );
        }
    }
    out
}
