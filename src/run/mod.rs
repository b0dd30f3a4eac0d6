//! The run stage: Plan + rendered jobs + data + state -> RunReport, exported
//! files and new state.
//!
//! One concern per file: `files` locates a source's files, `sources` reads
//! and types the data, `stale` says which stale sources block which activations, `unify` merges
//! sources and links people to accounts, `engine` runs the rendered SQL in
//! DataFusion, `columns` brings destination rows to the Arrow columns files
//! are written from, `deliver` encodes files and writes them through a store,
//! `file_targets` picks that store (a folder, a bucket or SFTP server, or a
//! dry run's recorder), `local_store` is the folder one, `members` holds an
//! activation's membership as columns (key, payload, payload hash),
//! `member_batches` the batches it comes in (held, or spilled past a
//! budget), `delta`
//! computes the changes between two of them, `state` keeps the last delivered
//! membership crash-safely (the store's records and the members files),
//! `schedule` says when an activation is due (pure,
//! like `report`, outside the engine gate), `lock` holds the project lock,
//! `log` appends the run log, `alerts` judges and sends the alerts after the
//! activations, `report` records the run (and `metrics` writes its counters
//! for a metrics collector), `error` says what went wrong. `run`
//! executes the rendered jobs (`sql/datafusion/...` from `render`); it does
//! not re-derive audience SQL. What it adds is what the destination needs:
//! per-audience membership state and changes, identities, policy verdicts,
//! files.
//!
//! Everything but `report`, `history` and `schedule` needs the embedded engine (the `engine`
//! feature): the report is what commands without it (reading the run log)
//! share. Many modules touch files (`sources` reads the data, `state`,
//! `deliver`, `lock` and `log` write through `io`, which holds the crash
//! test hook). The run never reads the spec files: the CLI passes the plan
//! and the definitions' places (`Places`) from what it compiled. The clock enters as `Options::now`, except
//! the wall-clock start the lock file records and the report's durations.

pub mod history;
pub mod metrics;
pub mod report;
pub mod schedule;

#[cfg(feature = "engine")]
pub mod alerts;
#[cfg(feature = "engine")]
pub mod api;
#[cfg(feature = "engine")]
pub mod columns;
#[cfg(feature = "engine")]
pub mod deliver;
#[cfg(feature = "engine")]
pub mod delta;
#[cfg(feature = "engine")]
pub mod engine;
#[cfg(feature = "engine")]
pub mod error;
#[cfg(feature = "engine")]
mod execute;
#[cfg(feature = "engine")]
pub mod explain;
#[cfg(feature = "engine")]
pub mod file_targets;
#[cfg(feature = "engine")]
pub mod files;
#[cfg(feature = "engine")]
pub mod io;
#[cfg(feature = "engine")]
pub mod local_store;
#[cfg(feature = "engine")]
pub mod lock;
#[cfg(feature = "engine")]
pub mod log;
#[cfg(feature = "engine")]
pub mod member_batches;
#[cfg(feature = "engine")]
pub mod members;
#[cfg(feature = "engine")]
pub mod memberships;
#[cfg(feature = "engine")]
pub mod sources;
#[cfg(feature = "engine")]
mod stale;
#[cfg(feature = "engine")]
pub mod state;
// Seeded random inputs for the unit tests (the change set, the key check).
#[cfg(all(test, feature = "engine"))]
mod test_random;
#[cfg(feature = "engine")]
pub mod unify;
#[cfg(feature = "engine")]
pub mod watch;

#[cfg(feature = "engine")]
pub use error::{Places, RunError};
#[cfg(feature = "engine")]
pub use execute::{
    Evaluation, encode_delivery, evaluate, evaluate_in, evaluate_with, run, run_held,
};
pub use report::{ActivationStatus, RunReport, RunStatus};

/// What the caller chose, as values.
#[cfg(feature = "engine")]
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// The evaluation time (`now` in rules, freshness, run ids).
    pub now: crate::time::Micros,
    /// Evaluate and report, deliver nothing, change no state.
    pub preview: bool,
    /// Send nothing that leaves the machine (`--dry-run`, or the
    /// environment's `delivery = "dry-run"`): describe the requests under
    /// `.accord/runs/`, keep the store as it is.
    pub dry_run: bool,
    /// The share of sent members the destination may reject before the
    /// activation fails (`--max-reject-ratio`, default 0).
    pub max_reject_ratio: f64,
    /// Write file deliveries under this folder instead of each destination's
    /// own location (`<out>/<destination>/...`).
    pub out: Option<std::path::PathBuf>,
    /// The crash test hook (see `io`): abort before the N+1-th file operation.
    pub fault_after: Option<u64>,
    /// Changes an API delivery plans and sends per work item
    /// (`ACCORD_API_CHUNK`, a test hook like the crash test's, so that tests
    /// cross chunk edges on small data); `None`: `api::CHUNK`.
    pub api_chunk: Option<usize>,
    /// Takes an activation's members this many export rows at a time and
    /// spills every batch (`ACCORD_SPILL_MEMBERS_BY`, a test hook like
    /// `api_chunk`, so that tests cross batch edges and read members back
    /// from a spill file on small data); `None`: batches of 131,072 rows,
    /// spilled only under a memory limit.
    pub spill_members_by: Option<usize>,
    /// Wait for the project lock (`lock`) instead of refusing to run when
    /// another run holds it.
    pub wait: bool,
    /// Activations whose removals may exceed their `max_removed_ratio` in
    /// this run (`--allow-removals NAME`).
    pub allow_removals: std::collections::BTreeSet<String>,
    /// Called with a short phrase as the run moves on (the CLI draws a
    /// progress line on a terminal with it).
    pub progress: Option<fn(&str)>,
    /// Where the definitions are written, to name `file:line` when the
    /// engine fails on one; the caller has compiled the specs, the run does
    /// not read them again. Empty: messages name no place.
    pub places: Places,
    /// Which activations this run considers and whether their schedules
    /// decide (`--all`, `--activation NAME`).
    pub select: Select,
    /// The engine that runs the rendered SQL (`--engine`, or the
    /// environment's `engine`).
    pub engine: engine::Choice,
}

/// The activations a run considers, and whether their schedules decide.
#[cfg(feature = "engine")]
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Select {
    /// Every activation, each delivered when its schedule is due.
    #[default]
    Due,
    /// Every activation, due whatever its schedule says (`--all`).
    All,
    /// Only these activations, due whatever their schedules say
    /// (`--activation NAME`, repeatable); the others are not in the run.
    Only(std::collections::BTreeSet<String>),
}
