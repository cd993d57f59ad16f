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
    /// A secret could not be loaded.
    #[error(transparent)]
    Core(#[from] weft_core::CoreError),
}
