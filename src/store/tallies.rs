//! The small records of API delivery: the vendor list (or segment) accord
//! created per (activation, audience), the API calls used per destination
//! and vendor day (a daily quota holds across runs), and each activation's
//! last successful delivery (schedules read it).
//!
//! In and out: plain values. The vendor day is the caller's: each vendor
//! resets its quota at midnight in its own time zone, which the vendor code
//! knows and the store does not.

use rusqlite::{OptionalExtension, params};

use super::{Store, StoreError};
use crate::time::Micros;

/// A vendor list accord created for an audience.
#[derive(Clone, Debug, PartialEq)]
pub struct ListRecord {
    pub id: String,
    pub name: String,
}

impl Store {
    /// The list accord created for an audience of an activation.
    pub fn list_id(
        &self,
        activation: &str,
        audience: &str,
    ) -> Result<Option<ListRecord>, StoreError> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT list_id, name FROM lists WHERE activation = ?1 AND audience = ?2",
                [activation, audience],
                |r| {
                    Ok(ListRecord {
                        id: r.get(0)?,
                        name: r.get(1)?,
                    })
                },
            )
            .optional()?)
        })
    }

    /// Records the list accord created (or found) for an audience.
    pub fn set_list_id(
        &self,
        activation: &str,
        audience: &str,
        list: &ListRecord,
    ) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.execute(
                "INSERT OR REPLACE INTO lists (activation, audience, list_id, name) VALUES (?1, ?2, ?3, ?4)",
                params![activation, audience, list.id, list.name],
            )?;
            Ok(())
        })
    }

    /// The API calls made to a destination on a vendor day (`2026-11-30`).
    pub fn calls_used(&self, destination: &str, day: &str) -> Result<u64, StoreError> {
        self.read(|c| {
            let used: Option<i64> = c
                .query_row(
                    "SELECT used FROM calls WHERE destination = ?1 AND day = ?2",
                    [destination, day],
                    |r| r.get(0),
                )
                .optional()?;
            Ok(used.unwrap_or(0).max(0) as u64)
        })
    }

    /// Counts `n` more API calls to a destination on a vendor day.
    pub fn add_calls(&self, destination: &str, day: &str, n: u64) -> Result<(), StoreError> {
        let n = i64::try_from(n).map_err(|_| StoreError::Database {
            reason: format!("{n} calls do not fit the store"),
        })?;
        self.write(|tx| {
            tx.execute(
                "INSERT INTO calls (destination, day, used) VALUES (?1, ?2, ?3)
                 ON CONFLICT (destination, day) DO UPDATE SET used = used + excluded.used",
                params![destination, day, n],
            )?;
            Ok(())
        })
    }

    /// When an activation was last delivered successfully.
    pub fn last_delivered(&self, activation: &str) -> Result<Option<Micros>, StoreError> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT at FROM delivered WHERE activation = ?1",
                [activation],
                |r| r.get(0),
            )
            .optional()?)
        })
    }

    /// Records a successful delivery of an activation.
    pub fn set_last_delivered(&self, activation: &str, at: Micros) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.execute(
                "INSERT OR REPLACE INTO delivered (activation, at) VALUES (?1, ?2)",
                params![activation, at],
            )?;
            Ok(())
        })
    }
}
