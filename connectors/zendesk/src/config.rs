//! Zendesk connector configuration.

use serde::Deserialize;
use weft_core::SecretRef;
use weft_http::HttpSettings;

use crate::ZendeskError;

/// Largest page of an incremental export.
pub const MAX_EXPORT_PAGE: u32 = 1_000;

/// Configuration of the Zendesk source (the `[pipelines.config]` table).
///
/// ```
/// let config: weft_zendesk::ZendeskConfig = serde_json::from_str(r#"{
///     "subdomain": "acme",
///     "email": "agent@acme.example",
///     "api_token": {"env": "ZENDESK_API_TOKEN"}
/// }"#).unwrap();
/// assert_eq!(config.base_url().unwrap().as_str(), "https://acme.zendesk.com/");
/// assert_eq!(config.incremental_requests_per_minute, 10);
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZendeskConfig {
    /// The account's subdomain (`acme` for `https://acme.zendesk.com`).
    #[serde(default)]
    pub subdomain: Option<String>,
    /// API base URL instead of the subdomain (the sandbox, a proxy, a host-mapped domain).
    #[serde(default)]
    pub base_url: Option<String>,
    /// Email of the agent the API token belongs to (basic auth user `{email}/token`).
    pub email: String,
    /// API token: `{ env = "ZENDESK_API_TOKEN" }` or `{ file = "..." }`.
    pub api_token: SecretRef,
    /// Where a first export starts (Unix seconds; default 0 = all history).
    #[serde(default)]
    pub start_time: i64,
    /// Records per incremental export page (1..=1000).
    #[serde(default = "default_page_size")]
    pub page_size: u32,
    /// The plan's limit in requests per minute (Team 200, Growth and
    /// Professional 400, Enterprise 700, High Volume add-on 2,500; default 200).
    #[serde(default = "default_requests_per_minute")]
    pub requests_per_minute: u32,
    /// Incremental export requests per minute (Zendesk allows 10; 30 with the High Volume add-on).
    #[serde(default = "default_incremental_requests_per_minute")]
    pub incremental_requests_per_minute: u32,
    /// Incremental export requests that may go back to back before the
    /// per-minute pace applies (Zendesk counts exports per minute; default
    /// 10, never more than `incremental_requests_per_minute`).
    #[serde(default = "default_export_burst")]
    pub export_burst: u32,
    /// Seconds a saved time-based cursor stays behind extraction start
    /// (Zendesk requires a `start_time` at least a minute old).
    #[serde(default = "default_settle_secs")]
    pub settle_secs: u64,
    /// Retry and timeout settings.
    #[serde(default)]
    pub http: Option<HttpSettings>,
}

fn default_page_size() -> u32 {
    MAX_EXPORT_PAGE
}

fn default_requests_per_minute() -> u32 {
    200
}

fn default_incremental_requests_per_minute() -> u32 {
    10
}

fn default_export_burst() -> u32 {
    10
}

fn default_settle_secs() -> u64 {
    60
}

impl ZendeskConfig {
    /// A config for `https://{subdomain}.zendesk.com` with the token read from `api_token`.
    pub fn new(
        subdomain: impl Into<String>,
        email: impl Into<String>,
        api_token: SecretRef,
    ) -> Self {
        ZendeskConfig {
            subdomain: Some(subdomain.into()),
            base_url: None,
            email: email.into(),
            api_token,
            start_time: 0,
            page_size: default_page_size(),
            requests_per_minute: default_requests_per_minute(),
            incremental_requests_per_minute: default_incremental_requests_per_minute(),
            export_burst: default_export_burst(),
            settle_secs: default_settle_secs(),
            http: None,
        }
    }

    /// The API base URL: `base_url`, else `https://{subdomain}.zendesk.com`.
    pub fn base_url(&self) -> Result<url::Url, ZendeskError> {
        let text = match (&self.base_url, &self.subdomain) {
            (Some(url), _) => url.clone(),
            (None, Some(sub)) => format!("https://{}.zendesk.com", sub.trim()),
            (None, None) => {
                return Err(ZendeskError::Config {
                    field: "subdomain",
                    reason: "set `subdomain` or `base_url`".into(),
                });
            }
        };
        url::Url::parse(&text).map_err(|e| ZendeskError::Config {
            field: if self.base_url.is_some() {
                "base_url"
            } else {
                "subdomain"
            },
            reason: format!("`{text}` is not a URL: {e}"),
        })
    }

    /// Checks field ranges.
    pub fn validate(&self) -> Result<(), ZendeskError> {
        let bad = |field: &'static str, reason: String| Err(ZendeskError::Config { field, reason });
        if !(1..=MAX_EXPORT_PAGE).contains(&self.page_size) {
            return bad(
                "page_size",
                format!("must be 1..={MAX_EXPORT_PAGE}, got {}", self.page_size),
            );
        }
        if self.requests_per_minute == 0 {
            return bad("requests_per_minute", "must be at least 1".into());
        }
        if self.incremental_requests_per_minute == 0 {
            return bad(
                "incremental_requests_per_minute",
                "must be at least 1".into(),
            );
        }
        if self.export_burst == 0 {
            return bad("export_burst", "must be at least 1".into());
        }
        if self.email.trim().is_empty() {
            return bad("email", "must not be empty".into());
        }
        if self.start_time < 0 {
            return bad(
                "start_time",
                format!("must be >= 0, got {}", self.start_time),
            );
        }
        self.base_url().map(drop)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn validation_names_the_field() {
        let mut c = ZendeskConfig::new("acme", "a@b.co", SecretRef::Env { env: "T".into() });
        c.validate().unwrap();
        c.page_size = 1_001;
        assert_eq!(
            c.validate().unwrap_err().to_string(),
            "zendesk config: `page_size` must be 1..=1000, got 1001"
        );
        c.page_size = 10;
        c.subdomain = None;
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("`subdomain`")
        );
        c.base_url = Some("not a url".into());
        assert!(c.validate().unwrap_err().to_string().contains("`base_url`"));
        let err = serde_json::from_str::<ZendeskConfig>(
            r#"{"subdomain":"a","email":"e","api_token":{"env":"T"},"token":"x"}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("unknown field `token`"), "{err}");
    }
}
