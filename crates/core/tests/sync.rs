//! The sync engine against in-memory store and target fakes.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use serde_json::{Value, json};
use weft_core::{
    BoxError, CoreError, PendingJob, RecordOutcome, SyncAction, SyncJournal, SyncOptions, SyncPlan,
    SyncRecord, SyncSpec, SyncStore, SyncTarget, SyncWriteMode, run_sync,
};

/// A model (key -> column values) and a snapshot (key -> row hash) in memory.
#[derive(Default)]
struct MemStore {
    model: Mutex<BTreeMap<String, BTreeMap<String, Value>>>,
    snapshot: Mutex<BTreeMap<String, String>>,
    rejects: Mutex<Vec<(String, String, String)>>,
    log: Mutex<Vec<(String, String, SyncAction, bool)>>,
    plans: AtomicUsize,
    /// Pending jobs, in the order saved.
    jobs: Mutex<Vec<PendingJob>>,
    /// Jobs finished, in order.
    finished: Mutex<Vec<String>>,
}

impl MemStore {
    fn with_people(n: usize) -> Self {
        let store = MemStore::default();
        for i in 0..n {
            store.put(&format!("p{i:03}@example.com"), &format!("Name{i}"));
        }
        store
    }

    fn put(&self, email: &str, name: &str) {
        let row = BTreeMap::from([
            ("email".to_string(), json!(email)),
            ("name".to_string(), json!(name)),
        ]);
        self.model.lock().unwrap().insert(email.to_string(), row);
    }

    fn remove(&self, email: &str) {
        self.model.lock().unwrap().remove(email);
    }

    fn fields(spec: &SyncSpec, row: &BTreeMap<String, Value>) -> BTreeMap<String, Value> {
        spec.mapping
            .iter()
            .map(|(dest, col)| (dest.clone(), row.get(col).cloned().unwrap_or(Value::Null)))
            .collect()
    }

    fn diff(&self, spec: &SyncSpec) -> Vec<SyncRecord> {
        let model = self.model.lock().unwrap();
        let snapshot = self.snapshot.lock().unwrap();
        let mut out = Vec::new();
        for (key, row) in model.iter() {
            let fields = Self::fields(spec, row);
            let row_hash = serde_json::to_string(&fields).unwrap();
            let action = match snapshot.get(key) {
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
        for (key, hash) in snapshot.iter() {
            if !model.contains_key(key) {
                out.push(SyncRecord {
                    key: key.clone(),
                    action: SyncAction::Delete,
                    row_hash: hash.clone(),
                    fields: BTreeMap::new(),
                });
            }
        }
        out
    }
}

#[async_trait]
impl SyncStore for MemStore {
    async fn plan(&self, spec: &SyncSpec) -> Result<SyncPlan, CoreError> {
        self.plans.fetch_add(1, Ordering::SeqCst);
        let diff = self.diff(spec);
        let n = |a| diff.iter().filter(|r| r.action == a).count() as u64;
        Ok(SyncPlan {
            creates: n(SyncAction::Create),
            updates: n(SyncAction::Update),
            deletes: n(SyncAction::Delete),
            model_rows: self.model.lock().unwrap().len() as u64,
        })
    }

    async fn planned(
        &self,
        spec: &SyncSpec,
        action: SyncAction,
        after_key: Option<&str>,
        limit: usize,
    ) -> Result<Vec<SyncRecord>, CoreError> {
        let mut records: Vec<_> = self
            .diff(spec)
            .into_iter()
            .filter(|r| r.action == action && after_key.is_none_or(|a| r.key.as_str() > a))
            .collect();
        records.sort_by(|a, b| a.key.cmp(&b.key));
        records.truncate(limit);
        Ok(records)
    }

    async fn record(
        &self,
        _spec: &SyncSpec,
        run_id: &str,
        records: &[SyncRecord],
        outcomes: &[RecordOutcome],
    ) -> Result<(), CoreError> {
        let mut snapshot = self.snapshot.lock().unwrap();
        for (r, o) in records.iter().zip(outcomes) {
            assert_eq!(r.key, o.key, "outcomes are aligned with records");
            match &o.result {
                Ok(()) if r.action == SyncAction::Delete => {
                    snapshot.remove(&r.key);
                }
                Ok(()) => {
                    snapshot.insert(r.key.clone(), r.row_hash.clone());
                }
                Err(reason) => self.rejects.lock().unwrap().push((
                    run_id.to_string(),
                    r.key.clone(),
                    reason.clone(),
                )),
            }
            self.log.lock().unwrap().push((
                run_id.to_string(),
                r.key.clone(),
                r.action,
                o.result.is_ok(),
            ));
        }
        Ok(())
    }

    async fn save_job(&self, job: &PendingJob) -> Result<(), CoreError> {
        let mut jobs = self.jobs.lock().unwrap();
        jobs.retain(|j| !(j.sync == job.sync && j.job == job.job));
        jobs.push(job.clone());
        Ok(())
    }

    async fn pending_jobs(&self, sync: &str) -> Result<Vec<PendingJob>, CoreError> {
        Ok(self
            .jobs
            .lock()
            .unwrap()
            .iter()
            .filter(|j| j.sync == sync)
            .cloned()
            .collect())
    }

    async fn finish_job(&self, sync: &str, job: &str) -> Result<(), CoreError> {
        self.jobs
            .lock()
            .unwrap()
            .retain(|j| !(j.sync == sync && j.job == job));
        self.finished.lock().unwrap().push(job.to_string());
        Ok(())
    }
}

/// What [`MemTarget::resume_job`] answers.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Resume {
    /// The job's outcomes (its rejects as for `apply`).
    Results,
    /// `None`: the destination does not know the job.
    Unknown,
    /// An error (the destination is unreachable).
    Fail,
}

/// A destination that records every batch and rejects chosen keys.
struct MemTarget {
    max_batch: usize,
    batches: Mutex<Vec<Vec<SyncRecord>>>,
    reject: Mutex<BTreeSet<String>>,
    /// Fails the whole batch whose 1-based number this is.
    fail_batch: Mutex<Option<usize>>,
    /// Answers without an outcome for these keys.
    silent: Mutex<BTreeSet<String>>,
    /// The modes it declares.
    modes: &'static [SyncWriteMode],
    /// When set, each batch is submitted as job `job-{n}` and journaled
    /// before it is answered; `fail_batch` then fails the batch after its
    /// job is journaled (a crash while it runs).
    jobs: Mutex<bool>,
    /// With `jobs`, the batch whose 1-based number this is never answers
    /// (the run is dropped while its job runs).
    hang_batch: Mutex<Option<usize>>,
    /// What resuming a job answers.
    resume: Mutex<Resume>,
    /// The jobs resumed, in order.
    resumed: Mutex<Vec<String>>,
}

impl MemTarget {
    fn new(max_batch: usize) -> Self {
        MemTarget {
            max_batch,
            batches: Mutex::default(),
            reject: Mutex::default(),
            fail_batch: Mutex::default(),
            silent: Mutex::default(),
            modes: SyncWriteMode::ALL,
            jobs: Mutex::default(),
            hang_batch: Mutex::default(),
            resume: Mutex::new(Resume::Results),
            resumed: Mutex::default(),
        }
    }

    /// Outcomes for `records`, rejecting and omitting the chosen keys.
    fn outcomes(&self, records: &[SyncRecord]) -> Vec<RecordOutcome> {
        let reject = self.reject.lock().unwrap();
        let silent = self.silent.lock().unwrap();
        records
            .iter()
            .filter(|r| !silent.contains(&r.key))
            .map(|r| RecordOutcome {
                result: if reject.contains(&r.key) {
                    Err("invalid email".to_string())
                } else {
                    Ok(())
                },
                key: r.key.clone(),
            })
            .collect()
    }

    fn calls(&self) -> usize {
        self.batches.lock().unwrap().len()
    }

    fn sent(&self) -> Vec<(SyncAction, String)> {
        self.batches
            .lock()
            .unwrap()
            .iter()
            .flatten()
            .map(|r| (r.action, r.key.clone()))
            .collect()
    }

    fn sizes(&self) -> Vec<usize> {
        self.batches.lock().unwrap().iter().map(Vec::len).collect()
    }

    fn clear(&self) {
        self.batches.lock().unwrap().clear();
    }
}

#[async_trait]
impl SyncTarget for MemTarget {
    fn name(&self) -> &str {
        "memory"
    }

    fn required_fields(&self) -> Vec<String> {
        vec!["email_address".to_string()]
    }

    fn max_batch(&self) -> usize {
        self.max_batch
    }

    fn modes(&self) -> &'static [weft_core::SyncWriteMode] {
        self.modes
    }

    async fn apply(
        &self,
        _mode: weft_core::SyncWriteMode,
        records: Vec<SyncRecord>,
    ) -> Result<Vec<RecordOutcome>, BoxError> {
        let n = {
            let mut b = self.batches.lock().unwrap();
            b.push(records.clone());
            b.len()
        };
        if *self.fail_batch.lock().unwrap() == Some(n) {
            return Err("503 service unavailable".into());
        }
        Ok(self.outcomes(&records))
    }

    async fn apply_journaled(
        &self,
        mode: SyncWriteMode,
        records: Vec<SyncRecord>,
        journal: &dyn SyncJournal,
    ) -> Result<Vec<RecordOutcome>, BoxError> {
        if !*self.jobs.lock().unwrap() {
            return self.apply(mode, records).await;
        }
        let n = {
            let mut b = self.batches.lock().unwrap();
            b.push(records.clone());
            b.len()
        };
        journal.submitted(&format!("job-{n}"), &records).await?;
        if *self.fail_batch.lock().unwrap() == Some(n) {
            return Err("connection reset while polling the job".into());
        }
        if *self.hang_batch.lock().unwrap() == Some(n) {
            std::future::pending::<()>().await;
        }
        Ok(self.outcomes(&records))
    }

    async fn resume_job(&self, job: &PendingJob) -> Result<Option<Vec<RecordOutcome>>, BoxError> {
        self.resumed.lock().unwrap().push(job.job.clone());
        match *self.resume.lock().unwrap() {
            Resume::Results => Ok(Some(self.outcomes(&job.records))),
            Resume::Unknown => Ok(None),
            Resume::Fail => Err("job status: 503".into()),
        }
    }
}

fn spec(mode: SyncWriteMode) -> SyncSpec {
    SyncSpec {
        name: "people".to_string(),
        model: "models.people".to_string(),
        primary_key: "email".to_string(),
        mode,
        mapping: BTreeMap::from([
            ("email_address".to_string(), "email".to_string()),
            ("FNAME".to_string(), "name".to_string()),
        ]),
    }
}

const RUN: SyncOptions = SyncOptions {
    dry_run: false,
    batch_size: None,
};

#[tokio::test]
async fn second_run_sends_nothing() {
    let store = MemStore::with_people(3);
    let target = MemTarget::new(500);
    let spec = spec(SyncWriteMode::Upsert);

    let first = run_sync(&store, &target, &spec, RUN).await.unwrap();
    assert_eq!((first.created, first.updated, first.rejected), (3, 0, 0));
    assert_eq!(first.batches, 1);
    assert_eq!(first.plan.creates, 3);
    assert_eq!(first.plan.model_rows, 3);
    let sent = target.batches.lock().unwrap()[0][0].clone();
    assert_eq!(sent.fields["email_address"], json!("p000@example.com"));
    assert_eq!(sent.fields["FNAME"], json!("Name0"));
    assert_eq!(store.log.lock().unwrap().len(), 3);

    target.clear();
    let second = run_sync(&store, &target, &spec, RUN).await.unwrap();
    assert_eq!(target.calls(), 0);
    assert_eq!(
        (
            second.created,
            second.updated,
            second.deleted,
            second.batches
        ),
        (0, 0, 0, 0)
    );
    assert_ne!(first.run_id, second.run_id);
}

#[tokio::test]
async fn a_changed_row_is_exactly_one_update() {
    let store = MemStore::with_people(5);
    let target = MemTarget::new(500);
    let spec = spec(SyncWriteMode::Upsert);
    run_sync(&store, &target, &spec, RUN).await.unwrap();
    target.clear();

    store.put("p002@example.com", "Bartholomew");
    let report = run_sync(&store, &target, &spec, RUN).await.unwrap();
    assert_eq!(
        target.sent(),
        vec![(SyncAction::Update, "p002@example.com".to_string())]
    );
    assert_eq!((report.created, report.updated), (0, 1));
    assert_eq!(
        target.batches.lock().unwrap()[0][0].fields["FNAME"],
        json!("Bartholomew")
    );
}

#[tokio::test]
async fn mirror_deletes_exactly_the_removed_row_and_upsert_does_not() {
    let store = MemStore::with_people(4);
    let target = MemTarget::new(500);
    run_sync(&store, &target, &spec(SyncWriteMode::Mirror), RUN)
        .await
        .unwrap();
    store.remove("p001@example.com");
    target.clear();

    let upsert = run_sync(&store, &target, &spec(SyncWriteMode::Upsert), RUN)
        .await
        .unwrap();
    assert_eq!(target.calls(), 0);
    assert_eq!((upsert.plan.deletes, upsert.deleted), (0, 0));

    let mirror = run_sync(&store, &target, &spec(SyncWriteMode::Mirror), RUN)
        .await
        .unwrap();
    assert_eq!(
        target.sent(),
        vec![(SyncAction::Delete, "p001@example.com".to_string())]
    );
    assert_eq!((mirror.plan.deletes, mirror.deleted), (1, 1));
    assert!(target.batches.lock().unwrap()[0][0].fields.is_empty());
    assert!(
        !store
            .snapshot
            .lock()
            .unwrap()
            .contains_key("p001@example.com")
    );

    target.clear();
    run_sync(&store, &target, &spec(SyncWriteMode::Mirror), RUN)
        .await
        .unwrap();
    assert_eq!(target.calls(), 0);
}

#[tokio::test]
async fn a_rejected_record_is_counted_and_retried_next_run() {
    let store = MemStore::with_people(3);
    let target = MemTarget::new(500);
    let spec = spec(SyncWriteMode::Upsert);
    target
        .reject
        .lock()
        .unwrap()
        .insert("p001@example.com".to_string());

    let first = run_sync(&store, &target, &spec, RUN).await.unwrap();
    assert_eq!((first.created, first.rejected), (2, 1));
    let rejects = store.rejects.lock().unwrap().clone();
    assert_eq!(rejects.len(), 1);
    assert_eq!(rejects[0].0, first.run_id);
    assert_eq!(rejects[0].1, "p001@example.com");
    assert_eq!(rejects[0].2, "invalid email");
    assert!(
        !store
            .snapshot
            .lock()
            .unwrap()
            .contains_key("p001@example.com")
    );

    target.clear();
    let second = run_sync(&store, &target, &spec, RUN).await.unwrap();
    assert_eq!(
        target.sent(),
        vec![(SyncAction::Create, "p001@example.com".to_string())]
    );
    assert_eq!((second.created, second.rejected), (0, 1));

    target.reject.lock().unwrap().clear();
    target.clear();
    let third = run_sync(&store, &target, &spec, RUN).await.unwrap();
    assert_eq!((third.created, third.rejected), (1, 0));
    target.clear();
    run_sync(&store, &target, &spec, RUN).await.unwrap();
    assert_eq!(target.calls(), 0);
}

#[tokio::test]
async fn a_record_without_an_outcome_is_a_reject_and_is_retried() {
    let store = MemStore::with_people(2);
    let target = MemTarget::new(500);
    let spec = spec(SyncWriteMode::Upsert);
    target
        .silent
        .lock()
        .unwrap()
        .insert("p000@example.com".to_string());
    let report = run_sync(&store, &target, &spec, RUN).await.unwrap();
    assert_eq!((report.created, report.rejected), (1, 1));
    assert_eq!(
        store.rejects.lock().unwrap()[0].2,
        "the destination returned no outcome for this record"
    );
}

#[tokio::test]
async fn dry_run_calls_nothing_and_samples_each_action() {
    let store = MemStore::with_people(8);
    let target = MemTarget::new(500);
    run_sync(&store, &target, &spec(SyncWriteMode::Mirror), RUN)
        .await
        .unwrap();
    target.clear();
    store.put("p000@example.com", "Changed");
    store.remove("p007@example.com");
    for i in 100..107 {
        store.put(&format!("p{i}@example.com"), "New");
    }
    let log_before = store.log.lock().unwrap().len();

    let dry = SyncOptions {
        dry_run: true,
        batch_size: None,
    };
    let report = run_sync(&store, &target, &spec(SyncWriteMode::Mirror), dry)
        .await
        .unwrap();
    assert_eq!(target.calls(), 0);
    assert_eq!(store.log.lock().unwrap().len(), log_before);
    assert!(report.dry_run);
    assert_eq!(
        (
            report.plan.creates,
            report.plan.updates,
            report.plan.deletes
        ),
        (7, 1, 1)
    );
    assert_eq!(
        (
            report.created,
            report.updated,
            report.deleted,
            report.batches
        ),
        (0, 0, 0, 0)
    );
    let per = |a| report.samples.iter().filter(|r| r.action == a).count();
    assert_eq!(
        (
            per(SyncAction::Create),
            per(SyncAction::Update),
            per(SyncAction::Delete)
        ),
        (5, 1, 1)
    );
    assert_eq!(report.samples[0].key, "p100@example.com");
}

#[tokio::test]
async fn a_missing_required_mapping_fails_before_any_call() {
    let store = MemStore::with_people(2);
    let target = MemTarget::new(500);
    let mut spec = spec(SyncWriteMode::Upsert);
    spec.mapping.remove("email_address");
    let err = run_sync(&store, &target, &spec, RUN).await.unwrap_err();
    match &err {
        CoreError::SyncMapping {
            sync,
            target,
            field,
        } => {
            assert_eq!(
                (sync.as_str(), target.as_str(), field.as_str()),
                ("people", "memory", "email_address")
            );
        }
        other => panic!("unexpected error {other}"),
    }
    assert!(err.to_string().contains("`email_address`"));
    assert_eq!(store.plans.load(Ordering::SeqCst), 0);
    assert_eq!(target.calls(), 0);
}

#[tokio::test]
async fn a_mode_the_target_cannot_honour_is_refused_before_any_call() {
    let store = MemStore::with_people(2);
    let mut target = MemTarget::new(500);
    target.modes = &[SyncWriteMode::Upsert, SyncWriteMode::UpdateOnly];
    let err = run_sync(&store, &target, &spec(SyncWriteMode::Mirror), RUN)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, CoreError::SyncMode { mode: "mirror", supported, .. } if supported == "upsert, update_only"),
        "unexpected error {err}"
    );
    assert_eq!(
        err.to_string(),
        "sync people: memory cannot sync in mode `mirror` (it supports: upsert, update_only)"
    );
    assert_eq!(store.plans.load(Ordering::SeqCst), 0);
    assert_eq!(target.calls(), 0);
    // A mode it declares runs.
    let report = run_sync(&store, &target, &spec(SyncWriteMode::Upsert), RUN)
        .await
        .unwrap();
    assert_eq!(report.created, 2);
}

#[tokio::test]
async fn update_only_and_create_only_send_only_their_action() {
    let store = MemStore::with_people(3);
    let target = MemTarget::new(500);
    run_sync(&store, &target, &spec(SyncWriteMode::Upsert), RUN)
        .await
        .unwrap();
    store.put("p000@example.com", "Changed");
    store.put("new@example.com", "New");
    target.clear();

    let update_only = run_sync(&store, &target, &spec(SyncWriteMode::UpdateOnly), RUN)
        .await
        .unwrap();
    assert_eq!(
        target.sent(),
        vec![(SyncAction::Update, "p000@example.com".to_string())]
    );
    assert_eq!((update_only.plan.creates, update_only.plan.updates), (0, 1));
    target.clear();

    let create_only = run_sync(&store, &target, &spec(SyncWriteMode::CreateOnly), RUN)
        .await
        .unwrap();
    assert_eq!(
        target.sent(),
        vec![(SyncAction::Create, "new@example.com".to_string())]
    );
    assert_eq!((create_only.created, create_only.updated), (1, 0));
}

#[tokio::test]
async fn batches_split_at_the_smaller_of_max_batch_and_batch_size() {
    let spec = spec(SyncWriteMode::Upsert);

    let store = MemStore::with_people(12);
    let target = MemTarget::new(5);
    let report = run_sync(&store, &target, &spec, RUN).await.unwrap();
    assert_eq!(target.sizes(), vec![5, 5, 2]);
    assert_eq!((report.batches, report.created), (3, 12));
    let keys: Vec<_> = target.sent().into_iter().map(|(_, k)| k).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(keys, sorted, "every key once, in key order");

    let store = MemStore::with_people(12);
    let target = MemTarget::new(5);
    let small = SyncOptions {
        dry_run: false,
        batch_size: Some(3),
    };
    run_sync(&store, &target, &spec, small).await.unwrap();
    assert_eq!(target.sizes(), vec![3, 3, 3, 3]);

    let store = MemStore::with_people(10);
    let target = MemTarget::new(5);
    let large = SyncOptions {
        dry_run: false,
        batch_size: Some(100),
    };
    run_sync(&store, &target, &spec, large).await.unwrap();
    assert_eq!(target.sizes(), vec![5, 5]);
}

#[tokio::test]
async fn a_failed_batch_stops_the_run_and_the_next_run_resends_only_it_onwards() {
    let store = MemStore::with_people(7);
    let target = MemTarget::new(3);
    let spec = spec(SyncWriteMode::Upsert);
    *target.fail_batch.lock().unwrap() = Some(2);

    let err = run_sync(&store, &target, &spec, RUN).await.unwrap_err();
    match &err {
        CoreError::SyncTarget {
            action,
            records,
            first_key,
            ..
        } => assert_eq!(
            (action.as_str(), *records, first_key.as_str()),
            ("create", 3, "p003@example.com")
        ),
        other => panic!("unexpected error {other}"),
    }
    assert_eq!(store.snapshot.lock().unwrap().len(), 3);

    *target.fail_batch.lock().unwrap() = None;
    target.clear();
    let report = run_sync(&store, &target, &spec, RUN).await.unwrap();
    assert_eq!(report.created, 4);
    let keys: Vec<_> = target.sent().into_iter().map(|(_, k)| k).collect();
    assert_eq!(keys.first().map(String::as_str), Some("p003@example.com"));
    assert_eq!(keys.len(), 4);
}

fn keys(records: &[SyncRecord]) -> Vec<&str> {
    records.iter().map(|r| r.key.as_str()).collect()
}

/// Seven people in batches of 3 as jobs; the second job is journaled and
/// its batch then fails (the crash while the job runs).
async fn crash_in_second_job() -> (MemStore, MemTarget) {
    let store = MemStore::with_people(7);
    let target = MemTarget::new(3);
    *target.jobs.lock().unwrap() = true;
    *target.fail_batch.lock().unwrap() = Some(2);
    let err = run_sync(&store, &target, &spec(SyncWriteMode::Upsert), RUN)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, CoreError::SyncTarget { first_key, records: 3, .. } if first_key == "p003@example.com"),
        "unexpected error {err}"
    );
    assert_eq!(store.snapshot.lock().unwrap().len(), 3);
    // job-1 was recorded, then finished; job-2 stays pending.
    assert_eq!(store.finished.lock().unwrap().clone(), ["job-1"]);
    let pending = store.jobs.lock().unwrap().clone();
    assert_eq!(pending.len(), 1);
    assert_eq!(
        (
            pending[0].sync.as_str(),
            pending[0].target.as_str(),
            pending[0].job.as_str()
        ),
        ("people", "memory", "job-2")
    );
    assert_eq!(
        keys(&pending[0].records),
        ["p003@example.com", "p004@example.com", "p005@example.com"]
    );
    *target.fail_batch.lock().unwrap() = None;
    target.clear();
    (store, target)
}

#[tokio::test]
async fn a_job_cut_off_by_a_crash_is_resumed_not_sent_again() {
    let (store, target) = crash_in_second_job().await;
    let spec = spec(SyncWriteMode::Upsert);
    let pending_hash = store.jobs.lock().unwrap()[0].records[1].row_hash.clone();
    // The model changed after the job was sent: p004's new name.
    store.put("p004@example.com", "Changed");

    let second = run_sync(&store, &target, &spec, RUN).await.unwrap();
    assert_eq!(target.resumed.lock().unwrap().clone(), ["job-2"]);
    // Only p006 is sent (a new job), then p004's change as an update.
    assert_eq!(
        target.sent(),
        [
            (SyncAction::Create, "p006@example.com".to_string()),
            (SyncAction::Update, "p004@example.com".to_string())
        ]
    );
    assert_eq!(
        (
            second.resumed,
            second.created,
            second.updated,
            second.rejected,
            second.batches
        ),
        (3, 1, 1, 0, 2)
    );
    assert_eq!((second.plan.creates, second.plan.updates), (1, 1));
    assert_eq!(store.snapshot.lock().unwrap().len(), 7);
    assert!(store.jobs.lock().unwrap().is_empty());
    assert_eq!(
        store.finished.lock().unwrap().clone(),
        ["job-1", "job-2", "job-1", "job-2"]
    );
    // The resumed records were logged by the run that read them, first.
    let log = store.log.lock().unwrap().clone();
    let this_run: Vec<_> = log
        .iter()
        .filter(|(run, ..)| *run == second.run_id)
        .map(|(_, key, action, ok)| (key.as_str(), *action, *ok))
        .collect();
    assert_eq!(
        this_run,
        [
            ("p003@example.com", SyncAction::Create, true),
            ("p004@example.com", SyncAction::Create, true),
            ("p005@example.com", SyncAction::Create, true),
            ("p006@example.com", SyncAction::Create, true),
            ("p004@example.com", SyncAction::Update, true),
        ]
    );
    assert_ne!(
        store.snapshot.lock().unwrap()["p004@example.com"],
        pending_hash
    );

    target.clear();
    let third = run_sync(&store, &target, &spec, RUN).await.unwrap();
    assert_eq!((target.calls(), third.resumed, third.batches), (0, 0, 0));
    assert_eq!(target.resumed.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_run_dropped_while_its_job_runs_is_resumed() {
    let store = MemStore::with_people(4);
    let target = MemTarget::new(500);
    let spec = spec(SyncWriteMode::Upsert);
    *target.jobs.lock().unwrap() = true;
    *target.hang_batch.lock().unwrap() = Some(1);
    let cut = tokio::time::timeout(
        std::time::Duration::from_millis(50),
        run_sync(&store, &target, &spec, RUN),
    )
    .await;
    assert!(cut.is_err(), "the run was dropped while its job ran");
    assert!(store.snapshot.lock().unwrap().is_empty());
    assert_eq!(store.jobs.lock().unwrap().len(), 1);

    *target.hang_batch.lock().unwrap() = None;
    target.clear();
    target
        .reject
        .lock()
        .unwrap()
        .insert("p002@example.com".to_string());
    let second = run_sync(&store, &target, &spec, RUN).await.unwrap();
    assert_eq!(target.resumed.lock().unwrap().clone(), ["job-1"]);
    // The resumed job's reject is recorded, and the plan sends it again.
    assert_eq!(
        target.sent(),
        [(SyncAction::Create, "p002@example.com".to_string())]
    );
    assert_eq!(
        (
            second.resumed,
            second.created,
            second.rejected,
            second.batches
        ),
        (3, 0, 2, 1)
    );
    assert_eq!(store.snapshot.lock().unwrap().len(), 3);
    assert_eq!(store.rejects.lock().unwrap().len(), 2);
    assert!(store.jobs.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_job_the_destination_does_not_know_is_sent_again() {
    let (store, target) = crash_in_second_job().await;
    *target.resume.lock().unwrap() = Resume::Unknown;
    let report = run_sync(&store, &target, &spec(SyncWriteMode::Upsert), RUN)
        .await
        .unwrap();
    assert_eq!(target.resumed.lock().unwrap().clone(), ["job-2"]);
    assert_eq!(
        keys(&target.batches.lock().unwrap().concat()),
        [
            "p003@example.com",
            "p004@example.com",
            "p005@example.com",
            "p006@example.com"
        ]
    );
    assert_eq!((report.resumed, report.created, report.batches), (0, 4, 2));
    assert_eq!(store.snapshot.lock().unwrap().len(), 7);
    assert!(store.jobs.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_failed_resume_stops_the_run_before_planning_and_keeps_the_job() {
    let (store, target) = crash_in_second_job().await;
    *target.resume.lock().unwrap() = Resume::Fail;
    let plans = store.plans.load(Ordering::SeqCst);
    let err = run_sync(&store, &target, &spec(SyncWriteMode::Upsert), RUN)
        .await
        .unwrap_err();
    match &err {
        CoreError::SyncTarget {
            action,
            records,
            first_key,
            ..
        } => assert_eq!(
            (action.as_str(), *records, first_key.as_str()),
            ("create", 3, "p003@example.com")
        ),
        other => panic!("unexpected error {other}"),
    }
    assert_eq!(store.plans.load(Ordering::SeqCst), plans);
    assert_eq!(target.calls(), 0);
    assert_eq!(store.jobs.lock().unwrap().len(), 1);

    *target.resume.lock().unwrap() = Resume::Results;
    let report = run_sync(&store, &target, &spec(SyncWriteMode::Upsert), RUN)
        .await
        .unwrap();
    assert_eq!((report.resumed, report.created), (3, 1));
}

#[tokio::test]
async fn a_dry_run_resumes_nothing() {
    let (store, target) = crash_in_second_job().await;
    let dry = SyncOptions {
        dry_run: true,
        batch_size: None,
    };
    let log = store.log.lock().unwrap().len();
    let report = run_sync(&store, &target, &spec(SyncWriteMode::Upsert), dry)
        .await
        .unwrap();
    assert!(target.resumed.lock().unwrap().is_empty());
    assert_eq!((report.resumed, report.plan.creates), (0, 4));
    assert_eq!(store.jobs.lock().unwrap().len(), 1);
    assert_eq!(store.log.lock().unwrap().len(), log);
}

#[tokio::test]
async fn a_job_journaled_by_another_destination_is_sent_again() {
    let (store, target) = crash_in_second_job().await;
    store.jobs.lock().unwrap()[0].target = "elsewhere".to_string();
    let report = run_sync(&store, &target, &spec(SyncWriteMode::Upsert), RUN)
        .await
        .unwrap();
    assert!(target.resumed.lock().unwrap().is_empty());
    assert_eq!((report.resumed, report.created), (0, 4));
    assert!(store.jobs.lock().unwrap().is_empty());
}
