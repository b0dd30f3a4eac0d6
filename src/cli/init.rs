//! `accord init [DIR]`: a small project that checks clean and runs, to
//! start from. The files are in `templates/init/`, compiled into the binary
//! so an installed `accord` needs nothing beside it.
//!
//! Nothing is overwritten: a folder that already holds an accord project, or
//! any of the files, is refused (exit 2) before anything is written. An
//! existing `.gitignore` gets the lines it lacks.

use std::path::{Path, PathBuf};

use super::{EXIT_OK, EXIT_USAGE};

/// (path in the project, contents); `{{ name }}` is the project's name.
const FILES: &[(&str, &str)] = &[
    (
        "accord.toml",
        include_str!("../../templates/init/accord.toml"),
    ),
    (
        "schemas.toml",
        include_str!("../../templates/init/schemas.toml"),
    ),
    (
        "governance.toml",
        include_str!("../../templates/init/governance.toml"),
    ),
    (
        "audiences.toml",
        include_str!("../../templates/init/audiences.toml"),
    ),
    (
        "activations.toml",
        include_str!("../../templates/init/activations.toml"),
    ),
    (
        "sources.toml",
        include_str!("../../templates/init/sources.toml"),
    ),
    (
        "data/accounts.csv",
        include_str!("../../templates/init/data/accounts.csv"),
    ),
    (
        "data/people.csv",
        include_str!("../../templates/init/data/people.csv"),
    ),
    ("README.md", include_str!("../../templates/init/README.md")),
];

/// What the project's `.gitignore` must hold (`templates/init/gitignore`).
const GITIGNORE: &str = include_str!("../../templates/init/gitignore");

/// The files written besides [`FILES`]: the editor support (Taplo's
/// configuration and the JSON Schema of this accord's spec language).
fn editor_files() -> [(&'static str, String); 2] {
    [
        (
            ".taplo.toml",
            include_str!("../../templates/init/taplo.toml").to_string(),
        ),
        (crate::json_schema::FILE_NAME, crate::json_schema::text()),
    ]
}

#[derive(clap::Args, Debug)]
pub struct InitArgs {
    /// The folder to create the project in (created when missing).
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// The project's name; default: the folder's name.
    #[arg(long)]
    name: Option<String>,
}

pub fn init_cmd(args: InitArgs) -> u8 {
    match init(&args.dir, args.name.as_deref()) {
        Ok(written) => {
            for file in &written {
                outln!("created {}", file.display());
            }
            let dir = args.dir.display();
            outln!(
                "\nnext: `accord check {dir} --env dev`, then `accord run {dir} --env dev` (with the engine)"
            );
            EXIT_OK
        }
        Err(message) => {
            eprintln!("error: {message}");
            EXIT_USAGE
        }
    }
}

/// Writes the project into `dir`; the paths written, in order.
pub fn init(dir: &Path, name: Option<&str>) -> Result<Vec<PathBuf>, String> {
    if dir.join("accord.toml").exists() {
        return Err(format!(
            "{} already holds an accord project (accord.toml); nothing was written",
            dir.display()
        ));
    }
    let editor_files = editor_files();
    let files: Vec<(&str, &str)> = FILES
        .iter()
        .copied()
        .chain(
            editor_files
                .iter()
                .map(|(path, text)| (*path, text.as_str())),
        )
        .collect();
    let taken: Vec<String> = files
        .iter()
        .filter(|(path, _)| dir.join(path).exists())
        .map(|(path, _)| path.to_string())
        .collect();
    if !taken.is_empty() {
        return Err(format!(
            "{} already has {}; nothing was written (init never overwrites a file)",
            dir.display(),
            taken.join(", ")
        ));
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let name = match name {
        Some(name) => name.to_string(),
        None => project_name(dir),
    };
    let mut written = Vec::new();
    for (path, contents) in files {
        let target = dir.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        std::fs::write(&target, contents.replace("{{ name }}", &name))
            .map_err(|e| format!("cannot write {}: {e}", target.display()))?;
        written.push(target);
    }
    let gitignore = dir.join(".gitignore");
    let existing = std::fs::read_to_string(&gitignore).unwrap_or_default();
    let missing: Vec<&str> = GITIGNORE
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter(|l| !existing.lines().any(|e| e.trim() == l.trim()))
        .collect();
    if !missing.is_empty() {
        let text = if existing.is_empty() {
            GITIGNORE.to_string()
        } else {
            let sep = if existing.ends_with('\n') { "" } else { "\n" };
            format!("{existing}{sep}{}\n", missing.join("\n"))
        };
        std::fs::write(&gitignore, text)
            .map_err(|e| format!("cannot write {}: {e}", gitignore.display()))?;
        written.push(gitignore);
    }
    Ok(written)
}

/// The folder's name as a project name: letters, digits, `-` and `_`.
fn project_name(dir: &Path) -> String {
    let folder = dir
        .canonicalize()
        .ok()
        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default();
    let name: String = folder
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let name = name.trim_matches('-').to_string();
    if name.is_empty() {
        "my-project".to_string()
    } else {
        name
    }
}
