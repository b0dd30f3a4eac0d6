//! `accord render`: compiles the plan and writes the rendered jobs.
//!
//! The render stage returns the jobs as data; this module reads the user's
//! template folder and writes the files, the only I/O of rendering.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{EXIT_ERRORS, EXIT_OK, EXIT_USAGE};
use crate::compile;
use crate::render;

#[derive(clap::Args, Debug)]
pub struct RenderArgs {
    /// The project folder (holding accord.toml).
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// The environment to render for (from accord.toml).
    #[arg(long)]
    pub env: Option<String>,
    /// The folder to write the jobs to.
    #[arg(long, default_value = "build")]
    pub out: PathBuf,
    /// Dialects to render (repeatable); every dialect when omitted.
    #[arg(long = "dialect", value_parser = ["bigquery", "datafusion", "duckdb", "snowflake", "spark"])]
    pub dialects: Vec<String>,
    /// A folder of templates that override the built-in ones by file name.
    #[arg(long)]
    pub templates: Option<PathBuf>,
    /// The date waivers are judged on (YYYY-MM-DD); defaults to today.
    #[arg(long)]
    pub today: Option<String>,
}

pub fn render_cmd(args: RenderArgs) -> u8 {
    let compiled =
        match super::compile_project(&args.dir, args.env.clone(), args.today.as_deref(), false) {
            Ok(compiled) => compiled,
            Err(code) => return code,
        };
    let Some(plan) = compile::plan(&compiled) else {
        eprintln!(
            "error: {} has errors; `{}` shows them",
            args.dir.display(),
            super::suggest::command(
                &["check"],
                &args.dir,
                args.env.as_deref(),
                args.today.as_deref(),
                &[]
            )
        );
        return EXIT_ERRORS;
    };
    let templates = match args.templates.as_deref().map(read_templates) {
        Some(Ok(t)) => t,
        Some(Err(e)) => {
            eprintln!("error: {e}");
            return EXIT_USAGE;
        }
        None => BTreeMap::new(),
    };
    let (jobs, problems) = render::render(
        &plan,
        &render::Options {
            dialects: args.dialects.clone(),
            templates,
        },
    );
    for p in &problems {
        eprintln!("error[{}]: {}", p.code.as_str(), p.message);
        if let Some(help) = &p.help {
            eprintln!("  = help: {help}");
        }
    }
    if !problems.is_empty() {
        eprintln!("nothing written: {} problem(s)", problems.len());
        return EXIT_ERRORS;
    }
    for (path, text) in &jobs {
        let target = args.out.join(path);
        let written = target
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&target, text));
        if let Err(e) = written {
            eprintln!("error: cannot write {}: {e}", target.display());
            return EXIT_USAGE;
        }
    }
    outln!("rendered {} jobs to {}", jobs.len(), args.out.display());
    EXIT_OK
}

/// Every `*.tera` file of the folder, by file name.
fn read_templates(dir: &Path) -> Result<BTreeMap<String, String>, String> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot read templates folder {}: {e}", dir.display()))?;
    let mut out = BTreeMap::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if name.ends_with(".tera") {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            out.insert(name.to_string(), text);
        }
    }
    Ok(out)
}
