//! The file operations of `run`'s I/O layer: atomic writes (temporary file,
//! fsync, rename, fsync of the folder), removals, and the proof that a path
//! built from a name stays in its folder.
//!
//! Every create, write, fsync and rename is one step of the crash test hook
//! (`crate::faults`, re-exported here for the run's writers): the crash test
//! (`tests/run_crash.rs`) kills the run before each of them in turn.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::error::RunError;
pub use crate::faults::Faults;

/// Writes `bytes` to `path` atomically: a reader sees the old file or the
/// new one, never a part. Creates missing parent folders.
pub fn write_atomic(path: &Path, bytes: &[u8], faults: &Faults) -> io::Result<()> {
    write_atomic_with(path, faults, |file| file.write_all(bytes))
}

/// [`write_atomic`], the content written by `write` into the temporary
/// file (a writer that streams, so the content need not be in memory).
pub fn write_atomic_with(
    path: &Path,
    faults: &Faults,
    write: impl FnOnce(&mut File) -> io::Result<()>,
) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    faults.step();
    fs::create_dir_all(dir)?;
    let tmp = temp_path(path);
    faults.step();
    let mut file = File::create(&tmp)?;
    faults.step();
    write(&mut file)?;
    faults.step();
    file.sync_all()?;
    drop(file);
    faults.step();
    fs::rename(&tmp, path)?;
    // Make the rename itself durable (not supported everywhere: best effort).
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Removes a file if it exists.
pub fn remove(path: &Path, faults: &Faults) -> io::Result<()> {
    faults.step();
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// A new folder for files a run makes and drops (copies of objects,
/// spilled rows, encoded deliveries) under `<root>/.accord/tmp/`, named
/// `<pid>-<label>-...` so that a later run can tell it from a live run's:
/// the folders of runs whose process is gone are removed first. The folder
/// is removed when the returned handle is dropped.
pub fn scratch_folder(
    root: &Path,
    label: &str,
    subject: &str,
) -> Result<tempfile::TempDir, RunError> {
    let tmp = inside(&root.join(".accord"), "tmp", "", subject)?;
    remove_orphan_folders(&tmp);
    let failed = |e: io::Error| RunError::Data {
        reason: format!(
            "{subject}: cannot make a folder under {}: {e}",
            tmp.display()
        ),
    };
    fs::create_dir_all(&tmp).map_err(failed)?;
    tempfile::Builder::new()
        .prefix(&format!("{}-{label}-", std::process::id()))
        .tempdir_in(&tmp)
        .map_err(failed)
}

/// Removes the folders (`<pid>-<label>-...` under `tmp`) of runs whose
/// process is gone, killed before they could remove their own. Where
/// processes cannot be looked up (no `/proc`), nothing is removed.
fn remove_orphan_folders(tmp: &Path) {
    let proc = Path::new("/proc");
    if !proc.join("self").exists() {
        return;
    }
    let Ok(entries) = fs::read_dir(tmp) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let owner = name.to_str().and_then(|n| n.split('-').next());
        let Some(pid) = owner.filter(|p| p.parse::<u32>().is_ok()) else {
            continue;
        };
        if !proc.join(pid).exists() {
            // Best effort: a folder that cannot be removed now is removed
            // by a later run.
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// Joins a file or folder name derived from a definition name (`name` and a
/// fixed `suffix` such as `.pending.json`) to `root`, and proves the result
/// is a direct child of `root`: names come from specs, and a name such as
/// `../../x`, `""` or `.` must never make the runner write outside the folder
/// it means (the checker rejects such names too; this is the runner's own
/// defence, for plans built any other way). A symbolic link already sitting
/// at the result is refused as well, since writing through it would leave
/// `root` just the same. `subject` names the definition in the message
/// (`activation \`x\``).
pub fn inside(root: &Path, name: &str, suffix: &str, subject: &str) -> Result<PathBuf, RunError> {
    let refuse = |why: &'static str| RunError::Outside {
        subject: subject.to_string(),
        folder: root.to_path_buf(),
        why,
        link: None,
    };
    if name.is_empty() {
        return Err(refuse("it is empty"));
    }
    if name == "." || name == ".." {
        return Err(refuse("it names a folder itself"));
    }
    if name.contains(['/', '\\']) {
        return Err(refuse("it holds a path separator"));
    }
    if name.chars().any(char::is_control) {
        return Err(refuse("it holds a control character"));
    }
    let component = format!("{name}{suffix}");
    let mut parts = Path::new(&component).components();
    let single = matches!(
        (parts.next(), parts.next()),
        (Some(std::path::Component::Normal(_)), None)
    );
    let path = root.join(&component);
    if !single || path.parent() != Some(root) {
        return Err(refuse("it is not a single file name"));
    }
    if fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(RunError::Outside {
            subject: subject.to_string(),
            folder: root.to_path_buf(),
            why: "a symbolic link sits where it would be written",
            link: Some(path),
        });
    }
    Ok(path)
}

/// `name.ext` -> `.name.ext.tmp` in the same folder (same file system, so
/// the rename is atomic; hidden, so readers globbing `*.csv` skip it).
fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_whole_file() {
        let dir = std::env::temp_dir().join(format!("accord-io-{}", std::process::id()));
        let path = dir.join("a/b.json");
        let faults = Faults::after(None);
        write_atomic(&path, b"one", &faults).unwrap();
        write_atomic(&path, b"two", &faults).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(faults.operations(), 10);
        remove(&path, &faults).unwrap();
        remove(&path, &faults).unwrap();
        let _ = fs::remove_dir_all(dir);
    }

    #[test]
    fn names_cannot_leave_their_folder() {
        let dir = std::env::temp_dir().join(format!("accord-inside-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let root = dir.as_path();
        for hostile in [
            "",
            ".",
            "..",
            "../../escape_act",
            "../x",
            "a/b",
            "a\\b",
            "/etc/passwd",
            "x\0y",
            "x\ny",
        ] {
            let refused = inside(root, hostile, ".json", "activation `t`")
                .expect_err(&format!("{hostile:?} must be refused"))
                .diagnostic();
            assert_eq!(refused.code, "R0101", "{hostile:?}");
            assert!(
                inside(root, hostile, "", "activation `t`").is_err(),
                "{hostile:?}"
            );
        }
        assert_eq!(
            inside(root, "ok_name", ".json", "x").unwrap(),
            root.join("ok_name.json")
        );
        assert_eq!(inside(root, "..ok", "", "x").unwrap(), root.join("..ok"));
        // A link where the file would go leaves the folder just the same.
        std::os::unix::fs::symlink("/tmp", dir.join("linked")).unwrap();
        assert!(inside(root, "linked", "", "x").is_err());
        let _ = fs::remove_dir_all(dir);
    }
}
