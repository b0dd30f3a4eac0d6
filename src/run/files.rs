//! Locating a source's files: a file, a folder or a glob under the
//! project, with symbolic links followed and the broken ones named (R0002,
//! R0003).

use std::path::{Path, PathBuf};

use globset::{GlobBuilder, GlobMatcher};

use super::report::RunDiagnostic;
use crate::diag::codes;

/// Whether a source path is a glob rather than a file or a folder.
fn is_glob(path: &str) -> bool {
    path.contains(['*', '?', '[', '{'])
}

/// A source glob, matched against paths relative to the folder it starts
/// in, with `/` between parts: `*` and `?` stay within one part, `**`
/// crosses any number of folders (`data/**` is every file under `data`),
/// `[abc]` is one of the characters and `{a,b}` one of the alternatives.
pub fn glob(pattern: &str) -> Result<GlobMatcher, globset::Error> {
    Ok(GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()?
        .compile_matcher())
}

/// A glob source path split where the walk starts: the folders before the
/// first part with a pattern, and the pattern, which matches paths
/// relative to them (`data/**/*.csv` -> `data`, `**/*.csv`). `None` for a
/// path without a pattern.
pub fn glob_base(path: &str) -> Option<(String, String)> {
    if !is_glob(path) {
        return None;
    }
    let parts: Vec<&str> = path.split('/').collect();
    let first_glob = parts.iter().position(|p| is_glob(p)).unwrap_or(0);
    Some((parts[..first_glob].join("/"), parts[first_glob..].join("/")))
}

/// The files of a source path: a file, a folder (its files of the source's
/// format, recursively) or a glob ([`glob`]), sorted; hidden files
/// (temporary files of writers) are skipped. Symbolic links to files and
/// folders are followed (a link is how a shared export is often placed in
/// a project); a link that points nowhere (R0002) or to a folder that holds
/// it (R0003) is a diagnostic naming the link, never skipped silently.
pub fn resolve(
    root: &Path,
    source: &str,
    path: &str,
    format: &str,
) -> Result<(Vec<PathBuf>, Vec<RunDiagnostic>), String> {
    let full = root.join(path);
    let has_glob = is_glob(path);
    if !has_glob {
        if full.is_file() {
            return Ok((vec![full], Vec::new()));
        }
        if !full.is_dir() {
            if full.symlink_metadata().is_ok() {
                return Err(format!(
                    "{path} is a symbolic link to {}, which does not exist",
                    std::fs::read_link(&full)
                        .map(|t| format!("`{}`", t.display()))
                        .unwrap_or_else(|_| "a path".into())
                ));
            }
            return Err(format!("{path}: no such file or folder"));
        }
    }
    let (base, pattern) = match glob_base(path) {
        Some((base, pattern)) => {
            let pattern = glob(&pattern).map_err(|e| format!("{path}: not a glob: {e}"))?;
            (root.join(base), Some(pattern))
        }
        None => (full, None),
    };
    let relative = |p: &Path| {
        p.strip_prefix(&base)
            .unwrap_or(p)
            .to_string_lossy()
            .replace('\\', "/")
    };
    let wanted = |p: &Path| match &pattern {
        Some(pattern) => pattern.is_match(relative(p)),
        None => format_of(p).as_deref() == Some(format),
    };
    let shown = |p: &Path| {
        p.strip_prefix(root)
            .unwrap_or(p)
            .to_string_lossy()
            .replace('\\', "/")
    };
    let mut files = Vec::new();
    let mut problems = Vec::new();
    for entry in walkdir::WalkDir::new(&base)
        .follow_links(true)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.'))
    {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                let Some(link) = e.path().map(Path::to_path_buf) else {
                    return Err(format!("{path}: {e}"));
                };
                // Hidden entries are skipped like hidden files (an editor's
                // lock file is a dangling link named `.#NAME`).
                let hidden = link
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'));
                if hidden {
                    continue;
                }
                if let Some(ancestor) = e.loop_ancestor() {
                    problems.push(
                        RunDiagnostic::new(
                            codes::run::DATA_LINK_LOOP,
                            format!(
                                "source `{source}`: the symbolic link {} leads back to {}, a folder that holds it",
                                shown(&link),
                                shown(ancestor)
                            ),
                        )
                        .at(shown(&link))
                        .help("remove the link, or point it to a folder outside the source's folder"),
                    );
                    continue;
                }
                let dangling = link
                    .symlink_metadata()
                    .is_ok_and(|m| m.file_type().is_symlink())
                    && !link.exists();
                if dangling {
                    if !wanted(&link) {
                        continue;
                    }
                    let target = std::fs::read_link(&link)
                        .map(|t| format!("`{}`", t.display()))
                        .unwrap_or_else(|_| "a path".into());
                    problems.push(
                        RunDiagnostic::new(
                            codes::run::DANGLING_DATA_LINK,
                            format!(
                                "source `{source}`: the symbolic link {} points to {target}, which does not exist",
                                shown(&link)
                            ),
                        )
                        .at(shown(&link))
                        .help("restore the link's target, point the link to the file's new place, or remove the link"),
                    );
                    continue;
                }
                return Err(format!("{path}: {e}"));
            }
        };
        if entry.file_type().is_file() && wanted(entry.path()) {
            files.push(entry.into_path());
        }
    }
    if files.is_empty() && problems.is_empty() {
        return Err(format!("{path}: no {format} files"));
    }
    Ok((files, problems))
}

/// `csv`, `jsonl` or `parquet`, from a file name (`.gz` not supported).
pub fn format_of(path: &Path) -> Option<String> {
    let ext = path.extension()?.to_string_lossy().to_ascii_lowercase();
    match ext.as_str() {
        "csv" => Some("csv".into()),
        "jsonl" | "ndjson" | "json" => Some("jsonl".into()),
        "parquet" => Some("parquet".into()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        let m = |g: &str, p: &str| glob(g).expect("a glob").is_match(p);
        assert!(m("*.jsonl", "2026-06.jsonl"));
        assert!(!m("*.jsonl", "a/2026-06.jsonl"), "`*` stays in one folder");
        assert!(m("**/*.csv", "a/b/x.csv"));
        assert!(m("**/*.csv", "x.csv"));
        assert!(m("**", "x.csv"), "`**` alone is every file");
        assert!(m("**", "a/b/x.csv"));
        assert!(m("{a,b}.csv", "a.csv") && m("{a,b}.csv", "b.csv"));
        assert!(!m("{a,b}.csv", "{a,b}.csv"), "braces are alternatives");
        assert!(m("2026-0[1-6].csv", "2026-03.csv"));
        assert!(!m("2026-0[1-6].csv", "2026-07.csv"));
        assert!(glob("{a,b").is_err());
    }

    #[test]
    fn a_folder_glob_and_alternatives_find_their_files() {
        let dir = std::env::temp_dir().join(format!("accord-files-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for file in [
            "data/a.csv",
            "data/sub/b.csv",
            "data/c.jsonl",
            "other/x.csv",
        ] {
            let path = dir.join(file);
            std::fs::create_dir_all(path.parent().expect("a folder")).expect("mkdir");
            std::fs::write(&path, "id\n1\n").expect("write");
        }
        let names = |pattern: &str| -> Vec<String> {
            let (files, problems) = resolve(&dir, "s", pattern, "csv").expect("files");
            assert!(problems.is_empty(), "{problems:?}");
            files
                .iter()
                .map(|f| f.strip_prefix(&dir).expect("inside").display().to_string())
                .collect()
        };
        assert_eq!(
            names("data/**"),
            ["data/a.csv", "data/c.jsonl", "data/sub/b.csv"]
        );
        assert_eq!(names("data/**/*.csv"), ["data/a.csv", "data/sub/b.csv"]);
        assert_eq!(names("{data,other}/*.csv"), ["data/a.csv", "other/x.csv"]);
        assert_eq!(names("data/{a,c}.*"), ["data/a.csv", "data/c.jsonl"]);
        let _ = std::fs::remove_dir_all(dir);
    }
}
