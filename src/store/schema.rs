//! The store's tables and its format version.
//!
//! The format is `PRAGMA user_version` (0 in a database nothing was written
//! to yet). A store of a newer format is refused, never read as older data:
//! reading it would compute changes against a ledger this accord does not
//! understand. Upgrades from older formats go in [`readable`], one step per
//! version, inside the transaction that opens the store.
//!
//! Tables keyed by (activation, audience, member) are `WITHOUT ROWID`: the
//! primary key is the table's own b-tree, so a row is stored once and one
//! audience's rows are one contiguous range, read in key order.

use rusqlite::Transaction;

use super::StoreError;

/// The format this accord reads and writes.
pub const VERSION: i64 = 1;

const TABLES: &str = "
CREATE TABLE ledger (
    activation    TEXT NOT NULL,
    audience      TEXT NOT NULL,
    member        TEXT NOT NULL,
    payload       BLOB,
    payload_hash  BLOB,
    remote_id     TEXT,
    status        TEXT NOT NULL CHECK (status IN ('accepted', 'rejected', 'pending')),
    attempts      INTEGER NOT NULL DEFAULT 0,
    error_code    TEXT,
    error_message TEXT,
    accepted_at   INTEGER,
    PRIMARY KEY (activation, audience, member)
) WITHOUT ROWID;

CREATE TABLE journal (
    request_id   INTEGER PRIMARY KEY,
    run_id       TEXT NOT NULL,
    activation   TEXT NOT NULL,
    audience     TEXT NOT NULL,
    op           TEXT NOT NULL,
    members      TEXT NOT NULL,
    started_at   INTEGER NOT NULL,
    completed_at INTEGER,
    summary      TEXT
);
CREATE INDEX journal_open ON journal (activation, request_id) WHERE completed_at IS NULL;

CREATE TABLE lists (
    activation TEXT NOT NULL,
    audience   TEXT NOT NULL,
    list_id    TEXT NOT NULL,
    name       TEXT NOT NULL,
    PRIMARY KEY (activation, audience)
) WITHOUT ROWID;

CREATE TABLE calls (
    destination TEXT NOT NULL,
    day         TEXT NOT NULL,
    used        INTEGER NOT NULL,
    PRIMARY KEY (destination, day)
) WITHOUT ROWID;

CREATE TABLE delivered (
    activation TEXT PRIMARY KEY,
    at         INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE file_state (
    activation TEXT PRIMARY KEY,
    run_id     TEXT NOT NULL,
    columns    TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE file_rows (
    activation TEXT NOT NULL,
    member     TEXT NOT NULL,
    row        TEXT NOT NULL,
    PRIMARY KEY (activation, member)
) WITHOUT ROWID;

CREATE TABLE file_pending (
    activation TEXT PRIMARY KEY,
    run_id     TEXT NOT NULL,
    columns    TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE file_pending_rows (
    activation TEXT NOT NULL,
    member     TEXT NOT NULL,
    row        TEXT NOT NULL,
    PRIMARY KEY (activation, member)
) WITHOUT ROWID;
";

/// The format of a store (0: nothing written yet).
pub fn version(tx: &Transaction) -> Result<i64, StoreError> {
    Ok(tx.query_row("PRAGMA user_version", [], |r| r.get(0))?)
}

/// Creates the tables of a store nothing was written to yet.
pub fn create(tx: &Transaction) -> Result<(), StoreError> {
    tx.execute_batch(TABLES)?;
    tx.pragma_update(None, "user_version", VERSION)?;
    Ok(())
}

/// Refuses a store of a newer format. Format 1 is the first, so no older
/// format needs upgrading yet; when format 2 comes, its upgrade from 1 goes
/// here, in the transaction that opens the store.
pub fn readable(found: i64) -> Result<(), StoreError> {
    if found > VERSION {
        return Err(StoreError::Newer {
            found,
            reads: VERSION,
        });
    }
    Ok(())
}
