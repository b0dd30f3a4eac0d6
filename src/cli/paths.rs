//! How diagnostics name spec files: relative to the folder the command runs
//! in (or `--path-base`), not to the project. `accord check specs` run from
//! a repository's root says `specs/audiences/icp.toml`, the path GitHub
//! annotations, SARIF viewers and editors resolve from there.
//!
//! Pure but for reading the current folder and resolving symbolic links of
//! the two folders compared.

use std::path::{Component, Path, PathBuf};

/// The prefix that turns a project-relative path (`audiences/icp.toml`)
/// into one relative to `base` (default: the current folder): `specs/`,
/// `../other/specs/`, or empty when they are the same folder. A folder that
/// cannot be resolved leaves paths as they are (project-relative).
pub fn shown_prefix(project: &Path, base: Option<&Path>) -> String {
    let base = match base {
        Some(base) => base.to_path_buf(),
        None => match std::env::current_dir() {
            Ok(dir) => dir,
            Err(_) => return String::new(),
        },
    };
    let (Ok(project), Ok(base)) = (project.canonicalize(), base.canonicalize()) else {
        return String::new();
    };
    let relative = relative_to(&project, &base);
    let text = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/");
    if text.is_empty() {
        String::new()
    } else {
        format!("{text}/")
    }
}

/// `path` relative to `base`, both absolute: up from `base` to their
/// common ancestor (`..`), then down to `path`.
fn relative_to(path: &Path, base: &Path) -> PathBuf {
    let path: Vec<Component> = path.components().collect();
    let base: Vec<Component> = base.components().collect();
    let common = path.iter().zip(&base).take_while(|(a, b)| a == b).count();
    let mut out = PathBuf::new();
    for _ in common..base.len() {
        out.push("..");
    }
    for part in &path[common..] {
        out.push(part.as_os_str());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_relative_to_the_base() {
        let rel = |p: &str, b: &str| relative_to(Path::new(p), Path::new(b));
        assert_eq!(rel("/repo/specs", "/repo"), PathBuf::from("specs"));
        assert_eq!(rel("/repo/specs", "/repo/specs"), PathBuf::new());
        assert_eq!(rel("/repo/specs", "/repo/tools"), PathBuf::from("../specs"));
        assert_eq!(rel("/a/b", "/c/d"), PathBuf::from("../../a/b"));
    }

    #[test]
    fn the_prefix_ends_in_a_slash_or_is_empty() {
        let dir = std::env::temp_dir().join(format!("accord-paths-{}", std::process::id()));
        let specs = dir.join("repo/specs");
        std::fs::create_dir_all(&specs).expect("mkdir");
        let repo = dir.join("repo");
        assert_eq!(shown_prefix(&specs, Some(&repo)), "specs/");
        assert_eq!(shown_prefix(&specs, Some(&specs)), "");
        assert_eq!(shown_prefix(&repo, Some(&specs)), "../");
        assert_eq!(shown_prefix(&dir.join("gone"), Some(&repo)), "");
        let _ = std::fs::remove_dir_all(dir);
    }
}
