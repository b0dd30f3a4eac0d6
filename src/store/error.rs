//! What goes wrong with the run's store, as values. The store sits below
//! `run`, so it has its own error; `run` turns it into a coded diagnostic:
//! a store or a state file that is not ours to read (another format, another
//! activation, not a store at all) is refused (R0104), a store that cannot
//! be read or written stops the run (R0107).

use std::fmt;

/// Where the store lives, as messages show it (relative to the project).
pub const SHOWN: &str = ".accord/store.db";

#[derive(Clone, Debug, PartialEq)]
pub enum StoreError {
    /// The database cannot be opened, read or written.
    Database { reason: String },
    /// A file or folder around the database (`.accord`, the old state
    /// folder) cannot be read, created or renamed.
    Io { path: String, reason: String },
    /// The store was written by a newer accord: its format is unknown here.
    Newer { found: i64, reads: i64 },
    /// `.accord/store.db` is not a database.
    NotAStore { reason: String },
    /// A state file being migrated belongs to another activation or format,
    /// or is no state file.
    ForeignFile { path: String, why: String },
    /// A stored row cannot be decoded (the database was edited by hand).
    Corrupt { activation: String, why: String },
}

impl StoreError {
    /// Whether the store (or a file it migrates) is refused as not ours,
    /// rather than failing to be read or written.
    pub fn refused(&self) -> bool {
        !matches!(self, StoreError::Database { .. } | StoreError::Io { .. })
    }

    /// The file the problem is in, as the project shows it.
    pub fn path(&self) -> &str {
        match self {
            StoreError::Io { path, .. } | StoreError::ForeignFile { path, .. } => path,
            _ => SHOWN,
        }
    }

    /// What the user can do about it, when the message alone does not say.
    pub fn help(&self) -> Option<&'static str> {
        match self {
            StoreError::Newer { .. } | StoreError::NotAStore { .. } => Some(
                "run the accord that wrote the store, or move `.accord/store.db` away: the next run then delivers a full backfill",
            ),
            StoreError::ForeignFile { .. } => Some(
                "restore this activation's own state file, or remove it to deliver a full backfill on the next run",
            ),
            StoreError::Corrupt { .. } => Some(
                "restore `.accord/store.db` and `.accord/members/` from a backup, or move both away to deliver a full backfill on the next run",
            ),
            StoreError::Database { .. } | StoreError::Io { .. } => None,
        }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Database { reason } => {
                write!(f, "the run's store cannot be read or written: {reason}")
            }
            StoreError::Io { path, reason } => {
                write!(f, "the run's store cannot use `{path}`: {reason}")
            }
            StoreError::Newer { found, reads } => write!(
                f,
                "the run's store has format {found}, and this accord reads format {reads}"
            ),
            StoreError::NotAStore { reason } => {
                write!(f, "`{SHOWN}` is not a store of accord: {reason}")
            }
            StoreError::ForeignFile { why, .. } => write!(f, "{why}"),
            StoreError::Corrupt { activation, why } => {
                write!(
                    f,
                    "activation `{activation}`: its stored state cannot be read: {why}"
                )
            }
        }
    }
}

impl std::error::Error for StoreError {}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> StoreError {
        if e.sqlite_error_code() == Some(rusqlite::ErrorCode::NotADatabase) {
            return StoreError::NotAStore {
                reason: e.to_string(),
            };
        }
        StoreError::Database {
            reason: e.to_string(),
        }
    }
}
