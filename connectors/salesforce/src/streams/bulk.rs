//! Bulk API 2.0 query jobs: create, poll until complete ([`poll_job`],
//! every `bulk_poll_ms`), read CSV results by locator.

use std::time::Duration;

use serde::Deserialize;
use weft_core::{
    CancellationToken, EventSender, JsonPage, ReadRequest, SourceEvent, StreamMetrics, Watermark,
};
use weft_http::{HttpError, JobPoll, PollPolicy, poll_job};

use super::describe::ObjectStream;
use super::{Inner, records, send};
use crate::SalesforceError;
use crate::client::SalesforceClient;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Job {
    id: String,
    state: String,
    #[serde(default)]
    error_message: Option<String>,
}

/// How long a bulk query job may run before the read fails
/// ([`HttpError::JobTimeout`]); large extracts take a while.
const JOB_LIMIT: Duration = Duration::from_secs(6 * 60 * 60);

/// Whether a job state is final (`JobComplete`, `Failed`, `Aborted`).
fn is_final(state: &str) -> bool {
    matches!(state, "JobComplete" | "Failed" | "Aborted")
}

/// Polls the job `created` every `client.bulk_poll` ([`poll_job`]) until its
/// state is final; the creation answer is the first probe.
async fn finished(
    client: &SalesforceClient,
    created: Job,
    cancel: &CancellationToken,
    metrics: &StreamMetrics,
) -> Result<Job, HttpError> {
    let id = created.id.clone();
    let policy = PollPolicy {
        first: client.bulk_poll,
        max: client.bulk_poll,
        limit: JOB_LIMIT,
    };
    let mut first = Some(created);
    poll_job(
        &format!("salesforce bulk query job {id}"),
        policy,
        cancel,
        || {
            let known = first.take();
            let id = id.clone();
            async move {
                let job = match known {
                    Some(job) => job,
                    None => {
                        client
                            .http
                            .get_json::<Job>(&SalesforceClient::bulk_job(&id), metrics)
                            .await?
                    }
                };
                Ok(match is_final(&job.state) {
                    true => JobPoll::Done(job),
                    false => JobPoll::Pending,
                })
            }
        },
    )
    .await
}

/// Runs `soql` as a `queryAll` job and emits its rows; observes cursors into `watermark`.
pub(super) async fn read(
    inner: &Inner,
    object: &ObjectStream,
    soql: &str,
    watermark: &mut Watermark,
    request: &ReadRequest,
    tx: &EventSender,
) -> Result<(), SalesforceError> {
    let name = object.object();
    let client = &inner.client;
    let http_err = |e| client.error(e, name);
    let created: Job = client
        .http
        .get_json(&SalesforceClient::bulk_create(soql), &request.metrics)
        .await
        .map_err(http_err)?;
    let id = created.id.clone();
    let job = finished(client, created, &request.cancel, &request.metrics)
        .await
        .map_err(|e| match e {
            HttpError::Cancelled { .. } => SalesforceError::Cancelled {
                object: name.to_string(),
            },
            e => client.error(e, name),
        })?;
    if job.state != "JobComplete" {
        return Err(SalesforceError::BulkJob {
            object: name.to_string(),
            job: id,
            state: job.state,
            message: job.error_message.unwrap_or_default(),
        });
    }

    let mut locator: Option<String> = None;
    let mut chunk = 0_u64;
    loop {
        if request.cancel.is_cancelled() {
            return Err(SalesforceError::Cancelled {
                object: name.to_string(),
            });
        }
        chunk += 1;
        let resp = client
            .http
            .send(
                &SalesforceClient::bulk_results(&id, locator.as_deref()),
                &request.metrics,
            )
            .await
            .map_err(http_err)?;
        let shape = |reason: String| SalesforceError::Shape {
            object: name.to_string(),
            what: format!("bulk job {id} results chunk {chunk}"),
            reason,
        };
        let text =
            std::str::from_utf8(&resp.body).map_err(|e| shape(format!("CSV is not UTF-8: {e}")))?;
        let mut rows = weft_arrow::csv_rows(text);
        let mut out = Vec::new();
        if let Some(header) = rows.next() {
            let header = header.map_err(|e| shape(e.to_string()))?;
            for row in rows {
                let row = row.map_err(|e| shape(e.to_string()))?;
                let (record, cursor) = records::csv_record(&header, &row, object).map_err(shape)?;
                if let Some(c) = cursor {
                    watermark.observe(c);
                }
                out.push(record);
            }
        }
        if !out.is_empty() {
            send(tx, SourceEvent::Page(JsonPage { records: out }), name).await?;
        }
        match resp.header("Sforce-Locator") {
            Some(l) if !l.is_empty() && l != "null" => {
                if locator.as_deref() == Some(l) {
                    return Err(shape(format!("locator {l} came back twice")));
                }
                locator = Some(l.to_string());
            }
            _ => break,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;
    use weft_http::BudgetRegistry;
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::*;
    use crate::{SalesforceAuth, SalesforceConfig};

    async fn client(server: &MockServer) -> SalesforceClient {
        Mock::given(method("POST"))
            .and(path("/services/oauth2/token"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "access_token": "tok", "instance_url": server.uri(), "token_type": "Bearer"
            })))
            .mount(server)
            .await;
        let secret = |v: &str| weft_conformance::secret_file(v).unwrap();
        let mut config = SalesforceConfig::new(
            server.uri(),
            SalesforceAuth::RefreshToken {
                client_id: "app".into(),
                client_secret: secret("s"),
                refresh_token: secret("r"),
            },
        );
        config.bulk_poll_ms = 1;
        SalesforceClient::new(&config, &BudgetRegistry::new()).unwrap()
    }

    fn job(state: &str) -> Job {
        Job {
            id: "750J".into(),
            state: state.into(),
            error_message: None,
        }
    }

    async fn job_gets(server: &MockServer) -> usize {
        server
            .received_requests()
            .await
            .unwrap()
            .iter()
            .filter(|r| r.url.path().ends_with("/jobs/query/750J"))
            .count()
    }

    #[tokio::test]
    async fn a_job_is_polled_until_its_state_is_final() {
        let server = MockServer::start().await;
        let c = client(&server).await;
        Mock::given(method("GET"))
            .and(path("/services/data/v59.0/jobs/query/750J"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({"id": "750J", "state": "InProgress"})),
            )
            .up_to_n_times(2)
            .with_priority(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/services/data/v59.0/jobs/query/750J"))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(
                    json!({"id": "750J", "state": "Failed", "errorMessage": "boom"}),
                ),
            )
            .with_priority(2)
            .mount(&server)
            .await;
        let metrics = StreamMetrics::default();
        let cancel = CancellationToken::new();
        let done = finished(&c, job("UploadComplete"), &cancel, &metrics)
            .await
            .unwrap();
        assert_eq!(done.state, "Failed");
        assert_eq!(done.error_message.as_deref(), Some("boom"));
        assert_eq!(job_gets(&server).await, 3);
        // A job created already final is not polled at all.
        let done = finished(&c, job("JobComplete"), &cancel, &metrics)
            .await
            .unwrap();
        assert_eq!(done.state, "JobComplete");
        assert_eq!(job_gets(&server).await, 3);
    }

    #[tokio::test]
    async fn a_cancelled_poll_stops_with_cancelled() {
        let server = MockServer::start().await;
        let c = client(&server).await;
        Mock::given(method("GET"))
            .and(path("/services/data/v59.0/jobs/query/750J"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({"id": "750J", "state": "InProgress"})),
            )
            .mount(&server)
            .await;
        let cancel = CancellationToken::new();
        let stop = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            stop.cancel();
        });
        let e = finished(&c, job("InProgress"), &cancel, &StreamMetrics::default())
            .await
            .unwrap_err();
        assert!(matches!(e, HttpError::Cancelled { .. }), "{e}");
        assert!(job_gets(&server).await >= 1);
    }
}
