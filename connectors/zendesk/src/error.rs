//! The one error type of weft-zendesk.

/// What failed in the Zendesk connector.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ZendeskError {
    /// A config field is invalid (the message names the field, never a secret).
    #[error("zendesk config: `{field}` {reason}")]
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
    /// A stream named in a request is not declared.
    #[error("zendesk: unknown stream `{stream}`")]
    UnknownStream {
        /// The stream name.
        stream: String,
    },
    /// A response did not have the shape Zendesk documents.
    #[error("zendesk {stream}: page {page} of {endpoint}: {reason}")]
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
    /// A sync's spec does not fit Zendesk (the reason names the field).
    #[error("sync {sync} to zendesk: {reason}")]
    Sync {
        /// Sync name.
        sync: String,
        /// What is wrong.
        reason: String,
    },
    /// A `create_or_update_many` job ended without completing.
    #[error("zendesk job {job} ended {status}: {message}")]
    Job {
        /// The job id.
        job: String,
        /// Its final status (`failed`, `killed`).
        status: String,
        /// Zendesk's message.
        message: String,
    },
    /// The run was cancelled.
    #[error("zendesk {stream}: cancelled")]
    Cancelled {
        /// Stream being read.
        stream: String,
    },
}
