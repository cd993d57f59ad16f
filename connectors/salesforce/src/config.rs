//! Salesforce connector configuration.

use serde::Deserialize;
use weft_core::SecretRef;
use weft_http::{HttpSettings, SliceSettings};

use crate::SalesforceError;

/// Salesforce's production login host.
pub const DEFAULT_LOGIN_URL: &str = "https://login.salesforce.com";

/// Configuration of the Salesforce source (the `[pipelines.config]` table),
/// and of the reverse-sync destination (`[syncs.config]`: the same connection
/// settings plus `object` and `external_id_field`; `objects`, `bulk_*`,
/// `settle_secs` and `slices` are ignored there).
///
/// ```
/// let config: weft_salesforce::SalesforceConfig = toml::from_str(r#"
/// login_url = "http://127.0.0.1:12112"
/// objects = ["Contact", "Lead"]
/// [auth]
/// kind = "refresh_token"
/// client_id = "3MVG9..."
/// client_secret = { env = "SF_CLIENT_SECRET" }
/// refresh_token = { env = "SF_REFRESH_TOKEN" }
/// "#).unwrap();
/// assert_eq!(config.api_version, "59.0");
/// assert_eq!(config.bulk_threshold, 50_000);
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SalesforceConfig {
    /// Where tokens are requested (`<login_url>/services/oauth2/token`); API
    /// calls go to the `instance_url` the token answer names. Default
    /// `https://login.salesforce.com`; `https://test.salesforce.com` for
    /// sandboxes, or the weft sandbox's URL in tests.
    #[serde(default = "default_login_url")]
    pub login_url: String,
    /// REST API version, e.g. `59.0`.
    #[serde(default = "default_api_version")]
    pub api_version: String,
    /// How to authenticate.
    pub auth: SalesforceAuth,
    /// The objects to read, one stream each (standard or custom, e.g. `Invoice__c`).
    #[serde(default = "default_objects")]
    pub objects: Vec<String>,
    /// Above this many changed records a read uses a Bulk API 2.0 query job
    /// instead of REST query pages.
    #[serde(default = "default_bulk_threshold")]
    pub bulk_threshold: u64,
    /// Milliseconds between polls of a Bulk API 2.0 job's state.
    #[serde(default = "default_bulk_poll_ms")]
    pub bulk_poll_ms: u64,
    /// Seconds behind the run's start a saved cursor stays, so records still
    /// being written during a read are read again next run.
    #[serde(default = "default_settle_secs")]
    pub settle_secs: u64,
    /// Requests per second for this org (default 25).
    #[serde(default)]
    pub requests_per_second: Option<f64>,
    /// The org's daily API request quota; omitted = the one Salesforce reports
    /// in `Sforce-Limit-Info`.
    #[serde(default)]
    pub daily_quota: Option<u64>,
    /// Fraction of the daily quota left unused for other integrations (default 0.1).
    #[serde(default = "default_quota_headroom")]
    pub quota_headroom: f64,
    /// Retry and timeout settings.
    #[serde(default)]
    pub http: Option<HttpSettings>,
    /// REST reads in concurrent slices of the cursor field (`enabled`,
    /// `max_pages` per slice).
    #[serde(default)]
    pub slices: SliceSettings,
    /// Reverse sync only: the object synced rows are written to (`Contact`,
    /// `Invoice__c`...). Ignored by the source.
    #[serde(default)]
    pub object: Option<String>,
    /// Reverse sync only: the object's external id field records are
    /// upserted by (`External_Id__c`), mapped from the sync's primary key.
    /// Ignored by the source.
    #[serde(default)]
    pub external_id_field: Option<String>,
    /// Reverse sync only: a batch with more creates or updates than this is
    /// upserted through a Bulk API 2.0 ingest job rather than composite
    /// calls of 200 (default 2,000).
    #[serde(default = "default_sync_bulk_threshold")]
    pub sync_bulk_threshold: usize,
    /// Reverse sync only, mirror mode: instead of deleting a record that
    /// left the model, set these fields (`{ Status__c = "inactive" }`) on
    /// it. Omitted = delete.
    #[serde(default)]
    pub mirror_update: Option<std::collections::BTreeMap<String, serde_json::Value>>,
}

/// How the connector gets an access token.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum SalesforceAuth {
    /// OAuth2 refresh-token grant of a connected app.
    RefreshToken {
        /// The connected app's consumer key.
        client_id: String,
        /// The connected app's consumer secret.
        client_secret: SecretRef,
        /// A refresh token issued to the integration user.
        refresh_token: SecretRef,
    },
    /// OAuth2 JWT bearer grant (server-to-server, no stored refresh token).
    JwtBearer {
        /// The connected app's consumer key (the JWT's `iss`).
        client_id: String,
        /// The integration user's user name (the JWT's `sub`).
        username: String,
        /// The app certificate's RSA private key, PEM (PKCS#8 or PKCS#1).
        private_key: SecretRef,
    },
}

fn default_login_url() -> String {
    DEFAULT_LOGIN_URL.to_string()
}

fn default_api_version() -> String {
    "59.0".to_string()
}

/// The objects read when the config names none.
pub const DEFAULT_OBJECTS: [&str; 7] = [
    "Contact",
    "Lead",
    "Account",
    "Campaign",
    "CampaignMember",
    "Opportunity",
    "User",
];

fn default_objects() -> Vec<String> {
    DEFAULT_OBJECTS.iter().map(|s| s.to_string()).collect()
}

fn default_bulk_threshold() -> u64 {
    50_000
}

fn default_sync_bulk_threshold() -> usize {
    2_000
}

fn default_bulk_poll_ms() -> u64 {
    2_000
}

fn default_settle_secs() -> u64 {
    60
}

fn default_quota_headroom() -> f64 {
    0.1
}

impl SalesforceConfig {
    /// A config with defaults for `login_url` and `auth`.
    pub fn new(login_url: impl Into<String>, auth: SalesforceAuth) -> Self {
        SalesforceConfig {
            login_url: login_url.into(),
            api_version: default_api_version(),
            auth,
            objects: default_objects(),
            bulk_threshold: default_bulk_threshold(),
            bulk_poll_ms: default_bulk_poll_ms(),
            settle_secs: default_settle_secs(),
            requests_per_second: None,
            daily_quota: None,
            quota_headroom: default_quota_headroom(),
            http: None,
            slices: SliceSettings::default(),
            object: None,
            external_id_field: None,
            sync_bulk_threshold: default_sync_bulk_threshold(),
            mirror_update: None,
        }
    }

    /// Checks field values.
    pub fn validate(&self) -> Result<(), SalesforceError> {
        let bad =
            |field: &'static str, reason: String| Err(SalesforceError::Config { field, reason });
        let version_ok = self
            .api_version
            .split_once('.')
            .is_some_and(|(a, b)| a.parse::<u32>().is_ok() && b.parse::<u32>().is_ok());
        if !version_ok {
            return bad(
                "api_version",
                format!("must look like `59.0`, got `{}`", self.api_version),
            );
        }
        if self.objects.is_empty() {
            return bad("objects", "must name at least one object".into());
        }
        if let Some(o) = self.objects.iter().find(|o| !is_api_name(o)) {
            return bad(
                "objects",
                format!("`{o}` is not an object API name (letters, digits, `_`)"),
            );
        }
        if self
            .requests_per_second
            .is_some_and(|r| r <= 0.0 || r.is_nan())
        {
            return bad("requests_per_second", "must be positive".into());
        }
        if !(0.0..1.0).contains(&self.quota_headroom) {
            return bad("quota_headroom", "must be in 0.0..1.0".into());
        }
        if let Some(o) = self.object.as_deref().filter(|o| !is_api_name(o)) {
            return bad(
                "object",
                format!("`{o}` is not an object API name (letters, digits, `_`)"),
            );
        }
        if let Some(f) = self
            .external_id_field
            .as_deref()
            .filter(|f| !is_api_name(f))
        {
            return bad(
                "external_id_field",
                format!("`{f}` is not a field API name (letters, digits, `_`)"),
            );
        }
        Ok(())
    }
}

/// Whether `name` is a Salesforce API name (safe to splice into SOQL and paths).
pub(crate) fn is_api_name(name: &str) -> bool {
    name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn parse(text: &str) -> Result<SalesforceConfig, toml::de::Error> {
        toml::from_str(text)
    }

    #[test]
    fn jwt_auth_and_defaults() {
        let c = parse(
            r#"
[auth]
kind = "jwt_bearer"
client_id = "app"
username = "etl@example.com"
private_key = { file = "/keys/sf.pem" }
"#,
        )
        .unwrap();
        assert_eq!(c.login_url, DEFAULT_LOGIN_URL);
        assert_eq!(c.objects.len(), 7);
        assert_eq!(c.objects[0], "Contact");
        assert!(
            matches!(c.auth, SalesforceAuth::JwtBearer { ref username, .. } if username == "etl@example.com")
        );
        c.validate().unwrap();
    }

    #[test]
    fn rejects_unknown_fields_and_bad_values() {
        let base = "[auth]\nkind = \"refresh_token\"\nclient_id = \"a\"\nclient_secret = { env = \"S\" }\nrefresh_token = { env = \"R\" }\n";
        assert!(parse(&format!("page_size = 5\n{base}")).is_err());
        assert!(parse(&base.replace("refresh_token\"", "password\"")).is_err());
        let c = parse(&format!("objects = [\"Contact; DROP\"]\n{base}")).unwrap();
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("`objects`"), "{e}");
        let c = parse(&format!("api_version = \"v59\"\n{base}")).unwrap();
        assert!(c.validate().is_err());
    }

    #[test]
    fn sync_settings_are_optional_and_checked() {
        let base = "[auth]\nkind = \"refresh_token\"\nclient_id = \"a\"\nclient_secret = { env = \"S\" }\nrefresh_token = { env = \"R\" }\n";
        let c = parse(base).unwrap();
        assert_eq!((c.object, c.external_id_field), (None, None));
        let c = parse(&format!(
            "object = \"Contact\"\nexternal_id_field = \"External_Id__c\"\n{base}"
        ))
        .unwrap();
        assert_eq!(c.object.as_deref(), Some("Contact"));
        assert_eq!(c.external_id_field.as_deref(), Some("External_Id__c"));
        c.validate().unwrap();
        let c = parse(&format!("external_id_field = \"Ext'; --\"\n{base}")).unwrap();
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("`external_id_field`"), "{e}");
    }
}
