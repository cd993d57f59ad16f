//! DuckDB warehouse tests (the crate's only DuckDB-linking test binary).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use arrow_schema::{DataType, Field, TimeUnit};
use serde_json::{Value, json};
use weft_core::{
    Checkpoint, Destination, LoadTarget, Reject, StreamSpec, StreamState, WriteDisposition,
};
use weft_stage::{LocalLoad, Manifest, Stage, StagedFile};

use super::sql::column_type;
use super::*;
use crate::fixtures::{batch, local_stage, nullable, spec, stage_load, wide};
use crate::sql::{ident, table};
use crate::{StagedDestination, replay, replay_stream};

async fn commit(
    wh: &Arc<DuckDbWarehouse>,
    stage: &Stage,
    manifest: Manifest,
    spec: &LoadSpec,
) -> LoadReceipt {
    let wh: Arc<dyn Warehouse> = wh.clone();
    wh.commit_load(stage, &manifest, spec).await.unwrap()
}

/// Stages one batch of `rows` as load `load_id` (no rejects) and commits it.
async fn load_rows(
    wh: &Arc<DuckDbWarehouse>,
    stage: &Stage,
    load_id: &str,
    rows: &[(&str, i64, &str)],
    state: Value,
    spec: &LoadSpec,
) -> LoadReceipt {
    let manifest = stage_load(stage, load_id, vec![batch(rows)], vec![], state).await;
    commit(wh, stage, manifest, spec).await
}

fn rows(wh: &DuckDbWarehouse, sql: &str) -> Vec<Vec<Value>> {
    wh.query_rows(sql).unwrap()
}

/// All rows of `shop.customers` as (id, updated, name), NULL ids first.
fn customers(wh: &DuckDbWarehouse) -> Vec<Vec<Value>> {
    rows(
        wh,
        r#"SELECT id, updated, name FROM "shop"."customers" ORDER BY id NULLS FIRST, name"#,
    )
}

fn count(wh: &DuckDbWarehouse, sql: &str) -> i64 {
    rows(wh, sql)[0][0].as_i64().unwrap()
}

#[test]
fn sql_quoting_and_types() {
    assert_eq!(ident(r#"we"ird col"#), r#""we""ird col""#);
    assert_eq!(table("stripe", "customers"), r#""stripe"."customers""#);
    let ts = Field::new(
        "t",
        DataType::Timestamp(TimeUnit::Second, Some("UTC".into())),
        true,
    );
    assert_eq!(column_type(&ts, false, "x").unwrap(), "TIMESTAMPTZ");
    let json = weft_core::FieldType::Json.field("j", true, "");
    assert_eq!(column_type(&json, true, "x").unwrap(), "JSON");
    assert_eq!(column_type(&json, false, "x").unwrap(), "VARCHAR");
    let d = Field::new("d", DataType::Date32, true);
    assert_eq!(column_type(&d, false, "x").unwrap(), "DATE");
    let bad = Field::new("l", DataType::Null, true);
    let err = column_type(&bad, false, "p.s").unwrap_err().to_string();
    assert_eq!(err, "p.s: column `l` has unsupported type Null");
}

#[tokio::test]
async fn merge_dedupes_within_and_across_loads() {
    let (_dir, stage) = local_stage();
    let wh = Arc::new(DuckDbWarehouse::open_in_memory().unwrap());
    let merge = spec(WriteDisposition::Merge);
    // Within a load: the greatest cursor wins; on a cursor tie the last staged row wins.
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
    let r = commit(&wh, &stage, m, &merge).await;
    assert_eq!((r.rows, r.already_committed, r.files), (3, false, 1));
    assert_eq!(
        customers(&wh),
        vec![
            vec![json!("a"), json!(2), json!("a-new")],
            vec![json!("b"), json!(1), json!("b-last")],
            vec![json!("c"), json!(5), json!("c")],
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
        customers(&wh),
        vec![
            vec![json!("a"), json!(3), json!("a-3")],
            vec![json!("b"), json!(1), json!("b-again")],
            vec![json!("c"), json!(5), json!("c")],
            vec![json!("d"), json!(1), json!("d")],
        ]
    );
    assert_eq!(
        wh.state("shop", "customers").unwrap(),
        Some(json!({"cursor": 6}))
    );
    let loads = wh.loads("shop").unwrap();
    let ids: Vec<_> = loads
        .iter()
        .map(|l| (l.load_id.as_str(), l.rows, l.files))
        .collect();
    assert_eq!(ids, vec![("L1", 3, 1), ("L2", 3, 1)]);
    assert!(loads[0].bytes > 0 && loads[0].committed_at >= loads[0].started_at);
}

/// A batch whose key and cursor may be NULL: (id, updated, name).
/// Staging tables left in any catalog (the temp one included).
fn leftover_staging(wh: &DuckDbWarehouse) -> i64 {
    count(
        wh,
        &format!("SELECT count(*) FROM duckdb_tables() WHERE table_name = '{STAGING}'"),
    )
}

#[tokio::test]
async fn merge_null_cursors_null_keys_and_stale_rows() {
    let (_dir, stage) = local_stage();
    let wh = Arc::new(DuckDbWarehouse::open_in_memory().unwrap());
    let merge = spec(WriteDisposition::Merge);
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
    let r = commit(&wh, &stage, m, &merge).await;
    assert_eq!(r.rows, 5);
    assert_eq!(
        customers(&wh),
        vec![
            vec![Value::Null, json!(3), json!("nokey-3")],
            vec![json!("a"), json!(5), json!("a5")],
            vec![json!("b"), Value::Null, json!("b-null")],
            vec![json!("c"), json!(2), json!("c2")],
            vec![json!("d"), json!(4), json!("d4")],
        ]
    );
    assert_eq!(leftover_staging(&wh), 0);
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
    let r = commit(&wh, &stage, m, &merge).await;
    assert_eq!(r.rows, 4);
    assert_eq!(
        customers(&wh),
        vec![
            vec![Value::Null, json!(3), json!("nokey-3")],
            vec![json!("a"), Value::Null, json!("a-null")],
            vec![json!("b"), json!(1), json!("b1")],
            vec![json!("c"), json!(2), json!("c2")],
            vec![json!("d"), json!(4), json!("d4-again")],
            vec![json!("e"), Value::Null, json!("e-null")],
        ]
    );
    let loads: Vec<_> = wh
        .loads("shop")
        .unwrap()
        .into_iter()
        .map(|l| (l.load_id, l.rows))
        .collect();
    assert_eq!(loads, vec![("L1".to_string(), 5), ("L2".to_string(), 4)]);
    assert_eq!(leftover_staging(&wh), 0);
}

#[tokio::test]
async fn merge_ties_multi_column_keys_and_loaded_duplicates() {
    let (_dir, stage) = local_stage();
    let wh = Arc::new(DuckDbWarehouse::open_in_memory().unwrap());
    // Loaded duplicates of a key (appended before the stream became a merge).
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
    let merge = spec(WriteDisposition::Merge);
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
    let r = commit(&wh, &stage, m, &merge).await;
    // `a` loses to the loaded a9 and keeps both loaded rows; `b` replaces both.
    assert_eq!(r.rows, 2);
    assert_eq!(
        customers(&wh),
        vec![
            vec![json!("a"), json!(5), json!("a5")],
            vec![json!("a"), json!(9), json!("a9")],
            vec![json!("b"), json!(3), json!("b3-last")],
            vec![json!("c"), json!(1), json!("c-last")],
        ]
    );

    // A two-column key (id, name) without a cursor: the last staged row wins
    // and every loaded row of the key is replaced.
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
        customers(&wh),
        vec![
            vec![json!("a"), json!(3), json!("a-new")],
            vec![json!("a"), json!(2), json!("a5")],
            vec![json!("a"), json!(9), json!("a9")],
            vec![json!("b"), json!(3), json!("b3-last")],
            vec![json!("c"), json!(0), json!("c-last")],
        ]
    );
    // The same two-column key with a cursor: only older rows of the pair lose.
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
        customers(&wh),
        vec![
            vec![json!("a"), json!(3), json!("a-new")],
            vec![json!("a"), json!(10), json!("a5")],
            vec![json!("a"), json!(9), json!("a9")],
            vec![json!("b"), json!(3), json!("b3-last")],
            vec![json!("c"), json!(0), json!("c-last")],
        ]
    );
    assert_eq!(leftover_staging(&wh), 0);
}

#[tokio::test]
async fn append_and_replace() {
    let (_dir, stage) = local_stage();
    let wh = Arc::new(DuckDbWarehouse::open_in_memory().unwrap());
    let append = spec(WriteDisposition::Append);
    for id in ["L1", "L2"] {
        assert_eq!(
            load_rows(
                &wh,
                &stage,
                id,
                &[("a", 1, "x"), ("a", 1, "y")],
                json!(null),
                &append
            )
            .await
            .rows,
            2
        );
    }
    assert_eq!(count(&wh, r#"SELECT count(*) FROM "shop"."customers""#), 4);
    // A null state means "no cursor".
    assert_eq!(wh.state("shop", "customers").unwrap(), None);

    let replace = spec(WriteDisposition::Replace);
    assert_eq!(
        load_rows(
            &wh,
            &stage,
            "L3",
            &[("z", 9, "only")],
            json!({"c": 1}),
            &replace
        )
        .await
        .rows,
        1
    );
    assert_eq!(
        customers(&wh),
        vec![vec![json!("z"), json!(9), json!("only")]]
    );
    // Replace with no rows empties the table.
    let m = stage_load(&stage, "L4", vec![], vec![], json!({"c": 2})).await;
    let r = commit(&wh, &stage, m, &replace).await;
    assert_eq!((r.rows, r.files), (0, 0));
    assert_eq!(count(&wh, r#"SELECT count(*) FROM "shop"."customers""#), 0);
    assert_eq!(
        wh.state("shop", "customers").unwrap(),
        Some(json!({"c": 2}))
    );
}

#[tokio::test]
async fn schema_evolution_adds_nullable_columns() {
    let (_dir, stage) = local_stage();
    let wh = Arc::new(DuckDbWarehouse::open_in_memory().unwrap());
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
    commit(&wh, &stage, m, &merge).await;
    assert_eq!(
        rows(
            &wh,
            r#"SELECT id, email, epoch(seen::TIMESTAMP)::BIGINT FROM "shop"."customers" ORDER BY id"#
        ),
        vec![
            vec![json!("a"), Value::Null, Value::Null],
            vec![json!("b"), Value::Null, Value::Null],
            vec![json!("c"), json!("c@x.test"), json!(1_700_000_000)],
        ]
    );
    let types = rows(
        &wh,
        "SELECT data_type FROM information_schema.columns \
         WHERE table_schema = 'shop' AND table_name = 'customers' AND column_name = 'seen'",
    );
    assert_eq!(types, vec![vec![json!("TIMESTAMP WITH TIME ZONE")]]);
    // A later load without the new columns leaves them NULL.
    load_rows(&wh, &stage, "L3", &[("c", 2, "C2")], json!(3), &merge).await;
    assert_eq!(
        rows(
            &wh,
            r#"SELECT name, email FROM "shop"."customers" WHERE id = 'c'"#
        ),
        vec![vec![json!("C2"), Value::Null]]
    );
}

#[tokio::test]
async fn recommit_is_a_noop_and_failures_change_nothing() {
    let (_dir, stage) = local_stage();
    let wh = Arc::new(DuckDbWarehouse::open_in_memory().unwrap());
    let append = spec(WriteDisposition::Append);
    let m = stage_load(
        &stage,
        "L1",
        vec![batch(&[("a", 1, "x"), ("b", 1, "y")])],
        vec![],
        json!({"c": 1}),
    )
    .await;
    let first = commit(&wh, &stage, m.clone(), &append).await;
    let again = commit(&wh, &stage, m.clone(), &append).await;
    assert!(!first.already_committed);
    assert!(again.already_committed);
    assert_eq!((again.rows, again.load_id.as_str()), (2, "L1"));
    assert_eq!(count(&wh, r#"SELECT count(*) FROM "shop"."customers""#), 2);
    assert_eq!(count(&wh, "SELECT count(*) FROM _weft._weft_loads"), 1);

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
    let files = LocalLoad {
        parts: broken.files.iter().map(|f| root.join(&f.path)).collect(),
        rejects: broken.rejects_file.as_ref().map(|r| root.join(r)),
    };
    let err = wh.commit_local(&broken, &files, &append).unwrap_err();
    assert!(err.to_string().contains("part-00001.parquet"), "{err}");
    assert_eq!(count(&wh, r#"SELECT count(*) FROM "shop"."customers""#), 2);
    assert_eq!(count(&wh, "SELECT count(*) FROM _weft._weft_loads"), 1);
    assert_eq!(count(&wh, "SELECT count(*) FROM _weft._weft_rejects"), 0);
    assert_eq!(leftover_staging(&wh), 0);
    assert_eq!(
        wh.state("shop", "customers").unwrap(),
        Some(json!({"c": 1}))
    );
    // The evolution of the failed load was rolled back too.
    assert_eq!(
        count(
            &wh,
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'customers'"
        ),
        3
    );
    // A merge naming a key the data lacks fails clearly, changing nothing.
    let mut bad_key = spec(WriteDisposition::Merge);
    bad_key.primary_key = vec!["nope".to_string()];
    let m = stage_load(
        &stage,
        "L3",
        vec![batch(&[("e", 1, "e")])],
        vec![],
        json!({"c": 3}),
    )
    .await;
    let files = stage.fetch_to_local(&m, root.as_path()).await.unwrap();
    let err = wh
        .commit_local(&m, &files, &bad_key)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "shop.customers: primary key column `nope` is not in the staged schema"
    );
    assert_eq!(
        wh.state("shop", "customers").unwrap(),
        Some(json!({"c": 1}))
    );
}

#[tokio::test]
async fn rejects_land_in_weft_rejects() {
    let (_dir, stage) = local_stage();
    let wh = Arc::new(DuckDbWarehouse::open_in_memory().unwrap());
    let rejects = vec![
        Reject {
            record: r#"{"id":"x","updated":"soon"}"#.to_string(),
            reason: "updated: expected integer".to_string(),
            field: Some("updated".to_string()),
            row_loaded: false,
        },
        Reject {
            record: "{".to_string(),
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
    let r = commit(&wh, &stage, m, &spec(WriteDisposition::Merge)).await;
    assert_eq!((r.rows, r.rejects), (1, 2));
    assert_eq!(
        rows(
            &wh,
            "SELECT pipeline, stream, load_id, record, reason, field, row_loaded \
             FROM _weft._weft_rejects ORDER BY reason"
        ),
        vec![
            vec![
                json!("shop"),
                json!("customers"),
                json!("L1"),
                json!("{"),
                json!("malformed JSON"),
                Value::Null,
                json!(false)
            ],
            vec![
                json!("shop"),
                json!("customers"),
                json!("L1"),
                json!(r#"{"id":"x","updated":"soon"}"#),
                json!("updated: expected integer"),
                json!("updated"),
                json!(false)
            ],
        ]
    );
    assert_eq!(wh.loads("shop").unwrap()[0].rejects, 2);
}

#[tokio::test]
async fn replay_from_a_remote_stage_into_a_fresh_database() {
    // memory:// is not local: commits download the parts to a temp dir first.
    let stage = Stage::from_url("memory://").unwrap();
    let first = Arc::new(DuckDbWarehouse::open_in_memory().unwrap());
    let merge = spec(WriteDisposition::Merge);
    let m1 = stage_load(
        &stage,
        "L1",
        vec![batch(&[("a", 1, "x"), ("b", 1, "y")])],
        vec![],
        json!({"c": 1}),
    )
    .await;
    let m2 = stage_load(
        &stage,
        "L2",
        vec![batch(&[("a", 2, "x2")])],
        vec![],
        json!({"c": 2}),
    )
    .await;
    commit(&first, &stage, m1, &merge).await;
    commit(&first, &stage, m2, &merge).await;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fresh.duckdb");
    {
        let fresh = Arc::new(DuckDbWarehouse::open(&path).unwrap());
        let receipts = replay_stream(fresh.clone(), &stage, &merge).await.unwrap();
        let got: Vec<_> = receipts
            .iter()
            .map(|r| (r.load_id.as_str(), r.rows))
            .collect();
        assert_eq!(got, vec![("L1", 2), ("L2", 1)]);
        assert_eq!(customers(&fresh), customers(&first));
        let again = replay(fresh.clone(), &stage, &merge, "L2").await.unwrap();
        assert!(again.already_committed);
    }
    // Reopened from disk: rows, loads and state survived.
    let reopened = DuckDbWarehouse::open(&path).unwrap();
    assert_eq!(customers(&reopened), customers(&first));
    assert_eq!(
        reopened.state("shop", "customers").unwrap(),
        Some(json!({"c": 2}))
    );
    assert_eq!(reopened.loads("shop").unwrap().len(), 2);
}

#[test]
fn work_beyond_the_memory_limit_spills_next_to_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("it's.duckdb");
    let wh = DuckDbWarehouse::open(&path).unwrap();
    wh.set_memory_limit("32MB").unwrap();
    let conn = wh.lock().unwrap();
    let temp: String = conn
        .query_row("SELECT current_setting('temp_directory')", [], |r| r.get(0))
        .unwrap();
    assert_eq!(temp, format!("{}.tmp", path.display()));
    // A sort several times the limit completes by spilling there.
    conn.execute_batch(
        "SET threads = 1; CREATE TABLE big AS SELECT range AS id, md5(range::VARCHAR) AS h \
         FROM range(1000000) ORDER BY h;",
    )
    .unwrap();
    let first: i64 = conn
        .query_row("SELECT id FROM big LIMIT 1", [], |r| r.get(0))
        .unwrap();
    let expected: i64 = conn
        .query_row("SELECT id FROM big ORDER BY h LIMIT 1", [], |r| r.get(0))
        .unwrap();
    assert_eq!(first, expected, "the table is in sort order");
    assert!(
        dir.path().join("it's.duckdb.tmp").is_dir(),
        "spilled next to the file"
    );
}

#[test]
fn database_file_uses_small_row_groups_and_readers_see_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("it's.duckdb");
    {
        let wh = DuckDbWarehouse::open(&path).unwrap();
        let conn = wh.lock().unwrap();
        conn.execute_batch(
            "CREATE SCHEMA shop; CREATE TABLE shop.t AS SELECT range AS id FROM range(70000); CHECKPOINT;",
        )
        .unwrap();
        let groups: i64 = conn
            .query_row(
                "SELECT count(DISTINCT row_group_id) FROM pragma_storage_info('shop.t')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(groups, 3, "70,000 rows in groups of {ROW_GROUP_ROWS}");
        drop(conn);
        // A reader connection works on the same file catalog, not `memory`.
        let reader = wh.reader().unwrap();
        let rows: i64 = reader
            .query_row("SELECT count(*) FROM shop.t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 70_000);
        let db: String = reader
            .query_row("SELECT current_database()", [], |r| r.get(0))
            .unwrap();
        assert_eq!(db, FILE_CATALOG);
    }
    // Any DuckDB client opens the file as an ordinary database.
    let plain = ::duckdb::Connection::open(&path).unwrap();
    let rows: i64 = plain
        .query_row("SELECT count(*) FROM shop.t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 70_000);
    let weft_tables: i64 = plain
        .query_row(
            "SELECT count(*) FROM duckdb_tables() WHERE schema_name = '_weft'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    // _weft_loads, _weft_state, _weft_rejects, _weft_quality.
    assert_eq!(weft_tables, 4);
}

#[test]
fn lock_conflicts_read_the_holders_pid() {
    let held = "IO Error: Could not set lock on file \"/d/it's (PID 7).duckdb\": Conflicting lock \
                is held in /usr/bin/weft (PID 12345) by user root. See also \
                https://duckdb.org/docs/current/connect/concurrency";
    assert_eq!(lock_conflict(held), Some(Some(12345)));
    let unnamed = "IO Error: Could not set lock on file \"/d/w.duckdb\": Conflicting lock \
                   is held in PID 42. See also https://duckdb.org/docs";
    assert_eq!(lock_conflict(unnamed), Some(Some(42)));
    let garbled = "IO Error: Could not set lock on file \"/d/w.duckdb\": Conflicting lock \
                   is held in /usr/bin/weft (PID ?) by user root";
    assert_eq!(lock_conflict(garbled), Some(None));
    let unsupported = "IO Error: Could not set lock on file \"/d/w.duckdb\": File locks are \
                       not supported for this file system";
    assert_eq!(lock_conflict(unsupported), None);
    assert_eq!(lock_conflict("IO Error: Cannot open file"), None);

    let err = WarehouseError::InUse {
        path: "/d/w.duckdb".into(),
        pid: None,
    };
    assert_eq!(
        err.to_string(),
        "warehouse /d/w.duckdb is in use by another process (DuckDB allows one process per \
         file: stop that process, or use a PostgreSQL warehouse to share it between runners)"
    );
}

/// The database path [`hold_a_duckdb_file_for_another_test`] holds open.
const HOLD_DUCKDB: &str = "WEFT_TEST_HOLD_DUCKDB";

/// Not a test of its own: `a_file_held_by_another_process_is_in_use` runs it
/// in a child process to open the warehouse at `$WEFT_TEST_HOLD_DUCKDB`; it
/// prints `holding`, then keeps the file open until its stdin closes or 30 s
/// pass. Without the variable it does nothing.
#[test]
#[ignore = "helper process of a_file_held_by_another_process_is_in_use"]
fn hold_a_duckdb_file_for_another_test() {
    use std::io::Write;

    let Some(path) = std::env::var_os(HOLD_DUCKDB) else {
        return;
    };
    let _held = DuckDbWarehouse::open(Path::new(&path)).unwrap();
    let (closed, stdin_closed) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        let _ = closed.send(());
    });
    let mut out = std::io::stdout();
    writeln!(out, "holding").unwrap();
    out.flush().unwrap();
    let _ = stdin_closed.recv_timeout(std::time::Duration::from_secs(30));
}

/// A child process, killed (and reaped) however the test ends.
struct Holder(std::process::Child);

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_file_held_by_another_process_is_in_use() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("held.duckdb");
    // The test's path inside this binary: the module path without the crate.
    let module = module_path!().split_once("::").unwrap().1;
    let helper = format!("{module}::hold_a_duckdb_file_for_another_test");
    let mut holder = Holder(
        Command::new(std::env::current_exe().unwrap())
            .args(["--exact", &helper, "--nocapture", "--ignored"])
            .env(HOLD_DUCKDB, &path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    let stdout = holder.0.stdout.take().unwrap();
    let (line, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for text in std::io::BufReader::new(stdout).lines() {
            let Ok(text) = text else { break };
            if line.send(text).is_err() {
                break;
            }
        }
    });
    // libtest may print `test NAME ... ` on the same line first.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = Vec::new();
    loop {
        match lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(text) if text.trim_end().ends_with("holding") => break,
            Ok(text) => seen.push(text),
            Err(e) => panic!("the helper never held the file ({e}); it printed {seen:?}"),
        }
    }

    let pid = holder.0.id();
    let err = DuckDbWarehouse::open(&path).unwrap_err();
    match &err {
        WarehouseError::InUse {
            path: held,
            pid: by,
        } => {
            assert_eq!(held, &path);
            assert_eq!(*by, Some(pid), "{err}");
        }
        other => panic!("expected InUse, got {other:?}"),
    }
    let message = err.to_string();
    assert!(
        message.contains(&format!("is in use by pid {pid}")),
        "{message}"
    );

    holder.0.kill().unwrap();
    holder.0.wait().unwrap();
}

#[tokio::test]
async fn state_listing_and_reset() {
    let (_dir, stage) = local_stage();
    let wh = Arc::new(DuckDbWarehouse::open_in_memory().unwrap());
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
    let mut w = stage.writer("shop", "orders", "L2");
    w.write(batch(&[("o", 1, "y")])).await.unwrap();
    let m = w.finish(Some(json!({"c": 8}))).await.unwrap();
    commit(&wh, &stage, m, &other).await;

    let listed: Vec<_> = wh
        .list_state()
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
    assert_eq!(wh.reset_state("shop", Some("orders")).unwrap(), 1);
    assert_eq!(wh.state("shop", "orders").unwrap(), None);
    assert_eq!(wh.reset_state("shop", None).unwrap(), 1);
    assert!(wh.list_state().unwrap().is_empty());
}

#[tokio::test]
async fn staged_destination_commits_loads_through_the_sink() {
    let (_dir, stage) = local_stage();
    let wh = Arc::new(DuckDbWarehouse::open_in_memory().unwrap());
    let dest = StagedDestination::new(stage.clone(), wh.clone());
    assert_eq!(dest.name(), "duckdb");
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
    assert_ne!(sink.load_id(), first_id);
    let second_id = sink.load_id().to_string();
    sink.write(batch(&[("a", 2, "x2")])).await.unwrap();
    let r2 = sink
        .commit(Checkpoint {
            state: StreamState(json!({"updated": 2})),
        })
        .await
        .unwrap();
    assert_eq!((r2.load_id.as_str(), r2.rows), (second_id.as_str(), 1));

    assert_eq!(count(&wh, r#"SELECT count(*) FROM "shop"."customers""#), 3);
    assert_eq!(
        rows(&wh, r#"SELECT name FROM "shop"."customers" WHERE id = 'a'"#),
        vec![vec![json!("x2")]]
    );
    let loads: Vec<_> = wh
        .loads("shop")
        .unwrap()
        .into_iter()
        .map(|l| (l.load_id, l.rows))
        .collect();
    assert_eq!(loads, vec![(first_id.clone(), 3), (second_id.clone(), 1)]);
    assert_eq!(
        dest.state("shop", "customers").await.unwrap(),
        Some(StreamState(json!({"updated": 2})))
    );
    assert_eq!(
        stage.list_loads("shop", "customers").await.unwrap(),
        vec![first_id, second_id]
    );
}

#[test]
fn json_values_of_common_types() {
    let wh = DuckDbWarehouse::open_in_memory().unwrap();
    let got = rows(
        &wh,
        "SELECT 1::INTEGER, 2.5::DOUBLE, 'x', true, NULL::VARCHAR, DATE '2024-02-03', \
         TIMESTAMP '2024-02-03 04:05:06'",
    );
    assert_eq!(
        got,
        vec![vec![
            json!(1),
            json!(2.5),
            json!("x"),
            json!(true),
            Value::Null,
            json!("2024-02-03"),
            json!("2024-02-03T04:05:06+00:00"),
        ]]
    );
}

/// DuckDB behind [`StagedDestination`] under the shared destination suite (weft-conformance).
struct DuckDbConformance {
    dir: tempfile::TempDir,
    created: std::sync::atomic::AtomicU64,
}

#[async_trait::async_trait]
impl weft_conformance::destination::DestinationHarness for DuckDbConformance {
    type Destination = StagedDestination;

    fn name(&self) -> &str {
        "duckdb"
    }

    async fn create(&self) -> Result<StagedDestination, weft_core::BoxError> {
        let n = self
            .created
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let stage = Stage::from_url(self.dir.path().join(format!("stage-{n}")).to_str().unwrap())?;
        let wh: Arc<dyn Warehouse> = Arc::new(DuckDbWarehouse::open_in_memory()?);
        Ok(StagedDestination::new(stage, wh))
    }

    async fn rows(
        &self,
        d: &StagedDestination,
        pipeline: &str,
        stream: &str,
    ) -> Result<Vec<weft_conformance::Row>, weft_core::BoxError> {
        Ok(d.warehouse().table_rows(pipeline, stream).await?)
    }

    async fn replay(
        &self,
        d: &StagedDestination,
        target: &LoadTarget,
        load_id: &str,
    ) -> Result<Option<weft_core::LoadReceipt>, weft_core::BoxError> {
        let spec = LoadSpec::from_target(target);
        Ok(Some(
            replay(Arc::clone(d.warehouse()), d.stage(), &spec, load_id).await?,
        ))
    }
}

#[tokio::test]
async fn duckdb_passes_the_destination_suite() {
    let harness = DuckDbConformance {
        dir: tempfile::tempdir().unwrap(),
        created: std::sync::atomic::AtomicU64::new(0),
    };
    weft_conformance::destination::run_suite(&harness)
        .await
        .assert_passed();
}

#[tokio::test]
async fn run_history_round_trips() {
    let wh = DuckDbWarehouse::open_in_memory().unwrap();
    crate::fixtures::run_history(&wh).await;
    let wh = DuckDbWarehouse::open_in_memory().unwrap();
    crate::fixtures::run_history_migrates(&wh).await;
}

#[tokio::test]
async fn sync_log_keeps_pre_images() {
    let wh = DuckDbWarehouse::open_in_memory().unwrap();
    crate::fixtures::sync_log_pre_images(&wh).await;
}

#[tokio::test]
async fn quality_results_round_trip() {
    let wh = DuckDbWarehouse::open_in_memory().unwrap();
    crate::fixtures::quality_history(&wh).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_hold_expire_and_take_over() {
    let wh = DuckDbWarehouse::open_in_memory().unwrap();
    crate::fixtures::leases(std::sync::Arc::new(wh)).await;
}

#[tokio::test]
async fn budget_holders_count_live_runners() {
    let wh = DuckDbWarehouse::open_in_memory().unwrap();
    crate::fixtures::budget_holders(&wh).await;
}

/// `write_disposition = "history"`: the fixed sequences, then generated
/// ones, each into a fresh database, hold exactly the modelled versions.
#[test]
fn history_tables_hold_exactly_the_modelled_versions() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    for loads in crate::fixtures::history_cases() {
        let wh = DuckDbWarehouse::open_in_memory().unwrap();
        rt.block_on(crate::fixtures::history_matches_the_model(
            &wh,
            "customers",
            &loads,
        ));
    }
    let mut runner = proptest::test_runner::TestRunner::new(proptest::test_runner::Config {
        cases: 48,
        ..Default::default()
    });
    runner
        .run(&crate::fixtures::history_loads(), |loads| {
            let wh = DuckDbWarehouse::open_in_memory().unwrap();
            rt.block_on(crate::fixtures::history_matches_the_model(
                &wh,
                "customers",
                &loads,
            ));
            Ok(())
        })
        .unwrap();
}

#[tokio::test]
async fn a_history_load_without_a_key_is_refused_naming_the_table() {
    let (_dir, stage) = local_stage();
    let wh = Arc::new(DuckDbWarehouse::open_in_memory().unwrap());
    let spec = LoadSpec {
        primary_key: vec![],
        ..spec(WriteDisposition::History)
    };
    let m = stage_load(
        &stage,
        "L1",
        vec![batch(&[("a", 1, "x")])],
        vec![],
        json!({}),
    )
    .await;
    let wh: Arc<dyn Warehouse> = wh;
    let err = wh
        .commit_load(&stage, &m, &spec)
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "shop.customers: write_disposition = \"history\" keeps versions per primary key, and the stream has none (use append)"
    );
}
