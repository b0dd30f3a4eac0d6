//! `R0xxx` codes: problems found while running (`accord run`), in the data,
//! the run state or a delivery. They appear in the run report, each naming
//! its subject (source, activation, destination), with a location when one
//! is known (a data file and row, a spec file and line).
//!
//! `R00xx`: reading and typing the data. `R01xx`: state, locks and delivery.

declare_codes! {
}
