//! The run's one store: everything a run remembers, in one embedded SQLite
//! database at `<project>/.accord/store.db`.
//!
//! In: the project folder and the crash test hook ([`Faults`]). Out: a
//! [`Store`] whose every write is one transaction, made durable before it
//! returns (WAL, `synchronous=FULL`: a committed write survives a kill -9 or
//! a power cut), and whose every read sees only committed writes.
//!
//! What it holds, one concern per file:
//! - `schema`: the tables and the format version (`PRAGMA user_version`);
//!   a store of a newer format is refused;
//! - `ledger`: per (activation, audience, member) what an API destination
//!   last accepted (payload, its SHA-256, the vendor's id), or why not;
//! - `journal`: an intent written before each API request and its outcome
//!   after, so a crash leaves its open requests visible;
//! - `tallies`: the vendor list ids accord created, API calls per
//!   destination and vendor day, each activation's last delivery time;
//! - `files`: the file deliveries' committed membership and pending record
//!   (the crash-safe protocol of `run::state`);
//! - `reads`: per append-only source what was already read (files and
//!   their sizes, or a high-water mark) and where its typed rows are cached;
//! - `alerts`: per alert, the breach it fired for (`repeat = "once"`);
//! - `migrate`: the one-time import of the JSON state files that came
//!   before the store (`.accord/state/`, renamed `.accord/state.migrated/`).
//!
//! Every write transaction takes a [`Faults`] step before and after its
//! commit, so the crash test kills the run on both sides of each write.
//!
//! Why SQLite: an activation may hold 10M members, and a run changes a few
//! of them. A JSON file like the old state must be rewritten and re-read
//! whole on every change, and proves nothing about a write a kill cut short;
//! a database updates the changed rows in a transaction. Measured by
//! `cargo bench --bench store --features deliver` (one run on the shared
//! 2-core build machine; the baseline writes and reads the same rows as one
//! JSON file, as the old state did):
//!
//! FIGURES
//!
//! The store is `Send` and `Sync`: one connection behind a mutex, since a
//! run's writes are sequential anyway and SQLite allows one writer.

pub mod alerts;
mod error;
pub mod files;
pub mod journal;
pub mod ledger;
mod migrate;
pub mod reads;
mod schema;
pub mod tallies;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};

pub use crate::faults::Faults;
pub use alerts::Breach;
pub use error::{SHOWN, StoreError};
pub use files::{FORMAT, Membership, Pending, State};
pub use journal::{Intent, OpenIntent};
pub use ledger::{LedgerRow, LedgerUpdate, RemoteMember, Status};
pub use reads::{ReadItem, ReadRecord, ReadUpdate, Segment};
pub use schema::VERSION;
pub use tallies::ListRecord;

/// The run's store (see the module doc).
#[derive(Debug)]
pub struct Store {
    connection: Mutex<Connection>,
    faults: Faults,
}

/// `<project>/.accord/store.db`.
pub fn path(project_root: &Path) -> PathBuf {
    project_root.join(".accord").join("store.db")
}

impl Store {
    /// Opens the project's store for a run, creating it on first use: the
    /// tables and the import of the old JSON state files are one
    /// transaction, after which the old state folder is renamed.
    pub fn open(project_root: &Path, faults: &Faults) -> Result<Store, StoreError> {
        let accord = project_root.join(".accord");
        faults.step();
        std::fs::create_dir_all(&accord).map_err(|e| StoreError::Io {
            path: ".accord".into(),
            reason: e.to_string(),
        })?;
        let connection = Connection::open(path(project_root))?;
        let store = Store::over(connection, faults.clone())?;
        let old_state = migrate::folder(project_root);
        store.write(|tx| {
            let found = schema::version(tx)?;
            if found == 0 {
                schema::create(tx)?;
                migrate::import(tx, &old_state)?;
                return Ok(());
            }
            schema::upgrade(tx, found)
        })?;
        migrate::retire(project_root, faults)?;
        Ok(store)
    }

    /// Opens the project's store to read what a run would, writing nothing
    /// (`--preview`): a store not created yet is built in memory from the
    /// old JSON state files, which stay where they are.
    pub fn peek(project_root: &Path) -> Result<Store, StoreError> {
        let on_disk = path(project_root);
        if on_disk.is_file() {
            let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
            let store = Store::over(
                Connection::open_with_flags(&on_disk, flags)?,
                Faults::default(),
            )?;
            let found =
                store.read(|c| Ok(c.query_row("PRAGMA user_version", [], |r| r.get(0))?))?;
            if found > 0 {
                schema::readable(found)?;
                store.lock().pragma_update(None, "query_only", true)?;
                return Ok(store);
            }
        }
        let store = Store::open_in_memory()?;
        store.write(|tx| migrate::import(tx, &migrate::folder(project_root)))?;
        Ok(store)
    }

    /// An empty store in memory, for tests and benchmarks.
    pub fn open_in_memory() -> Result<Store, StoreError> {
        let store = Store::over(Connection::open_in_memory()?, Faults::default())?;
        store.write(schema::create)?;
        Ok(store)
    }

    /// The crash test hook of this store's run, for the files written
    /// beside it (the cached rows of append-only sources).
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    fn over(connection: Connection, faults: Faults) -> Result<Store, StoreError> {
        // WAL: readers never block the writer; FULL: every commit is synced
        // to disk before it returns. The busy timeout covers a `--preview`
        // reading while a run writes.
        let _mode: String = connection.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        connection.pragma_update(None, "synchronous", "FULL")?;
        connection.busy_timeout(std::time::Duration::from_secs(30))?;
        Ok(Store {
            connection: Mutex::new(connection),
            faults,
        })
    }

    /// The connection; a panic that poisoned the lock left no transaction
    /// open (a dropped transaction rolls back), so the connection is sound.
    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.connection
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `read` on the connection, seeing committed writes only.
    fn read<T>(
        &self,
        read: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        read(&self.lock())
    }

    /// Runs `write` in one transaction and commits it, with a crash test
    /// step on each side of the commit; an error rolls everything back.
    fn write<T>(
        &self,
        write: impl FnOnce(&Transaction) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut connection = self.lock();
        let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let value = write(&tx)?;
        self.faults.step();
        tx.commit()?;
        self.faults.step();
        Ok(value)
    }
}
