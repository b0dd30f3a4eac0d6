//! A loopback vendor server for delivery tests: an axum `Router` (the
//! vendor's endpoints and state, written by each vendor fake) behind one
//! middleware that behaves like the vendor's gateway.
//!
//! In: the router, built with the server's [`Stats`] so that handlers can
//! record the mutations that changed state, and a [`Policy`]: the vendor's
//! limits (scaled down), seeded chaos, simulated latency and how the vendor
//! answers a request it refuses. Out: the bound address and counters.
//!
//! The gateway, per request, in order:
//! - logs its arrival; counts it against the sliding window, the in-flight
//!   cap and the daily quota. A request beyond the window or the cap is a
//!   VIOLATION by the client (a well-behaved client causes none) and, like a
//!   real vendor, is refused with the vendor's throttling answer;
//! - chaos: answers 429 or 500 before the handler runs, or runs the handler
//!   (state changes) and then closes the connection without a response;
//! - logs its completion (a drop guard, so a dropped connection completes too).
//!
//! The server runs on its own thread and runtime, so it serves plain
//! `#[test]`s and `#[tokio::test]`s alike; it stops when dropped.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The vendor's limits, as the fake enforces them.
#[derive(Clone, Copy, Debug)]
pub struct FakeLimits {
    /// At most `calls` arrivals in any window of `per`.
    pub calls: u32,
    pub per: Duration,
    /// Requests being handled at once.
    pub concurrent: u32,
    /// Requests admitted over the server's lifetime (its "day").
    pub daily: Option<u32>,
}

/// Seeded failures: probabilities per request, drawn in arrival order.
#[derive(Clone, Copy, Debug)]
pub struct Chaos {
    pub seed: u64,
    /// Answered with the vendor's throttling answer before the handler runs.
    pub p_429: f64,
    /// Answered 500 before the handler runs.
    pub p_500: f64,
    /// The handler runs (state changes), then the connection closes with
    /// no response: the client cannot know whether it applied.
    pub p_drop_after_apply: f64,
}

/// Why the gateway refused a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Over the sliding window; `retry_after` is when a slot frees.
    Window { retry_after: Duration },
    /// Over the in-flight cap.
    InFlight,
    /// The daily quota is spent.
    Daily,
    /// Chaos's throttling answer.
    Chaos,
}

/// The vendor's answer to a refused request (Marketo: HTTP 200 with error
/// 606; most others: 429 with `Retry-After`).
pub type RefusalAnswer = Arc<dyn Fn(Refusal) -> Response + Send + Sync>;

/// How the gateway behaves.
#[derive(Clone)]
pub struct Policy {
    pub limits: Option<FakeLimits>,
    pub chaos: Option<Chaos>,
    /// Paths chaos leaves alone (token endpoints, when a test is about data).
    pub chaos_exempt: Vec<String>,
    /// Time each handled request takes, so that requests overlap.
    pub latency: Duration,
    pub refuse: RefusalAnswer,
}

impl Policy {
    /// No limits, no chaos, no latency; refusals answer 429 `Retry-After: 1`.
    pub fn open() -> Policy {
        Policy {
            limits: None,
            chaos: None,
            chaos_exempt: Vec::new(),
            latency: Duration::ZERO,
            refuse: Arc::new(|_| too_many_requests(Duration::from_secs(1))),
        }
    }

    pub fn limits(mut self, limits: FakeLimits) -> Policy {
        self.limits = Some(limits);
        self
    }

    pub fn chaos(mut self, chaos: Chaos) -> Policy {
        self.chaos = Some(chaos);
        self
    }

    pub fn latency(mut self, latency: Duration) -> Policy {
        self.latency = latency;
        self
    }

    pub fn refuse_with(
        mut self,
        answer: impl Fn(Refusal) -> Response + Send + Sync + 'static,
    ) -> Policy {
        self.refuse = Arc::new(answer);
        self
    }

    pub fn exempt_from_chaos(mut self, path: &str) -> Policy {
        self.chaos_exempt.push(path.to_string());
        self
    }
}

/// 429 with `Retry-After` in whole seconds, rounded up (the header has no
/// fractions in the vendors' contracts), or fractional when under a second
/// so that scaled-down tests stay fast.
pub fn too_many_requests(retry_after: Duration) -> Response {
    let value = if retry_after >= Duration::from_secs(1) {
        retry_after.as_secs_f64().ceil().to_string()
    } else {
        format!("{:.3}", retry_after.as_secs_f64())
    };
    (
        StatusCode::TOO_MANY_REQUESTS,
        [("Retry-After", value)],
        "rate limited",
    )
        .into_response()
}

/// What the gateway did with a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    Handled,
    Refused(Refusal),
    Chaos500,
    Dropped,
}

/// One request as the gateway saw it.
#[derive(Clone, Debug)]
pub struct Entry {
    pub method: String,
    pub path: String,
    pub arrived: Instant,
    pub completed: Option<Instant>,
    pub admission: Admission,
    /// The `Retry-After` the answer carried, if any.
    pub retry_after: Option<Duration>,
}

/// Counters a test reads after (or during) a run.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub requests: u64,
    /// Arrivals over the window or the in-flight cap: the client's fault.
    pub violations: u64,
    /// Throttling answers on the window or the cap (equal to violations) and chaos's.
    pub throttled: u64,
    pub quota_refusals: u64,
    pub chaos_500: u64,
    pub dropped: u64,
    /// Mutations that changed the vendor's state, by (key, op).
    pub mutations: BTreeMap<(String, String), u32>,
    pub log: Vec<Entry>,
}

impl Snapshot {
    /// Most times any one (key, op) changed state.
    pub fn max_mutations(&self) -> u32 {
        self.mutations.values().copied().max().unwrap_or(0)
    }
}

/// The server's shared counters; vendor handlers call [`Stats::mutation`].
#[derive(Default)]
pub struct Stats {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    snapshot: Snapshot,
    /// Arrival times still inside the window.
    window: VecDeque<Instant>,
    in_flight: u32,
    admitted: u32,
    rng: Option<StdRng>,
}

impl Stats {
    /// Records that a request changed the state of `key` by `op`.
    pub fn mutation(&self, key: &str, op: &str) {
        let mut inner = self.inner.lock().unwrap();
        *inner
            .snapshot
            .mutations
            .entry((key.to_string(), op.to_string()))
            .or_default() += 1;
    }

    pub fn snapshot(&self) -> Snapshot {
        self.inner.lock().unwrap().snapshot.clone()
    }
}

struct Gateway {
    policy: Policy,
    stats: Arc<Stats>,
}

/// Marks a request complete and frees its in-flight slot, also when the
/// connection is dropped mid-handler.
struct Completion {
    stats: Arc<Stats>,
    entry: usize,
    counted_in_flight: bool,
}

impl Drop for Completion {
    fn drop(&mut self) {
        let mut inner = self.stats.inner.lock().unwrap();
        if self.counted_in_flight {
            inner.in_flight -= 1;
        }
        inner.snapshot.log[self.entry].completed = Some(Instant::now());
    }
}

enum Decision {
    Refuse(Refusal),
    Fail500,
    Handle { drop_after: bool },
}

impl Gateway {
    /// Logs the arrival and decides, under one lock, what happens to it.
    fn admit(&self, method: &str, path: &str) -> (Completion, Decision) {
        let now = Instant::now();
        let mut inner = self.stats.inner.lock().unwrap();
        inner.snapshot.requests += 1;
        let entry = inner.snapshot.log.len();
        inner.snapshot.log.push(Entry {
            method: method.to_string(),
            path: path.to_string(),
            arrived: now,
            completed: None,
            admission: Admission::Handled,
            retry_after: None,
        });
        let mut decision = self.limit(&mut inner, now);
        if decision.is_none() && !self.policy.chaos_exempt.iter().any(|p| p == path) {
            decision = self.chaos(&mut inner);
        }
        let decision = decision.unwrap_or(Decision::Handle { drop_after: false });
        let counted_in_flight = self.policy.limits.is_some();
        if counted_in_flight {
            inner.in_flight += 1;
        }
        let completion = Completion {
            stats: self.stats.clone(),
            entry,
            counted_in_flight,
        };
        (completion, decision)
    }

    fn limit(&self, inner: &mut Inner, now: Instant) -> Option<Decision> {
        let limits = self.policy.limits?;
        while inner
            .window
            .front()
            .is_some_and(|t| now.duration_since(*t) >= limits.per)
        {
            inner.window.pop_front();
        }
        inner.window.push_back(now);
        if inner.window.len() > limits.calls as usize {
            inner.snapshot.violations += 1;
            inner.snapshot.throttled += 1;
            let oldest = inner.window[inner.window.len() - 1 - limits.calls as usize];
            let retry_after = limits.per.saturating_sub(now.duration_since(oldest));
            return Some(Decision::Refuse(Refusal::Window { retry_after }));
        }
        if inner.in_flight >= limits.concurrent {
            inner.snapshot.violations += 1;
            inner.snapshot.throttled += 1;
            return Some(Decision::Refuse(Refusal::InFlight));
        }
        if limits.daily.is_some_and(|daily| inner.admitted >= daily) {
            inner.snapshot.quota_refusals += 1;
            return Some(Decision::Refuse(Refusal::Daily));
        }
        inner.admitted += 1;
        None
    }

    fn chaos(&self, inner: &mut Inner) -> Option<Decision> {
        let chaos = self.policy.chaos?;
        let rng = inner
            .rng
            .get_or_insert_with(|| StdRng::seed_from_u64(chaos.seed));
        let draw: f64 = rng.random();
        if draw < chaos.p_429 {
            inner.snapshot.throttled += 1;
            Some(Decision::Refuse(Refusal::Chaos))
        } else if draw < chaos.p_429 + chaos.p_500 {
            inner.snapshot.chaos_500 += 1;
            Some(Decision::Fail500)
        } else if draw < chaos.p_429 + chaos.p_500 + chaos.p_drop_after_apply {
            inner.snapshot.dropped += 1;
            Some(Decision::Handle { drop_after: true })
        } else {
            None
        }
    }

    fn mark(&self, completion: &Completion, admission: Admission, response: Option<&Response>) {
        let retry_after = response
            .and_then(|r| r.headers().get("retry-after"))
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<f64>().ok())
            .map(Duration::from_secs_f64);
        let mut inner = self.stats.inner.lock().unwrap();
        let entry = &mut inner.snapshot.log[completion.entry];
        entry.admission = admission;
        entry.retry_after = retry_after;
    }
}

async fn gateway(State(gateway): State<Arc<Gateway>>, request: Request, next: Next) -> Response {
    let method = request.method().to_string();
    let path = request.uri().path().to_string();
    let (completion, decision) = gateway.admit(&method, &path);
    match decision {
        Decision::Refuse(refusal) => {
            let response = (gateway.policy.refuse)(refusal);
            gateway.mark(&completion, Admission::Refused(refusal), Some(&response));
            response
        }
        Decision::Fail500 => {
            gateway.mark(&completion, Admission::Chaos500, None);
            (StatusCode::INTERNAL_SERVER_ERROR, "chaos").into_response()
        }
        Decision::Handle { drop_after } => {
            if !gateway.policy.latency.is_zero() {
                tokio::time::sleep(gateway.policy.latency).await;
            }
            let response = next.run(request).await;
            if drop_after {
                gateway.mark(&completion, Admission::Dropped, None);
                drop(completion);
                // Unwinding the connection's task closes the socket with no
                // response; `resume_unwind` skips the panic hook, so the
                // test output stays quiet.
                std::panic::resume_unwind(Box::new("chaos: connection dropped after apply"));
            }
            gateway.mark(&completion, Admission::Handled, Some(&response));
            response
        }
    }
}

/// A running fake; stops when dropped.
pub struct FakeServer {
    pub addr: SocketAddr,
    pub stats: Arc<Stats>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeServer {
    /// Serves the router `build` makes (given the server's stats) behind
    /// the gateway `policy` describes.
    pub fn start(policy: Policy, build: impl FnOnce(Arc<Stats>) -> Router) -> FakeServer {
        let stats = Arc::new(Stats::default());
        let gateway = Arc::new(Gateway {
            policy,
            stats: stats.clone(),
        });
        let router =
            build(stats.clone()).layer(middleware::from_fn_with_state(gateway, self::gateway));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let addr = listener.local_addr().expect("bound address");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || serve(listener, router, stopped));
        FakeServer {
            addr,
            stats,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn snapshot(&self) -> Snapshot {
        self.stats.snapshot()
    }
}

fn serve(
    listener: std::net::TcpListener,
    router: Router,
    stopped: tokio::sync::oneshot::Receiver<()>,
) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("fake server runtime");
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
        tokio::select! {
            served = axum::serve(listener, router) => served.expect("fake server"),
            _ = stopped => {}
        }
    });
    // Dropping the runtime cancels the connections still open.
    runtime.shutdown_background();
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Access tokens with a lifetime, as a vendor's token endpoint issues them.
#[derive(Default)]
pub struct Tokens {
    issued: Mutex<HashMap<String, SystemTime>>,
    counter: Mutex<u64>,
}

/// Why a bearer header was not accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenError {
    Missing,
    Unknown,
    Expired,
}

impl Tokens {
    /// A new token that expires `lifetime` from now.
    pub fn issue(&self, lifetime: Duration) -> String {
        let mut counter = self.counter.lock().unwrap();
        *counter += 1;
        let token = format!("token-{}-{}", *counter, std::process::id());
        self.issued
            .lock()
            .unwrap()
            .insert(token.clone(), SystemTime::now() + lifetime);
        token
    }

    /// Checks `Authorization: Bearer TOKEN`.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), TokenError> {
        let value = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or(TokenError::Missing)?;
        self.check_value(value)
    }

    /// Checks a token passed some other way (a query parameter).
    pub fn check_value(&self, token: &str) -> Result<(), TokenError> {
        let expires = *self
            .issued
            .lock()
            .unwrap()
            .get(token)
            .ok_or(TokenError::Unknown)?;
        if SystemTime::now() >= expires {
            return Err(TokenError::Expired);
        }
        Ok(())
    }

    /// Tokens issued so far.
    pub fn count(&self) -> u64 {
        *self.counter.lock().unwrap()
    }
}
