//! Staging layout, manifests, part rolling, rejects and listing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use arrow_array::{Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use weft_core::Reject;
use weft_stage::{Stage, read_local_part, read_local_rejects};

fn batch(ids: &[i64], with_email: bool) -> RecordBatch {
    let mut fields = vec![Field::new("id", DataType::Int64, false)];
    let mut cols: Vec<Arc<dyn Array>> = vec![Arc::new(Int64Array::from(ids.to_vec()))];
    if with_email {
        fields.push(Field::new("email", DataType::Utf8, true));
        cols.push(Arc::new(StringArray::from_iter(
            ids.iter().map(|i| Some(format!("u{i}@x.test"))),
        )));
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).unwrap()
}

async fn read_ids(
    stage: &Stage,
    manifest: &weft_stage::Manifest,
    dir: &std::path::Path,
) -> Vec<i64> {
    let local = stage.fetch_to_local(manifest, dir).await.unwrap();
    let mut ids = Vec::new();
    for part in &local.parts {
        for b in read_local_part(part).unwrap() {
            let b = b.unwrap();
            let col = b.column_by_name("id").unwrap();
            let col = col.as_any().downcast_ref::<Int64Array>().unwrap();
            ids.extend(col.values().iter().copied());
        }
    }
    ids
}

#[tokio::test]
async fn local_layout_and_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("nested/stage");
    let stage = Stage::from_url(root.to_str().unwrap()).unwrap();
    let abs = std::fs::canonicalize(&root).unwrap();
    assert_eq!(stage.local_dir(), Some(abs.clone()));
    assert_eq!(stage.url(), format!("file://{}", abs.display()));

    let mut w = stage.writer("stripe", "customers", "L1");
    w.write(batch(&[1, 2], false)).await.unwrap();
    w.write(batch(&[3], false)).await.unwrap();
    w.write(batch(&[], false)).await.unwrap();
    let m = w
        .finish(Some(serde_json::json!({"created": 7})))
        .await
        .unwrap();

    assert_eq!(m.load_id, "L1");
    assert_eq!(
        (m.pipeline.as_str(), m.stream.as_str()),
        ("stripe", "customers")
    );
    assert_eq!(m.rows, 3);
    assert_eq!(m.rejects, 0);
    assert_eq!(m.rejects_file, None);
    assert_eq!(m.files.len(), 1);
    assert_eq!(m.files[0].path, "stripe/customers/L1/part-00000.parquet");
    assert_eq!(m.files[0].rows, 3);
    let on_disk = std::fs::metadata(abs.join(&m.files[0].path)).unwrap().len();
    assert!(m.files[0].bytes > 0);
    assert_eq!(m.files[0].bytes, on_disk);
    assert_eq!(m.bytes(), on_disk);
    assert_eq!(m.state, Some(serde_json::json!({"created": 7})));
    assert_eq!(m.schema.fields().len(), 1);
    assert!(abs.join("stripe/customers/L1/manifest.json").is_file());

    // The manifest round-trips through the stage.
    let read = stage.manifest("stripe", "customers", "L1").await.unwrap();
    assert_eq!(read, m);
    // Local stages read in place: the fetch dir stays empty.
    let fetch = tempfile::tempdir().unwrap();
    assert_eq!(read_ids(&stage, &m, fetch.path()).await, vec![1, 2, 3]);
    assert_eq!(std::fs::read_dir(fetch.path()).unwrap().count(), 0);
}

#[tokio::test]
async fn file_url_works() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}", dir.path().join("st").display());
    let stage = Stage::from_url(&url).unwrap();
    let mut w = stage.writer("p", "s", "L1");
    w.write(batch(&[5], false)).await.unwrap();
    let m = w.finish(None).await.unwrap();
    assert!(dir.path().join("st").join(&m.files[0].path).is_file());
    assert_eq!(stage.list_loads("p", "s").await.unwrap(), vec!["L1"]);
}

#[tokio::test]
async fn schema_change_starts_a_new_part_and_manifest_has_the_union() {
    let stage = Stage::from_url("memory://").unwrap();
    let mut w = stage.writer("p", "s", "L1");
    w.write(batch(&[1, 2], false)).await.unwrap();
    w.write(batch(&[3], true)).await.unwrap();
    w.write(batch(&[4], true)).await.unwrap();
    let m = w.finish(None).await.unwrap();
    let paths: Vec<_> = m.files.iter().map(|f| (f.path.as_str(), f.rows)).collect();
    assert_eq!(
        paths,
        vec![
            ("p/s/L1/part-00000.parquet", 2),
            ("p/s/L1/part-00001.parquet", 2)
        ]
    );
    let names: Vec<_> = m
        .schema
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect();
    assert_eq!(names, vec!["id", "email"]);
    assert!(m.schema.field_with_name("email").unwrap().is_nullable());
    assert!(m.files.iter().all(|f| f.bytes > 0));

    let dir = tempfile::tempdir().unwrap();
    assert_eq!(read_ids(&stage, &m, dir.path()).await, vec![1, 2, 3, 4]);
    assert!(dir.path().join("p/s/L1/part-00001.parquet").is_file());
}

#[tokio::test]
async fn parts_roll_at_the_size_limit() {
    let stage = Stage::from_url("memory://root/prefix")
        .unwrap()
        .with_part_bytes(1);
    let mut w = stage.writer("p", "s", "L1");
    for i in 0..3 {
        w.write(batch(&[i], false)).await.unwrap();
    }
    let m = w.finish(None).await.unwrap();
    assert_eq!(m.files.len(), 3);
    assert_eq!(m.files[2].path, "p/s/L1/part-00002.parquet");
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(read_ids(&stage, &m, dir.path()).await, vec![0, 1, 2]);
}

#[tokio::test]
async fn rejects_round_trip() {
    let stage = Stage::from_url("memory://").unwrap();
    let mut w = stage.writer("p", "s", "L1");
    let rejects = vec![
        Reject {
            record: r#"{"id":"x"}"#.to_string(),
            reason: "id: expected integer".to_string(),
            field: Some("id".to_string()),
            row_loaded: false,
        },
        Reject {
            record: "not json".to_string(),
            reason: "malformed JSON".to_string(),
            field: None,
            row_loaded: false,
        },
    ];
    w.reject(rejects[..1].to_vec()).await.unwrap();
    w.reject(Vec::new()).await.unwrap();
    w.reject(rejects[1..].to_vec()).await.unwrap();
    let m = w.finish(None).await.unwrap();
    assert_eq!(m.rows, 0);
    assert!(m.files.is_empty());
    assert_eq!(m.rejects, 2);
    assert_eq!(m.rejects_file.as_deref(), Some("p/s/L1/rejects.parquet"));
    let dir = tempfile::tempdir().unwrap();
    let local = stage.fetch_to_local(&m, dir.path()).await.unwrap();
    let back = read_local_rejects(local.rejects.as_deref().unwrap()).unwrap();
    assert_eq!(back, rejects);
}

#[tokio::test]
async fn list_loads_ignores_loads_without_manifest_and_prune_keeps_the_newest() {
    let dir = tempfile::tempdir().unwrap();
    let stage = Stage::from_url(dir.path().to_str().unwrap()).unwrap();
    for id in ["L1", "L2", "L4"] {
        let mut w = stage.writer("p", "s", id);
        w.write(batch(&[1], false)).await.unwrap();
        w.finish(None).await.unwrap();
    }
    // An orphan (crashed before the manifest) older than the newest, and an
    // in-progress one newer than it.
    for id in ["L3", "L5"] {
        let mut w = stage.writer("p", "s", id);
        w.write(batch(&[1], false)).await.unwrap();
        // Dropping the writer leaves no manifest; close the part by hand so
        // the directory exists with a file in it.
        std::fs::create_dir_all(dir.path().join(format!("p/s/{id}"))).unwrap();
        std::fs::write(
            dir.path().join(format!("p/s/{id}/part-00000.parquet")),
            b"x",
        )
        .unwrap();
        drop(w);
    }
    assert_eq!(
        stage.list_loads("p", "s").await.unwrap(),
        vec!["L1", "L2", "L4"]
    );
    assert!(stage.list_loads("p", "other").await.unwrap().is_empty());
    assert!(stage.manifest("p", "s", "L3").await.is_err());

    let pruned = stage.prune("p", "s", 1).await.unwrap();
    assert_eq!(pruned, vec!["L1", "L2", "L3"]);
    assert_eq!(stage.list_loads("p", "s").await.unwrap(), vec!["L4"]);
    assert!(!dir.path().join("p/s/L1").exists());
    assert!(dir.path().join("p/s/L5/part-00000.parquet").is_file());
}

#[tokio::test]
async fn memory_stage_is_shared_by_clones_only() {
    let stage = Stage::from_url("memory://").unwrap();
    let mut w = stage.clone().writer("p", "s", "L1");
    w.write(batch(&[1], false)).await.unwrap();
    w.finish(None).await.unwrap();
    assert_eq!(stage.list_loads("p", "s").await.unwrap(), vec!["L1"]);
    assert_eq!(stage.local_dir(), None);
    let other = Stage::from_url("memory://").unwrap();
    assert!(other.list_loads("p", "s").await.unwrap().is_empty());
}

#[test]
fn bad_urls_are_rejected_without_leaking_credentials() {
    let err = Stage::from_url("ftp://user:hunter2@host/x")
        .unwrap_err()
        .to_string();
    assert!(err.contains("unsupported scheme `ftp`"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
}

#[test]
fn s3_url_builds_from_env_without_network() {
    let stage = Stage::from_url("s3://bucket/some/prefix").unwrap();
    assert_eq!(stage.url(), "s3://bucket/some/prefix");
    assert_eq!(stage.local_dir(), None);
}
