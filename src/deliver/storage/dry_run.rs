//! The store a dry run delivers files to: it writes nothing and contacts
//! nothing, and records each operation the delivery asked for, so the run
//! can describe exactly what a live run would upload (names, sizes,
//! sha256, in order, the manifest last) without credentials or network.
//!
//! It answers `size` and `get` with "absent": a dry run cannot know what
//! the remote holds, so it describes every file; a live rerun skips the
//! ones already there.

use std::sync::Mutex;

use serde::Serialize;

use super::{FileStore, StorageError};

/// One operation a live run would perform.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PlannedWrite {
    /// `put` for a data file, `put_new` (create-only) for the manifest.
    pub op: &'static str,
    /// The full location of the object or file.
    pub target: String,
    pub bytes: u64,
    pub sha256: String,
}

/// Records writes in order; see the module comment.
pub struct DryRunStore {
    location: String,
    writes: Mutex<Vec<PlannedWrite>>,
}

impl DryRunStore {
    /// `location` as the live store would show it (`s3://bucket/prefix/`).
    pub fn new(location: String) -> DryRunStore {
        DryRunStore {
            location,
            writes: Mutex::new(Vec::new()),
        }
    }

    /// The writes recorded so far, in order.
    pub fn writes(&self) -> Vec<PlannedWrite> {
        self.writes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn record(&self, op: &'static str, name: &str, bytes: &[u8]) {
        self.push(op, name, bytes.len() as u64, crate::hash::sha256_hex(bytes));
    }

    fn push(&self, op: &'static str, name: &str, bytes: u64, sha256: String) {
        self.writes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(PlannedWrite {
                op,
                target: format!("{}{name}", self.location),
                bytes,
                sha256,
            });
    }
}

impl FileStore for DryRunStore {
    fn location(&self) -> String {
        self.location.clone()
    }

    fn size(&self, _name: &str) -> Result<Option<u64>, StorageError> {
        Ok(None)
    }

    fn put(&self, name: &str, bytes: &[u8]) -> Result<(), StorageError> {
        self.record("put", name, bytes);
        Ok(())
    }

    /// Recorded from the file, read a block at a time.
    fn put_file(&self, name: &str, from: &std::path::Path) -> Result<(), StorageError> {
        let failed = |e: std::io::Error| {
            StorageError::new(
                super::StorageErrorKind::Other,
                format!("reading the encoded file {}: {e}", from.display()),
            )
        };
        let mut file = std::fs::File::open(from).map_err(failed)?;
        let mut hashed = crate::hash::Sha256Writer::new(std::io::sink());
        std::io::copy(&mut file, &mut hashed).map_err(failed)?;
        let (bytes, sha256) = hashed.finish().map_err(failed)?;
        self.push("put", name, bytes, sha256);
        Ok(())
    }

    fn put_new(&self, name: &str, bytes: &[u8]) -> Result<bool, StorageError> {
        self.record("put_new", name, bytes);
        Ok(true)
    }

    fn get(&self, _name: &str) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_records_writes_in_order_and_holds_nothing() {
        let store = DryRunStore::new("s3://bucket/in/".into());
        store.put("a.csv", b"x,y\n").unwrap();
        assert!(store.put_new("a.manifest.json", b"{}").unwrap());
        assert_eq!(store.size("a.csv").unwrap(), None);
        assert_eq!(store.get("a.csv").unwrap(), None);
        let writes = store.writes();
        assert_eq!(writes.len(), 2);
        assert_eq!(writes[0].op, "put");
        assert_eq!(writes[0].target, "s3://bucket/in/a.csv");
        assert_eq!(writes[0].bytes, 4);
        assert_eq!(writes[1].op, "put_new");
        assert_eq!(writes[1].sha256, crate::hash::sha256_hex(b"{}"));
    }
}
