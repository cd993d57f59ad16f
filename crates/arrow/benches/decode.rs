//! Decoding throughput: pages of 100 Stripe-customer-like records (~1 KB each).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use serde_json::value::RawValue;
use weft_arrow::{FieldType, JsonDecoder, Schema, SchemaContract};

const PAGE: usize = 100;

fn customer_schema() -> Arc<Schema> {
    use FieldType::*;
    let f = |name: &str, ty: FieldType, nullable: bool| ty.field(name, nullable, "");
    Arc::new(Schema::new(vec![
        f("id", String, false),
        f("object", String, true),
        f("address", Json, true),
        f("balance", Money, true),
        f("created", UnixSeconds, true),
        f("currency", String, true),
        f("default_source", String, true),
        f("delinquent", Boolean, true),
        f("description", String, true),
        f("discount", Json, true),
        f("email", String, true),
        f("invoice_prefix", String, true),
        f("invoice_settings", Json, true),
        f("livemode", Boolean, true),
        f("metadata", Json, true),
        f("name", String, true),
        f("next_invoice_sequence", Integer, true),
        f("phone", String, true),
        f("preferred_locales", Json, true),
        f("shipping", Json, true),
        f("tax_exempt", String, true),
        f("test_clock", String, true),
        f("updated_at", Timestamp, true),
    ]))
}

fn customer(i: usize) -> Box<RawValue> {
    let text = format!(
        r#"{{"id":"cus_{i:014}","object":"customer","address":{{"city":"San Francisco","country":"US","line1":"{i} Market Street","line2":"Suite \"{i}\"","postal_code":"94103","state":"CA"}},"balance":{bal},"created":{created},"currency":"usd","default_source":null,"delinquent":false,"description":"Customer number {i} with a \"quoted\" note","discount":null,"email":"customer{i}@example.com","invoice_prefix":"INV{i:06}","invoice_settings":{{"custom_fields":null,"default_payment_method":"pm_{i:014}","footer":null,"rendering_options":null}},"livemode":false,"metadata":{{"order_id":"{i}","segment":"enterprise","tags":["a","b","c"]}},"name":"Jenny Rosen {i}","next_invoice_sequence":{seq},"phone":"+1415555{i:04}","preferred_locales":["en","fr"],"shipping":{{"address":{{"city":"Paris","country":"FR","line1":"1 Rue de Rivoli"}},"name":"Jenny","phone":null}},"tax_exempt":"none","test_clock":null,"updated_at":"2024-05-0{d}T12:34:56.789Z"}}"#,
        bal = (i as i64 * 137) - 5000,
        created = 1_700_000_000 + i as i64 * 60,
        seq = i % 50,
        d = 1 + i % 9,
    );
    RawValue::from_string(text).unwrap()
}

fn bench_decode(c: &mut Criterion) {
    let page: Vec<Box<RawValue>> = (0..PAGE).map(customer).collect();
    let bytes: usize = page.iter().map(|r| r.get().len()).sum();
    let mut group = c.benchmark_group("decode_page");
    for (label, throughput) in [
        ("records", Throughput::Elements(PAGE as u64)),
        ("bytes", Throughput::Bytes(bytes as u64)),
    ] {
        group.throughput(throughput);
        group.bench_function(format!("stripe_customers_100/{label}"), |b| {
            let mut decoder =
                JsonDecoder::new(customer_schema(), vec!["id".into()], SchemaContract::Evolve)
                    .unwrap();
            b.iter(|| {
                let page = decoder.decode_page(black_box(&page)).unwrap();
                assert_eq!(page.batch.as_ref().map(|b| b.num_rows()), Some(PAGE));
                page
            })
        });
    }
    // The same page when every record carries a value of the wrong type and an
    // unknown field: the per-record fallback path (discard_value).
    let bad: Vec<Box<RawValue>> = page
        .iter()
        .map(|r| {
            let text = r
                .get()
                .replacen(r#""delinquent":false"#, r#""delinquent":"no""#, 1)
                .replacen(
                    r#""tax_exempt":"none""#,
                    r#""tax_exempt":"none","extra":1"#,
                    1,
                );
            RawValue::from_string(text).unwrap()
        })
        .collect();
    group.throughput(Throughput::Elements(PAGE as u64));
    group.bench_function("stripe_customers_100_all_bad/records", |b| {
        b.iter_batched(
            || {
                JsonDecoder::new(
                    customer_schema(),
                    vec!["id".into()],
                    SchemaContract::DiscardValue,
                )
                .unwrap()
            },
            |mut decoder| decoder.decode_page(black_box(&bad)).unwrap(),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, bench_decode);
criterion_main!(benches);
