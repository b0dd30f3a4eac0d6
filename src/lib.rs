//! accord: a governance-first compiler for B2B account audience activation.
//!
//! The pipeline, in order (each stage is a module; data flows one way):
//!
//! ```text
//! load      files on disk   -> SourceSet   (the only reader of spec files)
//! syntax    SourceSet       -> Syntax      (spanned spec definitions) + diagnostics
//! resolve   Syntax          -> Model       (names bound, CEL type-checked) + diagnostics
//! govern    Model + env     -> Verdicts    (policies, consent, waivers, with lineage)
//! plan      Model + Verdicts-> Plan        (deterministic, fingerprinted IR)
//! diff      Plan, Plan      -> PlanDiff    (what a change does, for review)
//! render    Plan + templates-> Jobs        (SQL per dialect, delivery manifests)
//! ```
//!
//! `semantics` is the reference meaning of every CEL expression, audience
//! and export; the SQL that `render` emits agrees with it
//! (tests/render_duckdb.rs).
//!
//! Front-end stages never fail: they return their output plus diagnostics.
//! Only `load` and the CLI touch the filesystem or the clock.

pub mod builtins;
pub mod catalog;
pub mod cel;
pub mod cli;
pub mod compile;
pub mod diag;
pub mod diff;
pub mod duration;
pub mod govern;
pub mod hash;
pub mod load;
pub mod plan;
pub mod render;
pub mod resolve;
pub mod run;
pub mod semantics;
pub mod source;
pub mod syntax;
pub mod time;
