//! The ledger of API deliveries: per (activation, audience, member), what
//! the destination last accepted and how the latest attempt went.
//!
//! In: the outcome of each request, as [`LedgerUpdate`]s, one transaction
//! per outcome (thousands of rows). Out: one audience's rows, in member
//! order, to diff the next evaluation against ([`LedgerRow`]).
//!
//! The payload is the JSON of the mapped columns the destination accepted;
//! its SHA-256 is computed here, so every caller compares the same digest.
//! A rejection or a pending outcome keeps the last accepted payload: the
//! destination still holds it.

use rusqlite::{Transaction, params};
use sha2::{Digest, Sha256};

use super::{Store, StoreError};
use crate::time::Micros;

/// How the latest delivery of a member went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// The destination holds the member with `payload`.
    Accepted,
    /// The destination refused the member (`error`).
    Rejected,
    /// Sent; the destination has not said yet (asynchronous vendors).
    Pending,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Accepted => "accepted",
            Status::Rejected => "rejected",
            Status::Pending => "pending",
        }
    }

    fn parse(text: &str) -> Option<Status> {
        [Status::Accepted, Status::Rejected, Status::Pending]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

/// One member of an audience as the ledger holds it.
#[derive(Clone, Debug, PartialEq)]
pub struct LedgerRow {
    pub member: String,
    /// The JSON of the mapped columns the destination last accepted.
    pub payload: Option<Vec<u8>>,
    /// SHA-256 of `payload`.
    pub payload_hash: Option<[u8; 32]>,
    /// The vendor's id for the member (a Marketo lead id).
    pub remote_id: Option<String>,
    pub status: Status,
    /// Failed or pending outcomes since the member was last accepted.
    pub attempts: u32,
    /// The code and message of the last refusal.
    pub error: Option<(String, String)>,
    /// When the destination last accepted the member.
    pub accepted_at: Option<Micros>,
}

/// The outcome of one member in one request.
#[derive(Clone, Debug, PartialEq)]
pub enum LedgerUpdate {
    Accepted {
        member: String,
        payload: Vec<u8>,
        /// `None` keeps the id recorded before (vendors return it on create).
        remote_id: Option<String>,
        at: Micros,
    },
    Rejected {
        member: String,
        code: String,
        message: String,
    },
    Pending {
        member: String,
    },
    /// The destination no longer holds the member: its row is deleted.
    Removed {
        member: String,
    },
}

const ACCEPT: &str = "
INSERT INTO ledger (activation, audience, member, payload, payload_hash, remote_id, status, attempts, accepted_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'accepted', 0, ?7)
ON CONFLICT (activation, audience, member) DO UPDATE SET
    payload = excluded.payload,
    payload_hash = excluded.payload_hash,
    remote_id = coalesce(excluded.remote_id, remote_id),
    status = 'accepted',
    attempts = 0,
    error_code = NULL,
    error_message = NULL,
    accepted_at = excluded.accepted_at";

const FAIL: &str = "
INSERT INTO ledger (activation, audience, member, status, attempts, error_code, error_message)
VALUES (?1, ?2, ?3, ?4, 1, ?5, ?6)
ON CONFLICT (activation, audience, member) DO UPDATE SET
    status = excluded.status,
    attempts = attempts + 1,
    error_code = coalesce(excluded.error_code, error_code),
    error_message = coalesce(excluded.error_message, error_message)";

const REMOVE: &str = "DELETE FROM ledger WHERE activation = ?1 AND audience = ?2 AND member = ?3";

const HELD: &str = "
SELECT member, payload, payload_hash, remote_id, status, attempts, error_code, error_message, accepted_at
FROM ledger WHERE activation = ?1 AND audience = ?2 ORDER BY member";

const HELD_FIRST: &str = "
SELECT member, payload, payload_hash, remote_id, status, attempts, error_code, error_message, accepted_at
FROM ledger WHERE activation = ?1 AND audience = ?2 ORDER BY member LIMIT ?3";

const HELD_AFTER: &str = "
SELECT member, payload, payload_hash, remote_id, status, attempts, error_code, error_message, accepted_at
FROM ledger WHERE activation = ?1 AND audience = ?2 AND member > ?3 ORDER BY member LIMIT ?4";

/// A member the destination knows by its own id (a Marketo lead id), as
/// an upsert recorded it.
#[derive(Clone, Debug, PartialEq)]
pub struct RemoteMember {
    pub remote_id: String,
    pub member: String,
    /// The JSON of the columns the destination last accepted.
    pub payload: Option<Vec<u8>>,
}

const REMOTE: &str = "
SELECT remote_id, member, payload FROM ledger
WHERE activation = ?1 AND remote_id IS NOT NULL ORDER BY remote_id, member";

impl Store {
    /// Every member of an activation (any audience) that the destination
    /// gave an id, in id then member order: what links the destination's
    /// records back to accord's members.
    pub fn remote_members(&self, activation: &str) -> Result<Vec<RemoteMember>, StoreError> {
        self.read(|c| {
            let mut select = c.prepare_cached(REMOTE)?;
            let mut rows = select.query([activation])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                out.push(RemoteMember {
                    remote_id: r.get(0)?,
                    member: r.get(1)?,
                    payload: r.get(2)?,
                });
            }
            Ok(out)
        })
    }

    /// Every member the ledger holds for one audience of an activation, in
    /// member order.
    pub fn held(&self, activation: &str, audience: &str) -> Result<Vec<LedgerRow>, StoreError> {
        self.read(|c| {
            let mut select = c.prepare_cached(HELD)?;
            let mut rows = select.query([activation, audience])?;
            let mut held = Vec::new();
            while let Some(r) = rows.next()? {
                held.push(row(activation, r)?);
            }
            Ok(held)
        })
    }

    /// At most `limit` members the ledger holds for one audience, in member
    /// order, after `after` (from the first when `None`): the ledger a page
    /// at a time, so that planning a delivery never holds it whole. Pages
    /// read by key, not by offset, stay right while earlier members'
    /// outcomes are recorded between them.
    pub fn held_page(
        &self,
        activation: &str,
        audience: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<LedgerRow>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(|c| {
            let mut held = Vec::new();
            let mut collect = |mut rows: rusqlite::Rows| -> Result<(), StoreError> {
                while let Some(r) = rows.next()? {
                    held.push(row(activation, r)?);
                }
                Ok(())
            };
            match after {
                None => {
                    let mut select = c.prepare_cached(HELD_FIRST)?;
                    collect(select.query(params![activation, audience, limit])?)?;
                }
                Some(after) => {
                    let mut select = c.prepare_cached(HELD_AFTER)?;
                    collect(select.query(params![activation, audience, after, limit])?)?;
                }
            }
            Ok(held)
        })
    }

    /// Records the outcome of one request, all its members in one
    /// transaction.
    pub fn record(
        &self,
        activation: &str,
        audience: &str,
        updates: &[LedgerUpdate],
    ) -> Result<(), StoreError> {
        self.write(|tx| {
            for update in updates {
                apply(tx, activation, audience, update)?;
            }
            Ok(())
        })
    }
}

fn apply(
    tx: &Transaction,
    activation: &str,
    audience: &str,
    update: &LedgerUpdate,
) -> Result<(), StoreError> {
    match update {
        LedgerUpdate::Accepted {
            member,
            payload,
            remote_id,
            at,
        } => {
            let hash: [u8; 32] = Sha256::digest(payload).into();
            tx.prepare_cached(ACCEPT)?.execute(params![
                activation,
                audience,
                member,
                payload,
                &hash[..],
                remote_id,
                at
            ])?
        }
        LedgerUpdate::Rejected {
            member,
            code,
            message,
        } => tx.prepare_cached(FAIL)?.execute(params![
            activation,
            audience,
            member,
            Status::Rejected.as_str(),
            code,
            message
        ])?,
        LedgerUpdate::Pending { member } => tx.prepare_cached(FAIL)?.execute(params![
            activation,
            audience,
            member,
            Status::Pending.as_str(),
            None::<String>,
            None::<String>
        ])?,
        LedgerUpdate::Removed { member } => tx
            .prepare_cached(REMOVE)?
            .execute(params![activation, audience, member])?,
    };
    Ok(())
}

fn row(activation: &str, r: &rusqlite::Row) -> Result<LedgerRow, StoreError> {
    let corrupt = |why: String| StoreError::Corrupt {
        activation: activation.to_string(),
        why,
    };
    let status: String = r.get(4)?;
    let hash: Option<Vec<u8>> = r.get(2)?;
    let payload_hash = hash
        .map(|h| <[u8; 32]>::try_from(h.as_slice()))
        .transpose()
        .map_err(|_| corrupt("a payload hash is not 32 bytes".into()))?;
    let code: Option<String> = r.get(6)?;
    let message: Option<String> = r.get(7)?;
    Ok(LedgerRow {
        member: r.get(0)?,
        payload: r.get(1)?,
        payload_hash,
        remote_id: r.get(3)?,
        status: Status::parse(&status)
            .ok_or_else(|| corrupt(format!("the status `{status}` is unknown")))?,
        attempts: r.get(5)?,
        error: code.map(|code| (code, message.unwrap_or_default())),
        accepted_at: r.get(8)?,
    })
}
