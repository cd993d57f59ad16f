//! The only place that builds requests to Zendesk (through weft-http).

use std::sync::Arc;

use weft_http::{Auth, BudgetKey, BudgetRegistry, HttpClient, Limits, Pagination, RequestSpec};

use crate::{ZendeskConfig, ZendeskError, ZendeskObject};

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
    /// Sends a bulk write (`create_or_update_many`, `create_many`,
    /// `update_many`, `destroy_many`); Zendesk answers with a queued job.
    pub(crate) async fn submit_job(
        &self,
        req: &RequestSpec,
        metrics: &weft_core::StreamMetrics,
    ) -> Result<crate::sync::JobStatus, ZendeskError> {
        let answer: crate::sync::JobEnvelope = self.http.get_json(req, metrics).await?;
        Ok(answer.job_status)
    }

    /// `POST /api/v2/users/create_or_update_many.json` with at most 100
    /// users. The call upserts by external id or email, so repeating it is
    /// safe: weft-http may retry it.
    pub(crate) fn users_upsert(users: Vec<serde_json::Value>) -> RequestSpec {
        RequestSpec::post_json(
            "api/v2/users/create_or_update_many.json",
            serde_json::json!({ "users": users }),
        )
        .idempotent(true)
    }

    /// `GET /api/v2/users/search.json?query=email:{email}`.
    pub(crate) fn users_search(email: &str) -> RequestSpec {
        RequestSpec::get("api/v2/users/search.json").query("query", format!("email:{email}"))
    }

    /// The id of the user whose email is `email` (any case), if Zendesk has one.
    pub(crate) async fn user_id_by_email(
        &self,
        email: &str,
        metrics: &weft_core::StreamMetrics,
    ) -> Result<Option<u64>, ZendeskError> {
        #[derive(serde::Deserialize)]
        struct Found {
            id: u64,
            #[serde(default)]
            email: Option<String>,
        }
        #[derive(serde::Deserialize)]
        struct Users {
            users: Vec<Found>,
        }
        let found: Users = self
            .http
            .get_json(&Self::users_search(email), metrics)
            .await?;
        // Search matches loosely; the email must be the user's own.
        Ok(found
            .users
            .into_iter()
            .find(|u| {
                u.email
                    .as_deref()
                    .is_some_and(|e| e.trim().eq_ignore_ascii_case(email.trim()))
            })
            .map(|u| u.id))
    }

    /// `GET /api/v2/organizations/show_many.json?external_ids=a,b` (at most 100).
    pub(crate) fn organizations_show(external_ids: &[String]) -> RequestSpec {
        RequestSpec::get("api/v2/organizations/show_many.json")
            .query("external_ids", external_ids.join(","))
    }

    /// (external id, id) of each organization Zendesk has among `external_ids`.
    pub(crate) async fn organizations_by_external_id(
        &self,
        external_ids: &[String],
        metrics: &weft_core::StreamMetrics,
    ) -> Result<Vec<(String, u64)>, ZendeskError> {
        #[derive(serde::Deserialize)]
        struct Found {
            id: u64,
            #[serde(default)]
            external_id: Option<String>,
        }
        #[derive(serde::Deserialize)]
        struct Organizations {
            organizations: Vec<Found>,
        }
        let found: Organizations = self
            .http
            .get_json(&Self::organizations_show(external_ids), metrics)
            .await?;
        Ok(found
            .organizations
            .into_iter()
            .filter_map(|o| Some((o.external_id?, o.id)))
            .collect())
    }

    /// `POST /api/v2/organizations/create_many.json` with at most 100
    /// organizations. Not idempotent: retried only when surely not
    /// processed (a 429, a refused connection).
    pub(crate) fn organizations_create(orgs: Vec<serde_json::Value>) -> RequestSpec {
        RequestSpec::post_json(
            "api/v2/organizations/create_many.json",
            serde_json::json!({ "organizations": orgs }),
        )
    }

    /// `PUT /api/v2/organizations/update_many.json`, the batch form: at most
    /// 100 organizations, each with its `id`.
    pub(crate) fn organizations_update(orgs: Vec<serde_json::Value>) -> RequestSpec {
        RequestSpec::put_json(
            "api/v2/organizations/update_many.json",
            serde_json::json!({ "organizations": orgs }),
        )
    }

    /// `DELETE /api/v2/organizations/destroy_many.json?ids=1,2` (at most 100).
    pub(crate) fn organizations_destroy(ids: &[u64]) -> RequestSpec {
        let ids: Vec<String> = ids.iter().map(u64::to_string).collect();
        let mut req =
            RequestSpec::get("api/v2/organizations/destroy_many.json").query("ids", ids.join(","));
        // weft-http has no DELETE constructor; the method name always parses.
        if let Ok(method) = "DELETE".parse() {
            req.method = method;
        }
        req
    }

    /// `PUT /api/v2/{users|organizations}/{id}/tags.json`: Zendesk's *add
    /// tags*, which keeps the record's other tags (safe to repeat).
    pub(crate) fn add_tags(object: ZendeskObject, id: &str, tags: &[String]) -> RequestSpec {
        RequestSpec::put_json(
            format!("api/v2/{}/{id}/tags.json", object.as_str()),
            serde_json::json!({ "tags": tags }),
        )
    }

    /// Adds `tags` to record `id` of `object`.
    pub(crate) async fn add_tags_to(
        &self,
        object: ZendeskObject,
        id: u64,
        tags: &[String],
        metrics: &weft_core::StreamMetrics,
    ) -> Result<(), weft_http::HttpError> {
        self.http
            .send(&Self::add_tags(object, &id.to_string(), tags), metrics)
            .await
            .map(drop)
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
