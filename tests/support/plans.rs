//! The plan of a spec project as the tests build it: checked for one
//! environment on a fixed day (2026-11-28), so no test reads the clock.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use accord::compile::{self, Options};
use accord::plan::Plan;

/// The day every test plans on.
pub const TODAY: &str = "2026-11-28";

/// The crate root: `specs/` and `tests/` are relative to it.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The check options of environment `env` on [`TODAY`].
pub fn options(env: &str) -> Options {
    Options {
        environment: Some(env.into()),
        today: compile::parse_date(TODAY),
        ..Options::default()
    }
}

/// The plan of the project in `dir` (absolute, or relative to the crate
/// root) for `env`; panics, naming the folder, when it does not load or
/// has errors.
pub fn plan_of(dir: impl AsRef<Path>, env: &str) -> Plan {
    let dir = root().join(dir);
    let compiled = compile::check(&dir, &options(env))
        .unwrap_or_else(|e| panic!("{} does not load: {e:?}", dir.display()));
    compile::plan(&compiled).unwrap_or_else(|| panic!("{} has no plan", dir.display()))
}

/// The plan of the project in `dir` for `env` and its jobs rendered for the
/// embedded engine (the `datafusion` dialect), as `accord run` renders them;
/// panics on a render problem.
pub fn datafusion_jobs(dir: impl AsRef<Path>, env: &str) -> (Plan, accord::render::Jobs) {
    let plan = plan_of(dir, env);
    let (jobs, problems) = accord::render::render(
        &plan,
        &accord::render::Options {
            dialects: vec!["datafusion".into()],
            ..accord::render::Options::default()
        },
    );
    assert!(problems.is_empty(), "{problems:?}");
    (plan, jobs)
}
