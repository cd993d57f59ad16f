//! Inputs shared by weft's benchmarks: Stripe-customer-sized JSON records, and
//! the reverse-sync workload (a people model, its sync spec, a counting target).

pub mod sync;

use serde_json::value::RawValue;

/// One Stripe customer (about 1 KB of JSON) with a unique id, email and time.
pub fn stripe_customer(i: u64) -> String {
    format!(
        r#"{{"id":"cus_{i:014}","object":"customer","address":{{"city":"Springfield","country":"US","line1":"{n} Main Street","line2":null,"postal_code":"{zip:05}","state":"IL"}},"balance":{bal},"created":{created},"currency":"usd","default_source":null,"delinquent":false,"description":"Customer number {i} imported from the billing system","discount":null,"email":"person.{i}@example.com","invoice_prefix":"INV{p:05}","invoice_settings":{{"custom_fields":null,"default_payment_method":"pm_{i:014}","footer":null,"rendering_options":null}},"livemode":false,"metadata":{{"crm_id":"crm-{i}","segment":"smb","source":"import"}},"name":"Person Number {i}","next_invoice_sequence":{seq},"phone":"+1555{ph:07}","preferred_locales":["en-US"],"shipping":{{"address":{{"city":"Springfield","country":"US","line1":"{n} Main Street","line2":null,"postal_code":"{zip:05}","state":"IL"}},"name":"Person Number {i}","phone":null}},"tax_exempt":"none","test_clock":null}}"#,
        n = i % 9000 + 100,
        zip = i % 99999,
        bal = (i % 1000) as i64 - 500,
        created = 1_700_000_000 + i,
        p = i % 99999,
        seq = i % 50 + 1,
        ph = i % 9_999_999,
    )
}

/// A page of `n` customers starting at `start`, as raw records.
pub fn stripe_customer_page(start: u64, n: u64) -> Vec<Box<RawValue>> {
    (start..start + n)
        .filter_map(|i| RawValue::from_string(stripe_customer(i)).ok())
        .collect()
}
