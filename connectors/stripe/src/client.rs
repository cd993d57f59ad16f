//! The only place that builds requests to Stripe (through weft-http).

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use url::Url;
use weft_http::{
    Auth, BudgetKey, BudgetRegistry, CursorFrom, HttpClient, Limits, Pagination, RequestSpec,
};

use crate::config::DEFAULT_BASE_URL;
use crate::{StripeConfig, StripeError};

/// Stripe's documented read limits.
const LIVE_RPS: f64 = 100.0;
const TEST_RPS: f64 = 25.0;

/// A Stripe API client: auth, the account's shared budget, retries.
#[derive(Clone)]
pub(crate) struct StripeClient {
    pub(crate) http: HttpClient,
    page_size: u32,
}

impl StripeClient {
    pub(crate) fn new(
        config: &StripeConfig,
        budgets: &BudgetRegistry,
    ) -> Result<StripeClient, StripeError> {
        config.validate()?;
        let key = config.api_key.resolve()?;
        let base = config.base_url.as_deref().unwrap_or(DEFAULT_BASE_URL);
        let base_url = Url::parse(base).map_err(|e| StripeError::Config {
            field: "base_url",
            reason: format!("`{base}` is not a URL: {e}"),
        })?;
        let (account, documented) = account_of(&key);
        let limits = Limits::per_second(config.requests_per_second.unwrap_or(documented));
        let budget = budgets.budget(
            BudgetKey {
                api: "stripe".into(),
                account,
            },
            limits,
        );
        let mut builder = HttpClient::builder("stripe", base_url)
            .auth(Auth::Bearer(key))
            .budget(Arc::clone(&budget));
        if let Some(settings) = &config.http {
            builder = builder.settings(settings.clone());
        }
        Ok(StripeClient {
            http: builder.build()?,
            page_size: config.page_size,
        })
    }

    /// The first request of a list endpoint, newest first.
    pub(crate) fn list(&self, endpoint: &str) -> RequestSpec {
        RequestSpec::get(endpoint).query("limit", self.page_size.to_string())
    }

    /// Stripe's list pagination: `data`, `has_more`, `starting_after=<last id>`.
    pub(crate) fn pagination() -> Pagination {
        Pagination::BodyCursor {
            items: "/data".into(),
            has_more: Some("/has_more".into()),
            param: "starting_after".into(),
            cursor_from: CursorFrom::LastItemField("id".into()),
        }
    }
}

/// The budget account for a key, and its documented rate: test keys get 25/s,
/// live keys 100/s. The account id is a fingerprint, never the key itself.
fn account_of(key: &SecretString) -> (String, f64) {
    let k = key.expose_secret();
    let mode = if k.starts_with("sk_live_") || k.starts_with("rk_live_") {
        "live"
    } else {
        "test"
    };
    let rps = if mode == "live" { LIVE_RPS } else { TEST_RPS };
    (format!("{mode}-{}", weft_http::fingerprint(k)), rps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_fingerprint_hides_key_and_picks_documented_rate() {
        let (acct, rps) = account_of(&SecretString::from("sk_test_SENTINEL".to_string()));
        assert!(acct.starts_with("test-") && !acct.contains("SENTINEL"));
        assert_eq!(rps, 25.0);
        let (acct2, rps2) = account_of(&SecretString::from("sk_live_x".to_string()));
        assert!(acct2.starts_with("live-"));
        assert_eq!(rps2, 100.0);
    }
}
