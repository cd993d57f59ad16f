//! Zendesk connector configuration.

use serde::Deserialize;
use weft_core::SecretRef;
use weft_http::HttpSettings;

use crate::ZendeskError;

/// Largest page of an incremental export.
pub const MAX_EXPORT_PAGE: u32 = 1_000;

/// Configuration of the Zendesk source (the `[pipelines.config]` table)
/// and of a reverse sync to Zendesk (the `[syncs.config]` table, which adds
/// `sync_object` and `mirror`).
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
    /// What a reverse sync writes: `users` (default) or `organizations`.
    #[serde(default)]
    pub sync_object: ZendeskObject,
    /// What a mirror-mode delete does to a record that left the model:
    /// `{ kind = "suspend" }` (users only; the users' default),
    /// `{ kind = "delete" }` (organizations only; their default),
    /// `{ kind = "tag", tags = ["churned"] }` (adds the tags, keeping the
    /// record's others) or `{ kind = "field", field = "user_fields.status",
    /// value = "inactive" }` (sets one field). Unset: the object's default.
    #[serde(default)]
    pub mirror: Option<ZendeskMirror>,
}

/// The Zendesk object a reverse sync writes (`sync_object`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ZendeskObject {
    /// End users, upserted by `external_id` or email through
    /// `users/create_or_update_many`.
    #[default]
    Users,
    /// Organizations, matched by `external_id` (`organizations/show_many`)
    /// and written through `organizations/create_many` and `update_many`.
    Organizations,
}

impl ZendeskObject {
    /// The name in config and in Zendesk's paths (`users`, `organizations`).
    pub fn as_str(self) -> &'static str {
        match self {
            ZendeskObject::Users => "users",
            ZendeskObject::Organizations => "organizations",
        }
    }

    /// What a mirror delete does when `mirror` is not set: users are
    /// suspended, organizations deleted.
    pub fn default_mirror(self) -> ZendeskMirror {
        match self {
            ZendeskObject::Users => ZendeskMirror::Suspend,
            ZendeskObject::Organizations => ZendeskMirror::Delete,
        }
    }
}

/// What a mirror-mode delete does at Zendesk (`mirror`, tagged by `kind`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ZendeskMirror {
    /// Users only: `suspended: true` (Zendesk keeps their tickets; an agent
    /// can unsuspend them).
    Suspend,
    /// Organizations only: `organizations/destroy_many` (cannot be undone).
    Delete,
    /// Adds these tags (`PUT /api/v2/{object}/{id}/tags`, which keeps the
    /// record's other tags). Tagging users and organizations must be
    /// enabled in the account (Admin Center, Customers settings).
    Tag {
        /// The tags to add (no spaces: Zendesk splits tags on them).
        tags: Vec<String>,
    },
    /// Sets one field: a field a mapping may fill (`notes`,
    /// `user_fields.status`, `organization_fields.status`, ...).
    Field {
        /// The destination field name.
        field: String,
        /// The value it gets (any JSON/TOML value).
        value: serde_json::Value,
    },
}

impl ZendeskMirror {
    /// The kind's name in config (`suspend`, `delete`, `tag`, `field`).
    pub fn kind(&self) -> &'static str {
        match self {
            ZendeskMirror::Suspend => "suspend",
            ZendeskMirror::Delete => "delete",
            ZendeskMirror::Tag { .. } => "tag",
            ZendeskMirror::Field { .. } => "field",
        }
    }
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
            sync_object: ZendeskObject::Users,
            mirror: None,
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
        if let Some(ZendeskMirror::Tag { tags }) = &self.mirror {
            if tags.is_empty() {
                return bad("mirror", "of kind `tag` needs at least one tag".into());
            }
            if let Some(t) = tags
                .iter()
                .find(|t| t.trim().is_empty() || t.contains(char::is_whitespace))
            {
                return bad(
                    "mirror",
                    format!("tag {t:?} is empty or has spaces (Zendesk splits tags on spaces)"),
                );
            }
        }
        if let Some(ZendeskMirror::Field { field, .. }) = &self.mirror
            && field.trim().is_empty()
        {
            return bad("mirror", "of kind `field` needs a `field` name".into());
        }
        self.base_url().map(drop)
    }

    /// What a mirror delete does: `mirror`, else the object's default.
    pub fn mirror_action(&self) -> ZendeskMirror {
        self.mirror
            .clone()
            .unwrap_or_else(|| self.sync_object.default_mirror())
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

    #[test]
    fn sync_object_and_mirror_parse_with_defaults() {
        let base = r#""subdomain":"a","email":"e","api_token":{"env":"T"}"#;
        let c: ZendeskConfig = serde_json::from_str(&format!("{{{base}}}")).unwrap();
        assert_eq!(c.sync_object, ZendeskObject::Users);
        assert_eq!(c.mirror_action(), ZendeskMirror::Suspend);
        let c: ZendeskConfig =
            serde_json::from_str(&format!(r#"{{{base},"sync_object":"organizations"}}"#)).unwrap();
        assert_eq!(c.mirror_action(), ZendeskMirror::Delete);
        let c: ZendeskConfig = serde_json::from_str(&format!(
            r#"{{{base},"mirror":{{"kind":"tag","tags":["churned"]}}}}"#
        ))
        .unwrap();
        assert_eq!(
            c.mirror_action(),
            ZendeskMirror::Tag {
                tags: vec!["churned".into()]
            }
        );
        c.validate().unwrap();
        let c: ZendeskConfig = serde_json::from_str(&format!(
            r#"{{{base},"mirror":{{"kind":"field","field":"user_fields.status","value":"inactive"}}}}"#
        ))
        .unwrap();
        assert_eq!(c.mirror_action().kind(), "field");
        let err = serde_json::from_str::<ZendeskConfig>(&format!(
            r#"{{{base},"mirror":{{"kind":"archive"}}}}"#
        ))
        .unwrap_err();
        assert!(
            err.to_string().contains("unknown variant `archive`"),
            "{err}"
        );
        let err = serde_json::from_str::<ZendeskConfig>(&format!(
            r#"{{{base},"mirror":{{"kind":"tag","tag":["x"]}}}}"#
        ))
        .unwrap_err();
        assert!(err.to_string().contains("unknown field `tag`"), "{err}");
        let mut c: ZendeskConfig = serde_json::from_str(&format!(
            r#"{{{base},"mirror":{{"kind":"tag","tags":["two words"]}}}}"#
        ))
        .unwrap();
        assert_eq!(
            c.validate().unwrap_err().to_string(),
            "zendesk config: `mirror` tag \"two words\" is empty or has spaces (Zendesk splits \
             tags on spaces)"
        );
        c.mirror = Some(ZendeskMirror::Tag { tags: vec![] });
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("at least one tag")
        );
    }
}
