//! What append-only sources already read: per source one record, the items
//! it read (files or objects with their size and last-modified time), and
//! the segments of cached typed rows that hold what those items gave.
//!
//! In: a source name and a [`ReadUpdate`]. Out: the [`ReadRecord`] read
//! back. A record is replaced (a full read) or extended (new items and one
//! new segment) in one transaction, so a crash leaves the record before the
//! read or after it, never a part: the items and the segment that holds
//! their rows are committed together.
//!
//! One record fits every kind of source: local files and object-store
//! listings are items (path or URI, size, last-modified); a database table
//! or an activity API is a `column` record whose `mark` is the high-water
//! mark of its ordering column (the largest value read), with no items.
//!
//! The segment files themselves are written by `run` before the record
//! that names them is committed; a segment no record names is garbage that
//! the next remembering read removes.

use rusqlite::{Connection, OptionalExtension, params};

use super::{Store, StoreError};
use crate::time::Micros;

/// One thing a source read: a file (its path relative to the project) or
/// an object (its URI), with its size and last-modified time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadItem {
    pub item: String,
    pub size: u64,
    pub modified: Option<Micros>,
}

/// A file of cached typed rows (under `.accord/sources/<source>/`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Increases with every segment written for the source, across full
    /// reads too, so a new segment's file never replaces one a committed
    /// record still names.
    pub seq: i64,
    /// The file name inside the source's cache folder.
    pub file: String,
    pub rows: u64,
}

/// What a source read before.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadRecord {
    /// The source plan, schema and reader the record holds for: another
    /// fingerprint means the cached rows are typed for something else.
    pub fingerprint: String,
    /// `files`, `objects` or `column`.
    pub kind: String,
    /// The high-water mark of a `column` record.
    pub mark: Option<String>,
    /// The schema fields the part read carries.
    pub present: Vec<String>,
    /// Bad rows left out of the part read, and the first ones as
    /// `file:line: reason`.
    pub bad_rows: u64,
    pub samples: Vec<String>,
    /// Sorted by item.
    pub items: Vec<ReadItem>,
    /// In the order their rows were read.
    pub segments: Vec<Segment>,
}

/// A change to a source's record.
#[derive(Clone, Debug, PartialEq)]
pub enum ReadUpdate {
    /// A full read: the record becomes this one.
    Replace(ReadRecord),
    /// An incremental read: more items and their segment (none when they
    /// held no rows); the record's present fields, bad-row count and
    /// samples become these, and its mark (when given).
    Extend {
        items: Vec<ReadItem>,
        segment: Option<Segment>,
        present: Vec<String>,
        bad_rows: u64,
        samples: Vec<String>,
        mark: Option<String>,
    },
}

fn corrupt(source: &str, why: String) -> StoreError {
    StoreError::Database {
        reason: format!("the record of source `{source}` cannot be read: {why}"),
    }
}

/// Whether the tables exist: a `--preview` reads a store of format 1 as it
/// is, without upgrading it.
fn has_tables(c: &Connection) -> Result<bool, StoreError> {
    Ok(c.query_row(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'source_read'",
        [],
        |_| Ok(()),
    )
    .optional()?
    .is_some())
}

impl Store {
    /// What `source` read before, if it is recorded.
    pub fn read_record(&self, source: &str) -> Result<Option<ReadRecord>, StoreError> {
        self.read(|c| {
            if !has_tables(c)? {
                return Ok(None);
            }
            let head = c
                .query_row(
                    "SELECT fingerprint, kind, mark, present, bad_rows, samples FROM source_read WHERE source = ?1",
                    [source],
                    |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, Option<String>>(2)?,
                            r.get::<_, String>(3)?,
                            r.get::<_, i64>(4)?,
                            r.get::<_, String>(5)?,
                        ))
                    },
                )
                .optional()?;
            let Some((fingerprint, kind, mark, present, bad_rows, samples)) = head else {
                return Ok(None);
            };
            let list = |text: &str| -> Result<Vec<String>, StoreError> {
                serde_json::from_str(text).map_err(|e| corrupt(source, e.to_string()))
            };
            let mut items = Vec::new();
            let mut stmt = c.prepare(
                "SELECT item, size, modified FROM source_items WHERE source = ?1 ORDER BY item",
            )?;
            for row in stmt.query_map([source], |r| {
                Ok(ReadItem {
                    item: r.get(0)?,
                    size: r.get::<_, i64>(1)?.max(0) as u64,
                    modified: r.get(2)?,
                })
            })? {
                items.push(row?);
            }
            let mut segments = Vec::new();
            let mut stmt = c.prepare(
                "SELECT seq, file, rows FROM source_segments WHERE source = ?1 ORDER BY seq",
            )?;
            for row in stmt.query_map([source], |r| {
                Ok(Segment {
                    seq: r.get(0)?,
                    file: r.get(1)?,
                    rows: r.get::<_, i64>(2)?.max(0) as u64,
                })
            })? {
                segments.push(row?);
            }
            Ok(Some(ReadRecord {
                fingerprint,
                kind,
                mark,
                present: list(&present)?,
                bad_rows: bad_rows.max(0) as u64,
                samples: list(&samples)?,
                items,
                segments,
            }))
        })
    }

    /// Applies `update` to the record of `source` in one transaction. An
    /// `Extend` of a source without a record is an error (the caller read
    /// the record first, under the project lock).
    pub fn remember_read(&self, source: &str, update: &ReadUpdate) -> Result<(), StoreError> {
        let json = |v: &Vec<String>| serde_json::to_string(v).unwrap_or_else(|_| "[]".into());
        self.write(|tx| {
            let insert_items = |items: &[ReadItem]| -> Result<(), StoreError> {
                let mut stmt = tx.prepare(
                    "INSERT OR REPLACE INTO source_items (source, item, size, modified) VALUES (?1, ?2, ?3, ?4)",
                )?;
                for i in items {
                    stmt.execute(params![source, i.item, i.size as i64, i.modified])?;
                }
                Ok(())
            };
            let insert_segment = |s: &Segment| -> Result<(), StoreError> {
                tx.execute(
                    "INSERT INTO source_segments (source, seq, file, rows) VALUES (?1, ?2, ?3, ?4)",
                    params![source, s.seq, s.file, s.rows as i64],
                )?;
                Ok(())
            };
            match update {
                ReadUpdate::Replace(record) => {
                    for table in ["source_read", "source_items", "source_segments"] {
                        tx.execute(&format!("DELETE FROM {table} WHERE source = ?1"), [source])?;
                    }
                    tx.execute(
                        "INSERT INTO source_read (source, fingerprint, kind, mark, present, bad_rows, samples) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                        params![
                            source,
                            record.fingerprint,
                            record.kind,
                            record.mark,
                            json(&record.present),
                            record.bad_rows as i64,
                            json(&record.samples)
                        ],
                    )?;
                    insert_items(&record.items)?;
                    for s in &record.segments {
                        insert_segment(s)?;
                    }
                }
                ReadUpdate::Extend {
                    items,
                    segment,
                    present,
                    bad_rows,
                    samples,
                    mark,
                } => {
                    let changed = tx.execute(
                        "UPDATE source_read SET present = ?2, bad_rows = ?3, samples = ?4, mark = COALESCE(?5, mark) WHERE source = ?1",
                        params![source, json(present), *bad_rows as i64, json(samples), mark],
                    )?;
                    if changed != 1 {
                        return Err(corrupt(source, "no record to extend".into()));
                    }
                    insert_items(items)?;
                    if let Some(s) = segment {
                        insert_segment(s)?;
                    }
                }
            }
            Ok(())
        })
    }

    /// Forgets what `source` read: its next read is a full one.
    pub fn forget_read(&self, source: &str) -> Result<(), StoreError> {
        self.write(|tx| {
            for table in ["source_read", "source_items", "source_segments"] {
                tx.execute(&format!("DELETE FROM {table} WHERE source = ?1"), [source])?;
            }
            Ok(())
        })
    }
}
