//! Undoing one sync run from its log: restore the pre-images of its updates,
//! delete what it created, create again what it deleted.

use std::collections::BTreeMap;

use serde::Serialize;

use super::engine::align;
use super::{
    SyncAction, SyncLogEntry, SyncRecord, SyncSpec, SyncStore, SyncTarget, SyncWriteMode,
    check_sync,
};
use crate::{CoreError, new_load_id};

/// The row hash a restored record is snapshotted with: never a model row's
/// hash, so the next sync plans the model's values again (fix the model
/// first, or they are sent again).
pub const ROLLED_BACK_HASH_PREFIX: &str = "rolled-back:";

/// A write of the run that a rollback leaves as it is, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    /// The model's primary key value.
    pub key: String,
    /// What the run did to it.
    pub action: SyncAction,
    /// Why it is not undone.
    pub reason: String,
}

/// What [`rollback_sync`] did (or would do, dry).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RollbackReport {
    /// Sync name.
    pub sync: String,
    /// The run rolled back (its id in `_weft._weft_sync_log`).
    pub of_run: String,
    /// This rollback's own run id (its writes are logged under it).
    pub run_id: String,
    /// Writes of the run the destination had acknowledged.
    pub writes: u64,
    /// Updates restored to their pre-image, acknowledged.
    pub restored: u64,
    /// Records the run created, deleted again, acknowledged.
    pub uncreated: u64,
    /// Records the run deleted, created again from their pre-image, acknowledged.
    pub recreated: u64,
    /// Restoring writes the destination rejected (reasons in `_weft_sync_rejects`).
    pub rejected: u64,
    /// Writes left as they are, each with its reason.
    pub skipped: Vec<Skipped>,
    /// True when nothing was sent (`--dry-run`).
    pub dry_run: bool,
    /// The records a dry run would send.
    pub planned: Vec<SyncRecord>,
}

impl RollbackReport {
    /// Records sent (or, dry, to be sent).
    pub fn sent(&self) -> u64 {
        self.restored + self.uncreated + self.recreated + self.rejected
    }
}

/// Undoes run `run_id` of `spec`'s sync at `target`, from what `store`
/// logged ([`SyncStore::run_log`]), as a run of its own:
///
/// - an acknowledged update is sent again with its pre-image (the fields
///   weft sent before it); an acknowledged create is deleted; an
///   acknowledged delete is created again from its pre-image;
/// - a write a later run superseded (another sync run changed the record
///   since, or this run was rolled back already) is skipped, so a rollback
///   never overwrites newer values and a second rollback sends nothing;
/// - a write without a pre-image (the record was never sent before) and a
///   reject (it changed nothing) are skipped with their reason.
///
/// The rollback's writes are recorded like a sync's (log, rejects, snapshot),
/// restored records with a [`ROLLED_BACK_HASH_PREFIX`] hash and uncreated
/// ones leaving the snapshot, so the next sync sends the model's rows again
/// unless the model changed back. A dry run plans and sends nothing. A run
/// the log does not know is an error naming it.
pub async fn rollback_sync(
    store: &dyn SyncStore,
    target: &dyn SyncTarget,
    spec: &SyncSpec,
    run_id: &str,
    dry_run: bool,
) -> Result<RollbackReport, CoreError> {
    check_sync(target, spec)?;
    let log = store.run_log(&spec.name, run_id).await?;
    if log.is_empty() {
        return Err(CoreError::SyncStore {
            sync: spec.name.clone(),
            step: "read the run's log",
            source: format!(
                "no write of run `{run_id}` is in _weft._weft_sync_log (the run id is the sync report's `run_id`)"
            )
            .into(),
        });
    }
    let mut report = RollbackReport {
        sync: spec.name.clone(),
        of_run: run_id.to_string(),
        run_id: new_load_id(),
        dry_run,
        ..RollbackReport::default()
    };
    let hash = format!("{ROLLED_BACK_HASH_PREFIX}{run_id}");
    let mut by_action: BTreeMap<SyncAction, Vec<SyncRecord>> = BTreeMap::new();
    for entry in log {
        if !entry.acknowledged {
            continue;
        }
        report.writes += 1;
        match undo(&entry, &hash) {
            Ok(record) => by_action.entry(record.action).or_default().push(record),
            Err(reason) => report.skipped.push(Skipped {
                key: entry.key,
                action: entry.action,
                reason,
            }),
        }
    }
    if dry_run {
        report.planned = by_action.into_values().flatten().collect();
        return Ok(report);
    }
    let batch = target.max_batch().max(1);
    for (action, records) in by_action {
        // Deletes need the mode that sends them; restores upsert by key.
        let mode = match action {
            SyncAction::Delete => SyncWriteMode::Mirror,
            _ if target.modes().contains(&SyncWriteMode::Upsert) => SyncWriteMode::Upsert,
            _ => spec.mode,
        };
        for chunk in records.chunks(batch) {
            let outcomes = target.apply(mode, chunk.to_vec()).await.map_err(|source| {
                CoreError::SyncTarget {
                    sync: spec.name.clone(),
                    target: target.name().to_string(),
                    action: action.to_string(),
                    records: chunk.len(),
                    first_key: chunk.first().map(|r| r.key.clone()).unwrap_or_default(),
                    source,
                }
            })?;
            let outcomes = align(chunk, outcomes);
            store.record(spec, &report.run_id, chunk, &outcomes).await?;
            for o in &outcomes {
                match (&o.result, action) {
                    (Ok(()), SyncAction::Update) => report.restored += 1,
                    (Ok(()), SyncAction::Delete) => report.uncreated += 1,
                    (Ok(()), SyncAction::Create) => report.recreated += 1,
                    (Err(_), _) => report.rejected += 1,
                }
            }
        }
    }
    tracing::info!(
        sync = %spec.name, of_run = run_id, run_id = %report.run_id,
        restored = report.restored, uncreated = report.uncreated,
        recreated = report.recreated, rejected = report.rejected,
        skipped = report.skipped.len(), "sync rolled back"
    );
    Ok(report)
}

/// The record that undoes an acknowledged write, or why there is none.
fn undo(entry: &SyncLogEntry, hash: &str) -> Result<SyncRecord, String> {
    if entry.superseded {
        return Err(
            "a later write changed it since (another sync run, or a rollback of this one)".into(),
        );
    }
    let (action, fields) = match (entry.action, &entry.previous) {
        (SyncAction::Create, _) => (SyncAction::Delete, BTreeMap::new()),
        (SyncAction::Update, Some(previous)) => (SyncAction::Update, previous.clone()),
        (SyncAction::Delete, Some(previous)) => (SyncAction::Create, previous.clone()),
        (SyncAction::Update | SyncAction::Delete, None) => {
            return Err("weft never sent it before this run: no values to restore".into());
        }
    };
    Ok(SyncRecord {
        key: entry.key.clone(),
        action,
        row_hash: hash.to_string(),
        fields,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    fn entry(
        action: SyncAction,
        previous: Option<serde_json::Value>,
        superseded: bool,
    ) -> SyncLogEntry {
        SyncLogEntry {
            key: "k".into(),
            action,
            acknowledged: true,
            sent: BTreeMap::from([("name".to_string(), json!("new"))]),
            previous: previous.map(|v| serde_json::from_value(v).unwrap()),
            superseded,
        }
    }

    #[test]
    fn each_write_is_undone_by_its_opposite_or_skipped_with_a_reason() {
        let old = json!({"name": "old"});
        let r = undo(&entry(SyncAction::Update, Some(old.clone()), false), "h").unwrap();
        assert_eq!(
            (r.action, json!(r.fields), r.row_hash.as_str()),
            (SyncAction::Update, old.clone(), "h")
        );
        let r = undo(&entry(SyncAction::Create, None, false), "h").unwrap();
        assert_eq!((r.action, r.fields.len()), (SyncAction::Delete, 0));
        let r = undo(&entry(SyncAction::Delete, Some(old.clone()), false), "h").unwrap();
        assert_eq!(
            (r.action, json!(r.fields)),
            (SyncAction::Create, old.clone())
        );
        let e = undo(&entry(SyncAction::Update, None, false), "h").unwrap_err();
        assert!(e.contains("never sent"), "{e}");
        for action in [SyncAction::Create, SyncAction::Update, SyncAction::Delete] {
            let e = undo(&entry(action, Some(old.clone()), true), "h").unwrap_err();
            assert!(e.contains("later write"), "{e}");
        }
    }
}
