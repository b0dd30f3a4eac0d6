//! TOML to spanned syntax.
//!
//! Input: a [`SourceSet`]. Output: a [`Syntax`] holding every definition of
//! every file, in file order then name order, plus diagnostics. This stage
//! never fails: a file that is not valid TOML is reported (`A0001`) and
//! skipped, a bad value is reported and left out, and everything else is kept.
//! Names are not bound here (that is `resolve`), so duplicates survive.

pub mod activation;
pub mod alert;
pub mod audience;
pub mod data_source;
pub mod delivery_keys;
pub mod destination;
pub mod governance;
pub mod names;
pub mod project;
pub mod reader;
pub mod schema;

pub use activation::Activation;
pub use alert::{Alert, Notify};
pub use audience::{Audience, Compose, Computed, Rank, Split};
pub use data_source::DataSource;
pub use destination::{Destination, Setting, SettingValue};
pub use governance::{Consent, Declared, Policy, Waiver};
pub use project::{DeliveryMode, Environment, Guardrails, Project};
pub use reader::Sp;
pub use schema::{Field, Link, Schema};

use toml::de::{DeTable, DeValue};

use crate::diag::{Diagnostic, codes};
use crate::source::{PROJECT_FILE, SourceId, SourceSet, Span};
use reader::{Cx, definitions};

/// Every definition of a project, as written.
#[derive(Clone, Debug, Default)]
pub struct Syntax {
    /// accord.toml, when the project has one.
    pub project_file: Option<SourceId>,
    /// Files that are not valid TOML (reported as `A0001`): nothing was read
    /// from them, so later stages avoid reporting what they would have held.
    pub unparsed_files: Vec<SourceId>,
    pub project: Option<Project>,
    pub environments: Vec<Environment>,
    pub guardrails: Option<Guardrails>,
    pub schemas: Vec<Schema>,
    pub labels: Vec<Declared>,
    pub marketing_actions: Vec<Declared>,
    pub policies: Vec<Policy>,
    pub consents: Vec<Consent>,
    pub waivers: Vec<Waiver>,
    pub audiences: Vec<Audience>,
    pub computed: Vec<Computed>,
    pub destinations: Vec<Destination>,
    pub activations: Vec<Activation>,
    pub sources: Vec<DataSource>,
    pub alerts: Vec<Alert>,
}

/// The spec kinds allowed in any file, then those allowed only in accord.toml.
pub const KINDS: &[&str] = &[
    "schema",
    "label",
    "marketing_action",
    "policy",
    "consent",
    "waiver",
    "audience",
    "computed",
    "destination",
    "activation",
    "source",
    "alert",
];
pub const PROJECT_KINDS: &[&str] = &["project", "environment", "guardrails"];

pub fn parse(sources: &SourceSet) -> (Syntax, Vec<Diagnostic>) {
    let mut syntax = Syntax::default();
    let mut diags = Vec::new();
    for (id, file) in sources.iter() {
        let mut cx = Cx {
            source: id,
            diags: &mut diags,
            subject: String::new(),
        };
        if file.path == PROJECT_FILE {
            syntax.project_file = Some(id);
        }
        if !parse_file(&mut cx, &mut syntax, &file.text, file.path == PROJECT_FILE) {
            syntax.unparsed_files.push(id);
        }
    }
    (syntax, diags)
}

/// Reads one file into `syntax`; false when it is not valid TOML.
fn parse_file(cx: &mut Cx<'_>, syntax: &mut Syntax, text: &str, is_project_file: bool) -> bool {
    let document = match DeTable::parse(text) {
        Ok(document) => document,
        Err(error) => {
            report_toml_error(cx, text, &error);
            return false;
        }
    };
    for (kind, value) in document.get_ref().iter() {
        let kind_name = kind.get_ref().as_ref();
        let kind_span = cx.span(kind);
        match kind_name {
            "project" | "environment" | "guardrails" if !is_project_file => {
                cx.report(
                    Diagnostic::new(
                        codes::spec::MISPLACED_TABLE,
                        kind_span,
                        format!("`[{kind_name}]` belongs in {PROJECT_FILE}"),
                    )
                    .label("project settings are only read from accord.toml")
                    .help(format!("move this table into {PROJECT_FILE}")),
                );
            }
            "project" => {
                if let Some(t) = table_of(cx, value, "a `[project]` table") {
                    syntax.project = Some(project::project(cx, t, kind_span));
                }
            }
            "guardrails" => {
                if let Some(t) = table_of(cx, value, "a `[guardrails]` table") {
                    syntax.guardrails = Some(project::guardrails(cx, t, kind_span));
                }
            }
            "environment" => {
                for (name, t) in definitions(cx, kind_name, value) {
                    cx.subject = format!("environment `{}`", name.value);
                    syntax.environments.push(project::environment(cx, name, t));
                }
                cx.subject.clear();
            }
            "computed" => {
                for (entity, t) in definitions(cx, kind_name, value) {
                    if !audience::ENTITIES.contains(&entity.as_str()) {
                        cx.report(
                            Diagnostic::new(
                                codes::spec::INVALID_VALUE,
                                entity.span,
                                format!(
                                    "computed attributes cannot be added to `{}`",
                                    entity.value
                                ),
                            )
                            .label("expected `account` or `person`")
                            .suggest(
                                &entity.value,
                                audience::ENTITIES.iter().copied(),
                                "write `[computed.account.NAME]` or `[computed.person.NAME]`",
                            ),
                        );
                        continue;
                    }
                    syntax.computed.extend(audience::computed(cx, entity, t));
                    cx.subject.clear();
                }
            }
            _ if KINDS.contains(&kind_name) => {
                for (name, t) in definitions(cx, kind_name, value) {
                    cx.subject = format!("{} `{}`", names::kind_words(kind_name), name.value);
                    match kind_name {
                        "schema" => syntax.schemas.push(schema::schema(cx, name, t)),
                        "label" => syntax
                            .labels
                            .push(governance::declared(cx, "label", name, t)),
                        "marketing_action" => syntax.marketing_actions.push(governance::declared(
                            cx,
                            "marketing action",
                            name,
                            t,
                        )),
                        "policy" => syntax.policies.push(governance::policy(cx, name, t)),
                        "consent" => syntax.consents.push(governance::consent(cx, name, t)),
                        "waiver" => syntax.waivers.push(governance::waiver(cx, name, t)),
                        "audience" => syntax.audiences.push(audience::audience(cx, name, t)),
                        "destination" => syntax
                            .destinations
                            .push(destination::destination(cx, name, t)),
                        "activation" => {
                            syntax.activations.push(activation::activation(cx, name, t))
                        }
                        "alert" => syntax.alerts.push(alert::alert(cx, name, t)),
                        _ => syntax.sources.push(data_source::data_source(cx, name, t)),
                    }
                }
                cx.subject.clear();
            }
            _ => {
                let allowed: Vec<&str> = KINDS
                    .iter()
                    .chain(if is_project_file { PROJECT_KINDS } else { &[] })
                    .copied()
                    .collect();
                cx.report(
                    Diagnostic::new(
                        codes::spec::UNKNOWN_KIND,
                        kind_span,
                        format!("`{kind_name}` is not a spec kind"),
                    )
                    .label("everything in this table is ignored")
                    .suggest(
                        kind_name,
                        allowed.iter().copied(),
                        format!("spec kinds: {}", KINDS.join(", ")),
                    ),
                );
            }
        }
    }
    true
}

fn table_of<'t, 'i>(
    cx: &mut Cx<'_>,
    value: &'t toml::Spanned<DeValue<'i>>,
    expected: &str,
) -> Option<&'t DeTable<'i>> {
    match value.get_ref() {
        DeValue::Table(t) => Some(t),
        _ => {
            cx.wrong_type(value, expected);
            None
        }
    }
}

fn report_toml_error(cx: &mut Cx<'_>, text: &str, error: &toml::de::Error) {
    let range = error.span().unwrap_or(0..0);
    let mut start = range.start.min(text.len());
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    // Point at least at one whole character so the label is visible.
    let mut end = if range.end > start {
        range.end.min(text.len())
    } else {
        text[start..]
            .chars()
            .next()
            .map_or(start, |c| start + c.len_utf8())
    };
    while !text.is_char_boundary(end) {
        end += 1;
    }
    let message = error
        .message()
        .lines()
        .next()
        .unwrap_or("invalid TOML")
        .trim_end_matches('.')
        .to_string();
    cx.report(
        Diagnostic::new(
            codes::spec::TOML_SYNTAX,
            Span::new(cx.source, start..end),
            "the file is not valid TOML",
        )
        .label(message)
        .help("fix the TOML syntax; nothing in this file is read until it parses"),
    );
}
