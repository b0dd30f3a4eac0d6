//! The reference semantics: what every CEL expression, audience and export
//! means, evaluated in Rust one record at a time. The SQL that `render`
//! emits, and so every engine's run, must agree with it; the differential
//! tests (tests/render_duckdb.rs, tests/run_differential.rs) hold them
//! together.
//!
//! - `eval`: the CEL interpreter (values, records, the missing-value rule);
//! - `normalise`: identity normalisation of exported values (email, gmail,
//!   phone, domain), which the SQL spells per dialect;
//! - `audiences`: computed attributes, rules and composition over a data set;
//! - `export`: the rows an activation exports;
//! - `model`: the plan as both the interpreter and the lowering read it.
//!
//! Depends on the CEL front end (the typed tree), the plan and the base
//! modules only: never on render, run or the CLI, which depend on it.

mod audiences;
pub mod eval;
mod export;
mod model;
pub mod normalise;

pub use audiences::{
    Memberships, account_memberships, add_computed, bucket, people_with_accounts,
    person_memberships,
};
pub use eval::{EvalCtx, Record, Value};
pub use export::{ExportRow, Exported, export_rows};
pub use model::{Model, audience_column, audience_order, audience_references, computed_order};
