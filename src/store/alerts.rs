//! Per alert, the breach in progress: so that `repeat = "once"` notifies
//! once per breach, not once per run, and a size alert keeps comparing with
//! the size before the breach while it lasts.
//!
//! A row means "breached": written by the live run in which the condition
//! starts to hold, with the size it compared with (size alerts) and whether
//! the notification got through; kept while the condition holds; deleted by
//! the first live run in which it no longer holds, which re-arms the alert.
//! The row carries the fingerprint of the alert's plan node: an alert whose
//! definition changed (another threshold, another target) is a new alert.

use rusqlite::{OptionalExtension, params};

use super::{Store, StoreError};
use crate::time::Micros;

/// An alert's breach in progress.
#[derive(Clone, Debug, PartialEq)]
pub struct Breach {
    /// The alert's plan fingerprint when the breach began.
    pub fingerprint: String,
    /// The run in which it began, and when (its `now`).
    pub run_id: String,
    pub at: Micros,
    /// Size alerts: the size before the breach, and the run that had it.
    pub baseline: Option<(u64, String)>,
    /// Whether the breach was notified (or had nothing to notify): a send
    /// that failed is tried again by the next run.
    pub notified: bool,
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
                "SELECT fingerprint, run_id, at, baseline, baseline_run, notified FROM alert_breaches WHERE alert = ?1",
                [alert],
                |r| {
                    let size: Option<i64> = r.get(3)?;
                    let run: Option<String> = r.get(4)?;
                    Ok(Breach {
                        fingerprint: r.get(0)?,
                        run_id: r.get(1)?,
                        at: r.get(2)?,
                        baseline: size.zip(run).map(|(n, run)| (n.max(0) as u64, run)),
                        notified: r.get(5)?,
                    })
                },
            )
            .optional()?)
        })
    }

    /// Records `alert`'s breach (replacing the one it had).
    pub fn set_alert_breach(&self, alert: &str, breach: &Breach) -> Result<(), StoreError> {
        let (size, run) = match &breach.baseline {
            Some((n, run)) => (
                Some(i64::try_from(*n).unwrap_or(i64::MAX)),
                Some(run.as_str()),
            ),
            None => (None, None),
        };
        self.write(|tx| {
            tx.execute(
                "INSERT OR REPLACE INTO alert_breaches (alert, fingerprint, run_id, at, baseline, baseline_run, notified) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![alert, breach.fingerprint, breach.run_id, breach.at, size, run, breach.notified],
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
            baseline: Some((10, "r0".into())),
            notified: true,
        };
        store.set_alert_breach("a", &breach).expect("write");
        assert_eq!(store.alert_breach("a").expect("read"), Some(breach));
        store.clear_alert_breach("a").expect("clear");
        assert_eq!(store.alert_breach("a").expect("read"), None);
    }
}
