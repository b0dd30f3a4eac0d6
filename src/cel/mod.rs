//! The CEL front end: parses CEL expressions (audience rules, computed
//! attributes, mappings, people filters, consent conditions) and type-checks
//! them against the schemas.
//!
//! Input: an expression's decoded text, a `CelEnv` (schemas as entities with
//! fields and links, audience names), a `Scope` (the variables in scope) and
//! the type the context expects. Output: `check` returns the expression's type
//! and references (`Checked`: fields read, collections traversed, audiences
//! referenced, whether it needs batch evaluation) plus `CelError`s with byte
//! ranges into the text; `spans` maps those ranges to the raw TOML literal.
//!
//! Invariants: `check` is a pure function that never panics; one mistake gives
//! one error; every error covers the whole offending sub-expression.

pub mod check;
pub mod depth;
pub mod env;
mod functions;
pub mod quiet;
mod ranges;
pub mod spans;
pub mod typed;
pub mod types;

pub use check::{CelError, Checked, FieldRead, check};
pub use env::{CelEnv, EntityDef, FieldDef, Scope};
pub use types::Type;
