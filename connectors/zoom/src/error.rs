//! The one error type of weft-zoom.

/// What failed in the Zoom connector.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ZoomError {
    /// A config field is invalid.
    #[error("zoom config: `{field}` {reason}")]
    Config {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// An HTTP request failed (URLs and bodies in the message have secrets redacted).
    #[error(transparent)]
    Http(#[from] weft_http::HttpError),
    /// The catalog or a secret could not be loaded.
    #[error(transparent)]
    Core(#[from] weft_core::CoreError),
    /// A stream named in a request or the catalog is not declared.
    #[error("zoom: unknown stream `{stream}`")]
    UnknownStream {
        /// The stream name.
        stream: String,
    },
    /// A response did not have the shape Zoom documents.
    #[error("zoom {stream}: page {page} of {endpoint}: {reason}")]
    Shape {
        /// Stream being read.
        stream: String,
        /// Endpoint path (with the parent id filled in).
        endpoint: String,
        /// 1-based page number.
        page: u64,
        /// What was wrong.
        reason: String,
    },
    /// The run was cancelled.
    #[error("zoom {stream}: cancelled")]
    Cancelled {
        /// Stream being read.
        stream: String,
    },
    /// A sync's spec cannot be sent to Zoom (unknown field, no webinar, mirror key).
    #[error("zoom sync `{sync}`: {reason}")]
    Sync {
        /// Sync name.
        sync: String,
        /// What is wrong.
        reason: String,
    },
}
