//! The template API's configuration: a pipeline's `config` table.

use serde::Deserialize;
use weft_core::SecretRef;
use weft_http::HttpSettings;

use crate::TemplateError;

/// The API's production base URL (the sandbox's is set in `base_url`).
pub const DEFAULT_BASE_URL: &str = "https://api.template.example";

/// Configuration of the template source.
///
/// ```
/// let config: weft_template::TemplateConfig = toml::from_str(r#"
///     api_key = { env = "TEMPLATE_API_KEY" }
/// "#).unwrap();
/// assert_eq!(config.page_size, 100);
/// assert_eq!(config.requests_per_second, 25.0);
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateConfig {
    /// API key, sent as a bearer token: `{ env = "VAR" }` or `{ file = "..." }`.
    pub api_key: SecretRef,
    /// API base URL; omitted = [`DEFAULT_BASE_URL`]. Set it for the sandbox or a proxy.
    #[serde(default)]
    pub base_url: Option<String>,
    /// Records per page (1..=100, default 100).
    #[serde(default = "default_page_size")]
    pub page_size: u32,
    /// Requests per second for the account (default 25, the documented limit);
    /// every job on the same key shares it.
    #[serde(default = "default_requests_per_second")]
    pub requests_per_second: f64,
    /// Seconds a saved `updated_at` cursor stays behind extraction start, so
    /// records still being written are read again next run (default 60).
    #[serde(default = "default_settle_secs")]
    pub settle_secs: u64,
    /// Retry and timeout settings.
    #[serde(default)]
    pub http: Option<HttpSettings>,
}

fn default_settle_secs() -> u64 {
    60
}

fn default_page_size() -> u32 {
    100
}

fn default_requests_per_second() -> f64 {
    25.0
}

impl TemplateConfig {
    /// A config with the key read from `api_key` and default settings.
    pub fn new(api_key: SecretRef) -> Self {
        TemplateConfig {
            api_key,
            base_url: None,
            page_size: default_page_size(),
            requests_per_second: default_requests_per_second(),
            settle_secs: default_settle_secs(),
            http: None,
        }
    }

    /// Checks field ranges.
    pub fn validate(&self) -> Result<(), TemplateError> {
        if !(1..=100).contains(&self.page_size) {
            return Err(TemplateError::Config {
                field: "page_size",
                reason: format!("must be 1..=100, got {}", self.page_size),
            });
        }
        if !(self.requests_per_second > 0.0 && self.requests_per_second.is_finite()) {
            return Err(TemplateError::Config {
                field: "requests_per_second",
                reason: format!("must be positive, got {}", self.requests_per_second),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn validation_names_the_field() {
        let mut c = TemplateConfig::new(SecretRef::Env { env: "K".into() });
        c.validate().unwrap();
        c.page_size = 0;
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("`page_size`")
        );
        c.page_size = 10;
        c.requests_per_second = 0.0;
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("`requests_per_second`"), "{err}");
        let err = serde_json::from_str::<TemplateConfig>(r#"{"api_key":{"env":"K"},"key":"x"}"#)
            .unwrap_err();
        assert!(err.to_string().contains("unknown field `key`"));
    }
}
