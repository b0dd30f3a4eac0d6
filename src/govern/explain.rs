//! The text of `accord explain activation NAME`: destination and actions,
//! per audience the labels that reach it and from where, and every policy's
//! verdict. Pure: the CLI prints what this returns.

use std::fmt::Write;

use super::{Verdict, Verdicts};

pub fn activation(verdicts: &Verdicts, name: &str) -> Option<String> {
    let v = verdicts.activations.get(name)?;
    let mut out = String::new();
    let _ = writeln!(out, "activation `{name}`");
    let _ = writeln!(
        out,
        "  destination `{}` ({})",
        v.destination,
        v.destination_type.as_deref().unwrap_or("unknown type")
    );
    match &verdicts.environment {
        Some(env) => {
            let _ = writeln!(
                out,
                "  environment `{env}` ({})",
                match verdicts.enforcement {
                    Some(crate::resolve::Enforcement::Block) => "violations block",
                    _ => "violations warn",
                }
            );
        }
        None => {
            let _ = writeln!(out, "  no environment: violations warn");
        }
    }
    let _ = writeln!(out, "  marketing actions:");
    for (action, source) in &v.actions {
        let why = match source {
            super::ActionSource::Fixed => "implied by the type, cannot be removed",
            super::ActionSource::Implied => "implied by the type",
            super::ActionSource::Destination => "listed in the destination's actions",
        };
        let _ = writeln!(out, "    {action}  ({why})");
    }
    if v.consent.is_empty() {
        let _ = writeln!(out, "  consent: none applies");
    }
    for c in &v.consent {
        let _ = writeln!(
            out,
            "  consent `{}` for {}: keeps people where {}",
            c.consent,
            c.actions.join(", "),
            c.require
        );
    }
    for (audience, av) in &v.audiences {
        let _ = writeln!(out, "\n  audience `{audience}`");
        if av.labels.is_empty() {
            let _ = writeln!(out, "    labels: none");
        }
        for (label, origins) in &av.labels {
            let _ = writeln!(out, "    label {label}");
            for o in origins {
                let via = if o.via.is_empty() {
                    String::new()
                } else {
                    format!(" via {}", o.via.join(" -> "))
                };
                let _ = writeln!(
                    out,
                    "      from `{}`, read by the {}{via}",
                    o.field, o.read_in
                );
            }
        }
        let _ = writeln!(out, "    policies:");
        for (policy, verdict) in &av.policies {
            let text = match verdict {
                Verdict::Allowed => "allowed".to_string(),
                Verdict::NotApplicable => {
                    "allowed (labels match, but no denied action is performed)".to_string()
                }
                Verdict::Violated { labels, actions } => {
                    let enforcement = verdicts
                        .policies
                        .get(policy)
                        .map(|p| format!("{:?}", p.enforcement).to_lowercase())
                        .unwrap_or_default();
                    format!(
                        "VIOLATED ({enforcement}): {} for {}",
                        labels.join(", "),
                        actions.join(", ")
                    )
                }
                Verdict::Waived {
                    waiver,
                    labels,
                    actions,
                } => format!(
                    "waived by `{waiver}`: {} for {}",
                    labels.join(", "),
                    actions.join(", ")
                ),
                Verdict::DraftNotEvaluated => "draft, not evaluated".to_string(),
                Verdict::DraftWouldViolate { labels, actions } => format!(
                    "draft, would be violated: {} for {}",
                    labels.join(", "),
                    actions.join(", ")
                ),
                Verdict::Disabled => "disabled".to_string(),
                Verdict::Invalid => "not evaluated: the deny expression has errors".to_string(),
            };
            let _ = writeln!(out, "      {policy}: {text}");
        }
    }
    Some(out)
}
