//! How long to wait before sending a request again: full-jitter exponential
//! backoff (a random wait between zero and `base * 2^attempt`, capped), so
//! that clients refused together do not come back together, and never less
//! than the vendor's `Retry-After`.
//!
//! In: the attempt number (1 for the first retry) and the `Retry-After` the
//! vendor sent, if any. Out: the wait. The random source is passed in, so
//! tests can pin it.

use std::time::Duration;

use rand::Rng;

/// The backoff of one destination's requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// The ceiling of the first retry's wait.
    pub base: Duration,
    /// No wait exceeds this (except a longer `Retry-After`).
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff {
            base: Duration::from_millis(500),
            max: Duration::from_secs(60),
        }
    }
}

impl Backoff {
    /// The ceiling of the wait before retry `attempt` (1-based):
    /// `base * 2^(attempt-1)`, at most `max`.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(30);
        self.base.saturating_mul(1u32 << doublings).min(self.max)
    }

    /// The wait before retry `attempt`: uniform in `[0, ceiling]`, raised
    /// to `retry_after` when the vendor asked for longer.
    pub fn delay(
        &self,
        attempt: u32,
        retry_after: Option<Duration>,
        rng: &mut impl Rng,
    ) -> Duration {
        let ceiling = self.ceiling(attempt);
        let jittered = if ceiling.is_zero() {
            Duration::ZERO
        } else {
            Duration::from_nanos(
                rng.random_range(0..=ceiling.as_nanos().min(u64::MAX as u128) as u64),
            )
        };
        jittered.max(retry_after.unwrap_or(Duration::ZERO))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn backoff() -> Backoff {
        Backoff {
            base: Duration::from_millis(100),
            max: Duration::from_secs(2),
        }
    }

    #[test]
    fn the_ceiling_doubles_up_to_the_maximum() {
        let b = backoff();
        assert_eq!(b.ceiling(1), Duration::from_millis(100));
        assert_eq!(b.ceiling(2), Duration::from_millis(200));
        assert_eq!(b.ceiling(4), Duration::from_millis(800));
        assert_eq!(b.ceiling(6), Duration::from_secs(2));
        assert_eq!(b.ceiling(1000), Duration::from_secs(2));
    }

    #[test]
    fn delays_are_jittered_within_the_ceiling() {
        let b = backoff();
        let mut rng = StdRng::seed_from_u64(7);
        let delays: Vec<Duration> = (0..200).map(|_| b.delay(3, None, &mut rng)).collect();
        assert!(delays.iter().all(|d| *d <= Duration::from_millis(400)));
        let distinct: std::collections::BTreeSet<_> = delays.iter().collect();
        assert!(distinct.len() > 150, "full jitter spreads the waits");
        assert!(delays.iter().any(|d| *d < Duration::from_millis(100)));
    }

    #[test]
    fn retry_after_is_a_floor() {
        let b = backoff();
        let mut rng = StdRng::seed_from_u64(1);
        for attempt in 1..8 {
            let d = b.delay(attempt, Some(Duration::from_secs(3)), &mut rng);
            assert!(d >= Duration::from_secs(3), "{d:?}");
            assert!(
                d <= Duration::from_secs(3),
                "the maximum jitter is below Retry-After"
            );
        }
        let short = b.delay(5, Some(Duration::from_millis(1)), &mut rng);
        assert!(short >= Duration::from_millis(1));
    }
}
