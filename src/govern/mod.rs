//! Governance: labels, marketing actions, policies, consent and waivers.
//!
//! Input: a [`Model`] without errors and [`GovernOptions`] (the environment
//! and today's date, both values: this stage is pure). Output: [`Verdicts`],
//! plain serialisable data with one verdict per (activation, audience,
//! policy), and diagnostics. Invariant: a dataflow that violates an enabled
//! hard policy, or an unwaived soft one, is an error in a blocking
//! environment, so it never reaches `plan` or `run` there.
//!
//! One rule per file: [`lineage`] (which labels reach what), [`actions`]
//! (what a dataflow does), [`policy_expr`] (the deny language), [`policies`]
//! (effective policies), [`waivers`], [`consent`], and [`explain`] (the text
//! of `accord explain activation`).

pub mod actions;
pub mod consent;
pub mod explain;
pub mod lineage;
pub mod policies;
pub mod policy_expr;
pub mod waivers;

use std::collections::{BTreeMap, BTreeSet};

use crate::diag::{Diagnostic, Severity, codes};
use crate::resolve::{
    Enforcement as EnvEnforcement, ExprSite, Model, ResolvedActivation, audiences::base_name,
};
use crate::source::SourceSet;

pub use actions::ActionSource;
pub use consent::AppliedConsent;
pub use lineage::{Labels, Origin};
pub use policies::{Enforcement, Status};

#[derive(Clone, Debug, Default)]
pub struct GovernOptions {
    /// The environment checked against; `None` reports violations as warnings.
    pub environment: Option<String>,
    /// Today's date, for waiver expiry; `None` leaves expiry unjudged.
    pub today: Option<toml::value::Date>,
    /// Evaluate draft policies too (`explain --drafts`). Their results are
    /// recorded as [`Verdict::DraftWouldViolate`] and never reported as
    /// diagnostics: a draft is a proposal, not a rule.
    pub evaluate_drafts: bool,
}

/// Every governance result of a project, for `explain` and the plan.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Verdicts {
    pub environment: Option<String>,
    /// `block` or `warn`; `None` when no environment was given.
    pub enforcement: Option<EnvEnforcement>,
    pub policies: BTreeMap<String, PolicyInfo>,
    pub activations: BTreeMap<String, ActivationVerdict>,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct PolicyInfo {
    pub core: bool,
    /// `None`: every action.
    pub actions: Option<Vec<String>>,
    pub deny: String,
    pub enforcement: Enforcement,
    pub status: Status,
}

#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct ActivationVerdict {
    pub destination: String,
    pub destination_type: Option<String>,
    pub actions: BTreeMap<String, ActionSource>,
    /// Per activated audience (as referenced, `NAME` or `NAME.part`).
    pub audiences: BTreeMap<String, AudienceVerdict>,
    pub consent: Vec<AppliedConsent>,
}

#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct AudienceVerdict {
    pub labels: Labels,
    pub policies: BTreeMap<String, Verdict>,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "verdict")]
pub enum Verdict {
    Allowed,
    /// The labels match but the dataflow performs none of the policy's actions.
    NotApplicable,
    Violated {
        labels: Vec<String>,
        actions: Vec<String>,
    },
    Waived {
        waiver: String,
        labels: Vec<String>,
        actions: Vec<String>,
    },
    DraftNotEvaluated,
    /// A draft evaluated on request that would be violated if enabled.
    DraftWouldViolate {
        labels: Vec<String>,
        actions: Vec<String>,
    },
    Disabled,
    /// The deny expression has errors (reported); nothing was evaluated.
    Invalid,
}

/// Whether a violated policy stops its dataflow: in a blocking environment,
/// unless the policy is advisory (reported, never blocking). One rule for
/// `check` (the severity of a violation) and `run` (which reads the plan's
/// verdicts and policies).
pub fn violation_blocks(environment_blocks: bool, enforcement: Enforcement) -> bool {
    environment_blocks && enforcement != Enforcement::Advisory
}

/// The verdict of one policy on one dataflow: `labels` reach it, it
/// performs `actions`, and `waiver` is the valid waiver of this policy for
/// this activation, if any. Drafts are evaluated only when
/// `evaluate_drafts` is set. Pure: reporting a violation and marking a
/// waiver used are the caller's.
pub fn verdict(
    policy: &policies::Policy,
    labels: &BTreeSet<String>,
    actions: &BTreeMap<String, ActionSource>,
    waiver: Option<&str>,
    evaluate_drafts: bool,
) -> Verdict {
    let denied = || -> Vec<String> {
        actions
            .keys()
            .filter(|a| policy.denies_action(a))
            .cloned()
            .collect()
    };
    match (policy.status, &policy.deny) {
        (Status::Disabled, _) => Verdict::Disabled,
        (Status::Draft, Some(deny)) if evaluate_drafts => {
            let hit = denied();
            if deny.matches(labels) && !hit.is_empty() {
                Verdict::DraftWouldViolate {
                    labels: deny.witnesses(labels),
                    actions: hit,
                }
            } else {
                Verdict::DraftNotEvaluated
            }
        }
        (Status::Draft, _) => Verdict::DraftNotEvaluated,
        (_, None) => Verdict::Invalid,
        (Status::Enabled, Some(deny)) => {
            if !deny.matches(labels) {
                return Verdict::Allowed;
            }
            let hit = denied();
            if hit.is_empty() {
                return Verdict::NotApplicable;
            }
            let blamed = deny.witnesses(labels);
            // Only a soft policy can be waived.
            match waiver.filter(|_| policy.enforcement == Enforcement::Soft) {
                Some(waiver) => Verdict::Waived {
                    waiver: waiver.to_string(),
                    labels: blamed,
                    actions: hit,
                },
                None => Verdict::Violated {
                    labels: blamed,
                    actions: hit,
                },
            }
        }
    }
}

pub fn govern(
    model: &Model,
    sources: &SourceSet,
    options: &GovernOptions,
) -> (Verdicts, Vec<Diagnostic>) {
    let mut diags = Vec::new();
    let enforcement = options
        .environment
        .as_ref()
        .and_then(|e| model.settings.environments.get(e))
        .copied();
    let policies = policies::effective(model, sources, &mut diags);
    let mut run = Governing {
        model,
        options,
        blocking: enforcement == Some(EnvEnforcement::Block),
        waivers: waivers::Waivers::check(model, &policies, options.today, &mut diags),
        lineage: lineage::Lineage::new(model),
        policies: &policies,
        diags,
    };
    let mut verdicts = Verdicts {
        environment: options.environment.clone(),
        enforcement,
        policies: policy_infos(&policies),
        activations: BTreeMap::new(),
    };
    for (name, index) in model.activations.iter() {
        // Activations whose destination does not resolve were reported.
        let Some(resolved) = model.activation_info.get(name) else {
            continue;
        };
        let act = &model.syntax.activations[index];
        let verdict = run.activation(name, act, resolved);
        verdicts.activations.insert(name.to_string(), verdict);
    }
    let Governing {
        waivers, mut diags, ..
    } = run;
    waivers.report_unused(model, &mut diags);
    (verdicts, diags)
}

fn policy_infos(policies: &[policies::Policy]) -> BTreeMap<String, PolicyInfo> {
    policies
        .iter()
        .map(|p| {
            let info = PolicyInfo {
                core: p.core,
                actions: p.actions.clone(),
                deny: p.deny_text.clone(),
                enforcement: p.enforcement,
                status: p.status,
            };
            (p.name.clone(), info)
        })
        .collect()
}

/// What governing one project carries from dataflow to dataflow.
struct Governing<'a> {
    model: &'a Model,
    options: &'a GovernOptions,
    /// The environment blocks on violations.
    blocking: bool,
    policies: &'a [policies::Policy],
    waivers: waivers::Waivers,
    lineage: lineage::Lineage<'a>,
    diags: Vec<Diagnostic>,
}

impl Governing<'_> {
    /// The verdicts of one activation, per activated audience and policy.
    fn activation(
        &mut self,
        name: &str,
        act: &crate::syntax::Activation,
        resolved: &ResolvedActivation,
    ) -> ActivationVerdict {
        let model = self.model;
        let dest = &model.syntax.destinations[resolved.destination_index];
        let actions = actions::of(dest);
        let shared = self.shared_labels(name, act);
        let mut out = ActivationVerdict {
            destination: dest.name.value.clone(),
            destination_type: dest.ty.as_ref().map(|t| t.value.clone()),
            actions: actions.clone(),
            audiences: BTreeMap::new(),
            consent: consent::check(model, act, resolved, &actions, &mut self.diags),
        };
        for audience in &act.audiences {
            if !model.audiences.contains(base_name(&audience.value)) {
                continue;
            }
            let mut labels = Labels::new();
            let own = self.lineage.audience(&audience.value);
            // The verdict is keyed by this audience, so its own name is not
            // repeated in each label's path.
            lineage::merge(&mut labels, &own, None);
            lineage::merge(&mut labels, &shared, None);
            let present: BTreeSet<String> = labels.keys().cloned().collect();
            let mut per_policy = BTreeMap::new();
            for policy in self.policies {
                let waiver = self.waivers.covering(&policy.name, name);
                let v = verdict(
                    policy,
                    &present,
                    &actions,
                    waiver,
                    self.options.evaluate_drafts,
                );
                match &v {
                    Verdict::Waived { waiver, .. } => self.waivers.mark_used(waiver),
                    Verdict::Violated {
                        labels: blamed,
                        actions: hit,
                    } => self.diags.push(violation(
                        act,
                        dest,
                        audience,
                        policy,
                        &labels,
                        blamed,
                        hit,
                        self.blocking,
                    )),
                    _ => {}
                }
                per_policy.insert(policy.name.clone(), v);
            }
            out.audiences.insert(
                audience.value.clone(),
                AudienceVerdict {
                    labels,
                    policies: per_policy,
                },
            );
        }
        out
    }

    /// Labels every activated audience gets from the dataflow itself: its
    /// exclusion audiences, people filter and mapping.
    fn shared_labels(&mut self, name: &str, act: &crate::syntax::Activation) -> Labels {
        let mut shared = Labels::new();
        for ex in &act.exclude {
            let labels = self.lineage.audience(&ex.value);
            lineage::merge(
                &mut shared,
                &labels,
                Some(&format!("exclusion audience `{}`", ex.value)),
            );
        }
        let people = self.lineage.expr(
            &ExprSite::People(name.to_string()),
            &format!("people filter of `{name}`"),
        );
        lineage::merge(&mut shared, &people, None);
        for (column, _) in &act.map {
            let labels = self.lineage.expr(
                &ExprSite::Map(name.to_string(), column.value.clone()),
                &format!("mapping `{}` of `{name}`", column.value),
            );
            lineage::merge(&mut shared, &labels, None);
        }
        shared
    }
}

/// One violation, with the whole lineage as labels: field label (primary),
/// the read, the audience, the activation, the destination and the policy.
#[allow(clippy::too_many_arguments)]
fn violation(
    act: &crate::syntax::Activation,
    dest: &crate::syntax::Destination,
    audience: &crate::syntax::Sp<String>,
    policy: &policies::Policy,
    labels: &Labels,
    blamed: &[String],
    hit: &[String],
    blocking: bool,
) -> Diagnostic {
    let advisory = policy.enforcement == Enforcement::Advisory;
    let code = if advisory {
        codes::governance::ADVISORY_POLICY
    } else {
        codes::governance::POLICY_VIOLATION
    };
    let label_text = if blamed.is_empty() {
        "labels".to_string()
    } else {
        format!("label {}", blamed.join(", "))
    };
    let message = format!(
        "activation `{}` sends {label_text} to `{}` for {}, denied by {} policy `{}`",
        act.name.value,
        dest.name.value,
        hit.join(", "),
        format!("{:?}", policy.enforcement).to_lowercase(),
        policy.name
    );
    let origin = blamed
        .iter()
        .filter_map(|l| labels.get(l).and_then(|o| o.first()))
        .next();
    let primary = origin.map_or(audience.span, |o| o.label_span);
    let mut d = Diagnostic::new(code, primary, message);
    if let Some(o) = origin {
        d = d
            .label(format!("`{}` is labelled {}", o.field, o.label))
            .with_secondary(
                o.read_span,
                if !o.via.is_empty() {
                    format!("read by the {} (via {})", o.read_in, o.via.join(" -> "))
                } else {
                    format!("read by the {}", o.read_in)
                },
            );
    }
    d = d
        .with_secondary(
            audience.span,
            format!("audience `{}` is activated here", audience.value),
        )
        .with_secondary(act.name.span, "in this activation");
    let dest_span = dest
        .actions
        .iter()
        .find(|a| hit.contains(&a.value))
        .map(|a| a.span)
        .or(dest.ty.as_ref().map(|t| t.span))
        .unwrap_or(dest.name.span);
    d = d.with_secondary(
        dest_span,
        format!("`{}` performs {}", dest.name.value, hit.join(", ")),
    );
    if let Some(span) = policy.span {
        d = d.with_secondary(span, "the policy");
    }
    let mut help = "drop the field from the mapping or the rule, activate another audience, \
                    or send to a destination whose actions the policy does not deny"
        .to_string();
    let listed: Vec<&str> = dest
        .actions
        .iter()
        .filter(|a| hit.contains(&a.value))
        .map(|a| a.value.as_str())
        .collect();
    if !listed.is_empty() {
        help.push_str(&format!(
            "; or remove {} from the `actions` of destination `{}` if it does not apply",
            listed.join(", "),
            dest.name.value
        ));
    }
    if policy.enforcement == Enforcement::Soft {
        help.push_str(&format!(
            "; or add a `[waiver.NAME]` with policy = \"{}\", activation = \"{}\", an owner, a reason and an expiry",
            policy.name, act.name.value
        ));
    }
    let severity = if violation_blocks(blocking, policy.enforcement) {
        Severity::Error
    } else {
        Severity::Warning
    };
    d.help(help).with_severity(severity)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(deny: &str, actions: Option<&[&str]>, enforcement: Enforcement) -> policies::Policy {
        policies::Policy {
            name: "p".into(),
            span: None,
            core: false,
            actions: actions.map(|a| a.iter().map(|s| s.to_string()).collect()),
            deny_text: deny.into(),
            deny: policy_expr::parse(deny).ok(),
            enforcement,
            status: Status::Enabled,
        }
    }

    fn labels(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn actions(names: &[&str]) -> BTreeMap<String, ActionSource> {
        names
            .iter()
            .map(|s| (s.to_string(), ActionSource::Implied))
            .collect()
    }

    fn violated(labels: &[&str], actions: &[&str]) -> Verdict {
        Verdict::Violated {
            labels: labels.iter().map(|s| s.to_string()).collect(),
            actions: actions.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn labels_that_do_not_match_are_allowed() {
        let p = policy("pii && !consented", None, Enforcement::Hard);
        let v = verdict(
            &p,
            &labels(&["pii", "consented"]),
            &actions(&["email"]),
            None,
            false,
        );
        assert_eq!(v, Verdict::Allowed);
    }

    #[test]
    fn matching_labels_without_a_denied_action_do_not_apply() {
        let p = policy("pii", Some(&["email"]), Enforcement::Hard);
        let v = verdict(&p, &labels(&["pii"]), &actions(&["analytics"]), None, false);
        assert_eq!(v, Verdict::NotApplicable);
    }

    #[test]
    fn a_violation_blames_the_present_labels_and_the_denied_actions() {
        let p = policy("pii || health", Some(&["email", "ads"]), Enforcement::Hard);
        let v = verdict(
            &p,
            &labels(&["health", "other"]),
            &actions(&["ads", "analytics", "email"]),
            None,
            false,
        );
        assert_eq!(v, violated(&["health"], &["ads", "email"]));
    }

    #[test]
    fn only_a_soft_policy_is_waived() {
        let (l, a) = (labels(&["pii"]), actions(&["email"]));
        let soft = policy("pii", None, Enforcement::Soft);
        assert_eq!(
            verdict(&soft, &l, &a, Some("w1"), false),
            Verdict::Waived {
                waiver: "w1".into(),
                labels: vec!["pii".into()],
                actions: vec!["email".into()],
            }
        );
        assert_eq!(
            verdict(&soft, &l, &a, None, false),
            violated(&["pii"], &["email"])
        );
        let hard = policy("pii", None, Enforcement::Hard);
        assert_eq!(
            verdict(&hard, &l, &a, Some("w1"), false),
            violated(&["pii"], &["email"])
        );
    }

    #[test]
    fn drafts_disabled_and_invalid_policies_are_not_enforced() {
        let (l, a) = (labels(&["pii"]), actions(&["email"]));
        let mut p = policy("pii", None, Enforcement::Hard);
        p.status = Status::Draft;
        assert_eq!(verdict(&p, &l, &a, None, false), Verdict::DraftNotEvaluated);
        assert_eq!(
            verdict(&p, &l, &a, None, true),
            Verdict::DraftWouldViolate {
                labels: vec!["pii".into()],
                actions: vec!["email".into()],
            }
        );
        assert_eq!(
            verdict(&p, &labels(&[]), &a, None, true),
            Verdict::DraftNotEvaluated
        );
        p.status = Status::Disabled;
        assert_eq!(verdict(&p, &l, &a, None, true), Verdict::Disabled);
        let mut invalid = policy("pii", None, Enforcement::Hard);
        invalid.deny = None;
        assert_eq!(verdict(&invalid, &l, &a, None, false), Verdict::Invalid);
    }
}
