//! JSON pages -> Arrow (weft-arrow, under Stripe's declared customer schema) -> Parquet (zstd).
//!
//! `cargo bench -p weft-benches --bench json_to_parquet`; target: >= 100k
//! Stripe-sized records/s on one core.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use weft_arrow::{JsonDecoder, SchemaContract};

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
    group.bench_function("json_to_arrow_to_parquet", |b| {
        b.iter(|| {
            let mut d = JsonDecoder::new(
                spec.schema.clone(),
                spec.primary_key.clone(),
                SchemaContract::Evolve,
            )
            .unwrap();
            let props = WriterProperties::builder()
                .set_compression(Compression::ZSTD(ZstdLevel::try_new(1).unwrap()))
                .build();
            let mut writer = ArrowWriter::try_new(
                Vec::with_capacity(bytes / 4),
                d.schema().clone(),
                Some(props),
            )
            .unwrap();
            for p in &pages {
                if let Some(batch) = d.decode_page(p).unwrap().batch {
                    writer.write(&batch).unwrap();
                }
            }
            writer.close().unwrap().len()
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
