//! Reading a spec project from disk: the only reader of spec files.
//!
//! Input: a project folder. Output: a [`SourceSet`] of every `*.toml` file
//! below it, with paths relative to the folder and `/`-separated, sorted.
//! Hidden folders (`.git`, `.accord`) and output folders (`out`, `build`,
//! `target`) are skipped, so generated files never feed back into a check.

use std::path::{Path, PathBuf};

use crate::source::{SourceFile, SourceSet};
use crate::syntax::PROJECT_FILE;

/// Folders below the project root that hold output, never specs.
pub const OUTPUT_FOLDERS: &[&str] = &["out", "build", "target"];

/// A problem reading the project: a usage or I/O error (exit code 2), as
/// opposed to a diagnostic about the specs' content.
#[derive(Debug)]
pub struct LoadError {
    pub message: String,
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

pub fn load(root: &Path) -> Result<SourceSet, LoadError> {
    if !root.is_dir() {
        return Err(LoadError {
            message: format!("{} is not a folder", root.display()),
        });
    }
    if !root.join(PROJECT_FILE).is_file() {
        return Err(LoadError {
            message: format!(
                "{} is not an accord project: it has no {PROJECT_FILE}",
                root.display()
            ),
        });
    }
    let mut files = Vec::new();
    let walker = walkdir::WalkDir::new(root)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|entry| entry.depth() == 0 || !is_skipped(entry, root));
    for entry in walker {
        let entry = entry.map_err(|e| LoadError {
            message: format!("cannot read {}: {e}", e.path().unwrap_or(root).display()),
        })?;
        let path = entry.path();
        if !entry.file_type().is_file() || path.extension().is_none_or(|ext| ext != "toml") {
            continue;
        }
        let text = std::fs::read_to_string(path).map_err(|e| LoadError {
            message: format!("cannot read {}: {e}", path.display()),
        })?;
        files.push(SourceFile::new(relative_path(root, path), text));
    }
    Ok(SourceSet::new(files))
}

fn is_skipped(entry: &walkdir::DirEntry, root: &Path) -> bool {
    let name = entry.file_name().to_string_lossy();
    if name.starts_with('.') {
        return true;
    }
    entry.file_type().is_dir()
        && entry.path().parent() == Some(root)
        && OUTPUT_FOLDERS.contains(&name.as_ref())
}

/// The path below the root with `/` separators, so output is the same on
/// every platform.
fn relative_path(root: &Path, path: &Path) -> String {
    let relative: PathBuf = path.strip_prefix(root).unwrap_or(path).to_path_buf();
    relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// Reads the project in `root` as it was at git revision `rev`, into memory:
/// the spec files tracked under the project folder at that revision, with
/// the same paths and skip rules as [`load`]. Runs `git`; the working tree
/// is not read.
pub fn load_git(root: &Path, rev: &str) -> Result<SourceSet, LoadError> {
    let git = |dir: &Path, args: &[&str]| -> Result<Vec<u8>, LoadError> {
        let output = std::process::Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .output()
            .map_err(|e| LoadError {
                message: format!("cannot run git: {e}"),
            })?;
        if !output.status.success() {
            return Err(LoadError {
                message: format!(
                    "git {} failed: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&output.stderr).trim()
                ),
            });
        }
        Ok(output.stdout)
    };
    let text = |bytes: Vec<u8>| {
        String::from_utf8_lossy(&bytes)
            .trim_end_matches('\n')
            .to_string()
    };
    let top = PathBuf::from(text(git(root, &["rev-parse", "--show-toplevel"])?));
    let prefix = text(git(root, &["rev-parse", "--show-prefix"])?);
    let commit = text(git(
        root,
        &["rev-parse", "--verify", &format!("{rev}^{{commit}}")],
    )?);
    let pathspec = if prefix.is_empty() {
        "."
    } else {
        prefix.as_str()
    };
    let listing = git(
        &top,
        &["ls-tree", "-r", "--name-only", &commit, "--", pathspec],
    )?;
    let mut files = Vec::new();
    let mut has_project_file = false;
    for path in String::from_utf8_lossy(&listing).lines() {
        let Some(relative) = path.strip_prefix(prefix.as_str()) else {
            continue;
        };
        let parts: Vec<&str> = relative.split('/').collect();
        let hidden = parts.iter().any(|p| p.starts_with('.'));
        let output = parts.len() > 1 && OUTPUT_FOLDERS.contains(&parts[0]);
        if hidden || output || !relative.ends_with(".toml") {
            continue;
        }
        has_project_file |= relative == PROJECT_FILE;
        let bytes = git(&top, &["show", &format!("{commit}:{path}")])?;
        let text = String::from_utf8(bytes).map_err(|_| LoadError {
            message: format!("{path} at {rev} is not UTF-8"),
        })?;
        files.push(SourceFile::new(relative.to_string(), text));
    }
    if !has_project_file {
        return Err(LoadError {
            message: format!(
                "{} at {rev} is not an accord project: it has no {PROJECT_FILE}",
                root.display()
            ),
        });
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(SourceSet::new(files))
}
