//! The only place that builds requests to Zendesk (through weft-http).

use std::sync::Arc;

use weft_http::{Auth, BudgetKey, BudgetRegistry, HttpClient, Limits, Pagination, RequestSpec};

use crate::{ZendeskConfig, ZendeskError};

/// A Zendesk API client: basic `email/token` auth and the account's budgets.
#[derive(Clone)]
pub(crate) struct ZendeskClient {
    /// Every endpoint but the incremental exports: the plan's per-minute budget.
    pub(crate) http: HttpClient,
    /// Incremental exports: their own, smaller per-minute budget (same auth).
    pub(crate) exports: HttpClient,
    pub(crate) page_size: u32,
}

impl ZendeskClient {
    pub(crate) fn new(
        config: &ZendeskConfig,
        budgets: &BudgetRegistry,
    ) -> Result<ZendeskClient, ZendeskError> {
        config.validate()?;
        let token = config.api_token.resolve()?;
        let base_url = config.base_url()?;
        // Zendesk limits are per account: the host names it.
        let account = base_url.host_str().unwrap_or_default().to_string();
        let auth = Auth::Basic {
            user: format!("{}/token", config.email.trim()),
            password: token,
        };
        let plan = budgets.budget(
            BudgetKey::new("zendesk", account.clone()),
            Limits::per_minute(f64::from(config.requests_per_minute)),
        );
        let per_min = config.incremental_requests_per_minute;
        let incremental = budgets.budget(
            BudgetKey::new("zendesk-incremental", account),
            Limits::per_minute(f64::from(per_min)).with_burst(config.export_burst.min(per_min)),
        );
        let build = |budget: &Arc<weft_http::Budget>| {
            let mut b = HttpClient::builder("zendesk", base_url.clone())
                .auth(auth.clone())
                .budget(Arc::clone(budget));
            if let Some(settings) = &config.http {
                b = b.settings(settings.clone());
            }
            b.build()
        };
        Ok(ZendeskClient {
            http: build(&plan)?,
            exports: build(&incremental)?,
            page_size: config.page_size,
        })
    }

    /// Cursor-based exports: records under `items`, `after_url` until `end_of_stream`.
    pub(crate) fn export_pagination(items: &str) -> Pagination {
        Self::next_url(items, "/after_url")
    }

    /// The time-based export: `next_page` until `end_of_stream`.
    pub(crate) fn time_export_pagination(items: &str) -> Pagination {
        Self::next_url(items, "/next_page")
    }

    fn next_url(items: &str, next: &str) -> Pagination {
        Pagination::NextUrl {
            items: format!("/{items}"),
            next_url: next.into(),
            end_flag: Some("/end_of_stream".into()),
        }
    }

    /// Plain lists: records under `items`, the next page's URL at pointer `next`.
    pub(crate) fn list_pagination(items: &str, next: &str) -> Pagination {
        Pagination::NextUrl {
            items: format!("/{items}"),
            next_url: next.into(),
            end_flag: None,
        }
    }

    /// The first request of an export: from `start_time`, or after a saved `cursor`.
    pub(crate) fn export(&self, endpoint: &str, start: ExportStart<'_>) -> RequestSpec {
        let req = RequestSpec::get(endpoint);
        let req = match start {
            ExportStart::Time(t) => req.query("start_time", t.to_string()),
            ExportStart::Cursor(c) => req.query("cursor", c),
        };
        req.query("per_page", self.page_size.to_string())
    }
}

impl ZendeskClient {
    /// `POST /api/v2/users/create_or_update_many.json` with at most 100
    /// users; Zendesk answers with a queued job. The call upserts by email
    /// (or external id), so repeating it is safe: weft-http may retry it.
    pub(crate) async fn create_or_update_users(
        &self,
        users: Vec<serde_json::Value>,
        metrics: &weft_core::StreamMetrics,
    ) -> Result<crate::sync::JobStatus, ZendeskError> {
        let (path, body) = Self::users_request(users);
        let req = RequestSpec::post_json(path, body).idempotent(true);
        let answer: crate::sync::JobEnvelope = self.http.get_json(&req, metrics).await?;
        Ok(answer.job_status)
    }

    /// The path and body of a `create_or_update_many` call.
    pub(crate) fn users_request(
        users: Vec<serde_json::Value>,
    ) -> (&'static str, serde_json::Value) {
        (
            "api/v2/users/create_or_update_many.json",
            serde_json::json!({ "users": users }),
        )
    }

    /// `GET /api/v2/job_statuses/{id}.json`.
    pub(crate) async fn job_status(
        &self,
        id: &str,
        metrics: &weft_core::StreamMetrics,
    ) -> Result<crate::sync::JobStatus, weft_http::HttpError> {
        let req = RequestSpec::get(format!("api/v2/job_statuses/{id}.json"));
        let answer: crate::sync::JobEnvelope = self.http.get_json(&req, metrics).await?;
        Ok(answer.job_status)
    }
}

/// Where an incremental export starts.
pub(crate) enum ExportStart<'a> {
    /// At this Unix time (records updated at or after it).
    Time(i64),
    /// After this export cursor.
    Cursor(&'a str),
}
