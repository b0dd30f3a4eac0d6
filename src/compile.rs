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
}

impl Compiled {
    pub fn has_errors(&self) -> bool {
        diag::has_errors(&self.diagnostics)
    }
}

pub fn check(root: &Path, options: &Options) -> Result<Compiled, LoadError> {
    let sources = load::load(root)?;
    let compiled = check_sources(sources, options);
    if let (Some(env), Some(model)) = (&options.environment, &compiled.model)
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
    diag::sort(&mut diagnostics);
    Compiled {
        sources,
        model: Some(model),
        verdicts,
        diagnostics,
    }
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
    let (model, verdicts) = (compiled.model.as_ref()?, compiled.verdicts.as_ref()?);
    Some(crate::plan::build(model, verdicts))
}
