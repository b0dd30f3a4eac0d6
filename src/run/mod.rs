//! The run stage: Plan + rendered jobs + data + state -> RunReport, exported
//! files and new state.
//!
//! One concern per file: `sources` reads and types the data, `unify` merges
//! sources and links people to accounts, `engine` runs the rendered SQL in
//! DataFusion, `deliver` writes files, `state` keeps the last delivered
//! membership crash-safely, `report` records the run. `run` executes the
//! rendered jobs (`sql/datafusion/...` from `render`); it does not re-derive
//! audience SQL. What it adds is what the destination needs: per-audience membership state and changes,
//! identities, policy verdicts, files.
//!
//! This module, `io` and the CLI are the only places of `run` that touch
//! files; the clock enters as `Options::now`.

pub mod deliver;
pub mod io;
pub mod lock;
pub mod report;
pub mod state;
// Timestamps are shared with the CEL interpreter: one parser for both.
pub use crate::time;

#[cfg(feature = "engine")]
pub mod engine;
#[cfg(feature = "engine")]
mod execute;
#[cfg(feature = "engine")]
pub mod explain;
#[cfg(feature = "engine")]
pub mod sources;
#[cfg(feature = "engine")]
pub mod unify;

use std::path::PathBuf;

#[cfg(feature = "engine")]
pub use execute::{Evaluation, evaluate, run};
pub use report::RunReport;

/// What the caller chose, as values.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// The evaluation time (`now` in rules, freshness, run ids).
    pub now: time::Micros,
    /// Evaluate and report, deliver nothing, change no state.
    pub preview: bool,
    /// Write file deliveries under this folder instead of each destination's
    /// own location (`<out>/<destination>/...`).
    pub out: Option<PathBuf>,
    /// The crash test hook (see `io`): abort before the N+1-th file operation.
    pub fault_after: Option<u64>,
    /// Wait for the project lock (`lock`) instead of refusing to run when
    /// another run holds it.
    pub wait: bool,
    /// Activations whose removals may exceed their `max_removed_ratio` in
    /// this run (`--allow-removals NAME`).
    pub allow_removals: std::collections::BTreeSet<String>,
    /// Called with a short phrase as the run moves on (the CLI draws a
    /// progress line on a terminal with it).
    pub progress: Option<fn(&str)>,
}
