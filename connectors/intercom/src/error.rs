//! The one error type of weft-intercom.

/// What failed in the Intercom connector.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IntercomError {
    /// A config field is invalid (the message names the field, never a secret).
    #[error("intercom config: `{field}` {reason}")]
    Config {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// An HTTP request failed (the URL and body in the message have secrets redacted).
    #[error(transparent)]
    Http(#[from] weft_http::HttpError),
    /// The catalog or a secret could not be loaded, or a stream is not declared.
    #[error(transparent)]
    Core(#[from] weft_core::CoreError),
    /// A response did not have the shape Intercom documents.
    #[error("intercom {stream}: page {page} of {endpoint}: {reason}")]
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
    /// The run was cancelled.
    #[error("intercom {stream}: cancelled")]
    Cancelled {
        /// Stream being read.
        stream: String,
    },
}
