//! The project lock: one `accord run` at a time per project.
//!
//! Two runs of one project would read the same state, deliver the same
//! changes and commit over each other. A run therefore holds an exclusive
//! operating-system lock on `<project>/.accord/lock` (an advisory file lock,
//! `File::try_lock`) from before it reads any state until it has appended
//! its report. The operating system releases the lock when the process ends,
//! however it ends (a killed run never leaves a lock behind: the file stays,
//! the lock does not). The holder writes its process id, host and start time
//! into the file, so that a refused run can say who holds it.
//!
//! The file is never removed: removing it while another process waits on
//! it would let a third take a lock on a new file while the second holds
//! one on the old.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::error::RunError;

/// The held lock; dropping it (or ending the process) releases it.
#[derive(Debug)]
pub struct ProjectLock {
    _file: File,
}

/// The lock file of a project.
pub fn path(root: &Path) -> PathBuf {
    root.join(".accord").join("lock")
}

/// Takes the project's lock. When another process holds it: refused with
/// R0102 naming the holder, or, with `wait`, waits for it (saying so once on
/// stderr, since a silent wait looks like a hang). `started` is the wall-clock
/// start of this run (RFC 3339), written for the next refused run to read.
pub fn acquire(
    root: &Path,
    project: &str,
    wait: bool,
    started: &str,
) -> Result<ProjectLock, RunError> {
    let path = path(root);
    let fail = |e: std::io::Error| RunError::LockFile {
        project: project.to_string(),
        path: path.clone(),
        reason: e.to_string(),
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    // Not truncated on open: the holder's line must survive a refused open.
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(fail)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let holder = holder(&mut file);
            if !wait {
                return Err(RunError::Locked {
                    project: project.to_string(),
                    holder,
                });
            }
            eprintln!("[accord run] waiting for the project lock ({holder})");
            file.lock().map_err(fail)?;
        }
        Err(TryLockError::Error(e)) => return Err(fail(e)),
    }
    let line = format!(
        "pid {} on host {}, started {started}\n",
        std::process::id(),
        host()
    );
    // Best effort: the lock holds whether or not the note is written.
    let _ = file
        .set_len(0)
        .and_then(|()| file.seek(SeekFrom::Start(0)))
        .and_then(|_| file.write_all(line.as_bytes()))
        .and_then(|()| file.sync_all());
    Ok(ProjectLock { _file: file })
}

/// Who holds the lock, from the note its holder wrote.
fn holder(file: &mut File) -> String {
    let mut text = String::new();
    let _ = file
        .seek(SeekFrom::Start(0))
        .and_then(|_| file.read_to_string(&mut text));
    match text.lines().next().map(str::trim) {
        Some(line) if !line.is_empty() => line.to_string(),
        // The holder has just taken the lock and not written its note yet.
        _ => "holder not recorded yet".to_string(),
    }
}

/// This machine's name, for the note (no crate: the kernel's or the shell's).
fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_and_names_the_holder() {
        let dir = std::env::temp_dir().join(format!("accord-lock-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let first = acquire(&dir, "p", false, "2026-11-28T12:00:00Z").unwrap();
        // A second open file description conflicts even in one process.
        let refused = acquire(&dir, "p", false, "2026-11-28T12:00:01Z")
            .unwrap_err()
            .diagnostic();
        assert_eq!(refused.code, "R0102");
        assert!(
            refused
                .message
                .contains(&format!("pid {} on host", std::process::id())),
            "{}",
            refused.message
        );
        assert!(refused.message.contains("started 2026-11-28T12:00:00Z"));
        drop(first);
        let again = acquire(&dir, "p", false, "2026-11-28T12:00:02Z");
        assert!(again.is_ok());
        let _ = std::fs::remove_dir_all(dir);
    }
}
