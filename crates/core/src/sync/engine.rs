//! The sync driver: check the mapping, plan, then send batch after batch,
//! recording each batch's outcomes before the next is sent.

use std::collections::HashMap;

use super::{
    RecordOutcome, SyncAction, SyncPlan, SyncRecord, SyncReport, SyncSpec, SyncStore, SyncTarget,
};
use crate::{CoreError, new_load_id};

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
/// 2. [`SyncStore::plan`] diffs the model against the snapshot.
/// 3. For each action the mode sends (creates, updates, then deletes in
///    mirror mode), planned records are paged in key order, in batches of
///    `min(max_batch, batch_size)`; each batch is applied and its outcomes
///    recorded before the next is read. A crash therefore loses at most the
///    batch in flight, which the next run sends again (the snapshot only
///    holds acknowledged rows): targets must upsert idempotently by key.
///
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
    let actions = spec.mode.actions();
    let full = store.plan(spec).await?;
    let planned = |a: SyncAction| {
        if actions.contains(&a) {
            count(&full, a)
        } else {
            0
        }
    };
    let plan = SyncPlan {
        creates: planned(SyncAction::Create),
        updates: planned(SyncAction::Update),
        deletes: planned(SyncAction::Delete),
        model_rows: full.model_rows,
    };
    let mut report = SyncReport {
        sync: spec.name.clone(),
        run_id: new_load_id(),
        plan,
        dry_run: options.dry_run,
        ..SyncReport::default()
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
        batches = report.batches, "sync finished"
    );
    Ok(report)
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
        let outcomes = target
            .apply(spec.mode, records.clone())
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
fn align(records: &[SyncRecord], outcomes: Vec<RecordOutcome>) -> Vec<RecordOutcome> {
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
