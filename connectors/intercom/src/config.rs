//! Intercom destination configuration.

use serde::Deserialize;
use weft_core::SecretRef;
use weft_http::{HttpSettings, SliceSettings};

use crate::IntercomError;

/// Intercom's production API (US region).
pub const DEFAULT_BASE_URL: &str = "https://api.intercom.io";

/// Configuration of Intercom as a source (a pipeline's `config` table) and as the
/// contacts destination (a sync's `config` table).
///
/// ```
/// let config: weft_intercom::IntercomConfig = toml::from_str(r#"
///     access_token = { env = "INTERCOM_ACCESS_TOKEN" }
/// "#).unwrap();
/// assert_eq!(config.intercom_version, "2.16");
/// assert_eq!(config.concurrency, 8);
/// assert_eq!(config.page_size, 150);
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntercomConfig {
    /// Access token: `{ env = "INTERCOM_ACCESS_TOKEN" }` or `{ file = "..." }`.
    pub access_token: SecretRef,
    /// API base URL; omitted = `https://api.intercom.io` (EU: `https://api.eu.intercom.io`,
    /// AU: `https://api.au.intercom.io`). Set it for the sandbox or a proxy.
    #[serde(default)]
    pub base_url: Option<String>,
    /// The `Intercom-Version` header sent with every request (default `2.16`).
    #[serde(default = "default_version")]
    pub intercom_version: String,
    /// Contacts written at once within one batch (1..=50, default 8); all
    /// syncs on the app share its 10,000 requests/minute budget.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Requests per minute for the app (default 10,000, Intercom's documented limit).
    #[serde(default = "default_requests_per_minute")]
    pub requests_per_minute: u32,
    /// Source: records per search page (1..=150, default 150).
    #[serde(default = "default_page_size")]
    pub page_size: u32,
    /// Source: seconds a saved `updated_at` cursor stays behind extraction
    /// start, so records still being written are read again next run.
    #[serde(default = "default_settle_secs")]
    pub settle_secs: u64,
    /// Retry and timeout settings.
    #[serde(default)]
    pub http: Option<HttpSettings>,
    /// Source: searches read in concurrent slices of `updated_at`
    /// (`enabled`, `max_pages` per slice).
    #[serde(default)]
    pub slices: SliceSettings,
}

fn default_version() -> String {
    "2.16".into()
}

fn default_concurrency() -> usize {
    8
}

fn default_requests_per_minute() -> u32 {
    10_000
}

fn default_page_size() -> u32 {
    150
}

fn default_settle_secs() -> u64 {
    60
}

impl IntercomConfig {
    /// A config with the token read from `access_token` and default settings.
    pub fn new(access_token: SecretRef) -> Self {
        IntercomConfig {
            access_token,
            base_url: None,
            intercom_version: default_version(),
            concurrency: default_concurrency(),
            requests_per_minute: default_requests_per_minute(),
            page_size: default_page_size(),
            settle_secs: default_settle_secs(),
            http: None,
            slices: SliceSettings::default(),
        }
    }

    /// Checks field ranges.
    pub fn validate(&self) -> Result<(), IntercomError> {
        if !(1..=50).contains(&self.concurrency) {
            return Err(IntercomError::Config {
                field: "concurrency",
                reason: format!("must be 1..=50, got {}", self.concurrency),
            });
        }
        if self.requests_per_minute == 0 {
            return Err(IntercomError::Config {
                field: "requests_per_minute",
                reason: "must be at least 1".into(),
            });
        }
        if !(1..=150).contains(&self.page_size) {
            return Err(IntercomError::Config {
                field: "page_size",
                reason: format!("must be 1..=150, got {}", self.page_size),
            });
        }
        if self.intercom_version.trim().is_empty() {
            return Err(IntercomError::Config {
                field: "intercom_version",
                reason: "must not be empty".into(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn validation_names_the_field() {
        let mut c = IntercomConfig::new(SecretRef::Env { env: "T".into() });
        c.validate().unwrap();
        c.concurrency = 0;
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("`concurrency`")
        );
        let err =
            serde_json::from_str::<IntercomConfig>(r#"{"access_token":{"env":"T"},"token":"x"}"#)
                .unwrap_err();
        assert!(err.to_string().contains("unknown field `token`"));
    }
}
