//! `accord.toml`: `[project]`, `[environment.NAME]` and `[guardrails]`.

use toml::de::DeTable;

use super::reader::{Cx, Sp, Table};
use crate::closed_set::closed_set;
use crate::source::Span;

closed_set! {
    /// Whether `accord run` in an environment calls the vendors' APIs.
    pub enum DeliveryMode {
        /// Requests are sent (the default).
        Live = "live",
        /// Requests are built and written, never sent: a project runs on a
        /// machine without vendor accounts.
        DryRun = "dry-run",
    }
}

#[derive(Clone, Debug, Default)]
pub struct Project {
    pub name: Option<Sp<String>>,
    pub format: Option<Sp<i64>>,
    /// A regular expression every audience name should match (a lint).
    pub audience_naming: Option<Sp<String>>,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct Environment {
    pub name: Sp<String>,
    /// `block` or `warn`; `warn` when omitted, so a new environment never
    /// blocks by surprise (and `accord check` says which it is).
    pub enforcement: Option<Sp<String>>,
    /// `live` or `dry-run`; `live` when omitted.
    pub delivery: Option<Sp<DeliveryMode>>,
    pub description: Option<Sp<String>>,
}

/// Limits from the platform this mirrors; every field is optional and
/// defaults to the platform's value (see `resolve::guardrails`).
#[derive(Clone, Debug, Default)]
pub struct Guardrails {
    pub max_audiences: Option<Sp<i64>>,
    pub max_streaming_audiences: Option<Sp<i64>>,
    pub max_nesting_depth: Option<Sp<i64>>,
    pub max_destinations: Option<Sp<i64>>,
    pub max_activations: Option<Sp<i64>>,
    pub max_fields: Option<Sp<i64>>,
    pub span: Span,
}

pub fn project(cx: &mut Cx<'_>, table: &DeTable<'_>, span: Span) -> Project {
    let mut t = Table::new(table, span, "`[project]`");
    let project = Project {
        name: t.required_string(cx, "name"),
        format: t.int(cx, "format"),
        audience_naming: t.string(cx, "audience_naming"),
        span,
    };
    t.allow(&["description"]);
    t.finish(cx);
    project
}

pub const ENFORCEMENTS: &[&str] = &["block", "warn"];
pub const DELIVERY_MODES: &[&str] = &["live", "dry-run"];

pub fn environment(cx: &mut Cx<'_>, name: Sp<String>, table: &DeTable<'_>) -> Environment {
    let mut t = Table::new(table, name.span, format!("environment `{}`", name.value));
    let env = Environment {
        enforcement: t.choice(cx, "enforcement", ENFORCEMENTS),
        delivery: t
            .choice(cx, "delivery", DELIVERY_MODES)
            .and_then(|d| DeliveryMode::parse(&d.value).map(|mode| Sp::new(mode, d.span))),
        description: t.string(cx, "description"),
        name,
    };
    t.finish(cx);
    env
}

pub fn guardrails(cx: &mut Cx<'_>, table: &DeTable<'_>, span: Span) -> Guardrails {
    let mut t = Table::new(table, span, "`[guardrails]`");
    let g = Guardrails {
        max_audiences: t.int(cx, "max_audiences"),
        max_streaming_audiences: t.int(cx, "max_streaming_audiences"),
        max_nesting_depth: t.int(cx, "max_nesting_depth"),
        max_destinations: t.int(cx, "max_destinations"),
        max_activations: t.int(cx, "max_activations"),
        max_fields: t.int(cx, "max_fields"),
        span,
    };
    t.finish(cx);
    g
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_modes_are_spelled_as_the_closed_set() {
        let spelled: Vec<&str> = DeliveryMode::ALL.iter().map(|m| m.as_str()).collect();
        assert_eq!(spelled, DELIVERY_MODES);
    }
}
