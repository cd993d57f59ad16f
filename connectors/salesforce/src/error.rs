//! The one error type of weft-salesforce.

/// What failed in the Salesforce connector.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SalesforceError {
    /// A config field is invalid.
    #[error("salesforce config: `{field}` {reason}")]
    Config {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// An HTTP request failed (the URL in the message has secrets redacted).
    #[error(transparent)]
    Http(#[from] weft_http::HttpError),
    /// The catalog or a secret could not be loaded.
    #[error(transparent)]
    Core(#[from] weft_core::CoreError),
    /// Salesforce refused the request because the org's rolling 24-hour API
    /// request limit is used up (`REQUEST_LIMIT_EXCEEDED`); the run stops and
    /// keeps the last checkpoint.
    #[error(
        "salesforce {object}: the org's daily API request limit (DailyApiRequests) is used up \
         (REQUEST_LIMIT_EXCEEDED{}); stopping, the cursor is kept",
        usage_text(.used, .quota)
    )]
    RequestLimitExceeded {
        /// The object being read.
        object: String,
        /// Requests used, as last reported in `Sforce-Limit-Info`.
        used: Option<u64>,
        /// The quota, as configured or last reported.
        quota: Option<u64>,
    },
    /// A response did not have the shape Salesforce documents.
    #[error("salesforce {object}: {what}: {reason}")]
    Shape {
        /// The object being described or read.
        object: String,
        /// Which response (describe, query page, bulk results...).
        what: String,
        /// What was wrong.
        reason: String,
    },
    /// A Bulk API 2.0 query job ended without completing.
    #[error("salesforce {object}: bulk query job {job} ended in state {state}: {message}")]
    BulkJob {
        /// The object being read.
        object: String,
        /// The job id.
        job: String,
        /// `Failed` or `Aborted`.
        state: String,
        /// Salesforce's `errorMessage`.
        message: String,
    },
    /// A reverse sync cannot write to the object as configured (unknown or
    /// read-only field, a field that is not an external id); names the field.
    #[error("salesforce {object}: field `{field}` {reason}")]
    Field {
        /// The object synced to.
        object: String,
        /// The field.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A sync's spec does not fit the destination (checked before anything is sent).
    #[error("sync `{sync}` to salesforce: {reason}")]
    Sync {
        /// The sync's name.
        sync: String,
        /// What is wrong.
        reason: String,
    },
    /// The run was cancelled.
    #[error("salesforce {object}: cancelled")]
    Cancelled {
        /// The object being read.
        object: String,
    },
}

fn usage_text(used: &Option<u64>, quota: &Option<u64>) -> String {
    match (used, quota) {
        (Some(u), Some(q)) => format!(", {u} of {q} requests used"),
        (None, Some(q)) => format!(", quota {q}"),
        _ => String::new(),
    }
}
