//! The only place that builds requests to Intercom (through weft-http).

use std::sync::Arc;

use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use url::Url;
use weft_core::StreamMetrics;
use weft_http::{Auth, BudgetKey, BudgetRegistry, HttpClient, HttpError, Limits, RequestSpec};

use crate::config::DEFAULT_BASE_URL;
use crate::{IntercomConfig, IntercomError};

/// An Intercom API client: bearer auth, version header, the app's shared budget.
pub(crate) struct IntercomClient {
    pub(crate) http: HttpClient,
}

#[derive(Debug, Deserialize)]
struct ContactList {
    #[serde(default)]
    data: Vec<Contact>,
}

#[derive(Debug, Deserialize)]
struct Contact {
    id: String,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    external_id: Option<String>,
}

impl IntercomClient {
    pub(crate) fn new(
        config: &IntercomConfig,
        budgets: &BudgetRegistry,
    ) -> Result<IntercomClient, IntercomError> {
        config.validate()?;
        let token = config.access_token.resolve()?;
        let base = config.base_url.as_deref().unwrap_or(DEFAULT_BASE_URL);
        let base_url = Url::parse(base).map_err(|e| IntercomError::Config {
            field: "base_url",
            reason: format!("`{base}` is not a URL: {e}"),
        })?;
        let budget = budgets.budget(
            BudgetKey::for_credential("intercom", token.expose_secret()),
            Limits::per_minute(f64::from(config.requests_per_minute)),
        );
        let mut builder = HttpClient::builder("intercom", base_url)
            .auth(Auth::Bearer(token))
            .header("Intercom-Version", &config.intercom_version)
            .budget(Arc::clone(&budget));
        if let Some(settings) = &config.http {
            builder = builder.settings(settings.clone());
        }
        Ok(IntercomClient {
            http: builder.build()?,
        })
    }

    /// `POST /contacts/search` by external id and/or email; the id of the
    /// contact matching the external id, else the email (case-insensitively).
    pub(crate) async fn find(
        &self,
        email: Option<&str>,
        external_id: Option<&str>,
        metrics: &StreamMetrics,
    ) -> Result<Option<String>, HttpError> {
        let Some(body) = Self::search_body(email, external_id) else {
            return Ok(None);
        };
        // A search changes nothing: safe to repeat.
        let req = RequestSpec::post_json("contacts/search", body).idempotent(true);
        let list: ContactList = self.http.get_json(&req, metrics).await?;
        let by_external = external_id.and_then(|x| {
            list.data
                .iter()
                .find(|c| c.external_id.as_deref() == Some(x))
        });
        let by_email = email.and_then(|e| {
            list.data.iter().find(|c| {
                // Intercom keeps an email as typed (case, stray spaces).
                c.email
                    .as_deref()
                    .is_some_and(|ce| ce.trim().eq_ignore_ascii_case(e.trim()))
            })
        });
        Ok(by_external.or(by_email).map(|c| c.id.clone()))
    }

    /// The body of `POST /contacts/search` by external id and/or email
    /// (`None` with neither).
    pub(crate) fn search_body(email: Option<&str>, external_id: Option<&str>) -> Option<Value> {
        let filter =
            |field: &str, value: &str| json!({"field": field, "operator": "=", "value": value});
        let mut filters: Vec<Value> = Vec::new();
        if let Some(x) = external_id {
            filters.push(filter("external_id", x));
        }
        if let Some(e) = email {
            filters.push(filter("email", e));
        }
        let query = match filters.len() {
            0 => return None,
            1 => filters.remove(0),
            _ => json!({"operator": "OR", "value": filters}),
        };
        Some(json!({ "query": query }))
    }

    /// `POST /contacts`.
    pub(crate) async fn create(
        &self,
        body: Map<String, Value>,
        metrics: &StreamMetrics,
    ) -> Result<(), HttpError> {
        let req = RequestSpec::post_json("contacts", Value::Object(body));
        self.http.send(&req, metrics).await.map(drop)
    }

    /// `PUT /contacts/{id}`.
    pub(crate) async fn update(
        &self,
        id: &str,
        body: Map<String, Value>,
        metrics: &StreamMetrics,
    ) -> Result<(), HttpError> {
        let req = RequestSpec::put_json(format!("contacts/{id}"), Value::Object(body));
        self.http.send(&req, metrics).await.map(drop)
    }
}
