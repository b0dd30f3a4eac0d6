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

/// The format this accord reads and writes. 2 added what append-only
/// sources read (`source_read`, `source_items`, `source_segments`); 3 the
/// breaches alerts fired for (`alert_breaches`); 4 the columnar file of a
/// file delivery's rows (`file_state.file`, `file_pending.file`); 5 the
/// changes file applied to it (`file_state.changes`, `file_pending.changes`).
pub const VERSION: i64 = 5;

/// The tables of format 1.
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

/// The tables format 2 added: per append-only source what was read (see
/// `reads`). One record per source: `kind` says what `source_items` hold
/// (`files`: local paths; `objects`: object-store URIs, both with size and
/// last-modified time) or whether `mark` is the high-water mark of a column
/// (`column`: PostgreSQL, Marketo), and `source_segments` name the cached
/// typed rows of the part already read, under `.accord/sources/`.
const TABLES_2: &str = "
CREATE TABLE source_read (
    source      TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('files', 'objects', 'column')),
    mark        TEXT,
    present     TEXT NOT NULL,
    bad_rows    INTEGER NOT NULL,
    samples     TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE source_items (
    source   TEXT NOT NULL,
    item     TEXT NOT NULL,
    size     INTEGER NOT NULL,
    modified INTEGER,
    PRIMARY KEY (source, item)
) WITHOUT ROWID;

CREATE TABLE source_segments (
    source TEXT NOT NULL,
    seq    INTEGER NOT NULL,
    file   TEXT NOT NULL,
    rows   INTEGER NOT NULL,
    PRIMARY KEY (source, seq)
) WITHOUT ROWID;
";

/// The table format 3 added: per alert, the breach in progress (see
/// `alerts`); no row: armed.
const TABLES_3: &str = "
CREATE TABLE alert_breaches (
    alert        TEXT PRIMARY KEY,
    fingerprint  TEXT NOT NULL,
    run_id       TEXT NOT NULL,
    at           INTEGER NOT NULL,
    baseline     INTEGER,
    baseline_run TEXT,
    notified     INTEGER NOT NULL CHECK (notified IN (0, 1))
) WITHOUT ROWID;
";

/// What format 4 added: the name of the columnar file that holds a
/// record's rows (`.accord/members/`). NULL: the rows are JSON in
/// `file_rows` or `file_pending_rows`, as every older store wrote them.
const TABLES_4: &str = "
ALTER TABLE file_state ADD COLUMN file TEXT;
ALTER TABLE file_pending ADD COLUMN file TEXT;
";

/// What format 5 added: the name of a changes file (`.accord/members/`)
/// that, applied to the record's `file`, gives its rows. NULL: `file`
/// holds them all, as every format 4 store wrote them.
const TABLES_5: &str = "
ALTER TABLE file_state ADD COLUMN changes TEXT;
ALTER TABLE file_pending ADD COLUMN changes TEXT;
";

/// The format of a store (0: nothing written yet).
pub fn version(tx: &Transaction) -> Result<i64, StoreError> {
    Ok(tx.query_row("PRAGMA user_version", [], |r| r.get(0))?)
}

/// Creates the tables of a store nothing was written to yet.
pub fn create(tx: &Transaction) -> Result<(), StoreError> {
    tx.execute_batch(TABLES)?;
    tx.execute_batch(TABLES_2)?;
    tx.execute_batch(TABLES_3)?;
    tx.execute_batch(TABLES_4)?;
    tx.execute_batch(TABLES_5)?;
    tx.pragma_update(None, "user_version", VERSION)?;
    Ok(())
}

/// Refuses a store of a newer format.
pub fn readable(found: i64) -> Result<(), StoreError> {
    if found > VERSION {
        return Err(StoreError::Newer {
            found,
            reads: VERSION,
        });
    }
    Ok(())
}

/// Brings a store of an older format (`found`, at least 1) up to
/// [`VERSION`], one step per format, in the transaction that opens the
/// store; refuses a newer one. Nothing already stored changes.
pub fn upgrade(tx: &Transaction, found: i64) -> Result<(), StoreError> {
    readable(found)?;
    if found < 2 {
        // 1 -> 2: the records of append-only sources, empty (every such
        // source is read in full once, then incrementally).
        tx.execute_batch(TABLES_2)?;
    }
    if found < 3 {
        // 2 -> 3: no alert has fired yet; every alert starts armed.
        tx.execute_batch(TABLES_3)?;
    }
    if found < 4 {
        // 3 -> 4: every record keeps its JSON rows (no file) until its
        // activation's next commit writes them as a file.
        tx.execute_batch(TABLES_4)?;
    }
    if found < 5 {
        // 4 -> 5: every record's file holds all its rows.
        tx.execute_batch(TABLES_5)?;
    }
    if found < VERSION {
        tx.pragma_update(None, "user_version", VERSION)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use super::*;

    /// A store of format 2 (append-only records included) gains
    /// `alert_breaches` and keeps every row.
    #[test]
    fn format_2_upgrades_to_the_current_format() {
        let mut c = Connection::open_in_memory().expect("a database");
        c.execute_batch(TABLES).expect("format 1 tables");
        c.execute_batch(TABLES_2).expect("format 2 tables");
        c.pragma_update(None, "user_version", 2).expect("version");
        c.execute(
            "INSERT INTO source_read (source, fingerprint, kind, mark, present, bad_rows, samples) VALUES ('s', 'f', 'column', '7', '[]', 0, '[]')",
            [],
        )
        .expect("a row");
        let tx = c.transaction().expect("tx");
        upgrade(&tx, 2).expect("upgrades");
        tx.commit().expect("commit");
        let tx = c.transaction().expect("tx");
        assert_eq!(version(&tx).expect("version"), VERSION);
        let mark: String = tx
            .query_row("SELECT mark FROM source_read WHERE source = 's'", [], |r| {
                r.get(0)
            })
            .expect("the old row");
        assert_eq!(mark, "7");
        tx.execute(
            "INSERT INTO alert_breaches (alert, fingerprint, run_id, at, notified) VALUES ('a', 'f', 'r', 1, 1)",
            [],
        )
        .expect("the new table takes rows");
    }

    /// A store of format 1 gains the tables of formats 2 and 3, keeps its
    /// rows, and is of the current format after; a current store is left
    /// alone.
    #[test]
    fn format_1_upgrades_to_the_current_format() {
        let mut c = Connection::open_in_memory().expect("a database");
        c.execute_batch(TABLES).expect("format 1 tables");
        c.pragma_update(None, "user_version", 1).expect("version");
        c.execute("INSERT INTO delivered (activation, at) VALUES ('a', 5)", [])
            .expect("a row");
        let tx = c.transaction().expect("tx");
        assert_eq!(version(&tx).expect("version"), 1);
        upgrade(&tx, 1).expect("upgrades");
        tx.commit().expect("commit");
        let tx = c.transaction().expect("tx");
        assert_eq!(version(&tx).expect("version"), VERSION);
        for table in ["source_read", "alert_breaches"] {
            let n: i64 = tx
                .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
                .expect("the new table");
            assert_eq!(n, 0, "{table}");
        }
        let at: i64 = tx
            .query_row("SELECT at FROM delivered WHERE activation = 'a'", [], |r| {
                r.get(0)
            })
            .expect("the old row");
        assert_eq!(at, 5);
        upgrade(&tx, VERSION).expect("nothing to do");
        assert!(matches!(
            upgrade(&tx, VERSION + 1),
            Err(StoreError::Newer { .. })
        ));
    }
}
