//! The one error type of weft-template.

/// What failed in the template connector.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TemplateError {
    /// A config field is invalid (the message names the field, never a secret).
    #[error("template config: `{field}` {reason}")]
    Config {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// An HTTP request failed (the URL in the message has secrets redacted).
    #[error(transparent)]
    Http(#[from] weft_http::HttpError),
    /// The catalog or a secret could not be loaded, or a stream is not declared.
    #[error(transparent)]
    Core(#[from] weft_core::CoreError),
}
