//! Retry and timeout settings: per-connector defaults, overridable in config.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Retry and timeout settings of an [`HttpClient`](crate::HttpClient).
///
/// A connector starts from [`HttpSettings::default`] (or its own values) and
/// config may override any field; missing fields keep the defaults below.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSettings {
    /// Attempts per request, the first one included (default 8).
    pub max_attempts: u32,
    /// Total time one request may spend retrying, in seconds (default 300).
    pub max_retry_secs: u64,
    /// First backoff delay, in milliseconds (default 500).
    pub initial_backoff_ms: u64,
    /// Longest backoff delay, in milliseconds (default 30000).
    pub max_backoff_ms: u64,
    /// Shortest wait after a 429, even when `Retry-After` says 0, in milliseconds (default 1000).
    pub min_retry_after_ms: u64,
    /// TCP/TLS connect timeout, in seconds (default 10).
    pub connect_timeout_secs: u64,
    /// Whole-request timeout (headers and body), in seconds (default 60).
    pub request_timeout_secs: u64,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            max_retry_secs: 300,
            initial_backoff_ms: 500,
            max_backoff_ms: 30_000,
            min_retry_after_ms: 1_000,
            connect_timeout_secs: 10,
            request_timeout_secs: 60,
        }
    }
}

impl HttpSettings {
    pub(crate) fn max_retry(&self) -> Duration {
        Duration::from_secs(self.max_retry_secs)
    }

    pub(crate) fn min_retry_after(&self) -> Duration {
        Duration::from_millis(self.min_retry_after_ms)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn partial_config_keeps_defaults_and_rejects_unknown() {
        let s: HttpSettings = serde_json::from_str(r#"{"max_attempts": 3}"#).unwrap();
        assert_eq!(s.max_attempts, 3);
        assert_eq!(s.min_retry_after_ms, 1000);
        let err = serde_json::from_str::<HttpSettings>(r#"{"retries": 3}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field `retries`"));
    }
}
