//! Waivers: time-boxed, owned exceptions to a soft policy for one activation.
//!
//! A waiver is valid when its policy is soft and it has not expired on
//! `today` (an input: this stage never reads the clock; without a date,
//! expiry is not judged). Only valid waivers cover violations; a valid waiver
//! that covers none is reported so stale exceptions get removed.

use std::collections::{BTreeMap, BTreeSet};

use crate::diag::{Diagnostic, codes};
use crate::resolve::Model;

use super::policies::{Enforcement, Policy};

pub struct Waivers {
    /// (policy, activation) -> waiver name, for valid waivers only.
    valid: BTreeMap<(String, String), String>,
    used: BTreeSet<String>,
}

impl Waivers {
    pub fn check(
        model: &Model,
        policies: &[Policy],
        today: Option<toml::value::Date>,
        diags: &mut Vec<Diagnostic>,
    ) -> Waivers {
        let mut valid = BTreeMap::new();
        for (name, index) in model.waivers.iter() {
            let w = &model.syntax.waivers[index];
            let (Some(policy), Some(activation)) = (&w.policy, &w.activation) else {
                continue;
            };
            let mut ok = w.owner.is_some() && w.reason.is_some();
            if let Some(p) = policies.iter().find(|p| p.name == policy.value)
                && p.enforcement != Enforcement::Soft
            {
                ok = false;
                let what = if p.core {
                    "a core policy".to_string()
                } else {
                    format!("{:?}", p.enforcement).to_lowercase()
                };
                diags.push(
                    Diagnostic::new(
                        codes::governance::WAIVER_NOT_SOFT,
                        policy.span,
                        format!("waiver `{name}` names policy `{}`, which is {what}", policy.value),
                    )
                    .label("only soft policies can be waived")
                    .help("change the dataflow, or make the policy `enforcement = \"soft\"` if exceptions are acceptable"),
                );
            }
            if let (Some(expires), Some(today)) = (&w.expires, today)
                && expires.value < today
            {
                ok = false;
                diags.push(
                    Diagnostic::new(
                        codes::governance::WAIVER_EXPIRED,
                        expires.span,
                        format!("waiver `{name}` expired on {}", expires.value),
                    )
                    .label(format!("before today, {today}"))
                    .help("renew it with a new date and a reason that still holds, or remove it and change the dataflow"),
                );
            }
            if ok {
                valid.insert(
                    (policy.value.clone(), activation.value.clone()),
                    name.to_string(),
                );
            }
        }
        Waivers {
            valid,
            used: BTreeSet::new(),
        }
    }

    /// The valid waiver of `policy` for `activation`, if any.
    pub fn covering(&self, policy: &str, activation: &str) -> Option<&str> {
        self.valid
            .get(&(policy.to_string(), activation.to_string()))
            .map(String::as_str)
    }

    /// Records that `waiver` covered a violation, so it is not reported unused.
    pub fn mark_used(&mut self, waiver: &str) {
        self.used.insert(waiver.to_string());
    }

    pub fn report_unused(&self, model: &Model, diags: &mut Vec<Diagnostic>) {
        for ((policy, activation), name) in &self.valid {
            if self.used.contains(name) {
                continue;
            }
            let Some(w) = model.waivers.get(name).map(|i| &model.syntax.waivers[i]) else {
                continue;
            };
            diags.push(
                Diagnostic::new(
                    codes::governance::WAIVER_UNUSED,
                    w.name.span,
                    format!("waiver `{name}` covers no violation of `{policy}` by `{activation}`"),
                )
                .label("this exception has no effect")
                .help("remove the waiver; it would silently allow a violation if the dataflow changed"),
            );
        }
    }
}
