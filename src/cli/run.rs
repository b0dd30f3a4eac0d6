//! `accord run`: compile, render, and run the jobs on the embedded engine
//! or on Spark (`--engine spark`).
//!
//! The clock (`now`) and the crash-test hook (`ACCORD_FAULT_AFTER`, see
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
    /// Let this activation's removals through the removal guard
    /// (`max_removed_ratio`) in this run; repeatable.
    #[arg(long = "allow-removals", value_name = "ACTIVATION")]
    pub allow_removals: Vec<String>,
    /// Wait for another run of the project to finish instead of refusing
    /// to start while it holds the project lock.
    #[arg(long)]
    pub wait: bool,
    /// Send nothing to APIs or remote storage: write the exact requests
    /// (credentials redacted) under `.accord/runs/`; the store does not
    /// advance. The environment's `delivery = "dry-run"` does the same.
    #[arg(long = "dry-run")]
    pub dry_run: bool,
    /// Fail an activation when more than this share of the members it sent
    /// were rejected by the destination (0 to 1; invalid rows, never sent,
    /// do not count).
    #[arg(long = "max-reject-ratio", value_name = "RATIO", default_value_t = 0.0)]
    pub max_reject_ratio: f64,
    /// Deliver every activation, whether its schedule is due or not.
    #[arg(long, conflicts_with = "activation")]
    pub all: bool,
    /// Run only this activation, whether its schedule is due or not;
    /// repeatable. The others are left out of the run.
    #[arg(long, value_name = "NAME")]
    pub activation: Vec<String>,
    /// Write the run's counters to FILE in the OpenMetrics text format
    /// (for node_exporter's textfile collector), replacing it atomically.
    #[arg(long, value_name = "FILE")]
    pub metrics: Option<PathBuf>,
    /// Keep running: hold the project lock, run again whenever a local
    /// source's files change and at least every `--poll-interval` (remote
    /// sources, schedules), one line per run; stop on SIGINT or SIGTERM.
    #[arg(long, conflicts_with_all = ["preview", "now", "allow_removals", "metrics"])]
    pub watch: bool,
    /// With `--watch`: the longest wait between two runs, such as `30s` or
    /// `5m` [default: 60s].
    #[arg(long = "poll-interval", value_name = "DURATION", requires = "watch")]
    pub poll_interval: Option<String>,
    #[command(flatten)]
    pub engine: EngineArgs,
}

/// Which engine runs the jobs, when not the environment's.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct EngineArgs {
    /// The engine that runs the jobs: `datafusion` (embedded) or `spark`
    /// (a Spark Connect server) [default: the environment's `engine`, else
    /// datafusion].
    #[arg(long, value_enum)]
    pub engine: Option<EngineName>,
    /// With `--engine spark`: the Spark Connect server, `sc://HOST:PORT`
    /// [default: the environment's `spark_remote`].
    #[arg(long = "spark-remote", value_name = "URL")]
    pub spark_remote: Option<String>,
    /// How much memory the embedded engine's queries may hold before their
    /// sorts and groupings spill to disk: `4GB`, `512MiB`, or a share of the
    /// machine's memory such as `50%` [default: the environment's
    /// `memory_limit`, else none].
    #[arg(long = "memory-limit", value_name = "SIZE")]
    pub memory_limit: Option<String>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum EngineName {
    Datafusion,
    Spark,
}

#[cfg(not(feature = "engine"))]
pub fn run_cmd(_args: RunArgs) -> u8 {
    run_cmd_missing_engine("accord run")
}

/// Options of `accord explain account` and `accord explain person`.
#[cfg_attr(not(feature = "engine"), allow(dead_code))]
pub struct ExplainDataArgs {
    pub env: Option<String>,
    pub audience: Option<String>,
    pub activation: Option<String>,
    pub now: Option<String>,
    pub format: super::DataFormat,
    pub engine: EngineArgs,
}

#[cfg(not(feature = "engine"))]
pub fn explain_account_cmd(_rest: &[String], _args: ExplainDataArgs) -> u8 {
    run_cmd_missing_engine("accord explain account")
}

#[cfg(not(feature = "engine"))]
pub fn explain_person_cmd(_rest: &[String], _args: ExplainDataArgs) -> u8 {
    run_cmd_missing_engine("accord explain person")
}

#[cfg(not(feature = "engine"))]
fn run_cmd_missing_engine(what: &str) -> u8 {
    eprintln!(
        "error: this accord was built without the embedded engine, which `{what}` needs\n  \
         = help: install it with `cargo install --path . --features engine` \
         (or `cargo run --release --features engine -- ...`)"
    );
    EXIT_USAGE
}

/// What a command on the engine needs from the specs: the plan, the
/// engine and its rendered jobs, where each definition is written (for the
/// engine's errors), and `now`.
#[cfg(feature = "engine")]
pub(super) struct Prepared {
    pub plan: crate::plan::Plan,
    pub jobs: crate::render::Jobs,
    pub places: crate::run::Places,
    pub now: i64,
    pub engine: crate::run::engine::Choice,
}

#[cfg(feature = "engine")]
impl Prepared {
    /// What an explanation of the project in `dir` evaluates.
    fn explaining<'a>(&'a self, dir: &'a std::path::Path) -> crate::run::explain::Context<'a> {
        crate::run::explain::Context {
            plan: &self.plan,
            jobs: &self.jobs,
            root: dir,
            now: self.now,
            places: &self.places,
            choice: &self.engine,
        }
    }
}

#[cfg(feature = "engine")]
pub(super) fn prepare(
    dir: &std::path::Path,
    env: Option<String>,
    now: Option<&str>,
    engine: &EngineArgs,
) -> Result<Prepared, u8> {
    use crate::compile::{self, Options};
    use crate::time;

    let now = match now {
        Some(text) => time::check_timestamp(text).map_err(|why| {
            eprintln!(
                "error: `--now {text}` is not a time: {why}\n  = help: write an RFC 3339 time such as 2026-11-28T12:00:00Z"
            );
            EXIT_USAGE
        })?,
        None => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as i64),
    };
    let today = time::format_timestamp(now);
    let check_command =
        super::suggest::command(&["check"], dir, env.as_deref(), Some(&today[..10]), &[]);
    let options = Options {
        environment: env,
        today: compile::parse_date(&today[..10]),
        ..Options::default()
    };
    let compiled = compile::check(dir, &options).map_err(|e| {
        eprintln!("error: {e}");
        EXIT_USAGE
    })?;
    let Some(plan) = compile::plan(&compiled) else {
        eprintln!(
            "error: {} has errors; `{check_command}` shows them",
            dir.display()
        );
        return Err(EXIT_ERRORS);
    };
    let engine = engine_choice(&plan, engine, dir).map_err(|(why, help)| {
        eprintln!("error: {why}\n  = help: {help}");
        EXIT_USAGE
    })?;
    let dialect = match engine {
        crate::run::engine::Choice::Embedded { .. } => "datafusion",
        crate::run::engine::Choice::Spark(_) => "spark",
    };
    let (jobs, problems) = crate::render::render(
        &plan,
        &crate::render::Options {
            dialects: vec![dialect.into()],
            ..crate::render::Options::default()
        },
    );
    if !problems.is_empty() {
        for p in &problems {
            eprintln!("error[{}]: {}", p.code.as_str(), p.message);
        }
        return Err(EXIT_ERRORS);
    }
    Ok(Prepared {
        plan,
        jobs,
        places: match &compiled.model {
            Some(model) => crate::run::Places::of_definitions(&model.syntax, &compiled.sources),
            None => crate::run::Places::default(),
        },
        now,
        engine,
    })
}

/// The engine of a command: `--engine` and `--spark-remote` over the
/// environment's `engine` and `spark_remote`; the token is read from where
/// `spark_token` says. An error is (what is wrong, how to fix it).
#[cfg(feature = "engine")]
fn engine_choice(
    plan: &crate::plan::Plan,
    args: &EngineArgs,
    root: &std::path::Path,
) -> Result<crate::run::engine::Choice, (String, String)> {
    use crate::run::engine::{Choice, SparkRemote};
    let settings = plan.engine.clone().unwrap_or_default();
    let spark = match args.engine {
        Some(name) => name == EngineName::Spark,
        None => settings.engine.as_deref() == Some("spark"),
    };
    if !spark {
        if let Some(remote) = &args.spark_remote {
            return Err((
                format!(
                    "`--spark-remote {remote}` is for the Spark engine, and this run uses the embedded one"
                ),
                "add `--engine spark`, or set `engine = \"spark\"` in the environment".into(),
            ));
        }
        // The flag over the environment's key, which `check` has read.
        let memory_limit = match args
            .memory_limit
            .as_deref()
            .or(settings.memory_limit.as_deref())
        {
            None => None,
            Some(text) => Some(crate::memory_limit::parse(text).map_err(|why| {
                (
                    format!("`--memory-limit {text}` is not a memory size: {why}"),
                    crate::memory_limit::HELP.into(),
                )
            })?),
        };
        return Ok(Choice::Embedded { memory_limit });
    }
    if let Some(limit) = &args.memory_limit {
        return Err((
            format!("`--memory-limit {limit}` is for the embedded engine, and this run uses Spark"),
            "set the memory of Spark's executors in Spark's own configuration (`spark.executor.memory`)".into(),
        ));
    }
    let Some(remote) = args.spark_remote.clone().or(settings.spark_remote) else {
        return Err((
            "the Spark engine needs a Spark Connect server".into(),
            "pass `--spark-remote sc://HOST:PORT`, or set `spark_remote` in the environment".into(),
        ));
    };
    if !remote.starts_with("sc://") {
        return Err((
            format!("`{remote}` is not a Spark Connect address"),
            "write it as `sc://HOST:PORT` (Spark Connect listens on 15002 by default)".into(),
        ));
    }
    let token = match &settings.spark_token {
        Some(reference) => Some(
            crate::deliver::secrets::read("spark_token", reference, root)
                .map_err(|why| (why, "set the variable or file `spark_token` names".into()))?,
        ),
        None => None,
    };
    // The tests' hook for small pieces of tables sent: see `run::engine::spark`.
    let piece_bytes = std::env::var("ACCORD_SPARK_PIECE_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n: &usize| n > 0)
        .unwrap_or(crate::run::engine::PIECE_BYTES);
    Ok(Choice::Spark(SparkRemote {
        remote,
        token,
        piece_bytes,
    }))
}

#[cfg(feature = "engine")]
pub fn explain_account_cmd(rest: &[String], args: ExplainDataArgs) -> u8 {
    let Some(id) = rest.first() else {
        eprintln!(
            "error: `accord explain account` needs an account id\n  = help: `accord explain account ID [DIR] --audience NAME`"
        );
        return EXIT_USAGE;
    };
    if let Some(activation) = &args.activation {
        eprintln!(
            "error: `accord explain account` takes `--audience NAME`, not `--activation {activation}`\n  = help: `accord explain person ID [DIR] --activation {activation}` explains a person's export"
        );
        return EXIT_USAGE;
    }
    let Some(audience) = args.audience else {
        eprintln!(
            "error: `accord explain account {id}` needs `--audience NAME`\n  = help: name the audience (or `NAME.part`) to explain the account's membership of"
        );
        return EXIT_USAGE;
    };
    let dir = PathBuf::from(rest.get(1).map_or(".", String::as_str));
    let p = match prepare(&dir, args.env, args.now.as_deref(), &args.engine) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let result = crate::run::explain::explain_account(&p.explaining(&dir), id, &audience);
    print_explanation(result, args.format, |e| e.render_text())
}

/// `accord explain person ID [DIR]`: with `--audience`, the person's
/// membership of a person audience; with `--activation`, why the person is
/// or is not exported.
#[cfg(feature = "engine")]
pub fn explain_person_cmd(rest: &[String], args: ExplainDataArgs) -> u8 {
    let usage = "`accord explain person ID [DIR] --activation NAME` (or `--audience NAME` for a person audience)";
    let Some(id) = rest.first() else {
        eprintln!("error: `accord explain person` needs a person id\n  = help: {usage}");
        return EXIT_USAGE;
    };
    let dir = PathBuf::from(rest.get(1).map_or(".", String::as_str));
    let target = match (args.audience, args.activation) {
        (Some(audience), None) => Ok(audience),
        (None, Some(activation)) => Err(activation),
        (Some(_), Some(_)) => {
            eprintln!(
                "error: `accord explain person {id}` takes `--audience` or `--activation`, not both\n  = help: {usage}"
            );
            return EXIT_USAGE;
        }
        (None, None) => {
            eprintln!(
                "error: `accord explain person {id}` needs `--activation NAME` or `--audience NAME`\n  = help: {usage}"
            );
            return EXIT_USAGE;
        }
    };
    let p = match prepare(&dir, args.env, args.now.as_deref(), &args.engine) {
        Ok(p) => p,
        Err(code) => return code,
    };
    match target {
        Ok(audience) => print_explanation(
            crate::run::explain::explain_person(&p.explaining(&dir), id, &audience),
            args.format,
            |e| e.render_text(),
        ),
        Err(activation) => print_explanation(
            crate::run::explain::explain_person_export(&p.explaining(&dir), id, &activation),
            args.format,
            |e| e.render_text(),
        ),
    }
}

/// Prints an explanation as text or JSON, or the problem with its help:
/// input the explanation cannot take is a usage error.
#[cfg(feature = "engine")]
fn print_explanation<T: serde::Serialize>(
    result: Result<T, crate::run::explain::Problem>,
    format: super::DataFormat,
    text: impl Fn(&T) -> String,
) -> u8 {
    match result {
        Ok(e) => {
            match format {
                super::DataFormat::Text => out!("{}", text(&e)),
                super::DataFormat::Json => {
                    outln!("{}", serde_json::to_string_pretty(&e).unwrap_or_default())
                }
            }
            EXIT_OK
        }
        Err(problem) => {
            eprintln!("error: {}", problem.message);
            if let Some(help) = &problem.help {
                eprintln!("  = help: {help}");
            }
            EXIT_USAGE
        }
    }
}

/// One progress line on stderr, redrawn in place.
#[cfg(feature = "engine")]
fn progress(what: &str) {
    use std::io::Write;
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "\r\x1b[K[accord run] {what}...");
    let _ = err.flush();
}

#[cfg(feature = "engine")]
pub fn run_cmd(args: RunArgs) -> u8 {
    use crate::run;

    let Prepared {
        plan,
        jobs,
        places,
        now,
        engine,
    } = match prepare(
        &args.dir,
        args.env.clone(),
        args.now.as_deref(),
        &args.engine,
    ) {
        Ok(p) => p,
        Err(code) => return code,
    };
    // The crash-test hook: see `run::io`.
    let fault_after = std::env::var("ACCORD_FAULT_AFTER")
        .ok()
        .and_then(|v| v.parse().ok());
    // The tests' hook for small chunks of API changes: see `run::api`.
    let api_chunk = std::env::var("ACCORD_API_CHUNK")
        .ok()
        .and_then(|v| v.parse().ok());
    // The tests' hook for small batches of members, spilled: see `run::execute`.
    let spill_members_by = std::env::var("ACCORD_SPILL_MEMBERS_BY")
        .ok()
        .and_then(|v| v.parse().ok());
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    // A name that is no activation would let nothing through, silently.
    for (flag, names) in [
        ("--allow-removals", &args.allow_removals),
        ("--activation", &args.activation),
    ] {
        if let Some(unknown) = names
            .iter()
            .find(|n| !plan.activations.contains_key(n.as_str()))
        {
            eprintln!(
                "error: `{flag} {unknown}`: the project has no activation `{unknown}`{}",
                crate::diag::did_you_mean(unknown, plan.activations.keys().map(String::as_str))
                    .map(|m| format!("; did you mean `{m}`?"))
                    .unwrap_or_default()
            );
            return EXIT_USAGE;
        }
    }
    let select = if args.all {
        run::Select::All
    } else if !args.activation.is_empty() {
        run::Select::Only(args.activation.iter().cloned().collect())
    } else {
        run::Select::Due
    };
    if !(0.0..=1.0).contains(&args.max_reject_ratio) {
        eprintln!(
            "error: `--max-reject-ratio {}`: a share between 0 and 1",
            args.max_reject_ratio
        );
        return EXIT_USAGE;
    }
    let run_options = run::Options {
        now,
        dry_run: args.dry_run,
        max_reject_ratio: args.max_reject_ratio,
        preview: args.preview,
        out: args.out.clone(),
        fault_after,
        api_chunk,
        spill_members_by,
        progress: terminal.then_some(progress as fn(&str)),
        wait: args.wait,
        allow_removals: args.allow_removals.iter().cloned().collect(),
        places,
        select,
        engine: engine.clone(),
    };
    if args.watch {
        let first = Prepared {
            plan,
            jobs,
            places: run_options.places.clone(),
            now,
            engine,
        };
        return super::watch::watch_cmd(&args, first, run_options);
    }
    let result = run::run(&plan, &jobs, &args.dir, &run_options);
    if terminal {
        // Clear the progress line.
        eprint!("\r\x1b[K");
    }
    let written = args.metrics.as_deref().map(|path| {
        let stopped;
        let report = match &result {
            Ok(report) => report,
            // A run that stopped still replaces the file: a collector
            // must not go on reading the last good run's figures.
            Err(_) => {
                stopped = run::RunReport {
                    status: run::RunStatus::Failed,
                    project: plan.project.clone(),
                    environment: plan.environment.clone(),
                    now: crate::time::format_timestamp(now),
                    ..run::RunReport::default()
                };
                &stopped
            }
        };
        write_metrics(path, report, &plan)
    });
    if let Some(Err(e)) = &written {
        eprintln!("error: {e}");
    }
    let metrics_failed = matches!(written, Some(Err(_)));
    match result {
        Ok(report) => {
            match args.format {
                super::DataFormat::Text => out!("{}", report.render_text()),
                super::DataFormat::Json => outln!(
                    "{}",
                    serde_json::to_string_pretty(&report).unwrap_or_default()
                ),
            }
            // The metrics file could not be written: an I/O error.
            if metrics_failed {
                return EXIT_USAGE;
            }
            report.exit_code()
        }
        // Stopped before its activations: usage, I/O or configuration.
        Err(stop) => {
            eprint!("{}", stop.diagnostic().to_text());
            EXIT_USAGE
        }
    }
}

/// `--metrics FILE`: the run's counters (`run::metrics`), written through
/// a temporary file renamed over FILE, so a collector reads the old file
/// or the new one, never a part.
#[cfg(feature = "engine")]
fn write_metrics(
    path: &std::path::Path,
    report: &crate::run::RunReport,
    plan: &crate::plan::Plan,
) -> Result<(), String> {
    let alerts = plan.alerts.keys().cloned().collect();
    let text = crate::run::metrics::render(report, &alerts);
    crate::run::io::write_atomic(path, text.as_bytes(), &crate::run::io::Faults::default())
        .map_err(|e| format!("`--metrics {}`: {e}", path.display()))
}
