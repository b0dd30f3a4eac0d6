//! Tera templates: built into the binary, overridable by name from a folder
//! the CLI reads (`--templates DIR`), and the problems render reports.
//!
//! Input: user templates (name -> text). Output: rendered job texts, or a
//! `P0202` problem naming the template and the line.

use std::collections::BTreeMap;
use std::error::Error as _;

use serde_json::Value;

use super::query::{Built, LowerError, audience_columns};
use crate::diag::Code;
use crate::diag::codes::render::{NOT_LOWERABLE, TEMPLATE_ERROR};
use crate::plan::Plan;

/// The built-in templates, by name.
pub const BUILT_IN: &[(&str, &str)] = &[
    (
        "audiences.sql.tera",
        include_str!("../../templates/audiences.sql.tera"),
    ),
    (
        "consent_excluded.sql.tera",
        include_str!("../../templates/consent_excluded.sql.tera"),
    ),
    (
        "export.sql.tera",
        include_str!("../../templates/export.sql.tera"),
    ),
    (
        "manifest.json.tera",
        include_str!("../../templates/manifest.json.tera"),
    ),
    (
        "person_audiences.sql.tera",
        include_str!("../../templates/person_audiences.sql.tera"),
    ),
];

/// A problem found while rendering.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Problem {
    pub code: Code,
    pub message: String,
    pub help: Option<String>,
}

pub struct Engine {
    tera: tera::Tera,
}

impl Engine {
    /// Built-in templates with the user's overrides.
    pub fn new(overrides: &BTreeMap<String, String>) -> Result<Engine, Problem> {
        let mut tera = tera::Tera::default();
        // Jobs are SQL and JSON, never HTML.
        tera.autoescape_on(vec![]);
        for (name, text) in BUILT_IN {
            let text = overrides.get(*name).map_or(*text, String::as_str);
            tera.add_raw_template(name, text)
                .map_err(|e| template_problem(name, &e))?;
        }
        for (name, text) in overrides {
            if !BUILT_IN.iter().any(|(n, _)| n == name) {
                tera.add_raw_template(name, text)
                    .map_err(|e| template_problem(name, &e))?;
            }
        }
        Ok(Engine { tera })
    }

    pub fn render(&self, name: &str, ctx: &tera::Context) -> Result<String, Problem> {
        self.tera
            .render(name, ctx)
            .map_err(|e| template_problem(name, &e))
    }
}

fn template_problem(name: &str, e: &tera::Error) -> Problem {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        parts.push(s.to_string());
        source = s.source();
    }
    let text = parts.join(": ");
    let line = text
        .split("--> ")
        .nth(1)
        .and_then(|t| t.split(':').next())
        .and_then(|l| l.trim().parse::<u32>().ok());
    let detail = parts.last().cloned().unwrap_or_default();
    // Tera's parse errors draw the line; keep only what it expected.
    let detail = match detail.find("= ") {
        Some(i) => detail[i + 2..].to_string(),
        None => detail,
    };
    Problem {
        code: TEMPLATE_ERROR,
        message: match line {
            Some(l) => format!("template `{name}` line {l}: {}", first_line(&detail)),
            None => format!("template `{name}`: {}", first_line(&detail)),
        },
        help: Some(format!(
            "fix `{name}` in the templates folder, or remove it to use the built-in one"
        )),
    }
}

fn first_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// `SQL` when every dialect fails, else `spark, bigquery SQL`.
pub fn sql_of(dialects: &[&str]) -> String {
    if dialects.len() == super::dialect::all().len() {
        "SQL".to_string()
    } else {
        format!("{} SQL", dialects.join(", "))
    }
}

/// A `P0201` problem for an expression that does not lower in `dialects`.
pub fn lower_problem(dialects: &[&str], e: &LowerError) -> Problem {
    let sql = sql_of(dialects);
    Problem {
        code: NOT_LOWERABLE,
        message: format!("{} cannot be lowered to {sql}: {}", e.place, e.reason),
        help: (!e.expr.trim().is_empty()).then(|| format!("the expression: {}", e.expr.trim())),
    }
}

fn base(plan: &Plan, dialect: &str) -> tera::Context {
    let mut ctx = tera::Context::new();
    ctx.insert("project", &plan.project);
    ctx.insert("dialect", dialect);
    ctx.insert("fingerprint", &plan.fingerprint);
    ctx.insert("now", super::dialect::NOW_PLACEHOLDER);
    ctx
}

pub fn query_context(plan: &Plan, dialect: &str, entity: &str, built: &Built) -> tera::Context {
    let mut ctx = base(plan, dialect);
    let entity = if entity == "people" {
        "person"
    } else {
        "account"
    };
    let columns = audience_columns(plan, entity);
    ctx.insert("audience_count", &columns.len());
    ctx.insert("audiences", &columns);
    ctx.insert("feature_count", &built.features);
    ctx.insert("sql", built.sql.trim_end());
    ctx
}

pub fn export_context(plan: &Plan, dialect: &str, name: &str, sql: &str) -> tera::Context {
    let mut ctx = base(plan, dialect);
    let a = plan.activations.get(name);
    ctx.insert("activation", name);
    ctx.insert(
        "destination",
        &a.map(|a| a.destination.as_str()).unwrap_or(""),
    );
    ctx.insert(
        "destination_type",
        &a.map(|a| a.destination_type.as_str()).unwrap_or(""),
    );
    ctx.insert("people", &sql.contains("accord_people"));
    ctx.insert("sql", sql.trim_end());
    ctx
}

pub fn manifest_context(name: &str, manifest: &Value) -> tera::Context {
    let mut ctx = tera::Context::new();
    ctx.insert("activation", name);
    ctx.insert(
        "manifest",
        &serde_json::to_string_pretty(manifest).unwrap_or_default(),
    );
    ctx
}
