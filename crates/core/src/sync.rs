//! Reverse sync ("reverse ETL"): warehouse rows out to a SaaS tool.
//!
//! The diff is computed IN the warehouse against a snapshot of what the
//! destination acknowledged (`_weft._weft_sync_snapshot_{sync}`: key, row
//! hash), so a re-run sends only what changed. A [`SyncStore`] (the
//! warehouse) plans and records; a [`SyncTarget`] (a SaaS connector) applies
//! records and answers per record; [`run_sync`] drives them.
//!
//! Contract: only records the target acknowledged update the snapshot;
//! rejected ones are recorded with the vendor's reason in `_weft_sync_rejects`
//! and, not being in the snapshot, are planned again next run. Every write is
//! logged in `_weft_sync_log`.
//!
//! Asynchronous jobs (Zendesk job statuses, Salesforce Bulk ingest) are
//! resumable. A target that hands a batch to a destination job reports the
//! job to a [`SyncJournal`] before it waits on it
//! ([`SyncTarget::apply_journaled`]); the journal keeps it in the store as a
//! [`PendingJob`] (`_weft._weft_sync_jobs`) until the job's outcomes are
//! recorded. A run killed while the job runs leaves it pending, and the next
//! run first asks the target to read its results
//! ([`SyncTarget::resume_job`]) and records them, so the batch is never sent
//! twice; only a job the destination no longer knows is sent again.

use std::collections::BTreeMap;
use std::fmt;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{BoxError, CoreError};

mod engine;
mod rollback;

pub use engine::{SyncOptions, check_sync, run_sync};
pub use rollback::{ROLLED_BACK_HASH_PREFIX, RollbackReport, Skipped, rollback_sync};

/// Which changes a sync sends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncWriteMode {
    /// Create new records and update changed ones.
    #[default]
    Upsert,
    /// Only update records the destination already has (from earlier syncs).
    UpdateOnly,
    /// Only create records never synced before.
    CreateOnly,
    /// Upsert, and delete (or unsubscribe) records that left the model.
    Mirror,
}

impl SyncWriteMode {
    /// Every mode, in declaration order.
    pub const ALL: &'static [SyncWriteMode] = &[
        SyncWriteMode::Upsert,
        SyncWriteMode::UpdateOnly,
        SyncWriteMode::CreateOnly,
        SyncWriteMode::Mirror,
    ];

    /// The mode's name in config (`update_only`).
    pub fn as_str(self) -> &'static str {
        match self {
            SyncWriteMode::Upsert => "upsert",
            SyncWriteMode::UpdateOnly => "update_only",
            SyncWriteMode::CreateOnly => "create_only",
            SyncWriteMode::Mirror => "mirror",
        }
    }

    /// The actions this mode sends, in the order they are sent.
    pub fn actions(self) -> &'static [SyncAction] {
        match self {
            SyncWriteMode::Upsert => &[SyncAction::Create, SyncAction::Update],
            SyncWriteMode::UpdateOnly => &[SyncAction::Update],
            SyncWriteMode::CreateOnly => &[SyncAction::Create],
            SyncWriteMode::Mirror => &[SyncAction::Create, SyncAction::Update, SyncAction::Delete],
        }
    }
}

/// What to do with one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncAction {
    /// Not in the snapshot: new at the destination.
    Create,
    /// In the snapshot with another row hash.
    Update,
    /// In the snapshot, gone from the model (mirror mode only).
    Delete,
}

impl fmt::Display for SyncAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SyncAction::Create => "create",
            SyncAction::Update => "update",
            SyncAction::Delete => "delete",
        })
    }
}

/// One record to send: its key, action, row hash and destination fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncRecord {
    /// The model's primary key value.
    pub key: String,
    /// What to do.
    pub action: SyncAction,
    /// Hash of the mapped row (what the snapshot stores once acknowledged).
    pub row_hash: String,
    /// Destination field name -> value, after the config's mapping
    /// (`destination_field = "model_column"`); empty for deletes.
    pub fields: BTreeMap<String, serde_json::Value>,
}

/// The destination's answer for one record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordOutcome {
    /// The record's key.
    pub key: String,
    /// `Ok` when acknowledged; `Err` carries the API's reason (a reject).
    pub result: Result<(), String>,
}

/// What the planner found, counted per action.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SyncPlan {
    /// Records to create.
    pub creates: u64,
    /// Records to update.
    pub updates: u64,
    /// Records to delete.
    pub deletes: u64,
    /// Rows in the model.
    pub model_rows: u64,
}

/// One request a destination would send, as a dry run shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedRequest {
    /// HTTP method.
    pub method: String,
    /// Path (and query) relative to the API's base URL.
    pub path: String,
    /// The body (JSON; form bodies as an object of their fields), or null.
    pub body: serde_json::Value,
}

/// A SaaS destination for reverse sync.
#[async_trait]
pub trait SyncTarget: Send + Sync {
    /// Destination name (`mailchimp`), used in logs and reports.
    fn name(&self) -> &str;

    /// Destination fields every record must map (e.g. Mailchimp's `email_address`);
    /// checked against the mapping before anything is sent.
    fn required_fields(&self) -> Vec<String>;

    /// Largest batch [`SyncTarget::apply`] accepts.
    fn max_batch(&self) -> usize;

    /// The write modes this destination honours. A sync in any other mode is
    /// refused by [`check_sync`] before anything is sent, never approximated.
    fn modes(&self) -> &'static [SyncWriteMode];

    /// The requests [`SyncTarget::apply`] would send for `records` in
    /// `mode`, without sending anything (shown by `weft sync --dry-run`).
    /// Requests that depend on an answer (an update after a search) are
    /// listed with the path they would take; credentials are never part of
    /// a preview (they travel in headers). The default previews nothing.
    fn preview(&self, _mode: SyncWriteMode, _records: &[SyncRecord]) -> Vec<PlannedRequest> {
        Vec::new()
    }

    /// Destination-specific checks of a sync's spec (which key the
    /// destination identifies records by, which fields it knows), run by
    /// [`check_sync`] before anything is sent; the error names the field.
    fn check(&self, _spec: &SyncSpec) -> Result<(), BoxError> {
        Ok(())
    }

    /// Applies a batch; returns exactly one outcome per record (any order).
    /// An `Err` means the whole batch failed (nothing acknowledged).
    ///
    /// `mode` is the sync's mode (one of [`SyncTarget::modes`]). Where the
    /// destination's own data can tell, a target enforces it there, not only
    /// against weft's snapshot: under `update_only` a record the destination
    /// does not have is rejected rather than created; under `create_only` a
    /// record it already has is rejected rather than changed.
    async fn apply(
        &self,
        mode: SyncWriteMode,
        records: Vec<SyncRecord>,
    ) -> Result<Vec<RecordOutcome>, BoxError>;

    /// Applies a batch as [`SyncTarget::apply`] does, reporting every
    /// asynchronous job it submits to `journal`. This is what [`run_sync`]
    /// calls; the default ignores the journal and calls `apply`, so a
    /// target that answers synchronously implements `apply` only.
    ///
    /// A target whose destination answers a write with a job reference (a
    /// job id to poll) overrides this method and [`SyncTarget::resume_job`]:
    /// as soon as the destination has accepted a job, and **before** waiting
    /// on it, it calls [`SyncJournal::submitted`] with the job's reference
    /// and exactly the records the job carries, in the order the job refers
    /// to them (a job's results by index map to those records). If the
    /// journal fails, the target returns that error without waiting: a job
    /// that is not journaled cannot be resumed. Once this method returns
    /// `Ok`, the engine records the outcomes and then drops the batch's
    /// jobs from the journal; after an `Err` (or when the future is
    /// dropped, or the process dies) they stay pending, and the next run
    /// resumes them.
    async fn apply_journaled(
        &self,
        mode: SyncWriteMode,
        records: Vec<SyncRecord>,
        journal: &dyn SyncJournal,
    ) -> Result<Vec<RecordOutcome>, BoxError> {
        let _ = journal;
        self.apply(mode, records).await
    }

    /// Reads the outcomes of `job`, which an earlier run journaled and did
    /// not see finish, without sending its records again: waits (bounded)
    /// for the job to end, then answers one outcome per record of
    /// `job.records` (any order), as `apply` would have.
    ///
    /// `Ok(None)` means the job cannot be resumed (the destination no
    /// longer knows it, it expired, or it ended without applying anything):
    /// the engine drops it and the plan sends its records again, so only
    /// answer `None` when sending them again is safe. An `Err` (the
    /// destination is unreachable, the wait timed out) leaves the job
    /// pending and stops the run before anything is planned. The default,
    /// for targets that never journal jobs, is `Ok(None)`.
    async fn resume_job(&self, job: &PendingJob) -> Result<Option<Vec<RecordOutcome>>, BoxError> {
        let _ = job;
        Ok(None)
    }
}

/// Where a target reports the asynchronous jobs it submits (see
/// [`SyncTarget::apply_journaled`]). [`run_sync`] hands each batch a
/// journal that saves a [`PendingJob`] in the [`SyncStore`].
#[async_trait]
pub trait SyncJournal: Send + Sync {
    /// Notes that the destination accepted job `job` (its own, opaque
    /// reference: what [`SyncTarget::resume_job`] needs to find the job
    /// again) carrying `records`. Returns once the note is durable, so a
    /// crash from then on resumes the job instead of re-sending it.
    async fn submitted(&self, job: &str, records: &[SyncRecord]) -> Result<(), BoxError>;
}

/// A journal that keeps nothing, for calling
/// [`SyncTarget::apply_journaled`] outside a run (a target's `apply` may
/// delegate to it with this journal).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoJournal;

#[async_trait]
impl SyncJournal for NoJournal {
    async fn submitted(&self, _job: &str, _records: &[SyncRecord]) -> Result<(), BoxError> {
        Ok(())
    }
}

/// A job a target submitted and a run did not see finish (a row of
/// `_weft._weft_sync_jobs`): what [`SyncTarget::resume_job`] reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingJob {
    /// The sync's name.
    pub sync: String,
    /// The run that submitted the job.
    pub run_id: String,
    /// The target's name ([`SyncTarget::name`]) that submitted it.
    pub target: String,
    /// The destination's reference for the job (opaque to weft).
    pub job: String,
    /// The records the job carries, with the row hashes they were planned
    /// with, in the order the job refers to them.
    pub records: Vec<SyncRecord>,
    /// When the job was journaled.
    pub submitted_at: DateTime<Utc>,
}

/// One write a sync run logged (a row of `_weft._weft_sync_log`), with
/// its pre-image: what [`rollback_sync`] undoes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyncLogEntry {
    /// The model's primary key value.
    pub key: String,
    /// What was sent.
    pub action: SyncAction,
    /// Whether the destination acknowledged it (a reject changed nothing).
    pub acknowledged: bool,
    /// The destination fields sent (empty for deletes).
    pub sent: BTreeMap<String, serde_json::Value>,
    /// The pre-image: the fields weft last sent for the key, and the
    /// destination acknowledged, before this write (`None` when it never
    /// sent any, e.g. for a create).
    pub previous: Option<BTreeMap<String, serde_json::Value>>,
    /// Whether a later acknowledged write of the key exists (a later run,
    /// or a rollback of this one).
    pub superseded: bool,
}

/// Where sync snapshots, rejects and logs live (the warehouse).
#[async_trait]
pub trait SyncStore: Send + Sync {
    /// Computes the diff of `spec`'s model against the snapshot, counted per action.
    async fn plan(&self, spec: &SyncSpec) -> Result<SyncPlan, CoreError>;

    /// The planned records of one action, in key order, after `after_key`
    /// (exclusive), at most `limit` — so a large plan streams in pages.
    async fn planned(
        &self,
        spec: &SyncSpec,
        action: SyncAction,
        after_key: Option<&str>,
        limit: usize,
    ) -> Result<Vec<SyncRecord>, CoreError>;

    /// Records a batch's outcomes in one transaction: acknowledged records
    /// update the snapshot (deletes leave it), rejects go to
    /// `_weft_sync_rejects`, every record goes to `_weft_sync_log`.
    async fn record(
        &self,
        spec: &SyncSpec,
        run_id: &str,
        records: &[SyncRecord],
        outcomes: &[RecordOutcome],
    ) -> Result<(), CoreError>;

    /// Saves `job` (upserts it by `(job.sync, job.job)`) durably before
    /// returning: from then on a crashed run resumes it.
    async fn save_job(&self, job: &PendingJob) -> Result<(), CoreError>;

    /// The jobs of `sync` saved and not finished, oldest first.
    async fn pending_jobs(&self, sync: &str) -> Result<Vec<PendingJob>, CoreError>;

    /// Drops job `job` of `sync` from the pending jobs (its outcomes are
    /// recorded, or it cannot be resumed). Finishing an unknown job is not
    /// an error.
    async fn finish_job(&self, sync: &str, job: &str) -> Result<(), CoreError>;

    /// The writes run `run_id` of `sync` logged, in key order, each with its
    /// pre-image and whether a later write superseded it (empty when the
    /// run is unknown). The default, for a store that keeps no log, fails.
    async fn run_log(&self, sync: &str, run_id: &str) -> Result<Vec<SyncLogEntry>, CoreError> {
        let _ = run_id;
        Err(CoreError::SyncStore {
            sync: sync.to_string(),
            step: "read the run's log",
            source: "this sync store keeps no log of what it sent".into(),
        })
    }
}

/// One configured sync: which model, keyed how, mapped to which fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncSpec {
    /// Sync name (snapshot table `_weft_sync_snapshot_{name}`).
    pub name: String,
    /// The model: a table or view name in the warehouse (e.g. `models.people`).
    pub model: String,
    /// The model's primary key column.
    pub primary_key: String,
    /// Which changes to send.
    #[serde(default)]
    pub mode: SyncWriteMode,
    /// Destination field -> model column (`email_address = "email"`).
    pub mapping: BTreeMap<String, String>,
}

/// What a sync run did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SyncReport {
    /// Sync name.
    pub sync: String,
    /// This run's id (in `_weft_sync_log`).
    pub run_id: String,
    /// The plan.
    pub plan: SyncPlan,
    /// Records acknowledged, per action.
    pub created: u64,
    /// Updated and acknowledged.
    pub updated: u64,
    /// Deleted (or unsubscribed) and acknowledged.
    pub deleted: u64,
    /// Records the destination rejected (with reasons in `_weft_sync_rejects`),
    /// in this run's batches and in the jobs it resumed.
    pub rejected: u64,
    /// Records acknowledged in jobs an earlier run submitted and did not
    /// see finish, whose results this run read ([`SyncTarget::resume_job`]).
    /// They are not counted in `created`, `updated` or `deleted` (which
    /// count this run's own plan); their rejects are counted in `rejected`.
    /// So every outcome a run records is in exactly one of `created`,
    /// `updated`, `deleted`, `resumed` and `rejected`.
    pub resumed: u64,
    /// API batches sent.
    pub batches: u64,
    /// True when nothing was sent (`--dry-run`).
    pub dry_run: bool,
    /// Up to 5 sample records per action (dry runs).
    pub samples: Vec<SyncRecord>,
    /// The requests the samples would be sent as (dry runs), per action.
    pub requests: Vec<PlannedRequest>,
}
