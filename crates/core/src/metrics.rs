//! Per-stream counters, shared between the pipeline, the HTTP layer and the runner.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use serde::Serialize;

/// Live counters for one stream's run; cheap to update from any task.
#[derive(Debug, Default)]
pub struct StreamMetrics {
    rows: AtomicU64,
    rejected: AtomicU64,
    bytes: AtomicU64,
    requests: AtomicU64,
    retries: AtomicU64,
    rate_limited: AtomicU64,
    wait_ms: AtomicU64,
    expected_errors: AtomicU64,
    slices_planned: AtomicU64,
    slices_done: AtomicU64,
    slices_split: AtomicU64,
    peak_in_flight: AtomicU64,
    budget_milli_rps: AtomicU64,
    source_count: AtomicU64,
    counted: AtomicBool,
}

/// A point-in-time copy of [`StreamMetrics`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct MetricsSnapshot {
    /// Rows loaded (or written to the load in progress).
    pub rows: u64,
    /// Records quarantined into `_weft_rejects`.
    pub rejected: u64,
    /// Response bytes received.
    pub bytes: u64,
    /// HTTP requests sent (including retries).
    pub requests: u64,
    /// Requests retried.
    pub retries: u64,
    /// Responses that were 429 (or the vendor's throttling equivalent).
    pub rate_limited: u64,
    /// Milliseconds spent waiting on rate budgets and backoff.
    pub wait_ms: u64,
    /// Error statuses the connector declared as expected (counted, not fatal).
    pub expected_errors: u64,
    /// Slices a sliced read planned (initial windows plus those split off).
    pub slices_planned: u64,
    /// Slices read to their end.
    pub slices_done: u64,
    /// Times a slice was split because it turned out dense.
    pub slices_split: u64,
    /// Most requests a sliced read had in flight at once.
    pub peak_in_flight: u64,
    /// The account budget's rate in thousandths of a request per second (0 = unlimited or unknown).
    pub budget_milli_rps: u64,
    /// The records the API said the read's window holds (its own count,
    /// summed over the listings counted); `None` when the source did not count.
    pub source_count: Option<u64>,
}

macro_rules! counters {
    ($($add:ident => $field:ident),* $(,)?) => {
        impl StreamMetrics {
            $(
                #[doc = concat!("Adds `n` to the `", stringify!($field), "` counter.")]
                pub fn $add(&self, n: u64) {
                    self.$field.fetch_add(n, Ordering::Relaxed);
                }
            )*

            /// Copies every counter.
            pub fn snapshot(&self) -> MetricsSnapshot {
                MetricsSnapshot {
                    $($field: self.$field.load(Ordering::Relaxed),)*
                    peak_in_flight: self.peak_in_flight.load(Ordering::Relaxed),
                    budget_milli_rps: self.budget_milli_rps.load(Ordering::Relaxed),
                    source_count: self
                        .counted
                        .load(Ordering::Acquire)
                        .then(|| self.source_count.load(Ordering::Relaxed)),
                }
            }
        }
    };
}

counters! {
    add_rows => rows,
    add_rejected => rejected,
    add_bytes => bytes,
    add_requests => requests,
    add_retries => retries,
    add_rate_limited => rate_limited,
    add_wait_ms => wait_ms,
    add_expected_errors => expected_errors,
    add_slices_planned => slices_planned,
    add_slices_done => slices_done,
    add_slices_split => slices_split,
}

impl StreamMetrics {
    /// Raises the peak of requests in flight to `n` if it is higher.
    pub fn observe_in_flight(&self, n: u64) {
        self.peak_in_flight.fetch_max(n, Ordering::Relaxed);
    }

    /// Adds `n` records to what the API says the read's window holds (Salesforce
    /// `COUNT()`, Mailchimp `total_items`...), for the completeness check: a
    /// source calls it once per listing it counts, for exactly what it then
    /// reads (not for a listing resumed past its count).
    pub fn add_source_count(&self, n: u64) {
        self.source_count.fetch_add(n, Ordering::Relaxed);
        self.counted.store(true, Ordering::Release);
    }

    /// Records the budget's rate (requests per second) the read ran under.
    pub fn set_budget_rps(&self, rps: f64) {
        let milli = if rps.is_finite() && rps > 0.0 {
            (rps * 1000.0).round() as u64
        } else {
            0
        };
        self.budget_milli_rps.store(milli, Ordering::Relaxed);
    }
}
