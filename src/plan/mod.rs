//! The plan stage: the activation plan IR, its builder, fingerprints and the
//! text view reviewers read.

pub mod build;
pub mod ir;

pub use build::build;

pub use ir::*;
