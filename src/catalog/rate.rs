//! API rate limits as the catalog states them, and how a destination's own
//! `rate_limit` may lower them.
//!
//! Input: the catalog's limit and the one a spec writes. Output: which parts
//! of the written one exceed the catalog's, and the effective limit (each
//! part the stricter of the two). Pure. A spec may only lower a vendor's
//! limit: going over it earns 429s, not speed.

use serde::Serialize;

/// At most `calls` requests in any window of `per_seconds`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Window {
    pub calls: u32,
    pub per_seconds: u32,
}

impl Window {
    /// Whether this window allows a higher rate than `other`; compared as
    /// rates, so 50 per 10 s exceeds 100 per 60 s.
    pub fn exceeds(self, other: Window) -> bool {
        u64::from(self.calls) * u64::from(other.per_seconds)
            > u64::from(other.calls) * u64::from(self.per_seconds)
    }
}

/// An API rate limit: a sliding window, in-flight and daily caps, each
/// `None` when the vendor publishes no figure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct RateLimit {
    #[serde(flatten)]
    pub window: Option<Window>,
    /// Calls allowed in flight at once.
    pub concurrency: Option<u32>,
    /// Calls allowed per day.
    pub daily: Option<u32>,
}

impl RateLimit {
    /// The parts of `wanted` above this limit, by their spec key (`calls`
    /// stands for the `calls`/`per` rate). A part this limit leaves open may
    /// be set to anything.
    pub fn raised_by(&self, wanted: &RateLimit) -> Vec<&'static str> {
        let mut raised = Vec::new();
        if let (Some(w), Some(c)) = (wanted.window, self.window)
            && w.exceeds(c)
        {
            raised.push("calls");
        }
        if above(wanted.concurrency, self.concurrency) {
            raised.push("concurrent");
        }
        if above(wanted.daily, self.daily) {
            raised.push("daily");
        }
        raised
    }

    /// The limit a run keeps to: each part the stricter of this one and
    /// `wanted` (a part either leaves open comes from the other).
    pub fn lowered_by(&self, wanted: &RateLimit) -> RateLimit {
        RateLimit {
            window: match (self.window, wanted.window) {
                (Some(c), Some(w)) if w.exceeds(c) => Some(c),
                (c, w) => w.or(c),
            },
            concurrency: stricter(self.concurrency, wanted.concurrency),
            daily: stricter(self.daily, wanted.daily),
        }
    }
}

fn above(wanted: Option<u32>, limit: Option<u32>) -> bool {
    matches!((wanted, limit), (Some(w), Some(l)) if w > l)
}

fn stricter(a: Option<u32>, b: Option<u32>) -> Option<u32> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MARKETO: RateLimit = RateLimit {
        window: Some(Window {
            calls: 100,
            per_seconds: 20,
        }),
        concurrency: Some(10),
        daily: Some(50_000),
    };

    fn wanted(calls: u32, per_seconds: u32) -> RateLimit {
        RateLimit {
            window: Some(Window { calls, per_seconds }),
            concurrency: None,
            daily: None,
        }
    }

    #[test]
    fn windows_compare_as_rates() {
        assert!(
            wanted(50, 5)
                .window
                .unwrap()
                .exceeds(MARKETO.window.unwrap())
        );
        assert!(
            !wanted(300, 60)
                .window
                .unwrap()
                .exceeds(MARKETO.window.unwrap())
        );
        assert!(
            !wanted(100, 20)
                .window
                .unwrap()
                .exceeds(MARKETO.window.unwrap())
        );
        assert!(
            wanted(301, 60)
                .window
                .unwrap()
                .exceeds(MARKETO.window.unwrap())
        );
    }

    #[test]
    fn raising_any_part_is_reported_by_its_key() {
        let mut w = wanted(50, 5);
        w.concurrency = Some(11);
        w.daily = Some(50_000);
        assert_eq!(MARKETO.raised_by(&w), ["calls", "concurrent"]);
        assert!(MARKETO.raised_by(&wanted(50, 20)).is_empty());
    }

    #[test]
    fn an_open_part_takes_any_value() {
        let open = RateLimit {
            window: None,
            concurrency: Some(25),
            daily: None,
        };
        let mut w = wanted(1_000_000, 1);
        w.daily = Some(u32::MAX);
        assert!(open.raised_by(&w).is_empty());
        let effective = open.lowered_by(&w);
        assert_eq!(effective.window, w.window);
        assert_eq!(effective.concurrency, Some(25));
        assert_eq!(effective.daily, Some(u32::MAX));
    }

    #[test]
    fn lowering_keeps_the_stricter_part() {
        let mut w = wanted(50, 20);
        w.concurrency = Some(5);
        let effective = MARKETO.lowered_by(&w);
        assert_eq!(effective.window, w.window);
        assert_eq!(effective.concurrency, Some(5));
        assert_eq!(effective.daily, Some(50_000));
        assert_eq!(MARKETO.lowered_by(&wanted(500, 20)).window, MARKETO.window);
    }
}
