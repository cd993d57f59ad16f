//! The sync driver: check the mapping, plan, then send batch after batch,
//! recording each batch's outcomes before the next is sent.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;

use super::{
    PendingJob, RecordOutcome, SyncAction, SyncJournal, SyncPlan, SyncRecord, SyncReport, SyncSpec,
    SyncStore, SyncTarget,
};
use crate::{BoxError, CoreError, new_load_id};

/// Sample records shown per action by a dry run.
const SAMPLES: usize = 5;

/// How one sync run behaves.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncOptions {
    /// Plan and report counts and samples only: the target is never called
    /// and nothing is recorded.
    pub dry_run: bool,
    /// Records per [`SyncTarget::apply`] call, capped by the target's
    /// [`SyncTarget::max_batch`] (which is the default).
    pub batch_size: Option<usize>,
}

/// Checks that `target` can take `spec` before anything is sent: the mapping
/// covers every [`SyncTarget::required_fields`] ([`CoreError::SyncMapping`]),
/// the target honours the spec's mode ([`CoreError::SyncMode`]) and its own
/// [`SyncTarget::check`] passes ([`CoreError::SyncSpec`]).
pub fn check_sync(target: &dyn SyncTarget, spec: &SyncSpec) -> Result<(), CoreError> {
    if let Some(field) = target
        .required_fields()
        .into_iter()
        .find(|f| !spec.mapping.contains_key(f))
    {
        return Err(CoreError::SyncMapping {
            sync: spec.name.clone(),
            target: target.name().to_string(),
            field,
        });
    }
    let modes = target.modes();
    if !modes.contains(&spec.mode) {
        return Err(CoreError::SyncMode {
            sync: spec.name.clone(),
            target: target.name().to_string(),
            mode: spec.mode.as_str(),
            supported: modes
                .iter()
                .map(|m| m.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    target.check(spec).map_err(|source| CoreError::SyncSpec {
        sync: spec.name.clone(),
        target: target.name().to_string(),
        source,
    })
}

/// Runs one sync: `store`'s model out to `target`, as `spec` maps it.
///
/// 1. [`check_sync`] must pass, before anything else is called.
/// 2. Jobs an earlier run submitted and did not see finish
///    ([`SyncStore::pending_jobs`]) are resumed, oldest first: the target
///    reads each job's results ([`SyncTarget::resume_job`]) and they are
///    recorded exactly as a fresh batch's, with the row hashes the job
///    carried (a row changed since is then planned as an update), and the
///    job is finished. A job the target cannot resume (`None`, or a job
///    journaled by another target) is finished with a warning and its
///    records are planned again. A resume that fails stops the run before
///    anything is planned (the job stays pending), so a batch in a job is
///    never sent a second time while the job may still complete.
/// 3. [`SyncStore::plan`] diffs the model against the snapshot.
/// 4. For each action the mode sends (creates, updates, then deletes in
///    mirror mode), planned records are paged in key order, in batches of
///    `min(max_batch, batch_size)`; each batch is applied and its outcomes
///    recorded before the next is read. A crash therefore loses at most the
///    batch in flight, which the next run sends again (the snapshot only
///    holds acknowledged rows): targets must upsert idempotently by key.
///    Batches go through [`SyncTarget::apply_journaled`] with a journal
///    that saves each job the target submits ([`SyncStore::save_job`]);
///    a batch's jobs are finished once its outcomes are recorded, so a
///    crash while a job runs resumes it (step 2) instead of re-sending.
///    (A crash between recording and finishing resumes the job once more:
///    its outcomes are recorded again, the snapshot unchanged.)
///
/// A dry run resumes nothing and writes nothing.
/// A batch the target fails as a whole stops the run with
/// [`CoreError::SyncTarget`]; batches recorded before it stay recorded.
/// The report's plan counts only the actions the mode sends.
pub async fn run_sync(
    store: &dyn SyncStore,
    target: &dyn SyncTarget,
    spec: &SyncSpec,
    options: SyncOptions,
) -> Result<SyncReport, CoreError> {
    check_sync(target, spec)?;
    let mut report = SyncReport {
        sync: spec.name.clone(),
        run_id: new_load_id(),
        dry_run: options.dry_run,
        ..SyncReport::default()
    };
    if !options.dry_run {
        resume(store, target, spec, &mut report).await?;
    }
    let actions = spec.mode.actions();
    let full = store.plan(spec).await?;
    let planned = |a: SyncAction| {
        if actions.contains(&a) {
            count(&full, a)
        } else {
            0
        }
    };
    report.plan = SyncPlan {
        creates: planned(SyncAction::Create),
        updates: planned(SyncAction::Update),
        deletes: planned(SyncAction::Delete),
        model_rows: full.model_rows,
    };
    let batch = options
        .batch_size
        .unwrap_or(usize::MAX)
        .min(target.max_batch())
        .max(1);
    tracing::info!(
        sync = %spec.name, target = target.name(), run_id = %report.run_id,
        creates = report.plan.creates, updates = report.plan.updates,
        deletes = report.plan.deletes, dry_run = options.dry_run, "sync planned"
    );
    for &action in actions {
        if count(&report.plan, action) == 0 {
            continue;
        }
        if options.dry_run {
            let sample = store.planned(spec, action, None, SAMPLES).await?;
            report.requests.extend(target.preview(spec.mode, &sample));
            report.samples.extend(sample);
            continue;
        }
        send(store, target, spec, action, batch, &mut report).await?;
    }
    tracing::info!(
        sync = %spec.name, run_id = %report.run_id, created = report.created,
        updated = report.updated, deleted = report.deleted, rejected = report.rejected,
        resumed = report.resumed, batches = report.batches, "sync finished"
    );
    Ok(report)
}

/// Resumes the pending jobs of `spec`'s sync (step 2 of [`run_sync`]).
async fn resume(
    store: &dyn SyncStore,
    target: &dyn SyncTarget,
    spec: &SyncSpec,
    report: &mut SyncReport,
) -> Result<(), CoreError> {
    for job in store.pending_jobs(&spec.name).await? {
        if job.target != target.name() {
            tracing::warn!(
                sync = %spec.name, job = %job.job, journaled_by = %job.target,
                target = target.name(), records = job.records.len(),
                "a pending job of another destination cannot be resumed; its records are planned again"
            );
            store.finish_job(&spec.name, &job.job).await?;
            continue;
        }
        let resumed = target
            .resume_job(&job)
            .await
            .map_err(|source| CoreError::SyncTarget {
                sync: spec.name.clone(),
                target: target.name().to_string(),
                action: job
                    .records
                    .first()
                    .map_or_else(|| "resume".to_string(), |r| r.action.to_string()),
                records: job.records.len(),
                first_key: job
                    .records
                    .first()
                    .map(|r| r.key.clone())
                    .unwrap_or_default(),
                source,
            })?;
        match resumed {
            Some(outcomes) if !job.records.is_empty() => {
                let outcomes = align(&job.records, outcomes);
                store
                    .record(spec, &report.run_id, &job.records, &outcomes)
                    .await?;
                let rejected = outcomes.iter().filter(|o| o.result.is_err()).count() as u64;
                report.resumed += outcomes.len() as u64 - rejected;
                report.rejected += rejected;
                tracing::info!(
                    sync = %spec.name, job = %job.job, submitted_by = %job.run_id,
                    records = outcomes.len(), rejected, "sync job resumed"
                );
            }
            Some(_) => {}
            None => tracing::warn!(
                sync = %spec.name, job = %job.job, submitted_by = %job.run_id,
                target = target.name(), records = job.records.len(),
                "a pending job cannot be resumed; its records are planned again"
            ),
        }
        store.finish_job(&spec.name, &job.job).await?;
    }
    Ok(())
}

/// The journal one batch is applied with: saves each job the target
/// submits and remembers it, so it is finished once the batch is recorded.
struct RunJournal<'a> {
    store: &'a dyn SyncStore,
    sync: &'a str,
    run_id: &'a str,
    target: &'a str,
    jobs: Mutex<Vec<String>>,
}

impl RunJournal<'_> {
    /// The jobs saved so far (and forgets them).
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.jobs.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

#[async_trait]
impl SyncJournal for RunJournal<'_> {
    async fn submitted(&self, job: &str, records: &[SyncRecord]) -> Result<(), BoxError> {
        let pending = PendingJob {
            sync: self.sync.to_string(),
            run_id: self.run_id.to_string(),
            target: self.target.to_string(),
            job: job.to_string(),
            records: records.to_vec(),
            submitted_at: chrono::Utc::now(),
        };
        self.store.save_job(&pending).await?;
        self.jobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(job.to_string());
        tracing::debug!(
            sync = self.sync,
            job,
            records = records.len(),
            "sync job journaled"
        );
        Ok(())
    }
}

/// Pages through one action's planned records and sends them batch by batch.
async fn send(
    store: &dyn SyncStore,
    target: &dyn SyncTarget,
    spec: &SyncSpec,
    action: SyncAction,
    batch: usize,
    report: &mut SyncReport,
) -> Result<(), CoreError> {
    let mut after: Option<String> = None;
    loop {
        let records = store.planned(spec, action, after.as_deref(), batch).await?;
        let Some(last) = records.last() else {
            return Ok(());
        };
        if after.as_deref().is_some_and(|a| last.key.as_str() <= a) {
            // A store that does not honour `after_key` would loop forever.
            return Ok(());
        }
        after = Some(last.key.clone());
        let short = records.len() < batch;
        let journal = RunJournal {
            store,
            sync: &spec.name,
            run_id: &report.run_id,
            target: target.name(),
            jobs: Mutex::default(),
        };
        let outcomes = target
            .apply_journaled(spec.mode, records.clone(), &journal)
            .await
            .map_err(|source| CoreError::SyncTarget {
                sync: spec.name.clone(),
                target: target.name().to_string(),
                action: action.to_string(),
                records: records.len(),
                first_key: records.first().map(|r| r.key.clone()).unwrap_or_default(),
                source,
            })?;
        let outcomes = align(&records, outcomes);
        store
            .record(spec, &report.run_id, &records, &outcomes)
            .await?;
        for job in journal.take() {
            store.finish_job(&spec.name, &job).await?;
        }
        report.batches += 1;
        for o in &outcomes {
            match (&o.result, action) {
                (Ok(()), SyncAction::Create) => report.created += 1,
                (Ok(()), SyncAction::Update) => report.updated += 1,
                (Ok(()), SyncAction::Delete) => report.deleted += 1,
                (Err(_), _) => report.rejected += 1,
            }
        }
        tracing::debug!(
            sync = %spec.name, %action, records = records.len(), "sync batch recorded"
        );
        if short {
            return Ok(());
        }
    }
}

/// One outcome per record, in record order; a record the target gave no
/// outcome for counts as rejected (so it is not snapshotted, and is retried).
pub(super) fn align(records: &[SyncRecord], outcomes: Vec<RecordOutcome>) -> Vec<RecordOutcome> {
    let mut by_key: HashMap<String, Result<(), String>> =
        outcomes.into_iter().map(|o| (o.key, o.result)).collect();
    records
        .iter()
        .map(|r| RecordOutcome {
            key: r.key.clone(),
            result: by_key.remove(&r.key).unwrap_or_else(|| {
                Err("the destination returned no outcome for this record".into())
            }),
        })
        .collect()
}

fn count(plan: &SyncPlan, action: SyncAction) -> u64 {
    match action {
        SyncAction::Create => plan.creates,
        SyncAction::Update => plan.updates,
        SyncAction::Delete => plan.deletes,
    }
}
