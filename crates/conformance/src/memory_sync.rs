//! An in-memory [`SyncStore`]: the model the sync-target suite syncs, with
//! the snapshot, rejects and log a warehouse keeps, so a destination's suite
//! needs no warehouse.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use serde_json::Value;
use weft_core::{
    CoreError, PendingJob, RecordOutcome, SyncAction, SyncPlan, SyncRecord, SyncSpec, SyncStore,
};

use crate::Row;

/// One `_weft_sync_log` entry: what was sent for a key and how it went.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncLogEntry {
    /// The sync run.
    pub run_id: String,
    /// The record's key.
    pub key: String,
    /// What was sent.
    pub action: SyncAction,
    /// The destination fields sent.
    pub fields: BTreeMap<String, Value>,
    /// `None` when acknowledged, else the destination's reason.
    pub rejected: Option<String>,
}

#[derive(Default)]
struct Inner {
    /// Model rows by primary-key value.
    model: BTreeMap<String, Row>,
    /// Acknowledged keys -> row hash.
    snapshot: BTreeMap<String, String>,
    /// Rejected keys -> reason (cleared when the key is acknowledged).
    rejects: BTreeMap<String, String>,
    log: Vec<SyncLogEntry>,
    /// Pending jobs, in the order first saved.
    jobs: Vec<PendingJob>,
}

/// A reverse-sync store in memory, diffing its model rows against its
/// snapshot exactly as the warehouses' stores do in SQL: a key not in the
/// snapshot is a create, one with another row hash an update, a snapshot
/// key gone from the model a delete. Planned records come in key order.
#[derive(Default)]
pub struct MemorySyncStore {
    inner: Mutex<Inner>,
}

impl MemorySyncStore {
    /// An empty store.
    pub fn new() -> MemorySyncStore {
        MemorySyncStore::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Puts (or replaces) the model row whose primary key is `key`.
    pub fn put(&self, key: &str, row: Row) {
        self.lock().model.insert(key.to_string(), row);
    }

    /// Removes the model row `key` (a mirror sync then deletes it).
    pub fn remove(&self, key: &str) {
        self.lock().model.remove(key);
    }

    /// Marks `key` as acknowledged with a row hash no row has, as if an
    /// earlier sync had sent it (the next run plans it as an update).
    pub fn seed_snapshot(&self, key: &str) {
        self.lock()
            .snapshot
            .insert(key.to_string(), "seeded".to_string());
    }

    /// The acknowledged keys.
    pub fn snapshot_keys(&self) -> Vec<String> {
        self.lock().snapshot.keys().cloned().collect()
    }

    /// The rejected keys and their reasons.
    pub fn rejects(&self) -> BTreeMap<String, String> {
        self.lock().rejects.clone()
    }

    /// Every log entry, in the order recorded.
    pub fn log(&self) -> Vec<SyncLogEntry> {
        self.lock().log.clone()
    }

    /// The pending jobs of every sync, in the order first saved.
    pub fn jobs(&self) -> Vec<PendingJob> {
        self.lock().jobs.clone()
    }

    /// The planned records of every action, in key order per action.
    fn diff(inner: &Inner, spec: &SyncSpec) -> Vec<SyncRecord> {
        let mut out = Vec::new();
        for (key, row) in &inner.model {
            let fields: BTreeMap<String, Value> = spec
                .mapping
                .iter()
                .map(|(dest, col)| (dest.clone(), row.get(col).cloned().unwrap_or(Value::Null)))
                .collect();
            let row_hash = hash(&fields);
            let action = match inner.snapshot.get(key) {
                None => SyncAction::Create,
                Some(h) if *h != row_hash => SyncAction::Update,
                Some(_) => continue,
            };
            out.push(SyncRecord {
                key: key.clone(),
                action,
                row_hash,
                fields,
            });
        }
        for key in inner.snapshot.keys() {
            if !inner.model.contains_key(key) {
                out.push(SyncRecord {
                    key: key.clone(),
                    action: SyncAction::Delete,
                    row_hash: String::new(),
                    fields: BTreeMap::new(),
                });
            }
        }
        out
    }
}

/// FNV-1a of the mapped fields' JSON (stable for one process's runs).
fn hash(fields: &BTreeMap<String, Value>) -> String {
    let text = serde_json::to_string(fields).unwrap_or_default();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

#[async_trait]
impl SyncStore for MemorySyncStore {
    async fn plan(&self, spec: &SyncSpec) -> Result<SyncPlan, CoreError> {
        let inner = self.lock();
        let mut plan = SyncPlan {
            model_rows: inner.model.len() as u64,
            ..SyncPlan::default()
        };
        for r in MemorySyncStore::diff(&inner, spec) {
            match r.action {
                SyncAction::Create => plan.creates += 1,
                SyncAction::Update => plan.updates += 1,
                SyncAction::Delete => plan.deletes += 1,
            }
        }
        Ok(plan)
    }

    async fn planned(
        &self,
        spec: &SyncSpec,
        action: SyncAction,
        after_key: Option<&str>,
        limit: usize,
    ) -> Result<Vec<SyncRecord>, CoreError> {
        let inner = self.lock();
        Ok(MemorySyncStore::diff(&inner, spec)
            .into_iter()
            .filter(|r| r.action == action && after_key.is_none_or(|a| r.key.as_str() > a))
            .take(limit)
            .collect())
    }

    async fn record(
        &self,
        _spec: &SyncSpec,
        run_id: &str,
        records: &[SyncRecord],
        outcomes: &[RecordOutcome],
    ) -> Result<(), CoreError> {
        let mut inner = self.lock();
        for (r, o) in records.iter().zip(outcomes) {
            match &o.result {
                Ok(()) => {
                    inner.rejects.remove(&r.key);
                    if r.action == SyncAction::Delete {
                        inner.snapshot.remove(&r.key);
                    } else {
                        inner.snapshot.insert(r.key.clone(), r.row_hash.clone());
                    }
                }
                Err(reason) => {
                    inner.rejects.insert(r.key.clone(), reason.clone());
                }
            }
            inner.log.push(SyncLogEntry {
                run_id: run_id.to_string(),
                key: r.key.clone(),
                action: r.action,
                fields: r.fields.clone(),
                rejected: o.result.clone().err(),
            });
        }
        Ok(())
    }

    async fn save_job(&self, job: &PendingJob) -> Result<(), CoreError> {
        let mut inner = self.lock();
        match inner
            .jobs
            .iter_mut()
            .find(|j| j.sync == job.sync && j.job == job.job)
        {
            Some(saved) => *saved = job.clone(),
            None => inner.jobs.push(job.clone()),
        }
        Ok(())
    }

    async fn pending_jobs(&self, sync: &str) -> Result<Vec<PendingJob>, CoreError> {
        Ok(self
            .lock()
            .jobs
            .iter()
            .filter(|j| j.sync == sync)
            .cloned()
            .collect())
    }

    async fn finish_job(&self, sync: &str, job: &str) -> Result<(), CoreError> {
        self.lock()
            .jobs
            .retain(|j| !(j.sync == sync && j.job == job));
        Ok(())
    }
}
