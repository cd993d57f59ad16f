//! Run-time state shared by the listeners and the control API: the sandbox
//! clock and, per API, its faults, rate limit and request/write logs.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::config::Faults;

/// A request an API received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedRequest {
    /// HTTP method (`GET`).
    pub method: String,
    /// Path without the query (`/v1/customers`).
    pub path: String,
    /// Raw query string, empty when there was none.
    pub query: String,
    /// When it arrived: milliseconds since the sandbox started.
    pub at_ms: u64,
}

/// The most requests any one-second window of `requests` holds (a sliding
/// window over their arrival times).
pub fn busiest_second(requests: &[RecordedRequest]) -> usize {
    let mut at: Vec<u64> = requests.iter().map(|r| r.at_ms).collect();
    at.sort_unstable();
    let mut best = 0;
    let mut lo = 0;
    for hi in 0..at.len() {
        while at[hi] - at[lo] >= 1_000 {
            lo += 1;
        }
        best = best.max(hi - lo + 1);
    }
    best
}

/// A write (POST/PUT/PATCH/DELETE) an API received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedWrite {
    /// HTTP method.
    pub method: String,
    /// Path without the query.
    pub path: String,
    /// The request body as received (lossy UTF-8).
    pub body: String,
    /// Sandbox clock time it arrived (unix seconds).
    pub at: i64,
}

/// The clock start unit tests generate data from (2026-11-01T00:00:00Z), so
/// their golden values stay fixed.
#[cfg(test)]
pub(crate) const TEST_EPOCH: i64 = 1_793_491_200;

/// At most this many requests are kept for inspection (the count is exact).
const MAX_RECORDED_REQUESTS: usize = 100_000;

/// Locks a mutex, ignoring poisoning (state stays usable after a panic in a test).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The sandbox clock: its reading at start (the *epoch*), plus the time
/// elapsed since, plus the seconds advanced by the control API.
///
/// Generated history ends at the epoch, so it is always recent relative to the
/// sandbox's "now", whatever day the sandbox runs (a vendor's retention window,
/// such as Stripe's 30 days of events, always holds the history's last days).
/// The epoch defaults to the wall clock at start (clients derive watermarks
/// from their own clock, like against a real vendor); a fixed
/// [`crate::SandboxConfig::clock_start`] makes base pages byte-identical for the
/// same seed and size, on any day.
#[derive(Debug)]
pub(crate) struct Clock {
    epoch: i64,
    started: Instant,
    offset: AtomicI64,
}

impl Clock {
    /// A clock reading `epoch` now (`None`: the wall clock).
    pub(crate) fn new(epoch: Option<i64>) -> Self {
        Self {
            epoch: epoch.unwrap_or_else(wall_clock),
            started: Instant::now(),
            offset: AtomicI64::new(0),
        }
    }

    /// The clock's reading at start: where generated history ends (unix seconds).
    pub(crate) fn epoch(&self) -> i64 {
        self.epoch
    }

    /// Milliseconds since the sandbox started (for request timestamps).
    pub(crate) fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Current sandbox time (unix seconds).
    pub(crate) fn now(&self) -> i64 {
        self.running() + self.offset.load(Ordering::SeqCst)
    }

    /// Moves the clock by `secs` (negative values are ignored: time only moves forward).
    pub(crate) fn advance(&self, secs: i64) -> i64 {
        let secs = secs.max(0);
        self.running() + self.offset.fetch_add(secs, Ordering::SeqCst) + secs
    }

    /// The epoch plus the whole seconds elapsed since start.
    fn running(&self) -> i64 {
        let elapsed = i64::try_from(self.started.elapsed().as_secs()).unwrap_or(i64::MAX / 2);
        self.epoch.saturating_add(elapsed)
    }
}

/// Unix seconds now.
pub(crate) fn wall_clock() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 2))
}

/// The rate limit an API enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RateLimit {
    /// No limit.
    Off,
    /// The vendor's documented limit.
    Documented,
    /// A custom number of requests per second.
    PerSec(u32),
}

/// Per-API run-time state.
pub(crate) struct ApiState {
    faults: RwLock<Faults>,
    limit: RwLock<RateLimit>,
    documented_per_sec: u32,
    window: Mutex<(Instant, u32)>,
    rng: Mutex<StdRng>,
    retry_seq: AtomicU64,
    count: AtomicU64,
    requests: Mutex<VecDeque<RecordedRequest>>,
    writes: Mutex<Vec<RecordedWrite>>,
}

impl ApiState {
    pub(crate) fn new(seed: u64, faults: Faults, limits_on: bool, documented_per_sec: u32) -> Self {
        Self {
            faults: RwLock::new(faults),
            limit: RwLock::new(if limits_on {
                RateLimit::Documented
            } else {
                RateLimit::Off
            }),
            documented_per_sec,
            window: Mutex::new((Instant::now(), 0)),
            rng: Mutex::new(StdRng::seed_from_u64(seed ^ 0xFA17_5EED)),
            retry_seq: AtomicU64::new(0),
            count: AtomicU64::new(0),
            requests: Mutex::new(VecDeque::new()),
            writes: Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn faults(&self) -> Faults {
        self.faults
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn set_faults(&self, faults: Faults) {
        *self.faults.write().unwrap_or_else(PoisonError::into_inner) = faults;
    }

    pub(crate) fn set_rate_limit(&self, limit: RateLimit) {
        *self.limit.write().unwrap_or_else(PoisonError::into_inner) = limit;
        *lock(&self.window) = (Instant::now(), 0);
    }

    /// The limit currently in force (vendors with per-category or
    /// concurrency limits enforce them themselves when it is `Documented`).
    pub(crate) fn rate_limit(&self) -> RateLimit {
        *self.limit.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts a request against the limit; false when it exceeds the limit.
    pub(crate) fn admit(&self) -> bool {
        let per_sec = match *self.limit.read().unwrap_or_else(PoisonError::into_inner) {
            RateLimit::Off => return true,
            RateLimit::Documented => self.documented_per_sec,
            RateLimit::PerSec(n) => n,
        };
        let mut window = lock(&self.window);
        let now = Instant::now();
        if now.duration_since(window.0) >= Duration::from_secs(1) {
            *window = (now, 0);
        }
        window.1 = window.1.saturating_add(1);
        window.1 <= per_sec
    }

    /// True with probability `rate` (drawn from the seeded fault RNG).
    pub(crate) fn roll(&self, rate: f64) -> bool {
        rate > 0.0 && lock(&self.rng).random::<f64>() < rate
    }

    /// A sequence number for rotating `Retry-After` styles.
    pub(crate) fn next_retry_seq(&self) -> u64 {
        self.retry_seq.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn record_request(&self, request: RecordedRequest) {
        self.count.fetch_add(1, Ordering::Relaxed);
        let mut log = lock(&self.requests);
        if log.len() == MAX_RECORDED_REQUESTS {
            log.pop_front();
        }
        log.push_back(request);
    }

    pub(crate) fn record_write(&self, write: RecordedWrite) {
        lock(&self.writes).push(write);
    }

    pub(crate) fn request_count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    pub(crate) fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.requests).iter().cloned().collect()
    }

    pub(crate) fn writes(&self) -> Vec<RecordedWrite> {
        lock(&self.writes).clone()
    }
}
