//! Per-stream counters, shared between the pipeline, the HTTP layer and the runner.

use std::sync::atomic::{AtomicU64, Ordering};

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
                MetricsSnapshot { $($field: self.$field.load(Ordering::Relaxed)),* }
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
}
