//! Fixed-window request counters for vendors whose limits are per minute or
//! per ten seconds (Zendesk, Intercom), with what their rate-limit headers report.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::state::lock;

/// What a window said about one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Admission {
    /// Whether the request is within the limit.
    pub(crate) admitted: bool,
    /// The window's limit.
    pub(crate) limit: u32,
    /// Requests left in the window after this one.
    pub(crate) remaining: u32,
    /// Whole seconds (rounded up, at least 1) until the window resets.
    pub(crate) reset_secs: u64,
}

/// Counts requests in fixed windows that open at the first request.
#[derive(Debug)]
pub(crate) struct Window {
    length: Duration,
    state: Mutex<Option<(Instant, u32)>>,
}

impl Window {
    pub(crate) fn new(length: Duration) -> Self {
        Self {
            length,
            state: Mutex::new(None),
        }
    }

    /// Counts one request against `limit`.
    pub(crate) fn admit(&self, limit: u32) -> Admission {
        let now = Instant::now();
        let mut state = lock(&self.state);
        let (start, count) = match *state {
            Some((start, count)) if now.duration_since(start) < self.length => (start, count),
            _ => (now, 0),
        };
        let count = count.saturating_add(1);
        *state = Some((start, count));
        let left = self.length.saturating_sub(now.duration_since(start));
        Admission {
            admitted: count <= limit,
            limit,
            remaining: limit.saturating_sub(count),
            reset_secs: (left.as_secs() + u64::from(left.subsec_nanos() > 0)).max(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_down_and_refuses_past_the_limit() {
        let w = Window::new(Duration::from_secs(60));
        let a = w.admit(2);
        assert!(a.admitted);
        assert_eq!(a.remaining, 1);
        assert!((1..=60).contains(&a.reset_secs));
        assert_eq!(w.admit(2).remaining, 0);
        assert!(!w.admit(2).admitted);
    }
}
