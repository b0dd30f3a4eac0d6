//! Project settings from `accord.toml`: format, naming lint, environments and
//! guardrails with the platform's defaults.

use std::collections::BTreeMap;

use crate::closed_set::closed_set;
use crate::diag::{Diagnostic, codes};
use crate::source::PROJECT_FILE;
use crate::source::{SourceSet, Span};
use crate::syntax::{Sp, Syntax};

closed_set! {
    /// What an environment does with policy violations.
    pub enum Enforcement {
        /// Hard and soft violations are errors (unless a waiver covers a soft one).
        Block = "block",
        /// Violations are reported as warnings.
        Warn = "warn",
    }
}

/// Platform guardrails (the platform's), overridable in `[guardrails]`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Guardrails {
    pub max_audiences: u64,
    pub max_streaming_audiences: u64,
    pub max_nesting_depth: u64,
    pub max_destinations: u64,
    pub max_activations: u64,
    pub max_fields: u64,
    /// Where each value was set, for diagnostics about exceeding it.
    #[serde(skip)]
    pub spans: BTreeMap<&'static str, Span>,
}

impl Default for Guardrails {
    fn default() -> Guardrails {
        Guardrails {
            max_audiences: 4000,
            max_streaming_audiences: 500,
            max_nesting_depth: 5,
            max_destinations: 100,
            max_activations: 1000,
            max_fields: 300,
            spans: BTreeMap::new(),
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct Settings {
    pub name: String,
    pub audience_naming: Option<(regex::Regex, Span)>,
    pub environments: BTreeMap<String, Enforcement>,
    pub guardrails: Guardrails,
    /// The start of accord.toml, for project-wide diagnostics.
    pub project_span: Span,
}

pub fn settings(syntax: &Syntax, sources: &SourceSet, diags: &mut Vec<Diagnostic>) -> Settings {
    let project_file = sources
        .iter()
        .find(|(_, f)| f.path == PROJECT_FILE)
        .map(|(id, _)| id)
        .unwrap_or_default();
    let mut settings = Settings {
        project_span: Span::new(project_file, 0..0),
        ..Settings::default()
    };
    // A missing or unreadable accord.toml is reported by `load` or as A0001;
    // "no [project]" would only repeat it.
    let project_file_read = syntax
        .project_file
        .is_some_and(|id| !syntax.unparsed_files.contains(&id));
    match &syntax.project {
        None if !project_file_read => {}
        None => diags.push(
            Diagnostic::new(
                codes::spec::UNSUPPORTED_FORMAT,
                settings.project_span,
                "accord.toml has no `[project]` table",
            )
            .label("expected `[project]` with `name` and `format = 1`")
            .help("add `[project]` with `name = \"...\"` and `format = 1` to accord.toml"),
        ),
        Some(project) => {
            settings.project_span = project.span;
            settings.name = project
                .name
                .as_ref()
                .map(|n| n.value.clone())
                .unwrap_or_default();
            match &project.format {
                Some(Sp { value: 1, .. }) => {}
                Some(format) => diags.push(
                    Diagnostic::new(
                        codes::spec::UNSUPPORTED_FORMAT,
                        format.span,
                        format!("spec format {} is not supported", format.value),
                    )
                    .label("this accord reads format 1")
                    .help("set `format = 1`, or use an accord that reads this format"),
                ),
                None => diags.push(
                    Diagnostic::new(
                        codes::spec::UNSUPPORTED_FORMAT,
                        project.span,
                        "`[project]` does not say its spec format",
                    )
                    .label("`format` is missing")
                    .help(
                        "add `format = 1` so a future accord never reads this project differently",
                    ),
                ),
            }
            if let Some(pattern) = &project.audience_naming {
                match regex::Regex::new(&pattern.value) {
                    Ok(re) => settings.audience_naming = Some((re, pattern.span)),
                    Err(e) => diags.push(
                        Diagnostic::new(
                            codes::spec::INVALID_VALUE,
                            pattern.span,
                            "`audience_naming` is not a valid regular expression",
                        )
                        .label(
                            e.to_string()
                                .lines()
                                .last()
                                .unwrap_or("invalid")
                                .trim()
                                .to_string(),
                        )
                        .help("write a regular expression such as '^B2B_[A-Za-z0-9_]+$'"),
                    ),
                }
            }
        }
    }
    for env in &syntax.environments {
        let enforcement = match env.enforcement.as_ref().map(|e| e.as_str()) {
            Some("block") => Enforcement::Block,
            _ => Enforcement::Warn,
        };
        settings
            .environments
            .entry(env.name.value.clone())
            .or_insert(enforcement);
    }
    if let Some(g) = &syntax.guardrails {
        let fields: [(&'static str, &Option<Sp<i64>>, &mut u64); 6] = [
            (
                "max_audiences",
                &g.max_audiences,
                &mut settings.guardrails.max_audiences,
            ),
            (
                "max_streaming_audiences",
                &g.max_streaming_audiences,
                &mut settings.guardrails.max_streaming_audiences,
            ),
            (
                "max_nesting_depth",
                &g.max_nesting_depth,
                &mut settings.guardrails.max_nesting_depth,
            ),
            (
                "max_destinations",
                &g.max_destinations,
                &mut settings.guardrails.max_destinations,
            ),
            (
                "max_activations",
                &g.max_activations,
                &mut settings.guardrails.max_activations,
            ),
            (
                "max_fields",
                &g.max_fields,
                &mut settings.guardrails.max_fields,
            ),
        ];
        for (key, value, slot) in fields {
            let Some(value) = value else { continue };
            if value.value < 1 {
                diags.push(
                    Diagnostic::new(
                        codes::spec::INVALID_VALUE,
                        value.span,
                        format!("`{key}` must be at least 1"),
                    )
                    .label("a guardrail of zero or less allows nothing")
                    .help("use a positive limit, or remove the key to use the default"),
                );
                continue;
            }
            *slot = value.value as u64;
            settings.guardrails.spans.insert(key, value.span);
        }
    }
    settings
}
