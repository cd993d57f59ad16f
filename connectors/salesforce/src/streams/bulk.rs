//! Bulk API 2.0 query jobs: create, poll until complete, read CSV results by locator.

use serde::Deserialize;
use weft_core::{EventSender, JsonPage, ReadRequest, SourceEvent, Watermark};

use super::describe::ObjectStream;
use super::{Inner, records, send};
use crate::SalesforceError;
use crate::client::SalesforceClient;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Job {
    id: String,
    state: String,
    #[serde(default)]
    error_message: Option<String>,
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
    let id = created.id;
    let mut job_state = created.state;
    let mut message = created.error_message;
    loop {
        match job_state.as_str() {
            "JobComplete" => break,
            "Failed" | "Aborted" => {
                return Err(SalesforceError::BulkJob {
                    object: name.to_string(),
                    job: id,
                    state: job_state,
                    message: message.unwrap_or_default(),
                });
            }
            _ => {}
        }
        tokio::select! {
            biased;
            _ = request.cancel.cancelled() => return Err(SalesforceError::Cancelled { object: name.to_string() }),
            _ = tokio::time::sleep(client.bulk_poll) => {}
        }
        let job: Job = client
            .http
            .get_json(&SalesforceClient::bulk_job(&id), &request.metrics)
            .await
            .map_err(http_err)?;
        job_state = job.state;
        message = job.error_message;
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
