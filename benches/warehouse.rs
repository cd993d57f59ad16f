//! The warehouse side: DuckDB load of staged Parquet, and the reverse-sync diff.
//!
//! `cargo bench --profile release -p weft-benches --bench warehouse` (the
//! release profile reuses the release build of bundled DuckDB).
//!
//! - `duckdb_load/merge_100k`: 100k staged Stripe customers (zstd Parquet on
//!   local disk) committed into a fresh DuckDB table with merge on `id` —
//!   read, TEMP staging table, per-key winners, merge, load bookkeeping, one
//!   transaction.
//! - `sync_diff/plan_1m_1pct`: a 1M-row model with 1% changed rows against its
//!   sync snapshot: the diff counts plus the pages of changed records, all in
//!   DuckDB. Target (issue 5): <= 2 s. Before timing, one real `run_sync`
//!   checks that exactly the 10,000 changed rows reach the target.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use weft_arrow::{JsonDecoder, SchemaContract};
use weft_benches::sync::{Counting, people_model, people_sync};
use weft_core::{SyncAction, SyncOptions, SyncStore, WriteDisposition, run_sync};
use weft_stage::Stage;
use weft_warehouse::{DuckDbWarehouse, LoadSpec, Warehouse};

const LOAD_ROWS: u64 = 100_000;
const MODEL_ROWS: u64 = 1_000_000;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn load(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let stage = Stage::from_url(dir.path().to_str().unwrap()).unwrap();
    let catalog = weft_stripe::catalog().unwrap();
    let stream = catalog.stream("customers").unwrap().spec.clone();
    let manifest = rt.block_on(async {
        let mut decoder = JsonDecoder::new(
            stream.schema.clone(),
            stream.primary_key.clone(),
            SchemaContract::Evolve,
        )
        .unwrap();
        let mut writer = stage.writer("bench", "customers", "load-1");
        for page in 0..LOAD_ROWS / 100 {
            let records = weft_benches::stripe_customer_page(page * 100, 100);
            if let Some(batch) = decoder.decode_page(&records).unwrap().batch {
                writer.write(batch).await.unwrap();
            }
        }
        writer.finish(None).await.unwrap()
    });
    assert_eq!(manifest.rows, LOAD_ROWS);
    let spec = LoadSpec {
        pipeline: "bench".to_string(),
        stream: "customers".to_string(),
        primary_key: stream.primary_key.clone(),
        cursor_field: stream.cursor_field.clone(),
        disposition: WriteDisposition::Merge,
    };
    eprintln!(
        "staged: {} rows, {} bytes of Parquet",
        manifest.rows,
        manifest.bytes()
    );

    let mut group = c.benchmark_group("duckdb_load");
    group.throughput(Throughput::Elements(LOAD_ROWS));
    group.sample_size(10);
    group.bench_function("merge_100k", |b| {
        b.iter_batched(
            || Arc::new(DuckDbWarehouse::open_in_memory().unwrap()),
            |wh| {
                let warehouse: Arc<dyn Warehouse> = wh.clone();
                let receipt = rt
                    .block_on(warehouse.commit_load(&stage, &manifest, &spec))
                    .unwrap();
                assert_eq!(receipt.rows, LOAD_ROWS);
                wh
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

/// The 1M-row diff; every iteration plans and pages through the changes.
fn diff(c: &mut Criterion) {
    let rt = runtime();
    let wh = DuckDbWarehouse::open_in_memory().unwrap();
    let spec = people_sync();
    let target = Counting::default();
    wh.run_models(&[people_model(MODEL_ROWS, false)]).unwrap();
    let started = Instant::now();
    let first = rt
        .block_on(run_sync(&wh, &target, &spec, SyncOptions::default()))
        .unwrap();
    assert_eq!(first.created, MODEL_ROWS);
    eprintln!(
        "initial sync of {MODEL_ROWS} rows (snapshot written): {:.2?}",
        started.elapsed()
    );
    wh.run_models(&[people_model(MODEL_ROWS, true)]).unwrap();

    let plan_all = || async {
        let plan = wh.plan(&spec).await.unwrap();
        let mut pages = 0usize;
        let mut rows = 0usize;
        let mut after: Option<String> = None;
        loop {
            let page = wh
                .planned(&spec, SyncAction::Update, after.as_deref(), 1_000)
                .await
                .unwrap();
            let Some(last) = page.last() else { break };
            after = Some(last.key.clone());
            rows += page.len();
            pages += 1;
        }
        (plan, pages, rows)
    };
    let started = Instant::now();
    let (plan, pages, rows) = rt.block_on(plan_all());
    eprintln!(
        "diff of {MODEL_ROWS} rows: {} creates, {} updates, {} deletes; {rows} changed records in {pages} pages; {:.2?}",
        plan.creates,
        plan.updates,
        plan.deletes,
        started.elapsed()
    );
    assert_eq!(
        (plan.creates, plan.updates, plan.deletes, rows),
        (0, 10_000, 0, 10_000)
    );

    let mut group = c.benchmark_group("sync_diff");
    group.throughput(Throughput::Elements(MODEL_ROWS));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.bench_function("plan_1m_1pct", |b| {
        b.iter(|| {
            let (plan, _, rows) = rt.block_on(plan_all());
            assert_eq!((plan.updates, rows), (10_000, 10_000));
        })
    });
    group.finish();

    // The API side: only the changed rows are sent.
    target.clear();
    let report = rt
        .block_on(run_sync(&wh, &target, &spec, SyncOptions::default()))
        .unwrap();
    assert_eq!((report.created, report.updated), (0, 10_000));
    assert_eq!(
        target.sent(),
        BTreeMap::from([("Update".to_string(), 10_000)])
    );
    eprintln!("sync after the change sent exactly 10000 updates and nothing else");
}

criterion_group!(benches, load, diff);
criterion_main!(benches);
