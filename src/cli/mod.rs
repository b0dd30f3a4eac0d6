//! The command line: parses arguments, calls the stages through `compile`,
//! and prints. This is the only module that writes to stdout or stderr.

/// `print!` that never panics: see [`write_stdout`]. Defined before the
/// submodules so they can use it.
macro_rules! out {
    ($($arg:tt)*) => { $crate::cli::write_stdout(&format!($($arg)*)) };
}

/// `println!` that never panics: see [`write_stdout`].
macro_rules! outln {
    ($($arg:tt)*) => { $crate::cli::write_stdout(&format!("{}\n", format_args!($($arg)*))) };
}

mod fmt;
mod init;
mod jobs;
mod paths;
mod render;
mod report;
mod run;
mod schema;
mod status;
mod suggest;
#[cfg(feature = "engine")]
mod watch;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::compile::{self, Options};
use crate::diag::codes;
pub use render::HumanStyle;

pub use crate::exit::{EXIT_ERRORS, EXIT_OK, EXIT_USAGE};

#[derive(Parser, Debug)]
#[command(
    name = "accord",
    version,
    about = "A governance-first compiler for B2B account audience activation"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Start a project: a schema pair, a label and its policy, an audience,
    /// a file destination, an activation and sample data, ready to check
    /// and run.
    Init(init::InitArgs),
    /// Check a spec project: structure, references, types and policies.
    Check(CheckArgs),
    /// Write every spec file in its canonical layout (keys in one order per
    /// kind, `=` aligned, comments kept); `--check` changes nothing and exits
    /// 1 with the files it would change.
    Fmt(fmt::FmtArgs),
    /// Compile the activation plan: what will be activated where, with which
    /// data. `--out FILE` writes the plan file, `--check FILE` fails when the
    /// committed plan file differs from the compiled plan.
    Plan(PlanArgs),
    /// What a change does: two plan files, or the project at a git revision
    /// against the working tree (`--base REV`). Exit 0 no change, 1 error,
    /// 2 changed.
    Diff(DiffArgs),
    /// Render the plan into jobs: audience and export SQL per dialect,
    /// delivery manifests.
    Render(jobs::RenderArgs),
    /// Run the plan on data with the embedded engine: read sources, evaluate
    /// audiences, deliver what changed, record the run.
    Run(run::RunArgs),
    /// Each activation's last runs and each audience's size trend, from the
    /// run log (`.accord/runs.jsonl`).
    Status(status::StatusArgs),
    /// Write the plan as one self-contained HTML page: activations,
    /// destinations and the labels reaching them with their verdicts,
    /// audiences with their last sizes, waivers, and a lineage picture.
    Report(report::ReportArgs),
    /// Print the JSON Schema of spec files (draft 2020-12), for editors'
    /// completion and validation; `--out FILE` writes it.
    Schema(schema::SchemaArgs),
    /// List the destination catalog, or show everything about one type.
    Destinations {
        /// A catalog type such as `linkedin_companies`.
        r#type: Option<String>,
        /// `text` for people, `json` for tools.
        #[arg(long, value_enum, default_value_t = DataFormat::Text)]
        format: DataFormat,
    },
    /// Explain a diagnostic code (`accord explain A0103`), why an activation
    /// is allowed or blocked (`accord explain activation NAME [DIR]`), why
    /// an account or a person is in or out of an audience (`accord explain
    /// account ID [DIR] --audience NAME`, `accord explain person ID [DIR]
    /// --audience NAME`), or why a person is or is not exported (`accord
    /// explain person ID [DIR] --activation NAME`); the last three with the
    /// engine.
    Explain {
        /// A code (A0103), `codes` to list them all, `activation NAME [DIR]`,
        /// `account ID [DIR]` or `person ID [DIR]`.
        #[arg(required = true, num_args = 1..=3)]
        words: Vec<String>,
        /// For `activation`: the environment to judge against.
        #[arg(long)]
        env: Option<String>,
        /// For `activation`: the date waivers are judged on (YYYY-MM-DD);
        /// defaults to today.
        #[arg(long)]
        today: Option<String>,
        /// For `activation`: also evaluate draft policies.
        #[arg(long)]
        drafts: bool,
        /// For `account ID [DIR]`: the audience (or `NAME.part`) to explain;
        /// for `person ID [DIR]`: the person audience.
        #[arg(long)]
        audience: Option<String>,
        /// For `person ID [DIR]`: the activation (of person rows) whose
        /// export of the person to explain.
        #[arg(long)]
        activation: Option<String>,
        /// For `account` and `person`: the evaluation time (RFC 3339);
        /// defaults to now.
        #[arg(long)]
        now: Option<String>,
        /// `text` for people, `json` (the verdict as data) for tools.
        #[arg(long, value_enum, default_value_t = DataFormat::Text)]
        format: DataFormat,
        #[command(flatten)]
        engine: run::EngineArgs,
    },
}

#[derive(clap::Args, Debug)]
struct CheckArgs {
    /// The project folder (holding accord.toml).
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// The environment to check against (from accord.toml).
    #[arg(long)]
    env: Option<String>,
    /// How to print diagnostics.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
    /// The date waivers are judged on (YYYY-MM-DD); defaults to today.
    #[arg(long)]
    today: Option<String>,
    /// Name files relative to this folder (default: the current one), so
    /// that CI annotations and editors find them.
    #[arg(long, value_name = "DIR")]
    path_base: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
struct PlanArgs {
    /// The project folder (holding accord.toml).
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// The environment to plan for (from accord.toml).
    #[arg(long)]
    env: Option<String>,
    /// The date waivers are judged on (YYYY-MM-DD); defaults to today.
    #[arg(long)]
    today: Option<String>,
    /// `text` for review, `json` for tools (the plan file's form).
    #[arg(long, value_enum, default_value_t = DataFormat::Text)]
    format: DataFormat,
    /// Write the plan file (JSON) here.
    #[arg(long, conflicts_with = "check")]
    out: Option<PathBuf>,
    /// Compare with this committed plan file; exit 1 with the diff when they differ.
    #[arg(long)]
    check: Option<PathBuf>,
    /// List every policy verdict in the text plan, the allowed ones too
    /// (counted by default; the JSON plan always lists them).
    #[arg(long)]
    verbose: bool,
}

#[derive(clap::Args, Debug)]
struct DiffArgs {
    /// Two plan files (OLD NEW); with `--base`, the project folder.
    #[arg(num_args = 0..=2)]
    paths: Vec<PathBuf>,
    /// Compare the project at this git revision with the working tree.
    #[arg(long)]
    base: Option<String>,
    /// With `--base`: the environment to plan for.
    #[arg(long)]
    env: Option<String>,
    /// With `--base`: the date waivers are judged on (YYYY-MM-DD).
    #[arg(long)]
    today: Option<String>,
    /// `text` for review, `markdown` for a pull-request comment, `json` for
    /// tools.
    #[arg(long, value_enum, default_value_t = DiffFormat::Text)]
    format: DiffFormat,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum DiffFormat {
    Text,
    Markdown,
    Json,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum DataFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum Format {
    Human,
    Json,
    Sarif,
    Github,
}

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_USAGE } else { EXIT_OK });
        }
    };
    ExitCode::from(match cli.command {
        Command::Init(args) => init::init_cmd(args),
        Command::Check(args) => check(args),
        Command::Fmt(args) => fmt::fmt_cmd(args),
        Command::Plan(args) => plan(args),
        Command::Diff(args) => diff(args),
        Command::Render(args) => jobs::render_cmd(args),
        Command::Run(args) => run::run_cmd(args),
        Command::Status(args) => status::status_cmd(args),
        Command::Report(args) => report::report_cmd(args),
        Command::Explain {
            words,
            env,
            today,
            drafts,
            format,
            audience,
            activation,
            now,
            engine,
        } => match words.as_slice() {
            [first, rest @ ..] if first == "account" || first == "person" => {
                let args = run::ExplainDataArgs {
                    env,
                    audience,
                    activation,
                    now,
                    format,
                    engine,
                };
                if first == "account" {
                    run::explain_account_cmd(rest, args)
                } else {
                    run::explain_person_cmd(rest, args)
                }
            }
            [first, rest @ ..] if first == "activation" => explain_activation(
                rest,
                ExplainOptions {
                    env,
                    today,
                    drafts,
                    format,
                },
            ),
            [code] => explain(code),
            _ => {
                eprintln!(
                    "error: `accord explain` takes a code, `activation NAME [DIR]`, `account ID [DIR] --audience NAME` or `person ID [DIR] --audience NAME | --activation NAME`"
                );
                EXIT_USAGE
            }
        },
        Command::Schema(args) => schema::schema_cmd(args),
        Command::Destinations { r#type, format } => destinations(r#type.as_deref(), format),
    })
}

/// The compile options every project command takes: the environment, and the
/// date waivers are judged on (`--today`, else the system date). The CLI
/// reads the clock (here, and for `accord run`'s `now`) and hands stages the
/// date or time as a value; the run itself reads the wall clock only for
/// its lock note and its durations.
pub(crate) fn compile_options(
    environment: Option<String>,
    today_arg: Option<&str>,
    evaluate_drafts: bool,
) -> Result<Options, String> {
    Ok(Options {
        environment,
        today: Some(today(today_arg)?),
        evaluate_drafts,
    })
}

/// Loads and checks the project in `dir`; usage and I/O errors are printed
/// here and become the exit code.
pub(crate) fn compile_project(
    dir: &std::path::Path,
    environment: Option<String>,
    today_arg: Option<&str>,
    evaluate_drafts: bool,
) -> Result<compile::Compiled, u8> {
    let options = compile_options(environment, today_arg, evaluate_drafts).map_err(|e| {
        eprintln!("error: {e}");
        EXIT_USAGE
    })?;
    compile::check(dir, &options).map_err(|e| {
        eprintln!("error: {e}");
        EXIT_USAGE
    })
}

fn today(arg: Option<&str>) -> Result<toml::value::Date, String> {
    match arg {
        Some(text) => compile::parse_date(text)
            .ok_or_else(|| format!("`--today {text}` is not a date such as 2026-11-28")),
        None => {
            let micros = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX));
            Ok(civil_date(micros))
        }
    }
}

/// The UTC date of an instant.
fn civil_date(now: crate::time::Micros) -> toml::value::Date {
    use chrono::Datelike as _;
    let date = crate::time::utc(now).map(|t| t.date()).unwrap_or_default();
    toml::value::Date {
        year: u16::try_from(date.year()).unwrap_or_default(),
        month: date.month() as u8,
        day: date.day() as u8,
    }
}

struct ExplainOptions {
    env: Option<String>,
    today: Option<String>,
    drafts: bool,
    format: DataFormat,
}

fn explain_activation(rest: &[String], args: ExplainOptions) -> u8 {
    let Some(name) = rest.first() else {
        eprintln!("error: `accord explain activation` needs an activation name");
        return EXIT_USAGE;
    };
    let dir = PathBuf::from(rest.get(1).map_or(".", String::as_str));
    let compiled = match compile_project(&dir, args.env, args.today.as_deref(), args.drafts) {
        Ok(compiled) => compiled,
        Err(code) => return code,
    };
    let Some(verdicts) = &compiled.verdicts else {
        let style = HumanStyle {
            color: false,
            width: 100,
        };
        let sources = compiled
            .sources
            .shown_from(&paths::shown_prefix(&dir, None));
        out!("{}", render::human(&compiled.diagnostics, &sources, style));
        eprintln!("error: the project has errors; fix them before explaining an activation");
        return EXIT_ERRORS;
    };
    let text = match args.format {
        DataFormat::Text => crate::govern::explain::activation(verdicts, name),
        DataFormat::Json => verdicts
            .activations
            .get(name.as_str())
            .and_then(|v| serde_json::to_string_pretty(v).ok())
            .map(|t| t + "\n"),
    };
    match text {
        Some(text) => {
            out!("{text}");
            EXIT_OK
        }
        None => {
            let hint =
                crate::diag::did_you_mean(name, verdicts.activations.keys().map(String::as_str))
                    .map(|c| format!(" (did you mean `{c}`?)"))
                    .unwrap_or_default();
            eprintln!("error: `{name}` is not an activation{hint}");
            EXIT_USAGE
        }
    }
}

fn check(args: CheckArgs) -> u8 {
    let compiled = match compile_project(&args.dir, args.env.clone(), args.today.as_deref(), false)
    {
        Ok(compiled) => compiled,
        Err(code) => return code,
    };
    let diags = &compiled.diagnostics;
    let sources = compiled
        .sources
        .shown_from(&paths::shown_prefix(&args.dir, args.path_base.as_deref()));
    let text = match args.format {
        Format::Human => {
            let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            let mut text = render::human(diags, &sources, HumanStyle { color, width: 100 });
            let files = compiled.sources.len();
            text.push_str(&format!(
                "checked {files} file{} in {}: {}\n",
                if files == 1 { "" } else { "s" },
                args.dir.display(),
                render::summary(diags)
            ));
            text
        }
        Format::Json => render::json(diags, &sources),
        Format::Sarif => render::sarif(diags, &sources),
        Format::Github => render::github(diags, &sources),
    };
    write_stdout(&text);
    if compiled.has_errors() {
        EXIT_ERRORS
    } else {
        EXIT_OK
    }
}

/// `diff`'s exit codes (terraform's detailed exit code).
pub const EXIT_DIFF_SAME: u8 = 0;
pub const EXIT_DIFF_ERROR: u8 = 1;
pub const EXIT_DIFF_CHANGED: u8 = 2;

/// Compiles a plan, printing diagnostics to stderr when there is none.
/// `Err` carries the exit code.
fn compile_plan(
    compiled: Result<compile::Compiled, crate::load::LoadError>,
    dir: &std::path::Path,
    what: &str,
    error_code: u8,
) -> Result<crate::plan::Plan, u8> {
    let compiled = compiled.map_err(|e| {
        eprintln!("error: {e}");
        error_code
    })?;
    plan_of(&compiled, dir, what)
}

/// The plan of a checked project; when it has errors, its diagnostics on
/// stderr and `Err` with the exit code.
pub(crate) fn plan_of(
    compiled: &compile::Compiled,
    dir: &std::path::Path,
    what: &str,
) -> Result<crate::plan::Plan, u8> {
    if let Some(plan) = compile::plan(compiled) {
        return Ok(plan);
    }
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let diags = &compiled.diagnostics;
    let sources = compiled.sources.shown_from(&paths::shown_prefix(dir, None));
    eprint!(
        "{}",
        render::human(diags, &sources, HumanStyle { color, width: 100 })
    );
    eprintln!(
        "error: {what} has errors, so it has no plan: {}",
        render::summary(diags)
    );
    Err(EXIT_ERRORS)
}

fn plan(args: PlanArgs) -> u8 {
    let options = match compile_options(args.env.clone(), args.today.as_deref(), false) {
        Ok(options) => options,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_USAGE;
        }
    };
    let plan = match compile_plan(
        compile::check(&args.dir, &options),
        &args.dir,
        "the project",
        EXIT_USAGE,
    ) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let json = crate::plan::to_json(&plan);
    if let Some(path) = &args.check {
        let committed = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: cannot read {}: {e}", path.display());
                return EXIT_ERRORS;
            }
        };
        if committed == json {
            eprintln!("plan {} is up to date", path.display());
            return EXIT_OK;
        }
        let text = match crate::plan::read(&committed) {
            Ok(old) => crate::diff::render(&crate::diff::diff(&old, &plan)),
            Err(e) => format!("{} cannot be compared: {e}\n", path.display()),
        };
        out!("{text}");
        let out = path.display().to_string();
        eprintln!(
            "error: the compiled plan differs from {}; review the changes above and run `{}` to update it",
            path.display(),
            suggest::command(
                &["plan"],
                &args.dir,
                args.env.as_deref(),
                args.today.as_deref(),
                &["--out", &out]
            )
        );
        return EXIT_ERRORS;
    }
    if let Some(path) = &args.out {
        if let Err(e) = std::fs::write(path, &json) {
            eprintln!("error: cannot write {}: {e}", path.display());
            return EXIT_USAGE;
        }
        eprintln!("wrote {}", path.display());
        return EXIT_OK;
    }
    match args.format {
        DataFormat::Text => out!("{}", crate::plan::text::render_with(&plan, args.verbose)),
        DataFormat::Json => out!("{json}"),
    }
    EXIT_OK
}

fn diff(args: DiffArgs) -> u8 {
    let plans = match (&args.base, args.paths.as_slice()) {
        (Some(base), paths) if paths.len() <= 1 => {
            let dir = paths.first().cloned().unwrap_or_else(|| PathBuf::from("."));
            let options = match compile_options(args.env.clone(), args.today.as_deref(), false) {
                Ok(options) => options,
                Err(e) => {
                    eprintln!("error: {e}");
                    return EXIT_DIFF_ERROR;
                }
            };
            let old = compile_plan(
                compile::check_revision(&dir, base, &options),
                &dir,
                &format!("the project at {base}"),
                EXIT_DIFF_ERROR,
            );
            let new = compile_plan(
                compile::check(&dir, &options),
                &dir,
                "the working tree",
                EXIT_DIFF_ERROR,
            );
            old.and_then(|o| new.map(|n| (o, n)))
        }
        (None, [old, new]) => {
            let read = |path: &PathBuf| -> Result<crate::plan::Plan, u8> {
                std::fs::read_to_string(path)
                    .map_err(|e| e.to_string())
                    .and_then(|t| crate::plan::read(&t))
                    .map_err(|e| {
                        eprintln!("error: {}: {e}", path.display());
                        EXIT_DIFF_ERROR
                    })
            };
            read(old).and_then(|o| read(new).map(|n| (o, n)))
        }
        _ => {
            eprintln!("error: `accord diff` takes two plan files, or `--base REV [DIR]`");
            return EXIT_DIFF_ERROR;
        }
    };
    let (old, new) = match plans {
        Ok(p) => p,
        Err(_) => return EXIT_DIFF_ERROR,
    };
    let d = crate::diff::diff(&old, &new);
    match args.format {
        DiffFormat::Text => out!("{}", crate::diff::render(&d)),
        DiffFormat::Markdown => out!("{}", crate::diff::markdown::render(&d)),
        DiffFormat::Json => {
            out!(
                "{}",
                serde_json::to_string_pretty(&d).unwrap_or_default() + "\n"
            )
        }
    }
    if d.is_empty() {
        EXIT_DIFF_SAME
    } else {
        EXIT_DIFF_CHANGED
    }
}

fn destinations(name: Option<&str>, format: DataFormat) -> u8 {
    use crate::catalog;
    let text = match (name, format) {
        (None, DataFormat::Text) => catalog::render_list(),
        (None, DataFormat::Json) => {
            serde_json::to_string_pretty(catalog::all()).unwrap_or_default() + "\n"
        }
        (Some(name), format) => match catalog::lookup(name) {
            Some(ty) if format == DataFormat::Text => catalog::render_one(ty),
            Some(ty) => serde_json::to_string_pretty(ty).unwrap_or_default() + "\n",
            None => {
                let hint = crate::diag::did_you_mean(name, catalog::names())
                    .map(|c| format!(" (did you mean `{c}`?)"))
                    .unwrap_or_default();
                eprintln!(
                    "error: `{name}` is not a destination type{hint}; `accord destinations` lists them"
                );
                return EXIT_USAGE;
            }
        },
    };
    out!("{text}");
    EXIT_OK
}

fn explain(code: &str) -> u8 {
    if code == "codes" {
        for info in codes::all() {
            outln!(
                "{}  {:<8} {}",
                info.code,
                info.severity.as_str(),
                info.title
            );
        }
        return EXIT_OK;
    }
    match codes::lookup(code) {
        Some(info) => {
            outln!("{}", info.explain.trim_end());
            EXIT_OK
        }
        None => {
            let all: Vec<&str> = codes::all().map(|c| c.code).collect();
            let hint = crate::diag::did_you_mean(code, all.iter().copied())
                .map(|c| format!(" (did you mean {c}?)"))
                .unwrap_or_default();
            eprintln!(
                "error: `{code}` is not an accord diagnostic code{hint}; `accord explain codes` lists them"
            );
            EXIT_USAGE
        }
    }
}

/// Writes to stdout. A reader that stops reading (`accord explain G0001 |
/// head`) closes the pipe: the rest of the output is dropped without a word
/// and the command ends with its own exit code, where `print!` would panic.
/// Any other write error is reported once on stderr.
pub(crate) fn write_stdout(text: &str) {
    use std::sync::atomic::{AtomicBool, Ordering};
    static FAILED: AtomicBool = AtomicBool::new(false);
    if FAILED.load(Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        FAILED.store(true, Ordering::Relaxed);
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            let _ = writeln!(std::io::stderr(), "error: cannot write the output: {e}");
        }
    }
}

/// Rendering entry points for tests and benchmarks.
pub mod output {
    pub use super::render::{github, human, json, location, sarif, summary};
}
