//! The state of file deliveries: per activation, the membership the
//! destination holds (the committed state) and the delivery in progress
//! (the pending record), kept by the crash-safe protocol that `run::state`
//! describes.
//!
//! In: memberships (columns, and rows by member key) and run ids. Out: the
//! same, read back. `begin` writes the pending record in one transaction;
//! `commit` makes the pending membership the state and drops the record in
//! one transaction. So a crash leaves the old state, the old state and a
//! pending record, or the new state: never a part of either.

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Store, StoreError};

/// The format of the state records (and of the JSON files before the store).
pub const FORMAT: u32 = 1;

fn format_one() -> u32 {
    FORMAT
}

/// Destination rows by member key (account key or person key).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Membership {
    pub columns: Vec<String>,
    pub rows: BTreeMap<String, Vec<Value>>,
}

/// What the destination holds after a committed delivery.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct State {
    #[serde(default = "format_one")]
    pub format: u32,
    pub activation: String,
    pub run_id: String,
    /// The rows, when they are held here (JSON, older stores); empty rows
    /// and the columns when they are in `file`.
    pub membership: Membership,
    /// The columnar file of the rows (its name under `.accord/members/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// The changes file that, applied to `file`, gives the rows: the
    /// members added, updated or removed since `file` was written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes: Option<String>,
}

/// A delivery in progress.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pending {
    #[serde(default = "format_one")]
    pub format: u32,
    pub activation: String,
    pub run_id: String,
    /// As [`State::membership`].
    pub target: Membership,
    /// As [`State::file`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// As [`State::changes`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes: Option<String>,
}

/// The two tables of one kind of record: the committed state, or the
/// pending record.
#[derive(Clone, Copy)]
enum Record {
    Committed,
    Pending,
}

impl Record {
    fn head(self) -> &'static str {
        match self {
            Record::Committed => "file_state",
            Record::Pending => "file_pending",
        }
    }

    fn rows(self) -> &'static str {
        match self {
            Record::Committed => "file_rows",
            Record::Pending => "file_pending_rows",
        }
    }
}

impl Store {
    /// The committed state of an activation's file deliveries.
    pub fn load(&self, activation: &str) -> Result<Option<State>, StoreError> {
        self.read(|c| read(c, Record::Committed, activation))
            .map(|found| {
                found.map(|(run_id, membership, Files { file, changes })| State {
                    format: FORMAT,
                    activation: activation.to_string(),
                    run_id,
                    membership,
                    file,
                    changes,
                })
            })
    }

    /// The delivery in progress of an activation, if a run left one.
    pub fn load_pending(&self, activation: &str) -> Result<Option<Pending>, StoreError> {
        self.read(|c| read(c, Record::Pending, activation))
            .map(|found| {
                found.map(|(run_id, target, Files { file, changes })| Pending {
                    format: FORMAT,
                    activation: activation.to_string(),
                    run_id,
                    target,
                    file,
                    changes,
                })
            })
    }

    /// Records a delivery before it starts (replacing an older record).
    pub fn begin(&self, pending: &Pending) -> Result<(), StoreError> {
        self.write(|tx| write_pending(tx, pending))
    }

    /// Makes a delivered pending record the activation's state, and drops
    /// the record, in one transaction. The record must be the one `begin`
    /// wrote under this run id.
    pub fn commit(&self, pending: &Pending) -> Result<(), StoreError> {
        self.write(|tx| {
            let recorded: Option<String> = tx
                .query_row(
                    "SELECT run_id FROM file_pending WHERE activation = ?1",
                    [&pending.activation],
                    |r| r.get(0),
                )
                .optional()?;
            if recorded.as_deref() != Some(pending.run_id.as_str()) {
                return Err(StoreError::Database {
                    reason: format!(
                        "activation `{}`: no delivery under run id {} is pending, so none can be committed",
                        pending.activation, pending.run_id
                    ),
                });
            }
            tx.execute(
                "DELETE FROM file_rows WHERE activation = ?1",
                [&pending.activation],
            )?;
            tx.execute(
                "INSERT INTO file_rows SELECT activation, member, row FROM file_pending_rows WHERE activation = ?1",
                [&pending.activation],
            )?;
            tx.execute(
                "INSERT OR REPLACE INTO file_state (activation, run_id, columns, file, changes) SELECT activation, run_id, columns, file, changes FROM file_pending WHERE activation = ?1",
                [&pending.activation],
            )?;
            clear(tx, Record::Pending, &pending.activation)
        })
    }
}

/// Writes a pending record in a transaction of the caller's.
pub(super) fn write_pending(tx: &Transaction, pending: &Pending) -> Result<(), StoreError> {
    write(
        tx,
        Record::Pending,
        &pending.activation,
        &pending.run_id,
        &pending.target,
        &Files {
            file: pending.file.clone(),
            changes: pending.changes.clone(),
        },
    )
}

/// Writes a committed state in a transaction of the caller's.
pub(super) fn write_state(tx: &Transaction, state: &State) -> Result<(), StoreError> {
    write(
        tx,
        Record::Committed,
        &state.activation,
        &state.run_id,
        &state.membership,
        &Files {
            file: state.file.clone(),
            changes: state.changes.clone(),
        },
    )
}

fn write(
    tx: &Transaction,
    record: Record,
    activation: &str,
    run_id: &str,
    membership: &Membership,
    files: &Files,
) -> Result<(), StoreError> {
    clear(tx, record, activation)?;
    tx.execute(
        &format!(
            "INSERT INTO {} (activation, run_id, columns, file, changes) VALUES (?1, ?2, ?3, ?4, ?5)",
            record.head()
        ),
        params![
            activation,
            run_id,
            to_json(&membership.columns)?,
            files.file,
            files.changes
        ],
    )?;
    let mut insert = tx.prepare_cached(&format!(
        "INSERT INTO {} (activation, member, row) VALUES (?1, ?2, ?3)",
        record.rows()
    ))?;
    for (member, row) in &membership.rows {
        insert.execute(params![activation, member, to_json(row)?])?;
    }
    Ok(())
}

fn clear(tx: &Transaction, record: Record, activation: &str) -> Result<(), StoreError> {
    for table in [record.head(), record.rows()] {
        tx.execute(
            &format!("DELETE FROM {table} WHERE activation = ?1"),
            [activation],
        )?;
    }
    Ok(())
}

/// The members files a record names (none: its rows are JSON in the
/// database, as stores before format 4 kept them).
struct Files {
    file: Option<String>,
    changes: Option<String>,
}

fn read(
    c: &Connection,
    record: Record,
    activation: &str,
) -> Result<Option<(String, Membership, Files)>, StoreError> {
    // A store of an older format that `--preview` reads as it is may lack
    // the `file` column (format 3 and older: its rows are all in the
    // database) or the `changes` column (format 4: no changes files yet).
    let column = |name: &'static str| -> Result<&'static str, StoreError> {
        let present: bool = c.query_row(
            "SELECT count(*) > 0 FROM pragma_table_info(?1) WHERE name = ?2",
            [record.head(), name],
            |r| r.get(0),
        )?;
        Ok(if present { name } else { "NULL" })
    };
    let (file, changes) = (column("file")?, column("changes")?);
    let head: Option<(String, String, Files)> = c
        .query_row(
            &format!(
                "SELECT run_id, columns, {file}, {changes} FROM {} WHERE activation = ?1",
                record.head()
            ),
            [activation],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    Files {
                        file: r.get(2)?,
                        changes: r.get(3)?,
                    },
                ))
            },
        )
        .optional()?;
    let Some((run_id, columns, files)) = head else {
        return Ok(None);
    };
    let corrupt = |e: serde_json::Error| StoreError::Corrupt {
        activation: activation.to_string(),
        why: e.to_string(),
    };
    let mut membership = Membership {
        columns: serde_json::from_str(&columns).map_err(corrupt)?,
        rows: BTreeMap::new(),
    };
    let mut select = c.prepare(&format!(
        "SELECT member, row FROM {} WHERE activation = ?1",
        record.rows()
    ))?;
    let mut rows = select.query([activation])?;
    while let Some(r) = rows.next()? {
        let row: String = r.get(1)?;
        membership
            .rows
            .insert(r.get(0)?, serde_json::from_str(&row).map_err(corrupt)?);
    }
    Ok(Some((run_id, membership, files)))
}

fn to_json<T: Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Database {
        reason: e.to_string(),
    })
}
