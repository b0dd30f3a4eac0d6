//! When an activation's schedule calls for a delivery.
//!
//! A batch schedule cuts time into windows that open at fixed UTC instants:
//! `daily@HH:MM` at HH:MM every day, `every Nh` at 00:00 UTC and every N
//! hours after (N divides 24, so every day starts a window). An activation
//! is due when a window has opened since its last successful delivery, at
//! or before the run's `now`: one delivery serves every window missed since,
//! so a run after three missed days delivers once. An activation never
//! delivered is due, and a `streaming` one is due on every run.
//!
//! What counts as a successful delivery (the run's statuses `delivered` and
//! `unchanged`) is the run's to decide; this module only reads the time it
//! recorded. Input: the schedule, that time and `now`. Output: whether the
//! activation is due and when it is next due. Pure: the clock enters as a
//! value, and the arithmetic is chrono's civil UTC time (no time zones).

use chrono::{Duration, NaiveDateTime, Timelike};

use crate::plan::Schedule;
use crate::time::{self, Micros};

/// Whether a schedule calls for a delivery at `now`, given the activation's
/// last successful delivery (`None`: never delivered).
pub fn is_due(schedule: Schedule, last_delivered: Option<Micros>, now: Micros) -> bool {
    match (schedule, last_delivered) {
        (Schedule::Streaming, _) | (_, None) => true,
        (_, Some(last)) => next_window(schedule, last).is_none_or(|next| next <= now),
    }
}

/// When the activation is next due after a delivery at `last_delivered`:
/// the first window that opens strictly after it. `None` for a streaming
/// schedule (due on every run) and for an activation never delivered (due
/// now), and for times beyond the calendar.
pub fn next_due(schedule: Schedule, last_delivered: Option<Micros>) -> Option<Micros> {
    next_window(schedule, last_delivered?)
}

/// The first window of `schedule` that opens strictly after `t`.
fn next_window(schedule: Schedule, t: Micros) -> Option<Micros> {
    let at = time::utc(t)?;
    let midnight = at.date().and_hms_opt(0, 0, 0)?;
    let next = match schedule {
        Schedule::Streaming => return None,
        Schedule::Daily { hour, minute } => {
            let today = midnight + Duration::hours(hour.into()) + Duration::minutes(minute.into());
            if today > at {
                today
            } else {
                today + Duration::days(1)
            }
        }
        Schedule::Every { hours } => {
            // The window `at` falls in opened at a multiple of `hours`
            // after midnight; the next one opens `hours` later (at the
            // next midnight for the day's last window).
            let hours = u32::from(hours.max(1));
            let opened = midnight + Duration::hours(i64::from(at.hour() / hours * hours));
            opened + Duration::hours(i64::from(hours))
        }
    };
    Some(micros(next))
}

fn micros(at: NaiveDateTime) -> Micros {
    at.and_utc().timestamp_micros()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(text: &str) -> Micros {
        time::parse_timestamp(text).expect("a time")
    }

    fn next(schedule: &str, last: &str) -> String {
        let schedule = Schedule::parse(schedule).expect("a schedule");
        time::format_timestamp(next_due(schedule, Some(t(last))).expect("a next window"))
    }

    #[test]
    fn daily_windows_open_at_their_time_of_day() {
        assert_eq!(
            next("daily@02:00", "2026-11-28T01:59:59Z"),
            "2026-11-28T02:00:00Z"
        );
        // A delivery at the very instant a window opens serves that window.
        assert_eq!(
            next("daily@02:00", "2026-11-28T02:00:00Z"),
            "2026-11-29T02:00:00Z"
        );
        // Across a month's and a year's end.
        assert_eq!(
            next("daily@23:30", "2026-12-31T23:45:00Z"),
            "2027-01-01T23:30:00Z"
        );
        assert_eq!(
            next("daily@00:00", "2028-02-28T12:00:00Z"),
            "2028-02-29T00:00:00Z"
        );
    }

    #[test]
    fn every_n_hours_is_anchored_at_midnight_utc() {
        for (at, expected) in [
            ("2026-11-28T00:00:00Z", "2026-11-28T06:00:00Z"),
            ("2026-11-28T05:59:59Z", "2026-11-28T06:00:00Z"),
            ("2026-11-28T06:00:00Z", "2026-11-28T12:00:00Z"),
            ("2026-11-28T13:10:00Z", "2026-11-28T18:00:00Z"),
            ("2026-11-28T18:00:00Z", "2026-11-29T00:00:00Z"),
            ("2026-11-28T23:59:59Z", "2026-11-29T00:00:00Z"),
        ] {
            assert_eq!(next("every 6h", at), expected, "every 6h after {at}");
        }
        assert_eq!(
            next("every 8h", "2026-11-28T16:00:00Z"),
            "2026-11-29T00:00:00Z"
        );
        assert_eq!(
            next("every 3h", "2026-11-28T22:00:00Z"),
            "2026-11-29T00:00:00Z"
        );
        assert_eq!(
            next("every 12h", "2026-11-28T11:00:00Z"),
            "2026-11-28T12:00:00Z"
        );
    }

    #[test]
    fn due_once_a_window_has_opened_since_the_last_delivery() {
        let daily = Schedule::Daily { hour: 2, minute: 0 };
        let last = Some(t("2026-11-27T02:05:00Z"));
        assert!(!is_due(daily, last, t("2026-11-28T01:59:00Z")));
        assert!(is_due(daily, last, t("2026-11-28T02:00:00Z")));
        // Three missed windows call for one delivery, not three.
        assert!(is_due(daily, last, t("2026-11-30T09:00:00Z")));
        // Never delivered: due at any time; streaming: due on every run.
        assert!(is_due(daily, None, t("2026-11-28T01:59:00Z")));
        assert!(is_due(Schedule::Streaming, last, t("2026-11-27T02:06:00Z")));
        assert_eq!(next_due(Schedule::Streaming, last), None);
        assert_eq!(next_due(daily, None), None);
        // A clock set back before the last delivery: not due until the
        // window after that delivery.
        assert!(!is_due(daily, last, t("2026-11-26T12:00:00Z")));
    }
}
