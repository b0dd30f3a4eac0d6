//! The file operations of `run`'s I/O layer: atomic writes (temporary file,
//! fsync, rename, fsync of the folder) and the crash test hook.
//!
//! Test hook: when the environment variable `ACCORD_FAULT_AFTER=N` is set,
//! the process aborts (as if killed) right before its N+1-th file operation.
//! Every create, write, fsync and rename counts as one operation. The crash
//! test (`tests/run_crash.rs`) runs the binary with N = 0, 1, 2, ... and
//! checks that a rerun delivers exactly the missing changes. It is read once,
//! by the CLI, and handed down as a value; library callers leave it unset.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Counts file operations and aborts the process at the configured one.
#[derive(Debug, Default)]
pub struct Faults {
    after: Option<u64>,
    done: AtomicU64,
}

impl Faults {
    pub fn after(n: Option<u64>) -> Faults {
        Faults {
            after: n,
            done: AtomicU64::new(0),
        }
    }

    /// Called before every file operation.
    pub fn step(&self) {
        let done = self.done.fetch_add(1, Ordering::SeqCst);
        if let Some(after) = self.after
            && done >= after
        {
            // Abort, not exit: no destructors, no flushing, like a kill -9.
            std::process::abort();
        }
    }

    pub fn operations(&self) -> u64 {
        self.done.load(Ordering::SeqCst)
    }
}

/// Writes `bytes` to `path` atomically: a reader sees the old file or the
/// new one, never a part. Creates missing parent folders.
pub fn write_atomic(path: &Path, bytes: &[u8], faults: &Faults) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    faults.step();
    fs::create_dir_all(dir)?;
    let tmp = temp_path(path);
    faults.step();
    let mut file = File::create(&tmp)?;
    faults.step();
    file.write_all(bytes)?;
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
}
