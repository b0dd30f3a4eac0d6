//! Reading a spec project from disk: the only reader of spec files.
//!
//! Input: a project folder. Output: a [`SourceSet`] of every `*.toml` file
//! below it, with paths relative to the folder and `/`-separated, sorted.
//! Hidden folders (`.git`, `.accord`) and output folders (`out`, `build`,
//! `target`) are skipped, so generated files never feed back into a check.
//! Symbolic links are followed; one that dangles or loops is kept in the
//! [`SourceSet`] as a broken link, which `check` reports (`A0013`), so no
//! spec file is ever skipped without a word.

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
    let mut broken_links = Vec::new();
    // Symbolic links are followed (files and folders, inside or outside the
    // project): a spec reached through a link is a spec, and skipping it
    // would let a linked policy or waiver file silently stop applying. A
    // link that cannot be followed is recorded, so `check` reports it.
    let walker = walkdir::WalkDir::new(root)
        .follow_links(true)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|entry| entry.depth() == 0 || !is_skipped(entry, root));
    for entry in walker {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => match broken_link(root, &e) {
                Some(link) => {
                    broken_links.extend(link);
                    continue;
                }
                None => {
                    return Err(LoadError {
                        message: format!("cannot read {}: {e}", e.path().unwrap_or(root).display()),
                    });
                }
            },
        };
        let path = entry.path();
        if !entry.file_type().is_file() || path.extension().is_none_or(|ext| ext != "toml") {
            continue;
        }
        let text = std::fs::read_to_string(path).map_err(|e| LoadError {
            message: format!("cannot read {}: {e}", path.display()),
        })?;
        files.push(SourceFile::new(relative_path(root, path), text));
    }
    Ok(SourceSet::with_broken_links(files, broken_links))
}

/// For a walk error at a symbolic link: `Some` with the link's relative path
/// and why it cannot be followed (`Some(None)` for a dangling link that
/// cannot hold specs); `None` for any other error.
fn broken_link(root: &Path, error: &walkdir::Error) -> Option<Option<(String, String)>> {
    let path = error.path()?;
    let is_link = path
        .symlink_metadata()
        .is_ok_and(|m| m.file_type().is_symlink());
    if let Some(ancestor) = error.loop_ancestor() {
        let target = relative_path(root, ancestor);
        let target = if target.is_empty() { "." } else { &target };
        return Some(Some((
            relative_path(root, path),
            format!("it leads back to `{target}`, a folder it is in, so following it never ends"),
        )));
    }
    if !is_link || path.exists() {
        return None;
    }
    // A dangling link named like a spec file, or without an extension (it
    // may have been a folder of specs), may be hiding specs; a dangling link
    // to a data file is the run's business, where sources are read.
    let could_hold_specs = path.extension().is_none_or(|ext| ext == "toml");
    let target = std::fs::read_link(path)
        .map(|t| t.to_string_lossy().into_owned())
        .unwrap_or_default();
    Some(could_hold_specs.then(|| {
        (
            relative_path(root, path),
            format!("it points to `{target}`, which does not exist"),
        )
    }))
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
