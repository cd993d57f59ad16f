//! The crate's error type: what failed, against which API and URL (secrets redacted).

use std::time::Duration;

/// Everything that can go wrong while talking to an API.
///
/// URLs and bodies carried by the variants are already redacted: secret query
/// parameters and known secret values read `REDACTED`.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The API answered with an error status (a 4xx other than 401/429, or a
    /// 5xx once retries were used up); `body` is the vendor's message, trimmed.
    #[error("{api}: {method} {url} returned HTTP {status}: {body}")]
    Status {
        /// API name (e.g. `stripe`).
        api: String,
        /// HTTP method.
        method: String,
        /// HTTP status code.
        status: u16,
        /// Request URL, redacted.
        url: String,
        /// Vendor error body, trimmed to 500 characters and redacted.
        body: String,
    },
    /// The API kept answering 429 until the attempts or the total retry time ran out.
    #[error("{api}: rate limited (HTTP 429) at {url} after {attempts} attempts{}", retry_after_text(.retry_after))]
    RateLimited {
        /// API name.
        api: String,
        /// Request URL, redacted.
        url: String,
        /// Attempts made.
        attempts: u32,
        /// The last `Retry-After` the API sent, if any.
        retry_after: Option<Duration>,
    },
    /// The API answered 401, and a token refresh (when there is a token provider) did not help.
    #[error("{api}: not authorized (HTTP 401) at {url}: {body}")]
    Unauthorized {
        /// API name.
        api: String,
        /// Request URL, redacted.
        url: String,
        /// Vendor error body, trimmed and redacted.
        body: String,
    },
    /// The request timed out on every attempt.
    #[error("{api}: request to {url} timed out after {attempts} attempts")]
    Timeout {
        /// API name.
        api: String,
        /// Request URL, redacted.
        url: String,
        /// Attempts made.
        attempts: u32,
    },
    /// The connection could not be made or was reset before a response arrived.
    #[error("{api}: connection to {url} failed after {attempts} attempts: {reason}")]
    Connect {
        /// API name.
        api: String,
        /// Request URL, redacted.
        url: String,
        /// Attempts made.
        attempts: u32,
        /// What the transport reported.
        reason: String,
    },
    /// The response body ended early or was not valid JSON on every attempt.
    #[error(
        "{api}: response body from {url} was cut short or unreadable after {attempts} attempts: {reason}"
    )]
    Body {
        /// API name.
        api: String,
        /// Request URL, redacted.
        url: String,
        /// Attempts made.
        attempts: u32,
        /// What went wrong while reading or parsing.
        reason: String,
    },
    /// A well-formed response did not have the expected shape.
    #[error("could not decode the response from {url}: {reason}")]
    Decode {
        /// Request URL, redacted.
        url: String,
        /// What did not match.
        reason: String,
    },
    /// A pagination cursor, token or next URL came back a second time.
    #[error("pagination loop at {url}: cursor {cursor} was already seen")]
    PaginationLoop {
        /// URL of the page that returned the repeated cursor, redacted.
        url: String,
        /// The repeated cursor, redacted.
        cursor: String,
    },
    /// The daily quota (minus its headroom) is used up; stop cleanly and keep the cursor.
    #[error("{0}")]
    QuotaReached(#[source] weft_core::QuotaReached),
    /// Getting an access token failed.
    #[error("{api}: authentication at {url} failed: {reason}")]
    Auth {
        /// API name or token endpoint owner.
        api: String,
        /// Token endpoint URL, redacted.
        url: String,
        /// What went wrong, redacted.
        reason: String,
    },
    /// The HTTP client could not be built (invalid header, TLS setup...).
    #[error("{api}: could not build the HTTP client: {reason}")]
    Build {
        /// API name.
        api: String,
        /// What was invalid.
        reason: String,
    },
    /// A request path or URL could not be turned into a URL.
    #[error("{api}: invalid request URL {path}: {reason}")]
    Url {
        /// API name.
        api: String,
        /// The path or URL given, redacted.
        path: String,
        /// Why it is invalid.
        reason: String,
    },
    /// An asynchronous job (bulk ingest, job status) did not finish in the
    /// time its [`crate::PollPolicy`] allows.
    #[error("{what} did not finish within {waited_secs} s ({probes} probes)")]
    JobTimeout {
        /// The job, as the caller named it.
        what: String,
        /// Seconds waited.
        waited_secs: u64,
        /// Probes made.
        probes: u32,
    },
    /// Waiting was cancelled (shutdown).
    #[error("{what}: cancelled")]
    Cancelled {
        /// What was waiting.
        what: String,
    },
}

fn retry_after_text(retry_after: &Option<Duration>) -> String {
    match retry_after {
        Some(d) => format!(" (last Retry-After {} ms)", d.as_millis()),
        None => String::new(),
    }
}

impl HttpError {
    /// The HTTP status behind this error, when there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            HttpError::Status { status, .. } => Some(*status),
            HttpError::RateLimited { .. } => Some(429),
            HttpError::Unauthorized { .. } => Some(401),
            _ => None,
        }
    }

    /// Whether the failure is transient (worth retrying later): throttling,
    /// 5xx, timeouts, connection failures and cut-short bodies.
    pub fn is_retryable(&self) -> bool {
        match self {
            HttpError::Status { status, .. } => matches!(status, 500 | 502 | 503 | 504),
            HttpError::RateLimited { .. }
            | HttpError::Timeout { .. }
            | HttpError::Connect { .. }
            | HttpError::Body { .. } => true,
            _ => false,
        }
    }

    /// Whether this is the daily-quota stop (end the run cleanly, keep the cursor).
    pub fn is_quota_reached(&self) -> bool {
        matches!(self, HttpError::QuotaReached(_))
    }
}

/// Splits the result of a call about one record (a reverse sync's write):
/// `Ok(Ok(v))` it succeeded; `Ok(Err(reason))` the destination refused
/// this record, as `reason` recognises it (typically its 4xx with the
/// vendor's message); `Err(e)` any other failure, which fails the whole
/// batch (auth, throttling after retries, 5xx, transport).
pub fn split_reject<T>(
    result: Result<T, HttpError>,
    reason: impl Fn(&HttpError) -> Option<String>,
) -> Result<Result<T, String>, HttpError> {
    match result {
        Ok(v) => Ok(Ok(v)),
        Err(e) => match reason(&e) {
            Some(reason) => Ok(Err(reason)),
            None => Err(e),
        },
    }
}

#[cfg(test)]
mod split_tests {
    use super::*;

    #[test]
    fn a_recognised_failure_is_the_records_reject_and_others_fail_the_batch() {
        let status = |status: u16| HttpError::Status {
            api: "x".into(),
            method: "POST".into(),
            status,
            url: "u".into(),
            body: "bad email".into(),
        };
        let reason = |e: &HttpError| match e {
            HttpError::Status {
                status: 400, body, ..
            } => Some(body.clone()),
            _ => None,
        };
        assert!(matches!(split_reject(Ok::<u8, _>(1), reason), Ok(Ok(1))));
        assert!(matches!(
            split_reject(Err::<u8, _>(status(400)), reason),
            Ok(Err(r)) if r == "bad email"
        ));
        assert!(matches!(
            split_reject(Err::<u8, _>(status(503)), reason),
            Err(HttpError::Status { status: 503, .. })
        ));
    }
}
