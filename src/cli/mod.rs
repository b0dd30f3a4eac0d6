//! The command line: parses arguments, calls the stages through `compile`,
//! and prints. This is the only module that writes to stdout or stderr.

mod render;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::compile::{self, Options};
use crate::diag::codes;
pub use render::HumanStyle;

/// Exit codes shared by every command.
pub const EXIT_OK: u8 = 0;
pub const EXIT_ERRORS: u8 = 1;
pub const EXIT_USAGE: u8 = 2;

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
    /// Check a spec project: structure, references, types and policies.
    Check(CheckArgs),
    /// List the destination catalog, or show everything about one type.
    Destinations {
        /// A catalog type such as `linkedin_companies`.
        r#type: Option<String>,
        /// `text` for people, `json` for tools.
        #[arg(long, value_enum, default_value_t = DataFormat::Text)]
        format: DataFormat,
    },
    /// Explain a diagnostic code, such as `accord explain A0103`.
    Explain {
        /// A code (A0103), or `codes` to list them all.
        code: String,
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
        Command::Check(args) => check(args),
        Command::Explain { code } => explain(&code),
        Command::Destinations { r#type, format } => destinations(r#type.as_deref(), format),
    })
}

fn check(args: CheckArgs) -> u8 {
    let options = Options {
        environment: args.env.clone(),
    };
    let compiled = match compile::check(&args.dir, &options) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_USAGE;
        }
    };
    let diags = &compiled.diagnostics;
    let text = match args.format {
        Format::Human => {
            let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            let mut text =
                render::human(diags, &compiled.sources, HumanStyle { color, width: 100 });
            let files = compiled.sources.len();
            text.push_str(&format!(
                "checked {files} file{} in {}: {}\n",
                if files == 1 { "" } else { "s" },
                args.dir.display(),
                render::summary(diags)
            ));
            text
        }
        Format::Json => render::json(diags, &compiled.sources),
        Format::Sarif => render::sarif(diags, &compiled.sources),
        Format::Github => render::github(diags, &compiled.sources),
    };
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    if compiled.has_errors() {
        EXIT_ERRORS
    } else {
        EXIT_OK
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
    print!("{text}");
    EXIT_OK
}

fn explain(code: &str) -> u8 {
    if code == "codes" {
        for info in codes::all() {
            println!(
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
            println!("{}", info.explain.trim_end());
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

/// Rendering entry points for tests and benchmarks.
pub mod output {
    pub use super::render::{github, human, json, location, sarif, summary};
}
