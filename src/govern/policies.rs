//! The effective policies of a project: the core policies (enabled unless a
//! project restates one with a status and a reason) plus the project's own,
//! with their `deny` expressions parsed and their labels checked.

use crate::builtins::CORE_POLICIES;
use crate::cel::spans::OffsetMap;
use crate::closed_set::closed_set;
use crate::diag::{Diagnostic, codes};
use crate::resolve::Model;
use crate::source::{SourceSet, Span};
use crate::syntax::Sp;

use super::policy_expr::{self, LabelExpr};

closed_set! {
    /// How a violation of a policy counts.
    pub enum Enforcement {
        Hard = "hard",
        Soft = "soft",
        Advisory = "advisory",
    }
}

closed_set! {
    pub enum Status {
        Enabled = "enabled",
        Disabled = "disabled",
        Draft = "draft",
    }
}

#[derive(Clone, Debug)]
pub struct Policy {
    pub name: String,
    /// Where the policy is written; `None` for a core policy left as built in.
    pub span: Option<Span>,
    pub core: bool,
    /// The denied actions; `None` denies every action (core C12).
    pub actions: Option<Vec<String>>,
    pub deny_text: String,
    /// `None` when the expression did not parse or names unknown labels: the
    /// error is reported and the policy is not evaluated.
    pub deny: Option<LabelExpr>,
    pub enforcement: Enforcement,
    pub status: Status,
}

impl Policy {
    pub fn denies_action(&self, action: &str) -> bool {
        self.actions
            .as_ref()
            .is_none_or(|a| a.iter().any(|x| x == action))
    }
}

fn status_of(s: Option<&Sp<String>>) -> Status {
    match s.map(|s| s.as_str()) {
        Some("disabled") => Status::Disabled,
        Some("draft") => Status::Draft,
        _ => Status::Enabled,
    }
}

pub fn effective(model: &Model, sources: &SourceSet, diags: &mut Vec<Diagnostic>) -> Vec<Policy> {
    let mut out = Vec::new();
    for core in CORE_POLICIES {
        let restated = model
            .policies
            .get(core.name)
            .map(|i| &model.syntax.policies[i]);
        let status = status_of(restated.and_then(|p| p.status.as_ref()));
        if let Some(p) = restated
            && status != Status::Enabled
            && p.reason.is_none()
        {
            let span = p.status.as_ref().map_or(p.name.span, |s| s.span);
            diags.push(
                Diagnostic::new(
                    codes::governance::CORE_POLICY_WITHOUT_REASON,
                    span,
                    format!(
                        "core policy `{}` is switched off without a reason",
                        core.name
                    ),
                )
                .label("needs `reason = \"...\"`")
                .help("add a `reason` that a reviewer can check, or remove this status"),
            );
        }
        // A core policy's rule is the platform's contract for its label: a
        // restatement may switch it off (with a reason) but not change what
        // it denies, or the project would silently mean something else.
        if let Some(p) = restated {
            let changed: Vec<(&str, crate::source::Span)> = [
                ("deny", p.deny.as_ref().map(|d| d.span)),
                ("enforcement", p.enforcement.as_ref().map(|e| e.span)),
            ]
            .into_iter()
            .filter_map(|(k, s)| Some((k, s?)))
            .chain(p.actions.first().map(|a| ("actions", a.span)))
            .collect();
            for (key, span) in changed {
                diags.push(
                    Diagnostic::new(
                        codes::governance::CORE_POLICY_REDEFINED,
                        span,
                        format!("core policy `{}` has a built-in `{key}`", core.name),
                    )
                    .label("a core policy's rule cannot be changed")
                    .help(format!(
                        "remove `{key}`; for a different rule, write a policy with a new name \
                         (a core policy can only be disabled or made a draft, with a reason)"
                    )),
                );
            }
        }
        // Without a reason the restatement does not take effect: the core
        // policy stays enabled, so an error never weakens governance.
        let status = if restated.is_some_and(|p| p.reason.is_none()) {
            Status::Enabled
        } else {
            status
        };
        out.push(Policy {
            name: core.name.to_string(),
            span: restated.map(|p| p.name.span),
            core: true,
            actions: core
                .actions
                .map(|a| a.iter().map(|s| s.to_string()).collect()),
            deny_text: core.label.to_string(),
            deny: Some(LabelExpr::Label(core.label.to_string(), 0..0)),
            enforcement: Enforcement::Hard,
            status,
        });
    }
    for (name, index) in model.policies.iter() {
        if CORE_POLICIES.iter().any(|c| c.name == name) {
            continue;
        }
        let p = &model.syntax.policies[index];
        let deny = p
            .deny
            .as_ref()
            .and_then(|d| parse_deny(model, sources, name, d, diags));
        out.push(Policy {
            name: name.to_string(),
            span: Some(p.name.span),
            core: false,
            actions: Some(p.actions.iter().map(|a| a.value.clone()).collect()),
            deny_text: p.deny.as_ref().map(|d| d.value.clone()).unwrap_or_default(),
            deny,
            enforcement: match p.enforcement.as_ref().map(|e| e.as_str()) {
                Some("soft") => Enforcement::Soft,
                Some("advisory") => Enforcement::Advisory,
                _ => Enforcement::Hard,
            },
            status: status_of(p.status.as_ref()),
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

fn parse_deny(
    model: &Model,
    sources: &SourceSet,
    policy: &str,
    deny: &Sp<String>,
    diags: &mut Vec<Diagnostic>,
) -> Option<LabelExpr> {
    let map = OffsetMap::new(sources.text(deny.span));
    let at = |range: std::ops::Range<usize>| deny.span.sub(map.raw_range(range));
    let expr = match policy_expr::parse(&deny.value) {
        Ok(expr) => expr,
        Err(e) if e.too_deep => {
            diags.push(
                Diagnostic::new(
                    codes::governance::DENY_TOO_DEEP,
                    at(e.range),
                    format!("the deny expression of policy `{policy}` nests too deep"),
                )
                .label(e.message)
                .help(
                    "write the expression with fewer parentheses: `&&` and `||` \
                     chains need none, and `!!a` is `a`",
                ),
            );
            return None;
        }
        Err(e) => {
            diags.push(
                Diagnostic::new(
                    codes::governance::INVALID_DENY,
                    at(e.range),
                    format!("the deny expression of policy `{policy}` is not a label expression"),
                )
                .label(e.message)
                .help("combine label names with `&&`, `||`, `!` and parentheses"),
            );
            return None;
        }
    };
    let mut ok = true;
    for (name, range) in expr.names() {
        if model.labels.contains_key(name) {
            continue;
        }
        ok = false;
        diags.push(
            Diagnostic::new(
                codes::governance::UNKNOWN_DENY_LABEL,
                at(range),
                format!("policy `{policy}` denies `{name}`, which is not a label"),
            )
            .label("no core or declared label has this name")
            .suggest(
                name,
                model.labels.keys().map(String::as_str),
                format!("declare it with `[label.{name}]`, or use a core label"),
            ),
        );
    }
    ok.then_some(expr)
}
