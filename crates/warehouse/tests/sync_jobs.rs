//! The warehouses' journal of pending sync jobs (`_weft._weft_sync_jobs`):
//! save, list and finish round trips on DuckDB and on a real PostgreSQL
//! server (weft-testsvc), and a run that resumes a journaled job through
//! each store's SQL snapshot.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use weft_core::{
    BoxError, PendingJob, RecordOutcome, SyncAction, SyncOptions, SyncRecord, SyncSpec, SyncStore,
    SyncTarget, SyncWriteMode, run_sync,
};
use weft_warehouse::Warehouse;

fn spec() -> SyncSpec {
    SyncSpec {
        name: "people".to_string(),
        model: "models.people".to_string(),
        primary_key: "email".to_string(),
        mode: SyncWriteMode::Upsert,
        mapping: BTreeMap::from([
            ("email".to_string(), "email".to_string()),
            ("name".to_string(), "name".to_string()),
        ]),
    }
}

fn record(key: &str, fields: &[(&str, Value)]) -> SyncRecord {
    SyncRecord {
        key: key.to_string(),
        action: SyncAction::Create,
        row_hash: format!("hash-of-{key}"),
        fields: fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    }
}

fn at(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).unwrap()
}

fn job(sync: &str, id: &str, run: &str, micros: i64, records: Vec<SyncRecord>) -> PendingJob {
    PendingJob {
        sync: sync.to_string(),
        run_id: run.to_string(),
        target: "zendesk".to_string(),
        job: id.to_string(),
        records,
        submitted_at: at(micros),
    }
}

/// Save, list (per sync, oldest first), upsert and finish.
async fn round_trip(store: &dyn SyncStore) {
    assert!(store.pending_jobs("people").await.unwrap().is_empty());

    let records = vec![
        record(
            "ann@x.com",
            &[
                ("email", json!("ann@x.com")),
                ("name", json!("Ann \"the\" O'Neil ✓")),
                ("score", json!(1.5)),
                ("plan", Value::Null),
            ],
        ),
        SyncRecord {
            action: SyncAction::Delete,
            fields: BTreeMap::new(),
            ..record("bob@x.com", &[])
        },
    ];
    let a = job(
        "people",
        "8f3a0c1e",
        "run-1",
        1_717_171_717_123_456,
        records.clone(),
    );
    store.save_job(&a).await.unwrap();
    let other = job("other", "8f3a0c1e", "run-9", 1_000_000, vec![]);
    store.save_job(&other).await.unwrap();
    assert_eq!(store.pending_jobs("people").await.unwrap(), vec![a.clone()]);
    assert_eq!(store.pending_jobs("other").await.unwrap(), vec![other]);

    // Saving the same job again replaces it.
    let a2 = PendingJob {
        run_id: "run-2".to_string(),
        ..a.clone()
    };
    store.save_job(&a2).await.unwrap();
    // An older job is listed first.
    let c = job(
        "people",
        "job-c",
        "run-0",
        1_717_000_000_000_001,
        vec![record("cy@x.com", &[("email", json!("cy@x.com"))])],
    );
    store.save_job(&c).await.unwrap();
    let pending = store.pending_jobs("people").await.unwrap();
    assert_eq!(pending, vec![c.clone(), a2]);
    assert_eq!(pending[1].records, records);
    assert_eq!(pending[1].submitted_at, at(1_717_171_717_123_456));

    store.finish_job("people", "8f3a0c1e").await.unwrap();
    assert_eq!(store.pending_jobs("people").await.unwrap(), vec![c]);
    store.finish_job("people", "never-saved").await.unwrap();
    store.finish_job("people", "job-c").await.unwrap();
    assert!(store.pending_jobs("people").await.unwrap().is_empty());
    assert_eq!(store.pending_jobs("other").await.unwrap().len(), 1);

    let bad = job("Bad-Name", "j", "r", 0, vec![]);
    assert!(store.save_job(&bad).await.is_err());
    assert!(store.pending_jobs("Bad-Name").await.is_err());
}

/// Acknowledges every record; resumes jobs with every record acknowledged.
#[derive(Default)]
struct Accept {
    sent: Mutex<Vec<String>>,
    resumed: Mutex<Vec<String>>,
}

fn acknowledged(records: &[SyncRecord]) -> Vec<RecordOutcome> {
    records
        .iter()
        .map(|r| RecordOutcome {
            key: r.key.clone(),
            result: Ok(()),
        })
        .collect()
}

#[async_trait]
impl SyncTarget for Accept {
    fn name(&self) -> &str {
        "zendesk"
    }
    fn required_fields(&self) -> Vec<String> {
        vec!["email".to_string()]
    }
    fn max_batch(&self) -> usize {
        100
    }
    fn modes(&self) -> &'static [SyncWriteMode] {
        SyncWriteMode::ALL
    }
    async fn apply(
        &self,
        _mode: SyncWriteMode,
        records: Vec<SyncRecord>,
    ) -> Result<Vec<RecordOutcome>, BoxError> {
        self.sent
            .lock()
            .unwrap()
            .extend(records.iter().map(|r| r.key.clone()));
        Ok(acknowledged(&records))
    }
    async fn resume_job(&self, job: &PendingJob) -> Result<Option<Vec<RecordOutcome>>, BoxError> {
        self.resumed.lock().unwrap().push(job.job.clone());
        Ok(Some(acknowledged(&job.records)))
    }
}

/// A job journaled with two of three planned records is resumed: they
/// enter the SQL snapshot with the job's row hashes, only the third is sent.
async fn resume_through_the_snapshot<W: Warehouse + SyncStore>(wh: &W) {
    for sql in [
        "CREATE SCHEMA models",
        "CREATE TABLE models.people (email VARCHAR, name VARCHAR)",
        "INSERT INTO models.people VALUES ('a@x.com', 'Ann'), ('b@x.com', 'Bob'), ('c@x.com', 'Cy')",
    ] {
        wh.query_rows(sql).await.unwrap();
    }
    let spec = spec();
    let planned = wh
        .planned(&spec, SyncAction::Create, None, 2)
        .await
        .unwrap();
    assert_eq!(planned.len(), 2);
    let pending = PendingJob {
        sync: "people".to_string(),
        run_id: "crashed".to_string(),
        target: "zendesk".to_string(),
        job: "job-1".to_string(),
        records: planned.clone(),
        submitted_at: Utc::now(),
    };
    wh.save_job(&pending).await.unwrap();

    let target = Accept::default();
    let options = SyncOptions::default();
    let report = run_sync(wh, &target, &spec, options).await.unwrap();
    assert_eq!(target.resumed.lock().unwrap().clone(), ["job-1"]);
    assert_eq!(target.sent.lock().unwrap().clone(), ["c@x.com"]);
    assert_eq!(
        (
            report.resumed,
            report.created,
            report.plan.creates,
            report.batches
        ),
        (2, 1, 1, 1)
    );
    assert!(wh.pending_jobs("people").await.unwrap().is_empty());
    let snapshot = wh
        .query_rows(r#"SELECT "key", row_hash FROM _weft."_weft_sync_snapshot_people" ORDER BY 1"#)
        .await
        .unwrap();
    assert_eq!(snapshot.len(), 3);
    assert_eq!(snapshot[0][1], json!(planned[0].row_hash));
    assert_eq!(snapshot[1][1], json!(planned[1].row_hash));
    let log = wh
        .query_rows(&format!(
            r#"SELECT count(*) FROM _weft._weft_sync_log WHERE run_id = '{}'"#,
            report.run_id
        ))
        .await
        .unwrap();
    assert_eq!(log[0][0].as_i64(), Some(3));

    // Nothing left: the next run resumes and sends nothing.
    let again = run_sync(wh, &target, &spec, options).await.unwrap();
    assert_eq!((again.resumed, again.batches), (0, 0));
    assert_eq!(target.sent.lock().unwrap().len(), 1);
}

#[cfg(feature = "duckdb")]
#[tokio::test]
async fn duckdb_saves_lists_and_finishes_sync_jobs() {
    let wh = weft_warehouse::DuckDbWarehouse::open_in_memory().unwrap();
    round_trip(&wh).await;
    resume_through_the_snapshot(&wh).await;
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn postgres_saves_lists_and_finishes_sync_jobs() {
    let pg = tokio::task::spawn_blocking(weft_testsvc::Postgres::start)
        .await
        .unwrap()
        .expect("a PostgreSQL >= 15 server (apt-get install -y postgresql)");
    let url = pg.create_database("sync_jobs").unwrap();
    let wh = weft_warehouse::PostgresWarehouse::connect(&url, None)
        .await
        .unwrap();
    round_trip(&wh).await;
    resume_through_the_snapshot(&wh).await;
}
