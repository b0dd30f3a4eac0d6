//! The request journal: an intent written before each API request, and its
//! outcome after.
//!
//! In: what a request is about to do (run id, activation, audience,
//! operation, member keys), then when it completed and a summary. Out: the
//! intents of an activation that never completed: requests a crash (or a
//! kill) cut off, whose effect at the destination is unknown, so the next
//! run can say so and reconcile before it sends anew.

use rusqlite::params;

use super::{Store, StoreError};
use crate::time::Micros;

/// A request about to be sent.
#[derive(Clone, Debug, PartialEq)]
pub struct Intent<'a> {
    pub run_id: &'a str,
    pub activation: &'a str,
    pub audience: &'a str,
    /// The vendor operation (`upsert`, `add`, `remove`).
    pub op: &'a str,
    pub members: &'a [String],
    pub at: Micros,
}

/// A request whose outcome was never recorded.
#[derive(Clone, Debug, PartialEq)]
pub struct OpenIntent {
    pub request_id: i64,
    pub run_id: String,
    pub audience: String,
    pub op: String,
    pub members: Vec<String>,
    pub started_at: Micros,
}

impl Store {
    /// Journals a request before it is sent; returns its request id.
    pub fn intent(&self, intent: &Intent) -> Result<i64, StoreError> {
        let members = serde_json::to_string(intent.members).map_err(|e| StoreError::Database {
            reason: e.to_string(),
        })?;
        self.write(|tx| {
            tx.execute(
                "INSERT INTO journal (run_id, activation, audience, op, members, started_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![intent.run_id, intent.activation, intent.audience, intent.op, members, intent.at],
            )?;
            Ok(tx.last_insert_rowid())
        })
    }

    /// Records that a journaled request completed, with a summary of its
    /// outcome (`200: 498 accepted, 2 rejected`).
    pub fn complete(&self, request_id: i64, at: Micros, summary: &str) -> Result<(), StoreError> {
        self.write(|tx| {
            let changed = tx.execute(
                "UPDATE journal SET completed_at = ?2, summary = ?3 WHERE request_id = ?1",
                params![request_id, at, summary],
            )?;
            if changed == 0 {
                return Err(StoreError::Database {
                    reason: format!("no request {request_id} is journaled"),
                });
            }
            Ok(())
        })
    }

    /// The requests of an activation that were sent (or about to be) and
    /// never completed, oldest first.
    pub fn open_intents(&self, activation: &str) -> Result<Vec<OpenIntent>, StoreError> {
        self.read(|c| {
            let mut select = c.prepare_cached(
                "SELECT request_id, run_id, audience, op, members, started_at FROM journal
                 WHERE activation = ?1 AND completed_at IS NULL ORDER BY request_id",
            )?;
            let mut rows = select.query([activation])?;
            let mut open = Vec::new();
            while let Some(r) = rows.next()? {
                let members: String = r.get(4)?;
                open.push(OpenIntent {
                    request_id: r.get(0)?,
                    run_id: r.get(1)?,
                    audience: r.get(2)?,
                    op: r.get(3)?,
                    members: serde_json::from_str(&members).map_err(|e| StoreError::Corrupt {
                        activation: activation.to_string(),
                        why: e.to_string(),
                    })?,
                    started_at: r.get(5)?,
                });
            }
            Ok(open)
        })
    }
}
