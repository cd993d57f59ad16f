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
