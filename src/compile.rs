//! The driver: runs the front-end stages in order and stops between stages
//! when one reported errors, so later stages never see a broken model.
//!
//! `check_sources` is pure (sources in, diagnostics out); `check` adds the
//! one filesystem read, through `load`.

use std::path::Path;

use crate::diag::{self, Diagnostic};
use crate::govern;
use crate::load::{self, LoadError};
use crate::resolve::{self, Model};
use crate::source::SourceSet;
use crate::syntax;

/// What the caller chose, as values (never read from the environment here).
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// The environment to check against; `None` checks the project alone.
    pub environment: Option<String>,
    /// Today's date, for waiver expiry. The CLI sets it from `--today` or the
    /// system clock; `None` leaves expiry unjudged (this module never reads
    /// the clock).
    pub today: Option<toml::value::Date>,
    /// Evaluate draft policies as well (reported in the verdicts only).
    pub evaluate_drafts: bool,
}

/// The front end's result: the model (when resolution ran) and every
/// diagnostic, sorted by place.
pub struct Compiled {
    pub sources: SourceSet,
    pub model: Option<Model>,
    /// Governance results; `None` when resolution reported errors.
    pub verdicts: Option<govern::Verdicts>,
    pub diagnostics: Vec<Diagnostic>,
    /// The plan the lowering check built, kept so [`plan`] does not build
    /// it again; `None` when the check did not get that far.
    pub plan: Option<crate::plan::Plan>,
}

impl Compiled {
    pub fn has_errors(&self) -> bool {
        diag::has_errors(&self.diagnostics)
    }
}

pub fn check(root: &Path, options: &Options) -> Result<Compiled, LoadError> {
    let sources = load::load(root)?;
    check_loaded(sources, options)
}

/// Like [`check`], for the project in `root` as it was at git revision `rev`
/// (`accord diff --base REV`).
pub fn check_revision(root: &Path, rev: &str, options: &Options) -> Result<Compiled, LoadError> {
    let sources = load::load_git(root, rev)?;
    check_loaded(sources, options)
}

fn check_loaded(sources: SourceSet, options: &Options) -> Result<Compiled, LoadError> {
    let compiled = check_sources(sources, options);
    // When accord.toml itself does not parse, its environments are unknown:
    // its syntax error is the news, not "unknown environment".
    let project_file_parsed = |model: &Model| {
        model
            .syntax
            .project_file
            .is_some_and(|id| !model.syntax.unparsed_files.contains(&id))
    };
    if let (Some(env), Some(model)) = (&options.environment, &compiled.model)
        && project_file_parsed(model)
        && !model.settings.environments.contains_key(env)
    {
        let known: Vec<&str> = model
            .settings
            .environments
            .keys()
            .map(String::as_str)
            .collect();
        return Err(LoadError {
            message: format!(
                "unknown environment `{env}`; accord.toml defines: {}",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ),
        });
    }
    Ok(compiled)
}

pub fn check_sources(sources: SourceSet, options: &Options) -> Compiled {
    let (syntax, mut diagnostics) = syntax::parse(&sources);
    // The link's file is empty, so no excerpt can carry the reason: the
    // message does.
    diagnostics.extend(sources.broken_links().map(|(id, link)| {
        let at = crate::source::Span::new(id, 0..0);
        if link.loops {
            Diagnostic::new(
                crate::diag::codes::spec::LINK_LOOP,
                at,
                format!(
                    "symbolic link `{}` is not followed: {}",
                    link.path, link.why
                ),
            )
            .help(
                "nothing is missed (that folder is read once, by its own path); \
                 remove the link if it serves no other purpose",
            )
        } else {
            Diagnostic::new(
                crate::diag::codes::spec::UNREADABLE_LINK,
                at,
                format!(
                    "symbolic link `{}` cannot be followed: {}",
                    link.path, link.why
                ),
            )
            .help(
                "point the link at an existing file or folder, or remove it: \
                 a spec file behind it would otherwise be skipped",
            )
        }
    }));
    // Resolution runs even after syntax errors in some files: the other files
    // still bind, and users see every problem at once. Files that failed to
    // parse contributed nothing, so no cascade comes from them.
    let (model, resolve_diags) = resolve::resolve(syntax, &sources);
    diagnostics.extend(resolve_diags);
    // Governance needs a sound model: labels flow through bound names and
    // checked expressions, so it runs only when resolution was clean.
    let verdicts = if diag::has_errors(&diagnostics) {
        None
    } else {
        let govern_options = govern::GovernOptions {
            environment: options.environment.clone(),
            today: options.today,
            evaluate_drafts: options.evaluate_drafts,
        };
        let (verdicts, govern_diags) = govern::govern(&model, &sources, &govern_options);
        diagnostics.extend(govern_diags);
        Some(verdicts)
    };
    // The run executes rendered SQL: an expression that type-checks but does
    // not lower in some dialect is an error here, at the expression, rather
    // than a surprise at render time.
    let mut plan = None;
    if let (false, Some(verdicts)) = (diag::has_errors(&diagnostics), &verdicts) {
        let built = crate::plan::build(&model, verdicts);
        diagnostics.extend(lowering_diagnostics(&model, &built));
        plan = Some(built);
    }
    diag::sort(&mut diagnostics);
    Compiled {
        sources,
        model: Some(model),
        verdicts,
        diagnostics,
        plan,
    }
}

/// `P0201` at each expression that does not lower to SQL.
fn lowering_diagnostics(model: &Model, plan: &crate::plan::Plan) -> Vec<Diagnostic> {
    crate::render::unlowerable(plan)
        .into_iter()
        .filter_map(|(e, dialects)| {
            let site = &e.site;
            let expr = model.exprs.get(site)?;
            let sql = crate::render::templates::sql_of(&dialects);
            Some(
                Diagnostic::new(
                    crate::diag::codes::render::NOT_LOWERABLE,
                    expr.span,
                    format!("{} cannot be lowered to {sql}", site.subject()),
                )
                .label(e.reason)
                .help(
                    "write it with constructs that have a SQL form (docs/render.md): \
                     the jobs run as SQL, and the SQL must mean what the CEL means",
                ),
            )
        })
        .collect()
}

/// Parses a `YYYY-MM-DD` date (as given to `--today`).
pub fn parse_date(text: &str) -> Option<toml::value::Date> {
    let dt: toml::value::Datetime = text.trim().parse().ok()?;
    match (dt.date, dt.time, dt.offset) {
        (Some(date), None, None) => Some(date),
        _ => None,
    }
}

/// The activation plan of a compiled project, when it has no errors: a
/// project with errors (including blocking policy violations) has no plan,
/// so nothing downstream can act on it.
pub fn plan(compiled: &Compiled) -> Option<crate::plan::Plan> {
    if compiled.has_errors() {
        return None;
    }
    if let Some(plan) = &compiled.plan {
        return Some(plan.clone());
    }
    let (model, verdicts) = (compiled.model.as_ref()?, compiled.verdicts.as_ref()?);
    Some(crate::plan::build(model, verdicts))
}
