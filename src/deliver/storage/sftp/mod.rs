//! Files on an SFTP server: a folder reached over SSH, trusted only when the
//! server presents the pinned host key.
//!
//! - `settings`: the destination's settings and secrets, checked into what a
//!   connection needs;
//! - `session`: TCP, the SSH handshake with the host key pinned, the login
//!   and the SFTP subsystem, with their failures as `StorageError`s;
//! - `remote`: the file operations the store is made of (upload to a
//!   temporary name and rename, `mkdir -p`, stat, read).
//!
//! The store owns a small tokio runtime (current-thread: it runs on the
//! calling thread) and blocks on it, so the `FileStore` trait stays
//! synchronous. The rule for callers: every call blocks its thread until
//! the server answered, so inside an async runtime call it from
//! `spawn_blocking` (or a thread of its own), or the runtime's other tasks
//! wait with it. It never panics for being called there: inside a runtime
//! it drives its own on a scoped thread for the call.
//!
//! One SSH connection per store, opened on first use (a run that evaluates
//! for an hour before its first file does not hold an idle connection that
//! long) and opened again on the next call after it was lost.

mod remote;
mod session;
mod settings;

use std::future::Future;

use tokio::runtime::{Handle, Runtime};
use tokio::sync::Mutex;

use super::{FileStore, StorageError, StorageErrorKind};
use remote::{Payload, Remote};
pub use settings::{Login, SftpSettings};

/// A folder on an SFTP server as a [`FileStore`].
pub struct SftpFileStore {
    settings: SftpSettings,
    /// `None` only while dropping.
    runtime: Option<Runtime>,
    remote: Mutex<Option<Remote>>,
}

impl SftpFileStore {
    /// A store for `settings`; connects on first use.
    pub fn new(settings: SftpSettings) -> Result<SftpFileStore, StorageError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| {
                StorageError::new(
                    StorageErrorKind::Other,
                    format!("{}: cannot start the SFTP client: {e}", settings.location()),
                )
            })?;
        Ok(SftpFileStore {
            settings,
            runtime: Some(runtime),
            remote: Mutex::new(None),
        })
    }

    /// Runs one operation on the connection, opening it first when there is
    /// none or the last one was lost.
    fn with_remote<T, F, Fut>(&self, operation: F) -> Result<T, StorageError>
    where
        T: Send,
        F: FnOnce(Remote) -> Fut + Send,
        Fut: Future<Output = Result<T, StorageError>> + Send,
    {
        self.block_on(async {
            let remote = {
                let mut slot = self.remote.lock().await;
                match slot.as_ref() {
                    Some(remote) if !remote.is_closed() => remote.clone(),
                    _ => {
                        *slot = None;
                        let remote = session::open(&self.settings).await?;
                        slot.insert(remote).clone()
                    }
                }
            };
            operation(remote).await
        })?
    }

    /// Runs `future` to completion on the store's runtime. Inside another
    /// runtime (where starting one panics) it runs on a thread of its own
    /// for the call, so the caller only ever blocks, never panics.
    fn block_on<F>(&self, future: F) -> Result<F::Output, StorageError>
    where
        F: Future + Send,
        F::Output: Send,
    {
        let Some(runtime) = &self.runtime else {
            unreachable!("the runtime is taken only in drop");
        };
        if Handle::try_current().is_err() {
            return Ok(runtime.block_on(future));
        }
        std::thread::scope(|scope| scope.spawn(|| runtime.block_on(future)).join()).map_err(|_| {
            StorageError::new(
                StorageErrorKind::Other,
                format!("{}: the SFTP client stopped unexpectedly", self.location()),
            )
        })
    }
}

impl Drop for SftpFileStore {
    fn drop(&mut self) {
        // Dropping a runtime blocks until its tasks stop, which panics inside
        // another runtime; the connection's tasks need no waiting for.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl FileStore for SftpFileStore {
    fn location(&self) -> String {
        self.settings.location()
    }

    fn size(&self, name: &str) -> Result<Option<u64>, StorageError> {
        let path = self.settings.file(name)?;
        self.with_remote(|remote| async move { remote.size(&path).await })
    }

    fn put(&self, name: &str, bytes: &[u8]) -> Result<(), StorageError> {
        let path = self.settings.file(name)?;
        self.with_remote(|remote| async move { remote.put(&path, Payload::Bytes(bytes)).await })
    }

    /// Streamed: the file is read a write at a time as the upload goes.
    fn put_file(&self, name: &str, from: &std::path::Path) -> Result<(), StorageError> {
        let path = self.settings.file(name)?;
        let file = std::fs::File::open(from).map_err(|e| super::unreadable_local(from, &e))?;
        self.with_remote(|remote| async move { remote.put(&path, Payload::File(file, from)).await })
    }

    fn put_new(&self, name: &str, bytes: &[u8]) -> Result<bool, StorageError> {
        let path = self.settings.file(name)?;
        self.with_remote(|remote| async move { remote.put_new(&path, bytes).await })
    }

    fn get(&self, name: &str) -> Result<Option<Vec<u8>>, StorageError> {
        let path = self.settings.file(name)?;
        self.with_remote(|remote| async move { remote.get(&path).await })
    }
}
