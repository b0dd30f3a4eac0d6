//! The driver: runs the front-end stages in order and stops between stages
//! when one reported errors, so later stages never see a broken model.
//!
//! `check_sources` is pure (sources in, diagnostics out); `check` adds the
//! one filesystem read, through `load`.

use std::path::Path;

use crate::diag::{self, Diagnostic};
use crate::load::{self, LoadError};
use crate::resolve::{self, Model};
use crate::source::SourceSet;
use crate::syntax;

/// What the caller chose, as values (never read from the environment here).
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// The environment to check against; `None` checks the project alone.
    pub environment: Option<String>,
}

/// The front end's result: the model (when resolution ran) and every
/// diagnostic, sorted by place.
pub struct Compiled {
    pub sources: SourceSet,
    pub model: Option<Model>,
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

pub fn check_sources(sources: SourceSet, _options: &Options) -> Compiled {
    let (syntax, mut diagnostics) = syntax::parse(&sources);
    // Resolution runs even after syntax errors in some files: the other files
    // still bind, and users see every problem at once. Files that failed to
    // parse contributed nothing, so no cascade comes from them.
    let (model, resolve_diags) = resolve::resolve(syntax, &sources);
    diagnostics.extend(resolve_diags);
    diag::sort(&mut diagnostics);
    Compiled {
        sources,
        model: Some(model),
        diagnostics,
    }
}
