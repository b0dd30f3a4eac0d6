//! `accord.toml`: `[project]`, `[environment.NAME]` and `[guardrails]`.

use toml::de::DeTable;

use super::reader::{Cx, Sp, Table};
use crate::closed_set::closed_set;
use crate::diag::{Diagnostic, codes};
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
    /// `datafusion` or `spark`: the engine `accord run` uses; `datafusion`
    /// (embedded) when omitted.
    pub engine: Option<Sp<String>>,
    /// The Spark Connect server (`sc://host:port`) of `engine = "spark"`.
    pub spark_remote: Option<Sp<String>>,
    /// Where the Spark Connect token is (`env:NAME` or `file:PATH`).
    pub spark_token: Option<Sp<String>>,
    /// How much memory the embedded engine's queries may hold before they
    /// spill to disk (`memory_limit`), as written; read by
    /// `crate::memory_limit`.
    pub memory_limit: Option<Sp<String>>,
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
pub const ENGINES: &[&str] = &["datafusion", "spark"];

pub fn environment(cx: &mut Cx<'_>, name: Sp<String>, table: &DeTable<'_>) -> Environment {
    let mut t = Table::new(table, name.span, format!("environment `{}`", name.value));
    let env = Environment {
        enforcement: t.choice(cx, "enforcement", ENFORCEMENTS),
        delivery: t
            .choice(cx, "delivery", DELIVERY_MODES)
            .and_then(|d| DeliveryMode::parse(&d.value).map(|mode| Sp::new(mode, d.span))),
        description: t.string(cx, "description"),
        engine: t.choice(cx, "engine", ENGINES),
        spark_remote: spark_remote(cx, &mut t, &name.value),
        spark_token: spark_token(cx, &mut t, &name.value),
        memory_limit: memory_limit(cx, &mut t, &name.value),
        name,
    };
    t.finish(cx);
    env
}

/// `memory_limit`: a size (`4GB`, `512MiB`) or a share of the machine's
/// memory (`50%`), which `crate::memory_limit` reads; anything else is
/// A0006, since a run would otherwise ignore it.
fn memory_limit(cx: &mut Cx<'_>, t: &mut Table<'_, '_>, env: &str) -> Option<Sp<String>> {
    let limit = t.string(cx, "memory_limit")?;
    let Err(error) = crate::memory_limit::parse(&limit.value) else {
        return Some(limit);
    };
    cx.report(
        Diagnostic::new(
            codes::spec::INVALID_VALUE,
            limit.span,
            format!(
                "environment `{env}`: `memory_limit` is not a memory size: `{}`",
                limit.value
            ),
        )
        .label(error.to_string())
        .help(crate::memory_limit::HELP),
    );
    None
}

/// `spark_remote`: a Spark Connect address, `sc://HOST[:PORT][/;k=v...]`.
/// A token written in it would be a literal credential (A0110).
fn spark_remote(cx: &mut Cx<'_>, t: &mut Table<'_, '_>, env: &str) -> Option<Sp<String>> {
    let remote = t.string(cx, "spark_remote")?;
    let host = remote
        .value
        .strip_prefix("sc://")
        .map(|rest| rest.split(['/', ';', ':']).next().unwrap_or(""));
    if host.is_none_or(str::is_empty) {
        cx.report(
            Diagnostic::new(
                codes::spec::INVALID_VALUE,
                remote.span,
                format!(
                    "environment `{env}`: `{}` is not a Spark Connect address",
                    remote.value
                ),
            )
            .label("expected `sc://HOST:PORT`")
            .help("write the server's address as `sc://HOST:PORT` (Spark Connect listens on 15002 by default)"),
        );
        return None;
    }
    if remote.value.contains(";token=") {
        cx.report(
            Diagnostic::new(
                codes::spec::LITERAL_CREDENTIAL,
                remote.span,
                format!(
                    "environment `{env}`: the Spark Connect token is written in `spark_remote`"
                ),
            )
            .label("a literal credential")
            .help("remove `;token=...` and set `spark_token = { env = \"NAME\" }`"),
        );
        return None;
    }
    Some(remote)
}

/// `spark_token`: a reference (`{ env = "NAME" }` or `{ file = "PATH" }`),
/// kept as `env:NAME`; a literal is A0110.
fn spark_token(cx: &mut Cx<'_>, t: &mut Table<'_, '_>, env: &str) -> Option<Sp<String>> {
    let value = t.raw("spark_token")?;
    let span = cx.span(value);
    match super::destination::setting_value(cx, value) {
        super::destination::SettingValue::Reference { kind, name } if kind != "profile" => {
            Some(Sp::new(format!("{kind}:{name}"), span))
        }
        _ => {
            cx.report(
                Diagnostic::new(
                    codes::spec::LITERAL_CREDENTIAL,
                    span,
                    format!("environment `{env}`: `spark_token` is not a reference to the token"),
                )
                .label("expected `{ env = \"NAME\" }` or `{ file = \"PATH\" }`")
                .help("keep the token out of the specs: `spark_token = { env = \"SPARK_TOKEN\" }`"),
            );
            None
        }
    }
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
