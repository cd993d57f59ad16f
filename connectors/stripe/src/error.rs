//! The one error type of weft-stripe.

/// What failed in the Stripe connector.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StripeError {
    /// A config field is invalid.
    #[error("stripe config: `{field}` {reason}")]
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
    /// A response did not have the shape Stripe documents.
    #[error("stripe {stream}: page {page} of {endpoint}: {reason}")]
    Shape {
        /// Stream being read.
        stream: String,
        /// Endpoint path.
        endpoint: String,
        /// 1-based page number.
        page: u64,
        /// What was wrong.
        reason: String,
    },
    /// The saved state cannot be resumed.
    #[error("stripe {stream}: saved state: {reason}")]
    State {
        /// Stream whose state it is.
        stream: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A reverse sync's spec does not fit Stripe (the reason names the field).
    #[error("stripe sync `{sync}`: {reason}")]
    Sync {
        /// The sync's name.
        sync: String,
        /// What is wrong.
        reason: String,
    },
    /// The run was cancelled.
    #[error("stripe {stream}: cancelled")]
    Cancelled {
        /// Stream being read.
        stream: String,
    },
}
