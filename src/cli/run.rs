//! `accord run`: compile, render, and run the jobs on the embedded engine.
//!
//! The clock and the crash-test hook (`ACCORD_FAULT_AFTER`, see
//! `run::io`) are read here, and handed to the run stage as values.

use std::path::PathBuf;

use super::EXIT_USAGE;
#[cfg(feature = "engine")]
use super::{EXIT_ERRORS, EXIT_OK};

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// The project folder (holding accord.toml).
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// The environment to run in (from accord.toml).
    #[arg(long)]
    pub env: Option<String>,
    /// Evaluate and print audience sizes and overlaps; deliver nothing.
    #[arg(long)]
    pub preview: bool,
    /// The evaluation time (RFC 3339); defaults to now.
    #[arg(long)]
    pub now: Option<String>,
    /// Write file deliveries under this folder (`DIR/<destination>/...`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// `text` for people, `json` (the run report) for tools.
    #[arg(long, value_enum, default_value_t = super::DataFormat::Text)]
    pub format: super::DataFormat,
}

#[cfg(not(feature = "engine"))]
pub fn run_cmd(_args: RunArgs) -> u8 {
    eprintln!(
        "error: this accord was built without the embedded engine, which `accord run` needs\n  \
         = help: install it with `cargo install --path . --features engine` \
         (or `cargo run --release --features engine -- run ...`)"
    );
    EXIT_USAGE
}

#[cfg(feature = "engine")]
pub fn run_cmd(args: RunArgs) -> u8 {
    use crate::compile::{self, Options};
    use crate::run::{self, time};

    let now = match args.now.as_deref() {
        Some(text) => match time::parse_timestamp(text) {
            Some(t) => t,
            None => {
                eprintln!("error: `--now {text}` is not a time such as 2026-11-28T12:00:00Z");
                return EXIT_USAGE;
            }
        },
        None => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as i64),
    };
    let today = time::format_timestamp(now);
    let options = Options {
        environment: args.env.clone(),
        today: compile::parse_date(&today[..10]),
        ..Options::default()
    };
    let compiled = match compile::check(&args.dir, &options) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_USAGE;
        }
    };
    let Some(plan) = compile::plan(&compiled) else {
        eprintln!(
            "error: {} has errors; `accord check {} --env ...` shows them",
            args.dir.display(),
            args.dir.display()
        );
        return EXIT_ERRORS;
    };
    let (jobs, problems) = crate::render::render(
        &plan,
        &crate::render::Options {
            dialects: vec!["datafusion".into()],
            ..crate::render::Options::default()
        },
    );
    if !problems.is_empty() {
        for p in &problems {
            eprintln!("error[{}]: {}", p.code.as_str(), p.message);
        }
        return EXIT_ERRORS;
    }
    // The crash-test hook: see `run::io`.
    let fault_after = std::env::var("ACCORD_FAULT_AFTER")
        .ok()
        .and_then(|v| v.parse().ok());
    let run_options = run::Options {
        now,
        preview: args.preview,
        out: args.out.clone(),
        fault_after,
    };
    match run::run(&plan, &jobs, &args.dir, &run_options) {
        Ok(report) => {
            match args.format {
                super::DataFormat::Text => print!("{}", report.render_text()),
                super::DataFormat::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&report).unwrap_or_default()
                ),
            }
            let failed = report.activations.values().any(|a| a.status == "failed");
            if failed { EXIT_ERRORS } else { EXIT_OK }
        }
        Err(e) => {
            eprintln!("error: {e}");
            EXIT_USAGE
        }
    }
}
