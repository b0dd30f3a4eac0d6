//! The limits of one destination instance, shared (`Clone` shares) by every
//! activation that sends to it: a sliding window of requests, a cap on
//! requests in flight, and the vendor's daily quota.
//!
//! The window must hold at the vendor, which sees a request when it
//! arrives: somewhere between when accord starts it and when the answer
//! comes back. So a request holds its window slot from its start until one
//! window after its completion. Any `N` arrivals inside one window of `W`
//! would then have held slots all at once, just before the last of them
//! started; since at most `N` slots are ever held, no window of `W` at the
//! vendor can see more than `N` arrivals, whatever the latency.
//!
//! The stated limits are a ceiling, not a promise: other integrations share
//! the instance's window and its cap on requests in flight. So a refusal
//! narrows them for the rest of the run (a window refusal takes a quarter
//! off the window, at most once per window, and each quiet window gives one
//! call back; a refusal for requests in flight takes one off the cap).
//! Without that, a vendor that counts refused calls in its window (Marketo
//! does) keeps refusing a client that keeps to the stated limit.
//!
//! In: the destination's `Limits` and the requests the store says were
//! already made today. Out: a [`Permit`] per request (or
//! [`QuotaExhausted`]), and the time spent waiting for one.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use super::config::Limits;

/// The day's quota of requests is spent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuotaExhausted {
    pub daily: u64,
}

/// The sliding window as data: slots held from a request's start until one
/// window after its completion. Times are passed in, so it is tested on
/// simulated clocks.
#[derive(Debug)]
pub struct Window {
    limit: usize,
    /// The stated limit: widening stops there.
    stated: usize,
    span: Duration,
    /// The last narrowing, the last widening and the last refusal.
    narrowed: Option<Instant>,
    widened: Option<Instant>,
    refused: Option<Instant>,
    /// Per slot: `None` while in flight, else when its request completed.
    slots: Vec<(u64, Option<Instant>)>,
    next_id: u64,
}

/// A held slot of a [`Window`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot(u64);

/// Why a request cannot start yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Busy {
    /// A slot frees at this time.
    Until(Instant),
    /// Every slot is held by a request in flight: one must complete first.
    UntilACompletion,
}

impl Window {
    pub fn new(limit: u32, span: Duration) -> Window {
        Window {
            limit: limit.max(1) as usize,
            stated: limit.max(1) as usize,
            span,
            narrowed: None,
            widened: None,
            refused: None,
            slots: Vec::new(),
            next_id: 0,
        }
    }

    /// Takes a slot for a request starting at `now`, or says how long until one frees.
    pub fn try_start(&mut self, now: Instant) -> Result<Slot, Busy> {
        let span = self.span;
        let quiet = |at: Option<Instant>| at.is_none_or(|at| now.duration_since(at) >= span);
        if self.limit < self.stated && quiet(self.refused) && quiet(self.widened) {
            self.limit += 1;
            self.widened = Some(now);
        }
        self.slots
            .retain(|(_, done)| done.is_none_or(|done| done + span > now));
        if self.slots.len() < self.limit {
            self.next_id += 1;
            self.slots.push((self.next_id, None));
            return Ok(Slot(self.next_id));
        }
        match self.slots.iter().filter_map(|(_, done)| *done).min() {
            Some(done) => Err(Busy::Until(done + span)),
            None => Err(Busy::UntilACompletion),
        }
    }

    /// The vendor refused a call for its window at `now`: it allows fewer
    /// calls than stated. Takes a quarter off the limit (at least one, never
    /// below one), once per window: the refusals of one burst are one signal.
    pub fn narrow(&mut self, now: Instant) {
        self.refused = Some(now);
        if self
            .narrowed
            .is_some_and(|at| now.duration_since(at) < self.span)
        {
            return;
        }
        self.limit = self.limit.saturating_sub((self.limit / 4).max(1)).max(1);
        self.narrowed = Some(now);
    }

    /// The calls a window allows now.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// The request of `slot` completed at `now`: the slot frees one window later.
    pub fn finish(&mut self, slot: Slot, now: Instant) {
        if let Some(entry) = self.slots.iter_mut().find(|(id, _)| *id == slot.0) {
            entry.1 = Some(now);
        }
    }
}

/// The limits of one destination instance.
#[derive(Clone)]
pub struct Throttle {
    shared: Arc<Shared>,
}

struct Shared {
    window: Option<Mutex<Window>>,
    completed: Notify,
    in_flight: Arc<Semaphore>,
    /// The cap on requests in flight, lowered by refusals.
    concurrent: AtomicUsize,
    /// Permits to retire as requests in flight complete: the cap was
    /// lowered while every permit was out.
    owed: AtomicUsize,
    daily: Option<u64>,
    used: AtomicU64,
    waited_nanos: AtomicU64,
}

/// Leave to send one request; hold it until the answer is in (dropping it
/// counts as the completion).
pub struct Permit {
    shared: Arc<Shared>,
    slot: Option<Slot>,
    in_flight: Option<OwnedSemaphorePermit>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let owed = self
            .shared
            .owed
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        if owed.is_ok()
            && let Some(permit) = self.in_flight.take()
        {
            permit.forget();
        }
        if let (Some(window), Some(slot)) = (&self.shared.window, self.slot) {
            window
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .finish(slot, Instant::now());
            self.shared.completed.notify_waiters();
        }
    }
}

impl Throttle {
    /// `used_today`: requests the store recorded for this destination in
    /// the vendor's current day.
    pub fn new(limits: &Limits, used_today: u64) -> Throttle {
        Throttle {
            shared: Arc::new(Shared {
                window: limits.window.map(|(n, w)| Mutex::new(Window::new(n, w))),
                completed: Notify::new(),
                in_flight: Arc::new(Semaphore::new(limits.concurrent.max(1))),
                concurrent: AtomicUsize::new(limits.concurrent.max(1)),
                owed: AtomicUsize::new(0),
                daily: limits.daily,
                used: AtomicU64::new(used_today),
                waited_nanos: AtomicU64::new(0),
            }),
        }
    }

    /// The in-flight cap, as refusals have lowered it.
    pub fn concurrency(&self) -> usize {
        self.shared.concurrent.load(Ordering::SeqCst)
    }

    /// The vendor refused a call for its window (Marketo's 606, a 429).
    pub fn refused_for_window(&self) {
        if let Some(window) = &self.shared.window {
            window
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .narrow(Instant::now());
        }
    }

    /// The vendor refused a call for its cap on requests in flight
    /// (Marketo's 615): one fewer at once from now on, never below one.
    pub fn refused_for_concurrency(&self) {
        let lowered =
            self.shared
                .concurrent
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                    (n > 1).then(|| n - 1)
                });
        if lowered.is_ok() && self.shared.in_flight.forget_permits(1) == 0 {
            self.shared.owed.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Waits until a request may start; counts it against the daily quota.
    pub async fn acquire(&self) -> Result<Permit, QuotaExhausted> {
        let started = Instant::now();
        let permit = self.wait_for_slot().await;
        self.shared
            .waited_nanos
            .fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
        let permit = permit?;
        if let Some(daily) = self.shared.daily {
            let used = self.shared.used.fetch_add(1, Ordering::SeqCst);
            if used >= daily {
                self.shared.used.fetch_sub(1, Ordering::SeqCst);
                return Err(QuotaExhausted { daily });
            }
        }
        Ok(permit)
    }

    async fn wait_for_slot(&self) -> Result<Permit, QuotaExhausted> {
        if let Some(daily) = self.shared.daily
            && self.shared.used.load(Ordering::SeqCst) >= daily
        {
            return Err(QuotaExhausted { daily });
        }
        let in_flight = self
            .shared
            .in_flight
            .clone()
            .acquire_owned()
            .await
            .expect("the throttle's semaphore is never closed");
        let Some(window) = &self.shared.window else {
            return Ok(Permit {
                shared: self.shared.clone(),
                slot: None,
                in_flight: Some(in_flight),
            });
        };
        loop {
            // Registered before looking, so a completion in between is not missed.
            let completed = self.shared.completed.notified();
            let busy = window
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .try_start(Instant::now());
            match busy {
                Ok(slot) => {
                    return Ok(Permit {
                        shared: self.shared.clone(),
                        slot: Some(slot),
                        in_flight: Some(in_flight),
                    });
                }
                Err(Busy::Until(at)) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(at.into()) => {}
                        _ = completed => {}
                    }
                }
                Err(Busy::UntilACompletion) => completed.await,
            }
        }
    }

    /// Requests counted against the day's quota so far (including `used_today`).
    pub fn used_today(&self) -> u64 {
        self.shared.used.load(Ordering::SeqCst)
    }

    /// Time spent waiting for permits, over every caller.
    pub fn waited(&self) -> Duration {
        Duration::from_nanos(self.shared.waited_nanos.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny deterministic generator for simulated latencies.
    fn next(seed: &mut u64) -> u64 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        *seed
    }

    /// Simulates a client that starts requests as soon as the window lets
    /// it, with random latencies, and checks the vendor-side invariant: no
    /// window of `span` sees more than `limit` arrivals, an arrival being
    /// any time between a request's start and its completion.
    #[test]
    fn no_window_at_the_vendor_sees_more_than_the_limit() {
        let limit = 5;
        let span = Duration::from_millis(100);
        let origin = Instant::now();
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _round in 0..20 {
            let mut window = Window::new(limit, span);
            let mut now = origin;
            let mut in_flight: Vec<(Slot, Instant, Instant)> = Vec::new();
            let mut arrivals = Vec::new();
            while arrivals.len() < 300 {
                match window.try_start(now) {
                    Ok(slot) => {
                        let latency = Duration::from_millis(next(&mut seed) % 80);
                        let arrival = now + latency.mul_f64((next(&mut seed) % 100) as f64 / 100.0);
                        arrivals.push(arrival);
                        in_flight.push((slot, now, now + latency));
                    }
                    Err(busy) => {
                        let first_done = in_flight.iter().map(|(_, _, done)| *done).min();
                        now = match (busy, first_done) {
                            (Busy::Until(at), Some(done)) => at.min(done),
                            (Busy::Until(at), None) => at,
                            (Busy::UntilACompletion, Some(done)) => done,
                            (Busy::UntilACompletion, None) => {
                                unreachable!("a full window holds requests")
                            }
                        };
                    }
                }
                in_flight.retain(|(slot, _, done)| {
                    if *done <= now {
                        window.finish(*slot, *done);
                        false
                    } else {
                        true
                    }
                });
            }
            arrivals.sort();
            for (i, first) in arrivals.iter().enumerate() {
                let inside = arrivals[i..]
                    .iter()
                    .take_while(|a| **a < *first + span)
                    .count();
                assert!(
                    inside <= limit as usize,
                    "{inside} arrivals within one window"
                );
            }
        }
    }

    #[test]
    fn a_full_window_says_when_a_slot_frees() {
        let t0 = Instant::now();
        let span = Duration::from_millis(100);
        let mut window = Window::new(2, span);
        let a = window.try_start(t0).unwrap();
        let _b = window.try_start(t0).unwrap();
        assert_eq!(window.try_start(t0), Err(Busy::UntilACompletion));
        window.finish(a, t0 + Duration::from_millis(30));
        let at = t0 + Duration::from_millis(130);
        assert_eq!(
            window.try_start(t0 + Duration::from_millis(40)),
            Err(Busy::Until(at))
        );
        assert!(window.try_start(at).is_ok());
    }

    #[test]
    fn a_window_refusal_narrows_once_per_window_and_quiet_windows_widen_it_back() {
        let t0 = Instant::now();
        let span = Duration::from_millis(100);
        let ms = |n| t0 + Duration::from_millis(n);
        let mut window = Window::new(8, span);
        window.narrow(t0);
        assert_eq!(window.limit(), 6, "a quarter off");
        window.narrow(ms(50));
        assert_eq!(window.limit(), 6, "the same burst is one signal");
        window.narrow(ms(100));
        assert_eq!(window.limit(), 5);
        // Refused at 100 ms: the window widens one call per quiet window.
        assert!(window.try_start(ms(150)).is_ok());
        assert_eq!(window.limit(), 5);
        assert!(window.try_start(ms(200)).is_ok());
        assert_eq!(window.limit(), 6);
        assert!(window.try_start(ms(250)).is_ok());
        assert_eq!(window.limit(), 6, "one call per window");
        for at in [300, 400, 500] {
            let _ = window.try_start(ms(at));
        }
        assert_eq!(window.limit(), 8, "never past the stated limit");
        let mut one = Window::new(1, span);
        one.narrow(t0);
        assert_eq!(one.limit(), 1, "never below one");
    }

    #[tokio::test]
    async fn a_concurrency_refusal_lowers_the_cap_even_with_every_permit_out() {
        let throttle = Throttle::new(&limits(None, 3, None), 0);
        let mut permits = Vec::new();
        for _ in 0..3 {
            permits.push(throttle.acquire().await.unwrap());
        }
        throttle.refused_for_concurrency();
        assert_eq!(throttle.concurrency(), 2);
        permits.clear();
        let a = throttle.acquire().await.unwrap();
        let _b = throttle.acquire().await.unwrap();
        let third = tokio::time::timeout(Duration::from_millis(50), throttle.acquire()).await;
        assert!(third.is_err(), "two in flight at most");
        drop(a);
        throttle.refused_for_concurrency();
        throttle.refused_for_concurrency();
        assert_eq!(throttle.concurrency(), 1, "never below one");
    }

    fn limits(window: Option<(u32, Duration)>, concurrent: usize, daily: Option<u64>) -> Limits {
        Limits {
            batch_size: 10,
            max_bytes: None,
            window,
            concurrent,
            daily,
        }
    }

    #[tokio::test]
    async fn the_daily_quota_stops_requests() {
        let throttle = Throttle::new(&limits(None, 2, Some(3)), 1);
        assert!(throttle.acquire().await.is_ok());
        assert!(throttle.acquire().await.is_ok());
        assert_eq!(
            throttle.acquire().await.err(),
            Some(QuotaExhausted { daily: 3 })
        );
        assert_eq!(throttle.used_today(), 3);
    }

    #[tokio::test]
    async fn waiting_for_the_window_is_measured() {
        let span = Duration::from_millis(60);
        let throttle = Throttle::new(&limits(Some((1, span)), 4, None), 0);
        drop(throttle.acquire().await.unwrap());
        let started = Instant::now();
        drop(throttle.acquire().await.unwrap());
        assert!(started.elapsed() >= span);
        assert!(throttle.waited() >= span);
    }
}
