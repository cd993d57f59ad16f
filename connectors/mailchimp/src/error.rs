//! The one error type of weft-mailchimp.

/// What failed in the Mailchimp connector.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MailchimpError {
    /// A config field is invalid (the message names the field, never a secret).
    #[error("mailchimp config: `{field}` {reason}")]
    Config {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A sync's definition does not fit Mailchimp (key or mapping).
    #[error("mailchimp sync `{sync}`: {reason}")]
    Sync {
        /// The sync's name.
        sync: String,
        /// What does not fit.
        reason: String,
    },
    /// A response did not have the shape the stream expects (a list without
    /// an `id`, a saved state of another shape).
    #[error("mailchimp stream `{stream}` ({endpoint}): {reason}")]
    Shape {
        /// The stream read.
        stream: String,
        /// The path read (no secrets: Mailchimp keys travel in a header).
        endpoint: String,
        /// What is wrong.
        reason: String,
    },
    /// The read was stopped (the run was cancelled or the pipeline stopped reading).
    #[error("mailchimp stream `{stream}`: the read was cancelled")]
    Cancelled {
        /// The stream read.
        stream: String,
    },
    /// An HTTP request failed (the URL and body in the message have secrets redacted).
    #[error(transparent)]
    Http(#[from] weft_http::HttpError),
    /// A secret could not be loaded.
    #[error(transparent)]
    Core(#[from] weft_core::CoreError),
}
