//! Bulk API 2.0 ingest jobs for the reverse sync: large batches are upserted
//! as one job instead of composite calls of 200.
//!
//! A job is created (`POST jobs/ingest`, operation `upsert` by the external
//! id field), journaled (so a run killed while it runs resumes it instead of
//! sending the batch again), given the batch as one CSV upload (`PUT
//! jobs/ingest/{id}/batches`), closed (`PATCH … {"state": "UploadComplete"}`)
//! and polled until it is final. Its three result sets are then read —
//! `successfulResults`, `failedResults` (with `sf__Error`) and
//! `unprocessedrecords` — and each row is matched back to its record by the
//! external id value it carries.
//!
//! In the CSV every field is quoted; a `NULL` (or empty text) is sent as
//! `#N/A`, Bulk 2.0's "set to null" (an empty field would leave the value
//! unchanged, unlike the composite path).

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use weft_core::{CancellationToken, StreamMetrics, SyncRecord};
use weft_http::{HttpError, JobPoll, PollPolicy, poll_job};

use crate::SalesforceError;
use crate::client::SalesforceClient;

/// How long an ingest job may run before the batch fails
/// ([`HttpError::JobTimeout`]).
const JOB_LIMIT: Duration = Duration::from_secs(60 * 60);

/// Reject reason of a record the job left unprocessed.
pub const UNPROCESSED: &str =
    "not processed by Salesforce's bulk ingest job (it stopped first); sent again next run";

/// An ingest job's state, as `GET jobs/ingest/{id}` answers.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct IngestJob {
    pub(crate) id: String,
    pub(crate) state: String,
    #[serde(default)]
    pub(crate) error_message: Option<String>,
}

/// Whether a job state is final.
pub(crate) fn is_final(state: &str) -> bool {
    matches!(state, "JobComplete" | "Failed" | "Aborted")
}

/// One CSV field, quoted (`"` doubled); `NULL` and empty text become `#N/A`.
fn csv_field(out: &mut String, value: Option<&Value>) {
    let text = match value {
        None | Some(Value::Null) => "#N/A".to_string(),
        Some(Value::String(s)) if s.is_empty() => "#N/A".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    out.push('"');
    out.push_str(&text.replace('"', "\"\""));
    out.push('"');
}

/// The upload: a header of every mapped field (the external id first), then
/// one row per record, LF line endings.
pub(crate) fn csv(external_id: &str, records: &[&SyncRecord]) -> String {
    let mut columns: Vec<String> = vec![external_id.to_string()];
    let others: BTreeSet<&String> = records
        .iter()
        .flat_map(|r| r.fields.keys())
        .filter(|k| !k.eq_ignore_ascii_case(external_id))
        .collect();
    columns.extend(others.into_iter().cloned());
    let mut out = String::new();
    for (n, c) in columns.iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        csv_field(&mut out, Some(&Value::from(c.as_str())));
    }
    out.push('\n');
    for r in records {
        for (n, c) in columns.iter().enumerate() {
            if n > 0 {
                out.push(',');
            }
            let value = r
                .fields
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(c))
                .map(|(_, v)| v);
            csv_field(&mut out, value);
        }
        out.push('\n');
    }
    out
}

/// A job's outcome per external id value (lower-cased): `Ok` written,
/// `Err` rejected with Salesforce's reason. Values no result mentions are
/// absent.
pub(crate) type Outcomes = HashMap<String, Result<(), String>>;

/// Runs the ingest side of Salesforce: the calls of one job.
pub(crate) struct Ingest<'a> {
    pub(crate) client: &'a SalesforceClient,
    pub(crate) object: &'a str,
    pub(crate) external_id: &'a str,
    pub(crate) metrics: &'a StreamMetrics,
}

impl Ingest<'_> {
    fn err(&self, e: HttpError) -> SalesforceError {
        self.client.error(e, self.object)
    }

    /// Creates an upsert job; returns its id.
    pub(crate) async fn create(&self) -> Result<String, SalesforceError> {
        let job: IngestJob = self
            .client
            .http
            .get_json(
                &SalesforceClient::ingest_create(self.object, self.external_id),
                self.metrics,
            )
            .await
            .map_err(|e| self.err(e))?;
        Ok(job.id)
    }

    /// Uploads `csv` and closes the job (it starts processing).
    pub(crate) async fn upload_and_close(
        &self,
        id: &str,
        csv: String,
    ) -> Result<(), SalesforceError> {
        self.client
            .http
            .send(&SalesforceClient::ingest_upload(id, csv), self.metrics)
            .await
            .map_err(|e| self.err(e))?;
        self.client
            .http
            .send(
                &SalesforceClient::ingest_state(id, "UploadComplete"),
                self.metrics,
            )
            .await
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Aborts job `id`, best effort (a job left open is deleted by
    /// Salesforce after a week).
    pub(crate) async fn abort(&self, id: &str) {
        let sent = self
            .client
            .http
            .send(&SalesforceClient::ingest_state(id, "Aborted"), self.metrics)
            .await;
        if let Err(e) = sent {
            tracing::warn!(job = id, error = %e, "aborting a salesforce ingest job failed");
        }
    }

    /// The job's state now; `None` when Salesforce does not know it (404).
    pub(crate) async fn state(&self, id: &str) -> Result<Option<IngestJob>, SalesforceError> {
        match self
            .client
            .http
            .get_json::<IngestJob>(&SalesforceClient::ingest_job(id), self.metrics)
            .await
        {
            Ok(job) => Ok(Some(job)),
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(self.err(e)),
        }
    }

    /// Polls job `id` until its state is final.
    pub(crate) async fn finished(&self, id: &str) -> Result<IngestJob, SalesforceError> {
        let policy = PollPolicy {
            first: self.client.bulk_poll,
            max: self.client.bulk_poll,
            limit: JOB_LIMIT,
        };
        poll_job(
            &format!("salesforce ingest job {id}"),
            policy,
            &CancellationToken::new(),
            || async move {
                let job: IngestJob = self
                    .client
                    .http
                    .get_json(&SalesforceClient::ingest_job(id), self.metrics)
                    .await?;
                Ok(match is_final(&job.state) {
                    true => JobPoll::Done(job),
                    false => JobPoll::Pending,
                })
            },
        )
        .await
        .map_err(|e| self.err(e))
    }

    /// Reads a completed job's three result sets.
    pub(crate) async fn outcomes(&self, id: &str) -> Result<Outcomes, SalesforceError> {
        let mut out = Outcomes::new();
        for which in ["successfulResults", "failedResults", "unprocessedrecords"] {
            let resp = self
                .client
                .http
                .send(&SalesforceClient::ingest_results(id, which), self.metrics)
                .await
                .map_err(|e| self.err(e))?;
            let text = String::from_utf8_lossy(&resp.body);
            self.read_results(id, which, &text, &mut out)?;
        }
        Ok(out)
    }

    /// Adds one result set's rows to `out` by external id value.
    fn read_results(
        &self,
        id: &str,
        which: &str,
        text: &str,
        out: &mut Outcomes,
    ) -> Result<(), SalesforceError> {
        let shape = |reason: String| SalesforceError::Shape {
            object: self.object.to_string(),
            what: format!("ingest job {id} {which}"),
            reason,
        };
        let mut rows = weft_arrow::csv_rows(text);
        let Some(header) = rows.next() else {
            return Ok(());
        };
        let header = header.map_err(|e| shape(e.to_string()))?;
        let column = |name: &str| header.iter().position(|h| h.eq_ignore_ascii_case(name));
        let key = column(self.external_id)
            .ok_or_else(|| shape(format!("no `{}` column", self.external_id)))?;
        let error = column("sf__Error");
        for row in rows {
            let row = row.map_err(|e| shape(e.to_string()))?;
            let Some(value) = row.get(key) else {
                continue;
            };
            let outcome = match which {
                "successfulResults" => Ok(()),
                "failedResults" => Err(error
                    .and_then(|k| row.get(k))
                    .map(|e| failed_reason(e))
                    .unwrap_or_else(|| "rejected by Salesforce".into())),
                _ => Err(UNPROCESSED.to_string()),
            };
            out.insert(value.trim().to_lowercase(), outcome);
        }
        Ok(())
    }
}

/// `sf__Error` (`CODE:message:fields --`; the message may hold colons) as
/// a reason: `CODE: message`.
fn failed_reason(raw: &str) -> String {
    let raw = raw.trim().trim_end_matches("--").trim();
    match raw.split_once(':') {
        Some((code, rest))
            if !code.is_empty() && code.chars().all(|c| c.is_ascii_uppercase() || c == '_') =>
        {
            let message = rest.rsplit_once(':').map_or(rest, |(m, _fields)| m);
            format!("{code}: {}", message.trim())
        }
        _ => raw.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;
    use weft_core::SyncAction;

    use super::*;

    fn record(fields: &[(&str, Value)]) -> SyncRecord {
        SyncRecord {
            key: "k".into(),
            action: SyncAction::Create,
            row_hash: "h".into(),
            fields: fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect::<BTreeMap<_, _>>(),
        }
    }

    #[test]
    fn the_csv_quotes_every_field_and_sends_nulls_as_na() {
        let a = record(&[
            ("Ext__c", json!("a@x.com")),
            ("LastName", json!("O\"Neil, Jr")),
            ("Phone", Value::Null),
        ]);
        let b = record(&[
            ("Ext__c", json!("b@x.com")),
            ("LastName", json!("")),
            ("Amount__c", json!(12.5)),
        ]);
        assert_eq!(
            csv("Ext__c", &[&a, &b]),
            "\"Ext__c\",\"Amount__c\",\"LastName\",\"Phone\"\n\
             \"a@x.com\",\"#N/A\",\"O\"\"Neil, Jr\",\"#N/A\"\n\
             \"b@x.com\",\"12.5\",\"#N/A\",\"#N/A\"\n"
        );
        // The CSV reads back as written.
        let text = csv("Ext__c", &[&a]);
        let rows: Vec<Vec<String>> = weft_arrow::csv_rows(&text)
            .map(|r| r.unwrap().into_iter().map(|f| f.into_owned()).collect())
            .collect();
        assert_eq!(rows[1], vec!["a@x.com", "O\"Neil, Jr", "#N/A"]);
    }

    #[test]
    fn failed_rows_carry_code_and_message() {
        assert_eq!(
            failed_reason("INVALID_EMAIL_ADDRESS:Email: invalid email address: x:Email --"),
            "INVALID_EMAIL_ADDRESS: Email: invalid email address: x"
        );
        assert_eq!(
            failed_reason(
                "REQUIRED_FIELD_MISSING:Required fields are missing: [LastName]:LastName --"
            ),
            "REQUIRED_FIELD_MISSING: Required fields are missing: [LastName]"
        );
        assert_eq!(failed_reason("something odd"), "something odd");
    }
}
