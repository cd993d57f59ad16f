//! The DuckDB sync store: the diff in SQL, the snapshot, rejects and the log.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use serde_json::{Value, json};
use weft_core::{
    BoxError, CoreError, RecordOutcome, SyncAction, SyncOptions, SyncRecord, SyncSpec, SyncStore,
    SyncTarget, SyncWriteMode, run_sync,
};

use crate::{DuckDbWarehouse, WarehouseError};

fn exec(wh: &DuckDbWarehouse, sql: &str) {
    wh.lock().unwrap().execute_batch(sql).unwrap();
}

fn people() -> DuckDbWarehouse {
    let wh = DuckDbWarehouse::open_in_memory().unwrap();
    exec(
        &wh,
        "CREATE SCHEMA models;
         CREATE TABLE models.people (email VARCHAR, first_name VARCHAR, age INTEGER,
             vip BOOLEAN, score DOUBLE, seen TIMESTAMPTZ);
         INSERT INTO models.people VALUES
           ('a@example.com', 'Ann', 41, true, 1.5, '2024-01-02 03:04:05+00'),
           ('b@example.com', NULL, NULL, false, NULL, NULL),
           ('c@example.com', 'Cy', 7, NULL, 2.0, '2024-05-06 07:08:09+00'),
           (NULL, 'Nobody', 1, true, 0.0, NULL);",
    );
    wh
}

fn spec(mode: SyncWriteMode) -> SyncSpec {
    SyncSpec {
        name: "people".to_string(),
        model: "models.people".to_string(),
        primary_key: "email".to_string(),
        mode,
        mapping: BTreeMap::from([
            ("email_address".to_string(), "email".to_string()),
            ("FNAME".to_string(), "first_name".to_string()),
            ("AGE".to_string(), "age".to_string()),
            ("VIP".to_string(), "vip".to_string()),
            ("SCORE".to_string(), "score".to_string()),
            ("SEEN".to_string(), "seen".to_string()),
        ]),
    }
}

fn ok(records: &[SyncRecord]) -> Vec<RecordOutcome> {
    records
        .iter()
        .map(|r| RecordOutcome {
            key: r.key.clone(),
            result: Ok(()),
        })
        .collect()
}

async fn all(wh: &DuckDbWarehouse, spec: &SyncSpec, action: SyncAction) -> Vec<SyncRecord> {
    wh.planned(spec, action, None, 1_000_000).await.unwrap()
}

async fn record_all(wh: &DuckDbWarehouse, spec: &SyncSpec, run: &str) {
    for action in [SyncAction::Create, SyncAction::Update, SyncAction::Delete] {
        let records = all(wh, spec, action).await;
        wh.record(spec, run, &records, &ok(&records)).await.unwrap();
    }
}

fn count(wh: &DuckDbWarehouse, sql: &str) -> i64 {
    wh.query_rows(sql).unwrap()[0][0].as_i64().unwrap()
}

#[tokio::test]
async fn plan_counts_creates_with_typed_fields_in_key_pages() {
    let wh = people();
    let spec = spec(SyncWriteMode::Upsert);
    let plan = wh.plan(&spec).await.unwrap();
    assert_eq!(
        (plan.creates, plan.updates, plan.deletes, plan.model_rows),
        (3, 0, 0, 3)
    );

    let first = wh
        .planned(&spec, SyncAction::Create, None, 2)
        .await
        .unwrap();
    let keys: Vec<_> = first.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(keys, ["a@example.com", "b@example.com"]);
    let a = &first[0];
    assert_eq!(a.action, SyncAction::Create);
    assert_eq!(a.row_hash.len(), 32);
    assert_eq!(a.fields["email_address"], json!("a@example.com"));
    assert_eq!(a.fields["FNAME"], json!("Ann"));
    assert_eq!(a.fields["AGE"], json!(41));
    assert_eq!(a.fields["VIP"], json!(true));
    assert_eq!(a.fields["SCORE"], json!(1.5));
    assert_eq!(a.fields["SEEN"], json!("2024-01-02T03:04:05+00:00"));
    let b = &first[1];
    assert_eq!(b.fields["FNAME"], Value::Null);
    assert_eq!(b.fields["VIP"], json!(false));
    assert_eq!(b.fields.len(), 6);

    let rest = wh
        .planned(&spec, SyncAction::Create, Some("b@example.com"), 2)
        .await
        .unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].key, "c@example.com");
    assert!(all(&wh, &spec, SyncAction::Update).await.is_empty());
}

#[tokio::test]
async fn recorded_rows_leave_the_plan_and_changes_and_deletes_come_back() {
    let wh = people();
    let spec = spec(SyncWriteMode::Mirror);
    wh.plan(&spec).await.unwrap();
    record_all(&wh, &spec, "run-1").await;
    assert_eq!(
        count(&wh, "SELECT count(*) FROM _weft._weft_sync_snapshot_people"),
        3
    );
    let plan = wh.plan(&spec).await.unwrap();
    assert_eq!((plan.creates, plan.updates, plan.deletes), (0, 0, 0));

    exec(
        &wh,
        "UPDATE models.people SET first_name = 'Bea' WHERE email = 'b@example.com'",
    );
    let plan = wh.plan(&spec).await.unwrap();
    assert_eq!((plan.creates, plan.updates, plan.deletes), (0, 1, 0));
    let updates = all(&wh, &spec, SyncAction::Update).await;
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0].key, "b@example.com");
    assert_eq!(updates[0].fields["FNAME"], json!("Bea"));
    wh.record(&spec, "run-2", &updates, &ok(&updates))
        .await
        .unwrap();

    exec(
        &wh,
        "DELETE FROM models.people WHERE email = 'c@example.com'",
    );
    let plan = wh.plan(&spec).await.unwrap();
    assert_eq!((plan.creates, plan.updates, plan.deletes), (0, 0, 1));
    let deletes = all(&wh, &spec, SyncAction::Delete).await;
    assert_eq!(deletes.len(), 1);
    assert_eq!(deletes[0].key, "c@example.com");
    assert!(deletes[0].fields.is_empty());
    wh.record(&spec, "run-3", &deletes, &ok(&deletes))
        .await
        .unwrap();
    assert_eq!(
        wh.query_rows("SELECT \"key\" FROM _weft._weft_sync_snapshot_people ORDER BY 1")
            .unwrap(),
        vec![vec![json!("a@example.com")], vec![json!("b@example.com")]]
    );
    let plan = wh.plan(&spec).await.unwrap();
    assert_eq!((plan.creates, plan.updates, plan.deletes), (0, 0, 0));

    assert_eq!(
        wh.query_rows(
            "SELECT run_id, \"action\", count(*) FROM _weft._weft_sync_log \
             WHERE result = 'ok' GROUP BY ALL ORDER BY 1"
        )
        .unwrap(),
        vec![
            vec![json!("run-1"), json!("create"), json!(3)],
            vec![json!("run-2"), json!("update"), json!(1)],
            vec![json!("run-3"), json!("delete"), json!(1)],
        ]
    );
}

#[tokio::test]
async fn a_rejected_key_stays_planned_and_is_recorded_with_its_reason() {
    let wh = people();
    let spec = spec(SyncWriteMode::Upsert);
    wh.plan(&spec).await.unwrap();
    let creates = all(&wh, &spec, SyncAction::Create).await;
    let outcomes: Vec<_> = creates
        .iter()
        .map(|r| RecordOutcome {
            key: r.key.clone(),
            result: if r.key == "b@example.com" {
                Err("Invalid Resource: looks fake".to_string())
            } else {
                Ok(())
            },
        })
        .collect();
    wh.record(&spec, "run-1", &creates, &outcomes)
        .await
        .unwrap();

    let plan = wh.plan(&spec).await.unwrap();
    assert_eq!((plan.creates, plan.updates), (1, 0));
    assert_eq!(
        all(&wh, &spec, SyncAction::Create).await[0].key,
        "b@example.com"
    );
    let rejects = wh
        .query_rows(
            "SELECT sync, run_id, \"key\", \"action\", reason, \"row\" FROM _weft._weft_sync_rejects",
        )
        .unwrap();
    assert_eq!(rejects.len(), 1);
    assert_eq!(
        rejects[0][..5],
        [
            json!("people"),
            json!("run-1"),
            json!("b@example.com"),
            json!("create"),
            json!("Invalid Resource: looks fake")
        ]
    );
    let row: Value = serde_json::from_str(rejects[0][5].as_str().unwrap()).unwrap();
    assert_eq!(row["email_address"], json!("b@example.com"));
    assert_eq!(row["VIP"], json!(false));
    assert_eq!(
        wh.query_rows(
            "SELECT result, reason FROM _weft._weft_sync_log WHERE \"key\" = 'b@example.com'"
        )
        .unwrap(),
        vec![vec![
            json!("rejected"),
            json!("Invalid Resource: looks fake")
        ]]
    );
    // Every logged record keeps the fields sent, acknowledged or not.
    let sent = wh
        .query_rows("SELECT \"key\", sent FROM _weft._weft_sync_log ORDER BY \"key\"")
        .unwrap();
    assert!(sent.len() > 1, "{sent:?}");
    for r in &sent {
        let fields: Value = serde_json::from_str(r[1].as_str().unwrap()).unwrap();
        assert_eq!(fields["email_address"], r[0], "{r:?}");
    }
}

#[tokio::test]
async fn the_row_hash_is_stable_and_tells_null_from_empty() {
    let spec = spec(SyncWriteMode::Upsert);
    let hashes = |wh: DuckDbWarehouse| {
        let spec = spec.clone();
        async move {
            wh.plan(&spec).await.unwrap();
            all(&wh, &spec, SyncAction::Create)
                .await
                .into_iter()
                .map(|r| (r.key, r.row_hash))
                .collect::<Vec<_>>()
        }
    };
    let first = hashes(people()).await;
    let again = hashes(people()).await;
    assert_eq!(first, again);
    assert!(
        first
            .iter()
            .all(|(_, h)| h.len() == 32 && h.bytes().all(|b| b.is_ascii_hexdigit()))
    );

    let wh = people();
    exec(
        &wh,
        "UPDATE models.people SET first_name = '' WHERE email = 'b@example.com'",
    );
    let changed = hashes(wh).await;
    assert_eq!(changed[0], first[0]);
    assert_ne!(changed[1].1, first[1].1, "NULL and '' hash differently");
}

#[tokio::test]
async fn bad_names_and_duplicate_keys_are_refused() {
    let wh = people();
    let mut bad = spec(SyncWriteMode::Upsert);
    bad.name = "People; DROP".to_string();
    let err = wh.plan(&bad).await.unwrap_err();
    assert!(
        err.to_string().contains("invalid sync name `People; DROP`"),
        "{err}"
    );

    exec(
        &wh,
        "INSERT INTO models.people VALUES ('a@example.com', 'Again', 1, true, 0.0, NULL)",
    );
    let err = wh.plan(&spec(SyncWriteMode::Upsert)).await.unwrap_err();
    let CoreError::SyncStore { source, .. } = &err else {
        panic!("unexpected {err}");
    };
    match source.downcast_ref::<WarehouseError>() {
        Some(WarehouseError::DuplicateKey { key, column, .. }) => {
            assert_eq!((key.as_str(), column.as_str()), ("a@example.com", "email"));
        }
        other => panic!("unexpected {other:?}"),
    }
}

/// Accepts everything; remembers how many records each call carried.
struct Accept {
    calls: Mutex<Vec<(SyncAction, usize)>>,
}

#[async_trait]
impl SyncTarget for Accept {
    fn name(&self) -> &str {
        "accept"
    }

    fn required_fields(&self) -> Vec<String> {
        vec!["email_address".to_string()]
    }

    fn max_batch(&self) -> usize {
        10_000
    }

    fn modes(&self) -> &'static [weft_core::SyncWriteMode] {
        weft_core::SyncWriteMode::ALL
    }

    async fn apply(
        &self,
        _mode: weft_core::SyncWriteMode,
        records: Vec<SyncRecord>,
    ) -> Result<Vec<RecordOutcome>, BoxError> {
        self.calls
            .lock()
            .unwrap()
            .push((records[0].action, records.len()));
        Ok(ok(&records))
    }
}

#[tokio::test]
async fn a_100k_row_model_with_1_percent_changed_plans_1000_updates() {
    let wh = DuckDbWarehouse::open_in_memory().unwrap();
    exec(
        &wh,
        "CREATE SCHEMA models;
         CREATE TABLE models.big AS
           SELECT i, 'k' || lpad(CAST(i AS VARCHAR), 6, '0') AS id,
                  'name ' || CAST(i AS VARCHAR) AS name, i * 2 AS n
           FROM range(100000) t(i);",
    );
    let spec = SyncSpec {
        name: "big".to_string(),
        model: "models.big".to_string(),
        primary_key: "id".to_string(),
        mode: SyncWriteMode::Upsert,
        mapping: BTreeMap::from([
            ("email_address".to_string(), "id".to_string()),
            ("NAME".to_string(), "name".to_string()),
            ("N".to_string(), "n".to_string()),
        ]),
    };
    let target = Accept {
        calls: Mutex::default(),
    };
    let options = SyncOptions::default();
    let first = run_sync(&wh, &target, &spec, options).await.unwrap();
    assert_eq!((first.created, first.batches), (100_000, 10));
    let again = run_sync(&wh, &target, &spec, options).await.unwrap();
    assert_eq!(
        (again.plan.creates, again.plan.updates, again.batches),
        (0, 0, 0)
    );

    exec(
        &wh,
        "UPDATE models.big SET name = name || ' (changed)' WHERE i % 100 = 0",
    );
    let plan = wh.plan(&spec).await.unwrap();
    assert_eq!(
        (plan.creates, plan.updates, plan.deletes, plan.model_rows),
        (0, 1_000, 0, 100_000)
    );
    target.calls.lock().unwrap().clear();
    let report = run_sync(&wh, &target, &spec, options).await.unwrap();
    assert_eq!(report.updated, 1_000);
    assert_eq!(
        *target.calls.lock().unwrap(),
        vec![(SyncAction::Update, 1_000)]
    );
    assert_eq!(
        count(
            &wh,
            "SELECT count(*) FROM _weft._weft_sync_log WHERE \"action\" = 'update'"
        ),
        1_000
    );
}
