//! The PostgreSQL merge as `INSERT ... ON CONFLICT` on a unique
//! `NULLS NOT DISTINCT` key index, on a real server (weft-testsvc): nullable
//! composite keys conflict null-safely, a table from an older weft (plain key
//! index) is migrated, and a table holding duplicate keys still merges (by
//! delete + insert) with the same rows. Values are asserted exactly.
#![cfg(feature = "postgres")]
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;

use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow_schema::{Field, Schema};
use serde_json::{Value, json};
use weft_core::{LoadReceipt, WriteDisposition};
use weft_stage::{Manifest, Stage};
use weft_testsvc::Postgres;
use weft_warehouse::{LoadSpec, PostgresWarehouse, Warehouse};

async fn start() -> Postgres {
    tokio::task::spawn_blocking(Postgres::start)
        .await
        .unwrap()
        .expect("a PostgreSQL >= 15 server (apt-get install -y postgresql)")
}

/// (region, code, updated, name).
type Region<'a> = (Option<&'a str>, Option<i64>, Option<i64>, &'a str);

/// A text column (nullable).
fn text(values: &[Option<&str>]) -> ArrayRef {
    Arc::new(StringArray::from(values.to_vec()))
}

/// An integer column (nullable).
fn int(values: &[Option<i64>]) -> ArrayRef {
    Arc::new(Int64Array::from(values.to_vec()))
}

fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
    let fields: Vec<Field> = columns
        .iter()
        .map(|(name, a)| Field::new(*name, a.data_type().clone(), true))
        .collect();
    RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns.into_iter().map(|(_, a)| a).collect(),
    )
    .unwrap()
}

/// Stages `batches` as load `load_id` of `shop.{stream}`.
async fn stage_load(
    stage: &Stage,
    stream: &str,
    load_id: &str,
    batches: Vec<RecordBatch>,
) -> Manifest {
    let mut w = stage.writer("shop", stream, load_id);
    for b in batches {
        w.write(b).await.unwrap();
    }
    w.finish(Some(json!({ "load": load_id }))).await.unwrap()
}

/// Stages `batches` as load `load_id` of `shop.{stream}` and commits it.
async fn commit(
    wh: &PostgresWarehouse,
    stage: &Stage,
    stream: &str,
    load_id: &str,
    batches: Vec<RecordBatch>,
    spec: &LoadSpec,
) -> LoadReceipt {
    let manifest = stage_load(stage, stream, load_id, batches).await;
    wh.commit_load(stage, &manifest, spec).await.unwrap()
}

fn spec(stream: &str, keys: &[&str], disposition: WriteDisposition) -> LoadSpec {
    LoadSpec {
        pipeline: "shop".to_string(),
        stream: stream.to_string(),
        primary_key: keys.iter().map(|k| k.to_string()).collect(),
        cursor_field: Some("updated".to_string()),
        disposition,
    }
}

async fn rows(wh: &PostgresWarehouse, sql: &str) -> Vec<Vec<Value>> {
    wh.query_rows(sql).await.unwrap()
}

/// The table's indexes: (definition, comment).
async fn indexes(wh: &PostgresWarehouse, table: &str) -> Vec<Vec<Value>> {
    rows(
        wh,
        &format!(
            "SELECT pg_get_indexdef(i.indexrelid), obj_description(i.indexrelid, 'pg_class') \
             FROM pg_index i WHERE i.indrelid = 'shop.{table}'::regclass \
             ORDER BY pg_get_indexdef(i.indexrelid)"
        ),
    )
    .await
}

fn local_stage(dir: &tempfile::TempDir) -> Stage {
    Stage::from_url(dir.path().join("stage").to_str().unwrap()).unwrap()
}

#[tokio::test]
async fn nullable_composite_keys_conflict_null_safely() {
    let pg = start().await;
    let url = pg.create_database("composite").unwrap();
    let wh = PostgresWarehouse::connect(&url, None).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let stage = local_stage(&dir);
    let merge = spec("regions", &["region", "code"], WriteDisposition::Merge);
    let regions = |rs: &[Region]| {
        batch(vec![
            ("region", text(&rs.iter().map(|r| r.0).collect::<Vec<_>>())),
            ("code", int(&rs.iter().map(|r| r.1).collect::<Vec<_>>())),
            ("updated", int(&rs.iter().map(|r| r.2).collect::<Vec<_>>())),
            (
                "name",
                text(&rs.iter().map(|r| Some(r.3)).collect::<Vec<_>>()),
            ),
        ])
    };
    let all = r#"SELECT region, code, updated, name FROM shop.regions
                 ORDER BY region NULLS FIRST, code NULLS FIRST"#;

    // First load: a NULL in either key column (or both) is a key of its own,
    // deduplicated within the load like any other.
    let r = commit(
        &wh,
        &stage,
        "regions",
        "L1",
        vec![
            regions(&[
                (None, None, Some(1), "nn-1"),
                (None, Some(1), Some(1), "n1"),
                (Some("eu"), None, Some(1), "eu-n"),
                (Some("eu"), Some(1), Some(1), "eu1"),
            ]),
            regions(&[
                (None, None, Some(2), "nn-2"),
                (Some("us"), Some(1), Some(5), "us1"),
            ]),
        ],
        &merge,
    )
    .await;
    assert_eq!((r.rows, r.already_committed), (5, false));
    assert_eq!(
        rows(&wh, all).await,
        vec![
            vec![Value::Null, Value::Null, json!(2), json!("nn-2")],
            vec![Value::Null, json!(1), json!(1), json!("n1")],
            vec![json!("eu"), Value::Null, json!(1), json!("eu-n")],
            vec![json!("eu"), json!(1), json!(1), json!("eu1")],
            vec![json!("us"), json!(1), json!(5), json!("us1")],
        ]
    );
    // The new table's key index is unique with NULLs not distinct, marked as weft's.
    assert_eq!(
        indexes(&wh, "regions").await,
        vec![vec![
            json!(
                "CREATE UNIQUE INDEX regions_region_code_idx ON shop.regions \
                 USING btree (region, code) NULLS NOT DISTINCT"
            ),
            json!("weft merge key"),
        ]]
    );

    // Second load: the NULL keys conflict with the loaded NULL keys (no
    // duplicate rows), newer or equal cursors replace, older ones lose.
    let l2 = stage_load(
        &stage,
        "regions",
        "L2",
        vec![regions(&[
            (None, None, Some(3), "nn-3"),
            (None, Some(1), Some(0), "n1-stale"),
            (Some("eu"), None, Some(1), "eu-n-again"),
            // A NULL staged cursor is not older than a loaded one.
            (Some("eu"), Some(1), None, "eu1-null-cursor"),
            (Some("us"), Some(1), Some(4), "us1-stale"),
            (Some("us"), None, Some(1), "us-n"),
            (None, Some(2), Some(1), "n2"),
        ])],
    )
    .await;
    let r = wh.commit_load(&stage, &l2, &merge).await.unwrap();
    assert_eq!(r.rows, 5);
    assert_eq!(
        rows(&wh, all).await,
        vec![
            vec![Value::Null, Value::Null, json!(3), json!("nn-3")],
            vec![Value::Null, json!(1), json!(1), json!("n1")],
            vec![Value::Null, json!(2), json!(1), json!("n2")],
            vec![json!("eu"), Value::Null, json!(1), json!("eu-n-again")],
            vec![json!("eu"), json!(1), Value::Null, json!("eu1-null-cursor")],
            vec![json!("us"), Value::Null, json!(1), json!("us-n")],
            vec![json!("us"), json!(1), json!(5), json!("us1")],
        ]
    );
    // A known load id changes nothing.
    let r = commit(
        &wh,
        &stage,
        "regions",
        "L2-again",
        vec![regions(&[(None, None, Some(9), "never")])],
        &merge,
    )
    .await;
    assert_eq!(r.rows, 1);
    let again = wh.commit_load(&stage, &l2, &merge).await.unwrap();
    assert_eq!((again.rows, again.already_committed), (5, true));
    assert_eq!(
        rows(
            &wh,
            "SELECT name FROM shop.regions WHERE region IS NULL AND code IS NULL"
        )
        .await,
        vec![vec![json!("never")]]
    );

    // A new column, then a load without it: the replaced row loses the
    // column's value, as a deleted and re-inserted row would.
    let with_email = batch(vec![
        ("region", text(&[Some("eu")])),
        ("code", int(&[Some(1)])),
        ("updated", int(&[Some(6)])),
        ("name", text(&[Some("eu1-6")])),
        ("email", text(&[Some("eu@example.com")])),
    ]);
    let r = commit(&wh, &stage, "regions", "L3", vec![with_email], &merge).await;
    assert_eq!(r.rows, 1);
    let r = commit(
        &wh,
        &stage,
        "regions",
        "L4",
        vec![regions(&[
            (Some("eu"), Some(1), Some(7), "eu1-7"),
            (Some("eu"), None, Some(7), "eu-n-7"),
        ])],
        &merge,
    )
    .await;
    assert_eq!(r.rows, 2);
    assert_eq!(
        rows(
            &wh,
            "SELECT region, code, updated, name, email FROM shop.regions \
             WHERE region = 'eu' ORDER BY code NULLS FIRST"
        )
        .await,
        vec![
            vec![
                json!("eu"),
                Value::Null,
                json!(7),
                json!("eu-n-7"),
                Value::Null
            ],
            vec![json!("eu"), json!(1), json!(7), json!("eu1-7"), Value::Null],
        ]
    );
    assert_eq!(
        rows(&wh, "SELECT count(*) FROM shop.regions").await,
        vec![vec![json!(7)]]
    );
}

#[tokio::test]
async fn older_tables_are_migrated_and_duplicate_keys_still_merge() {
    let pg = start().await;
    let url = pg.create_database("migrate").unwrap();
    let wh = PostgresWarehouse::connect(&url, None).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let stage = local_stage(&dir);
    let customers = |rs: &[(Option<&str>, i64, &str)]| {
        batch(vec![
            ("id", text(&rs.iter().map(|r| r.0).collect::<Vec<_>>())),
            (
                "updated",
                int(&rs.iter().map(|r| Some(r.1)).collect::<Vec<_>>()),
            ),
            (
                "name",
                text(&rs.iter().map(|r| Some(r.2)).collect::<Vec<_>>()),
            ),
        ])
    };
    let all = "SELECT id, updated, name FROM shop.customers ORDER BY id NULLS FIRST, updated";

    // A table as an older weft left it: a plain (non-unique) key index.
    pg.psql(
        "migrate",
        "CREATE SCHEMA shop; \
         CREATE TABLE shop.customers (id TEXT, updated BIGINT, name TEXT); \
         CREATE INDEX ON shop.customers (id); \
         INSERT INTO shop.customers VALUES ('a', 1, 'a1'), ('b', 5, 'b5'), (NULL, 1, 'null-1')",
    )
    .unwrap();
    assert_eq!(
        indexes(&wh, "customers").await,
        vec![vec![
            json!("CREATE INDEX customers_id_idx ON shop.customers USING btree (id)"),
            Value::Null
        ]]
    );
    let merge = spec("customers", &["id"], WriteDisposition::Merge);
    let r = commit(
        &wh,
        &stage,
        "customers",
        "L1",
        vec![customers(&[
            (Some("a"), 2, "a2"),
            (Some("b"), 4, "b-stale"),
            (None, 2, "null-2"),
            (Some("c"), 1, "c1"),
        ])],
        &merge,
    )
    .await;
    assert_eq!(r.rows, 3);
    assert_eq!(
        rows(&wh, all).await,
        vec![
            vec![Value::Null, json!(2), json!("null-2")],
            vec![json!("a"), json!(2), json!("a2")],
            vec![json!("b"), json!(5), json!("b5")],
            vec![json!("c"), json!(1), json!("c1")],
        ]
    );
    // The plain index was replaced by the unique one (same name), once.
    let unique = vec![vec![
        json!(
            "CREATE UNIQUE INDEX customers_id_idx ON shop.customers \
             USING btree (id) NULLS NOT DISTINCT"
        ),
        json!("weft merge key"),
    ]];
    assert_eq!(indexes(&wh, "customers").await, unique);
    let r = commit(
        &wh,
        &stage,
        "customers",
        "L2",
        vec![customers(&[(Some("a"), 3, "a3"), (None, 3, "null-3")])],
        &merge,
    )
    .await;
    assert_eq!(r.rows, 2);
    assert_eq!(indexes(&wh, "customers").await, unique);
    assert_eq!(
        rows(&wh, all).await,
        vec![
            vec![Value::Null, json!(3), json!("null-3")],
            vec![json!("a"), json!(3), json!("a3")],
            vec![json!("b"), json!(5), json!("b5")],
            vec![json!("c"), json!(1), json!("c1")],
        ]
    );

    // The stream becomes an append: a duplicate key goes in (as before the
    // unique index), and the index is demoted to a plain one.
    let append = spec("customers", &["id"], WriteDisposition::Append);
    let r = commit(
        &wh,
        &stage,
        "customers",
        "L3",
        vec![customers(&[
            (Some("a"), 1, "a-appended"),
            (None, 1, "null-appended"),
        ])],
        &append,
    )
    .await;
    assert_eq!(r.rows, 2);
    assert_eq!(
        indexes(&wh, "customers").await,
        vec![vec![
            json!("CREATE INDEX customers_id_idx ON shop.customers USING btree (id)"),
            Value::Null
        ]]
    );
    assert_eq!(
        rows(&wh, all).await,
        vec![
            vec![Value::Null, json!(1), json!("null-appended")],
            vec![Value::Null, json!(3), json!("null-3")],
            vec![json!("a"), json!(1), json!("a-appended")],
            vec![json!("a"), json!(3), json!("a3")],
            vec![json!("b"), json!(5), json!("b5")],
            vec![json!("c"), json!(1), json!("c1")],
        ]
    );

    // A merge into a table with duplicate keys: no unique index can be
    // built; the staged key replaces every loaded row of its key, a staged
    // row older than one of them loses and keeps them all.
    for (load, batch, inserted) in [
        (
            "L4",
            customers(&[(Some("a"), 3, "a3-again"), (None, 2, "null-stale")]),
            1,
        ),
        // The next merge in the same process goes straight to delete + insert.
        (
            "L5",
            customers(&[(Some("b"), 6, "b6"), (Some("d"), 1, "d1")]),
            2,
        ),
    ] {
        let r = commit(&wh, &stage, "customers", load, vec![batch], &merge).await;
        assert_eq!(r.rows, inserted, "{load}");
        assert_eq!(
            indexes(&wh, "customers").await,
            vec![vec![
                json!("CREATE INDEX customers_id_idx ON shop.customers USING btree (id)"),
                Value::Null
            ]],
            "{load}"
        );
    }
    assert_eq!(
        rows(&wh, all).await,
        vec![
            vec![Value::Null, json!(1), json!("null-appended")],
            vec![Value::Null, json!(3), json!("null-3")],
            vec![json!("a"), json!(3), json!("a3-again")],
            vec![json!("b"), json!(6), json!("b6")],
            vec![json!("c"), json!(1), json!("c1")],
            vec![json!("d"), json!(1), json!("d1")],
        ]
    );

    // A replace empties the table; the next merge builds the unique index again.
    let replace = spec("customers", &["id"], WriteDisposition::Replace);
    let r = commit(
        &wh,
        &stage,
        "customers",
        "L6",
        vec![customers(&[(Some("x"), 1, "x1"), (None, 1, "null-x")])],
        &replace,
    )
    .await;
    assert_eq!(r.rows, 2);
    let r = commit(
        &wh,
        &stage,
        "customers",
        "L7",
        vec![customers(&[(Some("x"), 2, "x2"), (None, 0, "null-stale")])],
        &merge,
    )
    .await;
    assert_eq!(r.rows, 1);
    assert_eq!(indexes(&wh, "customers").await, unique);
    assert_eq!(
        rows(&wh, all).await,
        vec![
            vec![Value::Null, json!(1), json!("null-x")],
            vec![json!("x"), json!(2), json!("x2")],
        ]
    );
    // A replace with two rows of one key demotes the index and keeps both rows.
    let r = commit(
        &wh,
        &stage,
        "customers",
        "L8",
        vec![customers(&[(Some("y"), 1, "y1"), (Some("y"), 2, "y2")])],
        &replace,
    )
    .await;
    assert_eq!(r.rows, 2);
    assert_eq!(
        rows(&wh, all).await,
        vec![
            vec![json!("y"), json!(1), json!("y1")],
            vec![json!("y"), json!(2), json!("y2")],
        ]
    );
    assert_eq!(
        indexes(&wh, "customers").await,
        vec![vec![
            json!("CREATE INDEX customers_id_idx ON shop.customers USING btree (id)"),
            Value::Null
        ]]
    );
}
