//! accord: a governance-first compiler for B2B account audience activation.
//!
//! The pipeline, in order (each stage is a module; data flows one way, and
//! `tests/layering.rs` fails when a module uses a later one; the whole stack,
//! with what each module takes and gives, is in docs/architecture.md):
//!
//! ```text
//! load      files on disk    -> SourceSet  (the only reader of spec files)
//! syntax    SourceSet        -> Syntax     (spanned spec definitions) + diagnostics
//! resolve   Syntax           -> Model      (names bound, CEL checked once into typed trees) + diagnostics
//! govern    Model + env      -> Verdicts   (policies, consent, waivers, with lineage)
//! plan      Model + Verdicts -> Plan       (deterministic, fingerprinted IR)
//! semantics typed trees      -> values     (the reference meaning of expressions, audiences, exports)
//! render    Plan + templates -> Jobs       (SQL per dialect, delivery manifests)
//! diff      Plan, Plan       -> PlanDiff   (what a change does, for review)
//! store     run memory       -> .accord/store.db (ledger, journal, file state; behind `deliver`)
//! deliver   changes + store -> requests (vendor APIs; behind the `deliver` feature)
//! run       Plan + Jobs + data -> RunReport (behind the `engine` feature)
//! report    Plan + Verdicts + run log -> one HTML page (tables, filters, lineage pictures)
//! ```
//!
//! The SQL that `render` emits agrees with `semantics` (the differential
//! tests run both on the same data).
//!
//! Front-end stages never fail: they return their output plus diagnostics.
//! Only `load` reads spec files; only `run` and the CLI touch other files.
//! The evaluation time (`now`, `today`) comes from the CLI as a value; the
//! run reads the wall clock only to stamp its lock and a monotonic clock to
//! time its phases, so two runs at one `--now` deliver the same changes.

pub mod builtins;
pub mod catalog;
pub mod cel;
pub mod cli;
pub mod closed_set;
pub mod compile;
#[cfg(feature = "deliver")]
pub mod deliver;
pub mod diag;
pub mod diff;
pub mod duration;
pub mod exit;
pub mod faults;
pub mod file_layout;
pub mod govern;
pub mod hash;
pub mod host_key;
pub mod json_schema;
pub mod layout;
pub mod load;
pub mod memory_limit;
pub mod plan;
pub mod render;
pub mod report;
pub mod resolve;
pub mod run;
pub mod semantics;
pub mod source;
#[cfg(feature = "deliver")]
pub mod store;
pub mod syntax;
pub mod time;
