//! Where file deliveries land: a local folder, an object store bucket
//! (S3, Azure Blob, GCS) or a folder on an SFTP server, behind one small
//! trait, so the run writes every file destination the same way and a
//! delivery to a bucket is byte-identical to the local one.
//!
//! The contract that makes a delivery atomic for its reader:
//! - data files have deterministic names (they carry the run id) and are
//!   written whole: one put on an object store, a temporary name and a
//!   rename on SFTP and local folders, so a file that exists is complete;
//! - the manifest is written last and only when absent (`put_new`: a
//!   create-only put on object stores), so a reader that sees a manifest
//!   sees every file it lists;
//! - a rerun after a crash asks `size` first and writes only what is
//!   missing.
//!
//! The trait is synchronous: a remote store drives its own async client on
//! a runtime it owns and blocks, so the run's file delivery stays one
//! straight-line function for every kind of destination.
//!
//! - `object`: S3, Azure Blob Storage and GCS through `object_store`;
//! - `aws_profile`: the named profiles of the AWS shared credentials file.

pub mod aws_profile;
pub mod object;

pub mod sftp;

use std::fmt;

use super::Config;

pub mod dry_run;

/// The store of a remote file destination (`s3`, `azure_blob`, `gcs`,
/// `sftp`), its secrets resolved in `config`. Nothing is contacted yet:
/// the first operation connects.
pub fn open(config: &Config) -> Result<Box<dyn FileStore>, StorageError> {
    match config.kind.as_str() {
        "sftp" => Ok(Box::new(sftp::SftpFileStore::new(
            sftp::SftpSettings::from_config(config)?,
        )?)),
        kind => Ok(Box::new(object::ObjectFileStore::new(
            kind,
            &config.settings,
            &config.secrets,
            config.endpoint.as_deref(),
        )?)),
    }
}

/// Where a remote file destination puts its files, as its store's
/// `location` shows it, from the settings alone (a dry run connects to
/// nothing and holds no secrets).
pub fn location(config: &Config) -> Option<String> {
    match config.kind.as_str() {
        "sftp" => sftp::SftpSettings::from_config(config)
            .ok()
            .map(|s| s.location()),
        kind => object::location(kind, &config.settings),
    }
}

/// One place files are written to: names are relative to the destination's
/// location (its `prefix` or `path`).
pub trait FileStore: Send + Sync {
    /// The location as the report shows it: `s3://bucket/prefix/`,
    /// `sftp://host:22/path/`, or a local folder.
    fn location(&self) -> String;

    /// The size of the file `name`, `None` when there is none.
    fn size(&self, name: &str) -> Result<Option<u64>, StorageError>;

    /// Writes `name` whole, so that no reader ever sees a part of it;
    /// replaces a file of that name.
    fn put(&self, name: &str, bytes: &[u8]) -> Result<(), StorageError>;

    /// Writes `name` whole, as [`FileStore::put`] does, from the local file
    /// `from` (a delivery's encoded file, which may be larger than memory
    /// should hold). The default reads it in and puts it; stores that can
    /// copy or stream it do.
    fn put_file(&self, name: &str, from: &std::path::Path) -> Result<(), StorageError> {
        let bytes = read_local(from)?;
        self.put(name, &bytes)
    }

    /// Writes `name` only when it does not exist yet: `Ok(false)` when it
    /// did (the manifest of a delivery an earlier run finished).
    fn put_new(&self, name: &str, bytes: &[u8]) -> Result<bool, StorageError>;

    /// The bytes of `name`, `None` when there is none.
    fn get(&self, name: &str) -> Result<Option<Vec<u8>>, StorageError>;
}

/// The bytes of a local file a store is to write.
pub fn read_local(path: &std::path::Path) -> Result<Vec<u8>, StorageError> {
    std::fs::read(path).map_err(|e| unreadable_local(path, &e))
}

/// A local file a store is to write could not be read.
pub fn unreadable_local(path: &std::path::Path, e: &std::io::Error) -> StorageError {
    StorageError::new(
        StorageErrorKind::Other,
        format!("reading the encoded file {}: {e}", path.display()),
    )
}

/// Why a file operation failed, in terms a run report can act on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StorageErrorKind {
    /// The server or service could not be reached (DNS, refused, timeout).
    Unreachable,
    /// Credentials were missing, wrong or not allowed to write there.
    Denied,
    /// The SFTP server's host key is not the pinned `host_key`.
    HostKeyMismatch,
    /// The bucket, container or folder does not exist.
    NotFound,
    /// Anything else the store answered.
    Other,
}

/// A failed file operation: its kind and the store's own words, never a
/// credential.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StorageError {
    pub kind: StorageErrorKind,
    pub message: String,
}

impl StorageError {
    pub fn new(kind: StorageErrorKind, message: impl Into<String>) -> StorageError {
        StorageError {
            kind,
            message: message.into(),
        }
    }
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StorageError {}
