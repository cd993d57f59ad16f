//! The destination side: warehouse rows -> Zendesk users (reverse sync).
//!
//! Creates and updates become one `POST /api/v2/users/create_or_update_many`
//! call of at most 100 users, which Zendesk answers with a queued job; the
//! job is polled (`GET /api/v2/job_statuses/{id}`, [`weft_http::poll_job`])
//! until it completes, and each of its results is matched back to its
//! record by `index`. A result with `success: false` (status `Failed`) is
//! that record's reject, with Zendesk's `error` and `details`; a job that
//! ends `failed` or `killed` fails the whole batch. Zendesk identifies users
//! by `external_id` when it is sent, else by `email`, so re-sending a batch
//! never creates a user twice.
//!
//! Mirror-mode deletes suspend the user (`suspended: true`, sent through
//! the same call): Zendesk keeps their tickets, and an agent can unsuspend
//! them. A delete carries only the record's key, so in mirror mode **the
//! sync's primary key must be the user's email** (checked by
//! [`SyncTarget::check`]).
//!
//! Jobs are resumable. Right after a `create_or_update_many` call answers
//! with its job id, and before polling, the job is journaled with the
//! records it carries ([`SyncTarget::apply_journaled`]); a run killed while
//! the job runs leaves it pending, and the next run polls the same job id
//! ([`SyncTarget::resume_job`]) and maps its results by index to the
//! journaled records, without sending the users again. A job Zendesk no
//! longer knows (`404`: job statuses expire after about an hour) or that
//! ended `failed`/`killed` cannot be resumed: its records are planned and
//! sent again, which the upsert makes safe.
//!
//! `update_only` and `create_only` are not offered: `create_or_update_many`
//! cannot be told to do only one of the two, and Zendesk reports which it
//! did only afterwards. A sync in either mode is refused at config check.

use std::sync::Arc;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Map, Value};
use weft_core::{
    BoxError, CancellationToken, NoJournal, PendingJob, PlannedRequest, RecordOutcome,
    StreamMetrics, SyncAction, SyncJournal, SyncRecord, SyncSpec, SyncTarget, SyncWriteMode,
};
use weft_http::{BudgetRegistry, HttpError, JobPoll, PollPolicy, poll_job};

use crate::client::ZendeskClient;
use crate::{ZendeskConfig, ZendeskError};

/// Users per `create_or_update_many` call, Zendesk's documented maximum.
pub const MAX_USERS_PER_CALL: usize = 100;

/// The reject reason of a user the job's results do not mention.
pub const NO_RESULT: &str = "no result from Zendesk's job for this user";

/// User fields a mapping may fill (besides `user_fields.NAME`).
const USER_FIELDS: [&str; 14] = [
    "name",
    "email",
    "external_id",
    "phone",
    "role",
    "organization_id",
    "tags",
    "verified",
    "time_zone",
    "locale",
    "details",
    "notes",
    "alias",
    "suspended",
];

/// `{"job_status": {...}}`, as both job endpoints answer.
#[derive(Debug, Deserialize)]
pub(crate) struct JobEnvelope {
    pub(crate) job_status: JobStatus,
}

/// A Zendesk background job.
#[derive(Debug, Deserialize)]
pub(crate) struct JobStatus {
    pub(crate) id: String,
    /// `queued`, `working`, `completed`, `failed` or `killed`.
    pub(crate) status: String,
    #[serde(default)]
    pub(crate) message: Option<String>,
    #[serde(default)]
    pub(crate) results: Option<Vec<JobResult>>,
}

/// One user's result in a completed job.
#[derive(Debug, Deserialize)]
pub(crate) struct JobResult {
    #[serde(default)]
    pub(crate) index: Option<usize>,
    #[serde(default)]
    pub(crate) success: Option<bool>,
    #[serde(default)]
    pub(crate) status: Option<String>,
    #[serde(default)]
    pub(crate) error: Option<String>,
    #[serde(default)]
    pub(crate) details: Option<String>,
}

/// Zendesk users as a reverse-sync destination.
///
/// ```no_run
/// # fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use weft_core::SecretRef;
/// let config = weft_zendesk::ZendeskConfig::new(
///     "acme",
///     "agent@acme.example",
///     SecretRef::Env { env: "ZENDESK_API_TOKEN".into() },
/// );
/// let target = weft_zendesk::ZendeskTarget::new(&config, weft_http::BudgetRegistry::global())?;
/// # Ok(()) }
/// ```
pub struct ZendeskTarget {
    client: ZendeskClient,
    poll: PollPolicy,
    metrics: Arc<StreamMetrics>,
}

impl ZendeskTarget {
    /// A target for the account of `config`, sharing its budget in `budgets`.
    pub fn new(
        config: &ZendeskConfig,
        budgets: &BudgetRegistry,
    ) -> Result<ZendeskTarget, ZendeskError> {
        Ok(ZendeskTarget {
            client: ZendeskClient::new(config, budgets)?,
            poll: PollPolicy::default(),
            metrics: Arc::new(StreamMetrics::default()),
        })
    }

    /// Polls jobs with `policy` instead of the default (250 ms doubling to
    /// 5 s, at most 10 minutes).
    pub fn with_poll_policy(mut self, policy: PollPolicy) -> ZendeskTarget {
        self.poll = policy;
        self
    }

    /// Requests, retries and waits of this target's calls so far.
    pub fn metrics(&self) -> &StreamMetrics {
        &self.metrics
    }

    /// The completed job `id`, polled until done.
    async fn finished(&self, id: &str) -> Result<JobStatus, HttpError> {
        let what = format!("zendesk job {id}");
        poll_job(&what, self.poll, &CancellationToken::new(), || async {
            let job = self.client.job_status(id, &self.metrics).await?;
            Ok(match job.status.as_str() {
                "completed" | "failed" | "killed" => JobPoll::Done(job),
                _ => JobPoll::Pending,
            })
        })
        .await
    }
}

/// The user object sent for `record`, or why it cannot be sent.
fn user(record: &SyncRecord) -> Result<Value, String> {
    if record.action == SyncAction::Delete {
        let email = record.key.trim();
        if !email.contains('@') {
            return Err(format!(
                "cannot suspend key {:?}: a mirror sync to Zendesk needs the email as its primary key",
                record.key
            ));
        }
        return Ok(serde_json::json!({ "email": email, "suspended": true }));
    }
    match record.fields.get("email") {
        Some(Value::String(s)) if !s.trim().is_empty() => {}
        Some(Value::String(_)) | Some(Value::Null) | None => {
            return Err("`email` is missing or empty".into());
        }
        Some(other) => return Err(format!("`email` is not text: {other}")),
    }
    let mut user = Map::new();
    let mut custom = Map::new();
    for (name, value) in &record.fields {
        if let Some(field) = name.strip_prefix("user_fields.") {
            custom.insert(field.to_string(), value.clone());
        } else if value.is_null() {
            continue;
        } else if name == "email" {
            user.insert(
                name.clone(),
                Value::from(value.as_str().unwrap_or("").trim()),
            );
        } else {
            user.insert(name.clone(), value.clone());
        }
    }
    if !custom.is_empty() {
        user.insert("user_fields".into(), Value::Object(custom));
    }
    Ok(Value::Object(user))
}

/// The outcome of each of the `len` users of a finished job's call, by
/// position in the call (a result's `index`); `None` where the job's
/// results do not mention the position. A result with `success: false` or
/// status `Failed` is a reject with Zendesk's reason, and a failure for a
/// position wins over a success. A job that did not complete is an error.
fn job_outcomes(
    job: JobStatus,
    len: usize,
) -> Result<Vec<Option<Result<(), String>>>, ZendeskError> {
    if job.status != "completed" {
        return Err(ZendeskError::Job {
            job: job.id,
            status: job.status,
            message: job.message.unwrap_or_default(),
        });
    }
    let mut out: Vec<Option<Result<(), String>>> = vec![None; len];
    for r in job.results.unwrap_or_default() {
        let Some(slot) = r.index.and_then(|n| out.get_mut(n)) else {
            continue;
        };
        let failed = r.success == Some(false)
            || r.status
                .as_deref()
                .is_some_and(|s| s.eq_ignore_ascii_case("failed"));
        let outcome = if failed { Err(reason(&r)) } else { Ok(()) };
        if !matches!(slot, Some(Err(_))) {
            *slot = Some(outcome);
        }
    }
    Ok(out)
}

/// Checks one destination field name.
fn check_field(name: &str) -> Result<(), String> {
    match name.strip_prefix("user_fields.") {
        Some(key) if !key.is_empty() => Ok(()),
        _ if USER_FIELDS.contains(&name) => Ok(()),
        _ => Err(format!(
            "`{name}` is not a Zendesk user field (use {} or user_fields.KEY)",
            USER_FIELDS.join(", ")
        )),
    }
}

/// Zendesk's reason for a failed result.
fn reason(r: &JobResult) -> String {
    match (r.error.as_deref(), r.details.as_deref()) {
        (Some(e), Some(d)) => format!("{e}: {d}"),
        (Some(e), None) => e.to_string(),
        (None, Some(d)) => d.to_string(),
        (None, None) => "rejected by Zendesk".to_string(),
    }
}

#[async_trait]
impl SyncTarget for ZendeskTarget {
    fn name(&self) -> &str {
        "zendesk"
    }

    fn required_fields(&self) -> Vec<String> {
        vec!["email".into()]
    }

    fn max_batch(&self) -> usize {
        MAX_USERS_PER_CALL
    }

    fn modes(&self) -> &'static [SyncWriteMode] {
        &[SyncWriteMode::Upsert, SyncWriteMode::Mirror]
    }

    fn preview(&self, _mode: SyncWriteMode, records: &[SyncRecord]) -> Vec<PlannedRequest> {
        let users: Vec<Value> = records.iter().filter_map(|r| user(r).ok()).collect();
        if users.is_empty() {
            return Vec::new();
        }
        let (path, body) = ZendeskClient::users_request(users);
        vec![
            PlannedRequest {
                method: "POST".into(),
                path: path.into(),
                body,
            },
            PlannedRequest {
                method: "GET".into(),
                path: "api/v2/job_statuses/{job id}.json (until completed)".into(),
                body: Value::Null,
            },
        ]
    }

    fn check(&self, spec: &SyncSpec) -> Result<(), BoxError> {
        let err = |reason: String| ZendeskError::Sync {
            sync: spec.name.clone(),
            reason,
        };
        for name in spec.mapping.keys() {
            check_field(name).map_err(err)?;
        }
        if spec.mode == SyncWriteMode::Mirror
            && spec.mapping.get("email") != Some(&spec.primary_key)
        {
            return Err(Box::new(err(format!(
                "mode `mirror` suspends users by the sync's key, so `email` must be mapped from \
                 the primary key `{}`",
                spec.primary_key
            ))));
        }
        Ok(())
    }

    /// Sends the records in calls of at most 100 users and waits for each
    /// call's job. A failed call or job fails the whole batch: nothing is
    /// acknowledged, and the upserts are safe to send again.
    async fn apply(
        &self,
        mode: SyncWriteMode,
        records: Vec<SyncRecord>,
    ) -> Result<Vec<RecordOutcome>, BoxError> {
        self.apply_journaled(mode, records, &NoJournal).await
    }

    /// As `apply`, journaling each call's job (with the records it
    /// carries, in the call's order) as soon as Zendesk answers with its
    /// id, before polling it.
    async fn apply_journaled(
        &self,
        _mode: SyncWriteMode,
        records: Vec<SyncRecord>,
        journal: &dyn SyncJournal,
    ) -> Result<Vec<RecordOutcome>, BoxError> {
        let mut results: Vec<Option<Result<(), String>>> = vec![None; records.len()];
        let mut pending: Vec<(usize, Value)> = Vec::with_capacity(records.len());
        for (i, record) in records.iter().enumerate() {
            match user(record) {
                Ok(u) => pending.push((i, u)),
                Err(reason) => results[i] = Some(Err(reason)),
            }
        }
        for chunk in pending.chunks(MAX_USERS_PER_CALL) {
            let users: Vec<Value> = chunk.iter().map(|(_, u)| u.clone()).collect();
            let queued = self
                .client
                .create_or_update_users(users, &self.metrics)
                .await?;
            let carried: Vec<SyncRecord> = chunk.iter().map(|&(i, _)| records[i].clone()).collect();
            journal.submitted(&queued.id, &carried).await?;
            let job = self
                .finished(&queued.id)
                .await
                .map_err(ZendeskError::from)?;
            for (&(i, _), outcome) in chunk.iter().zip(job_outcomes(job, chunk.len())?) {
                if outcome.is_some() {
                    results[i] = outcome;
                }
            }
        }
        Ok(records
            .into_iter()
            .zip(results)
            .map(|(record, result)| RecordOutcome {
                key: record.key,
                result: result.unwrap_or_else(|| Err(NO_RESULT.into())),
            })
            .collect())
    }

    /// Polls the journaled job id and maps its results by index to the
    /// journaled records. A job Zendesk no longer knows (404) or that
    /// ended `failed`/`killed` answers `None`: its records are sent again.
    async fn resume_job(&self, job: &PendingJob) -> Result<Option<Vec<RecordOutcome>>, BoxError> {
        let status = match self.finished(&job.job).await {
            Ok(status) => status,
            Err(e) if e.status() == Some(404) => return Ok(None),
            Err(e) => return Err(Box::new(ZendeskError::from(e))),
        };
        if status.status != "completed" {
            // Nothing to read back (the engine logs the job as not resumed).
            return Ok(None);
        }
        let outcomes = job_outcomes(status, job.records.len())?;
        Ok(Some(
            job.records
                .iter()
                .zip(outcomes)
                .map(|(record, result)| RecordOutcome {
                    key: record.key.clone(),
                    result: result.unwrap_or_else(|| Err(NO_RESULT.into())),
                })
                .collect(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;

    fn record(action: SyncAction, key: &str, fields: &[(&str, Value)]) -> SyncRecord {
        SyncRecord {
            key: key.into(),
            action,
            row_hash: "h".into(),
            fields: fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect::<BTreeMap<_, _>>(),
        }
    }

    #[test]
    fn users_carry_mapped_fields_and_deletes_suspend_by_email() {
        let r = record(
            SyncAction::Create,
            "ann@x.com",
            &[
                ("email", json!(" ann@x.com ")),
                ("name", json!("Ann")),
                ("phone", Value::Null),
                ("user_fields.plan", json!("pro")),
            ],
        );
        assert_eq!(
            user(&r).unwrap(),
            json!({"email": "ann@x.com", "name": "Ann", "user_fields": {"plan": "pro"}})
        );
        let d = record(SyncAction::Delete, "ann@x.com", &[]);
        assert_eq!(
            user(&d).unwrap(),
            json!({"email": "ann@x.com", "suspended": true})
        );
        let bad = record(SyncAction::Delete, "u-1", &[]);
        assert!(user(&bad).unwrap_err().contains("primary key"));
        let no_email = record(SyncAction::Create, "k", &[("name", json!("X"))]);
        assert_eq!(user(&no_email).unwrap_err(), "`email` is missing or empty");
    }

    #[test]
    fn unknown_fields_are_named() {
        assert!(check_field("user_fields.plan").is_ok());
        assert!(check_field("suspended").is_ok());
        let e = check_field("nickname").unwrap_err();
        assert!(
            e.starts_with("`nickname` is not a Zendesk user field"),
            "{e}"
        );
        assert!(check_field("user_fields.").is_err());
    }
}
