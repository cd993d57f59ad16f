//! JSON pages -> Arrow (weft-arrow, under Stripe's declared customer schema) -> staged Parquet (weft-stage, zstd).
//!
//! `cargo bench -p weft-benches --bench json_to_parquet`; target: >= 100k
//! Stripe-sized records/s on one core.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use weft_arrow::{JsonDecoder, SchemaContract};
use weft_stage::Stage;

fn bench(c: &mut Criterion) {
    let catalog = weft_stripe::catalog().unwrap();
    let spec = catalog.stream("customers").unwrap().spec.clone();
    let pages: Vec<_> = (0..100)
        .map(|p| weft_benches::stripe_customer_page(p * 100, 100))
        .collect();
    let bytes: usize = pages.iter().flatten().map(|r| r.get().len()).sum();
    let records = pages.iter().map(Vec::len).sum::<usize>() as u64;

    let mut group = c.benchmark_group("stripe_customers");
    group.throughput(Throughput::Elements(records));
    group.bench_function("json_to_arrow", |b| {
        b.iter(|| {
            let mut d = JsonDecoder::new(
                spec.schema.clone(),
                spec.primary_key.clone(),
                SchemaContract::Evolve,
            )
            .unwrap();
            let mut rows = 0;
            for p in &pages {
                rows += d.decode_page(p).unwrap().batch.map_or(0, |b| b.num_rows());
            }
            assert_eq!(rows as u64, records);
        })
    });
    // The real staging path: weft-stage's writer (zstd Parquet parts through
    // object_store) into an in-memory store, manifest included.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let stage = Stage::from_url("memory://").unwrap();
    let mut load = 0u64;
    group.bench_function("json_to_arrow_to_staged_parquet", |b| {
        b.iter(|| {
            load += 1;
            rt.block_on(async {
                let mut d = JsonDecoder::new(
                    spec.schema.clone(),
                    spec.primary_key.clone(),
                    SchemaContract::Evolve,
                )
                .unwrap();
                let mut writer = stage.writer("bench", "customers", &format!("load-{load:08}"));
                for p in &pages {
                    if let Some(batch) = d.decode_page(p).unwrap().batch {
                        writer.write(batch).await.unwrap();
                    }
                }
                let manifest = writer.finish(None).await.unwrap();
                assert_eq!(manifest.rows, records);
            })
        })
    });
    group.finish();
    eprintln!(
        "input: {records} records, {bytes} bytes of JSON ({} bytes/record)",
        bytes as u64 / records
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
