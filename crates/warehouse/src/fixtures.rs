//! Test fixtures every warehouse's tests load with: small batches of
//! (id, updated, name) rows, the `shop.customers` load spec, and staging them
//! as a load in a local stage.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::{Int64Array, RecordBatch, StringArray, TimestampSecondArray};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use serde_json::Value;
use weft_core::{Reject, WriteDisposition};
use weft_stage::{Manifest, Stage};

use crate::LoadSpec;

pub(crate) fn local_stage() -> (tempfile::TempDir, Stage) {
    let dir = tempfile::tempdir().unwrap();
    let stage = Stage::from_url(dir.path().join("stage").to_str().unwrap()).unwrap();
    (dir, stage)
}

pub(crate) fn batch(rows: &[(&str, i64, &str)]) -> RecordBatch {
    id_updated_name(false, rows.iter().map(|&(id, u, n)| (Some(id), Some(u), n)))
}

pub(crate) fn nullable(rows: &[(Option<&str>, Option<i64>, &str)]) -> RecordBatch {
    id_updated_name(true, rows.iter().copied())
}

/// (id, updated, name) rows as a batch; `id` nullable in the schema or not.
pub(crate) fn id_updated_name<'a>(
    nullable_id: bool,
    rows: impl Iterator<Item = (Option<&'a str>, Option<i64>, &'a str)>,
) -> RecordBatch {
    let (ids, (updated, names)): (Vec<_>, (Vec<_>, Vec<_>)) =
        rows.map(|(id, u, n)| (id, (u, n))).unzip();
    let schema = Schema::new(vec![
        Field::new("id", DataType::Utf8, nullable_id),
        Field::new("updated", DataType::Int64, true),
        Field::new("name", DataType::Utf8, true),
    ]);
    RecordBatch::try_new(
        Arc::new(schema),
        vec![
            Arc::new(StringArray::from(ids)),
            Arc::new(Int64Array::from(updated)),
            Arc::new(StringArray::from(names)),
        ],
    )
    .unwrap()
}

/// A batch with an extra `email` column and a timestamp.
pub(crate) fn wide(rows: &[(&str, i64, &str, &str)]) -> RecordBatch {
    let schema = Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("updated", DataType::Int64, true),
        Field::new("name", DataType::Utf8, true),
        Field::new("email", DataType::Utf8, true),
        Field::new(
            "seen",
            DataType::Timestamp(TimeUnit::Second, Some("UTC".into())),
            true,
        ),
    ]);
    RecordBatch::try_new(
        Arc::new(schema),
        vec![
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))),
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.1))),
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.2))),
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.3))),
            Arc::new(
                TimestampSecondArray::from_iter_values(rows.iter().map(|_| 1_700_000_000))
                    .with_timezone("UTC"),
            ),
        ],
    )
    .unwrap()
}

pub(crate) fn spec(disposition: WriteDisposition) -> LoadSpec {
    LoadSpec {
        pipeline: "shop".to_string(),
        stream: "customers".to_string(),
        primary_key: vec!["id".to_string()],
        cursor_field: Some("updated".to_string()),
        disposition,
    }
}

pub(crate) async fn stage_load(
    stage: &Stage,
    load_id: &str,
    batches: Vec<RecordBatch>,
    rejects: Vec<Reject>,
    state: Value,
) -> Manifest {
    stage_stream(stage, "customers", load_id, batches, rejects, state).await
}

pub(crate) async fn stage_stream(
    stage: &Stage,
    stream: &str,
    load_id: &str,
    batches: Vec<RecordBatch>,
    rejects: Vec<Reject>,
    state: Value,
) -> Manifest {
    let mut w = stage.writer("shop", stream, load_id);
    for b in batches {
        w.write(b).await.unwrap();
    }
    w.reject(rejects).await.unwrap();
    w.finish(Some(state)).await.unwrap()
}

fn stream_report(
    stream: &str,
    status: weft_core::StreamStatus,
    rows: u64,
) -> weft_core::StreamReport {
    weft_core::StreamReport {
        stream: stream.to_string(),
        status,
        rows,
        rejected: 1,
        bytes: 0,
        requests: 7,
        retries: 0,
        rate_limited: 2,
        wait_ms: 0,
        loads: 1,
        staged_bytes: 0,
        cursor: None,
        seconds: 0.0,
        error: (status == weft_core::StreamStatus::Failed).then(|| "boom: it's broken".to_string()),
        notices: Vec::new(),
        slices: None,
        source_count: None,
    }
}

/// The run history on any warehouse: begin/end round-trip exactly, newest
/// first, filtered by pipeline, limited; a run left `running` is marked
/// `abandoned` by the pipeline's next run; a failed run keeps its error.
pub(crate) async fn run_history(wh: &dyn crate::Warehouse) {
    use crate::{RunRecord, RunStatus};
    use weft_core::{RunReport, StreamStatus};
    assert!(wh.runs(None, 10).await.unwrap().is_empty());

    let mut first = RunRecord::start("shop", "manual");
    wh.begin_run(&first).await.unwrap();
    let read = wh.runs(None, 10).await.unwrap();
    assert_eq!(read.len(), 1);
    assert_eq!(read[0].status, RunStatus::Running);
    assert_eq!(read[0].finished_at, None);
    first.finish(&RunReport {
        pipeline: "shop".into(),
        streams: vec![
            stream_report("customers", StreamStatus::Succeeded, 40),
            stream_report("orders", StreamStatus::Succeeded, 2),
        ],
        seconds: 1.0,
        error: None,
    });
    wh.end_run(&first).await.unwrap();

    // Killed: never ended.
    let killed = RunRecord::start("shop", "schedule");
    wh.begin_run(&killed).await.unwrap();
    let other = RunRecord::start("crm", "manual");
    wh.begin_run(&other).await.unwrap();
    let mut failed = RunRecord::start("shop", "manual");
    wh.begin_run(&failed).await.unwrap();
    failed.finish(&RunReport {
        pipeline: "shop".into(),
        streams: vec![stream_report("customers", StreamStatus::Failed, 0)],
        seconds: 1.0,
        error: None,
    });
    wh.end_run(&failed).await.unwrap();

    let shop = wh.runs(Some("shop"), 10).await.unwrap();
    let ids: Vec<&str> = shop.iter().map(|r| r.run_id.as_str()).collect();
    assert_eq!(ids, [&failed.run_id, &killed.run_id, &first.run_id]);
    // Times are kept to the millisecond.
    let ms = |t: chrono::DateTime<chrono::Utc>| t.timestamp_millis();
    assert_eq!(ms(shop[2].started_at), ms(first.started_at));
    assert_eq!(shop[2].finished_at.map(ms), first.finished_at.map(ms));
    let mut expected = first.clone();
    expected.started_at = shop[2].started_at;
    expected.finished_at = shop[2].finished_at;
    assert_eq!(shop[2], expected);
    assert_eq!(shop[2].status, RunStatus::Succeeded);
    assert_eq!(
        (
            shop[2].rows,
            shop[2].rejects,
            shop[2].requests,
            shop[2].rate_limited
        ),
        (42, 2, 14, 4)
    );
    assert_eq!(shop[1].status, RunStatus::Abandoned);
    assert_eq!(shop[1].trigger, "schedule");
    assert_eq!(shop[0].status, RunStatus::Failed);
    assert_eq!(
        shop[0].error.as_deref(),
        Some("customers: boom: it's broken")
    );

    let all = wh.runs(None, 2).await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].run_id, failed.run_id);
    assert_eq!(all[1].run_id, other.run_id);
    assert_eq!(all[1].status, RunStatus::Running);
    assert!(wh.runs(Some("nope"), 10).await.unwrap().is_empty());

    // A sync run in a scheduled job, named like a pipeline: its own kind,
    // not abandoned by that pipeline's next run.
    let slot = chrono::DateTime::from_timestamp(1_900_000_000, 0).unwrap();
    let mut sync = RunRecord::start_sync("shop", "manual").in_job("nightly", slot);
    wh.begin_run(&sync).await.unwrap();
    wh.begin_run(&RunRecord::start("shop", "manual"))
        .await
        .unwrap();
    let read = wh.runs(Some("shop"), 2).await.unwrap();
    assert_eq!(read[1].run_id, sync.run_id);
    assert_eq!(read[1].status, RunStatus::Running);
    assert_eq!(read[1].kind, crate::RunKind::Sync);
    assert_eq!(read[1].job.as_deref(), Some("nightly"));
    assert_eq!(read[1].trigger, "schedule");
    assert_eq!(read[1].scheduled_at, Some(slot));
    let report = weft_core::SyncReport {
        sync: "shop".into(),
        run_id: "r".into(),
        plan: Default::default(),
        created: 3,
        updated: 2,
        deleted: 1,
        rejected: 1,
        resumed: 0,
        batches: 4,
        dry_run: false,
        samples: Vec::new(),
        requests: Vec::new(),
    };
    sync.finish_sync(Ok(&report));
    wh.end_run(&sync).await.unwrap();
    let read = wh.runs(Some("shop"), 2).await.unwrap();
    assert_eq!(
        (
            read[1].status,
            read[1].rows,
            read[1].rejects,
            read[1].requests
        ),
        (RunStatus::Succeeded, 6, 1, 4)
    );
    // A stream stopped by a signal carries its cancel as an error; the run
    // is cancelled, not failed, unless a stream failed too.
    let mut stopped = stream_report("orders", StreamStatus::Cancelled, 3);
    stopped.error = Some("orders: cancelled".into());
    let mut run = RunRecord::start("shop", "manual");
    let mut report = RunReport {
        pipeline: "shop".into(),
        streams: vec![
            stream_report("customers", StreamStatus::Succeeded, 1),
            stopped,
        ],
        seconds: 1.0,
        error: None,
    };
    run.finish(&report);
    assert_eq!(run.status, RunStatus::Cancelled);
    report
        .streams
        .push(stream_report("refunds", StreamStatus::Failed, 0));
    run.finish(&report);
    assert_eq!(run.status, RunStatus::Failed);
}

/// A history table made before `kind`, `job` and `scheduled_at` existed
/// gets them, and its rows read as pipeline runs.
pub(crate) async fn run_history_migrates(wh: &dyn crate::Warehouse) {
    wh.query(
        "CREATE TABLE _weft._weft_runs (\
         run_id TEXT PRIMARY KEY, pipeline TEXT NOT NULL, \"trigger\" TEXT NOT NULL, \
         host TEXT NOT NULL, pid BIGINT NOT NULL, started_at TEXT NOT NULL, finished_at TEXT, \
         status TEXT NOT NULL, \"rows\" BIGINT NOT NULL, rejects BIGINT NOT NULL, \
         requests BIGINT NOT NULL, rate_limited BIGINT NOT NULL, error TEXT)",
    )
    .await
    .unwrap();
    wh.query(
        "INSERT INTO _weft._weft_runs VALUES ('20260101T000000Z-old', 'shop', 'manual', 'h', 1, \
         '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:05.000Z', 'succeeded', 7, 0, 2, 0, NULL)",
    )
    .await
    .unwrap();
    let runs = wh.runs(None, 5).await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].kind, crate::RunKind::Pipeline);
    assert_eq!((runs[0].rows, runs[0].job.clone()), (7, None));
    let new = crate::RunRecord::start("shop", "manual");
    wh.begin_run(&new).await.unwrap();
    assert_eq!(wh.runs(None, 5).await.unwrap()[0].run_id, new.run_id);
}

/// Leases on any warehouse: one holder at a time, the holder named, free
/// after release, renewed while held, taken over once expired or once its
/// owner process is gone, lost when taken, and a scheduled time run once.
pub(crate) async fn leases(wh: std::sync::Arc<dyn crate::Warehouse>) {
    use crate::{Claim, Lease, LeaseOptions, WarehouseError};
    use std::time::Duration;
    let held = |c: Claim| match c {
        Claim::Held(lease) => lease,
        Claim::SlotTaken { holder } => panic!("slot taken by {holder}"),
    };
    let opts = LeaseOptions {
        ttl: Duration::from_millis(600),
        ..LeaseOptions::default()
    };
    let a = held(
        Lease::acquire(wh.clone(), "pipeline:shop", "run-a", opts)
            .await
            .unwrap(),
    );
    let err = Lease::acquire(wh.clone(), "pipeline:shop", "run-b", opts)
        .await
        .unwrap_err();
    assert!(matches!(err, WarehouseError::Running { .. }), "{err}");
    let said = err.to_string();
    assert!(
        said.starts_with("pipeline `shop` is running on host "),
        "{said}"
    );
    assert!(
        said.contains(&format!("(pid {})", std::process::id())),
        "{said}"
    );
    assert!(said.contains("run run-a"), "{said}");
    // Another name is another lease.
    let other = held(
        Lease::acquire(wh.clone(), "sync:shop", "run-b", opts)
            .await
            .unwrap(),
    );
    // Renewed while held: well past its ttl nobody can take it.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert!(
        Lease::acquire(wh.clone(), "pipeline:shop", "run-b", opts)
            .await
            .is_err()
    );
    assert!(!a.lost().is_cancelled());
    // Released: free at once.
    a.release().await.unwrap();
    let b = held(
        Lease::acquire(wh.clone(), "pipeline:shop", "run-b", opts)
            .await
            .unwrap(),
    );
    // Dropped without release (a frozen runner): taken over once expired,
    // and a waiting runner gets it then.
    drop(b);
    let waiting = LeaseOptions {
        wait: Duration::from_secs(10),
        ..opts
    };
    let started = std::time::Instant::now();
    let c = held(
        Lease::acquire(wh.clone(), "pipeline:shop", "run-c", waiting)
            .await
            .unwrap(),
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    // Taken over behind its back: the holder learns it lost the lease.
    wh.query("UPDATE _weft._weft_leases SET run_id = 'thief' WHERE name = 'pipeline:shop'")
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(5), c.lost().cancelled())
        .await
        .expect("the holder notices the take-over");
    // An owner on this host whose process is gone: taken over at once.
    wh.query(&format!(
        "UPDATE _weft._weft_leases SET run_id = 'dead', pid = {}, expires_ms = expires_ms + 3600000 \
         WHERE name = 'pipeline:shop'",
        u32::MAX - 1
    ))
    .await
    .unwrap();
    let d = held(
        Lease::acquire(wh.clone(), "pipeline:shop", "run-d", opts)
            .await
            .unwrap(),
    );
    d.release().await.unwrap();
    other.release().await.unwrap();
    // A scheduled time runs once: claimed by one run, refused to the next,
    // while the next time is free.
    let slot = |ms| LeaseOptions {
        slot_ms: Some(ms),
        ..opts
    };
    let s1 = held(
        Lease::acquire(wh.clone(), "job:nightly", "run-e", slot(1_000))
            .await
            .unwrap(),
    );
    s1.release().await.unwrap();
    match Lease::acquire(wh.clone(), "job:nightly", "run-f", slot(1_000))
        .await
        .unwrap()
    {
        Claim::SlotTaken { holder } => assert!(holder.contains("run run-e"), "{holder}"),
        Claim::Held(_) => panic!("a scheduled time ran twice"),
    }
    let s2 = held(
        Lease::acquire(wh.clone(), "job:nightly", "run-f", slot(2_000))
            .await
            .unwrap(),
    );
    // A manual run of the job does not move its slot.
    s2.release().await.unwrap();
    held(
        Lease::acquire(wh.clone(), "job:nightly", "run-g", opts)
            .await
            .unwrap(),
    )
    .release()
    .await
    .unwrap();
    let rows = crate::leases(wh.as_ref()).await.unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["job:nightly", "pipeline:shop", "sync:shop"]);
    assert_eq!(rows[0].slot_ms, Some(2_000));
    assert_eq!(rows[0].run_id, "run-g");
    assert!(
        rows.iter().all(|r| r.expires_ms == 0),
        "all released: {rows:?}"
    );
}

/// Budget holders on any warehouse: each owner counted once per budget,
/// expired holders drop out, a released owner is gone.
pub(crate) async fn budget_holders(wh: &dyn crate::Warehouse) {
    use std::time::Duration;
    let budgets = ["stripe/acct".to_string(), "zoom/acct".to_string()];
    let ttl = Duration::from_millis(400);
    let one = crate::hold_budgets(wh, "runner-1", &budgets, ttl)
        .await
        .unwrap();
    assert_eq!(one.values().copied().collect::<Vec<_>>(), [1, 1]);
    let two = crate::hold_budgets(wh, "runner-2", &budgets[..1], ttl)
        .await
        .unwrap();
    assert_eq!(two.get("stripe/acct"), Some(&2));
    // A heartbeat does not count its owner twice.
    let again = crate::hold_budgets(wh, "runner-1", &budgets, ttl)
        .await
        .unwrap();
    assert_eq!((again["stripe/acct"], again["zoom/acct"]), (2, 1));
    // runner-2 stops heartbeating: gone once its row expires.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let alone = crate::hold_budgets(wh, "runner-1", &budgets, ttl)
        .await
        .unwrap();
    assert_eq!(alone["stripe/acct"], 1);
    crate::hold_budgets(wh, "runner-3", &budgets[..1], Duration::from_secs(60))
        .await
        .unwrap();
    crate::release_budgets(wh, "runner-3").await.unwrap();
    let after = crate::hold_budgets(wh, "runner-1", &budgets, ttl)
        .await
        .unwrap();
    assert_eq!(after["stripe/acct"], 1);
}

/// `_weft._weft_quality` round-trips every column (NULLs included), reads
/// newest run first within a pipeline and up to the limit, and
/// `loads_since` lists a pipeline's loads from an id on, in id order.
pub(crate) async fn quality_history(wh: &dyn crate::Warehouse) {
    use crate::{QualityKind, QualityRow, QualityStatus};
    assert!(wh.quality("shop", 10).await.unwrap().is_empty());
    let at =
        chrono::DateTime::from_timestamp_micros(chrono::Utc::now().timestamp_micros()).unwrap();
    let (first_run, second_run) = (weft_core::new_load_id(), weft_core::new_load_id());
    let volume = QualityRow {
        run_id: first_run.clone(),
        pipeline: "shop".to_string(),
        stream: "customers".to_string(),
        load_id: Some("L1".to_string()),
        kind: QualityKind::Volume,
        column: None,
        observed: Some(0.0),
        expected: Some(1234.5),
        threshold: Some("<= 123.45 or >= 12345".to_string()),
        status: QualityStatus::Warn,
        message: "0 rows; usually 1234.5 (it's odd)".to_string(),
        checked_at: at,
    };
    let not_null = QualityRow {
        run_id: second_run.clone(),
        load_id: None,
        kind: QualityKind::NotNull,
        column: Some("email".to_string()),
        observed: Some(3.0),
        expected: Some(0.0),
        threshold: None,
        status: QualityStatus::Fail,
        message: "email has 3 NULLs".to_string(),
        ..volume.clone()
    };
    let other_pipeline = QualityRow {
        pipeline: "crm".to_string(),
        observed: None,
        expected: None,
        status: QualityStatus::Ok,
        ..volume.clone()
    };
    wh.record_quality(&[volume.clone(), other_pipeline.clone()])
        .await
        .unwrap();
    wh.record_quality(std::slice::from_ref(&not_null))
        .await
        .unwrap();
    wh.record_quality(&[]).await.unwrap();
    assert_eq!(
        wh.quality("shop", 10).await.unwrap(),
        [not_null.clone(), volume]
    );
    assert_eq!(wh.quality("shop", 1).await.unwrap(), [not_null]);
    assert_eq!(wh.quality("crm", 10).await.unwrap(), [other_pipeline]);
    assert_eq!(
        wh.query_rows(
            "SELECT kind, status, column_name FROM _weft._weft_quality \
             WHERE pipeline = 'shop' ORDER BY kind"
        )
        .await
        .unwrap(),
        [
            vec![
                Value::from("not_null"),
                Value::from("fail"),
                Value::from("email")
            ],
            vec![Value::from("volume"), Value::from("warn"), Value::Null],
        ]
    );

    // Loads from an id on: the first load is before it, the others after.
    let (_dir, stage) = local_stage();
    let spec = spec(WriteDisposition::Append);
    let ids: Vec<String> = (0..3).map(|_| weft_core::new_load_id()).collect();
    for (i, id) in ids.iter().enumerate() {
        let rows: Vec<(String, i64, &str)> = (0..=i)
            .map(|n| (format!("c{i}-{n}"), n as i64, "x"))
            .collect();
        let rows: Vec<(&str, i64, &str)> =
            rows.iter().map(|(a, b, c)| (a.as_str(), *b, *c)).collect();
        let manifest = stage_load(&stage, id, vec![batch(&rows)], vec![], Value::Null).await;
        wh.commit_load(&stage, &manifest, &spec).await.unwrap();
    }
    let since = wh.loads_since("shop", &ids[1]).await.unwrap();
    let got: Vec<(String, u64)> = since.iter().map(|l| (l.load_id.clone(), l.rows)).collect();
    assert_eq!(got, [(ids[1].clone(), 2), (ids[2].clone(), 3)]);
    assert!(since.iter().all(|l| l.stream == "customers"));
    assert!(wh.loads_since("crm", &ids[0]).await.unwrap().is_empty());
    assert_eq!(wh.loads_since("shop", "").await.unwrap().len(), 3);
}

/// One staged record of a `history` test: (id, updated, name, deleted).
pub(crate) type HistoryRow = (&'static str, i64, &'static str, bool);

/// (id, updated, name, `_weft_deleted_at`) rows as a batch.
pub(crate) fn with_deletes(rows: &[HistoryRow]) -> RecordBatch {
    use arrow_array::TimestampMicrosecondArray;
    let schema = Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("updated", DataType::Int64, true),
        Field::new("name", DataType::Utf8, true),
        Field::new(
            weft_core::DELETED_AT,
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
    ]);
    RecordBatch::try_new(
        Arc::new(schema),
        vec![
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))),
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.1))),
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.2))),
            Arc::new(
                TimestampMicrosecondArray::from(
                    rows.iter()
                        .map(|r| r.3.then_some(1_700_000_000_000_000))
                        .collect::<Vec<_>>(),
                )
                .with_timezone("UTC"),
            ),
        ],
    )
    .unwrap()
}

/// A version in the model of a `history` table: (updated, name, deleted, current).
pub(crate) type ModelVersion = (i64, String, bool, bool);

/// The versions per id a `history` table must hold after `loads`, and the
/// versions each load adds: the merge's winner per id (greatest `updated`,
/// ties to the last staged row) becomes a new version unless the latest
/// version is newer, or is current with the same values, or ended by a
/// delete and the winner is deleted too; a new version closes the current
/// one; a deleted winner is a version that is not current.
pub(crate) fn history_model(
    loads: &[Vec<HistoryRow>],
) -> (BTreeMap<String, Vec<ModelVersion>>, Vec<u64>) {
    let mut table: BTreeMap<String, Vec<ModelVersion>> = BTreeMap::new();
    let mut added = Vec::new();
    for load in loads {
        let mut winners: BTreeMap<&str, &HistoryRow> = BTreeMap::new();
        for row in load {
            match winners.get(row.0) {
                Some(w) if w.1 > row.1 => {}
                _ => {
                    winners.insert(row.0, row);
                }
            }
        }
        let mut n = 0;
        for (id, &&(_, updated, name, deleted)) in &winners {
            let versions = table.entry(id.to_string()).or_default();
            if let Some((u, nm, _, current)) = versions.last() {
                let unchanged =
                    (*current && !deleted && *u == updated && nm == name) || (!*current && deleted);
                if *u > updated || unchanged {
                    continue;
                }
            }
            if let Some(last) = versions.last_mut() {
                last.3 = false;
            }
            versions.push((updated, name.to_string(), deleted, !deleted));
            n += 1;
        }
        added.push(n);
    }
    table.retain(|_, v| !v.is_empty());
    (table, added)
}

/// Commits `loads` into the `history` table `shop.{stream}` and checks it
/// holds exactly [`history_model`]'s versions, in order, with consistent
/// validity: a version is current exactly when its `_weft_valid_to` is
/// NULL (only the last can be), a version ended by a delete is zero-length,
/// and every other ends when the next begins.
pub(crate) async fn history_matches_the_model(
    wh: &dyn crate::Warehouse,
    stream: &str,
    loads: &[Vec<HistoryRow>],
) {
    let (_dir, stage) = local_stage();
    let spec = LoadSpec {
        stream: stream.to_string(),
        ..spec(WriteDisposition::History)
    };
    let (expected, added) = history_model(loads);
    for (i, load) in loads.iter().enumerate() {
        let batches = if load.is_empty() {
            vec![]
        } else {
            vec![with_deletes(load)]
        };
        let m = stage_stream(
            &stage,
            stream,
            &format!("{stream}-L{i:04}"),
            batches,
            vec![],
            serde_json::json!({ "load": i }),
        )
        .await;
        let r = wh.commit_load(&stage, &m, &spec).await.unwrap();
        assert_eq!(r.rows, added[i], "load {i} of {loads:?}");
    }
    if expected.is_empty() {
        return;
    }
    let rows = wh
        .query_rows(&format!(
            "SELECT id, updated, name, CASE WHEN \"_weft_deleted_at\" IS NULL THEN 0 ELSE 1 END, \
             CASE WHEN \"_weft_is_current\" THEN 1 ELSE 0 END, \
             CAST(\"_weft_valid_from\" AS VARCHAR), CAST(\"_weft_valid_to\" AS VARCHAR) \
             FROM \"shop\".\"{stream}\" ORDER BY id, \"_weft_valid_from\""
        ))
        .await
        .unwrap();
    let mut actual: BTreeMap<String, Vec<ModelVersion>> = BTreeMap::new();
    let mut validity: BTreeMap<String, Vec<(Value, Value)>> = BTreeMap::new();
    for r in &rows {
        let id = r[0].as_str().unwrap().to_string();
        actual.entry(id.clone()).or_default().push((
            r[1].as_i64().unwrap(),
            r[2].as_str().unwrap().to_string(),
            r[3].as_i64().unwrap() == 1,
            r[4].as_i64().unwrap() == 1,
        ));
        validity
            .entry(id)
            .or_default()
            .push((r[5].clone(), r[6].clone()));
    }
    assert_eq!(actual, expected, "{loads:?}");
    for (id, spans) in &validity {
        let versions = &actual[id];
        for (i, ((from, to), v)) in spans.iter().zip(versions).enumerate() {
            assert!(!from.is_null(), "{id} version {i}: no valid_from");
            assert_eq!(to.is_null(), v.3, "{id} version {i}: valid_to vs current");
            if v.2 {
                assert_eq!(to, from, "{id} version {i}: a delete is zero-length");
            } else if let Some((next_from, _)) = spans.get(i + 1) {
                assert_eq!(to, next_from, "{id} version {i}: ends when the next begins");
            }
        }
    }
}

/// The fixed `history` sequences every warehouse runs: an update, a
/// re-read of the same record, a stale row, a delete, a re-read delete, an
/// undelete, and duplicates within a load.
pub(crate) fn history_cases() -> Vec<Vec<Vec<HistoryRow>>> {
    vec![
        vec![
            vec![("a", 1, "a1", false), ("b", 1, "b1", false)],
            // a changes; b is re-read unchanged (no version).
            vec![("a", 2, "a2", false), ("b", 1, "b1", false)],
            // a stale row of a loses; b is deleted.
            vec![("a", 1, "a-old", false), ("b", 2, "b1", true)],
            // b's delete is read again (nothing), then b comes back.
            vec![("b", 2, "b1", true)],
            vec![("b", 3, "b3", false), ("c", 1, "c1", true)],
            // Within a load the greatest cursor wins, ties to the last row.
            vec![
                ("a", 4, "a4", false),
                ("a", 3, "a3", false),
                ("c", 2, "c2", false),
                ("c", 2, "c2b", false),
            ],
            vec![],
        ],
        // A changed value at the same cursor is a new version too.
        vec![vec![("a", 1, "x", false)], vec![("a", 1, "y", false)]],
    ]
}

/// Loads for the `history` proptest: up to 6 loads of up to 5 rows over
/// ids a..c, cursors 0..4, two names, sometimes deleted.
pub(crate) fn history_loads() -> impl proptest::strategy::Strategy<Value = Vec<Vec<HistoryRow>>> {
    use proptest::prelude::*;
    let row = (
        prop::sample::select(vec!["a", "b", "c"]),
        0i64..4,
        prop::sample::select(vec!["n1", "n2"]),
        prop::bool::weighted(0.2),
    );
    prop::collection::vec(prop::collection::vec(row, 0..5), 1..6)
}

/// The sync log's pre-images on any warehouse: a create has none; an
/// update's is what the key's latest acknowledged create or update sent
/// (a reject in between is not one); `run_log` lists a run's writes in key
/// order and marks those a later acknowledged write superseded.
pub(crate) async fn sync_log_pre_images(store: &dyn weft_core::SyncStore) {
    use weft_core::{RecordOutcome, SyncAction, SyncRecord, SyncSpec};
    let spec = SyncSpec {
        name: "people".to_string(),
        model: "models.people".to_string(),
        primary_key: "email".to_string(),
        mode: weft_core::SyncWriteMode::Upsert,
        mapping: BTreeMap::from([("name".to_string(), "name".to_string())]),
    };
    let write = |key: &str, action: SyncAction, name: &str| SyncRecord {
        key: key.to_string(),
        action,
        row_hash: format!("h-{name}"),
        fields: BTreeMap::from([("name".to_string(), serde_json::json!(name))]),
    };
    let record = |run: &'static str, records: Vec<SyncRecord>, rejected: &'static [&str]| {
        let outcomes: Vec<RecordOutcome> = records
            .iter()
            .map(|r| RecordOutcome {
                key: r.key.clone(),
                result: if rejected.contains(&r.key.as_str()) {
                    Err("no".to_string())
                } else {
                    Ok(())
                },
            })
            .collect();
        let spec = spec.clone();
        async move { store.record(&spec, run, &records, &outcomes).await.unwrap() }
    };
    record(
        "r1",
        vec![
            write("a", SyncAction::Create, "a1"),
            write("b", SyncAction::Create, "b1"),
        ],
        &[],
    )
    .await;
    // b's update is rejected: it replaced nothing, so it is no pre-image.
    record("r2", vec![write("b", SyncAction::Update, "b2")], &["b"]).await;
    record(
        "r3",
        vec![
            write("a", SyncAction::Update, "a3"),
            write("b", SyncAction::Update, "b3"),
        ],
        &[],
    )
    .await;
    record("r4", vec![write("a", SyncAction::Update, "a4")], &[]).await;
    let name = |v: &Option<BTreeMap<String, Value>>| v.as_ref().map(|f| f["name"].clone());
    let log = store.run_log("people", "r3").await.unwrap();
    let got: Vec<_> = log
        .iter()
        .map(|e| {
            (
                e.key.as_str(),
                e.action,
                e.acknowledged,
                e.sent["name"].clone(),
                name(&e.previous),
                e.superseded,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "a",
                SyncAction::Update,
                true,
                serde_json::json!("a3"),
                Some(serde_json::json!("a1")),
                true
            ),
            (
                "b",
                SyncAction::Update,
                true,
                serde_json::json!("b3"),
                Some(serde_json::json!("b1")),
                false
            ),
        ]
    );
    let r1 = store.run_log("people", "r1").await.unwrap();
    assert_eq!(r1.len(), 2);
    assert!(
        r1.iter()
            .all(|e| e.previous.is_none() && e.superseded && e.action == SyncAction::Create)
    );
    let r2 = store.run_log("people", "r2").await.unwrap();
    assert_eq!((r2.len(), r2[0].acknowledged), (1, false));
    assert!(store.run_log("people", "r9").await.unwrap().is_empty());
}
