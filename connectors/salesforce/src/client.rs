//! The only place that builds requests to Salesforce (through weft-http).
//!
//! Tokens come from the login host (`<login_url>/services/oauth2/token`); the
//! token answer's `instance_url` becomes the API host for every request, with
//! paths under `/services/data/v<version>/`.

use std::sync::Arc;
use std::time::Duration;

use secrecy::ExposeSecret;
use serde_json::json;
use url::Url;
use weft_http::{
    Auth, BudgetKey, BudgetRegistry, HttpClient, HttpError, Limits, OAuth2JwtBearer,
    OAuth2RefreshToken, Pagination, RequestSpec, TokenProvider,
};

use crate::{SalesforceAuth, SalesforceConfig, SalesforceError};

/// Requests per second when the config sets none (Salesforce limits the
/// daily total, not the rate; this keeps a burst from eating the quota).
const DEFAULT_RPS: f64 = 25.0;

/// A Salesforce API client: auth, the org's shared budget, retries.
#[derive(Clone)]
pub(crate) struct SalesforceClient {
    pub(crate) http: HttpClient,
    /// Time between polls of a bulk job.
    pub(crate) bulk_poll: Duration,
}

impl SalesforceClient {
    pub(crate) fn new(
        config: &SalesforceConfig,
        budgets: &BudgetRegistry,
    ) -> Result<SalesforceClient, SalesforceError> {
        config.validate()?;
        let login = config.login_url.trim_end_matches('/');
        let url = |text: String| {
            Url::parse(&text).map_err(|e| SalesforceError::Config {
                field: "login_url",
                reason: format!("`{}` is not a URL: {e}", config.login_url),
            })
        };
        let base_url = url(format!("{login}/services/data/v{}", config.api_version))?;
        let token_url = url(format!("{login}/services/oauth2/token"))?;
        let (provider, identity): (Arc<dyn TokenProvider>, String) = match &config.auth {
            SalesforceAuth::RefreshToken {
                client_id,
                client_secret,
                refresh_token,
            } => {
                let refresh = refresh_token.resolve()?;
                let identity = format!("{login}|{client_id}|{}", refresh.expose_secret());
                let p = OAuth2RefreshToken::new(
                    "salesforce",
                    token_url,
                    client_id.clone(),
                    Some(client_secret.resolve()?),
                    refresh,
                )?;
                (Arc::new(p), identity)
            }
            SalesforceAuth::JwtBearer {
                client_id,
                username,
                private_key,
            } => {
                let p = OAuth2JwtBearer::new(
                    "salesforce",
                    token_url,
                    client_id.clone(),
                    username.clone(),
                    private_key.resolve()?,
                    login,
                )?;
                (Arc::new(p), format!("{login}|{client_id}|{username}"))
            }
        };
        let mut limits = Limits::per_second(config.requests_per_second.unwrap_or(DEFAULT_RPS));
        limits.daily_quota = config.daily_quota;
        limits.quota_headroom = config.quota_headroom;
        let budget = budgets.budget(
            BudgetKey {
                api: "salesforce".into(),
                // A non-reversible id: pipelines reading the same org share one
                // budget without the id exposing credentials.
                account: format!("org-{}", weft_http::fingerprint(&identity)),
            },
            limits,
        );
        let mut builder = HttpClient::builder("salesforce", base_url)
            .auth(Auth::Token(provider))
            .budget(budget);
        if let Some(settings) = &config.http {
            builder = builder.settings(settings.clone());
        }
        Ok(SalesforceClient {
            http: builder.build()?,
            bulk_poll: Duration::from_millis(config.bulk_poll_ms),
        })
    }

    /// `GET sobjects/{object}/describe`: the object's fields and types.
    pub(crate) fn describe(object: &str) -> RequestSpec {
        RequestSpec::get(format!("sobjects/{object}/describe"))
    }

    /// `GET queryAll?q=<soql>`: deleted and archived rows included.
    pub(crate) fn query_all(soql: &str) -> RequestSpec {
        RequestSpec::get("queryAll").query("q", soql)
    }

    /// Query pages: `records`, then `nextRecordsUrl` until `done`.
    pub(crate) fn pagination() -> Pagination {
        Pagination::NextUrl {
            items: "/records".into(),
            next_url: "/nextRecordsUrl".into(),
            end_flag: Some("/done".into()),
        }
    }

    /// `POST jobs/query`: a Bulk API 2.0 `queryAll` job with CSV results.
    pub(crate) fn bulk_create(soql: &str) -> RequestSpec {
        RequestSpec::post_json(
            "jobs/query",
            json!({ "operation": "queryAll", "query": soql, "contentType": "CSV" }),
        )
    }

    /// `GET jobs/query/{id}`: the job's state.
    pub(crate) fn bulk_job(id: &str) -> RequestSpec {
        RequestSpec::get(format!("jobs/query/{id}"))
    }

    /// `GET jobs/query/{id}/results[?locator=...]`: one chunk of CSV results.
    pub(crate) fn bulk_results(id: &str, locator: Option<&str>) -> RequestSpec {
        let mut r =
            RequestSpec::get(format!("jobs/query/{id}/results")).header("Accept", "text/csv");
        if let Some(l) = locator {
            r = r.query("locator", l);
        }
        r
    }

    /// `POST jobs/ingest`: a Bulk API 2.0 `upsert` job by `external_id_field`,
    /// CSV with LF line endings.
    pub(crate) fn ingest_create(object: &str, external_id_field: &str) -> RequestSpec {
        RequestSpec::post_json(
            "jobs/ingest",
            json!({
                "object": object,
                "operation": "upsert",
                "externalIdFieldName": external_id_field,
                "contentType": "CSV",
                "lineEnding": "LF",
            }),
        )
    }

    /// `PUT jobs/ingest/{id}/batches`: the job's one CSV upload. Not
    /// repeated on failure (a second upload would add the rows twice).
    pub(crate) fn ingest_upload(id: &str, csv: String) -> RequestSpec {
        let mut r = RequestSpec::put_json(format!("jobs/ingest/{id}/batches"), json!(null))
            .idempotent(false);
        r.body = Some(weft_http::Body::Text {
            content_type: "text/csv".into(),
            text: csv,
        });
        r
    }

    /// `PATCH jobs/ingest/{id}` with `{"state": state}` (`UploadComplete`
    /// starts the job, `Aborted` drops it).
    pub(crate) fn ingest_state(id: &str, state: &str) -> RequestSpec {
        let mut r = RequestSpec::post_json(format!("jobs/ingest/{id}"), json!({ "state": state }));
        if let Ok(method) = "PATCH".parse() {
            r.method = method;
        }
        r
    }

    /// `GET jobs/ingest/{id}`: the job's state and counts.
    pub(crate) fn ingest_job(id: &str) -> RequestSpec {
        RequestSpec::get(format!("jobs/ingest/{id}"))
    }

    /// `GET jobs/ingest/{id}/{which}` (`successfulResults`, `failedResults`,
    /// `unprocessedrecords`): CSV.
    pub(crate) fn ingest_results(id: &str, which: &str) -> RequestSpec {
        RequestSpec::get(format!("jobs/ingest/{id}/{which}")).header("Accept", "text/csv")
    }

    /// `GET query?q=<soql>`: live rows only (a reverse sync's lookups).
    pub(crate) fn query(soql: &str) -> RequestSpec {
        RequestSpec::get("query").query("q", soql)
    }

    /// `PATCH composite/sobjects/{object}/{external_id_field}`: upserts up
    /// to 200 records by the external id, each answered on its own
    /// (`allOrNone: false`). Marked idempotent: an upsert by key is safe to
    /// send again after a 5xx.
    pub(crate) fn composite_upsert(
        object: &str,
        external_id_field: &str,
        records: Vec<serde_json::Value>,
    ) -> RequestSpec {
        let mut r = RequestSpec::put_json(
            format!("composite/sobjects/{object}/{external_id_field}"),
            json!({ "allOrNone": false, "records": records }),
        )
        .idempotent(true);
        // weft-http has no PATCH constructor and this crate does not depend
        // on `http`: the method type is inferred from the field.
        if let Ok(method) = "PATCH".parse() {
            r.method = method;
        }
        r
    }

    /// `DELETE composite/sobjects?ids=a,b&allOrNone=false`: deletes up to
    /// 200 records by Id, each answered on its own.
    pub(crate) fn composite_delete(ids: &[String]) -> RequestSpec {
        let mut r = RequestSpec::get("composite/sobjects")
            .query("ids", ids.join(","))
            .query("allOrNone", "false");
        if let Ok(method) = "DELETE".parse() {
            r.method = method;
        }
        r
    }

    /// Maps an HTTP error to the connector's: Salesforce's 403
    /// `REQUEST_LIMIT_EXCEEDED` becomes [`SalesforceError::RequestLimitExceeded`].
    pub(crate) fn error(&self, e: HttpError, object: &str) -> SalesforceError {
        match &e {
            HttpError::Status {
                status: 403, body, ..
            } if body.contains("REQUEST_LIMIT_EXCEEDED") => {
                let budget = self.http.budget();
                let used = budget.quota_used();
                SalesforceError::RequestLimitExceeded {
                    object: object.to_string(),
                    used: (used > 0).then_some(used),
                    quota: budget.daily_quota(),
                }
            }
            _ => SalesforceError::Http(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composite_requests_use_patch_and_delete() {
        let r = SalesforceClient::composite_upsert(
            "Contact",
            "External_Id__c",
            vec![json!({"attributes": {"type": "Contact"}})],
        );
        assert_eq!(r.method.as_str(), "PATCH");
        assert!(r.idempotent);
        assert_eq!(r.path, "composite/sobjects/Contact/External_Id__c");
        let d = SalesforceClient::composite_delete(&["003A".into(), "003B".into()]);
        assert_eq!(d.method.as_str(), "DELETE");
        assert_eq!(
            d.query,
            vec![
                ("ids".to_string(), "003A,003B".to_string()),
                ("allOrNone".to_string(), "false".to_string())
            ]
        );
    }
}
