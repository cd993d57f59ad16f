//! The only place that builds requests to Zoom (through weft-http).

use std::sync::Arc;

use url::Url;
use weft_http::{
    Auth, BudgetKey, BudgetRegistry, HttpClient, Limits, OAuth2ClientCredentials, Pagination,
    RequestSpec,
};

use crate::config::{DEFAULT_BASE_URL, DEFAULT_TOKEN_URL};
use crate::{ZoomConfig, ZoomError};

/// Zoom's documented limit for the endpoints read here, Pro plan.
///
/// Zoom limits requests per *category* (Light 30/s, Medium 20/s, Heavy 10/s,
/// resource-intensive 10/min; Business+ 80/60/40 per second), account-wide.
/// Every endpoint this connector calls (list users, meetings, webinars,
/// registrants, past participants) is Medium, so one budget keyed
/// `("zoom", account_id)` at the Medium rate covers them. Endpoints of another
/// category would get their own budget, keyed by account and category.
const MEDIUM_RPS: f64 = 20.0;

/// Statuses a per-parent listing may answer without failing the stream:
/// 404 = the parent has no such child list (a webinar not held yet has no
/// past instance; a user or webinar deleted since it was listed).
const CHILD_EXPECTED_STATUSES: &[u16] = &[404];

/// A Zoom API client: OAuth token, the account's shared budget, retries.
#[derive(Clone)]
pub(crate) struct ZoomClient {
    /// Top-level lists (`/v2/users`): every error status fails.
    pub(crate) http: HttpClient,
    /// Per-parent lists: [`CHILD_EXPECTED_STATUSES`] end the list empty
    /// (counted in `expected_errors`). Same token and budget as `http`.
    pub(crate) children: HttpClient,
    page_size: u32,
}

impl ZoomClient {
    pub(crate) fn new(config: &ZoomConfig, budgets: &BudgetRegistry) -> Result<Self, ZoomError> {
        config.validate()?;
        let secret = config.client_secret.resolve()?;
        let base_url = parse_url("base_url", config.base_url.as_deref(), DEFAULT_BASE_URL)?;
        let token_url = parse_url("token_url", config.token_url.as_deref(), DEFAULT_TOKEN_URL)?;
        let tokens = OAuth2ClientCredentials::zoom(
            token_url,
            config.account_id.clone(),
            config.client_id.clone(),
            secret,
        )?;
        let auth = Auth::Token(Arc::new(tokens));
        let limits = Limits::per_second(config.requests_per_second.unwrap_or(MEDIUM_RPS));
        let budget = budgets.budget(BudgetKey::new("zoom", config.account_id.clone()), limits);
        let builder = || {
            let mut b = HttpClient::builder("zoom", base_url.clone())
                .auth(auth.clone())
                .budget(Arc::clone(&budget));
            if let Some(settings) = &config.http {
                b = b.settings(settings.clone());
            }
            b
        };
        let children = CHILD_EXPECTED_STATUSES
            .iter()
            .fold(builder(), |b, s| b.expected_status(*s));
        Ok(ZoomClient {
            http: builder().build()?,
            children: children.build()?,
            page_size: config.page_size,
        })
    }

    /// The first request of a list endpoint.
    pub(crate) fn list(&self, endpoint: &str) -> RequestSpec {
        RequestSpec::get(endpoint).query("page_size", self.page_size.to_string())
    }

    /// `POST /v2/webinars/{id}/registrants`: registers `body` (an email
    /// already registered gets its existing registration back, so the call
    /// is safe to repeat and marked idempotent).
    pub(crate) fn add_registrant_request(webinar: i64, body: serde_json::Value) -> RequestSpec {
        RequestSpec::post_json(format!("/v2/webinars/{webinar}/registrants"), body).idempotent(true)
    }

    /// `PUT /v2/webinars/{id}/registrants/status` with `action` (`approve`,
    /// `deny`, `cancel`) for registrants named by email (at most 30).
    pub(crate) fn status_request(webinar: i64, action: &str, emails: &[&str]) -> RequestSpec {
        let registrants: Vec<serde_json::Value> = emails
            .iter()
            .map(|e| serde_json::json!({ "email": e }))
            .collect();
        RequestSpec::put_json(
            format!("/v2/webinars/{webinar}/registrants/status"),
            serde_json::json!({ "action": action, "registrants": registrants }),
        )
    }

    /// Every email registered for `webinar` (approved, pending or denied),
    /// trimmed and lower-cased.
    pub(crate) async fn registered_emails(
        &self,
        webinar: i64,
        metrics: &Arc<weft_core::StreamMetrics>,
    ) -> Result<std::collections::HashSet<String>, weft_http::HttpError> {
        use futures::TryStreamExt as _;
        let mut emails = std::collections::HashSet::new();
        for status in ["approved", "pending", "denied"] {
            let first = self
                .list(&format!("/v2/webinars/{webinar}/registrants"))
                .query("status", status);
            let mut pages = weft_http::paginate(
                self.http.clone(),
                first,
                Self::pagination("registrants"),
                Arc::clone(metrics),
            );
            while let Some(page) = pages.try_next().await? {
                for raw in page.records {
                    #[derive(serde::Deserialize)]
                    struct Email {
                        #[serde(default)]
                        email: String,
                    }
                    if let Ok(r) = serde_json::from_str::<Email>(raw.get()) {
                        emails.insert(r.email.trim().to_lowercase());
                    }
                }
            }
        }
        Ok(emails)
    }

    /// Zoom's list pagination: records under `items`, `next_page_token` until empty.
    pub(crate) fn pagination(items: &str) -> Pagination {
        Pagination::PageToken {
            items: format!("/{items}"),
            token: "/next_page_token".into(),
            param: "next_page_token".into(),
        }
    }
}

fn parse_url(field: &'static str, given: Option<&str>, default: &str) -> Result<Url, ZoomError> {
    let text = given.unwrap_or(default);
    Url::parse(text).map_err(|e| ZoomError::Config {
        field,
        reason: format!("`{text}` is not a URL: {e}"),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn pagination_reads_items_and_next_page_token() {
        match ZoomClient::pagination("registrants") {
            Pagination::PageToken {
                items,
                token,
                param,
            } => {
                assert_eq!(items, "/registrants");
                assert_eq!(token, "/next_page_token");
                assert_eq!(param, "next_page_token");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_token_url_names_the_field() {
        let err = parse_url("token_url", Some("not a url"), DEFAULT_TOKEN_URL)
            .err()
            .unwrap()
            .to_string();
        assert!(err.starts_with("zoom config: `token_url`"), "{err}");
        assert_eq!(
            parse_url("base_url", None, DEFAULT_BASE_URL)
                .unwrap()
                .as_str(),
            "https://api.zoom.us/"
        );
    }
}
