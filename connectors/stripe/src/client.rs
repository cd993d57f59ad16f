//! The only place that builds requests to Stripe (through weft-http).

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::Value;
use url::Url;
use weft_core::StreamMetrics;
use weft_http::{
    Auth, Budget, BudgetKey, BudgetRegistry, CursorFrom, HttpClient, HttpError, Limits, Pagination,
    RequestSpec, Response,
};

use crate::config::DEFAULT_BASE_URL;
use crate::{StripeConfig, StripeError};

/// Stripe's documented read limits.
const LIVE_RPS: f64 = 100.0;
const TEST_RPS: f64 = 25.0;
/// Stripe's documented limit of the search endpoints (live and test).
const SEARCH_RPS: f64 = 20.0;

/// A Stripe API client: auth, the account's shared budget, retries.
#[derive(Clone)]
pub(crate) struct StripeClient {
    pub(crate) http: HttpClient,
    page_size: u32,
    /// The search endpoints' own, lower limit (on top of the key's budget).
    search_budget: Arc<Budget>,
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
        // An explicit `requests_per_second` overrides search's 20/s as well.
        let search_limits = Limits::per_second(config.requests_per_second.unwrap_or(SEARCH_RPS));
        let search_budget = budgets.budget(
            BudgetKey {
                api: "stripe-search".into(),
                account: account.clone(),
            },
            search_limits,
        );
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
            search_budget,
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

/// Search pages (of 100) read for one email before the newest customer seen is taken.
pub(crate) const MAX_SEARCH_PAGES: usize = 10;

/// A customer in a search result: only what the sync target reads.
#[derive(Debug, Deserialize)]
struct FoundCustomer {
    id: String,
    #[serde(default)]
    created: i64,
    #[serde(default)]
    email: Option<String>,
}

/// `GET /v1/customers/search`'s answer.
#[derive(Debug, Deserialize)]
struct SearchPage {
    #[serde(default)]
    data: Vec<FoundCustomer>,
    #[serde(default)]
    has_more: bool,
    #[serde(default)]
    next_page: Option<String>,
}

/// The search query for customers with exactly `email` (quotes and
/// backslashes escaped, as Stripe's query language wants).
pub(crate) fn email_query(email: &str) -> String {
    let mut q = String::with_capacity(email.len() + 10);
    q.push_str("email:'");
    for c in email.chars() {
        if c == '\'' || c == '\\' {
            q.push('\\');
        }
        q.push(c);
    }
    q.push('\'');
    q
}

impl StripeClient {
    /// The id of the customer holding `email` (case-insensitively), the most
    /// recently created one when several do; `None` when none does.
    pub(crate) async fn find_customer(
        &self,
        email: &str,
        metrics: &StreamMetrics,
    ) -> Result<Option<String>, HttpError> {
        let query = email_query(email);
        let mut page: Option<String> = None;
        let mut best: Option<FoundCustomer> = None;
        for _ in 0..MAX_SEARCH_PAGES {
            let mut req = RequestSpec::get("/v1/customers/search")
                .query("query", query.as_str())
                .query("limit", "100");
            if let Some(p) = &page {
                req = req.query("page", p.as_str());
            }
            self.search_budget.acquire().await?;
            let found: SearchPage = self.http.get_json(&req, metrics).await?;
            for c in found.data {
                let same = c
                    .email
                    .as_deref()
                    .is_some_and(|e| e.trim().eq_ignore_ascii_case(email));
                let newer = best
                    .as_ref()
                    .is_none_or(|b| (c.created, &c.id) > (b.created, &b.id));
                if same && newer {
                    best = Some(c);
                }
            }
            match (found.has_more, found.next_page) {
                (true, Some(next)) => page = Some(next),
                _ => break,
            }
        }
        Ok(best.map(|c| c.id))
    }

    /// `POST path` with a form body under `Idempotency-Key: key` (so
    /// weft-http retries it, and Stripe answers a repeat from its cache).
    pub(crate) async fn post_customer(
        &self,
        path: &str,
        form: Vec<(String, String)>,
        key: &str,
        metrics: &StreamMetrics,
    ) -> Result<Response, HttpError> {
        let req = RequestSpec::post_form(path, form).header("Idempotency-Key", key);
        self.http.send(&req, metrics).await
    }

    /// `DELETE /v1/customers/{id}` (safe to repeat).
    pub(crate) async fn delete_customer(
        &self,
        id: &str,
        metrics: &StreamMetrics,
    ) -> Result<(), HttpError> {
        let mut req = RequestSpec::get(format!("/v1/customers/{id}"));
        if let Ok(method) = "DELETE".parse() {
            req.method = method;
        }
        self.http.send(&req, metrics).await.map(drop)
    }

    /// Whether customer `id` is deleted (or unknown).
    pub(crate) async fn customer_deleted(
        &self,
        id: &str,
        metrics: &StreamMetrics,
    ) -> Result<bool, HttpError> {
        let req = RequestSpec::get(format!("/v1/customers/{id}"));
        match self.http.get_json::<Value>(&req, metrics).await {
            Ok(v) => Ok(v.get("deleted").and_then(Value::as_bool) == Some(true)),
            Err(e) if e.status() == Some(404) => Ok(true),
            Err(e) => Err(e),
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
