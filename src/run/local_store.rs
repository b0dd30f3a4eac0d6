//! A local folder as a `FileStore`: the filesystem destination's `path`,
//! or `--out DIR/<destination>` for any file destination.
//!
//! Files are written with `io::write_atomic` (temporary file, fsync,
//! rename), whose create, write, fsync and rename are crash test steps of
//! their own. A name is proven to be a plain child of the folder with no
//! symbolic link in its place (`io::inside`) before anything is read or
//! written there.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use super::io::{self, Faults};
use crate::deliver::storage::{FileStore, StorageError, StorageErrorKind};

pub struct LocalFileStore {
    dir: PathBuf,
    /// The folder as the report shows it (relative to the project).
    shown: String,
    subject: String,
    faults: Faults,
}

impl LocalFileStore {
    /// `subject` names what the files belong to in a refusal
    /// (`destination \`x\``).
    pub fn new(dir: PathBuf, shown: String, subject: String, faults: Faults) -> LocalFileStore {
        LocalFileStore {
            dir,
            shown,
            subject,
            faults,
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The path of `name`, or the run's refusal (R0101) when it would leave
    /// the folder: callers that want the coded error check names with this
    /// before they write.
    pub fn path(&self, name: &str) -> Result<PathBuf, super::RunError> {
        io::inside(&self.dir, name, "", &self.subject)
    }

    fn checked(&self, name: &str) -> Result<PathBuf, StorageError> {
        self.path(name)
            .map_err(|e| StorageError::new(StorageErrorKind::Other, e.to_string()))
    }
}

/// The operating system's words; the run's error names the file.
fn failed(e: std::io::Error) -> StorageError {
    let kind = match e.kind() {
        ErrorKind::PermissionDenied => StorageErrorKind::Denied,
        _ => StorageErrorKind::Other,
    };
    StorageError::new(kind, e.to_string())
}

impl FileStore for LocalFileStore {
    fn location(&self) -> String {
        self.shown.clone()
    }

    fn size(&self, name: &str) -> Result<Option<u64>, StorageError> {
        let path = self.checked(name)?;
        match fs::metadata(&path) {
            Ok(meta) if meta.is_file() => Ok(Some(meta.len())),
            Ok(_) => Err(StorageError::new(
                StorageErrorKind::Other,
                format!("{}: not a file", path.display()),
            )),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(failed(e)),
        }
    }

    fn put(&self, name: &str, bytes: &[u8]) -> Result<(), StorageError> {
        let path = self.checked(name)?;
        io::write_atomic(&path, bytes, &self.faults).map_err(failed)
    }

    /// Copied in by the kernel (no pass through memory), atomically as
    /// [`FileStore::put`] writes.
    fn put_file(&self, name: &str, from: &Path) -> Result<(), StorageError> {
        let path = self.checked(name)?;
        io::write_atomic_with(&path, &self.faults, |file| {
            std::io::copy(&mut fs::File::open(from)?, file).map(|_| ())
        })
        .map_err(failed)
    }

    /// Absent, then written: no other writer races it, since the run holds
    /// the project lock and no two destinations share a folder's names
    /// (each name carries its activation and run id).
    fn put_new(&self, name: &str, bytes: &[u8]) -> Result<bool, StorageError> {
        let path = self.checked(name)?;
        match fs::symlink_metadata(&path) {
            Ok(_) => return Ok(false),
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(failed(e)),
        }
        io::write_atomic(&path, bytes, &self.faults).map_err(failed)?;
        Ok(true)
    }

    fn get(&self, name: &str) -> Result<Option<Vec<u8>>, StorageError> {
        let path = self.checked(name)?;
        match fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(failed(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_is_a_file_store() {
        let dir = std::env::temp_dir().join(format!("accord-store-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let faults = Faults::after(None);
        let store = LocalFileStore::new(
            dir.clone(),
            "out".into(),
            "destination `d`".into(),
            faults.clone(),
        );
        assert_eq!(store.size("a.csv").unwrap(), None);
        store.put("a.csv", b"one").unwrap();
        assert_eq!(store.size("a.csv").unwrap(), Some(3));
        store.put("a.csv", b"three").unwrap();
        assert_eq!(store.get("a.csv").unwrap().as_deref(), Some(&b"three"[..]));
        assert!(store.put_new("m.json", b"{}").unwrap());
        assert!(!store.put_new("m.json", b"[]").unwrap(), "never replaced");
        assert_eq!(store.get("m.json").unwrap().as_deref(), Some(&b"{}"[..]));
        assert_eq!(store.get("none").unwrap(), None);
        assert!(faults.operations() > 0, "local writes count their steps");
        for hostile in ["../x", "a/b", "", ".."] {
            assert!(store.put(hostile, b"x").is_err(), "{hostile:?}");
            assert!(store.size(hostile).is_err(), "{hostile:?}");
        }
        let _ = fs::remove_dir_all(dir);
    }
}
