//! The destination side: warehouse rows -> any Salesforce object (reverse
//! sync), upserted by an external id field.
//!
//! [`SalesforceTarget::connect`] describes the configured `object` once and
//! checks that `external_id_field` exists and is an external id; the
//! sync's mapping is checked against the same describe by
//! [`SyncTarget::check`] (every mapped field must exist and be createable
//! and updateable as the mode needs; the external id field must be mapped
//! from the sync's primary key).
//!
//! Creates and updates become `PATCH composite/sobjects/{object}/{field}`
//! calls of at most 200 records with `allOrNone: false`; Salesforce answers
//! each record on its own, in request order, and each answer is matched back
//! by position: `success: false` is that record's reject,
//! `"{statusCode}: {message}"`. A call that fails as a whole (401, a 5xx
//! after retries, an answer of the wrong shape) fails the whole batch.
//!
//! `update_only` and `create_only` look the batch's external ids up first
//! (`SELECT Id, <field> FROM <object> WHERE <field> = '...' OR ...`) and
//! reject what the mode forbids before upserting the rest. `mirror` deletes
//! look the keys up the same way and delete the Ids found with
//! `DELETE composite/sobjects?ids=...&allOrNone=false`; a key Salesforce does
//! not have (or an already deleted record) is acknowledged. With
//! `mirror_update` set (`{ Status__c = "inactive" }`), the records found
//! get those fields instead (a composite upsert by external id) and are
//! not deleted; the fields must be updateable (checked against describe).
//!
//! A batch with more creates or updates than `sync_bulk_threshold` (2,000
//! by default; batches hold up to [`MAX_BULK_BATCH`]) is upserted through a
//! Bulk API 2.0 ingest job instead (see the `ingest` module): the job is
//! journaled as soon as Salesforce accepts it, so a run killed while it
//! runs resumes it next run ([`SyncTarget::resume_job`]: wait for the job,
//! read its results) rather than sending the batch again. Each result row
//! is matched to its record by external id; `failedResults` rows are
//! rejects with their `sf__Error`, `unprocessedrecords` rows rejects that
//! are sent again next run.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use weft_core::{
    BoxError, NoJournal, PendingJob, PlannedRequest, RecordOutcome, StreamMetrics, SyncAction,
    SyncJournal, SyncRecord, SyncSpec, SyncTarget, SyncWriteMode,
};
use weft_http::BudgetRegistry;

use crate::client::SalesforceClient;
use crate::ingest::{Ingest, Outcomes};
use crate::{SalesforceConfig, SalesforceError};

/// Records per composite call, Salesforce's documented maximum.
pub const MAX_RECORDS_PER_CALL: usize = 200;

/// Records per [`SyncTarget::apply`] batch when Bulk API ingest is off
/// (sent as calls of [`MAX_RECORDS_PER_CALL`]).
pub const MAX_BATCH: usize = 2_000;

/// Records per batch when batches above `sync_bulk_threshold` go through
/// a Bulk API 2.0 ingest job.
pub const MAX_BULK_BATCH: usize = 10_000;

/// External ids per lookup query (keeps the SOQL far below its length limit).
const LOOKUP_CHUNK: usize = 100;

/// The reject reason of a record Salesforce's answer does not mention.
pub const NO_RESULT: &str = "no result from Salesforce for this record";

/// One field as a reverse sync sees it, from the object's describe.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WritableField {
    /// The field's API name.
    pub(crate) name: String,
    /// The describe type (`string`, `email`, `double`...).
    #[serde(rename = "type")]
    pub(crate) kind: String,
    /// Settable on insert.
    #[serde(default)]
    pub(crate) createable: bool,
    /// Settable on update.
    #[serde(default)]
    pub(crate) updateable: bool,
    /// An external id (records can be upserted by it).
    #[serde(default)]
    pub(crate) external_id: bool,
}

#[derive(Deserialize)]
struct WriteDescribe {
    name: String,
    fields: Vec<WritableField>,
}

/// The object's API name and fields (with write permissions) from its describe JSON.
pub(crate) fn writable_fields(body: &[u8]) -> Result<(String, Vec<WritableField>), String> {
    let d: WriteDescribe = serde_json::from_slice(body)
        .map_err(|e| format!("describe is not the expected JSON: {e}"))?;
    Ok((d.name, d.fields))
}

/// One record's answer from a composite call.
#[derive(Debug, Deserialize)]
struct SaveResult {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    success: bool,
    #[serde(default)]
    errors: Vec<SaveError>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SaveError {
    #[serde(default)]
    status_code: String,
    #[serde(default)]
    message: String,
}

/// A `query` answer page.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct QueryPage {
    #[serde(default)]
    records: Vec<Map<String, Value>>,
    #[serde(default = "yes")]
    done: bool,
    #[serde(default)]
    next_records_url: Option<String>,
}

fn yes() -> bool {
    true
}

/// Salesforce's reason for a failed result.
fn reason(r: &SaveResult) -> String {
    let parts: Vec<String> = r
        .errors
        .iter()
        .map(|e| match (e.status_code.is_empty(), e.message.is_empty()) {
            (false, false) => format!("{}: {}", e.status_code, e.message),
            (false, true) => e.status_code.clone(),
            (true, _) => e.message.clone(),
        })
        .filter(|s| !s.is_empty())
        .collect();
    match parts.is_empty() {
        true => "rejected by Salesforce".into(),
        false => parts.join("; "),
    }
}

/// A SOQL string literal (quotes and backslashes escaped).
fn soql_string(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// Whether a describe type is numeric (its SOQL literals are not quoted).
fn numeric(kind: &str) -> bool {
    matches!(kind, "int" | "long" | "double" | "currency" | "percent")
}

/// Any Salesforce object as a reverse-sync destination, upserted by an
/// external id field.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use weft_core::SecretRef;
/// use weft_salesforce::{SalesforceAuth, SalesforceConfig, SalesforceTarget};
/// let mut config = SalesforceConfig::new(
///     "https://login.salesforce.com",
///     SalesforceAuth::RefreshToken {
///         client_id: "3MVG9...".into(),
///         client_secret: SecretRef::Env { env: "SF_CLIENT_SECRET".into() },
///         refresh_token: SecretRef::Env { env: "SF_REFRESH_TOKEN".into() },
///     },
/// );
/// config.object = Some("Contact".into());
/// config.external_id_field = Some("External_Id__c".into());
/// let target = SalesforceTarget::connect(&config, weft_http::BudgetRegistry::global()).await?;
/// # Ok(()) }
/// ```
pub struct SalesforceTarget {
    client: SalesforceClient,
    object: String,
    external_id: WritableField,
    /// Described fields by lower-cased name (API names are case-insensitive).
    fields: HashMap<String, WritableField>,
    /// Batches with more writes than this use a Bulk API 2.0 ingest job.
    bulk_threshold: usize,
    /// Mirror mode: fields set on records that left the model, instead of a delete.
    mirror_update: Option<Map<String, Value>>,
    metrics: Arc<StreamMetrics>,
}

impl SalesforceTarget {
    /// Authenticates, describes `config.object` and checks that
    /// `config.external_id_field` is one of its external id fields. The
    /// org's rate budget comes from `budgets`.
    pub async fn connect(
        config: &SalesforceConfig,
        budgets: &BudgetRegistry,
    ) -> Result<SalesforceTarget, SalesforceError> {
        let object = config
            .object
            .clone()
            .ok_or_else(|| SalesforceError::Config {
                field: "object",
                reason: "must name the object a sync writes to (e.g. `Contact`)".into(),
            })?;
        let ext = config
            .external_id_field
            .clone()
            .ok_or_else(|| SalesforceError::Config {
                field: "external_id_field",
                reason: "must name the external id field records are upserted by \
                         (e.g. `External_Id__c`)"
                    .into(),
            })?;
        let client = SalesforceClient::new(config, budgets)?;
        let metrics = Arc::new(StreamMetrics::default());
        let resp = client
            .http
            .send(&SalesforceClient::describe(&object), &metrics)
            .await
            .map_err(|e| client.error(e, &object))?;
        let (name, described) =
            writable_fields(&resp.body).map_err(|reason| SalesforceError::Shape {
                object: object.clone(),
                what: "describe".into(),
                reason,
            })?;
        let fields: HashMap<String, WritableField> = described
            .into_iter()
            .map(|f| (f.name.to_ascii_lowercase(), f))
            .collect();
        let field_err = |reason: String| SalesforceError::Field {
            object: name.clone(),
            field: ext.clone(),
            reason,
        };
        let external_id = fields
            .get(&ext.to_ascii_lowercase())
            .cloned()
            .ok_or_else(|| field_err(format!("does not exist on {name}")))?;
        if !external_id.external_id {
            return Err(field_err(format!(
                "is not an external id field of {name} (describe says externalId: false); \
                 upserts need one"
            )));
        }
        Ok(SalesforceTarget {
            client,
            object: name,
            external_id,
            fields,
            bulk_threshold: config.sync_bulk_threshold,
            mirror_update: config
                .mirror_update
                .as_ref()
                .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
            metrics,
        })
    }

    /// The object written to (its API name as described).
    pub fn object(&self) -> &str {
        &self.object
    }

    /// The external id field records are upserted by (as described).
    pub fn external_id_field(&self) -> &str {
        &self.external_id.name
    }

    /// Requests, retries and waits of this target's calls so far.
    pub fn metrics(&self) -> &StreamMetrics {
        &self.metrics
    }

    fn ingest(&self) -> Ingest<'_> {
        Ingest {
            client: &self.client,
            object: &self.object,
            external_id: &self.external_id.name,
            metrics: &self.metrics,
        }
    }

    /// Upserts `writes` (record index, external id value) as one Bulk API
    /// 2.0 ingest job, journaled before it starts; fills `results`.
    async fn bulk_upsert(
        &self,
        records: &[SyncRecord],
        writes: &[(usize, String)],
        journal: &dyn SyncJournal,
        results: &mut [Option<Result<(), String>>],
    ) -> Result<(), BoxError> {
        let ingest = self.ingest();
        let carried: Vec<SyncRecord> = writes.iter().map(|&(i, _)| records[i].clone()).collect();
        let id = ingest.create().await?;
        journal.submitted(&id, &carried).await?;
        let csv = crate::ingest::csv(&self.external_id.name, &carried.iter().collect::<Vec<_>>());
        if let Err(e) = ingest.upload_and_close(&id, csv).await {
            ingest.abort(&id).await;
            return Err(Box::new(e));
        }
        let job = ingest.finished(&id).await?;
        let outcomes = ingest.outcomes(&id).await?;
        let ended = ended_reason(&job);
        for (i, value) in writes {
            results[*i] = Some(outcome_of(&outcomes, value, &ended));
        }
        Ok(())
    }

    /// Why a mapped destination field cannot be written in `mode`, if it cannot.
    fn field_problem(&self, name: &str, mode: SyncWriteMode) -> Option<String> {
        let Some(field) = self.fields.get(&name.to_ascii_lowercase()) else {
            return Some(format!("`{name}` is not a field of {}", self.object));
        };
        let creates = mode.actions().contains(&SyncAction::Create);
        let updates = mode.actions().contains(&SyncAction::Update);
        let missing = match (creates && !field.createable, updates && !field.updateable) {
            (true, true) => "neither createable nor updateable",
            (true, false) => "not createable",
            (false, true) => "not updateable",
            (false, false) => return None,
        };
        Some(format!(
            "`{name}` of {} is {missing}, and mode `{}` writes it",
            self.object,
            mode.as_str()
        ))
    }

    /// The record's external id value as text, or why it has none.
    fn external_value(&self, record: &SyncRecord) -> Result<String, String> {
        let ext = &self.external_id.name;
        let value = record
            .fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(ext))
            .map(|(_, v)| v);
        let text = match value {
            Some(Value::String(s)) => s.trim().to_string(),
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::Null) | None => String::new(),
            Some(other) => return Err(format!("`{ext}` is not text or a number: {other}")),
        };
        if text.is_empty() {
            return Err(format!("`{ext}` is missing or empty"));
        }
        if numeric(&self.external_id.kind) && text.parse::<f64>().is_err() {
            return Err(format!("`{ext}` is not a number: {text}"));
        }
        Ok(text)
    }

    /// The sObject a mirror update sends for the record keyed `key`.
    fn mirror_sobject(&self, key: &str, update: &Map<String, Value>) -> Value {
        let mut out = Map::with_capacity(update.len() + 2);
        out.insert("attributes".into(), json!({ "type": self.object }));
        out.insert(self.external_id.name.clone(), Value::from(key));
        for (name, value) in update {
            out.insert(name.clone(), value.clone());
        }
        Value::Object(out)
    }

    /// The sObject sent for `record`.
    fn sobject(&self, record: &SyncRecord) -> Value {
        let mut out = Map::with_capacity(record.fields.len() + 1);
        out.insert("attributes".into(), json!({ "type": self.object }));
        for (name, value) in &record.fields {
            out.insert(name.clone(), value.clone());
        }
        Value::Object(out)
    }

    /// Live records holding any of `values` in the external id field:
    /// lower-cased value -> record Id.
    async fn existing(
        &self,
        values: &[String],
    ) -> Result<HashMap<String, String>, SalesforceError> {
        let ext = &self.external_id.name;
        let mut found = HashMap::new();
        for chunk in values.chunks(LOOKUP_CHUNK) {
            let terms: Vec<String> = chunk
                .iter()
                .map(|v| match numeric(&self.external_id.kind) {
                    true => format!("{ext} = {v}"),
                    false => format!("{ext} = {}", soql_string(v)),
                })
                .collect();
            let soql = format!(
                "SELECT Id, {ext} FROM {} WHERE {}",
                self.object,
                terms.join(" OR ")
            );
            let mut request = SalesforceClient::query(&soql);
            loop {
                let page: QueryPage = self
                    .client
                    .http
                    .get_json(&request, &self.metrics)
                    .await
                    .map_err(|e| self.client.error(e, &self.object))?;
                for record in &page.records {
                    let id = record.get("Id").and_then(Value::as_str);
                    let value = record
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(ext))
                        .and_then(|(_, v)| match v {
                            Value::String(s) => Some(s.trim().to_lowercase()),
                            Value::Number(n) => Some(n.to_string()),
                            _ => None,
                        });
                    if let (Some(id), Some(value)) = (id, value) {
                        found.insert(value, id.to_string());
                    }
                }
                match page.next_records_url {
                    Some(next) if !page.done => request = weft_http::RequestSpec::get(next),
                    _ => break,
                }
            }
        }
        Ok(found)
    }

    /// Upserts `pending` (record index, sObject) in calls of 200; fills `results`.
    async fn upsert(
        &self,
        pending: &[(usize, Value)],
        results: &mut [Option<Result<(), String>>],
    ) -> Result<(), SalesforceError> {
        for chunk in pending.chunks(MAX_RECORDS_PER_CALL) {
            let records: Vec<Value> = chunk.iter().map(|(_, r)| r.clone()).collect();
            let request =
                SalesforceClient::composite_upsert(&self.object, &self.external_id.name, records);
            let answers: Vec<SaveResult> = self
                .client
                .http
                .get_json(&request, &self.metrics)
                .await
                .map_err(|e| self.client.error(e, &self.object))?;
            if answers.len() > chunk.len() {
                return Err(SalesforceError::Shape {
                    object: self.object.clone(),
                    what: "composite upsert answer".into(),
                    reason: format!("{} results for {} records", answers.len(), chunk.len()),
                });
            }
            for (&(i, _), answer) in chunk.iter().zip(&answers) {
                results[i] = Some(match answer.success {
                    true => Ok(()),
                    false => Err(reason(answer)),
                });
            }
        }
        Ok(())
    }

    /// Deletes the records whose external id is each of `deletes`' keys.
    async fn delete(
        &self,
        deletes: &[(usize, String)],
        results: &mut [Option<Result<(), String>>],
    ) -> Result<(), SalesforceError> {
        let values: Vec<String> = deletes.iter().map(|(_, k)| k.clone()).collect();
        let ids = self.existing(&values).await?;
        let mut targets: Vec<(usize, String)> = Vec::with_capacity(deletes.len());
        for (i, key) in deletes {
            match ids.get(&key.to_lowercase()) {
                Some(id) => targets.push((*i, id.clone())),
                // Salesforce does not have it: nothing left to delete.
                None => results[*i] = Some(Ok(())),
            }
        }
        if let Some(update) = &self.mirror_update {
            // Found records get the configured fields; nothing is deleted.
            let pending: Vec<(usize, Value)> = targets
                .iter()
                .filter_map(|&(i, _)| {
                    // `deletes` is in record order, so by index.
                    let at = deletes.binary_search_by_key(&i, |(j, _)| *j).ok()?;
                    let key = deletes[at].1.as_str();
                    Some((i, self.mirror_sobject(key, update)))
                })
                .collect();
            return self.upsert(&pending, results).await;
        }
        for chunk in targets.chunks(MAX_RECORDS_PER_CALL) {
            let chunk_ids: Vec<String> = chunk.iter().map(|(_, id)| id.clone()).collect();
            let answers: Vec<SaveResult> = self
                .client
                .http
                .get_json(
                    &SalesforceClient::composite_delete(&chunk_ids),
                    &self.metrics,
                )
                .await
                .map_err(|e| self.client.error(e, &self.object))?;
            let by_id: HashMap<&str, &SaveResult> = answers
                .iter()
                .filter_map(|a| a.id.as_deref().map(|id| (id, a)))
                .collect();
            for (n, (i, id)) in chunk.iter().enumerate() {
                let Some(answer) = by_id.get(id.as_str()).copied().or_else(|| answers.get(n))
                else {
                    continue;
                };
                let gone = answer
                    .errors
                    .iter()
                    .any(|e| e.status_code == "ENTITY_IS_DELETED");
                results[*i] = Some(match answer.success || gone {
                    true => Ok(()),
                    false => Err(reason(answer)),
                });
            }
        }
        Ok(())
    }
}

#[async_trait]
impl SyncTarget for SalesforceTarget {
    fn name(&self) -> &str {
        "salesforce"
    }

    fn required_fields(&self) -> Vec<String> {
        vec![self.external_id.name.clone()]
    }

    fn max_batch(&self) -> usize {
        match self.bulk_threshold < MAX_BULK_BATCH {
            true => MAX_BULK_BATCH,
            false => MAX_BATCH,
        }
    }

    fn modes(&self) -> &'static [SyncWriteMode] {
        SyncWriteMode::ALL
    }

    fn check(&self, spec: &SyncSpec) -> Result<(), BoxError> {
        let err = |reason: String| SalesforceError::Sync {
            sync: spec.name.clone(),
            reason,
        };
        for name in spec.mapping.keys() {
            if let Some(problem) = self.field_problem(name, spec.mode) {
                return Err(Box::new(err(problem)));
            }
        }
        if let (SyncWriteMode::Mirror, Some(update)) = (spec.mode, &self.mirror_update) {
            for name in update.keys() {
                if let Some(problem) = self.field_problem(name, SyncWriteMode::UpdateOnly) {
                    return Err(Box::new(err(format!("mirror_update: {problem}"))));
                }
            }
        }
        let ext = &self.external_id.name;
        let from = spec
            .mapping
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(ext))
            .map(|(_, column)| column);
        if from != Some(&spec.primary_key) {
            return Err(Box::new(err(format!(
                "`{ext}` must be mapped from the primary key `{}`: records are upserted, \
                 and mirror deletes found, by it",
                spec.primary_key
            ))));
        }
        Ok(())
    }

    /// Upserts creates and updates in calls of at most 200 records; under
    /// `update_only` / `create_only` first looks the external ids up and
    /// rejects what the mode forbids; deletes (mirror) look the keys up and
    /// delete the Ids found. A failed call fails the whole batch: nothing
    /// is acknowledged, and every call is safe to send again.
    fn preview(&self, _mode: SyncWriteMode, records: &[SyncRecord]) -> Vec<PlannedRequest> {
        let writes: Vec<Value> = records
            .iter()
            .filter(|r| r.action != SyncAction::Delete && self.external_value(r).is_ok())
            .map(|r| self.sobject(r))
            .collect();
        let mut out: Vec<PlannedRequest> = writes
            .chunks(MAX_RECORDS_PER_CALL)
            .map(|chunk| {
                SalesforceClient::composite_upsert(
                    &self.object,
                    &self.external_id.name,
                    chunk.to_vec(),
                )
                .planned()
            })
            .collect();
        let deletes: Vec<&SyncRecord> = records
            .iter()
            .filter(|r| r.action == SyncAction::Delete)
            .collect();
        if let (Some(update), false) = (&self.mirror_update, deletes.is_empty()) {
            let updates: Vec<Value> = deletes
                .iter()
                .map(|r| self.mirror_sobject(r.key.trim(), update))
                .collect();
            for chunk in updates.chunks(MAX_RECORDS_PER_CALL) {
                out.push(
                    SalesforceClient::composite_upsert(
                        &self.object,
                        &self.external_id.name,
                        chunk.to_vec(),
                    )
                    .planned(),
                );
            }
        } else if !deletes.is_empty() {
            out.push(PlannedRequest {
                method: "DELETE".into(),
                path: "composite/sobjects?ids={the Ids found by a SOQL lookup of the keys}\
                       &allOrNone=false"
                    .into(),
                body: Value::Null,
            });
        }
        out
    }

    async fn apply(
        &self,
        mode: SyncWriteMode,
        records: Vec<SyncRecord>,
    ) -> Result<Vec<RecordOutcome>, BoxError> {
        self.apply_journaled(mode, records, &NoJournal).await
    }

    /// As `apply`; a batch with more writes than `sync_bulk_threshold` is
    /// one Bulk API 2.0 ingest job, reported to `journal` once created.
    async fn apply_journaled(
        &self,
        mode: SyncWriteMode,
        records: Vec<SyncRecord>,
        journal: &dyn SyncJournal,
    ) -> Result<Vec<RecordOutcome>, BoxError> {
        let mut results: Vec<Option<Result<(), String>>> = vec![None; records.len()];
        let mut writes: Vec<(usize, String)> = Vec::with_capacity(records.len());
        let mut deletes: Vec<(usize, String)> = Vec::new();
        for (i, record) in records.iter().enumerate() {
            if record.action == SyncAction::Delete {
                deletes.push((i, record.key.trim().to_string()));
                continue;
            }
            match self.external_value(record) {
                Ok(value) => writes.push((i, value)),
                Err(reason) => results[i] = Some(Err(reason)),
            }
        }
        if matches!(mode, SyncWriteMode::UpdateOnly | SyncWriteMode::CreateOnly)
            && !writes.is_empty()
        {
            let values: Vec<String> = writes.iter().map(|(_, v)| v.clone()).collect();
            let existing = self.existing(&values).await?;
            let ext = &self.external_id.name;
            writes.retain(|(i, value)| {
                let found = existing.get(&value.to_lowercase());
                let refused = match (mode, found) {
                    (SyncWriteMode::UpdateOnly, None) => Some(format!(
                        "update_only: no {} has {ext} = {value}; not created",
                        self.object
                    )),
                    (SyncWriteMode::CreateOnly, Some(id)) => Some(format!(
                        "create_only: {} {id} already has {ext} = {value}; not changed",
                        self.object
                    )),
                    _ => None,
                };
                match refused {
                    Some(reason) => {
                        results[*i] = Some(Err(reason));
                        false
                    }
                    None => true,
                }
            });
        }
        if writes.len() > self.bulk_threshold {
            self.bulk_upsert(&records, &writes, journal, &mut results)
                .await?;
        } else {
            let pending: Vec<(usize, Value)> = writes
                .iter()
                .map(|&(i, _)| (i, self.sobject(&records[i])))
                .collect();
            self.upsert(&pending, &mut results).await?;
        }
        if !deletes.is_empty() {
            self.delete(&deletes, &mut results).await?;
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

    /// Resumes an ingest job an earlier run journaled: an open job (never
    /// started) is aborted and sent again (`None`); one Salesforce no
    /// longer knows, or that ended having processed nothing, is sent again;
    /// otherwise the job is waited for and its results read.
    async fn resume_job(&self, job: &PendingJob) -> Result<Option<Vec<RecordOutcome>>, BoxError> {
        let ingest = self.ingest();
        let Some(now) = ingest.state(&job.job).await? else {
            return Ok(None);
        };
        if now.state == "Open" {
            ingest.abort(&job.job).await;
            return Ok(None);
        }
        let done = match crate::ingest::is_final(&now.state) {
            true => now,
            false => ingest.finished(&job.job).await?,
        };
        let outcomes = ingest.outcomes(&job.job).await?;
        if outcomes.is_empty() {
            return Ok(None);
        }
        let ended = ended_reason(&done);
        Ok(Some(
            job.records
                .iter()
                .map(|record| RecordOutcome {
                    key: record.key.clone(),
                    result: match self.external_value(record) {
                        Ok(value) => outcome_of(&outcomes, &value, &ended),
                        Err(reason) => Err(reason),
                    },
                })
                .collect(),
        ))
    }
}

/// Why a record no result row mentions is rejected: the job's end.
fn ended_reason(job: &crate::ingest::IngestJob) -> String {
    match (job.state.as_str(), job.error_message.as_deref()) {
        ("JobComplete", _) => NO_RESULT.to_string(),
        (state, Some(m)) if !m.is_empty() => {
            format!("Salesforce's ingest job {} ended {state}: {m}", job.id)
        }
        (state, _) => format!("Salesforce's ingest job {} ended {state}", job.id),
    }
}

/// The outcome of the record with external id `value` in a job's results.
fn outcome_of(outcomes: &Outcomes, value: &str, ended: &str) -> Result<(), String> {
    outcomes
        .get(&value.trim().to_lowercase())
        .cloned()
        .unwrap_or_else(|| Err(ended.to_string()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn write_permissions_come_from_describe() {
        let body = json!({
            "name": "Contact",
            "fields": [
                {"name": "Id", "type": "id", "createable": false, "updateable": false},
                {"name": "Email", "type": "email", "createable": true, "updateable": true},
                {"name": "Ext__c", "type": "string", "createable": true, "updateable": true,
                 "externalId": true}
            ]
        });
        let (name, fields) = writable_fields(body.to_string().as_bytes()).unwrap();
        assert_eq!(name, "Contact");
        assert_eq!(fields.len(), 3);
        assert!(!fields[0].createable && !fields[0].updateable && !fields[0].external_id);
        assert!(fields[1].createable && fields[1].updateable && !fields[1].external_id);
        assert_eq!(fields[1].kind, "email");
        assert!(fields[2].external_id);
        assert!(writable_fields(b"[]").is_err());
    }

    #[test]
    fn soql_literals_are_escaped() {
        assert_eq!(soql_string("a@b.com"), "'a@b.com'");
        assert_eq!(soql_string("o'neil\\x"), "'o\\'neil\\\\x'");
    }

    #[test]
    fn reasons_carry_code_and_message() {
        let r: SaveResult = serde_json::from_value(json!({
            "id": null, "success": false,
            "errors": [{"statusCode": "INVALID_EMAIL_ADDRESS", "message": "Email: invalid", "fields": ["Email"]}]
        }))
        .unwrap();
        assert_eq!(reason(&r), "INVALID_EMAIL_ADDRESS: Email: invalid");
        let empty: SaveResult = serde_json::from_value(json!({"success": false})).unwrap();
        assert_eq!(reason(&empty), "rejected by Salesforce");
    }
}
