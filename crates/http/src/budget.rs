//! Rate budgets: one per API account, shared by every client in the process.
//!
//! A [`Budget`] combines a GCRA rate limiter (governor), a concurrency
//! semaphore, a pause that every holder honours (set on 429 or when
//! `X-RateLimit-Remaining` reaches 0) and daily-quota tracking. The
//! [`BudgetRegistry`] hands out the same `Arc<Budget>` for the same
//! [`BudgetKey`], so ELT and sync jobs of one account never exceed it together.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use http::HeaderMap;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::HttpError;

/// Identifies a budget: one per API account, shared process-wide.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BudgetKey {
    /// API name (e.g. `stripe`).
    pub api: String,
    /// Account identity within that API (e.g. the Stripe account id, or a
    /// non-secret fingerprint of the key). Never the secret itself.
    pub account: String,
}

impl BudgetKey {
    /// A key for `api` and `account`.
    pub fn new(api: impl Into<String>, account: impl Into<String>) -> Self {
        Self {
            api: api.into(),
            account: account.into(),
        }
    }

    /// A key whose account is identified by a credential, without revealing it:
    /// every client using the same credential shares one budget.
    pub fn for_credential(api: impl Into<String>, credential: &str) -> Self {
        Self::new(api, fingerprint(credential))
    }
}

/// A stable, non-reversible 16-hex-digit fingerprint (FNV-1a) of a credential,
/// for budget account ids and logs that must tell accounts apart without
/// showing secrets.
pub fn fingerprint(credential: &str) -> String {
    let hash = credential.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("{hash:016x}")
}

/// Documented limits of an API account.
#[derive(Clone, Debug, PartialEq)]
pub struct Limits {
    /// Sustained request rate; `None` means no rate limit.
    pub requests_per_second: Option<f64>,
    /// Requests allowed back to back above the sustained rate (default: 1
    /// below 100/s, else `1 + rate / 100` with the spacing slowed to match,
    /// so any one-second window sees at most the rate).
    pub burst: Option<u32>,
    /// Requests allowed in flight at once (Mailchimp: 10).
    pub max_concurrent: Option<u32>,
    /// Requests allowed per day (Salesforce's 24 h allocation).
    pub daily_quota: Option<u64>,
    /// Fraction of the daily quota kept free, e.g. 0.1.
    pub quota_headroom: f64,
}

impl Limits {
    /// No limit at all (still honours 429 pauses).
    pub fn unlimited() -> Self {
        Self {
            requests_per_second: None,
            burst: None,
            max_concurrent: None,
            daily_quota: None,
            quota_headroom: 0.0,
        }
    }

    /// `r` requests per second.
    pub fn per_second(r: f64) -> Self {
        Self {
            requests_per_second: Some(r),
            ..Self::unlimited()
        }
    }

    /// `r` requests per minute.
    pub fn per_minute(r: f64) -> Self {
        Self::per_second(r / 60.0)
    }

    /// At most `n` requests in flight.
    pub fn concurrent(n: u32) -> Self {
        Self {
            max_concurrent: Some(n),
            ..Self::unlimited()
        }
    }

    /// Adds a daily quota, keeping `headroom` (a fraction, e.g. 0.1) free.
    pub fn with_daily_quota(mut self, q: u64, headroom: f64) -> Self {
        self.daily_quota = Some(q);
        self.quota_headroom = headroom.clamp(0.0, 1.0);
        self
    }

    /// Sets the burst (requests allowed back to back).
    pub fn with_burst(mut self, burst: u32) -> Self {
        self.burst = Some(burst);
        self
    }

    /// Adds a concurrency limit.
    pub fn with_max_concurrent(mut self, n: u32) -> Self {
        self.max_concurrent = Some(n);
        self
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self::unlimited()
    }
}

/// A held slot of a budget; dropping it frees the concurrency permit.
#[derive(Debug)]
pub struct BudgetPermit {
    _permit: Option<OwnedSemaphorePermit>,
    waited: Duration,
}

impl BudgetPermit {
    /// How long `acquire` waited (rate limiter, pause and concurrency).
    pub fn waited(&self) -> Duration {
        self.waited
    }
}

/// One account's budget: rate limiter, concurrency, shared pause and quota.
#[derive(Debug)]
pub struct Budget {
    key: BudgetKey,
    limits: Limits,
    /// The limiter at this process's share of the rate (swapped when the share changes).
    limiter: Mutex<Option<Arc<DefaultDirectRateLimiter>>>,
    /// This process's share of the account's rate, in millionths (all of it
    /// unless runners sharing a warehouse split it: [`Budget::set_share`]).
    share_ppm: AtomicU64,
    semaphore: Option<Arc<Semaphore>>,
    paused_until: Mutex<Option<Instant>>,
    quota_used: AtomicU64,
    /// Quota reported by the API (`Sforce-Limit-Info`), 0 when unknown.
    quota_reported: AtomicU64,
    /// Moving average of request latency in microseconds, 0 until observed.
    latency_us: AtomicU64,
    /// Sliced readers sharing the budget right now.
    readers: AtomicUsize,
    /// When a client last asked for it or a request last acquired it.
    last_used: Mutex<Instant>,
}

/// Requests kept in flight on a budget without a rate or concurrency limit.
const UNLIMITED_IN_FLIGHT: usize = 16;

/// In flight beyond rate x latency, so latency jitter and slices ending
/// unevenly leave no gap in the rate (the extra requests wait on the limiter).
const IN_FLIGHT_HEADROOM: f64 = 1.5;

/// Never more in flight on one budget than this, whatever the rate x latency:
/// enough for 100 requests/s at 400 ms (x 1.5). Measured on the loopback
/// sandbox with an unbinding rate (`e2e throughput 100000`, DuckDB), peak
/// anonymous memory grew with the cap (16: 79 MiB, 64: 87, 256: 112) at the
/// same speed, since answers that come back at once all wait to be decoded.
const MAX_IN_FLIGHT: usize = 64;

/// A share of 1.0 in [`Budget::share_ppm`].
const SHARE_WHOLE: u64 = 1_000_000;

/// A GCRA limiter spacing requests at `limits`' rate times `share` (none
/// without a rate).
///
/// Without a configured burst, a rate of 100/s or more gets a small one,
/// `1 + n` with `n = rate / 100`, paced at `rate - 2n`: a request that wakes
/// late (the timer ticks in whole milliseconds, 6-10% of the spacing at
/// 100-166/s) spends the credit instead of losing its slot for good, and any
/// one-second window still sends at most `rate - n`, leaving `n` for requests
/// the network bunches on their way.
fn rate_limiter(limits: &Limits, share: f64) -> Option<Arc<DefaultDirectRateLimiter>> {
    let rate = limits
        .requests_per_second
        .filter(|r| r.is_finite() && *r > 0.0)?
        * share;
    let (burst, paced) = match limits.burst {
        Some(b) => (b.max(1), rate),
        None => {
            let slack = (rate / 100.0).floor().clamp(0.0, 1_000.0);
            (1 + slack as u32, rate - 2.0 * slack)
        }
    };
    Quota::with_period(Duration::from_secs_f64(1.0 / paced)).map(|q| {
        let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
        Arc::new(RateLimiter::direct(q.allow_burst(burst)))
    })
}

/// A sliced reader's share of a budget; dropping it leaves the budget to the others.
#[derive(Debug)]
pub struct ReaderShare {
    budget: Arc<Budget>,
}

impl ReaderShare {
    /// Requests this reader should keep in flight now: the budget's
    /// [`Budget::in_flight_target`] divided fairly among its current readers.
    pub fn in_flight(&self) -> usize {
        let readers = self.budget.readers.load(Ordering::Relaxed).max(1);
        self.budget.in_flight_target().div_ceil(readers).max(1)
    }

    /// The budget shared.
    pub fn budget(&self) -> &Budget {
        &self.budget
    }
}

impl Drop for ReaderShare {
    fn drop(&mut self) {
        self.budget.readers.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Budget {
    /// A budget enforcing `limits` (prefer [`BudgetRegistry::budget`] so it is shared).
    pub fn new(key: BudgetKey, limits: Limits) -> Self {
        let limiter = rate_limiter(&limits, 1.0);
        let semaphore = limits
            .max_concurrent
            .filter(|n| *n > 0)
            .map(|n| Arc::new(Semaphore::new(n as usize)));
        Self {
            key,
            limits,
            limiter: Mutex::new(limiter),
            share_ppm: AtomicU64::new(SHARE_WHOLE),
            semaphore,
            paused_until: Mutex::new(None),
            quota_used: AtomicU64::new(0),
            quota_reported: AtomicU64::new(0),
            latency_us: AtomicU64::new(0),
            readers: AtomicUsize::new(0),
            last_used: Mutex::new(Instant::now()),
        }
    }

    /// Feeds one request's latency (send to response) into the moving average.
    pub fn observe_latency(&self, latency: Duration) {
        let sample = u64::try_from(latency.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        let old = self.latency_us.load(Ordering::Relaxed);
        let new = if old == 0 {
            sample
        } else {
            // Exponential moving average, weight 1/8 to the new sample.
            (old.saturating_mul(7).saturating_add(sample)) / 8
        };
        self.latency_us.store(new.max(1), Ordering::Relaxed);
    }

    /// The moving average of request latency, once a request has been observed.
    pub fn latency(&self) -> Option<Duration> {
        match self.latency_us.load(Ordering::Relaxed) {
            0 => None,
            us => Some(Duration::from_micros(us)),
        }
    }

    /// Requests worth keeping in flight on this account: rate x latency
    /// (Little's law) x 1.5, rounded up, capped by the concurrency limit
    /// and 64; 1 until a
    /// latency has been observed. Without a rate limit: the concurrency
    /// limit, or 16.
    pub fn in_flight_target(&self) -> usize {
        let concurrent = self
            .limits
            .max_concurrent
            .filter(|n| *n > 0)
            .map(|n| (n as usize).min(MAX_IN_FLIGHT));
        let Some(rate) = self.rate() else {
            return concurrent.unwrap_or(UNLIMITED_IN_FLIGHT);
        };
        let cap = concurrent.unwrap_or(MAX_IN_FLIGHT);
        let Some(latency) = self.latency() else {
            return 1;
        };
        let little = (rate * latency.as_secs_f64() * IN_FLIGHT_HEADROOM).ceil();
        (little.clamp(1.0, MAX_IN_FLIGHT as f64) as usize).min(cap)
    }

    /// Joins the budget as a sliced reader: the readers of one account share
    /// its in-flight target fairly, so one stream cannot starve the others.
    pub fn join_reader(self: &Arc<Self>) -> ReaderShare {
        self.readers.fetch_add(1, Ordering::Relaxed);
        ReaderShare {
            budget: Arc::clone(self),
        }
    }

    /// An unlimited budget not shared with anyone (a client without a budget uses one).
    pub fn unlimited(api: &str) -> Self {
        Self::new(BudgetKey::new(api, "private"), Limits::unlimited())
    }

    /// The rate this process may use: the account's rate times its share.
    pub fn rate(&self) -> Option<f64> {
        self.limits
            .requests_per_second
            .filter(|r| r.is_finite() && *r > 0.0)
            .map(|r| r * self.share())
    }

    /// Marks the budget in use now.
    pub fn touch(&self) {
        *self.last_used.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }

    /// How long since a client asked for this budget or a request acquired it.
    pub fn idle_for(&self) -> Duration {
        self.last_used
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .elapsed()
    }

    /// This process's share of the account's rate (1.0 = all of it).
    pub fn share(&self) -> f64 {
        self.share_ppm.load(Ordering::Relaxed) as f64 / SHARE_WHOLE as f64
    }

    /// Sets this process's share of the account's rate (clamped to
    /// 0.001..=1), when several processes read one account: each then
    /// spaces its requests at rate x share. Requests already waiting finish
    /// at the old spacing.
    pub fn set_share(&self, share: f64) {
        let ppm = (share.clamp(0.001, 1.0) * SHARE_WHOLE as f64).round() as u64;
        if self.share_ppm.swap(ppm, Ordering::Relaxed) == ppm {
            return;
        }
        let limiter = rate_limiter(&self.limits, ppm as f64 / SHARE_WHOLE as f64);
        *self.limiter.lock().unwrap_or_else(|e| e.into_inner()) = limiter;
    }

    /// The key this budget belongs to.
    pub fn key(&self) -> &BudgetKey {
        &self.key
    }

    /// The limits it enforces.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Waits for any pause, the rate limiter and a concurrency permit.
    ///
    /// Fails with [`HttpError::QuotaReached`] when the daily quota minus its
    /// headroom is used up (checked before waiting, never retried).
    pub async fn acquire(&self) -> Result<BudgetPermit, HttpError> {
        self.check_quota()?;
        self.touch();
        let start = Instant::now();
        self.wait_pause().await;
        let limiter = self
            .limiter
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(limiter) = limiter {
            limiter.until_ready().await;
        }
        let permit = match &self.semaphore {
            // The semaphore is never closed, so `ok()` only drops an impossible error.
            Some(s) => s.clone().acquire_owned().await.ok(),
            None => None,
        };
        // A 429 may have paused the budget while this request waited.
        self.wait_pause().await;
        Ok(BudgetPermit {
            _permit: permit,
            waited: start.elapsed(),
        })
    }

    async fn wait_pause(&self) {
        loop {
            let until = *self.lock_pause();
            match until {
                Some(t) if t > Instant::now() => tokio::time::sleep_until(t).await,
                _ => return,
            }
        }
    }

    fn lock_pause(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        // A poisoned lock only means another holder panicked; the value is still valid.
        self.paused_until.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Pauses every holder of this budget for `d` (extends, never shortens, a pause).
    pub fn pause_for(&self, d: Duration) {
        self.pause_until(Instant::now() + d);
    }

    /// Pauses every holder of this budget until `t` (extends, never shortens, a pause).
    pub fn pause_until(&self, t: Instant) {
        let mut guard = self.lock_pause();
        if guard.is_none_or(|cur| cur < t) {
            *guard = Some(t);
        }
    }

    /// Time left in the current pause, if any.
    pub fn paused_for(&self) -> Option<Duration> {
        let until = (*self.lock_pause())?;
        until
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
    }

    /// Counts `n` requests against the daily quota.
    pub fn record_requests(&self, n: u64) {
        self.quota_used.fetch_add(n, Ordering::Relaxed);
    }

    /// Requests used today: counted here, or as last reported by the API.
    pub fn quota_used(&self) -> u64 {
        self.quota_used.load(Ordering::Relaxed)
    }

    /// The daily quota in force: configured, else reported by the API.
    pub fn daily_quota(&self) -> Option<u64> {
        self.limits.daily_quota.or_else(|| {
            let r = self.quota_reported.load(Ordering::Relaxed);
            (r > 0).then_some(r)
        })
    }

    fn check_quota(&self) -> Result<(), HttpError> {
        let Some(quota) = self.daily_quota() else {
            return Ok(());
        };
        let usable = (quota as f64 * (1.0 - self.limits.quota_headroom)).floor() as u64;
        let used = self.quota_used();
        if used >= usable {
            return Err(HttpError::QuotaReached(weft_core::QuotaReached {
                api: self.key.api.clone(),
                used,
                quota,
            }));
        }
        Ok(())
    }

    /// Adapts to rate-limit headers of a response.
    ///
    /// * `X-RateLimit-Remaining: 0` (or `RateLimit-Remaining`) pauses the
    ///   budget until `X-RateLimit-Reset` (epoch seconds or seconds from now).
    /// * `Sforce-Limit-Info: api-usage=N/M` sets the quota used to N and, when
    ///   no quota was configured, the quota to M.
    pub fn observe(&self, headers: &HeaderMap) {
        let num = |names: &[&str]| {
            names.iter().find_map(|n| {
                headers
                    .get(*n)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<f64>().ok())
            })
        };
        let remaining = num(&["x-ratelimit-remaining", "ratelimit-remaining"]);
        if remaining.is_some_and(|r| r <= 0.0)
            && let Some(reset) = num(&["x-ratelimit-reset", "ratelimit-reset"])
        {
            let wait = if reset > 1_000_000_000.0 {
                // Epoch seconds.
                let now = chrono::Utc::now().timestamp_millis() as f64 / 1000.0;
                (reset - now).max(0.0)
            } else {
                reset.max(0.0)
            };
            // Never trust a reset more than an hour away (clock skew, odd units).
            let wait = Duration::from_secs_f64(wait.min(3600.0));
            if !wait.is_zero() {
                tracing::debug!(api = %self.key.api, wait_ms = wait.as_millis() as u64, "rate limit remaining is 0; pausing budget until reset");
                self.pause_for(wait);
            }
        }
        if let Some((used, quota)) = headers
            .get("sforce-limit-info")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_sforce_limit_info)
        {
            self.quota_used.store(used, Ordering::Relaxed);
            self.quota_reported.store(quota, Ordering::Relaxed);
        }
    }
}

/// Parses `api-usage=N/M` out of a `Sforce-Limit-Info` header.
fn parse_sforce_limit_info(v: &str) -> Option<(u64, u64)> {
    let part = v
        .split(',')
        .map(str::trim)
        .find_map(|p| p.strip_prefix("api-usage="))?;
    let (used, quota) = part.split_once('/')?;
    Some((used.trim().parse().ok()?, quota.trim().parse().ok()?))
}

/// Process-wide registry of budgets, keyed by (API, account).
#[derive(Debug, Default)]
pub struct BudgetRegistry {
    budgets: Mutex<HashMap<BudgetKey, Arc<Budget>>>,
    overrides: Mutex<HashMap<BudgetKey, Limits>>,
}

impl BudgetRegistry {
    /// An empty registry (tests; production code uses [`BudgetRegistry::global`]).
    pub fn new() -> Self {
        Self::default()
    }

    /// The process-wide registry.
    pub fn global() -> &'static BudgetRegistry {
        static GLOBAL: OnceLock<BudgetRegistry> = OnceLock::new();
        GLOBAL.get_or_init(BudgetRegistry::new)
    }

    /// The budget for `key`, created with `default_limits` (or the override
    /// set for this key) on first use; the same key always gives the same `Arc`.
    pub fn budget(&self, key: BudgetKey, default_limits: Limits) -> Arc<Budget> {
        let mut budgets = self.budgets.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(b) = budgets.get(&key) {
            b.touch();
            return b.clone();
        }
        let limits = self
            .overrides
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .cloned()
            .unwrap_or(default_limits);
        let budget = Arc::new(Budget::new(key.clone(), limits));
        budgets.insert(key, budget.clone());
        budget
    }

    /// Every budget handed out so far, with a rate limit (the ones worth
    /// sharing between processes).
    pub fn rate_limited(&self) -> Vec<Arc<Budget>> {
        let budgets = self.budgets.lock().unwrap_or_else(|e| e.into_inner());
        budgets
            .values()
            .filter(|b| b.limits.requests_per_second.is_some())
            .cloned()
            .collect()
    }

    /// Configured limits that beat a connector's defaults for `key`.
    ///
    /// Set overrides before the first [`BudgetRegistry::budget`] call for the
    /// key: a budget already handed out keeps its limits.
    pub fn set_override(&self, key: BudgetKey, limits: Limits) {
        self.overrides
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, limits);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn fast_rates_get_a_small_burst_paced_to_stay_inside_the_rate() {
        // Below 100/s: one request at a time, at the rate.
        let slow = rate_limiter(&Limits::per_second(50.0), 1.0).unwrap();
        assert!(slow.check().is_ok());
        assert!(slow.check().is_err());
        // 166.7/s (Intercom's 10,000/min): a credit of one more request, the
        // spacing slowed to 164.7/s, so a one-second window sends at most
        // 164.7 + 1 < 166.7.
        let fast = rate_limiter(&Limits::per_minute(10_000.0), 1.0).unwrap();
        assert!(fast.check().is_ok());
        assert!(fast.check().is_ok());
        assert!(fast.check().is_err());
        // A configured burst is taken as it is.
        let configured = rate_limiter(&Limits::per_second(500.0).with_burst(1), 1.0).unwrap();
        assert!(configured.check().is_ok());
        assert!(configured.check().is_err());
    }

    #[test]
    fn sforce_limit_info_parses() {
        assert_eq!(
            parse_sforce_limit_info("api-usage=18/5000"),
            Some((18, 5000))
        );
        assert_eq!(
            parse_sforce_limit_info("per-app-api-usage=1/2, api-usage=7/100"),
            Some((7, 100))
        );
        assert_eq!(parse_sforce_limit_info("nothing"), None);
    }

    #[test]
    fn registry_shares_and_overrides() {
        let reg = BudgetRegistry::new();
        let k = BudgetKey::new("stripe", "acct_1");
        reg.set_override(k.clone(), Limits::per_second(5.0));
        let a = reg.budget(k.clone(), Limits::per_second(100.0));
        let b = reg.budget(k, Limits::unlimited());
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(a.limits().requests_per_second, Some(5.0));
        let other = reg.budget(
            BudgetKey::new("stripe", "acct_2"),
            Limits::per_second(100.0),
        );
        assert!(!Arc::ptr_eq(&a, &other));
    }

    #[tokio::test]
    async fn a_share_of_the_rate_spaces_requests_wider() {
        let b = Budget::new(BudgetKey::new("stripe", "acct"), Limits::per_second(20.0));
        assert_eq!((b.share(), b.rate()), (1.0, Some(20.0)));
        b.observe_latency(Duration::from_millis(500));
        assert_eq!(b.in_flight_target(), 15);
        b.set_share(0.5);
        assert_eq!((b.share(), b.rate()), (0.5, Some(10.0)));
        assert_eq!(b.in_flight_target(), 8);
        // 10/s: the 4th request is 300 ms after the 1st, at the earliest.
        let started = std::time::Instant::now();
        for _ in 0..4 {
            b.acquire().await.unwrap();
        }
        assert!(started.elapsed() >= Duration::from_millis(290));
        b.set_share(7.0);
        assert_eq!(b.rate(), Some(20.0));
        let registry = BudgetRegistry::new();
        registry.budget(BudgetKey::new("a", "1"), Limits::per_second(5.0));
        registry.budget(BudgetKey::new("b", "1"), Limits::concurrent(3));
        let limited = registry.rate_limited();
        assert_eq!(limited.len(), 1);
        assert_eq!(limited[0].key().api, "a");
    }

    #[tokio::test]
    async fn quota_stops_before_headroom() {
        let b = Budget::new(
            BudgetKey::new("sf", "org"),
            Limits::unlimited().with_daily_quota(100, 0.1),
        );
        b.record_requests(89);
        assert!(b.acquire().await.is_ok());
        b.record_requests(1);
        let err = b.acquire().await.unwrap_err();
        assert!(err.is_quota_reached());
        assert_eq!(
            err.to_string(),
            "sf: daily quota reached (90 of 100 requests used; headroom kept free)"
        );
    }

    #[tokio::test]
    async fn sforce_header_sets_usage_and_quota() {
        let b = Budget::new(
            BudgetKey::new("sf", "org"),
            Limits::unlimited().with_daily_quota(0, 0.0),
        );
        // A configured quota of 0 blocks everything; use the reported one instead.
        let b2 = Budget::new(
            BudgetKey::new("sf", "org"),
            Limits {
                quota_headroom: 0.5,
                ..Limits::unlimited()
            },
        );
        let mut h = HeaderMap::new();
        h.insert("sforce-limit-info", "api-usage=60/100".parse().unwrap());
        b2.observe(&h);
        assert_eq!(b2.quota_used(), 60);
        assert_eq!(b2.daily_quota(), Some(100));
        assert!(b2.acquire().await.unwrap_err().is_quota_reached());
        assert!(b.acquire().await.unwrap_err().is_quota_reached());
    }

    #[tokio::test]
    async fn remaining_zero_pauses_until_reset() {
        let b = Budget::new(BudgetKey::new("x", "y"), Limits::unlimited());
        let mut h = HeaderMap::new();
        h.insert("x-ratelimit-remaining", "0".parse().unwrap());
        h.insert("x-ratelimit-reset", "2".parse().unwrap());
        b.observe(&h);
        let left = b.paused_for().unwrap();
        assert!(left > Duration::from_millis(1500) && left <= Duration::from_secs(2));
    }
}
