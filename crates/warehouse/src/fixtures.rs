//! Test fixtures every warehouse's tests load with: small batches of
//! (id, updated, name) rows, the `shop.customers` load spec, and staging them
//! as a load in a local stage.
#![allow(clippy::unwrap_used, clippy::expect_used)]

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
        cursor: None,
        seconds: 0.0,
        error: (status == weft_core::StreamStatus::Failed).then(|| "boom: it's broken".to_string()),
        notices: Vec::new(),
        slices: None,
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
}
