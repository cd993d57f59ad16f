//! The only place that builds requests to Mailchimp (through weft-http).

use std::sync::Arc;

use secrecy::ExposeSecret;
use serde::Deserialize;
use url::Url;
use weft_core::StreamMetrics;
use weft_http::{Auth, BudgetKey, BudgetRegistry, HttpClient, Limits, RequestSpec};

use crate::config::data_centre;
use crate::{MailchimpConfig, MailchimpError};

/// Mailchimp allows at most 10 simultaneous connections per account.
const MAX_CONNECTIONS: u32 = 10;

/// A Mailchimp API client: basic auth, the account's shared budget, retries.
pub(crate) struct MailchimpClient {
    /// The HTTP client (base URL `.../3.0`, the account's budget).
    pub(crate) http: HttpClient,
    list_id: String,
}

/// The answer of `POST /lists/{list_id}` (batch subscribe or unsubscribe).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct BatchResponse {
    /// Members that were created.
    #[serde(default)]
    pub(crate) new_members: Vec<MemberAnswer>,
    /// Members that existed and were updated.
    #[serde(default)]
    pub(crate) updated_members: Vec<MemberAnswer>,
    /// Members that could not be added or updated.
    #[serde(default)]
    pub(crate) errors: Vec<MemberError>,
}

/// One member in `new_members` / `updated_members`.
#[derive(Debug, Deserialize)]
pub(crate) struct MemberAnswer {
    /// The member's email (Mailchimp lowercases it).
    pub(crate) email_address: String,
}

/// One entry of `errors`.
#[derive(Debug, Deserialize)]
pub(crate) struct MemberError {
    /// The email that failed.
    pub(crate) email_address: String,
    /// Mailchimp's message.
    #[serde(default)]
    pub(crate) error: String,
    /// The field at fault, when Mailchimp names one.
    #[serde(default)]
    pub(crate) field: Option<String>,
    /// What is wrong with that field.
    #[serde(default)]
    pub(crate) field_message: Option<String>,
}

impl MailchimpClient {
    pub(crate) fn new(
        config: &MailchimpConfig,
        budgets: &BudgetRegistry,
    ) -> Result<MailchimpClient, MailchimpError> {
        config.validate()?;
        let key = config.api_key.resolve()?;
        let dc = data_centre(key.expose_secret()).map(str::to_string);
        let base = match (&config.base_url, &dc) {
            (Some(base), _) => base.clone(),
            (None, Some(dc)) => format!("https://{dc}.api.mailchimp.com/3.0"),
            (None, None) => {
                return Err(MailchimpError::Config {
                    field: "api_key",
                    reason: "has no data centre suffix (a Mailchimp key ends in `-<dc>`, \
                             e.g. `-us6`); set `base_url` to use it anyway"
                        .into(),
                });
            }
        };
        let base_url = Url::parse(&base).map_err(|e| MailchimpError::Config {
            field: "base_url",
            reason: format!("`{base}` is not a URL: {e}"),
        })?;
        let account = format!(
            "{}-{}",
            dc.as_deref().unwrap_or("custom"),
            weft_http::fingerprint(key.expose_secret())
        );
        let mut limits = Limits::concurrent(MAX_CONNECTIONS);
        limits.requests_per_second = config.requests_per_second;
        let budget = budgets.budget(BudgetKey::new("mailchimp", account), limits);
        let mut builder = HttpClient::builder("mailchimp", base_url)
            .auth(Auth::Basic {
                user: "anystring".into(),
                password: key,
            })
            .budget(Arc::clone(&budget));
        if let Some(settings) = &config.http {
            builder = builder.settings(settings.clone());
        }
        Ok(MailchimpClient {
            http: builder.build()?,
            list_id: config.list_id.clone(),
        })
    }

    /// `POST /lists/{list_id}` with `members` and `update_existing` (false:
    /// members already on the list are answered as errors, not changed).
    ///
    /// The batch is keyed by email, so repeating it is safe: the request is
    /// marked idempotent and weft-http may retry it.
    pub(crate) async fn batch_members(
        &self,
        members: Vec<serde_json::Value>,
        update_existing: bool,
        metrics: &StreamMetrics,
    ) -> Result<BatchResponse, MailchimpError> {
        let (path, body) = self.batch_request(members, update_existing);
        let req = RequestSpec::post_json(path, body).idempotent(true);
        Ok(self.http.get_json(&req, metrics).await?)
    }

    /// The path and body of a batch call (what [`Self::batch_members`] sends).
    pub(crate) fn batch_request(
        &self,
        members: Vec<serde_json::Value>,
        update_existing: bool,
    ) -> (String, serde_json::Value) {
        (
            format!("lists/{}", self.list_id),
            serde_json::json!({ "members": members, "update_existing": update_existing }),
        )
    }

    /// The budget key this client uses (tests check it hides the key).
    #[cfg(test)]
    pub(crate) fn budget_key(&self) -> &BudgetKey {
        self.http.budget().key()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use weft_core::SecretRef;

    fn config_with_key(name: &str, key: &str) -> MailchimpConfig {
        let dir =
            std::env::temp_dir().join(format!("weft-mc-client-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("key");
        std::fs::write(&file, key).unwrap();
        MailchimpConfig::new(SecretRef::File { file }, "list1")
    }

    #[test]
    fn base_url_comes_from_the_data_centre_and_budget_hides_the_key() {
        let c = config_with_key("dc", "SENTINELKEY-us6");
        let client = MailchimpClient::new(&c, &BudgetRegistry::new()).unwrap();
        assert_eq!(
            client.http.base_url().as_str(),
            "https://us6.api.mailchimp.com/3.0"
        );
        let key = client.budget_key();
        assert_eq!(key.api, "mailchimp");
        assert!(key.account.starts_with("us6-"), "{}", key.account);
        assert!(!key.account.contains("SENTINEL"));
        assert_eq!(client.http.budget().limits().max_concurrent, Some(10));
    }

    #[test]
    fn key_without_data_centre_is_a_config_error_naming_the_field() {
        let c = config_with_key("nodc", "SENTINELKEY");
        let err = MailchimpClient::new(&c, &BudgetRegistry::new())
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("`api_key`") && err.contains("data centre"),
            "{err}"
        );
        assert!(!err.contains("SENTINEL"), "{err}");

        // With an explicit base URL (sandbox), the key needs no data centre.
        let mut c = c;
        c.base_url = Some("http://127.0.0.1:9/3.0".into());
        let client = MailchimpClient::new(&c, &BudgetRegistry::new()).unwrap();
        assert!(client.budget_key().account.starts_with("custom-"));
    }

    #[test]
    fn same_key_shares_one_budget() {
        let registry = BudgetRegistry::new();
        let a = MailchimpClient::new(&config_with_key("a", "k1-us1"), &registry).unwrap();
        let b = MailchimpClient::new(&config_with_key("b", "k1-us1"), &registry).unwrap();
        let c = MailchimpClient::new(&config_with_key("c", "k2-us1"), &registry).unwrap();
        assert!(Arc::ptr_eq(a.http.budget(), b.http.budget()));
        assert!(!Arc::ptr_eq(a.http.budget(), c.http.budget()));
    }
}
