//! `R0xxx` codes: problems found while running (`accord run`), in the data,
//! the run state or a delivery. They appear in the run report, each naming
//! its subject (source, activation, destination), with a location when one
//! is known (a data file and row, a spec file and line).
//!
//! `R00xx`: reading and typing the data. `R01xx`: state, locks and delivery.

declare_codes! {
    PATH_OUTSIDE_ROOT = "R0101", Error, "a path built from a name would leave its folder";
    PROJECT_LOCKED = "R0102", Error, "another run holds the project's lock";
    REMOVALS_HELD = "R0103", Error, "a delivery would remove more members than the activation allows";
    FOREIGN_STATE = "R0104", Error, "a state file belongs to another activation or format";
    LOG_PARTIAL_LINE = "R0105", Warning, "the run log ended in a partial line";
    DELIVERY_FAILED = "R0106", Error, "a delivery could not be written";
    RUN_FAILED = "R0107", Error, "the run stopped before its activations";
}
