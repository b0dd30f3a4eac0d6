//! Per alert, the breach it already fired for: so that `repeat = "once"`
//! notifies once per breach, not once per run.
//!
//! A row means "breached, and fired": written when a live run fires the
//! alert (and its notification, if any, was sent), kept while the
//! condition holds, deleted by the first live run in which it no longer
//! holds, which re-arms the alert. The row carries the fingerprint of the
//! alert's plan node: an alert whose definition changed (another threshold,
//! another target) is a new alert, armed again.

use rusqlite::{OptionalExtension, params};

use super::{Store, StoreError};
use crate::time::Micros;

/// The breach an alert fired for.
#[derive(Clone, Debug, PartialEq)]
pub struct Breach {
    /// The alert's plan fingerprint when it fired.
    pub fingerprint: String,
    /// The run that fired it, and when (its `now`).
    pub run_id: String,
    pub at: Micros,
}

impl Store {
    /// The breach `alert` fired for and has not cleared since. A store of
    /// format 2 that a preview peeks at (it upgrades nothing) has no such
    /// table yet: no alert has fired there.
    pub fn alert_breach(&self, alert: &str) -> Result<Option<Breach>, StoreError> {
        self.read(|c| {
            let exists: bool = c.query_row(
                "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alert_breaches')",
                [],
                |r| r.get(0),
            )?;
            if !exists {
                return Ok(None);
            }
            Ok(c.query_row(
                "SELECT fingerprint, run_id, at FROM alert_breaches WHERE alert = ?1",
                [alert],
                |r| {
                    Ok(Breach {
                        fingerprint: r.get(0)?,
                        run_id: r.get(1)?,
                        at: r.get(2)?,
                    })
                },
            )
            .optional()?)
        })
    }

    /// Records that `alert` fired for its current breach.
    pub fn set_alert_breach(&self, alert: &str, breach: &Breach) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.execute(
                "INSERT OR REPLACE INTO alert_breaches (alert, fingerprint, run_id, at) VALUES (?1, ?2, ?3, ?4)",
                params![alert, breach.fingerprint, breach.run_id, breach.at],
            )?;
            Ok(())
        })
    }

    /// Re-arms `alert`: its condition cleared.
    pub fn clear_alert_breach(&self, alert: &str) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.execute("DELETE FROM alert_breaches WHERE alert = ?1", [alert])?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_breach_is_kept_until_cleared() {
        let store = Store::open_in_memory().expect("a store");
        assert_eq!(store.alert_breach("a").expect("read"), None);
        let breach = Breach {
            fingerprint: "f".into(),
            run_id: "r1".into(),
            at: 5,
        };
        store.set_alert_breach("a", &breach).expect("write");
        assert_eq!(store.alert_breach("a").expect("read"), Some(breach));
        store.clear_alert_breach("a").expect("clear");
        assert_eq!(store.alert_breach("a").expect("read"), None);
    }
}
