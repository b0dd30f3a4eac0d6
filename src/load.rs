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

use crate::source::PROJECT_FILE;
use crate::source::{BrokenLink, SourceFile, SourceSet};

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

impl std::error::Error for LoadError {}

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

/// For a walk error at a symbolic link: `Some` with the link and why it
/// cannot be followed (`Some(None)` for a dangling link that cannot hold
/// specs); `None` for any other error.
fn broken_link(root: &Path, error: &walkdir::Error) -> Option<Option<BrokenLink>> {
    let path = error.path()?;
    let is_link = path
        .symlink_metadata()
        .is_ok_and(|m| m.file_type().is_symlink());
    if let Some(ancestor) = error.loop_ancestor() {
        let target = relative_path(root, ancestor);
        let target = if target.is_empty() { "." } else { &target };
        return Some(Some(BrokenLink {
            path: relative_path(root, path),
            why: format!("it leads back to `{target}`, a folder it is in"),
            loops: true,
        }));
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
    Some(could_hold_specs.then(|| BrokenLink {
        path: relative_path(root, path),
        why: format!("it points to `{target}`, which does not exist"),
        loops: false,
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
/// the same paths and skip rules as [`load`], and symbolic links followed
/// the same way (within the repository: a revision holds nothing outside
/// it). Runs `git`; the working tree is not read.
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
    // The whole tree, not only the project's folder: a symbolic link in the
    // project may point anywhere in the repository. `-z`: paths verbatim.
    let listing = git(&top, &["ls-tree", "-r", "-z", &commit])?;
    let tree = GitTree::parse(&listing);
    let read = |path: &str| -> Result<String, LoadError> {
        let bytes = git(&top, &["show", &format!("{commit}:{path}")])?;
        String::from_utf8(bytes).map_err(|_| LoadError {
            message: format!("{path} at {rev} is not UTF-8"),
        })
    };
    let mut files = Vec::new();
    let mut broken_links = Vec::new();
    let mut has_project_file = false;
    for (path, mode) in &tree.entries {
        let Some(relative) = path.strip_prefix(prefix.as_str()) else {
            continue;
        };
        if is_skipped_path(relative) {
            continue;
        }
        if mode != GIT_LINK {
            if relative.ends_with(".toml") {
                has_project_file |= relative == PROJECT_FILE;
                files.push(SourceFile::new(relative.to_string(), read(path)?));
            }
            continue;
        }
        // Links are followed as `load` follows them on disk.
        match tree.follow(path, &read)? {
            Ok(Target::File(target)) => {
                if relative.ends_with(".toml") {
                    has_project_file |= relative == PROJECT_FILE;
                    files.push(SourceFile::new(relative.to_string(), read(&target)?));
                }
            }
            Ok(Target::Folder(target)) => {
                for (inner, inner_mode) in tree.below(&target) {
                    let rest = &inner[target.len() + 1..];
                    let linked = format!("{relative}/{rest}");
                    if is_skipped_path(&linked) || !linked.ends_with(".toml") {
                        continue;
                    }
                    // One level of links: a link inside a linked folder is
                    // read through `follow` too.
                    let source = if inner_mode == GIT_LINK {
                        match tree.follow(inner, &read)? {
                            Ok(Target::File(t)) => t,
                            Ok(Target::Folder(_)) => continue,
                            Err((why, loops)) => {
                                broken_links.push(BrokenLink {
                                    path: linked,
                                    why,
                                    loops,
                                });
                                continue;
                            }
                        }
                    } else {
                        inner.to_string()
                    };
                    files.push(SourceFile::new(linked, read(&source)?));
                }
            }
            Err((why, loops)) => {
                let could_hold_specs = relative.ends_with(".toml")
                    || !relative.rsplit('/').next().unwrap_or("").contains('.');
                if could_hold_specs || loops {
                    broken_links.push(BrokenLink {
                        path: relative.to_string(),
                        why,
                        loops,
                    });
                }
            }
        }
    }
    if !has_project_file {
        return Err(LoadError {
            message: format!(
                "{} at {rev} is not an accord project: it has no {PROJECT_FILE}",
                root.display()
            ),
        });
    }
    Ok(SourceSet::with_broken_links(files, broken_links))
}

/// The git mode of a symbolic link.
const GIT_LINK: &str = "120000";

/// Hidden folders and files, and the output folders, as [`load`] skips them.
fn is_skipped_path(relative: &str) -> bool {
    let parts: Vec<&str> = relative.split('/').collect();
    parts.iter().any(|p| p.starts_with('.'))
        || (parts.len() > 1 && OUTPUT_FOLDERS.contains(&parts[0]))
}

/// What a followed link leads to, by its path in the repository.
enum Target {
    File(String),
    Folder(String),
}

/// The files of a commit: path to git mode, sorted by path.
struct GitTree {
    entries: std::collections::BTreeMap<String, String>,
}

impl GitTree {
    /// `git ls-tree -r -z` output: `MODE TYPE OBJECT\tPATH\0` per file.
    fn parse(listing: &[u8]) -> GitTree {
        let entries = listing
            .split(|b| *b == 0)
            .filter_map(|entry| {
                let entry = String::from_utf8_lossy(entry);
                let (meta, path) = entry.split_once('\t')?;
                let mode = meta.split(' ').next()?;
                Some((path.to_string(), mode.to_string()))
            })
            .collect();
        GitTree { entries }
    }

    /// The files below folder `dir`, with their modes.
    fn below<'a>(&'a self, dir: &'a str) -> impl Iterator<Item = (&'a str, &'a str)> {
        let start = format!("{dir}/");
        self.entries
            .range(start.clone()..)
            .take_while(move |(p, _)| p.starts_with(&start))
            .map(|(p, m)| (p.as_str(), m.as_str()))
    }

    /// Follows the link at `path` (through chains of links, at most 40, as
    /// the OS does) to a file or folder of the tree; `Err` says why it
    /// cannot be followed. The outer `Result` is a git failure.
    fn follow(
        &self,
        path: &str,
        read: &dyn Fn(&str) -> Result<String, LoadError>,
    ) -> Result<Result<Target, (String, bool)>, LoadError> {
        let mut current = path.to_string();
        for _ in 0..40 {
            let target = read(&current)?;
            let parent = current.rsplit_once('/').map_or("", |(p, _)| p);
            let Some(resolved) = normalise(parent, target.trim_end_matches('\n')) else {
                return Ok(Err((
                    format!(
                        "it points to `{}`, outside the repository, which a revision does not hold",
                        target.trim_end_matches('\n')
                    ),
                    false,
                )));
            };
            if resolved.is_empty() {
                return Ok(Err((
                    "it leads back to the top of the repository, a folder it is in".into(),
                    true,
                )));
            }
            match self.entries.get(&resolved).map(String::as_str) {
                Some(GIT_LINK) => current = resolved,
                Some(_) => return Ok(Ok(Target::File(resolved))),
                None if self.below(&resolved).next().is_some() => {
                    if path.starts_with(&format!("{resolved}/")) {
                        return Ok(Err((
                            format!("it leads back to `{resolved}`, a folder it is in"),
                            true,
                        )));
                    }
                    return Ok(Ok(Target::Folder(resolved)));
                }
                None => {
                    return Ok(Err((
                        format!(
                            "it points to `{}`, which does not exist",
                            target.trim_end_matches('\n')
                        ),
                        false,
                    )));
                }
            }
        }
        Ok(Err((
            "it starts a chain of more than 40 links".into(),
            true,
        )))
    }
}

/// `parent/target` with `.` and `..` resolved, as a path from the top of
/// the repository; `None` for an absolute target or one that climbs out.
fn normalise(parent: &str, target: &str) -> Option<String> {
    if target.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = parent.split('/').filter(|p| !p.is_empty()).collect();
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            part => parts.push(part),
        }
    }
    Some(parts.join("/"))
}
