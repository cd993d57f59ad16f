//! PostgreSQL warehouse tests against a real server (weft-testsvc).
//!
//! Each `#[tokio::test]` starts its own PostgreSQL (about a second) and gives
//! each case a fresh database; values are asserted exactly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::builder::{ListBuilder, StringBuilder};
use arrow_array::{
    Array, ArrayRef, BinaryArray, BooleanArray, Date32Array, Decimal128Array, Float64Array,
    Int64Array, RecordBatch, StringArray, StructArray, TimestampMicrosecondArray, UInt64Array,
};
use arrow_schema::{DataType, Field, Fields, Schema, TimeUnit};
use serde_json::{Value, json};
use weft_core::{
    Checkpoint, Destination, LoadReceipt, LoadTarget, RecordOutcome, Reject, StreamSpec,
    StreamState, SyncAction, SyncRecord, SyncSpec, SyncStore, SyncWriteMode, WriteDisposition,
};
use weft_stage::{Manifest, Stage, StagedFile};
use weft_testsvc::Postgres;

use super::conn::redact;
use super::types::{column_type, numeric_binary};
use super::*;
use crate::fixtures::{batch, local_stage, nullable, spec, stage_load, stage_stream, wide};
use crate::{Materialized, StagedDestination, WarehouseSource, replay, replay_stream};

// ---------------------------------------------------------------- helpers

async fn start() -> Postgres {
    tokio::task::spawn_blocking(Postgres::start)
        .await
        .unwrap()
        .expect("a PostgreSQL >= 15 server (apt-get install -y postgresql)")
}

/// A warehouse on a new database `db` of `pg`.
async fn fresh(pg: &Postgres, db: &str) -> Arc<PostgresWarehouse> {
    let url = pg.create_database(db).unwrap();
    Arc::new(PostgresWarehouse::connect(&url, None).await.unwrap())
}

async fn commit(
    wh: &PostgresWarehouse,
    stage: &Stage,
    manifest: &Manifest,
    spec: &LoadSpec,
) -> LoadReceipt {
    wh.commit_load(stage, manifest, spec).await.unwrap()
}

/// Stages one batch of `rows` as load `load_id` (no rejects) and commits it.
async fn load_rows(
    wh: &PostgresWarehouse,
    stage: &Stage,
    load_id: &str,
    rows: &[(&str, i64, &str)],
    state: Value,
    spec: &LoadSpec,
) -> LoadReceipt {
    let manifest = stage_load(stage, load_id, vec![batch(rows)], vec![], state).await;
    commit(wh, stage, &manifest, spec).await
}

async fn rows(wh: &PostgresWarehouse, sql: &str) -> Vec<Vec<Value>> {
    wh.query_rows(sql).await.unwrap()
}

/// All rows of `shop.customers` as (id, updated, name), NULL ids first.
async fn customers(wh: &PostgresWarehouse) -> Vec<Vec<Value>> {
    rows(
        wh,
        r#"SELECT id, updated, name FROM "shop"."customers" ORDER BY id NULLS FIRST, name"#,
    )
    .await
}

async fn count(wh: &PostgresWarehouse, sql: &str) -> i64 {
    rows(wh, sql).await[0][0].as_i64().unwrap()
}

fn row(values: &[Value]) -> Vec<Value> {
    values.to_vec()
}

// ------------------------------------------------------- no server needed

#[test]
fn sql_types() {
    let ty = |dt: DataType| column_type(&Field::new("c", dt, true), "p.s").unwrap();
    assert_eq!(ty(DataType::Boolean), "BOOLEAN");
    assert_eq!(ty(DataType::Int8), "SMALLINT");
    assert_eq!(ty(DataType::UInt16), "INTEGER");
    assert_eq!(ty(DataType::UInt32), "BIGINT");
    assert_eq!(ty(DataType::UInt64), "NUMERIC(20,0)");
    assert_eq!(ty(DataType::Float32), "REAL");
    assert_eq!(ty(DataType::Float64), "DOUBLE PRECISION");
    assert_eq!(ty(DataType::Decimal128(12, 2)), "NUMERIC(12,2)");
    assert_eq!(ty(DataType::LargeUtf8), "TEXT");
    assert_eq!(ty(DataType::Binary), "BYTEA");
    assert_eq!(ty(DataType::Date32), "DATE");
    assert_eq!(
        ty(DataType::Timestamp(
            TimeUnit::Nanosecond,
            Some("UTC".into())
        )),
        "TIMESTAMPTZ"
    );
    assert_eq!(
        ty(DataType::Timestamp(TimeUnit::Millisecond, None)),
        "TIMESTAMP"
    );
    assert_eq!(
        ty(DataType::List(Arc::new(Field::new(
            "item",
            DataType::Utf8,
            true
        )))),
        "TEXT[]"
    );
    let json = weft_core::FieldType::Json.field("j", true, "");
    assert_eq!(column_type(&json, "x").unwrap(), "JSONB");
    let bad = Field::new("l", DataType::Null, true);
    let err = column_type(&bad, "p.s").unwrap_err().to_string();
    assert_eq!(err, "p.s: column `l` has unsupported type Null");
}

/// Decodes weft's NUMERIC binary encoding back to text (for the test only).
fn numeric_text(bytes: &[u8]) -> String {
    let word = |i: usize| i16::from_be_bytes([bytes[2 * i], bytes[2 * i + 1]]);
    let (n, weight, sign, dscale) = (word(0) as usize, word(1), word(2) as u16, word(3));
    let digits: Vec<i16> = (0..n).map(|i| word(4 + i)).collect();
    let mut int = String::new();
    let mut frac = String::new();
    for (i, d) in digits.iter().enumerate() {
        let pos = weight - i as i16;
        if pos >= 0 {
            int.push_str(&format!("{d:04}"));
        } else {
            while (frac.len() as i16) < (-pos - 1) * 4 {
                frac.push_str("0000");
            }
            frac.push_str(&format!("{d:04}"));
        }
    }
    if weight >= 0 {
        for _ in (n as i16)..=weight {
            int.push_str("0000");
        }
    }
    let int = int.trim_start_matches('0');
    let int = if int.is_empty() { "0" } else { int };
    frac.truncate(dscale as usize);
    while frac.len() < dscale as usize {
        frac.push('0');
    }
    let sign = if sign == 0x4000 { "-" } else { "" };
    if dscale > 0 {
        format!("{sign}{int}.{frac}")
    } else {
        format!("{sign}{int}")
    }
}

#[test]
fn numeric_values_are_encoded_exactly() {
    for (neg, digits, scale, want) in [
        (false, "1200005", 5, "12.00005"),
        (false, "1", 6, "0.000001"),
        (true, "12345", 2, "-123.45"),
        (false, "0", 3, "0.000"),
        (false, "100000000", 0, "100000000"),
        (false, "123", -2, "12300"),
        (
            false,
            "99999999999999999999999999999999999999",
            10,
            "9999999999999999999999999999.9999999999",
        ),
    ] {
        assert_eq!(numeric_text(&numeric_binary(neg, digits, scale)), want);
    }
}

#[test]
fn urls_are_shown_without_passwords() {
    assert_eq!(
        redact("postgres://weft:s3cret@db.example:5432/prod?sslmode=require&password=x"),
        "postgres://weft@db.example:5432/prod?sslmode=require"
    );
    assert_eq!(
        redact("host=db user=weft password='a b\\' c' dbname=prod"),
        "host=db user=weft dbname=prod"
    );
    let err = super::conn::Pool::new("postgres://weft:s3cret@db.example:5432/prod?sslmode=bogus")
        .unwrap_err()
        .to_string();
    assert!(!err.contains("s3cret"), "{err}");
    assert!(
        err.contains("postgres://weft@db.example:5432/prod"),
        "{err}"
    );
}

// ------------------------------------------------------------ with server

#[tokio::test]
async fn merge_dedupes_within_and_across_loads() {
    let pg = start().await;

    // Within a load: the greatest cursor wins; on a cursor tie the last staged row wins.
    let (_dir, stage) = local_stage();
    let wh = fresh(&pg, "dedupe").await;
    let merge = spec(WriteDisposition::Merge);
    let m = stage_load(
        &stage,
        "L1",
        vec![
            batch(&[("a", 2, "a-new"), ("b", 1, "b-first")]),
            batch(&[("a", 1, "a-old"), ("b", 1, "b-last"), ("c", 5, "c")]),
        ],
        vec![],
        json!({"cursor": 5}),
    )
    .await;
    let r = commit(&wh, &stage, &m, &merge).await;
    assert_eq!((r.rows, r.already_committed, r.files), (3, false, 1));
    assert_eq!(
        customers(&wh).await,
        vec![
            row(&[json!("a"), json!(2), json!("a-new")]),
            row(&[json!("b"), json!(1), json!("b-last")]),
            row(&[json!("c"), json!(5), json!("c")]),
        ]
    );
    // Across loads: newer or equal cursors replace, an older cursor does not.
    let r = load_rows(
        &wh,
        &stage,
        "L2",
        &[
            ("a", 3, "a-3"),
            ("c", 4, "c-stale"),
            ("b", 1, "b-again"),
            ("d", 1, "d"),
        ],
        json!({"cursor": 6}),
        &merge,
    )
    .await;
    assert_eq!(r.rows, 3);
    assert_eq!(
        customers(&wh).await,
        vec![
            row(&[json!("a"), json!(3), json!("a-3")]),
            row(&[json!("b"), json!(1), json!("b-again")]),
            row(&[json!("c"), json!(5), json!("c")]),
            row(&[json!("d"), json!(1), json!("d")]),
        ]
    );
    assert_eq!(
        wh.state("shop", "customers").await.unwrap(),
        Some(json!({"cursor": 6}))
    );
    let loads = wh.loads("shop").await.unwrap();
    let ids: Vec<_> = loads
        .iter()
        .map(|l| (l.load_id.as_str(), l.rows, l.files))
        .collect();
    assert_eq!(ids, vec![("L1", 3, 1), ("L2", 3, 1)]);
    assert!(loads[0].bytes > 0 && loads[0].committed_at >= loads[0].started_at);
    // The merge table got a unique index on its key (NULLs not distinct,
    // marked as weft's); no staging table is left.
    assert_eq!(
        pg.psql(
            "dedupe",
            "SELECT indexdef || ' | ' || obj_description(indexrelid, 'pg_class') \
             FROM pg_indexes JOIN pg_index ON indexrelid = (schemaname || '.' || indexname)::regclass \
             WHERE schemaname = 'shop' AND tablename = 'customers'"
        )
        .unwrap(),
        "CREATE UNIQUE INDEX customers_id_idx ON shop.customers USING btree (id) NULLS NOT DISTINCT | weft merge key"
    );
    assert_eq!(
        pg.psql(
            "dedupe",
            "SELECT count(*) FROM pg_class WHERE relname = '_weft_staging'"
        )
        .unwrap(),
        "0"
    );

    // NULL cursors, NULL keys and stale rows.
    let (_dir2, stage) = local_stage();
    let wh = fresh(&pg, "nulls").await;
    let m = stage_load(
        &stage,
        "L1",
        vec![nullable(&[
            (Some("a"), Some(5), "a5"),
            (Some("b"), None, "b-null"),
            (Some("c"), Some(2), "c2"),
            (None, Some(1), "nokey-1"),
            (Some("d"), Some(4), "d4"),
            // Within a load a NULL cursor loses to any value, even staged later.
            (Some("d"), None, "d-null"),
            (None, Some(3), "nokey-3"),
        ])],
        vec![],
        json!(1),
    )
    .await;
    assert_eq!(commit(&wh, &stage, &m, &merge).await.rows, 5);
    assert_eq!(
        customers(&wh).await,
        vec![
            row(&[Value::Null, json!(3), json!("nokey-3")]),
            row(&[json!("a"), json!(5), json!("a5")]),
            row(&[json!("b"), Value::Null, json!("b-null")]),
            row(&[json!("c"), json!(2), json!("c2")]),
            row(&[json!("d"), json!(4), json!("d4")]),
        ]
    );
    let m = stage_load(
        &stage,
        "L2",
        vec![nullable(&[
            // A NULL staged cursor is not older than a loaded one: it replaces.
            (Some("a"), None, "a-null"),
            // A loaded NULL cursor is not newer than a staged one.
            (Some("b"), Some(1), "b1"),
            // Older than the loaded row: loses, and is not counted.
            (Some("c"), Some(1), "c-stale"),
            // NULL keys match the loaded NULL key; the stale one loses.
            (None, Some(2), "nokey-stale"),
            // Equal cursors: the staged row replaces the loaded one.
            (Some("d"), Some(4), "d4-again"),
            (Some("e"), None, "e-null"),
        ])],
        vec![],
        json!(2),
    )
    .await;
    assert_eq!(commit(&wh, &stage, &m, &merge).await.rows, 4);
    assert_eq!(
        customers(&wh).await,
        vec![
            row(&[Value::Null, json!(3), json!("nokey-3")]),
            row(&[json!("a"), Value::Null, json!("a-null")]),
            row(&[json!("b"), json!(1), json!("b1")]),
            row(&[json!("c"), json!(2), json!("c2")]),
            row(&[json!("d"), json!(4), json!("d4-again")]),
            row(&[json!("e"), Value::Null, json!("e-null")]),
        ]
    );

    // Ties across parts, multi-column keys and loaded duplicates.
    let (_dir3, stage) = local_stage();
    let wh = fresh(&pg, "ties").await;
    load_rows(
        &wh,
        &stage,
        "L1",
        &[
            ("a", 9, "a9"),
            ("a", 5, "a5"),
            ("b", 1, "b1"),
            ("b", 2, "b2"),
        ],
        json!(1),
        &spec(WriteDisposition::Append),
    )
    .await;
    let m = stage_load(
        &stage,
        "L2",
        vec![
            batch(&[("a", 7, "a7"), ("b", 3, "b3-first"), ("c", 1, "c-first")]),
            // Equal cursors across parts: the last staged row wins.
            batch(&[("b", 3, "b3-last"), ("c", 1, "c-last")]),
        ],
        vec![],
        json!(2),
    )
    .await;
    // `a` loses to the loaded a9 and keeps both loaded rows; `b` replaces both.
    assert_eq!(commit(&wh, &stage, &m, &merge).await.rows, 2);
    assert_eq!(
        customers(&wh).await,
        vec![
            row(&[json!("a"), json!(5), json!("a5")]),
            row(&[json!("a"), json!(9), json!("a9")]),
            row(&[json!("b"), json!(3), json!("b3-last")]),
            row(&[json!("c"), json!(1), json!("c-last")]),
        ]
    );
    // A two-column key without a cursor: the last staged row wins and every
    // loaded row of the key is replaced.
    let mut by_pair = spec(WriteDisposition::Merge);
    by_pair.primary_key = vec!["id".to_string(), "name".to_string()];
    by_pair.cursor_field = None;
    let r = load_rows(
        &wh,
        &stage,
        "L3",
        &[
            ("a", 1, "a5"),
            ("a", 2, "a5"),
            ("a", 3, "a-new"),
            ("c", 0, "c-last"),
        ],
        json!(3),
        &by_pair,
    )
    .await;
    assert_eq!(r.rows, 3);
    assert_eq!(
        customers(&wh).await,
        vec![
            row(&[json!("a"), json!(3), json!("a-new")]),
            row(&[json!("a"), json!(2), json!("a5")]),
            row(&[json!("a"), json!(9), json!("a9")]),
            row(&[json!("b"), json!(3), json!("b3-last")]),
            row(&[json!("c"), json!(0), json!("c-last")]),
        ]
    );
    by_pair.cursor_field = Some("updated".to_string());
    let r = load_rows(
        &wh,
        &stage,
        "L4",
        &[("a", 1, "a9"), ("a", 10, "a5"), ("b", 3, "b3-last")],
        json!(4),
        &by_pair,
    )
    .await;
    assert_eq!(r.rows, 2);
    assert_eq!(
        customers(&wh).await,
        vec![
            row(&[json!("a"), json!(3), json!("a-new")]),
            row(&[json!("a"), json!(10), json!("a5")]),
            row(&[json!("a"), json!(9), json!("a9")]),
            row(&[json!("b"), json!(3), json!("b3-last")]),
            row(&[json!("c"), json!(0), json!("c-last")]),
        ]
    );
}

#[tokio::test]
async fn append_replace_noops_and_concurrent_commits() {
    let pg = start().await;
    let (_dir, stage) = local_stage();
    let wh = fresh(&pg, "dispositions").await;
    let append = spec(WriteDisposition::Append);
    for id in ["L1", "L2"] {
        let r = load_rows(
            &wh,
            &stage,
            id,
            &[("a", 1, "x"), ("a", 1, "y")],
            json!(null),
            &append,
        )
        .await;
        assert_eq!(r.rows, 2);
    }
    assert_eq!(
        customers(&wh).await,
        vec![
            row(&[json!("a"), json!(1), json!("x")]),
            row(&[json!("a"), json!(1), json!("x")]),
            row(&[json!("a"), json!(1), json!("y")]),
            row(&[json!("a"), json!(1), json!("y")]),
        ]
    );
    // A null state means "no cursor".
    assert_eq!(wh.state("shop", "customers").await.unwrap(), None);

    let replace = spec(WriteDisposition::Replace);
    let r = load_rows(
        &wh,
        &stage,
        "L3",
        &[("z", 9, "only")],
        json!({"c": 1}),
        &replace,
    )
    .await;
    assert_eq!(r.rows, 1);
    assert_eq!(
        customers(&wh).await,
        vec![row(&[json!("z"), json!(9), json!("only")])]
    );
    // Replace with no rows empties the table.
    let m = stage_load(&stage, "L4", vec![], vec![], json!({"c": 2})).await;
    let r = commit(&wh, &stage, &m, &replace).await;
    assert_eq!((r.rows, r.files), (0, 0));
    assert_eq!(
        count(&wh, r#"SELECT count(*) FROM "shop"."customers""#).await,
        0
    );
    assert_eq!(
        wh.state("shop", "customers").await.unwrap(),
        Some(json!({"c": 2}))
    );

    // A known load id is a no-op returning already_committed.
    let (_dir2, stage) = local_stage();
    let wh = fresh(&pg, "noop").await;
    let m = stage_load(
        &stage,
        "L1",
        vec![batch(&[("a", 1, "x"), ("b", 1, "y")])],
        vec![],
        json!({"c": 1}),
    )
    .await;
    let first = commit(&wh, &stage, &m, &append).await;
    let again = commit(&wh, &stage, &m, &append).await;
    assert!(!first.already_committed);
    assert!(again.already_committed);
    assert_eq!((again.rows, again.load_id.as_str()), (2, "L1"));
    assert_eq!(
        count(&wh, r#"SELECT count(*) FROM "shop"."customers""#).await,
        2
    );
    assert_eq!(
        count(&wh, "SELECT count(*) FROM _weft._weft_loads").await,
        1
    );

    // Two runners committing the same new load at once: the advisory lock
    // makes one wait, and it then finds the other's load id.
    let m = stage_load(
        &stage,
        "L2",
        vec![batch(&[("c", 2, "z")])],
        vec![],
        json!({"c": 2}),
    )
    .await;
    let (a, b) = tokio::join!(
        wh.commit_load(&stage, &m, &append),
        wh.commit_load(&stage, &m, &append)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(
        [a.already_committed, b.already_committed]
            .iter()
            .filter(|c| **c)
            .count(),
        1
    );
    assert_eq!((a.rows, b.rows), (1, 1));
    assert_eq!(
        count(&wh, r#"SELECT count(*) FROM "shop"."customers""#).await,
        3
    );
}

#[tokio::test]
async fn evolution_rejects_and_failed_loads() {
    let pg = start().await;
    let (_dir, stage) = local_stage();
    let wh = fresh(&pg, "evolution").await;
    let merge = spec(WriteDisposition::Merge);
    load_rows(&wh, &stage, "L1", &[("a", 1, "A")], json!(1), &merge).await;
    // One load mixing old-shape and new-shape batches (two parts, union schema).
    let m = stage_load(
        &stage,
        "L2",
        vec![batch(&[("b", 1, "B")]), wide(&[("c", 1, "C", "c@x.test")])],
        vec![],
        json!(2),
    )
    .await;
    assert_eq!(m.files.len(), 2);
    commit(&wh, &stage, &m, &merge).await;
    assert_eq!(
        rows(
            &wh,
            r#"SELECT id, email, extract(epoch FROM seen)::BIGINT FROM "shop"."customers" ORDER BY id"#
        )
        .await,
        vec![
            row(&[json!("a"), Value::Null, Value::Null]),
            row(&[json!("b"), Value::Null, Value::Null]),
            row(&[json!("c"), json!("c@x.test"), json!(1_700_000_000)]),
        ]
    );
    assert_eq!(
        pg.psql(
            "evolution",
            "SELECT string_agg(column_name || ' ' || data_type || ' ' || is_nullable, ', ' \
             ORDER BY ordinal_position) FROM information_schema.columns \
             WHERE table_schema = 'shop' AND table_name = 'customers'"
        )
        .unwrap(),
        "id text YES, updated bigint YES, name text YES, email text YES, \
         seen timestamp with time zone YES"
    );
    // A later load without the new columns leaves them NULL.
    load_rows(&wh, &stage, "L3", &[("c", 2, "C2")], json!(3), &merge).await;
    assert_eq!(
        rows(
            &wh,
            r#"SELECT name, email FROM "shop"."customers" WHERE id = 'c'"#
        )
        .await,
        vec![row(&[json!("C2"), Value::Null])]
    );

    // Rejects land in _weft_rejects.
    let (_dir2, stage) = local_stage();
    let wh = fresh(&pg, "rejects").await;
    let rejects = vec![
        Reject {
            record: r#"{"id":"x","updated":"soon"}"#.to_string(),
            reason: "updated: expected integer".to_string(),
            field: Some("updated".to_string()),
            row_loaded: false,
        },
        Reject {
            record: "{\0".to_string(),
            reason: "malformed JSON".to_string(),
            field: None,
            row_loaded: false,
        },
    ];
    let m = stage_load(
        &stage,
        "L1",
        vec![batch(&[("a", 1, "x")])],
        rejects,
        json!({}),
    )
    .await;
    let r = commit(&wh, &stage, &m, &merge).await;
    assert_eq!((r.rows, r.rejects), (1, 2));
    assert_eq!(
        rows(
            &wh,
            "SELECT pipeline, stream, load_id, record, reason, field, row_loaded \
             FROM _weft._weft_rejects ORDER BY reason"
        )
        .await,
        vec![
            row(&[
                json!("shop"),
                json!("customers"),
                json!("L1"),
                json!("{\\u0000"),
                json!("malformed JSON"),
                Value::Null,
                json!(false)
            ]),
            row(&[
                json!("shop"),
                json!("customers"),
                json!("L1"),
                json!(r#"{"id":"x","updated":"soon"}"#),
                json!("updated: expected integer"),
                json!("updated"),
                json!(false)
            ]),
        ]
    );
    assert_eq!(wh.loads("shop").await.unwrap()[0].rejects, 2);

    // Failures change nothing.
    let (_dir3, stage) = local_stage();
    let wh = fresh(&pg, "failures").await;
    let append = spec(WriteDisposition::Append);
    load_rows(
        &wh,
        &stage,
        "L1",
        &[("a", 1, "x"), ("b", 1, "y")],
        json!({"c": 1}),
        &append,
    )
    .await;
    // A load whose second part is missing: rows from the first part were
    // staged, then the commit fails and rolls everything back.
    let mut broken = stage_load(
        &stage,
        "L2",
        vec![batch(&[("c", 1, "z")]), wide(&[("d", 1, "w", "d@x")])],
        vec![Reject {
            record: "{}".to_string(),
            reason: "bad".to_string(),
            field: None,
            row_loaded: false,
        }],
        json!({"c": 2}),
    )
    .await;
    let root = stage.local_dir().unwrap();
    std::fs::remove_file(root.join(&broken.files[1].path)).unwrap();
    broken.files.push(StagedFile {
        path: "shop/customers/L2/part-99999.parquet".to_string(),
        rows: 1,
        bytes: 1,
    });
    let err = wh
        .commit_load(&stage, &broken, &append)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("part-00001.parquet"), "{err}");
    let unchanged = async |wh: &PostgresWarehouse| {
        assert_eq!(
            count(wh, r#"SELECT count(*) FROM "shop"."customers""#).await,
            2
        );
        assert_eq!(count(wh, "SELECT count(*) FROM _weft._weft_loads").await, 1);
        assert_eq!(
            count(wh, "SELECT count(*) FROM _weft._weft_rejects").await,
            0
        );
        assert_eq!(
            wh.state("shop", "customers").await.unwrap(),
            Some(json!({"c": 1}))
        );
        // The evolution of the failed load was rolled back too.
        assert_eq!(
            count(
                wh,
                "SELECT count(*) FROM information_schema.columns WHERE table_name = 'customers'"
            )
            .await,
            3
        );
    };
    unchanged(&wh).await;
    // A merge naming a key the data lacks fails clearly, changing nothing.
    let mut bad_key = spec(WriteDisposition::Merge);
    bad_key.primary_key = vec!["nope".to_string()];
    let m = stage_load(
        &stage,
        "L3",
        vec![wide(&[("e", 1, "e", "e@x")])],
        vec![],
        json!({"c": 3}),
    )
    .await;
    let err = wh
        .commit_load(&stage, &m, &bad_key)
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "shop.customers: primary key column `nope` is not in the staged schema"
    );
    unchanged(&wh).await;
    // A type PostgreSQL cannot take names the table and column.
    let point = Fields::from(vec![Field::new("x", DataType::Int64, true)]);
    let shape = Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("Point", DataType::Struct(point.clone()), true),
    ]);
    let structs = RecordBatch::try_new(
        Arc::new(shape),
        vec![
            Arc::new(StringArray::from(vec!["s"])),
            Arc::new(StructArray::new(
                point,
                vec![Arc::new(Int64Array::from(vec![1])) as ArrayRef],
                None,
            )),
        ],
    )
    .unwrap();
    let m = stage_load(&stage, "L4", vec![structs], vec![], json!({"c": 4})).await;
    let err = wh
        .commit_load(&stage, &m, &append)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("shop.customers: column `Point` has unsupported type Struct("),
        "{err}"
    );
    unchanged(&wh).await;
    // A server-side failure (an existing column of another type) rolls back too.
    let retyped = Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("updated", DataType::Boolean, true),
    ]);
    let retyped = RecordBatch::try_new(
        Arc::new(retyped),
        vec![
            Arc::new(StringArray::from(vec!["t"])),
            Arc::new(BooleanArray::from(vec![true])),
        ],
    )
    .unwrap();
    let m = stage_load(&stage, "L5", vec![retyped], vec![], json!({"c": 5})).await;
    let err = wh
        .commit_load(&stage, &m, &append)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(
            "postgres: insert (shop.customers): ERROR: column \"updated\" is of type bigint"
        ),
        "{err}"
    );
    unchanged(&wh).await;
    // The warehouse still works after the failures.
    let r = load_rows(
        &wh,
        &stage,
        "L6",
        &[("f", 6, "f")],
        json!({"c": 6}),
        &append,
    )
    .await;
    assert_eq!(r.rows, 1);
}

#[tokio::test]
async fn nul_bytes_are_quarantined_with_the_column_named() {
    let pg = start().await;
    let (_dir, stage) = local_stage();
    let wh = fresh(&pg, "nul").await;
    let json_field = weft_core::FieldType::Json.field("payload", true, "");
    let mut tags = ListBuilder::new(StringBuilder::new());
    for row in [vec!["a"], vec!["b\0"], vec![], vec!["c", "d"]] {
        for t in row {
            tags.values().append_value(t);
        }
        tags.append(true);
    }
    let tags = tags.finish();
    let schema = Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("name", DataType::Utf8, true),
        json_field,
        Field::new("tags", tags.data_type().clone(), true),
    ]);
    let b = RecordBatch::try_new(
        Arc::new(schema),
        vec![
            Arc::new(StringArray::from(vec!["ok", "list", "text", "json"])),
            Arc::new(StringArray::from(vec![
                Some("fine"),
                Some("fine"),
                Some("bad\0name"),
                None,
            ])),
            Arc::new(StringArray::from(vec![
                Some(r#"{"k":"v"}"#),
                None,
                None,
                Some(r#"{"k":"\u0000"}"#),
            ])),
            Arc::new(tags),
        ],
    )
    .unwrap();
    let m = stage_load(&stage, "L1", vec![b], vec![], json!(1)).await;
    let mut s = spec(WriteDisposition::Merge);
    s.cursor_field = None;
    let r = commit(&wh, &stage, &m, &s).await;
    assert_eq!((r.rows, r.rejects), (1, 3));
    assert_eq!(
        rows(
            &wh,
            r#"SELECT id, name, payload, tags FROM "shop"."customers""#
        )
        .await,
        vec![row(&[
            json!("ok"),
            json!("fine"),
            json!({"k": "v"}),
            json!(["a"])
        ])]
    );
    assert_eq!(
        rows(
            &wh,
            "SELECT record, reason, field, row_loaded FROM _weft._weft_rejects ORDER BY field"
        )
        .await,
        vec![
            row(&[
                json!(r#"{"id":"text","name":"bad\u0000name","tags":[]}"#),
                json!("column \"name\" contains a NUL byte, which PostgreSQL text cannot store"),
                json!("name"),
                json!(false),
            ]),
            row(&[
                json!(r#"{"id":"json","payload":"{\"k\":\"\\u0000\"}","tags":["c","d"]}"#),
                json!(
                    "column \"payload\" holds JSON with a NUL character (\\u0000), which PostgreSQL jsonb cannot store"
                ),
                json!("payload"),
                json!(false),
            ]),
            row(&[
                json!(r#"{"id":"list","name":"fine","tags":["b\u0000"]}"#),
                json!(
                    "column \"tags\" has an element with a NUL byte, which PostgreSQL text cannot store"
                ),
                json!("tags"),
                json!(false),
            ]),
        ]
    );
    assert_eq!(
        wh.loads("shop").await.unwrap()[0].rejects,
        3,
        "quarantined rows count as rejects of the load"
    );
}

#[tokio::test]
async fn out_of_range_dates_timestamps_and_times_are_quarantined_with_the_column_named() {
    use arrow_array::{Date32Array, Time64MicrosecondArray, TimestampMicrosecondArray};
    let pg = start().await;
    let (_dir, stage) = local_stage();
    let wh = fresh(&pg, "ranges").await;
    let at_type = DataType::Timestamp(arrow_schema::TimeUnit::Microsecond, Some("UTC".into()));
    let schema = Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("day", DataType::Date32, true),
        Field::new("at", at_type, true),
        Field::new(
            "t",
            DataType::Time64(arrow_schema::TimeUnit::Microsecond),
            true,
        ),
    ]);
    // Year 2024; the first day and microsecond PostgreSQL has (4713 BC);
    // then one value out of range per row.
    let first_day = -2_440_588;
    let first_us = -210_866_803_200_000_000;
    let b = RecordBatch::try_new(
        Arc::new(schema),
        vec![
            Arc::new(StringArray::from(vec!["ok", "edge", "day", "at", "t"])),
            Arc::new(Date32Array::from(vec![
                Some(19_800),
                Some(first_day),
                Some(i32::MAX),
                None,
                None,
            ])),
            Arc::new(
                TimestampMicrosecondArray::from(vec![
                    Some(1_700_000_000_000_000),
                    Some(first_us),
                    None,
                    Some(first_us - 1),
                    None,
                ])
                .with_timezone("UTC"),
            ),
            Arc::new(Time64MicrosecondArray::from(vec![
                Some(3_600_000_000),
                Some(86_400_000_000),
                None,
                None,
                Some(86_400_000_001),
            ])),
        ],
    )
    .unwrap();
    let m = stage_load(&stage, "L1", vec![b], vec![], json!(1)).await;
    let mut s = spec(WriteDisposition::Merge);
    s.cursor_field = None;
    let r = commit(&wh, &stage, &m, &s).await;
    assert_eq!((r.rows, r.rejects), (2, 3));
    assert_eq!(
        rows(
            &wh,
            r#"SELECT id, day::text, (at AT TIME ZONE 'UTC')::text, t::text
               FROM "shop"."customers" ORDER BY id"#
        )
        .await,
        vec![
            row(&[
                json!("edge"),
                json!("4714-11-24 BC"),
                json!("4714-11-24 00:00:00 BC"),
                json!("24:00:00")
            ]),
            row(&[
                json!("ok"),
                json!("2024-03-18"),
                json!("2023-11-14 22:13:20"),
                json!("01:00:00")
            ]),
        ]
    );
    let rejects = rows(
        &wh,
        "SELECT record::json->>'id', reason, field, row_loaded FROM _weft._weft_rejects ORDER BY field",
    )
    .await;
    assert_eq!(
        rejects,
        vec![
            row(&[
                json!("at"),
                json!(
                    "column \"at\" holds a timestamp outside PostgreSQL's range (4713 BC to 294276 AD)"
                ),
                json!("at"),
                json!(false),
            ]),
            row(&[
                json!("day"),
                json!(
                    "column \"day\" holds a date outside PostgreSQL's range (4713 BC to 5874897 AD)"
                ),
                json!("day"),
                json!(false),
            ]),
            row(&[
                json!("t"),
                json!("column \"t\" holds a time of day outside 00:00:00 to 24:00:00"),
                json!("t"),
                json!(false),
            ]),
        ]
    );
}

#[tokio::test]
async fn names_and_types_round_trip() {
    let pg = start().await;
    let (_dir, stage) = local_stage();
    let wh = fresh(&pg, "types").await;
    let micros = 1_706_781_600_123_456i64; // 2024-02-01T10:00:00.123456Z
    let schema = Schema::new(vec![
        Field::new("Id", DataType::Utf8, false),
        Field::new("order", DataType::Int64, true),
        Field::new("user", DataType::Utf8, true),
        Field::new("Custom__c", DataType::Utf8, true),
        Field::new("we\"ird col", DataType::Boolean, true),
        Field::new(
            "at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
        Field::new(
            "local",
            DataType::Timestamp(TimeUnit::Microsecond, None),
            true,
        ),
        Field::new("amount", DataType::Decimal128(20, 5), true),
        Field::new("big", DataType::UInt64, true),
        Field::new("ratio", DataType::Float64, true),
        Field::new("day", DataType::Date32, true),
        Field::new("blob", DataType::Binary, true),
        weft_core::FieldType::Json.field("doc", true, ""),
    ]);
    let b = RecordBatch::try_new(
        Arc::new(schema),
        vec![
            Arc::new(StringArray::from(vec!["r1", "r2"])),
            Arc::new(Int64Array::from(vec![Some(1), None])),
            Arc::new(StringArray::from(vec![Some("ann"), None])),
            Arc::new(StringArray::from(vec![Some("custom"), None])),
            Arc::new(BooleanArray::from(vec![Some(true), None])),
            Arc::new(
                TimestampMicrosecondArray::from(vec![Some(micros), None]).with_timezone("UTC"),
            ),
            Arc::new(TimestampMicrosecondArray::from(vec![Some(micros), None])),
            Arc::new(
                Decimal128Array::from(vec![Some(1_200_005), Some(-1)])
                    .with_precision_and_scale(20, 5)
                    .unwrap(),
            ),
            Arc::new(UInt64Array::from(vec![Some(u64::MAX), None])),
            Arc::new(Float64Array::from(vec![Some(2.5), None])),
            Arc::new(Date32Array::from(vec![Some(19_754), None])),
            Arc::new(BinaryArray::from(vec![Some(&b"\x00\xff"[..]), None])),
            Arc::new(StringArray::from(vec![
                Some(r#"{"b": [1, 2.5, null], "a": "x"}"#),
                None,
            ])),
        ],
    )
    .unwrap();
    let m = stage_load(&stage, "L1", vec![b], vec![], json!(1)).await;
    let s = LoadSpec {
        pipeline: "Shop".to_string(),
        stream: "user".to_string(),
        primary_key: vec!["Id".to_string()],
        cursor_field: Some("order".to_string()),
        disposition: WriteDisposition::Merge,
    };
    // Staged under shop/customers; the spec names where it goes.
    assert_eq!(commit(&wh, &stage, &m, &s).await.rows, 2);
    assert_eq!(
        pg.psql(
            "types",
            "SELECT string_agg(column_name || ' ' || data_type, ', ' ORDER BY ordinal_position) \
             FROM information_schema.columns WHERE table_schema = 'Shop' AND table_name = 'user'"
        )
        .unwrap(),
        "Id text, order bigint, user text, Custom__c text, we\"ird col boolean, \
         at timestamp with time zone, local timestamp without time zone, amount numeric, \
         big numeric, ratio double precision, day date, blob bytea, doc jsonb"
    );
    assert_eq!(
        pg.psql(
            "types",
            r#"SET TIME ZONE 'UTC';
               SELECT "order", "user", "Custom__c", "we""ird col", "at", "local", amount, big,
                      ratio, "day", encode(blob, 'hex'), doc
               FROM "Shop"."user" ORDER BY "Id""#
        )
        .unwrap(),
        "1|ann|custom|t|2024-02-01 10:00:00.123456+00|2024-02-01 10:00:00.123456|12.00005|\
         18446744073709551615|2.5|2024-02-01|00ff|{\"a\": \"x\", \"b\": [1, 2.5, null]}\n\
         ||||||-0.00001|||||"
    );
    assert_eq!(
        rows(
            &wh,
            r#"SELECT "Id", "order", "we""ird col", "at", "local", amount, big, ratio, "day",
                      blob, doc FROM "Shop"."user" ORDER BY "Id""#
        )
        .await,
        vec![
            row(&[
                json!("r1"),
                json!(1),
                json!(true),
                json!("2024-02-01T10:00:00.123456+00:00"),
                json!("2024-02-01T10:00:00.123456"),
                json!(12.00005),
                json!(u64::MAX),
                json!(2.5),
                json!("2024-02-01"),
                json!("\\x00ff"),
                json!({"a": "x", "b": [1, 2.5, null]}),
            ]),
            row(&[
                json!("r2"),
                Value::Null,
                Value::Null,
                Value::Null,
                Value::Null,
                json!(-0.00001),
                Value::Null,
                Value::Null,
                Value::Null,
                Value::Null,
                Value::Null,
            ]),
        ]
    );
    // A merge on the mixed-case key and the reserved-word cursor.
    let m = stage_load(
        &stage,
        "L2",
        vec![{
            let s = Schema::new(vec![
                Field::new("Id", DataType::Utf8, false),
                Field::new("order", DataType::Int64, true),
                Field::new("user", DataType::Utf8, true),
            ]);
            RecordBatch::try_new(
                Arc::new(s),
                vec![
                    Arc::new(StringArray::from(vec!["r1", "r1", "r3"])),
                    Arc::new(Int64Array::from(vec![3, 2, 1])),
                    Arc::new(StringArray::from(vec!["bob", "old", "cy"])),
                ],
            )
            .unwrap()
        }],
        vec![],
        json!(2),
    )
    .await;
    assert_eq!(commit(&wh, &stage, &m, &s).await.rows, 2);
    assert_eq!(
        rows(
            &wh,
            r#"SELECT "Id", "order", "user", amount FROM "Shop"."user" ORDER BY "Id""#
        )
        .await,
        vec![
            row(&[json!("r1"), json!(3), json!("bob"), Value::Null]),
            row(&[json!("r2"), Value::Null, Value::Null, json!(-0.00001)]),
            row(&[json!("r3"), json!(1), json!("cy"), Value::Null]),
        ]
    );
    assert_eq!(wh.loads("Shop").await.unwrap().len(), 2);

    // query_rows: column order and duplicate names kept, text fallback.
    assert_eq!(
        rows(
            &wh,
            "SELECT 2 AS b, 1 AS a, 3 AS a, 'x'::text, NULL::int, 12345678901234567890123::numeric, \
             ARRAY[1, 2], true;"
        )
        .await,
        vec![row(&[
            json!(2),
            json!(1),
            json!(3),
            json!("x"),
            Value::Null,
            json!("12345678901234567890123"),
            json!([1, 2]),
            json!(true)
        ])]
    );
    assert_eq!(rows(&wh, "SHOW TimeZone").await, vec![row(&[json!("UTC")])]);
    let err = wh
        .query_rows("SELECT nope FROM nowhere")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("relation \"nowhere\" does not exist"), "{err}");

    // More Arrow types, through pgpq or a cast, as PostgreSQL reads them back.
    let mut ints =
        arrow_array::builder::ListBuilder::new(arrow_array::builder::Int64Builder::new());
    ints.values().append_value(1);
    ints.values().append_null();
    ints.append(true);
    ints.append(false);
    let ints = ints.finish();
    let dict: arrow_array::DictionaryArray<arrow_array::types::Int32Type> =
        vec![Some("red"), None].into_iter().collect();
    let more = vec![
        (
            "tiny",
            Arc::new(arrow_array::Int8Array::from(vec![Some(-5), None])) as ArrayRef,
        ),
        (
            "u32",
            Arc::new(arrow_array::UInt32Array::from(vec![
                Some(4_000_000_000),
                None,
            ])),
        ),
        (
            "f32",
            Arc::new(arrow_array::Float32Array::from(vec![Some(1.5), None])),
        ),
        (
            "large",
            Arc::new(arrow_array::LargeStringArray::from(vec![
                Some("large"),
                None,
            ])),
        ),
        ("dict", Arc::new(dict)),
        ("ints", Arc::new(ints)),
        (
            "nanos",
            Arc::new(
                arrow_array::TimestampNanosecondArray::from(vec![Some(micros * 1000 + 789), None])
                    .with_timezone("UTC"),
            ),
        ),
        (
            "d64",
            Arc::new(arrow_array::Date64Array::from(vec![
                Some(1_706_745_600_000),
                None,
            ])),
        ),
        (
            "clock",
            Arc::new(arrow_array::Time64MicrosecondArray::from(vec![
                Some(3_723_000_001),
                None,
            ])),
        ),
        (
            "span",
            Arc::new(arrow_array::DurationSecondArray::from(vec![Some(90), None])),
        ),
        (
            "fixed",
            Arc::new(
                arrow_array::FixedSizeBinaryArray::try_from_sparse_iter_with_size(
                    vec![Some(b"ab".to_vec()), None].into_iter(),
                    2,
                )
                .unwrap(),
            ),
        ),
        (
            "d256",
            Arc::new(
                arrow_array::Decimal256Array::from(vec![
                    Some(arrow::datatypes::i256::from_i128(
                        -123_456_789_012_345_678_901_234_567_890,
                    )),
                    None,
                ])
                .with_precision_and_scale(40, 10)
                .unwrap(),
            ),
        ),
    ];
    let mut fields = vec![Field::new("id", DataType::Utf8, false)];
    let mut arrays: Vec<ArrayRef> = vec![Arc::new(StringArray::from(vec!["m1", "m2"]))];
    for (name, array) in more {
        fields.push(Field::new(name, array.data_type().clone(), true));
        arrays.push(array);
    }
    let b = RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).unwrap();
    let m = stage_stream(&stage, "more", "M1", vec![b], vec![], json!(1)).await;
    let mut more_spec = spec(WriteDisposition::Append);
    more_spec.stream = "more".to_string();
    assert_eq!(commit(&wh, &stage, &m, &more_spec).await.rows, 2);
    assert_eq!(
        pg.psql(
            "types",
            "SELECT string_agg(column_name || ' ' || data_type, ', ' ORDER BY ordinal_position) \
             FROM information_schema.columns WHERE table_schema = 'shop' AND table_name = 'more'"
        )
        .unwrap(),
        "id text, tiny smallint, u32 bigint, f32 real, large text, dict text, ints ARRAY, \
         nanos timestamp with time zone, d64 date, clock time without time zone, span interval, \
         fixed bytea, d256 numeric"
    );
    assert_eq!(
        pg.psql(
            "types",
            "SET TIME ZONE 'UTC'; SELECT tiny, u32, f32, large, dict, ints, nanos, d64, clock, span, \
             encode(fixed, 'hex'), d256 FROM shop.more ORDER BY id"
        )
        .unwrap(),
        "-5|4000000000|1.5|large|red|{1,NULL}|2024-02-01 10:00:00.123456+00|2024-02-01|\
         01:02:03.000001|00:01:30|6162|-12345678901234567890.1234567890\n|||||||||||"
    );

    // A schema prefix goes in front of the pipeline's schema.
    let prefixed =
        PostgresWarehouse::connect(&pg.create_database("prefixed").unwrap(), Some("weft_"))
            .await
            .unwrap();
    let m = stage_load(
        &stage,
        "P1",
        vec![batch(&[("a", 1, "x")])],
        vec![],
        json!(1),
    )
    .await;
    commit(&prefixed, &stage, &m, &spec(WriteDisposition::Append)).await;
    assert_eq!(
        prefixed
            .query_rows(r#"SELECT id FROM "weft_shop"."customers""#)
            .await
            .unwrap(),
        vec![row(&[json!("a")])]
    );
    assert_eq!(prefixed.loads("shop").await.unwrap().len(), 1);
}

#[tokio::test]
async fn state_destination_replay_and_tls() {
    let pg = start().await;
    let (_dir, stage) = local_stage();
    let wh = fresh(&pg, "state").await;
    load_rows(
        &wh,
        &stage,
        "L1",
        &[("a", 1, "x")],
        json!({"c": 7}),
        &spec(WriteDisposition::Merge),
    )
    .await;
    let mut other = spec(WriteDisposition::Append);
    other.stream = "orders".to_string();
    let m = stage_stream(
        &stage,
        "orders",
        "L2",
        vec![batch(&[("o", 1, "y")])],
        vec![],
        json!({"c": 8}),
    )
    .await;
    commit(&wh, &stage, &m, &other).await;
    let listed: Vec<_> = wh
        .list_state()
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.stream, s.state, s.load_id))
        .collect();
    assert_eq!(
        listed,
        vec![
            ("customers".to_string(), json!({"c": 7}), "L1".to_string()),
            ("orders".to_string(), json!({"c": 8}), "L2".to_string()),
        ]
    );
    assert_eq!(wh.reset_state("shop", Some("orders")).await.unwrap(), 1);
    assert_eq!(wh.state("shop", "orders").await.unwrap(), None);
    assert_eq!(wh.reset_state("shop", None).await.unwrap(), 1);
    assert!(wh.list_state().await.unwrap().is_empty());

    // Through the staged destination's sink.
    let (_dir2, stage) = local_stage();
    let wh = fresh(&pg, "sink").await;
    let dest = StagedDestination::new(stage.clone(), wh.clone());
    assert_eq!(dest.name(), "postgres");
    assert_eq!(dest.state("shop", "customers").await.unwrap(), None);
    let stream = StreamSpec::new("customers", batch(&[]).schema().as_ref().clone())
        .with_primary_key(["id"])
        .with_cursor("updated");
    let target = LoadTarget {
        pipeline: "shop".to_string(),
        spec: stream,
        disposition: WriteDisposition::Merge,
    };
    let mut sink = dest.open(target).await.unwrap();
    let first_id = sink.load_id().to_string();
    sink.write(batch(&[("a", 1, "x"), ("b", 1, "y")]))
        .await
        .unwrap();
    sink.write(batch(&[("c", 1, "z")])).await.unwrap();
    let r1 = sink
        .commit(Checkpoint {
            state: StreamState(json!({"updated": 1})),
        })
        .await
        .unwrap();
    assert_eq!(
        (r1.load_id.as_str(), r1.rows, r1.files),
        (first_id.as_str(), 3, 1)
    );
    sink.write(batch(&[("a", 2, "x2")])).await.unwrap();
    let r2 = sink
        .commit(Checkpoint {
            state: StreamState(json!({"updated": 2})),
        })
        .await
        .unwrap();
    assert_eq!(r2.rows, 1);
    assert_eq!(
        customers(&wh).await,
        vec![
            row(&[json!("a"), json!(2), json!("x2")]),
            row(&[json!("b"), json!(1), json!("y")]),
            row(&[json!("c"), json!(1), json!("z")]),
        ]
    );
    assert_eq!(
        dest.state("shop", "customers").await.unwrap(),
        Some(StreamState(json!({"updated": 2})))
    );

    // Replay from a remote (memory://) stage into a fresh database: parts
    // are streamed from the object store.
    let remote = Stage::from_url("memory://").unwrap();
    let merge = spec(WriteDisposition::Merge);
    stage_load(
        &remote,
        "L1",
        vec![batch(&[("a", 1, "x"), ("b", 1, "y")])],
        vec![],
        json!({"c": 1}),
    )
    .await;
    stage_load(
        &remote,
        "L2",
        vec![batch(&[("a", 2, "x2")])],
        vec![],
        json!({"c": 2}),
    )
    .await;
    let replayed = fresh(&pg, "replayed").await;
    let receipts = replay_stream(replayed.clone(), &remote, &merge)
        .await
        .unwrap();
    let got: Vec<_> = receipts
        .iter()
        .map(|r| (r.load_id.as_str(), r.rows))
        .collect();
    assert_eq!(got, vec![("L1", 2), ("L2", 1)]);
    assert_eq!(
        customers(&replayed).await,
        vec![
            row(&[json!("a"), json!(2), json!("x2")]),
            row(&[json!("b"), json!(1), json!("y")]),
        ]
    );
    let again = replay(replayed.clone(), &remote, &merge, "L2")
        .await
        .unwrap();
    assert!(again.already_committed);
    assert_eq!(
        replayed.state("shop", "customers").await.unwrap(),
        Some(json!({"c": 2}))
    );

    // sslmode=require asks for TLS; this server has none, and says so.
    let url = format!("{}?sslmode=require", pg.url());
    let err = PostgresWarehouse::connect(&url, None)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("postgres: connect (postgres://weft@127.0.0.1:"),
        "{err}"
    );
    assert!(err.contains("TLS") || err.contains("tls"), "{err}");
    let err = PostgresWarehouse::connect(
        &format!(
            "{}?sslmode=verify-full&sslrootcert=/nonexistent.pem",
            pg.url()
        ),
        None,
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("sslrootcert `/nonexistent.pem`"), "{err}");
}

#[tokio::test]
async fn models_build_views_and_tables() {
    let pg = start().await;
    let wh = fresh(&pg, "models").await;
    let mut model = Model {
        name: "models.numbers".to_string(),
        sql: "SELECT n FROM generate_series(0, 2) AS t(n);".to_string(),
        materialized: Materialized::View,
    };
    let runs = wh.run_models(std::slice::from_ref(&model)).await.unwrap();
    assert_eq!(
        (runs[0].name.as_str(), runs[0].materialized, runs[0].rows),
        ("models.numbers", Materialized::View, 3)
    );
    model.materialized = Materialized::Table;
    let runs = wh.run_models(std::slice::from_ref(&model)).await.unwrap();
    assert_eq!(
        (runs[0].materialized, runs[0].rows),
        (Materialized::Table, 3)
    );
    assert_eq!(
        pg.psql(
            "models",
            "SELECT relkind FROM pg_class WHERE relname = 'numbers'"
        )
        .unwrap(),
        "r"
    );
    model.materialized = Materialized::View;
    wh.run_models(std::slice::from_ref(&model)).await.unwrap();
    // A view whose columns change is dropped and created again.
    model.sql = "SELECT 'x' AS label, n * 10 AS n FROM generate_series(1, 2) AS t(n)".to_string();
    let runs = wh.run_models(std::slice::from_ref(&model)).await.unwrap();
    assert_eq!(runs[0].rows, 2);
    assert_eq!(
        rows(
            &wh,
            "SELECT label, sum(n) FROM models.numbers GROUP BY label"
        )
        .await,
        vec![row(&[json!("x"), json!(30)])]
    );
    assert_eq!(
        pg.psql(
            "models",
            "SELECT relkind FROM pg_class WHERE relname = 'numbers'"
        )
        .unwrap(),
        "v"
    );
    let bad = Model {
        name: "models.broken".to_string(),
        sql: "SELECT nope FROM nowhere".to_string(),
        materialized: Materialized::View,
    };
    let err = wh.run_models(&[bad]).await.unwrap_err().to_string();
    assert!(err.contains("models.broken"), "{err}");
    assert!(err.contains("nowhere"), "{err}");
}

#[tokio::test]
async fn sync_plans_pages_and_records_in_sql() {
    let pg = start().await;
    let wh = fresh(&pg, "sync").await;
    wh.query_rows(
        "CREATE SCHEMA models; CREATE TABLE models.people (email TEXT, first_name TEXT, \
         score NUMERIC(5,1), seen TIMESTAMPTZ); \
         INSERT INTO models.people VALUES ('a@x', 'Ann', 1.5, '2024-01-01 00:00:00+00'), \
         ('b@x', 'Bob', NULL, NULL), ('c@x', 'Cy', 3, '2024-01-02 00:00:00+00')",
    )
    .await
    .unwrap();
    let spec = SyncSpec {
        name: "people".to_string(),
        model: "models.people".to_string(),
        primary_key: "email".to_string(),
        mode: SyncWriteMode::default(),
        mapping: BTreeMap::from([
            ("EMAIL".to_string(), "email".to_string()),
            ("FNAME".to_string(), "first_name".to_string()),
            ("SCORE".to_string(), "score".to_string()),
            ("SEEN".to_string(), "seen".to_string()),
        ]),
    };
    let plan = wh.plan(&spec).await.unwrap();
    assert_eq!(
        (plan.creates, plan.updates, plan.deletes, plan.model_rows),
        (3, 0, 0, 3)
    );
    // Keyset paging: two, then one, then none.
    let page = wh
        .planned(&spec, SyncAction::Create, None, 2)
        .await
        .unwrap();
    let keys: Vec<&str> = page.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(keys, ["a@x", "b@x"]);
    assert_eq!(
        page[0].fields,
        BTreeMap::from([
            ("EMAIL".to_string(), json!("a@x")),
            ("FNAME".to_string(), json!("Ann")),
            ("SCORE".to_string(), json!(1.5)),
            ("SEEN".to_string(), json!("2024-01-01T00:00:00+00:00")),
        ])
    );
    assert_eq!(page[1].fields["SCORE"], Value::Null);
    let rest = wh
        .planned(&spec, SyncAction::Create, Some("b@x"), 2)
        .await
        .unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].key, "c@x");
    assert!(
        wh.planned(&spec, SyncAction::Create, Some("c@x"), 2)
            .await
            .unwrap()
            .is_empty()
    );
    // All three acknowledged but c@x, rejected.
    let all: Vec<SyncRecord> = page.into_iter().chain(rest).collect();
    let outcomes: Vec<RecordOutcome> = all
        .iter()
        .map(|r| RecordOutcome {
            key: r.key.clone(),
            result: if r.key == "c@x" {
                Err("invalid email".to_string())
            } else {
                Ok(())
            },
        })
        .collect();
    wh.record(&spec, "run-1", &all, &outcomes).await.unwrap();
    assert_eq!(
        rows(
            &wh,
            r#"SELECT "key" FROM _weft."_weft_sync_snapshot_people" ORDER BY 1"#
        )
        .await,
        vec![row(&[json!("a@x")]), row(&[json!("b@x")])]
    );
    assert_eq!(
        rows(
            &wh,
            r#"SELECT sync, run_id, "key", "action", reason FROM _weft._weft_sync_rejects"#
        )
        .await,
        vec![row(&[
            json!("people"),
            json!("run-1"),
            json!("c@x"),
            json!("create"),
            json!("invalid email")
        ])]
    );
    assert_eq!(
        rows(
            &wh,
            r#"SELECT "key", "action", result FROM _weft._weft_sync_log ORDER BY "key""#
        )
        .await,
        vec![
            row(&[json!("a@x"), json!("create"), json!("ok")]),
            row(&[json!("b@x"), json!("create"), json!("ok")]),
            row(&[json!("c@x"), json!("create"), json!("rejected")]),
        ]
    );
    // Every logged record keeps the fields sent, acknowledged or not.
    let sent = rows(
        &wh,
        r#"SELECT "key", sent FROM _weft._weft_sync_log ORDER BY "key""#,
    )
    .await;
    assert_eq!(sent.len(), 3);
    for r in &sent {
        let text = r[1].as_str().unwrap();
        let fields: serde_json::Value = serde_json::from_str(text).unwrap();
        let key = r[0].as_str().unwrap();
        assert!(
            fields.as_object().unwrap().values().any(|v| v == key),
            "{key}: {text}"
        );
    }

    // One create (c@x, rejected before), one update (b@x), one delete (a@x).
    wh.query_rows(
        "DELETE FROM models.people WHERE email = 'a@x'; \
         UPDATE models.people SET first_name = 'Robert' WHERE email = 'b@x'",
    )
    .await
    .unwrap();
    let plan = wh.plan(&spec).await.unwrap();
    assert_eq!(
        (plan.creates, plan.updates, plan.deletes, plan.model_rows),
        (1, 1, 1, 2)
    );
    let creates = wh
        .planned(&spec, SyncAction::Create, None, 10)
        .await
        .unwrap();
    let updates = wh
        .planned(&spec, SyncAction::Update, None, 10)
        .await
        .unwrap();
    let deletes = wh
        .planned(&spec, SyncAction::Delete, None, 10)
        .await
        .unwrap();
    assert_eq!(
        creates.iter().map(|r| r.key.as_str()).collect::<Vec<_>>(),
        ["c@x"]
    );
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0].fields["FNAME"], json!("Robert"));
    assert_eq!(deletes.len(), 1);
    assert_eq!(
        (deletes[0].key.as_str(), deletes[0].fields.len()),
        ("a@x", 0)
    );
    let batch: Vec<SyncRecord> = creates.into_iter().chain(updates).chain(deletes).collect();
    let ok: Vec<RecordOutcome> = batch
        .iter()
        .map(|r| RecordOutcome {
            key: r.key.clone(),
            result: Ok(()),
        })
        .collect();
    wh.record(&spec, "run-2", &batch, &ok).await.unwrap();
    assert_eq!(
        rows(
            &wh,
            r#"SELECT "key" FROM _weft."_weft_sync_snapshot_people" ORDER BY 1"#
        )
        .await,
        vec![row(&[json!("b@x")]), row(&[json!("c@x")])]
    );
    // Nothing left to do.
    let plan = wh.plan(&spec).await.unwrap();
    assert_eq!((plan.creates, plan.updates, plan.deletes), (0, 0, 0));
    // A duplicate key in the model is refused, naming it.
    wh.query_rows("INSERT INTO models.people VALUES ('c@x', 'Twin', 1, NULL)")
        .await
        .unwrap();
    let err = format!("{:?}", wh.plan(&spec).await.unwrap_err());
    assert!(err.contains("DuplicateKey") && err.contains("c@x"), "{err}");
}

/// Runs a command, panicking with its stderr when it fails.
fn run(cmd: &mut std::process::Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn tls_verifies_the_server_certificate() {
    use std::os::unix::fs::PermissionsExt;
    use std::process::Command;

    if Command::new("openssl").arg("version").output().is_err() {
        println!("skipped: no `openssl` to make a test certificate with");
        return;
    }
    let pg = start().await;
    // A CA and a server certificate for 127.0.0.1 signed by it; the server
    // (running as `postgres` when we are root) must read the key.
    let dir = tempfile::Builder::new()
        .prefix("weft-tls-")
        .tempdir_in("/tmp")
        .unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let p = |name: &str| dir.path().join(name).display().to_string();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    run(Command::new("openssl")
        .args(["req", "-x509"])
        .args(ec)
        .args(["-keyout", &p("ca.key"), "-out", &p("ca.pem"), "-days", "2"])
        .args(["-subj", "/CN=weft test CA"]));
    run(Command::new("openssl")
        .arg("req")
        .args(ec)
        .args(["-keyout", &p("server.key"), "-out", &p("server.csr")])
        .args(["-subj", "/CN=127.0.0.1"]));
    std::fs::write(
        p("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
         keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(Command::new("openssl")
        .args(["x509", "-req", "-in", &p("server.csr"), "-CA", &p("ca.pem")])
        .args(["-CAkey", &p("ca.key"), "-CAcreateserial", "-days", "2"])
        .args(["-out", &p("server.pem"), "-extfile", &p("ext.cnf")]));
    std::fs::set_permissions(p("server.key"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let id = Command::new("id")
        .args(["-u", "postgres"])
        .output()
        .unwrap();
    let running_as_root = Command::new("id").arg("-u").output().unwrap().stdout == b"0\n";
    if running_as_root && id.status.success() {
        let uid: u32 = String::from_utf8_lossy(&id.stdout).trim().parse().unwrap();
        for f in ["server.key", "server.pem"] {
            std::os::unix::fs::chown(p(f), Some(uid), None).unwrap();
        }
    }
    for sql in [
        format!("ALTER SYSTEM SET ssl_cert_file = '{}'", p("server.pem")),
        format!("ALTER SYSTEM SET ssl_key_file = '{}'", p("server.key")),
        "ALTER SYSTEM SET ssl = on".to_string(),
        "SELECT pg_reload_conf()".to_string(),
    ] {
        pg.psql("weft", &sql).unwrap();
    }
    let mut on = String::new();
    for _ in 0..100 {
        on = pg.psql("weft", "SHOW ssl").unwrap();
        if on == "on" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(on, "on", "the server did not switch TLS on");

    // Verified against the test CA: connects over TLS.
    let url = format!(
        "{}?sslmode=verify-full&sslrootcert={}",
        pg.create_database("tls").unwrap(),
        p("ca.pem")
    );
    let wh = PostgresWarehouse::connect(&url, None).await.unwrap();
    assert_eq!(
        rows(
            &wh,
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
        )
        .await,
        vec![row(&[json!(true)])]
    );
    assert_eq!(
        wh.server(),
        format!("postgres://weft@127.0.0.1:{}/tls", pg.port())
    );
    // `require` verifies against the system and Mozilla roots, which do not
    // hold the test CA.
    let url = format!("{}?sslmode=require", pg.url());
    let err = PostgresWarehouse::connect(&url, None)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("invalid peer certificate: UnknownIssuer"),
        "{err}"
    );
}

#[tokio::test]
async fn tables_and_queries_read_as_a_source_with_typed_columns() {
    use futures::StreamExt;
    use weft_arrow::{JsonDecoder, SchemaContract, field_type_of};
    use weft_core::{
        CancellationToken, FieldType, ReadRequest, Source, SourceEvent, StreamMetrics,
    };

    let pg = start().await;
    let wh = fresh(&pg, "source").await;
    // 12,000 rows: three portal pages of 5,000.
    wh.query_rows(
        "CREATE SCHEMA models;
         CREATE TABLE models.people AS SELECT
           i::bigint AS id, 'p' || i AS email, (i / 100.0)::numeric(12,2) AS score,
           (i % 2 = 0) AS even, timestamptz '2024-01-01 00:00:00+00' + i * interval '1 minute' AS seen,
           date '2024-01-01' + (i % 365) AS born, timestamp '2024-06-01 12:00:00' AS naive,
           jsonb_build_object('i', i) AS meta, ARRAY['a', 'b'] AS tags
         FROM generate_series(1, 12000) i",
    )
    .await
    .unwrap();
    let source = WarehouseSource::postgres(
        wh.clone(),
        vec![
            (
                "people".to_string(),
                "models.people".to_string(),
                vec!["id".to_string()],
            ),
            (
                "evens".to_string(),
                "SELECT id, email FROM models.people WHERE even ORDER BY id;".to_string(),
                vec![],
            ),
        ],
    )
    .await
    .unwrap();
    source.check().await.unwrap();
    let streams = source.streams();
    let types: Vec<_> = streams[0]
        .schema
        .fields()
        .iter()
        .map(|f| (f.name().clone(), field_type_of(f).unwrap()))
        .collect();
    let expected = [
        ("id", FieldType::Integer),
        ("email", FieldType::String),
        ("score", FieldType::String),
        ("even", FieldType::Boolean),
        ("seen", FieldType::Timestamp),
        ("born", FieldType::Date),
        ("naive", FieldType::Timestamp),
        ("meta", FieldType::Json),
        ("tags", FieldType::String),
    ];
    assert_eq!(types, expected.map(|(n, t)| (n.to_string(), t)).to_vec());
    assert_eq!(streams[0].write_disposition, WriteDisposition::Merge);
    assert_eq!(streams[1].write_disposition, WriteDisposition::Replace);

    let read = |spec: weft_core::StreamSpec| {
        source.read(ReadRequest {
            spec,
            state: None,
            started_at: chrono::Utc::now(),
            metrics: Arc::new(StreamMetrics::default()),
            cancel: CancellationToken::new(),
            max_in_flight: None,
        })
    };
    let mut decoder = JsonDecoder::new(
        streams[0].schema.clone(),
        vec!["id".to_string()],
        SchemaContract::Freeze,
    )
    .unwrap();
    let (mut pages, mut rows, mut checkpoint) = (0, Vec::new(), None);
    let mut events = read(streams[0].clone());
    while let Some(event) = events.next().await {
        match event.unwrap() {
            SourceEvent::Page(page) => {
                pages += 1;
                let decoded = decoder.decode_page(&page.records).unwrap();
                assert!(decoded.rejects.is_empty(), "{:?}", decoded.rejects);
                rows.push(decoded.batch.unwrap());
            }
            SourceEvent::Checkpoint(state) => checkpoint = Some(state),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(rows.iter().map(|b| b.num_rows()).sum::<usize>(), 12_000);
    assert_eq!(checkpoint.unwrap().get::<u64>("rows"), Some(12_000));
    let all = arrow::compute::concat_batches(&rows[0].schema(), &rows).unwrap();
    fn col<'a, T: 'static>(b: &'a RecordBatch, name: &str) -> &'a T {
        b.column_by_name(name)
            .unwrap()
            .as_any()
            .downcast_ref::<T>()
            .unwrap()
    }
    let id = col::<Int64Array>(&all, "id").value(0);
    let text = |name: &str| col::<StringArray>(&all, name).value(0).to_string();
    assert_eq!(text("email"), format!("p{id}"));
    assert_eq!(text("score"), format!("{:.2}", id as f64 / 100.0));
    assert_eq!(col::<BooleanArray>(&all, "even").value(0), id % 2 == 0);
    assert_eq!(
        serde_json::from_str::<Value>(&text("meta")).unwrap(),
        json!({"i": id})
    );
    assert_eq!(text("tags"), "{a,b}");
    // 2024-01-01 00:00 UTC + id minutes; 2024-01-01 + id days; naive read as UTC.
    let jan1_us = 1_704_067_200_000_000;
    assert_eq!(
        col::<TimestampMicrosecondArray>(&all, "seen").value(0),
        jan1_us + id * 60_000_000
    );
    assert_eq!(
        col::<Date32Array>(&all, "born").value(0),
        19_723 + (id % 365) as i32
    );
    assert_eq!(
        col::<TimestampMicrosecondArray>(&all, "naive").value(0),
        1_717_243_200_000_000
    );
    let ids: std::collections::BTreeSet<i64> = all
        .column_by_name("id")
        .unwrap()
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap()
        .iter()
        .flatten()
        .collect();
    assert_eq!(ids.len(), 12_000, "every row once");
    assert_eq!((ids.first(), ids.last()), (Some(&1), Some(&12_000)));

    let mut evens = 0;
    let mut events = read(streams[1].clone());
    while let Some(event) = events.next().await {
        if let SourceEvent::Page(page) = event.unwrap() {
            evens += page.records.len();
        }
    }
    assert_eq!(evens, 6_000);

    let err = WarehouseSource::postgres(
        wh.clone(),
        vec![("ghost".to_string(), "models.ghost".to_string(), vec![])],
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("ghost") && err.contains("does not exist"),
        "{err}"
    );
}

#[tokio::test]
async fn run_history_round_trips() {
    let pg = start().await;
    let wh = fresh(&pg, "runs").await;
    crate::fixtures::run_history(wh.as_ref()).await;
    let wh = fresh(&pg, "runs_migrate").await;
    crate::fixtures::run_history_migrates(wh.as_ref()).await;
}

#[tokio::test]
async fn sync_log_keeps_pre_images() {
    let pg = start().await;
    let wh = fresh(&pg, "sync_log").await;
    crate::fixtures::sync_log_pre_images(wh.as_ref()).await;
}

#[tokio::test]
async fn quality_results_round_trip() {
    let pg = start().await;
    let wh = fresh(&pg, "quality").await;
    crate::fixtures::quality_history(wh.as_ref()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_hold_expire_and_take_over() {
    let pg = start().await;
    let wh = fresh(&pg, "leases").await;
    crate::fixtures::leases(wh).await;
}

#[tokio::test]
async fn budget_holders_count_live_runners() {
    let pg = start().await;
    let wh = fresh(&pg, "budget_holders").await;
    crate::fixtures::budget_holders(wh.as_ref()).await;
}

/// `write_disposition = "history"` on PostgreSQL: the same fixed sequences
/// and generated ones (fewer: each is a table on the server) hold exactly
/// the modelled versions.
#[tokio::test]
async fn history_tables_hold_exactly_the_modelled_versions() {
    use proptest::strategy::{Strategy, ValueTree};
    let pg = start().await;
    let wh = fresh(&pg, "history").await;
    for (i, loads) in crate::fixtures::history_cases().into_iter().enumerate() {
        crate::fixtures::history_matches_the_model(wh.as_ref(), &format!("fixed{i}"), &loads).await;
    }
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = crate::fixtures::history_loads();
    for i in 0..12 {
        let loads = strategy.new_tree(&mut runner).unwrap().current();
        crate::fixtures::history_matches_the_model(wh.as_ref(), &format!("gen{i}"), &loads).await;
    }
}
