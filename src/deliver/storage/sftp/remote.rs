//! The file operations of the SFTP store, on one SFTP session.
//!
//! Atomicity, as the `FileStore` contract asks:
//! - `put` writes the bytes to a hidden temporary name in the same folder
//!   (`.NAME.RANDOM.accord-tmp`) and renames it over the final name, so a reader
//!   sees the old file or the whole new one. Over `posix-rename@openssh.com`
//!   (OpenSSH and most servers offer it) the rename replaces the target in
//!   one step. Without it (or when the server refuses it), a plain SFTP v3
//!   rename cannot replace an existing name, so the old file is removed
//!   first and the new one renamed in: between the two a reader finds no
//!   file (never a partial one), and a crash there leaves only the temporary
//!   file, which the rerun writes again (`size` answers `None`).
//! - `put_new` renames with a plain SFTP rename, which never replaces an
//!   existing file (OpenSSH links the new name, which fails when it exists),
//!   so of two writers only one manifest lands.
//!
//! Temporary names carry a random part, so concurrent writers of one name
//! (two runs on two machines) never share one. A temporary file is removed
//! when its upload or rename fails; a crash leaves it behind, hidden
//! (`.NAME.RANDOM.accord-tmp`), for whoever tidies the folder: the store
//! never removes a temporary file it did not write, since it may be another
//! writer's upload in progress.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use russh::client::Handle;
use russh_sftp::client::RawSftpSession;
use russh_sftp::client::error::Error as SftpError;
use russh_sftp::protocol::{FileAttributes, OpenFlags, Packet, StatusCode};
use tokio::task::JoinSet;

use super::session::PinnedHostKey;
use super::settings::RemoteFile;
use crate::deliver::storage::{StorageError, StorageErrorKind};

/// Write requests in flight at once: enough to keep a long link busy
/// (16 x 255 KiB), few enough that a failure stops the upload soon.
const WRITES_IN_FLIGHT: usize = 16;

/// An open SFTP session; cheap to clone (the store hands one to each call).
#[derive(Clone)]
pub(super) struct Remote {
    /// The SSH connection the session runs on, kept open with it.
    ssh: Arc<Handle<PinnedHostKey>>,
    sftp: Arc<RawSftpSession>,
    posix_rename: bool,
    write_chunk: usize,
    read_chunk: u32,
    /// Folders known to exist, so `mkdir -p` runs once per folder.
    folders: Arc<Mutex<HashSet<String>>>,
}

impl Remote {
    pub fn new(
        ssh: Arc<Handle<PinnedHostKey>>,
        sftp: Arc<RawSftpSession>,
        posix_rename: bool,
        write_chunk: usize,
        read_chunk: u32,
    ) -> Remote {
        Remote {
            ssh,
            sftp,
            posix_rename,
            write_chunk,
            read_chunk,
            folders: Arc::default(),
        }
    }

    /// The connection was lost: the store opens a new one.
    pub fn is_closed(&self) -> bool {
        self.ssh.is_closed()
    }

    pub async fn size(&self, file: &RemoteFile) -> Result<Option<u64>, StorageError> {
        match self.sftp.stat(file.path()).await {
            Ok(attrs) => attrs.attrs.size.map(Some).ok_or_else(|| {
                StorageError::new(
                    StorageErrorKind::Other,
                    format!("{}: the server gave no size", file.shown),
                )
            }),
            Err(e) if is_missing(&e) => Ok(None),
            Err(e) => Err(self.failed(&file.shown, "stat", e)),
        }
    }

    pub async fn get(&self, file: &RemoteFile) -> Result<Option<Vec<u8>>, StorageError> {
        let handle = match self
            .sftp
            .open(file.path(), OpenFlags::READ, FileAttributes::empty())
            .await
        {
            Ok(handle) => handle.handle,
            Err(e) if is_missing(&e) => return Ok(None),
            Err(e) => return Err(self.failed(&file.shown, "open", e)),
        };
        let mut bytes = Vec::new();
        let read = loop {
            match self
                .sftp
                .read(handle.as_str(), bytes.len() as u64, self.read_chunk)
                .await
            {
                Ok(data) if data.data.is_empty() => break Ok(()),
                Ok(data) => bytes.extend_from_slice(&data.data),
                Err(SftpError::Status(s)) if s.status_code == StatusCode::Eof => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        let closed = self.sftp.close(handle).await;
        read.map_err(|e| self.failed(&file.shown, "read", e))?;
        closed.map_err(|e| self.failed(&file.shown, "close", e))?;
        Ok(Some(bytes))
    }

    pub async fn put(&self, file: &RemoteFile, bytes: Payload<'_>) -> Result<(), StorageError> {
        self.ensure_folder(file).await?;
        let temporary = file.temporary_path();
        self.upload(file, &temporary, bytes).await?;
        if let Err(e) = self.rename_over(&temporary, &file.path()).await {
            self.discard(&temporary).await;
            return Err(self.failed(&file.shown, "rename into place", e));
        }
        Ok(())
    }

    pub async fn put_new(&self, file: &RemoteFile, bytes: &[u8]) -> Result<bool, StorageError> {
        self.ensure_folder(file).await?;
        // Most calls find the file there (a rerun): no upload for them.
        if self.size(file).await?.is_some() {
            return Ok(false);
        }
        let temporary = file.temporary_path();
        self.upload(file, &temporary, Payload::Bytes(bytes)).await?;
        match self.sftp.rename(temporary.as_str(), file.path()).await {
            Ok(_) => Ok(true),
            Err(e) => {
                self.discard(&temporary).await;
                // Another writer got there between the check and the rename.
                if self.size(file).await?.is_some() {
                    Ok(false)
                } else {
                    Err(self.failed(&file.shown, "rename into place", e))
                }
            }
        }
    }

    /// Writes `bytes` to `temporary`; removes it again when the upload
    /// fails.
    async fn upload(
        &self,
        file: &RemoteFile,
        temporary: &str,
        bytes: Payload<'_>,
    ) -> Result<(), StorageError> {
        let flags = OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::EXCLUDE;
        let handle = self
            .sftp
            .open(temporary, flags, FileAttributes::empty())
            .await
            .map_err(|e| self.failed(&file.shown, "create the temporary file", e))?
            .handle;
        let written = self.write_all(&handle, bytes).await;
        // The server reports a failed flush (a full disk) on close.
        let closed = self.sftp.close(handle).await;
        if let Err(e) = written.and(closed.map(drop)) {
            self.discard(temporary).await;
            return Err(self.failed(&file.shown, "upload", e));
        }
        Ok(())
    }

    /// Sends the writes with up to [`WRITES_IN_FLIGHT`] awaiting their
    /// answer, since one at a time would wait a round trip per chunk. A
    /// local file is read a chunk at a time as the writes go out, so memory
    /// holds the chunks in flight, not the file.
    async fn write_all(&self, handle: &str, bytes: Payload<'_>) -> Result<(), SftpError> {
        let mut in_flight = JoinSet::new();
        let mut offset = 0u64;
        for chunk in bytes.chunks(self.write_chunk) {
            let chunk = chunk?;
            if in_flight.len() >= WRITES_IN_FLIGHT
                && let Some(done) = in_flight.join_next().await
            {
                joined(done)?;
            }
            let sftp = Arc::clone(&self.sftp);
            let handle = handle.to_string();
            let at = offset;
            offset += chunk.len() as u64;
            in_flight.spawn(async move { sftp.write(handle, at, chunk).await.map(drop) });
        }
        while let Some(done) = in_flight.join_next().await {
            joined(done)?;
        }
        Ok(())
    }

    /// Renames `from` over `to`: in one step where the server allows it,
    /// else removing `to` first.
    async fn rename_over(&self, from: &str, to: &str) -> Result<(), SftpError> {
        if self.posix_rename {
            match self.posix_rename(from, to).await {
                // Offered but refused: OpenSSH's `sftp-server -P
                // posix-rename` announces the extension and denies it.
                Err(SftpError::Status(status))
                    if matches!(
                        status.status_code,
                        StatusCode::OpUnsupported | StatusCode::PermissionDenied
                    ) => {}
                done => return done,
            }
        }
        self.remove_then_rename(from, to).await
    }

    /// `posix-rename@openssh.com`: rename(2), replacing the target.
    async fn posix_rename(&self, from: &str, to: &str) -> Result<(), SftpError> {
        let mut request = Vec::with_capacity(8 + from.len() + to.len());
        for path in [from, to] {
            request.extend((path.len() as u32).to_be_bytes());
            request.extend(path.as_bytes());
        }
        match self
            .sftp
            .extended("posix-rename@openssh.com", request)
            .await?
        {
            Packet::Status(status) if status.status_code == StatusCode::Ok => Ok(()),
            Packet::Status(status) => Err(SftpError::Status(status)),
            _ => Err(SftpError::UnexpectedPacket),
        }
    }

    /// The fallback of a server without `posix-rename@openssh.com`: see the
    /// module's notes on the window it opens.
    async fn remove_then_rename(&self, from: &str, to: &str) -> Result<(), SftpError> {
        match self.sftp.rename(from, to).await {
            Ok(_) => Ok(()),
            Err(first) => {
                match self.sftp.remove(to).await {
                    Ok(_) => {}
                    Err(e) if is_missing(&e) => return Err(first),
                    Err(e) => return Err(e),
                }
                self.sftp.rename(from, to).await.map(drop)
            }
        }
    }

    /// Removes a temporary file after a failure; the failure is what is
    /// reported, so an error here (the connection is gone) is not.
    async fn discard(&self, temporary: &str) {
        let _ = self.sftp.remove(temporary).await;
    }

    /// `mkdir -p` of the file's folder, once per folder and connection.
    async fn ensure_folder(&self, file: &RemoteFile) -> Result<(), StorageError> {
        let folder = file.folder.as_str();
        if self.known_folder(folder) || self.is_folder(folder).await {
            self.remember_folder(folder);
            return Ok(());
        }
        for ancestor in ancestors(folder) {
            if let Err(e) = self.sftp.mkdir(ancestor, FileAttributes::empty()).await {
                // It exists (made by someone else meanwhile, or a folder we
                // may not create but may write in): carry on.
                if self.is_folder(ancestor).await {
                    continue;
                }
                if self.is_closed() {
                    return Err(self.failed(&file.shown, "create its folder", e));
                }
                return Err(StorageError::new(
                    StorageErrorKind::NotFound,
                    format!(
                        "{}: the folder `{ancestor}` does not exist and cannot be created ({e})",
                        file.shown
                    ),
                ));
            }
        }
        self.remember_folder(folder);
        Ok(())
    }

    async fn is_folder(&self, path: &str) -> bool {
        self.sftp
            .stat(path)
            .await
            .is_ok_and(|attrs| attrs.attrs.is_dir())
    }

    fn known_folder(&self, folder: &str) -> bool {
        self.folders
            .lock()
            .is_ok_and(|known| known.contains(folder))
    }

    fn remember_folder(&self, folder: &str) {
        if let Ok(mut known) = self.folders.lock() {
            known.insert(folder.to_string());
        }
    }

    fn failed(&self, shown: &str, what: &str, error: SftpError) -> StorageError {
        let kind = if self.is_closed() {
            StorageErrorKind::Unreachable
        } else {
            match &error {
                SftpError::Status(status) => match status.status_code {
                    StatusCode::NoSuchFile => StorageErrorKind::NotFound,
                    StatusCode::PermissionDenied => StorageErrorKind::Denied,
                    StatusCode::NoConnection | StatusCode::ConnectionLost => {
                        StorageErrorKind::Unreachable
                    }
                    _ => StorageErrorKind::Other,
                },
                SftpError::Timeout => StorageErrorKind::Unreachable,
                _ => StorageErrorKind::Other,
            }
        };
        let error = if self.is_closed() {
            format!("the connection was lost ({error})")
        } else {
            error.to_string()
        };
        StorageError::new(kind, format!("{shown}: {what} failed: {error}"))
    }
}

fn is_missing(error: &SftpError) -> bool {
    matches!(error, SftpError::Status(s) if s.status_code == StatusCode::NoSuchFile)
}

/// What an upload writes: bytes in memory, or a local file read as it goes.
pub(super) enum Payload<'a> {
    Bytes(&'a [u8]),
    /// The file, opened, and its path for errors.
    File(std::fs::File, &'a std::path::Path),
}

impl<'a> Payload<'a> {
    /// The payload as chunks of at most `size` bytes, in order.
    fn chunks(
        self,
        size: usize,
    ) -> Box<dyn Iterator<Item = Result<Vec<u8>, SftpError>> + Send + 'a> {
        match self {
            Payload::Bytes(bytes) => Box::new(bytes.chunks(size).map(|c| Ok(c.to_vec()))),
            Payload::File(file, path) => {
                let mut file = Some(file);
                Box::new(std::iter::from_fn(move || {
                    use std::io::Read;
                    let mut chunk = Vec::with_capacity(size);
                    let read = file.as_mut()?.take(size as u64).read_to_end(&mut chunk);
                    match read {
                        Ok(0) => None,
                        Ok(_) => Some(Ok(chunk)),
                        Err(e) => {
                            file = None;
                            let unreadable = crate::deliver::storage::unreadable_local(path, &e);
                            Some(Err(SftpError::UnexpectedBehavior(unreadable.message)))
                        }
                    }
                }))
            }
        }
    }
}

fn joined(done: Result<Result<(), SftpError>, tokio::task::JoinError>) -> Result<(), SftpError> {
    done.map_err(|e| SftpError::UnexpectedBehavior(format!("a write task failed: {e}")))?
}

/// `a/b/c` -> `a`, `a/b`, `a/b/c`; `/srv/in` -> `/srv`, `/srv/in`; the login
/// folder (`.`) and the root need no creating.
fn ancestors(folder: &str) -> Vec<&str> {
    folder
        .match_indices('/')
        .map(|(at, _)| &folder[..at])
        .chain([folder])
        .filter(|prefix| !matches!(*prefix, "" | "." | "/"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::ancestors;

    #[test]
    fn mkdir_p_creates_each_ancestor_from_the_top() {
        assert_eq!(ancestors("a/b/c"), ["a", "a/b", "a/b/c"]);
        assert_eq!(ancestors("/srv/in"), ["/srv", "/srv/in"]);
        assert_eq!(ancestors("./in"), ["./in"]);
        assert!(ancestors(".").is_empty());
        assert!(ancestors("/").is_empty());
    }
}
