//! The run stage: Plan + rendered jobs + data + state -> RunReport, exported
//! files and new state.
//!
//! One concern per file: `sources` reads and types the data, `unify` merges
//! sources and links people to accounts, `engine` runs the rendered SQL in
//! DataFusion, `deliver` writes files, `state` keeps the last delivered
//! membership crash-safely, `report` records the run. `run` executes the
//! rendered jobs; it does not re-derive audience SQL. What it adds is set
//! algebra the plan spells out: composition (merge, exclude, rank, split),
//! activation exclusions, consent, identities and policy verdicts.
//!
//! This module, `io` and the CLI are the only places of `run` that touch
//! files; the clock enters as `Options::now`.

pub mod deliver;
pub mod io;
pub mod report;
pub mod state;
pub mod time;

#[cfg(feature = "engine")]
pub mod engine;
#[cfg(feature = "engine")]
mod execute;
#[cfg(feature = "engine")]
pub mod sources;
#[cfg(feature = "engine")]
pub mod unify;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[cfg(feature = "engine")]
pub use execute::run;
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
}

/// The jobs `run` executes, as `render` emits them for the embedded engine.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Jobs {
    /// Statements run in order once the unified tables (one per schema,
    /// named after it) are registered, e.g. views of computed attributes.
    pub setup: Vec<String>,
    /// The feature table: one row per account with the column `key` (the
    /// account key), one boolean column per rule audience named after it,
    /// and one column per value composition reads (`rank.by`, `split.by`,
    /// `exclude_rule`), named by its CEL text.
    pub features: String,
    /// Per activation, the query of its candidate destination rows.
    pub activations: BTreeMap<String, ActivationJob>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ActivationJob {
    /// Columns: `account_key`; for person rows also `person_key` and
    /// `consent` (a bool: every consent requirement holds; the people filter
    /// is applied in the query); then one column per mapping, named after
    /// the mapping column, before any hashing (`run` normalises and hashes).
    pub rows: String,
}

/// The split bucket of an account, 0..100: the first 8 bytes of
/// SHA-256(`seed` + "/" + `key`) as a big-endian integer, modulo 100. The same
/// on every run and every engine.
pub fn bucket(seed: &str, key: &str) -> u8 {
    let digest = Sha256::digest(format!("{seed}/{key}").as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(first) % 100) as u8
}

#[cfg(test)]
mod tests {
    #[test]
    fn buckets_are_stable() {
        assert_eq!(super::bucket("s", "ACC-1"), super::bucket("s", "ACC-1"));
        let n = (0..1000)
            .filter(|i| super::bucket("seed", &format!("A{i}")) < 10)
            .count();
        assert!((60..140).contains(&n), "{n}");
    }
}
