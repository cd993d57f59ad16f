//! Zoom connector configuration.

use serde::Deserialize;
use weft_core::SecretRef;
use weft_http::HttpSettings;

use crate::ZoomError;

/// Zoom's production API.
pub const DEFAULT_BASE_URL: &str = "https://api.zoom.us";
/// Zoom's OAuth token endpoint.
pub const DEFAULT_TOKEN_URL: &str = "https://zoom.us/oauth/token";
/// Zoom's largest `page_size` for the endpoints read here.
pub const MAX_PAGE_SIZE: u32 = 300;

/// Configuration of the Zoom source (the `[pipelines.config]` table) and
/// sync destination (`[syncs.config]`, with `webinar_id`).
///
/// ```toml
/// account_id = "acct-123"
/// client_id = "client-abc"
/// client_secret = { env = "ZOOM_CLIENT_SECRET" }
/// fan_out_concurrency = 4
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoomConfig {
    /// API base URL; omitted = `https://api.zoom.us`. Set it for the sandbox or a proxy.
    #[serde(default)]
    pub base_url: Option<String>,
    /// OAuth token URL; omitted = `https://zoom.us/oauth/token`.
    #[serde(default)]
    pub token_url: Option<String>,
    /// The Zoom account id of the server-to-server OAuth app (not secret);
    /// also keys the account's shared rate budget.
    pub account_id: String,
    /// The app's client id (not secret).
    pub client_id: String,
    /// The app's client secret: `{ env = "ZOOM_CLIENT_SECRET" }` or `{ file = "..." }`.
    pub client_secret: SecretRef,
    /// Records per page (1..=300).
    #[serde(default = "default_page_size")]
    pub page_size: u32,
    /// Parents (users, webinars) whose children are read at once (1..=64).
    #[serde(default = "default_fan_out_concurrency")]
    pub fan_out_concurrency: usize,
    /// Overrides the documented rate limit (20/s: Pro plan, Medium category).
    #[serde(default)]
    pub requests_per_second: Option<f64>,
    /// Retry and timeout settings.
    #[serde(default)]
    pub http: Option<HttpSettings>,
    /// As a sync destination: the webinar people are registered for, unless
    /// the sync maps a `webinar_id` column (required in mirror mode).
    #[serde(default)]
    pub webinar_id: Option<i64>,
    /// As a sync destination in mirror mode: what happens to a registrant
    /// who left the model (`cancel`, the default, or `deny`).
    #[serde(default)]
    pub mirror_action: MirrorAction,
}

/// What a mirror sync does to a registrant who left the model.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MirrorAction {
    /// Cancel the registration (`action: cancel`).
    #[default]
    Cancel,
    /// Deny it (`action: deny`).
    Deny,
}

impl MirrorAction {
    /// The status update's `action`.
    pub fn as_str(self) -> &'static str {
        match self {
            MirrorAction::Cancel => "cancel",
            MirrorAction::Deny => "deny",
        }
    }
}

fn default_page_size() -> u32 {
    MAX_PAGE_SIZE
}

fn default_fan_out_concurrency() -> usize {
    4
}

impl ZoomConfig {
    /// A config for Zoom's production endpoints with the secret read from `client_secret`.
    pub fn new(
        account_id: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: SecretRef,
    ) -> Self {
        ZoomConfig {
            base_url: None,
            token_url: None,
            account_id: account_id.into(),
            client_id: client_id.into(),
            client_secret,
            page_size: default_page_size(),
            fan_out_concurrency: default_fan_out_concurrency(),
            requests_per_second: None,
            http: None,
            webinar_id: None,
            mirror_action: MirrorAction::default(),
        }
    }

    /// Checks field ranges.
    pub fn validate(&self) -> Result<(), ZoomError> {
        if !(1..=MAX_PAGE_SIZE).contains(&self.page_size) {
            return Err(ZoomError::Config {
                field: "page_size",
                reason: format!("must be 1..={MAX_PAGE_SIZE}, got {}", self.page_size),
            });
        }
        if !(1..=64).contains(&self.fan_out_concurrency) {
            return Err(ZoomError::Config {
                field: "fan_out_concurrency",
                reason: format!("must be 1..=64, got {}", self.fan_out_concurrency),
            });
        }
        if self
            .requests_per_second
            .is_some_and(|r| r <= 0.0 || r.is_nan())
        {
            return Err(ZoomError::Config {
                field: "requests_per_second",
                reason: "must be positive".into(),
            });
        }
        for (field, value) in [
            ("account_id", &self.account_id),
            ("client_id", &self.client_id),
        ] {
            if value.trim().is_empty() {
                return Err(ZoomError::Config {
                    field,
                    reason: "must not be empty".into(),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn parse(text: &str) -> Result<ZoomConfig, serde_json::Error> {
        serde_json::from_str(text)
    }

    #[test]
    fn defaults_and_validation() {
        let c = parse(r#"{"account_id":"a","client_id":"c","client_secret":{"env":"S"}}"#).unwrap();
        assert_eq!((c.page_size, c.fan_out_concurrency), (300, 4));
        assert_eq!((c.base_url, c.token_url), (None, None));
        let mut bad = ZoomConfig::new("a", "c", SecretRef::Env { env: "S".into() });
        bad.page_size = 301;
        let err = bad.validate().unwrap_err().to_string();
        assert_eq!(err, "zoom config: `page_size` must be 1..=300, got 301");
        bad.page_size = 300;
        bad.fan_out_concurrency = 0;
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("fan_out_concurrency")
        );
        bad.fan_out_concurrency = 1;
        bad.account_id = " ".into();
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("account_id")
        );
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let err =
            parse(r#"{"account_id":"a","client_id":"c","client_secret":{"env":"S"},"pagesize":5}"#)
                .unwrap_err()
                .to_string();
        assert!(err.contains("unknown field `pagesize`"), "{err}");
    }
}
