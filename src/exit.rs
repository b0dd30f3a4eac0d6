//! The process exit codes every command shares: what a script or a CI job
//! branches on. The CLI returns them; `run` computes its own from the report
//! (`RunReport::exit_code`), so both live below either.

/// Nothing wrong.
pub const EXIT_OK: u8 = 0;
/// The input has errors (a diagnostic of severity error, a failed, held or
/// blocked activation, a plan that differs from the committed one).
pub const EXIT_ERRORS: u8 = 1;
/// The command could not do its job: bad arguments, an unreadable project,
/// a run stopped before its activations.
pub const EXIT_USAGE: u8 = 2;
