//! `accord report [DIR] --out FILE`: the plan as one HTML page
//! (`crate::report`), with the audience sizes of the last run from the run
//! log. Needs no engine.

use std::path::PathBuf;

use super::{EXIT_OK, EXIT_USAGE};
use crate::run::history;

#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// The project folder (holding accord.toml).
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// The environment to plan for (from accord.toml).
    #[arg(long)]
    env: Option<String>,
    /// The date waivers are judged on (YYYY-MM-DD); defaults to today.
    #[arg(long)]
    today: Option<String>,
    /// Where to write the page.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

pub fn report_cmd(args: ReportArgs) -> u8 {
    let compiled = match super::compile_project(&args.dir, args.env, args.today.as_deref(), false) {
        Ok(compiled) => compiled,
        Err(code) => return code,
    };
    let plan = match super::plan_of(&compiled, &args.dir, "the project") {
        Ok(plan) => plan,
        Err(code) => return code,
    };
    // A plan exists only when the check got through governance.
    let (Some(model), Some(verdicts)) = (&compiled.model, &compiled.verdicts) else {
        eprintln!("error: the project has no governance verdicts to report");
        return super::EXIT_ERRORS;
    };
    let log = match history::read(&args.dir) {
        Ok(log) => log,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_USAGE;
        }
    };
    let today = match super::compile_options(None, args.today.as_deref(), false) {
        Ok(options) => options.today,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_USAGE;
        }
    };
    let generator = format!("accord {}", env!("CARGO_PKG_VERSION"));
    let inputs = crate::report::Inputs {
        plan: &plan,
        verdicts,
        waivers: crate::report::waivers(model, today),
        today,
        last_run: log.as_deref().and_then(history::last_sizes),
        generator: &generator,
    };
    let report = match crate::report::render(&inputs) {
        Ok(report) => report,
        Err(e) => {
            eprintln!("error: {e}");
            return super::EXIT_ERRORS;
        }
    };
    if let Err(e) = std::fs::write(&args.out, &report.html) {
        eprintln!("error: cannot write {}: {e}", args.out.display());
        return EXIT_USAGE;
    }
    eprintln!(
        "wrote {} ({} bytes; lineage: {} picture{}, {}, {} crossing{})",
        args.out.display(),
        report.html.len(),
        report.pictures,
        if report.pictures == 1 { "" } else { "s" },
        if report.lineage_mode == "whole" {
            "the whole project"
        } else {
            "one per activation"
        },
        report.crossings,
        if report.crossings == 1 { "" } else { "s" },
    );
    EXIT_OK
}
